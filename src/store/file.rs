//! The redb layer: tables, schema version, stream id and event numbering.
//!
//! Layout (schema version [`SCHEMA_VERSION`]):
//!
//! - `meta` (`&str -> u64`): `schema_version`; `last_seq`, the last event
//!   sequence number ever assigned; `started` (0/1); `router_boot` (unix
//!   seconds, two's complement) with `router_boot_set`; `acked_through`, the
//!   highest seq the central side confirmed (the `prev` of the first queued
//!   event); `outbox_bytes`, the sum of the queued event blobs' sizes, kept
//!   in the same transactions as the events so the outbox cap is one read.
//! - `meta_bytes` (`&str -> &[u8]`): `stream`, the random 16-byte id made
//!   with the file and carried in every event; `clock`, the postcard
//!   [`ClockLedger`](crate::monitor::ClockLedger) (elapsed-time checkpoint
//!   for clock trust; absent on a file that never ran a cycle).
//! - `sessions` (`&[u8] -> &[u8]`): one row per open session, keyed by
//!   service and active `.id`; `vouchers` (`&[u8] -> &[u8]`): one row per
//!   voucher with progress, keyed by the raw user name; `flagged`
//!   (`&[u8] -> u8`): users reported as `manual_user`; `usage`
//!   (`&[u8] -> &[u8]`): per managed hotspot user (raw name), the counter
//!   baseline that tells unseen sessions (version 3).
//! - `events` (`u64 -> &[u8]`): the outbox, postcard-encoded [`Event`]s
//!   keyed by sequence number.
//! - `mikhmon_import` (`&[u8] -> &[u8]`): written only by
//!   `import-mikhmon --apply`: per rewritten user (raw name), a postcard
//!   [`MikhmonImportRecord`] with the original comment. The agent never
//!   reads it, and a file without it is the same version, so it needs no
//!   schema bump.
//!
//! Every method does blocking file I/O; async code goes through
//! [`super::StoreHandle`], whose thread owns the [`Store`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{
    DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableHandle, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::outbox::{OutboxCap, enforce_in};
use super::sync::put_blobs;
use super::{CapReport, StateDelta, StoreError};
use crate::clock::Timestamp;
use crate::event::{Event, EventKind, EventRef, Service, StreamId};
use crate::monitor::{MonitorState, SessionKey, TrackedSession, UsageBaseline, VoucherProgress};
use crate::name::Name;
use crate::name_cache::NameCache;

/// The layout version this build reads and writes.
///
/// Bump it whenever a table changes or a stored type changes its serde
/// shape (postcard is not self-describing, so even adding a field makes old
/// blobs unreadable), and add a step to `migrate`. Version 1 was the
/// pre-release single-blob layout; it is refused with a clear error.
pub const SCHEMA_VERSION: u32 = 3;

/// The `meta` table keeps this type in every version, so any release can
/// read the schema version of any file.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const META_BYTES: TableDefinition<&str, &[u8]> = TableDefinition::new("meta_bytes");
pub(super) const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
pub(super) const VOUCHERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("vouchers");
const FLAGGED: TableDefinition<&[u8], u8> = TableDefinition::new("flagged");
const USAGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("usage");
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const MIKHMON_IMPORT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("mikhmon_import");

/// One user rewritten by `import-mikhmon`: enough to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MikhmonImportRecord {
    /// Router `.id` number (`*1A` is 0x1A).
    pub id: u64,
    pub old_comment: Vec<u8>,
    pub new_comment: Vec<u8>,
    /// When the import wrote it (Unix seconds).
    pub at: i64,
    /// The export file written alongside (for `--undo`).
    pub export: String,
}

pub(super) const KEY_SCHEMA: &str = "schema_version";
pub(super) const KEY_LAST_SEQ: &str = "last_seq";
pub(super) const KEY_ACKED: &str = "acked_through";
pub(super) const KEY_OUTBOX_BYTES: &str = "outbox_bytes";
const KEY_STARTED: &str = "started";
const KEY_BOOT: &str = "router_boot";
const KEY_BOOT_SET: &str = "router_boot_set";
const KEY_STREAM: &str = "stream";
const KEY_CLOCK: &str = "clock";

/// redb's default page cache is 1 GiB; the state file is small and the agent
/// runs on small boxes, so cap it hard. The cap covers a transaction's
/// dirty pages too (redb writes them back early past half of it), so it
/// also bounds a large commit (the first cycle at a busy site). At 256 KiB
/// a listen login's commit at 10,000 users now and then took 150 to 900 ms
/// (pages evicted and read back); at 512 KiB it stays in milliseconds.
const CACHE_BYTES: usize = 512 * 1024;

/// The open state file.
pub struct Store {
    pub(super) db: redb::Database,
    path: PathBuf,
    stream: StreamId,
    /// Enforced by every commit that appends events (set by the uploader).
    cap: Cell<Option<OutboxCap>>,
    /// What those enforcements did since the uploader last asked.
    cap_report: RefCell<Option<CapReport>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("stream", &self.stream)
            .finish()
    }
}

/// The most a file reaches while redb creates it, before its first commit:
/// redb 4 sizes a new file to about 70 KiB, then writes the header. A
/// larger file is never taken for an unfinished one.
const UNFINISHED_MAX_BYTES: u64 = 1024 * 1024;

/// Whether the file at `path` (of `len` bytes) is one redb began creating
/// and never finished. redb sizes a new file (zeros), writes its header
/// (in the first page) without the magic number, and writes the magic
/// number last. So a file whose magic-number bytes are zero and whose
/// every byte past the first page is zero holds no page of any table: no
/// transaction was ever committed to it, and it can be treated as empty.
/// Any other content (another program's file, a damaged real state file:
/// its tables are in later pages) is left alone, and `create` reports it.
pub(crate) fn never_finished(path: &Path, len: u64) -> std::io::Result<bool> {
    /// redb's magic number's length, at the start of the file.
    const MAGIC_LEN: usize = 9;
    /// redb's header lives in the first page (4 KiB, redb's page size).
    const HEADER_PAGE: usize = 4096;
    if len == 0 || len > UNFINISHED_MAX_BYTES {
        return Ok(false);
    }
    let bytes = std::fs::read(path)?;
    let zero = |b: &[u8]| b.iter().all(|&b| b == 0);
    Ok(zero(&bytes[..bytes.len().min(MAGIC_LEN)])
        && zero(bytes.get(HEADER_PAGE..).unwrap_or_default()))
}

impl Store {
    /// Opens (or creates) the state file, creating its directory if missing.
    ///
    /// A file left by a crash is repaired here, which reads the whole file;
    /// every open also verifies page checksums, so a file damaged outside
    /// redb is reported as an error instead of trusted. An existing empty
    /// file (a power cut on a fresh SD card, an operator's `> state.redb`)
    /// is initialised with a warning naming it: it gets a new stream id, so
    /// sequence numbers restart without ever being reused. So is a file
    /// whose creation was cut short (see `never_finished`): it cannot
    /// hold a committed transaction.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_as(path, None)
    }

    /// [`Store::open`]; a new file gets `stream` as its id when given (the
    /// id an agent that started on a full disk already used in memory).
    pub fn open_as(path: &Path, stream: Option<StreamId>) -> Result<Store, StoreError> {
        let fresh = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        match Store::open_inner(path, stream) {
            // A file this call began but could not finish (no space for its
            // header) is not a redb file: removed, so a retry starts clean.
            Err(e) if fresh && e.is_disk_full() => {
                let _ = std::fs::remove_file(path);
                Err(e)
            }
            r => r,
        }
    }

    fn open_inner(path: &Path, stream: Option<StreamId>) -> Result<Store, StoreError> {
        let io_err = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.len() == 0 => log::warn!(
                "state file {} exists but is empty (0 bytes): initialising a new state file; \
                 a new event stream starts and sessions online now are reported as seen at start",
                path.display()
            ),
            Ok(m) if m.is_file() && never_finished(path, m.len()).map_err(io_err)? => {
                log::warn!(
                    "state file {} was never finished ({} bytes without a redb header: \
                     the process creating it was stopped): initialising a new state file; \
                     a new event stream starts and sessions online now are reported as seen at start",
                    path.display(),
                    m.len()
                );
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(0))
                    .map_err(io_err)?;
            }
            _ => {}
        }
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|e| match e {
                // Both mean another process holds the lock; the second is a
                // different redb version in it.
                DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
                    StoreError::InUse {
                        path: path.to_path_buf(),
                    }
                }
                source => StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        let mut store = Store {
            db,
            path: path.to_path_buf(),
            stream: StreamId([0; 16]),
            cap: Cell::new(None),
            cap_report: RefCell::new(None),
        };
        store.stream = store.init_schema(stream)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// From now on every commit that appends events keeps the outbox under
    /// `max_bytes` in the same transaction (see `store::outbox`), never
    /// touching `seq <= protect_through`.
    pub fn set_outbox_cap(&self, max_bytes: u64, protect_through: u64) {
        self.cap.set(Some(OutboxCap {
            max_bytes,
            protect_through,
        }));
    }

    /// What the commits' cap enforcement did since the last call.
    pub fn take_cap_report(&self) -> Option<CapReport> {
        self.cap_report.borrow_mut().take()
    }

    /// Enforces the cap inside `txn` (after its events were appended).
    pub(super) fn cap_in(&self, txn: &WriteTransaction) -> Result<Option<CapReport>, StoreError> {
        match self.cap.get() {
            Some(cap) => enforce_in(txn, cap),
            None => Ok(None),
        }
    }

    /// Keeps a committed enforcement's report for [`Self::take_cap_report`].
    pub(super) fn note_cap(&self, report: Option<CapReport>) {
        if let Some(r) = report {
            let mut slot = self.cap_report.borrow_mut();
            *slot = Some(match slot.take() {
                Some(old) => old.merge(r),
                None => r,
            });
        }
    }

    /// This file's event stream id.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// Stamps a new file with the schema version and a stream id, refuses
    /// a newer one and migrates an older one, all in one transaction so a
    /// crash mid-migration leaves the old version intact.
    fn init_schema(&self, new_stream: Option<StreamId>) -> Result<StreamId, StoreError> {
        let txn = self.db.begin_write()?;
        let stream;
        {
            // Only `meta` is opened first: a newer schema may have changed the
            // other tables' types, and opening them would fail confusingly.
            let mut meta = txn.open_table(META)?;
            let found = meta.get(KEY_SCHEMA)?.map(|v| v.value());
            match found {
                None => {
                    // Without a version the data cannot be interpreted, so
                    // only an empty (new) file may be stamped.
                    let mut names = txn.list_tables()?;
                    if names.any(|t| t.name() != "meta") || meta.len()? > 0 {
                        return Err(StoreError::Corrupt {
                            what: "schema version",
                            reason: "missing in a file that holds data".into(),
                        });
                    }
                    meta.insert(KEY_SCHEMA, u64::from(SCHEMA_VERSION))?;
                }
                Some(raw) => {
                    let found = u32::try_from(raw).unwrap_or(u32::MAX);
                    if found > SCHEMA_VERSION {
                        return Err(StoreError::SchemaTooNew {
                            found,
                            supported: SCHEMA_VERSION,
                        });
                    }
                    if found < SCHEMA_VERSION {
                        for from in found..SCHEMA_VERSION {
                            migrate(from, &txn)?;
                        }
                        meta.insert(KEY_SCHEMA, u64::from(SCHEMA_VERSION))?;
                        log::info!(
                            "state file {}: migrated from schema version {found} to {SCHEMA_VERSION}",
                            self.path.display()
                        );
                    }
                }
            }
            let mut bytes = txn.open_table(META_BYTES)?;
            let existing = bytes.get(KEY_STREAM)?.map(|v| v.value().to_vec());
            stream = match existing {
                Some(raw) => {
                    StreamId(raw.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                        what: "stream id",
                        reason: format!("{} bytes, expected 16", raw.len()).into(),
                    })?)
                }
                None => {
                    let id = match new_stream {
                        Some(id) => id,
                        None => new_stream_id()?,
                    };
                    bytes.insert(KEY_STREAM, id.0.as_slice())?;
                    id
                }
            };
        }
        // Created here so read transactions can always open them.
        txn.open_table(SESSIONS)?;
        txn.open_table(VOUCHERS)?;
        txn.open_table(FLAGGED)?;
        {
            let events = txn.open_table(EVENTS)?;
            let mut meta = txn.open_table(META)?;
            // Files written before the counter existed: count once.
            if meta.get(KEY_OUTBOX_BYTES)?.is_none() {
                let mut total = 0u64;
                for row in events.iter()? {
                    let (_, blob) = row?;
                    total += blob.value().len() as u64;
                }
                meta.insert(KEY_OUTBOX_BYTES, total)?;
            }
        }
        txn.open_table(USAGE)?;
        txn.commit()?;
        Ok(stream)
    }

    /// The last committed monitor state; the default on a new file.
    pub fn load_state(&self) -> Result<MonitorState, StoreError> {
        let txn = self.db.begin_read()?;
        let mut state = MonitorState::default();
        // One copy of each name, as a running agent has (its rows and state
        // share them): decoded as they are, every session's user and
        // profile and every voucher's and baseline's key was its own
        // allocation, and a restart held each name two or three times
        // (900 KB more at 10,000 users).
        let mut names = NameCache::default();
        // Collected, then sorted once: the file's key order is not the
        // map's, and inserting one by one would move entries each time.
        let mut sessions = Vec::new();
        for row in txn.open_table(SESSIONS)?.iter()? {
            let (_, blob) = row?;
            let mut s: TrackedSession = decode("session", blob.value())?;
            for n in [
                &mut s.user,
                &mut s.session_id,
                &mut s.caller_id,
                &mut s.profile,
            ] {
                *n = names.get(n.as_bytes());
            }
            sessions.push(((s.service, s.active_id), s));
        }
        state.sessions = sessions.into_iter().collect();
        let mut vouchers = Vec::new();
        for row in txn.open_table(VOUCHERS)?.iter()? {
            let (key, blob) = row?;
            let p: VoucherProgress = decode("voucher", blob.value())?;
            vouchers.push((names.get(key.value()), p));
        }
        state.vouchers = vouchers.into_iter().collect();
        for row in txn.open_table(FLAGGED)?.iter()? {
            let (key, _) = row?;
            state.flagged_manual.insert(flag_key_decode(key.value())?);
        }
        let mut usage = Vec::new();
        for row in txn.open_table(USAGE)?.iter()? {
            let (key, blob) = row?;
            let b: UsageBaseline = decode("usage baseline", blob.value())?;
            usage.push((names.get(key.value()), b));
        }
        state.usage = usage.into_iter().collect();
        let meta = txn.open_table(META)?;
        let get = |k| -> Result<Option<u64>, StoreError> { Ok(meta.get(k)?.map(|v| v.value())) };
        state.started = get(KEY_STARTED)? == Some(1);
        if let Some(blob) = txn.open_table(META_BYTES)?.get(KEY_CLOCK)? {
            state.clock = decode("clock ledger", blob.value())?;
        }
        if get(KEY_BOOT_SET)? == Some(1) {
            state.router_boot = get(KEY_BOOT)?.map(|v| Timestamp::from_unix(v as i64));
        }
        Ok(state)
    }

    /// One write transaction: applies `delta`, numbers and stores `events`
    /// (continuing from the last seq ever assigned, never reused even after
    /// acks). Returns the committed events. Writes nothing at all (no fsync)
    /// when both are empty.
    pub fn commit(
        &self,
        delta: &StateDelta,
        events: impl IntoIterator<Item = (Timestamp, EventKind), IntoIter: ExactSizeIterator>,
    ) -> Result<Vec<Event>, StoreError> {
        let events = events.into_iter();
        if delta.is_empty() && events.len() == 0 {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write()?;
        let events = append(&txn, events)?;
        apply(&txn, delta)?;
        let cap = self.cap_in(&txn)?;
        txn.commit()?;
        self.note_cap(cap);
        Ok(events)
    }

    /// [`Store::commit`] of one poll's events, all at `at`, borrowed: the
    /// caller keeps its one copy (to log them once committed). Returns the
    /// first event's number (0 when there are none).
    pub fn commit_at(
        &self,
        delta: &StateDelta,
        at: Timestamp,
        events: &[EventKind],
    ) -> Result<u64, StoreError> {
        if delta.is_empty() && events.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write()?;
        let first = append_refs(&txn, events.iter().map(|kind| (at, kind)))?;
        apply(&txn, delta)?;
        let cap = self.cap_in(&txn)?;
        txn.commit()?;
        self.note_cap(cap);
        Ok(first)
    }

    /// One write transaction for what the store thread holds: `delta`
    /// applied, `events` numbered and stored, `blobs` written to the
    /// `sync` table, the outbox cap enforced. Returns the first event's
    /// number (0 when there are none). Writes nothing when all are empty.
    pub fn write_all(
        &self,
        delta: &StateDelta,
        events: &[(Timestamp, EventKind)],
        blobs: &[(&'static str, Vec<u8>)],
    ) -> Result<u64, StoreError> {
        if delta.is_empty() && events.is_empty() && blobs.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write()?;
        let first = append_refs(&txn, events.iter().map(|(at, kind)| (*at, kind)))?;
        apply(&txn, delta)?;
        put_blobs(&txn, blobs)?;
        let cap = self.cap_in(&txn)?;
        txn.commit()?;
        self.note_cap(cap);
        Ok(first)
    }

    /// Appends events without touching the state (router connection events).
    pub fn append_events(
        &self,
        events: Vec<(Timestamp, EventKind)>,
    ) -> Result<Vec<Event>, StoreError> {
        self.commit(&StateDelta::default(), events)
    }

    /// Queued events with `seq > after`, oldest first, at most `limit`.
    pub fn pending_events(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for entry in table.range::<u64>((Bound::Excluded(after), Bound::Unbounded))? {
            let (key, blob) = entry?;
            let event: Event = decode("queued event", blob.value())?;
            // The key is what acks and paging go by; a blob that disagrees
            // with it would be uploaded under the wrong number.
            if event.seq != key.value() {
                return Err(StoreError::Corrupt {
                    what: "queued event",
                    reason: format!(
                        "stored under seq {} but numbered {}",
                        key.value(),
                        event.seq
                    )
                    .into(),
                });
            }
            out.push(event);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes queued events with `seq <= up_to` and records `up_to` as
    /// `acked_through` (it never goes back); returns how many were deleted.
    pub fn ack_events(&self, up_to: u64) -> Result<usize, StoreError> {
        if up_to == 0 || up_to <= self.acked_through()? {
            return Ok(0);
        }
        let txn = self.db.begin_write()?;
        let removed = {
            let mut table = txn.open_table(EVENTS)?;
            let before = table.len()?;
            let mut bytes = 0u64;
            table.retain_in(..=up_to, |_, blob| {
                bytes += blob.len() as u64;
                false
            })?;
            let removed = before - table.len()?;
            let mut meta = txn.open_table(META)?;
            add_outbox_bytes(&mut meta, -(bytes as i128))?;
            meta.insert(KEY_ACKED, up_to)?;
            removed
        };
        txn.commit()?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// The highest seq the central side confirmed; 0 before the first ack.
    pub fn acked_through(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(KEY_ACKED)?.map_or(0, |v| v.value()))
    }

    /// Sum of the queued events' stored sizes.
    pub fn outbox_bytes(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(KEY_OUTBOX_BYTES)?.map_or(0, |v| v.value()))
    }

    /// How many events wait for upload.
    pub fn queued_events(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(EVENTS)?.len()?)
    }

    /// The oldest queued event, if any.
    pub fn oldest_event(&self) -> Result<Option<Event>, StoreError> {
        Ok(self.pending_events(0, 1)?.into_iter().next())
    }

    /// Records users rewritten by `import-mikhmon`, keyed by raw user name
    /// (a later import of the same user replaces its record), in one
    /// transaction.
    pub fn record_mikhmon_import(
        &self,
        rows: &[(Name, MikhmonImportRecord)],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(MIKHMON_IMPORT)?;
            let mut buf = Vec::new();
            for (name, record) in rows {
                encode_into("mikhmon import record", record, &mut buf)?;
                table.insert(name.as_bytes(), buf.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The `import-mikhmon` record of `name`, if any.
    pub fn mikhmon_import_record(
        &self,
        name: &[u8],
    ) -> Result<Option<MikhmonImportRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(MIKHMON_IMPORT) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match table.get(name)? {
            Some(blob) => Ok(Some(decode("mikhmon import record", blob.value())?)),
            None => Ok(None),
        }
    }

    /// The last sequence number ever assigned; 0 before the first event.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(KEY_LAST_SEQ)?.map_or(0, |v| v.value()))
    }
}

/// A fresh random stream id.
pub(super) fn new_stream_id() -> Result<StreamId, StoreError> {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| StoreError::Encode {
            what: "stream id",
            reason: "the system random number generator failed".into(),
        })?;
    Ok(StreamId(id))
}

/// Numbers and stores `events` inside `txn`, advancing `last_seq`.
pub(super) fn append(
    txn: &WriteTransaction,
    events: impl IntoIterator<Item = (Timestamp, EventKind)>,
) -> Result<Vec<Event>, StoreError> {
    let events: Vec<(Timestamp, EventKind)> = events.into_iter().collect();
    let first = append_refs(txn, events.iter().map(|(at, kind)| (*at, kind)))?;
    Ok(events
        .into_iter()
        .zip(first..)
        .map(|((at, kind), seq)| Event { seq, at, kind })
        .collect())
}

/// [`append`] of borrowed events; returns the first one's number (0 when
/// there are none), the rest following one by one.
pub(super) fn append_refs<'a>(
    txn: &WriteTransaction,
    events: impl ExactSizeIterator<Item = (Timestamp, &'a EventKind)>,
) -> Result<u64, StoreError> {
    if events.len() == 0 {
        return Ok(0);
    }
    let mut meta = txn.open_table(META)?;
    let mut table = txn.open_table(EVENTS)?;
    let mut seq = meta.get(KEY_LAST_SEQ)?.map_or(0, |v| v.value());
    let first = seq.saturating_add(1);
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    for (at, kind) in events {
        seq = seq.checked_add(1).ok_or(StoreError::Corrupt {
            what: "event sequence",
            reason: "last_seq is at u64::MAX".into(),
        })?;
        encode_into("event", &EventRef { seq, at, kind }, &mut buf)?;
        table.insert(seq, buf.as_slice())?;
        bytes += buf.len() as u64;
    }
    meta.insert(KEY_LAST_SEQ, seq)?;
    add_outbox_bytes(&mut meta, i128::from(bytes))?;
    Ok(first)
}

/// Adjusts the `outbox_bytes` counter; saturates at 0 rather than failing
/// (a counter off by a little must never stop the agent).
pub(super) fn add_outbox_bytes(
    meta: &mut redb::Table<'_, &'static str, u64>,
    delta: i128,
) -> Result<(), StoreError> {
    let now = meta.get(KEY_OUTBOX_BYTES)?.map_or(0, |v| v.value());
    let new = (i128::from(now) + delta).clamp(0, i128::from(u64::MAX)) as u64;
    meta.insert(KEY_OUTBOX_BYTES, new)?;
    Ok(())
}

/// Writes the changed rows.
fn apply(txn: &WriteTransaction, d: &StateDelta) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    if !d.sessions_put.is_empty() || !d.sessions_del.is_empty() {
        let mut t = txn.open_table(SESSIONS)?;
        for s in d.sessions() {
            encode_into("session", s, &mut buf)?;
            t.insert(
                session_key(&(s.service, s.active_id)).as_slice(),
                buf.as_slice(),
            )?;
        }
        for k in &d.sessions_del {
            t.remove(session_key(k).as_slice())?;
        }
    }
    if !d.vouchers_put.is_empty() || !d.vouchers_del.is_empty() {
        let mut t = txn.open_table(VOUCHERS)?;
        for name in &d.vouchers_put {
            let Some(p) = d.state.vouchers.get(name) else {
                continue;
            };
            encode_into("voucher", p, &mut buf)?;
            t.insert(name.as_bytes(), buf.as_slice())?;
        }
        for name in &d.vouchers_del {
            t.remove(name.as_bytes())?;
        }
    }
    if !d.flagged_put.is_empty() || !d.flagged_del.is_empty() {
        let mut t = txn.open_table(FLAGGED)?;
        for k in &d.flagged_put {
            t.insert(flag_key(k).as_slice(), 1)?;
        }
        for k in &d.flagged_del {
            t.remove(flag_key(k).as_slice())?;
        }
    }
    if !d.usage_put.is_empty() || !d.usage_del.is_empty() {
        let mut t = txn.open_table(USAGE)?;
        for name in &d.usage_put {
            let Some(b) = d.state.usage.get(name) else {
                continue;
            };
            encode_into("usage baseline", b, &mut buf)?;
            t.insert(name.as_bytes(), buf.as_slice())?;
        }
        for name in &d.usage_del {
            t.remove(name.as_bytes())?;
        }
    }
    if d.router_boot.is_some() || d.started.is_some() {
        let mut meta = txn.open_table(META)?;
        if let Some(boot) = d.router_boot {
            meta.insert(KEY_BOOT_SET, u64::from(boot.is_some()))?;
            meta.insert(KEY_BOOT, boot.map_or(0, |t| t.unix() as u64))?;
        }
        if let Some(started) = d.started {
            meta.insert(KEY_STARTED, u64::from(started))?;
        }
    }
    if d.clock {
        encode_into("clock ledger", &d.state.clock, &mut buf)?;
        txn.open_table(META_BYTES)?
            .insert(KEY_CLOCK, buf.as_slice())?;
    }
    Ok(())
}

fn service_byte(s: Service) -> u8 {
    match s {
        Service::Hotspot => 0,
        Service::Pppoe => 1,
    }
}

fn service_from_byte(b: u8) -> Result<Service, StoreError> {
    match b {
        0 => Ok(Service::Hotspot),
        1 => Ok(Service::Pppoe),
        other => Err(StoreError::Corrupt {
            what: "row key",
            reason: format!("unknown service byte {other}").into(),
        }),
    }
}

fn session_key(k: &SessionKey) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = service_byte(k.0);
    out[1..].copy_from_slice(&(k.1).0.to_be_bytes());
    out
}

fn flag_key((service, name): &(Service, Name)) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + name.as_bytes().len());
    out.push(service_byte(*service));
    out.extend_from_slice(name.as_bytes());
    out
}

fn flag_key_decode(raw: &[u8]) -> Result<(Service, Name), StoreError> {
    let (first, rest) = raw.split_first().ok_or(StoreError::Corrupt {
        what: "flagged user key",
        reason: "empty".into(),
    })?;
    Ok((service_from_byte(*first)?, Name::new(rest)))
}

/// Schema migration hook: turns a file at version `from` into `from + 1`,
/// inside the open transaction (which also records the new version).
///
/// To add version 3: bump [`SCHEMA_VERSION`], keep copies of the old types
/// in a `v2` module (postcard needs the exact old shape to decode), and add
/// an arm here, `2 => migrate_v2_to_v3(txn)`, that rewrites each old row.
fn migrate(from: u32, txn: &WriteTransaction) -> Result<(), StoreError> {
    match from {
        2 => super::v2::migrate_v2_to_v3(txn),
        _ => Err(StoreError::Migrate {
            from,
            reason: "no migration from this version is known (version 1 was a pre-release \
                     layout); move the file aside to start a new one"
                .into(),
        }),
    }
}

/// One value as a fresh postcard blob.
pub(super) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::new();
    encode_into(what, value, &mut buf)?;
    Ok(buf)
}

pub(super) fn encode_into<T: Serialize>(
    what: &'static str,
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    buf.clear();
    postcard::to_io(value, &mut *buf).map_err(|e| StoreError::Encode {
        what,
        reason: e.to_string(),
    })?;
    Ok(())
}

/// Decodes a whole blob; trailing bytes mean it is not what we wrote.
pub(super) fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(StoreError::Corrupt {
            what,
            reason: format!("{} unexpected trailing bytes", rest.len()).into(),
        }),
        Err(e) => Err(StoreError::Corrupt {
            what,
            reason: crate::cause::Cause::of(e),
        }),
    }
}
