//! The spool and the shipper against a scripted fake Elasticsearch on loopback: what is retried,
//! what is dead-lettered, when the spool refuses. (That shipping really works is proven against
//! a real cluster by `cargo xtask e2e`.)

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anomali_latest_store::{LatestStore, StoreError};
use anomali_model::EcsDocument;
use anomali_sink_es::{
    DeadLetterFile, EsClient, EsLatestStore, IndexNames, ShipperConfig, ShippingStore, Spool,
    Stream,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request the fake received: path and the decompressed body.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    body: String,
}

/// Answers each request with the next scripted `(status, body)`; the last one repeats. A body
/// `"ITEMS:<status>,<status>..."` answers one item per action line of the request with those
/// statuses in turn (the last repeats).
async fn fake_es(script: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut served = 0usize;
        // Bounded: a test never needs more.
        while served < 200 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            // One request per connection (Connection: close): simple and enough.
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 65536];
            let (head, body_start, length) = loop {
                let Ok(n) = stream.read(&mut chunk).await else {
                    break (String::new(), 0, 0);
                };
                if n == 0 {
                    break (String::new(), 0, 0);
                }
                buffer.extend_from_slice(&chunk[..n]);
                if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    break (head, end + 4, length);
                }
            };
            while buffer.len() < body_start + length {
                let Ok(n) = stream.read(&mut chunk).await else {
                    break;
                };
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            let raw = &buffer[body_start.min(buffer.len())..];
            let body = if head.to_ascii_lowercase().contains("content-encoding: gzip") {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(
                    &mut flate2::read::GzDecoder::new(raw),
                    &mut text,
                );
                text
            } else {
                String::from_utf8_lossy(raw).to_string()
            };
            let path = head
                .lines()
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .unwrap_or("")
                .to_owned();
            let (status, answer) = script[served.min(script.len() - 1)].clone();
            served += 1;
            let (status, answer) = if answer == "POISON" {
                // Refuses a whole request that holds the word, like Elasticsearch refusing a
                // request for one unparsable action.
                if body.contains("poison") {
                    (
                        400,
                        "{\"error\":{\"type\":\"illegal_argument_exception\"}}".to_owned(),
                    )
                } else {
                    (200, items_answer(&body, "201"))
                }
            } else {
                match answer.strip_prefix("ITEMS:") {
                    Some(statuses) => (status, items_answer(&body, statuses)),
                    None => (status, answer),
                }
            };
            log.lock().unwrap().push(Seen { path, body });
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, seen)
}

fn items_answer(body: &str, statuses: &str) -> String {
    let statuses: Vec<u16> = statuses.split(',').map(|s| s.parse().unwrap()).collect();
    let mut items = Vec::new();
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        let action: Value = serde_json::from_str(line).unwrap();
        let kind = action.as_object().unwrap().keys().next().unwrap().clone();
        if kind != "delete" {
            lines.next();
        }
        let status = statuses[items.len().min(statuses.len() - 1)];
        let mut result = json!({"status": status});
        if status >= 300 {
            result["error"] = json!({"type": if status == 400 {"document_parsing_exception"} else {"es_rejected_execution_exception"}, "reason": "scripted"});
        }
        items.push(json!({ kind: result }));
    }
    let errors = statuses.iter().any(|s| *s >= 300);
    json!({"errors": errors, "items": items}).to_string()
}

fn indicator_document(id: u64) -> EcsDocument {
    indicator_from(id, "e2e")
}

fn indicator_from(id: u64, source: &str) -> EcsDocument {
    let line = format!(
        "{{\"id\":{id},\"update_id\":1,\"itype\":\"mal_ip\",\"srcip\":\"10.9.0.{}\",\"value_type\":\"ip\",\"source\":\"{source}\"}}",
        id % 250 + 1
    );
    let record = anomali_model::records::split(line.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let indicator = record.parse().unwrap();
    let settings = anomali_mapping::MappingSettings {
        ioc_expiration: None,
        ..anomali_mapping::MappingSettings::default()
    };
    anomali_mapping::map_indicator(
        indicator,
        &anomali_mapping::Received {
            at: chrono::Utc::now(),
            original: None,
        },
        &settings,
    )
}

fn fast_retries() -> ShipperConfig {
    ShipperConfig {
        flush_interval: Duration::from_millis(10),
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        ..ShipperConfig::default()
    }
}

struct Harness {
    store: ShippingStore,
    dead_letters: Arc<DeadLetterFile>,
    _dir: tempfile::TempDir,
}

async fn harness(url: &str, spool_max: u64, config: ShipperConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool.redb"), spool_max).unwrap();
    let dead_letters = Arc::new(DeadLetterFile::open(&dir.path().join("dead.ndjson")).unwrap());
    let reader = EsLatestStore::new(
        EsClient::single_node(url).unwrap(),
        IndexNames::new("test").with_latest_alias(Stream::Threatstream, "latest"),
        false,
    );
    Harness {
        store: ShippingStore::start(reader, spool, dead_letters.clone(), config).await,
        dead_letters,
        _dir: dir,
    }
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_refused_request_is_retried_then_items_are_classified() {
    // 429 for the whole request, then: source create 201, latest index 503 (retried), second
    // document's source 400 (dead letter), its latest 201; then the retried item succeeds.
    let (url, seen) = fake_es(vec![
        (429, "{\"error\":\"too many requests\"}".to_owned()),
        (200, "ITEMS:201,503,400,201".to_owned()),
        (200, "ITEMS:200".to_owned()),
    ])
    .await;
    let h = harness(&url, 1 << 20, fast_retries()).await;
    let report = h
        .store
        .apply(
            EcsDocument::THREATSTREAM_DATASET,
            vec![indicator_document(1), indicator_document(2)],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(report.queued, 2);
    wait_until("the spool drained", || h.store.spool().entries() == 0).await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[0].path.starts_with("/_bulk"));
    assert_eq!(
        seen[0].body, seen[1].body,
        "a refused request is resent whole"
    );
    assert_eq!(
        seen[2].body.lines().count(),
        2,
        "only the 503 item is resent: {}",
        seen[2].body
    );
    assert!(seen[2].body.starts_with("{\"index\""), "{}", seen[2].body);
    let letters = std::fs::read_to_string(h.dead_letters.path()).unwrap();
    let letters: Vec<Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["status"], 400);
    assert_eq!(letters[0]["error"]["type"], "document_parsing_exception");
    assert_eq!(letters[0]["document"]["anomali"]["threatstream"]["id"], "2");
    let counters = h.store.counters();
    assert_eq!(
        counters
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        counters.retries.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    h.store.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn replayed_source_copies_already_there_count_as_done() {
    // 409 on a create: the same body was applied before a crash; not a dead letter.
    let (url, _seen) = fake_es(vec![(200, "ITEMS:409,200".to_owned())]).await;
    let h = harness(&url, 1 << 20, fast_retries()).await;
    h.store
        .apply(
            EcsDocument::THREATSTREAM_DATASET,
            vec![indicator_document(3)],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    wait_until("the spool drained", || h.store.spool().entries() == 0).await;
    assert_eq!(h.dead_letters.written(), 0);
    h.store.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_unreachable_cluster_keeps_everything_and_a_full_spool_refuses() {
    // Nothing listens on the port: every attempt fails and the entries stay.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = harness(&format!("http://127.0.0.1:{port}"), 20_000, fast_retries()).await;
    let mut accepted = 0;
    let refusal = loop {
        match h
            .store
            .apply(
                EcsDocument::THREATSTREAM_DATASET,
                vec![indicator_document(10 + accepted)],
                chrono::Utc::now(),
            )
            .await
        {
            Ok(_) => accepted += 1,
            Err(error) => break error,
        }
        assert!(accepted < 1000, "the spool never refused");
    };
    assert!(
        matches!(&refusal, StoreError::Unavailable(reason) if reason.contains("spool is full")),
        "{refusal:?}"
    );
    assert!(accepted >= 2, "{accepted}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.store.spool().entries(),
        accepted,
        "nothing lost while unreachable"
    );
    assert!(
        h.store
            .counters()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    h.store.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_request_refused_whole_is_halved_until_only_the_bad_item_is_dead_lettered() {
    let (url, seen) = fake_es(vec![(200, "POISON".to_owned())]).await;
    let h = harness(&url, 1 << 20, fast_retries()).await;
    let documents = vec![
        indicator_document(21),
        indicator_document(22),
        indicator_from(23, "poison"),
        indicator_document(24),
        indicator_document(25),
    ];
    h.store
        .apply(
            EcsDocument::THREATSTREAM_DATASET,
            documents,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    wait_until("the spool drained", || h.store.spool().entries() == 0).await;
    let letters = std::fs::read_to_string(h.dead_letters.path()).unwrap();
    let letters: Vec<Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        letters.len(),
        2,
        "the poisoned document's two actions, nothing else: {letters:?}"
    );
    for letter in &letters {
        assert_eq!(letter["document"]["anomali"]["threatstream"]["id"], "23");
        assert_eq!(letter["status"], 400);
    }
    let delivered: usize = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| !s.body.contains("poison"))
        .map(|s| s.body.lines().count())
        .sum();
    assert_eq!(delivered, 16, "the 8 good actions (two lines each) arrived");
    h.store.stop(Duration::from_secs(1)).await;
}
