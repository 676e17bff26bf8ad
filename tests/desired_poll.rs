//! Changes made centrally reach the router within seconds: the agent polls
//! `site_desired_version` (a counter the schema's triggers bump) and runs a
//! full sync when it moved. Real PostgreSQL with the schema, the real
//! `mikrotik-central` gateway, the agent binary and the simulator; the full
//! sync interval is an hour, so only the poll can explain a change arriving.

mod common;

use std::path::Path;

use common::gateway::{Gateway, add_site};
use common::pg::Postgres;
use common::*;
use mikrotik_edge::sim::SimHandle;

const VC: &str = "VOUCHER_SYSTEM|B-POLL|5000|4000|1|v1|2026-12-07|admin||";
const PC: &str = "PPPOE_SYSTEM|B-P|150000||C1|S1|2026-12-07|admin";
/// The agent's log line for a sync the version poll started.
const POLL_SYNC: &str = "): syncing now";

/// The agent with a poll every second; the full sync interval stays at its
/// default (an hour) unless `extra` sets it.
fn start(sim: &SimHandle, state: &Path, extra: &[(&str, String)]) -> Agent {
    Agent::run(sim)
        .state(state)
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .env("MIKROTIK_EDGE_CENTRAL_BACKOFF_CAP_SECS", "1")
        .env("MIKROTIK_EDGE_CENTRAL_TIMEOUT_SECS", "5")
        .envs(extra)
        .start()
}

fn version(pg: &Postgres, site: &str) -> i64 {
    pg.psql(&format!("SELECT site_desired_version('{site}')"))
        .parse()
        .unwrap()
}

/// `POST {base}/rpc/site_desired_version` as the agent sends it.
fn call_version(base: &str, token: Option<&str>, site: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent
        .post(&format!("{base}/rpc/site_desired_version"))
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req
        .send(format!(r#"{{"site_id": "{site}"}}"#))
        .expect("gateway reachable");
    let code = resp.status().as_u16();
    (code, resp.body_mut().read_to_string().unwrap())
}

#[test]
fn central_changes_reach_the_router_through_the_version_poll() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    pg.psql(&format!(
        "INSERT INTO subscriptions (site_id, pppoe_username, password, profile_name, status, comment) \
         VALUES ('site-a', 'cust-1', 's1', 'pppoe-10M', 'active', '{PC}')"
    ));
    let sim = sim();
    sim.add_ppp_secret("cust-1", "s1", "pppoe-10M", PC.as_bytes());
    sim.ppp_connect("cust-1", "10.0.0.2", "AA:BB:CC:00:00:02")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("MIKROTIK_EDGE_CENTRAL_URL", gw.base.clone()),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN", token.clone()),
        ("MIKROTIK_EDGE_SYNC_SECS", "3600".to_owned()),
        ("MIKROTIK_EDGE_DESIRED_POLL_SECS", "1".to_owned()),
    ];
    let agent = start(&sim, &dir.path().join("state.redb"), &env);
    agent.wait("the sync at start", || agent.sync_runs() >= 1);
    agent.wait("a poll that found nothing new", || {
        agent.count("sync: desired version unchanged") >= 1
    });
    // One sync at start: the start's own, or (on a slow machine, e.g.
    // under qemu) the first poll's, finding the version still unknown.
    let at_start = agent.count(POLL_SYNC);
    assert!(at_start <= 1, "{}", agent.log());
    assert_eq!(agent.sync_runs(), 1, "{}", agent.log());

    // A voucher inserted centrally (as the operator API does).
    let before = version(&pg, "site-a");
    pg.psql(&format!(
        "INSERT INTO vouchers (site_id, code, password, profile_name, status, mikrotik_comment) \
         VALUES ('site-a', 'POLL1', 'pw1', 'voucher-1h', 'created', '{VC}')"
    ));
    assert_eq!(version(&pg, "site-a"), before + 1);
    agent.wait("POLL1 created on the router", || {
        sim.find("/ip/hotspot/user", "POLL1").is_some()
    });
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "POLL1", "comment").unwrap(),
        VC
    );
    assert_eq!(
        field(&sim, "/ip/hotspot/user", "POLL1", "password").unwrap(),
        "pw1"
    );
    // Brought by the poll, not by the hourly sync. (The user is on the
    // router a moment before the sync logs its summary line.)
    agent.wait("the poll's sync finished", || agent.sync_runs() >= 2);
    assert_eq!(agent.count(POLL_SYNC), at_start + 1, "{}", agent.log());
    assert_eq!(agent.sync_runs(), 2, "{}", agent.log());

    // A suspension: the secret disabled and its session ended, the same way.
    pg.psql("UPDATE subscriptions SET status = 'suspended' WHERE pppoe_username = 'cust-1'");
    agent.wait("cust-1 disabled and kicked", || {
        field(&sim, "/ppp/secret", "cust-1", "disabled").as_deref() == Some("true")
            && sim.find("/ppp/active", "cust-1").is_none()
    });
    assert_eq!(agent.count(POLL_SYNC), at_start + 2, "{}", agent.log());

    // An activation reported by the agent changes the voucher's row
    // (status, comment) but not the counter: no sync follows it.
    agent.wait("the suspension's sync finished", || agent.sync_runs() >= 3);
    let settled = version(&pg, "site-a");
    sim.hotspot_login("POLL1", "10.5.50.7", "02:00:00:00:00:07")
        .unwrap();
    agent.wait("the activation at the central side", || {
        pg.psql("SELECT status FROM vouchers WHERE code = 'POLL1'") == "active"
    });
    assert_eq!(version(&pg, "site-a"), settled);
    let runs = agent.sync_runs();
    let polls = agent.count("sync: desired version unchanged");
    agent.wait("two more polls after the activation", || {
        agent.count("sync: desired version unchanged") >= polls + 2
    });
    assert_eq!(agent.sync_runs(), runs, "{}", agent.log());
    assert_eq!(agent.count(POLL_SYNC), at_start + 2, "{}", agent.log());
}

#[test]
fn the_version_rpc_follows_the_site_rule() {
    let pg = Postgres::start();
    let token_a = add_site(&pg, "site-a");
    let token_b = add_site(&pg, "site-b");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    assert_eq!(
        call_version(&gw.base, Some(&token_a), "site-a"),
        (200, "0".to_owned())
    );
    // A batch of 10,000 in one statement bumps the site once; an unrelated
    // column (last_seen) not at all; another site's counter never.
    pg.psql(
        "INSERT INTO vouchers (site_id, code, password, profile_name, status) \
         SELECT 'site-a', 'B' || g, 'p', 'voucher-1h', 'created' FROM generate_series(1, 10000) g",
    );
    pg.psql("UPDATE vouchers SET last_seen = now() WHERE site_id = 'site-a'");
    assert_eq!(
        call_version(&gw.base, Some(&token_a), "site-a"),
        (200, "1".to_owned())
    );
    assert_eq!(version(&pg, "site-b"), 0);
    pg.psql("DELETE FROM vouchers WHERE code = 'B1'");
    assert_eq!(version(&pg, "site-a"), 2);

    // Another site's token, no token, a wrong method.
    let (code, body) = call_version(&gw.base, Some(&token_b), "site-a");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("42501"), "{body}");
    assert_eq!(call_version(&gw.base, None, "site-a").0, 401);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = agent
        .get(&format!("{}/rpc/site_desired_version", gw.base))
        .call()
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);

    // As PostgREST calls it: a role with EXECUTE only, the JWT's claims.
    pg.psql(
        "DO $$ BEGIN CREATE ROLE edge_agent NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
         GRANT USAGE ON SCHEMA public TO edge_agent",
    );
    let as_agent = |site: &str| {
        pg.try_psql(&format!(
            "SET ROLE edge_agent; \
             SELECT set_config('request.jwt.claims', '{{\"role\":\"edge_agent\",\"site_id\":\"site-a\"}}', true); \
             SELECT site_desired_version('{site}')"
        ))
    };
    let err = as_agent("site-a").unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    pg.psql("GRANT EXECUTE ON FUNCTION site_desired_version(text) TO edge_agent");
    assert!(as_agent("site-a").unwrap().ends_with('2'));
    let err = as_agent("site-b").unwrap_err();
    assert!(err.contains("42501"), "{err}");
    // Nobody but the triggers bumps a counter.
    let err = pg
        .try_psql("SET ROLE edge_agent; SELECT _edge_bump_desired(ARRAY['site-a'])")
        .unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
}

#[test]
fn a_central_without_the_version_rpc_still_syncs_periodically() {
    let pg = Postgres::start();
    // A schema from before the counter: the function is missing.
    pg.psql("DROP FUNCTION site_desired_version(text)");
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let (code, body) = call_version(&gw.base, Some(&token), "site-a");
    assert_eq!(code, 404, "{body}");
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("MIKROTIK_EDGE_CENTRAL_URL", gw.base.clone()),
        ("MIKROTIK_EDGE_CENTRAL_TOKEN", token),
        ("MIKROTIK_EDGE_SYNC_SECS", "2".to_owned()),
        ("MIKROTIK_EDGE_DESIRED_POLL_SECS", "1".to_owned()),
    ];
    let agent = start(&sim, &dir.path().join("state.redb"), &env);
    agent.wait("the sync at start", || agent.sync_runs() >= 1);
    pg.psql(&format!(
        "INSERT INTO vouchers (site_id, code, password, profile_name, status, mikrotik_comment) \
         VALUES ('site-a', 'OLD1', 'pw', 'voucher-1h', 'created', '{VC}')"
    ));
    agent.wait("OLD1 created by a periodic sync", || {
        sim.find("/ip/hotspot/user", "OLD1").is_some()
    });
    let runs = agent.sync_runs();
    agent.wait("two more periodic syncs", || agent.sync_runs() >= runs + 2);
    // Said once; no poll after the first 404 (each full sync asks once).
    assert_eq!(
        agent.count("has no site_desired_version"),
        1,
        "{}",
        agent.log()
    );
    assert_eq!(agent.count("desired version poll failed"), 0);
    assert_eq!(agent.count(POLL_SYNC), 0);
    // The 404s: this test's own call above, the agent's first poll, then
    // one per full sync. A sync asks before it logs its summary line, so
    // the 404s counted now belong to syncs finished once one more has.
    let asked = gw.count("/rpc/site_desired_version 404");
    let runs = agent.sync_runs();
    agent.wait("one more periodic sync", || agent.sync_runs() > runs);
    assert!(asked <= 2 + agent.sync_runs(), "{}", gw.log());
}
