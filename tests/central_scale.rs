//! The central side at scale (issue 23): the set-based `ingest_batch` keeps
//! exactly once and gives the same rows as applying events one by one,
//! monthly partitions are created ahead and dropped by retention, an old
//! unpartitioned schema still loads, and the gateway sheds load with a fast
//! 503 + Retry-After when its pool is exhausted. Real PostgreSQL, the real
//! gateway. Throughput is measured in scripts/bench.sh --scale, not here.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::gateway::{Gateway, add_site, central_command};
use common::pg::Postgres;
use serde_json::{Value, json};

const STREAM: &str = "5ca1e5ca1e5ca1e5ca1e5ca1e5ca1e00";

fn ev(seq: u64, prev: u64, ty: &str, fields: Value) -> Value {
    let mut v = json!({
        "stream": STREAM, "seq": seq, "prev": prev,
        "at": format!("2026-11-24T16:{:02}:{:02}Z", (seq / 60) % 60, seq % 60),
        "site": "s", "type": ty,
    });
    for (k, x) in fields.as_object().expect("fields object") {
        v[k] = x.clone();
    }
    v
}

fn batch(events: &[Value]) -> Value {
    json!({"stream": STREAM, "events": events})
}

fn ingest(pg: &Postgres, site: &str, events: &[Value]) -> Value {
    let out = pg.psql(&format!(
        "SELECT ingest_batch('{site}', $j${}$j$::json)",
        batch(events)
    ));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ingest_batch result {out:?}: {e}"))
}

/// A realistic mix with sessions whose events all fall in one batch,
/// sessions split over batches, a seen_at_start login, a re-login with the
/// same key, a voucher activated twice, alerts and router states.
fn mix() -> Vec<Value> {
    let mut out = Vec::new();
    let mut seq = 0;
    let mut push = |ty: &str, f: Value| {
        seq += 1;
        out.push(ev(seq, seq - 1, ty, f));
    };
    let s = |user: &str, id: &str| json!({"service": "hotspot", "user": user, "active_id": id});
    let with = |mut base: Value, extra: Value| {
        for (k, x) in extra.as_object().unwrap() {
            base[k] = x.clone();
        }
        base
    };
    push("router", json!({"state": "connected"}));
    for u in 0..12u32 {
        let user = format!("V{u}");
        let id = format!("*{u}");
        push(
            "voucher_activated",
            json!({"user": user, "valid_hours": 1,
            "first_login_at": "2026-11-24T16:00:00Z", "expires_at": "2026-11-24T17:00:00Z",
            "batch_id": "B1", "comment": "VOUCHER_SYSTEM|B1|5000|4000|1|v1|2026-11-24|t||"}),
        );
        push(
            "login",
            with(
                s(&user, &id),
                json!({"address": format!("10.5.0.{u}"), "mac": "AA:BB:CC:00:00:01"}),
            ),
        );
        push(
            "usage",
            with(
                s(&user, &id),
                json!({"bytes_in": 100 * u, "bytes_out": 200, "uptime_secs": 60}),
            ),
        );
        push(
            "usage",
            with(
                s(&user, &id),
                json!({"bytes_in": 300 * u, "bytes_out": 400, "uptime_secs": 120}),
            ),
        );
        if !u.is_multiple_of(3) {
            push(
                "logout",
                with(
                    s(&user, &id),
                    json!({"reason": "gone", "bytes_in": 500 * u,
                "bytes_out": 600, "uptime_secs": 180}),
                ),
            );
        }
    }
    // A login seen before its voucher's activation (the row does not
    // exist yet when the login is applied one by one).
    push(
        "login",
        with(
            s("V12", "*12"),
            json!({"address": "10.5.0.12", "mac": "AA:BB:CC:00:00:12"}),
        ),
    );
    push(
        "voucher_activated",
        json!({"user": "V12", "valid_hours": 1,
        "first_login_at": "2026-11-24T16:00:00Z", "expires_at": "2026-11-24T17:00:00Z"}),
    );
    push(
        "usage",
        with(
            s("V12", "*12"),
            json!({"bytes_in": 1, "bytes_out": 2, "uptime_secs": 60}),
        ),
    );
    // Re-login with the same key (a stale open row gets replaced), and a
    // seen_at_start login merged into an open session.
    push("login", with(s("V0", "*0"), json!({"address": "10.5.1.1"})));
    push(
        "login",
        with(
            s("V3", "*3"),
            json!({"seen_at_start": true, "address": "10.5.1.3"}),
        ),
    );
    push(
        "logout",
        json!({"service": "pppoe", "user": "cust-1", "active_id": "*p1",
        "reason": "gone", "uptime_secs": 30}),
    );
    push(
        "voucher_activated",
        json!({"user": "V1", "valid_hours": 2,
        "first_login_at": "2026-11-24T16:00:00Z", "expires_at": "2026-11-24T18:00:00Z"}),
    );
    push("alert", json!({"name": "cpu", "message": "hot"}));
    push("dropped", json!({"count": 3, "from_seq": 1, "to_seq": 3}));
    push(
        "usage",
        json!({"service": "hotspot", "user": "nobody", "active_id": "*99",
        "bytes_in": 1, "uptime_secs": 1}),
    );
    out
}

/// What the design tables hold for a site, without ids and row times.
fn state(pg: &Postgres, site: &str) -> String {
    [
        format!(
            "SELECT string_agg(concat_ws('|', service, username, active_id, session_id, host(address), \
             mac_address, started_at, ended_at, bytes_in, bytes_out, uptime_secs, end_reason, \
             seen_at_start, login_seq, logout_seq, last_seq), E'\\n' ORDER BY login_seq, logout_seq, username) \
             FROM sessions WHERE site_id = '{site}'"
        ),
        format!(
            "SELECT string_agg(concat_ws('|', username, type, action, host(ip_address), mac_address, seq, \
             created_at), E'\\n' ORDER BY seq) FROM user_activity_log WHERE site_id = '{site}'"
        ),
        format!(
            "SELECT string_agg(concat_ws('|', username, type, session_start, session_end, bytes_in, \
             bytes_out, uptime_seconds, last_updated), E'\\n' ORDER BY username) \
             FROM user_usage_stats WHERE site_id = '{site}'"
        ),
        format!(
            "SELECT string_agg(concat_ws('|', code, status, batch_id, valid_hours, first_login_at, \
             expires_at, host(ip_address), mac_address, last_seen, mikrotik_comment), E'\\n' ORDER BY code) \
             FROM vouchers WHERE site_id = '{site}'"
        ),
        format!(
            "SELECT string_agg(concat_ws('|', name, message, at), E'\\n' ORDER BY at, name) \
             FROM alerts WHERE site_id = '{site}'"
        ),
        format!(
            "SELECT string_agg(concat_ws('|', event, message, created_at), E'\\n') \
             FROM mikrotik_connection_log WHERE site_id = '{site}'"
        ),
    ]
    .iter()
    .map(|q| pg.psql(q))
    .collect::<Vec<_>>()
    .join("\n--\n")
}

#[test]
fn set_based_batch_gives_the_rows_of_one_by_one_apply() {
    let pg = Postgres::start();
    let events = mix();
    // Site "a": the whole mix as one batch (set-based).
    let out = ingest(&pg, "a", &events);
    assert_eq!(out["stored_through"], json!(events.len()));
    // Site "b": the reference, _edge_apply once per event in seq order.
    for e in &events {
        pg.psql(&format!(
            "SELECT set_config('edge.applying', 'on', true), \
             _edge_apply('b', {}, '{}'::timestamptz, $j${e}$j$::jsonb)",
            e["seq"],
            e["at"].as_str().unwrap()
        ));
    }
    let (a, b) = (state(&pg, "a"), state(&pg, "b"));
    assert_eq!(a, b);
    // The mix did exercise what it claims to.
    assert_eq!(
        pg.psql("SELECT count(*) FROM sessions WHERE site_id = 'a' AND end_reason = 'replaced'"),
        "1"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM sessions WHERE site_id = 'a' AND seen_at_start"),
        "1"
    );
    // Each event's facts once: the raw event in agent_events (envelope in
    // columns), the activity log only links to it.
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM agent_events WHERE site_id = 'a' \
             AND (body ? 'stream' OR body ? 'seq' OR body ? 'prev' OR body ? 'type')"
        ),
        "0"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM user_activity_log WHERE site_id = 'a' AND data IS NOT NULL"),
        "0"
    );
}

#[test]
fn the_stored_event_gives_back_the_event_sent() {
    let pg = Postgres::start();
    let mut events = mix();
    // Fields of the column kinds with values the columns cannot hold: they
    // stay in body, the event comes back the same.
    let n = events.len() as u64;
    for (i, odd) in [
        json!({"user": 7, "service": null, "active_id": "", "bytes_in": 1.5,
               "bytes_out": 12345678901234567890u64, "uptime_secs": -3}),
        json!({"user": "u", "session_id": ["x"], "bytes_in": "12", "site": "other",
               "valid_hours": 0.0167, "seen_at_start": "yes", "unseen": null, "reason": 5,
               "comment": "a|b", "valid_hours_note": 1.50}),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(ev(n + 1 + i as u64, n + i as u64, "usage", odd));
    }
    assert_eq!(
        ingest(&pg, "s", &events)["stored_through"],
        json!(events.len())
    );
    let stored: Value = serde_json::from_str(&pg.psql(
        "SELECT json_agg(json_build_object('stream', stream, 'seq', seq, 'prev', prev, 'type', type, \
         'body', body) ORDER BY seq) FROM agent_events_as_sent WHERE site_id = 's'",
    ))
    .expect("stored events as JSON");
    let sent: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut body = e.as_object().expect("event object").clone();
            for k in ["stream", "seq", "prev", "type", "at"] {
                body.remove(k);
            }
            if body["site"] == "s" {
                body.remove("site");
            }
            json!({"stream": e["stream"], "seq": e["seq"], "prev": e["prev"],
                   "type": e["type"], "body": body})
        })
        .collect();
    assert_eq!(stored, Value::Array(sent));
    // The common fields went into columns, not into body.
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM agent_events WHERE site_id = 's' \
             AND (body ? 'user' OR body ? 'active_id' OR body ? 'bytes_in')"
        ),
        "2"
    );
}

#[test]
fn retried_overlapping_concurrent_and_gapped_batches_store_each_event_once() {
    let pg = Postgres::start();
    let events = mix();
    let n = events.len();
    let (first, rest) = events.split_at(20);
    // A gap: the later part first. Stored, but stored_through stays 0.
    assert_eq!(ingest(&pg, "s", rest)["stored_through"], json!(0));
    assert_eq!(
        pg.psql("SELECT count(*) FROM agent_events WHERE site_id = 's'"),
        (n - 20).to_string()
    );
    // The same later part again (a retry): nothing new.
    let before = state(&pg, "s");
    assert_eq!(ingest(&pg, "s", rest)["stored_through"], json!(0));
    assert_eq!(state(&pg, "s"), before);
    // Overlapping batches at once from several connections: the first part,
    // the first part and more, the whole: all end at the chain's end.
    let pg = std::sync::Arc::new(pg);
    let mut threads = Vec::new();
    for cut in [20, 25, n, n, 20] {
        let pg = pg.clone();
        let part: Vec<Value> = events[..cut].to_vec();
        threads.push(std::thread::spawn(move || ingest(&pg, "s", &part)));
    }
    for t in threads {
        let out = t.join().expect("ingest thread");
        assert_eq!(out["stored_through"], json!(n), "{out}");
    }
    assert_eq!(
        pg.psql(
            "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM agent_events WHERE site_id = 's'"
        ),
        format!("{n}|{n}|1|{n}")
    );
    assert_eq!(
        pg.psql("SELECT stored_through FROM agent_streams WHERE site_id = 's'"),
        n.to_string()
    );
    // The uploading site's name is not repeated in each stored event.
    assert_eq!(
        pg.psql("SELECT count(*) FROM agent_events WHERE site_id = 's' AND body ? 'site'"),
        "0"
    );
    // The same rows as the same two batches one after the other (events are
    // applied when stored, so the gap-first order is the reference).
    ingest(&pg, "r", rest);
    ingest(&pg, "r", first);
    assert_eq!(state(&pg, "s"), state(&pg, "r"));
    // Everything again as one retried batch: no row changes.
    let before = state(&pg, "s");
    assert_eq!(ingest(&pg, "s", first)["stored_through"], json!(n));
    assert_eq!(ingest(&pg, "s", &events)["stored_through"], json!(n));
    assert_eq!(state(&pg, "s"), before);
}

fn months_from_now(m: i32) -> String {
    // First day of a month relative to now, as the partition suffix and as a time.
    format!("date_trunc('month', now() AT TIME ZONE 'UTC') + interval '{m} month'")
}

#[test]
fn partitions_are_made_ahead_and_retention_drops_old_ones() {
    let pg = Postgres::start();
    for t in ["agent_events", "user_activity_log", "sessions"] {
        assert_eq!(
            pg.psql(&format!(
                "SELECT relkind FROM pg_class WHERE oid = '{t}'::regclass"
            )),
            "p",
            "{t} is partitioned"
        );
        // Last month, this month and three ahead, plus the default.
        assert_eq!(
            pg.psql(&format!(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = '{t}'::regclass"
            )),
            "6",
            "{t}"
        );
    }
    // Loading the schema again changes nothing.
    pg.load_schema();
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'sessions'::regclass"),
        "6"
    );
    // A row far ahead lands in the default partition; when its month is
    // created, it moves there.
    pg.psql(&format!(
        "INSERT INTO user_activity_log (site_id, username, type, action, created_at) \
         VALUES ('s', 'far', 'hotspot', 'login', {} + interval '1 day')",
        months_from_now(8)
    ));
    assert_eq!(
        pg.psql("SELECT count(*) FROM user_activity_log_default"),
        "1"
    );
    let made = pg.psql("SELECT string_agg(p, ',') FROM edge_maintain_partitions(8) AS p");
    assert!(made.contains("user_activity_log_"), "{made}");
    assert_eq!(
        pg.psql("SELECT count(*) FROM user_activity_log_default"),
        "0"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM user_activity_log WHERE username = 'far'"),
        "1"
    );
    // Old months: a partition two years back and an old row in a default.
    pg.psql(
        "CREATE TABLE sessions_202001 PARTITION OF sessions \
         FOR VALUES FROM ('2020-01-01 00:00+00') TO ('2020-02-01 00:00+00'); \
         INSERT INTO sessions (site_id, service, username, started_at) \
         VALUES ('s', 'hotspot', 'old', '2020-01-15 00:00+00'); \
         INSERT INTO agent_events (site_id, stream_id, seq, prev, type, at, body, received_at) \
         VALUES ('s', 1, 1, 0, 'clock', now(), '{}', '2019-05-01 00:00+00')",
    );
    let this_month = pg.psql(&format!("SELECT to_char({}, 'YYYYMM')", months_from_now(0)));
    let out = central_command()
        .args(["prune", "--keep-months", "3", "--database-url", &pg.url()])
        .output()
        .expect("run prune");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dropped = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(dropped.lines().any(|l| l == "sessions_202001"), "{dropped}");
    assert!(
        dropped.contains("agent_events_default: 1 rows"),
        "{dropped}"
    );
    assert_eq!(
        pg.psql("SELECT to_regclass('sessions_202001') IS NULL"),
        "t"
    );
    assert_eq!(
        pg.psql(&format!(
            "SELECT to_regclass('sessions_{this_month}') IS NOT NULL"
        )),
        "t"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM sessions WHERE username = 'old'"),
        "0"
    );
    // Bad input: a clear error, exit 2, nothing dropped.
    let out = central_command()
        .args(["prune", "--keep-months", "0", "--database-url", &pg.url()])
        .output()
        .expect("run prune");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keep-months"));
}

#[test]
fn a_database_from_before_partitioning_still_loads_and_ingests() {
    let pg = Postgres::start_empty();
    // The three tables as schema.sql created them before issue 23.
    pg.psql(
        "CREATE TABLE agent_events (site_id text NOT NULL, stream text NOT NULL, seq bigint NOT NULL, \
           prev bigint NOT NULL, type text NOT NULL, at timestamptz NOT NULL, body jsonb NOT NULL, \
           received_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (site_id, stream, seq)); \
         CREATE INDEX agent_events_prev_idx ON agent_events (site_id, stream, prev); \
         CREATE TABLE user_activity_log (id bigserial PRIMARY KEY, site_id text NOT NULL, \
           username text NOT NULL, type text NOT NULL, action text NOT NULL, ip_address inet, \
           mac_address text, data jsonb, created_at timestamptz NOT NULL DEFAULT now()); \
         CREATE TABLE sessions (id bigserial PRIMARY KEY, site_id text NOT NULL, service text NOT NULL, \
           username text NOT NULL, active_id text NOT NULL DEFAULT '', session_id text NOT NULL DEFAULT '', \
           address inet, mac_address text, started_at timestamptz, ended_at timestamptz, bytes_in bigint, \
           bytes_out bigint, uptime_secs bigint, end_reason text, seen_at_start boolean NOT NULL DEFAULT false, \
           login_seq bigint, logout_seq bigint, last_seq bigint NOT NULL DEFAULT 0, \
           updated_at timestamptz NOT NULL DEFAULT now()); \
         CREATE UNIQUE INDEX sessions_open_uidx ON sessions (site_id, service, username, active_id) \
           WHERE ended_at IS NULL; \
         INSERT INTO user_activity_log (site_id, username, type, action, data) \
           VALUES ('s', 'old', 'hotspot', 'login', '{\"seq\": 1}')",
    );
    pg.load_schema();
    pg.load_schema();
    assert_eq!(
        pg.psql("SELECT relkind FROM pg_class WHERE oid = 'sessions'::regclass"),
        "r"
    );
    let events = mix();
    assert_eq!(
        ingest(&pg, "s", &events)["stored_through"],
        json!(events.len())
    );
    assert_eq!(
        ingest(&pg, "s", &events)["stored_through"],
        json!(events.len())
    );
    assert_eq!(
        pg.psql("SELECT count(*), count(DISTINCT seq) FROM agent_events WHERE site_id = 's'"),
        format!("{0}|{0}", events.len())
    );
    assert_eq!(
        pg.psql("SELECT data->>'seq' FROM user_activity_log WHERE username = 'old'"),
        "1"
    );
    // Its old key (id) went: the activity log has none (docs/scale.md).
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM pg_constraint \
             WHERE conrelid = 'user_activity_log'::regclass AND contype = 'p'"
        ),
        "0"
    );
    // The stream became its id; the old key and index went, and no other
    // came (agent_events_ahead does their job for the rows that need it).
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'agent_events'::regclass \
             AND attname = 'stream' AND NOT attisdropped"
        ),
        "0"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_indexes WHERE tablename = 'agent_events'"),
        "0"
    );
}

#[test]
fn a_database_with_the_seq_index_keeps_its_events_above_the_chain() {
    let pg = Postgres::start();
    let r = |seq: u64, prev: u64| json!({"seq": seq, "prev": prev, "type": "clock", "at": "2026-01-01T00:00:00Z"});
    // Stored through 2, with 5 and 6 beyond a gap, as the schema before
    // agent_events_ahead kept them: only in agent_events, found by its index.
    assert_eq!(ingest(&pg, "s", &[r(1, 0), r(2, 1)])["stored_through"], 2);
    assert_eq!(ingest(&pg, "s", &[r(5, 4), r(6, 5)])["stored_through"], 2);
    pg.psql(
        "CREATE INDEX agent_events_stream_seq_idx ON agent_events (site_id, stream_id, seq); \
         TRUNCATE agent_events_ahead",
    );
    pg.load_schema();
    assert_eq!(
        pg.psql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM agent_events_ahead"),
        "5,6"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_indexes WHERE tablename = 'agent_events'"),
        "0"
    );
    // 5 again is skipped; the gap filled, the chain reaches 6.
    assert_eq!(
        ingest(&pg, "s", &[r(3, 2), r(4, 3), r(5, 4)])["stored_through"],
        6
    );
    assert_eq!(
        pg.psql("SELECT count(*), count(DISTINCT seq) FROM agent_events WHERE site_id = 's'"),
        "6|6"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM agent_events_ahead"), "0");
}

/// A psql session kept open on stdin, to hold a lock until told.
fn hold_lock(pg: &Postgres, sql: &str) -> std::process::Child {
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &pg.url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn psql");
    let stdin = child.stdin.as_mut().expect("psql stdin");
    writeln!(stdin, "BEGIN; {sql}").expect("write to psql");
    child
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60 * u64::from(common::slow_factor()));
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_exhausted_pool_answers_503_with_retry_after_at_once() {
    let pg = Postgres::start();
    let token = add_site(&pg, "site-a");
    let gw = Gateway::start_with(
        &pg,
        "127.0.0.1:0",
        "info",
        &["--pool-size", "1", "--pool-wait-ms", "200"],
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let body =
        json!({"site_id": "site-a", "batch": batch(&[ev(1, 0, "clock", json!({}))])}).to_string();
    let post = {
        let agent = agent.clone();
        let url = format!("{}/rpc/ingest_batch", gw.base);
        let token = token.clone();
        move |body: String| {
            let mut r = agent
                .post(&url)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .send(&body)
                .expect("POST");
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (
                r.status().as_u16(),
                retry,
                r.body_mut().read_to_string().unwrap_or_default(),
            )
        }
    };
    // Keep the gateway's only connection busy: its request waits on a lock.
    let mut holder = hold_lock(&pg, "LOCK TABLE sites IN ACCESS EXCLUSIVE MODE;");
    wait_for("the lock", || {
        pg.psql("SELECT count(*) FROM pg_locks WHERE relation = 'sites'::regclass AND granted")
            != "0"
    });
    let first = {
        let post = post.clone();
        let body = body.clone();
        std::thread::spawn(move || post(body))
    };
    wait_for("the gateway's request to wait on the lock", || {
        pg.psql(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = 'mikrotik-central' AND wait_event_type = 'Lock'",
        ) == "1"
    });
    // The next request finds no free connection: 503 + Retry-After.
    let (status, retry, text) = post(body.clone());
    assert_eq!(status, 503, "{text}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(text.contains("database unavailable"), "{text}");
    // Released: the waiting request completes.
    writeln!(holder.stdin.as_mut().unwrap(), "COMMIT;").unwrap();
    drop(holder.stdin.take());
    let (status, _, text) = first.join().expect("first request");
    assert_eq!(status, 200, "{text}");
    assert!(holder.wait().expect("psql").success());
    assert!(gw.count("database unavailable") >= 1, "{}", gw.log());
}

/// The fleet page's sparkline query, read from its source
/// (page_queries::online_per_hour), filled to 24 counts per site as the
/// page fills them, next to the plain definition (sessions started before
/// the hour's end and before now, ended after its start or open), both in
/// one statement (one now(): no hour turns in between).
fn sparkline_and_plain(pg: &Postgres) -> (String, String) {
    let src = include_str!("../src/bin/mikrotik-central/page_queries.rs");
    let from = src
        .find("\"SELECT site_id, i, (sum")
        .expect("sparkline query in page_queries.rs");
    let len = src[from..]
        .find("GROUP BY site_id, i\"")
        .expect("end of the sparkline query");
    let query = src[from + 1..from + len + "GROUP BY site_id, i".len()].to_string();
    let out = pg.psql(&format!(
        "WITH r AS ({query}),
              sites AS (SELECT DISTINCT site_id FROM sessions),
              h AS (SELECT i, date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                              - make_interval(hours => 23 - i) AS t0
                      FROM generate_series(0, 23) AS i)
         SELECT (SELECT string_agg(s.site_id || ':' || (
                     SELECT string_agg(coalesce((SELECT r.sum FROM r WHERE r.site_id = s.site_id
                                                   AND r.i <= h.i ORDER BY r.i DESC LIMIT 1), 0)::text,
                                       ',' ORDER BY h.i) FROM h), ' ' ORDER BY s.site_id) FROM sites s),
                (SELECT string_agg(s.site_id || ':' || (
                     SELECT string_agg((SELECT count(*) FROM sessions x WHERE x.site_id = s.site_id
                                          AND x.started_at < least(h.t0 + interval '1 hour', now())
                                          AND coalesce(x.ended_at, now()) > h.t0)::text,
                                       ',' ORDER BY h.i) FROM h), ' ' ORDER BY s.site_id) FROM sites s)"
    ));
    let (a, b) = out.split_once('|').expect("two columns");
    (a.to_string(), b.to_string())
}

#[test]
fn the_sparkline_rollup_stays_the_plain_definition_through_ingest_and_retention() {
    let pg = Postgres::start();
    // Event times relative to now, in minutes ago (negative: ahead, an
    // agent clock running fast); "h6" is exactly six hours before this
    // hour began.
    let ago = [
        "1800", "1210", "1080", "600", "1560", "180", "120", "540", "60", "240", "30", "h6", "h6",
        "400", "390", "380", "-2", "70", "420",
    ];
    let times: Vec<String> = pg
        .psql(&format!(
            "SELECT string_agg(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ',' ORDER BY n)
               FROM unnest(ARRAY[{}]::text[]) WITH ORDINALITY AS a(m, n),
                    LATERAL (SELECT CASE WHEN m = 'h6'
                                         THEN date_trunc('hour', now()) - interval '6 hours'
                                         ELSE now() - m::int * interval '1 minute' END AS t) AS x",
            ago.iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .split(',')
        .map(str::to_string)
        .collect();
    let at = |i: usize| times[i].clone();
    let mut seq = 0u64;
    let mut next = |t: String, ty: &str, user: &str, id: &str, extra: Value| {
        seq += 1;
        let mut v = json!({
            "stream": STREAM, "seq": seq, "prev": seq - 1, "at": t, "site": "s", "type": ty,
            "service": "hotspot", "user": user, "active_id": id,
        });
        for (k, x) in extra.as_object().expect("extra object") {
            v[k] = x.clone();
        }
        v
    };
    let none = json!({});
    // Before the window and still open; an hour-spanning session; logins
    // and logouts in separate batches; a re-login with the same key (the
    // stale row is closed as replaced); a logout without its login (a
    // closed session from uptime); a seen_at_start login merged into an
    // open session; a session starting and ending on an hour boundary;
    // three events of one key in one batch (one by one); a login ahead of
    // now.
    let b1 = vec![
        next(at(0), "login", "u1", "*1", none.clone()),
        next(at(1), "login", "u2", "*2", none.clone()),
        next(at(2), "logout", "u2", "*2", none.clone()),
        next(at(3), "login", "u3", "*3", none.clone()),
        next(at(4), "login", "u4", "*4", none.clone()),
        next(at(3), "usage", "u1", "*1", json!({"bytes_in": 10})),
    ];
    let b2 = vec![
        next(at(5), "login", "u4", "*4b", json!({"seen_at_start": true})),
        next(at(6), "logout", "u1", "*1", none.clone()),
        next(at(7), "login", "u3", "*3", none.clone()),
        next(at(8), "logout", "u6", "*6", json!({"uptime_secs": 7200})),
        next(at(9), "logout", "u3", "*3", none.clone()),
        next(at(10), "login", "u7", "*7", none.clone()),
        next(at(11), "login", "u5", "*5", none.clone()),
        next(at(12), "logout", "u5", "*5", none.clone()),
    ];
    let b3 = vec![
        next(at(13), "login", "u8", "*8", none.clone()),
        next(at(14), "logout", "u8", "*8", none.clone()),
        next(at(15), "login", "u8", "*8", none.clone()),
        next(at(16), "login", "u9", "*9", none.clone()),
    ];
    // A gap: the logout arrives before its login (the row's start moves
    // from logout - uptime to the login's time when the login comes).
    let login10 = next(at(18), "login", "u10", "*10", none.clone());
    let logout10 = next(at(17), "logout", "u10", "*10", json!({"uptime_secs": 60}));
    let n = (b1.len() + b2.len() + b3.len() + 2) as u64;
    for site in ["a", "b"] {
        ingest(&pg, site, &b1);
        ingest(&pg, site, &b2);
    }
    ingest(&pg, "a", &b3);
    assert_eq!(
        ingest(&pg, "a", std::slice::from_ref(&logout10))["stored_through"],
        json!(n - 2)
    );
    let (spark, plain) = sparkline_and_plain(&pg);
    assert_eq!(spark, plain, "before the gap is filled");
    assert_eq!(
        ingest(&pg, "a", std::slice::from_ref(&login10))["stored_through"],
        json!(n)
    );
    // The whole stream again (a retry): each event stored once, nothing
    // counted twice.
    let all: Vec<Value> = [b1.clone(), b2.clone(), b3, vec![login10, logout10]].concat();
    let rows = pg.psql("SELECT count(*) FROM sessions");
    let (first_spark, first_plain) = sparkline_and_plain(&pg);
    assert_eq!(first_spark, first_plain);
    assert_eq!(ingest(&pg, "a", &all)["stored_through"], json!(n));
    assert_eq!(
        ingest(&pg, "b", &b2)["stored_through"],
        json!(b1.len() + b2.len())
    );
    assert_eq!(pg.psql("SELECT count(*) FROM sessions"), rows);
    let (spark, plain) = sparkline_and_plain(&pg);
    assert_eq!(spark, plain, "after the retries");
    // The mix did what it says, and the counts are not trivially flat.
    assert_eq!(
        pg.psql(
            "SELECT count(*) FILTER (WHERE end_reason = 'replaced'), count(*) FILTER (WHERE seen_at_start), \
                    count(*) FILTER (WHERE username = 'u10' AND login_seq IS NOT NULL AND logout_seq IS NOT NULL) \
               FROM sessions WHERE site_id = 'a'"
        ),
        "1|1|1"
    );
    let a = plain
        .split(' ')
        .find_map(|s| s.strip_prefix("a:"))
        .expect("site a");
    let distinct: std::collections::BTreeSet<&str> = a.split(',').collect();
    assert!(distinct.len() >= 4, "{plain}");
    // The hourly fold and retention (a dropped month, rows deleted from
    // the default partition; sessions open or ended in the window among
    // them) keep the counts.
    let old_month = pg.psql(
        "DO $$
         DECLARE f timestamptz := (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '3 months')
                                  AT TIME ZONE 'UTC';
         BEGIN
             EXECUTE format('CREATE TABLE %I PARTITION OF sessions FOR VALUES FROM (%L) TO (%L)',
                            'sessions_' || to_char(f AT TIME ZONE 'UTC', 'YYYYMM'), f, f + interval '1 month');
             INSERT INTO sessions (site_id, service, username, started_at, ended_at) VALUES
               ('a', 'hotspot', 'old-open', f + interval '1 day', NULL),
               ('b', 'hotspot', 'old-closed', f + interval '1 day', now() - interval '3 hours'),
               ('a', 'hotspot', 'older-open', f - interval '2 months', NULL),
               ('b', 'hotspot', 'older-closed', f - interval '2 months', now() - interval '5 hours');
         END $$;
         SELECT 'sessions_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '3 months', 'YYYYMM')",
    );
    let folded: i64 = pg
        .psql("SELECT edge_fold_session_hours()")
        .parse()
        .expect("fold count");
    assert!(folded > 0, "folded {folded}");
    assert!(
        pg.psql("SELECT count(*) FROM site_session_hours WHERE hour = '-infinity'") != "0",
        "one row per site before the window"
    );
    let (spark, plain) = sparkline_and_plain(&pg);
    assert_eq!(spark, plain, "after the fold");
    let dropped = pg.psql("SELECT string_agg(x, ',') FROM edge_drop_partitions_older_than(1) AS x");
    assert!(
        dropped.contains(old_month.as_str()) && dropped.contains("sessions_default: 2 rows"),
        "{old_month}: {dropped}"
    );
    let (spark, plain) = sparkline_and_plain(&pg);
    assert_eq!(spark, plain, "after retention");
    // The rollup holds exactly what the stored sessions give.
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM (
               SELECT site_id, sum(started) - sum(ended) FROM site_session_hours GROUP BY 1
               EXCEPT
               SELECT site_id, count(*) FILTER (WHERE ended_at IS NULL) FROM sessions GROUP BY 1) d"
        ),
        "0"
    );
    // TRUNCATE (no row-level trigger fires): the rollup empties too.
    assert_eq!(
        pg.psql("TRUNCATE sessions; SELECT count(*) FROM site_session_hours"),
        "0"
    );
}
