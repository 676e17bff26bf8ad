//! Shared helpers for the integration tests: a simulator with known data,
//! router configs pointing at it, and the real binary (under qemu when the
//! test target is foreign).
#![allow(dead_code)]

pub mod agent;
pub mod gateway;
pub mod pg;

// Not every test file uses the agent harness.
#[allow(unused_imports)]
pub use agent::{Agent, Captured, Launch, Stopped, secs};

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mikrotik_edge::config::RouterConfig;
use mikrotik_edge::config::Secret;
use mikrotik_edge::sim::{SimHandle, SimOptions, Simulator};

pub const PASSWORD: &str = "s3cret-Pa55";

pub fn sim_with(opts: impl FnOnce(&mut SimOptions)) -> SimHandle {
    let mut o = SimOptions {
        user: "api".into(),
        password: PASSWORD.into(),
        ..SimOptions::default()
    };
    opts(&mut o);
    Simulator::start(o).expect("start simulator")
}

pub fn sim() -> SimHandle {
    sim_with(|_| {})
}

/// Router config for the simulator with short timeouts suited to tests.
pub fn router_config(sim: &SimHandle) -> RouterConfig {
    let mut cfg = RouterConfig::new("127.0.0.1", "api");
    cfg.port = sim.addr().port();
    cfg.password = Secret::new(PASSWORD);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.command_timeout = Duration::from_secs(2);
    cfg.keepalive = Duration::from_secs(5);
    cfg.backoff_base = Duration::from_millis(100);
    cfg.backoff_cap = Duration::from_millis(400);
    cfg
}

/// The agent binary as a command, prefixed by the runner (e.g.
/// `qemu-aarch64-static`) when `MIKROTIK_EDGE_TEST_RUNNER` is set.
pub fn agent_command() -> Command {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mikrotik-edge"));
    let mut cmd = match std::env::var_os("MIKROTIK_EDGE_TEST_RUNNER") {
        Some(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    // A clean environment: only what each test sets.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MIKROTIK_EDGE_") && k != "MIKROTIK_EDGE_TEST_RUNNER" {
            cmd.env_remove(k);
        }
    }
    // The local HTTP endpoint defaults to 127.0.0.1:8080; agents of tests
    // running in parallel must not race for it (tests/http.rs turns it on
    // with port 0).
    cmd.env("MIKROTIK_EDGE_HTTP_LISTEN", "off");
    cmd
}

/// Environment pointing the binary at the simulator.
pub fn agent_env(cmd: &mut Command, sim: &SimHandle) {
    cmd.env("MIKROTIK_EDGE_ROUTER_HOST", "127.0.0.1")
        .env("MIKROTIK_EDGE_ROUTER_PORT", sim.addr().port().to_string())
        .env("MIKROTIK_EDGE_ROUTER_USER", "api")
        .env("MIKROTIK_EDGE_ROUTER_PASSWORD", PASSWORD)
        .env("MIKROTIK_EDGE_ROUTER_CONNECT_TIMEOUT_SECS", "2")
        .env("MIKROTIK_EDGE_ROUTER_COMMAND_TIMEOUT_SECS", "3")
        .env("MIKROTIK_EDGE_ROUTER_BACKOFF_BASE_SECS", "1")
        .env("MIKROTIK_EDGE_ROUTER_BACKOFF_CAP_SECS", "2");
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The agent's poll cycles seen by the simulator so far: every cycle reads
/// `/ip/hotspot/active/print` once (the command log's observable counter).
pub fn polls(sim: &SimHandle) -> usize {
    sim.command_log()
        .iter()
        .filter(|c| *c == "/ip/hotspot/active/print")
        .count()
}

/// Waits (with a deadline) until the agent has started `n` more poll
/// cycles than it had when called. With `n >= 2` at least one whole cycle
/// ran after the call: whatever the agent would do about the router's
/// state at the call has been done by then, so "nothing happened" can be
/// asserted after it instead of after a sleep. Panics on the deadline.
pub fn wait_polls(sim: &SimHandle, n: usize) {
    let start = polls(sim);
    let limit = Duration::from_secs(20 * u64::from(slow_factor()));
    assert!(
        wait_until(limit, || polls(sim) >= start + n),
        "the agent did not poll {n} more times within {limit:?} (at {} polls)",
        polls(sim)
    );
}

/// Generous limits: the same tests run under qemu, many times slower.
pub fn slow_factor() -> u32 {
    if std::env::var_os("MIKROTIK_EDGE_TEST_RUNNER").is_some_and(|r| !r.is_empty()) {
        5
    } else {
        1
    }
}

/// A simulator row's field as text (lossy; empty when absent).
pub fn get(row: &mikrotik_edge::sim::Row, k: &str) -> String {
    row.iter()
        .find(|(key, _)| key == k.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Field `k` of the item named `name` in `path`, if the item exists.
pub fn field(sim: &SimHandle, path: &str, name: &str, k: &str) -> Option<String> {
    sim.find(path, name).map(|r| get(&r, k))
}

/// Removes an item over the API, the way an operator at the router would.
pub fn remove_on_router(sim: &SimHandle, path: &str, name: &str) {
    let id = field(sim, path, name, ".id").expect("item exists");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let conn = mikrotik_edge::client::Connection::open(&router_config(sim))
            .await
            .expect("connect");
        conn.execute(mikrotik_edge::proto::Command::new(format!("{path}/remove")).attr(".id", id))
            .await
            .expect("remove");
    });
}

/// Headless Chromium, as installed by scripts/setup.sh (the status page and
/// the central pages are tested in it).
pub fn chromium() -> std::path::PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return std::path::PathBuf::from(p);
        }
    }
    panic!("chromium is not installed: run scripts/setup.sh (the page tests need it)");
}

/// Chromium's flags for a quiet headless run in a test: no sandbox (root in
/// CI), no GPU, no background traffic.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];
