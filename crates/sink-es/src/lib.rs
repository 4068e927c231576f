//! Elasticsearch sink: the production target of `ti-anomali serve --es-url`.
//!
//! Contract:
//! - Input: ECS documents from the mapping crate, one push or polled page at a time, with their
//!   dataset ([`Stream`]: the webhook's `threatstream` or the poller's `intelligence`).
//! - Output, per stream: the source data stream `logs-ti_anomali.<stream>-<namespace>` (`create`,
//!   `_id` fixed when spooled), and the latest index (`logs-ti_anomali_latest.threatstream-2`,
//!   `logs-ti_anomali_latest.intelligence-3`) behind its alias (`index` under `_id` `dataset:id`,
//!   versioned by `update_id`; `delete` for deleted or expired indicators): idempotent redelivery.
//! - Delivery: a push is committed to the local [`Spool`] before the webhook answers 200 and
//!   leaves it only once Elasticsearch answered each item: applied, or refused for good and
//!   written to the [`DeadLetterFile`]. At least once; a full spool refuses (503).
//! - "Latest": per indicator, the highest `update_id` Elasticsearch has seen, unless it is
//!   deleted or its expiry (`deleted_at`; `deletion_scheduled_at` for intelligence) has passed
//!   (the sweeper removes those at every interval).
//! - Setup at start, idempotent: templates typed as the reference ([`templates`]), downgraded
//!   to what the cluster offers ([`Capabilities`]); older latest index versions folded into the
//!   current one ([`upgrade_latest_index`]); source retention by ILM, the data stream lifecycle,
//!   or itself ([`retention_mode`]). Connections: [`EsConnection`] (auth, TLS, cloud id).

mod bulk;
mod capabilities;
mod client;
mod config;
mod dead_letter;
mod error;
mod latest;
mod names;
mod pin;
mod retention;
mod retry;
mod service;
mod setup;
mod shipping;
mod spool;
pub mod templates;
mod upgrade;

pub use bulk::{
    ActionKind, Encoded, ItemOutcome, RequestOutcome, ShipIdentity, classify, classify_request,
    encode_actions,
};
pub use capabilities::Capabilities;
pub use client::{Answer, EsClient};
pub use config::{EsConnection, VerificationMode, cloud_id_url};
pub use dead_letter::{DeadLetter, DeadLetterFile};
/// The HTTP method of [`EsClient::json`].
pub use elasticsearch::http::Method;
pub use error::{EsError, SpoolError};
pub use latest::EsLatestStore;
pub use names::{IndexNames, Stream};
pub use retention::{
    BackingIndex, DEFAULT_SOURCE_RETENTION_DAYS, RetentionMode, RetentionReport,
    SELF_MANAGED_ROLLOVER_AGE_HOURS, apply_source_retention, enforce_source_retention,
    indices_past_retention, retention_mode, write_index_due,
};
pub use retry::Backoff;
pub use service::{Shipper, ShipperConfig, ShipperCounters};
pub use setup::{detect_capabilities, ensure_setup};
pub use shipping::ShippingStore;
pub use spool::{Spool, SpoolEntry};
pub use upgrade::{UpgradeReport, upgrade_latest_index};
