//! The versioned latest index: at start, older versions (`<base>-<n>`, such as the reference
//! integration's `logs-ti_anomali_latest.threatstream-1`) are folded into the current one (`-2`)
//! and the alias is moved to it.
//!
//! Contract:
//! - Input: the alias and the current index, which must exist (`ensure_setup` creates it). Run
//!   before the sink writes, so documents deleted from the current index are not brought back.
//! - Older versions: every index named `<base>-<number>` other than the current one, holding the
//!   alias or not. Other indices holding the alias are reported, never touched; closed older
//!   versions are reported and left alone (they cannot be read).
//! - Copy: the live documents (no `deleted_at` in the past) of each older version, read with a
//!   point in time and `search_after` (no reindex API on minimal clusters), written with bulk
//!   under the sink's `_id` (`<event.dataset>:<anomali.threatstream.id>`; the original `_id`
//!   when a document lacks those) and, when they have a numeric `update_id`, with it as external
//!   version: the current index keeps its copy unless the older one is strictly newer (the
//!   sink's own rule), and the copy carries the version the sink compares later. Documents
//!   without `update_id` are `create`d: they never overwrite. Conflicts (409) are not errors.
//! - Then one atomic `POST _aliases`: the alias on the current index as write index, the fully
//!   copied older versions deleted (`remove_index`), and those with refused documents only
//!   unaliased, kept for inspection.
//! - Idempotent: a rerun after a crash at any point copies again (conflicts change nothing) and
//!   finishes; a rerun after success does nothing. Two instances at once end in the same state.

use elasticsearch::http::Method;
use serde_json::{Value, json};

use crate::client::{Answer, EsClient};
use crate::error::EsError;
use crate::setup::status_error;

/// Documents per search page and bulk request.
const PAGE_SIZE: usize = 500;
/// How long the point in time lives between two pages.
const KEEP_ALIVE: &str = "5m";
/// Attempts when another instance changes the indices in between (then everything is looked up
/// again).
const ATTEMPTS: usize = 3;

/// What [`upgrade_latest_index`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Older versions copied and deleted.
    pub migrated: Vec<String>,
    /// Older versions with refused documents: unaliased but kept, for someone to look at.
    pub kept: Vec<String>,
    /// Closed older versions, left alone.
    pub closed: Vec<String>,
    /// Indices holding the alias that are not a version of the latest index, left alone.
    pub foreign_alias_holders: Vec<String>,
    /// Documents written into the current index (new, or newer than its copy).
    pub copied: u64,
    /// Documents the current index already had, as new or newer.
    pub already_current: u64,
    /// Documents the current index refused (a mapping conflict, say).
    pub refused: u64,
    /// Why the first refused document was refused.
    pub first_refusal: Option<String>,
    /// Whether `POST _aliases` was sent (alias moved or set, older versions removed).
    pub aliases_updated: bool,
}

impl UpgradeReport {
    /// Nothing was there to upgrade and nothing changed.
    pub fn is_noop(&self) -> bool {
        self.migrated.is_empty()
            && self.kept.is_empty()
            && self.copied == 0
            && self.refused == 0
            && !self.aliases_updated
    }
}

/// Folds older versions of `current_index` into it and puts `alias` on it as write index, then
/// deletes the older versions. See the module documentation for the rules.
pub async fn upgrade_latest_index(
    client: &EsClient,
    alias: &str,
    current_index: &str,
) -> Result<UpgradeReport, EsError> {
    let exists = client
        .json(Method::Head, &format!("/{current_index}"), None)
        .await?;
    if exists.status != 200 {
        return Err(EsError::Status {
            what: format!("upgrade: the current index {current_index} (run ensure_setup first)"),
            status: exists.status,
            body: String::new(),
        });
    }
    let mut report = UpgradeReport::default();
    for _ in 0..ATTEMPTS {
        if attempt(client, alias, current_index, &mut report).await? {
            if !report.is_noop() {
                tracing::info!(
                    ?report,
                    alias,
                    current_index,
                    "elasticsearch: latest index upgraded"
                );
            }
            if report.refused > 0 {
                tracing::warn!(
                    kept = ?report.kept,
                    refused = report.refused,
                    first = ?report.first_refusal,
                    "elasticsearch: documents of older latest indices were refused; those indices are kept"
                );
            }
            return Ok(report);
        }
    }
    Err(EsError::Status {
        what: format!(
            "upgrade of {current_index}: the indices kept changing (another instance upgrading?)"
        ),
        status: 409,
        body: String::new(),
    })
}

/// One pass. `Ok(false)` when an index vanished under us (another instance finished first):
/// look again.
async fn attempt(
    client: &EsClient,
    alias: &str,
    current_index: &str,
    report: &mut UpgradeReport,
) -> Result<bool, EsError> {
    let holders = alias_holders(client, alias).await?;
    let found = versions(client, current_index).await?;
    report.closed = found.closed;
    report.foreign_alias_holders = holders
        .iter()
        .filter(|holder| holder.index != current_index && !found.open.contains(&holder.index))
        .map(|holder| holder.index.clone())
        .collect();
    let mut migrated = Vec::new();
    let mut kept = Vec::new();
    for older in &found.open {
        match copy_index(client, older, current_index).await? {
            Copied::Gone => return Ok(false),
            Copied::Done(counts) => {
                report.copied += counts.copied;
                report.already_current += counts.already_current;
                report.refused += counts.refused;
                if report.first_refusal.is_none() {
                    report.first_refusal = counts.first_refusal;
                }
                if counts.refused == 0 {
                    migrated.push(older.clone());
                } else {
                    kept.push(older.clone());
                }
            }
        }
    }
    if !found.open.is_empty() {
        // The alias must not show a document before the copy is searchable.
        let answer = client
            .json(Method::Post, &format!("/{current_index}/_refresh"), None)
            .await?;
        expect_success("refresh the current index", &answer)?;
    }
    let actions = alias_actions(alias, current_index, &holders, &migrated, &kept);
    if !actions.is_empty() {
        let answer = client
            .json(
                Method::Post,
                "/_aliases",
                Some(&json!({"actions": actions})),
            )
            .await?;
        if answer.status == 404 {
            return Ok(false);
        }
        expect_success("move the latest alias", &answer)?;
        report.aliases_updated = true;
    }
    report.migrated.extend(migrated);
    report.kept = kept;
    Ok(true)
}

/// An index holding the alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AliasHolder {
    pub(crate) index: String,
    /// `is_write_index: true` was set explicitly.
    pub(crate) is_write_index: bool,
}

/// The indices holding `alias` (none when the alias does not exist).
pub(crate) async fn alias_holders(
    client: &EsClient,
    alias: &str,
) -> Result<Vec<AliasHolder>, EsError> {
    let answer = client
        .json(
            Method::Get,
            &format!("/_alias/{alias}?expand_wildcards=all"),
            None,
        )
        .await?;
    if answer.status == 404 {
        return Ok(Vec::new());
    }
    expect_success("read the latest alias", &answer)?;
    Ok(parse_alias_holders(&answer.body, alias))
}

fn parse_alias_holders(body: &Value, alias: &str) -> Vec<AliasHolder> {
    let mut holders: Vec<AliasHolder> = body
        .as_object()
        .map(|indices| {
            indices
                .iter()
                .filter_map(|(index, entry)| {
                    let aliases = entry["aliases"].as_object()?;
                    let alias = aliases.get(alias)?;
                    Some(AliasHolder {
                        index: index.clone(),
                        is_write_index: alias["is_write_index"] == json!(true),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    holders.sort_by(|a, b| a.index.cmp(&b.index));
    holders
}

/// `(base, version)` of a versioned index name `<base>-<digits>`.
fn version_of(index: &str) -> Option<(&str, u64)> {
    let (base, version) = index.rsplit_once('-')?;
    if base.is_empty() || version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, version.parse().ok()?))
}

/// Older versions of the current index found on the cluster.
#[derive(Debug, Default, PartialEq, Eq)]
struct Versions {
    open: Vec<String>,
    closed: Vec<String>,
}

async fn versions(client: &EsClient, current_index: &str) -> Result<Versions, EsError> {
    let Some((base, _)) = version_of(current_index) else {
        // An unversioned name has no older versions.
        return Ok(Versions::default());
    };
    let answer = client
        .json(
            Method::Get,
            &format!("/_resolve/index/{base}-*?expand_wildcards=all"),
            None,
        )
        .await?;
    if answer.status == 404 {
        return Ok(Versions::default());
    }
    expect_success("list the latest index versions", &answer)?;
    Ok(older_versions(&answer.body, current_index))
}

/// The other versions of `current_index` in a `_resolve/index` answer, oldest first.
fn older_versions(resolved: &Value, current_index: &str) -> Versions {
    let Some((base, current)) = version_of(current_index) else {
        return Versions::default();
    };
    let mut found: Vec<(u64, String, bool)> = resolved["indices"]
        .as_array()
        .map(|indices| {
            indices
                .iter()
                .filter_map(|index| {
                    let name = index["name"].as_str()?;
                    let (their_base, version) = version_of(name)?;
                    if their_base != base || version == current {
                        return None;
                    }
                    let closed = index["attributes"]
                        .as_array()
                        .is_some_and(|a| a.contains(&json!("closed")));
                    Some((version, name.to_owned(), closed))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    let mut versions = Versions::default();
    for (_, name, closed) in found {
        if closed {
            versions.closed.push(name);
        } else {
            versions.open.push(name);
        }
    }
    versions
}

#[derive(Debug, Default)]
struct Counts {
    copied: u64,
    already_current: u64,
    refused: u64,
    first_refusal: Option<String>,
}

enum Copied {
    Done(Counts),
    /// The older index disappeared while we read it.
    Gone,
}

/// Copies the live documents of `older` into `current_index`, page by page.
async fn copy_index(
    client: &EsClient,
    older: &str,
    current_index: &str,
) -> Result<Copied, EsError> {
    let opened = client
        .json(
            Method::Post,
            &format!("/{older}/_pit?keep_alive={KEEP_ALIVE}"),
            None,
        )
        .await?;
    if opened.status == 404 {
        return Ok(Copied::Gone);
    }
    expect_success("open a point in time", &opened)?;
    let Some(mut pit) = opened.body["id"].as_str().map(str::to_owned) else {
        return Err(status_error(
            "open a point in time (no id)",
            opened.status,
            &opened.body,
        ));
    };
    let result = copy_pages(client, &mut pit, older, current_index).await;
    // Best effort: the point in time expires by itself anyway.
    let _ = client
        .json(Method::Delete, "/_pit", Some(&json!({"id": pit})))
        .await;
    result
}

async fn copy_pages(
    client: &EsClient,
    pit: &mut String,
    older: &str,
    current_index: &str,
) -> Result<Copied, EsError> {
    let mut counts = Counts::default();
    let mut after: Option<Value> = None;
    loop {
        let mut query = json!({
            "size": PAGE_SIZE,
            "pit": {"id": *pit, "keep_alive": KEEP_ALIVE},
            "sort": [{"_shard_doc": "asc"}],
            "track_total_hits": false,
            // Expired documents would only be swept again; `now` is the cluster's clock, as the
            // sweep's.
            "query": {"bool": {"must_not": [
                {"range": {"anomali.threatstream.deleted_at": {"lte": "now"}}},
                {"range": {"anomali.threatstream.deletion_scheduled_at": {"lte": "now"}}}
            ]}},
        });
        if let Some(after) = &after {
            query["search_after"] = after.clone();
        }
        let answer = client.json(Method::Post, "/_search", Some(&query)).await?;
        if answer.status != 200 {
            if index_is_gone(client, older).await? {
                return Ok(Copied::Gone);
            }
            return Err(status_error(
                &format!("search {older}"),
                answer.status,
                &answer.body,
            ));
        }
        if let Some(id) = answer.body["pit_id"].as_str() {
            id.clone_into(pit);
        }
        let hits = answer.body["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(last) = hits.last() else {
            return Ok(Copied::Done(counts));
        };
        after = Some(last["sort"].clone());
        let mut body = Vec::with_capacity(hits.len() * 2600);
        for hit in &hits {
            let Some((action, source)) = copy_action(hit, current_index) else {
                continue;
            };
            body.extend_from_slice(action.to_string().as_bytes());
            body.push(b'\n');
            body.extend_from_slice(source.to_string().as_bytes());
            body.push(b'\n');
        }
        if body.is_empty() {
            continue;
        }
        let answer = client.bulk("/_bulk", body).await?;
        expect_success("bulk copy into the current index", &answer)?;
        count_items(&answer.body, &mut counts);
        if hits.len() < PAGE_SIZE {
            return Ok(Copied::Done(counts));
        }
    }
}

async fn index_is_gone(client: &EsClient, index: &str) -> Result<bool, EsError> {
    let answer = client
        .json(Method::Head, &format!("/{index}"), None)
        .await?;
    Ok(answer.status == 404)
}

/// The bulk action and source that copy one search hit into `current_index`, or `None` when the
/// hit has no source.
fn copy_action(hit: &Value, current_index: &str) -> Option<(Value, Value)> {
    let source = hit.get("_source").filter(|s| s.is_object())?;
    let id = sink_id(source).or_else(|| hit["_id"].as_str().map(str::to_owned))?;
    let update_id = match &source["anomali"]["threatstream"]["update_id"] {
        Value::String(text) => text.trim().parse::<u64>().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
    // Elasticsearch versions are signed 64-bit.
    .filter(|version| i64::try_from(*version).is_ok());
    let action = match update_id {
        Some(version) => json!({"index": {
            "_index": current_index, "_id": id, "version": version, "version_type": "external"
        }}),
        None => json!({"create": {"_index": current_index, "_id": id}}),
    };
    Some((action, source.clone()))
}

/// The `_id` the sink gives this document (`<dataset>:<indicator id>`, see `latest.rs`), so an
/// indicator copied from an index another program wrote (the reference transform's ids are
/// hashes) is the same document the sink later updates.
fn sink_id(source: &Value) -> Option<String> {
    let dataset = source["event"]["dataset"]
        .as_str()
        .or_else(|| source["data_stream"]["dataset"].as_str())
        .filter(|d| !d.is_empty())?;
    let id = match &source["anomali"]["threatstream"]["id"] {
        Value::String(text) if !text.is_empty() => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    Some(format!("{dataset}:{id}"))
}

fn count_items(bulk: &Value, counts: &mut Counts) {
    for item in bulk["items"].as_array().into_iter().flatten() {
        let Some((_, result)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        match result["status"].as_u64().unwrap_or(0) {
            200..=299 => counts.copied += 1,
            409 => counts.already_current += 1,
            _ => {
                counts.refused += 1;
                if counts.first_refusal.is_none() {
                    let mut reason = result["error"].to_string();
                    reason.truncate(500);
                    counts.first_refusal = Some(reason);
                }
            }
        }
    }
}

/// The `_aliases` actions that finish the upgrade: the alias on the current index as write index
/// (when it is not already), the migrated versions removed with their alias, the kept ones
/// unaliased. Empty when there is nothing to change.
fn alias_actions(
    alias: &str,
    current_index: &str,
    holders: &[AliasHolder],
    migrated: &[String],
    kept: &[String],
) -> Vec<Value> {
    let mut actions = Vec::new();
    let current_is_write = holders
        .iter()
        .any(|holder| holder.index == current_index && holder.is_write_index);
    if !current_is_write {
        actions
            .push(json!({"add": {"index": current_index, "alias": alias, "is_write_index": true}}));
    }
    for index in kept {
        if holders.iter().any(|holder| &holder.index == index) {
            actions.push(json!({"remove": {"index": index, "alias": alias}}));
        }
    }
    for index in migrated {
        actions.push(json!({"remove_index": {"index": index}}));
    }
    actions
}

fn expect_success(what: &str, answer: &Answer) -> Result<(), EsError> {
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        Err(status_error(what, answer.status, &answer.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = "logs-ti_anomali_latest.threatstream-2";

    #[test]
    fn versioned_names_end_in_a_number() {
        assert_eq!(
            version_of("logs-ti_anomali_latest.threatstream-2"),
            Some(("logs-ti_anomali_latest.threatstream", 2))
        );
        assert_eq!(version_of("a-b-10"), Some(("a-b", 10)));
        for unversioned in ["plain", "x-", "-3", "x-2a", "x-+2"] {
            assert_eq!(version_of(unversioned), None, "{unversioned}");
        }
    }

    #[test]
    fn older_versions_are_the_other_numbers_of_the_same_base() {
        let resolved = json!({"indices": [
            {"name": "logs-ti_anomali_latest.threatstream-4", "attributes": ["open"]},
            {"name": "logs-ti_anomali_latest.threatstream-2", "aliases": ["logs-ti_anomali_latest.threatstream"], "attributes": ["open"]},
            {"name": "logs-ti_anomali_latest.threatstream-1", "attributes": ["open"]},
            {"name": "logs-ti_anomali_latest.threatstream-3", "attributes": ["closed"]},
            {"name": "logs-ti_anomali_latest.threatstream-2-copy", "attributes": ["open"]},
            {"name": "logs-ti_anomali_latest.threatstream-backup", "attributes": ["open"]}
        ], "aliases": [], "data_streams": []});
        let versions = older_versions(&resolved, CURRENT);
        assert_eq!(
            versions.open,
            [
                "logs-ti_anomali_latest.threatstream-1",
                "logs-ti_anomali_latest.threatstream-4"
            ]
        );
        assert_eq!(versions.closed, ["logs-ti_anomali_latest.threatstream-3"]);
        assert_eq!(
            older_versions(&resolved, "unversioned"),
            Versions::default()
        );
        assert_eq!(older_versions(&json!({}), CURRENT), Versions::default());
    }

    #[test]
    fn reads_who_holds_the_alias() {
        let body = json!({
            "logs-ti_anomali_latest.threatstream-2": {"aliases": {"logs-ti_anomali_latest.threatstream": {"is_write_index": true}}},
            "logs-ti_anomali_latest.threatstream-1": {"aliases": {"logs-ti_anomali_latest.threatstream": {}}},
            "unrelated": {"aliases": {"another": {}}}
        });
        assert_eq!(
            parse_alias_holders(&body, "logs-ti_anomali_latest.threatstream"),
            [
                AliasHolder {
                    index: "logs-ti_anomali_latest.threatstream-1".to_owned(),
                    is_write_index: false
                },
                AliasHolder {
                    index: CURRENT.to_owned(),
                    is_write_index: true
                },
            ]
        );
    }

    #[test]
    fn copies_go_under_the_sink_id_with_the_update_id_as_version() {
        let hit = json!({"_id": "HkLm0transformHash", "_source": {
            "event": {"dataset": "ti_anomali.threatstream"},
            "anomali": {"threatstream": {"id": "42", "update_id": "7"}}
        }});
        let (action, source) = copy_action(&hit, CURRENT).unwrap();
        assert_eq!(
            action,
            json!({"index": {"_index": CURRENT, "_id": "ti_anomali.threatstream:42", "version": 7, "version_type": "external"}})
        );
        assert_eq!(source, hit["_source"]);
    }

    #[test]
    fn copies_without_update_id_or_key_are_created_under_what_they_have() {
        let numeric = json!({"_id": "x", "_source": {
            "data_stream": {"dataset": "ti_anomali.threatstream"},
            "anomali": {"threatstream": {"id": 42, "update_id": "not a number"}}
        }});
        let (action, _) = copy_action(&numeric, CURRENT).unwrap();
        assert_eq!(
            action,
            json!({"create": {"_index": CURRENT, "_id": "ti_anomali.threatstream:42"}})
        );
        let keyless = json!({"_id": "original", "_source": {"message": "no id"}});
        let (action, _) = copy_action(&keyless, CURRENT).unwrap();
        assert_eq!(action["create"]["_id"], "original");
        let too_big =
            json!({"_id": "y", "_source": {"anomali": {"threatstream": {"update_id": u64::MAX}}}});
        assert!(
            copy_action(&too_big, CURRENT)
                .unwrap()
                .0
                .get("create")
                .is_some()
        );
        assert_eq!(copy_action(&json!({"_id": "z"}), CURRENT), None);
    }

    #[test]
    fn bulk_results_are_counted_and_conflicts_are_not_errors() {
        let bulk = json!({"errors": true, "items": [
            {"index": {"status": 201}},
            {"index": {"status": 200}},
            {"index": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
            {"create": {"status": 409}},
            {"create": {"status": 400, "error": {"type": "document_parsing_exception"}}}
        ]});
        let mut counts = Counts::default();
        count_items(&bulk, &mut counts);
        assert_eq!(
            (counts.copied, counts.already_current, counts.refused),
            (2, 2, 1)
        );
        assert!(
            counts
                .first_refusal
                .unwrap()
                .contains("document_parsing_exception")
        );
    }

    fn holder(index: &str, is_write_index: bool) -> AliasHolder {
        AliasHolder {
            index: index.to_owned(),
            is_write_index,
        }
    }

    #[test]
    fn the_alias_moves_and_older_versions_go_in_one_request() {
        let alias = "logs-ti_anomali_latest.threatstream";
        let old = "logs-ti_anomali_latest.threatstream-1".to_owned();
        let actions = alias_actions(
            alias,
            CURRENT,
            &[holder(&old, true)],
            std::slice::from_ref(&old),
            &[],
        );
        assert_eq!(
            actions,
            [
                json!({"add": {"index": CURRENT, "alias": alias, "is_write_index": true}}),
                json!({"remove_index": {"index": old}}),
            ]
        );
        // Already in place: nothing to send.
        assert!(alias_actions(alias, CURRENT, &[holder(CURRENT, true)], &[], &[]).is_empty());
        // Holding the alias without being its explicit write index is fixed.
        assert_eq!(
            alias_actions(alias, CURRENT, &[holder(CURRENT, false)], &[], &[]).len(),
            1
        );
        // A kept version loses the alias only; one without it needs nothing.
        let kept = alias_actions(
            alias,
            CURRENT,
            &[holder(CURRENT, true), holder(&old, false)],
            &[],
            &[old.clone(), "x-3".to_owned()],
        );
        assert_eq!(kept, [json!({"remove": {"index": old, "alias": alias}})]);
    }

    #[test]
    fn a_report_with_changes_is_not_a_noop() {
        assert!(UpgradeReport::default().is_noop());
        let closed_only = UpgradeReport {
            closed: vec!["x-1".to_owned()],
            ..UpgradeReport::default()
        };
        assert!(closed_only.is_noop());
        let moved = UpgradeReport {
            aliases_updated: true,
            ..UpgradeReport::default()
        };
        assert!(!moved.is_noop());
    }
}
