//! What the store thread holds while the state file cannot take writes (a
//! full disk): the state changes merged into one delta, the events in
//! order (numbered only when written, so no number is ever given twice),
//! and the last `sync` blob per key. Written in one transaction once space
//! returns.

use std::collections::VecDeque;

use super::StateDelta;
use crate::clock::Timestamp;
use crate::event::EventKind;

/// At most this many events wait in memory; past it the oldest ones that
/// are not alerts go, and an `events_lost` alert says how many.
pub(super) const MAX_EVENTS: usize = 20_000;

#[derive(Default)]
pub(super) struct Backlog {
    pub delta: Option<StateDelta>,
    pub events: VecDeque<(Timestamp, EventKind)>,
    pub blobs: Vec<(&'static str, Vec<u8>)>,
    /// Events dropped from memory past [`MAX_EVENTS`].
    pub lost: u64,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.delta.is_none() && self.events.is_empty() && self.blobs.is_empty() && self.lost == 0
    }

    /// Adds one commit's worth, after everything already held.
    pub fn push(
        &mut self,
        delta: Option<StateDelta>,
        events: Vec<(Timestamp, EventKind)>,
        blobs: Vec<(&'static str, Vec<u8>)>,
    ) {
        if let Some(d) = delta.filter(|d| !d.is_empty()) {
            self.delta = Some(match self.delta.take() {
                Some(old) => old.then(d),
                None => d,
            });
        }
        self.events.extend(events);
        while self.events.len() > MAX_EVENTS {
            let Some(i) = self.events.iter().position(|(_, k)| !k.is_alert()) else {
                break;
            };
            self.events.remove(i);
            self.lost += 1;
        }
        for (key, blob) in blobs {
            self.blobs.retain(|(k, _)| *k != key);
            self.blobs.push((key, blob));
        }
    }

    /// The newest blob under `key` not yet written.
    pub fn blob(&self, key: &str) -> Option<&[u8]> {
        self.blobs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, b)| b.as_slice())
    }

    /// The events to write, oldest first, with an `events_lost` alert
    /// last when some had to go.
    pub fn events_to_write(&mut self, now: Timestamp) -> &[(Timestamp, EventKind)] {
        if self.lost > 0 {
            let message = format!(
                "{} events dropped from memory while the state file could not be written \
                 (more than {MAX_EVENTS} waiting)",
                self.lost
            );
            self.events.push_back((
                now,
                EventKind::Alert {
                    name: "events_lost".into(),
                    message,
                },
            ));
            self.lost = 0;
        }
        self.events.make_contiguous()
    }
}
