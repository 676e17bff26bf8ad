//! Typed rows with a per-menu schema, printed the way RouterOS 7 prints them
//! over the API: `.id` first, then the set properties in menu order, unset
//! optional properties left out entirely (so `?-comment` finds them).

use std::time::Duration;

use crate::duration::{format_duration, parse_duration};

/// How a property is stored, parsed from `=key=value` and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    /// Printed `true`/`false`; accepts `yes`/`no` too.
    Bool,
    /// Decimal integer (bytes, packets, counts).
    Int,
    /// Whole seconds, printed as a RouterOS duration (`1h2m3s`).
    Dur,
    /// Unix seconds, printed as a router date (format depends on the version).
    Date,
}

/// Value of a property before anything sets it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Def {
    /// Not printed at all.
    Absent,
    Str(&'static str),
    Bool(bool),
    Int(u64),
    Dur(u64),
}

#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// Accepted by `add`/`set`/`unset`; read-only properties trap as unknown.
    pub(crate) writable: bool,
    pub(crate) default: Def,
}

const fn rw(name: &'static str, kind: Kind, default: Def) -> Field {
    Field {
        name,
        kind,
        writable: true,
        default,
    }
}

const fn ro(name: &'static str, kind: Kind, default: Def) -> Field {
    Field {
        name,
        kind,
        writable: false,
        default,
    }
}

use Def::Absent;
use Kind::{Bool, Date, Dur, Int, Str};

pub(crate) static HOTSPOT_USER: &[Field] = &[
    rw("name", Str, Absent),
    rw("password", Str, Def::Str("")),
    rw("profile", Str, Def::Str("default")),
    rw("server", Str, Def::Str("all")),
    rw("limit-uptime", Dur, Absent),
    rw("limit-bytes-in", Int, Absent),
    rw("limit-bytes-out", Int, Absent),
    rw("limit-bytes-total", Int, Absent),
    rw("mac-address", Str, Absent),
    rw("address", Str, Absent),
    rw("email", Str, Absent),
    ro("uptime", Dur, Def::Dur(0)),
    ro("bytes-in", Int, Def::Int(0)),
    ro("bytes-out", Int, Def::Int(0)),
    ro("packets-in", Int, Def::Int(0)),
    ro("packets-out", Int, Def::Int(0)),
    rw("comment", Str, Absent),
    rw("disabled", Bool, Def::Bool(false)),
    ro("dynamic", Bool, Def::Bool(false)),
    ro("default", Bool, Def::Bool(false)),
];

pub(crate) static HOTSPOT_ACTIVE: &[Field] = &[
    ro("server", Str, Def::Str("hotspot1")),
    ro("user", Str, Absent),
    ro("domain", Str, Absent),
    ro("address", Str, Absent),
    ro("mac-address", Str, Absent),
    ro("login-by", Str, Def::Str("http-chap")),
    ro("uptime", Dur, Def::Dur(0)),
    ro("idle-time", Dur, Def::Dur(0)),
    ro("session-time-left", Dur, Absent),
    ro("keepalive-timeout", Dur, Def::Dur(120)),
    ro("bytes-in", Int, Def::Int(0)),
    ro("bytes-out", Int, Def::Int(0)),
    ro("packets-in", Int, Def::Int(0)),
    ro("packets-out", Int, Def::Int(0)),
    ro("radius", Bool, Def::Bool(false)),
    ro("blocked", Bool, Def::Bool(false)),
];

/// Besides the limits, the properties Mikhmon sets on its profiles
/// (`address-pool`, `status-autorefresh`, `parent-queue`) and the login
/// scripts (`on-login`, `on-logout`) it keeps its metadata in.
pub(crate) static HOTSPOT_PROFILE: &[Field] = &[
    rw("name", Str, Absent),
    rw("address-pool", Str, Def::Str("none")),
    rw("rate-limit", Str, Absent),
    rw("shared-users", Int, Def::Int(1)),
    rw("session-timeout", Dur, Absent),
    rw("status-autorefresh", Dur, Def::Dur(60)),
    rw("parent-queue", Str, Def::Str("none")),
    rw("on-login", Str, Def::Str("")),
    rw("on-logout", Str, Def::Str("")),
];

/// `/system/script`: Mikhmon keeps its sales records here.
pub(crate) static SYSTEM_SCRIPT: &[Field] = &[
    rw("name", Str, Absent),
    rw("owner", Str, Def::Str("admin")),
    rw(
        "policy",
        Str,
        Def::Str("ftp,reboot,read,write,policy,test,password,sniff,sensitive,romon"),
    ),
    rw("dont-require-permissions", Bool, Def::Bool(false)),
    ro("last-started", Date, Absent),
    ro("run-count", Int, Def::Int(0)),
    rw("source", Str, Def::Str("")),
    ro("invalid", Bool, Def::Bool(false)),
    rw("comment", Str, Absent),
];

/// `/system/scheduler`: Mikhmon's per-profile monitors live here.
/// `start-date`/`start-time` are kept as the text given (the simulator does
/// not run schedules, so nothing needs them as times).
pub(crate) static SYSTEM_SCHEDULER: &[Field] = &[
    rw("name", Str, Absent),
    rw("start-date", Str, Absent),
    rw("start-time", Str, Def::Str("startup")),
    rw("interval", Dur, Def::Dur(0)),
    rw("on-event", Str, Def::Str("")),
    rw("owner", Str, Def::Str("admin")),
    rw(
        "policy",
        Str,
        Def::Str("ftp,reboot,read,write,policy,test,password,sniff,sensitive,romon"),
    ),
    ro("run-count", Int, Def::Int(0)),
    ro("next-run", Str, Absent),
    rw("comment", Str, Absent),
    rw("disabled", Bool, Def::Bool(false)),
];

pub(crate) static PPP_SECRET: &[Field] = &[
    rw("name", Str, Absent),
    rw("service", Str, Def::Str("any")),
    rw("caller-id", Str, Def::Str("")),
    rw("password", Str, Def::Str("")),
    rw("profile", Str, Def::Str("default")),
    rw("local-address", Str, Absent),
    rw("remote-address", Str, Absent),
    rw("routes", Str, Def::Str("")),
    rw("limit-bytes-in", Int, Def::Int(0)),
    rw("limit-bytes-out", Int, Def::Int(0)),
    ro("last-logged-out", Date, Absent),
    ro("last-caller-id", Str, Absent),
    ro("last-disconnect-reason", Str, Absent),
    rw("comment", Str, Absent),
    rw("disabled", Bool, Def::Bool(false)),
];

/// Real `/ppp/active` has no byte counters (those live on the dynamic
/// interface), so neither does this.
pub(crate) static PPP_ACTIVE: &[Field] = &[
    ro("name", Str, Absent),
    ro("service", Str, Def::Str("pppoe")),
    ro("caller-id", Str, Def::Str("")),
    ro("encoding", Str, Def::Str("")),
    ro("address", Str, Absent),
    ro("uptime", Dur, Def::Dur(0)),
    ro("session-id", Str, Absent),
    ro("limit-bytes-in", Int, Def::Int(0)),
    ro("limit-bytes-out", Int, Def::Int(0)),
    ro("radius", Bool, Def::Bool(false)),
];

/// `/interface`: a static ethernet port plus one dynamic `pppoe-in`
/// interface per PPPoE session, carrying that session's counters.
pub(crate) static INTERFACE: &[Field] = &[
    ro("name", Str, Absent),
    ro("type", Str, Def::Str("ether")),
    ro("mtu", Str, Def::Str("auto")),
    ro("rx-byte", Int, Def::Int(0)),
    ro("tx-byte", Int, Def::Int(0)),
    ro("rx-packet", Int, Def::Int(0)),
    ro("tx-packet", Int, Def::Int(0)),
    ro("dynamic", Bool, Def::Bool(false)),
    ro("running", Bool, Def::Bool(true)),
    ro("disabled", Bool, Def::Bool(false)),
];

pub(crate) static PPP_PROFILE: &[Field] = &[
    rw("name", Str, Absent),
    rw("local-address", Str, Absent),
    rw("remote-address", Str, Absent),
    rw("rate-limit", Str, Absent),
    rw("only-one", Str, Def::Str("default")),
];

pub(crate) static PACKAGE: &[Field] = &[
    ro("name", Str, Absent),
    ro("version", Str, Absent),
    ro("build-time", Str, Absent),
    ro("scheduled", Str, Def::Str("")),
    ro("disabled", Bool, Def::Bool(false)),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Str(Vec<u8>),
    Bool(bool),
    Int(u64),
    Dur(u64),
    Date(i64),
}

impl Value {
    pub(crate) fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Str(s.as_ref().to_vec())
    }

    /// Parses a client-supplied value for a property of `kind`.
    pub(crate) fn parse(kind: Kind, raw: &[u8]) -> Option<Value> {
        Some(match kind {
            Kind::Str => Value::Str(raw.to_vec()),
            Kind::Bool => Value::Bool(match raw {
                b"yes" | b"true" => true,
                b"no" | b"false" => false,
                _ => return None,
            }),
            Kind::Int => Value::Int(std::str::from_utf8(raw).ok()?.parse().ok()?),
            Kind::Dur => Value::Dur(parse_duration(raw).ok()?.as_secs()),
            Kind::Date => return None,
        })
    }

    fn from_default(d: Def) -> Option<Value> {
        match d {
            Def::Absent => None,
            Def::Str(s) => Some(Value::str(s)),
            Def::Bool(b) => Some(Value::Bool(b)),
            Def::Int(n) => Some(Value::Int(n)),
            Def::Dur(s) => Some(Value::Dur(s)),
        }
    }

    pub(crate) fn print(&self, dates: DateStyle) -> Vec<u8> {
        match self {
            Value::Str(s) => s.clone(),
            Value::Bool(b) => if *b { "true" } else { "false" }.into(),
            Value::Int(n) => n.to_string().into_bytes(),
            Value::Dur(s) => format_duration(Duration::from_secs(*s)).into_bytes(),
            Value::Date(t) => dates.format(*t).into_bytes(),
        }
    }

    pub(crate) fn as_int(&self) -> u64 {
        match self {
            Value::Int(n) | Value::Dur(n) => *n,
            _ => 0,
        }
    }
}

/// RouterOS changed its date format in 7.10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateStyle {
    /// `2024-01-31 12:00:00` (7.10 and later).
    Iso,
    /// `jan/31/2024 12:00:00` (before 7.10).
    Legacy,
}

impl DateStyle {
    pub(crate) fn for_version(version: &str) -> DateStyle {
        let mut parts = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let major = parts.next().unwrap_or(7);
        let minor = parts.next().unwrap_or(0);
        if (major, minor) >= (7, 10) {
            DateStyle::Iso
        } else {
            DateStyle::Legacy
        }
    }

    /// `(date, time)` of a Unix timestamp in this style.
    pub(crate) fn split(self, unix: i64) -> (String, String) {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400);
        let (y, m, d) = crate::clock::civil_from_days(days);
        let time = format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        );
        let date = match self {
            DateStyle::Iso => format!("{y:04}-{m:02}-{d:02}"),
            DateStyle::Legacy => {
                const MONTHS: [&str; 12] = [
                    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                    "dec",
                ];
                let name = MONTHS.get((m as usize).wrapping_sub(1)).unwrap_or(&"jan");
                format!("{name}/{d:02}/{y:04}")
            }
        };
        (date, time)
    }

    pub(crate) fn format(self, unix: i64) -> String {
        let (date, time) = self.split(unix);
        format!("{date} {time}")
    }
}

pub(crate) type Printed = Vec<(Vec<u8>, Vec<u8>)>;

/// Properties that move on their own; a change in them alone is not a
/// change `listen` reports (a router would otherwise flood every listener
/// every second).
pub(crate) const LIVE: &[&str] = &[
    "uptime",
    "idle-time",
    "session-time-left",
    "bytes-in",
    "bytes-out",
    "packets-in",
    "packets-out",
    "last-seen",
];

/// Source of [`Row::rev`]: unique across tables and time.
static REVISION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_revision() -> u64 {
    REVISION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) id: u32,
    schema: &'static [Field],
    vals: Vec<Option<Value>>,
    /// Changes whenever a property other than the [`LIVE`] ones does: a
    /// `listen` compares revisions to find what changed without printing
    /// every row of a menu of 10,000 users at each change.
    pub(crate) rev: u64,
}

impl Row {
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        let i = self.schema.iter().position(|f| f.name == name)?;
        self.vals[i].as_ref()
    }

    pub(crate) fn bytes(&self, name: &str) -> &[u8] {
        match self.get(name) {
            Some(Value::Str(s)) => s,
            _ => b"",
        }
    }

    pub(crate) fn int(&self, name: &str) -> u64 {
        self.get(name).map_or(0, Value::as_int)
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    /// Sets (or with `None` clears) a property; unknown names are a bug in
    /// the simulator, not client input, so they are ignored.
    pub(crate) fn set(&mut self, name: &str, value: Option<Value>) {
        if let Some(i) = self.schema.iter().position(|f| f.name == name) {
            if self.vals[i] != value && !LIVE.contains(&name) {
                self.rev = next_revision();
            }
            self.vals[i] = value;
        }
    }

    pub(crate) fn add(&mut self, name: &str, delta: u64) {
        let next = self.int(name).saturating_add(delta);
        let value = match self.schema.iter().find(|f| f.name == name).map(|f| f.kind) {
            Some(Kind::Dur) => Value::Dur(next),
            _ => Value::Int(next),
        };
        self.set(name, Some(value));
    }

    pub(crate) fn reset(&mut self, name: &str) {
        if let Some(f) = self.schema.iter().find(|f| f.name == name) {
            self.set(name, Value::from_default(f.default));
        }
    }

    pub(crate) fn print(&self, dates: DateStyle) -> Printed {
        let mut out = Vec::with_capacity(self.vals.len() + 1);
        out.push((b".id".to_vec(), format_id(self.id).into_bytes()));
        for (f, v) in self.schema.iter().zip(&self.vals) {
            if let Some(v) = v {
                out.push((f.name.as_bytes().to_vec(), v.print(dates)));
            }
        }
        out
    }
}

pub(crate) fn format_id(id: u32) -> String {
    format!("*{id:X}")
}

pub(crate) fn parse_id(s: &[u8]) -> Option<u32> {
    let hex = s.strip_prefix(b"*")?;
    u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// One menu's items. Ids count up from `*1` and are never reused, like the
/// router's internal ids (except the active lists after a reboot, see
/// [`Table::restart_ids`]).
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) schema: &'static [Field],
    next_id: u32,
    pub(crate) rows: Vec<Row>,
}

impl Table {
    pub(crate) fn new(schema: &'static [Field]) -> Table {
        Table {
            schema,
            next_id: 1,
            rows: Vec::new(),
        }
    }

    pub(crate) fn field(&self, name: &[u8]) -> Option<&'static Field> {
        self.schema.iter().find(|f| f.name.as_bytes() == name)
    }

    /// Inserts a row from `(property, value)` pairs, defaults for the rest.
    pub(crate) fn insert(&mut self, values: Vec<(&str, Value)>) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        self.insert_with_id(id, values);
        id
    }

    /// Built-in items such as the `default` profile have fixed ids (`*0`,
    /// `*FFFFFFFE`) on a real router.
    pub(crate) fn insert_with_id(&mut self, id: u32, values: Vec<(&str, Value)>) {
        let mut row = Row {
            id,
            schema: self.schema,
            vals: self
                .schema
                .iter()
                .map(|f| Value::from_default(f.default))
                .collect(),
            rev: next_revision(),
        };
        for (name, value) in values {
            row.set(name, Some(value));
        }
        // Keep print order by id, as the router does.
        let at = self.rows.partition_point(|r| r.id < id);
        self.rows.insert(at, row);
    }

    /// Numbers new items from just past the highest id left (from `*1`
    /// when empty), as the router numbers its active lists after a boot.
    pub(crate) fn restart_ids(&mut self) {
        self.next_id = self.rows.last().map_or(1, |r| r.id.saturating_add(1));
    }

    // Rows are kept sorted by id (see `insert_with_id`).
    pub(crate) fn by_id(&self, id: u32) -> Option<&Row> {
        let i = self.rows.partition_point(|r| r.id < id);
        self.rows.get(i).filter(|r| r.id == id)
    }

    pub(crate) fn by_id_mut(&mut self, id: u32) -> Option<&mut Row> {
        let i = self.rows.partition_point(|r| r.id < id);
        self.rows.get_mut(i).filter(|r| r.id == id)
    }

    pub(crate) fn by_name(&self, name: &[u8]) -> Option<&Row> {
        self.rows.iter().find(|r| r.bytes("name") == name)
    }

    pub(crate) fn remove(&mut self, id: u32) -> Option<Row> {
        let i = self.rows.iter().position(|r| r.id == id)?;
        Some(self.rows.remove(i))
    }

    /// Resolves a `.id` / `numbers` list (`*1,*2` or item names) to ids.
    pub(crate) fn resolve(&self, list: &[u8]) -> Result<Vec<u32>, String> {
        let no_item = || "no such item".to_owned();
        let mut ids = Vec::new();
        for token in list.split(|&b| b == b',') {
            let token = token.trim_ascii();
            let id = if token.starts_with(b"*") {
                parse_id(token)
                    .filter(|&id| self.by_id(id).is_some())
                    .ok_or_else(no_item)?
            } else {
                self.by_name(token).map(|r| r.id).ok_or_else(no_item)?
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(no_item());
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr<'a>(printed: &'a Printed, key: &str) -> Option<&'a [u8]> {
        printed
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn ids_count_up_and_are_never_reused() {
        let mut t = Table::new(HOTSPOT_USER);
        let a = t.insert(vec![("name", Value::str("a"))]);
        let b = t.insert(vec![("name", Value::str("b"))]);
        assert_eq!((format_id(a), format_id(b)), ("*1".into(), "*2".into()));
        assert!(t.remove(b).is_some());
        let c = t.insert(vec![("name", Value::str("c"))]);
        assert_eq!(format_id(c), "*3");
        let many: Vec<u32> = (0..20)
            .map(|i| t.insert(vec![("name", Value::str(format!("u{i}")))]))
            .collect();
        assert_eq!(format_id(many[19]), "*17");
    }

    #[test]
    fn prints_like_routeros() {
        let mut t = Table::new(HOTSPOT_USER);
        let id = t.insert(vec![
            ("name", Value::str("v1")),
            ("limit-uptime", Value::Dur(3723)),
        ]);
        let p = t
            .by_id(id)
            .map(|r| r.print(DateStyle::Iso))
            .unwrap_or_default();
        let keys: Vec<&[u8]> = p.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys[0], b".id");
        assert_eq!(keys[1], b"name");
        assert_eq!(attr(&p, "limit-uptime"), Some(&b"1h2m3s"[..]));
        assert_eq!(attr(&p, "uptime"), Some(&b"0s"[..]));
        assert_eq!(attr(&p, "bytes-in"), Some(&b"0"[..]));
        assert_eq!(attr(&p, "disabled"), Some(&b"false"[..]));
        assert_eq!(attr(&p, "profile"), Some(&b"default"[..]));
        // Unset optional properties are not printed at all.
        assert_eq!(attr(&p, "comment"), None);
        assert_eq!(attr(&p, "mac-address"), None);
    }

    #[test]
    fn resolve_ids_and_names() {
        let mut t = Table::new(PPP_SECRET);
        let a = t.insert(vec![("name", Value::str("alice"))]);
        let b = t.insert(vec![("name", Value::str("bob"))]);
        assert_eq!(t.resolve(b"*1"), Ok(vec![a]));
        assert_eq!(t.resolve(b"*1,bob"), Ok(vec![a, b]));
        assert_eq!(t.resolve(b"*2, *2"), Ok(vec![b]));
        assert_eq!(t.resolve(b"*9"), Err("no such item".into()));
        assert_eq!(t.resolve(b"*zz"), Err("no such item".into()));
        assert_eq!(t.resolve(b"carol"), Err("no such item".into()));
        assert_eq!(t.resolve(b""), Err("no such item".into()));
    }

    #[test]
    fn parses_values() {
        assert_eq!(Value::parse(Kind::Bool, b"yes"), Some(Value::Bool(true)));
        assert_eq!(Value::parse(Kind::Bool, b"false"), Some(Value::Bool(false)));
        assert_eq!(Value::parse(Kind::Bool, b"maybe"), None);
        assert_eq!(Value::parse(Kind::Int, b"42"), Some(Value::Int(42)));
        assert_eq!(Value::parse(Kind::Int, b"-1"), None);
        assert_eq!(Value::parse(Kind::Dur, b"1h"), Some(Value::Dur(3600)));
        assert_eq!(Value::parse(Kind::Dur, b"01:00:00"), Some(Value::Dur(3600)));
        assert_eq!(Value::parse(Kind::Dur, b"soon"), None);
        assert_eq!(Value::parse(Kind::Date, b"x"), None);
        assert_eq!(
            Value::parse(Kind::Str, b"caf\xe9"),
            Some(Value::Str(b"caf\xe9".to_vec()))
        );
    }

    #[test]
    fn date_styles() {
        assert_eq!(DateStyle::for_version("7.16.2 (stable)"), DateStyle::Iso);
        assert_eq!(DateStyle::for_version("7.10"), DateStyle::Iso);
        assert_eq!(DateStyle::for_version("7.9.2 (stable)"), DateStyle::Legacy);
        assert_eq!(
            DateStyle::for_version("6.49.10 (long-term)"),
            DateStyle::Legacy
        );
        assert_eq!(DateStyle::Iso.format(1_706_702_400), "2024-01-31 12:00:00");
        assert_eq!(
            DateStyle::Legacy.format(1_706_702_400),
            "jan/31/2024 12:00:00"
        );
        assert_eq!(DateStyle::Iso.format(59), "1970-01-01 00:00:59");
    }
}
