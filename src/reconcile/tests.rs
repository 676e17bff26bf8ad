//! Pure reconciliation tests: one per case of the issue.

use super::*;
use crate::clock::Timestamp;
use crate::event::mask_passwords;
use crate::event::{EventKind, Service};
use crate::monitor::{MonitorState, SessionRow, UserRow, VoucherProgress};
use crate::name::{Id, Name};
use crate::valid_hours::ValidHours;

const NOW: i64 = 1_800_000_000;

fn n(s: &str) -> Name {
    Name::new(s.as_bytes())
}

fn user(id: u64, name: &str, profile: &str, comment: &str, disabled: bool) -> UserRow {
    UserRow {
        id: Id(id),
        name: n(name),
        profile: n(profile),
        comment: n(comment),
        disabled,
        totals: None,
    }
}

fn ppp_session(id: u64, name: &str, uptime: u64) -> SessionRow {
    SessionRow {
        service: Service::Pppoe,
        id: Id(id),
        user: n(name),
        address: None,
        mac: None,
        caller_id: Name::empty(),
        login_by: Name::empty(),
        session_id: Name::empty(),
        uptime_secs: Some(uptime),
        bytes_in: None,
        bytes_out: None,
    }
}

fn voucher(code: &str, status: VoucherStatus, comment: &str) -> DesiredVoucher {
    DesiredVoucher {
        code: n(code),
        password: Password(Some(n("pw"))),
        profile: n("voucher-1h"),
        comment: n(comment),
        status,
        intent_at: None,
    }
}

fn sub(user: &str, status: SubscriptionStatus) -> DesiredSubscription {
    DesiredSubscription {
        user: n(user),
        password: Password(Some(n("pw"))),
        profile: n("pppoe-10M"),
        comment: n("PPPOE_SYSTEM|b|||c1|s1||"),
        status,
        intent_at: None,
    }
}

fn cfg(mode: SuspendMode) -> ReconcileConfig {
    ReconcileConfig {
        hotspot_pattern: "*voucher*".into(),
        pppoe_pattern: "*pppoe*".into(),
        suspend_mode: mode,
        isolir_profile: n(if mode == SuspendMode::Isolir {
            "isolir"
        } else {
            ""
        }),
    }
}

fn desired(v: Vec<DesiredVoucher>, s: Vec<DesiredSubscription>) -> DesiredState {
    DesiredState {
        vouchers: v,
        subscriptions: s,
        version: "1".into(),
    }
}

fn run(
    prev: &ReconcileState,
    lists: &RouterLists,
    d: &DesiredState,
    mode: SuspendMode,
    at: i64,
) -> Plan {
    plan(
        prev,
        &Intents::default(),
        lists,
        Some(d),
        &MonitorState::default(),
        Timestamp::from_unix(at),
        &cfg(mode),
    )
}

const VC: &str = "VOUCHER_SYSTEM|B1|5000|4000|1|v1|2026-01-01|admin||";

#[test]
fn missing_voucher_is_created_with_password_profile_comment() {
    let d = desired(vec![voucher("V1", VoucherStatus::Created, VC)], vec![]);
    let p = run(
        &ReconcileState::default(),
        &RouterLists::default(),
        &d,
        SuspendMode::Disable,
        NOW,
    );
    assert_eq!(
        p.actions,
        vec![SyncAction::CreateUser {
            service: Service::Hotspot,
            name: n("V1"),
            password: Password(Some(n("pw"))),
            profile: n("voucher-1h"),
            comment: n(VC),
            disabled: false,
        }]
    );
    assert!(p.events.is_empty());
    // Once on the router: nothing more to do.
    let lists = RouterLists {
        hotspot_users: vec![user(1, "V1", "voucher-1h", VC, false)],
        ..RouterLists::default()
    };
    let p2 = run(&p.state, &lists, &d, SuspendMode::Disable, NOW + 1);
    assert!(p2.actions.is_empty() && p2.events.is_empty(), "{p2:?}");
}

#[test]
fn expired_vouchers_are_never_recreated() {
    let past = "VOUCHER_SYSTEM|B1|5000|4000|1|v1|2026-01-01|admin|2027-01-01T00:00:00Z|2027-01-01T01:00:00Z";
    let d = desired(
        vec![
            voucher("E1", VoucherStatus::Expired, VC),
            voucher("E2", VoucherStatus::Active, past),
            voucher("E3", VoucherStatus::Created, VC),
        ],
        vec![],
    );
    // E3: the monitor expired it here (removed at expiry) after the
    // desired state was fetched.
    let mut monitor = MonitorState::default();
    monitor.vouchers.insert(
        n("E3"),
        VoucherProgress {
            expired_for: Some(Timestamp::from_unix(NOW - 10)),
            ..VoucherProgress::default()
        },
    );
    let lists = RouterLists {
        hotspot_users: vec![user(3, "E3", "voucher-1h", VC, true)],
        ..RouterLists::default()
    };
    let c = cfg(SuspendMode::Disable);
    let now = Timestamp::from_unix(NOW);
    let p = plan(
        &ReconcileState::default(),
        &Intents::default(),
        &lists,
        Some(&d),
        &monitor,
        now,
        &c,
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(p.state.expired.contains(&n("E3")));
    // Removed from the router, and the monitor has forgotten it: still not
    // recreated from the (stale) desired state.
    let p2 = plan(
        &p.state,
        &Intents::default(),
        &RouterLists::default(),
        Some(&d),
        &MonitorState::default(),
        now,
        &c,
    );
    assert!(p2.actions.is_empty(), "{:?}", p2.actions);
}

#[test]
fn extra_system_vouchers_are_adopted_once_and_left_alone() {
    let lists = RouterLists {
        hotspot_users: vec![
            user(1, "OLD1", "voucher-1h", VC, false),
            user(2, "john", "staff", "made by hand", false),
            user(3, "printer", "default", "", true),
        ],
        ..RouterLists::default()
    };
    let d = desired(vec![], vec![]);
    let p = run(
        &ReconcileState::default(),
        &lists,
        &d,
        SuspendMode::Disable,
        NOW,
    );
    assert!(p.actions.is_empty());
    assert_eq!(p.events.len(), 1, "{:?}", p.events);
    match &p.events[0] {
        EventKind::UserAdopted {
            service,
            user,
            batch_id,
            valid_hours,
            ..
        } => {
            assert_eq!(*service, Service::Hotspot);
            assert_eq!(user, &n("OLD1"));
            assert_eq!(batch_id, &n("B1"));
            assert_eq!(*valid_hours, Some(ValidHours::from_hours(1)));
        }
        e => panic!("{e:?}"),
    }
    // Manual users are the monitor's (`manual_user`), never reconcile's.
    let p2 = run(&p.state, &lists, &d, SuspendMode::Disable, NOW + 1);
    assert!(p2.events.is_empty() && p2.actions.is_empty(), "{p2:?}");
}

#[test]
fn manual_user_with_a_desired_name_is_not_touched() {
    let lists = RouterLists {
        ppp_secrets: vec![user(1, "cust1", "pppoe-10M", "hand made", false)],
        ..RouterLists::default()
    };
    let d = desired(vec![], vec![sub("cust1", SubscriptionStatus::Suspended)]);
    let p = run(
        &ReconcileState::default(),
        &lists,
        &d,
        SuspendMode::Disable,
        NOW,
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.warnings.len(), 1);
}

#[test]
fn profiles_reported_when_new_or_changed() {
    let prof = |name: &str, rate: &str| ProfileRow {
        name: n(name),
        rate_limit: n(rate),
        session_timeout: n("1h"),
        shared_users: Some(n("1")),
    };
    let mut lists = RouterLists {
        hotspot_profiles: vec![prof("voucher-1h", "2M/2M"), prof("default", "")],
        ppp_profiles: vec![ProfileRow {
            shared_users: None,
            ..prof("pppoe-10M", "10M/10M")
        }],
        ..RouterLists::default()
    };
    let st = ReconcileState::default();
    let p = plan(
        &st,
        &Intents::default(),
        &lists,
        None,
        &MonitorState::default(),
        Timestamp::from_unix(NOW),
        &cfg(SuspendMode::Disable),
    );
    let names: Vec<_> = p
        .events
        .iter()
        .map(|e| match e {
            EventKind::Profile { service, name, .. } => (*service, name.lossy()),
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(
        names,
        vec![
            (Service::Hotspot, "voucher-1h".to_owned()),
            (Service::Pppoe, "pppoe-10M".to_owned())
        ]
    );
    let p2 = plan(
        &p.state,
        &Intents::default(),
        &lists,
        None,
        &MonitorState::default(),
        Timestamp::from_unix(NOW),
        &cfg(SuspendMode::Disable),
    );
    assert!(p2.events.is_empty());
    lists.hotspot_profiles[0].rate_limit = n("4M/4M");
    let p3 = plan(
        &p2.state,
        &Intents::default(),
        &lists,
        None,
        &MonitorState::default(),
        Timestamp::from_unix(NOW),
        &cfg(SuspendMode::Disable),
    );
    assert_eq!(p3.events.len(), 1);
}

const PC: &str = "PPPOE_SYSTEM|b|||c1|s1||";

#[test]
fn suspend_disables_and_kicks_then_restore_enables() {
    let d = desired(vec![], vec![sub("cust1", SubscriptionStatus::Suspended)]);
    let lists = RouterLists {
        ppp_secrets: vec![user(1, "cust1", "pppoe-10M", PC, false)],
        ppp_active: vec![ppp_session(9, "cust1", 100)],
        ..RouterLists::default()
    };
    let p = run(
        &ReconcileState::default(),
        &lists,
        &d,
        SuspendMode::Disable,
        NOW,
    );
    assert_eq!(
        p.actions,
        vec![
            SyncAction::DisableSecret {
                id: Id(1),
                user: n("cust1")
            },
            SyncAction::KickPpp {
                active_id: Id(9),
                user: n("cust1")
            },
        ]
    );
    assert!(
        matches!(&p.events[..], [EventKind::Subscription { action, .. }] if action == "suspended")
    );
    // Done on the router: nothing more, no second event.
    let done = RouterLists {
        ppp_secrets: vec![user(1, "cust1", "pppoe-10M", PC, true)],
        ..RouterLists::default()
    };
    let p2 = run(&p.state, &done, &d, SuspendMode::Disable, NOW + 60);
    assert!(p2.actions.is_empty() && p2.events.is_empty(), "{p2:?}");
    // Restored.
    let d2 = desired(vec![], vec![sub("cust1", SubscriptionStatus::Active)]);
    let p3 = run(&p2.state, &done, &d2, SuspendMode::Disable, NOW + 120);
    assert_eq!(
        p3.actions,
        vec![SyncAction::EnableSecret {
            id: Id(1),
            user: n("cust1")
        }]
    );
    let enabled = RouterLists {
        ppp_secrets: vec![user(1, "cust1", "pppoe-10M", PC, false)],
        ..RouterLists::default()
    };
    let p4 = run(&p3.state, &enabled, &d2, SuspendMode::Disable, NOW + 180);
    assert!(p4.actions.is_empty());
    assert!(
        matches!(&p4.events[..], [EventKind::Subscription { action, .. }] if action == "restored")
    );
    let p5 = run(&p4.state, &enabled, &d2, SuspendMode::Disable, NOW + 240);
    assert!(p5.events.is_empty() && p5.actions.is_empty());
}

#[test]
fn isolir_moves_to_the_isolation_profile_and_back() {
    let d = desired(vec![], vec![sub("cust1", SubscriptionStatus::Suspended)]);
    let lists = RouterLists {
        ppp_secrets: vec![user(1, "cust1", "pppoe-20M", PC, false)],
        ppp_active: vec![ppp_session(9, "cust1", 100)],
        ..RouterLists::default()
    };
    let p = run(
        &ReconcileState::default(),
        &lists,
        &d,
        SuspendMode::Isolir,
        NOW,
    );
    let isolated_comment = n("PPPOE_SYSTEM|b|||c1|s1|||isolir=pppoe-20M");
    assert_eq!(
        p.actions,
        vec![
            SyncAction::SetSecretProfile {
                id: Id(1),
                user: n("cust1"),
                profile: n("isolir"),
                comment: isolated_comment.clone(),
            },
            SyncAction::KickPpp {
                active_id: Id(9),
                user: n("cust1")
            },
        ]
    );
    assert_eq!(
        p.state.isolated[&n("cust1")].previous_profile,
        n("pppoe-20M")
    );
    // Isolated on the router; the customer reconnected (a new session).
    let isolated = RouterLists {
        ppp_secrets: vec![user(
            1,
            "cust1",
            "isolir",
            isolated_comment.lossy().as_str(),
            false,
        )],
        ppp_active: vec![ppp_session(10, "cust1", 5)],
        ..RouterLists::default()
    };
    let p2 = run(&p.state, &isolated, &d, SuspendMode::Isolir, NOW + 60);
    assert!(p2.actions.is_empty() && p2.events.is_empty(), "{p2:?}");
    // Restore: the desired profile wins (here the same as remembered).
    let mut d2 = desired(vec![], vec![sub("cust1", SubscriptionStatus::Active)]);
    d2.subscriptions[0].profile = Name::empty();
    let p3 = run(&p2.state, &isolated, &d2, SuspendMode::Isolir, NOW + 120);
    assert_eq!(
        p3.actions,
        vec![
            SyncAction::SetSecretProfile {
                id: Id(1),
                user: n("cust1"),
                profile: n("pppoe-20M"),
                comment: n("PPPOE_SYSTEM|b|||c1|s1||"),
            },
            SyncAction::KickPpp {
                active_id: Id(10),
                user: n("cust1")
            },
        ]
    );
    // With the state file lost, the comment still knows the profile.
    let p3b = run(
        &ReconcileState::default(),
        &isolated,
        &d2,
        SuspendMode::Isolir,
        NOW + 120,
    );
    assert_eq!(p3.actions, p3b.actions);
    let restored = RouterLists {
        ppp_secrets: vec![user(1, "cust1", "pppoe-20M", PC, false)],
        ..RouterLists::default()
    };
    let p4 = run(&p3.state, &restored, &d2, SuspendMode::Isolir, NOW + 180);
    assert!(p4.actions.is_empty());
    assert!(
        matches!(&p4.events[..], [EventKind::Subscription { action, .. }] if action == "restored")
    );
    assert!(p4.state.isolated.is_empty() && p4.state.suspended.is_empty());
}

#[test]
fn missing_secrets_are_created_in_their_desired_state() {
    let d = desired(
        vec![],
        vec![
            sub("a", SubscriptionStatus::Active),
            sub("s", SubscriptionStatus::Suspended),
        ],
    );
    let p = run(
        &ReconcileState::default(),
        &RouterLists::default(),
        &d,
        SuspendMode::Disable,
        NOW,
    );
    let created: Vec<_> = p
        .actions
        .iter()
        .map(|a| match a {
            SyncAction::CreateUser {
                name,
                disabled,
                profile,
                ..
            } => (name.lossy(), *disabled, profile.lossy()),
            a => panic!("{a:?}"),
        })
        .collect();
    assert_eq!(
        created,
        vec![
            ("a".to_owned(), false, "pppoe-10M".to_owned()),
            ("s".to_owned(), true, "pppoe-10M".to_owned())
        ]
    );
    let p = run(
        &ReconcileState::default(),
        &RouterLists::default(),
        &d,
        SuspendMode::Isolir,
        NOW,
    );
    assert!(
        matches!(&p.actions[1], SyncAction::CreateUser { profile, disabled: false, .. } if profile == &n("isolir"))
    );
}

#[test]
fn extra_system_secrets_are_adopted() {
    let lists = RouterLists {
        ppp_secrets: vec![user(1, "old", "pppoe-10M", PC, false)],
        ..RouterLists::default()
    };
    let p = run(
        &ReconcileState::default(),
        &lists,
        &desired(vec![], vec![]),
        SuspendMode::Disable,
        NOW,
    );
    assert!(matches!(
        &p.events[..],
        [EventKind::UserAdopted {
            service: Service::Pppoe,
            ..
        }]
    ));
    assert!(p.actions.is_empty());
}

fn create_v1() -> SyncAction {
    SyncAction::CreateUser {
        service: Service::Hotspot,
        name: n("V1"),
        password: Password(Some(n("pw"))),
        profile: n("p"),
        comment: n(VC),
        disabled: false,
    }
}

#[test]
fn creation_failures_are_reported_once_per_reason() {
    let mut st = ReconcileState::default();
    let fail =
        |st: &mut ReconcileState, why: &str| creation_outcome(st, &create_v1(), Err(why.into()));
    assert!(fail(&mut st, "input does not match any value of profile").is_some());
    assert!(fail(&mut st, "input does not match any value of profile").is_none());
    assert!(fail(&mut st, "failure: already have user with this name").is_some());
    let ok = creation_outcome(&mut st, &create_v1(), Ok(()));
    assert!(matches!(ok, Some(EventKind::UserCreated { .. })));
    assert!(st.create_failed.is_empty());
}

#[test]
fn without_a_desired_state_nothing_but_profiles() {
    let lists = RouterLists {
        hotspot_users: vec![user(1, "OLD1", "voucher-1h", VC, false)],
        ppp_secrets: vec![user(2, "x", "pppoe-10M", PC, false)],
        ..RouterLists::default()
    };
    let p = plan(
        &ReconcileState::default(),
        &Intents::default(),
        &lists,
        None,
        &MonitorState::default(),
        Timestamp::from_unix(NOW),
        &cfg(SuspendMode::Disable),
    );
    assert!(p.actions.is_empty() && p.events.is_empty());
}

#[test]
fn new_events_as_json() {
    let e = crate::event::Event {
        seq: 1,
        at: Timestamp::from_unix(NOW),
        kind: EventKind::Profile {
            service: Service::Pppoe,
            name: n("pppoe-10M"),
            rate_limit: n("10M/10M"),
            session_timeout: Name::empty(),
            shared_users: None,
        },
    };
    let j = e.to_json("s", crate::event::StreamId([0; 16]));
    assert_eq!(j["type"], "profile");
    assert_eq!(j["service"], "pppoe");
    assert!(j["shared_users"].is_null());
    let e = crate::event::Event {
        seq: 2,
        at: Timestamp::from_unix(NOW),
        kind: EventKind::UserAdopted {
            service: Service::Hotspot,
            user: Name::new(b"caf\xe9"),
            profile: n("voucher-1h"),
            comment: n(VC),
            batch_id: n("B1"),
            valid_hours: ValidHours::from_minutes(30),
            first_login_at: None,
            expires_at: None,
            password: Password(Some(n("secret"))),
            disabled: false,
        },
    };
    let j = e.to_json("s", crate::event::StreamId([0; 16]));
    assert_eq!(j["type"], "user_adopted");
    assert_eq!(j["user_b64"], "Y2Fm6Q==");
    assert!(j["expires_at"].is_null());
    assert_eq!(j["valid_hours"], 0.5);
    assert_eq!(j["password"], "secret");
    assert_eq!(mask_passwords(j)["password"], "***");
}

/// Runs a plan with these intents held.
fn run_with(intents: &Intents, lists: &RouterLists, d: &DesiredState) -> Plan {
    plan(
        &ReconcileState::default(),
        intents,
        lists,
        Some(d),
        &MonitorState::default(),
        Timestamp::from_unix(NOW),
        &cfg(SuspendMode::Disable),
    )
}

#[test]
fn a_voucher_without_a_known_password_is_never_recreated_and_reported_once() {
    let mut v = voucher("V1", VoucherStatus::Created, VC);
    v.password = Password(None);
    let d = desired(vec![v], vec![]);
    let p = run_with(&Intents::default(), &RouterLists::default(), &d);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(
        p.events,
        vec![EventKind::RecreateBlocked {
            service: Service::Hotspot,
            user: n("V1"),
            reason: "password unknown centrally".into(),
        }]
    );
    // Reported once while it stays missing.
    let p2 = run_with(&p.intents, &RouterLists::default(), &d);
    assert!(p2.events.is_empty() && p2.actions.is_empty());
}

#[test]
fn a_recreated_voucher_keeps_the_activation_last_seen_on_the_router() {
    let activated = "VOUCHER_SYSTEM|B1|5000|4000|1|v1|2026-01-01|admin|2027-01-15T08:00:00Z|2027-01-15T09:00:00Z";
    // Central still has the unactivated comment (its voucher_activated
    // not applied yet).
    let d = desired(vec![voucher("V1", VoucherStatus::Active, VC)], vec![]);
    let on_router = RouterLists {
        hotspot_users: vec![user(1, "V1", "voucher-1h", activated, false)],
        ..RouterLists::default()
    };
    let p = run_with(&Intents::default(), &on_router, &d);
    assert!(p.actions.is_empty());
    assert_eq!(p.intents.router_comments.get(&n("V1")), Some(&n(activated)));
    // Deleted on the router: recreated with the activated comment, not a
    // fresh term.
    let p2 = run_with(&p.intents, &RouterLists::default(), &d);
    assert!(
        matches!(&p2.actions[..], [SyncAction::CreateUser { comment, .. }] if *comment == n(activated)),
        "{:?}",
        p2.actions
    );
}

#[test]
fn deleted_users_are_removed_and_never_recreated() {
    let d = desired(
        vec![
            voucher("GONE", VoucherStatus::Deleted, VC),
            voucher("HAND", VoucherStatus::Deleted, VC),
        ],
        vec![sub("c1", SubscriptionStatus::Deleted)],
    );
    let lists = RouterLists {
        hotspot_users: vec![
            user(1, "GONE", "voucher-1h", VC, false),
            user(2, "HAND", "voucher-1h", "made by hand", false),
        ],
        ppp_secrets: vec![user(3, "c1", "pppoe-10M", "PPPOE_SYSTEM|b", false)],
        ppp_active: vec![ppp_session(9, "c1", 10)],
        ..RouterLists::default()
    };
    let p = run_with(&Intents::default(), &lists, &d);
    assert_eq!(
        p.actions,
        vec![
            SyncAction::RemoveUser {
                service: Service::Hotspot,
                id: Id(1),
                user: n("GONE"),
            },
            SyncAction::RemoveUser {
                service: Service::Pppoe,
                id: Id(3),
                user: n("c1"),
            },
            SyncAction::KickPpp {
                active_id: Id(9),
                user: n("c1"),
            },
        ]
    );
    // Gone from the router: nothing is recreated.
    let p2 = run_with(&p.intents, &RouterLists::default(), &d);
    assert!(p2.actions.is_empty(), "{:?}", p2.actions);
}

#[test]
fn a_held_local_delete_beats_a_stale_desired_state() {
    let mut intents = Intents::default();
    intents.record(
        Service::Hotspot,
        n("V1"),
        Intent {
            action: IntentAction::Deleted,
            at: Timestamp::from_unix(NOW - 5),
        },
    );
    let mut v = voucher("V1", VoucherStatus::Active, VC);
    v.intent_at = Some(Timestamp::from_unix(NOW - 100));
    let d = desired(vec![v], vec![]);
    let p = run_with(&intents, &RouterLists::default(), &d);
    assert!(p.actions.is_empty(), "recreated: {:?}", p.actions);
    assert_eq!(p.intents.held.len(), 1, "the override is still held");
}
