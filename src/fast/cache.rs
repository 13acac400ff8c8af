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
//! memory is bounded by the slots used, and a slot's buffer is reused when
//! its next answer has the same size.

use std::hash::BuildHasher;

/// Slots per worker: room for a million distinct questions before two
/// of a hundred thousand are likely to share a slot.
pub const SLOTS: usize = 1 << 20;

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

/// One allocation per entry: generation (8 octets), flags (2), counts (6),
/// key length (2), body length (2), the key, then the body. A hit reads the
/// slot and this buffer, nothing else.
const HEAD: usize = 20;
/// Entry buffers grow in steps of this, so that a slot's buffer mostly
/// fits its next answer too and misses do not allocate.
const STEP: usize = 128;

pub struct AnswerCache {
    slots: Vec<Option<Box<[u8]>>>,
    hasher: foldhash::fast::RandomState,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache::new(SLOTS)
    }
}

/// A hint only: no effect on what the program computes.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl AnswerCache {
    /// `slots` is rounded up to a power of two. The slot table is zeroed
    /// memory the kernel maps as it is first written, so slots never used
    /// cost nothing.
    pub fn new(slots: usize) -> AnswerCache {
        AnswerCache {
            slots: vec![None; slots.next_power_of_two()],
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn slot(&self, key: &Key) -> usize {
        self.hasher.hash_one(key.bytes()) as usize & (self.slots.len() - 1)
    }

    /// Asks the CPU to fetch the slot of `key` ahead of use; returns the
    /// slot for [`AnswerCache::prefetch_entry`]. A worker does this for a
    /// whole batch before answering it, so the memory reads of one query
    /// overlap those of the others instead of each waiting its turn.
    pub fn prefetch_slot(&self, key: &Key) -> usize {
        let i = self.slot(key);
        prefetch(self.slots.as_ptr().wrapping_add(i).cast());
        i
    }

    /// Asks the CPU to fetch the entry in slot `i`, once the slot itself
    /// has arrived.
    pub fn prefetch_entry(&self, i: usize) {
        if let Some(e) = self.slots[i].as_deref() {
            prefetch(e.as_ptr());
            prefetch(e.as_ptr().wrapping_add(64));
        }
    }

    pub fn get(&self, key: &Key, generation: u64) -> Option<Hit<'_>> {
        let e = self.slots[self.slot(key)].as_deref()?;
        let key_len = u16_at(e, 16) as usize;
        let body_len = u16_at(e, 18) as usize;
        if e[..8] != generation.to_be_bytes()[..] || &e[HEAD..HEAD + key_len] != key.bytes() {
            return None;
        }
        Some(Hit {
            flags: u16_at(e, 8),
            counts: [u16_at(e, 10), u16_at(e, 12), u16_at(e, 14)],
            body: &e[HEAD + key_len..HEAD + key_len + body_len],
        })
    }

    pub fn put(&mut self, key: &Key, generation: u64, flags: u16, counts: [u16; 3], body: &[u8]) {
        let i = self.slot(key);
        let len = HEAD + key.len + body.len();
        let slot = &mut self.slots[i];
        let e = match slot {
            Some(e) if e.len() >= len => e,
            _ => slot.insert(vec![0u8; len.div_ceil(STEP) * STEP].into_boxed_slice()),
        };
        e[..8].copy_from_slice(&generation.to_be_bytes());
        e[8..10].copy_from_slice(&flags.to_be_bytes());
        for (k, c) in counts.iter().enumerate() {
            e[10 + 2 * k..12 + 2 * k].copy_from_slice(&c.to_be_bytes());
        }
        e[16..18].copy_from_slice(&(key.len as u16).to_be_bytes());
        e[18..20].copy_from_slice(&(body.len() as u16).to_be_bytes());
        e[HEAD..HEAD + key.len].copy_from_slice(key.bytes());
        e[HEAD + key.len..len].copy_from_slice(body);
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
