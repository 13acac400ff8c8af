//! The encoder's compression and truncation, on a zone from text.

use std::str::FromStr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::*;
use crate::zone::key::WireName;
use crate::zone::{Limits, Zone};

const ZONE: &str = r#"$ORIGIN example.com.
$TTL 300
@       IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@       IN NS  ns1
@       IN NS  ns2
@       IN MX  10 mail
@       IN MX  20 mail2
ns1     IN A   192.0.2.1
ns2     IN A   192.0.2.2
mail    IN A   192.0.2.25
mail    IN AAAA 2001:db8::25
mail2   IN A   192.0.2.26
www     IN A   192.0.2.80
alias   IN CNAME www
_sip._tcp IN SRV 0 5 5060 mail
sub     IN NS  ns.sub
ns.sub  IN A   192.0.2.53
"#;

fn zone(extra: &str) -> Zone {
    let origin = Name::from_str("example.com.").unwrap();
    let text = format!("{ZONE}{extra}");
    let records = crate::zonefile::parse_str(&text, &origin, "test").unwrap();
    Zone::build(&origin, records, &Limits::default()).unwrap()
}

fn query_wire(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = vec![
        0xAB,
        0xCD,
        0x01,
        0x10,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(edns.is_some()),
    ];
    for label in name.trim_end_matches('.').split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&u16::from(qtype).to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    if let Some(size) = edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    m
}

/// Parses, looks up and encodes like the UDP path; returns the raw answer.
fn fast_answer(z: &Zone, name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let wire = query_wire(name, qtype, edns);
    let mut key = WireName::new();
    let q = parse(&wire, &mut key).expect("a plain query");
    let ans = z
        .lookup_wire(&q.question[..q.name_len], q.wire, q.qtype, false, false)
        .unwrap();
    let mut out = vec![0; MAX_ANSWER];
    let len = encode_answer(&q, &ans, &mut out[..q.limit()]).unwrap();
    out.truncate(len);
    out
}

/// The same answer sections encoded by hickory, without truncation.
fn hickory_answer(z: &Zone, name: &str, qtype: RecordType) -> Message {
    let qname = Name::from_str(name).unwrap();
    let ans = z.lookup(&qname, qtype, false);
    let mut m = Message::new(
        0,
        hickory_proto::op::MessageType::Response,
        hickory_proto::op::OpCode::Query,
    );
    for i in &ans.answer {
        m.add_answers(ans.records(i).iter().cloned());
    }
    for i in &ans.authority {
        m.add_authorities(ans.records(i).iter().cloned());
    }
    for i in &ans.additional {
        m.add_additionals(ans.records(i).iter().cloned());
    }
    m
}

fn sorted(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| r.to_string().to_lowercase())
        .collect();
    v.sort();
    v
}

/// Whether the fast path takes a datagram, and its EDNS and limit.
fn parse_ok(msg: &[u8]) -> Option<(Option<Edns>, usize)> {
    let mut key = WireName::new();
    parse(msg, &mut key).map(|q| (q.edns, q.limit()))
}

#[test]
fn owner_equal_to_qname_points_at_question_and_keeps_its_case() {
    let z = zone("");
    let out = fast_answer(&z, "WwW.ExAmPlE.cOm.", RecordType::A, Some(1232));
    let question_end = 12 + 17 + 4;
    assert_eq!(&out[question_end..question_end + 2], &[0xC0, 0x0C]);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].name.to_string(), "WwW.ExAmPlE.cOm.");
    assert_eq!(m.metadata.id, 0xABCD);
    // RD is copied; CD is not, in an authoritative answer (RFC 4035 §3.1.6).
    assert!(m.metadata.recursion_desired && !m.metadata.checking_disabled);
    assert!(m.metadata.authoritative && !m.metadata.truncation);
    // Header, question, one A with a pointer owner, the OPT.
    assert_eq!(out.len(), question_end + 2 + 10 + 4 + 11);
}

#[test]
fn rdata_names_compressed_for_rfc1035_types_only() {
    let z = zone("");
    // MX: each exchange is "mail" plus a pointer to the question's name.
    let out = fast_answer(&z, "example.com.", RecordType::MX, None);
    let needle = [4, b'm', b'a', b'i', b'l', 0xC0, 0x0C];
    assert!(out.windows(needle.len()).any(|w| w == needle), "{out:x?}");
    let m = Message::from_vec(&out).unwrap();
    let hick = hickory_answer(&z, "example.com.", RecordType::MX);
    assert_eq!(sorted(&m.answers), sorted(&hick.answers));
    assert_eq!(sorted(&m.additionals), sorted(&hick.additionals));
    // SRV RDATA keeps its target whole (RFC 3597 §4).
    let out = fast_answer(&z, "_sip._tcp.example.com.", RecordType::SRV, None);
    let whole = b"\x04mail\x07example\x03com\x00";
    assert!(out.windows(whole.len()).any(|w| w == whole), "{out:x?}");
    // And the hickory encoding of the whole message is no shorter.
    let hick = hickory_answer(&z, "example.com.", RecordType::MX);
    let mut buf = Vec::new();
    hick.emit(&mut BinEncoder::new(&mut buf)).unwrap();
    let ours = fast_answer(&z, "example.com.", RecordType::MX, None);
    assert!(
        ours.len() <= buf.len() + 4 + 17,
        "{} vs {}",
        ours.len(),
        buf.len()
    );
}

#[test]
fn truncation_by_whole_rrsets() {
    // 40 TXT records of 100 octets: far over 512, under 1232 only partly.
    let mut extra = String::new();
    for i in 0..40 {
        extra.push_str(&format!("big IN TXT \"{i:03}{}\"\n", "x".repeat(96)));
    }
    // Glue too big for 512 octets: 40 addresses for the sub-zone server.
    for i in 0..40 {
        extra.push_str(&format!("ns.wide IN AAAA 2001:db8::{i:x}\n"));
    }
    extra.push_str("wide IN NS ns.wide\n");
    // An MX whose additional data does not all fit.
    for i in 0..30 {
        extra.push_str(&format!(
            "mx IN MX {i} m{i}.mx\nm{i}.mx IN AAAA 2001:db8::1:{i:x}\n"
        ));
    }
    let z = zone(&extra);

    let out = fast_answer(&z, "big.example.com.", RecordType::TXT, None);
    let m = Message::from_vec(&out).unwrap();
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty(), "an RRset goes whole or not at all");
    assert!(out.len() <= 512);

    let out = fast_answer(&z, "www.wide.example.com.", RecordType::A, None);
    let m = Message::from_vec(&out).unwrap();
    assert!(m.metadata.truncation, "required glue missing sets TC");
    assert_eq!(m.authorities.len(), 1);
    assert!(m.additionals.is_empty());

    let out = fast_answer(&z, "mx.example.com.", RecordType::MX, Some(1232));
    let m = Message::from_vec(&out).unwrap();
    assert!(
        !m.metadata.truncation,
        "optional additional data is just left out"
    );
    assert_eq!(m.answers.len(), 30);
    let hick = hickory_answer(&z, "mx.example.com.", RecordType::MX);
    let addl = m.additionals.len();
    assert!(addl > 0 && addl < hick.additionals.len(), "{addl}");
    assert!(out.len() <= 1232);
    // What went out is a prefix of the additional RRsets, each whole.
    assert_eq!(sorted(&m.additionals), sorted(&hick.additionals[..addl]));
    let edns = m.edns.as_ref().expect("OPT kept room for itself");
    assert_eq!(edns.max_payload(), 1232);
}

#[test]
fn parser_leaves_unusual_queries_to_hickory() {
    let plain = query_wire("www.example.com.", RecordType::A, Some(1232));
    assert!(parse_ok(&plain).is_some());
    let mut notify = plain.clone();
    notify[2] |= 4 << 3;
    assert!(parse_ok(&notify).is_none());
    let mut v1 = plain.clone();
    let n = v1.len();
    v1[n - 5] = 1; // EDNS version 1: BADVERS is the handler's
    assert!(parse_ok(&v1).is_none());
    let axfr = query_wire("example.com.", RecordType::AXFR, None);
    assert!(parse_ok(&axfr).is_none());
    let mut chaos = query_wire("version.bind.", RecordType::TXT, None);
    let n = chaos.len();
    chaos[n - 1] = 3;
    assert!(parse_ok(&chaos).is_none());
    let mut trailing = query_wire("www.example.com.", RecordType::A, None);
    trailing.push(0);
    assert!(parse_ok(&trailing).is_none());
    let mut expire = plain.clone();
    let n = expire.len();
    expire[n - 1] = 4;
    expire.extend_from_slice(&[0, 9, 0, 0]);
    assert!(parse_ok(&expire).is_none());
    let mut cookie = plain.clone();
    let n = cookie.len();
    cookie[n - 1] = 12;
    cookie.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    let (edns, _) = parse_ok(&cookie).expect("other options are fine");
    let want = Edns {
        payload: 1232,
        dnssec_ok: false,
    };
    assert_eq!(edns, Some(want));
    let limit = |edns| parse_ok(&query_wire("a.", RecordType::A, edns)).unwrap().1;
    assert_eq!(limit(Some(100)), 512);
    assert_eq!(limit(Some(4096)), 1232);
    assert_eq!(limit(None), 512);
}

#[test]
fn nxdomain_carries_the_negative_soa() {
    let z = zone("");
    let out = fast_answer(&z, "nothere.example.com.", RecordType::A, None);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    let RData::SOA(soa) = &m.authorities[0].data else {
        panic!("not an SOA")
    };
    assert_eq!(soa.mname.to_string(), "ns1.example.com.");
    assert_eq!(soa.rname.to_string(), "hostmaster.example.com.");
}

/// The worker's answer cache gives what a fresh lookup gives (another ID,
/// another case, the query's own RD/CD), and misses once a new snapshot is
/// in service.
#[test]
fn cached_answers_equal_fresh_ones_and_follow_the_snapshot() {
    use crate::metrics::Events;
    use crate::store::{ZoneEntry, ZoneTable};
    use std::sync::Arc;

    let entry = Arc::new(ZoneEntry::new(Name::from_str("example.com.").unwrap()));
    entry.swap(Arc::new(zone("")));
    let table = ZoneTable::new([entry.clone()]);
    let events = Events::default();
    let mut cache = AnswerCache::new(64, 1 << 16);
    let run = |wire: &[u8], cache: Option<&mut AnswerCache>| -> Vec<u8> {
        let mut key = WireName::new();
        let q = parse(wire, &mut key).expect("a plain query");
        let mut out = vec![0; MAX_ANSWER];
        let mut key = cache::Key::default();
        set_cache_key(&mut key, &q, MAX_ANSWER);
        let cached = cache.map(|cache| {
            let slot = cache.prefetch_slot(&key);
            Cached {
                cache,
                key: &key,
                slot,
            }
        });
        let mut counts = PendingCounts::default();
        match answer_cached(&q, &table, &events, &mut counts, cached, &[], &mut out) {
            Reply::Ready(len, _) => out[..len].to_vec(),
            Reply::Slow => panic!("fast path declined"),
        }
    };
    for (name, qtype, edns) in [
        ("example.com.", RecordType::MX, Some(1232)),
        ("www.example.com.", RecordType::A, None),
        ("alias.example.com.", RecordType::A, Some(4096)),
        ("nothere.example.com.", RecordType::A, Some(1232)),
        ("x.sub.example.com.", RecordType::A, Some(1232)),
        ("www.example.com.", RecordType::TXT, Some(512)),
    ] {
        let first = query_wire(name, qtype, edns);
        let fresh = run(&first, None);
        // The cache takes an answer at its second sighting.
        for sighting in ["first", "second"] {
            assert_eq!(
                run(&first, Some(&mut cache)),
                fresh,
                "{name} {qtype}: {sighting}"
            );
        }
        // Same question in other case with another ID and without RD: the
        // cached body, this query's header and question.
        let mut second = query_wire(&name.to_uppercase(), qtype, edns);
        second[0] = 0x12;
        second[2] = 0x00;
        let expected = run(&second, None);
        let cached = run(&second, Some(&mut cache));
        assert_eq!(cached, expected, "{name} {qtype}: cached");
        assert_ne!(cached[..4], fresh[..4], "{name} {qtype}: header patched");
    }
    // A new copy of the zone: the cache must not answer from the old one.
    entry.swap(Arc::new(zone("www IN TXT \"new\"\n")));
    let q = query_wire("www.example.com.", RecordType::TXT, Some(512));
    let fresh = run(&q, None);
    assert_eq!(run(&q, Some(&mut cache)), fresh);
    assert_eq!(run(&q, Some(&mut cache)), fresh);
    assert_eq!(
        u16::from_be_bytes([fresh[6], fresh[7]]),
        1,
        "the new TXT is answered"
    );
}
