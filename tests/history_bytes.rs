//! IXFR history bounded in bytes (issue 13): a 200,000-record zone whose
//! every record changes, 34 times over, keeps Outpost's memory within 2.5
//! times what one copy costs, and its journal within `ixfr_history_bytes`,
//! the oldest differences dropped first.
//!
//! The primary is the in-process fake primary, which answers AXFR only:
//! Outpost asks for IXFR, is refused, falls back to AXFR and diffs the new
//! copy against the old one for its own downstream history (the path that
//! holds the most at once: the copy in service, the new one, and the
//! difference between them, which names every record twice).
//!
//! What held memory before (eight times the single copy after 34
//! changes): glibc's per-thread arenas and its rising mmap threshold kept
//! what each transfer freed (now set in `main`), a map of every record of
//! the old copy to diff it (now name by name), and the journal's entry
//! copied whole to append it, read whole to trim it and read then copied
//! to serve it (now written, copied and read through buffers).
//!
//! What the journal's size guarantees: after each append the file holds
//! the history bound plus that entry until it is trimmed, and the trim
//! writes the kept entries to a temporary file beside it before renaming:
//! the directory briefly holds twice the bound plus one entry.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, Record, RecordType};

use common::fakeprimary::FakePrimary;
use common::outpost::Outpost;
use common::peers::soa_serial;
use outpost::rr;
use outpost::wire::{self, Message};
use outpost::xfr::interp::TransferData;
use outpost::zone::Limits;

const ZONE: &str = "example.com.";
/// Records besides SOA, NS and the NS's address.
const RECORDS: usize = 200_000;
/// New serials after the first, each changing every record.
const CHANGES: u32 = 34;
/// The journal's bound: a full change of this zone takes 14.7 MiB in the
/// journal (every record deleted and added), so this holds the newest two
/// and drops the rest.
const HISTORY_BYTES: u64 = 32 << 20;
/// The journal file's header.
const JOURNAL_HEADER: u64 = 32;

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn soa_record(serial: u32) -> Record {
    let mut w = Vec::new();
    wire::put_name(&mut w, &n("ns1.example.com."));
    wire::put_name(&mut w, &n("hostmaster.example.com."));
    // Refresh of an hour: only NOTIFY makes Outpost look sooner.
    for x in [serial, 3600, 600, 1_209_600, 300] {
        w.extend_from_slice(&x.to_be_bytes());
    }
    rr::record(n(ZONE), RecordType::SOA, 3600, &w).unwrap()
}

/// The zone at `serial`: every A and TXT record carries the serial, so
/// each version differs from the last in every record but SOA's peers.
fn zone(serial: u32) -> Vec<Record> {
    let origin = n(ZONE);
    let mut out = Vec::with_capacity(RECORDS + 3);
    out.push(soa_record(serial));
    let mut ns = Vec::new();
    wire::put_name(&mut ns, &n("ns1.example.com."));
    out.push(rr::record(origin.clone(), RecordType::NS, 3600, &ns).unwrap());
    out.push(rr::record(n("ns1.example.com."), RecordType::A, 3600, &[192, 0, 2, 53]).unwrap());
    for i in 0..RECORDS {
        let owner = Name::from_ascii(format!("r{i}"))
            .unwrap()
            .append_domain(&origin)
            .unwrap();
        let record = if i % 2 == 0 {
            let b = (i as u32).to_be_bytes();
            rr::record(
                owner,
                RecordType::A,
                300,
                &[10 + (serial % 200) as u8, b[1], b[2], b[3]],
            )
        } else {
            let s = format!("v{serial} {i}");
            let mut t = vec![s.len() as u8];
            t.extend_from_slice(s.as_bytes());
            rr::record(owner, RecordType::TXT, 300, &t)
        };
        out.push(record.unwrap());
    }
    out
}

/// (VmRSS, VmHWM) of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Octets of every file in `dir` (the journal directory: the journal and
/// any temporary file of a rewrite).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn send_notify(target: SocketAddr, serial: u32) {
    let id: u16 = rand::random();
    let msg = outpost::notify::notify_message(id, &n(ZONE), &soa_record(serial)).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&msg, target).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = sock.recv_from(&mut buf).expect("an answer to the NOTIFY");
    let reply = Message::parse(&buf[..len]).unwrap();
    assert_eq!((reply.header.id, reply.rcode()), (id, 0), "NOTIFY answer");
}

fn wait_serial(op: &mut Outpost, serial: u32, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if soa_serial(op.addr, ZONE) == Some(serial) {
            return start.elapsed();
        }
        if let Ok(Some(status)) = op.child.try_wait() {
            panic!("outpost exited with {status}: {}", op.log_text());
        }
        assert!(
            start.elapsed() < within,
            "serial {serial} not served within {within:?} (serves {:?}): {}",
            soa_serial(op.addr, ZONE),
            op.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The serial the state file on disk describes: written after the
/// journal, so the copy of that serial is on disk.
fn disk_serial(state_file: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(state_file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("serial")?.as_u64().map(|s| s as u32)
}

/// What an IXFR from `serial` gets from `addr`: the number of difference
/// sequences, or `None` for the whole zone.
fn ixfr_out(addr: SocketAddr, serial: u32) -> Option<usize> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = rt
        .block_on(outpost::xfr::client::ixfr(
            addr,
            &n(ZONE),
            &soa_record(serial),
            None,
            Limits::default(),
            Duration::from_secs(60),
            Duration::from_secs(30),
        ))
        .unwrap_or_else(|e| panic!("IXFR from {serial}: {e}"));
    match t.data {
        TransferData::Incremental(diffs) => {
            let total: usize = diffs.iter().map(|d| d.len()).sum();
            assert_eq!(
                total,
                2 * RECORDS * diffs.len(),
                "IXFR from {serial}: every record twice a step"
            );
            Some(diffs.len())
        }
        TransferData::Full(records) => {
            assert_eq!(
                records.len(),
                RECORDS + 3,
                "IXFR from {serial}: the whole zone"
            );
            None
        }
        TransferData::UpToDate(_) => panic!("IXFR from {serial}: up to date"),
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[test]
fn full_changes_of_a_big_zone_keep_memory_and_journal_bounded() {
    let started = Instant::now();
    let primary = FakePrimary::start(&n(ZONE), zone(1));
    primary.set_records_per_message(1000);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"

[[zone]]
name = \"example.com\"
primaries = [\"{}\"]
allow_transfer = [\"127.0.0.1\"]
ixfr_history = 64
ixfr_history_bytes = {HISTORY_BYTES}
",
        primary.addr
    );
    let mut op = Outpost::start_in(dir.path(), &config);
    let pid = op.child.id();
    let paths = outpost::persist::ZonePaths::new(&dir.path().join("data"), &n(ZONE));
    let journal_dir = paths.journal_file.parent().unwrap().to_path_buf();

    op.wait_ready(ZONE, Duration::from_secs(30));
    let first = wait_serial(&mut op, 1, Duration::from_secs(60));
    common::wait_until("serial 1 on disk", Duration::from_secs(30), || {
        disk_serial(&paths.state_file) == Some(1)
    });
    // Settled: the transfer's buffers are gone, the copy is in service.
    std::thread::sleep(Duration::from_millis(500));
    let (single, hwm_first) = memory_kib(pid);
    eprintln!(
        "serial 1 ({} records) served after {first:.1?}: RSS {:.1} MiB (peak so far {:.1} MiB)",
        RECORDS + 3,
        mib(single),
        mib(hwm_first)
    );

    // Largest seen of the journal file, and of its directory (which holds
    // a rewrite's temporary file beside it while trimming).
    let (mut file_max, mut dir_max) = (0, 0);
    let journal_file = paths.journal_file.clone();
    let mut sample = || {
        let file = std::fs::metadata(&journal_file).map_or(0, |m| m.len());
        file_max = file_max.max(file);
        dir_max = dir_max.max(dir_bytes(&journal_dir));
        file
    };
    let mut rss_max = single;
    let changes_started = Instant::now();
    let changes: u32 = std::env::var("HB_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CHANGES);
    for serial in 2..=changes + 1 {
        let t = Instant::now();
        primary.set_zone(zone(serial));
        send_notify(op.addr, serial);
        wait_serial(&mut op, serial, Duration::from_secs(60));
        // The state file is written after the journal append; the zone
        // file and the trimming of the journal follow.
        common::wait_until("the copy on disk", Duration::from_secs(30), || {
            sample();
            disk_serial(&paths.state_file) == Some(serial)
        });
        common::wait_until("the journal trimmed", Duration::from_secs(30), || {
            sample() <= HISTORY_BYTES + JOURNAL_HEADER
        });
        let (rss, hwm) = memory_kib(pid);
        rss_max = rss_max.max(rss);
        sample();
        eprintln!(
            "serial {serial}: {:.1?}, RSS {:.1} MiB, peak {:.1} MiB, journal {:.1} MiB",
            t.elapsed(),
            mib(rss),
            mib(hwm),
            dir_bytes(&journal_dir) as f64 / (1 << 20) as f64
        );
    }
    let changes_took = changes_started.elapsed();
    let (rss_end, peak) = memory_kib(pid);
    let journal_end = dir_bytes(&journal_dir);
    let last = CHANGES + 1;

    // History: the newest differences are kept, the oldest dropped.
    // Walked back from the newest until a full answer; the first serial
    // must get one too.
    let mut kept = Vec::new();
    for s in (1..last).rev() {
        match ixfr_out(op.addr, s) {
            Some(steps) => {
                assert_eq!(
                    steps,
                    (last - s) as usize,
                    "IXFR from {s}: one step a serial"
                );
                kept.insert(0, s);
            }
            None => break,
        }
    }
    assert_eq!(
        ixfr_out(op.addr, 1),
        None,
        "IXFR from the first serial, long dropped"
    );
    let (_, peak_after_ixfr) = memory_kib(pid);
    let entry = (journal_end - JOURNAL_HEADER) / kept.len().max(1) as u64;
    eprintln!(
        "single copy {:.1} MiB; after {CHANGES} full changes ({changes_took:.1?}): RSS {:.1} MiB \
         (highest sampled {:.1} MiB), peak (VmHWM) {:.1} MiB = {:.2}x the single copy; \
         after IXFR-out peak {:.1} MiB = {:.2}x; journal {:.1} MiB at the end ({} entries of \
         {:.1} MiB), file {:.1} MiB at most, directory {:.1} MiB at most (with a trim's \
         temporary file), bound {:.1} MiB; IXFR incremental from serials {kept:?}, whole from \
         older; {:.1?} in all",
        mib(single),
        mib(rss_end),
        mib(rss_max),
        mib(peak),
        peak as f64 / single as f64,
        mib(peak_after_ixfr),
        peak_after_ixfr as f64 / single as f64,
        journal_end as f64 / (1 << 20) as f64,
        kept.len(),
        entry as f64 / (1 << 20) as f64,
        file_max as f64 / (1 << 20) as f64,
        dir_max as f64 / (1 << 20) as f64,
        HISTORY_BYTES as f64 / (1 << 20) as f64,
        started.elapsed()
    );
    // The newest differences that fit the bound are kept (walked back
    // above, so they are the newest), the older ones dropped.
    assert_eq!(
        kept.len() as u64,
        HISTORY_BYTES / entry,
        "IXFR incremental from {kept:?}: not as many as fit in {HISTORY_BYTES} octets"
    );
    // Trimmed after each append: the file is one entry over the bound at
    // most, and within it once trimmed. The trim rewrites the file (the
    // kept entries, within the bound) beside the old one before renaming
    // it over: the directory holds both for that while.
    assert!(
        file_max <= HISTORY_BYTES + JOURNAL_HEADER + entry,
        "journal reached {file_max} octets, bound {HISTORY_BYTES} + one entry ({entry})"
    );
    assert!(
        dir_max <= 2 * (HISTORY_BYTES + JOURNAL_HEADER) + entry,
        "journal directory reached {dir_max} octets, bound {HISTORY_BYTES}: \
         more than the file and a trim's copy of the kept entries"
    );
    assert!(
        journal_end <= HISTORY_BYTES + JOURNAL_HEADER,
        "journal {journal_end} octets after trimming"
    );
    assert!(
        peak as f64 <= 2.5 * single as f64,
        "peak RSS {:.1} MiB over the transfers is {:.2}x the single copy's {:.1} MiB",
        mib(peak),
        peak as f64 / single as f64,
        mib(single)
    );
    // Answering IXFR reads the differences it sends, at most the history
    // kept, and nothing more.
    assert!(
        peak_after_ixfr as f64 <= 2.5 * single as f64 + (HISTORY_BYTES / 1024) as f64,
        "peak RSS {:.1} MiB after IXFR-out",
        mib(peak_after_ixfr)
    );
}
