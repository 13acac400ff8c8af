//! Applying differences to a snapshot at the cost of the change.
//!
//! The next snapshot is the previous one with the changed names rewritten:
//! it shares every chunk of nodes the change does not touch
//! ([`super::table`]), and the name index unless names come or go. Only the
//! records of the changed names are read, and only in wire form.
//!
//! Three things depend on more than the changed names, and are kept exact:
//! empty non-terminals (a name that loses its last record stays while it
//! has children, and a parent left empty and childless goes with it; each
//! node counts its children for that), what a cut or DNAME hides (a new
//! name looks at its ancestors; a change of cut or DNAME above existing
//! names rebuilds the snapshot whole, as does a table too full of removed
//! names), and the DNSSEC chains (reused when no NSEC or NSEC3 moved).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

use super::dnssec::{self, Signed};
use super::key::WireName;
use super::raw::{self, RawRecords, RawRr};
use super::{
    CUT, DNAME, GENERATIONS, Limits, Node, NodeStats, NodeWriter, OCCLUDED, Zone, ZoneError,
    earlier_expiration,
};
use crate::canonical::{rdata_key, same_rdata};

/// One difference: records deleted, then records added (RFC 1995 §4).
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub deleted: &'a RawRecords,
    pub added: &'a RawRecords,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("difference {step} deletes {record}, which the copy does not have")]
    MissingDeletion { step: usize, record: String },
    #[error(transparent)]
    Zone(#[from] ZoneError),
}

/// A changed name: its records as the differences leave them.
struct Work {
    /// The node it replaces, if the name exists in the old snapshot.
    id: Option<u32>,
    /// Owner as the zone spells it: the node's, or the first added
    /// record's for a new name.
    owner: Box<[u8]>,
    /// By type: (TTL, RDATA), in the zone's order.
    sets: BTreeMap<u16, Vec<Rdata>>,
}

/// One record of a changed name: TTL, RDATA.
type Rdata = (u32, Box<[u8]>);

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Removed names above which the snapshot is rebuilt whole instead: their
/// empty slots would otherwise pile up in the table.
fn too_many_dead(dead: usize, nodes: usize) -> bool {
    dead > 1024 && dead * 4 > nodes
}

fn describe(r: &RawRr<'_>) -> String {
    let owner = raw::name_from_wire(r.owner);
    match r.to_record() {
        Ok(rec) => format!("{owner} {} {}", r.record_type(), rec.data),
        Err(_) => format!("{owner} {}", r.record_type()),
    }
}

impl Zone {
    /// The snapshot that `steps` (oldest first) make of this one, with
    /// `new_soa` as its SOA. Every deletion must name a record the copy
    /// holds at that point; records match as [`crate::canonical`] says,
    /// and an addition of a record already there replaces it (its TTL, or
    /// the spelling of its names). The result passes every check a build
    /// makes, under `limits`.
    pub fn apply(
        &self,
        steps: &[Step<'_>],
        new_soa: &Record,
        limits: &Limits,
    ) -> Result<Zone, ApplyError> {
        let zone_text = || self.origin.to_string();
        let mut work: FastMap<Box<[u8]>, Work> = FastMap::default();
        let mut key = WireName::new();
        for (i, step) in steps.iter().enumerate() {
            for r in step.deleted.iter() {
                let w = self.work_for(&mut work, &mut key, &r)?;
                let found = w.sets.get_mut(&r.rtype).and_then(|set| {
                    let at = set
                        .iter()
                        .position(|(_, d)| same_rdata(r.rtype, d, r.rdata))?;
                    set.remove(at);
                    Some(set.is_empty())
                });
                match found {
                    Some(true) => {
                        w.sets.remove(&r.rtype);
                    }
                    Some(false) => {}
                    None => {
                        return Err(ApplyError::MissingDeletion {
                            step: i,
                            record: describe(&r),
                        });
                    }
                }
            }
            for r in step.added.iter() {
                let w = self.work_for(&mut work, &mut key, &r)?;
                let set = w.sets.entry(r.rtype).or_default();
                match set
                    .iter()
                    .position(|(_, d)| same_rdata(r.rtype, d, r.rdata))
                {
                    Some(at) => set[at] = (r.ttl, r.rdata.into()),
                    None => set.push((r.ttl, r.rdata.into())),
                }
            }
        }
        // The apex takes the new SOA.
        let soa_raw: RawRecords = std::iter::once(new_soa).collect();
        let soa = soa_raw.iter().next().expect("one record");
        let apex_work = self.work_for(&mut work, &mut key, &soa)?;
        apex_work
            .sets
            .insert(soa.rtype, vec![(soa.ttl, soa.rdata.into())]);

        let mut next = Rewrite {
            zone: self,
            nodes: self.nodes.clone(),
            index: self.index.clone(),
            dead: self.dead_nodes,
            record_count: self.record_count,
            data_bytes: self.data_bytes,
            new_ids: Vec::new(),
            rebuild: false,
            denial_moved: false,
            earliest_sig_gone: false,
            earliest: self.earliest_sig_expiration,
        };
        let mut writer = NodeWriter::default();
        let mut emptied = Vec::new();
        let mut fresh = Vec::new();
        for (k, w) in &work {
            match w.id {
                Some(id) if next.replace(id, w, &mut writer, limits, &zone_text)? => {
                    emptied.push(id)
                }
                Some(_) => {}
                None if !w.sets.is_empty() => fresh.push((k, w)),
                // Added and deleted again within the differences.
                None => {}
            }
        }
        // Parents before children, so that a new name finds the new
        // names above it.
        fresh.sort_by_key(|(k, _)| k.len());
        for (k, w) in fresh {
            next.insert(k, w, &mut writer, limits, &zone_text)?;
        }
        for id in emptied {
            next.remove_if_bare(id);
        }
        if next.record_count > limits.max_records {
            return Err(ZoneError::TooManyRecords {
                zone: zone_text(),
                records: next.record_count,
                limit: limits.max_records,
            }
            .into());
        }
        if next.rebuild || too_many_dead(next.dead, next.nodes.len()) {
            return Ok(self.rebuilt_with(&work, limits)?);
        }
        next.finish(new_soa)
    }

    /// The changed name of `r`, loaded from the snapshot on first use.
    fn work_for<'w>(
        &self,
        work: &'w mut FastMap<Box<[u8]>, Work>,
        key: &mut WireName,
        r: &RawRr<'_>,
    ) -> Result<&'w mut Work, ZoneError> {
        let zone = || self.origin.to_string();
        let text = || raw::name_from_wire(r.owner).to_string();
        if r.class != u16::from(DNSClass::IN) {
            return Err(ZoneError::WrongClass {
                zone: zone(),
                owner: text(),
                rtype: r.record_type(),
                class: DNSClass::from(r.class),
            });
        }
        let in_zone = key.read_wire(r.owner).is_some()
            && key.labels() >= self.origin_labels
            && key.suffix(self.origin_labels) == &self.origin_key[..];
        if !in_zone {
            return Err(ZoneError::OutOfZone {
                zone: zone(),
                owner: text(),
                rtype: r.record_type(),
            });
        }
        let k = key.bytes();
        if !work.contains_key(k) {
            let loaded = match self.index.get(k) {
                Some(id) => {
                    let node = self.nodes.get(id);
                    let mut sets = BTreeMap::new();
                    for set in node.rrsets() {
                        let records = node
                            .rdatas(set)
                            .map(|d| (d.ttl, Box::from(d.rdata)))
                            .collect();
                        sets.insert(u16::from(set.rtype), records);
                    }
                    Work {
                        id: Some(id),
                        owner: node.owner_wire().into(),
                        sets,
                    }
                }
                None => Work {
                    id: None,
                    owner: r.owner.into(),
                    sets: BTreeMap::new(),
                },
            };
            work.insert(k.into(), loaded);
        }
        Ok(work.get_mut(k).expect("inserted above"))
    }

    /// The whole snapshot built again from this one's records with the
    /// changed names' records in place of theirs.
    fn rebuilt_with(
        &self,
        work: &FastMap<Box<[u8]>, Work>,
        limits: &Limits,
    ) -> Result<Zone, ZoneError> {
        let changed: std::collections::HashSet<u32> = work.values().filter_map(|w| w.id).collect();
        let mut raw = RawRecords::with_capacity(self.record_count * 48);
        let class = u16::from(DNSClass::IN);
        for (id, node) in self.nodes.iter_ids() {
            if changed.contains(&id) {
                continue;
            }
            for set in node.rrsets() {
                for d in node.rdatas(set) {
                    raw.push(
                        node.owner_wire(),
                        u16::from(set.rtype),
                        class,
                        d.ttl,
                        d.rdata,
                    );
                }
            }
        }
        // SOA first is what a zone file and an AXFR look like; the build
        // does not need it, but the order on disk follows the build's.
        for w in work.values() {
            for (&rtype, records) in &w.sets {
                for (ttl, rdata) in records {
                    raw.push(&w.owner, rtype, class, *ttl, rdata);
                }
            }
        }
        Zone::build_raw(&self.origin, raw, limits)
    }
}

/// A record of an RRset being compared: canonical RDATA, TTL, RDATA, and
/// whether the other snapshot has it unchanged.
type OldRecord<'a> = (std::borrow::Cow<'a, [u8]>, u32, &'a [u8], bool);

impl Zone {
    /// The records that differ from this snapshot to `new`, SOA aside:
    /// those only here go to `deleted`, those only there to `added`, and a
    /// record whose TTL or RDATA spelling changed goes to both. Read name
    /// by name through the index, in wire form: nothing is held but what
    /// differs, however large the zones (a map of every record of a
    /// 200,000-record zone took more than the zone itself).
    pub fn differences(&self, new: &Zone, deleted: &mut RawRecords, added: &mut RawRecords) {
        let soa = u16::from(RecordType::SOA);
        let class = u16::from(DNSClass::IN);
        let mut key = WireName::new();
        let mut old_set: Vec<OldRecord<'_>> = Vec::new();
        // Names with records in the new copy.
        for node in new.nodes.iter().filter(|n| !n.rrsets.is_empty()) {
            let owner = node.owner_wire();
            let before = key
                .read_wire(owner)
                .and_then(|_| self.node(key.bytes()))
                .filter(|o| !o.rrsets.is_empty());
            for set in node.rrsets().iter().filter(|s| u16::from(s.rtype) != soa) {
                let rtype = u16::from(set.rtype);
                let Some((o, os)) = before.and_then(|o| Some((o, o.rrset(set.rtype)?))) else {
                    for r in node.rdatas(set) {
                        added.push(owner, rtype, class, r.ttl, r.rdata);
                    }
                    continue;
                };
                old_set.clear();
                old_set.extend(
                    o.rdatas(os)
                        .map(|r| (rdata_key(rtype, r.rdata), r.ttl, r.rdata, false)),
                );
                old_set.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                for r in node.rdatas(set) {
                    let k = rdata_key(rtype, r.rdata);
                    match old_set.binary_search_by(|x| x.0.as_ref().cmp(k.as_ref())) {
                        Ok(at) if old_set[at].1 == r.ttl && old_set[at].2 == r.rdata => {
                            old_set[at].3 = true;
                        }
                        _ => added.push(owner, rtype, class, r.ttl, r.rdata),
                    }
                }
                for (_, ttl, rdata, _) in old_set.iter().filter(|x| !x.3) {
                    deleted.push(o.owner_wire(), rtype, class, *ttl, rdata);
                }
            }
            // Types the name no longer has.
            if let Some(o) = before {
                for os in o.rrsets().iter().filter(|s| u16::from(s.rtype) != soa) {
                    if node.rrset(os.rtype).is_none() {
                        for r in o.rdatas(os) {
                            deleted.push(
                                o.owner_wire(),
                                u16::from(os.rtype),
                                class,
                                r.ttl,
                                r.rdata,
                            );
                        }
                    }
                }
            }
        }
        // Names whose records are all gone.
        for o in self.nodes.iter().filter(|n| !n.rrsets.is_empty()) {
            let now = key
                .read_wire(o.owner_wire())
                .and_then(|_| new.node(key.bytes()));
            if now.is_some_and(|n| !n.rrsets.is_empty()) {
                continue;
            }
            for os in o.rrsets().iter().filter(|s| u16::from(s.rtype) != soa) {
                for r in o.rdatas(os) {
                    deleted.push(o.owner_wire(), u16::from(os.rtype), class, r.ttl, r.rdata);
                }
            }
        }
    }
}

/// The next snapshot while it is being made from the previous one.
struct Rewrite<'z> {
    zone: &'z Zone,
    nodes: super::NodeTable,
    index: Arc<super::NameIndex>,
    dead: usize,
    record_count: usize,
    data_bytes: usize,
    /// Names that did not exist before: their OCCLUDED flag is computed
    /// once the structure is complete.
    new_ids: Vec<u32>,
    /// A change the incremental path does not follow: build whole.
    rebuild: bool,
    /// An NSEC or NSEC3 record, or the NSEC3PARAM, changed.
    denial_moved: bool,
    /// A signature with the earliest expiration was removed.
    earliest_sig_gone: bool,
    earliest: Option<u32>,
}

const DENIAL_TYPES: [RecordType; 3] = [RecordType::NSEC, RecordType::NSEC3, RecordType::NSEC3PARAM];

impl Rewrite<'_> {
    fn write(
        &mut self,
        w: &Work,
        is_apex: bool,
        children: u32,
        writer: &mut NodeWriter,
        limits: &Limits,
        zone: &dyn Fn() -> String,
    ) -> Result<(Node, NodeStats), ZoneError> {
        writer.begin(&w.owner);
        let mut records: Vec<(u32, &[u8])> = Vec::new();
        for (&rtype, set) in &w.sets {
            records.clear();
            records.extend(set.iter().map(|(ttl, d)| (*ttl, &d[..])));
            writer.rrset(rtype, &mut records, limits, zone)?;
        }
        writer.finish(is_apex, children, zone)
    }

    /// Puts the new version of existing node `id` in place; `true` when
    /// it has no records left.
    fn replace(
        &mut self,
        id: u32,
        w: &Work,
        writer: &mut NodeWriter,
        limits: &Limits,
        zone: &dyn Fn() -> String,
    ) -> Result<bool, ZoneError> {
        let old = self.zone.nodes.get(id);
        let is_apex = id == self.zone.apex;
        let (mut node, stats) = self.write(w, is_apex, old.children, writer, limits, zone)?;
        if is_apex && node.rrset(RecordType::NS).is_none() {
            return Err(ZoneError::NoApexNs { zone: zone() });
        }
        node.flags |= old.flags & OCCLUDED;
        let hides = |n: &Node| n.flags & (CUT | DNAME);
        // What a cut or DNAME hides lies below it: only a name with
        // children changes what others are.
        if hides(old) != hides(&node) && (old.children > 0 || is_apex) {
            self.rebuild = true;
        }
        self.account(Some(old), &node, stats);
        let empty = node.rrsets.is_empty();
        *self.nodes.get_mut(id) = node;
        Ok(empty)
    }

    /// Adds a name that did not exist, and the empty non-terminals
    /// between it and the names that do.
    fn insert(
        &mut self,
        k: &[u8],
        w: &Work,
        writer: &mut NodeWriter,
        limits: &Limits,
        zone: &dyn Fn() -> String,
    ) -> Result<(), ZoneError> {
        let (node, stats) = self.write(w, false, 0, writer, limits, zone)?;
        self.account(None, &node, stats);
        let id = self.nodes.push(node);
        Arc::make_mut(&mut self.index).insert(k, id);
        self.new_ids.push(id);
        // Up the tree until a name that exists, which gains a child.
        let mut at = 0;
        let owner = &w.owner;
        let mut owner_at = 0;
        loop {
            at += k[at] as usize + 1;
            owner_at += owner[owner_at] as usize + 1;
            let parent = &k[at..];
            if let Some(p) = self.index.get(parent) {
                self.nodes.get_mut(p).children += 1;
                return Ok(());
            }
            // The origin exists, so this ends there at the latest.
            let ent = Node {
                data: owner[owner_at..].into(),
                owner_len: (owner.len() - owner_at) as u8,
                children: 1,
                ..Node::default()
            };
            self.data_bytes += ent.data.len();
            let id = self.nodes.push(ent);
            Arc::make_mut(&mut self.index).insert(parent, id);
            self.new_ids.push(id);
        }
    }

    /// Removes node `id` if it has neither records nor children, and the
    /// empty non-terminals above it that it leaves childless.
    fn remove_if_bare(&mut self, mut id: u32) {
        loop {
            let node = self.nodes.get(id);
            if id == self.zone.apex || !node.rrsets.is_empty() || node.children > 0 {
                return;
            }
            let mut k = WireName::new();
            if k.read_wire(node.owner_wire()).is_none() {
                return;
            }
            let key = k.bytes();
            // Removed already (as the parent of another removed name).
            if self.index.get(key) != Some(id) {
                return;
            }
            Arc::make_mut(&mut self.index).remove(key);
            self.data_bytes -= self.nodes.get(id).data.len();
            *self.nodes.get_mut(id) = Node::default();
            self.dead += 1;
            let parent = &key[key[0] as usize + 1..];
            let Some(p) = self.index.get(parent) else {
                return;
            };
            let pn = self.nodes.get_mut(p);
            pn.children -= 1;
            id = p;
        }
    }

    /// Counts, signature times and DNSSEC chains after a node changed.
    fn account(&mut self, old: Option<&Node>, new: &Node, stats: NodeStats) {
        let old_records = old.map_or(0, |o| o.rrsets.iter().map(|s| s.len()).sum());
        self.record_count = self.record_count + stats.records - old_records;
        self.data_bytes = self.data_bytes + new.data.len() - old.map_or(0, |o| o.data.len());
        if let Some(old) = old {
            let old_sigs = old.rrset(RecordType::RRSIG);
            let new_sigs = new.rrset(RecordType::RRSIG);
            let same = match (old_sigs, new_sigs) {
                (Some(a), Some(b)) => old.rdatas(a).eq(new.rdatas(b)),
                (None, None) => true,
                _ => false,
            };
            if !same && self.earliest.is_some() {
                let gone = old_sigs.is_some_and(|s| {
                    old.rdatas(s)
                        .filter_map(|r| dnssec::expiration_raw(r.rdata))
                        .any(|e| Some(e) == self.zone.earliest_sig_expiration)
                });
                self.earliest_sig_gone |= gone;
            }
            for t in DENIAL_TYPES {
                let a = old.rrset(t);
                let b = new.rrset(t);
                let same = match (a, b) {
                    (Some(a), Some(b)) => t == RecordType::NSEC || old.rdatas(a).eq(new.rdatas(b)),
                    (None, None) => true,
                    _ => false,
                };
                self.denial_moved |= !same;
            }
        } else {
            self.denial_moved |= DENIAL_TYPES.iter().any(|&t| new.rrset(t).is_some());
        }
        self.earliest = earlier_expiration(self.earliest, stats.earliest_sig_expiration);
    }

    /// Whether a new node lies below a cut or a DNAME.
    fn occluded(&self, node: &Node) -> bool {
        let zone = self.zone;
        if self.nodes.get(zone.apex).has_dname() {
            return true;
        }
        let mut key = WireName::new();
        if key.read_wire(node.owner_wire()).is_none() {
            return false;
        }
        (zone.origin_labels + 1..key.labels()).any(|depth| {
            self.index.get(key.suffix(depth)).is_some_and(|a| {
                let anc = self.nodes.get(a);
                anc.is_cut() || anc.has_dname()
            })
        })
    }

    fn finish(mut self, new_soa: &Record) -> Result<Zone, ApplyError> {
        let zone = self.zone;
        for i in 0..self.new_ids.len() {
            let id = self.new_ids[i];
            if self.occluded(self.nodes.get(id)) {
                self.nodes.get_mut(id).flags |= OCCLUDED;
            }
        }
        let removed_sig_kept = self.earliest_sig_gone;
        let RData::SOA(soa_data) = &new_soa.data else {
            return Err(ZoneError::NoSoa {
                zone: zone.origin.to_string(),
            }
            .into());
        };
        let negative_ttl = new_soa.ttl.min(soa_data.minimum);
        let mut next = Zone {
            origin: zone.origin.clone(),
            origin_key: zone.origin_key.clone(),
            origin_hash: zone.origin_hash,
            origin_labels: zone.origin_labels,
            nodes: self.nodes,
            index: self.index,
            apex: zone.apex,
            serial: soa_data.serial,
            soa: new_soa.clone(),
            negative_ttl,
            record_count: self.record_count,
            signed: None,
            earliest_sig_expiration: self.earliest,
            dead_nodes: self.dead,
            data_bytes: self.data_bytes,
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        if removed_sig_kept {
            next.earliest_sig_expiration = next.scan_earliest_sig_expiration();
        }
        let keep = (!self.denial_moved)
            .then_some(zone.signed.as_deref())
            .flatten();
        next.signed = Signed::rebuild(&next, keep).map(Box::new);
        Ok(next)
    }
}

/// An RRset of a [`Structure`]: type, and (TTL, RDATA) sorted.
type RrsetView = (u16, Vec<(u32, Vec<u8>)>);

/// One name of a [`Structure`]: key, flags, child count, RRsets by type.
type NodeView = (Vec<u8>, u8, u32, Vec<RrsetView>);

/// Everything two snapshots of the same records must agree on, name by
/// name: records, empty non-terminals, cuts and what they hide, child
/// counts, counts and sizes, signature times and the denial chain. What
/// the property tests of applying differences and the `ixfr_apply` fuzz
/// target compare; not an interface.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    nodes: Vec<NodeView>,
    record_count: usize,
    wire_size: usize,
    times: (u32, Option<u32>),
    chain: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Zone {
    /// This snapshot's [`Structure`] (tests and fuzzing).
    #[doc(hidden)]
    pub fn structure(&self) -> Structure {
        use super::{CNAME, NSEC3_ONLY};
        let mut nodes = Vec::new();
        for (key, id) in self.index.iter() {
            let node = self.nodes.get(id);
            let mut sets: Vec<RrsetView> = node
                .rrsets()
                .iter()
                .map(|s| {
                    let mut rs: Vec<(u32, Vec<u8>)> =
                        node.rdatas(s).map(|r| (r.ttl, r.rdata.to_vec())).collect();
                    rs.sort();
                    (u16::from(s.rtype), rs)
                })
                .collect();
            sets.sort();
            let flags = node.flags & (CUT | DNAME | CNAME | OCCLUDED | NSEC3_ONLY);
            nodes.push((key.to_vec(), flags, node.children, sets));
        }
        nodes.sort();
        let chain = self
            .signed
            .as_ref()
            .map(|s| s.chain_view(self))
            .unwrap_or_default();
        Structure {
            nodes,
            record_count: self.record_count(),
            wire_size: self.wire_size(),
            times: (self.serial(), self.earliest_sig_expiration),
            chain,
        }
    }
}

impl Structure {
    /// Where `self` (applied) and `want` (built) first differ, in words;
    /// `None` when they agree.
    pub fn difference(&self, want: &Structure) -> Option<String> {
        if self == want {
            return None;
        }
        let name = |k: &[u8]| raw::name_from_wire(k).to_string();
        let ka: Vec<_> = self.nodes.iter().map(|n| &n.0).collect();
        let kb: Vec<_> = want.nodes.iter().map(|n| &n.0).collect();
        if let Some(k) = ka.iter().find(|k| !kb.contains(k)) {
            return Some(format!("{} only in the applied zone", name(k)));
        }
        if let Some(k) = kb.iter().find(|k| !ka.contains(k)) {
            return Some(format!("{} missing from the applied zone", name(k)));
        }
        if let Some((x, y)) = self.nodes.iter().zip(&want.nodes).find(|(x, y)| x != y) {
            return Some(format!(
                "{}: applied (flags, children, sets) {:?}\n  built {:?}",
                name(&x.0),
                (x.1, x.2, &x.3),
                (y.1, y.2, &y.3),
            ));
        }
        Some(format!(
            "totals differ: applied {:?}, built {:?}",
            (self.record_count, self.wire_size, self.times, &self.chain),
            (want.record_count, want.wire_size, want.times, &want.chain),
        ))
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
