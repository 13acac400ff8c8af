//! A UDP worker's cache of encoded answers.
//!
//! Once the fast path has written an answer, everything after the question
//! depends only on the zone's snapshot, the query name without regard to
//! case (names in the answer point at the question), the type, the DO bit,
//! whether the query had EDNS, and the size limit. Kept per worker (no
//! locks, no sharing), keyed on exactly that, a repeated question costs a
//! hash probe and a copy instead of the lookup and the encoding. An entry
//! is used only while its snapshot is the one in service: every snapshot
//! has a generation number of its own, so a new copy of the zone makes the
//! old entries miss.
//!
//! Direct-mapped and of fixed size: a new answer takes its slot's place, so
//! memory is bounded and nothing is allocated once the slots are warm.

use std::hash::BuildHasher;

/// Slots per worker.
pub const SLOTS: usize = 1 << 18;

/// The longest key: a name, type, flags and limit.
const MAX_KEY: usize = 255 + 2 + 1 + 2;

pub struct Key {
    buf: [u8; MAX_KEY],
    len: usize,
}

impl Key {
    /// `name` is the lowercase wire form of the query name.
    pub fn new(name: &[u8], qtype: u16, dnssec_ok: bool, edns: bool, limit: usize) -> Key {
        let mut buf = [0u8; MAX_KEY];
        let n = name.len();
        buf[..n].copy_from_slice(name);
        buf[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
        buf[n + 2] = u8::from(dnssec_ok) | (u8::from(edns) << 1);
        buf[n + 3..n + 5].copy_from_slice(&(limit as u16).to_be_bytes());
        Key { buf, len: n + 5 }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A cached answer.
pub struct Hit<'a> {
    /// AA, TC and RCODE of the header's flags word.
    pub flags: u16,
    /// Answer, authority and additional counts.
    pub counts: [u16; 3],
    /// The response after the question.
    pub body: &'a [u8],
}

struct Entry {
    generation: u64,
    flags: u16,
    counts: [u16; 3],
    key_len: usize,
    /// The key, then the body.
    buf: Vec<u8>,
}

pub struct AnswerCache {
    slots: Vec<Option<Box<Entry>>>,
    hasher: foldhash::fast::RandomState,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache::new(SLOTS)
    }
}

impl AnswerCache {
    /// `slots` is rounded up to a power of two.
    pub fn new(slots: usize) -> AnswerCache {
        let n = slots.next_power_of_two();
        AnswerCache {
            slots: (0..n).map(|_| None).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn slot(&self, key: &Key) -> usize {
        self.hasher.hash_one(key.bytes()) as usize & (self.slots.len() - 1)
    }

    pub fn get(&self, key: &Key, generation: u64) -> Option<Hit<'_>> {
        let e = self.slots[self.slot(key)].as_deref()?;
        if e.generation != generation || &e.buf[..e.key_len] != key.bytes() {
            return None;
        }
        Some(Hit {
            flags: e.flags,
            counts: e.counts,
            body: &e.buf[e.key_len..],
        })
    }

    pub fn put(&mut self, key: &Key, generation: u64, flags: u16, counts: [u16; 3], body: &[u8]) {
        let i = self.slot(key);
        let e = self.slots[i].get_or_insert_with(|| {
            Box::new(Entry {
                generation: 0,
                flags: 0,
                counts: [0; 3],
                key_len: 0,
                buf: Vec::new(),
            })
        });
        e.generation = generation;
        e.flags = flags;
        e.counts = counts;
        e.key_len = key.len;
        e.buf.clear();
        e.buf.extend_from_slice(key.bytes());
        e.buf.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_and_generations() {
        let mut c = AnswerCache::new(16);
        let k = Key::new(b"\x03www\x07example\x00", 1, false, true, 1232);
        assert!(c.get(&k, 1).is_none());
        c.put(&k, 1, 0x0400, [1, 0, 1], b"body");
        let hit = c.get(&k, 1).unwrap();
        assert_eq!(
            (hit.flags, hit.counts, hit.body),
            (0x0400, [1, 0, 1], &b"body"[..])
        );
        // Another snapshot, another DO bit, another limit: misses.
        assert!(c.get(&k, 2).is_none());
        assert!(
            c.get(&Key::new(b"\x03www\x07example\x00", 1, true, true, 1232), 1)
                .is_none()
        );
        assert!(
            c.get(&Key::new(b"\x03www\x07example\x00", 1, false, true, 512), 1)
                .is_none()
        );
        // A new answer for the same key replaces the old one.
        c.put(&k, 2, 0x0403, [0, 1, 1], b"nx");
        assert!(c.get(&k, 1).is_none());
        assert_eq!(c.get(&k, 2).unwrap().body, b"nx");
    }
}
