//! RouterOS duration values: `1w2d3h4m5s`, `1ms164us`, `6w6d18:33:07`, `00:00:05.123`.
//!
//! The router prints durations either as unit runs (largest unit first) or
//! with a trailing `hh:mm:ss` clock part, optionally after `w`/`d` units.
//! Parsing is strict about the shape (so garbage is reported, not guessed at)
//! and uses checked arithmetic throughout, because the input comes straight
//! off the wire and must never panic the agent.

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

/// How many characters of offending input an error message keeps; enough to
/// recognise the value in a log without letting a huge reply flood it.
const EXCERPT_CHARS: usize = 64;

/// Lossy UTF-8 excerpt of `input` for error messages, truncated with `…`.
///
/// Shared by the value-parsing modules so all their errors look alike.
pub(crate) fn excerpt(input: &[u8]) -> String {
    // A char is at most 4 bytes, so this slice always holds enough text,
    // and we never decode a multi-megabyte value just to print 64 chars.
    let head = input.get(..EXCERPT_CHARS * 4).unwrap_or(input);
    let lossy = String::from_utf8_lossy(head);
    let mut chars = lossy.chars();
    let mut out: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() || head.len() < input.len() {
        out.push('…');
    }
    out
}

/// Why a duration was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DurationErrorReason {
    /// The value was empty.
    Empty,
    /// A unit (or other text) appeared where a number was expected.
    MissingNumber,
    /// A number was not followed by a unit.
    MissingUnit,
    /// Letters that are not one of `w d h m s ms us ns`.
    UnknownUnit,
    /// A byte that belongs to no part of the syntax.
    UnexpectedByte,
    /// Units repeated or not largest-first (RouterOS never writes that).
    UnitOrder,
    /// The `hh:mm:ss[.frac]` part is malformed.
    BadClock,
    /// The value does not fit in a `std::time::Duration`.
    Overflow,
}

impl fmt::Display for DurationErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty",
            Self::MissingNumber => "expected a number",
            Self::MissingUnit => "number without a unit",
            Self::UnknownUnit => "unknown unit",
            Self::UnexpectedByte => "unexpected character",
            Self::UnitOrder => "units repeated or out of order",
            Self::BadClock => "malformed hh:mm:ss part",
            Self::Overflow => "value too large",
        })
    }
}

/// A RouterOS duration that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: DurationErrorReason,
}

impl DurationError {
    fn new(input: &[u8], reason: DurationErrorReason) -> Self {
        Self {
            input: excerpt(input),
            reason,
        }
    }

    /// The offending input (lossy UTF-8, truncated).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was rejected.
    pub fn reason(&self) -> DurationErrorReason {
        self.reason
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` quotes and escapes, so control bytes cannot forge log lines.
        write!(
            f,
            "invalid RouterOS duration {:?}: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for DurationError {}

/// Units largest first; the index is the ordering rank.
const UNITS: [&[u8]; 8] = [b"w", b"d", b"h", b"m", b"s", b"ms", b"us", b"ns"];
/// Rank of `h`: a clock part stands for h/m/s, so it may only follow w or d.
const HOUR_RANK: usize = 2;

const SECS_PER_MINUTE: u64 = 60;
const SECS_PER_HOUR: u64 = 60 * SECS_PER_MINUTE;
const SECS_PER_DAY: u64 = 24 * SECS_PER_HOUR;
const SECS_PER_WEEK: u64 = 7 * SECS_PER_DAY;

/// Parses a RouterOS duration such as `1w2d3h4m5s`, `500ms` or `1d02:03:04`.
pub fn parse_duration(s: &[u8]) -> Result<Duration, DurationError> {
    use DurationErrorReason as R;
    let err = |reason| DurationError::new(s, reason);
    if s.is_empty() {
        return Err(err(R::Empty));
    }

    let mut total = Duration::ZERO;
    let mut last_rank: Option<usize> = None;
    let mut rest = s;
    while !rest.is_empty() {
        let (digits, after) = split_while(rest, u8::is_ascii_digit);
        if digits.is_empty() {
            let (letters, _) = split_while(rest, u8::is_ascii_alphabetic);
            return Err(err(if letters.is_empty() {
                R::UnexpectedByte
            } else if unit_rank(letters).is_some() {
                R::MissingNumber
            } else {
                R::UnknownUnit
            }));
        }
        let n = parse_u64(digits).ok_or_else(|| err(R::Overflow))?;

        if let Some(clock) = after.strip_prefix(b":") {
            if last_rank.is_some_and(|r| r >= HOUR_RANK) {
                return Err(err(R::UnitOrder));
            }
            let part = parse_clock(n, clock).map_err(err)?;
            // The clock part is always last, so we are done.
            return total.checked_add(part).ok_or_else(|| err(R::Overflow));
        }

        let (letters, after_unit) = split_while(after, u8::is_ascii_alphabetic);
        if letters.is_empty() {
            return Err(err(if after.is_empty() {
                R::MissingUnit
            } else {
                R::UnexpectedByte
            }));
        }
        let rank = unit_rank(letters).ok_or_else(|| err(R::UnknownUnit))?;
        if last_rank.is_some_and(|r| rank <= r) {
            return Err(err(R::UnitOrder));
        }
        last_rank = Some(rank);
        let part = unit_value(rank, n).ok_or_else(|| err(R::Overflow))?;
        total = total.checked_add(part).ok_or_else(|| err(R::Overflow))?;
        rest = after_unit;
    }
    Ok(total)
}

/// Parses `mm:ss[.frac]` after an already-read hour count.
fn parse_clock(hours: u64, s: &[u8]) -> Result<Duration, DurationErrorReason> {
    use DurationErrorReason as R;
    let (minutes, s) = two_digits(s).ok_or(R::BadClock)?;
    let s = s.strip_prefix(b":").ok_or(R::BadClock)?;
    let (seconds, s) = two_digits(s).ok_or(R::BadClock)?;
    if minutes >= 60 || seconds >= 60 {
        return Err(R::BadClock);
    }
    let nanos = match s {
        [] => 0,
        [b'.', frac @ ..] if !frac.is_empty() && frac.iter().all(u8::is_ascii_digit) => {
            // Beyond nanoseconds Duration has no precision; truncate.
            let mut nanos = 0u32;
            for i in 0..9 {
                let digit = frac.get(i).map_or(0, |b| u32::from(b - b'0'));
                nanos = nanos * 10 + digit;
            }
            nanos
        }
        _ => return Err(R::BadClock),
    };
    let secs = hours
        .checked_mul(SECS_PER_HOUR)
        .and_then(|h| h.checked_add(minutes * SECS_PER_MINUTE + seconds))
        .ok_or(R::Overflow)?;
    Ok(Duration::new(secs, nanos))
}

/// Exactly two ASCII digits, as RouterOS always zero-pads clock fields.
fn two_digits(s: &[u8]) -> Option<(u64, &[u8])> {
    match s {
        [a, b, rest @ ..] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some((u64::from(a - b'0') * 10 + u64::from(b - b'0'), rest))
        }
        _ => None,
    }
}

fn unit_rank(letters: &[u8]) -> Option<usize> {
    UNITS.iter().position(|u| *u == letters)
}

fn unit_value(rank: usize, n: u64) -> Option<Duration> {
    let secs = |per: u64| n.checked_mul(per).map(Duration::from_secs);
    match rank {
        0 => secs(SECS_PER_WEEK),
        1 => secs(SECS_PER_DAY),
        2 => secs(SECS_PER_HOUR),
        3 => secs(SECS_PER_MINUTE),
        4 => Some(Duration::from_secs(n)),
        5 => Some(Duration::from_millis(n)),
        6 => Some(Duration::from_micros(n)),
        7 => Some(Duration::from_nanos(n)),
        _ => None,
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn split_while(s: &[u8], pred: impl Fn(&u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|b| pred(b)).count();
    s.split_at(n)
}

/// Formats a duration the way RouterOS does, e.g. `1w2d3h4m5s`, `0s`, `500ms`.
///
/// Whole seconds only, unless the duration is under one second: then the
/// sub-second part is written as `ms`/`us`/`ns` runs (`1ms164us`) so short
/// values do not collapse to `0s`.
pub fn format_duration(d: Duration) -> String {
    let mut out = String::new();
    let secs = d.as_secs();
    if secs == 0 {
        let nanos = d.subsec_nanos();
        if nanos == 0 {
            return "0s".to_owned();
        }
        push_part(&mut out, u64::from(nanos / 1_000_000), "ms");
        push_part(&mut out, u64::from(nanos / 1_000 % 1_000), "us");
        push_part(&mut out, u64::from(nanos % 1_000), "ns");
        return out;
    }
    push_part(&mut out, secs / SECS_PER_WEEK, "w");
    push_part(&mut out, secs % SECS_PER_WEEK / SECS_PER_DAY, "d");
    push_part(&mut out, secs % SECS_PER_DAY / SECS_PER_HOUR, "h");
    push_part(&mut out, secs % SECS_PER_HOUR / SECS_PER_MINUTE, "m");
    push_part(&mut out, secs % SECS_PER_MINUTE, "s");
    out
}

fn push_part(out: &mut String, n: u64, unit: &str) {
    if n != 0 {
        // Writing to a String cannot fail.
        let _ = write!(out, "{n}{unit}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ok(s: &str) -> Duration {
        match parse_duration(s.as_bytes()) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn reason(s: &[u8]) -> DurationErrorReason {
        match parse_duration(s) {
            Ok(d) => panic!("{s:?} should fail, got {d:?}"),
            Err(e) => e.reason(),
        }
    }

    #[test]
    fn unit_forms() {
        assert_eq!(
            ok("1w2d3h4m5s"),
            secs(604_800 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5)
        );
        assert_eq!(ok("5s"), secs(5));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("1ms164us"), Duration::from_micros(1_164));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("3ns"), Duration::from_nanos(3));
        assert_eq!(ok("1h"), secs(3_600));
        assert_eq!(ok("2m"), secs(120));
        assert_eq!(ok("1s500ms"), Duration::from_millis(1_500));
    }

    #[test]
    fn clock_forms() {
        assert_eq!(
            ok("6w6d18:33:07"),
            secs(6 * 604_800 + 6 * 86_400 + 18 * 3_600 + 33 * 60 + 7)
        );
        assert_eq!(ok("18:33:07"), secs(18 * 3_600 + 33 * 60 + 7));
        assert_eq!(ok("00:00:05"), secs(5));
        assert_eq!(ok("1d02:03:04"), secs(86_400 + 2 * 3_600 + 3 * 60 + 4));
        assert_eq!(ok("00:00:05.123"), Duration::from_millis(5_123));
        assert_eq!(ok("00:00:00.5"), Duration::from_millis(500));
        assert_eq!(ok("00:00:01.1234567891"), Duration::new(1, 123_456_789));
        assert_eq!(ok("100:00:00"), secs(360_000));
    }

    #[test]
    fn errors() {
        use DurationErrorReason as R;
        assert_eq!(reason(b""), R::Empty);
        assert_eq!(reason(b"abc"), R::UnknownUnit);
        assert_eq!(reason(b"5x"), R::UnknownUnit);
        assert_eq!(reason(b"5S"), R::UnknownUnit);
        assert_eq!(reason(b"5"), R::MissingUnit);
        assert_eq!(reason(b"s"), R::MissingNumber);
        assert_eq!(reason(b" 5s"), R::UnexpectedByte);
        assert_eq!(reason(b"5s "), R::UnexpectedByte);
        assert_eq!(reason(b"-5s"), R::UnexpectedByte);
        assert_eq!(reason(b"5.5s"), R::UnexpectedByte);
        assert_eq!(reason(b"5s5s"), R::UnitOrder);
        assert_eq!(reason(b"5s1m"), R::UnitOrder);
        assert_eq!(reason(b"1h00:00:01"), R::UnitOrder);
        assert_eq!(reason(b"00:60:00"), R::BadClock);
        assert_eq!(reason(b"00:00:60"), R::BadClock);
        assert_eq!(reason(b"00:0:05"), R::BadClock);
        assert_eq!(reason(b"00:00"), R::BadClock);
        assert_eq!(reason(b"00:00:05."), R::BadClock);
        assert_eq!(reason(b"00:00:05x"), R::BadClock);
        assert_eq!(reason(b"00:00:05:00"), R::BadClock);
        assert_eq!(reason(b"99999999999999999999s"), R::Overflow);
        assert_eq!(reason(b"18446744073709551615w"), R::Overflow);
        assert_eq!(reason(b"18446744073709551615s1000ms"), R::Overflow);
        assert_eq!(reason(b"18446744073709551615:00:00"), R::Overflow);
        assert_eq!(reason(b"\xff5s"), R::UnexpectedByte);
    }

    #[test]
    fn error_display_and_excerpt() {
        let e = parse_duration(b"abc").err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(r#"invalid RouterOS duration "abc": unknown unit"#)
        );
        let long = vec![b'x'; 1_000];
        let e = parse_duration(&long).err();
        let input = e.as_ref().map(DurationError::input).unwrap_or_default();
        assert_eq!(input.chars().count(), 65);
        assert!(input.ends_with('…'));
        assert_eq!(excerpt(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(excerpt(&[b'y'; 64]), "y".repeat(64));
    }

    #[test]
    fn format_examples() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(secs(5)), "5s");
        assert_eq!(
            format_duration(secs(604_800 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5)),
            "1w2d3h4m5s"
        );
        assert_eq!(format_duration(secs(86_400)), "1d");
        assert_eq!(format_duration(secs(3_660)), "1h1m");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_micros(1_164)), "1ms164us");
        assert_eq!(format_duration(Duration::from_nanos(3)), "3ns");
        // Sub-second remainder is dropped once there are whole seconds.
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1s");
    }

    proptest! {
        #[test]
        fn whole_seconds_round_trip(n in 0u64..=10 * 366 * 86_400) {
            let d = secs(n);
            prop_assert_eq!(parse_duration(format_duration(d).as_bytes()), Ok(d));
        }

        #[test]
        fn sub_second_round_trip(n in 0u32..1_000_000_000) {
            let d = Duration::from_nanos(u64::from(n));
            prop_assert_eq!(parse_duration(format_duration(d).as_bytes()), Ok(d));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_duration(&bytes);
        }

        #[test]
        fn parse_never_panics_near_syntax(s in "[0-9wdhmsun:.]{0,40}") {
            let _ = parse_duration(s.as_bytes());
        }
    }
}
