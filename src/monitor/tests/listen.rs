//! Listen changes interleaved with polls: whatever the order, each login
//! and logout is reported exactly once.

use super::*;

fn up(row: &SessionRow) -> ListenChange {
    ListenChange::Upsert(row.clone())
}

fn dead(row: &SessionRow) -> ListenChange {
    ListenChange::Removed {
        service: row.service,
        id: row.id,
        kicked: false,
    }
}

/// A polled agent with users `a`, `b` (vouchers) and secret `p`, nobody online.
fn polled() -> (Agent, Snapshot) {
    let users = snap()
        .user(voucher("*UA", "a", b""))
        .user(voucher("*UB", "b", b""))
        .secret(secret("*S1", "p", b""));
    let mut agent = Agent::new();
    assert_eq!(agent.events(&users, at(0)), vec![]);
    (agent, users)
}

#[test]
fn listen_then_poll_reports_the_login_once() {
    let (mut agent, users) = polled();
    let a = hs("*1", "a");
    let p = ppp("*5", "p", "0x81000001");
    assert_eq!(
        agent.listen(up(&a), at(5)),
        (vec![login(&a, VOUCHER_PROFILE)], vec![])
    );
    assert_eq!(
        agent.listen(up(&p), at(6)),
        (vec![login(&p, PPPOE_PROFILE)], vec![])
    );
    // The poll finds both: nothing new.
    let online = users
        .clone()
        .online(a.clone().up(25))
        .online(p.clone().up(24));
    assert_eq!(agent.events(&online, at(30)), vec![]);
    // Listen reports the logout; the next poll does not see it: once.
    let a_final = a.clone().up(25);
    assert_eq!(
        agent.listen(dead(&a), at(40)),
        (vec![logout(&a_final, LogoutReason::Gone)], vec![])
    );
    assert_eq!(
        agent.events(&users.clone().online(p.clone().up(54)), at(60)),
        vec![]
    );
    assert_eq!(session_keys(&agent.state), vec![(Service::Pppoe, p.id)]);
}

#[test]
fn poll_then_listen_makes_the_listen_rows_no_ops() {
    let (mut agent, users) = polled();
    let a = hs("*1", "a");
    assert_eq!(
        agent.events(&users.clone().online(a.clone()), at(10)),
        vec![login(&a, VOUCHER_PROFILE)]
    );
    // The listen row for the same login arrives after the poll.
    assert_eq!(agent.listen(up(&a), at(11)), (vec![], vec![]));
    // The poll saw the logout first; the `.dead` row is then a no-op.
    assert_eq!(
        agent.events(&users, at(20)),
        vec![logout(&a, LogoutReason::Gone)]
    );
    assert_eq!(agent.listen(dead(&a), at(21)), (vec![], vec![]));
    assert!(agent.state.sessions.is_empty());
}

#[test]
fn duplicate_adds_and_unknown_removals_are_no_ops() {
    let (mut agent, users) = polled();
    let a = hs("*1", "a");
    // A removal of something never tracked (the add was missed or stale).
    assert_eq!(agent.listen(dead(&a), at(1)), (vec![], vec![]));
    assert_eq!(
        agent.listen(up(&a), at(2)),
        (vec![login(&a, VOUCHER_PROFILE)], vec![])
    );
    // A change of the same entry (e.g. its address), not a new login.
    assert_eq!(agent.listen(up(&a.clone().up(3)), at(3)), (vec![], vec![]));
    assert_eq!(agent.listen(up(&a), at(4)), (vec![], vec![]));
    // Begins and ends between two polls: both from listen, the poll adds nothing.
    let b = hs("*2", "b");
    assert_eq!(
        agent.listen(up(&b), at(5)),
        (vec![login(&b, VOUCHER_PROFILE)], vec![])
    );
    assert_eq!(
        agent.listen(dead(&b), at(8)),
        (vec![logout(&b, LogoutReason::Gone)], vec![])
    );
    assert_eq!(
        agent.events(&users.clone().online(a.clone()), at(30)),
        vec![]
    );
}

#[test]
fn users_not_managed_or_unknown_are_left_to_the_poll() {
    let (mut agent, users) = polled();
    let stranger = hs("*3", "john");
    assert_eq!(agent.listen(up(&stranger), at(1)), (vec![], vec![]));
    // A user created after the last poll: unknown to listen, found by the poll.
    let n = hs("*4", "new");
    assert_eq!(agent.listen(up(&n), at(2)), (vec![], vec![]));
    let with_new = users
        .clone()
        .user(voucher("*UN", "new", b""))
        .online(n.clone());
    assert_eq!(
        agent.events(&with_new, at(30)),
        vec![login(&n, VOUCHER_PROFILE)]
    );
}

#[test]
fn stale_row_for_a_reused_id_ends_the_old_session_first() {
    let (mut agent, users) = polled();
    let a = hs("*1", "a").up(50);
    agent.events(&users.clone().online(a.clone()), at(10));
    // After a reboot the poll already closed `a` and saw `b` on `*1`...
    let rebooted = users.clone().boot(Some(at(100)));
    let b = hs("*1", "b");
    assert_eq!(
        agent.events(&rebooted.clone().online(b.clone()), at(120)),
        vec![
            logout(&a, LogoutReason::RouterReboot),
            login(&b, VOUCHER_PROFILE)
        ]
    );
    // ...so the listen's row for it (opened after that poll) is a no-op.
    assert_eq!(agent.listen(up(&b), at(121)), (vec![], vec![]));
    // A row for `*1` naming someone else (numbering restarted, the poll
    // not yet run): `b` ended, `a` logged in; the poll then agrees.
    let a2 = hs("*1", "a");
    assert_eq!(
        agent.listen(up(&a2), at(130)),
        (
            vec![
                logout(&b, LogoutReason::Relogin),
                login(&a2, VOUCHER_PROFILE)
            ],
            vec![]
        )
    );
    assert_eq!(agent.events(&rebooted.online(a2.clone()), at(150)), vec![]);
}

#[test]
fn same_id_with_uptime_gone_backwards_is_a_new_session() {
    let (mut agent, users) = polled();
    let a = hs("*1", "a").up(500);
    agent.events(&users.clone().online(a.clone()), at(10));
    let again = hs("*1", "a").up(2);
    assert_eq!(
        agent.listen(up(&again), at(20)),
        (
            vec![
                logout(&a, LogoutReason::Relogin),
                login(&again, VOUCHER_PROFILE)
            ],
            vec![]
        )
    );
}

#[test]
fn voucher_is_activated_at_the_listen_login_and_not_again_by_the_poll() {
    let users = snap().user(voucher("*U1", "v1", FRESH));
    let mut agent = Agent::new();
    assert_eq!(agent.events(&users, at(0)), vec![]);
    let s = hs("*1", "v1");
    let first = at(7);
    let comment = activation_bytes(FRESH, first, first.plus_hours(24));
    assert_eq!(
        agent.listen(up(&s), first),
        (
            vec![login(&s, VOUCHER_PROFILE), activated("v1", "B1", 24, first)],
            vec![set_comment("*U1", "v1", comment.as_bytes())]
        )
    );
    // The poll before the comment write shows: the same write, no event.
    let online = users.clone().online(s.clone().up(23));
    assert_eq!(
        agent.cycle(&online, at(30)),
        (vec![], vec![set_comment("*U1", "v1", comment.as_bytes())])
    );
    // Written: nothing more.
    let written = snap()
        .user(voucher("*U1", "v1", comment.as_bytes()))
        .online(s.clone().up(53));
    assert_eq!(agent.cycle(&written, at(60)), (vec![], vec![]));
}

#[test]
fn kicked_session_of_an_expired_voucher_reads_as_kicked() {
    let users = snap().user(voucher("*U1", "v1", EXPIRES_AT_T0));
    let s = hs("*1", "v1");
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&users.clone().online(s.clone()), at(0));
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        actions,
        vec![
            disable("*U1", "v1"),
            Action::Kick {
                active_id: s.id,
                user: "v1".into()
            }
        ]
    );
    assert_eq!(
        agent.listen(dead(&s), at(1)),
        (vec![logout(&s, LogoutReason::Kicked)], vec![])
    );
}

#[test]
fn reconnect_replays_nothing_already_reported() {
    // Listen saw a login; the connection dropped; the first poll of the new
    // connection sees the same session; listens reopened report only
    // changes from then on.
    let (mut agent, users) = polled();
    let a = hs("*1", "a");
    agent.listen(up(&a), at(1));
    let online = users.clone().online(a.clone().up(60));
    assert_eq!(agent.events(&online, at(61)), vec![]);
    // Logged out while disconnected: the first poll reports it, a late
    // `.dead` from the old connection (had it been delivered) is a no-op.
    assert_eq!(
        agent.events(&users, at(120)),
        vec![logout(&a.clone().up(60), LogoutReason::Gone)]
    );
    assert_eq!(agent.listen(dead(&a), at(121)), (vec![], vec![]));
}

proptest! {
    /// A login at t=10 and its logout at t=20, seen by polls reading at
    /// some of t=5, 15, 25 (and a last one at 35) and by listen rows
    /// delivered late by up to one poll interval (queued behind a poll),
    /// possibly twice, possibly not at all: exactly one login and one
    /// logout, with the login's `.id` and counters.
    #[test]
    fn any_interleaving_reports_each_transition_once(
        polls in proptest::collection::vec(any::<bool>(), 3),
        add_lag in 0i64..10,
        dead_lag in 0i64..10,
        listen_on in any::<bool>(),
        twice in any::<bool>(),
    ) {
        let (mut agent, users) = polled();
        let a = hs("*1", "a");
        // (time, order within a time, what)
        let mut ops: Vec<(i64, u8, &str)> = Vec::new();
        for (i, on) in polls.iter().enumerate() {
            if *on {
                ops.push((5 + 10 * i as i64, 0, "poll"));
            }
        }
        ops.push((35, 0, "poll"));
        if listen_on {
            ops.push((10 + add_lag, 1, "add"));
            if twice {
                ops.push((10 + add_lag, 2, "add"));
            }
            ops.push((20 + add_lag.max(dead_lag), 3, "dead"));
        }
        ops.sort();
        let (mut logins, mut logouts) = (0, 0);
        for (t, _, what) in ops {
            let events = match what {
                "add" => agent.listen(up(&a), at(t)).0,
                "dead" => agent.listen(dead(&a), at(t)).0,
                _ => {
                    let online = (10..20).contains(&t);
                    let s = if online { users.clone().online(a.clone()) } else { users.clone() };
                    agent.cycle(&s, at(t)).0
                }
            };
            for ev in &events {
                match ev {
                    EventKind::Login { session, .. } => {
                        prop_assert_eq!(session.active_id, a.id);
                        logins += 1;
                    }
                    EventKind::Logout { .. } => logouts += 1,
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
        let seen = listen_on || polls[1];
        prop_assert_eq!((logins, logouts), if seen { (1, 1) } else { (0, 0) });
        prop_assert!(agent.state.sessions.is_empty());
    }
}
