//! Clock trust: the scenarios, with the clock sources injected
//! (wall clock, monotonic seconds, kernel/router/central states) and fed
//! through [`clock_trust::assess`] into [`step`], as the driver does.

use super::*;
use crate::event::ClockSource;
use crate::monitor::clock_trust::{
    self, CHECKPOINT_SECS, CentralClock, ClockInputs, ClockLedger, RouterClock,
};

const HOUR: u64 = 3_600;
const DAY: i64 = 86_400;

/// Clock inputs: wall clock and monotonic seconds; no source trusted.
fn untrusted(wall: i64, mono: u64) -> ClockInputs {
    ClockInputs {
        wall: Timestamp::from_unix(wall),
        mono_secs: mono,
        kernel_synced: Some(false),
        router: None,
        central: None,
    }
}

/// The kernel says it is synchronised.
fn synced(wall: i64, mono: u64) -> ClockInputs {
    ClockInputs {
        kernel_synced: Some(true),
        ..untrusted(wall, mono)
    }
}

impl Agent {
    /// A cycle as the driver runs it: assess the clock against the
    /// persisted ledger, then step at the verdict's best time. Usage
    /// events (due whenever the clock jumps) are not the topic: left out.
    fn clocked(&mut self, snap: &Snapshot, inputs: ClockInputs) -> (Vec<EventKind>, Vec<Action>) {
        let verdict = clock_trust::assess(&inputs, &self.state.clock);
        let snap = Snapshot {
            clock: Some(verdict),
            ..snap.clone()
        };
        let (mut events, actions) = self.cycle(&snap, verdict.best_now);
        events.retain(|e| !matches!(e, EventKind::Usage { .. }));
        (events, actions)
    }
}

fn clock_event(trusted: bool, source: ClockSource, skew_secs: Option<i64>) -> EventKind {
    EventKind::Clock {
        trusted,
        source,
        skew_secs,
    }
}

fn provisional(user: &str, first: Timestamp) -> EventKind {
    match activated(user, "B1", 24, first) {
        EventKind::VoucherActivated {
            user,
            batch_id,
            valid_hours,
            first_login_at,
            expires_at,
            mac,
            ..
        } => EventKind::VoucherActivated {
            user,
            batch_id,
            valid_hours,
            first_login_at,
            expires_at,
            provisional: true,
            mac,
            estimated: false,
            comment: Name::default(),
        },
        other => other,
    }
}

fn corrected(first: Timestamp, was: Timestamp) -> EventKind {
    EventKind::VoucherCorrected {
        user: "v1".into(),
        batch_id: "B1".into(),
        valid_hours: ValidHours::from_hours(24),
        first_login_at: first,
        expires_at: first.plus_hours(24),
        provisional_first_login_at: was,
        comment: Name::default(),
    }
}

/// `FRESH` as the router shows it once activated at `first`.
fn written(first: Timestamp) -> Name {
    activation_bytes(FRESH, first, first.plus_hours(24))
}

fn write(first: Timestamp) -> Action {
    set_comment("*U1", "v1", written(first).as_bytes())
}

#[test]
fn boot_at_1970_activates_provisionally_and_corrects_once_ntp_arrives() {
    let session = hs("*1", "v1");
    let fresh = snap()
        .user(voucher("*U1", "v1", FRESH))
        .online(session.clone());
    let mut agent = Agent::new();
    // A Pi without RTC and without WAN: 1970 plus its uptime.
    let boot_wall = 120;
    let first = Timestamp::from_unix(boot_wall);
    assert_eq!(
        agent.clocked(&fresh, untrusted(boot_wall, 120)),
        (
            vec![
                clock_event(false, ClockSource::None, None),
                login(&session, VOUCHER_PROFILE),
                provisional("v1", first),
            ],
            vec![write(first)]
        )
    );
    // The provisional comment lands; nothing is expired although the
    // provisional expiry (1970-01-02) is far behind any real date.
    let shown = snap()
        .user(voucher("*U1", "v1", written(first).as_bytes()))
        .online(session.clone());
    assert_eq!(
        agent.clocked(&shown, untrusted(boot_wall + 60, 180)),
        (vec![], vec![])
    );
    assert!(
        agent
            .state
            .vouchers
            .get(&Name::from("v1"))
            .expect("tracked")
            .provisional
            .is_some()
    );

    // Two hours later NTP steps the clock to the real date.
    let real = T0 + 2 * 3_600;
    let mono = 120 + 2 * HOUR;
    let fixed = Timestamp::from_unix(real - 2 * 3_600);
    assert_eq!(
        agent.clocked(&shown, synced(real, mono)),
        (
            vec![
                clock_event(true, ClockSource::Kernel, None),
                corrected(fixed, first)
            ],
            vec![write(fixed)]
        )
    );
    assert_eq!(fixed, at(0));
    // The write failed: retried with the same times, no second event.
    assert_eq!(
        agent.clocked(&shown, synced(real + 30, mono + 30)),
        (vec![], vec![write(fixed)])
    );
    // Written: nothing left to do, and the term runs from the real login.
    let done = snap()
        .user(voucher("*U1", "v1", written(fixed).as_bytes()))
        .online(session.clone());
    assert_eq!(
        agent.clocked(&done, synced(real + 60, mono + 60)),
        (vec![], vec![])
    );
    assert!(agent.state.vouchers.is_empty());
    let (events, _) = agent.clocked(&done, synced(T0 + DAY - 1, mono + 22 * HOUR));
    assert_eq!(events, vec![]);
    let (events, _) = agent.clocked(&done, synced(T0 + DAY, mono + 22 * HOUR + 1));
    assert_eq!(events, vec![expired("v1", at(DAY), ExpiredAction::Disable)]);
}

#[test]
fn stale_clock_then_ntp_jumps_days_forward_does_not_expire_early() {
    let session = hs("*1", "v1");
    let fresh = snap()
        .user(voucher("*U1", "v1", FRESH))
        .online(session.clone());
    let mut agent = Agent::new();
    // fake-hwclock restored the time saved five days ago.
    let stale = T0 - 5 * DAY;
    let first = Timestamp::from_unix(stale);
    let (events, actions) = agent.clocked(&fresh, untrusted(stale, 50));
    assert_eq!(events[2], provisional("v1", first));
    assert_eq!(actions, vec![write(first)]);
    let shown = snap()
        .user(voucher("*U1", "v1", written(first).as_bytes()))
        .online(session.clone());
    // An hour later NTP jumps the clock forward by five days: the
    // provisional expiry is four days behind the new wall clock, but the
    // customer has used one hour of 24.
    let (events, actions) = agent.clocked(&shown, synced(T0 + 3_600, 50 + HOUR));
    assert_eq!(
        events,
        vec![
            clock_event(true, ClockSource::Kernel, None),
            corrected(at(0), first)
        ]
    );
    assert_eq!(actions, vec![write(at(0))]);
}

#[test]
fn untrusted_clock_expires_on_elapsed_time_only() {
    let session = hs("*1", "v1");
    let fresh = snap()
        .user(voucher("*U1", "v1", FRESH))
        .online(session.clone());
    let mut agent = Agent::new();
    let first = Timestamp::from_unix(T0);
    agent.clocked(&fresh, untrusted(T0, 0));
    let shown = snap()
        .user(voucher("*U1", "v1", written(first).as_bytes()))
        .online(session.clone());
    // A wall clock running fast (set wrongly ahead) says it is over; only
    // 23 hours really passed.
    assert_eq!(
        agent.clocked(&shown, untrusted(T0 + 3 * DAY, 23 * HOUR)),
        (vec![], vec![])
    );
    let (events, actions) = agent.clocked(&shown, untrusted(T0 + 3 * DAY, 24 * HOUR));
    assert_eq!(events, vec![expired("v1", at(DAY), ExpiredAction::Disable)]);
    assert_eq!(actions, vec![disable("*U1", "v1"), kick("*1", "v1")]);
}

#[test]
fn restart_while_untrusted_keeps_elapsed_time_as_a_lower_bound() {
    let session = hs("*1", "v1");
    let fresh = snap()
        .user(voucher("*U1", "v1", FRESH))
        .online(session.clone());
    let mut agent = Agent::new();
    let first = Timestamp::from_unix(120);
    agent.clocked(&fresh, untrusted(120, 120));
    let shown = snap()
        .user(voucher("*U1", "v1", written(first).as_bytes()))
        .online(session.clone());
    // Checkpoints are written only every few minutes: not at every poll.
    let saved = agent.state.clock;
    agent.clocked(&shown, untrusted(150, 150));
    assert_eq!(agent.state.clock, saved);
    agent.clocked(&shown, untrusted(120 + 20 * 3_600, 120 + 20 * HOUR));
    assert_eq!(agent.state.clock.elapsed_secs, 20 * HOUR);

    // Power cut: the host boots again at 1970 with a new monotonic clock,
    // and the agent starts from its state file. Only the new uptime is
    // sure to have passed: 20 h + 3 h.
    let mut agent = Agent {
        state: persisted(&agent.state),
        cfg: cfg(),
        users: Default::default(),
    };
    let (events, actions) = agent.clocked(&shown, untrusted(3 * 3_600, 3 * HOUR));
    assert_eq!(events, vec![]);
    assert_eq!(actions, vec![]);
    assert_eq!(agent.state.clock.elapsed_secs, 23 * HOUR);
    // Another restart on the same boot continues the count exactly.
    let mut agent = Agent {
        state: persisted(&agent.state),
        cfg: cfg(),
        users: Default::default(),
    };
    assert_eq!(
        agent.clocked(&shown, untrusted(4 * 3_600 - 1, 4 * HOUR - 1)),
        (vec![], vec![])
    );
    let (events, _) = agent.clocked(&shown, untrusted(4 * 3_600, 4 * HOUR));
    assert_eq!(
        events,
        vec![expired("v1", first.plus_hours(24), ExpiredAction::Disable)]
    );
}

#[test]
fn trusted_activation_expires_on_the_floor_after_a_1970_reboot() {
    let mut agent = Agent::new();
    let active = snap().user(voucher("*U1", "v1", FRESH_ACTIVATED));
    agent.clocked(&active, synced(T0, 1_000));
    // 23 h later the host reboots into 1970; the floor is the last trusted
    // time plus the elapsed time the ledger is sure of.
    agent.clocked(&active, synced(T0 + 23 * 3_600, 1_000 + 23 * HOUR));
    let (events, _) = agent.clocked(&active, untrusted(600, 600));
    assert_eq!(events, vec![clock_event(false, ClockSource::None, None)]);
    let (events, _) = agent.clocked(&active, untrusted(3_600, 3_600));
    assert_eq!(events, vec![expired("v1", at(DAY), ExpiredAction::Disable)]);
}

#[test]
fn router_ntp_and_agent_disagreeing() {
    let ledger = ClockLedger::default();
    // The agent's clock is stale and unsynchronised; the router's NTP
    // client is synchronised: the router's time is used, skew reported.
    let router = RouterClock {
        time: at(0),
        ntp_synced: Some(true),
    };
    let v = clock_trust::assess(
        &ClockInputs {
            router: Some(router),
            ..untrusted(T0 - 3 * DAY, 10)
        },
        &ledger,
    );
    assert!(v.trusted);
    assert_eq!(v.source, ClockSource::RouterNtp);
    assert_eq!(v.best_now, at(0));
    assert_eq!(v.skew_secs, Some(-3 * DAY));
    // Both synchronised but 90 s apart: the kernel wins, the skew is shown.
    let v = clock_trust::assess(
        &ClockInputs {
            router: Some(router),
            ..synced(T0 + 90, 10)
        },
        &ledger,
    );
    assert_eq!(
        (v.source, v.best_now, v.skew_secs),
        (ClockSource::Kernel, at(90), Some(90))
    );
    // A router clock that NTP has not set is no reference at all.
    let v = clock_trust::assess(
        &ClockInputs {
            router: Some(RouterClock {
                time: at(DAY),
                ntp_synced: Some(false),
            }),
            ..untrusted(T0, 10)
        },
        &ledger,
    );
    assert_eq!(
        (v.trusted, v.source, v.skew_secs),
        (false, ClockSource::None, None)
    );
    // The central server's Date header is the last resort.
    let v = clock_trust::assess(
        &ClockInputs {
            central: Some(CentralClock {
                time: at(60),
                error_secs: 1,
            }),
            ..untrusted(T0, 10)
        },
        &ledger,
    );
    assert_eq!(
        (v.trusted, v.source, v.best_now),
        (true, ClockSource::Central, at(60))
    );
}

#[test]
fn activation_on_router_time_is_not_provisional_and_skew_changes_are_reported() {
    let session = hs("*1", "v1");
    let fresh = snap()
        .user(voucher("*U1", "v1", FRESH))
        .online(session.clone());
    let mut agent = Agent::new();
    let with_router = |wall: i64, router: i64, mono: u64| ClockInputs {
        router: Some(RouterClock {
            time: Timestamp::from_unix(router),
            ntp_synced: Some(true),
        }),
        ..untrusted(wall, mono)
    };
    let (events, actions) = agent.clocked(&fresh, with_router(T0 - DAY, T0, 10));
    assert_eq!(
        events,
        vec![
            clock_event(true, ClockSource::RouterNtp, Some(-DAY)),
            login(&session, VOUCHER_PROFILE),
            activated("v1", "B1", 24, at(0)),
        ]
    );
    assert_eq!(actions, vec![set_comment("*U1", "v1", FRESH_ACTIVATED)]);
    let shown = snap()
        .user(voucher("*U1", "v1", FRESH_ACTIVATED))
        .online(session.clone());
    // Skew wobbling by seconds is not news; a minute is.
    assert_eq!(
        agent
            .clocked(&shown, with_router(T0 - DAY + 70, T0 + 60, 70))
            .0,
        vec![]
    );
    assert_eq!(
        agent
            .clocked(&shown, with_router(T0 - DAY + 120, T0 + 180, 190))
            .0,
        vec![clock_event(true, ClockSource::RouterNtp, Some(-DAY - 60))]
    );
}

#[test]
fn ledger_checkpoints_every_few_minutes_and_on_monotonic_reset() {
    let mut ledger = ClockLedger::default();
    let verdict = |mono: u64| clock_trust::assess(&untrusted(0, mono), &ClockLedger::default());
    let (next, _, now) = clock_trust::advance(&ledger, &verdict(500));
    assert_eq!(
        (next.elapsed_secs, next.mono_secs, now.elapsed),
        (0, 500, Some(0))
    );
    ledger = next;
    let (next, _, now) = clock_trust::advance(&ledger, &verdict(500 + CHECKPOINT_SECS - 1));
    assert_eq!(next, ledger);
    assert_eq!(now.elapsed, Some(CHECKPOINT_SECS - 1));
    let (next, _, _) = clock_trust::advance(&ledger, &verdict(500 + CHECKPOINT_SECS));
    assert_eq!(
        (next.elapsed_secs, next.mono_secs),
        (CHECKPOINT_SECS, 500 + CHECKPOINT_SECS)
    );
    ledger = next;
    // The monotonic clock went back: a host reboot, checkpointed at once.
    let (next, _, now) = clock_trust::advance(&ledger, &verdict(7));
    assert_eq!(
        (next.elapsed_secs, next.mono_secs),
        (CHECKPOINT_SECS + 7, 7)
    );
    assert_eq!(now.elapsed, Some(CHECKPOINT_SECS + 7));
}

fn router_ntp(secs_after_t0: i64) -> Option<RouterClock> {
    Some(RouterClock {
        time: at(secs_after_t0),
        ntp_synced: Some(true),
    })
}

fn central(secs_after_t0: i64, error_secs: u64) -> Option<CentralClock> {
    Some(CentralClock {
        time: at(secs_after_t0),
        error_secs,
    })
}

#[test]
fn disagreeing_trusted_sources_use_the_earliest() {
    let ledger = ClockLedger::default();
    let judge = |inputs: ClockInputs| clock_trust::judge(&inputs, &ledger);
    // A router whose offset was misread runs 10 h ahead of a synchronised
    // kernel: the kernel's (earlier) time is used.
    let j = judge(ClockInputs {
        router: router_ntp(10 * 3_600),
        ..synced(T0, 10)
    });
    assert!(j.disagrees());
    assert_eq!(j.spread_secs, Some(10 * 3_600));
    assert_eq!(
        (j.verdict.trusted, j.verdict.source, j.verdict.best_now),
        (true, ClockSource::Kernel, at(0))
    );
    // Running an hour behind instead: the router's time, though the kernel
    // is preferred when they agree.
    let j = judge(ClockInputs {
        router: router_ntp(-3_600),
        ..synced(T0, 10)
    });
    assert_eq!(
        (j.verdict.source, j.verdict.best_now, j.verdict.skew_secs),
        (ClockSource::RouterNtp, at(-3_600), Some(3_600))
    );
    // Kernel unsynchronised, router NTP and central 5 h apart: central.
    let j = judge(ClockInputs {
        router: router_ntp(5 * 3_600),
        central: central(0, 2),
        ..untrusted(T0 - DAY, 10)
    });
    assert!(j.disagrees());
    assert_eq!(
        (j.verdict.source, j.verdict.best_now),
        (ClockSource::Central, at(0))
    );
    assert_eq!(
        j.readings,
        clock_trust::Readings {
            kernel: None,
            router_ntp: Some(at(5 * 3_600)),
            central: Some(at(0)),
        }
    );
}

#[test]
fn central_error_bound_counts_before_sources_disagree() {
    let ledger = ClockLedger::default();
    let judge = |inputs: ClockInputs| clock_trust::judge(&inputs, &ledger);
    // Central's time lies within [T0, T0 + 10]: a router 125 s ahead is
    // 115 s beyond that, which is agreement (router NTP preferred).
    let j = judge(ClockInputs {
        router: router_ntp(125),
        central: central(0, 10),
        ..untrusted(T0, 10)
    });
    assert_eq!(j.spread_secs, Some(115));
    assert!(!j.disagrees());
    assert_eq!(
        (j.verdict.source, j.verdict.best_now),
        (ClockSource::RouterNtp, at(125))
    );
    // 131 s ahead is 121 s beyond: disagreement, central's lower bound.
    let j = judge(ClockInputs {
        router: router_ntp(131),
        central: central(0, 10),
        ..untrusted(T0, 10)
    });
    assert!(j.disagrees());
    assert_eq!(
        (j.verdict.source, j.verdict.best_now),
        (ClockSource::Central, at(0))
    );
    // A router behind central's lower bound is measured from it.
    let j = judge(ClockInputs {
        router: router_ntp(-121),
        central: central(0, 10),
        ..untrusted(T0, 10)
    });
    assert_eq!((j.spread_secs, j.verdict.best_now), (Some(121), at(-121)));
    // Central alone is trusted at its lower bound.
    let j = judge(ClockInputs {
        central: central(0, 30),
        ..untrusted(T0 - DAY, 10)
    });
    assert_eq!(
        (
            j.verdict.trusted,
            j.verdict.source,
            j.verdict.best_now,
            j.spread_secs
        ),
        (true, ClockSource::Central, at(0), None)
    );
}

#[test]
fn one_alert_per_disagreement_episode() {
    use clock_trust::EpisodeChange::{Began, Ended};
    let ledger = ClockLedger::default();
    let with_router = |ahead: Option<i64>| {
        clock_trust::judge(
            &ClockInputs {
                router: ahead.and_then(router_ntp),
                ..synced(T0, 10)
            },
            &ledger,
        )
    };
    let mut open = false;
    let mut changes = Vec::new();
    // Apart, still apart, NTP gone for a while, back (still apart),
    // hovering between the limits, agreeing, apart again.
    for ahead in [
        Some(0),
        Some(3_600),
        Some(3_700),
        None,
        Some(3_600),
        Some(100),
        Some(121),
        Some(60),
        Some(121),
    ] {
        let (next, change) = clock_trust::episode(open, &with_router(ahead));
        open = next;
        changes.push(change);
    }
    assert_eq!(
        changes,
        vec![
            None,
            Some(Began),
            None,
            None,
            None,
            None,
            None,
            Some(Ended),
            Some(Began)
        ]
    );
}

#[test]
fn a_misread_router_offset_does_not_expire_a_voucher_early() {
    // v1 expires at T0; it is really half an hour before that. The router's
    // NTP is synchronised but its offset was misread: it reads 5 h ahead.
    let session = hs("*1", "v1");
    let snap = snap()
        .user(voucher("*U1", "v1", EXPIRES_AT_T0))
        .online(session.clone());
    let mut agent = Agent::new();
    let (events, actions) = agent.clocked(
        &snap,
        ClockInputs {
            router: router_ntp(5 * 3_600 - 1_800),
            ..synced(T0 - 1_800, 10)
        },
    );
    assert_eq!(
        events[0],
        clock_event(true, ClockSource::Kernel, Some(-5 * 3_600))
    );
    assert!(actions.is_empty(), "{actions:?}");
    // Kernel unsynchronised (a Pi without NTP), central reachable: central
    // is the earlier, and still nothing expires.
    let (_, actions) = agent.clocked(
        &snap,
        ClockInputs {
            router: router_ntp(5 * 3_600 - 1_700),
            central: central(-1_700, 1),
            ..untrusted(T0 - DAY, 110)
        },
    );
    assert!(actions.is_empty(), "{actions:?}");
    // Once real time passes T0, it expires.
    let (events, actions) = agent.clocked(
        &snap,
        ClockInputs {
            router: router_ntp(5 * 3_600 + 10),
            central: central(10, 1),
            ..untrusted(T0 - DAY, 1_820)
        },
    );
    assert!(events.contains(&expired("v1", at(0), ExpiredAction::Disable)));
    assert_eq!(actions, vec![disable("*U1", "v1"), kick("*1", "v1")]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Offsets of a misread clock: up to a few days either way.
    const WRONG: std::ops::RangeInclusive<i64> = -4 * DAY..=4 * DAY;

    fn inputs(
        wall: i64,
        kernel: bool,
        router: Option<i64>,
        central_at: Option<(i64, u64)>,
    ) -> ClockInputs {
        ClockInputs {
            wall: at(wall),
            mono_secs: 10,
            kernel_synced: Some(kernel),
            router: router.and_then(router_ntp),
            central: central_at.and_then(|(t, e)| central(t, e)),
        }
    }

    proptest! {
        #[test]
        fn with_disagreeing_sources_the_time_in_use_is_the_minimum(
            wall in WRONG,
            kernel in any::<bool>(),
            router in proptest::option::of(WRONG),
            central_at in proptest::option::of((WRONG, 0u64..30)),
        ) {
            let j = clock_trust::judge(&inputs(wall, kernel, router, central_at), &ClockLedger::default());
            let trusted: Vec<Timestamp> = [
                kernel.then_some(at(wall)),
                router.map(at),
                central_at.map(|(t, _)| at(t)),
            ]
            .into_iter()
            .flatten()
            .collect();
            prop_assert_eq!(j.verdict.trusted, !trusted.is_empty());
            if j.disagrees() {
                prop_assert_eq!(Some(j.verdict.best_now), trusted.iter().copied().min());
            } else if let Some(first) = trusted.first() {
                // Agreeing: the preferred source, within the limit of the
                // earliest.
                prop_assert_eq!(j.verdict.best_now, *first);
            }
            if let (Some(min), true) = (trusted.iter().min(), j.verdict.trusted) {
                let limit = clock_trust::DISAGREE_SECS as i64 + central_at.map_or(0, |c| c.1 as i64);
                prop_assert!(j.verdict.best_now.secs_since(*min) <= limit);
            }
        }

        #[test]
        fn a_wrong_router_offset_never_brings_an_expiry_forward(
            wrong in WRONG,
            kernel_right in any::<bool>(),
            error in 0u64..30,
            stale_wall in WRONG,
        ) {
            // The real time is T0; one source knows it (the kernel, or
            // central within its error bound); router NTP is off by `wrong`.
            let central_at = (!kernel_right).then_some((0, error));
            let wall = if kernel_right { 0 } else { stale_wall };
            let v = clock_trust::assess(
                &inputs(wall, kernel_right, Some(wrong), central_at),
                &ClockLedger::default(),
            );
            let late_by = v.best_now.secs_since(at(0));
            let slack = if kernel_right { 0 } else { clock_trust::DISAGREE_SECS as i64 + error as i64 };
            // Never ahead of real time beyond what the sources can tell
            // apart; and a wrong offset big enough to tell is never used
            // to move time forward.
            prop_assert!(late_by <= slack.min(wrong.max(0)), "{late_by} {slack} {wrong}");
        }
    }
}
