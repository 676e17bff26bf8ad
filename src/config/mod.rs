//! Agent configuration: an optional TOML file plus `MIKROTIK_EDGE_*`
//! environment variables. The environment wins over the file, per key;
//! defaults fill the rest.
//!
//! Every error names the offending key both ways, as `router.port
//! (MIKROTIK_EDGE_ROUTER_PORT)`, so an operator can fix it wherever it was
//! set. The router password never appears in any error, `Debug` or `Display`
//! output.
//!
//! - mod.rs: the validated types and [`Config::load`].
//! - sources.rs: reading the file and the environment, raw values, errors.
//! - validate.rs: turning raw values into typed settings.
//! - uplink.rs, webhook.rs, sync.rs: the central side, the alert webhook,
//!   full sync.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::LevelFilter;

mod sources;
mod sync;
#[cfg(test)]
mod tests;
mod uplink;
mod validate;
mod webhook;

pub use sync::SyncConfig;
pub use uplink::{CentralConfig, UplinkConfig};
pub use webhook::WebhookConfig;

use sources::{Sources, error, read_toml};
use validate::{load_http, load_router, parse_level, valid_site_id};

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
    "user_read_secs",
    "active_read_secs",
    "hotspot_profile_pattern",
    "pppoe_profile_pattern",
    "expired_action",
    "mac_lock",
    "mac_lock_profile_pattern",
    "http_listen",
    "http_token",
    "http_token_file",
    "http_allowed_hosts",
    "central_url",
    "central_token",
    "central_token_file",
    "central_ca_file",
    "central_backoff_cap_secs",
    "central_timeout_secs",
    "batch_max",
    "outbox_max_mb",
    "alert_after",
    "alert_webhook",
    "alert_webhook_body",
    "alert_webhook_format",
    "alert_webhook_headers",
    "sync_secs",
    "suspend_mode",
    "isolir_profile",
    "sync_max_in_flight",
    "desired_poll_secs",
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
    /// How often the hotspot users and PPP secrets are read in full while
    /// `listen` reports their changes and the active lists' (so no session
    /// goes unseen), 0..=86400 seconds; 0 reads them at every poll (and
    /// does not listen on them).
    pub user_read_secs: u64,
    /// How often the active lists are read in full (their counters) while
    /// their listens are open, 0..=86400 seconds, at most every
    /// `usage_secs`; between, a poll only counts their rows. 0 reads them
    /// at every poll.
    pub active_read_secs: u64,
    /// Glob (`*`, `?`) over hotspot user profile names; see [`crate::monitor::glob_match`].
    pub hotspot_profile_pattern: String,
    /// Glob (`*`, `?`) over PPP profile names; see [`crate::monitor::glob_match`].
    pub pppoe_profile_pattern: String,
    pub expired_action: ExpiredAction,
    /// Bind every voucher to the first MAC that logs in with it.
    pub mac_lock: bool,
    /// Bind vouchers whose profile matches this glob (as `mac_lock`, per
    /// profile); `None` when unset.
    pub mac_lock_profile_pattern: Option<String>,
    /// The local HTTP endpoint.
    pub http: HttpConfig,
    /// Upload to the central side, and alerts.
    pub uplink: UplinkConfig,
    /// Full sync with the central side's desired state.
    pub sync: SyncConfig,
}

/// Default address of the local HTTP endpoint: loopback only, so nothing
/// is exposed until the operator decides to.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";

/// The local HTTP endpoint (status page, user API, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `None` when `http_listen = "off"`.
    pub listen: Option<std::net::SocketAddr>,
    /// Bearer token for requests that change anything; without one those
    /// requests are refused (403).
    pub token: Option<Secret>,
    /// `http_allowed_hosts`: names (`edge.lan`, any port) or `name:port`
    /// a request's `Host` may carry besides the endpoint's own address
    /// and loopback names; lowercased.
    pub allowed_hosts: Vec<String>,
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
            user_read_secs: src
                .uint(
                    "user_read_secs",
                    0..=86_400,
                    "a whole number of seconds 0-86400",
                )?
                .unwrap_or(3600),
            active_read_secs: src
                .uint(
                    "active_read_secs",
                    0..=86_400,
                    "a whole number of seconds 0-86400",
                )?
                .unwrap_or(300),
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
            mac_lock: src.boolean("mac_lock")?.unwrap_or(false),
            mac_lock_profile_pattern: src.pattern("mac_lock_profile_pattern")?,
            http: load_http(&src)?,
            uplink: uplink::load_uplink(&src)?,
            sync: sync::load_sync(&src)?,
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
            max_reply_bytes: 32 * 1024 * 1024,
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
