//! The router's offset from UTC as `/system/clock` prints it (`gmt-offset`),
//! read in one place: the agent's router clock ([`crate::agent::clock`])
//! and the Mikhmon import ([`crate::mikhmon`]) both use [`GmtOffset::parse`].
//!
//! RouterOS versions and tools print it in several forms; all are accepted:
//!
//! | form       | example            | meaning                  |
//! |------------|--------------------|--------------------------|
//! | `±HH:MM`   | `+07:00`, `-05:30` | hours and minutes        |
//! | `±HHMM`    | `+0545`, `-0330`   | hours and minutes        |
//! | `±HH`      | `+07`, `-05`       | whole hours              |
//! | seconds    | `25200`, `-18000`, `0` | seconds east of UTC |
//!
//! Seconds are a plain integer (no `+`) of up to five digits. Anything
//! else, or an offset beyond ±14 h (the widest on Earth), is refused: a
//! misread offset shifts the router's time by hours, and with router NTP
//! trusted that time decides voucher expiry.
//!
//! A negative plain integer can look like an hours form; then the hours
//! form wins: `-10` is −10 h (not −10 s) and `-1000` is −10:00 (not
//! −1000 s), while `-15` and `-3600`, which are no valid hours, are
//! seconds. No real offset is affected: they are whole quarter hours, and
//! the seconds forms of those never look like `-HH` or `-HHMM`.

use std::fmt;

/// ±14 h in seconds: UTC+14 (Kiribati) and UTC−12 are the extremes.
pub const MAX_SECS: i32 = 14 * 3_600;

/// Seconds east of UTC, within ±[`MAX_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GmtOffset(i32);

impl GmtOffset {
    pub const UTC: GmtOffset = GmtOffset(0);

    /// `None` beyond ±14 h.
    pub fn from_secs(secs: i32) -> Option<GmtOffset> {
        (secs.abs() <= MAX_SECS).then_some(GmtOffset(secs))
    }

    pub fn secs(self) -> i32 {
        self.0
    }

    /// Reads any of the forms in the module docs, exactly (no spaces).
    pub fn parse(raw: &[u8]) -> Option<GmtOffset> {
        let secs = match raw {
            [b'+', rest @ ..] => hours_form(rest)?,
            [b'-', rest @ ..] => -(hours_form(rest).or_else(|| seconds(rest))?),
            digits => seconds(digits)?,
        };
        GmtOffset::from_secs(secs)
    }

    /// `+07:00`; whole minutes only (the seconds are dropped).
    pub fn to_colon(self) -> String {
        let (sign, h, m) = self.parts();
        format!("{sign}{h:02}:{m:02}")
    }

    /// `+0700`; whole minutes only (the seconds are dropped).
    pub fn to_compact(self) -> String {
        let (sign, h, m) = self.parts();
        format!("{sign}{h:02}{m:02}")
    }

    /// `+07`, for whole hours only.
    pub fn to_hours(self) -> Option<String> {
        let (sign, h, _) = self.parts();
        (self.0 % 3_600 == 0).then(|| format!("{sign}{h:02}"))
    }

    /// `25200`, `-18000`.
    pub fn to_seconds(self) -> String {
        self.0.to_string()
    }

    fn parts(self) -> (char, u32, u32) {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let a = self.0.unsigned_abs();
        (sign, a / 3_600, a % 3_600 / 60)
    }
}

/// `+07:00` (with `:SS` appended in the unlikely case of leftover seconds,
/// so a log line never hides part of the offset).
impl fmt::Display for GmtOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_colon())?;
        match self.0.unsigned_abs() % 60 {
            0 => Ok(()),
            s => write!(f, ":{s:02}"),
        }
    }
}

/// `HH:MM`, `HHMM` or `HH` (after the sign) as seconds.
fn hours_form(rest: &[u8]) -> Option<i32> {
    match *rest {
        [h1, h2, b':', m1, m2] => hours_minutes([h1, h2], [m1, m2]),
        [h1, h2, m1, m2] => hours_minutes([h1, h2], [m1, m2]),
        [h1, h2] => hours_minutes([h1, h2], *b"00"),
        _ => None,
    }
}

/// Two-digit hours and minutes as seconds; `None` for minutes over 59,
/// beyond ±14 h or non-digits. Bounded here, not only by the caller, so
/// that `-1401` (no valid hours form) falls back to seconds like `-1500`.
fn hours_minutes(h: [u8; 2], m: [u8; 2]) -> Option<i32> {
    let digit = |b: u8| b.is_ascii_digit().then(|| i32::from(b - b'0'));
    let hours = digit(h[0])? * 10 + digit(h[1])?;
    let minutes = digit(m[0])? * 10 + digit(m[1])?;
    let secs = hours * 3_600 + minutes * 60;
    (minutes <= 59 && secs <= MAX_SECS).then_some(secs)
}

/// One to five ASCII digits (50400, the largest offset, has five).
fn seconds(digits: &[u8]) -> Option<i32> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits
        .iter()
        .try_fold(0i32, |acc, b| Some(acc * 10 + i32::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Option<i32> {
        GmtOffset::parse(s.as_bytes()).map(GmtOffset::secs)
    }

    #[test]
    fn every_form_routeros_prints() {
        assert_eq!(parse("+07:00"), Some(25_200));
        assert_eq!(parse("-05:30"), Some(-19_800));
        assert_eq!(parse("+00:00"), Some(0));
        // Beyond 14 h as hours, so seconds (found by proptest).
        assert_eq!(parse("-1401"), Some(-1_401));
        assert_eq!(parse("+14:01"), None);
        assert_eq!(parse("-00:00"), Some(0));
        assert_eq!(parse("+0545"), Some(20_700));
        assert_eq!(parse("-0330"), Some(-12_600));
        assert_eq!(parse("+07"), Some(25_200));
        assert_eq!(parse("-12"), Some(-43_200));
        assert_eq!(parse("25200"), Some(25_200));
        assert_eq!(parse("-18000"), Some(-18_000));
        assert_eq!(parse("-3600"), Some(-3_600));
        // Not a valid -HH or -HHMM: seconds.
        assert_eq!(parse("-15"), Some(-15));
        assert_eq!(parse("-1500"), Some(-1_500));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("+14:00"), Some(50_400));
        assert_eq!(parse("50400"), Some(50_400));
        assert_eq!(parse("-50400"), Some(-50_400));
        // The documented collisions: the hours reading wins.
        assert_eq!(parse("-10"), Some(-36_000));
        assert_eq!(parse("-1000"), Some(-36_000));
    }

    #[test]
    fn garbage_and_out_of_range_are_refused() {
        for bad in [
            "",
            "+",
            "-",
            "+7",
            "+7:00",
            "+07:0",
            "+07:60",
            "+15:00",
            "-14:01",
            "+15",
            "+1500",
            "+3600",
            "+25200",
            "+0",
            "50401",
            "-50401",
            "99999",
            "100000",
            "025200x",
            "07:00",
            " +07:00",
            "+07:00 ",
            "+-7",
            "--3600",
            "manual",
            "0x10",
            "+07.00",
            "1e3",
            "+٠٧:٠٠",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(GmtOffset::parse(b"\xff"), None);
        assert_eq!(GmtOffset::from_secs(MAX_SECS + 1), None);
        assert_eq!(GmtOffset::from_secs(-MAX_SECS - 1), None);
    }

    #[test]
    fn display() {
        let show = |s| GmtOffset::from_secs(s).map(|o| o.to_string());
        assert_eq!(show(25_200).as_deref(), Some("+07:00"));
        assert_eq!(show(-12_600).as_deref(), Some("-03:30"));
        assert_eq!(show(0).as_deref(), Some("+00:00"));
        assert_eq!(show(-61).as_deref(), Some("-00:01:01"));
    }

    /// Whether the seconds text of `secs` is also a valid `±HH` (`-10`
    /// to `-14`) or `±HHMM` (`-1000` to `-1400`, minutes up to 59, at
    /// most 14 h): the module docs' collisions.
    fn collides(secs: i32) -> bool {
        (-14..=-10).contains(&secs) || (-1_400..=-1_000).contains(&secs) && -secs % 100 <= 59
    }

    proptest! {
        #[test]
        fn whole_minutes_round_trip_in_the_minute_forms(minutes in -840i32..=840) {
            let off = GmtOffset::from_secs(minutes * 60).unwrap();
            prop_assert_eq!(GmtOffset::parse(off.to_colon().as_bytes()), Some(off));
            prop_assert_eq!(GmtOffset::parse(off.to_compact().as_bytes()), Some(off));
        }

        #[test]
        fn whole_hours_round_trip_in_the_hours_form(hours in -14i32..=14) {
            let off = GmtOffset::from_secs(hours * 3_600).unwrap();
            let text = off.to_hours().unwrap();
            prop_assert_eq!(GmtOffset::parse(text.as_bytes()), Some(off));
        }

        #[test]
        fn real_offsets_round_trip_in_every_form(quarters in -56i32..=56) {
            // Every real offset is a whole quarter hour.
            let off = GmtOffset::from_secs(quarters * 900).unwrap();
            prop_assert_eq!(GmtOffset::parse(off.to_colon().as_bytes()), Some(off));
            prop_assert_eq!(GmtOffset::parse(off.to_compact().as_bytes()), Some(off));
            prop_assert_eq!(GmtOffset::parse(off.to_seconds().as_bytes()), Some(off));
            if let Some(hours) = off.to_hours() {
                prop_assert_eq!(GmtOffset::parse(hours.as_bytes()), Some(off));
            }
        }

        #[test]
        fn plain_integers_within_14h_are_seconds(secs in -MAX_SECS..=MAX_SECS) {
            let got = parse(&secs.to_string());
            if collides(secs) {
                // `-10`, `-1000`: read as hours, as documented.
                prop_assert!(got.is_some_and(|g| g != secs && g % 60 == 0));
            } else {
                prop_assert_eq!(got, Some(secs));
            }
        }

        #[test]
        fn integers_beyond_14h_are_refused(secs in (MAX_SECS + 1)..=i32::MAX, neg in any::<bool>()) {
            let secs = if neg { -secs } else { secs };
            prop_assert_eq!(parse(&secs.to_string()), None);
        }

        #[test]
        fn whatever_parses_is_within_14h(raw in proptest::collection::vec(any::<u8>(), 0..8)) {
            if let Some(off) = GmtOffset::parse(&raw) {
                prop_assert!(off.secs().abs() <= MAX_SECS);
            }
        }

        #[test]
        fn offset_shaped_text_beyond_14h_is_refused(h in 15u32..=99, m in 0u32..=59, neg in any::<bool>()) {
            let sign = if neg { '-' } else { '+' };
            prop_assert_eq!(parse(&format!("{sign}{h:02}:{m:02}")), None);
            // `-15` is a plain integer, so seconds; `+15` is nothing.
            let hours = parse(&format!("{sign}{h:02}"));
            prop_assert_eq!(hours, neg.then(|| -(h as i32)));
        }
    }
}
