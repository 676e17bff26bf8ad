//! The real agent binary and what it must never do: block on a FIFO
//! given as a secret file, put a URL's secrets in its log, or fail to get
//! an alert to a phone gateway that wants a form, a token header, and
//! answers in plain text.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Waits for `child` to exit within `limit` (killing it otherwise);
/// its exit code and stderr.
fn exit_within(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.and_then(|s| s.code()), err)
}

#[test]
fn a_fifo_as_any_secret_or_config_file_exits_2_at_once_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let header = format!("Authorization: file:{f}");
    // (extra environment, --config?, key named in the error)
    type Case<'a> = (Vec<(&'a str, &'a str)>, bool, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("MIKROTIK_EDGE_ROUTER_PASSWORD_FILE", f)],
            false,
            "router.password_file",
        ),
        (
            vec![("MIKROTIK_EDGE_HTTP_TOKEN_FILE", f)],
            false,
            "http_token_file",
        ),
        (
            vec![
                ("MIKROTIK_EDGE_CENTRAL_URL", "http://127.0.0.1:9"),
                ("MIKROTIK_EDGE_CENTRAL_TOKEN_FILE", f),
            ],
            false,
            "central_token_file",
        ),
        (
            vec![
                ("MIKROTIK_EDGE_ROUTER_TLS", "true"),
                ("MIKROTIK_EDGE_ROUTER_CA_FILE", f),
            ],
            false,
            "router.ca_file",
        ),
        (
            vec![
                ("MIKROTIK_EDGE_CENTRAL_URL", "https://127.0.0.1:9"),
                ("MIKROTIK_EDGE_CENTRAL_TOKEN", "t"),
                ("MIKROTIK_EDGE_CENTRAL_CA_FILE", f),
            ],
            false,
            "central_ca_file",
        ),
        (
            vec![
                ("MIKROTIK_EDGE_ALERT_WEBHOOK", "http://127.0.0.1:9/hook"),
                ("MIKROTIK_EDGE_ALERT_WEBHOOK_HEADERS", &header),
            ],
            false,
            "alert_webhook_headers",
        ),
        (vec![], true, "--config"),
    ];
    for (env, config, key) in cases {
        let mut cmd = agent_command();
        cmd.env("MIKROTIK_EDGE_ROUTER_HOST", "127.0.0.1")
            .env("MIKROTIK_EDGE_ROUTER_USER", "api")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if config {
            cmd.arg("--config").arg(f);
        }
        cmd.arg("run");
        let started = Instant::now();
        let (code, stderr) = exit_within(cmd.spawn().unwrap(), secs(5));
        let took = started.elapsed();
        println!("FIFO as {key}: exit {code:?} after {} ms", took.as_millis());
        assert_eq!(code, Some(2), "{key}: {stderr}");
        assert!(took < secs(1), "{key}: took {took:?}");
        assert!(stderr.contains(key), "{key}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{key}: {stderr}");
    }
}

#[test]
fn config_errors_never_quote_credentials_or_tokens_in_urls() {
    for (var, value) in [
        (
            "MIKROTIK_EDGE_CENTRAL_URL",
            "ftp://edge:PA55W0RD-x@central.example/api",
        ),
        (
            "MIKROTIK_EDGE_CENTRAL_URL",
            "https://central.example/api?token=T0K3N-x",
        ),
        (
            "MIKROTIK_EDGE_ALERT_WEBHOOK",
            "ftp://edge:PA55W0RD-x@gw.example/T0K3N-x",
        ),
        (
            "MIKROTIK_EDGE_ALERT_WEBHOOK",
            "https://edge:PA55W0RD-x@gw.example/T0K3N-x",
        ),
    ] {
        let mut cmd = agent_command();
        cmd.env("MIKROTIK_EDGE_ROUTER_HOST", "127.0.0.1")
            .env("MIKROTIK_EDGE_ROUTER_USER", "api")
            .env("MIKROTIK_EDGE_LOG_LEVEL", "trace")
            .env(var, value);
        if var == "MIKROTIK_EDGE_CENTRAL_URL" {
            cmd.env("MIKROTIK_EDGE_CENTRAL_TOKEN", "t");
        }
        let out = cmd.arg("check").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("example"), "the host is named: {stderr}");
        assert!(
            !stderr.contains("PA55W0RD") && !stderr.contains("T0K3N"),
            "{stderr}"
        );
    }
}

/// One request a gateway received.
#[derive(Debug, Clone)]
struct Received {
    /// Request line and headers, header names lowercased.
    head: String,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_owned())
        })
    }
}

/// A gateway in the style of the simple WhatsApp HTTP APIs: takes any
/// POST, answers `200 OK` with a plain-text body.
fn gateway() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let req = loop {
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
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break Some(Received {
                        head,
                        body: buf[end + 4..end + 4 + len].to_vec(),
                    });
                }
            };
            if let Some(r) = req {
                g.lock().unwrap().push(r);
            }
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\nMessage queued.\n",
            );
        }
    });
    (port, got)
}

/// `application/x-www-form-urlencoded` into pairs.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    };
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The agent without a router of its own (each test gives the router
/// settings), alerting after the first failure, as site `shop-north`.
fn start_agent(env: &[(&str, &str)]) -> Agent {
    Agent::run_without_router()
        .temp_state()
        .env("MIKROTIK_EDGE_SITE_ID", "shop-north")
        .env("MIKROTIK_EDGE_ALERT_AFTER", "1")
        .envs(env)
        .start()
}

#[test]
fn a_form_alert_with_a_token_header_reaches_a_plain_text_gateway() {
    let (port, got) = gateway();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("wa-token");
    std::fs::write(&token_file, "WA-T0KEN-5ecret\n").unwrap();
    let headers = format!("Authorization: file:{}", token_file.display());
    // The secret path and the token query must never be logged, even at
    // trace level (where ureq prints its request line and headers).
    let url = format!("http://127.0.0.1:{port}/send/PATH-5ECRET?apikey=QUERY-5ECRET");
    let router_port = closed_port().to_string();
    let agent = start_agent(&[
        ("MIKROTIK_EDGE_LOG_LEVEL", "trace"),
        ("MIKROTIK_EDGE_ROUTER_HOST", "127.0.0.1"),
        ("MIKROTIK_EDGE_ROUTER_PORT", &router_port),
        ("MIKROTIK_EDGE_ROUTER_USER", "api"),
        ("MIKROTIK_EDGE_ROUTER_BACKOFF_BASE_SECS", "1"),
        ("MIKROTIK_EDGE_ALERT_WEBHOOK", &url),
        ("MIKROTIK_EDGE_ALERT_WEBHOOK_FORMAT", "form"),
        (
            "MIKROTIK_EDGE_ALERT_WEBHOOK_BODY",
            "target=6281200000000&message={message}&site={site}&alert={alert}",
        ),
        ("MIKROTIK_EDGE_ALERT_WEBHOOK_HEADERS", &headers),
    ]);
    assert!(
        wait_until(secs(20), || !got.lock().unwrap().is_empty()),
        "no alert reached the gateway; log:\n{}",
        agent.log()
    );
    let req = got.lock().unwrap()[0].clone();
    assert!(
        req.head
            .starts_with("POST /send/PATH-5ECRET?apikey=QUERY-5ECRET "),
        "{}",
        req.head
    );
    assert_eq!(
        req.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        req.header("authorization").as_deref(),
        Some("WA-T0KEN-5ecret")
    );
    let pairs = form_pairs(&req.body);
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("target"), "6281200000000");
    assert_eq!(field("site"), "shop-north");
    assert_eq!(field("alert"), "mikrotik_connection_failed");
    // Short and human; the router's time zone is unknown (never reached),
    // so the time says UTC.
    let message = field("message");
    let ok = message.starts_with("Router 127.0.0.1 unreachable since ")
        && message.ends_with(" UTC (1 failed reconnect)");
    assert!(ok, "{message}");
    // Counted delivered: the plain-text 200 is a delivery.
    assert!(
        wait_until(secs(10), || agent
            .log()
            .contains("alert webhook: mikrotik_connection_failed delivered")),
        "{}",
        agent.log()
    );
    let log = agent.log();
    assert!(!log.contains("giving up"), "{log}");
    assert!(
        log.contains("alert webhook: POST http://127.0.0.1:"),
        "{log}"
    );
    for secret in ["PATH-5ECRET", "QUERY-5ECRET", "WA-T0KEN-5ecret"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn alert_times_are_in_the_routers_time_zone() {
    let (port, got) = gateway();
    let sim = sim_with(|o| o.identity = "shop-north".into());
    // UTC+07:00, as a router in Jakarta.
    sim.set_time_zone("Asia/Jakarta", 7 * 3600);
    let url = format!("http://127.0.0.1:{port}/hook");
    let cmd_env: Vec<(&str, String)> = vec![
        ("MIKROTIK_EDGE_ROUTER_HOST", "127.0.0.1".into()),
        ("MIKROTIK_EDGE_ROUTER_PORT", sim.addr().port().to_string()),
        ("MIKROTIK_EDGE_ROUTER_USER", "api".into()),
        ("MIKROTIK_EDGE_ROUTER_PASSWORD", PASSWORD.into()),
        ("MIKROTIK_EDGE_ROUTER_CONNECT_TIMEOUT_SECS", "2".into()),
        ("MIKROTIK_EDGE_ROUTER_BACKOFF_BASE_SECS", "1".into()),
        ("MIKROTIK_EDGE_ROUTER_BACKOFF_CAP_SECS", "1".into()),
        ("MIKROTIK_EDGE_ALERT_WEBHOOK", url),
        (
            "MIKROTIK_EDGE_ALERT_WEBHOOK_BODY",
            r#"{"to": "6281200000000", "text": "{message}", "at": "{time}"}"#.into(),
        ),
        ("MIKROTIK_EDGE_ALERT_WEBHOOK_FORMAT", "json".into()),
    ];
    let env: Vec<(&str, &str)> = cmd_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let agent = start_agent(&env);
    // Connected, and a poll done (the first one after connecting reads
    // /system/clock, with its gmt-offset).
    assert!(
        wait_until(secs(20), || agent.log().contains("cycle: ")),
        "{}",
        agent.log()
    );
    sim.reboot(secs(4));
    assert!(
        wait_until(secs(30), || got.lock().unwrap().len() >= 2),
        "{}",
        agent.log()
    );
    let bodies: Vec<serde_json::Value> = got
        .lock()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let failed = &bodies[0];
    let text = failed["text"].as_str().unwrap();
    assert!(
        text.starts_with("Router shop-north unreachable since "),
        "{text}"
    );
    assert!(!text.contains("UTC"), "{text}");
    // HH:MM in UTC+7: within a minute of now + 7 h.
    let hm = |t: std::time::SystemTime| {
        let s = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 7 * 3600;
        format!("{:02}:{:02}", s % 86400 / 3600, s % 3600 / 60)
    };
    let now = std::time::SystemTime::now();
    let candidates = [hm(now), hm(now - Duration::from_secs(60))];
    assert!(
        candidates.iter().any(|c| text.contains(c.as_str())),
        "{text} vs {candidates:?}"
    );
    assert!(
        failed["at"].as_str().unwrap().ends_with("+07:00"),
        "{failed}"
    );
    let restored = bodies[1]["text"].as_str().unwrap();
    assert!(
        restored.starts_with("Router shop-north reachable again (down since "),
        "{restored}"
    );
}
