//! Property tests over random sequences of snapshots.

use super::*;

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
        let mut open: BTreeMap<(Service, Id), SessionRef> = BTreeMap::new();
        let (mut logins, mut logouts) = (0usize, 0usize);
        for (presence, boot, gap, restart) in cycles {
            now = now.plus_secs(gap);
            let snap = cycle_snapshot(&presence, boot);
            let out = step(&state, &snap, now, &cfg);
            // The agent's way, on a state nothing shares (updated in
            // place): the same state, events and actions, and session
            // writes equal to the delta between the two states.
            let mut own = persisted(&state);
            own.last_poll = state.last_poll;
            let changes = step_in_place(&mut own, &mut snap.clone(), now, &cfg);
            prop_assert_eq!(&own, &out.state);
            prop_assert_eq!(own.last_poll, out.state.last_poll);
            prop_assert_eq!(&changes.events, &out.events);
            prop_assert_eq!(&changes.actions, &out.actions);
            let delta = crate::store::StateDelta::between(&state, &std::sync::Arc::new(own));
            prop_assert_eq!(&changes.sessions_put, &delta.sessions_put);
            prop_assert_eq!(&changes.sessions_del, &delta.sessions_del);
            for event in &out.events {
                match event {
                    EventKind::Login { session, .. } => {
                        prop_assert_ne!(session.user.as_bytes(), b"x");
                        let key = (session.service, session.active_id);
                        prop_assert_eq!(open.insert(key, session.clone()), None);
                        logins += 1;
                    }
                    EventKind::Logout { session, .. } => {
                        let key = (session.service, session.active_id);
                        let opened = open.remove(&key);
                        prop_assert_eq!(opened.as_ref(), Some(session));
                        logouts += 1;
                    }
                    EventKind::Usage { session, .. } => {
                        let key = (session.service, session.active_id);
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

// ---------------------------------------------------------------------------
// Property: skipping the work on unchanged user lists changes nothing
// ---------------------------------------------------------------------------

/// The user lists of a cycle: counters and comment choices per user.
fn user_lists(totals: &[(u64, u64)], comments: &[u8]) -> (Vec<UserRow>, Vec<UserRow>) {
    let comment = |c: u8| -> &[u8] {
        match c {
            0 => b"",
            1 => MIKHMON,
            2 => b"hand made",
            _ => b"VOUCHER_SYSTEM|B1|1|1|24",
        }
    };
    let hotspot = HS_USERS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let profile = if *name == "x" {
                "default"
            } else {
                VOUCHER_PROFILE
            };
            let u = user(&format!("*U{i}"), name, profile, comment(comments[i]));
            let (up, bytes) = totals[i];
            with_totals(u, up, bytes, bytes / 2)
        })
        .collect();
    let ppp = PPP_USERS
        .iter()
        .enumerate()
        .map(|(i, name)| secret(&format!("*S{i}"), name, comment(comments[4 + i])))
        .collect();
    (hotspot, ppp)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `users_same` (set by the agent when both lists are the rows the
    /// last step saw) only skips work: the same states, events and
    /// actions as a step that redoes it, whatever the sessions do.
    #[test]
    fn users_same_only_skips_work(
        cycles in proptest::collection::vec(
            (
                proptest::collection::vec(presence(), 6),
                any::<bool>(),
                proptest::collection::vec((0u64..500, 0u64..5_000), 4),
                proptest::collection::vec(0u8..4, 6),
                any::<bool>(),
                1i64..400,
                proptest::option::weighted(0.5, 0u8..4),
            ),
            1..12,
        ),
    ) {
        let cfg = cfg();
        let (mut fast, mut slow) = (MonitorState::default(), MonitorState::default());
        let mut now = at(0);
        let mut lists: Option<(Vec<UserRow>, Vec<UserRow>)> = None;
        for (presence, new_users, totals, comments, kept, gap, counted) in cycles {
            now = now.plus_secs(gap);
            let same = lists.is_some() && !new_users && kept;
            if lists.is_none() || new_users {
                lists = Some(user_lists(&totals, &comments));
            }
            let Some((hotspot, ppp)) = lists.clone() else { unreachable!() };
            let mut snap = cycle_snapshot(&presence, 0);
            snap.hotspot_users = hotspot;
            snap.ppp_secrets = ppp;
            snap.hotspot_users_kept = kept;
            // A poll that only counted the active lists (rows ignored),
            // sometimes with the router rebooted meanwhile.
            if let Some(boot) = counted {
                snap.sessions_kept = true;
                snap.router_boot = cycle_snapshot(&[], boot).router_boot;
            }
            let mut slow_snap = snap.clone();
            snap.users_same = same;
            let a = step_in_place(&mut fast, &mut snap, now, &cfg);
            let b = step_in_place(&mut slow, &mut slow_snap, now, &cfg);
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(&a.events, &b.events);
            prop_assert_eq!(&a.actions, &b.actions);
            prop_assert_eq!(&a.sessions_put, &b.sessions_put);
        }
    }
}
