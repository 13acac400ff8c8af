//! The immutable zone snapshot and the lookup that answers from it.
//!
//! A snapshot is built once (from a zone file or a transfer), off the query
//! path, and never changes; replacing a zone swaps a pointer to a new one.
//! Nodes live in a hash map keyed by lowercase wire names, and empty
//! non-terminals get nodes of their own, so every step of RFC 1034 §4.3.2 is
//! one hash probe: lookups cost O(labels), whatever the zone's size.

mod apply;
pub mod dnssec;
mod index;
pub mod key;
pub mod lookup;
pub mod nsec3;
pub mod raw;
mod table;

use std::sync::Arc;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::rr;
use index::NameIndex;
use key::{WireName, key_labels, key_of};
pub use raw::{RawRecords, RawRr};
use table::NodeTable;

#[doc(hidden)]
pub use apply::Structure;
pub use apply::{ApplyError, Step};

pub use lookup::{Answer, Item, Outcome};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneError {
    #[error("record {owner} {rtype} is outside the zone")]
    OutOfZone {
        zone: String,
        owner: String,
        rtype: RecordType,
    },
    #[error("record {owner} {rtype} has class {class}, only IN is served")]
    WrongClass {
        zone: String,
        owner: String,
        rtype: RecordType,
        class: DNSClass,
    },
    #[error("no SOA record at the apex")]
    NoSoa { zone: String },
    #[error("{count} SOA records at the apex, exactly one is allowed")]
    ManySoa { zone: String, count: usize },
    #[error("SOA record at {owner}, which is not the apex")]
    SoaNotAtApex { zone: String, owner: String },
    #[error("no NS records at the apex")]
    NoApexNs { zone: String },
    #[error("{owner} has a CNAME beside other data ({other})")]
    CnameAndOther {
        zone: String,
        owner: String,
        other: RecordType,
    },
    #[error("{owner} has {count} CNAME records, at most one is allowed")]
    ManyCname {
        zone: String,
        owner: String,
        count: usize,
    },
    #[error("{owner} has {count} DNAME records, at most one is allowed")]
    ManyDname {
        zone: String,
        owner: String,
        count: usize,
    },
    #[error("{records} records, over the limit of {limit}")]
    TooManyRecords {
        zone: String,
        records: usize,
        limit: usize,
    },
    #[error("RRset {owner} {rtype} has {count} records, over the limit of {limit}")]
    RrsetTooLarge {
        zone: String,
        owner: String,
        rtype: RecordType,
        count: usize,
        limit: usize,
    },
    /// A transfer check before the build (RFC 8976) failed.
    #[error(transparent)]
    Zonemd(#[from] crate::zonemd::ZonemdError),
    #[error("{owner} has {count} record types, over the limit of {limit}")]
    TooManyTypes {
        zone: String,
        owner: String,
        count: usize,
        limit: usize,
    },
}

/// Limits a zone must stay within; a primary that sends more is broken or
/// hostile (CVE-2024-1737 made the per-name limits matter). The transfer
/// byte limit in the same struct is the transfer client's.
pub use crate::config::Limits;

/// One RRset of a node: its type, and where its records sit in the node's
/// data (each record: TTL, RDATA length, RDATA), in the order the zone gave
/// them.
#[derive(Debug, Clone, Copy)]
pub struct RRset {
    pub rtype: RecordType,
    count: u32,
    /// The first record's TTL.
    ttl: u32,
    /// Upper bound of the RRset's size in a message: owners and RDATA
    /// uncompressed. Lets the responder skip a trial encoding when an answer
    /// obviously fits.
    wire_len: u32,
    start: u32,
    end: u32,
}

impl RRset {
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn wire_len(&self) -> usize {
        self.wire_len as usize
    }
}

/// One stored record of an RRset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rdata<'a> {
    pub ttl: u32,
    /// Names uncompressed, case as the zone gave it.
    pub rdata: &'a [u8],
}

/// The records of an RRset, in order.
#[derive(Debug, Clone)]
pub struct Rdatas<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Rdatas<'a> {
    type Item = Rdata<'a>;

    fn next(&mut self) -> Option<Rdata<'a>> {
        let d = self.data;
        let at = self.at;
        if at >= d.len() {
            return None;
        }
        let ttl = u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
        let len = u16::from_be_bytes([d[at + 4], d[at + 5]]) as usize;
        self.at = at + 6 + len;
        Some(Rdata {
            ttl,
            rdata: &d[at + 6..at + 6 + len],
        })
    }
}

/// Node flags.
const CUT: u8 = 1; // NS below the apex: a delegation point
const DNAME: u8 = 2;
const CNAME: u8 = 4;
/// At or below a cut (but not the cut itself), or below a DNAME: glue or
/// occluded data, served only as additional data.
const OCCLUDED: u8 = 8;
/// Holds only NSEC3 (and its RRSIGs): the hashed owner is not a name of the
/// zone's namespace (RFC 5155 §7.2.8), so lookups do not see it.
const NSEC3_ONLY: u8 = 16;

/// A name of the zone and everything it holds, in two allocations: the
/// RRset headers, and one buffer with the owner followed by every record.
#[derive(Debug, Default, Clone)]
pub struct Node {
    data: Box<[u8]>,
    /// Sorted by type code; empty for an empty non-terminal.
    rrsets: Box<[RRset]>,
    owner_len: u8,
    flags: u8,
    /// Names exactly one label below this one: what decides, when this
    /// name loses its records, whether it stays as an empty non-terminal.
    children: u32,
}

impl Node {
    /// The owner as the zone spells it, in uncompressed wire form.
    pub fn owner_wire(&self) -> &[u8] {
        &self.data[..self.owner_len as usize]
    }

    /// The owner as a hickory name (made on each call: slow paths only).
    pub fn name(&self) -> Name {
        raw::name_from_wire(self.owner_wire())
    }

    /// Labels of the owner, the root not counted.
    pub fn labels(&self) -> usize {
        key_labels(self.owner_wire())
    }

    pub fn rrsets(&self) -> &[RRset] {
        &self.rrsets
    }

    pub fn rrset(&self, rtype: RecordType) -> Option<&RRset> {
        let t = u16::from(rtype);
        self.rrsets
            .binary_search_by_key(&t, |s| u16::from(s.rtype))
            .ok()
            .map(|i| &self.rrsets[i])
    }

    /// The records of one of this node's RRsets.
    pub fn rdatas(&self, set: &RRset) -> Rdatas<'_> {
        Rdatas {
            data: &self.data[set.start as usize..set.end as usize],
            at: 0,
        }
    }

    /// Records `lo..hi` of one of this node's RRsets (the RRSIGs covering
    /// one type, as [`Node::sigs`] gives them).
    pub fn rdatas_range(&self, set: &RRset, lo: u32, hi: u32) -> impl Iterator<Item = Rdata<'_>> {
        self.rdatas(set).skip(lo as usize).take((hi - lo) as usize)
    }

    /// The records of `set` as hickory records, owned by `owner` (the
    /// node's own name, or a wildcard's expansion).
    pub fn records_as<'a>(
        &'a self,
        set: &'a RRset,
        owner: &'a Name,
    ) -> impl Iterator<Item = Record> + 'a {
        self.records_range_as(set, owner, 0, set.count)
    }

    /// [`Node::records_as`] for records `lo..hi` only.
    pub fn records_range_as<'a>(
        &'a self,
        set: &'a RRset,
        owner: &'a Name,
        lo: u32,
        hi: u32,
    ) -> impl Iterator<Item = Record> + 'a {
        self.rdatas_range(set, lo, hi).filter_map(move |r| {
            // Every stored record was read into this form once already.
            rr::record(owner.clone(), set.rtype, r.ttl, r.rdata).ok()
        })
    }

    /// The records of `set` as hickory records.
    pub fn records(&self, set: &RRset) -> Vec<Record> {
        let owner = self.name();
        self.records_as(set, &owner).collect()
    }

    pub fn is_cut(&self) -> bool {
        self.flags & CUT != 0
    }

    pub fn has_dname(&self) -> bool {
        self.flags & DNAME != 0
    }

    pub fn has_cname(&self) -> bool {
        self.flags & CNAME != 0
    }

    pub fn is_occluded(&self) -> bool {
        self.flags & OCCLUDED != 0
    }

    pub fn is_empty_non_terminal(&self) -> bool {
        self.rrsets.is_empty()
    }

    pub fn is_nsec3_only(&self) -> bool {
        self.flags & NSEC3_ONLY != 0
    }

    /// The RRSIGs at this node covering `rtype`: the RRSIG set and the
    /// range of its records (sorted by type covered at build).
    pub fn sigs(&self, rtype: RecordType) -> Option<(&RRset, u32, u32)> {
        let set = self.rrset(RecordType::RRSIG)?;
        let t = u16::from(rtype);
        let (mut lo, mut hi) = (None, 0);
        for (i, r) in self.rdatas(set).enumerate() {
            let c = dnssec::covered_raw(r.rdata);
            if c == t {
                lo.get_or_insert(i as u32);
                hi = i as u32 + 1;
            } else if c > t {
                break;
            }
        }
        lo.map(|lo| (set, lo, hi))
    }
}

/// An immutable, fully checked zone.
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    origin_key: Box<[u8]>,
    /// [`crate::rrl::name_hash`] of the origin: the account of every
    /// NXDOMAIN, hashed once per snapshot rather than once per answer.
    origin_hash: u64,
    origin_labels: usize,
    nodes: NodeTable,
    index: Arc<NameIndex>,
    apex: u32,
    serial: u32,
    soa: Record,
    /// The TTL of the SOA in negative answers: min(SOA TTL, MINIMUM)
    /// (RFC 2308 §3).
    negative_ttl: u32,
    record_count: usize,
    /// Present when the apex SOA is signed: what DNSSEC answers need.
    signed: Option<Box<dnssec::Signed>>,
    /// The earliest RRSIG expiration in the zone (RFC 4034 §3.1.5 serial
    /// time), to warn before the served copy goes bogus.
    earliest_sig_expiration: Option<u32>,
    /// Slots of `nodes` left empty by names an applied difference removed.
    dead_nodes: usize,
    /// Octets of node data: the size of the records in wire form.
    data_bytes: usize,
    /// Unique to this snapshot in the process: what caches of answers
    /// made from it are keyed on (a pointer could be reused).
    generation: u64,
}

static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Records above which a zone's nodes are built on two threads.
const PARALLEL_BUILD: usize = 100_000;

/// Nodes built from one range of names, with what the build learnt.
struct Nodes {
    nodes: NodeTable,
    record_count: usize,
    data_bytes: usize,
    /// A cut or DNAME below the apex: something may be occluded.
    hiding: bool,
    earliest_sig_expiration: Option<u32>,
}

impl Nodes {
    fn merge(&mut self, other: Nodes) {
        self.nodes.append(other.nodes);
        self.record_count += other.record_count;
        self.data_bytes += other.data_bytes;
        self.hiding |= other.hiding;
        self.earliest_sig_expiration =
            earlier_expiration(self.earliest_sig_expiration, other.earliest_sig_expiration);
    }
}

/// What pass 2 of [`ZoneBuilder::finish`] reads, for every name.
struct Pass2<'a> {
    raw: &'a RawRecords,
    owners: &'a [OwnerAt],
    children: &'a [u32],
    apex: u32,
    limits: &'a Limits,
    zone: &'a (dyn Fn() -> String + Sync),
}

/// Pass 2 for the names `ids`, whose notes are `order` (in name order).
fn build_nodes(
    pass: &Pass2<'_>,
    ids: std::ops::Range<usize>,
    order: &[(u32, u16, u32)],
) -> Result<Nodes, ZoneError> {
    let Pass2 {
        raw,
        owners,
        children,
        apex,
        limits,
        zone,
    } = *pass;
    let mut out = Nodes {
        nodes: NodeTable::default(),
        record_count: 0,
        data_bytes: 0,
        hiding: false,
        earliest_sig_expiration: None,
    };
    let mut next = 0;
    let mut writer = NodeWriter::default();
    let mut group: Vec<u32> = Vec::new();
    let mut mine: Vec<(u32, u16, u32)> = Vec::new();
    let mut records: Vec<(u32, &[u8])> = Vec::new();
    for id in ids {
        let owner_at = owners[id];
        let owner = &raw.at(owner_at.offset as usize).owner[owner_at.skip as usize..];
        writer.begin(owner);
        // This name's notes, by type and then as they came.
        let start = next;
        while next < order.len() && order[next].0 == id as u32 {
            next += 1;
        }
        mine.clear();
        mine.extend_from_slice(&order[start..next]);
        mine.sort_unstable();
        let mut at = 0;
        while at < mine.len() {
            let rtype = mine[at].1;
            group.clear();
            while at < mine.len() && mine[at].1 == rtype {
                group.push(mine[at].2);
                at += 1;
            }
            records.clear();
            records.extend(group.iter().map(|&o| {
                let r = raw.at(o as usize);
                (r.ttl, r.rdata)
            }));
            writer.rrset(rtype, &mut records, limits, zone)?;
        }
        let is_apex = id == apex as usize;
        let (node, stats) = writer.finish(is_apex, children[id], zone)?;
        out.record_count += stats.records;
        out.earliest_sig_expiration =
            earlier_expiration(out.earliest_sig_expiration, stats.earliest_sig_expiration);
        out.hiding |= !is_apex && (node.is_cut() || node.has_dname());
        out.data_bytes += node.data.len();
        out.nodes.push(node);
    }
    Ok(out)
}

/// The earlier of two RRSIG expiration times (RFC 4034 §3.1.5 serial time).
fn earlier_expiration(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if dnssec::serial_time_before(b, a) {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

/// What writing a node learnt about it.
#[derive(Debug, Default, Clone, Copy)]
struct NodeStats {
    records: usize,
    earliest_sig_expiration: Option<u32>,
}

/// Writes nodes one at a time, reusing its buffers: the owner, then each
/// RRset in type order. The only way a node is made, by a build and by an
/// applied difference alike.
#[derive(Default)]
struct NodeWriter {
    data: Vec<u8>,
    rrsets: Vec<RRset>,
    owner_len: usize,
    stats: NodeStats,
}

impl NodeWriter {
    fn begin(&mut self, owner: &[u8]) {
        self.data.clear();
        self.rrsets.clear();
        self.data.extend_from_slice(owner);
        self.owner_len = owner.len();
        self.stats = NodeStats::default();
    }

    fn owner_text(&self) -> String {
        raw::name_from_wire(&self.data[..self.owner_len]).to_string()
    }

    /// Adds the RRset of `rtype` (types in increasing order), `records` as
    /// (TTL, RDATA) in the zone's order; identical records are merged.
    fn rrset(
        &mut self,
        rtype: u16,
        records: &mut [(u32, &[u8])],
        limits: &Limits,
        zone: &dyn Fn() -> String,
    ) -> Result<(), ZoneError> {
        debug_assert!(
            self.rrsets
                .last()
                .is_none_or(|s| u16::from(s.rtype) < rtype)
        );
        if self.rrsets.len() >= limits.max_types_per_name {
            return Err(ZoneError::TooManyTypes {
                zone: zone(),
                owner: self.owner_text(),
                count: self.rrsets.len() + 1,
                limit: limits.max_types_per_name,
            });
        }
        if rtype == u16::from(RecordType::RRSIG) {
            // Node::sigs finds a type's signatures as one run.
            records.sort_by_key(|&(_, rdata)| dnssec::covered_raw(rdata));
        }
        let set = Zone::copy_rrset(records, rtype, self.owner_len, &mut self.data, limits);
        let set = set.map_err(|count| ZoneError::RrsetTooLarge {
            zone: zone(),
            owner: self.owner_text(),
            rtype: RecordType::from(rtype),
            count,
            limit: limits.max_rrset_records,
        })?;
        self.stats.records += set.count as usize;
        if set.rtype == RecordType::RRSIG {
            let sigs = Rdatas {
                data: &self.data[set.start as usize..set.end as usize],
                at: 0,
            };
            for exp in sigs.filter_map(|r| dnssec::expiration_raw(r.rdata)) {
                self.stats.earliest_sig_expiration =
                    earlier_expiration(self.stats.earliest_sig_expiration, Some(exp));
            }
        }
        self.rrsets.push(set);
        Ok(())
    }

    /// The node, checked (see [`Zone::check_node`]); its OCCLUDED flag is
    /// the caller's, as it depends on the names above.
    fn finish(
        &mut self,
        is_apex: bool,
        children: u32,
        zone: &dyn Fn() -> String,
    ) -> Result<(Node, NodeStats), ZoneError> {
        let mut node = Node {
            data: self.data.as_slice().into(),
            rrsets: self.rrsets.as_slice().into(),
            owner_len: self.owner_len as u8,
            flags: 0,
            children,
        };
        Zone::check_node(&mut node, is_apex, zone)?;
        Ok((node, self.stats))
    }
}

/// Where a node's owner is spelled: at `skip` octets into the owner of the
/// record at `offset` of the input (an empty non-terminal takes a suffix of
/// a descendant's owner).
#[derive(Clone, Copy)]
struct OwnerAt {
    offset: u32,
    skip: u8,
}

impl Zone {
    /// Builds a snapshot from hickory records (zone files, IXFR results,
    /// tests); see [`Zone::build_raw`].
    pub fn build(origin: &Name, records: Vec<Record>, limits: &Limits) -> Result<Zone, ZoneError> {
        if records.len() > limits.max_records {
            return Err(ZoneError::TooManyRecords {
                zone: origin.to_string(),
                records: records.len(),
                limit: limits.max_records,
            });
        }
        let raw: RawRecords = records.iter().collect();
        drop(records);
        Zone::build_raw(origin, raw, limits)
    }

    /// Builds a snapshot from records in wire form; see [`ZoneBuilder`].
    pub fn build_raw(origin: &Name, raw: RawRecords, limits: &Limits) -> Result<Zone, ZoneError> {
        ZoneBuilder::from_raw(origin, raw, limits)?.finish()
    }
}

/// A zone being built, checked as a loader must: everything in the zone,
/// exactly one SOA at the apex, NS at the apex, no CNAME beside other data,
/// and the limits. Identical records are merged (RFC 2181 §5).
///
/// Two passes, NSD-style. The first runs as records are added (during a
/// transfer, while the primary is still sending): it finds every name and
/// notes each record's (name, type, place). [`ZoneBuilder::finish`] sorts
/// those notes and copies each name's records into one buffer. Nothing per
/// record outlives the build.
#[derive(Clone)]
pub struct ZoneBuilder {
    origin: Name,
    origin_key: Box<[u8]>,
    origin_labels: usize,
    limits: Limits,
    raw: RawRecords,
    index: NameIndex,
    owners: Vec<OwnerAt>,
    order: Vec<(u32, u16, u32)>,
    key: WireName,
    /// The previous record's node and place: a transfer sends a name's
    /// records together, so most records skip the hash lookup.
    last: Option<(u32, u32)>,
    /// Names more than one label below the apex: only they can have empty
    /// non-terminals above them or be hidden below a cut, so only they are
    /// visited again for that.
    deep: Vec<u32>,
}

impl std::fmt::Debug for ZoneBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneBuilder")
            .field("origin", &self.origin)
            .field("records", &self.raw.len())
            .field("names", &self.owners.len())
            .finish()
    }
}

impl PartialEq for ZoneBuilder {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin && self.raw == other.raw
    }
}

impl Eq for ZoneBuilder {}

impl ZoneBuilder {
    pub fn new(origin: &Name, limits: &Limits) -> ZoneBuilder {
        let origin = origin.to_lowercase();
        let origin_key = key_of(&origin);
        let origin_labels = key_labels(&origin_key);
        ZoneBuilder {
            origin,
            origin_key,
            origin_labels,
            limits: *limits,
            raw: RawRecords::new(),
            index: NameIndex::default(),
            owners: Vec::new(),
            order: Vec::new(),
            key: WireName::new(),
            last: None,
            deep: Vec::new(),
        }
    }

    /// A builder over records already gathered.
    pub fn from_raw(
        origin: &Name,
        raw: RawRecords,
        limits: &Limits,
    ) -> Result<ZoneBuilder, ZoneError> {
        let mut b = ZoneBuilder::new(origin, limits);
        if raw.len() > limits.max_records {
            return Err(b.too_many(raw.len()));
        }
        b.index.reserve(raw.len() / 2);
        b.order.reserve_exact(raw.len());
        let offsets: Vec<u32> = {
            let mut it = raw.iter();
            let mut v = Vec::new();
            while it.offset() < raw.size() {
                v.push(it.offset() as u32);
                it.next();
            }
            v
        };
        if raw.size() > u32::MAX as usize {
            return Err(b.too_many(raw.len()));
        }
        b.raw = raw;
        for offset in offsets {
            b.note(offset)?;
        }
        Ok(b)
    }

    fn too_many(&self, records: usize) -> ZoneError {
        ZoneError::TooManyRecords {
            zone: self.origin.to_string(),
            records,
            limit: self.limits.max_records,
        }
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The records added so far, in order.
    pub fn raw(&self) -> &RawRecords {
        &self.raw
    }

    /// Adds a record in wire form (owner and names in RDATA uncompressed).
    pub fn push(
        &mut self,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), ZoneError> {
        if self.raw.len() >= self.limits.max_records {
            return Err(self.too_many(self.raw.len() + 1));
        }
        let offset = self.raw.size();
        if offset + 265 + rdata.len() > u32::MAX as usize {
            return Err(self.too_many(self.raw.len() + 1));
        }
        self.raw.push(owner, rtype, class, ttl, rdata);
        self.note(offset as u32)
    }

    pub fn push_record(&mut self, r: &Record) -> Result<(), ZoneError> {
        raw::with_wire(r, |owner, rtype, class, ttl, rdata| {
            self.push(owner, rtype, class, ttl, rdata)
        })
    }

    /// Pass 1 for the record at `offset` of the gathered records.
    fn note(&mut self, offset: u32) -> Result<(), ZoneError> {
        let ZoneBuilder {
            origin,
            origin_key,
            origin_labels,
            raw,
            index,
            owners,
            order,
            key,
            last,
            deep,
            ..
        } = self;
        let r = raw.at(offset as usize);
        let zone = || origin.to_string();
        let text = |owner: &[u8]| raw::name_from_wire(owner).to_string();
        if r.class != u16::from(DNSClass::IN) {
            return Err(ZoneError::WrongClass {
                zone: zone(),
                owner: text(r.owner),
                rtype: r.record_type(),
                class: DNSClass::from(r.class),
            });
        }
        let id = match *last {
            Some((id, at)) if raw.at(at as usize).owner == r.owner => id,
            _ => {
                let in_zone = key.read_wire(r.owner).is_some()
                    && key.labels() >= *origin_labels
                    && key.suffix(*origin_labels) == &origin_key[..];
                if !in_zone {
                    return Err(ZoneError::OutOfZone {
                        zone: zone(),
                        owner: text(r.owner),
                        rtype: r.record_type(),
                    });
                }
                let id = match index.get(key.bytes()) {
                    Some(id) => id,
                    None => {
                        let id = owners.len() as u32;
                        owners.push(OwnerAt { offset, skip: 0 });
                        index.insert(key.bytes(), id);
                        if key.labels() > *origin_labels + 1 {
                            deep.push(id);
                        }
                        id
                    }
                };
                *last = Some((id, offset));
                id
            }
        };
        order.push((id, r.rtype, offset));
        Ok(())
    }

    /// Pass 2 and the checks: the snapshot.
    pub fn finish(self) -> Result<Zone, ZoneError> {
        let ZoneBuilder {
            origin,
            origin_key,
            origin_labels,
            limits,
            raw,
            mut index,
            mut owners,
            mut order,
            mut key,
            mut deep,
            ..
        } = self;
        let limits = &limits;
        let zone = || origin.to_string();

        // Empty non-terminals: every name between an owner and the apex
        // exists (RFC 4592 §2.2.2), so it gets a node without data. Each
        // step up looks at the parent of the name below: counting there
        // gives every node's number of children without another probe.
        // (Names pushed to `deep` here are not walked again: the walk that
        // made them made their ancestors and counted them.)
        let mut children = vec![0u32; owners.len()];
        for i in 0..deep.len() {
            let o = owners[deep[i] as usize];
            let owner = &raw.at(o.offset as usize).owner[o.skip as usize..];
            let Some(len) = key.read_wire(owner) else {
                continue;
            };
            let k = &key.bytes()[..len];
            let mut at = 0;
            for depth in (origin_labels + 1..key.labels()).rev() {
                at += k[at] as usize + 1;
                let ancestor = &k[at..];
                if let Some(id) = index.get(ancestor) {
                    children[id as usize] += 1;
                    break;
                }
                let id = owners.len() as u32;
                index.insert(ancestor, id);
                owners.push(OwnerAt {
                    offset: o.offset,
                    skip: at as u8,
                });
                children.push(1);
                if depth > origin_labels + 1 {
                    deep.push(id);
                }
            }
        }
        index.shrink_to_fit();
        let apex = match index.get(&origin_key) {
            Some(id) => id,
            None => return Err(ZoneError::NoSoa { zone: zone() }),
        };
        // Every name one label below the apex is a child of the apex; the
        // deeper ones were counted above.
        children[apex as usize] += (owners.len() - deep.len() - 1) as u32;

        // Pass 2: each name's records, grouped by type, into its buffer.
        // Names are independent here: a big zone is done in two halves on
        // two threads.
        // A transfer sends each name's records together, so the notes are
        // usually in name order already; each name's are sorted by type in
        // pass 2.
        if !order.is_sorted_by_key(|o| o.0) {
            order.sort_by_key(|o| o.0);
        }
        let ids = owners.len();
        // The halves split on a chunk boundary so that joining them moves
        // no node.
        let cut = if order.len() > PARALLEL_BUILD {
            (ids / 2).next_multiple_of(table::CHUNK).min(ids)
        } else {
            ids
        };
        let split = order.partition_point(|o| (o.0 as usize) < cut);
        let pass = Pass2 {
            raw: &raw,
            owners: &owners,
            children: &children,
            apex,
            limits,
            zone: &zone,
        };
        let part =
            |ids: std::ops::Range<usize>, order: &[(u32, u16, u32)]| build_nodes(&pass, ids, order);
        let (first, second) = std::thread::scope(|scope| {
            let second = (cut < ids).then(|| scope.spawn(|| part(cut..ids, &order[split..])));
            let first = part(0..cut, &order[..split]);
            let second = second.map(|h| h.join().expect("zone build thread panicked"));
            (first, second)
        });
        let mut built = first?;
        if let Some(second) = second {
            built.merge(second?);
        }
        let Nodes {
            mut nodes,
            record_count,
            data_bytes,
            hiding,
            earliest_sig_expiration,
        } = built;
        nodes.shrink_to_fit();
        drop(order);
        drop(owners);

        let apex_node = nodes.get(apex);
        let soa = apex_node
            .rrset(RecordType::SOA)
            .and_then(|s| apex_node.records(s).into_iter().next())
            .ok_or_else(|| ZoneError::NoSoa { zone: zone() })?;
        if apex_node.rrset(RecordType::NS).is_none() {
            return Err(ZoneError::NoApexNs { zone: zone() });
        }
        let RData::SOA(soa_data) = &soa.data else {
            return Err(ZoneError::NoSoa { zone: zone() });
        };
        let serial = soa_data.serial;
        let negative_ttl = soa.ttl.min(soa_data.minimum);
        drop(raw);

        let mut zone = Zone {
            origin,
            origin_hash: crate::rrl::name_hash(&origin_key),
            origin_key,
            origin_labels,
            nodes,
            index: Arc::new(index),
            apex,
            serial,
            soa,
            negative_ttl,
            record_count,
            signed: None,
            earliest_sig_expiration,
            dead_nodes: 0,
            data_bytes,
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        // Mark what lies below a cut or a DNAME: it is glue or occluded,
        // never answered authoritatively.
        zone.mark_occluded(&deep, hiding);
        zone.signed = dnssec::Signed::build(&zone).map(Box::new);
        Ok(zone)
    }
}

impl Zone {
    /// Appends the distinct records of `records` (TTL, RDATA) to `data` as
    /// one RRset; `Err(count)` when there are more than the limit allows.
    fn copy_rrset(
        records: &[(u32, &[u8])],
        rtype: u16,
        owner_len: usize,
        data: &mut Vec<u8>,
        limits: &Limits,
    ) -> Result<RRset, usize> {
        let start = data.len();
        let mut count = 0usize;
        let mut wire_len = 0usize;
        let mut ttl = None;
        // Small sets compare pairwise; big ones by hash, so a 10,000-record
        // RRset is not 50 million comparisons.
        let mut seen: Option<std::collections::HashSet<std::borrow::Cow<'_, [u8]>>> =
            (records.len() > 16).then(Default::default);
        for (i, &(rttl, rdata)) in records.iter().enumerate() {
            let dup = match &mut seen {
                Some(seen) => !seen.insert(crate::canonical::rdata_key(rtype, rdata)),
                None => records[..i]
                    .iter()
                    .any(|&(_, p)| crate::canonical::same_rdata(rtype, p, rdata)),
            };
            if dup {
                continue;
            }
            if count >= limits.max_rrset_records {
                return Err(count + 1);
            }
            count += 1;
            ttl.get_or_insert(rttl);
            wire_len += owner_len + 10 + rdata.len();
            data.extend_from_slice(&rttl.to_be_bytes());
            data.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            data.extend_from_slice(rdata);
        }
        Ok(RRset {
            rtype: RecordType::from(rtype),
            count: count as u32,
            ttl: ttl.unwrap_or(0),
            wire_len: wire_len.min(u32::MAX as usize) as u32,
            start: start as u32,
            end: data.len() as u32,
        })
    }

    /// The per-name rules, and the node's flags.
    fn check_node(
        node: &mut Node,
        is_apex: bool,
        zone: &dyn Fn() -> String,
    ) -> Result<(), ZoneError> {
        if node.rrset(RecordType::NSEC3).is_some()
            && node
                .rrsets
                .iter()
                .all(|s| matches!(s.rtype, RecordType::NSEC3 | RecordType::RRSIG))
        {
            node.flags |= NSEC3_ONLY;
        }
        if let Some(soa) = node.rrset(RecordType::SOA) {
            if !is_apex {
                return Err(ZoneError::SoaNotAtApex {
                    zone: zone(),
                    owner: node_text(node.owner_wire()),
                });
            }
            if soa.count != 1 {
                return Err(ZoneError::ManySoa {
                    zone: zone(),
                    count: soa.len(),
                });
            }
        }
        if let Some(cname) = node.rrset(RecordType::CNAME) {
            if cname.count > 1 {
                return Err(ZoneError::ManyCname {
                    zone: zone(),
                    owner: node_text(node.owner_wire()),
                    count: cname.len(),
                });
            }
            // RFC 2181 §10.1, with the DNSSEC types RFC 4035 §2.5 allows.
            if let Some(other) = node.rrsets.iter().map(|s| s.rtype).find(|t| {
                !matches!(
                    t,
                    RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC | RecordType::KEY
                )
            }) {
                return Err(ZoneError::CnameAndOther {
                    zone: zone(),
                    owner: node_text(node.owner_wire()),
                    other,
                });
            }
            node.flags |= CNAME;
        }
        if let Some(dname) = node.rrset(RecordType::DNAME) {
            if dname.count > 1 {
                return Err(ZoneError::ManyDname {
                    zone: zone(),
                    owner: node_text(node.owner_wire()),
                    count: dname.len(),
                });
            }
            node.flags |= DNAME;
        }
        if !is_apex && node.rrset(RecordType::NS).is_some() {
            node.flags |= CUT;
        }
        Ok(())
    }

    /// Flags what lies below a cut or a DNAME; `deep` lists the names more
    /// than one label below the apex, the only ones a cut below the apex can
    /// hide; `hiding` says whether there is any such cut or DNAME.
    fn mark_occluded(&mut self, deep: &[u32], hiding: bool) {
        if self.nodes.get(self.apex).has_dname() {
            // Everything below a DNAME at the apex is occluded.
            let apex = self.apex as usize;
            for (id, node) in self.nodes.iter_mut().enumerate() {
                if id != apex {
                    node.flags |= OCCLUDED;
                }
            }
            return;
        }
        if !hiding {
            return;
        }
        let mut occluded = Vec::new();
        let mut key = WireName::new();
        for &id in deep {
            if key.read_wire(self.nodes.get(id).owner_wire()).is_none() {
                continue;
            }
            // Ancestors strictly between the name and the apex.
            for depth in self.origin_labels + 1..key.labels() {
                if let Some(a) = self.index.get(key.suffix(depth)) {
                    let anc = self.nodes.get(a);
                    if anc.is_cut() || anc.has_dname() {
                        occluded.push(id);
                        break;
                    }
                }
            }
        }
        for id in occluded {
            self.nodes.get_mut(id).flags |= OCCLUDED;
        }
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    pub fn origin_key(&self) -> &[u8] {
        &self.origin_key
    }

    pub fn origin_hash(&self) -> u64 {
        self.origin_hash
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn soa(&self) -> &Record {
        &self.soa
    }

    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// Octets the records take in wire form, owners counted once a name.
    pub fn wire_size(&self) -> usize {
        self.data_bytes
    }

    pub fn apex_node(&self) -> &Node {
        self.nodes.get(self.apex)
    }

    pub fn origin_labels(&self) -> usize {
        self.origin_labels
    }

    /// The node at exactly this key, if the name exists (data or ENT).
    pub fn node(&self, key: &[u8]) -> Option<&Node> {
        self.index.get(key).map(|id| self.nodes.get(id))
    }

    /// Looks the query name up ahead of its answer and asks for its
    /// node's records: a worker does this for a whole batch first, so
    /// that the cache misses of a zone far larger than the caches (the
    /// index, the node, its records) overlap across the batch instead of
    /// each being waited for in turn.
    pub fn warm(&self, wire: &WireName) {
        if let Some(node) = self.node(wire.suffix(wire.labels())) {
            crate::prefetch(node.rrsets.as_ptr().cast());
            crate::prefetch(node.data.as_ptr());
        }
    }

    /// The node of a name, whatever its case.
    pub fn node_of(&self, name: &Name) -> Option<&Node> {
        self.node(WireName::from_name(name).bytes())
    }

    /// Every record in wire form, SOA first: the order of an AXFR and of the
    /// zone file on disk.
    pub fn raw_records(&self) -> impl Iterator<Item = RawRr<'_>> {
        let apex = self.apex_node();
        let soa = apex
            .rrset(RecordType::SOA)
            .into_iter()
            .flat_map(move |s| raw_of(apex, s));
        let rest = self.nodes.iter().flat_map(|n| {
            n.rrsets
                .iter()
                .filter(|s| s.rtype != RecordType::SOA)
                .flat_map(move |s| raw_of(n, s))
        });
        soa.chain(rest)
    }

    /// The earliest RRSIG expiration, read from every signature.
    fn scan_earliest_sig_expiration(&self) -> Option<u32> {
        let mut earliest = None;
        for node in self.nodes.iter() {
            if let Some(set) = node.rrset(RecordType::RRSIG) {
                for r in node.rdatas(set) {
                    earliest = earlier_expiration(earliest, dnssec::expiration_raw(r.rdata));
                }
            }
        }
        earliest
    }

    /// Every record as a hickory record, SOA first (made one at a time).
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.raw_records().filter_map(|r| r.to_record().ok())
    }
}

fn raw_of<'a>(node: &'a Node, set: &'a RRset) -> impl Iterator<Item = RawRr<'a>> + 'a {
    let owner = node.owner_wire();
    let rtype = u16::from(set.rtype);
    node.rdatas(set).map(move |r| RawRr {
        owner,
        rtype,
        class: u16::from(DNSClass::IN),
        ttl: r.ttl,
        rdata: r.rdata,
    })
}

fn node_text(owner: &[u8]) -> String {
    raw::name_from_wire(owner).to_string()
}

#[cfg(test)]
mod tests;
