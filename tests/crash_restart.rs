//! `kill -9` of the real server while it transfers and writes a
//! 200,000-record zone, over and over. After every kill the zone file must be
//! one complete version (the one before, byte for byte, or the new one), the
//! state file must parse and belong to it or be recoverable without moving
//! the expiry later, no temp file may survive the restart, and the restarted
//! server must answer from the file at once.
//!
//! The fake primary alternates between two versions of the zone (A and B,
//! with different data and record counts) and bumps the serial at every
//! restart, so every restart begins a new transfer. Kills are timed three
//! ways, round robin: at a random moment of the whole transfer + persist,
//! at a random moment while the zone's temp file is being written, and
//! right after the zone file's rename (aiming between the zone file and the
//! state file).

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::{Name, RData, Record, RecordType};

use common::comparable;
use common::fakeprimary::FakePrimary;
use common::outpost::{DataPaths, Outpost};
use common::peers::{free_port, soa_serial};
use outpost::persist::{ZoneState, load_state};
use outpost::rr;
use outpost::wire::{self, put_name};

const ZONE: &str = "example.com.";
const RECORDS: usize = 200_000;
const KILLS: usize = 12;
/// SOA EXPIRE of both versions; no EXPIRE option and default bounds, so the
/// state's expire_at must be exactly last_contact + this.
const SOA_EXPIRE: u64 = 86_400;
const FIRST_SERIAL: u32 = 1000;
/// The file must be served this soon after the restart, typically (the
/// median of all restarts): a release build parses and indexes the 200k
/// records in about half a second on an idle machine; a debug build is
/// several times slower.
const READY_TYPICAL: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(10)
} else {
    Duration::from_secs(1)
};
/// Every restart: leaves room for a loaded machine (the CI runner shares
/// its cores).
const READY_WORST: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(30)
} else {
    Duration::from_secs(3)
};

fn zone_name() -> Name {
    Name::from_ascii(ZONE).unwrap()
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// Version A for even serials, B for odd: different data, and B has fewer
/// records, so a count alone tells them apart.
fn big_zone(serial: u32) -> Vec<Record> {
    let b = serial % 2 == 1;
    let total = if b { RECORDS - 7 } else { RECORDS };
    let mut soa = Vec::new();
    put_name(&mut soa, &n("ns1.example.com."));
    put_name(&mut soa, &n("hostmaster.example.com."));
    for x in [serial, 1, 1, SOA_EXPIRE as u32, 300] {
        soa.extend_from_slice(&x.to_be_bytes());
    }
    let mut ns = Vec::new();
    put_name(&mut ns, &n("ns1.example.com."));
    let mut out = Vec::with_capacity(total);
    out.push(rr::record(zone_name(), RecordType::SOA, 3600, &soa).unwrap());
    out.push(rr::record(zone_name(), RecordType::NS, 3600, &ns).unwrap());
    out.push(rr::record(n("ns1.example.com."), RecordType::A, 3600, &[192, 0, 2, 53]).unwrap());
    for i in 0..total - 3 {
        let owner = n(&format!("h{i}.example.com."));
        let rec = if i % 2 == 0 {
            let x = (i as u32).to_be_bytes();
            let first = if b { 10 } else { 172 };
            rr::record(owner, RecordType::A, 300, &[first, x[1], x[2], x[3]])
        } else {
            let s = format!("version {} record {i}", if b { 'B' } else { 'A' });
            let mut v = vec![s.len() as u8];
            v.extend_from_slice(s.as_bytes());
            rr::record(owner, RecordType::TXT, 300, &v)
        };
        out.push(rec.unwrap());
    }
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What is on disk after a kill, checked against the versions it may be.
struct OnDisk {
    serial: u32,
    records: usize,
    bytes: Vec<u8>,
    state: ZoneState,
}

fn zone_serial(records: &[Record]) -> u32 {
    let soas: Vec<u32> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .collect();
    assert_eq!(soas.len(), 1, "zone file must hold exactly one SOA");
    soas[0]
}

/// A zone in the sorted form of [`comparable`].
type Comparable = Vec<(String, u16, u32, Vec<u8>)>;

/// Expected contents of each serial.
struct Versions(BTreeMap<u32, Comparable>);

impl Versions {
    fn expected(&mut self, serial: u32) -> &Comparable {
        self.0
            .entry(serial)
            .or_insert_with(|| comparable(&big_zone(serial)))
    }
}

/// Reads and checks the zone file and the state file: the zone is exactly
/// `old` (same bytes as before) or exactly `new`; the state parses, belongs
/// to the zone file or to `old`, and its expiry is last_contact + EXPIRE
/// with a contact no later than the kill.
fn check_disk(
    paths: &DataPaths,
    versions: &mut Versions,
    old: Option<&OnDisk>,
    new: u32,
    killed_at: u64,
) -> OnDisk {
    let bytes = std::fs::read(&paths.zone_file).expect("zone file");
    let records = outpost::zonefile::parse_file(&paths.zone_file, &zone_name())
        .unwrap_or_else(|e| panic!("zone file does not parse: {e}"));
    let serial = zone_serial(&records);
    match old {
        Some(o) if serial == o.serial => {
            assert!(
                bytes == o.bytes,
                "zone file at the old serial {serial} changed"
            );
        }
        _ => {
            assert_eq!(
                serial,
                new,
                "zone file serial {serial}, neither old {:?} nor new {new}",
                old.map(|o| o.serial)
            );
            let got = comparable(&records);
            let want = versions.expected(serial);
            assert_eq!(got.len(), want.len(), "record count of serial {serial}");
            assert!(got == *want, "records of serial {serial} differ");
        }
    }
    let state = load_state(&paths.state_file, &zone_name())
        .unwrap_or_else(|e| panic!("state file: {e}"))
        .expect("state file exists");
    let contact = state.last_contact.expect("last_contact").0;
    assert_eq!(
        state.expire_at.map(|t| t.0),
        Some(contact + SOA_EXPIRE),
        "expire_at is not last_contact + SOA EXPIRE: {state:?}"
    );
    assert!(contact <= killed_at, "contact after the kill: {state:?}");
    match old {
        // Nothing new written: the old state, whatever serial it was for.
        Some(o) if serial == o.serial => {
            assert_eq!(state, o.state, "state file changed, zone file did not");
        }
        // Killed between the zone file's rename and the state file's: the
        // old state stays, and the restart must keep its (earlier) expiry.
        Some(o) if state.serial != serial => {
            assert_eq!(state, o.state, "state file of another serial changed");
        }
        Some(o) => {
            assert_eq!(state.serial, new);
            assert!(
                contact >= o.state.last_contact.unwrap().0,
                "last contact moved back: {state:?} after {:?}",
                o.state
            );
        }
        None => assert_eq!(state.serial, serial),
    }
    OnDisk {
        serial,
        records: records.len(),
        bytes,
        state,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// Transfer or build: nothing written yet.
    BeforeWrite,
    /// Zone temp file present.
    ZoneWrite,
    /// Zone file renamed into place, state not yet.
    BetweenFiles,
    /// State temp file present.
    StateWrite,
    /// Both files replaced.
    AfterWrite,
}

fn landed(disk: &OnDisk, temps: &[String], old: u32) -> Landed {
    if temps.iter().any(|t| t.contains(".zone.")) {
        Landed::ZoneWrite
    } else if temps.iter().any(|t| t.contains(".json.")) {
        Landed::StateWrite
    } else if disk.serial == old {
        Landed::BeforeWrite
    } else if disk.state.serial != disk.serial {
        Landed::BetweenFiles
    } else {
        Landed::AfterWrite
    }
}

fn config() -> String {
    "[server]
listen = [\"127.0.0.1:{port}\"]
data_dir = \"{dir}/data\"

[defaults]
min_refresh = \"1s\"
min_retry = \"1s\"

[[zone]]
name = \"example.com\"
primaries = [\"PRIMARY\"]
"
    .to_string()
}

/// Polls the restarted server every few milliseconds (a datagram sent
/// before the socket is bound is lost) and returns the serial of its first
/// answer and when it came.
fn first_answer(outpost: &mut Outpost, started: Instant) -> (Option<u32>, Duration) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    for id in 0u16.. {
        if let Ok(Some(status)) = outpost.child.try_wait() {
            panic!("outpost exited with {status}: {}", outpost.log_text());
        }
        assert!(
            started.elapsed() < READY_WORST,
            "no answer within {READY_WORST:?}: {}",
            outpost.log_text()
        );
        sock.send_to(&wire::soa_query(id, &zone_name()), outpost.addr)
            .unwrap();
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let at = started.elapsed();
        let msg = wire::Message::parse(&buf[..n]).expect("answer parses");
        // Queries queued while the server started are all answered; the
        // first answer counts, whichever query it is for.
        assert!(msg.header.id <= id, "answer to a query never sent");
        let serial = msg.answers.iter().find_map(|a| match a.to_record() {
            Ok(r) => match r.data {
                RData::SOA(s) => Some(s.serial),
                _ => None,
            },
            Err(_) => None,
        });
        return (serial, at);
    }
    unreachable!("the loop ends by returning or panicking")
}

/// The value of `key=` in a log line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!(" {key}="))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 2;
    line[start..].split(' ').next().unwrap()
}

/// Starts Outpost. With a copy on disk, checks that it serves that copy
/// within READY_WORST, with the expiry clock of the state file (never reset
/// by the restart, and in a conservative recovery the old state's), and
/// that no temp file of an earlier process is left.
fn restart(
    dir: &Path,
    config: &str,
    port: u16,
    paths: &DataPaths,
    disk: Option<&OnDisk>,
) -> (Outpost, Duration) {
    let started = Instant::now();
    let t0 = unix_now();
    let mut outpost = Outpost::start_on(dir, config, port);
    let Some(disk) = disk else {
        return (outpost, started.elapsed());
    };
    let (got, elapsed) = first_answer(&mut outpost, started);
    let t1 = unix_now();
    assert_eq!(
        got,
        Some(disk.serial),
        "not serving the file on disk: {}",
        outpost.log_text()
    );
    assert!(elapsed <= READY_WORST, "served after {elapsed:?}");
    let pid = format!("-tmp-{}-", outpost.child.id());
    let stale: Vec<_> = paths
        .temp_files()
        .into_iter()
        .filter(|t| !t.contains(&pid))
        .collect();
    assert!(stale.is_empty(), "temp files left after restart: {stale:?}");

    let log = outpost.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("serving the copy on disk"))
        .unwrap_or_else(|| panic!("no load line: {log}"));
    assert_eq!(field(line, "serial"), disk.serial.to_string(), "{line}");
    assert_eq!(field(line, "records"), disk.records.to_string(), "{line}");
    let expires_in: u64 = field(line, "expires_in")
        .trim_start_matches("Some(")
        .trim_end_matches("s)")
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {line}"));
    let at = disk.state.expire_at.unwrap().0;
    assert!(
        (at - t1 - 1..=at - t0).contains(&expires_in),
        "restored expiry: {expires_in}s left at load, state says expire_at {at} (started at {t0})"
    );
    (outpost, elapsed)
}

#[test]
fn kill_9_during_transfer_and_persist() {
    let test_start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let paths = DataPaths::new(dir.path(), ZONE);
    let mut versions = Versions(BTreeMap::new());
    let primary = FakePrimary::start(&zone_name(), big_zone(FIRST_SERIAL));
    primary.set_records_per_message(1000);
    let config = config().replace("PRIMARY", &primary.addr.to_string());
    let port = free_port();

    // Round 0: a complete first transfer, timed to aim the kills.
    let (mut outpost, _) = restart(dir.path(), &config, port, &paths, None);
    let axfr_at = primary.wait_axfr_queries(1, Duration::from_secs(20));
    let long = Duration::from_secs(120);
    outpost.wait_for("zone temp file", long, || {
        paths.temp_files().iter().any(|t| t.contains(".zone."))
    });
    let temp_at = Instant::now();
    outpost.wait_for("zone file", long, || paths.zone_inode().is_some());
    let renamed_at = Instant::now();
    outpost.wait_for("state file", long, || {
        load_state(&paths.state_file, &zone_name())
            .ok()
            .flatten()
            .is_some_and(|s| s.serial == FIRST_SERIAL)
    });
    let transfer = temp_at - axfr_at;
    let write = renamed_at - temp_at;
    eprintln!("first transfer + build: {transfer:?}, zone file write: {write:?}");
    outpost.kill9();
    drop(outpost);
    let mut disk = check_disk(&paths, &mut versions, None, FIRST_SERIAL, unix_now());
    assert_eq!(disk.state.serial, FIRST_SERIAL);

    let mut outcomes: BTreeMap<Landed, usize> = BTreeMap::new();
    let mut ready_times = Vec::new();
    let mut recovered_logs = 0;
    for round in 1..=KILLS {
        let new = FIRST_SERIAL + round as u32;
        primary.set_zone(big_zone(new));
        let before = primary.axfr_queries();
        let inode = paths.zone_inode();
        let mismatch_before = disk.state.serial != disk.serial;
        let (mut outpost, ready) = restart(dir.path(), &config, port, &paths, Some(&disk));
        ready_times.push(ready);
        if mismatch_before {
            let log = outpost.log_text();
            assert!(
                log.contains("timer state recovered conservatively"),
                "state of another serial not reported: {log}"
            );
            recovered_logs += 1;
        }
        let axfr_at = primary.wait_axfr_queries(before + 1, Duration::from_secs(20));
        match round % 3 {
            0 => {
                let delay = (transfer + write).mul_f64(rand::random::<f64>());
                std::thread::sleep(delay.saturating_sub(axfr_at.elapsed()));
            }
            1 => {
                outpost.wait_for("zone temp file", long, || {
                    paths.temp_files().iter().any(|t| t.contains(".zone."))
                });
                // Short of the whole measured write, which may run faster
                // this time.
                std::thread::sleep(write.mul_f64(0.8 * rand::random::<f64>()));
            }
            _ => {
                outpost.wait_for("zone file rename", long, || paths.zone_inode() != inode);
            }
        }
        outpost.kill9();
        let killed_at = unix_now();
        drop(outpost);
        let temps = paths.temp_files();
        let now_disk = check_disk(&paths, &mut versions, Some(&disk), new, killed_at);
        let l = landed(&now_disk, &temps, disk.serial);
        eprintln!(
            "kill {round}: {l:?}, zone serial {} state serial {}, ready after {ready:?}",
            now_disk.serial, now_disk.state.serial
        );
        *outcomes.entry(l).or_default() += 1;
        disk = now_disk;
    }

    // Last restart: the newest version arrives and both files agree.
    let newest = FIRST_SERIAL + KILLS as u32 + 1;
    primary.set_zone(big_zone(newest));
    let (mut outpost, ready) = restart(dir.path(), &config, port, &paths, Some(&disk));
    ready_times.push(ready);
    let addr = outpost.addr;
    outpost.wait_for("newest serial served", long, || {
        soa_serial(addr, ZONE) == Some(newest)
    });
    outpost.wait_for("state of the newest serial", long, || {
        load_state(&paths.state_file, &zone_name())
            .ok()
            .flatten()
            .is_some_and(|s| s.serial == newest)
    });
    outpost.terminate();
    let last = check_disk(&paths, &mut versions, Some(&disk), newest, unix_now());
    assert_eq!((last.serial, last.state.serial), (newest, newest));
    assert!(paths.temp_files().is_empty(), "{:?}", paths.temp_files());

    let mid_write = outcomes
        .iter()
        .filter(|(l, _)| {
            matches!(
                l,
                Landed::ZoneWrite | Landed::BetweenFiles | Landed::StateWrite
            )
        })
        .map(|(_, c)| c)
        .sum::<usize>();
    ready_times.sort();
    let slowest = ready_times.last().unwrap();
    let median = ready_times[ready_times.len() / 2];
    eprintln!(
        "{KILLS} kills: {outcomes:?}; {mid_write} mid-write; {recovered_logs} conservative recoveries; \
         restart-to-answer median {median:?}, slowest {slowest:?}; total {:?}",
        test_start.elapsed()
    );
    assert!(
        median <= READY_TYPICAL,
        "restart-to-answer median {median:?}, over {READY_TYPICAL:?}"
    );
    assert!(
        outcomes.get(&Landed::ZoneWrite).copied().unwrap_or(0) >= 2,
        "too few kills landed while the zone file was written: {outcomes:?}"
    );
}
