//! Elasticsearch sink: **in progress** (issue "sink-es and `cargo xtask e2e`").
//!
//! Contract:
//! - Input: ECS documents from the mapping crate, each with its dataset and namespace.
//! - Output: the source data stream `logs-ti_anomali.threatstream-<namespace>` (`create`), and the
//!   latest index `logs-ti_anomali_latest.threatstream-2` behind the alias
//!   `logs-ti_anomali_latest.threatstream` (`index` with an `_id` derived from dataset and
//!   indicator id; `delete` for deleted or expired indicators), so redelivery is idempotent.
//! - Guarantees: at-least-once (acknowledged by Elasticsearch or kept in a local spool), per-item
//!   bulk results classified into retried and dead-lettered, never silently dropped.
//!
//! - Source retention (5 days by default): ILM where the cluster has it, else the data stream
//!   lifecycle, else self-managed rollover and deletion of old backing indices
//!   ([`retention_mode`], [`apply_source_retention`], [`enforce_source_retention`]).
//! - Older versions of the latest index (`-1`) are folded into the current one at start and the
//!   alias moved to it ([`upgrade_latest_index`]), idempotently.
//!
//! Done so far: the templates and the latest index's body with their field types
//! ([`templates`]), downgraded for clusters that lack a field type or ILM ([`Capabilities`]);
//! capability detection and idempotent setup; the `LatestStore` backend ([`EsLatestStore`],
//! passing the shared behaviour suite in the e2e tests); source retention in its three modes and
//! the latest index upgrade path (self-managed retention and the upgrade tested on a real
//! minimal cluster; the data stream lifecycle mode only by unit tests). Not yet: batching,
//! retries with backoff, the dead-letter file, the spool; the binary calling the upgrade and the
//! periodic self-managed retention; the ILM policy follows the default 5 days only.

mod capabilities;
mod client;
mod error;
mod latest;
mod retention;
mod setup;
pub mod templates;
mod upgrade;

pub use capabilities::Capabilities;
pub use client::{Answer, EsClient};
pub use error::EsError;
pub use latest::{EsLatestStore, IndexNames};
pub use retention::{
    BackingIndex, DEFAULT_SOURCE_RETENTION_DAYS, RetentionMode, RetentionReport,
    SELF_MANAGED_ROLLOVER_AGE_HOURS, apply_source_retention, enforce_source_retention,
    indices_past_retention, retention_mode, write_index_due,
};
pub use setup::{detect_capabilities, ensure_setup};
pub use upgrade::{UpgradeReport, upgrade_latest_index};
