//! The checks of RFC 8906 §8 ("A Common Operational Problem in DNS
//! Servers: Failure to Communicate") against the bundled zone, unsigned and
//! signed, with Outpost's answers checked and BIND's, Knot's and NSD's
//! printed beside them; and the RRSIGs of additional-section addresses
//! (RFC 4035 §3.1.1) compared with BIND's and Knot's.

mod common;
#[path = "dnssec_support/mod.rs"]
mod dnssec_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::BinDecodable;

use common::dns::exchange_raw;
use common::outpost::Outpost;
use common::peers::{Bind, Knot, Nsd, Options, Server};
use dnssec_support::{Mode, ORIGIN, covered, sign};

const BUNDLED: &str = include_str!("../zones/example.com.zone");

/// One query of §8: header flags word (opcode and flags), whether a
/// question is sent, EDNS (version, flags word, options), transport.
#[derive(Clone, Copy)]
struct Check {
    section: &'static str,
    what: &'static str,
    flags: u16,
    question: bool,
    qtype: u16,
    edns: Option<EdnsQuery>,
    tcp: bool,
    expect: Expect,
}

/// EDNS of a query: version, flags word, options as (code, data).
type EdnsQuery = (u8, u16, &'static [(u16, &'static [u8])]);

/// (owner, type) pairs.
type Owners = BTreeSet<(String, RecordType)>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// NOERROR, AA, the SOA in the answer.
    Soa,
    /// NOERROR, AA, no answer, the SOA in the authority section.
    NoData,
    /// NOTIMP, the opcode echoed, no SOA.
    NotImp,
    /// BADVERS, no SOA.
    BadVers,
    /// NOERROR, complete (no TC), over TCP.
    Complete,
    /// NOERROR, and either TC or an answer.
    TruncatedOrWhole,
}

const DO: u16 = 0x8000;
const SOA: u16 = 6;

const CHECKS: &[Check] = &[
    Check {
        section: "8.1.1",
        what: "plain",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: None,
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.1.2",
        what: "unknown type",
        flags: 0,
        question: true,
        qtype: 1000,
        edns: None,
        tcp: false,
        expect: Expect::NoData,
    },
    Check {
        section: "8.1.3.1",
        what: "CD=1",
        flags: 0x0010,
        question: true,
        qtype: SOA,
        edns: None,
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.1.3.2",
        what: "AD=1",
        flags: 0x0020,
        question: true,
        qtype: SOA,
        edns: None,
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.1.3.3",
        what: "Z=1",
        flags: 0x0040,
        question: true,
        qtype: SOA,
        edns: None,
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.1.4",
        what: "opcode 15, header only",
        flags: 15 << 11,
        question: false,
        qtype: SOA,
        edns: None,
        tcp: false,
        expect: Expect::NotImp,
    },
    Check {
        section: "8.1.4+",
        what: "opcode 15, every flag",
        flags: 15 << 11 | 0x07F0,
        question: true,
        qtype: SOA,
        edns: None,
        tcp: false,
        expect: Expect::NotImp,
    },
    Check {
        section: "8.1.5",
        what: "TCP",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: None,
        tcp: true,
        expect: Expect::Soa,
    },
    Check {
        section: "8.2.1",
        what: "EDNS 0",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((0, 0, &[])),
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.2.2",
        what: "EDNS 1",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((1, 0, &[])),
        tcp: false,
        expect: Expect::BadVers,
    },
    Check {
        section: "8.2.3",
        what: "unknown option",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((0, 0, &[(100, b"")])),
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.2.4",
        what: "unknown EDNS flag",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((0, 0x0040, &[])),
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.2.5",
        what: "EDNS 1, unknown option",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((1, 0, &[(100, b"")])),
        tcp: false,
        expect: Expect::BadVers,
    },
    Check {
        section: "8.2.6",
        what: "EDNS 1, unknown flag",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((1, 0x0040, &[])),
        tcp: false,
        expect: Expect::BadVers,
    },
    Check {
        section: "8.2.7",
        what: "DO=1",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((0, DO, &[])),
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.2.8",
        what: "EDNS 1, DO=1",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((1, DO, &[])),
        tcp: false,
        expect: Expect::BadVers,
    },
    Check {
        section: "8.2.9",
        what: "defined options",
        flags: 0,
        question: true,
        qtype: SOA,
        edns: Some((
            0,
            0,
            &[
                (3, b""),
                (9, b""),
                (10, b"\x01\x02\x03\x04\x05\x06\x07\x08"),
                (8, b"\x00\x01\x00\x00"),
            ],
        )),
        tcp: false,
        expect: Expect::Soa,
    },
    Check {
        section: "8.2.10",
        what: "512 octets, DO=1",
        flags: 0,
        question: true,
        qtype: 255,
        edns: Some((0, DO, &[])),
        tcp: false,
        expect: Expect::TruncatedOrWhole,
    },
    Check {
        section: "8.2.10+",
        what: "the same over TCP",
        flags: 0,
        question: true,
        qtype: 255,
        edns: Some((0, DO, &[])),
        tcp: true,
        expect: Expect::Complete,
    },
];

fn build(c: &Check, id: u16, udp_size: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&c.flags.to_be_bytes());
    m.extend_from_slice(&[
        0,
        u8::from(c.question),
        0,
        0,
        0,
        0,
        0,
        u8::from(c.edns.is_some()),
    ]);
    if c.question {
        m.extend_from_slice(b"\x07example\x03com\x00");
        m.extend_from_slice(&c.qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
    }
    if let Some((version, flags, options)) = c.edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&udp_size.to_be_bytes());
        m.extend_from_slice(&[0, version]);
        m.extend_from_slice(&flags.to_be_bytes());
        let data: Vec<u8> = options
            .iter()
            .flat_map(|(code, d)| {
                let mut o = code.to_be_bytes().to_vec();
                o.extend_from_slice(&(d.len() as u16).to_be_bytes());
                o.extend_from_slice(d);
                o
            })
            .collect();
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(&data);
    }
    m
}

/// What a server answered, reduced to what §8 looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    rcode: u16,
    opcode: u8,
    flags: u16,
    soa_in_answer: bool,
    soa_in_authority: bool,
    answers: usize,
    opt_version: Option<u8>,
    opt_flags: u16,
    echoed_100: bool,
    tc: bool,
}

impl Seen {
    fn short(&self) -> String {
        format!(
            "rcode {} op {} flags {:04x} soa {}/{} an {} opt {:?}/{:04x}{}{}",
            self.rcode,
            self.opcode,
            self.flags & 0x07F0,
            u8::from(self.soa_in_answer),
            u8::from(self.soa_in_authority),
            self.answers,
            self.opt_version,
            self.opt_flags,
            if self.echoed_100 { " echo100" } else { "" },
            if self.tc { " TC" } else { "" }
        )
    }
}

fn observe(addr: SocketAddr, c: &Check) -> Result<Seen, String> {
    let udp_size = if matches!(c.expect, Expect::Complete | Expect::TruncatedOrWhole) {
        512
    } else {
        1232
    };
    let q = build(c, 0x5151, udp_size);
    let raw = exchange_raw(addr, &q, c.tcp).map_err(|e| format!("no answer: {e}"))?;
    if raw.len() < 12 {
        return Err(format!("{} octets", raw.len()));
    }
    let flags = u16::from_be_bytes([raw[2], raw[3]]);
    let mut seen = Seen {
        rcode: flags & 0x0F,
        opcode: ((flags >> 11) & 0x0F) as u8,
        flags,
        soa_in_answer: false,
        soa_in_authority: false,
        answers: 0,
        opt_version: None,
        opt_flags: 0,
        echoed_100: false,
        tc: flags & 0x0200 != 0,
    };
    // Header-only answers to unknown opcodes need not parse as messages.
    if let Ok(m) = Message::from_bytes(&raw) {
        seen.soa_in_answer = m.answers.iter().any(|r| r.record_type() == RecordType::SOA);
        seen.soa_in_authority = m
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA);
        seen.answers = m.answers.len();
        seen.rcode = u16::from(m.metadata.response_code);
    }
    if let Ok(m) = outpost::wire::Message::parse(&raw)
        && let Some(opt) = &m.opt
    {
        seen.opt_version = Some(opt.version);
        seen.opt_flags = opt.flags;
        seen.echoed_100 = opt.option(100).is_some();
        seen.rcode = m.rcode();
    }
    Ok(seen)
}

/// Whether `s` is what §8 expects of `c`; the reason when not.
fn judge(c: &Check, s: &Seen) -> Result<(), String> {
    let aa = s.flags & 0x0400 != 0;
    let ok = match c.expect {
        Expect::Soa => s.rcode == 0 && aa && s.soa_in_answer,
        Expect::NoData => s.rcode == 0 && aa && s.answers == 0 && s.soa_in_authority,
        Expect::NotImp => s.rcode == 4 && s.opcode == 15 && !s.soa_in_answer,
        Expect::BadVers => s.rcode == 16 && !s.soa_in_answer,
        Expect::Complete => s.rcode == 0 && !s.tc && s.answers > 0,
        Expect::TruncatedOrWhole => s.rcode == 0 && (s.tc || s.answers > 0),
    };
    if !ok {
        return Err(format!("expected {:?}", c.expect));
    }
    if c.edns.is_some() && s.opt_version != Some(0) {
        return Err("no OPT of version 0".into());
    }
    if s.echoed_100 {
        return Err("unknown option echoed".into());
    }
    if s.opt_flags & 0x7FFF != 0 {
        return Err("unknown EDNS flags echoed".into());
    }
    if c.edns.is_some_and(|e| e.1 & DO != 0) && c.expect != Expect::BadVers && s.opt_flags & DO == 0
    {
        return Err("DO not echoed".into());
    }
    // The Z bit is never set in a response (RFC 1035 §4.1.1).
    if s.flags & 0x0040 != 0 {
        return Err("Z set".into());
    }
    Ok(())
}

fn outpost_for(file: &std::path::Path) -> (tempfile::TempDir, Outpost) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{port}}\"]\ndata_dir = \"{{dir}}/data\"\n\n[[zone]]\nname = \"example.com\"\nprimaries = []\nseed_file = \"{}\"\n",
        file.display()
    );
    let mut o = Outpost::start_in(dir.path(), &config);
    o.wait_ready(ORIGIN, Duration::from_secs(15));
    (dir, o)
}

fn rfc8906(text: &str, label: &str) {
    let file_dir = tempfile::tempdir().unwrap();
    let file = file_dir.path().join("example.com.zone");
    std::fs::write(&file, text).unwrap();
    let (_dir, outpost) = outpost_for(&file);
    let zones = [(ORIGIN, text)];
    let peers: Vec<(&str, Server)> = vec![
        ("bind", Bind::start(&zones, &[], &Options::default())),
        ("knot", Knot::start(&zones, &[], &Options::default())),
        ("nsd", Nsd::start(&zones, &[], &Options::default())),
    ];
    let mut failures = Vec::new();
    eprintln!("RFC 8906 §8, {label} zone:");
    for c in CHECKS {
        let ours = observe(outpost.addr, c);
        let verdict = ours
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| judge(c, s));
        eprintln!(
            "  {:8} {:24} outpost {:58} {}",
            c.section,
            c.what,
            ours.as_ref().map_or_else(|e| e.clone(), Seen::short),
            verdict
                .as_ref()
                .map_or_else(|e| format!("FAIL: {e}"), |_| "ok".into())
        );
        for (name, peer) in &peers {
            let theirs = observe(peer.addr(), c);
            let v = theirs
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|s| judge(c, s));
            eprintln!(
                "  {:8} {:24} {:7} {:58} {}",
                "",
                "",
                name,
                theirs.as_ref().map_or_else(|e| e.clone(), Seen::short),
                v.map_or_else(|e| format!("({e})"), |_| "ok".into())
            );
        }
        if let Err(e) = verdict {
            failures.push(format!("{} {}: {e}", c.section, c.what));
        }
        // Outpost: NOTIMP copies RD alone of the request's flags.
        if c.expect == Expect::NotImp
            && let Ok(s) = &ours
        {
            let copied = s.flags & 0x07F0;
            let rd = c.flags & 0x0100;
            if copied != rd {
                failures.push(format!(
                    "{} {}: flags {copied:04x} copied, only RD expected",
                    c.section, c.what
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{label}: {}", failures.join("\n"));
}

#[test]
fn rfc8906_checks_unsigned() {
    rfc8906(BUNDLED, "unsigned");
}

#[test]
fn rfc8906_checks_signed() {
    let signed = sign(BUNDLED, Mode::Nsec);
    rfc8906(&signed.text, "signed");
}

/// The owners and covered types of the RRSIGs in the additional section
/// over A/AAAA sets of names the answer section points at (MX, NS, SRV
/// targets), and the address sets there.
fn additional_sigs(m: &Message) -> (Owners, Owners) {
    let targets: BTreeSet<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some(mx.exchange.to_ascii().to_lowercase()),
            RData::NS(ns) => Some(ns.0.to_ascii().to_lowercase()),
            RData::SRV(srv) => Some(srv.target.to_ascii().to_lowercase()),
            _ => None,
        })
        .collect();
    let mut sigs = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for r in &m.additionals {
        let owner = r.name.to_ascii().to_lowercase();
        if !targets.contains(&owner) {
            continue;
        }
        match covered(r) {
            Some(t @ (RecordType::A | RecordType::AAAA)) => {
                sigs.insert((owner, t));
            }
            Some(_) => {}
            None if matches!(r.record_type(), RecordType::A | RecordType::AAAA) => {
                addresses.insert((owner, r.record_type()));
            }
            None => {}
        }
    }
    (sigs, addresses)
}

/// RFC 4035 §3.1.1: with DO=1 the RRSIGs of the addresses in the
/// additional section go with them when there is room, as BIND and Knot
/// include them; when there is not, they are dropped before any address.
#[test]
fn additional_rrsigs_like_bind_and_knot() {
    let signed = sign(BUNDLED, Mode::Nsec);
    let (_dir, outpost) = outpost_for(&signed.file);
    let zones = [(ORIGIN, signed.text.as_str())];
    let bind = Bind::start(&zones, &[], &Options::default());
    let knot = Knot::start(&zones, &[], &Options::default());
    let questions = [
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::NS),
        ("_submission._tcp.example.com.", RecordType::SRV),
    ];
    let mut compared = 0;
    for (name, qtype) in questions {
        for tcp in [false, true] {
            let q = common::dns::Q {
                tcp,
                dnssec_ok: true,
                ..common::dns::Q::udp()
            };
            let ours = additional_sigs(&common::dns::query(outpost.addr, name, qtype, q));
            assert!(
                !ours.0.is_empty(),
                "{name} {qtype} tcp {tcp}: no RRSIGs of addresses: {ours:?}"
            );
            for (peer, addr) in [("bind", bind.addr()), ("knot", knot.addr())] {
                let theirs = additional_sigs(&common::dns::query(addr, name, qtype, q));
                eprintln!(
                    "{name} {qtype} tcp {tcp}: outpost {:?} / {peer} {:?}",
                    ours.0, theirs.0
                );
                // Every address RRSIG a peer gives for an address we also
                // give, we give too.
                let missing: Vec<_> = theirs
                    .0
                    .iter()
                    .filter(|s| ours.1.contains(s) && !ours.0.contains(s))
                    .collect();
                assert!(
                    missing.is_empty(),
                    "{name} {qtype} tcp {tcp}: {peer} includes {missing:?}, we do not"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 12);
    // No room for everything: with a 512-octet limit, signatures go before
    // addresses; any address RRSIG kept means every address set is kept.
    let small = common::dns::Q {
        edns: Some(512),
        dnssec_ok: true,
        ..common::dns::Q::udp()
    };
    let full = additional_sigs(&common::dns::query(
        outpost.addr,
        "example.com.",
        RecordType::MX,
        common::dns::Q {
            tcp: true,
            dnssec_ok: true,
            ..common::dns::Q::udp()
        },
    ));
    let cut = common::dns::query(outpost.addr, "example.com.", RecordType::MX, small);
    let (sigs, addresses) = additional_sigs(&cut);
    eprintln!(
        "512 octets: {} of {} address sets, {} of {} RRSIGs",
        addresses.len(),
        full.1.len(),
        sigs.len(),
        full.0.len()
    );
    assert!(
        sigs.len() < full.0.len(),
        "everything fit in 512 octets: the case is not tested"
    );
    if !sigs.is_empty() {
        assert_eq!(addresses, full.1, "an RRSIG kept while an address set went");
    }
    assert!(
        !cut.metadata.truncation || cut.answers.is_empty(),
        "additional data alone never sets TC"
    );
}
