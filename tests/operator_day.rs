//! An operator's day, end to end, with real parts: PostgreSQL, the gateway,
//! the real agent binary with its HTTP endpoint, `create-batch`, and the
//! simulated router. Each step is a seam that used to lose money or trust
//! (README "One source of truth").

mod common;

use std::path::Path;

use common::gateway::{Gateway, add_site};
use common::pg::Postgres;
use common::*;
use mikrotik_edge::sim::SimHandle;

const TOKEN: &str = "day-token-0123456789";

/// The agent with its HTTP endpoint, syncing every 2 s, isolir suspends.
fn start(sim: &SimHandle, state: &Path, env: &[(&str, String)]) -> Agent {
    Agent::run(sim)
        .state(state)
        .http()
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .env("MIKROTIK_EDGE_SYNC_SECS", "2")
        .env("MIKROTIK_EDGE_USER_READ_SECS", "0")
        .env("MIKROTIK_EDGE_CENTRAL_BACKOFF_CAP_SECS", "1")
        .env("MIKROTIK_EDGE_CENTRAL_TIMEOUT_SECS", "5")
        .env("MIKROTIK_EDGE_SUSPEND_MODE", "isolir")
        .env("MIKROTIK_EDGE_ISOLIR_PROFILE", "isolir")
        .env("MIKROTIK_EDGE_HTTP_TOKEN", TOKEN)
        .envs(env)
        .start()
}

/// A request to the agent's endpoint with the token; the status and the body.
fn call(agent: &Agent, method: &str, path: &str) -> (u16, String) {
    let client = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(secs(15)))
        .build()
        .new_agent();
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(agent.url(path))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .body(())
        .unwrap();
    let mut resp = client.run(req).expect("http request");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (status, body)
}

/// Polls done so far (`monitoring/status`).
fn polls_done(agent: &Agent) -> u64 {
    let (_, body) = call(agent, "GET", "/api/mikrotik/monitoring/status");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["polls"].as_u64())
        .unwrap_or(0)
}

/// Forces a sync and waits until two more have run (the forced one and
/// the next scheduled one), so a change that a sync would undo has had its
/// chance to.
fn two_syncs(agent: &Agent) {
    let before = agent.count("sync: fetched desired state");
    let (status, _) = call(agent, "POST", "/api/mikrotik/sync/force");
    assert_eq!(status, 202);
    agent.wait("two more syncs", || {
        agent.count("sync: fetched desired state") >= before + 2
    });
}

const VC: &str = "VOUCHER_SYSTEM|B-DAY|5000|4000|24|v1|2026-12-07|central||";
const PC: &str = "PPPOE_SYSTEM|B-DAY|150000||C1|S1|2026-12-07|central";

#[test]
fn an_operators_day_holds() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let sim = sim();
    sim.add_item("/ppp/profile", &[("name", b"isolir")])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let central = vec![
        ("MIKROTIK_EDGE_CENTRAL_URL", gw.base.clone()),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN", token.clone()),
    ];

    // Morning: vouchers and subscriptions made centrally, one voucher of a
    // minute (fractional valid_hours), and one with no known password.
    pg.psql(&format!(
        "INSERT INTO vouchers (site_id, code, password, profile_name, status, mikrotik_comment) VALUES \
         ('site-a', 'VC1', 'pc1', 'voucher-1h', 'created', '{VC}'), \
         ('site-a', 'VMIN', 'pmin', 'voucher-1h', 'created', 'VOUCHER_SYSTEM|B-DAY|1000|500|0.0167|v1|2026-12-07|central||'), \
         ('site-a', 'VNOPW', NULL, 'voucher-1h', 'created', '{VC}'); \
         INSERT INTO subscriptions (site_id, pppoe_username, password, profile_name, status, comment) VALUES \
         ('site-a', 'cust-c', 'sc', 'pppoe-10M', 'active', '{PC}');"
    ));
    // A voucher someone made on the router by hand, in our format.
    sim.add_hotspot_user(
        "VR1",
        "vr1pw",
        "voucher-1h",
        b"VOUCHER_SYSTEM|B-R|5000|4000|24|v1|2026-12-07|winbox||",
    );
    let agent = start(&sim, &state, &central);
    agent.wait("central's users created on the router", || {
        sim.find("/ip/hotspot/user", "VC1").is_some()
            && sim.find("/ip/hotspot/user", "VMIN").is_some()
            && sim.find("/ppp/secret", "cust-c").is_some()
    });
    // Never recreated without its password: reported instead.
    agent.wait("recreate_blocked alert for VNOPW", || {
        pg.psql("SELECT count(*) FROM alerts WHERE name = 'recreate_blocked' AND data->>'user' = 'VNOPW'")
            == "1"
    });
    assert!(sim.find("/ip/hotspot/user", "VNOPW").is_none());

    // create-batch reports its users to central at once, with passwords.
    let csv = dir.path().join("batch.csv");
    std::fs::write(
        &csv,
        "service,name,password,profile,valid_hours,batch_id\n\
         hotspot,VB1,vb1pw,voucher-1h,1.5,B-CSV\n\
         pppoe,cust-b,sbpw,pppoe-10M,,B-CSV\n",
    )
    .unwrap();
    let mut cmd = agent_command();
    agent_env(&mut cmd, &sim);
    let out = cmd
        .args(["create-batch", csv.to_str().unwrap()])
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .envs(central.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("create-batch");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reported to central: 2 users"), "{stdout}");
    assert_eq!(
        pg.psql("SELECT status || ' ' || password || ' ' || valid_hours FROM vouchers WHERE code = 'VB1'"),
        "created vb1pw 1.5"
    );
    assert_eq!(
        pg.psql(
            "SELECT status || ' ' || password FROM subscriptions WHERE pppoe_username = 'cust-b'"
        ),
        "active sbpw"
    );

    // Adoption carries the password (the API user may read it).
    agent.wait("VR1 adopted with its password", || {
        pg.psql("SELECT coalesce(password, '-') || ' ' || status FROM vouchers WHERE code = 'VR1'")
            == "vr1pw migrated"
    });

    // Customers arrive: vouchers activated, a PPPoE customer online.
    for (user, ip, mac) in [
        ("VR1", "10.5.0.2", "AA:00:00:00:00:02"),
        ("VC1", "10.5.0.3", "AA:00:00:00:00:03"),
        ("VMIN", "10.5.0.4", "AA:00:00:00:00:04"),
    ] {
        sim.hotspot_login(user, ip, mac).unwrap();
    }
    sim.ppp_connect("cust-c", "10.0.0.2", "BB:00:00:00:00:02")
        .unwrap();
    agent.wait("activation stamps in central's comments", || {
        pg.psql(
            "SELECT count(*) FROM vouchers WHERE code IN ('VR1', 'VC1') AND first_login_at IS NOT NULL \
             AND mikrotik_comment LIKE '%' || to_char(first_login_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || '%'",
        ) == "2"
    });
    let vr1_comment = field(&sim, "/ip/hotspot/user", "VR1", "comment").unwrap();
    assert!(vr1_comment.contains('T'), "{vr1_comment}");

    // Deleted on the router: recreated with the same password and term.
    remove_on_router(&sim, "/ip/hotspot/user", "VR1");
    agent.wait("VR1 recreated", || {
        sim.find("/ip/hotspot/user", "VR1").is_some()
    });
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "VR1", "password").unwrap(),
        "vr1pw"
    );
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "VR1", "comment").unwrap(),
        vr1_comment,
        "the recreated voucher keeps its term"
    );
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "VR1", "profile").unwrap(),
        "voucher-1h"
    );

    // The local user API: a delete and a PPPoE disable are intents that
    // survive forced syncs, and central learns them.
    let (status, body) = call(&agent, "DELETE", "/api/mikrotik/users/hotspot/VC1");
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&agent, "POST", "/api/mikrotik/users/pppoe/cust-c/disable");
    assert_eq!(status, 200, "{body}");
    two_syncs(&agent);
    assert!(
        sim.find("/ip/hotspot/user", "VC1").is_none(),
        "VC1 came back"
    );
    assert_eq!(
        field(&sim, "/ppp/secret", "cust-c", "disabled").as_deref(),
        Some("true"),
        "cust-c re-enabled"
    );
    agent.wait("central shows the local intents", || {
        pg.psql("SELECT status FROM vouchers WHERE code = 'VC1'") == "deleted"
            && pg.psql("SELECT status FROM subscriptions WHERE pppoe_username = 'cust-c'")
                == "suspended"
    });
    // The kicked PPPoE session logged out as kicked.
    agent.wait("cust-c's session ended as kicked", || {
        pg.psql("SELECT coalesce(string_agg(end_reason, ','), '') FROM sessions WHERE username = 'cust-c'")
            == "kicked"
    });

    // A newer central intent wins over the older local one.
    pg.psql("UPDATE subscriptions SET status = 'active' WHERE pppoe_username = 'cust-c'");
    agent.wait("cust-c restored by central", || {
        field(&sim, "/ppp/secret", "cust-c", "disabled").as_deref() == Some("false")
    });

    // Isolir: a suspended customer moved to the isolation profile stays
    // managed: the reconnect is logged.
    sim.ppp_connect("cust-b", "10.0.0.3", "BB:00:00:00:00:03")
        .unwrap();
    pg.psql("UPDATE subscriptions SET status = 'suspended' WHERE pppoe_username = 'cust-b'");
    agent.wait("cust-b isolated and kicked", || {
        field(&sim, "/ppp/secret", "cust-b", "profile").as_deref() == Some("isolir")
            && sim.find("/ppp/active", "cust-b").is_none()
    });
    // Once the agent has read the isolated secret (its profile no longer
    // matches `*pppoe*`), the customer reconnects.
    let polls = polls_done(&agent);
    agent.wait("two polls after the isolation", || {
        polls_done(&agent) >= polls + 2
    });
    sim.ppp_connect("cust-b", "10.0.0.3", "BB:00:00:00:00:03")
        .unwrap();
    agent.wait("the isolated customer's login logged", || {
        pg.psql(
            "SELECT count(*) FROM user_activity_log AS l \
             JOIN agent_events AS e ON e.site_id = l.site_id AND e.seq = l.seq \
             WHERE l.username = 'cust-b' AND l.action = 'login' AND e.profile = 'isolir'",
        ) == "1"
    });
    // Restored: reported when the restore is written.
    pg.psql("UPDATE subscriptions SET status = 'active' WHERE pppoe_username = 'cust-b'");
    agent.wait("cust-b restored, event with it", || {
        field(&sim, "/ppp/secret", "cust-b", "profile").as_deref() == Some("pppoe-10M")
            && pg.psql(
                "SELECT count(*) FROM agent_events WHERE type = 'subscription' \
                 AND usr = 'cust-b' AND body->>'action' = 'restored'",
            ) == "1"
    });

    // The one-minute voucher (valid_hours 0.0167) expires on time.
    wait_for_expiry(&agent, &sim, &pg);

    // Passwords never in the log (the event lines mask them).
    let log = agent.log();
    for pw in ["vr1pw", "pc1", "sc", "pmin"] {
        assert!(
            !log.contains(&format!("\"{pw}\"")),
            "password {pw} in the log"
        );
    }
    drop(gw);
}

fn wait_for_expiry(agent: &Agent, sim: &SimHandle, pg: &Postgres) {
    assert!(
        wait_until(secs(90), || {
            field(sim, "/ip/hotspot/user", "VMIN", "disabled").as_deref() == Some("true")
        }),
        "VMIN not disabled after its minute; log:\n{}",
        agent.log()
    );
    agent.wait("VMIN expired centrally", || {
        pg.psql("SELECT status FROM vouchers WHERE code = 'VMIN'") == "expired"
    });
}
