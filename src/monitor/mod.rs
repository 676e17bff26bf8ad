//! Pure monitoring logic: snapshots and `now` in, events and router actions out.
//!
//! - snapshot.rs: typed rows parsed from the four lists the agent reads each
//!   cycle, and the `.proplist`s it asks for.
//! - state.rs: what the agent remembers between cycles (and across restarts,
//!   via redb): known sessions, voucher progress, users already flagged.
//! - sessions.rs: login/logout/usage transitions between two snapshots.
//! - vouchers.rs: voucher activation and expiry, as router actions.
//! - step.rs: one cycle, tying the above together.
//!
//! Nothing here does I/O; [`crate::agent`] reads the router, calls
//! [`step`], commits the result, then performs the actions.

mod sessions;
mod snapshot;
pub mod state;
mod step;
#[cfg(test)]
mod tests;
mod vouchers;

pub use snapshot::{
    HOTSPOT_ACTIVE_PROPS, HOTSPOT_USER_PROPS, PPP_ACTIVE_PROPS, PPP_SECRET_PROPS, SessionRow,
    Snapshot, UserRow, ValueWarning,
};
pub use state::{MonitorState, TrackedSession, VoucherProgress};
pub use step::{Action, MonitorConfig, StepOutput, step};
