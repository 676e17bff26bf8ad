//! A user's password on its way to the router or the central side.
//!
//! Passwords travel in the desired state and in the events that tell the
//! central side what it needs to recreate a user (`user_adopted`,
//! `user_created`), and nowhere else: `Debug` never prints one, and an
//! event's log line masks it (see [`crate::event::EventRef::to_log_json`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::Name;

/// `None`: not known (the API user lacks the `sensitive` policy, or the
/// desired state has none).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Password(pub Option<Name>);

impl Password {
    pub fn known(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "***" } else { "None" })
    }
}
