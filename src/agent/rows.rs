//! Router replies into the monitor's typed rows, as they stream in.
//!
//! Each list read folds its `!re` sentences straight into compact rows
//! (see [`crate::client::Connection::fold`]): `.id` as a number, addresses
//! and MACs typed, names and comments as bytes, profiles interned. Values
//! that do not parse are kept as unknown and reported once by the driver.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::IpAddr;

use crate::comment::has_system_marker;
use crate::event::Service;
use crate::monitor::{SessionRow, Totals, UserRow};
use crate::name::{Id, Mac, Name, parse_decimal, same_bytes};
use crate::name_cache::NameCache;
use crate::proto::Attrs;

/// Only the fields the agent uses are requested: with 10,000 users this is
/// the difference between a few hundred KB and several MB per poll.
/// The hotspot user's cumulative counters tell sessions the agent never
/// saw (see [`crate::monitor`] usage accounting).
pub const HOTSPOT_USER_PROPS: &[&str] = &HOTSPOT_USER_PROPS_ARRAY;
/// Also what a user row is typed from (PPP secrets lack the counters).
const HOTSPOT_USER_PROPS_ARRAY: [&str; 8] = [
    ".id",
    "name",
    "profile",
    "comment",
    "disabled",
    "uptime",
    "bytes-in",
    "bytes-out",
];
pub const HOTSPOT_ACTIVE_PROPS: &[&str] = &HOTSPOT_ACTIVE_PROPS_ARRAY;
/// Also the order a session row is typed in: routers answer in the
/// `.proplist`'s order, so each field is found at the first try.
const HOTSPOT_ACTIVE_PROPS_ARRAY: [&str; 8] = [
    ".id",
    "user",
    "address",
    "mac-address",
    "login-by",
    "uptime",
    "bytes-in",
    "bytes-out",
];
pub const PPP_SECRET_PROPS: &[&str] = &[".id", "name", "profile", "comment", "disabled"];
pub const PPP_ACTIVE_PROPS: &[&str] = &PPP_ACTIVE_PROPS_ARRAY;
const PPP_ACTIVE_PROPS_ARRAY: [&str; 7] = [
    ".id",
    "name",
    "service",
    "caller-id",
    "address",
    "uptime",
    "session-id",
];

/// `/interface` filtered to `type=pppoe-in`: one dynamic interface per
/// PPPoE session, the only place RouterOS keeps its byte counters.
pub const PPPOE_IFACE_PROPS: &[&str] = &[".id", "name", "rx-byte", "tx-byte"];

/// A value that did not parse. The row (or field) is skipped, and the
/// driver logs each distinct warning once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueWarning {
    pub table: &'static str,
    pub field: &'static str,
    pub value: String,
}

/// Warnings kept per list read: a router sending garbage in every row
/// must not grow memory with it (the driver logs each distinct one once).
const MAX_WARNINGS: usize = 64;

pub(super) fn warn(list: &mut Vec<ValueWarning>, w: ValueWarning) {
    if list.len() < MAX_WARNINGS {
        list.push(w);
    }
}

impl ValueWarning {
    pub(super) fn new(table: &'static str, field: &'static str, raw: &[u8]) -> ValueWarning {
        ValueWarning {
            table,
            field,
            value: String::from_utf8_lossy(raw).chars().take(64).collect(),
        }
    }
}

/// Keeps one copy of each distinct profile name.
#[derive(Default)]
struct Interner(HashSet<Name>);

impl Interner {
    fn get(&mut self, raw: &[u8]) -> Name {
        if let Some(n) = self.0.iter().find(|n| same_bytes(n.as_bytes(), raw)) {
            return n.clone();
        }
        // Bounded: a router with more distinct profiles than this is odd,
        // and interning is only a memory saving.
        let n = Name::new(raw);
        if self.0.len() < 1024 {
            self.0.insert(n.clone());
        }
        n
    }
}

/// Accumulates `/ip/hotspot/user` or `/ppp/secret` rows.
pub struct UserRows {
    table: &'static str,
    pub rows: Vec<UserRow>,
    pub warnings: Vec<ValueWarning>,
    profiles: Interner,
    /// Names and comments, reused from the table's last read.
    pub names: NameCache,
    /// `(name, password)` of users with a `_SYSTEM` comment, when asked
    /// for ([`UserRows::keeping_passwords`]; the sync's reads only).
    pub passwords: Vec<(Name, Name)>,
    keep_passwords: bool,
}

impl UserRows {
    /// Also keeps our users' passwords, where the router shows them.
    pub fn keeping_passwords(mut self) -> UserRows {
        self.keep_passwords = true;
        self
    }

    pub fn new(service: Service) -> UserRows {
        UserRows {
            table: crate::commands::users(service),
            rows: Vec::new(),
            warnings: Vec::new(),
            profiles: Interner::default(),
            names: NameCache::default(),
            passwords: Vec::new(),
            keep_passwords: false,
        }
    }

    /// Rows that reuse the names of an earlier read (see [`NameCache`])
    /// and an emptied vector's memory.
    pub fn reusing(service: Service, names: NameCache, mut rows: Vec<UserRow>) -> UserRows {
        rows.clear();
        UserRows {
            names,
            rows,
            ..UserRows::new(service)
        }
    }

    pub fn push(&mut self, a: &Attrs) {
        let [
            raw_id,
            name,
            profile,
            comment,
            disabled,
            uptime,
            bytes_in,
            bytes_out,
        ] = a.fields(HOTSPOT_USER_PROPS_ARRAY);
        let raw_id = raw_id.unwrap_or_default();
        let Some(id) = Id::parse(raw_id) else {
            warn(
                &mut self.warnings,
                ValueWarning::new(self.table, ".id", raw_id),
            );
            return;
        };
        let totals = self.totals(uptime, bytes_in, bytes_out);
        if self.keep_passwords
            && let Some(pw) = a.get("password")
            && has_system_marker(comment.unwrap_or_default())
        {
            self.passwords
                .push((Name::new(name.unwrap_or_default()), Name::new(pw)));
        }
        self.rows.push(UserRow {
            id,
            name: self.names.get(name.unwrap_or_default()),
            profile: self.profiles.get(profile.unwrap_or_default()),
            comment: self.names.get(comment.unwrap_or_default()),
            disabled: is_true(disabled),
            totals,
        });
    }

    /// Cumulative `uptime`, `bytes-in`, `bytes-out`: all three or none,
    /// since a partial set would read as a counter reset.
    fn totals(
        &mut self,
        uptime: Option<&[u8]>,
        bytes_in: Option<&[u8]>,
        bytes_out: Option<&[u8]>,
    ) -> Option<Totals> {
        let raw_uptime = uptime?;
        let Ok(uptime) = crate::duration::parse_duration(raw_uptime) else {
            warn(
                &mut self.warnings,
                ValueWarning::new(self.table, "uptime", raw_uptime),
            );
            return None;
        };
        let mut counter = |field: &'static str, raw: Option<&[u8]>| {
            let raw = raw.unwrap_or(b"0");
            let n = parse_decimal(raw);
            if n.is_none() {
                warn(
                    &mut self.warnings,
                    ValueWarning::new(self.table, field, raw),
                );
            }
            n
        };
        Some(Totals {
            uptime_secs: uptime.as_secs(),
            bytes_in: counter("bytes-in", bytes_in)?,
            bytes_out: counter("bytes-out", bytes_out)?,
        })
    }
}

/// Accumulates `/ip/hotspot/active` or `/ppp/active` rows.
pub struct SessionRows {
    service: Service,
    pub rows: Vec<SessionRow>,
    pub warnings: Vec<ValueWarning>,
    login_by: Interner,
    /// User names, caller and session ids, reused from the last read.
    pub names: NameCache,
}

/// One active-list row's raw fields by name; each service fills its own,
/// the others stay `None`.
#[derive(Default)]
struct ActiveFields<'a> {
    id: Option<&'a [u8]>,
    user: Option<&'a [u8]>,
    name: Option<&'a [u8]>,
    address: Option<&'a [u8]>,
    mac_address: Option<&'a [u8]>,
    login_by: Option<&'a [u8]>,
    service_name: Option<&'a [u8]>,
    caller_id: Option<&'a [u8]>,
    uptime: Option<&'a [u8]>,
    session_id: Option<&'a [u8]>,
    bytes_in: Option<&'a [u8]>,
    bytes_out: Option<&'a [u8]>,
}

impl SessionRows {
    pub fn new(service: Service) -> SessionRows {
        SessionRows {
            service,
            rows: Vec::new(),
            warnings: Vec::new(),
            login_by: Interner::default(),
            names: NameCache::default(),
        }
    }

    /// Rows that reuse the names of an earlier read (see [`NameCache`])
    /// and an emptied vector's memory.
    pub fn reusing(service: Service, names: NameCache, mut rows: Vec<SessionRow>) -> SessionRows {
        rows.clear();
        SessionRows {
            names,
            rows,
            ..SessionRows::new(service)
        }
    }

    pub fn push(&mut self, a: &Attrs) {
        if let Some(row) = self.parse(a) {
            self.rows.push(row);
        }
    }

    fn parse(&mut self, a: &Attrs) -> Option<SessionRow> {
        let service = self.service;
        let table = crate::commands::active(service);
        let warnings = &mut self.warnings;
        let mut warn = |field: &'static str, raw: &[u8]| {
            warn(warnings, ValueWarning::new(table, field, raw));
        };
        // Each service's own fields, in the order asked for (one pass),
        // named so that no slot can be swapped with another.
        let ActiveFields {
            id: raw_id,
            user,
            name,
            address,
            mac_address,
            login_by,
            service_name,
            caller_id,
            uptime,
            session_id,
            bytes_in,
            bytes_out,
        } = match service {
            Service::Hotspot => {
                let [
                    id,
                    user,
                    address,
                    mac,
                    login_by,
                    uptime,
                    bytes_in,
                    bytes_out,
                ] = a.fields(HOTSPOT_ACTIVE_PROPS_ARRAY);
                ActiveFields {
                    id,
                    user,
                    address,
                    mac_address: mac,
                    login_by,
                    uptime,
                    bytes_in,
                    bytes_out,
                    ..ActiveFields::default()
                }
            }
            Service::Pppoe => {
                let [
                    id,
                    name,
                    service_name,
                    caller_id,
                    address,
                    uptime,
                    session_id,
                ] = a.fields(PPP_ACTIVE_PROPS_ARRAY);
                ActiveFields {
                    id,
                    name,
                    service_name,
                    caller_id,
                    address,
                    uptime,
                    session_id,
                    ..ActiveFields::default()
                }
            }
        };
        let raw_id = raw_id.unwrap_or_default();
        let Some(id) = Id::parse(raw_id) else {
            warn(".id", raw_id);
            return None;
        };
        let (uptime_secs, bytes_in, bytes_out) =
            parse_counters(&mut warn, uptime, bytes_in, bytes_out);
        let address = match address.filter(|r| !r.is_empty()) {
            None => None,
            Some(raw) => {
                let ip = parse_ip(raw);
                if ip.is_none() {
                    warn("address", raw);
                }
                ip
            }
        };
        let (user, mac, caller_id, login_by) = match service {
            Service::Hotspot => {
                let mac = match mac_address.filter(|r| !r.is_empty()) {
                    None => None,
                    Some(raw) => {
                        let m = Mac::parse(raw);
                        if m.is_none() {
                            warn("mac-address", raw);
                        }
                        m
                    }
                };
                (
                    self.names.get(user.unwrap_or_default()),
                    mac,
                    Name::empty(),
                    self.login_by.get(login_by.unwrap_or_default()),
                )
            }
            Service::Pppoe => (
                self.names.get(name.unwrap_or_default()),
                None,
                self.names.get(caller_id.unwrap_or_default()),
                self.login_by.get(service_name.unwrap_or_default()),
            ),
        };
        Some(SessionRow {
            service,
            id,
            user,
            address,
            mac,
            caller_id,
            login_by,
            session_id: self.names.get(session_id.unwrap_or_default()),
            uptime_secs,
            bytes_in,
            bytes_out,
        })
    }
}

/// An address as `std` reads it. Every session row has one, nearly always
/// IPv4: that form is read byte by byte, anything else as text.
/// An active row's `uptime`, `bytes-in` and `bytes-out`, each unknown
/// (and warned of) when it does not parse.
pub(super) fn parse_counters(
    warn: &mut impl FnMut(&'static str, &[u8]),
    uptime: Option<&[u8]>,
    bytes_in: Option<&[u8]>,
    bytes_out: Option<&[u8]>,
) -> (Option<u64>, Option<u64>, Option<u64>) {
    let uptime_secs = uptime.and_then(|raw| match crate::duration::parse_duration(raw) {
        Ok(d) => Some(d.as_secs()),
        Err(_) => {
            warn("uptime", raw);
            None
        }
    });
    let mut counter = |field: &'static str, raw: Option<&[u8]>| {
        let raw = raw?;
        let n = parse_decimal(raw);
        if n.is_none() {
            warn(field, raw);
        }
        n
    };
    let bytes_in = counter("bytes-in", bytes_in);
    let bytes_out = counter("bytes-out", bytes_out);
    (uptime_secs, bytes_in, bytes_out)
}

fn parse_ip(raw: &[u8]) -> Option<IpAddr> {
    match parse_ipv4(raw) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => std::str::from_utf8(raw).ok()?.parse().ok(),
    }
}

/// Dotted quad, decimal, no leading zeros (which `std` refuses too).
fn parse_ipv4(raw: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut out = [0u8; 4];
    let (mut part, mut n, mut digits) = (0, 0u32, 0);
    for &b in raw {
        match b {
            b'0'..=b'9' => {
                if digits > 0 && n == 0 {
                    return None;
                }
                n = n * 10 + u32::from(b - b'0');
                digits += 1;
                if n > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && part < 3 => {
                out[part] = n as u8;
                (part, n, digits) = (part + 1, 0, 0);
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    out[3] = n as u8;
    Some(out.into())
}

/// Accumulates `pppoe-in` interface counters by PPP user name.
///
/// The router names the interface `<pppoe-USER>`; its `rx-byte` is what
/// the router received from the customer and `tx-byte` what it sent to
/// them. Mapped the way hotspot `bytes-in`/`bytes-out` are (from the
/// router's side: in = the customer's upload, out = their download).
#[derive(Default)]
pub struct PppoeCounters {
    /// `(rx-byte, tx-byte)` by user; `None` for a name seen twice.
    by_user: HashMap<Name, Option<(u64, u64)>>,
    pub warnings: Vec<ValueWarning>,
}

impl PppoeCounters {
    pub fn new() -> PppoeCounters {
        PppoeCounters::default()
    }

    pub fn push(&mut self, a: &Attrs) {
        let name = a.get("name").unwrap_or_default();
        let Some(user) = name
            .strip_prefix(b"<pppoe-")
            .and_then(|n| n.strip_suffix(b">"))
        else {
            // Static pppoe-in interfaces (bound to a user by the operator)
            // carry their own name; they are not matched to sessions.
            return;
        };
        let mut counter = |field: &'static str| {
            let raw = a.get(field).unwrap_or_default();
            let n = parse_decimal(raw);
            if n.is_none() {
                warn(
                    &mut self.warnings,
                    ValueWarning::new("/interface", field, raw),
                );
            }
            n
        };
        let counters = counter("rx-byte").zip(counter("tx-byte"));
        self.by_user
            .entry(Name::new(user))
            .and_modify(|c| *c = None)
            .or_insert(counters);
    }

    /// Fills `bytes_in` (rx) and `bytes_out` (tx) of PPP sessions whose
    /// user has exactly one session and one interface: with two sessions
    /// of one user the interfaces cannot be told apart, so those stay
    /// unknown rather than mixed up.
    pub fn fill(&self, sessions: &mut [SessionRow]) {
        let mut count: HashMap<&Name, usize> = HashMap::default();
        for s in sessions.iter() {
            *count.entry(&s.user).or_default() += 1;
        }
        let single: HashSet<Name> = count
            .into_iter()
            .filter(|(_, n)| *n == 1)
            .map(|(u, _)| u.clone())
            .collect();
        for s in sessions.iter_mut().filter(|s| single.contains(&s.user)) {
            if let Some(Some((rx, tx))) = self.by_user.get(&s.user) {
                s.bytes_in = Some(*rx);
                s.bytes_out = Some(*tx);
            }
        }
    }
}

fn is_true(value: Option<&[u8]>) -> bool {
    matches!(value, Some(b"true") | Some(b"yes"))
}

/// Attributes from key/value pairs, for the driver side's tests.
#[cfg(test)]
pub(crate) fn test_attrs(pairs: &[(&str, &[u8])]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_attrs as attrs;

    #[test]
    fn hotspot_session_parses_and_flags_bad_values() {
        let mut rows = SessionRows::new(Service::Hotspot);
        rows.push(&attrs(&[
            (".id", b"*1A"),
            ("user", b"V1"),
            ("address", b"10.5.50.2"),
            ("mac-address", b"AA:BB:CC:00:11:22"),
            ("login-by", b"http-chap"),
            ("uptime", b"1h2m3s"),
            ("bytes-in", b"12345"),
            ("bytes-out", b"lots"),
        ]));
        let s = &rows.rows[0];
        assert_eq!(s.id, Id(0x1a));
        assert_eq!(s.uptime_secs, Some(3723));
        assert_eq!(s.bytes_in, Some(12345));
        assert_eq!(s.bytes_out, None);
        assert_eq!(
            s.mac.map(|m| m.to_string()).as_deref(),
            Some("AA:BB:CC:00:11:22")
        );
        assert_eq!(s.address, Some("10.5.50.2".parse().unwrap()));
        assert_eq!(rows.warnings.len(), 1);
        assert_eq!(rows.warnings[0].field, "bytes-out");
    }

    #[test]
    fn ppp_session_uses_name_and_caller_id() {
        let mut rows = SessionRows::new(Service::Pppoe);
        rows.push(&attrs(&[
            (".id", b"*2"),
            ("name", b"cust1"),
            ("service", b"pppoe"),
            ("caller-id", b"AA:BB:CC:00:11:22"),
            ("uptime", b"6w6d18:33:07"),
            ("session-id", b"0x81400001"),
        ]));
        let s = &rows.rows[0];
        assert_eq!(s.user, "cust1");
        assert_eq!(s.caller_id, "AA:BB:CC:00:11:22");
        assert_eq!(
            s.uptime_secs,
            Some(6 * 604800 + 6 * 86400 + 18 * 3600 + 33 * 60 + 7)
        );
        assert_eq!(s.bytes_in, None);
    }

    #[test]
    fn pppoe_interface_counters_fill_single_sessions() {
        let mut c = PppoeCounters::new();
        for (name, rx, tx) in [
            (&b"<pppoe-cust1>"[..], &b"1000"[..], &b"8000"[..]),
            (b"<pppoe-twice>", b"1", b"2"),
            (b"<pppoe-twice>", b"3", b"4"),
            (b"pppoe-static", b"5", b"6"),
            (b"<pppoe-bad>", b"x", b"7"),
        ] {
            c.push(&attrs(&[
                (".id", b"*9"),
                ("name", name),
                ("rx-byte", rx),
                ("tx-byte", tx),
            ]));
        }
        assert_eq!(c.warnings.len(), 1);
        let mut rows = SessionRows::new(Service::Pppoe);
        for (id, user) in [
            (&b"*1"[..], &b"cust1"[..]),
            (b"*2", b"twice"),
            (b"*3", b"bad"),
            (b"*4", b"none"),
        ] {
            rows.push(&attrs(&[(".id", id), ("name", user)]));
        }
        c.fill(&mut rows.rows);
        let bytes: Vec<_> = rows
            .rows
            .iter()
            .map(|s| (s.bytes_in, s.bytes_out))
            .collect();
        // In = received by the router (rx) = the customer's upload.
        assert_eq!(
            bytes,
            vec![
                (Some(1000), Some(8000)),
                (None, None),
                (None, None),
                (None, None)
            ]
        );
    }

    #[test]
    fn user_rows_keep_bytes_intern_profiles_and_skip_bad_ids() {
        let mut rows = UserRows::new(Service::Hotspot);
        rows.push(&attrs(&[
            (".id", b"*3"),
            ("name", b"caf\xe9"),
            ("profile", b"voucher"),
            ("comment", b"caf\xe9"),
            ("disabled", b"true"),
        ]));
        rows.push(&attrs(&[
            (".id", b"*4"),
            ("name", b"caf\xe8"),
            ("profile", b"voucher"),
        ]));
        rows.push(&attrs(&[(".id", b"garbage"), ("name", b"x")]));
        assert_eq!(rows.rows.len(), 2);
        assert_eq!(rows.rows[0].comment.as_bytes(), b"caf\xe9");
        assert_ne!(rows.rows[0].name, rows.rows[1].name);
        assert!(rows.rows[0].disabled);
        assert_eq!(rows.warnings.len(), 1);
        assert_eq!(rows.warnings[0].field, ".id");
        // One allocation shared by both rows.
        let (a, b) = (&rows.rows[0].profile, &rows.rows[1].profile);
        assert!(std::ptr::eq(a.as_bytes(), b.as_bytes()));
    }

    proptest::proptest! {
        #[test]
        fn addresses_read_as_std_reads_them(
            raw in proptest::collection::vec(
                proptest::sample::select(b"0123456789.:abf ".to_vec()),
                0..20,
            )
        ) {
            let std_ip = std::str::from_utf8(&raw)
                .ok()
                .and_then(|s| s.parse::<IpAddr>().ok());
            proptest::prop_assert_eq!(parse_ip(&raw), std_ip);
        }

        #[test]
        fn every_ipv4_address_takes_the_byte_path(a in proptest::prelude::any::<[u8; 4]>()) {
            let ip = std::net::Ipv4Addr::from(a);
            proptest::prop_assert_eq!(parse_ipv4(ip.to_string().as_bytes()), Some(ip));
        }
    }
}
