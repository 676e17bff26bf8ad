//! The operator API (`/api/*` on mikrotik-central) with real parts:
//! PostgreSQL, the gateway binary over HTTP, `add-operator`/`set-site`,
//! and, end to end, the real agent against the simulated router.

mod common;

use std::collections::HashSet;

use common::gateway::{Gateway, add_operator, add_site, central_command};
use common::pg::Postgres;
use common::*;
use serde_json::{Value, json};

const ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

fn set_site(pg: &Postgres, args: &[&str]) -> std::process::Output {
    central_command()
        .arg("set-site")
        .args(args)
        .args(["--database-url", &pg.url()])
        .output()
        .expect("run set-site")
}

/// An HTTP client for one token.
struct Api {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    fn new(gw: &Gateway, token: Option<&str>) -> Api {
        Api {
            base: gw.base.clone(),
            token: token.map(str::to_string),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .timeout_global(Some(secs(60)))
                .build()
                .into(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let req = req.body(body.unwrap_or("").to_string()).unwrap();
        let mut resp = self.agent.run(req).expect("http request");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(&body.to_string()))
    }

    fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None)
    }
}

/// Uploads `events` (type, fields, at) as one batch with a site token.
fn ingest(api: &Api, site: &str, stream: &str, first_seq: u64, events: &[(&str, Value, String)]) {
    let mut evs = Vec::new();
    for (i, (ty, fields, at)) in events.iter().enumerate() {
        let seq = first_seq + i as u64;
        let mut e = json!({"stream": stream, "seq": seq, "prev": seq - 1, "at": at, "type": ty});
        for (k, v) in fields.as_object().unwrap() {
            e[k] = v.clone();
        }
        evs.push(e);
    }
    let body = json!({"site_id": site, "batch": {"stream": stream, "events": evs}});
    let (status, out) = api.post("/rpc/ingest_batch", &body);
    assert_eq!(status, 200, "{out}");
}

const BATCH: &str = r#"{"count": 100, "profile": "voucher-1d", "valid_hours": 24, "sell": 5000,
    "cost": 3500, "vendor": "V1", "prefix": "WIFI-", "code_length": 6}"#;

fn batch_body() -> Value {
    serde_json::from_str(BATCH).unwrap()
}

#[test]
fn add_operator_issues_a_hashed_token_that_rotates() {
    let pg = Postgres::start();
    let t1 = add_operator(&pg, "alice");
    assert!(t1.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM operators WHERE name = 'alice' AND token_hash ~ '^[0-9a-f]{64}$'"
        ),
        "1"
    );
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM operators WHERE token_hash = encode(sha256('{t1}'::bytea), 'hex')"
        )),
        "1",
        "stored as sha256 hex, like site tokens"
    );
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM operators WHERE token_hash = '{t1}'"
        )),
        "0"
    );
    let t2 = add_operator(&pg, "alice");
    assert_ne!(t1, t2);
    assert_eq!(pg.psql("SELECT count(*) FROM operators"), "1");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    assert_eq!(
        Api::new(&gw, Some(&t1)).get("/api/sites").0,
        401,
        "rotated out"
    );
    assert_eq!(Api::new(&gw, Some(&t2)).get("/api/sites").0, 200);
    // A bad name: exit 2, nothing stored.
    let out = central_command()
        .args(["add-operator", "bad|name", "--database-url", &pg.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("operator name"));
    assert_eq!(pg.psql("SELECT count(*) FROM operators"), "1");
    // Tokens never reach the gateway's log.
    assert!(!gw.log().contains(&t1) && !gw.log().contains(&t2));
}

#[test]
fn site_and_operator_tokens_are_separate() {
    let pg = Postgres::start();
    let site_a = add_site(&pg, "site-a");
    add_site(&pg, "site-b");
    let op = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let as_site = Api::new(&gw, Some(&site_a));
    let as_op = Api::new(&gw, Some(&op));

    // Site token on the operator API: refused, nothing written.
    for (m, path, body) in [
        ("GET", "/api/sites", None),
        ("GET", "/api/sites/site-a/vouchers", None),
        ("POST", "/api/sites/site-a/vouchers", Some(BATCH)),
        ("GET", "/api/sites/site-a/alerts?open=true", None),
    ] {
        let (status, out) = as_site.call(m, path, body);
        assert_eq!(status, 401, "{m} {path}: {out}");
        assert_eq!(out["error"]["code"], "unauthorized");
    }
    for token in [None, Some("0".repeat(64).as_str()), Some("nope")] {
        let (status, out) = Api::new(&gw, token).get("/api/sites");
        assert_eq!(status, 401, "{token:?}: {out}");
    }
    // Operator token on the site upload: refused.
    let upload = json!({"site_id": "site-a", "batch": {"stream": "s", "events": []}});
    assert_eq!(as_op.post("/rpc/ingest_batch", &upload).0, 401);
    assert_eq!(
        as_op
            .post("/rpc/site_desired_state", &json!({"site_id": "site-a"}))
            .0,
        401
    );
    assert_eq!(as_site.post("/rpc/ingest_batch", &upload).0, 200);
    // The operator works for every site.
    for site in ["site-a", "site-b"] {
        let (status, out) = as_op.post(&format!("/api/sites/{site}/vouchers"), &batch_body());
        assert_eq!(status, 201, "{site}: {out}");
    }
    assert_eq!(
        pg.psql(
            "SELECT string_agg(site_id || ':' || n, ',' ORDER BY site_id) FROM \
                 (SELECT site_id, count(*) n FROM vouchers GROUP BY site_id) x"
        ),
        "site-a:100,site-b:100"
    );
    // A disabled operator is refused.
    pg.psql("UPDATE operators SET disabled = true");
    assert_eq!(as_op.get("/api/sites").0, 401);
}

#[test]
fn voucher_batch_is_created_listed_deleted_audited_and_desired() {
    let pg = Postgres::start();
    let site_token = add_site(&pg, "site-a");
    let op = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let api = Api::new(&gw, Some(&op));

    let (status, out) = api.post("/api/sites/site-a/vouchers", &batch_body());
    assert_eq!(status, 201, "{out}");
    let batch_id = out["batch_id"].as_str().unwrap().to_string();
    let vouchers = out["vouchers"].as_array().unwrap();
    assert_eq!(vouchers.len(), 100);
    let mut codes = HashSet::new();
    for v in vouchers {
        let code = v["code"].as_str().unwrap();
        let password = v["password"].as_str().unwrap();
        let random = code.strip_prefix("WIFI-").expect("prefix");
        assert_eq!(random.len(), 6, "{code}");
        assert!(
            random
                .chars()
                .chain(password.chars())
                .all(|c| ALPHABET.contains(c)),
            "{code} {password}"
        );
        assert_eq!(password.len(), 6);
        assert!(codes.insert(code.to_string()), "duplicate {code}");
    }
    let today = pg.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
    let comment = format!("VOUCHER_SYSTEM|{batch_id}|5000|3500|24|V1|{today}|alice||");
    assert_eq!(out["comment"], comment.as_str());
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM vouchers WHERE site_id = 'site-a' AND batch_id = '{batch_id}' \
             AND status = 'created' AND mikrotik_comment = '{comment}' AND sell = 5000 AND cost = 3500 \
             AND valid_hours = 24 AND profile_name = 'voucher-1d' AND intent_at IS NOT NULL"
        )),
        "100"
    );
    // The agent's view: every voucher in the desired state, with its comment.
    let site = Api::new(&gw, Some(&site_token));
    let (status, desired) = site.post("/rpc/site_desired_state", &json!({"site_id": "site-a"}));
    assert_eq!(status, 200);
    let desired_vouchers = desired["vouchers"].as_array().unwrap();
    assert_eq!(desired_vouchers.len(), 100);
    for d in desired_vouchers {
        assert!(codes.contains(d["code"].as_str().unwrap()));
        assert_eq!(d["comment"], comment.as_str());
        assert_eq!(d["status"], "created");
        assert_eq!(d["profile"], "voucher-1d");
        let made = vouchers.iter().find(|v| v["code"] == d["code"]).unwrap();
        assert_eq!(d["password"], made["password"]);
    }

    // A second batch with a given id and fractional hours and price.
    let (status, out2) = api.post(
        "/api/sites/site-a/vouchers",
        &json!({"count": 3, "profile": "voucher-30m", "valid_hours": 0.5, "sell": "2500.50",
                "batch_id": "B-HALF", "code_length": 8}),
    );
    assert_eq!(status, 201, "{out2}");
    assert_eq!(out2["batch_id"], "B-HALF");
    assert_eq!(
        out2["comment"],
        format!("VOUCHER_SYSTEM|B-HALF|2500.5||0.5||{today}|alice||").as_str()
    );

    // Listing, by batch and status.
    let (status, list) = api.get(&format!("/api/sites/site-a/vouchers?batch_id={batch_id}"));
    assert_eq!(status, 200);
    assert_eq!(list["vouchers"].as_array().unwrap().len(), 100);
    assert_eq!(list["vouchers"][0]["sell"], "5000");
    let (_, list) = api.get("/api/sites/site-a/vouchers?batch_id=B-HALF&status=created");
    assert_eq!(list["vouchers"].as_array().unwrap().len(), 3);
    assert_eq!(list["vouchers"][0]["sell"], "2500.5");
    assert_eq!(list["vouchers"][0]["valid_hours"], "0.5");
    let (_, list) = api.get("/api/sites/site-a/vouchers");
    assert_eq!(list["vouchers"].as_array().unwrap().len(), 103);

    // Delete: `deleted` in the desired state; a second delete is a no-op.
    let victim = vouchers[0]["code"].as_str().unwrap();
    let (status, out) = api.delete(&format!("/api/sites/site-a/vouchers/{victim}"));
    assert_eq!(
        (status, out["status"].as_str()),
        (200, Some("deleted")),
        "{out}"
    );
    assert_eq!(
        api.delete(&format!("/api/sites/site-a/vouchers/{victim}"))
            .0,
        200
    );
    let (_, desired) = site.post("/rpc/site_desired_state", &json!({"site_id": "site-a"}));
    let d = desired["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == victim)
        .unwrap()
        .clone();
    assert_eq!(d["status"], "deleted");
    let (_, list) = api.get("/api/sites/site-a/vouchers?status=deleted");
    assert_eq!(list["vouchers"].as_array().unwrap().len(), 1);

    // Audit: who, what, when; never a password.
    assert_eq!(
        pg.psql("SELECT string_agg(operator || ' ' || site_id || ' ' || action || ' ' || target, ';' ORDER BY id) \
                 FROM operator_audit"),
        format!(
            "alice site-a vouchers.create {batch_id};alice site-a vouchers.create B-HALF;\
             alice site-a vouchers.delete {victim}"
        )
    );
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM operator_audit WHERE at > now() - interval '5 minutes' \
                 AND detail ->> 'count' = '100' AND detail ->> 'sell' = '5000'"
        ),
        "1"
    );
    let audit = pg.psql("SELECT string_agg(detail::text, ' ') FROM operator_audit");
    for v in vouchers {
        assert!(!audit.contains(v["password"].as_str().unwrap()));
    }
    // Requests are logged with the operator, never the token.
    assert!(
        gw.count("POST /api/sites/site-a/vouchers 201") == 2,
        "{}",
        gw.log()
    );
    assert!(gw.count("operator=alice") >= 2);
    assert!(!gw.log().contains(&op));
}

#[test]
fn ten_thousand_vouchers_in_one_request() {
    let pg = Postgres::start();
    add_site(&pg, "site-a");
    let op = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let api = Api::new(&gw, Some(&op));
    let (status, out) = api.post(
        "/api/sites/site-a/vouchers",
        &json!({"count": 10000, "profile": "voucher-1d", "valid_hours": 24, "sell": 5000,
                "code_length": 5}),
    );
    assert_eq!(status, 201, "{out}");
    let vouchers = out["vouchers"].as_array().unwrap();
    assert_eq!(vouchers.len(), 10_000);
    let codes: HashSet<&str> = vouchers
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 10_000, "codes are unique");
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 5 && c.chars().all(|ch| ALPHABET.contains(ch)))
    );
    assert_eq!(
        pg.psql("SELECT count(DISTINCT code) FROM vouchers WHERE site_id = 'site-a' AND status = 'created'"),
        "10000"
    );
    // A too-large request: refused, nothing written.
    let (status, out) = api.post(
        "/api/sites/site-a/vouchers",
        &json!({"count": 10001, "profile": "p", "valid_hours": 1, "sell": 1}),
    );
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (400, Some("count"))
    );
    assert_eq!(pg.psql("SELECT count(*) FROM vouchers"), "10000");
    assert_eq!(pg.psql("SELECT count(*) FROM operator_audit"), "1");
}

#[test]
fn subscriptions_sessions_and_alerts() {
    let pg = Postgres::start();
    let site_token = add_site(&pg, "site-a");
    let op = add_operator(&pg, "bob");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let api = Api::new(&gw, Some(&op));
    let site = Api::new(&gw, Some(&site_token));
    let today = pg.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')");

    let sub = json!({"pppoe_username": "cust-1", "password": "s3cret", "profile_name": "pppoe-10M",
                     "customer_id": "C1", "subscription_id": "S1", "sell": 150000, "cost": "90000.25"});
    let (status, out) = api.post("/api/sites/site-a/subscriptions", &sub);
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["status"], "active");
    assert_eq!(
        out["comment"],
        format!("PPPOE_SYSTEM||150000|90000.25|C1|S1|{today}|bob").as_str()
    );
    assert_eq!(out["cost"], "90000.25");
    let (status, out) = api.post("/api/sites/site-a/subscriptions", &sub);
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (409, Some("pppoe_username"))
    );

    let (status, out) = api.post("/api/sites/site-a/subscriptions/cust-1/suspend", &json!({}));
    assert_eq!(
        (status, out["status"].as_str()),
        (200, Some("suspended")),
        "{out}"
    );
    let (_, desired) = site.post("/rpc/site_desired_state", &json!({"site_id": "site-a"}));
    assert_eq!(desired["subscriptions"][0]["status"], "suspended");
    assert_eq!(desired["subscriptions"][0]["password"], "s3cret");
    let (status, out) = api.post("/api/sites/site-a/subscriptions/cust-1/restore", &json!({}));
    assert_eq!((status, out["status"].as_str()), (200, Some("active")));
    // Restoring an active one changes (and records) nothing.
    assert_eq!(
        api.post("/api/sites/site-a/subscriptions/cust-1/restore", &json!({}))
            .0,
        200
    );
    let (_, list) = api.get("/api/sites/site-a/subscriptions");
    assert_eq!(list["subscriptions"][0]["pppoe_username"], "cust-1");
    assert!(list["subscriptions"][0].get("password").is_none());

    // Sessions and alerts come from the agent's uploads.
    let now = pg.psql("SELECT _edge_utc(now())");
    ingest(
        &site,
        "site-a",
        "stream-1",
        1,
        &[
            (
                "login",
                json!({"service": "hotspot", "user": "V1", "active_id": "*1", "address": "10.5.0.2"}),
                now.clone(),
            ),
            (
                "login",
                json!({"service": "pppoe", "user": "cust-1", "active_id": "*2"}),
                now.clone(),
            ),
            (
                "logout",
                json!({"service": "pppoe", "user": "cust-1", "active_id": "*2", "reason": "lost"}),
                now.clone(),
            ),
            (
                "alert",
                json!({"name": "router_down", "message": "router unreachable"}),
                now.clone(),
            ),
            (
                "alert",
                json!({"name": "disk", "message": "disk full"}),
                now.clone(),
            ),
        ],
    );
    let (status, out) = api.get("/api/sites/site-a/sessions?active=true");
    assert_eq!(status, 200);
    let s = out["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 1, "{out}");
    assert_eq!(
        (s[0]["username"].as_str(), s[0]["address"].as_str()),
        (Some("V1"), Some("10.5.0.2"))
    );
    let (_, out) = api.get("/api/sites/site-a/sessions");
    assert_eq!(out["sessions"].as_array().unwrap().len(), 2);

    let (_, out) = api.get("/api/sites/site-a/alerts?open=true");
    let alerts = out["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    let id = alerts.iter().find(|a| a["name"] == "disk").unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, out) = api.post(&format!("/api/sites/site-a/alerts/{id}/ack"), &json!({}));
    assert_eq!(
        (status, out["acked_by"].as_str()),
        (200, Some("bob")),
        "{out}"
    );
    let first_ack = out["acked_at"].clone();
    let (_, again) = api.post(&format!("/api/sites/site-a/alerts/{id}/ack"), &json!({}));
    assert_eq!(again["acked_at"], first_ack, "a second ack keeps the first");
    let (_, out) = api.get("/api/sites/site-a/alerts?open=true");
    assert_eq!(out["alerts"].as_array().unwrap().len(), 1);
    let (_, out) = api.get("/api/sites/site-a/alerts");
    assert_eq!(out["alerts"].as_array().unwrap().len(), 2);
    let (_, fleet) = api.get("/api/sites");
    assert_eq!(fleet["sites"][0]["open_alerts"], 1);
    assert_eq!(fleet["sites"][0]["active_sessions"], 1);

    assert_eq!(
        pg.psql("SELECT string_agg(operator || ' ' || action || ' ' || target, ';' ORDER BY id) FROM operator_audit"),
        format!(
            "bob subscriptions.create cust-1;bob subscriptions.suspend cust-1;\
             bob subscriptions.restore cust-1;bob alerts.ack {id}"
        )
    );
    assert!(
        !pg.psql("SELECT string_agg(detail::text, ' ') FROM operator_audit")
            .contains("s3cret")
    );
}

#[test]
fn fleet_counts_today_in_the_sites_zone_with_exact_money() {
    let pg = Postgres::start();
    let token_a = add_site(&pg, "site-a");
    add_site(&pg, "site-b");
    add_site(&pg, "site-c");
    let op = add_operator(&pg, "alice");
    // Kathmandu is UTC+05:45: its day is not the UTC day.
    let out = set_site(
        &pg,
        &[
            "site-a",
            "--timezone",
            "Asia/Kathmandu",
            "--name",
            "Warung A",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = set_site(&pg, &["site-a", "--timezone", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown time zone"));
    assert_eq!(
        pg.psql("SELECT timezone FROM sites WHERE site_id = 'site-a'"),
        "Asia/Kathmandu"
    );
    let out = set_site(&pg, &["site-x", "--name", "nope"]);
    assert_eq!(out.status.code(), Some(1));

    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let api = Api::new(&gw, Some(&op));
    let site = Api::new(&gw, Some(&token_a));
    // One voucher priced by the API (sell 5000 set at creation).
    let (status, made) = api.post(
        "/api/sites/site-a/vouchers",
        &json!({"count": 1, "profile": "p", "valid_hours": 24, "sell": 5000}),
    );
    assert_eq!(status, 201, "{made}");
    let api_code = made["vouchers"][0]["code"].as_str().unwrap().to_string();
    let api_comment = made["comment"].as_str().unwrap().to_string();

    // The site's local midnight, as UTC.
    let midnight = pg.psql(
        "SELECT _edge_utc(date_trunc('day', now() AT TIME ZONE 'Asia/Kathmandu') AT TIME ZONE 'Asia/Kathmandu')",
    );
    let at = |offset: i64| {
        pg.psql(&format!(
            "SELECT _edge_utc('{midnight}'::timestamptz + interval '{offset} seconds')"
        ))
    };
    let activated = |user: &str, comment: &str, first_login: &str| {
        json!({"service": "hotspot", "user": user, "batch_id": "B", "valid_hours": 24,
               "first_login_at": first_login, "expires_at": first_login, "comment": comment})
    };
    let (just_after, just_before) = (at(1), at(-1));
    let big = "VOUCHER_SYSTEM|B|123456789012345.67|1|24|v|2026-12-07|x||";
    let frac = "VOUCHER_SYSTEM|B|0.1|0|24|v|2026-12-07|x||";
    let old = "VOUCHER_SYSTEM|B|777|0|24|v|2026-12-07|x||";
    let now = pg.psql("SELECT _edge_utc(now())");
    ingest(
        &site,
        "site-a",
        "stream-a",
        1,
        &[
            (
                "voucher_activated",
                activated("BIG", big, &just_after),
                just_after.clone(),
            ),
            (
                "voucher_activated",
                activated("FRAC", frac, &just_after),
                just_after.clone(),
            ),
            (
                "voucher_activated",
                activated("FRAC2", frac, &now),
                now.clone(),
            ),
            // One second before the site's midnight: yesterday, not counted.
            (
                "voucher_activated",
                activated("OLD", old, &just_before),
                just_before.clone(),
            ),
            // The API's voucher, with the activation stamps the agent writes.
            (
                "voucher_activated",
                activated(&api_code, &api_comment, &now),
                now.clone(),
            ),
            // Uploaded twice (a retried batch, a re-sent event): counted once.
            (
                "voucher_activated",
                activated("BIG", big, &just_after),
                now.clone(),
            ),
            ("router", json!({"state": "connected"}), now.clone()),
            // A secret made at the site: its price from the comment.
            (
                "user_created",
                json!({"service": "pppoe", "user": "cust-x", "password": "p", "profile": "x",
                       "comment": "PPPOE_SYSTEM||150000.5|100|C|S|2026-12-07|x", "via": "api"}),
                now.clone(),
            ),
        ],
    );
    let (status, fleet) = api.get("/api/sites");
    assert_eq!(status, 200, "{fleet}");
    let sites = fleet["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 3);
    let a = &sites[0];
    assert_eq!(a["site_id"], "site-a");
    assert_eq!(a["name"], "Warung A");
    assert_eq!(a["status"], "online");
    assert_eq!(a["router_connected"], true);
    assert_eq!(a["vouchers_activated_today"], 4, "{a}");
    // 123456789012345.67 + 0.1 + 0.1 + 5000, exactly.
    assert_eq!(a["revenue_today"], "123456789017345.87", "{a}");
    assert_eq!(
        pg.psql("SELECT sell FROM vouchers WHERE code = 'BIG'"),
        "123456789012345.67",
        "numeric, from the activation's comment"
    );
    assert_eq!(
        pg.psql("SELECT sell || ' ' || cost FROM subscriptions WHERE pppoe_username = 'cust-x'"),
        "150000.5 100"
    );
    // Stale after 2 minutes, offline after 15; never uploaded: offline.
    pg.psql(
        "UPDATE sites SET last_upload_at = now() - interval '5 minutes' WHERE site_id = 'site-b'",
    );
    pg.psql(
        "UPDATE sites SET last_upload_at = now() - interval '16 minutes' WHERE site_id = 'site-c'",
    );
    let (_, fleet) = api.get("/api/sites");
    let status_of = |i: usize| fleet["sites"][i]["status"].as_str().unwrap().to_string();
    assert_eq!(
        (status_of(1), status_of(2)),
        ("stale".into(), "offline".into())
    );
    assert_eq!(fleet["sites"][1]["revenue_today"], "0");
    assert_eq!(fleet["sites"][1]["router_connected"], Value::Null);
    let (status, one) = api.get("/api/sites/site-a");
    assert_eq!(
        (status, &one["revenue_today"]),
        (200, &json!("123456789017345.87"))
    );
}

/// Method, path, body, the status expected, and the field it names.
type Case<'a> = (&'a str, String, Option<String>, u16, Option<&'a str>);

#[test]
fn bad_input_is_a_4xx_naming_the_field_and_writes_nothing() {
    let pg = Postgres::start();
    let site_token = add_site(&pg, "site-a");
    let op = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let api = Api::new(&gw, Some(&op));
    let site = Api::new(&gw, Some(&site_token));
    let (status, _) = api.post(
        "/api/sites/site-a/subscriptions",
        &json!({"pppoe_username": "c1", "password": "p", "profile_name": "x"}),
    );
    assert_eq!(status, 201);
    let now = pg.psql("SELECT _edge_utc(now())");
    ingest(
        &site,
        "site-a",
        "s",
        1,
        &[("alert", json!({"name": "x"}), now)],
    );
    let counts = || {
        pg.psql(
            "SELECT (SELECT count(*) FROM vouchers) || ' ' || (SELECT count(*) FROM subscriptions) \
             || ' ' || (SELECT count(*) FROM operator_audit) || ' ' \
             || (SELECT count(*) FROM alerts WHERE acked_at IS NULL) || ' ' \
             || (SELECT string_agg(status, ',') FROM subscriptions)",
        )
    };
    let before = counts();
    let v = "/api/sites/site-a/vouchers";
    let s = "/api/sites/site-a/subscriptions";
    let with = |k: &str, x: Value| {
        let mut b = batch_body();
        b[k] = x;
        b.to_string()
    };
    let without = |k: &str| {
        let mut b = batch_body();
        b.as_object_mut().unwrap().remove(k);
        b.to_string()
    };
    let sub_with = |k: &str, x: Value| {
        let mut b = json!({"pppoe_username": "c2", "password": "p", "profile_name": "x"});
        b[k] = x;
        b.to_string()
    };
    let cases: Vec<Case> = vec![
        (
            "POST",
            v.into(),
            Some(with("count", json!(0))),
            400,
            Some("count"),
        ),
        (
            "POST",
            v.into(),
            Some(with("count", json!("ten"))),
            400,
            Some("count"),
        ),
        ("POST", v.into(), Some(without("count")), 400, Some("count")),
        (
            "POST",
            v.into(),
            Some(without("profile")),
            400,
            Some("profile"),
        ),
        (
            "POST",
            v.into(),
            Some(with("profile", json!("a\u{1}b"))),
            400,
            Some("profile"),
        ),
        (
            "POST",
            v.into(),
            Some(with("valid_hours", json!(-1))),
            400,
            Some("valid_hours"),
        ),
        (
            "POST",
            v.into(),
            Some(with("valid_hours", json!(87601))),
            400,
            Some("valid_hours"),
        ),
        ("POST", v.into(), Some(without("sell")), 400, Some("sell")),
        (
            "POST",
            v.into(),
            Some(with("sell", json!(12.5))),
            400,
            Some("sell"),
        ),
        (
            "POST",
            v.into(),
            Some(with("sell", json!("1e9"))),
            400,
            Some("sell"),
        ),
        (
            "POST",
            v.into(),
            Some(with("cost", json!(-5))),
            400,
            Some("cost"),
        ),
        (
            "POST",
            v.into(),
            Some(with("vendor", json!("a|b"))),
            400,
            Some("vendor"),
        ),
        (
            "POST",
            v.into(),
            Some(with("prefix", json!("A B"))),
            400,
            Some("prefix"),
        ),
        (
            "POST",
            v.into(),
            Some(with("code_length", json!(2))),
            400,
            Some("code_length"),
        ),
        (
            "POST",
            v.into(),
            Some(with("code_length", json!(33))),
            400,
            Some("code_length"),
        ),
        (
            "POST",
            v.into(),
            Some(with("batch_id", json!("x|y"))),
            400,
            Some("batch_id"),
        ),
        (
            "POST",
            v.into(),
            Some(with("colour", json!("red"))),
            400,
            Some("colour"),
        ),
        ("POST", v.into(), Some("{not json".into()), 400, None),
        ("POST", v.into(), Some("[1]".into()), 400, None),
        ("POST", v.into(), Some("x".repeat(70_000)), 413, None),
        (
            "POST",
            "/api/sites/nowhere/vouchers".into(),
            Some(BATCH.into()),
            404,
            None,
        ),
        ("GET", format!("{v}?status=lost"), None, 400, Some("status")),
        ("GET", format!("{v}?colour=1"), None, 400, Some("colour")),
        ("GET", "/api/sites/nowhere/vouchers".into(), None, 404, None),
        ("DELETE", format!("{v}/NOPE"), None, 404, None),
        (
            "DELETE",
            "/api/sites/nowhere/vouchers/X".into(),
            None,
            404,
            None,
        ),
        ("PUT", v.into(), Some(BATCH.into()), 405, None),
        (
            "POST",
            s.into(),
            Some(sub_with("pppoe_username", json!(""))),
            400,
            Some("pppoe_username"),
        ),
        (
            "POST",
            s.into(),
            Some(sub_with("pppoe_username", json!("a b"))),
            400,
            Some("pppoe_username"),
        ),
        (
            "POST",
            s.into(),
            Some(sub_with("password", json!(5))),
            400,
            Some("password"),
        ),
        (
            "POST",
            s.into(),
            Some(sub_with("profile_name", Value::Null)),
            400,
            Some("profile_name"),
        ),
        (
            "POST",
            s.into(),
            Some(sub_with("customer_id", json!("a|b"))),
            400,
            Some("customer_id"),
        ),
        (
            "POST",
            s.into(),
            Some(sub_with("sell", json!("abc"))),
            400,
            Some("sell"),
        ),
        (
            "POST",
            s.into(),
            Some(sub_with("pppoe_username", json!("c1"))),
            409,
            Some("pppoe_username"),
        ),
        (
            "POST",
            "/api/sites/nowhere/subscriptions".into(),
            Some(sub_with("customer_id", json!("C"))),
            404,
            None,
        ),
        (
            "POST",
            format!("{s}/nobody/suspend"),
            Some("{}".into()),
            404,
            None,
        ),
        (
            "POST",
            format!("{s}/c1/pause"),
            Some("{}".into()),
            404,
            None,
        ),
        ("GET", format!("{s}/c1/suspend"), None, 405, None),
        (
            "GET",
            "/api/sites/site-a/sessions?active=maybe".into(),
            None,
            400,
            Some("active"),
        ),
        ("GET", "/api/sites/nowhere/sessions".into(), None, 404, None),
        (
            "GET",
            "/api/sites/site-a/alerts?open=2".into(),
            None,
            400,
            Some("open"),
        ),
        ("GET", "/api/sites/nowhere/alerts".into(), None, 404, None),
        (
            "POST",
            "/api/sites/site-a/alerts/abc/ack".into(),
            Some("{}".into()),
            400,
            Some("id"),
        ),
        (
            "POST",
            "/api/sites/site-a/alerts/99999/ack".into(),
            Some("{}".into()),
            404,
            None,
        ),
        (
            "POST",
            "/api/sites/nowhere/alerts/1/ack".into(),
            Some("{}".into()),
            404,
            None,
        ),
        ("GET", "/api/sites/nowhere".into(), None, 404, None),
        ("GET", "/api/nothing".into(), None, 404, None),
        ("POST", "/api/sites".into(), Some("{}".into()), 405, None),
    ];
    for (method, path, body, want, field) in &cases {
        let (status, out) = api.call(method, path, body.as_deref());
        assert_eq!(status, *want, "{method} {path} {body:?}: {out}");
        let err = &out["error"];
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "{method} {path}: {out}"
        );
        if let Some(f) = field {
            assert_eq!(err["field"], *f, "{method} {path} {body:?}: {out}");
            assert!(err["message"].as_str().unwrap().contains(f), "{out}");
        }
    }
    assert_eq!(counts(), before, "nothing written");
    assert_eq!(gw.count(" 500 "), 0, "never a 500:\n{}", gw.log());
}

// ---------------------------------------------------------------- end to end

/// The agent against `sim`, uploading to `gw` as site-a, with a sync every
/// 2 s.
fn start_agent(
    sim: &mikrotik_edge::sim::SimHandle,
    state: &std::path::Path,
    gw: &Gateway,
    token: &str,
) -> Agent {
    Agent::run(sim)
        .state(state)
        .env("MIKROTIK_EDGE_SITE_ID", "site-a")
        .env("MIKROTIK_EDGE_SYNC_SECS", "2")
        .env("MIKROTIK_EDGE_USER_READ_SECS", "0")
        .env("MIKROTIK_EDGE_CENTRAL_BACKOFF_CAP_SECS", "1")
        .env("MIKROTIK_EDGE_CENTRAL_TIMEOUT_SECS", "5")
        .env("MIKROTIK_EDGE_CENTRAL_URL", &gw.base)
        .env("MIKROTIK_EDGE_CENTRAL_TOKEN", token)
        .start()
}

/// Waits up to 60 s (a round trip through the gateway, the sync and the
/// upload) until `cond` holds; panics with `what` and the agent's log.
fn wait_end_to_end(agent: &Agent, what: &str, cond: impl FnMut() -> bool) {
    assert!(
        wait_until(secs(60), cond),
        "{what}: not seen; agent log:\n{}",
        agent.log()
    );
}

#[test]
fn a_batch_from_the_api_reaches_the_router_and_its_sale_the_fleet() {
    let pg = Postgres::start();
    let site_token = add_site(&pg, "site-a");
    let op = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let api = Api::new(&gw, Some(&op));
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&sim, &dir.path().join("state.redb"), &gw, &site_token);

    let (status, made) = api.post(
        "/api/sites/site-a/vouchers",
        &json!({"count": 5, "profile": "voucher-1h", "valid_hours": 1.5, "sell": "2500.25",
                "cost": 2000, "vendor": "V1", "prefix": "HS-", "code_length": 6}),
    );
    assert_eq!(status, 201, "{made}");
    let comment = made["comment"].as_str().unwrap().to_string();
    let code = made["vouchers"][0]["code"].as_str().unwrap().to_string();
    let password = made["vouchers"][0]["password"]
        .as_str()
        .unwrap()
        .to_string();
    wait_end_to_end(&agent, "the batch on the router", || {
        made["vouchers"].as_array().unwrap().iter().all(|v| {
            sim.find("/ip/hotspot/user", v["code"].as_str().unwrap())
                .is_some()
        })
    });
    assert_eq!(
        field(&sim, "/ip/hotspot/user", &code, "comment").unwrap(),
        comment
    );
    assert_eq!(
        field(&sim, "/ip/hotspot/user", &code, "password").unwrap(),
        password
    );
    assert_eq!(
        field(&sim, "/ip/hotspot/user", &code, "profile").unwrap(),
        "voucher-1h"
    );

    // A customer logs in with the card: activation and revenue today.
    sim.hotspot_login(&code, "10.5.0.9", "AA:00:00:00:00:09")
        .unwrap();
    wait_end_to_end(&agent, "the activation in /api/sites", || {
        let (_, fleet) = api.get("/api/sites");
        fleet["sites"][0]["vouchers_activated_today"] == 1
    });
    let (_, fleet) = api.get("/api/sites");
    let s = &fleet["sites"][0];
    assert_eq!(s["revenue_today"], "2500.25", "{s}");
    assert_eq!(s["status"], "online");
    assert_eq!(s["router_connected"], true, "{s}");
    wait_end_to_end(&agent, "the session in /api/sites", || {
        api.get("/api/sites").1["sites"][0]["active_sessions"] == 1
    });
    let (_, sessions) = api.get("/api/sites/site-a/sessions?active=true");
    assert_eq!(sessions["sessions"][0]["username"], code.as_str());

    // Deleted through the API: removed from the router.
    let other = made["vouchers"][1]["code"].as_str().unwrap().to_string();
    assert_eq!(
        api.delete(&format!("/api/sites/site-a/vouchers/{other}")).0,
        200
    );
    wait_end_to_end(&agent, "the deleted voucher gone from the router", || {
        sim.find("/ip/hotspot/user", &other).is_none()
    });

    // A subscription, suspended and restored through the API.
    let (status, _) = api.post(
        "/api/sites/site-a/subscriptions",
        &json!({"pppoe_username": "cust-9", "password": "pw9", "profile_name": "pppoe-10M",
                "customer_id": "C9", "subscription_id": "S9", "sell": 150000, "cost": 100000}),
    );
    assert_eq!(status, 201);
    wait_end_to_end(&agent, "the secret on the router", || {
        sim.find("/ppp/secret", "cust-9").is_some()
    });
    assert_eq!(
        api.post("/api/sites/site-a/subscriptions/cust-9/suspend", &json!({}))
            .0,
        200
    );
    wait_end_to_end(&agent, "the secret disabled", || {
        field(&sim, "/ppp/secret", "cust-9", "disabled").as_deref() == Some("true")
    });
    assert_eq!(
        api.post("/api/sites/site-a/subscriptions/cust-9/restore", &json!({}))
            .0,
        200
    );
    wait_end_to_end(&agent, "the secret enabled", || {
        field(&sim, "/ppp/secret", "cust-9", "disabled").as_deref() == Some("false")
    });
}
