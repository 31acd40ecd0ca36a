//! Where the flow table keeps its live flows: a slab of entries and an index of slot numbers.
//!
//! A map from key to entry would hold each entry inline in its hash buckets, and a hash
//! table grows by doubling and keeps an eighth free: at a cap of 262,144 flows that is
//! 524,288 buckets, so every entry costs its size about twice over. Here the buckets hold a
//! 4-byte slot number; the entries live once, in a vector whose freed slots are reused, so
//! the memory of N live flows is N entries plus about 12 bytes of index each.
//!
//! The slots are allocated in chunks of [`CHUNK`] that never move: a vector grown by
//! doubling copies every entry at each step and, with an allocator that cannot remap in
//! place, holds the old and the new array at once (60 MB at the top of a SYN flood, for 40 MB
//! of entries).
//!
//! Invariant: the index holds exactly the slot numbers of the occupied slots, each once, and
//! `free` exactly the vacant ones.

use hashbrown::HashTable;

use super::FlowKey;

/// What the store needs of an entry: the key it is found by.
pub(super) trait Keyed {
    fn key(&self) -> &FlowKey;
}

/// Index bytes per live flow, for the table's memory budget: a 4-byte slot number and a
/// control byte per bucket, at most 8 buckets for every 7 entries, times two for the
/// doubling growth (a table just grown is half empty).
pub(super) const INDEX_BYTES_PER_FLOW: usize = (4 + 1) * 8 * 2 / 7 + 1;

/// Slots per chunk (a power of two: a slot number splits into chunk and place by shifts).
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

/// Slots in chunks that stay where they are as the store grows.
struct Slots<T> {
    chunks: Vec<Box<[Option<T>]>>,
    /// Slots handed out so far (the next new slot number).
    len: usize,
}

impl<T> Slots<T> {
    #[inline]
    fn get(&self, slot: usize) -> Option<&Option<T>> {
        self.chunks
            .get(slot >> CHUNK_BITS)
            .and_then(|c| c.get(slot & (CHUNK - 1)))
    }

    #[inline]
    fn get_mut(&mut self, slot: usize) -> Option<&mut Option<T>> {
        self.chunks
            .get_mut(slot >> CHUNK_BITS)
            .and_then(|c| c.get_mut(slot & (CHUNK - 1)))
    }

    /// A new slot holding `entry`; its number.
    fn push(&mut self, entry: T) -> usize {
        let slot = self.len;
        if slot >> CHUNK_BITS >= self.chunks.len() {
            self.chunks.push((0..CHUNK).map(|_| None).collect());
        }
        if let Some(s) = self.get_mut(slot) {
            *s = Some(entry);
        }
        self.len += 1;
        slot
    }

    fn iter(&self) -> impl Iterator<Item = &Option<T>> {
        self.chunks.iter().flat_map(|c| c.iter()).take(self.len)
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }
}

pub(super) struct FlowStore<T> {
    slots: Slots<T>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl<T: Keyed> FlowStore<T> {
    pub fn new() -> Self {
        FlowStore {
            slots: Slots {
                chunks: Vec::new(),
                len: 0,
            },
            free: Vec::new(),
            index: HashTable::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// The slot of the live flow with this key.
    #[inline]
    pub fn find(&self, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(key.shard_hash(), |&i| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|e| e.key() == key)
            })
            .copied()
    }

    #[inline]
    pub fn get(&self, slot: u32) -> Option<&T> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Stores an entry whose key is not live yet; returns its slot.
    pub fn insert(&mut self, entry: T) -> u32 {
        let hash = entry.key().shard_hash();
        let slot = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = Some(entry);
                }
                i
            }
            None => {
                // More than 4 billion live flows cannot be reached under any flow cap.
                u32::try_from(self.slots.push(entry)).unwrap_or(u32::MAX)
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash, slot, |&i| {
            slots
                .get(i as usize)
                .and_then(Option::as_ref)
                .map_or(0, |e| e.key().shard_hash())
        });
        slot
    }

    /// Takes the entry out of its slot, which is reused by a later insert.
    pub fn remove(&mut self, slot: u32) -> Option<T> {
        let entry = self.slots.get_mut(slot as usize)?.take()?;
        if let Ok(found) = self
            .index
            .find_entry(entry.key().shard_hash(), |&i| i == slot)
        {
            found.remove();
        }
        self.free.push(slot);
        Some(entry)
    }

    /// Every live entry with its slot, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((u32::try_from(i).ok()?, e.as_ref()?)))
    }

    /// Forgets the vacant slots once the store is empty (after the end of input), so that
    /// a following capture starts from slot 0.
    pub fn reset_if_empty(&mut self) {
        if self.index.is_empty() {
            self.slots.clear();
            self.free.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::flow::Endpoint;

    struct E(FlowKey, u32);

    impl Keyed for E {
        fn key(&self) -> &FlowKey {
            &self.0
        }
    }

    fn key(n: u32) -> FlowKey {
        let ep = |ip: u32, port| Endpoint {
            ip: IpAddr::V4(Ipv4Addr::from_bits(ip)),
            port,
        };
        FlowKey::new(ep(0x0a00_0000 + n, 1024), ep(0xc000_0219, 25))
    }

    #[test]
    fn slots_are_found_by_key_and_reused_after_removal() {
        let mut s = FlowStore::new();
        let slots: Vec<u32> = (0..100).map(|n| s.insert(E(key(n), n))).collect();
        assert_eq!(s.len(), 100);
        for n in 0..100 {
            let slot = s.find(&key(n)).unwrap();
            assert_eq!(s.get(slot).unwrap().1, n);
        }
        assert_eq!(s.remove(slots[7]).unwrap().1, 7);
        assert!(s.find(&key(7)).is_none());
        assert!(s.remove(slots[7]).is_none());
        let again = s.insert(E(key(1000), 1000));
        assert_eq!(again, slots[7]);
        assert_eq!(s.get(s.find(&key(1000)).unwrap()).unwrap().1, 1000);
        assert_eq!(s.iter().count(), 100);
    }

    #[test]
    fn slots_across_chunks_keep_their_entries() {
        let mut s = FlowStore::new();
        let n = 3 * CHUNK as u32 + 5;
        for i in 0..n {
            assert_eq!(s.insert(E(key(i), i)), i);
        }
        for i in (0..n).step_by(7) {
            assert_eq!(s.remove(i).unwrap().1, i);
        }
        for i in 0..n {
            assert_eq!(s.find(&key(i)).is_some(), i % 7 != 0, "{i}");
        }
        let live: Vec<u32> = s
            .iter()
            .map(|(slot, e)| (assert_eq!(slot, e.1), slot).1)
            .collect();
        assert_eq!(live.len(), s.len());
        assert!(live.windows(2).all(|w| w[0] < w[1]));
        // Freed slots are reused before a new chunk is started.
        assert!(s.insert(E(key(n), n)) < n);
        while s.len() > 0 {
            let slot = s.iter().next().unwrap().0;
            s.remove(slot);
        }
        s.reset_if_empty();
        assert_eq!(s.insert(E(key(0), 0)), 0);
    }
}
