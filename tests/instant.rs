//! Instant detection (listen beside the poll) and sessions never seen,
//! with the real binary against the simulator.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use mikrotik_edge::sim::SimHandle;
use serde_json::Value;

const VOUCHER: &[u8] = b"VOUCHER_SYSTEM|B1|5000|3000|24|VEN1|2024-01-01|admin";

/// The agent polling every `poll_secs` seconds.
fn start(sim: &SimHandle, state: &Path, poll_secs: &str) -> Agent {
    start_with(sim, state, poll_secs, &[])
}

fn start_with(sim: &SimHandle, state: &Path, poll_secs: &str, extra: &[(&str, &str)]) -> Agent {
    Agent::run(sim)
        .state(state)
        .env("MIKROTIK_EDGE_POLL_SECS", poll_secs)
        .envs(extra)
        .start()
}

fn is(e: &Value, kind: &str, user: &str) -> bool {
    e["type"] == kind && e["user"] == user
}

/// The limit for "instant": one second, stretched under qemu.
fn instant_limit() -> Duration {
    Duration::from_millis(1000 * u64::from(slow_factor()))
}

#[test]
fn logins_and_logouts_arrive_within_a_second_with_a_30s_poll() {
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    sim.add_ppp_secret("c1", "p", "pppoe-10M", b"");
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "30");
    // The first poll of the connection ran (listens start just before it).
    agent.wait_log("cycle:", 1);
    agent.wait_log("listening on the active lists", 1);

    let before = mikrotik_edge::clock::Timestamp::now();
    let t = Instant::now();
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let (at, login) = agent.wait_event_within(instant_limit(), |e| is(e, "login", "v1"));
    assert!(at - t < instant_limit(), "login after {:?}", at - t);
    assert_eq!(login["seen_at_start"], false);
    // The voucher is activated at the login itself, not at the next poll.
    let (_, act) = agent.wait_event_within(instant_limit(), |e| is(e, "voucher_activated", "v1"));
    assert_eq!(act["estimated"], false);
    let first = act["first_login_at"].as_str().unwrap().to_owned();
    let first = mikrotik_edge::clock::parse_rfc3339(first.as_bytes()).unwrap();
    assert!(first.secs_since(before) <= 2, "{first} vs {before}");
    // The comment is written by then.
    let ok = wait_until(secs(5), || {
        sim.find("/ip/hotspot/user", "v1").is_some_and(|row| {
            row.iter()
                .any(|(k, v)| k == b"comment" && v.windows(4).any(|w| w == b"|202"))
        })
    });
    assert!(ok, "activation comment not written");

    let t = Instant::now();
    sim.ppp_connect("c1", "10.10.0.2", "04:00:00:00:00:01")
        .unwrap();
    let (at, _) = agent.wait_event_within(instant_limit(), |e| is(e, "login", "c1"));
    assert!(at - t < instant_limit());

    // A voucher created after the poll (heard by listen on the user list)
    // is activated at its first login too, without waiting for a poll.
    sim.add_hotspot_user("v3", "p", "voucher-1h", VOUCHER);
    agent.wait_log("listen: hotspot user \"v3\" kept", 1);
    let t = Instant::now();
    sim.hotspot_login("v3", "10.5.50.4", "02:00:00:00:00:04")
        .unwrap();
    let (at, _) = agent.wait_event_within(instant_limit(), |e| is(e, "voucher_activated", "v3"));
    assert!(at - t < instant_limit());

    sim.advance(Duration::from_secs(42));
    let t = Instant::now();
    assert!(sim.hotspot_logout("v1"));
    let (at, logout) = agent.wait_event_within(instant_limit(), |e| is(e, "logout", "v1"));
    assert!(at - t < instant_limit());
    assert_eq!(logout["reason"], "gone");
    assert!(sim.ppp_disconnect("c1"));
    agent.wait_event_within(instant_limit(), |e| is(e, "logout", "c1"));

    // A reconnect: listens come back, nothing is reported twice.
    sim.fatal_all("test");
    agent.wait_log("listening on the active lists", 2);
    agent.wait_log("cycle:", 2);
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let ok = wait_until(secs(3), || {
        agent
            .events()
            .iter()
            .filter(|e| is(e, "login", "v1"))
            .count()
            == 2
    });
    assert!(ok, "second login not seen:\n{}", agent.log());
    let events = agent.events();
    for (kind, user, n) in [
        ("login", "v1", 2),
        ("logout", "v1", 1),
        ("login", "c1", 1),
        ("logout", "c1", 1),
        ("voucher_activated", "v1", 1),
        ("voucher_activated", "v3", 1),
    ] {
        let got = events.iter().filter(|e| is(e, kind, user)).count();
        assert_eq!(got, n, "{kind} {user}: {events:#?}");
    }
}

#[test]
fn refused_listen_falls_back_to_polling_and_says_so_once() {
    let sim = sim();
    sim.refuse_listen("/ppp/active", true);
    sim.add_hotspot_user("v1", "p", "voucher-1h", b"");
    sim.add_ppp_secret("c1", "p", "pppoe-10M", b"");
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "2");
    agent.wait_log("cycle:", 1);
    let refused = "listen on /ppp/active ended (no such command)";
    agent.wait_log(refused, 1);
    // PPP sessions still come from the poll; hotspot ones from listen.
    sim.ppp_connect("c1", "10.10.0.2", "04:00:00:00:00:01")
        .unwrap();
    agent.wait_event_within(secs(10), |e| is(e, "login", "c1"));
    let t = Instant::now();
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let (at, _) = agent.wait_event_within(secs(5), |e| is(e, "login", "v1"));
    assert!(at - t < instant_limit());
    // Re-tried after a reconnect, still refused: said only once.
    sim.fatal_all("test");
    agent.wait_log("listening on the active lists", 2);
    agent.wait_log("cycle:", 3);
    assert!(sim.ppp_disconnect("c1"));
    agent.wait_event_within(secs(10), |e| is(e, "logout", "c1"));
    assert_eq!(agent.count(refused), 1, "{}", agent.log());
}

#[test]
fn sessions_hidden_from_the_agent_are_reported_as_unseen_usage() {
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    let dir = tempfile::tempdir().unwrap();
    // Cumulative counters move without a listen row: they arrive with the
    // full read of the user list, here every 2 s.
    let agent = start_with(
        &sim,
        &dir.path().join("state.redb"),
        "1",
        &[("MIKROTIK_EDGE_USER_READ_SECS", "2")],
    );
    agent.wait_log("cycle:", 1);
    // Eleven sessions begin and end where the agent cannot see them.
    sim.hide_sessions(true);
    for i in 0..11 {
        sim.hotspot_login("v1", "10.5.50.2", &format!("02:00:00:00:00:{i:02}"))
            .unwrap();
        sim.advance(Duration::from_secs(10));
        assert!(sim.hotspot_logout("v1"));
    }
    sim.hide_sessions(false);
    let (_, usage) = agent.wait_event_within(secs(10), |e| is(e, "usage", "v1"));
    assert_eq!(usage["unseen"], true);
    assert_eq!(usage["uptime_secs"], 110);
    assert!(usage["bytes_out"].as_u64().unwrap_or(0) > 0);
    let (_, act) = agent.wait_event_within(secs(5), |e| is(e, "voucher_activated", "v1"));
    assert_eq!(act["estimated"], true);
    // reset-counters is not usage, and nothing is reported twice.
    assert!(sim.hotspot_reset_counters("v1"));
    let cycles = agent.count("cycle:");
    agent.wait_log("cycle:", cycles + 3);
    let events = agent.events();
    assert_eq!(events.iter().filter(|e| is(e, "usage", "v1")).count(), 1);
    assert_eq!(events.iter().filter(|e| is(e, "login", "v1")).count(), 0);
    assert_eq!(
        events
            .iter()
            .filter(|e| is(e, "voucher_activated", "v1"))
            .count(),
        1
    );
}

fn count(log: &[String], command: &str) -> usize {
    log.iter().filter(|c| *c == command).count()
}

#[test]
fn user_lists_are_listened_to_and_read_in_full_only_when_due() {
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    sim.add_ppp_secret("c1", "p", "pppoe-10M", b"");
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "1");
    agent.wait_log("cycle:", 2);
    sim.clear_command_log();

    // A user made by hand and a new voucher: heard by listen, no re-read.
    sim.add_hotspot_user("hand", "p", "default", b"made by hand");
    agent.wait_event_within(secs(5), |e| is(e, "manual_user", "hand"));
    sim.add_hotspot_user("v2", "p", "voucher-1h", VOUCHER);
    // The new voucher is known to the listen path at once: its first
    // login activates it without waiting for a poll.
    agent.wait_log("listen: hotspot user \"v2\" kept", 1);
    sim.hotspot_login("v2", "10.5.50.3", "02:00:00:00:00:03")
        .unwrap();
    agent.wait_event_within(secs(5), |e| is(e, "voucher_activated", "v2"));
    // A hand edit that breaks v1's dates is seen too.
    sim.set_item(
        "/ip/hotspot/user",
        "v1",
        &[(
            "comment",
            b"VOUCHER_SYSTEM|B1|5000|3000|24|VEN1|2024-01-01|admin|garbage|",
        )],
    )
    .unwrap();
    agent.wait_event_within(secs(5), |e| is(e, "voucher_invalid", "v1"));
    let cycles = agent.count("cycle:");
    agent.wait_log("cycle:", cycles + 2);
    let log = sim.command_log();
    assert!(count(&log, "/ip/hotspot/active/print") >= 3, "{log:?}");
    assert_eq!(count(&log, "/ip/hotspot/user/print"), 0, "{log:?}");
    assert_eq!(count(&log, "/ppp/secret/print"), 0, "{log:?}");
    // Each event once, though the listen and the polls both saw them.
    let events = agent.events();
    for (kind, user) in [
        ("manual_user", "hand"),
        ("voucher_activated", "v2"),
        ("voucher_invalid", "v1"),
    ] {
        let n = events.iter().filter(|e| is(e, kind, user)).count();
        assert_eq!(n, 1, "{kind} {user}: {}", agent.log());
    }
}

#[test]
fn user_lists_are_read_every_poll_without_their_listen_or_with_user_read_secs_0() {
    // Listen refused on the hotspot users: that list is read at every
    // poll, the PPP secrets (listened to) are not.
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    sim.refuse_listen("/ip/hotspot/user", true);
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "1");
    agent.wait_log("cycle:", 2);
    agent.wait_log("listen on /ip/hotspot/user ended", 1);
    sim.clear_command_log();
    let cycles = agent.count("cycle:");
    agent.wait_log("cycle:", cycles + 3);
    let log = sim.command_log();
    let polls = count(&log, "/ip/hotspot/active/print");
    assert!(
        count(&log, "/ip/hotspot/user/print").abs_diff(polls) <= 1,
        "{log:?}"
    );
    assert_eq!(count(&log, "/ppp/secret/print"), 0, "{log:?}");
    // Still followed: a user made by hand is reported by the poll.
    sim.add_hotspot_user("hand", "p", "default", b"made by hand");
    agent.wait_event_within(secs(5), |e| is(e, "manual_user", "hand"));
    drop(agent);

    // `user_read_secs = 0`: both lists every poll, and no listen on them.
    let sim = common::sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_with(
        &sim,
        &dir.path().join("state.redb"),
        "1",
        &[("MIKROTIK_EDGE_USER_READ_SECS", "0")],
    );
    agent.wait_log("cycle:", 1);
    let at_start = sim.command_log();
    assert!(
        !at_start
            .iter()
            .any(|c| c.ends_with("/user/listen") || c.ends_with("/secret/listen")),
        "{at_start:?}"
    );
    assert!(at_start.iter().any(|c| c == "/ip/hotspot/active/listen"));
    sim.clear_command_log();
    let cycles = agent.count("cycle:");
    agent.wait_log("cycle:", cycles + 3);
    let log = sim.command_log();
    let polls = count(&log, "/ip/hotspot/active/print");
    assert!(polls >= 2, "{log:?}");
    for list in ["/ip/hotspot/user/print", "/ppp/secret/print"] {
        assert!(count(&log, list).abs_diff(polls) <= 1, "{list}: {log:?}");
    }
}

#[test]
fn a_first_poll_writing_many_comments_takes_their_echoes_as_it_goes() {
    let sim = sim();
    let n = 200;
    for i in 0..n {
        let name = format!("v{i}");
        sim.add_hotspot_user(&name, "p", "voucher-1h", VOUCHER);
        sim.hotspot_login(
            &name,
            &format!("10.5.{}.{}", 50 + i / 200, 2 + i % 200),
            &format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256),
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "1");
    // The first poll activates every voucher and writes each comment; the
    // router echoes each write on the user list's listen, and the agent
    // takes those rows between its writes, not after the last.
    agent.wait_log("user list rows taken while writing to the router", 1);
    let activated = wait_until(secs(20), || {
        agent
            .events()
            .iter()
            .filter(|e| e["type"] == "voucher_activated")
            .count()
            == n
    });
    assert!(activated, "{}", agent.log());
    let cycles = agent.count("cycle:");
    agent.wait_log("cycle:", cycles + 1);
    sim.clear_command_log();
    agent.wait_log("cycle:", cycles + 4);
    // Nothing was lost: the kept copy of the users has every written
    // comment (no write is planned again), and it was not re-read.
    let log = sim.command_log();
    assert_eq!(count(&log, "/ip/hotspot/user/set"), 0, "{log:?}");
    assert_eq!(count(&log, "/ip/hotspot/user/print"), 0, "{log:?}");
    let activated = agent
        .events()
        .iter()
        .filter(|e| e["type"] == "voucher_activated")
        .count();
    assert_eq!(activated, n, "each voucher activated once");
}

// ---- the poll's cheap check (issue 23): count, read in full on demand ----

/// Polls that read the active lists in full or their counters: the PPPoE
/// counters are read with them and only then (a count-only check reads
/// neither).
fn full_reads(log: &[String]) -> usize {
    count(log, "/interface/print")
}

#[test]
fn a_quiet_poll_counts_the_active_lists_and_reads_nothing_in_full() {
    let sim = sim();
    for i in 0..50 {
        let name = format!("v{i}");
        sim.add_hotspot_user(&name, "p", "voucher-1h", VOUCHER);
        sim.hotspot_login(&name, &format!("10.5.50.{}", i + 2), "02:00:00:00:00:01")
            .unwrap();
    }
    sim.add_ppp_secret("c1", "p", "pppoe-10M", b"");
    sim.ppp_connect("c1", "10.10.0.2", "04:00:00:00:00:01")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "1");
    agent.wait_log("cycle:", 2);
    let full_read = {
        // A whole poll that read everything, for scale: the first one.
        let log = sim.command_log();
        assert_eq!(full_reads(&log), 1, "{log:?}");
        sim.work().0
    };
    sim.clear_command_log();
    let (bytes, commands) = sim.work();
    let cycles = agent.count("cycle:");
    agent.wait_log("cycle:", cycles + 3);
    let log = sim.command_log();
    let (bytes_after, commands_after) = sim.work();
    // Each poll counted both lists, and read none in full.
    assert!(count(&log, "/ip/hotspot/active/print") >= 3, "{log:?}");
    assert!(count(&log, "/ppp/active/print") >= 3, "{log:?}");
    assert_eq!(full_reads(&log), 0, "{log:?}");
    assert_eq!(count(&log, "/ip/hotspot/user/print"), 0, "{log:?}");
    assert_eq!(commands_after - commands, log.len() as u64);
    // Three polls' replies together are a small part of one full read.
    assert!(
        (bytes_after - bytes) * 10 < full_read,
        "{} bytes for the quiet polls, {full_read} for the first",
        bytes_after - bytes
    );
    assert_eq!(agent.count("active lists read"), 1, "{}", agent.log());
    // Nothing happened, and nothing was reported.
    let events = agent.events();
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "logout" || e["type"] == "usage"),
        "{events:#?}"
    );
}

#[test]
fn login_logout_and_relogin_arrive_within_two_seconds_with_the_default_schedule() {
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "30");
    agent.wait_log("cycle:", 1);
    agent.wait_log("listening on the active lists", 1);
    let limit = secs(2);
    let t = Instant::now();
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let (at, _) = agent.wait_event_within(limit, |e| is(e, "login", "v1"));
    assert!(at - t < limit, "login after {:?}", at - t);
    let t = Instant::now();
    assert!(sim.hotspot_logout("v1"));
    let (at, _) = agent.wait_event_within(limit, |e| is(e, "logout", "v1"));
    assert!(at - t < limit, "logout after {:?}", at - t);
    let t = Instant::now();
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let ok = wait_until(limit, || {
        agent
            .events()
            .iter()
            .filter(|e| is(e, "login", "v1"))
            .count()
            == 2
    });
    assert!(ok, "re-login not seen:\n{}", agent.log());
    assert!(t.elapsed() < limit);
    // One poll so far: all of it came from the listen.
    assert_eq!(agent.count("cycle:"), 1, "{}", agent.log());
}

#[test]
fn an_ended_listen_is_reopened_at_the_next_poll_and_misses_nothing() {
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    sim.add_hotspot_user("v2", "p", "voucher-1h", VOUCHER);
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "1");
    agent.wait_log("cycle:", 2);
    // The router ends the listen; a login while it is closed is seen by
    // the next poll (one second here), which reopens the listen first.
    sim.end_listens("/ip/hotspot/active");
    agent.wait_log("listen on /ip/hotspot/active ended (interrupted)", 1);
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let cycles = agent.count("cycle:");
    agent.wait_event_within(secs(5), |e| is(e, "login", "v1"));
    agent.wait_log("listen on /ip/hotspot/active reopened", 1);
    assert!(agent.count("cycle:") <= cycles + 2, "{}", agent.log());
    // Listened again: the next login arrives between polls.
    let t = Instant::now();
    sim.hotspot_login("v2", "10.5.50.3", "02:00:00:00:00:02")
        .unwrap();
    let (at, _) = agent.wait_event_within(secs(5), |e| is(e, "login", "v2"));
    assert!(at - t < secs(2));
    let events = agent.events();
    assert_eq!(events.iter().filter(|e| is(e, "login", "v1")).count(), 1);
}

#[test]
fn a_silent_listen_is_caught_by_the_count_within_a_poll_and_reopened() {
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    sim.add_hotspot_user("v2", "p", "voucher-1h", VOUCHER);
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "1");
    agent.wait_log("cycle:", 2);
    // Broken without a word: open, but sending nothing.
    sim.mute_listens("/ip/hotspot/active", true);
    sim.clear_command_log();
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let cycles = agent.count("cycle:");
    agent.wait_event_within(secs(5), |e| is(e, "login", "v1"));
    // Found by the next poll's count: read in full, listen reopened.
    assert!(agent.count("cycle:") <= cycles + 2, "{}", agent.log());
    agent.wait_log("/ip/hotspot/active holds 1 rows, the listen's copy 0", 1);
    agent.wait_log("listen on /ip/hotspot/active reopened", 1);
    assert!(full_reads(&sim.command_log()) >= 1);
    // Sessions may have come and gone unseen: the hotspot users'
    // cumulative counters were read with the repair (the scheduled read
    // is an hour away).
    assert!(
        count(&sim.command_log(), "/ip/hotspot/user/print") >= 1,
        "{:?}",
        sim.command_log()
    );
    // A logout, too.
    assert!(sim.hotspot_logout("v1"));
    agent.wait_event_within(secs(5), |e| is(e, "logout", "v1"));
    // Repaired on the router's side: the reopened listen reports again.
    sim.mute_listens("/ip/hotspot/active", false);
    agent.wait_log("listen on /ip/hotspot/active reopened", 2);
    let t = Instant::now();
    sim.hotspot_login("v2", "10.5.50.3", "02:00:00:00:00:02")
        .unwrap();
    let (at, _) = agent.wait_event_within(secs(5), |e| is(e, "login", "v2"));
    assert!(at - t < secs(2));
}

#[test]
fn a_session_that_came_and_went_between_polls_unheard_is_accounted_as_usage() {
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    let dir = tempfile::tempdir().unwrap();
    // The default active-list schedule (counts between full reads); the
    // user list's counters every 2 s.
    let agent = start_with(
        &sim,
        &dir.path().join("state.redb"),
        "1",
        &[("MIKROTIK_EDGE_USER_READ_SECS", "2")],
    );
    agent.wait_log("cycle:", 2);
    // Between two polls: neither the listen nor the count sees it, only
    // the user's cumulative counters do.
    sim.hide_sessions(true);
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    sim.add_traffic("v1", 300, 4000);
    sim.advance(Duration::from_secs(25));
    assert!(sim.hotspot_logout("v1"));
    sim.hide_sessions(false);
    let (_, usage) = agent.wait_event_within(secs(10), |e| is(e, "usage", "v1"));
    assert_eq!(usage["unseen"], true);
    assert_eq!(usage["uptime_secs"], 25);
    assert!(usage["bytes_out"].as_u64() >= Some(4000), "{usage}");
    assert_eq!(
        agent
            .events()
            .iter()
            .filter(|e| is(e, "login", "v1"))
            .count(),
        0
    );
}

// ---- counters between full reads (issue 23): `.id` and counters only ----

#[test]
fn counters_are_read_on_schedule_and_usage_carries_them() {
    let sim = sim();
    sim.add_hotspot_user("v1", "p", "voucher-1h", VOUCHER);
    sim.add_ppp_secret("c1", "p", "pppoe-10M", b"");
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    sim.ppp_connect("c1", "10.10.0.2", "04:00:00:00:00:01")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_with(
        &sim,
        &dir.path().join("state.redb"),
        "1",
        &[
            ("MIKROTIK_EDGE_USAGE_SECS", "2"),
            ("MIKROTIK_EDGE_ACTIVE_READ_SECS", "2"),
        ],
    );
    agent.wait_log("cycle:", 2);
    sim.add_traffic("v1", 7_000, 90_000);
    sim.add_traffic("c1", 5_000, 60_000);
    let carried = |name: &str, bytes_out: u64| {
        let agent = &agent;
        let name = name.to_owned();
        move || {
            agent.events().iter().any(|e| {
                is(e, "usage", &name) && e["bytes_out"].as_u64().is_some_and(|b| b >= bytes_out)
            })
        }
    };
    assert!(
        wait_until(secs(10), carried("v1", 90_000)),
        "{}",
        agent.log()
    );
    assert!(
        wait_until(secs(10), carried("c1", 60_000)),
        "{}",
        agent.log()
    );
    // Only the first poll read the lists in full: the usage came from the
    // counters reads, whose ids were the copy's (the cycle's line is
    // written after its events are committed: waited for).
    agent.wait_log("active lists' counters read", 1);
    assert_eq!(agent.count("active lists read"), 1, "{}", agent.log());
    assert_eq!(agent.count("reading it in full"), 0, "{}", agent.log());
    // A counters read is a fraction of a full one: the same three
    // commands, and the user lists are not read again.
    sim.clear_command_log();
    let before = agent.count("active lists' counters read");
    agent.wait_log("active lists' counters read", before + 1);
    let log = sim.command_log();
    assert_eq!(count(&log, "/ip/hotspot/user/print"), 0, "{log:?}");
    assert_eq!(count(&log, "/ppp/secret/print"), 0, "{log:?}");
}

#[test]
fn a_swap_the_count_cannot_see_is_caught_by_the_counters_read() {
    let sim = sim();
    for name in ["v1", "v2"] {
        sim.add_hotspot_user(name, "p", "voucher-1h", VOUCHER);
    }
    sim.hotspot_login("v1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_with(
        &sim,
        &dir.path().join("state.redb"),
        "1",
        &[("MIKROTIK_EDGE_ACTIVE_READ_SECS", "3")],
    );
    agent.wait_log("cycle:", 2);
    // A silent listen, and one session out and another in between two
    // polls: the count stays 1.
    sim.mute_listens("/ip/hotspot/active", true);
    sim.clear_command_log();
    assert!(sim.hotspot_logout("v1"));
    sim.hotspot_login("v2", "10.5.50.3", "02:00:00:00:00:02")
        .unwrap();
    agent.wait_event_within(secs(10), |e| is(e, "logout", "v1"));
    agent.wait_event_within(secs(10), |e| is(e, "login", "v2"));
    agent.wait_log(
        "/ip/hotspot/active's .ids differ from the listen's copy (1 rows each)",
        1,
    );
    agent.wait_log("listen on /ip/hotspot/active reopened", 1);
    // Sessions may have come and gone unseen: the hotspot users' counters
    // are read by the next poll (the default schedule is hourly).
    assert!(
        wait_until(secs(5), || count(
            &sim.command_log(),
            "/ip/hotspot/user/print"
        ) >= 1),
        "{:?}",
        sim.command_log()
    );
}

#[test]
fn a_user_no_longer_managed_ends_its_session_at_a_poll_that_only_counted() {
    let sim = sim();
    sim.add_hotspot_user("h1", "p", "voucher-1h", b"");
    sim.hotspot_login("h1", "10.5.50.2", "02:00:00:00:00:01")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&sim, &dir.path().join("state.redb"), "1");
    agent.wait_event_within(secs(10), |e| is(e, "login", "h1"));
    agent.wait_log("active lists counted", 1);
    // Out of the managed profiles, heard on the user list's listen: the
    // next poll (a count, the session still on the router) lets it go.
    sim.set_item("/ip/hotspot/user", "h1", &[("profile", b"default")])
        .unwrap();
    agent.wait_event_within(secs(5), |e| is(e, "logout", "h1"));
    assert_eq!(agent.count("active lists read"), 1, "{}", agent.log());
}
