//! Answering a query from a snapshot: RFC 1034 §4.3.2 with the later rules
//! for negative answers (RFC 2308), wildcards (RFC 4592), DNAME (RFC 6672)
//! and ANY (RFC 8482).
//!
//! The lookup produces references into the snapshot; only synthesized
//! records (wildcard expansions, DNAME-made CNAMEs) are built per query.

use std::borrow::Cow;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use smallvec::SmallVec;

use super::key::{MAX_NAME, WireName, wildcard_key};
use super::{Node, RRset, Zone};

/// CNAME links followed inside one zone before giving up, as BIND does.
const MAX_CHAIN: usize = 16;

/// What a section of the answer holds: a stored RRset, a single stored
/// record, or records synthesized for this query.
#[derive(Debug, Clone, Copy)]
pub enum Item<'z> {
    /// A stored RRset, with the node that holds it.
    Set(&'z Node, &'z RRset),
    /// Records `lo..hi` of a stored RRSIG set: those covering one type.
    Sigs(&'z Node, &'z RRset, u32, u32),
    /// The apex SOA as negative answers carry it: with this TTL, the lesser
    /// of its own and MINIMUM (RFC 2308 §3). Encoded from its stored wire
    /// form like any set, not converted from a parsed record per answer.
    NegativeSoa(&'z Node, &'z RRset, u32),
    Record(&'z Record),
    Slice(&'z [Record]),
    /// A range of `Answer::synth`.
    Synth(u16, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answer,
    NoData,
    NxDomain,
    Referral,
    /// A DNAME substitution that made a name too long (RFC 6672 §2.2).
    YxDomain,
}

#[derive(Debug)]
pub struct Answer<'z> {
    pub outcome: Outcome,
    pub authoritative: bool,
    pub answer: SmallVec<[Item<'z>; 4]>,
    pub authority: SmallVec<[Item<'z>; 2]>,
    pub additional: SmallVec<[Item<'z>; 4]>,
    /// How many leading items of `additional` are glue the referral cannot
    /// work without (RFC 9471): when they do not fit, the reply is truncated.
    pub required_additional: usize,
    pub synth: Vec<Record>,
    /// DNSSEC records go in: DO was set and the zone is signed.
    pub dnssec: bool,
    /// The wildcard the answer was made from, if it was (the first one
    /// when a chain met several): response rate limiting counts wildcard
    /// answers as answers for the wildcard's name.
    pub wildcard: Option<&'z Node>,
}

impl<'z> Answer<'z> {
    fn new() -> Self {
        Answer {
            outcome: Outcome::Answer,
            authoritative: true,
            answer: SmallVec::new(),
            authority: SmallVec::new(),
            additional: SmallVec::new(),
            required_additional: 0,
            synth: Vec::new(),
            dnssec: false,
            wildcard: None,
        }
    }

    pub fn rcode(&self) -> ResponseCode {
        match self.outcome {
            Outcome::NxDomain => ResponseCode::NXDomain,
            Outcome::YxDomain => ResponseCode::YXDomain,
            _ => ResponseCode::NoError,
        }
    }

    /// The records of an item as hickory records: made for stored ones
    /// (the slow paths), borrowed for the rest.
    pub fn records<'a>(&'a self, item: &Item<'z>) -> Cow<'a, [Record]>
    where
        'z: 'a,
    {
        match *item {
            Item::Set(n, s) => Cow::Owned(n.records(s)),
            Item::Sigs(n, s, lo, hi) => {
                let owner = n.name();
                Cow::Owned(n.records_range_as(s, &owner, lo, hi).collect())
            }
            Item::NegativeSoa(n, s, ttl) => {
                let mut records = n.records(s);
                for r in &mut records {
                    r.ttl = ttl;
                }
                Cow::Owned(records)
            }
            Item::Record(r) => Cow::Borrowed(std::slice::from_ref(r)),
            Item::Slice(s) => Cow::Borrowed(s),
            Item::Synth(a, b) => Cow::Borrowed(&self.synth[a as usize..b as usize]),
        }
    }

    /// The number of records of an item.
    pub fn count(&self, item: &Item<'z>) -> usize {
        match *item {
            Item::Set(_, s) => s.len(),
            Item::Sigs(_, _, lo, hi) => (hi - lo) as usize,
            Item::NegativeSoa(_, s, _) => s.len(),
            Item::Record(_) => 1,
            Item::Slice(s) => s.len(),
            Item::Synth(a, b) => (b - a) as usize,
        }
    }

    /// The size of an item with names uncompressed: an upper bound of what
    /// it takes in a message, computed without building records.
    pub fn upper_bound(&self, item: &Item<'z>) -> usize {
        let hickory =
            |r: &Record| crate::rr::name_wire_len(&r.name) + 10 + crate::rr::rdata_len(&r.data);
        match *item {
            Item::Set(_, s) | Item::NegativeSoa(_, s, _) => s.wire_len(),
            Item::Sigs(n, s, lo, hi) => n
                .rdatas_range(s, lo, hi)
                .map(|r| n.owner_wire().len() + 10 + r.rdata.len())
                .sum(),
            Item::Record(r) => hickory(r),
            Item::Slice(s) => s.iter().map(hickory).sum(),
            Item::Synth(a, b) => self.synth[a as usize..b as usize].iter().map(hickory).sum(),
        }
    }

    pub(super) fn push_synth(&mut self, records: impl IntoIterator<Item = Record>) -> Item<'z> {
        let a = self.synth.len();
        self.synth.extend(records);
        Item::Synth(a as u16, self.synth.len() as u16)
    }

    fn push_additional(&mut self, node: &'z Node, set: &'z RRset) {
        let dup = self
            .additional
            .iter()
            .any(|i| matches!(i, Item::Set(_, s) if std::ptr::eq(*s, set)));
        if !dup {
            self.additional.push(Item::Set(node, set));
        }
    }
}

enum Found<'z> {
    Exact(&'z Node),
    /// A wildcard, with the label count of its closest encloser.
    Wildcard(&'z Node, usize),
    Cut(&'z Node),
    Dname(&'z Node),
    /// With the label count of the closest encloser.
    NxDomain(usize),
}

/// Where a lookup starts: a hickory name, or the question's own bytes
/// with their lookup key.
enum Start<'a> {
    Name(&'a Name),
    Wire(&'a [u8], &'a WireName),
}

impl<'a> Start<'a> {
    /// The name being looked up, as a hickory name: the last CNAME or
    /// DNAME target followed, else the query name. `None` when the
    /// question's bytes are not a name hickory reads.
    fn current<'b>(&'b self, owned: &'b Option<Name>) -> Option<Cow<'b, Name>> {
        match (owned, self) {
            (Some(n), _) => Some(Cow::Borrowed(n)),
            (None, Start::Name(n)) => Some(Cow::Borrowed(*n)),
            (None, Start::Wire(raw, _)) => crate::rr::read_name(raw).map(|(n, _)| Cow::Owned(n)),
        }
    }
}

enum Step {
    Done,
    Follow(Name),
}

impl Zone {
    /// Answers `qname`/`qtype`; `qname` must be at or below the origin.
    /// `tcp` selects the full ANY answer (RFC 8482 limits it over UDP).
    pub fn lookup<'z>(&'z self, qname: &Name, qtype: RecordType, tcp: bool) -> Answer<'z> {
        self.lookup_dnssec(qname, qtype, tcp, false)
    }

    /// [`Zone::lookup`] with the DO bit (RFC 3225): when set and the zone is
    /// signed, the answer carries RRSIGs and the NSEC/NSEC3 proofs of RFC
    /// 4035 §3.1 and RFC 5155 §7.2.
    pub fn lookup_dnssec<'z>(
        &'z self,
        qname: &Name,
        qtype: RecordType,
        tcp: bool,
        dnssec_ok: bool,
    ) -> Answer<'z> {
        // A name at hand is never unreadable.
        self.lookup_from(Start::Name(qname), qtype, tcp, dnssec_ok)
            .unwrap_or_else(Answer::new)
    }

    /// [`Zone::lookup_dnssec`] straight from the question on the wire (the
    /// UDP fast path): `raw` is the query name as sent (uncompressed, case
    /// kept) and `wire` its lookup key. A hickory `Name` is made only when a
    /// record must be synthesised for the query name (wildcards, DNAME).
    /// `None` when hickory cannot read `raw` as a name.
    pub fn lookup_wire<'z>(
        &'z self,
        raw: &[u8],
        wire: &WireName,
        qtype: RecordType,
        tcp: bool,
        dnssec_ok: bool,
    ) -> Option<Answer<'z>> {
        self.lookup_from(Start::Wire(raw, wire), qtype, tcp, dnssec_ok)
    }

    fn lookup_from<'z>(
        &'z self,
        start: Start<'_>,
        qtype: RecordType,
        tcp: bool,
        dnssec_ok: bool,
    ) -> Option<Answer<'z>> {
        let mut ans = Answer::new();
        ans.dnssec = dnssec_ok && self.signed_ref().is_some();
        let mut owned: Option<Name> = None;
        for _ in 0..MAX_CHAIN {
            let made;
            let wire = match (&owned, &start) {
                (None, Start::Wire(_, w)) => *w,
                (Some(n), _) => {
                    made = WireName::from_name(n);
                    &made
                }
                (None, Start::Name(n)) => {
                    made = WireName::from_name(n);
                    &made
                }
            };
            if wire.labels() < self.origin_labels
                || wire.suffix(self.origin_labels) != self.origin_key()
            {
                // A CNAME or DNAME led out of the zone: the resolver goes on.
                return Some(ans);
            }
            let step = match self.find(wire, qtype) {
                Found::Exact(node) => self.answer_node(node, None, wire, qtype, tcp, &mut ans),
                Found::Wildcard(node, ce) => {
                    ans.wildcard.get_or_insert(node);
                    let cur = start.current(&owned)?;
                    self.answer_node(node, Some((&cur, ce)), wire, qtype, tcp, &mut ans)
                }
                Found::Cut(node) => {
                    self.referral(node, &mut ans);
                    return Some(ans);
                }
                Found::Dname(node) => {
                    let next = {
                        let cur = start.current(&owned)?;
                        self.dname(node, &cur, &mut ans)
                    };
                    match next {
                        Some(target) => {
                            owned = Some(target);
                            continue;
                        }
                        None => return Some(ans),
                    }
                }
                Found::NxDomain(ce) => {
                    ans.outcome = Outcome::NxDomain;
                    ans.authority.push(self.negative_soa_item());
                    if ans.dnssec {
                        self.push_soa_sigs(&mut ans);
                        self.deny_name(wire, ce, &mut ans);
                    }
                    return Some(ans);
                }
            };
            match step {
                Step::Done => return Some(ans),
                Step::Follow(target) => owned = Some(target),
            }
        }
        // A chain longer than we follow: the answer so far is what BIND gives.
        Some(ans)
    }

    fn find<'z>(&'z self, wire: &WireName, qtype: RecordType) -> Found<'z> {
        let labels = wire.labels();
        let mut encloser = self.apex_node();
        for depth in self.origin_labels..=labels {
            let Some(node) = self.node(wire.suffix(depth)).filter(|n| !n.is_nsec3_only()) else {
                return self.wildcard(wire.suffix(depth - 1), depth - 1);
            };
            let exact = depth == labels;
            // DS lives on the parent side of a cut (RFC 4035 §3.1.4.1).
            if node.is_cut() && !(exact && qtype == RecordType::DS) {
                return Found::Cut(node);
            }
            if node.has_dname() && !exact {
                return Found::Dname(node);
            }
            encloser = node;
        }
        Found::Exact(encloser)
    }

    fn wildcard<'z>(&'z self, closest_encloser: &[u8], ce_labels: usize) -> Found<'z> {
        let mut buf = [0u8; MAX_NAME];
        match wildcard_key(closest_encloser, &mut buf).and_then(|len| self.node(&buf[..len])) {
            Some(node) if node.is_cut() => Found::Cut(node),
            Some(node) => Found::Wildcard(node, ce_labels),
            None => Found::NxDomain(ce_labels),
        }
    }

    /// Answers from a node; `wild` is the query name and the closest
    /// encloser's label count when the node is a wildcard whose records are
    /// expanded to it.
    fn answer_node<'z>(
        &'z self,
        node: &'z Node,
        wild: Option<(&Name, usize)>,
        wire: &WireName,
        qtype: RecordType,
        tcp: bool,
        ans: &mut Answer<'z>,
    ) -> Step {
        let synth_owner = wild.map(|w| w.0);
        let step = self.answer_node_data(node, synth_owner, qtype, tcp, ans);
        if ans.dnssec {
            match step {
                Some(step) => {
                    if let Some((_, ce)) = wild {
                        self.deny_closer(wire, ce, ans);
                    }
                    return step;
                }
                None => self.deny_type(node, wire, wild.map(|w| w.1), ans),
            }
        }
        step.unwrap_or(Step::Done)
    }

    /// The data part of [`Zone::answer_node`]; `None` when it was NODATA.
    fn answer_node_data<'z>(
        &'z self,
        node: &'z Node,
        synth_owner: Option<&Name>,
        qtype: RecordType,
        tcp: bool,
        ans: &mut Answer<'z>,
    ) -> Option<Step> {
        if qtype == RecordType::ANY {
            let sets: SmallVec<[&RRset; 8]> = if tcp {
                node.rrsets().iter().collect()
            } else {
                // RFC 8482 §4.1: over UDP one RRset of the name is enough.
                node.rrsets()
                    .iter()
                    .find(|s| s.rtype != RecordType::RRSIG)
                    .into_iter()
                    .collect()
            };
            if sets.is_empty() {
                self.nodata(ans);
                return None;
            }
            // Over TCP the RRSIG set is among the sets already.
            let sign = !tcp;
            for set in sets {
                self.emit_signed(node, set, synth_owner, sign, ans);
            }
            return Some(Step::Done);
        }
        if let Some(set) = node.rrset(qtype) {
            self.emit_signed(node, set, synth_owner, qtype != RecordType::RRSIG, ans);
            self.additional_for(node, set, ans);
            return Some(Step::Done);
        }
        if qtype != RecordType::CNAME && node.has_cname() {
            let set = node.rrset(RecordType::CNAME).expect("flagged at build");
            self.emit_signed(node, set, synth_owner, true, ans);
            if let Some(r) = node.rdatas(set).next()
                && let Some((target, _)) = crate::rr::read_name(r.rdata)
            {
                return Some(Step::Follow(target));
            }
            return Some(Step::Done);
        }
        self.nodata(ans);
        None
    }

    /// Puts a set in the answer, and its RRSIGs after it when DNSSEC
    /// records are wanted and `sign` allows.
    fn emit_signed<'z>(
        &'z self,
        node: &'z Node,
        set: &'z RRset,
        synth_owner: Option<&Name>,
        sign: bool,
        ans: &mut Answer<'z>,
    ) {
        let item = self.emit_set(node, set, synth_owner, ans);
        ans.answer.push(item);
        if sign
            && ans.dnssec
            && let Some(sigs) = self.sigs_item(node, set.rtype, synth_owner, ans)
        {
            ans.answer.push(sigs);
        }
    }

    fn emit_set<'z>(
        &'z self,
        node: &'z Node,
        set: &'z RRset,
        synth_owner: Option<&Name>,
        ans: &mut Answer<'z>,
    ) -> Item<'z> {
        match synth_owner {
            None => Item::Set(node, set),
            Some(owner) => ans.push_synth(node.records_as(set, owner)),
        }
    }

    /// The SOA a negative answer carries, in its stored form.
    fn negative_soa_item(&self) -> Item<'_> {
        let apex = self.nodes.get(self.apex);
        match apex.rrset(RecordType::SOA) {
            Some(set) => Item::NegativeSoa(apex, set, self.negative_ttl),
            // A built zone has its SOA at the apex; the parsed record is the
            // same data (with its own TTL) should that ever not hold.
            None => Item::Record(&self.soa),
        }
    }

    fn nodata<'z>(&'z self, ans: &mut Answer<'z>) {
        // After a CNAME the rcode stays NOERROR with the chain in the answer.
        if ans.answer.is_empty() {
            ans.outcome = Outcome::NoData;
        }
        ans.authority.push(self.negative_soa_item());
        if ans.dnssec {
            self.push_soa_sigs(ans);
        }
    }

    fn referral<'z>(&'z self, cut: &'z Node, ans: &mut Answer<'z>) {
        let ns = cut.rrset(RecordType::NS).expect("a cut has NS");
        if ans.answer.is_empty() {
            ans.outcome = Outcome::Referral;
            ans.authoritative = false;
        }
        ans.authority.push(Item::Set(cut, ns));
        if ans.dnssec {
            self.referral_ds(cut, ans);
        }
        // In-bailiwick glue only, as BIND does: addresses of name servers
        // at or below the cut, which a resolver cannot find any other way.
        // They are required: without them the referral is useless (RFC 9471).
        let cut_labels = cut.labels();
        let cut_key = WireName::from_wire(cut.owner_wire()).map(|(k, _)| k);
        for r in cut.rdatas(ns) {
            let Some((target, _)) = WireName::from_wire(r.rdata) else {
                continue;
            };
            let in_bailiwick = cut_key.as_ref().is_some_and(|k| {
                target.labels() >= cut_labels && target.suffix(cut_labels) == k.bytes()
            });
            if in_bailiwick && let Some(node) = self.node(target.bytes()) {
                for t in [RecordType::A, RecordType::AAAA] {
                    if let Some(set) = node.rrset(t) {
                        ans.push_additional(node, set);
                    }
                }
            }
        }
        ans.required_additional = ans.additional.len();
    }

    /// DNAME substitution (RFC 6672 §2.2): answer the DNAME and a CNAME made
    /// for the query name; returns the new name to go on with.
    fn dname<'z>(&'z self, node: &'z Node, cur: &Name, ans: &mut Answer<'z>) -> Option<Name> {
        let set = node.rrset(RecordType::DNAME).expect("flagged at build");
        self.emit_signed(node, set, None, true, ans);
        let rec = node.rdatas(set).next()?;
        let (target, _) = crate::rr::read_name(rec.rdata)?;
        let keep = cur.num_labels() as usize - node.labels();
        let prefix = cur.iter().take(keep).collect::<Vec<_>>();
        let new_name = Name::from_labels(prefix)
            .ok()
            .and_then(|p| p.append_domain(&target).ok());
        let Some(new_name) = new_name else {
            ans.outcome = Outcome::YxDomain;
            return None;
        };
        let cname = Record::from_rdata(cur.clone(), rec.ttl, RData::CNAME(CNAME(new_name.clone())));
        let item = ans.push_synth([cname]);
        ans.answer.push(item);
        Some(new_name)
    }

    /// Addresses of in-zone MX, NS and SRV targets (RFC 1035 §3.3.9, RFC 2782),
    /// and with DNSSEC records wanted, their RRSIGs (RFC 4035 §3.1.1: MUST
    /// when there is room). The signatures go after all the addresses, so
    /// that when the answer is cut to fit, by whole items from the end, they
    /// go before any address does.
    fn additional_for<'z>(&'z self, owner: &'z Node, set: &'z RRset, ans: &mut Answer<'z>) {
        let skip = match set.rtype {
            RecordType::MX => 2,
            RecordType::NS => 0,
            RecordType::SRV => 6,
            _ => return,
        };
        let first = ans.additional.len();
        for r in owner.rdatas(set) {
            let Some((target, _)) = r.rdata.get(skip..).and_then(WireName::from_wire) else {
                continue;
            };
            let Some(node) = self.node(target.bytes()) else {
                continue;
            };
            // Glue below a cut is not authoritative: only referrals hand it out,
            // except for the zone's own NS set, whose glue resolvers need.
            if node.is_occluded() && set.rtype != RecordType::NS {
                continue;
            }
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(a) = node.rrset(t) {
                    ans.push_additional(node, a);
                }
            }
        }
        if ans.dnssec {
            let addresses = ans.additional.len();
            for i in first..addresses {
                if let Item::Set(node, a) = ans.additional[i]
                    && !node.is_occluded()
                    && let Some((sigs, lo, hi)) = node.sigs(a.rtype)
                {
                    ans.additional.push(Item::Sigs(node, sigs, lo, hi));
                }
            }
        }
    }
}
