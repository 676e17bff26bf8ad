//! One monitoring cycle as a pure function.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};

use super::action::Action;
use super::clock_trust::{self, ClockNow};
use super::glob::glob_match;
use super::{MonitorState, SessionRow, Snapshot, Totals, UserRow, sessions, usage, vouchers};
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
    /// Name to index in the snapshot's list.
    by_name: HashMap<&'a Name, usize>,
    /// The same indices in the router's order.
    sorted: Vec<usize>,
}

/// The users of `users` whose profile matches `pattern`. The glob runs once
/// per distinct profile, not once per user. A hash map for the lookups
/// (thousands per cycle), and the managed users in the router's order for
/// everything that emits events, so output is stable.
fn managed<'a>(users: &'a [UserRow], pattern: &str) -> Managed<'a> {
    let mut verdicts: HashMap<&Name, bool> = HashMap::default();
    let mut by_name: HashMap<&Name, usize> =
        HashMap::with_capacity_and_hasher(users.len(), Default::default());
    let mut sorted = Vec::with_capacity(users.len());
    // Profiles are interned by the row parser and neighbours mostly share
    // one: the last verdict is checked by identity before any hashing.
    let mut last: Option<(&Name, bool)> = None;
    let mut duplicates = false;
    for (i, u) in users.iter().enumerate() {
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
        if wanted {
            duplicates |= by_name.insert(&u.name, i).is_some();
            sorted.push(i);
        }
    }
    // The router's own order (stable from poll to poll), without
    // duplicates of a name (the last row wins, as in `by_name`).
    if duplicates {
        sorted.retain(|i| by_name.get(&users[*i].name) == Some(i));
    }
    Managed { by_name, sorted }
}

/// Computes one cycle: session transitions, voucher lifecycle and
/// hand-made users, from the previous state and a complete snapshot.
pub fn step(
    prev: &MonitorState,
    snap: &Snapshot,
    now: Timestamp,
    cfg: &MonitorConfig,
) -> StepOutput {
    let hotspot = managed(&snap.hotspot_users, cfg.pattern(Service::Hotspot));
    let pppoe = managed(&snap.ppp_secrets, cfg.pattern(Service::Pppoe));

    let active: Vec<&SessionRow> = snap
        .hotspot_active
        .iter()
        .filter(|s| hotspot.by_name.contains_key(&s.user))
        .chain(
            snap.ppp_active
                .iter()
                .filter(|s| pppoe.by_name.contains_key(&s.user)),
        )
        .collect();
    let hotspot_active: Vec<&SessionRow> = active
        .iter()
        .copied()
        .filter(|s| s.service == Service::Hotspot)
        .collect();
    let hotspot_users: Vec<&UserRow> = hotspot
        .sorted
        .iter()
        .map(|&i| &snap.hotspot_users[i])
        .collect();

    let (clock, clock_event, clock_now) = match &snap.clock {
        Some(v) => clock_trust::advance(&prev.clock, v),
        None => (prev.clock, None, ClockNow::UNASSESSED),
    };
    let plan = vouchers::plan(
        &prev.vouchers,
        &hotspot_users,
        &hotspot_active,
        now,
        &clock_now,
        cfg,
    );

    // Sessions of vouchers expired in an earlier cycle and still being
    // enforced were kicked by us; once enforced, the user (re-enabled by the
    // operator) logs out on its own.
    let kicked_users: BTreeSet<Name> = prev
        .vouchers
        .iter()
        .filter(|(_, p)| p.expired_for.is_some() && !p.enforced)
        .map(|(name, _)| name.clone())
        .collect();
    // Boot estimates wobble by the time between reading the uptime and
    // taking `now`; a real reboot moves the estimate by far more.
    let rebooted = matches!(
        (prev.router_boot, snap.router_boot),
        (Some(before), Some(after)) if after.secs_since(before) > REBOOT_TOLERANCE_SECS
    );
    let profile_of = |service: Service, user: &Name| -> Name {
        let (index, rows) = match service {
            Service::Hotspot => (&hotspot, &snap.hotspot_users),
            Service::Pppoe => (&pppoe, &snap.ppp_secrets),
        };
        index
            .by_name
            .get(user)
            .map(|&i| rows[i].profile.clone())
            .unwrap_or_default()
    };
    let ctx = sessions::Context {
        now,
        usage_secs: cfg.usage_secs,
        rebooted,
        kicked_users: &kicked_users,
        profile_of: &profile_of,
        first_cycle: !prev.started,
    };
    let (sessions, mut events) = sessions::diff(&prev.sessions, &active, &ctx);

    // Unseen sessions: seen hotspot sessions that ended in this step leave
    // a credit against the growth of their user's cumulative counters.
    let mut ended: BTreeMap<Name, Totals> = BTreeMap::new();
    for e in &events {
        if let EventKind::Logout {
            session,
            bytes_in,
            bytes_out,
            uptime_secs,
            ..
        } = e
            && session.service == Service::Hotspot
        {
            // Counters were last seen at the last poll, or at the login or
            // usage event if later (a login seen by listen).
            let reported = prev
                .sessions
                .get(&(session.service, session.active_id))
                .map(|t| t.last_report);
            let last_seen = prev.last_poll.max(reported);
            let c = usage::credit(
                *uptime_secs,
                *bytes_in,
                *bytes_out,
                last_seen.unwrap_or(now),
                now,
            );
            let entry = ended.entry(session.user.clone()).or_default();
            *entry = entry.saturating_add(&c);
        }
    }
    let online: HashSet<&Name> = sessions
        .values()
        .filter(|t| t.service == Service::Hotspot)
        .map(|t| &t.user)
        .collect();
    let (usage, unseen) = usage::account(
        &prev.usage,
        &hotspot_users,
        &online,
        &ended,
        !snap.hotspot_users_kept,
    );
    events.extend(unseen);

    // Hand-made users: a comment without any `_SYSTEM` marker. Every user is
    // checked, whatever its profile: hand-made users rarely follow the
    // naming pattern. Each is reported once; the set forgets users that no
    // longer exist so it cannot grow without bound.
    let mut flagged = BTreeSet::new();
    let mut manual = Vec::new();
    for (service, users) in [
        (Service::Hotspot, &snap.hotspot_users),
        (Service::Pppoe, &snap.ppp_secrets),
    ] {
        for u in users.iter() {
            if u.comment.is_empty() || has_system_marker(u.comment.as_bytes()) {
                continue;
            }
            let key = (service, u.name.clone());
            if !prev.flagged_manual.contains(&key) {
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
    events.extend(plan.events);
    events.extend(manual);
    StepOutput {
        state: MonitorState {
            sessions,
            vouchers: plan.vouchers,
            flagged_manual: flagged,
            router_boot: snap.router_boot.or(prev.router_boot),
            started: true,
            clock,
            usage,
            last_poll: Some(now),
        },
        events,
        actions: plan.actions,
        warnings: plan.warnings,
        managed: (hotspot.sorted.len(), pppoe.sorted.len()),
        clock: clock_now,
    }
}
