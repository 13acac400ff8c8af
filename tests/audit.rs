//! `outpost audit` as an operator runs it: the real binary on zone files and
//! against a real BIND primary over TSIG-signed AXFR.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use common::peers::{Bind, Options, Server};
use hickory_proto::rr::Name;
use outpost::tsig::{Algorithm, Key};

/// 2026-12-01 and 2027-02-01, 00:00 UTC: inside the signed fixture's
/// validity (2026-11-01 .. 2027-03-01), with 90 and 28 days left.
const DEC_1: &str = "1796083200";
const FEB_1: &str = "1801440000";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn lines(&self) -> impl Iterator<Item = &str> {
        self.stdout.lines()
    }

    /// Panics unless a line starts with `prefix`.
    fn expect_line(&self, prefix: &str) {
        assert!(
            self.lines().any(|l| l.starts_with(prefix)),
            "no line starting with {prefix:?} in:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
}

fn audit(args: &[&str]) -> Out {
    audit_env(args, &[])
}

fn audit_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    // Tests send nothing beyond loopback: the system resolver is not asked
    // unless a test names one.
    let resolve = args
        .iter()
        .any(|a| *a == "--resolver" || *a == "--no-resolve");
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("audit")
        .args(args)
        .args(if resolve {
            &[][..]
        } else {
            &["--no-resolve"][..]
        })
        .env_remove("OUTPOST_KEY_SECRET")
        .envs(env.iter().copied())
        .output()
        .expect("running outpost");
    Out {
        code: out.status.code().expect("outpost exited by signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    root()
        .join("tests/data/audit")
        .join(name)
        .display()
        .to_string()
}

fn example_zone() -> PathBuf {
    root().join("zones/example.com.zone")
}

#[test]
fn bundled_example_zone_passes() {
    let out = audit(&[
        "--file",
        example_zone().to_str().unwrap(),
        "--zone",
        "example.com",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() > 10, "{}", out.stdout);
    let (last, findings) = lines.split_last().unwrap();
    assert!(
        findings.iter().all(|l| l.starts_with("PASS  ")),
        "{}",
        out.stdout
    );
    assert!(
        last.starts_with("RESULT  PASS  example.com. (serial 2026112901): "),
        "{last}"
    );
    out.expect_line("PASS  offsite-mx  example.com. MX 900 mx.partner.example.net.  ");
    out.expect_line("PASS  offsite-ns  example.com. NS  ns.partner.example.net.");
}

#[test]
fn fixtures_fail_their_check() {
    // (fixture, zone, extra options, exit code, a line that must appear)
    let cases: &[(&str, &str, &[&str], i32, &str)] = &[
        (
            "no-offsite-mx.zone",
            "example.com",
            &[],
            2,
            "FAIL  offsite-mx  example.com. MX  no MX outside the home domains",
        ),
        (
            "unequal-mx-ttl.zone",
            "example.com",
            &[],
            2,
            "FAIL  mx-ttl  example.com. MX  MX TTLs differ (TTL 3600000: MX 900 \
             mx.partner.example.net.; TTL 86400: MX 2 mail.example.com., MX 10 mail2.example.com.)",
        ),
        (
            "unequal-mx-ttl.zone",
            "example.com",
            &[],
            2,
            "WARN  mx-address-ttl  example.com. MX  addresses of in-zone MX targets differ \
             from the MX TTL 3600000: mail.example.com. A TTL 86400",
        ),
        (
            "short-ttl.zone",
            "example.com",
            &[],
            1,
            "WARN  long-ttl  example.com. MX  TTL 86400 (1d) is under 30d",
        ),
        (
            "short-ttl.zone",
            "example.com",
            &["--min-ttl", "1d"],
            0,
            "PASS  long-ttl  example.com. MX  TTL 86400 (1d) is at least 1d",
        ),
        (
            "short-expire.zone",
            "example.com",
            &[],
            2,
            "FAIL  soa-expire  example.com. SOA expire 604800  expire 7d is shorter than the \
             longest disaster TTL 3600000",
        ),
        (
            "short-expire.zone",
            "example.com",
            &["--min-expire", "42d"],
            0,
            "PASS  soa-expire  example.com. SOA expire 604800  ",
        ),
        (
            "no-offsite-ns.zone",
            "example.com",
            &[],
            2,
            "FAIL  offsite-ns  example.com. NS  all name servers (ns1.example.com., \
             ns2.example.com.)",
        ),
        (
            "no-offsite-ns.zone",
            "example.com",
            &["--offsite-address", "203.0.113.0/24"],
            0,
            "PASS  offsite-ns  example.com. NS  ns2.example.com. has address 203.0.113.53",
        ),
        (
            "unresolved-disaster-mx.example.org.zone",
            "example.org",
            &["--home-domain", "hq.example.org"],
            2,
            "FAIL  offsite-mx  example.org. MX 900 backup.example.org.  backup.example.org. is \
             outside the home domains, but backup.example.org. is in the zone but has no A/AAAA",
        ),
        (
            // Default home is the zone itself: then no MX is offsite at all.
            "unresolved-disaster-mx.example.org.zone",
            "example.org",
            &[],
            2,
            "FAIL  offsite-mx  example.org. MX  no MX outside the home domains (example.org.)",
        ),
        (
            "signed.example.com.zone",
            "example.com",
            &["--now", DEC_1],
            0,
            "PASS  rrsig-expiry  example.com. RRSIG MX (alg 13, key 42453)  expires 20270301000000",
        ),
        (
            "signed.example.com.zone",
            "example.com",
            &["--now", FEB_1],
            2,
            "FAIL  rrsig-expiry  example.com. RRSIG MX (alg 13, key 42453)  expires \
             20270301000000 (in 28d), before the zone's effective expiry 20270315000000",
        ),
    ];
    for (file, zone, extra, code, line) in cases {
        let path = fixture(file);
        let mut args = vec!["--file", path.as_str(), "--zone", zone];
        args.extend_from_slice(extra);
        let out = audit(&args);
        assert_eq!(
            out.code, *code,
            "{file} {extra:?}: exit code\n{}{}",
            out.stdout, out.stderr
        );
        out.expect_line(line);
        let result = ["PASS", "WARN", "FAIL"][*code as usize];
        out.expect_line(&format!("RESULT  {result}  {zone}."));
    }
}

#[test]
fn json_output_parses() {
    let path = fixture("unequal-mx-ttl.zone");
    let out = audit(&["--file", &path, "--zone", "example.com", "--json"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON output");
    assert_eq!(v["zone"], "example.com.");
    assert_eq!(v["serial"], 1);
    assert_eq!(v["effective_expire"], 3_628_800);
    assert_eq!(v["summary"]["result"], "fail");
    assert_eq!(v["summary"]["fail"], 1);
    let findings = v["findings"].as_array().unwrap();
    let fail: Vec<_> = findings
        .iter()
        .filter(|f| f["severity"] == "fail")
        .collect();
    assert_eq!(fail.len(), 1);
    assert_eq!(fail[0]["check"], "mx-ttl");
    assert_eq!(fail[0]["subject"], "example.com. MX");
    let count = |s: &str| findings.iter().filter(|f| f["severity"] == s).count();
    assert_eq!(v["summary"]["pass"], count("pass"));
    assert_eq!(v["summary"]["warn"], count("warn"));
}

#[test]
fn errors_exit_3_and_say_what_failed() {
    let out = audit(&["--file", "/nonexistent/zone", "--zone", "example.com"]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .contains("zone example.com.: /nonexistent/zone: "),
        "{}",
        out.stderr
    );

    let path = fixture("short-ttl.zone");
    let out = audit(&[
        "--file",
        &path,
        "--zone",
        "example.com",
        "--offsite-address",
        "not-an-address",
    ]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .contains("invalid --offsite-address \"not-an-address\""),
        "{}",
        out.stderr
    );

    let out = audit(&["--zone", "example.com"]);
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains("no records to audit"), "{}", out.stderr);
}

fn tsig_key() -> Key {
    let secret = (0..32u8)
        .map(|i| i.wrapping_mul(29).wrapping_add(3))
        .collect();
    Key::new(
        Name::from_ascii("audit-key.").unwrap(),
        Algorithm::HmacSha256,
        secret,
    )
}

fn start_bind(zone_text: &str, key: &Key) -> Server {
    Bind::start(
        &[("example.com", zone_text)],
        std::slice::from_ref(key),
        &Options {
            transfer_key: Some(key.name.to_ascii()),
            ..Options::default()
        },
    )
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn primary_mode_against_bind_with_tsig() {
    let key = tsig_key();
    let text = std::fs::read_to_string(example_zone()).unwrap();
    let bind = start_bind(&text, &key);
    let addr = bind.addr().to_string();
    let secret = b64(&key.secret);
    // The secret from a file: nothing secret on the command line.
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("audit-key.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();

    let out = audit(&[
        "--primary",
        &addr,
        "--zone",
        "example.com",
        "--key-name",
        "audit-key",
        "--key-algorithm",
        "hmac-sha256",
        "--key-secret-file",
        secret_file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        out.code,
        0,
        "{}{}\nBIND log:\n{}",
        out.stdout,
        out.stderr,
        bind.log_text()
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["serial"], 2026112901);
    assert_eq!(v["summary"]["result"], "pass");
    assert_eq!(v["summary"]["fail"], 0);

    // The right secret from the environment works too.
    let out = audit_env(
        &[
            "--primary",
            &addr,
            "--zone",
            "example.com",
            "--key-name",
            "audit-key",
        ],
        &[("OUTPOST_KEY_SECRET", &secret)],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // No secret at all: said so, not tried unsigned.
    let out = audit(&[
        "--primary",
        &addr,
        "--zone",
        "example.com",
        "--key-name",
        "audit-key",
    ]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--key-secret-file"), "{}", out.stderr);

    // A wrong secret (from the environment): BIND rejects the request, the
    // audit cannot run.
    let wrong = b64(&[1u8; 32]);
    let out = audit_env(
        &[
            "--primary",
            &addr,
            "--zone",
            "example.com",
            "--key-name",
            "audit-key",
        ],
        &[("OUTPOST_KEY_SECRET", &wrong)],
    );
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains(&format!("zone example.com: AXFR from {addr} failed: ")),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());

    // No key at all: BIND refuses the transfer.
    let out = audit(&["--primary", &addr, "--zone", "example.com"]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("AXFR from"), "{}", out.stderr);
}

#[test]
fn config_mode_takes_key_primary_and_min_expire() {
    let key = tsig_key();
    let text = std::fs::read_to_string(fixture("signed.example.com.zone")).unwrap();
    let bind = start_bind(&text, &key);
    let dir = tempfile::tempdir().unwrap();
    let write_config = |min_expire: &str| {
        let path = dir.path().join("outpost.toml");
        std::fs::write(
            &path,
            format!(
                "[server]\nlisten = [\"127.0.0.1:0\"]\ndata_dir = \"{}\"\n\n\
                 [[key]]\nname = \"audit-key\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{}\"\n\n\
                 [[zone]]\nname = \"example.com\"\nprimaries = [\"{}\"]\nmin_expire = \"{min_expire}\"\n",
                dir.path().join("data").display(),
                b64(&key.secret),
                bind.addr()
            ),
        )
        .unwrap();
        path.display().to_string()
    };

    // From December 1 the signatures have 90 days left: enough for the
    // SOA's 42 days and for a 60-day min_expire...
    let conf = write_config("60d");
    let out = audit(&[
        "--config",
        &conf,
        "--key",
        "audit-key",
        "--zone",
        "example.com",
        "--now",
        DEC_1,
    ]);
    assert_eq!(
        out.code,
        0,
        "{}{}\nBIND log:\n{}",
        out.stdout,
        out.stderr,
        bind.log_text()
    );
    out.expect_line("PASS  rrsig-expiry  example.com. RRSIG SOA (alg 13, key 42453)  expires 20270301000000, not before the zone's effective expiry 20270130000000 (now + 60d)");

    // ...but not for a 100-day one: Outpost would serve the zone after its
    // signatures have expired.
    let conf = write_config("100d");
    let out = audit(&[
        "--config",
        &conf,
        "--key",
        "audit-key",
        "--zone",
        "example.com",
        "--now",
        DEC_1,
    ]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    out.expect_line("FAIL  rrsig-expiry  example.com. RRSIG MX (alg 13, key 42453)  expires 20270301000000 (in 90d), before the zone's effective expiry 20270311000000 (now + 100d)");
    out.expect_line("PASS  soa-expire  example.com. SOA expire 3628800  ");

    // An unknown key name is an error naming the config file.
    let out = audit(&[
        "--config",
        &conf,
        "--key",
        "other-key",
        "--zone",
        "example.com",
    ]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .contains(&format!("{conf}: no [[key]] named \"other-key\"")),
        "{}",
        out.stderr
    );
}

/// The disaster MX host is out of zone: the audit asks a resolver for its
/// addresses (here BIND, authoritative for the partner's zone, standing in
/// for a recursive resolver) and fails when it has none.
#[test]
fn out_of_zone_disaster_mx_is_looked_up() {
    let partner = "$ORIGIN example.net.\n$TTL 3600\n\
        @ IN SOA ns.partner hostmaster 1 3600 600 86400 300\n\
        @ IN NS ns.partner\n\
        ns.partner IN A 198.51.100.53\n\
        mx.partner IN A 198.51.100.25\n\
        mx.partner IN AAAA 2001:db8:1::25\n";
    let bind = Bind::start(&[("example.net", partner)], &[], &Options::default());
    let resolver = bind.addr().to_string();
    let zone = example_zone().display().to_string();

    let out = audit(&[
        "--file",
        &zone,
        "--zone",
        "example.com",
        "--resolver",
        &resolver,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let disaster = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "offsite-mx")
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert_eq!(disaster["severity"], "pass", "{disaster}");
    let reason = disaster["reason"].as_str().unwrap();
    assert!(
        reason.contains("resolves to 198.51.100.25, 2001:db8:1::25")
            && reason.contains(&format!("resolver {resolver}")),
        "{reason}"
    );

    // The same zone with a disaster MX the partner does not have.
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone.zone");
    let text = std::fs::read_to_string(example_zone()).unwrap().replace(
        "MX 900 mx.partner.example.net.",
        "MX 900 gone.partner.example.net.",
    );
    std::fs::write(&gone, text).unwrap();
    let out = audit(&[
        "--file",
        gone.to_str().unwrap(),
        "--zone",
        "example.com",
        "--resolver",
        &resolver,
    ]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("FAIL  offsite-mx")
            && l.contains("gone.partner.example.net. is out of zone and has no address")
            && l.contains("NXDOMAIN")),
        "{}",
        out.stdout
    );

    // A resolver that never answers: the audit cannot confirm the host and
    // says so with a warning, not a pass.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let out = audit(&[
        "--file",
        &zone,
        "--zone",
        "example.com",
        "--resolver",
        &silent_addr,
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("WARN  offsite-mx") && l.contains("could not be looked up")),
        "{}",
        out.stdout
    );
    // No "seed" wording in what the operator reads.
    assert!(!out.stdout.contains("seed"), "{}", out.stdout);
}
