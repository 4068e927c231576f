//! Generates the Rust types and the tonic client/server for the control protocol from
//! `proto/agent_control.proto`.
//!
//! protox parses the schema in Rust, so building needs no `protoc` on the machine; the well-known
//! types (`Struct`, `Timestamp`) come from protox's built-in copies and map to `prost_types`.

use std::error::Error;

const PROTO: &str = "proto/agent_control.proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    let descriptors = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
