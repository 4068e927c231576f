//! `cargo xtask load --es`: end-to-end indicators/s into a real Elasticsearch (`ES_URL`,
//! loopback only), beside the raw `_bulk` rate of the same documents, in one run.
//!
//! 1. Raw: the generated indicators are mapped and encoded in this process exactly as the sink
//!    spools them (the same actions, `_id`s and bytes), then posted to `_bulk` uncompressed,
//!    one push's body per request, two requests in flight: what a perfect client would do.
//! 2. Ours: the webhook with the spool and the shipper (as `serve --es-url` runs), pushed the
//!    same indicators as signed 1000-indicator NDJSON requests from two connections; timed from
//!    the first push until the spool is empty (every item answered by Elasticsearch), once with
//!    gzip (the default) and once without.
//!
//! Each phase writes to its own latest index and source namespace so no phase overwrites
//! another's documents. Bounded: a fixed number of pushes, and every wait has a time limit.

#![allow(
    clippy::print_stdout,
    reason = "a measuring tool: printing the figures is its output"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anomali_agent_input::{StoreSink, WebhookConfig, WebhookServer, sign_sha256_hex};
use anomali_mapping::{MappingSettings, Received, map_indicator};
use anomali_model::{EcsDocument, records};
use anomali_sink_es::{
    Capabilities, DeadLetterFile, EsClient, EsLatestStore, IndexNames, ShipperConfig,
    ShippingStore, Spool, Stream, detect_capabilities, encode_actions, ensure_setup, templates,
};
use benches::generate_indicators;
use elasticsearch::http::Method;

const KEY: &str = "es-load-key-0123456789";
const PUSH_SIZE: usize = 1000;
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let url = std::env::var("ES_URL").map_err(|_| "ES_URL must name the cluster")?;
    let host = url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    if !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")) {
        return Err("load tests target loopback clusters only".into());
    }
    let pushes: usize = std::env::args()
        .skip_while(|a| a != "--pushes")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .clamp(1, 2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(url, pushes))
}

async fn run(url: String, pushes: usize) -> Result<(), Error> {
    let client = EsClient::single_node(&url)?;
    let capabilities = detect_capabilities(&client).await?;
    let stream = Stream::Threatstream;
    ensure_setup(
        &client,
        capabilities,
        stream,
        stream.latest_index(),
        stream.latest_alias(),
    )
    .await?;
    let run_tag = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            % 0xff_ffff
    );
    let bodies: Vec<Vec<u8>> = (0..pushes)
        .map(|n| generate_indicators(PUSH_SIZE, 7_000 + n as u64))
        .collect();
    let indicators = (pushes * PUSH_SIZE) as f64;
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    println!(
        "elasticsearch load: {pushes} pushes of {PUSH_SIZE} indicators ({indicators} indicators, two actions each when live), loopback, this process and the cluster on {cores} cores"
    );

    // Raw bulk before and after ours: the cluster slows as it fills, so ours is compared with
    // the mean of both.
    let raw_before = raw_bulk(&client, capabilities, &bodies, &run_tag, 1).await?;
    let mut ours_rates = Vec::new();
    // 2. Ours, end to end.
    for gzip in [true, false] {
        let tag = if gzip { "gzip" } else { "none" };
        let names = names(&client, capabilities, &format!("load{tag}{run_tag}")).await?;
        let cpu_before = cpu_seconds();
        let (seconds, dead) = ours(&client, names, &bodies, gzip).await?;
        let cpu = cpu_seconds() - cpu_before;
        let rate = indicators / seconds;
        println!(
            "  ti-anomali (webhook, spool, shipper; compression {tag}): {rate:>8.0} indicators/s  ({seconds:.1} s, {dead} dead letters; this process used {cpu:.1} CPU s)"
        );
        ours_rates.push((tag, rate));
    }
    let raw_after = raw_bulk(&client, capabilities, &bodies, &run_tag, 2).await?;
    let raw_mean = (raw_before + raw_after) / 2.0;
    for (tag, rate) in ours_rates {
        println!(
            "  ratio, compression {tag}: {:.0} % of the raw _bulk mean ({raw_mean:.0} indicators/s)",
            100.0 * rate / raw_mean
        );
    }
    Ok(())
}

/// Posts the documents, mapped and encoded as the spool holds them, straight to `_bulk`.
async fn raw_bulk(
    client: &EsClient,
    capabilities: Capabilities,
    bodies: &[Vec<u8>],
    run_tag: &str,
    round: u32,
) -> Result<f64, Error> {
    let indicators = (bodies.len() * PUSH_SIZE) as f64;
    let raw_names = names(client, capabilities, &format!("loadraw{round}{run_tag}")).await?;
    let raw_store = EsLatestStore::new(client.clone(), raw_names, false);
    let identity = raw_store.identity();
    let received_at = chrono::Utc::now();
    let encoded: Vec<Vec<u8>> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            let documents = map_all(body, received_at);
            let mut out = Vec::new();
            encode_actions(
                &identity,
                EcsDocument::THREATSTREAM_DATASET,
                documents,
                received_at,
                Some(&format!("raw{round}{run_tag}-{n}")),
                &mut out,
            );
            out
        })
        .collect();
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let queue = Arc::new(std::sync::Mutex::new(encoded));
    let mut senders = Vec::new();
    for _ in 0..2 {
        let (client, queue) = (client.clone(), queue.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().map_err(|_| "poisoned")?.pop();
                let Some(body) = next else {
                    return Ok::<_, Error>(());
                };
                let answer = client
                    .bulk(
                        "/_bulk?filter_path=errors,items.*.status,items.*.error",
                        body,
                    )
                    .await?;
                // 409: an older version of an indicator the generator repeats; expected.
                let refused = answer.body["items"].as_array().is_some_and(|items| {
                    items.iter().any(|item| {
                        item.as_object()
                            .and_then(|o| o.values().next())
                            .is_some_and(|r| {
                                r["status"].as_u64().is_some_and(|s| s >= 300 && s != 409)
                            })
                    })
                });
                if answer.status != 200 || refused {
                    return Err(
                        format!("raw bulk failed: {} {}", answer.status, answer.body).into(),
                    );
                }
            }
        }));
    }
    for sender in senders {
        sender.await??;
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    let raw_rate = indicators / raw_seconds;
    println!(
        "  raw _bulk #{round} (uncompressed, 2 in flight, {:.0} MB): {raw_rate:>8.0} indicators/s  ({raw_seconds:.1} s; this process used {:.1} CPU s)",
        bytes as f64 / 1e6,
        cpu_seconds() - cpu_before
    );
    Ok(raw_rate)
}

/// CPU seconds this process used so far (user + system), from /proc; 0 where there is none.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15: indices 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// A latest index of its own for a phase, and its source namespace.
async fn names(
    client: &EsClient,
    capabilities: Capabilities,
    namespace: &str,
) -> Result<IndexNames, Error> {
    let index = format!("ti-load-latest-{namespace}");
    let mut body = templates::latest_index(Stream::Threatstream, capabilities);
    body["aliases"] = serde_json::json!({ format!("{index}-alias"): {"is_write_index": true} });
    let answer = client
        .json(Method::Put, &format!("/{index}"), Some(&body))
        .await?;
    if answer.status != 200 {
        return Err(format!("cannot create {index}: {}", answer.body).into());
    }
    Ok(
        IndexNames::new(namespace)
            .with_latest_alias(Stream::Threatstream, format!("{index}-alias")),
    )
}

fn map_all(body: &[u8], at: chrono::DateTime<chrono::Utc>) -> Vec<EcsDocument> {
    let settings = MappingSettings {
        ioc_expiration: None,
        ..MappingSettings::default()
    };
    records::split(body)
        .filter_map(|record| {
            let record = record.ok()?;
            let indicator = record.parse().ok()?;
            let received = Received { at, original: None };
            Some(map_indicator(indicator, &received, &settings))
        })
        .collect()
}

/// Pushes every body through the webhook into a shipping store; seconds until the spool is empty.
async fn ours(
    client: &EsClient,
    names: IndexNames,
    bodies: &[Vec<u8>],
    gzip: bool,
) -> Result<(f64, u64), Error> {
    let dir = tempfile::tempdir()?;
    let spool = Spool::open(&dir.path().join("spool.redb"), 8 << 30)?;
    let dead_letters = Arc::new(DeadLetterFile::open(&dir.path().join("dead.ndjson"))?);
    let reader = EsLatestStore::new(client.clone(), names, false);
    let store = ShippingStore::start(
        reader,
        spool.clone(),
        dead_letters.clone(),
        ShipperConfig {
            gzip,
            ..ShipperConfig::default()
        },
    )
    .await;
    let sink = Arc::new(StoreSink::new(store, EcsDocument::THREATSTREAM_DATASET));
    let yaml = format!(
        "listen_address: 127.0.0.1\nlisten_port: 0\nhmac:\n  key: {KEY}\nmax_in_flight_bytes: 1073741824\nioc_expiration_duration: \"\"\n"
    );
    let config = WebhookConfig::from_yaml(&yaml)?.validate()?;
    let server = WebhookServer::start_with_api(
        config,
        MappingSettings::default(),
        sink.clone(),
        sink.clone(),
    )
    .await?;
    let url = format!("http://{}/", server.local_addr());
    let started = Instant::now();
    let queue = Arc::new(std::sync::Mutex::new(bodies.to_vec()));
    let mut pushers = Vec::new();
    for _ in 0..2 {
        let (url, queue) = (url.clone(), queue.clone());
        pushers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let next = queue.lock().map_err(|_| "poisoned")?.pop();
                let Some(body) = next else {
                    return Ok::<_, Error>(());
                };
                let signature = format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), &body));
                let response = http
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .header("X-Filebeat-Signature", signature)
                    .body(body)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    return Err(format!("push answered {}", response.status()).into());
                }
            }
        }));
    }
    for pusher in pushers {
        pusher.await??;
    }
    let deadline = Instant::now() + DRAIN_LIMIT;
    while spool.entries() > 0 {
        if Instant::now() > deadline {
            return Err("the spool did not drain within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    server.shutdown(Duration::from_secs(5)).await;
    sink.store().stop(Duration::from_secs(5)).await;
    Ok((seconds, dead_letters.written()))
}
