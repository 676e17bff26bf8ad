//! What the agent remembers between cycles. Persisted in redb (postcard),
//! so field changes need a schema version bump in [`crate::store`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::event::Service;

/// A session the agent has reported a login for and not yet a logout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedSession {
    pub service: Service,
    pub user: String,
    pub active_id: String,
    pub session_id: String,
    pub address: String,
    pub mac: String,
    pub caller_id: String,
    /// Last values seen; reported as the final counters at logout.
    pub uptime_secs: u64,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    /// When the last usage (or the login) event was emitted.
    pub last_report: Timestamp,
}

/// Voucher progress the router comment may not show yet (the write can fail
/// or the agent can crash between deciding and writing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherProgress {
    /// Activation decided (event emitted); the comment write is retried until
    /// the router's comment shows a `first_login_at`.
    pub activation: Option<(Timestamp, Timestamp)>,
    /// `expires_at` for which `voucher_expired` was emitted.
    pub expired_for: Option<Timestamp>,
    /// True once the router confirmed the expiry (user disabled or gone,
    /// no session left): the voucher is never acted on again for that term.
    pub enforced: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// Open sessions by (service, active `.id`).
    pub sessions: BTreeMap<(Service, String), TrackedSession>,
    /// Vouchers by user name.
    pub vouchers: BTreeMap<String, VoucherProgress>,
    /// Users already reported as `manual_user`.
    pub flagged_manual: BTreeSet<(Service, String)>,
    /// The router's boot time as last estimated (see
    /// [`Snapshot::router_boot`](super::Snapshot::router_boot)).
    pub router_boot: Option<Timestamp>,
    /// Whether any cycle has completed yet. The first cycle after a fresh
    /// install reports sessions already running as logins.
    pub cycles: u64,
}
