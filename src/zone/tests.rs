//! Lookup rules, each checked on a zone built in code.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

fn n(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn rec(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(n(owner), ttl, data)
}

fn raw(owner: &str, rtype: RecordType, wire: Vec<u8>) -> Record {
    crate::rr::record(n(owner), rtype, 300, &wire).unwrap()
}

fn name_wire(s: &str) -> Vec<u8> {
    crate::zone::key::key_of(&n(s)).to_vec()
}

fn zone_records() -> Vec<Record> {
    let soa = SOA::new(
        n("ns1.example.com."),
        n("hostmaster.example.com."),
        2024010101,
        7200,
        3600,
        3_600_000,
        600,
    );
    let mut srv = vec![0, 10, 0, 5, 0x13, 0xc4];
    srv.extend(name_wire("mail.example.com."));
    let mut dname = Vec::new();
    dname.extend(name_wire("example.net."));
    vec![
        rec("example.com.", 3600, RData::SOA(soa)),
        rec("example.com.", 3600, RData::NS(NS(n("ns1.example.com.")))),
        rec(
            "example.com.",
            3600,
            RData::NS(NS(n("ns.offsite.example.org."))),
        ),
        rec(
            "example.com.",
            3_600_000,
            RData::MX(MX::new(2, n("mail.example.com."))),
        ),
        rec(
            "example.com.",
            3_600_000,
            RData::MX(MX::new(10, n("mail2.example.com."))),
        ),
        rec(
            "example.com.",
            3_600_000,
            RData::MX(MX::new(900, n("mx.partner.example.org."))),
        ),
        rec(
            "ns1.example.com.",
            3600,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 53))),
        ),
        rec(
            "mail.example.com.",
            3_600_000,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 25))),
        ),
        rec(
            "mail.example.com.",
            3_600_000,
            RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
        ),
        rec(
            "mail2.example.com.",
            3_600_000,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 26))),
        ),
        rec(
            "www.example.com.",
            300,
            RData::CNAME(CNAME(n("web.example.com."))),
        ),
        rec(
            "web.example.com.",
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 80))),
        ),
        rec(
            "ext.example.com.",
            300,
            RData::CNAME(CNAME(n("www.example.net."))),
        ),
        rec(
            "loop1.example.com.",
            300,
            RData::CNAME(CNAME(n("loop2.example.com."))),
        ),
        rec(
            "loop2.example.com.",
            300,
            RData::CNAME(CNAME(n("loop1.example.com."))),
        ),
        rec(
            "dangling.example.com.",
            300,
            RData::CNAME(CNAME(n("nothere.example.com."))),
        ),
        rec(
            "*.wild.example.com.",
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 99))),
        ),
        rec(
            "*.wild.example.com.",
            300,
            RData::TXT(TXT::new(vec!["wild".into()])),
        ),
        rec(
            "exists.wild.example.com.",
            300,
            RData::TXT(TXT::new(vec!["here".into()])),
        ),
        rec(
            "a.b.ent.example.com.",
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
        ),
        rec(
            "sub.example.com.",
            86400,
            RData::NS(NS(n("ns.sub.example.com."))),
        ),
        rec(
            "sub.example.com.",
            86400,
            RData::NS(NS(n("ns.elsewhere.example.org."))),
        ),
        raw(
            "sub.example.com.",
            RecordType::DS,
            vec![0x30, 0x39, 8, 2, 1, 2, 3, 4],
        ),
        rec(
            "ns.sub.example.com.",
            86400,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 100))),
        ),
        raw("_sip._tcp.example.com.", RecordType::SRV, srv),
        raw("old.example.com.", RecordType::DNAME, dname),
    ]
}

fn zone() -> Zone {
    Zone::build(&n("example.com."), zone_records(), &Limits::default()).unwrap()
}

fn types<'a>(ans: &Answer<'a>, items: &[Item<'a>]) -> Vec<(String, RecordType)> {
    items
        .iter()
        .flat_map(|i| ans.records(i).into_owned())
        .map(|r| (r.name.to_ascii().to_lowercase(), r.record_type()))
        .collect()
}

#[test]
fn positive_with_additional() {
    let z = zone();
    let a = z.lookup(&n("example.com."), RecordType::MX, false);
    assert_eq!(a.outcome, Outcome::Answer);
    assert!(a.authoritative);
    assert_eq!(types(&a, &a.answer).len(), 3);
    let add = types(&a, &a.additional);
    assert!(add.contains(&("mail.example.com.".into(), RecordType::A)));
    assert!(add.contains(&("mail.example.com.".into(), RecordType::AAAA)));
    assert!(add.contains(&("mail2.example.com.".into(), RecordType::A)));
    assert_eq!(add.len(), 3, "out-of-zone MX target has no additional data");
}

#[test]
fn case_insensitive() {
    let z = zone();
    let a = z.lookup(&n("MaIL.ExAmple.COM."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::Answer);
}

#[test]
fn nxdomain_and_nodata_carry_negative_soa() {
    let z = zone();
    let a = z.lookup(&n("nope.example.com."), RecordType::A, false);
    assert_eq!(a.rcode(), hickory_proto::op::ResponseCode::NXDomain);
    let soa: Vec<_> = a
        .authority
        .iter()
        .flat_map(|i| a.records(i).into_owned())
        .collect();
    assert_eq!(soa.len(), 1);
    assert_eq!(soa[0].ttl, 600, "min(SOA TTL 3600, MINIMUM 600)");
    let a = z.lookup(&n("mail2.example.com."), RecordType::AAAA, false);
    assert_eq!(a.outcome, Outcome::NoData);
    assert_eq!(
        types(&a, &a.authority),
        vec![("example.com.".into(), RecordType::SOA)]
    );
}

#[test]
fn empty_non_terminal_is_nodata() {
    let z = zone();
    for name in ["b.ent.example.com.", "ent.example.com."] {
        let a = z.lookup(&n(name), RecordType::A, false);
        assert_eq!(a.outcome, Outcome::NoData, "{name}");
    }
    let a = z.lookup(&n("c.b.ent.example.com."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::NxDomain);
}

#[test]
fn referral_clears_aa_and_carries_glue() {
    let z = zone();
    for q in [
        "sub.example.com.",
        "host.sub.example.com.",
        "deep.host.sub.example.com.",
    ] {
        for t in [RecordType::A, RecordType::NS, RecordType::MX] {
            let a = z.lookup(&n(q), t, false);
            assert_eq!(a.outcome, Outcome::Referral, "{q} {t}");
            assert!(!a.authoritative);
            assert!(a.answer.is_empty());
            assert_eq!(types(&a, &a.authority).len(), 2);
            assert_eq!(
                types(&a, &a.additional),
                vec![("ns.sub.example.com.".into(), RecordType::A)]
            );
            assert_eq!(a.required_additional, 1);
        }
    }
}

#[test]
fn ds_at_cut_answered_from_parent() {
    let z = zone();
    let a = z.lookup(&n("sub.example.com."), RecordType::DS, false);
    assert_eq!(a.outcome, Outcome::Answer);
    assert!(a.authoritative);
    assert_eq!(
        types(&a, &a.answer),
        vec![("sub.example.com.".into(), RecordType::DS)]
    );
    // Below the cut, DS is the child's business.
    let a = z.lookup(&n("x.sub.example.com."), RecordType::DS, false);
    assert_eq!(a.outcome, Outcome::Referral);
}

#[test]
fn glue_is_not_authoritative_data() {
    let z = zone();
    let a = z.lookup(&n("ns.sub.example.com."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::Referral);
}

#[test]
fn cname_chain_in_zone() {
    let z = zone();
    let a = z.lookup(&n("www.example.com."), RecordType::A, false);
    assert_eq!(
        types(&a, &a.answer),
        vec![
            ("www.example.com.".into(), RecordType::CNAME),
            ("web.example.com.".into(), RecordType::A)
        ]
    );
    let a = z.lookup(&n("www.example.com."), RecordType::CNAME, false);
    assert_eq!(
        types(&a, &a.answer),
        vec![("www.example.com.".into(), RecordType::CNAME)]
    );
}

#[test]
fn cname_out_of_zone_stops() {
    let z = zone();
    let a = z.lookup(&n("ext.example.com."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::Answer);
    assert_eq!(types(&a, &a.answer).len(), 1);
    assert!(a.authority.is_empty());
}

#[test]
fn cname_to_missing_name_is_nxdomain_with_chain() {
    let z = zone();
    let a = z.lookup(&n("dangling.example.com."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::NxDomain);
    assert_eq!(types(&a, &a.answer).len(), 1);
}

#[test]
fn cname_loop_terminates() {
    let z = zone();
    let a = z.lookup(&n("loop1.example.com."), RecordType::A, false);
    assert!(a.answer.len() <= MAX_CHAIN_FOR_TESTS);
}

const MAX_CHAIN_FOR_TESTS: usize = 16;

#[test]
fn wildcard_synthesis_and_nodata() {
    let z = zone();
    let a = z.lookup(&n("anything.wild.example.com."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::Answer);
    assert_eq!(
        types(&a, &a.answer),
        vec![("anything.wild.example.com.".into(), RecordType::A)]
    );
    let a = z.lookup(&n("x.y.wild.example.com."), RecordType::A, false);
    assert_eq!(
        types(&a, &a.answer),
        vec![("x.y.wild.example.com.".into(), RecordType::A)]
    );
    // Wildcard NODATA.
    let a = z.lookup(&n("anything.wild.example.com."), RecordType::MX, false);
    assert_eq!(a.outcome, Outcome::NoData);
    // Closest-encloser rule: an existing name blocks the wildcard.
    let a = z.lookup(&n("exists.wild.example.com."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::NoData);
    let a = z.lookup(&n("below.exists.wild.example.com."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::NxDomain);
}

#[test]
fn dname_synthesis() {
    let z = zone();
    let a = z.lookup(&n("host.old.example.com."), RecordType::A, false);
    assert_eq!(a.outcome, Outcome::Answer);
    let recs: Vec<_> = a
        .answer
        .iter()
        .flat_map(|i| a.records(i).into_owned())
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].record_type(), RecordType::DNAME);
    assert_eq!(recs[1].record_type(), RecordType::CNAME);
    match &recs[1].data {
        RData::CNAME(c) => assert_eq!(c.0, n("host.example.net.")),
        other => panic!("{other:?}"),
    }
    // The DNAME owner itself is answered normally.
    let a = z.lookup(&n("old.example.com."), RecordType::DNAME, false);
    assert_eq!(
        types(&a, &a.answer),
        vec![("old.example.com.".into(), RecordType::DNAME)]
    );
}

#[test]
fn srv_targets_get_addresses() {
    let z = zone();
    let a = z.lookup(&n("_sip._tcp.example.com."), RecordType::SRV, false);
    assert_eq!(types(&a, &a.additional).len(), 2);
}

#[test]
fn any_over_udp_is_one_rrset() {
    let z = zone();
    let udp = z.lookup(&n("example.com."), RecordType::ANY, false);
    let tcp = z.lookup(&n("example.com."), RecordType::ANY, true);
    assert_eq!(udp.answer.len(), 1);
    assert_eq!(tcp.answer.len(), 3);
}

#[test]
fn build_rejects_bad_zones() {
    let origin = n("example.com.");
    let limits = Limits::default();
    let mut out = zone_records();
    out.push(rec(
        "www.example.net.",
        300,
        RData::A(A(Ipv4Addr::LOCALHOST)),
    ));
    assert!(matches!(
        Zone::build(&origin, out, &limits),
        Err(ZoneError::OutOfZone { .. })
    ));

    let no_soa: Vec<_> = zone_records()
        .into_iter()
        .filter(|r| r.record_type() != RecordType::SOA)
        .collect();
    assert!(matches!(
        Zone::build(&origin, no_soa, &limits),
        Err(ZoneError::NoSoa { .. })
    ));

    let mut two_soa = zone_records();
    let soa = SOA::new(n("ns2.example.com."), n("h.example.com."), 1, 2, 3, 4, 5);
    two_soa.push(rec("example.com.", 3600, RData::SOA(soa)));
    assert!(matches!(
        Zone::build(&origin, two_soa, &limits),
        Err(ZoneError::ManySoa { count: 2, .. })
    ));

    let no_ns: Vec<_> = zone_records()
        .into_iter()
        .filter(|r| !(r.record_type() == RecordType::NS && r.name == origin))
        .collect();
    assert!(matches!(
        Zone::build(&origin, no_ns, &limits),
        Err(ZoneError::NoApexNs { .. })
    ));

    let mut cname_other = zone_records();
    cname_other.push(rec(
        "www.example.com.",
        300,
        RData::A(A(Ipv4Addr::LOCALHOST)),
    ));
    assert!(matches!(
        Zone::build(&origin, cname_other, &limits),
        Err(ZoneError::CnameAndOther { .. })
    ));

    let tight = Limits {
        max_rrset_records: 2,
        ..limits
    };
    assert!(matches!(
        Zone::build(&origin, zone_records(), &tight),
        Err(ZoneError::RrsetTooLarge { .. })
    ));
    let tight = Limits {
        max_types_per_name: 2,
        ..limits
    };
    assert!(matches!(
        Zone::build(&origin, zone_records(), &tight),
        Err(ZoneError::TooManyTypes { .. })
    ));
    let tight = Limits {
        max_records: 3,
        ..limits
    };
    assert!(matches!(
        Zone::build(&origin, zone_records(), &tight),
        Err(ZoneError::TooManyRecords { .. })
    ));
}

#[test]
fn duplicates_merged_and_records_listed_soa_first() {
    let mut recs = zone_records();
    recs.push(rec(
        "web.example.com.",
        300,
        RData::A(A(Ipv4Addr::new(192, 0, 2, 80))),
    ));
    let z = Zone::build(&n("example.com."), recs, &Limits::default()).unwrap();
    assert_eq!(z.record_count(), zone_records().len());
    let all: Vec<_> = z.records().collect();
    assert_eq!(all.len(), z.record_count());
    assert_eq!(all[0].record_type(), RecordType::SOA);
    assert_eq!(z.serial(), 2024010101);
}

#[test]
fn big_zone_nxdomain_is_a_probe_not_a_scan() {
    // 100k names: the lookup must not depend on the zone size. Measured by
    // counting work indirectly: node() probes are O(labels).
    let mut recs = zone_records();
    for i in 0..100_000u32 {
        recs.push(rec(
            &format!("h{i}.example.com."),
            300,
            RData::A(A(Ipv4Addr::from(i))),
        ));
    }
    let z = Zone::build(&n("example.com."), recs, &Limits::default()).unwrap();
    for i in 0..1000 {
        let a = z.lookup(
            &n(&format!("missing{i}.example.com.")),
            RecordType::A,
            false,
        );
        assert_eq!(a.outcome, Outcome::NxDomain);
    }
}

// DNSSEC: records signed by hand (signatures are opaque bytes to a server
// that serves pre-signed data, so fake ones exercise everything here).

fn rrsig(covered: RecordType, labels: u8, expiration: u32) -> Vec<u8> {
    let mut w = u16::from(covered).to_be_bytes().to_vec();
    w.extend_from_slice(&[13, labels]);
    w.extend_from_slice(&300u32.to_be_bytes());
    w.extend_from_slice(&expiration.to_be_bytes());
    w.extend_from_slice(&(expiration - 86400).to_be_bytes());
    w.extend_from_slice(&4242u16.to_be_bytes());
    w.extend(name_wire("example.com."));
    w.extend_from_slice(b"signature");
    w
}

fn nsec(next: &str) -> Vec<u8> {
    let mut w = name_wire(next);
    w.extend_from_slice(&[0, 1, 0x40]);
    w
}

/// An NSEC-signed zone: apex, `www` and `*.w`, each with data, an NSEC and
/// RRSIGs over both.
fn signed_records(extra_owners: &[String]) -> Vec<Record> {
    let mut recs = vec![
        rec(
            "example.com.",
            3600,
            RData::SOA(SOA::new(
                n("ns1.example.com."),
                n("hostmaster.example.com."),
                7,
                7200,
                3600,
                1_209_600,
                300,
            )),
        ),
        rec("example.com.", 3600, RData::NS(NS(n("ns1.example.com.")))),
        rec(
            "www.example.com.",
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        ),
        rec(
            "*.w.example.com.",
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 2))),
        ),
    ];
    let mut owners: Vec<String> = ["example.com.", "*.w.example.com.", "www.example.com."]
        .iter()
        .map(|s| s.to_string())
        .chain(extra_owners.iter().cloned())
        .collect();
    for o in extra_owners {
        recs.push(rec(o, 300, RData::A(A(Ipv4Addr::new(192, 0, 2, 3)))));
    }
    // Canonical order from reversed label lists, independent of the code
    // under test.
    let rev = |s: &str| -> Vec<Vec<u8>> {
        n(s).iter()
            .map(|l| l.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    };
    owners.sort_by_key(|o| rev(o));
    for (i, o) in owners.iter().enumerate() {
        let next = &owners[(i + 1) % owners.len()];
        recs.push(raw(o, RecordType::NSEC, nsec(next)));
        let labels = n(o).iter().filter(|l| *l != b"*").count() as u8;
        recs.push(raw(
            o,
            RecordType::RRSIG,
            rrsig(RecordType::NSEC, labels, 2_000_000_000),
        ));
        let t = if o == "example.com." {
            RecordType::SOA
        } else {
            RecordType::A
        };
        recs.push(raw(o, RecordType::RRSIG, rrsig(t, labels, 2_000_000_000)));
    }
    recs.push(raw(
        "example.com.",
        RecordType::RRSIG,
        rrsig(RecordType::NS, 2, 1_900_000_000),
    ));
    recs
}

fn signed_zone() -> Zone {
    Zone::build(&n("example.com."), signed_records(&[]), &Limits::default()).unwrap()
}

fn all<'a, 'z: 'a>(ans: &'a Answer<'z>, items: &'a [Item<'z>]) -> Vec<Record> {
    items
        .iter()
        .flat_map(|i| ans.records(i).into_owned())
        .collect()
}

#[test]
fn signatures_only_with_do_and_by_type_covered() {
    let z = signed_zone();
    assert!(z.is_signed());
    assert!(!zone().is_signed());
    let plain = z.lookup(&n("www.example.com."), RecordType::A, false);
    assert_eq!(
        types(&plain, &plain.answer),
        [("www.example.com.".into(), RecordType::A)]
    );
    assert!(plain.authority.is_empty());
    let signed = z.lookup_dnssec(&n("www.example.com."), RecordType::A, false, true);
    let answer = all(&signed, &signed.answer);
    assert_eq!(answer.len(), 2);
    assert_eq!(answer[1].record_type(), RecordType::RRSIG);
    assert_eq!(dnssec::covered(&answer[1]), u16::from(RecordType::A));
    // Asked for by type, RRSIGs come without DO, all of them.
    let by_type = z.lookup(&n("www.example.com."), RecordType::RRSIG, false);
    assert_eq!(all(&by_type, &by_type.answer).len(), 2);
    // DO on an unsigned zone changes nothing.
    let unsigned = zone();
    let a = unsigned.lookup_dnssec(&n("web.example.com."), RecordType::A, false, true);
    assert!(!a.dnssec);
}

#[test]
fn wildcard_expansion_keeps_rrsig_labels_and_proves_no_closer_match() {
    let z = signed_zone();
    let ans = z.lookup_dnssec(&n("x.w.example.com."), RecordType::A, false, true);
    let answer = all(&ans, &ans.answer);
    assert_eq!(answer.len(), 2);
    for r in &answer {
        assert_eq!(r.name, n("x.w.example.com."));
    }
    let RData::Unknown { rdata, .. } = &answer[1].data else {
        panic!("RRSIG kept as wire bytes");
    };
    assert_eq!(rdata.anything[3], 3, "labels field of *.w.example.com");
    let auth = all(&ans, &ans.authority);
    let nsecs: Vec<_> = auth
        .iter()
        .filter(|r| r.record_type() == RecordType::NSEC)
        .collect();
    assert_eq!(nsecs.len(), 1);
    assert_eq!(nsecs[0].name, n("*.w.example.com."));
    assert!(
        auth.iter()
            .any(|r| dnssec::covered(r) == u16::from(RecordType::NSEC))
    );
}

#[test]
fn nxdomain_proof_and_signed_negative_soa() {
    let z = signed_zone();
    let ans = z.lookup_dnssec(&n("a.example.com."), RecordType::A, false, true);
    assert_eq!(ans.outcome, Outcome::NxDomain);
    let auth = all(&ans, &ans.authority);
    let soa_sig = auth
        .iter()
        .find(|r| dnssec::covered(r) == u16::from(RecordType::SOA))
        .unwrap();
    assert_eq!(soa_sig.ttl, 300, "RRSIG(SOA) TTL follows the negative SOA");
    // The name and the wildcard *.example.com fall in the same span: one NSEC.
    let nsecs: Vec<_> = auth
        .iter()
        .filter(|r| r.record_type() == RecordType::NSEC)
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(nsecs, [n("example.com.")]);
    // Without DO, just the SOA.
    let plain = z.lookup(&n("a.example.com."), RecordType::A, false);
    assert_eq!(all(&plain, &plain.authority).len(), 1);
}

#[test]
fn earliest_signature_expiration() {
    let z = signed_zone();
    let now = 1_800_000_000;
    assert_eq!(z.earliest_signature_expiration(now), Some(1_900_000_000));
    assert_eq!(zone().earliest_signature_expiration(now), None);
}

#[test]
fn nsec3_owners_are_not_names_of_the_zone() {
    let mut recs = zone_records();
    let owner = "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.com.";
    let mut w = vec![1, 0, 0, 0, 0, 20];
    w.extend_from_slice(&[0u8; 20]);
    recs.push(raw(owner, RecordType::NSEC3, w));
    let z = Zone::build(&n("example.com."), recs, &Limits::default()).unwrap();
    let ans = z.lookup(&n(owner), RecordType::A, false);
    assert_eq!(ans.outcome, Outcome::NxDomain);
}

#[test]
fn nsec_cover_search_matches_brute_force_on_a_big_zone() {
    let owners: Vec<String> = (0..20_000u32)
        .map(|i| match i % 3 {
            0 => format!("h{i}.example.com."),
            1 => format!("x{}.s{}.example.com.", i * 7919 % 1000, i % 50),
            _ => format!("{}.example.com.", i * 104_729 % 99_991),
        })
        .collect();
    let z = Zone::build(
        &n("example.com."),
        signed_records(&owners),
        &Limits::default(),
    )
    .unwrap();
    let rev = |s: &Name| -> Vec<Vec<u8>> {
        s.iter()
            .map(|l| l.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    };
    let mut sorted: Vec<Vec<Vec<u8>>> = z
        .records()
        .filter(|r| r.record_type() == RecordType::NSEC)
        .map(|r| rev(&r.name))
        .collect();
    sorted.sort();
    let queries = 2000;
    let start = std::time::Instant::now();
    let mut checked = 0;
    for i in 0..queries {
        let q = n(&format!("q{}.s{}.example.com.", i * 31, i % 60));
        let ans = z.lookup_dnssec(&q, RecordType::A, false, true);
        if ans.outcome != Outcome::NxDomain {
            continue;
        }
        let first_nsec = all(&ans, &ans.authority)
            .into_iter()
            .find(|r| r.record_type() == RecordType::NSEC)
            .unwrap()
            .name
            .clone();
        let key = rev(&q);
        let i = sorted.partition_point(|o| *o <= key);
        let want = &sorted[if i == 0 { sorted.len() - 1 } else { i - 1 }];
        assert_eq!(rev(&first_nsec), *want, "cover of {q}");
        checked += 1;
    }
    assert!(checked > queries / 2);
    eprintln!(
        "NSEC NXDOMAIN proofs in a {}-name zone: {:?} per lookup (debug build)",
        sorted.len(),
        start.elapsed() / queries
    );
}
