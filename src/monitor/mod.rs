//! Pure monitoring logic: typed rows and `now` in, events and router
//! actions out.
//!
//! - snapshot.rs: the typed rows of the four lists read each cycle.
//! - state.rs: what the agent remembers between cycles (and across restarts,
//!   via redb): known sessions, voucher progress, users already flagged.
//! - sessions.rs: login/logout/usage transitions between two snapshots.
//! - vouchers.rs: voucher activation and expiry, as router actions.
//! - action.rs: the router changes the monitor asks for.
//! - glob.rs: the profile pattern matcher.
//! - clock_trust.rs: whether the wall clock is right (the earliest time
//!   when trusted sources disagree), and elapsed time that survives
//!   restarts (voucher expiry on an untrusted clock).
//! - step.rs: one cycle, tying the above together.
//! - listen.rs: one change reported by `listen` between polls, through
//!   the same session and voucher logic, so the two paths agree.
//! - usage.rs: sessions never seen, from users' cumulative counters.
//! - sorted_map.rs: the state's large maps, as one sorted vector each.
//! - name_index.rs: row positions by name, for the step's lookups.
//!
//! Nothing here does I/O or sees wire words; [`crate::agent`] reads the
//! router into typed rows, calls [`step`], commits the result, then turns
//! the actions into API commands.

mod action;
pub mod clock_trust;
mod glob;
mod listen;
mod managed;
mod name_index;
mod sessions;
pub use sessions::kept_rows;
mod snapshot;
mod sorted_map;
pub mod state;
mod step;
#[cfg(test)]
mod tests;
mod usage;
mod vouchers;

pub use action::{Action, CommentText};
pub use clock_trust::{
    CentralClock, ClockInputs, ClockLedger, ClockNow, ClockVerdict, Judgement, RouterClock,
};
pub use glob::glob_match;
pub use listen::{ListenChange, ManagedUsers, UserIndex, apply_listen};
pub use managed::{is_managed, ours_by_comment};
pub use snapshot::{SessionRow, Snapshot, Totals, UserRow};
pub use sorted_map::SortedMap;
pub use state::{
    Counters, MonitorState, Provisional, SessionKey, TrackedSession, UsageBaseline, VoucherProgress,
};
pub use step::{MonitorConfig, StepChanges, StepOutput, step, step_in_place};
