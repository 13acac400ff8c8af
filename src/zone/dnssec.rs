//! Serving a pre-signed zone (RFC 4035 §3.1, RFC 5155 §7.2, RFC 6840):
//! RRSIGs beside the RRsets they cover, and the NSEC or NSEC3 records that
//! prove what does not exist.
//!
//! Outpost never signs: every record handed out is one the primary signed,
//! only wildcard expansions get the query name as owner (RFC 4035 §3.1.3.3).
//! Proof records are found through indexes built with the snapshot, a
//! canonical-order list of NSEC owners or a sorted list of NSEC3 hashes,
//! each searched by bisection: never a scan on the query path.

use std::cmp::Ordering;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use smallvec::SmallVec;

use super::key::{MAX_NAME, WireName, key_labels, wildcard_key};
use super::lookup::{Answer, Item};
use super::nsec3::{self, HASH_LEN, Params};
use super::{Node, Zone};

/// The type an RRSIG covers, from its RDATA (RFC 4034 §3.1); 0 for a record
/// that is not a well-formed RRSIG, which sorts it out of every type's way.
pub fn covered(r: &Record) -> u16 {
    match &r.data {
        RData::Unknown { rdata, .. } if rdata.anything.len() >= 2 => {
            u16::from_be_bytes([rdata.anything[0], rdata.anything[1]])
        }
        _ => 0,
    }
}

/// The type an RRSIG's RDATA covers.
pub fn covered_raw(rdata: &[u8]) -> u16 {
    match rdata {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// The signature expiration field of an RRSIG's RDATA.
pub fn expiration_raw(rdata: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(rdata.get(8..12)?.try_into().ok()?))
}

/// The signature expiration field of an RRSIG.
pub fn expiration(r: &Record) -> Option<u32> {
    match &r.data {
        RData::Unknown { code, rdata }
            if *code == RecordType::RRSIG && rdata.anything.len() >= 12 =>
        {
            Some(u32::from_be_bytes(rdata.anything[8..12].try_into().ok()?))
        }
        _ => None,
    }
}

/// `a` is earlier than `b` in RFC 1982 serial arithmetic, as RFC 4034
/// §3.1.5 has signature times compared.
pub fn serial_time_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// A serial-arithmetic time as Unix seconds: the value within 2^31 seconds
/// of `now` (RFC 4034 §3.1.5).
pub fn unwrap_serial_time(t: u32, now: u64) -> u64 {
    let delta = t.wrapping_sub(now as u32) as i32;
    (now as i64 + delta as i64).max(0) as u64
}

/// Offsets of the labels of a lowercase wire name, leftmost first.
fn label_offsets(key: &[u8]) -> SmallVec<[u8; 32]> {
    let mut v = SmallVec::new();
    let mut i = 0;
    while i < key.len() && key[i] != 0 {
        v.push(i as u8);
        i += key[i] as usize + 1;
    }
    v
}

/// RFC 4034 §6.1 canonical order of two lowercase wire names: labels
/// compared from the rightmost, each as an unsigned octet string.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let la = label_offsets(a);
    let lb = label_offsets(b);
    for (&x, &y) in la.iter().rev().zip(lb.iter().rev()) {
        let (x, y) = (x as usize, y as usize);
        let xa = &a[x + 1..x + 1 + a[x] as usize];
        let yb = &b[y + 1..y + 1 + b[y] as usize];
        match xa.cmp(yb) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    la.len().cmp(&lb.len())
}

/// The denial-of-existence chain of a signed zone.
#[derive(Debug)]
enum Denial {
    /// Neither NSEC nor a usable NSEC3 chain: only signatures are served.
    None,
    /// NSEC owners (keys) with their node ids, in canonical order.
    Nsec(Vec<(Box<[u8]>, u32)>),
    Nsec3 {
        params: Params,
        /// Owner hashes with their node ids, sorted.
        chain: Vec<([u8; HASH_LEN], u32)>,
    },
}

/// What answering with DNSSEC records needs beyond the plain snapshot.
#[derive(Debug)]
pub struct Signed {
    /// Shared by the next snapshot when a change leaves the chain alone.
    denial: Arc<Denial>,
    /// The apex SOA's RRSIGs with the TTL of the negative-answer SOA.
    negative_soa_sigs: Vec<Record>,
}

impl Signed {
    /// `None` for an unsigned zone (no RRSIG over the apex SOA).
    pub(super) fn build(zone: &Zone) -> Option<Signed> {
        Signed::rebuild(zone, None)
    }

    /// [`Signed::build`] for a snapshot made from another by a change that
    /// left every NSEC and NSEC3 record where it was: `previous` (that
    /// snapshot's) lends its chain, which names the same node numbers.
    pub(super) fn rebuild(zone: &Zone, previous: Option<&Signed>) -> Option<Signed> {
        let apex = zone.apex_node();
        let (set, lo, hi) = apex.sigs(RecordType::SOA)?;
        let owner = apex.name();
        let negative_soa_sigs = apex
            .records_range_as(set, &owner, lo, hi)
            .map(|mut r| {
                r.ttl = zone.negative_ttl;
                r
            })
            .collect();
        let denial = match previous {
            Some(p) => p.denial.clone(),
            None => Arc::new(denial_chain(zone)),
        };
        Some(Signed {
            denial,
            negative_soa_sigs,
        })
    }
}

impl Signed {
    /// The chain's owners (NSEC keys, or NSEC3 hashes), in order, with the
    /// owners of the nodes they name: what two snapshots must agree on.
    pub(super) fn chain_view(&self, zone: &Zone) -> Vec<(Vec<u8>, Vec<u8>)> {
        match &*self.denial {
            Denial::None => Vec::new(),
            Denial::Nsec(owners) => owners
                .iter()
                .map(|(k, id)| {
                    (
                        k.to_vec(),
                        zone.nodes.get(*id).owner_wire().to_ascii_lowercase(),
                    )
                })
                .collect(),
            Denial::Nsec3 { chain, .. } => chain
                .iter()
                .map(|(h, id)| {
                    (
                        h.to_vec(),
                        zone.nodes.get(*id).owner_wire().to_ascii_lowercase(),
                    )
                })
                .collect(),
        }
    }
}

fn denial_chain(zone: &Zone) -> Denial {
    if zone.apex_node().rrset(RecordType::NSEC).is_some() {
        let mut owners: Vec<(Box<[u8]>, u32)> = zone
            .index
            .iter()
            .filter(|&(_, id)| zone.nodes.get(id).rrset(RecordType::NSEC).is_some())
            .map(|(k, id)| (Box::from(k), id))
            .collect();
        owners.sort_by(|a, b| canonical_cmp(&a.0, &b.0));
        Denial::Nsec(owners)
    } else {
        nsec3_chain(zone)
    }
}

/// The NSEC3 chain named by the apex NSEC3PARAM (RFC 5155 §7.2: the one
/// used for answers), or, when there is none, by the NSEC3 record with the
/// lowest owner hash. Of several NSEC3PARAMs, the lowest RDATA names it.
/// Neither choice depends on the order the records came in: the name
/// index iterates in an order of its own, different in every snapshot, and
/// a snapshot made by applying differences keeps its predecessor's chain,
/// which must be the one a build of the same records finds.
fn nsec3_chain(zone: &Zone) -> Denial {
    let sha1 =
        |rdata: &[u8]| Params::from_rdata(rdata).filter(|(p, _, _)| p.algorithm == nsec3::SHA1);
    let apex = zone.apex_node();
    let from_param = apex.rrset(RecordType::NSEC3PARAM).and_then(|s| {
        apex.rdatas(s)
            .filter(|r| sha1(r.rdata).is_some_and(|(_, flags, _)| flags == 0))
            .min_by(|a, b| a.rdata.cmp(b.rdata))
            .and_then(|r| sha1(r.rdata))
            .map(|(p, _, _)| p)
    });
    let owner_labels = zone.origin_labels + 1;
    // Every SHA-1 NSEC3 record at a hashed owner: (hash, node, parameters).
    let mut members = Vec::new();
    for (key, id) in zone.index.iter() {
        let node = zone.nodes.get(id);
        let Some(set) = node.rrset(RecordType::NSEC3) else {
            continue;
        };
        if key_labels(key) != owner_labels {
            continue;
        }
        let label = &key[1..1 + key[0] as usize];
        let Some(hash) = nsec3::decode_owner_label(label) else {
            continue;
        };
        for r in node.rdatas(set) {
            if let Some((p, _, _)) = sha1(r.rdata) {
                members.push((hash, id, p));
            }
        }
    }
    let params = from_param.or_else(|| {
        members
            .iter()
            .min_by(|a, b| (a.0, a.2.iterations, &a.2.salt).cmp(&(b.0, b.2.iterations, &b.2.salt)))
            .map(|m| m.2.clone())
    });
    let Some(params) = params else {
        return Denial::None;
    };
    let mut chain: Vec<([u8; HASH_LEN], u32)> = members
        .into_iter()
        .filter(|m| m.2 == params)
        .map(|(hash, id, _)| (hash, id))
        .collect();
    if chain.is_empty() {
        return Denial::None;
    }
    chain.sort_unstable();
    chain.dedup();
    Denial::Nsec3 { params, chain }
}

impl Zone {
    /// Whether the zone is signed (its apex SOA has an RRSIG).
    pub fn is_signed(&self) -> bool {
        self.signed.is_some()
    }

    /// The earliest expiration of any RRSIG in the zone as Unix seconds,
    /// read relative to `now` (Unix seconds); `None` for an unsigned zone.
    pub fn earliest_signature_expiration(&self, now: u64) -> Option<u64> {
        self.earliest_sig_expiration
            .map(|t| unwrap_serial_time(t, now))
    }

    pub(super) fn signed_ref(&self) -> Option<&Signed> {
        self.signed.as_deref()
    }

    /// The RRSIGs of `node` covering `rtype` as an answer item, owners
    /// replaced by the query name for a wildcard expansion (the labels field
    /// stays, which is how validators recognise the expansion).
    pub(super) fn sigs_item<'z>(
        &'z self,
        node: &'z Node,
        rtype: RecordType,
        synth_owner: Option<&Name>,
        ans: &mut Answer<'z>,
    ) -> Option<Item<'z>> {
        let (set, lo, hi) = node.sigs(rtype)?;
        Some(match synth_owner {
            None => Item::Sigs(node, set, lo, hi),
            Some(owner) => ans.push_synth(node.records_range_as(set, owner, lo, hi)),
        })
    }

    /// The negative-answer SOA's signatures, after the SOA itself.
    pub(super) fn push_soa_sigs<'z>(&'z self, ans: &mut Answer<'z>) {
        if let Some(s) = self.signed_ref()
            && !s.negative_soa_sigs.is_empty()
        {
            ans.authority.push(Item::Slice(&s.negative_soa_sigs));
        }
    }

    /// Adds `node`'s `rtype` set and its RRSIGs to the authority section,
    /// once.
    fn push_proof<'z>(&'z self, node: &'z Node, rtype: RecordType, ans: &mut Answer<'z>) {
        let Some(set) = node.rrset(rtype) else {
            return;
        };
        let dup = ans
            .authority
            .iter()
            .any(|i| matches!(i, Item::Set(_, s) if std::ptr::eq(*s, set)));
        if dup {
            return;
        }
        ans.authority.push(Item::Set(node, set));
        if let Some((sigs, lo, hi)) = node.sigs(rtype) {
            ans.authority.push(Item::Sigs(node, sigs, lo, hi));
        }
    }

    /// The NSEC owner at or before `key` in canonical order: the NSEC that
    /// matches the name, or the one whose span covers it (the last wraps).
    fn nsec_at_or_before<'z>(&'z self, owners: &[(Box<[u8]>, u32)], key: &[u8]) -> &'z Node {
        let i = owners.partition_point(|(k, _)| canonical_cmp(k, key) != Ordering::Greater);
        let id = if i == 0 {
            owners[owners.len() - 1].1
        } else {
            owners[i - 1].1
        };
        self.nodes.get(id)
    }

    fn nsec3_match<'z>(
        &'z self,
        params: &Params,
        chain: &[([u8; HASH_LEN], u32)],
        key: &[u8],
    ) -> Option<&'z Node> {
        let h = params.hash(key);
        chain
            .binary_search_by(|(c, _)| c.cmp(&h))
            .ok()
            .map(|i| self.nodes.get(chain[i].1))
    }

    /// The NSEC3 whose span covers the hash of `key` (RFC 5155 §7.2.1).
    fn nsec3_cover<'z>(
        &'z self,
        params: &Params,
        chain: &[([u8; HASH_LEN], u32)],
        key: &[u8],
    ) -> &'z Node {
        let h = params.hash(key);
        let i = chain.partition_point(|(c, _)| *c <= h);
        let id = if i == 0 {
            chain[chain.len() - 1].1
        } else {
            chain[i - 1].1
        };
        self.nodes.get(id)
    }

    /// Closest provable encloser proof (RFC 5155 §7.2.1) for `wire`, starting
    /// from the closest encloser at `ce_labels`: the NSEC3 matching the
    /// deepest ancestor that has one, and the NSEC3 covering the next closer
    /// name. Returns the labels of the provable encloser.
    fn nsec3_closest_encloser<'z>(
        &'z self,
        params: &Params,
        chain: &[([u8; HASH_LEN], u32)],
        wire: &WireName,
        ce_labels: usize,
        ans: &mut Answer<'z>,
    ) -> usize {
        let mut labels = ce_labels;
        loop {
            if let Some(node) = self.nsec3_match(params, chain, wire.suffix(labels)) {
                self.push_proof(node, RecordType::NSEC3, ans);
                break;
            }
            if labels <= self.origin_labels {
                break;
            }
            labels -= 1;
        }
        if labels < wire.labels() {
            let cover = self.nsec3_cover(params, chain, wire.suffix(labels + 1));
            self.push_proof(cover, RecordType::NSEC3, ans);
        }
        labels
    }

    /// NXDOMAIN (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2): the name and the
    /// wildcard at its closest encloser both do not exist.
    pub(super) fn deny_name<'z>(&'z self, wire: &WireName, ce_labels: usize, ans: &mut Answer<'z>) {
        let Some(signed) = self.signed_ref() else {
            return;
        };
        let mut buf = [0u8; MAX_NAME];
        match &*signed.denial {
            Denial::None => {}
            Denial::Nsec(owners) => {
                let cover = self.nsec_at_or_before(owners, wire.bytes());
                self.push_proof(cover, RecordType::NSEC, ans);
                if let Some(len) = wildcard_key(wire.suffix(ce_labels), &mut buf) {
                    let wild = self.nsec_at_or_before(owners, &buf[..len]);
                    self.push_proof(wild, RecordType::NSEC, ans);
                }
            }
            Denial::Nsec3 { params, chain } => {
                let ce = self.nsec3_closest_encloser(params, chain, wire, ce_labels, ans);
                if let Some(len) = wildcard_key(wire.suffix(ce), &mut buf) {
                    let wild = self.nsec3_cover(params, chain, &buf[..len]);
                    self.push_proof(wild, RecordType::NSEC3, ans);
                }
            }
        }
    }

    /// NODATA (RFC 4035 §3.1.3.1, RFC 5155 §7.2.3–7.2.5): the NSEC or NSEC3
    /// at the name shows the type is absent. For a wildcard, `wildcard_ce`
    /// gives the labels of its closest encloser, and the proof also shows
    /// no closer name exists.
    pub(super) fn deny_type<'z>(
        &'z self,
        node: &'z Node,
        wire: &WireName,
        wildcard_ce: Option<usize>,
        ans: &mut Answer<'z>,
    ) {
        let Some(signed) = self.signed_ref() else {
            return;
        };
        match &*signed.denial {
            Denial::None => {}
            Denial::Nsec(owners) => {
                if wildcard_ce.is_some() || node.rrset(RecordType::NSEC).is_none() {
                    // No closer match for a wildcard; for an empty
                    // non-terminal, the NSEC whose span holds the name.
                    let cover = self.nsec_at_or_before(owners, wire.bytes());
                    self.push_proof(cover, RecordType::NSEC, ans);
                }
                self.push_proof(node, RecordType::NSEC, ans);
            }
            Denial::Nsec3 { params, chain } => match wildcard_ce {
                Some(ce) => {
                    self.nsec3_closest_encloser(params, chain, wire, ce, ans);
                    let mut buf = [0u8; MAX_NAME];
                    if let Some(len) = wildcard_key(wire.suffix(ce), &mut buf)
                        && let Some(m) = self.nsec3_match(params, chain, &buf[..len])
                    {
                        self.push_proof(m, RecordType::NSEC3, ans);
                    }
                }
                None => match self.nsec3_match(params, chain, wire.bytes()) {
                    Some(m) => self.push_proof(m, RecordType::NSEC3, ans),
                    // An opt-out span (RFC 5155 §7.2.4): the closest
                    // provable encloser and the span holding the name.
                    None => {
                        self.nsec3_closest_encloser(
                            params,
                            chain,
                            wire,
                            wire.labels().saturating_sub(1),
                            ans,
                        );
                    }
                },
            },
        }
    }

    /// A wildcard expansion (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6): proof that
    /// the query name itself, or anything closer, does not exist.
    pub(super) fn deny_closer<'z>(
        &'z self,
        wire: &WireName,
        ce_labels: usize,
        ans: &mut Answer<'z>,
    ) {
        let Some(signed) = self.signed_ref() else {
            return;
        };
        match &*signed.denial {
            Denial::None => {}
            Denial::Nsec(owners) => {
                let cover = self.nsec_at_or_before(owners, wire.bytes());
                self.push_proof(cover, RecordType::NSEC, ans);
            }
            Denial::Nsec3 { params, chain } => {
                if ce_labels < wire.labels() {
                    let cover = self.nsec3_cover(params, chain, wire.suffix(ce_labels + 1));
                    self.push_proof(cover, RecordType::NSEC3, ans);
                }
            }
        }
    }

    /// A referral from a signed zone (RFC 4035 §3.1.4, RFC 5155 §7.2.7): the
    /// DS set and its RRSIGs, or the proof that there is no DS.
    pub(super) fn referral_ds<'z>(&'z self, cut: &'z Node, ans: &mut Answer<'z>) {
        let Some(signed) = self.signed_ref() else {
            return;
        };
        if cut.rrset(RecordType::DS).is_some() {
            self.push_proof(cut, RecordType::DS, ans);
            return;
        }
        match &*signed.denial {
            Denial::None => {}
            Denial::Nsec(_) => self.push_proof(cut, RecordType::NSEC, ans),
            Denial::Nsec3 { params, chain } => {
                let Some((wire, _)) = WireName::from_wire(cut.owner_wire()) else {
                    return;
                };
                match self.nsec3_match(params, chain, wire.bytes()) {
                    Some(m) => self.push_proof(m, RecordType::NSEC3, ans),
                    None => {
                        self.nsec3_closest_encloser(params, chain, &wire, wire.labels() - 1, ans);
                    }
                }
            }
        }
    }
}
