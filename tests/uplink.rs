//! The uploader end to end: the real agent binary and the simulator on one
//! side, the real `mikrotik-central` gateway and PostgreSQL on the other.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::gateway::{Gateway, add_site, free_port};
use common::pg::Postgres;
use common::*;
use mikrotik_edge::sim::{Activity, SeedData, SimHandle};
use mikrotik_edge::store::Store;
use serde_json::Value;

/// The agent with usage reports every second, uploading as `site-a`.
fn start_agent(sim: &SimHandle, state: &Path, extra: &[(&str, String)]) -> Agent {
    Agent::run(sim)
        .state(state)
        .env("MIKROTIK_EDGE_USAGE_SECS", "1")
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .env("MIKROTIK_EDGE_CENTRAL_BACKOFF_CAP_SECS", "1")
        .env("MIKROTIK_EDGE_CENTRAL_TIMEOUT_SECS", "10")
        .envs(extra)
        .start()
}

fn central_env(gw_base: &str, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MIKROTIK_EDGE_CENTRAL_URL", gw_base.to_string()),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN", token.to_string()),
    ]
}

fn activity_sim() -> SimHandle {
    sim_with(|o| {
        o.seed = SeedData {
            hotspot_users: 30,
            pppoe_secrets: 6,
            hotspot_active: 0,
            ppp_active: 0,
            ..SeedData::default()
        };
    })
}

/// Runs the simulator's random activity (logins, logouts, traffic) for `d`.
fn activity(sim: &SimHandle, act: &mut Activity, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        act.step(sim);
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Runs the simulator's random activity until `cond` holds (checked
/// between steps) or `limit` passes; returns whether it held.
fn activity_until(
    sim: &SimHandle,
    act: &mut Activity,
    limit: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        activity(sim, act, Duration::from_millis(150));
    }
    cond()
}

fn int(pg: &Postgres, sql: &str) -> u64 {
    let out = pg.psql(sql);
    out.parse()
        .unwrap_or_else(|_| panic!("{sql}: not a number: {out:?}"))
}

/// The stream's `stored_through`, 0 before the first upload.
fn stored_through(pg: &Postgres) -> u64 {
    let out = pg.psql(
        "SELECT coalesce(max(stored_through), 0) FROM agent_streams WHERE site_id = 'site-a'",
    );
    out.parse().unwrap_or(0)
}

/// Every seq 1..=last stored exactly once, the chain complete, and the
/// agent's outbox empty with nothing assigned beyond `last`.
fn assert_complete(pg: &Postgres, state: &Path) -> u64 {
    let store = Store::open(state).unwrap();
    let last = store.last_seq().unwrap();
    assert_eq!(store.queued_events().unwrap(), 0, "outbox not drained");
    assert_eq!(store.acked_through().unwrap(), last);
    let stream = store.stream().to_string();
    drop(store);
    let row = pg.psql(&format!(
        "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM agent_events_as_sent \
         WHERE site_id = 'site-a' AND stream = '{stream}'"
    ));
    assert_eq!(row, format!("{last}|{last}|1|{last}"));
    assert_eq!(stored_through(pg), last);
    last
}

/// The agent's events as the central tables saw them: each login opened
/// one session, each logout closed one, each activation reached vouchers.
fn assert_rows_match(pg: &Postgres, events: &[Value]) {
    let n = |ty: &str| events.iter().filter(|e| e["type"] == ty).count() as u64;
    let mut seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        int(
            pg,
            "SELECT count(*) FROM agent_events WHERE site_id = 'site-a'"
        ),
        seqs.len() as u64
    );
    assert_eq!(
        n("login"),
        int(pg, "SELECT count(*) FROM sessions WHERE site_id = 'site-a'")
    );
    assert_eq!(
        n("logout"),
        int(
            pg,
            "SELECT count(*) FROM sessions WHERE site_id = 'site-a' AND ended_at IS NOT NULL"
        )
    );
    assert_eq!(
        n("voucher_activated"),
        int(
            pg,
            "SELECT count(*) FROM vouchers WHERE site_id = 'site-a' AND first_login_at IS NOT NULL"
        )
    );
    for ty in ["usage", "login", "logout", "voucher_activated"] {
        assert_eq!(
            n(ty),
            int(
                pg,
                &format!(
                    "SELECT count(*) FROM agent_events WHERE site_id = 'site-a' AND type = '{ty}'"
                )
            ),
            "{ty}"
        );
    }
}

fn wait_drained(pg: &Postgres, agent: &Agent) {
    let ok = wait_until(secs(30), || {
        let last = agent
            .events()
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .max()
            .unwrap_or(0);
        last > 0 && stored_through(pg) == last
    });
    assert!(ok, "not drained; agent log:\n{}", agent.log());
}

/// Ends every session on the simulator, waits until the agent has gone
/// quiet (with `usage_secs=1` an online session is an event every second,
/// so only then can the last batch be the last): two poll cycles begun
/// with no new event, the second after a whole cycle found nothing to say.
/// Then until everything is uploaded: an empty outbox at SIGTERM is only
/// to be expected after this.
fn settle(sim: &SimHandle, pg: &Postgres, agent: &Agent) {
    for (path, key) in [("/ip/hotspot/active", "user"), ("/ppp/active", "name")] {
        for row in sim.rows(path) {
            let Some((_, user)) = row.iter().find(|(k, _)| k == key.as_bytes()) else {
                continue;
            };
            let user = String::from_utf8_lossy(user).into_owned();
            match path {
                "/ppp/active" => sim.ppp_disconnect(&user),
                _ => sim.hotspot_logout(&user),
            };
        }
    }
    let mut seen = agent.events().len();
    let mut since = polls(sim);
    let quiet = wait_until(secs(60), || {
        let (now, polled) = (agent.events().len(), polls(sim));
        if now != seen {
            (seen, since) = (now, polled);
            return false;
        }
        polled >= since + 2
    });
    assert!(quiet, "agent never went quiet:\n{}", agent.log());
    wait_drained(pg, agent);
}

#[test]
fn events_arrive_once_through_gateway_and_database_outages() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let gw = Gateway::start(&pg, &listen);
    let sim = activity_sim();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let agent = start_agent(&sim, &state, &central_env(&gw.base, &token));
    let mut act = Activity::new(7);

    activity(&sim, &mut act, secs(3));
    agent.wait_event(|e| e["type"] == "login");
    wait_drained(&pg, &agent);

    // The database goes away: the gateway answers 503, the agent retries.
    // Activity goes on until an upload met the outage (events queue then).
    pg.stop();
    assert!(
        activity_until(&sim, &mut act, secs(13), || gw.count(" 503 ") >= 1),
        "no 503 seen:\n{}",
        gw.log()
    );
    pg.restart();
    activity(&sim, &mut act, secs(2));
    wait_drained(&pg, &agent);

    // The gateway itself goes away (connection refused), then comes back
    // on the same address.
    // Activity until an upload failed against the missing gateway.
    let failed = || agent.log().matches("central upload failed").count();
    let before = failed();
    drop(gw);
    assert!(
        activity_until(&sim, &mut act, secs(13), || failed() > before),
        "no failed upload seen:\n{}",
        agent.log()
    );
    let gw = Gateway::start(&pg, &listen);
    activity(&sim, &mut act, secs(2));
    settle(&sim, &pg, &agent);
    assert!(gw.count("POST /rpc/ingest_batch 200") >= 1);

    let events = agent.events();
    assert!(events.iter().any(|e| e["type"] == "voucher_activated"));
    assert!(events.iter().any(|e| e["type"] == "logout"));
    assert!(events.iter().any(|e| e["type"] == "usage"));
    // No alert for transient failures.
    assert!(
        !events.iter().any(|e| e["type"] == "alert"),
        "{:?}",
        events
            .iter()
            .filter(|e| e["type"] == "alert")
            .collect::<Vec<_>>()
    );
    let took = agent.terminate().took;
    assert!(took < secs(5), "SIGTERM took {took:?}");
    assert_rows_match(&pg, &events);
    assert_complete(&pg, &state);
}

#[test]
fn kill_9_twenty_times_loses_and_doubles_nothing() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let sim = activity_sim();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let env = central_env(&gw.base, &token);
    let mut act = Activity::new(99);
    // Small batches: more requests in flight to be cut short.
    let mut env_small = env.clone();
    env_small.push(("MIKROTIK_EDGE_BATCH_MAX", "3".to_string()));
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..20 {
        let agent = start_agent(&sim, &state, &env_small);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let ms = 300 + rng % 1200;
        activity(
            &sim,
            &mut act,
            Duration::from_millis(ms * u64::from(slow_factor())),
        );
        if round == 0 {
            agent.wait_event(|e| e["type"] == "login");
        }
        agent.kill9();
    }
    // A last run drains everything.
    let agent = start_agent(&sim, &state, &env);
    activity(&sim, &mut act, secs(1));
    settle(&sim, &pg, &agent);
    agent.terminate();
    let last = assert_complete(&pg, &state);
    assert!(last > 20, "too little activity: {last} events");
    assert!(gw.count("POST /rpc/ingest_batch 200") > 20);
}

#[test]
fn a_wrong_token_alerts_once_keeps_events_and_does_not_loop() {
    let pg = Postgres::start();
    let _token_a = add_site(&pg, "site-a");
    let token_b = add_site(&pg, "site-b");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let sim = activity_sim();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let mut env = central_env(&gw.base, "0123456789abcdef");
    env.push(("MIKROTIK_EDGE_CENTRAL_BACKOFF_CAP_SECS", "2".into()));
    let agent = start_agent(&sim, &state, &env);
    agent.wait_event(|e| e["type"] == "alert" && e["name"] == "token_rejected");
    // Three more rejected attempts, spaced by the backoff (a loop would
    // make them in milliseconds); still one alert after them.
    let start = gw.count("ingest_batch 401");
    let started = Instant::now();
    assert!(
        wait_until(secs(30), || gw.count("ingest_batch 401") >= start + 3),
        "no retries:\n{}",
        gw.log()
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "3 rejected requests in {took:?}:\n{}",
        gw.log()
    );
    let alerts = agent
        .events()
        .into_iter()
        .filter(|e| e["type"] == "alert" && e["name"] == "token_rejected")
        .count();
    assert_eq!(alerts, 1, "{}", agent.log());
    assert!(
        !agent.log().contains("0123456789abcdef"),
        "token in the log"
    );
    agent.terminate();
    let store = Store::open(&state).unwrap();
    assert!(store.queued_events().unwrap() > 0, "events must be kept");
    drop(store);

    // Site B's token cannot write site A's rows: 403, alert, nothing stored.
    let env = central_env(&gw.base, &token_b);
    let agent = start_agent(&sim, &state, &env);
    agent.wait_event(|e| e["type"] == "alert" && e["name"] == "token_rejected");
    assert!(gw.count("ingest_batch 403") >= 1, "{}", gw.log());
    agent.terminate();
    assert_eq!(int(&pg, "SELECT count(*) FROM agent_events"), 0);
    assert!(!gw.log().contains(&token_b));
}

/// A one-shot HTTP sink: records each request body, answers 200.
fn webhook_sink() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break Some(buf[end + 4..end + 4 + len].to_vec());
                }
            };
            if let Some(body) = body.and_then(|b| serde_json::from_slice(&b).ok()) {
                b.lock().unwrap().push(body);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

#[test]
fn a_full_outbox_compacts_then_drops_and_the_central_side_sees_the_gap() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    // The central side is unreachable at first: nothing listens there.
    let listen = format!("127.0.0.1:{}", free_port());
    let (hook, bodies) = webhook_sink();
    let sim = sim_with(|o| {
        o.seed = SeedData {
            hotspot_users: 30,
            pppoe_secrets: 0,
            hotspot_active: 20,
            ppp_active: 0,
            ..SeedData::default()
        };
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let mut env = central_env(&format!("http://{listen}"), &token);
    env.push(("MIKROTIK_EDGE_OUTBOX_MAX_MB", "0.005".into()));
    env.push(("MIKROTIK_EDGE_ALERT_WEBHOOK", hook));
    env.push(("MIKROTIK_EDGE_ALERT_AFTER", "2".into()));
    let agent = start_agent(&sim, &state, &env);
    // 20 sessions report usage every second (compacted), and logins and
    // logouts (not compactable) fill the 5 KiB cap until the oldest go.
    let mut act = Activity::new(3);
    let deadline = Instant::now() + secs(60);
    while !agent.events().iter().any(|e| e["type"] == "dropped") && Instant::now() < deadline {
        activity(&sim, &mut act, Duration::from_millis(500));
    }
    let dropped = agent.wait_event(|e| e["type"] == "dropped");
    assert!(dropped["count"].as_u64().unwrap() > 0, "{dropped}");
    assert!(dropped["from_seq"].as_u64() <= dropped["to_seq"].as_u64());
    agent.wait_event(|e| e["type"] == "alert" && e["name"] == "outbox_full");
    let log = agent.log();
    assert!(log.contains("usage events compacted"), "{log}");

    // The router goes away for a while: one alert, then one on recovery.
    sim.reboot(secs(6));
    agent.wait_event(|e| e["type"] == "alert" && e["name"] == "mikrotik_connection_failed");
    agent.wait_event(|e| e["type"] == "alert" && e["name"] == "mikrotik_connection_restored");

    // Each alert also went to the webhook as the event's JSON.
    assert!(wait_until(secs(20), || {
        let names: Vec<String> = bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap_or("").to_string())
            .collect();
        [
            "outbox_full",
            "mikrotik_connection_failed",
            "mikrotik_connection_restored",
        ]
        .iter()
        .all(|n| names.iter().any(|x| x == n))
    }));
    let first = bodies.lock().unwrap()[0].clone();
    assert_eq!(first["type"], "alert");
    assert_eq!(first["site"], "site-a");
    assert!(
        first["message"].is_string() && first["seq"].is_u64(),
        "{first}"
    );

    // The central side comes up: the re-linked chain is complete, the
    // `dropped` record tells it what is missing.
    let _gw = Gateway::start(&pg, &listen);
    // Settled, not only drained: with sessions online, usage events keep
    // coming between a drained check and the stop (seen on a loaded
    // machine: 19 of them), and the count below compares with the store.
    settle(&sim, &pg, &agent);
    agent.terminate();
    assert!(
        int(
            &pg,
            "SELECT count(*) FROM agent_events WHERE type = 'dropped'"
        ) >= 1
    );
    assert!(int(&pg, "SELECT count(*) FROM alerts WHERE site_id = 'site-a'") >= 1);
    let store = Store::open(&state).unwrap();
    let last = store.last_seq().unwrap();
    drop(store);
    assert_eq!(stored_through(&pg), last);
    // Some seqs were compacted or dropped, so fewer rows than seqs.
    assert!(int(&pg, "SELECT count(*) FROM agent_events") < last);
}

#[test]
fn sigterm_is_prompt_while_the_central_side_hangs() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let mut env = central_env(&url, "tok");
    env.push(("MIKROTIK_EDGE_CENTRAL_TIMEOUT_SECS", "300".into()));
    let agent = start_agent(&sim, &state, &env);
    agent.wait_event(|e| e["type"] == "router");
    // The upload's request has arrived: the agent waits for its answer.
    assert!(wait_until(secs(10), || {
        held.lock().unwrap().iter().any(|s| {
            let mut b = [0u8; 1];
            s.set_nonblocking(true).is_ok() && s.peek(&mut b).is_ok_and(|n| n > 0)
        })
    }));
    let took = agent.terminate().took;
    assert!(
        took < Duration::from_secs(2) * slow_factor(),
        "SIGTERM took {took:?}"
    );
}

#[test]
fn bad_uplink_config_exits_2_naming_the_key() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    for (pairs, key) in [
        (
            vec![("MIKROTIK_EDGE_CENTRAL_URL", "ftp://x")],
            "MIKROTIK_EDGE_CENTRAL_URL",
        ),
        (
            vec![("MIKROTIK_EDGE_CENTRAL_TOKEN", "t")],
            "MIKROTIK_EDGE_CENTRAL_TOKEN",
        ),
        (
            vec![("MIKROTIK_EDGE_OUTBOX_MAX_MB", "big")],
            "MIKROTIK_EDGE_OUTBOX_MAX_MB",
        ),
    ] {
        let mut cmd = agent_command();
        agent_env(&mut cmd, &sim);
        let out = cmd
            .arg("run")
            .env("MIKROTIK_EDGE_STATE_PATH", dir.path().join("s.redb"))
            .envs(pairs)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{err}");
    }
}

/// Issue 20: with a 0.05 MB cap and the central side down for a long
/// while, the outbox stays under the cap after every commit (plus at most
/// one event), and once the central side is back the `outbox_full` alert
/// and the `dropped` record are in PostgreSQL: the gap is explained.
#[test]
fn the_outbox_never_exceeds_its_cap_and_its_alerts_reach_the_central_side() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let listen = format!("127.0.0.1:{}", free_port());
    let sim = sim_with(|o| {
        o.seed = SeedData {
            hotspot_users: 120,
            pppoe_secrets: 0,
            hotspot_active: 40,
            ppp_active: 0,
            ..SeedData::default()
        };
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let mut env = central_env(&format!("http://{listen}"), &token);
    env.push(("MIKROTIK_EDGE_OUTBOX_MAX_MB", "0.05".into()));
    let cap = (0.05f64 * 1024.0 * 1024.0) as u64;
    let agent = start_agent(&sim, &state, &env);
    let mut act = Activity::new(7);
    // A busy site: logins and logouts (not compactable) fill the cap.
    let busy = |act: &mut Activity, d: Duration| {
        let end = Instant::now() + d;
        while Instant::now() < end {
            for _ in 0..5 {
                act.step(&sim);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let deadline = Instant::now() + secs(90);
    while !agent.events().iter().any(|e| e["type"] == "dropped") && Instant::now() < deadline {
        busy(&mut act, Duration::from_millis(500));
    }
    agent.wait_event(|e| e["type"] == "dropped");
    // The outage goes on well past the first drop: 100 more commits.
    let commits = || agent.log().matches("outbox: ").count();
    let at_drop = commits();
    let deadline = Instant::now() + secs(60);
    while commits() < at_drop + 100 && Instant::now() < deadline {
        busy(&mut act, Duration::from_millis(500));
    }
    assert!(
        commits() >= at_drop + 100,
        "too few commits after the first drop:\n{}",
        agent.log()
    );
    let largest = agent
        .events()
        .iter()
        .map(|e| e.to_string().len() as u64)
        .max()
        .unwrap();
    let sizes: Vec<u64> = agent
        .log()
        .lines()
        .filter_map(|l| l.split_once("outbox: "))
        .filter_map(|(_, rest)| rest.split(' ').next()?.parse().ok())
        .collect();
    assert!(sizes.len() > 50, "too few commits seen: {}", sizes.len());
    let peak = sizes.iter().copied().max().unwrap();
    assert!(
        peak <= cap + largest,
        "outbox peaked at {peak} bytes, cap {cap} (+ {largest})"
    );
    assert!(peak > cap / 2, "the cap was never approached: {peak}");
    eprintln!(
        "outbox peak {peak} bytes over {} commits, cap {cap}",
        sizes.len()
    );

    let _gw = Gateway::start(&pg, &listen);
    settle(&sim, &pg, &agent);
    agent.terminate();
    let store = Store::open(&state).unwrap();
    let last = store.last_seq().unwrap();
    drop(store);
    assert_eq!(stored_through(&pg), last);
    assert!(
        int(
            &pg,
            "SELECT count(*) FROM alerts WHERE site_id = 'site-a' AND name = 'outbox_full'"
        ) >= 1
    );
    assert!(
        int(
            &pg,
            "SELECT count(*) FROM alerts WHERE site_id = 'site-a' AND name = 'events_dropped'"
        ) >= 1
    );
    // Every drop is accounted for: the dropped records' counts plus the
    // stored events plus the compacted usage make up all the numbers.
    let dropped = int(
        &pg,
        "SELECT coalesce(sum((body ->> 'count')::bigint), 0) FROM agent_events WHERE type = 'dropped'",
    );
    assert!(dropped > 0);
    assert!(int(&pg, "SELECT count(*) FROM agent_events") + dropped <= last);
}
