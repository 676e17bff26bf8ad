//! The operator pages of `mikrotik-central`: the real gateway over a real
//! PostgreSQL, driven over HTTP and in headless Chromium (DevTools
//! protocol: real forms, real cookies, console errors collected, PDF
//! printing, screenshots decoded as QR codes).

#[path = "common/cdp.rs"]
mod cdp;
mod common;

use std::time::Duration;

use cdp::Browser;
use common::gateway::{Gateway, add_operator, add_site, central_command};
use common::pg::Postgres;
use common::slow_factor;
use serde_json::Value;

/// `add-operator NAME`: the new token.
fn set_site(pg: &Postgres, site: &str, args: &[&str]) {
    let out = central_command()
        .args(["set-site", site, "--database-url", &pg.url()])
        .args(args)
        .output()
        .expect("run set-site");
    assert!(
        out.status.success(),
        "set-site: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30 * u64::from(slow_factor()))));
    if let Some(t) = tls {
        b = b.tls_config(t);
    }
    b.build().into()
}

struct Reply {
    status: u16,
    body: String,
    set_cookie: Option<String>,
    location: Option<String>,
}

fn reply(mut r: ureq::http::Response<ureq::Body>) -> Reply {
    let header = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (set_cookie, location) = (header("set-cookie"), header("location"));
    Reply {
        status: r.status().as_u16(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
        set_cookie,
        location,
    }
}

fn get(a: &ureq::Agent, url: &str, cookie: Option<&str>) -> Reply {
    let mut req = a.get(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", &format!("mc_session={c}"));
    }
    reply(req.call().expect("GET"))
}

fn post_form(a: &ureq::Agent, url: &str, cookie: Option<&str>, body: &str) -> Reply {
    let mut req = a
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("Cookie", &format!("mc_session={c}"));
    }
    reply(req.send(body).expect("POST"))
}

/// Logs in with the token; the session cookie's value.
fn login(a: &ureq::Agent, base: &str, token: &str) -> String {
    let r = post_form(a, &format!("{base}/login"), None, &format!("token={token}"));
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some("/")),
        "{}",
        r.body
    );
    let c = r.set_cookie.expect("Set-Cookie");
    c.strip_prefix("mc_session=")
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string()
}

/// The CSRF value of a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

const EVIL: &str = "<script>window.__xss=1</script><b>Warung</b> & \"Co\"";

/// site-a: online, two open sessions (one since 3 h, one since 30 min), one
/// ended 4 h ago, a voucher activated now for 5000, an old voucher, a
/// subscription, an open alert. site-b: last upload 20 minutes ago, nothing else.
fn seed(pg: &Postgres) {
    add_site(pg, "site-a");
    add_site(pg, "site-b");
    pg.psql(&format!(
        "UPDATE sites SET last_upload_at = now(), name = '{}' WHERE site_id = 'site-a';
         UPDATE sites SET last_upload_at = now() - interval '20 minutes' WHERE site_id = 'site-b';
         INSERT INTO sessions (site_id, service, username, active_id, started_at, ended_at) VALUES
           ('site-a', 'hotspot', 'u-long', '*1', now() - interval '3 hours', NULL),
           ('site-a', 'hotspot', 'u<i>new</i>', '*2', now() - interval '30 minutes', NULL),
           ('site-a', 'hotspot', 'u-gone', '*3', now() - interval '5 hours', now() - interval '4 hours');
         INSERT INTO vouchers (site_id, code, password, batch_id, status, first_login_at, sell) VALUES
           ('site-a', 'SOLD-1', 'pw1', 'B-old', 'active', now(), 5000),
           ('site-a', 'OLD-1', 'pw2', 'B-old', 'created', NULL, 5000);
         INSERT INTO subscriptions (site_id, pppoe_username, password, profile_name, status)
           VALUES ('site-a', 'cust-1', 'x', '10M', 'active');
         INSERT INTO alerts (site_id, name, message, at)
           VALUES ('site-a', 'router_down', 'router <unreachable>', now());",
        EVIL.replace('\'', "''")
    ));
}

#[test]
fn login_sets_a_strict_http_only_session_cookie_and_logout_ends_it() {
    let pg = Postgres::start();
    let site_token = add_site(&pg, "site-a");
    let token = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let a = agent(None);
    let base = &gw.base;

    // Not logged in: pages send to the login form; writes are refused.
    let r = get(&a, &format!("{base}/"), None);
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/login")));
    let r = get(&a, &format!("{base}/login"), None);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("name=\"token\""), "{}", r.body);
    let r = post_form(
        &a,
        &format!("{base}/sites/site-a/alerts/1/ack"),
        None,
        "csrf=x",
    );
    assert_eq!(r.status, 403);

    // A wrong token and a site token do not log in.
    for bad in ["nope", site_token.as_str(), ""] {
        let r = post_form(&a, &format!("{base}/login"), None, &format!("token={bad}"));
        assert_eq!(r.status, 401, "{bad}: {}", r.body);
        assert!(r.set_cookie.is_none());
    }
    assert_eq!(pg.psql("SELECT count(*) FROM operator_sessions"), "0");

    let r = post_form(
        &a,
        &format!("{base}/login"),
        None,
        &format!("token={token}"),
    );
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/")));
    let cookie = r.set_cookie.unwrap();
    assert!(cookie.starts_with("mc_session="), "{cookie}");
    let flags: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(flags.contains(&"HttpOnly"), "{cookie}");
    assert!(flags.contains(&"SameSite=Strict"), "{cookie}");
    assert!(flags.contains(&"Path=/"), "{cookie}");
    assert!(
        !flags.contains(&"Secure"),
        "plain HTTP: no Secure: {cookie}"
    );
    let value = cookie[11..].split(';').next().unwrap().to_string();
    assert_eq!(value.len(), 64, "256 random bits, hex");
    // Only its hash is stored, never the value or the operator token.
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM operator_sessions WHERE session_hash = encode(sha256('{value}'), 'hex')"
        )),
        "1"
    );
    let dump = pg.psql("SELECT string_agg(session_hash || csrf, ',') FROM operator_sessions");
    assert!(!dump.contains(&value) && !dump.contains(&token));
    assert!(!gw.log().contains(&token) && !gw.log().contains(&value));

    let page = get(&a, &format!("{base}/"), Some(&value));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1>Fleet</h1>"));
    // A session cookie is not an operator token for the API.
    let r = get(&a, &format!("{base}/api/sites"), Some(&value));
    assert_eq!(r.status, 401);

    // Logout needs the CSRF token too; after it the cookie is dead.
    let r = post_form(&a, &format!("{base}/logout"), Some(&value), "csrf=wrong");
    assert_eq!(r.status, 403);
    assert_eq!(get(&a, &format!("{base}/"), Some(&value)).status, 200);
    let csrf = csrf_of(&page.body);
    let r = post_form(
        &a,
        &format!("{base}/logout"),
        Some(&value),
        &format!("csrf={csrf}"),
    );
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/login")));
    assert!(r.set_cookie.unwrap().contains("Max-Age=0"));
    let r = get(&a, &format!("{base}/"), Some(&value));
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/login")));
    assert_eq!(pg.psql("SELECT count(*) FROM operator_sessions"), "0");

    // An expired session is no session.
    let value = login(&a, base, &token);
    pg.psql("UPDATE operator_sessions SET expires_at = now() - interval '1 second'");
    assert_eq!(get(&a, &format!("{base}/"), Some(&value)).status, 303);
    // A disabled operator's session stops working at once.
    let value = login(&a, base, &token);
    assert_eq!(get(&a, &format!("{base}/"), Some(&value)).status, 200);
    pg.psql("UPDATE operators SET disabled = true");
    assert_eq!(get(&a, &format!("{base}/"), Some(&value)).status, 303);
}

#[test]
fn session_cookie_is_secure_over_tls() {
    let pg = Postgres::start();
    let token = add_operator(&pg, "alice");
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let gw = Gateway::start_with(
        &pg,
        "127.0.0.1:0",
        "info",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let trusted = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[
            ureq::tls::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        ]))
        .build();
    let a = agent(Some(trusted));
    let r = post_form(
        &a,
        &format!("{}/login", gw.base),
        None,
        &format!("token={token}"),
    );
    assert_eq!(r.status, 303);
    let cookie = r.set_cookie.unwrap();
    let flags: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        flags.contains(&"Secure")
            && flags.contains(&"HttpOnly")
            && flags.contains(&"SameSite=Strict"),
        "{cookie}"
    );
}

#[test]
fn page_writes_need_the_sessions_csrf_token() {
    let pg = Postgres::start();
    seed(&pg);
    let token = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let a = agent(None);
    let base = &gw.base;
    let cookie = login(&a, base, &token);
    let page = get(&a, &format!("{base}/sites/site-a"), Some(&cookie));
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_of(&page.body);
    // Another session's token is as wrong as a made-up one.
    let other = login(&a, base, &token);
    let other_csrf = csrf_of(&get(&a, &format!("{base}/"), Some(&other)).body);
    assert_ne!(other_csrf, csrf);

    let alert = pg.psql("SELECT id FROM alerts");
    let forms = [
        "/sites/site-a/subscriptions/cust-1/suspend".to_string(),
        format!("/sites/site-a/alerts/{alert}/ack"),
        "/sites/site-a/vouchers/delete".to_string(),
        "/sites/site-a/batches".to_string(),
    ];
    let extra = |path: &str| {
        if path.ends_with("/delete") {
            "&code=OLD-1"
        } else if path.ends_with("/batches") {
            "&count=5&profile=p&valid_hours=24&sell=1000"
        } else {
            ""
        }
    };
    let state = || {
        pg.psql(
            "SELECT (SELECT string_agg(status, ',') FROM subscriptions) || '|' || \
                    (SELECT count(*) FROM alerts WHERE acked_at IS NULL) || '|' || \
                    (SELECT string_agg(code || status, ',' ORDER BY code) FROM vouchers) || '|' || \
                    (SELECT count(*) FROM operator_audit)",
        )
    };
    let before = state();
    for path in &forms {
        for body in [
            extra(path).trim_start_matches('&').to_string(),
            format!("csrf=wrong{}", extra(path)),
            format!("csrf={other_csrf}{}", extra(path)),
            format!("csrf={}{}", &csrf[..63], extra(path)),
        ] {
            let r = post_form(&a, &format!("{base}{path}"), Some(&cookie), &body);
            assert_eq!(r.status, 403, "{path} {body}: {}", r.body);
        }
    }
    assert_eq!(state(), before, "refused forms wrote nothing");
    assert_eq!(pg.psql("SELECT count(*) FROM operator_audit"), "0");

    // With the session's token each form does its write, with its audit row.
    for path in &forms {
        let r = post_form(
            &a,
            &format!("{base}{path}"),
            Some(&cookie),
            &format!("csrf={csrf}{}", extra(path)),
        );
        assert_eq!(r.status, 303, "{path}: {}", r.body);
        assert!(r.location.unwrap().starts_with("/sites/site-a?done="));
    }
    assert_eq!(
        pg.psql(
            "SELECT string_agg(action || ':' || operator, ',' ORDER BY id) FROM operator_audit"
        ),
        "subscriptions.suspend:alice,alerts.ack:alice,vouchers.delete:alice,vouchers.create:alice"
    );
    assert_eq!(pg.psql("SELECT status FROM subscriptions"), "suspended");
    assert_eq!(
        pg.psql("SELECT count(*) FROM alerts WHERE acked_at IS NULL"),
        "0"
    );
    assert_eq!(
        pg.psql("SELECT status FROM vouchers WHERE code = 'OLD-1'"),
        "deleted"
    );

    // Bad input through a page form: the API's own checks, 4xx, nothing written.
    let r = post_form(
        &a,
        &format!("{base}/sites/site-a/batches"),
        Some(&cookie),
        &format!("csrf={csrf}&count=0&profile=p&valid_hours=24&sell=1000"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("count"), "{}", r.body);
    let r = post_form(
        &a,
        &format!("{base}/sites/site-a/batches"),
        Some(&cookie),
        &format!("csrf={csrf}&count=1&profile=p&valid_hours=24&sell=1.5.5"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post_form(
        &a,
        &format!("{base}/sites/site-a/batches"),
        Some(&cookie),
        &format!("csrf={csrf}&bogus=1"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(pg.psql("SELECT count(*) FROM operator_audit"), "4");

    // Unknown site, batch, subscription: 404 pages, not 500.
    for path in [
        "/sites/nope",
        "/sites/site-a/batches/nope/cards",
        "/sites/nope/batches/B-old/cards",
        "/sites/site-a/nothing",
    ] {
        let r = get(&a, &format!("{base}{path}"), Some(&cookie));
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(r.body.contains("<h1>Not found</h1>"), "{}", r.body);
    }
    let r = post_form(
        &a,
        &format!("{base}/sites/site-a/subscriptions/nobody/suspend"),
        Some(&cookie),
        &format!("csrf={csrf}"),
    );
    assert_eq!(r.status, 404);
    let r = get(
        &a,
        &format!("{base}/sites/site-a/batches/B-old/cards?layout=x"),
        Some(&cookie),
    );
    assert_eq!(r.status, 400);
}

/// The row of `site` in the fleet table, as cell texts.
fn fleet_row(b: &mut Browser, site: &str) -> Vec<String> {
    let v = b.eval(&format!(
        "Array.from(document.querySelectorAll('#fleet tbody tr'))
           .filter(r => r.cells[0].textContent.includes({}))
           .map(r => Array.from(r.cells).map(c => c.textContent.trim()))[0]",
        serde_json::json!(site)
    ));
    serde_json::from_value(v).unwrap_or_default()
}

#[test]
fn pages_work_in_a_browser() {
    let pg = Postgres::start();
    seed(&pg);
    let token = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let base = gw.base.clone();
    let mut b = Browser::start();
    // The console capture works (else the "no console errors" checks below
    // could not fail).
    b.eval("console.error('probe')");
    b.eval("setTimeout(() => { throw new Error('thrown probe') }, 0)");
    b.wait_for("true");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.errors.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        b.eval("1");
    }
    assert!(
        b.errors[0].contains("probe") && b.errors[1].contains("thrown probe"),
        "{:?}",
        b.errors
    );
    b.errors.clear();

    // Log in through the form, as a person would.
    b.goto(&format!("{base}/"));
    b.wait_for("location.pathname === '/login' && document.readyState === 'complete'");
    b.submit(&format!(
        "document.querySelector('input[name=token]').value = {}; document.querySelector('form').submit()",
        serde_json::json!(token)
    ));
    assert_eq!(b.eval("location.pathname"), "/");
    let cookies = b.cookies(&base);
    let c = cookies
        .iter()
        .find(|c| c["name"] == "mc_session")
        .expect("session cookie in the browser");
    assert_eq!(
        (c["httpOnly"].clone(), c["sameSite"].clone()),
        (Value::Bool(true), Value::from("Strict"))
    );
    assert_eq!(
        b.eval("document.cookie"),
        "",
        "HttpOnly: not visible to scripts"
    );

    // The fleet: status, sessions, activations, revenue, alerts, sparkline.
    let row = fleet_row(&mut b, "site-a");
    assert!(row[0].contains(EVIL), "names are shown as text: {row:?}");
    assert_eq!(row[1], "online");
    assert_eq!(row[4], "2", "{row:?}");
    assert_eq!(
        (row[6].as_str(), row[7].as_str(), row[8].as_str()),
        ("1", "5000", "1"),
        "{row:?}"
    );
    let row_b = fleet_row(&mut b, "site-b");
    assert_eq!(
        (row_b[1].as_str(), row_b[4].as_str(), row_b[7].as_str()),
        ("offline", "0", "0"),
        "{row_b:?}"
    );
    assert_eq!(
        b.eval("window.__xss === undefined"),
        true,
        "no injected script ran"
    );
    let spark = b.eval(
        "Array.from(document.querySelectorAll('#fleet tbody tr')).map(r => r.cells[5].querySelector('svg title').textContent)",
    );
    assert!(
        spark
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "sessions online per hour, last 24 h: this hour 2, peak 2"),
        "{spark}"
    );
    let points = b.eval(
        "document.querySelector('#fleet svg polyline').getAttribute('points').split(' ').length",
    );
    assert_eq!(points, 24);
    // The hourly counts agree with the plain definition (sessions
    // overlapping each hour), computed here by a different query.
    let hourly = "SELECT string_agg(n::text, ',' ORDER BY i) FROM (
           SELECT h.i, (SELECT count(*) FROM sessions x WHERE x.site_id = 'site-a'
                          AND x.started_at < h.t0 + interval '1 hour'
                          AND coalesce(x.ended_at, 'infinity') > h.t0) AS n
             FROM (SELECT i, date_trunc('hour', now()) - make_interval(hours => 23 - i) AS t0
                     FROM generate_series(0, 23) i) h) z";
    let expected = loop {
        // Fetched between two looks at the expected counts that agree (no
        // hour turned in between).
        let before = pg.psql(hourly);
        b.eval("window.fleetRefresh()");
        let shown = b.eval(
            "Array.from(document.querySelectorAll('#fleet tbody tr')).find(r => r.cells[0].textContent.includes('site-a')).querySelector('svg').dataset.counts",
        );
        if pg.psql(hourly) == before {
            assert_eq!(shown, before.as_str());
            break before;
        }
    };
    assert!(
        expected.split(',').filter(|n| *n != "0").count() >= 4,
        "{expected}"
    );

    // Sort by the online column (click twice: descending), then filter.
    let order = "Array.from(document.querySelectorAll('#fleet tbody tr')).map(r => r.cells[0].textContent.includes('site-a') ? 'a' : 'b').join('')";
    b.eval("document.querySelectorAll('#fleet th')[4].click()");
    assert_eq!(b.eval(order), "ba");
    b.eval("document.querySelectorAll('#fleet th')[4].click()");
    assert_eq!(b.eval(order), "ab");
    b.eval("const f = document.getElementById('filter'); f.value = 'site-b'; f.dispatchEvent(new Event('input'))");
    assert_eq!(
        b.eval(
            "Array.from(document.querySelectorAll('#fleet tbody tr')).filter(r => !r.hidden).length"
        ),
        1
    );
    assert_eq!(
        b.eval("document.getElementById('shown').textContent"),
        "1 of 2 sites"
    );
    // The table refreshes itself (every 30 s; here called at once) and
    // keeps the sort and filter.
    pg.psql(
        "UPDATE sites SET last_upload_at = now() WHERE site_id = 'site-b';
         INSERT INTO sessions (site_id, service, username, active_id, started_at)
           VALUES ('site-b', 'pppoe', 'p1', '*9', now())",
    );
    b.eval("window.fleetRefresh()");
    b.wait_for(
        "(() => { const r = Array.from(document.querySelectorAll('#fleet tbody tr')).find(r => !r.hidden);
                  return r && r.cells[1].textContent === 'online' && r.cells[4].textContent === '1'; })()",
    );
    assert_eq!(
        b.eval(
            "Array.from(document.querySelectorAll('#fleet tbody tr')).filter(r => !r.hidden).length"
        ),
        1
    );
    b.eval("const g = document.getElementById('filter'); g.value = ''; g.dispatchEvent(new Event('input'))");
    assert_eq!(b.eval(order), "ab", "still sorted by online, descending");

    // The site page, reached by its link.
    b.submit("document.querySelector('#fleet a[href=\"/sites/site-a\"]').click()");
    assert_eq!(b.eval("location.pathname"), "/sites/site-a");
    let online = b.eval("Array.from(document.querySelectorAll('#online tbody tr')).map(r => r.cells[0].textContent).sort().join(',')");
    assert_eq!(online, "u-long,u<i>new</i>");
    assert!(
        b.eval("document.body.textContent")
            .as_str()
            .unwrap()
            .contains("router <unreachable>")
    );
    assert_eq!(
        b.eval("document.querySelector('#batches tbody tr').textContent.includes('B-old')"),
        true
    );

    // Suspend, then restore, by their buttons.
    b.submit("document.querySelector('#subscriptions button').click()");
    assert_eq!(pg.psql("SELECT status FROM subscriptions"), "suspended");
    assert_eq!(
        b.eval("document.querySelector('#subscriptions button').textContent"),
        "Restore"
    );
    assert!(
        b.eval("document.querySelector('.msg').textContent")
            .as_str()
            .unwrap()
            .contains("suspended")
    );
    b.submit("document.querySelector('#subscriptions button').click()");
    assert_eq!(pg.psql("SELECT status FROM subscriptions"), "active");
    // Ack the alert.
    b.submit("document.querySelector('#alerts button').click()");
    assert_eq!(pg.psql("SELECT acked_by FROM alerts"), "alice");
    assert_eq!(
        b.eval("document.querySelectorAll('#alerts tbody tr').length"),
        0
    );
    // Create a batch with the form: the same code as the API's POST vouchers.
    b.submit(
        "const f = document.getElementById('new-batch');
         f.count.value = '40'; f.profile.value = 'voucher-1d'; f.valid_hours.value = '24';
         f.sell.value = '5000'; f.cost.value = '3500'; f.prefix.value = 'WIFI-';
         f.code_length.value = '6'; f.batch_id.value = 'B-page'; f.querySelector('button').click()",
    );
    assert_eq!(
        pg.psql("SELECT count(*) || ' ' || min(status) || ' ' || min(sell) || ' ' || min(mikrotik_comment) FROM vouchers WHERE batch_id = 'B-page'"),
        format!(
            "40 created 5000 VOUCHER_SYSTEM|B-page|5000|3500|24||{}|alice||",
            pg.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
        )
    );
    assert_eq!(
        b.eval("document.querySelector('.msg a').getAttribute('href')"),
        "/sites/site-a/batches/B-page/cards"
    );
    // Delete a voucher.
    b.submit(
        "const f = document.getElementById('delete-voucher'); f.code.value = 'OLD-1'; f.querySelector('button').click()",
    );
    assert_eq!(
        pg.psql("SELECT status FROM vouchers WHERE code = 'OLD-1'"),
        "deleted"
    );
    assert_eq!(
        pg.psql("SELECT string_agg(action, ',' ORDER BY id) FROM operator_audit WHERE operator = 'alice'"),
        "subscriptions.suspend,subscriptions.restore,alerts.ack,vouchers.create,vouchers.delete"
    );

    // Log out by the button.
    b.submit("document.querySelector('header form button').click()");
    assert_eq!(b.eval("location.pathname"), "/login");
    assert!(b.cookies(&base).iter().all(|c| c["name"] != "mc_session"));
    assert_eq!(b.errors, Vec::<String>::new(), "console errors");
}

/// Pages of a PDF and their MediaBox sizes in points.
fn pdf_pages(pdf: &[u8]) -> Vec<(f64, f64)> {
    let text = String::from_utf8_lossy(pdf);
    let mut pages = Vec::new();
    for (i, _) in text.match_indices("/Type /Page") {
        if text[i + 11..].starts_with('s') {
            continue;
        }
        // The MediaBox of this page's object (up to its `endobj`).
        let obj = &text[i..];
        let dict = &obj[..obj.find("endobj").unwrap_or(obj.len())];
        let mb = dict
            .find("/MediaBox [")
            .map(|m| &dict[m + 11..])
            .and_then(|m| m.split(']').next())
            .expect("MediaBox");
        let n: Vec<f64> = mb.split_whitespace().map(|x| x.parse().unwrap()).collect();
        pages.push((n[2] - n[0], n[3] - n[1]));
    }
    pages
}

/// The texts of the QR codes in a PNG.
fn qr_texts(png_bytes: &[u8]) -> Vec<String> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = &buf[(y * w + x) * channels..];
        if channels >= 3 {
            ((u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3) as u8
        } else {
            p[0]
        }
    });
    img.detect_grids()
        .iter()
        .map(|g| g.decode().expect("QR decodes").1)
        .collect()
}

#[test]
fn voucher_cards_print_32_per_a4_page_with_a_qr_of_the_login_url() {
    let pg = Postgres::start();
    seed(&pg);
    set_site(&pg, "site-a", &["--hotspot-login-url", "http://10.5.50.1"]);
    let token = add_operator(&pg, "alice");
    let gw = Gateway::start(&pg, "127.0.0.1:0");
    let base = gw.base.clone();
    // 64 vouchers through the operator API.
    let a = agent(None);
    let mut r = a
        .post(&format!("{base}/api/sites/site-a/vouchers"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(r#"{"count": 64, "profile": "voucher-1d", "valid_hours": 24, "sell": 5000, "prefix": "WIFI-", "code_length": 6, "batch_id": "B64"}"#)
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.body_mut().read_to_string().unwrap()
    );

    let mut b = Browser::start();
    b.goto(&format!("{base}/login"));
    b.submit(&format!(
        "document.querySelector('input[name=token]').value = {}; document.querySelector('form').submit()",
        serde_json::json!(token)
    ));
    b.goto(&format!("{base}/sites/site-a/batches/B64/cards"));
    assert_eq!(b.eval("document.querySelectorAll('.sheet').length"), 2);
    assert_eq!(
        b.eval("document.querySelectorAll('.sheet .card').length"),
        64
    );
    assert_eq!(
        b.eval("document.querySelectorAll('.card .qr svg').length"),
        64
    );
    assert_eq!(b.eval("window.__xss === undefined"), true);
    assert!(
        b.eval("document.querySelector('.card .site').textContent")
            .as_str()
            .unwrap()
            == EVIL,
        "site name printed as text"
    );
    assert_eq!(
        b.eval("document.querySelector('.card .price').textContent"),
        "5000"
    );
    assert_eq!(
        b.eval("document.querySelector('.card .valid').textContent"),
        "1 day"
    );

    let pages = pdf_pages(&b.pdf());
    assert_eq!(pages.len(), 2, "64 cards, 32 per page: {pages:?}");
    for (w, h) in &pages {
        // A4 is 210 × 297 mm = 595.3 × 841.9 pt.
        assert!(
            (w - 595.3).abs() < 1.5 && (h - 841.9).abs() < 1.5,
            "{pages:?}"
        );
    }

    // The first card's QR code, as printed, decodes to its login URL.
    let code = b.eval("document.querySelector('.card .code').textContent");
    let code = code.as_str().unwrap();
    let pass = pg.psql(&format!(
        "SELECT password FROM vouchers WHERE code = '{code}'"
    ));
    assert_eq!(
        b.eval("document.querySelector('.card .pass').textContent"),
        pass.as_str()
    );
    let texts = qr_texts(&b.screenshot(".card .qr svg", 4.0));
    assert_eq!(
        texts,
        vec![format!(
            "http://10.5.50.1/login?username={code}&password={pass}"
        )]
    );

    // 58 mm receipt strips: one voucher per page.
    b.goto(&format!(
        "{base}/sites/site-a/batches/B64/cards?layout=thermal"
    ));
    let pages = pdf_pages(&b.pdf());
    assert_eq!(pages.len(), 64);
    assert!(
        pages.iter().all(|(w, _)| (w - 164.4).abs() < 1.5),
        "58 mm wide: {:?}",
        pages[0]
    );
    let texts = qr_texts(&b.screenshot(".card .qr svg", 3.0));
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with("http://10.5.50.1/login?username=WIFI-"),
        "{texts:?}"
    );

    // A deleted voucher is not printed.
    let gone = pg.psql("SELECT min(code) FROM vouchers WHERE batch_id = 'B64'");
    let r = a
        .delete(&format!("{base}/api/sites/site-a/vouchers/{gone}"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    b.goto(&format!("{base}/sites/site-a/batches/B64/cards"));
    assert_eq!(b.eval("document.querySelectorAll('.card').length"), 63);
    assert_eq!(
        b.eval(&format!(
            "document.body.textContent.includes({})",
            serde_json::json!(gone)
        )),
        false
    );

    // Without a login URL: no QR codes.
    set_site(&pg, "site-a", &["--hotspot-login-url", ""]);
    b.goto(&format!("{base}/sites/site-a/batches/B64/cards"));
    assert_eq!(b.eval("document.querySelectorAll('.card svg').length"), 0);
    assert_eq!(b.errors, Vec::<String>::new(), "console errors");
}
