//! Tests of one monitoring cycle, driven through [`step`] only: snapshots
//! and `now` in, exact events, actions and warnings out. This file holds
//! the builders; each topic has its own file.

mod clock;
mod foreign;
mod listen;
mod mac_lock;
mod properties;
mod reboot;
mod restarts;
mod sessions;
mod unseen;
mod vouchers;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::action::CommentText;
use super::clock_trust::ClockNow;
use super::{
    Action, ListenChange, MonitorConfig, MonitorState, SessionRow, Snapshot, StepOutput, Totals,
    UserIndex, UserRow, apply_listen, step, step_in_place,
};
use crate::clock::Timestamp;
use crate::comment::Comment;
use crate::event::{EventKind, ExpiredAction, LogoutReason, Service, SessionRef};
use crate::name::{Id, Mac, Name};
use crate::valid_hours::ValidHours;

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

/// 2024-01-31T12:00:00Z, the agent's clock at the start of most tests.
const T0: i64 = 1_706_702_400;
/// The router booted a day before T0 (by the agent's clock).
const BOOT: i64 = T0 - 86_400;

const VOUCHER_PROFILE: &str = "voucher-1d";
const PPPOE_PROFILE: &str = "pppoe-10M";

/// A fresh voucher: 24 hours, not activated (fields present but empty).
const FRESH: &[u8] = b"VOUCHER_SYSTEM|B1|5000|4000|24|V1|2024-01-30|admin||";
/// `FRESH` activated at T0.
const FRESH_ACTIVATED: &[u8] =
    b"VOUCHER_SYSTEM|B1|5000|4000|24|V1|2024-01-30|admin|2024-01-31T12:00:00Z|2024-02-01T12:00:00Z";
/// Activated a day before T0, expires exactly at T0.
const EXPIRES_AT_T0: &[u8] =
    b"VOUCHER_SYSTEM|B1|5000|4000|24|V1|2024-01-30|admin|2024-01-30T12:00:00Z|2024-01-31T12:00:00Z";
const PPPOE_COMMENT: &[u8] = b"PPPOE_SYSTEM|PB-9|250000|200000|CUST-42|SUB-7|2024-01-01|ops";
const MIKHMON: &[u8] = b"vc-123-01.02.24-";

/// The agent's clock, `secs` after T0.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix(T0 + secs)
}

fn cfg() -> MonitorConfig {
    MonitorConfig {
        hotspot_pattern: "*voucher*".into(),
        pppoe_pattern: "*pppoe*".into(),
        usage_secs: 300,
        expired_action: ExpiredAction::Disable,
        mac_lock: false,
        mac_lock_pattern: None,
    }
}

fn cfg_remove() -> MonitorConfig {
    MonitorConfig {
        expired_action: ExpiredAction::Remove,
        ..cfg()
    }
}

fn user(id: &str, name: &str, profile: &str, comment: &[u8]) -> UserRow {
    UserRow {
        id: id.into(),
        name: name.into(),
        profile: profile.into(),
        comment: Name::new(comment),
        disabled: false,
        totals: None,
    }
}

/// A hotspot user in the voucher profile.
fn voucher(id: &str, name: &str, comment: &[u8]) -> UserRow {
    user(id, name, VOUCHER_PROFILE, comment)
}

/// A PPP secret in the PPPoE profile.
fn secret(id: &str, name: &str, comment: &[u8]) -> UserRow {
    user(id, name, PPPOE_PROFILE, comment)
}

/// A user with cumulative counters (uptime secs, bytes in, bytes out).
fn with_totals(mut u: UserRow, uptime_secs: u64, bytes_in: u64, bytes_out: u64) -> UserRow {
    u.totals = Some(Totals {
        uptime_secs,
        bytes_in,
        bytes_out,
    });
    u
}

fn disabled(mut u: UserRow) -> UserRow {
    u.disabled = true;
    u
}

/// A hotspot active entry: up 0 s, 0 bytes each way.
fn hs(id: &str, user: &str) -> SessionRow {
    SessionRow {
        service: Service::Hotspot,
        id: id.into(),
        user: user.into(),
        address: Some("10.5.50.10".parse().unwrap()),
        mac: Mac::parse(b"AA:BB:CC:00:00:01"),
        caller_id: Default::default(),
        login_by: "http-chap".into(),
        session_id: Default::default(),
        uptime_secs: Some(0),
        bytes_in: Some(0),
        bytes_out: Some(0),
    }
}

/// A PPP active entry: RouterOS gives no byte counters there.
fn ppp(id: &str, user: &str, session_id: &str) -> SessionRow {
    SessionRow {
        service: Service::Pppoe,
        id: id.into(),
        user: user.into(),
        address: Some("10.10.0.2".parse().unwrap()),
        mac: None,
        caller_id: "AA:BB:CC:00:00:99".into(),
        login_by: "pppoe".into(),
        session_id: session_id.into(),
        uptime_secs: Some(0),
        bytes_in: None,
        bytes_out: None,
    }
}

trait RowExt {
    fn up(self, secs: u64) -> Self;
    fn bytes(self, bytes_in: u64, bytes_out: u64) -> Self;
}

impl RowExt for SessionRow {
    fn up(mut self, secs: u64) -> Self {
        self.uptime_secs = Some(secs);
        self
    }

    fn bytes(mut self, bytes_in: u64, bytes_out: u64) -> Self {
        self.bytes_in = Some(bytes_in);
        self.bytes_out = Some(bytes_out);
        self
    }
}

/// A snapshot of a router that booted at `BOOT` and has nothing configured.
fn snap() -> Snapshot {
    Snapshot {
        router_boot: Some(Timestamp::from_unix(BOOT)),
        ..Snapshot::default()
    }
}

trait SnapExt {
    fn user(self, u: UserRow) -> Self;
    fn secret(self, u: UserRow) -> Self;
    fn online(self, s: SessionRow) -> Self;
    fn boot(self, boot: Option<Timestamp>) -> Self;
}

impl SnapExt for Snapshot {
    fn user(mut self, u: UserRow) -> Self {
        self.hotspot_users.push(u);
        self
    }

    fn secret(mut self, u: UserRow) -> Self {
        self.ppp_secrets.push(u);
        self
    }

    fn online(mut self, s: SessionRow) -> Self {
        match s.service {
            Service::Hotspot => self.hotspot_active.push(s),
            Service::Pppoe => self.ppp_active.push(s),
        }
        self
    }

    fn boot(mut self, boot: Option<Timestamp>) -> Self {
        self.router_boot = boot;
        self
    }
}

/// The agent: carries the committed state from one cycle to the next.
struct Agent {
    state: MonitorState,
    cfg: MonitorConfig,
    /// The last poll's managed users, for the listen path.
    users: UserIndex,
}

impl Agent {
    fn new() -> Self {
        Self::with(cfg())
    }

    /// An agent whose state file has already completed a cycle (so logins
    /// are not "seen at start"); see [`Agent::fresh`].
    fn with(cfg: MonitorConfig) -> Self {
        Agent {
            state: MonitorState {
                started: true,
                ..MonitorState::default()
            },
            cfg,
            users: UserIndex::default(),
        }
    }

    /// An agent on a brand-new state file.
    fn fresh() -> Self {
        Agent {
            state: MonitorState::default(),
            cfg: cfg(),
            users: UserIndex::default(),
        }
    }

    fn run(&mut self, snap: &Snapshot, now: Timestamp) -> StepOutput {
        let mut out = step(&self.state, snap, now, &self.cfg);
        settle_comments(&mut out.events, &out.actions);
        self.state = out.state.clone();
        self.users = UserIndex::of(snap, &self.cfg);
        out
    }

    /// Applies one listen change; returns its events and actions,
    /// asserting no warnings.
    fn listen(&mut self, change: ListenChange, now: Timestamp) -> (Vec<EventKind>, Vec<Action>) {
        let out = apply_listen(
            &self.state,
            &self.users,
            &change,
            now,
            &ClockNow::UNASSESSED,
            &self.cfg,
        );
        assert_eq!(out.warnings, Vec::<String>::new());
        self.state = out.state;
        let mut events = out.events;
        settle_comments(&mut events, &out.actions);
        (events, out.actions)
    }

    /// Runs a cycle and returns its events and actions, asserting no warnings.
    fn cycle(&mut self, snap: &Snapshot, now: Timestamp) -> (Vec<EventKind>, Vec<Action>) {
        let out = self.run(snap, now);
        assert_eq!(out.warnings, Vec::<String>::new());
        (out.events, out.actions)
    }

    /// Runs a cycle and returns its events, asserting no actions or warnings.
    fn events(&mut self, snap: &Snapshot, now: Timestamp) -> Vec<EventKind> {
        let (events, actions) = self.cycle(snap, now);
        assert_eq!(actions, vec![]);
        events
    }
}

/// The state as written to and read back from the state file.
/// An activation event carries the comment as written: checked here
/// against the same cycle's comment write (when there is one), then
/// blanked so the expected events in the tests need not spell it out.
fn settle_comments(events: &mut [EventKind], actions: &[Action]) {
    for e in events {
        let (EventKind::VoucherActivated { user, comment, .. }
        | EventKind::VoucherCorrected { user, comment, .. }) = e
        else {
            continue;
        };
        assert!(
            !comment.is_empty(),
            "activation event of {user} without its comment"
        );
        if let Some(written) = actions.iter().find_map(|a| match a {
            Action::SetComment {
                user: u, comment, ..
            } if u == user => Some(comment.render()),
            _ => None,
        }) {
            assert_eq!(
                comment.as_bytes(),
                &written[..],
                "{user}: event comment differs from the write"
            );
        }
        *comment = Name::default();
    }
}

fn persisted(state: &MonitorState) -> MonitorState {
    let bytes = postcard::to_allocvec(state).unwrap();
    postcard::from_bytes(&bytes).unwrap()
}

fn sref(s: &SessionRow) -> SessionRef {
    SessionRef {
        service: s.service,
        user: s.user.clone(),
        active_id: s.id,
        session_id: s.session_id.clone(),
    }
}

fn login(s: &SessionRow, profile: &str) -> EventKind {
    EventKind::Login {
        session: sref(s),
        address: s.address,
        mac: s.mac,
        caller_id: s.caller_id.clone(),
        login_by: s.login_by.clone(),
        profile: profile.into(),
        seen_at_start: false,
    }
}

/// A login found on the first cycle of a fresh state file.
fn login_at_start(s: &SessionRow, profile: &str) -> EventKind {
    match login(s, profile) {
        EventKind::Login {
            session,
            address,
            mac,
            caller_id,
            login_by,
            profile,
            ..
        } => EventKind::Login {
            session,
            address,
            mac,
            caller_id,
            login_by,
            profile,
            seen_at_start: true,
        },
        other => other,
    }
}

/// A logout whose final values are the ones in `s`.
fn logout(s: &SessionRow, reason: LogoutReason) -> EventKind {
    logout_with(
        s,
        reason,
        s.bytes_in,
        s.bytes_out,
        s.uptime_secs.unwrap_or(0),
    )
}

fn logout_with(
    s: &SessionRow,
    reason: LogoutReason,
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    uptime_secs: u64,
) -> EventKind {
    EventKind::Logout {
        session: sref(s),
        reason,
        bytes_in,
        bytes_out,
        uptime_secs,
    }
}

fn usage(s: &SessionRow) -> EventKind {
    EventKind::Usage {
        session: sref(s),
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        uptime_secs: s.uptime_secs.unwrap_or(0),
        unseen: false,
    }
}

fn activated(
    user: &str,
    batch_id: impl AsRef<[u8]>,
    valid_hours: u32,
    first: Timestamp,
) -> EventKind {
    EventKind::VoucherActivated {
        user: user.into(),
        batch_id: Name::new(batch_id),
        valid_hours: ValidHours::from_hours(valid_hours),
        first_login_at: first,
        expires_at: first.plus_hours(valid_hours),
        provisional: false,
        mac: None,
        estimated: false,
        comment: Name::default(),
    }
}

fn expired(user: &str, expires_at: Timestamp, action: ExpiredAction) -> EventKind {
    EventKind::VoucherExpired {
        user: user.into(),
        batch_id: "B1".into(),
        expires_at,
        action,
    }
}

fn manual(service: Service, user: &str, profile: &str, comment: impl AsRef<[u8]>) -> EventKind {
    EventKind::ManualUser {
        service,
        user: user.into(),
        profile: profile.into(),
        comment: Name::new(comment),
    }
}

fn set_comment(id: &str, user: &str, comment: &[u8]) -> Action {
    Action::SetComment {
        id: id.into(),
        user: user.into(),
        comment: CommentText::Bytes(Name::new(comment)),
    }
}

fn disable(id: &str, user: &str) -> Action {
    Action::DisableUser {
        id: id.into(),
        user: user.into(),
    }
}

fn remove(id: &str, user: &str) -> Action {
    Action::RemoveUser {
        id: id.into(),
        user: user.into(),
    }
}

fn kick(active_id: &str, user: &str) -> Action {
    Action::Kick {
        active_id: active_id.into(),
        user: user.into(),
    }
}

/// What `SystemComment::with_activation` makes of `raw`.
fn activation_bytes(raw: &[u8], first: Timestamp, expires: Timestamp) -> Name {
    match Comment::parse(raw) {
        Comment::System(meta) => Name::new(meta.with_activation(first, expires).to_bytes()),
        other => panic!("not a system comment: {other:?}"),
    }
}

fn session_keys(state: &MonitorState) -> Vec<(Service, Id)> {
    state.sessions.keys().copied().collect()
}

/// `(service, "*1A")` pairs as session keys.
fn keys(pairs: &[(Service, &str)]) -> Vec<(Service, Id)> {
    pairs.iter().map(|(s, id)| (*s, Id::from(*id))).collect()
}
