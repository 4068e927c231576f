//! The `ioc_expiration_duration` setting (section c): the fail-safe `deleted_at`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;

/// How long an indicator stays live when the feed gives no `deleted_at`: `<amount><unit>`,
/// the unit one of `d` (days), `h` (hours), `m` (minutes).
///
/// Deviation from the reference: an invalid value is a configuration error here (reported once,
/// at startup), not a silent 90 days plus an error on every document; zero and negative amounts
/// are refused because they would expire every indicator on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IocExpiration {
    amount: u32,
    unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Days,
    Hours,
    Minutes,
}

/// Why an `ioc_expiration_duration` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid ioc_expiration_duration {value:?}: {reason}")]
pub struct ExpirationError {
    /// The value as configured.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The longest accepted duration, about 100 years: beyond that, date arithmetic overflows and
/// "never expire" is better said by not setting a duration.
const MAX_MINUTES: i64 = 100 * 366 * 24 * 60;

impl IocExpiration {
    /// The integration's default, 90 days.
    pub const DEFAULT: Self = Self {
        amount: 90,
        unit: Unit::Days,
    };

    /// The duration as a time span.
    pub fn duration(&self) -> TimeDelta {
        let amount = i64::from(self.amount);
        match self.unit {
            Unit::Days => TimeDelta::days(amount),
            Unit::Hours => TimeDelta::hours(amount),
            Unit::Minutes => TimeDelta::minutes(amount),
        }
    }

    /// `base` plus the duration (`None` past the end of representable time).
    pub fn deleted_at(&self, base: DateTime<Utc>) -> Option<DateTime<Utc>> {
        base.checked_add_signed(self.duration())
    }
}

impl FromStr for IocExpiration {
    type Err = ExpirationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ExpirationError {
            value: text.to_owned(),
            reason,
        };
        let Some(last) = text.chars().last() else {
            return Err(fail(
                "empty; expected an amount and a unit such as 90d, 12h or 30m",
            ));
        };
        let unit = match last {
            'd' => Unit::Days,
            'h' => Unit::Hours,
            'm' => Unit::Minutes,
            _ => {
                return Err(fail(
                    "the unit must be d (days), h (hours) or m (minutes), as in 90d",
                ));
            }
        };
        let digits = &text[..text.len() - last.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(
                "the amount must be a whole number of at least 1, as in 90d",
            ));
        }
        let amount: u32 = digits
            .parse()
            .map_err(|_| fail("the amount is too large"))?;
        if amount == 0 {
            return Err(fail(
                "the amount must be at least 1: 0 would expire every indicator on arrival",
            ));
        }
        let expiration = Self { amount, unit };
        if expiration.duration().num_minutes() > MAX_MINUTES {
            return Err(fail("longer than 100 years"));
        }
        Ok(expiration)
    }
}

impl fmt::Display for IocExpiration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Days => 'd',
            Unit::Hours => 'h',
            Unit::Minutes => 'm',
        };
        write!(f, "{}{unit}", self.amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_parses() {
        assert_eq!(
            "90d".parse::<IocExpiration>().unwrap().duration(),
            TimeDelta::days(90)
        );
        assert_eq!(
            "12h".parse::<IocExpiration>().unwrap().duration(),
            TimeDelta::hours(12)
        );
        assert_eq!(
            "1m".parse::<IocExpiration>().unwrap().duration(),
            TimeDelta::minutes(1)
        );
        assert_eq!("5d".parse::<IocExpiration>().unwrap().to_string(), "5d");
        assert_eq!(IocExpiration::DEFAULT.to_string(), "90d");
    }

    #[test]
    fn invalid_values_are_refused_with_the_reason() {
        for (value, reason_part) in [
            ("", "empty"),
            ("90", "unit"),
            ("90s", "unit"),
            ("90D", "unit"),
            ("1w", "unit"),
            ("d", "amount"),
            ("-5d", "amount"),
            ("+5d", "amount"),
            ("1.5d", "amount"),
            (" 5d", "amount"),
            ("0h", "at least 1"),
            ("99999999999d", "too large"),
            ("40000d", "100 years"),
            ("5é", "unit"),
        ] {
            let error = value.parse::<IocExpiration>().unwrap_err();
            assert!(
                error.to_string().contains(reason_part),
                "{value:?}: {error}"
            );
            assert!(
                error
                    .to_string()
                    .starts_with("invalid ioc_expiration_duration"),
                "{error}"
            );
        }
    }
}
