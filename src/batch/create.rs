//! `create-batch`: validate the file, skip what the router already has,
//! create the rest with bounded in-flight commands, report.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::csv::{self, NewUser};
use super::runner::{Group, run_groups};
use crate::client::{ClientError, Router};
use crate::clock::Timestamp;
use crate::commands::{self, AddUser};
use crate::config::Config;
use crate::event::{EventKind, Service, Via};
use crate::name::Name;
use crate::password::Password;
use crate::proto::Command;

/// Largest file read: 100,000 users with long comments fit easily.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    pub file: PathBuf,
    /// Where the failures CSV goes; default `FILE.failures.csv`.
    pub failures: Option<PathBuf>,
    /// Overrides `sync_max_in_flight`.
    pub max_in_flight: Option<usize>,
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub created: usize,
    pub existing: usize,
    pub failed: usize,
    pub max_in_flight: usize,
    pub failures_file: Option<PathBuf>,
    /// Users central acknowledged (with a central URL).
    pub reported: Option<usize>,
    pub report_error: Option<String>,
}

/// Why nothing (more) was done.
#[derive(Debug)]
pub enum CreateError {
    /// The file could not be read.
    Read(String),
    /// The file is invalid: the problems, and how many there are in all.
    Invalid(Vec<csv::LineError>, usize),
    /// No connection to the router.
    Router(String),
    /// The failures file could not be written.
    Write(String),
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::Read(e) | CreateError::Router(e) | CreateError::Write(e) => f.write_str(e),
            CreateError::Invalid(errors, total) => {
                for e in errors {
                    writeln!(f, "{e}")?;
                }
                if *total > errors.len() {
                    writeln!(f, "... and {} more", total - errors.len())?;
                }
                write!(f, "{total} bad line(s); nothing was sent to the router")
            }
        }
    }
}

/// Runs the command; progress goes to `progress` (a bar when `tty`).
pub async fn run(
    cfg: &Config,
    opts: &CreateOptions,
    progress: &mut dyn Write,
    tty: bool,
) -> Result<Summary, CreateError> {
    let text = crate::files::read_limited(&opts.file, MAX_FILE_BYTES)
        .map_err(|e| CreateError::Read(format!("cannot read {}: {e}", opts.file.display())))?;
    let today = Timestamp::now().to_rfc3339();
    let today = today.get(..10).unwrap_or_default().as_bytes().to_vec();
    let users = csv::parse(&text, &today).map_err(|(e, n)| CreateError::Invalid(e, n))?;
    drop(text);

    let (router, _events) = Router::start(cfg.router.clone());
    let limit = cfg.router.connect_timeout + Duration::from_secs(5);
    if !router.wait_connected(limit).await {
        router.shutdown();
        return Err(CreateError::Router(format!(
            "cannot connect to the router: {}",
            router.last_error().unwrap_or_else(|| "timeout".into())
        )));
    }
    let result = create(&router, cfg, opts, users, progress, tty).await;
    router.close(Duration::from_secs(2)).await;
    result
}

async fn create(
    router: &Router,
    cfg: &Config,
    opts: &CreateOptions,
    users: Vec<NewUser>,
    progress: &mut dyn Write,
    tty: bool,
) -> Result<Summary, CreateError> {
    let mut summary = Summary {
        total: users.len(),
        ..Summary::default()
    };
    // Names the router already has are skipped: rerunning a file (after a
    // failure, or by mistake) creates nothing twice.
    let need = |s| users.iter().any(|u| u.service == s);
    let existing_hotspot = if need(Service::Hotspot) {
        names(router, commands::users(Service::Hotspot)).await?
    } else {
        HashSet::new()
    };
    let existing_ppp = if need(Service::Pppoe) {
        names(router, commands::users(Service::Pppoe)).await?
    } else {
        HashSet::new()
    };
    let mut todo = Vec::new();
    for u in users {
        let existing = match u.service {
            Service::Hotspot => &existing_hotspot,
            Service::Pppoe => &existing_ppp,
        };
        if existing.contains(&u.name) {
            summary.existing += 1;
        } else {
            todo.push(u);
        }
    }
    let groups: Vec<Group<NewUser>> = todo
        .into_iter()
        .map(|u| Group {
            commands: vec![add_command(&u)],
            key: u,
        })
        .collect();
    let n = groups.len();
    let mut bar = Progress::new(n, tty);
    let mut failures: Vec<(NewUser, String)> = Vec::new();
    let max = opts.max_in_flight.unwrap_or(cfg.sync.max_in_flight);
    let mut created = 0;
    let mut reports = Vec::new();
    let stats = run_groups(router, groups, max, |u, r| {
        match r {
            Ok(()) => {
                created += 1;
                reports.push(EventKind::UserCreated {
                    service: u.service,
                    user: u.name,
                    profile: u.profile,
                    comment: u.comment,
                    password: Password(u.password),
                    via: Via::Batch,
                    disabled: false,
                });
            }
            Err(e) => failures.push((u, reason(&e))),
        }
        bar.update(progress, created + failures.len(), failures.len());
    })
    .await;
    bar.finish(progress, created + failures.len(), failures.len());
    summary.created = created;
    summary.failed = failures.len();
    summary.max_in_flight = stats.max_in_flight;
    summary.reported = match super::report::report(cfg, reports).await {
        Ok(n) => Some(n),
        Err(e) => {
            // The users are on the router; the next full sync adopts them.
            log::warn!("create-batch: cannot report the new users to central: {e}");
            summary.report_error = Some(e);
            None
        }
    };
    if !failures.is_empty() {
        failures.sort_by_key(|(u, _)| u.line);
        let path = opts
            .failures
            .clone()
            .unwrap_or_else(|| default_failures_path(&opts.file));
        write_failures(&path, &failures)?;
        summary.failures_file = Some(path);
    }
    Ok(summary)
}

/// `FILE.failures.csv` beside the input.
pub fn default_failures_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".failures.csv");
    PathBuf::from(s)
}

fn write_failures(path: &Path, failures: &[(NewUser, String)]) -> Result<(), CreateError> {
    let mut out = b"line,service,name,profile,error\n".to_vec();
    for (u, why) in failures {
        out.extend_from_slice(format!("{},{},", u.line, u.service.as_str()).as_bytes());
        out.extend_from_slice(&csv::field(u.name.as_bytes()));
        out.push(b',');
        out.extend_from_slice(&csv::field(u.profile.as_bytes()));
        out.push(b',');
        out.extend_from_slice(&csv::field(why.as_bytes()));
        out.push(b'\n');
    }
    std::fs::write(path, out)
        .map_err(|e| CreateError::Write(format!("cannot write {}: {e}", path.display())))
}

fn add_command(u: &NewUser) -> Command {
    commands::add_user(&AddUser {
        service: u.service,
        name: u.name.as_bytes(),
        password: u.password.as_ref().map(Name::as_bytes),
        profile: Some(u.profile.as_bytes()),
        comment: Some(u.comment.as_bytes()),
        disabled: false,
    })
}

/// The router's message (never the command: its words hold the password).
fn reason(e: &ClientError) -> String {
    match e {
        ClientError::Trap { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The names in the user list `menu`.
async fn names(router: &Router, menu: &str) -> Result<HashSet<Name>, CreateError> {
    let path = format!("{menu}/print");
    let folded = router
        .fold(
            commands::print(menu, &["name"]),
            HashSet::new(),
            |set: &mut HashSet<Name>, a| {
                set.insert(Name::new(a.get("name").unwrap_or_default()));
            },
        )
        .await
        .map_err(|e| CreateError::Router(format!("cannot read {path}: {e}")))?;
    if let Some(t) = folded.traps.first() {
        return Err(CreateError::Router(format!(
            "cannot read {path}: {}",
            t.message
        )));
    }
    Ok(folded.value)
}

/// A bar redrawn in place on a terminal; otherwise a plain line every 10%.
struct Progress {
    total: usize,
    tty: bool,
    last_draw: Option<Instant>,
    last_decile: usize,
}

impl Progress {
    fn new(total: usize, tty: bool) -> Progress {
        Progress {
            total,
            tty,
            last_draw: None,
            last_decile: 0,
        }
    }

    fn update(&mut self, out: &mut dyn Write, done: usize, failed: usize) {
        if self.tty {
            if self
                .last_draw
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
            {
                return;
            }
            self.last_draw = Some(Instant::now());
            let width = 30;
            let filled = (done * width).checked_div(self.total).unwrap_or(width);
            let _ = write!(
                out,
                "\r[{}{}] {done}/{} ({failed} failed)",
                "#".repeat(filled),
                ".".repeat(width - filled),
                self.total
            );
            let _ = out.flush();
        } else {
            let decile = (done * 10).checked_div(self.total).unwrap_or(10);
            if decile > self.last_decile && done < self.total {
                self.last_decile = decile;
                let _ = writeln!(out, "progress: {done}/{} ({failed} failed)", self.total);
            }
        }
    }

    fn finish(&mut self, out: &mut dyn Write, done: usize, failed: usize) {
        if self.tty {
            self.last_draw = None;
            self.update(out, done, failed);
            let _ = writeln!(out);
        } else {
            let _ = writeln!(out, "progress: {done}/{} ({failed} failed)", self.total);
        }
    }
}

/// Whether stderr is a terminal (the bar) or not (plain lines).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// `mikrotik-edge create-batch`: exit 0 when everything is on the router,
/// 1 when some users failed (listed in the failures CSV) or the router is
/// unreachable, 2 when the file is refused (nothing sent).
pub async fn cli(cfg: &Config, opts: &CreateOptions) -> std::process::ExitCode {
    use std::process::ExitCode;
    let tty = stderr_is_tty();
    let mut err = std::io::stderr();
    match run(cfg, opts, &mut err, tty).await {
        Ok(s) => {
            println!(
                "create-batch {}: {} users: {} created, {} already on the router, {} failed (at most {} commands in flight)",
                opts.file.display(),
                s.total,
                s.created,
                s.existing,
                s.failed,
                s.max_in_flight
            );
            match (&s.reported, &s.report_error) {
                (Some(n), _) if cfg.uplink.central.is_some() => {
                    println!("reported to central: {n} users (status created)")
                }
                (None, Some(e)) => {
                    println!("not reported to central ({e}); the next full sync adopts them")
                }
                _ => {}
            }
            match &s.failures_file {
                Some(p) => {
                    println!("failures: {}", p.display());
                    ExitCode::FAILURE
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e @ CreateError::Invalid(..)) => {
            eprintln!("mikrotik-edge: create-batch {}:\n{e}", opts.file.display());
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("mikrotik-edge: create-batch: {e}");
            ExitCode::FAILURE
        }
    }
}
