//! The store thread: owns the [`Store`] and serves the async side.
//!
//! Requests travel over a bounded channel (back-pressure instead of an
//! unbounded queue of pending writes) and each carries a oneshot for the
//! reply. The runtime thread only ever awaits; commits, fsyncs and reads
//! happen here. Requests are served in order, so events are numbered in the
//! order their causes were committed.
//!
//! A full disk degrades, never stops: a commit that fails for lack of
//! space is kept in memory ([`Backlog`]) and answered as done, so the
//! agent goes on acting (expiries included) and serving; a `disk_full`
//! alert is queued; the handle redb refuses after an I/O error is reopened;
//! and every request retries the write (at most every [`RETRY`]) until it
//! goes through, in one transaction, in order.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::backlog::Backlog;
use super::{CapReport, StateDelta, Store, StoreError};
use crate::clock::Timestamp;
use crate::event::{Event, EventKind, EventRef, StreamId};
use crate::monitor::MonitorState;

/// Requests waiting for the thread; senders wait when it is full.
const QUEUE: usize = 16;

/// While writes wait in memory, how often one is retried (each retry that
/// fails also reopens the file, which reads it whole).
pub const RETRY: Duration = Duration::from_secs(2);

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What a commit numbered. The events themselves stay on the store thread,
/// which logs them (`event {json}`) and drops them: a first cycle with
/// thousands of logins must not hold them twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    pub first_seq: u64,
    pub count: usize,
}

enum Request {
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
}

/// The async handle to the state file. Cheap to clone; the thread ends when
/// every handle is dropped or [`close`](Self::close) is called.
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
                        let mut server = Server::new(path, site_id, stream, None);
                        server.degraded = true;
                        server
                            .backlog
                            .push(None, vec![disk_full_alert(&e)], Vec::new());
                        let _ = ready_tx.send(Ok((stream, MonitorState::default())));
                        server
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

/// The thread's side: the file when it is open, and what it could not take.
struct Server {
    path: PathBuf,
    site_id: String,
    stream: StreamId,
    store: Option<Store>,
    backlog: Backlog,
    /// The last cap the uploader set, re-applied to a reopened file.
    cap: Option<(u64, u64)>,
    /// A write failed for lack of space and has not gone through since.
    degraded: bool,
    /// The file turned out to hold another stream: nothing more is served.
    stopped: bool,
    next_retry: Instant,
}

impl Server {
    fn new(path: PathBuf, site_id: String, stream: StreamId, store: Option<Store>) -> Server {
        Server {
            path,
            site_id,
            stream,
            store,
            backlog: Backlog::default(),
            cap: None,
            degraded: false,
            stopped: false,
            next_retry: Instant::now() + RETRY,
        }
    }

    /// Serves one request; false when the thread must stop.
    fn serve(&mut self, req: Request) -> bool {
        self.retry();
        match req {
            Request::LoadState { reply } => {
                let r = self.read(|s| s.load_state());
                let _ = reply.send(r);
            }
            Request::CommitAt {
                delta,
                at,
                events,
                reply,
            } => {
                if let Some(store) = self.store.as_ref().filter(|_| self.backlog.is_empty()) {
                    match store.commit_at(&delta, at, &events) {
                        Ok(first_seq) => {
                            for (kind, seq) in events.iter().zip(first_seq..) {
                                let e = EventRef { seq, at, kind };
                                log::info!("event {}", e.to_json(&self.site_id, self.stream));
                            }
                            self.log_outbox(!events.is_empty());
                            drop(delta);
                            let _ = reply.send(Ok(Committed {
                                first_seq,
                                count: events.len(),
                            }));
                            return true;
                        }
                        Err(e) if e.is_disk_full() => self.degrade(&e),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            return true;
                        }
                    }
                }
                let count = events.len();
                let events = events.into_iter().map(|k| (at, k)).collect();
                self.backlog.push(Some(*delta), events, Vec::new());
                let _ = reply.send(Ok(Committed {
                    first_seq: 0,
                    count,
                }));
            }
            Request::Commit {
                delta,
                events,
                reply,
            } => {
                let r = self.write(Some(*delta), events, Vec::new());
                let _ = reply.send(r);
            }
            Request::SaveSync {
                blobs,
                events,
                reply,
            } => {
                let r = self.write(None, events, blobs);
                let _ = reply.send(r);
            }
            Request::Pending {
                after,
                limit,
                reply,
            } => {
                let r = match &self.store {
                    Some(_) => self.read(|s| s.pending_events(after, limit)),
                    // Nothing is durable, so nothing may be sent.
                    None => Ok(Vec::new()),
                };
                let _ = reply.send(r);
            }
            Request::Ack { up_to, reply } => {
                let r = self.read(|s| s.ack_events(up_to));
                let _ = reply.send(r);
            }
            Request::Stats { reply } => {
                let in_memory = self.backlog.events.len() as u64;
                let r = match &self.store {
                    Some(_) => self.read(|store| {
                        Ok(OutboxStats {
                            pending: store.queued_events()? + in_memory,
                            oldest_at: store.oldest_event()?.map(|e| e.at),
                            last_seq: store.last_seq()?,
                            acked_through: store.acked_through()?,
                            bytes: store.outbox_bytes()?,
                        })
                    }),
                    None => Ok(OutboxStats {
                        pending: in_memory,
                        ..OutboxStats::default()
                    }),
                };
                let _ = reply.send(r);
            }
            Request::EnforceCap {
                max_bytes,
                protect_through,
                reply,
            } => {
                self.cap = Some((max_bytes, protect_through));
                let r = match &self.store {
                    Some(_) => self.read(|store| {
                        store.set_outbox_cap(max_bytes, protect_through);
                        let now = store.enforce_outbox_cap(max_bytes, protect_through)?;
                        Ok(match (store.take_cap_report(), now) {
                            (Some(a), Some(b)) => Some(a.merge(b)),
                            (a, b) => a.or(b),
                        })
                    }),
                    None => Ok(None),
                };
                let _ = reply.send(r);
            }
            Request::Quarantine {
                seqs,
                reason,
                alert,
                reply,
            } => {
                let r = self.read(|s| s.quarantine(&seqs, &reason, alert));
                if let Ok(Some(e)) = &r {
                    log::info!("event {}", e.to_json(&self.site_id, self.stream));
                }
                let _ = reply.send(r);
            }
            Request::LoadSync { key, reply } => {
                let r = match self.backlog.blob(key) {
                    Some(blob) => Ok(Some(blob.to_vec())),
                    None if self.store.is_none() => Ok(None),
                    None => self.read(|s| s.load_sync(key)),
                };
                let _ = reply.send(r);
            }
        }
        !self.stopped
    }

    /// A request on the open file; a full disk's error reopens it (redb
    /// refuses all I/O on a handle that saw one).
    fn read<T>(
        &mut self,
        f: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(store) = &self.store else {
            return Err(StoreError::NotOpen {
                path: self.path.clone(),
            });
        };
        let r = f(store);
        if let Err(e) = &r
            && e.is_disk_full()
        {
            self.reopen();
        }
        r
    }

    /// Commits, or keeps in memory when the disk is full (or writes are
    /// already waiting there: order is kept).
    fn write(
        &mut self,
        delta: Option<StateDelta>,
        events: Vec<(Timestamp, EventKind)>,
        blobs: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<Committed, StoreError> {
        let count = events.len();
        if let Some(store) = self.store.as_ref().filter(|_| self.backlog.is_empty()) {
            let empty = StateDelta::default();
            match store.write_all(delta.as_ref().unwrap_or(&empty), &events, &blobs) {
                Ok(first_seq) => {
                    for ((at, kind), seq) in events.iter().zip(first_seq..) {
                        let e = EventRef { seq, at: *at, kind };
                        log::info!("event {}", e.to_json(&self.site_id, self.stream));
                    }
                    self.log_outbox(count > 0);
                    return Ok(Committed { first_seq, count });
                }
                Err(e) if e.is_disk_full() => self.degrade(&e),
                Err(e) => return Err(e),
            }
        }
        self.backlog.push(delta, events, blobs);
        // Not numbered yet: numbers are given when the events are written.
        Ok(Committed {
            first_seq: 0,
            count,
        })
    }

    /// After a write failed for lack of space: alert once, reopen.
    fn degrade(&mut self, e: &StoreError) {
        if !self.degraded {
            self.degraded = true;
            log::error!(
                "{e}; running from memory: the agent keeps monitoring, acting and serving, and \
                 what it cannot write now is written once space returns (retried every {} s)",
                RETRY.as_secs()
            );
            self.backlog
                .push(None, vec![disk_full_alert(e)], Vec::new());
        }
        self.reopen();
        self.next_retry = Instant::now() + RETRY;
    }

    /// Drops the handle (refused after an I/O error) and opens the file
    /// again; without it, reads find nothing until a retry opens it.
    fn reopen(&mut self) {
        self.store = None;
        self.open();
    }

    fn open(&mut self) {
        match Store::open_as(&self.path, Some(self.stream)) {
            Ok(store) if store.stream() != self.stream => {
                // A file that appeared meanwhile with its own stream: our
                // events belong to another stream. Stop; a restart reads it.
                log::error!(
                    "state file {} now holds stream {}, not {}: stopping the store (restart the \
                     agent); events kept in memory since the disk filled are lost",
                    self.path.display(),
                    store.stream(),
                    self.stream
                );
                self.backlog = Backlog::default();
                self.stopped = true;
            }
            Ok(store) => {
                if let Some((max, protect)) = self.cap {
                    store.set_outbox_cap(max, protect);
                }
                self.store = Some(store);
            }
            Err(e) => log::debug!("state file still not open: {e}"),
        }
    }

    /// Writes what waits in memory, at most every [`RETRY`].
    fn retry(&mut self) {
        if (self.backlog.is_empty() && self.store.is_some())
            || Instant::now() < self.next_retry
            || self.stopped
        {
            return;
        }
        self.next_retry = Instant::now() + RETRY;
        if self.store.is_none() {
            self.open();
        }
        let Some(store) = &self.store else { return };
        if self.backlog.is_empty() {
            return;
        }
        let delta = self.backlog.delta.take().unwrap_or_default();
        let blobs = std::mem::take(&mut self.backlog.blobs);
        let events = self.backlog.events_to_write(Timestamp::now());
        match store.write_all(&delta, events, &blobs) {
            Ok(first_seq) => {
                for ((at, kind), seq) in events.iter().zip(first_seq..) {
                    let e = EventRef { seq, at: *at, kind };
                    log::info!("event {}", e.to_json(&self.site_id, self.stream));
                }
                log::warn!(
                    "state file {} writable again: {} events and the state kept in memory written",
                    self.path.display(),
                    events.len()
                );
                self.backlog = Backlog::default();
                self.degraded = false;
                self.log_outbox(true);
            }
            Err(e) => {
                log::debug!("state file still not writable: {e}");
                self.backlog.delta = Some(delta);
                self.backlog.blobs = blobs;
                if e.is_disk_full() {
                    self.reopen();
                }
            }
        }
    }

    /// The outbox size after a commit that appended events (debug: the
    /// cap's tests read it).
    fn log_outbox(&self, appended: bool) {
        if !appended || !log::log_enabled!(log::Level::Debug) || self.cap.is_none() {
            return;
        }
        if let Some(Ok(bytes)) = self.store.as_ref().map(Store::outbox_bytes) {
            log::debug!("outbox: {bytes} bytes after commit");
        }
    }

    /// At the end: one last try to write what waits in memory.
    fn shutdown(&mut self) {
        if self.backlog.is_empty() {
            return;
        }
        self.next_retry = Instant::now();
        self.retry();
        if !self.backlog.is_empty() {
            log::error!(
                "stopping with {} events and state changes not written to {} (disk full); \
                 they are lost",
                self.backlog.events.len(),
                self.path.display()
            );
        }
    }
}

/// The `disk_full` alert, logged like every alert (it reaches the central
/// side with the rest once written; the webhook does not get it).
fn disk_full_alert(e: &StoreError) -> (Timestamp, EventKind) {
    let message = format!("{e}; running from memory until space returns");
    log::warn!("alert disk_full: {message}");
    (
        Timestamp::now(),
        EventKind::Alert {
            name: "disk_full".into(),
            message,
        },
    )
}
