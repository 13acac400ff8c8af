//! Outpost feeding downstream secondaries: Knot by AXFR then IXFR with TSIG
//! and NOTIFY, BIND's and Knot's clients checking our signatures, the
//! allow_transfer ACL, and a 200,000-record zone.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use hickory_proto::rr::{Name, RecordType};

use common::outpost::Outpost;
use common::peers::{Bind, Knot, Options, Secondary, free_port, soa_serial};
use common::{TestZone, comparable};
use outpost::tsig::{self, Algorithm, Key};
use outpost::wire::{self, Message};
use outpost::xfr::client;

const ZONE: &str = "example.com.";

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn zone_text(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster {serial} 3600 600 1209600 300
  IN NS ns1
  IN MX 10 mail
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
{extra}
"
    )
}

fn key() -> Key {
    Key::new(n("xfr-key."), Algorithm::HmacSha256, vec![42; 32])
}

fn b64(k: &Key) -> String {
    base64::engine::general_purpose::STANDARD.encode(&k.secret)
}

fn key_block(k: &Key) -> String {
    format!(
        "[[key]]\nname = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n\n",
        k.name,
        k.algorithm.config_name(),
        b64(k)
    )
}

fn wait_serial(addr: SocketAddr, zone: &str, serial: u32, within: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < within {
        if soa_serial(addr, zone) == Some(serial) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "serial {serial} of {zone} not served at {addr} within {within:?} (serves {:?})",
        soa_serial(addr, zone)
    );
}

/// BIND → Outpost → Knot, every hop signed: Knot gets the zone by AXFR,
/// then, woken by Outpost's NOTIFY, by IXFR from Outpost's history.
#[test]
fn knot_downstream_axfr_then_ixfr_with_tsig_and_notify() {
    let k = key();
    let outpost_port = free_port();
    let knot_port = free_port();
    let mut bind = Bind::start(
        &[(ZONE, &zone_text(1, ""))],
        std::slice::from_ref(&k),
        &Options {
            transfer_key: Some(k.name.to_string()),
            ixfr: true,
            notify: vec![SocketAddr::from(([127, 0, 0, 1], outpost_port))],
            ..Options::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"

{}[[zone]]
name = \"example.com\"
primaries = [\"{}\"]
key = \"xfr-key.\"
allow_transfer = [\"xfr-key.\"]
notify = [\"127.0.0.1:{knot_port}\"]
",
        key_block(&k),
        bind.addr()
    );
    let mut op = Outpost::start_on(dir.path(), &cfg, outpost_port);
    op.wait_ready(ZONE, Duration::from_secs(10));
    wait_serial(op.addr, ZONE, 1, Duration::from_secs(10));

    let knot = Knot::start(
        &[],
        std::slice::from_ref(&k),
        &Options {
            port: Some(knot_port),
            secondaries: vec![Secondary {
                zone: ZONE.into(),
                primary: op.addr,
                key: Some(k.name.to_string()),
            }],
            ..Options::default()
        },
    );
    wait_serial(knot.addr(), ZONE, 1, Duration::from_secs(10));
    let klog = knot.log_text();
    assert!(klog.contains("AXFR, incoming"), "{klog}");

    bind.update_zone(ZONE, &zone_text(2, "new IN A 192.0.2.2"));
    let start = Instant::now();
    while soa_serial(knot.addr(), ZONE) != Some(2) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "Knot does not serve serial 2\nKnot:\n{}\nOutpost:\n{}",
            knot.log_text(),
            op.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "BIND reload to Knot serving serial 2: {:?}",
        start.elapsed()
    );
    let klog = knot.log_text();
    assert!(
        klog.contains("IXFR, incoming"),
        "Knot did not transfer by IXFR:\n{klog}\nOutpost:\n{}",
        op.log_text()
    );
    assert!(
        klog.lines()
            .any(|l| l.contains("notify, incoming") && l.contains("serial 2")),
        "no NOTIFY from Outpost in Knot's log:\n{klog}"
    );
    assert!(
        !klog.contains("error:") && !klog.contains("warning:"),
        "{klog}"
    );
    let olog = op.log_text();
    assert!(olog.contains("NOTIFY answered"), "{olog}");
    assert!(olog.contains("kind=IXFR"), "{olog}");
    let m = common::dns::query(
        knot.addr(),
        "new.example.com.",
        RecordType::A,
        common::dns::Q::udp(),
    );
    assert_eq!(m.answers.len(), 1);

    // EDNS EXPIRE (RFC 7314) carries what is left of our own expiry, on
    // SOA answers and transfers alike.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let soa = rt
        .block_on(client::query_soa(
            op.addr,
            &n(ZONE),
            Some(&k),
            Duration::from_secs(2),
        ))
        .unwrap();
    let expire = soa.expire.expect("EXPIRE on the SOA answer");
    assert!((1_209_000..=1_209_600).contains(&expire), "{expire}");
    let axfr = rt
        .block_on(client::axfr(
            op.addr,
            &n(ZONE),
            Some(&k),
            Default::default(),
            Duration::from_secs(10),
            Duration::from_secs(5),
        ))
        .unwrap();
    let expire = axfr.expire.expect("EXPIRE on the AXFR");
    assert!((1_209_000..=1_209_600).contains(&expire), "{expire}");
    assert_eq!(axfr.signed_messages, axfr.messages);

    // IXFR out: from the history, "up to date", and the whole zone for a
    // serial the history does not hold (RFC 1995 §4).
    let ixfr = |serial: u32| {
        let mut soa = axfr.records.raw().to_records().unwrap()[0].clone();
        if let hickory_proto::rr::RData::SOA(s) = &mut soa.data {
            s.serial = serial;
        }
        rt.block_on(client::ixfr(
            op.addr,
            &n(ZONE),
            &soa,
            Some(&k),
            Default::default(),
            Duration::from_secs(10),
            Duration::from_secs(5),
        ))
        .unwrap()
        .data
    };
    use outpost::xfr::interp::TransferData;
    match ixfr(1) {
        TransferData::Incremental(d) => {
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].added.len(), 1, "{d:?}");
            assert!(d[0].deleted.is_empty(), "{d:?}");
        }
        other => panic!("IXFR from 1: {other:?}"),
    }
    assert!(matches!(ixfr(2), TransferData::UpToDate(_)));
    // Serial 0 is older than 2 but not in the history.
    assert!(matches!(ixfr(0), TransferData::Full(r) if r.len() == 6));
}

fn outpost_with_acl(zone_text: &str, acl: &str) -> (tempfile::TempDir, Outpost) {
    outpost_with_keys(zone_text, acl, &[key()])
}

fn outpost_with_keys(zone_text: &str, acl: &str, keys: &[Key]) -> (tempfile::TempDir, Outpost) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.zone");
    std::fs::write(&seed, zone_text).unwrap();
    let cfg = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"

{}[[zone]]
name = \"{}\"
primaries = [\"127.0.0.1:1\"]
seed_file = \"{}\"
allow_transfer = [{acl}]
",
        keys.iter().map(key_block).collect::<String>(),
        zone_text
            .lines()
            .find_map(|l| l.strip_prefix("$ORIGIN "))
            .unwrap()
            .trim_end_matches('.'),
        seed.display()
    );
    let mut op = Outpost::start_in(dir.path(), &cfg);
    let origin = zone_text
        .lines()
        .find_map(|l| l.strip_prefix("$ORIGIN "))
        .unwrap()
        .to_string();
    op.wait_ready(&origin, Duration::from_secs(60));
    (dir, op)
}

/// One TCP request from `source`; the first answer's RCODE.
fn tcp_rcode(source: &str, target: SocketAddr, query: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{source}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    sock.connect(&target.into()).unwrap();
    let mut s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg).unwrap();
    Message::parse(&msg).unwrap().rcode()
}

fn udp_rcode(target: SocketAddr, query: &[u8]) -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.send_to(query, target).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = s.recv_from(&mut buf).unwrap();
    Message::parse(&buf[..len]).unwrap().rcode()
}

const REFUSED: u16 = 5;

/// allow_transfer by address and by key; everyone else, and AXFR over
/// UDP, refused.
#[test]
fn allow_transfer_acl() {
    let zone = TestZone::new("acl.test", 7, 50);
    let (_dir, op) = outpost_with_acl(&zone.text, "\"127.0.0.1/32\", \"xfr-key.\"");
    let axfr = wire::axfr_query(1, &zone.name());
    assert_eq!(tcp_rcode("127.0.0.2", op.addr, &axfr), REFUSED, "127.0.0.2");
    assert_eq!(udp_rcode(op.addr, &axfr), REFUSED, "AXFR over UDP");
    assert_eq!(tcp_rcode("127.0.0.1", op.addr, &axfr), 0, "127.0.0.1");
    // The key opens the door for an address outside the list.
    let signed = tsig::sign_request(&axfr, &key(), tsig::now_secs()).unwrap();
    assert_eq!(tcp_rcode("127.0.0.2", op.addr, &signed.bytes), 0, "signed");
    // A wrong secret: NOTAUTH, whatever the address.
    let mut wrong = key();
    wrong.secret[0] ^= 1;
    let bad = tsig::sign_request(&axfr, &wrong, tsig::now_secs()).unwrap();
    assert_eq!(tcp_rcode("127.0.0.1", op.addr, &bad.bytes), 9, "bad MAC");
    let log = op.log_text();
    assert!(
        log.contains("transfer refused: not in allow_transfer"),
        "{log}"
    );
    assert!(log.contains("transfer refused: AXFR over UDP"), "{log}");

    let (_dir2, nobody) = outpost_with_acl(&zone.text, "");
    assert_eq!(
        tcp_rcode("127.0.0.1", nobody.addr, &axfr),
        REFUSED,
        "default: nobody"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("running {cmd:?} (package bind9-dnsutils / knot-dnsutils): {e}")
    });
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// `dig -y` and `kdig -y` verify every signed message of a multi-message
/// AXFR, for each algorithm; our own verifier and interpreter agree and
/// get the whole zone.
#[tokio::test]
async fn signed_axfr_verified_by_dig_and_kdig() {
    let zone = TestZone::new("sig.test", 3, 3000);
    let keys: Vec<Key> = [
        Algorithm::HmacMd5,
        Algorithm::HmacSha1,
        Algorithm::HmacSha256,
        Algorithm::HmacSha512,
    ]
    .into_iter()
    .map(|alg| {
        let name = format!("k-{}.", alg.config_name());
        Key::new(n(&name), alg, format!("secret of {name}").into_bytes())
    })
    .collect();
    let (_dir, op) = outpost_with_keys(&zone.text, "\"127.0.0.1\"", &keys);
    let port = op.addr.port().to_string();
    for (k, tool) in keys.iter().flat_map(|k| [(k, "dig"), (k, "kdig")]) {
        let y = format!("{}:{}:{}", k.algorithm.config_name(), k.name, b64(k));
        let text = run(Command::new(tool).args([
            "-p",
            &port,
            "-y",
            &y,
            "@127.0.0.1",
            "sig.test.",
            "AXFR",
        ]));
        let lower = text.to_lowercase();
        assert!(
            !lower.contains("fail")
                && !lower.contains("couldn't")
                && !lower.contains("badsig")
                && !lower.contains("warning"),
            "{tool}:\n{text}"
        );
        let records = text
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .filter(|l| !l.contains("\tTSIG\t") && !l.contains(" TSIG "))
            .count();
        assert_eq!(records, zone.len() + 1, "{tool} {}:\n{text}", k.algorithm);
    }
    // dig reports the messages it verified.
    let k = &keys[2];
    let y = format!("hmac-sha256:{}:{}", k.name, b64(k));
    let text =
        run(Command::new("dig").args(["-p", &port, "-y", &y, "@127.0.0.1", "sig.test.", "AXFR"]));
    let messages: usize = text
        .lines()
        .find_map(|l| l.strip_prefix(";; XFR size: "))
        .and_then(|l| l.split("(messages ").nth(1))
        .and_then(|l| l.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no XFR size line:\n{text}"));
    // 3,000 records in messages of about 16 KiB.
    assert!(messages >= 5, "{messages} messages");

    let r = client::axfr(
        op.addr,
        &zone.name(),
        Some(k),
        Default::default(),
        Duration::from_secs(30),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(r.signed_messages, r.messages);
    assert_eq!(
        comparable(&r.records.raw().to_records().unwrap()),
        zone.expected
    );
}

/// A 200,000-record zone served from Outpost to Knot arrives complete.
#[test]
fn big_zone_to_knot() {
    let zone = TestZone::new("big.test", 77, 200_000);
    let (_dir, op) = outpost_with_acl(&zone.text, "\"127.0.0.1\"");
    let start = Instant::now();
    let knot = Knot::start(
        &[],
        &[],
        &Options {
            secondaries: vec![Secondary {
                zone: "big.test.".into(),
                primary: op.addr,
                key: None,
            }],
            ..Options::default()
        },
    );
    wait_serial(knot.addr(), "big.test.", 77, Duration::from_secs(60));
    let took = start.elapsed();
    let klog = knot.log_text();
    let line = klog
        .lines()
        .find(|l| l.contains("AXFR, incoming") && l.contains("finished"))
        .unwrap_or_else(|| panic!("no finished AXFR in Knot's log:\n{klog}"));
    eprintln!("Knot start to serving 200k zone: {took:?}\nKnot: {line}");
    let olog = op.log_text();
    eprintln!(
        "Outpost: {}",
        olog.lines().find(|l| l.contains("AXFR out")).unwrap_or("")
    );
    // Knot's own copy, counted by Knot's own client.
    let text = run(Command::new("kdig").args([
        "-p",
        &knot.port.to_string(),
        "@127.0.0.1",
        "big.test.",
        "AXFR",
        "+noall",
        "+answer",
    ]));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // The SOA opens and closes the transfer.
    assert_eq!(lines.len(), zone.len() + 1, "records at Knot");
    assert!(
        lines[0].contains("SOA") && lines[0].contains(" 77 "),
        "{}",
        lines[0]
    );
    for probe in ["h199999.big.test.", "h123456.big.test.", "h0.big.test."] {
        assert!(
            lines.iter().any(|l| l.starts_with(probe)),
            "{probe} missing at Knot"
        );
    }
}

/// A zone served from its seed with `server_extra` in `[server]`, transfers
/// allowed to 127.0.0.1, and the control endpoint for its metrics.
fn outpost_for_transfers(
    zone: &TestZone,
    server_extra: &str,
) -> (tempfile::TempDir, Outpost, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.zone");
    std::fs::write(&seed, &zone.text).unwrap();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cfg = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"
{server_extra}

[[zone]]
name = \"{}\"
primaries = []
seed_file = \"{}\"
allow_transfer = [\"127.0.0.1\"]
",
        zone.origin,
        seed.display()
    );
    let mut op = Outpost::start_in(dir.path(), &cfg);
    op.wait_ready(&zone.origin, Duration::from_secs(60));
    (dir, op, control)
}

fn metric(control: SocketAddr, name: &str) -> f64 {
    let text = outpost::control::request(control, "GET", "/metrics", None).unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An AXFR request sent on a new connection that then reads nothing. Its
/// receive buffer is small, so that the kernel soon stops taking data for
/// it and it stalls well before the end of the zone.
fn stalled_axfr(addr: SocketAddr, zone: &TestZone, id: u16) -> std::net::TcpStream {
    use std::io::Write;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut s: std::net::TcpStream = sock.into();
    let q = wire::axfr_query(id, &zone.name());
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    s
}

/// One plain query on a new TCP connection; how long the answer took.
fn timed_query(addr: SocketAddr, name: &str) -> Duration {
    let start = Instant::now();
    let m = common::dns::query(addr, name, RecordType::A, common::dns::Q::tcp());
    assert_eq!(m.answers.len(), 1, "{name}");
    start.elapsed()
}

/// 100 clients ask for a 200,000-record zone and read nothing: each holds
/// up about one message, so the server's memory grows by far less than
/// the zone a hundred times over, it spends no CPU waiting, and plain
/// TCP queries are answered at once meanwhile.
#[test]
fn stalled_transfer_readers_hold_little_memory() {
    let zone = TestZone::new("stall.test", 5, 200_000);
    let (_dir, op, control) = outpost_for_transfers(
        &zone,
        "max_transfers_out = 200\ntcp_max_connections_per_client = 500\ntcp_write_timeout = \"10m\"",
    );
    let pid = op.child.id();
    let before = common::procstat::rss_kib(pid);
    let readers: Vec<_> = (0..100).map(|i| stalled_axfr(op.addr, &zone, i)).collect();
    wait_for("100 transfers running", Duration::from_secs(60), || {
        metric(control, "outpost_transfers_out_running") == 100.0
    });
    // Until the kernel's buffers are full and nothing moves: the server
    // must then spend nothing on the stalled transfers.
    let settled = Instant::now();
    loop {
        let c = common::procstat::cpu_seconds(pid);
        std::thread::sleep(Duration::from_secs(1));
        if common::procstat::cpu_seconds(pid) - c < 0.05 {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(60),
            "the server keeps working on 100 stalled transfers"
        );
    }
    let cpu0 = common::procstat::cpu_seconds(pid);
    let mut took: Vec<Duration> = (0..20)
        .map(|i| timed_query(op.addr, &format!("h{}.stall.test.", 6 * i)))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let cpu = common::procstat::cpu_seconds(pid) - cpu0;
    let after = common::procstat::rss_kib(pid);
    let grew = after.saturating_sub(before) / 1024;
    took.sort();
    eprintln!(
        "100 stalled readers: RSS {} -> {} MiB (+{grew} MiB); TCP queries meanwhile: median {:?}, \
         slowest {:?}; server CPU {cpu:.2} s",
        before / 1024,
        after / 1024,
        took[10],
        took[19]
    );
    assert!(grew < 50, "RSS grew by {grew} MiB");
    assert!(took[10] < Duration::from_millis(100), "{took:?}");
    assert!(took[19] < Duration::from_secs(1), "{took:?}");
    assert!(cpu < 0.5, "{cpu:.2} s of CPU with stalled readers");
    assert_eq!(metric(control, "outpost_transfers_out_running"), 100.0);
    drop(readers);
    wait_for("transfers ended", Duration::from_secs(30), || {
        metric(control, "outpost_transfers_out_running") == 0.0
    });
}

/// Reads a whole AXFR at about `rate` octets a second; returns the
/// records, the octets and how long it took.
fn read_slowly(addr: SocketAddr, zone: &TestZone, rate: usize) -> (usize, usize, Duration) {
    use std::io::{Read, Write};
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A small window, so the server's writes follow our reads.
    sock.set_recv_buffer_size(32 * 1024).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut s: std::net::TcpStream = sock.into();
    let q = wire::axfr_query(7, &zone.name());
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let start = Instant::now();
    let (mut buf, mut got) = (Vec::new(), 0usize);
    let (mut records, mut soas) = (0, 0);
    let chunk = rate / 10;
    let mut tmp = vec![0u8; chunk];
    while soas < 2 {
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "connection closed after {got} octets");
        got += n;
        buf.extend_from_slice(&tmp[..n]);
        while buf.len() >= 2 {
            let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
            if buf.len() < 2 + len {
                break;
            }
            let m = Message::parse(&buf[2..2 + len]).unwrap();
            assert_eq!(m.rcode(), 0);
            records += m.answers.len();
            soas += m
                .answers
                .iter()
                .filter(|r| r.rtype == RecordType::SOA)
                .count();
            buf.drain(..2 + len);
        }
        // No faster than `rate`.
        let due = Duration::from_secs_f64(got as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    (records, got, start.elapsed())
}

/// The write timeout cuts a client that reads nothing, with a log line
/// that says so, and never one that reads slowly: a reader at 100 KB/s
/// gets a 5 MB zone whole, though the timeout is 3 s.
#[test]
fn slow_reader_completes_and_stalled_reader_is_cut() {
    let zone = TestZone::new("slow.test", 9, 150_000);
    let (_dir, op, control) = outpost_for_transfers(&zone, "tcp_write_timeout = \"3s\"");
    let stalled = stalled_axfr(op.addr, &zone, 1);
    let addr = op.addr;
    let slow = std::thread::spawn({
        let zone = TestZone {
            origin: zone.origin.clone(),
            serial: zone.serial,
            text: String::new(),
            expected: Vec::new(),
        };
        move || read_slowly(addr, &zone, 100_000)
    });
    wait_for("the stalled reader cut", Duration::from_secs(30), || {
        op.log_text()
            .lines()
            .any(|l| l.contains("transfer out") && l.contains("stopped reading"))
    });
    let line = op
        .log_text()
        .lines()
        .find(|l| l.contains("transfer out") && l.contains("stopped reading"))
        .unwrap()
        .to_string();
    eprintln!("stalled: {line}");
    for field in [
        "zone=slow.test.",
        "peer=127.0.0.1:",
        "serial=9",
        "messages=",
        "bytes=",
        "seconds=",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    drop(stalled);
    let (records, octets, took) = slow
        .join()
        .unwrap_or_else(|_| panic!("the slow reader failed; server log:\n{}", op.log_text()));
    eprintln!("slow reader: {records} records, {octets} octets in {took:?}");
    assert_eq!(records, zone.len() + 1);
    assert!(octets > 4_500_000, "{octets} octets");
    let log = op.log_text();
    let done = log
        .lines()
        .find(|l| l.contains("transfer out") && l.contains("ended=completed"))
        .unwrap_or_else(|| panic!("no completed transfer logged:\n{log}"));
    eprintln!("slow: {done}");
    assert_eq!(
        metric(control, "outpost_transfers_out_total{result=\"completed\"}"),
        1.0
    );
    assert_eq!(
        metric(control, "outpost_transfers_out_total{result=\"cut\"}"),
        1.0
    );
    assert_eq!(
        metric(
            control,
            "outpost_tcp_connections_total{event=\"write_timeout\"}"
        ),
        1.0
    );
}

/// Past `max_transfers_out` a request is refused (and logged); once the
/// running ones are over, transfers are served again.
#[test]
fn transfers_beyond_the_cap_are_refused() {
    let zone = TestZone::new("cap.test", 4, 200_000);
    let (_dir, op, control) =
        outpost_for_transfers(&zone, "max_transfers_out = 2\ntcp_write_timeout = \"2s\"");
    let a = stalled_axfr(op.addr, &zone, 1);
    let b = stalled_axfr(op.addr, &zone, 2);
    wait_for("two transfers running", Duration::from_secs(10), || {
        metric(control, "outpost_transfers_out_running") == 2.0
    });
    assert_eq!(
        tcp_rcode("127.0.0.1", op.addr, &wire::axfr_query(3, &zone.name())),
        REFUSED
    );
    let log = op.log_text();
    assert!(log.contains("max_transfers_out"), "{log}");
    assert_eq!(
        metric(control, "outpost_transfers_out_total{result=\"refused\"}"),
        1.0
    );
    // The stalled ones are cut after 2 s; then a transfer goes through.
    wait_for("the stalled transfers cut", Duration::from_secs(30), || {
        metric(control, "outpost_transfers_out_running") == 0.0
    });
    drop((a, b));
    let text = run(Command::new("kdig").args([
        "-p",
        &op.addr.port().to_string(),
        "@127.0.0.1",
        "cap.test.",
        "AXFR",
        "+noall",
        "+answer",
    ]));
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(lines, zone.len() + 1);
}
