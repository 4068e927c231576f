//! The Intelligence API poller against a fake ThreatStream API on loopback, written here from
//! the documented request and response shapes: the exact query sent, paging on `meta.next`,
//! the cursor after each page, `Retry-After`, refused credentials, malformed pages, slow answers,
//! and a crash between pages that neither skips nor loses a page; and TLS (a private CA, a
//! required client certificate, `verification_mode`) against the same fake over HTTPS.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod pki;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anomali_agent_input::SinkError;
use anomali_agent_input::poll::{
    ObjectSink, PollConfig, PollStatus, PollTls, Poller, TlsVerification,
};
use chrono::{DateTime, Utc};
use pki::Pki;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One scripted answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn page(ids: &[u64], more: bool) -> Answer {
    let objects: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id * 10, "update_id": id, "value": format!("10.0.0.{id}"), "itype": "mal_ip"}))
        .collect();
    let next = if more {
        json!("/api/v2/intelligence/?next")
    } else {
        Value::Null
    };
    Answer {
        status: 200,
        headers: vec![],
        body: json!({"meta": {"next": next, "limit": 1000}, "objects": objects}).to_string(),
        delay: Duration::ZERO,
    }
}

fn status(code: u16) -> Answer {
    Answer {
        status: code,
        headers: vec![],
        body: "{\"message\":\"scripted\"}".to_owned(),
        delay: Duration::ZERO,
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: HashMap<String, String>,
    authorization: String,
    at: Instant,
}

/// Serves the script in order (the last answer repeats); records each request.
async fn fake_api(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    fake_api_over(script, None).await
}

/// As [`fake_api`], over TLS when `tls` is given (then the URL names `localhost`); a failed
/// handshake is not a request and serves nothing.
async fn fake_api_over(
    script: Vec<Answer>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = match tls {
        Some(_) => format!("https://localhost:{port}"),
        None => format!("http://127.0.0.1:{port}"),
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut served = 0usize;
        for _ in 0..200usize {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let answer = script[served.min(script.len() - 1)].clone();
            let answered = match &tls {
                None => answer_one(stream, answer, &log).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => answer_one(stream, answer, &log).await,
                    Err(_) => false,
                },
            };
            served += usize::from(answered);
        }
    });
    (url, seen)
}

/// Reads one request, records it and writes `answer`; false when no request came.
async fn answer_one(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    answer: Answer,
    log: &Mutex<Vec<Seen>>,
) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => break,
            Ok(read) => head.extend_from_slice(&byte[..read]),
        }
    }
    if head.is_empty() {
        return false;
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let target = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect();
    let authorization = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    log.lock().unwrap().push(Seen {
        path: path.to_owned(),
        query,
        authorization,
        at: Instant::now(),
    });
    tokio::time::sleep(answer.delay).await;
    let mut response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (name, value) in &answer.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&answer.body);
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    true
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Keeps what it accepts; refuses while `refusing` is set, or once it holds `refuse_from`
/// objects (a pipeline that dies after a page).
#[derive(Default)]
struct MemorySink {
    objects: Mutex<Vec<Map<String, Value>>>,
    refusing: Mutex<bool>,
    refuse_from: Mutex<Option<usize>>,
}

impl ObjectSink for MemorySink {
    async fn accept(
        &self,
        objects: Vec<Map<String, Value>>,
        _at: DateTime<Utc>,
    ) -> Result<(), SinkError> {
        let full = self
            .refuse_from
            .lock()
            .unwrap()
            .is_some_and(|n| self.objects.lock().unwrap().len() >= n);
        if *self.refusing.lock().unwrap() || full {
            return Err(SinkError::Unavailable("scripted refusal".to_owned()));
        }
        self.objects.lock().unwrap().extend(objects);
        Ok(())
    }
}

impl MemorySink {
    fn update_ids(&self) -> Vec<u64> {
        self.objects
            .lock()
            .unwrap()
            .iter()
            .map(|o| o["update_id"].as_u64().unwrap())
            .collect()
    }
}

fn config(url: &str) -> PollConfig {
    PollConfig {
        url: url.to_owned(),
        username: "analyst@example.com".to_owned(),
        api_key: "s3cr3t-key".to_owned(),
        interval: "1s".to_owned(),
        http_client_timeout: "2s".to_owned(),
        page_size: 2,
        ..PollConfig::default()
    }
}

/// Runs a poller until `until` holds (or 20 s pass), then stops it.
async fn run_until(
    poller: Poller,
    sink: Arc<MemorySink>,
    until: impl Fn(&Arc<MemorySink>, &PollStatus) -> bool,
) -> (Result<(), anomali_agent_input::poll::PollError>, PollStatus) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (status_tx, mut status_rx) = watch::channel(PollStatus::Starting);
    let task = tokio::spawn({
        let sink = sink.clone();
        async move { poller.run(&*sink, stop_rx, status_tx).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut finished = None;
    let mut task = task;
    while Instant::now() < deadline {
        let status = status_rx.borrow_and_update().clone();
        if until(&sink, &status) {
            break;
        }
        if task.is_finished() {
            finished = Some((&mut task).await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = status_rx.borrow().clone();
    let _ = stop_tx.send(true);
    let result = match finished {
        Some(result) => result,
        None => tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap(),
    };
    (result, status)
}

#[tokio::test]
async fn pages_follow_meta_next_then_the_cursor_with_the_exact_query() {
    let (url, seen) = fake_api(vec![
        page(&[5, 6], true),
        page(&[9], false),
        page(&[], false),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("cursor.json");
    let poller = Poller::new(config(&url), &cursor).unwrap();
    let sink = Arc::new(MemorySink::default());
    let before = Utc::now();
    let (result, _) = run_until(poller, sink.clone(), |_, _| seen_count(&seen) >= 3).await;
    assert!(result.is_ok());
    assert_eq!(sink.update_ids(), vec![5, 6, 9], "in order, nothing twice");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/api/v2/intelligence/");
    assert_eq!(
        seen[0].authorization,
        "apikey analyst@example.com:s3cr3t-key"
    );
    let first = &seen[0].query;
    assert_eq!(first["order_by"], "update_id");
    assert_eq!(first["limit"], "2");
    assert!(!first.contains_key("update_id__gt"), "no cursor yet");
    assert!(!first.contains_key("remote_api") && !first.contains_key("q"));
    let lag: DateTime<Utc> = first["modified_ts__lt"].parse().unwrap();
    let window: DateTime<Utc> = first["modified_ts__gt"].parse().unwrap();
    assert!(
        (before - chrono::Duration::minutes(1) - lag)
            .num_seconds()
            .abs()
            <= 2
    );
    assert!(
        (before - chrono::Duration::hours(24) - window)
            .num_seconds()
            .abs()
            <= 2
    );
    // meta.next was set: the second request came at once, after the first page's last id.
    assert_eq!(seen[1].query["update_id__gt"], "6");
    assert!(!seen[1].query.contains_key("modified_ts__gt"));
    assert!(seen[1].at - seen[0].at < Duration::from_millis(900));
    // The last page had no next: the third waited the interval and asked after 9.
    assert_eq!(seen[2].query["update_id__gt"], "9");
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(900));
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap(),
        "{\"last_update_id\":9}"
    );
}

fn seen_count(seen: &Arc<Mutex<Vec<Seen>>>) -> usize {
    seen.lock().unwrap().len()
}

#[tokio::test]
async fn a_429_waits_its_retry_after_and_a_slow_answer_times_out_and_is_retried() {
    let mut too_many = status(429);
    too_many.headers.push(("retry-after", "2".to_owned()));
    let mut slow = page(&[1], false);
    slow.delay = Duration::from_secs(4);
    let (url, seen) = fake_api(vec![too_many, slow, page(&[1], false)]).await;
    let dir = tempfile::tempdir().unwrap();
    let poller = Poller::new(config(&url), &dir.path().join("cursor.json")).unwrap();
    let sink = Arc::new(MemorySink::default());
    let (result, _) = run_until(poller, sink.clone(), |s, _| !s.update_ids().is_empty()).await;
    assert!(result.is_ok());
    assert_eq!(
        sink.update_ids(),
        vec![1],
        "the slow answer was dropped, not applied"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(2),
        "Retry-After honoured: {:?}",
        seen[1].at - seen[0].at
    );
}

#[tokio::test]
async fn refused_credentials_stop_polling_with_a_clear_message() {
    let (url, seen) = fake_api(vec![status(401)]).await;
    let dir = tempfile::tempdir().unwrap();
    let poller = Poller::new(config(&url), &dir.path().join("cursor.json")).unwrap();
    let sink = Arc::new(MemorySink::default());
    let (result, status) = run_until(poller, sink, |_, _| false).await;
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("credentials") && error.contains("401"),
        "{error}"
    );
    assert!(
        matches!(status, PollStatus::Failed(ref m) if m.contains("api_key")),
        "{status:?}"
    );
    assert!(!error.contains("s3cr3t"));
    assert_eq!(seen_count(&seen), 1, "no retries with refused credentials");
}

/// A proxy answering 407, to CONNECT (an https API) and to a proxied GET (an http API), stops
/// polling as refused API credentials do: retrying cannot fix a wrong password.
#[tokio::test]
async fn a_proxy_refusing_its_credentials_stops_polling_and_names_proxy_url() {
    for api in ["https://api.example.invalid", "http://api.example.invalid"] {
        let (proxy, seen) = fake_api(vec![status(407)]).await;
        let config = PollConfig {
            proxy_url: Some(proxy.replace("http://", "http://puser:PROXYPASS@")),
            ..config(api)
        };
        let dir = tempfile::tempdir().unwrap();
        let poller = Poller::new(config, &dir.path().join("cursor.json")).unwrap();
        let (result, status) =
            run_until(poller, Arc::new(MemorySink::default()), |_, _| false).await;
        let error = result.unwrap_err().to_string();
        assert!(
            error.contains("407") && error.contains("proxy_url"),
            "{api}: {error}"
        );
        assert!(matches!(status, PollStatus::Failed(_)), "{api}: {status:?}");
        assert!(!error.contains("PROXYPASS"), "{error}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{api}: no retries: {seen:?}");
        assert!(seen[0].path.contains("api.example.invalid"), "{seen:?}");
    }
}

/// A proxy that does not answer is retried, and the reason says the request went through it
/// (without its password).
#[tokio::test]
async fn an_unreachable_proxy_is_named_in_the_reason_without_its_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = PollConfig {
        proxy_url: Some(format!("puser:PROXYPASS@127.0.0.1:{closed}")),
        ..config("https://api.example.invalid")
    };
    let reason = poll_once(config).await.unwrap_err();
    assert!(
        reason.contains(&format!("through proxy_url http://127.0.0.1:{closed}/")),
        "{reason}"
    );
    assert!(!reason.contains("PROXYPASS"), "{reason}");
}

#[tokio::test]
async fn a_malformed_page_applies_nothing_and_names_the_position() {
    let broken = Answer {
        status: 200,
        headers: vec![],
        body: "{\"meta\":{\"next\":null},\"objects\":[{\"update_id\":3},".to_owned(),
        delay: Duration::ZERO,
    };
    let (url, _seen) = fake_api(vec![broken]).await;
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("cursor.json");
    let poller = Poller::new(config(&url), &cursor).unwrap();
    let sink = Arc::new(MemorySink::default());
    let (_, status) = run_until(poller, sink.clone(), |_, s| {
        matches!(s, PollStatus::Degraded(_))
    })
    .await;
    assert!(
        matches!(&status, PollStatus::Degraded(m) if m.contains("line 1 column")),
        "{status:?}"
    );
    assert!(sink.update_ids().is_empty());
    assert!(!cursor.exists(), "the cursor did not move");
}

#[tokio::test]
async fn a_crash_between_pages_re_fetches_and_never_skips() {
    // First run: page 1 is accepted, then the pipeline refuses page 2 and the process dies.
    let (url, seen) = fake_api(vec![
        page(&[1, 2], true),
        page(&[3, 4], true),
        page(&[5], false),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("cursor.json");
    let sink = Arc::new(MemorySink::default());
    *sink.refuse_from.lock().unwrap() = Some(2);
    let poller = Poller::new(config(&url), &cursor).unwrap();
    let (_, _) = run_until(poller, sink.clone(), move |_, _| seen_count(&seen) >= 2).await;
    assert_eq!(sink.update_ids(), vec![1, 2]);
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap(),
        "{\"last_update_id\":2}"
    );

    // Restart: the same cursor file; it asks after 2 and gets page 2 again.
    let (url, seen) = fake_api(vec![
        page(&[3, 4], true),
        page(&[5], false),
        page(&[], false),
    ])
    .await;
    *sink.refuse_from.lock().unwrap() = None;
    let poller = Poller::new(config(&url), &cursor).unwrap();
    assert_eq!(poller.cursor(), Some(2));
    let (_, _) = run_until(poller, sink.clone(), |s, _| s.update_ids().len() >= 5).await;
    assert_eq!(seen.lock().unwrap()[0].query["update_id__gt"], "2");
    assert_eq!(
        sink.update_ids(),
        vec![1, 2, 3, 4, 5],
        "nothing skipped, nothing twice"
    );
}

/// An empty page that still says there is more cannot move the cursor: the poller waits the
/// interval instead of asking for the same page again in a tight loop.
#[tokio::test]
async fn an_empty_page_with_meta_next_waits_the_interval() {
    let (url, seen) = fake_api(vec![page(&[], true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let poller = Poller::new(config(&url), &dir.path().join("cursor.json")).unwrap();
    let sink = Arc::new(MemorySink::default());
    let (result, _) = run_until(poller, sink.clone(), |_, _| seen_count(&seen) >= 3).await;
    assert!(result.is_ok());
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{} requests", seen.len());
    for pair in seen.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "asked again after {:?}",
            pair[1].at - pair[0].at
        );
    }
    assert!(sink.update_ids().is_empty());
}

/// An error answer is quoted in the status cut at 300 characters, between characters: a body
/// with multi-byte characters there is no panic, and polling goes on.
#[tokio::test]
async fn an_error_body_with_multi_byte_characters_is_cut_safely_and_retried() {
    let mut not_found = status(404);
    not_found.body = format!("{}{}", "a".repeat(299), "é".repeat(20));
    let (url, seen) = fake_api(vec![not_found, page(&[4], false)]).await;
    let dir = tempfile::tempdir().unwrap();
    let poller = Poller::new(config(&url), &dir.path().join("cursor.json")).unwrap();
    let sink = Arc::new(MemorySink::default());
    let (result, _) = run_until(poller, sink.clone(), |s, _| !s.update_ids().is_empty()).await;
    assert!(result.is_ok());
    assert_eq!(sink.update_ids(), vec![4]);
    assert!(seen_count(&seen) >= 2);
}

/// An API that ignores `update_id__gt` and serves a page at or below the cursor, with
/// `meta.next` set: the page is refused (the cursor never moves back), and the poller backs off
/// instead of asking again at once.
#[tokio::test]
async fn a_page_that_does_not_move_past_the_cursor_is_refused_without_a_tight_loop() {
    let (url, seen) = fake_api(vec![page(&[5, 6], true), page(&[5, 6], true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("cursor.json");
    let poller = Poller::new(config(&url), &cursor).unwrap();
    let sink = Arc::new(MemorySink::default());
    let (_, status) = run_until(poller, sink.clone(), |_, _| seen_count(&seen) >= 3).await;
    assert!(
        matches!(&status, PollStatus::Degraded(m) if m.contains("not after the cursor 6")),
        "{status:?}"
    );
    assert_eq!(sink.update_ids(), vec![5, 6], "applied once");
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap(),
        "{\"last_update_id\":6}"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen[2].at - seen[1].at >= Duration::from_millis(400),
        "backed off: {:?}",
        seen[2].at - seen[1].at
    );
}

/// An answer larger than 64 MiB is not held in memory: it is reported and retried.
#[tokio::test]
async fn an_answer_larger_than_64_mib_is_refused_and_retried() {
    let huge = Answer {
        status: 200,
        headers: vec![],
        body: " ".repeat((64 << 20) + 1),
        delay: Duration::ZERO,
    };
    let (url, seen) = fake_api(vec![huge, page(&[8], false)]).await;
    let dir = tempfile::tempdir().unwrap();
    let poller = Poller::new(config(&url), &dir.path().join("cursor.json")).unwrap();
    let sink = Arc::new(MemorySink::default());
    let (_, status) = run_until(poller, sink.clone(), |_, s| {
        matches!(s, PollStatus::Degraded(_))
    })
    .await;
    assert!(
        matches!(&status, PollStatus::Degraded(m) if m.contains("larger than 64 MiB")),
        "{status:?}"
    );
    assert!(sink.update_ids().is_empty());
    assert!(seen_count(&seen) >= 1);
}

// ---------------------------------------------------------------------------------------------
// TLS: the `ssl` block (CAs as paths or inline PEM, a client certificate, verification_mode).

/// A TLS acceptor with the `localhost` certificate; with `mutual`, client certificates signed
/// by the CA are required.
fn acceptor(pki: &Pki, mutual: bool) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if mutual {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(pki.file("ca.pem")).unwrap())
            .unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let chain = CertificateDer::pem_file_iter(pki.file("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.file("server.key")).unwrap();
    let config = builder.with_single_cert(chain, key).unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Polls once: the objects taken, or the reason the poll was retried.
async fn poll_once(config: PollConfig) -> Result<Vec<u64>, String> {
    let dir = tempfile::tempdir().unwrap();
    let poller = Poller::new(config, &dir.path().join("cursor.json")).unwrap();
    let sink = Arc::new(MemorySink::default());
    let (result, status) = run_until(poller, sink.clone(), |sink, status| {
        !sink.update_ids().is_empty() || matches!(status, PollStatus::Degraded(_))
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    match status {
        PollStatus::Degraded(reason) => Err(reason),
        _ => Ok(sink.update_ids()),
    }
}

#[tokio::test]
async fn https_needs_the_ca_and_the_client_certificate_an_api_asks_for() {
    let pki = Pki::make();
    let (url, seen) = fake_api_over(vec![page(&[1, 2], false)], Some(acceptor(&pki, true))).await;
    let ca_file = pki.file("ca.pem");

    let untrusted = poll_once(config(&url)).await.unwrap_err();
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");
    let without_identity = poll_once(PollConfig {
        ssl: PollTls {
            certificate_authorities: vec![ca_file.clone()],
            ..PollTls::default()
        },
        ..config(&url)
    })
    .await
    .unwrap_err();
    assert!(
        without_identity.contains("CertificateRequired"),
        "{without_identity}"
    );
    assert!(seen.lock().unwrap().is_empty(), "no request got through");

    // The CA inline, the certificate as a path, the key inline: as the agent hands them over.
    let key_pem = std::fs::read_to_string(pki.file("client.key")).unwrap();
    let with_identity = PollConfig {
        ssl: PollTls {
            certificate_authorities: vec![pki.ca_pem.clone()],
            certificate: Some(pki.file("client.pem")),
            key: Some(key_pem.clone()),
            ..PollTls::default()
        },
        ..config(&url)
    };
    assert!(
        !format!("{with_identity:?}").contains(key_pem.lines().nth(1).unwrap()),
        "the inline key is not in Debug"
    );
    assert_eq!(poll_once(with_identity).await.unwrap(), vec![1, 2]);
    assert_eq!(
        seen.lock().unwrap()[0].authorization,
        "apikey analyst@example.com:s3cr3t-key"
    );
}

#[tokio::test]
async fn verification_mode_certificate_skips_the_name_and_none_skips_everything() {
    let pki = Pki::make();
    let (url, _) = fake_api_over(vec![page(&[7], false)], Some(acceptor(&pki, false))).await;
    // The certificate names localhost; asked as 127.0.0.1 the name does not match.
    let by_address = url.replace("localhost", "127.0.0.1");
    let ca_file = pki.file("ca.pem");
    let with_ca = |mode| PollConfig {
        ssl: PollTls {
            certificate_authorities: vec![ca_file.clone()],
            verification_mode: mode,
            ..PollTls::default()
        },
        ..config(&by_address)
    };
    // The old top-level key still trusts the CA.
    let top_level = PollConfig {
        certificate_authorities: vec![ca_file.clone().into()],
        ..config(&url)
    };
    assert_eq!(poll_once(top_level).await.unwrap(), vec![7]);
    let mismatch = poll_once(with_ca(TlsVerification::Full)).await.unwrap_err();
    assert!(mismatch.contains("not valid for name"), "{mismatch}");
    assert_eq!(
        poll_once(with_ca(TlsVerification::Certificate))
            .await
            .unwrap(),
        vec![7]
    );
    let any = PollConfig {
        ssl: PollTls {
            verification_mode: TlsVerification::None,
            ..PollTls::default()
        },
        ..config(&by_address)
    };
    assert_eq!(poll_once(any).await.unwrap(), vec![7]);
}

#[test]
fn a_bad_client_certificate_or_key_is_named_before_polling() {
    let pki = Pki::make();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not pem at all\n").unwrap();
    let client_pem = pki.file("client.pem");
    let client_key = pki.file("client.key");
    for (certificate, key, named) in [
        (
            garbage.display().to_string(),
            client_key.clone(),
            "ssl.certificate",
        ),
        (client_pem.clone(), garbage.display().to_string(), "ssl.key"),
        (
            client_pem.clone(),
            "/nonexistent/client.key".to_owned(),
            "ssl.key",
        ),
        (
            client_pem.clone(),
            pki.file("server.key"),
            "ssl.key: does not belong to the first certificate of ssl.certificate",
        ),
    ] {
        let config = PollConfig {
            ssl: PollTls {
                certificate: Some(certificate.clone()),
                key: Some(key.clone()),
                ..PollTls::default()
            },
            ..config("https://127.0.0.1:9")
        };
        let error = Poller::new(config, &dir.path().join("cursor.json"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(named), "{certificate} + {key}: {error}");
    }
}
