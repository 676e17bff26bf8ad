//! Names seen in a table's last read, reused by its next read.
//!
//! Every poll re-reads the same thousands of names and comments. Handing
//! out the previous read's [`Name`] (a reference count) instead of a new
//! copy saves an allocation and a free per field per row, and keeps one
//! copy in memory where the rows and the monitor state would hold two.

use std::hash::BuildHasher;

use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};

use crate::name::{Name, same_bytes};

/// Keyed by the bytes' hash, and every hit checked against the bytes (so
/// a collision only costs a copy): the lookup compares each name once,
/// word-wise, instead of through libc's byte-wise `memcmp`.
#[derive(Default)]
pub struct NameCache {
    prev: HashMap<u64, Name>,
    next: HashMap<u64, Name>,
}

impl NameCache {
    /// The name for `raw`: the last read's when it had one.
    pub fn get(&mut self, raw: &[u8]) -> Name {
        let hash = FxBuildHasher.hash_one(raw);
        if let Some(n) = self.next.get(&hash)
            && same_bytes(n.as_bytes(), raw)
        {
            return n.clone();
        }
        let name = match self.prev.get(&hash) {
            Some(n) if same_bytes(n.as_bytes(), raw) => n.clone(),
            _ => Name::new(raw),
        };
        // On a collision the first name keeps the slot.
        self.next.entry(hash).or_insert_with(|| name.clone());
        name
    }

    /// Ends a read: what it saw is what the next read reuses; names no
    /// longer on the router are let go.
    pub fn rotate(&mut self) {
        // Swapped and cleared, not replaced: the tables keep their memory
        // from read to read (no fresh pages each poll).
        std::mem::swap(&mut self.prev, &mut self.next);
        self.next.clear();
    }

    /// Takes the cache out of a finished read, rotated for the next.
    pub fn rotated(&mut self) -> NameCache {
        self.rotate();
        std::mem::take(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &Name, b: &Name) -> bool {
        std::ptr::eq(a.as_bytes(), b.as_bytes())
    }

    #[test]
    fn reuses_the_last_reads_names_and_drops_gone_ones() {
        let mut c = NameCache::default();
        let a = c.get(b"alice");
        let b = c.get(b"caf\xe9");
        assert!(same(&a, &c.get(b"alice")), "within a read");
        c.rotate();
        assert!(same(&a, &c.get(b"alice")), "across reads");
        assert_eq!(c.get(b"caf\xe8").as_bytes(), b"caf\xe8");
        assert!(!same(&b, &c.get(b"caf\xe8")), "bytes differ: another name");
        c.rotate();
        // `caf\xe9` was not in the last read: a fresh copy.
        let b2 = c.get(b"caf\xe9");
        assert_eq!(b2, b);
        assert!(!same(&b, &b2));
    }

    #[test]
    fn a_hash_collision_never_returns_the_wrong_name() {
        let mut c = NameCache::default();
        let a = c.get(b"alice");
        // Force a collision: `bob` stored under alice's hash.
        let hash = FxBuildHasher.hash_one(&b"alice"[..]);
        c.next.insert(hash, Name::new(b"bob"));
        assert_eq!(c.get(b"alice"), a);
        c.rotate();
        assert_eq!(c.get(b"alice"), a);
    }
}
