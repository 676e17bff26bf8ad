//! The outbox cap: with the WAN down for days the queue must not fill the
//! disk. Over the cap, `usage` events are compacted first (only the newest
//! per session is kept: each one carries running totals, so older ones add
//! nothing the newest lacks); if the outbox is still above the low-water
//! mark, the oldest events are dropped and one `dropped` event, committed in
//! the same transaction, tells the central side which range is missing.
//!
//! The store enforces it inside every transaction that appends events, so
//! the outbox never exceeds it (by more than the event just appended when
//! nothing else may go); `alert`, `dropped` and `event_quarantined` events
//! are never compacted or dropped, and earlier `dropped` records not yet
//! sent are folded into the new one.
//!
//! Events the uploader may already have sent (`protect_through`) are never
//! touched: if the central side stored them without our hearing back,
//! re-linking their successors' `prev` around a removed one would leave its
//! `stored_through` stuck.

use std::collections::HashSet;
use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};

use super::StoreError;
use super::file::{EVENTS, KEY_OUTBOX_BYTES, META, Store, append, decode};

/// The outbox table as a write transaction opens it.
type EventsTable<'t> = redb::Table<'t, u64, &'static [u8]>;
/// The unconfirmed part of the outbox (after what is protected).
type Unconfirmed = (Bound<u64>, Bound<u64>);
/// An earlier `dropped` record: its seq, size, and the range it covers.
type OldDrop = (u64, u64, u64, u64, u64);
/// A queued event's seq and size.
type SeqLen = (u64, u64);
/// What a new `dropped` record reports: first seq, last seq, count.
type DropRange = (u64, u64, u64);
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

/// The cap the store enforces on every commit that appends events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OutboxCap {
    pub max_bytes: u64,
    /// Events up to here may be at the central side already.
    pub protect_through: u64,
}

impl CapReport {
    /// One report for two enforcements in a row (the second one's
    /// `dropped` event already covers the first one's range).
    pub(super) fn merge(self, later: CapReport) -> CapReport {
        CapReport {
            bytes_before: self.bytes_before,
            bytes_after: later.bytes_after,
            compacted: self.compacted + later.compacted,
            dropped: later.dropped.or(self.dropped),
        }
    }
}

impl Store {
    /// Brings the outbox under `max_bytes` when it is over; `None` when it
    /// was not. One write transaction.
    pub fn enforce_outbox_cap(
        &self,
        max_bytes: u64,
        protect_through: u64,
    ) -> Result<Option<CapReport>, StoreError> {
        if self.outbox_bytes()? <= max_bytes {
            return Ok(None);
        }
        let txn = self.db.begin_write()?;
        let report = enforce_in(
            &txn,
            OutboxCap {
                max_bytes,
                protect_through,
            },
        )?;
        txn.commit()?;
        Ok(report)
    }
}

/// [`Store::enforce_outbox_cap`] inside `txn`: the commit that appends
/// events calls it before committing, so the outbox is never over its cap
/// between two transactions. Alert events (`alert`, `dropped`,
/// `event_quarantined`) are never touched: they say why there is a gap.
pub(super) fn enforce_in(
    txn: &WriteTransaction,
    cap: OutboxCap,
) -> Result<Option<CapReport>, StoreError> {
    let before = txn
        .open_table(META)?
        .get(KEY_OUTBOX_BYTES)?
        .map_or(0, |v| v.value());
    if before <= cap.max_bytes {
        return Ok(None);
    }
    let low_water = cap.max_bytes / 10 * LOW_WATER_TENTHS;
    let mut bytes = before;
    let mut compacted = 0u64;
    let mut dropped_range: Option<(u64, u64, u64)> = None;
    {
        let mut table = txn.open_table(EVENTS)?;
        let range = (Bound::Excluded(cap.protect_through), Bound::Unbounded);
        let (duplicates, old_drops) = scan_newest_first(&table, range)?;
        for (seq, len) in duplicates {
            table.remove(seq)?;
            bytes = bytes.saturating_sub(len);
            compacted += 1;
        }
        if bytes > low_water {
            let (freed, dropped) = drop_oldest(&mut table, range, bytes, low_water, old_drops)?;
            dropped_range = dropped;
            bytes = bytes.saturating_sub(freed);
        }
        txn.open_table(META)?.insert(KEY_OUTBOX_BYTES, bytes)?;
    }
    // Same transaction: the drop is never without its record.
    let dropped = match dropped_range {
        Some((from_seq, to_seq, count)) => append(
            txn,
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
    let bytes_after = txn
        .open_table(META)?
        .get(KEY_OUTBOX_BYTES)?
        .map_or(0, |v| v.value());
    Ok(Some(CapReport {
        bytes_before: before,
        bytes_after,
        compacted,
        dropped,
    }))
}

/// Newest first over the unconfirmed events: usage reports superseded by a
/// newer one of the same session (seq and size each), and the earlier
/// `dropped` records, to be folded into a new one.
fn scan_newest_first(
    table: &EventsTable<'_>,
    range: Unconfirmed,
) -> Result<(Vec<SeqLen>, Vec<OldDrop>), StoreError> {
    // Newest first: the first usage seen per session is the one kept.
    let mut seen = HashSet::new();
    let mut doomed = Vec::new();
    let mut old_drops = Vec::new();
    for row in table.range::<u64>(range)?.rev() {
        let (key, blob) = row?;
        let event: Event = decode("queued event", blob.value())?;
        if let EventKind::Dropped {
            from_seq,
            to_seq,
            count,
        } = event.kind
        {
            old_drops.push((
                key.value(),
                blob.value().len() as u64,
                from_seq,
                to_seq,
                count,
            ));
        }
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
    Ok((doomed, old_drops))
}

/// Drops the oldest unconfirmed events (never alerts) until `bytes` is down
/// to `low_water`, with the earlier `dropped` records folded in. The bytes
/// freed, and the range and count the new `dropped` record reports.
fn drop_oldest(
    table: &mut EventsTable<'_>,
    range: Unconfirmed,
    bytes: u64,
    low_water: u64,
    old_drops: Vec<OldDrop>,
) -> Result<(u64, Option<DropRange>), StoreError> {
    let mut doomed = Vec::new();
    let mut freed = 0u64;
    let mut dropped_range = None;
    let (mut from, mut to, mut count) = (u64::MAX, 0u64, 0u64);
    for row in table.range::<u64>(range)? {
        if bytes.saturating_sub(freed) <= low_water {
            break;
        }
        let (key, blob) = row?;
        let event: Event = decode("queued event", blob.value())?;
        if event.kind.is_alert() {
            continue;
        }
        from = from.min(key.value());
        to = to.max(key.value());
        count += 1;
        doomed.push(key.value());
        freed += blob.value().len() as u64;
    }
    if count > 0 {
        // One `dropped` event per outage, not one per commit.
        for (seq, len, from_seq, to_seq, n) in old_drops {
            from = from.min(from_seq);
            to = to.max(to_seq);
            count += n;
            doomed.push(seq);
            freed += len;
        }
        dropped_range = Some((from, to, count));
    }
    for seq in doomed {
        table.remove(seq)?;
    }
    Ok((freed, dropped_range))
}
