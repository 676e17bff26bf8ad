//! Router reboots: every session ends, `.id`s are reused.

use super::*;

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
        agent
            .state
            .sessions
            .get(&(Service::Hotspot, "*1".into()))
            .expect("tracked")
            .user,
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
