//! ISO 8601 dates in, `YYYY-MM-DDTHH:MM:SS.mmmZ` out (rules 7 to 9).

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use thiserror::Error;

/// Why a date could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unable to parse date [{value}]: {reason}")]
pub struct DateError {
    /// The text as received.
    pub value: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

/// Parses an ISO 8601 date or date-time, the way the reference's `ISO8601` date format reads it.
///
/// Accepted: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, then optionally `T` (or a space) and `HH`, `HH:MM`,
/// `HH:MM:SS`, with a fraction of up to 9 digits after `.` or `,`, then optionally `Z`, `±HH:MM`,
/// `±HHMM` or `±HH`. Without a zone the time is UTC. Anything else is an error.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, DateError> {
    normalise(text).map(|(time, _)| time)
}

/// Parses like [`parse_timestamp`] and also gives the normalised text, formatted straight from
/// the parsed fields when the input is already UTC (the common case, and the hot path).
pub(crate) fn normalise(text: &str) -> Result<(DateTime<Utc>, String), DateError> {
    let fail = |reason| DateError {
        value: text.to_owned(),
        reason,
    };
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };

    let year = cursor
        .digits(4)
        .ok_or_else(|| fail("expected a four-digit year"))?;
    let mut month = 1;
    let mut day = 1;
    if cursor.eat(b'-') {
        month = cursor
            .digits(2)
            .ok_or_else(|| fail("expected a two-digit month"))?;
        if cursor.eat(b'-') {
            day = cursor
                .digits(2)
                .ok_or_else(|| fail("expected a two-digit day"))?;
        }
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| fail("no such calendar date"))?;

    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    if cursor.eat(b'T') || cursor.eat(b't') || (cursor.peek() == Some(b' ') && cursor.eat(b' ')) {
        hour = cursor
            .digits(2)
            .ok_or_else(|| fail("expected a two-digit hour"))?;
        if cursor.eat(b':') {
            minute = cursor
                .digits(2)
                .ok_or_else(|| fail("expected two-digit minutes"))?;
            if cursor.eat(b':') {
                second = cursor
                    .digits(2)
                    .ok_or_else(|| fail("expected two-digit seconds"))?;
                if cursor.eat(b'.') || cursor.eat(b',') {
                    nanos = cursor
                        .fraction()
                        .ok_or_else(|| fail("expected 1 to 9 fraction digits"))?;
                }
            }
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
        .filter(|_| second < 60)
        .ok_or_else(|| fail("time of day out of range"))?;

    let offset_seconds = match cursor.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            cursor.pos += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            cursor.pos += 1;
            let hours = cursor
                .digits(2)
                .ok_or_else(|| fail("expected a two-digit zone hour"))?;
            let minutes = if cursor.eat(b':') {
                cursor
                    .digits(2)
                    .ok_or_else(|| fail("expected two-digit zone minutes"))?
            } else {
                cursor.digits(2).unwrap_or(0)
            };
            if hours > 18 || minutes > 59 {
                return Err(fail("zone offset out of range"));
            }
            let seconds = (hours * 3600 + minutes * 60) as i32;
            if sign == b'-' { -seconds } else { seconds }
        }
        Some(_) => return Err(fail("unexpected text after the time")),
    };
    if cursor.pos != cursor.bytes.len() {
        return Err(fail("unexpected text after the zone"));
    }
    let offset =
        FixedOffset::east_opt(offset_seconds).ok_or_else(|| fail("zone offset out of range"))?;
    let local = NaiveDateTime::new(date, time);
    let utc = offset
        .from_local_datetime(&local)
        .single()
        .ok_or_else(|| fail("zone offset out of range"))?
        .with_timezone(&Utc);
    if !(0..=9999).contains(&utc.year()) {
        return Err(fail("year out of range once converted to UTC"));
    }
    Ok((utc, format_timestamp(utc)))
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds, truncated), as the reference does.
///
/// Times outside years 0000 to 9999 are clamped to the first or last millisecond of that range,
/// so the text always parses as a date again and keeps its order.
pub fn format_timestamp(time: DateTime<Utc>) -> String {
    if time.year() > 9999 {
        return "9999-12-31T23:59:59.999Z".to_owned();
    }
    if time.year() < 0 {
        return "0000-01-01T00:00:00.000Z".to_owned();
    }
    let year = time.year() as u32;
    let millis = time.nanosecond() / 1_000_000 % 1000;
    format_fields(
        year,
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        millis,
    )
}

fn format_fields(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
) -> String {
    let mut out = [0u8; 24];
    put_digits(&mut out[0..4], year);
    out[4] = b'-';
    put_digits(&mut out[5..7], month);
    out[7] = b'-';
    put_digits(&mut out[8..10], day);
    out[10] = b'T';
    put_digits(&mut out[11..13], hour);
    out[13] = b':';
    put_digits(&mut out[14..16], minute);
    out[16] = b':';
    put_digits(&mut out[17..19], second);
    out[19] = b'.';
    put_digits(&mut out[20..23], millis);
    out[23] = b'Z';
    // Only ASCII digits and separators were written.
    std::str::from_utf8(&out)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Writes `value` as decimal digits filling `slot` (leading zeros; higher digits dropped).
fn put_digits(slot: &mut [u8], mut value: u32) {
    for byte in slot.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn digits(&mut self, count: usize) -> Option<u32> {
        let slice = self.bytes.get(self.pos..self.pos + count)?;
        let mut value = 0u32;
        for &byte in slice {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(byte - b'0');
        }
        self.pos += count;
        Some(value)
    }

    /// 1 to 9 digits of a fraction of a second, as nanoseconds.
    fn fraction(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let mut nanos = 0u32;
        for index in 0..9 {
            nanos = nanos * 10 + digits.get(index).map_or(0, |&b| u32::from(b - b'0'));
        }
        Some(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(text: &str) -> String {
        parse_timestamp(text)
            .map(format_timestamp)
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("2020-10-08T12:22:11", "2020-10-08T12:22:11.000Z"),
            ("2020-10-08T12:22:11Z", "2020-10-08T12:22:11.000Z"),
            ("2020-10-08T12:22:11.5", "2020-10-08T12:22:11.500Z"),
            ("2020-10-08T12:22:11.123456789Z", "2020-10-08T12:22:11.123Z"),
            ("2020-10-08T12:22:11,25", "2020-10-08T12:22:11.250Z"),
            ("2020-10-08T12:22:11+02:00", "2020-10-08T10:22:11.000Z"),
            ("2020-10-08T12:22:11-0130", "2020-10-08T13:52:11.000Z"),
            ("2020-10-08T00:30:00+01", "2020-10-07T23:30:00.000Z"),
            ("2020-10-08 12:22:11", "2020-10-08T12:22:11.000Z"),
            ("2020-10-08T12:22", "2020-10-08T12:22:00.000Z"),
            ("2020-10-08T12", "2020-10-08T12:00:00.000Z"),
            ("2020-10-08", "2020-10-08T00:00:00.000Z"),
            ("2020-10", "2020-10-01T00:00:00.000Z"),
            ("2020", "2020-01-01T00:00:00.000Z"),
            ("2024-02-29T23:59:59.999Z", "2024-02-29T23:59:59.999Z"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalised(input), expected, "{input}");
        }
    }

    #[test]
    fn rejected_forms() {
        for input in [
            "",
            "yesterday",
            "20201008",
            "2020-13-01",
            "2023-02-29",
            "2020-10-08T24:00:00",
            "2020-10-08T12:60:00",
            "2020-10-08T12:22:61",
            "2020-10-08T12:22:11.",
            "2020-10-08T",
            "2020-10-08T12:22:11.1234567890",
            "2020-10-08T12:22:11+25:00",
            "2020-10-08T12:22:11 UTC",
            "2020-10-08T12:22:11Zjunk",
            "1602159731",
            "0000-01-01T00:00:00+01:00",
            "2020-10-08T12:22:11\u{0}",
            "２０２０-10-08",
        ] {
            assert!(parse_timestamp(input).is_err(), "{input:?} was accepted");
        }
    }

    #[test]
    fn times_beyond_year_9999_are_clamped_in_order() {
        let late = parse_timestamp("9999-12-31T00:00:00").unwrap() + chrono::TimeDelta::days(5);
        assert_eq!(format_timestamp(late), "9999-12-31T23:59:59.999Z");
        let early = parse_timestamp("0000-01-01T00:00:00").unwrap() - chrono::TimeDelta::days(1);
        assert_eq!(format_timestamp(early), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn errors_name_the_value() {
        let error = parse_timestamp("soon").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unable to parse date [soon]: expected a four-digit year"
        );
    }
}
