//! [`ReadApi`]: the read side served on the webhook's listener (`GET /_ti/lookup`,
//! `/_ti/health`, `/_ti/metrics`), and [`StoreSink`], which puts a [`LatestStore`] behind both
//! the webhook and that API.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use anomali_latest_store::{LatestStore, StoreError};
use chrono::Utc;
use serde_json::Value;

use crate::error::SinkError;
use crate::sink::{Batch, IndicatorSink};

/// What the listener answers besides the webhook itself.
pub trait ReadApi: Send + Sync + 'static {
    /// The live documents matching an indicator value (IP, domain, URL, e-mail, hash).
    /// `Err(SinkError::Unavailable)` while the backend cannot be reached (answered 503).
    fn lookup(&self, value: &str) -> impl Future<Output = Result<Vec<Value>, SinkError>> + Send;
    /// `Ok` with details when healthy, `Err` with the reason when not.
    fn health(&self) -> impl Future<Output = Result<Value, String>> + Send;
    /// More metrics in the Prometheus text format, appended to the webhook's.
    fn metrics(&self) -> impl Future<Output = String> + Send;
    /// Whether this API exists at all (when not, `/_ti/*` answers 404).
    fn enabled(&self) -> bool {
        true
    }
}

/// No read API: `/_ti/*` answers 404.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReadApi;

impl ReadApi for NoReadApi {
    async fn lookup(&self, _value: &str) -> Result<Vec<Value>, SinkError> {
        Err(SinkError::Failed("no lookup API".to_owned()))
    }
    async fn health(&self) -> Result<Value, String> {
        Ok(Value::Null)
    }
    async fn metrics(&self) -> String {
        String::new()
    }
    fn enabled(&self) -> bool {
        false
    }
}

impl<A: ReadApi> ReadApi for std::sync::Arc<A> {
    fn lookup(&self, value: &str) -> impl Future<Output = Result<Vec<Value>, SinkError>> + Send {
        (**self).lookup(value)
    }
    fn health(&self) -> impl Future<Output = Result<Value, String>> + Send {
        (**self).health()
    }
    fn metrics(&self) -> impl Future<Output = String> + Send {
        (**self).metrics()
    }
    fn enabled(&self) -> bool {
        (**self).enabled()
    }
}

/// A [`LatestStore`] as the webhook's sink and read API, with the pipeline's counters.
#[derive(Debug)]
pub struct StoreSink<S> {
    store: S,
    dataset: &'static str,
    mapped: AtomicU64,
    mapping_errors: AtomicU64,
    expired_removed: AtomicU64,
    ignored_older: AtomicU64,
}

impl<S: LatestStore> StoreSink<S> {
    /// Stores documents of `dataset` (such as `ti_anomali.threatstream`) in `store`.
    pub fn new(store: S, dataset: &'static str) -> Self {
        Self {
            store,
            dataset,
            mapped: AtomicU64::new(0),
            mapping_errors: AtomicU64::new(0),
            expired_removed: AtomicU64::new(0),
            ignored_older: AtomicU64::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Removes what has expired by now; counted in the metrics.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let removed = self.store.sweep_expired(Utc::now()).await?;
        self.expired_removed.fetch_add(removed, Ordering::Relaxed);
        Ok(removed)
    }
}

impl<S: LatestStore> IndicatorSink for StoreSink<S> {
    async fn deliver(&self, batch: Batch) -> Result<(), SinkError> {
        let count = batch.documents.len() as u64;
        let errors = batch
            .documents
            .iter()
            .filter(|d| d.event.kind == "pipeline_error")
            .count() as u64;
        let report = self
            .store
            .apply(self.dataset, batch.documents, Utc::now())
            .await
            .map_err(|error| match error {
                StoreError::Closed | StoreError::Unavailable(_) => {
                    SinkError::Unavailable(error.to_string())
                }
                other => SinkError::Failed(other.to_string()),
            })?;
        self.mapped.fetch_add(count, Ordering::Relaxed);
        self.mapping_errors.fetch_add(errors, Ordering::Relaxed);
        self.expired_removed
            .fetch_add(report.removed, Ordering::Relaxed);
        self.ignored_older
            .fetch_add(report.ignored_older, Ordering::Relaxed);
        Ok(())
    }
}

impl<S: LatestStore> ReadApi for StoreSink<S> {
    async fn lookup(&self, value: &str) -> Result<Vec<Value>, SinkError> {
        let found = self
            .store
            .find(value, Utc::now())
            .await
            .map_err(|error| match error {
                StoreError::Closed | StoreError::Unavailable(_) => {
                    SinkError::Unavailable(error.to_string())
                }
                other => SinkError::Failed(other.to_string()),
            })?;
        Ok(found.into_iter().map(|live| live.document).collect())
    }

    async fn health(&self) -> Result<Value, String> {
        let live = self.store.count().await.map_err(|e| e.to_string())?;
        Ok(serde_json::json!({ "status": "green", "live_indicators": live }))
    }

    async fn metrics(&self) -> String {
        let live = self.store.count().await.unwrap_or(0);
        let counter = |name: &str, help: &str, value: u64| {
            format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n")
        };
        let mut text = String::new();
        text += &counter(
            "ti_indicators_mapped_total",
            "Indicators mapped and stored.",
            self.mapped.load(Ordering::Relaxed),
        );
        text += &counter(
            "ti_indicators_mapping_errors_total",
            "Indicators stored with error.message (event.kind pipeline_error).",
            self.mapping_errors.load(Ordering::Relaxed),
        );
        text += &counter(
            "ti_indicators_expired_removed_total",
            "Live indicators removed because they expired or were deleted.",
            self.expired_removed.load(Ordering::Relaxed),
        );
        text += &counter(
            "ti_indicators_ignored_older_total",
            "Older versions that arrived after a newer one.",
            self.ignored_older.load(Ordering::Relaxed),
        );
        text += &format!(
            "# HELP ti_indicators_live Live indicators in the latest store.\n# TYPE ti_indicators_live gauge\nti_indicators_live {live}\n"
        );
        text += &self.store.metrics();
        text
    }
}
