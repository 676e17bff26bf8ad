//! A full disk degrades, never stops: the real agent on a small tmpfs that
//! fills up mid-run, and one that is full before the agent starts. These
//! tests mount a tmpfs, so they need root (or CAP_SYS_ADMIN); without it
//! they fail and say so.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use mikrotik_edge::clock::Timestamp;
use mikrotik_edge::sim::SimHandle;
use mikrotik_edge::store::Store;
use serde_json::Value;

/// A tmpfs of its own, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Tmpfs { dir },
            Ok(o) => panic!(
                "cannot mount a tmpfs at {} (this test needs root or CAP_SYS_ADMIN): {}",
                dir.path().display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("cannot run mount(8) for the tmpfs this test needs: {e}"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes a filler file until the tmpfs has no byte left.
    fn fill(&self) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .unwrap();
        for chunk in [64 * 1024, 4096, 512, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
        let _ = f.sync_all();
        let probe = std::fs::write(self.path().join("probe"), [0u8; 4096]);
        assert!(probe.is_err(), "the tmpfs is not full");
        let _ = std::fs::remove_file(self.path().join("probe"));
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The agent with its HTTP endpoint, uploading as `site-a`.
fn start(sim: &SimHandle, state: &Path) -> Agent {
    Agent::run(sim)
        .state(state)
        .http()
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .start()
}

/// Waits until `needle` is logged, then checks the agent still runs.
fn wait_logged(agent: &mut Agent, needle: &str) {
    agent.wait_log(needle, 1);
    agent.assert_running();
}

/// `GET /healthz` on the agent's endpoint: the status code.
fn healthz(agent: &Agent) -> u16 {
    let addr = agent.addr();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(secs(10))).unwrap();
    // The endpoint checks `Host` (DNS-rebinding protection).
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn disabled(sim: &SimHandle, user: &str) -> bool {
    sim.find("/ip/hotspot/user", user).is_some_and(|row| {
        row.iter()
            .any(|(k, v)| k == b"disabled" && v.as_slice() == b"true")
    })
}

/// A voucher activated an hour ago less `in_secs`: it expires `in_secs`
/// from now (negative: already expired).
fn voucher_comment(in_secs: i64) -> String {
    let now = Timestamp::now();
    format!(
        "VOUCHER_SYSTEM|B1|5000|3000|1|VEN1|2024-01-01|admin|{}|{}",
        now.plus_secs(in_secs - 3600),
        now.plus_secs(in_secs)
    )
}

/// The state file after the agent stopped: every event the agent logged is
/// in it exactly once, numbered 1..=last without a gap, and nothing else.
fn assert_all_once(state: &Path, logged: &[Value]) -> Vec<Value> {
    let store = Store::open(state).unwrap();
    let last = store.last_seq().unwrap();
    let queued = store.pending_events(0, 100_000).unwrap();
    let stream = store.stream();
    let seqs: Vec<u64> = queued.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "a gap or a double");
    let mut logged_seqs: Vec<u64> = logged.iter().filter_map(|e| e["seq"].as_u64()).collect();
    logged_seqs.sort_unstable();
    assert_eq!(logged_seqs, seqs, "logged events and stored events differ");
    let stream_text = stream.to_string();
    assert!(logged.iter().all(|e| e["stream"] == stream_text.as_str()));
    queued.iter().map(|e| e.to_json("site-a", stream)).collect()
}

fn count(events: &[Value], ty: &str, key: &str, value: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == ty && e[key] == value)
        .count()
}

#[test]
fn a_disk_filling_up_mid_run_degrades_and_everything_is_written_once_space_returns() {
    let fs = Tmpfs::mount("4m");
    let state = fs.path().join("state.redb");
    let sim = sim();
    for u in ["u1", "u2"] {
        // Vouchers not yet used: their logins are reported.
        sim.add_hotspot_user(
            u,
            "p",
            "voucher-1h",
            b"VOUCHER_SYSTEM|B1|5000|3000|1|VEN1|2024-01-01|admin",
        );
    }
    // Known before the disk fills, expiring while it is full.
    sim.add_hotspot_user("v9", "p", "voucher-1h", voucher_comment(15).as_bytes());
    sim.hotspot_login("v9", "10.5.50.9", "AA:BB:CC:00:00:09")
        .unwrap();
    let mut agent = start(&sim, &state);
    wait_logged(&mut agent, "http: listening on");
    let ok = wait_until(secs(20), || {
        agent
            .events()
            .iter()
            .any(|e| e["type"] == "login" && e["user"] == "v9")
    });
    assert!(ok, "no first poll:\n{}", agent.log());

    fs.fill();
    sim.hotspot_login("u1", "10.5.50.1", "AA:BB:CC:00:00:01")
        .unwrap();
    wait_logged(&mut agent, "running from memory");
    wait_logged(&mut agent, "alert disk_full");
    assert!(!disabled(&sim, "v9"), "expired before the disk filled");
    // Still monitoring and acting from memory: the voucher expires on time.
    sim.hotspot_login("u2", "10.5.50.2", "AA:BB:CC:00:00:02")
        .unwrap();
    assert_eq!(healthz(&agent), 200, "{}", agent.log());
    let ok = wait_until(secs(40), || {
        disabled(&sim, "v9") && sim.find("/ip/hotspot/active", "v9").is_none()
    });
    assert!(ok, "voucher not expired on the router:\n{}", agent.log());
    sim.hotspot_logout("u1");
    // Several polls on a full disk: still up, still answering.
    let polls = agent.log().matches("cycle:").count();
    let ok = wait_until(secs(20), || {
        agent.log().matches("cycle:").count() >= polls + 3
    });
    assert!(ok, "no polls while the disk is full:\n{}", agent.log());
    agent.assert_running();
    assert_eq!(healthz(&agent), 200);

    fs.free();
    wait_logged(&mut agent, "writable again");
    sim.hotspot_logout("u2");
    let ok = wait_until(secs(20), || {
        agent
            .events()
            .iter()
            .any(|e| e["type"] == "logout" && e["user"] == "u2")
    });
    assert!(ok, "{}", agent.log());
    let log = agent.terminate().log;
    let logged: Vec<Value> = log
        .lines()
        .filter_map(|l| l.split_once("event {"))
        .filter_map(|(_, rest)| serde_json::from_str(&format!("{{{rest}")).ok())
        .collect();
    let stored = assert_all_once(&state, &logged);
    assert_eq!(count(&stored, "alert", "name", "disk_full"), 1);
    assert_eq!(count(&stored, "voucher_expired", "user", "v9"), 1);
    assert_eq!(count(&stored, "login", "user", "u1"), 1);
    assert_eq!(count(&stored, "logout", "user", "u1"), 1);
    assert_eq!(count(&stored, "login", "user", "u2"), 1);

    // The state written from memory is the state: a restart repeats
    // nothing (the expiry is not reported again, u2's login neither).
    let mut again = start(&sim, &state);
    wait_logged(&mut again, "cycle:");
    let ok = wait_until(secs(10), || again.log().matches("cycle:").count() >= 2);
    assert!(ok);
    let log = again.terminate().log;
    assert!(
        !log.contains("\"type\":\"voucher_expired\""),
        "expiry repeated after the restart:\n{log}"
    );
}

#[test]
fn an_agent_started_on_a_full_disk_runs_from_memory_and_writes_once_it_can() {
    let fs = Tmpfs::mount("1m");
    fs.fill();
    let state = fs.path().join("state.redb");
    let sim = sim();
    sim.add_hotspot_user("v2", "p", "voucher-1h", voucher_comment(-60).as_bytes());
    sim.hotspot_login("v2", "10.5.50.9", "AA:BB:CC:00:00:09")
        .unwrap();
    let mut agent = start(&sim, &state);
    wait_logged(&mut agent, "running from memory");
    wait_logged(&mut agent, "http: listening on");
    let ok = wait_until(secs(30), || {
        disabled(&sim, "v2") && sim.find("/ip/hotspot/active", "v2").is_none()
    });
    assert!(ok, "expired voucher not disabled:\n{}", agent.log());
    assert_eq!(healthz(&agent), 200);
    // Past the 2 to 4 s it used to live.
    let ok = wait_until(secs(20), || agent.log().matches("cycle:").count() >= 6);
    assert!(ok, "{}", agent.log());
    agent.assert_running();

    fs.free();
    wait_logged(&mut agent, "writable again");
    let log = agent.terminate().log;
    let logged: Vec<Value> = log
        .lines()
        .filter_map(|l| l.split_once("event {"))
        .filter_map(|(_, rest)| serde_json::from_str(&format!("{{{rest}")).ok())
        .collect();
    let stored = assert_all_once(&state, &logged);
    assert_eq!(count(&stored, "alert", "name", "disk_full"), 1);
    assert_eq!(count(&stored, "voucher_expired", "user", "v2"), 1);
}
