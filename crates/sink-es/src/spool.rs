//! [`Spool`]: the local write-ahead queue between the webhook and Elasticsearch.
//!
//! Each accepted push is one entry (its `_bulk` lines), committed to disk (redb, fsync) before
//! the webhook answers 200, and removed only once Elasticsearch has answered every item (applied
//! or dead-lettered). Entries get increasing sequence numbers in commit order, so a reader that
//! remembers the last number it took never misses one. After a crash or a restart every entry
//! still there is shipped again; the bodies are written so a replay is idempotent. The spool has
//! a size limit: past it, [`Spool::append`] refuses (the webhook answers 503) instead of growing.
//! One writer thread commits appends and removals in groups: many small pushes share a commit.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{Notify, oneshot};

use crate::error::SpoolError;

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");

/// Appends and removals handled together in one commit, at most.
const GROUP_LIMIT: usize = 256;

/// A spooled push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolEntry {
    /// Its sequence number (increasing in commit order).
    pub seq: u64,
    /// Its `_bulk` lines.
    pub body: Vec<u8>,
}

/// The write-ahead queue. Cheap to clone; all clones share one file.
#[derive(Debug, Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Arc<Database>,
    path: PathBuf,
    bytes: AtomicU64,
    entries: AtomicU64,
    max_bytes: u64,
    writer: Mutex<mpsc::Sender<Work>>,
    appended: Notify,
}

enum Work {
    Append {
        body: Vec<u8>,
        done: oneshot::Sender<Result<u64, SpoolError>>,
    },
    Remove {
        seqs: Vec<u64>,
        done: oneshot::Sender<Result<(), SpoolError>>,
    },
}

fn database_error(error: impl std::fmt::Display) -> SpoolError {
    SpoolError::Database(error.to_string())
}

impl Spool {
    /// Opens (or creates) the spool file at `path`; it holds at most `max_bytes` of entries.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(database_error)?;
        }
        let db = Arc::new(Database::create(path).map_err(|e| {
            SpoolError::Database(format!("cannot open the spool {}: {e}", path.display()))
        })?);
        let (bytes, entries, last) = {
            let txn = db.begin_write().map_err(database_error)?;
            let table = txn.open_table(ENTRIES).map_err(database_error)?;
            let mut bytes = 0u64;
            let mut entries = 0u64;
            for row in table.iter().map_err(database_error)? {
                let (_, value) = row.map_err(database_error)?;
                bytes += value.value().len() as u64;
                entries += 1;
            }
            let last = table
                .last()
                .map_err(database_error)?
                .map(|(seq, _)| seq.value());
            drop(table);
            txn.commit().map_err(database_error)?;
            (bytes, entries, last)
        };
        let (sender, receiver) = mpsc::channel();
        let inner = Arc::new(Inner {
            db: db.clone(),
            path: path.to_owned(),
            bytes: AtomicU64::new(bytes),
            entries: AtomicU64::new(entries),
            max_bytes,
            writer: Mutex::new(sender),
            appended: Notify::new(),
        });
        let next_seq = last.map_or(1, |seq| seq + 1);
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("es-spool-writer".to_owned())
            .spawn(move || write_loop(&db, receiver, next_seq, &weak))
            .map_err(database_error)?;
        Ok(Self { inner })
    }

    /// Commits `body` as a new entry and returns its sequence number; refuses with
    /// [`SpoolError::Full`] when it would pass the size limit (an empty spool takes any entry,
    /// so one large push cannot block forever).
    pub async fn append(&self, body: Vec<u8>) -> Result<u64, SpoolError> {
        let size = body.len() as u64;
        let before = self.inner.bytes.fetch_add(size, Ordering::AcqRel);
        if before > 0 && before + size > self.inner.max_bytes {
            self.inner.bytes.fetch_sub(size, Ordering::AcqRel);
            return Err(SpoolError::Full {
                bytes: before,
                limit: self.inner.max_bytes,
            });
        }
        let (done, answer) = oneshot::channel();
        let sent = self
            .inner
            .writer
            .lock()
            .map_err(|_| SpoolError::Closed)?
            .send(Work::Append { body, done });
        let result = match sent {
            Ok(()) => answer.await.unwrap_or(Err(SpoolError::Closed)),
            Err(_) => Err(SpoolError::Closed),
        };
        match result {
            Ok(seq) => {
                self.inner.entries.fetch_add(1, Ordering::AcqRel);
                self.inner.appended.notify_waiters();
                Ok(seq)
            }
            Err(error) => {
                self.inner.bytes.fetch_sub(size, Ordering::AcqRel);
                Err(error)
            }
        }
    }

    /// Entries after `after` (all when `None`), in order: at most `max_entries`, and stopping
    /// before passing `max_bytes` (the first entry always comes, however large). Blocking.
    pub fn read_after(
        &self,
        after: Option<u64>,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<SpoolEntry>, SpoolError> {
        let txn = self.inner.db.begin_read().map_err(database_error)?;
        let table = txn.open_table(ENTRIES).map_err(database_error)?;
        let start = after.map_or(0, |seq| seq.saturating_add(1));
        let mut taken = Vec::new();
        let mut bytes = 0usize;
        for row in table.range(start..).map_err(database_error)? {
            let (seq, value) = row.map_err(database_error)?;
            let body = value.value();
            if !taken.is_empty() && (taken.len() >= max_entries || bytes + body.len() > max_bytes) {
                break;
            }
            bytes += body.len();
            taken.push(SpoolEntry {
                seq: seq.value(),
                body: body.to_vec(),
            });
        }
        Ok(taken)
    }

    /// Removes entries whose every item Elasticsearch has answered.
    pub async fn remove(&self, seqs: Vec<u64>) -> Result<(), SpoolError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.inner
            .writer
            .lock()
            .map_err(|_| SpoolError::Closed)?
            .send(Work::Remove { seqs, done })
            .map_err(|_| SpoolError::Closed)?;
        answer.await.unwrap_or(Err(SpoolError::Closed))
    }

    /// Bytes of entries in the spool.
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::Acquire)
    }

    /// Entries in the spool.
    pub fn entries(&self) -> u64 {
        self.inner.entries.load(Ordering::Acquire)
    }

    /// The size limit.
    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// The spool's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Resolves at the next append (or spuriously); callers re-read and wait again.
    pub async fn appended(&self) {
        self.inner.appended.notified().await;
    }
}

/// The writer thread: takes what is queued (up to [`GROUP_LIMIT`]), applies it in one
/// transaction, commits once, then answers each caller.
fn write_loop(
    db: &Database,
    receiver: mpsc::Receiver<Work>,
    mut next_seq: u64,
    inner: &std::sync::Weak<Inner>,
) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_LIMIT {
            match receiver.try_recv() {
                Ok(work) => group.push(work),
                Err(_) => break,
            }
        }
        let seq_before = next_seq;
        let mut removed_bytes = 0u64;
        let mut removed_entries = 0u64;
        let outcome = (|| -> Result<Vec<Option<u64>>, SpoolError> {
            let txn = db.begin_write().map_err(database_error)?;
            let mut seqs = Vec::with_capacity(group.len());
            {
                let mut table = txn.open_table(ENTRIES).map_err(database_error)?;
                for work in &group {
                    match work {
                        Work::Append { body, .. } => {
                            table
                                .insert(next_seq, body.as_slice())
                                .map_err(database_error)?;
                            seqs.push(Some(next_seq));
                            next_seq += 1;
                        }
                        Work::Remove { seqs: gone, .. } => {
                            for seq in gone {
                                if let Some(old) = table.remove(seq).map_err(database_error)? {
                                    removed_bytes += old.value().len() as u64;
                                    removed_entries += 1;
                                }
                            }
                            seqs.push(None);
                        }
                    }
                }
            }
            txn.commit().map_err(database_error)?;
            Ok(seqs)
        })();
        match outcome {
            Ok(seqs) => {
                if let Some(inner) = inner.upgrade() {
                    inner.bytes.fetch_sub(removed_bytes, Ordering::AcqRel);
                    inner.entries.fetch_sub(removed_entries, Ordering::AcqRel);
                }
                for (work, seq) in group.into_iter().zip(seqs) {
                    match work {
                        Work::Append { done, .. } => {
                            let _ = done.send(seq.ok_or(SpoolError::Closed));
                        }
                        Work::Remove { done, .. } => {
                            let _ = done.send(Ok(()));
                        }
                    }
                }
            }
            Err(error) => {
                next_seq = seq_before;
                for work in group {
                    match work {
                        Work::Append { done, .. } => {
                            let _ = done.send(Err(error.clone()));
                        }
                        Work::Remove { done, .. } => {
                            let _ = done.send(Err(error.clone()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_survive_a_reopen_in_order_until_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("spool.redb");
        {
            let spool = Spool::open(&path, 1 << 20).expect("open");
            assert_eq!(spool.append(b"one\n".to_vec()).await, Ok(1));
            assert_eq!(spool.append(b"two\n".to_vec()).await, Ok(2));
            assert_eq!(spool.append(b"three\n".to_vec()).await, Ok(3));
            spool.remove(vec![1]).await.expect("remove");
            assert_eq!(spool.entries(), 2);
        }
        // The writer thread lets go of the file once every handle is gone.
        let spool = (0..100)
            .find_map(|_| {
                Spool::open(&path, 1 << 20).ok().or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                })
            })
            .expect("reopen");
        assert_eq!(spool.entries(), 2);
        assert_eq!(spool.bytes(), 10);
        let all = spool.read_after(None, 10, 1 << 20).expect("read");
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 3],
            "the removed entry is gone, the rest kept their order"
        );
        assert_eq!(
            spool.append(b"four\n".to_vec()).await,
            Ok(4),
            "numbers go on"
        );
        let after = spool.read_after(Some(3), 10, 1 << 20).expect("read");
        assert_eq!(after[0].body, b"four\n");
    }

    #[tokio::test]
    async fn a_full_spool_refuses_instead_of_growing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool = Spool::open(&dir.path().join("spool.redb"), 10).expect("open");
        // An empty spool takes even an entry past the limit.
        assert!(spool.append(vec![b'x'; 12]).await.is_ok());
        assert!(matches!(
            spool.append(vec![b'y'; 1]).await,
            Err(SpoolError::Full { .. })
        ));
        spool.remove(vec![1]).await.expect("remove");
        assert_eq!(spool.bytes(), 0);
        assert!(spool.append(vec![b'z'; 5]).await.is_ok());
        assert!(spool.append(vec![b'z'; 5]).await.is_ok());
        assert!(spool.append(vec![b'z'; 1]).await.is_err());
    }

    #[tokio::test]
    async fn reads_respect_count_and_size_limits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool = Spool::open(&dir.path().join("spool.redb"), 1 << 20).expect("open");
        for _ in 0..5 {
            spool.append(vec![b'a'; 100]).await.expect("append");
        }
        assert_eq!(spool.read_after(None, 3, 1 << 20).expect("read").len(), 3);
        assert_eq!(spool.read_after(None, 10, 250).expect("read").len(), 2);
        assert_eq!(spool.read_after(None, 10, 10).expect("read").len(), 1);
        assert_eq!(
            spool.read_after(Some(5), 10, 1 << 20).expect("read").len(),
            0
        );
    }
}
