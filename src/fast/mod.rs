//! The fast path: plain queries answered without hickory's message types,
//! over UDP (`crate::udp`) and TCP (`crate::tcp`) alike.
//!
//! Profiled with callgrind on the benchmark mix, hickory's request parsing,
//! `MessageResponse` building and its encoder (a `Vec` per name for label
//! pointers, a copy of every label into the compression table) cost about
//! 16,000 instructions per query, most of it allocation and copying. This
//! module reads the common query in place (one question, class IN, at most
//! an OPT), asks the same zone lookup as the handler, and writes the answer
//! straight into a reusable buffer. Anything unusual — other opcodes, TSIG,
//! EDNS versions or options the handler acts on, transfers, compressed or
//! malformed questions — is left to the hickory path, so every corner case
//! keeps exactly one implementation.

pub mod cache;
mod encode;

use hickory_proto::rr::RecordType;

use crate::cookie;
use crate::metrics::{Events, PendingCounts};
use crate::rrl;
use crate::serve::{self, EDE_OPTION};
use crate::store::ZoneTable;
use crate::wire::EDNS_EXPIRE;
use crate::zone::key::WireName;
use crate::zone::{Answer, Item};

pub use cache::AnswerCache;
pub use encode::{EncodeError, Encoder, Mark};

/// The largest answer the fast path writes over UDP: the limit we never
/// exceed.
pub const MAX_ANSWER: usize = serve::MAX_UDP_PAYLOAD as usize;

/// The largest answer over TCP: what the 2-octet length prefix can carry.
pub const MAX_TCP_ANSWER: usize = u16::MAX as usize;

/// EDNS TCP keepalive option code (RFC 7828).
pub const EDNS_TCP_KEEPALIVE: u16 = 11;

const OPT: u16 = 41;
/// The OPT record we send: root owner, type, class (payload), TTL, RDLENGTH.
const OPT_LEN: usize = 11;

/// The EDNS part of a query the fast path takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub dnssec_ok: bool,
}

/// A query the fast path can answer, borrowed from the datagram (and the
/// caller's reusable lookup key).
pub struct Query<'a> {
    pub id: u16,
    /// The request's RD and CD bits, in place, which a response copies.
    flags: u16,
    /// QNAME, QTYPE and QCLASS exactly as sent (case included).
    pub question: &'a [u8],
    /// Octets of QNAME at the start of `question`.
    name_len: usize,
    pub wire: &'a WireName,
    pub qtype: RecordType,
    pub edns: Option<Edns>,
    /// Whether the query carried the edns-tcp-keepalive option (RFC 7828),
    /// which a TCP answer then carries too.
    pub keepalive: bool,
    /// Asked over TCP: no UDP size limit, and ANY gets every RRset.
    pub tcp: bool,
    /// The COOKIE option's data, of a valid length (RFC 7873 §5.2).
    pub cookie: Option<&'a [u8]>,
    /// The query asked for our NSID (RFC 5001).
    pub nsid: bool,
    /// Octets of EDNS options our answer carries after its OPT's fixed part
    /// (cookie, NSID): room kept for them when the answer is written.
    pub options_len: usize,
}

impl Query<'_> {
    /// The size limit of the answer, as the hickory path computes it: the
    /// client's UDP limit, or the most a TCP message can carry.
    pub fn limit(&self) -> usize {
        if self.tcp {
            MAX_TCP_ANSWER
        } else {
            serve::udp_limit(self.edns.map(|e| e.payload)) as usize
        }
    }

    /// The limit of the answer before our EDNS options are added.
    fn body_limit(&self) -> usize {
        self.limit() - self.options_len
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads a plain query: QR=0, opcode QUERY, one question of class IN with
/// an uncompressed name, no answer or authority records, and at most one
/// additional record which is an EDNS version 0 OPT without EXPIRE, with at
/// most one COOKIE option, of a valid length. `None` sends the message to
/// the hickory path. The query name's lookup key is written into `wire`,
/// which the caller keeps from query to query. The query is taken as asked
/// over UDP; the TCP path sets [`Query::tcp`].
pub fn parse<'a>(msg: &'a [u8], wire: &'a mut WireName) -> Option<Query<'a>> {
    if msg.len() < 12 || msg[2] & 0xF8 != 0 {
        return None;
    }
    let qd = u16_at(msg, 4)?;
    let an = u16_at(msg, 6)?;
    let ns = u16_at(msg, 8)?;
    let ar = u16_at(msg, 10)?;
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let name_len = wire.read_wire(&msg[12..])?;
    let qend = 12 + name_len + 4;
    let qtype = u16_at(msg, 12 + name_len)?;
    let qclass = u16_at(msg, 12 + name_len + 2)?;
    // Meta types (OPT, TKEY, TSIG, transfers, MAILB/MAILA) and type 0 take
    // the handler's special cases.
    if qclass != 1 || qtype == 0 || qtype == OPT || (249..=254).contains(&qtype) {
        return None;
    }
    let mut keepalive = false;
    let mut cookie = None;
    let mut nsid = false;
    let edns = if ar == 1 {
        let opt = msg.get(qend..)?;
        if opt.len() < OPT_LEN || opt[0] != 0 || u16_at(opt, 1)? != OPT {
            return None;
        }
        // TTL: extended RCODE, version, then DO and the other flags.
        if opt[6] != 0 {
            return None;
        }
        let dnssec_ok = opt[7] & 0x80 != 0;
        let rdlen = u16_at(opt, 9)? as usize;
        if OPT_LEN + rdlen != opt.len() {
            return None;
        }
        let mut at = OPT_LEN;
        while at < opt.len() {
            let code = u16_at(opt, at)?;
            let len = u16_at(opt, at + 2)? as usize;
            // EXPIRE asks for an option only the handler adds.
            if code == EDNS_EXPIRE || at + 4 + len > opt.len() {
                return None;
            }
            let data = &opt[at + 4..at + 4 + len];
            match code {
                // A malformed or second cookie: the handler's FORMERR.
                cookie::OPTION if cookie.is_some() || !(len == 8 || (16..=40).contains(&len)) => {
                    return None;
                }
                cookie::OPTION => cookie = Some(data),
                serve::NSID_OPTION => nsid = true,
                // A client sends it empty (RFC 7828 §3.2.1); one with a
                // value is answered all the same.
                EDNS_TCP_KEEPALIVE => keepalive = true,
                _ => {}
            }
            at += 4 + len;
        }
        Some(Edns {
            payload: u16_at(opt, 1 + 2)?,
            dnssec_ok,
        })
    } else {
        if msg.len() != qend {
            return None;
        }
        None
    };
    Some(Query {
        id: u16_at(msg, 0)?,
        // Only RD is copied into a response; CD is cleared in authoritative
        // answers (RFC 4035 §3.1.6).
        flags: u16_at(msg, 2)? & 0x0100,
        question: &msg[12..qend],
        name_len,
        wire,
        qtype: RecordType::from(qtype),
        edns,
        keepalive,
        tcp: false,
        cookie,
        nsid,
        options_len: 0,
    })
}

/// What [`answer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// An answer of this many octets is in the buffer, and its rate
    /// limiting account.
    Ready(usize, rrl::Answer),
    /// The hickory path must answer this query.
    Slow,
}

const RCODE_SERVFAIL: u16 = 2;
const RCODE_REFUSED: u16 = 5;

/// Answers `query` into `out` (at least [`MAX_ANSWER`] octets), with the
/// handler's decisions: REFUSED out of our zones, SERVFAIL (with EDE 24 when
/// expired) for a zone not served, else the lookup's answer cut to the
/// client's limit by whole RRsets. Counts the query as the handler does.
pub fn answer(query: &Query<'_>, table: &ZoneTable, events: &Events, out: &mut [u8]) -> Reply {
    answer_cached(
        query,
        table,
        events,
        &mut PendingCounts::default(),
        None,
        &[],
        out,
    )
}

/// Where a worker's answer cache files one query's answer: the key from
/// [`set_cache_key`] (with the buffer's size as room) and its slot from
/// [`AnswerCache::prefetch_slot`].
pub struct Cached<'c> {
    pub cache: &'c mut AnswerCache,
    pub key: &'c cache::Key,
    pub slot: cache::Slot,
}

/// [`answer`], taking the answer from the cache when it holds it for the
/// snapshot in service, and putting it there when not. The query is counted
/// in `counts`, which the caller flushes per batch. `options` (EDNS options
/// in wire form, `query.options_len` octets) go into the answer's OPT; the
/// answer is cut to leave room for them, and cached without them.
pub fn answer_cached<'t>(
    query: &Query<'_>,
    table: &'t ZoneTable,
    events: &'t Events,
    counts: &mut PendingCounts<'t>,
    cached: Option<Cached<'_>>,
    options: &[u8],
    out: &mut [u8],
) -> Reply {
    debug_assert_eq!(options.len(), query.options_len);
    match answer_body(query, table, events, counts, cached, out) {
        Reply::Ready(len, rrl) if query.edns.is_some() && !options.is_empty() => {
            // Our OPT is last, its options (an EDE at most) at the end.
            let rdlen_at = len - opt_rdlen(out, len) - 2;
            let rdlen = u16_at(out, rdlen_at).unwrap_or(0) as usize + options.len();
            out[rdlen_at..rdlen_at + 2].copy_from_slice(&(rdlen as u16).to_be_bytes());
            out[len..len + options.len()].copy_from_slice(options);
            Reply::Ready(len + options.len(), rrl)
        }
        reply => reply,
    }
}

/// The RDLENGTH of the OPT record ending the answer `out[..len]`: 0, or
/// that of the one option the fast path writes, the Extended DNS Error of
/// an expired zone.
fn opt_rdlen(out: &[u8], len: usize) -> usize {
    let data = serve::EDE_ZONE_EXPIRED_DATA;
    let n = 4 + data.len();
    let head = [0, EDE_OPTION as u8, 0, data.len() as u8];
    if len >= n + 2 && out[len - n..len - data.len()] == head && &out[len - data.len()..len] == data
    {
        n
    } else {
        0
    }
}

fn answer_body<'t>(
    query: &Query<'_>,
    table: &'t ZoneTable,
    events: &'t Events,
    counts: &mut PendingCounts<'t>,
    cached: Option<Cached<'_>>,
    out: &mut [u8],
) -> Reply {
    let limit = query.body_limit().min(out.len());
    let Some(entry) = table.find(query.wire) else {
        let len = empty(query, RCODE_REFUSED, false, out);
        counts.record(&events.unmatched, RCODE_REFUSED);
        return Reply::Ready(len, rrl::Answer::error());
    };
    let guard = entry.load();
    let expired = entry.is_expired();
    let zone = match guard.as_ref() {
        Some(zone) if !expired => zone,
        _ => {
            let len = empty(query, RCODE_SERVFAIL, expired, out);
            counts.record(&entry.counters, RCODE_SERVFAIL);
            return Reply::Ready(len, rrl::Answer::error());
        }
    };
    let dnssec_ok = query.edns.is_some_and(|e| e.dnssec_ok);
    let qend = 12 + query.question.len();
    let mut cached = cached;
    if let Some(c) = cached.as_mut()
        && let Some(hit) = c.cache.get_at(c.slot, c.key, zone.generation())
        && qend + hit.body.len() <= limit
    {
        let f = flags(query, false, false, hit.flags);
        out[..2].copy_from_slice(&query.id.to_be_bytes());
        out[2..4].copy_from_slice(&f.to_be_bytes());
        out[4..6].copy_from_slice(&1u16.to_be_bytes());
        for (i, c) in hit.counts.iter().enumerate() {
            out[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        out[12..qend].copy_from_slice(query.question);
        out[qend..qend + hit.body.len()].copy_from_slice(hit.body);
        counts.record(&entry.counters, hit.flags & 0x0F);
        let rrl = rrl::Answer {
            class: hit.rrl.0,
            qtype: u16::from(query.qtype),
            name_hash: hit.rrl.1,
        };
        let rrl = rrl::Answer::new(rrl::Class::from_u8(rrl.class), rrl.qtype, rrl.name_hash);
        return Reply::Ready(qend + hit.body.len(), rrl);
    }
    let raw = &query.question[..query.name_len];
    let Some(ans) = zone.lookup_wire(raw, query.wire, query.qtype, query.tcp, dnssec_ok) else {
        return Reply::Slow;
    };
    match encode_answer(query, &ans, &mut out[..limit]) {
        Ok(len) => {
            counts.record(&entry.counters, u16::from(ans.rcode()));
            let rrl = rrl_account(query, zone, &ans);
            if let Some(c) = cached {
                let word = u16::from_be_bytes([out[2], out[3]]);
                let at = |i: usize| u16::from_be_bytes([out[i], out[i + 1]]);
                let counts = [at(6), at(8), at(10)];
                // AA, TC and RCODE; QR, RD and CD come from each query.
                c.cache.put_at(
                    c.slot,
                    c.key,
                    zone.generation(),
                    word & 0x060F,
                    counts,
                    &out[qend..len],
                    (rrl.class, rrl.name_hash),
                );
            }
            Reply::Ready(len, rrl)
        }
        Err(_) => Reply::Slow,
    }
}

/// [`crate::zone::Zone::warm`] for the zone `query` falls in.
pub fn warm(query: &Query<'_>, table: &ZoneTable) {
    if let Some(entry) = table.find(query.wire)
        && let Some(zone) = entry.load().as_ref()
    {
        zone.warm(query.wire);
    }
}

/// The rate-limiting account of an answer, as BIND keys it: NXDOMAIN by
/// zone, a referral by its delegation, a wildcard answer by the wildcard's
/// parent, NODATA and other answers by the query name.
fn rrl_account(query: &Query<'_>, zone: &crate::zone::Zone, ans: &Answer<'_>) -> rrl::Answer {
    use crate::zone::Outcome;
    let qtype = u16::from(query.qtype);
    match ans.outcome {
        Outcome::NxDomain | Outcome::YxDomain => {
            rrl::Answer::new(rrl::Class::NxDomain, qtype, zone.origin_hash())
        }
        Outcome::Referral => {
            let cut = match ans.authority.first() {
                Some(Item::Set(node, _)) => rrl::name_hash(node.owner_wire()),
                _ => rrl::name_hash(query.wire.bytes()),
            };
            rrl::Answer::new(rrl::Class::Referral, qtype, cut)
        }
        Outcome::NoData => rrl::Answer::new(
            rrl::Class::NoData,
            qtype,
            rrl::name_hash(query.wire.bytes()),
        ),
        Outcome::Answer => {
            let name = match ans.wildcard {
                Some(node) => rrl::name_hash(node.owner_wire()),
                None => rrl::name_hash(query.wire.bytes()),
            };
            rrl::Answer::new(rrl::Class::Positive, qtype, name)
        }
    }
}

/// Writes into `key` what the answer cache files the answer to `query`
/// under, for an answer buffer of `room` octets. TCP and UDP answers never
/// share an entry (ANY differs): a TCP limit is larger than any UDP one.
pub fn set_cache_key(key: &mut cache::Key, query: &Query<'_>, room: usize) {
    key.set(
        query.wire.bytes(),
        u16::from(query.qtype),
        query.edns.is_some_and(|e| e.dnssec_ok),
        query.edns.is_some(),
        query.body_limit().min(room),
    );
}

/// Header flags of a response: QR, opcode QUERY, the request's RD and CD.
fn flags(query: &Query<'_>, aa: bool, tc: bool, rcode: u16) -> u16 {
    0x8000 | query.flags | if aa { 0x0400 } else { 0 } | if tc { 0x0200 } else { 0 } | rcode
}

/// A response with the question only (and our OPT).
fn empty(query: &Query<'_>, rcode: u16, expired: bool, out: &mut [u8]) -> usize {
    let mut enc = Encoder::new(out, query.body_limit());
    let with_ede = expired && query.edns.is_some();
    enc.header(query.id, flags(query, false, false, rcode))
        .and_then(|_| enc.question(query.question))
        .expect("a question of at most 259 octets fits in 512");
    let mut ar = 0;
    if let Some(e) = query.edns {
        let option = with_ede.then_some((EDE_OPTION, serve::EDE_ZONE_EXPIRED_DATA));
        enc.opt(e.dnssec_ok, option).expect("room kept for OPT");
        ar = 1;
    }
    enc.counts(1, 0, 0, ar);
    enc.len()
}

/// Writes a looked-up answer, cut as the hickory path cuts it: when the
/// uncompressed size is over the limit, [`serve::fit`] decides which whole
/// RRsets go and whether TC is set, so both paths truncate alike.
/// `Err(Full)` only if our encoding came out larger than `fit` estimated,
/// which its pessimistic estimate rules out; the caller then falls back.
pub fn encode_answer(
    query: &Query<'_>,
    ans: &Answer<'_>,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let limit = out.len();
    let opt_room = if query.edns.is_some() { OPT_LEN } else { 0 };
    let room = limit.saturating_sub(opt_room);
    let sections = [&ans.answer[..], &ans.authority[..], &ans.additional[..]];
    let upper: usize = 12
        + query.question.len()
        + sections
            .iter()
            .flat_map(|s| s.iter())
            .map(|i| ans.upper_bound(i))
            .sum::<usize>();
    let (take, truncated) = if upper <= room {
        (
            [ans.answer.len(), ans.authority.len(), ans.additional.len()],
            false,
        )
    } else {
        let fit = serve::fit(ans, query.question, room);
        ([fit.answer, fit.authority, fit.additional], fit.truncated)
    };
    let mut enc = Encoder::new(out, limit);
    enc.reserve(opt_room);
    enc.header(query.id, 0)?;
    enc.question(query.question)?;
    let mut counts = [0u16; 3];
    for (s, items) in sections.into_iter().enumerate() {
        for item in &items[..take[s]] {
            // The records of an item share their owner: written once, then
            // pointed at.
            let mut owner = None;
            match *item {
                Item::Set(node, set) => {
                    for r in node.rdatas(set) {
                        enc.raw_record(node.owner_wire(), set.rtype, r.ttl, r.rdata, &mut owner)?;
                    }
                }
                Item::Sigs(node, set, lo, hi) => {
                    let range = node.rdatas_range(set, lo, hi);
                    for r in range {
                        enc.raw_record(node.owner_wire(), set.rtype, r.ttl, r.rdata, &mut owner)?;
                    }
                }
                Item::NegativeSoa(node, set, ttl) => {
                    for r in node.rdatas(set) {
                        enc.raw_record(node.owner_wire(), set.rtype, ttl, r.rdata, &mut owner)?;
                    }
                }
                _ => {
                    for r in ans.records(item).iter() {
                        enc.record(r, &mut owner)?;
                    }
                }
            }
            counts[s] += ans.count(item) as u16;
        }
    }
    enc.reserve(0);
    if let Some(e) = query.edns {
        enc.opt(e.dnssec_ok, None)?;
    }
    let rcode = u16::from(ans.rcode()) & 0x0F;
    enc.set_flags(flags(query, ans.authoritative, truncated, rcode));
    enc.counts(
        1,
        counts[0],
        counts[1],
        counts[2] + u16::from(query.edns.is_some()),
    );
    Ok(enc.len())
}

#[cfg(test)]
mod tests;
