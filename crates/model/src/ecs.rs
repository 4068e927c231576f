//! [`EcsDocument`]: the ECS document made from one indicator.
//!
//! Field names follow ECS and the reference `ti_anomali` pipeline. Every optional field is skipped
//! when absent or empty, so a serialized document never holds a null, an empty string, an empty
//! array or an empty object (the reference's final cleanup, rule 28, as a property of the type).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Timestamp;

mod encode;

/// The ECS version the documents follow (the reference pipeline's `ecs.version`).
pub const ECS_VERSION: &str = "9.3.0";

/// One ECS document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EcsDocument {
    /// `added_at`, else `deleted_at`, else the time the indicator was received.
    #[serde(rename = "@timestamp")]
    pub timestamp: Timestamp,
    /// `agent.*`: this program, in place of the Elastic Agent, when shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentFields>,
    /// `anomali.threatstream.*`: what is left of the indicator after mapping.
    #[serde(skip_serializing_if = "AnomaliFields::is_empty")]
    pub anomali: AnomaliFields,
    /// `data_stream.*`, when shipped to Elasticsearch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_stream: Option<DataStreamFields>,
    /// `ecs.version`.
    pub ecs: EcsVersion,
    /// `error.message`: one entry per field that could not be mapped.
    #[serde(skip_serializing_if = "ErrorFields::is_empty")]
    pub error: ErrorFields,
    /// `event.*`.
    pub event: EventFields,
    /// `input.type`, when shipped: `http_endpoint` for the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<InputFields>,
    /// `labels.*`: whether this copy is a source document or the live one.
    #[serde(skip_serializing_if = "LabelFields::is_empty")]
    pub labels: LabelFields,
    /// `related.*`.
    #[serde(skip_serializing_if = "RelatedFields::is_empty")]
    pub related: RelatedFields,
    /// `tags`: configured tags, then the pieces of `detail`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `threat.*`.
    #[serde(skip_serializing_if = "ThreatFields::is_empty")]
    pub threat: ThreatFields,
}

/// `agent`: who shipped the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentFields {
    /// `agent.id`: a stable id of this installation.
    pub id: String,
    /// `agent.name`: the host's name.
    pub name: String,
    /// `agent.type`: `ti-anomali`.
    #[serde(rename = "type")]
    pub agent_type: &'static str,
    /// `agent.version`.
    pub version: &'static str,
}

/// `data_stream`: where a shipped document lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataStreamFields {
    /// `data_stream.dataset`.
    pub dataset: &'static str,
    /// `data_stream.namespace`.
    pub namespace: String,
    /// `data_stream.type`: `logs`.
    #[serde(rename = "type")]
    pub stream_type: &'static str,
}

/// `input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InputFields {
    /// `input.type`.
    #[serde(rename = "type")]
    pub input_type: &'static str,
}

/// `ecs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcsVersion {
    /// `ecs.version`.
    pub version: &'static str,
}

impl Default for EcsVersion {
    fn default() -> Self {
        Self {
            version: ECS_VERSION,
        }
    }
}

/// `error`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ErrorFields {
    /// `error.message`: a list, appended to in rule order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub message: Vec<String>,
}

impl ErrorFields {
    fn is_empty(&self) -> bool {
        self.message.is_empty()
    }
}

/// `event`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventFields {
    /// `event.category`: always `["threat"]`.
    pub category: &'static [&'static str],
    /// `event.created`: when ThreatStream created the indicator (`created_ts`, intelligence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    /// `event.dataset`, set when the document is stored: `ti_anomali.threatstream`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<&'static str>,
    /// `event.ingested`: when the document was shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingested: Option<Timestamp>,
    /// `event.kind`: `enrichment`, or `pipeline_error` when a field failed.
    pub kind: &'static str,
    /// `event.module`, set when the document is stored: `ti_anomali`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<&'static str>,
    /// `event.original`: the raw indicator, when `preserve_original_event` is on.
    #[serde(skip_serializing_if = "is_absent")]
    pub original: Option<String>,
    /// `event.severity`: 3, 5, 7 or 9 from `severity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<i64>,
    /// `event.type`: always `["indicator"]`.
    #[serde(rename = "type")]
    pub kind_of_event: &'static [&'static str],
}

/// `related`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RelatedFields {
    /// `related.hash`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hash: Vec<String>,
    /// `related.hosts`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// `related.ip`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip: Vec<String>,
    /// `related.user`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
}

impl RelatedFields {
    fn is_empty(&self) -> bool {
        self.hash.is_empty() && self.hosts.is_empty() && self.ip.is_empty() && self.user.is_empty()
    }
}

/// `threat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThreatFields {
    /// `threat.feed`, set when the document is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed: Option<FeedFields>,
    /// `threat.indicator`.
    pub indicator: IndicatorFields,
}

/// `threat.feed`: constants of the integration, which dashboards and rules filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeedFields {
    /// `threat.feed.dashboard_id`.
    pub dashboard_id: &'static str,
    /// `threat.feed.name`.
    pub name: &'static str,
}

impl FeedFields {
    /// The reference integration's feed: `Anomali ThreatStream` and its dashboard.
    pub const ANOMALI_THREATSTREAM: Self = Self {
        dashboard_id: "ti_anomali-96fe1e60-4261-11ec-b7be-d3026acdf1cf",
        name: "Anomali ThreatStream",
    };
}

/// `labels`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelFields {
    /// `labels.is_ioc_transform_source`: `"true"` on source documents, `"false"` on the live
    /// (latest) copy, so indicator-match rules can exclude the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ioc_transform_source: Option<&'static str>,
}

impl LabelFields {
    fn is_empty(&self) -> bool {
        self.is_ioc_transform_source.is_none()
    }
}

/// Which copy of a document: the raw source record, or the live latest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentRole {
    /// The source data stream (every version, kept for days).
    Source,
    /// The latest index: one live document per indicator.
    Latest,
}

impl EcsDocument {
    /// The dataset of the webhook stream.
    pub const THREATSTREAM_DATASET: &'static str = "ti_anomali.threatstream";
    /// The dataset of the API-polling (`GET /api/v2/intelligence/`) stream.
    pub const INTELLIGENCE_DATASET: &'static str = "ti_anomali.intelligence";

    /// Sets what a stored document carries besides the mapping's output: `event.module`,
    /// `event.dataset`, `threat.feed`, and `labels.is_ioc_transform_source` for `role`.
    ///
    /// `dataset` is [`Self::THREATSTREAM_DATASET`] or [`Self::INTELLIGENCE_DATASET`]: both
    /// streams share the module, the feed and the label.
    pub fn stamp(&mut self, dataset: &'static str, role: DocumentRole) {
        self.event.module = Some("ti_anomali");
        self.event.dataset = Some(dataset);
        self.threat.feed = Some(FeedFields::ANOMALI_THREATSTREAM);
        self.labels.is_ioc_transform_source = Some(match role {
            DocumentRole::Source => "true",
            DocumentRole::Latest => "false",
        });
    }
}

impl ThreatFields {
    fn is_empty(&self) -> bool {
        let i = &self.indicator;
        self.feed.is_none()
            && i.autonomous_system.is_empty()
            && i.confidence.is_none()
            && i.email.is_empty()
            && i.file.is_empty()
            && i.first_seen.is_none()
            && i.geo.is_empty()
            && is_absent(&i.ip)
            && i.last_seen.is_none()
            && i.marking.is_empty()
            && i.modified_at.is_none()
            && is_absent(&i.name)
            && is_absent(&i.provider)
            && i.indicator_type.is_none()
            && i.url.is_empty()
    }
}

/// `threat.indicator`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IndicatorFields {
    /// `threat.indicator.as`.
    #[serde(rename = "as", skip_serializing_if = "AsFields::is_empty")]
    pub autonomous_system: AsFields,
    /// `threat.indicator.confidence`: `None`, `Low`, `Medium` or `High`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<&'static str>,
    /// `threat.indicator.email`.
    #[serde(skip_serializing_if = "EmailFields::is_empty")]
    pub email: EmailFields,
    /// `threat.indicator.file`.
    #[serde(skip_serializing_if = "FileFields::is_empty")]
    pub file: FileFields,
    /// `threat.indicator.first_seen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    /// `threat.indicator.geo`.
    #[serde(skip_serializing_if = "GeoFields::is_empty")]
    pub geo: GeoFields,
    /// `threat.indicator.ip`.
    #[serde(skip_serializing_if = "is_absent")]
    pub ip: Option<String>,
    /// `threat.indicator.last_seen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// `threat.indicator.marking`.
    #[serde(skip_serializing_if = "Marking::is_empty")]
    pub marking: Marking,
    /// `threat.indicator.modified_at`: when ThreatStream last changed it (intelligence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<Timestamp>,
    /// `threat.indicator.name`: the indicator's value.
    #[serde(skip_serializing_if = "is_absent")]
    pub name: Option<String>,
    /// `threat.indicator.provider`.
    #[serde(skip_serializing_if = "is_absent")]
    pub provider: Option<String>,
    /// `threat.indicator.type`, such as `ipv4-addr` or `domain-name`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub indicator_type: Option<&'static str>,
    /// `threat.indicator.url`.
    #[serde(skip_serializing_if = "UrlFields::is_empty")]
    pub url: UrlFields,
}

/// `threat.indicator.as`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AsFields {
    /// `as.number`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    /// `as.organization`.
    #[serde(skip_serializing_if = "AsOrganization::is_empty")]
    pub organization: AsOrganization,
}

impl AsFields {
    fn is_empty(&self) -> bool {
        self.number.is_none() && self.organization.is_empty()
    }
}

/// `threat.indicator.as.organization`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AsOrganization {
    /// `as.organization.name`.
    #[serde(skip_serializing_if = "is_absent")]
    pub name: Option<String>,
}

impl AsOrganization {
    fn is_empty(&self) -> bool {
        is_absent(&self.name)
    }
}

/// `threat.indicator.email`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EmailFields {
    /// `email.address`.
    #[serde(skip_serializing_if = "is_absent")]
    pub address: Option<String>,
}

impl EmailFields {
    fn is_empty(&self) -> bool {
        is_absent(&self.address)
    }
}

/// `threat.indicator.file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileFields {
    /// `file.hash`.
    #[serde(skip_serializing_if = "FileHash::is_empty")]
    pub hash: FileHash,
    /// `file.path`: a file name indicator (`*_file_name` itypes, intelligence).
    #[serde(skip_serializing_if = "is_absent")]
    pub path: Option<String>,
}

impl FileFields {
    fn is_empty(&self) -> bool {
        self.hash.is_empty() && is_absent(&self.path)
    }
}

/// `threat.indicator.file.hash`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileHash {
    /// 32 hex digits.
    #[serde(skip_serializing_if = "is_absent")]
    pub md5: Option<String>,
    /// 40 hex digits.
    #[serde(skip_serializing_if = "is_absent")]
    pub sha1: Option<String>,
    /// 64 hex digits.
    #[serde(skip_serializing_if = "is_absent")]
    pub sha256: Option<String>,
    /// 128 hex digits.
    #[serde(skip_serializing_if = "is_absent")]
    pub sha512: Option<String>,
    /// A fuzzy hash (`*_ssdeep` itypes, intelligence).
    #[serde(skip_serializing_if = "is_absent")]
    pub ssdeep: Option<String>,
}

impl FileHash {
    fn is_empty(&self) -> bool {
        is_absent(&self.md5)
            && is_absent(&self.sha1)
            && is_absent(&self.sha256)
            && is_absent(&self.sha512)
            && is_absent(&self.ssdeep)
    }
}

/// `threat.indicator.geo`: from the feed, or replaced whole by a GeoIP hit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GeoFields {
    /// `geo.city_name`.
    #[serde(skip_serializing_if = "is_absent")]
    pub city_name: Option<String>,
    /// `geo.continent_name`.
    #[serde(skip_serializing_if = "is_absent")]
    pub continent_name: Option<String>,
    /// `geo.country_iso_code`.
    #[serde(skip_serializing_if = "is_absent")]
    pub country_iso_code: Option<String>,
    /// `geo.country_name`.
    #[serde(skip_serializing_if = "is_absent")]
    pub country_name: Option<String>,
    /// `geo.location`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoLocation>,
    /// `geo.region_iso_code`, such as `GB-ENG`.
    #[serde(skip_serializing_if = "is_absent")]
    pub region_iso_code: Option<String>,
    /// `geo.region_name`.
    #[serde(skip_serializing_if = "is_absent")]
    pub region_name: Option<String>,
}

impl GeoFields {
    /// True when no geo field is set.
    pub fn is_empty(&self) -> bool {
        is_absent(&self.city_name)
            && is_absent(&self.continent_name)
            && is_absent(&self.country_iso_code)
            && is_absent(&self.country_name)
            && self.location.is_none()
            && is_absent(&self.region_iso_code)
            && is_absent(&self.region_name)
    }
}

/// `geo.location`: a geo_point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GeoLocation {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

/// `threat.indicator.marking`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Marking {
    /// `marking.tlp`.
    #[serde(skip_serializing_if = "Tlp::is_empty")]
    pub tlp: Tlp,
}

impl Marking {
    fn is_empty(&self) -> bool {
        self.tlp.is_empty()
    }
}

/// `threat.indicator.marking.tlp`: the two reference streams write it in different shapes, and
/// dashboards built on each expect their own, so the shape is kept per stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tlp {
    /// An array of fixed labels, as the threatstream stream writes it (`["AMBER"]`). The labels
    /// are constants, so the array is too: no allocation per document.
    Labels(&'static [&'static str]),
    /// One label, upper-cased from the feed, as the intelligence stream writes it (`"AMBER"`).
    Label(String),
}

impl Default for Tlp {
    fn default() -> Self {
        Self::Labels(&[])
    }
}

impl Tlp {
    /// True when there is no label to write.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Labels(labels) => labels.is_empty(),
            Self::Label(label) => label.is_empty(),
        }
    }
}

impl Serialize for Tlp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Labels(labels) => labels.serialize(serializer),
            Self::Label(label) => serializer.serialize_str(label),
        }
    }
}

/// `threat.indicator.url`: the parts Elasticsearch's `uri_parts` processor gives.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UrlFields {
    /// `url.domain`: the host (or the indicator's `domain` for domain indicators).
    #[serde(skip_serializing_if = "is_absent")]
    pub domain: Option<String>,
    /// `url.extension`: after the last `.` of the last path segment.
    #[serde(skip_serializing_if = "is_absent")]
    pub extension: Option<String>,
    /// `url.fragment`, without `#`.
    #[serde(skip_serializing_if = "is_absent")]
    pub fragment: Option<String>,
    /// `url.full`: the same as `original`.
    #[serde(skip_serializing_if = "is_absent")]
    pub full: Option<String>,
    /// `url.original`: the URL as received.
    #[serde(skip_serializing_if = "is_absent")]
    pub original: Option<String>,
    /// `url.password`.
    #[serde(skip_serializing_if = "is_absent")]
    pub password: Option<String>,
    /// `url.path`, percent-decoded.
    #[serde(skip_serializing_if = "is_absent")]
    pub path: Option<String>,
    /// `url.port`, only when written in the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `url.query`, without `?`.
    #[serde(skip_serializing_if = "is_absent")]
    pub query: Option<String>,
    /// `url.scheme`.
    #[serde(skip_serializing_if = "is_absent")]
    pub scheme: Option<String>,
    /// `url.user_info`, as `uri_parts` gives it.
    #[serde(skip_serializing_if = "is_absent")]
    pub user_info: Option<String>,
    /// `url.username`.
    #[serde(skip_serializing_if = "is_absent")]
    pub username: Option<String>,
}

impl UrlFields {
    /// True when no URL field is set.
    pub fn is_empty(&self) -> bool {
        is_absent(&self.domain)
            && is_absent(&self.extension)
            && is_absent(&self.fragment)
            && is_absent(&self.full)
            && is_absent(&self.original)
            && is_absent(&self.password)
            && is_absent(&self.path)
            && self.port.is_none()
            && is_absent(&self.query)
            && is_absent(&self.scheme)
            && is_absent(&self.user_info)
            && is_absent(&self.username)
    }
}

/// `anomali`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnomaliFields {
    /// `anomali.threatstream`.
    pub threatstream: ThreatstreamFields,
}

impl AnomaliFields {
    fn is_empty(&self) -> bool {
        self.threatstream.is_empty()
    }
}

/// `anomali.threatstream`: the indicator's own fields that ECS has no place for.
///
/// Ids are strings (rule 26), dates are normalised, `trusted_circle_ids` is split. The other
/// values are kept as they arrived, pruned of nulls and empties. `md5`, `url` and `domain` appear
/// only when the mapping could not move them to ECS fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThreatstreamFields {
    /// Normalised `added_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_at: Option<Timestamp>,
    /// `classification`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<Value>,
    /// `confidence`, the raw number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Value>,
    /// Normalised `deleted_at` (from the feed, or the configured expiry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    /// When the latest index drops the indicator (intelligence): the earlier of the receive
    /// time plus the configured duration and the feed's `expiration_ts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_scheduled_at: Option<Timestamp>,
    /// `detail2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail2: Option<Value>,
    /// `domain`, when a URL already gave `url.domain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Value>,
    /// `id`, as a string.
    #[serde(skip_serializing_if = "is_absent")]
    pub id: Option<String>,
    /// `import_session_id`, as a string.
    #[serde(skip_serializing_if = "is_absent")]
    pub import_session_id: Option<String>,
    /// `itype`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub itype: Option<Value>,
    /// `maltype`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maltype: Option<Value>,
    /// `md5`, when its length matches no hash algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<Value>,
    /// `resource_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<Value>,
    /// `severity`, the raw name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Value>,
    /// `source_feed_id`, as a string.
    #[serde(skip_serializing_if = "is_absent")]
    pub source_feed_id: Option<String>,
    /// `state`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// `trusted_circle_ids`, split on commas when it arrived as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_circle_ids: Option<Value>,
    /// `update_id`, as a string.
    #[serde(skip_serializing_if = "is_absent")]
    pub update_id: Option<String>,
    /// `url`, when it could not be parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Value>,
    /// `value_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_type: Option<Value>,
    /// Fields the reference does not know, kept as they arrived (pruned).
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl ThreatstreamFields {
    fn is_empty(&self) -> bool {
        self.added_at.is_none()
            && self.classification.is_none()
            && self.confidence.is_none()
            && self.deleted_at.is_none()
            && self.deletion_scheduled_at.is_none()
            && self.detail2.is_none()
            && self.domain.is_none()
            && is_absent(&self.id)
            && is_absent(&self.import_session_id)
            && self.itype.is_none()
            && self.maltype.is_none()
            && self.md5.is_none()
            && self.resource_uri.is_none()
            && self.severity.is_none()
            && is_absent(&self.source_feed_id)
            && self.state.is_none()
            && self.trusted_circle_ids.is_none()
            && is_absent(&self.update_id)
            && self.url.is_none()
            && self.value_type.is_none()
            && self.unknown.is_empty()
    }
}

fn is_absent(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

/// Removes nulls, empty strings, empty arrays and empty objects, recursively.
///
/// Returns `None` when nothing is left, so callers can drop the field.
pub fn pruned(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(ref s) if s.is_empty() => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(pruned).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(fields) => {
            let fields: Map<String, Value> = fields
                .into_iter()
                .filter_map(|(k, v)| pruned(v).map(|v| (k, v)))
                .collect();
            (!fields.is_empty()).then_some(Value::Object(fields))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_parts_are_not_serialized() {
        let document = EcsDocument {
            timestamp: Timestamp::parse_normalised("2020-10-08T12:22:11.000Z").unwrap(),
            event: EventFields {
                category: &["threat"],
                kind: "enrichment",
                original: Some(String::new()),
                kind_of_event: &["indicator"],
                ..Default::default()
            },
            threat: ThreatFields {
                indicator: IndicatorFields {
                    name: Some(String::new()),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&document).unwrap(),
            json!({
                "@timestamp": "2020-10-08T12:22:11.000Z",
                "ecs": {"version": "9.3.0"},
                "event": {"category": ["threat"], "kind": "enrichment", "type": ["indicator"]}
            })
        );
    }

    /// Every field set, with text that needs escaping: the hand-written encoder must write
    /// exactly what serde_json writes from the derived `Serialize`.
    #[test]
    fn write_json_matches_serde_json_on_a_full_document() {
        let text = |s: &str| Some(format!("{s} \"quoted\" \\ \n é"));
        let time = Timestamp::parse_normalised("2021-02-03T04:05:06.789Z");
        let mut unknown = Map::new();
        unknown.insert("z\"key".into(), json!({"nested": [1, 2.5, null, "x\u{1}"]}));
        unknown.insert("a".into(), json!(true));
        unknown.insert(
            "numbers".into(),
            json!([u64::MAX, i64::MIN, -1, 0, 1e300, -0.0, 5e-324, {}, [], {"k": [false]}]),
        );
        let document = EcsDocument {
            timestamp: Timestamp::parse_normalised("2020-10-08T12:22:11.000Z").unwrap(),
            anomali: AnomaliFields {
                threatstream: ThreatstreamFields {
                    added_at: time,
                    classification: Some(json!("public")),
                    confidence: Some(json!(29.5)),
                    deleted_at: time,
                    deletion_scheduled_at: time,
                    detail2: Some(json!("imported by user 1")),
                    domain: Some(json!("d.example")),
                    id: text("1"),
                    import_session_id: text("2"),
                    itype: Some(json!("mal_url")),
                    maltype: Some(json!(["a", "b"])),
                    md5: Some(json!("abc")),
                    resource_uri: Some(json!("/api/")),
                    severity: Some(json!("high")),
                    source_feed_id: text("3"),
                    state: Some(json!("active")),
                    trusted_circle_ids: Some(json!(["1", "2"])),
                    update_id: text("4"),
                    url: Some(json!("not a url")),
                    value_type: Some(json!("url")),
                    unknown,
                },
            },
            ecs: EcsVersion::default(),
            error: ErrorFields {
                message: vec!["one".into(), "two \"2\"".into()],
            },
            labels: LabelFields {
                is_ioc_transform_source: Some("false"),
            },
            agent: Some(AgentFields {
                id: "a-1".into(),
                name: "host\"1".into(),
                agent_type: "ti-anomali",
                version: "0.1.0",
            }),
            data_stream: Some(DataStreamFields {
                dataset: "ti_anomali.threatstream",
                namespace: "default".into(),
                stream_type: "logs",
            }),
            input: Some(InputFields {
                input_type: "http_endpoint",
            }),
            event: EventFields {
                category: &["threat"],
                created: time,
                dataset: Some("ti_anomali.threatstream"),
                ingested: time,
                module: Some("ti_anomali"),
                kind: "pipeline_error",
                original: text("{}"),
                severity: Some(7),
                kind_of_event: &["indicator"],
            },
            related: RelatedFields {
                hash: vec!["h".into()],
                hosts: vec!["d.example".into()],
                ip: vec!["203.0.113.1".into(), "::1".into()],
                user: vec!["u".into()],
            },
            tags: vec!["t1".into(), "t\t2".into()],
            threat: ThreatFields {
                feed: Some(FeedFields::ANOMALI_THREATSTREAM),
                indicator: IndicatorFields {
                    autonomous_system: AsFields {
                        number: Some(4_294_967_295),
                        organization: AsOrganization { name: text("org") },
                    },
                    confidence: Some("High"),
                    email: EmailFields {
                        address: text("e@x"),
                    },
                    file: FileFields {
                        hash: FileHash {
                            md5: text("m"),
                            sha1: text("s1"),
                            sha256: text("s2"),
                            sha512: text("s5"),
                            ssdeep: text("sd"),
                        },
                        path: text("fp"),
                    },
                    first_seen: time,
                    geo: GeoFields {
                        city_name: text("c"),
                        continent_name: text("co"),
                        country_iso_code: text("GB"),
                        country_name: text("cn"),
                        location: Some(GeoLocation {
                            lat: 51.5142,
                            lon: -0.0931,
                        }),
                        region_iso_code: text("GB-ENG"),
                        region_name: text("r"),
                    },
                    ip: text("ip"),
                    last_seen: time,
                    modified_at: time,
                    marking: Marking {
                        tlp: Tlp::Labels(&["AMBER", "WHITE"]),
                    },
                    name: text("n"),
                    provider: text("p"),
                    indicator_type: Some("url"),
                    url: UrlFields {
                        domain: text("d"),
                        extension: text("x"),
                        fragment: text("f"),
                        full: text("u"),
                        original: text("u"),
                        password: text("pw"),
                        path: text("/p"),
                        port: Some(8080),
                        query: text("q"),
                        scheme: text("http"),
                        user_info: text("ui"),
                        username: text("un"),
                    },
                },
            },
        };
        let mut fast = Vec::new();
        document.write_json(&mut fast);
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            serde_json::to_string(&document).unwrap()
        );

        let mut fast = Vec::new();
        EcsDocument::default().write_json(&mut fast);
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            serde_json::to_string(&EcsDocument::default()).unwrap()
        );
    }

    /// The fields only the intelligence stream sets, with a single-label TLP: the encoder must
    /// still write exactly what serde_json writes, and `stamp` must name the intelligence dataset.
    #[test]
    fn write_json_matches_serde_json_on_an_intelligence_document() {
        let time = Timestamp::parse_normalised("2026-01-02T03:04:05.006Z");
        let mut document = EcsDocument {
            anomali: AnomaliFields {
                threatstream: ThreatstreamFields {
                    deletion_scheduled_at: time,
                    ..Default::default()
                },
            },
            event: EventFields {
                category: &["threat"],
                created: time,
                kind: "enrichment",
                kind_of_event: &["indicator"],
                ..Default::default()
            },
            threat: ThreatFields {
                indicator: IndicatorFields {
                    file: FileFields {
                        hash: FileHash {
                            ssdeep: Some("3:a\"b:c".into()),
                            ..Default::default()
                        },
                        path: Some("C:\\evil.exe".into()),
                    },
                    marking: Marking {
                        tlp: Tlp::Label("AMBER+STRICT".into()),
                    },
                    modified_at: time,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        document.stamp(EcsDocument::INTELLIGENCE_DATASET, DocumentRole::Source);
        let value = serde_json::to_value(&document).unwrap();
        assert_eq!(value["event"]["dataset"], "ti_anomali.intelligence");
        assert_eq!(
            value["threat"]["indicator"]["marking"]["tlp"],
            "AMBER+STRICT"
        );
        let mut fast = Vec::new();
        document.write_json(&mut fast);
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            serde_json::to_string(&document).unwrap()
        );

        // A path without hashes, and an empty label, which is not written.
        document.threat.indicator.file.hash = FileHash::default();
        document.threat.indicator.marking.tlp = Tlp::Label(String::new());
        let mut fast = Vec::new();
        document.write_json(&mut fast);
        let text = String::from_utf8(fast).unwrap();
        assert_eq!(text, serde_json::to_string(&document).unwrap());
        assert!(!text.contains("marking"), "{text}");
    }

    #[test]
    fn tlp_is_empty_without_a_label() {
        assert!(Tlp::default().is_empty());
        assert!(Tlp::Label(String::new()).is_empty());
        assert!(!Tlp::Labels(&["AMBER"]).is_empty());
        assert!(!Tlp::Label("RED".into()).is_empty());
    }

    #[test]
    fn pruning_removes_nested_empties() {
        let value = json!({"a": null, "b": "", "c": [], "d": {}, "e": [null, "", {"f": []}, 1],
                           "g": {"h": {"i": null}}, "j": 0, "k": false});
        assert_eq!(pruned(value), Some(json!({"e": [1], "j": 0, "k": false})));
        assert_eq!(pruned(json!({"a": [null]})), None);
    }
}
