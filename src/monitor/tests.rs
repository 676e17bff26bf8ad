//! Tests of one monitoring cycle, driven through [`step`] only: snapshots
//! and `now` in, exact events, actions and warnings out.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{Action, MonitorConfig, MonitorState, SessionRow, Snapshot, StepOutput, UserRow, step};
use crate::clock::Timestamp;
use crate::comment::Comment;
use crate::event::{EventKind, ExpiredAction, LogoutReason, Service, SessionRef};

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
        hotspot_pattern: "*voucher*".to_owned(),
        pppoe_pattern: "*pppoe*".to_owned(),
        usage_secs: 300,
        expired_action: ExpiredAction::Disable,
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
        id: id.to_owned(),
        name: name.to_owned(),
        profile: profile.to_owned(),
        comment: comment.to_vec(),
        disabled: false,
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

fn disabled(mut u: UserRow) -> UserRow {
    u.disabled = true;
    u
}

/// A hotspot active entry: up 0 s, 0 bytes each way.
fn hs(id: &str, user: &str) -> SessionRow {
    SessionRow {
        service: Service::Hotspot,
        id: id.to_owned(),
        user: user.to_owned(),
        address: "10.5.50.10".to_owned(),
        mac: "AA:BB:CC:00:00:01".to_owned(),
        caller_id: String::new(),
        login_by: "http-chap".to_owned(),
        session_id: String::new(),
        uptime_secs: Some(0),
        bytes_in: Some(0),
        bytes_out: Some(0),
    }
}

/// A PPP active entry: RouterOS gives no byte counters there.
fn ppp(id: &str, user: &str, session_id: &str) -> SessionRow {
    SessionRow {
        service: Service::Pppoe,
        id: id.to_owned(),
        user: user.to_owned(),
        address: "10.10.0.2".to_owned(),
        mac: String::new(),
        caller_id: "AA:BB:CC:00:00:99".to_owned(),
        login_by: "pppoe".to_owned(),
        session_id: session_id.to_owned(),
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
}

impl Agent {
    fn new() -> Self {
        Self::with(cfg())
    }

    fn with(cfg: MonitorConfig) -> Self {
        Agent {
            state: MonitorState::default(),
            cfg,
        }
    }

    fn run(&mut self, snap: &Snapshot, now: Timestamp) -> StepOutput {
        let out = step(&self.state, snap, now, &self.cfg);
        self.state = out.state.clone();
        out
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
fn persisted(state: &MonitorState) -> MonitorState {
    let bytes = postcard::to_allocvec(state).unwrap();
    postcard::from_bytes(&bytes).unwrap()
}

fn sref(s: &SessionRow) -> SessionRef {
    SessionRef {
        service: s.service,
        user: s.user.clone(),
        active_id: s.id.clone(),
        session_id: s.session_id.clone(),
    }
}

fn login(s: &SessionRow, profile: &str) -> EventKind {
    EventKind::Login {
        session: sref(s),
        address: s.address.clone(),
        mac: s.mac.clone(),
        caller_id: s.caller_id.clone(),
        login_by: s.login_by.clone(),
        profile: profile.to_owned(),
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
    }
}

fn activated(user: &str, batch_id: &str, valid_hours: u32, first: Timestamp) -> EventKind {
    EventKind::VoucherActivated {
        user: user.to_owned(),
        batch_id: batch_id.to_owned(),
        valid_hours,
        first_login_at: first,
        expires_at: first.plus_hours(valid_hours),
    }
}

fn expired(user: &str, expires_at: Timestamp, action: ExpiredAction) -> EventKind {
    EventKind::VoucherExpired {
        user: user.to_owned(),
        batch_id: "B1".to_owned(),
        expires_at,
        action,
    }
}

fn manual(service: Service, user: &str, profile: &str, comment: &str) -> EventKind {
    EventKind::ManualUser {
        service,
        user: user.to_owned(),
        profile: profile.to_owned(),
        comment: comment.to_owned(),
    }
}

fn set_comment(id: &str, user: &str, comment: &[u8]) -> Action {
    Action::SetComment {
        id: id.to_owned(),
        user: user.to_owned(),
        comment: comment.to_vec(),
    }
}

fn disable(id: &str, user: &str) -> Action {
    Action::DisableUser {
        id: id.to_owned(),
        user: user.to_owned(),
    }
}

fn remove(id: &str, user: &str) -> Action {
    Action::RemoveUser {
        id: id.to_owned(),
        user: user.to_owned(),
    }
}

fn kick(active_id: &str, user: &str) -> Action {
    Action::Kick {
        active_id: active_id.to_owned(),
        user: user.to_owned(),
    }
}

/// What `SystemComment::with_activation` makes of `raw`.
fn activation_bytes(raw: &[u8], first: Timestamp, expires: Timestamp) -> Vec<u8> {
    match Comment::parse(raw) {
        Comment::System(meta) => meta.with_activation(first, expires).to_bytes(),
        other => panic!("not a system comment: {other:?}"),
    }
}

fn session_keys(state: &MonitorState) -> Vec<(Service, &str)> {
    state
        .sessions
        .keys()
        .map(|(s, id)| (*s, id.as_str()))
        .collect()
}

// ---------------------------------------------------------------------------
// Managed users
// ---------------------------------------------------------------------------

#[test]
fn only_sessions_of_managed_profiles_produce_events() {
    let v1 = hs("*10", "v1");
    let v2 = hs("*13", "v2");
    let c1 = ppp("*20", "c1", "0x1");
    let online = snap()
        .user(voucher("*U1", "v1", b""))
        .user(user("*U2", "guest", "default", b""))
        .user(user("*U3", "v2", "1d-voucher", b""))
        .secret(secret("*S1", "c1", b""))
        .secret(user("*S2", "static1", "static", b""))
        .online(v1.clone())
        .online(hs("*11", "guest"))
        // An active entry whose user is not in the list at all.
        .online(hs("*12", "ghost"))
        .online(v2.clone())
        .online(c1.clone())
        .online(ppp("*21", "static1", "0x2"));
    let mut agent = Agent::new();
    assert_eq!(
        agent.events(&online, at(0)),
        vec![
            login(&v1, VOUCHER_PROFILE),
            login(&v2, "1d-voucher"),
            login(&c1, PPPOE_PROFILE)
        ]
    );
    assert_eq!(
        session_keys(&agent.state),
        vec![
            (Service::Hotspot, "*10"),
            (Service::Hotspot, "*13"),
            (Service::Pppoe, "*20")
        ]
    );

    // Everybody leaves: only the managed sessions log out.
    let empty = Snapshot {
        hotspot_active: vec![],
        ppp_active: vec![],
        ..online
    };
    assert_eq!(
        agent.events(&empty, at(60)),
        vec![
            logout(&v1, LogoutReason::Gone),
            logout(&v2, LogoutReason::Gone),
            logout(&c1, LogoutReason::Gone)
        ]
    );
    assert!(agent.state.sessions.is_empty());
}

#[test]
fn unmanaged_users_alone_produce_nothing() {
    let s = snap()
        .user(user("*U2", "guest", "default", b""))
        .secret(user("*S2", "static1", "static", b""))
        .online(hs("*11", "guest").up(100).bytes(1, 2))
        .online(ppp("*21", "static1", "0x2"));
    let mut agent = Agent::new();
    for t in [0, 300, 600, 900] {
        assert_eq!(agent.events(&s, at(t)), vec![]);
    }
    assert!(agent.state.sessions.is_empty());
    assert_eq!(agent.events(&snap(), at(1000)), vec![]);
}

// ---------------------------------------------------------------------------
// Logins, logouts, re-logins
// ---------------------------------------------------------------------------

#[test]
fn hotspot_login_carries_ip_mac_login_by_and_profile() {
    let mut row = hs("*1A", "v1").up(42).bytes(100, 200);
    row.address = "10.5.50.7".to_owned();
    row.mac = "DE:AD:BE:EF:00:07".to_owned();
    row.login_by = "mac-cookie".to_owned();
    let s = snap().user(voucher("*U1", "v1", b"")).online(row);
    let mut agent = Agent::new();
    assert_eq!(
        agent.events(&s, at(0)),
        vec![EventKind::Login {
            session: SessionRef {
                service: Service::Hotspot,
                user: "v1".to_owned(),
                active_id: "*1A".to_owned(),
                session_id: String::new(),
            },
            address: "10.5.50.7".to_owned(),
            mac: "DE:AD:BE:EF:00:07".to_owned(),
            caller_id: String::new(),
            login_by: "mac-cookie".to_owned(),
            profile: VOUCHER_PROFILE.to_owned(),
        }]
    );
    let t = &agent.state.sessions[&(Service::Hotspot, "*1A".to_owned())];
    assert_eq!(
        (t.uptime_secs, t.bytes_in, t.bytes_out, t.last_report),
        (42, Some(100), Some(200), at(0))
    );
}

#[test]
fn pppoe_login_carries_caller_id_and_service() {
    let s = snap()
        .secret(secret("*S1", "cust1", PPPOE_COMMENT))
        .online(ppp("*2", "cust1", "0x81400001").up(3600));
    let mut agent = Agent::new();
    assert_eq!(
        agent.events(&s, at(0)),
        vec![EventKind::Login {
            session: SessionRef {
                service: Service::Pppoe,
                user: "cust1".to_owned(),
                active_id: "*2".to_owned(),
                session_id: "0x81400001".to_owned(),
            },
            address: "10.10.0.2".to_owned(),
            mac: String::new(),
            caller_id: "AA:BB:CC:00:00:99".to_owned(),
            login_by: "pppoe".to_owned(),
            profile: PPPOE_PROFILE.to_owned(),
        }]
    );
}

#[test]
fn logout_reports_last_counters_and_uptime() {
    let users = snap().user(voucher("*U1", "v1", b""));
    let mut agent = Agent::new();
    let first = hs("*1", "v1").up(10).bytes(100, 200);
    assert_eq!(
        agent.events(&users.clone().online(first.clone()), at(0)),
        vec![login(&first, VOUCHER_PROFILE)]
    );
    let last = hs("*1", "v1").up(70).bytes(5_000, 9_000);
    assert_eq!(agent.events(&users.clone().online(last), at(60)), vec![]);
    assert_eq!(
        agent.events(&users, at(120)),
        vec![logout_with(
            &first,
            LogoutReason::Gone,
            Some(5_000),
            Some(9_000),
            70
        )]
    );
    assert!(agent.state.sessions.is_empty());
    // Gone stays gone.
    assert_eq!(agent.events(&users, at(180)), vec![]);
}

#[test]
fn relogin_with_new_active_id_is_logout_then_login() {
    let users = snap().user(voucher("*U1", "v1", b""));
    let mut agent = Agent::new();
    let old = hs("*1", "v1").up(500).bytes(1, 2);
    agent.events(&users.clone().online(old.clone()), at(0));
    let new = hs("*2", "v1").up(5).bytes(3, 4);
    assert_eq!(
        agent.events(&users.online(new.clone()), at(60)),
        vec![
            logout(&old, LogoutReason::Relogin),
            login(&new, VOUCHER_PROFILE)
        ]
    );
    assert_eq!(session_keys(&agent.state), vec![(Service::Hotspot, "*2")]);
}

#[test]
fn relogin_with_changed_ppp_session_id_is_logout_then_login() {
    let users = snap().secret(secret("*S1", "c1", PPPOE_COMMENT));
    let mut agent = Agent::new();
    let old = ppp("*5", "c1", "0x81400001").up(1_000);
    agent.events(&users.clone().online(old.clone()), at(0));
    // Same `.id`, uptime even went up: only the session id tells.
    let new = ppp("*5", "c1", "0x81400002").up(2_000);
    assert_eq!(
        agent.events(&users.online(new.clone()), at(60)),
        vec![
            logout_with(&old, LogoutReason::Relogin, None, None, 1_000),
            login(&new, PPPOE_PROFILE)
        ]
    );
    assert_eq!(
        agent.state.sessions[&(Service::Pppoe, "*5".to_owned())].session_id,
        "0x81400002"
    );
}

#[test]
fn relogin_with_uptime_going_backwards_is_logout_then_login() {
    let users = snap().user(voucher("*U1", "v1", b""));
    let mut agent = Agent::new();
    let old = hs("*1", "v1").up(900).bytes(7, 8);
    agent.events(&users.clone().online(old.clone()), at(0));
    let new = hs("*1", "v1").up(30).bytes(1, 1);
    assert_eq!(
        agent.events(&users.online(new.clone()), at(60)),
        vec![
            logout(&old, LogoutReason::Relogin),
            login(&new, VOUCHER_PROFILE)
        ]
    );
    let t = &agent.state.sessions[&(Service::Hotspot, "*1".to_owned())];
    assert_eq!(
        (t.uptime_secs, t.bytes_in, t.last_report),
        (30, Some(1), at(60))
    );
}

#[test]
fn logouts_come_before_logins() {
    let users = snap()
        .user(voucher("*UA", "a", b""))
        .user(voucher("*UB", "b", b""))
        .user(voucher("*UC", "c", b""));
    let mut agent = Agent::new();
    let a = hs("*1", "a").up(10);
    let b = hs("*2", "b").up(20);
    agent.events(&users.clone().online(a.clone()).online(b.clone()), at(0));
    // c logs in, b re-logs in, a leaves; the active rows list the new ones first.
    let c = hs("*3", "c");
    let b2 = hs("*4", "b");
    assert_eq!(
        agent.events(&users.online(c.clone()).online(b2.clone()), at(60)),
        vec![
            logout(&a, LogoutReason::Gone),
            logout(&b, LogoutReason::Relogin),
            login(&c, VOUCHER_PROFILE),
            login(&b2, VOUCHER_PROFILE),
        ]
    );
}

#[test]
fn first_cycle_reports_running_sessions_as_logins() {
    let a = hs("*1", "a").up(86_000).bytes(10, 20);
    let s = snap().user(voucher("*UA", "a", b"")).online(a.clone());
    let mut agent = Agent::new();
    assert_eq!(agent.state.cycles, 0);
    assert_eq!(agent.events(&s, at(0)), vec![login(&a, VOUCHER_PROFILE)]);
    assert_eq!(agent.state.cycles, 1);
    assert_eq!(agent.events(&s, at(1)), vec![]);
    assert_eq!(agent.state.cycles, 2);
}

// ---------------------------------------------------------------------------
// Interim usage
// ---------------------------------------------------------------------------

#[test]
fn usage_every_usage_secs_and_not_more_often() {
    let users = snap().user(voucher("*U1", "v1", b""));
    let row = |t: u64| hs("*1", "v1").up(t).bytes(t * 10, t * 20);
    let mut agent = Agent::new();
    // None on the login cycle.
    assert_eq!(
        agent.events(&users.clone().online(row(0)), at(0)),
        vec![login(&row(0), VOUCHER_PROFILE)]
    );
    let mut seen = Vec::new();
    for t in (60..=660).step_by(60) {
        for e in agent.events(&users.clone().online(row(t)), at(t as i64)) {
            seen.push((t, e));
        }
    }
    assert_eq!(seen, vec![(300, usage(&row(300))), (600, usage(&row(600)))]);
    // A late poll reports once, and the interval restarts from it.
    assert_eq!(
        agent.events(&users.clone().online(row(1_000)), at(1_000)),
        vec![usage(&row(1_000))]
    );
    assert_eq!(
        agent.events(&users.clone().online(row(1_299)), at(1_299)),
        vec![]
    );
    assert_eq!(
        agent.events(&users.online(row(1_300)), at(1_300)),
        vec![usage(&row(1_300))]
    );
}

#[test]
fn no_usage_on_relogin_cycle() {
    let users = snap().user(voucher("*U1", "v1", b""));
    let mut agent = Agent::new();
    let old = hs("*1", "v1").up(10);
    agent.events(&users.clone().online(old.clone()), at(0));
    // The old session was due for an interim update, but it ended.
    let new = hs("*2", "v1").up(5);
    assert_eq!(
        agent.events(&users.clone().online(new.clone()), at(400)),
        vec![
            logout(&old, LogoutReason::Relogin),
            login(&new, VOUCHER_PROFILE)
        ]
    );
    assert_eq!(
        agent.events(&users.clone().online(new.clone()), at(699)),
        vec![]
    );
    assert_eq!(
        agent.events(&users.online(new.clone()), at(700)),
        vec![usage(&new)]
    );
}

// ---------------------------------------------------------------------------
// Values that did not parse
// ---------------------------------------------------------------------------

#[test]
fn unparsed_values_keep_previous_ones() {
    let users = snap().user(voucher("*U1", "v1", b""));
    let mut agent = Agent::new();
    let first = hs("*1", "v1").up(100).bytes(10, 20);
    agent.events(&users.clone().online(first.clone()), at(0));

    // Uptime and bytes-in did not parse; bytes-out did.
    let mut garbled = hs("*1", "v1");
    garbled.uptime_secs = None;
    garbled.bytes_in = None;
    garbled.bytes_out = Some(50);
    // Not a re-login (no uptime to compare), and usage reports the kept values.
    assert_eq!(
        agent.events(&users.clone().online(garbled), at(300)),
        vec![EventKind::Usage {
            session: sref(&first),
            bytes_in: Some(10),
            bytes_out: Some(50),
            uptime_secs: 100,
        }]
    );
    assert_eq!(
        agent.events(&users, at(360)),
        vec![logout_with(
            &first,
            LogoutReason::Gone,
            Some(10),
            Some(50),
            100
        )]
    );
}

#[test]
fn session_with_nothing_parsed_is_tracked() {
    let users = snap().user(voucher("*U1", "v1", b""));
    let mut agent = Agent::new();
    let mut blank = hs("*1", "v1");
    blank.uptime_secs = None;
    blank.bytes_in = None;
    blank.bytes_out = None;
    assert_eq!(
        agent.events(&users.clone().online(blank.clone()), at(0)),
        vec![login(&blank, VOUCHER_PROFILE)]
    );
    assert_eq!(
        agent.events(&users.clone().online(blank.clone()), at(60)),
        vec![]
    );
    // Values appear later: same session.
    assert_eq!(
        agent.events(
            &users.clone().online(hs("*1", "v1").up(120).bytes(1, 2)),
            at(120)
        ),
        vec![]
    );
    assert_eq!(
        agent.events(&users, at(180)),
        vec![logout_with(
            &blank,
            LogoutReason::Gone,
            Some(1),
            Some(2),
            120
        )]
    );
}

// ---------------------------------------------------------------------------
// Router reboot
// ---------------------------------------------------------------------------

/// Two sessions seen on a router booted at `BOOT`.
fn before_reboot() -> (Agent, Snapshot, SessionRow, SessionRow) {
    let users = snap()
        .user(voucher("*UA", "a", b""))
        .user(voucher("*UB", "b", b""))
        .user(voucher("*UC", "c", b""));
    let a = hs("*1", "a").up(100).bytes(1, 2);
    let b = hs("*2", "b").up(200).bytes(3, 4);
    let mut agent = Agent::new();
    agent.events(&users.clone().online(a.clone()).online(b.clone()), at(0));
    (agent, users, a, b)
}

#[test]
fn reboot_closes_gone_sessions_with_last_counters() {
    let (mut agent, users, a, b) = before_reboot();
    let rebooted = users.boot(Some(at(500)));
    assert_eq!(
        agent.events(&rebooted, at(600)),
        vec![
            logout(&a, LogoutReason::RouterReboot),
            logout(&b, LogoutReason::RouterReboot)
        ]
    );
    assert_eq!(agent.state.router_boot, Some(at(500)));
    assert_eq!(agent.events(&rebooted, at(660)), vec![]);
}

#[test]
fn reboot_with_id_reused_by_other_user_is_logout_then_login() {
    let (mut agent, users, a, b) = before_reboot();
    let c = hs("*1", "c").up(50);
    assert_eq!(
        agent.events(&users.online(c.clone()).boot(Some(at(500))), at(600)),
        vec![
            logout(&a, LogoutReason::RouterReboot),
            logout(&b, LogoutReason::RouterReboot),
            login(&c, VOUCHER_PROFILE),
        ]
    );
    assert_eq!(
        agent.state.sessions[&(Service::Hotspot, "*1".to_owned())].user,
        "c"
    );
}

#[test]
fn reboot_with_id_reused_by_same_user_is_logout_then_login() {
    let (mut agent, users, a, b) = before_reboot();
    let a2 = hs("*1", "a").up(30);
    assert_eq!(
        agent.events(&users.online(a2.clone()).boot(Some(at(500))), at(600)),
        vec![
            logout(&a, LogoutReason::RouterReboot),
            logout(&b, LogoutReason::RouterReboot),
            login(&a2, VOUCHER_PROFILE),
        ]
    );
}

#[test]
fn reboot_with_id_reused_by_same_user_and_higher_uptime_is_not_continued() {
    // The agent was away an hour; the router rebooted meanwhile and the same
    // user got the same `.id` again, now up longer than the old session was.
    let (mut agent, users, a, b) = before_reboot();
    let a2 = hs("*1", "a").up(900).bytes(9, 9);
    assert_eq!(
        agent.events(&users.online(a2.clone()).boot(Some(at(3_000))), at(3_900)),
        vec![
            logout(&a, LogoutReason::RouterReboot),
            logout(&b, LogoutReason::RouterReboot),
            login(&a2, VOUCHER_PROFILE),
        ]
    );
}

#[test]
fn boot_estimate_wobble_is_not_a_reboot() {
    let (mut agent, users, a, b) = before_reboot();
    // Within the 120 s tolerance either way: sessions continue or are plainly gone.
    let a_later = hs("*1", "a").up(160).bytes(5, 6);
    assert_eq!(
        agent.events(
            &users
                .clone()
                .online(a_later)
                .boot(Some(Timestamp::from_unix(BOOT + 120))),
            at(60)
        ),
        vec![logout(&b, LogoutReason::Gone)]
    );
    assert_eq!(
        agent.events(&users.boot(Some(Timestamp::from_unix(BOOT - 100))), at(120)),
        vec![logout_with(&a, LogoutReason::Gone, Some(5), Some(6), 160)]
    );
}

#[test]
fn unknown_boot_time_keeps_the_last_one() {
    let (mut agent, users, a, b) = before_reboot();
    assert_eq!(agent.state.router_boot, Some(Timestamp::from_unix(BOOT)));
    let unknown = users
        .clone()
        .online(hs("*1", "a").up(160).bytes(5, 6))
        .boot(None);
    assert_eq!(
        agent.events(&unknown, at(60)),
        vec![logout(&b, LogoutReason::Gone)]
    );
    assert_eq!(agent.state.router_boot, Some(Timestamp::from_unix(BOOT)));
    // A reboot is still told against the last known boot time.
    assert_eq!(
        agent.events(&users.boot(Some(at(100))), at(120)),
        vec![logout_with(
            &a,
            LogoutReason::RouterReboot,
            Some(5),
            Some(6),
            160
        )]
    );
}

// ---------------------------------------------------------------------------
// Idempotence and restarts
// ---------------------------------------------------------------------------

/// A busy but settled router: sessions, an activated voucher, an expired and
/// enforced one, a hand-made user.
fn settled() -> Snapshot {
    snap()
        .user(voucher("*U1", "v1", FRESH_ACTIVATED))
        .user(disabled(voucher("*U2", "v2", EXPIRES_AT_T0)))
        .user(voucher("*U3", "mk", MIKHMON))
        .secret(secret("*S1", "c1", PPPOE_COMMENT))
        .online(hs("*1", "v1").up(60).bytes(1, 2))
        .online(hs("*3", "mk").up(5))
        .online(ppp("*2", "c1", "0x1").up(10))
}

#[test]
fn same_snapshot_twice_yields_nothing_the_second_time() {
    let s = settled();
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&s, at(10));
    assert_eq!(
        events,
        vec![
            login(&s.hotspot_active[0], VOUCHER_PROFILE),
            login(&s.hotspot_active[1], VOUCHER_PROFILE),
            login(&s.ppp_active[0], PPPOE_PROFILE),
            expired("v2", at(0), ExpiredAction::Disable),
            manual(Service::Hotspot, "mk", VOUCHER_PROFILE, "vc-123-01.02.24-"),
        ]
    );
    // v2 is already disabled and has no session: nothing to do.
    assert_eq!(actions, vec![]);
    let state = agent.state.clone();
    assert_eq!(agent.cycle(&s, at(10)), (vec![], vec![]));
    assert_eq!(agent.cycle(&s, at(70)), (vec![], vec![]));
    // Nothing changed but the cycle count.
    assert_eq!(agent.state.cycles, state.cycles + 2);
    assert_eq!(
        MonitorState {
            cycles: 0,
            ..agent.state.clone()
        },
        MonitorState { cycles: 0, ..state }
    );
}

#[test]
fn restart_from_persisted_state_does_not_repeat_logins() {
    let users = snap()
        .user(voucher("*UA", "a", b""))
        .user(voucher("*UB", "b", b""));
    let a = hs("*1", "a").up(10);
    let b = hs("*2", "b").up(20).bytes(30, 40);
    let both = users.clone().online(a.clone()).online(b.clone());
    let mut agent = Agent::new();
    assert_eq!(
        agent.events(&both, at(0)),
        vec![login(&a, VOUCHER_PROFILE), login(&b, VOUCHER_PROFILE)]
    );
    let saved = persisted(&agent.state);
    assert_eq!(saved, agent.state);

    // Restart while nothing changed: no duplicate logins.
    let mut restarted = Agent::new();
    restarted.state = saved.clone();
    assert_eq!(restarted.events(&both, at(30)), vec![]);

    // Restart after b left: exactly one logout, then nothing.
    let mut restarted = Agent::new();
    restarted.state = saved.clone();
    let only_a = users.online(hs("*1", "a").up(130));
    assert_eq!(
        restarted.events(&only_a, at(120)),
        vec![logout(&b, LogoutReason::Gone)]
    );
    restarted.state = persisted(&restarted.state);
    assert_eq!(restarted.events(&only_a, at(150)), vec![]);

    // A crash before the commit replays from the same saved state: the same
    // single logout, not a second one on top of a committed first.
    let replay = step(&saved, &only_a, at(120), &cfg());
    assert_eq!(replay.events, vec![logout(&b, LogoutReason::Gone)]);
}

// ---------------------------------------------------------------------------
// Voucher activation
// ---------------------------------------------------------------------------

#[test]
fn first_login_activates_voucher_once_and_writes_comment() {
    let session = hs("*1", "v1");
    let fresh = snap()
        .user(voucher("*U1", "v1", FRESH))
        .online(session.clone());
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&fresh, at(0));
    assert_eq!(
        events,
        vec![
            login(&session, VOUCHER_PROFILE),
            activated("v1", "B1", 24, at(0))
        ]
    );
    assert_eq!(actions, vec![set_comment("*U1", "v1", FRESH_ACTIVATED)]);
    // The literal is what with_activation makes of the router comment.
    assert_eq!(activation_bytes(FRESH, at(0), at(86_400)), FRESH_ACTIVATED);

    // The write failed: the same comment (same times) again, no second event.
    assert_eq!(
        agent.cycle(&fresh, at(60)),
        (vec![], vec![set_comment("*U1", "v1", FRESH_ACTIVATED)])
    );
    // Still failing after the session ended: the logout, and the same retry.
    let fresh_offline = snap().user(voucher("*U1", "v1", FRESH));
    assert_eq!(
        agent.cycle(&fresh_offline, at(120)),
        (
            vec![logout(&session, LogoutReason::Gone)],
            vec![set_comment("*U1", "v1", FRESH_ACTIVATED)]
        )
    );

    // The router shows it now: nothing more, nothing remembered.
    let written = snap()
        .user(voucher("*U1", "v1", FRESH_ACTIVATED))
        .online(hs("*2", "v1"));
    assert_eq!(
        agent.cycle(&written, at(180)),
        (vec![login(&hs("*2", "v1"), VOUCHER_PROFILE)], vec![])
    );
    assert_eq!(agent.cycle(&written, at(240)), (vec![], vec![]));
    assert!(agent.state.vouchers.is_empty());
}

#[test]
fn activation_retry_survives_a_restart() {
    let fresh = snap()
        .user(voucher("*U1", "v1", FRESH))
        .online(hs("*1", "v1"));
    let mut agent = Agent::new();
    agent.cycle(&fresh, at(0));
    let mut restarted = Agent::new();
    restarted.state = persisted(&agent.state);
    assert_eq!(
        restarted.cycle(&fresh, at(120)),
        (vec![], vec![set_comment("*U1", "v1", FRESH_ACTIVATED)])
    );
}

#[test]
fn activation_keeps_odd_bytes_and_pads_missing_fields() {
    let raw: &[u8] = b"VOUCHER_SYSTEM|B\xe92|5000|4000|3";
    let s = snap()
        .user(voucher("*U1", "v1", raw))
        .online(hs("*1", "v1"));
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&s, at(0));
    let expected: &[u8] =
        b"VOUCHER_SYSTEM|B\xe92|5000|4000|3||||2024-01-31T12:00:00Z|2024-01-31T15:00:00Z";
    assert_eq!(activation_bytes(raw, at(0), at(3 * 3_600)), expected);
    assert_eq!(events[1..], [activated("v1", "B\u{fffd}2", 3, at(0))]);
    assert_eq!(actions, vec![set_comment("*U1", "v1", expected)]);
}

#[test]
fn activation_keeps_extra_fields_after_expires_at() {
    let raw: &[u8] = b"VOUCHER_SYSTEM|B1|5000|4000| 12 |V1|2024-01-30|admin|||extra|\xff\xfe";
    let s = snap()
        .user(voucher("*U1", "v1", raw))
        .online(hs("*1", "v1"));
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&s, at(0));
    let expected: &[u8] =
        b"VOUCHER_SYSTEM|B1|5000|4000| 12 |V1|2024-01-30|admin|2024-01-31T12:00:00Z|2024-02-01T00:00:00Z|extra|\xff\xfe";
    assert_eq!(activation_bytes(raw, at(0), at(12 * 3_600)), expected);
    assert_eq!(events[1..], [activated("v1", "B1", 12, at(0))]);
    assert_eq!(actions, vec![set_comment("*U1", "v1", expected)]);
}

#[test]
fn activation_uses_the_agent_clock_only() {
    // A router whose clock says 1970 (no NTP): created_date and the router's
    // own idea of time play no part; first_login_at is the agent's `now`.
    let raw: &[u8] = b"VOUCHER_SYSTEM|B1|5000|4000|24|V1|jan/01/1970 00:00:05|admin||";
    let now = Timestamp::from_unix(1_717_200_000); // 2024-06-01T00:00:00Z
    let s = snap()
        .user(voucher("*U1", "v1", raw))
        .online(hs("*1", "v1").up(5))
        .boot(None);
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&s, now);
    let expected: &[u8] =
        b"VOUCHER_SYSTEM|B1|5000|4000|24|V1|jan/01/1970 00:00:05|admin|2024-06-01T00:00:00Z|2024-06-02T00:00:00Z";
    assert_eq!(events[1..], [activated("v1", "B1", 24, now)]);
    assert_eq!(actions, vec![set_comment("*U1", "v1", expected)]);
}

#[test]
fn no_activation_without_a_session_or_when_already_activated() {
    let mut agent = Agent::new();
    // Not logged in yet.
    assert_eq!(
        agent.cycle(&snap().user(voucher("*U1", "v1", FRESH)), at(0)),
        (vec![], vec![])
    );
    // Activated by the router comment already (e.g. by a previous install).
    let s = snap()
        .user(voucher("*U1", "v1", FRESH_ACTIVATED))
        .online(hs("*1", "v1"));
    assert_eq!(
        agent.cycle(&s, at(60)),
        (vec![login(&hs("*1", "v1"), VOUCHER_PROFILE)], vec![])
    );
    assert!(agent.state.vouchers.is_empty());
}

#[test]
fn unusable_valid_hours_warns_and_does_nothing() {
    for raw in [
        &b"VOUCHER_SYSTEM|B1|5000|4000|abc|V1|2024-01-30|admin||"[..],
        b"VOUCHER_SYSTEM|B1|5000|4000||V1",
        b"VOUCHER_SYSTEM|B1",
        b"VOUCHER_SYSTEM|B1|5000|4000|-1",
    ] {
        let s = snap()
            .user(voucher("*U1", "v1", raw))
            .online(hs("*1", "v1"));
        let mut agent = Agent::new();
        let out = agent.run(&s, at(0));
        assert_eq!(
            out.events,
            vec![login(&hs("*1", "v1"), VOUCHER_PROFILE)],
            "{raw:?}"
        );
        assert_eq!(out.actions, vec![], "{raw:?}");
        assert_eq!(
            out.warnings,
            vec![
                "voucher \"v1\" has no usable valid_hours in its comment; not activating it"
                    .to_owned()
            ]
        );
        assert!(agent.state.vouchers.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Voucher expiry
// ---------------------------------------------------------------------------

#[test]
fn expiry_disables_and_kicks_until_the_router_confirms() {
    let u = || voucher("*U1", "v1", EXPIRES_AT_T0);
    let s1 = hs("*1", "v1").up(100).bytes(10, 20);
    let mut agent = Agent::new();
    // A second before expiry: just the session.
    assert_eq!(
        agent.cycle(&snap().user(u()).online(s1.clone()), at(-1)),
        (vec![login(&s1, VOUCHER_PROFILE)], vec![])
    );
    // At expiry: one event, disable and kick.
    assert_eq!(
        agent.cycle(&snap().user(u()).online(s1.clone()), at(0)),
        (
            vec![expired("v1", at(0), ExpiredAction::Disable)],
            vec![disable("*U1", "v1"), kick("*1", "v1")]
        )
    );
    // Nothing happened on the router: same actions, no new event.
    assert_eq!(
        agent.cycle(&snap().user(u()).online(s1.clone()), at(60)),
        (vec![], vec![disable("*U1", "v1"), kick("*1", "v1")])
    );
    // Disabled, session still there: only the kick.
    assert_eq!(
        agent.cycle(&snap().user(disabled(u())).online(s1.clone()), at(120)),
        (vec![], vec![kick("*1", "v1")])
    );
    // Disabled and kicked: the logout says so; enforced.
    assert_eq!(
        agent.cycle(&snap().user(disabled(u())), at(180)),
        (vec![logout(&s1, LogoutReason::Kicked)], vec![])
    );
    assert!(agent.state.vouchers["v1"].enforced);
    assert_eq!(
        agent.cycle(&snap().user(disabled(u())), at(240)),
        (vec![], vec![])
    );
    // The operator re-enables it: left alone, and its sessions are its own.
    assert_eq!(agent.cycle(&snap().user(u()), at(300)), (vec![], vec![]));
    let s2 = hs("*2", "v1").up(5);
    assert_eq!(
        agent.cycle(&snap().user(u()).online(s2.clone()), at(360)),
        (vec![login(&s2, VOUCHER_PROFILE)], vec![])
    );
    assert_eq!(
        agent.cycle(&snap().user(u()), at(420)),
        (vec![logout(&s2, LogoutReason::Gone)], vec![])
    );
}

#[test]
fn expiry_kicks_every_session_of_the_user_only() {
    let s = snap()
        .user(voucher("*U1", "v1", EXPIRES_AT_T0))
        .user(voucher("*U2", "v2", FRESH_ACTIVATED))
        .online(hs("*1", "v1"))
        .online(hs("*2", "v2"))
        .online(hs("*3", "v1"));
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&s, at(0));
    assert_eq!(events[3..], [expired("v1", at(0), ExpiredAction::Disable)]);
    assert_eq!(
        actions,
        vec![disable("*U1", "v1"), kick("*1", "v1"), kick("*3", "v1")]
    );
    // Kicked sessions say Kicked; the other user's logout is Gone.
    let after = snap()
        .user(disabled(voucher("*U1", "v1", EXPIRES_AT_T0)))
        .user(voucher("*U2", "v2", FRESH_ACTIVATED));
    assert_eq!(
        agent.cycle(&after, at(60)),
        (
            vec![
                logout(&hs("*1", "v1"), LogoutReason::Kicked),
                logout(&hs("*2", "v2"), LogoutReason::Gone),
                logout(&hs("*3", "v1"), LogoutReason::Kicked),
            ],
            vec![]
        )
    );
}

#[test]
fn expiry_with_remove_until_the_user_is_gone() {
    let mut agent = Agent::with(cfg_remove());
    let s1 = hs("*1", "v1").up(100).bytes(10, 20);
    let present = snap()
        .user(voucher("*U1", "v1", EXPIRES_AT_T0))
        .online(s1.clone());
    let (events, actions) = agent.cycle(&present, at(0));
    assert_eq!(
        (events, actions),
        (
            vec![
                login(&s1, VOUCHER_PROFILE),
                expired("v1", at(0), ExpiredAction::Remove)
            ],
            vec![kick("*1", "v1"), remove("*U1", "v1")]
        )
    );
    assert_eq!(
        agent.cycle(&present, at(60)),
        (vec![], vec![kick("*1", "v1"), remove("*U1", "v1")])
    );
    // Disabled by someone, no session: still to be removed.
    let disabled_only = snap().user(disabled(voucher("*U1", "v1", EXPIRES_AT_T0)));
    assert_eq!(
        agent.cycle(&disabled_only, at(120)),
        (
            vec![logout(&s1, LogoutReason::Kicked)],
            vec![remove("*U1", "v1")]
        )
    );
    // Gone: the entry is dropped, nothing more.
    assert_eq!(agent.cycle(&snap(), at(180)), (vec![], vec![]));
    assert!(agent.state.vouchers.is_empty());
    assert_eq!(agent.cycle(&snap(), at(240)), (vec![], vec![]));
}

#[test]
fn removed_user_and_session_gone_together_logs_out_as_kicked() {
    let mut agent = Agent::with(cfg_remove());
    let s1 = hs("*1", "v1").up(100).bytes(10, 20);
    agent.cycle(
        &snap()
            .user(voucher("*U1", "v1", EXPIRES_AT_T0))
            .online(s1.clone()),
        at(0),
    );
    assert_eq!(
        agent.cycle(&snap(), at(60)),
        (vec![logout(&s1, LogoutReason::Kicked)], vec![])
    );
    assert!(agent.state.vouchers.is_empty());
}

#[test]
fn expiry_from_first_login_plus_valid_hours() {
    let raw: &[u8] = b"VOUCHER_SYSTEM|B1|5000|4000|2|V1|2024-01-30|admin|2024-01-31T12:00:00Z|";
    let s = snap().user(voucher("*U1", "v1", raw));
    let mut agent = Agent::new();
    assert_eq!(agent.cycle(&s, at(7_199)), (vec![], vec![]));
    assert_eq!(
        agent.cycle(&s, at(7_200)),
        (
            vec![expired("v1", at(7_200), ExpiredAction::Disable)],
            vec![disable("*U1", "v1")]
        )
    );
    let done = snap().user(disabled(voucher("*U1", "v1", raw)));
    assert_eq!(agent.cycle(&done, at(7_260)), (vec![], vec![]));
    assert!(agent.state.vouchers["v1"].enforced);
    assert_eq!(agent.cycle(&s, at(7_320)), (vec![], vec![]));
}

#[test]
fn expiry_from_an_activation_the_router_never_stored() {
    let raw: &[u8] = b"VOUCHER_SYSTEM|B1|5000|4000|1|V1|2024-01-30|admin||";
    let written: &[u8] = b"VOUCHER_SYSTEM|B1|5000|4000|1|V1|2024-01-30|admin|2024-01-31T12:00:00Z|2024-01-31T13:00:00Z";
    let session = hs("*1", "v1");
    let s = snap()
        .user(voucher("*U1", "v1", raw))
        .online(session.clone());
    // No interim updates to get in the way.
    let mut agent = Agent::with(MonitorConfig {
        usage_secs: 100_000,
        ..cfg()
    });
    assert_eq!(
        agent.cycle(&s, at(0)),
        (
            vec![
                login(&session, VOUCHER_PROFILE),
                activated("v1", "B1", 1, at(0))
            ],
            vec![set_comment("*U1", "v1", written)]
        )
    );
    assert_eq!(
        agent.cycle(&s, at(3_599)),
        (vec![], vec![set_comment("*U1", "v1", written)])
    );
    assert_eq!(
        agent.cycle(&s, at(3_600)),
        (
            vec![expired("v1", at(3_600), ExpiredAction::Disable)],
            vec![
                set_comment("*U1", "v1", written),
                disable("*U1", "v1"),
                kick("*1", "v1")
            ]
        )
    );
}

#[test]
fn extended_voucher_expires_again() {
    let mut agent = Agent::new();
    let done = snap().user(disabled(voucher("*U1", "v1", EXPIRES_AT_T0)));
    assert_eq!(
        agent.cycle(&done, at(0)),
        (vec![expired("v1", at(0), ExpiredAction::Disable)], vec![])
    );
    // The operator extends it by a day and re-enables it.
    let extended: &[u8] =
        b"VOUCHER_SYSTEM|B1|5000|4000|24|V1|2024-01-30|admin|2024-01-30T12:00:00Z|2024-02-01T12:00:00Z";
    let s1 = hs("*1", "v1");
    let online = snap()
        .user(voucher("*U1", "v1", extended))
        .online(s1.clone());
    assert_eq!(
        agent.cycle(&snap().user(voucher("*U1", "v1", extended)), at(600)),
        (vec![], vec![])
    );
    assert_eq!(
        agent.cycle(&online, at(700)),
        (vec![login(&s1, VOUCHER_PROFILE)], vec![])
    );
    assert_eq!(agent.cycle(&online, at(86_399)), (vec![usage(&s1)], vec![]));
    assert_eq!(
        agent.cycle(&online, at(86_400)),
        (
            vec![expired("v1", at(86_400), ExpiredAction::Disable)],
            vec![disable("*U1", "v1"), kick("*1", "v1")]
        )
    );
    let done = snap().user(disabled(voucher("*U1", "v1", extended)));
    assert_eq!(
        agent.cycle(&done, at(86_460)),
        (vec![logout(&s1, LogoutReason::Kicked)], vec![])
    );
    assert_eq!(agent.cycle(&done, at(86_520)), (vec![], vec![]));
}

#[test]
fn already_disabled_at_expiry_needs_no_action() {
    let mut agent = Agent::new();
    let done = snap().user(disabled(voucher("*U1", "v1", EXPIRES_AT_T0)));
    assert_eq!(
        agent.cycle(&done, at(5)),
        (vec![expired("v1", at(0), ExpiredAction::Disable)], vec![])
    );
    assert_eq!(agent.cycle(&done, at(65)), (vec![], vec![]));
}

// ---------------------------------------------------------------------------
// Foreign comments and PPPoE secrets
// ---------------------------------------------------------------------------

#[test]
fn foreign_comments_are_flagged_once_and_never_rewritten() {
    let vc = hs("*1", "vc1").up(10);
    let c2 = ppp("*P2", "c2", "0x2");
    let all = snap()
        .user(voucher("*U1", "vc1", MIKHMON))
        .user(voucher("*U2", "v2", b""))
        .user(voucher("*U3", "v3", FRESH_ACTIVATED))
        .user(user("*U4", "h4", "default", b"HOTSPOT_SYSTEM|x"))
        .user(user("*U5", "note", "default", b"customer Budi \xff"))
        .secret(secret("*S1", "c1", PPPOE_COMMENT))
        .secret(secret("*S2", "c2", b"manual pppoe"))
        .secret(secret("*S3", "c3", b""))
        .online(vc.clone())
        .online(c2.clone());
    let mut agent = Agent::new();
    assert_eq!(
        agent.cycle(&all, at(0)),
        (
            vec![
                login(&vc, VOUCHER_PROFILE),
                login(&c2, PPPOE_PROFILE),
                manual(Service::Hotspot, "vc1", VOUCHER_PROFILE, "vc-123-01.02.24-"),
                manual(
                    Service::Hotspot,
                    "note",
                    "default",
                    "customer Budi \u{fffd}"
                ),
                manual(Service::Pppoe, "c2", PPPOE_PROFILE, "manual pppoe"),
            ],
            vec![]
        )
    );
    let flagged: BTreeSet<(Service, String)> = [
        (Service::Hotspot, "note".to_owned()),
        (Service::Hotspot, "vc1".to_owned()),
        (Service::Pppoe, "c2".to_owned()),
    ]
    .into();
    assert_eq!(agent.state.flagged_manual, flagged);
    // Not every cycle.
    for t in [60, 120, 180] {
        assert_eq!(agent.cycle(&all, at(t)), (vec![], vec![]));
    }

    // vc1 is deleted: forgotten. Recreated: flagged again.
    let without = Snapshot {
        hotspot_users: all.hotspot_users[1..].to_vec(),
        hotspot_active: vec![],
        ..all.clone()
    };
    assert_eq!(
        agent.cycle(&without, at(240)),
        (vec![logout(&vc, LogoutReason::Gone)], vec![])
    );
    assert!(
        !agent
            .state
            .flagged_manual
            .contains(&(Service::Hotspot, "vc1".to_owned()))
    );
    assert_eq!(
        agent.cycle(&without.user(voucher("*U9", "vc1", MIKHMON)), at(290)),
        (
            vec![manual(
                Service::Hotspot,
                "vc1",
                VOUCHER_PROFILE,
                "vc-123-01.02.24-"
            )],
            vec![]
        )
    );
}

#[test]
fn same_name_in_hotspot_and_ppp_flagged_separately() {
    let s = snap()
        .user(voucher("*U1", "x", b"note"))
        .secret(secret("*S1", "x", b"note"));
    let mut agent = Agent::new();
    assert_eq!(
        agent.events(&s, at(0)),
        vec![
            manual(Service::Hotspot, "x", VOUCHER_PROFILE, "note"),
            manual(Service::Pppoe, "x", PPPOE_PROFILE, "note"),
        ]
    );
    // Deleting the secret forgets only that one.
    let hotspot_only = snap().user(voucher("*U1", "x", b"note"));
    assert_eq!(agent.events(&hotspot_only, at(60)), vec![]);
    assert_eq!(
        agent.events(&s, at(120)),
        vec![manual(Service::Pppoe, "x", PPPOE_PROFILE, "note")]
    );
}

#[test]
fn pppoe_system_comments_are_never_rewritten() {
    let c1 = ppp("*P1", "c1", "0x1").up(10);
    let short = ppp("*P2", "c2", "0x2").up(10);
    let misplaced = ppp("*P3", "c3", "0x3").up(10);
    let hs_pppoe = hs("*1", "h1");
    let s = snap()
        .secret(secret("*S1", "c1", PPPOE_COMMENT))
        .secret(secret("*S2", "c2", b"PPPOE_SYSTEM|PB"))
        // Our voucher format on a PPP secret: vouchers are hotspot only.
        .secret(secret("*S3", "c3", FRESH))
        // The PPPoE format on a hotspot user in the voucher profile.
        .user(voucher(
            "*U1",
            "h1",
            b"PPPOE_SYSTEM|PB|1|1|CUST|SUB|2024-01-01|ops",
        ))
        .online(c1.clone())
        .online(short.clone())
        .online(misplaced.clone())
        .online(hs_pppoe.clone());
    let mut agent = Agent::new();
    assert_eq!(
        agent.cycle(&s, at(0)),
        (
            vec![
                login(&hs_pppoe, VOUCHER_PROFILE),
                login(&c1, PPPOE_PROFILE),
                login(&short, PPPOE_PROFILE),
                login(&misplaced, PPPOE_PROFILE),
            ],
            vec![]
        )
    );
    for t in [60, 120, 100_000] {
        let (_, actions) = agent.cycle(&s, at(t));
        assert_eq!(actions, vec![]);
    }
    assert!(agent.state.vouchers.is_empty());
    assert!(agent.state.flagged_manual.is_empty());
}

#[test]
fn action_user_names_the_user() {
    let actions = [
        set_comment("*U1", "a", b""),
        disable("*U1", "b"),
        remove("*U1", "c"),
        kick("*1", "d"),
    ];
    let users: Vec<&str> = actions.iter().map(Action::user).collect();
    assert_eq!(users, ["a", "b", "c", "d"]);
}

// ---------------------------------------------------------------------------
// Property: logins and logouts balance
// ---------------------------------------------------------------------------

/// One user's presence in a cycle: `.id` choice, PPP session id choice,
/// uptime, bytes (None = did not parse).
type Presence = Option<(u8, u8, Option<u64>, Option<u64>)>;

/// Hotspot users (the last one unmanaged), then PPP secrets.
const HS_USERS: [&str; 4] = ["u0", "u1", "u2", "x"];
const PPP_USERS: [&str; 2] = ["p0", "p1"];

fn cycle_snapshot(presence: &[Presence], boot: u8) -> Snapshot {
    let mut s = snap()
        .user(voucher("*U0", "u0", b""))
        .user(voucher("*U1", "u1", MIKHMON))
        // Valid for 0 hours: expires (and is kicked) as soon as it is activated.
        .user(voucher("*U2", "u2", b"VOUCHER_SYSTEM|B1|1|1|0"))
        .user(user("*U3", "x", "default", b""))
        .secret(secret("*S0", "p0", PPPOE_COMMENT))
        .secret(secret("*S1", "p1", b""))
        .boot(match boot {
            0 => Some(Timestamp::from_unix(BOOT)),
            1 => Some(Timestamp::from_unix(BOOT + 60)),
            2 => None,
            _ => Some(Timestamp::from_unix(BOOT + 10_000)),
        });
    let mut used = BTreeSet::new();
    let names = HS_USERS
        .iter()
        .map(|n| (Service::Hotspot, *n))
        .chain(PPP_USERS.iter().map(|n| (Service::Pppoe, *n)));
    for ((service, name), p) in names.zip(presence) {
        let Some((id, session, uptime, bytes)) = *p else {
            continue;
        };
        // `.id`s are unique within a table, but may move between users.
        if !used.insert((service, id)) {
            continue;
        }
        let id = format!("*{id:X}");
        let mut row = match service {
            Service::Hotspot => hs(&id, name),
            Service::Pppoe => ppp(&id, name, &format!("0x{session}")),
        };
        row.uptime_secs = uptime;
        row.bytes_in = bytes;
        row.bytes_out = bytes.map(|b| b / 2);
        s = s.online(row);
    }
    s
}

fn presence() -> impl Strategy<Value = Presence> {
    proptest::option::of((
        0u8..4,
        0u8..2,
        proptest::option::weighted(0.9, 0u64..2_000),
        proptest::option::weighted(0.9, 0u64..1_000_000),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn logins_minus_logouts_equals_tracked_sessions(
        cycles in proptest::collection::vec(
            (proptest::collection::vec(presence(), 6), 0u8..5, 1i64..700, any::<bool>()),
            1..16,
        ),
    ) {
        let cfg = cfg();
        let mut state = MonitorState::default();
        let mut now = at(0);
        // Sessions logged in and not yet out, by (service, `.id`).
        let mut open: BTreeMap<(Service, String), SessionRef> = BTreeMap::new();
        let (mut logins, mut logouts) = (0usize, 0usize);
        for (presence, boot, gap, restart) in cycles {
            now = now.plus_secs(gap);
            let snap = cycle_snapshot(&presence, boot);
            let out = step(&state, &snap, now, &cfg);
            for event in &out.events {
                match event {
                    EventKind::Login { session, .. } => {
                        prop_assert_ne!(session.user.as_str(), "x");
                        let key = (session.service, session.active_id.clone());
                        prop_assert_eq!(open.insert(key, session.clone()), None);
                        logins += 1;
                    }
                    EventKind::Logout { session, .. } => {
                        let key = (session.service, session.active_id.clone());
                        let opened = open.remove(&key);
                        prop_assert_eq!(opened.as_ref(), Some(session));
                        logouts += 1;
                    }
                    EventKind::Usage { session, .. } => {
                        let key = (session.service, session.active_id.clone());
                        prop_assert_eq!(open.get(&key), Some(session));
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(logins - logouts, out.state.sessions.len());
            let tracked: Vec<_> = out.state.sessions.keys().cloned().collect();
            let opened: Vec<_> = open.keys().cloned().collect();
            prop_assert_eq!(tracked, opened);
            // The same snapshot again at the same time: nothing new.
            let again = step(&out.state, &snap, now, &cfg);
            prop_assert_eq!(again.events, vec![]);
            state = if restart { persisted(&out.state) } else { out.state };
        }
    }
}
