//! Voucher activation and expiry.

use super::*;

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
    assert_eq!(events[1..], [activated("v1", b"B\xe92", 3, at(0))]);
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
fn unusable_valid_hours_is_reported_once_and_not_activated() {
    for (raw, reason) in [
        (
            &b"VOUCHER_SYSTEM|B1|5000|4000|abc|V1|2024-01-30|admin||"[..],
            "valid_hours is not a number",
        ),
        (b"VOUCHER_SYSTEM|B1|5000|4000||V1", "valid_hours is empty"),
        (b"VOUCHER_SYSTEM|B1", "valid_hours is empty"),
        (b"VOUCHER_SYSTEM|B1|5000|4000|-1", "valid_hours is negative"),
        (b"VOUCHER_SYSTEM|||||||sync||", "valid_hours is empty"),
    ] {
        let s = snap()
            .user(voucher("*U1", "v1", raw))
            .online(hs("*1", "v1"));
        let mut agent = Agent::new();
        let (events, actions) = agent.cycle(&s, at(0));
        assert_eq!(
            events,
            vec![
                login(&hs("*1", "v1"), VOUCHER_PROFILE),
                EventKind::VoucherInvalid {
                    user: "v1".into(),
                    reason: reason.into(),
                    comment: Name::new(raw),
                }
            ],
            "{raw:?}"
        );
        assert_eq!(actions, vec![], "{raw:?}");
        // Once: the next poll says nothing more and still does nothing.
        assert_eq!(agent.cycle(&s, at(30)), (vec![], vec![]), "{raw:?}");
    }
}

#[test]
fn fractional_valid_hours_expire_on_the_minute() {
    let raw = b"VOUCHER_SYSTEM|B1|5000|4000|0.5|V1|2024-01-30|admin||";
    let s = snap()
        .user(voucher("*U1", "v1", raw))
        .online(hs("*1", "v1"));
    let mut agent = Agent::new();
    let (events, _) = agent.cycle(&s, at(0));
    let EventKind::VoucherActivated {
        valid_hours,
        expires_at,
        ..
    } = &events[1]
    else {
        panic!("{events:?}");
    };
    assert_eq!(valid_hours.minutes(), 30);
    assert_eq!(*expires_at, at(1800));
    // The router shows the activation; 29 minutes in, still on.
    let s = snap()
        .user(voucher(
            "*U1",
            "v1",
            activation_bytes(raw, at(0), at(1800)).as_bytes(),
        ))
        .online(hs("*1", "v1").up(1740));
    let (events, actions) = agent.cycle(&s, at(1740));
    assert!(
        events.iter().all(|e| matches!(e, EventKind::Usage { .. })),
        "{events:?}"
    );
    assert_eq!(actions, vec![]);
    // At 30 minutes it expires: disabled and kicked.
    let (events, actions) = agent.cycle(&s, at(1800));
    assert!(
        events.contains(&expired("v1", at(1800), ExpiredAction::Disable)),
        "{events:?}"
    );
    assert_eq!(actions, vec![disable("*U1", "v1"), kick("*1", "v1")]);
}

#[test]
fn names_differing_only_in_non_utf8_bytes_are_different_vouchers() {
    // Latin-1 names typed on Winbox: lossy text would make them one user.
    let e9 = hs("*1", "x");
    let e9 = SessionRow {
        user: Name::new(b"caf\xe9"),
        ..e9
    };
    let s = snap()
        .user(UserRow {
            name: Name::new(b"caf\xe9"),
            ..voucher("*U1", "unused", FRESH)
        })
        .user(UserRow {
            name: Name::new(b"caf\xe8"),
            ..voucher("*U2", "unused", FRESH)
        })
        .online(e9.clone());
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&s, at(0));
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        matches!(&events[1], EventKind::VoucherActivated { user, .. } if user.as_bytes() == b"caf\xe9")
    );
    assert_eq!(actions.len(), 1);
    assert!(matches!(&actions[0], Action::SetComment { id, .. } if *id == Id::from("*U1")));
    assert_eq!(
        agent
            .state
            .vouchers
            .keys()
            .map(Name::as_bytes)
            .collect::<Vec<_>>(),
        vec![&b"caf\xe9"[..]]
    );
}

#[test]
fn unparsable_first_login_at_is_left_alone_and_reported_once() {
    let raw: &[u8] = b"VOUCHER_SYSTEM|B1|5000|4000|24|V1|2024-01-30|admin|31/01/2024 noon|";
    let s = snap()
        .user(voucher("*U1", "v1", raw))
        .online(hs("*1", "v1"));
    let mut agent = Agent::new();
    let (events, actions) = agent.cycle(&s, at(0));
    assert_eq!(events.len(), 2, "{events:?}");
    match &events[1] {
        EventKind::VoucherInvalid {
            user,
            reason,
            comment,
        } => {
            assert_eq!(user, "v1");
            assert!(reason.starts_with("first_login_at"), "{reason}");
            assert_eq!(comment.as_bytes(), raw);
        }
        other => panic!("expected voucher_invalid, got {other:?}"),
    }
    // Never re-activated (which would extend it), never expired.
    assert_eq!(actions, vec![]);
    let (events, actions) = agent.cycle(&s, at(100 * 3_600));
    assert!(
        events.iter().all(|e| matches!(e, EventKind::Usage { .. })),
        "{events:?}"
    );
    assert_eq!(actions, vec![]);
    // Fixed by hand: handled normally again (and already expired).
    let fixed = snap()
        .user(voucher("*U1", "v1", EXPIRES_AT_T0))
        .online(hs("*1", "v1"));
    let (events, actions) = agent.cycle(&fixed, at(100 * 3_600 + 60));
    assert_eq!(events, vec![expired("v1", at(0), ExpiredAction::Disable)]);
    assert_eq!(actions, vec![disable("*U1", "v1"), kick("*1", "v1")]);
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
    assert!(
        agent
            .state
            .vouchers
            .get(&Name::from("v1"))
            .expect("tracked")
            .enforced
    );
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
    assert!(
        agent
            .state
            .vouchers
            .get(&Name::from("v1"))
            .expect("tracked")
            .enforced
    );
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

#[test]
fn voucher_progress_goes_with_its_user_or_its_voucher_comment_and_the_rest_stays() {
    let mut agent = Agent::new();
    let mut s = snap();
    for i in 1..=4 {
        s = s
            .user(voucher(&format!("*U{i}"), &format!("v{i}"), FRESH))
            .online(hs(&format!("*{i}"), &format!("v{i}")));
    }
    // Activated; the comment writes are not confirmed yet, so all four
    // have progress to keep.
    agent.run(&s, at(0));
    let names = |a: &Agent| -> Vec<String> { a.state.vouchers.keys().map(|n| n.lossy()).collect() };
    assert_eq!(names(&agent), ["v1", "v2", "v3", "v4"]);
    let kept = agent.state.vouchers.clone();

    // A quiet poll: the same copy.
    agent.run(&s, at(10));
    assert!(agent.state.vouchers.same_copy(&kept));

    // v1 removed from the router, v2's comment no longer a voucher's, v3's
    // comment shows the activation (nothing left to do): only v4 stays.
    let mut next = snap()
        .user(user("*U2", "v2", VOUCHER_PROFILE, b"kept by hand"))
        .user(voucher("*U3", "v3", FRESH_ACTIVATED))
        .user(voucher("*U4", "v4", FRESH));
    for i in 2..=4 {
        next = next.online(hs(&format!("*{i}"), &format!("v{i}")));
    }
    agent.run(&next, at(20));
    assert_eq!(names(&agent), ["v4"]);
    assert_eq!(kept.len(), 4, "the earlier state's copy is untouched");
}
