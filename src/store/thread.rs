//! The store thread: owns the [`Store`] and serves the async side.
//!
//! Requests travel over a bounded channel (back-pressure instead of an
//! unbounded queue of pending writes) and each carries a oneshot for the
//! reply. The runtime thread only ever awaits; commits, fsyncs and reads
//! happen here. Requests are served in order, so events are numbered in the
//! order their causes were committed.
//!
//! The requests are served by [`Server`] (server.rs), which also keeps a
//! full disk from stopping the agent.

use std::path::Path;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::server::{RETRY, Server};
use super::{CapReport, StateDelta, Store, StoreError};
use crate::clock::Timestamp;
use crate::event::{Event, EventKind, StreamId};
use crate::monitor::MonitorState;

/// Requests waiting for the thread; senders wait when it is full.
const QUEUE: usize = 16;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What a commit numbered. The events themselves stay on the store thread,
/// which logs them (`event {json}`) and drops them: a first cycle with
/// thousands of logins must not hold them twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    pub first_seq: u64,
    pub count: usize,
}

pub(super) enum Request {
    Commit {
        /// Boxed: a delta is several row lists, far larger than the other
        /// requests, and every queued request would pay for its size.
        delta: Box<StateDelta>,
        events: Vec<(Timestamp, EventKind)>,
        reply: Reply<Committed>,
    },
    CommitAt {
        delta: Box<StateDelta>,
        at: Timestamp,
        events: Vec<EventKind>,
        reply: Reply<Committed>,
    },
    Pending {
        after: u64,
        limit: usize,
        reply: Reply<Vec<Event>>,
    },
    Ack {
        up_to: u64,
        reply: Reply<usize>,
    },
    Stats {
        reply: Reply<OutboxStats>,
    },
    EnforceCap {
        max_bytes: u64,
        protect_through: u64,
        reply: Reply<Option<CapReport>>,
    },
    SaveSync {
        blobs: Vec<(&'static str, Vec<u8>)>,
        events: Vec<(Timestamp, EventKind)>,
        reply: Reply<Committed>,
    },
    LoadSync {
        key: &'static str,
        reply: Reply<Option<Vec<u8>>>,
    },
    LoadState {
        reply: Reply<MonitorState>,
    },
    Quarantine {
        seqs: Vec<u64>,
        reason: String,
        alert: bool,
        reply: Reply<Option<Event>>,
    },
}

/// What waits in the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: u64,
    pub oldest_at: Option<Timestamp>,
    pub last_seq: u64,
    /// The highest seq the central side confirmed.
    pub acked_through: u64,
    /// Sum of the queued events' stored sizes.
    pub bytes: u64,
    /// Events this thread added to the outbox since it started, from every
    /// source (monitor, sync, user API, alerts), whether written to the file
    /// or held in memory while the disk is full.
    pub queued_since_start: u64,
}

/// The async handle to the state file. Cheap to clone; the thread ends when
/// every handle is dropped ([`StoreThread::join`] waits for that).
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Request>,
    stream: StreamId,
}

/// Joins the store thread; see [`StoreHandle::open`].
pub struct StoreThread {
    thread: Option<JoinHandle<()>>,
}

impl StoreThread {
    /// Waits (on a blocking thread) until every queued request is done.
    /// Call after dropping the handles: a commit in flight is finished,
    /// never cut short.
    pub async fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl StoreHandle {
    /// Opens the state file on a new thread and loads the monitor state
    /// there. Returns the handle, the thread to join at exit, and the state.
    /// `site_id` goes into the logged events.
    pub async fn open(
        path: &Path,
        site_id: &str,
    ) -> Result<(StoreHandle, StoreThread, MonitorState), StoreError> {
        let path = path.to_path_buf();
        let site_id = site_id.to_owned();
        let (tx, mut rx) = mpsc::channel::<Request>(QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                let opened = Store::open(&path).and_then(|s| {
                    let state = s.load_state()?;
                    Ok((s, state))
                });
                let mut server = match opened {
                    Ok((store, state)) => {
                        let _ = ready_tx.send(Ok((store.stream(), state)));
                        Server::new(path, site_id, store.stream(), Some(store))
                    }
                    Err(e) if e.is_disk_full() => {
                        // Not even an empty file fits: run from memory with
                        // a stream id of our own, given to the file once it
                        // can be created.
                        let stream = match super::file::new_stream_id() {
                            Ok(s) => s,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        log::error!(
                            "{e}; running from memory: sessions, vouchers and events are kept in \
                             memory and written once the file can be created (retried every {} s)",
                            RETRY.as_secs()
                        );
                        let _ = ready_tx.send(Ok((stream, MonitorState::default())));
                        Server::in_memory(path, site_id, stream, &e)
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Some(req) = rx.blocking_recv() {
                    if !server.serve(req) {
                        return;
                    }
                }
                server.shutdown();
            })
            .map_err(|source| StoreError::Io {
                path: std::path::PathBuf::from("<store thread>"),
                source,
            })?;
        let mut joiner = StoreThread {
            thread: Some(thread),
        };
        match ready_rx.await {
            Ok(Ok((stream, state))) => Ok((StoreHandle { tx, stream }, joiner, state)),
            Ok(Err(e)) => {
                joiner.join().await;
                Err(e)
            }
            Err(_) => {
                joiner.thread.take();
                Err(StoreError::Closed)
            }
        }
    }

    /// This state file's event stream id.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// Applies `delta` and appends `events` in one transaction; returns the
    /// numbered events. Nothing is written when both are empty.
    pub async fn commit(
        &self,
        delta: StateDelta,
        events: Vec<(Timestamp, EventKind)>,
    ) -> Result<Committed, StoreError> {
        self.call(|reply| Request::Commit {
            delta: Box::new(delta),
            events,
            reply,
        })
        .await
    }

    /// [`commit`](Self::commit) for events that all happened at `at`: the
    /// list is moved to the store thread as it is (a first cycle's
    /// thousands of events are not copied to pair each with its time).
    pub async fn commit_at(
        &self,
        delta: StateDelta,
        at: Timestamp,
        events: Vec<EventKind>,
    ) -> Result<Committed, StoreError> {
        self.call(|reply| Request::CommitAt {
            delta: Box::new(delta),
            at,
            events,
            reply,
        })
        .await
    }

    /// Appends events without touching the state.
    pub async fn append(
        &self,
        events: Vec<(Timestamp, EventKind)>,
    ) -> Result<Committed, StoreError> {
        self.commit(StateDelta::default(), events).await
    }

    /// Queued events with `seq > after`, oldest first, at most `limit`.
    pub async fn pending(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.call(|reply| Request::Pending {
            after,
            limit,
            reply,
        })
        .await
    }

    /// Removes events with `seq <= up_to` (they reached the central side).
    pub async fn ack(&self, up_to: u64) -> Result<usize, StoreError> {
        self.call(|reply| Request::Ack { up_to, reply }).await
    }

    /// Compacts or drops queued events when the outbox is over
    /// `max_bytes`, never touching `seq <= protect_through`; see
    /// [`Store::enforce_outbox_cap`].
    pub async fn enforce_cap(
        &self,
        max_bytes: u64,
        protect_through: u64,
    ) -> Result<Option<CapReport>, StoreError> {
        self.call(|reply| Request::EnforceCap {
            max_bytes,
            protect_through,
            reply,
        })
        .await
    }

    pub async fn stats(&self) -> Result<OutboxStats, StoreError> {
        self.call(|reply| Request::Stats { reply }).await
    }

    /// Writes reconciliation blobs (see `store::sync`) and appends events
    /// in one transaction.
    pub async fn save_sync(
        &self,
        blobs: Vec<(&'static str, Vec<u8>)>,
        events: Vec<(Timestamp, EventKind)>,
    ) -> Result<Committed, StoreError> {
        self.call(|reply| Request::SaveSync {
            blobs,
            events,
            reply,
        })
        .await
    }

    /// A reconciliation blob.
    pub async fn load_sync(&self, key: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(|reply| Request::LoadSync { key, reply }).await
    }

    /// The monitor state as committed: what the agent goes back to when a
    /// commit of a state it had already updated in place failed.
    pub async fn load_state(&self) -> Result<MonitorState, StoreError> {
        self.call(|reply| Request::LoadState { reply }).await
    }

    /// Moves queued events the central side refused as malformed to the
    /// quarantine, with an `event_quarantined` event when `alert`; see
    /// [`Store::quarantine`].
    pub async fn quarantine(
        &self,
        seqs: Vec<u64>,
        reason: String,
        alert: bool,
    ) -> Result<Option<Event>, StoreError> {
        self.call(|reply| Request::Quarantine {
            seqs,
            reason,
            alert,
            reply,
        })
        .await
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}
