//! Applying IXFR differences, against a model. The input spells a small
//! zone (names of several depths, delegations, CNAME, DNAME, NSEC and
//! NSEC3 chains, signatures, private types), limits, and up to four
//! difference steps of deletions and additions: records of the copy
//! respelled (owner and RDATA names in other case, any TTL), whole RRsets,
//! records the copy lacks, records added twice or deleted and added back,
//! now and then a record out of the zone or of another class.
//!
//! The model keeps records by an identity it computes from their structure
//! (names lowercased where RFC 4034 §6.2 and RFC 6840 §5.1 say, everything
//! else exact), not with `outpost::canonical`, and reads the steps as
//! RFC 1995 §4 says (each step's deletions, then its additions). Then, for
//! the steps at once and one step at a time:
//!
//! * a step that deletes a record the copy lacks, or names a record out of
//!   the zone or of another class, fails with that error, at that step;
//! * otherwise the result is what a build from scratch of the model's
//!   records makes: the same snapshot, node for node ([`Zone::structure`],
//!   the property tests' comparison), or the build's refusal (any clean
//!   error, never a snapshot the build refuses);
//! * applying the difference from the copy to that build gives it too;
//! * never a panic.
#![no_main]

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, Record, RecordType};
use libfuzzer_sys::fuzz_target;
use outpost::xfr::interp::IxfrDiff;
use outpost::xfr::ixfr::{self, IxfrError};
use outpost::zone::{ApplyError, Limits, RawRecords, Zone, ZoneError};

/// The input, read a byte at a time; zeros once it runs out.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.u8()).collect()
    }

    fn ended(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// Names are uncompressed wire form, as spelled.
type WireName = Vec<u8>;

const ORIGIN: &[u8] = b"\x07example\x00";

/// Labels below the origin; with octets just outside A-Z and a-z ('@',
/// '[', '`', '{') and one above 0x7F, where a fold that is not ASCII's
/// would go wrong.
const LABELS: [&[u8]; 12] = [
    b"a", b"b", b"www", b"mail", b"sub", b"x", b"deep", b"*", b"@z", b"[`{", b"\xc1b", b"c",
];

/// Names in RDATA: in the zone, out of it, and odd octets.
const TARGETS: [&[u8]; 6] = [
    b"\x02mx\x07partner\x07example\x03net\x00",
    b"\x04mail\x07example\x00",
    b"\x03www\x07example\x00",
    b"\x04host\x05other\x00",
    b"\x03@[z\x07example\x00",
    b"\x00",
];

/// NSEC3 owners: SHA-1 hashes in base32hex, and one that is not a hash.
const HASHES: [&[u8]; 4] = [
    b"0p9mhaveqvm6t7vbl5lop2u3t2rp3tom",
    b"35mthgpgcu1qg68fab165klnsnk3dpvl",
    b"gjeqe526plbf1g8mklp59enfd789njgi",
    b"not-a-hash",
];

/// `name` with each ASCII letter's case flipped where the input says.
fn spell(inp: &mut Input<'_>, name: &[u8]) -> WireName {
    let mask = inp.u8();
    if mask & 0x80 == 0 {
        return name.to_vec();
    }
    let mut out = name.to_vec();
    let mut bit = 0;
    for c in out.iter_mut() {
        if c.is_ascii_alphabetic() {
            if mask & (1 << (bit % 7)) != 0 {
                *c ^= 0x20;
            }
            bit += 1;
        }
    }
    out
}

fn lower(name: &[u8]) -> WireName {
    // Length octets are at most 63, below 'A': lowercasing the whole wire
    // form touches only the labels' letters.
    name.to_ascii_lowercase()
}

/// An owner in the zone, up to three labels below the origin, or a name
/// of the NSEC3 chain.
fn owner(inp: &mut Input<'_>) -> WireName {
    let shape = inp.u8();
    let mut name = Vec::new();
    match shape % 16 {
        0 | 1 => {}
        2 => {
            let h = inp.pick(&HASHES);
            name.push(h.len() as u8);
            name.extend_from_slice(h);
        }
        _ => {
            for _ in 0..1 + inp.below(3) {
                let l = inp.pick(&LABELS);
                name.push(l.len() as u8);
                name.extend_from_slice(l);
            }
        }
    }
    name.extend_from_slice(ORIGIN);
    spell(inp, &name)
}

fn target(inp: &mut Input<'_>) -> WireName {
    let t = inp.pick(&TARGETS);
    spell(inp, t)
}

/// A record's data, structured: which octets are names is known here.
#[derive(Debug, Clone)]
enum Data {
    A([u8; 4]),
    Txt(Vec<u8>),
    /// NS, CNAME, PTR, DNAME, MB, MG, MR: one name.
    Name(u16, WireName),
    /// MX, AFSDB, RT, KX: preference, name.
    PrefName(u16, u16, WireName),
    /// MINFO, RP: two names.
    TwoNames(u16, WireName, WireName),
    Srv(u16, u16, u16, WireName),
    /// Order, preference, flags, replacement.
    Naptr(u16, u16, Vec<u8>, WireName),
    /// Next name (its case kept, RFC 6840 §5.1), type bitmap.
    Nsec(WireName, Vec<u8>),
    /// Type covered, expiration, signer.
    Rrsig(u16, u32, WireName),
    /// Iterations, flags, next hash (RFC 5155 §3).
    Nsec3(u16, u8, [u8; 20]),
    /// Iterations, flags.
    Nsec3Param(u16, u8),
    /// Types whose RDATA holds no name, any octets: compared exactly.
    Opaque(u16, Vec<u8>),
}

impl Data {
    fn rtype(&self) -> u16 {
        match self {
            Data::A(_) => 1,
            Data::Txt(_) => 16,
            Data::Name(t, _) | Data::PrefName(t, ..) | Data::TwoNames(t, ..) => *t,
            Data::Srv(..) => 33,
            Data::Naptr(..) => 35,
            Data::Nsec(..) => 47,
            Data::Rrsig(..) => 46,
            Data::Nsec3(..) => 50,
            Data::Nsec3Param(..) => 51,
            Data::Opaque(t, _) => *t,
        }
    }

    /// The RDATA in wire form, names as spelled (or all lowercase for the
    /// identity, where the type's names compare without case).
    fn wire(&self, canonical: bool) -> Vec<u8> {
        let n = |name: &WireName| if canonical { lower(name) } else { name.clone() };
        match self {
            Data::A(a) => a.to_vec(),
            Data::Txt(t) => {
                let mut w = vec![t.len() as u8];
                w.extend_from_slice(t);
                w
            }
            Data::Name(_, x) => n(x),
            Data::PrefName(_, p, x) => [p.to_be_bytes().to_vec(), n(x)].concat(),
            Data::TwoNames(_, x, y) => [n(x), n(y)].concat(),
            Data::Srv(a, b, c, x) => [
                a.to_be_bytes().to_vec(),
                b.to_be_bytes().to_vec(),
                c.to_be_bytes().to_vec(),
                n(x),
            ]
            .concat(),
            Data::Naptr(o, p, f, x) => {
                let mut w = [o.to_be_bytes(), p.to_be_bytes()].concat();
                w.push(f.len() as u8);
                w.extend_from_slice(f);
                w.extend_from_slice(&[0, 0]);
                w.extend_from_slice(&n(x));
                w
            }
            // NSEC's next name keeps its case in the identity.
            Data::Nsec(x, bitmap) => [x.clone(), bitmap.clone()].concat(),
            Data::Rrsig(t, e, x) => {
                let mut w = t.to_be_bytes().to_vec();
                w.extend_from_slice(&[8, 1, 0, 0, 0x0e, 0x10]);
                w.extend_from_slice(&e.to_be_bytes());
                w.extend_from_slice(&e.wrapping_sub(86400).to_be_bytes());
                w.extend_from_slice(&[0x30, 0x39]);
                w.extend_from_slice(&n(x));
                w.extend_from_slice(b"signature");
                w
            }
            Data::Nsec3(iterations, flags, next) => {
                let mut w = vec![1, *flags];
                w.extend_from_slice(&iterations.to_be_bytes());
                w.push(0);
                w.push(20);
                w.extend_from_slice(next);
                w.extend_from_slice(&[0, 1, 0x40]);
                w
            }
            Data::Nsec3Param(iterations, flags) => {
                let mut w = vec![1, *flags];
                w.extend_from_slice(&iterations.to_be_bytes());
                w.push(0);
                w
            }
            Data::Opaque(_, d) => d.clone(),
        }
    }

    /// The same record with its names spelled anew (for NSEC's next name,
    /// another record).
    fn respelled(&self, inp: &mut Input<'_>) -> Data {
        let mut d = self.clone();
        match &mut d {
            Data::Name(_, x)
            | Data::PrefName(_, _, x)
            | Data::Srv(_, _, _, x)
            | Data::Naptr(_, _, _, x)
            | Data::Nsec(x, _)
            | Data::Rrsig(_, _, x) => *x = spell(inp, x),
            Data::TwoNames(_, x, y) => {
                *x = spell(inp, x);
                *y = spell(inp, y);
            }
            _ => {}
        }
        d
    }
}

/// A number whose octets may fall where letters do.
fn letterish(inp: &mut Input<'_>) -> u16 {
    let b = inp.u8();
    let hi = [0x41, 0x5A, 0x61, 0x7A, 0x40, 0x5B][b as usize % 6];
    match b >> 4 {
        0..=5 => hi,
        6..=11 => 0x4100 | hi,
        _ => inp.u16(),
    }
}

fn data(inp: &mut Input<'_>) -> Data {
    match inp.u8() % 24 {
        0..=3 => Data::A([192, 0, 2, inp.u8() % 6]),
        4 | 5 => {
            let t: [&[u8]; 5] = [b"Hello", b"hello", b"HELLO", b"disaster", b"@["];
            Data::Txt(inp.pick(&t).to_vec())
        }
        6 | 7 => Data::PrefName(inp.pick(&[15, 15, 18, 21, 36]), letterish(inp), target(inp)),
        8 => Data::Srv(letterish(inp), letterish(inp), letterish(inp), target(inp)),
        9 => {
            let f: [&[u8]; 4] = [b"S", b"s", b"A", b"a"];
            Data::Naptr(
                letterish(inp),
                letterish(inp),
                inp.pick(&f).to_vec(),
                target(inp),
            )
        }
        10 | 11 => Data::Name(2, target(inp)),
        12 => Data::Name(5, target(inp)),
        13 => Data::Name(39, target(inp)),
        14 => Data::Name(inp.pick(&[12, 7, 8, 9]), target(inp)),
        15 => Data::TwoNames(inp.pick(&[14, 17]), target(inp), target(inp)),
        16 => {
            let bitmaps: [&[u8]; 3] = [&[0, 1, 0x40], &[0, 6, 0x62, 0, 0, 0, 0, 3], &[]];
            Data::Nsec(target(inp), inp.pick(&bitmaps).to_vec())
        }
        17 | 18 => Data::Rrsig(
            inp.pick(&[1, 2, 6, 15, 16, 47, 50, 0]),
            1_800_000_000u32.wrapping_add(u32::from(inp.u8() % 5) * 86400),
            spell(inp, ORIGIN),
        ),
        19 => {
            let mut next = [0u8; 20];
            next[0] = inp.u8() % 4;
            Data::Nsec3(u16::from(inp.u8() % 2), inp.u8() % 2, next)
        }
        20 => Data::Nsec3Param(u16::from(inp.u8() % 2), inp.u8() % 2),
        21 => Data::Opaque(inp.pick(&[13, 99, 65280, 65534]), inp.bytes(8)),
        22 => Data::Opaque(inp.pick(&[1, 16, 28, 44]), inp.bytes(20)),
        _ => Data::Txt(inp.bytes(6)),
    }
}

#[derive(Debug, Clone)]
struct Rec {
    owner: WireName,
    ttl: u32,
    data: Data,
}

/// Owner (lowercase), type, canonical RDATA.
type Key = (WireName, u16, Vec<u8>);

impl Rec {
    fn key(&self) -> Key {
        (lower(&self.owner), self.data.rtype(), self.data.wire(true))
    }

    fn push_to(&self, raw: &mut RawRecords, class: u16) {
        raw.push(
            &self.owner,
            self.data.rtype(),
            class,
            self.ttl,
            &self.data.wire(false),
        );
    }
}

fn ttl(inp: &mut Input<'_>) -> u32 {
    [60, 300, 3600, 0, 7, 0x7fff_ffff][inp.below(6)]
}

fn record(inp: &mut Input<'_>) -> Rec {
    Rec {
        owner: owner(inp),
        ttl: ttl(inp),
        data: data(inp),
    }
}

fn soa(serial: u32) -> Record {
    let mut w = Vec::new();
    w.extend_from_slice(b"\x03ns1\x07example\x00\x01h\x07example\x00");
    for x in [serial, 3600, 600, 86400, 300] {
        w.extend_from_slice(&x.to_be_bytes());
    }
    outpost::rr::record(origin(), RecordType::SOA, 3600, &w).unwrap()
}

fn origin() -> Name {
    Name::from_ascii("example.").unwrap()
}

/// A zone as the model keeps it: its records by identity.
#[derive(Debug, Clone, Default)]
struct Model {
    records: BTreeMap<Key, Rec>,
}

impl Model {
    fn build(&self, serial: u32, limits: &Limits) -> Result<Zone, ZoneError> {
        let mut raw: RawRecords = std::iter::once(&soa(serial)).collect();
        for r in self.records.values() {
            r.push_to(&mut raw, 1);
        }
        Zone::build_raw(&origin(), raw, limits)
    }

    fn types_at(&self, owner: &[u8]) -> Vec<u16> {
        let o = lower(owner);
        self.records
            .keys()
            .filter(|k| k.0 == o)
            .map(|k| k.1)
            .collect()
    }

    /// Whether `r` keeps a zone buildable (CNAME alone, one CNAME, one
    /// DNAME); limits aside.
    fn takes(&self, r: &Rec) -> bool {
        let here = self.types_at(&r.owner);
        match r.data.rtype() {
            5 => lower(&r.owner) != ORIGIN && here.iter().all(|&t| t == 46 || t == 47),
            39 => !here.contains(&39) && !here.contains(&5),
            46 | 47 => true,
            _ => !here.contains(&5),
        }
    }
}

/// One record of a step, and what the model makes of it.
#[derive(Debug, Clone)]
struct Change {
    rec: Rec,
    /// Not IN, or not in the zone: the step fails.
    bad: Option<&'static str>,
}

fn oddity(inp: &mut Input<'_>, rec: &mut Rec) -> (Option<&'static str>, u16) {
    match inp.u8() {
        0..=249 => (None, 1),
        250..=252 => {
            rec.owner = b"\x01a\x07example\x03net\x00".to_vec();
            (Some("out of zone"), 1)
        }
        253 => {
            rec.owner = b"\x07exampl\x00".to_vec();
            (Some("out of zone"), 1)
        }
        _ => (Some("wrong class"), 3),
    }
}

#[derive(Debug, Clone)]
struct StepPlan {
    deleted: Vec<(Change, u16)>,
    added: Vec<(Change, u16)>,
}

/// How the model reads a step: the error it must give, if any.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Missing,
    OutOfZone,
    WrongClass,
}

fn plan_step(inp: &mut Input<'_>, m: &Model) -> StepPlan {
    let existing: Vec<&Rec> = m.records.values().collect();
    let mut deleted = Vec::new();
    for _ in 0..inp.below(6) {
        match inp.u8() % 8 {
            // A record of the copy, respelled, with any TTL.
            0..=4 if !existing.is_empty() => {
                let r = existing[inp.below(existing.len())];
                let mut rec = Rec {
                    owner: spell(inp, &r.owner),
                    ttl: ttl(inp),
                    data: r.data.respelled(inp),
                };
                let (bad, class) = oddity(inp, &mut rec);
                deleted.push((Change { rec, bad }, class));
            }
            // A whole RRset.
            5 if !existing.is_empty() => {
                let r = existing[inp.below(existing.len())];
                let k = r.key();
                for x in existing.iter().filter(|x| {
                    let xk = x.key();
                    xk.0 == k.0 && xk.1 == k.1
                }) {
                    let rec = (*x).clone();
                    deleted.push((Change { rec, bad: None }, 1));
                }
            }
            // The same record twice.
            6 if !deleted.is_empty() => {
                let again = deleted[inp.below(deleted.len())].clone();
                deleted.push(again);
            }
            // Whatever the input says: most likely not in the copy.
            _ => {
                let mut rec = record(inp);
                let (bad, class) = oddity(inp, &mut rec);
                deleted.push((Change { rec, bad }, class));
            }
        }
    }
    let mut added = Vec::new();
    for _ in 0..inp.below(7) {
        match inp.u8() % 8 {
            // A deleted record back, with another TTL or spelling.
            0 if !deleted.is_empty() => {
                let (c, class) = &deleted[inp.below(deleted.len())];
                let mut rec = c.rec.clone();
                rec.ttl = ttl(inp);
                rec.owner = spell(inp, &rec.owner);
                added.push((Change { rec, bad: c.bad }, *class));
            }
            // A record of the copy again: its TTL or spelling changes.
            1 if !existing.is_empty() => {
                let r = existing[inp.below(existing.len())];
                let rec = Rec {
                    owner: spell(inp, &r.owner),
                    ttl: ttl(inp),
                    data: r.data.respelled(inp),
                };
                added.push((Change { rec, bad: None }, 1));
            }
            // A new record that keeps the zone valid, when it does.
            2..=5 => {
                let rec = record(inp);
                if m.takes(&rec) {
                    added.push((Change { rec, bad: None }, 1));
                }
            }
            // Anything.
            _ => {
                let mut rec = record(inp);
                let (bad, class) = oddity(inp, &mut rec);
                added.push((Change { rec, bad }, class));
            }
        }
    }
    StepPlan { deleted, added }
}

/// The model after `step` (index `i`), or the error the step must give.
fn run_step(m: &mut Model, step: &StepPlan) -> Result<(), Expect> {
    let bad = |c: &Change| match c.bad {
        Some("wrong class") => Err(Expect::WrongClass),
        Some(_) => Err(Expect::OutOfZone),
        None => Ok(()),
    };
    for (c, _) in &step.deleted {
        bad(c)?;
        if m.records.remove(&c.rec.key()).is_none() {
            return Err(Expect::Missing);
        }
    }
    for (c, _) in &step.added {
        bad(c)?;
        m.records.insert(c.rec.key(), c.rec.clone());
    }
    Ok(())
}

fn diff_of(step: &StepPlan, from: u32, to: u32) -> IxfrDiff {
    let mut d = IxfrDiff::new(soa(from), soa(to));
    for (c, class) in &step.deleted {
        c.rec.push_to(&mut d.deleted, *class);
    }
    for (c, class) in &step.added {
        c.rec.push_to(&mut d.added, *class);
    }
    d
}

/// What `ixfr::apply` gave must be what the model says.
fn check(
    got: Result<Zone, IxfrError>,
    model: Result<(), (usize, Expect)>,
    built: impl FnOnce() -> Result<Zone, ZoneError>,
    context: &dyn Fn() -> String,
) -> Option<Zone> {
    match (got, model) {
        (Err(e), Err((step, want))) => {
            let ok = match (&e, &want) {
                (
                    IxfrError::Apply(ApplyError::MissingDeletion { step: s, .. }),
                    Expect::Missing,
                ) => *s == step,
                (
                    IxfrError::Apply(ApplyError::Zone(ZoneError::OutOfZone { .. })),
                    Expect::OutOfZone,
                ) => true,
                (
                    IxfrError::Apply(ApplyError::Zone(ZoneError::WrongClass { .. })),
                    Expect::WrongClass,
                ) => true,
                _ => false,
            };
            assert!(
                ok,
                "apply failed with {e:?}, the model says {want:?} at step {step}\n{}",
                context()
            );
            None
        }
        (Ok(_), Err((step, want))) => {
            panic!(
                "apply succeeded, the model says {want:?} at step {step}\n{}",
                context()
            )
        }
        (got, Ok(())) => match (got, built()) {
            (Ok(z), Ok(b)) => {
                if let Some(d) = z.structure().difference(&b.structure()) {
                    panic!("{d}\n{}", context());
                }
                Some(z)
            }
            (Err(e), Ok(_)) => panic!("apply refused what a build takes: {e}\n{}", context()),
            (Ok(_), Err(e)) => panic!("apply took what a build refuses ({e})\n{}", context()),
            (Err(e), Err(_)) => {
                // A clean refusal, and not one the model rules out.
                let _ = e.to_string();
                assert!(
                    !matches!(e, IxfrError::Apply(ApplyError::MissingDeletion { .. })),
                    "apply says {e}, the model has every deletion\n{}",
                    context()
                );
                None
            }
        },
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut inp = Input { data: bytes, at: 0 };
    let limits = match inp.u8() % 8 {
        0 => Limits {
            max_records: 8 + inp.below(32),
            max_rrset_records: 1 + inp.below(4),
            max_types_per_name: 1 + inp.below(5),
            ..Limits::default()
        },
        _ => Limits::default(),
    };
    let mut model = Model::default();
    let ns = Rec {
        owner: ORIGIN.to_vec(),
        ttl: 3600,
        data: Data::Name(2, b"\x03ns1\x07example\x00".to_vec()),
    };
    model.records.insert(ns.key(), ns);
    let flags = inp.u8();
    if flags & 1 != 0 {
        // Signed: the SOA's signature, and an NSEC or NSEC3 chain head.
        let apex: Vec<Rec> = [
            Data::Rrsig(6, 1_800_000_000, ORIGIN.to_vec()),
            if flags & 2 != 0 {
                Data::Nsec(b"\x01a\x07example\x00".to_vec(), vec![0, 1, 0x40])
            } else {
                Data::Nsec3Param(u16::from(flags >> 7), 0)
            },
        ]
        .into_iter()
        .map(|data| Rec {
            owner: ORIGIN.to_vec(),
            ttl: 3600,
            data,
        })
        .collect();
        for r in apex {
            model.records.insert(r.key(), r);
        }
    }
    for _ in 0..inp.below(48) {
        let r = record(&mut inp);
        if model.takes(&r) {
            model.records.insert(r.key(), r);
        }
    }
    let Ok(zone) = model.build(1, &limits) else {
        return;
    };
    let first = model.clone();

    let mut plans = Vec::new();
    let mut serials = vec![1u32];
    let mut expect: Result<(), (usize, Expect)> = Ok(());
    let mut states = Vec::new();
    for i in 0..1 + inp.below(4) {
        if inp.ended() && i > 0 {
            break;
        }
        let plan = plan_step(&mut inp, &model);
        if expect.is_ok() {
            if let Err(e) = run_step(&mut model, &plan) {
                expect = Err((i, e));
            }
        }
        // Serials move on, now and then across the wrap.
        let last = *serials.last().unwrap();
        serials.push(if inp.u8() == 0xff {
            last.wrapping_add(0x7fff_ffff)
        } else {
            last + 1
        });
        states.push((expect.clone(), model.clone()));
        plans.push(plan);
    }
    let diffs: Vec<IxfrDiff> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| diff_of(p, serials[i], serials[i + 1]))
        .collect();
    let last = *serials.last().unwrap();
    let context = || format!("limits {limits:?}\nfrom {first:#?}\nsteps {plans:#?}");

    // Every step in one transfer.
    let got = ixfr::apply(&zone, &diffs, last, &limits);
    let at_once = check(got, expect.clone(), || model.build(last, &limits), &context);

    // One step a transfer, as long as each applies.
    let mut current = zone;
    for (i, d) in diffs.iter().enumerate() {
        let (e, m) = &states[i];
        let e = match e {
            Err((s, x)) if *s == i => Err((0, x.clone())),
            Err(_) => break,
            Ok(()) => Ok(()),
        };
        let serial = serials[i + 1];
        let got = ixfr::apply(&current, std::slice::from_ref(d), serial, &limits);
        let ctx = || format!("one step at a time, step {i}\n{}", context());
        match check(got, e, || m.build(serial, &limits), &ctx) {
            Some(z) => current = z,
            None => break,
        }
    }

    // The difference between two snapshots applies to give the second.
    if let Some(new) = at_once {
        let start = first.build(1, &limits).unwrap();
        let d = ixfr::diff_zones(&start, &new);
        let again = ixfr::apply(&start, &[d], last, &limits).unwrap_or_else(|e| {
            panic!(
                "diff_zones gave a difference that does not apply: {e}\n{}",
                context()
            )
        });
        if let Some(diff) = again.structure().difference(&new.structure()) {
            panic!("diff_zones then apply: {diff}\n{}", context());
        }
    }
});
