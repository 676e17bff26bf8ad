//! Changes the monitor asks the driver to make on the router. Always by
//! `.id`, taken from the lists just read: no extra round trip to look an
//! id up. The driver turns them into API commands
//! ([`crate::agent::commands`]).

use crate::name::{Id, Mac, Name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a voucher's activated comment.
    SetComment {
        id: Id,
        user: Name,
        comment: Name,
    },
    DisableUser {
        id: Id,
        user: Name,
    },
    RemoveUser {
        id: Id,
        user: Name,
    },
    /// MAC lock: bind a voucher to the first MAC seen (`mac-address`).
    LockMac {
        id: Id,
        user: Name,
        mac: Mac,
    },
    /// End a hotspot session.
    Kick {
        active_id: Id,
        user: Name,
    },
}

impl Action {
    pub fn user(&self) -> &Name {
        match self {
            Action::SetComment { user, .. }
            | Action::DisableUser { user, .. }
            | Action::RemoveUser { user, .. }
            | Action::LockMac { user, .. }
            | Action::Kick { user, .. } => user,
        }
    }

    /// For log lines.
    pub fn describe(&self) -> &'static str {
        match self {
            Action::SetComment { .. } => "write activation comment",
            Action::DisableUser { .. } => "disable expired voucher",
            Action::RemoveUser { .. } => "remove expired voucher",
            Action::LockMac { .. } => "lock voucher to MAC",
            Action::Kick { .. } => "kick session",
        }
    }
}
