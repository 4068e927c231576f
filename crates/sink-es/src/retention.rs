//! Retention of the source data streams `logs-ti_anomali.<stream>-<namespace>`: 5 days by
//! default (the reference's ILM policy: "deleted 5 days after ingestion"), configurable.
//!
//! Contract:
//! - [`retention_mode`] picks the mechanism from [`Capabilities`]: ILM where the cluster has it
//!   (setup writes the policy and the template names it), else the data stream lifecycle
//!   (`data_retention`), else [`RetentionMode::SelfManaged`].
//! - [`apply_source_retention`] runs at start, after `ensure_setup`: for the lifecycle it creates
//!   the data stream when missing and sets its `data_retention`; it logs and returns the mode.
//! - [`enforce_source_retention`] is the self-managed mechanism, for the service to call
//!   periodically (hourly) only in that mode: it rolls the data stream over when its write index
//!   is older than a day and holds documents, then deletes the backing indices whose documents
//!   are all older than the retention. It never deletes the write index. The time is a
//!   parameter, so tests can pass one in the future.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use elasticsearch::http::Method;
use serde_json::{Value, json};

use crate::capabilities::Capabilities;
use crate::client::EsClient;
use crate::error::EsError;
use crate::setup::status_error;

/// The reference keeps source documents 5 days.
pub const DEFAULT_SOURCE_RETENTION_DAYS: i64 = 5;
/// Self-managed: the write index is rolled over once it is this old, so that whole indices
/// can be deleted at most this long after the retention has passed.
pub const SELF_MANAGED_ROLLOVER_AGE_HOURS: i64 = 24;
/// A shorter retention is taken as this: a zero or negative one would delete every backing
/// index at each run.
const MIN_RETENTION_HOURS: i64 = 1;

/// How the source data stream's old documents are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionMode {
    /// Index lifecycle management, with the policy setup writes (rollover at 2 days, deletion
    /// 3 days later, as the reference).
    Ilm,
    /// The data stream lifecycle, with `data_retention` set on the data stream.
    DataStreamLifecycle,
    /// Neither is on the cluster: [`enforce_source_retention`] does it, called by the service.
    SelfManaged,
}

/// The mechanism a cluster with `capabilities` gets. ILM first: it is what the reference uses,
/// and where both exist Elasticsearch prefers ILM for indices that name a policy.
pub fn retention_mode(capabilities: &Capabilities) -> RetentionMode {
    if capabilities.ilm {
        RetentionMode::Ilm
    } else if capabilities.data_stream_lifecycle {
        RetentionMode::DataStreamLifecycle
    } else {
        RetentionMode::SelfManaged
    }
}

/// Sets up retention at start for `data_stream` and returns the mode, also logged. With ILM the
/// policy and template from setup already do it; with the data stream lifecycle the data stream
/// is created when missing (the template must exist) and gets `data_retention`; self-managed
/// needs the service to call [`enforce_source_retention`] periodically.
pub async fn apply_source_retention(
    client: &EsClient,
    capabilities: &Capabilities,
    data_stream: &str,
    retention: Duration,
) -> Result<RetentionMode, EsError> {
    let mode = retention_mode(capabilities);
    let retention = effective_retention(retention);
    if mode == RetentionMode::DataStreamLifecycle {
        // The lifecycle can only be set on an existing data stream; it is otherwise created by
        // the first document, which may be hours away.
        let created = client
            .json(Method::Put, &format!("/_data_stream/{data_stream}"), None)
            .await?;
        let exists =
            created.status == 400 && created.body.to_string().contains("resource_already_exists");
        if !exists {
            expect_success("create the data stream", &created)?;
        }
        let body = json!({"data_retention": elasticsearch_duration(retention)});
        let answer = client
            .json(
                Method::Put,
                &format!("/_data_stream/{data_stream}/_lifecycle"),
                Some(&body),
            )
            .await?;
        expect_success("put the data stream lifecycle", &answer)?;
    }
    tracing::info!(
        ?mode,
        data_stream,
        retention = %elasticsearch_duration(retention),
        "elasticsearch: source retention"
    );
    Ok(mode)
}

/// A backing index of the data stream, in the data stream's order (the write index last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingIndex {
    /// The index name (`.ds-<data stream>-<date>-<generation>`).
    pub name: String,
    /// `index.creation_date`, when the cluster gave it.
    pub created: Option<DateTime<Utc>>,
}

/// What one run of [`enforce_source_retention`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// The data stream does not exist yet (no document was written): nothing to do.
    pub missing: bool,
    /// The new write index, when the data stream was rolled over.
    pub rolled_over_to: Option<String>,
    /// The backing indices deleted.
    pub deleted: Vec<String>,
    /// The write index after the run (never deleted).
    pub write_index: Option<String>,
}

/// Whether the write index should be rolled over at `now`: it is at least `max_age` old. An
/// index without a known creation date is left alone.
pub fn write_index_due(write: &BackingIndex, now: DateTime<Utc>, max_age: Duration) -> bool {
    write
        .created
        .is_some_and(|created| created + max_age <= now)
}

/// The backing indices to delete at `now` for `retention`: every index but the last (the write
/// index) whose successor was created at least `retention` ago. An index receives documents
/// only until the next one is created (the rollover), so then all its documents are older than
/// the retention. Indices whose successor has no known creation date are kept.
pub fn indices_past_retention(
    backing: &[BackingIndex],
    now: DateTime<Utc>,
    retention: Duration,
) -> Vec<String> {
    let retention = effective_retention(retention);
    backing
        .windows(2)
        .filter(|pair| {
            pair[1]
                .created
                .is_some_and(|successor| successor + retention <= now)
        })
        .map(|pair| pair[0].name.clone())
        .collect()
}

/// Self-managed retention of `data_stream` at `now`: rolls it over when its write index is a day
/// old and not empty, then deletes the backing indices past `retention` (never the write
/// index). For clusters without ILM or the data stream lifecycle; call it periodically (hourly
/// is plenty: deletion happens at most a day and an hour after the retention).
pub async fn enforce_source_retention(
    client: &EsClient,
    data_stream: &str,
    retention: Duration,
    now: DateTime<Utc>,
) -> Result<RetentionReport, EsError> {
    let retention = effective_retention(retention);
    let mut report = RetentionReport::default();
    let Some(backing) = backing_indices(client, data_stream).await? else {
        report.missing = true;
        return Ok(report);
    };
    let rollover_age = Duration::hours(SELF_MANAGED_ROLLOVER_AGE_HOURS).min(retention);
    let backing = match backing.last() {
        Some(write) if write_index_due(write, now, rollover_age) => {
            report.rolled_over_to =
                roll_over_if_not_empty(client, data_stream, &write.name).await?;
            if report.rolled_over_to.is_some() {
                match backing_indices(client, data_stream).await? {
                    Some(backing) => backing,
                    None => {
                        report.missing = true;
                        return Ok(report);
                    }
                }
            } else {
                backing
            }
        }
        _ => backing,
    };
    report.write_index = backing.last().map(|write| write.name.clone());
    for name in indices_past_retention(&backing, now, retention) {
        // The plan never names the last index; this guards the invariant against a bug there.
        if report.write_index.as_deref() == Some(name.as_str()) {
            continue;
        }
        let answer = client
            .json(Method::Delete, &format!("/{name}"), None)
            .await?;
        match answer.status {
            200..=299 => report.deleted.push(name),
            // Deleted in between, by another instance or by hand.
            404 => {}
            status => {
                return Err(status_error(
                    &format!("delete backing index {name}"),
                    status,
                    &answer.body,
                ));
            }
        }
    }
    if !report.deleted.is_empty() || report.rolled_over_to.is_some() {
        tracing::info!(
            data_stream,
            rolled_over_to = ?report.rolled_over_to,
            deleted = ?report.deleted,
            "elasticsearch: source retention enforced"
        );
    }
    Ok(report)
}

/// Rolls over when the write index holds a document (an empty one holds nothing to expire, and
/// rolling it over would only pile up empty indices). The condition is checked by Elasticsearch,
/// so two instances running this at once roll over once.
async fn roll_over_if_not_empty(
    client: &EsClient,
    data_stream: &str,
    write_index: &str,
) -> Result<Option<String>, EsError> {
    // `min_docs` reads the index statistics, which lag behind unrefreshed writes.
    let refreshed = client
        .json(Method::Post, &format!("/{write_index}/_refresh"), None)
        .await?;
    expect_success("refresh the write index", &refreshed)?;
    // Elasticsearch wants a max_* condition beside min_docs; a zero age always holds.
    let conditions = json!({"conditions": {"max_age": "0ms", "min_docs": 1}});
    let answer = client
        .json(
            Method::Post,
            &format!("/{data_stream}/_rollover"),
            Some(&conditions),
        )
        .await?;
    expect_success("roll over the data stream", &answer)?;
    if answer.body["rolled_over"] == json!(true) {
        Ok(answer.body["new_index"].as_str().map(str::to_owned))
    } else {
        Ok(None)
    }
}

/// The data stream's backing indices with their creation dates, or `None` when it does not
/// exist. `_resolve/index` is in the server (`GET _data_stream` needs the data-streams module).
async fn backing_indices(
    client: &EsClient,
    data_stream: &str,
) -> Result<Option<Vec<BackingIndex>>, EsError> {
    let answer = client
        .json(
            Method::Get,
            &format!("/_resolve/index/{data_stream}?expand_wildcards=all"),
            None,
        )
        .await?;
    if answer.status == 404 {
        return Ok(None);
    }
    expect_success("resolve the data stream", &answer)?;
    let Some(names) = backing_names(&answer.body, data_stream) else {
        return Ok(None);
    };
    let settings = client
        .json(
            Method::Get,
            &format!(
                "/{data_stream}/_settings?expand_wildcards=all&filter_path=*.settings.index.creation_date"
            ),
            None,
        )
        .await?;
    expect_success("read the backing indices' settings", &settings)?;
    let created = creation_dates(&settings.body);
    Ok(Some(
        names
            .into_iter()
            .map(|name| BackingIndex {
                created: created.get(&name).copied(),
                name,
            })
            .collect(),
    ))
}

/// The backing index names of `data_stream` from a `_resolve/index` answer, in order.
fn backing_names(resolved: &Value, data_stream: &str) -> Option<Vec<String>> {
    resolved["data_streams"]
        .as_array()?
        .iter()
        .find(|stream| stream["name"] == json!(data_stream))
        .map(|stream| {
            stream["backing_indices"]
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|name| name.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        })
}

/// `index.creation_date` (epoch milliseconds, as a string) per index from a `_settings` answer.
fn creation_dates(settings: &Value) -> HashMap<String, DateTime<Utc>> {
    settings
        .as_object()
        .map(|indices| {
            indices
                .iter()
                .filter_map(|(name, index)| {
                    let millis = &index["settings"]["index"]["creation_date"];
                    let millis = match millis {
                        Value::String(text) => text.parse::<i64>().ok()?,
                        other => other.as_i64()?,
                    };
                    Some((name.clone(), DateTime::from_timestamp_millis(millis)?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn effective_retention(retention: Duration) -> Duration {
    retention.max(Duration::hours(MIN_RETENTION_HOURS))
}

/// An Elasticsearch time value: whole days, hours or minutes when exact, else seconds.
fn elasticsearch_duration(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn expect_success(what: &str, answer: &crate::client::Answer) -> Result<(), EsError> {
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        Err(status_error(what, answer.status, &answer.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn index(name: &str, created: &str) -> BackingIndex {
        BackingIndex {
            name: name.to_owned(),
            created: Some(at(created)),
        }
    }

    #[test]
    fn the_mode_follows_what_the_cluster_offers() {
        assert_eq!(retention_mode(&Capabilities::FULL), RetentionMode::Ilm);
        assert_eq!(
            retention_mode(&Capabilities::MINIMAL),
            RetentionMode::SelfManaged
        );
        let lifecycle_only = Capabilities {
            data_stream_lifecycle: true,
            ..Capabilities::MINIMAL
        };
        assert_eq!(
            retention_mode(&lifecycle_only),
            RetentionMode::DataStreamLifecycle
        );
    }

    #[test]
    fn an_index_goes_once_its_successor_is_older_than_the_retention() {
        let backing = [
            index(".ds-x-000001", "2026-01-01T00:00:00Z"),
            index(".ds-x-000002", "2026-01-02T00:00:00Z"),
            index(".ds-x-000003", "2026-01-03T00:00:00Z"),
            index(".ds-x-000004", "2026-01-04T00:00:00Z"),
        ];
        let five_days = Duration::days(5);
        // 000001 got its last document on 01-02: 5 days later it goes, not before.
        assert!(indices_past_retention(&backing, at("2026-01-06T23:59:59Z"), five_days).is_empty());
        assert_eq!(
            indices_past_retention(&backing, at("2026-01-07T00:00:00Z"), five_days),
            [".ds-x-000001"]
        );
        assert_eq!(
            indices_past_retention(&backing, at("2026-01-08T12:00:00Z"), five_days),
            [".ds-x-000001", ".ds-x-000002"]
        );
    }

    #[test]
    fn the_write_index_is_never_deleted_however_old() {
        let backing = [
            index(".ds-x-000001", "2020-01-01T00:00:00Z"),
            index(".ds-x-000002", "2020-01-02T00:00:00Z"),
        ];
        let planned =
            indices_past_retention(&backing, at("2030-01-01T00:00:00Z"), Duration::days(5));
        assert_eq!(planned, [".ds-x-000001"]);
        let alone = [index(".ds-x-000009", "2020-01-01T00:00:00Z")];
        assert!(
            indices_past_retention(&alone, at("2030-01-01T00:00:00Z"), Duration::days(5))
                .is_empty()
        );
        assert!(
            indices_past_retention(&[], at("2030-01-01T00:00:00Z"), Duration::days(5)).is_empty()
        );
    }

    #[test]
    fn unknown_creation_dates_keep_the_index() {
        let backing = [
            index(".ds-x-000001", "2020-01-01T00:00:00Z"),
            BackingIndex {
                name: ".ds-x-000002".to_owned(),
                created: None,
            },
            index(".ds-x-000003", "2020-01-03T00:00:00Z"),
        ];
        assert_eq!(
            indices_past_retention(&backing, at("2030-01-01T00:00:00Z"), Duration::days(5)),
            [".ds-x-000002"]
        );
        assert!(!write_index_due(
            &backing[1],
            at("2030-01-01T00:00:00Z"),
            Duration::days(1)
        ));
    }

    #[test]
    fn a_non_positive_retention_is_taken_as_an_hour() {
        let backing = [
            index(".ds-x-000001", "2026-01-01T00:00:00Z"),
            index(".ds-x-000002", "2026-01-01T00:30:00Z"),
        ];
        let now = at("2026-01-01T01:00:00Z");
        assert!(indices_past_retention(&backing, now, Duration::zero()).is_empty());
        assert!(indices_past_retention(&backing, now, Duration::days(-3)).is_empty());
        assert_eq!(
            indices_past_retention(&backing, at("2026-01-01T01:30:00Z"), Duration::zero()),
            [".ds-x-000001"]
        );
    }

    #[test]
    fn the_write_index_is_due_after_a_day() {
        let write = index(".ds-x-000002", "2026-01-01T00:00:00Z");
        let day = Duration::hours(SELF_MANAGED_ROLLOVER_AGE_HOURS);
        assert!(!write_index_due(&write, at("2026-01-01T23:59:59Z"), day));
        assert!(write_index_due(&write, at("2026-01-02T00:00:00Z"), day));
    }

    #[test]
    fn reads_the_backing_indices_and_their_creation_dates() {
        let resolved = json!({"indices": [], "aliases": [], "data_streams": [
            {"name": "logs-other-default", "backing_indices": [".ds-logs-other-default-1"]},
            {"name": "logs-x-default", "backing_indices": [
                ".ds-logs-x-default-2026.12.03-000001", ".ds-logs-x-default-2026.12.03-000002"
            ], "timestamp_field": "@timestamp"}
        ]});
        assert_eq!(
            backing_names(&resolved, "logs-x-default").unwrap(),
            [
                ".ds-logs-x-default-2026.12.03-000001",
                ".ds-logs-x-default-2026.12.03-000002"
            ]
        );
        assert_eq!(backing_names(&resolved, "logs-y-default"), None);
        let settings = json!({
            ".ds-a": {"settings": {"index": {"creation_date": "1796313374024"}}},
            ".ds-b": {"settings": {"index": {"creation_date": "not a number"}}},
            ".ds-c": {"settings": {"index": {}}}
        });
        let dates = creation_dates(&settings);
        assert_eq!(dates.len(), 1);
        assert_eq!(
            dates[".ds-a"],
            DateTime::from_timestamp_millis(1_796_313_374_024).unwrap()
        );
    }

    #[test]
    fn durations_are_written_in_the_largest_exact_unit() {
        assert_eq!(elasticsearch_duration(Duration::days(5)), "5d");
        assert_eq!(elasticsearch_duration(Duration::hours(36)), "36h");
        assert_eq!(elasticsearch_duration(Duration::minutes(90)), "90m");
        assert_eq!(elasticsearch_duration(Duration::seconds(61)), "61s");
    }
}
