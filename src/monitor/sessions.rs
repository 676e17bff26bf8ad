//! Session transitions between two consecutive snapshots.

use std::collections::BTreeSet;

use super::sorted_map::SortedMap;
use super::state::{Counters, SessionKey};
use super::{SessionRow, TrackedSession};
use crate::clock::Timestamp;
use crate::event::{EventKind, LogoutReason, Service, SessionRef};
use crate::name::Name;

pub(super) type Sessions = SortedMap<SessionKey, TrackedSession>;

/// Inputs beyond the two session lists.
pub(super) struct Context<'a> {
    pub now: Timestamp,
    pub usage_secs: u64,
    /// The router's uptime went backwards since the last cycle.
    pub rebooted: bool,
    /// Users whose voucher the agent expired: their sessions were kicked.
    pub kicked_users: &'a BTreeSet<Name>,
    /// Profile of each managed user, for login events.
    pub profile_of: &'a dyn Fn(Service, &Name) -> Name,
    /// This state file has not completed a cycle: every session found is
    /// one that was already online when it started.
    pub first_cycle: bool,
}

/// Compares the known sessions with the active rows of managed users.
///
/// Logouts come before logins in the output, so a re-login between two
/// polls reads as a logout followed by a login.
pub(super) fn diff(
    prev: &Sessions,
    active: &[&SessionRow],
    ctx: &Context<'_>,
) -> (Sessions, Vec<EventKind>) {
    // Pushed in the active lists' order (each by `.id`, as RouterOS
    // lists them), so building the map is one pass.
    let mut next = Vec::with_capacity(active.len());
    let mut logouts = Vec::new();
    let mut logins = Vec::new();
    let mut usage = Vec::new();
    // Users with a new session this cycle: an old session of theirs that
    // vanished ended by re-login rather than by a plain logout.
    let mut relogged: BTreeSet<(Service, &Name)> = BTreeSet::new();

    for row in active {
        let key = (row.service, row.id);
        match prev.get(&key) {
            // Nothing survives a reboot, whatever its `.id` and uptime say.
            Some(known) if !ctx.rebooted && same_session(known, row) => {
                let mut t = known.clone();
                let c = &mut t.counters;
                c.uptime_secs = row.uptime_secs.unwrap_or(c.uptime_secs);
                c.bytes_in = row.bytes_in.or(c.bytes_in);
                c.bytes_out = row.bytes_out.or(c.bytes_out);
                if ctx.now.secs_since(t.last_report) >= ctx.usage_secs as i64 {
                    t.last_report = ctx.now;
                    usage.push(EventKind::Usage {
                        session: session_ref(&t),
                        bytes_in: t.counters.bytes_in,
                        bytes_out: t.counters.bytes_out,
                        uptime_secs: t.counters.uptime_secs,
                        unseen: false,
                    });
                }
                next.push((key, t));
            }
            replaced => {
                // An `.id` reused by a different session (RouterOS restarts
                // numbering after a reboot) ends the old one first.
                if let Some(old) = replaced {
                    let reason = if ctx.rebooted {
                        LogoutReason::RouterReboot
                    } else {
                        LogoutReason::Relogin
                    };
                    logouts.push(logout(old, reason));
                }
                relogged.insert((row.service, &row.user));
                let profile = (ctx.profile_of)(row.service, &row.user);
                let t = track(row, profile.clone(), ctx.now);
                logins.push(EventKind::Login {
                    session: session_ref(&t),
                    address: row.address,
                    mac: row.mac,
                    caller_id: row.caller_id.clone(),
                    login_by: row.login_by.clone(),
                    profile,
                    seen_at_start: ctx.first_cycle,
                });
                next.push((key, t));
            }
        }
    }
    let next: Sessions = next.into_iter().collect();

    // Every active row has its key in `next`.
    for (key, old) in prev {
        if next.contains_key(key) {
            continue;
        }
        let reason = if ctx.rebooted {
            LogoutReason::RouterReboot
        } else if old.service == Service::Hotspot && ctx.kicked_users.contains(&old.user) {
            LogoutReason::Kicked
        } else if relogged.contains(&(old.service, &old.user)) {
            LogoutReason::Relogin
        } else {
            LogoutReason::Gone
        };
        logouts.push(logout(old, reason));
    }

    let mut events = logouts;
    events.extend(logins);
    events.extend(usage);
    (next, events)
}

/// Same user, same PPP session id, and the uptime did not go backwards.
pub(super) fn same_session(known: &TrackedSession, row: &SessionRow) -> bool {
    known.user == row.user
        && known.session_id == row.session_id
        && row
            .uptime_secs
            .is_none_or(|u| u >= known.counters.uptime_secs)
}

pub(super) fn track(row: &SessionRow, profile: Name, now: Timestamp) -> TrackedSession {
    TrackedSession {
        service: row.service,
        user: row.user.clone(),
        active_id: row.id,
        session_id: row.session_id.clone(),
        address: row.address,
        mac: row.mac,
        caller_id: row.caller_id.clone(),
        profile,
        counters: Counters {
            uptime_secs: row.uptime_secs.unwrap_or(0),
            bytes_in: row.bytes_in,
            bytes_out: row.bytes_out,
        },
        last_report: now,
    }
}

pub(super) fn session_ref(t: &TrackedSession) -> SessionRef {
    SessionRef {
        service: t.service,
        user: t.user.clone(),
        active_id: t.active_id,
        session_id: t.session_id.clone(),
    }
}

pub(super) fn logout(t: &TrackedSession, reason: LogoutReason) -> EventKind {
    EventKind::Logout {
        session: session_ref(t),
        reason,
        bytes_in: t.counters.bytes_in,
        bytes_out: t.counters.bytes_out,
        uptime_secs: t.counters.uptime_secs,
    }
}
