//! `outbox-fill STATE_PATH N`: appends N realistic events (logins, usage,
//! logouts, voucher activations) to a state file's outbox, for the upload
//! benchmark in scripts/bench.sh. Built with the `sim` feature only; never
//! part of the shipped agent.

use std::path::PathBuf;
use std::process::ExitCode;

use mikrotik_edge::clock::Timestamp;
use mikrotik_edge::event::{EventKind, LogoutReason, Service, SessionRef};
use mikrotik_edge::name::{Id, Mac, Name};
use mikrotik_edge::store::Store;

/// Events per write transaction: large enough to be quick, small enough
/// to keep memory flat.
const CHUNK: u64 = 2_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: outbox-fill STATE_PATH N");
        return ExitCode::from(2);
    };
    let store = match Store::open(&PathBuf::from(path)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("outbox-fill: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = Timestamp::now();
    let mut done = 0u64;
    while done < n {
        let chunk: Vec<_> = (done..n.min(done + CHUNK))
            .map(|i| (now, event(i)))
            .collect();
        done += chunk.len() as u64;
        if let Err(e) = store.append_events(chunk) {
            eprintln!("outbox-fill: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{done} events queued in {path}");
    ExitCode::SUCCESS
}

/// Cycles through one session's life: login, three usage updates, logout,
/// and a voucher activation.
fn event(i: u64) -> EventKind {
    let user = Name::new(format!("WIFI-{:06}", i / 6));
    let session = SessionRef {
        service: Service::Hotspot,
        user: user.clone(),
        active_id: Id(i / 6 + 1),
        session_id: Name::empty(),
    };
    let bytes = Some(i * 1000);
    match i % 6 {
        0 => EventKind::Login {
            session,
            address: Some(std::net::IpAddr::from([10, 5, (i >> 8) as u8, i as u8])),
            mac: Mac::parse(b"AA:BB:CC:00:00:01"),
            caller_id: Name::empty(),
            login_by: Name::new("http-chap"),
            profile: Name::new("voucher-1h"),
            seen_at_start: false,
        },
        1..=3 => EventKind::Usage {
            session,
            bytes_in: bytes,
            bytes_out: bytes,
            uptime_secs: i,
            unseen: false,
        },
        4 => EventKind::Logout {
            session,
            reason: LogoutReason::Gone,
            bytes_in: bytes,
            bytes_out: bytes,
            uptime_secs: i,
        },
        _ => EventKind::VoucherActivated {
            user,
            batch_id: Name::new("BATCH-001"),
            valid_hours: mikrotik_edge::valid_hours::ValidHours::from_hours(1),
            first_login_at: Timestamp::now(),
            expires_at: Timestamp::now().plus_secs(3600),
            provisional: false,
            mac: None,
            estimated: false,
            comment: Name::new("VOUCHER_SYSTEM|BATCH-001|5000|4000|1|v1|2026-01-01|bench||"),
        },
    }
}
