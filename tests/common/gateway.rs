//! The real `mikrotik-central` binary in front of a test PostgreSQL, on a
//! chosen or free port, for tests that need an HTTP gateway.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::pg::Postgres;
use super::slow_factor;

/// `mikrotik-central`, behind the test runner prefix when one is set.
pub fn central_command() -> Command {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mikrotik-central"));
    let mut cmd = match std::env::var_os("MIKROTIK_EDGE_TEST_RUNNER") {
        Some(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MIKROTIK_CENTRAL_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub struct Gateway {
    child: Child,
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Serves on `listen` (`127.0.0.1:0` for any free port).
    pub fn start(pg: &Postgres, listen: &str) -> Gateway {
        Gateway::start_with(pg, listen, "info", &[])
    }

    /// Serves on `listen` at `log_level`, with `extra` arguments to
    /// `serve` (HTTPS when they name a `--tls-cert`).
    pub fn start_with(pg: &Postgres, listen: &str, log_level: &str, extra: &[&str]) -> Gateway {
        let mut child = central_command()
            .args(["serve", "--listen", listen, "--log-level", log_level])
            .env("MIKROTIK_CENTRAL_DATABASE_URL", pg.url())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mikrotik-central");
        let stderr = child.stderr.take().expect("gateway stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30 * u64::from(slow_factor())))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("gateway did not start:\n{}", log.lock().unwrap())
            });
        let scheme = if extra.contains(&"--tls-cert") {
            "https"
        } else {
            "http"
        };
        Gateway {
            child,
            base: format!("{scheme}://{addr}"),
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Lines of the log containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    pub fn addr(&self) -> String {
        self.base
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `add-site NAME`: the new token.
pub fn add_site(pg: &Postgres, name: &str) -> String {
    let out = central_command()
        .args(["add-site", name, "--database-url", &pg.url()])
        .output()
        .expect("run add-site");
    assert!(
        out.status.success(),
        "add-site: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `add-operator NAME`: the new operator token (64 hex digits).
pub fn add_operator(pg: &Postgres, name: &str) -> String {
    let out = central_command()
        .args(["add-operator", name, "--database-url", &pg.url()])
        .output()
        .expect("run add-operator");
    assert!(
        out.status.success(),
        "add-operator: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token.len(), 64, "{token:?}");
    token
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
