//! Integration tests of the workspace: they run the real `ti-anomali` binary (built by cargo for
//! this package's tests) on real files and read what it writes. The tests live in `tests/`; this
//! library only holds shared helpers.

use std::path::PathBuf;

/// The repository root (this crate's parent folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared` beside the repository: the reference corpus. Tests that need it fail when it is
/// missing; they never skip.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("TI_ANOMALI_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("..").join("shared"),
    }
}
