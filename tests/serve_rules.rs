//! Header and size rules of answers, end to end on the real binary: flags,
//! the echoed ID and question, UDP size limits with and without EDNS, and
//! truncation by whole RRsets (checked against the full TCP answer).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use common::dns::exchange_raw;
use common::outpost::Outpost;

const ZONE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/diff.example.zone");

fn start(dir: &std::path::Path) -> Outpost {
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:{{port}}"]
data_dir = "{{dir}}/data"

[[zone]]
name = "example.com"
primaries = []
seed_file = "{ZONE_FILE}"
"#
    );
    let mut outpost = Outpost::start_in(dir, &config);
    outpost.wait_ready("example.com.", Duration::from_secs(10));
    outpost
}

/// A query built byte by byte, so that case and flags are exactly ours.
#[derive(Clone, Copy)]
struct Raw<'a> {
    id: u16,
    name: &'a str,
    qtype: RecordType,
    rd: bool,
    cd: bool,
    /// EDNS UDP payload size; None for no OPT.
    edns: Option<u16>,
}

impl<'a> Raw<'a> {
    fn new(name: &'a str, qtype: RecordType) -> Self {
        Raw {
            id: 0x1234,
            name,
            qtype,
            rd: false,
            cd: false,
            edns: None,
        }
    }

    fn question(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for label in self.name.trim_end_matches('.').split('.') {
            v.push(label.len() as u8);
            v.extend_from_slice(label.as_bytes());
        }
        v.push(0);
        v.extend_from_slice(&u16::from(self.qtype).to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v
    }

    fn wire(&self) -> Vec<u8> {
        let mut v = self.id.to_be_bytes().to_vec();
        v.push(if self.rd { 0x01 } else { 0 });
        v.push(if self.cd { 0x10 } else { 0 });
        v.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, self.edns.is_some() as u8]);
        v.extend(self.question());
        if let Some(size) = self.edns {
            v.extend_from_slice(&[0, 0, 41]);
            v.extend_from_slice(&size.to_be_bytes());
            v.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
        v
    }
}

/// Parses a reply completely: every byte belongs to the sections the header
/// counts, nothing is left over.
fn parse_exact(wire: &[u8], what: &str) -> Message {
    let mut d = BinDecoder::new(wire);
    let msg = Message::read(&mut d).unwrap_or_else(|e| panic!("{what}: reply does not parse: {e}"));
    assert!(
        d.is_empty(),
        "{what}: {} bytes after the counted sections",
        d.len()
    );
    let counts = [
        u16::from_be_bytes([wire[4], wire[5]]) as usize,
        u16::from_be_bytes([wire[6], wire[7]]) as usize,
        u16::from_be_bytes([wire[8], wire[9]]) as usize,
        u16::from_be_bytes([wire[10], wire[11]]) as usize,
    ];
    let parsed = [
        msg.queries.len(),
        msg.answers.len(),
        msg.authorities.len(),
        msg.additionals.len() + msg.edns.is_some() as usize + msg.signature.is_some() as usize,
    ];
    assert_eq!(counts, parsed, "{what}: header counts vs sections");
    msg
}

fn ask(addr: SocketAddr, q: &Raw<'_>, tcp: bool) -> (Vec<u8>, Message) {
    let what = format!(
        "{} {} {} edns {:?}",
        q.name,
        q.qtype,
        if tcp { "tcp" } else { "udp" },
        q.edns
    );
    let wire = exchange_raw(addr, &q.wire(), tcp).unwrap_or_else(|e| panic!("{what}: {e}"));
    let msg = parse_exact(&wire, &what);
    assert_eq!(msg.metadata.id, q.id, "{what}: ID");
    (wire, msg)
}

/// RRsets of one section: (owner lowercase, type) → RDATA texts.
type Sets = BTreeMap<(String, RecordType), BTreeSet<String>>;

fn rrsets(records: &[Record]) -> Sets {
    let mut sets = Sets::new();
    for r in records {
        sets.entry((r.name.to_ascii().to_lowercase(), r.record_type()))
            .or_default()
            .insert(r.data.to_string());
    }
    sets
}

#[test]
fn header_rules() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path());

    // AA on answers of every kind from our zone, RA never.
    for (name, qtype, rcode) in [
        ("example.com.", RecordType::SOA, ResponseCode::NoError),
        ("example.com.", RecordType::MX, ResponseCode::NoError),
        ("www.example.com.", RecordType::A, ResponseCode::NoError),
        (
            "mail2.example.com.",
            RecordType::AAAA,
            ResponseCode::NoError,
        ),
        (
            "nonexistent.example.com.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "host.users.example.com.",
            RecordType::A,
            ResponseCode::NoError,
        ),
    ] {
        for tcp in [false, true] {
            let (_, m) = ask(o.addr, &Raw::new(name, qtype), tcp);
            assert_eq!(m.metadata.response_code, rcode, "{name} {qtype}");
            assert!(m.metadata.authoritative, "{name} {qtype}: AA");
            assert!(!m.metadata.recursion_available, "{name} {qtype}: RA");
        }
    }
    // A referral is not authoritative data.
    let (_, m) = ask(
        o.addr,
        &Raw::new("host.dept.example.com.", RecordType::A),
        false,
    );
    assert!(!m.metadata.authoritative, "referral: AA");
    assert!(!m.metadata.recursion_available, "referral: RA");
    // Refused queries neither.
    let (_, m) = ask(o.addr, &Raw::new("www.example.org.", RecordType::A), false);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative && !m.metadata.recursion_available);

    // RD is copied and CD cleared (RFC 4035 §3.1.6), in all four
    // combinations; RA stays clear.
    for rd in [false, true] {
        for cd in [false, true] {
            for tcp in [false, true] {
                let q = Raw {
                    rd,
                    cd,
                    edns: Some(1232),
                    ..Raw::new("example.com.", RecordType::MX)
                };
                let (_, m) = ask(o.addr, &q, tcp);
                assert_eq!(m.metadata.recursion_desired, rd, "RD={rd} CD={cd}");
                assert!(!m.metadata.checking_disabled, "RD={rd} CD={cd}");
                assert!(!m.metadata.recursion_available, "RD={rd}: RA");
                assert!(m.metadata.authoritative);
            }
        }
    }

    // The message ID is echoed, whatever it is.
    for id in [0u16, 1, 0x00ff, 0x8000, 0xabcd, 0xffff] {
        let q = Raw {
            id,
            ..Raw::new("example.com.", RecordType::SOA)
        };
        for tcp in [false, true] {
            let (_, m) = ask(o.addr, &q, tcp);
            assert_eq!(m.metadata.id, id);
        }
    }

    // The question comes back byte for byte, case included (0x20 encoding),
    // for answers, NXDOMAIN and REFUSED alike.
    for (name, qtype) in [
        ("eXaMpLe.CoM.", RecordType::MX),
        ("MAIL.Example.COM.", RecordType::A),
        ("nO.sUcH.eXaMpLe.cOm.", RecordType::A),
        ("hOsT.uSeRs.ExAmPlE.cOm.", RecordType::TXT),
        ("WwW.eXaMpLe.OrG.", RecordType::A),
    ] {
        for tcp in [false, true] {
            let q = Raw::new(name, qtype);
            let (wire, m) = ask(o.addr, &q, tcp);
            let question = q.question();
            assert_eq!(
                &wire[12..12 + question.len()],
                &question[..],
                "{name}: question bytes"
            );
            assert_eq!(m.queries[0].name().to_ascii(), name);
        }
    }
}

#[test]
fn udp_size_rules() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path());
    let big = Raw::new("big.example.com.", RecordType::TXT);
    let huge = Raw::new("huge.example.com.", RecordType::TXT);

    // Over TCP the whole RRsets: 7 and 6 records, no TC, whatever EDNS says.
    for edns in [None, Some(512)] {
        let (wire, m) = ask(o.addr, &Raw { edns, ..big }, true);
        assert!(!m.metadata.truncation && m.answers.len() == 7, "big tcp");
        assert!(wire.len() > 700, "big is {} bytes", wire.len());
        let (wire, m) = ask(o.addr, &Raw { edns, ..huge }, true);
        assert!(!m.metadata.truncation && m.answers.len() == 6, "huge tcp");
        assert!(wire.len() > 1232, "huge is {} bytes", wire.len());
    }

    // Without EDNS: 512 bytes at most, TC for the big RRset, and the
    // datagram holds exactly what its header counts (parse_exact).
    let (wire, m) = ask(o.addr, &big, false);
    assert!(wire.len() <= 512, "{} bytes", wire.len());
    assert!(m.metadata.truncation, "big without EDNS: TC");
    assert!(m.answers.is_empty(), "big without EDNS: partial RRset");
    assert!(m.edns.is_none(), "OPT in a reply to a query without one");

    // EDNS 4096 is capped at 1232: big fits, huge does not.
    let (wire, m) = ask(
        o.addr,
        &Raw {
            edns: Some(4096),
            ..big
        },
        false,
    );
    assert!(wire.len() <= 1232);
    assert!(
        !m.metadata.truncation && m.answers.len() == 7,
        "big at 4096"
    );
    let (wire, m) = ask(
        o.addr,
        &Raw {
            edns: Some(4096),
            ..huge
        },
        false,
    );
    assert!(wire.len() <= 1232, "huge at 4096: {} bytes", wire.len());
    assert!(m.metadata.truncation, "huge at 4096: TC (1232 cap)");
    assert!(m.answers.is_empty());
    let edns = m.edns.expect("OPT in the reply");
    assert!(
        edns.max_payload() <= 1232,
        "advertised {}",
        edns.max_payload()
    );
    assert_eq!(edns.version(), 0);

    // EDNS 700: big does not fit.
    let (wire, m) = ask(
        o.addr,
        &Raw {
            edns: Some(700),
            ..big
        },
        false,
    );
    assert!(wire.len() <= 700, "{} bytes", wire.len());
    assert!(m.metadata.truncation, "big at 700: TC");

    // EDNS 100 is treated as 512: a 512-byte-sized answer still comes whole,
    // the big one is truncated.
    let mx = Raw::new("example.com.", RecordType::MX);
    let (full, _) = ask(o.addr, &mx, true);
    assert!(
        full.len() > 100 && full.len() + 11 <= 512,
        "MX is {} bytes",
        full.len()
    );
    let (wire, m) = ask(
        o.addr,
        &Raw {
            edns: Some(100),
            ..mx
        },
        false,
    );
    assert!(!m.metadata.truncation, "MX at EDNS 100: TC");
    assert_eq!(m.answers.len(), 3);
    assert!(wire.len() > 100 && wire.len() <= 512);
    let (wire, m) = ask(
        o.addr,
        &Raw {
            edns: Some(100),
            ..big
        },
        false,
    );
    assert!(wire.len() <= 512);
    assert!(m.metadata.truncation, "big at EDNS 100: TC");
    for size in [0u16, 1, 511] {
        let (wire, _) = ask(
            o.addr,
            &Raw {
                edns: Some(size),
                ..big
            },
            false,
        );
        assert!(wire.len() <= 512, "EDNS {size}: {} bytes", wire.len());
    }
}

/// The OPT of a reply carries the responder's own UDP payload size (RFC 6891
/// §6.2.3, §6.2.5): always 1232, whatever the client offered and whatever
/// the transport, since a client may remember it for later queries.
#[test]
fn opt_advertises_our_udp_size() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path());
    let mut wrong = Vec::new();
    for edns in [100u16, 512, 700, 1232, 4096, 65535] {
        for tcp in [false, true] {
            let q = Raw {
                edns: Some(edns),
                ..Raw::new("example.com.", RecordType::SOA)
            };
            let (_, m) = ask(o.addr, &q, tcp);
            let size = m.edns.expect("OPT in the reply").max_payload();
            if size != 1232 {
                wrong.push(format!(
                    "query EDNS {edns} over {}: reply advertises {size}",
                    if tcp { "TCP" } else { "UDP" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Truncation drops whole RRsets only: every RRset in a UDP reply is the
/// full RRset of the TCP reply, and a missing answer or authority RRset sets
/// TC. Additional data may be left out without TC.
#[test]
fn truncation_by_whole_rrsets() {
    let dir = tempfile::tempdir().unwrap();
    let o = start(dir.path());
    let queries = [
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::NS),
        ("example.com.", RecordType::TXT),
        ("example.com.", RecordType::ANY),
        ("example.com.", RecordType::SOA),
        ("big.example.com.", RecordType::TXT),
        ("huge.example.com.", RecordType::TXT),
        ("big.example.com.", RecordType::ANY),
        ("huge.example.com.", RecordType::A),
        ("nonexistent.example.com.", RecordType::A),
        ("www.example.com.", RecordType::A),
        ("chain1.example.com.", RecordType::A),
        ("host.dept.example.com.", RecordType::A),
        ("www.signed.example.com.", RecordType::AAAA),
        ("_submission._tcp.example.com.", RecordType::SRV),
        ("host.old.example.com.", RecordType::A),
        ("host.users.example.com.", RecordType::TXT),
        ("host.example.com.", RecordType::ANY),
    ];
    let mut checked = 0;
    let mut truncated = 0;
    for (name, qtype) in queries {
        let (_, full) = ask(o.addr, &Raw::new(name, qtype), true);
        assert!(!full.metadata.truncation, "{name} {qtype}: TC over TCP");
        let full_sections = [
            rrsets(&full.answers),
            rrsets(&full.authorities),
            rrsets(&full.additionals),
        ];
        for edns in [
            None,
            Some(512),
            Some(600),
            Some(700),
            Some(900),
            Some(1232),
            Some(4096),
        ] {
            let what = format!("{name} {qtype} edns {edns:?}");
            let (wire, m) = ask(
                o.addr,
                &Raw {
                    edns,
                    ..Raw::new(name, qtype)
                },
                false,
            );
            let cap = edns.map_or(512, |e| e.clamp(512, 1232)) as usize;
            assert!(wire.len() <= cap, "{what}: {} bytes > {cap}", wire.len());
            assert_eq!(
                m.metadata.response_code, full.metadata.response_code,
                "{what}"
            );
            checked += 1;
            truncated += m.metadata.truncation as usize;
            let sections = [
                rrsets(&m.answers),
                rrsets(&m.authorities),
                rrsets(&m.additionals),
            ];
            for (i, (ours, whole)) in sections.iter().zip(&full_sections).enumerate() {
                for (key, rdata) in ours {
                    // ANY over UDP is one RRset (RFC 8482): any of TCP's.
                    let tcp_set = whole.get(key);
                    assert_eq!(
                        Some(rdata),
                        tcp_set,
                        "{what}: section {i} RRset {key:?} differs from TCP"
                    );
                }
                let missing = whole.keys().any(|k| !ours.contains_key(k));
                if missing && i < 2 && !(i == 0 && qtype == RecordType::ANY) {
                    assert!(m.metadata.truncation, "{what}: section {i} cut without TC");
                }
            }
            if m.metadata.truncation {
                let anything_missing = sections
                    .iter()
                    .zip(&full_sections)
                    .any(|(ours, whole)| whole.keys().any(|k| !ours.contains_key(k)));
                assert!(anything_missing, "{what}: TC but nothing left out");
            }
        }
    }
    println!("{checked} UDP replies compared with TCP, {truncated} truncated");
    assert!(truncated >= 10, "only {truncated} truncated replies");
}
