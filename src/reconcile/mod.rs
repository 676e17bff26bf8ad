//! Full sync: the central side's desired state applied to the router.
//!
//! - desired.rs: the `site_desired_state` JSON, typed (names as bytes).
//! - state.rs: what is remembered between runs (reported-once sets,
//!   isolated secrets' previous profiles, expired vouchers).
//! - plan.rs: router lists + desired state + remembered state in, actions
//!   and events out. Pure; the driver is [`crate::agent::sync`].

pub mod desired;
pub mod plan;
pub mod state;
#[cfg(test)]
mod tests;

pub use desired::{
    DesiredError, DesiredState, DesiredSubscription, DesiredVoucher, Password, SubscriptionStatus,
    VoucherStatus,
};
pub use plan::{
    Plan, ProfileRow, ReconcileConfig, RouterLists, SuspendMode, SyncAction, creation_outcome, plan,
};
pub use state::{Isolation, ProfileSettings, ReconcileState};
