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
}
