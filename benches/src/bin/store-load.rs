//! `cargo xtask load` (store part): the embedded latest store at scale.
//!
//! Fills a fresh store with `--live N` live indicators (default 1,000,000) in durable batches of
//! 10,000, one in ten expiring a minute later, then measures: a sweep with nothing due, a sweep
//! removing the expired tenth, lookups of random live IPs (p50/p99 over 10,000), and the peak
//! resident memory. Bounded by N (at most 5,000,000) and by a 10-minute deadline.

#![allow(
    clippy::print_stdout,
    reason = "a measuring tool: printing the figures is its output"
)]

use std::time::{Duration, Instant};

use anomali_latest_store::{EmbeddedOptions, EmbeddedStore, LatestStore};
use anomali_model::{EcsDocument, Timestamp};
use benches::Rng;
use chrono::{TimeDelta, Utc};

const BATCH: usize = 10_000;
const DEADLINE: Duration = Duration::from_secs(600);

fn ip_of(index: u64) -> String {
    format!(
        "10.{}.{}.{}",
        (index >> 16) & 0xff,
        (index >> 8) & 0xff,
        index & 0xff
    )
}

fn document(index: u64, expires: Option<Timestamp>) -> EcsDocument {
    let mut document = EcsDocument::default();
    document.event.kind = "enrichment";
    document.event.category = &["threat"];
    document.event.kind_of_event = &["indicator"];
    let threatstream = &mut document.anomali.threatstream;
    threatstream.id = Some((1_000_000_000 + index).to_string());
    threatstream.update_id = Some("1".to_owned());
    threatstream.deleted_at = expires;
    let ip = ip_of(index);
    document.threat.indicator.ip = Some(ip.clone());
    document.threat.indicator.name = Some(ip);
    document.threat.indicator.indicator_type = Some("ipv4-addr");
    document.threat.indicator.provider = Some("Store load".to_owned());
    document.tags = vec!["forwarded".to_owned(), "anomali-threatstream".to_owned()];
    document
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p) as usize)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let live: u64 = std::env::args()
        .skip_while(|a| a != "--live")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
        .clamp(10_000, 5_000_000);
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let started = Instant::now();
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())?;
        let now = Utc::now();
        let soon = Timestamp::parse_normalised(&(now + TimeDelta::minutes(1)).format("%Y-%m-%dT%H:%M:%S.000Z").to_string());
        let mut index = 0u64;
        while index < live {
            if started.elapsed() > DEADLINE {
                return Err("deadline reached while filling".into());
            }
            let batch: Vec<EcsDocument> = (index..(index + BATCH as u64).min(live))
                .map(|i| document(i, if i % 10 == 0 { soon } else { None }))
                .collect();
            index += batch.len() as u64;
            store.apply(EcsDocument::THREATSTREAM_DATASET, batch, now).await?;
        }
        let fill = started.elapsed().as_secs_f64();
        let count = store.count().await?;
        let size = std::fs::metadata(store.path())?.len() as f64 / 1024.0 / 1024.0;
        println!("store load: {count} live indicators written in {fill:.1} s ({:.0}/s, durable batches of {BATCH}), file {size:.0} MiB, {} cores",
            count as f64 / fill, std::thread::available_parallelism().map(usize::from).unwrap_or(1));

        let sweep_started = Instant::now();
        let removed = store.sweep_expired(now).await?;
        println!("  sweep with nothing due:      {:>8.2} ms ({removed} removed)", sweep_started.elapsed().as_secs_f64() * 1e3);
        let sweep_started = Instant::now();
        let removed = store.sweep_expired(now + TimeDelta::minutes(2)).await?;
        println!("  sweep of the expired tenth:  {:>8.2} ms ({removed} removed)", sweep_started.elapsed().as_secs_f64() * 1e3);

        let mut rng = Rng::new(7);
        let mut latencies = Vec::with_capacity(10_000);
        let mut found = 0usize;
        for _ in 0..10_000 {
            let ip = ip_of(rng.below(live));
            let asked = Instant::now();
            found += store.find(&ip, now).await?.len();
            latencies.push(asked.elapsed());
        }
        latencies.sort();
        println!("  lookups by IP at {} live: p50 {:.3} ms, p99 {:.3} ms ({found} documents found for 10000 lookups)",
            store.count().await?, percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        println!("  peak resident memory: {:.0} MiB", peak_rss_mib());
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
