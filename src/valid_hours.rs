//! A voucher's validity, as written in comments, CSV files and the desired
//! state: hours, possibly fractional (`0.5`, `1.5`), kept to the minute.
//!
//! Parsed once into whole minutes (parse, don't validate): everything after
//! the parser adds minutes to times, so `0.5` can never be truncated to 0
//! hours (which left a voucher online forever) or rounded to 1.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest validity accepted: ten years, as `create-batch` always did.
pub const MAX_HOURS: u32 = 87_600;

/// A validity of at least one minute and at most [`MAX_HOURS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ValidHours {
    minutes: u32,
}

/// Why a `valid_hours` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidHoursError {
    Empty,
    NotANumber,
    Negative,
    /// Rounds to less than one minute.
    TooShort,
    TooLong,
}

impl fmt::Display for ValidHoursError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValidHoursError::Empty => "valid_hours is empty",
            ValidHoursError::NotANumber => "valid_hours is not a number",
            ValidHoursError::Negative => "valid_hours is negative",
            ValidHoursError::TooShort => "valid_hours is under one minute",
            ValidHoursError::TooLong => "valid_hours is over 87600 (ten years)",
        })
    }
}

impl std::error::Error for ValidHoursError {}

impl ValidHours {
    /// Whole hours (legacy events and tests).
    pub fn from_hours(hours: u32) -> ValidHours {
        ValidHours {
            minutes: hours.min(MAX_HOURS) * 60,
        }
    }

    pub fn from_minutes(minutes: u32) -> Option<ValidHours> {
        (1..=MAX_HOURS * 60)
            .contains(&minutes)
            .then_some(ValidHours { minutes })
    }

    /// `24`, `0.5`, ` 1.25 `: a decimal number of hours (surrounding ASCII
    /// spaces tolerated, people edit comments by hand), rounded to the
    /// nearest minute. No exponents, signs other than a leading `-` (which
    /// is refused as negative), or `inf`/`nan`.
    pub fn parse(raw: &[u8]) -> Result<ValidHours, ValidHoursError> {
        let raw = raw.trim_ascii();
        if raw.is_empty() {
            return Err(ValidHoursError::Empty);
        }
        let (negative, digits) = match raw.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, raw),
        };
        let (int, frac) = match digits.iter().position(|&b| b == b'.') {
            Some(i) => (&digits[..i], &digits[i + 1..]),
            None => (digits, &[][..]),
        };
        let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
            return Err(ValidHoursError::NotANumber);
        }
        // Exact decimal arithmetic in millionths of a minute: no float
        // rounding surprises (0.1 h is exactly 6 minutes).
        // Leading zeros skipped without a copy: parsed for every voucher
        // at every poll.
        let zeros = int.iter().take_while(|&&b| b == b'0').count();
        let int = &int[zeros..];
        if int.len() > 6 {
            return if negative {
                Err(ValidHoursError::Negative)
            } else {
                Err(ValidHoursError::TooLong)
            };
        }
        let hours: u64 = int.iter().fold(0, |a, &b| a * 10 + u64::from(b - b'0'));
        // Up to 6 fractional digits count; the rest cannot move a minute.
        let mut micro: u64 = 0;
        for i in 0..6 {
            micro = micro * 10 + frac.get(i).map_or(0, |&b| u64::from(b - b'0'));
        }
        if negative && (hours > 0 || micro > 0) {
            return Err(ValidHoursError::Negative);
        }
        // Minutes = hours*60 + micro*60/1e6, rounded half up.
        let minutes = hours * 60 + (micro * 60 + 500_000) / 1_000_000;
        if minutes == 0 {
            return Err(ValidHoursError::TooShort);
        }
        if minutes > u64::from(MAX_HOURS) * 60 {
            return Err(ValidHoursError::TooLong);
        }
        Ok(ValidHours {
            minutes: minutes as u32,
        })
    }

    pub fn minutes(self) -> u32 {
        self.minutes
    }

    pub fn secs(self) -> i64 {
        i64::from(self.minutes) * 60
    }

    /// As a JSON number: an integer for whole hours, else a decimal.
    pub fn to_json(self) -> serde_json::Value {
        if self.minutes.is_multiple_of(60) {
            (self.minutes / 60).into()
        } else {
            serde_json::Number::from_f64(f64::from(self.minutes) / 60.0)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
    }
}

/// `24`, `0.5`, `1.25`, `0.0167`: the shortest decimal (up to 4 places)
/// that [`ValidHours::parse`] reads back as the same minutes.
impl fmt::Display for ValidHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m) = (self.minutes / 60, self.minutes % 60);
        if m == 0 {
            return write!(f, "{h}");
        }
        // m/60 to 4 places, rounded; 4 places always reads back to m.
        let frac = (u64::from(m) * 10_000 + 30) / 60;
        let s = format!("{frac:04}");
        write!(f, "{h}.{}", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_what_operators_write() {
        let m = |s: &str| ValidHours::parse(s.as_bytes()).map(ValidHours::minutes);
        assert_eq!(m("24"), Ok(1440));
        assert_eq!(m(" 12 "), Ok(720));
        assert_eq!(m("0.5"), Ok(30));
        assert_eq!(m("1.5"), Ok(90));
        assert_eq!(m(".25"), Ok(15));
        assert_eq!(m("1."), Ok(60));
        assert_eq!(m("0.1"), Ok(6));
        assert_eq!(m("0.0166667"), Ok(1));
        assert_eq!(m("87600"), Ok(87_600 * 60));
        assert_eq!(m(""), Err(ValidHoursError::Empty));
        assert_eq!(m("abc"), Err(ValidHoursError::NotANumber));
        assert_eq!(m("1e3"), Err(ValidHoursError::NotANumber));
        assert_eq!(m("."), Err(ValidHoursError::NotANumber));
        assert_eq!(m("1.2.3"), Err(ValidHoursError::NotANumber));
        assert_eq!(m("-1"), Err(ValidHoursError::Negative));
        assert_eq!(m("-0.5"), Err(ValidHoursError::Negative));
        assert_eq!(m("0"), Err(ValidHoursError::TooShort));
        assert_eq!(m("0.001"), Err(ValidHoursError::TooShort));
        assert_eq!(m("87601"), Err(ValidHoursError::TooLong));
        assert_eq!(m("99999999999"), Err(ValidHoursError::TooLong));
    }

    #[test]
    fn renders_short_and_json_numbers() {
        let v = |m| ValidHours::from_minutes(m).unwrap();
        assert_eq!(v(1440).to_string(), "24");
        assert_eq!(v(30).to_string(), "0.5");
        assert_eq!(v(75).to_string(), "1.25");
        assert_eq!(v(1).to_string(), "0.0167");
        assert_eq!(v(30).to_json(), serde_json::json!(0.5));
        assert_eq!(v(120).to_json(), serde_json::json!(2));
    }

    proptest! {
        #[test]
        fn display_reads_back(m in 1u32..=MAX_HOURS * 60) {
            let v = ValidHours::from_minutes(m).unwrap();
            prop_assert_eq!(ValidHours::parse(v.to_string().as_bytes()), Ok(v));
        }

        #[test]
        fn never_panics(s in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = ValidHours::parse(&s);
        }
    }
}
