//! [`map_intelligence`]: one object of the ThreatStream Intelligence API
//! (`GET /api/v2/intelligence/`, the `objects` array) to one ECS document, rule by rule like the
//! ingest pipeline of the reference `intelligence` data stream (dataset
//! [`EcsDocument::INTELLIGENCE_DATASET`]).
//!
//! - Input: the API object as a JSON map. It is open-ended (the API adds fields, `meta` holds
//!   whatever the source sent), so it is not forced into a struct: known keys are taken out, the
//!   rest reaches `anomali.threatstream` as it arrived, pruned of nulls and empties.
//! - Output: like [`crate::map_indicator`], a document that is never a panic and never a failure
//!   as a whole; a field that cannot be mapped adds to `error.message`, sets
//!   `event.kind: pipeline_error` and the tag `preserve_original_event`.
//! - How it differs from the threatstream mapping (as the reference does): `@timestamp` is the
//!   receive time; `event.created` is `created_ts`; `threat.indicator.modified_at` is
//!   `modified_ts`; `anomali.threatstream.deletion_scheduled_at` is the earlier of the receive
//!   time plus the configured duration and `expiration_ts`; the itype table is larger and an
//!   itype without a type is an error; `threat.indicator.name` is `value`; TLP is one label from
//!   `tlp` (upper-cased), else `AMBER`/`WHITE` from `is_public`; hashes go by `subtype`; tags come
//!   from `tags[].name`; severity from `meta.severity`. No GeoIP and no `related.*`.
//! - Deliberate differences from the reference are marked `deviation:` below.

use anomali_model::{EcsDocument, Tlp, pruned};
use serde_json::{Map, Value};

use crate::dates::format_timestamp;
use crate::intelligence_itype::intelligence_indicator_type;
use crate::map::{
    PRESERVE_TAG, Received, Run, parse_ip, present, quote, quote_str, scalar_text, severity_score,
};
use crate::settings::MappingSettings;
use crate::url_parts::parse_url;

/// Fields the reference removes as internal, repeated elsewhere or undocumented.
const DROPPED: &[&str] = &[
    "created_by",
    "description",
    "locations",
    "modified_ts",
    "resource_uri",
    "sort",
    "source_locations",
    "target_industry",
    "threatscore",
    "workgroups",
];

/// `meta.registrant_<part>` becomes `meta.registrant.<part>`.
const REGISTRANT_PARTS: &[&str] = &["address", "email", "name", "org", "phone"];

/// Maps one Intelligence API object to one ECS document. Never fails as a whole.
pub fn map_intelligence(
    mut object: Map<String, Value>,
    received: &Received<'_>,
    settings: &MappingSettings,
) -> EcsDocument {
    let empty = object.is_empty();
    let mut take = |key: &str| object.remove(key);
    let created_ts = take("created_ts");
    let modified_ts = take("modified_ts");
    let expiration_ts = take("expiration_ts");
    let itype = take("itype");
    let ip = take("ip");
    let latitude = take("latitude");
    let longitude = take("longitude");
    let tlp = take("tlp");
    let is_public = take("is_public");
    let confidence = take("confidence");
    let asn = take("asn");
    let org = take("org");
    let country = take("country");
    let value = take("value");
    let value_kind = take("type");
    let subtype = take("subtype");
    let source = take("source");
    let tags = take("tags");
    let id = take("id");
    let update_id = take("update_id");
    let import_session_id = take("import_session_id");
    let trusted_circle_ids = take("trusted_circle_ids");
    let meta = take("meta");
    // Ours is computed below; a key of that name from the API would be a second one.
    take("deletion_scheduled_at");
    for key in DROPPED {
        object.remove(*key);
    }

    let mut document = EcsDocument::default();
    let mut run = Run {
        doc: &mut document,
        errors: Vec::new(),
    };
    let doc = &mut *run.doc;
    doc.event.category = &["threat"];
    doc.event.kind = "enrichment";
    doc.event.kind_of_event = &["indicator"];
    doc.tags.reserve(settings.tags.len() + 4);
    if settings.preserve_original_event {
        doc.tags.push(PRESERVE_TAG.to_owned());
        doc.event.original = received.original.map(str::to_owned);
    }
    doc.tags
        .extend(settings.tags.iter().filter(|t| !t.is_empty()).cloned());

    // @timestamp is the receive time (the reference: ingest time); created_ts, modified_ts.
    // deviation: created_ts is parsed and normalised like every other date; the reference copies
    // it as it came, and Elasticsearch rejects the whole document when it is not a date.
    run.doc.timestamp = format_timestamp(received.at);
    run.doc.event.created = run.date("created_ts", &created_ts).map(|(_, t)| t);
    run.doc.threat.indicator.modified_at = run.date("modified_ts", &modified_ts).map(|(_, t)| t);

    // deletion_scheduled_at: the earlier of now + duration and the feed's expiration_ts.
    // deviation: a zone-less or unreadable expiration_ts is not a failure of the whole document
    // (the reference's ZonedDateTime.parse throws): zone-less is UTC, unreadable is an error and
    // the configured duration alone decides. Without a configured duration, expiration_ts alone
    // decides (the reference always has one: the setting is required there).
    let expires = run.date("expiration_ts", &expiration_ts);
    if let Some((_, text)) = &expires {
        object.insert("expiration_ts".to_owned(), Value::String(text.to_string()));
    }
    let configured = settings
        .ioc_expiration
        .and_then(|expiration| expiration.deleted_at(received.at));
    let deletion = match (configured, expires.map(|(time, _)| time)) {
        (Some(configured), Some(expires)) => Some(configured.min(expires)),
        (configured, expires) => configured.or(expires),
    };
    run.doc.anomali.threatstream.deletion_scheduled_at = deletion.map(format_timestamp);

    // itype -> type; an itype without a type is an error (the reference's message).
    let itype_text = match present(&itype) {
        Some(Value::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let mut kind = match (present(&itype), itype_text) {
        (_, Some(text)) => match intelligence_indicator_type(text) {
            Ok(kind) => Some(kind),
            Err(error) => {
                run.errors.push(format!(
                    "Unable to determine STIX 2.0 indicator type from itype \"{}\": {error}",
                    quote_str(text)
                ));
                None
            }
        },
        (None, _) => {
            run.errors.push(
                "Unable to determine STIX 2.0 indicator type from itype \"\": no itype".to_owned(),
            );
            None
        }
        (Some(other), None) => {
            run.errors.push(format!(
                "Unable to determine STIX 2.0 indicator type from itype \"{}\": itype is not a string",
                quote(other)
            ));
            None
        }
    };
    // An ipv4-addr whose ip has a colon is IPv6 (the API files some IPv6 under ipv4 itypes).
    if kind == Some("ipv4-addr")
        && matches!(present(&ip), Some(Value::String(text)) if text.contains(':'))
    {
        kind = Some("ipv6-addr");
    }
    run.doc.threat.indicator.indicator_type = kind;
    run.doc.threat.indicator.name = present(&value).and_then(scalar_text);

    // The feed's location, when both coordinates are there.
    if let (Some(lat), Some(lon)) = (present(&latitude), present(&longitude)) {
        let lat = run.coordinate("latitude", lat, 90.0);
        let lon = run.coordinate("longitude", lon, 180.0);
        if let (Some(lat), Some(lon)) = (lat, lon) {
            run.doc.threat.indicator.geo.location = Some(anomali_model::GeoLocation { lat, lon });
        }
    }

    // TLP: the feed's label, upper-cased; else AMBER for private, WHITE for public.
    let label = match present(&tlp) {
        None => None,
        Some(Value::String(text)) => Some(text.to_uppercase()),
        Some(other) => {
            run.processor_error(
                "uppercase",
                "tlp",
                &format!("[{}] is not a string", quote(other)),
            );
            None
        }
    };
    let public = read_is_public(&mut run, is_public);
    if let Some(public) = public {
        object.insert("is_public".to_owned(), Value::Bool(public));
    }
    let label = label.unwrap_or_else(|| {
        // deviation: a missing is_public is private (the API's documented default); the
        // reference's `!ctx.json.is_public` fails the whole document on a missing value.
        if public == Some(true) {
            "WHITE"
        } else {
            "AMBER"
        }
        .to_owned()
    });
    run.doc.threat.indicator.marking.tlp = Tlp::Label(label);

    // Confidence buckets; the raw number stays.
    // deviation: a non-numeric confidence is an error on this field (the reference's script
    // throws and fails the whole document).
    let confidence = run.confidence(&confidence);

    // AS, country, IP.
    run.doc.threat.indicator.autonomous_system.number = run.as_number(&asn);
    run.doc.threat.indicator.autonomous_system.organization.name = run.text("org", org);
    run.doc.threat.indicator.geo.country_iso_code = run.text("country", country);
    // deviation: the IP is validated; the reference renames it unchecked into an ip-typed field,
    // where a bad value makes Elasticsearch reject the whole document.
    match present(&ip) {
        None => {}
        Some(Value::String(text)) if parse_ip(text).is_ok() => {
            run.doc.threat.indicator.ip = Some(text.clone());
        }
        Some(other) => run.processor_error(
            "convert",
            "ip",
            &format!("'{}' is not an IP string literal.", quote(other)),
        ),
    }

    // The value by the API's `type`: e-mail, domain, URL, hash.
    let value_kind_text = match present(&value_kind) {
        Some(Value::String(text)) => Some(text.as_str()),
        _ => None,
    };
    if let Some(text) = present(&value).and_then(scalar_text) {
        let indicator = &mut run.doc.threat.indicator;
        match value_kind_text {
            Some("email") => indicator.email.address = Some(text.clone()),
            Some("domain") => indicator.url.domain = Some(text.clone()),
            Some("url") => match parse_url(&text) {
                Ok(parts) => indicator.url = parts,
                Err(error) => run.errors.push(format!(
                    "Cannot parse url value [{}]: {error}",
                    quote_str(&text)
                )),
            },
            Some("md5") => {
                let hash = &mut indicator.file.hash;
                let subtype = match present(&subtype) {
                    Some(Value::String(name)) => Some(name.to_ascii_uppercase()),
                    _ => None,
                };
                // deviation: subtype is read in any case, and without one the length decides
                // (as in the threatstream stream); the reference sets no hash at all then.
                let slot = match subtype.as_deref() {
                    Some("MD5") => Some(&mut hash.md5),
                    Some("SHA1") => Some(&mut hash.sha1),
                    Some("SHA256") => Some(&mut hash.sha256),
                    Some("SHA512") => Some(&mut hash.sha512),
                    Some(_) => None,
                    None => match text.chars().count() {
                        32 => Some(&mut hash.md5),
                        40 => Some(&mut hash.sha1),
                        64 => Some(&mut hash.sha256),
                        128 => Some(&mut hash.sha512),
                        _ => None,
                    },
                };
                if let Some(slot) = slot {
                    *slot = Some(text.clone());
                }
            }
            _ => {}
        }
        // ssdeep and file names go by the itype's suffix.
        if let Some(itype) = itype_text {
            if itype.ends_with("_ssdeep") {
                indicator.file.hash.ssdeep = Some(text.clone());
            }
            if itype.ends_with("_file_name") {
                indicator.file.path = Some(text);
            }
        }
    }
    // The value, its type and the itype also stay under anomali.threatstream.
    if let Some(value) = value {
        object.insert("value".to_owned(), value);
    }
    if let Some(value_kind) = value_kind {
        object.insert("type".to_owned(), value_kind);
    }

    run.doc.threat.indicator.provider = run.text("source", source);

    // meta: severity, the registrant regrouped, detail and detail2 dropped.
    if let Some(meta) = meta {
        let meta = read_meta(&mut run, meta);
        if let Some(meta) = meta {
            object.insert("meta".to_owned(), meta);
        }
    }

    // tags[].name -> tags.
    read_tags(&mut run, tags);

    // Ids as strings (update_id arrives as a large number).
    let id = run.id_text("id", id);
    let update_id = run.id_text("update_id", update_id);
    let import_session_id = run.id_text("import_session_id", import_session_id);
    let itype = run.keyword("itype", itype);
    let trusted_circle_ids = run.keyword("trusted_circle_ids", trusted_circle_ids);

    let threatstream = &mut run.doc.anomali.threatstream;
    threatstream.confidence = confidence;
    threatstream.id = id;
    threatstream.import_session_id = import_session_id;
    threatstream.itype = itype;
    threatstream.trusted_circle_ids = trusted_circle_ids;
    threatstream.update_id = update_id;
    threatstream.unknown = object
        .into_iter()
        .filter_map(|(key, value)| pruned(value).map(|v| (key, v)))
        .collect();

    if empty {
        run.errors
            .push("the intelligence object is empty: no field to map".to_owned());
    }
    run.finish();
    document
}

/// `is_public` as a boolean: `Some` when readable, `None` when missing (or unreadable, an error).
fn read_is_public(run: &mut Run, value: Option<Value>) -> Option<bool> {
    match present(&value)? {
        Value::Bool(flag) => Some(*flag),
        // The API documents 0/False and 1/True.
        Value::Number(number) if number.as_u64() == Some(0) => Some(false),
        Value::Number(number) if number.as_u64() == Some(1) => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        other => {
            run.processor_error(
                "set",
                "is_public",
                &format!(
                    "[{}] is not a boolean; the indicator is taken as private",
                    quote(other)
                ),
            );
            None
        }
    }
}

/// `meta`: `severity` gives `event.severity`; `registrant_*` are regrouped under `registrant`;
/// `detail` and `detail2` are dropped (the reference's choice). The rest stays.
fn read_meta(run: &mut Run, meta: Value) -> Option<Value> {
    let Value::Object(mut meta) = meta else {
        return pruned(meta);
    };
    if let Some(Value::String(severity)) = meta.get("severity") {
        run.doc.event.severity = severity_score(severity);
    }
    meta.remove("detail");
    meta.remove("detail2");
    let mut registrant = match meta.remove("registrant") {
        Some(Value::Object(existing)) => existing,
        Some(other) => {
            // Not an object: kept beside the regrouped parts rather than lost.
            let mut kept = Map::new();
            kept.insert("value".to_owned(), other);
            kept
        }
        None => Map::new(),
    };
    for part in REGISTRANT_PARTS {
        if let Some(value) = meta.remove(&format!("registrant_{part}")) {
            registrant.insert((*part).to_owned(), value);
        }
    }
    if !registrant.is_empty() {
        meta.insert("registrant".to_owned(), Value::Object(registrant));
    }
    pruned(Value::Object(meta))
}

/// `tags`: an array of objects; each `name` is appended to `tags`, the rest (`id`, `org_id`,
/// `tlp`) is dropped, as the reference does.
fn read_tags(run: &mut Run, tags: Option<Value>) {
    match tags {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item.get("name").and_then(scalar_text) {
                    Some(name) => run.doc.tags.push(name),
                    None => run
                        .errors
                        .push(format!("Found a tag without a name [{}]", quote(&item))),
                }
            }
        }
        Some(other) => run.errors.push(format!(
            "Found tags that are not a list [{}]",
            quote(&other)
        )),
    }
}
