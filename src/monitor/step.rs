//! One monitoring cycle as a pure function.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeSet;

use super::action::Action;
use super::clock_trust::{self, ClockNow};
use super::glob::glob_match;
use super::managed::ours_by_comment;
use super::name_index::NameIndex;
use super::state::SessionKey;
use super::vouchers::OpenSession;
use super::{MonitorState, SessionRow, Snapshot, UserRow, sessions, usage, vouchers};
use crate::clock::Timestamp;
use crate::comment::has_system_marker;
use crate::event::{EventKind, ExpiredAction, Service};
use crate::name::Name;

const REBOOT_TOLERANCE_SECS: i64 = 120;

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Glob on the profile name of hotspot users (`*voucher*`).
    pub hotspot_pattern: String,
    /// Glob on the profile name of PPP secrets (`*pppoe*`).
    pub pppoe_pattern: String,
    /// Interval of interim usage events.
    pub usage_secs: u64,
    pub expired_action: ExpiredAction,
    /// MAC lock for every voucher (`MIKROTIK_EDGE_MAC_LOCK`).
    pub mac_lock: bool,
    /// MAC lock for vouchers whose profile matches this glob.
    pub mac_lock_pattern: Option<String>,
}

impl MonitorConfig {
    /// The profile pattern of a service's users.
    pub fn pattern(&self, service: Service) -> &str {
        match service {
            Service::Hotspot => &self.hotspot_pattern,
            Service::Pppoe => &self.pppoe_pattern,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    /// The state to commit, together with `events`, before any action runs.
    pub state: MonitorState,
    pub events: Vec<EventKind>,
    pub actions: Vec<Action>,
    /// Things worth a log line (the driver logs each distinct one once).
    pub warnings: Vec<String>,
    /// How many hotspot users and PPP secrets matched the patterns.
    pub managed: (usize, usize),
    /// The clock as this step judged it; the listen path uses it (moved
    /// on by the time passed) until the next poll.
    pub clock: ClockNow,
}

/// The users whose profile matches a pattern.
struct Managed<'a> {
    users: &'a [UserRow],
    /// Their positions in `users` by name (the last row of a name only).
    index: NameIndex,
    /// The same positions in the router's order.
    sorted: Vec<u32>,
}

impl<'a> Managed<'a> {
    fn get(&self, name: &Name) -> Option<&'a UserRow> {
        let users = self.users;
        self.index
            .get(name.as_bytes(), |i| users[i as usize].name.as_bytes())
            .map(|i| &users[i as usize])
    }

    fn contains(&self, name: &Name) -> bool {
        self.get(name).is_some()
    }

    /// The managed users in the router's order.
    fn rows(&self) -> impl Iterator<Item = &'a UserRow> + '_ {
        self.sorted.iter().map(|&i| &self.users[i as usize])
    }
}

/// The users of `users` whose profile matches `pattern`. The glob runs once
/// per distinct profile, not once per user. Everything that emits events
/// goes through them in the router's order, so output is stable.
fn managed<'a>(users: &'a [UserRow], service: Service, cfg: &MonitorConfig) -> Managed<'a> {
    let pattern = cfg.pattern(service);
    let mut verdicts: HashMap<&Name, bool> = HashMap::default();
    let mut sorted = Vec::with_capacity(users.len());
    // Profiles are interned by the row parser and neighbours mostly share
    // one: the last verdict is checked by identity before any hashing.
    let mut last: Option<(&Name, bool)> = None;
    // Row indices fit in four bytes: a reply is capped far below 4 billion
    // rows (and a list that long could not be held anyway).
    for (i, u) in users.iter().enumerate().take(u32::MAX as usize - 1) {
        let wanted = match last {
            Some((p, v)) if p.same_allocation(&u.profile) => v,
            _ => {
                let v = *verdicts
                    .entry(&u.profile)
                    .or_insert_with(|| glob_match(pattern, u.profile.as_bytes()));
                last = Some((&u.profile, v));
                v
            }
        };
        // Ours by comment whatever the profile (see `managed.rs`).
        if wanted || ours_by_comment(service, u.comment.as_bytes()) {
            sorted.push(i as u32);
        }
    }
    let name_of = |i: u32| users[i as usize].name.as_bytes();
    // Of rows with one name, the last is indexed.
    let index = NameIndex::build(sorted.iter().copied(), name_of);
    // The router's own order (stable from poll to poll), without
    // duplicates of a name (the last row wins, as in the index).
    if index.len() < sorted.len() {
        sorted.retain(|&i| index.get(name_of(i), name_of) == Some(i));
    }
    Managed {
        users,
        index,
        sorted,
    }
}

/// What a step did besides updating the state: see [`step_in_place`].
#[derive(Debug, Clone, Default)]
pub struct StepChanges {
    /// To commit, together with the state, before any action runs.
    pub events: Vec<EventKind>,
    pub actions: Vec<Action>,
    pub warnings: Vec<String>,
    pub managed: (usize, usize),
    pub clock: ClockNow,
    /// Sessions whose stored record changed or that are new, and sessions
    /// that ended, in key order: the state file's session writes.
    pub sessions_put: Vec<SessionKey>,
    pub sessions_del: Vec<SessionKey>,
}

/// Computes one cycle: session transitions, voucher lifecycle and
/// hand-made users, from the previous state and a complete snapshot.
/// `prev` is left as it was (see [`step_in_place`] for the agent's way).
pub fn step(
    prev: &MonitorState,
    snap: &Snapshot,
    now: Timestamp,
    cfg: &MonitorConfig,
) -> StepOutput {
    let mut state = prev.clone();
    let c = step_in_place(&mut state, &mut snap.clone(), now, cfg);
    StepOutput {
        state,
        events: c.events,
        actions: c.actions,
        warnings: c.warnings,
        managed: c.managed,
        clock: c.clock,
    }
}

/// [`step`] that turns `state` into the next one. Its session map is
/// updated in place when nothing else shares it (at 6,000 sessions a copy
/// is most of a megabyte, every poll); the other maps are replaced by new
/// copies only when they change. The snapshot's session rows are let go
/// (emptied) as soon as the sessions are updated, for the same reason:
/// the rest of the step builds the usage baselines and the events.
pub fn step_in_place(
    state: &mut MonitorState,
    snap: &mut Snapshot,
    now: Timestamp,
    cfg: &MonitorConfig,
) -> StepChanges {
    let prev = &*state;
    let hotspot = managed(&snap.hotspot_users, Service::Hotspot, cfg);
    let pppoe = managed(&snap.ppp_secrets, Service::Pppoe, cfg);
    // Boot estimates wobble by the time between reading the uptime and
    // taking `now`; a real reboot moves the estimate by far more.
    let rebooted = matches!(
        (prev.router_boot, snap.router_boot),
        (Some(before), Some(after)) if after.secs_since(before) > REBOOT_TOLERANCE_SECS
    );
    // A poll that only counted the active lists has the state's own
    // sessions for rows. With the users as the last step saw them, every
    // one of those is still managed and nothing about it can change (no
    // counters, no usage due from kept counters): the update is skipped,
    // which at a large site is most polls.
    let quiet = snap.sessions_kept && snap.users_same && !rebooted && prev.started;
    let kept = (snap.sessions_kept && !quiet).then(|| sessions::kept_rows(&prev.sessions));
    let (hotspot_rows, ppp_rows) = match &kept {
        Some((h, p)) => (h.as_slice(), p.as_slice()),
        None => (snap.hotspot_active.as_slice(), snap.ppp_active.as_slice()),
    };
    let active: Vec<&SessionRow> = if quiet {
        Vec::new()
    } else {
        hotspot_rows
            .iter()
            .filter(|s| hotspot.contains(&s.user))
            .chain(ppp_rows.iter().filter(|s| pppoe.contains(&s.user)))
            .collect()
    };
    let hotspot_users: Vec<&UserRow> = hotspot.rows().collect();

    let (clock, clock_event, clock_now) = match &snap.clock {
        Some(v) => clock_trust::advance(&prev.clock, v),
        None => (prev.clock, None, ClockNow::UNASSESSED),
    };
    // Sessions of vouchers expired in an earlier cycle and still being
    // enforced were kicked by us; once enforced, the user (re-enabled by the
    // operator) logs out on its own.
    let kicked_users: BTreeSet<Name> = prev
        .vouchers
        .iter()
        .filter(|(_, p)| p.expired_for.is_some() && !p.enforced)
        .map(|(name, _)| name.clone())
        .collect();
    let profile_of = |service: Service, user: &Name| -> Name {
        let index = match service {
            Service::Hotspot => &hotspot,
            Service::Pppoe => &pppoe,
        };
        index
            .get(user)
            .map(|u| u.profile.clone())
            .unwrap_or_default()
    };
    let ctx = sessions::Context {
        now,
        usage_after_secs: (!snap.sessions_kept)
            .then(|| cfg.usage_secs.saturating_sub(snap.usage_early_secs)),
        rebooted,
        kicked_users: &kicked_users,
        kicked: &snap.kicked,
        profile_of: &profile_of,
        first_cycle: !prev.started,
        last_poll: prev.last_poll,
    };
    // What else the rest needs of `prev` is taken aside here: the state
    // changes from now on.
    let prev_boot = prev.router_boot;
    let prev_usage = std::mem::take(&mut state.usage);
    let prev_flagged = std::mem::take(&mut state.flagged_manual);
    let sessions::Update {
        mut events,
        put: sessions_put,
        del: sessions_del,
        ended,
    } = if quiet {
        sessions::Update::default()
    } else {
        sessions::update(&mut state.sessions, &active, &ctx)
    };
    // The open hotspot sessions the voucher plan needs, named by the user
    // rows' names, which outlive the step: the session rows can go before
    // the plan runs, and the plan appends to this step's events instead
    // of to a vector of its own copied in after it.
    let open: Vec<OpenSession> = if quiet {
        state
            .sessions
            .values()
            .filter(|t| t.service == Service::Hotspot)
            .filter_map(|t| Some(OpenSession::of(hotspot.get(&t.user)?, t.active_id, t.mac)))
            .collect()
    } else {
        active
            .iter()
            .filter(|s| s.service == Service::Hotspot)
            .filter_map(|s| Some(OpenSession::of(hotspot.get(&s.user)?, s.id, s.mac)))
            .collect()
    };
    drop((active, ctx, profile_of));
    drop(kept);
    snap.hotspot_active = Vec::new();
    snap.ppp_active = Vec::new();
    let sessions = &state.sessions;

    let counters_read = !snap.hotspot_users_kept;
    let (usage, unseen) = if usage::is_quiet(snap.users_same, counters_read, &ended) {
        (prev_usage, Vec::new())
    } else {
        let online: HashSet<&Name> = sessions
            .values()
            .filter(|t| t.service == Service::Hotspot)
            .map(|t| &t.user)
            .collect();
        usage::account(prev_usage, &hotspot_users, &online, &ended, counters_read)
    };
    events.extend(unseen);
    let plan = vouchers::plan(
        &state.vouchers,
        &hotspot_users,
        &open,
        now,
        &clock_now,
        cfg,
        events,
    );
    drop(open);
    let mut events = plan.events;

    // Hand-made users: a comment without any `_SYSTEM` marker. Every user is
    // checked, whatever its profile: hand-made users rarely follow the
    // naming pattern. Each is reported once; the set forgets users that no
    // longer exist so it cannot grow without bound. Users as the last step
    // saw them were all flagged then: nothing to do.
    let mut flagged = BTreeSet::new();
    let mut manual = Vec::new();
    let all = [
        (Service::Hotspot, &snap.hotspot_users),
        (Service::Pppoe, &snap.ppp_secrets),
    ];
    let lists: &[_] = if snap.users_same {
        flagged = prev_flagged.clone();
        &[]
    } else {
        &all
    };
    for &(service, users) in lists {
        for u in users.iter() {
            if u.comment.is_empty() || has_system_marker(u.comment.as_bytes()) {
                continue;
            }
            let key = (service, u.name.clone());
            if !prev_flagged.contains(&key) {
                manual.push(EventKind::ManualUser {
                    service,
                    user: u.name.clone(),
                    profile: u.profile.clone(),
                    comment: u.comment.clone(),
                });
            }
            flagged.insert(key);
        }
    }

    // A change of clock trust first: it explains the times that follow.
    events.splice(0..0, clock_event);
    events.extend(manual);
    let managed = (hotspot.sorted.len(), pppoe.sorted.len());
    state.vouchers = plan.vouchers;
    state.flagged_manual = flagged;
    state.router_boot = snap.router_boot.or(prev_boot);
    state.started = true;
    state.clock = clock;
    state.usage = usage;
    // A kept copy's counters are as old as the last read: credit for a
    // session ending later must stretch from then.
    if !snap.sessions_kept {
        state.last_poll = Some(now);
    }
    StepChanges {
        events,
        actions: plan.actions,
        warnings: plan.warnings,
        managed,
        clock: clock_now,
        sessions_put,
        sessions_del,
    }
}
