//! The outbox cap: with the WAN down for days the queue must not fill the
//! disk. Over the cap, `usage` events are compacted first (only the newest
//! per session is kept: each one carries running totals, so older ones add
//! nothing the newest lacks); if the outbox is still above the low-water
//! mark, the oldest events are dropped and one `dropped` event, committed in
//! the same transaction, tells the central side which range is missing.
//!
//! Events the uploader may already have sent (`protect_through`) are never
//! touched: if the central side stored them without our hearing back,
//! re-linking their successors' `prev` around a removed one would leave its
//! `stored_through` stuck.

use std::collections::HashSet;
use std::ops::Bound;

use redb::ReadableTable;

use super::StoreError;
use super::file::{EVENTS, KEY_OUTBOX_BYTES, META, Store, append, decode};
use crate::clock::Timestamp;
use crate::event::{Event, EventKind};

/// What one enforcement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapReport {
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// `usage` events removed by compaction.
    pub compacted: u64,
    /// The `dropped` event, when events had to be dropped.
    pub dropped: Option<Event>,
}

/// After acting, the outbox is brought down to this share of the cap (in
/// tenths), so a full outbox is not rescanned on every poll.
const LOW_WATER_TENTHS: u64 = 9;

impl Store {
    /// Brings the outbox under `max_bytes` when it is over; `None` when it
    /// was not. One write transaction.
    pub fn enforce_outbox_cap(
        &self,
        max_bytes: u64,
        protect_through: u64,
    ) -> Result<Option<CapReport>, StoreError> {
        let before = self.outbox_bytes()?;
        if before <= max_bytes {
            return Ok(None);
        }
        let low_water = max_bytes / 10 * LOW_WATER_TENTHS;
        let txn = self.db.begin_write()?;
        let mut bytes = before;
        let mut compacted = 0u64;
        let mut dropped_range = None;
        {
            let mut table = txn.open_table(EVENTS)?;
            let range = (Bound::Excluded(protect_through), Bound::Unbounded);

            // Newest first: the first usage seen per session is the one kept.
            let mut seen = HashSet::new();
            let mut doomed = Vec::new();
            for row in table.range::<u64>(range)?.rev() {
                let (key, blob) = row?;
                let event: Event = decode("queued event", blob.value())?;
                if let EventKind::Usage { session, .. } = &event.kind {
                    let id = (
                        session.service,
                        session.active_id.to_string(),
                        session.session_id.as_bytes().to_vec(),
                        session.user.as_bytes().to_vec(),
                    );
                    if !seen.insert(id) {
                        doomed.push((key.value(), blob.value().len() as u64));
                    }
                }
            }
            for (seq, len) in doomed {
                table.remove(seq)?;
                bytes = bytes.saturating_sub(len);
                compacted += 1;
            }

            if bytes > low_water {
                let mut doomed = Vec::new();
                let mut freed = 0u64;
                for row in table.range::<u64>(range)? {
                    if bytes.saturating_sub(freed) <= low_water {
                        break;
                    }
                    let (key, blob) = row?;
                    doomed.push(key.value());
                    freed += blob.value().len() as u64;
                }
                if let (Some(&from), Some(&to)) = (doomed.first(), doomed.last()) {
                    dropped_range = Some((from, to, doomed.len() as u64));
                }
                for seq in doomed {
                    table.remove(seq)?;
                }
                bytes = bytes.saturating_sub(freed);
            }
            txn.open_table(META)?.insert(KEY_OUTBOX_BYTES, bytes)?;
        }
        // Same transaction: the drop is never without its record.
        let dropped = match dropped_range {
            Some((from_seq, to_seq, count)) => append(
                &txn,
                vec![(
                    Timestamp::now(),
                    EventKind::Dropped {
                        from_seq,
                        to_seq,
                        count,
                    },
                )],
            )?
            .into_iter()
            .next(),
            None => None,
        };
        txn.commit()?;
        Ok(Some(CapReport {
            bytes_before: before,
            bytes_after: self.outbox_bytes()?,
            compacted,
            dropped,
        }))
    }
}
