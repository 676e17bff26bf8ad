//! The `quarantine` table: queued events the central side refused as
//! malformed, taken out of the outbox so the queue behind them moves on,
//! kept for `mikrotik-edge quarantine list|resend`. A file without the
//! table is the same schema version (it is created on first write).

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::file::{EVENTS, META, add_outbox_bytes, append, decode, encode};
use super::{Store, StoreError};
use crate::clock::Timestamp;
use crate::event::{Event, EventKind};

/// Keyed by the event's original sequence number.
const QUARANTINE: TableDefinition<u64, &[u8]> = TableDefinition::new("quarantine");

/// One quarantined event, as it was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    pub event: Event,
    /// The central side's refusal.
    pub reason: String,
    pub quarantined_at: Timestamp,
}

impl Store {
    /// Moves the queued events `seqs` to the quarantine and, when `alert`,
    /// appends one `event_quarantined` event naming them, in one
    /// transaction. Returns that event. Seqs not queued are skipped.
    pub fn quarantine(
        &self,
        seqs: &[u64],
        reason: &str,
        alert: bool,
    ) -> Result<Option<Event>, StoreError> {
        let txn = self.db.begin_write()?;
        let mut moved = Vec::new();
        {
            let mut events = txn.open_table(EVENTS)?;
            let mut table = txn.open_table(QUARANTINE)?;
            let mut freed = 0u64;
            let now = Timestamp::now();
            for &seq in seqs {
                let Some(blob) = events.remove(seq)? else {
                    continue;
                };
                let blob = blob.value().to_vec();
                freed += blob.len() as u64;
                let record = Quarantined {
                    event: decode("queued event", &blob)?,
                    reason: reason.to_owned(),
                    quarantined_at: now,
                };
                table.insert(seq, encode("quarantined event", &record)?.as_slice())?;
                moved.push(seq);
            }
            add_outbox_bytes(&mut txn.open_table(META)?, -i128::from(freed))?;
        }
        let event = if alert && !moved.is_empty() {
            let kind = EventKind::Quarantined {
                seqs: moved,
                reason: reason.to_owned(),
            };
            append(&txn, vec![(Timestamp::now(), kind)])?
                .into_iter()
                .next()
        } else {
            None
        };
        txn.commit()?;
        Ok(event)
    }

    /// The quarantined events, oldest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(QUARANTINE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, blob) = row?;
            out.push(decode("quarantined event", blob.value())?);
        }
        Ok(out)
    }

    /// Queues every quarantined event again as a new event (a new number,
    /// its original time) and empties the quarantine, in one transaction.
    /// Returns the new events.
    pub fn resend_quarantined(&self) -> Result<Vec<Event>, StoreError> {
        let held = self.quarantined()?;
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write()?;
        let events = append(&txn, held.into_iter().map(|q| (q.event.at, q.event.kind)))?;
        txn.delete_table(QUARANTINE)?;
        txn.commit()?;
        Ok(events)
    }
}
