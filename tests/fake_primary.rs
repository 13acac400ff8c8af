//! Outpost against a primary that misbehaves in every way the transfer
//! client must catch: it keeps serving its good copy (on the wire and on
//! disk), logs why, retries, and picks up the zone once the primary behaves.
//! Also: an older serial is never transferred, and the EDNS EXPIRE option
//! (RFC 7314) sets the expiry clock.
//!
//! Cases run concurrently (each with its own primary and Outpost), because
//! every one of them mostly waits for Outpost's one-second timers.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use common::TestZone;
use common::dns::{Q, query};
use common::fakeprimary::{Behaviour, FakePrimary, RCODE_REFUSED, RCODE_SERVFAIL, records_of};
use common::outpost::Outpost;
use common::peers::soa_serial;
use common::wait_until;
use outpost::persist::ZoneState;

const ZONE: &str = "example.com.";
/// Extra records in the test zone: enough for several messages of ten.
const EXTRA: usize = 40;

fn zone_name() -> Name {
    Name::from_ascii(ZONE).unwrap()
}

/// Limits low enough for the misbehaviours to cross, high enough for the
/// good zone. TestZone's SOA asks for refresh 3600 / retry 600; the maxima
/// bring both down to one second so that each case takes seconds.
fn config(primary: SocketAddr, zone_extra: &str) -> String {
    format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"

[defaults]
min_refresh = \"1s\"
max_refresh = \"1s\"
min_retry = \"1s\"
max_retry = \"1s\"
idle_timeout = \"2s\"
max_records = 200
max_transfer_bytes = 20000
max_rrset_records = 50
max_types_per_name = 10

[[zone]]
name = \"example.com\"
primaries = [\"{primary}\"]
{zone_extra}"
    )
}

/// `None` for no answer (not started yet) or no SOA in it.
fn served_serial(addr: SocketAddr) -> Option<u32> {
    soa_serial(addr, ZONE)
}

fn wait_for_serial(outpost: &Outpost, serial: u32, within: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < within {
        if served_serial(outpost.addr) == Some(serial) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "serial {serial} not served within {within:?} (now {:?}): {}",
        served_serial(outpost.addr),
        outpost.log_text()
    );
}

/// Waits until the zone file Outpost writes holds `expected` (serial,
/// records): a new copy goes into service first and onto disk just after.
fn wait_disk_zone(dir: &Path, expected: (u32, usize)) {
    let path = dir.join("data/zones/example.com.zone");
    wait_until(
        &format!("zone file {} at {expected:?}", path.display()),
        Duration::from_secs(10),
        || path.exists() && disk_zone(dir) == expected,
    );
}

/// The serial and record count of the zone file Outpost wrote.
fn disk_zone(dir: &Path) -> (u32, usize) {
    let path = dir.join("data/zones/example.com.zone");
    let records = outpost::zonefile::parse_file(&path, &zone_name())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let serial = records
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .expect("zone file has an SOA");
    (serial, records.len())
}

fn disk_state(dir: &Path) -> ZoneState {
    let path = dir.join("data/state/example.com.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

/// Waits for a log line containing every one of `needles`; returns it.
fn wait_log_line(outpost: &Outpost, needles: &[&str], within: Duration) -> String {
    let start = Instant::now();
    loop {
        let log = outpost.log_text();
        if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_string();
        }
        assert!(
            start.elapsed() < within,
            "no log line with {needles:?} within {within:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Serial `serial` served with AA, and the data with it.
fn assert_serves(outpost: &Outpost, serial: u32) {
    let soa = query(outpost.addr, ZONE, RecordType::SOA, Q::udp());
    assert!(soa.metadata.authoritative, "SOA answer without AA");
    assert_eq!(served_serial(outpost.addr), Some(serial));
    let a = query(outpost.addr, "h0.example.com.", RecordType::A, Q::udp());
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative, "A answer without AA");
    assert_eq!(a.answers.len(), 1, "h0.example.com. A: {a:?}");
}

struct Case {
    behaviour: Behaviour,
    /// How Outpost's message goes on after naming the zone, `{primary}`
    /// standing for the address.
    head: &'static str,
    /// Part of the reason Outpost must give, after the head.
    reason: String,
    /// Counts SOA queries as attempts rather than AXFR queries.
    soa_only: bool,
}

const AXFR_FAILED: &str = "AXFR from {primary} failed: ";
const REJECTED: &str = "transfer from {primary} rejected: ";

fn case(behaviour: Behaviour, reason: &str) -> Case {
    Case {
        behaviour,
        head: AXFR_FAILED,
        reason: reason.to_string(),
        soa_only: false,
    }
}

#[derive(Debug)]
struct Figures {
    attempts: usize,
    recovered_in: Duration,
}

fn run_case(c: &Case) -> Figures {
    let v1 = TestZone::new(ZONE, 1, EXTRA);
    let v2 = TestZone::new(ZONE, 2, EXTRA);
    let primary = FakePrimary::start(&zone_name(), records_of(&v1));
    let dir = tempfile::tempdir().unwrap();
    let outpost = Outpost::start_in(dir.path(), &config(primary.addr, ""));
    wait_for_serial(&outpost, 1, Duration::from_secs(10));
    wait_disk_zone(dir.path(), (1, v1.len()));

    let axfr0 = primary.axfr_queries();
    let soa0 = primary.soa_queries();
    let misbehaving_since = Instant::now();
    primary.set(records_of(&v2), c.behaviour.clone());
    // Transfer failures are errors; a failed SOA query is a warning, since
    // the next primary in the list may answer.
    let level = if c.soa_only { "WARN" } else { "ERROR" };
    let prefix = c.head.replace("{primary}", &primary.addr.to_string());
    // Transfer errors name the zone as "example.com", build errors as
    // "example.com."; either names it.
    let line = wait_log_line(
        &outpost,
        &[level, "zone example.com", &prefix, &c.reason],
        Duration::from_secs(15),
    );
    // The reason belongs to this failure, not to some other line.
    assert!(
        line.split(&prefix).nth(1).unwrap().contains(&c.reason),
        "{line}"
    );
    // Retries: at least two more attempts after the first failure.
    let attempts = || {
        if c.soa_only {
            primary.soa_queries() - soa0
        } else {
            primary.axfr_queries() - axfr0
        }
    };
    wait_until(
        &format!("{:?}: retries", c.behaviour),
        Duration::from_secs(15),
        || attempts() >= 3,
    );
    assert_serves(&outpost, 1);
    assert_eq!(disk_zone(dir.path()), (1, v1.len()), "{:?}", c.behaviour);
    assert_eq!(disk_state(dir.path()).serial, 1);
    let tried = attempts();
    // Retried at the retry interval (1 s), not in a tight loop.
    let window = misbehaving_since.elapsed().as_secs_f64();
    assert!(
        (tried as f64) <= window * 2.0 + 2.0,
        "{:?}: {tried} attempts in {window:.1}s",
        c.behaviour
    );

    primary.set_behaviour(Behaviour::Good);
    let recovered_in = wait_for_serial(&outpost, 2, Duration::from_secs(10));
    assert_serves(&outpost, 2);
    wait_disk_zone(dir.path(), (2, v2.len()));
    wait_until("state file at serial 2", Duration::from_secs(5), || {
        disk_state(dir.path()).serial == 2
    });
    Figures {
        attempts: tried,
        recovered_in,
    }
}

#[test]
fn misbehaving_primary_keeps_the_old_copy() {
    let mut cases = vec![
        case(
            Behaviour::CloseAfter(2),
            "transfer ended before the closing SOA (2 message(s)",
        ),
        case(
            Behaviour::OutOfZone,
            "record intruder.example.net. A is outside the zone",
        ),
        case(
            Behaviour::ClosingSoaDiffers,
            "closing SOA (serial 3) differs from the opening SOA (serial 2)",
        ),
        case(
            Behaviour::ExtraRecords(300),
            "over the limit of 200 records",
        ),
        case(
            Behaviour::ExtraBytes(30_000),
            "over the limit of 20000 octets per transfer",
        ),
        // Per-name limits are the zone build's: the whole transfer came in
        // and is rejected.
        Case {
            head: REJECTED,
            ..case(
                Behaviour::LargeRrset(60),
                "RRset big-rrset.example.com. A has 51 records, over the limit of 50",
            )
        },
        Case {
            head: REJECTED,
            ..case(
                Behaviour::ManyTypes(12),
                "many-types.example.com. has 11 record types, over the limit of 10",
            )
        },
        case(
            Behaviour::Stall { after: 1 },
            "timed out after 2s (waiting for the next message)",
        ),
        case(Behaviour::Rcode(RCODE_REFUSED), "server answered REFUSED"),
        case(Behaviour::Rcode(RCODE_SERVFAIL), "server answered SERVFAIL"),
        case(
            Behaviour::DuplicateApexSoa,
            "record(s) after the closing SOA",
        ),
        case(
            Behaviour::MissingApexSoa,
            "first record is example.com. NS, not the zone's SOA",
        ),
        case(
            Behaviour::WrongQuestion,
            "response question example.net. class 1 AXFR does not match the query",
        ),
        case(Behaviour::WrongId, "does not match query ID"),
    ];
    cases.push(Case {
        behaviour: Behaviour::TransferSerial(1),
        head: "transfer from {primary} ended with serial ",
        reason: "1, but the SOA query announced 2".into(),
        soa_only: false,
    });
    cases.push(Case {
        behaviour: Behaviour::CnameBesideData,
        head: "transfer from {primary} rejected: ",
        reason: "example.com. has a CNAME beside other data".into(),
        soa_only: false,
    });
    cases.push(Case {
        behaviour: Behaviour::SoaRcode(RCODE_REFUSED),
        head: "SOA query from {primary} failed: ",
        reason: "server answered REFUSED".into(),
        soa_only: true,
    });
    let started = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = cases.iter().map(|c| (c, s.spawn(|| run_case(c)))).collect();
        handles.into_iter().map(|(c, h)| (c, h.join())).collect()
    });
    let mut failed = Vec::new();
    for (c, r) in &results {
        match r {
            Ok(f) => eprintln!(
                "{:?}: {} attempts while misbehaving, serial 2 served {:?} after recovery",
                c.behaviour, f.attempts, f.recovered_in
            ),
            Err(_) => failed.push(format!("{:?}", c.behaviour)),
        }
    }
    eprintln!("{} cases in {:?}", cases.len(), started.elapsed());
    assert!(failed.is_empty(), "failed cases (panics above): {failed:?}");
}

/// A primary behind us (restored from an old backup, say) is contact, but
/// its zone is never transferred.
#[test]
fn older_serial_is_not_transferred() {
    let v5 = TestZone::new(ZONE, 5, EXTRA);
    let v4 = TestZone::new(ZONE, 4, EXTRA);
    let primary = FakePrimary::start(&zone_name(), records_of(&v5));
    let dir = tempfile::tempdir().unwrap();
    let outpost = Outpost::start_in(dir.path(), &config(primary.addr, ""));
    wait_for_serial(&outpost, 5, Duration::from_secs(10));
    let axfr = primary.axfr_queries();
    assert_eq!(axfr, 1);

    primary.set_zone(records_of(&v4));
    let soa0 = primary.soa_queries();
    let line = wait_log_line(
        &outpost,
        &[
            "primary has an older serial than ours; not transferring",
            "zone=example.com",
            &format!("primary={}", primary.addr),
            "theirs=4",
        ],
        Duration::from_secs(10),
    );
    assert!(line.contains("WARN"), "{line}");
    wait_until("more SOA checks", Duration::from_secs(10), || {
        primary.soa_queries() >= soa0 + 3
    });
    assert_eq!(primary.axfr_queries(), axfr, "transferred an older zone");
    assert_serves(&outpost, 5);
    assert_eq!(disk_zone(dir.path()), (5, v5.len()));
    let state = disk_state(dir.path());
    assert_eq!(state.serial, 5);
    assert_eq!(state.last_primary, Some(primary.addr));
}

/// Seconds between the last contact and the expiry in the state file.
fn stored_expire(dir: &Path) -> (u64, u64) {
    let s = disk_state(dir);
    let contact = s.last_contact.expect("last_contact").0;
    let at = s.expire_at.expect("expire_at").0;
    (contact, at - contact)
}

/// Whether the state file records a contact and an expiry yet.
fn has_stored_expire(dir: &Path) -> bool {
    let path = dir.join("data/state/example.com.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<ZoneState>(&text).ok())
        .is_some_and(|s| s.last_contact.is_some() && s.expire_at.is_some())
}

/// The EXPIRE option (RFC 7314 §4) from the primary, in both the AXFR and
/// the SOA answers, replaces a larger SOA EXPIRE (86400 in TestZone); the
/// result is still clamped by min_expire/max_expire; a larger option never
/// extends the SOA value.
fn expire_case(option: u32, zone_extra: &str, expected: u64) {
    let v1 = TestZone::new(ZONE, 1, EXTRA);
    let primary = FakePrimary::start(&zone_name(), records_of(&v1));
    primary.set_expire_option(Some(option));
    let dir = tempfile::tempdir().unwrap();
    let outpost = Outpost::start_in(dir.path(), &config(primary.addr, zone_extra));
    wait_for_serial(&outpost, 1, Duration::from_secs(10));
    // The copy is in service before the state is written.
    wait_until(
        "the state after the transfer",
        Duration::from_secs(5),
        || has_stored_expire(dir.path()),
    );
    let (contact, secs) = stored_expire(dir.path());
    assert_eq!(
        secs, expected,
        "option {option}, {zone_extra:?}, after the transfer"
    );
    // The next contacts are SOA checks: same rule.
    wait_until("a later contact", Duration::from_secs(10), || {
        stored_expire(dir.path()).0 > contact
    });
    let (_, secs) = stored_expire(dir.path());
    assert_eq!(
        secs, expected,
        "option {option}, {zone_extra:?}, after an SOA check"
    );
    // The first transfer needs no SOA query (there was no copy); the later
    // contact was one.
    assert!(primary.soa_queries() >= 1);
}

#[test]
fn edns_expire_option_sets_the_expiry() {
    let cases: [(u32, &str, u64); 4] = [
        (1000, "", 1000),
        (1000, "min_expire = \"2000s\"\n", 2000),
        (1000, "max_expire = \"500s\"\n", 500),
        (100_000, "", 86_400),
    ];
    std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|&(o, extra, e)| s.spawn(move || expire_case(o, extra, e)))
            .collect();
        let failed = handles
            .into_iter()
            .zip(cases.iter())
            .filter_map(|(h, c)| h.join().err().map(|_| c))
            .collect::<Vec<_>>();
        assert!(failed.is_empty(), "failed (panics above): {failed:?}");
    });
}
