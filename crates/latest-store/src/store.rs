//! [`LatestStore`]: the behaviour every backend offers, and what it reports.

use std::future::Future;

use anomali_model::EcsDocument;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::StoreError;
use crate::rules::IndicatorKey;

/// What one [`LatestStore::apply`] did, document by document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// New live documents.
    pub inserted: u64,
    /// Live documents replaced by a newer version.
    pub replaced: u64,
    /// Older versions that arrived after a newer one, ignored.
    pub ignored_older: u64,
    /// Live documents removed because the newer version is deleted or expired.
    pub removed: u64,
    /// Deleted or expired on arrival with no live copy: nothing to do.
    pub expired_on_arrival: u64,
    /// Documents without `anomali.threatstream.id`: kept in the source archive only.
    pub without_id: u64,
    /// Documents queued durably for a backend that applies them later (a spool in front of
    /// Elasticsearch); the counts above then stay zero for them.
    pub queued: u64,
}

/// A live document as stored (with `labels.is_ioc_transform_source: "false"`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveDocument {
    /// Its key.
    pub key: IndicatorKey,
    /// The document.
    pub document: Value,
}

/// One live document per indicator, durable.
///
/// Every method is safe to call from many tasks at once. `apply` returns only once the batch is
/// durable (for the embedded backend: fsynced; for Elasticsearch: acknowledged, or committed to
/// the local spool that ships it later).
pub trait LatestStore: Send + Sync + 'static {
    /// Keeps the source copy of every document and applies the "latest" rule (see the crate
    /// docs) to each, in order. `now` decides what is expired.
    fn apply(
        &self,
        dataset: &'static str,
        documents: Vec<EcsDocument>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ApplyReport, StoreError>> + Send;

    /// Removes the live document of `key`; `true` when there was one.
    fn remove(&self, key: &IndicatorKey) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The live document of `key`, if any and not expired at `now`.
    fn get(
        &self,
        key: &IndicatorKey,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<LiveDocument>, StoreError>> + Send;

    /// The live documents whose IP, domain, URL, e-mail or hash is `value` (see
    /// [`crate::normalise_lookup_value`]), not expired at `now`.
    fn find(
        &self,
        value: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<LiveDocument>, StoreError>> + Send;

    /// Removes every live document whose `deleted_at` is at or before `now`; returns how many.
    fn sweep_expired(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many live documents are stored (expired ones count until swept).
    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Every stored key, in key order.
    fn keys(&self) -> impl Future<Output = Result<Vec<IndicatorKey>, StoreError>> + Send;

    /// The backend's own metrics in the Prometheus text format (none by default).
    fn metrics(&self) -> String {
        String::new()
    }
}
