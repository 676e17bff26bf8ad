//! Crash consistency of the state file, in the style of redb's own tests: a
//! child process commits state and events in a loop and is killed with
//! SIGKILL at random moments; after every kill the file must open and the
//! state must agree exactly with the event queue.
//!
//! The child is this test binary itself, re-executed with [`CHILD_ENV`] set,
//! so no helper binary is needed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mikrotik_edge::clock::Timestamp;
use mikrotik_edge::event::{EventKind, RouterState};
use mikrotik_edge::monitor::{MonitorState, VoucherProgress};
use mikrotik_edge::name::Name;
use mikrotik_edge::store::{StateDelta, Store};

/// Set to the state file path in the child; its presence selects the writer loop.
const CHILD_ENV: &str = "MIKROTIK_EDGE_STORE_CRASH_CHILD";
/// The run's seed (decimal or `0x` hex): printed by every run, set it to
/// replay one. Kill timings also depend on the machine's speed, so a
/// replay repeats the sizes and the schedule, not every byte.
const SEED_ENV: &str = "MIKROTIK_EDGE_TEST_SEED";
/// The child's own seed, derived from the run's seed and the round.
const CHILD_SEED_ENV: &str = "MIKROTIK_EDGE_STORE_CRASH_CHILD_SEED";
const TEST_NAME: &str = "state_and_events_survive_sigkill";
const ROUNDS: usize = 6;

/// xorshift64: enough randomness for kill timing and sizes without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The seed from `var`, or a fresh one from the clock.
    fn seed_from(var: &str) -> u64 {
        match std::env::var(var) {
            Ok(s) => {
                let s = s.trim();
                let parsed = match s.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => s.parse(),
                };
                parsed.unwrap_or_else(|e| panic!("{var}={s:?}: not a u64 seed: {e}"))
            }
            Err(_) => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                nanos ^ u64::from(std::process::id())
            }
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn state_and_events_survive_sigkill() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        writer_loop(Path::new(&path));
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    let seed = Rng::seed_from(SEED_ENV);
    eprintln!("{TEST_NAME}: seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng::new(seed);
    let mut counts = Vec::new();
    for round in 0..ROUNDS {
        let child_seed = seed ^ (round as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut child = self_command()
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .env(CHILD_SEED_ENV, child_seed.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        std::thread::sleep(Duration::from_millis((50 + rng.below(251)) * slow_factor()));
        // The writer never ends by itself; an exit means it failed.
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("round {round}: writer exited early with {status}");
        }
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");

        let store = Store::open(&path).unwrap_or_else(|e| {
            panic!("round {round}: reopen after kill: {e} (replay with {SEED_ENV}={seed})")
        });
        let state = store.load_state().expect("load state");
        let events = store.pending_events(0, usize::MAX).expect("pending");
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        let want: Vec<u64> = (1..=events.len() as u64).collect();
        assert_eq!(
            seqs, want,
            "round {round}: seqs must be 1..=n without gaps (replay with {SEED_ENV}={seed})"
        );
        assert_eq!(store.last_seq().expect("last_seq"), events.len() as u64);
        assert_eq!(store.queued_events().expect("queued"), events.len() as u64);
        assert_eq!(
            committed_count(&state),
            events.len() as u64,
            "round {round}: state and events must commit atomically (replay with {SEED_ENV}={seed})"
        );
        counts.push(events.len());
    }
    eprintln!("events after each kill: {counts:?}");
    assert!(
        counts.last().is_some_and(|n| *n > 0),
        "the writer never committed anything: {counts:?}"
    );
}

/// The writer's running count of events, kept in the state as the
/// activation time of a voucher row named `count`.
fn committed_count(state: &MonitorState) -> u64 {
    state
        .vouchers
        .get(&Name::from("count"))
        .and_then(|p| p.activation)
        .map_or(0, |(t, _)| t.unix() as u64)
}

/// Commits forever: each transaction adds 1–4 events, bumps the state's
/// count by the same number and changes another row, so a torn commit would
/// show as a mismatch.
fn writer_loop(path: &Path) -> ! {
    let store = Store::open(path).expect("child: open");
    let mut state = store.load_state().expect("child: load state");
    let mut rng = Rng::new(Rng::seed_from(CHILD_SEED_ENV));
    loop {
        let old = state.clone();
        let count = committed_count(&state);
        let n = 1 + rng.below(4);
        // Varying sizes, up to a few pages, make the B-trees split and merge.
        let events: Vec<_> = (0..n)
            .map(|i| {
                let reason = "x".repeat(rng.below(3_000) as usize);
                let kind = EventKind::Router {
                    state: RouterState::Connected,
                    reason,
                };
                (Timestamp::from_unix((count + i) as i64), kind)
            })
            .collect();
        let total = Timestamp::from_unix((count + n) as i64);
        state.vouchers.insert(
            Name::from("count"),
            VoucherProgress {
                activation: Some((total, total)),
                ..Default::default()
            },
        );
        let user = Name::from(format!("v{}", rng.below(64)).as_str());
        if rng.below(4) == 0 {
            state.vouchers.remove(&user);
        } else {
            state.vouchers.insert(
                user,
                VoucherProgress {
                    activation: Some((total, total.plus_hours(24))),
                    ..Default::default()
                },
            );
        }
        let delta = StateDelta::between(&old, &std::sync::Arc::new(state.clone()));
        store.commit(&delta, events).expect("child: commit");
    }
}

/// This test binary as a command; under `MIKROTIK_EDGE_TEST_RUNNER` (e.g.
/// qemu-aarch64-static for the ARM build) the runner must start it.
fn self_command() -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    match std::env::var_os("MIKROTIK_EDGE_TEST_RUNNER") {
        Some(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(exe);
            c
        }
        _ => Command::new(exe),
    }
}

/// Emulated runs are several times slower; give the writer time to work.
fn slow_factor() -> u64 {
    match std::env::var_os("MIKROTIK_EDGE_TEST_RUNNER") {
        Some(r) if !r.is_empty() => 5,
        _ => 1,
    }
}
