//! Logins, logouts, re-logins, interim usage and unparsable values.

use super::*;

// ---------------------------------------------------------------------------
// Managed users
// ---------------------------------------------------------------------------

/// A name listed twice (never from a real router) is one managed user:
/// its last managed row counts, as with repeated inserts.
#[test]
fn a_name_listed_twice_is_one_user_and_its_last_row_counts() {
    let dup = hs("*10", "dup");
    let online = snap()
        .user(voucher("*U1", "dup", b""))
        .user(user("*U2", "other", "default", b""))
        .user(user("*U3", "dup", "1d-voucher", b""))
        // Not managed: does not replace the managed row before it.
        .user(user("*U4", "dup", "default", b""))
        .online(dup.clone());
    let out = step(&MonitorState::default(), &online, at(0), &cfg());
    assert_eq!(out.managed, (1, 0));
    assert_eq!(out.events, vec![login_at_start(&dup, "1d-voucher")]);
}

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
        keys(&[
            (Service::Hotspot, "*10"),
            (Service::Hotspot, "*13"),
            (Service::Pppoe, "*20")
        ])
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
    row.address = Some("10.5.50.7".parse().unwrap());
    row.mac = Mac::parse(b"DE:AD:BE:EF:00:07");
    row.login_by = "mac-cookie".into();
    let s = snap().user(voucher("*U1", "v1", b"")).online(row);
    let mut agent = Agent::new();
    assert_eq!(
        agent.events(&s, at(0)),
        vec![EventKind::Login {
            session: SessionRef {
                service: Service::Hotspot,
                user: "v1".into(),
                active_id: "*1A".into(),
                session_id: Default::default(),
            },
            address: Some("10.5.50.7".parse().unwrap()),
            mac: Mac::parse(b"DE:AD:BE:EF:00:07"),
            caller_id: Default::default(),
            login_by: "mac-cookie".into(),
            profile: VOUCHER_PROFILE.into(),
            seen_at_start: false,
        }]
    );
    let t = &agent
        .state
        .sessions
        .get(&(Service::Hotspot, "*1A".into()))
        .expect("tracked");
    assert_eq!(
        (
            t.counters.uptime_secs,
            t.counters.bytes_in,
            t.counters.bytes_out,
            t.last_report
        ),
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
                user: "cust1".into(),
                active_id: "*2".into(),
                session_id: "0x81400001".into(),
            },
            address: Some("10.10.0.2".parse().unwrap()),
            mac: None,
            caller_id: "AA:BB:CC:00:00:99".into(),
            login_by: "pppoe".into(),
            profile: PPPOE_PROFILE.into(),
            seen_at_start: false,
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
    assert_eq!(
        session_keys(&agent.state),
        keys(&[(Service::Hotspot, "*2")])
    );
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
        agent
            .state
            .sessions
            .get(&(Service::Pppoe, "*5".into()))
            .expect("tracked")
            .session_id,
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
    let t = &agent
        .state
        .sessions
        .get(&(Service::Hotspot, "*1".into()))
        .expect("tracked");
    assert_eq!(
        (t.counters.uptime_secs, t.counters.bytes_in, t.last_report),
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
    let mut agent = Agent::fresh();
    assert!(!agent.state.started);
    assert_eq!(
        agent.events(&s, at(0)),
        vec![login_at_start(&a, VOUCHER_PROFILE)]
    );
    assert!(agent.state.started);
    assert_eq!(agent.events(&s, at(1)), vec![]);
    // A login after the first cycle is an ordinary one.
    let b = hs("*2", "b");
    let s = s.user(voucher("*UB", "b", b"")).online(b.clone());
    assert_eq!(agent.events(&s, at(2)), vec![login(&b, VOUCHER_PROFILE)]);
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
fn kept_rows_report_no_usage_and_a_scheduled_read_reports_early() {
    let users = snap().user(voucher("*U1", "v1", b""));
    let row = |t: u64| hs("*1", "v1").up(t).bytes(t * 10, t * 20);
    let mut agent = Agent::new();
    agent.events(&users.clone().online(row(0)), at(0));
    // The agent's copy (counters as last read): nothing due is reported
    // from it, however late.
    let mut kept = users.clone().online(row(0));
    kept.sessions_kept = true;
    assert_eq!(agent.events(&kept, at(400)), vec![]);
    // A read whose next one is 270 s away reports a session a poll old.
    let mut read = users.clone().online(row(430));
    read.usage_early_secs = 270;
    assert_eq!(agent.events(&read, at(430)), vec![usage(&row(430))]);
    let mut soon = users.online(row(440));
    soon.usage_early_secs = 270;
    assert_eq!(agent.events(&soon, at(440)), vec![], "10 s old: not yet");
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
            unseen: false,
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
// In place
// ---------------------------------------------------------------------------

#[test]
fn a_poll_updates_a_session_map_nothing_shares_in_place_and_copies_a_shared_one() {
    let cfg = cfg();
    let mut rows: Vec<SessionRow> = (0..20).map(|i| hs(&format!("*{i:X}"), "v1")).collect();
    let mut s = snap().user(voucher("*U1", "v1", b""));
    for r in &rows {
        s = s.online(r.clone());
    }
    let mut state = MonitorState::default();
    let first = step_in_place(&mut state, &mut s, at(0), &cfg);
    assert_eq!(first.sessions_put.len(), 20);
    let before = state.sessions.entries_addr();

    // Counters move, one session ends, one starts (fewer than a merge).
    rows.remove(3);
    rows.push(hs("*99", "v1"));
    for r in &mut rows {
        r.bytes_in = Some(1_000);
    }
    let mut next = snap().user(voucher("*U1", "v1", b""));
    for r in &rows {
        next = next.online(r.clone());
    }
    let changes = step_in_place(&mut state, &mut next, at(1), &cfg);
    assert_eq!(state.sessions.entries_addr(), before, "updated in place");
    assert!(next.hotspot_active.is_empty(), "the rows are let go");
    assert_eq!(next.hotspot_users.len(), 1, "the users are left");
    assert_eq!(changes.sessions_del, vec![(Service::Hotspot, Id(3))]);
    assert_eq!(changes.sessions_put, vec![(Service::Hotspot, Id(0x99))]);
    assert!(
        state
            .sessions
            .values()
            .all(|t| t.counters.bytes_in == Some(1_000))
    );

    // Shared (as with the view's copy): copied, the other copy untouched.
    let shared = state.clone();
    for r in &mut rows {
        r.bytes_in = Some(2_000);
    }
    let mut again = snap().user(voucher("*U1", "v1", b""));
    for r in &rows {
        again = again.online(r.clone());
    }
    step_in_place(&mut state, &mut again, at(2), &cfg);
    assert_ne!(
        state.sessions.entries_addr(),
        shared.sessions.entries_addr()
    );
    assert!(
        shared
            .sessions
            .values()
            .all(|t| t.counters.bytes_in == Some(1_000))
    );
    assert!(
        state
            .sessions
            .values()
            .all(|t| t.counters.bytes_in == Some(2_000))
    );
}
