//! What changed between two monitor states, as row writes.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::clock::Timestamp;
use crate::event::Service;
use crate::monitor::{MonitorState, SessionKey, TrackedSession};
use crate::name::Name;

/// Row-level changes. Empty when nothing an agent must remember changed:
/// live session counters alone are not a change (see
/// [`TrackedSession::same_record`]).
///
/// Rows to write are named by key and read from `state`, the new state
/// shared with the agent: the delta costs no copy of the rows, which on a
/// first cycle with thousands of sessions is megabytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateDelta {
    pub state: Arc<MonitorState>,
    pub sessions_put: Vec<SessionKey>,
    pub sessions_del: Vec<SessionKey>,
    pub vouchers_put: Vec<Name>,
    pub vouchers_del: Vec<Name>,
    pub flagged_put: Vec<(Service, Name)>,
    pub flagged_del: Vec<(Service, Name)>,
    pub usage_put: Vec<Name>,
    pub usage_del: Vec<Name>,
    /// `Some` when the value changed.
    pub router_boot: Option<Option<Timestamp>>,
    pub started: Option<bool>,
    /// The clock ledger changed (a checkpoint every few minutes at most,
    /// or a reported verdict change); written from `state`.
    pub clock: bool,
}

impl StateDelta {
    /// The writes that turn `old` into `new`.
    pub fn between(old: &MonitorState, new: &Arc<MonitorState>) -> StateDelta {
        let (put, del) = changes(old.sessions.iter(), new.sessions.iter(), |o, n| {
            o.same_record(n)
        });
        StateDelta::with_sessions(old, new, put, del)
    }

    /// The writes that turn `old` into `new`, the session writes given
    /// (`old`'s session map is not read): a step that updated the sessions
    /// in place says which it changed (see `monitor::step_in_place`).
    pub fn with_sessions(
        old: &MonitorState,
        new: &Arc<MonitorState>,
        sessions_put: Vec<SessionKey>,
        sessions_del: Vec<SessionKey>,
    ) -> StateDelta {
        let mut d = StateDelta {
            state: new.clone(),
            sessions_put,
            sessions_del,
            ..StateDelta::default()
        };
        if !old.vouchers.same_copy(&new.vouchers) {
            (d.vouchers_put, d.vouchers_del) =
                changes(old.vouchers.iter(), new.vouchers.iter(), |o, n| o == n);
        }
        // Usually the same copy (no baseline changed): nothing to walk.
        if !old.usage.same_copy(&new.usage) {
            (d.usage_put, d.usage_del) = changes(old.usage.iter(), new.usage.iter(), |o, n| o == n);
        }
        d.flagged_put = difference(&new.flagged_manual, &old.flagged_manual);
        d.flagged_del = difference(&old.flagged_manual, &new.flagged_manual);
        if old.router_boot != new.router_boot {
            d.router_boot = Some(new.router_boot);
        }
        if old.started != new.started {
            d.started = Some(new.started);
        }
        d.clock = old.clock != new.clock;
        d
    }

    /// The whole state as writes onto an empty file.
    pub fn full(state: &Arc<MonitorState>) -> StateDelta {
        StateDelta::between(&MonitorState::default(), state)
    }

    /// One delta for `self` followed by `later`: every key either touched
    /// is written or deleted as `later`'s state has it. What a full disk's
    /// backlog keeps instead of one delta (and one state) per poll.
    pub fn then(self, later: StateDelta) -> StateDelta {
        let state = later.state.clone();
        let sessions = split(
            [
                self.sessions_put,
                self.sessions_del,
                later.sessions_put,
                later.sessions_del,
            ],
            |k| state.sessions.get(k).is_some(),
        );
        let vouchers = split(
            [
                self.vouchers_put,
                self.vouchers_del,
                later.vouchers_put,
                later.vouchers_del,
            ],
            |k| state.vouchers.get(k).is_some(),
        );
        let flagged = split(
            [
                self.flagged_put,
                self.flagged_del,
                later.flagged_put,
                later.flagged_del,
            ],
            |k| state.flagged_manual.contains(k),
        );
        let usage = split(
            [
                self.usage_put,
                self.usage_del,
                later.usage_put,
                later.usage_del,
            ],
            |k| state.usage.get(k).is_some(),
        );
        let boot = (self.router_boot.is_some() || later.router_boot.is_some())
            .then_some(state.router_boot);
        let started = (self.started.is_some() || later.started.is_some()).then_some(state.started);
        StateDelta {
            sessions_put: sessions.0,
            sessions_del: sessions.1,
            vouchers_put: vouchers.0,
            vouchers_del: vouchers.1,
            flagged_put: flagged.0,
            flagged_del: flagged.1,
            usage_put: usage.0,
            usage_del: usage.1,
            router_boot: boot,
            started,
            clock: self.clock || later.clock,
            state,
        }
    }

    /// The session rows to write.
    pub fn sessions(&self) -> impl Iterator<Item = &TrackedSession> {
        self.sessions_put
            .iter()
            .filter_map(|k| self.state.sessions.get(k))
    }

    pub fn is_empty(&self) -> bool {
        self.sessions_put.is_empty()
            && self.sessions_del.is_empty()
            && self.vouchers_put.is_empty()
            && self.vouchers_del.is_empty()
            && self.flagged_put.is_empty()
            && self.flagged_del.is_empty()
            && self.usage_put.is_empty()
            && self.usage_del.is_empty()
            && self.router_boot.is_none()
            && self.started.is_none()
            && !self.clock
    }
}

/// Keys to write (new, or changed by `same`'s judgement) and keys to
/// delete, by walking both maps in key order together: one comparison per
/// entry instead of a tree search per entry.
fn changes<'a, K: Ord + Clone + 'a, V: 'a>(
    old: impl Iterator<Item = (&'a K, &'a V)>,
    new: impl Iterator<Item = (&'a K, &'a V)>,
    same: impl Fn(&V, &V) -> bool,
) -> (Vec<K>, Vec<K>) {
    use std::cmp::Ordering;
    let (mut put, mut del) = (Vec::new(), Vec::new());
    let mut o = old.peekable();
    let mut n = new.peekable();
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some((ok, _)), None) => {
                del.push((*ok).clone());
                o.next();
            }
            (None, Some((nk, _))) => {
                put.push((*nk).clone());
                n.next();
            }
            (Some((ok, ov)), Some((nk, nv))) => match ok.cmp(nk) {
                Ordering::Less => {
                    del.push((*ok).clone());
                    o.next();
                }
                Ordering::Greater => {
                    put.push((*nk).clone());
                    n.next();
                }
                Ordering::Equal => {
                    if !same(ov, nv) {
                        put.push((*nk).clone());
                    }
                    o.next();
                    n.next();
                }
            },
        }
    }
    (put, del)
}

/// The keys of `lists`, once each, as (still present, gone).
fn split<K: Ord>(lists: [Vec<K>; 4], present: impl Fn(&K) -> bool) -> (Vec<K>, Vec<K>) {
    let all: BTreeSet<K> = lists.into_iter().flatten().collect();
    all.into_iter().partition(|k| present(k))
}

fn difference<T: Ord + Clone>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> Vec<T> {
    a.difference(b).cloned().collect()
}
