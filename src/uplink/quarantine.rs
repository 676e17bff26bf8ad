//! `mikrotik-edge quarantine list|resend`: the events the central side
//! refused as malformed (see the uploader's narrowing down), read from or
//! re-queued into the state file. The file is locked while the agent runs,
//! so both need it stopped.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Config;
use crate::store::Store;

/// What `quarantine` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineAction {
    List,
    Resend,
}

/// Runs one action, printing to `out`; failures go to stderr.
pub fn quarantine_cli(cfg: &Config, action: QuarantineAction, out: &mut impl Write) -> ExitCode {
    match run(cfg, action, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mikrotik-edge: quarantine: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    cfg: &Config,
    action: QuarantineAction,
    out: &mut impl Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&cfg.state_path)?;
    match action {
        QuarantineAction::List => {
            for q in store.quarantined()? {
                let line = serde_json::json!({
                    "seq": q.event.seq,
                    "reason": q.reason,
                    "quarantined_at": q.quarantined_at.to_rfc3339(),
                    "event": q.event.to_json(&cfg.site_id, store.stream()),
                });
                writeln!(out, "{line}")?;
            }
        }
        QuarantineAction::Resend => {
            let events = store.resend_quarantined()?;
            for e in &events {
                log::info!("event {}", e.to_log_json(&cfg.site_id, store.stream()));
            }
            writeln!(out, "{} events queued again", events.len())?;
        }
    }
    Ok(())
}
