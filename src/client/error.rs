use std::fmt;
use std::time::Duration;

use crate::cause::Cause;
use crate::proto::ProtoError;

/// Why a router operation failed. None of these ever carries the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// TCP connect failed (refused, unreachable, DNS).
    Connect {
        addr: String,
        /// The I/O error underneath (`source()`).
        reason: Cause,
    },
    ConnectTimeout {
        addr: String,
        after: Duration,
    },
    /// TLS handshake failed for a reason other than the certificate.
    Tls(Cause),
    /// The router's certificate matched neither the CA nor the pin.
    Certificate(String),
    /// The router rejected the user name or password.
    BadCredentials {
        user: String,
        message: String,
    },
    LoginFailed(String),
    LoginTimeout(Duration),
    /// No reply to a command within the command timeout.
    Timeout {
        command: String,
        after: Duration,
    },
    /// The command answered `!trap`.
    Trap {
        command: String,
        category: Option<u8>,
        message: String,
    },
    /// One command's reply grew past `max_reply_bytes`; the command was
    /// cancelled, the session stays up.
    ReplyTooLarge {
        command: String,
        cap: u64,
    },
    /// A streamed command's reader left this many items unread; the
    /// command was cancelled rather than queue without bound.
    Behind {
        command: String,
        unread: usize,
    },
    /// The router sent `!fatal` and closed the session.
    Fatal(String),
    /// The byte stream broke the API framing.
    Protocol(ProtoError),
    /// The connection dropped.
    ConnectionLost(Cause),
    /// The agent is between connections; the last reason it lost one.
    NotConnected {
        last_error: Option<String>,
    },
}

impl ClientError {
    /// A short stable word for the kind of failure, for events and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Connect { .. } => "refused",
            ClientError::ConnectTimeout { .. }
            | ClientError::LoginTimeout(_)
            | ClientError::Timeout { .. } => "timeout",
            ClientError::Tls(_) => "tls",
            ClientError::Certificate(_) => "certificate",
            ClientError::BadCredentials { .. } => "bad-credentials",
            ClientError::LoginFailed(_) => "login",
            ClientError::Trap { .. } => "trap",
            ClientError::ReplyTooLarge { .. } => "reply-too-large",
            ClientError::Behind { .. } => "behind",
            ClientError::Fatal(_) => "fatal",
            ClientError::Protocol(_) => "protocol",
            ClientError::ConnectionLost(_) => "connection-lost",
            ClientError::NotConnected { .. } => "not-connected",
        }
    }

    /// True when the session is unusable and must be re-established.
    pub fn is_fatal_to_connection(&self) -> bool {
        !matches!(
            self,
            ClientError::Trap { .. }
                | ClientError::Timeout { .. }
                | ClientError::ReplyTooLarge { .. }
                | ClientError::Behind { .. }
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { addr, reason } => {
                write!(f, "cannot connect to {addr}: {reason}")
            }
            ClientError::ConnectTimeout { addr, after } => {
                write!(
                    f,
                    "timeout: no answer from {addr} within {}s",
                    after.as_secs()
                )
            }
            ClientError::Tls(reason) => write!(f, "TLS handshake failed: {reason}"),
            ClientError::Certificate(reason) => write!(f, "certificate rejected: {reason}"),
            ClientError::BadCredentials { user, message } => {
                write!(
                    f,
                    "bad credentials: router rejected user {user:?} ({message})"
                )
            }
            ClientError::LoginFailed(reason) => write!(f, "login failed: {reason}"),
            ClientError::LoginTimeout(after) => {
                write!(f, "timeout: no login reply within {}s", after.as_secs())
            }
            ClientError::Timeout { command, after } => {
                write!(
                    f,
                    "timeout: {command} got no reply within {}s",
                    after.as_secs()
                )
            }
            ClientError::Trap {
                command, message, ..
            } => write!(f, "{command}: {message}"),
            ClientError::ReplyTooLarge { command, cap } => write!(
                f,
                "{command}: reply exceeds the {cap}-byte limit (router.max_reply_bytes); command cancelled"
            ),
            ClientError::Behind { command, unread } => write!(
                f,
                "{command}: {unread} reply items left unread; command cancelled"
            ),
            ClientError::Fatal(reason) => write!(f, "router closed the session: {reason}"),
            ClientError::Protocol(err) => write!(f, "{err}"),
            ClientError::ConnectionLost(reason) => write!(f, "connection lost: {reason}"),
            ClientError::NotConnected {
                last_error: Some(e),
            } => write!(f, "not connected to the router (last error: {e})"),
            ClientError::NotConnected { last_error: None } => {
                write!(f, "not connected to the router yet")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { reason, .. }
            | ClientError::Tls(reason)
            | ClientError::ConnectionLost(reason) => reason.source(),
            ClientError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProtoError> for ClientError {
    fn from(err: ProtoError) -> Self {
        ClientError::Protocol(err)
    }
}
