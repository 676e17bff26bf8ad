//! Sessions the agent never saw: a hotspot user's cumulative `uptime`,
//! `bytes-in` and `bytes-out` grow when one of its sessions ends. Growth
//! beyond what the seen sessions that ended account for is usage of
//! sessions that began and ended unseen (a router too slow to answer, an
//! agent down), reported as a `usage` event marked `unseen`.
//!
//! The rule, per managed hotspot user with counters:
//! - seen sessions that end add a credit: their last seen counters plus,
//!   for the uptime, the time since they were last seen (an upper bound,
//!   so a seen session is never mistaken for an unseen one);
//! - the growth is only judged at a poll where the user has no session
//!   open, since the counters move at logout and a session ending between
//!   the reads of the user list and of the active list would otherwise
//!   look unseen;
//! - growth minus credit with uptime left over is an unseen session; credit
//!   left over is kept for one poll only (a session that ended between the
//!   two reads shows in the counters at the next poll);
//! - counters that shrink (`reset-counters`) or a new `.id` under the same
//!   name (user re-created) start a new baseline without an event.

use rustc_hash::FxHashSet as HashSet;
use std::collections::BTreeMap;

use super::name_index::NameIndex;
use super::sorted_map::SortedMap;

use super::{Totals, UsageBaseline, UserRow};
use crate::clock::Timestamp;
use crate::event::{EventKind, Service, SessionRef};
use crate::name::{Id, Name};

/// Whether [`account`] would return `prev` unchanged and no event, so the
/// step can skip it: the users are the rows the last step accounted
/// (`users_same`: every one has its baseline, with its `.id`, and no
/// baseline is left of a user gone), their counters were not read, and no
/// seen session ended in this step (its credit would be added). That is
/// most polls at a large site; the walk over every user it spares was a
/// tenth of a quiet poll's CPU at 10,000 users.
pub(super) fn is_quiet(
    users_same: bool,
    counters_read: bool,
    ended: &BTreeMap<Name, Totals>,
) -> bool {
    users_same && !counters_read && ended.is_empty()
}

/// Accounts for one poll. `users` are the managed hotspot users; `online`
/// the users with a session open after this poll; `ended` the credit of
/// seen sessions that ended in this poll's step (already included in
/// `prev`'s credit for sessions the listen path ended). `counters_read`:
/// the users' counters were read this poll; when false (the agent's kept
/// copy) growth is not judged and credit accumulates until they are.
pub(super) fn account(
    prev: SortedMap<Name, UsageBaseline>,
    users: &[&UserRow],
    online: &HashSet<&Name>,
    ended: &BTreeMap<Name, Totals>,
    counters_read: bool,
) -> (SortedMap<Name, UsageBaseline>, Vec<EventKind>) {
    // Lookups in `prev` through a hash index of its positions (6 to 12
    // bytes a user, for this call only), and the result as `prev` patched
    // with what changed: in a quiet poll no baseline changes.
    let len = u32::try_from(prev.len())
        .unwrap_or(u32::MAX - 1)
        .min(u32::MAX - 1);
    let name_of = |i: u32| prev.key_at(i as usize).as_bytes();
    let index = NameIndex::build(0..len, name_of);
    let mut changed: Vec<(Name, UsageBaseline)> = Vec::new();
    // Users that keep their entry in `prev` (same name): when that is all
    // of them, nothing needs removing.
    let mut kept = 0;
    let mut events = Vec::new();
    for user in users {
        let Some(now_totals) = user.totals else {
            continue;
        };
        let base = index
            .get(user.name.as_bytes(), name_of)
            .map(|i| prev.value_at(i as usize));
        kept += usize::from(base.is_some());
        let fresh = UsageBaseline {
            id: user.id,
            totals: now_totals,
            credit: Totals::default(),
        };
        let mut set = |b: UsageBaseline| {
            if base != Some(&b) {
                changed.push((user.name.clone(), b));
            }
        };
        let just_ended = ended.get(&user.name).copied().unwrap_or_default();
        let base = match base {
            Some(b) if b.id == user.id => b,
            // First sight, or re-created: nothing to compare with.
            _ => {
                set(fresh);
                continue;
            }
        };
        let credit = base.credit.saturating_add(&just_ended);
        if online.contains(&user.name) || !counters_read {
            set(UsageBaseline {
                credit,
                ..base.clone()
            });
            continue;
        }
        let Some(growth) = now_totals.growth_since(&base.totals) else {
            // reset-counters: a new baseline, not negative usage.
            set(fresh);
            continue;
        };
        let unexplained = growth.saturating_sub(&credit);
        if unexplained.uptime_secs > 0 {
            events.push(unseen_usage(&user.name, unexplained));
        }
        let left = credit.saturating_sub(&growth).min(&just_ended);
        set(UsageBaseline {
            id: user.id,
            totals: now_totals,
            credit: left,
        });
    }
    drop(index);
    // Patched in place when nothing else shares it (see `insert_all`).
    let mut next = prev;
    if kept < next.len() {
        // Users gone from the router (or no longer managed, or without
        // counters) leave no baseline behind.
        let present: HashSet<&Name> = users
            .iter()
            .filter(|u| u.totals.is_some())
            .map(|u| &u.name)
            .collect();
        next.retain(|name, _| present.contains(name));
    }
    next.insert_all(changed);
    next.shrink();
    (next, events)
}

/// The credit a seen session leaves when it ends: its last seen counters,
/// the uptime stretched by the time since it was last seen.
pub(super) fn credit(
    uptime_secs: u64,
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    last_seen: Timestamp,
    now: Timestamp,
) -> Totals {
    let gap = u64::try_from(now.secs_since(last_seen)).unwrap_or(0);
    Totals {
        uptime_secs: uptime_secs.saturating_add(gap),
        bytes_in: bytes_in.unwrap_or(0),
        bytes_out: bytes_out.unwrap_or(0),
    }
}

fn unseen_usage(user: &Name, t: Totals) -> EventKind {
    EventKind::Usage {
        session: SessionRef {
            service: Service::Hotspot,
            user: user.clone(),
            active_id: Id(0),
            session_id: Name::empty(),
        },
        bytes_in: Some(t.bytes_in),
        bytes_out: Some(t.bytes_out),
        uptime_secs: t.uptime_secs,
        unseen: true,
    }
}
