//! Mikhmon's user-profile metadata: the header of the `on-login` script.
//!
//! Mikhmon v3 (`hotspot/adduserprofile.php`, `userprofilebyname.php`) keeps
//! a profile's settings as the first statement of its `on-login` script:
//!
//! ```text
//! :put (",rem,5000,1d,6000,,Disable,"); {…script…}      expiry mode set
//! :put (",,5000,,,noexp,Enable,")…                      expiry mode "none"
//! ```
//!
//! i.e. `,<expmode>,<price>,<validity>,<selling price>,,<lock>,` and, with no
//! expiry, `,,<price>,,,noexp,<lock>,`. Mikhmon itself reads the fields
//! with `explode(",", $onlogin)[n]`: 1 = mode, 2 = price, 3 = validity,
//! 4 = selling price, 6 = lock (`Enable`/`Disable`). Empty prices are
//! written as `0`.

use std::fmt;
use std::time::Duration;

use crate::duration::parse_duration;

/// What Mikhmon does when a user's validity is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryMode {
    /// `rem`: remove the user.
    Remove,
    /// `ntf`: "notice": `limit-uptime=1s`, so the user sees Mikhmon's page.
    Notice,
    /// `remc`: remove, and record the sale in `/system script`.
    RemoveRecord,
    /// `ntfc`: notice, and record the sale.
    NoticeRecord,
    /// `0` or `noexp`: no expiry at all.
    None,
}

impl ExpiryMode {
    /// Mikhmon's code for the mode.
    pub fn code(self) -> &'static str {
        match self {
            Self::Remove => "rem",
            Self::Notice => "ntf",
            Self::RemoveRecord => "remc",
            Self::NoticeRecord => "ntfc",
            Self::None => "none",
        }
    }
}

impl fmt::Display for ExpiryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A profile's Mikhmon settings, fields kept as the bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileMeta {
    pub mode: ExpiryMode,
    /// Mikhmon's "Price" (what the sales record counts).
    pub price: Vec<u8>,
    /// Mikhmon's "Validity", a RouterOS duration such as `1d` or `12h`;
    /// empty with no expiry.
    pub validity: Vec<u8>,
    /// Mikhmon's "Selling Price" (printed on the voucher when set).
    pub selling_price: Vec<u8>,
    /// "Lock user" (`Enable`): bind the user to the MAC of its first login.
    pub lock: bool,
}

/// Why a header that looks like Mikhmon's could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validity that is not a whole number of hours (`valid_hours` is an
/// integer), or not a duration at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidityError {
    Empty,
    Invalid(String),
    NotWholeHours(Duration),
    TooLong,
}

impl fmt::Display for ValidityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no validity"),
            Self::Invalid(e) => write!(f, "validity: {e}"),
            Self::NotWholeHours(d) => write!(
                f,
                "validity {} is not a whole number of hours",
                crate::duration::format_duration(*d)
            ),
            Self::TooLong => f.write_str("validity too long"),
        }
    }
}

impl ProfileMeta {
    /// The validity in whole hours (`1d` = 24, `1w` = 168, `12h` = 12).
    pub fn valid_hours(&self) -> Result<u32, ValidityError> {
        let raw = self.validity.trim_ascii();
        if raw.is_empty() {
            return Err(ValidityError::Empty);
        }
        let d = parse_duration(raw).map_err(|e| ValidityError::Invalid(e.to_string()))?;
        if d.is_zero() {
            return Err(ValidityError::Empty);
        }
        if d.subsec_nanos() != 0 || d.as_secs() % 3_600 != 0 {
            return Err(ValidityError::NotWholeHours(d));
        }
        u32::try_from(d.as_secs() / 3_600).map_err(|_| ValidityError::TooLong)
    }

    /// The price for `price_sell`: the selling price, or the price when no
    /// selling price is set (`0` or empty), as Mikhmon's own voucher
    /// print does.
    pub fn sell_price(&self) -> &[u8] {
        match self.selling_price.trim_ascii() {
            b"" | b"0" => &self.price,
            _ => &self.selling_price,
        }
    }
}

const HEADER_START: &[u8] = b":put (\"";

/// Reads the Mikhmon header of an `on-login` script.
///
/// `None` when the script has no such header (not a Mikhmon profile, or
/// an empty script); `Some(Err)` when it starts like one but its fields
/// do not fit.
pub fn parse_on_login(script: &[u8]) -> Option<Result<ProfileMeta, HeaderError>> {
    let rest = script.trim_ascii_start().strip_prefix(HEADER_START)?;
    // The header is one string literal; Mikhmon never puts `"` inside it.
    let end = rest.iter().position(|&b| b == b'"')?;
    let header = &rest[..end];
    if !header.starts_with(b",") {
        return None;
    }
    let fields: Vec<&[u8]> = header.split(|&b| b == b',').collect();
    let err = |m: &str| Some(Err(HeaderError(m.to_owned())));
    // "" mode price validity sprice (""|noexp) lock ""
    if fields.len() < 7 {
        return err("Mikhmon on-login header has fewer than 7 fields");
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or_default().to_vec();
    let mode = match (fields[1], fields[5]) {
        (b"rem", _) => ExpiryMode::Remove,
        (b"ntf", _) => ExpiryMode::Notice,
        (b"remc", _) => ExpiryMode::RemoveRecord,
        (b"ntfc", _) => ExpiryMode::NoticeRecord,
        (b"" | b"0", _) => ExpiryMode::None,
        _ => return err("unknown Mikhmon expiry mode"),
    };
    Some(Ok(ProfileMeta {
        mode,
        price: field(2),
        validity: if mode == ExpiryMode::None {
            Vec::new()
        } else {
            field(3)
        },
        selling_price: field(4),
        lock: fields[6] == b"Enable",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script Mikhmon v3 writes for mode `rem` (abridged after the header).
    const REM: &[u8] = b":put (\",rem,5000,1d,6000,,Disable,\"); {:local comment [ /ip hotspot user get [/ip hotspot user find where name=\"$user\"] comment]; :local ucode [:pic $comment 0 2]; :if ($ucode = \"vc\" or $ucode = \"up\" or $comment = \"\") do={ :local date [ /system clock get date ];}}";

    fn meta(script: &[u8]) -> ProfileMeta {
        match parse_on_login(script) {
            Some(Ok(m)) => m,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(script)),
        }
    }

    #[test]
    fn every_expiry_mode() {
        let m = meta(REM);
        assert_eq!(m.mode, ExpiryMode::Remove);
        assert_eq!(m.price, b"5000");
        assert_eq!(m.validity, b"1d");
        assert_eq!(m.selling_price, b"6000");
        assert!(!m.lock);
        assert_eq!(m.valid_hours(), Ok(24));
        assert_eq!(m.sell_price(), b"6000");
        for (code, mode) in [
            ("ntf", ExpiryMode::Notice),
            ("remc", ExpiryMode::RemoveRecord),
            ("ntfc", ExpiryMode::NoticeRecord),
        ] {
            let script = format!(":put (\",{code},3000,12h,0,,Enable,\"); {{:local x 1}}");
            let m = meta(script.as_bytes());
            assert_eq!(m.mode, mode);
            assert_eq!(m.mode.code(), code);
            assert_eq!(m.valid_hours(), Ok(12));
            assert!(m.lock);
            // No selling price: the price is what the customer pays.
            assert_eq!(m.sell_price(), b"3000");
        }
    }

    #[test]
    fn no_expiry_forms() {
        // Mode "0" with a price: Mikhmon writes the `noexp` form.
        let m = meta(b":put (\",,2000,,,noexp,Enable,\"); [:local mac $\"mac-address\"]");
        assert_eq!(m.mode, ExpiryMode::None);
        assert_eq!(m.price, b"2000");
        assert!(m.validity.is_empty());
        assert_eq!(m.valid_hours(), Err(ValidityError::Empty));
        assert!(m.lock);
        let m = meta(b":put (\",0,0,1d,0,,Disable,\")");
        assert_eq!(m.mode, ExpiryMode::None);
    }

    #[test]
    fn validities() {
        let hours = |v: &str| {
            let mut m = meta(REM);
            m.validity = v.as_bytes().to_vec();
            m.valid_hours()
        };
        assert_eq!(hours("30d"), Ok(720));
        assert_eq!(hours("1w"), Ok(168));
        assert_eq!(hours("1w2d"), Ok(216));
        assert_eq!(hours("3h"), Ok(3));
        assert_eq!(hours("1d00:00:00"), Ok(24));
        assert!(matches!(hours("30m"), Err(ValidityError::NotWholeHours(_))));
        assert!(matches!(
            hours("1h30m"),
            Err(ValidityError::NotWholeHours(_))
        ));
        assert!(matches!(hours("soon"), Err(ValidityError::Invalid(_))));
        assert_eq!(hours(""), Err(ValidityError::Empty));
        assert_eq!(hours("0s"), Err(ValidityError::Empty));
        assert_eq!(
            hours("30m").map_err(|e| e.to_string()),
            Err("validity 30m is not a whole number of hours".into())
        );
    }

    #[test]
    fn not_mikhmon() {
        for script in [
            &b""[..],
            b":log info \"hello\"",
            b":put (\"hello\")",
            b":put \",rem,1,1d,1,,Disable,\"",
            b":put (\",rem,1,1d",
        ] {
            assert_eq!(parse_on_login(script), None, "{script:?}");
        }
        assert!(matches!(
            parse_on_login(b":put (\",zap,1,1d,1,,Disable,\")"),
            Some(Err(_))
        ));
        assert!(matches!(
            parse_on_login(b":put (\",rem,1,1d\")"),
            Some(Err(_))
        ));
    }

    #[test]
    fn odd_bytes_and_whitespace() {
        let m = meta(b"\r\n  :put (\",rem,Rp\xa05.000,1d,\xff,,Disable,\")");
        assert_eq!(m.price, b"Rp\xa05.000");
        assert_eq!(m.selling_price, b"\xff");
        assert_eq!(m.sell_price(), b"\xff");
    }
}
