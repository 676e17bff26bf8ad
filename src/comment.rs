//! Metadata in the `comment` of hotspot users and PPP secrets.
//!
//! ```text
//! VOUCHER_SYSTEM|batch_id|price_sell|price_cost|valid_hours|vendor_id|created_date|created_by|first_login_at|expires_at[|locked_mac]
//! PPPOE_SYSTEM|batch_id|price_sell|price_cost|customer_id|subscription_id|created_date|created_by
//! ```
//!
//! Comments on real routers are short, have empty fields, carry extra fields
//! or non-UTF-8 bytes (RouterOS is not UTF-8 clean), and other tools write
//! their own formats. So we keep the raw bytes and only interpret fields on
//! request: `Comment::parse(x).to_bytes() == x` for every `x`, and the one
//! edits we make ([`SystemComment::with_activation`],
//! [`SystemComment::with_locked_mac`]) touch only their fields.
//! `locked_mac` is written only by the MAC lock, so comments without it
//! keep their exact ten fields.

use crate::clock::{Timestamp, parse_rfc3339};
use crate::valid_hours::{ValidHours, ValidHoursError};

const SEP: u8 = b'|';

/// Which of our two comment formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemKind {
    /// `VOUCHER_SYSTEM|…` on hotspot users.
    Voucher,
    /// `PPPOE_SYSTEM|…` on PPP secrets.
    Pppoe,
}

impl SystemKind {
    /// The first `|`-field that identifies the format.
    pub fn marker(self) -> &'static [u8] {
        match self {
            Self::Voucher => b"VOUCHER_SYSTEM",
            Self::Pppoe => b"PPPOE_SYSTEM",
        }
    }

    fn from_marker(field: &[u8]) -> Option<Self> {
        [Self::Voucher, Self::Pppoe]
            .into_iter()
            .find(|k| k.marker() == field)
    }
}

/// A parsed `comment` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Comment {
    /// No comment (empty string).
    None,
    /// Somebody else's comment (Mikhmon, free text, …); never rewritten.
    Foreign(Vec<u8>),
    /// One of ours.
    System(SystemComment),
}

impl Comment {
    /// Classifies `raw`. Never fails: anything not ours is [`Comment::Foreign`].
    pub fn parse(raw: &[u8]) -> Comment {
        if raw.is_empty() {
            return Comment::None;
        }
        let mut parts = raw.split(|b| *b == SEP);
        // `split` always yields at least one item; the fallback is never taken.
        let first = parts.next().unwrap_or_default();
        match SystemKind::from_marker(first) {
            Some(kind) => {
                let mut sys = SystemComment::empty(kind, raw.len());
                for part in parts {
                    sys.push(part);
                }
                Comment::System(sys)
            }
            None => Comment::Foreign(raw.to_vec()),
        }
    }

    /// The exact bytes this was parsed from.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Comment::None => Vec::new(),
            Comment::Foreign(raw) => raw.clone(),
            Comment::System(sys) => sys.to_bytes(),
        }
    }

    /// The system comment, if this is one of ours.
    pub fn as_system(&self) -> Option<&SystemComment> {
        match self {
            Comment::System(sys) => Some(sys),
            _ => None,
        }
    }
}

/// True if `raw` contains `_SYSTEM` anywhere.
///
/// Deliberately looser than [`Comment::parse`]: a user whose comment is
/// present but lacks even this was made by hand on the router.
pub fn has_system_marker(raw: &[u8]) -> bool {
    raw.windows(b"_SYSTEM".len()).any(|w| w == b"_SYSTEM")
}

/// A `VOUCHER_SYSTEM|…` comment read in place: the fields the voucher
/// lifecycle looks at, borrowed from the raw bytes.
///
/// Every poll reads every voucher's comment, and most are unchanged: this
/// costs one scan and no allocation, where [`Comment::parse`] copies the
/// fields into a [`SystemComment`] (needed only to rewrite the comment).
/// Field for field it answers as the parsed comment does (tested below).
#[derive(Debug, Clone, Copy)]
pub struct VoucherView<'a> {
    raw: &'a [u8],
    /// Fields `batch_id` to `locked_mac`; `None` past the comment's end.
    fields: [Option<&'a [u8]>; LOCKED_MAC + 1],
}

impl<'a> VoucherView<'a> {
    /// The view when `raw` is a voucher comment (`VOUCHER_SYSTEM` as its
    /// first `|`-field), else `None`.
    pub fn parse(raw: &'a [u8]) -> Option<VoucherView<'a>> {
        let marker = SystemKind::Voucher.marker();
        let mut rest = match raw.strip_prefix(marker)? {
            [] => None,
            [SEP, rest @ ..] => Some(rest),
            _ => return None,
        };
        let mut fields = [None; LOCKED_MAC + 1];
        for f in fields.iter_mut() {
            let Some(r) = rest else { break };
            match r.iter().position(|b| *b == SEP) {
                Some(i) => {
                    *f = Some(&r[..i]);
                    rest = Some(&r[i + 1..]);
                }
                None => {
                    *f = Some(r);
                    rest = None;
                }
            }
        }
        Some(VoucherView { raw, fields })
    }

    pub fn batch_id(&self) -> Option<&'a [u8]> {
        self.fields[BATCH_ID]
    }

    pub fn first_login_at_raw(&self) -> Option<&'a [u8]> {
        self.fields[FIRST_LOGIN_AT]
    }

    pub fn expires_at_raw(&self) -> Option<&'a [u8]> {
        self.fields[EXPIRES_AT]
    }

    /// As [`SystemComment::valid_hours`].
    pub fn valid_hours(&self) -> Option<ValidHours> {
        ValidHours::parse(self.fields[VALID_HOURS]?).ok()
    }

    /// As [`SystemComment::valid_hours_checked`].
    pub fn valid_hours_checked(&self) -> Result<ValidHours, ValidHoursError> {
        ValidHours::parse(self.fields[VALID_HOURS].unwrap_or_default())
    }

    /// As [`SystemComment::first_login_at`].
    pub fn first_login_at(&self) -> Option<Timestamp> {
        parse_rfc3339(self.first_login_at_raw().filter(|r| !r.is_empty())?).ok()
    }

    /// As [`SystemComment::expires_at`].
    pub fn expires_at(&self) -> Option<Timestamp> {
        parse_rfc3339(self.expires_at_raw().filter(|r| !r.is_empty())?).ok()
    }

    /// The whole comment, parsed for editing.
    pub fn to_system(&self) -> SystemComment {
        match Comment::parse(self.raw) {
            Comment::System(s) => s,
            // `parse` checked the same marker; an empty voucher comment
            // stands in should the two ever disagree.
            _ => SystemComment::empty(SystemKind::Voucher, 0),
        }
    }
}

// Field positions after the marker (marker itself is position 0 on the wire).
const BATCH_ID: usize = 0;
const PRICE_SELL: usize = 1;
const PRICE_COST: usize = 2;
const VALID_HOURS: usize = 3;
const VENDOR_ID: usize = 4;
const CUSTOMER_ID: usize = 3;
const SUBSCRIPTION_ID: usize = 4;
// Same position in both formats.
const CREATED_DATE: usize = 5;
const CREATED_BY: usize = 6;
const FIRST_LOGIN_AT: usize = 7;
const EXPIRES_AT: usize = 8;
const LOCKED_MAC: usize = 9;

/// A `VOUCHER_SYSTEM|…` or `PPPOE_SYSTEM|…` comment, fields kept as found.
///
/// The fields live in one buffer with their end offsets: every poll parses
/// every voucher's comment, and one allocation per field was most of the
/// poll's cost.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SystemComment {
    kind: SystemKind,
    /// Fields after the marker, concatenated without separators: possibly
    /// fewer or more than the format defines, possibly empty, possibly not
    /// UTF-8.
    buf: Vec<u8>,
    /// End of each field in `buf`.
    ends: Vec<u32>,
}

impl SystemComment {
    /// A comment from its kind and the fields after the marker.
    pub fn new(kind: SystemKind, fields: Vec<Vec<u8>>) -> Self {
        let mut s = Self::empty(kind, fields.iter().map(Vec::len).sum());
        for f in &fields {
            s.push(f);
        }
        s
    }

    fn empty(kind: SystemKind, capacity: usize) -> Self {
        Self {
            kind,
            buf: Vec::with_capacity(capacity),
            ends: Vec::with_capacity(11),
        }
    }

    fn push(&mut self, field: &[u8]) {
        self.buf.extend_from_slice(field);
        // Comments are far below 4 GiB (RouterOS caps them at a few KB).
        self.ends.push(self.buf.len() as u32);
    }

    /// A copy with field `index` set to `value`, missing fields before it
    /// padded with empty ones, every other field as it was.
    fn with_field(&self, index: usize, value: &[u8]) -> SystemComment {
        let n = self.ends.len().max(index + 1);
        let mut out = Self::empty(self.kind, self.buf.len() + value.len());
        for i in 0..n {
            if i == index {
                out.push(value);
            } else {
                out.push(self.field(i).unwrap_or_default());
            }
        }
        out
    }

    /// A fresh, not yet activated voucher comment (`first_login_at` and
    /// `expires_at` present but empty, so the full layout is written).
    pub fn new_voucher(
        batch_id: &[u8],
        price_sell: &[u8],
        price_cost: &[u8],
        valid_hours: &[u8],
        vendor_id: &[u8],
        created_date: &[u8],
        created_by: &[u8],
    ) -> Self {
        let fields = [
            batch_id,
            price_sell,
            price_cost,
            valid_hours,
            vendor_id,
            created_date,
            created_by,
            b"",
            b"",
        ];
        Self::new(SystemKind::Voucher, fields.map(<[u8]>::to_vec).to_vec())
    }

    /// A PPPoE secret comment.
    pub fn new_pppoe(
        batch_id: &[u8],
        price_sell: &[u8],
        price_cost: &[u8],
        customer_id: &[u8],
        subscription_id: &[u8],
        created_date: &[u8],
        created_by: &[u8],
    ) -> Self {
        let fields = [
            batch_id,
            price_sell,
            price_cost,
            customer_id,
            subscription_id,
            created_date,
            created_by,
        ];
        Self::new(SystemKind::Pppoe, fields.map(<[u8]>::to_vec).to_vec())
    }

    /// Voucher or PPPoE.
    pub fn kind(&self) -> SystemKind {
        self.kind
    }

    /// All fields after the marker, as found.
    pub fn fields(&self) -> Vec<Vec<u8>> {
        (0..self.ends.len())
            .filter_map(|i| self.field(i).map(<[u8]>::to_vec))
            .collect()
    }

    /// How many fields follow the marker.
    pub fn field_count(&self) -> usize {
        self.ends.len()
    }

    /// Field `index` after the marker (0 = `batch_id`); None if missing.
    pub fn field(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] as usize
        };
        self.buf.get(start..end)
    }

    /// The field only if this comment is of `kind`; kind-specific getters use
    /// it so a PPPoE comment never answers `vendor_id` with `subscription_id`.
    fn field_of(&self, kind: SystemKind, index: usize) -> Option<&[u8]> {
        if self.kind == kind {
            self.field(index)
        } else {
            None
        }
    }

    pub fn batch_id(&self) -> Option<&[u8]> {
        self.field(BATCH_ID)
    }

    pub fn price_sell(&self) -> Option<&[u8]> {
        self.field(PRICE_SELL)
    }

    pub fn price_cost(&self) -> Option<&[u8]> {
        self.field(PRICE_COST)
    }

    pub fn created_date(&self) -> Option<&[u8]> {
        self.field(CREATED_DATE)
    }

    pub fn created_by(&self) -> Option<&[u8]> {
        self.field(CREATED_BY)
    }

    /// Voucher only.
    pub fn valid_hours_raw(&self) -> Option<&[u8]> {
        self.field_of(SystemKind::Voucher, VALID_HOURS)
    }

    /// Voucher only.
    pub fn vendor_id(&self) -> Option<&[u8]> {
        self.field_of(SystemKind::Voucher, VENDOR_ID)
    }

    /// Voucher only.
    pub fn first_login_at_raw(&self) -> Option<&[u8]> {
        self.field_of(SystemKind::Voucher, FIRST_LOGIN_AT)
    }

    /// Voucher only.
    pub fn expires_at_raw(&self) -> Option<&[u8]> {
        self.field_of(SystemKind::Voucher, EXPIRES_AT)
    }

    /// Voucher only: the MAC the MAC lock bound it to.
    pub fn locked_mac_raw(&self) -> Option<&[u8]> {
        self.field_of(SystemKind::Voucher, LOCKED_MAC)
    }

    /// PPPoE only.
    pub fn customer_id(&self) -> Option<&[u8]> {
        self.field_of(SystemKind::Pppoe, CUSTOMER_ID)
    }

    /// PPPoE only.
    pub fn subscription_id(&self) -> Option<&[u8]> {
        self.field_of(SystemKind::Pppoe, SUBSCRIPTION_ID)
    }

    /// `valid_hours` (fractional hours allowed, kept to the minute); None
    /// if missing, empty or unusable. Surrounding ASCII spaces are
    /// tolerated since people edit these by hand.
    pub fn valid_hours(&self) -> Option<ValidHours> {
        ValidHours::parse(self.valid_hours_raw()?).ok()
    }

    /// `valid_hours`, or why it cannot be used (missing counts as empty).
    pub fn valid_hours_checked(&self) -> Result<ValidHours, ValidHoursError> {
        ValidHours::parse(self.valid_hours_raw().unwrap_or_default())
    }

    /// `first_login_at` as RFC 3339; None if missing, empty or unparsable.
    pub fn first_login_at(&self) -> Option<Timestamp> {
        // Empty on every fresh voucher: skip the parser (and its error).
        parse_rfc3339(self.first_login_at_raw().filter(|r| !r.is_empty())?).ok()
    }

    /// `expires_at` as RFC 3339; None if missing, empty or unparsable.
    pub fn expires_at(&self) -> Option<Timestamp> {
        parse_rfc3339(self.expires_at_raw().filter(|r| !r.is_empty())?).ok()
    }

    /// The comment with `first_login_at` and `expires_at` set (RFC 3339),
    /// missing fields before them padded with empty ones, and every other
    /// field, including extras after `expires_at`, left byte for byte.
    ///
    /// PPPoE comments have no such fields and are returned unchanged.
    pub fn with_activation(&self, first_login: Timestamp, expires: Timestamp) -> SystemComment {
        if self.kind != SystemKind::Voucher {
            return self.clone();
        }
        self.with_field(FIRST_LOGIN_AT, first_login.to_rfc3339().as_bytes())
            .with_field(EXPIRES_AT, expires.to_rfc3339().as_bytes())
    }

    /// The comment with `locked_mac` set (missing fields before it padded
    /// with empty ones), every other field left byte for byte. PPPoE
    /// comments are returned unchanged.
    pub fn with_locked_mac(&self, mac: &str) -> SystemComment {
        if self.kind != SystemKind::Voucher {
            return self.clone();
        }
        self.with_field(LOCKED_MAC, mac.as_bytes())
    }

    /// `MARKER|field|field…`, exactly as parsed (or as edited).
    pub fn to_bytes(&self) -> Vec<u8> {
        let marker = self.kind.marker();
        let mut out = Vec::with_capacity(marker.len() + self.buf.len() + self.ends.len());
        out.extend_from_slice(marker);
        for i in 0..self.ends.len() {
            out.push(SEP);
            out.extend_from_slice(self.field(i).unwrap_or_default());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn system(raw: &[u8]) -> SystemComment {
        match Comment::parse(raw) {
            Comment::System(s) => s,
            other => panic!("expected System, got {other:?}"),
        }
    }

    fn ts(s: &str) -> Timestamp {
        match parse_rfc3339(s.as_bytes()) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn locked_mac_is_the_tenth_field_and_keeps_the_rest() {
        let raw = b"VOUCHER_SYSTEM|B|1|1|24|V|2024-01-30|admin||";
        let c = system(raw).with_locked_mac("AA:BB:CC:00:11:22");
        assert_eq!(
            c.to_bytes(),
            b"VOUCHER_SYSTEM|B|1|1|24|V|2024-01-30|admin|||AA:BB:CC:00:11:22"
        );
        assert_eq!(c.locked_mac_raw(), Some(&b"AA:BB:CC:00:11:22"[..]));
        let short = system(b"VOUCHER_SYSTEM|B").with_locked_mac("AA:BB:CC:00:11:22");
        assert_eq!(short.field_count(), 10);
        let extra = system(b"VOUCHER_SYSTEM|B|1|1|24|V|d|a|f|e|old|x").with_locked_mac("M");
        assert_eq!(extra.to_bytes(), b"VOUCHER_SYSTEM|B|1|1|24|V|d|a|f|e|M|x");
        let pppoe = system(b"PPPOE_SYSTEM|B").with_locked_mac("M");
        assert_eq!(pppoe.to_bytes(), b"PPPOE_SYSTEM|B");
    }

    #[test]
    fn full_voucher() {
        let raw = b"VOUCHER_SYSTEM|BATCH-001|15000|10000|24|V7|2024-01-30|admin|2024-01-31T12:00:00Z|2024-02-01T12:00:00Z";
        let c = system(raw);
        assert_eq!(c.kind(), SystemKind::Voucher);
        assert_eq!(c.batch_id(), Some(&b"BATCH-001"[..]));
        assert_eq!(c.price_sell(), Some(&b"15000"[..]));
        assert_eq!(c.price_cost(), Some(&b"10000"[..]));
        assert_eq!(c.valid_hours_raw(), Some(&b"24"[..]));
        assert_eq!(c.valid_hours(), Some(ValidHours::from_hours(24)));
        assert_eq!(c.vendor_id(), Some(&b"V7"[..]));
        assert_eq!(c.created_date(), Some(&b"2024-01-30"[..]));
        assert_eq!(c.created_by(), Some(&b"admin"[..]));
        assert_eq!(
            c.first_login_at(),
            Some(Timestamp::from_unix(1_706_702_400))
        );
        assert_eq!(c.expires_at(), Some(Timestamp::from_unix(1_706_788_800)));
        assert_eq!(c.customer_id(), None);
        assert_eq!(c.subscription_id(), None);
        assert_eq!(c.to_bytes(), raw);
    }

    #[test]
    fn short_voucher() {
        let raw = b"VOUCHER_SYSTEM|BATCH-001|15000|10000|24";
        let c = system(raw);
        assert_eq!(c.batch_id(), Some(&b"BATCH-001"[..]));
        assert_eq!(c.valid_hours(), Some(ValidHours::from_hours(24)));
        assert_eq!(c.vendor_id(), None);
        assert_eq!(c.created_by(), None);
        assert_eq!(c.first_login_at_raw(), None);
        assert_eq!(c.first_login_at(), None);
        assert_eq!(c.expires_at(), None);
        assert_eq!(Comment::parse(raw).to_bytes(), raw);
    }

    #[test]
    fn empty_and_odd_fields() {
        let c = system(b"VOUCHER_SYSTEM|B1||||");
        assert_eq!(c.batch_id(), Some(&b"B1"[..]));
        assert_eq!(c.price_sell(), Some(&b""[..]));
        assert_eq!(c.valid_hours_raw(), Some(&b""[..]));
        assert_eq!(c.valid_hours(), None);
        // The trailing `|` makes vendor_id present but empty.
        assert_eq!(c.vendor_id(), Some(&b""[..]));
        assert_eq!(c.created_date(), None);
        assert_eq!(system(b"VOUCHER_SYSTEM|B|1|1|abc").valid_hours(), None);
        assert_eq!(system(b"VOUCHER_SYSTEM|B|1|1|-1").valid_hours(), None);
        assert_eq!(
            system(b"VOUCHER_SYSTEM|B|1|1| 12 ").valid_hours(),
            Some(ValidHours::from_hours(12))
        );
        assert_eq!(
            system(b"VOUCHER_SYSTEM|B|1|1|0.5").valid_hours(),
            ValidHours::from_minutes(30)
        );
        assert_eq!(
            system(b"VOUCHER_SYSTEM|B|1|1|-1").valid_hours_checked(),
            Err(ValidHoursError::Negative)
        );
        assert_eq!(
            system(b"VOUCHER_SYSTEM|B|1|1|99999999999").valid_hours(),
            None
        );
        let bad_dates = system(b"VOUCHER_SYSTEM|B|1|1|1||||yesterday|\xff");
        assert_eq!(bad_dates.first_login_at_raw(), Some(&b"yesterday"[..]));
        assert_eq!(bad_dates.first_login_at(), None);
        assert_eq!(bad_dates.expires_at(), None);
        // Bare marker: ours, no fields; marker plus `|`: one empty field.
        assert_eq!(system(b"VOUCHER_SYSTEM").field_count(), 0);
        assert_eq!(system(b"PPPOE_SYSTEM|").fields(), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn pppoe_getters() {
        let raw = b"PPPOE_SYSTEM|PB-9|250000|200000|CUST-42|SUB-7|2024-01-01|ops";
        let c = system(raw);
        assert_eq!(c.kind(), SystemKind::Pppoe);
        assert_eq!(c.batch_id(), Some(&b"PB-9"[..]));
        assert_eq!(c.price_sell(), Some(&b"250000"[..]));
        assert_eq!(c.price_cost(), Some(&b"200000"[..]));
        assert_eq!(c.customer_id(), Some(&b"CUST-42"[..]));
        assert_eq!(c.subscription_id(), Some(&b"SUB-7"[..]));
        assert_eq!(c.created_date(), Some(&b"2024-01-01"[..]));
        assert_eq!(c.created_by(), Some(&b"ops"[..]));
        assert_eq!(c.valid_hours_raw(), None);
        assert_eq!(c.valid_hours(), None);
        assert_eq!(c.vendor_id(), None);
        assert_eq!(c.first_login_at(), None);
        assert_eq!(c.to_bytes(), raw);
        // Activation does not apply to PPPoE.
        let t = Timestamp::from_unix(0);
        assert_eq!(c.with_activation(t, t), c);
    }

    #[test]
    fn foreign_and_none() {
        let mikhmon = b"vc-123-01.02.24-";
        assert_eq!(Comment::parse(mikhmon), Comment::Foreign(mikhmon.to_vec()));
        assert!(!has_system_marker(mikhmon));
        for raw in [
            &b"just a customer note"[..],
            b"voucher_system|B1",
            b"VOUCHER_SYSTEMX|B1",
            b" VOUCHER_SYSTEM|B1",
            b"X|VOUCHER_SYSTEM|B1",
            b"HOTSPOT_SYSTEM|B1",
            b"\xffVOUCHER_SYSTEM",
        ] {
            assert!(
                matches!(Comment::parse(raw), Comment::Foreign(_)),
                "{raw:?}"
            );
            assert_eq!(Comment::parse(raw).to_bytes(), raw);
        }
        assert_eq!(Comment::parse(b""), Comment::None);
        assert_eq!(Comment::None.to_bytes(), b"");
        assert!(Comment::parse(b"x").as_system().is_none());
    }

    #[test]
    fn marker_detection() {
        assert!(has_system_marker(b"VOUCHER_SYSTEM|B1"));
        assert!(has_system_marker(b"PPPOE_SYSTEM"));
        assert!(has_system_marker(b"old HOTSPOT_SYSTEM thing"));
        assert!(!has_system_marker(b""));
        assert!(!has_system_marker(b"_SYSTE"));
        assert!(!has_system_marker(b"_system"));
    }

    #[test]
    fn activation_on_short_comment() {
        let c = system(b"VOUCHER_SYSTEM|B1|5000|3000|24");
        let first = ts("2024-01-31T12:00:00Z");
        let activated = c.with_activation(first, first.plus_hours(24));
        // Marker is field 0, so first_login_at is the 9th `|`-separated field:
        // vendor_id, created_date and created_by are padded empty.
        assert_eq!(
            activated.to_bytes(),
            b"VOUCHER_SYSTEM|B1|5000|3000|24||||2024-01-31T12:00:00Z|2024-02-01T12:00:00Z"
        );
        assert_eq!(activated.first_login_at(), Some(first));
        assert_eq!(activated.expires_at(), Some(first.plus_hours(24)));
        assert_eq!(activated.vendor_id(), Some(&b""[..]));
        assert_eq!(system(&activated.to_bytes()), activated);
    }

    #[test]
    fn activation_preserves_other_bytes() {
        let raw =
            b"VOUCHER_SYSTEM|B\xe9\xff1|5000||24|v\x80|2024-01-30|caf\xc3\xa9|old|older|extra\xfe|";
        let first = Timestamp::from_unix(1_706_702_400);
        let out = system(raw)
            .with_activation(first, first.plus_hours(1))
            .to_bytes();
        assert_eq!(
            out,
            b"VOUCHER_SYSTEM|B\xe9\xff1|5000||24|v\x80|2024-01-30|caf\xc3\xa9|2024-01-31T12:00:00Z|2024-01-31T13:00:00Z|extra\xfe|"
        );
        // Exactly eight fields: only the missing expires_at is added.
        let out = system(b"VOUCHER_SYSTEM|\xff|1|2|3|4|5|6|7")
            .with_activation(first, first)
            .to_bytes();
        assert_eq!(
            out,
            b"VOUCHER_SYSTEM|\xff|1|2|3|4|5|6|2024-01-31T12:00:00Z|2024-01-31T12:00:00Z"
        );
    }

    #[test]
    fn builders() {
        let v = SystemComment::new_voucher(
            b"B1",
            b"5000",
            b"3000",
            b"24",
            b"V1",
            b"2024-01-30",
            b"sim",
        );
        assert_eq!(
            v.to_bytes(),
            b"VOUCHER_SYSTEM|B1|5000|3000|24|V1|2024-01-30|sim||"
        );
        assert_eq!(Comment::parse(&v.to_bytes()), Comment::System(v.clone()));
        assert_eq!(v.first_login_at_raw(), Some(&b""[..]));
        let p = SystemComment::new_pppoe(b"P1", b"1", b"2", b"C1", b"S1", b"2024-01-30", b"sim");
        assert_eq!(p.to_bytes(), b"PPPOE_SYSTEM|P1|1|2|C1|S1|2024-01-30|sim");
        assert_eq!(p.customer_id(), Some(&b"C1"[..]));
        assert_eq!(SystemKind::Voucher.marker(), b"VOUCHER_SYSTEM");
        assert_eq!(SystemKind::Pppoe.marker(), b"PPPOE_SYSTEM");
        assert_eq!(
            SystemComment::new(SystemKind::Pppoe, vec![]).to_bytes(),
            b"PPPOE_SYSTEM"
        );
    }

    /// A field: any bytes but the separator, with `|`-heavy and high bytes likely.
    fn field() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no separator", |b| *b != SEP),
            0..12,
        )
    }

    fn marked() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![Just(SystemKind::Voucher), Just(SystemKind::Pppoe)],
            proptest::collection::vec(field(), 0..14),
        )
            .prop_map(|(kind, fields)| {
                let mut raw = kind.marker().to_vec();
                for f in fields {
                    raw.push(SEP);
                    raw.extend(f);
                }
                raw
            })
    }

    proptest! {
        #[test]
        fn round_trip_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(Comment::parse(&raw).to_bytes(), raw);
        }

        #[test]
        fn round_trip_pipe_heavy(raw in proptest::collection::vec(
            prop_oneof![Just(SEP), Just(b'A'), any::<u8>()], 0..40)
        ) {
            prop_assert_eq!(Comment::parse(&raw).to_bytes(), raw);
        }

        #[test]
        fn round_trip_marked(raw in marked()) {
            let parsed = Comment::parse(&raw);
            prop_assert!(parsed.as_system().is_some());
            prop_assert_eq!(parsed.to_bytes(), raw);
        }

        #[test]
        fn voucher_view_answers_as_the_parsed_comment(raw in prop_oneof![
            marked(),
            proptest::collection::vec(prop_oneof![Just(SEP), any::<u8>()], 0..40),
            // Dates that parse, so the timestamps are compared too.
            (field(), 0u32..100, 0i64..4_000_000_000).prop_map(|(b, h, secs)| {
                let t = Timestamp::from_unix(secs).to_rfc3339();
                format!("VOUCHER_SYSTEM|x|1|1|{h}|v|d|by|{t}|{t}")
                    .into_bytes()
                    .into_iter()
                    .chain(b)
                    .collect()
            }),
        ]) {
            let parsed = Comment::parse(&raw);
            let sys = parsed.as_system().filter(|s| s.kind() == SystemKind::Voucher);
            let view = VoucherView::parse(&raw);
            prop_assert_eq!(view.is_some(), sys.is_some());
            if let (Some(v), Some(s)) = (view, sys) {
                prop_assert_eq!(v.batch_id(), s.batch_id());
                prop_assert_eq!(v.first_login_at_raw(), s.first_login_at_raw());
                prop_assert_eq!(v.expires_at_raw(), s.expires_at_raw());
                prop_assert_eq!(v.valid_hours(), s.valid_hours());
                prop_assert_eq!(v.first_login_at(), s.first_login_at());
                prop_assert_eq!(v.expires_at(), s.expires_at());
                prop_assert_eq!(&v.to_system(), s);
            }
        }

        #[test]
        fn activation_touches_only_its_fields(raw in marked(), secs in 0i64..4_000_000_000) {
            let c = system(&raw);
            let t = Timestamp::from_unix(secs);
            let out = c.with_activation(t, t.plus_hours(24));
            let reparsed = system(&out.to_bytes());
            prop_assert_eq!(&reparsed, &out);
            if c.kind() == SystemKind::Voucher {
                prop_assert_eq!(reparsed.first_login_at(), Some(t));
                prop_assert_eq!(reparsed.expires_at(), Some(t.plus_hours(24)));
                prop_assert_eq!(out.field_count(), c.field_count().max(EXPIRES_AT + 1));
                for (i, f) in c.fields().iter().enumerate() {
                    if i != FIRST_LOGIN_AT && i != EXPIRES_AT {
                        prop_assert_eq!(out.field(i), Some(f.as_slice()));
                    }
                }
                for i in c.fields().len()..FIRST_LOGIN_AT {
                    prop_assert_eq!(out.field(i), Some(&b""[..]));
                }
            } else {
                prop_assert_eq!(out, c);
            }
        }
    }
}
