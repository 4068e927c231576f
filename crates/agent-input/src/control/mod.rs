//! The Elastic Agent V2 control protocol, for running as a Fleet-managed component.
//!
//! - [`wire::proto`]: the messages and the gRPC client/server stubs (package `proto`, service
//!   `ElasticAgent`), generated from the project's own wire-compatible schema.
//! - [`structs`]: lossless-where-possible conversion between `google.protobuf.Struct` (how the
//!   agent delivers policy blocks) and `serde_json::Value`.
//! - [`client`]: the component side: read the start-up info, connect with mTLS, keep the
//!   check-in and actions streams going.
//! - `fake_agent` (feature `fake-agent`, tests only): an in-process agent that serves the
//!   protocol over mTLS and enforces the agent's first-message rules.

pub mod client;
pub mod structs;
pub mod wire;

#[cfg(feature = "fake-agent")]
pub mod fake_agent;
