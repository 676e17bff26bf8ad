//! What the agent remembers between cycles. Persisted in redb (postcard),
//! one row per session and per voucher (see [`crate::store`]), so field
//! changes need a schema version bump there.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Totals;
use super::clock_trust::ClockLedger;
use super::sorted_map::SortedMap;
use crate::clock::Timestamp;
use crate::event::Service;
use crate::name::{Id, Mac, Name};

/// Counters of a session as last seen. They change every poll, so they are
/// not a reason to write a session row (see [`TrackedSession::same_record`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub uptime_secs: u64,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
}

/// A session the agent has reported a login for and not yet a logout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedSession {
    pub service: Service,
    pub user: Name,
    pub active_id: Id,
    pub session_id: Name,
    pub address: Option<IpAddr>,
    pub mac: Option<Mac>,
    pub caller_id: Name,
    pub profile: Name,
    /// Last values seen; reported as the final counters at logout.
    pub counters: Counters,
    /// When the last usage (or the login) event was emitted.
    pub last_report: Timestamp,
}

impl TrackedSession {
    /// Equal but for the live counters. A session row is rewritten only
    /// when this is false: counters are saved with each usage event (which
    /// moves `last_report`), not at every poll, so a quiet cycle writes
    /// nothing. After a restart the logout then reports the counters of
    /// the last usage event at worst.
    pub fn same_record(&self, other: &TrackedSession) -> bool {
        self.service == other.service
            && self.user == other.user
            && self.active_id == other.active_id
            && self.session_id == other.session_id
            && self.address == other.address
            && self.mac == other.mac
            && self.caller_id == other.caller_id
            && self.profile == other.profile
            && self.last_report == other.last_report
    }
}

/// Voucher progress the router comment may not show yet (the write can fail
/// or the agent can crash between deciding and writing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherProgress {
    /// Activation decided (event emitted); the comment write is retried until
    /// the router's comment shows a `first_login_at` (for a correction of a
    /// provisional activation: until it shows the corrected one).
    pub activation: Option<(Timestamp, Timestamp)>,
    /// `expires_at` for which `voucher_expired` was emitted.
    pub expired_for: Option<Timestamp>,
    /// True once the router confirmed the expiry (user disabled or gone,
    /// no session left): the voucher is never acted on again for that term.
    pub enforced: bool,
    /// The comment's dates do not parse; `voucher_invalid` was emitted and
    /// the voucher is left alone until the comment is fixed.
    pub invalid_reported: bool,
    /// Set when the activation was stamped on an untrusted clock (see
    /// [`super::clock_trust`]); kept until the corrected comment is written.
    pub provisional: Option<Provisional>,
    /// MAC lock decided at activation: the `mac-address` write is retried
    /// with the comment write.
    pub mac: Option<Mac>,
}

/// A provisional activation: anchored to the monotonic ledger so it can be
/// re-stamped, and expired on elapsed time, whatever the wall clock says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provisional {
    /// The ledger's elapsed seconds at activation.
    pub anchor: u64,
    /// The provisional `first_login_at` written first.
    pub first_login_at: Timestamp,
    /// A trusted time arrived and the corrected times were decided
    /// (`voucher_corrected` emitted); the comment write is pending.
    pub corrected: bool,
}

/// A managed hotspot user's cumulative counters as last accounted for,
/// to tell sessions the agent never saw (see `monitor::usage`). Changes
/// only when the counters move (a session ended) or a seen session ends,
/// both moments with an event, so a quiet poll writes no row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBaseline {
    /// The user's `.id`: another id under the same name is a re-created
    /// user, whose counters start again.
    pub id: Id,
    /// The user's cumulative counters at the last accounting.
    pub totals: Totals,
    /// What seen sessions that ended since account for (their last seen
    /// counters plus the time since they were last seen, an upper bound).
    pub credit: Totals,
}

/// Keys of the session map: the service and the active entry's `.id`.
pub type SessionKey = (Service, Id);

#[derive(Debug, Clone, Default, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// Open sessions by (service, active `.id`).
    pub sessions: SortedMap<SessionKey, TrackedSession>,
    /// Vouchers by user name (raw bytes).
    pub vouchers: SortedMap<Name, VoucherProgress>,
    /// Users already reported as `manual_user`.
    pub flagged_manual: BTreeSet<(Service, Name)>,
    /// The router's boot time as last estimated (see
    /// [`Snapshot::router_boot`](super::Snapshot::router_boot)).
    pub router_boot: Option<Timestamp>,
    /// Whether a cycle has completed on this state file. The first cycle
    /// reports sessions already running as logins seen at start.
    pub started: bool,
    /// Elapsed-time checkpoint and last reported clock verdict.
    pub clock: ClockLedger,
    /// Managed hotspot users' counter baselines, by user name.
    pub usage: SortedMap<Name, UsageBaseline>,
    /// When the last poll's lists were read. In memory only: it bounds
    /// how long ago an ending session was last seen; after a restart the
    /// session's `last_report` is used instead (an earlier, looser bound).
    #[serde(skip)]
    pub last_poll: Option<Timestamp>,
}

impl MonitorState {
    /// A copy of everything but the session map (left empty): what a
    /// delta needs of the state before a step that updates the sessions
    /// in place. The other maps are shared, not copied.
    pub fn without_sessions(&self) -> MonitorState {
        MonitorState {
            sessions: SortedMap::default(),
            vouchers: self.vouchers.clone(),
            flagged_manual: self.flagged_manual.clone(),
            router_boot: self.router_boot,
            started: self.started,
            clock: self.clock,
            usage: self.usage.clone(),
            last_poll: self.last_poll,
        }
    }
}

/// Equal when what is persisted is equal: `last_poll` moves every poll
/// and is not part of what the agent remembers across restarts.
impl PartialEq for MonitorState {
    fn eq(&self, other: &MonitorState) -> bool {
        self.sessions == other.sessions
            && self.vouchers == other.vouchers
            && self.flagged_manual == other.flagged_manual
            && self.router_boot == other.router_boot
            && self.started == other.started
            && self.usage == other.usage
            && self.clock == other.clock
    }
}
