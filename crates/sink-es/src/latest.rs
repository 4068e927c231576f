//! [`EsLatestStore`]: the latest store in Elasticsearch. Source copies go to the data stream
//! (`create`); the live copy is indexed under a deterministic `_id` (dataset and indicator id)
//! with `version_type=external_gte` and the `update_id` as version, so Elasticsearch itself keeps
//! the newer version and a late older one fails with 409 (counted, not an error); deleted and
//! expired indicators are deleted the same way. Redelivery is idempotent.

use anomali_latest_store::{
    ApplyReport, IndicatorKey, LatestStore, LiveDocument, StoreError, normalise_lookup_value,
};
use anomali_model::{AgentFields, EcsDocument};
use chrono::{DateTime, Utc};
use elasticsearch::http::Method;
use serde_json::{Value, json};

use crate::bulk::{self, ActionKind, ItemOutcome, ShipIdentity, document_id};
use crate::client::EsClient;
use crate::names::{IndexNames, Stream};
use crate::setup::status_error;

/// The Elasticsearch backend of [`LatestStore`].
#[derive(Debug, Clone)]
pub struct EsLatestStore {
    client: EsClient,
    names: IndexNames,
    /// Every latest alias, for reads across both streams.
    all_latest: String,
    agent: Option<AgentFields>,
    /// `refresh` for writes: `wait_for` makes them visible to searches before returning.
    refresh: &'static str,
}

fn store_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

/// A transport failure or an overloaded cluster is transient: the webhook answers 503 and the
/// sender retries; anything else is a real failure.
fn client_error(error: crate::error::EsError) -> StoreError {
    match error {
        crate::error::EsError::Transport(reason) => StoreError::Unavailable(reason),
        crate::error::EsError::Status { status, .. } if status == 429 || status >= 500 => {
            StoreError::Unavailable(error.to_string())
        }
        other => StoreError::Database(other.to_string()),
    }
}

impl EsLatestStore {
    /// A store writing to `names` through `client`. `wait_for_refresh` makes every write visible
    /// to searches before it returns (for tests and lookups right after a push).
    pub fn new(client: EsClient, names: IndexNames, wait_for_refresh: bool) -> Self {
        Self {
            client,
            all_latest: names.all_latest_aliases(),
            names,
            agent: None,
            refresh: if wait_for_refresh {
                "wait_for"
            } else {
                "false"
            },
        }
    }

    /// Documents carry `agent` (this program's identity), as Fleet-ingested documents carry the
    /// Elastic Agent's.
    pub fn with_agent(mut self, agent: AgentFields) -> Self {
        self.agent = Some(agent);
        self
    }

    /// The client.
    pub fn client(&self) -> &EsClient {
        &self.client
    }

    /// What shipped documents carry besides the mapping's output.
    pub fn identity(&self) -> ShipIdentity {
        ShipIdentity::new(&self.names, self.agent.clone())
    }

    async fn search(&self, query: Value) -> Result<Vec<Value>, StoreError> {
        let answer = self
            .client
            .json(
                Method::Post,
                // One stream's index may not exist yet (set up, but nothing polled).
                &format!(
                    "/{}/_search?ignore_unavailable=true&allow_no_indices=true",
                    self.all_latest
                ),
                Some(&query),
            )
            .await
            .map_err(client_error)?;
        if answer.status != 200 {
            return Err(store_error(status_error(
                "search",
                answer.status,
                &answer.body,
            )));
        }
        Ok(answer.body["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Past either stream's expiry date (a field a document lacks never matches).
    fn expired_at(now: DateTime<Utc>) -> Value {
        let now = now.to_rfc3339();
        let ranges: Vec<Value> = Stream::ALL
            .iter()
            .map(|stream| json!({"range": {stream.expiry_field(): {"lte": now}}}))
            .collect();
        json!({"bool": {"should": ranges, "minimum_should_match": 1}})
    }

    fn live_filter(now: DateTime<Utc>) -> Value {
        json!({"bool": {"must_not": Self::expired_at(now)}})
    }
}

fn live_document(hit: &Value) -> Option<LiveDocument> {
    let (dataset, id) = hit["_id"].as_str()?.split_once(':')?;
    Some(LiveDocument {
        key: IndicatorKey {
            dataset: dataset.to_owned(),
            id: id.to_owned(),
        },
        document: hit["_source"].clone(),
    })
}

impl LatestStore for EsLatestStore {
    async fn apply(
        &self,
        dataset: &'static str,
        documents: Vec<EcsDocument>,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport, StoreError> {
        let mut body = Vec::with_capacity(documents.len() * 5200);
        let encoded =
            bulk::encode_actions(&self.identity(), dataset, documents, now, None, &mut body);
        let mut report = ApplyReport {
            without_id: encoded.without_id,
            ..ApplyReport::default()
        };
        if body.is_empty() {
            return Ok(report);
        }
        let answer = self
            .client
            .bulk(&format!("/_bulk?refresh={}", self.refresh), body)
            .await
            .map_err(client_error)?;
        if answer.status != 200 {
            return Err(store_error(status_error(
                "bulk",
                answer.status,
                &answer.body,
            )));
        }
        let items = answer.body["items"].as_array().cloned().unwrap_or_default();
        for item in &items {
            let Some((action, result)) = item.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            let kind = match action.as_str() {
                "create" => ActionKind::Create,
                "index" => ActionKind::Index,
                _ => ActionKind::Delete,
            };
            let status = result["status"].as_u64().unwrap_or(0) as u16;
            match (kind, bulk::classify(kind, status)) {
                (ActionKind::Create, ItemOutcome::Done | ItemOutcome::AlreadyThere) => {}
                (_, ItemOutcome::Older) => report.ignored_older += 1,
                (ActionKind::Index, ItemOutcome::Done) if status == 201 => report.inserted += 1,
                (ActionKind::Index, ItemOutcome::Done) => report.replaced += 1,
                (ActionKind::Delete, ItemOutcome::Done) => report.removed += 1,
                (_, ItemOutcome::NothingToDelete) => report.expired_on_arrival += 1,
                (_, ItemOutcome::Retry) => {
                    return Err(StoreError::Unavailable(format!(
                        "elasticsearch could not take a document now ({status}): {}",
                        result["error"]
                    )));
                }
                _ => {
                    return Err(store_error(format!(
                        "document refused ({status}): {}",
                        result["error"]
                    )));
                }
            }
        }
        Ok(report)
    }

    async fn remove(&self, key: &IndicatorKey) -> Result<bool, StoreError> {
        let path = format!(
            "/{}/_doc/{}?refresh={}",
            self.names.latest_alias(Stream::of_dataset(&key.dataset)),
            document_id(key),
            self.refresh
        );
        let answer = self
            .client
            .json(Method::Delete, &path, None)
            .await
            .map_err(client_error)?;
        match answer.status {
            200 => Ok(true),
            404 => Ok(false),
            other => Err(store_error(status_error("delete", other, &answer.body))),
        }
    }

    async fn get(
        &self,
        key: &IndicatorKey,
        now: DateTime<Utc>,
    ) -> Result<Option<LiveDocument>, StoreError> {
        let stream = Stream::of_dataset(&key.dataset);
        let path = format!(
            "/{}/_doc/{}",
            self.names.latest_alias(stream),
            document_id(key)
        );
        let answer = self
            .client
            .json(Method::Get, &path, None)
            .await
            .map_err(client_error)?;
        if answer.status == 404 || answer.body["found"] == json!(false) {
            return Ok(None);
        }
        // As the sweep: past either stream's expiry field.
        let expired = Stream::ALL.iter().any(|stream| {
            let field = stream.expiry_field().rsplit('.').next().unwrap_or_default();
            answer.body["_source"]["anomali"]["threatstream"][field]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t.with_timezone(&Utc) <= now)
        });
        if expired {
            return Ok(None);
        }
        Ok(live_document(&answer.body))
    }

    async fn find(&self, value: &str, now: DateTime<Utc>) -> Result<Vec<LiveDocument>, StoreError> {
        let value = normalise_lookup_value(value);
        let mut should = vec![];
        for field in [
            "threat.indicator.url.domain",
            "threat.indicator.url.original",
            "threat.indicator.email.address",
            "threat.indicator.file.hash.md5",
            "threat.indicator.file.hash.sha1",
            "threat.indicator.file.hash.sha256",
            "threat.indicator.file.hash.sha512",
            "threat.indicator.name",
        ] {
            should.push(json!({"term": {field: {"value": value, "case_insensitive": true}}}));
        }
        if value.parse::<std::net::IpAddr>().is_ok() {
            should.push(json!({"term": {"threat.indicator.ip": value}}));
        }
        let query = json!({"size": 100, "query": {"bool": {"should": should, "minimum_should_match": 1, "filter": Self::live_filter(now)}}});
        Ok(self
            .search(query)
            .await?
            .iter()
            .filter_map(live_document)
            .collect())
    }

    async fn sweep_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut removed = 0;
        // Search, then delete what was found; bounded (no delete-by-query on minimal clusters).
        for _ in 0..1000 {
            let query = json!({"size": 1000, "_source": false,
                "query": Self::expired_at(now)});
            let hits = self.search(query).await?;
            if hits.is_empty() {
                return Ok(removed);
            }
            let mut body = Vec::new();
            for hit in &hits {
                let action = json!({"delete": {"_index": hit["_index"], "_id": hit["_id"]}});
                body.extend_from_slice(action.to_string().as_bytes());
                body.push(b'\n');
            }
            let answer = self
                .client
                .bulk("/_bulk?refresh=true", body)
                .await
                .map_err(client_error)?;
            let items = answer.body["items"].as_array().cloned().unwrap_or_default();
            removed += items
                .iter()
                .filter(|i| i["delete"]["status"] == json!(200))
                .count() as u64;
        }
        Ok(removed)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let answer = self
            .client
            .json(
                Method::Get,
                &format!(
                    "/{}/_count?ignore_unavailable=true&allow_no_indices=true",
                    self.all_latest
                ),
                None,
            )
            .await
            .map_err(client_error)?;
        answer.body["count"]
            .as_u64()
            .ok_or_else(|| store_error(status_error("count", answer.status, &answer.body)))
    }

    async fn keys(&self) -> Result<Vec<IndicatorKey>, StoreError> {
        let hits = self
            .search(json!({"size": 10000, "_source": false, "sort": ["_doc"]}))
            .await?;
        let mut keys: Vec<IndicatorKey> = hits
            .iter()
            .filter_map(live_document)
            .map(|d| d.key)
            .collect();
        keys.sort();
        Ok(keys)
    }
}
