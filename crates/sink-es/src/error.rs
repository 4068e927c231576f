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

/// Why the spool did not take or give an entry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The spool is at its size limit: Elasticsearch has not taken what is queued yet.
    #[error("the spool is full ({bytes} of {limit} bytes queued for elasticsearch)")]
    Full {
        /// Bytes queued.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The spool's file failed.
    #[error("spool: {0}")]
    Database(String),
    /// The spool is shutting down.
    #[error("the spool is closed")]
    Closed,
}
