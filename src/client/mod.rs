//! One long-lived RouterOS API connection, shared by every task of the agent.
//!
//! RouterOS allows 20 API sessions by default, shared with Winbox-era tools
//! and panels, so the agent opens exactly one and multiplexes commands over
//! it with `.tag`. The pieces:
//!
//! - [`Router`] (router.rs): the handle the rest of the agent uses. It keeps
//!   a connection up in the background, reconnects with backoff and jitter,
//!   and reports [`ConnectionEvent`]s. While disconnected, commands fail at
//!   once with [`ClientError::NotConnected`] instead of hanging.
//! - connection.rs: one established session: a driver task owns the socket,
//!   tags outgoing commands and routes replies back to their callers.
//! - login.rs: plain login (6.43+) with the pre-6.43 MD5 challenge fallback.
//! - tls.rs: API-SSL with webpki roots, a CA file, or SHA-256 pinning.
//! - backoff.rs: the reconnect delay policy, pure and seeded for tests.

mod backoff;
mod connection;
mod error;
mod login;
mod router;
mod tls;

pub use backoff::Backoff;
pub use connection::{Connection, Response, Trap};
pub use error::ClientError;
pub use login::challenge_response;
pub use router::{ConnectionEvent, Router};
pub use tls::TlsMode;

use std::fmt;
use std::time::Duration;

/// Everything needed to reach and log in to one router.
#[derive(Clone)]
pub struct ClientConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// `None` for plain API (8728).
    pub tls: Option<TlsMode>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Idle time after which a cheap command checks the session is alive.
    pub keepalive: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub max_word: usize,
}

impl ClientConfig {
    /// A config with the documented defaults, for tests and tools.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>, password: impl Into<String>) -> Self {
        ClientConfig {
            host: host.into(),
            port,
            user: user.into(),
            password: password.into(),
            tls: None,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(60),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(60),
            max_word: crate::proto::DEFAULT_MAX_WORD,
        }
    }

    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

// The password must never reach a log line, even through `{:?}`.
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}
