//! The store thread's side of each request (see thread.rs for the handle).
//!
//! A full disk degrades, never stops: a commit that fails for lack of
//! space is kept in memory ([`Backlog`]) and answered as done, so the
//! agent goes on acting (expiries included) and serving; a `disk_full`
//! alert is queued; the handle redb refuses after an I/O error is reopened;
//! and every request retries the write (at most every [`RETRY`]) until it
//! goes through, in one transaction, in order.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::backlog::Backlog;
use super::thread::{Committed, OutboxStats, Request};
use super::{CapReport, StateDelta, Store, StoreError};
use crate::clock::Timestamp;
use crate::event::{EventKind, EventRef, StreamId};

/// While writes wait in memory, how often one is retried (each retry that
/// fails also reopens the file, which reads it whole).
pub const RETRY: Duration = Duration::from_secs(2);

/// The thread's side: the file when it is open, and what it could not take.
pub(super) struct Server {
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
    /// Events accepted into the outbox since the thread started.
    queued_since_start: u64,
}

impl Server {
    pub(super) fn new(
        path: PathBuf,
        site_id: String,
        stream: StreamId,
        store: Option<Store>,
    ) -> Server {
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
            queued_since_start: 0,
        }
    }

    /// A thread whose file could not be opened for lack of space: from
    /// memory, with a `disk_full` alert queued.
    pub(super) fn in_memory(
        path: PathBuf,
        site_id: String,
        stream: StreamId,
        e: &StoreError,
    ) -> Server {
        let mut server = Server::new(path, site_id, stream, None);
        server.degraded = true;
        server
            .backlog
            .push(None, vec![disk_full_alert(e)], Vec::new());
        server.queued_since_start = 1;
        server
    }

    /// Serves one request; false when the thread must stop.
    pub(super) fn serve(&mut self, req: Request) -> bool {
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
                let r = self.commit_at(delta, at, events);
                let _ = reply.send(r);
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
                let r = self.stats();
                let _ = reply.send(r);
            }
            Request::EnforceCap {
                max_bytes,
                protect_through,
                reply,
            } => {
                let r = self.enforce_cap(max_bytes, protect_through);
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
                    log::info!("event {}", e.to_log_json(&self.site_id, self.stream));
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

    /// Commits a state change with its events, logging each event; on a
    /// full disk (or with a backlog already waiting) keeps it in memory and
    /// answers as done (`first_seq` 0: not yet numbered).
    fn commit_at(
        &mut self,
        delta: Box<StateDelta>,
        at: Timestamp,
        events: Vec<EventKind>,
    ) -> Result<Committed, StoreError> {
        if let Some(store) = self.store.as_ref().filter(|_| self.backlog.is_empty()) {
            match store.commit_at(&delta, at, &events) {
                Ok(first_seq) => {
                    for (kind, seq) in events.iter().zip(first_seq..) {
                        let e = EventRef { seq, at, kind };
                        log::info!("event {}", e.to_log_json(&self.site_id, self.stream));
                    }
                    self.log_outbox(!events.is_empty());
                    self.queued_since_start += events.len() as u64;
                    drop(delta);
                    return Ok(Committed {
                        first_seq,
                        count: events.len(),
                    });
                }
                Err(e) if e.is_disk_full() => self.degrade(&e),
                Err(e) => return Err(e),
            }
        }
        let count = events.len();
        self.queued_since_start += count as u64;
        let events = events.into_iter().map(|k| (at, k)).collect();
        self.backlog.push(Some(*delta), events, Vec::new());
        Ok(Committed {
            first_seq: 0,
            count,
        })
    }

    /// The outbox figures, events held in memory included.
    fn stats(&mut self) -> Result<OutboxStats, StoreError> {
        let in_memory = self.backlog.events.len() as u64;
        let queued_since_start = self.queued_since_start;
        match &self.store {
            Some(_) => self.read(|store| {
                Ok(OutboxStats {
                    pending: store.queued_events()? + in_memory,
                    oldest_at: store.oldest_event()?.map(|e| e.at),
                    last_seq: store.last_seq()?,
                    acked_through: store.acked_through()?,
                    bytes: store.outbox_bytes()?,
                    queued_since_start,
                })
            }),
            None => Ok(OutboxStats {
                pending: in_memory,
                queued_since_start,
                ..OutboxStats::default()
            }),
        }
    }

    /// Sets the outbox cap (kept for commits to come) and enforces it now;
    /// what it dropped or compacted, if anything.
    fn enforce_cap(
        &mut self,
        max_bytes: u64,
        protect_through: u64,
    ) -> Result<Option<CapReport>, StoreError> {
        self.cap = Some((max_bytes, protect_through));
        match &self.store {
            Some(_) => self.read(|store| {
                store.set_outbox_cap(max_bytes, protect_through);
                let now = store.enforce_outbox_cap(max_bytes, protect_through)?;
                Ok(match (store.take_cap_report(), now) {
                    (Some(a), Some(b)) => Some(a.merge(b)),
                    (a, b) => a.or(b),
                })
            }),
            None => Ok(None),
        }
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
                        log::info!("event {}", e.to_log_json(&self.site_id, self.stream));
                    }
                    self.log_outbox(count > 0);
                    self.queued_since_start += count as u64;
                    return Ok(Committed { first_seq, count });
                }
                Err(e) if e.is_disk_full() => self.degrade(&e),
                Err(e) => return Err(e),
            }
        }
        self.queued_since_start += count as u64;
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
            self.queued_since_start += 1;
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
                    log::info!("event {}", e.to_log_json(&self.site_id, self.stream));
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
    pub(super) fn shutdown(&mut self) {
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
