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
//! Two-way set-associative and bounded by one memory budget for all
//! workers (`[cache] size`, each worker a share): a question's hash picks a
//! set of two slots; the answers themselves are written one after another
//! into an arena used as a ring, so that when it is full the oldest answers
//! make room, one at a time, their slots cleared as their room is taken
//! (each entry records its set), never the whole cache at once.
//!
//! Admission: a question's answer is cached at its second sighting, not
//! its first. A small bitmap (a Bloom filter of two bits per question,
//! cleared when an eighth of it has been set) remembers the questions seen
//! once; a flood of names that never repeat (random subdomains) therefore
//! passes by the cache instead of pushing the hot answers out, and costs a
//! bit each. Within a set, the answer to push out is the one not used since
//! the last new answer came to the set (a used bit per slot, as CLOCK does).
//!
//! Both the slot table and the arena are mappings of their own, asked for
//! with transparent huge pages. perf showed why: with the slots in 4 KiB
//! pages and each answer in a heap allocation of its own, the prefetches of
//! a batch were mostly page walks (a slot table of 8 MiB spans 2,048 pages,
//! more than the TLB holds), about 4 % of the CPU an answer costs.

use std::hash::BuildHasher;

use crate::prefetch;

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
    /// The response's rate-limiting account (class and name hash).
    pub rrl: (u8, u64),
}

/// An entry: generation (8 octets), flags (2), counts (6), key length (2),
/// body length (2), its set (4), its room in lines (1), the RRL class (1)
/// and name hash (8), then the key and the body. A hit reads the slot and
/// this, nothing else.
const HEAD: usize = 34;
/// Entries start on a cache line and take whole lines.
const LINE: usize = 64;

/// A slot holds 0 when empty, else the entry's offset in the arena in lines
/// plus one (bits 0-21), its room in lines (22-27), a used bit (28) and a
/// tag (29-63): the top bits of the key's hash, so that a lookup reads only
/// the entry whose tag matches.
const OFFSET_BITS: u32 = 22;
const ROOM_BITS: u32 = 6;
const USED_BIT: u64 = 1 << (OFFSET_BITS + ROOM_BITS);
const TAG_SHIFT: u32 = OFFSET_BITS + ROOM_BITS + 1;
const MAX_LINES: usize = (1 << ROOM_BITS) - 1;
/// The arena is addressed in lines by the slot's offset bits.
const MAX_ARENA: usize = ((1 << OFFSET_BITS) - 1) * LINE;
/// Octets of budget per octet of slot table and admission bitmap: a slot
/// for about every 64 octets of arena, so that the sets have room to spare
/// for answers of two or three lines.
const SLOT_SHARE: usize = 8;

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

/// Where a key's answer is looked for: its set of two slots and its tag,
/// and the key's hash for the admission bitmap.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slot {
    set: usize,
    tag: u64,
    hash: u64,
}

/// What the cache holds and did, for tests and the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Answers offered but not admitted (first sighting).
    pub declined: u64,
    /// Answers whose room the ring took back.
    pub evicted: u64,
}

pub struct AnswerCache {
    slots: Region,
    arena: Region,
    /// Where the next answer is written.
    next: usize,
    /// The first answer of the previous lap not yet taken back, and where
    /// that lap's answers end.
    evict: usize,
    lap_end: usize,
    mask: usize,
    hasher: foldhash::fast::RandomState,
    /// Admission bitmap and how many of its bits were set since it was
    /// cleared.
    seen: Vec<u64>,
    seen_set: usize,
    pub stats: Stats,
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
        // Two bits per question, eight bits per slot; a power of two.
        let seen_words = (sets * 2 * 8).div_ceil(64).max(16).next_power_of_two();
        AnswerCache {
            slots: Region::new(sets * 16),
            arena: Region::new(arena.clamp(LINE, MAX_ARENA)),
            next: 0,
            evict: 0,
            lap_end: 0,
            mask: sets - 1,
            hasher: foldhash::fast::RandomState::default(),
            seen: vec![0; seen_words],
            seen_set: 0,
            stats: Stats::default(),
        }
    }

    /// A cache of about `budget` octets in all (slots, bitmap and answers),
    /// `None` for 0 (no cache).
    pub fn with_budget(budget: u64) -> Option<AnswerCache> {
        if budget == 0 {
            return None;
        }
        let budget = (budget as usize).min(MAX_ARENA + MAX_ARENA / 8);
        // Sets of 16 octets of slots, plus 2 octets of bitmap per set.
        let sets = (budget / SLOT_SHARE / 18).max(1).next_power_of_two();
        let arena = budget.saturating_sub(sets * 18).max(LINE);
        Some(AnswerCache::new(sets * 2, arena))
    }

    /// Octets of memory this cache may come to use.
    pub fn budget(&self) -> usize {
        self.slots.len() + self.arena.len() + self.seen.len() * 8
    }

    fn slot_of(&self, key: &Key) -> Slot {
        let h = self.hasher.hash_one(key.bytes());
        Slot {
            set: h as usize & self.mask,
            tag: h >> TAG_SHIFT,
            hash: h,
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
        // A question not cached has its bitmap bits read next (a
        // never-repeating stream is all such questions): a miss on each
        // would otherwise be waited for in turn.
        for b in self.seen_bits(slot) {
            prefetch(self.seen.as_ptr().wrapping_add(b / 64).cast());
        }
        slot
    }

    /// Whether `slot` holds an answer (of any generation).
    pub fn holds(&self, slot: Slot) -> bool {
        self.find(slot).is_some()
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

    pub fn get(&mut self, key: &Key, generation: u64) -> Option<Hit<'_>> {
        self.get_at(self.slot_of(key), key, generation)
    }

    /// [`AnswerCache::get`] with the slot from [`AnswerCache::prefetch_slot`].
    pub fn get_at(&mut self, slot: Slot, key: &Key, generation: u64) -> Option<Hit<'_>> {
        let (way, value) = self.find(slot)?;
        let (at, _) = slot_entry(value)?;
        {
            let e = &self.arena.bytes()[at..];
            let key_len = u16_at(e, 16) as usize;
            if e[..8] != generation.to_be_bytes()[..]
                || e.get(HEAD..HEAD + key_len) != Some(key.bytes())
            {
                return None;
            }
        }
        if value & USED_BIT == 0 {
            self.set_way(slot.set, way, value | USED_BIT);
        }
        let e = &self.arena.bytes()[at..];
        let key_len = u16_at(e, 16) as usize;
        let body_len = u16_at(e, 18) as usize;
        Some(Hit {
            flags: u16_at(e, 8),
            counts: [u16_at(e, 10), u16_at(e, 12), u16_at(e, 14)],
            body: &e[HEAD + key_len..HEAD + key_len + body_len],
            rrl: (
                e[25],
                u64::from_be_bytes(e[26..34].try_into().expect("8 octets")),
            ),
        })
    }

    /// The two bits of `slot`'s key in the bitmap, whose length is a power
    /// of two: a mask, not a division, picks them.
    #[inline]
    fn seen_bits(&self, slot: Slot) -> [usize; 2] {
        let mask = self.seen.len() * 64 - 1;
        [
            (slot.hash >> 7) as usize & mask,
            (slot.hash >> 35) as usize & mask,
        ]
    }

    /// Whether the key of `slot` was seen before (since the bitmap was last
    /// cleared); marks it seen.
    fn seen_before(&mut self, slot: Slot) -> bool {
        let bits = self.seen.len() * 64;
        let mut before = true;
        for b in self.seen_bits(slot) {
            let (w, m) = (b / 64, 1u64 << (b % 64));
            if self.seen[w] & m == 0 {
                before = false;
                self.seen[w] |= m;
                self.seen_set += 1;
            }
        }
        if self.seen_set > bits / 8 {
            self.seen.fill(0);
            self.seen_set = 0;
        }
        before
    }

    pub fn put(
        &mut self,
        key: &Key,
        generation: u64,
        flags: u16,
        counts: [u16; 3],
        body: &[u8],
        rrl: (u8, u64),
    ) {
        self.put_at(self.slot_of(key), key, generation, flags, counts, body, rrl);
    }

    /// [`AnswerCache::put`] with the slot from [`AnswerCache::prefetch_slot`].
    #[allow(clippy::too_many_arguments)]
    pub fn put_at(
        &mut self,
        slot: Slot,
        key: &Key,
        generation: u64,
        flags: u16,
        counts: [u16; 3],
        body: &[u8],
        rrl: (u8, u64),
    ) {
        let len = HEAD + key.len + body.len();
        let lines = len.div_ceil(LINE);
        if lines > MAX_LINES || lines * LINE > self.arena.len() {
            return;
        }
        let found = self.find(slot);
        // A new question: only at its second sighting.
        if found.is_none() && !self.seen_before(slot) {
            self.stats.declined += 1;
            return;
        }
        // The way to write: the one with this tag (an older answer, or
        // another key with the same tag), else an empty one, else the one
        // not used since the last answer came to the set (way 1 when both
        // or neither were); the used bits start over.
        let (way, old) = match found {
            Some(found) => found,
            None => {
                let (w0, w1) = (self.way(slot.set, 0), self.way(slot.set, 1));
                let way = if w0 == 0 {
                    0
                } else if w1 == 0 {
                    1
                } else if w0 & USED_BIT == 0 && w1 & USED_BIT != 0 {
                    0
                } else {
                    1
                };
                let other = 1 - way;
                let o = self.way(slot.set, other);
                self.set_way(slot.set, other, o & !USED_BIT);
                (way, self.way(slot.set, way))
            }
        };
        let at = match slot_entry(old) {
            Some((at, room)) if room >= len && found.is_some() => at,
            _ => {
                // The old answer's room is left to the ring.
                self.set_way(slot.set, way, 0);
                self.take_room(lines * LINE)
            }
        };
        let room = match slot_entry(old) {
            Some((a, r)) if a == at && r >= len && found.is_some() => r / LINE,
            _ => lines,
        };
        self.set_way(slot.set, way, slot_value(at, room, slot.tag));
        let e = &mut self.arena.bytes_mut()[at..at + len];
        e[..8].copy_from_slice(&generation.to_be_bytes());
        e[8..10].copy_from_slice(&flags.to_be_bytes());
        for (k, c) in counts.iter().enumerate() {
            e[10 + 2 * k..12 + 2 * k].copy_from_slice(&c.to_be_bytes());
        }
        e[16..18].copy_from_slice(&(key.len as u16).to_be_bytes());
        e[18..20].copy_from_slice(&(body.len() as u16).to_be_bytes());
        e[20..24].copy_from_slice(&(slot.set as u32).to_be_bytes());
        e[24] = room as u8;
        e[25] = rrl.0;
        e[26..34].copy_from_slice(&rrl.1.to_be_bytes());
        e[HEAD..HEAD + key.len].copy_from_slice(key.bytes());
        e[HEAD + key.len..].copy_from_slice(body);
    }

    /// Room for `room` octets at the ring's head, taken back from the
    /// oldest answers: each one's slot is cleared if it still points there.
    fn take_room(&mut self, room: usize) -> usize {
        if self.next + room > self.arena.len() {
            // A new lap: whatever is left of the previous one goes, and
            // this lap's answers become the ones to take back.
            self.release(self.arena.len());
            self.lap_end = self.next;
            self.evict = 0;
            self.next = 0;
        }
        self.release(self.next + room);
        let at = self.next;
        self.next += room;
        at
    }

    /// Takes back the previous lap's answers that start before `upto`.
    fn release(&mut self, upto: usize) {
        while self.evict < upto && self.evict < self.lap_end {
            let at = self.evict;
            let (set, lines) = {
                let e = &self.arena.bytes()[at..at + HEAD];
                (
                    u32::from_be_bytes(e[20..24].try_into().expect("4 octets")) as usize,
                    (e[24] as usize).max(1),
                )
            };
            if set <= self.mask {
                for way in 0..2 {
                    let v = self.way(set, way);
                    if slot_entry(v).is_some_and(|(a, _)| a == at) {
                        self.set_way(set, way, 0);
                        self.stats.evicted += 1;
                    }
                }
            }
            self.evict += lines * LINE;
        }
        self.evict = self.evict.max(upto.min(self.lap_end));
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

    const R: (u8, u64) = (0, 0);

    /// Puts twice: the first sighting is only noted.
    fn put2(c: &mut AnswerCache, k: &Key, generation: u64, counts: [u16; 3], body: &[u8]) {
        c.put(k, generation, 0, counts, body, R);
        c.put(k, generation, 0, counts, body, R);
    }

    #[test]
    fn hit_miss_and_generations() {
        let mut c = AnswerCache::new(16, 4096);
        let k = Key::new(b"\x03www\x07example\x00", 1, false, true, 1232);
        assert!(c.get(&k, 1).is_none());
        c.put(&k, 1, 0x0400, [1, 0, 1], b"body", (3, 99));
        assert!(c.get(&k, 1).is_none(), "not at the first sighting");
        c.put(&k, 1, 0x0400, [1, 0, 1], b"body", (3, 99));
        let hit = c.get(&k, 1).unwrap();
        assert_eq!(
            (hit.flags, hit.counts, hit.body, hit.rrl),
            (0x0400, [1, 0, 1], &b"body"[..], (3, 99))
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
        // A new answer for a cached key replaces the old one at once.
        c.put(&k, 2, 0x0403, [0, 1, 1], b"nx", R);
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
    fn a_set_keeps_the_used_answer() {
        // Two slots: one set, so every key shares it.
        let mut c = AnswerCache::new(2, 1 << 16);
        let (a, b, x) = (key("a.example"), key("b.example"), key("x.example"));
        put2(&mut c, &a, 1, [1, 0, 0], b"A");
        put2(&mut c, &b, 1, [1, 0, 0], b"B");
        assert_eq!(c.get(&a, 1).unwrap().body, b"A");
        put2(&mut c, &x, 1, [1, 0, 0], b"X");
        assert_eq!(c.get(&a, 1).unwrap().body, b"A", "the used one stays");
        assert!(c.get(&b, 1).is_none(), "the unused one goes");
        assert_eq!(c.get(&x, 1).unwrap().body, b"X");
        // A longer answer for a cached key moves to new room; the shorter
        // one after it reuses that room.
        let long = vec![7u8; 500];
        c.put(&x, 2, 0, [1, 0, 0], &long, R);
        assert_eq!(c.get(&x, 2).unwrap().body, &long[..]);
        c.put(&x, 3, 0, [1, 0, 0], b"short", R);
        assert_eq!(c.get(&x, 3).unwrap().body, b"short");
        assert_eq!(c.get(&a, 1).unwrap().body, b"A");
    }

    #[test]
    fn a_full_arena_takes_back_the_oldest_answers_only() {
        // Room for four entries of two lines each.
        let mut c = AnswerCache::new(1 << 10, 8 * LINE);
        let body = [1u8; 20];
        let keys: Vec<Key> = (0..40).map(|i| key(&format!("h{i}.example"))).collect();
        for (i, k) in keys.iter().enumerate() {
            put2(&mut c, k, 1, [1, 0, 0], &body);
            assert_eq!(c.get(k, 1).unwrap().body, &body[..], "the newest is kept");
            if i >= 4 {
                // The ring took back only what it needed: the three before
                // are still there.
                for back in &keys[i - 3..i] {
                    assert!(c.get(back, 1).is_some(), "entry {i}: an older one lost");
                }
                assert!(c.get(&keys[i - 4], 1).is_none());
            }
        }
        // An answer larger than the whole arena is not cached.
        let big = vec![0u8; 8 * LINE];
        put2(&mut c, &keys[0], 2, [1, 0, 0], &big);
        assert!(c.get(&keys[0], 2).is_none());
    }

    /// The hot answers survive a flood of names that never repeat: the hit
    /// ratio on the hot set stays where it was. Without admission, the
    /// flood would push them out of their sets and the ring.
    #[test]
    fn a_random_name_flood_leaves_the_hot_answers_cached() {
        let mut c = AnswerCache::with_budget(1 << 20).unwrap();
        assert!(c.budget() <= 1 << 20, "{} over the budget", c.budget());
        let hot: Vec<Key> = (0..1000)
            .map(|i| key(&format!("host{i}.example")))
            .collect();
        let body = [3u8; 100];
        let ask = |c: &mut AnswerCache, k: &Key| -> bool {
            if c.get(k, 1).is_some() {
                return true;
            }
            c.put(k, 1, 0, [1, 0, 0], &body, R);
            false
        };
        // Warm: every hot question asked a few times.
        for _ in 0..3 {
            for k in &hot {
                ask(&mut c, k);
            }
        }
        let before = hot.iter().filter(|k| ask(&mut c, k)).count() as f64 / hot.len() as f64;
        assert!(before >= 0.97, "warm hot set cached: {before:.3}");
        // The flood: 300,000 never-repeating names (many times what the
        // arena holds), the hot set asked in between, a tenth of the
        // traffic.
        let mut hot_hits = 0;
        let mut hot_asks = 0;
        for i in 0..300_000 {
            ask(&mut c, &key(&format!("r{i}x.example")));
            if i % 10 == 0 {
                let k = &hot[(i / 10) % hot.len()];
                hot_asks += 1;
                hot_hits += usize::from(ask(&mut c, k));
            }
        }
        let during = hot_hits as f64 / hot_asks as f64;
        let after = hot.iter().filter(|k| ask(&mut c, k)).count() as f64 / hot.len() as f64;
        eprintln!(
            "hot hit ratio: before {before:.3}, during the flood {during:.3}, after {after:.3}; {:?}",
            c.stats
        );
        assert!(
            during >= before - 0.05,
            "hot hit ratio during the flood {during:.3}"
        );
        assert!(
            after >= before - 0.05,
            "hot hit ratio after the flood {after:.3}"
        );
        assert!(c.stats.declined > 250_000, "{:?}", c.stats);
    }

    #[test]
    fn budgets() {
        assert!(AnswerCache::with_budget(0).is_none());
        for budget in [4096u64, 1 << 20, 32 << 20, 256 << 20] {
            let c = AnswerCache::with_budget(budget).unwrap();
            assert!(
                c.budget() as u64 <= budget.max(4096) + 1024,
                "{budget}: {}",
                c.budget()
            );
            assert!(c.budget() as u64 >= budget / 2, "{budget}: {}", c.budget());
        }
    }
}
