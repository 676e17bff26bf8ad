//! The `sync` table: reconciliation's blobs, keyed by name. `desired` holds
//! the last desired state exactly as fetched (JSON bytes), so reconciliation
//! goes on while the central side is unreachable; `reconcile` the postcard
//! [`crate::reconcile::ReconcileState`]. A file without the table is the
//! same schema version (it is created on first write), so no bump.

use redb::{ReadableDatabase, TableDefinition, WriteTransaction};

use super::file::append;
use super::{Store, StoreError};
use crate::clock::Timestamp;
use crate::event::{Event, EventKind};

const SYNC: TableDefinition<&str, &[u8]> = TableDefinition::new("sync");

/// Key of the last desired state (JSON as fetched).
pub const KEY_DESIRED: &str = "desired";
/// Key of the reconcile state (postcard).
pub const KEY_RECONCILE: &str = "reconcile";
/// Local operator intents held as overrides ([`crate::reconcile::Intents`]).
pub const KEY_INTENTS: &str = "intents";

impl Store {
    /// Writes `blobs` and appends `events` in one transaction, so a state
    /// that says "reported" never exists without its event. Nothing is
    /// written when both are empty.
    pub fn save_sync(
        &self,
        blobs: &[(&'static str, Vec<u8>)],
        events: Vec<(Timestamp, EventKind)>,
    ) -> Result<Vec<Event>, StoreError> {
        if blobs.is_empty() && events.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write()?;
        let events = append(&txn, events)?;
        put_blobs(&txn, blobs)?;
        let cap = self.cap_in(&txn)?;
        txn.commit()?;
        self.note_cap(cap);
        Ok(events)
    }

    /// The blob under `key`, if any.
    pub fn load_sync(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(SYNC) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }
}

/// Writes `blobs` inside `txn` (the table is created on first write).
pub(super) fn put_blobs(
    txn: &WriteTransaction,
    blobs: &[(&'static str, Vec<u8>)],
) -> Result<(), StoreError> {
    if blobs.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(SYNC)?;
    for (key, blob) in blobs {
        table.insert(*key, blob.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_and_events_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        assert_eq!(store.load_sync(KEY_DESIRED).unwrap(), None);
        let ev = EventKind::Alert {
            name: "x".into(),
            message: "y".into(),
        };
        let out = store
            .save_sync(
                &[(KEY_DESIRED, b"{}".to_vec())],
                vec![(Timestamp::from_unix(1), ev)],
            )
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(store.load_sync(KEY_DESIRED).unwrap().unwrap(), b"{}");
        drop(store);
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        assert_eq!(store.load_sync(KEY_DESIRED).unwrap().unwrap(), b"{}");
        assert_eq!(store.last_seq().unwrap(), 1);
    }
}
