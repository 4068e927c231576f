//! `cargo xtask load`: a bounded load test of the webhook on loopback.
//!
//! Starts the webhook in this process (HMAC on, loopback only; a sink that discards, or with
//! `--store DIR` the embedded latest store with durable commits, as `serve` runs it), then for
//! batch sizes 1, 100 and 1000 sends signed NDJSON batches from several keep-alive connections
//! for a fixed time (and at most a fixed number of requests), and prints requests/s,
//! indicators/s and p50/p99 latency. Client and server share this machine's cores: the figures
//! are for both together.

#![allow(
    clippy::print_stdout,
    reason = "a measuring tool: printing the figures is its output"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anomali_agent_input::{
    DiscardSink, IndicatorSink, StoreSink, WebhookConfig, WebhookServer, sign_sha256_hex,
};
use anomali_latest_store::{EmbeddedOptions, EmbeddedStore};
use anomali_mapping::MappingSettings;
use anomali_model::EcsDocument;
use benches::generate_indicators;

const KEY: &str = "load-test-key-0123456789";
const CONNECTIONS: usize = 4;
const MAX_REQUESTS_PER_SIZE: usize = 200_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .clamp(1, 60);
    let store_dir = std::env::args().skip_while(|a| a != "--store").nth(1);
    match store_dir {
        None => run(seconds, DiscardSink, "a sink that discards"),
        Some(dir) => {
            let store =
                EmbeddedStore::open(std::path::Path::new(&dir), EmbeddedOptions::default())?;
            run(
                seconds,
                StoreSink::new(store, EcsDocument::THREATSTREAM_DATASET),
                "the embedded store, durable commits",
            )
        }
    }
}

fn run<S: IndicatorSink>(
    seconds: u64,
    sink: S,
    sink_name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // The generated indicators were added in 2020: without the expiry rule they stay live, so
    // the store really inserts and replaces them (a repeated batch replaces its own indicators).
    let yaml = format!(
        "listen_address: 127.0.0.1\nlisten_port: 0\nhmac:\n  key: {KEY}\nmax_in_flight_bytes: 1073741824\nioc_expiration_duration: \"\"\n"
    );
    let config = WebhookConfig::from_yaml(&yaml)?.validate()?;
    let server = server_runtime.block_on(WebhookServer::start(
        config,
        MappingSettings::default(),
        sink,
    ))?;
    let url = format!("http://{}/", server.local_addr());
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    println!(
        "webhook load into {sink_name}: {CONNECTIONS} keep-alive connections, {seconds} s per batch size, loopback, client and server in one process on {cores} cores"
    );

    for batch in [1usize, 100, 1000] {
        let body = Arc::new(generate_indicators(batch, batch as u64));
        let signature = Arc::new(format!("sha256={}", sign_sha256_hex(KEY.as_bytes(), &body)));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let latencies = client_runtime.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..CONNECTIONS {
                let (url, body, signature) = (url.clone(), body.clone(), signature.clone());
                tasks.push(tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .pool_max_idle_per_host(1)
                        .build()?;
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline
                        && latencies.len() < MAX_REQUESTS_PER_SIZE / CONNECTIONS
                    {
                        let sent = Instant::now();
                        let response = client
                            .post(&url)
                            .header("content-type", "application/x-ndjson")
                            .header("X-Filebeat-Signature", signature.as_str())
                            .body(body.as_ref().clone())
                            .send()
                            .await?;
                        let status = response.status();
                        let _ = response.bytes().await?;
                        if !status.is_success() {
                            return Err(format!("status {status}").into());
                        }
                        latencies.push(sent.elapsed());
                    }
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(latencies)
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                all.extend(
                    task.await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?,
                );
            }
            Ok::<_, String>(all)
        })?;
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies = latencies;
        latencies.sort();
        let percentile = |p: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or_default()
        };
        let requests = latencies.len() as f64;
        println!(
            "  batch {batch:>5}: {:>9.0} requests/s {:>10.0} indicators/s  p50 {:>8.3} ms  p99 {:>8.3} ms  ({} requests)",
            requests / elapsed,
            requests * batch as f64 / elapsed,
            percentile(0.50).as_secs_f64() * 1e3,
            percentile(0.99).as_secs_f64() * 1e3,
            latencies.len()
        );
    }
    println!(
        "  server counted {} indicators, {} requests answered 200",
        server.metrics().indicators_received(),
        server.metrics().requests(200)
    );
    server_runtime.block_on(server.shutdown(Duration::from_secs(5)));
    Ok(())
}
