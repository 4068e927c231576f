//! [`Timestamp`]: a normalised date-time, `YYYY-MM-DDTHH:MM:SS.mmmZ`, held inline.

use std::fmt;

use serde::{Serialize, Serializer};

/// A UTC date-time in the reference pipeline's output format, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Held as its 24 bytes of text, without a heap allocation: a document has up to five of them
/// and they are on the hot path. The format has a fixed width, so comparing the text compares
/// the times.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp([u8; 24]);

impl Timestamp {
    /// The Unix epoch, `1970-01-01T00:00:00.000Z`.
    pub const EPOCH: Self = Self(*b"1970-01-01T00:00:00.000Z");

    /// `YYYY-MM-DDTHH:MM:SS` (already checked to be in range by the caller) plus `.000Z`;
    /// `None` unless `plain` has exactly that shape.
    pub fn from_plain(plain: &[u8; 19]) -> Option<Self> {
        let mut text = *b"0000-00-00T00:00:00.000Z";
        text[..19].copy_from_slice(plain);
        Self::from_bytes(text)
    }

    fn from_bytes(bytes: [u8; 24]) -> Option<Self> {
        const SHAPE: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
        let fits = bytes.iter().zip(SHAPE).all(|(&byte, &shape)| match shape {
            b'd' => byte.is_ascii_digit(),
            other => byte == other,
        });
        fits.then_some(Self(bytes))
    }

    /// The timestamp in `text`, if it has exactly the normalised shape (digits and separators in
    /// their places; the calendar is not checked).
    pub fn parse_normalised(text: &str) -> Option<Self> {
        Self::from_bytes(text.as_bytes().try_into().ok()?)
    }

    /// The timestamp of these calendar fields, or `None` when one is out of its range
    /// (the calendar itself, such as February 30th, is the caller's to check).
    pub fn from_fields(
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        millis: u32,
    ) -> Option<Self> {
        let in_range = year <= 9999
            && (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60
            && millis < 1000;
        if !in_range {
            return None;
        }
        let [y1, y2] = DIGIT_PAIRS[(year / 100) as usize];
        let [y3, y4] = DIGIT_PAIRS[(year % 100) as usize];
        let [mo1, mo2] = DIGIT_PAIRS[month as usize];
        let [d1, d2] = DIGIT_PAIRS[day as usize];
        let [h1, h2] = DIGIT_PAIRS[hour as usize];
        let [mi1, mi2] = DIGIT_PAIRS[minute as usize];
        let [s1, s2] = DIGIT_PAIRS[second as usize];
        let [ms2, ms3] = DIGIT_PAIRS[(millis % 100) as usize];
        let ms1 = b'0' + (millis / 100) as u8;
        Some(Self([
            y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, b'T', h1, h2, b':', mi1, mi2, b':', s1,
            s2, b'.', ms1, ms2, ms3, b'Z',
        ]))
    }

    /// The text as bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8; 24] {
        &self.0
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `parse_normalised`), so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The two decimal digits of each number below 100: a timestamp is written two digits at a
/// time (this runs for every document that gets a computed date).
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0; 2]; 100];
    let mut value = 0;
    while value < 100 {
        pairs[value] = [b'0' + (value / 10) as u8, b'0' + (value % 10) as u8];
        value += 1;
    }
    pairs
};

impl Default for Timestamp {
    fn default() -> Self {
        Self::EPOCH
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.as_str())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_normalised_shape_is_accepted() {
        let time = Timestamp::parse_normalised("2020-10-08T12:22:11.000Z").unwrap();
        assert_eq!(time.as_str(), "2020-10-08T12:22:11.000Z");
        assert_eq!(
            serde_json::to_string(&time).unwrap(),
            "\"2020-10-08T12:22:11.000Z\""
        );
        for bad in [
            "2020-10-08T12:22:11Z",
            "2020-10-08T12:22:11.000z",
            "2020-10-08 12:22:11.000Z",
            "x020-10-08T12:22:11.000Z",
            "",
            "2020-10-08T12:22:11.000Zé",
        ] {
            assert!(Timestamp::parse_normalised(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn from_fields_checks_ranges() {
        let time = Timestamp::from_fields(2024, 2, 29, 23, 59, 59, 999).unwrap();
        assert_eq!(time.as_str(), "2024-02-29T23:59:59.999Z");
        assert_eq!(
            Timestamp::from_fields(7, 1, 1, 0, 0, 0, 5)
                .unwrap()
                .as_str(),
            "0007-01-01T00:00:00.005Z"
        );
        for bad in [
            (10_000, 1, 1, 0, 0, 0, 0),
            (2020, 0, 1, 0, 0, 0, 0),
            (2020, 13, 1, 0, 0, 0, 0),
            (2020, 1, 32, 0, 0, 0, 0),
            (2020, 1, 1, 24, 0, 0, 0),
            (2020, 1, 1, 0, 60, 0, 0),
            (2020, 1, 1, 0, 0, 60, 0),
            (2020, 1, 1, 0, 0, 0, 1000),
        ] {
            let (y, mo, d, h, mi, s, ms) = bad;
            assert!(
                Timestamp::from_fields(y, mo, d, h, mi, s, ms).is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn order_is_time_order() {
        let early = Timestamp::parse_normalised("2020-10-08T12:22:11.000Z").unwrap();
        let late = Timestamp::parse_normalised("2020-10-08T12:22:11.001Z").unwrap();
        assert!(early < late);
    }
}
