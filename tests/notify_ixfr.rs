//! NOTIFY in and IXFR in: a real BIND primary notifies Outpost, which
//! follows by IXFR; NOTIFY that must be refused; an in-process primary with
//! a broken IXFR, which Outpost answers by falling back to AXFR.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};

use common::dns::{Q, query};
use common::outpost::{Outpost, secondary_config};
use common::peers::{Bind, Options, free_port, soa_serial};
use outpost::rr;
use outpost::tsig::{self, Algorithm, Key, StreamVerifier};
use outpost::wire::{self, Message, MessageBuilder, Section};

const ZONE: &str = "example.com.";

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// SOA refresh of an hour: only NOTIFY can make Outpost look sooner.
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

fn key(secret: u8) -> Key {
    Key::new(n("xfr-key."), Algorithm::HmacSha256, vec![secret; 32])
}

fn wait_serial(addr: SocketAddr, serial: u32, within: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < within {
        if soa_serial(addr, ZONE) == Some(serial) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "serial {serial} not served at {addr} within {within:?} (serves {:?})",
        soa_serial(addr, ZONE)
    );
}

fn a_records(addr: SocketAddr, name: &str) -> Vec<String> {
    let m = query(addr, name, RecordType::A, Q::udp());
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

fn soa_record(serial: u32) -> Record {
    let mut w = Vec::new();
    wire::put_name(&mut w, &n("ns1.example.com."));
    wire::put_name(&mut w, &n("hostmaster.example.com."));
    for x in [serial, 3600, 600, 1_209_600, 300] {
        w.extend_from_slice(&x.to_be_bytes());
    }
    rr::record(n(ZONE), RecordType::SOA, 3600, &w).unwrap()
}

/// Sends a NOTIFY for example.com from `source`, signed with `key` if
/// given; returns the RCODE and, for a signed NOTIFY, whether the reply's
/// TSIG verified.
fn send_notify(
    source: &str,
    target: SocketAddr,
    serial: u32,
    key: Option<&Key>,
) -> (ResponseCode, Option<bool>) {
    let id: u16 = rand::random();
    let msg = outpost::notify::notify_message(id, &n(ZONE), &soa_record(serial)).unwrap();
    let (bytes, mac) = match key {
        Some(k) => {
            let s = tsig::sign_request(&msg, k, tsig::now_secs()).unwrap();
            (s.bytes, Some(s.mac))
        }
        None => (msg, None),
    };
    let sock = UdpSocket::bind((source, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&bytes, target).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = sock.recv_from(&mut buf).expect("an answer to the NOTIFY");
    let reply = Message::parse(&buf[..len]).unwrap();
    assert_eq!(reply.header.id, id);
    assert_eq!(reply.header.opcode(), wire::OPCODE_NOTIFY);
    let verified = match (key, mac) {
        (Some(k), Some(mac)) => {
            let mut v = StreamVerifier::new(k, &mac);
            Some(
                v.verify(&buf[..len], &reply, tsig::now_secs())
                    .and_then(|()| v.finish())
                    .is_ok(),
            )
        }
        _ => None,
    };
    let rcode = ResponseCode::from(0, reply.header.rcode_low());
    if rcode == ResponseCode::NoError {
        assert!(reply.header.authoritative(), "NOTIFY answer without AA");
    }
    (rcode, verified)
}

/// BIND changes the zone (ixfr-from-differences) and notifies Outpost,
/// which picks up the change by IXFR within two seconds; the copy on disk
/// serves the new data after a restart.
#[test]
fn bind_notify_leads_to_ixfr_within_two_seconds() {
    let outpost_port = free_port();
    let mut bind = Bind::start(
        &[(ZONE, &zone_text(1, ""))],
        &[],
        &Options {
            ixfr: true,
            notify: vec![SocketAddr::from(([127, 0, 0, 1], outpost_port))],
            ..Options::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = secondary_config(bind.addr(), None, "");
    let mut op = Outpost::start_on(dir.path(), &cfg, outpost_port);
    op.wait_ready(ZONE, Duration::from_secs(10));
    wait_serial(op.addr, 1, Duration::from_secs(10));

    let mut latencies = Vec::new();
    for serial in 2..=4u32 {
        let extra: String = (2..=serial)
            .map(|i| format!("new{i} IN A 192.0.2.{i}\n"))
            .collect();
        bind.update_zone(ZONE, &zone_text(serial, &extra));
        let start = Instant::now();
        let name = format!("new{serial}.example.com.");
        loop {
            if a_records(op.addr, &name) == vec![format!("192.0.2.{serial}")] {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{name} not served within 2 s of the reload\nOutpost log:\n{}\nBIND log:\n{}",
                op.log_text(),
                bind.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        latencies.push(start.elapsed());
    }
    eprintln!("reload-to-served latencies: {latencies:?}");
    assert_eq!(soa_serial(op.addr, ZONE), Some(4));
    let blog = bind.log_text();
    let ixfr_out = blog
        .lines()
        .filter(|l| l.contains("example.com/IN") && l.contains("IXFR ended"))
        .count();
    assert!(ixfr_out >= 3, "BIND did not log 3 IXFRs out:\n{blog}");
    let olog = op.log_text();
    assert!(olog.contains("NOTIFY accepted"), "{olog}");
    assert_eq!(olog.matches("method=IXFR").count(), 3, "{olog}");

    // The persisted copy is the IXFR result: it serves alone after a
    // restart with the primary gone.
    drop(bind);
    drop(op);
    let mut op = Outpost::start_on(dir.path(), &cfg, outpost_port);
    op.wait_ready(ZONE, Duration::from_secs(10));
    assert_eq!(soa_serial(op.addr, ZONE), Some(4));
    for i in 2..=4 {
        assert_eq!(
            a_records(op.addr, &format!("new{i}.example.com.")),
            vec![format!("192.0.2.{i}")]
        );
    }
    assert_eq!(
        a_records(op.addr, "mail.example.com."),
        vec!["192.0.2.25".to_string()]
    );
}

/// Wrongly signed and unauthorised NOTIFY are refused and start nothing;
/// a signed one starts a transfer at once, and so does an unsigned one from
/// the primary's address (the check it starts is signed: see
/// `Handler::notify`).
#[test]
fn notify_refusals_trigger_nothing() {
    let k = key(9);
    let mut bind = Bind::start(
        &[(ZONE, &zone_text(1, ""))],
        std::slice::from_ref(&k),
        &Options {
            transfer_key: Some(k.name.to_string()),
            ..Options::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let mut op = Outpost::start_in(dir.path(), &secondary_config(bind.addr(), Some(&k), ""));
    op.wait_ready(ZONE, Duration::from_secs(10));
    wait_serial(op.addr, 1, Duration::from_secs(10));
    // BIND has serial 2 now but tells nobody.
    bind.update_zone(ZONE, &zone_text(2, "new IN A 192.0.2.2"));
    assert_eq!(soa_serial(bind.addr(), ZONE), Some(2));

    let mut wrong = k.clone();
    wrong.secret[0] ^= 1;
    let other_key = Key::new(n("other-key."), Algorithm::HmacSha256, vec![1; 32]);
    assert_eq!(
        send_notify("127.0.0.2", op.addr, 2, None).0,
        ResponseCode::Refused,
        "unsigned, not from a primary"
    );
    assert_eq!(
        send_notify("127.0.0.1", op.addr, 2, Some(&wrong)).0,
        ResponseCode::NotAuth,
        "wrong secret"
    );
    assert_eq!(
        send_notify("127.0.0.1", op.addr, 2, Some(&other_key)).0,
        ResponseCode::NotAuth,
        "unknown key"
    );
    let (rcode, verified) = send_notify("127.0.0.2", op.addr, 2, Some(&k));
    assert_eq!(rcode, ResponseCode::Refused, "from 127.0.0.2");
    assert_eq!(
        verified,
        Some(true),
        "a refusal to a signed NOTIFY is signed"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        soa_serial(op.addr, ZONE),
        Some(1),
        "a refused NOTIFY triggered a transfer\n{}",
        op.log_text()
    );
    let log = op.log_text();
    assert!(log.contains("NOTIFY refused"), "{log}");
    assert!(!log.contains("NOTIFY accepted"), "{log}");

    let start = Instant::now();
    let (rcode, verified) = send_notify("127.0.0.1", op.addr, 2, Some(&k));
    assert_eq!((rcode, verified), (ResponseCode::NoError, Some(true)));
    let took = wait_serial(op.addr, 2, Duration::from_secs(2));
    eprintln!("signed NOTIFY to serial 2 served: {took:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    // A NOTIFY with a serial we already have starts nothing.
    let (rcode, _) = send_notify("127.0.0.1", op.addr, 2, Some(&k));
    assert_eq!(rcode, ResponseCode::NoError);
    assert!(
        op.log_text().contains("serial not newer than ours"),
        "{}",
        op.log_text()
    );

    // Unsigned from the primary (BIND's default): accepted, and the signed
    // SOA check and transfer it starts bring serial 3 at once.
    bind.update_zone(ZONE, &zone_text(3, "new IN A 192.0.2.3"));
    let (rcode, verified) = send_notify("127.0.0.1", op.addr, 3, None);
    assert_eq!((rcode, verified), (ResponseCode::NoError, None));
    wait_serial(op.addr, 3, Duration::from_secs(3));
    assert!(
        op.log_text()
            .lines()
            .any(|l| l.contains("NOTIFY accepted") && l.contains("signed=false")),
        "{}",
        op.log_text()
    );
}

/// How the in-process primary answers IXFR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ixfr {
    /// The diff deletes a record the zone never had.
    DeletesMissing,
    /// A well-formed diff that ends short of the serial the SOA announced.
    EndsShort {
        at: u32,
    },
    Refused,
}

struct FakeState {
    serial: u32,
    /// Records besides SOA, NS and ns1's A: (owner, last octet).
    hosts: Vec<(String, u8)>,
    previous: Option<(u32, Vec<(String, u8)>)>,
    mode: Ixfr,
    requests: Vec<String>,
}

/// A minimal primary built on `outpost::wire`: SOA over UDP, AXFR and IXFR
/// over TCP, each in a single message.
struct FakePrimary {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

fn a_rec(owner: &str, last: u8) -> Record {
    rr::record(n(owner), RecordType::A, 300, &[192, 0, 2, last]).unwrap()
}

fn base_records() -> Vec<Record> {
    let mut ns = Vec::new();
    wire::put_name(&mut ns, &n("ns1.example.com."));
    vec![
        rr::record(n(ZONE), RecordType::NS, 3600, &ns).unwrap(),
        a_rec("ns1.example.com.", 53),
    ]
}

fn reply(query: &Message, records: &[Record], rcode: u8) -> Vec<u8> {
    let mut b = MessageBuilder::new(
        query.header.id,
        wire::OPCODE_QUERY,
        wire::FLAG_QR | wire::FLAG_AA,
    );
    b.set_rcode(rcode);
    for q in &query.questions {
        b.question(&q.name, q.qtype, q.qclass);
    }
    for r in records {
        b.record(Section::Answer, r).unwrap();
    }
    b.finish().unwrap()
}

impl FakePrimary {
    fn start(serial: u32, hosts: Vec<(String, u8)>, mode: Ixfr) -> FakePrimary {
        let port = free_port();
        let udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let state = Arc::new(Mutex::new(FakeState {
            serial,
            hosts,
            previous: None,
            mode,
            requests: Vec::new(),
        }));
        let st = state.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((len, peer)) = udp.recv_from(&mut buf) {
                let Ok(q) = Message::parse(&buf[..len]) else {
                    continue;
                };
                let serial = st.lock().unwrap().serial;
                let _ = udp.send_to(&reply(&q, &[soa_record(serial)], 0), peer);
            }
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                let Ok(mut s) = conn else { return };
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if s.read_exact(&mut msg).is_err() {
                    continue;
                }
                let Ok(q) = Message::parse(&msg) else {
                    continue;
                };
                let out = FakePrimary::answer(&st, &q);
                let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&out);
                let _ = s.write_all(&framed);
            }
        });
        FakePrimary {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            state,
        }
    }

    fn answer(st: &Mutex<FakeState>, q: &Message) -> Vec<u8> {
        let mut st = st.lock().unwrap();
        let qtype = q.questions[0].qtype;
        st.requests.push(qtype.to_string());
        let full = |serial: u32, hosts: &[(String, u8)]| {
            let mut v = vec![soa_record(serial)];
            v.extend(base_records());
            v.extend(hosts.iter().map(|(o, l)| a_rec(o, *l)));
            v.push(soa_record(serial));
            v
        };
        if qtype == RecordType::AXFR {
            return reply(q, &full(st.serial, &st.hosts), 0);
        }
        let (old_serial, old_hosts) = st.previous.clone().expect("IXFR only after a change");
        let deleted: Vec<Record> = old_hosts
            .iter()
            .filter(|h| !st.hosts.contains(h))
            .map(|(o, l)| a_rec(o, *l))
            .collect();
        let added: Vec<Record> = st
            .hosts
            .iter()
            .filter(|h| !old_hosts.contains(h))
            .map(|(o, l)| a_rec(o, *l))
            .collect();
        let diff = |to: u32, deleted: Vec<Record>| {
            let mut v = vec![soa_record(to), soa_record(old_serial)];
            v.extend(deleted);
            v.push(soa_record(to));
            v.extend(added.iter().cloned());
            v.push(soa_record(to));
            v
        };
        match st.mode {
            Ixfr::Refused => reply(q, &[], 5),
            Ixfr::DeletesMissing => {
                let mut deleted = deleted;
                deleted.push(a_rec("ghost.example.com.", 66));
                reply(q, &diff(st.serial, deleted), 0)
            }
            Ixfr::EndsShort { at } => reply(q, &diff(at, deleted), 0),
        }
    }

    fn change(&self, serial: u32, hosts: Vec<(String, u8)>, mode: Ixfr) {
        let mut st = self.state.lock().unwrap();
        let old = (st.serial, std::mem::replace(&mut st.hosts, hosts));
        st.previous = Some(old);
        st.serial = serial;
        st.mode = mode;
        st.requests.clear();
    }

    fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// A primary whose IXFR is broken, or refused: Outpost falls back to AXFR
/// and ends with the right zone each time.
#[test]
fn broken_ixfr_falls_back_to_axfr() {
    let hosts = |v: &[(&str, u8)]| -> Vec<(String, u8)> {
        v.iter()
            .map(|(o, l)| (format!("{o}.example.com."), *l))
            .collect()
    };
    let primary = FakePrimary::start(10, hosts(&[("a", 1), ("b", 2)]), Ixfr::Refused);
    let dir = tempfile::tempdir().unwrap();
    let mut op = Outpost::start_in(dir.path(), &secondary_config(primary.addr, None, ""));
    op.wait_ready(ZONE, Duration::from_secs(10));
    wait_serial(op.addr, 10, Duration::from_secs(10));

    let steps = [
        (
            20,
            hosts(&[("a", 1), ("c", 3)]),
            Ixfr::DeletesMissing,
            "ghost",
        ),
        (
            40,
            hosts(&[("c", 3), ("d", 4)]),
            Ixfr::EndsShort { at: 30 },
            "end at serial 30",
        ),
        (50, hosts(&[("d", 4), ("e", 5)]), Ixfr::Refused, "REFUSED"),
    ];
    for (serial, want, mode, reason) in steps {
        primary.change(serial, want.clone(), mode);
        let (rcode, _) = send_notify("127.0.0.1", op.addr, serial, None);
        assert_eq!(rcode, ResponseCode::NoError);
        wait_serial(op.addr, serial, Duration::from_secs(5));
        assert_eq!(primary.requests(), ["IXFR", "AXFR"], "serial {serial}");
        for (owner, last) in &want {
            assert_eq!(a_records(op.addr, owner), vec![format!("192.0.2.{last}")]);
        }
        for gone in ["a", "b", "c", "d", "ghost"] {
            let owner = format!("{gone}.example.com.");
            if !want.iter().any(|(o, _)| *o == owner) {
                let m = query(op.addr, &owner, RecordType::A, Q::udp());
                assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{owner}");
            }
        }
        let log = op.log_text();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("falling back to AXFR"))
            .unwrap_or_else(|| panic!("no fallback logged:\n{log}"));
        assert!(line.contains(reason), "serial {serial}: {line}");
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("serial={serial}")) && l.contains("AXFR (fallback")),
            "{log}"
        );
    }
    // The zone on disk is the last AXFR, not a half-applied IXFR. It is
    // written just after the copy goes into service.
    let path = dir.path().join("data/zones/example.com.zone");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("192.0.2.5") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        text.contains("192.0.2.5") && !text.contains("192.0.2.1\n"),
        "{text}"
    );
}
