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
//! Two-way set-associative and bounded: a question's hash picks a set of
//! two slots, and a new answer pushes out the older of the two, reusing
//! the room of the answer it replaces when that is large enough, else room
//! taken from the end of an arena. With one slot per question, about 8 %
//! of the benchmark's 80,000-odd distinct questions shared their slot (of
//! a million) with another and missed on every pass over the query file;
//! with sets of two, a question misses only when three share a set. When
//! the arena is full the whole cache is dropped at once and refills from
//! the queries that follow.
//!
//! Both the slot table and the arena are mappings of their own, asked for
//! with transparent huge pages. perf showed why: with the slots in 4 KiB
//! pages and each answer in a heap allocation of its own, the prefetches of
//! a batch were mostly page walks (a slot table of 8 MiB spans 2,048 pages,
//! more than the TLB holds), about 4 % of the CPU an answer costs.

use std::hash::BuildHasher;

/// Slots per worker, in sets of two: room for a million distinct questions,
/// and a question is pushed out only when two others share its set.
pub const SLOTS: usize = 1 << 20;

/// Octets of answers a worker keeps, at most: about 300,000 typical ones.
pub const ARENA: usize = 64 << 20;

/// The longest key: a name, type, flags and limit.
const MAX_KEY: usize = 255 + 2 + 1 + 2;

pub struct Key {
    buf: [u8; MAX_KEY],
    len: usize,
}

impl Default for Key {
    /// The empty key, to be filled with [`Key::set`].
    fn default() -> Self {
        Key {
            buf: [0u8; MAX_KEY],
            len: 0,
        }
    }
}

impl Key {
    /// `name` is the lowercase wire form of the query name.
    pub fn new(name: &[u8], qtype: u16, dnssec_ok: bool, edns: bool, limit: usize) -> Key {
        let mut key = Key::default();
        key.set(name, qtype, dnssec_ok, edns, limit);
        key
    }

    /// [`Key::new`] in place, for a worker that keeps its keys.
    pub fn set(&mut self, name: &[u8], qtype: u16, dnssec_ok: bool, edns: bool, limit: usize) {
        let n = name.len();
        let buf = &mut self.buf;
        buf[..n].copy_from_slice(name);
        buf[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
        buf[n + 2] = u8::from(dnssec_ok) | (u8::from(edns) << 1);
        buf[n + 3..n + 5].copy_from_slice(&(limit as u16).to_be_bytes());
        self.len = n + 5;
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

/// An entry: generation (8 octets), flags (2), counts (6), key length (2),
/// body length (2), the key, then the body. A hit reads the slot and this,
/// nothing else.
const HEAD: usize = 20;
/// Entries start on a cache line and take whole lines.
const LINE: usize = 64;

/// A slot holds 0 when empty, else the entry's offset in the arena in lines
/// plus one (bits 0-21), its room in lines (22-27) and a tag (28-63): the
/// top bits of the key's hash, so that a lookup reads only the entry whose
/// tag matches.
const OFFSET_BITS: u32 = 22;
const ROOM_BITS: u32 = 6;
const TAG_SHIFT: u32 = OFFSET_BITS + ROOM_BITS;
const MAX_LINES: usize = (1 << ROOM_BITS) - 1;
/// The arena is addressed in lines by the slot's offset bits.
const MAX_ARENA: usize = ((1 << OFFSET_BITS) - 1) * LINE;

fn slot_value(offset: usize, lines: usize, tag: u64) -> u64 {
    (offset / LINE + 1) as u64 | ((lines as u64) << OFFSET_BITS) | (tag << TAG_SHIFT)
}

/// The entry's offset and room in octets, if the slot is used.
fn slot_entry(value: u64) -> Option<(usize, usize)> {
    let at = (value & ((1 << OFFSET_BITS) - 1)) as usize;
    let lines = ((value >> OFFSET_BITS) & MAX_LINES as u64) as usize;
    (at != 0).then(|| ((at - 1) * LINE, lines * LINE))
}

fn slot_tag(value: u64) -> u64 {
    value >> TAG_SHIFT
}

/// Where a key's answer is looked for: its set of two slots and its tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slot {
    set: usize,
    tag: u64,
}

pub struct AnswerCache {
    slots: Region,
    arena: Region,
    /// Where the arena's unused room begins.
    next: usize,
    mask: usize,
    hasher: foldhash::fast::RandomState,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache::new(SLOTS, ARENA)
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
    /// `slots` is rounded up to a power of two (at least 2); `arena` octets
    /// of answers at most (up to 256 MiB). Both are mapped but untouched:
    /// memory is used as answers come.
    ///
    /// # Panics
    /// If the address space cannot be mapped, as an allocation would.
    pub fn new(slots: usize, arena: usize) -> AnswerCache {
        let sets = (slots.next_power_of_two() / 2).max(1);
        AnswerCache {
            slots: Region::new(sets * 16),
            arena: Region::new(arena.clamp(LINE, MAX_ARENA)),
            next: 0,
            mask: sets - 1,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn slot_of(&self, key: &Key) -> Slot {
        let h = self.hasher.hash_one(key.bytes());
        Slot {
            set: h as usize & self.mask,
            tag: h >> TAG_SHIFT,
        }
    }

    fn way(&self, set: usize, way: usize) -> u64 {
        let at = set * 16 + way * 8;
        u64::from_ne_bytes(self.slots.bytes()[at..at + 8].try_into().expect("8 octets"))
    }

    fn set_way(&mut self, set: usize, way: usize, value: u64) {
        let at = set * 16 + way * 8;
        self.slots.bytes_mut()[at..at + 8].copy_from_slice(&value.to_ne_bytes());
    }

    /// The way of `slot`'s set holding its tag, with the slot's value.
    fn find(&self, slot: Slot) -> Option<(usize, u64)> {
        (0..2)
            .map(|w| (w, self.way(slot.set, w)))
            .find(|&(_, v)| v != 0 && slot_tag(v) == slot.tag)
    }

    /// The slot of `key`, whose memory the CPU is asked to fetch ahead of
    /// use. A worker does this for a whole batch before answering it, so
    /// the memory reads of one query overlap those of the others instead of
    /// each waiting its turn.
    pub fn prefetch_slot(&self, key: &Key) -> Slot {
        let slot = self.slot_of(key);
        prefetch(self.slots.bytes().as_ptr().wrapping_add(slot.set * 16));
        slot
    }

    /// Asks the CPU to fetch the entry of `slot`, once the set itself has
    /// arrived.
    pub fn prefetch_entry(&self, slot: Slot) {
        if let Some((at, _)) = self.find(slot).and_then(|(_, v)| slot_entry(v)) {
            let p = self.arena.bytes().as_ptr().wrapping_add(at);
            prefetch(p);
            prefetch(p.wrapping_add(LINE));
        }
    }

    pub fn get(&self, key: &Key, generation: u64) -> Option<Hit<'_>> {
        self.get_at(self.slot_of(key), key, generation)
    }

    /// [`AnswerCache::get`] with the slot from [`AnswerCache::prefetch_slot`].
    pub fn get_at(&self, slot: Slot, key: &Key, generation: u64) -> Option<Hit<'_>> {
        let (at, _) = slot_entry(self.find(slot)?.1)?;
        let e = &self.arena.bytes()[at..];
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
        self.put_at(self.slot_of(key), key, generation, flags, counts, body);
    }

    /// [`AnswerCache::put`] with the slot from [`AnswerCache::prefetch_slot`].
    pub fn put_at(
        &mut self,
        slot: Slot,
        key: &Key,
        generation: u64,
        flags: u16,
        counts: [u16; 3],
        body: &[u8],
    ) {
        let len = HEAD + key.len + body.len();
        let lines = len.div_ceil(LINE);
        if lines > MAX_LINES || lines * LINE > self.arena.len() {
            return;
        }
        // The way to write: the one with this tag (an older answer, or
        // another key with the same tag), else way 0, the newest key's,
        // whose answer moves to way 1 and pushes out what was there.
        let (way, old) = match self.find(slot) {
            Some(found) => found,
            None => {
                let (w0, w1) = (self.way(slot.set, 0), self.way(slot.set, 1));
                if w0 != 0 {
                    self.set_way(slot.set, 1, w0);
                }
                (0, if w0 != 0 { w1 } else { 0 })
            }
        };
        let at = match slot_entry(old) {
            Some((at, room)) if room >= len => at,
            _ => {
                let room = lines * LINE;
                if self.next + room > self.arena.len() {
                    // Full: forget everything. Cheaper and fairer than
                    // tracking which entries are still wanted, and rare.
                    self.slots.clear();
                    self.arena.clear();
                    self.next = 0;
                }
                let at = self.next;
                self.next += room;
                at
            }
        };
        let room = slot_entry(old)
            .filter(|&(a, r)| a == at && r >= len)
            .map_or(lines, |(_, r)| r / LINE);
        self.set_way(slot.set, way, slot_value(at, room, slot.tag));
        let e = &mut self.arena.bytes_mut()[at..at + len];
        e[..8].copy_from_slice(&generation.to_be_bytes());
        e[8..10].copy_from_slice(&flags.to_be_bytes());
        for (k, c) in counts.iter().enumerate() {
            e[10 + 2 * k..12 + 2 * k].copy_from_slice(&c.to_be_bytes());
        }
        e[16..18].copy_from_slice(&(key.len as u16).to_be_bytes());
        e[18..20].copy_from_slice(&(body.len() as u16).to_be_bytes());
        e[HEAD..HEAD + key.len].copy_from_slice(key.bytes());
        e[HEAD + key.len..].copy_from_slice(body);
    }
}

/// Zeroed memory of its own mapping, backed by huge pages where the kernel
/// offers them. Pages are only used once written.
struct Region {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain memory owned by this value alone.
unsafe impl Send for Region {}

impl Region {
    fn new(len: usize) -> Region {
        // SAFETY: a fresh private anonymous mapping; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(len, 1).expect("a valid layout"),
            );
        }
        #[cfg(target_os = "linux")]
        // SAFETY: advice on our own mapping; failure (no THP) changes
        // nothing but the page size.
        unsafe {
            libc::madvise(p, len, libc::MADV_HUGEPAGE);
        }
        Region {
            ptr: std::ptr::NonNull::new(p.cast()).expect("mmap gave a non-null address"),
            len,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` octets, readable, and lives as long
        // as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Back to zeroes, giving the memory back to the kernel.
    fn clear(&mut self) {
        // SAFETY: MADV_DONTNEED on a private anonymous mapping of ours:
        // the next read of any page sees zeroes.
        let rc = unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_DONTNEED) };
        if rc != 0 {
            self.bytes_mut().fill(0);
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `new`, used no more.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_and_generations() {
        let mut c = AnswerCache::new(16, 4096);
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

    fn key(name: &str) -> Key {
        let mut wire = Vec::new();
        for label in name.split('.').filter(|l| !l.is_empty()) {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
        Key::new(&wire, 1, false, true, 1232)
    }

    #[test]
    fn a_set_keeps_the_two_newest_answers() {
        // Two slots: one set, so every key shares it.
        let mut c = AnswerCache::new(2, 1 << 16);
        let (a, b, x) = (key("a.example"), key("b.example"), key("x.example"));
        c.put(&a, 1, 0, [1, 0, 0], b"A");
        c.put(&b, 1, 0, [1, 0, 0], b"B");
        assert_eq!(c.get(&a, 1).unwrap().body, b"A");
        assert_eq!(c.get(&b, 1).unwrap().body, b"B");
        c.put(&x, 1, 0, [1, 0, 0], b"X");
        assert!(c.get(&a, 1).is_none(), "the oldest goes");
        assert_eq!(c.get(&b, 1).unwrap().body, b"B");
        assert_eq!(c.get(&x, 1).unwrap().body, b"X");
        // A longer answer for a cached key moves to new room; the shorter
        // one after it reuses that room.
        let long = vec![7u8; 500];
        c.put(&x, 2, 0, [1, 0, 0], &long);
        assert_eq!(c.get(&x, 2).unwrap().body, &long[..]);
        c.put(&x, 3, 0, [1, 0, 0], b"short");
        assert_eq!(c.get(&x, 3).unwrap().body, b"short");
        assert_eq!(c.get(&b, 1).unwrap().body, b"B");
    }

    #[test]
    fn a_full_arena_starts_afresh() {
        // Room for a few entries of two lines each.
        let mut c = AnswerCache::new(1 << 10, 8 * LINE);
        let body = [1u8; 80];
        let keys: Vec<Key> = (0..40).map(|i| key(&format!("h{i}.example"))).collect();
        for k in &keys {
            c.put(k, 1, 0, [1, 0, 0], &body);
            assert_eq!(c.get(k, 1).unwrap().body, &body[..], "the newest is kept");
        }
        let kept = keys.iter().filter(|k| c.get(k, 1).is_some()).count();
        assert!((1..=4).contains(&kept), "{kept} entries in room for 4");
        // An answer larger than the whole arena is not cached.
        let big = vec![0u8; 8 * LINE];
        c.put(&keys[0], 2, 0, [1, 0, 0], &big);
        assert!(c.get(&keys[0], 2).is_none());
    }
}
