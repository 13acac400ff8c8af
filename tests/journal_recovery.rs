//! Recovery of a zone's copy on disk (zone file, journal, state file)
//! against a real BIND primary whose dynamic zone takes `nsupdate` changes,
//! each reaching Outpost by NOTIFY and IXFR:
//!
//! - `kill -9` at random moments of a stream of IXFRs into a 100,000-record
//!   zone, aimed also right after a journal append and in the middle of a
//!   compaction (the zone file rewritten from the copy in service): each
//!   restart with the primary unreachable serves at once a version the
//!   primary published, record for record, with the expiry clock of the
//!   state file, and no temp file left; with the primary back, it catches
//!   up.
//! - The zone file written by a compaction passes `named-checkzone`.
//! - A zone file cut short on a line boundary (with or without its
//!   integrity line) is refused, or served flagged, as configured, and
//!   replaced by a transfer once the primary answers.
//! - A write that fails (RLIMIT_FSIZE) leaves the new copy in service, the
//!   files consistent, and status, health and metrics saying so, until the
//!   retry succeeds.
//! - IXFR history served from the journal survives a restart and a
//!   `kill -9`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::Rng;

use common::TestZone;
use common::dns::{Q, query};
use common::outpost::{DataPaths, Outpost, health, metric};
use common::peers::{Bind, Options, Server, free_port, need, nsupdate, soa_serial};
use common::wait_until;
use common::xfr::{WireRr, axfr_set, rr_text, wire_rr};
use outpost::control::request;
use outpost::persist::{ZoneState, load_state};
use outpost::xfr::interp::{IxfrDiff, TransferData};
use outpost::zone::RawRecords;

const ZONE: &str = "example.com.";
/// A primary nobody answers at: only the disk counts.
const DOWN: &str = "127.0.0.1:9";
/// A restarted server must answer from its files within this (a release
/// build loads the 100,000 records in well under a second; room is left
/// for a loaded CI machine).
const READY: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(30)
} else {
    Duration::from_secs(5)
};
/// BIND options for a dynamic zone whose records need not make sense
/// together (MX and SRV targets without addresses, as in [`TestZone`]).
const DYNAMIC: &str =
    "allow-update { 127.0.0.1; }; check-integrity no; check-mx ignore; check-names ignore;";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Outpost's configuration, transfers out allowed to 127.0.0.1 (the test
/// compares zones by AXFR; it also makes Outpost keep IXFR history).
fn config(primary: &str, control: SocketAddr, zone_extra: &str) -> String {
    format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"

[defaults]
min_refresh = \"1s\"
min_retry = \"1s\"

[[zone]]
name = \"example.com\"
primaries = [\"{primary}\"]
allow_transfer = [\"127.0.0.1\"]
{zone_extra}"
    )
}

/// A small zone whose records all make sense together (`named-checkzone`
/// checks them): refresh 2 s and retry 1 s, so Outpost looks often.
fn small_zone(serial: u32) -> String {
    let mut z = format!(
        "$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster {serial} 2 1 86400 300
  IN NS ns1
  IN MX 10 mail
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
txt IN TXT \"hello world\" \"a second; string\"
"
    );
    for i in 0..40 {
        z.push_str(&format!("h{i} IN A 198.51.100.{i}\n"));
    }
    z
}

fn zone_status(control: SocketAddr) -> serde_json::Value {
    let text = request(control, "GET", "/status", None).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["zones"][0].clone()
}

fn metrics(control: SocketAddr) -> String {
    request(control, "GET", "/metrics", None).unwrap()
}

fn state(paths: &DataPaths) -> Option<ZoneState> {
    load_state(&paths.state_file, &Name::from_ascii(ZONE).unwrap())
        .unwrap_or_else(|e| panic!("state file: {e}"))
}

/// The serial the zone file's integrity line names, if it has one.
fn trailer_serial(paths: &DataPaths) -> Option<u32> {
    let text = std::fs::read_to_string(&paths.zone_file).ok()?;
    let last = text.lines().last()?;
    let rest = last.strip_prefix("; outpost-zone-file ")?;
    rest.split(' ')
        .find_map(|f| f.strip_prefix("serial="))
        .and_then(|s| s.parse().ok())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Temp files of processes other than `pid`.
fn stale_temps(paths: &DataPaths, pid: u32) -> Vec<String> {
    let mine = format!("-tmp-{pid}-");
    paths
        .temp_files()
        .into_iter()
        .filter(|t| !t.contains(&mine))
        .collect()
}

/// Starts Outpost on files left by an earlier process and checks that the
/// first answer is the zone, served from them: returns its serial.
fn restart_from_disk(dir: &Path, cfg: &str, port: u16) -> (Outpost, u32, Duration) {
    let started = Instant::now();
    let mut op = Outpost::start_on(dir, cfg, port);
    op.wait_ready(ZONE, READY);
    let serial = soa_serial(op.addr, ZONE)
        .unwrap_or_else(|| panic!("not served from disk at once:\n{}", op.log_text()));
    (op, serial, started.elapsed())
}

/// Polls the SOA serial Outpost serves until it is `serial`.
fn wait_serial(op: &mut Outpost, serial: u32, within: Duration) {
    let addr = op.addr;
    op.wait_for(&format!("serial {serial} served"), within, || {
        soa_serial(addr, ZONE) == Some(serial)
    });
}

/// Where the serial sits in an SOA's RDATA (after two uncompressed names).
fn soa_serial_offset(rdata: &[u8]) -> usize {
    let m = outpost::zone::raw::name_len(rdata).unwrap();
    m + outpost::zone::raw::name_len(&rdata[m..]).unwrap()
}

fn record_wire(r: &Record) -> WireRr {
    let raw: RawRecords = std::iter::once(r).collect();
    wire_rr(&raw.iter().next().unwrap())
}

fn name_wire(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    outpost::wire::put_name(&mut v, &Name::from_ascii(s).unwrap());
    v.to_ascii_lowercase()
}

/// Compares two versions of the zone, showing a few differences.
fn assert_same(got: &BTreeSet<WireRr>, want: &BTreeSet<WireRr>, what: &str) {
    if got != want {
        let extra: Vec<String> = got.difference(want).take(10).map(rr_text).collect();
        let missing: Vec<String> = want.difference(got).take(10).map(rr_text).collect();
        panic!(
            "{what}: {} records, {} expected\nunexpected: {extra:#?}\nmissing: {missing:#?}",
            got.len(),
            want.len()
        );
    }
}

/// What the primary published: the zone as loaded (`base`, SOA aside) plus,
/// for each serial, the records the updates made (`dynamic`), so that any
/// version can be rebuilt without keeping each whole.
struct Published {
    primary: SocketAddr,
    base: BTreeSet<WireRr>,
    soa: WireRr,
    /// Records added by updates, by the serial that first had them.
    dynamic: BTreeMap<u32, BTreeSet<WireRr>>,
    /// The dynamic records now, by step number.
    current: BTreeMap<u32, WireRr>,
    step: u32,
}

impl Published {
    /// Takes the primary's zone as it is now, by AXFR.
    fn from_primary(primary: SocketAddr) -> Published {
        let mut base = axfr_set(primary, ZONE);
        let soa = base.iter().find(|r| r.1 == 6).unwrap().clone();
        base.remove(&soa);
        let serial = Self::serial_of(&soa);
        Published {
            primary,
            base,
            soa,
            dynamic: BTreeMap::from([(serial, BTreeSet::new())]),
            current: BTreeMap::new(),
            step: 0,
        }
    }

    fn serial_of(soa: &WireRr) -> u32 {
        let at = soa_serial_offset(&soa.3);
        u32::from_be_bytes(soa.3[at..at + 4].try_into().unwrap())
    }

    fn has(&self, serial: u32) -> bool {
        self.dynamic.contains_key(&serial)
    }

    fn latest(&self) -> u32 {
        *self.dynamic.keys().next_back().unwrap()
    }

    /// The whole zone of `serial`.
    fn version(&self, serial: u32) -> BTreeSet<WireRr> {
        let mut v = self.base.clone();
        v.extend(self.dynamic[&serial].iter().cloned());
        let mut soa = self.soa.clone();
        let at = soa_serial_offset(&soa.3);
        soa.3[at..at + 4].copy_from_slice(&serial.to_be_bytes());
        v.insert(soa);
        v
    }

    /// One change at the primary: a new name, and every third step the
    /// name of two steps before deleted. Returns the new serial.
    fn update(&mut self) -> u32 {
        self.step += 1;
        let k = self.step;
        let owner = format!("d{k}.dyn.{ZONE}");
        let addr = [10, (k >> 16) as u8, (k >> 8) as u8, k as u8];
        let mut commands = format!(
            "update add {owner} 300 A {}.{}.{}.{}",
            addr[0], addr[1], addr[2], addr[3]
        );
        self.current
            .insert(k, (name_wire(&owner), 1, 300, addr.to_vec()));
        if k.is_multiple_of(3) && self.current.remove(&(k - 2)).is_some() {
            commands.push_str(&format!("\nupdate delete d{}.dyn.{ZONE} A", k - 2));
        }
        nsupdate(self.primary, ZONE, &commands);
        let serial = soa_serial(self.primary, ZONE).expect("primary answers");
        assert!(!self.has(serial), "serial {serial} published twice");
        self.dynamic
            .insert(serial, self.current.values().cloned().collect());
        serial
    }
}

/// Updates the primary over and over on a thread of its own until stopped.
struct Updater {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Updater {
    fn start(published: Arc<Mutex<Published>>) -> Updater {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                published.lock().unwrap().update();
            }
        });
        Updater { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("updater thread");
    }
}

/// Where a kill landed, as the files show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// A zone file was being written (its temp file is there).
    Compaction,
    /// The journal holds more than the state file acknowledges.
    JournalAheadOfState,
    /// The zone file plus the journal's replay give the copy.
    JournalReplayed,
    /// The zone file alone is the copy.
    ZoneFileOnly,
}

const BIG: usize = 100_000;
const KILLS: usize = 6;

/// `kill -9` while Outpost takes IXFRs into a 100,000-record zone and
/// rewrites its zone file every second (`zonefile_sync = "1s"`). Kills come
/// three ways, round robin: at a random moment, right after the journal
/// grows, and in the middle of the zone file's rewrite. After each, the
/// restart with the primary unreachable must serve at once a serial the
/// primary published, not older than the state file's, with exactly that
/// version's records, and the state file's contact and expiry times; no
/// temp file of the killed process may survive the restart. Then, with
/// the primary back, it catches up.
#[test]
fn kill_9_during_journal_appends_and_compaction() {
    let test_start = Instant::now();
    let zone = TestZone::new(ZONE, 1, BIG);
    let port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let bind = Bind::start(
        &[(ZONE, &zone.text)],
        &[],
        &Options {
            notify: vec![SocketAddr::from(([127, 0, 0, 1], port))],
            bind_zone_options: DYNAMIC.into(),
            ..Options::default()
        },
    );
    let primary = bind.addr();
    let published = Arc::new(Mutex::new(Published::from_primary(primary)));
    assert_eq!(published.lock().unwrap().base.len(), BIG + 2);
    eprintln!("BIND up after {:?}", test_start.elapsed());

    let dir = tempfile::tempdir().unwrap();
    let paths = DataPaths::new(dir.path(), ZONE);
    let sync = "zonefile_sync = \"1s\"\n";
    let up = config(&primary.to_string(), control, sync);
    let down = config(DOWN, control, sync);

    // First transfer, whole; the zone file's write timed to aim the kills.
    let mut op = Outpost::start_on(dir.path(), &up, port);
    let long = Duration::from_secs(60);
    op.wait_for("zone temp file", long, || {
        paths.temp_files().iter().any(|t| t.contains(".zone."))
    });
    let temp_at = Instant::now();
    op.wait_for("zone file", long, || paths.zone_inode().is_some());
    let write = temp_at.elapsed();
    wait_serial(&mut op, 1, long);
    op.wait_for("state file", long, || {
        state(&paths).is_some_and(|s| s.serial == 1)
    });
    eprintln!(
        "first transfer done after {:?}; zone file write {write:?}",
        test_start.elapsed()
    );

    let mut outcomes: BTreeMap<Landed, usize> = BTreeMap::new();
    let mut ready_times = Vec::new();
    for round in 0..KILLS {
        // Changes stream in; the kill comes.
        let journal_before = file_len(&paths.journal_file);
        let updater = Updater::start(published.clone());
        match round % 3 {
            0 => std::thread::sleep(Duration::from_millis(rand::rng().random_range(200..2500))),
            1 => op.wait_for("journal append", long, || {
                file_len(&paths.journal_file) != journal_before
            }),
            _ => {
                op.wait_for("zone file rewrite", long, || {
                    paths.temp_files().iter().any(|t| t.contains(".zone."))
                });
                std::thread::sleep(write.mul_f64(0.8 * rand::random::<f64>()));
            }
        }
        op.kill9();
        let killed_at = unix_now();
        updater.stop();
        let temps = paths.temp_files();
        let on_disk = state(&paths).expect("state file after the kill");
        let file_serial = trailer_serial(&paths);

        // Restart with the primary unreachable: only the disk counts.
        let (mut op2, served, ready) = restart_from_disk(dir.path(), &down, port);
        ready_times.push(ready);
        let p = published.lock().unwrap();
        assert!(
            p.has(served),
            "round {round}: serial {served} was never published (latest {})",
            p.latest()
        );
        assert!(
            served >= on_disk.serial,
            "round {round}: serves {served}, older than the state file's {}",
            on_disk.serial
        );
        let got = axfr_set(op2.addr, ZONE);
        assert_same(
            &got,
            &p.version(served),
            &format!("round {round}: serial {served} after the restart"),
        );
        let latest = p.latest();
        drop(p);
        // The expiry clock is the state file's, not restarted.
        let s = zone_status(control);
        assert_eq!(s["serial"], served, "{s}");
        assert_eq!(
            s["last_contact"].as_u64(),
            on_disk.last_contact.map(|t| t.0),
            "round {round}: contact time not the state file's: {s}"
        );
        assert_eq!(
            s["expires_at"].as_u64(),
            on_disk.expire_at.map(|t| t.0),
            "round {round}: expiry not the state file's: {s}"
        );
        assert!(on_disk.expire_at.unwrap().0 <= killed_at + 86_400);
        let stale = stale_temps(&paths, op2.child.id());
        assert!(
            stale.is_empty(),
            "round {round}: temp files left: {stale:?}"
        );
        let landed = if temps.iter().any(|t| t.contains(".zone.")) {
            Landed::Compaction
        } else if served != on_disk.serial {
            Landed::JournalAheadOfState
        } else if file_serial != Some(served) {
            Landed::JournalReplayed
        } else {
            Landed::ZoneFileOnly
        };
        if landed == Landed::JournalReplayed || landed == Landed::JournalAheadOfState {
            assert!(
                op2.log_text()
                    .contains("journal replayed onto the zone file"),
                "{}",
                op2.log_text()
            );
        }
        *outcomes.entry(landed).or_default() += 1;
        eprintln!(
            "kill {round}: {landed:?}; zone file {file_serial:?}, state {}, served {served} \
             (latest published {latest}), ready after {ready:?}; temps at the kill {temps:?}",
            on_disk.serial
        );
        op2.kill9();

        // With the primary back, the next change (by NOTIFY) is caught up.
        op = Outpost::start_on(dir.path(), &up, port);
        op.wait_ready(ZONE, READY);
        let next = published.lock().unwrap().update();
        wait_serial(&mut op, next, Duration::from_secs(20));
    }
    // The last catch-up is exact, record for record.
    let latest = published.lock().unwrap().latest();
    assert_same(
        &axfr_set(op.addr, ZONE),
        &published.lock().unwrap().version(latest),
        "after catching up",
    );
    ready_times.sort();
    eprintln!(
        "{KILLS} kills: {outcomes:?}; restart-to-answer slowest {:?}; total {:?}",
        ready_times.last().unwrap(),
        test_start.elapsed()
    );
    assert!(
        outcomes.get(&Landed::Compaction).copied().unwrap_or(0) >= 1,
        "no kill landed in a zone file rewrite: {outcomes:?}"
    );
    assert!(
        outcomes.get(&Landed::JournalReplayed).copied().unwrap_or(0)
            + outcomes
                .get(&Landed::JournalAheadOfState)
                .copied()
                .unwrap_or(0)
            >= 1,
        "no restart replayed the journal: {outcomes:?}"
    );
}

/// A small dynamic zone at BIND, which notifies Outpost at `outpost_port`.
fn small_primary(outpost_port: u16, serial: u32) -> Server {
    Bind::start(
        &[(ZONE, &small_zone(serial))],
        &[],
        &Options {
            notify: vec![SocketAddr::from(([127, 0, 0, 1], outpost_port))],
            bind_zone_options: "allow-update { 127.0.0.1; };".into(),
            ..Options::default()
        },
    )
}

/// The zone file a compaction wrote (a later serial than the first,
/// whole, transfer's) passes `named-checkzone -i local`, integrity line
/// included, at the serial served, and holds that version exactly.
#[test]
fn named_checkzone_accepts_the_compacted_zone_file() {
    let checkzone = need("named-checkzone", "bind9-utils");
    let port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let bind = small_primary(port, 1);
    let primary = bind.addr();
    let mut published = Published::from_primary(primary);
    let dir = tempfile::tempdir().unwrap();
    let paths = DataPaths::new(dir.path(), ZONE);
    let cfg = config(&primary.to_string(), control, "zonefile_sync = \"1s\"\n");
    let mut op = Outpost::start_on(dir.path(), &cfg, port);
    wait_serial(&mut op, 1, Duration::from_secs(10));
    let mut serial = 1;
    for _ in 0..3 {
        serial = published.update();
        wait_serial(&mut op, serial, Duration::from_secs(10));
    }
    // IXFRs go to the journal: only a compaction puts this serial in the
    // zone file.
    op.wait_for("compaction", Duration::from_secs(10), || {
        trailer_serial(&paths) == Some(serial)
    });
    let text = std::fs::read_to_string(&paths.zone_file).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("; outpost-zone-file epoch="),
        "{text}"
    );
    let out = Command::new(checkzone)
        .args(["-i", "local", "example.com"])
        .arg(&paths.zone_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "named-checkzone rejects {}:\n{stdout}{}\n{text}",
        paths.zone_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("loaded serial {serial}")),
        "{stdout}"
    );
    let records =
        outpost::zonefile::parse_file(&paths.zone_file, &Name::from_ascii(ZONE).unwrap()).unwrap();
    let in_file: BTreeSet<WireRr> = records.iter().map(record_wire).collect();
    assert_same(
        &in_file,
        &published.version(serial),
        "the compacted zone file",
    );
}

/// Cuts the zone file short on a line boundary: the last `cut` lines, or,
/// keeping the integrity line, the `cut` lines before it.
fn cut_zone_file(paths: &DataPaths, cut: usize, keep_trailer: bool) {
    let text = std::fs::read_to_string(&paths.zone_file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let trailer = lines.pop().unwrap();
    assert!(trailer.starts_with("; outpost-zone-file "), "{trailer}");
    if keep_trailer {
        lines.truncate(lines.len() - cut);
        lines.push(trailer);
    } else {
        lines.truncate(lines.len() + 1 - cut);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(&paths.zone_file, out).unwrap();
}

/// A zone file cut short on a line boundary, with its integrity line or
/// without, is not taken for the copy that was served. With the default
/// `on_damaged_copy = "refuse"` the zone answers SERVFAIL, with "serve"
/// the damaged copy is answered; either way status and health name the
/// problem, and once the primary answers (with the same serial) the zone
/// is transferred again, served whole and the problem cleared.
#[test]
fn a_zone_file_cut_short_is_refused_or_flagged_then_transferred_again() {
    let bind_port = free_port();
    let primary = SocketAddr::from(([127, 0, 0, 1], bind_port));
    let opts = Options {
        port: Some(bind_port),
        ..Options::default()
    };
    let start_primary = || Bind::start(&[(ZONE, &small_zone(7))], &[], &opts);
    let mut bind = Some(start_primary());
    let good = Published::from_primary(primary).version(7);
    let port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dir = tempfile::tempdir().unwrap();
    let paths = DataPaths::new(dir.path(), ZONE);
    let refuse = config(&primary.to_string(), control, "");
    let serve = config(
        &primary.to_string(),
        control,
        "on_damaged_copy = \"serve\"\n",
    );
    let mut op = Outpost::start_on(dir.path(), &refuse, port);
    wait_serial(&mut op, 7, Duration::from_secs(10));
    op.wait_for("state file", Duration::from_secs(10), || {
        state(&paths).is_some_and(|s| s.serial == 7)
    });
    for (serving, keep_trailer, cut) in [
        (false, false, 3),
        (false, true, 2),
        (true, true, 2),
        (true, false, 1),
    ] {
        let case = format!(
            "on_damaged_copy = {}, {cut} lines cut, integrity line {}",
            if serving { "serve" } else { "refuse" },
            if keep_trailer { "kept" } else { "dropped" }
        );
        assert!(op.terminate().success(), "{case}");
        drop(bind.take());
        cut_zone_file(&paths, cut, keep_trailer);

        let mut op2 = Outpost::start_on(dir.path(), if serving { &serve } else { &refuse }, port);
        op2.wait_ready(ZONE, READY);
        let s = zone_status(control);
        let problem = s["copy_problem"].as_str().unwrap_or_default().to_string();
        assert!(
            problem.contains("integrity check"),
            "{case}: status without the copy problem: {s}"
        );
        let h = health(control);
        assert!(
            h.contains("answered 503") && h.contains("integrity check"),
            "{case}: health does not name the damaged copy: {h}"
        );
        let rcode = query(op2.addr, ZONE, RecordType::MX, Q::udp())
            .metadata
            .response_code;
        if serving {
            assert_eq!(rcode, ResponseCode::NoError, "{case}");
            assert_eq!(s["served"], true, "{case}: {s}");
            // The damaged copy as it is: the records left in the file.
            let got = axfr_set(op2.addr, ZONE);
            let lost = if keep_trailer { cut } else { cut - 1 };
            assert!(got.is_subset(&good), "{case}");
            assert_eq!(good.len() - got.len(), lost, "{case}");
        } else {
            assert_eq!(rcode, ResponseCode::ServFail, "{case}");
            assert_eq!(s["served"], false, "{case}: {s}");
        }

        // A check fails while the primary is down (an SOA query with the
        // damaged copy served; with it refused there is no copy, and the
        // check goes straight to AXFR); then it answers again, with the
        // same serial.
        op2.wait_for("a failed check", Duration::from_secs(10), || {
            zone_status(control)["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(if serving { "SOA query" } else { "AXFR" }))
        });
        bind = Some(start_primary());
        wait_until(
            &format!("{case}: transferred again"),
            Duration::from_secs(20),
            || zone_status(control)["copy_problem"].is_null() && health(control).starts_with("ok"),
        );
        assert_same(&axfr_set(op2.addr, ZONE), &good, &case);
        op2.wait_for("zone file rewritten", Duration::from_secs(10), || {
            trailer_serial(&paths) == Some(7)
        });
        op = op2;
    }
    // The file written by the last transfer is sound: served from disk.
    assert!(op.terminate().success());
    let (op, served, _) = restart_from_disk(dir.path(), &config(DOWN, control, ""), port);
    assert_eq!(served, 7);
    assert!(zone_status(control)["copy_problem"].is_null());
    assert_same(&axfr_set(op.addr, ZONE), &good, "from disk at last");
}

/// Sets the soft RLIMIT_FSIZE of process `pid` (`prlimit` syntax: a size
/// or `unlimited`).
fn limit_file_size(pid: u32, limit: &str) {
    let out = Command::new(need("prlimit", "util-linux"))
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={limit}:"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until Outpost serves `serial` with a write of it failed, and
/// checks that status, health and metrics say the copy is not on disk
/// (and that the failure did not end the process).
fn assert_not_on_disk(op: &mut Outpost, control: SocketAddr, serial: u32) -> String {
    wait_serial(op, serial, Duration::from_secs(10));
    op.wait_for("disk error in status", Duration::from_secs(5), || {
        !zone_status(control)["disk_error"].is_null()
    });
    let s = zone_status(control);
    assert_eq!(s["serial"], serial, "{s}");
    assert!(s["disk_failures"].as_u64().unwrap() >= 1, "{s}");
    let h = health(control);
    assert!(
        h.contains("answered 503") && h.contains("copy in service not on disk"),
        "{h}"
    );
    let m = metrics(control);
    assert!(
        metric(
            &m,
            "outpost_zone_persist_failures_total{zone=\"example.com.\"}"
        )
        .unwrap()
            >= 1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "outpost_zone_persisted{zone=\"example.com.\"}"),
        Some(0.0),
        "{m}"
    );
    // SIGXFSZ does not end it.
    assert!(op.child.try_wait().unwrap().is_none());
    s["disk_error"].as_str().unwrap().to_string()
}

/// Limits Outpost's file size to a little more than its journal holds,
/// makes a change at the primary and checks that Outpost serves it with
/// its journal append failed, the state file staying behind. Returns the
/// new serial.
fn fail_next_append(
    op: &mut Outpost,
    paths: &DataPaths,
    published: &mut Published,
    control: SocketAddr,
) -> u32 {
    let before = state(paths).unwrap().serial;
    let journal = file_len(&paths.journal_file);
    assert!(journal > 0);
    // Room for a few octets of the entry: the append is cut, as a full
    // disk would cut it.
    limit_file_size(op.child.id(), &(journal + 10).to_string());
    let serial = published.update();
    let error = assert_not_on_disk(op, control, serial);
    assert!(error.contains(".jnl"), "{error}");
    // The state file is not ahead of the files.
    assert_eq!(state(paths).unwrap().serial, before);
    serial
}

/// A write that fails (the file size limit, as a full disk would) while an
/// IXFR is persisted: the new serial is served from memory, the state file
/// stays with the files, and status, health and metrics say the copy is
/// not on disk. Killed then, the restart serves the version on disk,
/// record for record. Lifting the limit, the retry (5 s after the failure)
/// writes the copy and health is 200 again; a restart then serves it. And
/// when the journal append succeeds but the compaction's zone file write
/// fails, the same is reported, and a restart serves the journaled copy.
#[test]
fn a_failed_write_leaves_consistent_files_and_is_retried() {
    let port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let bind = small_primary(port, 1);
    let primary = bind.addr();
    let mut published = Published::from_primary(primary);
    let dir = tempfile::tempdir().unwrap();
    let paths = DataPaths::new(dir.path(), ZONE);
    let up = config(&primary.to_string(), control, "");
    let down = config(DOWN, control, "");
    let within = Duration::from_secs(10);

    let mut op = Outpost::start_on(dir.path(), &up, port);
    wait_serial(&mut op, 1, within);
    let s2 = published.update();
    wait_serial(&mut op, s2, within);
    op.wait_for("state of the IXFR", within, || {
        state(&paths).is_some_and(|s| s.serial == s2)
    });

    // The journal append fails; killed while the copy is only in memory.
    let s3 = fail_next_append(&mut op, &paths, &mut published, control);
    op.kill9();
    let (mut op, served, _) = restart_from_disk(dir.path(), &down, port);
    assert_eq!(served, s2, "not the version on disk");
    assert_same(
        &axfr_set(op.addr, ZONE),
        &published.version(s2),
        "after the kill",
    );
    op.kill9();

    // Back with the primary: catches up (the SOA refresh is 2 s).
    let mut op = Outpost::start_on(dir.path(), &up, port);
    wait_serial(&mut op, s3, within);
    op.wait_for("state of the catch-up", within, || {
        state(&paths).is_some_and(|s| s.serial == s3)
    });
    // The same failure, and this time the limit is lifted.
    let s4 = fail_next_append(&mut op, &paths, &mut published, control);
    let failed_at = Instant::now();
    limit_file_size(op.child.id(), "unlimited");
    let took = wait_until("health ok again", within, || {
        health(control).starts_with("ok")
    });
    eprintln!("copy on disk again {took:?} after the limit was lifted");
    assert!(
        failed_at.elapsed() <= Duration::from_secs(8),
        "retry later than its 5 s backoff: {:?}",
        failed_at.elapsed()
    );
    let s = zone_status(control);
    assert!(s["disk_error"].is_null(), "{s}");
    assert_eq!(
        metric(
            &metrics(control),
            "outpost_zone_persisted{zone=\"example.com.\"}"
        ),
        Some(1.0)
    );
    assert_eq!(state(&paths).unwrap().serial, s4);
    assert_eq!(trailer_serial(&paths), Some(s4), "written whole");
    op.kill9();
    let (op, served, _) = restart_from_disk(dir.path(), &down, port);
    assert_eq!(served, s4);
    assert_same(
        &axfr_set(op.addr, ZONE),
        &published.version(s4),
        "after the retry",
    );
    drop(op);

    // Room for the journal (a new epoch since the whole write) and the
    // state file, not for the zone file the compaction writes.
    let sync = config(&primary.to_string(), control, "zonefile_sync = \"1s\"\n");
    let mut op = Outpost::start_on(dir.path(), &sync, port);
    op.wait_ready(ZONE, READY);
    let limit = 1024;
    assert!(file_len(&paths.zone_file) > limit && file_len(&paths.journal_file) < limit / 2);
    limit_file_size(op.child.id(), &limit.to_string());
    let s5 = published.update();
    let error = assert_not_on_disk(&mut op, control, s5);
    assert!(error.contains(".zone"), "{error}");
    assert_eq!(state(&paths).unwrap().serial, s5, "journaled");
    assert_eq!(trailer_serial(&paths), Some(s4));
    op.kill9();
    let (op, served, _) = restart_from_disk(dir.path(), &down, port);
    assert_eq!(served, s5);
    assert_same(
        &axfr_set(op.addr, ZONE),
        &published.version(s5),
        "journaled, its compaction failed",
    );
}

/// Applies IXFR differences to a version of the zone, strictly: each
/// deleted record must be there, each added one must not.
fn apply(zone: &mut BTreeSet<WireRr>, diffs: &[IxfrDiff]) {
    for d in diffs {
        assert!(zone.remove(&record_wire(&d.old_soa)), "old SOA {d:?}");
        for r in d.deleted.iter() {
            assert!(
                zone.remove(&wire_rr(&r)),
                "deleted {}",
                rr_text(&wire_rr(&r))
            );
        }
        for r in d.added.iter() {
            assert!(zone.insert(wire_rr(&r)), "added {}", rr_text(&wire_rr(&r)));
        }
        assert!(zone.insert(record_wire(&d.new_soa)), "new SOA {d:?}");
    }
}

fn serial_of(soa: &Record) -> u32 {
    match &soa.data {
        RData::SOA(s) => s.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

/// Asks Outpost over TCP for IXFR from each older serial: each answer must
/// be incremental (not the whole zone), lead from that serial to the
/// current one, and give the current zone applied to the old version.
fn check_history(addr: SocketAddr, published: &Published, serials: &[u32]) {
    let current = *serials.last().unwrap();
    assert_same(
        &axfr_set(addr, ZONE),
        &published.version(current),
        "served zone",
    );
    let soa = query(addr, ZONE, RecordType::SOA, Q::udp()).answers[0].clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for &from in serials {
        let mut ours = soa.clone();
        if let RData::SOA(s) = &mut ours.data {
            s.serial = from;
        }
        let t = rt
            .block_on(outpost::xfr::client::ixfr(
                addr,
                &Name::from_ascii(ZONE).unwrap(),
                &ours,
                None,
                Default::default(),
                Duration::from_secs(10),
                Duration::from_secs(5),
            ))
            .unwrap_or_else(|e| panic!("IXFR from {from}: {e}"));
        let diffs = match t.data {
            TransferData::Incremental(d) => d,
            TransferData::UpToDate(_) if from == current => continue,
            TransferData::UpToDate(_) => panic!("IXFR from {from}: \"up to date\" at {current}"),
            TransferData::Full(_) => panic!("IXFR from {from}: the whole zone, not differences"),
        };
        assert_ne!(from, current);
        assert_eq!(serial_of(&diffs[0].old_soa), from);
        assert_eq!(serial_of(&diffs.last().unwrap().new_soa), current);
        let mut zone = published.version(from);
        apply(&mut zone, &diffs);
        assert_same(
            &zone,
            &published.version(current),
            &format!("IXFR from {from} applied"),
        );
    }
}

/// IXFR out comes from the journal, so a restart does not lose it: after
/// several IXFRs in (and a compaction between them), Outpost answers IXFR
/// from every older serial with the differences, over TCP, after a normal
/// stop and after a `kill -9`, with the primary unreachable.
#[test]
fn ixfr_history_from_the_journal_survives_restarts() {
    let port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let bind = small_primary(port, 1);
    let primary = bind.addr();
    let mut published = Published::from_primary(primary);
    let dir = tempfile::tempdir().unwrap();
    let paths = DataPaths::new(dir.path(), ZONE);
    let extra = "zonefile_sync = \"1s\"\n";
    let up = config(&primary.to_string(), control, extra);
    let down = config(DOWN, control, extra);
    let within = Duration::from_secs(10);

    let mut op = Outpost::start_on(dir.path(), &up, port);
    wait_serial(&mut op, 1, within);
    let mut serials = vec![1];
    for i in 0..5 {
        let s = published.update();
        wait_serial(&mut op, s, within);
        serials.push(s);
        if i == 2 {
            op.wait_for("compaction", within, || trailer_serial(&paths) == Some(s));
        }
    }
    let last = *serials.last().unwrap();
    op.wait_for("state of the last IXFR", within, || {
        state(&paths).is_some_and(|s| s.serial == last)
    });
    assert_ne!(
        trailer_serial(&paths),
        Some(last),
        "the journal is not used"
    );
    check_history(op.addr, &published, &serials);

    assert!(op.terminate().success());
    let (op, served, _) = restart_from_disk(dir.path(), &down, port);
    assert_eq!(served, last);
    check_history(op.addr, &published, &serials);
    drop(op);

    let mut op = Outpost::start_on(dir.path(), &up, port);
    op.wait_ready(ZONE, READY);
    for _ in 0..2 {
        let s = published.update();
        wait_serial(&mut op, s, within);
        serials.push(s);
    }
    let last = *serials.last().unwrap();
    op.wait_for("state of the last IXFR", within, || {
        state(&paths).is_some_and(|s| s.serial == last)
    });
    op.kill9();
    let (op, served, _) = restart_from_disk(dir.path(), &down, port);
    assert_eq!(served, last);
    check_history(op.addr, &published, &serials);
}
