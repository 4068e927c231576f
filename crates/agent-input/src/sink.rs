//! [`IndicatorSink`]: where the webhook hands over what it received.

use std::future::Future;
use std::sync::Mutex;

use anomali_model::EcsDocument;
use chrono::{DateTime, Utc};

use crate::error::SinkError;

/// The mapped indicators of one request, in request order.
#[derive(Debug, Clone)]
pub struct Batch {
    /// When the request was received.
    pub received_at: DateTime<Utc>,
    /// One document per indicator.
    pub documents: Vec<EcsDocument>,
}

/// Where batches go. The webhook answers 200 only after [`IndicatorSink::deliver`] returned
/// `Ok`, so an implementation must return only once the batch is durable (committed to disk,
/// spooled, or acknowledged downstream): that is the at-least-once promise to the sender.
pub trait IndicatorSink: Send + Sync + 'static {
    /// Accepts every document of `batch`, or none of them.
    fn deliver(&self, batch: Batch) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Accepts and forgets everything: for load tests of the webhook alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardSink;

impl IndicatorSink for DiscardSink {
    async fn deliver(&self, _batch: Batch) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Keeps every batch in memory: for tests and for programs that embed the webhook.
#[derive(Debug, Default)]
pub struct MemorySink {
    batches: Mutex<Vec<Batch>>,
}

impl MemorySink {
    /// All documents received so far, in order.
    pub fn documents(&self) -> Vec<EcsDocument> {
        self.lock()
            .iter()
            .flat_map(|batch| batch.documents.iter().cloned())
            .collect()
    }

    /// How many batches (accepted requests) arrived.
    pub fn batch_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Batch>> {
        // A panic while holding the lock cannot leave a half-pushed Vec; keep going.
        self.batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl IndicatorSink for MemorySink {
    async fn deliver(&self, batch: Batch) -> Result<(), SinkError> {
        self.lock().push(batch);
        Ok(())
    }
}

impl<S: IndicatorSink> IndicatorSink for std::sync::Arc<S> {
    fn deliver(&self, batch: Batch) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).deliver(batch)
    }
}
