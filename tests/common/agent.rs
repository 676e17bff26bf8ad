//! The one agent harness of the integration tests: `mikrotik-edge run`
//! (the real binary, under qemu when the test target is foreign) started
//! with an environment config, its stderr captured (every log line and the
//! `event {…}` lines parsed, with the moment they arrived), waits on its
//! log, events and HTTP endpoint with deadlines, and a stop by SIGTERM,
//! `kill -9` or drop (a failing assertion never leaves an agent running).
//!
//! ```ignore
//! let agent = Agent::run(&sim).state(&state).env("MIKROTIK_EDGE_SITE_ID", "site-a").start();
//! agent.wait_event(|e| e["type"] == "user_created");
//! ```

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mikrotik_edge::sim::SimHandle;
use serde_json::Value;

use super::{agent_command, agent_env, slow_factor, wait_until};

/// `n` seconds, stretched under qemu: the deadline of every wait.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n * u64::from(slow_factor()))
}

/// What an agent process wrote to stderr: every line, and the `event {…}`
/// lines parsed with the moment each arrived, filled by a reader thread as
/// the agent runs.
#[derive(Clone, Default)]
pub struct Captured {
    pub events: Arc<Mutex<Vec<(Instant, Value)>>>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Captured {
    /// Takes the child's piped stderr and reads it on a thread.
    pub fn from_child(child: &mut Child) -> Captured {
        let captured = Captured::default();
        let Some(stderr) = child.stderr.take() else {
            return captured;
        };
        let (ev, lg) = (captured.events.clone(), captured.log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let json = line
                    .split_once("event {")
                    .map(|(_, rest)| format!("{{{rest}"));
                if let Some(v) = json.and_then(|j| serde_json::from_str(&j).ok()) {
                    ev.lock().unwrap().push((Instant::now(), v));
                }
                lg.lock().unwrap().push(line);
            }
        });
        captured
    }
}

/// An agent about to start: `run`, a poll every second, debug logs, the
/// HTTP endpoint off; the builder methods add to or override that.
pub struct Launch {
    cmd: Command,
    http: bool,
    dir: Option<tempfile::TempDir>,
}

impl Launch {
    /// Sets one environment variable (a later value for the same key wins).
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Launch {
        self.cmd.env(key, value);
        self
    }

    /// Sets each pair of `vars`, in order.
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(mut self, vars: &[(K, V)]) -> Launch {
        for (k, v) in vars {
            self.cmd.env(k, v);
        }
        self
    }

    /// The state file (`MIKROTIK_EDGE_STATE_PATH`).
    pub fn state(self, path: &Path) -> Launch {
        self.env("MIKROTIK_EDGE_STATE_PATH", path)
    }

    /// A state file in a temporary directory that lives as long as the agent.
    pub fn temp_state(mut self) -> Launch {
        let dir = tempfile::tempdir().expect("tempdir");
        self.cmd
            .env("MIKROTIK_EDGE_STATE_PATH", dir.path().join("state.redb"));
        self.dir = Some(dir);
        self
    }

    /// The HTTP endpoint on a free loopback port; `start` waits until the
    /// agent logs its address.
    pub fn http(mut self) -> Launch {
        self.cmd.env("MIKROTIK_EDGE_HTTP_LISTEN", "127.0.0.1:0");
        self.http = true;
        self
    }

    /// Spawns the agent (and, with `http`, waits for its address).
    pub fn start(mut self) -> Agent {
        self.cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn agent");
        let cap = Captured::from_child(&mut child);
        let mut agent = Agent {
            child,
            cap,
            addr: None,
            _dir: self.dir,
        };
        if self.http {
            let mut addr = None;
            let found = wait_until(secs(20), || {
                addr = agent.lines().iter().find_map(|l| {
                    let (_, a) = l.split_once("http: listening on http://")?;
                    a.trim().parse::<SocketAddr>().ok()
                });
                addr.is_some()
            });
            assert!(
                found,
                "agent did not start listening; log:\n{}",
                agent.log()
            );
            agent.addr = addr;
        }
        agent
    }
}

/// How an agent stopped on SIGTERM: how long it took, and its whole log.
pub struct Stopped {
    pub took: Duration,
    pub log: String,
}

/// A running agent; dropping it kills it.
pub struct Agent {
    child: Child,
    cap: Captured,
    addr: Option<SocketAddr>,
    _dir: Option<tempfile::TempDir>,
}

impl Agent {
    /// `mikrotik-edge run` against the simulator.
    pub fn run(sim: &SimHandle) -> Launch {
        let mut cmd = agent_command();
        agent_env(&mut cmd, sim);
        Agent::launch(cmd)
    }

    /// `mikrotik-edge run` with no router settings (the test gives them).
    pub fn run_without_router() -> Launch {
        Agent::launch(agent_command())
    }

    fn launch(mut cmd: Command) -> Launch {
        cmd.arg("run")
            .env("MIKROTIK_EDGE_POLL_SECS", "1")
            .env("MIKROTIK_EDGE_LOG_LEVEL", "debug");
        Launch {
            cmd,
            http: false,
            dir: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The HTTP endpoint's address (started with `Launch::http`).
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("agent started without Launch::http")
    }

    /// `http://ADDR{path}` on the agent's endpoint.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Every event logged so far, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.timed_events().into_iter().map(|(_, v)| v).collect()
    }

    /// Every event logged so far with the moment its line arrived.
    pub fn timed_events(&self) -> Vec<(Instant, Value)> {
        self.cap.events.lock().unwrap().clone()
    }

    /// Every log line so far.
    pub fn lines(&self) -> Vec<String> {
        self.cap.log.lock().unwrap().clone()
    }

    /// The log so far, one string.
    pub fn log(&self) -> String {
        self.cap.log.lock().unwrap().join("\n")
    }

    /// Log lines so far containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.cap
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Full sync runs finished so far: one `sync: fetched desired state …,
    /// N actions (…)` line each, written after the sync's last action.
    pub fn sync_runs(&self) -> usize {
        self.lines()
            .iter()
            .filter(|l| {
                l.contains("sync: ") && l.contains(" desired state ") && l.contains(" actions (")
            })
            .count()
    }

    /// Waits until `cond` holds; panics with `what` and the log on the deadline.
    pub fn wait(&self, what: &str, cond: impl FnMut() -> bool) {
        assert!(
            wait_until(secs(30), cond),
            "{what}: not seen; agent log:\n{}",
            self.log()
        );
    }

    /// Waits until `count` log lines contain `needle`.
    pub fn wait_log(&self, needle: &str, count: usize) {
        let ok = wait_until(secs(30), || self.count(needle) >= count);
        assert!(ok, "log {needle:?} x{count} not seen:\n{}", self.log());
    }

    /// Waits for an event matching `pred`; returns the first.
    pub fn wait_event(&self, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_event_within(secs(30), pred).1
    }

    /// Waits up to `limit` for an event; returns it and when its line arrived.
    pub fn wait_event_within(
        &self,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (Instant, Value) {
        let mut found = None;
        let ok = wait_until(limit, || {
            found = self.timed_events().into_iter().find(|(_, e)| pred(e));
            found.is_some()
        });
        assert!(ok, "event not seen within {limit:?}; log:\n{}", self.log());
        found.unwrap()
    }

    /// Panics (with the log) if the agent has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("agent exited ({status}); log:\n{}", self.log());
        }
    }

    /// `kill -9`, and reaps it.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9 the agent");
        self.child.wait().expect("reap the agent");
    }

    /// Sends `SIG{sig}` (`TERM`, `INT`, …) with `kill`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// The exit status, if the agent has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM; waits (with a deadline) for the exit.
    pub fn terminate(mut self) -> Stopped {
        let started = Instant::now();
        self.signal("TERM");
        let ok = wait_until(secs(15), || matches!(self.child.try_wait(), Ok(Some(_))));
        assert!(ok, "agent did not stop on SIGTERM:\n{}", self.log());
        Stopped {
            took: started.elapsed(),
            log: self.log(),
        }
    }
}

// A failing assertion must not leave an agent running.
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
