//! [`EmbeddedStore`]: the latest store in one redb file, with the source archive beside it.
//!
//! Tables: `live` (key -> record: version, expiry, lookup values, document), `expiry`
//! ((expires_at ms, key) -> ()) so a sweep is a range scan, `by_value` ((value, key) -> ()) for
//! lookups, and `meta` (the arrival counter). One writer thread owns all writes and commits in
//! groups: every batch waiting when a commit starts joins it, so durability costs one fsync of
//! the archive and one commit per group, not per request.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread;

use anomali_model::{DocumentRole, EcsDocument};
use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

use crate::archive::SourceArchive;
use crate::error::StoreError;
use crate::rules::{DocumentFacts, IndicatorKey, Version, normalise_lookup_value};
use crate::store::{ApplyReport, LatestStore, LiveDocument};

const LIVE: TableDefinition<&str, &[u8]> = TableDefinition::new("live");
const EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("expiry");
const BY_VALUE: TableDefinition<(&str, &str), ()> = TableDefinition::new("by_value");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ARRIVAL: &str = "arrival";

/// Most batches one commit takes: bounds the latency a group adds.
const MAX_GROUP: usize = 256;
/// Most expired documents one sweep job removes: a big wave of expiries is removed in several
/// commits, with the webhook's batches committing in between, so pushes never wait long.
const SWEEP_CHUNK: usize = 2_000;

/// Settings of the embedded store.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Days of source segments to keep. By default, 5 (the reference's source retention).
    pub source_retention_days: u32,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            source_retention_days: 5,
        }
    }
}

enum Job {
    Apply {
        dataset: &'static str,
        documents: Vec<EcsDocument>,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<ApplyReport, StoreError>>,
    },
    Remove {
        key: IndicatorKey,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Sweep {
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

/// The embedded backend. Cheap to clone; dropping the last clone finishes the queued writes,
/// stops the writer thread and closes the file (so it can be opened again at once).
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Arc<Database>,
    jobs: Option<SyncSender<Job>>,
    writer: Option<thread::JoinHandle<()>>,
    path: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer loop once the queued jobs are done.
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl EmbeddedStore {
    /// Opens (creating) the store in `dir`: `latest.redb` and `source/`.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("latest.redb");
        let db = Arc::new(Database::create(&path)?);
        {
            let txn = db.begin_write()?;
            txn.open_table(LIVE)?;
            txn.open_table(EXPIRY)?;
            txn.open_table(BY_VALUE)?;
            txn.open_table(META)?;
            txn.commit()?;
        }
        let archive = SourceArchive::open(dir.join("source"), options.source_retention_days)?;
        let (jobs, queue) = mpsc::sync_channel(1024);
        let writer_db = db.clone();
        let writer = thread::Builder::new()
            .name("latest-store-writer".into())
            .spawn(move || writer(&writer_db, archive, &queue))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                jobs: Some(jobs),
                writer: Some(writer),
                path,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let jobs = self.inner.jobs.clone().ok_or(StoreError::Closed)?;
        let job = job(reply);
        // The queue is bounded: wait for room off the async threads.
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static {
        let db = self.inner.db.clone();
        async move {
            tokio::task::spawn_blocking(move || work(&db))
                .await
                .map_err(|_| StoreError::Closed)?
        }
    }
}

impl LatestStore for EmbeddedStore {
    async fn apply(
        &self,
        dataset: &'static str,
        documents: Vec<EcsDocument>,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport, StoreError> {
        self.submit(|reply| Job::Apply {
            dataset,
            documents,
            now,
            reply,
        })
        .await
    }

    async fn remove(&self, key: &IndicatorKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.submit(|reply| Job::Remove { key, reply }).await
    }

    async fn get(
        &self,
        key: &IndicatorKey,
        now: DateTime<Utc>,
    ) -> Result<Option<LiveDocument>, StoreError> {
        let key = key.clone();
        self.read(move |db| {
            let txn = db.begin_read()?;
            let live = txn.open_table(LIVE)?;
            let encoded = key.encoded();
            let Some(bytes) = live.get(encoded.as_str())? else {
                return Ok(None);
            };
            let record = Record::decode(&encoded, bytes.value())?;
            record.live_document(key, now)
        })
        .await
    }

    async fn find(&self, value: &str, now: DateTime<Utc>) -> Result<Vec<LiveDocument>, StoreError> {
        let value = normalise_lookup_value(value);
        self.read(move |db| {
            let txn = db.begin_read()?;
            let by_value = txn.open_table(BY_VALUE)?;
            let live = txn.open_table(LIVE)?;
            let mut found = Vec::new();
            for entry in by_value.range((value.as_str(), "")..)? {
                let (entry, _) = entry?;
                let (entry_value, encoded) = entry.value();
                if entry_value != value {
                    break;
                }
                let Some(bytes) = live.get(encoded)? else {
                    continue;
                };
                let record = Record::decode(encoded, bytes.value())?;
                let Some(key) = IndicatorKey::decode(encoded) else {
                    continue;
                };
                if let Some(document) = record.live_document(key, now)? {
                    found.push(document);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn sweep_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let chunk = self.submit(|reply| Job::Sweep { now, reply }).await?;
            removed += chunk;
            if chunk < SWEEP_CHUNK as u64 {
                return Ok(removed);
            }
        }
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.read(|db| Ok(db.begin_read()?.open_table(LIVE)?.len()?))
            .await
    }

    async fn keys(&self) -> Result<Vec<IndicatorKey>, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let live = txn.open_table(LIVE)?;
            let mut keys = Vec::new();
            for entry in live.iter()? {
                let (key, _) = entry?;
                if let Some(key) = IndicatorKey::decode(key.value()) {
                    keys.push(key);
                }
            }
            Ok(keys)
        })
        .await
    }
}

/// The writer thread: takes every job waiting, archives and applies them, commits once, answers.
fn writer(db: &Database, mut archive: SourceArchive, queue: &Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let outcome = run_group(db, &mut archive, &mut group);
        for (job, result) in group.into_iter().zip(outcome) {
            match (job, result) {
                (Job::Apply { reply, .. }, result) => {
                    let _ = reply.send(result.map(|r| r.into_report()));
                }
                (Job::Remove { reply, .. }, result) => {
                    let _ = reply.send(result.map(|r| r.removed > 0));
                }
                (Job::Sweep { reply, .. }, result) => {
                    let _ = reply.send(result.map(|r| r.removed));
                }
            }
        }
    }
}

/// Per-job results of one group: all succeed or all fail (one transaction).
fn run_group(
    db: &Database,
    archive: &mut SourceArchive,
    group: &mut [Job],
) -> Vec<Result<Outcome, StoreError>> {
    let jobs = group.len();
    let fail_all = |error: StoreError| {
        let message = error.to_string();
        (0..jobs)
            .map(|_| Err(StoreError::Database(message.clone())))
            .collect::<Vec<_>>()
    };
    // The source copies first, durable before the live state changes. Stamped in place (no
    // copy): the live copy is stamped again, as Latest, when it is stored.
    for job in group.iter_mut() {
        if let Job::Apply {
            dataset,
            documents,
            now,
            ..
        } = job
        {
            let mut lines = Vec::with_capacity(documents.len() * 1200);
            for document in documents.iter_mut() {
                document.stamp(dataset, DocumentRole::Source);
                document.write_json(&mut lines);
                lines.push(b'\n');
            }
            if let Err(error) = archive.append(now.date_naive(), &lines) {
                return fail_all(error);
            }
            if let Err(error) = archive.prune(now.date_naive()) {
                tracing::warn!(%error, "source archive: cannot delete old segments");
            }
        }
    }
    if let Err(error) = archive.sync() {
        return fail_all(error);
    }
    match apply_group(db, group) {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(error) => fail_all(error),
    }
}

#[derive(Debug, Default)]
struct Outcome {
    inserted: u64,
    replaced: u64,
    ignored_older: u64,
    removed: u64,
    expired_on_arrival: u64,
    without_id: u64,
}

impl Outcome {
    fn into_report(self) -> ApplyReport {
        ApplyReport {
            inserted: self.inserted,
            replaced: self.replaced,
            ignored_older: self.ignored_older,
            removed: self.removed,
            expired_on_arrival: self.expired_on_arrival,
            without_id: self.without_id,
            queued: 0,
        }
    }
}

fn apply_group(db: &Database, group: &mut [Job]) -> Result<Vec<Outcome>, StoreError> {
    let txn = db.begin_write()?;
    let mut outcomes = Vec::with_capacity(group.len());
    {
        let mut tables = Tables {
            live: txn.open_table(LIVE)?,
            expiry: txn.open_table(EXPIRY)?,
            by_value: txn.open_table(BY_VALUE)?,
        };
        let mut meta = txn.open_table(META)?;
        let mut arrival = meta.get(ARRIVAL)?.map_or(0, |v| v.value());
        for job in group.iter_mut() {
            let mut outcome = Outcome::default();
            match job {
                Job::Apply {
                    dataset,
                    documents,
                    now,
                    ..
                } => {
                    for document in documents.drain(..) {
                        arrival += 1;
                        apply_one(&mut tables, dataset, document, *now, arrival, &mut outcome)?;
                    }
                }
                Job::Remove { key, .. } => {
                    if tables.remove(&key.encoded())? {
                        outcome.removed += 1;
                    }
                }
                Job::Sweep { now, .. } => {
                    outcome.removed = tables.sweep(*now)?;
                }
            }
            outcomes.push(outcome);
        }
        meta.insert(ARRIVAL, arrival)?;
    }
    txn.commit()?;
    Ok(outcomes)
}

struct Tables<'txn> {
    live: redb::Table<'txn, &'static str, &'static [u8]>,
    expiry: redb::Table<'txn, (i64, &'static str), ()>,
    by_value: redb::Table<'txn, (&'static str, &'static str), ()>,
}

impl Tables<'_> {
    /// Removes a live record and its index entries; `true` when there was one.
    fn remove(&mut self, encoded: &str) -> Result<bool, StoreError> {
        let Some(old) = self.live.remove(encoded)? else {
            return Ok(false);
        };
        let record = Record::decode(encoded, old.value())?;
        drop(old);
        self.unindex(encoded, &record)?;
        Ok(true)
    }

    fn unindex(&mut self, encoded: &str, record: &Record) -> Result<(), StoreError> {
        if let Some(expires) = record.expires_ms {
            self.expiry.remove((expires, encoded))?;
        }
        for value in &record.values {
            self.by_value.remove((value.as_str(), encoded))?;
        }
        Ok(())
    }

    /// Removes up to [`SWEEP_CHUNK`] documents expired at `now`.
    fn sweep(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let due: Vec<String> = self
            .expiry
            .range(..=(now.timestamp_millis(), "\u{10ffff}"))?
            .take(SWEEP_CHUNK)
            .map(|entry| entry.map(|(key, _)| key.value().1.to_owned()))
            .collect::<Result<_, _>>()?;
        let mut removed = 0;
        for encoded in &due {
            if self.remove(encoded)? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn apply_one(
    tables: &mut Tables<'_>,
    dataset: &'static str,
    mut document: EcsDocument,
    now: DateTime<Utc>,
    arrival: u64,
    outcome: &mut Outcome,
) -> Result<(), StoreError> {
    let facts = DocumentFacts::of(dataset, &document);
    let Some(key) = facts.key.clone() else {
        outcome.without_id += 1;
        return Ok(());
    };
    let encoded = key.encoded();
    let incoming = Version {
        update_id: facts.update_id,
        arrival,
    };
    let existing = match tables.live.get(encoded.as_str())? {
        Some(bytes) => Some(Record::decode(&encoded, bytes.value())?),
        None => None,
    };
    if let Some(existing) = &existing
        && !incoming.supersedes(&existing.version)
    {
        outcome.ignored_older += 1;
        return Ok(());
    }
    if !facts.is_live_at(now) {
        if existing.is_some() && tables.remove(&encoded)? {
            outcome.removed += 1;
        } else {
            outcome.expired_on_arrival += 1;
        }
        return Ok(());
    }
    if let Some(existing) = &existing {
        tables.unindex(&encoded, existing)?;
        outcome.replaced += 1;
    } else {
        outcome.inserted += 1;
    }
    document.stamp(dataset, DocumentRole::Latest);
    let mut json = Vec::with_capacity(1536);
    document.write_json(&mut json);
    let record = Record {
        version: incoming,
        expires_ms: facts.expires_at.map(|t| t.timestamp_millis()),
        values: facts.lookup_values,
        json,
    };
    tables
        .live
        .insert(encoded.as_str(), record.encode().as_slice())?;
    if let Some(expires) = record.expires_ms {
        tables.expiry.insert((expires, encoded.as_str()), ())?;
    }
    for value in &record.values {
        tables
            .by_value
            .insert((value.as_str(), encoded.as_str()), ())?;
    }
    Ok(())
}

/// A stored live record. Encoding: version byte 1, arrival (u64), update id flag and value,
/// expiry flag and value (i64 ms), number of lookup values and each as length + bytes, then
/// the document's JSON to the end. Little endian.
#[derive(Debug)]
struct Record {
    version: Version,
    expires_ms: Option<i64>,
    values: Vec<String>,
    json: Vec<u8>,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            32 + self.json.len() + self.values.iter().map(|v| v.len() + 4).sum::<usize>(),
        );
        out.push(1);
        out.extend_from_slice(&self.version.arrival.to_le_bytes());
        out.push(u8::from(self.version.update_id.is_some()));
        out.extend_from_slice(&self.version.update_id.unwrap_or(0).to_le_bytes());
        out.push(u8::from(self.expires_ms.is_some()));
        out.extend_from_slice(&self.expires_ms.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&(self.values.len() as u32).to_le_bytes());
        for value in &self.values {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(&self.json);
        out
    }

    fn decode(key: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        let damaged = |reason: &str| StoreError::Damaged {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let mut reader = Reader { bytes, pos: 0 };
        if reader.take(1).ok_or_else(|| damaged("empty"))? != [1] {
            return Err(damaged("unknown record version"));
        }
        let arrival = reader.u64().ok_or_else(|| damaged("truncated"))?;
        let has_update = reader.take(1).ok_or_else(|| damaged("truncated"))?[0] == 1;
        let update_id = reader.u64().ok_or_else(|| damaged("truncated"))?;
        let has_expiry = reader.take(1).ok_or_else(|| damaged("truncated"))?[0] == 1;
        let expires = reader.u64().ok_or_else(|| damaged("truncated"))? as i64;
        let count = reader.u32().ok_or_else(|| damaged("truncated"))?;
        let mut values = Vec::with_capacity(count.min(64) as usize);
        for _ in 0..count {
            let length = reader.u32().ok_or_else(|| damaged("truncated"))? as usize;
            let text = reader.take(length).ok_or_else(|| damaged("truncated"))?;
            values.push(
                String::from_utf8(text.to_vec())
                    .map_err(|_| damaged("a lookup value is not UTF-8"))?,
            );
        }
        Ok(Self {
            version: Version {
                update_id: has_update.then_some(update_id),
                arrival,
            },
            expires_ms: has_expiry.then_some(expires),
            values,
            json: bytes[reader.pos..].to_vec(),
        })
    }

    fn live_document(
        &self,
        key: IndicatorKey,
        now: DateTime<Utc>,
    ) -> Result<Option<LiveDocument>, StoreError> {
        if self
            .expires_ms
            .is_some_and(|expires| expires <= now.timestamp_millis())
        {
            return Ok(None);
        }
        let document = serde_json::from_slice(&self.json).map_err(|e| StoreError::Damaged {
            key: key.encoded(),
            reason: e.to_string(),
        })?;
        Ok(Some(LiveDocument { key, document }))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.pos..self.pos.checked_add(length)?)?;
        self.pos += length;
        Some(slice)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}
