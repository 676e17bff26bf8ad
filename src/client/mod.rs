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

pub use crate::encoding::hex_colon;
pub use backoff::Backoff;
pub use connection::{Connection, Folded, Item, ReplyStream, Response, Trap};
pub use error::ClientError;
pub use login::challenge_response;
pub use router::{ConnectionEvent, Router};

pub use crate::config::{RouterConfig, Secret, TlsConfig};

/// `host:port`, bracketing a bare IPv6 address.
pub fn router_addr(cfg: &RouterConfig) -> String {
    if cfg.host.contains(':') && !cfg.host.starts_with('[') {
        format!("[{}]:{}", cfg.host, cfg.port)
    } else {
        format!("{}:{}", cfg.host, cfg.port)
    }
}
