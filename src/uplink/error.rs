//! Why a call to the central side failed. Never holds the token: messages
//! come from the transport or the server's JSON `message`, both token-free.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkError {
    /// No complete answer within the timeout.
    Timeout,
    /// No connection was made (refused, unknown host): nothing was sent.
    Connect(String),
    /// Reset, TLS, protocol errors: no usable HTTP answer.
    Transport(String),
    /// An HTTP answer other than 2xx; `message` is the body's `message`
    /// field (or a short excerpt of the body).
    Status { code: u16, message: String },
    /// A 2xx whose body is not what the contract says.
    BadReply(String),
    /// The HTTP thread is gone.
    Closed,
}

impl fmt::Display for UplinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UplinkError::Timeout => f.write_str("timeout"),
            UplinkError::Connect(e) | UplinkError::Transport(e) => write!(f, "{e}"),
            UplinkError::Status { code, message } if message.is_empty() => {
                write!(f, "HTTP {code}")
            }
            UplinkError::Status { code, message } => write!(f, "HTTP {code}: {message}"),
            UplinkError::BadReply(e) => write!(f, "unexpected reply: {e}"),
            UplinkError::Closed => f.write_str("HTTP client thread ended"),
        }
    }
}

impl UplinkError {
    /// True when the central side certainly did not store the request: no
    /// connection, or a refusal that comes before any write (4xx other
    /// than 408). Timeouts, resets and 5xx (a proxy's 502/504 may follow a
    /// commit) leave it unknown.
    pub fn nothing_stored(&self) -> bool {
        match self {
            UplinkError::Connect(_) => true,
            UplinkError::Status { code, .. } => (400..500).contains(code) && *code != 408,
            _ => false,
        }
    }
}

impl UplinkError {
    /// The central side refused the batch's content (400 or 422): the
    /// uploader narrows it down to the refused events (see the uploader).
    pub fn is_malformed_batch(&self) -> bool {
        matches!(
            self,
            UplinkError::Status {
                code: 400 | 422,
                ..
            }
        )
    }
}

impl std::error::Error for UplinkError {}
