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
    Zone::build(&n("example.com."), zone_records(), &BuildLimits::default()).unwrap()
}

fn types<'a>(ans: &Answer<'a>, items: &[Item<'a>]) -> Vec<(String, RecordType)> {
    items
        .iter()
        .flat_map(|i| ans.records(i))
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
    let soa: Vec<_> = a.authority.iter().flat_map(|i| a.records(i)).collect();
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
    let recs: Vec<_> = a.answer.iter().flat_map(|i| a.records(i)).collect();
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
    let limits = BuildLimits::default();
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

    let tight = BuildLimits {
        max_rrset_records: 2,
        ..limits
    };
    assert!(matches!(
        Zone::build(&origin, zone_records(), &tight),
        Err(ZoneError::RrsetTooLarge { .. })
    ));
    let tight = BuildLimits {
        max_types_per_name: 2,
        ..limits
    };
    assert!(matches!(
        Zone::build(&origin, zone_records(), &tight),
        Err(ZoneError::TooManyTypes { .. })
    ));
    let tight = BuildLimits {
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
    let z = Zone::build(&n("example.com."), recs, &BuildLimits::default()).unwrap();
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
    let z = Zone::build(&n("example.com."), recs, &BuildLimits::default()).unwrap();
    for i in 0..1000 {
        let a = z.lookup(
            &n(&format!("missing{i}.example.com.")),
            RecordType::A,
            false,
        );
        assert_eq!(a.outcome, Outcome::NxDomain);
    }
}
