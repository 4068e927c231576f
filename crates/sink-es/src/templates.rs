//! The index templates and the latest index: field types from the reference integration
//! (spec section (f)), with the types a cluster lacks replaced (`constant_keyword` and `wildcard`
//! by `keyword`, `match_only_text` by `text`).
//!
//! Pure: builds the JSON bodies; the setup that sends them comes with the client.

use serde_json::{Map, Value, json};

use crate::capabilities::Capabilities;

/// Version of the templates this code writes (in `_meta`, so setup can tell whether to update).
pub const TEMPLATE_VERSION: u64 = 1;
/// The source data stream's index template.
pub const SOURCE_TEMPLATE: &str = "logs-ti_anomali.threatstream";
/// The latest index (versioned: a mapping change bumps the suffix) and its alias.
pub const LATEST_INDEX: &str = "logs-ti_anomali_latest.threatstream-2";
/// The alias detection rules point at.
pub const LATEST_ALIAS: &str = "logs-ti_anomali_latest.threatstream";
/// The ILM policy of the source data stream (5 days, as the reference).
pub const SOURCE_POLICY: &str = "logs-ti_anomali.threatstream-default_policy";

/// A field type as the reference declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Keyword,
    Text,
    MatchOnlyText,
    Wildcard,
    Date,
    Long,
    Ip,
    GeoPoint,
    /// `constant_keyword` with its value when the package fixes one.
    Constant(Option<&'static str>),
    /// A keyword that is stored but not indexed (`event.original`).
    Unindexed,
}

/// Which copy the mapping is for: in the latest index `data_stream.namespace` is a plain keyword
/// (one latest document across namespaces) and `labels.is_ioc_transform_source` is "false".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The source data stream.
    Source,
    /// The latest index.
    Latest,
}

fn fields(target: Target) -> Vec<(&'static str, Kind)> {
    use Kind::*;
    let namespace = match target {
        Target::Source => Constant(None),
        Target::Latest => Keyword,
    };
    let source_label = match target {
        Target::Source => Constant(Some("true")),
        Target::Latest => Constant(Some("false")),
    };
    vec![
        ("@timestamp", Date),
        ("agent.id", Keyword),
        ("agent.name", Keyword),
        ("agent.type", Keyword),
        ("agent.version", Keyword),
        ("anomali.threatstream.added_at", Date),
        ("anomali.threatstream.classification", Keyword),
        ("anomali.threatstream.confidence", Long),
        ("anomali.threatstream.deleted_at", Date),
        ("anomali.threatstream.detail2", Text),
        ("anomali.threatstream.domain", Keyword),
        ("anomali.threatstream.id", Keyword),
        ("anomali.threatstream.import_session_id", Keyword),
        ("anomali.threatstream.itype", Keyword),
        ("anomali.threatstream.maltype", Wildcard),
        ("anomali.threatstream.md5", Keyword),
        ("anomali.threatstream.resource_uri", Keyword),
        ("anomali.threatstream.severity", Keyword),
        ("anomali.threatstream.source", Keyword),
        ("anomali.threatstream.source_feed_id", Keyword),
        ("anomali.threatstream.state", Keyword),
        ("anomali.threatstream.trusted_circle_ids", Keyword),
        ("anomali.threatstream.update_id", Keyword),
        ("anomali.threatstream.url", Keyword),
        ("anomali.threatstream.value_type", Keyword),
        (
            "data_stream.dataset",
            Constant(Some("ti_anomali.threatstream")),
        ),
        ("data_stream.namespace", namespace),
        ("data_stream.type", Constant(Some("logs"))),
        ("ecs.version", Keyword),
        ("error.message", MatchOnlyText),
        ("event.category", Keyword),
        ("event.created", Date),
        ("event.dataset", Constant(Some("ti_anomali.threatstream"))),
        ("event.ingested", Date),
        ("event.kind", Keyword),
        ("event.module", Constant(Some("ti_anomali"))),
        ("event.original", Unindexed),
        ("event.severity", Long),
        ("event.type", Keyword),
        ("input.type", Keyword),
        ("labels.is_ioc_transform_source", source_label),
        ("log.flags", Keyword),
        ("log.offset", Long),
        ("message", MatchOnlyText),
        ("related.hash", Keyword),
        ("related.hosts", Keyword),
        ("related.ip", Ip),
        ("related.user", Keyword),
        ("tags", Keyword),
        (
            "threat.feed.dashboard_id",
            Constant(Some("ti_anomali-96fe1e60-4261-11ec-b7be-d3026acdf1cf")),
        ),
        ("threat.feed.name", Constant(Some("Anomali ThreatStream"))),
        ("threat.indicator.as.number", Long),
        ("threat.indicator.as.organization.name", Keyword),
        ("threat.indicator.confidence", Keyword),
        ("threat.indicator.email.address", Keyword),
        ("threat.indicator.file.hash.md5", Keyword),
        ("threat.indicator.file.hash.sha1", Keyword),
        ("threat.indicator.file.hash.sha256", Keyword),
        ("threat.indicator.file.hash.sha512", Keyword),
        ("threat.indicator.first_seen", Date),
        ("threat.indicator.geo.city_name", Keyword),
        ("threat.indicator.geo.continent_name", Keyword),
        ("threat.indicator.geo.country_iso_code", Keyword),
        ("threat.indicator.geo.country_name", Keyword),
        ("threat.indicator.geo.location", GeoPoint),
        ("threat.indicator.geo.region_iso_code", Keyword),
        ("threat.indicator.geo.region_name", Keyword),
        ("threat.indicator.ip", Ip),
        ("threat.indicator.last_seen", Date),
        ("threat.indicator.marking.tlp", Keyword),
        ("threat.indicator.modified_at", Date),
        ("threat.indicator.name", Keyword),
        ("threat.indicator.provider", Keyword),
        ("threat.indicator.type", Keyword),
        ("threat.indicator.url.domain", Keyword),
        ("threat.indicator.url.extension", Keyword),
        ("threat.indicator.url.fragment", Keyword),
        ("threat.indicator.url.full", Wildcard),
        ("threat.indicator.url.original", Wildcard),
        ("threat.indicator.url.password", Keyword),
        ("threat.indicator.url.path", Wildcard),
        ("threat.indicator.url.port", Long),
        ("threat.indicator.url.query", Keyword),
        ("threat.indicator.url.scheme", Keyword),
        ("threat.indicator.url.user_info", Keyword),
        ("threat.indicator.url.username", Keyword),
    ]
}

fn field_mapping(kind: Kind, capabilities: Capabilities) -> Value {
    match kind {
        Kind::Keyword => json!({"type": "keyword", "ignore_above": 1024}),
        Kind::Text => json!({"type": "text"}),
        Kind::MatchOnlyText if capabilities.match_only_text => json!({"type": "match_only_text"}),
        Kind::MatchOnlyText => json!({"type": "text"}),
        Kind::Wildcard if capabilities.wildcard => json!({"type": "wildcard"}),
        Kind::Wildcard => json!({"type": "keyword", "ignore_above": 8191}),
        Kind::Date => json!({"type": "date"}),
        Kind::Long => json!({"type": "long"}),
        Kind::Ip => json!({"type": "ip"}),
        Kind::GeoPoint => json!({"type": "geo_point"}),
        Kind::Constant(value) if capabilities.constant_keyword => match value {
            Some(value) => json!({"type": "constant_keyword", "value": value}),
            None => json!({"type": "constant_keyword"}),
        },
        Kind::Constant(_) => json!({"type": "keyword"}),
        Kind::Unindexed => json!({"type": "keyword", "index": false, "doc_values": false}),
    }
}

/// The `mappings` body for `target` on a cluster with `capabilities`.
pub fn mappings(target: Target, capabilities: Capabilities) -> Value {
    let mut root = Map::new();
    for (path, kind) in fields(target) {
        let mut node = &mut root;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_owned(), field_mapping(kind, capabilities));
            } else {
                let child = node
                    .entry(part.to_owned())
                    .or_insert_with(|| json!({"properties": {}}));
                node = match child.get_mut("properties").and_then(Value::as_object_mut) {
                    Some(properties) => properties,
                    // Paths in the table never make a field a parent; stop rather than panic.
                    None => break,
                };
            }
        }
    }
    json!({
        "_meta": {"managed_by": "ti-anomali", "version": TEMPLATE_VERSION},
        "dynamic": true,
        "properties": root,
    })
}

/// The index template of the source data stream (`logs-ti_anomali.threatstream-*`).
pub fn source_index_template(capabilities: Capabilities) -> Value {
    let mut settings = json!({"index": {"mapping": {"total_fields": {"limit": 2000}}}});
    if capabilities.ilm {
        settings["index"]["lifecycle"] = json!({"name": SOURCE_POLICY});
    }
    json!({
        "index_patterns": ["logs-ti_anomali.threatstream-*"],
        "data_stream": {},
        "priority": 200,
        "template": {"settings": settings, "mappings": mappings(Target::Source, capabilities)},
        "_meta": {"managed_by": "ti-anomali", "version": TEMPLATE_VERSION},
    })
}

/// The body that creates the latest index with its alias.
pub fn latest_index(capabilities: Capabilities) -> Value {
    json!({
        "settings": {"index": {"mapping": {"total_fields": {"limit": 2000}}}},
        "mappings": mappings(Target::Latest, capabilities),
        "aliases": {LATEST_ALIAS: {"is_write_index": true}},
    })
}

/// The ILM policy of the source: roll over at 2 days or 50 GB, delete 3 days after (5 days of
/// data, as the reference).
pub fn source_policy() -> Value {
    json!({
        "policy": {
            "phases": {
                "hot": {"actions": {"rollover": {"max_age": "2d", "max_primary_shard_size": "50gb"}, "set_priority": {"priority": 100}}},
                "delete": {"min_age": "3d", "actions": {"delete": {}}},
            },
            "_meta": {"managed_by": "ti-anomali", "version": TEMPLATE_VERSION},
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_index_keeps_namespace_as_keyword_and_labels_false() {
        let latest = mappings(Target::Latest, Capabilities::FULL);
        let properties = &latest["properties"];
        assert_eq!(
            properties["data_stream"]["properties"]["namespace"]["type"],
            "keyword"
        );
        assert_eq!(
            properties["labels"]["properties"]["is_ioc_transform_source"]["value"],
            "false"
        );
        let source = mappings(Target::Source, Capabilities::FULL);
        assert_eq!(
            source["properties"]["data_stream"]["properties"]["namespace"]["type"],
            "constant_keyword"
        );
        assert_eq!(
            source["properties"]["labels"]["properties"]["is_ioc_transform_source"]["value"],
            "true"
        );
    }

    #[test]
    fn minimal_clusters_get_replacement_types_and_no_policy() {
        let text = source_index_template(Capabilities::MINIMAL).to_string();
        for missing in [
            "constant_keyword",
            "\"wildcard\"",
            "match_only_text",
            "lifecycle",
        ] {
            assert!(!text.contains(missing), "{missing} in {text}");
        }
        let full = source_index_template(Capabilities::FULL).to_string();
        for present in [
            "constant_keyword",
            "\"wildcard\"",
            "match_only_text",
            SOURCE_POLICY,
        ] {
            assert!(full.contains(present), "{present} missing");
        }
    }
}
