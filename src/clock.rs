//! Timestamps: Unix seconds in UTC, RFC 3339 text, RouterOS date strings,
//! and the HTTP `Date` header (IMF-fixdate).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::duration::excerpt;

/// `0000-01-01T00:00:00Z`, the earliest instant RFC 3339 can write.
const MIN_RFC3339: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z`, the latest instant RFC 3339 can write.
const MAX_RFC3339: i64 = 253_402_300_799;

/// An instant as whole Unix seconds, UTC.
///
/// Whole seconds are all the agent needs (voucher expiry, events), and an
/// `i64` serialises compactly in the state file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// The current system time, truncated to whole seconds.
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            // A clock set before 1970 is broken but must not crash the agent.
            Err(e) => Self(i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s)),
        }
    }

    /// `self + secs`, saturating at the ends of the `i64` range.
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// `self + hours`, saturating.
    pub fn plus_hours(self, hours: u32) -> Self {
        // u32::MAX * 3600 fits comfortably in an i64.
        self.plus_secs(i64::from(hours) * 3_600)
    }

    /// `self + valid`, saturating.
    pub fn plus_valid(self, valid: crate::valid_hours::ValidHours) -> Self {
        self.plus_secs(valid.secs())
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later), saturating.
    pub fn secs_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    ///
    /// Instants outside years 0000..=9999 are clamped to that range, because
    /// RFC 3339 cannot express them and this must never fail or panic.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.clamp(MIN_RFC3339, MAX_RFC3339);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            of_day / 3_600,
            of_day % 3_600 / 60,
            of_day % 60
        )
    }
}

const DAY_NAMES: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl Timestamp {
    /// HTTP-date, RFC 7231 IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
    /// Clamped to years 0000..=9999 like [`Self::to_rfc3339`].
    pub fn to_http_date(self) -> String {
        let secs = self.0.clamp(MIN_RFC3339, MAX_RFC3339);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let name = |n: &[u8; 3]| String::from_utf8_lossy(n).into_owned();
        format!(
            "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
            name(DAY_NAMES[weekday(days)]),
            name(MONTH_NAMES[(month - 1) as usize]),
            of_day / 3_600,
            of_day % 3_600 / 60,
            of_day % 60
        )
    }
}

/// Monday = 0 for days since 1970-01-01 (a Thursday).
fn weekday(days: i64) -> usize {
    // rem_euclid(7) is 0..=6, so the cast cannot truncate.
    (days + 3).rem_euclid(7) as usize
}

/// Parses an HTTP `Date` header value: RFC 7231 IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), exactly. Names are case-sensitive
/// as the RFC says, the day name must be that date's, and the obsolete
/// RFC 850 and asctime forms are refused: every server must send
/// IMF-fixdate, and this value decides whether vouchers expire, so
/// anything unexpected is ignored rather than guessed at. Leap second 60
/// is refused too (one lost reading; the next reply brings another).
pub fn parse_http_date(s: &[u8]) -> Option<Timestamp> {
    let [
        w1,
        w2,
        w3,
        b',',
        b' ',
        d1,
        d2,
        b' ',
        m1,
        m2,
        m3,
        b' ',
        y1,
        y2,
        y3,
        y4,
        b' ',
        h1,
        h2,
        b':',
        mi1,
        mi2,
        b':',
        s1,
        s2,
        b' ',
        b'G',
        b'M',
        b'T',
    ] = *s
    else {
        return None;
    };
    let month = MONTH_NAMES.iter().position(|n| **n == [m1, m2, m3])? + 1;
    let year = four_digits([y1, y2, y3, y4])?;
    let day = two_digits(d1, d2)?;
    let (hour, minute, second) = (
        two_digits(h1, h2)?,
        two_digits(mi1, mi2)?,
        two_digits(s1, s2)?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let month = i64::try_from(month).ok()?;
    let days = civil_days(i64::from(year), month, i64::from(day))?;
    if *DAY_NAMES[weekday(days)] != [w1, w2, w3] {
        return None;
    }
    Some(Timestamp(
        days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second),
    ))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Proleptic Gregorian (year, month, day) for days since 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`; plain arithmetic, so formatting has no
/// error path. Callers keep `days` within years 0000..=9999.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Which text format a [`ClockError`] was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockFormat {
    /// RFC 3339, e.g. `2024-01-31T12:00:00Z`.
    Rfc3339,
    /// RouterOS `2024-01-31 12:00:00` or `jan/31/2024 12:00:00`.
    RouterDate,
}

impl fmt::Display for ClockFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rfc3339 => "RFC 3339 timestamp",
            Self::RouterDate => "RouterOS date",
        })
    }
}

/// A timestamp string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockError {
    format: ClockFormat,
    input: String,
    reason: String,
}

impl ClockError {
    fn new(format: ClockFormat, input: &[u8], reason: impl Into<String>) -> Self {
        Self {
            format,
            input: excerpt(input),
            reason: reason.into(),
        }
    }

    /// The format that was expected.
    pub fn format(&self) -> ClockFormat {
        self.format
    }

    /// The offending input (lossy UTF-8, truncated).
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` quotes and escapes, so control bytes cannot forge log lines.
        write!(
            f,
            "invalid {} {:?}: {}",
            self.format, self.input, self.reason
        )
    }
}

impl std::error::Error for ClockError {}

/// Parses RFC 3339 (`Z` or `±hh:mm` offset, optional fraction, which is
/// truncated towards the earlier whole second).
pub fn parse_rfc3339(s: &[u8]) -> Result<Timestamp, ClockError> {
    // The form the agent writes itself, checked every cycle for every
    // voucher: parsed directly, the general parser handles the rest.
    if let Some(t) = parse_canonical_utc(s) {
        return Ok(t);
    }
    let err = |reason: &str| ClockError::new(ClockFormat::Rfc3339, s, reason);
    if std::str::from_utf8(s).is_err() {
        return Err(err("not UTF-8"));
    }
    // date-time = full-date "T" partial-time time-offset (RFC 3339 §5.6),
    // with "t"/"z" accepted in either case.
    let (date, rest) = s.split_at_checked(10).ok_or_else(|| err("too short"))?;
    let [y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2] = *date else {
        return Err(err("expected YYYY-MM-DD"));
    };
    let year = four_digits([y1, y2, y3, y4]).ok_or_else(|| err("bad year"))?;
    let month = two_digits(mo1, mo2).ok_or_else(|| err("bad month"))?;
    let day = two_digits(d1, d2).ok_or_else(|| err("bad day"))?;
    let rest = match rest.split_first() {
        Some((b'T' | b't', rest)) => rest,
        _ => return Err(err("expected `T` after the date")),
    };
    let (time, mut rest) = rest.split_at_checked(8).ok_or_else(|| err("too short"))?;
    let [h1, h2, b':', mi1, mi2, b':', s1, s2] = *time else {
        return Err(err("expected hh:mm:ss"));
    };
    let (hour, minute, second) =
        match (two_digits(h1, h2), two_digits(mi1, mi2), two_digits(s1, s2)) {
            (Some(h), Some(m), Some(s)) if h <= 23 && m <= 59 && s <= 59 => (h, m, s),
            _ => return Err(err("bad time of day")),
        };
    // A fraction is truncated towards the earlier whole second.
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(err("empty fraction"));
        }
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let (h, m) = match (two_digits(*oh1, *oh2), two_digits(*om1, *om2)) {
                (Some(h), Some(m)) if h <= 23 && m <= 59 => (h, m),
                _ => return Err(err("bad offset")),
            };
            let secs = i64::from(h) * 3_600 + i64::from(m) * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return Err(err("expected `Z` or a ±hh:mm offset")),
    };
    let days = civil_days(i64::from(year), i64::from(month), i64::from(day))
        .ok_or_else(|| err("bad calendar date"))?;
    let local =
        days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second);
    Ok(Timestamp(local - offset_secs))
}

/// Days in `month` (1..=12) of `year`, leap years counted.
fn month_days(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid calendar date; `None` for an invalid one.
fn civil_days(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    (day <= month_days(year, month)).then(|| days_from_civil(year, month, day))
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly, with a valid date and time; `None`
/// for anything else (left to the general parser, which also explains
/// what is wrong).
fn parse_canonical_utc(s: &[u8]) -> Option<Timestamp> {
    let [
        y1,
        y2,
        y3,
        y4,
        b'-',
        mo1,
        mo2,
        b'-',
        d1,
        d2,
        b'T',
        h1,
        h2,
        b':',
        mi1,
        mi2,
        b':',
        s1,
        s2,
        b'Z',
    ] = *s
    else {
        return None;
    };
    let year = i64::from(two_digits(y1, y2)?) * 100 + i64::from(two_digits(y3, y4)?);
    let month = i64::from(two_digits(mo1, mo2)?);
    let day = i64::from(two_digits(d1, d2)?);
    let (hour, minute, second) = (
        two_digits(h1, h2)?,
        two_digits(mi1, mi2)?,
        two_digits(s1, s2)?,
    );
    if !(1..=12).contains(&month) || day < 1 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if day > month_days(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(Timestamp(
        days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second),
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a RouterOS date-time: `2024-01-31 12:00:00` (7.10+) or
/// `jan/31/2024 12:00:00` (older; month name in any case).
///
/// The router's local time is taken as UTC. That is wrong whenever the router
/// has a time zone set, and deliberately tolerated: these values are only
/// shown and logged, the agent never relies on the router clock for expiry
/// (it uses its own clock and the RFC 3339 times it wrote itself).
pub fn parse_router_date(s: &[u8]) -> Result<Timestamp, ClockError> {
    let err = |reason: &str| ClockError::new(ClockFormat::RouterDate, s, reason);
    let (date, time) = match s {
        [date @ .., b' ', h1, h2, b':', m1, m2, b':', s1, s2] => {
            let time = match (
                two_digits(*h1, *h2),
                two_digits(*m1, *m2),
                two_digits(*s1, *s2),
            ) {
                (Some(h), Some(m), Some(s)) if h <= 23 && m <= 59 && s <= 59 => {
                    i64::from(h) * 3_600 + i64::from(m) * 60 + i64::from(s)
                }
                _ => return Err(err("bad time of day")),
            };
            (date, time)
        }
        _ => return Err(err("expected `<date> hh:mm:ss`")),
    };
    let (year, month, day) = match date {
        [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] => (
            four_digits([*y1, *y2, *y3, *y4]),
            two_digits(*m1, *m2),
            two_digits(*d1, *d2),
        ),
        [n1, n2, n3, b'/', d1, d2, b'/', y1, y2, y3, y4] => (
            four_digits([*y1, *y2, *y3, *y4]),
            month_from_name([*n1, *n2, *n3]),
            two_digits(*d1, *d2),
        ),
        _ => return Err(err("unrecognised date format")),
    };
    let days = (|| civil_days(i64::from(year?), i64::from(month?), i64::from(day?)))()
        .ok_or_else(|| err("bad calendar date"))?;
    Ok(Timestamp(days * 86_400 + time))
}

fn two_digits(a: u8, b: u8) -> Option<u32> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
}

fn four_digits(d: [u8; 4]) -> Option<i32> {
    d.iter().try_fold(0i32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i32::from(b - b'0'))
    })
}

/// Month number for `jan`..`dec`, any case.
fn month_from_name(name: [u8; 3]) -> Option<u32> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let lower = name.map(|b| b.to_ascii_lowercase());
    let index = NAMES.iter().position(|n| **n == lower)?;
    u32::try_from(index + 1).ok()
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn canonical_fast_path_agrees_with_the_general_parser(secs in MIN_RFC3339..=MAX_RFC3339) {
            let text = Timestamp(secs).to_rfc3339();
            let fast = parse_canonical_utc(text.as_bytes());
            // The general parser, reached through an equivalent offset form.
            let general = text.replace('Z', "+00:00");
            let slow = parse_rfc3339(general.as_bytes()).ok();
            proptest::prop_assert_eq!(fast, slow);
            proptest::prop_assert_eq!(fast, Some(Timestamp(secs)));
        }
    }

    #[test]
    fn invalid_canonical_dates_fall_through() {
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-31T24:00:00Z",
            "2024-04-31T00:00:00Z",
        ] {
            assert_eq!(parse_canonical_utc(bad.as_bytes()), None, "{bad}");
            assert!(parse_rfc3339(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            parse_rfc3339(b"2024-02-29T23:59:59Z")
                .map(Timestamp::unix)
                .ok(),
            Some(1_709_251_199)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rfc(s: &str) -> Option<i64> {
        parse_rfc3339(s.as_bytes()).ok().map(Timestamp::unix)
    }

    fn router(s: &[u8]) -> Option<i64> {
        parse_router_date(s).ok().map(Timestamp::unix)
    }

    #[test]
    fn rfc3339_exact_values() {
        assert_eq!(rfc("2024-01-31T12:00:00Z"), Some(1_706_702_400));
        assert_eq!(rfc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(rfc("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(rfc("9999-12-31T23:59:59Z"), Some(MAX_RFC3339));
        assert_eq!(rfc("0000-01-01T00:00:00Z"), Some(MIN_RFC3339));
    }

    #[test]
    fn rfc3339_offsets_and_fractions() {
        assert_eq!(rfc("2024-01-31T19:00:00+07:00"), Some(1_706_702_400));
        assert_eq!(rfc("2024-01-31T07:30:00-04:30"), Some(1_706_702_400));
        assert_eq!(rfc("2024-01-31T12:00:00+00:00"), Some(1_706_702_400));
        assert_eq!(rfc("2024-01-31T12:00:00.999Z"), Some(1_706_702_400));
        assert_eq!(rfc("2024-01-31T12:00:00.123456789Z"), Some(1_706_702_400));
        assert_eq!(rfc("1970-01-01T07:00:00.5+07:00"), Some(0));
    }

    #[test]
    fn rfc3339_garbage() {
        for bad in [
            "",
            "garbage",
            "2024-01-31",
            "2024-01-31T12:00:00",
            "2024-01-31 12:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-31T24:00:00Z",
            "2024-01-31T12:00:00Z ",
        ] {
            assert_eq!(rfc(bad), None, "{bad:?}");
        }
        let e = parse_rfc3339(b"\xff\xfe2024");
        assert_eq!(
            e.err().map(|e| e.to_string()).as_deref(),
            Some("invalid RFC 3339 timestamp \"\u{fffd}\u{fffd}2024\": not UTF-8")
        );
        let e = parse_rfc3339(&[b'9'; 500]).err();
        assert!(e.is_some_and(|e| e.input().chars().count() == 65));
    }

    #[test]
    fn to_rfc3339_values() {
        assert_eq!(Timestamp::from_unix(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(1_706_702_400).to_rfc3339(),
            "2024-01-31T12:00:00Z"
        );
        assert_eq!(Timestamp::from_unix(-1).to_string(), "1969-12-31T23:59:59Z");
        assert_eq!(
            Timestamp::from_unix(1_709_164_800).to_string(),
            "2024-02-29T00:00:00Z"
        );
        // Out of range clamps rather than panicking.
        assert_eq!(
            Timestamp::from_unix(i64::MAX).to_rfc3339(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            Timestamp::from_unix(i64::MIN).to_rfc3339(),
            "0000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn router_dates() {
        assert_eq!(router(b"2024-01-31 12:00:00"), Some(1_706_702_400));
        assert_eq!(router(b"jan/31/2024 12:00:00"), Some(1_706_702_400));
        assert_eq!(router(b"JAN/31/2024 12:00:00"), Some(1_706_702_400));
        assert_eq!(router(b"Jan/31/2024 12:00:00"), Some(1_706_702_400));
        assert_eq!(router(b"1970-01-01 00:00:00"), Some(0));
        assert_eq!(router(b"jan/01/1970 00:00:00"), Some(0));
        assert_eq!(router(b"jan/02/1970 00:00:01"), Some(86_401));
        assert_eq!(router(b"dec/31/1969 23:59:59"), Some(-1));
        assert_eq!(router(b"feb/29/2024 23:59:59"), Some(1_709_251_199));
        assert_eq!(router(b"2024-02-29 23:59:59"), Some(1_709_251_199));
    }

    #[test]
    fn router_date_garbage() {
        for bad in [
            &b""[..],
            b"garbage",
            b"2024-01-31",
            b"12:00:00",
            b"2024-01-31T12:00:00",
            b"2024-01-31 12:00",
            b"2024-01-31  12:00:00",
            b"2024-1-31 12:00:00",
            b"2024-13-31 12:00:00",
            b"2023-02-29 12:00:00",
            b"2024-01-31 24:00:00",
            b"2024-01-31 12:60:00",
            b"foo/31/2024 12:00:00",
            b"jan/32/2024 12:00:00",
            b"j\xffn/31/2024 12:00:00",
            b"2024-01-31 12:00:0\xff",
            b"-024-01-31 12:00:00",
        ] {
            assert_eq!(router(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let e = parse_router_date(b"nope").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("invalid RouterOS date \"nope\": expected `<date> hh:mm:ss`")
        );
    }

    #[test]
    fn http_dates() {
        let ok = |s: &str| parse_http_date(s.as_bytes()).map(Timestamp::unix);
        assert_eq!(ok("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(ok("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(ok("Thu, 29 Feb 2024 23:59:59 GMT"), Some(1_709_251_199));
        assert_eq!(
            Timestamp::from_unix(784_111_777).to_http_date(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37 GMT ",
            " Sun, 06 Nov 1994 08:49:37 GMT",
            "Mon, 06 Nov 1994 08:49:37 GMT", // wrong day name
            "sun, 06 Nov 1994 08:49:37 GMT", // case-sensitive
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850
            "Sun Nov  6 08:49:37 1994",       // asctime
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:60 GMT",
            "Fri, 30 Feb 2024 00:00:00 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 06 Nov 1994T08:49:37 GMT",
            "Sun, 0x Nov 1994 08:49:37 GMT",
            "2024-02-29T23:59:59Z",
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn http_dates_round_trip(secs in MIN_RFC3339..=MAX_RFC3339) {
            let t = Timestamp(secs);
            proptest::prop_assert_eq!(parse_http_date(t.to_http_date().as_bytes()), Some(t));
        }

        #[test]
        fn http_date_garbage_never_panics(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let _ = parse_http_date(&raw);
        }
    }

    #[test]
    fn arithmetic() {
        let t = Timestamp::from_unix(1_000);
        assert_eq!(t.plus_secs(-1_000).unix(), 0);
        assert_eq!(t.plus_hours(24).unix(), 87_400);
        assert_eq!(
            t.plus_hours(u32::MAX).unix(),
            1_000 + i64::from(u32::MAX) * 3_600
        );
        assert_eq!(Timestamp::from_unix(i64::MAX).plus_secs(1).unix(), i64::MAX);
        assert_eq!(
            Timestamp::from_unix(i64::MIN).plus_secs(-1).unix(),
            i64::MIN
        );
        assert_eq!(
            Timestamp::from_unix(i64::MAX).plus_hours(1).unix(),
            i64::MAX
        );
        assert_eq!(t.secs_since(Timestamp::from_unix(400)), 600);
        assert_eq!(Timestamp::from_unix(400).secs_since(t), -600);
        assert_eq!(
            Timestamp::from_unix(i64::MIN).secs_since(Timestamp::from_unix(1)),
            i64::MIN
        );
        assert!(Timestamp::from_unix(1) < Timestamp::from_unix(2));
    }

    #[test]
    fn now_is_recent() {
        // 2024-01-01; any sane machine running the tests is past this.
        assert!(Timestamp::now().unix() > 1_704_067_200);
    }

    proptest! {
        #[test]
        fn rfc3339_round_trip(secs in 0i64..=MAX_RFC3339) {
            let t = Timestamp::from_unix(secs);
            prop_assert_eq!(parse_rfc3339(t.to_rfc3339().as_bytes()), Ok(t));
        }

        #[test]
        fn rfc3339_round_trip_before_1970(secs in MIN_RFC3339..0) {
            let t = Timestamp::from_unix(secs);
            prop_assert_eq!(parse_rfc3339(t.to_rfc3339().as_bytes()), Ok(t));
        }

        #[test]
        fn router_date_agrees_with_rfc3339(secs in 0i64..=MAX_RFC3339) {
            // The router's ISO form is RFC 3339 with a space and no zone.
            let t = Timestamp::from_unix(secs);
            let text = t.to_rfc3339().replace('T', " ").replace('Z', "");
            prop_assert_eq!(parse_router_date(text.as_bytes()), Ok(t));
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_rfc3339(&bytes);
            let _ = parse_router_date(&bytes);
        }

        #[test]
        fn formatting_never_panics(secs in any::<i64>()) {
            let s = Timestamp::from_unix(secs).to_rfc3339();
            prop_assert_eq!(s.len(), 20);
        }
    }
}
