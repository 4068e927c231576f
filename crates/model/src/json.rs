//! A fast JSON writer for the documents this workspace ships.
//!
//! It writes exactly what `serde_json::to_writer` writes (same key order, escapes and number
//! formats; a test compares the two), but escapes strings eight bytes at a time: most of an ECS
//! document is ASCII text with nothing to escape, and string escaping was the largest single cost
//! of mapping. Map keys must be strings, as they are in every type of this crate.

use std::fmt;

use serde::ser::{self, Serialize};

/// Writes `value` as compact JSON at the end of `out`.
pub fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), JsonError> {
    value.serialize(&mut Writer { out })
}

/// Why a value could not be written as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write JSON: {0}")]
pub struct JsonError(String);

impl ser::Error for JsonError {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Self(message.to_string())
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A mask with the high bit set in each byte of `word` that is `"`, `\` or below 0x20.
///
/// A bit may also be set in a byte above (more significant than) one that truly needs escaping,
/// never below it: the lowest set bit always marks the first such byte of a little-endian word.
#[inline]
fn escape_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let control = word.wrapping_sub(0x2020_2020_2020_2020) & !word & HIGHS;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    control | quote | backslash
}

/// The index of the first byte of `bytes` that a JSON string must escape.
///
/// Eight bytes at a time; a tail shorter than eight is read as the last eight bytes (which
/// overlap bytes already found clean) rather than copied into a padded word.
#[inline]
fn find_escape(bytes: &[u8]) -> Option<usize> {
    let (words, tail) = bytes.as_chunks::<8>();
    for (index, word) in words.iter().enumerate() {
        let mask = escape_mask(u64::from_le_bytes(*word));
        if mask != 0 {
            return Some(index * 8 + (mask.trailing_zeros() / 8) as usize);
        }
    }
    if tail.is_empty() {
        return None;
    }
    match bytes.last_chunk::<8>() {
        Some(last) => {
            let mask = escape_mask(u64::from_le_bytes(*last));
            (mask != 0).then(|| bytes.len() - 8 + (mask.trailing_zeros() / 8) as usize)
        }
        // Shorter than a word: byte by byte.
        None => bytes
            .iter()
            .position(|&byte| ESCAPE[usize::from(byte)] != 0),
    }
}

/// For each byte: 0 when it is written as is, else the letter of its short escape, or `u`.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Writes `text` as a JSON string, quotes included.
///
/// Most text here has nothing to escape: it is found clean in one pass and copied whole, in code
/// small enough to inline; text with escapes goes the longer way.
#[inline]
pub(crate) fn write_escaped(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    match find_escape(bytes) {
        None => {
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
        }
        Some(first) => write_escaped_from(out, bytes, first),
    }
}

/// [`write_escaped`] of text whose first byte to escape is at `first`.
#[inline(never)]
fn write_escaped_from(out: &mut Vec<u8>, bytes: &[u8], first: usize) {
    out.reserve(bytes.len() + 8);
    out.push(b'"');
    let mut start = 0;
    let mut at = first;
    loop {
        out.extend_from_slice(&bytes[start..at]);
        write_escape(out, bytes[at]);
        start = at + 1;
        match find_escape(&bytes[start..]) {
            Some(offset) => at = start + offset,
            None => break,
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The escape of one byte that needs one: a short escape such as `\n`, else `\u00XX`.
fn write_escape(out: &mut Vec<u8>, byte: u8) {
    match ESCAPE[usize::from(byte)] {
        b'u' => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ]),
        short => out.extend_from_slice(&[b'\\', short]),
    }
}

impl Writer<'_> {
    #[inline]
    fn integer(&mut self, value: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// Floats are rare here (coordinates): serde_json writes them, so the format is its own.
    fn float<F: Serialize>(&mut self, value: F) -> Result<(), JsonError> {
        serde_json::to_writer(&mut *self.out, &value).map_err(|e| JsonError(e.to_string()))
    }
}

/// An open object or array: whether a comma is due before the next member.
struct Compound<'w, 'a> {
    writer: &'w mut Writer<'a>,
    first: bool,
    close: u8,
}

impl Compound<'_, '_> {
    #[inline]
    fn comma(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.writer.out.push(b',');
        }
    }

    /// A struct field name: one of our own identifiers, so it needs no escaping.
    #[inline]
    fn key(&mut self, key: &'static str) {
        debug_assert!(key.bytes().all(|b| ESCAPE[usize::from(b)] == 0), "{key}");
        self.comma();
        self.writer.out.push(b'"');
        self.writer.out.extend_from_slice(key.as_bytes());
        self.writer.out.extend_from_slice(b"\":");
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), JsonError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), JsonError> {
        self.integer(v);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), JsonError> {
        self.integer(v);
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), JsonError> {
        self.integer(v);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), JsonError> {
        self.integer(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), JsonError> {
        self.integer(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), JsonError> {
        self.integer(v);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), JsonError> {
        self.integer(v);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), JsonError> {
        self.integer(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), JsonError> {
        self.float(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), JsonError> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        write_escaped(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        write_escaped(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), JsonError> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for byte in v {
            seq.serialize_element(byte)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), JsonError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        self.out.push(b'{');
        write_escaped(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, JsonError> {
        self.out.push(b'[');
        Ok(Compound {
            writer: self,
            first: true,
            close: b']',
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'w, 'a>, JsonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        self.out.push(b'{');
        write_escaped(self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Compound {
            writer: self,
            first: true,
            close: b']',
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, JsonError> {
        self.out.push(b'{');
        Ok(Compound {
            writer: self,
            first: true,
            close: b'}',
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        self.out.push(b'{');
        write_escaped(self.out, variant);
        self.out.extend_from_slice(b":{");
        Ok(Compound {
            writer: self,
            first: true,
            close: b'}',
        })
    }
}

impl Compound<'_, '_> {
    #[inline]
    fn finish(self, variant: bool) -> Result<(), JsonError> {
        self.writer.out.push(self.close);
        if variant {
            self.writer.out.push(b'}');
        }
        Ok(())
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        self.comma();
        value.serialize(&mut *self.writer)
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        self.element(value)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish(false)
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        self.element(value)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish(false)
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        self.element(value)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish(false)
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        self.element(value)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish(true)
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), JsonError> {
        self.comma();
        let at = self.writer.out.len();
        key.serialize(&mut *self.writer)?;
        if self.writer.out.get(at) != Some(&b'"') {
            return Err(JsonError("map keys must be strings".to_owned()));
        }
        self.writer.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish(false)
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        self.key(key);
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish(false)
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        self.key(key);
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), JsonError> {
        self.finish(true)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn both(value: &serde_json::Value) -> (String, String) {
        let mut fast = Vec::new();
        write_json(&mut fast, value).unwrap();
        (
            String::from_utf8(fast).unwrap(),
            serde_json::to_string(value).unwrap(),
        )
    }

    #[test]
    fn same_bytes_as_serde_json() {
        let tricky = "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{1}i\u{1f}j\u{7f}k é ü 日本 \u{2028} 🎉";
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-12),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(62.0),
            json!(-0.0),
            json!(1e300),
            json!(5e-324),
            json!(""),
            json!("plain ascii text that is longer than eight bytes"),
            json!(tricky),
            json!([]),
            json!({}),
            json!([1, "x", null, [true]]),
            json!({"k": {"nested": [1, 2, {"deep": tricky}]}, "\"key\"": 1, "": ""}),
        ];
        for value in &values {
            let (fast, reference) = both(value);
            assert_eq!(fast, reference, "{value}");
        }
        // Every single byte below 0x80, at every position of a word, of a tail read as an
        // overlapping word, and of a string shorter than a word.
        for byte in 0u8..0x80 {
            for position in 0..17 {
                for suffix in ["", "y", "yyyyyyy", "yyyyyyyy", "\"zz\u{1}"] {
                    let mut text = "x".repeat(position);
                    text.push(char::from(byte));
                    text.push_str(suffix);
                    let (fast, reference) = both(&json!(text));
                    assert_eq!(fast, reference, "byte {byte:#x} at {position}, {suffix:?}");
                }
            }
        }
    }

    #[test]
    fn non_string_map_keys_are_an_error() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(1, 2);
        assert!(write_json(&mut Vec::new(), &map).is_err());
    }
}
