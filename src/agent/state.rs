//! The driver's bookkeeping as pure decisions (rumqttc's `state.rs`):
//! the connection and its alerts, warnings said once, and the poll
//! schedule. Nothing here does I/O or reads a clock: `now` comes in,
//! decisions go out, and [`super`] (the driver) performs them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::listen::List;
use crate::clock::Timestamp;
use crate::event::Service;
use crate::name::Id;

/// Distinct warnings kept to say each once: a router sending a new
/// garbage value every poll must not grow the set without bound.
const MAX_WARNED: usize = 10_000;

/// Everything the driver remembers between events that is not the
/// monitor's state.
pub struct AgentState {
    pub connection: ConnectionBook,
    pub poll: PollBook,
    warned: HashSet<String>,
}

impl AgentState {
    pub fn new(alert_after: u32, schedule: Schedule) -> AgentState {
        AgentState {
            connection: ConnectionBook::new(alert_after),
            poll: PollBook::new(schedule),
            warned: HashSet::new(),
        }
    }

    /// Whether `warning` is to be logged: the first time only.
    pub fn warn_once(&mut self, warning: &str) -> bool {
        if self.warned.len() >= MAX_WARNED || self.warned.contains(warning) {
            return false;
        }
        self.warned.insert(warning.to_owned());
        true
    }
}

/// Connection and alert bookkeeping.
pub struct ConnectionBook {
    /// Failed reconnects in a row before `mikrotik_connection_failed`.
    alert_after: u32,
    failed_reconnects: u32,
    alerted: bool,
    /// When the router was last lost (or first failed to connect), for the
    /// alert texts; `None` while connected.
    outage_since: Option<Timestamp>,
    /// The last connection error recorded as an event, so an outage that
    /// lasts a day does not queue an identical event every retry.
    last_error: Option<String>,
}

/// What to do about a failed (re)connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// Raise `mikrotik_connection_failed`: down since, failures so far.
    pub alert: Option<(Timestamp, u32)>,
    /// Record the `router` error event (not when it repeats the last one).
    pub record: bool,
}

impl ConnectionBook {
    fn new(alert_after: u32) -> ConnectionBook {
        ConnectionBook {
            alert_after,
            failed_reconnects: 0,
            alerted: false,
            outage_since: None,
            last_error: None,
        }
    }

    /// Connected. `Some(since)`: the failure alert was raised, so
    /// `mikrotik_connection_restored` is due (with the outage's start).
    pub fn connected(&mut self) -> Option<Option<Timestamp>> {
        self.failed_reconnects = 0;
        self.last_error = None;
        let since = self.outage_since.take();
        std::mem::take(&mut self.alerted).then_some(since)
    }

    /// The session was lost.
    pub fn disconnected(&mut self, now: Timestamp) {
        self.outage_since.get_or_insert(now);
    }

    /// A (re)connect failed with `reason`.
    pub fn failed(&mut self, reason: &str, now: Timestamp) -> Failed {
        let since = *self.outage_since.get_or_insert(now);
        self.failed_reconnects = self.failed_reconnects.saturating_add(1);
        let alert = (self.failed_reconnects >= self.alert_after && !self.alerted).then(|| {
            self.alerted = true;
            (since, self.failed_reconnects)
        });
        let record = self.last_error.as_deref() != Some(reason);
        if record {
            self.last_error = Some(reason.to_owned());
        }
        Failed { alert, record }
    }
}

/// The poll's settings.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub poll: Duration,
    /// How often the active lists are read in full while listened on
    /// (already capped at the usage interval); zero: every poll.
    pub active_read: Duration,
}

/// How a poll reads the active lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveRead {
    /// Read in full (rows and counters).
    Full,
    /// Read their counters only (`.id` and the counters, a third of a full
    /// read's bytes): the listens kept the rest of the copy current. Read
    /// in full when the `.id`s disagree with the copy.
    Counters,
    /// Count their rows (`count-only`) and compare with the agent's copy;
    /// read in full only when a count disagrees.
    Check,
}

/// The poll schedule: which lists a poll reads, from what the listens
/// kept current since the last full read.
pub struct PollBook {
    schedule: Schedule,
    /// Whether each active list's listen (hotspot, PPP) is open and has
    /// been since the last full read of the list on this connection.
    active_listening: [bool; 2],
    /// The `.id`s on each active list as the agent knows them: the last
    /// full read, then every listen row since. A count that differs from
    /// the router's means a change the listen did not report.
    active_ids: [Vec<Id>; 2],
    /// When the active lists were last read in full on this connection.
    active_read_at: Option<Instant>,
    /// A full read is owed at the next poll whatever the schedule says.
    full_owed: bool,
    /// Listens that ended and are to be opened again at the next poll.
    reopen: Vec<List>,
}

fn index(service: Service) -> usize {
    match service {
        Service::Hotspot => 0,
        Service::Pppoe => 1,
    }
}

impl PollBook {
    fn new(schedule: Schedule) -> PollBook {
        PollBook {
            schedule,
            active_listening: [false; 2],
            active_ids: [Vec::new(), Vec::new()],
            active_read_at: None,
            full_owed: false,
            reopen: Vec::new(),
        }
    }

    /// A new connection (or none): its listens start afresh, nothing the
    /// old ones kept counts any more.
    pub fn new_session(&mut self) {
        self.active_listening = [false; 2];
        self.active_ids = [Vec::new(), Vec::new()];
        self.active_read_at = None;
        self.full_owed = false;
        self.reopen.clear();
    }

    /// Whether an active list's listen is open.
    pub fn set_active_listening(&mut self, service: Service, open: bool) {
        self.active_listening[index(service)] = open;
        if open {
            // What happened before it opened is only in a full read.
            self.full_owed = true;
        }
    }

    /// How this poll reads the active lists. Both in full at the first
    /// poll of a connection, whenever a listen is not open (every poll,
    /// as without listen) and when owed; their counters on schedule;
    /// otherwise a count. Half a poll early rather than a whole poll late.
    pub fn active_read(&self, now: Instant) -> ActiveRead {
        let due = |at: Instant| {
            now.duration_since(at) + self.schedule.poll / 2 >= self.schedule.active_read
        };
        // `active_read_secs = 0`: in full at every poll, as without listens.
        let scheduled = !self.schedule.active_read.is_zero();
        match self.active_read_at {
            Some(at) if scheduled && self.listening() && !self.full_owed => {
                if due(at) {
                    ActiveRead::Counters
                } else {
                    ActiveRead::Check
                }
            }
            _ => ActiveRead::Full,
        }
    }

    /// Whether both active lists' listens are open and have been since
    /// their last full read: every login and logout is heard, so no
    /// session can come and go unseen.
    pub fn listening(&self) -> bool {
        self.active_listening.iter().all(|&l| l)
    }

    /// Whether `ids` (a counters read's, per list) are the copy's: when
    /// not, the listen missed a change and the list is read in full.
    pub fn same_ids(&self, service: Service, ids: &mut Vec<Id>) -> bool {
        ids.sort_unstable();
        ids.dedup();
        self.active_ids[index(service)] == *ids
    }

    /// The counters were read at `now` (the ids were the copy's).
    pub fn read_counters(&mut self, now: Instant) {
        self.active_read_at = Some(now);
    }

    /// The rows each active list holds, as the agent knows them.
    pub fn active_count(&self, service: Service) -> usize {
        self.active_ids[index(service)].len()
    }

    /// The active lists were read in full at `now`, with these `.id`s.
    pub fn read_full(&mut self, now: Instant, mut ids: [Vec<Id>; 2]) {
        for ids in &mut ids {
            ids.sort_unstable();
            ids.dedup();
        }
        self.active_ids = ids;
        self.active_read_at = Some(now);
        self.full_owed = false;
    }

    /// How much earlier than due a session reports usage at a poll that
    /// read the counters: when the next read is a whole interval away, a
    /// session due before it reports now (so usage is never more than a
    /// poll late); 0 while every poll reads them.
    pub fn usage_early(&self, read: ActiveRead, usage: Duration) -> Duration {
        let scheduled = self.listening()
            && !self.schedule.active_read.is_zero()
            && self.schedule.active_read > self.schedule.poll;
        match read {
            ActiveRead::Full | ActiveRead::Counters if scheduled => {
                usage.saturating_sub(self.schedule.poll)
            }
            _ => Duration::ZERO,
        }
    }

    /// A listen row on an active list: an entry added or changed.
    pub fn heard_upsert(&mut self, service: Service, id: Id) {
        let ids = &mut self.active_ids[index(service)];
        if let Err(at) = ids.binary_search(&id) {
            ids.insert(at, id);
        }
    }

    /// A listen row on an active list: an entry gone.
    pub fn heard_removed(&mut self, service: Service, id: Id) {
        let ids = &mut self.active_ids[index(service)];
        if let Ok(at) = ids.binary_search(&id) {
            ids.remove(at);
        }
    }

    /// Something the copy cannot answer for (a login of a user the agent
    /// does not know yet): the next poll reads the lists in full.
    pub fn owe_full_read(&mut self) {
        self.full_owed = true;
    }

    /// A listen ended; `retry`: open it again at the next poll (it was
    /// not refused). Until then its list is read in full every poll.
    pub fn listen_ended(&mut self, list: List, retry: bool) {
        if let List::Active(service) = list {
            self.active_listening[index(service)] = false;
        }
        if retry && !self.reopen.contains(&list) {
            self.reopen.push(list);
        }
    }

    /// The listens to open again now (before this poll's reads, so that
    /// nothing falls between the two).
    pub fn take_reopen(&mut self) -> Vec<List> {
        std::mem::take(&mut self.reopen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_unix(secs)
    }

    #[test]
    fn failure_alert_once_after_the_threshold_and_restored_after_it() {
        let mut c = ConnectionBook::new(3);
        let f = c.failed("refused", ts(100));
        assert_eq!(
            f,
            Failed {
                alert: None,
                record: true
            }
        );
        // The same reason again is not recorded again.
        assert!(!c.failed("refused", ts(110)).record);
        let third = c.failed("timeout", ts(120));
        assert_eq!(third.alert, Some((ts(100), 3)), "since the first failure");
        assert!(third.record, "a new reason");
        assert_eq!(c.failed("timeout", ts(130)).alert, None, "raised once");
        assert_eq!(c.connected(), Some(Some(ts(100))), "restored is due");
        // A short outage (no alert raised) restores nothing.
        c.disconnected(ts(200));
        assert_eq!(c.failed("refused", ts(205)).alert, None);
        assert_eq!(c.connected(), None);
        // After a connect, the same reason is news again.
        assert!(c.failed("refused", ts(300)).record);
    }

    #[test]
    fn warnings_are_said_once() {
        let mut s = AgentState::new(3, schedule(30, 300));
        assert!(s.warn_once("a"));
        assert!(!s.warn_once("a"));
        assert!(s.warn_once("b"));
    }

    fn schedule(poll: u64, active_read: u64) -> Schedule {
        Schedule {
            poll: Duration::from_secs(poll),
            active_read: Duration::from_secs(active_read),
        }
    }

    fn listening(book: &mut PollBook) {
        book.set_active_listening(Service::Hotspot, true);
        book.set_active_listening(Service::Pppoe, true);
    }

    #[test]
    fn with_healthy_listens_polls_count_and_read_in_full_on_schedule() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut book = PollBook::new(schedule(30, 300));
        assert_eq!(book.active_read(t0), ActiveRead::Full, "never read");
        listening(&mut book);
        book.read_full(t0, [vec![Id(2), Id(1)], vec![Id(9)]]);
        assert_eq!(book.active_read(at(30)), ActiveRead::Check);
        assert_eq!(book.active_read(at(270)), ActiveRead::Check);
        // Due at 300 s; a tick a little early still reads (the counters:
        // the listens kept the rest current).
        assert_eq!(book.active_read(at(290)), ActiveRead::Counters);
        let mut same = vec![Id(1), Id(2), Id(1)];
        assert!(book.same_ids(Service::Hotspot, &mut same));
        assert!(!book.same_ids(Service::Hotspot, &mut vec![Id(1)]));
        book.read_counters(at(290));
        assert_eq!(book.active_read(at(300)), ActiveRead::Check);
        assert_eq!(book.active_count(Service::Hotspot), 2);
        assert_eq!(book.active_count(Service::Pppoe), 1);
        // Listen rows keep the copy's ids current.
        book.heard_upsert(Service::Hotspot, Id(5));
        book.heard_upsert(Service::Hotspot, Id(5));
        book.heard_removed(Service::Pppoe, Id(9));
        assert_eq!(book.active_count(Service::Hotspot), 3);
        assert_eq!(book.active_count(Service::Pppoe), 0);
        // An unknown user's login: the next poll reads in full.
        book.owe_full_read();
        assert_eq!(book.active_read(at(30)), ActiveRead::Full);
        book.read_full(at(30), [vec![], vec![]]);
        assert_eq!(book.active_read(at(60)), ActiveRead::Check);
    }

    #[test]
    fn without_a_listen_every_poll_reads_in_full_until_it_reopens() {
        let t0 = Instant::now();
        let mut book = PollBook::new(schedule(30, 300));
        listening(&mut book);
        book.read_full(t0, [vec![], vec![]]);
        book.listen_ended(List::Active(Service::Pppoe), true);
        book.listen_ended(List::Users(Service::Hotspot), true);
        book.listen_ended(List::Users(Service::Hotspot), true);
        assert_eq!(book.active_read(t0), ActiveRead::Full);
        assert_eq!(
            book.take_reopen(),
            [List::Active(Service::Pppoe), List::Users(Service::Hotspot)]
        );
        assert!(book.take_reopen().is_empty());
        // Reopened: the first poll after still reads in full (changes
        // made while it was closed were not heard), then counts.
        book.set_active_listening(Service::Pppoe, true);
        assert_eq!(book.active_read(t0), ActiveRead::Full);
        book.read_full(t0, [vec![], vec![]]);
        assert_eq!(
            book.active_read(t0 + Duration::from_secs(30)),
            ActiveRead::Check
        );
        // A refused listen is not retried (the next connection tries).
        book.listen_ended(List::Active(Service::Hotspot), false);
        assert!(book.take_reopen().is_empty());
        assert_eq!(
            book.active_read(t0 + Duration::from_secs(30)),
            ActiveRead::Full
        );
        // A new connection forgets everything.
        book.new_session();
        assert_eq!(book.active_count(Service::Hotspot), 0);
    }

    #[test]
    fn usage_reports_early_only_when_counters_are_read_on_a_schedule() {
        let usage = Duration::from_secs(300);
        let mut book = PollBook::new(schedule(30, 300));
        assert_eq!(book.usage_early(ActiveRead::Full, usage), Duration::ZERO);
        listening(&mut book);
        assert_eq!(
            book.usage_early(ActiveRead::Full, usage),
            Duration::from_secs(270)
        );
        assert_eq!(
            book.usage_early(ActiveRead::Counters, usage),
            Duration::from_secs(270)
        );
        assert_eq!(book.usage_early(ActiveRead::Check, usage), Duration::ZERO);
        let mut every_poll = PollBook::new(schedule(30, 0));
        assert_eq!(
            every_poll.usage_early(ActiveRead::Full, usage),
            Duration::ZERO
        );
        // `active_read_secs = 0` reads in full at every poll, listens or not.
        listening(&mut every_poll);
        let t0 = Instant::now();
        every_poll.read_full(t0, [vec![], vec![]]);
        assert_eq!(
            every_poll.active_read(t0 + Duration::from_secs(30)),
            ActiveRead::Full
        );
    }
}
