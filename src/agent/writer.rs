//! The action writer: committed router actions performed in order.

use std::collections::HashSet;

use super::listen::Listens;
use super::{Agent, commands};
use crate::client::ClientError;
use crate::monitor::Action;
use crate::name::Name;

impl Agent {
    /// Performs committed actions. Actions of one user are ordered
    /// (disable, kick, remove); after one fails, the rest of that user's
    /// wait for the next cycle's re-plan.
    ///
    /// User-list rows that arrive meanwhile are taken as they come (see
    /// [`Listens::try_next_user`]) when `listens` is given: each comment
    /// written comes back as one, and a first poll can write thousands.
    pub(super) async fn act(&mut self, actions: &[Action], mut listens: Option<&mut Listens>) {
        let mut failed: HashSet<Name> = HashSet::new();
        let mut taken = 0usize;
        for action in actions {
            if let Some(listens) = listens.as_deref_mut() {
                while let Some(heard) = listens.try_next_user() {
                    // A user list's rows never carry a session change.
                    let _ = self.on_heard_quietly(heard);
                    taken += 1;
                }
            }
            if failed.contains(action.user()) {
                continue;
            }
            match self.router.execute(commands::command(action)).await {
                Ok(_) => log::info!("router: {} for {} done", action.describe(), action.user()),
                // Already gone (kicked session ended, user removed by hand):
                // the next cycle sees the result either way.
                Err(ClientError::Trap {
                    category, message, ..
                }) if is_missing_item(category, &message) => log::debug!(
                    "router: {} for {}: already gone",
                    action.describe(),
                    action.user()
                ),
                Err(e) => {
                    log::warn!(
                        "router: {} for {} failed, retrying next cycle: {e}",
                        action.describe(),
                        action.user()
                    );
                    failed.insert(action.user().clone());
                }
            }
        }
        if taken > 0 {
            log::debug!("{taken} user list rows taken while writing to the router");
        }
    }
}

/// RouterOS answers an action on an item that no longer exists with a trap
/// of category 0 ("missing item or command"); older versions send no
/// category, and only then is the message looked at.
fn is_missing_item(category: Option<u8>, message: &str) -> bool {
    match category {
        Some(c) => c == 0,
        None => message == "no such item",
    }
}
