//! Response rate limiting for UDP, with BIND's semantics.
//!
//! A spoofed query makes us send its answer to the forged source: with
//! DO=1 a 40-octet query brings a 1,232-octet answer. RRL counts, per
//! client prefix (IPv4 /24, IPv6 /56 by default) and per *answer*, the
//! responses sent, and stops sending when one answer to one prefix goes
//! over its rate; every `slip`-th limited response still goes out,
//! truncated (TC=1, the question only), so a real client behind the
//! prefix retries over TCP, which cannot be spoofed.
//!
//! "The same answer" is BIND's: a positive answer is its name and type
//! (a wildcard's, its parent's name); NODATA its name whatever the type;
//! NXDOMAIN the zone, whatever the name (random names in one zone are one
//! answer); a referral its delegation; errors (REFUSED, SERVFAIL, FORMERR,
//! ...) one answer whatever the question.
//!
//! Accounting is BIND's credit scheme: each (prefix, answer) account earns
//! `rate` credits a second up to `rate`, a response costs one, and the
//! account goes down to `-window × rate` at most, so a flood must stay
//! below the rate for about `window` seconds before answers resume.
//!
//! Each UDP worker has its own table (no locks, no sharing). The kernel
//! spreads a client's datagrams over the workers by source port, so each
//! worker allows its share, `rate / workers` (counted in fixed point).
//! The table is fixed in size (sets of two entries; a new account takes the
//! place of the one idle the longest), so spoofed sources can only push
//! each other out, never grow it.

use std::hash::BuildHasher;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::RrlConfig;

/// Which kind of answer a response is, for its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    Positive = 0,
    NoData = 1,
    NxDomain = 2,
    Referral = 3,
    Error = 4,
}

impl Class {
    pub fn from_u8(v: u8) -> Class {
        match v {
            0 => Class::Positive,
            1 => Class::NoData,
            2 => Class::NxDomain,
            3 => Class::Referral,
            _ => Class::Error,
        }
    }
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send it truncated: header and question, TC=1 (or BADCOOKIE).
    Slip,
    Drop,
}

/// The response's account name: its class and a hash of the name the
/// class keys on (0 for errors), and the type for positive answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Answer {
    pub class: u8,
    pub qtype: u16,
    pub name_hash: u64,
}

impl Answer {
    pub fn new(class: Class, qtype: u16, name_hash: u64) -> Answer {
        let qtype = if class == Class::Positive { qtype } else { 0 };
        let name_hash = if class == Class::Error { 0 } else { name_hash };
        Answer {
            class: class as u8,
            qtype,
            name_hash,
        }
    }

    pub fn error() -> Answer {
        Answer::new(Class::Error, 0, 0)
    }
}

/// A hash of a wire name without regard to case, for
/// [`Answer::name_hash`]; the same function for every path so the same
/// answer lands in the same account.
pub fn name_hash(wire: &[u8]) -> u64 {
    static STATE: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    let mut lower = [0u8; crate::zone::key::MAX_NAME];
    let n = wire.len().min(lower.len());
    for (l, b) in lower.iter_mut().zip(&wire[..n]) {
        *l = b.to_ascii_lowercase();
    }
    STATE
        .get_or_init(foldhash::fast::RandomState::default)
        .hash_one(&lower[..n])
}

/// The account of a response the hickory path made, read back from its
/// wire form (a slow path: it allocates).
pub fn classify(response: &[u8]) -> Answer {
    let Ok(m) = crate::wire::Message::parse(response) else {
        return Answer::error();
    };
    let Some(q) = m.questions.first() else {
        return Answer::error();
    };
    let hash = |name: &hickory_proto::rr::Name| {
        name_hash(crate::zone::key::WireName::from_name(name).bytes())
    };
    let qtype = u16::from(q.qtype);
    match m.rcode() {
        0 if !m.answers.is_empty() => Answer::new(Class::Positive, qtype, hash(&q.name)),
        0 => match m
            .authority
            .iter()
            .find(|r| r.rtype == hickory_proto::rr::RecordType::NS)
        {
            Some(ns) if !m.header.authoritative() => {
                Answer::new(Class::Referral, qtype, hash(&ns.name))
            }
            _ => Answer::new(Class::NoData, qtype, hash(&q.name)),
        },
        3 => {
            let zone = m
                .authority
                .iter()
                .find(|r| r.rtype == hickory_proto::rr::RecordType::SOA)
                .map_or(&q.name, |soa| &soa.name);
            Answer::new(Class::NxDomain, qtype, hash(zone))
        }
        _ => Answer::error(),
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Hash of prefix and answer; 0 when unused.
    key: u64,
    /// Second of the last debit, from the limiter's clock.
    last: u32,
    /// Credits, in units of 1/workers response.
    balance: i32,
}

/// Counts of what RRL did, added to the shared metrics per batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub dropped: u64,
    pub slipped: u64,
    /// Clients with a valid server cookie let through without counting.
    pub cookie_exempt: u64,
}

/// One worker's limiter.
pub struct Limiter {
    table: Box<[Entry]>,
    /// Sets of two: the index mask of a set's first entry.
    mask: usize,
    /// Credits earned a second, per class (units of 1/workers response).
    rates: [i32; 5],
    /// What one response costs: the number of workers.
    cost: i32,
    window: i32,
    slip: u32,
    slip_count: u32,
    v4_mask: u32,
    v6_mask: u128,
    exempt: Vec<IpNet>,
    seeds: [u64; 2],
    pub counts: Counts,
}

impl Limiter {
    /// `None` when the configuration turns RRL off. `workers` is the number
    /// of UDP sockets sharing a listen address.
    pub fn new(config: &RrlConfig, workers: usize) -> Option<Limiter> {
        if !config.enabled() {
            return None;
        }
        let workers = workers.clamp(1, 1 << 10) as i32;
        let sets = (config.table_size / 2).next_power_of_two().max(1);
        let rate = |r: u32| r.min(1 << 20) as i32;
        Some(Limiter {
            table: vec![Entry::default(); sets * 2].into_boxed_slice(),
            mask: (sets - 1) * 2,
            rates: [
                rate(config.responses_per_second),
                rate(config.nodata_per_second),
                rate(config.nxdomains_per_second),
                rate(config.referrals_per_second),
                rate(config.errors_per_second),
            ],
            cost: workers,
            window: config.window.as_secs().clamp(1, 3600) as i32,
            slip: config.slip,
            slip_count: 0,
            v4_mask: u32::MAX
                .checked_shl(32 - u32::from(config.ipv4_prefix_length))
                .unwrap_or(0),
            v6_mask: u128::MAX
                .checked_shl(128 - u32::from(config.ipv6_prefix_length))
                .unwrap_or(0),
            exempt: config.exempt.clone(),
            seeds: [rand::random::<u64>() | 1, rand::random::<u64>() | 1],
            counts: Counts::default(),
        })
    }

    /// Whether `client` is never limited.
    pub fn exempt(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.exempt.iter().any(|n| n.contains(&client))
    }

    /// The verdict on one response of `answer` to `client` at second `now`
    /// (any clock that counts seconds), debiting its account.
    pub fn check(&mut self, client: IpAddr, answer: Answer, now: u32) -> Verdict {
        let class = answer.class.min(4) as usize;
        let rate = self.rates[class];
        if rate == 0 || self.exempt(client) {
            return Verdict::Send;
        }
        let (family, prefix): (u8, u128) = match client.to_canonical() {
            IpAddr::V4(a) => (4, u128::from(u32::from(a) & self.v4_mask)),
            IpAddr::V6(a) => (6, u128::from(a) & self.v6_mask),
        };
        // One folded multiply of the prefix against the answer, each side
        // keyed with the limiter's random seeds: the name is hashed already.
        let who = (prefix as u64) ^ ((prefix >> 64) as u64).rotate_left(29) ^ u64::from(family);
        let what = answer.name_hash
            ^ (u64::from(answer.qtype) << 8 | u64::from(answer.class)).rotate_left(40);
        let wide = u128::from(who ^ self.seeds[0]) * u128::from(what ^ self.seeds[1]);
        let key = ((wide as u64) ^ ((wide >> 64) as u64)) | 1;
        let set = key as usize & self.mask;
        let (a, b) = (self.table[set], self.table[set + 1]);
        let at = if a.key == key {
            set
        } else if b.key == key {
            set + 1
        } else {
            // A new account replaces the one idle the longest.
            let victim = if a.key == 0
                || (b.key != 0 && now.wrapping_sub(a.last) >= now.wrapping_sub(b.last))
            {
                set
            } else {
                set + 1
            };
            self.table[victim] = Entry {
                key,
                last: now,
                balance: rate.max(self.cost),
            };
            victim
        };
        let e = &mut self.table[at];
        let elapsed = now.wrapping_sub(e.last).min(3600) as i64;
        // The cap is a second's credit, and never less than one response
        // (a rate below the number of workers is a response every few
        // seconds per worker, not none).
        let cap = i64::from(rate.max(self.cost));
        let balance = (i64::from(e.balance) + elapsed * i64::from(rate)).min(cap);
        let floor = -i64::from(self.window) * i64::from(rate);
        let balance = (balance - i64::from(self.cost)).max(floor);
        e.balance = balance as i32;
        e.last = now;
        if balance >= 0 {
            return Verdict::Send;
        }
        if self.slip > 0 {
            self.slip_count += 1;
            if self.slip_count >= self.slip {
                self.slip_count = 0;
                self.counts.slipped += 1;
                return Verdict::Slip;
            }
        }
        self.counts.dropped += 1;
        Verdict::Drop
    }
}

/// Rewrites the response `msg[..len]` in place as a slipped one: the
/// header with TC=1 (or, with `badcookie`, RCODE BADCOOKIE and TC clear)
/// and no records, the question, and the OPT record when the response had
/// one (with a `cookie` option's data replacing its options, when given).
/// Returns the new length, or `None` when the response cannot be read (the
/// caller then drops it).
pub fn slip(msg: &mut [u8], len: usize, badcookie: bool, cookie: Option<&[u8]>) -> Option<usize> {
    let m = &msg[..len];
    if len < 12 || u16::from_be_bytes([m[4], m[5]]) != 1 {
        return None;
    }
    let mut at = 12 + crate::zone::raw::name_len(&m[12..])? + 4;
    if at > len {
        return None;
    }
    let qend = at;
    let counts = [6, 8, 10].map(|i| u16::from_be_bytes([m[i], m[i + 1]]) as usize);
    let mut opt = None;
    for i in 0..counts.iter().sum() {
        let start = at;
        at += skip_name(m, at)?;
        let rtype = u16::from_be_bytes([*m.get(at)?, *m.get(at + 1)?]);
        let rdlen = u16::from_be_bytes([*m.get(at + 8)?, *m.get(at + 9)?]) as usize;
        at += 10 + rdlen;
        if at > len {
            return None;
        }
        if rtype == 41 && i >= counts[0] + counts[1] {
            opt = Some((start, at));
        }
    }
    let mut out = qend;
    let mut ar = 0;
    if let Some((start, _)) = opt {
        // The OPT's fixed part: root, type, class, TTL, then our options.
        let fixed = 11;
        msg.copy_within(start..start + fixed - 2, out);
        let rdlen_at = out + fixed - 2;
        let data = cookie.unwrap_or(&[]);
        let opt_data_len = if cookie.is_some() { 4 + data.len() } else { 0 };
        msg[rdlen_at..rdlen_at + 2].copy_from_slice(&(opt_data_len as u16).to_be_bytes());
        out = rdlen_at + 2;
        if let Some(data) = cookie {
            msg[out..out + 2].copy_from_slice(&crate::cookie::OPTION.to_be_bytes());
            msg[out + 2..out + 4].copy_from_slice(&(data.len() as u16).to_be_bytes());
            msg[out + 4..out + 4 + data.len()].copy_from_slice(data);
            out += 4 + data.len();
        }
        // Extended RCODE: the upper 8 bits in the OPT TTL's first octet.
        let ttl_at = qend + 5;
        msg[ttl_at] = if badcookie {
            (crate::cookie::BADCOOKIE >> 4) as u8
        } else {
            0
        };
        ar = 1;
    }
    let badcookie = badcookie && opt.is_some();
    // Flags: QR, opcode, RD and CD as they were; AA cleared; TC set
    // unless the answer is BADCOOKIE.
    msg[2] = (msg[2] & 0xF9) | if badcookie { 0 } else { 0x02 };
    msg[3] = (msg[3] & 0xF0)
        | if badcookie {
            (crate::cookie::BADCOOKIE & 0x0F) as u8
        } else {
            msg[3] & 0x0F
        };
    msg[6..12].copy_from_slice(&[0, 0, 0, 0, 0, ar]);
    Some(out)
}

/// Octets of the (possibly compressed) name at `at`.
fn skip_name(m: &[u8], mut at: usize) -> Option<usize> {
    let start = at;
    loop {
        let n = *m.get(at)?;
        if n & 0xC0 == 0xC0 {
            return Some(at + 2 - start);
        }
        if n == 0 {
            return Some(at + 1 - start);
        }
        at += n as usize + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(rate: u32, slip: u32) -> RrlConfig {
        RrlConfig {
            responses_per_second: rate,
            nodata_per_second: rate,
            nxdomains_per_second: rate,
            referrals_per_second: rate,
            errors_per_second: rate,
            window: Duration::from_secs(5),
            slip,
            ipv4_prefix_length: 24,
            ipv6_prefix_length: 56,
            exempt: vec!["192.0.2.128/25".parse().unwrap()],
            table_size: 64,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sent(l: &mut Limiter, client: &str, answer: Answer, now: u32, n: usize) -> [usize; 3] {
        let mut v = [0; 3];
        for _ in 0..n {
            match l.check(ip(client), answer, now) {
                Verdict::Send => v[0] += 1,
                Verdict::Slip => v[1] += 1,
                Verdict::Drop => v[2] += 1,
            }
        }
        v
    }

    #[test]
    fn rate_window_slip_and_prefixes() {
        let mut l = Limiter::new(&config(10, 2), 1).unwrap();
        let mx = Answer::new(Class::Positive, 15, 42);
        // A second's worth goes out, then half the rest slip.
        assert_eq!(sent(&mut l, "192.0.2.1", mx, 100, 30), [10, 10, 10]);
        // The same /24 shares the account; another /24 or answer does not.
        assert_eq!(sent(&mut l, "192.0.2.77", mx, 100, 1)[0], 0);
        assert_eq!(sent(&mut l, "198.51.100.1", mx, 100, 10), [10, 0, 0]);
        let a = Answer::new(Class::Positive, 1, 42);
        assert_eq!(sent(&mut l, "192.0.2.1", a, 100, 10), [10, 0, 0]);
        // The debt is capped at window × rate (50): 5 quiet seconds pay it
        // off, the sixth brings credit.
        assert_eq!(sent(&mut l, "192.0.2.1", mx, 101, 1000)[0], 0);
        assert_eq!(sent(&mut l, "192.0.2.1", mx, 106, 1)[0], 0);
        assert_eq!(sent(&mut l, "192.0.2.1", mx, 108, 1)[0], 1);
        // Exempt networks are never limited.
        assert_eq!(sent(&mut l, "192.0.2.200", mx, 100, 100), [100, 0, 0]);
    }

    #[test]
    fn classes_aggregate_as_bind_does() {
        let mut l = Limiter::new(&config(5, 0), 1).unwrap();
        // NXDOMAIN for any name of a zone, NODATA for any type, errors for
        // anything: one account each.
        let nx1 = Answer::new(Class::NxDomain, 1, 7);
        let nx2 = Answer::new(Class::NxDomain, 28, 7);
        assert_eq!(sent(&mut l, "203.0.113.9", nx1, 5, 5), [5, 0, 0]);
        assert_eq!(sent(&mut l, "203.0.113.9", nx2, 5, 5), [0, 0, 5]);
        let e1 = Answer::new(Class::Error, 1, 1);
        let e2 = Answer::new(Class::Error, 2, 2);
        assert_eq!(sent(&mut l, "203.0.113.9", e1, 5, 5), [5, 0, 0]);
        assert_eq!(sent(&mut l, "203.0.113.9", e2, 5, 1), [0, 0, 1]);
        assert_eq!(l.counts.dropped, 6);
    }

    #[test]
    fn workers_share_the_rate_and_ipv6_uses_its_prefix() {
        let mut l = Limiter::new(&config(10, 0), 2).unwrap();
        let a = Answer::new(Class::Positive, 1, 1);
        assert_eq!(sent(&mut l, "2001:db8:1:ff::1", a, 9, 10), [5, 0, 5]);
        // Same /56.
        assert_eq!(sent(&mut l, "2001:db8:1:aa::2", a, 9, 1), [0, 0, 1]);
        assert_eq!(sent(&mut l, "2001:db8:2::1", a, 9, 5), [5, 0, 0]);
    }

    #[test]
    fn a_rate_below_the_worker_count_still_answers() {
        // 1 a second over 4 workers: each worker one response every 4 s.
        let mut l = Limiter::new(&config(1, 0), 4).unwrap();
        let a = Answer::new(Class::Positive, 1, 1);
        assert_eq!(sent(&mut l, "192.0.2.1", a, 100, 3), [1, 0, 2]);
        assert_eq!(sent(&mut l, "192.0.2.1", a, 103, 1), [0, 0, 1]);
        let mut l = Limiter::new(&config(1, 0), 4).unwrap();
        l.check(ip("192.0.2.1"), a, 100);
        assert_eq!(sent(&mut l, "192.0.2.1", a, 104, 1), [1, 0, 0]);
    }

    #[test]
    fn the_table_never_grows() {
        let mut l = Limiter::new(&config(1, 0), 1).unwrap();
        let before = l.table.len();
        for i in 0..100_000u32 {
            let client = IpAddr::from(i.to_be_bytes().map(|b| b | 1));
            l.check(
                client,
                Answer::new(Class::Positive, 1, u64::from(i)),
                i / 1000,
            );
        }
        assert_eq!(l.table.len(), before);
    }

    #[test]
    fn slipped_responses_keep_the_question_and_opt() {
        // id, flags QR AA RD, 1 question, 1 answer, 0, 1 additional (OPT).
        let mut m = vec![0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 1];
        m.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        m.extend_from_slice(&[0, 0, 41, 4, 0xD0, 0, 0, 0x80, 0, 0, 0]);
        let len = m.len();
        m.resize(1232, 0);
        let n = slip(&mut m, len, false, None).unwrap();
        assert_eq!(n, 12 + 17 + 11);
        assert_eq!(&m[..12], &[0x12, 0x34, 0x83, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&m[29..40], &[0, 0, 41, 4, 0xD0, 0, 0, 0x80, 0, 0, 0]);
        // BADCOOKIE: TC clear, RCODE 23 split over header and OPT.
        let mut b = m.clone();
        let n = slip(&mut b, n, true, Some(&[5; 24])).unwrap();
        assert_eq!(n, 12 + 17 + 11 + 28);
        assert_eq!(b[2] & 0x02, 0);
        assert_eq!(u16::from(b[3] & 0x0F) | u16::from(b[29 + 5]) << 4, 23);
        assert_eq!(&b[29 + 9..29 + 15], &[0, 28, 0, 10, 0, 24]);
    }
}
