//! The local HTTP endpoint of the real agent binary, against the
//! simulator, over real TCP: every endpoint, malformed requests, the
//! status page in headless Chromium, slow clients, and a load test with a
//! memory bound.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mikrotik_edge::sim::{SeedData, SimHandle};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-5f1c2a";

/// The agent binary with its HTTP endpoint on a free loopback port, after
/// its first poll (so reads have data).
fn start(sim: &SimHandle, extra: &[(&str, &str)]) -> Agent {
    let agent = Agent::run(sim).temp_state().http().envs(extra).start();
    agent.wait("the first poll", || {
        let (s, v) = agent.get("/api/mikrotik/monitoring/status");
        s == 200 && v["lastSync"].is_string()
    });
    agent
}

// The shared harness (tests/common/agent.rs) extended for this file.
impl Agent {
    /// `GET path` without a token: the status and the JSON body.
    fn get(&self, path: &str) -> (u16, Value) {
        request(&fresh_client(), "GET", &self.url(path), None, None, None)
    }
}

fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30 * u64::from(slow_factor()))))
        // The endpoint closes a keep-alive connection idle for 5 s; never
        // reuse one that old (a slow qemu run would race that close).
        .max_idle_age(Duration::from_secs(2))
        .build()
        .into()
}

/// A client that opens a connection per request: for the checks of
/// single answers, where a reused connection adds nothing to what is
/// tested (the load test keeps connections alive with [`client`]).
fn fresh_client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30 * u64::from(slow_factor()))))
        .max_idle_connections(0)
        .build()
        .into()
}

/// One request; the body parsed as JSON when it is JSON, else a string.
fn request(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, Value) {
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        b = b.header("Content-Type", ct);
    }
    let result = match body {
        Some(body) => a.run(b.body(body.to_vec()).unwrap()),
        None => a.run(b.body(()).unwrap()),
    };
    let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Raw bytes over TCP; returns the status line's code and the whole reply.
fn raw(addr: SocketAddr, bytes: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10 * u64::from(slow_factor()))))
        .unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

fn seeded_sim() -> SimHandle {
    sim_with(|o| {
        o.seed = SeedData {
            hotspot_users: 6,
            pppoe_secrets: 3,
            hotspot_active: 2,
            ppp_active: 1,
            ..SeedData::default()
        };
    })
}

fn names(v: &Value) -> Vec<String> {
    v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn read_endpoints_report_the_view() {
    let sim = seeded_sim();
    let agent = start(&sim, &[]);

    let (s, all) = agent.get("/api/mikrotik/users/active");
    assert_eq!(s, 200, "{all}");
    let users = all["users"].as_array().unwrap();
    assert_eq!(users.len(), 3, "{all}");
    let hs = users.iter().find(|u| u["type"] == "hotspot").unwrap();
    for k in [
        "username",
        "ipAddress",
        "macAddress",
        "uptime",
        "bytesIn",
        "bytesOut",
        "profile",
    ] {
        assert!(!hs[k].is_null(), "{k} in {hs}");
    }
    let ppp = users.iter().find(|u| u["type"] == "pppoe").unwrap();
    assert!(
        ppp["callerId"].is_string() && ppp["macAddress"].is_null(),
        "{ppp}"
    );
    assert_eq!(ppp["username"], "pppoe-0001");
    let (_, only) = agent.get("/api/mikrotik/users/active?filter=pppoe");
    assert_eq!(names(&only), ["pppoe-0001"]);
    let (_, only) = agent.get("/api/mikrotik/users/active?filter=hotspot");
    assert_eq!(only["users"].as_array().unwrap().len(), 2);
    assert_eq!(agent.get("/api/mikrotik/users/active?filter=ftp").0, 400);

    let (s, sum) = agent.get("/api/mikrotik/stats/summary");
    assert_eq!(s, 200);
    assert_eq!(sum["totalHotspotUsers"], 12, "{sum}"); // 6 vouchers + 6 foreign
    assert_eq!(sum["totalPPPoEUsers"], 5, "{sum}"); // 3 + 2 foreign
    assert_eq!(sum["activeHotspotUsers"], 2);
    assert_eq!(sum["activePPPoEUsers"], 1);
    assert!(sum["totalBytesIn"].is_u64() && sum["totalBytesOut"].is_u64());
    assert!(sum["uptimeSecs"].is_u64(), "{sum}");
    assert!(
        sum["uptime"].as_str().is_some_and(|u| {
            ["second", "minute", "hour", "day"]
                .iter()
                .any(|unit| u.trim_end_matches('s').ends_with(unit))
        }),
        "{sum}"
    );
    // The page's count and the list agree: managed sessions only.
    assert_eq!(
        sum["activeHotspotUsers"].as_u64().unwrap() + sum["activePPPoEUsers"].as_u64().unwrap(),
        all["users"].as_array().unwrap().len() as u64
    );
    assert!(
        hs["uptime"].is_string() && hs["uptimeSecs"].is_u64(),
        "{hs}"
    );

    // Outbox figures may be a second old (they are cached).
    agent.wait("outbox figures", || {
        let st = agent.get("/api/mikrotik/monitoring/status").1;
        st["outbox"]["pending"].as_u64().is_some_and(|n| n > 0)
    });
    let (s, st) = agent.get("/api/mikrotik/monitoring/status");
    assert_eq!(s, 200);
    assert_eq!(st["isMonitoring"], true, "{st}");
    assert_eq!(st["routerConnected"], true);
    assert!(st["lastSync"].is_string() && st["lastPoll"].is_string());
    assert_eq!(st["reconnectAttempts"], 0);
    assert_eq!(st["router"]["identity"], "MikroTik");
    assert_eq!(st["router"]["board"], "hAP ac^2");
    assert_eq!(st["router"]["version"], "7.16.2 (stable)");
    assert!(st["outbox"]["pending"].as_u64().unwrap() > 0, "{st}");
    assert!(st["outbox"]["oldestAt"].is_string());
    assert!(st["outbox"]["lastUploadAt"].is_null() && st["outbox"]["lastError"].is_null());
    // The simulated router's NTP client is synchronised: the clock is
    // trusted (through the kernel if the host's is synchronised too).
    assert_eq!(st["clock"]["trusted"], true, "{st}");
    assert!(st["clock"]["source"].is_string() && st["clock"]["now"].is_string());

    let (s, h) = agent.get("/healthz");
    assert_eq!((s, &h["status"]), (200, &json!("ok")), "{h}");
    assert_eq!(h["router"]["connected"], true);
    assert!(h["uplink"].is_object());

    let logins = sim.logins();
    let (s, t) = agent.get("/api/mikrotik/test-connection");
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["ok"], true);
    assert_eq!(t["identity"], "MikroTik");
    assert_eq!(t["board"], "hAP ac^2");
    assert_eq!(t["version"], "7.16.2 (stable)");
    assert!(t["latencyMs"].is_number() && t["rttMs"].is_number());
    assert_eq!(
        sim.logins(),
        logins + 1,
        "a fresh login on a second session"
    );
    // The second session is closed with /quit.
    let one = wait_until(Duration::from_secs(5 * u64::from(slow_factor())), || {
        sim.connections() == 1
    });
    assert!(one, "test-connection session left open");

    let (s, m) = agent.get("/metrics");
    assert_eq!(s, 200);
    let m = m.as_str().unwrap().to_owned();
    for series in [
        "mikrotik_edge_poll_duration_seconds_bucket{le=\"+Inf\"}",
        "mikrotik_edge_poll_duration_seconds_count",
        "mikrotik_edge_users_online{service=\"hotspot\"} 2",
        "mikrotik_edge_users_online{service=\"pppoe\"} 1",
        "mikrotik_edge_events_pending ",
        "mikrotik_edge_events_queued_since_start_total ",
        "mikrotik_edge_events_uploaded_since_start_total 0",
        "mikrotik_edge_router_reconnects_total 0",
        "mikrotik_edge_router_rtt_seconds ",
        "mikrotik_edge_last_successful_poll_timestamp_seconds ",
    ] {
        assert!(m.contains(series), "{series} missing in\n{m}");
    }
    // Every event this agent queued counts, whatever its source: at least
    // the three logins of the users online, once the cached outbox figures
    // (read from the store at most once a second) show the first poll's commit.
    let queued = |m: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix("mikrotik_edge_events_queued_since_start_total "))
            .and_then(|v| v.parse().ok())
            .expect("queued since start")
    };
    assert!(queued(&m) >= 1.0, "{m}");
    agent.wait("the three logins counted in /metrics", || {
        let m = agent.get("/metrics").1;
        m.as_str().is_some_and(|m| queued(m) >= 3.0)
    });

    let (s, page) = agent.get("/");
    assert_eq!(s, 200);
    let page = page.as_str().unwrap();
    assert!(page.contains("<table") && page.contains("/api/mikrotik/users/active"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );

    // Without a configured token nothing can be changed.
    let c = fresh_client();
    for (method, path) in [
        ("POST", "/api/mikrotik/sync/force"),
        ("POST", "/api/mikrotik/users/pppoe/pppoe-0001/disable"),
        ("DELETE", "/api/mikrotik/users/hotspot/john"),
    ] {
        let (s, v) = request(&c, method, &agent.url(path), Some("x"), None, None);
        assert_eq!(s, 403, "{method} {path}: {v}");
        assert!(v["error"].is_string());
    }
    let (s, _) = request(
        &c,
        "POST",
        &agent.url("/api/mikrotik/users/hotspot"),
        None,
        Some("application/json"),
        Some(br#"{"name":"x"}"#),
    );
    assert_eq!(s, 403);
    assert!(sim.find("/ip/hotspot/user", "john").is_some());
}

#[test]
fn user_api_changes_the_router_and_records_events() {
    let sim = seeded_sim();
    let password = "Pw-9d2e-never-shown";
    let agent = start(&sim, &[("MIKROTIK_EDGE_HTTP_TOKEN", TOKEN)]);
    let c = fresh_client();
    let mut bodies = Vec::new();
    let mut call = |method: &str, path: &str, token: Option<&str>, body: Option<Value>| {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let r = request(
            &c,
            method,
            &agent.url(path),
            token,
            bytes.as_ref().map(|_| "application/json"),
            bytes.as_deref(),
        );
        bodies.push(r.1.to_string());
        r
    };

    // Hotspot: create, duplicate, unknown profile, delete, delete again.
    let new = json!({"name": "V-http-1", "password": password, "profile": "voucher-1h", "comment": "made over http"});
    let (s, v) = call(
        "POST",
        "/api/mikrotik/users/hotspot",
        Some(TOKEN),
        Some(new.clone()),
    );
    assert_eq!(s, 201, "{v}");
    assert!(v[".id"].as_str().unwrap().starts_with('*'), "{v}");
    let row = sim.find("/ip/hotspot/user", "V-http-1").expect("created");
    let field = |row: &Vec<(Vec<u8>, Vec<u8>)>, k: &str| {
        row.iter()
            .find(|(key, _)| key == k.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(field(&row, "password").as_deref(), Some(password));
    assert_eq!(field(&row, "profile").as_deref(), Some("voucher-1h"));
    assert_eq!(field(&row, "comment").as_deref(), Some("made over http"));
    let (s, v) = call(
        "POST",
        "/api/mikrotik/users/hotspot",
        Some(TOKEN),
        Some(new),
    );
    assert_eq!(s, 409, "{v}");
    let (s, v) = call(
        "POST",
        "/api/mikrotik/users/hotspot",
        Some(TOKEN),
        Some(json!({"name": "V-http-2", "password": password, "profile": "no-such-profile"})),
    );
    assert_eq!(s, 422, "{v}");
    assert!(sim.find("/ip/hotspot/user", "V-http-2").is_none());
    let (s, v) = call(
        "DELETE",
        "/api/mikrotik/users/hotspot/V-http-1",
        Some(TOKEN),
        None,
    );
    assert_eq!((s, &v["action"]), (200, &json!("deleted")), "{v}");
    assert!(sim.find("/ip/hotspot/user", "V-http-1").is_none());
    let (s, _) = call(
        "DELETE",
        "/api/mikrotik/users/hotspot/V-http-1",
        Some(TOKEN),
        None,
    );
    assert_eq!(s, 404);

    // PPPoE: create, disable (kicks the session), enable, delete.
    let (s, v) = call(
        "POST",
        "/api/mikrotik/users/pppoe",
        Some(TOKEN),
        Some(json!({"name": "cust 7", "password": password, "profile": "pppoe-10M"})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, _) = call(
        "POST",
        "/api/mikrotik/users/pppoe",
        Some(TOKEN),
        Some(json!({"name": "cust-8", "profile": "nope"})),
    );
    assert_eq!(s, 422);
    let secret = sim.find("/ppp/secret", "cust 7").expect("secret created");
    assert_eq!(field(&secret, "service").as_deref(), Some("pppoe"));
    sim.ppp_connect("cust 7", "10.10.9.9", "AA:BB:CC:00:00:07")
        .unwrap();
    let (s, v) = call(
        "POST",
        "/api/mikrotik/users/pppoe/cust%207/disable",
        Some(TOKEN),
        None,
    );
    assert_eq!((s, &v["kicked"]), (200, &json!(1)), "{v}");
    assert_eq!(
        field(&sim.find("/ppp/secret", "cust 7").unwrap(), "disabled").as_deref(),
        Some("true")
    );
    assert!(
        sim.find("/ppp/active", "cust 7").is_none(),
        "session kicked"
    );
    let (s, _) = call(
        "POST",
        "/api/mikrotik/users/pppoe/cust%207/enable",
        Some(TOKEN),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(
        field(&sim.find("/ppp/secret", "cust 7").unwrap(), "disabled").as_deref(),
        Some("false")
    );
    let (s, _) = call(
        "POST",
        "/api/mikrotik/users/pppoe/nobody/disable",
        Some(TOKEN),
        None,
    );
    assert_eq!(s, 404);
    let (s, _) = call(
        "DELETE",
        "/api/mikrotik/users/pppoe/cust%207",
        Some(TOKEN),
        None,
    );
    assert_eq!(s, 200);
    assert!(sim.find("/ppp/secret", "cust 7").is_none());

    // A name that is not UTF-8, made with the agent's own `api` command,
    // deleted by its percent-encoded bytes.
    {
        use std::os::unix::ffi::OsStrExt;
        let mut cmd = agent_command();
        agent_env(&mut cmd, &sim);
        let out = cmd
            .arg("api")
            .arg("/ip/hotspot/user/add")
            .arg(std::ffi::OsStr::from_bytes(b"=name=caf\xe9"))
            .arg("=profile=default")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let (s, v) = call(
        "DELETE",
        "/api/mikrotik/users/hotspot/caf%E9",
        Some(TOKEN),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name_b64"], "Y2Fm6Q==", "{v}");

    // Forced poll.
    let polls = |a: &Agent| {
        a.get("/api/mikrotik/monitoring/status").1["polls"]
            .as_u64()
            .unwrap()
    };
    let before = polls(&agent);
    let (s, _) = call("POST", "/api/mikrotik/sync/force", Some(TOKEN), None);
    assert_eq!(s, 202);
    agent.wait("a forced poll", || polls(&agent) > before);

    // Events, one per change, in the agent's log.
    let mut changes = Vec::new();
    let ok = wait_until(Duration::from_secs(10 * u64::from(slow_factor())), || {
        changes = agent
            .log()
            .lines()
            .filter_map(|l| l.split_once("event {").map(|(_, r)| format!("{{{r}")))
            .filter_map(|j| serde_json::from_str::<Value>(&j).ok())
            .filter(|e| e["type"] == "user_changed" || e["type"] == "user_created")
            .map(|e| {
                // A creation is a `user_created` (it carries the password
                // central needs); its log line masks it.
                if e["type"] == "user_created" {
                    assert_eq!(e["password"], "***", "{e}");
                }
                format!(
                    "{} {} {} {}",
                    e["service"].as_str().unwrap(),
                    e["user"].as_str().unwrap(),
                    e["action"].as_str().unwrap_or("created"),
                    e["via"].as_str().unwrap()
                )
            })
            .collect();
        changes.len() >= 6
    });
    assert!(ok, "{changes:?}");
    assert_eq!(
        changes,
        [
            "hotspot V-http-1 created http",
            "hotspot V-http-1 deleted http",
            "pppoe cust 7 created http",
            "pppoe cust 7 disabled http",
            "pppoe cust 7 enabled http",
            "pppoe cust 7 deleted http",
            "hotspot caf\u{fffd} deleted http",
        ]
    );

    // The password went to the router only.
    let log = agent.log();
    assert!(!log.contains(password), "password in the log");
    assert!(!log.contains(TOKEN), "token in the log");
    for b in &bodies {
        assert!(!b.contains(password), "password in a response: {b}");
        assert!(!b.contains(TOKEN), "token in a response: {b}");
    }
    let (_, m) = agent.get("/metrics");
    assert!(!m.to_string().contains(password));
}

#[test]
fn malformed_requests_get_json_errors() {
    let sim = sim();
    let agent = start(&sim, &[("MIKROTIK_EDGE_HTTP_TOKEN", TOKEN)]);
    let c = fresh_client();
    let url = agent.url("/api/mikrotik/users/hotspot");
    let check = |(s, v): (u16, Value), want: u16| {
        assert_eq!(s, want, "{v}");
        assert!(v["error"].is_string(), "{v}");
    };
    let json_ct = Some("application/json");
    let body = br#"{"name":"n1","password":"p"}"#;

    let (code, text) = raw(agent.addr(), b"GARBAGE\r\n\r\n");
    assert_eq!(code, 400, "{text}");
    let (code, _) = raw(agent.addr(), b"GET /healthz HTTP/9.9\r\n\r\n");
    assert!(code == 400 || code == 505, "{code}");
    check(agent.get("/no/such/route"), 404);
    check(agent.get("/api/mikrotik/users/ftp"), 404);
    check(request(&c, "GET", &url, None, None, None), 405);
    check(
        request(&c, "PUT", &agent.url("/healthz"), None, None, None),
        405,
    );
    check(request(&c, "POST", &url, None, json_ct, Some(body)), 401);
    check(
        request(&c, "POST", &url, Some("wrong"), json_ct, Some(body)),
        401,
    );
    check(
        request(&c, "POST", &url, Some(TOKEN), json_ct, Some(b"{nope")),
        400,
    );
    check(
        request(&c, "POST", &url, Some(TOKEN), json_ct, Some(b"[1]")),
        400,
    );
    check(
        request(
            &c,
            "POST",
            &url,
            Some(TOKEN),
            json_ct,
            Some(br#"{"password":"x"}"#),
        ),
        400,
    );
    check(request(&c, "POST", &url, Some(TOKEN), None, None), 400);
    check(
        request(
            &c,
            "POST",
            &url,
            Some(TOKEN),
            Some("text/plain"),
            Some(body),
        ),
        415,
    );
    let big = vec![b' '; 65 * 1024];
    check(
        request(&c, "POST", &url, Some(TOKEN), json_ct, Some(&big)),
        413,
    );
    // Declared too large: refused before the body is read.
    let (code, _) = raw(
        agent.addr(),
        format!(
            "POST /api/mikrotik/users/hotspot HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(code, 413);
    check(
        request(
            &c,
            "DELETE",
            &agent.url("/api/mikrotik/users/hotspot/%zz"),
            Some(TOKEN),
            None,
            None,
        ),
        400,
    );
    check(
        request(
            &c,
            "DELETE",
            &agent.url("/api/mikrotik/users/hotspot/nobody"),
            Some(TOKEN),
            None,
            None,
        ),
        404,
    );
    // The agent is still fine.
    assert_eq!(agent.get("/healthz").0, 200);
}

fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium())
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--virtual-time-budget=5000")
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `<tbody id="users">` of a dumped page.
fn users_table(dom: &str) -> &str {
    let start = dom.find("<tbody id=\"users\">").expect("users table");
    let end = dom[start..].find("</tbody>").expect("table end") + start;
    &dom[start..end]
}

#[test]
fn status_page_renders_and_follows_logins() {
    let browser = chromium();
    assert!(browser.exists());
    let sim = seeded_sim();
    let agent = start(&sim, &[]);
    let (_, active) = agent.get("/api/mikrotik/users/active");
    let online = names(&active);
    assert_eq!(online.len(), 3);

    let dom = dump_dom(&agent.url("/"));
    let table = users_table(&dom);
    for user in &online {
        assert!(
            table.contains(&format!("<td>{user}</td>")),
            "{user} not in\n{table}"
        );
    }
    assert!(dom.contains("router connected"), "{dom}");
    assert!(dom.contains(">MikroTik<"), "identity shown");

    sim.add_hotspot_user("page-user-1", "pw", "voucher-1h", b"");
    sim.hotspot_login("page-user-1", "10.5.50.77", "02:00:00:00:07:77")
        .unwrap();
    agent.wait("page-user-1 active", || {
        names(&agent.get("/api/mikrotik/users/active").1).contains(&"page-user-1".into())
    });
    let dom = dump_dom(&agent.url("/"));
    let table = users_table(&dom);
    assert!(table.contains("<td>page-user-1</td>"), "{table}");
    assert!(table.contains("<td>10.5.50.77</td>"), "{table}");
}

/// Peak resident memory of a process, in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

fn polls(agent: &Agent) -> u64 {
    agent.get("/api/mikrotik/monitoring/status").1["polls"]
        .as_u64()
        .unwrap()
}

#[test]
fn slow_half_open_connections_neither_block_nor_linger() {
    let sim = seeded_sim();
    let agent = start(&sim, &[]);
    let slow = u64::from(slow_factor());
    let mut conns = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(agent.addr()).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        conns.push(s);
    }
    let started = Instant::now();
    let polls_before = polls(&agent);
    let (s, _) = agent.get("/api/mikrotik/users/active");
    assert_eq!(s, 200);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2 * slow),
        "a normal request took {took:?} beside 300 slow ones"
    );
    // Monitoring goes on.
    agent.wait("another poll", || polls(&agent) > polls_before);
    // Each slow connection is closed, at the latest after the 5 s header
    // timeout (most much earlier, to make room).
    let deadline = Instant::now() + Duration::from_secs(5 * slow + 10);
    for mut s in conns {
        let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(10);
        s.set_read_timeout(Some(left)).unwrap();
        let mut buf = [0u8; 512];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                // hyper may answer 408 before closing.
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("a slow connection is still open after the header timeout")
                }
                Err(_) => break, // reset: closed too
            }
        }
    }
}

#[test]
fn load_test_keeps_memory_bounded() {
    let sim = sim_with(|o| {
        o.seed = SeedData {
            hotspot_users: 300,
            pppoe_secrets: 100,
            hotspot_active: 150,
            ppp_active: 50,
            ..SeedData::default()
        };
    });
    let agent = start(&sim, &[]);
    let threads = 8;
    let per_thread = 400;
    let paths = [
        "/api/mikrotik/users/active",
        "/api/mikrotik/stats/summary",
        "/api/mikrotik/monitoring/status",
        "/metrics",
        "/healthz",
        "/",
    ];
    let polls_before = polls(&agent);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let base = agent.url("");
            std::thread::spawn(move || {
                let c = client();
                for i in 0..per_thread {
                    let path = paths[(t + i) % paths.len()];
                    let (s, _) = request(&c, "GET", &format!("{base}{path}"), None, None, None);
                    assert_eq!(s, 200, "{path}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let took = started.elapsed();
    let total = threads * per_thread;
    let hwm = vm_hwm_kib(agent.pid());
    eprintln!(
        "load test: {total} requests from {threads} threads in {:.2} s ({:.0}/s); agent peak RSS (VmHWM) {hwm} KiB",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    // Under qemu the figure is qemu's own, translation cache included.
    let limit_kib = if slow_factor() > 1 {
        160 * 1024
    } else {
        32 * 1024
    };
    assert!(hwm < limit_kib, "peak RSS {hwm} KiB");
    agent.wait("another poll", || polls(&agent) > polls_before);
    let (s, st) = agent.get("/api/mikrotik/monitoring/status");
    assert_eq!((s, &st["pollFailures"]), (200, &json!(0)), "{st}");
}

/// One HTTP/1.1 response read off a kept-alive connection: status,
/// lowercased headers, body (by `Content-Length`).
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>, String) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let code = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line, got {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header line");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').expect("header");
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).expect("body");
    (code, headers, String::from_utf8_lossy(&body).into_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Sends a request's head, then (after a pause, so it travels in another
/// TCP segment) its body.
fn send_split(s: &mut TcpStream, head: &str, body: &[u8]) {
    s.write_all(head.as_bytes()).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(body).unwrap();
}

fn keep_alive_socket(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10 * u64::from(slow_factor()))))
        .unwrap();
    s.set_nodelay(true).unwrap();
    BufReader::new(s)
}

#[test]
fn refused_posts_with_a_late_body_keep_the_connection_usable() {
    let sim = seeded_sim();
    let with_token = start(&sim, &[("MIKROTIK_EDGE_HTTP_TOKEN", TOKEN)]);
    let without_token = start(&sim, &[]);
    let body = br#"{"name":"late-body-user","password":"x"}"#;
    let json = "application/json";
    // (agent, path, content type, token, expected status)
    let cases: [(&Agent, &str, &str, Option<&str>, u16); 5] = [
        (&with_token, "/api/mikrotik/sync/force", json, None, 401),
        (&without_token, "/api/mikrotik/sync/force", json, None, 403),
        (&with_token, "/no/such/route", json, None, 404),
        (&with_token, "/healthz", json, None, 405),
        (
            &with_token,
            "/api/mikrotik/users/hotspot",
            "text/plain",
            Some(TOKEN),
            415,
        ),
    ];
    for (agent, path, ctype, token, expected) in cases {
        let mut r = keep_alive_socket(agent.addr());
        for round in 0..3 {
            let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                agent.addr(),
                body.len()
            );
            send_split(r.get_mut(), &head, body);
            let (code, headers, text) = read_response(&mut r);
            assert_eq!(code, expected, "{path} round {round}: {text}");
            assert!(
                header(&headers, "connection").is_none(),
                "{path}: the body was sent in full, so the connection should stay: {headers:?}"
            );
            // The next request on the same socket gets a full answer.
            let get = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", agent.addr());
            r.get_mut().write_all(get.as_bytes()).unwrap();
            let (code, _, text) = read_response(&mut r);
            assert_eq!(
                code, 200,
                "{path} round {round}: GET after the refusal: {text}"
            );
            assert!(text.contains("\"status\""), "{text}");
        }
    }
    // Nothing was created by the refused create request.
    assert!(sim.find("/ip/hotspot/user", "late-body-user").is_none());
}

#[test]
fn a_body_too_large_to_drain_is_answered_with_connection_close() {
    let sim = seeded_sim();
    let agent = start(&sim, &[("MIKROTIK_EDGE_HTTP_TOKEN", TOKEN)]);
    let mut r = keep_alive_socket(agent.addr());
    // A declared 2 MiB body (over the 1 MiB drain limit), none sent yet:
    // the 413 must say that the connection closes.
    let head = format!(
        "POST /api/mikrotik/users/hotspot HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        agent.addr(),
        2 * 1024 * 1024
    );
    r.get_mut().write_all(head.as_bytes()).unwrap();
    let (code, headers, _) = read_response(&mut r);
    assert_eq!(code, 413);
    assert_eq!(header(&headers, "connection"), Some("close"));
}

/// `GET /healthz` on a fresh connection with `Connection: close`; the
/// status and `Retry-After`, or `None` when no HTTP answer came.
fn get_once(addr: SocketAddr) -> Option<(u16, Option<String>)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30 * u64::from(slow_factor()))))
        .ok()?;
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut r = BufReader::new(s);
    let (code, headers, _) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_response(&mut r))).ok()?;
    Some((code, header(&headers, "retry-after").map(str::to_owned)))
}

/// `n` simultaneous [`get_once`]s from `n` threads (started together).
fn burst(addr: SocketAddr, n: usize) -> Vec<Option<(u16, Option<String>)>> {
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    barrier.wait();
                    get_once(addr)
                })
                .unwrap()
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn check_all_answered(results: &[Option<(u16, Option<String>)>]) -> (usize, usize) {
    let (mut ok, mut busy) = (0, 0);
    for (i, r) in results.iter().enumerate() {
        match r {
            Some((200, _)) => ok += 1,
            Some((503, Some(retry))) if retry == "1" => busy += 1,
            other => panic!("request {i}: no proper answer: {other:?}"),
        }
    }
    (ok, busy)
}

#[test]
fn connections_past_the_limit_get_503_never_silence() {
    let sim = seeded_sim();
    let agent = start(&sim, &[("MIKROTIK_EDGE_HTTP_TOKEN", TOKEN)]);
    // 1,200 at once: every one gets an HTTP answer.
    let started = Instant::now();
    let results = burst(agent.addr(), 1200);
    let (ok, busy) = check_all_answered(&results);
    println!(
        "1200 simultaneous requests: {ok} × 200, {busy} × 503 in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    // All 64 slots held by requests whose bodies never come (busy, so not
    // evictable): newcomers must get the 503, not a silent close.
    let mut stalled = Vec::new();
    for _ in 0..mikrotik_edge::http::MAX_CONNECTIONS {
        let mut s = TcpStream::connect(agent.addr()).unwrap();
        let head = format!(
            "POST /api/mikrotik/sync/force HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n",
            agent.addr()
        );
        s.write_all(head.as_bytes()).unwrap();
        stalled.push(s);
    }
    // Let the agent pick them all up (each is in its body wait then).
    let ok = wait_until(Duration::from_secs(5 * u64::from(slow_factor())), || {
        matches!(get_once(agent.addr()), Some((503, _)))
    });
    assert!(ok, "the 65th connection was never refused with 503");
    let started = Instant::now();
    let results = burst(agent.addr(), 200);
    let (ok, busy) = check_all_answered(&results);
    println!(
        "all 64 slots held: 200 simultaneous requests: {ok} × 200, {busy} × 503 in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!((ok, busy), (0, 200), "all slots are held: all must be 503");
    drop(stalled);
    // Slots come back once the stalled connections are gone.
    let ok = wait_until(Duration::from_secs(5 * u64::from(slow_factor())), || {
        matches!(get_once(agent.addr()), Some((200, _)))
    });
    assert!(ok, "service did not resume; log:\n{}", agent.log());
}

#[test]
fn foreign_host_names_are_refused_unless_allowed_or_authorized() {
    let sim = seeded_sim();
    let agent = start(
        &sim,
        &[
            ("MIKROTIK_EDGE_HTTP_TOKEN", TOKEN),
            (
                "MIKROTIK_EDGE_HTTP_ALLOWED_HOSTS",
                "edge.lan, pi.example:8443",
            ),
        ],
    );
    let port = agent.addr().port();
    let get = |host: &str, auth: bool| {
        let auth = if auth {
            format!("Authorization: Bearer {TOKEN}\r\n")
        } else {
            String::new()
        };
        raw(
            agent.addr(),
            format!(
                "GET /api/mikrotik/stats/summary HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        "edge.lan".to_owned(),
        "EDGE.LAN:80".to_owned(),
        "pi.example:8443".to_owned(),
    ] {
        let (code, text) = get(&host, false);
        assert_eq!(code, 200, "Host {host}: {text}");
    }
    for host in [
        "attacker.example",
        "attacker.example:8080",
        "pi.example",
        "edge.lan.attacker.example",
        "localhost:1",
    ] {
        let (code, text) = get(host, false);
        assert_eq!(code, 421, "Host {host}: {text}");
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let v: Value = serde_json::from_str(body).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("http_allowed_hosts"),
            "{v}"
        );
        // A deliberate client with the token passes whatever the name.
        let (code, text) = get(host, true);
        assert_eq!(code, 200, "Host {host} with token: {text}");
    }
    // A wrong token does not help.
    let (code, _) = raw(
        agent.addr(),
        b"GET /metrics HTTP/1.1\r\nHost: attacker.example\r\nAuthorization: Bearer nope\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 421);
    // The page is covered too (a rebinding page would read it first).
    let (code, _) = raw(
        agent.addr(),
        b"GET / HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 421);
}
