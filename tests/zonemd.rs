//! ZONEMD (RFC 8976): the digest against the RFC's own example zones and
//! published digests (Appendix A, as corrected by errata), and the check on
//! transfer: a zone with a correct digest is served, a tampered one is
//! rejected while the old copy keeps serving, `require` rejects a zone
//! without ZONEMD, `ignore` serves a tampered one.

mod common;

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RData, Record, RecordType};
use outpost::zonefile::parse_str;
use outpost::zonemd::{self, ZonemdError, ZonemdOutcome};

use common::dns::{Q, query};
use common::outpost::Outpost;
use common::peers::{Bind, Options, soa_serial};

/// RFC 8976 Appendix A.1.
const SIMPLE: &str = r#"
example.      86400  IN  SOA     ns1 admin 2018031900 (
                                 1800 900 604800 86400 )
              86400  IN  NS      ns1
              86400  IN  NS      ns2
              86400  IN  ZONEMD  2018031900 1 1 (
                                 c68090d90a7aed71
                                 6bc459f9340e3d7c
                                 1370d4d24b7e2fc3
                                 a1ddc0b9a87153b9
                                 a9713b3c9ae5cc27
                                 777f98b8e730044c )
ns1           3600   IN  A       203.0.113.63
ns2           3600   IN  AAAA    2001:db8::63
"#;

/// RFC 8976 Appendix A.2: occluded data, duplicates, out-of-zone data,
/// case, a wildcard, RDATA names, RDATA order, a non-apex ZONEMD.
const COMPLEX: &str = r#"
example.      86400  IN  SOA     ns1 admin 2018031900 (
                                 1800 900 604800 86400 )
              86400  IN  NS      ns1
              86400  IN  NS      ns2
              86400  IN  ZONEMD  2018031900 1 1 (
                                 a3b69bad980a3504
                                 e1cffcb0fd6397f9
                                 3848071c93151f55
                                 2ae2f6b1711d4bd2
                                 d8b39808226d7b9d
                                 b71e34b72077f8fe )
ns1           3600   IN  A       203.0.113.63
NS2           3600   IN  AAAA    2001:db8::63
occluded.sub  7200   IN  TXT     "I'm occluded but must be digested"
sub           7200   IN  NS      ns1
duplicate     300    IN  TXT     "I must be digested just once"
duplicate     300    IN  TXT     "I must be digested just once"
foo.test.     555    IN  TXT     "out-of-zone data must be excluded"
UPPERCASE     3600   IN  TXT     "canonicalize uppercase owner names"
*             777    IN  PTR     dont-forget-about-wildcards
mail          3600   IN  MX      20 MAIL1
mail          3600   IN  MX      10 Mail2.Example.
sortme        3600   IN  AAAA    2001:db8::5:61
sortme        3600   IN  AAAA    2001:db8::3:62
sortme        3600   IN  AAAA    2001:db8::4:63
sortme        3600   IN  AAAA    2001:db8::1:65
sortme        3600   IN  AAAA    2001:db8::2:64
non-apex      900    IN  ZONEMD  2018031900 1 1 (
                                 616c6c6f77656420
                                 6275742069676e6f
                                 7265642e20616c6c
                                 6f77656420627574
                                 2069676e6f726564
                                 2e20616c6c6f7765 )
"#;

/// RFC 8976 Appendix A.3: SHA-384 and SHA-512 digests beside ZONEMD
/// records of unknown hash algorithm and scheme.
const MULTIPLE: &str = r#"
example.      86400  IN  SOA     ns1 admin 2018031900 (
                                 1800 900 604800 86400 )
example.      86400  IN  NS      ns1.example.
example.      86400  IN  NS      ns2.example.
example.      86400  IN  ZONEMD  2018031900 1 1 (
                                 62e6cf51b02e54b9
                                 b5f967d547ce4313
                                 6792901f9f88e637
                                 493daaf401c92c27
                                 9dd10f0edb1c56f8
                                 080211f8480ee306 )
example.      86400  IN  ZONEMD  2018031900 1 2 (
                                 08cfa1115c7b948c
                                 4163a901270395ea
                                 226a930cd2cbcf2f
                                 a9a5e6eb85f37c8a
                                 4e114d884e66f176
                                 eab121cb02db7d65
                                 2e0cc4827e7a3204
                                 f166b47e5613fd27 )
example.      86400  IN  ZONEMD  2018031900 1 240 (
                                 e2d523f654b9422a
                                 96c5a8f44607bbee )
example.      86400  IN  ZONEMD  2018031900 241 1 (
                                 e1846540e33a9e41
                                 89792d18d5d131f6
                                 05fc283eaaaaaaaa
                                 aaaaaaaaaaaaaaaa
                                 aaaaaaaaaaaaaaaa
                                 aaaaaaaaaaaaaaaa)
ns1.example.  3600   IN  A       203.0.113.63
ns2.example.  86400  IN  TXT     "This example has multiple digests"
NS2.EXAMPLE.  3600   IN  AAAA    2001:db8::63
"#;

fn origin() -> Name {
    Name::from_str("example.").unwrap()
}

fn records(text: &str) -> Vec<Record> {
    parse_str(text, &origin(), "rfc8976").unwrap_or_else(|e| panic!("{e}"))
}

fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

#[test]
fn rfc8976_simple_example() {
    let recs = records(SIMPLE);
    assert_eq!(
        zonemd::verify(&origin(), &recs),
        Ok(ZonemdOutcome::Verified { scheme: 1, hash: 1 })
    );
    assert_eq!(
        zonemd::digest(&origin(), &recs, 1).unwrap(),
        hex(
            "c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c"
        )
    );
}

#[test]
fn rfc8976_complex_example() {
    let recs = records(COMPLEX);
    assert_eq!(
        zonemd::verify(&origin(), &recs),
        Ok(ZonemdOutcome::Verified { scheme: 1, hash: 1 })
    );
}

#[test]
fn rfc8976_multiple_digests() {
    let recs = records(MULTIPLE);
    assert_eq!(
        zonemd::verify(&origin(), &recs),
        Ok(ZonemdOutcome::Verified { scheme: 1, hash: 1 })
    );
    // Both supported digests are right on their own.
    assert_eq!(
        zonemd::digest(&origin(), &recs, 2).unwrap(),
        hex(
            "08cfa1115c7b948c4163a901270395ea226a930cd2cbcf2fa9a5e6eb85f37c8a4e114d884e66f176eab121cb02db7d652e0cc4827e7a3204f166b47e5613fd27"
        )
    );
    let only_sha512: Vec<Record> = recs
        .iter()
        .filter(|r| !(u16::from(r.record_type()) == zonemd::ZONEMD && zonemd_hash(r) != Some(2)))
        .cloned()
        .collect();
    assert_eq!(
        zonemd::verify(&origin(), &only_sha512),
        Ok(ZonemdOutcome::Verified { scheme: 1, hash: 2 })
    );
    let only_unknown: Vec<Record> = recs
        .iter()
        .filter(|r| {
            !(u16::from(r.record_type()) == zonemd::ZONEMD
                && matches!(zonemd_hash(r), Some(1) | Some(2)))
        })
        .cloned()
        .collect();
    assert_eq!(
        zonemd::verify(&origin(), &only_unknown),
        Ok(ZonemdOutcome::Unsupported)
    );
}

fn zonemd_hash(r: &Record) -> Option<u8> {
    match &r.data {
        RData::Unknown { rdata, .. } if rdata.anything[4] == 1 => Some(rdata.anything[5]),
        RData::Unknown { rdata, .. } => Some(rdata.anything[5].wrapping_add(100)),
        _ => None,
    }
}

#[test]
fn tampering_and_malformed_sets_are_rejected() {
    // One changed address.
    let tampered = records(&SIMPLE.replace("203.0.113.63", "203.0.113.64"));
    assert!(matches!(
        zonemd::verify(&origin(), &tampered),
        Err(ZonemdError::Mismatch { .. })
    ));
    // A record added, one dropped.
    let mut added = records(SIMPLE);
    added.extend(records(
        "example. 86400 IN SOA ns1 admin 2018031900 1800 900 604800 86400\nextra 60 IN TXT \"x\"\n",
    ).into_iter().filter(|r| r.record_type() == RecordType::TXT));
    assert!(zonemd::verify(&origin(), &added).is_err());
    let dropped: Vec<Record> = records(SIMPLE)
        .into_iter()
        .filter(|r| r.record_type() != RecordType::AAAA)
        .collect();
    assert!(zonemd::verify(&origin(), &dropped).is_err());
    // A TTL change is a change.
    let ttl = records(&SIMPLE.replace("ns1           3600", "ns1           3601"));
    assert!(zonemd::verify(&origin(), &ttl).is_err());
    // Case of owner names does not matter (canonical form).
    let case = records(&SIMPLE.replace("ns1           3600", "NS1           3600"));
    assert!(zonemd::verify(&origin(), &case).is_ok());
    // The serial must match the SOA's.
    let serial = records(&SIMPLE.replacen("2018031900 (", "2018031901 (", 1));
    assert!(matches!(
        zonemd::verify(&origin(), &serial),
        Err(ZonemdError::SerialMismatch { .. })
    ));
    // Two records of one scheme and hash.
    let dup = records(&format!(
        "{SIMPLE}example. 86400 IN ZONEMD 2018031900 1 1 {}\n",
        "00".repeat(48)
    ));
    assert!(matches!(
        zonemd::verify(&origin(), &dup),
        Err(ZonemdError::Duplicate { .. })
    ));
    // No ZONEMD at all.
    let none: Vec<Record> = records(SIMPLE)
        .into_iter()
        .filter(|r| u16::from(r.record_type()) != zonemd::ZONEMD)
        .collect();
    assert_eq!(zonemd::verify(&origin(), &none), Ok(ZonemdOutcome::Absent));
}

fn wait_serial(addr: SocketAddr, zone: &str, serial: u32, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if soa_serial(addr, zone) == Some(serial) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{zone} serial {serial} not served at {addr} within {within:?}");
}

fn wait_log(outpost: &Outpost, needle: &str, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if outpost.log_text().contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "`{needle}` not logged within {within:?}:\n{}",
        outpost.log_text()
    );
}

fn a_of(addr: SocketAddr, name: &str) -> Vec<String> {
    query(addr, name, RecordType::A, Q::udp())
        .answers
        .iter()
        .map(|r| r.data.to_string())
        .collect()
}

/// The RFC zone with one address changed and the serial (SOA and ZONEMD)
/// bumped: well formed, digest wrong.
fn tampered_simple() -> String {
    SIMPLE
        .replace("203.0.113.63", "203.0.113.66")
        .replace("2018031900", "2018031901")
}

#[test]
fn transfer_with_zonemd_verified_then_tampered_rejected() {
    let mut bind = Bind::start(
        &[("example.", SIMPLE), ("plain.example.", PLAIN)],
        &[],
        &Options::default(),
    );
    let primary = bind.addr();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:{{port}}"]
data_dir = "{{dir}}/data"

[defaults]
min_refresh = "1s"
max_refresh = "1s"
min_retry = "1s"
max_retry = "1s"

[[zone]]
name = "example"
primaries = ["{primary}"]

[[zone]]
name = "plain.example"
primaries = ["{primary}"]
zonemd = "require"
"#
    );
    let mut outpost = Outpost::start_in(dir.path(), &config);
    outpost.wait_ready("example.", Duration::from_secs(10));
    wait_serial(
        outpost.addr,
        "example.",
        2018031900,
        Duration::from_secs(20),
    );
    wait_log(&outpost, "ZONEMD digest verified", Duration::from_secs(5));
    assert_eq!(a_of(outpost.addr, "ns1.example."), ["203.0.113.63"]);

    // `require` and no ZONEMD: never loaded, so never served.
    wait_log(
        &outpost,
        "but the zone has no ZONEMD record we can check",
        Duration::from_secs(10),
    );
    assert_eq!(soa_serial(outpost.addr, "plain.example."), None);

    bind.update_zone("example.", &tampered_simple());
    bind.wait_serial("example.", 2018031901, Duration::from_secs(10));
    wait_log(&outpost, "ZONEMD digest mismatch", Duration::from_secs(20));
    // Several more refresh rounds: the tampered copy never goes in.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(soa_serial(outpost.addr, "example."), Some(2018031900));
    assert_eq!(a_of(outpost.addr, "ns1.example."), ["203.0.113.63"]);
    assert!(
        outpost.log_text().contains("transfer from"),
        "{}",
        outpost.log_text()
    );
}

/// A zone without ZONEMD.
const PLAIN: &str = r#"
plain.example. 3600 IN SOA ns1.example. admin.example. 1 1800 900 604800 300
plain.example. 3600 IN NS  ns1.example.
www.plain.example. 3600 IN A 192.0.2.1
"#;

#[test]
fn ignore_mode_serves_a_tampered_zone() {
    let bind = Bind::start(
        &[("example.", &tampered_simple())],
        &[],
        &Options::default(),
    );
    let primary = bind.addr();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:{{port}}"]
data_dir = "{{dir}}/data"

[[zone]]
name = "example"
primaries = ["{primary}"]
zonemd = "ignore"
"#
    );
    let mut outpost = Outpost::start_in(dir.path(), &config);
    outpost.wait_ready("example.", Duration::from_secs(10));
    wait_serial(
        outpost.addr,
        "example.",
        2018031901,
        Duration::from_secs(20),
    );
    assert_eq!(a_of(outpost.addr, "ns1.example."), ["203.0.113.66"]);
}
