//! The central side: scripts/central/schema.sql on a real PostgreSQL, and
//! the mikrotik-central gateway over real HTTP(S).

mod common;

use common::pg::Postgres;
use serde_json::{Value, json};

const STREAM: &str = "0123456789abcdef0123456789abcdef";

/// An event of `STREAM` at a time derived from its seq.
fn ev(seq: u64, prev: u64, ty: &str, fields: Value) -> Value {
    let mut v = json!({
        "stream": STREAM, "seq": seq, "prev": prev,
        "at": format!("2026-11-24T15:{:02}:{:02}Z", (seq / 60) % 60, seq % 60),
        "site": "site-a", "type": ty,
    });
    for (k, x) in fields.as_object().expect("fields object") {
        v[k] = x.clone();
    }
    v
}

fn batch(events: &[Value]) -> Value {
    let first = events
        .first()
        .map(|e| e["seq"].as_u64().unwrap())
        .unwrap_or(0);
    let last = events
        .last()
        .map(|e| e["seq"].as_u64().unwrap())
        .unwrap_or(0);
    json!({"batch_id": format!("{STREAM}:{first}-{last}"), "stream": STREAM, "events": events})
}

/// A chain: each event's prev is the one before it (0 for the first).
fn chain(events: Vec<(u64, &str, Value)>) -> Vec<Value> {
    let mut prev = 0;
    let mut out = Vec::new();
    for (seq, ty, fields) in events {
        out.push(ev(seq, prev, ty, fields));
        prev = seq;
    }
    out
}

fn sql_json(v: &Value) -> String {
    format!("$j${v}$j$::json")
}

fn ingest(pg: &Postgres, site: &str, b: &Value) -> Value {
    let out = pg.psql(&format!("SELECT ingest_batch('{site}', {})", sql_json(b)));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ingest_batch result {out:?}: {e}"))
}

fn stored_through(pg: &Postgres, site: &str, b: &Value) -> u64 {
    ingest(pg, site, b)["stored_through"]
        .as_u64()
        .expect("stored_through")
}

/// Every design table's rows, as text: equal fingerprints = no row changed.
fn fingerprint(pg: &Postgres) -> String {
    let tables = [
        "sites",
        "agent_streams",
        "agent_events",
        "mikrotik_profiles",
        "user_activity_log",
        "user_usage_stats",
        "mikrotik_connection_log",
        "sessions",
        "vouchers",
        "subscriptions",
        "manual_users",
        "alerts",
    ];
    let mut s = String::new();
    for t in tables {
        // last_upload_at moves on every upload by design; everything else must not.
        let cols = if t == "sites" {
            "site_id, token_hash, created_at".to_string()
        } else {
            "t.*".to_string()
        };
        s += &pg.psql(&format!(
            "SELECT '{t}', count(*), md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) \
             FROM (SELECT {cols} FROM {t} t) r"
        ));
        s.push('\n');
    }
    s
}

fn login(user: &str, active_id: &str) -> Value {
    json!({"service": "hotspot", "user": user, "active_id": active_id, "session_id": "",
           "address": "10.5.50.7", "mac": "AA:BB:CC:00:00:07", "caller_id": "",
           "login_by": "http-chap", "profile": "voucher-1h", "seen_at_start": false})
}

fn logout(user: &str, active_id: &str, bytes_in: u64, uptime: u64) -> Value {
    json!({"service": "hotspot", "user": user, "active_id": active_id, "session_id": "",
           "reason": "gone", "bytes_in": bytes_in, "bytes_out": bytes_in * 10, "uptime_secs": uptime})
}

fn every_type() -> Vec<Value> {
    chain(vec![
        (1, "router", json!({"state": "connected", "reason": ""})),
        (
            2,
            "profile",
            json!({"service": "hotspot", "name": "voucher-1h", "rate_limit": "2M/4M",
                              "session_timeout": null, "shared_users": "1"}),
        ),
        (
            3,
            "user_adopted",
            json!({"service": "hotspot", "user": "OLD1", "profile": "voucher-1h",
                                   "comment": "vc-123", "batch_id": "", "valid_hours": 24,
                                   "first_login_at": null, "expires_at": null}),
        ),
        (4, "login", login("V1", "*1")),
        (
            5,
            "voucher_activated",
            json!({"user": "V1", "batch_id": "B1", "valid_hours": 1,
            "first_login_at": "2026-11-24T15:00:04Z", "expires_at": "2026-11-24T16:00:04Z",
            "provisional": false, "mac": "AA:BB:CC:00:00:07"}),
        ),
        (
            6,
            "usage",
            json!({"service": "hotspot", "user": "V1", "active_id": "*1", "session_id": "",
                            "bytes_in": 100, "bytes_out": 1000, "uptime_secs": 2}),
        ),
        (
            7,
            "login",
            json!({"service": "pppoe", "user": "P1", "active_id": "*9", "session_id": "0x81",
            "address": "10.0.0.9", "mac": "", "caller_id": "AA:BB:CC:00:00:09",
            "login_by": "pppoe", "profile": "pppoe-10M", "seen_at_start": false}),
        ),
        (8, "logout", logout("V1", "*1", 500, 4)),
        (
            9,
            "voucher_expired",
            json!({"user": "V1", "batch_id": "B1",
            "expires_at": "2026-11-24T16:00:04Z", "action": "disable"}),
        ),
        (
            10,
            "voucher_invalid",
            json!({"user": "V2", "reason": "bad valid_hours",
                                       "comment": "VOUCHER_SYSTEM|B|x"}),
        ),
        (
            11,
            "manual_user",
            json!({"service": "pppoe", "user": "hand\u{fffd}made",
            "user_b64": "aGFuZP9tYWRl", "profile": "pppoe-10M", "comment": "made by hand"}),
        ),
        (
            12,
            "alert",
            json!({"name": "mikrotik_connection_failed", "message": "10 attempts"}),
        ),
        (
            13,
            "dropped",
            json!({"from_seq": 100, "to_seq": 199, "count": 100}),
        ),
        (14, "clock", json!({"offset_secs": 3})),
        (15, "subscription", json!({"pppoe_username": "P1"})),
        (16, "something_new", json!({"x": 1})),
    ])
}

#[test]
fn schema_loads_twice() {
    let pg = Postgres::start();
    pg.load_schema();
    pg.load_schema();
    assert_eq!(pg.psql("SELECT count(*) FROM sites"), "0");
}

#[test]
fn each_event_type_lands_in_its_table() {
    let pg = Postgres::start();
    let r = ingest(&pg, "site-a", &batch(&every_type()));
    assert_eq!(r, json!({"stream": STREAM, "stored_through": 16}));

    assert_eq!(
        pg.psql("SELECT count(*) FROM agent_events WHERE site_id = 'site-a'"),
        "16"
    );
    assert_eq!(
        pg.psql("SELECT site_id, last_upload_at IS NOT NULL FROM sites"),
        "site-a|t"
    );
    assert_eq!(
        pg.psql("SELECT event, message FROM mikrotik_connection_log WHERE site_id = 'site-a'"),
        "connect|"
    );
    assert_eq!(
        pg.psql("SELECT service, name, rate_limit, session_timeout IS NULL, shared_users FROM mikrotik_profiles"),
        "hotspot|voucher-1h|2M/4M|t|1"
    );
    assert_eq!(
        pg.psql(
            "SELECT username, type, action, host(ip_address), mac_address, seq \
             FROM user_activity_log ORDER BY seq"
        ),
        "V1|hotspot|login|10.5.50.7|AA:BB:CC:00:00:07|4\n\
         P1|pppoe|login|10.0.0.9|AA:BB:CC:00:00:09|7\n\
         V1|hotspot|logout|||8"
    );
    assert_eq!(
        pg.psql(
            "SELECT service, username, active_id, session_id, started_at, ended_at, bytes_in, \
             bytes_out, uptime_secs, end_reason, seen_at_start FROM sessions ORDER BY id"
        ),
        "hotspot|V1|*1||2026-11-24 15:00:04+00|2026-11-24 15:00:08+00|500|5000|4|gone|f\n\
         pppoe|P1|*9|0x81|2026-11-24 15:00:07+00||||||f"
    );
    assert_eq!(
        pg.psql(
            "SELECT username, type, session_start, session_end, bytes_in, bytes_out, uptime_seconds \
             FROM user_usage_stats"
        ),
        "V1|hotspot|2026-11-24 15:00:04+00|2026-11-24 15:00:08+00|500|5000|4"
    );
    assert_eq!(
        pg.psql(
            "SELECT code, status, batch_id, valid_hours, first_login_at, expires_at, \
             mac_address, host(ip_address), last_seen IS NOT NULL, profile_name, mikrotik_comment \
             FROM vouchers ORDER BY code"
        ),
        "OLD1|migrated||24|||||f|voucher-1h|vc-123\n\
         V1|expired|B1|1|2026-11-24 15:00:04+00|2026-11-24 16:00:04+00|AA:BB:CC:00:00:07||t||"
    );
    assert_eq!(
        pg.psql("SELECT service, username, profile, comment, data->>'user_b64' FROM manual_users"),
        "pppoe|hand\u{fffd}made|pppoe-10M|made by hand|aGFuZP9tYWRl"
    );
    assert_eq!(
        pg.psql("SELECT name, message FROM alerts ORDER BY id"),
        "voucher_invalid|voucher V2: bad valid_hours\n\
         mikrotik_connection_failed|10 attempts\n\
         events_dropped|agent outbox full: dropped 100 events (seq 100 to 199)"
    );
    assert_eq!(
        pg.psql("SELECT type FROM agent_events WHERE seq >= 14 ORDER BY seq"),
        "clock\nsubscription\nsomething_new"
    );
}

/// The events of the full sync (issue 8).
#[test]
fn sync_events_land_in_their_tables() {
    let pg = Postgres::start();
    let events = chain(vec![
        (
            1,
            "profile",
            json!({"service": "pppoe", "name": "pppoe-10M", "rate_limit": "10M/10M",
                   "session_timeout": "", "shared_users": null}),
        ),
        (
            2,
            "user_adopted",
            json!({"service": "pppoe", "user": "cust9", "profile": "pppoe-10M",
                   "comment": "PPPOE_SYSTEM|B|||c9|s9||", "batch_id": "B", "valid_hours": null,
                   "first_login_at": null, "expires_at": null}),
        ),
        (
            3,
            "user_adopted",
            json!({"service": "hotspot", "user": "V7", "profile": "voucher-1h",
                   "comment": "VOUCHER_SYSTEM|B7||||||2026-11-24T10:00:00Z|2026-11-24T11:00:00Z",
                   "batch_id": "B7", "valid_hours": 1,
                   "first_login_at": "2026-11-24T10:00:00Z", "expires_at": "2026-11-24T11:00:00Z"}),
        ),
        (
            4,
            "create_failed",
            json!({"service": "hotspot", "user": "V8", "profile": "nope",
                   "reason": "input does not match any value of profile"}),
        ),
        (
            5,
            "user_created",
            json!({"service": "hotspot", "user": "V9", "profile": "voucher-1h", "via": "sync"}),
        ),
        (
            6,
            "subscription",
            json!({"service": "pppoe", "user": "cust1", "action": "suspended", "mode": "disable",
                   "profile": "pppoe-10M"}),
        ),
    ]);
    let r = ingest(&pg, "site-a", &batch(&events));
    assert_eq!(r["stored_through"], 6);
    assert_eq!(
        pg.psql("SELECT service, name, rate_limit, shared_users IS NULL FROM mikrotik_profiles"),
        "pppoe|pppoe-10M|10M/10M|t"
    );
    assert_eq!(
        pg.psql("SELECT pppoe_username, profile_name, status, password IS NULL FROM subscriptions"),
        "cust9|pppoe-10M|active|t"
    );
    assert_eq!(
        pg.psql("SELECT code, status, batch_id, valid_hours, expires_at FROM vouchers"),
        "V7|migrated|B7|1|2026-11-24 11:00:00+00"
    );
    assert_eq!(
        pg.psql("SELECT name, message FROM alerts"),
        "create_failed|hotspot V8 not created: input does not match any value of profile"
    );
    // Adopting again (another stream, a replay) changes nothing.
    let again = ingest(&pg, "site-a", &batch(&events));
    assert_eq!(again["stored_through"], 6);
    assert_eq!(pg.psql("SELECT count(*) FROM subscriptions"), "1");
}

#[test]
fn replayed_and_overlapping_batches_change_nothing() {
    let pg = Postgres::start();
    let all = every_type();
    assert_eq!(stored_through(&pg, "site-a", &batch(&all[..10])), 10);
    let before = fingerprint(&pg);
    // The same batch again: nothing changes.
    assert_eq!(stored_through(&pg, "site-a", &batch(&all[..10])), 10);
    assert_eq!(fingerprint(&pg), before);
    // A sub-range of it: nothing changes.
    assert_eq!(stored_through(&pg, "site-a", &batch(&all[3..8])), 10);
    assert_eq!(fingerprint(&pg), before);
    // Overlapping 6..16: only 11..16 are new.
    assert_eq!(stored_through(&pg, "site-a", &batch(&all[5..])), 16);
    let after = fingerprint(&pg);
    assert_eq!(pg.psql("SELECT count(*) FROM agent_events"), "16");
    assert_eq!(pg.psql("SELECT count(*) FROM user_activity_log"), "3");
    assert_eq!(pg.psql("SELECT count(*) FROM alerts"), "3");
    // Replaying everything in one batch, or in reverse order, changes nothing.
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(stored_through(&pg, "site-a", &batch(&all)), 16);
    assert_eq!(stored_through(&pg, "site-a", &batch(&reversed)), 16);
    assert_eq!(fingerprint(&pg), after);
    // The same stream name for another site is another stream.
    assert_eq!(stored_through(&pg, "site-b", &batch(&all[..2])), 2);
    assert_eq!(
        pg.psql("SELECT count(*) FROM agent_events WHERE site_id = 'site-b'"),
        "2"
    );
}

#[test]
fn stored_through_follows_the_prev_chain() {
    let pg = Postgres::start();
    let r = |seq, prev| ev(seq, prev, "clock", json!({}));
    assert_eq!(stored_through(&pg, "site-a", &batch(&[])), 0);
    assert_eq!(
        stored_through(&pg, "site-a", &batch(&[r(1, 0), r(2, 1)])),
        2
    );
    // A gap (3 and 4 missing): stays at 2, but 5 is stored.
    assert_eq!(
        stored_through(&pg, "site-a", &batch(&[r(5, 4), r(6, 5)])),
        2
    );
    assert_eq!(pg.psql("SELECT count(*) FROM agent_events"), "4");
    // What the chain has not reached is kept aside (seq, prev), and so is
    // skipped when sent again: agent_events has no index to find it by.
    let ahead = || {
        pg.psql("SELECT string_agg(seq || '<' || prev, ',' ORDER BY seq) FROM agent_events_ahead")
    };
    assert_eq!(ahead(), "5<4,6<5");
    assert_eq!(
        stored_through(&pg, "site-a", &batch(&[r(5, 4), r(6, 5)])),
        2
    );
    assert_eq!(pg.psql("SELECT count(*) FROM agent_events"), "4");
    // Filling half the gap advances to 3 only.
    assert_eq!(stored_through(&pg, "site-a", &batch(&[r(3, 2)])), 3);
    assert_eq!(ahead(), "5<4,6<5");
    // The rest of the gap, with 5 again: all the way to 6, each seq once.
    assert_eq!(
        stored_through(&pg, "site-a", &batch(&[r(4, 3), r(5, 4)])),
        6
    );
    assert_eq!(ahead(), "");
    assert_eq!(
        pg.psql("SELECT count(*), count(DISTINCT seq) FROM agent_events"),
        "6|6"
    );
    // The agent compacted 7..9 away: 10's prev is 6, no permanent hole.
    assert_eq!(stored_through(&pg, "site-a", &batch(&[r(10, 6)])), 10);
    // Old events (<= stored_through) never stored are skipped entirely.
    assert_eq!(
        stored_through(
            &pg,
            "site-a",
            &batch(&[ev(8, 7, "alert", json!({"name": "x"}))])
        ),
        10
    );
    assert_eq!(pg.psql("SELECT count(*) FROM alerts"), "0");
    assert_eq!(
        pg.psql("SELECT stored_through FROM agent_streams WHERE site_id = 'site-a'"),
        "10"
    );
    // A new stream (new state file) starts from 0 again.
    let mut other = batch(&[]);
    other["stream"] = json!("ffffffffffffffffffffffffffffffff");
    other["events"] = json!([{"stream": "ffffffffffffffffffffffffffffffff", "seq": 1, "prev": 0,
                              "at": "2026-11-24T15:00:00Z", "site": "site-a", "type": "clock"}]);
    assert_eq!(
        ingest(&pg, "site-a", &other),
        json!({"stream": "ffffffffffffffffffffffffffffffff", "stored_through": 1})
    );
}

#[test]
fn seen_at_start_login_merges_with_the_open_session() {
    let pg = Postgres::start();
    let mut seen = login("V1", "*2");
    seen["seen_at_start"] = json!(true);
    let events = chain(vec![
        (1, "login", login("V1", "*1")),
        // The agent's state file was recreated; the session was already online.
        (2, "login", seen),
        (
            3,
            "usage",
            json!({"service": "hotspot", "user": "V1", "active_id": "*2", "session_id": "",
                            "bytes_in": 7, "bytes_out": 70, "uptime_secs": 3}),
        ),
    ]);
    assert_eq!(stored_through(&pg, "site-a", &batch(&events)), 3);
    assert_eq!(
        pg.psql(
            "SELECT active_id, started_at, ended_at IS NULL, seen_at_start, bytes_in \
             FROM sessions"
        ),
        "*2|2026-11-24 15:00:01+00|t|t|7"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM user_activity_log"), "1");
    // Without an open session, seen_at_start opens one.
    let mut seen = login("V9", "*9");
    seen["seen_at_start"] = json!(true);
    assert_eq!(
        stored_through(&pg, "site-a", &batch(&[ev(4, 3, "login", seen)])),
        4
    );
    assert_eq!(
        pg.psql("SELECT seen_at_start, ended_at IS NULL FROM sessions WHERE username = 'V9'"),
        "t|t"
    );
    // A logout without any open row inserts a closed one.
    assert_eq!(
        stored_through(
            &pg,
            "site-a",
            &batch(&[ev(5, 4, "logout", logout("V7", "*7", 1, 60))])
        ),
        5
    );
    assert_eq!(
        pg.psql("SELECT started_at, ended_at, end_reason FROM sessions WHERE username = 'V7'"),
        "2026-11-24 15:00:05+00|2026-11-24 15:00:05+00|gone"
            .replace("15:00:05+00|2026", "14:59:05+00|2026")
    );
}

#[test]
fn a_logout_uploaded_before_its_login_makes_one_session() {
    let pg = Postgres::start();
    let events = chain(vec![
        (1, "clock", json!({})),
        (2, "login", login("V1", "*1")),
        (3, "logout", logout("V1", "*1", 10, 1)),
    ]);
    // The login's batch is lost for a while; the logout arrives first.
    assert_eq!(
        stored_through(
            &pg,
            "site-a",
            &batch(&[events[0].clone(), events[2].clone()])
        ),
        1
    );
    assert_eq!(stored_through(&pg, "site-a", &batch(&events[1..2])), 3);
    assert_eq!(
        pg.psql("SELECT started_at, ended_at, bytes_in, login_seq, logout_seq FROM sessions"),
        "2026-11-24 15:00:02+00|2026-11-24 15:00:03+00|10|2|3"
    );
    assert_eq!(
        pg.psql("SELECT action FROM user_activity_log ORDER BY created_at"),
        "login\nlogout"
    );
}

#[test]
fn malformed_batches_raise_22023() {
    let pg = Postgres::start();
    let bad = [
        json!({"events": []}),
        json!({"stream": STREAM}),
        json!({"stream": STREAM, "events": [{"seq": "one", "prev": 0, "type": "clock", "at": "2026-11-24T15:00:00Z"}]}),
        json!({"stream": STREAM, "events": [{"seq": 1, "prev": 0, "type": "clock", "at": "yesterday"}]}),
        json!({"stream": STREAM, "events": [{"seq": 1, "prev": 0, "type": "clock", "at": "2026-13-45T15:00:00Z"}]}),
        json!({"stream": STREAM, "events": [{"seq": 1, "type": "clock", "at": "2026-11-24T15:00:00Z"}]}),
        json!([1, 2]),
    ];
    for b in bad {
        let err = pg
            .try_psql(&format!("SELECT ingest_batch('site-a', {})", sql_json(&b)))
            .expect_err("malformed batch accepted");
        assert!(err.contains("22023"), "{b}: {err}");
    }
    assert_eq!(pg.psql("SELECT count(*) FROM agent_events"), "0");
}

#[test]
fn claims_must_match_the_site() {
    let pg = Postgres::start();
    let b = batch(&every_type()[..2]);
    let call = |claims: &str, site: &str| {
        pg.try_psql(&format!(
            "SELECT set_config('request.jwt.claims', '{claims}', true); \
             SELECT ingest_batch('{site}', {})",
            sql_json(&b)
        ))
    };
    let err = call(r#"{"role":"edge_agent","site_id":"site-b"}"#, "site-a").unwrap_err();
    assert!(err.contains("42501"), "{err}");
    let err = call(r#"{"role":"edge_agent"}"#, "site-a").unwrap_err();
    assert!(err.contains("42501"), "{err}");
    assert_eq!(pg.psql("SELECT count(*) FROM agent_events"), "0");
    assert!(
        call(r#"{"role":"edge_agent","site_id":"site-a"}"#, "site-a")
            .unwrap()
            .ends_with(r#""stored_through": 2}"#)
    );

    // The PostgREST setup from the README: a role with EXECUTE only.
    pg.psql(
        "DO $$ BEGIN CREATE ROLE edge_agent NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
         GRANT USAGE ON SCHEMA public TO edge_agent; \
         GRANT EXECUTE ON FUNCTION ingest_batch(text, json), site_desired_state(text) TO edge_agent",
    );
    let as_agent = |claims: &str, sql: &str| {
        pg.try_psql(&format!(
            "SET ROLE edge_agent; SELECT set_config('request.jwt.claims', '{claims}', true); {sql}"
        ))
    };
    let b2 = batch(&every_type()[..3]);
    let ok = as_agent(
        r#"{"role":"edge_agent","site_id":"site-a"}"#,
        &format!("SELECT ingest_batch('site-a', {})", sql_json(&b2)),
    )
    .unwrap();
    assert!(ok.contains(r#""stored_through": 3"#), "{ok}");
    let err = as_agent(
        r#"{"role":"edge_agent","site_id":"site-a"}"#,
        "SELECT site_desired_state('site-b')",
    )
    .unwrap_err();
    assert!(err.contains("42501"), "{err}");
    let err = as_agent(
        r#"{"role":"edge_agent","site_id":"site-a"}"#,
        "DELETE FROM vouchers",
    )
    .unwrap_err();
    assert!(
        err.contains("42501") && err.contains("permission denied"),
        "{err}"
    );
}

#[test]
fn site_desired_state_lists_the_sites_vouchers_and_subscriptions() {
    let pg = Postgres::start();
    let empty = pg.psql("SELECT site_desired_state('site-a')");
    let empty: Value = serde_json::from_str(&empty).unwrap();
    assert_eq!(empty["vouchers"], json!([]));
    assert_eq!(empty["subscriptions"], json!([]));
    assert!(empty["version"].is_string());

    pg.psql(
        "INSERT INTO vouchers (site_id, code, password, profile_name, valid_hours, status, mikrotik_comment) VALUES \
         ('site-a', 'V2', 'p2', 'voucher-1h', 1, 'created', 'VOUCHER_SYSTEM|B1|5000|4000|1'), \
         ('site-a', 'V1', 'p1', 'voucher-1h', 1, 'expired', 'VOUCHER_SYSTEM|B1|5000|4000|1'), \
         ('site-b', 'X1', 'px', 'voucher-1h', 1, 'created', NULL); \
         INSERT INTO subscriptions (site_id, pppoe_username, password, profile_name, status, comment) VALUES \
         ('site-a', 'cust1', 's1', 'pppoe-10M', 'active', 'PPPOE_SYSTEM|B|1|1|C1|S1'), \
         ('site-b', 'cust9', 's9', 'pppoe-10M', 'suspended', NULL)",
    );
    let mut state: Value =
        serde_json::from_str(&pg.psql("SELECT site_desired_state('site-a')")).unwrap();
    // Rows inserted by an operator carry the time of that intent.
    for list in ["vouchers", "subscriptions"] {
        for row in state[list].as_array_mut().unwrap() {
            let at = row.as_object_mut().unwrap().remove("intent_at").unwrap();
            assert!(at.as_str().is_some_and(|t| t.ends_with('Z')), "{at}");
        }
    }
    assert_eq!(
        state["vouchers"],
        json!([
            {"code": "V1", "password": "p1", "profile": "voucher-1h",
             "comment": "VOUCHER_SYSTEM|B1|5000|4000|1", "status": "expired"},
            {"code": "V2", "password": "p2", "profile": "voucher-1h",
             "comment": "VOUCHER_SYSTEM|B1|5000|4000|1", "status": "created"},
        ])
    );
    assert_eq!(
        state["subscriptions"],
        json!([{"pppoe_username": "cust1", "password": "s1", "profile": "pppoe-10M",
                "comment": "PPPOE_SYSTEM|B|1|1|C1|S1", "status": "active"}])
    );
    let version = state["version"].as_str().unwrap().to_string();
    assert_ne!(version, empty["version"].as_str().unwrap());
    // Same content, same version; changed content, new version.
    let again: Value =
        serde_json::from_str(&pg.psql("SELECT site_desired_state('site-a')")).unwrap();
    assert_eq!(again["version"], json!(version));
    pg.psql("UPDATE subscriptions SET status = 'suspended' WHERE pppoe_username = 'cust1'");
    let changed: Value =
        serde_json::from_str(&pg.psql("SELECT site_desired_state('site-a')")).unwrap();
    assert_ne!(changed["version"], json!(version));

    let err = pg
        .try_psql(
            "SELECT set_config('request.jwt.claims', '{\"site_id\":\"site-b\"}', true); \
             SELECT site_desired_state('site-a')",
        )
        .unwrap_err();
    assert!(err.contains("42501"), "{err}");
    let out = pg.psql(
        "SELECT set_config('request.jwt.claims', '{\"site_id\":\"site-b\"}', true); \
         SELECT site_desired_state('site-b')",
    );
    let b: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(b["vouchers"][0]["code"], json!("X1"));
}

// ---------------------------------------------------------------- gateway

mod gateway {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;
    use common::gateway::{Gateway, central_command};
    use common::slow_factor;

    /// `add-site NAME`: the new token, checked to be 64 hex digits.
    pub fn add_site(pg: &Postgres, name: &str) -> String {
        let token = common::gateway::add_site(pg, name);
        assert_eq!(token.len(), 64, "{token:?}");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token:?}");
        token
    }

    /// The gateway on any free port, logging at debug.
    fn start(pg: &Postgres, extra: &[&str]) -> Gateway {
        Gateway::start_with(pg, "127.0.0.1:0", "debug", extra)
    }

    pub fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
        let mut b = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30 * u64::from(slow_factor()))));
        if let Some(t) = tls {
            b = b.tls_config(t);
        }
        b.build().into()
    }

    /// POST and return (status, body as JSON or a string).
    pub fn post(a: &ureq::Agent, url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = a.post(url).header("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.send(body).expect("POST");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn get(a: &ureq::Agent, url: &str) -> (u16, Value) {
        let mut resp = a.get(url).call().expect("GET");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn body(site: &str, events: &[Value]) -> String {
        json!({"site_id": site, "batch": batch(events)}).to_string()
    }

    #[test]
    fn gateway_ingests_with_a_site_token_and_refuses_others() {
        let pg = Postgres::start();
        let token_a = add_site(&pg, "site-a");
        let token_b = add_site(&pg, "site-b");
        assert_eq!(
            pg.psql("SELECT count(*) FROM sites WHERE token_hash ~ '^[0-9a-f]{64}$'"),
            "2"
        );
        let gw = start(&pg, &[]);
        let a = agent(None);
        let url = format!("{}/rpc/ingest_batch", gw.base);
        let events = every_type();

        let (s, v) = post(&a, &url, Some(&token_a), &body("site-a", &events[..5]));
        assert_eq!(
            (s, v),
            (200, json!({"stream": STREAM, "stored_through": 5}))
        );
        // Replay: same answer, nothing new.
        let (s, v) = post(&a, &url, Some(&token_a), &body("site-a", &events[..5]));
        assert_eq!(
            (s, v),
            (200, json!({"stream": STREAM, "stored_through": 5}))
        );
        assert_eq!(pg.psql("SELECT count(*) FROM agent_events"), "5");

        // Wrong or missing token: 401.
        let (s, v) = post(&a, &url, Some("0000"), &body("site-a", &events));
        assert_eq!(s, 401, "{v}");
        assert!(v["message"].is_string(), "{v}");
        let (s, _) = post(&a, &url, None, &body("site-a", &events));
        assert_eq!(s, 401);
        // Site B's token cannot write site A's rows: 403.
        let (s, v) = post(&a, &url, Some(&token_b), &body("site-a", &events));
        assert_eq!(s, 403, "{v}");
        assert_eq!(v["code"], json!("42501"), "{v}");
        assert_eq!(pg.psql("SELECT count(*) FROM agent_events"), "5");
        // Rotating A's token retires the old one.
        let new_a = add_site(&pg, "site-a");
        let (s, _) = post(&a, &url, Some(&token_a), &body("site-a", &events));
        assert_eq!(s, 401);
        let (s, v) = post(&a, &url, Some(&new_a), &body("site-a", &events));
        assert_eq!((s, v["stored_through"].clone()), (200, json!(16)));

        // Malformed: 400.
        for bad in [
            "{not json".to_string(),
            "[1]".to_string(),
            json!({"batch": batch(&events)}).to_string(),
            json!({"site_id": "site-a"}).to_string(),
            json!({"site_id": "site-a", "batch": {"events": []}}).to_string(),
            json!({"site_id": "site-a", "batch": {"stream": STREAM, "events": [{"seq": "x"}]}})
                .to_string(),
        ] {
            let (s, v) = post(&a, &url, Some(&new_a), &bad);
            assert_eq!(s, 400, "{bad}: {v}");
            assert!(v["message"].is_string(), "{v}");
        }

        // Desired state, same site rule.
        pg.psql("INSERT INTO vouchers (site_id, code, password, profile_name, status) VALUES ('site-b', 'B1', 'pw', 'voucher-1h', 'created')");
        let durl = format!("{}/rpc/site_desired_state", gw.base);
        let (s, v) = post(
            &a,
            &durl,
            Some(&token_b),
            &json!({"site_id": "site-b"}).to_string(),
        );
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["vouchers"][0]["code"], json!("B1"));
        assert!(v["version"].is_string());
        let (s, _) = post(
            &a,
            &durl,
            Some(&token_b),
            &json!({"site_id": "site-a"}).to_string(),
        );
        assert_eq!(s, 403);

        // Routes and methods.
        assert_eq!(
            post(&a, &format!("{}/rpc/nope", gw.base), Some(&new_a), "{}").0,
            404
        );
        assert_eq!(get(&a, &url).0, 405);
        assert_eq!(
            get(&a, &format!("{}/healthz", gw.base)),
            (200, json!({"status": "ok", "database": "ok"}))
        );

        // Over 8 MiB: 413 without reading the body.
        let mut s = TcpStream::connect(gw.addr()).unwrap();
        write!(
            s,
            "POST /rpc/ingest_batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {new_a}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            9 * 1024 * 1024
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 413");

        // Tokens never reach the log.
        let log = gw.log();
        for t in [&token_a, &token_b, &new_a] {
            assert!(!log.contains(t.as_str()), "token in log:\n{log}");
        }
        assert!(log.contains("POST /rpc/ingest_batch 200"), "{log}");
    }

    #[test]
    fn gateway_reports_the_database_down_as_503() {
        let pg = Postgres::start();
        let token = add_site(&pg, "site-a");
        let gw = start(&pg, &[]);
        let a = agent(None);
        let health = format!("{}/healthz", gw.base);
        assert_eq!(get(&a, &health).0, 200);
        pg.stop();
        let (s, v) = get(&a, &health);
        assert_eq!(s, 503, "{v}");
        let url = format!("{}/rpc/ingest_batch", gw.base);
        let (s, _) = post(&a, &url, Some(&token), &body("site-a", &every_type()[..2]));
        assert_eq!(s, 503);
        // Back up: the pool reconnects.
        pg.restart();
        assert!(common::wait_until(Duration::from_secs(10), || get(
            &a, &health
        )
        .0 == 200));
        let (s, v) = post(&a, &url, Some(&token), &body("site-a", &every_type()[..2]));
        assert_eq!((s, v["stored_through"].clone()), (200, json!(2)));
    }

    #[test]
    fn gateway_serves_https_with_a_given_certificate() {
        let pg = Postgres::start();
        let token = add_site(&pg, "site-a");
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let gw = start(
            &pg,
            &[
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        );
        assert!(gw.base.starts_with("https://"));
        let pem = std::fs::read(&cert).unwrap();
        let trusted = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[
                ureq::tls::Certificate::from_pem(&pem).unwrap(),
            ]))
            .build();
        let a = agent(Some(trusted));
        assert_eq!(get(&a, &format!("{}/healthz", gw.base)).0, 200);
        let (s, v) = post(
            &a,
            &format!("{}/rpc/ingest_batch", gw.base),
            Some(&token),
            &body("site-a", &every_type()[..3]),
        );
        assert_eq!((s, v["stored_through"].clone()), (200, json!(3)));
        // A client that does not trust the certificate fails the handshake.
        let untrusting = agent(None);
        assert!(
            untrusting
                .get(&format!("{}/healthz", gw.base))
                .call()
                .is_err()
        );
    }

    #[test]
    fn bad_arguments_exit_2() {
        for args in [
            &["frobnicate"][..],
            &["serve"],
            &["serve", "--listen", "x", "--database-url", "y"],
            &["add-site"],
        ] {
            let out = central_command().args(args).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert!(!out.stderr.is_empty());
        }
        let out = central_command().arg("--help").output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("add-site"));
    }

    #[test]
    fn load_schema_command_is_idempotent() {
        let pg = Postgres::start_empty();
        for _ in 0..2 {
            let out = central_command()
                .args(["load-schema", "--database-url", &pg.url()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(pg.psql("SELECT count(*) FROM vouchers"), "0");
    }
}
