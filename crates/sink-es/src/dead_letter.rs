//! [`DeadLetterFile`]: documents Elasticsearch refused for good (a mapping conflict, a bad
//! value), one JSON line each with the reason, appended and synced before their spool entry
//! is removed, so nothing refused is silently dropped.
//!
//! A line: `{"@timestamp", "status", "error", "action", "document"}` where `action` and
//! `document` are the lines that were sent (`document` is null for a delete).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// One refused item.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    /// The item's status (or the whole request's).
    pub status: u16,
    /// Elasticsearch's error object (or a message).
    pub error: Value,
    /// The action line as sent.
    pub action: &'a [u8],
    /// The document line as sent, if any.
    pub document: Option<&'a [u8]>,
}

/// The dead letter file.
#[derive(Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
    file: Mutex<File>,
    written: AtomicU64,
}

impl DeadLetterFile {
    /// Opens `path` for appending (creating it and its folder).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
            written: AtomicU64::new(0),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines written since start.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Appends `letters` and syncs. Blocking.
    pub fn write(&self, letters: &[DeadLetter<'_>]) -> std::io::Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let mut text = Vec::new();
        for letter in letters {
            text.extend_from_slice(b"{\"@timestamp\":\"");
            text.extend_from_slice(now.as_bytes());
            text.extend_from_slice(
                format!("\",\"status\":{},\"error\":", letter.status).as_bytes(),
            );
            text.extend_from_slice(letter.error.to_string().as_bytes());
            text.extend_from_slice(b",\"action\":");
            push_json_or_string(&mut text, letter.action);
            text.extend_from_slice(b",\"document\":");
            match letter.document {
                Some(document) => push_json_or_string(&mut text, document),
                None => text.extend_from_slice(b"null"),
            }
            text.extend_from_slice(b"}\n");
        }
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("dead letter file lock poisoned"))?;
        file.write_all(&text)?;
        file.sync_data()?;
        self.written
            .fetch_add(letters.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Lines this program wrote are JSON; anything else (a damaged spool) goes in as a string.
fn push_json_or_string(text: &mut Vec<u8>, line: &[u8]) {
    if serde_json::from_slice::<&serde_json::value::RawValue>(line).is_ok() {
        text.extend_from_slice(line);
    } else {
        let lossy = String::from_utf8_lossy(line);
        text.extend_from_slice(Value::String(lossy.into_owned()).to_string().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_letter_is_one_json_line_with_its_reason() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = DeadLetterFile::open(&dir.path().join("dead/letters.ndjson")).expect("open");
        file.write(&[
            DeadLetter {
                status: 400,
                error: serde_json::json!({"type": "document_parsing_exception"}),
                action: br#"{"create":{"_index":"x"}}"#,
                document: Some(br#"{"a":1}"#),
            },
            DeadLetter {
                status: 400,
                error: Value::String("refused".into()),
                action: b"not json",
                document: None,
            },
        ])
        .expect("write");
        let text = std::fs::read_to_string(file.path()).expect("read");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["error"]["type"], "document_parsing_exception");
        assert_eq!(lines[0]["document"]["a"], 1);
        assert_eq!(lines[1]["action"], "not json");
        assert_eq!(lines[1]["document"], Value::Null);
        assert_eq!(file.written(), 2);
    }
}
