//! The latest store: exactly one live document per indicator, with expiry and lookups.
//!
//! - Input: mapped ECS documents of a dataset, in arrival order ([`LatestStore::apply`]).
//! - Output: the live documents, by key ([`LatestStore::get`]), by indicator value — IP, domain,
//!   URL, e-mail, hash — ([`LatestStore::find`]), and all of them ([`LatestStore::keys`]); and a
//!   source copy of every document received (the reference's source data stream).
//! - "Latest": key = (`event.dataset`, `anomali.threatstream.id`), one live document per key
//!   across all namespaces. A higher `update_id` wins; equal or missing `update_id` falls back to
//!   arrival order. A re-send of an older version never overwrites a newer one.
//! - Expiry: a document whose `anomali.threatstream.deleted_at` is at or before now is not live;
//!   one that arrives deleted or expired removes any live copy and is not stored as live; a
//!   sweep ([`LatestStore::sweep_expired`]) removes documents as they expire.
//! - Live documents carry `labels.is_ioc_transform_source: "false"`, source copies `"true"`.
//! - Durability: `apply` returns once the batch is durable. Backends: [`EmbeddedStore`] (one
//!   redb file, crash-safe, group commits) here; Elasticsearch in `anomali-sink-es`. Both pass
//!   the shared behaviour suite (feature `testsuite`).

mod archive;
mod embedded;
mod error;
mod rules;
mod store;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use archive::SourceArchive;
pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use error::StoreError;
pub use rules::{DocumentFacts, IndicatorKey, Version, normalise_lookup_value};
pub use store::{ApplyReport, LatestStore, LiveDocument};
