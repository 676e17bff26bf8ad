//! What reconciliation remembers between runs, persisted in redb (postcard)
//! by the sync driver in the same transaction as the events it decided.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::event::Service;
use crate::name::Name;

/// A profile's reported settings; a change is reported again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSettings {
    pub rate_limit: Name,
    pub session_timeout: Name,
    pub shared_users: Option<Name>,
}

/// A secret moved to the isolation profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// The profile to put back on restore when the desired state names
    /// none (also written into the comment, see [`fn@super::plan`]).
    pub previous_profile: Name,
    pub since: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileState {
    /// Profiles as last reported, by service and name.
    pub profiles: BTreeMap<(Service, Name), ProfileSettings>,
    /// Users reported as `user_adopted` (and still not desired).
    pub adopted: BTreeSet<(Service, Name)>,
    /// Vouchers that expired on this router: never recreated, even when a
    /// desired state fetched before the expiry still lists them.
    pub expired: BTreeSet<Name>,
    /// Subscriptions reported as `suspended` (until restored).
    pub suspended: BTreeSet<Name>,
    /// Secrets on the isolation profile, with the profile they had.
    pub isolated: BTreeMap<Name, Isolation>,
    /// PPP sessions of these users that started before the time given are
    /// kicked (they run with the profile from before a suspend or restore).
    pub kick_before: BTreeMap<Name, Timestamp>,
    /// Creations the router refused, with the reason last reported.
    pub create_failed: BTreeMap<(Service, Name), String>,
}
