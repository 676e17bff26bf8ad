//! A real, throw-away PostgreSQL server for integration tests.
//!
//! ```ignore
//! mod common;
//! let pg = common::pg::Postgres::start();      // initdb + postgres + schema.sql
//! pg.psql("SELECT count(*) FROM sessions");    // -> "0"
//! let url = pg.url();                          // postgres://postgres@127.0.0.1:PORT/edge
//! ```
//!
//! Each call starts its own cluster (initdb takes about half a second) in a
//! temporary directory, listening on a free loopback port, with a unix socket
//! in that directory. Running as root, the server runs as the `postgres`
//! system user (initdb refuses root). Dropping the handle stops the server
//! and removes the directory. Without PostgreSQL installed the test fails,
//! naming `scripts/setup.sh`; it never skips silently.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The database created in each cluster.
pub const DATABASE: &str = "edge";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    child: Mutex<Option<Child>>,
}

/// scripts/central/schema.sql in this repository.
pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/central/schema.sql")
}

/// The directory holding initdb, postgres, pg_ctl and psql: the highest
/// version under /usr/lib/postgresql (Debian), else from PATH.
fn find_bin_dir() -> PathBuf {
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version: u32 = name
                .split('.')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let bin = entry.path().join("bin");
            if bin.join("initdb").exists()
                && bin.join("postgres").exists()
                && best.as_ref().is_none_or(|(v, _)| version > *v)
            {
                best = Some((version, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return bin;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").exists() && dir.join("postgres").exists() {
                return dir;
            }
        }
    }
    panic!(
        "PostgreSQL is not installed (no initdb/postgres in /usr/lib/postgresql/*/bin or PATH): \
         run scripts/setup.sh (it installs the postgresql package) and try again"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

fn check(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

impl Postgres {
    /// initdb, start the server, create the database and load the schema.
    pub fn start() -> Postgres {
        let pg = Postgres::start_empty();
        pg.load_schema();
        pg
    }

    /// Like [`Postgres::start`] without loading the schema.
    pub fn start_empty() -> Postgres {
        let bin = find_bin_dir();
        let as_postgres = is_root();
        if as_postgres
            && !Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success())
        {
            panic!(
                "running as root but there is no `postgres` system user to run the server as \
                 (initdb refuses root): run scripts/setup.sh (the postgresql package creates it)"
            );
        }
        // Root's TMPDIR may not be reachable by the postgres user; /tmp is.
        let dir = if as_postgres {
            tempfile::Builder::new()
                .prefix("mikrotik-pg")
                .tempdir_in("/tmp")
        } else {
            tempfile::Builder::new().prefix("mikrotik-pg").tempdir()
        }
        .expect("create a temporary directory for PostgreSQL");
        let mut pg = Postgres {
            dir,
            bin,
            port: 0,
            as_postgres,
            child: Mutex::new(None),
        };
        if as_postgres {
            check(
                "chown postgres",
                Command::new("chown")
                    .arg("postgres:")
                    .arg(pg.dir.path())
                    .output(),
            );
        }
        let data = pg.data_dir();
        check(
            "initdb",
            pg.server_command("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ])
                .output(),
        );
        // A free port can be taken by a parallel test between probe and
        // bind: retry with another.
        let mut last_err = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            match pg.spawn_server() {
                Ok(()) => {
                    pg.create_database();
                    return pg;
                }
                Err(e) => last_err = e,
            }
        }
        panic!("PostgreSQL did not start: {last_err}");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command for a server-side binary, as the postgres user when root.
    fn server_command(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn spawn_server(&self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.path().join("postgres.log"))
            .map_err(|e| format!("create log: {e}"))?;
        if self.as_postgres {
            let _ = Command::new("chown")
                .arg("postgres:")
                .arg(self.dir.path().join("postgres.log"))
                .status();
        }
        let child = self
            .server_command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            // fsync off: an OS crash could lose data, a killed server cannot
            // (synchronous_commit stays on, so stop() loses no commit).
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off", "-c", "shared_buffers=16MB"])
            .args(["-c", "max_connections=50"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn postgres: {e}"))?;
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                *self.child.lock().unwrap() = None;
                return Err(format!(
                    "postgres exited ({status}):\n{}",
                    self.server_log()
                ));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let ok = self
                    .psql_command("postgres")
                    .arg("-c")
                    .arg("SELECT 1")
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if ok {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "postgres not ready after 60 s:\n{}",
                    self.server_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn create_database(&self) {
        check(
            "CREATE DATABASE",
            self.psql_command("postgres")
                .arg("-c")
                .arg(format!("CREATE DATABASE {DATABASE}"))
                .output(),
        );
    }

    /// The server's log so far (for failure messages).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/edge` (trust authentication).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", self.port)
    }

    fn psql_command(&self, db: &str) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "VERBOSITY=verbose",
        ])
        .args(["-h", "127.0.0.1", "-U", "postgres"])
        .arg("-p")
        .arg(self.port.to_string())
        .arg("-d")
        .arg(db)
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null());
        c
    }

    /// Runs `psql -At -c SQL` on the test database and returns stdout
    /// without the trailing newline. Panics with stderr on failure.
    pub fn psql(&self, sql: &str) -> String {
        let out = check(
            "psql",
            self.psql_command(DATABASE).arg("-c").arg(sql).output(),
        );
        String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string()
    }

    /// Runs SQL and returns Err(stderr) instead of panicking. Errors are
    /// verbose, so stderr names the SQLSTATE (`ERROR:  42501: ...`).
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = self
            .psql_command(DATABASE)
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout)
                .trim_end_matches('\n')
                .to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Loads scripts/central/schema.sql with ON_ERROR_STOP (again: it is
    /// idempotent).
    pub fn load_schema(&self) {
        check(
            "psql -f scripts/central/schema.sql",
            self.psql_command(DATABASE)
                .arg("-f")
                .arg(schema_path())
                .output(),
        );
    }

    /// Stops the server now (immediate shutdown), e.g. to test an outage.
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().unwrap().take() else {
            return;
        };
        let _ = self
            .server_command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // pg_ctl normally ends it; make sure of it either way.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) {
        self.stop();
        self.spawn_server().expect("restart PostgreSQL");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
