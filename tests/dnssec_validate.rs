//! End-to-end validation: Outpost transfers a zone signed by
//! `dnssec-signzone` from a BIND primary, and BIND's validating `delv`,
//! given the zone's key-signing key as its only trust anchor, validates
//! what Outpost answers: positive answers, wildcard expansions, NXDOMAIN
//! and NODATA, for NSEC, NSEC3 and NSEC3 opt-out zones.

mod common;
#[path = "dnssec_support/mod.rs"]
mod dnssec_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::outpost::Outpost;
use common::peers::{Bind, Options, soa_serial};
use dnssec_support::{Mode, ORIGIN, SignedZone, sign};

/// `trust-anchors` clause for delv's `-a` file, from a DNSKEY line.
fn anchor_file(dir: &Path, signed: &SignedZone) -> std::path::PathBuf {
    let tokens: Vec<&str> = signed.ksk.split_whitespace().collect();
    let at = tokens
        .iter()
        .position(|t| *t == "DNSKEY")
        .expect("DNSKEY in the key line");
    let (flags, proto, alg) = (tokens[at + 1], tokens[at + 2], tokens[at + 3]);
    let key: String = tokens[at + 4..].concat();
    let path = dir.join("anchor.conf");
    std::fs::write(
        &path,
        format!("trust-anchors {{ \"{ORIGIN}\" static-key {flags} {proto} {alg} \"{key}\"; }};\n"),
    )
    .unwrap();
    path
}

fn delv(server: SocketAddr, anchor: &Path, name: &str, qtype: &str) -> String {
    let out = match Command::new("delv")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-a"])
        .arg(anchor)
        .arg(format!("+root={ORIGIN}"))
        .args(["+tcp", "+vtrace", name, qtype])
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("delv is not installed (Debian package bind9-dnsutils); this test needs it")
        }
        Err(e) => panic!("cannot run delv: {e}"),
    };
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// (name, type, what delv must say).
const CASES: &[(&str, &str, &str)] = &[
    ("example.com.", "SOA", "; fully validated"),
    ("example.com.", "DNSKEY", "; fully validated"),
    ("example.com.", "MX", "; fully validated"),
    ("mail.example.com.", "AAAA", "; fully validated"),
    ("www.example.com.", "A", "; fully validated"),
    ("host.users.example.com.", "TXT", "; fully validated"),
    ("a.b.users.example.com.", "A", "; fully validated"),
    ("x.cn.example.com.", "A", "; fully validated"),
    ("secure.example.com.", "DS", "; fully validated"),
    (
        "nothere.example.com.",
        "A",
        "; negative response, fully validated",
    ),
    (
        "x.ent.example.com.",
        "A",
        "; negative response, fully validated",
    ),
    (
        "web.example.com.",
        "MX",
        "; negative response, fully validated",
    ),
    (
        "ent.example.com.",
        "A",
        "; negative response, fully validated",
    ),
    (
        "host.users.example.com.",
        "AAAA",
        "; negative response, fully validated",
    ),
    (
        "insecure.example.com.",
        "DS",
        "; negative response, fully validated",
    ),
];

fn validate(mode: Mode) {
    let signed = sign(dnssec_support::ZONE_TEXT, mode);
    let bind = Bind::start(&[(ORIGIN, &signed.text)], &[], &Options::default());
    let primary = bind.addr();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:{{port}}"]
data_dir = "{{dir}}/data"

[[zone]]
name = "example.com"
primaries = ["{primary}"]
"#
    );
    let mut outpost = Outpost::start_in(dir.path(), &config);
    outpost.wait_ready(ORIGIN, Duration::from_secs(10));
    let start = Instant::now();
    while soa_serial(outpost.addr, ORIGIN) != Some(2024010101) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "zone not transferred: {}",
            outpost.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        outpost
            .log_text()
            .contains("transfer done, new copy in service"),
        "{}",
        outpost.log_text()
    );
    let anchor = anchor_file(dir.path(), &signed);
    let mut failures = Vec::new();
    for &(name, qtype, want) in CASES {
        // RFC 5155 §9.2: a wildcard expansion whose next closer name falls
        // in an opt-out span cannot be proven secure (an insecure
        // delegation could hide there): validators call it insecure, for
        // BIND's own answers too (checked below).
        let want = match (mode, name, qtype) {
            (Mode::Nsec3OptOut, "host.users.example.com.", "TXT")
            | (Mode::Nsec3OptOut, "a.b.users.example.com.", "A") => "; unsigned answer",
            _ => want,
        };
        let out = delv(outpost.addr, &anchor, name, qtype);
        let verdict = |out: &str| {
            out.lines()
                .find(|l| l.starts_with("; "))
                .map(str::to_string)
        };
        if !out.lines().any(|l| l.trim() == want) {
            failures.push(format!("{name} {qtype}: want `{want}`, delv said:\n{out}"));
        }
        let from_bind = delv(primary, &anchor, name, qtype);
        if verdict(&out) != verdict(&from_bind) {
            failures.push(format!(
                "{name} {qtype}: delv says {:?} through Outpost, {:?} through BIND",
                verdict(&out),
                verdict(&from_bind)
            ));
        }
    }
    // The check can fail: the same questions against a copy whose key is
    // not the anchor are not validated.
    let other = sign(dnssec_support::ZONE_TEXT, mode);
    let wrong = anchor_file(other.dir.path(), &other);
    let out = delv(outpost.addr, &wrong, "example.com.", "SOA");
    assert!(
        !out.contains("fully validated"),
        "validated with the wrong trust anchor:\n{out}"
    );
    eprintln!(
        "{mode:?}: {} of {} delv checks validated",
        CASES.len() - failures.len(),
        CASES.len()
    );
    assert!(failures.is_empty(), "{mode:?}:\n{}", failures.join("\n"));
}

#[test]
fn nsec_zone_validates_through_outpost() {
    validate(Mode::Nsec);
}

#[test]
fn nsec3_zone_validates_through_outpost() {
    validate(Mode::Nsec3);
}

#[test]
fn nsec3_opt_out_zone_validates_through_outpost() {
    validate(Mode::Nsec3OptOut);
}
