//! The latest store: **not implemented yet** (issue "latest-store and the main job").
//!
//! Planned contract:
//! - Input: ECS documents from the mapping crate, in arrival order.
//! - Output: exactly one live document per key (`event.dataset`, `anomali.threatstream.id`),
//!   across all namespaces, with lookups by indicator value (ip, domain, url, email, hash).
//! - "Latest": the higher `update_id` wins; with equal or missing `update_id`, the later arrival
//!   wins; an older version re-sent later never overwrites a newer one.
//! - Expiry: a document whose `anomali.threatstream.deleted_at` is at or before now is not live;
//!   an indicator that arrives deleted or expired removes any live copy.
//! - Backends: an embedded on-disk store and Elasticsearch, behind one trait and one shared
//!   behaviour test suite.
//!
//! Today this crate holds no code; nothing in the workspace depends on it yet.
