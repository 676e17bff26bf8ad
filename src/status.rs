//! The agent's current view, published through a `tokio::sync::watch` so
//! readers (the HTTP endpoint, metrics, the uploader) never touch redb or
//! the router and never hold up the monitor: a read is a reference-count
//! clone. Plain data, with [`Control`], the requests back into the agent
//! loop: a leaf that `agent`, `http` and `uplink` all use, so none of them
//! imports another in a cycle.

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::event::StreamId;
use crate::monitor::{ClockVerdict, MonitorState};
use crate::name::Name;

/// Who the router is, read at each (re)connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterInfo {
    pub identity: Name,
    pub board: Name,
    pub version: Name,
    /// When it booted, by the agent's clock.
    pub boot: Option<Timestamp>,
}

/// User counts from the last poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserCounts {
    pub hotspot_users: usize,
    pub hotspot_managed: usize,
    pub ppp_secrets: usize,
    pub pppoe_managed: usize,
    pub hotspot_active: usize,
    pub ppp_active: usize,
}

/// Upper bounds (seconds) of the poll-duration histogram buckets; the
/// last bucket (+Inf) is implicit.
pub const POLL_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Poll durations as a Prometheus histogram: a fixed array, so the view
/// stays cheap to clone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PollHistogram {
    /// Non-cumulative counts per bucket of [`POLL_BUCKETS`], then +Inf.
    pub counts: [u64; POLL_BUCKETS.len() + 1],
    pub sum_secs: f64,
    pub count: u64,
}

impl PollHistogram {
    pub fn observe(&mut self, secs: f64) {
        let i = POLL_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(POLL_BUCKETS.len());
        self.counts[i] += 1;
        self.sum_secs += secs;
        self.count += 1;
    }
}

/// The upload to the central side, for the status page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UplinkView {
    /// A central URL is configured.
    pub enabled: bool,
    /// The last reply that confirmed events stored.
    pub last_upload_at: Option<Timestamp>,
    /// The last failure, until the next success.
    pub last_error: Option<String>,
    /// Events confirmed and removed from the outbox since start.
    pub uploaded: u64,
    /// Events waiting in the outbox.
    pub pending: u64,
}

#[derive(Debug, Clone)]
pub struct View {
    pub site_id: String,
    pub stream: StreamId,
    pub started_at: Timestamp,
    pub router_connected: bool,
    pub router: Option<RouterInfo>,
    /// Connection attempts that failed or sessions that dropped.
    pub reconnects: u64,
    pub last_router_error: Option<String>,
    /// The monitor state after the last poll: open sessions with their
    /// live counters, voucher progress. Set as soon as the step is done,
    /// while its commit runs (the step updates the state in place, so the
    /// one before is gone); a commit that fails puts back the state as
    /// stored.
    pub state: Arc<MonitorState>,
    pub users: UserCounts,
    /// When the last successful poll finished reading the router.
    pub last_poll: Option<Timestamp>,
    /// When the last poll was attempted, successful or not.
    pub last_poll_attempt: Option<Timestamp>,
    pub last_poll_ms: Option<u64>,
    pub poll_histogram: PollHistogram,
    /// Round trip of `/system/identity/print` over the shared session, in
    /// microseconds, measured at each (re)connect and each forced poll.
    pub router_rtt_us: Option<u64>,
    pub polls: u64,
    pub poll_failures: u64,
    pub last_poll_error: Option<String>,
    pub uplink: UplinkView,
    /// The last cycle's clock assessment: trusted or not, its source, skew.
    pub clock: Option<ClockVerdict>,
}

impl View {
    pub fn new(site_id: String, stream: StreamId, state: Arc<MonitorState>) -> View {
        View {
            site_id,
            stream,
            started_at: Timestamp::now(),
            router_connected: false,
            router: None,
            reconnects: 0,
            last_router_error: None,
            state,
            users: UserCounts::default(),
            last_poll: None,
            last_poll_attempt: None,
            last_poll_ms: None,
            poll_histogram: PollHistogram::default(),
            router_rtt_us: None,
            polls: 0,
            poll_failures: 0,
            last_poll_error: None,
            uplink: UplinkView::default(),
            clock: None,
        }
    }
}

/// Requests into the agent loop from other tasks (the HTTP endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Poll the router now instead of waiting for the next tick.
    PollNow,
    /// Fetch the desired state and reconcile now (see
    /// [`crate::agent::sync`]); a poll too. Without a central URL, the same
    /// as `PollNow`.
    SyncNow,
}
