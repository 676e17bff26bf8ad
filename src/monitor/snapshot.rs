//! The typed rows the pure monitor works on. The driver side
//! ([`crate::agent::rows`]) builds them from the router's replies as they
//! stream in; nothing here knows about wire words.

use std::net::IpAddr;

use super::clock_trust::ClockVerdict;
use crate::clock::Timestamp;
use crate::event::Service;
use crate::name::{Id, Mac, Name};

/// A hotspot user or PPP secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: Id,
    pub name: Name,
    /// Interned by the row parser: one allocation per distinct profile.
    pub profile: Name,
    /// Raw bytes: comments are not UTF-8 clean and must round-trip exactly.
    pub comment: Name,
    pub disabled: bool,
    /// Hotspot users only: cumulative counters over the user's ended
    /// sessions (`None` for PPP secrets, or a value that did not parse).
    pub totals: Option<Totals>,
}

/// A hotspot user's cumulative `uptime`, `bytes-in` and `bytes-out`.
#[derive(Debug, Clone, Copy, Default, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    pub uptime_secs: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// By hand: the derived comparison becomes a `memcmp` call in the
/// size-optimised build (compared for every user, every poll).
impl PartialEq for Totals {
    #[inline(always)]
    fn eq(&self, other: &Totals) -> bool {
        (self.uptime_secs ^ other.uptime_secs)
            | (self.bytes_in ^ other.bytes_in)
            | (self.bytes_out ^ other.bytes_out)
            == 0
    }
}

impl Totals {
    /// Field by field `self - other`, or `None` when any field shrank.
    pub fn growth_since(&self, other: &Totals) -> Option<Totals> {
        Some(Totals {
            uptime_secs: self.uptime_secs.checked_sub(other.uptime_secs)?,
            bytes_in: self.bytes_in.checked_sub(other.bytes_in)?,
            bytes_out: self.bytes_out.checked_sub(other.bytes_out)?,
        })
    }

    pub fn saturating_sub(&self, other: &Totals) -> Totals {
        Totals {
            uptime_secs: self.uptime_secs.saturating_sub(other.uptime_secs),
            bytes_in: self.bytes_in.saturating_sub(other.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(other.bytes_out),
        }
    }

    pub fn saturating_add(&self, other: &Totals) -> Totals {
        Totals {
            uptime_secs: self.uptime_secs.saturating_add(other.uptime_secs),
            bytes_in: self.bytes_in.saturating_add(other.bytes_in),
            bytes_out: self.bytes_out.saturating_add(other.bytes_out),
        }
    }

    pub fn min(&self, other: &Totals) -> Totals {
        Totals {
            uptime_secs: self.uptime_secs.min(other.uptime_secs),
            bytes_in: self.bytes_in.min(other.bytes_in),
            bytes_out: self.bytes_out.min(other.bytes_out),
        }
    }
}

/// An entry of `/ip/hotspot/active` or `/ppp/active`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub service: Service,
    /// `.id` of the active entry.
    pub id: Id,
    pub user: Name,
    pub address: Option<IpAddr>,
    /// Hotspot only.
    pub mac: Option<Mac>,
    /// PPP only.
    pub caller_id: Name,
    pub login_by: Name,
    /// PPP `session-id`; empty for hotspot.
    pub session_id: Name,
    /// `None` when the router sent a value that did not parse.
    pub uptime_secs: Option<u64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
}

/// The four lists read in one cycle. Only a snapshot where all four reads
/// succeeded is ever built: a failed read is not an empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub hotspot_users: Vec<UserRow>,
    pub hotspot_active: Vec<SessionRow>,
    pub ppp_secrets: Vec<UserRow>,
    pub ppp_active: Vec<SessionRow>,
    /// When the router booted, by the agent's clock (now minus the
    /// `/system/resource` uptime read at connect time, so it costs no read
    /// per cycle). Tells a reboot from ordinary logouts; `None` if unknown.
    pub router_boot: Option<Timestamp>,
    /// This cycle's clock assessment ([`super::clock_trust::assess`]).
    /// `None`: not assessed, the wall clock is taken as right (tests of
    /// other topics); the agent always sets it.
    pub clock: Option<ClockVerdict>,
    /// The hotspot users were not read this cycle: they are the agent's
    /// copy, kept current by listen since the last full read, and their
    /// cumulative counters (which move without a listen row) may be behind.
    /// Unseen usage is then not judged; seen sessions that end add their
    /// credit until the next full read.
    pub hotspot_users_kept: bool,
    /// Both user lists are exactly the rows the last step saw (kept, no
    /// listen change since): the step skips the work that depends on
    /// them alone (unseen usage with nothing ended, hand-made users).
    pub users_same: bool,
    /// The active lists were not read this poll, only counted: the step
    /// takes the open sessions of its state (as the listens left them,
    /// checked against the router's counts) for their rows, with the
    /// counters last read, and ignores `hotspot_active` and `ppp_active`.
    /// No usage is reported from them and `last_poll` (when counters were
    /// last seen) stays.
    pub sessions_kept: bool,
    /// Counters read now are read again only a usage interval later: a
    /// session whose usage falls due within this many seconds reports now
    /// rather than an interval late (0: counters are read every poll).
    pub usage_early_secs: u64,
    /// Sessions the agent ended itself since the last poll (sync, user
    /// API): gone, they log out as `kicked`.
    pub kicked: std::collections::BTreeSet<super::SessionKey>,
}
