//! Outpost as a secondary of real primaries: BIND and Knot with TSIG, NSD
//! without; outages, restarts, and the expiry clock.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use common::dns::{Q, build_query, exchange_raw, query, semantic};
use common::outpost::{Outpost, secondary_config};
use common::peers::{Bind, Knot, Nsd, Options, Server, soa_serial};
use outpost::tsig::{Algorithm, Key};

const ZONE: &str = "example.com.";

/// The zone at `serial`, with SOA timers refresh/retry/expire.
fn zone_text(serial: u32, refresh: u32, retry: u32, expire: u32, extra: &str) -> String {
    format!(
        "$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster {serial} {refresh} {retry} {expire} 300
  IN NS ns1
  IN NS ns.partner.example.net.
  3600000 IN MX 2 mail
  3600000 IN MX 10 mail2
  3600000 IN MX 900 mx.partner.example.net.
  IN TXT \"v=spf1 mx -all\" \"quote \\\" here\"
ns1 IN A 192.0.2.53
mail 3600000 IN A 192.0.2.25
mail2 3600000 IN A 198.51.100.25
www IN CNAME mail
*.users IN A 192.0.2.99
dept IN NS ns.dept
ns.dept IN A 192.0.2.153
{extra}
"
    )
}

fn key(secret: u8) -> Key {
    Key {
        name: Name::from_ascii("xfr-key.").unwrap(),
        algorithm: Algorithm::HmacSha256,
        secret: vec![secret; 32],
    }
}

fn wait_for_serial(addr: SocketAddr, serial: u32, within: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < within {
        if soa_serial(addr, ZONE) == Some(serial) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "serial {serial} not served at {addr} within {within:?} (now {:?})",
        soa_serial(addr, ZONE)
    );
}

/// The answers that must agree between the primary and Outpost.
fn assert_same_answers(primary: SocketAddr, outpost: SocketAddr) {
    for (name, t) in [
        ("example.com.", RecordType::SOA),
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::NS),
        ("example.com.", RecordType::TXT),
        ("mail.example.com.", RecordType::A),
        ("www.example.com.", RecordType::A),
        ("x.users.example.com.", RecordType::A),
        ("nothere.example.com.", RecordType::A),
        ("mail.example.com.", RecordType::AAAA),
        ("host.dept.example.com.", RecordType::A),
    ] {
        let theirs = semantic(&query(primary, name, t, Q::tcp()), ZONE);
        let ours = semantic(&query(outpost, name, t, Q::tcp()), ZONE);
        assert_eq!(ours, theirs, "{name} {t}");
    }
}

fn check_zone_file_with_bind(data: &Path) {
    let file = data.join("zones/example.com.zone");
    // The copy goes into service first and onto disk just after.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = std::process::Command::new("named-checkzone")
        .args(["-q", "example.com"])
        .arg(&file)
        .status()
        .expect("named-checkzone (bind9-utils) must be installed");
    assert!(out.success(), "named-checkzone refused {}", file.display());
}

/// Initial transfer, identical answers, then a serial bump picked up by the
/// refresh timer.
fn initial_and_bump(mut primary: Server, key: Option<&Key>) {
    let dir = tempfile::tempdir().unwrap();
    let mut outpost = Outpost::start_in(dir.path(), &secondary_config(primary.addr(), key, ""));
    outpost.wait_ready(ZONE, Duration::from_secs(10));
    wait_for_serial(outpost.addr, 1, Duration::from_secs(10));
    assert_same_answers(primary.addr(), outpost.addr);
    check_zone_file_with_bind(&dir.path().join("data"));

    primary.update_zone(ZONE, &zone_text(2, 2, 1, 1_209_600, "new IN A 192.0.2.200"));
    wait_for_serial(outpost.addr, 2, Duration::from_secs(10));
    let ans = query(outpost.addr, "new.example.com.", RecordType::A, Q::udp());
    assert_eq!(ans.answers.len(), 1, "{}", outpost.log_text());
    assert_same_answers(primary.addr(), outpost.addr);
}

#[test]
fn from_bind_with_tsig() {
    let k = key(1);
    let primary = Bind::start(
        &[(ZONE, &zone_text(1, 2, 1, 1_209_600, ""))],
        std::slice::from_ref(&k),
        &Options {
            transfer_key: Some(k.name.to_string()),
            ..Options::default()
        },
    );
    initial_and_bump(primary, Some(&k));
}

#[test]
fn from_knot_with_tsig() {
    let k = key(2);
    let primary = Knot::start(
        &[(ZONE, &zone_text(1, 2, 1, 1_209_600, ""))],
        std::slice::from_ref(&k),
        &Options {
            transfer_key: Some(k.name.to_string()),
            ..Options::default()
        },
    );
    initial_and_bump(primary, Some(&k));
}

#[test]
fn from_nsd_without_tsig() {
    let primary = Nsd::start(
        &[(ZONE, &zone_text(1, 2, 1, 1_209_600, ""))],
        &[],
        &Options::default(),
    );
    initial_and_bump(primary, None);
}

/// The primary goes dark: Outpost keeps answering; a restart during the
/// outage answers from disk within a second, same serial.
#[test]
fn outage_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Bind::start(
        &[(ZONE, &zone_text(7, 2, 1, 1_209_600, ""))],
        &[],
        &Options::default(),
    );
    let config = secondary_config(primary.addr(), None, "");
    let mut outpost = Outpost::start_in(dir.path(), &config);
    let port = outpost.addr.port();
    wait_for_serial(outpost.addr, 7, Duration::from_secs(10));
    drop(primary);

    std::thread::sleep(Duration::from_secs(3));
    let ans = query(outpost.addr, ZONE, RecordType::MX, Q::udp());
    assert!(ans.metadata.authoritative);
    assert_eq!(ans.answers.len(), 3);

    outpost.kill9();
    drop(outpost);
    let started = Instant::now();
    let mut outpost = Outpost::start_on(dir.path(), &config, port);
    outpost.wait_ready(ZONE, Duration::from_secs(5));
    let ready = wait_for_serial(outpost.addr, 7, Duration::from_secs(1));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "answered after {elapsed:?} ({ready:?})"
    );
    let ans = query(outpost.addr, ZONE, RecordType::MX, Q::udp());
    assert!(ans.metadata.authoritative);
    assert_eq!(ans.answers.len(), 3);
    assert!(
        outpost.log_text().contains("serving the copy on disk"),
        "{}",
        outpost.log_text()
    );
}

/// A wrong TSIG secret: the zone never loads from that primary; the seed
/// copy keeps serving.
#[test]
fn wrong_tsig_secret_keeps_old_copy() {
    let dir = tempfile::tempdir().unwrap();
    let good = key(3);
    let primary = Bind::start(
        &[(ZONE, &zone_text(5, 1, 1, 1_209_600, ""))],
        std::slice::from_ref(&good),
        &Options {
            transfer_key: Some(good.name.to_string()),
            ..Options::default()
        },
    );
    let seed = dir.path().join("seed.zone");
    std::fs::write(&seed, zone_text(1, 1, 1, 1_209_600, "")).unwrap();
    let bad = key(4);
    let config = secondary_config(
        primary.addr(),
        Some(&bad),
        &format!("seed_file = \"{}\"\n", seed.display()),
    );
    let mut outpost = Outpost::start_in(dir.path(), &config);
    outpost.wait_ready(ZONE, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(soa_serial(outpost.addr, ZONE), Some(1));
    let log = outpost.log_text();
    assert!(log.contains("BADSIG"), "{log}");
    assert!(!dir.path().join("data/zones/example.com.zone").exists());
}

fn has_last_contact(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("data/state/example.com.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|v| v["last_contact"].as_u64().is_some())
}

fn state_last_contact(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("data/state/example.com.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["last_contact"].as_u64().expect("last_contact")
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn sleep_until(t: f64) {
    let now = now_secs();
    if t > now {
        std::thread::sleep(Duration::from_secs_f64(t - now));
    }
}

/// SERVFAIL with Extended DNS Error 24 (Invalid Data) and the EXTRA-TEXT
/// "zone expired", over UDP (the fast path) and TCP (hickory's)?
fn is_expired_answer(addr: SocketAddr) -> bool {
    let mut ede = vec![0x00, 0x0f, 0x00, 14, 0x00, 24];
    ede.extend_from_slice(b"zone expired");
    [false, true].into_iter().all(|tcp| {
        let wire = build_query(ZONE, RecordType::MX, Q::udp());
        let out = exchange_raw(addr, &wire, tcp).unwrap();
        let rcode = out[3] & 0x0f;
        rcode == ResponseCode::ServFail.low() && out.windows(ede.len()).any(|w| w == ede)
    })
}

fn answers(addr: SocketAddr) -> bool {
    let m = query(addr, ZONE, RecordType::MX, Q::udp());
    m.metadata.response_code == ResponseCode::NoError
        && m.metadata.authoritative
        && m.answers.len() == 3
}

/// Short timers (refresh 2 s, retry 1 s, expire 8 s). Returns the outpost,
/// its dir guard, and the time of the last contact before the primary died.
fn short_timer_setup(zone_extra: &str) -> (Outpost, tempfile::TempDir, f64, String) {
    let dir = tempfile::tempdir().unwrap();
    let primary = Bind::start(
        &[(ZONE, &zone_text(3, 2, 1, 8, ""))],
        &[],
        &Options::default(),
    );
    let config = secondary_config(primary.addr(), None, zone_extra);
    let outpost = Outpost::start_in(dir.path(), &config);
    wait_for_serial(outpost.addr, 3, Duration::from_secs(10));
    // The copy is in service before the state is written.
    let start = Instant::now();
    while !has_last_contact(dir.path()) {
        assert!(start.elapsed() < Duration::from_secs(5), "no state file");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let one refresh confirm the serial, then kill the primary right after
    // a contact so the test knows the clock.
    let first = state_last_contact(dir.path());
    let start = Instant::now();
    while state_last_contact(dir.path()) == first {
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "no refresh contact"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(primary);
    let contact = state_last_contact(dir.path()) as f64;
    (outpost, dir, contact, config)
}

#[test]
fn expiry_servfail_and_restart_keeps_the_clock() {
    let (mut outpost, dir, contact, config) = short_timer_setup("min_expire = \"1s\"\n");
    let port = outpost.addr.port();
    // Restart at second 4 after the last contact: the clock must neither
    // reset (expired after second 9) nor skip (answering at second 5).
    sleep_until(contact + 4.0);
    outpost.kill9();
    drop(outpost);
    let mut outpost = Outpost::start_on(dir.path(), &config, port);
    outpost.wait_ready(ZONE, Duration::from_secs(3));
    sleep_until(contact + 5.5);
    assert!(
        answers(outpost.addr),
        "not answering at second 5.5: {}",
        outpost.log_text()
    );
    sleep_until(contact + 9.5);
    assert!(
        is_expired_answer(outpost.addr),
        "not expired at second 9.5: {}",
        outpost.log_text()
    );
    assert!(outpost.log_text().contains("zone expired"));
}

#[test]
fn expiry_keep_serving() {
    let (outpost, _dir, contact, _) =
        short_timer_setup("min_expire = \"1s\"\non_expire = \"keep-serving\"\n");
    sleep_until(contact + 10.0);
    assert!(answers(outpost.addr), "{}", outpost.log_text());
    assert!(
        outpost.log_text().contains("still serving the last copy"),
        "{}",
        outpost.log_text()
    );
}

#[test]
fn min_expire_clamps() {
    let (outpost, _dir, contact, _) = short_timer_setup("min_expire = \"14s\"\n");
    sleep_until(contact + 10.0);
    assert!(
        answers(outpost.addr),
        "expired before min_expire: {}",
        outpost.log_text()
    );
    sleep_until(contact + 15.5);
    assert!(is_expired_answer(outpost.addr), "{}", outpost.log_text());
}
