//! Shared by the `serve` tests: the real binary on a loopback port, signed requests to it, and a
//! fake ThreatStream Intelligence API for the poller.

#![allow(dead_code, reason = "each test file uses a part")]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anomali_agent_input::sign_sha256_hex;
use serde_json::Value;

pub const KEY: &str = "serve-test-key-0123456789";

/// A free loopback port (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ti-anomali serve` on the embedded store (unless `extra_yaml` says otherwise);
/// its configuration is `<data_dir>.yml`. Dropped without `stop` or `kill_9` (a failed
/// assertion), the process is killed, so no service outlives its test.
pub struct Service {
    child: Child,
    port: u16,
}

impl Service {
    /// Starts the service and waits (at most 20 s) until it listens on `port`.
    pub fn start(data_dir: &Path, port: u16, extra_yaml: &str) -> Self {
        let config = data_dir.with_extension("yml");
        std::fs::write(
            &config,
            format!("data_dir: {}\nwebhook:\n  listen_address: 127.0.0.1\n  listen_port: {port}\n  hmac:\n    key: {KEY}\n{extra_yaml}", data_dir.display()),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
            .args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let service = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return service;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("serve did not listen on {port} within 20 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGTERM, and the service must exit 0.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exits 0 on SIGTERM: {status}");
    }

    /// SIGKILL: no chance to finish anything; returns once the process is gone.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // After `stop` or `kill_9` the process is already reaped and this does nothing.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A signed NDJSON push; a refused connection counts as 503.
pub fn push(client: &reqwest::blocking::Client, url: &str, body: &[u8]) -> reqwest::StatusCode {
    let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), body));
    client
        .post(url)
        .header("content-type", "application/x-ndjson")
        .header("X-Filebeat-Signature", signature)
        .body(body.to_vec())
        .send()
        .map(|r| r.status())
        .unwrap_or(reqwest::StatusCode::SERVICE_UNAVAILABLE)
}

/// A signed GET; the body as JSON (`null` when it is not).
pub fn get_json(client: &reqwest::blocking::Client, url: &str) -> (reqwest::StatusCode, Value) {
    let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), b""));
    let response = client
        .get(url)
        .header("X-Filebeat-Signature", signature)
        .send()
        .unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_slice(&response.bytes().unwrap()).unwrap_or(Value::Null),
    )
}

pub fn blocking_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One request the fake Intelligence API received.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The path, without the query.
    pub path: String,
    /// The query parameters, percent-decoded.
    pub query: BTreeMap<String, String>,
    /// The `Authorization` header (empty when absent).
    pub authorization: String,
    /// When the request was read.
    pub received: Instant,
    /// When the answer was written out whole, if it was (the client may still have died
    /// before reading it).
    pub answered: Option<Instant>,
}

/// A fake ThreatStream Intelligence API on loopback: one request at a time, each recorded, then
/// answered 200 with the JSON body `answer` gives (`answer` may block, briefly, to stall the
/// poller). Serves at most 2,000 requests and stops when dropped.
pub struct FakeIntelligenceApi {
    port: u16,
    requests: Arc<Mutex<Vec<ApiRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeIntelligenceApi {
    /// Answers 200 with the body `answer` gives.
    pub fn start(mut answer: impl FnMut(&ApiRequest) -> String + Send + 'static) -> Self {
        Self::start_with_status(move |request| (200, answer(request)))
    }

    /// Serves `objects` as the API does: those whose `update_id` is above the request's
    /// `update_id__gt`, in order, at most `limit` of them, `meta.next` set while more remain.
    pub fn serving(objects: Vec<Value>) -> Self {
        Self::start(move |request| {
            let number = |key: &str| request.query.get(key).and_then(|v| v.parse::<u64>().ok());
            let after = number("update_id__gt").unwrap_or(0);
            let limit = number("limit").unwrap_or(1000) as usize;
            let mut newer = objects
                .iter()
                .filter(|o| o["update_id"].as_u64().is_some_and(|u| u > after));
            let page: Vec<&Value> = newer.by_ref().take(limit).collect();
            let next = match newer.next() {
                Some(_) => Value::from("/api/v2/intelligence/?next"),
                None => Value::Null,
            };
            serde_json::json!({"meta": {"next": next, "limit": limit}, "objects": page}).to_string()
        })
    }

    /// Refuses every request with 401, as the API does for a wrong key.
    pub fn start_refusing() -> Self {
        Self::start_with_status(|_| (401, r#"{"message": "invalid api key"}"#.to_owned()))
    }

    /// Answers with the status and JSON body `answer` gives.
    pub fn start_with_status(
        mut answer: impl FnMut(&ApiRequest) -> (u16, String) + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (requests, stop) = (requests.clone(), stop.clone());
            move || {
                let mut served = 0;
                while served < 2000 && !stop.load(Ordering::SeqCst) {
                    let mut stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        Err(_) => continue,
                    };
                    served += 1;
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let Some(request) = read_request(&mut stream) else {
                        continue;
                    };
                    let index = {
                        let mut requests = requests.lock().unwrap();
                        requests.push(request.clone());
                        requests.len() - 1
                    };
                    let (status, body) = answer(&request);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).is_ok() && stream.flush().is_ok() {
                        requests.lock().unwrap()[index].answered = Some(Instant::now());
                    }
                }
            }
        });
        Self {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The base URL, for the `intelligence.url` setting.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeIntelligenceApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads a request head (the fake's requests have no body).
fn read_request(stream: &mut std::net::TcpStream) -> Option<ApiRequest> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.lines().next()?.split(' ').nth(1)?.to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect();
    let authorization = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    Some(ApiRequest {
        path: path.to_owned(),
        query,
        authorization,
        received: Instant::now(),
        answered: None,
    })
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
