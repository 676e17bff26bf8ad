//! Changes the monitor asks the driver to make on the router. Always by
//! `.id`, taken from the lists just read: no extra round trip to look an
//! id up. The driver turns them into API commands
//! ([`crate::agent::commands`]).

use std::fmt;

use crate::clock::Timestamp;
use crate::comment::VoucherView;
use crate::name::{Id, Mac, Name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a voucher's activated comment.
    SetComment {
        id: Id,
        user: Name,
        comment: CommentText,
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

/// The comment a [`Action::SetComment`] writes.
///
/// An activation keeps its parts (the user's comment as read, shared, and
/// the times) and the bytes are made when the command is encoded: a first
/// poll that activates 5,000 vouchers would otherwise hold 5,000 new
/// comments, most of a megabyte, from the plan until they are written.
#[derive(Clone)]
pub enum CommentText {
    Bytes(Name),
    Activation {
        /// The voucher's comment as read from the router.
        base: Name,
        first_login_at: Timestamp,
        expires_at: Timestamp,
        /// MAC lock decided at activation, recorded in the comment.
        mac: Option<Mac>,
    },
}

impl CommentText {
    /// The comment's bytes. An activation's base is a voucher comment (the
    /// plan parsed it); were it not, it is written back unchanged.
    pub fn render(&self) -> Vec<u8> {
        match self {
            CommentText::Bytes(b) => b.as_bytes().to_vec(),
            CommentText::Activation {
                base,
                first_login_at,
                expires_at,
                mac,
            } => {
                let Some(meta) = VoucherView::parse(base.as_bytes()) else {
                    return base.as_bytes().to_vec();
                };
                let mut comment = meta
                    .to_system()
                    .with_activation(*first_login_at, *expires_at);
                if let Some(mac) = mac {
                    comment = comment.with_locked_mac(&mac.to_string());
                }
                comment.to_bytes()
            }
        }
    }
}

/// Equal when they write the same bytes, however they are kept.
impl PartialEq for CommentText {
    fn eq(&self, other: &CommentText) -> bool {
        self.render() == other.render()
    }
}

impl Eq for CommentText {}

impl fmt::Debug for CommentText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Name::new(self.render()), f)
    }
}
