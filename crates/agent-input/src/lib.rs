//! The webhook input: **not implemented yet** (issue "agent-input").
//!
//! Planned contract:
//! - Input: HTTP POSTs from Anomali's Elastic Extension, configured with the same keys Fleet
//!   renders for the `http_endpoint` input (listen address and port, path, content type, HMAC,
//!   secret header, basic auth, TLS, body size limit, tags, `preserve_original_event`,
//!   `ioc_expiration_duration`).
//! - Output: raw records (see `anomali_model::records`) handed to the pipeline's sink, all or
//!   nothing per request.
//! - Guarantees: `200 {"message": "success"}` only after the sink has durably accepted every
//!   indicator of the request (at-least-once); errors answer with a status and a JSON message.
//!
//! Today this crate holds no code; nothing in the workspace depends on it yet.
