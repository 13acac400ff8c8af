use super::*;
use crate::rr;
use crate::wire::put_name;
use crate::zonefile::parse_str;

const NOW: u64 = 1_780_000_000;
const DAY: u32 = 86_400;

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A prepared zone: every check passes on it.
const GOOD: &str = "\
$ORIGIN example.com.
$TTL 3600000
@ IN SOA ns1 hostmaster 1 3600 900 3628800 3600
@ NS ns1
@ NS ns.partner.example.net.
@ MX 10 mail
@ MX 900 mx.partner.example.net.
ns1 A 192.0.2.53
mail A 192.0.2.25
mail AAAA 2001:db8::25
www 3600 A 192.0.2.80
";

fn records(text: &str) -> Vec<Record> {
    parse_str(text, &n("example.com."), "test").unwrap()
}

fn run_with(text: &str, opts: &AuditOptions) -> Report {
    audit(&n("example.com."), &records(text), opts)
}

fn run(text: &str) -> Report {
    run_with(text, &AuditOptions::new(NOW))
}

fn of<'a>(r: &'a Report, check: &str) -> Vec<&'a Finding> {
    r.findings.iter().filter(|f| f.check == check).collect()
}

/// The worst severity of one check; panics if the check said nothing.
fn worst(r: &Report, check: &str) -> Severity {
    of(r, check)
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or_else(|| panic!("no {check} finding in\n{}", r.to_text()))
}

/// The one finding of `check` with severity `sev`.
fn the<'a>(r: &'a Report, check: &str, sev: Severity) -> &'a Finding {
    let v: Vec<_> = of(r, check)
        .into_iter()
        .filter(|f| f.severity == sev)
        .collect();
    assert_eq!(v.len(), 1, "{check} {sev:?} findings in\n{}", r.to_text());
    v[0]
}

#[test]
fn good_zone_passes_everything() {
    let r = run(GOOD);
    assert_eq!(r.worst(), Severity::Pass, "{}", r.to_text());
    assert_eq!(r.exit_code(), 0);
    assert_eq!(r.serial, Some(1));
    for check in [
        CHECK_OFFSITE_MX,
        CHECK_MX_TARGET,
        CHECK_MX_TTL,
        CHECK_MX_ADDRESS_TTL,
        CHECK_LONG_TTL,
        CHECK_SOA_EXPIRE,
        CHECK_OFFSITE_NS,
        CHECK_RRSIG_EXPIRY,
    ] {
        assert!(!of(&r, check).is_empty(), "{check} missing");
    }
    // MX set, mail A, mail AAAA, NS set; www's short TTL is not disaster data.
    assert_eq!(of(&r, CHECK_LONG_TTL).len(), 4);
    assert_eq!(r.effective_expire, 3_628_800);
}

#[test]
fn bundled_example_zone_passes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones/example.com.zone");
    let recs = crate::zonefile::parse_file(&path, &n("example.com.")).unwrap();
    let r = audit(&n("example.com."), &recs, &AuditOptions::new(NOW));
    assert_eq!(r.worst(), Severity::Pass, "{}", r.to_text());
}

#[test]
fn no_offsite_mx_fails() {
    let r = run(&GOOD.replace("mx.partner.example.net.", "mail2\nmail2 A 192.0.2.26"));
    let f = the(&r, CHECK_OFFSITE_MX, Severity::Fail);
    assert_eq!(f.subject, "example.com. MX");
    assert!(
        f.reason
            .contains("no MX outside the home domains (example.com.)")
    );
    assert_eq!(r.exit_code(), 2);
}

#[test]
fn offsite_mx_preferred_over_home_warns() {
    let r = run(&GOOD.replace("MX 900 mx.partner", "MX 5 mx.partner"));
    let f = the(&r, CHECK_OFFSITE_MX, Severity::Warn);
    assert_eq!(f.subject, "example.com. MX 5 mx.partner.example.net.");
    assert!(f.reason.contains("(10 > 5)"), "{}", f.reason);
    assert_eq!(r.worst(), Severity::Warn);
}

#[test]
fn no_apex_mx_fails() {
    let text: String = GOOD
        .lines()
        .filter(|l| !l.contains(" MX "))
        .map(|l| format!("{l}\n"))
        .collect();
    let r = run(&text);
    let f = the(&r, CHECK_OFFSITE_MX, Severity::Fail);
    assert!(f.reason.contains("no MX records at the zone apex"));
}

#[test]
fn null_mx_passes_and_skips_mail_checks() {
    let text: String = GOOD
        .lines()
        .filter(|l| !l.contains(" MX "))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + "@ MX 0 .\n";
    let r = run(&text);
    let f = the(&r, CHECK_OFFSITE_MX, Severity::Pass);
    assert!(f.reason.contains("null MX"));
    assert!(of(&r, CHECK_MX_TTL).is_empty());
    assert!(of(&r, CHECK_MX_TARGET).is_empty());
    assert_eq!(r.worst(), Severity::Pass, "{}", r.to_text());
}

#[test]
fn home_domains_and_unresolvable_in_zone_disaster_mx() {
    // The partner's host has a name in the zone; home is hq.example.com.
    let text = GOOD
        .replace("mx.partner.example.net.", "backup")
        .replace("MX 10 mail", "MX 10 mail.hq")
        .replace("mail A", "mail.hq A")
        .replace("mail AAAA", "mail.hq AAAA");
    let mut opts = AuditOptions::new(NOW);
    opts.home_domains = vec![n("hq.example.com.")];
    let r = run_with(&text, &opts);
    let f = the(&r, CHECK_OFFSITE_MX, Severity::Fail);
    assert_eq!(f.subject, "example.com. MX 900 backup.example.com.");
    assert!(f.reason.contains("has no A/AAAA"), "{}", f.reason);
    let t = the(&r, CHECK_MX_TARGET, Severity::Fail);
    assert_eq!(t.subject, "example.com. MX 900 backup.example.com.");

    let r = run_with(&(text + "backup A 203.0.113.9\n"), &opts);
    let f = the(&r, CHECK_OFFSITE_MX, Severity::Pass);
    assert!(f.reason.contains("outside the home domains"));
    assert!(
        f.reason.contains("resolves in the zone (A)"),
        "{}",
        f.reason
    );
}

#[test]
fn offsite_by_address() {
    let text = GOOD.replace("mx.partner.example.net.", "backup") + "backup A 203.0.113.9\n";
    let r = run(&text);
    assert_eq!(worst(&r, CHECK_OFFSITE_MX), Severity::Fail);
    let mut opts = AuditOptions::new(NOW);
    opts.offsite_nets = vec!["203.0.113.0/24".parse().unwrap()];
    let r = run_with(&text, &opts);
    let f = the(&r, CHECK_OFFSITE_MX, Severity::Pass);
    assert!(
        f.reason
            .contains("address 203.0.113.9 in offsite network 203.0.113.0/24"),
        "{}",
        f.reason
    );
}

#[test]
fn mx_target_cname_and_delegated() {
    let r = run(&(GOOD.replace("MX 10 mail", "MX 10 smtp") + "smtp CNAME mail\n"));
    let f = the(&r, CHECK_MX_TARGET, Severity::Fail);
    assert!(f.reason.contains("CNAME"));

    let r =
        run(&(GOOD.replace("MX 10 mail", "MX 10 mx.dept") + "dept NS ns.partner.example.net.\n"));
    let f = of(&r, CHECK_MX_TARGET)
        .into_iter()
        .find(|f| f.subject.contains("mx.dept"))
        .unwrap();
    assert_eq!(f.severity, Severity::Pass);
    assert!(f.reason.contains("delegated zone dept.example.com."));
}

#[test]
fn target_names_compare_case_insensitively() {
    let r = run(&GOOD.replace("MX 10 mail", "MX 10 MAIL.Example.COM."));
    assert_eq!(
        worst(&r, CHECK_MX_TARGET),
        Severity::Pass,
        "{}",
        r.to_text()
    );
}

#[test]
fn data_below_a_cut_is_not_audited() {
    // An MX at a delegated name is the child's business, not this zone's.
    let r = run(&(GOOD.to_string() + "dept NS ns.partner.example.net.\ndept MX 10 mail\n"));
    assert!(
        of(&r, CHECK_MX_TTL)
            .iter()
            .all(|f| !f.subject.starts_with("dept"))
    );
    assert_eq!(r.worst(), Severity::Pass, "{}", r.to_text());
}

#[test]
fn unequal_mx_ttls_fail_and_name_the_records() {
    let r = run(&GOOD.replace("@ MX 10 mail", "@ 86400 MX 10 mail"));
    let f = the(&r, CHECK_MX_TTL, Severity::Fail);
    assert_eq!(f.subject, "example.com. MX");
    assert!(
        f.reason.contains(
            "TTL 3600000: MX 900 mx.partner.example.net.; TTL 86400: MX 10 mail.example.com."
        ),
        "{}",
        f.reason
    );
    assert_eq!(r.exit_code(), 2);
}

#[test]
fn mx_ttls_are_checked_per_owner() {
    let text = GOOD.to_string()
        + "host 3600000 MX 10 mail\nhost 3600 MX 900 mx.partner.example.net.\nhost A 192.0.2.7\n";
    let r = run(&text);
    let f = the(&r, CHECK_MX_TTL, Severity::Fail);
    assert_eq!(f.subject, "host.example.com. MX");
    assert_eq!(of(&r, CHECK_MX_TTL).len(), 2);
}

#[test]
fn target_address_ttl_differences_warn() {
    let r = run(&GOOD.replace("mail A 192", "mail 86400 A 192"));
    let f = the(&r, CHECK_MX_ADDRESS_TTL, Severity::Warn);
    assert!(
        f.reason.contains("mail.example.com. A TTL 86400"),
        "{}",
        f.reason
    );
    assert!(!f.reason.contains("AAAA"), "{}", f.reason);
    // Also a long-ttl warning for that address set, and nothing fails.
    assert_eq!(worst(&r, CHECK_LONG_TTL), Severity::Warn);
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn short_ttls_warn_against_the_threshold() {
    let text = GOOD.replace("$TTL 3600000", "$TTL 86400");
    let r = run(&text);
    assert_eq!(
        of(&r, CHECK_LONG_TTL)
            .iter()
            .filter(|f| f.severity == Severity::Warn)
            .count(),
        4
    );
    assert!(of(&r, CHECK_LONG_TTL)[0].reason.contains("is under 30d"));
    assert_eq!(r.worst(), Severity::Warn, "{}", r.to_text());

    let mut opts = AuditOptions::new(NOW);
    opts.min_ttl = DAY;
    assert_eq!(
        worst(&run_with(&text, &opts), CHECK_LONG_TTL),
        Severity::Pass
    );
}

#[test]
fn short_soa_expire_fails_unless_min_expire_covers_it() {
    let text = GOOD.replace("3628800", "604800");
    let r = run(&text);
    let f = the(&r, CHECK_SOA_EXPIRE, Severity::Fail);
    assert_eq!(f.subject, "example.com. SOA expire 604800");
    assert!(
        f.reason.contains("longest disaster TTL 3600000 (41d16h)"),
        "{}",
        f.reason
    );

    let mut opts = AuditOptions::new(NOW);
    opts.min_expire = 42 * DAY;
    let r = run_with(&text, &opts);
    let f = the(&r, CHECK_SOA_EXPIRE, Severity::Pass);
    assert!(
        f.reason.contains("min_expire 42d covers it"),
        "{}",
        f.reason
    );
    assert_eq!(r.effective_expire, 42 * DAY);

    // min_expire below the TTL: still a failure, and it says so.
    opts.min_expire = 10 * DAY;
    let f = run_with(&text, &opts);
    assert!(
        the(&f, CHECK_SOA_EXPIRE, Severity::Fail)
            .reason
            .contains("raised to 10d")
    );
}

#[test]
fn max_expire_can_cut_a_long_soa_expire() {
    let mut opts = AuditOptions::new(NOW);
    opts.max_expire = 7 * DAY;
    let r = run_with(GOOD, &opts);
    let f = the(&r, CHECK_SOA_EXPIRE, Severity::Fail);
    assert!(f.reason.contains("cut to 7d by max_expire"), "{}", f.reason);
}

#[test]
fn no_offsite_ns_fails_unless_an_address_is_offsite() {
    let text = GOOD.replace(
        "@ NS ns.partner.example.net.",
        "@ NS ns2\nns2 A 198.51.100.53",
    );
    let r = run(&text);
    let f = the(&r, CHECK_OFFSITE_NS, Severity::Fail);
    assert!(
        f.reason.contains("ns1.example.com., ns2.example.com."),
        "{}",
        f.reason
    );

    let mut opts = AuditOptions::new(NOW);
    opts.offsite_nets = vec!["198.51.100.53/32".parse().unwrap()];
    let r = run_with(&text, &opts);
    assert!(
        the(&r, CHECK_OFFSITE_NS, Severity::Pass)
            .reason
            .contains("ns2.example.com. has address 198.51.100.53")
    );
}

#[test]
fn missing_soa_fails() {
    let text: String = GOOD
        .lines()
        .filter(|l| !l.contains("SOA"))
        .map(|l| format!("{l}\n"))
        .collect();
    let r = run(&text);
    the(&r, CHECK_SOA, Severity::Fail);
    assert_eq!(r.serial, None);
    assert!(r.to_text().contains("(no SOA)"));
}

/// RRSIG RDATA (RFC 4034 §3.1) covering `covered` at `owner`.
fn rrsig(owner: &str, covered: RecordType, expiration: u32, inception: u32) -> Record {
    let mut w = Vec::new();
    w.extend_from_slice(&u16::from(covered).to_be_bytes());
    w.push(13); // ECDSAP256SHA256
    w.push(2);
    w.extend_from_slice(&3_600_000u32.to_be_bytes());
    w.extend_from_slice(&expiration.to_be_bytes());
    w.extend_from_slice(&inception.to_be_bytes());
    w.extend_from_slice(&4242u16.to_be_bytes());
    put_name(&mut w, &n("example.com."));
    w.extend_from_slice(&[0xab; 64]);
    rr::record(n(owner), RecordType::RRSIG, 3_600_000, &w).unwrap()
}

fn signed(exp_mx: u32, exp_soa: u32) -> Vec<Record> {
    let mut recs = records(GOOD);
    let inc = (NOW - u64::from(DAY)) as u32;
    recs.push(rrsig("example.com.", RecordType::MX, exp_mx, inc));
    recs.push(rrsig("example.com.", RecordType::SOA, exp_soa, inc));
    recs.push(rrsig("example.com.", RecordType::NS, inc, inc));
    recs
}

#[test]
fn rrsig_fields_parse_from_wire() {
    let r = rrsig("example.com.", RecordType::MX, 7, 5);
    let s = Rrsig::from_wire(&rr::rdata_to_wire(&r.data)).unwrap();
    assert_eq!(s.type_covered, RecordType::MX);
    assert_eq!(
        (s.algorithm, s.expiration, s.inception, s.key_tag),
        (13, 7, 5, 4242)
    );
    assert_eq!(s.signer, n("example.com."));
    assert_eq!(Rrsig::from_wire(&[0; 17]), None);
}

#[test]
fn signatures_outliving_the_expiry_pass() {
    // Effective expiry is now + 42 days; give the signatures 50.
    let exp = (NOW + 50 * u64::from(DAY)) as u32;
    let r = audit(
        &n("example.com."),
        &signed(exp, exp),
        &AuditOptions::new(NOW),
    );
    let sigs = of(&r, CHECK_RRSIG_EXPIRY);
    // MX and SOA only: the (expired) NS signature is not disaster data here.
    assert_eq!(sigs.len(), 2, "{}", r.to_text());
    assert!(
        sigs.iter().all(|f| f.severity == Severity::Pass),
        "{}",
        r.to_text()
    );
    assert_eq!(sigs[0].subject, "example.com. RRSIG MX (alg 13, key 4242)");
}

#[test]
fn signatures_expiring_before_the_zone_fail() {
    let short = (NOW + 30 * u64::from(DAY)) as u32;
    let long = (NOW + 50 * u64::from(DAY)) as u32;
    let r = audit(
        &n("example.com."),
        &signed(short, long),
        &AuditOptions::new(NOW),
    );
    let f = the(&r, CHECK_RRSIG_EXPIRY, Severity::Fail);
    assert!(f.subject.contains("RRSIG MX"));
    assert!(f.reason.contains("(in 30d)"), "{}", f.reason);
    assert!(f.reason.contains("now + 42d"), "{}", f.reason);

    // A larger min_expire moves the zone's expiry past even the SOA's signature.
    let mut opts = AuditOptions::new(NOW);
    opts.min_expire = 60 * DAY;
    let r = audit(&n("example.com."), &signed(long, long), &opts);
    assert_eq!(
        of(&r, CHECK_RRSIG_EXPIRY)
            .iter()
            .filter(|f| f.severity == Severity::Fail)
            .count(),
        2
    );
}

#[test]
fn expired_and_future_signatures_fail() {
    let mut recs = records(GOOD);
    let past = (NOW - 10) as u32;
    let far = (NOW + 100 * u64::from(DAY)) as u32;
    recs.push(rrsig("example.com.", RecordType::MX, past, past - 100));
    recs.push(rrsig(
        "example.com.",
        RecordType::SOA,
        far,
        (NOW + 100) as u32,
    ));
    let r = audit(&n("example.com."), &recs, &AuditOptions::new(NOW));
    let fails: Vec<_> = of(&r, CHECK_RRSIG_EXPIRY);
    assert!(
        fails[0].reason.starts_with("expired at "),
        "{}",
        fails[0].reason
    );
    assert!(
        fails[1].reason.starts_with("not valid yet"),
        "{}",
        fails[1].reason
    );
}

#[test]
fn unsigned_sets_in_a_signed_zone_and_malformed_signatures_fail() {
    let mut recs = records(GOOD);
    let exp = (NOW + 50 * u64::from(DAY)) as u32;
    recs.push(rrsig("example.com.", RecordType::SOA, exp, NOW as u32));
    recs.push(rr::record(n("www.example.com."), RecordType::RRSIG, 3600, &[1, 2, 3]).unwrap());
    let r = audit(&n("example.com."), &recs, &AuditOptions::new(NOW));
    let fails: Vec<_> = of(&r, CHECK_RRSIG_EXPIRY)
        .into_iter()
        .filter(|f| f.severity == Severity::Fail)
        .collect();
    assert_eq!(fails.len(), 2, "{}", r.to_text());
    assert_eq!(fails[0].subject, "www.example.com. RRSIG");
    assert!(fails[1].reason.contains("no RRSIG covers the MX set"));
}

#[test]
fn rrsig_times_use_serial_arithmetic() {
    // Near the 2106 wrap of the 32-bit field, a small value is in the future.
    let now = u64::from(u32::MAX) - 100;
    assert_eq!(rrsig_time(50, now), i64::from(u32::MAX) + 51);
    assert_eq!(rrsig_time(u32::MAX - 200, now), i64::from(u32::MAX) - 200);
    assert_eq!(format_rrsig_time(0), "19700101000000");
    assert_eq!(format_rrsig_time(1_767_225_600 + 3661), "20260101010101");
    assert_eq!(format_rrsig_time(951_782_400), "20000229000000");
}

#[test]
fn text_and_json_output() {
    let r = run(&GOOD.replace("mail A 192", "mail 86400 A 192"));
    let text = r.to_text();
    assert!(
        text.contains(
            "WARN  mx-address-ttl  example.com. MX  addresses of in-zone MX targets differ"
        )
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("RESULT  WARN  example.com. (serial 1): "),
        "{last}"
    );
    let j = r.to_json();
    assert_eq!(j["zone"], "example.com.");
    assert_eq!(j["summary"]["result"], "warn");
    assert_eq!(j["summary"]["warn"], 2);
    assert_eq!(j["findings"][0]["check"], "offsite-mx");
    assert_eq!(j["findings"][0]["severity"], "pass");
}
