//! Differential test: Outpost and a real BIND serve the same zone; their
//! answers to the same queries must agree in every part a resolver uses.

mod common;

use std::time::Duration;

use hickory_proto::rr::RecordType;

use common::dns::{Q, query, semantic};
use common::outpost::Outpost;
use common::peers::{Bind, Options};

const ZONE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/diff.example.zone");

/// Every rule of the answer engine, as (name, type).
const QUERIES: &[(&str, RecordType)] = &[
    ("example.com.", RecordType::SOA),
    ("example.com.", RecordType::NS),
    ("example.com.", RecordType::MX),
    ("example.com.", RecordType::TXT),
    ("example.com.", RecordType::A),
    ("example.com.", RecordType::AAAA),
    ("example.com.", RecordType::DS),
    ("example.com.", RecordType::DNSKEY),
    ("ExAmPlE.CoM.", RecordType::MX),
    ("ns1.example.com.", RecordType::A),
    ("ns1.example.com.", RecordType::AAAA),
    ("mail.example.com.", RecordType::A),
    ("mail.example.com.", RecordType::AAAA),
    ("mail2.example.com.", RecordType::AAAA),
    ("mail2.example.com.", RecordType::MX),
    ("MAIL.example.com.", RecordType::A),
    ("www.example.com.", RecordType::A),
    ("www.example.com.", RecordType::AAAA),
    ("www.example.com.", RecordType::CNAME),
    ("www.example.com.", RecordType::MX),
    ("web.example.com.", RecordType::A),
    ("chain1.example.com.", RecordType::A),
    ("chain1.example.com.", RecordType::TXT),
    ("ext.example.com.", RecordType::A),
    ("dangling.example.com.", RecordType::A),
    ("tonodata.example.com.", RecordType::AAAA),
    ("towild.example.com.", RecordType::A),
    ("todeleg.example.com.", RecordType::A),
    ("nonexistent.example.com.", RecordType::A),
    ("deep.nonexistent.example.com.", RecordType::MX),
    ("_submission._tcp.example.com.", RecordType::SRV),
    ("_imap._tcp.example.com.", RecordType::SRV),
    ("_xmpp._tcp.example.com.", RecordType::SRV),
    ("_tcp.example.com.", RecordType::SRV),
    ("host.users.example.com.", RecordType::A),
    ("host.users.example.com.", RecordType::TXT),
    ("host.users.example.com.", RecordType::AAAA),
    ("a.b.c.users.example.com.", RecordType::A),
    ("known.users.example.com.", RecordType::A),
    ("known.users.example.com.", RecordType::TXT),
    ("below.known.users.example.com.", RecordType::A),
    ("users.example.com.", RecordType::A),
    ("*.users.example.com.", RecordType::A),
    ("x.mx.example.com.", RecordType::MX),
    ("ent.example.com.", RecordType::A),
    ("b.ent.example.com.", RecordType::TXT),
    ("a.b.ent.example.com.", RecordType::A),
    ("c.a.b.ent.example.com.", RecordType::A),
    ("old.example.com.", RecordType::DNAME),
    ("old.example.com.", RecordType::A),
    ("host.old.example.com.", RecordType::A),
    ("a.b.old.example.com.", RecordType::MX),
    ("dept.example.com.", RecordType::NS),
    ("dept.example.com.", RecordType::A),
    ("dept.example.com.", RecordType::DS),
    ("host.dept.example.com.", RecordType::A),
    ("ns.dept.example.com.", RecordType::A),
    ("signed.example.com.", RecordType::DS),
    ("signed.example.com.", RecordType::NS),
    ("www.signed.example.com.", RecordType::AAAA),
    ("outsider.example.com.", RecordType::A),
    ("big.example.com.", RecordType::TXT),
    ("huge.example.com.", RecordType::TXT),
    ("caa.example.com.", RecordType::CAA),
    ("host.example.com.", RecordType::HINFO),
    ("host.example.com.", RecordType::ANY),
    ("example.com.", RecordType::ANY),
    ("www.example.org.", RecordType::A),
    ("com.", RecordType::NS),
];

#[test]
fn outpost_answers_like_bind() {
    let dir = tempfile::tempdir().unwrap();
    let zone_text = std::fs::read_to_string(ZONE_FILE).unwrap();
    let bind = Bind::start(&[("example.com.", &zone_text)], &[], &Options::default());
    let bind_addr = bind.addr();
    let out_dir = dir.path().join("outpost");
    std::fs::create_dir_all(&out_dir).unwrap();
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
    let mut outpost = Outpost::start_in(&out_dir, &config);
    outpost.wait_ready("example.com.", Duration::from_secs(10));

    let mut compared = 0;
    let mut failures = Vec::new();
    for &(name, qtype) in QUERIES {
        let modes: &[(&str, Q)] = &[
            ("udp", Q::udp()),
            ("tcp", Q::tcp()),
            ("udp-512", Q::plain_udp()),
        ];
        for (mode, q) in modes {
            // RFC 8482: over UDP Outpost gives one RRset of an ANY answer;
            // BIND gives them all. Over TCP both give everything.
            if qtype == RecordType::ANY && !q.tcp {
                let ours = query(outpost.addr, name, qtype, *q);
                let theirs = query(bind_addr, name, qtype, Q::tcp());
                let theirs = semantic(&theirs, "example.com.");
                let ours_s = semantic(&ours, "example.com.");
                if !ours.metadata.truncation
                    && (ours_s.answer.is_empty() || !ours_s.answer.is_subset(&theirs.answer))
                {
                    failures.push(format!(
                        "{name} {qtype} {mode}: ANY over UDP not a subset: {:?}",
                        ours_s.answer
                    ));
                }
                compared += 1;
                continue;
            }
            let ours = semantic(&query(outpost.addr, name, qtype, *q), "example.com.");
            let theirs = semantic(&query(bind_addr, name, qtype, *q), "example.com.");
            compared += 1;
            if ours != theirs {
                failures.push(format!(
                    "{name} {qtype} {mode}:\n  outpost {ours:?}\n  bind    {theirs:?}"
                ));
            }
        }
    }
    assert!(compared >= 180, "compared {compared}");
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
