//! The webhook that receives ThreatStream pushes from Anomali's Elastic Extension, behaving like
//! Elastic Agent's `http_endpoint` input where users rely on it and stricter where it is weak.
//!
//! - Input: HTTP(S) POSTs of NDJSON, a JSON array, one object or concatenated objects (gzip
//!   allowed), configured with the keys Fleet renders for the integration ([`WebhookConfig`]).
//! - Output: one [`Batch`] of mapped ECS documents per request, handed to an [`IndicatorSink`]
//!   in request order; all or nothing: a request with one malformed record hands over nothing.
//! - Guarantee: `200 {"message": "success"}` is sent only after the sink returned from
//!   [`IndicatorSink::deliver`], i.e. once the batch is durable (at-least-once). Every refusal is a
//!   status with a JSON `message`; secrets are compared in constant time and never logged.
//! - Limits: `max_body_bytes` bounds decompressed bytes (413); a shared in-flight byte budget
//!   answers 503 with `Retry-After` instead of growing memory.
//! - Under Fleet: [`control`] speaks Elastic Agent's V2 control protocol (gRPC over localhost
//!   mTLS), through which the agent hands this program its policy as a component.
//! - Pull mode: [`poll`] polls the ThreatStream Intelligence API (cursor kept durably, advanced
//!   only after the sink accepted a page).

mod api;
mod auth;
mod body;
mod config;
pub mod control;
mod error;
mod handler;
mod metrics;
pub mod poll;
mod server;
mod sink;
mod tls;

pub use api::{NoReadApi, ReadApi, StoreSink};
pub use auth::sign_sha256_hex;
pub use config::{
    ClientAuth, DEFAULT_COMPLETION_TIMEOUT, HmacAlgorithm, HmacConfig, SecretConfig, SslConfig,
    ValidatedConfig, WebhookConfig,
};
pub use error::{ConfigError, ServerError, SinkError};
pub use metrics::WebhookMetrics;
pub use server::WebhookServer;
pub use sink::{Batch, DiscardSink, IndicatorSink, MemorySink};
