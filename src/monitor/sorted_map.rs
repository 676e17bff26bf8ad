//! A map kept as one sorted vector: the monitor state's large maps.
//!
//! The state holds thousands of sessions and usage baselines and is
//! rebuilt every poll while the last one is still alive (the view and the
//! delta read it). A `BTreeMap` built by inserting keys in order leaves
//! its nodes about half full, with a node header each: close to twice the
//! entries' own size. One vector costs the entries and nothing else, and
//! a poll builds it by pushing in key order. The price is an insertion in
//! the middle moving the entries after it, which only the listen path does,
//! one entry per login.
//!
//! The vector is shared between copies until one of them changes (copy on
//! write): a poll that changes no usage baseline keeps the last state's
//! map instead of copying 10,000 entries, and the delta sees at once that
//! nothing changed.

use std::cmp::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug)]
pub struct SortedMap<K, V> {
    /// Ascending by key, no key twice.
    entries: Arc<Vec<(K, V)>>,
}

impl<K, V> Clone for SortedMap<K, V> {
    fn clone(&self) -> Self {
        SortedMap {
            entries: Arc::clone(&self.entries),
        }
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for SortedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.same_copy(other) || self.entries == other.entries
    }
}

impl<K: Eq, V: Eq> Eq for SortedMap<K, V> {}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            entries: Arc::new(Vec::new()),
        }
    }
}

impl<K, V> SortedMap<K, V> {
    /// Where the entries live, for tests that a change was made in place.
    #[cfg(test)]
    pub(crate) fn entries_addr(&self) -> *const (K, V) {
        self.entries.as_ptr()
    }

    /// Both are the same copy (so certainly equal): nothing changed.
    pub fn same_copy(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries)
    }
}

impl<K: Ord + Clone, V: Clone> SortedMap<K, V> {
    /// The entries to change; copied first if another copy shares them.
    fn entries_mut(&mut self) -> &mut Vec<(K, V)> {
        Arc::make_mut(&mut self.entries)
    }

    pub fn new() -> Self {
        SortedMap::default()
    }

    fn find(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(key).ok()?;
        Some(&mut self.entries_mut()[i].1)
    }

    /// Where `key` is, for [`value_at`](Self::value_at) and
    /// [`value_at_mut`](Self::value_at_mut): one search for a read and a
    /// write. Positions hold until an entry is inserted or removed.
    pub fn position(&self, key: &K) -> Option<usize> {
        self.find(key).ok()
    }

    /// The key at a position (`0..len()`, in key order).
    pub fn key_at(&self, at: usize) -> &K {
        &self.entries[at].0
    }

    pub fn value_at(&self, at: usize) -> &V {
        &self.entries[at].1
    }

    pub fn value_at_mut(&mut self, at: usize) -> &mut V {
        &mut self.entries_mut()[at].1
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// Inserts or replaces; returns the replaced value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries_mut()[i].1, value)),
            Err(i) => {
                self.entries_mut().insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.find(key).ok()?;
        Some(self.entries_mut().remove(i).1)
    }

    /// Keeps the entries `keep` says yes to; unshared only if one goes.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        if self.entries.iter().all(|(k, v)| keep(k, v)) {
            return;
        }
        self.entries_mut().retain(|(k, v)| keep(k, v));
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries_mut().iter_mut().map(|(_, v)| v)
    }

    /// Applies many inserts at once: one merge pass rather than moving
    /// the entries once per insert (a first poll adds thousands). Of two
    /// values for one key, the later wins, as with repeated inserts.
    ///
    /// A map nothing else shares is changed in place when the new keys
    /// are few (replacing a value is in place anyway): a poll that moves
    /// some usage baselines must not copy all 10,000.
    pub fn insert_all(&mut self, mut new: Vec<(K, V)>) {
        if new.is_empty() {
            return;
        }
        // Values of keys already there are swapped in; `new` keeps the
        // new keys only (filtered in place: no second vector of them).
        if let Some(entries) = Arc::get_mut(&mut self.entries)
            && !entries.is_empty()
        {
            new.retain_mut(|(k, v)| match entries.binary_search_by(|(e, _)| e.cmp(k)) {
                Ok(i) => {
                    std::mem::swap(&mut entries[i].1, v);
                    false
                }
                Err(_) => true,
            });
        }
        if new.len() < 8 {
            for (k, v) in new {
                self.insert(k, v);
            }
            return;
        }
        sort_by_key_stable(&mut new);
        let merged = match Arc::try_unwrap(std::mem::take(&mut self.entries)) {
            // Empty on a first poll: `new`'s vector becomes the map.
            Ok(old) => merge(old, new),
            // Shared with the last state (the usual case): merged straight
            // from it, rather than copied whole and then merged.
            Err(shared) => merge(shared.iter().cloned(), new),
        };
        self.entries = Arc::new(merged);
    }

    /// Frees spare capacity left by removals or a merge (a vector grown by
    /// doubling can be half empty).
    pub fn shrink(&mut self) {
        if self.entries.capacity() > self.entries.len() + self.entries.len() / 8 {
            self.entries_mut().shrink_to_fit();
        }
    }
}

/// Sorts entries by key, keeping the order of equal keys (so "the later
/// wins" holds), without the standard stable sort's scratch copy of the
/// entries: at 10,000 usage baselines that copy was most of a megabyte,
/// at a first poll's peak. Positions are sorted instead (four bytes
/// each) and the entries then moved into place, one cycle at a time.
fn sort_by_key_stable<K: Ord, V>(entries: &mut [(K, V)]) {
    if entries.is_sorted_by(|a, b| a.0 <= b.0) {
        return;
    }
    // A map of more than 4 billion entries could not be held anyway.
    let Ok(len) = u32::try_from(entries.len()) else {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        return;
    };
    let mut order: Vec<u32> = (0..len).collect();
    order.sort_by(|&a, &b| entries[a as usize].0.cmp(&entries[b as usize].0));
    // Position `i` takes the entry at `order[i]`: follow each cycle of the
    // permutation, swapping, and mark what is done.
    const DONE: u32 = u32::MAX;
    for start in 0..entries.len() {
        let mut at = start;
        loop {
            let from = std::mem::replace(&mut order[at], DONE);
            if from == DONE || from as usize == start {
                break;
            }
            entries.swap(at, from as usize);
            at = from as usize;
        }
    }
}

/// Of equal keys next to each other (sorted, stably), keeps the last.
fn dedup_keep_last<K: PartialEq, V>(entries: &mut Vec<(K, V)>) {
    entries.reverse();
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    entries.reverse();
}

/// Merges sorted `new` (later of equal keys wins) into sorted `old`; a
/// key in both takes `new`'s value. With `old` empty, `new`'s own vector
/// is the result.
fn merge<K: Ord, V>(old: impl IntoIterator<Item = (K, V)>, new: Vec<(K, V)>) -> Vec<(K, V)> {
    let mut old = old.into_iter().peekable();
    if old.peek().is_none() {
        let mut new = new;
        dedup_keep_last(&mut new);
        return new;
    }
    let mut merged: Vec<(K, V)> = Vec::with_capacity(old.size_hint().0 + new.len());
    let mut new = new.into_iter().peekable();
    loop {
        let take_new = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((o, _)), Some((n, _))) => match o.cmp(n) {
                Ordering::Less => false,
                Ordering::Greater => true,
                Ordering::Equal => {
                    old.next();
                    true
                }
            },
        };
        let Some(entry) = (if take_new { new.next() } else { old.next() }) else {
            break;
        };
        // A key given twice in `new`: the later one (stable sort) wins.
        match merged.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => merged.push(entry),
        }
    }
    merged
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for SortedMap<K, V> {
    /// Already in key order (a poll builds its maps that way) costs one
    /// pass; otherwise a sort. Of two values for one key the later wins.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut entries: Vec<(K, V)> = iter.into_iter().collect();
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            sort_by_key_stable(&mut entries);
            dedup_keep_last(&mut entries);
        }
        entries.shrink_to_fit();
        SortedMap {
            entries: Arc::new(entries),
        }
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

/// As a map, like the `BTreeMap` it replaced (same bytes in postcard).
impl<K: Serialize, V: Serialize> Serialize for SortedMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.entries.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, K: Ord + Clone + Deserialize<'de>, V: Clone + Deserialize<'de>> Deserialize<'de>
    for SortedMap<K, V>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<K, V>::deserialize(d)?;
        Ok(map.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Remove(u8),
        /// With another copy sharing the entries (`true`) or not.
        InsertAll(Vec<(u8, u16)>, bool),
        Retain(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
            any::<u8>().prop_map(Op::Remove),
            (
                proptest::collection::vec((any::<u8>(), any::<u16>()), 0..40),
                any::<bool>()
            )
                .prop_map(|(kvs, shared)| Op::InsertAll(kvs, shared)),
            any::<u8>().prop_map(Op::Retain),
        ]
    }

    #[test]
    fn insert_all_changes_values_of_an_unshared_map_in_place() {
        let mut map: SortedMap<u32, u32> = (0..100).map(|k| (k, 0)).collect();
        let at = map.entries_addr();
        map.insert_all((0..50).map(|k| (k * 2, 1)).collect());
        assert_eq!(map.entries_addr(), at, "no new vector");
        assert!(map.iter().all(|(k, v)| *v == u32::from(k % 2 == 0)));
        // Shared: a new vector, the other copy untouched.
        let other = map.clone();
        map.insert_all((0..50).map(|k| (k, 7)).collect());
        assert_ne!(map.entries_addr(), other.entries_addr());
        assert_eq!(other.get(&1), Some(&0));
        assert_eq!(map.get(&1), Some(&7));
    }

    proptest! {
        /// The same order as the standard stable sort, equal keys included.
        #[test]
        fn sorts_as_the_standard_stable_sort(
            mut v in proptest::collection::vec((0u8..16, any::<u16>()), 0..200),
        ) {
            let mut expected = v.clone();
            expected.sort_by_key(|a| a.0);
            sort_by_key_stable(&mut v);
            prop_assert_eq!(v, expected);
        }

        /// Every operation answers as `BTreeMap` does.
        #[test]
        fn behaves_as_a_btreemap(
            start in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..60),
            ops in proptest::collection::vec(op(), 0..40),
        ) {
            let mut ours: SortedMap<u8, u16> = start.iter().copied().collect();
            let mut model: BTreeMap<u8, u16> = start.iter().copied().collect();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(ours.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(ours.remove(&k), model.remove(&k)),
                    Op::InsertAll(kvs, shared) => {
                        let before = shared.then(|| ours.clone());
                        ours.insert_all(kvs.clone());
                        if let Some(before) = before {
                            prop_assert!(before.iter().eq(model.iter()), "the other copy is untouched");
                        }
                        model.extend(kvs);
                    }
                    Op::Retain(m) => {
                        let before = ours.clone();
                        ours.retain(|k, _| k % 7 != m % 7);
                        // A copy is never changed by changes to another.
                        prop_assert!(before.iter().eq(model.iter()));
                        model.retain(|k, _| k % 7 != m % 7);
                    }
                }
                ours.shrink();
                prop_assert_eq!(ours.len(), model.len());
                prop_assert!(ours.iter().eq(model.iter()));
                for k in [0u8, 1, 100, 255] {
                    prop_assert_eq!(ours.get(&k), model.get(&k));
                    prop_assert_eq!(ours.contains_key(&k), model.contains_key(&k));
                }
            }
            // A clone is the same copy until one side changes.
            let mut copy = ours.clone();
            prop_assert!(copy.same_copy(&ours));
            copy.insert_all(Vec::new());
            copy.retain(|_, _| true);
            prop_assert!(copy.same_copy(&ours), "no-op changes keep sharing");
            copy.insert(7, 7);
            prop_assert!(!copy.same_copy(&ours));
            prop_assert!(ours.iter().eq(model.iter()), "the original is untouched");
            // Same bytes as the map it replaced, both ways.
            let bytes = postcard::to_allocvec(&ours).unwrap();
            prop_assert_eq!(&bytes, &postcard::to_allocvec(&model).unwrap());
            let back: SortedMap<u8, u16> = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back, ours);
        }
    }
}
