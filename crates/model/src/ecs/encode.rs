//! [`EcsDocument::write_json`]: the document as compact JSON, written field by field.
//!
//! Byte for byte what `serde_json` writes from the derived `Serialize` (same key order, same
//! skipping of empty parts); a test holds the two together. It exists because serializing was
//! a third of the mapping cost: here the fixed parts of the document are single copies of
//! pre-quoted text, and only values are escaped.

use serde_json::{Map, Number, Value};

use super::{
    AnomaliFields, AsFields, EcsDocument, EventFields, FileHash, GeoFields, IndicatorFields,
    RelatedFields, ThreatstreamFields, Tlp, UrlFields, is_absent,
};
use crate::Timestamp;
use crate::json::{write_escaped, write_json};

/// An object being written: whether the next member needs a comma.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// Writes the member name: `quoted` is the name with its quotes and colon, `"name":`.
    #[inline]
    fn key(&mut self, quoted: &str) -> &mut Vec<u8> {
        if self.first {
            self.first = false;
        } else {
            self.out.push(b',');
        }
        self.out.extend_from_slice(quoted.as_bytes());
        self.out
    }

    #[inline]
    fn text(&mut self, quoted: &str, value: &Option<String>) {
        if let Some(text) = value.as_deref().filter(|t| !t.is_empty()) {
            write_escaped(self.key(quoted), text);
        }
    }

    #[inline]
    fn time(&mut self, quoted: &str, value: &Option<Timestamp>) {
        if let Some(time) = value {
            // A timestamp is digits and separators: nothing to escape.
            let out = self.key(quoted);
            out.push(b'"');
            out.extend_from_slice(time.as_bytes());
            out.push(b'"');
        }
    }

    fn value(&mut self, quoted: &str, value: &Option<Value>) {
        if let Some(value) = value {
            write_value(self.key(quoted), value);
        }
    }

    fn strings(&mut self, quoted: &str, values: &[String]) {
        if !values.is_empty() {
            write_strings(self.key(quoted), values.iter().map(String::as_str));
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn write_strings<'s>(out: &mut Vec<u8>, values: impl Iterator<Item = &'s str>) {
    out.push(b'[');
    for (index, value) in values.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_escaped(out, value);
    }
    out.push(b']');
}

/// A value kept as it arrived, without the generic serializer: strings, integers, arrays (such as
/// `trusted_circle_ids`) and objects are written here, as serde_json writes them.
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::String(text) => write_escaped(out, text),
        Value::Number(number) => write_number(out, number),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(fields) => {
            out.push(b'{');
            for (index, (key, item)) in fields.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_escaped(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Integers with itoa, as serde_json writes them; floats by serde_json itself, so their format
/// is its own.
fn write_number(out: &mut Vec<u8>, number: &Number) {
    if let Some(unsigned) = number.as_u64() {
        out.extend_from_slice(itoa::Buffer::new().format(unsigned).as_bytes());
    } else if let Some(signed) = number.as_i64() {
        out.extend_from_slice(itoa::Buffer::new().format(signed).as_bytes());
    } else {
        // A Number always serializes.
        let _ = write_json(out, number);
    }
}

impl EcsDocument {
    /// Appends the document to `out` as one line of compact JSON (no newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(1536);
        let mut doc = Object::open(out);
        let out = doc.key("\"@timestamp\":\"");
        out.extend_from_slice(self.timestamp.as_bytes());
        out.push(b'"');
        if let Some(agent) = &self.agent {
            let mut o = Object::open(doc.key("\"agent\":"));
            write_escaped(o.key("\"id\":"), &agent.id);
            write_escaped(o.key("\"name\":"), &agent.name);
            write_escaped(o.key("\"type\":"), agent.agent_type);
            write_escaped(o.key("\"version\":"), agent.version);
            o.close();
        }
        if !self.anomali.is_empty() {
            write_anomali(doc.key("\"anomali\":"), &self.anomali);
        }
        if let Some(stream) = &self.data_stream {
            let mut o = Object::open(doc.key("\"data_stream\":"));
            write_escaped(o.key("\"dataset\":"), stream.dataset);
            write_escaped(o.key("\"namespace\":"), &stream.namespace);
            write_escaped(o.key("\"type\":"), stream.stream_type);
            o.close();
        }
        doc.key("\"ecs\":{\"version\":");
        write_escaped(doc.out, self.ecs.version);
        doc.out.push(b'}');
        if !self.error.is_empty() {
            let mut error = Object::open(doc.key("\"error\":"));
            error.strings("\"message\":", &self.error.message);
            error.close();
        }
        write_event(doc.key("\"event\":"), &self.event);
        if let Some(input) = &self.input {
            doc.key("\"input\":{\"type\":");
            write_escaped(doc.out, input.input_type);
            doc.out.push(b'}');
        }
        if let Some(label) = self.labels.is_ioc_transform_source {
            doc.key("\"labels\":{\"is_ioc_transform_source\":");
            write_escaped(doc.out, label);
            doc.out.push(b'}');
        }
        if !self.related.is_empty() {
            write_related(doc.key("\"related\":"), &self.related);
        }
        doc.strings("\"tags\":", &self.tags);
        if !self.threat.is_empty() {
            let mut threat = Object::open(doc.key("\"threat\":"));
            if let Some(feed) = &self.threat.feed {
                let mut o = Object::open(threat.key("\"feed\":"));
                write_escaped(o.key("\"dashboard_id\":"), feed.dashboard_id);
                write_escaped(o.key("\"name\":"), feed.name);
                o.close();
            }
            write_indicator(threat.key("\"indicator\":"), &self.threat.indicator);
            threat.close();
        }
        doc.close();
    }
}

fn write_anomali(out: &mut Vec<u8>, anomali: &AnomaliFields) {
    let mut outer = Object::open(out);
    write_threatstream(outer.key("\"threatstream\":"), &anomali.threatstream);
    outer.close();
}

fn write_threatstream(out: &mut Vec<u8>, ts: &ThreatstreamFields) {
    let mut o = Object::open(out);
    o.time("\"added_at\":", &ts.added_at);
    o.value("\"classification\":", &ts.classification);
    o.value("\"confidence\":", &ts.confidence);
    o.time("\"deleted_at\":", &ts.deleted_at);
    o.time("\"deletion_scheduled_at\":", &ts.deletion_scheduled_at);
    o.value("\"detail2\":", &ts.detail2);
    o.value("\"domain\":", &ts.domain);
    o.text("\"id\":", &ts.id);
    o.text("\"import_session_id\":", &ts.import_session_id);
    o.value("\"itype\":", &ts.itype);
    o.value("\"maltype\":", &ts.maltype);
    o.value("\"md5\":", &ts.md5);
    o.value("\"resource_uri\":", &ts.resource_uri);
    o.value("\"severity\":", &ts.severity);
    o.text("\"source_feed_id\":", &ts.source_feed_id);
    o.value("\"state\":", &ts.state);
    o.value("\"trusted_circle_ids\":", &ts.trusted_circle_ids);
    o.text("\"update_id\":", &ts.update_id);
    o.value("\"url\":", &ts.url);
    o.value("\"value_type\":", &ts.value_type);
    write_unknown(&mut o, &ts.unknown);
    o.close();
}

/// Unknown fields follow the known ones, as `#[serde(flatten)]` writes them.
fn write_unknown(o: &mut Object<'_>, unknown: &Map<String, Value>) {
    for (key, value) in unknown {
        if o.first {
            o.first = false;
        } else {
            o.out.push(b',');
        }
        write_escaped(o.out, key);
        o.out.push(b':');
        write_value(o.out, value);
    }
}

fn write_event(out: &mut Vec<u8>, event: &EventFields) {
    let mut o = Object::open(out);
    write_strings(o.key("\"category\":"), event.category.iter().copied());
    o.time("\"created\":", &event.created);
    if let Some(dataset) = event.dataset {
        write_escaped(o.key("\"dataset\":"), dataset);
    }
    o.time("\"ingested\":", &event.ingested);
    write_escaped(o.key("\"kind\":"), event.kind);
    if let Some(module) = event.module {
        write_escaped(o.key("\"module\":"), module);
    }
    o.text("\"original\":", &event.original);
    if let Some(severity) = event.severity {
        o.key("\"severity\":")
            .extend_from_slice(itoa::Buffer::new().format(severity).as_bytes());
    }
    write_strings(o.key("\"type\":"), event.kind_of_event.iter().copied());
    o.close();
}

fn write_related(out: &mut Vec<u8>, related: &RelatedFields) {
    let mut o = Object::open(out);
    o.strings("\"hash\":", &related.hash);
    o.strings("\"hosts\":", &related.hosts);
    o.strings("\"ip\":", &related.ip);
    o.strings("\"user\":", &related.user);
    o.close();
}

fn write_indicator(out: &mut Vec<u8>, indicator: &IndicatorFields) {
    let mut o = Object::open(out);
    if !indicator.autonomous_system.is_empty() {
        write_as(o.key("\"as\":"), &indicator.autonomous_system);
    }
    if let Some(confidence) = indicator.confidence {
        write_escaped(o.key("\"confidence\":"), confidence);
    }
    if !indicator.email.is_empty() {
        let mut email = Object::open(o.key("\"email\":"));
        email.text("\"address\":", &indicator.email.address);
        email.close();
    }
    if !indicator.file.is_empty() {
        let mut file = Object::open(o.key("\"file\":"));
        if !indicator.file.hash.is_empty() {
            write_hash(file.key("\"hash\":"), &indicator.file.hash);
        }
        file.text("\"path\":", &indicator.file.path);
        file.close();
    }
    o.time("\"first_seen\":", &indicator.first_seen);
    if !indicator.geo.is_empty() {
        write_geo(o.key("\"geo\":"), &indicator.geo);
    }
    o.text("\"ip\":", &indicator.ip);
    o.time("\"last_seen\":", &indicator.last_seen);
    if !indicator.marking.is_empty() {
        let mut marking = Object::open(o.key("\"marking\":"));
        match &indicator.marking.tlp {
            Tlp::Labels(labels) => write_strings(marking.key("\"tlp\":"), labels.iter().copied()),
            Tlp::Label(label) => write_escaped(marking.key("\"tlp\":"), label),
        }
        marking.close();
    }
    o.time("\"modified_at\":", &indicator.modified_at);
    o.text("\"name\":", &indicator.name);
    o.text("\"provider\":", &indicator.provider);
    if let Some(kind) = indicator.indicator_type {
        write_escaped(o.key("\"type\":"), kind);
    }
    if !indicator.url.is_empty() {
        write_url(o.key("\"url\":"), &indicator.url);
    }
    o.close();
}

fn write_as(out: &mut Vec<u8>, fields: &AsFields) {
    let mut o = Object::open(out);
    if let Some(number) = fields.number {
        o.key("\"number\":")
            .extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
    }
    if !is_absent(&fields.organization.name) {
        let mut organization = Object::open(o.key("\"organization\":"));
        organization.text("\"name\":", &fields.organization.name);
        organization.close();
    }
    o.close();
}

fn write_hash(out: &mut Vec<u8>, hash: &FileHash) {
    let mut o = Object::open(out);
    o.text("\"md5\":", &hash.md5);
    o.text("\"sha1\":", &hash.sha1);
    o.text("\"sha256\":", &hash.sha256);
    o.text("\"sha512\":", &hash.sha512);
    o.text("\"ssdeep\":", &hash.ssdeep);
    o.close();
}

fn write_geo(out: &mut Vec<u8>, geo: &GeoFields) {
    let mut o = Object::open(out);
    o.text("\"city_name\":", &geo.city_name);
    o.text("\"continent_name\":", &geo.continent_name);
    o.text("\"country_iso_code\":", &geo.country_iso_code);
    o.text("\"country_name\":", &geo.country_name);
    if let Some(location) = &geo.location {
        // Floats are written by serde_json itself, so their format is its own.
        let _ = write_json(o.key("\"location\":"), location);
    }
    o.text("\"region_iso_code\":", &geo.region_iso_code);
    o.text("\"region_name\":", &geo.region_name);
    o.close();
}

fn write_url(out: &mut Vec<u8>, url: &UrlFields) {
    let mut o = Object::open(out);
    o.text("\"domain\":", &url.domain);
    o.text("\"extension\":", &url.extension);
    o.text("\"fragment\":", &url.fragment);
    o.text("\"full\":", &url.full);
    o.text("\"original\":", &url.original);
    o.text("\"password\":", &url.password);
    o.text("\"path\":", &url.path);
    if let Some(port) = url.port {
        o.key("\"port\":")
            .extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
    }
    o.text("\"query\":", &url.query);
    o.text("\"scheme\":", &url.scheme);
    o.text("\"user_info\":", &url.user_info);
    o.text("\"username\":", &url.username);
    o.close();
}
