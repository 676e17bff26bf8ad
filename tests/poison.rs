//! A poison event never stalls the queue: the central side stores text
//! PostgreSQL cannot hold as it is (through psql as PostgREST calls it, and
//! through the gateway), an event that cannot be applied is stored and
//! flagged while the rest are applied, and a batch refused as malformed is
//! narrowed down by the real agent to the refused event, which goes to the
//! quarantine (`mikrotik-edge quarantine list|resend`) while the chain
//! completes.

mod common;

use std::path::Path;

use common::gateway::{Gateway, add_site};
use common::pg::Postgres;
use common::*;
use mikrotik_edge::sim::SimHandle;
use mikrotik_edge::store::Store;
use serde_json::{Value, json};

const STREAM: &str = "0123456789abcdef0123456789abcdef";

/// Events as raw JSON text: `\u0000` and `\ud800` must reach the server as
/// the escapes a client sends, which `serde_json::Value` cannot hold.
fn raw_batch(events: &[String]) -> String {
    format!(
        r#"{{"batch_id":"{STREAM}:x","stream":"{STREAM}","events":[{}]}}"#,
        events.join(",")
    )
}

fn raw_event(seq: u64, prev: u64, ty: &str, fields: &str) -> String {
    format!(
        r#"{{"stream":"{STREAM}","seq":{seq},"prev":{prev},"at":"2026-11-24T15:00:{seq:02}Z","site":"site-a","type":"{ty}",{fields}}}"#
    )
}

/// A direct call (psql, a job) with the batch as json text.
fn ingest_sql(pg: &Postgres, batch: &str) -> Result<String, String> {
    pg.try_psql(&format!(
        "SELECT ingest_batch('site-a', $j${batch}$j$::json)"
    ))
}

/// As PostgREST calls it: the arguments taken from the JSON body by
/// `json_to_record` with the function's argument types.
fn ingest_like_postgrest(pg: &Postgres, batch: &str) -> Result<String, String> {
    pg.try_psql(&format!(
        "SELECT ingest_batch(a.site_id, a.batch) FROM json_to_record($j${{\"site_id\":\"site-a\",\"batch\":{batch}}}$j$::json) \
         AS a(site_id text, batch json)"
    ))
}

fn body(pg: &Postgres, seq: u64, path: &str) -> String {
    pg.psql(&format!(
        "SELECT body #>> '{{{path}}}' FROM agent_events_as_sent WHERE stream = '{STREAM}' AND seq = {seq}"
    ))
}

#[test]
fn text_postgres_cannot_hold_is_stored_losslessly_and_one_bad_event_fails_nothing() {
    let pg = Postgres::start();

    // Direct SQL: NUL in a value and in a key, a lone surrogate.
    let first = raw_batch(&[
        raw_event(
            1,
            0,
            "manual_user",
            r#""service":"hotspot","user":"nul1","profile":"default","comment":"a\u0000b\\u0000""#,
        ),
        raw_event(
            2,
            1,
            "alert",
            r#""name":"x","message":"m","k\u0000":"\ud800""#,
        ),
        raw_event(3, 2, "router", r#""state":"connected","reason":"""#),
    ]);
    // PostgREST's own argument handling refuses it before the call (what
    // the README says): 22P05, a 400 the agent narrows down.
    let err = ingest_like_postgrest(&pg, &first).expect_err("json_to_record refuses U+0000");
    assert!(err.contains("22P05"), "{err}");
    let out = ingest_sql(&pg, &first).expect("a batch with U+0000 is taken whole");
    assert!(out.contains(r#""stored_through": 3"#), "{out}");
    let md5 = body(&pg, 1, "_lossy");
    assert_eq!(md5.len(), 32, "{md5:?}");
    assert_eq!(body(&pg, 1, "comment"), "a\u{fffd}b\\u0000");
    assert_eq!(body(&pg, 2, "_lossy"), md5);
    assert_eq!(body(&pg, 2, "k\u{fffd}"), "\u{fffd}");
    assert_eq!(body(&pg, 3, "_lossy"), "");
    assert_eq!(
        pg.psql(&format!(
            "SELECT data ->> 'raw' FROM alerts WHERE name = 'lossy_batch' AND data ->> 'md5' = '{md5}'"
        )),
        first,
        "the exact text is kept"
    );
    assert_eq!(
        pg.psql("SELECT comment FROM manual_users WHERE username = 'nul1'"),
        "a\u{fffd}b\\u0000"
    );
    // Replayed: nothing changes, no second alert.
    ingest_sql(&pg, &first).unwrap();
    assert_eq!(
        pg.psql("SELECT count(*) FROM alerts WHERE name = 'lossy_batch'"),
        "1"
    );

    // The gateway: U+0000 gets U+FFFD and its bytes in `_b64`.
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let body_text = format!(
        r#"{{"site_id":"site-a","batch":{}}}"#,
        raw_batch(&[raw_event(
            4,
            3,
            "manual_user",
            r#""service":"hotspot","user":"nul2","profile":"default","comment":"x\u0000y""#
        )])
    );
    let client: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = client
        .post(format!("http://{}/rpc/ingest_batch", gw.addr()))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body_text.as_bytes())
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "{text}\n{}", gw.log());
    assert!(text.contains(r#""stored_through": 4"#), "{text}");
    assert_eq!(body(&pg, 4, "comment"), "x\u{fffd}y");
    assert_eq!(body(&pg, 4, "comment_b64"), "eAB5");

    // An event whose rows cannot be written is stored, flagged and
    // alerted; the events around it are applied.
    pg.psql(
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.username = 'boom' THEN RAISE EXCEPTION 'no boom here'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER boom BEFORE INSERT ON manual_users FOR EACH ROW EXECUTE FUNCTION boom()",
    );
    let user = |seq, prev, name: &str| {
        raw_event(
            seq,
            prev,
            "manual_user",
            &format!(r#""service":"hotspot","user":"{name}","profile":"default","comment":"c""#),
        )
    };
    let out = ingest_sql(
        &pg,
        &raw_batch(&[user(5, 4, "fine1"), user(6, 5, "boom"), user(7, 6, "fine2")]),
    )
    .unwrap();
    assert!(out.contains(r#""stored_through": 7"#), "{out}");
    assert!(body(&pg, 6, "_apply_error").contains("no boom here"));
    assert_eq!(body(&pg, 5, "_apply_error"), "");
    assert_eq!(
        pg.psql("SELECT string_agg(username, ',' ORDER BY username) FROM manual_users WHERE username LIKE 'fine%' OR username = 'boom'"),
        "fine1,fine2"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM alerts WHERE name = 'event_not_applied' AND message LIKE 'event 6 %'"),
        "1"
    );
    // Replaying the batch changes nothing.
    let again = ingest_sql(
        &pg,
        &raw_batch(&[user(5, 4, "fine1"), user(6, 5, "boom"), user(7, 6, "fine2")]),
    )
    .unwrap();
    assert!(again.contains(r#""stored_through": 7"#), "{again}");
    assert_eq!(
        pg.psql("SELECT count(*) FROM alerts WHERE name = 'event_not_applied'"),
        "1"
    );
}

/// The agent uploading as `site-a` to `url` with `token`.
fn start(sim: &SimHandle, state: &Path, url: &str, token: &str) -> Agent {
    Agent::run(sim)
        .state(state)
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .env("MIKROTIK_EDGE_CENTRAL_URL", url)
        .env("MIKROTIK_EDGE_CENTRAL_TOKEN", token)
        .env("MIKROTIK_EDGE_CENTRAL_BACKOFF_CAP_SECS", "1")
        .start()
}

/// `mikrotik-edge quarantine ACTION` on `state`: (success, stdout).
fn quarantine(sim: &SimHandle, state: &Path, action: &str) -> (bool, String) {
    let mut cmd = agent_command();
    agent_env(&mut cmd, sim);
    let out = cmd
        .args(["quarantine", action])
        .env("MIKROTIK_EDGE_STATE_PATH", state)
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn stored_through(pg: &Postgres) -> u64 {
    pg.psql("SELECT coalesce(max(stored_through), 0) FROM agent_streams WHERE site_id = 'site-a'")
        .parse()
        .unwrap_or(0)
}

fn users_at_central(pg: &Postgres) -> String {
    pg.psql(
        "SELECT string_agg(usr, ',' ORDER BY usr) FROM agent_events \
         WHERE site_id = 'site-a' AND type = 'manual_user'",
    )
}

#[test]
fn a_refused_event_is_quarantined_the_chain_completes_and_resend_delivers_it() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let url = format!("http://{}", gw.addr());
    // A central side that refuses one event as malformed (a validation
    // bug, say): the whole batch gets 400.
    pg.psql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.usr = 'poison' THEN \
             RAISE EXCEPTION 'event refused' USING ERRCODE = '22023'; END IF; \
           RETURN NEW; END $$; \
         CREATE TRIGGER refuse_poison BEFORE INSERT ON agent_events FOR EACH ROW \
           EXECUTE FUNCTION refuse_poison()",
    );
    let sim = sim();
    sim.add_hotspot_user("good1", "p", "default", b"by hand");
    sim.add_hotspot_user("poison", "p", "default", b"by hand too");
    // RouterOS stores any bytes: a comment with NUL is uploaded as well.
    sim.add_hotspot_user("good2", "p", "default", b"by \0 hand");
    // Other bytes RouterOS keeps: control bytes, an overlong encoding,
    // 64 KiB of comment.
    sim.add_hotspot_user("ctl", "p", "default", b"\x01\x1f\x7f\ttab");
    sim.add_hotspot_user("overlong", "p", "default", b"\xC0\x80 x");
    sim.add_hotspot_user("big", "p", "default", &vec![b'c'; 64 * 1024]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let agent = start(&sim, &state, &url, &token);

    let mut last = 0;
    let ok = wait_until(secs(40), || {
        last = agent
            .events()
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .max()
            .unwrap_or(0);
        agent
            .events()
            .iter()
            .any(|e| e["type"] == "event_quarantined")
            && stored_through(&pg) == last
    });
    assert!(ok, "chain not completed:\n{}\n{}", agent.log(), gw.log());
    let events = agent.events();
    let poison = events
        .iter()
        .find(|e| e["type"] == "manual_user" && e["user"] == "poison")
        .expect("poison event")["seq"]
        .as_u64()
        .unwrap();
    let q = events
        .iter()
        .find(|e| e["type"] == "event_quarantined")
        .unwrap();
    assert_eq!(q["seqs"], json!([poison]), "{q}");
    assert!(q["reason"].as_str().unwrap().contains("400"), "{q}");
    assert_eq!(users_at_central(&pg), "big,ctl,good1,good2,overlong");
    let b64 = |user: &str| {
        pg.psql(&format!(
            "SELECT coalesce(body ->> 'comment_b64', '-') FROM agent_events WHERE usr = '{user}'"
        ))
    };
    assert_eq!(b64("good2"), "YnkgACBoYW5k");
    assert_eq!(b64("overlong"), "wIAgeA==");
    assert_eq!(b64("ctl"), "-");
    assert_eq!(
        pg.psql(
            "SELECT comment = E'\\x01\\x1f\\x7f\\ttab' FROM manual_users WHERE username = 'ctl'"
        ),
        "t"
    );
    assert_eq!(
        pg.psql("SELECT length(comment) FROM manual_users WHERE username = 'big'"),
        "65536"
    );
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM alerts WHERE name = 'event_quarantined' AND data -> 'seqs' = '[{poison}]'"
        )),
        "1"
    );
    assert!(agent.log().contains("narrowing down"), "{}", agent.log());
    agent.terminate();

    let (ok, out) = quarantine(&sim, &state, "list");
    assert!(ok, "{out}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["seq"], poison);
    assert_eq!(lines[0]["event"]["user"], "poison");
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .contains("event refused")
    );

    // The central side is fixed; the event is sent again as a new one.
    pg.psql("DROP TRIGGER refuse_poison ON agent_events");
    let (ok, out) = quarantine(&sim, &state, "resend");
    assert!(ok && out.contains("1 events queued again"), "{out}");
    let (ok, out) = quarantine(&sim, &state, "list");
    assert!(ok && out.trim().is_empty(), "{out}");
    let agent = start(&sim, &state, &url, &token);
    let ok = wait_until(secs(30), || {
        users_at_central(&pg) == "big,ctl,good1,good2,overlong,poison"
            && agent.log().contains("stored_through")
            && stored_through(&pg)
                == agent
                    .events()
                    .iter()
                    .filter_map(|e| e["seq"].as_u64())
                    .max()
                    .unwrap_or(u64::MAX)
    });
    assert!(ok, "resent event not delivered:\n{}", agent.log());
    let stopped = agent.terminate();
    // Everything delivered left the outbox. What the agent made after the
    // last upload (a poll's events, its stop) may still be queued: under
    // qemu four were, once. None of it is at or below what the center has.
    let through = stored_through(&pg);
    let store = Store::open(&state).unwrap();
    let queued = store.pending_events(0, 10_000).unwrap();
    assert!(
        queued.iter().all(|e| e.seq > through),
        "delivered events still queued (stored through {through}): {queued:?}\n{}",
        stopped.log
    );
    assert_eq!(store.queued_events().unwrap(), queued.len() as u64);
    assert!(store.quarantined().unwrap().is_empty());
}
