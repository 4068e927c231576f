//! [`Indicator`]: one ThreatStream indicator as pushed by the Elastic Extension.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// Declares the known fields once, so the struct, the deserializer and the serializer agree.
macro_rules! indicator_fields {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {
        /// One ThreatStream indicator.
        ///
        /// Each known field keeps the JSON value it arrived with, because the feed is loose about
        /// types (`id` may be a number or a string, `asn` a string, `trusted_circle_ids` a
        /// comma-separated string). The mapping decides what each value means and records a
        /// per-field error when it cannot; parsing itself only fails on malformed JSON or a
        /// top-level value that is not an object. A JSON `null` is kept as `Some(Value::Null)`.
        /// When a key repeats, the last value wins (as in Elasticsearch).
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Indicator {
            $($(#[$doc])* pub $name: Option<Value>,)+
            /// Keys the reference does not know, kept (sorted by key) so they reach
            /// `anomali.threatstream` unchanged.
            pub unknown: Map<String, Value>,
        }

        impl Indicator {
            /// Sets the field called `key`, or keeps it among the unknown ones.
            pub fn set(&mut self, key: &str, value: Value) {
                match key {
                    $(stringify!($name) => self.$name = Some(value),)+
                    _ => {
                        self.unknown.insert(key.to_owned(), value);
                    }
                }
            }

            /// The value of the field called `key`, known or not.
            pub fn get(&self, key: &str) -> Option<&Value> {
                match key {
                    $(stringify!($name) => self.$name.as_ref(),)+
                    _ => self.unknown.get(key),
                }
            }

            /// True when the object had no field at all (not even a null), as `{}`.
            pub fn is_empty(&self) -> bool {
                $(self.$name.is_none() &&)+ self.unknown.is_empty()
            }

            /// Names of the fields the reference integration knows, in declaration order.
            pub const KNOWN_FIELDS: &'static [&'static str] = &[$(stringify!($name)),+];
        }

        impl Serialize for Indicator {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                $(if let Some(value) = &self.$name {
                    map.serialize_entry(stringify!($name), value)?;
                })+
                for (key, value) in &self.unknown {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    };
}

indicator_fields! {
    /// When ThreatStream added the indicator (ISO 8601, usually without a zone: UTC).
    added_at,
    /// Autonomous system number, often as a string.
    asn,
    /// `private` or `public`; gives the TLP marking.
    classification,
    /// 0 to 100 (the feed uses -1 for unknown).
    confidence,
    /// Two-letter country code from the feed.
    country,
    /// First seen (ISO 8601).
    date_first,
    /// Last seen (ISO 8601).
    date_last,
    /// When the indicator was deleted or expires (ISO 8601); its presence means "not live".
    deleted_at,
    /// Comma-separated tags; `\,` escapes a comma inside a tag.
    detail,
    /// Free text, such as "imported by user 41".
    detail2,
    /// Domain name (domain indicators, and sometimes URL indicators).
    domain,
    /// E-mail address (e-mail indicators).
    email,
    /// The indicator's ThreatStream id: with the dataset, the key of the latest index.
    id,
    /// Import session id.
    import_session_id,
    /// Indicator type such as `mal_ip`; gives `threat.indicator.type`.
    itype,
    /// Feed latitude.
    lat,
    /// Feed longitude.
    lon,
    /// Malware family or type.
    maltype,
    /// A hash of any length despite the name (md5, sha1, sha256, sha512).
    md5,
    /// Organization owning the IP address.
    org,
    /// ThreatStream API path of the indicator.
    resource_uri,
    /// `low`, `medium`, `high` or `very-high`.
    severity,
    /// The feed or organization that provided the indicator.
    source,
    /// ThreatStream feed id.
    source_feed_id,
    /// IP address (IPv4 or IPv6).
    srcip,
    /// `active`, `inactive`, `falsepos`.
    state,
    /// Comma-separated trusted circle ids.
    trusted_circle_ids,
    /// Version of the indicator: a higher update id is a newer version.
    update_id,
    /// URL (URL indicators).
    url,
    /// The kind of value: `ip`, `domain`, `url`, `email`, `md5`.
    value_type,
}

impl Indicator {
    /// Parses one indicator from the bytes of a single JSON object.
    ///
    /// Bytes that are UTF-8 as a whole (nearly always) are checked once and read as text: read
    /// as bytes, every string is checked on its own, which cost more than the rest of reading
    /// the strings. Other bytes are read as bytes, so the error is serde_json's own.
    pub fn from_slice(json: &[u8]) -> Result<Self, serde_json::Error> {
        match std::str::from_utf8(json) {
            Ok(text) => text.parse(),
            Err(_) => serde_json::from_slice(json),
        }
    }
}

impl FromStr for Indicator {
    type Err = serde_json::Error;

    /// Parses one indicator from the text of a single JSON object.
    fn from_str(json: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(json)
    }
}

impl<'de> Deserialize<'de> for Indicator {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(IndicatorVisitor)
    }
}

struct IndicatorVisitor;

impl<'de> Visitor<'de> for IndicatorVisitor {
    type Value = Indicator;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object (one ThreatStream indicator)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Indicator, A::Error> {
        let mut indicator = Indicator::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value: Value = map.next_value()?;
            indicator.set(&key.0, value);
        }
        Ok(indicator)
    }
}

/// A key borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn known_fields_keep_their_json_type() {
        let indicator =
            Indicator::from_slice(br#"{"id": 12, "asn": "3356", "lat": 1.5, "srcip": null}"#)
                .unwrap();
        assert_eq!(indicator.id, Some(json!(12)));
        assert_eq!(indicator.asn, Some(json!("3356")));
        assert_eq!(indicator.lat, Some(json!(1.5)));
        assert_eq!(indicator.srcip, Some(Value::Null));
        assert_eq!(indicator.domain, None);
    }

    #[test]
    fn unknown_fields_are_preserved_in_order() {
        let indicator =
            Indicator::from_slice(br#"{"zeta": [1], "itype": "mal_ip", "alpha": {"x": 1}}"#)
                .unwrap();
        assert_eq!(indicator.unknown.get("zeta"), Some(&json!([1])));
        assert_eq!(indicator.unknown.get("alpha"), Some(&json!({"x": 1})));
        assert_eq!(indicator.get("itype"), Some(&json!("mal_ip")));
        assert_eq!(
            serde_json::to_value(&indicator)
                .unwrap()
                .as_object()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn escaped_keys_are_matched_after_unescaping() {
        let indicator = Indicator::from_slice(br#"{"d\u006fmain": "a.example"}"#).unwrap();
        assert_eq!(indicator.domain, Some(json!("a.example")));
    }

    #[test]
    fn only_an_object_without_fields_is_empty() {
        assert!(Indicator::from_slice(b"{}").unwrap().is_empty());
        assert!(Indicator::default().is_empty());
        for not_empty in [
            &br#"{"id": null}"#[..],
            br#"{"value_type": ""}"#,
            br#"{"x": 1}"#,
        ] {
            assert!(!Indicator::from_slice(not_empty).unwrap().is_empty());
        }
    }

    #[test]
    fn last_duplicate_key_wins() {
        let indicator = Indicator::from_slice(br#"{"id": 1, "id": 2}"#).unwrap();
        assert_eq!(indicator.id, Some(json!(2)));
    }

    #[test]
    fn non_objects_and_bad_json_are_errors_not_panics() {
        for bad in [
            &b"[1]"[..],
            b"5",
            b"\"x\"",
            b"{\"id\": }",
            b"{",
            b"",
            b"\xff",
            "{\"id\": 1,, \"x\": \"é\"}".as_bytes(),
            b"{\"id\": \"\\x\"}",
        ] {
            assert!(Indicator::from_slice(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bytes_and_text_read_alike() {
        for json in [
            &br#"{"id": 1, "detail": "caf\u00e9, \"q\"", "x": ["\ud83c\udf89"]}"#[..],
            "{\"detail\": \"café 日本\"}".as_bytes(),
            b"{\"detail\": \"a\xffb\"}",
            b"{\"detail\": \"\xe6\x97\"}",
            b"{\"id\": 1,, \"x\": \"\xff\"}",
            b"\xff",
            "{\"id\": 1,, \"x\": \"é\"}".as_bytes(),
            b"{\"id\": \"\\x\"}",
        ] {
            let by_text = Indicator::from_slice(json).map_err(|e| e.to_string());
            let by_bytes = serde_json::from_slice::<Indicator>(json).map_err(|e| e.to_string());
            assert_eq!(by_text, by_bytes, "{json:?}");
        }
        assert_eq!(
            "{\"id\": 3}".parse::<Indicator>().unwrap().id,
            Some(json!(3))
        );
    }

    #[test]
    fn serializes_back_to_the_same_object() {
        let input = json!({"id": 7, "itype": "mal_url", "url": "http://a.example/", "extra": true});
        let indicator: Indicator = serde_json::from_value(input.clone()).unwrap();
        assert_eq!(serde_json::to_value(&indicator).unwrap(), input);
    }
}
