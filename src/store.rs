//! The state file: one redb database holding what the agent must not forget
//! across restarts.
//!
//! Layout (schema version [`SCHEMA_VERSION`]):
//!
//! - table `meta` (`&str -> u64`): `schema_version`, and `last_seq`, the
//!   last event sequence number ever assigned (0 before the first event).
//! - table `state` (`&str -> &[u8]`): `monitor`, the postcard-encoded
//!   [`MonitorState`] (managed users, open sessions, voucher progress).
//! - table `events` (`u64 -> &[u8]`): the upload queue, postcard-encoded
//!   [`Event`]s keyed by their sequence number.
//!
//! Each poll cycle is one write transaction ([`Store::commit`]): the new
//! state and the events that led to it are committed together or not at
//! all, so after a crash (even `kill -9`) the agent resumes from a state that
//! matches its queue exactly, without re-reporting or losing events.
//!
//! Every method does blocking file I/O (a commit waits for `fsync`); async
//! callers should run them on a blocking thread.

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{
    DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::event::{Event, EventKind};
use crate::monitor::state::MonitorState;

/// The layout version this build reads and writes.
///
/// Bump it whenever a table changes or [`MonitorState`] / [`Event`] change
/// their serde shape (postcard is not self-describing, so even adding a field
/// makes old blobs unreadable), and add a step to [`migrate`].
pub const SCHEMA_VERSION: u32 = 1;

/// The `meta` table keeps this type in every version, so any release can
/// read the schema version of any file.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

const KEY_SCHEMA: &str = "schema_version";
const KEY_LAST_SEQ: &str = "last_seq";
const KEY_MONITOR: &str = "monitor";

/// redb's default page cache is 1 GiB; the state file is small and the agent
/// runs on small boxes, so cap it.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Why a state file operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The file could not be created or opened as a redb database.
    Open { path: PathBuf, reason: String },
    /// Another process (or another `Store` in this one) holds the file's lock.
    InUse { path: PathBuf },
    /// redb failed: I/O error, disk full, or damage redb itself detected.
    Storage(String),
    /// A stored value does not decode.
    ///
    /// The agent must not discard the file by itself: it may hold events not
    /// yet uploaded. The driver logs this and refuses to start, asking the
    /// operator to move the file aside (and keep it for inspection).
    Corrupt { what: &'static str, reason: String },
    /// A value could not be encoded (should not happen for our types).
    Encode { what: &'static str, reason: String },
    /// The file was written by a newer release; refusing it keeps that
    /// release's data intact for a later upgrade.
    SchemaTooNew { found: u32, supported: u32 },
    /// The file has an older schema that this build cannot migrate.
    Migrate { from: u32, reason: String },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open { path, reason } => {
                write!(f, "state file {}: {reason}", path.display())
            }
            StoreError::InUse { path } => write!(
                f,
                "state file {} is in use by another process (is another mikrotik-edge running?)",
                path.display()
            ),
            StoreError::Storage(reason) => write!(f, "state file: {reason}"),
            StoreError::Corrupt { what, reason } => {
                write!(f, "state file: {what} is corrupt: {reason}")
            }
            StoreError::Encode { what, reason } => {
                write!(f, "state file: cannot encode {what}: {reason}")
            }
            StoreError::SchemaTooNew { found, supported } => write!(
                f,
                "state file: schema version {found} is newer than this mikrotik-edge supports \
                 ({supported}); it was written by a newer release"
            ),
            StoreError::Migrate { from, reason } => {
                write!(
                    f,
                    "state file: cannot migrate from schema version {from}: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<redb::TransactionError> for StoreError {
    fn from(err: redb::TransactionError) -> Self {
        StoreError::Storage(err.to_string())
    }
}

impl From<redb::TableError> for StoreError {
    fn from(err: redb::TableError) -> Self {
        StoreError::Storage(err.to_string())
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(err: redb::StorageError) -> Self {
        StoreError::Storage(err.to_string())
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(err: redb::CommitError) -> Self {
        StoreError::Storage(err.to_string())
    }
}

/// The open state file. Methods take `&self`; redb serialises writers.
pub struct Store {
    db: redb::Database,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the state file, creating its directory if missing.
    ///
    /// A file left by a crash is repaired here, which reads the whole file;
    /// every open also verifies page checksums, so a file damaged outside
    /// redb is reported as an error instead of trusted.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_err(format!("cannot create directory {}: {e}", dir.display())))?;
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
                other => open_err(other.to_string()),
            })?;
        let store = Store {
            db,
            path: path.to_path_buf(),
        };
        store.init_schema()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stamps a new file with the schema version, refuses a newer one and
    /// migrates an older one, all in one transaction so a crash mid-migration
    /// leaves the old version intact.
    fn init_schema(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            // Only `meta` is opened first: a newer schema may have changed the
            // other tables' types, and opening them would fail confusingly.
            let mut meta = txn.open_table(META)?;
            let found = meta.get(KEY_SCHEMA)?.map(|v| v.value());
            match found {
                None => {
                    // Without a version the data cannot be interpreted, so
                    // only an empty (new) file may be stamped.
                    let empty =
                        txn.open_table(STATE)?.is_empty()? && txn.open_table(EVENTS)?.is_empty()?;
                    if !empty {
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
        }
        // Created here so read transactions can always open them.
        txn.open_table(STATE)?;
        txn.open_table(EVENTS)?;
        txn.commit()?;
        Ok(())
    }

    /// The last committed monitor state; the default on a new file.
    pub fn load_state(&self) -> Result<MonitorState, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STATE)?;
        match table.get(KEY_MONITOR)? {
            None => Ok(MonitorState::default()),
            Some(blob) => decode("monitor state", blob.value()),
        }
    }

    /// One write transaction: assigns consecutive seq numbers (continuing
    /// from the last ever assigned, never reused even after acks), stores the
    /// events, replaces the state. Returns the committed events.
    pub fn commit(
        &self,
        state: &MonitorState,
        events: Vec<(Timestamp, EventKind)>,
    ) -> Result<Vec<Event>, StoreError> {
        let blob = encode("monitor state", state)?;
        let txn = self.db.begin_write()?;
        let events = append(&txn, events)?;
        txn.open_table(STATE)?
            .insert(KEY_MONITOR, blob.as_slice())?;
        txn.commit()?;
        Ok(events)
    }

    /// Appends events without touching the state (router connection events).
    pub fn append_events(
        &self,
        events: Vec<(Timestamp, EventKind)>,
    ) -> Result<Vec<Event>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write()?;
        let events = append(&txn, events)?;
        txn.commit()?;
        Ok(events)
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
                    ),
                });
            }
            out.push(event);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes queued events with `seq <= up_to`; returns how many.
    pub fn ack_events(&self, up_to: u64) -> Result<usize, StoreError> {
        if up_to == 0 {
            return Ok(0);
        }
        let txn = self.db.begin_write()?;
        let removed = {
            let mut table = txn.open_table(EVENTS)?;
            let before = table.len()?;
            table.retain_in(..=up_to, |_, _| false)?;
            before - table.len()?
        };
        txn.commit()?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// How many events wait for upload.
    pub fn queued_events(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(EVENTS)?.len()?)
    }

    /// The last sequence number ever assigned; 0 before the first event.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(KEY_LAST_SEQ)?.map_or(0, |v| v.value()))
    }
}

/// Numbers and stores `events` inside `txn`, advancing `last_seq`.
fn append(
    txn: &WriteTransaction,
    events: Vec<(Timestamp, EventKind)>,
) -> Result<Vec<Event>, StoreError> {
    let mut meta = txn.open_table(META)?;
    let mut table = txn.open_table(EVENTS)?;
    let mut seq = meta.get(KEY_LAST_SEQ)?.map_or(0, |v| v.value());
    let mut out = Vec::with_capacity(events.len());
    for (at, kind) in events {
        seq = seq.checked_add(1).ok_or(StoreError::Corrupt {
            what: "event sequence",
            reason: "last_seq is at u64::MAX".into(),
        })?;
        let event = Event { seq, at, kind };
        table.insert(seq, encode("event", &event)?.as_slice())?;
        out.push(event);
    }
    meta.insert(KEY_LAST_SEQ, seq)?;
    Ok(out)
}

/// Schema migration hook: turns a file at version `from` into `from + 1`,
/// inside the open transaction (which also records the new version).
///
/// Version 1 is the only one so far. To add version 2: bump
/// [`SCHEMA_VERSION`], keep copies of the old types in a `v1` module (postcard
/// needs the exact old shape to decode), and add an arm here,
/// `1 => migrate_v1_to_v2(txn)`, that reads each old blob with the `v1` types
/// and rewrites it in the new shape.
fn migrate(from: u32, _txn: &WriteTransaction) -> Result<(), StoreError> {
    Err(StoreError::Migrate {
        from,
        reason: "no migration from this version is known".into(),
    })
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Encode {
        what,
        reason: e.to_string(),
    })
}

/// Decodes a whole blob; trailing bytes mean it is not what we wrote.
fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(StoreError::Corrupt {
            what,
            reason: format!("{} unexpected trailing bytes", rest.len()),
        }),
        Err(e) => Err(StoreError::Corrupt {
            what,
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LogoutReason, RouterState, Service, SessionRef};
    use crate::monitor::state::{TrackedSession, VoucherProgress};
    use proptest::prelude::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_unix(secs)
    }

    fn router(reason: &str) -> EventKind {
        EventKind::Router {
            state: RouterState::Connected,
            reason: reason.into(),
        }
    }

    fn events(n: usize) -> Vec<(Timestamp, EventKind)> {
        (0..n)
            .map(|i| (ts(i as i64), router(&format!("e{i}"))))
            .collect()
    }

    fn seqs(events: &[Event]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    fn sample_state() -> MonitorState {
        let mut s = MonitorState::default();
        s.sessions.insert(
            (Service::Hotspot, "*1A".into()),
            TrackedSession {
                service: Service::Hotspot,
                user: "v-abc".into(),
                active_id: "*1A".into(),
                session_id: String::new(),
                address: "10.5.50.7".into(),
                mac: "AA:BB:CC:DD:EE:FF".into(),
                caller_id: String::new(),
                uptime_secs: 3_600,
                bytes_in: Some(1 << 40),
                bytes_out: None,
                last_report: ts(1_700_000_000),
            },
        );
        s.vouchers.insert(
            "v-abc".into(),
            VoucherProgress {
                activation: Some((ts(1_700_000_000), ts(1_700_086_400))),
                expired_for: None,
                enforced: false,
            },
        );
        s.vouchers.insert(
            "v-old".into(),
            VoucherProgress {
                activation: None,
                expired_for: Some(ts(-5)),
                enforced: true,
            },
        );
        s.flagged_manual.insert((Service::Pppoe, "bob".into()));
        s.cycles = 42;
        s
    }

    fn tmp() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        // A missing subdirectory checks that open() creates it.
        let path = dir.path().join("sub").join("state.redb");
        (dir, path)
    }

    fn put_raw<K: redb::Key + 'static>(
        store: &Store,
        def: TableDefinition<K, &[u8]>,
        key: K::SelfType<'_>,
        bytes: &[u8],
    ) {
        let txn = store.db.begin_write().expect("begin");
        txn.open_table(def)
            .expect("table")
            .insert(key, bytes)
            .expect("insert");
        txn.commit().expect("commit");
    }

    #[test]
    fn new_file_has_schema_1_and_defaults() {
        let (_dir, path) = tmp();
        let store = Store::open(&path).expect("open");
        let txn = store.db.begin_read().expect("read");
        let meta = txn.open_table(META).expect("meta");
        let v = meta.get(KEY_SCHEMA).expect("get").map(|g| g.value());
        assert_eq!(v, Some(u64::from(SCHEMA_VERSION)));
        assert_eq!(SCHEMA_VERSION, 1);
        assert_eq!(store.load_state().expect("state"), MonitorState::default());
        assert_eq!(store.last_seq().expect("seq"), 0);
        assert_eq!(store.queued_events().expect("queued"), 0);
        assert!(store.pending_events(0, 10).expect("pending").is_empty());
    }

    #[test]
    fn commit_numbers_events_and_continues() {
        let (_dir, path) = tmp();
        let store = Store::open(&path).expect("open");
        let first = store
            .commit(&MonitorState::default(), events(3))
            .expect("c1");
        assert_eq!(seqs(&first), [1, 2, 3]);
        assert_eq!(first[1].kind, router("e1"));
        assert_eq!(first[2].at, ts(2));
        let second = store
            .commit(&MonitorState::default(), events(2))
            .expect("c2");
        assert_eq!(seqs(&second), [4, 5]);
        let none = store
            .commit(&MonitorState::default(), Vec::new())
            .expect("c3");
        assert!(none.is_empty());
        let appended = store.append_events(events(1)).expect("append");
        assert_eq!(seqs(&appended), [6]);
        assert_eq!(store.last_seq().expect("seq"), 6);
        assert_eq!(store.queued_events().expect("queued"), 6);
        let all = store.pending_events(0, 100).expect("pending");
        assert_eq!(all[..3], first[..]);
        assert_eq!(all[3..5], second[..]);
    }

    #[test]
    fn state_round_trips_across_reopen() {
        let (_dir, path) = tmp();
        let state = sample_state();
        {
            let store = Store::open(&path).expect("open");
            store.commit(&state, events(1)).expect("commit");
            assert_eq!(store.load_state().expect("load"), state);
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.load_state().expect("load"), state);
    }

    #[test]
    fn append_events_leaves_state_alone() {
        let (_dir, path) = tmp();
        let store = Store::open(&path).expect("open");
        let state = sample_state();
        store.commit(&state, Vec::new()).expect("commit");
        store.append_events(events(2)).expect("append");
        assert_eq!(store.load_state().expect("load"), state);
    }

    #[test]
    fn pending_events_pages_in_seq_order() {
        let (_dir, path) = tmp();
        let store = Store::open(&path).expect("open");
        store
            .commit(&MonitorState::default(), events(7))
            .expect("commit");
        let mut after = 0;
        let mut pages = Vec::new();
        loop {
            let page = store.pending_events(after, 3).expect("page");
            let Some(last) = page.last() else { break };
            after = last.seq;
            pages.push(seqs(&page));
        }
        assert_eq!(pages, [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
        assert!(store.pending_events(0, 0).expect("zero").is_empty());
        assert!(store.pending_events(u64::MAX, 5).expect("max").is_empty());
    }

    #[test]
    fn ack_deletes_and_seq_is_never_reused_across_reopen() {
        let (_dir, path) = tmp();
        {
            let store = Store::open(&path).expect("open");
            store
                .commit(&MonitorState::default(), events(5))
                .expect("commit");
            assert_eq!(store.ack_events(3).expect("ack"), 3);
            assert_eq!(store.ack_events(3).expect("ack again"), 0);
            assert_eq!(seqs(&store.pending_events(0, 10).expect("p")), [4, 5]);
            assert_eq!(store.ack_events(5).expect("ack all"), 2);
            assert_eq!(store.queued_events().expect("queued"), 0);
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.last_seq().expect("seq"), 5);
        let next = store.append_events(events(2)).expect("append");
        assert_eq!(seqs(&next), [6, 7]);
        assert_eq!(store.ack_events(0).expect("ack 0"), 0);
        assert_eq!(store.ack_events(u64::MAX).expect("ack max"), 2);
    }

    #[test]
    fn newer_schema_is_refused() {
        let (_dir, path) = tmp();
        {
            let store = Store::open(&path).expect("open");
            let txn = store.db.begin_write().expect("begin");
            txn.open_table(META)
                .expect("meta")
                .insert(KEY_SCHEMA, u64::from(SCHEMA_VERSION) + 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let err = Store::open(&path).expect_err("must refuse");
        assert_eq!(
            err,
            StoreError::SchemaTooNew {
                found: 2,
                supported: 1
            }
        );
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn unknown_older_schema_is_refused() {
        let (_dir, path) = tmp();
        {
            let store = Store::open(&path).expect("open");
            let txn = store.db.begin_write().expect("begin");
            txn.open_table(META)
                .expect("meta")
                .insert(KEY_SCHEMA, 0)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let err = Store::open(&path).expect_err("must refuse");
        assert!(matches!(err, StoreError::Migrate { from: 0, .. }), "{err}");
    }

    #[test]
    fn corrupt_state_blob_is_an_error_not_a_panic() {
        let (_dir, path) = tmp();
        let store = Store::open(&path).expect("open");
        put_raw(&store, STATE, KEY_MONITOR, &[0xff; 12]);
        let err = store.load_state().expect_err("garbage");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    what: "monitor state",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("state file: monitor state is corrupt")
        );

        // Valid state with junk after it is not what we wrote either.
        let mut blob = postcard::to_stdvec(&sample_state()).expect("encode");
        blob.push(0);
        put_raw(&store, STATE, KEY_MONITOR, &blob);
        assert!(matches!(
            store.load_state(),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn corrupt_event_blob_is_an_error() {
        let (_dir, path) = tmp();
        let store = Store::open(&path).expect("open");
        store.append_events(events(2)).expect("append");
        put_raw(&store, EVENTS, 2, &[0xff, 0xff, 0xff]);
        let err = store.pending_events(0, 10).expect_err("garbage");
        assert!(matches!(
            err,
            StoreError::Corrupt {
                what: "queued event",
                ..
            }
        ));

        // A well-formed event stored under the wrong key.
        let wrong = Event {
            seq: 9,
            at: ts(0),
            kind: router("x"),
        };
        put_raw(
            &store,
            EVENTS,
            2,
            &postcard::to_stdvec(&wrong).expect("enc"),
        );
        let err = store.pending_events(1, 10).expect_err("mismatch");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn second_open_reports_file_in_use() {
        let (_dir, path) = tmp();
        let _first = Store::open(&path).expect("open");
        let err = Store::open(&path).expect_err("locked");
        assert_eq!(err, StoreError::InUse { path: path.clone() });
        let msg = err.to_string();
        assert!(
            msg.contains("is in use by another process (is another mikrotik-edge running?)"),
            "{msg}"
        );
    }

    #[test]
    fn not_a_redb_file_is_an_open_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        std::fs::write(&path, vec![0x5a; 8192]).expect("write");
        let err = Store::open(&path).expect_err("garbage file");
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("state file {}:", path.display()))
        );
    }

    #[test]
    fn lossily_decoded_strings_round_trip() {
        let (_dir, path) = tmp();
        let store = Store::open(&path).expect("open");
        let odd =
            String::from_utf8_lossy(b"caf\xe9 \xff\xfe\0|\xc3\x28 \xf0\x9f\x98\x80").into_owned();
        assert!(odd.contains('\u{fffd}'));
        let kind = EventKind::Logout {
            session: SessionRef {
                service: Service::Pppoe,
                user: odd.clone(),
                active_id: "*80000001".into(),
                session_id: odd.clone(),
            },
            reason: LogoutReason::RouterReboot,
            bytes_in: None,
            bytes_out: Some(u64::MAX),
            uptime_secs: 0,
        };
        let manual = EventKind::ManualUser {
            service: Service::Hotspot,
            user: odd.clone(),
            profile: String::new(),
            comment: odd,
        };
        let committed = store
            .append_events(vec![(ts(i64::MIN), kind), (ts(i64::MAX), manual)])
            .expect("append");
        assert_eq!(store.pending_events(0, 10).expect("pending"), committed);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Commit(usize),
        Append(usize),
        /// Ack this many past the oldest queued seq (may overshoot).
        Ack(u64),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4usize).prop_map(Op::Commit),
            (0..4usize).prop_map(Op::Append),
            (0..6u64).prop_map(Op::Ack),
            Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// The queue behaves like a model: seqs are handed out consecutively
        /// and never reused, acks drop a prefix, reopen changes nothing.
        #[test]
        fn queue_matches_model(ops in prop::collection::vec(op(), 1..12)) {
            let (_dir, path) = tmp();
            let mut store = Store::open(&path).expect("open");
            let mut last = 0u64;
            let mut queued: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    Op::Commit(n) | Op::Append(n) => {
                        let got = if matches!(op, Op::Commit(_)) {
                            store.commit(&MonitorState::default(), events(n)).expect("commit")
                        } else {
                            store.append_events(events(n)).expect("append")
                        };
                        let want: Vec<u64> = (last + 1..=last + n as u64).collect();
                        prop_assert_eq!(seqs(&got), want.clone());
                        last += n as u64;
                        queued.extend(want);
                    }
                    Op::Ack(k) => {
                        let up_to = queued.first().map_or(last, |s| s - 1) + k;
                        let before = queued.len();
                        queued.retain(|s| *s > up_to);
                        prop_assert_eq!(store.ack_events(up_to).expect("ack"), before - queued.len());
                    }
                    Op::Reopen => {
                        drop(store);
                        store = Store::open(&path).expect("reopen");
                    }
                }
                prop_assert_eq!(store.last_seq().expect("seq"), last);
                prop_assert_eq!(store.queued_events().expect("queued"), queued.len() as u64);
                prop_assert_eq!(seqs(&store.pending_events(0, usize::MAX).expect("p")), queued.clone());
            }
        }
    }
}
