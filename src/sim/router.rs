//! The simulated router's data: its menus, its clock, and the session
//! life cycle (login, traffic, logout) that moves counters around the way
//! RouterOS does.

use std::time::Duration;

use super::tables::{
    DateStyle, HOTSPOT_ACTIVE, HOTSPOT_PROFILE, HOTSPOT_USER, INTERFACE, PACKAGE, PPP_ACTIVE,
    PPP_PROFILE, PPP_SECRET, Printed, SYSTEM_SCHEDULER, SYSTEM_SCRIPT, Table, Value,
};

/// The menus the simulator knows, by API path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Menu {
    HotspotUser,
    HotspotActive,
    HotspotProfile,
    PppSecret,
    PppActive,
    PppProfile,
    SystemResource,
    SystemIdentity,
    SystemPackage,
    SystemClock,
    NtpClient,
    Interface,
    SystemScript,
    SystemScheduler,
}

pub(crate) const MENUS: &[(&str, Menu)] = &[
    ("/ip/hotspot/user", Menu::HotspotUser),
    ("/ip/hotspot/active", Menu::HotspotActive),
    ("/ip/hotspot/user/profile", Menu::HotspotProfile),
    ("/ppp/secret", Menu::PppSecret),
    ("/ppp/active", Menu::PppActive),
    ("/ppp/profile", Menu::PppProfile),
    ("/system/resource", Menu::SystemResource),
    ("/system/identity", Menu::SystemIdentity),
    ("/system/package", Menu::SystemPackage),
    ("/system/clock", Menu::SystemClock),
    ("/system/ntp/client", Menu::NtpClient),
    ("/interface", Menu::Interface),
    ("/system/script", Menu::SystemScript),
    ("/system/scheduler", Menu::SystemScheduler),
];

impl Menu {
    pub(crate) fn from_path(path: &[u8]) -> Option<Menu> {
        MENUS
            .iter()
            .find(|(p, _)| p.as_bytes() == path)
            .map(|&(_, m)| m)
    }
}

/// Bytes per second an active session moves while the clock advances:
/// deterministic, but different per session so totals are not all equal.
fn rates(id: u32) -> (u64, u64) {
    let up = 1_000 + u64::from(id % 7) * 250;
    (up, up * 8)
}

/// Rough packets for a byte count (average packet ~700 bytes).
fn packets(bytes: u64) -> u64 {
    bytes.div_ceil(700)
}

#[derive(Debug, Clone)]
pub(crate) struct Router {
    pub(crate) hs_users: Table,
    pub(crate) hs_active: Table,
    pub(crate) hs_profiles: Table,
    pub(crate) ppp_secrets: Table,
    pub(crate) ppp_active: Table,
    pub(crate) ppp_profiles: Table,
    pub(crate) packages: Table,
    pub(crate) scripts: Table,
    pub(crate) schedulers: Table,
    pub(crate) interfaces: Table,
    /// `/system/ntp/client` `status`: `synchronized` when true (the
    /// default: a router with a working NTP client), else `waiting` (a
    /// router whose WAN is down).
    pub(crate) ntp_synced: bool,
    /// `/system/clock` `time-zone-name` (`manual` by default).
    pub(crate) tz_name: String,
    /// Offset of local time from UTC in seconds, shown as `gmt-offset`;
    /// `date` and `time` are local time, as on a router.
    pub(crate) gmt_offset: i32,
    pub(crate) gmt_offset_style: GmtOffsetStyle,
    pub(crate) identity: Vec<u8>,
    pub(crate) version: String,
    pub(crate) board_name: String,
    pub(crate) dates: DateStyle,
    /// RouterOS 7.18+: `!empty` before `!done` when a print has no rows.
    pub(crate) empty_reply: bool,
    /// Simulated time since the simulator started; only `advance` moves it.
    clock: Duration,
    /// `clock` at the last (simulated) boot.
    boot_at: Duration,
    /// Wall-clock Unix time the simulator started at.
    start_unix: i64,
    /// A router without RTC or NTP: its date is 1970 plus uptime.
    pub(crate) clock_1970: bool,
    next_session: u32,
    /// Sessions beginning now are hidden (see `SimHandle::hide_sessions`).
    hide_new: bool,
    /// Hidden `/ip/hotspot/active` and `/ppp/active` ids.
    hidden_hs: std::collections::BTreeSet<u32>,
    hidden_ppp: std::collections::BTreeSet<u32>,
}

/// How `/system/clock` prints `gmt-offset`: RouterOS prints `+07:00`;
/// other versions, scripts and tools have shown the other forms, and the
/// agent must read them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GmtOffsetStyle {
    /// `+07:00`, `-05:30`.
    #[default]
    Colon,
    /// `+0700`, `-0530`.
    Compact,
    /// `+07`: whole hours (minutes, if any, are dropped).
    Hours,
    /// `25200`, `-19800`: seconds.
    Seconds,
}

impl GmtOffsetStyle {
    /// `secs` (east of UTC) in this style. Written here, not with the
    /// agent's formatter, so tests of the agent's parser are independent.
    pub fn show(self, secs: i32) -> String {
        let sign = if secs < 0 { '-' } else { '+' };
        let (h, m) = (
            secs.unsigned_abs() / 3_600,
            secs.unsigned_abs() % 3_600 / 60,
        );
        match self {
            GmtOffsetStyle::Colon => format!("{sign}{h:02}:{m:02}"),
            GmtOffsetStyle::Compact => format!("{sign}{h:02}{m:02}"),
            GmtOffsetStyle::Hours => format!("{sign}{h:02}"),
            GmtOffsetStyle::Seconds => secs.to_string(),
        }
    }
}

/// Hex words of the build time shown by `/system/resource` and packages.
const BUILD_TIME_UNIX: i64 = 1_732_622_843;

impl Router {
    pub(crate) fn new(identity: &str, version: &str, board_name: &str) -> Router {
        let mut r = Router {
            hs_users: Table::new(HOTSPOT_USER),
            hs_active: Table::new(HOTSPOT_ACTIVE),
            hs_profiles: Table::new(HOTSPOT_PROFILE),
            ppp_secrets: Table::new(PPP_SECRET),
            ppp_active: Table::new(PPP_ACTIVE),
            ppp_profiles: Table::new(PPP_PROFILE),
            packages: Table::new(PACKAGE),
            scripts: Table::new(SYSTEM_SCRIPT),
            schedulers: Table::new(SYSTEM_SCHEDULER),
            interfaces: Table::new(INTERFACE),
            ntp_synced: true,
            tz_name: "manual".to_owned(),
            gmt_offset: 0,
            gmt_offset_style: GmtOffsetStyle::default(),
            identity: identity.as_bytes().to_vec(),
            version: version.to_owned(),
            board_name: board_name.to_owned(),
            dates: DateStyle::for_version(version),
            empty_reply: false,
            clock: Duration::ZERO,
            boot_at: Duration::ZERO,
            start_unix: crate::clock::Timestamp::now().unix(),
            clock_1970: false,
            next_session: 1,
            hide_new: false,
            hidden_hs: Default::default(),
            hidden_ppp: Default::default(),
        };
        // Built-in items keep the ids a fresh router gives them.
        r.hs_profiles
            .insert_with_id(0, vec![("name", Value::str("default"))]);
        r.ppp_profiles
            .insert_with_id(0, vec![("name", Value::str("default"))]);
        r.ppp_profiles.insert_with_id(
            0xFFFF_FFFE,
            vec![("name", Value::str("default-encryption"))],
        );
        r.interfaces.insert(vec![("name", Value::str("ether1"))]);
        let bare_version = version.split_whitespace().next().unwrap_or(version);
        r.packages.insert(vec![
            ("name", Value::str("routeros")),
            ("version", Value::str(bare_version)),
            ("build-time", Value::str(r.dates.format(BUILD_TIME_UNIX))),
        ]);
        r
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.clock.saturating_sub(self.boot_at)
    }

    /// The router's idea of the current Unix time.
    pub(crate) fn now_unix(&self) -> i64 {
        let secs = if self.clock_1970 {
            self.uptime().as_secs()
        } else {
            self.clock.as_secs()
        };
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        if self.clock_1970 {
            secs
        } else {
            self.start_unix.saturating_add(secs)
        }
    }

    pub(crate) fn table(&self, menu: Menu) -> Option<&Table> {
        Some(match menu {
            Menu::HotspotUser => &self.hs_users,
            Menu::HotspotActive => &self.hs_active,
            Menu::HotspotProfile => &self.hs_profiles,
            Menu::PppSecret => &self.ppp_secrets,
            Menu::PppActive => &self.ppp_active,
            Menu::PppProfile => &self.ppp_profiles,
            Menu::SystemPackage => &self.packages,
            Menu::SystemScript => &self.scripts,
            Menu::SystemScheduler => &self.schedulers,
            Menu::Interface => &self.interfaces,
            Menu::SystemResource | Menu::SystemIdentity | Menu::SystemClock | Menu::NtpClient => {
                return None;
            }
        })
    }

    pub(crate) fn table_mut(&mut self, menu: Menu) -> Option<&mut Table> {
        Some(match menu {
            Menu::HotspotUser => &mut self.hs_users,
            Menu::HotspotActive => &mut self.hs_active,
            Menu::HotspotProfile => &mut self.hs_profiles,
            Menu::PppSecret => &mut self.ppp_secrets,
            Menu::PppActive => &mut self.ppp_active,
            Menu::PppProfile => &mut self.ppp_profiles,
            Menu::SystemPackage => &mut self.packages,
            Menu::SystemScript => &mut self.scripts,
            Menu::SystemScheduler => &mut self.schedulers,
            Menu::Interface => &mut self.interfaces,
            Menu::SystemResource | Menu::SystemIdentity | Menu::SystemClock | Menu::NtpClient => {
                return None;
            }
        })
    }

    /// Every item of a menu as `print` shows it.
    pub(crate) fn print(&self, menu: Menu) -> Vec<Printed> {
        let kv = |pairs: Vec<(&str, String)>| -> Printed {
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.into_bytes()))
                .collect()
        };
        match menu {
            Menu::SystemIdentity => vec![vec![(b"name".to_vec(), self.identity.clone())]],
            Menu::SystemResource => vec![kv(self.resource())],
            Menu::SystemClock => {
                let local = self.now_unix().saturating_add(i64::from(self.gmt_offset));
                let (date, time) = self.dates.split(local);
                vec![kv(vec![
                    ("time", time),
                    ("date", date),
                    ("time-zone-autodetect", "false".into()),
                    ("time-zone-name", self.tz_name.clone()),
                    ("gmt-offset", self.gmt_offset_style.show(self.gmt_offset)),
                    ("dst-active", "false".into()),
                ])]
            }
            Menu::NtpClient => vec![kv(vec![
                ("enabled", "true".into()),
                ("mode", "unicast".into()),
                ("servers", "pool.ntp.org".into()),
                (
                    "status",
                    if self.ntp_synced {
                        "synchronized"
                    } else {
                        "waiting"
                    }
                    .into(),
                ),
            ])],

            _ => self.visible(menu).map(|r| r.print(self.dates)).collect(),
        }
    }

    /// Each visible row's id and revision (see `Row::rev`), in print order.
    pub(crate) fn revisions(&self, menu: Menu) -> Vec<(u32, u64)> {
        self.visible(menu).map(|r| (r.id, r.rev)).collect()
    }

    /// The visible rows with these ids (ascending), printed.
    pub(crate) fn print_ids(&self, menu: Menu, ids: &[u32]) -> Vec<Printed> {
        self.visible(menu)
            .filter(|r| ids.binary_search(&r.id).is_ok())
            .map(|r| r.print(self.dates))
            .collect()
    }

    /// A table menu's rows as `print` shows them (hidden sessions left out).
    fn visible(&self, menu: Menu) -> impl Iterator<Item = &super::tables::Row> {
        let hidden = match menu {
            Menu::HotspotActive => Some(&self.hidden_hs),
            Menu::PppActive => Some(&self.hidden_ppp),
            _ => None,
        };
        self.table(menu)
            .map(|t| t.rows.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(move |r| hidden.is_none_or(|h| !h.contains(&r.id)))
    }

    /// See `SimHandle::hide_sessions`.
    pub(crate) fn set_hide_sessions(&mut self, on: bool) {
        self.hide_new = on;
        if !on {
            self.hidden_hs.clear();
            self.hidden_ppp.clear();
        }
    }

    fn resource(&self) -> Vec<(&'static str, String)> {
        let up = self.uptime();
        let sessions = (self.hs_active.rows.len() + self.ppp_active.rows.len()) as u64;
        let total_mem: u64 = 256 * 1024 * 1024;
        let free_mem = total_mem - 96 * 1024 * 1024 - (sessions * 48 * 1024).min(64 << 20);
        // Deterministic wobble so the load is not a constant.
        let cpu_load = 2 + (up.as_secs() * 7 + sessions * 3) % 23;
        vec![
            (
                "uptime",
                crate::duration::format_duration(Duration::from_secs(up.as_secs())),
            ),
            ("version", self.version.clone()),
            ("build-time", self.dates.format(BUILD_TIME_UNIX)),
            ("free-memory", free_mem.to_string()),
            ("total-memory", total_mem.to_string()),
            ("cpu", "ARM".into()),
            ("cpu-count", "4".into()),
            ("cpu-frequency", "716".into()),
            ("cpu-load", cpu_load.to_string()),
            ("free-hdd-space", "4214784".into()),
            ("total-hdd-space", "16777216".into()),
            ("architecture-name", "arm".into()),
            ("board-name", self.board_name.clone()),
            ("platform", "MikroTik".into()),
        ]
    }

    /// Makes sure a profile exists (test helpers may name any profile).
    pub(crate) fn ensure_profile(&mut self, ppp: bool, name: &[u8]) {
        let table = if ppp {
            &mut self.ppp_profiles
        } else {
            &mut self.hs_profiles
        };
        if table.by_name(name).is_none() {
            table.insert(vec![("name", Value::str(name))]);
        }
    }

    // ---- hotspot sessions ----

    pub(crate) fn hotspot_login(
        &mut self,
        user: &[u8],
        ip: &str,
        mac: &str,
    ) -> Result<u32, String> {
        let u = self
            .hs_users
            .by_name(user)
            .ok_or_else(|| "invalid username or password".to_owned())?;
        if u.flag("disabled") {
            return Err("user is disabled".to_owned());
        }
        if let Some(limit) = u.get("limit-uptime").map(Value::as_int)
            && u.int("uptime") >= limit
        {
            return Err("user has reached uptime limit".to_owned());
        }
        let shared = self
            .hs_profiles
            .by_name(u.bytes("profile"))
            .map_or(1, |p| p.int("shared-users"));
        let sessions = self
            .hs_active
            .rows
            .iter()
            .filter(|r| r.bytes("user") == user)
            .count() as u64;
        if sessions >= shared {
            return Err("no more sessions are allowed for user".to_owned());
        }
        let id = self.hs_active.insert(vec![
            ("user", Value::str(user)),
            ("address", Value::str(ip)),
            ("mac-address", Value::str(mac)),
        ]);
        if self.hide_new {
            self.hidden_hs.insert(id);
        }
        self.refresh_time_left_of(id);
        Ok(id)
    }

    /// Ends one hotspot session, adding its counters to the user entry.
    pub(crate) fn hotspot_kick(&mut self, active_id: u32) -> bool {
        let Some(session) = self.hs_active.remove(active_id) else {
            return false;
        };
        self.hidden_hs.remove(&active_id);
        let user = session.bytes("user").to_vec();
        if let Some(u) = self
            .hs_users
            .rows
            .iter_mut()
            .find(|r| r.bytes("name") == user)
        {
            for counter in [
                "uptime",
                "bytes-in",
                "bytes-out",
                "packets-in",
                "packets-out",
            ] {
                u.add(counter, session.int(counter));
            }
        }
        true
    }

    /// Logs out every session of `user`; returns how many there were.
    pub(crate) fn hotspot_logout(&mut self, user: &[u8]) -> usize {
        let ids: Vec<u32> = self
            .hs_active
            .rows
            .iter()
            .filter(|r| r.bytes("user") == user)
            .map(|r| r.id)
            .collect();
        for &id in &ids {
            self.hotspot_kick(id);
        }
        ids.len()
    }

    /// `session-time-left` follows the user's `limit-uptime`.
    fn refresh_time_left(&mut self) {
        // One pass over the users: with thousands of sessions a lookup per
        // session would make every clock tick quadratic.
        let limits: std::collections::HashMap<&[u8], (u64, u64)> = self
            .hs_users
            .rows
            .iter()
            .filter_map(|u| {
                Some((
                    u.bytes("name"),
                    (u.get("limit-uptime")?.as_int(), u.int("uptime")),
                ))
            })
            .collect();
        for s in &mut self.hs_active.rows {
            let left = limits.get(s.bytes("user")).map(|&(limit, used)| {
                Value::Dur(limit.saturating_sub(used).saturating_sub(s.int("uptime")))
            });
            s.set("session-time-left", left);
        }
    }

    /// `session-time-left` of one new session.
    fn refresh_time_left_of(&mut self, id: u32) {
        let Some(user) = self.hs_active.by_id(id).map(|s| s.bytes("user").to_vec()) else {
            return;
        };
        let left = self
            .hs_users
            .by_name(&user)
            .and_then(|u| Some((u.get("limit-uptime")?.as_int(), u.int("uptime"))))
            .map(|(limit, used)| Value::Dur(limit.saturating_sub(used)));
        if let Some(s) = self.hs_active.by_id_mut(id) {
            s.set("session-time-left", left);
        }
    }

    // ---- PPP sessions ----

    pub(crate) fn ppp_connect(
        &mut self,
        name: &[u8],
        ip: &str,
        caller_id: &str,
    ) -> Result<u32, String> {
        let s = self
            .ppp_secrets
            .by_name(name)
            .ok_or_else(|| "no such secret".to_owned())?;
        if s.flag("disabled") {
            return Err("secret is disabled".to_owned());
        }
        let only_one = self
            .ppp_profiles
            .by_name(s.bytes("profile"))
            .is_some_and(|p| p.bytes("only-one") == b"yes");
        if only_one && self.ppp_active.by_name(name).is_some() {
            return Err("only one session allowed for this user".to_owned());
        }
        let service = match s.bytes("service") {
            b"any" | b"" => b"pppoe".to_vec(),
            other => other.to_vec(),
        };
        let session = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        // Each session gets its dynamic interface, as RouterOS does.
        let mut iface = b"<pppoe-".to_vec();
        iface.extend_from_slice(name);
        iface.push(b'>');
        self.interfaces.insert(vec![
            ("name", Value::Str(iface)),
            ("type", Value::str("pppoe-in")),
            ("mtu", Value::str("1480")),
            ("dynamic", Value::Bool(true)),
        ]);
        let id = self.ppp_active.insert(vec![
            ("name", Value::str(name)),
            ("service", Value::Str(service)),
            ("caller-id", Value::str(caller_id)),
            ("address", Value::str(ip)),
            (
                "session-id",
                Value::str(format!("0x81{:06X}", session & 0xFF_FFFF)),
            ),
        ]);
        if self.hide_new {
            self.hidden_ppp.insert(id);
        }
        Ok(id)
    }

    /// Ends one PPP session, recording it on the secret as RouterOS does.
    pub(crate) fn ppp_kick(&mut self, active_id: u32, reason: &str) -> bool {
        let Some(session) = self.ppp_active.remove(active_id) else {
            return false;
        };
        self.hidden_ppp.remove(&active_id);
        let now = self.now_unix();
        let name = session.bytes("name").to_vec();
        if let Some(id) = self.pppoe_interface(&name).map(|i| i.id) {
            self.interfaces.remove(id);
        }
        if let Some(s) = self
            .ppp_secrets
            .rows
            .iter_mut()
            .find(|r| r.bytes("name") == name)
        {
            s.set("last-logged-out", Some(Value::Date(now)));
            s.set(
                "last-caller-id",
                Some(Value::str(session.bytes("caller-id"))),
            );
            s.set("last-disconnect-reason", Some(Value::str(reason)));
        }
        true
    }

    pub(crate) fn ppp_disconnect(&mut self, name: &[u8], reason: &str) -> usize {
        let ids: Vec<u32> = self
            .ppp_active
            .rows
            .iter()
            .filter(|r| r.bytes("name") == name)
            .map(|r| r.id)
            .collect();
        for &id in &ids {
            self.ppp_kick(id, reason);
        }
        ids.len()
    }

    // ---- time and traffic ----

    /// The dynamic `pppoe-in` interface of `user`'s session.
    fn pppoe_interface(&self, user: &[u8]) -> Option<&super::tables::Row> {
        self.interfaces.rows.iter().find(|r| {
            r.bytes("type") == b"pppoe-in"
                && r.bytes("name")
                    .strip_prefix(b"<pppoe-")
                    .and_then(|n| n.strip_suffix(b">"))
                    == Some(user)
        })
    }

    /// Counts traffic on a `pppoe-in` interface: `rx` is what the router
    /// received from the customer, `tx` what it sent them.
    fn pppoe_traffic(&mut self, user: &[u8], rx: u64, tx: u64) -> bool {
        let Some(id) = self.pppoe_interface(user).map(|i| i.id) else {
            return false;
        };
        if let Some(i) = self.interfaces.by_id_mut(id) {
            i.add("rx-byte", rx);
            i.add("tx-byte", tx);
            i.add("rx-packet", packets(rx));
            i.add("tx-packet", packets(tx));
        }
        true
    }

    /// Adds traffic to the active session(s) of `user`: hotspot `bytes-in`
    /// (from the user) and `bytes-out` (to the user); PPP sessions have no
    /// counters in `/ppp/active`, so theirs go to their `pppoe-in`
    /// interface as `rx-byte` and `tx-byte`.
    pub(crate) fn add_traffic(&mut self, user: &[u8], bytes_in: u64, bytes_out: u64) -> bool {
        let mut found = self.pppoe_traffic(user, bytes_in, bytes_out);
        for s in self
            .hs_active
            .rows
            .iter_mut()
            .filter(|r| r.bytes("user") == user)
        {
            s.add("bytes-in", bytes_in);
            s.add("bytes-out", bytes_out);
            s.add("packets-in", packets(bytes_in));
            s.add("packets-out", packets(bytes_out));
            found = true;
        }
        found
    }

    /// Moves the simulated clock: session uptimes and counters grow, and
    /// hotspot sessions whose user reached `limit-uptime` are logged out.
    pub(crate) fn advance(&mut self, d: Duration) {
        let before = self.clock.as_secs();
        self.clock = self.clock.saturating_add(d);
        let secs = self.clock.as_secs() - before;
        if secs == 0 {
            return;
        }
        for s in &mut self.hs_active.rows {
            let (up, down) = rates(s.id);
            s.add("uptime", secs);
            s.add("bytes-in", up * secs);
            s.add("bytes-out", down * secs);
            s.add("packets-in", packets(up * secs));
            s.add("packets-out", packets(down * secs));
        }
        let mut ppp = Vec::new();
        for s in &mut self.ppp_active.rows {
            s.add("uptime", secs);
            ppp.push((s.bytes("name").to_vec(), rates(s.id)));
        }
        for (name, (up, down)) in ppp {
            self.pppoe_traffic(&name, up * secs, down * secs);
        }
        self.refresh_time_left();
        let expired: Vec<u32> = self
            .hs_active
            .rows
            .iter()
            .filter(|s| matches!(s.get("session-time-left"), Some(Value::Dur(0))))
            .map(|s| s.id)
            .collect();
        for id in expired {
            self.hotspot_kick(id);
        }
    }

    /// What a reboot does to the data: sessions end (counters saved into
    /// the user entries), uptime restarts.
    pub(crate) fn reboot(&mut self) {
        let hs: Vec<u32> = self.hs_active.rows.iter().map(|r| r.id).collect();
        for id in hs {
            self.hotspot_kick(id);
        }
        let ppp: Vec<u32> = self.ppp_active.rows.iter().map(|r| r.id).collect();
        for id in ppp {
            self.ppp_kick(id, "reboot");
        }
        // Active entries are numbered afresh after a boot, so `.id`s of
        // sessions from before the reboot come back for new sessions.
        self.hs_active.restart_ids();
        self.ppp_active.restart_ids();
        self.boot_at = self.clock;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::new("sim", "7.16.2 (stable)", "hAP ac^2");
        r.ensure_profile(false, b"voucher-1h");
        r.hs_users.insert(vec![
            ("name", Value::str("v1")),
            ("profile", Value::str("voucher-1h")),
            ("limit-uptime", Value::Dur(3600)),
        ]);
        r.hs_users.insert(vec![
            ("name", Value::str("off")),
            ("disabled", Value::Bool(true)),
        ]);
        r.ensure_profile(true, b"pppoe-10M");
        r.ppp_secrets.insert(vec![
            ("name", Value::str("p1")),
            ("profile", Value::str("pppoe-10M")),
        ]);
        r
    }

    fn field(r: &Router, menu: Menu, row: usize, key: &str) -> Option<String> {
        r.print(menu)
            .get(row)?
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn login_traffic_logout_moves_counters() {
        let mut r = router();
        let id = r.hotspot_login(b"v1", "10.5.50.2", "AA:BB:CC:00:00:01");
        assert_eq!(id, Ok(1));
        assert_eq!(
            field(&r, Menu::HotspotActive, 0, "session-time-left").as_deref(),
            Some("1h")
        );
        r.advance(Duration::from_secs(600));
        assert!(r.add_traffic(b"v1", 100, 2000));
        assert_eq!(
            field(&r, Menu::HotspotActive, 0, "uptime").as_deref(),
            Some("10m")
        );
        assert_eq!(
            field(&r, Menu::HotspotActive, 0, "session-time-left").as_deref(),
            Some("50m")
        );
        let bytes_in: u64 = field(&r, Menu::HotspotActive, 0, "bytes-in")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert_eq!(bytes_in, 600 * 1_250 + 100);
        // User counters move only when the session ends.
        assert_eq!(
            field(&r, Menu::HotspotUser, 0, "uptime").as_deref(),
            Some("0s")
        );
        assert_eq!(r.hotspot_logout(b"v1"), 1);
        assert!(r.hs_active.rows.is_empty());
        assert_eq!(
            field(&r, Menu::HotspotUser, 0, "uptime").as_deref(),
            Some("10m")
        );
        assert_eq!(
            field(&r, Menu::HotspotUser, 0, "bytes-in").as_deref(),
            Some(bytes_in.to_string().as_str())
        );
    }

    #[test]
    fn login_refusals() {
        let mut r = router();
        assert!(r.hotspot_login(b"nobody", "10.5.50.9", "x").is_err());
        assert!(r.hotspot_login(b"off", "10.5.50.9", "x").is_err());
        assert!(r.hotspot_login(b"v1", "10.5.50.2", "m1").is_ok());
        // shared-users defaults to 1.
        assert!(r.hotspot_login(b"v1", "10.5.50.3", "m2").is_err());
    }

    #[test]
    fn limit_uptime_ends_the_session() {
        let mut r = router();
        assert!(r.hotspot_login(b"v1", "10.5.50.2", "m1").is_ok());
        r.advance(Duration::from_secs(3599));
        assert_eq!(r.hs_active.rows.len(), 1);
        r.advance(Duration::from_secs(1));
        assert!(r.hs_active.rows.is_empty());
        assert_eq!(
            field(&r, Menu::HotspotUser, 0, "uptime").as_deref(),
            Some("1h")
        );
        assert!(r.hotspot_login(b"v1", "10.5.50.2", "m1").is_err());
    }

    #[test]
    fn ppp_sessions_and_reboot() {
        let mut r = router();
        assert!(
            r.ppp_connect(b"p1", "10.10.0.2", "AA:00:00:00:00:01")
                .is_ok()
        );
        assert!(r.ppp_connect(b"ghost", "10.10.0.3", "x").is_err());
        r.advance(Duration::from_secs(90));
        assert_eq!(
            field(&r, Menu::PppActive, 0, "uptime").as_deref(),
            Some("1m30s")
        );
        assert_eq!(field(&r, Menu::PppActive, 0, "bytes-in"), None);
        // The counters are on the session's dynamic interface instead
        // (row 0 is the static ether1): rx from the customer, tx to them.
        assert_eq!(
            field(&r, Menu::Interface, 1, "name").as_deref(),
            Some("<pppoe-p1>")
        );
        assert_eq!(
            field(&r, Menu::Interface, 1, "type").as_deref(),
            Some("pppoe-in")
        );
        let (up, down) = rates(r.ppp_active.rows[0].id);
        assert!(r.add_traffic(b"p1", 10, 20));
        assert_eq!(
            field(&r, Menu::Interface, 1, "rx-byte"),
            Some((up * 90 + 10).to_string())
        );
        assert_eq!(
            field(&r, Menu::Interface, 1, "tx-byte"),
            Some((down * 90 + 20).to_string())
        );
        assert!(r.hotspot_login(b"v1", "10.5.50.2", "m1").is_ok());
        r.advance(Duration::from_secs(30));
        r.reboot();
        assert!(r.hs_active.rows.is_empty() && r.ppp_active.rows.is_empty());
        // The session's interface went with it.
        assert_eq!(r.interfaces.rows.len(), 1);
        assert_eq!(r.uptime(), Duration::ZERO);
        assert_eq!(
            field(&r, Menu::PppSecret, 0, "last-disconnect-reason").as_deref(),
            Some("reboot")
        );
        assert_eq!(
            field(&r, Menu::PppSecret, 0, "last-caller-id").as_deref(),
            Some("AA:00:00:00:00:01")
        );
        assert_eq!(
            field(&r, Menu::HotspotUser, 0, "uptime").as_deref(),
            Some("30s")
        );
    }

    #[test]
    fn clock_1970() {
        let mut r = router();
        r.clock_1970 = true;
        r.advance(Duration::from_secs(65));
        assert_eq!(
            field(&r, Menu::SystemClock, 0, "date").as_deref(),
            Some("1970-01-01")
        );
        assert_eq!(
            field(&r, Menu::SystemClock, 0, "time").as_deref(),
            Some("00:01:05")
        );
        assert_eq!(
            field(&r, Menu::SystemResource, 0, "uptime").as_deref(),
            Some("1m5s")
        );
        r.clock_1970 = false;
        assert!(r.now_unix() > 1_600_000_000);
    }

    #[test]
    fn builtin_ids() {
        let r = router();
        assert_eq!(
            field(&r, Menu::HotspotProfile, 0, ".id").as_deref(),
            Some("*0")
        );
        assert_eq!(field(&r, Menu::PppProfile, 1, ".id").as_deref(), Some("*1"));
        assert_eq!(
            field(&r, Menu::PppProfile, 2, ".id").as_deref(),
            Some("*FFFFFFFE")
        );
        assert_eq!(
            field(&r, Menu::SystemPackage, 0, "version").as_deref(),
            Some("7.16.2")
        );
    }
}
