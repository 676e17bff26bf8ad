//! The user API's channel into the sync task: a local operator intent
//! with its event and a reply. A leaf that `http` (the sender) and
//! `agent::sync` (the receiver) both use.

use crate::event::{EventKind, Service};
use crate::name::Name;
use crate::reconcile::IntentAction;
use crate::store::StoreError;

/// A local operator intent (user API), handed to the sync task: it is
/// committed with its event in one transaction and held as an override
/// until the desired state shows it (see [`crate::reconcile::intent`]).
pub struct IntentMsg {
    pub service: Service,
    pub user: Name,
    pub action: IntentAction,
    pub event: EventKind,
    pub reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}
