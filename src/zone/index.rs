//! The name index of a snapshot: lowercase wire names to node numbers.
//!
//! A `HashMap<Box<[u8]>, u32>` costs an allocation per name and 24 octets
//! per slot; for a million names that is more than the records themselves.
//! Here the names sit back to back in one buffer and the table holds only
//! (place in the buffer, node) pairs of 8 octets.

use std::hash::BuildHasher;

use hashbrown::HashTable;

#[derive(Clone, Default)]
pub struct NameIndex {
    /// Each name: its length (1 octet), then the name.
    names: Vec<u8>,
    table: HashTable<(u32, u32)>,
    hasher: foldhash::fast::RandomState,
    /// Octets of `names` that belong to removed names.
    garbage: usize,
}

impl std::fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameIndex")
            .field("names", &self.table.len())
            .finish()
    }
}

fn name_at(names: &[u8], at: u32) -> &[u8] {
    let at = at as usize;
    &names[at + 1..at + 1 + names[at] as usize]
}

impl NameIndex {
    pub fn reserve(&mut self, names: usize) {
        let (buf, hasher) = (&self.names, &self.hasher);
        self.table
            .reserve(names, |&(at, _)| hasher.hash_one(name_at(buf, at)));
        self.names.reserve(names * 24);
    }

    pub fn get(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |&(at, _)| name_at(&self.names, at) == key)
            .map(|&(_, id)| id)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Adds `key` (at most 255 octets), which must not be in the index yet.
    pub fn insert(&mut self, key: &[u8], id: u32) {
        debug_assert!(key.len() <= 255 && !self.contains_key(key));
        let at = self.names.len() as u32;
        self.names.push(key.len() as u8);
        self.names.extend_from_slice(key);
        let (buf, hasher) = (&self.names, &self.hasher);
        let hash = hasher.hash_one(key);
        self.table
            .insert_unique(hash, (at, id), |&(at, _)| hasher.hash_one(name_at(buf, at)));
    }

    /// Removes `key`, returning its node. The name's octets stay behind
    /// until removed names make up half the buffer, then the buffer is
    /// rewritten with the live names only.
    pub fn remove(&mut self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let names = &self.names;
        let entry = self
            .table
            .find_entry(hash, |&(at, _)| name_at(names, at) == key)
            .ok()?;
        let ((_, id), _) = entry.remove();
        self.garbage += key.len() + 1;
        if self.garbage > 4096 && self.garbage * 2 > self.names.len() {
            self.compact();
        }
        Some(id)
    }

    fn compact(&mut self) {
        let mut fresh = NameIndex {
            hasher: self.hasher.clone(),
            ..NameIndex::default()
        };
        fresh.reserve(self.table.len());
        for (key, id) in self.iter() {
            fresh.insert(key, id);
        }
        fresh.shrink_to_fit();
        *self = fresh;
    }

    /// Every (name, node), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u32)> {
        self.table
            .iter()
            .map(|&(at, id)| (name_at(&self.names, at), id))
    }

    /// Gives back the buffer's spare room once the index is complete.
    pub fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        let (buf, hasher) = (&self.names, &self.hasher);
        self.table
            .shrink_to_fit(|&(at, _)| hasher.hash_one(name_at(buf, at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_iter() {
        let mut ix = NameIndex::default();
        for i in 0..10_000u32 {
            let key = format!("\x05h{i:04}\x07example\x03com\x00");
            ix.insert(key.as_bytes(), i);
        }
        assert_eq!(ix.iter().count(), 10_000);
        assert_eq!(ix.get(b"\x05h0042\x07example\x03com\x00"), Some(42));
        assert_eq!(ix.get(b"\x05h9999\x07example\x03com\x00"), Some(9999));
        assert_eq!(ix.get(b"\x07example\x03com\x00"), None);
        ix.shrink_to_fit();
        let mut ids: Vec<u32> = ix.iter().map(|(_, id)| id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..10_000).collect::<Vec<_>>());
        assert!(ix.iter().all(|(k, id)| ix.get(k) == Some(id)));
        // Removing most names rewrites the buffer; the rest stay found.
        for i in 0..9_000u32 {
            let key = format!("\x05h{i:04}\x07example\x03com\x00");
            assert_eq!(ix.remove(key.as_bytes()), Some(i));
        }
        assert_eq!(ix.remove(b"\x05h0001\x07example\x03com\x00"), None);
        assert_eq!(ix.iter().count(), 1_000);
        assert!(ix.names.len() < 1_000 * 24 * 2);
        assert_eq!(ix.get(b"\x05h9999\x07example\x03com\x00"), Some(9999));
        assert_eq!(ix.get(b"\x05h0042\x07example\x03com\x00"), None);
    }
}
