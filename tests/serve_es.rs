//! `ti-anomali serve --es-url` against a real Elasticsearch (feature `e2e`, run by
//! `cargo xtask e2e`; fails without `ES_URL`): the Extension's sample log pushed with HMAC lands
//! in the source data stream and the latest index, and look-ups find the live indicators.

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anomali_agent_input::sign_sha256_hex;
use serde_json::Value;

const KEY: &str = "serve-es-test-key-0123456789";

fn es_url() -> String {
    std::env::var("ES_URL")
        .expect("ES_URL must name the Elasticsearch cluster (cargo xtask e2e sets it)")
}

fn es(method: reqwest::Method, path: &str) -> Value {
    let response = reqwest::blocking::Client::new()
        .request(method, format!("{}{path}", es_url()))
        .send()
        .unwrap();
    serde_json::from_slice(&response.bytes().unwrap()).unwrap_or(Value::Null)
}

fn shared_dir() -> PathBuf {
    std::env::var_os("TI_ANOMALI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

#[test]
fn the_sample_log_lands_in_the_source_stream_and_the_latest_index() {
    let log =
        std::fs::read(shared_dir().join("conformance/ti_anomali/test-threatstream-ndjson.log"))
            .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.yml");
    std::fs::write(
        &config,
        format!(
            "es_url: {}\nnamespace: e2eserve\nwebhook:\n  listen_address: 127.0.0.1\n  listen_port: {port}\n  hmac:\n    key: {KEY}\n  ioc_expiration_duration: \"\"\n",
            es_url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serve did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = reqwest::blocking::Client::new();
    let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), &log));
    let response = client
        .post(format!("http://127.0.0.1:{port}/"))
        .header("content-type", "application/x-ndjson")
        .header("X-Filebeat-Signature", signature)
        .body(log)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);

    es(reqwest::Method::POST, "/_refresh");
    let source = es(
        reqwest::Method::GET,
        "/logs-ti_anomali.threatstream-e2eserve/_count",
    );
    assert_eq!(source["count"], 100, "{source}");
    let latest = es(
        reqwest::Method::GET,
        "/logs-ti_anomali_latest.threatstream/_count",
    );
    assert_eq!(
        latest["count"], 97,
        "97 live, the 3 deleted ones absent: {latest}"
    );
    let mapping = es(
        reqwest::Method::GET,
        "/logs-ti_anomali_latest.threatstream-2/_mapping",
    );
    let indicator = &mapping["logs-ti_anomali_latest.threatstream-2"]["mappings"]["properties"]["threat"]
        ["properties"]["indicator"]["properties"];
    assert_eq!(indicator["ip"]["type"], "ip", "{mapping}");

    let empty = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), b""));
    let found: Value = serde_json::from_slice(
        &client
            .get(format!(
                "http://127.0.0.1:{port}/_ti/lookup?value=89.160.20.156"
            ))
            .header("X-Filebeat-Signature", empty)
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    assert!(!found.as_array().unwrap().is_empty(), "{found}");
    let live = &found[0];
    assert_eq!(live["labels"]["is_ioc_transform_source"], "false");
    // What Fleet-ingested documents carry, so existing queries keep working.
    assert_eq!(
        live["data_stream"],
        serde_json::json!({"dataset": "ti_anomali.threatstream", "namespace": "e2eserve", "type": "logs"})
    );
    assert_eq!(live["event"]["dataset"], "ti_anomali.threatstream");
    assert_eq!(live["event"]["module"], "ti_anomali");
    assert_eq!(live["input"]["type"], "http_endpoint");
    assert_eq!(live["agent"]["type"], "ti-anomali");
    assert!(
        live["event"]["ingested"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{live}"
    );
    assert_eq!(live["threat"]["feed"]["name"], "Anomali ThreatStream");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    es(
        reqwest::Method::DELETE,
        "/_data_stream/logs-ti_anomali.threatstream-e2eserve",
    );
}
