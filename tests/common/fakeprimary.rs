//! An in-process primary for tests, built on Outpost's own wire code: SOA
//! answers over UDP and TCP, AXFR streams over TCP, on 127.0.0.1. It serves a
//! zone given as records and can be switched at run time to misbehave in the
//! ways a broken or hostile primary does, so tests can check that Outpost
//! keeps its good copy and says why.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::outpost::rr;
use ::outpost::wire::{
    CLASS_IN, EDNS_EXPIRE, EDNS_UDP_SIZE, FLAG_AA, FLAG_QR, Message, MessageBuilder, OPCODE_QUERY,
    Section,
};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::peers::free_port;

pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_REFUSED: u8 = 5;

/// How the primary answers. Everything but `SoaRcode` concerns the AXFR
/// stream only: SOA queries are answered correctly, announcing the serial of
/// the zone being served, so Outpost goes on to transfer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Good,
    /// Sends this many messages of the stream, then closes the connection.
    CloseAfter(usize),
    /// A record of another zone in the middle of the stream.
    OutOfZone,
    /// The closing SOA has serial + 1.
    ClosingSoaDiffers,
    /// This many extra records (distinct names), to exceed `max_records`.
    ExtraRecords(usize),
    /// At least this many extra octets of TXT records, to exceed
    /// `max_transfer_bytes`.
    ExtraBytes(usize),
    /// An extra A RRset of this many records, to exceed `max_rrset_records`.
    LargeRrset(usize),
    /// An extra name with this many record types, to exceed
    /// `max_types_per_name`.
    ManyTypes(usize),
    /// Sends this many messages, then keeps the connection open and silent.
    Stall {
        after: usize,
    },
    /// Answers the AXFR with this RCODE and no records.
    Rcode(u8),
    /// Answers SOA queries with this RCODE and no records.
    SoaRcode(u8),
    /// The apex SOA a second time right after the opening one.
    DuplicateApexSoa,
    /// The stream without any SOA.
    MissingApexSoa,
    /// The first message's question names another zone.
    WrongQuestion,
    /// Every message carries the query ID + 1.
    WrongId,
    /// The stream carries the zone with this serial in its opening and
    /// closing SOA, unlike what the SOA answer announced.
    TransferSerial(u32),
    /// A well-formed stream whose zone has a CNAME beside other data at the
    /// first owner below the apex: only the zone build can refuse it.
    CnameBesideData,
    /// The whole zone, as `Good`, after this long.
    Slow(Duration),
}

struct Served {
    /// SOA first.
    records: Arc<Vec<Record>>,
    behaviour: Behaviour,
    /// RFC 7314 EXPIRE value put in answers to queries that carry EDNS.
    expire_option: Option<u32>,
    records_per_message: usize,
}

#[derive(Default)]
struct Counters {
    soa_udp: AtomicUsize,
    soa_tcp: AtomicUsize,
    axfr: AtomicUsize,
    other: AtomicUsize,
}

struct Inner {
    origin: Name,
    served: Mutex<Served>,
    counters: Counters,
    /// Where requests came from: (over TCP, client address).
    clients: Mutex<Vec<(bool, SocketAddr)>>,
    stop: AtomicBool,
}

impl Inner {
    fn served(&self) -> std::sync::MutexGuard<'_, Served> {
        // A test thread that panicked while switching must not wedge the
        // server threads that report it.
        self.served.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs until dropped.
pub struct FakePrimary {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

/// Messages are cut at this many octets even below `records_per_message`.
const MAX_MESSAGE: usize = 32_000;
/// Longest a stalled stream holds its connection when the client never
/// gives up; far beyond any idle timeout a test configures.
const STALL_LIMIT: Duration = Duration::from_secs(60);

fn soa_first(origin: &Name, mut records: Vec<Record>) -> Vec<Record> {
    let pos = records
        .iter()
        .position(|r| r.record_type() == RecordType::SOA && r.name == *origin)
        .unwrap_or_else(|| panic!("fake primary: zone {origin} has no apex SOA"));
    let soa = records.remove(pos);
    records.insert(0, soa);
    records
}

fn serial_of(soa: &Record) -> u32 {
    match &soa.data {
        RData::SOA(s) => s.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

impl FakePrimary {
    /// Serves `records` (which must include the apex SOA) for `origin`.
    pub fn start(origin: &Name, records: Vec<Record>) -> FakePrimary {
        // A free port can be taken by another process between the probe
        // and the bind (other tests, peers starting): try a few.
        let (addr, udp, tcp) = (0..20)
            .find_map(|_| {
                let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
                let udp = UdpSocket::bind(addr).ok()?;
                let tcp = TcpListener::bind(addr).ok()?;
                Some((addr, udp, tcp))
            })
            .expect("fake primary: no free UDP+TCP port in 20 tries");
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let inner = Arc::new(Inner {
            origin: origin.clone(),
            served: Mutex::new(Served {
                records: Arc::new(soa_first(origin, records)),
                behaviour: Behaviour::Good,
                expire_option: None,
                records_per_message: 10,
            }),
            counters: Counters::default(),
            clients: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let u = inner.clone();
        let t = inner.clone();
        let threads = vec![
            std::thread::spawn(move || udp_loop(&u, &udp)),
            std::thread::spawn(move || tcp_loop(&t, &tcp)),
        ];
        FakePrimary {
            addr,
            inner,
            threads,
        }
    }

    /// Replaces the zone; the next SOA answer announces its serial.
    pub fn set_zone(&self, records: Vec<Record>) {
        let records = soa_first(&self.inner.origin, records);
        self.inner.served().records = Arc::new(records);
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.inner.served().behaviour = behaviour;
    }

    /// Sets the zone and the behaviour in one step, so that no query sees
    /// the new serial with the old behaviour.
    pub fn set(&self, records: Vec<Record>, behaviour: Behaviour) {
        let records = Arc::new(soa_first(&self.inner.origin, records));
        let mut s = self.inner.served();
        s.records = records;
        s.behaviour = behaviour;
    }

    pub fn set_expire_option(&self, expire: Option<u32>) {
        self.inner.served().expire_option = expire;
    }

    pub fn set_records_per_message(&self, n: usize) {
        self.inner.served().records_per_message = n.max(1);
    }

    pub fn serial(&self) -> u32 {
        serial_of(&self.inner.served().records[0])
    }

    /// The addresses requests came from, (over TCP, address), in order.
    pub fn clients(&self) -> Vec<(bool, SocketAddr)> {
        self.inner
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// SOA queries received, UDP and TCP.
    pub fn soa_queries(&self) -> usize {
        self.inner.counters.soa_udp.load(Ordering::SeqCst)
            + self.inner.counters.soa_tcp.load(Ordering::SeqCst)
    }

    /// AXFR queries received, each one a transfer attempt.
    pub fn axfr_queries(&self) -> usize {
        self.inner.counters.axfr.load(Ordering::SeqCst)
    }

    /// Queries that were neither SOA nor AXFR for the zone (answered
    /// REFUSED).
    pub fn other_queries(&self) -> usize {
        self.inner.counters.other.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` AXFR queries have arrived; returns when the
    /// condition held, or panics after `within`.
    pub fn wait_axfr_queries(&self, n: usize, within: Duration) -> Instant {
        let start = Instant::now();
        loop {
            if self.axfr_queries() >= n {
                return Instant::now();
            }
            assert!(
                start.elapsed() < within,
                "fake primary {}: {} AXFR queries after {within:?}, expected {n}",
                self.addr,
                self.axfr_queries()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for FakePrimary {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn udp_loop(inner: &Inner, sock: &UdpSocket) {
    let mut buf = vec![0u8; 65535];
    while !inner.stop.load(Ordering::SeqCst) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => panic!("fake primary: UDP receive: {e}"),
        };
        inner
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((false, peer));
        let Ok(query) = Message::parse(&buf[..n]) else {
            continue;
        };
        if let Some(reply) = answer_simple(inner, &query, true) {
            let _ = sock.send_to(&reply, peer);
        }
    }
}

fn tcp_loop(inner: &Arc<Inner>, listener: &TcpListener) {
    while !inner.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                inner
                    .clients
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((true, peer));
                let inner = inner.clone();
                // Not joined: each ends when the client closes, at the stop
                // flag, or at the stall limit.
                std::thread::spawn(move || {
                    let _ = serve_tcp(&inner, stream);
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("fake primary: TCP accept: {e}"),
        }
    }
}

fn read_framed(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(Some(buf))
}

fn write_framed(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    framed.extend_from_slice(msg);
    s.write_all(&framed)
}

fn serve_tcp(inner: &Inner, mut s: TcpStream) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_nodelay(true)?;
    while let Some(buf) = read_framed(&mut s)? {
        let Ok(query) = Message::parse(&buf) else {
            return Ok(());
        };
        let is_axfr = query.questions.len() == 1
            && query.questions[0].qtype == RecordType::AXFR
            && query.questions[0].name == inner.origin;
        if is_axfr {
            inner.counters.axfr.fetch_add(1, Ordering::SeqCst);
            return stream_axfr(inner, &query, &mut s);
        }
        if let Some(reply) = answer_simple(inner, &query, false) {
            write_framed(&mut s, &reply)?;
        }
    }
    Ok(())
}

fn response(id: u16, query: &Message, rcode: u8) -> MessageBuilder {
    let mut b = MessageBuilder::new(id, OPCODE_QUERY, FLAG_QR | FLAG_AA);
    b.set_rcode(rcode);
    for q in &query.questions {
        b.question(&q.name, q.qtype, q.qclass);
    }
    b
}

fn add_edns(b: &mut MessageBuilder, query: &Message, expire: Option<u32>) {
    if query.opt.is_none() {
        return;
    }
    let value = expire.map(u32::to_be_bytes);
    let options: Vec<(u16, &[u8])> = value
        .as_ref()
        .map(|v| vec![(EDNS_EXPIRE, &v[..])])
        .unwrap_or_default();
    b.edns(EDNS_UDP_SIZE, &options).expect("OPT fits");
}

/// SOA queries (counted) and anything else that is not an AXFR (REFUSED).
fn answer_simple(inner: &Inner, query: &Message, udp: bool) -> Option<Vec<u8>> {
    if query.header.is_response() {
        return None;
    }
    let (soa, behaviour, expire) = {
        let s = inner.served();
        (s.records[0].clone(), s.behaviour.clone(), s.expire_option)
    };
    let is_soa = matches!(query.questions.as_slice(),
        [q] if q.qtype == RecordType::SOA && q.name == inner.origin && q.qclass == CLASS_IN);
    let id = query.header.id;
    if !is_soa {
        inner.counters.other.fetch_add(1, Ordering::SeqCst);
        return response(id, query, RCODE_REFUSED).finish().ok();
    }
    let counter = if udp {
        &inner.counters.soa_udp
    } else {
        &inner.counters.soa_tcp
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let rcode = match behaviour {
        Behaviour::SoaRcode(r) => r,
        _ => 0,
    };
    let mut b = response(id, query, rcode);
    if rcode == 0 {
        b.record(Section::Answer, &soa).expect("SOA fits");
    }
    add_edns(&mut b, query, expire);
    Some(b.finish().expect("SOA answer fits"))
}

fn with_serial(soa: &Record, serial: u32) -> Record {
    let mut r = soa.clone();
    match &mut r.data {
        RData::SOA(s) => s.serial = serial,
        other => panic!("not an SOA: {other:?}"),
    }
    r
}

fn rec(name: Name, rtype: RecordType, wire: &[u8]) -> Record {
    rr::record(name, rtype, 300, wire).expect("valid test record")
}

fn child(origin: &Name, label: &str) -> Name {
    Name::from_ascii(label)
        .unwrap()
        .append_domain(origin)
        .unwrap()
}

/// The records of the stream, opening and closing SOA included, as
/// `behaviour` distorts them.
fn stream_records(origin: &Name, zone: &[Record], behaviour: &Behaviour) -> Vec<Record> {
    let soa = match behaviour {
        Behaviour::TransferSerial(serial) => with_serial(&zone[0], *serial),
        _ => zone[0].clone(),
    };
    let body = &zone[1..];
    let mut out = Vec::with_capacity(zone.len() + 2);
    match behaviour {
        Behaviour::MissingApexSoa => {
            out.extend_from_slice(body);
            return out;
        }
        Behaviour::DuplicateApexSoa => {
            out.push(soa.clone());
            out.push(soa.clone());
        }
        _ => out.push(soa.clone()),
    }
    out.extend_from_slice(body);
    match behaviour {
        Behaviour::OutOfZone => {
            let intruder = rec(
                Name::from_ascii("intruder.example.net.").unwrap(),
                RecordType::A,
                &[192, 0, 2, 66],
            );
            out.insert(out.len() / 2, intruder);
        }
        Behaviour::ExtraRecords(n) => {
            out.extend((0..*n).map(|i| {
                let b = (i as u32).to_be_bytes();
                rec(
                    child(origin, &format!("extra{i}")),
                    RecordType::A,
                    &[10, b[1], b[2], b[3]],
                )
            }));
        }
        Behaviour::ExtraBytes(bytes) => {
            let mut txt = vec![255u8];
            txt.extend(std::iter::repeat_n(b'x', 255));
            let per = txt.len() + 20;
            out.extend(
                (0..bytes.div_ceil(per))
                    .map(|i| rec(child(origin, &format!("pad{i}")), RecordType::TXT, &txt)),
            );
        }
        Behaviour::LargeRrset(n) => {
            let big = child(origin, "big-rrset");
            out.extend((0..*n).map(|i| {
                let b = (i as u32).to_be_bytes();
                rec(big.clone(), RecordType::A, &[10, b[1], b[2], b[3]])
            }));
        }
        Behaviour::CnameBesideData => {
            let owner = body
                .iter()
                .find(|r| r.name != *origin)
                .expect("a record below the apex")
                .name
                .clone();
            let mut target = Vec::new();
            ::outpost::wire::put_name(&mut target, origin);
            out.push(rec(owner, RecordType::CNAME, &target));
        }
        Behaviour::ManyTypes(n) => {
            let many = child(origin, "many-types");
            // Private-use types (RFC 6895): opaque to every parser.
            out.extend((0..*n).map(|i| {
                rec(
                    many.clone(),
                    RecordType::Unknown(65280 + i as u16),
                    &[1, 2, 3],
                )
            }));
        }
        _ => {}
    }
    let closing = match behaviour {
        Behaviour::ClosingSoaDiffers => with_serial(&soa, serial_of(&soa).wrapping_add(1)),
        _ => soa,
    };
    out.push(closing);
    out
}

fn wire_len(r: &Record) -> usize {
    r.name.len() + 2 + 10 + rr::rdata_len(&r.data)
}

fn stream_axfr(inner: &Inner, query: &Message, s: &mut TcpStream) -> std::io::Result<()> {
    let (zone, behaviour, expire, per_message) = {
        let sv = inner.served();
        (
            sv.records.clone(),
            sv.behaviour.clone(),
            sv.expire_option,
            sv.records_per_message,
        )
    };
    let id = match behaviour {
        Behaviour::WrongId => query.header.id.wrapping_add(1),
        _ => query.header.id,
    };
    if let Behaviour::Slow(delay) = behaviour {
        std::thread::sleep(delay);
    }
    if let Behaviour::Rcode(rcode) = behaviour {
        let mut b = response(id, query, rcode);
        add_edns(&mut b, query, expire);
        return write_framed(s, &b.finish().expect("fits"));
    }
    let records = stream_records(&inner.origin, &zone, &behaviour);
    let limit = match behaviour {
        Behaviour::CloseAfter(n) | Behaviour::Stall { after: n } => n,
        _ => usize::MAX,
    };
    let mut sent = 0;
    let mut i = 0;
    while i < records.len() && sent < limit {
        if inner.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut b = if sent == 0 {
            let mut b = MessageBuilder::new(id, OPCODE_QUERY, FLAG_QR | FLAG_AA);
            let qname = match behaviour {
                Behaviour::WrongQuestion => Name::from_ascii("example.net.").unwrap(),
                _ => inner.origin.clone(),
            };
            b.question(&qname, RecordType::AXFR, CLASS_IN);
            add_edns(&mut b, query, expire);
            b
        } else {
            // Later messages may omit the question (RFC 5936 §2.2).
            MessageBuilder::new(id, OPCODE_QUERY, FLAG_QR | FLAG_AA)
        };
        let mut size = 0;
        let mut count = 0;
        while i < records.len() && count < per_message {
            let len = wire_len(&records[i]);
            if count > 0 && size + len > MAX_MESSAGE {
                break;
            }
            b.record(Section::Answer, &records[i]).expect("record fits");
            size += len;
            count += 1;
            i += 1;
        }
        write_framed(s, &b.finish().expect("message fits"))?;
        sent += 1;
    }
    if let Behaviour::Stall { .. } = behaviour {
        // Silent but open: only the client's idle timeout ends this.
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let start = Instant::now();
        let mut buf = [0u8; 512];
        while !inner.stop.load(Ordering::SeqCst) && start.elapsed() < STALL_LIMIT {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    }
    Ok(())
}

/// The records of a [`super::TestZone`], for serving.
pub fn records_of(zone: &super::TestZone) -> Vec<Record> {
    zone.expected
        .iter()
        .map(|(owner, rtype, ttl, rdata)| {
            rr::record(
                Name::from_ascii(owner).unwrap(),
                RecordType::from(*rtype),
                *ttl,
                rdata,
            )
            .expect("valid test record")
        })
        .collect()
}
