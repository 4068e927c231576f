//! Structured indicators (every known field, any JSON shape) through the mapper: it never
//! panics, and its hand-written encoder writes exactly what serde_json writes.
#![no_main]

use anomali_mapping::{IocExpiration, MappingSettings, Received, map_indicator};
use anomali_model::Indicator;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Number, Value};

#[derive(Debug, Arbitrary)]
enum FuzzValue {
    Text(String),
    Integer(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
    Null,
    List(Vec<String>),
    Object(Vec<(String, String)>),
}

impl FuzzValue {
    fn into_json(self) -> Value {
        match self {
            Self::Text(text) => Value::String(text),
            Self::Integer(n) => Value::from(n),
            Self::Unsigned(n) => Value::from(n),
            Self::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Self::Bool(b) => Value::Bool(b),
            Self::Null => Value::Null,
            Self::List(items) => Value::Array(items.into_iter().map(Value::String).collect()),
            Self::Object(pairs) => Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    fields: Vec<(u8, FuzzValue)>,
    unknown: Vec<(String, FuzzValue)>,
    expiry_minutes: Option<u16>,
    preserve: bool,
    received_seconds: i32,
}

fuzz_target!(|input: Input| {
    let mut indicator = Indicator::default();
    for (key, value) in input.fields {
        let name = Indicator::KNOWN_FIELDS[usize::from(key) % Indicator::KNOWN_FIELDS.len()];
        indicator.set(name, value.into_json());
    }
    for (key, value) in input.unknown {
        indicator.set(&key, value.into_json());
    }
    let settings = MappingSettings {
        ioc_expiration: input
            .expiry_minutes
            .and_then(|m| format!("{}m", u32::from(m) + 1).parse::<IocExpiration>().ok()),
        tags: vec!["forwarded".into()],
        preserve_original_event: input.preserve,
        geoip: None,
    };
    let at = chrono::DateTime::from_timestamp(i64::from(input.received_seconds), 0).unwrap_or_default();
    let raw = serde_json::to_string(&indicator).expect("an indicator serializes");
    let document = map_indicator(indicator, &Received { at, original: Some(&raw) }, &settings);
    let mut fast = Vec::new();
    document.write_json(&mut fast);
    let reference = serde_json::to_vec(&document).expect("a document serializes");
    assert_eq!(fast, reference, "write_json and serde_json disagree");
    let value: Value = serde_json::from_slice(&fast).expect("the output is JSON");
    assert!(value.get("@timestamp").is_some());
});
