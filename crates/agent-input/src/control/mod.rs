//! The Elastic Agent V2 control protocol, for running as a Fleet-managed component.
//!
//! - [`wire::proto`]: the messages and the gRPC client/server stubs (package `proto`, service
//!   `ElasticAgent`), generated from the project's own wire-compatible schema.

pub mod wire;
