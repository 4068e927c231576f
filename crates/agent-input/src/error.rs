//! Errors of the webhook crate.

use thiserror::Error;

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The YAML could not be read (syntax, unknown key, wrong type).
    #[error("invalid webhook configuration: {0}")]
    Yaml(String),
    /// A value is wrong.
    #[error("invalid webhook configuration: {key}: {reason}")]
    Invalid {
        /// The key, dotted (`hmac.type`).
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Why the server could not start or run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listener could not bind.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file could not be read or used.
    #[error("tls: {0}")]
    Tls(String),
}

/// Why the sink did not accept a batch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink is full or unavailable for now; the client should retry later (503).
    #[error("the pipeline cannot take more data now: {0}")]
    Unavailable(String),
    /// The sink failed (500).
    #[error("the pipeline failed to store the indicators: {0}")]
    Failed(String),
}

/// An error and its causes, `: `-joined: the bare messages of HTTP and gRPC stacks ("builder
/// error", "transport error") say nothing without them.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
