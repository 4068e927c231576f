//! Integration tests of the workspace, run by `cargo test --workspace`. They read the upstream
//! reference corpus from `../shared` beside the repository (or `TI_ANOMALI_SHARED`) and fail,
//! never skip, when it is missing. The tests live in `tests/`; this library holds their helpers.

use std::path::PathBuf;

/// `../shared` beside the repository: the reference corpus.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("TI_ANOMALI_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// Reads a file of the corpus, with a message that says what to do when it is missing.
pub fn read_shared(relative: &str) -> Vec<u8> {
    let path = shared_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; the reference corpus must sit in ../shared beside the repository",
            path.display()
        )
    })
}
