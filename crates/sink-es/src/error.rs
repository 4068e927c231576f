//! Errors of the Elasticsearch sink.

use thiserror::Error;

/// Why a call to Elasticsearch failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EsError {
    /// The cluster could not be reached (connection, TLS, timeout).
    #[error("elasticsearch unreachable: {0}")]
    Transport(String),
    /// The cluster answered with an error.
    #[error("elasticsearch answered {status} to {what}: {body}")]
    Status {
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// The answer (truncated).
        body: String,
    },
    /// A connection setting is wrong, contradicts another, or does not match the server (a
    /// `ca_fingerprint` no presented certificate has).
    #[error("elasticsearch setting {key}: {reason}")]
    Config {
        /// The YAML key at fault, as written in the configuration.
        key: String,
        /// What is wrong, lowercase.
        reason: String,
    },
}
