//! Events: what the agent saw happen, queued durably for upload.
//!
//! Every event gets a per-site sequence number when it is committed to the
//! state file (see [`crate::store`]), so the central API can de-duplicate a
//! batch that was uploaded twice, and a timestamp from the agent's clock.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    Hotspot,
    Pppoe,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Hotspot => "hotspot",
            Service::Pppoe => "pppoe",
        }
    }
}

/// Why a session ended, as far as the agent can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogoutReason {
    /// Gone from the active list between two polls.
    Gone,
    /// The same user has a new session (new `.id`, new session id, or the
    /// uptime went backwards): the old one ended.
    Relogin,
    /// The router's uptime went backwards: it rebooted and every session
    /// it had ended with it.
    RouterReboot,
    /// Kicked by the agent (voucher expired).
    Kicked,
}

impl LogoutReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutReason::Gone => "gone",
            LogoutReason::Relogin => "relogin",
            LogoutReason::RouterReboot => "router_reboot",
            LogoutReason::Kicked => "kicked",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpiredAction {
    Disable,
    Remove,
}

impl ExpiredAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiredAction::Disable => "disable",
            ExpiredAction::Remove => "remove",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouterState {
    Connected,
    Disconnected,
    Error,
}

impl RouterState {
    pub fn as_str(self) -> &'static str {
        match self {
            RouterState::Connected => "connected",
            RouterState::Disconnected => "disconnected",
            RouterState::Error => "error",
        }
    }
}

/// Identifies one session on the router: the `.id` of its active entry,
/// plus the PPP `session-id` where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    pub service: Service,
    pub user: String,
    pub active_id: String,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Login {
        session: SessionRef,
        address: String,
        /// Hotspot: the client MAC. PPPoE: empty (see `caller_id`).
        mac: String,
        /// PPPoE: the caller-id (usually the client MAC). Hotspot: empty.
        caller_id: String,
        /// Hotspot `login-by` (cookie, http-chap, mac, ...); PPP: the service.
        login_by: String,
        profile: String,
    },
    Logout {
        session: SessionRef,
        reason: LogoutReason,
        /// Final counters, as last seen. PPPoE active entries carry no byte
        /// counters in RouterOS, so these are `None` there.
        bytes_in: Option<u64>,
        bytes_out: Option<u64>,
        uptime_secs: u64,
    },
    /// Interim update for a long session, like a RADIUS interim update.
    Usage {
        session: SessionRef,
        bytes_in: Option<u64>,
        bytes_out: Option<u64>,
        uptime_secs: u64,
    },
    VoucherActivated {
        user: String,
        batch_id: String,
        valid_hours: u32,
        first_login_at: Timestamp,
        expires_at: Timestamp,
    },
    VoucherExpired {
        user: String,
        batch_id: String,
        expires_at: Timestamp,
        action: ExpiredAction,
    },
    /// A user with a comment but no `_SYSTEM` marker: made by hand or by
    /// another tool. Reported once per user.
    ManualUser {
        service: Service,
        user: String,
        profile: String,
        /// The comment, lossily decoded for display.
        comment: String,
    },
    Router {
        state: RouterState,
        reason: String,
    },
}

impl EventKind {
    /// The stable name used in JSON and in the README.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Login { .. } => "login",
            EventKind::Logout { .. } => "logout",
            EventKind::Usage { .. } => "usage",
            EventKind::VoucherActivated { .. } => "voucher_activated",
            EventKind::VoucherExpired { .. } => "voucher_expired",
            EventKind::ManualUser { .. } => "manual_user",
            EventKind::Router { .. } => "router",
        }
    }
}

/// An event as committed: numbered and timestamped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: EventKind,
}

impl Event {
    /// The flat JSON form used by logs, the CLI and (later) the upload API:
    /// `{"seq":1,"at":"…","site":"…","type":"login",…fields}`.
    pub fn to_json(&self, site: &str) -> serde_json::Value {
        use serde_json::json;
        let mut v = match &self.kind {
            EventKind::Login {
                session,
                address,
                mac,
                caller_id,
                login_by,
                profile,
            } => {
                let mut v = session_json(session);
                v["address"] = json!(address);
                v["mac"] = json!(mac);
                v["caller_id"] = json!(caller_id);
                v["login_by"] = json!(login_by);
                v["profile"] = json!(profile);
                v
            }
            EventKind::Logout {
                session,
                reason,
                bytes_in,
                bytes_out,
                uptime_secs,
            } => {
                let mut v = session_json(session);
                v["reason"] = json!(reason.as_str());
                v["bytes_in"] = json!(bytes_in);
                v["bytes_out"] = json!(bytes_out);
                v["uptime_secs"] = json!(uptime_secs);
                v
            }
            EventKind::Usage {
                session,
                bytes_in,
                bytes_out,
                uptime_secs,
            } => {
                let mut v = session_json(session);
                v["bytes_in"] = json!(bytes_in);
                v["bytes_out"] = json!(bytes_out);
                v["uptime_secs"] = json!(uptime_secs);
                v
            }
            EventKind::VoucherActivated {
                user,
                batch_id,
                valid_hours,
                first_login_at,
                expires_at,
            } => json!({
                "service": "hotspot", "user": user, "batch_id": batch_id, "valid_hours": valid_hours,
                "first_login_at": first_login_at.to_rfc3339(), "expires_at": expires_at.to_rfc3339(),
            }),
            EventKind::VoucherExpired {
                user,
                batch_id,
                expires_at,
                action,
            } => json!({
                "service": "hotspot", "user": user, "batch_id": batch_id,
                "expires_at": expires_at.to_rfc3339(), "action": action.as_str(),
            }),
            EventKind::ManualUser {
                service,
                user,
                profile,
                comment,
            } => json!({
                "service": service.as_str(), "user": user, "profile": profile, "comment": comment,
            }),
            EventKind::Router { state, reason } => {
                json!({ "state": state.as_str(), "reason": reason })
            }
        };
        v["seq"] = json!(self.seq);
        v["at"] = json!(self.at.to_rfc3339());
        v["site"] = json!(site);
        v["type"] = json!(self.kind.name());
        v
    }
}

fn session_json(s: &SessionRef) -> serde_json::Value {
    serde_json::json!({
        "service": s.service.as_str(),
        "user": s.user,
        "active_id": s.active_id,
        "session_id": s.session_id,
    })
}
