//! MAC lock: a voucher bound to the first MAC that logs in with it.

use super::*;

const MAC: &str = "AA:BB:CC:00:00:01";
/// `FRESH` activated at T0 and locked to `MAC` (the tenth field).
const LOCKED: &[u8] = b"VOUCHER_SYSTEM|B1|5000|4000|24|V1|2024-01-30|admin|2024-01-31T12:00:00Z|2024-02-01T12:00:00Z|AA:BB:CC:00:00:01";

fn lock(id: &str, user: &str) -> Action {
    Action::LockMac {
        id: id.into(),
        user: user.into(),
        mac: Mac::parse(MAC.as_bytes()).unwrap(),
    }
}

fn activated_locked(user: &str) -> EventKind {
    match activated(user, "B1", 24, at(0)) {
        EventKind::VoucherActivated {
            user,
            batch_id,
            valid_hours,
            first_login_at,
            expires_at,
            provisional,
            ..
        } => EventKind::VoucherActivated {
            user,
            batch_id,
            valid_hours,
            first_login_at,
            expires_at,
            provisional,
            mac: Mac::parse(MAC.as_bytes()),
            estimated: false,
            comment: Name::default(),
        },
        other => other,
    }
}

#[test]
fn first_login_locks_the_mac_records_it_and_retries_until_written() {
    let session = hs("*1", "v1");
    let fresh = snap()
        .user(voucher("*U1", "v1", FRESH))
        .online(session.clone());
    let mut agent = Agent::with(MonitorConfig {
        mac_lock: true,
        ..cfg()
    });
    // Lock first: a failed lock holds the comment write back (the driver
    // skips a user's later actions), so a written comment means locked.
    let lock_and_write = vec![lock("*U1", "v1"), set_comment("*U1", "v1", LOCKED)];
    assert_eq!(
        agent.cycle(&fresh, at(0)),
        (
            vec![login(&session, VOUCHER_PROFILE), activated_locked("v1")],
            lock_and_write.clone()
        )
    );
    assert_eq!(agent.cycle(&fresh, at(60)), (vec![], lock_and_write));
    let written = snap().user(voucher("*U1", "v1", LOCKED)).online(session);
    assert_eq!(agent.cycle(&written, at(120)), (vec![], vec![]));
    assert!(agent.state.vouchers.is_empty());
}

#[test]
fn profile_pattern_locks_only_matching_vouchers() {
    let mut agent = Agent::with(MonitorConfig {
        mac_lock_pattern: Some("*-locked".into()),
        ..cfg()
    });
    let snap = snap()
        .user(user("*U1", "v1", "voucher-locked", FRESH))
        .user(voucher("*U2", "v2", FRESH))
        .online(hs("*1", "v1"))
        .online(hs("*2", "v2"));
    let (events, actions) = agent.cycle(&snap, at(0));
    assert!(events.contains(&activated_locked("v1")));
    assert!(events.contains(&activated("v2", "B1", 24, at(0))));
    assert_eq!(
        actions,
        vec![
            lock("*U1", "v1"),
            set_comment("*U1", "v1", LOCKED),
            set_comment("*U2", "v2", FRESH_ACTIVATED),
        ]
    );
}

#[test]
fn no_mac_no_lock_but_a_warning() {
    let mut session = hs("*1", "v1");
    session.mac = None;
    let fresh = snap().user(voucher("*U1", "v1", FRESH)).online(session);
    let mut agent = Agent::with(MonitorConfig {
        mac_lock: true,
        ..cfg()
    });
    let out = agent.run(&fresh, at(0));
    assert_eq!(out.actions, vec![set_comment("*U1", "v1", FRESH_ACTIVATED)]);
    assert_eq!(out.warnings.len(), 1);
}
