//! Errors of the latest store.

use thiserror::Error;

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (I/O, corruption, full disk).
    #[error("embedded store: {0}")]
    Database(String),
    /// The source archive could not be written.
    #[error("source archive {path}: {source}")]
    Archive {
        /// The segment file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store is shut down.
    #[error("the store is closed")]
    Closed,
    /// The backend cannot be reached for now (a remote cluster down, overloaded): retry later.
    #[error("unavailable for now: {0}")]
    Unavailable(String),
    /// A stored record could not be read back.
    #[error("damaged record for {key}: {reason}")]
    Damaged {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

macro_rules! from_redb {
    ($($error:ty),+) => {
        $(impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                Self::Database(error.to_string())
            }
        })+
    };
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
