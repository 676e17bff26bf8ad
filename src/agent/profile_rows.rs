//! `/ip/hotspot/user/profile` and `/ppp/profile` rows for reconciliation.

use crate::name::Name;
use crate::proto::Attrs;
use crate::reconcile::ProfileRow;

pub const HOTSPOT_PROFILE_PROPS: &[&str] =
    &["name", "rate-limit", "session-timeout", "shared-users"];
pub const PPP_PROFILE_PROPS: &[&str] = &["name", "rate-limit", "session-timeout"];

/// Accumulates profile rows; a row without a name is skipped.
#[derive(Default)]
pub struct ProfileRows {
    pub rows: Vec<ProfileRow>,
}

impl ProfileRows {
    pub fn push(&mut self, a: &Attrs) {
        let Some(name) = a.get("name").filter(|n| !n.is_empty()) else {
            return;
        };
        let text = |k| Name::new(a.get(k).unwrap_or_default());
        self.rows.push(ProfileRow {
            name: Name::new(name),
            rate_limit: text("rate-limit"),
            session_timeout: text("session-timeout"),
            shared_users: a.get("shared-users").map(Name::new),
        });
    }
}
