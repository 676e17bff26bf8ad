//! Row positions by name: an open-addressing hash table of four-byte
//! positions into a list the caller keeps (no key is copied).
//!
//! The step looks rows up by name thousands of times a poll (sessions to
//! their users, users to their usage baselines). A sorted array of
//! positions costs a sort of the whole list by name and about 16 name
//! comparisons per lookup at 50,000 users, each reading two rows far
//! apart in memory; this table is built in one pass and a lookup reads
//! one or two slots and one row, for 6 to 12 bytes a row (a third to two
//! thirds of the slots used).

use std::hash::Hasher;

use rustc_hash::FxHasher;

const EMPTY: u32 = u32::MAX;

pub(super) struct NameIndex {
    /// A power of two long; `EMPTY` or a position.
    slots: Vec<u32>,
    /// Names indexed (positions given less those a later one replaced).
    len: usize,
}

fn hash(name: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(name);
    h.finish()
}

impl NameIndex {
    /// Indexes `positions` (each below `u32::MAX`) by `name_of`; of
    /// positions with equal names, the last one given is kept.
    pub fn build<'a>(
        positions: impl ExactSizeIterator<Item = u32>,
        name_of: impl Fn(u32) -> &'a [u8],
    ) -> NameIndex {
        // A third to two thirds full: short probe sequences (under two
        // slots read for a name present, four for one absent, on average).
        let n = positions.len().max(4);
        let len = (n + n / 2).next_power_of_two();
        let mut index = NameIndex {
            slots: vec![EMPTY; len],
            len: 0,
        };
        for p in positions {
            let name = name_of(p);
            let at = index.probe(name, &name_of);
            index.len += usize::from(index.slots[at] == EMPTY);
            index.slots[at] = p;
        }
        index
    }

    /// [`NameIndex::build`] over positions `0..len`, also returning for
    /// each position the one before it with the same name (`u32::MAX`:
    /// none), so all rows of a name are found from its last without
    /// sorting the list by name (a sort is n log n name comparisons).
    pub fn build_chained<'a>(len: u32, name_of: impl Fn(u32) -> &'a [u8]) -> (NameIndex, Vec<u32>) {
        let n = (len as usize).max(4);
        let slots = (n + n / 2).next_power_of_two();
        let mut index = NameIndex {
            slots: vec![EMPTY; slots],
            len: 0,
        };
        let mut before = Vec::with_capacity(len as usize);
        for p in 0..len {
            let at = index.probe(name_of(p), &name_of);
            let old = index.slots[at];
            index.len += usize::from(old == EMPTY);
            before.push(old);
            index.slots[at] = p;
        }
        (index, before)
    }

    /// How many distinct names are indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The slot holding `name`, or the empty slot where it would go.
    fn probe<'a>(&self, name: &[u8], name_of: &impl Fn(u32) -> &'a [u8]) -> usize {
        let mask = self.slots.len() - 1;
        // Fibonacci hashing: the high bits of the product, which mix all
        // of the hash's bits, pick the slot.
        let bits = self.slots.len().trailing_zeros();
        let mut at =
            (hash(name).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits.max(1))) as usize & mask;
        loop {
            let p = self.slots[at];
            if p == EMPTY || crate::name::same_bytes(name_of(p), name) {
                return at;
            }
            at = (at + 1) & mask;
        }
    }

    /// The position of `name`, if indexed; `name_of` as given to `build`.
    pub fn get<'a>(&self, name: &[u8], name_of: impl Fn(u32) -> &'a [u8]) -> Option<u32> {
        let p = self.slots[self.probe(name, &name_of)];
        (p != EMPTY).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Answers as a map built by inserting the names in order.
        #[test]
        fn answers_as_a_hash_map(
            names in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..4), 0..200),
            probes in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..4), 0..50),
        ) {
            let n = u32::try_from(names.len()).unwrap();
            let name_of = |p: u32| names[p as usize].as_slice();
            let index = NameIndex::build(0..n, name_of);
            let mut model = HashMap::new();
            for (p, name) in names.iter().enumerate() {
                model.insert(name.as_slice(), p as u32);
            }
            prop_assert_eq!(index.len(), model.len());
            for name in names.iter().chain(&probes) {
                prop_assert_eq!(index.get(name, name_of), model.get(name.as_slice()).copied());
            }
        }

        /// The chained build answers as `build`, and walking back from a
        /// name's last position visits exactly its positions, newest first.
        #[test]
        fn chains_list_every_position_of_a_name(
            names in proptest::collection::vec(proptest::collection::vec(0u8..3, 0..3), 0..200),
        ) {
            let n = u32::try_from(names.len()).unwrap();
            let name_of = |p: u32| names[p as usize].as_slice();
            let (index, before) = NameIndex::build_chained(n, name_of);
            let plain = NameIndex::build(0..n, name_of);
            prop_assert_eq!(index.len(), plain.len());
            for name in &names {
                let mut walked = Vec::new();
                let mut at = index.get(name, name_of);
                prop_assert_eq!(at, plain.get(name, name_of));
                while let Some(p) = at {
                    walked.push(p);
                    at = Some(before[p as usize]).filter(|&b| b != EMPTY);
                }
                let expected: Vec<u32> = (0..n).rev().filter(|&p| names[p as usize] == *name).collect();
                prop_assert_eq!(walked, expected);
            }
        }
    }
}
