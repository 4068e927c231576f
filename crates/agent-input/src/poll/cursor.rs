//! [`Cursor`]: the `update_id` of the last object accepted, kept in a small JSON file written
//! atomically (temporary file, fsync, rename), so a crash leaves the old or the new value.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The durable cursor.
#[derive(Debug)]
pub struct Cursor {
    path: PathBuf,
    last_update_id: Option<u64>,
}

impl Cursor {
    /// Reads the cursor at `path` (none when the file does not exist).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let last_update_id = match std::fs::read_to_string(path) {
            Ok(text) => {
                let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("cursor file {}: {e}", path.display()),
                    )
                })?;
                // A readable file with anything else is damage, not "no cursor": starting over
                // from initial_interval could skip what came in between.
                Some(value["last_update_id"].as_u64().ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "cursor file {}: last_update_id is not a whole number: {text}",
                            path.display()
                        ),
                    )
                })?)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(error),
        };
        Ok(Self {
            path: path.to_owned(),
            last_update_id,
        })
    }

    /// The last `update_id` accepted.
    pub fn last_update_id(&self) -> Option<u64> {
        self.last_update_id
    }

    /// Stores `update_id` durably.
    pub fn advance(&mut self, update_id: u64) -> std::io::Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let temporary = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(
            serde_json::json!({ "last_update_id": update_id })
                .to_string()
                .as_bytes(),
        )?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)?;
        if let Some(parent) = self.path.parent()
            && let Ok(folder) = std::fs::File::open(parent)
        {
            // The rename itself is durable once the folder is synced.
            let _ = folder.sync_all();
        }
        self.last_update_id = Some(update_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cursor.json");
        let mut cursor = Cursor::open(&path).expect("open");
        assert_eq!(cursor.last_update_id(), None);
        cursor.advance(42).expect("advance");
        assert_eq!(
            Cursor::open(&path).expect("reopen").last_update_id(),
            Some(42)
        );
        for damaged in [
            "not json",
            "{}",
            "{\"last_update_id\":\"42\"}",
            "{\"last_update_id\":-3}",
        ] {
            std::fs::write(&path, damaged).expect("write");
            assert!(
                Cursor::open(&path).is_err(),
                "{damaged}: a damaged cursor is an error, not a restart from zero"
            );
        }
    }
}
