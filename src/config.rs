//! Agent configuration: an optional TOML file plus `MIKROTIK_EDGE_*`
//! environment variables. The environment wins over the file, per key;
//! defaults fill the rest.
//!
//! Every error names the offending key both ways, as `router.port
//! (MIKROTIK_EDGE_ROUTER_PORT)`, so an operator can fix it wherever it was
//! set. The router password never appears in any error, `Debug` or `Display`
//! output.

use crate::files::{MAX_CONFIG_BYTES, MAX_SECRET_BYTES, read_limited};
use std::ffi::OsString;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::LevelFilter;

/// Default RouterOS API port (plain TCP).
pub const DEFAULT_API_PORT: u16 = 8728;
/// Default RouterOS API-SSL port.
pub const DEFAULT_API_SSL_PORT: u16 = 8729;

/// Upper bound for the "at least 1 second" settings: large enough for any
/// sane use, small enough that `Instant + Duration` can never overflow.
const MAX_SECS: u64 = 365 * 24 * 60 * 60;

/// Keys accepted at the top level of the file, besides the `[router]` table.
const TOP_KEYS: &[&str] = &[
    "log_level",
    "state_path",
    "site_id",
    "poll_secs",
    "usage_secs",
    "hotspot_profile_pattern",
    "pppoe_profile_pattern",
    "expired_action",
];

/// Keys accepted in `[router]`.
const ROUTER_KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "password_file",
    "tls",
    "ca_file",
    "cert_sha256",
    "connect_timeout_secs",
    "command_timeout_secs",
    "keepalive_secs",
    "backoff_base_secs",
    "backoff_cap_secs",
    "max_word_bytes",
    "max_sentence_bytes",
    "max_reply_bytes",
];

/// The whole agent configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub router: RouterConfig,
    pub log_level: LevelFilter,
    pub state_path: PathBuf,
    pub site_id: String,
    /// How often to poll the router, 1..=86400 seconds.
    pub poll_secs: u64,
    /// How often to record usage, at least 1 second.
    pub usage_secs: u64,
    /// Glob (`*`, `?`) over hotspot user profile names; see [`crate::monitor::glob_match`].
    pub hotspot_profile_pattern: String,
    /// Glob (`*`, `?`) over PPP profile names; see [`crate::monitor::glob_match`].
    pub pppoe_profile_pattern: String,
    pub expired_action: ExpiredAction,
}

impl Config {
    /// `poll_secs` as a `Duration`.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_secs)
    }

    /// `usage_secs` as a `Duration`.
    pub fn usage_interval(&self) -> Duration {
        Duration::from_secs(self.usage_secs)
    }

    /// Loads the config from `file` (if any) and `env`, which looks up one
    /// environment variable. Taking `env` as a function keeps tests away from
    /// the process environment, which is shared between test threads.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Config, ConfigError> {
        let table = match file {
            Some(path) => Some(read_toml(path)?),
            None => None,
        };
        let src = Sources {
            file: table.as_ref(),
            env,
        };
        Ok(Config {
            router: load_router(&src)?,
            log_level: match src.string("log_level")? {
                Some(s) => parse_level(&s).ok_or_else(|| {
                    error(
                        "log_level",
                        format!("expected off|error|warn|info|debug|trace, got {s:?}"),
                    )
                })?,
                None => LevelFilter::Info,
            },
            state_path: src
                .path("state_path")?
                .unwrap_or_else(|| PathBuf::from("/var/lib/mikrotik-edge/state.redb")),
            site_id: match src.string("site_id")? {
                Some(s) if valid_site_id(&s) => s,
                Some(s) => {
                    return Err(error(
                        "site_id",
                        format!("expected 1-64 characters from A-Z a-z 0-9 _ . -, got {s:?}"),
                    ));
                }
                None => "default".to_owned(),
            },
            poll_secs: src
                .uint("poll_secs", 1..=86_400, "a whole number of seconds 1-86400")?
                .unwrap_or(30),
            usage_secs: src.secs("usage_secs")?.unwrap_or(300),
            hotspot_profile_pattern: src
                .pattern("hotspot_profile_pattern")?
                .unwrap_or_else(|| "*voucher*".to_owned()),
            pppoe_profile_pattern: src
                .pattern("pppoe_profile_pattern")?
                .unwrap_or_else(|| "*pppoe*".to_owned()),
            expired_action: match src.string("expired_action")? {
                Some(s) if s.eq_ignore_ascii_case("disable") => ExpiredAction::Disable,
                Some(s) if s.eq_ignore_ascii_case("remove") => ExpiredAction::Remove,
                Some(s) => {
                    return Err(error(
                        "expired_action",
                        format!("expected disable|remove, got {s:?}"),
                    ));
                }
                None => ExpiredAction::Disable,
            },
        })
    }

    /// [`Config::load`] with the real process environment.
    pub fn from_process_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load(file, &|name| std::env::var_os(name))
    }
}

/// What to do with a voucher once it has expired (shared with the events).
pub use crate::event::ExpiredAction;

/// How to reach and log in to the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    /// `Some` means API-SSL; `None` means plain TCP.
    pub tls: Option<TlsConfig>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub keepalive: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Largest single API word accepted from the router.
    pub max_word_bytes: usize,
    /// Largest sentence (all its words, plus a per-word overhead) accepted;
    /// past it the session is dropped and reconnected.
    pub max_sentence_bytes: usize,
    /// Largest whole reply (all its sentences) to one command; past it the
    /// command fails and is cancelled, the session stays up.
    pub max_reply_bytes: u64,
}

impl RouterConfig {
    /// Plain-TCP settings with every default filled in and an empty password;
    /// handy for tests and tools that build a config without a file.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> Self {
        RouterConfig {
            host: host.into(),
            port: DEFAULT_API_PORT,
            user: user.into(),
            password: Secret::default(),
            tls: None,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(60),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(60),
            max_word_bytes: crate::proto::DEFAULT_MAX_WORD,
            max_sentence_bytes: crate::proto::DEFAULT_MAX_SENTENCE,
            max_reply_bytes: 256 * 1024 * 1024,
        }
    }
}

/// API-SSL settings; at most one field is set. With neither, the
/// certificate is checked against the bundled web PKI roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with the CA (or self-signed certificate) to trust.
    pub ca_file: Option<PathBuf>,
    /// SHA-256 of the router's DER certificate, for pinning.
    pub cert_sha256: Option<[u8; 32]>,
}

/// A secret string that never shows itself in `Debug` or `Display`, so a
/// logged config or error cannot leak it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The actual value; call only where it is sent to the router.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A config problem: which key (or file) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: String,
    reason: String,
}

impl ConfigError {
    /// `router.port (MIKROTIK_EDGE_ROUTER_PORT)`, or the file path for
    /// problems with the file as a whole.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config: {}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn load_router(src: &Sources<'_>) -> Result<RouterConfig, ConfigError> {
    let defaults = RouterConfig::new("", "");
    let host = src
        .string("router.host")?
        .ok_or_else(|| error("router.host", "required, not set"))?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(error(
            "router.host",
            format!("expected a host name or IP address, got {host:?}"),
        ));
    }
    let user = src
        .string("router.user")?
        .ok_or_else(|| error("router.user", "required, not set"))?;
    if user.is_empty() {
        return Err(error("router.user", "must not be empty"));
    }

    let password = match (
        src.secret("router.password")?,
        src.path_with_origin("router.password_file")?,
    ) {
        (Some((_, pw_origin)), Some((_, file_origin))) => {
            return Err(ConfigError {
                key: format!(
                    "{} and {}",
                    label("router.password"),
                    label("router.password_file")
                ),
                reason: format!(
                    "both are set (password in the {pw_origin}, password_file in the {file_origin}); set only one"
                ),
            });
        }
        (Some((pw, _)), None) => Secret(pw),
        (None, Some((path, _))) => Secret(read_password_file(&path)?),
        (None, None) => Secret::default(),
    };

    let tls_on = src.boolean("router.tls")?.unwrap_or(false);
    let ca_file = src.path("router.ca_file")?;
    let cert_sha256 = match src.string("router.cert_sha256")? {
        Some(s) => Some(parse_fingerprint(&s).ok_or_else(|| {
            error(
                "router.cert_sha256",
                format!("expected 64 hex digits (colons and spaces allowed), got {s:?}"),
            )
        })?),
        None => None,
    };
    let tls = if tls_on {
        // The client verifies one way or the other; accepting both would
        // leave it unclear which one is in force.
        if ca_file.is_some() && cert_sha256.is_some() {
            return Err(ConfigError {
                key: format!(
                    "{} and {}",
                    label("router.ca_file"),
                    label("router.cert_sha256")
                ),
                reason: "set at most one of them".to_owned(),
            });
        }
        if let Some(path) = &ca_file {
            check_readable_file("router.ca_file", path)?;
        }
        Some(TlsConfig {
            ca_file,
            cert_sha256,
        })
    } else {
        // Silently ignoring these would leave the operator believing the
        // connection is verified when it is not even encrypted.
        for (key, set) in [
            ("router.ca_file", ca_file.is_some()),
            ("router.cert_sha256", cert_sha256.is_some()),
        ] {
            if set {
                return Err(error(key, "only valid with router.tls = true"));
            }
        }
        None
    };

    let port = match src.uint("router.port", 1..=65_535, "a port number 1-65535")? {
        // The range check above makes the conversion infallible.
        Some(p) => u16::try_from(p).unwrap_or(DEFAULT_API_PORT),
        None if tls.is_some() => DEFAULT_API_SSL_PORT,
        None => DEFAULT_API_PORT,
    };

    let secs = |key: &'static str, default: Duration| -> Result<Duration, ConfigError> {
        Ok(src.secs(key)?.map(Duration::from_secs).unwrap_or(default))
    };
    let backoff_base = secs("router.backoff_base_secs", defaults.backoff_base)?;
    let explicit_cap = src.secs("router.backoff_cap_secs")?;
    let backoff_cap = explicit_cap
        .map(Duration::from_secs)
        .unwrap_or(defaults.backoff_cap);
    if backoff_cap < backoff_base {
        // Blame whichever of the two the operator actually set.
        let (key, reason) = if explicit_cap.is_some() {
            (
                "router.backoff_cap_secs",
                format!(
                    "must be at least router.backoff_base_secs ({}), got {}",
                    backoff_base.as_secs(),
                    backoff_cap.as_secs()
                ),
            )
        } else {
            (
                "router.backoff_base_secs",
                format!(
                    "must be at most router.backoff_cap_secs ({}), got {}",
                    backoff_cap.as_secs(),
                    backoff_base.as_secs()
                ),
            )
        };
        return Err(error(key, reason));
    }

    let max_word_bytes = match src.uint(
        "router.max_word_bytes",
        1024..=1_073_741_824,
        "a byte count 1024-1073741824",
    )? {
        // At most 1 GiB, so it fits in usize on every supported target.
        Some(n) => usize::try_from(n).unwrap_or(defaults.max_word_bytes),
        None => defaults.max_word_bytes,
    };
    let max_sentence_bytes = match src.uint(
        "router.max_sentence_bytes",
        1024..=1_073_741_824,
        "a byte count 1024-1073741824",
    )? {
        Some(n) => usize::try_from(n).unwrap_or(defaults.max_sentence_bytes),
        None => defaults.max_sentence_bytes,
    };
    let max_reply_bytes = src
        .uint(
            "router.max_reply_bytes",
            65_536..=17_179_869_184,
            "a byte count 65536-17179869184",
        )?
        .unwrap_or(defaults.max_reply_bytes);

    Ok(RouterConfig {
        host,
        port,
        user,
        password,
        tls,
        connect_timeout: secs("router.connect_timeout_secs", defaults.connect_timeout)?,
        command_timeout: secs("router.command_timeout_secs", defaults.command_timeout)?,
        keepalive: secs("router.keepalive_secs", defaults.keepalive)?,
        backoff_base,
        backoff_cap,
        max_word_bytes,
        max_sentence_bytes,
        max_reply_bytes,
    })
}

/// Where a value came from, for messages about conflicting keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    File,
    Env,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::File => "config file",
            Origin::Env => "environment",
        })
    }
}

/// One key's raw value, before type checks.
enum Raw<'a> {
    Env(String),
    File(&'a toml::Value),
}

/// The file (already checked for unknown keys) and the environment.
struct Sources<'a> {
    file: Option<&'a toml::Table>,
    env: &'a dyn Fn(&str) -> Option<OsString>,
}

impl<'a> Sources<'a> {
    fn raw(&self, key: &'static str) -> Result<Option<Raw<'a>>, ConfigError> {
        if let Some(value) = (self.env)(&env_name(key)) {
            return match value.into_string() {
                Ok(s) => Ok(Some(Raw::Env(s))),
                Err(_) => Err(error(key, "value is not valid UTF-8")),
            };
        }
        let Some(table) = self.file else {
            return Ok(None);
        };
        let value = match key.split_once('.') {
            Some((section, name)) => table
                .get(section)
                .and_then(toml::Value::as_table)
                .and_then(|t| t.get(name)),
            None => table.get(key),
        };
        Ok(value.map(Raw::File))
    }

    /// A string and its origin; `reveal` says whether a wrongly typed value
    /// may be quoted back in the error.
    fn string_with_origin(
        &self,
        key: &'static str,
        reveal: bool,
    ) -> Result<Option<(String, Origin)>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env(s)) => Ok(Some((s, Origin::Env))),
            Some(Raw::File(toml::Value::String(s))) => Ok(Some((s.clone(), Origin::File))),
            Some(Raw::File(v)) if reveal => Err(error(
                key,
                format!("expected a string, got {}", describe(v)),
            )),
            Some(Raw::File(_)) => Err(error(key, "expected a string")),
        }
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(self.string_with_origin(key, true)?.map(|(s, _)| s))
    }

    fn secret(&self, key: &'static str) -> Result<Option<(String, Origin)>, ConfigError> {
        self.string_with_origin(key, false)
    }

    fn path_with_origin(
        &self,
        key: &'static str,
    ) -> Result<Option<(PathBuf, Origin)>, ConfigError> {
        match self.string_with_origin(key, true)? {
            Some((s, _)) if s.is_empty() => Err(error(key, "expected a path, got \"\"")),
            Some((s, origin)) => Ok(Some((PathBuf::from(s), origin))),
            None => Ok(None),
        }
    }

    fn path(&self, key: &'static str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.path_with_origin(key)?.map(|(p, _)| p))
    }

    fn pattern(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.string(key)? {
            Some(s) if s.is_empty() => Err(error(key, "expected a non-empty glob pattern")),
            other => Ok(other),
        }
    }

    fn uint(
        &self,
        key: &'static str,
        range: RangeInclusive<u64>,
        what: &str,
    ) -> Result<Option<u64>, ConfigError> {
        let bad = |got: String| error(key, format!("expected {what}, got {got}"));
        let n = match self.raw(key)? {
            None => return Ok(None),
            Some(Raw::Env(s)) => s.parse::<u64>().map_err(|_| bad(format!("{s:?}")))?,
            Some(Raw::File(toml::Value::Integer(i))) => {
                u64::try_from(*i).map_err(|_| bad(i.to_string()))?
            }
            Some(Raw::File(v)) => return Err(bad(describe(v))),
        };
        if range.contains(&n) {
            Ok(Some(n))
        } else {
            Err(bad(n.to_string()))
        }
    }

    /// A duration in whole seconds, 1 up to a year.
    fn secs(&self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        self.uint(key, 1..=MAX_SECS, "a whole number of seconds 1-31536000")
    }

    fn boolean(&self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                _ => Err(error(
                    key,
                    format!("expected true|false|1|0|yes|no, got {s:?}"),
                )),
            },
            Some(Raw::File(toml::Value::Boolean(b))) => Ok(Some(*b)),
            Some(Raw::File(v)) => Err(error(
                key,
                format!("expected true or false, got {}", describe(v)),
            )),
        }
    }
}

/// `router.port` -> `MIKROTIK_EDGE_ROUTER_PORT`.
fn env_name(key: &str) -> String {
    format!(
        "MIKROTIK_EDGE_{}",
        key.replace('.', "_").to_ascii_uppercase()
    )
}

/// `router.port` -> `router.port (MIKROTIK_EDGE_ROUTER_PORT)`.
fn label(key: &str) -> String {
    format!("{key} ({})", env_name(key))
}

fn error(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: label(key),
        reason: excerpt(reason.into()),
    }
}

/// Longest reason quoted back, in characters. Reasons end with the
/// offending value; a 10 MB value must not put 10 MB on stderr.
const MAX_REASON_CHARS: usize = 200;

fn excerpt(reason: String) -> String {
    let total = reason.len();
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}… ({total} bytes in all)", &reason[..cut]),
        None => reason,
    }
}

fn file_error(path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: path.display().to_string(),
        reason: reason.into(),
    }
}

/// A wrongly typed TOML value, for "expected X, got Y".
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => format!("the datetime {d}"),
        toml::Value::Array(_) => "an array".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

/// Reads and parses the file, and rejects unknown keys up front so a typo
/// cannot silently fall back to a default.
fn read_toml(path: &Path) -> Result<toml::Table, ConfigError> {
    let bytes = read_limited(path, MAX_CONFIG_BYTES)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        file_error(
            path,
            format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // Only the message and position: toml's own Display quotes the
        // offending line, which could hold the password.
        let reason = match e.span() {
            Some(span) => {
                let (line, column) = line_column(&text, span.start);
                format!(
                    "TOML syntax error at line {line}, column {column}: {}",
                    e.message()
                )
            }
            None => format!("TOML syntax error: {}", e.message()),
        };
        file_error(path, reason)
    })?;

    let unknown = |key: String| ConfigError {
        key,
        reason: format!("unknown key in {}", path.display()),
    };
    for (name, value) in &table {
        if name == "router" {
            let Some(router) = value.as_table() else {
                return Err(ConfigError {
                    key: "router".to_owned(),
                    reason: format!(
                        "expected a [router] table in {}, got {}",
                        path.display(),
                        describe(value)
                    ),
                });
            };
            if let Some(name) = router.keys().find(|k| !ROUTER_KEYS.contains(&k.as_str())) {
                return Err(unknown(format!("router.{}", name.escape_debug())));
            }
        } else if !TOP_KEYS.contains(&name.as_str()) {
            return Err(unknown(name.escape_debug().to_string()));
        }
    }
    Ok(table)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn read_password_file(path: &Path) -> Result<String, ConfigError> {
    let key = "router.password_file";
    let mut bytes = read_limited(path, MAX_SECRET_BYTES)
        .map_err(|e| error(key, format!("cannot read {}: {e}", path.display())))?;
    // Files written by `echo` or editors end in a newline that is not part
    // of the password; strip exactly one line ending and nothing else.
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| error(key, format!("{} is not valid UTF-8", path.display())))
}

fn check_readable_file(key: &str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(error(
            key,
            format!("{} is not a regular file", path.display()),
        )),
        Err(e) => Err(error(key, format!("cannot access {}: {e}", path.display()))),
    }
}

fn parse_level(s: &str) -> Option<LevelFilter> {
    [
        ("off", LevelFilter::Off),
        ("error", LevelFilter::Error),
        ("warn", LevelFilter::Warn),
        ("info", LevelFilter::Info),
        ("debug", LevelFilter::Debug),
        ("trace", LevelFilter::Trace),
    ]
    .into_iter()
    .find(|(name, _)| s.eq_ignore_ascii_case(name))
    .map(|(_, level)| level)
}

fn valid_site_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// 64 hex digits in any case, optionally separated by colons or spaces, as
/// printed by `openssl x509 -fingerprint -sha256` and RouterOS.
fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut len = 0;
    let mut high: Option<u8> = None;
    for c in s.chars().filter(|c| !matches!(c, ':' | ' ')) {
        let digit = u8::try_from(c.to_digit(16)?).ok()?;
        match high.take() {
            None => high = Some(digit),
            Some(h) => {
                *out.get_mut(len)? = h << 4 | digit;
                len += 1;
            }
        }
    }
    (high.is_none() && len == out.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    const REQUIRED: &[(&str, &str)] = &[
        ("MIKROTIK_EDGE_ROUTER_HOST", "10.0.0.1"),
        ("MIKROTIK_EDGE_ROUTER_USER", "api"),
    ];

    fn with_required(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        REQUIRED
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_env(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs = with_required(extra);
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Config::load(None, &env_of(&refs))
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn defaults() {
        let c = load_env(&[]).unwrap();
        assert_eq!(c.log_level, LevelFilter::Info);
        assert_eq!(
            c.state_path,
            PathBuf::from("/var/lib/mikrotik-edge/state.redb")
        );
        assert_eq!(c.site_id, "default");
        assert_eq!(c.poll_secs, 30);
        assert_eq!(c.poll_interval(), Duration::from_secs(30));
        assert_eq!(c.usage_secs, 300);
        assert_eq!(c.hotspot_profile_pattern, "*voucher*");
        assert_eq!(c.pppoe_profile_pattern, "*pppoe*");
        assert_eq!(c.expired_action, ExpiredAction::Disable);
        let mut expected = RouterConfig::new("10.0.0.1", "api");
        expected.password = Secret::new("");
        assert_eq!(c.router, expected);
        assert_eq!(c.router.port, 8728);
        assert_eq!(c.router.max_word_bytes, 1_048_576);
        assert_eq!(c.router.max_sentence_bytes, 4_194_304);
        assert_eq!(c.router.max_reply_bytes, 268_435_456);
    }

    #[test]
    fn missing_required_keys() {
        let e = Config::load(None, &no_env).unwrap_err();
        assert_eq!(e.key(), "router.host (MIKROTIK_EDGE_ROUTER_HOST)");
        let e = Config::load(None, &env_of(&[("MIKROTIK_EDGE_ROUTER_HOST", "h")])).unwrap_err();
        assert_eq!(e.key(), "router.user (MIKROTIK_EDGE_ROUTER_USER)");
    }

    const FULL: &str = r#"
log_level = "debug"
state_path = "/tmp/state.redb"
site_id = "site-1.a_b"
poll_secs = 15
usage_secs = 120
hotspot_profile_pattern = "hs-*"
pppoe_profile_pattern = "ppp?"
expired_action = "remove"

[router]
host = "192.168.88.1"
port = 18728
user = "edge"
password = "hunter2"
tls = false
connect_timeout_secs = 3
command_timeout_secs = 7
keepalive_secs = 20
backoff_base_secs = 2
backoff_cap_secs = 40
max_word_bytes = 4096
"#;

    #[test]
    fn file_only() {
        let f = toml_file(FULL);
        let c = Config::load(Some(f.path()), &no_env).unwrap();
        assert_eq!(c.log_level, LevelFilter::Debug);
        assert_eq!(c.state_path, PathBuf::from("/tmp/state.redb"));
        assert_eq!(c.site_id, "site-1.a_b");
        assert_eq!((c.poll_secs, c.usage_secs), (15, 120));
        assert_eq!(c.hotspot_profile_pattern, "hs-*");
        assert_eq!(c.pppoe_profile_pattern, "ppp?");
        assert_eq!(c.expired_action, ExpiredAction::Remove);
        let r = &c.router;
        assert_eq!(
            (r.host.as_str(), r.port, r.user.as_str()),
            ("192.168.88.1", 18728, "edge")
        );
        assert_eq!(r.password.expose(), "hunter2");
        assert_eq!(r.tls, None);
        assert_eq!(r.connect_timeout, Duration::from_secs(3));
        assert_eq!(r.command_timeout, Duration::from_secs(7));
        assert_eq!(r.keepalive, Duration::from_secs(20));
        assert_eq!(r.backoff_base, Duration::from_secs(2));
        assert_eq!(r.backoff_cap, Duration::from_secs(40));
        assert_eq!(r.max_word_bytes, 4096);
    }

    #[test]
    fn env_overrides_file() {
        let f = toml_file(FULL);
        let env = env_of(&[
            ("MIKROTIK_EDGE_LOG_LEVEL", "TRACE"),
            ("MIKROTIK_EDGE_POLL_SECS", "60"),
            ("MIKROTIK_EDGE_ROUTER_PORT", "8000"),
            ("MIKROTIK_EDGE_ROUTER_PASSWORD", "from-env"),
            ("MIKROTIK_EDGE_EXPIRED_ACTION", "disable"),
        ]);
        let c = Config::load(Some(f.path()), &env).unwrap();
        assert_eq!(c.log_level, LevelFilter::Trace);
        assert_eq!(c.poll_secs, 60);
        assert_eq!(c.router.port, 8000);
        assert_eq!(c.router.password.expose(), "from-env");
        assert_eq!(c.expired_action, ExpiredAction::Disable);
        // Untouched keys still come from the file.
        assert_eq!(c.router.user, "edge");
        assert_eq!(c.usage_secs, 120);
    }

    #[test]
    fn validation_errors_name_their_key() {
        let long_id = "x".repeat(65);
        let fingerprint = "ab".repeat(32);
        let cases: &[(&str, &str)] = &[
            ("log_level", "loud"),
            ("state_path", ""),
            ("site_id", ""),
            ("site_id", "a b"),
            ("site_id", &long_id),
            ("poll_secs", "0"),
            ("poll_secs", "86401"),
            ("poll_secs", "-1"),
            ("usage_secs", "0"),
            ("usage_secs", "31536001"),
            ("hotspot_profile_pattern", ""),
            ("pppoe_profile_pattern", ""),
            ("expired_action", "delete"),
            ("router.host", ""),
            ("router.host", "a b"),
            ("router.user", ""),
            ("router.port", "abc"),
            ("router.port", "0"),
            ("router.port", "65536"),
            ("router.tls", "maybe"),
            ("router.ca_file", "/etc/hosts"),
            ("router.cert_sha256", &fingerprint),
            ("router.connect_timeout_secs", "0"),
            ("router.command_timeout_secs", "0"),
            ("router.keepalive_secs", "x"),
            ("router.backoff_base_secs", "0"),
            ("router.backoff_base_secs", "61"),
            ("router.backoff_cap_secs", "4"),
            ("router.max_word_bytes", "1023"),
            ("router.max_word_bytes", "1073741825"),
            ("router.password_file", "/nonexistent/pw"),
        ];
        for (key, value) in cases {
            let var = env_name(key);
            let e = load_env(&[(&var, value)]).unwrap_err();
            assert_eq!(e.key(), format!("{key} ({var})"), "{var}={value:?}: {e}");
            assert!(e.to_string().starts_with("invalid config: "), "{e}");
        }
        assert_eq!(env_name("router.ca_file"), "MIKROTIK_EDGE_ROUTER_CA_FILE");
        assert_eq!(env_name("site_id"), "MIKROTIK_EDGE_SITE_ID");
    }

    #[test]
    fn file_type_errors_name_their_key() {
        let cases: &[(&str, &str)] = &[
            ("poll_secs = \"30\"", "poll_secs"),
            ("poll_secs = 1.5", "poll_secs"),
            ("site_id = 5", "site_id"),
            ("[router]\nport = -1", "router.port"),
            ("[router]\ntls = \"yes\"", "router.tls"),
            ("[router]\nkeepalive_secs = []", "router.keepalive_secs"),
            ("[router]\nca_file = \"/etc/hosts\"", "router.ca_file"),
        ];
        let env = env_of(REQUIRED);
        for (text, key) in cases {
            let f = toml_file(text);
            let e = Config::load(Some(f.path()), &env).unwrap_err();
            assert_eq!(e.key(), label(key), "{text}: {e}");
        }
    }

    #[test]
    fn port_error_message() {
        let e = load_env(&[("MIKROTIK_EDGE_ROUTER_PORT", "abc")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config: router.port (MIKROTIK_EDGE_ROUTER_PORT): \
             expected a port number 1-65535, got \"abc\""
        );
    }

    #[test]
    fn backoff_base_above_default_cap_blames_base() {
        let e = load_env(&[("MIKROTIK_EDGE_ROUTER_BACKOFF_BASE_SECS", "90")]).unwrap_err();
        assert_eq!(e.key(), label("router.backoff_base_secs"));
        let c = load_env(&[
            ("MIKROTIK_EDGE_ROUTER_BACKOFF_BASE_SECS", "90"),
            ("MIKROTIK_EDGE_ROUTER_BACKOFF_CAP_SECS", "90"),
        ])
        .unwrap();
        assert_eq!(c.router.backoff_cap, Duration::from_secs(90));
    }

    #[test]
    fn password_file_read_and_trimmed() {
        for (content, expected) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret", "s3cret"),
            ("two\n\n", "two\n"),
            (" spaced \n", " spaced "),
            ("", ""),
        ] {
            let f = toml_file(content);
            let path = f.path().to_str().unwrap();
            let c = load_env(&[("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", path)]).unwrap();
            assert_eq!(c.router.password.expose(), expected, "{content:?}");
        }
    }

    #[test]
    fn password_file_error_names_path_not_content() {
        let f = toml_file("");
        std::fs::write(f.path(), b"secret\xff\n").unwrap();
        let path = f.path().to_str().unwrap();
        let e = load_env(&[("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", path)]).unwrap_err();
        assert_eq!(e.key(), label("router.password_file"));
        assert!(e.reason().contains(path), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");

        let e = load_env(&[("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", "/nonexistent/pw")]).unwrap_err();
        assert!(e.reason().contains("/nonexistent/pw"), "{e}");
    }

    #[test]
    fn password_and_password_file_conflict() {
        let pw = toml_file("hunter2\n");
        let pw_path = pw.path().to_str().unwrap();
        let e = load_env(&[
            ("MIKROTIK_EDGE_ROUTER_PASSWORD", "hunter2"),
            ("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", pw_path),
        ])
        .unwrap_err();
        assert!(e.key().contains("(MIKROTIK_EDGE_ROUTER_PASSWORD)"), "{e}");
        assert!(
            e.key().contains("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE"),
            "{e}"
        );
        assert!(!format!("{e} {e:?}").contains("hunter2"));

        // Across sources too: the file's password does not yield to the
        // environment's password_file, they conflict.
        let f = toml_file("[router]\npassword = \"hunter2\"");
        let env = env_of(&[
            REQUIRED[0],
            REQUIRED[1],
            ("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", pw_path),
        ]);
        let e = Config::load(Some(f.path()), &env).unwrap_err();
        assert!(e.reason().contains("config file"), "{e}");
        assert!(e.reason().contains("environment"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let env = env_of(REQUIRED);
        for (text, key) in [
            ("pol_secs = 5", "pol_secs"),
            ("[router]\npasword = \"hunter2\"", "router.pasword"),
            ("[routr]\nhost = \"x\"", "routr"),
        ] {
            let f = toml_file(text);
            let e = Config::load(Some(f.path()), &env).unwrap_err();
            assert_eq!(e.key(), key, "{e}");
            assert!(e.reason().contains("unknown key"), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let f = toml_file("router = 5");
        let e = Config::load(Some(f.path()), &env).unwrap_err();
        assert_eq!(e.key(), "router");
    }

    #[test]
    fn password_never_in_debug_or_errors() {
        let f = toml_file(FULL);
        let c = Config::load(Some(f.path()), &no_env).unwrap();
        let debug = format!("{c:?} {:?} {}", c.router.password, c.router.password);
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"));

        // A wrongly typed password is not quoted back.
        let f = toml_file("[router]\npassword = [\"hunter2\"]");
        let e = Config::load(Some(f.path()), &env_of(REQUIRED)).unwrap_err();
        assert_eq!(e.key(), label("router.password"));
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");

        // Nor is the line of a syntax error.
        let f = toml_file("[router]\npassword = \"hunter2");
        let e = Config::load(Some(f.path()), &env_of(REQUIRED)).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
    }

    #[test]
    fn toml_syntax_error_names_file_and_line() {
        let f = toml_file("log_level = \"info\"\n\n[router\nhost = \"x\"\n");
        let e = Config::load(Some(f.path()), &no_env).unwrap_err();
        assert_eq!(e.key(), f.path().display().to_string());
        assert!(e.reason().contains("line 3"), "{e}");
    }

    #[test]
    fn unreadable_config_file() {
        let e = Config::load(Some(Path::new("/nonexistent/edge.toml")), &no_env).unwrap_err();
        assert_eq!(e.key(), "/nonexistent/edge.toml");
        assert!(e.reason().contains("cannot read"), "{e}");
    }

    #[test]
    fn non_utf8_env_names_variable() {
        use std::os::unix::ffi::OsStringExt;
        let env = |name: &str| match name {
            "MIKROTIK_EDGE_ROUTER_HOST" => Some(OsString::from("h")),
            "MIKROTIK_EDGE_ROUTER_USER" => Some(OsString::from_vec(b"ad\xffmin".to_vec())),
            _ => None,
        };
        let e = Config::load(None, &env).unwrap_err();
        assert_eq!(e.key(), "router.user (MIKROTIK_EDGE_ROUTER_USER)");
        assert!(e.reason().contains("UTF-8"), "{e}");
    }

    #[test]
    fn env_booleans() {
        for (value, tls) in [
            ("true", true),
            ("1", true),
            ("YES", true),
            ("false", false),
            ("0", false),
            ("no", false),
        ] {
            let c = load_env(&[("MIKROTIK_EDGE_ROUTER_TLS", value)]).unwrap();
            assert_eq!(c.router.tls.is_some(), tls, "{value}");
        }
    }

    #[test]
    fn tls_defaults_to_port_8729() {
        let c = load_env(&[("MIKROTIK_EDGE_ROUTER_TLS", "true")]).unwrap();
        assert_eq!(c.router.port, 8729);
        assert_eq!(c.router.tls, Some(TlsConfig::default()));
        let c = load_env(&[
            ("MIKROTIK_EDGE_ROUTER_TLS", "true"),
            ("MIKROTIK_EDGE_ROUTER_PORT", "443"),
        ])
        .unwrap();
        assert_eq!(c.router.port, 443);
    }

    #[test]
    fn tls_with_ca_file_or_fingerprint() {
        let ca = toml_file("-----BEGIN CERTIFICATE-----\n");
        let ca_line = format!("ca_file = {:?}", ca.path().to_str().unwrap());
        let pin_line = format!("cert_sha256 = \"{}\"", ["Ab"; 32].join(":"));
        let load = |lines: &[&str]| {
            let f = toml_file(&format!("[router]\ntls = true\n{}", lines.join("\n")));
            Config::load(Some(f.path()), &env_of(REQUIRED))
        };

        let tls = load(&[&ca_line]).unwrap().router.tls.unwrap();
        assert_eq!(tls.ca_file.as_deref(), Some(ca.path()));
        assert_eq!(tls.cert_sha256, None);

        let tls = load(&[&pin_line]).unwrap().router.tls.unwrap();
        assert_eq!(tls.ca_file, None);
        assert_eq!(tls.cert_sha256, Some([0xab; 32]));

        let e = load(&[&ca_line, &pin_line]).unwrap_err();
        assert!(e.key().contains("router.ca_file"), "{e}");
        assert!(e.key().contains("router.cert_sha256"), "{e}");

        let e = load(&["ca_file = \"/nonexistent/ca.pem\""]).unwrap_err();
        assert_eq!(e.key(), label("router.ca_file"));
        assert!(e.reason().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn fingerprint_parsing() {
        let mut expected = [0u8; 32];
        for (i, b) in expected.iter_mut().enumerate() {
            *b = u8::try_from(i * 7).unwrap();
        }
        let upper: Vec<String> = expected.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_fingerprint(&upper.join(":")), Some(expected));
        assert_eq!(parse_fingerprint(&upper.join(" ")), Some(expected));
        assert_eq!(
            parse_fingerprint(&upper.concat().to_lowercase()),
            Some(expected)
        );
        assert_eq!(parse_fingerprint(&upper.concat()[..62]), None);
        assert_eq!(parse_fingerprint(&format!("{}00", upper.concat())), None);
        assert_eq!(parse_fingerprint(&format!("{}0", upper.concat())), None);
        assert_eq!(parse_fingerprint(&upper.concat().replace('0', "g")), None);
        assert_eq!(parse_fingerprint(""), None);
    }
}
