//! The `listen` commands, multiplexed on the router connection with their
//! own `.tag`s:
//! - one per active list, which makes logins and logouts instant; what a
//!   row means is decided by [`crate::monitor::apply_listen`];
//! - one per user list (hotspot users, PPP secrets), which keeps the
//!   driver's copy of those lists current between full reads (see
//!   [`super::user_table`]), so a poll need not read 10,000 unchanged
//!   users every time.
//!
//! Rows are typed here (`.dead=yes` rows carry only the `.id`).

use crate::client::{ClientError, Item, ReplyStream, Router};
use crate::event::Service;
use crate::monitor::{ListenChange, UserRow};
use crate::name::Id;
use crate::proto::Attrs;

use super::rows::{
    HOTSPOT_ACTIVE_PROPS, HOTSPOT_USER_PROPS, PPP_ACTIVE_PROPS, PPP_SECRET_PROPS, SessionRows,
    UserRows, ValueWarning,
};

/// A list the agent listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `/ip/hotspot/active` or `/ppp/active`.
    Active(Service),
    /// `/ip/hotspot/user` or `/ppp/secret`.
    Users(Service),
}

impl List {
    const ALL: [List; 4] = [
        List::Active(Service::Hotspot),
        List::Active(Service::Pppoe),
        List::Users(Service::Hotspot),
        List::Users(Service::Pppoe),
    ];

    pub fn path(self) -> &'static str {
        match self {
            List::Active(service) => crate::commands::active(service),
            List::Users(service) => crate::commands::users(service),
        }
    }

    fn props(self) -> &'static [&'static str] {
        match self {
            List::Active(Service::Hotspot) => HOTSPOT_ACTIVE_PROPS,
            List::Active(Service::Pppoe) => PPP_ACTIVE_PROPS,
            List::Users(Service::Hotspot) => HOTSPOT_USER_PROPS,
            List::Users(Service::Pppoe) => PPP_SECRET_PROPS,
        }
    }

    fn index(self) -> usize {
        match self {
            List::Active(Service::Hotspot) => 0,
            List::Active(Service::Pppoe) => 1,
            List::Users(Service::Hotspot) => 2,
            List::Users(Service::Pppoe) => 3,
        }
    }
}

/// A change to a user list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// A user added or changed: its row.
    Upsert(Service, UserRow),
    /// `.dead=yes`: the user with this `.id` is gone.
    Removed(Service, Id),
}

/// What one listen produced.
#[derive(Debug)]
pub enum Heard {
    /// A session list changed.
    Change(ListenChange),
    /// A user list changed.
    User(UserChange),
    /// A row that did not parse (logged once by the driver).
    Skipped(Vec<ValueWarning>),
    /// The listen ended: refused (`!trap`, e.g. `no such command` on a
    /// router without listen there), interrupted, overflowed (more rows
    /// unread than allowed), or the session ended. The poll covers that
    /// list meanwhile; `retry`: it was not refused, so the driver opens it
    /// again at the next poll (a refused one at the next connection).
    Ended {
        list: List,
        why: String,
        retry: bool,
    },
}

/// The typing of one list's rows.
enum Rows {
    Sessions(SessionRows),
    Users(Service, UserRows),
}

/// Rows typed between two tidyings of a listen's name cache.
const TIDY_EVERY: u32 = 256;

/// A listen's typing: rows share names through a cache, and a listen
/// lives as long as the connection, so the names nothing else holds any
/// more are let go every [`TIDY_EVERY`] rows. Without that the cache kept
/// every name ever heard: a PPP session id per login, a comment per
/// voucher activated.
struct Typing {
    rows: Rows,
    since_tidy: u32,
}

struct Follow {
    stream: ReplyStream,
    typing: Typing,
}

/// The listens of the current connection; none while disconnected.
#[derive(Default)]
pub struct Listens {
    follows: [Option<Follow>; 4],
}

/// Listen rows waiting to be handled before the listen is given up for
/// this connection (the poll then covers the list): a burst of this many
/// changes is far beyond a site's logins, and a router flooding the
/// listen must not grow the agent's memory.
const MAX_UNREAD: usize = 4096;
/// The same for a user list, where bursts are larger: each comment the
/// agent writes at activation comes back as a row, and the first poll
/// after a long outage can activate thousands of vouchers before the
/// agent reads the rows again (a few MB at most).
const MAX_UNREAD_USERS: usize = 16_384;

impl Listens {
    /// Starts the active lists' listens on the current connection, and the
    /// user lists' too when `users` (they are useless when every poll reads
    /// the users anyway). A failure to send (the connection just dropped)
    /// leaves that list to the poll.
    pub fn open(&mut self, router: &Router, users: bool) -> Vec<Heard> {
        let mut ended = Vec::new();
        for list in List::ALL {
            self.follows[list.index()] = None;
            if matches!(list, List::Users(_)) && !users {
                continue;
            }
            ended.extend(self.reopen(router, list));
        }
        ended
    }

    /// Starts (again) the listen on one list; what ended it before is
    /// dropped. `Some`: it could not be sent.
    pub fn reopen(&mut self, router: &Router, list: List) -> Option<Heard> {
        let slot = &mut self.follows[list.index()];
        *slot = None;
        let cmd = crate::commands::listen(list.path(), list.props());
        let bound = match list {
            List::Active(_) => MAX_UNREAD,
            List::Users(_) => MAX_UNREAD_USERS,
        };
        match router.stream_bounded(cmd, bound) {
            Ok(stream) => {
                *slot = Some(Follow {
                    stream,
                    typing: Typing::new(list),
                });
                None
            }
            // The connection is going: the next one opens it.
            Err(e) => Some(Heard::Ended {
                list,
                why: e.to_string(),
                retry: false,
            }),
        }
    }

    /// Drops every listen (dropping a stream cancels its command).
    pub fn close(&mut self) {
        self.follows = Default::default();
    }

    pub fn is_open(&self, list: List) -> bool {
        self.follows[list.index()].is_some()
    }

    /// The next thing any listen produced; never resolves while none is
    /// open.
    pub async fn next(&mut self) -> Heard {
        async fn recv(f: &mut Option<Follow>) -> Option<Result<Item, ClientError>> {
            match f {
                Some(f) => f.stream.next().await,
                None => std::future::pending().await,
            }
        }
        let [a, b, c, d] = &mut self.follows;
        let (list, item) = tokio::select! {
            r = recv(a) => (List::ALL[0], r),
            r = recv(b) => (List::ALL[1], r),
            r = recv(c) => (List::ALL[2], r),
            r = recv(d) => (List::ALL[3], r),
        };
        self.handle(list, item)
    }

    /// A user list's next row if one has already arrived, without
    /// waiting: the driver takes them while it writes to the router (the
    /// comment of each voucher it activates comes back as a row), so
    /// thousands do not wait in memory for the writes to finish.
    pub fn try_next_user(&mut self) -> Option<Heard> {
        for list in [List::Users(Service::Hotspot), List::Users(Service::Pppoe)] {
            let Some(follow) = self.follows[list.index()].as_mut() else {
                continue;
            };
            if let Some(item) = follow.stream.try_next() {
                return Some(self.handle(list, Some(item)));
            }
        }
        None
    }

    /// What an item of `list`'s listen means; `None` is its end.
    fn handle(&mut self, list: List, item: Option<Result<Item, ClientError>>) -> Heard {
        let slot = &mut self.follows[list.index()];
        let (why, retry) = match item {
            Some(Ok(Item::Row(attrs))) => {
                if let Some(follow) = slot.as_mut() {
                    let heard = follow.typing.heard(list, &attrs);
                    follow.stream.recycle(attrs);
                    return heard;
                }
                return Heard::Skipped(Vec::new());
            }
            // Interrupted (category 2) is worth another try; anything
            // else (`no such command`) is the router saying no.
            Some(Ok(Item::Trap(t))) => (t.message, t.category == Some(2)),
            Some(Ok(Item::Done(_))) => ("ended".to_owned(), true),
            // Overflowed (`Behind`), or the session failing: the driver
            // hears of the latter and starts afresh anyway.
            Some(Err(e)) => (e.to_string(), true),
            None => ("ended".to_owned(), true),
        };
        *slot = None;
        Heard::Ended { list, why, retry }
    }
}

impl Typing {
    fn new(list: List) -> Typing {
        Typing {
            rows: match list {
                List::Active(s) => Rows::Sessions(SessionRows::new(s)),
                List::Users(s) => Rows::Users(s, UserRows::new(s)),
            },
            since_tidy: 0,
        }
    }

    fn names(&mut self) -> &mut crate::name_cache::NameCache {
        match &mut self.rows {
            Rows::Sessions(rows) => &mut rows.names,
            Rows::Users(_, rows) => &mut rows.names,
        }
    }

    fn heard(&mut self, list: List, attrs: &Attrs) -> Heard {
        self.since_tidy += 1;
        if self.since_tidy >= TIDY_EVERY {
            self.since_tidy = 0;
            self.names().rotate();
        }
        if matches!(attrs.get(".dead"), Some(b"yes") | Some(b"true")) {
            let Some(id) = attrs.get(".id").and_then(Id::parse) else {
                return Heard::Skipped(Vec::new());
            };
            return match list {
                // Whether the agent kicked it is the driver's to say.
                List::Active(service) => Heard::Change(ListenChange::Removed {
                    service,
                    id,
                    kicked: false,
                }),
                List::Users(service) => Heard::User(UserChange::Removed(service, id)),
            };
        }
        match &mut self.rows {
            Rows::Sessions(rows) => {
                rows.push(attrs);
                let warnings = std::mem::take(&mut rows.warnings);
                match rows.rows.pop() {
                    Some(row) => Heard::Change(ListenChange::Upsert(row)),
                    None => Heard::Skipped(warnings),
                }
            }
            Rows::Users(service, rows) => {
                rows.push(attrs);
                let warnings = std::mem::take(&mut rows.warnings);
                match rows.rows.pop() {
                    Some(row) => Heard::User(UserChange::Upsert(*service, row)),
                    None => Heard::Skipped(warnings),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::agent::rows::test_attrs as attrs;
    use crate::agent::state::{ActiveRead, AgentState, Schedule};
    use std::time::{Duration, Instant};

    #[test]
    fn an_overflowed_listen_ends_to_be_reopened_and_the_poll_reads_in_full() {
        // The client cancels a listen its reader fell behind on and ends
        // the stream with `Behind`: the listen ends, to be retried.
        let mut listens = Listens::default();
        let list = List::Active(Service::Hotspot);
        let overflowed = ClientError::Behind {
            command: "/ip/hotspot/active/listen".to_owned(),
            unread: MAX_UNREAD,
        };
        let heard = listens.handle(list, Some(Err(overflowed)));
        let Heard::Ended {
            list: ended, retry, ..
        } = heard
        else {
            panic!("not ended: {heard:?}");
        };
        assert_eq!(ended, list);
        assert!(retry, "an overflow is worth reopening");
        assert!(!listens.is_open(list));
        // The bookkeeping then reads that list in full at the next poll
        // and reopens its listen.
        let t0 = Instant::now();
        let schedule = Schedule {
            poll: Duration::from_secs(30),
            active_read: Duration::from_secs(300),
        };
        let mut book = AgentState::new(3, schedule).poll;
        book.set_active_listening(Service::Hotspot, true);
        book.set_active_listening(Service::Pppoe, true);
        book.read_full(t0, [vec![], vec![]]);
        assert_eq!(book.active_read(t0), ActiveRead::Check);
        book.listen_ended(ended, retry);
        assert_eq!(book.active_read(t0), ActiveRead::Full);
        assert_eq!(book.take_reopen(), [list]);
    }

    #[test]
    fn a_long_listen_lets_go_of_names_nothing_holds() {
        let mut typing = Typing::new(List::Active(Service::Pppoe));
        let mut kept = Vec::new();
        for i in 0..10 * TIDY_EVERY {
            let row = attrs(&[
                (".id", format!("*{i:X}").as_bytes()),
                ("name", format!("user{i}").as_bytes()),
                ("session-id", format!("0x{i:08X}").as_bytes()),
                ("caller-id", b"AA:BB:CC:00:11:22"),
                ("uptime", b"1s"),
            ]);
            let heard = typing.heard(List::Active(Service::Pppoe), &row);
            let Heard::Change(ListenChange::Upsert(s)) = heard else {
                panic!("row {i} not typed: {heard:?}");
            };
            // The first session stays open (held, as the monitor state
            // would); the others end.
            if i == 0 {
                kept.push(s);
            }
        }
        // Each row brought two new names; only the last tidying's worth
        // (and what is still held) remain.
        let cached = typing.names().len();
        assert!(
            cached <= 2 * TIDY_EVERY as usize + 3,
            "{cached} names cached"
        );
        // A name still held elsewhere is still shared, not copied again.
        let again = typing.heard(
            List::Active(Service::Pppoe),
            &attrs(&[(".id", b"*0"), ("name", b"user0"), ("uptime", b"2s")]),
        );
        let Heard::Change(ListenChange::Upsert(s)) = again else {
            panic!("not typed");
        };
        assert!(s.user.same_allocation(&kept[0].user));
    }
}
