//! The router's offset from UTC, from `/system/clock`.
//!
//! Mikhmon writes expiry dates in the router's local time. RouterOS reports
//! the offset it currently applies as the read-only `gmt-offset`
//! (`+07:00`), after the time zone and any daylight saving time; that is
//! what we use, read by the one parser of all its forms
//! ([`GmtOffset::parse`]). Only when it is missing or unreadable do we fall
//! back to a small table of `time-zone-name`s common among Mikhmon users
//! (no time zone database: this is the one place the agent needs one).

use crate::gmt_offset::GmtOffset;

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

/// The fixed offset of a zone in `ZONES`.
pub fn zone_offset(name: &[u8]) -> Option<GmtOffset> {
    ZONES
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .and_then(|&(_, off)| GmtOffset::from_secs(off))
}

/// The offset to use and where it came from, or None when neither
/// `gmt-offset` nor the zone name gives one.
pub fn router_offset(
    gmt_offset: Option<&[u8]>,
    zone: Option<&[u8]>,
) -> Option<(GmtOffset, String)> {
    if let Some(off) = gmt_offset.and_then(GmtOffset::parse) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks() {
        assert_eq!(
            router_offset(Some(b"+08:00"), Some(b"Asia/Jakarta")).map(|o| o.0.secs()),
            Some(28_800)
        );
        assert_eq!(
            router_offset(None, Some(b"Asia/Jakarta")),
            Some((
                GmtOffset::from_secs(25_200).unwrap(),
                "time-zone-name Asia/Jakarta".into()
            ))
        );
        assert_eq!(
            router_offset(Some(b"junk"), Some(b"Asia/Makassar")).map(|o| o.0.secs()),
            Some(28_800)
        );
        assert_eq!(router_offset(None, Some(b"Europe/Berlin")), None);
        assert_eq!(router_offset(None, Some(b"manual")), None);
        assert_eq!(router_offset(None, None), None);
        // Every gmt-offset form counts (the one parser's job, here wired).
        for form in [&b"+0700"[..], b"+07", b"25200"] {
            assert_eq!(
                router_offset(Some(form), None).map(|o| o.0.secs()),
                Some(25_200)
            );
        }
    }
}
