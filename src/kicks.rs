//! Sessions the agent itself ended (sync, user API): their logouts say
//! `kicked`, not `gone`. The tasks that kick add here; the poll and the
//! listen path take them when the session is seen gone.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::event::Service;
use crate::monitor::SessionKey;
use crate::name::Id;

/// Bounded: a kicked session normally shows gone at the next look; one
/// that never does (already gone when kicked) must not pile up.
const MAX: usize = 4096;

#[derive(Clone, Default)]
pub struct Kicks(Arc<Mutex<BTreeSet<SessionKey>>>);

impl Kicks {
    pub fn add(&self, service: Service, active_id: Id) {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if set.len() >= MAX {
            set.pop_first();
        }
        set.insert((service, active_id));
    }

    /// Whether the agent kicked this session; forgets it.
    pub fn take(&self, key: SessionKey) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key)
    }

    /// Every kick recorded so far (a poll's snapshot).
    pub fn all(&self) -> BTreeSet<SessionKey> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps the kicks of sessions still open (a kick can be recorded
    /// before the router shows the session gone).
    pub fn retain(&self, open: impl Fn(&SessionKey) -> bool) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k| open(k));
    }
}
