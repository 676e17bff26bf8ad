//! Hand-made users, foreign comments and PPPoE secrets.

use super::*;

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
                manual(Service::Hotspot, "note", "default", b"customer Budi \xff"),
                manual(Service::Pppoe, "c2", PPPOE_PROFILE, "manual pppoe"),
            ],
            vec![]
        )
    );
    let flagged: BTreeSet<(Service, Name)> = [
        (Service::Hotspot, "note".into()),
        (Service::Hotspot, "vc1".into()),
        (Service::Pppoe, "c2".into()),
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
            .contains(&(Service::Hotspot, "vc1".into()))
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
    let users: Vec<String> = actions.iter().map(|a| a.user().lossy()).collect();
    assert_eq!(users, ["a", "b", "c", "d"]);
}
