//! Mikhmon's hotspot user comments.
//!
//! - Generated users (`hotspot/generateuser.php`):
//!   `<mode>-<code>-<mm.dd.yy>-<note>`, e.g. `vc-482-01.15.25-` or
//!   `up-773-01.15.25-reseller budi`; `mode` is `vc` (voucher: name =
//!   password) or `up` (user/password), `code` a random 3-digit batch code
//!   shared by the users generated together, the date the generation day
//!   (PHP `date("m.d.y")`), `note` the operator's free text (often empty).
//! - Users added one by one (`hotspot/adduser.php`): `vc-<note>` or
//!   `up-<note>`.
//! - Used users: Mikhmon's `on-login` script replaces the comment with the
//!   expiry date, in the router's local time and date format:
//!   `jan/31/2024 12:00:00` (RouterOS 6 and 7 before 7.10) or
//!   `2024-01-31 12:00:00` (7.10 and later). The batch code is gone then.

use crate::clock::{Timestamp, parse_router_date};

/// `vc` or `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserMode {
    /// `vc-`: voucher, the password is the user name.
    Voucher,
    /// `up-`: user name and password.
    UserPassword,
}

impl UserMode {
    pub fn prefix(self) -> &'static [u8] {
        match self {
            Self::Voucher => b"vc",
            Self::UserPassword => b"up",
        }
    }
}

/// A parsed Mikhmon user comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MikhmonComment {
    /// Not used yet.
    Fresh {
        mode: UserMode,
        /// The batch code and date as one batch key (`vc-482-01.15.25`),
        /// for generated users; None for users added one by one.
        batch: Option<Vec<u8>>,
        /// The generation day, `YYYY-MM-DD`, for generated users.
        created: Option<String>,
        /// The free text after the date (generated) or after `vc-` (added
        /// one by one); may be empty.
        note: Vec<u8>,
    },
    /// Used: the expiry Mikhmon wrote.
    Used {
        /// The date and time as written, read as if it were UTC: it is the
        /// router's local time and needs its offset subtracted.
        local: Timestamp,
        /// Anything after the date and a space (Mikhmon writes nothing
        /// there; some forks append the old comment).
        note: Vec<u8>,
    },
}

/// Classifies a comment; None if it is not one of Mikhmon's.
pub fn parse_user_comment(raw: &[u8]) -> Option<MikhmonComment> {
    if let Some(used) = parse_used(raw) {
        return Some(used);
    }
    let (mode, rest) = if let Some(rest) = raw.strip_prefix(b"vc-") {
        (UserMode::Voucher, rest)
    } else if let Some(rest) = raw.strip_prefix(b"up-") {
        (UserMode::UserPassword, rest)
    } else {
        return None;
    };
    Some(match parse_generated(rest) {
        Some((code, created, note)) => {
            // `vc-` + code + `-` + mm.dd.yy
            let batch_len = 3 + code.len() + 1 + 8;
            MikhmonComment::Fresh {
                mode,
                batch: Some(raw.get(..batch_len).unwrap_or(raw).to_vec()),
                created: Some(created),
                note: note.to_vec(),
            }
        }
        None => MikhmonComment::Fresh {
            mode,
            batch: None,
            created: None,
            note: rest.to_vec(),
        },
    })
}

/// `<digits>-<mm.dd.yy>-<note>` → (code, `YYYY-MM-DD`, note).
fn parse_generated(rest: &[u8]) -> Option<(&[u8], String, &[u8])> {
    let dash = rest.iter().position(|&b| b == b'-')?;
    let code = &rest[..dash];
    if code.is_empty() || code.len() > 9 || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let after = &rest[dash + 1..];
    let (date, note) = match after {
        [m1, m2, b'.', d1, d2, b'.', y1, y2, b'-', note @ ..] => {
            ([*m1, *m2, *d1, *d2, *y1, *y2], note)
        }
        _ => return None,
    };
    if !date.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |a: u8, b: u8| u32::from(a - b'0') * 10 + u32::from(b - b'0');
    let (month, day, year) = (
        num(date[0], date[1]),
        num(date[2], date[3]),
        num(date[4], date[5]),
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // PHP `y` is two digits; Mikhmon appeared in 2018, so 20yy.
    Some((code, format!("20{year:02}-{month:02}-{day:02}"), note))
}

/// `jan/31/2024 12:00:00` or `2024-01-31 12:00:00`, alone or followed by a
/// space and more text.
fn parse_used(raw: &[u8]) -> Option<MikhmonComment> {
    // 19 bytes for the ISO form, 20 for the legacy one.
    for len in [19, 20] {
        let Some(date) = raw.get(..len) else {
            continue;
        };
        let note = match raw.get(len..) {
            Some([]) | None => &[][..],
            Some([b' ', note @ ..]) => note,
            Some(_) => continue,
        };
        if let Ok(local) = parse_router_date(date) {
            return Some(MikhmonComment::Used {
                local,
                note: note.to_vec(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(raw: &[u8]) -> (UserMode, Option<Vec<u8>>, Option<String>, Vec<u8>) {
        match parse_user_comment(raw) {
            Some(MikhmonComment::Fresh {
                mode,
                batch,
                created,
                note,
            }) => (mode, batch, created, note),
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn used(raw: &[u8]) -> (i64, Vec<u8>) {
        match parse_user_comment(raw) {
            Some(MikhmonComment::Used { local, note }) => (local.unix(), note),
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn generated_users() {
        assert_eq!(
            fresh(b"vc-482-01.15.25-"),
            (
                UserMode::Voucher,
                Some(b"vc-482-01.15.25".to_vec()),
                Some("2025-01-15".into()),
                vec![]
            )
        );
        assert_eq!(
            fresh(b"up-773-12.31.24-reseller budi"),
            (
                UserMode::UserPassword,
                Some(b"up-773-12.31.24".to_vec()),
                Some("2024-12-31".into()),
                b"reseller budi".to_vec()
            )
        );
        // The note may hold anything, `|` and `-` and odd bytes included.
        let (_, batch, _, note) = fresh(b"vc-100-06.01.24-a|b-\xff");
        assert_eq!(batch, Some(b"vc-100-06.01.24".to_vec()));
        assert_eq!(note, b"a|b-\xff");
    }

    #[test]
    fn added_one_by_one() {
        assert_eq!(
            fresh(b"vc-lobby"),
            (UserMode::Voucher, None, None, b"lobby".to_vec())
        );
        assert_eq!(fresh(b"up-"), (UserMode::UserPassword, None, None, vec![]));
        // Looks generated but the date is no date: a note.
        assert_eq!(fresh(b"vc-12-13.40.24-x").1, None);
        assert_eq!(fresh(b"vc-12-ab.01.24-x").1, None);
        assert_eq!(fresh(b"vc-482-01.15.25").1, None);
    }

    #[test]
    fn used_in_both_date_formats() {
        // 2024-01-31T12:00:00 read as UTC; the caller applies the offset.
        assert_eq!(used(b"jan/31/2024 12:00:00"), (1_706_702_400, vec![]));
        assert_eq!(used(b"2024-01-31 12:00:00"), (1_706_702_400, vec![]));
        assert_eq!(used(b"JAN/31/2024 12:00:00").0, 1_706_702_400);
        assert_eq!(
            used(b"feb/29/2024 23:59:59 vc-1-01.01.24-"),
            (1_709_251_199, b"vc-1-01.01.24-".to_vec())
        );
    }

    #[test]
    fn not_mikhmon() {
        for raw in [
            &b""[..],
            b"staff laptop - John",
            b"VOUCHER_SYSTEM|B1|1|1|1",
            b"vc",
            b"VC-482-01.15.25-",
            b"jan/32/2024 12:00:00",
            b"2024-13-01 12:00:00",
            b"2024-01-31 12:00:00x",
            b"jan/31/2024",
            b"Caf\xe9 lobby",
        ] {
            assert_eq!(parse_user_comment(raw), None, "{raw:?}");
        }
    }
}
