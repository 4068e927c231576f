//! [`Shipper`]: drains the [`Spool`] into Elasticsearch.
//!
//! Entries are gathered into batches by count (actions), bytes and time (a partial batch waits
//! at most `flush_interval` for more), gzipped, and sent with at most `max_in_flight` requests
//! at once. A failed request (connection error, 429, 5xx, auth) is retried whole with
//! exponential backoff and jitter; each item's answer is classified: applied or already there
//! (a replay) counts as done, 429/5xx items are retried alone, refused items go to the dead
//! letter file. An entry leaves the spool only once each of its items is done or dead-lettered;
//! whatever is not by shutdown stays and is shipped after the restart.
//!
//! Ordering: versioned documents (with `update_id`) are ordered by Elasticsearch itself
//! (`external_gte`); two batches in flight at once may apply unversioned ones in either order.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::bulk::{self, BulkItem, ItemOutcome, RequestOutcome};
use crate::client::EsClient;
use crate::dead_letter::{DeadLetter, DeadLetterFile};
use crate::retry::Backoff;
use crate::spool::{Spool, SpoolEntry};

/// How the shipper batches and retries.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// Most actions in one `_bulk` request (a live indicator is two: source and latest).
    pub max_batch_actions: usize,
    /// Most bytes (uncompressed) in one `_bulk` request; a single larger push goes alone.
    pub max_batch_bytes: usize,
    /// How long a partial batch waits for more before it goes.
    pub flush_interval: Duration,
    /// Most `_bulk` requests in flight at once.
    pub max_in_flight: usize,
    /// Gzip request bodies.
    pub gzip: bool,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// `refresh` for the requests (`false` in production; `wait_for` in tests).
    pub refresh: &'static str,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        Self {
            max_batch_actions: 5_000,
            max_batch_bytes: 10 << 20,
            flush_interval: Duration::from_millis(500),
            max_in_flight: 2,
            gzip: true,
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            refresh: "false",
        }
    }
}

/// What the shipper did since start.
#[derive(Debug, Default)]
pub struct ShipperCounters {
    /// `_bulk` requests answered 200.
    pub requests: AtomicU64,
    /// Items applied (or found already there after a replay).
    pub items_done: AtomicU64,
    /// Latest items that lost to a newer version.
    pub items_older: AtomicU64,
    /// Attempts that failed and were retried (whole requests or items).
    pub retries: AtomicU64,
    /// Items written to the dead letter file.
    pub dead_lettered: AtomicU64,
    /// Spool entries fully shipped and removed.
    pub entries_shipped: AtomicU64,
    /// Why the last request failed, until one succeeds again.
    last_failure: std::sync::Mutex<Option<String>>,
    /// When an item was last dead-lettered.
    last_rejection: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ShipperCounters {
    /// Records why shipping cannot proceed (a failed request, or no connection yet).
    pub fn failed(&self, reason: String) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(reason);
        }
    }

    /// Records that the cluster answered.
    pub fn succeeded(&self) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = None;
        }
    }

    fn rejected(&self) {
        if let Ok(mut last) = self.last_rejection.lock() {
            *last = Some(std::time::Instant::now());
        }
    }

    /// `Err` with the reason while the cluster fails requests, or within `window` of a document
    /// being refused; `Ok` otherwise.
    pub fn health(&self, window: Duration) -> Result<(), String> {
        if let Some(reason) = self.last_failure.lock().ok().and_then(|l| l.clone()) {
            return Err(format!("elasticsearch: {reason}"));
        }
        let recent = self
            .last_rejection
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|at| at.elapsed() < window);
        if recent {
            return Err(format!(
                "elasticsearch refused documents ({} so far, see the dead letter file)",
                self.dead_lettered.load(Ordering::Relaxed)
            ));
        }
        Ok(())
    }
}

/// A running shipper; [`Shipper::stop`] ends it.
#[derive(Debug)]
pub struct Shipper {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<ShipperCounters>,
}

impl Shipper {
    /// Starts draining `spool` into the cluster behind `client`.
    pub fn start(
        client: EsClient,
        spool: Spool,
        dead_letters: Arc<DeadLetterFile>,
        config: ShipperConfig,
    ) -> Self {
        Self::start_counting(
            client,
            spool,
            dead_letters,
            config,
            Arc::new(ShipperCounters::default()),
        )
    }

    /// Like [`Shipper::start`], counting into `counters`.
    pub fn start_counting(
        client: EsClient,
        spool: Spool,
        dead_letters: Arc<DeadLetterFile>,
        config: ShipperConfig,
        counters: Arc<ShipperCounters>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            client,
            spool,
            dead_letters,
            config,
            counters: counters.clone(),
            stopped,
        });
        let task = tokio::spawn(run(shared));
        Self {
            stop,
            task,
            counters,
        }
    }

    /// Its counters.
    pub fn counters(&self) -> Arc<ShipperCounters> {
        self.counters.clone()
    }

    /// Stops taking new batches and gives the requests in flight up to `grace` to finish;
    /// what is not finished stays in the spool.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
    }
}

#[derive(Debug)]
struct Shared {
    client: EsClient,
    spool: Spool,
    dead_letters: Arc<DeadLetterFile>,
    config: ShipperConfig,
    counters: Arc<ShipperCounters>,
    stopped: watch::Receiver<bool>,
}

impl Shared {
    fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }
}

/// A spool entry split into its items.
struct Parsed {
    entry: SpoolEntry,
    items: Vec<BulkItem>,
}

async fn run(shared: Arc<Shared>) {
    let in_flight = Arc::new(Semaphore::new(shared.config.max_in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let mut last_taken: Option<u64> = None;
    let mut stopped = shared.stopped.clone();
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = in_flight.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopped.wait_for(|s| *s) => break,
        };
        let Some(batch) = gather(&shared, &mut last_taken).await else {
            break;
        };
        let shared = shared.clone();
        tasks.spawn(async move {
            ship_batch(&shared, batch).await;
            drop(permit);
        });
    }
    // Stopped: the requests in flight finish (or the caller's grace runs out and aborts us,
    // which drops them; their entries stay in the spool).
    while tasks.join_next().await.is_some() {}
}

/// Gathers the next batch: waits for a first entry, then at most `flush_interval` for the batch
/// to fill. `None` once stopped.
async fn gather(shared: &Shared, last_taken: &mut Option<u64>) -> Option<Vec<Parsed>> {
    let config = &shared.config;
    let mut batch: Vec<Parsed> = Vec::new();
    let mut actions = 0usize;
    let mut bytes = 0usize;
    let mut deadline: Option<Instant> = None;
    loop {
        if shared.is_stopped() {
            return None;
        }
        let room_bytes = config.max_batch_bytes.saturating_sub(bytes);
        let spool = shared.spool.clone();
        let after = *last_taken;
        // Entries are whole pushes: read a few at a time and stop at the limits.
        let read = tokio::task::spawn_blocking(move || spool.read_after(after, 16, room_bytes))
            .await
            .unwrap_or_else(|e| Err(crate::error::SpoolError::Database(e.to_string())));
        let entries = match read {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(%error, "cannot read the spool; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for entry in entries {
            let size = entry.body.len();
            let items = match bulk::split_items(&entry.body) {
                Ok(items) => items,
                Err(error) => {
                    // Damage on disk: keep the bytes for a human rather than drop them.
                    tracing::error!(seq = entry.seq, reason = %error.0, "damaged spool entry moved to the dead letter file");
                    let letter = DeadLetter {
                        status: 0,
                        error: Value::String(format!("damaged spool entry: {}", error.0)),
                        action: &entry.body,
                        document: None,
                    };
                    if shared.dead_letters.write(&[letter]).is_ok() {
                        shared
                            .counters
                            .dead_lettered
                            .fetch_add(1, Ordering::Relaxed);
                        let _ = shared.spool.remove(vec![entry.seq]).await;
                    }
                    *last_taken = Some(entry.seq);
                    continue;
                }
            };
            if !batch.is_empty()
                && (actions + items.len() > config.max_batch_actions
                    || bytes + size > config.max_batch_bytes)
            {
                return Some(batch);
            }
            *last_taken = Some(entry.seq);
            actions += items.len();
            bytes += size;
            batch.push(Parsed { entry, items });
        }
        if actions >= config.max_batch_actions || bytes >= config.max_batch_bytes {
            return Some(batch);
        }
        let now = Instant::now();
        if !batch.is_empty() {
            let deadline = *deadline.get_or_insert(now + config.flush_interval);
            if now >= deadline {
                return Some(batch);
            }
        }
        // Wake on the next append; the timeout covers an append that landed between the read
        // and this wait.
        let wait = deadline.map_or(Duration::from_millis(100), |d| {
            d.saturating_duration_since(now)
                .min(Duration::from_millis(100))
        });
        let _ = tokio::time::timeout(wait, shared.spool.appended()).await;
    }
}

/// Ships every item of `batch` until each is done or dead-lettered, then removes the entries.
async fn ship_batch(shared: &Shared, batch: Vec<Parsed>) {
    let config = &shared.config;
    // (entry, item) pairs still to ship.
    let mut pending: Vec<(usize, usize)> = batch
        .iter()
        .enumerate()
        .flat_map(|(e, parsed)| (0..parsed.items.len()).map(move |i| (e, i)))
        .collect();
    let mut backoff = Backoff::new(config.retry_initial, config.retry_max);
    let path = format!(
        "/_bulk?refresh={}&filter_path=errors,items.*.status,items.*.error",
        config.refresh
    );
    // Most items per request: lowered while isolating items that make a request fail whole.
    let mut chunk_limit = usize::MAX;
    while !pending.is_empty() {
        let mut retry = Vec::new();
        // Items to send again at once, in smaller requests.
        let mut resend = Vec::new();
        // Refused items: (entry, item), status, reason.
        let mut letters: Vec<((usize, usize), u16, Value)> = Vec::new();
        for chunk in chunks(&batch, &pending, config.max_batch_bytes, chunk_limit) {
            let mut body = Vec::new();
            for &(e, i) in chunk {
                let parsed = &batch[e];
                body.extend_from_slice(&parsed.entry.body[parsed.items[i].lines()]);
            }
            let answer = match encode_body(body, config.gzip) {
                Ok((body, gzip)) => shared.client.bulk_body(&path, body, gzip).await,
                Err(error) => Err(crate::error::EsError::Transport(format!("gzip: {error}"))),
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::warn!(%error, attempt = backoff.attempts() + 1, "bulk request failed; will retry");
                    shared.counters.failed(error.to_string());
                    retry.extend_from_slice(chunk);
                    continue;
                }
            };
            match bulk::classify_request(answer.status) {
                RequestOutcome::Retry => {
                    tracing::warn!(status = answer.status, error = %truncate(&answer.body), attempt = backoff.attempts() + 1, "bulk request refused for now; will retry");
                    shared.counters.failed(format!(
                        "bulk answered {}: {}",
                        answer.status,
                        truncate(&answer.body)
                    ));
                    retry.extend_from_slice(chunk);
                    continue;
                }
                RequestOutcome::Reject if chunk.len() > 1 => {
                    // One bad item refuses the whole request: halve until it stands alone, so
                    // only it goes to the dead letter file.
                    tracing::warn!(status = answer.status, error = %truncate(&answer.body), items = chunk.len(), "bulk request refused; resending in halves to find the refused items");
                    chunk_limit = (chunk.len() / 2).max(1);
                    resend.extend_from_slice(chunk);
                    continue;
                }
                RequestOutcome::Reject => {
                    tracing::error!(status = answer.status, error = %truncate(&answer.body), "bulk item refused on its own; it goes to the dead letter file");
                    for &(e, i) in chunk {
                        letters.push(((e, i), answer.status, answer.body.clone()));
                    }
                    continue;
                }
                RequestOutcome::ReadItems => {}
            }
            shared.counters.requests.fetch_add(1, Ordering::Relaxed);
            shared.counters.succeeded();
            let results = answer.body["items"].as_array();
            if answer.body["errors"] != Value::Bool(true) {
                // No item failed (filter_path may even drop the items).
                shared
                    .counters
                    .items_done
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                continue;
            }
            for (n, &(e, i)) in chunk.iter().enumerate() {
                let result = results
                    .and_then(|items| items.get(n))
                    .and_then(|item| item.as_object())
                    .and_then(|item| item.values().next());
                let Some(result) = result else {
                    // An answer without this item: ask again rather than assume.
                    retry.push((e, i));
                    continue;
                };
                let status = result["status"].as_u64().unwrap_or(0) as u16;
                match bulk::classify(batch[e].items[i].kind, status) {
                    ItemOutcome::Done
                    | ItemOutcome::AlreadyThere
                    | ItemOutcome::NothingToDelete => {
                        shared.counters.items_done.fetch_add(1, Ordering::Relaxed);
                    }
                    ItemOutcome::Older => {
                        shared.counters.items_older.fetch_add(1, Ordering::Relaxed);
                    }
                    ItemOutcome::Retry => retry.push((e, i)),
                    ItemOutcome::Reject => {
                        letters.push(((e, i), status, result["error"].clone()));
                    }
                }
            }
        }
        if !letters.is_empty() {
            let dead_letters = &shared.dead_letters;
            let written: Vec<DeadLetter<'_>> = letters
                .iter()
                .map(|&((e, i), status, ref error)| letter(&batch[e], i, status, error.clone()))
                .collect();
            match dead_letters.write(&written) {
                Ok(()) => {
                    shared
                        .counters
                        .dead_lettered
                        .fetch_add(letters.len() as u64, Ordering::Relaxed);
                    shared.counters.rejected();
                    tracing::warn!(items = letters.len(), file = %dead_letters.path().display(), "documents refused by elasticsearch written to the dead letter file");
                }
                Err(error) => {
                    // Not written: keep them in the spool and try again.
                    tracing::error!(%error, "cannot write the dead letter file; keeping the items");
                    retry.extend(letters.iter().map(|(origin, _, _)| *origin));
                }
            }
        }
        if !resend.is_empty() {
            // Halving is not a failure of the cluster: no backoff, but the retries wait.
            resend.extend(retry);
            pending = resend;
            continue;
        }
        pending = retry;
        if !pending.is_empty() {
            shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            let delay = backoff.next_delay();
            let mut stopped = shared.stopped.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                // Stopping: leave the entries in the spool for the next start.
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }
    let seqs: Vec<u64> = batch.iter().map(|p| p.entry.seq).collect();
    let count = seqs.len() as u64;
    match shared.spool.remove(seqs).await {
        Ok(()) => {
            shared
                .counters
                .entries_shipped
                .fetch_add(count, Ordering::Relaxed);
        }
        // They stay and are shipped again after a restart: a replay is idempotent.
        Err(error) => tracing::error!(%error, "cannot remove shipped entries from the spool"),
    }
}

fn letter<'a>(parsed: &'a Parsed, item: usize, status: u16, error: Value) -> DeadLetter<'a> {
    let body = &parsed.entry.body;
    let it = &parsed.items[item];
    DeadLetter {
        status,
        error,
        action: &body[it.action.clone()],
        document: it.document.clone().map(|d| &body[d]),
    }
}

/// Splits `pending` into runs of at most `max_items` whose bodies stay within `max_bytes` (each
/// run has at least one item).
fn chunks<'p>(
    batch: &[Parsed],
    pending: &'p [(usize, usize)],
    max_bytes: usize,
    max_items: usize,
) -> Vec<&'p [(usize, usize)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (n, &(e, i)) in pending.iter().enumerate() {
        let size = batch[e].items[i].lines().len();
        if n > start && (bytes + size > max_bytes || n - start >= max_items) {
            runs.push(&pending[start..n]);
            start = n;
            bytes = 0;
        }
        bytes += size;
    }
    if start < pending.len() {
        runs.push(&pending[start..]);
    }
    runs
}

/// Gzips at the fastest level: on loopback and LANs the CPU is dearer than the bytes.
fn encode_body(body: Vec<u8>, gzip: bool) -> std::io::Result<(Vec<u8>, bool)> {
    if !gzip {
        return Ok((body, false));
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(&body)?;
    Ok((encoder.finish()?, true))
}

fn truncate(body: &Value) -> String {
    let mut text = body.to_string();
    if text.len() > 500 {
        let mut end = 500;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
