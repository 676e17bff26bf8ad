//! Many router commands over the one connection with a bounded number in
//! flight: each is sent with its own `.tag` (see [`crate::client`]), so the
//! router works on up to `max_in_flight` at once and answers them in any
//! order. No connection per user, no fixed sleep: the next command leaves
//! as soon as one answer arrives. Commands are grouped per user; a group
//! runs in order (disable before kick) and stops at its first failure,
//! which never stops the other groups.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinSet;

use crate::client::{ClientError, Router};
use crate::proto::Command;

/// One group: its key (handed back with the outcome) and its commands.
pub struct Group<K> {
    pub key: K,
    pub commands: Vec<Command>,
}

/// A group's outcome: `Ok` when every command succeeded, else the first
/// failure (the rest of the group was not sent).
pub type Outcome = Result<(), ClientError>;

/// What a run measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    pub groups: usize,
    pub commands: usize,
    /// The most commands that were sent and not yet answered at once.
    pub max_in_flight: usize,
}

/// Runs `groups` with at most `max_in_flight` commands outstanding; calls
/// `on_done` for each group as it finishes (in completion order).
pub async fn run_groups<K: Send + 'static>(
    router: &Router,
    groups: Vec<Group<K>>,
    max_in_flight: usize,
    mut on_done: impl FnMut(K, Outcome),
) -> RunStats {
    let limit = max_in_flight.max(1);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut stats = RunStats {
        groups: groups.len(),
        ..RunStats::default()
    };
    let mut set: JoinSet<(K, Outcome, usize)> = JoinSet::new();
    let mut pending = groups.into_iter();
    loop {
        // One task per group and at most `limit` tasks: each task has at
        // most one command outstanding, so this bounds the commands.
        while set.len() < limit {
            let Some(group) = pending.next() else { break };
            let router = router.clone();
            let in_flight = in_flight.clone();
            let peak = peak.clone();
            set.spawn(async move {
                let mut sent = 0;
                for cmd in group.commands {
                    sent += 1;
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let r = router.execute(cmd).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    if let Err(e) = r {
                        return (group.key, Err(e), sent);
                    }
                }
                (group.key, Ok(()), sent)
            });
        }
        match set.join_next().await {
            None => break,
            Some(Ok((key, outcome, sent))) => {
                stats.commands += sent;
                on_done(key, outcome);
            }
            // A task cannot panic on router data; if one did, its group's
            // key is lost with it and the next run re-plans it.
            Some(Err(e)) => log::error!("router command task failed: {e}"),
        }
    }
    stats.max_in_flight = peak.load(Ordering::SeqCst);
    stats
}
