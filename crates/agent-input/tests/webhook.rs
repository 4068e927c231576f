//! The webhook on a loopback port, driven by a real HTTP client: every status, the
//! authentication schemes, gzip, TLS (certificates made here), HTTP/2, keep-alive, concurrency,
//! back-pressure, graceful shutdown, and the Elastic Extension's own sample log.

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

mod pki;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anomali_agent_input::{
    Batch, IndicatorSink, MemorySink, SinkError, WebhookConfig, WebhookServer, sign_sha256_hex,
};
use anomali_mapping::MappingSettings;
use base64::Engine as _;
use pki::Pki;
use reqwest::StatusCode;
use serde_json::Value;

const LINE_1: &str =
    r#"{"id": 1, "itype": "mal_ip", "srcip": "203.0.113.1", "added_at": "2026-01-01T00:00:00"}"#;
const LINE_2: &str = r#"{"id": 2, "itype": "mal_domain", "domain": "bad.example", "added_at": "2026-01-01T00:00:00"}"#;

fn ndjson() -> String {
    format!("{LINE_1}\n{LINE_2}\n")
}

struct Running<S> {
    server: WebhookServer,
    sink: Arc<S>,
    base: String,
}

async fn start_with<S: IndicatorSink>(yaml: &str, sink: Arc<S>) -> Running<S> {
    let yaml = format!("listen_address: 127.0.0.1\nlisten_port: 0\n{yaml}");
    let config = WebhookConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let tls = config.tls.is_some();
    let server = WebhookServer::start(config, MappingSettings::default(), sink.clone())
        .await
        .unwrap();
    let scheme = if tls {
        "https://localhost"
    } else {
        "http://127.0.0.1"
    };
    let base = format!("{scheme}:{}", server.local_addr().port());
    Running { server, sink, base }
}

async fn start(yaml: &str) -> Running<MemorySink> {
    start_with(yaml, Arc::new(MemorySink::default())).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post(
    url: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = client()
        .post(url)
        .header("content-type", "application/x-ndjson")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body expected: {text:?}")),
    )
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn accepted_push_is_mapped_with_the_integration_defaults() {
    let running = start("").await;
    let (status, body) = post(&format!("{}/", running.base), ndjson(), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"message": "success"}));
    let documents = running.sink.documents();
    assert_eq!(documents.len(), 2);
    let first = serde_json::to_value(&documents[0]).unwrap();
    assert_eq!(
        first["tags"],
        serde_json::json!(["forwarded", "anomali-threatstream"])
    );
    assert_eq!(first["threat"]["indicator"]["ip"], "203.0.113.1");
    assert_eq!(
        first["anomali"]["threatstream"]["deleted_at"], "2026-04-01T00:00:00.000Z",
        "90d fail-safe"
    );
    assert_eq!(running.server.metrics().indicators_received(), 2);
    assert_eq!(running.server.metrics().requests(200), 1);
}

#[tokio::test]
async fn method_path_and_trailing_slash() {
    let running = start("url: /hook\n").await;
    let response = client()
        .get(format!("{}/hook", running.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (status, body) = post(&format!("{}/other", running.base), ndjson(), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message(&body), "not found");
    // Both spellings of the path are the same endpoint: no redirect, nothing lost.
    for path in ["/hook", "/hook/"] {
        let (status, _) = post(&format!("{}{path}", running.base), ndjson(), &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    assert_eq!(running.sink.documents().len(), 4);
}

#[tokio::test]
async fn content_type_is_compared_without_parameters() {
    let running = start("").await;
    let url = format!("{}/", running.base);
    let send = |content_type: &'static str| {
        let url = url.clone();
        async move {
            client()
                .post(url)
                .header("content-type", content_type)
                .body(ndjson())
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        send("application/x-ndjson; charset=utf-8").await,
        StatusCode::OK
    );
    assert_eq!(send("Application/X-NDJSON").await, StatusCode::OK);
    assert_eq!(
        send("application/json").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let response = client().post(&url).body(ndjson()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let any_type = start("content_type: \"\"\n").await;
    let response = client()
        .post(format!("{}/", any_type.base))
        .header("content-type", "text/plain")
        .body(ndjson())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn hmac_signatures_in_hex_and_base64() {
    let running = start("hmac:\n  key: a-long-random-key\n").await;
    let url = format!("{}/", running.base);
    let body = ndjson();
    let hex_signature = sign_sha256_hex(b"a-long-random-key", body.as_bytes());
    let raw = hex::decode(&hex_signature).unwrap();
    let base64_signature = base64::engine::general_purpose::STANDARD.encode(raw);

    for signature in [
        format!("sha256={hex_signature}"),
        format!("sha256={base64_signature}"),
    ] {
        let (status, _) = post(&url, body.clone(), &[("X-Filebeat-Signature", &signature)]).await;
        assert_eq!(status, StatusCode::OK, "{signature}");
    }
    let (status, reply) = post(&url, body.clone(), &[]).await;
    assert_eq!(
        (status, message(&reply)),
        (StatusCode::UNAUTHORIZED, "missing HMAC header")
    );
    let (status, reply) = post(&url, body.clone(), &[("X-Filebeat-Signature", "")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&reply).contains("empty header value"), "{reply}");
    let tampered = format!("{body}{LINE_1}\n");
    let (status, reply) = post(
        &url,
        tampered,
        &[("X-Filebeat-Signature", &format!("sha256={hex_signature}"))],
    )
    .await;
    assert_eq!(
        (status, message(&reply)),
        (StatusCode::UNAUTHORIZED, "invalid HMAC signature")
    );
    let short = format!("sha256={}", &hex_signature[..40]);
    let (status, _) = post(&url, body.clone(), &[("X-Filebeat-Signature", &short)]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a wrong-length signature is refused"
    );
    assert_eq!(
        running.sink.documents().len(),
        4,
        "only the two signed pushes got through"
    );
    assert_eq!(running.server.metrics().requests(401), 4);
}

#[tokio::test]
async fn secret_header_and_basic_auth() {
    let running = start("secret:\n  header: X-Secret\n  value: s3cr3t-value\n").await;
    let url = format!("{}/", running.base);
    assert_eq!(
        post(&url, ndjson(), &[("X-Secret", "s3cr3t-value")])
            .await
            .0,
        StatusCode::OK
    );
    let (status, reply) = post(&url, ndjson(), &[("X-Secret", "wrong")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        !reply.to_string().contains("s3cr3t"),
        "no secret in the answer"
    );

    let running = start("basic_auth: true\nusername: pusher\npassword: pa55-word\n").await;
    let url = format!("{}/", running.base);
    let good = client()
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .basic_auth("pusher", Some("pa55-word"))
        .body(ndjson())
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    let bad = client()
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .basic_auth("pusher", Some("nope"))
        .body(ndjson())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn gzip_bodies_and_their_limits() {
    let running = start("max_body_bytes: 100000\nhmac:\n  key: gzip-key-123\n").await;
    let url = format!("{}/", running.base);
    let compressed = gzip(ndjson().as_bytes());
    // The signature covers the body as received, i.e. compressed.
    let signature = format!("sha256={}", sign_sha256_hex(b"gzip-key-123", &compressed));
    for encoding in ["gzip", "x-gzip"] {
        let (status, _) = post(
            &url,
            compressed.clone(),
            &[
                ("content-encoding", encoding),
                ("X-Filebeat-Signature", &signature),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{encoding}");
    }
    let (status, _) = post(
        &url,
        compressed.clone(),
        &[
            ("content-encoding", "br"),
            ("X-Filebeat-Signature", &signature),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let bomb = gzip(&vec![b' '; 50_000_000]);
    let signature = format!("sha256={}", sign_sha256_hex(b"gzip-key-123", &bomb));
    let (status, reply) = post(
        &url,
        bomb,
        &[
            ("content-encoding", "gzip"),
            ("X-Filebeat-Signature", &signature),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");

    let garbage = b"this is not gzip".to_vec();
    let signature = format!("sha256={}", sign_sha256_hex(b"gzip-key-123", &garbage));
    let (status, _) = post(
        &url,
        garbage,
        &[
            ("content-encoding", "gzip"),
            ("X-Filebeat-Signature", &signature),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(running.sink.documents().len(), 4);
}

#[tokio::test]
async fn bodies_empty_malformed_oversized_and_the_accepted_framings() {
    let running = start("max_body_bytes: 1000\n").await;
    let url = format!("{}/", running.base);
    let (status, reply) = post(&url, "", &[]).await;
    assert_eq!(
        (status, message(&reply)),
        (StatusCode::NOT_ACCEPTABLE, "body cannot be empty")
    );

    let malformed = format!("{LINE_1}\n{{\"id\": 3, \"itype\": }}\n{LINE_2}\n");
    let (status, reply) = post(&url, malformed, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&reply).contains("line 2 column 20"), "{reply}");
    assert!(
        running.sink.documents().is_empty(),
        "all or nothing: nothing from a bad request"
    );

    let (status, reply) = post(&url, "x".repeat(1001), &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");

    let array = format!("[{LINE_1},{LINE_2}]");
    assert_eq!(post(&url, array, &[]).await.0, StatusCode::OK);
    let concatenated = format!("{LINE_1}{LINE_2}");
    assert_eq!(post(&url, concatenated, &[]).await.0, StatusCode::OK);
    assert_eq!(post(&url, LINE_1, &[]).await.0, StatusCode::OK);
    assert_eq!(post(&url, "[]", &[]).await.0, StatusCode::OK);
    assert_eq!(running.sink.documents().len(), 5);
    let (status, reply) = post(&url, "[1, 2]", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&reply).contains("expected a JSON object"),
        "{reply}"
    );
}

/// Takes `delay` to make a batch durable.
#[derive(Debug)]
struct SlowSink {
    delay: Duration,
    inner: MemorySink,
}

impl IndicatorSink for SlowSink {
    async fn deliver(&self, batch: Batch) -> Result<(), SinkError> {
        tokio::time::sleep(self.delay).await;
        self.inner.deliver(batch).await
    }
}

#[tokio::test]
async fn wait_for_completion_timeout() {
    let sink = Arc::new(SlowSink {
        delay: Duration::from_millis(400),
        inner: MemorySink::default(),
    });
    let running = start_with("", sink).await;
    let base = &running.base;
    let (status, reply) = post(
        &format!("{base}/?wait_for_completion_timeout=50ms"),
        ndjson(),
        &[],
    )
    .await;
    assert_eq!(
        (status, message(&reply)),
        (
            StatusCode::GATEWAY_TIMEOUT,
            "could not publish event within timeout"
        )
    );
    let (status, _) = post(
        &format!("{base}/?wait_for_completion_timeout=5s"),
        ndjson(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = post(
        &format!("{base}/?wait_for_completion_timeout=soon"),
        ndjson(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, reply) = post(&format!("{base}/?debug=1"), ndjson(), &[]).await;
    assert_eq!(
        (status, message(&reply)),
        (StatusCode::BAD_REQUEST, "unexpected URL query: debug")
    );
}

/// Never finishes a batch until released: holds request bodies in flight.
#[derive(Debug, Default)]
struct BlockingSink {
    entered: AtomicUsize,
    release: tokio::sync::Notify,
}

impl IndicatorSink for BlockingSink {
    async fn deliver(&self, _batch: Batch) -> Result<(), SinkError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.release.notified().await;
        Ok(())
    }
}

#[tokio::test]
async fn back_pressure_answers_503_with_retry_after() {
    let sink = Arc::new(BlockingSink::default());
    let running = start_with(
        "max_body_bytes: 600\nmax_in_flight_bytes: 600\nretry_after: 7\n",
        sink.clone(),
    )
    .await;
    let url = format!("{}/", running.base);
    let body = format!("{LINE_1}\n{LINE_1}\n{LINE_1}\n{LINE_1}\n");
    assert!(body.len() > 300 && body.len() <= 600);
    let first = tokio::spawn({
        let (url, body) = (url.clone(), body.clone());
        async move { post(&url, body, &[]).await.0 }
    });
    for _ in 0..200 {
        if sink.entered.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        sink.entered.load(Ordering::SeqCst),
        1,
        "the first request reached the sink"
    );
    let response = client()
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "7");
    sink.release.notify_one();
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    // Released budget: the next one goes through.
    let next = tokio::spawn({
        let url = url.clone();
        async move { post(&url, body, &[]).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sink.release.notify_one();
    assert_eq!(next.await.unwrap(), StatusCode::OK);
}

#[tokio::test]
async fn keep_alive_and_concurrent_clients() {
    let running = start("").await;
    let url = format!("{}/", running.base);
    let shared_client = client();
    for _ in 0..200 {
        let response = shared_client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(ndjson())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = client();
            for _ in 0..25 {
                let response = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(ndjson())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(running.sink.documents().len(), 2 * (200 + 8 * 25));
}

#[tokio::test]
async fn http2_cleartext_with_prior_knowledge() {
    let running = start("").await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/", running.base))
        .header("content-type", "application/x-ndjson")
        .body(ndjson())
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
}

fn tls_client(pki: &Pki, with_identity: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap());
    if with_identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(pki.client_identity_pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn tls_with_http2_and_client_certificates() {
    let pki = Pki::make();
    let dir = pki.dir.path().display();
    let running = start(&format!(
        "ssl:\n  enabled: true\n  certificate: {dir}/server.pem\n  key: {dir}/server.key\n"
    ))
    .await;
    let response = tls_client(&pki, false)
        .post(format!("{}/", running.base))
        .header("content-type", "application/x-ndjson")
        .body(ndjson())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2"
    );
    let plain = client()
        .post(format!(
            "http://127.0.0.1:{}/",
            running.server.local_addr().port()
        ))
        .body(ndjson())
        .send()
        .await;
    assert!(
        plain.is_err() || plain.unwrap().status() != StatusCode::OK,
        "plain HTTP is not served on a TLS port"
    );

    let mutual = start(&format!(
        "ssl:\n  enabled: true\n  certificate: {dir}/server.pem\n  key: {dir}/server.key\n  certificate_authorities: [{dir}/ca.pem]\n  client_authentication: required\n"
    ))
    .await;
    let url = format!("{}/", mutual.base);
    let without = tls_client(&pki, false)
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body(ndjson())
        .send()
        .await;
    assert!(without.is_err(), "no client certificate, no connection");
    let with = tls_client(&pki, true)
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body(ndjson())
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::OK);
    assert_eq!(mutual.sink.documents().len(), 2);
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let sink = Arc::new(SlowSink {
        delay: Duration::from_millis(300),
        inner: MemorySink::default(),
    });
    let running = start_with("", sink.clone()).await;
    let url = format!("{}/", running.base);
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move { post(&url, ndjson(), &[]).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.server.shutdown(Duration::from_secs(5)).await;
    assert_eq!(in_flight.await.unwrap(), StatusCode::OK);
    assert_eq!(sink.inner.documents().len(), 2);
    let after = client()
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body(ndjson())
        .send()
        .await;
    assert!(after.is_err(), "no new connections after shutdown");
}

#[tokio::test]
async fn preserve_original_event_keeps_each_raw_line() {
    let running = start("preserve_original_event: true\ntags: [team-a]\n").await;
    assert_eq!(
        post(&format!("{}/", running.base), ndjson(), &[]).await.0,
        StatusCode::OK
    );
    let documents: Vec<Value> = running
        .sink
        .documents()
        .iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    assert_eq!(documents[0]["event"]["original"], LINE_1);
    assert_eq!(documents[1]["event"]["original"], LINE_2);
    assert_eq!(
        documents[0]["tags"],
        serde_json::json!(["preserve_original_event", "team-a"])
    );
}

#[tokio::test]
async fn the_elastic_extension_sample_log_is_accepted_whole() {
    let shared = std::env::var_os("TI_ANOMALI_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        });
    let path = shared.join("conformance/ti_anomali/test-threatstream-ndjson.log");
    let log = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; ../shared must sit beside the repository",
            path.display()
        )
    });
    let running = start("hmac:\n  key: TheSecret\nioc_expiration_duration: 5d\n").await;
    let signature = format!("sha256={}", sign_sha256_hex(b"TheSecret", &log));
    let (status, _) = post(
        &format!("{}/", running.base),
        log,
        &[("X-Filebeat-Signature", &signature)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let documents: Vec<Value> = running
        .sink
        .documents()
        .iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    assert_eq!(documents.len(), 100);
    assert!(
        documents.iter().all(|d| d["event"]["kind"] == "enrichment"),
        "every indicator mapped cleanly"
    );
    assert_eq!(
        documents[0]["anomali"]["threatstream"]["deleted_at"],
        "2020-10-13T12:22:11.000Z"
    );
}

/// A client that stalls (headers never finished, or a body that stops) is cut after
/// `read_timeout` and releases its share of the in-flight budget.
#[tokio::test]
async fn stalled_clients_are_cut_after_the_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let running = start("read_timeout: 1\nmax_body_bytes: 1000\nmax_in_flight_bytes: 1000\n").await;
    let address = running.server.local_addr();

    // Headers never finished: the connection is closed.
    let mut idle = tokio::net::TcpStream::connect(address).await.unwrap();
    idle.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut buffer)).await;
    assert!(closed.is_ok(), "the server closed the connection");

    // A body that stops: 408, and the budget it held is free again.
    let mut stalled = tokio::net::TcpStream::connect(address).await.unwrap();
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 900\r\n\r\n{\"id\":")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (status, _) = post(&format!("{}/", running.base), ndjson(), &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the stalled request released the budget"
    );
}
