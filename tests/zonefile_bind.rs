//! Our master-file reader and writer against BIND's own tools: a zone with
//! many types is signed by `dnssec-signzone` (NSEC, NSEC3 with salt and
//! iterations, NSEC3 opt-out); our reading must match BIND's canonical dump
//! record for record, and BIND must accept what we write and read it the same.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use hickory_proto::rr::{Name, Record, RecordType};
use outpost::zonefile::{parse_file, write_zone};

const ZONE: &str = "example.test";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/zonefile")
}

/// Runs a BIND tool in `dir`, failing loudly if it is missing or fails.
fn run(dir: &Path, tool: &str, args: &[&str]) -> String {
    let out = match Command::new(tool).args(args).current_dir(dir).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "{tool} is not installed (Debian packages bind9-utils / bind9-dnsutils); this test needs it"
            )
        }
        Err(e) => panic!("cannot run {tool}: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{tool} {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

type Key = (Vec<Vec<u8>>, u16, u16, u32, Vec<u8>);

/// Everything that goes on the wire, owner case included.
fn key(r: &Record) -> Key {
    (
        r.name.iter().map(<[u8]>::to_vec).collect(),
        u16::from(r.record_type()),
        u16::from(r.dns_class),
        r.ttl,
        outpost::rr::rdata_to_wire(&r.data),
    )
}

fn sorted(recs: &[Record]) -> Vec<Key> {
    let mut v: Vec<Key> = recs.iter().map(key).collect();
    v.sort();
    v
}

fn assert_same(what: &str, a: &[Record], b: &[Record]) {
    let (a, b) = (sorted(a), sorted(b));
    let only_a: Vec<_> = a.iter().filter(|k| !b.contains(k)).collect();
    let only_b: Vec<_> = b.iter().filter(|k| !a.contains(k)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty() && a.len() == b.len(),
        "{what}: {} vs {} records\nonly in first: {only_a:?}\nonly in second: {only_b:?}",
        a.len(),
        b.len()
    );
}

fn count(recs: &[Record], t: RecordType) -> usize {
    recs.iter().filter(|r| r.record_type() == t).count()
}

fn check_mode(sign_args: &[&str], nsec3: bool, opt_out: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["example.test.zone", "extra.inc"] {
        std::fs::copy(fixture_dir().join(f), d.join(f)).unwrap();
    }
    run(
        d,
        "dnssec-keygen",
        &["-q", "-K", ".", "-a", "ECDSAP256SHA256", "-f", "KSK", ZONE],
    );
    run(
        d,
        "dnssec-keygen",
        &["-q", "-K", ".", "-a", "ECDSAP256SHA256", ZONE],
    );
    let mut args = vec!["-S", "-K", ".", "-d", ".", "-o", ZONE, "-f", "signed.zone"];
    args.extend_from_slice(sign_args);
    args.push("example.test.zone");
    run(d, "dnssec-signzone", &args);

    let origin = Name::from_str("example.test.").unwrap();
    let ours = parse_file(&d.join("signed.zone"), &origin).unwrap_or_else(|e| panic!("{e}"));
    assert!(count(&ours, RecordType::RRSIG) > 50);
    assert_eq!(count(&ours, RecordType::DNSKEY), 2);
    if nsec3 {
        assert_eq!(count(&ours, RecordType::NSEC), 0);
        assert!(count(&ours, RecordType::NSEC3) > 10);
        assert_eq!(count(&ours, RecordType::NSEC3PARAM), 1);
        let flags: Vec<u8> = ours
            .iter()
            .filter(|r| r.record_type() == RecordType::NSEC3)
            .map(|r| outpost::rr::rdata_to_wire(&r.data)[1])
            .collect();
        assert!(
            flags.iter().all(|&f| f == u8::from(opt_out)),
            "NSEC3 flags {flags:?}"
        );
        let param = ours
            .iter()
            .find(|r| r.record_type() == RecordType::NSEC3PARAM)
            .unwrap();
        assert_eq!(
            outpost::rr::rdata_to_wire(&param.data),
            [1, 0, 0, 5, 4, 0xaa, 0xbb, 0xcc, 0xdd]
        );
    } else {
        assert!(count(&ours, RecordType::NSEC) > 30);
    }

    // BIND's reading of the same file, via its canonical dump.
    run(
        d,
        "named-compilezone",
        &[
            "-f",
            "text",
            "-F",
            "text",
            "-s",
            "full",
            "-o",
            "bind.zone",
            ZONE,
            "signed.zone",
        ],
    );
    let bind = parse_file(&d.join("bind.zone"), &origin).unwrap_or_else(|e| panic!("{e}"));
    assert_same("ours vs BIND's dump", &ours, &bind);

    // What we write: BIND accepts it, reads it as we do, and we read it back exactly.
    let mut out = Vec::new();
    write_zone(&mut out, &origin, &ours).unwrap();
    std::fs::write(d.join("ours.zone"), &out).unwrap();
    let text = String::from_utf8(out).unwrap();
    // Only the types without a presentation format fall back to RFC 3597.
    for line in text.lines().filter(|l| l.contains("\\#")) {
        assert!(
            line.contains(" IN TYPE6500") || line.contains(" IN NULL "),
            "generic form where a type format exists: {line}"
        );
    }
    let check = run(d, "named-checkzone", &[ZONE, "ours.zone"]);
    assert!(
        check.contains("loaded serial 2024060101 (DNSSEC signed)"),
        "{check}"
    );
    run(
        d,
        "named-compilezone",
        &[
            "-f",
            "text",
            "-F",
            "text",
            "-s",
            "full",
            "-o",
            "bind2.zone",
            ZONE,
            "ours.zone",
        ],
    );
    let bind2 = parse_file(&d.join("bind2.zone"), &origin).unwrap();
    assert_same(
        "BIND's reading of our output vs of the signed file",
        &bind2,
        &bind,
    );

    let back = parse_file(&d.join("ours.zone"), &Name::from_str("unrelated.").unwrap()).unwrap();
    let soa = ours
        .iter()
        .position(|r| r.record_type() == RecordType::SOA)
        .unwrap();
    let mut want: Vec<Key> = ours.iter().map(key).collect();
    let soa_key = want.remove(soa);
    want.insert(0, soa_key);
    assert_eq!(
        back.iter().map(key).collect::<Vec<_>>(),
        want,
        "parse(write(x)) != x"
    );
}

#[test]
fn nsec_signed_zone_matches_bind() {
    check_mode(&[], false, false);
}

#[test]
fn nsec3_salted_zone_matches_bind() {
    check_mode(&["-3", "AABBCCDD", "-H", "5"], true, false);
}

#[test]
fn nsec3_opt_out_zone_matches_bind() {
    check_mode(&["-3", "AABBCCDD", "-H", "5", "-A"], true, true);
}

/// The unsigned fixture read by us and by BIND, record for record, with the
/// odd names and every type it holds checked by name.
#[test]
fn unsigned_fixture_matches_bind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // BIND resolves $INCLUDE against its working directory, so both read a copy there.
    for f in ["example.test.zone", "extra.inc"] {
        std::fs::copy(fixture_dir().join(f), d.join(f)).unwrap();
    }
    let origin = Name::from_str("example.test.").unwrap();
    let ours = parse_file(&d.join("example.test.zone"), &origin).unwrap_or_else(|e| panic!("{e}"));
    run(
        d,
        "named-compilezone",
        &[
            "-f",
            "text",
            "-F",
            "text",
            "-s",
            "full",
            "-o",
            "bind.zone",
            ZONE,
            "example.test.zone",
        ],
    );
    let bind = parse_file(&d.join("bind.zone"), &origin).unwrap();
    assert_same("ours vs BIND's dump", &ours, &bind);
    let types: std::collections::BTreeSet<String> = ours
        .iter()
        .map(|r| outpost::zonefile::type_to_text(r.record_type()))
        .collect();
    for t in [
        "A",
        "AAAA",
        "NS",
        "CNAME",
        "DNAME",
        "PTR",
        "MX",
        "SOA",
        "TXT",
        "SPF",
        "HINFO",
        "RP",
        "AFSDB",
        "RT",
        "KX",
        "SRV",
        "NAPTR",
        "LOC",
        "CERT",
        "SSHFP",
        "TLSA",
        "SMIMEA",
        "OPENPGPKEY",
        "CAA",
        "URI",
        "DS",
        "CDS",
        "CDNSKEY",
        "ZONEMD",
        "SVCB",
        "HTTPS",
        "CSYNC",
        "EUI48",
        "EUI64",
        "DHCID",
        "IPSECKEY",
        "APL",
        "NID",
        "L32",
        "L64",
        "LP",
        "HIP",
        "WKS",
        "TYPE65000",
        "TYPE65001",
        "X25",
        "ISDN",
        "PX",
        "NSAP-PTR",
        "TALINK",
        "NINFO",
        "AVC",
        "RESINFO",
        "WALLET",
        "RKEY",
        "GPOS",
        "EID",
        "NIMLOC",
        "DSYNC",
        "AMTRELAY",
        "NSAP",
        "KEY",
        "TA",
        "SINK",
        "NULL",
    ] {
        assert!(types.contains(t), "fixture lacks {t}");
    }
    let names: Vec<String> = ours
        .iter()
        .map(|r| outpost::zonefile::name_to_text(&r.name))
        .collect();
    for n in [
        "odd\\.label\\032x\\000.example.test.",
        "\\$dollar\\@at.example.test.",
        "MixedCase.Sub.example.test.",
        "inc.sub.example.test.",
        "after.other.example.test.",
    ] {
        assert!(names.iter().any(|x| x == n), "missing owner {n}");
    }
}
