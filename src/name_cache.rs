//! Names seen in a table's last read, reused by its next read.
//!
//! Every poll re-reads the same thousands of names and comments. Handing
//! out the previous read's [`Name`] (a reference count) instead of a new
//! copy saves an allocation and a free per field per row, and keeps one
//! copy in memory where the rows and the monitor state would hold two.
//! Loading the state file uses it too (each name decoded once), and the
//! first reads after a start are handed the loaded state's names.

use std::hash::BuildHasher;

use std::collections::hash_map::Entry;

use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};

use crate::name::{Name, same_bytes};

/// Keyed by the bytes' hash, and every hit checked against the bytes (so
/// a collision only costs a copy): the lookup compares each name once,
/// word-wise, instead of through libc's byte-wise `memcmp`.
///
/// One table, not one per read: after a read, the names that nothing but
/// the cache holds any more (gone from the router, and from the monitor
/// state) are let go. At 10,000 users a second table was most of a
/// megabyte.
#[derive(Default)]
pub struct NameCache {
    names: HashMap<u64, Name>,
}

impl NameCache {
    /// A cache holding `names` (the first of any two with one hash).
    pub fn of<'a>(names: impl Iterator<Item = &'a Name>) -> NameCache {
        let mut names = names.peekable();
        let mut cache = HashMap::default();
        if names.peek().is_some() {
            for n in names {
                let hash = FxBuildHasher.hash_one(n.as_bytes());
                cache.entry(hash).or_insert_with(|| n.clone());
            }
        }
        NameCache { names: cache }
    }

    /// The name for `raw`: the cached one when there is one.
    pub fn get(&mut self, raw: &[u8]) -> Name {
        let hash = FxBuildHasher.hash_one(raw);
        match self.names.entry(hash) {
            Entry::Occupied(e) if same_bytes(e.get().as_bytes(), raw) => e.get().clone(),
            // On a collision the first name keeps the slot.
            Entry::Occupied(_) => Name::new(raw),
            Entry::Vacant(e) => e.insert(Name::new(raw)).clone(),
        }
    }

    /// Ends a read: names held by nothing else are let go, so the cache
    /// never outgrows what is alive.
    pub fn rotate(&mut self) {
        self.names.retain(|_, n| n.is_shared());
        // Kept from read to read (no fresh pages each poll), unless most
        // of it went (a mass removal).
        if self.names.capacity() > 4 * self.names.len() + 1024 {
            self.names.shrink_to_fit();
        }
    }

    /// Takes the cache out of a finished read, rotated for the next.
    pub fn rotated(&mut self) -> NameCache {
        self.rotate();
        std::mem::take(self)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &Name, b: &Name) -> bool {
        std::ptr::eq(a.as_bytes(), b.as_bytes())
    }

    #[test]
    fn reuses_names_and_lets_go_of_those_nothing_else_holds() {
        let mut c = NameCache::default();
        let a = c.get(b"alice");
        let b = c.get(b"caf\xe9");
        assert!(same(&a, &c.get(b"alice")), "within a read");
        c.rotate();
        assert!(same(&a, &c.get(b"alice")), "across reads");
        assert_eq!(c.get(b"caf\xe8").as_bytes(), b"caf\xe8");
        assert!(!same(&b, &c.get(b"caf\xe8")), "bytes differ: another name");
        // `caf\xe8` is held by nothing else: let go. `b` still is: kept.
        c.rotate();
        assert_eq!(c.len(), 2);
        assert!(same(&b, &c.get(b"caf\xe9")));
        drop((a, b));
        c.rotate();
        assert_eq!(c.len(), 0, "nothing else holds them");
        assert_eq!(c.get(b"alice").as_bytes(), b"alice");
    }

    #[test]
    fn a_cache_of_names_hands_out_those_names() {
        let (a, b) = (Name::new(b"alice"), Name::new(b"caf\xe9"));
        let mut c = NameCache::of([&a, &b, &a].into_iter());
        assert_eq!(c.len(), 2);
        assert!(same(&a, &c.get(b"alice")));
        assert!(same(&b, &c.get(b"caf\xe9")));
        assert!(!same(&b, &c.get(b"caf\xe8")));
    }

    #[test]
    fn a_hash_collision_never_returns_the_wrong_name() {
        let mut c = NameCache::default();
        let a = c.get(b"alice");
        // Force a collision: `bob` stored under alice's hash.
        let hash = FxBuildHasher.hash_one(&b"alice"[..]);
        c.names.insert(hash, Name::new(b"bob"));
        assert_eq!(c.get(b"alice"), a);
        c.rotate();
        assert_eq!(c.get(b"alice"), a);
    }
}
