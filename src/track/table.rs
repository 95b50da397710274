//! A bounded map with CLOCK eviction: the storage under every tracker table.
//!
//! Entries live in a slab; a hash map (seeded `ahash`, since keys such as SPIs are chosen
//! by whoever sends the packets) points from key to slot. Touching an entry sets its
//! "recent" bit; when the table is full, a clock hand sweeps the slab, clears recent bits
//! and evicts the first entry not touched since the last sweep. That approximates "least
//! recently active" at constant amortised cost, so a flood of new keys costs a fixed
//! amount of memory and a fixed amount of work per packet.

use std::collections::HashMap;
use std::hash::Hash;

struct Entry<K, V> {
    key: K,
    value: V,
    recent: bool,
}

/// A map holding at most `cap` entries.
pub(crate) struct Table<K, V> {
    index: HashMap<K, u32, ahash::RandomState>,
    slots: Vec<Option<Entry<K, V>>>,
    free: Vec<u32>,
    hand: usize,
    cap: usize,
}

impl<K: Hash + Eq + Copy, V> Table<K, V> {
    /// An empty table for at most `cap` entries (at least one).
    pub(crate) fn new(cap: usize) -> Self {
        Table {
            index: HashMap::with_hasher(ahash::RandomState::new()),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            cap: cap.clamp(1, u32::MAX as usize),
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The entry for `key`, without marking it active.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let slot = *self.index.get(key)? as usize;
        self.slots.get(slot)?.as_ref().map(|e| &e.value)
    }

    /// The entry for `key`, marking it active.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let slot = *self.index.get(key)? as usize;
        let entry = self.slots.get_mut(slot)?.as_mut()?;
        entry.recent = true;
        Some(&mut entry.value)
    }

    /// `true` when `key` is present.
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    /// Inserts (or replaces) `key`. When the table is full, first evicts one entry and
    /// returns it.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(&slot) = self.index.get(&key) {
            if let Some(entry) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
                entry.value = value;
                entry.recent = true;
            }
            return None;
        }
        let evicted = if self.index.len() >= self.cap {
            self.evict_one()
        } else {
            None
        };
        let entry = Entry {
            key,
            value,
            recent: true,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, slot);
        evicted
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.index.remove(key)?;
        self.free.push(slot);
        self.slots.get_mut(slot as usize)?.take().map(|e| e.value)
    }

    /// Every entry, in slab order (not a stable order: sort before output).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots
            .iter()
            .filter_map(|s| s.as_ref().map(|e| (&e.key, &e.value)))
    }

    /// Every entry, mutable, without marking any active.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.as_mut().map(|e| (&e.key, &mut e.value)))
    }

    /// Sweeps the clock hand to the first entry not touched since the last pass and
    /// removes it. Two passes at most: the first clears every recent bit.
    fn evict_one(&mut self) -> Option<(K, V)> {
        let n = self.slots.len();
        for _ in 0..2 * n + 1 {
            if self.hand >= n {
                self.hand = 0;
            }
            let slot = self.hand;
            self.hand += 1;
            let Some(entry) = self.slots[slot].as_mut() else {
                continue;
            };
            if entry.recent {
                entry.recent = false;
                continue;
            }
            let entry = self.slots[slot].take()?;
            self.index.remove(&entry.key);
            self.free.push(slot as u32);
            return Some((entry.key, entry.value));
        }
        None
    }
}

impl<K, V> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.index.len())
            .field("cap", &self.cap)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_cap_entries() {
        let mut t: Table<u32, u32> = Table::new(3);
        for k in 0..10 {
            t.insert(k, k * 10);
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.iter().count(), 3);
    }

    #[test]
    fn evicts_the_entry_not_touched_recently() {
        let mut t: Table<u32, u32> = Table::new(3);
        t.insert(1, 1);
        t.insert(2, 2);
        t.insert(3, 3);
        // A first eviction pass clears every recent bit and takes the first slot.
        assert_eq!(t.insert(4, 4), Some((1, 1)));
        // 2 and 3 are now "old"; touching 2 keeps it.
        t.get_mut(&2);
        let evicted = t.insert(5, 5);
        assert_eq!(evicted, Some((3, 3)));
        assert!(t.contains(&2));
    }

    #[test]
    fn remove_frees_the_slot_for_reuse() {
        let mut t: Table<u32, &str> = Table::new(2);
        t.insert(1, "a");
        t.insert(2, "b");
        assert_eq!(t.remove(&1), Some("a"));
        assert_eq!(t.insert(3, "c"), None);
        assert_eq!(t.get(&3), Some(&"c"));
        assert_eq!(t.get(&1), None);
    }

    #[test]
    fn insert_of_an_existing_key_replaces_without_eviction() {
        let mut t: Table<u32, u32> = Table::new(1);
        t.insert(1, 1);
        assert_eq!(t.insert(1, 2), None);
        assert_eq!(t.get(&1), Some(&2));
    }
}
