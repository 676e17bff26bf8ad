//! The router's offset from UTC, from `/system/clock`.
//!
//! Mikhmon writes expiry dates in the router's local time. RouterOS reports
//! the offset it currently applies as the read-only `gmt-offset`
//! (`+07:00`), after the time zone and any daylight saving time; that is
//! what we use. Only when it is missing or unreadable do we fall back to
//! a small table of `time-zone-name`s common among Mikhmon users (no time
//! zone database: this is the one place the agent needs one).

/// Seconds east of UTC from `gmt-offset`: `+07:00`, `-03:30`, `+0545`, or
/// plain seconds (`25200`), as some versions print it.
pub fn parse_gmt_offset(raw: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    // `±HHMM` first: `+0545` is 05:45, not 545 seconds.
    hours_minutes(text).or_else(|| {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs = text.parse::<i32>().ok()?;
        (secs.abs() <= 14 * 3_600).then_some(secs)
    })
}

fn hours_minutes(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some(hm) => hm,
        None if rest.len() == 4 => rest.split_at(2),
        None => return None,
    };
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3_600 + m * 60))
}

/// Standard offsets of zones without daylight saving time that Mikhmon
/// operators use most (Indonesia first: WIB, WITA, WIT).
const ZONES: &[(&str, i32)] = &[
    ("Asia/Jakarta", 7 * 3_600),
    ("Asia/Pontianak", 7 * 3_600),
    ("Asia/Makassar", 8 * 3_600),
    ("Asia/Jayapura", 9 * 3_600),
    ("Asia/Kuala_Lumpur", 8 * 3_600),
    ("Asia/Singapore", 8 * 3_600),
    ("Asia/Manila", 8 * 3_600),
    ("Asia/Bangkok", 7 * 3_600),
    ("Asia/Ho_Chi_Minh", 7 * 3_600),
    ("Asia/Kolkata", 5 * 3_600 + 1_800),
    ("Asia/Dhaka", 6 * 3_600),
    ("Asia/Karachi", 5 * 3_600),
    ("Asia/Kathmandu", 5 * 3_600 + 2_700),
    ("Africa/Lagos", 3_600),
    ("Africa/Nairobi", 3 * 3_600),
    ("Etc/UTC", 0),
    ("UTC", 0),
];

/// The fixed offset of a zone in [`ZONES`].
pub fn zone_offset(name: &[u8]) -> Option<i32> {
    ZONES
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|&(_, off)| off)
}

/// The offset to use and where it came from, or None when neither
/// `gmt-offset` nor the zone name gives one.
pub fn router_offset(gmt_offset: Option<&[u8]>, zone: Option<&[u8]>) -> Option<(i32, String)> {
    if let Some(off) = gmt_offset.and_then(parse_gmt_offset) {
        return Some((off, "gmt-offset".to_owned()));
    }
    let zone = zone?;
    zone_offset(zone).map(|off| {
        (
            off,
            format!("time-zone-name {}", String::from_utf8_lossy(zone)),
        )
    })
}

/// `+07:00` for 25200.
pub fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3_600, a % 3_600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmt_offsets() {
        assert_eq!(parse_gmt_offset(b"+07:00"), Some(25_200));
        assert_eq!(parse_gmt_offset(b"-03:30"), Some(-12_600));
        assert_eq!(parse_gmt_offset(b"+00:00"), Some(0));
        assert_eq!(parse_gmt_offset(b"+0545"), Some(20_700));
        assert_eq!(parse_gmt_offset(b"25200"), Some(25_200));
        assert_eq!(parse_gmt_offset(b"-3600"), Some(-3_600));
        for bad in [
            &b""[..],
            b"+7",
            b"+7:00",
            b"+07:60",
            b"+15:00",
            b"manual",
            b"99999",
            b"\xff",
        ] {
            assert_eq!(parse_gmt_offset(bad), None, "{bad:?}");
        }
        assert_eq!(format_offset(25_200), "+07:00");
        assert_eq!(format_offset(-12_600), "-03:30");
    }

    #[test]
    fn fallbacks() {
        assert_eq!(
            router_offset(Some(b"+08:00"), Some(b"Asia/Jakarta")).map(|o| o.0),
            Some(28_800)
        );
        assert_eq!(
            router_offset(None, Some(b"Asia/Jakarta")),
            Some((25_200, "time-zone-name Asia/Jakarta".into()))
        );
        assert_eq!(
            router_offset(Some(b"junk"), Some(b"Asia/Makassar")).map(|o| o.0),
            Some(28_800)
        );
        assert_eq!(router_offset(None, Some(b"Europe/Berlin")), None);
        assert_eq!(router_offset(None, Some(b"manual")), None);
        assert_eq!(router_offset(None, None), None);
    }
}
