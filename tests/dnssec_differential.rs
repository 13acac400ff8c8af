//! Differential test of signed-zone answers: BIND and Outpost serve the same
//! zone signed by `dnssec-signzone` (NSEC, NSEC3, NSEC3 opt-out); with DO=1
//! their answer and authority sections, RRSIGs and denial proofs included,
//! must be the same. With DO=0, Outpost must still agree (no DNSSEC records
//! unless asked for by type).

mod common;
#[path = "dnssec_support/mod.rs"]
mod dnssec_support;

use std::time::Duration;

use hickory_proto::rr::RecordType;

use common::dns::{Q, query, semantic};
use common::outpost::Outpost;
use common::peers::{Bind, Options};
use dnssec_support::{Mode, ORIGIN, covered, sign, strip_apex_ns_sigs};

/// (name, type, what it exercises).
const QUERIES: &[(&str, RecordType, &str)] = &[
    ("example.com.", RecordType::SOA, "positive"),
    ("example.com.", RecordType::NS, "positive"),
    ("example.com.", RecordType::MX, "positive"),
    ("example.com.", RecordType::TXT, "positive"),
    ("example.com.", RecordType::DNSKEY, "dnskey"),
    ("Example.COM.", RecordType::DNSKEY, "dnskey"),
    ("ns1.example.com.", RecordType::A, "positive"),
    ("mail.example.com.", RecordType::AAAA, "positive"),
    ("web.example.com.", RecordType::A, "positive"),
    ("_sip._tcp.example.com.", RecordType::SRV, "positive"),
    (
        "known.users.example.com.",
        RecordType::A,
        "positive beside wildcard",
    ),
    ("a.b.ent.example.com.", RecordType::A, "positive below ENT"),
    ("zz.example.com.", RecordType::TXT, "positive, last name"),
    ("www.example.com.", RecordType::A, "cname"),
    ("www.example.com.", RecordType::CNAME, "cname itself"),
    ("alias.example.com.", RecordType::AAAA, "cname chain"),
    ("ext.example.com.", RecordType::A, "cname out of zone"),
    ("towild.example.com.", RecordType::A, "cname to wildcard"),
    ("tonx.example.com.", RecordType::A, "cname to nxdomain"),
    ("www.example.com.", RecordType::MX, "cname to nodata"),
    ("x.cn.example.com.", RecordType::A, "wildcard cname"),
    ("nothere.example.com.", RecordType::A, "nxdomain"),
    (
        "deep.nothere.example.com.",
        RecordType::MX,
        "nxdomain two labels",
    ),
    ("aaa.example.com.", RecordType::A, "nxdomain first"),
    ("zzz.example.com.", RecordType::A, "nxdomain after last"),
    ("x.ent.example.com.", RecordType::A, "nxdomain below ENT"),
    (
        "x.a.b.ent.example.com.",
        RecordType::TXT,
        "nxdomain below leaf",
    ),
    (
        "x.deep.example.com.",
        RecordType::A,
        "nxdomain below opt-out ENT",
    ),
    ("web.example.com.", RecordType::MX, "nodata"),
    ("ns1.example.com.", RecordType::AAAA, "nodata"),
    ("example.com.", RecordType::AAAA, "nodata apex"),
    ("web.example.com.", RecordType::DS, "nodata ds"),
    ("web.example.com.", RecordType::NSEC, "nsec by type"),
    ("web.example.com.", RecordType::RRSIG, "rrsig by type"),
    ("ent.example.com.", RecordType::A, "ENT"),
    ("b.ent.example.com.", RecordType::TXT, "ENT"),
    (
        "deep.example.com.",
        RecordType::A,
        "ENT of insecure delegation",
    ),
    ("users.example.com.", RecordType::A, "ENT above wildcard"),
    ("host.users.example.com.", RecordType::A, "wildcard"),
    ("host.users.example.com.", RecordType::TXT, "wildcard"),
    ("a.b.users.example.com.", RecordType::A, "wildcard, deeper"),
    (
        "host.users.example.com.",
        RecordType::AAAA,
        "wildcard nodata",
    ),
    (
        "x.y.users.example.com.",
        RecordType::MX,
        "wildcard nodata, deeper",
    ),
    ("*.users.example.com.", RecordType::A, "wildcard owner"),
    (
        "*.users.example.com.",
        RecordType::AAAA,
        "wildcard owner nodata",
    ),
    ("secure.example.com.", RecordType::A, "referral signed"),
    ("www.secure.example.com.", RecordType::A, "referral signed"),
    ("secure.example.com.", RecordType::NS, "referral signed"),
    ("secure.example.com.", RecordType::DS, "ds"),
    ("insecure.example.com.", RecordType::A, "referral unsigned"),
    (
        "host.insecure.example.com.",
        RecordType::AAAA,
        "referral unsigned",
    ),
    ("insecure.example.com.", RecordType::DS, "nodata ds at cut"),
    ("child.deep.example.com.", RecordType::A, "referral opt-out"),
    (
        "x.child.deep.example.com.",
        RecordType::A,
        "referral opt-out",
    ),
    (
        "child.deep.example.com.",
        RecordType::DS,
        "ds at opt-out cut",
    ),
];

fn differential(mode: Mode) {
    let signed = sign(dnssec_support::ZONE_TEXT, mode);
    let bind = Bind::start(&[(ORIGIN, &signed.text)], &[], &Options::default());
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:{{port}}"]
data_dir = "{{dir}}/data"

[[zone]]
name = "example.com"
primaries = []
seed_file = "{}"
"#,
        signed.file.display()
    );
    let mut outpost = Outpost::start_in(dir.path(), &config);
    outpost.wait_ready(ORIGIN, Duration::from_secs(10));

    let do_udp = Q {
        dnssec_ok: true,
        ..Q::udp()
    };
    let do_tcp = Q {
        dnssec_ok: true,
        ..Q::tcp()
    };
    let modes: &[(&str, Q)] = &[("do-udp", do_udp), ("do-tcp", do_tcp), ("udp", Q::udp())];
    let mut compared = 0;
    let mut with_sigs = 0;
    let mut failures = Vec::new();
    for &(name, qtype, what) in QUERIES {
        for (qmode, q) in modes {
            let ours = strip_apex_ns_sigs(query(outpost.addr, name, qtype, *q), ORIGIN);
            let theirs = strip_apex_ns_sigs(query(bind.addr(), name, qtype, *q), ORIGIN);
            let sigs = ours
                .answers
                .iter()
                .chain(ours.authorities.iter())
                .filter(|r| covered(r).is_some())
                .count();
            if !q.dnssec_ok
                && qtype != RecordType::RRSIG
                && ours.answers.iter().chain(ours.authorities.iter()).any(|r| {
                    matches!(
                        r.record_type(),
                        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
                    ) && r.record_type() != qtype
                })
            {
                failures.push(format!(
                    "{name} {qtype} ({what}) {qmode}: DNSSEC records without DO"
                ));
            }
            if q.dnssec_ok && sigs > 0 {
                with_sigs += 1;
            }
            let (ours, theirs) = (semantic(&ours, ORIGIN), semantic(&theirs, ORIGIN));
            compared += 1;
            if ours != theirs {
                failures.push(format!(
                    "{name} {qtype} ({what}) {qmode}:\n  outpost {ours:#?}\n  bind    {theirs:#?}"
                ));
            }
        }
    }
    eprintln!(
        "{mode:?}: {compared} answers compared, {with_sigs} DO answers carried RRSIGs, {} differ",
        failures.len()
    );
    assert!(compared >= 3 * 40, "compared {compared}");
    // Every DO answer from a signed zone carries a signature: data, denial
    // proofs, and referrals (DS, or the proof that there is none).
    assert_eq!(with_sigs, 2 * QUERIES.len(), "DO answers with RRSIGs");
    assert!(
        failures.is_empty(),
        "{mode:?}: {} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn signed_nsec_zone_answers_like_bind() {
    differential(Mode::Nsec);
}

#[test]
fn signed_nsec3_zone_answers_like_bind() {
    differential(Mode::Nsec3);
}

#[test]
fn signed_nsec3_opt_out_zone_answers_like_bind() {
    differential(Mode::Nsec3OptOut);
}
