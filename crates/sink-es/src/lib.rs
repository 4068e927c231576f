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
//! Done so far: the templates and the latest index's body with their field types
//! ([`templates`]), downgraded for clusters that lack a field type or ILM ([`Capabilities`]);
//! capability detection and idempotent setup; connection settings ([`EsConnection`]: nodes or
//! cloud id, basic / API key / bearer credentials, a CA file or a pinned CA fingerprint); the
//! `LatestStore` backend ([`EsLatestStore`], passing the shared behaviour suite in the e2e
//! tests). Not yet: batching, retries with
//! backoff, the dead-letter file, the spool, the index upgrade path, `serve --es-url`.

mod bulk;
mod capabilities;
mod client;
mod config;
mod dead_letter;
mod error;
mod latest;
mod pin;
mod retry;
mod service;
mod setup;
mod shipping;
mod spool;
pub mod templates;

pub use bulk::{ActionKind, ItemOutcome, RequestOutcome, classify, classify_request};
pub use capabilities::Capabilities;
pub use client::{Answer, EsClient};
pub use config::{EsConnection, VerificationMode, cloud_id_url};
pub use dead_letter::{DeadLetter, DeadLetterFile};
pub use error::{EsError, SpoolError};
pub use latest::{EsLatestStore, IndexNames};
pub use retry::Backoff;
pub use service::{Shipper, ShipperConfig, ShipperCounters};
pub use setup::{detect_capabilities, ensure_setup};
pub use shipping::ShippingStore;
pub use spool::{Spool, SpoolEntry};
