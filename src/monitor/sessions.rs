//! Session transitions between two consecutive snapshots.

use std::collections::{BTreeMap, BTreeSet};

use super::sorted_map::SortedMap;
use super::state::{Counters, SessionKey};
use super::{SessionRow, Totals, TrackedSession};
use crate::clock::Timestamp;
use crate::event::{EventKind, LogoutReason, Service, SessionRef};
use crate::name::Name;

pub(super) type Sessions = SortedMap<SessionKey, TrackedSession>;

/// Inputs beyond the two session lists.
pub(super) struct Context<'a> {
    pub now: Timestamp,
    /// Sessions whose last report is at least this old report usage;
    /// `None`: the counters were not read, nobody reports.
    pub usage_after_secs: Option<u64>,
    /// The router's uptime went backwards since the last cycle.
    pub rebooted: bool,
    /// Users whose voucher the agent expired: their sessions were kicked.
    pub kicked_users: &'a BTreeSet<Name>,
    /// Sessions the agent ended itself (sync, user API).
    pub kicked: &'a BTreeSet<SessionKey>,
    /// Profile of each managed user, for login events.
    pub profile_of: &'a dyn Fn(Service, &Name) -> Name,
    /// This state file has not completed a cycle: every session found is
    /// one that was already online when it started.
    pub first_cycle: bool,
    /// When the last poll's lists were read (see `MonitorState::last_poll`).
    pub last_poll: Option<Timestamp>,
}

/// What [`update`] did besides changing the map.
#[derive(Debug, Default)]
pub(super) struct Update {
    /// Logouts, then logins, then usage: a re-login between two polls
    /// reads as a logout followed by a login.
    pub events: Vec<EventKind>,
    /// Sessions whose stored record changed (new, replaced, or a usage
    /// event moved `last_report`); counters alone do not count.
    pub put: Vec<SessionKey>,
    /// Sessions that ended.
    pub del: Vec<SessionKey>,
    /// Hotspot users whose seen sessions ended, with the credit they leave
    /// against the growth of the user's cumulative counters.
    pub ended: BTreeMap<Name, Totals>,
}

/// Brings the known sessions in line with the active rows of managed users,
/// in place: when the map is not shared (the agent's own state) no copy of
/// its thousands of entries is made, which at 6,000 sessions is most of a
/// megabyte a poll. A shared map is copied first (copy on write).
pub(super) fn update(sessions: &mut Sessions, active: &[&SessionRow], ctx: &Context<'_>) -> Update {
    let mut out = Update::default();
    // At least this many rows are new sessions: all of them at a first
    // poll, where vectors grown by doubling were a megabyte of the peak.
    let fresh = active.len().saturating_sub(sessions.len());
    let mut logins = Vec::with_capacity(fresh);
    let mut usage = Vec::new();
    // Users with a new session this cycle: an old session of theirs that
    // vanished ended by re-login rather than by a plain logout.
    let mut relogged: BTreeSet<(Service, &Name)> = BTreeSet::new();
    // Which known sessions have an active row (by position in the map).
    let mut seen = vec![false; sessions.len()];
    let mut added = Vec::with_capacity(fresh);

    for row in active {
        let key = (row.service, row.id);
        let Some(at) = sessions.position(&key) else {
            relogged.insert((row.service, &row.user));
            let (t, event) = start(row, ctx);
            logins.push(event);
            added.push((key, t));
            continue;
        };
        // A row twice (never from a real router): the first one counts.
        if std::mem::replace(&mut seen[at], true) {
            continue;
        }
        let known = sessions.value_at(at);
        // Nothing survives a reboot, whatever its `.id` and uptime say.
        if !ctx.rebooted && same_session(known, row) {
            let age = ctx.now.secs_since(known.last_report);
            let report = ctx
                .usage_after_secs
                .is_some_and(|after| age >= i64::try_from(after).unwrap_or(i64::MAX));
            let t = sessions.value_at_mut(at);
            let c = &mut t.counters;
            c.uptime_secs = row.uptime_secs.unwrap_or(c.uptime_secs);
            c.bytes_in = row.bytes_in.or(c.bytes_in);
            c.bytes_out = row.bytes_out.or(c.bytes_out);
            if report {
                t.last_report = ctx.now;
                usage.push(EventKind::Usage {
                    session: session_ref(t),
                    bytes_in: t.counters.bytes_in,
                    bytes_out: t.counters.bytes_out,
                    uptime_secs: t.counters.uptime_secs,
                    unseen: false,
                });
                out.put.push(key);
            }
            continue;
        }
        // An `.id` reused by a different session (RouterOS restarts
        // numbering after a reboot) ends the old one first.
        let reason = if ctx.rebooted {
            LogoutReason::RouterReboot
        } else {
            LogoutReason::Relogin
        };
        end(known, reason, ctx, &mut out);
        relogged.insert((row.service, &row.user));
        let (t, event) = start(row, ctx);
        logins.push(event);
        *sessions.value_at_mut(at) = t;
        out.put.push(key);
    }

    // Sessions without an active row ended, in key order.
    for (at, old) in sessions.values().enumerate() {
        if seen[at] {
            continue;
        }
        let reason = if ctx.rebooted {
            LogoutReason::RouterReboot
        } else if (old.service == Service::Hotspot && ctx.kicked_users.contains(&old.user))
            || ctx.kicked.contains(&(old.service, old.active_id))
        {
            LogoutReason::Kicked
        } else if relogged.contains(&(old.service, &old.user)) {
            LogoutReason::Relogin
        } else {
            LogoutReason::Gone
        };
        end(old, reason, ctx, &mut out);
        out.del.push((old.service, old.active_id));
    }
    // `del` is in key order, as the map.
    if !out.del.is_empty() {
        let del = &out.del;
        sessions.retain(|k, _| del.binary_search(k).is_err());
    }
    out.put.extend(added.iter().map(|(k, _)| *k));
    // Few new sessions go in in place; many (a first poll) are merged.
    sessions.insert_all(added);
    // Two rows for one new `.id` (never from a real router) are one put.
    out.put.sort_unstable();
    out.put.dedup();

    // Logins moved, not copied: a first poll has thousands, and its
    // logouts (at the front) are none.
    let logouts = std::mem::replace(&mut out.events, logins);
    out.events.splice(0..0, logouts);
    out.events.extend(usage);
    out
}

/// The logout of `t`, and its credit when it is a hotspot session.
fn end(t: &TrackedSession, reason: LogoutReason, ctx: &Context<'_>, out: &mut Update) {
    out.events.push(logout(t, reason));
    if t.service != Service::Hotspot {
        return;
    }
    // Counters were last seen at the last poll, or at the login or usage
    // event if later (a login seen by listen).
    let last_seen = ctx.last_poll.max(Some(t.last_report)).unwrap_or(ctx.now);
    let c = super::usage::credit(
        t.counters.uptime_secs,
        t.counters.bytes_in,
        t.counters.bytes_out,
        last_seen,
        ctx.now,
    );
    let entry = out.ended.entry(t.user.clone()).or_default();
    *entry = entry.saturating_add(&c);
}

/// A session first seen: its record and its login event.
fn start(row: &SessionRow, ctx: &Context<'_>) -> (TrackedSession, EventKind) {
    let t = track(row, (ctx.profile_of)(row.service, &row.user), ctx.now);
    let login = EventKind::Login {
        session: session_ref(&t),
        address: row.address,
        mac: row.mac,
        caller_id: row.caller_id.clone(),
        login_by: row.login_by.clone(),
        profile: t.profile.clone(),
        seen_at_start: ctx.first_cycle,
    };
    (t, login)
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

/// The open sessions as active rows (hotspot, PPP), with the counters last
/// read: the agent's copy of the active lists, for a poll that read only
/// their counters (merged into these) or only counted them.
pub fn kept_rows(
    sessions: &SortedMap<SessionKey, TrackedSession>,
) -> (Vec<SessionRow>, Vec<SessionRow>) {
    let hotspot_count = sessions
        .values()
        .filter(|t| t.service == Service::Hotspot)
        .count();
    // Exact sizes: at 6,000 sessions a doubling vector leaves a quarter
    // of a megabyte unused at the poll's peak.
    let mut hotspot = Vec::with_capacity(hotspot_count);
    let mut ppp = Vec::with_capacity(sessions.len() - hotspot_count);
    for t in sessions.values() {
        let row = SessionRow {
            service: t.service,
            id: t.active_id,
            user: t.user.clone(),
            address: t.address,
            mac: t.mac,
            caller_id: t.caller_id.clone(),
            login_by: Name::empty(),
            session_id: t.session_id.clone(),
            uptime_secs: Some(t.counters.uptime_secs),
            bytes_in: t.counters.bytes_in,
            bytes_out: t.counters.bytes_out,
        };
        match t.service {
            Service::Hotspot => hotspot.push(row),
            Service::Pppoe => ppp.push(row),
        }
    }
    (hotspot, ppp)
}
