//! ISO 8601 dates in, `YYYY-MM-DDTHH:MM:SS.mmmZ` out (rules 7 to 9).

use anomali_model::Timestamp;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
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
pub(crate) fn normalise(text: &str) -> Result<(DateTime<Utc>, Timestamp), DateError> {
    if let Some(fast) = normalise_plain(text) {
        return Ok(fast);
    }
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
    let local = NaiveDateTime::new(date, time);
    if offset_seconds == 0 {
        // Already UTC: the text comes straight from the parsed fields.
        let text = format_fields(year, month, day, hour, minute, second, nanos / 1_000_000);
        return Ok((local.and_utc(), text));
    }
    let offset =
        FixedOffset::east_opt(offset_seconds).ok_or_else(|| fail("zone offset out of range"))?;
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

/// The feed's usual form, `YYYY-MM-DDTHH:MM:SS` (no fraction, no zone), read by position.
/// `None` sends anything else, including every invalid date, to the general parser.
fn normalise_plain(text: &str) -> Option<(DateTime<Utc>, Timestamp)> {
    let bytes: &[u8; 19] = text.as_bytes().try_into().ok()?;
    // Checks the shape: digits and separators in their places.
    let timestamp = Timestamp::from_plain(bytes)?;
    let number = |range: std::ops::Range<usize>| -> u32 {
        bytes[range]
            .iter()
            .fold(0, |value, &digit| value * 10 + u32::from(digit - b'0'))
    };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    let time =
        NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_opt(hour, minute, second)?;
    Some((time.and_utc(), timestamp))
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds, truncated), as the reference does.
///
/// Times outside years 0000 to 9999 are clamped to the first or last millisecond of that range,
/// so the text always parses as a date again and keeps its order.
pub fn format_timestamp(time: DateTime<Utc>) -> Timestamp {
    // From the Unix time with integer arithmetic: chrono's calendar accessors each decode the
    // date again, and this runs for every document that gets the fail-safe expiry.
    let seconds = time.timestamp();
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    if year > 9999 {
        return format_fields(9999, 12, 31, 23, 59, 59, 999);
    }
    if year < 0 {
        return format_fields(0, 1, 1, 0, 0, 0, 0);
    }
    format_fields(
        year as u32,
        month,
        day,
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        time.timestamp_subsec_millis().min(999),
    )
}

/// Year, month and day of a count of days since 1970-01-01 (proleptic Gregorian; the
/// "days from civil" inverse of Howard Hinnant's date algorithms).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Fields already range-checked by the caller (a parsed date, or the clamped calendar).
fn format_fields(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
) -> Timestamp {
    Timestamp::from_fields(year, month, day, hour, minute, second, millis).unwrap_or_default()
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
            .map(|time| format_timestamp(time).to_string())
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
    fn formatting_agrees_with_chrono_across_the_calendar() {
        let mut time = parse_timestamp("0000-01-01T00:00:00").unwrap();
        let end = parse_timestamp("9999-12-31T23:59:59.999Z").unwrap();
        // About 4,700 steps of a prime number of seconds: every month, leap years, centuries.
        let step = chrono::TimeDelta::seconds(67_108_859) + chrono::TimeDelta::milliseconds(7);
        while time <= end {
            let expected = time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(format_timestamp(time).as_str(), expected);
            time += step;
        }
        assert_eq!(format_timestamp(end).as_str(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn times_beyond_year_9999_are_clamped_in_order() {
        let late = parse_timestamp("9999-12-31T00:00:00").unwrap() + chrono::TimeDelta::days(5);
        assert_eq!(format_timestamp(late).as_str(), "9999-12-31T23:59:59.999Z");
        let early = parse_timestamp("0000-01-01T00:00:00").unwrap() - chrono::TimeDelta::days(1);
        assert_eq!(format_timestamp(early).as_str(), "0000-01-01T00:00:00.000Z");
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
