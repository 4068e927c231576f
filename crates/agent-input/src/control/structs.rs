//! Conversion between `google.protobuf.Struct` (how the agent hands over policy blocks, e.g.
//! `UnitExpectedConfig.source`) and `serde_json::Value` (what our config types deserialize from).
//!
//! - Struct → JSON: every number on the wire is an `f64`. A number with no fractional part that
//!   an `i64` (or, above that, a `u64`) holds exactly becomes a JSON integer, so a policy's
//!   `listen_port: 8181` reads back as `8181`, not `8181.0`, and deserializes into integer fields.
//!   Other numbers stay floats. NaN and ±infinity have no JSON form and are an error naming the
//!   path; a `Value` with no kind set reads as `null`, as the Go client does.
//! - JSON → Struct: only objects become a `Struct`. Integers beyond ±2^53 are rounded to the
//!   nearest `f64`, because that is all the wire can carry.
//! - Neither direction panics on any input; nesting is walked recursively, which the gRPC
//!   decoder's own recursion limit (100 levels) keeps bounded for data from the agent.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Number};

/// Why a value could not cross between `google.protobuf.Struct` and JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StructError {
    /// A Struct number is NaN or infinite; JSON cannot hold it.
    #[error("number at {path} is not finite")]
    NonFiniteNumber {
        /// Where the number sits, e.g. `streams[0].interval`; `.` is the top.
        path: String,
    },
    /// A JSON number has no `f64` form (only with serde_json's arbitrary precision).
    #[error("number at {path} has no 64-bit float form")]
    UnrepresentableNumber {
        /// Where the number sits; `.` is the top.
        path: String,
    },
    /// Only a JSON object can become a `Struct`.
    #[error("a struct needs a json object, found {found}")]
    NotAnObject {
        /// The JSON kind found instead (`array`, `string`, …).
        found: &'static str,
    },
}

/// Converts a `Struct` into a JSON object (see the module contract for numbers).
pub fn struct_to_json(source: &Struct) -> Result<serde_json::Value, StructError> {
    struct_to_map(source).map(serde_json::Value::Object)
}

/// Converts a `Struct` into a JSON object map.
pub fn struct_to_map(source: &Struct) -> Result<Map<String, serde_json::Value>, StructError> {
    let mut path = Path::default();
    fields_to_map(source, &mut path)
}

/// Converts one `google.protobuf.Value` into JSON.
pub fn value_to_json(value: &Value) -> Result<serde_json::Value, StructError> {
    let mut path = Path::default();
    to_json(value, &mut path)
}

/// Converts a JSON object into a `Struct`; any other JSON kind is [`StructError::NotAnObject`].
pub fn json_to_struct(value: &serde_json::Value) -> Result<Struct, StructError> {
    match value {
        serde_json::Value::Object(map) => map_to_struct(map),
        other => Err(StructError::NotAnObject {
            found: json_kind(other),
        }),
    }
}

/// Converts a JSON object map into a `Struct`.
pub fn map_to_struct(map: &Map<String, serde_json::Value>) -> Result<Struct, StructError> {
    let mut path = Path::default();
    map_to_fields(map, &mut path)
}

/// Converts any JSON value into a `google.protobuf.Value`.
pub fn json_to_value(value: &serde_json::Value) -> Result<Value, StructError> {
    let mut path = Path::default();
    from_json(value, &mut path)
}

fn fields_to_map(
    source: &Struct,
    path: &mut Path,
) -> Result<Map<String, serde_json::Value>, StructError> {
    let mut map = Map::with_capacity(source.fields.len());
    for (key, value) in &source.fields {
        path.push(Segment::Key(key.clone()));
        let converted = to_json(value, path);
        path.pop();
        map.insert(key.clone(), converted?);
    }
    Ok(map)
}

fn to_json(value: &Value, path: &mut Path) -> Result<serde_json::Value, StructError> {
    Ok(match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => serde_json::Value::Number(number_to_json(*n, path)?),
        Some(Kind::StructValue(s)) => serde_json::Value::Object(fields_to_map(s, path)?),
        Some(Kind::ListValue(list)) => {
            let mut items = Vec::with_capacity(list.values.len());
            for (index, item) in list.values.iter().enumerate() {
                path.push(Segment::Index(index));
                let converted = to_json(item, path);
                path.pop();
                items.push(converted?);
            }
            serde_json::Value::Array(items)
        }
    })
}

/// 2^63 and 2^64 as `f64` (both exact): the bounds of integral values `i64`/`u64` hold.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

fn number_to_json(n: f64, path: &Path) -> Result<Number, StructError> {
    if !n.is_finite() {
        return Err(StructError::NonFiniteNumber {
            path: path.to_string(),
        });
    }
    // The casts are exact: `n` is integral and inside the target range, checked just before.
    if n.fract() == 0.0 {
        if (-TWO_POW_63..TWO_POW_63).contains(&n) {
            return Ok(Number::from(n as i64));
        }
        if (0.0..TWO_POW_64).contains(&n) {
            return Ok(Number::from(n as u64));
        }
    }
    // Finite, so `from_f64` cannot refuse it; the error is only there to avoid an unwrap.
    Number::from_f64(n).ok_or_else(|| StructError::NonFiniteNumber {
        path: path.to_string(),
    })
}

fn map_to_fields(
    map: &Map<String, serde_json::Value>,
    path: &mut Path,
) -> Result<Struct, StructError> {
    let mut fields = std::collections::BTreeMap::new();
    for (key, value) in map {
        path.push(Segment::Key(key.clone()));
        let converted = from_json(value, path);
        path.pop();
        fields.insert(key.clone(), converted?);
    }
    Ok(Struct { fields })
}

fn from_json(value: &serde_json::Value, path: &mut Path) -> Result<Value, StructError> {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Number(n) => {
            Kind::NumberValue(
                n.as_f64()
                    .ok_or_else(|| StructError::UnrepresentableNumber {
                        path: path.to_string(),
                    })?,
            )
        }
        serde_json::Value::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                path.push(Segment::Index(index));
                let converted = from_json(item, path);
                path.pop();
                values.push(converted?);
            }
            Kind::ListValue(ListValue { values })
        }
        serde_json::Value::Object(map) => Kind::StructValue(map_to_fields(map, path)?),
    };
    Ok(Value { kind: Some(kind) })
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Where the walk is, kept only so errors can say which value was bad.
#[derive(Debug, Default)]
struct Path(Vec<Segment>);

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Path {
    fn push(&mut self, segment: Segment) {
        self.0.push(segment);
    }

    fn pop(&mut self) {
        self.0.pop();
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str(".");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(n: f64) -> Value {
        Value {
            kind: Some(Kind::NumberValue(n)),
        }
    }

    fn string(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.to_owned())),
        }
    }

    fn object(fields: Vec<(&str, Value)>) -> Struct {
        Struct {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    #[test]
    fn integral_numbers_become_json_integers() {
        let source = object(vec![
            ("listen_port", number(8181.0)),
            ("negative", number(-3.0)),
            ("zero", number(-0.0)),
            ("ratio", number(0.5)),
            ("big_u64", number(1.8e19)),
            ("too_big", number(1e20)),
        ]);
        let json = struct_to_json(&source).unwrap();
        assert_eq!(json["listen_port"], json!(8181));
        assert!(json["listen_port"].is_i64());
        assert_eq!(json["negative"], json!(-3));
        assert_eq!(json["zero"], json!(0));
        assert_eq!(json["ratio"], json!(0.5));
        // Above i64::MAX but inside u64: still exact, so still an integer.
        assert_eq!(json["big_u64"], json!(18_000_000_000_000_000_000_u64));
        // Beyond u64 an integer form would be a lie about the type; it stays a float.
        assert!(json["too_big"].is_f64());
        assert_eq!(json["too_big"].as_f64(), Some(1e20));
    }

    #[test]
    fn integer_bounds_are_exact() {
        let min = struct_to_json(&object(vec![("n", number(-TWO_POW_63))])).unwrap();
        assert_eq!(min["n"], json!(i64::MIN));
        // 2^64 itself does not fit a u64.
        let over = struct_to_json(&object(vec![("n", number(TWO_POW_64))])).unwrap();
        assert!(over["n"].is_f64());
    }

    #[test]
    fn nested_policy_block_converts_both_ways() {
        let policy = json!({
            "id": "ti_anomali-1",
            "type": "ti_anomali",
            "revision": 3,
            "enabled": true,
            "tags": null,
            "data_stream": {"namespace": "default"},
            "streams": [
                {"id": "s1", "listen_port": 8181, "ratio": 0.25, "hosts": ["a", "b"]},
                []
            ]
        });
        let source = json_to_struct(&policy).unwrap();
        assert_eq!(
            source.fields["revision"].kind,
            Some(Kind::NumberValue(3.0)),
            "the wire carries every number as a double"
        );
        assert_eq!(struct_to_json(&source).unwrap(), policy);
    }

    #[test]
    fn a_value_without_kind_reads_as_null() {
        let source = object(vec![("unset", Value { kind: None })]);
        assert_eq!(struct_to_json(&source).unwrap(), json!({"unset": null}));
    }

    #[test]
    fn non_finite_numbers_are_refused_with_their_path() {
        let list = Value {
            kind: Some(Kind::ListValue(ListValue {
                values: vec![string("ok"), number(f64::NAN)],
            })),
        };
        let inner = Value {
            kind: Some(Kind::StructValue(object(vec![("ratios", list)]))),
        };
        let source = object(vec![("streams", inner)]);
        assert_eq!(
            struct_to_json(&source),
            Err(StructError::NonFiniteNumber {
                path: "streams.ratios[1]".to_owned()
            })
        );
        assert_eq!(
            value_to_json(&number(f64::INFINITY)),
            Err(StructError::NonFiniteNumber {
                path: ".".to_owned()
            })
        );
    }

    #[test]
    fn only_objects_become_structs() {
        assert_eq!(
            json_to_struct(&json!([1, 2])),
            Err(StructError::NotAnObject { found: "array" })
        );
        assert_eq!(
            json_to_struct(&json!("x")).unwrap_err().to_string(),
            "a struct needs a json object, found string"
        );
        // Scalars still convert as values.
        assert_eq!(json_to_value(&json!("x")).unwrap(), string("x"));
    }

    #[test]
    fn large_json_integers_round_to_the_nearest_double() {
        let source = json_to_struct(&json!({"n": 9_007_199_254_740_993_u64})).unwrap();
        assert_eq!(
            source.fields["n"].kind,
            Some(Kind::NumberValue(9_007_199_254_740_992.0))
        );
    }
}
