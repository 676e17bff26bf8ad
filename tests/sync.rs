//! Full sync end to end: real PostgreSQL with the schema, `mikrotik-central`,
//! the agent binary and the simulator.

mod common;

use std::path::Path;
use std::time::Duration;

use common::gateway::{Gateway, add_site};
use common::pg::Postgres;
use common::*;
use mikrotik_edge::sim::SimHandle;

/// The agent with a sync every second.
fn start(sim: &SimHandle, state: &Path, extra: &[(&str, String)]) -> Agent {
    Agent::run(sim)
        .state(state)
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .env("MIKROTIK_EDGE_SYNC_SECS", "1")
        .env("MIKROTIK_EDGE_CENTRAL_BACKOFF_CAP_SECS", "1")
        .env("MIKROTIK_EDGE_CENTRAL_TIMEOUT_SECS", "5")
        .envs(extra)
        .start()
}

const VC: &str = "VOUCHER_SYSTEM|B-SYNC|5000|4000|1|v1|2026-11-24|admin||";
const PC: &str = "PPPOE_SYSTEM|B-P|150000||C1|S1|2026-11-24|admin";

fn central(pg: &Postgres) {
    pg.psql(&format!(
        "INSERT INTO vouchers (site_id, code, password, profile_name, status, mikrotik_comment) VALUES \
         ('site-a', 'NEW1', 'pw1', 'voucher-1h', 'created', '{VC}'), \
         ('site-a', 'NEW2', 'pw2', 'voucher-1h', 'created', '{VC}'), \
         ('site-a', 'GONE', 'pw3', 'voucher-1h', 'expired', '{VC}'), \
         ('site-a', 'BADPROF', 'pw4', 'no-such-profile', 'created', '{VC}'); \
         INSERT INTO subscriptions (site_id, pppoe_username, password, profile_name, status, comment) VALUES \
         ('site-a', 'cust-a', 's1', 'pppoe-10M', 'active', '{PC}'), \
         ('site-a', 'cust-s', 's2', 'pppoe-10M', 'suspended', '{PC}'), \
         ('site-a', 'cust-new', 's3', 'pppoe-20M', 'active', '{PC}');"
    ));
}

fn router(sim: &SimHandle) {
    sim.add_hotspot_user("OLD-SYS", "x", "voucher-1h", VC.as_bytes());
    sim.add_hotspot_user("john", "x", "voucher-1h", b"made by hand");
    sim.add_ppp_secret("cust-a", "s1", "pppoe-10M", PC.as_bytes());
    sim.add_ppp_secret("cust-s", "s2", "pppoe-20M", PC.as_bytes());
    sim.ppp_connect("cust-s", "10.0.0.2", "AA:BB:CC:00:00:02")
        .unwrap();
    sim.advance(Duration::from_secs(100));
}

#[test]
fn reconciles_with_the_desired_state_and_keeps_going_offline() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    central(&pg);
    let sim = sim();
    router(&sim);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let env = vec![
        ("MIKROTIK_EDGE_CENTRAL_URL", gw.base.clone()),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN", token.clone()),
    ];
    let agent = start(&sim, &state, &env);

    // Missing vouchers and secrets created; the expired one not.
    agent.wait("NEW1, NEW2 and cust-new created", || {
        sim.find("/ip/hotspot/user", "NEW1").is_some()
            && sim.find("/ip/hotspot/user", "NEW2").is_some()
            && sim.find("/ppp/secret", "cust-new").is_some()
    });
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "NEW1", "password").unwrap(),
        "pw1"
    );
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "NEW1", "comment").unwrap(),
        VC
    );
    assert_eq!(
        field(&sim, "/ppp/secret", "cust-new", "profile").unwrap(),
        "pppoe-20M"
    );
    assert!(sim.find("/ip/hotspot/user", "GONE").is_none());
    // The suspended subscriber: disabled and kicked.
    agent.wait("cust-s disabled and kicked", || {
        field(&sim, "/ppp/secret", "cust-s", "disabled").as_deref() == Some("true")
            && sim.find("/ppp/active", "cust-s").is_none()
    });
    // The manual user untouched; the extra system voucher left in place.
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "john", "comment").unwrap(),
        "made by hand"
    );
    assert!(sim.find("/ip/hotspot/user", "OLD-SYS").is_some());

    // Central side: adopted as migrated, profiles, the refused creation.
    agent.wait(
        "OLD-SYS migrated, profiles, create_failed alert",
        || {
            pg.psql("SELECT status FROM vouchers WHERE code = 'OLD-SYS'") == "migrated"
            && pg.psql("SELECT count(*) FROM mikrotik_profiles WHERE site_id = 'site-a' AND name IN ('voucher-1h', 'pppoe-10M')") == "2"
            && pg.psql("SELECT count(*) FROM alerts WHERE name = 'create_failed'") == "1"
        },
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM vouchers WHERE code = 'john'"),
        "0",
        "manual users are never adopted"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM manual_users WHERE username = 'john'"),
        "1"
    );

    // Restored when the central side says active.
    pg.psql("UPDATE subscriptions SET status = 'active' WHERE pppoe_username = 'cust-s'");
    agent.wait("cust-s enabled", || {
        field(&sim, "/ppp/secret", "cust-s", "disabled").as_deref() == Some("false")
    });

    // The central side goes away and the agent restarts: the desired state
    // saved in the state file is still applied.
    drop(agent);
    drop(gw);
    remove_on_router(&sim, "/ip/hotspot/user", "NEW1");
    let agent = start(&sim, &state, &env);
    agent.wait("NEW1 recreated offline", || {
        sim.find("/ip/hotspot/user", "NEW1").is_some()
    });
    assert!(
        agent.log().contains("using the last one saved"),
        "{}",
        agent.log()
    );
    // No duplicate events: the adoption was reported once.
    assert_eq!(agent.log().matches("\"type\":\"user_adopted\"").count(), 0);
}

#[test]
fn isolir_moves_suspended_secrets_to_the_isolation_profile_and_back() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    pg.psql(&format!(
        "INSERT INTO subscriptions (site_id, pppoe_username, password, profile_name, status, comment) VALUES \
         ('site-a', 'cust-i', 's', 'pppoe-20M', 'suspended', '{PC}')"
    ));
    let sim = sim();
    sim.add_item(
        "/ppp/profile",
        &[("name", b"isolir"), ("rate-limit", b"128k/128k")],
    )
    .unwrap();
    sim.add_ppp_secret("cust-i", "s", "pppoe-20M", PC.as_bytes());
    sim.ppp_connect("cust-i", "10.0.0.3", "AA:BB:CC:00:00:03")
        .unwrap();
    sim.advance(Duration::from_secs(100));
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("MIKROTIK_EDGE_CENTRAL_URL", gw.base.clone()),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN", token),
        ("MIKROTIK_EDGE_SUSPEND_MODE", "isolir".to_owned()),
        ("MIKROTIK_EDGE_ISOLIR_PROFILE", "isolir".to_owned()),
    ];
    let agent = start(&sim, &dir.path().join("state.redb"), &env);
    agent.wait("cust-i isolated and kicked", || {
        field(&sim, "/ppp/secret", "cust-i", "profile").as_deref() == Some("isolir")
            && sim.find("/ppp/active", "cust-i").is_none()
    });
    let comment = field(&sim, "/ppp/secret", "cust-i", "comment").unwrap();
    assert_eq!(comment, format!("{PC}|isolir=pppoe-20M"));
    assert_eq!(
        field(&sim, "/ppp/secret", "cust-i", "disabled").unwrap(),
        "false"
    );
    // The customer reconnects, isolated: left online (payment page).
    sim.ppp_connect("cust-i", "10.0.0.3", "AA:BB:CC:00:00:03")
        .unwrap();
    // A whole poll sees the new session, then two sync runs start after
    // that (one of them whole): the customer is still online.
    wait_polls(&sim, 2);
    let runs = agent.sync_runs();
    agent.wait("two sync runs after the reconnect", || {
        agent.sync_runs() >= runs + 2
    });
    assert!(
        sim.find("/ppp/active", "cust-i").is_some(),
        "{}",
        agent.log()
    );

    pg.psql("UPDATE subscriptions SET status = 'active' WHERE pppoe_username = 'cust-i'");
    agent.wait("cust-i restored and reconnected", || {
        field(&sim, "/ppp/secret", "cust-i", "profile").as_deref() == Some("pppoe-20M")
            && sim.find("/ppp/active", "cust-i").is_none()
    });
    assert_eq!(field(&sim, "/ppp/secret", "cust-i", "comment").unwrap(), PC);
    agent.wait("subscription events at the central side", || {
        pg.psql("SELECT string_agg(body->>'action', ',' ORDER BY seq) FROM agent_events WHERE type = 'subscription'")
            == "suspended,restored"
    });
}

#[test]
fn the_sync_command_reconciles_once_and_exits() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    pg.psql(&format!(
        "INSERT INTO vouchers (site_id, code, password, profile_name, status, mikrotik_comment) VALUES \
         ('site-a', 'CLI1', 'pw', 'voucher-1h', 'created', '{VC}')"
    ));
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let mut cmd = agent_command();
        agent_env(&mut cmd, &sim);
        cmd.arg("sync")
            .env("MIKROTIK_EDGE_STATE_PATH", dir.path().join("state.redb"))
            .env("MIKROTIK_EDGE_SITE_ID", "site-a")
            .env("MIKROTIK_EDGE_CENTRAL_URL", &gw.base)
            .env("MIKROTIK_EDGE_CENTRAL_TOKEN", &token);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()
    };
    let first = run();
    assert_eq!(first["desired_state"], "fetched");
    assert_eq!(first["created"], 1, "{first}");
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "CLI1", "password").unwrap(),
        "pw"
    );
    let second = run();
    assert_eq!(second["actions"], 0, "{second}");
}
