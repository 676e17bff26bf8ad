//! Full sync: the central side's desired state applied to the router.
//!
//! - desired.rs: the `site_desired_state` JSON, typed (names as bytes).
//! - intent.rs: local operator intents (user API, `create-batch`) held
//!   as overrides of the desired state until central shows them.
//! - state.rs: what is remembered between runs (reported-once sets,
//!   isolated secrets' previous profiles, expired vouchers).
//! - plan.rs: router lists + desired state + remembered state in, actions
//!   and events out. Pure; the driver is [`crate::agent::sync`].

pub mod desired;
pub mod intent;
pub mod plan;
pub mod state;
#[cfg(test)]
mod tests;

pub use desired::{
    DesiredError, DesiredState, DesiredSubscription, DesiredVoucher, Password, SubscriptionStatus,
    VoucherStatus,
};
pub use intent::{Intent, IntentAction, Intents};
pub use plan::{
    Plan, ProfileRow, ReconcileConfig, RouterLists, SuspendMode, SyncAction, creation_outcome,
    plan, restored_event,
};
pub use state::{Isolation, ProfileSettings, ReconcileState};
