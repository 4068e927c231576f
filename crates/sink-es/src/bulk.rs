//! The `_bulk` body: how mapped documents become actions, how a body splits back into its items,
//! and what each item's answer means.
//!
//! Per document: a `create` of the source copy into the data stream, then, when it has an id,
//! an `index` (live) or a `delete` (deleted or expired) of its latest copy under `_id`
//! `dataset:id`, versioned by `update_id` (`external_gte`) so Elasticsearch keeps the newest.

use std::ops::Range;

use anomali_latest_store::{DocumentFacts, IndicatorKey};
use anomali_model::{
    AgentFields, DataStreamFields, DocumentRole, EcsDocument, InputFields, Timestamp,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::names::{IndexNames, Stream};

/// What a shipped document carries besides the mapping's output, and where it goes.
#[derive(Debug, Clone)]
pub struct ShipIdentity {
    /// This program's identity under `agent.*`.
    pub agent: Option<AgentFields>,
    /// The source data streams and latest aliases.
    pub names: IndexNames,
}

impl ShipIdentity {
    /// The identity for `names`, with `agent`.
    pub fn new(names: &IndexNames, agent: Option<AgentFields>) -> Self {
        Self {
            agent,
            names: names.clone(),
        }
    }
}

/// Counts of one encoded batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    /// Documents without `anomali.threatstream.id`: a source copy only.
    pub without_id: u64,
}

/// The latest copy's `_id`.
pub(crate) fn document_id(key: &IndicatorKey) -> String {
    format!("{}:{}", key.dataset, key.id)
}

/// Appends the actions for `documents` to `body`. `source_ids` names the source copies
/// (`<prefix>-<n>`) so that a replay of the same body creates nothing twice; `None` lets
/// Elasticsearch choose.
pub fn encode_actions(
    identity: &ShipIdentity,
    dataset: &'static str,
    documents: Vec<EcsDocument>,
    now: DateTime<Utc>,
    source_ids: Option<&str>,
    body: &mut Vec<u8>,
) -> Encoded {
    // Formatted once per batch, not once per document.
    let ingested = Timestamp::parse_normalised(&now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    let stream = Stream::of_dataset(dataset);
    let source_action_head = format!(
        "{{\"create\":{{\"_index\":{}",
        Value::String(identity.names.source(stream))
    );
    let latest_alias = identity.names.latest_alias(stream);
    let mut encoded = Encoded::default();
    for (n, mut document) in documents.into_iter().enumerate() {
        document.agent = identity.agent.clone();
        document.input = Some(InputFields {
            input_type: stream.input_type(),
        });
        document.data_stream = Some(DataStreamFields {
            dataset,
            namespace: identity.names.namespace.clone(),
            stream_type: "logs",
        });
        document.event.ingested = ingested;
        let facts = DocumentFacts::of(dataset, &document);
        // Stamped in place for the source copy, then again as Latest for the live one.
        document.stamp(dataset, DocumentRole::Source);
        body.extend_from_slice(source_action_head.as_bytes());
        match (stream, &facts.key, facts.update_id) {
            // A polled version is named by its id and update_id: the page a crash makes the
            // poller fetch again creates nothing twice (409, counted as already there).
            (Stream::Intelligence, Some(key), Some(update_id)) => {
                let id = Value::String(format!("{}:{update_id}", key.id));
                body.extend_from_slice(format!(",\"_id\":{id}").as_bytes());
            }
            _ => {
                if let Some(prefix) = source_ids {
                    body.extend_from_slice(format!(",\"_id\":\"{prefix}-{n}\"").as_bytes());
                }
            }
        }
        body.extend_from_slice(b"}}\n");
        document.write_json(body);
        body.push(b'\n');

        let Some(key) = facts.key.as_ref() else {
            encoded.without_id += 1;
            continue;
        };
        let mut action = json!({"_index": latest_alias, "_id": document_id(key)});
        if let Some(version) = facts.update_id {
            action["version"] = json!(version);
            action["version_type"] = json!("external_gte");
        }
        if facts.is_live_at(now) {
            document.stamp(dataset, DocumentRole::Latest);
            body.extend_from_slice(json!({"index": action}).to_string().as_bytes());
            body.push(b'\n');
            document.write_json(body);
            body.push(b'\n');
        } else {
            body.extend_from_slice(json!({"delete": action}).to_string().as_bytes());
            body.push(b'\n');
        }
    }
    encoded
}

/// The kind of a bulk action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// `create` (the source copy).
    Create,
    /// `index` (the live copy).
    Index,
    /// `delete` (a deleted or expired indicator's live copy).
    Delete,
}

/// One action of a body: its lines, the action line and the document line if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BulkItem {
    /// The kind.
    pub kind: ActionKind,
    /// The action line, without its newline.
    pub action: Range<usize>,
    /// The document line, without its newline (`None` for `delete`).
    pub document: Option<Range<usize>>,
}

impl BulkItem {
    /// The item's lines with their newlines, as they go into a body.
    pub fn lines(&self) -> Range<usize> {
        let end = self.document.as_ref().map_or(self.action.end, |d| d.end);
        self.action.start..end + 1
    }
}

/// Why a body written by [`encode`] could not be split (a spool entry damaged on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitError(pub String);

/// Splits a body written by [`encode`] into its items.
pub(crate) fn split_items(body: &[u8]) -> Result<Vec<BulkItem>, SplitError> {
    let mut items = Vec::new();
    let mut lines = LineRanges { body, at: 0 };
    while let Some(action) = lines.next() {
        let line = &body[action.clone()];
        let kind = if line.starts_with(b"{\"create\"") {
            ActionKind::Create
        } else if line.starts_with(b"{\"index\"") {
            ActionKind::Index
        } else if line.starts_with(b"{\"delete\"") {
            ActionKind::Delete
        } else {
            return Err(SplitError(format!(
                "not an action line at byte {}",
                action.start
            )));
        };
        let document = match kind {
            ActionKind::Delete => None,
            _ => Some(lines.next().ok_or_else(|| {
                SplitError(format!("action at byte {} has no document", action.start))
            })?),
        };
        items.push(BulkItem {
            kind,
            action,
            document,
        });
    }
    Ok(items)
}

/// Newline-terminated lines of a body; a last line without its newline is damage and ends the
/// iteration (it cannot be a complete item).
struct LineRanges<'a> {
    body: &'a [u8],
    at: usize,
}

impl Iterator for LineRanges<'_> {
    type Item = Range<usize>;
    fn next(&mut self) -> Option<Range<usize>> {
        let rest = self.body.get(self.at..)?;
        let length = memchr::memchr(b'\n', rest)?;
        let range = self.at..self.at + length;
        self.at += length + 1;
        Some(range)
    }
}

/// What an item's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Applied.
    Done,
    /// Already there: a source copy created by an earlier attempt of the same body.
    AlreadyThere,
    /// A newer version of the live copy is already there (or this delete's version is older).
    Older,
    /// A delete of a live copy that does not exist: nothing to do.
    NothingToDelete,
    /// Try again later (429, 5xx).
    Retry,
    /// Elasticsearch refuses it for good (mapping conflict, bad value): dead letter.
    Reject,
}

/// Classifies one item's status.
pub fn classify(kind: ActionKind, status: u16) -> ItemOutcome {
    match (kind, status) {
        (_, 200..=299) => ItemOutcome::Done,
        (ActionKind::Create, 409) => ItemOutcome::AlreadyThere,
        (ActionKind::Index | ActionKind::Delete, 409) => ItemOutcome::Older,
        (ActionKind::Delete, 404) => ItemOutcome::NothingToDelete,
        (_, 429) | (_, 500..=599) => ItemOutcome::Retry,
        // Not there (index closed or missing without auto-create) may be fixed by an operator;
        // keep it rather than dead-letter it.
        (_, 404) => ItemOutcome::Retry,
        _ => ItemOutcome::Reject,
    }
}

/// What a whole `_bulk` answer status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// 200: read the items.
    ReadItems,
    /// Try the whole request again later: overload, server errors, and auth or permission
    /// problems (an operator fixes those; the spool keeps the data meanwhile).
    Retry,
    /// The request itself is refused (400, 413...): each item goes to the dead letter file.
    Reject,
}

/// Classifies the status of a whole `_bulk` request.
pub fn classify_request(status: u16) -> RequestOutcome {
    match status {
        200 => RequestOutcome::ReadItems,
        401 | 403 | 404 | 408 | 429 | 500..=599 => RequestOutcome::Retry,
        _ => RequestOutcome::Reject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_items_finds_each_action_and_its_document() {
        let body = b"{\"create\":{\"_index\":\"s\"}}\n{\"a\":1}\n{\"delete\":{\"_id\":\"x\"}}\n{\"index\":{\"_id\":\"y\"}}\n{\"b\":2}\n";
        let items = split_items(body).expect("a body written by encode");
        let kinds: Vec<ActionKind> = items.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            [ActionKind::Create, ActionKind::Delete, ActionKind::Index]
        );
        assert_eq!(
            &body[items[0].lines()],
            b"{\"create\":{\"_index\":\"s\"}}\n{\"a\":1}\n"
        );
        assert_eq!(&body[items[1].lines()], b"{\"delete\":{\"_id\":\"x\"}}\n");
        assert_eq!(
            &body[items[2].lines()],
            b"{\"index\":{\"_id\":\"y\"}}\n{\"b\":2}\n"
        );
    }

    fn document(id: &str, update_id: u64) -> EcsDocument {
        let mut document = EcsDocument::default();
        document.anomali.threatstream.id = Some(id.to_owned());
        document.anomali.threatstream.update_id = Some(update_id.to_string());
        document
    }

    fn action_lines(body: &[u8]) -> Vec<Value> {
        split_items(body)
            .expect("a body written by encode")
            .iter()
            .map(|item| serde_json::from_slice(&body[item.action.clone()]).expect("JSON"))
            .collect()
    }

    #[test]
    fn each_stream_goes_to_its_own_indices_and_polled_versions_have_fixed_source_ids() {
        let identity = ShipIdentity::new(&IndexNames::new("ns"), None);
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .expect("time")
            .to_utc();
        let mut body = Vec::new();
        encode_actions(
            &identity,
            "ti_anomali.threatstream",
            vec![document("7", 3)],
            now,
            Some("run-1"),
            &mut body,
        );
        encode_actions(
            &identity,
            "ti_anomali.intelligence",
            vec![document("7", 3)],
            now,
            Some("run-2"),
            &mut body,
        );
        let actions = action_lines(&body);
        assert_eq!(
            actions,
            [
                json!({"create": {"_index": "logs-ti_anomali.threatstream-ns", "_id": "run-1-0"}}),
                json!({"index": {"_index": "logs-ti_anomali_latest.threatstream", "_id": "ti_anomali.threatstream:7", "version": 3, "version_type": "external_gte"}}),
                json!({"create": {"_index": "logs-ti_anomali.intelligence-ns", "_id": "7:3"}}),
                json!({"index": {"_index": "logs-ti_anomali_latest.intelligence", "_id": "ti_anomali.intelligence:7", "version": 3, "version_type": "external_gte"}}),
            ]
        );
        let documents: Vec<Value> = body
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("JSON"))
            .collect();
        assert_eq!(documents[1]["input"]["type"], "http_endpoint");
        assert_eq!(documents[5]["input"]["type"], "cel");
        assert_eq!(
            documents[5]["data_stream"]["dataset"],
            "ti_anomali.intelligence"
        );
    }

    #[test]
    fn split_items_refuses_damage() {
        assert!(split_items(b"{\"create\":{}}\n").is_err());
        assert!(split_items(b"garbage\n").is_err());
        // A torn last line is not an item.
        assert_eq!(split_items(b"{\"delete\":{}}").map(|i| i.len()), Ok(0));
    }

    #[test]
    fn classification_keeps_replays_idempotent_and_rejections_visible() {
        assert_eq!(classify(ActionKind::Create, 201), ItemOutcome::Done);
        assert_eq!(classify(ActionKind::Create, 409), ItemOutcome::AlreadyThere);
        assert_eq!(classify(ActionKind::Index, 409), ItemOutcome::Older);
        assert_eq!(
            classify(ActionKind::Delete, 404),
            ItemOutcome::NothingToDelete
        );
        assert_eq!(classify(ActionKind::Index, 429), ItemOutcome::Retry);
        assert_eq!(classify(ActionKind::Index, 503), ItemOutcome::Retry);
        assert_eq!(classify(ActionKind::Create, 400), ItemOutcome::Reject);
        assert_eq!(classify_request(200), RequestOutcome::ReadItems);
        assert_eq!(classify_request(429), RequestOutcome::Retry);
        assert_eq!(classify_request(502), RequestOutcome::Retry);
        assert_eq!(classify_request(401), RequestOutcome::Retry);
        assert_eq!(classify_request(413), RequestOutcome::Reject);
    }
}
