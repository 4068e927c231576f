//! End-to-end checks against a real Elasticsearch, run by `cargo xtask e2e` (feature `e2e`).
//! `ES_URL` must name the cluster: without it these tests fail, they never pass vacuously.
//!
//! For now they pin what the cluster the harness starts offers, which the Elasticsearch sink
//! (sink-es, the next issue) must detect and work with: data streams are there; ILM and the
//! `constant_keyword` field type are not.

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

use serde_json::{Value, json};

fn es_url() -> String {
    std::env::var("ES_URL")
        .expect("ES_URL must name the Elasticsearch cluster (cargo xtask e2e sets it)")
}

fn call(method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut request = client.request(method, format!("{}{path}", es_url()));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().unwrap()).unwrap_or(Value::Null),
    )
}

#[test]
fn the_cluster_is_up_and_is_9x() {
    let (status, health) = call(reqwest::Method::GET, "/_cluster/health", None);
    assert_eq!(status, 200);
    assert!(
        matches!(health["status"].as_str(), Some("green" | "yellow")),
        "{health}"
    );
    let (_, nodes) = call(
        reqwest::Method::GET,
        "/_nodes?filter_path=nodes.*.version",
        None,
    );
    let version = nodes["nodes"].as_object().unwrap().values().next().unwrap()["version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(version.starts_with("9."), "{version}");
}

#[test]
fn data_streams_work_on_the_minimal_distribution() {
    let template = json!({
        "index_patterns": ["logs-ti_e2e_probe-*"],
        "data_stream": {},
        "template": {"mappings": {"properties": {"@timestamp": {"type": "date"}}}}
    });
    assert_eq!(
        call(
            reqwest::Method::PUT,
            "/_index_template/ti-e2e-probe",
            Some(template)
        )
        .0,
        200
    );
    let (status, created) = call(
        reqwest::Method::POST,
        "/logs-ti_e2e_probe-default/_create/probe-1",
        Some(json!({"@timestamp": "2026-12-01T00:00:00Z"})),
    );
    assert_eq!(status, 201, "{created}");
    assert!(
        created["_index"]
            .as_str()
            .unwrap()
            .starts_with(".ds-logs-ti_e2e_probe-default-"),
        "{created}"
    );
    call(
        reqwest::Method::DELETE,
        "/_data_stream/logs-ti_e2e_probe-default",
        None,
    );
    call(
        reqwest::Method::DELETE,
        "/_index_template/ti-e2e-probe",
        None,
    );
}

#[test]
fn ilm_and_constant_keyword_are_absent_so_the_sink_must_fall_back() {
    let (status, _) = call(reqwest::Method::GET, "/_ilm/policy", None);
    assert!(
        status == 400 || status == 404 || status == 405,
        "ILM answered {status}"
    );
    let mapping = json!({"mappings": {"properties": {"c": {"type": "constant_keyword"}}}});
    let (status, error) = call(
        reqwest::Method::PUT,
        "/ti-e2e-probe-constant",
        Some(mapping),
    );
    assert_eq!(status, 400, "{error}");
    assert!(error.to_string().contains("constant_keyword"), "{error}");
}
