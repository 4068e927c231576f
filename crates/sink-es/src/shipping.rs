//! [`ShippingStore`]: the latest store as `serve --es-url` runs it: writes go through the local
//! [`Spool`] (durable before the webhook answers) and the [`Shipper`] takes them to
//! Elasticsearch in batches; reads (lookups, counts) and the expiry sweep ask Elasticsearch
//! directly through an [`EsLatestStore`].
//!
//! It accepts pushes before Elasticsearch is reachable: they wait in the spool until
//! [`ShippingStore::connect`] (after setup succeeded) starts the shipper; reads answer
//! "unavailable" until then. Delivery: at least once, idempotent on replay (source copies have
//! `_id`s fixed when spooled; latest copies are versioned). An indicator is visible in the
//! latest alias once its batch has shipped (at most `flush_interval` plus a refresh later).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anomali_latest_store::{ApplyReport, IndicatorKey, LatestStore, LiveDocument, StoreError};
use anomali_model::EcsDocument;
use chrono::{DateTime, Utc};

use crate::bulk::{self, ShipIdentity};
use crate::dead_letter::DeadLetterFile;
use crate::error::SpoolError;
use crate::latest::EsLatestStore;
use crate::service::{Shipper, ShipperConfig, ShipperCounters};
use crate::spool::Spool;

/// Spool in front, Elasticsearch behind. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct ShippingStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    identity: ShipIdentity,
    reader: OnceLock<EsLatestStore>,
    spool: Spool,
    shipper: tokio::sync::Mutex<Option<Shipper>>,
    counters: Arc<ShipperCounters>,
    /// Source `_id`s are `<run>-<push>-<n>`: unique per process start, push and document.
    run_id: String,
    pushes: AtomicU64,
}

impl ShippingStore {
    /// A store that spools pushes for `identity`'s indices; nothing ships before
    /// [`ShippingStore::connect`].
    pub fn new(identity: ShipIdentity, spool: Spool) -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        let counters = Arc::new(ShipperCounters::default());
        counters.failed("not connected to elasticsearch yet".to_owned());
        Self {
            inner: Arc::new(Inner {
                identity,
                reader: OnceLock::new(),
                spool,
                shipper: tokio::sync::Mutex::new(None),
                counters,
                run_id: format!("{:016x}", hasher.finish()),
                pushes: AtomicU64::new(0),
            }),
        }
    }

    /// Starts shipping what the spool holds (from earlier runs too) through `reader`'s client.
    /// Must run inside a Tokio runtime. A second call does nothing.
    pub async fn connect(
        &self,
        reader: EsLatestStore,
        dead_letters: Arc<DeadLetterFile>,
        config: ShipperConfig,
    ) {
        let mut shipper = self.inner.shipper.lock().await;
        if shipper.is_some() || self.inner.reader.get().is_some() {
            return;
        }
        *shipper = Some(Shipper::start_counting(
            reader.client().clone(),
            self.inner.spool.clone(),
            dead_letters,
            config,
            self.inner.counters.clone(),
        ));
        self.inner.counters.succeeded();
        let _ = self.inner.reader.set(reader);
    }

    /// [`ShippingStore::new`] and [`ShippingStore::connect`] at once.
    pub async fn start(
        reader: EsLatestStore,
        spool: Spool,
        dead_letters: Arc<DeadLetterFile>,
        config: ShipperConfig,
    ) -> Self {
        let store = Self::new(reader.identity(), spool);
        store.connect(reader, dead_letters, config).await;
        store
    }

    /// The spool.
    pub fn spool(&self) -> &Spool {
        &self.inner.spool
    }

    /// The shipper's counters.
    pub fn counters(&self) -> &ShipperCounters {
        &self.inner.counters
    }

    /// The shipper's counters, shared (for a health monitor).
    pub fn counters_handle(&self) -> Arc<ShipperCounters> {
        self.inner.counters.clone()
    }

    /// Stops shipping; requests in flight get `grace` to finish, the rest stays spooled.
    pub async fn stop(&self, grace: Duration) {
        if let Some(shipper) = self.inner.shipper.lock().await.take() {
            shipper.stop(grace).await;
        }
    }

    fn reader(&self) -> Result<&EsLatestStore, StoreError> {
        self.inner
            .reader
            .get()
            .ok_or_else(|| StoreError::Unavailable("not connected to elasticsearch yet".to_owned()))
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
        let push = self.inner.pushes.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{}-{push}", self.inner.run_id);
        let identity = self.inner.identity.clone();
        // Encoding a large push takes milliseconds: off the async workers.
        let (body, encoded) = tokio::task::spawn_blocking(move || {
            let mut body = Vec::with_capacity(documents.len() * 5200);
            let encoded =
                bulk::encode_actions(&identity, dataset, documents, now, Some(&prefix), &mut body);
            (body, encoded)
        })
        .await
        .map_err(|e| StoreError::Database(format!("encoding failed: {e}")))?;
        self.inner
            .spool
            .append(body)
            .await
            .map_err(|error| match error {
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
        self.reader()?.remove(key).await
    }

    async fn get(
        &self,
        key: &IndicatorKey,
        now: DateTime<Utc>,
    ) -> Result<Option<LiveDocument>, StoreError> {
        self.reader()?.get(key, now).await
    }

    async fn find(&self, value: &str, now: DateTime<Utc>) -> Result<Vec<LiveDocument>, StoreError> {
        self.reader()?.find(value, now).await
    }

    async fn sweep_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        match self.inner.reader.get() {
            Some(reader) => reader.sweep_expired(now).await,
            // Nothing to sweep before the cluster is there.
            None => Ok(0),
        }
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.reader()?.count().await
    }

    async fn keys(&self) -> Result<Vec<IndicatorKey>, StoreError> {
        self.reader()?.keys().await
    }

    fn metrics(&self) -> String {
        let c = &self.inner.counters;
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
            self.inner.spool.entries(),
        );
        metric(
            "ti_es_spool_bytes",
            "gauge",
            "Bytes waiting in the spool.",
            self.inner.spool.bytes(),
        );
        metric(
            "ti_es_connected",
            "gauge",
            "1 once setup in Elasticsearch succeeded and shipping runs.",
            u64::from(self.inner.reader.get().is_some()),
        );
        text
    }
}
