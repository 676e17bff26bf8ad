//! Idempotence and agent restarts from the persisted state.

use super::*;

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
    // Nothing changed, so nothing would be written.
    assert_eq!(agent.state, state);
    assert!(
        crate::store::StateDelta::between(&state, &std::sync::Arc::new(agent.state.clone()))
            .is_empty()
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
