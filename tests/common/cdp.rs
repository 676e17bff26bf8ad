//! A small Chrome DevTools Protocol client over a websocket: headless
//! Chromium driven like a user (navigate, fill and submit forms, read the
//! DOM), with every console error and uncaught exception collected, PDF
//! printing and screenshots. Used by tests/pages.rs.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::common::{HEADLESS, chromium, slow_factor};

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Console errors, uncaught exceptions and error log entries (CSP
    /// violations, failed loads), in order.
    pub errors: Vec<String>,
}

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs * u64::from(slow_factor()))
}

impl Browser {
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium())
            .args(HEADLESS)
            .args(["--remote-debugging-port=0", "--window-size=1200,900"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let mut b = Browser {
            ws: Self::connect(profile.path()),
            child,
            _profile: profile,
            next_id: 0,
            errors: Vec::new(),
        };
        b.call("Runtime.enable", json!({}));
        b.call("Log.enable", json!({}));
        b.call("Page.enable", json!({}));
        b
    }

    /// The first page target's websocket, once Chromium wrote its port.
    fn connect(profile: &Path) -> WebSocket<TcpStream> {
        let file = profile.join("DevToolsActivePort");
        let end = deadline(30);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u16>().ok()))
            {
                break p;
            }
            assert!(Instant::now() < end, "chromium wrote no DevToolsActivePort");
            std::thread::sleep(Duration::from_millis(50));
        };
        let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
        let ws_url = loop {
            let list: Option<Value> = agent
                .get(&format!("http://127.0.0.1:{port}/json/list"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str(&t).ok());
            let page = list.as_ref().and_then(|l| {
                l.as_array()?.iter().find_map(|t| {
                    (t["type"] == "page")
                        .then(|| t["webSocketDebuggerUrl"].as_str().map(str::to_string))?
                })
            });
            if let Some(u) = page {
                break u;
            }
            assert!(Instant::now() < end, "chromium has no page target");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect devtools");
        stream
            .set_read_timeout(Some(Duration::from_secs(60 * u64::from(slow_factor()))))
            .unwrap();
        let (ws, _) = tungstenite::client(ws_url.as_str(), stream).expect("devtools websocket");
        ws
    }

    fn record(&mut self, ev: &Value) {
        let p = &ev["params"];
        match ev["method"].as_str() {
            Some("Runtime.consoleAPICalled")
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                self.errors
                    .push(format!("console.{}: {}", p["type"], p["args"]));
            }
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                self.errors.push(format!(
                    "exception: {} {}",
                    d["text"], d["exception"]["description"]
                ));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                self.errors
                    .push(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]));
            }
            _ => {}
        }
    }

    /// Sends a command and waits for its answer (events on the way are
    /// recorded); panics on a protocol error.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// Sends a command; its result or its protocol error.
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).expect("devtools send");
        loop {
            let m = match self.ws.read() {
                // Under qemu-user a blocking read can end with EINTR
                // (nothing read, the socket as it was): read again.
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                    continue;
                }
                m => m.expect("devtools read"),
            };
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).expect("devtools JSON");
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
            self.record(&v);
        }
    }

    /// Evaluates JavaScript in the page (promises awaited); its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is true.
    pub fn wait_for(&mut self, expr: &str) {
        let end = deadline(30);
        loop {
            // A navigation in progress can destroy the context mid-call.
            let r = self.try_call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true}),
            );
            if r.is_ok_and(|r| r["result"]["value"] == true) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {expr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens `url` and waits until it (or where it redirects) has loaded.
    pub fn goto(&mut self, url: &str) {
        self.eval("window.__old_page = true");
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("!window.__old_page && document.readyState === 'complete'");
    }

    /// Runs `action` (which submits a form or follows a link) and waits
    /// until the next page has loaded.
    pub fn submit(&mut self, action: &str) {
        self.eval("window.__old_page = true");
        self.eval(action);
        self.wait_for("!window.__old_page && document.readyState === 'complete'");
    }

    /// The current page printed to PDF with its own CSS page size.
    pub fn pdf(&mut self) -> Vec<u8> {
        let r = self.call(
            "Page.printToPDF",
            json!({"preferCSSPageSize": true, "printBackground": true,
                   "displayHeaderFooter": false}),
        );
        base64(r["data"].as_str().expect("PDF data"))
    }

    /// A PNG of the element matched by `selector`, at `scale`.
    pub fn screenshot(&mut self, selector: &str, scale: f64) -> Vec<u8> {
        let rect = self.eval(&format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); \
             return [r.x + scrollX, r.y + scrollY, r.width, r.height]; }})()",
            json!(selector)
        ));
        let n = |i: usize| rect[i].as_f64().expect("rect");
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": n(0) - 8.0, "y": n(1) - 8.0, "width": n(2) + 16.0,
                            "height": n(3) + 16.0, "scale": scale}}),
        );
        base64(r["data"].as_str().expect("PNG data"))
    }

    /// Cookies the browser holds for `url`.
    pub fn cookies(&mut self, url: &str) -> Vec<Value> {
        let r = self.call("Network.getCookies", json!({"urls": [url]}));
        r["cookies"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (as the protocol sends binary data).
pub fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let take = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    out
}
