//! The index templates and the latest index: field types from the reference integration
//! (spec section (f)), with the types a cluster lacks replaced (`constant_keyword` and `wildcard`
//! by `keyword`, `match_only_text` by `text`).
//!
//! Pure: builds the JSON bodies; the setup that sends them comes with the client.

use serde_json::{Map, Value, json};

use crate::capabilities::Capabilities;
pub use crate::names::Stream;

/// Version of the templates this code writes (in `_meta`, so setup can tell whether to update).
pub const TEMPLATE_VERSION: u64 = 1;

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
    Boolean,
    /// A number or date the API passes through unchecked: a malformed value is kept in
    /// `_source` but not indexed, instead of the whole indicator being refused.
    LenientLong,
    LenientDate,
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

/// The `anomali.threatstream.*` fields of the webhook stream (spec section (f)).
fn threatstream_fields() -> Vec<(&'static str, Kind)> {
    use Kind::*;
    vec![
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
    ]
}

/// The `anomali.threatstream.*` fields of the intelligence stream, typed as the reference's
/// `intelligence` data stream. Fields the mapping checks (dates it computes, the id) are strict;
/// numbers and dates the API object passes through are lenient.
fn intelligence_fields() -> Vec<(&'static str, Kind)> {
    use Kind::*;
    vec![
        ("anomali.threatstream.can_add_public_tags", Boolean),
        ("anomali.threatstream.confidence", Long),
        ("anomali.threatstream.deletion_scheduled_at", Date),
        ("anomali.threatstream.expiration_ts", LenientDate),
        ("anomali.threatstream.feed_id", LenientLong),
        ("anomali.threatstream.id", Keyword),
        ("anomali.threatstream.import_session_id", LenientLong),
        ("anomali.threatstream.is_anonymous", Boolean),
        ("anomali.threatstream.is_editable", Boolean),
        ("anomali.threatstream.is_public", Boolean),
        ("anomali.threatstream.itype", Keyword),
        ("anomali.threatstream.meta.maltype", Keyword),
        ("anomali.threatstream.meta.registrant.address", Keyword),
        ("anomali.threatstream.meta.registrant.email", Keyword),
        ("anomali.threatstream.meta.registrant.name", Keyword),
        ("anomali.threatstream.meta.registrant.org", Keyword),
        ("anomali.threatstream.meta.registrant.phone", Keyword),
        (
            "anomali.threatstream.meta.registration_created",
            LenientDate,
        ),
        (
            "anomali.threatstream.meta.registration_updated",
            LenientDate,
        ),
        ("anomali.threatstream.meta.severity", Keyword),
        ("anomali.threatstream.owner_organization_id", LenientLong),
        ("anomali.threatstream.rdns", Keyword),
        ("anomali.threatstream.retina_confidence", LenientLong),
        ("anomali.threatstream.source_created", LenientDate),
        ("anomali.threatstream.source_modified", LenientDate),
        (
            "anomali.threatstream.source_reported_confidence",
            LenientLong,
        ),
        ("anomali.threatstream.status", Keyword),
        ("anomali.threatstream.threat_type", Keyword),
        ("anomali.threatstream.threatscore", Keyword),
        ("anomali.threatstream.trusted_circle_ids", LenientLong),
        ("anomali.threatstream.type", Keyword),
        ("anomali.threatstream.update_id", LenientLong),
        ("anomali.threatstream.uuid", Keyword),
        ("anomali.threatstream.value", Keyword),
    ]
}

fn fields(stream: Stream, target: Target) -> Vec<(&'static str, Kind)> {
    use Kind::*;
    let namespace = match target {
        Target::Source => Constant(None),
        Target::Latest => Keyword,
    };
    let source_label = match target {
        Target::Source => Constant(Some("true")),
        Target::Latest => Constant(Some("false")),
    };
    let mut fields = vec![
        ("@timestamp", Date),
        ("agent.id", Keyword),
        ("agent.name", Keyword),
        ("agent.type", Keyword),
        ("agent.version", Keyword),
        ("data_stream.dataset", Constant(Some(stream.dataset()))),
        ("data_stream.namespace", namespace),
        ("data_stream.type", Constant(Some("logs"))),
        ("ecs.version", Keyword),
        ("error.message", MatchOnlyText),
        ("event.category", Keyword),
        ("event.created", Date),
        ("event.dataset", Constant(Some(stream.dataset()))),
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
    ];
    fields.extend(match stream {
        Stream::Threatstream => threatstream_fields(),
        Stream::Intelligence => intelligence_fields(),
    });
    fields
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
        Kind::Boolean => json!({"type": "boolean"}),
        Kind::LenientLong => json!({"type": "long", "ignore_malformed": true}),
        Kind::LenientDate => json!({"type": "date", "ignore_malformed": true}),
    }
}

/// The `mappings` body of `stream` for `target` on a cluster with `capabilities`.
pub fn mappings(stream: Stream, target: Target, capabilities: Capabilities) -> Value {
    let mut root = Map::new();
    for (path, kind) in fields(stream, target) {
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

/// The index template of `stream`'s source data streams (`logs-ti_anomali.<stream>-*`).
pub fn source_index_template(stream: Stream, capabilities: Capabilities) -> Value {
    let mut settings = json!({"index": {"mapping": {"total_fields": {"limit": 2000}}}});
    if capabilities.ilm {
        settings["index"]["lifecycle"] = json!({"name": stream.source_policy()});
    }
    json!({
        "index_patterns": [format!("{}-*", stream.source_template())],
        "data_stream": {},
        "priority": 200,
        "template": {"settings": settings, "mappings": mappings(stream, Target::Source, capabilities)},
        "_meta": {"managed_by": "ti-anomali", "version": TEMPLATE_VERSION},
    })
}

/// The body that creates `stream`'s latest index with its alias.
pub fn latest_index(stream: Stream, capabilities: Capabilities) -> Value {
    json!({
        "settings": {"index": {"mapping": {"total_fields": {"limit": 2000}}}},
        "mappings": mappings(stream, Target::Latest, capabilities),
        "aliases": {stream.latest_alias(): {"is_write_index": true}},
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
        let latest = mappings(Stream::Threatstream, Target::Latest, Capabilities::FULL);
        let properties = &latest["properties"];
        assert_eq!(
            properties["data_stream"]["properties"]["namespace"]["type"],
            "keyword"
        );
        assert_eq!(
            properties["labels"]["properties"]["is_ioc_transform_source"]["value"],
            "false"
        );
        let source = mappings(Stream::Threatstream, Target::Source, Capabilities::FULL);
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
        let text = source_index_template(Stream::Threatstream, Capabilities::MINIMAL).to_string();
        for missing in [
            "constant_keyword",
            "\"wildcard\"",
            "match_only_text",
            "lifecycle",
        ] {
            assert!(!text.contains(missing), "{missing} in {text}");
        }
        let full = source_index_template(Stream::Threatstream, Capabilities::FULL).to_string();
        for present in [
            "constant_keyword",
            "\"wildcard\"",
            "match_only_text",
            Stream::Threatstream.source_policy(),
        ] {
            assert!(full.contains(present), "{present} missing");
        }
    }
}
