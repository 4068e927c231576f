//! End-to-end checks of the index layout the sink keeps on a real Elasticsearch (feature `e2e`,
//! run by `cargo xtask e2e`): the upgrade of the latest index from older versions, and source
//! retention where the cluster has neither ILM nor the data stream lifecycle.
//! `ES_URL` must name the cluster: without it these tests fail, they never pass vacuously.
//!
//! Every index, alias, template and data stream is named for this file (`wta-e2e-…`, namespace
//! `wtaretention`) and, where a name could clash between runs, for the process. What a test
//! creates it deletes, except what the minimal cluster cannot delete (see the retention test).

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

use anomali_sink_es::templates::{latest_index, source_index_template};
use anomali_sink_es::{
    Capabilities, EsClient, RetentionMode, Stream, apply_source_retention, detect_capabilities,
    enforce_source_retention, ensure_setup, retention_mode, upgrade_latest_index,
};
use chrono::{Duration, Utc};
use serde_json::{Value, json};

fn es_url() -> String {
    std::env::var("ES_URL")
        .expect("ES_URL must name the Elasticsearch cluster (cargo xtask e2e sets it)")
}

fn client() -> EsClient {
    EsClient::single_node(&es_url()).unwrap()
}

/// A raw call, independent of the code under test.
async fn call(method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", es_url()));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn bulk(lines: &[Value]) {
    let mut body = String::new();
    for line in lines {
        body.push_str(&line.to_string());
        body.push('\n');
    }
    let response = reqwest::Client::new()
        .post(format!("{}/_bulk?refresh=true", es_url()))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], json!(false), "{answer}");
}

/// Deletes the indices when dropped, also when the test fails (on its own thread: the blocking
/// client must not run inside the test's runtime).
struct DeleteOnDrop(Vec<String>);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let url = es_url();
        let indices = std::mem::take(&mut self.0);
        let _ = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for index in indices {
                let _ = client.delete(format!("{url}/{index}")).send();
            }
        })
        .join();
    }
}

/// Names for one upgrade test: the alias, the older version `-1` and the current `-2`.
struct Layout {
    alias: String,
    old: String,
    current: String,
}

fn layout(test: &str) -> (Layout, DeleteOnDrop) {
    let base = format!("wta-e2e-latest-{}-{test}", std::process::id());
    let layout = Layout {
        old: format!("{base}-1"),
        current: format!("{base}-2"),
        alias: base,
    };
    let guard = DeleteOnDrop(vec![layout.old.clone(), layout.current.clone()]);
    (layout, guard)
}

async fn capabilities() -> Capabilities {
    detect_capabilities(&client()).await.unwrap()
}

/// Creates the older version with the latest index's mapping and `alias` as given.
async fn create_old(layout: &Layout, alias: Value) {
    let mut body = latest_index(Stream::Threatstream, capabilities().await);
    body["aliases"] = alias;
    let (status, answer) = call(
        reqwest::Method::PUT,
        &format!("/{}", layout.old),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

fn indicator(id: u64, update_id: Option<u64>, marker: &str) -> Value {
    let mut threatstream = json!({"id": id.to_string()});
    if let Some(update_id) = update_id {
        threatstream["update_id"] = json!(update_id.to_string());
    }
    json!({
        "@timestamp": "2026-12-01T00:00:00Z",
        "event": {"dataset": "ti_anomali.threatstream", "kind": "enrichment"},
        "anomali": {"threatstream": threatstream},
        "threat": {"indicator": {"ip": format!("203.0.113.{}", id % 250), "type": "ipv4-addr"}},
        "marker": marker,
    })
}

fn sink_id(id: u64) -> String {
    format!("ti_anomali.threatstream:{id}")
}

async fn alias_holders(alias: &str) -> Value {
    call(reqwest::Method::GET, &format!("/_alias/{alias}"), None)
        .await
        .1
}

async fn count(target: &str) -> u64 {
    let (status, answer) = call(reqwest::Method::GET, &format!("/{target}/_count"), None).await;
    assert_eq!(status, 200, "{answer}");
    answer["count"].as_u64().unwrap()
}

async fn exists(index: &str) -> bool {
    call(reqwest::Method::HEAD, &format!("/{index}"), None)
        .await
        .0
        == 200
}

async fn source_of(target: &str, id: &str) -> Value {
    let (status, answer) = call(reqwest::Method::GET, &format!("/{target}/_doc/{id}"), None).await;
    assert_eq!(status, 200, "{id}: {answer}");
    answer["_source"].clone()
}

/// Asserts the alias is on the current index only, as its write index.
async fn assert_alias_on_current_only(layout: &Layout) {
    let holders = alias_holders(&layout.alias).await;
    assert_eq!(
        holders,
        json!({&layout.current: {"aliases": {&layout.alias: {"is_write_index": true}}}}),
    );
}

/// Asserts no indicator id appears twice behind the alias.
async fn assert_one_copy_per_indicator(alias: &str) {
    let query = json!({"size": 0, "aggs": {"twice": {"terms": {
        "field": "anomali.threatstream.id", "min_doc_count": 2, "size": 10
    }}}});
    let (status, answer) = call(
        reqwest::Method::POST,
        &format!("/{alias}/_search"),
        Some(query),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["aggregations"]["twice"]["buckets"],
        json!([]),
        "{answer}"
    );
}

/// The reference's `-1` holds the alias and 32 documents: 20 under the sink's ids, 10 under
/// transform-style hash ids, one expired, one without update id. The new `-2` already has
/// newer versions of 5 of them and an older one of a sixth.
#[tokio::test]
async fn an_older_version_holding_the_alias_is_folded_into_the_current_one() {
    let (layout, _guard) = layout("aliased");
    create_old(&layout, json!({&layout.alias: {}})).await;
    let mut lines = Vec::new();
    for id in 1..=30 {
        let document_id = if id <= 20 {
            sink_id(id)
        } else {
            format!("transformHash{id}")
        };
        lines.push(json!({"create": {"_index": &layout.old, "_id": document_id}}));
        lines.push(indicator(id, Some(id * 10), "old"));
    }
    let mut expired = indicator(31, Some(310), "old");
    expired["anomali"]["threatstream"]["deleted_at"] = json!("2020-01-01T00:00:00Z");
    lines.push(json!({"create": {"_index": &layout.old, "_id": sink_id(31)}}));
    lines.push(expired);
    lines.push(json!({"create": {"_index": &layout.old, "_id": sink_id(32)}}));
    lines.push(indicator(32, None, "old"));
    bulk(&lines).await;

    let client = client();
    ensure_setup(
        &client,
        capabilities().await,
        Stream::Threatstream,
        &layout.current,
        &layout.alias,
    )
    .await
    .unwrap();
    // Written by the sink after the new version appeared: external versions = update ids.
    let mut lines = Vec::new();
    for (id, update_id, marker) in [
        (1, 15, "new"),
        (2, 25, "new"),
        (3, 35, "new"),
        (4, 45, "new"),
        (5, 55, "new"),
        (6, 55, "stale"),
    ] {
        lines.push(
            json!({"index": {"_index": &layout.current, "_id": sink_id(id),
            "version": update_id, "version_type": "external_gte"}}),
        );
        lines.push(indicator(id, Some(update_id), marker));
    }
    bulk(&lines).await;

    let report = upgrade_latest_index(&client, &layout.alias, &layout.current)
        .await
        .unwrap();
    assert_eq!(report.migrated, [layout.old.as_str()], "{report:?}");
    // 6..=30 and 32; 1..=5 were newer in the current index.
    assert_eq!(
        (report.copied, report.already_current, report.refused),
        (26, 5, 0),
        "{report:?}"
    );
    assert!(report.aliases_updated);
    assert!(report.kept.is_empty() && report.foreign_alias_holders.is_empty());

    assert!(!exists(&layout.old).await, "the older version is deleted");
    assert_alias_on_current_only(&layout).await;
    assert_eq!(count(&layout.alias).await, 31);
    assert_one_copy_per_indicator(&layout.alias).await;
    for id in 1..=5 {
        let source = source_of(&layout.alias, &sink_id(id)).await;
        assert_eq!(source["marker"], "new", "{source}");
    }
    // The older version had the newer update of indicator 6: it wins, as in the sink.
    let six = source_of(&layout.alias, &sink_id(6)).await;
    assert_eq!(
        (&six["marker"], &six["anomali"]["threatstream"]["update_id"]),
        (&json!("old"), &json!("60"))
    );
    // Hash ids from the transform are re-keyed to the sink's, which later updates them.
    for id in 21..=30 {
        source_of(&layout.alias, &sink_id(id)).await;
    }
    let (_, answer) = call(
        reqwest::Method::GET,
        &format!("/{}/_doc/{}", layout.alias, sink_id(31)),
        None,
    )
    .await;
    assert_eq!(answer["found"], json!(false), "expired: not copied");

    let again = upgrade_latest_index(&client, &layout.alias, &layout.current)
        .await
        .unwrap();
    assert!(again.is_noop(), "{again:?}");
    assert_eq!(count(&layout.alias).await, 31);
    assert_alias_on_current_only(&layout).await;
}

#[tokio::test]
async fn an_older_version_without_the_alias_is_folded_in_too() {
    let (layout, _guard) = layout("unaliased");
    create_old(&layout, json!({})).await;
    let mut lines = Vec::new();
    for id in 1..=10 {
        lines.push(json!({"create": {"_index": &layout.old, "_id": sink_id(id)}}));
        lines.push(indicator(id, Some(id), "old"));
    }
    bulk(&lines).await;
    let client = client();
    ensure_setup(
        &client,
        capabilities().await,
        Stream::Threatstream,
        &layout.current,
        &layout.alias,
    )
    .await
    .unwrap();

    let report = upgrade_latest_index(&client, &layout.alias, &layout.current)
        .await
        .unwrap();
    assert_eq!(report.migrated, [layout.old.as_str()], "{report:?}");
    assert_eq!((report.copied, report.already_current), (10, 0));
    assert!(!exists(&layout.old).await);
    assert_alias_on_current_only(&layout).await;
    assert_eq!(count(&layout.alias).await, 10);

    let again = upgrade_latest_index(&client, &layout.alias, &layout.current)
        .await
        .unwrap();
    assert!(again.is_noop(), "{again:?}");
    assert_eq!(count(&layout.alias).await, 10);
}

/// Our own next upgrade (`-2` to `-3`): the older version is the alias's explicit write index,
/// so the new index cannot be created with the alias; setup creates it without, the upgrade
/// moves the alias.
#[tokio::test]
async fn the_alias_moves_from_an_older_explicit_write_index() {
    let (layout, _guard) = layout("writer");
    create_old(&layout, json!({&layout.alias: {"is_write_index": true}})).await;
    bulk(&[
        json!({"create": {"_index": &layout.old, "_id": sink_id(1)}}),
        indicator(1, Some(1), "old"),
    ])
    .await;
    let client = client();
    ensure_setup(
        &client,
        capabilities().await,
        Stream::Threatstream,
        &layout.current,
        &layout.alias,
    )
    .await
    .unwrap();
    assert!(exists(&layout.current).await);
    let holders = alias_holders(&layout.alias).await;
    assert!(holders.get(&layout.current).is_none(), "{holders}");

    let report = upgrade_latest_index(&client, &layout.alias, &layout.current)
        .await
        .unwrap();
    assert_eq!(report.migrated, [layout.old.as_str()], "{report:?}");
    assert!(!exists(&layout.old).await);
    assert_alias_on_current_only(&layout).await;
    assert_eq!(count(&layout.alias).await, 1);
}

/// A document the current mapping refuses: the older version loses the alias but is kept, so
/// nothing is lost; a rerun changes nothing more.
#[tokio::test]
async fn an_older_version_with_refused_documents_is_kept_without_the_alias() {
    let (layout, _guard) = layout("refused");
    let ip_as_keyword = json!({"mappings": {"properties": {"threat": {"properties": {
        "indicator": {"properties": {"ip": {"type": "keyword"}}}}}}},
        "aliases": {&layout.alias: {}}});
    let (status, answer) = call(
        reqwest::Method::PUT,
        &format!("/{}", layout.old),
        Some(ip_as_keyword),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let mut bad = indicator(2, Some(2), "old");
    bad["threat"]["indicator"]["ip"] = json!("not an address");
    bulk(&[
        json!({"create": {"_index": &layout.old, "_id": sink_id(1)}}),
        indicator(1, Some(1), "old"),
        json!({"create": {"_index": &layout.old, "_id": sink_id(2)}}),
        bad,
    ])
    .await;
    let client = client();
    ensure_setup(
        &client,
        capabilities().await,
        Stream::Threatstream,
        &layout.current,
        &layout.alias,
    )
    .await
    .unwrap();

    let report = upgrade_latest_index(&client, &layout.alias, &layout.current)
        .await
        .unwrap();
    assert_eq!(report.kept, [layout.old.as_str()], "{report:?}");
    assert!(report.migrated.is_empty());
    assert_eq!((report.copied, report.refused), (1, 1), "{report:?}");
    assert!(report.first_refusal.is_some());
    assert!(exists(&layout.old).await, "kept for inspection");
    assert_alias_on_current_only(&layout).await;
    assert_eq!(count(&layout.alias).await, 1);

    let again = upgrade_latest_index(&client, &layout.alias, &layout.current)
        .await
        .unwrap();
    assert_eq!(
        (again.copied, again.already_current, again.refused),
        (0, 1, 1)
    );
    assert!(!again.aliases_updated);
    assert_eq!(count(&layout.alias).await, 1);
}

/// Two instances starting at once (or a rerun racing a crash's leftovers): both succeed and the
/// layout is the same as after one.
#[tokio::test]
async fn two_upgrades_at_once_end_in_the_same_layout() {
    let (layout, _guard) = layout("concurrent");
    create_old(&layout, json!({&layout.alias: {}})).await;
    let mut lines = Vec::new();
    // More than two pages, so the runs overlap.
    for id in 1..=1200 {
        lines.push(json!({"create": {"_index": &layout.old, "_id": sink_id(id)}}));
        lines.push(indicator(id, Some(id), "old"));
    }
    bulk(&lines).await;
    let client = client();
    ensure_setup(
        &client,
        capabilities().await,
        Stream::Threatstream,
        &layout.current,
        &layout.alias,
    )
    .await
    .unwrap();

    let (first, second) = tokio::join!(
        upgrade_latest_index(&client, &layout.alias, &layout.current),
        upgrade_latest_index(&client, &layout.alias, &layout.current),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.refused + second.refused, 0);
    assert!(first.copied + second.copied >= 1200, "{first:?} {second:?}");
    assert!(!exists(&layout.old).await);
    assert_alias_on_current_only(&layout).await;
    assert_eq!(count(&layout.alias).await, 1200);
    assert_one_copy_per_indicator(&layout.alias).await;
}

#[tokio::test]
async fn the_minimal_cluster_gets_self_managed_retention() {
    let capabilities = capabilities().await;
    assert!(!capabilities.ilm && !capabilities.data_stream_lifecycle);
    assert_eq!(retention_mode(&capabilities), RetentionMode::SelfManaged);
    let stream = format!("logs-wta_e2e_absent-{}", std::process::id());
    let mode = apply_source_retention(&client(), &capabilities, &stream, Duration::days(5))
        .await
        .unwrap();
    assert_eq!(mode, RetentionMode::SelfManaged);
    let report = enforce_source_retention(&client(), &stream, Duration::days(5), Utc::now())
        .await
        .unwrap();
    assert!(report.missing, "{report:?}");
}

/// The data stream this test keeps is fixed (not per run): the minimal cluster has no
/// `DELETE _data_stream`, and a data stream's write index cannot be deleted, so each run leaves
/// it with one empty write index (and its template, which Elasticsearch keeps while the stream
/// uses it); a fixed name means one leftover in all, which the next run reuses.
const RETENTION_STREAM: &str = "logs-ti_anomali.threatstream-wtaretention";
const RETENTION_TEMPLATE: &str = "wta-e2e-retention";

#[tokio::test]
async fn self_managed_retention_deletes_old_backing_indices_but_never_the_write_index() {
    // The sink's template for this cluster, for this test's data stream only (a higher
    // priority than the sink's own, which matches every namespace).
    let mut template = source_index_template(
        Stream::Threatstream,
        Capabilities {
            ilm: false,
            ..capabilities().await
        },
    );
    template["index_patterns"] = json!([format!("{RETENTION_STREAM}*")]);
    template["priority"] = json!(300);
    let (status, answer) = call(
        reqwest::Method::PUT,
        &format!("/_index_template/{RETENTION_TEMPLATE}"),
        Some(template),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let write = |marker: &'static str| async move {
        let (status, answer) = call(
            reqwest::Method::POST,
            &format!("/{RETENTION_STREAM}/_doc?refresh=true"),
            Some(json!({"@timestamp": Utc::now().to_rfc3339(), "message": marker})),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
    };
    write("first").await;
    let (status, answer) = call(
        reqwest::Method::POST,
        &format!("/{RETENTION_STREAM}/_rollover"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    write("second").await;

    let client = client();
    let retention = Duration::days(5);
    let now = Utc::now();
    let young = enforce_source_retention(&client, RETENTION_STREAM, retention, now)
        .await
        .unwrap();
    assert!(
        young.deleted.is_empty() && young.rolled_over_to.is_none(),
        "{young:?}"
    );

    // Two days on: the write index is due and holds a document, so it is rolled over; nothing
    // is past five days yet.
    let later = enforce_source_retention(
        &client,
        RETENTION_STREAM,
        retention,
        now + Duration::days(2),
    )
    .await
    .unwrap();
    let rolled = later.rolled_over_to.clone().expect("rolled over");
    assert_eq!(later.write_index.as_deref(), Some(rolled.as_str()));
    assert!(later.deleted.is_empty(), "{later:?}");

    // Six days on: every index but the (empty, so not rolled over) write index is past.
    let (_, resolved) = call(
        reqwest::Method::GET,
        &format!("/_resolve/index/{RETENTION_STREAM}"),
        None,
    )
    .await;
    let before: Vec<String> =
        serde_json::from_value(resolved["data_streams"][0]["backing_indices"].clone()).unwrap();
    assert!(before.len() >= 3, "{before:?}");
    let past = enforce_source_retention(
        &client,
        RETENTION_STREAM,
        retention,
        now + Duration::days(6),
    )
    .await
    .unwrap();
    assert_eq!(past.rolled_over_to, None, "an empty write index stays");
    assert_eq!(past.write_index.as_deref(), Some(rolled.as_str()));
    assert_eq!(past.deleted, before[..before.len() - 1], "{past:?}");
    let (_, resolved) = call(
        reqwest::Method::GET,
        &format!("/_resolve/index/{RETENTION_STREAM}"),
        None,
    )
    .await;
    assert_eq!(
        resolved["data_streams"][0]["backing_indices"],
        json!([rolled]),
        "{resolved}"
    );
    assert!(exists(&rolled).await, "the write index is never deleted");
    // Far in the future too.
    let far = enforce_source_retention(
        &client,
        RETENTION_STREAM,
        retention,
        now + Duration::days(400),
    )
    .await
    .unwrap();
    assert!(
        far.deleted.is_empty() && far.rolled_over_to.is_none(),
        "{far:?}"
    );
    assert!(exists(&rolled).await);

    // Where the cluster can (the data-streams module), remove everything; on the minimal one
    // these answer an error and the empty write index stays (see RETENTION_STREAM).
    let (status, _) = call(
        reqwest::Method::DELETE,
        &format!("/_data_stream/{RETENTION_STREAM}"),
        None,
    )
    .await;
    if status == 200 {
        call(
            reqwest::Method::DELETE,
            &format!("/_index_template/{RETENTION_TEMPLATE}"),
            None,
        )
        .await;
    }
}
