//! One change reported by `/ip/hotspot/active/listen` or
//! `/ppp/active/listen`, applied between polls.
//!
//! It goes through the same pieces as the poll's [`step`](super::step)
//! (session tracking, logout reasons, voucher planning), so the two paths
//! agree whatever order they see a change in:
//! - a login seen by listen is tracked: the next poll finds the session
//!   and emits nothing new; a login the poll saw first makes the listen's
//!   row a no-op;
//! - a removal seen by listen ends the tracked session: the poll then does
//!   not see it and emits nothing; a removal the poll saw first leaves
//!   nothing for the listen's `.dead` row to end.
//!
//! Users come from the driver's copy of the user lists ([`ManagedUsers`]):
//! a user it does not know yet is unknown here too, and its session is
//! picked up by the next poll.

use rustc_hash::FxHashMap as HashMap;

use super::clock_trust::ClockNow;
use super::managed::is_managed;
use super::state::SessionKey;
use super::{
    MonitorConfig, MonitorState, SessionRow, Snapshot, StepOutput, UserRow, sessions, usage,
    vouchers,
};
use crate::clock::Timestamp;
use crate::event::{EventKind, LogoutReason, Service};
use crate::name::{Id, Name};

/// A `listen` row, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenChange {
    /// An entry added or changed: its properties.
    Upsert(SessionRow),
    /// `.dead=yes`: the entry with this `.id` is gone.
    /// `kicked`: the agent ended this session itself.
    Removed {
        service: Service,
        id: Id,
        kicked: bool,
    },
}

/// Where the listen path finds a session's user: the managed users
/// (hotspot users and PPP secrets whose profile matches its service's
/// pattern) as the driver knows them now. The driver answers from the
/// copy of the user lists it keeps anyway (so there is no second copy of
/// 10,000 users for this), the tests from a [`UserIndex`].
pub trait ManagedUsers {
    /// The managed user of this service with this name, if there is one.
    fn managed(&self, service: Service, name: &Name) -> Option<&UserRow>;
}

/// The managed users of a snapshot, by name: a plain [`ManagedUsers`]
/// for callers that keep no user lists of their own (tests).
#[derive(Debug, Clone, Default)]
pub struct UserIndex {
    users: HashMap<(Service, Name), UserRow>,
}

impl UserIndex {
    /// The users of `snap` that `cfg`'s patterns manage (the last row of
    /// a name wins, as in [`step`](super::step)).
    pub fn of(snap: &Snapshot, cfg: &MonitorConfig) -> UserIndex {
        let mut users = HashMap::default();
        for (service, rows) in [
            (Service::Hotspot, &snap.hotspot_users),
            (Service::Pppoe, &snap.ppp_secrets),
        ] {
            for u in rows.iter() {
                if is_managed(
                    service,
                    cfg.pattern(service),
                    u.profile.as_bytes(),
                    u.comment.as_bytes(),
                ) {
                    users.insert((service, u.name.clone()), u.clone());
                }
            }
        }
        UserIndex { users }
    }
}

impl ManagedUsers for UserIndex {
    fn managed(&self, service: Service, name: &Name) -> Option<&UserRow> {
        self.users.get(&(service, name.clone()))
    }
}

/// Applies one listen change. The output's state is to be committed with
/// its events before its actions run, as a poll's is. `managed` is left
/// at zero (only a poll counts users).
pub fn apply_listen(
    prev: &MonitorState,
    users: &dyn ManagedUsers,
    change: &ListenChange,
    now: Timestamp,
    clock: &ClockNow,
    cfg: &MonitorConfig,
) -> StepOutput {
    let mut out = StepOutput {
        state: prev.clone(),
        ..StepOutput::default()
    };
    match change {
        ListenChange::Upsert(row) => login(&mut out, users, row, now, clock, cfg),
        ListenChange::Removed {
            service,
            id,
            kicked,
        } => removed(&mut out, (*service, *id), *kicked, now),
    }
    out
}

fn login(
    out: &mut StepOutput,
    users: &dyn ManagedUsers,
    row: &SessionRow,
    now: Timestamp,
    clock: &ClockNow,
    cfg: &MonitorConfig,
) {
    let Some(user) = users.managed(row.service, &row.user) else {
        return;
    };
    let key = (row.service, row.id);
    let state = &mut out.state;
    if let Some(known) = state.sessions.get(&key) {
        if sessions::same_session(known, row) {
            return;
        }
        // Another session under a known `.id` (a stale row, or numbering
        // restarted): the old one ended first.
        let old = known.clone();
        end(state, &mut out.events, &old, LogoutReason::Relogin, now);
    }
    let t = sessions::track(row, user.profile.clone(), now);
    out.events.push(EventKind::Login {
        session: sessions::session_ref(&t),
        address: row.address,
        mac: row.mac,
        caller_id: row.caller_id.clone(),
        login_by: row.login_by.clone(),
        profile: user.profile.clone(),
        seen_at_start: false,
    });
    state.sessions.insert(key, t);
    if row.service != Service::Hotspot {
        return;
    }
    // The voucher's activation is decided now, at the login itself, by the
    // poll's own planning run for this one user.
    let plan = vouchers::plan(
        &state.vouchers,
        &[user],
        &[row.into()],
        now,
        clock,
        cfg,
        Vec::new(),
    );
    match plan.vouchers.get(&user.name) {
        Some(p) => state.vouchers.insert(user.name.clone(), p.clone()),
        None => state.vouchers.remove(&user.name),
    };
    out.events.extend(plan.events);
    out.actions.extend(plan.actions);
    out.warnings.extend(plan.warnings);
}

fn removed(out: &mut StepOutput, key: SessionKey, kicked_by_us: bool, now: Timestamp) {
    let Some(old) = out.state.sessions.get(&key).cloned() else {
        return;
    };
    // Sessions of a voucher the agent expired were kicked by it.
    let kicked = kicked_by_us
        || old.service == Service::Hotspot
            && out
                .state
                .vouchers
                .get(&old.user)
                .is_some_and(|p| p.expired_for.is_some() && !p.enforced);
    let reason = if kicked {
        LogoutReason::Kicked
    } else {
        LogoutReason::Gone
    };
    end(&mut out.state, &mut out.events, &old, reason, now);
}

/// Ends a tracked session: the logout event, and the credit its usage
/// leaves against the user's cumulative counters.
fn end(
    state: &mut MonitorState,
    events: &mut Vec<EventKind>,
    old: &super::TrackedSession,
    reason: LogoutReason,
    now: Timestamp,
) {
    state.sessions.remove(&(old.service, old.active_id));
    events.push(sessions::logout(old, reason));
    if old.service != Service::Hotspot {
        return;
    }
    let last_seen = state
        .last_poll
        .unwrap_or(old.last_report)
        .max(old.last_report);
    if let Some(b) = state.usage.get_mut(&old.user) {
        let c = &old.counters;
        b.credit = b.credit.saturating_add(&usage::credit(
            c.uptime_secs,
            c.bytes_in,
            c.bytes_out,
            last_seen,
            now,
        ));
    }
}
