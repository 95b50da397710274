//! A bounded map with CLOCK eviction: the storage under every tracker table.
//!
//! Entries live in a slab; an open-addressing index (linear probing over 8-byte buckets)
//! points from key to slot. Keys such as SPIs are chosen by whoever sends the packets, so
//! the index hashes with a seeded `ahash`. Each bucket holds 32 bits of the key's hash
//! and the slot number: a lookup reads one bucket line and then the entry itself, one
//! cache miss fewer than a general hash map holding the key beside the slot, at 8 bytes
//! per bucket instead of the key's size. Growth copies only buckets (the hash bits they
//! keep give the new position), never entries.
//!
//! Touching an entry sets its "recent" bit; when the table is full, a clock hand sweeps
//! the slab, clears recent bits and evicts the first entry not touched since the last
//! sweep. That approximates "least recently active" at constant amortised cost, so a
//! flood of new keys costs a fixed amount of memory and a fixed amount of work per packet.

use std::hash::Hash;

/// One slot's contents. In this field order (`repr(C)`), a lookup's first cache line
/// holds the key, the `recent` flag (whose spare values also mark an empty slot) and the
/// start of the value; left to the compiler, a large value put the key and the slot's
/// tag at its two ends, two cache misses apart.
#[repr(C)]
struct Entry<K, V> {
    key: K,
    recent: bool,
    value: V,
}

/// An empty bucket. A used one is `hash_bits << 32 | (slot + 1)`.
const EMPTY: u64 = 0;
/// Smallest index allocated once the first entry arrives.
const MIN_BUCKETS: usize = 16;

/// A map holding at most `cap` entries.
pub(crate) struct Table<K, V> {
    hasher: ahash::RandomState,
    /// Power-of-two many buckets (or none before the first insert), at most 3/4 used.
    buckets: Vec<u64>,
    slots: Vec<Option<Entry<K, V>>>,
    free: Vec<u32>,
    len: usize,
    hand: usize,
    cap: usize,
}

impl<K: Hash + Eq + Copy, V> Table<K, V> {
    /// An empty table for at most `cap` entries (at least one).
    pub(crate) fn new(cap: usize) -> Self {
        Table {
            hasher: ahash::RandomState::new(),
            buckets: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            hand: 0,
            cap: cap.clamp(1, u32::MAX as usize - 1),
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The 32 hash bits a bucket keeps; the low bits of them place it.
    fn hash_bits(&self, key: &K) -> u32 {
        (self.hasher.hash_one(key) >> 32) as u32
    }

    /// The bucket and slot holding `key`.
    fn find(&self, key: &K) -> Option<(usize, usize)> {
        if self.len == 0 {
            return None;
        }
        let bits = self.hash_bits(key);
        let mask = self.buckets.len() - 1;
        let mut at = bits as usize & mask;
        loop {
            let b = self.buckets[at];
            if b == EMPTY {
                return None;
            }
            if (b >> 32) as u32 == bits {
                let slot = (b as u32 - 1) as usize;
                if self.slots[slot].as_ref().is_some_and(|e| e.key == *key) {
                    return Some((at, slot));
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Starts loading the index line where a lookup of `key` begins, so that the cache
    /// miss overlaps other work (parsing, or other tables' misses) instead of stalling
    /// the lookup. A hint only: nothing changes.
    pub(crate) fn prefetch_key(&self, key: &K) {
        if self.buckets.is_empty() {
            return;
        }
        let at = self.hash_bits(key) as usize & (self.buckets.len() - 1);
        if let Some(bucket) = self.buckets.get(at) {
            prefetch(bucket);
        }
    }

    /// Like [`Table::prefetch_key`], and returns the key's hash bits for a later
    /// [`Table::prefetch_slot`].
    pub(crate) fn prefetch_index(&self, key: &K) -> u32 {
        let bits = self.hash_bits(key);
        if let Some(bucket) = self
            .buckets
            .get(bits as usize & self.buckets.len().wrapping_sub(1))
        {
            prefetch(bucket);
        }
        bits
    }

    /// Starts loading the whole entry (every cache line of it) whose bucket keeps hash
    /// `bits` (from [`Table::prefetch_index`]), without comparing keys, which would wait
    /// for the entry. Cheap once the bucket is in. A hint only: a colliding entry may be
    /// loaded instead, and nothing changes.
    pub(crate) fn prefetch_slot(&self, bits: u32) {
        if self.len == 0 {
            return;
        }
        let mask = self.buckets.len() - 1;
        let mut at = bits as usize & mask;
        for _ in 0..self.buckets.len() {
            let b = self.buckets[at];
            if b == EMPTY {
                return;
            }
            if (b >> 32) as u32 == bits {
                if let Some(slot) = self.slots.get((b as u32 - 1) as usize) {
                    prefetch(slot);
                }
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// The entry for `key`, without marking it active.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let (_, slot) = self.find(key)?;
        self.slots[slot].as_ref().map(|e| &e.value)
    }

    /// The entry for `key`, marking it active.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let (_, slot) = self.find(key)?;
        let entry = self.slots[slot].as_mut()?;
        entry.recent = true;
        Some(&mut entry.value)
    }

    /// `true` when `key` is present.
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.find(key).is_some()
    }

    /// Inserts (or replaces) `key`. When the table is full, first evicts one entry and
    /// returns it.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some((_, slot)) = self.find(&key) {
            if let Some(entry) = self.slots[slot].as_mut() {
                entry.value = value;
                entry.recent = true;
            }
            return None;
        }
        let evicted = if self.len >= self.cap {
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
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        let bits = self.hash_bits(&key);
        self.place(u64::from(bits) << 32 | u64::from(slot + 1));
        self.len += 1;
        evicted
    }

    /// Puts a used bucket at the first free place from its home position.
    fn place(&mut self, bucket: u64) {
        let mask = self.buckets.len() - 1;
        let mut at = (bucket >> 32) as usize & mask;
        while self.buckets[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.buckets[at] = bucket;
    }

    /// Doubles the index (the first time: allocates it) and re-places every bucket.
    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(MIN_BUCKETS);
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; size]);
        for b in old.into_iter().filter(|&b| b != EMPTY) {
            self.place(b);
        }
    }

    /// Empties bucket `at`, shifting later buckets of the same probe run back so that
    /// every lookup still reaches its key without tombstones (linear probing deletion).
    fn unlink(&mut self, mut at: usize) {
        let mask = self.buckets.len() - 1;
        let mut next = (at + 1) & mask;
        loop {
            let b = self.buckets[next];
            if b == EMPTY {
                break;
            }
            let home = (b >> 32) as usize & mask;
            // The bucket may move back to `at` unless its home lies after `at`, up to
            // `next` (cyclically): then it is already as close to home as it can be.
            let stays = if at <= next {
                at < home && home <= next
            } else {
                at < home || home <= next
            };
            if !stays {
                self.buckets[at] = b;
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.buckets[at] = EMPTY;
        self.len -= 1;
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let (at, slot) = self.find(key)?;
        self.unlink(at);
        self.free.push(slot as u32);
        self.slots[slot].take().map(|e| e.value)
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
            let key = entry.key;
            if let Some((at, _)) = self.find(&key) {
                self.unlink(at);
            }
            let entry = self.slots[slot].take()?;
            self.free.push(slot as u32);
            return Some((entry.key, entry.value));
        }
        None
    }
}

/// Asks the processor to start loading every cache line of `value`, for a record that
/// the next steps will read all over: the loads then overlap instead of waiting one
/// after another. A hint only; nothing is read here.
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = value as *const T as *const i8;
        for offset in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: a prefetch never faults and reads nothing into the program; the
            // addresses lie within `value` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

impl<K, V> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len)
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
    fn agrees_with_a_hash_map_through_inserts_and_removes() {
        // Few keys in a small index: long probe runs, wrap-around and backward shifts.
        let mut t: Table<u32, u32> = Table::new(1000);
        let mut m = std::collections::HashMap::new();
        let mut x = 12345u32;
        for step in 0..20_000u32 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let key = (x >> 8) % 40;
            if x % 3 == 0 {
                assert_eq!(t.remove(&key), m.remove(&key), "step {step}");
            } else {
                t.insert(key, step);
                m.insert(key, step);
            }
            assert_eq!(t.len(), m.len());
        }
        for key in 0..40 {
            assert_eq!(t.get(&key), m.get(&key));
        }
        assert_eq!(t.iter().count(), m.len());
    }

    #[test]
    fn eviction_keeps_every_remaining_key_reachable() {
        let mut t: Table<u64, u64> = Table::new(100);
        for k in 0..1000 {
            t.insert(k, k);
        }
        assert_eq!(t.len(), 100);
        let held: Vec<u64> = t.iter().map(|(k, _)| *k).collect();
        assert_eq!(held.len(), 100);
        for k in held {
            assert_eq!(t.get(&k), Some(&k));
        }
    }

    #[test]
    fn insert_of_an_existing_key_replaces_without_eviction() {
        let mut t: Table<u32, u32> = Table::new(1);
        t.insert(1, 1);
        assert_eq!(t.insert(1, 2), None);
        assert_eq!(t.get(&1), Some(&2));
    }
}
