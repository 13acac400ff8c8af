//! Applying differences, against a model: random zones and random changes,
//! and the snapshot [`Zone::apply`] makes must equal the one a build from
//! scratch makes, node for node (records, empty non-terminals, cuts and
//! what they hide, child counts, the NSEC chain).
//!
//! The model keeps records as structured values and knows record identity
//! from the structure (which fields are names), not from wire form: it
//! does not share [`crate::canonical`]'s code. Numbers are drawn from 0x41
//! to 0x5A and 0x61 to 0x7A, where a byte-level case fold would make two
//! records one, and names and TXT strings come in several spellings.
//!
//! Every test logs its seed; `OUTPOST_PROPTEST_SEED` replays one.

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, Record, RecordType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::xfr::interp::IxfrDiff;
use crate::xfr::ixfr;
use crate::zone::Limits;

/// A record's data, as the model sees it.
#[derive(Debug, Clone)]
enum Data {
    A([u8; 4]),
    Txt(String),
    Mx(u16, String),
    Srv(u16, u16, u16, String),
    Naptr(u16, u16, String, String),
    Ns(String),
    Cname(String),
    Dname(String),
    Nsec(String),
    /// Type covered, expiration, signer.
    Rrsig(u16, u32, String),
}

impl Data {
    fn rtype(&self) -> u16 {
        match self {
            Data::A(_) => 1,
            Data::Txt(_) => 16,
            Data::Mx(..) => 15,
            Data::Srv(..) => 33,
            Data::Naptr(..) => 35,
            Data::Ns(_) => 2,
            Data::Cname(_) => 5,
            Data::Dname(_) => 39,
            Data::Nsec(_) => 47,
            Data::Rrsig(..) => 46,
        }
    }

    /// Identity: the fields that are names compare without case; NSEC's
    /// next name keeps its case (RFC 6840 §5.1).
    fn identity(&self) -> String {
        match self {
            Data::A(a) => format!("A {a:?}"),
            Data::Txt(t) => format!("TXT {t}"),
            Data::Mx(p, n) => format!("MX {p} {}", n.to_lowercase()),
            Data::Srv(a, b, c, n) => format!("SRV {a} {b} {c} {}", n.to_lowercase()),
            Data::Naptr(o, p, f, r) => format!("NAPTR {o} {p} {f} {}", r.to_lowercase()),
            Data::Ns(n) => format!("NS {}", n.to_lowercase()),
            Data::Cname(n) => format!("CNAME {}", n.to_lowercase()),
            Data::Dname(n) => format!("DNAME {}", n.to_lowercase()),
            Data::Nsec(n) => format!("NSEC {n}"),
            Data::Rrsig(t, e, n) => format!("RRSIG {t} {e} {}", n.to_lowercase()),
        }
    }

    fn wire(&self) -> Vec<u8> {
        let name = |n: &str| {
            let mut w = Vec::new();
            crate::wire::put_name(&mut w, &Name::from_ascii(n).unwrap());
            w
        };
        match self {
            Data::A(a) => a.to_vec(),
            Data::Txt(t) => {
                let mut w = vec![t.len() as u8];
                w.extend_from_slice(t.as_bytes());
                w
            }
            Data::Mx(p, n) => [p.to_be_bytes().to_vec(), name(n)].concat(),
            Data::Srv(a, b, c, n) => [
                a.to_be_bytes().to_vec(),
                b.to_be_bytes().to_vec(),
                c.to_be_bytes().to_vec(),
                name(n),
            ]
            .concat(),
            Data::Naptr(o, p, f, r) => {
                let mut w = [o.to_be_bytes(), p.to_be_bytes()].concat();
                w.push(f.len() as u8);
                w.extend_from_slice(f.as_bytes());
                w.extend_from_slice(&[0, 0]);
                w.extend_from_slice(&name(r));
                w
            }
            Data::Ns(n) | Data::Cname(n) | Data::Dname(n) => name(n),
            // The type bitmap: A and RRSIG, enough for the chain.
            Data::Nsec(n) => [name(n), vec![0, 1, 0x40]].concat(),
            Data::Rrsig(t, e, n) => {
                let mut w = t.to_be_bytes().to_vec();
                w.extend_from_slice(&[8, 1, 0, 0, 0x0e, 0x10]);
                w.extend_from_slice(&e.to_be_bytes());
                w.extend_from_slice(&(e - 86400).to_be_bytes());
                w.extend_from_slice(&[0x30, 0x39]);
                w.extend_from_slice(&name(n));
                w.extend_from_slice(b"signature");
                w
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Rec {
    owner: String,
    ttl: u32,
    data: Data,
}

impl Rec {
    fn key(&self) -> (String, u16, String) {
        (
            self.owner.to_lowercase(),
            self.data.rtype(),
            self.data.identity(),
        )
    }
}

const ORIGIN: &str = "example.";

/// A zone as the model keeps it: records by identity, and a serial.
#[derive(Debug, Clone)]
struct Model {
    serial: u32,
    records: BTreeMap<(String, u16, String), Rec>,
}

fn soa(serial: u32) -> Record {
    let mut w = Vec::new();
    crate::wire::put_name(&mut w, &Name::from_ascii("ns1.example.").unwrap());
    crate::wire::put_name(&mut w, &Name::from_ascii("h.example.").unwrap());
    for x in [serial, 3600, 600, 86400, 300] {
        w.extend_from_slice(&x.to_be_bytes());
    }
    crate::rr::record(Name::from_ascii(ORIGIN).unwrap(), RecordType::SOA, 3600, &w).unwrap()
}

fn owner_wire(owner: &str) -> Vec<u8> {
    let mut w = Vec::new();
    crate::wire::put_name(&mut w, &Name::from_ascii(owner).unwrap());
    w
}

fn raw_of<'a>(recs: impl IntoIterator<Item = &'a Rec>) -> RawRecords {
    let mut raw = RawRecords::new();
    for r in recs {
        raw.push(
            &owner_wire(&r.owner),
            r.data.rtype(),
            1,
            r.ttl,
            &r.data.wire(),
        );
    }
    raw
}

impl Model {
    fn build(&self) -> Result<Zone, ZoneError> {
        let mut raw: RawRecords = std::iter::once(&soa(self.serial)).collect();
        for r in self.records.values() {
            raw.push(
                &owner_wire(&r.owner),
                r.data.rtype(),
                1,
                r.ttl,
                &r.data.wire(),
            );
        }
        Zone::build_raw(&Name::from_ascii(ORIGIN).unwrap(), raw, &Limits::default())
    }

    fn has(&self, owner: &str, rtype: u16) -> bool {
        self.records
            .keys()
            .any(|(o, t, _)| *o == owner.to_lowercase() && *t == rtype)
    }

    fn holds_other_than(&self, owner: &str, allowed: &[u16]) -> bool {
        self.records
            .keys()
            .any(|(o, t, _)| *o == owner.to_lowercase() && !allowed.contains(t))
    }
}

/// Names of several depths (empty non-terminals), each in several
/// spellings; `sub` is where delegations go.
const LABELS: [&str; 8] = ["a", "b", "www", "mail", "sub", "x", "deep", "c"];

fn spell(rng: &mut StdRng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.random_bool(0.3) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn random_owner(rng: &mut StdRng) -> String {
    if rng.random_bool(0.1) {
        return spell(rng, ORIGIN);
    }
    let depth = rng.random_range(1..=3);
    let mut labels: Vec<String> = (0..depth)
        .map(|_| LABELS[rng.random_range(0..LABELS.len())].to_string())
        .collect();
    labels.push("example".into());
    let name = labels.join(".") + ".";
    spell(rng, &name)
}

/// A number whose octets fall where letters do.
fn letterish(rng: &mut StdRng) -> u16 {
    let hi = if rng.random_bool(0.5) {
        rng.random_range(0x41..=0x5A)
    } else {
        rng.random_range(0x61..=0x7A)
    };
    let lo = if rng.random_bool(0.5) { 0x41 } else { 0x61 };
    if rng.random_bool(0.5) {
        hi
    } else {
        (lo << 8) | hi
    }
}

fn target(rng: &mut StdRng) -> String {
    let t = [
        "mx.partner.example.net.",
        "mail.example.",
        "www.example.",
        "host.other.",
    ];
    let pick = t[rng.random_range(0..t.len())];
    spell(rng, pick)
}

fn random_data(rng: &mut StdRng) -> Data {
    match rng.random_range(0..12) {
        0..=2 => Data::A([192, 0, 2, rng.random_range(1..6)]),
        3 | 4 => {
            let t = ["Hello", "hello", "HELLO", "disaster"];
            Data::Txt(t[rng.random_range(0..t.len())].into())
        }
        5 | 6 => Data::Mx(letterish(rng), target(rng)),
        7 => Data::Srv(letterish(rng), letterish(rng), letterish(rng), target(rng)),
        8 => {
            let f = ["S", "s", "A", "a"];
            Data::Naptr(
                letterish(rng),
                letterish(rng),
                f[rng.random_range(0..f.len())].into(),
                target(rng),
            )
        }
        9 => Data::Ns(target(rng)),
        10 => Data::Cname(target(rng)),
        _ => match rng.random_range(0..3) {
            0 => Data::Dname(target(rng)),
            1 => Data::Nsec(target(rng)),
            _ => Data::Rrsig(
                [1, 15, 16][rng.random_range(0..3)],
                1_800_000_000 + rng.random_range(0..5) * 86400,
                spell(rng, ORIGIN),
            ),
        },
    }
}

/// A record that keeps the zone valid when added to `m` (CNAME alone at
/// its name, one CNAME, one DNAME, NS at the apex kept), or `None`.
fn random_addition(rng: &mut StdRng, m: &Model) -> Option<Rec> {
    let owner = random_owner(rng);
    let data = random_data(rng);
    let apex = owner.eq_ignore_ascii_case(ORIGIN);
    let ok = match &data {
        Data::Cname(_) => !apex && !m.holds_other_than(&owner, &[46, 47]),
        Data::Dname(_) => !m.has(&owner, 39) && !m.has(&owner, 5),
        _ => !m.has(&owner, 5),
    };
    let ttl = [60, 300, 3600][rng.random_range(0..3)];
    ok.then_some(Rec { owner, ttl, data })
}

fn random_zone(rng: &mut StdRng) -> Model {
    let mut m = Model {
        serial: 1,
        records: BTreeMap::new(),
    };
    let ns = Rec {
        owner: ORIGIN.into(),
        ttl: 3600,
        data: Data::Ns("ns1.example.".into()),
    };
    m.records.insert(ns.key(), ns);
    // Half the zones are signed: the apex SOA's RRSIG and an NSEC chain
    // head make the snapshot keep DNSSEC indexes.
    if rng.random_bool(0.5) {
        for data in [
            Data::Rrsig(
                6,
                1_800_000_000 + rng.random_range(0..5) * 86400,
                ORIGIN.into(),
            ),
            Data::Nsec("a.example.".into()),
        ] {
            let r = Rec {
                owner: ORIGIN.into(),
                ttl: 3600,
                data,
            };
            m.records.insert(r.key(), r);
        }
    }
    for _ in 0..rng.random_range(5..40) {
        if let Some(r) = random_addition(rng, &m) {
            m.records.insert(r.key(), r);
        }
    }
    m
}

/// A random next version of `m`, serial one up.
fn mutate(rng: &mut StdRng, m: &Model) -> Model {
    let mut n = m.clone();
    n.serial += 1;
    for _ in 0..rng.random_range(1..8) {
        let keys: Vec<_> = n.records.keys().cloned().collect();
        let pick = |rng: &mut StdRng| keys[rng.random_range(0..keys.len())].clone();
        let apex_ns = |k: &(String, u16, String)| k.0 == ORIGIN && k.1 == 2;
        match rng.random_range(0..9) {
            // One record goes.
            0 | 1 => {
                let k = pick(rng);
                if !apex_ns(&k) || n.records.keys().filter(|k| apex_ns(k)).count() > 1 {
                    n.records.remove(&k);
                }
            }
            // A whole RRset goes.
            2 => {
                let (o, t, _) = pick(rng);
                n.records
                    .retain(|k, _| !(k.0 == o && k.1 == t) || (o == ORIGIN && t == 2));
            }
            // A whole name goes (its children stay).
            3 => {
                let (o, _, _) = pick(rng);
                if o != ORIGIN {
                    n.records.retain(|k, _| k.0 != o);
                }
            }
            // An RRset's TTL changes, nothing else.
            4 => {
                let (o, t, _) = pick(rng);
                let ttl = [60, 300, 3600, 86400][rng.random_range(0..4)];
                for (k, r) in n.records.iter_mut() {
                    if k.0 == o && k.1 == t {
                        r.ttl = ttl;
                    }
                }
            }
            // A name inside some RDATA is spelled anew: the same record.
            5 => {
                let k = pick(rng);
                let r = n.records.get_mut(&k).unwrap();
                r.data = match r.data.clone() {
                    Data::Mx(p, t) => Data::Mx(p, spell(rng, &t.to_lowercase())),
                    Data::Ns(t) => Data::Ns(spell(rng, &t.to_lowercase())),
                    other => other,
                };
            }
            // A TXT changes case only: another record.
            6 => {
                let k = pick(rng);
                if let Data::Txt(t) = &n.records[&k].data {
                    let flipped: String = t
                        .chars()
                        .map(|c| {
                            if c.is_ascii_uppercase() {
                                c.to_ascii_lowercase()
                            } else {
                                c.to_ascii_uppercase()
                            }
                        })
                        .collect();
                    let mut r = n.records.remove(&k).unwrap();
                    r.data = Data::Txt(flipped);
                    n.records.insert(r.key(), r);
                }
            }
            // Records come (new names, new depths, delegations).
            _ => {
                for _ in 0..rng.random_range(1..4) {
                    if let Some(r) = random_addition(rng, &n) {
                        n.records.insert(r.key(), r);
                    }
                }
            }
        }
    }
    n
}

/// Asserts two snapshots agree, naming the first name where they do not
/// (the comparison is [`Zone::structure`]'s, which the fuzz target shares).
fn assert_same(got: &Zone, want: &Zone, context: &dyn Fn() -> String) {
    if let Some(d) = got.structure().difference(&want.structure()) {
        panic!("{d}\n{}", context());
    }
}

fn seed() -> u64 {
    let seed = std::env::var("OUTPOST_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("OUTPOST_PROPTEST_SEED={seed}");
    seed
}

fn diff_to(a: &Zone, b: &Zone) -> IxfrDiff {
    ixfr::diff_zones(a, b)
}

/// `apply(diff(a, b))` to `a` gives `b`, over chains of versions, one
/// difference at a time and several in one transfer.
#[test]
fn applying_the_difference_gives_the_new_zone() {
    let mut rng = StdRng::seed_from_u64(seed());
    let limits = Limits::default();
    let mut compared = 0;
    let mut signed = 0;
    for _ in 0..200 {
        let mut model = random_zone(&mut rng);
        let Ok(mut current) = model.build() else {
            continue;
        };
        let start = model.build().unwrap();
        let mut diffs = Vec::new();
        for _ in 0..15 {
            let next = mutate(&mut rng, &model);
            let Ok(expected) = next.build() else {
                continue;
            };
            let d = diff_to(&current, &expected);
            let applied = ixfr::apply(&current, std::slice::from_ref(&d), next.serial, &limits)
                .unwrap_or_else(|e| panic!("{e}\nfrom {:?}\nto {:?}", model, next));
            assert_same(&applied, &expected, &|| {
                format!("from {model:?}\nto {next:?}")
            });
            compared += 1;
            signed += usize::from(
                expected
                    .signed
                    .as_ref()
                    .is_some_and(|s| !s.chain_view(&expected).is_empty()),
            );
            diffs.push(d);
            current = applied;
            model = next;
        }
        // The whole chain as one IXFR, from the first version.
        if !diffs.is_empty() {
            let last = ixfr::soa_serial(&diffs.last().unwrap().new_soa).unwrap();
            let at_once = ixfr::apply(&start, &diffs, last, &limits).unwrap();
            assert_same(&at_once, &current, &|| "the chain at once".into());
        }
    }
    assert!(compared > 1000, "only {compared} comparisons");
    assert!(signed > 200, "only {signed} with an NSEC chain");
}

/// Differences as a primary may send them (deletions spelled otherwise,
/// records deleted and added back in later steps, additions of records
/// already there with another TTL or spelling), against the model's
/// reading of the same steps.
#[test]
fn random_steps_apply_as_the_model_says() {
    let mut rng = StdRng::seed_from_u64(seed());
    let limits = Limits::default();
    let mut compared = 0;
    for _ in 0..150 {
        let mut model = random_zone(&mut rng);
        let Ok(zone) = model.build() else { continue };
        let mut raws = Vec::new();
        let first = model.clone();
        for _ in 0..rng.random_range(1..4) {
            let keys: Vec<_> = model.records.keys().cloned().collect();
            let mut deleted = Vec::new();
            for _ in 0..rng.random_range(0..4) {
                let k = &keys[rng.random_range(0..keys.len())];
                if (k.0 == ORIGIN && k.1 == 2) || deleted.iter().any(|d: &Rec| d.key() == *k) {
                    continue;
                }
                let mut r = model.records[k].clone();
                // The deletion names the record in another spelling, and
                // any TTL: identity ignores both.
                r.owner = spell(&mut rng, &r.owner.to_lowercase());
                r.ttl = 7;
                deleted.push(r);
            }
            for d in &deleted {
                model.records.remove(&d.key());
            }
            let mut added = Vec::new();
            for _ in 0..rng.random_range(0..5) {
                if let Some(r) = random_addition(&mut rng, &model) {
                    model.records.insert(r.key(), r.clone());
                    added.push(r);
                }
            }
            // Re-adding a deleted record with another TTL.
            if let Some(d) = deleted.first()
                && rng.random_bool(0.3)
                && !model.has(&d.owner, 5)
            {
                let mut back = d.clone();
                back.ttl = 42;
                model.records.insert(back.key(), back.clone());
                added.push(back);
            }
            model.serial += 1;
            raws.push((model.serial, raw_of(&deleted), raw_of(&added)));
        }
        let Ok(expected) = model.build() else {
            continue;
        };
        let mut from = first.serial;
        let diffs: Vec<IxfrDiff> = raws
            .into_iter()
            .map(|(to, deleted, added)| {
                let d = IxfrDiff {
                    old_soa: soa(from),
                    new_soa: soa(to),
                    deleted,
                    added,
                };
                from = to;
                d
            })
            .collect();
        let applied = ixfr::apply(&zone, &diffs, model.serial, &limits)
            .unwrap_or_else(|e| panic!("{e}\nfrom {first:?}\nsteps {diffs:?}"));
        assert_same(&applied, &expected, &|| {
            format!("from {first:?}\nsteps {diffs:?}")
        });
        compared += 1;
    }
    assert!(compared > 100, "only {compared} comparisons");
}

/// A one-record change to a big zone copies one chunk of nodes, not the
/// zone, and shares the name index when no name comes or goes.
#[test]
fn a_small_change_shares_the_rest() {
    let mut raw: RawRecords = std::iter::once(&soa(1)).collect();
    raw.push(
        &owner_wire(ORIGIN),
        2,
        1,
        3600,
        &Data::Ns("ns1.example.".into()).wire(),
    );
    for i in 0..20_000u32 {
        let owner = format!("h{i}.example.");
        raw.push(&owner_wire(&owner), 1, 1, 60, &i.to_be_bytes());
    }
    let zone =
        Zone::build_raw(&Name::from_ascii(ORIGIN).unwrap(), raw, &Limits::default()).unwrap();
    let mut d = IxfrDiff::new(soa(1), soa(2));
    d.deleted.push(
        &owner_wire("h777.example."),
        1,
        1,
        60,
        &777u32.to_be_bytes(),
    );
    d.added
        .push(&owner_wire("h777.example."), 1, 1, 60, &[192, 0, 2, 77]);
    let next = ixfr::apply(&zone, &[d], 2, &Limits::default()).unwrap();
    let chunks = zone.nodes.len().div_ceil(super::super::table::CHUNK);
    // The changed name's chunk and the apex's (its SOA) are new.
    assert!(next.nodes.shared_chunks(&zone.nodes) >= chunks - 2);
    assert!(std::sync::Arc::ptr_eq(&next.index, &zone.index));
    assert_eq!(next.record_count(), zone.record_count());
    // A new name copies the index once, and adds its empty non-terminal.
    let mut d = IxfrDiff::new(soa(2), soa(3));
    d.added
        .push(&owner_wire("new.deep.example."), 1, 1, 60, &[192, 0, 2, 1]);
    let third = ixfr::apply(&next, &[d], 3, &Limits::default()).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&third.index, &next.index));
    assert!(
        third
            .node_of(&Name::from_ascii("deep.example.").unwrap())
            .unwrap()
            .is_empty_non_terminal()
    );
    assert_eq!(third.record_count(), zone.record_count() + 1);
}

/// NSEC3 records of two parameter sets: the chain a snapshot serves must
/// not depend on the order its names or records came in (the name index
/// iterates in a random order of its own), or an applied snapshot, which
/// keeps its predecessor's chain, differs from a build of the same records.
/// Found by the `ixfr_apply` fuzz target.
#[test]
fn the_nsec3_chain_does_not_depend_on_record_order() {
    let nsec3 = |iterations: u16| {
        let mut w = vec![1, 0];
        w.extend_from_slice(&iterations.to_be_bytes());
        w.extend_from_slice(&[0, 20]);
        w.extend_from_slice(&[7; 20]);
        w.extend_from_slice(&[0, 1, 0x40]);
        w
    };
    let param = |iterations: u16| {
        let mut w = vec![1, 0];
        w.extend_from_slice(&iterations.to_be_bytes());
        w.push(0);
        w
    };
    let sig = Data::Rrsig(6, 1_800_000_000, ORIGIN.into()).wire();
    let ns = Data::Ns("ns1.example.".into()).wire();
    let zone = |params: &[u16], reversed: bool| {
        let mut recs: Vec<(String, u16, Vec<u8>)> = vec![
            (ORIGIN.into(), 2, ns.clone()),
            (ORIGIN.into(), 46, sig.clone()),
            (
                "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.".into(),
                50,
                nsec3(0),
            ),
            (
                "gjeqe526plbf1g8mklp59enfd789njgi.example.".into(),
                50,
                nsec3(1),
            ),
        ];
        recs.extend(params.iter().map(|&i| (ORIGIN.to_string(), 51, param(i))));
        if reversed {
            recs.reverse();
        }
        let mut raw: RawRecords = std::iter::once(&soa(1)).collect();
        for (owner, rtype, rdata) in &recs {
            raw.push(&owner_wire(owner), *rtype, 1, 3600, rdata);
        }
        Zone::build_raw(&Name::from_ascii(ORIGIN).unwrap(), raw, &Limits::default()).unwrap()
    };
    for params in [&[][..], &[0, 1], &[1, 0]] {
        let first = zone(params, false);
        let chain = first.signed.as_ref().unwrap().chain_view(&first);
        assert_eq!(
            chain.len(),
            1,
            "one chain member with parameters {params:?}"
        );
        for i in 0..20 {
            let again = zone(params, i % 2 == 1);
            assert_same(&again, &first, &|| {
                format!("parameters {params:?}, build {i}")
            });
        }
        // An applied change that leaves the chain alone keeps it, and
        // equals a build of the same records.
        let mut d = IxfrDiff::new(soa(1), soa(2));
        d.added
            .push(&owner_wire("www.example."), 1, 1, 60, &[192, 0, 2, 1]);
        let applied = ixfr::apply(&first, &[d], 2, &Limits::default()).unwrap();
        let mut raw: RawRecords = std::iter::once(&soa(2)).collect();
        for r in first.raw_records().filter(|r| r.rtype != 6) {
            raw.push(r.owner, r.rtype, r.class, r.ttl, r.rdata);
        }
        raw.push(&owner_wire("www.example."), 1, 1, 60, &[192, 0, 2, 1]);
        let built =
            Zone::build_raw(&Name::from_ascii(ORIGIN).unwrap(), raw, &Limits::default()).unwrap();
        assert_same(&applied, &built, &|| {
            format!("applied, parameters {params:?}")
        });
    }
}
