//! The I/O of `import-mikhmon`: read the router's lists, print the plan,
//! and with `--apply` write the export file first, then the comments (one
//! `set` by `.id` each), the state file record, and the schedulers.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::csv::{self, CsvRow};
use super::plan::{self, MonitorAction, Plan, Profile, Scheduler, Skip, User};
use super::tz;
use crate::client::{ClientError, Connection};
use crate::clock::Timestamp;
use crate::commands;
use crate::config::Config;
use crate::event::Service;
use crate::name::{Id, Name};
use crate::proto::{Attrs, Command};
use crate::store::{MikhmonImportRecord, Store, StoreError};

/// Largest export file `--undo` reads (a row is well under 1 KiB; this is
/// room for several hundred thousand users).
const MAX_EXPORT_BYTES: u64 = 256 * 1024 * 1024;

/// The command line of `import-mikhmon`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Write; without it nothing on the router or disk changes.
    pub apply: bool,
    /// Also disable Mikhmon's `Monitor Profile` schedulers.
    pub disable_schedulers: bool,
    /// Where the export file goes (default: next to the state file).
    pub export: Option<PathBuf>,
    /// Undo the import recorded in this export file instead.
    pub undo: Option<PathBuf>,
    /// List every user in the report instead of a few per kind.
    pub verbose: bool,
}

/// A failure that stops the command (exit status 1).
#[derive(Debug)]
pub struct ImportError(pub String);

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportError {}

impl From<ClientError> for ImportError {
    fn from(e: ClientError) -> Self {
        ImportError(e.to_string())
    }
}

/// Runs the command; the report goes to `out`. Ok(false) when some writes
/// failed (they are named in the report).
pub async fn run(
    cfg: &Config,
    opts: &ImportOptions,
    out: &mut dyn std::io::Write,
) -> Result<bool, ImportError> {
    let conn = Connection::open(&cfg.router).await?;
    let result = match &opts.undo {
        Some(file) => undo(&conn, opts, file, out).await,
        None => import(&conn, cfg, opts, out).await,
    };
    conn.quit(std::time::Duration::from_secs(2)).await;
    result
}

async fn import(
    conn: &Connection,
    cfg: &Config,
    opts: &ImportOptions,
    out: &mut dyn std::io::Write,
) -> Result<bool, ImportError> {
    let users = read_users(conn).await?;
    let profiles: Vec<Profile> = conn
        .execute(commands::print(
            commands::profiles(Service::Hotspot),
            &[".id", "name", "on-login"],
        ))
        .await?
        .rows
        .iter()
        .map(|r| Profile {
            name: Name::new(r.get("name").unwrap_or_default()),
            on_login: Name::new(r.get("on-login").unwrap_or_default()),
        })
        .collect();
    let schedulers = read_schedulers(conn).await?;
    let clock = conn
        .execute(Command::new("/system/clock/print"))
        .await?
        .rows
        .into_iter()
        .next()
        .unwrap_or_default();
    // Mikhmon's sales records: counted so the report can say they stay.
    let sales = conn
        .execute(
            Command::new("/system/script/print")
                .query("comment=mikhmon")
                .proplist(&[".id"]),
        )
        .await?
        .rows
        .len();
    let offset = tz::router_offset(clock.get("gmt-offset"), clock.get("time-zone-name"));
    let now = Timestamp::now();
    let plan = plan::plan(
        &users.rows,
        &profiles,
        offset.as_ref().map(|o| o.0.secs()),
        now,
        &cfg.hotspot_profile_pattern,
    );
    let monitors = plan::monitor_actions(&schedulers, &plan);

    let mut text = String::new();
    report(
        &mut text,
        opts,
        &clock,
        offset.as_ref(),
        &plan,
        &users.unreadable,
        sales,
        &cfg.hotspot_profile_pattern,
    );
    emit(out, &mut text);

    let mut ok = true;
    if opts.apply && !plan.rewrites.is_empty() {
        ok &= apply_rewrites(conn, cfg, opts, &plan, now, out).await?;
    }
    ok &= schedulers_step(conn, opts, &monitors, out).await;
    Ok(ok)
}

/// Writes the export file, then the comments, then the state file record.
async fn apply_rewrites(
    conn: &Connection,
    cfg: &Config,
    opts: &ImportOptions,
    plan: &Plan,
    now: Timestamp,
    out: &mut dyn std::io::Write,
) -> Result<bool, ImportError> {
    let path = opts
        .export
        .clone()
        .unwrap_or_else(|| default_export_path(&cfg.state_path, now));
    let rows: Vec<CsvRow> = plan
        .rewrites
        .iter()
        .map(|r| CsvRow {
            id: r.id.to_string().into_bytes(),
            name: r.name.as_bytes().to_vec(),
            old_comment: r.old.as_bytes().to_vec(),
            new_comment: r.new.as_bytes().to_vec(),
        })
        .collect();
    // Before any router change, so every change can be undone even if this
    // run dies half way.
    write_new_file(&path, csv::write(&rows).as_bytes()).map_err(|e| {
        ImportError(format!(
            "cannot write the export file {}: {e}; nothing was changed",
            path.display()
        ))
    })?;
    let mut text = format!("export file: {}\n", path.display());
    emit(out, &mut text);

    let mut ok = true;
    let mut written = Vec::new();
    for r in &plan.rewrites {
        match set_comment_if(conn, r.id, &r.old, &r.new).await {
            Ok(()) => written.push(r),
            Err(e) => {
                ok = false;
                let _ = writeln!(text, "FAILED {} ({}): {e}", r.name, r.id);
            }
        }
    }
    let _ = writeln!(
        text,
        "written: {} of {} comments",
        written.len(),
        plan.rewrites.len()
    );
    emit(out, &mut text);

    let records: Vec<(Name, MikhmonImportRecord)> = written
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                MikhmonImportRecord {
                    id: r.id.0,
                    old_comment: r.old.as_bytes().to_vec(),
                    new_comment: r.new.as_bytes().to_vec(),
                    at: now.unix(),
                    export: path.display().to_string(),
                },
            )
        })
        .collect();
    let _ = writeln!(
        text,
        "state file: {}",
        record_in_state(&cfg.state_path, &records)
    );
    emit(out, &mut text);
    Ok(ok)
}

/// Sets a comment by `.id`, after checking that the user still has the
/// comment the plan was made from (a login between our read and our write
/// may have had Mikhmon's script replace it).
async fn set_comment_if(
    conn: &Connection,
    id: Id,
    expected: &Name,
    new: &Name,
) -> Result<(), String> {
    let current = conn
        .execute(
            Command::new(format!("{}/print", commands::users(Service::Hotspot)))
                .query(format!(".id={id}"))
                .proplist(&["comment"]),
        )
        .await
        .map_err(|e| e.to_string())?;
    let Some(row) = current.rows.first() else {
        return Err("user is gone".into());
    };
    if row.get("comment").unwrap_or_default() != expected.as_bytes() {
        return Err("comment changed since it was read; left alone".into());
    }
    conn.execute(commands::set_hotspot_comment(&id, new.as_bytes()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `--disable-schedulers` (only with `--apply`), or what it would do.
async fn schedulers_step(
    conn: &Connection,
    opts: &ImportOptions,
    monitors: &[(Scheduler, Name, MonitorAction)],
    out: &mut dyn std::io::Write,
) -> bool {
    let mut text = String::new();
    let mut ok = true;
    let _ = writeln!(
        text,
        "Mikhmon monitor schedulers (comment \"Monitor Profile <name>\"): {}",
        monitors.len()
    );
    for (s, profile, action) in monitors {
        let head = format!("  {} {} (profile {profile}):", s.id, s.name);
        let line = match action {
            MonitorAction::AlreadyDisabled => "disabled".to_owned(),
            MonitorAction::Keep { users } => format!(
                "enabled; kept: {users} user(s) of this profile stay with Mikhmon (skipped)"
            ),
            MonitorAction::Disable if !opts.disable_schedulers => {
                "enabled; add --disable-schedulers to disable it".to_owned()
            }
            MonitorAction::Disable if !opts.apply => "enabled; would disable".to_owned(),
            MonitorAction::Disable => {
                let cmd = Command::new("/system/scheduler/disable").attr(".id", s.id.to_string());
                match conn.execute(cmd).await {
                    Ok(_) => "disabled now".to_owned(),
                    Err(e) => {
                        ok = false;
                        format!("FAILED to disable: {e}")
                    }
                }
            }
        };
        let _ = writeln!(text, "{head} {line}");
    }
    emit(out, &mut text);
    ok
}

/// `--undo FILE`.
async fn undo(
    conn: &Connection,
    opts: &ImportOptions,
    file: &Path,
    out: &mut dyn std::io::Write,
) -> Result<bool, ImportError> {
    let bytes = crate::files::read_limited(file, MAX_EXPORT_BYTES)
        .map_err(|e| ImportError(format!("{}: {e}", file.display())))?;
    let rows = csv::read(&bytes).map_err(|e| ImportError(format!("{}: {e}", file.display())))?;
    let users = read_users(conn).await?;
    let (restores, skipped) = plan::plan_undo(&rows, &users.rows);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "undo of {} ({}):",
        file.display(),
        if opts.apply {
            "applying"
        } else {
            "dry run: nothing is written; add --apply to write"
        }
    );
    let _ = writeln!(
        text,
        "rows: {}; to restore: {}; skipped: {}",
        rows.len(),
        restores.len(),
        skipped.len()
    );
    examples(&mut text, opts.verbose, &restores, |text, r| {
        let _ = writeln!(text, "restore {} ({}): {}", r.name, r.id, r.comment);
    });
    examples(&mut text, opts.verbose, &skipped, skip_line);
    emit(out, &mut text);
    let mut ok = true;
    if opts.apply {
        let mut done = 0;
        for r in &restores {
            match set_comment_if(conn, r.id, &r.current, &r.comment).await {
                Ok(()) => done += 1,
                Err(e) => {
                    ok = false;
                    let _ = writeln!(text, "FAILED {} ({}): {e}", r.name, r.id);
                }
            }
        }
        let _ = writeln!(text, "restored: {done} of {}", restores.len());
        emit(out, &mut text);
    }
    Ok(ok)
}

struct Users {
    rows: Vec<User>,
    /// Users whose `.id` did not parse (never seen; reported, not touched).
    unreadable: Vec<Skip>,
}

async fn read_users(conn: &Connection) -> Result<Users, ImportError> {
    let reply = conn
        .execute(commands::print(
            commands::users(Service::Hotspot),
            &[".id", "name", "profile", "comment"],
        ))
        .await?;
    let mut users = Users {
        rows: Vec::with_capacity(reply.rows.len()),
        unreadable: Vec::new(),
    };
    for r in &reply.rows {
        let name = Name::new(r.get("name").unwrap_or_default());
        let profile = Name::new(r.get("profile").unwrap_or_default());
        match r.get(".id").and_then(Id::parse) {
            Some(id) => users.rows.push(User {
                id,
                name,
                profile,
                comment: Name::new(r.get("comment").unwrap_or_default()),
            }),
            None => users.unreadable.push(Skip {
                name,
                profile,
                reason: "unreadable .id".into(),
                mikhmon: false,
            }),
        }
    }
    Ok(users)
}

async fn read_schedulers(conn: &Connection) -> Result<Vec<Scheduler>, ImportError> {
    let reply = conn
        .execute(
            Command::new("/system/scheduler/print")
                .proplist(&[".id", "name", "comment", "disabled"]),
        )
        .await?;
    Ok(reply
        .rows
        .iter()
        .filter_map(|r| {
            Some(Scheduler {
                id: r.get(".id").and_then(Id::parse)?,
                name: Name::new(r.get("name").unwrap_or_default()),
                comment: Name::new(r.get("comment").unwrap_or_default()),
                disabled: matches!(r.get("disabled"), Some(b"true" | b"yes")),
            })
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn report(
    text: &mut String,
    opts: &ImportOptions,
    clock: &Attrs,
    offset: Option<&(crate::gmt_offset::GmtOffset, String)>,
    plan: &Plan,
    unreadable: &[Skip],
    sales: usize,
    pattern: &str,
) {
    let _ = writeln!(
        text,
        "import-mikhmon ({})",
        if opts.apply {
            "applying"
        } else {
            "dry run: nothing is written; add --apply to write"
        }
    );
    let zone = Name::new(clock.get("time-zone-name").unwrap_or_default());
    let gmt = Name::new(clock.get("gmt-offset").unwrap_or_default());
    match offset {
        Some((off, source)) => {
            let _ = writeln!(
                text,
                "router time zone: {zone}, gmt-offset {gmt}: using UTC{off} (from {source})"
            );
        }
        None => {
            let _ = writeln!(
                text,
                "router time zone: {zone}, gmt-offset {gmt}: UNKNOWN; used users are skipped"
            );
        }
    }
    let _ = writeln!(text, "Mikhmon profiles: {}", plan.profiles.len());
    for (name, meta) in &plan.profiles {
        match meta {
            Ok(m) => {
                let _ = writeln!(
                    text,
                    "  {name}: expiry mode {}, price {}, validity {}, selling price {}, lock {}",
                    m.mode,
                    Name::new(&m.price),
                    Name::new(&m.validity),
                    Name::new(&m.selling_price),
                    if m.lock { "Enable" } else { "Disable" }
                );
            }
            Err(e) => {
                let _ = writeln!(text, "  {name}: unreadable header: {e}");
            }
        }
    }
    let used = plan.rewrites.iter().filter(|r| r.used).count();
    let expired = plan.rewrites.iter().filter(|r| r.expired).count();
    let _ = writeln!(
        text,
        "users: {} to migrate ({used} used, {expired} of them already expired), {} skipped, {} already ours, {} not Mikhmon's",
        plan.rewrites.len(),
        plan.skipped.len() + unreadable.len(),
        plan.already_ours.len(),
        plan.others
    );
    examples(text, opts.verbose, &plan.rewrites, |text, r| {
        let _ = writeln!(
            text,
            "migrate {} ({}, profile {}): {} -> {}",
            r.name, r.id, r.profile, r.old, r.new
        );
    });
    let skipped: Vec<&Skip> = plan.skipped.iter().chain(unreadable).collect();
    examples(text, opts.verbose, &skipped, |text, s| skip_line(text, s));
    examples(text, opts.verbose, &plan.already_ours, |text, name| {
        let _ = writeln!(text, "already ours: {name}");
    });
    for p in &plan.unmanaged_profiles {
        let _ = writeln!(
            text,
            "WARNING: profile {p} does not match hotspot_profile_pattern {pattern:?}: \
             the agent will not activate or expire its users until the pattern covers it"
        );
    }
    if expired > 0 {
        let _ = writeln!(
            text,
            "note: {expired} migrated user(s) are past their Mikhmon expiry; the agent applies \
             expired_action to them at its next poll"
        );
    }
    let _ = writeln!(
        text,
        "Mikhmon sales records (/system/script, comment mikhmon): {sales}, left alone"
    );
}

fn skip_line(text: &mut String, s: &Skip) {
    let _ = writeln!(text, "skip {}: {}", s.name, s.reason);
}

/// How many lines of each kind (migrate, skip, already ours, restore) the
/// report shows without `--verbose`: a few examples, then a count.
const EXAMPLES: usize = 3;

/// The first [`EXAMPLES`] of `items` (all of them with `verbose`), then how
/// many were left out.
fn examples<T>(
    text: &mut String,
    verbose: bool,
    items: &[T],
    mut line: impl FnMut(&mut String, &T),
) {
    let shown = if verbose {
        items.len()
    } else {
        items.len().min(EXAMPLES)
    };
    for item in &items[..shown] {
        line(text, item);
    }
    if shown < items.len() {
        let _ = writeln!(
            text,
            "  ... and {} more like these (--verbose lists them all)",
            items.len() - shown
        );
    }
}

/// Writes `text` to `out` and clears it; a closed stdout is not a reason to
/// stop half way through writing the router.
fn emit(out: &mut dyn std::io::Write, text: &mut String) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    text.clear();
}

/// `<state dir>/mikhmon-import-<UTC time>.csv`.
fn default_export_path(state_path: &Path, now: Timestamp) -> PathBuf {
    let stamp: String = now
        .to_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let dir = state_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!("mikhmon-import-{stamp}.csv"))
}

/// Creates `path` (never overwriting: an older export may be the only way
/// back from an older import) and syncs it to disk.
fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Records the rewrites in the state file when it exists and is free.
fn record_in_state(path: &Path, records: &[(Name, MikhmonImportRecord)]) -> String {
    if records.is_empty() {
        return "nothing to record".into();
    }
    if !path.exists() {
        // Creating it here could leave a file the agent's user cannot open.
        return format!(
            "{} does not exist; the export file is the record",
            path.display()
        );
    }
    match Store::open(path).and_then(|s| s.record_mikhmon_import(records)) {
        Ok(()) => format!(
            "{} original comments recorded in {} (table mikhmon_import)",
            records.len(),
            path.display()
        ),
        Err(StoreError::InUse { .. }) => format!(
            "{} is in use by the running agent; the export file is the record",
            path.display()
        ),
        Err(e) => format!("{e}; the export file is the record"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_path_is_next_to_the_state_file() {
        let t = Timestamp::from_unix(1_706_702_400);
        assert_eq!(
            default_export_path(Path::new("/var/lib/mikrotik-edge/state.redb"), t),
            PathBuf::from("/var/lib/mikrotik-edge/mikhmon-import-20240131T120000Z.csv")
        );
        assert_eq!(
            default_export_path(Path::new("state.redb"), t),
            PathBuf::from("./mikhmon-import-20240131T120000Z.csv")
        );
    }

    #[test]
    fn state_records_and_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        let rec = MikhmonImportRecord {
            id: 1,
            old_comment: b"vc-1".to_vec(),
            new_comment: b"VOUCHER_SYSTEM|x".to_vec(),
            at: 5,
            export: "e.csv".into(),
        };
        let rows = vec![(Name::new(b"mk\xff"), rec.clone())];
        assert!(record_in_state(&path, &rows).contains("does not exist"));
        drop(Store::open(&path).expect("create"));
        assert!(record_in_state(&path, &rows).contains("recorded"));
        let store = Store::open(&path).expect("open");
        assert_eq!(
            store.mikhmon_import_record(b"mk\xff").expect("read"),
            Some(rec)
        );
        // The agent holds the lock: the CSV is the record.
        assert!(record_in_state(&path, &rows).contains("in use"));
    }
}
