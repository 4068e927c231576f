//! [`SourceArchive`]: the raw mapped documents (the reference's source data stream), appended to
//! daily NDJSON segments and deleted after the retention period.
//!
//! A crash never leaves a torn line that later breaks reading: a failed write is cut back to the
//! last whole line at once, and opening the archive cuts any tail without a newline (the trace
//! of a crash in the middle of a write) before anything is appended.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::StoreError;

const PREFIX: &str = "source-";
const SUFFIX: &str = ".ndjson";

/// Daily NDJSON segments in one folder.
#[derive(Debug)]
pub struct SourceArchive {
    dir: PathBuf,
    retention_days: u32,
    current: Option<(NaiveDate, File)>,
    dirty: bool,
}

fn archive_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Archive {
        path: path.to_path_buf(),
        source,
    }
}

impl SourceArchive {
    /// Opens (creating) the archive in `dir`, repairs torn tails, and keeps `retention_days` of
    /// segments.
    pub fn open(dir: impl Into<PathBuf>, retention_days: u32) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| archive_error(&dir, e))?;
        let archive = Self {
            dir,
            retention_days,
            current: None,
            dirty: false,
        };
        for (_, path) in archive.segments()? {
            repair_tail(&path)?;
        }
        Ok(archive)
    }

    /// The segment file of `day`.
    pub fn segment_path(&self, day: NaiveDate) -> PathBuf {
        self.dir
            .join(format!("{PREFIX}{}{SUFFIX}", day.format("%Y-%m-%d")))
    }

    /// Every segment, oldest first.
    pub fn segments(&self) -> Result<Vec<(NaiveDate, PathBuf)>, StoreError> {
        let mut segments = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| archive_error(&self.dir, e))? {
            let entry = entry.map_err(|e| archive_error(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(date) = name
                .strip_prefix(PREFIX)
                .and_then(|n| n.strip_suffix(SUFFIX))
            else {
                continue;
            };
            if let Ok(day) = NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                segments.push((day, entry.path()));
            }
        }
        segments.sort();
        Ok(segments)
    }

    /// Appends whole lines (`lines` must end with a newline) to the segment of `day`. Not yet
    /// durable: call [`SourceArchive::sync`].
    pub fn append(&mut self, day: NaiveDate, lines: &[u8]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        if self
            .current
            .as_ref()
            .is_none_or(|(current, _)| *current != day)
        {
            self.sync()?;
            let path = self.segment_path(day);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| archive_error(&path, e))?;
            self.current = Some((day, file));
        }
        let path = self.segment_path(day);
        let Some((_, file)) = self.current.as_mut() else {
            return Err(StoreError::Closed);
        };
        let before = file.metadata().map_err(|e| archive_error(&path, e))?.len();
        if let Err(error) = file.write_all(lines) {
            // Cut back to the last whole line so later appends do not follow a torn one.
            let _ = file.set_len(before);
            return Err(archive_error(&path, error));
        }
        self.dirty = true;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if let Some((day, file)) = &self.current
            && self.dirty
        {
            file.sync_data()
                .map_err(|e| archive_error(&self.segment_path(*day), e))?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Deletes segments older than the retention period, counted from `today`; returns them.
    pub fn prune(&mut self, today: NaiveDate) -> Result<Vec<PathBuf>, StoreError> {
        let keep_from = today - chrono::Days::new(u64::from(self.retention_days));
        let mut deleted = Vec::new();
        for (day, path) in self.segments()? {
            if day < keep_from {
                if self
                    .current
                    .as_ref()
                    .is_some_and(|(current, _)| *current == day)
                {
                    self.current = None;
                }
                fs::remove_file(&path).map_err(|e| archive_error(&path, e))?;
                deleted.push(path);
            }
        }
        Ok(deleted)
    }
}

/// Cuts a segment back to its last newline (a crash in the middle of a write).
fn repair_tail(path: &Path) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| archive_error(path, e))?;
    let length = file.metadata().map_err(|e| archive_error(path, e))?.len();
    let mut end = length;
    let mut buffer = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let chunk = &mut buffer[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .map_err(|e| archive_error(path, e))?;
        file.read_exact(chunk).map_err(|e| archive_error(path, e))?;
        if let Some(newline) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    if end != length {
        tracing::warn!(path = %path.display(), cut = length - end, "source archive: cut a torn last line");
        file.set_len(end).map_err(|e| archive_error(path, e))?;
        file.sync_data().map_err(|e| archive_error(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn appends_to_daily_segments_and_prunes_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut archive = SourceArchive::open(dir.path(), 5).unwrap();
        archive.append(day("2026-11-20"), b"{\"a\":1}\n").unwrap();
        archive.append(day("2026-12-01"), b"{\"b\":2}\n").unwrap();
        archive.append(day("2026-12-01"), b"{\"c\":3}\n").unwrap();
        archive.sync().unwrap();
        let text = fs::read_to_string(archive.segment_path(day("2026-12-01"))).unwrap();
        assert_eq!(text, "{\"b\":2}\n{\"c\":3}\n");
        let deleted = archive.prune(day("2026-12-03")).unwrap();
        assert_eq!(deleted, vec![archive.segment_path(day("2026-11-20"))]);
        assert_eq!(archive.segments().unwrap().len(), 1);
    }

    #[test]
    fn a_torn_tail_is_cut_when_opening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source-2026-12-01.ndjson");
        fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        let mut archive = SourceArchive::open(dir.path(), 5).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
        archive.append(day("2026-12-01"), b"{\"d\":4}\n").unwrap();
        archive.sync().unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n"
        );

        let whole_torn = dir.path().join("source-2026-12-02.ndjson");
        fs::write(&whole_torn, b"{\"no newline at all\":").unwrap();
        SourceArchive::open(dir.path(), 5).unwrap();
        assert_eq!(fs::read(&whole_torn).unwrap(), b"");
    }
}
