//! [`map_indicator`]: the rules of the reference pipeline, in its order.

use std::net::IpAddr;

use anomali_model::{EcsDocument, Indicator, Timestamp, Tlp, pruned};
use chrono::{DateTime, Utc};
use serde_json::{Number, Value};

use crate::dates::{format_timestamp, normalise};
use crate::itype::indicator_type;
use crate::settings::MappingSettings;
use crate::url_parts::parse_url;

/// The pipeline name used in error messages, in the reference's message format.
const PIPELINE: &str = "ti-anomali";
/// The tag that marks documents whose original event is kept or that failed a rule.
pub(crate) const PRESERVE_TAG: &str = "preserve_original_event";
/// Longest piece of a bad value quoted in an error message.
const QUOTE_LIMIT: usize = 256;

/// What the input knew when it received the indicator.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// Receive time: `@timestamp` when the indicator has no `added_at` or `deleted_at`.
    pub at: DateTime<Utc>,
    /// The raw text of the indicator, for `event.original`.
    pub original: Option<&'a str>,
}

/// Maps one indicator to one ECS document. Never fails as a whole: see the crate docs.
pub fn map_indicator(
    indicator: Indicator,
    received: &Received<'_>,
    settings: &MappingSettings,
) -> EcsDocument {
    let empty = indicator.is_empty();
    let Indicator {
        added_at,
        asn,
        classification,
        confidence,
        country,
        date_first,
        date_last,
        deleted_at,
        detail,
        detail2,
        domain,
        email,
        id,
        import_session_id,
        itype,
        lat,
        lon,
        maltype,
        md5,
        org,
        resource_uri,
        severity,
        source,
        source_feed_id,
        srcip,
        state,
        trusted_circle_ids,
        update_id,
        url,
        value_type,
        unknown,
    } = indicator;
    let mut document = EcsDocument::default();
    let mut run = Run {
        doc: &mut document,
        errors: Vec::new(),
    };
    let doc = &mut *run.doc;

    doc.event.category = &["threat"];
    doc.event.kind = "enrichment";
    doc.event.kind_of_event = &["indicator"];
    doc.tags.reserve(settings.tags.len() + 6);
    if settings.preserve_original_event {
        doc.tags.push(PRESERVE_TAG.to_owned());
        doc.event.original = received.original.map(str::to_owned);
    }
    doc.tags
        .extend(settings.tags.iter().filter(|t| !t.is_empty()).cloned());

    // Rule 3: itype -> type. Rule 4: name from the raw value the type points at.
    let mut kind = match present(&itype) {
        None => None,
        Some(Value::String(itype)) => indicator_type(itype),
        Some(other) => {
            run.errors.push(format!(
                "Unable to determine indicator type from \"{}\": itype is not a string",
                quote(other)
            ));
            None
        }
    };
    let name_source = match kind {
        Some("ipv4-addr" | "ipv6-addr") => &srcip,
        Some("domain-name") => &domain,
        Some("url") => &url,
        Some("email-addr" | "email") => &email,
        Some("file") => &md5,
        _ => &None,
    };
    run.doc.threat.indicator.name = present(name_source).and_then(scalar_text);
    // Rule 5: an ipv4-addr whose srcip has a colon is IPv6.
    if kind == Some("ipv4-addr")
        && matches!(present(&srcip), Some(Value::String(ip)) if ip.contains(':'))
    {
        kind = Some("ipv6-addr");
    }
    run.doc.threat.indicator.indicator_type = kind;

    // Rules 6, 7 and 9: dates, the fail-safe deleted_at, @timestamp.
    let added = run.date("added_at", &added_at);
    let feed_deleted = run.date("deleted_at", &deleted_at);
    run.doc.timestamp = match (&added, &feed_deleted) {
        (Some((_, text)), _) | (None, Some((_, text))) => *text,
        (None, None) => format_timestamp(received.at),
    };
    let deleted = match (feed_deleted, settings.ioc_expiration) {
        (Some((_, text)), _) => Some(text),
        // deviation: the base is any readable added_at (`Z` and offsets too), else the receive
        // time, so every indicator gets the fail-safe, even one without a usable added_at.
        (None, Some(expiration)) => expiration
            .deleted_at(added.as_ref().map_or(received.at, |(time, _)| *time))
            .map(format_timestamp),
        (None, None) => None,
    };
    let threatstream = &mut run.doc.anomali.threatstream;
    threatstream.added_at = added.map(|(_, text)| text);
    threatstream.deleted_at = deleted;

    // Rule 8: first and last seen.
    run.doc.threat.indicator.first_seen = run.date("date_first", &date_first).map(|(_, t)| t);
    run.doc.threat.indicator.last_seen = run.date("date_last", &date_last).map(|(_, t)| t);

    // Rule 10: the feed's location, when both coordinates are there.
    if let (Some(lat), Some(lon)) = (present(&lat), present(&lon)) {
        let lat = run.coordinate("lat", lat, 90.0);
        let lon = run.coordinate("lon", lon, 180.0);
        if let (Some(lat), Some(lon)) = (lat, lon) {
            run.doc.threat.indicator.geo.location = Some(anomali_model::GeoLocation { lat, lon });
        }
    }

    // Rule 11: TLP from classification.
    if let Some(Value::String(class)) = present(&classification) {
        if class.eq_ignore_ascii_case("private") {
            run.doc.threat.indicator.marking.tlp = Tlp::Labels(&["AMBER"]);
        } else if class.eq_ignore_ascii_case("public") {
            run.doc.threat.indicator.marking.tlp = Tlp::Labels(&["WHITE"]);
        }
    }

    // Rule 12: confidence buckets.
    let confidence = run.confidence(&confidence);

    // Rule 13: AS number and organization.
    run.doc.threat.indicator.autonomous_system.number = run.as_number(&asn);
    run.doc.threat.indicator.autonomous_system.organization.name = run.text("org", org);

    // Rule 14: e-mail address.
    run.doc.threat.indicator.email.address = run.text("email", email);

    // Rule 15: the IP, validated; related.ip.
    let ip = match srcip {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.is_empty() => None,
        Some(Value::String(text)) => match parse_ip(&text) {
            Ok(ip) => {
                run.doc.related.ip.push(text.clone());
                run.doc.threat.indicator.ip = Some(text);
                Some(ip)
            }
            Err(_) => {
                run.processor_error(
                    "convert",
                    "srcip",
                    &format!("'{}' is not an IP string literal.", quote_str(&text)),
                );
                None
            }
        },
        Some(other) => {
            run.processor_error(
                "convert",
                "srcip",
                &format!("[{}] is not an IP string literal.", quote(&other)),
            );
            None
        }
    };

    // Rule 16: GeoIP replaces the feed's geo on a hit.
    if let (Some(geoip), Some(ip)) = (&settings.geoip, ip)
        && let Some(geo) = geoip.lookup(ip)
    {
        run.doc.threat.indicator.geo = geo;
    }

    // Rule 17: URL parts; on failure the raw URL stays under anomali.threatstream.
    if let Some(value) = present(&url) {
        match value {
            Value::String(text) => match parse_url(text) {
                Ok(parts) => run.doc.threat.indicator.url = parts,
                Err(error) => {
                    run.errors.push(format!(
                        "Cannot parse url field [{}]: {error}",
                        quote_str(text)
                    ));
                    run.doc.anomali.threatstream.url = pruned(value.clone());
                }
            },
            other => {
                run.errors.push(format!(
                    "Cannot parse url field [{}]: not a string",
                    quote(other)
                ));
                run.doc.anomali.threatstream.url = pruned(other.clone());
            }
        }
    }

    // Rules 18 and 21: domain -> url.domain unless the URL gave one; only an unmoved domain
    // reaches related.hosts (the reference appends after moving).
    if let Some(domain) = run.text("domain", domain) {
        if run.doc.threat.indicator.url.domain.is_none() {
            run.doc.threat.indicator.url.domain = Some(domain);
        } else {
            run.doc.related.hosts.push(domain.clone());
            run.doc.anomali.threatstream.domain = pruned(Value::String(domain));
        }
    }

    // Rule 19: the feed's country, unless GeoIP gave one.
    let country = run.text("country", country);
    let geo = &mut run.doc.threat.indicator.geo;
    if geo.country_iso_code.is_none() {
        geo.country_iso_code = country;
    }

    // Rules 20 and 21: hash by length (in characters); other lengths stay, and reach
    // related.hash.
    if let Some(md5) = run.text("md5", md5) {
        let hash = &mut run.doc.threat.indicator.file.hash;
        let slot = match md5.chars().count() {
            32 => Some(&mut hash.md5),
            40 => Some(&mut hash.sha1),
            64 => Some(&mut hash.sha256),
            128 => Some(&mut hash.sha512),
            _ => None,
        };
        match slot {
            Some(slot) => *slot = Some(md5),
            None => {
                run.doc.related.hash.push(md5.clone());
                run.doc.anomali.threatstream.md5 = pruned(Value::String(md5));
            }
        }
    }

    // Rule 22: provider. Rule 23: severity.
    run.doc.threat.indicator.provider = run.text("source", source);
    if let Some(Value::String(name)) = present(&severity) {
        run.doc.event.severity = severity_score(name);
    }

    // Rule 24: trusted circles, split on commas.
    let trusted_circle_ids = match trusted_circle_ids {
        Some(Value::String(text)) => {
            let ids: Vec<Value> = text
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(|id| Value::String(id.to_owned()))
                .collect();
            (!ids.is_empty()).then_some(Value::Array(ids))
        }
        other => other.and_then(pruned),
    };

    // Rule 25: detail -> tags, split on commas not escaped by a backslash.
    match present(&detail) {
        None => {}
        Some(Value::String(text)) => split_detail(text, &mut run.doc.tags),
        Some(other) => match scalar_text(other) {
            Some(text) => run.doc.tags.push(text),
            None => run.processor_error(
                "split",
                "detail",
                &format!("[{}] is not a string", quote(other)),
            ),
        },
    }

    // Rule 26: ids as strings.
    let id = run.id_text("id", id);
    let import_session_id = run.id_text("import_session_id", import_session_id);
    let source_feed_id = run.id_text("source_feed_id", source_feed_id);
    let update_id = run.id_text("update_id", update_id);

    // Rules 28 and 29: what is left goes to anomali.threatstream, pruned.
    let classification = run.keyword("classification", classification);
    let detail2 = run.keyword("detail2", detail2);
    let itype = run.keyword("itype", itype);
    let maltype = run.keyword("maltype", maltype);
    let resource_uri = run.keyword("resource_uri", resource_uri);
    let severity = run.keyword("severity", severity);
    let state = run.keyword("state", state);
    let value_type = run.keyword("value_type", value_type);
    let threatstream = &mut run.doc.anomali.threatstream;
    threatstream.classification = classification;
    threatstream.confidence = confidence;
    threatstream.detail2 = detail2;
    threatstream.id = id;
    threatstream.import_session_id = import_session_id;
    threatstream.itype = itype;
    threatstream.maltype = maltype;
    threatstream.resource_uri = resource_uri;
    threatstream.severity = severity;
    threatstream.source_feed_id = source_feed_id;
    threatstream.state = state;
    threatstream.trusted_circle_ids = trusted_circle_ids;
    threatstream.update_id = update_id;
    threatstream.value_type = value_type;
    threatstream.unknown = unknown
        .into_iter()
        .filter_map(|(key, value)| pruned(value).map(|v| (key, v)))
        .collect();

    // An object without a single field is not an indicator (the reference pipeline fails on a
    // document without `json`).
    if empty {
        run.errors
            .push("the indicator is an empty object: no field to map".to_owned());
    }

    // Rule 30: any error marks the document.
    run.finish();
    document
}

/// The document being built and the errors met so far.
///
/// The document is borrowed, not owned: it is built where the mapping function returns it from,
/// so its two kilobytes are not copied into a `Run` and out again.
pub(crate) struct Run<'d> {
    pub(crate) doc: &'d mut EcsDocument,
    pub(crate) errors: Vec<String>,
}

impl Run<'_> {
    pub(crate) fn processor_error(&mut self, processor: &str, field: &str, message: &str) {
        self.errors.push(format!(
            "Processor {processor} with tag {processor}-{field} in pipeline {PIPELINE} failed with message: {message}"
        ));
    }

    /// A date field, parsed; an unreadable one is an error and is dropped (deviation: the
    /// reference keeps it in a date-typed field, where Elasticsearch rejects the whole document).
    pub(crate) fn date(
        &mut self,
        field: &str,
        value: &Option<Value>,
    ) -> Option<(DateTime<Utc>, Timestamp)> {
        match present(value)? {
            Value::String(text) => match normalise(text) {
                Ok(parsed) => Some(parsed),
                Err(error) => {
                    self.processor_error("date", field, &quote_str(&error.to_string()));
                    None
                }
            },
            other => {
                self.processor_error(
                    "date",
                    field,
                    &format!("unable to parse date [{}]: not a string", quote(other)),
                );
                None
            }
        }
    }

    pub(crate) fn coordinate(&mut self, field: &str, value: &Value, limit: f64) -> Option<f64> {
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(text) => text.trim().parse::<f64>().ok(),
            _ => None,
        };
        match number.filter(|n| n.is_finite()) {
            Some(n) if n.abs() <= limit => Some(n),
            Some(_) => {
                self.processor_error(
                    "convert",
                    field,
                    &format!("[{}] is out of range (-{limit} to {limit})", quote(value)),
                );
                None
            }
            None => {
                self.processor_error(
                    "convert",
                    field,
                    &format!("unable to convert [{}] to double", quote(value)),
                );
                None
            }
        }
    }

    /// A field ECS holds as a keyword: strings as they are, numbers and booleans as text.
    pub(crate) fn text(&mut self, field: &str, value: Option<Value>) -> Option<String> {
        match value? {
            Value::Null => None,
            // Moved, not copied: the indicator is ours.
            Value::String(text) => (!text.is_empty()).then_some(text),
            other => {
                let text = scalar_text(&other);
                if text.is_none() {
                    self.processor_error(
                        "rename",
                        field,
                        &format!("[{}] is not a string", quote(&other)),
                    );
                }
                text
            }
        }
    }

    /// A field kept under anomali.threatstream that Elasticsearch maps as a keyword: scalars
    /// and arrays of scalars are kept (pruned); an object would make Elasticsearch reject the
    /// whole document, so it is an error and is dropped.
    pub(crate) fn keyword(&mut self, field: &str, value: Option<Value>) -> Option<Value> {
        let value = match value {
            // Nearly always a string, which needs no pruning (and is moved as it is: taking the
            // string out and wrapping it again costs a stalled copy).
            Some(Value::String(text)) if text.is_empty() => return None,
            string @ Some(Value::String(_)) => return string,
            other => pruned(other?)?,
        };
        let is_nested = |v: &Value| v.is_object() || v.is_array();
        let nested = match &value {
            Value::Object(_) => true,
            Value::Array(items) => items.iter().any(is_nested),
            _ => false,
        };
        if nested {
            self.processor_error(
                "set",
                field,
                &format!("[{}] is not a keyword value", quote(&value)),
            );
            return None;
        }
        Some(value)
    }

    /// Rule 13: an AS number (a number or a string holding one, 0 to 2^32-1).
    pub(crate) fn as_number(&mut self, value: &Option<Value>) -> Option<i64> {
        let value = present(value)?;
        let number = match value {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            Value::String(text) => text.trim().parse::<u64>().ok(),
            _ => None,
        };
        match number.filter(|n| *n <= u64::from(u32::MAX)) {
            Some(number) => Some(number as i64),
            None => {
                self.errors.push(format!(
                    "Cannot convert asn field [{}]: not an AS number (0 to 4294967295)",
                    quote(value)
                ));
                None
            }
        }
    }

    /// `threat.indicator.confidence` bucketed from a numeric confidence, which is returned to
    /// be kept raw; a non-number is an error on the document and is dropped.
    pub(crate) fn confidence(&mut self, value: &Option<Value>) -> Option<Value> {
        let value = present(value)?;
        match number_of(value) {
            Some(number) => {
                self.doc.threat.indicator.confidence = Some(confidence_bucket(&number));
                Some(Value::Number(number))
            }
            None => {
                self.errors.push(format!(
                    "failed to normalize confidence value [{}]: not a number",
                    quote(value)
                ));
                None
            }
        }
    }

    /// Rule 30: any error marks the document; empty tags go.
    pub(crate) fn finish(self) {
        let Run { doc, errors } = self;
        if !errors.is_empty() {
            doc.event.kind = "pipeline_error";
            if !doc.tags.iter().any(|t| t == PRESERVE_TAG) {
                doc.tags.push(PRESERVE_TAG.to_owned());
            }
            doc.error.message = errors;
        }
        doc.tags.retain(|t| !t.is_empty());
    }

    /// Rule 26: an id as a string.
    pub(crate) fn id_text(&mut self, field: &str, value: Option<Value>) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(text) => (!text.is_empty()).then_some(text),
            Value::Number(number) => Some(number_text(&number)),
            other => {
                self.processor_error(
                    "convert",
                    field,
                    &format!("[{}] is not an id (a string or a number)", quote(&other)),
                );
                None
            }
        }
    }
}

/// An IP address; an IPv6 zone (`fe80::1%eth0`) is allowed, as Elasticsearch allows it.
pub(crate) fn parse_ip(text: &str) -> Result<IpAddr, std::net::AddrParseError> {
    match text.split_once('%') {
        Some((address, zone)) if !zone.is_empty() && !zone.contains(['%', '/', ' ']) => {
            address.parse::<std::net::Ipv6Addr>().map(IpAddr::V6)
        }
        _ => text.parse::<IpAddr>(),
    }
}

/// The value, unless it is missing, null or an empty string.
pub(crate) fn present(value: &Option<Value>) -> Option<&Value> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.is_empty() => None,
        Some(value) => Some(value),
    }
}

/// A JSON number as text; integers without the formatting machinery (ids are on the hot path).
pub(crate) fn number_text(number: &Number) -> String {
    if let Some(unsigned) = number.as_u64() {
        itoa::Buffer::new().format(unsigned).to_owned()
    } else if let Some(signed) = number.as_i64() {
        itoa::Buffer::new().format(signed).to_owned()
    } else {
        number.to_string()
    }
}

pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number_text(number)),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A number, or a string holding one.
fn number_of(value: &Value) -> Option<Number> {
    match value {
        Value::Number(number) => Some(number.clone()),
        Value::String(text) => {
            let text = text.trim();
            if let Ok(integer) = text.parse::<i64>() {
                Some(Number::from(integer))
            } else {
                text.parse::<f64>().ok().and_then(Number::from_f64)
            }
        }
        _ => None,
    }
}

/// Rule 12. deviation: half-open buckets, so 29.5 is Low and 69.5 Medium (the reference's
/// integer ranges leave such values without a bucket).
fn confidence_bucket(number: &Number) -> &'static str {
    let value = number.as_f64().unwrap_or(0.0);
    if value <= 0.0 || value > 100.0 {
        "None"
    } else if value < 30.0 {
        "Low"
    } else if value < 70.0 {
        "Medium"
    } else {
        "High"
    }
}

/// Rule 23, on the 3/5/7/9 scale of the reference pipeline.
pub(crate) fn severity_score(name: &str) -> Option<i64> {
    const SCORES: [(&str, i64); 4] = [("low", 3), ("medium", 5), ("high", 7), ("very-high", 9)];
    SCORES
        .iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map(|&(_, score)| score)
}

/// Rule 25: splits on commas not preceded by a backslash. deviation: the escaping backslash is
/// removed (`a\,b` is the tag `a,b`; the reference keeps `a\,b`).
fn split_detail(text: &str, tags: &mut Vec<String>) {
    if !text.contains('\\') {
        tags.extend(
            text.split(',')
                .filter(|piece| !piece.is_empty())
                .map(str::to_owned),
        );
        return;
    }
    let mut current = String::new();
    let mut rest = text.split(',').peekable();
    while let Some(piece) = rest.next() {
        // A piece ending in a backslash escaped the comma that ended it (the last piece has no
        // comma after it, so its backslash is text).
        let escaped = if rest.peek().is_some() {
            piece.strip_suffix('\\')
        } else {
            None
        };
        match escaped {
            Some(escaped) => {
                current.push_str(escaped);
                current.push(',');
            }
            None => {
                current.push_str(piece);
                if !current.is_empty() {
                    tags.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        tags.push(current);
    }
}

pub(crate) fn quote(value: &Value) -> String {
    match value {
        Value::String(text) => quote_str(text),
        other => quote_str(&other.to_string()),
    }
}

pub(crate) fn quote_str(text: &str) -> String {
    if text.len() <= QUOTE_LIMIT {
        return text.to_owned();
    }
    let mut end = QUOTE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::split_detail;

    fn split(text: &str) -> Vec<String> {
        let mut tags = Vec::new();
        split_detail(text, &mut tags);
        tags
    }

    #[test]
    fn detail_splitting() {
        assert_eq!(split("a,b,,a"), ["a", "b", "a"]);
        assert_eq!(split(r"a\,b,c"), ["a,b", "c"]);
        assert_eq!(split(r"a\\,b"), [r"a\,b"]);
        assert_eq!(split(r"abc\"), [r"abc\"]);
        assert_eq!(split(r"\,"), [","]);
        assert_eq!(split(r",\,,"), [","]);
        assert_eq!(split(r"x\y,z"), [r"x\y", "z"]);
        assert!(split(",,,").is_empty());
        assert!(split("").is_empty());
    }
}
