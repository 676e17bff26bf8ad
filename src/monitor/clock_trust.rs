//! Whether the wall clock can be trusted, and a lower bound on real time
//! elapsed that survives restarts. Pure: the driver gathers the inputs
//! ([`crate::agent::clock`]) and feeds them in each cycle.
//!
//! A Raspberry Pi (and most MikroTik boards) has no real-time clock: after
//! a power cut it boots at 1970 or at the last saved time, and NTP needs
//! the WAN that is often down exactly then. So the wall clock is only
//! trusted when something says it is right: the kernel's NTP state, the
//! router's NTP client, or the central server's `Date` header.
//!
//! Trusted sources can still be wrong (a misread `gmt-offset`, a router
//! NTP server serving a bad time). When two of them are more than
//! [`DISAGREE_SECS`] apart, the earliest is used: a voucher then expires
//! late, never early. The driver alerts once per such episode
//! ([`episode`]).
//!
//! Whatever the wall clock says, a monotonic clock (`CLOCK_BOOTTIME`)
//! measures elapsed time. The [`ClockLedger`] adds it up into `elapsed`,
//! seconds of real time that certainly passed since the state file began,
//! checkpointed in the state file every few minutes. After a restart it
//! continues from the checkpoint: on the same host boot the monotonic clock
//! kept running, so nothing is lost; after a host reboot only the new boot's
//! uptime is counted (the downtime is unknown), which keeps it a lower bound.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::event::{ClockSource, EventKind};

/// How often the ledger checkpoint moves (and is written) at most, unless
/// trust changes or the monotonic clock restarts.
pub const CHECKPOINT_SECS: u64 = 300;

/// A clock event is emitted again when the skew moves by this much.
pub const SKEW_REPORT_SECS: u64 = 60;

/// Two trusted sources further apart than this (beyond their error
/// bounds) disagree: the earliest is used and an alert raised. Sources
/// agreeing within it are used in preference order.
pub const DISAGREE_SECS: u64 = 120;

/// A disagreement episode ends once every pair of sources is back within
/// this (less than [`DISAGREE_SECS`], so a gap hovering near the limit
/// does not alert at every poll).
pub const AGREE_SECS: u64 = 60;

/// The router's clock as of this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterClock {
    /// Router time in UTC, carried forward to this cycle with the monotonic
    /// clock since it was read (it is read every few polls, not each one).
    pub time: Timestamp,
    /// The router's NTP client status: `Some(true)` when synchronised,
    /// `None` when the router does not say.
    pub ntp_synced: Option<bool>,
}

/// The central server's time as of this cycle, from a reply's `Date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CentralClock {
    /// The `Date` header's value, carried forward with the monotonic clock
    /// from when the reply arrived: a lower bound of the server's time.
    pub time: Timestamp,
    /// The server's time lies within `[time, time + error_secs]`: when the
    /// server wrote the header inside the request's round trip is unknown,
    /// and the header is truncated to whole seconds. The lower end is the
    /// one used, so a long round trip can only make the time late.
    pub error_secs: u64,
}

/// Everything the agent knows about time in one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInputs {
    /// The agent's wall clock.
    pub wall: Timestamp,
    /// Monotonic seconds (`CLOCK_BOOTTIME`: since the host booted).
    pub mono_secs: u64,
    /// The kernel's synchronisation state; `None` when unknown.
    pub kernel_synced: Option<bool>,
    pub router: Option<RouterClock>,
    /// The central server's `Date`, carried forward to this cycle.
    pub central: Option<CentralClock>,
}

/// The assessment of one cycle's clock inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockVerdict {
    pub trusted: bool,
    pub source: ClockSource,
    /// Agent wall clock minus the reference (the trusted source's time, or
    /// for a synchronised kernel the router's or central's time).
    pub skew_secs: Option<i64>,
    /// The time to act on: the trusted source's time, or when untrusted the
    /// later of the wall clock and the ledger's lower bound.
    pub best_now: Timestamp,
    /// Passed through for the ledger.
    pub mono_secs: u64,
}

/// Persisted: the elapsed-time checkpoint and what was last reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockLedger {
    /// False on a new state file: the first cycle sets the checkpoint.
    pub started: bool,
    /// Seconds certainly elapsed since the ledger started, at the checkpoint.
    pub elapsed_secs: u64,
    /// The monotonic reading at the checkpoint.
    pub mono_secs: u64,
    /// A trusted wall time and the ledger's elapsed at that moment: now is
    /// at least that time plus the elapsed since.
    pub trusted_at: Option<(Timestamp, u64)>,
    /// (trusted, source, skew) of the last `clock` event.
    pub reported: Option<(bool, ClockSource, Option<i64>)>,
}

impl ClockLedger {
    /// Elapsed seconds at monotonic reading `mono`. A reading below the
    /// checkpoint's means the host rebooted: only its new uptime is sure.
    pub fn elapsed_at(&self, mono: u64) -> u64 {
        if !self.started {
            return self.elapsed_secs;
        }
        let since = if mono >= self.mono_secs {
            mono - self.mono_secs
        } else {
            mono
        };
        self.elapsed_secs.saturating_add(since)
    }

    /// A lower bound of the real time now, from the last trusted time.
    pub fn floor_at(&self, mono: u64) -> Option<Timestamp> {
        let (at, elapsed) = self.trusted_at?;
        let since = self.elapsed_at(mono).saturating_sub(elapsed);
        Some(at.plus_secs(i64::try_from(since).unwrap_or(i64::MAX)))
    }
}

/// What the voucher logic needs to know about time in one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockNow {
    pub trusted: bool,
    /// The ledger's elapsed seconds now; `None` when the clock was not
    /// assessed (then there is no monotonic fallback).
    pub elapsed: Option<u64>,
    /// A lower bound of the real time now (see [`ClockLedger::floor_at`]).
    pub floor: Option<Timestamp>,
}

impl Default for ClockNow {
    fn default() -> Self {
        ClockNow::UNASSESSED
    }
}

impl ClockNow {
    /// The same judgement `secs` later: the elapsed count and the floor
    /// move on with the monotonic clock.
    pub fn later(&self, secs: u64) -> ClockNow {
        ClockNow {
            trusted: self.trusted,
            elapsed: self.elapsed.map(|e| e.saturating_add(secs)),
            floor: self
                .floor
                .map(|f| f.plus_secs(i64::try_from(secs).unwrap_or(i64::MAX))),
        }
    }

    /// The clock was not assessed: the wall clock is taken as right (the
    /// behaviour before clock trust; only tests of other topics do this).
    pub const UNASSESSED: ClockNow = ClockNow {
        trusted: true,
        elapsed: None,
        floor: None,
    };
}

/// The trusted sources' times in one cycle (lower bounds), for the log
/// and the alert when they disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readings {
    pub kernel: Option<Timestamp>,
    pub router_ntp: Option<Timestamp>,
    pub central: Option<Timestamp>,
}

/// One cycle's judgement: the verdict, and how far apart the trusted
/// sources are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: ClockVerdict,
    pub readings: Readings,
    /// The largest gap between two trusted sources, beyond their error
    /// bounds; `None` with fewer than two.
    pub spread_secs: Option<u64>,
}

impl Judgement {
    /// More than [`DISAGREE_SECS`] apart: the earliest time is in use.
    pub fn disagrees(&self) -> bool {
        self.spread_secs.is_some_and(|s| s > DISAGREE_SECS)
    }
}

/// A trusted source's reading: its time lies within `[lo, hi]`.
#[derive(Clone, Copy)]
struct Reading {
    source: ClockSource,
    lo: Timestamp,
    hi: Timestamp,
}

/// Seconds between two readings beyond their bounds (0 when they overlap).
fn gap(a: &Reading, b: &Reading) -> u64 {
    let apart = a.lo.secs_since(b.hi).max(b.lo.secs_since(a.hi));
    u64::try_from(apart).unwrap_or(0)
}

/// Assesses one cycle's inputs (see [`judge`]).
pub fn assess(inputs: &ClockInputs, ledger: &ClockLedger) -> ClockVerdict {
    judge(inputs, ledger).verdict
}

/// Judges one cycle's inputs. Trusted sources in order of preference: the
/// kernel (the agent's own clock is right), the router's NTP client, the
/// central server's `Date` header. While they agree within
/// [`DISAGREE_SECS`] the first is used; when they do not, the earliest
/// (a voucher then expires late, never early).
pub fn judge(inputs: &ClockInputs, ledger: &ClockLedger) -> Judgement {
    let wall = inputs.wall;
    let readings = Readings {
        kernel: (inputs.kernel_synced == Some(true)).then_some(wall),
        router_ntp: inputs
            .router
            .filter(|r| r.ntp_synced == Some(true))
            .map(|r| r.time),
        central: inputs.central.map(|c| c.time),
    };
    let point = |source, t: Timestamp| Reading {
        source,
        lo: t,
        hi: t,
    };
    let trusted: Vec<Reading> = [
        readings.kernel.map(|t| point(ClockSource::Kernel, t)),
        readings
            .router_ntp
            .map(|t| point(ClockSource::RouterNtp, t)),
        inputs.central.map(|c| Reading {
            source: ClockSource::Central,
            lo: c.time,
            hi: c
                .time
                .plus_secs(i64::try_from(c.error_secs).unwrap_or(i64::MAX)),
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let spread_secs = trusted
        .iter()
        .enumerate()
        .flat_map(|(i, a)| trusted[i + 1..].iter().map(move |b| gap(a, b)))
        .max();
    let disagree = spread_secs.is_some_and(|s| s > DISAGREE_SECS);
    // On a tie the earlier in preference order wins (`min_by_key` keeps
    // the first).
    let chosen = if disagree {
        trusted.iter().min_by_key(|r| r.lo)
    } else {
        trusted.first()
    };
    let (trusted, source, best_now) = match chosen {
        Some(r) => (true, r.source, r.lo),
        // A 1970 boot is behind the floor; a stale fake-hwclock may be too.
        None => match ledger.floor_at(inputs.mono_secs) {
            Some(floor) if floor > wall => (false, ClockSource::None, floor),
            _ => (false, ClockSource::None, wall),
        },
    };
    // The skew compares the agent's clock with another clock: for the
    // kernel, the router's or central's; otherwise the one in use.
    let reference = match source {
        ClockSource::Kernel => readings.router_ntp.or(readings.central),
        ClockSource::RouterNtp | ClockSource::Central => Some(best_now),
        ClockSource::None => None,
    };
    Judgement {
        verdict: ClockVerdict {
            trusted,
            source,
            skew_secs: reference.map(|r| wall.secs_since(r)),
            best_now,
            mono_secs: inputs.mono_secs,
        },
        readings,
        spread_secs,
    }
}

/// A change of disagreement episode, for the log and the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeChange {
    /// The sources disagree and did not before: log and alert.
    Began,
    /// They agree again (within [`AGREE_SECS`]).
    Ended,
}

/// Whether a disagreement episode is open after this cycle (`open`: before
/// it), and what changed. One episode, one alert: it stays open until the
/// sources agree within [`AGREE_SECS`]; a cycle with fewer than two
/// trusted sources changes nothing (a router whose NTP drops out for a
/// while is not a new episode when it comes back).
pub fn episode(open: bool, j: &Judgement) -> (bool, Option<EpisodeChange>) {
    match (open, j.spread_secs) {
        (false, Some(s)) if s > DISAGREE_SECS => (true, Some(EpisodeChange::Began)),
        (true, Some(s)) if s <= AGREE_SECS => (false, Some(EpisodeChange::Ended)),
        _ => (open, None),
    }
}

/// The ledger after this cycle, the `clock` event if the verdict changed,
/// and the time facts for the voucher logic.
pub fn advance(prev: &ClockLedger, v: &ClockVerdict) -> (ClockLedger, Option<EventKind>, ClockNow) {
    let elapsed = prev.elapsed_at(v.mono_secs);
    let mut next = *prev;
    let restarted = prev.started && v.mono_secs < prev.mono_secs;
    let due = elapsed.saturating_sub(prev.elapsed_secs) >= CHECKPOINT_SECS;
    let newly_trusted = v.trusted && prev.trusted_at.is_none();
    // Checkpoints are written to the state file: only every few minutes,
    // but at once when the checkpoint would otherwise be misread (first
    // cycle, monotonic clock restarted) or the first trusted time arrives.
    if !prev.started || restarted || due || newly_trusted {
        next.started = true;
        next.elapsed_secs = elapsed;
        next.mono_secs = v.mono_secs;
        if v.trusted {
            next.trusted_at = Some((v.best_now, elapsed));
        }
    }
    let changed = match prev.reported {
        None => true,
        Some((trusted, source, skew)) => {
            trusted != v.trusted
                || source != v.source
                || match (skew, v.skew_secs) {
                    (Some(a), Some(b)) => a.saturating_sub(b).unsigned_abs() >= SKEW_REPORT_SECS,
                    (None, None) => false,
                    _ => true,
                }
        }
    };
    let event = changed.then(|| {
        next.reported = Some((v.trusted, v.source, v.skew_secs));
        EventKind::Clock {
            trusted: v.trusted,
            source: v.source,
            skew_secs: v.skew_secs,
        }
    });
    let now = ClockNow {
        trusted: v.trusted,
        elapsed: Some(elapsed),
        floor: next.floor_at(v.mono_secs),
    };
    (next, event, now)
}
