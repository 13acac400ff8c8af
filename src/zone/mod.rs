//! The immutable zone snapshot and the lookup that answers from it.
//!
//! A snapshot is built once (from a zone file or a transfer), off the query
//! path, and never changes; replacing a zone swaps a pointer to a new one.
//! Nodes live in a hash map keyed by lowercase wire names, and empty
//! non-terminals get nodes of their own, so every step of RFC 1034 §4.3.2 is
//! one hash probe: lookups cost O(labels), whatever the zone's size.

pub mod dnssec;
pub mod key;
pub mod lookup;
pub mod nsec3;

use std::collections::HashMap;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::rr;
use key::{WireName, key_labels, key_of};

pub use lookup::{Answer, Item, Outcome};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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
/// hostile (CVE-2024-1737 made the per-name limits matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildLimits {
    pub max_records: usize,
    pub max_rrset_records: usize,
    pub max_types_per_name: usize,
}

impl Default for BuildLimits {
    fn default() -> Self {
        BuildLimits {
            max_records: 5_000_000,
            max_rrset_records: 10_000,
            max_types_per_name: 100,
        }
    }
}

/// All records of one owner and type, in the order the zone gave them.
#[derive(Debug)]
pub struct RRset {
    pub rtype: RecordType,
    pub records: Vec<Record>,
    /// Upper bound of the RRset's size in a message: owners and RDATA
    /// uncompressed. Lets the responder skip a trial encoding when an answer
    /// obviously fits.
    pub wire_len: usize,
}

impl RRset {
    fn new(rtype: RecordType) -> Self {
        RRset {
            rtype,
            // Most RRsets hold one record; a Vec's first growth would make
            // room for four of these 300-octet records.
            records: Vec::with_capacity(1),
            wire_len: 0,
        }
    }

    pub fn ttl(&self) -> u32 {
        self.records.first().map_or(0, |r| r.ttl)
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

#[derive(Debug)]
pub struct Node {
    /// The owner as the zone spells it.
    pub name: Name,
    /// RRsets sorted by type code; empty for an empty non-terminal.
    pub rrsets: Vec<RRset>,
    flags: u8,
}

impl Node {
    pub fn rrset(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets
            .binary_search_by_key(&u16::from(rtype), |s| u16::from(s.rtype))
            .ok()
            .map(|i| &self.rrsets[i])
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

    /// The RRSIGs at this node covering `rtype`: the node's RRSIG set is
    /// sorted by type covered at build, so this is a binary search.
    pub fn sigs(&self, rtype: RecordType) -> &[Record] {
        let Some(set) = self.rrset(RecordType::RRSIG) else {
            return &[];
        };
        let t = u16::from(rtype);
        let lo = set.records.partition_point(|r| dnssec::covered(r) < t);
        let hi = lo + set.records[lo..].partition_point(|r| dnssec::covered(r) == t);
        &set.records[lo..hi]
    }
}

/// An immutable, fully checked zone.
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    origin_key: Box<[u8]>,
    origin_labels: usize,
    nodes: Vec<Node>,
    index: FastMap<Box<[u8]>, u32>,
    apex: u32,
    serial: u32,
    /// The SOA with TTL = min(SOA TTL, MINIMUM), for negative answers (RFC 2308 §3).
    negative_soa: Record,
    record_count: usize,
    /// Present when the apex SOA is signed: what DNSSEC answers need.
    signed: Option<Box<dnssec::Signed>>,
    /// The earliest RRSIG expiration in the zone (RFC 4034 §3.1.5 serial
    /// time), to warn before the served copy goes bogus.
    earliest_sig_expiration: Option<u32>,
}

impl Zone {
    /// Builds a snapshot from a zone's records, checking it as a loader
    /// must: everything in the zone, exactly one SOA at the apex, NS at the
    /// apex, no CNAME beside other data, and the limits. Identical records
    /// are merged (RFC 2181 §5).
    pub fn build(
        origin: &Name,
        records: Vec<Record>,
        limits: &BuildLimits,
    ) -> Result<Zone, ZoneError> {
        let origin = origin.to_lowercase();
        let zone = || origin.to_string();
        let origin_key = key_of(&origin);
        let origin_labels = key_labels(&origin_key);
        if records.len() > limits.max_records {
            return Err(ZoneError::TooManyRecords {
                zone: zone(),
                records: records.len(),
                limit: limits.max_records,
            });
        }

        let mut nodes: Vec<Node> = Vec::new();
        let mut index: FastMap<Box<[u8]>, u32> = FastMap::default();
        let mut record_count = 0;
        // The records move into their RRsets one by one; the input's buffer
        // is given back as it empties, so a big transfer is not held twice.
        let mut records = records;
        records.reverse();
        while let Some(record) = records.pop() {
            if records.len() < records.capacity() / 2 && records.capacity() > 4096 {
                records.shrink_to_fit();
            }
            if record.dns_class != DNSClass::IN {
                return Err(ZoneError::WrongClass {
                    zone: zone(),
                    owner: record.name.to_string(),
                    rtype: record.record_type(),
                    class: record.dns_class,
                });
            }
            if !origin.zone_of(&record.name) {
                return Err(ZoneError::OutOfZone {
                    zone: zone(),
                    owner: record.name.to_string(),
                    rtype: record.record_type(),
                });
            }
            let key = key_of(&record.name);
            let id = match index.get(&key) {
                Some(&id) => id as usize,
                None => {
                    let id = nodes.len();
                    nodes.push(Node {
                        name: record.name.clone(),
                        rrsets: Vec::with_capacity(1),
                        flags: 0,
                    });
                    index.insert(key, id as u32);
                    id
                }
            };
            let node = &mut nodes[id];
            let rtype = record.record_type();
            let pos = match node.rrsets.iter().position(|s| s.rtype == rtype) {
                Some(pos) => pos,
                None => {
                    if node.rrsets.len() >= limits.max_types_per_name {
                        return Err(ZoneError::TooManyTypes {
                            zone: zone(),
                            owner: node.name.to_string(),
                            count: node.rrsets.len() + 1,
                            limit: limits.max_types_per_name,
                        });
                    }
                    node.rrsets.push(RRset::new(rtype));
                    node.rrsets.len() - 1
                }
            };
            let set = &mut node.rrsets[pos];
            if set.records.iter().any(|r| r.data == record.data) {
                continue;
            }
            if set.records.len() >= limits.max_rrset_records {
                return Err(ZoneError::RrsetTooLarge {
                    zone: zone(),
                    owner: node.name.to_string(),
                    rtype,
                    count: set.records.len() + 1,
                    limit: limits.max_rrset_records,
                });
            }
            set.wire_len += record.name.len() + 1 + 10 + rr::rdata_len(&record.data);
            set.records.push(record);
            record_count += 1;
        }

        // Empty non-terminals: every name between an owner and the apex
        // exists (RFC 4592 §2.2.2), so it gets a node without data.
        let owners: Vec<Box<[u8]>> = index.keys().cloned().collect();
        for key in owners {
            let labels = key_labels(&key);
            let mut offset = 0;
            for _ in origin_labels + 1..labels {
                offset += key[offset] as usize + 1;
                let ancestor: Box<[u8]> = key[offset..].into();
                if index.contains_key(&ancestor) {
                    break;
                }
                let name = nodes[index[&key] as usize]
                    .name
                    .trim_to(key_labels(&ancestor));
                index.insert(ancestor, nodes.len() as u32);
                nodes.push(Node {
                    name,
                    rrsets: Vec::new(),
                    flags: 0,
                });
            }
        }

        let apex = match index.get(&origin_key) {
            Some(&id) => id,
            None => return Err(ZoneError::NoSoa { zone: zone() }),
        };

        let mut earliest_sig_expiration: Option<u32> = None;
        for (id, node) in nodes.iter_mut().enumerate() {
            node.rrsets.sort_by_key(|s| u16::from(s.rtype));
            node.rrsets.shrink_to_fit();
            for set in &mut node.rrsets {
                set.records.shrink_to_fit();
            }
            let is_apex = id == apex as usize;
            if let Ok(i) = node
                .rrsets
                .binary_search_by_key(&u16::from(RecordType::RRSIG), |s| u16::from(s.rtype))
            {
                let sigs = &mut node.rrsets[i].records;
                sigs.sort_by_key(dnssec::covered);
                for exp in sigs.iter().filter_map(dnssec::expiration) {
                    earliest_sig_expiration = Some(match earliest_sig_expiration {
                        Some(e) if dnssec::serial_time_before(e, exp) => e,
                        _ => exp,
                    });
                }
            }
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
                        owner: node.name.to_string(),
                    });
                }
                if soa.records.len() != 1 {
                    return Err(ZoneError::ManySoa {
                        zone: zone(),
                        count: soa.records.len(),
                    });
                }
            }
            if let Some(cname) = node.rrset(RecordType::CNAME) {
                if cname.records.len() > 1 {
                    return Err(ZoneError::ManyCname {
                        zone: zone(),
                        owner: node.name.to_string(),
                        count: cname.records.len(),
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
                        owner: node.name.to_string(),
                        other,
                    });
                }
                node.flags |= CNAME;
            }
            if let Some(dname) = node.rrset(RecordType::DNAME) {
                if dname.records.len() > 1 {
                    return Err(ZoneError::ManyDname {
                        zone: zone(),
                        owner: node.name.to_string(),
                        count: dname.records.len(),
                    });
                }
                node.flags |= DNAME;
            }
            if !is_apex && node.rrset(RecordType::NS).is_some() {
                node.flags |= CUT;
            }
        }

        let apex_node = &nodes[apex as usize];
        let soa = apex_node
            .rrset(RecordType::SOA)
            .ok_or_else(|| ZoneError::NoSoa { zone: zone() })?
            .records[0]
            .clone();
        if apex_node.rrset(RecordType::NS).is_none() {
            return Err(ZoneError::NoApexNs { zone: zone() });
        }
        let RData::SOA(soa_data) = &soa.data else {
            return Err(ZoneError::NoSoa { zone: zone() });
        };
        let serial = soa_data.serial;
        let mut negative_soa = soa.clone();
        negative_soa.ttl = soa.ttl.min(soa_data.minimum);

        // Mark what lies below a cut or a DNAME: it is glue or occluded,
        // never answered authoritatively.
        let mut zone = Zone {
            origin,
            origin_key,
            origin_labels,
            nodes,
            index,
            apex,
            serial,
            negative_soa,
            record_count,
            signed: None,
            earliest_sig_expiration,
        };
        zone.mark_occluded();
        zone.signed = dnssec::Signed::build(&zone).map(Box::new);
        Ok(zone)
    }

    fn mark_occluded(&mut self) {
        let mut occluded = Vec::new();
        for (key, &id) in &self.index {
            let labels = key_labels(key);
            let mut offset = 0;
            // Ancestors strictly between the name and the apex.
            for _ in self.origin_labels + 1..labels {
                offset += key[offset] as usize + 1;
                if let Some(&a) = self.index.get(&key[offset..]) {
                    let anc = &self.nodes[a as usize];
                    if anc.is_cut() || anc.has_dname() {
                        occluded.push(id);
                        break;
                    }
                }
            }
            // Data below a DNAME at the apex is occluded too.
            if labels > self.origin_labels && self.nodes[self.apex as usize].has_dname() {
                occluded.push(id);
            }
        }
        for id in occluded {
            self.nodes[id as usize].flags |= OCCLUDED;
        }
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    pub fn origin_key(&self) -> &[u8] {
        &self.origin_key
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn soa(&self) -> &Record {
        &self
            .apex_node()
            .rrset(RecordType::SOA)
            .expect("checked at build")
            .records[0]
    }

    pub fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    pub fn record_count(&self) -> usize {
        self.record_count
    }

    pub fn apex_node(&self) -> &Node {
        &self.nodes[self.apex as usize]
    }

    pub fn origin_labels(&self) -> usize {
        self.origin_labels
    }

    /// The node at exactly this key, if the name exists (data or ENT).
    pub fn node(&self, key: &[u8]) -> Option<&Node> {
        self.index.get(key).map(|&id| &self.nodes[id as usize])
    }

    /// The node of a name, whatever its case.
    pub fn node_of(&self, name: &Name) -> Option<&Node> {
        self.node(WireName::from_name(name).bytes())
    }

    /// Every record, SOA first: the order of an AXFR and of the zone file on
    /// disk.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        let apex = self.apex_node();
        let soa = apex
            .rrset(RecordType::SOA)
            .into_iter()
            .flat_map(|s| s.records.iter());
        let rest = self.nodes.iter().flat_map(|n| {
            n.rrsets
                .iter()
                .filter(|s| s.rtype != RecordType::SOA)
                .flat_map(|s| s.records.iter())
        });
        soa.chain(rest)
    }
}

#[cfg(test)]
mod tests;
