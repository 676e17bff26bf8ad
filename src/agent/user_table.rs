//! The driver's copy of one user list (hotspot users or PPP secrets),
//! kept between polls.
//!
//! Users change rarely (a batch created, a comment written at activation,
//! an expiry), but there are thousands of them: reading and typing them all
//! at every poll was most of a quiet poll's cost. So while `listen` on the
//! list is open, its changes are applied here as they arrive, and the list
//! is read in full only every `user_read_secs` (the safety net for anything
//! a listen does not report, such as the cumulative counters of hotspot
//! users, which move when a session ends). Without the listen (refused, or
//! ended) or with `user_read_secs = 0`, every poll reads the list.

use std::time::{Duration, Instant};

use super::listen::UserChange;
use crate::event::Service;
use crate::monitor::{ManagedUsers, MonitorConfig, UserRow, is_managed};
use crate::name::{Id, Name};
use crate::name_cache::NameCache;

#[derive(Default)]
pub struct UserTable {
    /// The users in the router's order (listen additions at the end).
    pub rows: Vec<UserRow>,
    /// When the list was last read in full since its listen opened;
    /// `None` until then (and after a failed read).
    read_at: Option<Instant>,
    /// `rows` are in ascending `.id` order (as RouterOS lists them), so a
    /// change finds its row by binary search: a burst of thousands of
    /// changes (a batch created, vouchers activated) stays linear.
    sorted: bool,
    /// Positions in `rows` ordered by name (then position), for the
    /// listen path's lookups; rebuilt by [`UserTable::index_names`] when
    /// rows came or went or were renamed since. Four bytes a user, where
    /// a map of names to rows would be a second copy of the list.
    by_name: Vec<u32>,
    by_name_stale: bool,
    /// Bumped whenever `rows` change (read, listen change, failed read):
    /// a poll whose lists are as the last step saw them can skip the
    /// step's per-user work that only depends on them.
    changes: u64,
    /// Names for the first read to reuse: the state's, as loaded at start
    /// (see [`UserTable::seed_names`]).
    seed: NameCache,
}

impl UserTable {
    /// Whether this poll must read the list in full; `listening`: the
    /// list's listen is open, so `rows` stays current between reads.
    pub fn needs_read(&self, listening: bool, every: Duration, now: Instant) -> bool {
        match self.read_at {
            Some(at) if listening && !every.is_zero() => now.duration_since(at) >= every,
            _ => true,
        }
    }

    /// A full read replaced the rows.
    pub fn read(&mut self, rows: Vec<UserRow>, at: Instant) {
        self.changes = self.changes.wrapping_add(1);
        self.sorted = rows.is_sorted_by_key(|r| r.id);
        self.rows = rows;
        self.by_name_stale = true;
        self.read_at = Some(at);
    }

    /// A full read failed (the router refused it): the rows taken for it
    /// are gone, so the copy must not stand in for the list until a read
    /// succeeds.
    pub fn read_failed(&mut self) {
        self.changes = self.changes.wrapping_add(1);
        self.rows.clear();
        self.by_name_stale = true;
        self.read_at = None;
    }

    /// The list's listen opened (on a new connection: changes made
    /// meanwhile were not heard) or ended: either way the next poll reads
    /// the list in full.
    pub fn forget_read(&mut self) {
        self.read_at = None;
    }

    /// Applies a listen change. Until the list has been read in full on
    /// this connection there is nothing to apply it to: the read to come
    /// covers it (a row heard during that read is applied after it, and
    /// being the newer, wins).
    pub fn apply(&mut self, change: UserChange) {
        if self.read_at.is_none() {
            return;
        }
        self.changes = self.changes.wrapping_add(1);
        match change {
            UserChange::Upsert(_, row) => match self.find(row.id) {
                Ok(i) => {
                    self.by_name_stale |= self.rows[i].name != row.name;
                    self.rows[i] = row;
                }
                Err(i) => {
                    self.by_name_stale = true;
                    // A new user: where its id sorts, or at the end.
                    let i = if self.sorted { i } else { self.rows.len() };
                    self.rows.insert(i, row);
                }
            },
            UserChange::Removed(_, id) => {
                if let Ok(i) = self.find(id) {
                    self.rows.remove(i);
                    self.by_name_stale = true;
                }
            }
        }
    }

    /// The names and comments the copy holds, for a full read to reuse
    /// (one copy, shared with the monitor state). Built for the read and
    /// dropped after it: a cache kept between reads (minutes apart) was
    /// most of a megabyte at 10,000 users.
    pub fn name_cache(&mut self) -> NameCache {
        if self.rows.is_empty() {
            return std::mem::take(&mut self.seed);
        }
        NameCache::of(self.rows.iter().flat_map(|r| [&r.name, &r.comment]))
    }

    /// Names the first read hands out where they match, so that the rows
    /// share them with the state loaded at start (a restart would
    /// otherwise hold every user's name twice).
    pub fn seed_names(&mut self, names: NameCache) {
        self.seed = names;
    }

    /// A mark that moves whenever the rows change.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Puts the rows back after a step borrowed them (moved out into the
    /// poll's snapshot and back, unchanged).
    pub fn put_back(&mut self, rows: Vec<UserRow>) {
        self.rows = rows;
    }

    /// Brings the name index up to date; before [`UserTable::by_name`].
    pub fn index_names(&mut self) {
        if !self.by_name_stale {
            return;
        }
        let rows = &self.rows;
        self.by_name.clear();
        // Positions fit in u32: a list is capped far below 4 billion rows
        // by the reply size limit.
        self.by_name
            .extend((0..rows.len()).map(|i| u32::try_from(i).unwrap_or(u32::MAX)));
        // Stable: rows of one name stay in the router's order.
        self.by_name
            .sort_by(|&a, &b| rows[a as usize].name.cmp(&rows[b as usize].name));
        self.by_name_stale = false;
    }

    /// The rows named `name`, last first (a name's last row is the one
    /// that counts, as in a poll). Empty while the index is stale.
    pub fn by_name<'a>(&'a self, name: &Name) -> impl Iterator<Item = &'a UserRow> + use<'a> {
        let index: &[u32] = if self.by_name_stale {
            &[]
        } else {
            &self.by_name
        };
        let name_of = |i: &u32| self.rows.get(*i as usize).map(|r| &r.name);
        let start = index.partition_point(|i| name_of(i) < Some(name));
        let end = index.partition_point(|i| name_of(i) <= Some(name));
        index[start..end]
            .iter()
            .rev()
            .filter_map(|&i| self.rows.get(i as usize))
    }

    /// The user with this `.id`, if the copy has it.
    pub fn get(&self, id: Id) -> Option<&UserRow> {
        self.find(id).ok().map(|i| &self.rows[i])
    }

    /// The row's position, or (in sorted order) where it would go.
    fn find(&self, id: Id) -> Result<usize, usize> {
        if self.sorted {
            self.rows.binary_search_by_key(&id, |r| r.id)
        } else {
            self.rows
                .iter()
                .rposition(|r| r.id == id)
                .ok_or(self.rows.len())
        }
    }
}

/// The listen path's managed users ([`ManagedUsers`]): the two kept
/// lists, filtered by the profile patterns at lookup (one glob per login).
pub struct KeptUsers<'a> {
    pub hotspot: &'a UserTable,
    pub ppp: &'a UserTable,
    pub cfg: &'a MonitorConfig,
}

impl ManagedUsers for KeptUsers<'_> {
    fn managed(&self, service: Service, name: &Name) -> Option<&UserRow> {
        let table = match service {
            Service::Hotspot => self.hotspot,
            Service::Pppoe => self.ppp,
        };
        let pattern = self.cfg.pattern(service);
        table
            .by_name(name)
            .find(|u| is_managed(service, pattern, u.profile.as_bytes(), u.comment.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, name: &str, comment: &str) -> UserRow {
        UserRow {
            id: Id(id),
            name: Name::new(name.as_bytes()),
            profile: Name::new(b"voucher-1h"),
            comment: Name::new(comment.as_bytes()),
            disabled: false,
            totals: None,
        }
    }

    fn names(t: &UserTable) -> Vec<&[u8]> {
        t.rows.iter().map(|r| r.name.as_bytes()).collect()
    }

    #[test]
    fn changes_apply_by_id_and_keep_the_routers_order() {
        let mut t = UserTable::default();
        let at = Instant::now();
        t.read(vec![row(1, "a", ""), row(2, "b", ""), row(3, "c", "")], at);
        t.apply(UserChange::Upsert(Service::Hotspot, row(2, "b", "edited")));
        t.apply(UserChange::Upsert(Service::Hotspot, row(9, "new", "")));
        t.apply(UserChange::Removed(Service::Hotspot, Id(1)));
        // Removing what is already gone is a no-op.
        t.apply(UserChange::Removed(Service::Hotspot, Id(1)));
        assert_eq!(names(&t), [&b"b"[..], b"c", b"new"]);
        assert_eq!(t.rows[0].comment.as_bytes(), b"edited");
    }

    #[test]
    fn the_first_read_hands_out_the_seeded_names_and_later_ones_the_rows() {
        let mut t = UserTable::default();
        let loaded = Name::new("v1");
        t.seed_names(NameCache::of([&loaded].into_iter()));
        let mut first = t.name_cache();
        assert!(first.get(b"v1").same_allocation(&loaded));
        let read = first.get(b"v2");
        t.read(
            vec![UserRow {
                name: read.clone(),
                ..row(1, "", "")
            }],
            Instant::now(),
        );
        // From the second read on, the last read's rows are the source.
        let mut next = t.name_cache();
        assert!(next.get(b"v2").same_allocation(&read));
        assert!(!next.get(b"v1").same_allocation(&loaded));
    }

    #[test]
    fn every_change_to_the_rows_moves_the_mark() {
        let mut t = UserTable::default();
        let mark = t.changes();
        // Not read yet: a listen change has nothing to apply to.
        t.apply(UserChange::Removed(Service::Hotspot, Id(1)));
        assert_eq!(t.changes(), mark);
        t.read(vec![row(1, "a", "")], Instant::now());
        let read = t.changes();
        assert_ne!(read, mark);
        let rows = std::mem::take(&mut t.rows);
        t.put_back(rows);
        assert_eq!(t.changes(), read, "borrowed by a step and put back");
        t.apply(UserChange::Upsert(Service::Hotspot, row(1, "a", "edited")));
        let edited = t.changes();
        assert_ne!(edited, read);
        t.read_failed();
        assert_ne!(t.changes(), edited);
    }

    #[test]
    fn changes_apply_to_a_list_not_in_id_order_too() {
        let mut t = UserTable::default();
        t.read(vec![row(5, "e", ""), row(2, "b", "")], Instant::now());
        t.apply(UserChange::Upsert(Service::Hotspot, row(2, "b", "x")));
        t.apply(UserChange::Upsert(Service::Hotspot, row(3, "c", "")));
        t.apply(UserChange::Removed(Service::Hotspot, Id(5)));
        assert_eq!(names(&t), [&b"b"[..], b"c"]);
        assert_eq!(t.get(Id(2)).map(|r| r.comment.as_bytes()), Some(&b"x"[..]));
        assert!(t.get(Id(5)).is_none());
    }

    fn cfg() -> MonitorConfig {
        MonitorConfig {
            hotspot_pattern: "voucher*".into(),
            pppoe_pattern: "*pppoe*".into(),
            usage_secs: 300,
            expired_action: crate::event::ExpiredAction::Disable,
            mac_lock: false,
            mac_lock_pattern: None,
        }
    }

    fn with_profile(mut r: UserRow, profile: &str) -> UserRow {
        r.profile = Name::new(profile.as_bytes());
        r
    }

    #[test]
    fn the_listen_path_finds_managed_users_by_raw_name_as_listen_changes_them() {
        let mut hotspot = UserTable::default();
        let ppp = UserTable::default();
        let mut rows = vec![
            row(1, "", ""),
            with_profile(row(2, "", ""), "staff"),
            row(3, "b", ""),
        ];
        // Names as raw bytes: one byte apart, neither valid UTF-8.
        rows[0].name = Name::new(b"caf\xe9");
        rows[1].name = Name::new(b"caf\xe8");
        hotspot.read(rows, Instant::now());
        let cfg = cfg();
        let find = |t: &mut UserTable, service, name: &[u8]| {
            t.index_names();
            let users = KeptUsers {
                hotspot: t,
                ppp: &ppp,
                cfg: &cfg,
            };
            users.managed(service, &Name::new(name)).map(|u| u.id)
        };
        // Stale until indexed: nothing rather than a wrong row.
        assert_eq!(hotspot.by_name(&Name::new(b"b")).count(), 0);
        assert_eq!(find(&mut hotspot, Service::Hotspot, b"b"), Some(Id(3)));
        assert_eq!(
            find(&mut hotspot, Service::Hotspot, b"caf\xe9"),
            Some(Id(1))
        );
        // Same name up to a non-UTF-8 byte, and not a managed profile.
        assert_eq!(find(&mut hotspot, Service::Hotspot, b"caf\xe8"), None);
        assert_eq!(find(&mut hotspot, Service::Pppoe, b"b"), None, "other list");
        // A voucher created, one renamed, one removed, one moved to a
        // managed profile: each seen at the next lookup.
        hotspot.apply(UserChange::Upsert(Service::Hotspot, row(9, "new", "")));
        hotspot.apply(UserChange::Upsert(Service::Hotspot, row(3, "b2", "")));
        hotspot.apply(UserChange::Removed(Service::Hotspot, Id(1)));
        let mut moved = row(2, "x", "");
        moved.name = Name::new(b"caf\xe8");
        hotspot.apply(UserChange::Upsert(Service::Hotspot, moved));
        assert_eq!(find(&mut hotspot, Service::Hotspot, b"new"), Some(Id(9)));
        assert_eq!(find(&mut hotspot, Service::Hotspot, b"b"), None);
        assert_eq!(find(&mut hotspot, Service::Hotspot, b"b2"), Some(Id(3)));
        assert_eq!(find(&mut hotspot, Service::Hotspot, b"caf\xe9"), None);
        assert_eq!(
            find(&mut hotspot, Service::Hotspot, b"caf\xe8"),
            Some(Id(2))
        );
    }

    #[test]
    fn of_two_rows_with_one_name_the_last_managed_one_counts() {
        let mut t = UserTable::default();
        t.read(
            vec![
                row(1, "a", ""),
                row(2, "a", ""),
                with_profile(row(3, "a", ""), "staff"),
            ],
            Instant::now(),
        );
        t.index_names();
        let ids: Vec<Id> = t.by_name(&Name::new(b"a")).map(|u| u.id).collect();
        assert_eq!(ids, [Id(3), Id(2), Id(1)], "last first");
        let cfg = cfg();
        let empty = UserTable::default();
        let users = KeptUsers {
            hotspot: &t,
            ppp: &empty,
            cfg: &cfg,
        };
        assert_eq!(
            users
                .managed(Service::Hotspot, &Name::new(b"a"))
                .map(|u| u.id),
            Some(Id(2))
        );
    }

    #[test]
    fn full_reads_are_due_by_time_and_whenever_the_listen_is_not_open() {
        let every = Duration::from_secs(300);
        let at = Instant::now();
        let mut t = UserTable::default();
        assert!(t.needs_read(true, every, at), "never read");
        t.read(Vec::new(), at);
        assert!(!t.needs_read(true, every, at + Duration::from_secs(299)));
        assert!(t.needs_read(true, every, at + every));
        assert!(
            t.needs_read(false, every, at),
            "read, but nothing keeps it current"
        );
        assert!(t.needs_read(true, Duration::ZERO, at), "0: every poll");
        t.forget_read();
        assert!(
            t.needs_read(true, every, at),
            "a new listen has not seen the past"
        );
    }

    #[test]
    fn a_failed_read_leaves_nothing_to_stand_in_for_the_list() {
        let every = Duration::from_secs(300);
        let at = Instant::now();
        let mut t = UserTable::default();
        t.read(vec![row(1, "a", "")], at);
        assert!(!t.needs_read(true, every, at));
        t.read_failed();
        assert!(t.needs_read(true, every, at));
        assert!(t.rows.is_empty());
        // Nor do listen rows build a partial copy meanwhile.
        t.apply(UserChange::Upsert(Service::Hotspot, row(2, "b", "")));
        assert!(t.rows.is_empty());
    }

    #[test]
    fn changes_before_the_first_full_read_are_left_to_it() {
        let mut t = UserTable::default();
        t.apply(UserChange::Upsert(Service::Hotspot, row(1, "a", "")));
        assert!(t.rows.is_empty());
    }
}
