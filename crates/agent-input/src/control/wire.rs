//! The control protocol's messages and gRPC stubs, generated at build time from
//! `proto/agent_control.proto` (see `build.rs`).
//!
//! - [`proto`] holds every message and enum of package `proto`, plus
//!   [`proto::elastic_agent_client::ElasticAgentClient`] (what the component uses) and
//!   [`proto::elastic_agent_server`] (what the fake agent serves).
//! - Field numbers and types in the schema are the wire contract with Elastic Agent; the
//!   `control_wire` tests pin them byte for byte.

/// Generated from `proto/agent_control.proto` (gRPC package `proto`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    clippy::all,
    clippy::pedantic,
    reason = "generated code: its shape is prost's and tonic's, documented in the .proto file"
)]
pub mod proto {
    tonic::include_proto!("proto");
}
