//! Signed test zones for the DNSSEC tests: one zone text covering every
//! proof shape, signed by BIND's `dnssec-signzone` with NSEC, NSEC3 (salt
//! and iterations) or NSEC3 opt-out.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};

pub const ORIGIN: &str = "example.com.";

/// Every shape a proof can take: wildcards (data, NODATA, CNAME), empty
/// non-terminals (one holding only an insecure delegation, which opt-out
/// leaves out of the chain), a signed child (DS) and unsigned ones, CNAME
/// chains in and out of the zone.
pub const ZONE_TEXT: &str = r#"$ORIGIN example.com.
$TTL 3600
@           IN SOA  ns1 hostmaster 2024010101 7200 3600 1209600 300
@           IN NS   ns1
@           IN NS   ns2
@           IN MX   10 mail
@           IN TXT  "v=spf1 mx -all"
ns1         IN A    192.0.2.1
ns2         IN A    192.0.2.2
mail        IN A    192.0.2.25
mail        IN AAAA 2001:db8::25
web         IN A    192.0.2.80
web         IN AAAA 2001:db8::80
www         IN CNAME web
alias       IN CNAME www
ext         IN CNAME www.example.org.
towild      IN CNAME host.users
tonx        IN CNAME nothere
*.users     IN A    192.0.2.99
*.users     IN TXT  "wildcard"
known.users IN A    192.0.2.100
*.cn        IN CNAME web
a.b.ent     IN A    192.0.2.7
_sip._tcp   IN SRV  0 5 5060 mail
secure      IN NS   ns.secure
secure      IN DS   12345 13 2 0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20
ns.secure   IN A    192.0.2.53
insecure    IN NS   ns.insecure
ns.insecure IN A    192.0.2.54
child.deep  IN NS   ns.elsewhere.example.net.
zz          IN TXT  "last in canonical order"
"#;

/// How the zone is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Nsec,
    /// NSEC3, salt aabbccdd, 5 iterations.
    Nsec3,
    /// NSEC3 with opt-out, salt 00ff, 3 iterations.
    Nsec3OptOut,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Nsec, Mode::Nsec3, Mode::Nsec3OptOut];

    fn args(self) -> &'static [&'static str] {
        match self {
            Mode::Nsec => &[],
            Mode::Nsec3 => &["-3", "aabbccdd", "-H", "5"],
            Mode::Nsec3OptOut => &["-3", "00ff", "-H", "3", "-A"],
        }
    }
}

/// Runs a BIND tool in `dir`, failing loudly if it is missing or fails.
pub fn run(dir: &Path, tool: &str, args: &[&str]) -> String {
    let out = match Command::new(tool).args(args).current_dir(dir).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{tool} is not installed (Debian packages bind9-utils / bind9-dnsutils); this test needs it"
        ),
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

/// A signed zone on disk.
pub struct SignedZone {
    pub file: PathBuf,
    pub text: String,
    /// The key-signing key's DNSKEY record, as a zone file line.
    pub ksk: String,
    pub dir: tempfile::TempDir,
}

/// Signs `text` (origin [`ORIGIN`]) with a fresh ECDSA P-256 KSK and ZSK.
pub fn sign(text: &str, mode: Mode) -> SignedZone {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("zone.in"), text).unwrap();
    let ksk = run(
        d,
        "dnssec-keygen",
        &[
            "-q",
            "-K",
            ".",
            "-a",
            "ECDSAP256SHA256",
            "-f",
            "KSK",
            ORIGIN,
        ],
    );
    run(
        d,
        "dnssec-keygen",
        &["-q", "-K", ".", "-a", "ECDSAP256SHA256", ORIGIN],
    );
    let mut args = vec![
        "-S",
        "-K",
        ".",
        "-d",
        ".",
        "-o",
        ORIGIN,
        "-f",
        "signed.zone",
    ];
    args.extend_from_slice(mode.args());
    args.push("zone.in");
    run(d, "dnssec-signzone", &args);
    let ksk_file = d.join(format!("{}.key", ksk.trim()));
    let ksk = std::fs::read_to_string(&ksk_file)
        .unwrap()
        .lines()
        .find(|l| !l.starts_with(';') && l.contains("DNSKEY"))
        .expect("DNSKEY line in the key file")
        .to_string();
    let file = d.join("signed.zone");
    let text = std::fs::read_to_string(&file).unwrap();
    SignedZone {
        file,
        text,
        ksk,
        dir,
    }
}

/// The type an RRSIG record covers.
pub fn covered(r: &hickory_proto::rr::Record) -> Option<RecordType> {
    match &r.data {
        RData::Unknown { code, rdata } if *code == RecordType::RRSIG => {
            let w = &rdata.anything;
            Some(RecordType::from(u16::from_be_bytes([w[0], w[1]])))
        }
        _ => None,
    }
}

/// Drops from a positive answer's authority section the apex NS set's
/// RRSIGs, which BIND with `minimal-responses no` adds beside the apex NS
/// (that the shared comparison already leaves out).
pub fn strip_apex_ns_sigs(mut msg: Message, apex: &str) -> Message {
    if msg.answers.is_empty() {
        return msg;
    }
    let apex = apex.to_lowercase();
    msg.authorities.retain(|r| {
        !(r.name.to_ascii().to_lowercase() == apex && covered(r) == Some(RecordType::NS))
    });
    msg
}
