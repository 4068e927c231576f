//! `ti-anomali serve --es-url` against a real Elasticsearch (feature `e2e`, run by
//! `cargo xtask e2e`; fails without `ES_URL`), with the real binary and a real HTTP client:
//! signed pushes land in the source data stream and the latest index with the right mappings;
//! deleted and expired indicators leave the latest alias within the sweep interval; two
//! namespaces share one latest document; an indicator-match style query finds each live
//! indicator once; a refused document lands in the dead letter file; and Elasticsearch stopped
//! and restarted under load loses nothing (needs `TI_E2E_ES_RESTART`, the script xtask writes).
//!
//! Every test uses its own namespace and indicator ids: they share one cluster and one alias.

#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]
#![allow(clippy::print_stderr, reason = "the tests report measured figures")]

mod serve_harness;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anomali_agent_input::sign_sha256_hex;
use chrono::Utc;
use serde_json::{Value, json};

const KEY: &str = "serve-es-test-key-0123456789";
const LATEST: &str = "logs-ti_anomali_latest.threatstream";

fn es_url() -> String {
    std::env::var("ES_URL")
        .expect("ES_URL must name the Elasticsearch cluster (cargo xtask e2e sets it)")
}

fn es(method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request =
        reqwest::blocking::Client::new().request(method, format!("{}{path}", es_url()));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().unwrap();
    serde_json::from_slice(&response.bytes().unwrap()).unwrap_or(Value::Null)
}

/// Documents matching `query` in `index`, after a refresh.
fn count(index: &str, query: Value) -> u64 {
    es(reqwest::Method::POST, &format!("/{index}/_refresh"), None);
    let answer = es(
        reqwest::Method::POST,
        &format!("/{index}/_count?ignore_unavailable=true"),
        Some(json!({ "query": query })),
    );
    answer["count"].as_u64().unwrap_or(0)
}

fn shared_dir() -> PathBuf {
    std::env::var_os("TI_ANOMALI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// Polls `check` every 100 ms until it gives a value, at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `ti-anomali serve --es-url`.
struct Serve {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    client: reqwest::blocking::Client,
}

impl Serve {
    fn start(namespace: &str, extra_yaml: &str) -> Self {
        Self::start_with_url(&es_url(), namespace, extra_yaml)
    }

    fn start_with_url(url: &str, namespace: &str, extra_yaml: &str) -> Self {
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
                "es_url: {url}\nnamespace: {namespace}\ndata_dir: {}\n{extra_yaml}webhook:\n  listen_address: 127.0.0.1\n  listen_port: {port}\n  hmac:\n    key: {KEY}\n  ioc_expiration_duration: \"\"\n",
                dir.path().join("data").display()
            ),
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
        let serve = Self {
            child,
            port,
            dir,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        wait_for("serve listening", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        serve
    }

    /// Pushes a signed NDJSON body; the status.
    fn push(&self, body: &[u8]) -> u16 {
        let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), body));
        self.client
            .post(format!("http://127.0.0.1:{}/", self.port))
            .header("content-type", "application/x-ndjson")
            .header("X-Filebeat-Signature", signature)
            .body(body.to_vec())
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), b""));
        self.client
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .header("X-Filebeat-Signature", signature)
            .send()
            .unwrap()
    }

    /// A metric's value from `/_ti/metrics`.
    fn metric(&self, name: &str) -> u64 {
        let text = self.get("/_ti/metrics").text().unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }

    /// Waits until the spool is empty: everything accepted has been answered by Elasticsearch.
    fn wait_until_shipped(&self, limit: Duration) {
        wait_for("the spool drained", limit, || {
            (self.metric("ti_es_spool_entries") == 0).then_some(())
        });
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// SIGTERM, and the exit must be clean.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One indicator line: an IP indicator with `update_id`, and `deleted_at` when given.
fn indicator(id: u64, update_id: u64, ip: &str, deleted_at: Option<&str>) -> String {
    let mut object = json!({
        "id": id, "update_id": update_id, "itype": "mal_ip", "value_type": "ip",
        "srcip": ip, "source": "e2e", "confidence": 80, "severity": "high", "state": "active",
        "date_first": "2026-11-01T00:00:00", "date_last": "2026-12-01T00:00:00"
    });
    if let Some(at) = deleted_at {
        object["deleted_at"] = json!(at);
    }
    object.to_string()
}

fn lines(lines: &[String]) -> Vec<u8> {
    let mut body = lines.join("\n").into_bytes();
    body.push(b'\n');
    body
}

/// A namespace for this run: the minimal distribution has no data stream API to delete the
/// source streams afterwards, so every run writes its own.
fn ns(name: &str) -> String {
    use std::sync::OnceLock;
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{:x}", nanos % 0xffff_ffff)
    });
    format!("{name}{run}")
}

/// An indicator id for this run (the latest index outlives a run on a long-lived cluster).
fn id(n: u64) -> u64 {
    let run = u64::from_str_radix(&ns("")[..], 16).unwrap_or(0);
    (run % 100_000) * 100_000_000 + n
}

fn in_namespace(namespace: &str) -> Value {
    json!({"term": {"data_stream.namespace": namespace}})
}

/// Where the cluster has the data stream API (not the minimal distribution), clean up.
fn delete_source(namespace: &str) {
    es(
        reqwest::Method::DELETE,
        &format!("/_data_stream/logs-ti_anomali.threatstream-{namespace}"),
        None,
    );
}

#[test]
fn the_sample_log_lands_in_the_source_stream_and_the_latest_index() {
    let log =
        std::fs::read(shared_dir().join("conformance/ti_anomali/test-threatstream-ndjson.log"))
            .unwrap();
    let serve = Serve::start(&ns("e2eserve"), "");
    assert_eq!(serve.push(&log), 200);
    serve.wait_until_shipped(Duration::from_secs(60));

    let source = count(
        &format!("logs-ti_anomali.threatstream-{}", ns("e2eserve")),
        json!({"match_all": {}}),
    );
    assert_eq!(
        source, 100,
        "every line of the sample log has its source copy"
    );
    let latest = count(LATEST, in_namespace(&ns("e2eserve")));
    assert_eq!(latest, 97, "97 live, the 3 deleted ones absent");

    let mapping = es(
        reqwest::Method::GET,
        "/logs-ti_anomali_latest.threatstream-2/_mapping",
        None,
    );
    let properties = &mapping["logs-ti_anomali_latest.threatstream-2"]["mappings"]["properties"];
    let indicator = &properties["threat"]["properties"]["indicator"]["properties"];
    assert_eq!(indicator["ip"]["type"], "ip", "{mapping}");
    assert_eq!(indicator["first_seen"]["type"], "date", "{mapping}");
    assert_eq!(
        properties["data_stream"]["properties"]["namespace"]["type"], "keyword",
        "several namespaces share the latest index: {mapping}"
    );
    let source_mapping = es(
        reqwest::Method::GET,
        &format!("/logs-ti_anomali.threatstream-{}/_mapping", ns("e2eserve")),
        None,
    );
    let backing = source_mapping.as_object().unwrap().values().next().unwrap();
    assert_eq!(
        backing["mappings"]["properties"]["threat"]["properties"]["indicator"]["properties"]["ip"]
            ["type"],
        "ip",
        "{source_mapping}"
    );

    let found: Value = serde_json::from_slice(
        &serve
            .get("/_ti/lookup?value=89.160.20.156")
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
        json!({"dataset": "ti_anomali.threatstream", "namespace": ns("e2eserve"), "type": "logs"})
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
    serve.stop();
    delete_source(&ns("e2eserve"));
}

#[test]
fn deleted_and_expired_indicators_leave_the_latest_alias_within_the_sweep_interval() {
    let serve = Serve::start(&ns("e2eexpiry"), "sweep_interval_seconds: 1\n");
    let soon = Utc::now() + chrono::Duration::seconds(6);
    let soon_text = soon.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let body = lines(&[
        indicator(id(7_000_001), 1, "10.70.0.1", None),
        indicator(id(7_000_002), 1, "10.70.0.2", Some(&soon_text)),
    ]);
    assert_eq!(serve.push(&body), 200);
    serve.wait_until_shipped(Duration::from_secs(30));
    let live = |indicator_id: u64| {
        let doc = es(
            reqwest::Method::GET,
            &format!("/{LATEST}/_doc/ti_anomali.threatstream:{indicator_id}"),
            None,
        );
        doc["found"] == json!(true)
    };
    assert!(
        live(id(7_000_001)) && live(id(7_000_002)),
        "both live at first"
    );

    // Deleted upstream: a newer version with deleted_at in the past removes it at once.
    let deleted = lines(&[indicator(
        id(7_000_001),
        2,
        "10.70.0.1",
        Some("2026-01-01T00:00:00.000Z"),
    )]);
    assert_eq!(serve.push(&deleted), 200);
    wait_for(
        "the deleted indicator left",
        Duration::from_secs(10),
        || (!live(id(7_000_001))).then_some(()),
    );

    // Expired: leaves within the sweep interval (1 s) of deleted_at passing.
    wait_for("deleted_at passed", Duration::from_secs(30), || {
        (Utc::now() >= soon).then_some(())
    });
    let gone_at = wait_for(
        "the expired indicator left",
        Duration::from_secs(10),
        || (!live(id(7_000_002))).then(Utc::now),
    );
    let lag = (gone_at - soon).num_milliseconds();
    eprintln!("figure: expired indicator left the latest alias {lag} ms after deleted_at");
    assert!(
        lag <= 2_500,
        "{lag} ms: more than the 1 s sweep interval plus a refresh"
    );
    assert_eq!(
        count(
            &format!("logs-ti_anomali.threatstream-{}", ns("e2eexpiry")),
            json!({"match_all": {}})
        ),
        3,
        "the source keeps every version"
    );
    serve.stop();
    delete_source(&ns("e2eexpiry"));
}

#[test]
fn two_namespaces_share_one_latest_document_per_indicator() {
    let first = Serve::start(&ns("e2ens1"), "");
    let second = Serve::start(&ns("e2ens2"), "");
    assert_eq!(
        first.push(&lines(&[indicator(id(7_100_001), 1, "10.71.0.1", None)])),
        200
    );
    first.wait_until_shipped(Duration::from_secs(30));
    assert_eq!(
        second.push(&lines(&[indicator(id(7_100_001), 2, "10.71.0.1", None)])),
        200
    );
    second.wait_until_shipped(Duration::from_secs(30));
    // A late re-send of the older version through the first namespace changes nothing.
    assert_eq!(
        first.push(&lines(&[indicator(id(7_100_001), 1, "10.71.0.1", None)])),
        200
    );
    first.wait_until_shipped(Duration::from_secs(30));

    let id_query = json!({"term": {"anomali.threatstream.id": id(7_100_001).to_string()}});
    assert_eq!(count(LATEST, id_query.clone()), 1, "one latest document");
    let doc = es(
        reqwest::Method::GET,
        &format!("/{LATEST}/_doc/ti_anomali.threatstream:{}", id(7_100_001)),
        None,
    );
    assert_eq!(
        doc["_source"]["data_stream"]["namespace"],
        json!(ns("e2ens2")),
        "{doc}"
    );
    assert_eq!(doc["_version"], 2, "{doc}");
    assert_eq!(
        count(
            &format!("logs-ti_anomali.threatstream-{}", ns("e2ens1")),
            id_query.clone()
        ),
        2
    );
    assert_eq!(
        count(
            &format!("logs-ti_anomali.threatstream-{}", ns("e2ens2")),
            id_query
        ),
        1
    );
    first.stop();
    second.stop();
    delete_source(&ns("e2ens1"));
    delete_source(&ns("e2ens2"));
}

#[test]
fn an_indicator_match_query_finds_each_live_indicator_exactly_once() {
    let serve = Serve::start(&ns("e2ematch"), "");
    let ips: Vec<String> = (1..=50).map(|n| format!("10.72.0.{n}")).collect();
    let mut body: Vec<String> = ips
        .iter()
        .enumerate()
        .map(|(n, ip)| indicator(id(7_200_000 + n as u64), 1, ip, None))
        .collect();
    // Ten get a newer version, five of those deleted: 45 live in the end.
    for (n, ip) in ips.iter().enumerate().take(10) {
        let deleted = (n < 5).then_some("2026-01-01T00:00:00.000Z");
        body.push(indicator(id(7_200_000 + n as u64), 2, ip, deleted));
    }
    assert_eq!(serve.push(&lines(&body)), 200);
    serve.wait_until_shipped(Duration::from_secs(30));

    let run_ids: Vec<String> = (0..50).map(|n| id(7_200_000 + n).to_string()).collect();
    // What an indicator-match rule runs: the indicator index pattern, without source copies.
    for pattern in ["logs-ti_anomali_latest.*", "logs-ti_anomali*"] {
        es(reqwest::Method::POST, &format!("/{pattern}/_refresh"), None);
        let answer = es(
            reqwest::Method::POST,
            &format!("/{pattern}/_search"),
            Some(json!({
                "size": 1000,
                "_source": ["threat.indicator.ip"],
                "query": {"bool": {
                    "filter": [
                        {"terms": {"threat.indicator.ip": ips}},
                        // This run's indicators only: a long-lived cluster keeps earlier runs'.
                        {"terms": {"anomali.threatstream.id": run_ids}}
                    ],
                    "must_not": [{"term": {"labels.is_ioc_transform_source": "true"}}]
                }}
            })),
        );
        let mut found: Vec<String> = answer["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| {
                hit["_source"]["threat"]["indicator"]["ip"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        found.sort();
        let mut expected: Vec<String> = ips[5..].to_vec();
        expected.sort();
        assert_eq!(
            found, expected,
            "{pattern}: each live indicator once, deleted ones never"
        );
    }
    serve.stop();
    delete_source(&ns("e2ematch"));
}

#[test]
fn a_document_elasticsearch_refuses_lands_in_the_dead_letter_file() {
    let serve = Serve::start(&ns("e2edead"), "");
    let field = "e2e_dead_letter_probe";
    let mut first: Value =
        serde_json::from_str(&indicator(id(7_300_001), 1, "10.73.0.1", None)).unwrap();
    first[field] = json!("a plain string");
    assert_eq!(serve.push(&lines(&[first.to_string()])), 200);
    serve.wait_until_shipped(Duration::from_secs(30));
    // The same field as an object now: Elasticsearch refuses both copies for good.
    let mut second: Value =
        serde_json::from_str(&indicator(id(7_300_002), 1, "10.73.0.2", None)).unwrap();
    second[field] = json!({"nested": 1});
    let third = indicator(id(7_300_003), 1, "10.73.0.3", None);
    assert_eq!(serve.push(&lines(&[second.to_string(), third])), 200);
    serve.wait_until_shipped(Duration::from_secs(30));

    assert_eq!(serve.metric("ti_es_dead_letters_total"), 2);
    let text = std::fs::read_to_string(serve.data_dir().join("dead-letter.ndjson")).unwrap();
    let letters: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 2, "{text}");
    for letter in &letters {
        assert_eq!(letter["status"], 400, "{letter}");
        assert_eq!(
            letter["error"]["type"], "document_parsing_exception",
            "{letter}"
        );
        assert_eq!(
            letter["document"]["anomali"]["threatstream"]["id"],
            json!(id(7_300_002).to_string()),
            "{letter}"
        );
    }
    let by_id = |n: u64| json!({"term": {"anomali.threatstream.id": id(n).to_string()}});
    assert_eq!(count(LATEST, by_id(7_300_001)), 1);
    assert_eq!(
        count(LATEST, by_id(7_300_003)),
        1,
        "the rest of the push landed"
    );
    assert_eq!(count(LATEST, by_id(7_300_002)), 0);
    serve.stop();
    delete_source(&ns("e2edead"));
}

/// Named `restart` so xtask can skip it on a cluster it did not start.
#[test]
fn restart_elasticsearch_under_load_loses_nothing() {
    let script = std::env::var("TI_E2E_ES_RESTART").expect(
        "TI_E2E_ES_RESTART must name the restart script (cargo xtask e2e sets it with the cluster it starts)",
    );
    let serve = Serve::start(&ns("e2erestart"), "");
    let pushes = 80u64;
    let per_push = 250u64;
    let pusher = {
        let port = serve.port;
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut accepted = Vec::new();
            for push in 0..pushes {
                let body = lines(
                    &(0..per_push)
                        .map(|n| {
                            let id = id(8_000_000 + push * per_push + n);
                            indicator(id, 1, &format!("10.80.{}.{}", push, n % 250 + 1), None)
                        })
                        .collect::<Vec<_>>(),
                );
                let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), &body));
                let status = client
                    .post(format!("http://127.0.0.1:{port}/"))
                    .header("content-type", "application/x-ndjson")
                    .header("X-Filebeat-Signature", signature)
                    .body(body)
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                if status == 200 {
                    accepted.push(push);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            accepted
        })
    };
    std::thread::sleep(Duration::from_secs(5));
    let outage = Instant::now();
    let restarted = Command::new(&script).arg("60").status().unwrap();
    assert!(restarted.success(), "the restart script failed");
    eprintln!(
        "figure: elasticsearch was down and back in {:.0} s",
        outage.elapsed().as_secs_f64()
    );
    let accepted = pusher.join().unwrap();
    assert_eq!(
        accepted.len() as u64,
        pushes,
        "the webhook accepts while Elasticsearch is down (the spool takes it)"
    );
    serve.wait_until_shipped(Duration::from_secs(180));
    let total = pushes * per_push;
    assert_eq!(
        count(
            &format!("logs-ti_anomali.threatstream-{}", ns("e2erestart")),
            json!({"match_all": {}})
        ),
        total,
        "every accepted indicator has exactly one source copy"
    );
    assert_eq!(
        count(LATEST, in_namespace(&ns("e2erestart"))),
        total,
        "and one live copy"
    );
    assert_eq!(serve.metric("ti_es_dead_letters_total"), 0);
    assert!(
        serve.metric("ti_es_retries_total") > 0,
        "the outage was felt"
    );
    serve.stop();
    delete_source(&ns("e2erestart"));
}

/// Forwards loopback TCP connections from `listener` to the cluster (a late-starting
/// Elasticsearch, as `serve` sees it). Bounded: at most 200 connections.
fn forward_to_cluster(listener: TcpListener) {
    let target = es_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(client) = stream else { continue };
            let Ok(server) = std::net::TcpStream::connect(&target) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
}

#[test]
fn serve_takes_pushes_before_elasticsearch_answers_and_ships_them_once_it_does() {
    // A port nothing listens on yet: the cluster "starts" later on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let late_url = format!("http://127.0.0.1:{port}");
    let namespace = ns("e2elate");
    let serve = Serve::start_with_url(&late_url, &namespace, "");
    let body = lines(&[
        indicator(id(7_400_001), 1, "10.74.0.1", None),
        indicator(id(7_400_002), 1, "10.74.0.2", None),
    ]);
    assert_eq!(serve.push(&body), 200, "accepted into the spool");
    assert_eq!(serve.metric("ti_es_connected"), 0);
    assert_eq!(serve.metric("ti_es_spool_entries"), 1);

    forward_to_cluster(TcpListener::bind(("127.0.0.1", port)).unwrap());
    wait_for("connected", Duration::from_secs(60), || {
        (serve.metric("ti_es_connected") == 1).then_some(())
    });
    serve.wait_until_shipped(Duration::from_secs(60));
    assert_eq!(count(LATEST, in_namespace(&namespace)), 2);
    serve.stop();
    delete_source(&namespace);
}

/// Both sources at once: the webhook's pushes reach the threatstream indices and the polled
/// Intelligence API objects reach `logs-ti_anomali.intelligence-<ns>` and
/// `logs-ti_anomali_latest.intelligence` with the intelligence field types; a polled indicator
/// leaves the latest alias when its `deletion_scheduled_at` (here its `expiration_ts`) passes, a
/// malformed pass-through number does not cost the indicator, and fetching everything again
/// adds no second source copy.
#[test]
fn polled_intelligence_lands_in_its_own_indices_and_expires_on_deletion_scheduled_at() {
    const INTELLIGENCE: &str = "logs-ti_anomali_latest.intelligence";
    let namespace = ns("e2eintel");
    let soon = Utc::now() + chrono::Duration::seconds(8);
    let soon_text = soon.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let object = |n: u64, update_id: u64, itype: &str, value: &str| {
        json!({"id": id(n), "update_id": update_id, "itype": itype, "value": value,
               "confidence": 90, "tlp": "red", "source": "e2e",
               "created_ts": "2026-11-01T00:00:00Z", "modified_ts": "2026-11-30T00:00:00Z",
               "expiration_ts": "2099-01-01T00:00:00Z", "tags": [{"name": "e2e"}]})
    };
    let mut live_ip = object(8_000_001, 11, "mal_ip", "10.80.0.1");
    live_ip["ip"] = json!("10.80.0.1");
    let mut expiring = object(8_000_002, 12, "mal_domain", "expiring.e2e.example");
    expiring["expiration_ts"] = json!(soon_text);
    let mut odd_number = object(8_000_003, 13, "phish_url", "http://odd.e2e.example/x");
    odd_number["feed_id"] = json!("not a number");
    let api = serve_harness::FakeIntelligenceApi::serving(vec![live_ip, expiring, odd_number]);

    let serve = Serve::start(
        &namespace,
        &format!(
            "sweep_interval_seconds: 1\nintelligence:\n  url: {}\n  username: analyst\n  api_key: e2e-key\n  interval: 1s\n",
            api.url()
        ),
    );
    assert_eq!(
        serve.push(&lines(&[indicator(id(8_000_001), 1, "10.80.0.9", None)])),
        200
    );
    let latest_doc = |alias: &str, dataset: &str, n: u64| {
        es(
            reqwest::Method::GET,
            &format!("/{alias}/_doc/{dataset}:{}", id(n)),
            None,
        )
    };
    wait_for("the polled indicators", Duration::from_secs(60), || {
        [8_000_001, 8_000_002, 8_000_003]
            .iter()
            .all(|n| {
                latest_doc(INTELLIGENCE, "ti_anomali.intelligence", *n)["found"] == json!(true)
            })
            .then_some(())
    });
    wait_for("the pushed indicator", Duration::from_secs(30), || {
        (latest_doc(LATEST, "ti_anomali.threatstream", 8_000_001)["found"] == json!(true))
            .then_some(())
    });

    // The same id in both streams is two indicators; each carries its own dataset.
    let polled = latest_doc(INTELLIGENCE, "ti_anomali.intelligence", 8_000_001);
    assert_eq!(polled["_index"], "logs-ti_anomali_latest.intelligence-3");
    let source = &polled["_source"];
    assert_eq!(source["event"]["dataset"], "ti_anomali.intelligence");
    assert_eq!(source["data_stream"]["namespace"], json!(namespace));
    assert_eq!(source["input"]["type"], "cel");
    assert_eq!(source["threat"]["indicator"]["ip"], "10.80.0.1");
    assert_eq!(source["threat"]["indicator"]["marking"]["tlp"], "RED");
    let pushed = latest_doc(LATEST, "ti_anomali.threatstream", 8_000_001);
    assert_eq!(pushed["_source"]["threat"]["indicator"]["ip"], "10.80.0.9");

    let source_stream = format!("logs-ti_anomali.intelligence-{namespace}");
    assert_eq!(count(&source_stream, json!({"match_all": {}})), 3);
    let mapping = es(
        reqwest::Method::GET,
        "/logs-ti_anomali_latest.intelligence-3/_mapping",
        None,
    );
    let fields = &mapping["logs-ti_anomali_latest.intelligence-3"]["mappings"]["properties"]["anomali"]
        ["properties"]["threatstream"]["properties"];
    assert_eq!(fields["deletion_scheduled_at"]["type"], "date");
    assert_eq!(fields["feed_id"]["type"], "long");
    // The malformed number is kept in _source, not indexed, and costs nothing else.
    let odd = latest_doc(INTELLIGENCE, "ti_anomali.intelligence", 8_000_003);
    assert_eq!(
        odd["_source"]["anomali"]["threatstream"]["feed_id"],
        "not a number"
    );
    assert_eq!(
        count(
            INTELLIGENCE,
            json!({"term": {"threat.indicator.name": "expiring.e2e.example"}})
        ),
        1,
        "indicator-match style queries find the polled indicator"
    );

    // Expiry on deletion_scheduled_at: leaves within the 1 s sweep of the time passing.
    wait_for("expiration_ts passed", Duration::from_secs(30), || {
        (Utc::now() >= soon).then_some(())
    });
    let gone_at = wait_for(
        "the expiring indicator left",
        Duration::from_secs(10),
        || {
            (latest_doc(INTELLIGENCE, "ti_anomali.intelligence", 8_000_002)["found"] != json!(true))
                .then(Utc::now)
        },
    );
    let lag = (gone_at - soon).num_milliseconds();
    eprintln!(
        "figure: polled indicator left the latest alias {lag} ms after deletion_scheduled_at"
    );
    assert!(
        lag <= 2_500,
        "{lag} ms: more than the sweep interval plus a refresh"
    );
    assert_eq!(
        latest_doc(INTELLIGENCE, "ti_anomali.intelligence", 8_000_001)["found"],
        json!(true),
        "the others stay"
    );
    // Polling every second for the whole test re-fetched nothing: the cursor moved past 13.
    assert_eq!(count(&source_stream, json!({"match_all": {}})), 3);
    assert_eq!(serve.metric("ti_es_dead_letters_total"), 0);
    let cursor: Value = serde_json::from_slice(
        &std::fs::read(serve.data_dir().join("intelligence-cursor.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cursor["last_update_id"], 13, "{cursor}");
    serve.stop();

    // A fresh data folder has no cursor, as after losing it: everything is fetched again, and
    // the fixed source ids (id:update_id) keep the source stream free of second copies.
    let again = Serve::start(
        &namespace,
        &format!(
            "intelligence:\n  url: {}\n  username: analyst\n  api_key: e2e-key\n  interval: 1s\n",
            api.url()
        ),
    );
    let cursor = again.data_dir().join("intelligence-cursor.json");
    wait_for("the second run's cursor", Duration::from_secs(30), || {
        std::fs::read_to_string(&cursor)
            .ok()
            .filter(|text| text == "{\"last_update_id\":13}")
    });
    again.wait_until_shipped(Duration::from_secs(30));
    assert_eq!(count(&source_stream, json!({"match_all": {}})), 3);
    assert_eq!(again.metric("ti_es_dead_letters_total"), 0);
    again.stop();
}
