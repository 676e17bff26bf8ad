//! Typed views of the rows the agent reads each cycle.

use crate::clock::Timestamp;
use crate::event::Service;
use crate::proto::Attrs;

/// Only the fields the agent uses are requested: with 10,000 users this is
/// the difference between a few hundred KB and several MB per poll.
pub const HOTSPOT_USER_PROPS: &[&str] = &[".id", "name", "profile", "comment", "disabled"];
pub const HOTSPOT_ACTIVE_PROPS: &[&str] = &[
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
pub const PPP_ACTIVE_PROPS: &[&str] = &[
    ".id",
    "name",
    "service",
    "caller-id",
    "address",
    "uptime",
    "session-id",
];

/// A hotspot user or PPP secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub profile: String,
    /// Raw bytes: comments are not UTF-8 clean and must round-trip exactly.
    pub comment: Vec<u8>,
    pub disabled: bool,
}

/// An entry of `/ip/hotspot/active` or `/ppp/active`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub service: Service,
    /// `.id` of the active entry.
    pub id: String,
    pub user: String,
    pub address: String,
    pub mac: String,
    pub caller_id: String,
    pub login_by: String,
    /// PPP `session-id`; empty for hotspot.
    pub session_id: String,
    /// `None` when the router sent a value that did not parse.
    pub uptime_secs: Option<u64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
}

/// A value that did not parse. The row is kept, the field is treated as
/// unknown, and the driver logs each distinct warning once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueWarning {
    pub table: &'static str,
    pub field: &'static str,
    pub value: String,
}

/// The four lists read in one cycle. Only a snapshot where all four reads
/// succeeded is ever built: a failed read is not an empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub hotspot_users: Vec<UserRow>,
    pub hotspot_active: Vec<SessionRow>,
    pub ppp_secrets: Vec<UserRow>,
    pub ppp_active: Vec<SessionRow>,
    /// When the router booted, by the agent's clock (now minus the
    /// `/system/resource` uptime read at connect time, so it costs no read
    /// per cycle). Tells a reboot from ordinary logouts; `None` if unknown.
    pub router_boot: Option<Timestamp>,
}

fn flag(attrs: &Attrs, key: &str) -> bool {
    attrs.get(key) == Some(b"true") || attrs.get(key) == Some(b"yes")
}

impl UserRow {
    pub fn from_attrs(attrs: &Attrs) -> UserRow {
        UserRow {
            id: attrs.text(".id"),
            name: attrs.text("name"),
            profile: attrs.text("profile"),
            comment: attrs.get("comment").unwrap_or_default().to_vec(),
            disabled: flag(attrs, "disabled"),
        }
    }
}

impl SessionRow {
    /// Parses an active entry; values that do not parse become `None` and
    /// are reported in `warnings`.
    pub fn from_attrs(
        service: Service,
        attrs: &Attrs,
        warnings: &mut Vec<ValueWarning>,
    ) -> SessionRow {
        let table = match service {
            Service::Hotspot => "/ip/hotspot/active",
            Service::Pppoe => "/ppp/active",
        };
        let mut warn = |field: &'static str, raw: &[u8]| {
            warnings.push(ValueWarning {
                table,
                field,
                value: String::from_utf8_lossy(raw).chars().take(64).collect(),
            })
        };
        let uptime_secs =
            attrs
                .get("uptime")
                .and_then(|raw| match crate::duration::parse_duration(raw) {
                    Ok(d) => Some(d.as_secs()),
                    Err(_) => {
                        warn("uptime", raw);
                        None
                    }
                });
        let mut counter = |field: &'static str| {
            let raw = attrs.get(field)?;
            match std::str::from_utf8(raw)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(n) => Some(n),
                None => {
                    warn(field, raw);
                    None
                }
            }
        };
        let bytes_in = counter("bytes-in");
        let bytes_out = counter("bytes-out");
        let (user, mac, caller_id, login_by) = match service {
            Service::Hotspot => (
                attrs.text("user"),
                attrs.text("mac-address"),
                String::new(),
                attrs.text("login-by"),
            ),
            Service::Pppoe => (
                attrs.text("name"),
                String::new(),
                attrs.text("caller-id"),
                attrs.text("service"),
            ),
        };
        SessionRow {
            service,
            id: attrs.text(".id"),
            user,
            address: attrs.text("address"),
            mac,
            caller_id,
            login_by,
            session_id: attrs.text("session-id"),
            uptime_secs,
            bytes_in,
            bytes_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &[u8])]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn hotspot_session_parses_and_flags_bad_values() {
        let a = attrs(&[
            (".id", b"*1A"),
            ("user", b"V1"),
            ("address", b"10.5.50.2"),
            ("mac-address", b"AA:BB:CC:00:11:22"),
            ("login-by", b"http-chap"),
            ("uptime", b"1h2m3s"),
            ("bytes-in", b"12345"),
            ("bytes-out", b"lots"),
        ]);
        let mut warnings = Vec::new();
        let s = SessionRow::from_attrs(Service::Hotspot, &a, &mut warnings);
        assert_eq!(s.uptime_secs, Some(3723));
        assert_eq!(s.bytes_in, Some(12345));
        assert_eq!(s.bytes_out, None);
        assert_eq!(s.mac, "AA:BB:CC:00:11:22");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].field, "bytes-out");
    }

    #[test]
    fn ppp_session_uses_name_and_caller_id() {
        let a = attrs(&[
            (".id", b"*2"),
            ("name", b"cust1"),
            ("service", b"pppoe"),
            ("caller-id", b"AA:BB:CC:00:11:22"),
            ("uptime", b"6w6d18:33:07"),
            ("session-id", b"0x81400001"),
        ]);
        let s = SessionRow::from_attrs(Service::Pppoe, &a, &mut Vec::new());
        assert_eq!(s.user, "cust1");
        assert_eq!(s.caller_id, "AA:BB:CC:00:11:22");
        assert_eq!(
            s.uptime_secs,
            Some(6 * 604800 + 6 * 86400 + 18 * 3600 + 33 * 60 + 7)
        );
        assert_eq!(s.bytes_in, None);
    }

    #[test]
    fn user_row_keeps_comment_bytes() {
        let a = attrs(&[
            (".id", b"*3"),
            ("name", b"u"),
            ("comment", b"caf\xe9"),
            ("disabled", b"true"),
        ]);
        let u = UserRow::from_attrs(&a);
        assert_eq!(u.comment, b"caf\xe9");
        assert!(u.disabled);
    }
}
