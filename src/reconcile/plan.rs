//! Reconciliation as a pure function: the router's lists, the desired
//! state and what was remembered in; router actions, events and the new
//! remembered state out. The driver ([`crate::agent::sync`]) commits state
//! and events first, then runs the actions; every action is re-planned from
//! the router's own lists until they show its effect (like the voucher
//! lifecycle), so each one is idempotent.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::desired::{
    DesiredState, DesiredSubscription, DesiredVoucher, Password, SubscriptionStatus, VoucherStatus,
};
use super::intent::Intents;
use super::state::{Isolation, ProfileSettings, ReconcileState};
use crate::clock::Timestamp;
use crate::comment::{Comment, SystemComment, SystemKind, has_system_marker};
pub use crate::event::SuspendMode;
use crate::event::{EventKind, Service, SubscriptionAction, Via};
use crate::monitor::{MonitorState, SessionRow, UserRow, glob_match};
use crate::name::{Id, Name};

/// Field of a PPPoE comment, after the seven of the format, that holds the
/// profile a suspended (isolated) secret had: `isolir=<profile>`.
pub const ISOLIR_FIELD: usize = 7;
const ISOLIR_PREFIX: &[u8] = b"isolir=";

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    pub hotspot_pattern: String,
    pub pppoe_pattern: String,
    pub suspend_mode: SuspendMode,
    /// The isolation profile (isolir mode; empty otherwise).
    pub isolir_profile: Name,
}

/// A hotspot user profile or PPP profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    pub name: Name,
    pub rate_limit: Name,
    pub session_timeout: Name,
    /// Hotspot only.
    pub shared_users: Option<Name>,
}

/// The router lists reconciliation reads.
#[derive(Debug, Clone, Default)]
pub struct RouterLists {
    pub hotspot_users: Vec<UserRow>,
    pub ppp_secrets: Vec<UserRow>,
    pub ppp_active: Vec<SessionRow>,
    pub hotspot_profiles: Vec<ProfileRow>,
    pub ppp_profiles: Vec<ProfileRow>,
    /// Passwords of our users (`_SYSTEM` comments), where the API user
    /// may read them (the `sensitive` policy): adoption reports them so
    /// the central side can recreate the user.
    pub passwords: BTreeMap<(Service, Name), Name>,
}

/// A router change reconciliation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAction {
    CreateUser {
        service: Service,
        name: Name,
        password: Password,
        profile: Name,
        comment: Name,
        /// PPP secrets created suspended (disable mode).
        disabled: bool,
    },
    DisableSecret {
        id: Id,
        user: Name,
    },
    EnableSecret {
        id: Id,
        user: Name,
    },
    SetSecretProfile {
        id: Id,
        user: Name,
        profile: Name,
        comment: Name,
    },
    KickPpp {
        active_id: Id,
        user: Name,
    },
    /// An operator deleted this user (desired status `deleted`).
    RemoveUser {
        service: Service,
        id: Id,
        user: Name,
    },
    KickHotspot {
        active_id: Id,
        user: Name,
    },
}

impl SyncAction {
    pub fn user(&self) -> &Name {
        match self {
            SyncAction::CreateUser { name, .. } => name,
            SyncAction::DisableSecret { user, .. }
            | SyncAction::EnableSecret { user, .. }
            | SyncAction::SetSecretProfile { user, .. }
            | SyncAction::KickPpp { user, .. }
            | SyncAction::RemoveUser { user, .. }
            | SyncAction::KickHotspot { user, .. } => user,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            SyncAction::CreateUser {
                service: Service::Hotspot,
                ..
            } => "create voucher",
            SyncAction::CreateUser { .. } => "create secret",
            SyncAction::DisableSecret { .. } => "disable suspended secret",
            SyncAction::EnableSecret { .. } => "enable restored secret",
            SyncAction::SetSecretProfile { .. } => "set secret profile",
            SyncAction::KickPpp { .. } => "kick PPP session",
            SyncAction::RemoveUser {
                service: Service::Hotspot,
                ..
            } => "remove deleted voucher",
            SyncAction::RemoveUser { .. } => "remove deleted secret",
            SyncAction::KickHotspot { .. } => "kick hotspot session",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub state: ReconcileState,
    /// The overrides still held, and what recreation remembers.
    pub intents: Intents,
    /// Subscriptions whose restore this plan writes: `restored` is
    /// reported when the write succeeds (see [`restored_event`]).
    pub restores: BTreeMap<Name, Name>,
    pub events: Vec<EventKind>,
    pub actions: Vec<SyncAction>,
    pub warnings: Vec<String>,
    /// Scratch: desired users blocked from recreation this run.
    blocked_now: Vec<(Service, Name)>,
}

/// Plans one reconciliation. Without a desired state (never fetched) only
/// profiles are reported. `monitor` is the monitor's current state: its
/// voucher progress tells which vouchers expired here.
pub fn plan(
    prev: &ReconcileState,
    intents: &Intents,
    lists: &RouterLists,
    desired: Option<&DesiredState>,
    monitor: &MonitorState,
    now: Timestamp,
    cfg: &ReconcileConfig,
) -> Plan {
    let mut out = Plan {
        state: ReconcileState {
            // Kept as is unless a step below changes it.
            create_failed: prev.create_failed.clone(),
            ..ReconcileState::default()
        },
        intents: intents.clone(),
        ..Plan::default()
    };
    // The newest intent wins: local overrides the desired state already
    // shows (or that a newer central intent superseded) are dropped, the
    // rest are applied over it.
    let effective = desired.map(|d| {
        out.intents.resolve(d);
        out.intents.apply(d)
    });
    let desired = effective.as_ref();
    profiles(prev, lists, cfg, &mut out);
    let Some(desired) = desired else {
        out.state.adopted = prev.adopted.clone();
        out.state.expired = prev.expired.clone();
        out.state.suspended = prev.suspended.clone();
        out.state.isolated = prev.isolated.clone();
        out.state.kick_before = prev.kick_before.clone();
        return out;
    };
    vouchers(prev, lists, desired, monitor, now, &mut out);
    subscriptions(prev, lists, desired, now, cfg, &mut out);
    // Blocked recreations are forgotten once the user exists or is no
    // longer wanted, so a later loss is reported again.
    let still_blocked: BTreeSet<(Service, Name)> = out.blocked_now.iter().cloned().collect();
    out.intents.blocked.retain(|k, _| still_blocked.contains(k));
    out.blocked_now.clear();
    // Failures of users no longer desired, or now on the router, are forgotten.
    let wanted: BTreeSet<(Service, &Name)> = desired
        .vouchers
        .iter()
        .map(|v| (Service::Hotspot, &v.code))
        .chain(
            desired
                .subscriptions
                .iter()
                .map(|s| (Service::Pppoe, &s.user)),
        )
        .collect();
    let present: BTreeSet<(Service, &Name)> = lists
        .hotspot_users
        .iter()
        .map(|u| (Service::Hotspot, &u.name))
        .chain(lists.ppp_secrets.iter().map(|u| (Service::Pppoe, &u.name)))
        .collect();
    out.state
        .create_failed
        .retain(|(s, n), _| wanted.contains(&(*s, n)) && !present.contains(&(*s, n)));
    out
}

/// Profiles matching the patterns, reported when new or changed.
fn profiles(prev: &ReconcileState, lists: &RouterLists, cfg: &ReconcileConfig, out: &mut Plan) {
    for (service, rows, pattern) in [
        (
            Service::Hotspot,
            &lists.hotspot_profiles,
            &cfg.hotspot_pattern,
        ),
        (Service::Pppoe, &lists.ppp_profiles, &cfg.pppoe_pattern),
    ] {
        for p in rows {
            let isolir = service == Service::Pppoe && p.name == cfg.isolir_profile;
            if !isolir && !glob_match(pattern, p.name.as_bytes()) {
                continue;
            }
            let settings = ProfileSettings {
                rate_limit: p.rate_limit.clone(),
                session_timeout: p.session_timeout.clone(),
                shared_users: p.shared_users.clone(),
            };
            let key = (service, p.name.clone());
            if prev.profiles.get(&key) != Some(&settings) {
                out.events.push(EventKind::Profile {
                    service,
                    name: p.name.clone(),
                    rate_limit: p.rate_limit.clone(),
                    session_timeout: p.session_timeout.clone(),
                    shared_users: p.shared_users.clone(),
                });
            }
            out.state.profiles.insert(key, settings);
        }
    }
}

fn vouchers(
    prev: &ReconcileState,
    lists: &RouterLists,
    desired: &DesiredState,
    monitor: &MonitorState,
    now: Timestamp,
    out: &mut Plan,
) {
    let on_router: HashMap<&Name, &UserRow> =
        lists.hotspot_users.iter().map(|u| (&u.name, u)).collect();
    let desired_codes: BTreeSet<&Name> = desired.vouchers.iter().map(|v| &v.code).collect();

    // Expired here, by the monitor's own record: remembered for as long as
    // the voucher is on the router or in the desired state.
    let mut expired: BTreeSet<Name> = prev.expired.clone();
    expired.extend(
        monitor
            .vouchers
            .iter()
            .filter(|(_, p)| p.expired_for.is_some())
            .map(|(n, _)| n.clone()),
    );
    expired.retain(|n| on_router.contains_key(n) || desired_codes.contains(n));
    out.state.expired = expired;

    keep_router_activations(desired, &on_router, out);
    for v in &desired.vouchers {
        match on_router.get(&v.code) {
            Some(r) => remove_voucher(v, r, monitor, out),
            None => create_voucher(v, now, out),
        }
    }
    adopt_unknown_vouchers(prev, lists, &desired_codes, out);
}

/// Router comments that carry an activation the desired comment lacks
/// (central has not applied the `voucher_activated` yet): kept for a
/// recreation, so a voucher deleted meanwhile keeps its term.
fn keep_router_activations(
    desired: &DesiredState,
    on_router: &HashMap<&Name, &UserRow>,
    out: &mut Plan,
) {
    let mut router_comments = BTreeMap::new();
    for v in &desired.vouchers {
        let Some(r) = on_router.get(&v.code) else {
            if let Some(c) = out.intents.router_comments.get(&v.code) {
                router_comments.insert(v.code.clone(), c.clone());
            }
            continue;
        };
        // Each comment parsed once (a full parse copies its fields).
        let activation = activation_of(&r.comment);
        if activation.is_some() && activation != activation_of(&v.comment) {
            router_comments.insert(v.code.clone(), r.comment.clone());
        }
    }
    out.intents.router_comments = router_comments;
}

/// Deleted centrally: our voucher goes, with its sessions.
fn remove_voucher(v: &DesiredVoucher, r: &UserRow, monitor: &MonitorState, out: &mut Plan) {
    if v.status != VoucherStatus::Deleted || !has_system_marker(r.comment.as_bytes()) {
        return;
    }
    out.actions.push(SyncAction::RemoveUser {
        service: Service::Hotspot,
        id: r.id,
        user: v.code.clone(),
    });
    // A removed user left online would keep browsing.
    for t in monitor.sessions.values() {
        if t.service == Service::Hotspot && t.user == v.code {
            out.actions.push(SyncAction::KickHotspot {
                active_id: t.active_id,
                user: v.code.clone(),
            });
        }
    }
}

/// Missing on the router and still sellable: created, with the comment
/// that carries its newest activation.
fn create_voucher(v: &DesiredVoucher, now: Timestamp, out: &mut Plan) {
    if matches!(v.status, VoucherStatus::Expired | VoucherStatus::Deleted)
        || out.state.expired.contains(&v.code)
    {
        return;
    }
    // The comment with the newest activation: central's, or the one
    // last seen on the router.
    let comment = match out.intents.router_comments.get(&v.code) {
        Some(c) => c.clone(),
        None if v.comment.is_empty() => {
            Name::new(SystemComment::new_voucher(b"", b"", b"", b"", b"", b"", b"sync").to_bytes())
        }
        None => v.comment.clone(),
    };
    if comment_expired(&comment, now) {
        return;
    }
    if !block_unknown_password(out, Service::Hotspot, &v.code, &v.password) {
        return;
    }
    out.actions.push(SyncAction::CreateUser {
        service: Service::Hotspot,
        name: v.code.clone(),
        password: v.password.clone(),
        profile: v.profile.clone(),
        comment,
        disabled: false,
    });
}

/// Our vouchers the central side does not know: adopted (reported once),
/// left in place.
fn adopt_unknown_vouchers(
    prev: &ReconcileState,
    lists: &RouterLists,
    desired_codes: &BTreeSet<&Name>,
    out: &mut Plan,
) {
    for u in &lists.hotspot_users {
        if desired_codes.contains(&u.name) {
            continue;
        }
        let Comment::System(meta) = Comment::parse(u.comment.as_bytes()) else {
            continue;
        };
        if meta.kind() != SystemKind::Voucher {
            continue;
        }
        let key = (Service::Hotspot, u.name.clone());
        if !prev.adopted.contains(&key) {
            out.events.push(EventKind::UserAdopted {
                service: Service::Hotspot,
                user: u.name.clone(),
                profile: u.profile.clone(),
                comment: u.comment.clone(),
                batch_id: Name::new(meta.batch_id().unwrap_or_default()),
                valid_hours: meta.valid_hours(),
                first_login_at: meta.first_login_at(),
                expires_at: meta
                    .expires_at()
                    .or_else(|| Some(meta.first_login_at()?.plus_valid(meta.valid_hours()?))),
                password: Password(lists.passwords.get(&key).cloned()),
                disabled: u.disabled,
            });
        }
        out.state.adopted.insert(key);
    }
}

/// The `first_login_at` a voucher comment carries, raw.
fn activation_of(comment: &Name) -> Option<Vec<u8>> {
    let Comment::System(meta) = Comment::parse(comment.as_bytes()) else {
        return None;
    };
    meta.first_login_at().map(|t| t.to_rfc3339().into_bytes())
}

/// A desired user whose password the central side does not know is never
/// recreated (a recreated voucher card or PPPoE login without its password
/// locks the customer out, or lets anyone in): reported once as
/// `recreate_blocked` instead. True when the creation may go ahead.
fn block_unknown_password(out: &mut Plan, service: Service, user: &Name, pw: &Password) -> bool {
    if pw.known() {
        return true;
    }
    let key = (service, user.clone());
    out.blocked_now.push(key.clone());
    if let std::collections::btree_map::Entry::Vacant(slot) = out.intents.blocked.entry(key) {
        let reason = "password unknown centrally".to_owned();
        slot.insert(reason.clone());
        out.events.push(EventKind::RecreateBlocked {
            service,
            user: user.clone(),
            reason,
        });
    }
    false
}

/// A voucher comment whose term has ended (`expires_at`, or first login
/// plus valid hours, in the past): recreating it would hand out a voucher
/// that already ran out.
fn comment_expired(comment: &Name, now: Timestamp) -> bool {
    let Comment::System(meta) = Comment::parse(comment.as_bytes()) else {
        return false;
    };
    meta.expires_at()
        .or_else(|| Some(meta.first_login_at()?.plus_valid(meta.valid_hours()?)))
        .is_some_and(|e| e <= now)
}

fn subscriptions(
    prev: &ReconcileState,
    lists: &RouterLists,
    desired: &DesiredState,
    now: Timestamp,
    cfg: &ReconcileConfig,
    out: &mut Plan,
) {
    let secrets: HashMap<&Name, &UserRow> =
        lists.ppp_secrets.iter().map(|u| (&u.name, u)).collect();
    let mut sessions: BTreeMap<&Name, Vec<&SessionRow>> = BTreeMap::new();
    for s in &lists.ppp_active {
        sessions.entry(&s.user).or_default().push(s);
    }
    let desired_users: BTreeSet<&Name> = desired.subscriptions.iter().map(|s| &s.user).collect();

    for s in &desired.subscriptions {
        let live = Sessions {
            user: &s.user,
            list: sessions.get(&s.user).map_or(&[], Vec::as_slice),
            now,
        };
        let Some(r) = secrets.get(&s.user) else {
            if s.status != SubscriptionStatus::Deleted {
                create_subscription(s, now, cfg, out);
            }
            continue;
        };
        if s.status == SubscriptionStatus::Deleted {
            remove_subscription(r, &live, out);
        } else if !has_system_marker(r.comment.as_bytes()) {
            out.warnings.push(format!(
                "subscription {} exists on the router as a secret without a PPPOE_SYSTEM comment; not touched",
                s.user
            ));
        } else {
            let comment = SecretComment::new(&r.comment);
            if s.status == SubscriptionStatus::Suspended {
                suspend_subscription(prev, s, r, &comment, &live, cfg, out);
            } else {
                keep_subscription_active(prev, s, r, &comment, &live, cfg, out);
            }
        }
    }

    adopt_unknown_secrets(prev, lists, &desired_users, out);
    // Isolations of secrets no longer desired are forgotten.
    out.state
        .isolated
        .retain(|n, _| desired_users.contains(n) && secrets.contains_key(n));
}

/// A secret's comment, parsed at most once per plan however many of its
/// fields the plan reads (parse, don't re-parse).
struct SecretComment<'a> {
    raw: &'a Name,
    parsed: OnceCell<Option<SystemComment>>,
}

impl<'a> SecretComment<'a> {
    fn new(raw: &'a Name) -> Self {
        SecretComment {
            raw,
            parsed: OnceCell::new(),
        }
    }

    /// Ours (`_SYSTEM|…`), parsed; `None` for any other comment.
    fn system(&self) -> Option<&SystemComment> {
        self.parsed
            .get_or_init(|| match Comment::parse(self.raw.as_bytes()) {
                Comment::System(meta) => Some(meta),
                _ => None,
            })
            .as_ref()
    }

    /// See [`isolir_field`].
    fn isolir_field(&self) -> Option<Name> {
        isolir_field_of(self.system()?)
    }

    /// See [`with_isolir_field`].
    fn with_isolir_field(&self, previous: Option<&Name>) -> Name {
        match self.system() {
            Some(meta) => with_isolir_field_of(meta, previous),
            None => self.raw.clone(),
        }
    }
}

/// One subscription's sessions on the router, and the kicks of them.
struct Sessions<'a> {
    user: &'a Name,
    list: &'a [&'a SessionRow],
    now: Timestamp,
}

impl<'a> Sessions<'a> {
    /// The sessions that started at or before `t`.
    fn started_before(&self, t: Timestamp) -> Vec<&'a SessionRow> {
        self.list
            .iter()
            .copied()
            .filter(|x| {
                x.uptime_secs
                    .is_some_and(|up| self.now.plus_secs(-(up as i64)).secs_since(t) <= 0)
            })
            .collect()
    }

    /// Kicks `list`, remembering that sessions from before `before` go.
    fn kick(&self, out: &mut Plan, before: Timestamp, list: Vec<&SessionRow>) {
        self.kick_all(out, &list);
        out.state.kick_before.insert(self.user.clone(), before);
    }

    /// Kicks `list` (nothing remembered).
    fn kick_all(&self, out: &mut Plan, list: &[&SessionRow]) {
        for x in list {
            out.actions.push(SyncAction::KickPpp {
                active_id: x.id,
                user: self.user.clone(),
            });
        }
    }
}

/// Deleted centrally: our secret goes, with its sessions.
fn remove_subscription(r: &UserRow, live: &Sessions, out: &mut Plan) {
    if !has_system_marker(r.comment.as_bytes()) {
        return;
    }
    out.actions.push(SyncAction::RemoveUser {
        service: Service::Pppoe,
        id: r.id,
        user: live.user.clone(),
    });
    live.kick_all(out, live.list);
}

/// Missing on the router: created in its desired state.
fn create_subscription(
    s: &DesiredSubscription,
    now: Timestamp,
    cfg: &ReconcileConfig,
    out: &mut Plan,
) {
    if !block_unknown_password(out, Service::Pppoe, &s.user, &s.password) {
        return;
    }
    let suspended = s.status == SubscriptionStatus::Suspended;
    let isolir = cfg.suspend_mode == SuspendMode::Isolir;
    let (profile, comment) = if suspended && isolir {
        out.state.isolated.insert(
            s.user.clone(),
            Isolation {
                previous_profile: s.profile.clone(),
                since: now,
            },
        );
        (
            cfg.isolir_profile.clone(),
            with_isolir_field(&pppoe_comment(&s.comment), Some(&s.profile)),
        )
    } else {
        (s.profile.clone(), pppoe_comment(&s.comment))
    };
    if suspended {
        out.state.suspended.insert(s.user.clone());
    }
    out.actions.push(SyncAction::CreateUser {
        service: Service::Pppoe,
        name: s.user.clone(),
        password: s.password.clone(),
        profile,
        comment,
        disabled: suspended && !isolir,
    });
}

/// Suspended centrally: isolated or disabled (by the suspend mode), its
/// sessions kicked, `suspended` reported once.
fn suspend_subscription(
    prev: &ReconcileState,
    s: &DesiredSubscription,
    r: &UserRow,
    comment: &SecretComment,
    live: &Sessions,
    cfg: &ReconcileConfig,
    out: &mut Plan,
) {
    let newly = !prev.suspended.contains(&s.user);
    out.state.suspended.insert(s.user.clone());
    if cfg.suspend_mode == SuspendMode::Isolir {
        isolate(prev, s, r, comment, live, cfg, out);
    } else {
        if !r.disabled {
            out.actions.push(SyncAction::DisableSecret {
                id: r.id,
                user: s.user.clone(),
            });
        }
        // A disabled secret cannot log in again: every session goes.
        live.kick_all(out, live.list);
    }
    if newly {
        out.events.push(EventKind::Subscription {
            user: s.user.clone(),
            action: SubscriptionAction::Suspended,
            mode: cfg.suspend_mode,
            profile: r.profile.clone(),
        });
    }
}

/// Isolir mode: the secret moves to the isolation profile, remembering the
/// one it had; sessions from before the move go.
fn isolate(
    prev: &ReconcileState,
    s: &DesiredSubscription,
    r: &UserRow,
    comment: &SecretComment,
    live: &Sessions,
    cfg: &ReconcileConfig,
    out: &mut Plan,
) {
    let on_isolir = r.profile == cfg.isolir_profile;
    let entry = prev
        .isolated
        .get(&s.user)
        .cloned()
        .unwrap_or_else(|| Isolation {
            previous_profile: if on_isolir {
                comment.isolir_field().unwrap_or_else(|| s.profile.clone())
            } else {
                r.profile.clone()
            },
            since: live.now,
        });
    if !on_isolir {
        out.actions.push(SyncAction::SetSecretProfile {
            id: r.id,
            user: s.user.clone(),
            profile: cfg.isolir_profile.clone(),
            comment: comment.with_isolir_field(Some(&entry.previous_profile)),
        });
    }
    out.state.isolated.insert(s.user.clone(), entry.clone());
    // Sessions from before the router showed the isolation still run with
    // the old profile: they go, and the customer reconnects isolated.
    let before = if on_isolir {
        prev.kick_before
            .get(&s.user)
            .copied()
            .unwrap_or(entry.since)
    } else {
        live.now
    };
    let old = live.started_before(before);
    if !old.is_empty() || !on_isolir {
        live.kick(out, before, old);
    }
}

/// Active centrally: undo whichever suspension the router shows; once it
/// shows none, finish the kicks and report `restored`.
fn keep_subscription_active(
    prev: &ReconcileState,
    s: &DesiredSubscription,
    r: &UserRow,
    comment: &SecretComment,
    live: &Sessions,
    cfg: &ReconcileConfig,
    out: &mut Plan,
) {
    let mut restoring = false;
    if r.disabled {
        restoring = true;
        out.actions.push(SyncAction::EnableSecret {
            id: r.id,
            user: s.user.clone(),
        });
    }
    if restore_profile(prev, s, r, comment, live, cfg, out) {
        restoring = true;
    }
    if restoring && prev.suspended.contains(&s.user) {
        out.restores.insert(s.user.clone(), s.profile.clone());
    }
    if !restoring {
        // The router shows it restored: finish kicking isolated
        // sessions, then forget the suspension.
        if let Some(&before) = prev.kick_before.get(&s.user) {
            let old = live.started_before(before);
            if !old.is_empty() {
                live.kick(out, before, old);
            }
        }
        if prev.suspended.contains(&s.user) {
            out.events.push(EventKind::Subscription {
                user: s.user.clone(),
                action: SubscriptionAction::Restored,
                mode: cfg.suspend_mode,
                profile: r.profile.clone(),
            });
        }
    } else if prev.suspended.contains(&s.user) {
        // Not confirmed yet: still counted as suspended until it is.
        out.state.suspended.insert(s.user.clone());
    }
}

/// A secret on the isolation profile goes back to its own profile (the
/// desired one, else the remembered one). True when it is being restored.
fn restore_profile(
    prev: &ReconcileState,
    s: &DesiredSubscription,
    r: &UserRow,
    comment: &SecretComment,
    live: &Sessions,
    cfg: &ReconcileConfig,
    out: &mut Plan,
) -> bool {
    let on_isolir = !cfg.isolir_profile.is_empty() && r.profile == cfg.isolir_profile;
    let remembered = prev.isolated.get(&s.user);
    if !(on_isolir || (remembered.is_some() && r.profile == cfg.isolir_profile)) {
        return false;
    }
    let target = if !s.profile.is_empty() && s.profile != cfg.isolir_profile {
        Some(s.profile.clone())
    } else {
        remembered
            .map(|i| i.previous_profile.clone())
            .or_else(|| comment.isolir_field())
            .filter(|p| !p.is_empty())
    };
    match target {
        Some(profile) => {
            out.actions.push(SyncAction::SetSecretProfile {
                id: r.id,
                user: s.user.clone(),
                comment: comment.with_isolir_field(None),
                profile,
            });
            // Isolated sessions go too, to come back with the profile.
            live.kick(out, live.now, live.started_before(live.now));
        }
        None => out.warnings.push(format!(
            "subscription {} is active but its secret is on the isolation profile and no previous profile is known; not restored",
            s.user
        )),
    }
    true
}

/// Our secrets the central side does not know: adopted (reported once),
/// left in place.
fn adopt_unknown_secrets(
    prev: &ReconcileState,
    lists: &RouterLists,
    desired_users: &BTreeSet<&Name>,
    out: &mut Plan,
) {
    for u in &lists.ppp_secrets {
        if desired_users.contains(&u.name) {
            continue;
        }
        let Comment::System(meta) = Comment::parse(u.comment.as_bytes()) else {
            continue;
        };
        if meta.kind() != SystemKind::Pppoe {
            continue;
        }
        let key = (Service::Pppoe, u.name.clone());
        if !prev.adopted.contains(&key) {
            out.events.push(EventKind::UserAdopted {
                service: Service::Pppoe,
                user: u.name.clone(),
                profile: u.profile.clone(),
                comment: u.comment.clone(),
                batch_id: Name::new(meta.batch_id().unwrap_or_default()),
                valid_hours: None,
                first_login_at: None,
                expires_at: None,
                password: Password(lists.passwords.get(&key).cloned()),
                disabled: u.disabled,
            });
        }
        out.state.adopted.insert(key);
    }
}

/// The desired comment, or a minimal `PPPOE_SYSTEM` one when it has none
/// (a secret without our marker would count as hand-made).
fn pppoe_comment(comment: &Name) -> Name {
    if has_system_marker(comment.as_bytes()) {
        comment.clone()
    } else {
        Name::new(SystemComment::new_pppoe(b"", b"", b"", b"", b"", b"", b"sync").to_bytes())
    }
}

/// `comment` with the `isolir=<profile>` field set (or cleared with
/// `None`); other fields kept byte for byte. Not our comment: unchanged.
pub fn with_isolir_field(comment: &Name, previous: Option<&Name>) -> Name {
    SecretComment::new(comment).with_isolir_field(previous)
}

fn with_isolir_field_of(meta: &SystemComment, previous: Option<&Name>) -> Name {
    let mut fields = meta.fields().to_vec();
    match previous {
        Some(p) => {
            if fields.len() <= ISOLIR_FIELD {
                fields.resize(ISOLIR_FIELD + 1, Vec::new());
            }
            fields[ISOLIR_FIELD] = [ISOLIR_PREFIX, p.as_bytes()].concat();
        }
        None => {
            if fields
                .get(ISOLIR_FIELD)
                .is_some_and(|f| f.starts_with(ISOLIR_PREFIX))
            {
                fields.remove(ISOLIR_FIELD);
            }
        }
    }
    Name::new(SystemComment::new(meta.kind(), fields).to_bytes())
}

/// The profile remembered in the comment's `isolir=` field.
pub fn isolir_field(comment: &Name) -> Option<Name> {
    SecretComment::new(comment).isolir_field()
}

fn isolir_field_of(meta: &SystemComment) -> Option<Name> {
    meta.field(ISOLIR_FIELD)
        .and_then(|f| f.strip_prefix(ISOLIR_PREFIX))
        .map(Name::new)
}

/// The event for a creation's outcome, and the remembered failures updated:
/// `user_created` on success; `create_failed` once per distinct reason.
pub fn creation_outcome(
    state: &mut ReconcileState,
    created: &SyncAction,
    result: Result<(), String>,
) -> Option<EventKind> {
    let SyncAction::CreateUser {
        service,
        name: user,
        password,
        profile,
        comment,
        disabled,
    } = created
    else {
        return None;
    };
    let service = *service;
    let key = (service, user.clone());
    match result {
        Ok(()) => {
            state.create_failed.remove(&key);
            Some(EventKind::UserCreated {
                service,
                user: user.clone(),
                profile: profile.clone(),
                comment: comment.clone(),
                password: password.clone(),
                via: Via::Sync,
                disabled: *disabled,
            })
        }
        Err(reason) => {
            if state.create_failed.get(&key) == Some(&reason) {
                return None;
            }
            state.create_failed.insert(key, reason.clone());
            Some(EventKind::CreateFailed {
                service,
                user: user.clone(),
                profile: profile.clone(),
                reason,
            })
        }
    }
}

/// The `restored` event for a subscription whose restore was just
/// written, and the suspension forgotten: reported when it happens, not
/// one sync later when the router shows it.
pub fn restored_event(
    state: &mut ReconcileState,
    user: &Name,
    profile: &Name,
    cfg: &ReconcileConfig,
) -> Option<EventKind> {
    if !state.suspended.remove(user) {
        return None;
    }
    Some(EventKind::Subscription {
        user: user.clone(),
        action: SubscriptionAction::Restored,
        mode: cfg.suspend_mode,
        profile: profile.clone(),
    })
}
