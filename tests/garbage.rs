//! Hostile input against the real binary: malformed UDP datagrams and broken
//! TCP streams. After every batch the server must still be running and must
//! answer a correct query correctly within one second; where the protocol
//! fixes the reply to a bad message (FORMERR, NOTIMP, BADVERS, REFUSED, or
//! silence for responses), that reply is checked too.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::RData;
use hickory_proto::serialize::binary::BinDecodable;

use common::outpost::Outpost;

const ZONE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/diff.example.zone");
const SERIAL: u32 = 2026112901;

/// Reproducible by default; set GARBAGE_SEED to explore other inputs.
fn seed() -> u64 {
    std::env::var("GARBAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0f0b_1e00)
}

/// xorshift64*: enough randomness for garbage, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn u16(&mut self) -> u16 {
        self.next() as u16
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn start(dir: &std::path::Path) -> Outpost {
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:{{port}}"]
data_dir = "{{dir}}/data"

[[zone]]
name = "example.com"
primaries = []
seed_file = "{ZONE_FILE}"
"#
    );
    let mut outpost = Outpost::start_in(dir, &config);
    outpost.wait_ready("example.com.", Duration::from_secs(10));
    outpost
}

// ---- raw message building -------------------------------------------------

const QR: u16 = 0x8000;

fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        v.extend_from_slice(&c.to_be_bytes());
    }
    v
}

fn name(text: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for label in text
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
    v
}

fn question(qname: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut v = qname.to_vec();
    v.extend_from_slice(&qtype.to_be_bytes());
    v.extend_from_slice(&qclass.to_be_bytes());
    v
}

/// An OPT RR; `rdlen` lies about the options' length when given.
fn opt(payload: u16, version: u8, options: &[u8], rdlen: Option<u16>) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&41u16.to_be_bytes());
    v.extend_from_slice(&payload.to_be_bytes());
    v.extend_from_slice(&[0, version, 0, 0]);
    v.extend_from_slice(&rdlen.unwrap_or(options.len() as u16).to_be_bytes());
    v.extend_from_slice(options);
    v
}

fn edns_option(code: u16, len: u16, data: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// A TSIG RR signed with a key the server does not have (hmac-sha256,
/// 32-byte MAC): only its position matters here.
fn tsig_rr(id: u16) -> Vec<u8> {
    let mut rdata = name("hmac-sha256.");
    rdata.extend_from_slice(&[0, 0, 0x69, 0x00, 0x00, 0x00]); // time signed
    rdata.extend_from_slice(&300u16.to_be_bytes()); // fudge
    rdata.extend_from_slice(&32u16.to_be_bytes());
    rdata.extend_from_slice(&[0xab; 32]);
    rdata.extend_from_slice(&id.to_be_bytes());
    rdata.extend_from_slice(&[0, 0, 0, 0]); // error, other len
    let mut v = name("some-key.");
    v.extend_from_slice(&250u16.to_be_bytes());
    v.extend_from_slice(&255u16.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    v.extend(rdata);
    v
}

fn a_rr(owner: &[u8]) -> Vec<u8> {
    let mut v = owner.to_vec();
    v.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    v
}

/// A correct query: `example.com SOA`, EDNS 1232 when `edns`.
fn good_query(id: u16, edns: bool) -> Vec<u8> {
    let mut v = header(id, 0, [1, 0, 0, edns as u16]);
    v.extend(question(&name("example.com."), 6, 1));
    if edns {
        v.extend(opt(1232, 0, &[], None));
    }
    v
}

// ---- talking to the server ------------------------------------------------

/// Sends one datagram and waits up to `wait` for the reply.
fn ask_udp(addr: SocketAddr, wire: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.send_to(wire, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

fn ask_tcp(addr: SocketAddr, wire: &[u8], wait: Duration) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, wait)?;
    s.set_read_timeout(Some(wait))?;
    let mut buf = (wire.len() as u16).to_be_bytes().to_vec();
    buf.extend_from_slice(wire);
    s.write_all(&buf)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut out = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut out)?;
    Ok(out)
}

fn parse(wire: &[u8], what: &str) -> Message {
    Message::from_bytes(wire).unwrap_or_else(|e| panic!("{what}: reply does not parse: {e}"))
}

/// The reply to a message the protocol says must be answered.
fn reply(o: &mut Outpost, wire: &[u8], what: &str) -> Message {
    let out = ask_udp(o.addr, wire, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("{what}: no reply; log:\n{}", o.log_text()));
    let msg = parse(&out, what);
    assert_eq!(msg.metadata.message_type, MessageType::Response, "{what}");
    assert_eq!(
        msg.metadata.id,
        u16::from_be_bytes([wire[0], wire[1]]),
        "{what}: ID"
    );
    msg
}

fn check_correct_answer(msg: &Message, what: &str) {
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{what}");
    assert!(msg.metadata.authoritative, "{what}: AA");
    assert_eq!(msg.answers.len(), 1, "{what}: {msg:?}");
    match &msg.answers[0].data {
        RData::SOA(soa) => assert_eq!(soa.serial, SERIAL, "{what}"),
        other => panic!("{what}: answer is {other:?}"),
    }
}

/// The server is still running and answers `example.com SOA` correctly over
/// UDP (and TCP when `tcp`) within one second.
fn assert_alive(o: &mut Outpost, batch: &str, tcp: bool) {
    if let Some(status) = o.child.try_wait().unwrap() {
        panic!(
            "outpost died ({status}) after batch {batch}; log:\n{}",
            o.log_text()
        );
    }
    let what = format!("good query after batch {batch}");
    let id = 0x4242;
    let start = Instant::now();
    let out = ask_udp(o.addr, &good_query(id, true), Duration::from_secs(1))
        .unwrap_or_else(|| panic!("{what}: no UDP answer within 1 s"));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
    let msg = parse(&out, &what);
    assert_eq!(msg.metadata.id, id);
    check_correct_answer(&msg, &what);
    if tcp {
        let start = Instant::now();
        let out = ask_tcp(o.addr, &good_query(id, false), Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("{what}: no TCP answer within 1 s: {e}"));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(1), "{what} (TCP): took {took:?}");
        check_correct_answer(&parse(&out, &what), &what);
    }
}

/// Sends a batch from one socket, paced so the server's receive buffer is
/// not simply overrun, and collects the replies. Every reply must be a
/// response carrying the ID of something we sent.
fn flood(addr: SocketAddr, datagrams: &[Vec<u8>], batch: &str) -> usize {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65535];
    let mut replies = 0;
    let check = |reply: &[u8]| {
        assert!(
            reply.len() >= 12,
            "batch {batch}: {}-byte reply",
            reply.len()
        );
        assert!(reply[2] & 0x80 != 0, "batch {batch}: reply without QR");
        assert!(
            datagrams
                .iter()
                .any(|d| d.len() >= 2 && d[..2] == reply[..2]),
            "batch {batch}: reply with an ID never sent"
        );
    };
    for (i, d) in datagrams.iter().enumerate() {
        let _ = s.send_to(d, addr);
        if i % 32 == 31 {
            std::thread::sleep(Duration::from_millis(1));
        }
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            check(&buf[..n]);
            replies += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        match s.recv_from(&mut buf) {
            Ok((n, _)) => {
                check(&buf[..n]);
                replies += 1;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    replies
}

// ---- UDP ------------------------------------------------------------------

#[test]
fn udp_garbage_never_kills_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = start(dir.path());
    let mut rng = Rng(seed());
    let seed = seed();
    let mut total = 0;
    let mut report = Vec::new();
    let started = Instant::now();
    let mut run = |o: &mut Outpost, batch: &str, datagrams: Vec<Vec<u8>>| {
        let replies = flood(o.addr, &datagrams, batch);
        assert_alive(o, batch, false);
        total += datagrams.len();
        report.push(format!(
            "{batch}: {} sent, {replies} replies",
            datagrams.len()
        ));
    };

    // Pure noise, every length from empty to over 512.
    let noise: Vec<Vec<u8>> = (0..3000)
        .map(|_| {
            let n = rng.below(700);
            rng.bytes(n)
        })
        .collect();
    run(&mut o, &format!("random bytes (seed {seed})"), noise);

    // A plausible query header (QR=0, QUERY, one question) then noise: gets
    // past the header into the name and record parsers.
    let noisy_body: Vec<Vec<u8>> = (0..2000)
        .map(|_| {
            let mut v = header(rng.u16(), 0, [1, 0, 0, rng.below(3) as u16]);
            let n = rng.below(300);
            v.extend(rng.bytes(n));
            v
        })
        .collect();
    run(&mut o, "query header + random body", noisy_body);

    // Every prefix of a correct query, the header included.
    let full = good_query(7, true);
    let prefixes: Vec<Vec<u8>> = (0..full.len()).map(|n| full[..n].to_vec()).collect();
    run(&mut o, "truncated queries", prefixes);

    // A correct query whose counts lie, one at a time and all at once.
    let lying: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            let mut v = good_query(rng.u16(), true);
            let which = i % 5;
            for c in 0..4 {
                if which == 4 || which == c {
                    let at = 4 + 2 * c;
                    v[at..at + 2].copy_from_slice(&rng.u16().to_be_bytes());
                }
            }
            v
        })
        .collect();
    run(&mut o, "lying counts", lying);

    // Compression pointers: to itself, to each other, forward, past the end,
    // into the header, and reserved label types.
    let mut ptrs = Vec::new();
    for target in 0..=64u16 {
        let mut v = header(rng.u16(), 0, [1, 0, 0, 0]);
        v.extend_from_slice(&(0xc000 | target).to_be_bytes());
        v.extend_from_slice(&[0, 6, 0, 1]);
        ptrs.push(v);
    }
    for tail in [
        vec![0xc0, 0x0e, 0xc0, 0x0c, 0, 6, 0, 1],
        vec![3, b'f', b'o', b'o', 0xc0, 0x0c, 0, 6, 0, 1],
        vec![0xff, 0xff, 0, 6, 0, 1],
        vec![0x40, 0x01, 0, 0, 6, 0, 1],
        vec![0x80, 0x01, 0, 0, 6, 0, 1],
    ] {
        let mut v = header(rng.u16(), 0, [1, 0, 0, 0]);
        v.extend(tail);
        ptrs.push(v);
    }
    // A pointer loop in an answer-section owner and in the OPT owner.
    let mut v = good_query(rng.u16(), false);
    v[7] = 1;
    v.extend_from_slice(&[0xc0, (v.len() as u8), 0, 1, 0, 1, 0, 0, 0, 1, 0, 0]);
    ptrs.push(v);
    let mut v = good_query(rng.u16(), false);
    v[11] = 1;
    let at = v.len() as u8;
    v.extend_from_slice(&[0xc0, at, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
    ptrs.push(v);
    run(&mut o, "compression pointers", ptrs);

    // Labels longer than 63 (every length byte 64..=191) and names longer
    // than 255, written out and built from pointers.
    let mut long = Vec::new();
    for len in 64..=191u8 {
        let mut v = header(rng.u16(), 0, [1, 0, 0, 0]);
        v.push(len);
        v.extend(std::iter::repeat_n(b'a', len as usize & 0x3f));
        v.extend_from_slice(&[0, 0, 6, 0, 1]);
        long.push(v);
    }
    for labels in [4usize, 5, 8] {
        let mut v = header(rng.u16(), 0, [1, 0, 0, 0]);
        for _ in 0..labels {
            v.push(63);
            v.extend_from_slice(&[b'x'; 63]);
        }
        v.extend(name("example.com."));
        v.extend_from_slice(&[0, 6, 0, 1]);
        long.push(v);
    }
    // 200 bytes of labels, then a pointer to 200 more: 400 in all.
    let mut v = header(rng.u16(), 0, [2, 0, 0, 0]);
    let first = v.len() as u16;
    for _ in 0..4 {
        v.push(49);
        v.extend_from_slice(&[b'y'; 49]);
    }
    v.push(0);
    v.extend_from_slice(&[0, 6, 0, 1]);
    for _ in 0..4 {
        v.push(49);
        v.extend_from_slice(&[b'z'; 49]);
    }
    v.extend_from_slice(&(0xc000 | first).to_be_bytes());
    v.extend_from_slice(&[0, 6, 0, 1]);
    long.push(v);
    run(&mut o, "labels > 63 and names > 255", long);

    // Huge QDCOUNT: one question and 65535 claimed; then many questions.
    let mut huge = Vec::new();
    let mut v = good_query(rng.u16(), false);
    v[4] = 0xff;
    v[5] = 0xff;
    huge.push(v);
    let mut v = header(rng.u16(), 0, [0xffff, 0xffff, 0xffff, 0xffff]);
    while v.len() < 1400 {
        v.extend(question(&[0xc0, 0x0c], 6, 1));
    }
    huge.push(v);
    let mut v = header(rng.u16(), 0, [0xffff, 0, 0, 0]);
    v.extend(question(&name("example.com."), 6, 1));
    while v.len() < 60000 {
        v.extend(question(&[0xc0, 0x0c], 6, 1));
    }
    huge.push(v);
    run(&mut o, "huge QDCOUNT", huge);

    // EDNS options whose lengths lie, and OPT RDLENGTHs that lie.
    let mut edns = Vec::new();
    let bad_options: Vec<(Vec<u8>, Option<u16>)> = vec![
        (edns_option(10, 100, &[1; 8]), None),
        (edns_option(10, 0xffff, &[1; 8]), None),
        (edns_option(10, 8, &[1; 8]), Some(40)),
        (edns_option(10, 8, &[1; 8]), Some(0xffff)),
        (edns_option(10, 8, &[1; 8]), Some(3)),
        (edns_option(10, 7, &[1; 7]), None),
        (edns_option(10, 41, &[1; 41]), None),
        (edns_option(8, 4, &[0, 1, 33, 0]), None),
        (edns_option(8, 8, &[0, 99, 24, 0, 1, 2, 3, 4]), None),
        (edns_option(8, 3, &[0, 1, 8]), None),
        (edns_option(12, 0xfff0, &[0; 4]), None),
        (edns_option(15, 1, &[0]), None),
        (vec![0, 10], None),
        (vec![0, 10, 0], None),
    ];
    for (opts, rdlen) in &bad_options {
        let mut v = header(rng.u16(), 0, [1, 0, 0, 1]);
        v.extend(question(&name("example.com."), 6, 1));
        v.extend(opt(1232, 0, opts, *rdlen));
        edns.push(v);
    }
    for _ in 0..500 {
        let mut v = header(rng.u16(), 0, [1, 0, 0, 1]);
        v.extend(question(&name("example.com."), 6, 1));
        let n = rng.below(64);
        let opts = rng.bytes(n);
        let rdlen = if rng.below(2) == 0 {
            None
        } else {
            Some(rng.u16() % 80)
        };
        v.extend(opt(rng.u16(), rng.below(3) as u8, &opts, rdlen));
        edns.push(v);
    }
    run(&mut o, "EDNS with bad option lengths", edns);

    // Records where they do not belong, TSIG not last, two OPTs.
    let mut misplaced = Vec::new();
    for counts in [[1, 1, 0, 0], [1, 0, 1, 0]] {
        let mut v = header(rng.u16(), 0, counts);
        v.extend(question(&name("example.com."), 6, 1));
        v.extend(opt(1232, 0, &[], None));
        misplaced.push(v);
    }
    let mut v = header(rng.u16(), 0, [1, 0, 0, 3]);
    v.extend(question(&name("example.com."), 6, 1));
    v.extend(opt(1232, 0, &[], None));
    v.extend(opt(512, 0, &[], None));
    v.extend(opt(4096, 1, &[], None));
    misplaced.push(v);
    let mut v = header(rng.u16(), 0, [1, 0, 0, 2]);
    v.extend(question(&name("example.com."), 6, 1));
    let id = u16::from_be_bytes([v[0], v[1]]);
    v.extend(tsig_rr(id));
    v.extend(a_rr(&name("x.example.com.")));
    misplaced.push(v);
    let mut v = header(rng.u16(), 0, [1, 0, 0, 2]);
    v.extend(question(&name("example.com."), 6, 1));
    let id = u16::from_be_bytes([v[0], v[1]]);
    v.extend(tsig_rr(id));
    v.extend(tsig_rr(id));
    misplaced.push(v);
    run(&mut o, "misplaced OPT/TSIG", misplaced);

    // Every opcode, every flag combination, QR=1 included.
    let mut flags = Vec::new();
    for bits in 0..=0xffffu16 {
        if bits % 7 != 0 {
            continue;
        }
        let mut v = good_query(rng.u16(), bits % 2 == 0);
        v[2..4].copy_from_slice(&bits.to_be_bytes());
        flags.push(v);
    }
    run(&mut o, "all header flags/opcodes/rcodes", flags);

    let took = started.elapsed();
    println!(
        "UDP garbage: {total} datagrams in {took:?}\n{}",
        report.join("\n")
    );
    assert!(total >= 10_000, "only {total} datagrams");
}

/// Malformed queries whose replies the protocol fixes.
#[test]
fn udp_specific_replies() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = start(dir.path());
    let q = question(&name("example.com."), 6, 1);

    // QDCOUNT 0 and 2 (both parse; they are not one question).
    let v = header(0x1001, 0, [0, 0, 0, 0]);
    let m = reply(&mut o, &v, "QDCOUNT 0");
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "QDCOUNT 0");
    let mut v = header(0x1002, 0, [2, 0, 0, 0]);
    v.extend(&q);
    v.extend(question(&name("mail.example.com."), 1, 1));
    let m = reply(&mut o, &v, "QDCOUNT 2");
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "QDCOUNT 2");
    // Counts larger than the message: the parse fails, FORMERR all the same.
    let mut v = header(0x1003, 0, [1, 0, 0, 5]);
    v.extend(&q);
    let m = reply(&mut o, &v, "ARCOUNT beyond the end");
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);

    // Every opcode: QUERY answers; NOTIFY is refused (this server has no
    // primaries, so no NOTIFY can come from one); all others, UPDATE and DSO
    // included, are not implemented: Outpost does no updates.
    for opcode in 0..16u8 {
        let mut v = header(0x2000 | opcode as u16, (opcode as u16) << 11, [1, 0, 0, 0]);
        v.extend(&q);
        let what = format!("opcode {opcode}");
        let m = reply(&mut o, &v, &what);
        assert_eq!(
            m.metadata.op_code,
            OpCode::from_u8(opcode),
            "{what}: opcode echoed"
        );
        let want = match opcode {
            0 => ResponseCode::NoError,
            4 => ResponseCode::Refused,
            _ => ResponseCode::NotImp,
        };
        assert_eq!(m.metadata.response_code, want, "{what}");
        if opcode != 0 {
            assert!(m.answers.is_empty() && m.authorities.is_empty(), "{what}");
            assert!(!m.metadata.authoritative, "{what}: AA");
        }
    }
    // UPDATE with a real update section: still NOTIMP, nothing changes.
    let mut v = header(0x2105, 5 << 11, [1, 0, 1, 0]);
    v.extend(&q);
    v.extend(a_rr(&name("new.example.com.")));
    let m = reply(&mut o, &v, "UPDATE adding a record");
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    let m = reply(
        &mut o,
        &{
            let mut v = header(0x2106, 0, [1, 0, 0, 0]);
            v.extend(question(&name("new.example.com."), 1, 1));
            v
        },
        "query after UPDATE",
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    // EDNS version 1: BADVERS, answered with an OPT of version 0.
    let mut v = header(0x3001, 0, [1, 0, 0, 1]);
    v.extend(&q);
    v.extend(opt(1232, 1, &[], None));
    let m = reply(&mut o, &v, "EDNS version 1");
    // BADVERS and BADSIG share the value 16; hickory decodes it as BADSIG.
    assert_eq!(
        u16::from(m.metadata.response_code),
        u16::from(ResponseCode::BADVERS),
        "EDNS version 1: {:?}",
        m.metadata.response_code
    );
    let edns = m.edns.as_ref().expect("BADVERS carries an OPT");
    assert_eq!(edns.version(), 0);
    assert!(m.answers.is_empty());

    // Two OPT records: RFC 6891 §6.1.1 requires FORMERR.
    let mut v = header(0x3002, 0, [1, 0, 0, 2]);
    v.extend(&q);
    v.extend(opt(1232, 0, &[], None));
    v.extend(opt(1232, 0, &[], None));
    let m = reply(&mut o, &v, "two OPT records");
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);

    // An OPT RDLENGTH running past the end of the message.
    let mut v = header(0x3003, 0, [1, 0, 0, 1]);
    v.extend(&q);
    v.extend(opt(1232, 0, &edns_option(10, 8, &[1; 8]), Some(200)));
    let m = reply(&mut o, &v, "OPT RDLENGTH past the end");
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);

    // Names outside our zones, and class CH but for the identity names:
    // REFUSED, not AA.
    for (qname, qclass, what) in [
        ("www.example.org.", 1u16, "out-of-zone name"),
        ("com.", 1, "parent of the zone"),
        ("example.com.", 3, "class CH"),
        ("version.example.", 3, "other CH name"),
    ] {
        let mut v = header(0x4000, 0, [1, 0, 0, 0]);
        v.extend(question(&name(qname), 16, qclass));
        let m = reply(&mut o, &v, what);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{what}");
        assert!(!m.metadata.authoritative, "{what}: AA");
        assert!(m.answers.is_empty(), "{what}");
    }

    // CHAOS TXT version.bind: the version, authoritatively.
    let mut v = header(0x4001, 0, [1, 0, 0, 0]);
    v.extend(question(&name("version.bind."), 16, 3));
    let m = reply(&mut o, &v, "version.bind CH");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative && m.answers.len() == 1);

    assert_alive(&mut o, "specific replies", true);
}

/// Responses are never answered: a correct one, one with EDNS, and malformed
/// ones (answering those would make us a reflector, and let two servers that
/// both answer them ping-pong).
#[test]
fn udp_responses_are_never_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = start(dir.path());
    let q = question(&name("example.com."), 6, 1);
    let mut response = good_query(0x5001, true);
    response[2] |= (QR >> 8) as u8;
    let mut bad_response = header(0x5002, QR | 0x0400, [1, 0, 0, 0]);
    bad_response.extend_from_slice(&[0xc0, 0x0c, 0, 6, 0, 1]);
    let mut lying_response = header(0x5003, QR, [1, 9, 0, 0]);
    lying_response.extend(&q);
    for (wire, what) in [
        (&response, "QR=1 query"),
        (&bad_response, "QR=1, malformed"),
        (&lying_response, "QR=1, counts past the end"),
    ] {
        let got = ask_udp(o.addr, wire, Duration::from_millis(700));
        assert!(
            got.is_none(),
            "{what}: a response was answered with {:?}",
            got.map(|g| Message::from_bytes(&g).map(|m| m.metadata.response_code))
        );
    }

    assert_alive(&mut o, "responses", false);
}

#[test]
fn udp_tsig_not_last_is_formerr() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = start(dir.path());
    let q = question(&name("example.com."), 6, 1);
    // TSIG not last in the additional section: RFC 8945 §5.1 requires
    // FORMERR.
    let mut v = header(0x6001, 0, [1, 0, 0, 2]);
    v.extend(&q);
    v.extend(tsig_rr(0x6001));
    v.extend(a_rr(&name("x.example.com.")));
    let m = reply(&mut o, &v, "TSIG not last");
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::FormErr,
        "TSIG not last: {m:?}"
    );

    assert_alive(&mut o, "TSIG not last", false);
}

/// A query signed with a key the server does not know: RFC 8945 §5.2.1
/// requires NOTAUTH (TSIG error BADKEY), as BIND answers, not an unsigned
/// answer the client would have to discard.
#[test]
fn udp_tsig_unknown_key_is_notauth() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = start(dir.path());
    let mut v = header(0x6002, 0, [1, 0, 0, 1]);
    v.extend(question(&name("example.com."), 6, 1));
    v.extend(tsig_rr(0x6002));
    let m = reply(&mut o, &v, "TSIG with an unknown key");
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NotAuth,
        "TSIG with an unknown key: {m:?}"
    );
    assert!(m.answers.is_empty(), "TSIG with an unknown key: {m:?}");
    assert_alive(&mut o, "TSIG unknown key", false);
}

// ---- TCP ------------------------------------------------------------------

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

#[test]
fn tcp_broken_streams_never_kill_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = start(dir.path());
    let addr = o.addr;
    let mut rng = Rng(seed() ^ 0x7c9);
    let started = Instant::now();
    let mut connections = 0usize;
    let query = good_query(9, false);

    // A length prefix, then nothing: held open while the server is checked.
    let held: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(&[0, 40]).unwrap();
            s
        })
        .collect();
    connections += held.len();
    assert_alive(&mut o, "TCP length prefix then nothing (held open)", true);
    drop(held);
    assert_alive(&mut o, "TCP length prefix then nothing (closed)", true);

    // Length 0, alone and followed by a real query on the same stream.
    for i in 0..100 {
        let mut s = connect(addr);
        let _ = s.write_all(&[0, 0]);
        if i % 2 == 0 {
            let mut framed = (query.len() as u16).to_be_bytes().to_vec();
            framed.extend(&query);
            let _ = s.write_all(&framed);
        }
        let _ = s.shutdown(Shutdown::Write);
        connections += 1;
    }
    assert_alive(&mut o, "TCP length 0", true);

    // Length 65535, some bytes or none, then close.
    for i in 0..100 {
        let mut s = connect(addr);
        let _ = s.write_all(&[0xff, 0xff]);
        let n = i * 300;
        let _ = s.write_all(&rng.bytes(n));
        connections += 1;
    }
    assert_alive(&mut o, "TCP length 65535 then close", true);

    // Every prefix of a framed query, then close; and then half-close.
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend(&query);
    for n in 1..framed.len() {
        let mut s = connect(addr);
        let _ = s.write_all(&framed[..n]);
        if n % 2 == 0 {
            let _ = s.shutdown(Shutdown::Write);
        }
        connections += 1;
    }
    assert_alive(&mut o, "TCP partial messages", true);

    // Correctly framed garbage, several messages per stream; the server may
    // answer or close, but must not stop.
    for _ in 0..300 {
        let mut s = connect(addr);
        for _ in 0..1 + rng.below(4) {
            let n = rng.below(600);
            let mut m = (n as u16).to_be_bytes().to_vec();
            m.extend(rng.bytes(n));
            if n >= 12 {
                m[4] &= 0x7f; // QR=0 so that it gets parsed
            }
            let _ = s.write_all(&m);
        }
        connections += 1;
    }
    assert_alive(&mut o, "TCP framed garbage", true);

    // Many connections opened and dropped at once.
    for _ in 0..1000 {
        drop(connect(addr));
        connections += 1;
    }
    assert_alive(&mut o, "1000 TCP connections opened and dropped", true);

    // Slowloris: many streams each trickling a query one byte at a time,
    // while the server must keep answering everyone else.
    let mut slow: Vec<TcpStream> = (0..200).map(|_| connect(addr)).collect();
    connections += slow.len();
    for i in 0..6 {
        for s in &mut slow {
            let _ = s.write_all(&framed[i..i + 1]);
        }
        assert_alive(&mut o, &format!("slowloris round {i}"), true);
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(slow);
    assert_alive(&mut o, "slowloris closed", true);

    println!(
        "TCP garbage: {connections} connections in {:?}",
        started.elapsed()
    );
}
