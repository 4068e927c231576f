//! [`ShippingStore`]: the latest store as `serve --es-url` runs it: writes go through the local
//! [`Spool`] (durable before the webhook answers) and the [`Shipper`] takes them to
//! Elasticsearch in batches; reads (lookups, counts) and the expiry sweep ask Elasticsearch
//! directly through an [`EsLatestStore`].
//!
//! Delivery: at least once, idempotent on replay (source copies have `_id`s fixed when
//! spooled; latest copies are versioned). An indicator is visible in the latest alias once its
//! batch has shipped (at most `flush_interval` plus a refresh later while the cluster is up).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anomali_latest_store::{ApplyReport, IndicatorKey, LatestStore, LiveDocument, StoreError};
use anomali_model::EcsDocument;
use chrono::{DateTime, Utc};

use crate::bulk;
use crate::dead_letter::DeadLetterFile;
use crate::error::SpoolError;
use crate::latest::EsLatestStore;
use crate::service::{Shipper, ShipperConfig, ShipperCounters};
use crate::spool::Spool;

/// Spool in front, Elasticsearch behind.
#[derive(Debug)]
pub struct ShippingStore {
    reader: EsLatestStore,
    spool: Spool,
    shipper: tokio::sync::Mutex<Option<Shipper>>,
    counters: Arc<ShipperCounters>,
    /// Source `_id`s are `<run>-<push>-<n>`: unique per process start, push and document.
    run_id: String,
    pushes: AtomicU64,
}

impl ShippingStore {
    /// Starts shipping what `spool` holds (from earlier runs too) through `reader`'s client.
    /// Must run inside a Tokio runtime.
    pub fn start(
        reader: EsLatestStore,
        spool: Spool,
        dead_letters: Arc<DeadLetterFile>,
        config: ShipperConfig,
    ) -> Self {
        let shipper = Shipper::start(reader.client().clone(), spool.clone(), dead_letters, config);
        let counters = shipper.counters();
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        Self {
            reader,
            spool,
            shipper: tokio::sync::Mutex::new(Some(shipper)),
            counters,
            run_id: format!("{:016x}", hasher.finish()),
            pushes: AtomicU64::new(0),
        }
    }

    /// The spool.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The shipper's counters.
    pub fn counters(&self) -> &ShipperCounters {
        &self.counters
    }

    /// Stops shipping; requests in flight get `grace` to finish, the rest stays spooled.
    pub async fn stop(&self, grace: Duration) {
        if let Some(shipper) = self.shipper.lock().await.take() {
            shipper.stop(grace).await;
        }
    }
}

impl LatestStore for ShippingStore {
    async fn apply(
        &self,
        dataset: &'static str,
        documents: Vec<EcsDocument>,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport, StoreError> {
        let count = documents.len() as u64;
        if count == 0 {
            return Ok(ApplyReport::default());
        }
        let push = self.pushes.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{}-{push}", self.run_id);
        let identity = self.reader.identity();
        // Encoding a large push takes milliseconds: off the async workers.
        let (body, encoded) = tokio::task::spawn_blocking(move || {
            let mut body = Vec::with_capacity(documents.len() * 5200);
            let encoded =
                bulk::encode_actions(&identity, dataset, documents, now, Some(&prefix), &mut body);
            (body, encoded)
        })
        .await
        .map_err(|e| StoreError::Database(format!("encoding failed: {e}")))?;
        self.spool.append(body).await.map_err(|error| match error {
            SpoolError::Full { .. } | SpoolError::Closed => {
                StoreError::Unavailable(error.to_string())
            }
            SpoolError::Database(_) => StoreError::Database(error.to_string()),
        })?;
        Ok(ApplyReport {
            queued: count,
            without_id: encoded.without_id,
            ..ApplyReport::default()
        })
    }

    async fn remove(&self, key: &IndicatorKey) -> Result<bool, StoreError> {
        self.reader.remove(key).await
    }

    async fn get(
        &self,
        key: &IndicatorKey,
        now: DateTime<Utc>,
    ) -> Result<Option<LiveDocument>, StoreError> {
        self.reader.get(key, now).await
    }

    async fn find(&self, value: &str, now: DateTime<Utc>) -> Result<Vec<LiveDocument>, StoreError> {
        self.reader.find(value, now).await
    }

    async fn sweep_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.reader.sweep_expired(now).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.reader.count().await
    }

    async fn keys(&self) -> Result<Vec<IndicatorKey>, StoreError> {
        self.reader.keys().await
    }

    fn metrics(&self) -> String {
        let c = &self.counters;
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            text += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        metric(
            "ti_es_bulk_requests_total",
            "counter",
            "Bulk requests Elasticsearch answered 200.",
            c.requests.load(Ordering::Relaxed),
        );
        metric(
            "ti_es_items_done_total",
            "counter",
            "Bulk items applied (or already there after a replay).",
            c.items_done.load(Ordering::Relaxed),
        );
        metric(
            "ti_es_items_older_total",
            "counter",
            "Latest items that lost to a newer version already indexed.",
            c.items_older.load(Ordering::Relaxed),
        );
        metric(
            "ti_es_retries_total",
            "counter",
            "Bulk attempts that failed and were retried.",
            c.retries.load(Ordering::Relaxed),
        );
        metric(
            "ti_es_dead_letters_total",
            "counter",
            "Items Elasticsearch refused for good, written to the dead letter file.",
            c.dead_lettered.load(Ordering::Relaxed),
        );
        metric(
            "ti_es_spool_entries",
            "gauge",
            "Pushes waiting in the spool.",
            self.spool.entries(),
        );
        metric(
            "ti_es_spool_bytes",
            "gauge",
            "Bytes waiting in the spool.",
            self.spool.bytes(),
        );
        text
    }
}
