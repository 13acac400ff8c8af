//! DNS over TCP on the real binary (RFC 7766): pipelined queries answered
//! out of order on one reused connection, the EDNS TCP keepalive option
//! (RFC 7828), idle timeouts (shorter under load), the caps on connections
//! (the oldest idle one closed to make room), and the accept loop at the
//! open-file limit: it must back off, not spin, and recover.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use outpost::wire::{self, Message};

use common::TestZone;
use common::outpost::Outpost;
use common::peers::free_port;
use common::procstat::{cpu_seconds, raise_nofile};

const KEEPALIVE: u16 = 11;

/// A query built byte by byte: QTYPE `qtype`, class IN, an OPT with
/// `options` when given.
fn query(id: u16, name: &str, qtype: u16, options: Option<&[(u16, &[u8])]>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(options.is_some())]);
    for label in name.trim_end_matches('.').split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    if let Some(options) = options {
        let rdata: Vec<u8> = options
            .iter()
            .flat_map(|(code, data)| {
                let mut o = code.to_be_bytes().to_vec();
                o.extend_from_slice(&(data.len() as u16).to_be_bytes());
                o.extend_from_slice(data);
                o
            })
            .collect();
        m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

fn connect(addr: SocketAddr) -> TcpStream {
    connect_from("127.0.0.1", addr)
}

/// A connection from the loopback address `source`.
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{source}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    sock.connect_timeout(&addr.into(), Duration::from_secs(3))
        .unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn recv(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg)?;
    Ok(msg)
}

/// Sends one query on `s` and reads its answer.
fn ask(s: &mut TcpStream, msg: &[u8]) -> Message {
    s.write_all(&framed(msg)).unwrap();
    let answer = recv(s).unwrap();
    Message::parse(&answer).unwrap()
}

/// How long until the server closes `s`, waiting at most `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 512];
    while start.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

fn keepalive_of(m: &Message) -> Option<Vec<u8>> {
    m.opt.as_ref()?.option(KEEPALIVE).map(<[u8]>::to_vec)
}

const SMALL_ZONE: &str = "$ORIGIN tcp.test.
$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 600 86400 300
  IN NS ns1
ns1 IN A 192.0.2.53
www IN A 192.0.2.80
";

/// Outpost serving `zone_text` from its seed, `server_extra` added to
/// `[server]` and `zone_extra` to the zone.
fn start(zone_text: &str, server_extra: &str, zone_extra: &str) -> (tempfile::TempDir, Outpost) {
    start_adjusted(zone_text, server_extra, zone_extra, |_| {})
}

fn start_adjusted(
    zone_text: &str,
    server_extra: &str,
    zone_extra: &str,
    adjust: impl FnOnce(&mut std::process::Command),
) -> (tempfile::TempDir, Outpost) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.zone");
    std::fs::write(&seed, zone_text).unwrap();
    let origin = zone_text
        .lines()
        .find_map(|l| l.strip_prefix("$ORIGIN "))
        .unwrap()
        .to_string();
    let config = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
udp_workers = 1
{server_extra}

[[zone]]
name = \"{origin}\"
primaries = []
seed_file = \"{}\"
{zone_extra}
",
        seed.display()
    );
    let mut op = Outpost::start_with(dir.path(), &config, free_port(), adjust);
    op.wait_ready(&origin, Duration::from_secs(60));
    (dir, op)
}

/// Queries pipelined on one connection behind an AXFR are answered while
/// the transfer is still going (so out of order); queries for the handler
/// (here: asking for EDNS EXPIRE) are answered too; the connection then
/// serves more queries.
#[test]
fn pipelined_queries_are_answered_out_of_order_on_a_reused_connection() {
    let zone = TestZone::new("pipe.test", 3, 30_000);
    let (_dir, op) = start(&zone.text, "", "allow_transfer = [\"127.0.0.1\"]");
    let mut s = connect(op.addr);
    let mut batch = framed(&wire::axfr_query(1, &zone.name()));
    let fast: Vec<u16> = (100..150).collect();
    let slow: Vec<u16> = (200..205).collect();
    for (k, id) in fast.iter().enumerate() {
        batch.extend(framed(&query(
            *id,
            &format!("h{}.pipe.test", 6 * k),
            1,
            None,
        )));
    }
    for id in &slow {
        let expire: &[(u16, &[u8])] = &[(wire::EDNS_EXPIRE, &[])];
        batch.extend(framed(&query(*id, "h6.pipe.test", 1, Some(expire))));
    }
    s.write_all(&batch).unwrap();

    let mut order = Vec::new();
    let mut axfr_soas = 0;
    let mut axfr_records = 0;
    let mut last_axfr = 0;
    let mut answered = std::collections::BTreeMap::new();
    while axfr_soas < 2 || answered.len() < fast.len() + slow.len() {
        let m = Message::parse(&recv(&mut s).unwrap()).unwrap();
        let id = m.header.id;
        order.push(id);
        if id == 1 {
            assert_eq!(m.rcode(), 0);
            axfr_records += m.answers.len();
            axfr_soas += m
                .answers
                .iter()
                .filter(|r| r.rtype == hickory_proto::rr::RecordType::SOA)
                .count();
            last_axfr = order.len();
        } else {
            assert_eq!(m.rcode(), 0, "query {id}");
            assert_eq!(m.answers.len(), 1, "query {id}");
            assert!(answered.insert(id, order.len()).is_none(), "{id} twice");
        }
    }
    assert_eq!(axfr_records, zone.len() + 1);
    let first_fast = fast.iter().map(|id| answered[id]).min().unwrap();
    assert!(
        first_fast < last_axfr,
        "the queries behind the AXFR waited for it: {order:?}"
    );
    eprintln!(
        "{} messages; first plain answer at {first_fast}, last AXFR message at {last_axfr}",
        order.len()
    );
    // The same connection goes on serving.
    let m = ask(&mut s, &query(300, "h0.pipe.test", 1, None));
    assert_eq!((m.header.id, m.answers.len()), (300, 1));
}

/// The keepalive option carries the idle timeout (in units of 100 ms), the
/// shorter one once more than half the cap is in use; idle connections are
/// closed after it; UDP answers never carry the option.
#[test]
fn keepalive_option_and_idle_timeouts() {
    let (_dir, op) = start(
        SMALL_ZONE,
        "tcp_idle_timeout = \"4s\"\ntcp_busy_idle_timeout = \"1s\"\ntcp_max_connections = 10",
        "",
    );
    let ka: &[(u16, &[u8])] = &[(KEEPALIVE, &[])];
    let mut c = connect(op.addr);
    let m = ask(&mut c, &query(1, "www.tcp.test", 1, Some(ka)));
    assert_eq!(m.answers.len(), 1);
    assert_eq!(keepalive_of(&m), Some(40u16.to_be_bytes().to_vec()));
    // Again, now from the answer cache.
    let m = ask(&mut c, &query(2, "www.tcp.test", 1, Some(ka)));
    assert_eq!(keepalive_of(&m), Some(40u16.to_be_bytes().to_vec()));
    // An answer from the handler (EXPIRE asked) gets it too.
    let both: &[(u16, &[u8])] = &[(KEEPALIVE, &[]), (wire::EDNS_EXPIRE, &[])];
    let m = ask(&mut c, &query(3, "tcp.test", 6, Some(both)));
    assert_eq!(keepalive_of(&m), Some(40u16.to_be_bytes().to_vec()));
    // Not asked, not given.
    let m = ask(&mut c, &query(4, "www.tcp.test", 1, Some(&[])));
    assert_eq!(keepalive_of(&m), None);
    let udp =
        common::dns::exchange_raw(op.addr, &query(5, "www.tcp.test", 1, Some(ka)), false).unwrap();
    assert_eq!(keepalive_of(&Message::parse(&udp).unwrap()), None);

    // Idle: closed after about 4 s.
    let took = closed_within(&mut c, Duration::from_secs(15)).expect("idle connection kept");
    eprintln!("idle connection closed after {took:?}");
    assert!(
        took >= Duration::from_millis(3500),
        "closed too soon: {took:?}"
    );

    // Six of ten open: busy, so 1 s.
    let mut held: Vec<TcpStream> = (0..6).map(|_| connect(op.addr)).collect();
    for (i, s) in held.iter_mut().enumerate() {
        let m = ask(s, &query(10 + i as u16, "www.tcp.test", 1, Some(ka)));
        if i == 5 {
            assert_eq!(keepalive_of(&m), Some(10u16.to_be_bytes().to_vec()));
        }
    }
    // The first to go goes while six are open: after the short timeout.
    let start = Instant::now();
    let took = loop {
        if held
            .iter_mut()
            .any(|s| closed_within(s, Duration::from_millis(20)).is_some())
        {
            break start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "kept when busy");
    };
    eprintln!("idle connection closed after {took:?} under load");
    assert!(
        took < Duration::from_millis(3000),
        "not the shorter timeout: {took:?}"
    );
}

/// With the cap reached by idle connections, each new client is answered
/// within a second, the oldest idle connection closed for it; the server
/// spends next to no CPU on it all.
#[test]
fn at_the_cap_the_oldest_idle_connection_makes_room() {
    let (_dir, op) = start(
        SMALL_ZONE,
        "tcp_max_connections = 40\ntcp_max_connections_per_client = 1000\n\
         tcp_idle_timeout = \"60s\"\ntcp_busy_idle_timeout = \"60s\"",
        "",
    );
    let pid = op.child.id();
    let mut held = Vec::new();
    for i in 0..40u16 {
        let mut s = connect(op.addr);
        let m = ask(&mut s, &query(i, "www.tcp.test", 1, None));
        assert_eq!(m.answers.len(), 1);
        held.push(s);
        // Each a little older than the next.
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu0 = cpu_seconds(pid);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for k in 0..10 {
        let t = Instant::now();
        let mut s = connect(op.addr);
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let m = ask(&mut s, &query(1000 + k as u16, "www.tcp.test", 1, None));
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert_eq!(m.answers.len(), 1);
        assert!(took < Duration::from_secs(1), "client {k} waited {took:?}");
        assert!(
            closed_within(&mut held[k], Duration::from_secs(2)).is_some(),
            "connection {k}, the oldest idle one, was not closed"
        );
        held.push(s);
    }
    // The younger ones are still served.
    let m = ask(&mut held[20], &query(2000, "www.tcp.test", 1, None));
    assert_eq!(m.answers.len(), 1);
    // Held at the cap for a while: nothing to do, nothing spent.
    std::thread::sleep(Duration::from_secs(2));
    let cpu = cpu_seconds(pid) - cpu0;
    eprintln!(
        "10 clients at the cap: slowest answered in {slowest:?}; server CPU {cpu:.2} s over {:?}",
        started.elapsed()
    );
    assert!(cpu < 0.5, "server CPU {cpu:.2} s at the cap");
}

/// A client at its own cap gives up its own oldest idle connection; other
/// clients' connections are left alone.
#[test]
fn a_client_at_its_cap_loses_its_own_oldest_connection() {
    let (_dir, op) = start(
        SMALL_ZONE,
        "tcp_max_connections_per_client = 4\ntcp_idle_timeout = \"60s\"\n\
         tcp_busy_idle_timeout = \"60s\"",
        "",
    );
    let mut mine: Vec<TcpStream> = Vec::new();
    let mut others: Vec<TcpStream> = Vec::new();
    for i in 0..4u16 {
        let mut s = connect_from("127.0.0.2", op.addr);
        ask(&mut s, &query(i, "www.tcp.test", 1, None));
        mine.push(s);
        std::thread::sleep(Duration::from_millis(5));
        let mut o = connect_from("127.0.0.3", op.addr);
        ask(&mut o, &query(i, "www.tcp.test", 1, None));
        others.push(o);
    }
    let mut fifth = connect_from("127.0.0.2", op.addr);
    let m = ask(&mut fifth, &query(9, "www.tcp.test", 1, None));
    assert_eq!(m.answers.len(), 1);
    assert!(closed_within(&mut mine[0], Duration::from_secs(2)).is_some());
    for (i, o) in others.iter_mut().enumerate() {
        let m = ask(o, &query(20 + i as u16, "www.tcp.test", 1, None));
        assert_eq!(
            m.answers.len(),
            1,
            "another client's connection {i} was closed"
        );
    }
    let m = ask(&mut mine[1], &query(30, "www.tcp.test", 1, None));
    assert_eq!(m.answers.len(), 1);
}

/// At the open-file limit the accept loop backs off instead of spinning,
/// says so in the log (a few lines, not thousands), UDP goes on, and TCP
/// clients are served again once descriptors are free.
#[test]
fn at_the_open_file_limit_accept_backs_off_and_recovers() {
    raise_nofile();
    const LIMIT: u64 = 64;
    let (_dir, mut op) = start_adjusted(SMALL_ZONE, "tcp_max_connections = 1000", "", |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let pid = op.child.id();
    // More connections than descriptors: the kernel completes them all
    // (the listen backlog), the server can take only some.
    let held: Vec<TcpStream> = (0..2 * LIMIT).map(|_| connect(op.addr)).collect();
    let start = Instant::now();
    while !op.log_text().contains("TCP accept failed") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no accept failure logged: {}",
            op.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu0 = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_seconds(pid) - cpu0;
    eprintln!("at the open-file limit: {cpu:.2} s of server CPU in 3 s");
    assert!(cpu < 0.3, "accept loop spinning: {cpu:.2} s of CPU in 3 s");
    // UDP is not affected.
    let udp = common::dns::exchange_raw(op.addr, &query(7, "www.tcp.test", 1, None), false)
        .expect("UDP answer at the open-file limit");
    assert_eq!(Message::parse(&udp).unwrap().answers.len(), 1);
    let failures = op.log_text().matches("TCP accept failed").count();
    assert!(failures < 40, "{failures} log lines in about 4 s");

    drop(held);
    let start = Instant::now();
    let took = loop {
        let attempt =
            TcpStream::connect_timeout(&op.addr, Duration::from_secs(1)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(&framed(&query(8, "www.tcp.test", 1, None)))?;
                recv(&mut s)
            });
        if let Ok(answer) = attempt {
            assert_eq!(Message::parse(&answer).unwrap().answers.len(), 1);
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "TCP not served again once descriptors were free: {}",
            op.log_text()
        );
    };
    eprintln!("TCP served again {took:?} after the connections closed; {failures} log lines");
    assert!(op.child.try_wait().unwrap().is_none(), "outpost died");
}
