//! Clock trust end to end, with the real agent binary and the simulator: the
//! central server's `Date` (real PostgreSQL and `mikrotik-central`) making
//! the clock trusted when neither the kernel nor the router is synchronised,
//! and the router's `gmt-offset` read the same in every form.
//!
//! The host running the tests may well be NTP-synchronised: the agent is
//! told to ignore that (`MIKROTIK_EDGE_ASSUME_KERNEL_UNSYNCED=1`), as on a
//! Pi without NTP.

mod common;

use std::path::Path;
use std::time::Duration;

use common::gateway::{Gateway, add_site, free_port};
use common::pg::Postgres;
use common::*;
use mikrotik_edge::clock::{Timestamp, parse_rfc3339};
use mikrotik_edge::sim::{GmtOffsetStyle, SimHandle};
use serde_json::Value;

/// The agent binary with its HTTP endpoint on a free loopback port and the
/// kernel's NTP state ignored.
fn start(sim: &SimHandle, state: &Path, extra: &[(&str, String)]) -> Agent {
    Agent::run(sim)
        .state(state)
        .http()
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .env("MIKROTIK_EDGE_ASSUME_KERNEL_UNSYNCED", "1")
        .envs(extra)
        .start()
}

/// `GET /api/mikrotik/monitoring/status` (`Null` if it cannot be read).
fn status(agent: &Agent) -> Value {
    let client: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(secs(10)))
        .max_idle_connections(0)
        .build()
        .into();
    client
        .get(&agent.url("/api/mikrotik/monitoring/status"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// Waits until the status satisfies `cond`; returns that status.
fn wait_status(agent: &Agent, what: &str, mut cond: impl FnMut(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(secs(30), || {
        last = status(agent);
        cond(&last)
    });
    assert!(
        ok,
        "{what}: not seen; last status {last}; agent log:\n{}",
        agent.log()
    );
    last
}

fn disabled(sim: &SimHandle, user: &str) -> bool {
    sim.find("/ip/hotspot/user", user)
        .is_some_and(|r| get(&r, "disabled") == "true")
}

fn online(sim: &SimHandle, user: &str) -> bool {
    sim.find("/ip/hotspot/active", user).is_some()
}

/// The status's `clock.now`, as Unix seconds.
fn clock_now(status: &Value) -> i64 {
    let now = status["clock"]["now"].as_str().unwrap_or_default();
    parse_rfc3339(now.as_bytes())
        .map(Timestamp::unix)
        .unwrap_or_else(|e| panic!("clock.now {now:?}: {e}"))
}

#[test]
fn central_date_makes_the_clock_trusted_and_expires_a_voucher_when_nothing_else_can() {
    let sim = sim();
    // The router has no NTP either (its WAN is down, say).
    sim.set_ntp_synced(false);
    // Activated two hours ago, expired an hour ago, still enabled, online.
    let now = Timestamp::now();
    let comment = format!(
        "VOUCHER_SYSTEM|B1|5000|3000|1|VEN1|2024-01-01|admin|{}|{}",
        now.plus_secs(-7_200),
        now.plus_secs(-3_600)
    );
    sim.add_hotspot_user("v-old", "p", "voucher-1h", comment.as_bytes());
    sim.hotspot_login("v-old", "10.5.50.9", "AA:BB:CC:00:00:09")
        .expect("login");

    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    // The gateway's port is chosen now, but it starts only later.
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = start(
        &sim,
        &dir.path().join("state.redb"),
        &[
            (
                "MIKROTIK_EDGE_CENTRAL_URL",
                format!("http://127.0.0.1:{port}"),
            ),
            ("MIKROTIK_EDGE_CENTRAL_TOKEN", token),
            ("MIKROTIK_EDGE_CENTRAL_BACKOFF_CAP_SECS", "1".into()),
            ("MIKROTIK_EDGE_CENTRAL_TIMEOUT_SECS", "5".into()),
            ("MIKROTIK_EDGE_SYNC_SECS", "1".into()),
        ],
    );

    // Central unreachable: nothing vouches for the time; the voucher is
    // not expired on a guess.
    let st = wait_status(&agent, "three polls, untrusted", |s| {
        s["polls"].as_u64() >= Some(3) && s["clock"]["source"] == "none"
    });
    assert_eq!(st["clock"]["trusted"], false, "{st}");
    assert!(!disabled(&sim, "v-old") && online(&sim, "v-old"));

    // Central reachable: its Date header makes the clock trusted...
    let _gw = Gateway::start(&pg, &format!("127.0.0.1:{port}"));
    let st = wait_status(&agent, "central source", |s| {
        s["clock"]["source"] == "central"
    });
    assert_eq!(st["clock"]["trusted"], true, "{st}");
    // ...at the server's time (the same host's clock here), read as a lower
    // bound: never ahead of it.
    let server_now = Timestamp::now().unix();
    let shown = clock_now(&st);
    assert!(
        shown <= server_now && server_now - shown <= 10 * i64::from(slow_factor()),
        "clock.now {shown}, server {server_now}"
    );
    // ...and the expired voucher is disabled and its session kicked.
    assert!(
        wait_until(secs(20), || disabled(&sim, "v-old")
            && !online(&sim, "v-old")),
        "v-old still enabled or online; agent log:\n{}",
        agent.log()
    );

    // The router's NTP comes back, but its clock reads two hours ahead (a
    // wrong offset, say): two trusted sources disagree. The earlier one,
    // central, stays in use, and one alert reaches the central side.
    sim.advance(Duration::from_secs(2 * 3_600));
    sim.set_ntp_synced(true);
    let alerts = || {
        pg.psql(
            "SELECT count(*) FROM alerts WHERE site_id = 'site-a' AND name = 'clock_disagreement'",
        )
    };
    assert!(
        wait_until(secs(30), || alerts() == "1"),
        "no clock_disagreement alert at the central side; agent log:\n{}",
        agent.log()
    );
    // Many polls later (the router's clock is re-read every 10): still
    // central, still one alert.
    let polls = status(&agent)["polls"].as_u64().unwrap_or(0);
    let st = wait_status(&agent, "12 more polls", |s| {
        s["polls"].as_u64() >= Some(polls + 12)
    });
    assert_eq!(st["clock"]["source"], "central", "{st}");
    assert!(clock_now(&st) <= Timestamp::now().unix(), "{st}");
    assert_eq!(alerts(), "1");
    let logged = agent
        .log()
        .lines()
        .filter(|l| l.contains("alert clock_disagreement"))
        .count();
    assert_eq!(logged, 1, "{}", agent.log());
}

#[test]
fn every_gmt_offset_form_gives_the_same_utc() {
    // Router NTP synchronised (the simulator's default), kernel ignored, no
    // central: the router's clock is the time in use. A misread offset
    // would put it hours away.
    for (style, offset) in [
        (GmtOffsetStyle::Colon, 7 * 3_600),
        (GmtOffsetStyle::Colon, -(5 * 3_600 + 1_800)),
        (GmtOffsetStyle::Compact, 5 * 3_600 + 2_700),
        (GmtOffsetStyle::Compact, -(3 * 3_600 + 1_800)),
        (GmtOffsetStyle::Hours, 7 * 3_600),
        (GmtOffsetStyle::Hours, -5 * 3_600),
        (GmtOffsetStyle::Seconds, 25_200),
        (GmtOffsetStyle::Seconds, -18_000),
        (GmtOffsetStyle::Seconds, 0),
    ] {
        let shown = style.show(offset);
        let sim = sim();
        sim.set_time_zone("manual", offset);
        sim.set_gmt_offset_style(style);
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = start(&sim, &dir.path().join("state.redb"), &[]);
        let st = wait_status(&agent, &format!("router_ntp source with {shown}"), |s| {
            s["clock"]["source"] == "router_ntp"
        });
        assert_eq!(st["clock"]["trusted"], true, "{shown}: {st}");
        // The simulator's clock stands still; the agent carries its reading
        // forward by the seconds since it read it: a little ahead at most.
        let ahead = clock_now(&st) - sim.clock_unix();
        assert!(
            (0..=10 * i64::from(slow_factor())).contains(&ahead),
            "gmt-offset {shown}: agent time {ahead} s from the router's UTC; agent log:\n{}",
            agent.log()
        );
    }
}
