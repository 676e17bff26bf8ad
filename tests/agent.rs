//! `mikrotik-edge run` (the real binary) against the simulator: sessions,
//! vouchers, reboots, dropped connections and `kill -9`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use mikrotik_edge::clock::Timestamp;
use mikrotik_edge::comment::Comment;
use mikrotik_edge::sim::SimHandle;
use mikrotik_edge::store::Store;
use serde_json::Value;

fn is(e: &Value, kind: &str, user: &str) -> bool {
    e["type"] == kind && e["user"] == user
}

/// Every event committed to the state file, oldest first.
fn stored_events(state: &Path) -> Vec<Value> {
    let store = Store::open(state).unwrap();
    store
        .pending_events(0, 1_000_000)
        .unwrap()
        .iter()
        .map(|e| e.to_json("test", store.stream()))
        .collect()
}

fn count(events: &[Value], kind: &str, user: &str) -> usize {
    events.iter().filter(|e| is(e, kind, user)).count()
}

fn state_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state.redb")
}

fn comment_of(sim: &SimHandle, user: &str) -> Vec<u8> {
    field(sim, "/ip/hotspot/user", user, "comment").unwrap_or_default()
}

fn field(sim: &SimHandle, path: &str, name: &str, key: &str) -> Option<Vec<u8>> {
    sim.find(path, name)?
        .into_iter()
        .find(|(k, _)| k == key.as_bytes())
        .map(|(_, v)| v)
}

#[test]
fn vouchers_activate_expire_and_sessions_are_reported() {
    let sim = sim();
    sim.add_hotspot_user(
        "v1",
        "p",
        "voucher-1h",
        b"VOUCHER_SYSTEM|B1|5000|3000|1|VEN1|2024-01-01|admin",
    );
    // Activated two hours ago, expired an hour ago, still enabled.
    let now = Timestamp::now();
    let old = format!(
        "VOUCHER_SYSTEM|B1|5000|3000|1|VEN1|2024-01-01|admin|{}|{}",
        now.plus_secs(-7200),
        now.plus_secs(-3600)
    );
    sim.add_hotspot_user("v2", "p", "voucher-1h", old.as_bytes());
    sim.add_hotspot_user("guest", "p", "default", b"made by hand \xe9");
    sim.add_hotspot_user("mikhmon1", "p", "default", b"vc-123-01.02.24-");
    sim.add_ppp_secret(
        "c1",
        "p",
        "pppoe-10M",
        b"PPPOE_SYSTEM|B9|150000|100000|CUST1|SUB1|2024-01-01|admin",
    );
    sim.add_ppp_secret("office", "p", "office", b"");
    sim.hotspot_login("v2", "10.5.50.9", "AA:BB:CC:00:00:09")
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let state = state_path(&dir);
    // Every poll reads the active lists in full (the counters at every
    // poll); the default schedule, counts between full reads, is in
    // tests/instant.rs.
    let agent = Agent::run(&sim)
        .state(&state)
        .envs(&[
            ("MIKROTIK_EDGE_USAGE_SECS", "2"),
            ("MIKROTIK_EDGE_ACTIVE_READ_SECS", "0"),
        ])
        .start();

    // The expired voucher is disabled and its session kicked.
    agent.wait_event(|e| is(e, "voucher_expired", "v2") && e["action"] == "disable");
    assert!(wait_until(Duration::from_secs(10), || {
        field(&sim, "/ip/hotspot/user", "v2", "disabled").as_deref() == Some(b"true")
            && sim.find("/ip/hotspot/active", "v2").is_none()
    }));
    agent.wait_event(|e| is(e, "logout", "v2") && e["reason"] == "kicked");

    // First login activates v1 and writes the comment back.
    sim.hotspot_login("v1", "10.5.50.2", "AA:BB:CC:00:00:01")
        .unwrap();
    let login = agent.wait_event(|e| is(e, "login", "v1"));
    assert_eq!(login["address"], "10.5.50.2");
    assert_eq!(login["mac"], "AA:BB:CC:00:00:01");
    assert_eq!(login["profile"], "voucher-1h");
    let activated = agent.wait_event(|e| is(e, "voucher_activated", "v1"));
    assert!(wait_until(Duration::from_secs(10), || {
        Comment::parse(&comment_of(&sim, "v1"))
            .as_system()
            .is_some_and(|c| c.first_login_at().is_some())
    }));
    let comment = comment_of(&sim, "v1");
    let meta = Comment::parse(&comment);
    let meta = meta.as_system().unwrap();
    let first = meta.first_login_at().unwrap();
    assert_eq!(meta.expires_at().unwrap().secs_since(first), 3600);
    assert_eq!(activated["first_login_at"], first.to_rfc3339());
    assert!(comment.starts_with(b"VOUCHER_SYSTEM|B1|5000|3000|1|VEN1|2024-01-01|admin|"));

    // Traffic and an interim usage event, then logout with final counters.
    sim.add_traffic("v1", 1000, 2000);
    sim.advance(Duration::from_secs(90));
    agent.wait_event(|e| is(e, "usage", "v1") && e["bytes_in"].as_u64() >= Some(1000));
    sim.add_traffic("v1", 500, 500);
    // A whole cycle sees the new counters before the session ends.
    wait_polls(&sim, 2);
    sim.hotspot_logout("v1");
    let logout = agent.wait_event(|e| is(e, "logout", "v1"));
    assert_eq!(logout["reason"], "gone");
    assert!(logout["uptime_secs"].as_u64().unwrap() >= 90);

    // PPPoE with caller-id, and byte counters from its `pppoe-in`
    // interface: in = rx (from the customer), out = tx (to the customer).
    sim.ppp_connect("c1", "10.10.0.5", "11:22:33:44:55:66")
        .unwrap();
    let login = agent.wait_event(|e| is(e, "login", "c1"));
    assert_eq!(login["service"], "pppoe");
    assert_eq!(login["caller_id"], "11:22:33:44:55:66");
    sim.add_traffic("c1", 1000, 8000);
    agent.wait_event(|e| is(e, "usage", "c1") && e["bytes_out"].as_u64() >= Some(8000));
    sim.ppp_disconnect("c1");
    let logout = agent.wait_event(|e| is(e, "logout", "c1"));
    assert!(logout["bytes_in"].as_u64() >= Some(1000), "{logout}");
    assert!(logout["bytes_out"].as_u64() >= Some(8000), "{logout}");

    // The router's NTP client is synchronised (the simulator's default).
    let clock = agent.wait_event(|e| e["type"] == "clock");
    assert_eq!(clock["trusted"], true, "{clock}");

    // Three list reads per cycle, nothing per user: the user lists are
    // kept current by their listens and read in full only every
    // `user_read_secs` (300 by default; see `user_lists_...` below).
    sim.clear_command_log();
    // Three cycles begun since the clear: two of them whole.
    wait_polls(&sim, 3);
    let log = sim.command_log();
    let lists = [
        "/ip/hotspot/active/print",
        "/ppp/active/print",
        "/interface/print",
    ];
    // The router's clock is read every few polls, not each one.
    let clock_reads = ["/system/clock/print", "/system/ntp/client/print"];
    let cycles = log.iter().filter(|c| *c == lists[0]).count();
    assert!(cycles >= 2, "{log:?}");
    for l in lists {
        let n = log.iter().filter(|c| *c == l).count();
        assert!(n.abs_diff(cycles) <= 1, "{l}: {n} vs {cycles}: {log:?}");
    }
    assert!(
        log.iter().all(|c| lists.contains(&c.as_str())
            || clock_reads.contains(&c.as_str())
            || c == "/system/identity/print"),
        "unexpected commands: {log:?}"
    );
    // Debug logging and every event: the router password appears nowhere.
    assert!(!agent.lines().iter().any(|l| l.contains(PASSWORD)));
    agent.terminate();

    let events = stored_events(&state);
    assert!(!events.iter().any(|e| e.to_string().contains(PASSWORD)));
    assert_eq!(count(&events, "manual_user", "guest"), 1);
    assert_eq!(count(&events, "manual_user", "mikhmon1"), 1);
    assert_eq!(count(&events, "manual_user", "office"), 0);
    assert_eq!(count(&events, "voucher_activated", "v1"), 1);
    assert_eq!(count(&events, "voucher_expired", "v2"), 1);
    assert_eq!(count(&events, "login", "v1"), 1);
    assert_eq!(count(&events, "logout", "v1"), 1);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "router" && e["state"] == "connected")
    );
    // Sequence numbers are contiguous.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    // Mikhmon's comment was never touched.
    assert_eq!(comment_of(&sim, "mikhmon1"), b"vc-123-01.02.24-");
}

#[test]
fn kill_9_and_restart_neither_loses_nor_repeats_events() {
    let sim = sim();
    for u in ["a", "b", "c"] {
        sim.add_hotspot_user(u, "p", "voucher-1h", b"VOUCHER_SYSTEM|B1|5000|3000|24");
    }
    sim.hotspot_login("a", "10.5.50.2", "AA:00:00:00:00:01")
        .unwrap();
    sim.hotspot_login("b", "10.5.50.3", "AA:00:00:00:00:02")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = state_path(&dir);

    let agent = Agent::run(&sim).state(&state).start();
    agent.wait_event(|e| is(e, "login", "a"));
    agent.wait_event(|e| is(e, "login", "b"));
    agent.wait_event(|e| is(e, "voucher_activated", "b"));
    agent.kill9();

    // While the agent is down: a logs out, c logs in.
    sim.add_traffic("a", 4242, 0);
    sim.hotspot_logout("a");
    sim.hotspot_login("c", "10.5.50.4", "AA:00:00:00:00:03")
        .unwrap();

    let agent = Agent::run(&sim).state(&state).start();
    agent.wait_event(|e| is(e, "logout", "a"));
    agent.wait_event(|e| is(e, "login", "c"));
    // Two more cycles: anything repeated would be committed by then.
    wait_polls(&sim, 3);
    agent.kill9();

    let events = stored_events(&state);
    assert_eq!(count(&events, "login", "a"), 1, "{events:#?}");
    assert_eq!(count(&events, "login", "b"), 1, "{events:#?}");
    assert_eq!(count(&events, "login", "c"), 1);
    assert_eq!(count(&events, "logout", "a"), 1);
    assert_eq!(count(&events, "logout", "b"), 0);
    assert_eq!(count(&events, "voucher_activated", "a"), 1);
    assert_eq!(count(&events, "voucher_activated", "b"), 1);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[test]
fn router_reboot_closes_sessions_once_and_a_dropped_poll_changes_nothing() {
    let sim = sim();
    for u in ["a", "b"] {
        sim.add_hotspot_user(u, "p", "voucher-1h", b"VOUCHER_SYSTEM|B1|5000|3000|24");
    }
    // The router has been up for an hour before the agent first sees it.
    sim.advance(Duration::from_secs(3600));
    sim.hotspot_login("a", "10.5.50.2", "AA:00:00:00:00:01")
        .unwrap();
    sim.hotspot_login("b", "10.5.50.3", "AA:00:00:00:00:02")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = state_path(&dir);
    // Counters read at every poll (the logout's below are checked).
    let agent = Agent::run(&sim)
        .state(&state)
        .envs(&[("MIKROTIK_EDGE_ACTIVE_READ_SECS", "0")])
        .start();
    agent.wait_event(|e| is(e, "login", "a"));
    agent.wait_event(|e| is(e, "login", "b"));

    // A connection dropped in the middle of a poll: no one went offline.
    sim.drop_mid_reply_next();
    agent.wait_event(|e| e["type"] == "router" && e["state"] == "disconnected");
    let reconnects = || {
        agent
            .events()
            .iter()
            .filter(|e| e["type"] == "router" && e["state"] == "connected")
            .count()
    };
    assert!(wait_until(Duration::from_secs(15), || reconnects() >= 2));
    // Whole cycles on the new connection, and still no logout.
    wait_polls(&sim, 3);
    assert_eq!(
        agent
            .events()
            .iter()
            .filter(|e| e["type"] == "logout")
            .count(),
        0
    );

    // Reboot: both sessions end, then b comes back with a new session.
    sim.add_traffic("a", 777, 888);
    // A whole cycle reads the counters before the reboot loses them.
    wait_polls(&sim, 2);
    sim.reboot(Duration::from_millis(1500));
    let logout = agent.wait_event(|e| is(e, "logout", "a"));
    assert_eq!(logout["reason"], "router_reboot");
    assert_eq!(logout["bytes_in"], 777);
    assert_eq!(logout["bytes_out"], 888);
    agent.wait_event(|e| is(e, "logout", "b"));
    sim.hotspot_login("b", "10.5.50.3", "AA:00:00:00:00:02")
        .unwrap();
    assert!(wait_until(Duration::from_secs(15), || count(
        &agent.events(),
        "login",
        "b"
    ) == 2));
    // Whole cycles after the new login: no second logout or login comes.
    wait_polls(&sim, 3);
    let events = agent.events();
    assert_eq!(count(&events, "logout", "a"), 1);
    assert_eq!(count(&events, "logout", "b"), 1);
    assert_eq!(count(&events, "login", "a"), 1);
    agent.terminate();
}

/// SIGTERM and SIGINT stop the agent within a second or two even while a
/// poll waits on a router that stopped answering; the session ends with
/// `/quit` and the exit status is 0.
#[test]
fn signals_stop_the_agent_promptly_mid_cycle() {
    for sig in ["TERM", "INT"] {
        let sim = sim();
        sim.add_hotspot_user("v1", "pw", "voucher-1h", b"");
        let dir = tempfile::tempdir().unwrap();
        let mut agent = Agent::run(&sim)
            .state(&state_path(&dir))
            .envs(&[("MIKROTIK_EDGE_ROUTER_COMMAND_TIMEOUT_SECS", "60")])
            .start();
        agent.wait_event(|e| e["type"] == "router" && e["state"] == "connected");
        // Past the connect handling and one whole poll (under qemu that
        // takes a while); then the next poll hangs: every reply now takes
        // a minute.
        assert!(wait_until(
            Duration::from_secs(10 * u64::from(slow_factor())),
            || agent.count("cycle: ") > 0
        ));
        sim.set_reply_delay(Duration::from_secs(60));
        let polls = sim
            .command_log()
            .iter()
            .filter(|c| *c == "/ppp/active/print")
            .count();
        assert!(wait_until(
            Duration::from_secs(10 * u64::from(slow_factor())),
            || sim
                .command_log()
                .iter()
                .filter(|c| *c == "/ppp/active/print")
                .count()
                > polls
        ));
        // The simulator logged the poll's command: the agent now waits
        // for its (minute-long) reply, mid-cycle.
        let sent = std::time::Instant::now();
        agent.signal(sig);
        let limit = Duration::from_secs(3 * u64::from(slow_factor()));
        let mut status = None;
        assert!(
            wait_until(limit, || {
                status = agent.try_wait();
                status.is_some()
            }),
            "SIG{sig} mid-cycle must stop the agent within {limit:?}"
        );
        assert!(status.is_some_and(|s| s.success()), "SIG{sig}: {status:?}");
        assert!(sent.elapsed() < limit);
        assert!(
            wait_until(Duration::from_secs(2), || sim
                .command_log()
                .iter()
                .any(|c| c == "/quit")),
            "the session ends with /quit: {:?}",
            sim.command_log()
        );
    }
}

/// A 0-byte state file (power cut on a fresh SD card), or one whose
/// creation was cut short, is initialised with a warning naming it, gets a
/// new stream, and sessions already online are reported as logins seen at
/// start.
#[test]
fn empty_state_file_starts_a_new_stream_with_sessions_seen_at_start() {
    let sim = sim();
    sim.add_hotspot_user("v1", "pw", "voucher-1h", b"");
    sim.hotspot_login("v1", "10.5.50.2", "AA:BB:CC:00:00:01")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = state_path(&dir);
    let first_stream = {
        let agent = Agent::run(&sim).state(&state).start();
        let login = agent.wait_event(|e| is(e, "login", "v1"));
        assert_eq!(login["seen_at_start"], true);
        agent.terminate();
        login["stream"].as_str().unwrap().to_owned()
    };
    std::fs::write(&state, b"").unwrap();
    let agent = Agent::run(&sim).state(&state).start();
    let login = agent.wait_event(|e| is(e, "login", "v1"));
    assert_eq!(login["seen_at_start"], true);
    let all = agent.events();
    assert_eq!(
        login["seq"], 3,
        "router event first, the first cycle's clock verdict, then the login: {all:?}"
    );
    assert_ne!(login["stream"].as_str().unwrap(), first_stream);
    let log = agent.log();
    assert!(
        log.contains("is empty") && log.contains(&state.display().to_string()),
        "{log}"
    );
    agent.terminate();

    // Killed while redb was creating the file: sized, no header yet. The
    // same recovery, with its own warning naming the file.
    std::fs::write(&state, vec![0u8; 70 * 1024]).unwrap();
    let agent = Agent::run(&sim).state(&state).start();
    let login = agent.wait_event(|e| is(e, "login", "v1"));
    assert_eq!(login["seen_at_start"], true);
    assert_eq!(login["seq"], 3);
    let log = agent.log();
    assert!(
        log.contains("was never finished") && log.contains(&state.display().to_string()),
        "{log}"
    );
    agent.terminate();
}

/// The process's peak resident set (`VmHWM`) in KiB, or why it cannot be
/// read: the caller fails rather than assert against a made-up 0.
fn vm_hwm_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no VmHWM line in {path}:\n{status}"))
}

/// A router streaming endless rows or an unterminated sentence of tiny
/// words: the agent's memory stays bounded, the command fails clearly and
/// the session is re-established.
#[test]
fn misbehaving_router_keeps_memory_bounded_and_reconnects() {
    use mikrotik_edge::sim::Misbehave;
    // Under qemu the emulator's own memory is measured; only check natively.
    let native = std::env::var_os("MIKROTIK_EDGE_TEST_RUNNER").is_none_or(|r| r.is_empty());
    for how in [Misbehave::EndlessRows, Misbehave::UnterminatedSentence] {
        let sim = sim();
        let dir = tempfile::tempdir().unwrap();
        let agent = Agent::run(&sim)
            .state(&state_path(&dir))
            .envs(&[
                ("MIKROTIK_EDGE_ROUTER_MAX_REPLY_BYTES", "1048576"),
                ("MIKROTIK_EDGE_ROUTER_MAX_SENTENCE_BYTES", "1048576"),
                ("MIKROTIK_EDGE_ROUTER_KEEPALIVE_SECS", "1"),
            ])
            .start();
        agent.wait_event(|e| e["type"] == "router" && e["state"] == "connected");
        let logins = sim.logins();
        sim.set_misbehave(Some(how));
        // Reconnected at least twice while the router misbehaves.
        assert!(
            wait_until(Duration::from_secs(30 * u64::from(slow_factor())), || sim
                .logins()
                >= logins + 2),
            "{how:?}: no reconnect; log:\n{}",
            agent.log()
        );
        if native {
            // A /proc that cannot be read fails the test: a 0 would pass.
            let hwm = vm_hwm_kib(agent.pid()).unwrap_or_else(|e| panic!("{how:?}: {e}"));
            eprintln!("{how:?}: peak RSS {hwm} KiB");
            assert!(hwm < 48 * 1024, "{how:?}: peak RSS {hwm} KiB");
        }
        let log = agent.log();
        let expect = match how {
            Misbehave::EndlessRows => "1048576-byte limit",
            _ => "sentence exceeds",
        };
        assert!(log.contains(expect), "{how:?}: {log}");
        sim.set_misbehave(None);
        agent.terminate();
    }
}
