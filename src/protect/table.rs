//! [`Table`]: the per-address state of protection, kept dense. A hash map
//! holding the ~0.5 KB entries themselves spreads them over twice its
//! capacity (its load factor) at random, so a few thousand addresses touch
//! nearly every page of it: ~8 MiB resident for `PROTECT_MAX_IPS`. Here the
//! entries sit contiguously in a slab and the map holds only their slot
//! numbers (24 bytes a bucket), so resident memory follows the number of
//! addresses actually known.
//!
//! Both parts are allocated at start-up with room for `capacity` entries;
//! the owner never inserts beyond it, so inserting never allocates. Order
//! is not kept: removing an entry moves the last one into its slot.

use super::IpKey;
use std::collections::HashMap;

#[derive(Debug)]
pub(super) struct Table<V> {
    /// Invariant: `index[k] == i` exactly when `slots[i].0 == k`.
    index: HashMap<IpKey, u32>,
    slots: Vec<(IpKey, V)>,
}

impl<V: Default> Table<V> {
    pub(super) fn with_capacity(capacity: usize) -> Table<V> {
        Table { index: HashMap::with_capacity(capacity), slots: Vec::with_capacity(capacity) }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, k: &IpKey) -> Option<usize> {
        self.index.get(k).map(|&i| i as usize)
    }

    pub(super) fn contains_key(&self, k: &IpKey) -> bool {
        self.index.contains_key(k)
    }

    pub(super) fn get(&self, k: &IpKey) -> Option<&V> {
        self.slot(k).map(|i| &self.slots[i].1)
    }

    pub(super) fn get_mut(&mut self, k: &IpKey) -> Option<&mut V> {
        self.slot(k).map(|i| &mut self.slots[i].1)
    }

    /// `k`'s entry, a default one added if it is new.
    pub(super) fn entry(&mut self, k: IpKey) -> &mut V {
        let i = self.slot(&k).unwrap_or_else(|| {
            let i = self.slots.len();
            self.index.insert(k, u32::try_from(i).expect("tables are far smaller than 2^32 entries"));
            self.slots.push((k, V::default()));
            i
        });
        &mut self.slots[i].1
    }

    /// Removes slot `i`, moving the last entry into it.
    fn remove_slot(&mut self, i: usize) -> V {
        let (k, v) = self.slots.swap_remove(i);
        self.index.remove(&k);
        if let Some((moved, _)) = self.slots.get(i) {
            self.index.insert(*moved, u32::try_from(i).expect("tables are far smaller than 2^32 entries"));
        }
        v
    }

    pub(super) fn remove(&mut self, k: &IpKey) -> Option<V> {
        let i = self.slot(k)?;
        Some(self.remove_slot(i))
    }

    /// Keeps the entries for which `keep` is true.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&IpKey, &mut V) -> bool) {
        let mut i = 0;
        while i < self.slots.len() {
            let (k, v) = &mut self.slots[i];
            if keep(k, v) {
                i += 1;
            } else {
                self.remove_slot(i);
            }
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&IpKey, &V)> {
        self.slots.iter().map(|(k, v)| (k, v))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&IpKey, &mut V)> {
        self.slots.iter_mut().map(|(k, v)| (&*k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key(n: u32) -> IpKey {
        IpKey::new(std::net::IpAddr::V4(n.into()))
    }

    /// Random inserts, removals and retains against a `BTreeMap`: the index
    /// always points at the right slot.
    #[test]
    fn matches_a_map() {
        let mut t: Table<u64> = Table::with_capacity(64);
        let mut m: BTreeMap<IpKey, u64> = BTreeMap::new();
        let mut x: u32 = 12_345;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = key(x % 48);
            match x % 7 {
                0..=2 => {
                    *t.entry(k) += step;
                    *m.entry(k).or_default() += step;
                }
                3 | 4 => assert_eq!(t.remove(&k), m.remove(&k)),
                5 if step % 50 == 0 => {
                    t.retain(|_, v| *v % 3 != 0);
                    m.retain(|_, v| *v % 3 != 0);
                }
                _ => assert_eq!(t.get(&k), m.get(&k)),
            }
            assert_eq!(t.len(), m.len());
        }
        let mut all: Vec<(IpKey, u64)> = t.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort();
        assert_eq!(all, m.into_iter().collect::<Vec<_>>());
        for (_, v) in t.iter_mut() {
            *v += 1;
        }
        for (k, v) in &all {
            assert_eq!(t.get(k), Some(&(v + 1)));
        }
        assert!(t.iter().all(|(k, v)| t.get(k) == Some(v)));
    }
}
