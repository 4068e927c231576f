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

/// The templates the sink writes for a minimal cluster are accepted, and a real mapped document
/// (with the fields a stored document carries) indexes into both the source data stream and the
/// latest index with the intended field types.
#[test]
fn the_minimal_templates_hold_a_mapped_document() {
    use anomali_mapping::{MappingSettings, Received, map_indicator};
    use anomali_model::{DocumentRole, EcsDocument, records};
    use anomali_sink_es::Capabilities;
    use anomali_sink_es::Stream;
    use anomali_sink_es::templates::{latest_index, source_index_template};
    const LATEST_INDEX: &str = "logs-ti_anomali_latest.threatstream-2";
    const LATEST_ALIAS: &str = "logs-ti_anomali_latest.threatstream";

    let template = source_index_template(Stream::Threatstream, Capabilities::MINIMAL);
    let (status, answer) = call(
        reqwest::Method::PUT,
        "/_index_template/logs-ti_anomali.threatstream",
        Some(template),
    );
    assert_eq!(status, 200, "{answer}");
    call(reqwest::Method::DELETE, &format!("/{LATEST_INDEX}"), None);
    let (status, answer) = call(
        reqwest::Method::PUT,
        &format!("/{LATEST_INDEX}"),
        Some(latest_index(Stream::Threatstream, Capabilities::MINIMAL)),
    );
    assert_eq!(status, 200, "{answer}");

    let line = br#"{"id": 42, "update_id": 7, "itype": "phish_url", "url": "https://a.example:8443/x.php?q=1", "srcip": "203.0.113.7", "lat": 1.5, "lon": 2.5, "added_at": "2026-12-01T00:00:00", "confidence": 80, "detail": "a,b"}"#;
    let record = records::split(line).next().unwrap().unwrap();
    let received = Received {
        at: "2026-12-01T00:00:00Z".parse().unwrap(),
        original: Some(record.text),
    };
    let settings = MappingSettings {
        preserve_original_event: true,
        ..MappingSettings::integration_defaults()
    };
    let mapped = map_indicator(record.parse().unwrap(), &received, &settings);
    for (role, index) in [
        (DocumentRole::Source, "logs-ti_anomali.threatstream-default"),
        (DocumentRole::Latest, LATEST_ALIAS),
    ] {
        let mut document: EcsDocument = mapped.clone();
        document.stamp(EcsDocument::THREATSTREAM_DATASET, role);
        let body: Value = serde_json::to_value(&document).unwrap();
        let (status, answer) = call(
            reqwest::Method::PUT,
            &format!("/{index}/_create/ti_anomali.threatstream-42?refresh=true"),
            Some(body),
        );
        assert_eq!(status, 201, "{index}: {answer}");
    }
    let (_, mapping) = call(
        reqwest::Method::GET,
        &format!("/{LATEST_INDEX}/_mapping"),
        None,
    );
    let properties = &mapping[LATEST_INDEX]["mappings"]["properties"];
    assert_eq!(
        properties["threat"]["properties"]["indicator"]["properties"]["ip"]["type"],
        "ip"
    );
    assert_eq!(
        properties["threat"]["properties"]["indicator"]["properties"]["geo"]["properties"]["location"]
            ["type"],
        "geo_point"
    );
    assert_eq!(
        properties["anomali"]["properties"]["threatstream"]["properties"]["deleted_at"]["type"],
        "date"
    );
    let (_, found) = call(
        reqwest::Method::POST,
        &format!("/{LATEST_ALIAS}/_search"),
        Some(json!({"query": {"term": {"threat.indicator.ip": "203.0.113.7"}}})),
    );
    assert_eq!(found["hits"]["total"]["value"], 1, "{found}");
    call(
        reqwest::Method::DELETE,
        "/_data_stream/logs-ti_anomali.threatstream-default",
        None,
    );
    call(
        reqwest::Method::DELETE,
        "/_index_template/logs-ti_anomali.threatstream",
        None,
    );
    call(reqwest::Method::DELETE, &format!("/{LATEST_INDEX}"), None);
}

/// The Elasticsearch backend of the latest store passes the same behaviour suite as the embedded
/// one: each check gets fresh indices on the real cluster, set up as the sink sets them up.
mod es_latest_store {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use anomali_sink_es::{
        EsClient, EsLatestStore, IndexNames, Stream, detect_capabilities, ensure_setup,
    };

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    async fn fresh_store() -> EsLatestStore {
        let number = NEXT.fetch_add(1, Ordering::SeqCst);
        let run = std::process::id();
        let client = EsClient::single_node(&super::es_url()).unwrap();
        let capabilities = detect_capabilities(&client).await.unwrap();
        let mut names = IndexNames::new(format!("e2e{run}x{number}"));
        // Each stream's own templates, under indices of this check alone.
        for stream in Stream::ALL {
            let index = format!("ti-e2e-latest-{run}-{number}-{}", stream.dataset());
            let alias = format!("{index}-alias");
            ensure_setup(&client, capabilities, stream, &index, &alias)
                .await
                .unwrap();
            names = names.with_latest_alias(stream, alias);
        }
        EsLatestStore::new(client, names, true)
    }

    anomali_latest_store::latest_store_suite!(fresh_store);
}
