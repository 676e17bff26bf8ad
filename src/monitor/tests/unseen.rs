//! Sessions the agent never saw, told from hotspot users' cumulative
//! counters; counter resets are not usage.

use super::*;

fn unseen(user: &str, uptime_secs: u64, bytes_in: u64, bytes_out: u64) -> EventKind {
    EventKind::Usage {
        session: SessionRef {
            service: Service::Hotspot,
            user: user.into(),
            active_id: Id(0),
            session_id: Name::empty(),
        },
        bytes_in: Some(bytes_in),
        bytes_out: Some(bytes_out),
        uptime_secs,
        unseen: true,
    }
}

fn v(uptime: u64, bytes_in: u64, bytes_out: u64) -> Snapshot {
    snap().user(with_totals(
        voucher("*U1", "v", b""),
        uptime,
        bytes_in,
        bytes_out,
    ))
}

#[test]
fn growth_without_seen_sessions_is_one_unseen_usage_event() {
    let mut agent = Agent::new();
    // First sight: a baseline, whatever the counters say.
    assert_eq!(agent.events(&v(40, 1, 2), at(0)), vec![]);
    // Eleven sessions began and ended between two polls.
    assert_eq!(
        agent.events(&v(40 + 11 * 30, 1 + 11_000, 2 + 110_000), at(400)),
        vec![unseen("v", 330, 11_000, 110_000)]
    );
    // Reported once.
    assert_eq!(agent.events(&v(370, 11_001, 110_002), at(460)), vec![]);
}

#[test]
fn seen_sessions_account_for_their_growth() {
    let mut agent = Agent::new();
    let s = hs("*1", "v").up(50).bytes(500, 5000);
    assert_eq!(
        agent.events(&v(0, 0, 0).online(s.clone()), at(0)),
        vec![login(&s, VOUCHER_PROFILE)]
    );
    // Ended at uptime 70 (20 s after the poll that saw 50), found at t=60.
    assert_eq!(
        agent.events(&v(70, 700, 7000), at(60)),
        vec![logout(&s, LogoutReason::Gone)]
    );
    assert_eq!(agent.events(&v(70, 700, 7000), at(120)), vec![]);
}

#[test]
fn a_session_ending_between_the_two_reads_is_not_unseen() {
    let mut agent = Agent::new();
    let s = hs("*1", "v").up(50).bytes(500, 5000);
    agent.events(&v(0, 0, 0).online(s.clone()), at(0));
    // The user list was read just before the logout, the active list after.
    assert_eq!(
        agent.events(&v(0, 0, 0), at(60)),
        vec![logout(&s, LogoutReason::Gone)]
    );
    // The counters catch up at the next poll: covered by the carried credit.
    assert_eq!(agent.events(&v(55, 550, 5500), at(120)), vec![]);
    // The credit is not kept beyond that: a later unseen session shows.
    assert_eq!(
        agent.events(&v(75, 650, 6500), at(180)),
        vec![unseen("v", 20, 100, 1000)]
    );
}

#[test]
fn growth_is_judged_only_while_the_user_is_offline() {
    let mut agent = Agent::new();
    agent.events(&v(0, 0, 0), at(0));
    let s = hs("*1", "v").up(5);
    // An unseen session ended and a seen one began: judged later.
    assert_eq!(
        agent.events(&v(30, 3, 4).online(s.clone()), at(60)),
        vec![login(&s, VOUCHER_PROFILE)]
    );
    assert_eq!(
        agent.events(&v(30, 3, 4).online(s.clone().up(65)), at(120)),
        vec![]
    );
    // Logged out at 70 s; the counters hold both sessions (30 + 70). The
    // seen one is credited its last seen 65 s plus the 10 s since that
    // poll (an upper bound), so the unseen part reads 25 s: never more
    // than the truth.
    assert_eq!(
        agent.events(&v(100, 10, 20), at(130)),
        vec![
            logout(&s.clone().up(65), LogoutReason::Gone),
            unseen("v", 25, 10, 20)
        ]
    );
}

#[test]
fn counter_resets_and_recreated_users_start_a_new_baseline() {
    let mut agent = Agent::new();
    agent.events(&v(500, 5000, 50_000), at(0));
    // reset-counters: shrinking is not usage.
    assert_eq!(agent.events(&v(0, 0, 0), at(60)), vec![]);
    assert_eq!(
        agent.events(&v(20, 10, 10), at(120)),
        vec![unseen("v", 20, 10, 10)]
    );
    // Removed and added again under the same name: a new `.id`.
    let recreated = snap().user(with_totals(voucher("*U9", "v", b""), 20, 10, 10));
    assert_eq!(agent.events(&recreated, at(180)), vec![]);
    assert_eq!(
        agent.state.usage.get(&Name::from("v")).map(|b| b.id),
        Some(Id::from("*U9"))
    );
    // Bytes alone growing (a seen session's tail) with no uptime: nothing.
    assert_eq!(
        agent.events(
            &snap().user(with_totals(voucher("*U9", "v", b""), 20, 15, 15)),
            at(240)
        ),
        vec![]
    );
}

#[test]
fn an_unseen_first_use_activates_the_voucher_as_estimated() {
    let mut agent = Agent::new();
    let fresh = |up| snap().user(with_totals(voucher("*U1", "v", FRESH), up, 0, 0));
    assert_eq!(agent.events(&fresh(0), at(0)), vec![]);
    let first = at(600 - 90);
    let expires = first.plus_hours(24);
    let (events, actions) = agent.cycle(&fresh(90), at(600));
    assert_eq!(
        events,
        vec![
            unseen("v", 90, 0, 0),
            EventKind::VoucherActivated {
                user: "v".into(),
                batch_id: "B1".into(),
                valid_hours: ValidHours::from_hours(24),
                first_login_at: first,
                expires_at: expires,
                provisional: false,
                mac: None,
                estimated: true,
                comment: Name::default(),
            }
        ]
    );
    let comment = activation_bytes(FRESH, first, expires);
    assert_eq!(actions, vec![set_comment("*U1", "v", comment.as_bytes())]);
    // Written back: nothing more.
    let written = snap().user(with_totals(
        voucher("*U1", "v", comment.as_bytes()),
        90,
        0,
        0,
    ));
    assert_eq!(agent.cycle(&written, at(660)), (vec![], vec![]));
}

#[test]
fn listen_ended_sessions_leave_credit_too() {
    let mut agent = Agent::new();
    agent.events(&v(0, 0, 0), at(0));
    let s = hs("*1", "v");
    agent.listen(ListenChange::Upsert(s.clone()), at(10));
    let (events, _) = agent.listen(
        ListenChange::Removed {
            service: Service::Hotspot,
            id: s.id,
            kicked: false,
        },
        at(40),
    );
    assert_eq!(events, vec![logout(&s, LogoutReason::Gone)]);
    // 30 s online, counters say so: accounted for.
    assert_eq!(agent.events(&v(30, 300, 3000), at(60)), vec![]);
}

#[test]
fn quiet_polls_write_no_baseline_rows() {
    let mut agent = Agent::new();
    agent.events(&v(10, 1, 1), at(0));
    let before = agent.state.clone();
    agent.events(&v(10, 1, 1), at(60));
    let online = v(10, 1, 1).online(hs("*1", "v").up(5));
    agent.events(&online, at(120));
    let mid = agent.state.clone();
    agent.events(&v(10, 1, 1).online(hs("*1", "v").up(65)), at(180));
    assert_eq!(before.usage, mid.usage);
    assert!(
        crate::store::StateDelta::between(&mid, &std::sync::Arc::new(agent.state.clone()))
            .is_empty()
    );
}

fn kept(mut s: Snapshot) -> Snapshot {
    s.hotspot_users_kept = true;
    s
}

#[test]
fn kept_user_lists_carry_credit_until_the_next_full_read() {
    let mut agent = Agent::new();
    let s = hs("*1", "v").up(50).bytes(500, 5000);
    agent.events(&v(0, 0, 0).online(s.clone()), at(0));
    // Polls between full reads: the agent's copy still shows the counters
    // of the last read. The session ends; nothing is judged meanwhile.
    assert_eq!(
        agent.events(&kept(v(0, 0, 0)), at(60)),
        vec![logout(&s, LogoutReason::Gone)]
    );
    assert_eq!(agent.events(&kept(v(0, 0, 0)), at(120)), vec![]);
    assert_eq!(agent.events(&kept(v(0, 0, 0)), at(180)), vec![]);
    // The full read shows the ended session's counters: its credit, kept
    // since, covers them (read every poll, it would have been dropped).
    assert_eq!(agent.events(&v(55, 550, 5500), at(300)), vec![]);
    // Growth without a seen session still shows, at the next full read.
    assert_eq!(agent.events(&kept(v(55, 550, 5500)), at(360)), vec![]);
    assert_eq!(
        agent.events(&v(75, 650, 6500), at(600)),
        vec![unseen("v", 20, 100, 1000)]
    );
}

#[test]
fn a_quiet_poll_keeps_the_last_states_maps_rather_than_copying_them() {
    let mut agent = Agent::new();
    let snap = snap()
        .user(with_totals(voucher("*U1", "v", b""), 40, 1, 2))
        .user(voucher("*U2", "old", EXPIRES_AT_T0));
    agent.cycle(&snap, at(10));
    let before = agent.state.clone();
    assert!(!before.vouchers.is_empty() && !before.usage.is_empty());
    agent.cycle(&snap, at(70));
    assert!(agent.state.usage.same_copy(&before.usage));
    assert!(agent.state.vouchers.same_copy(&before.vouchers));
    // A change is a new copy, and the old one is left as it was.
    agent.cycle(
        &v(100, 1, 2).user(voucher("*U2", "old", EXPIRES_AT_T0)),
        at(130),
    );
    assert!(!agent.state.usage.same_copy(&before.usage));
    assert_eq!(
        before
            .usage
            .get(&Name::from("v"))
            .map(|b| b.totals.uptime_secs),
        Some(40)
    );
}
