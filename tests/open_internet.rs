//! Outpost facing the open internet: spoofed floods (NOTIFY, UDP AXFR,
//! amplification), response rate limiting with cookies, identity queries
//! and header bits. The real binary, on loopback; dig and kdig as clients.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

use common::outpost::Outpost;
use common::peers::free_port;
use outpost::control::request;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/zones/example.com.zone");
const SECRET: &str = "000102030405060708090a0b0c0d0e0f";

fn config(extra: &str, control: Option<SocketAddr>) -> String {
    let control = control.map_or(String::new(), |c| format!("control = \"{c}\"\n"));
    format!(
        r#"[server]
listen = ["127.0.0.1:{{port}}"]
data_dir = "{{dir}}/data"
udp_workers = 2
{control}
[[zone]]
name = "example.com"
primaries = ["127.0.0.1:1"]
seed_file = "{SEED}"

{extra}"#
    )
}

fn start(extra: &str, control: Option<SocketAddr>) -> (tempfile::TempDir, Outpost) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outpost::start_in(dir.path(), &config(extra, control));
    o.wait_ready("example.com.", Duration::from_secs(15));
    (dir, o)
}

fn message(name: &str, qtype: RecordType, op: OpCode, options: Vec<EdnsOption>) -> Message {
    let mut m = Message::new(rand::random(), MessageType::Query, op);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(true);
    for o in options {
        e.options_mut().insert(o);
    }
    m.edns = Some(e);
    m
}

fn cookie_of(m: &Message) -> Option<Vec<u8>> {
    m.edns
        .as_ref()?
        .options()
        .as_ref()
        .iter()
        .find_map(|(_, o)| match o {
            EdnsOption::Unknown(10, d) => Some(d.clone()),
            _ => None,
        })
}

fn ask(addr: SocketAddr, from: &UdpSocket, m: &Message) -> Option<Message> {
    from.send_to(&m.to_bytes().unwrap(), addr).unwrap();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        match from.recv_from(&mut buf) {
            Ok((n, _)) => {
                let r = Message::from_bytes(&buf[..n]).unwrap();
                if r.metadata.id == m.metadata.id {
                    return Some(r);
                }
            }
            Err(_) => return None,
        }
    }
    None
}

fn udp_from(ip: [u8; 4]) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddr::from((ip, 0))).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

fn metrics(control: SocketAddr) -> String {
    request(control, "GET", "/metrics", None).unwrap()
}

/// Sends `count` datagrams made by `make(i)` from one socket, in windows
/// of 200 so the server's queue never overflows, and returns the replies.
fn flood(addr: SocketAddr, count: usize, make: impl Fn(usize) -> Vec<u8>) -> usize {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut replies = 0;
    for start in (0..count).step_by(200) {
        let end = (start + 200).min(count);
        for i in start..end {
            s.send_to(&make(i), addr).unwrap();
        }
        for _ in start..end {
            if s.recv_from(&mut buf).is_err() {
                break;
            }
            replies += 1;
        }
    }
    replies
}

fn log_lines(o: &Outpost, needle: &str) -> usize {
    o.log_text().lines().filter(|l| l.contains(needle)).count()
}

/// 100,000 spoofed NOTIFYs for random names and 100,000 UDP AXFR queries:
/// `/metrics` keeps its series (one `_other` line for all those names) and
/// the log a handful of lines a second, with the suppressed counts.
#[test]
fn spoofed_notify_and_axfr_floods_leave_metrics_and_logs_bounded() {
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (_dir, o) = start("", Some(control));
    let before: BTreeSet<String> = series(&metrics(control));
    let started = Instant::now();
    let n = 100_000;
    let answered = flood(o.addr, n, |i| {
        let mut m = Message::new(i as u16, MessageType::Query, OpCode::Notify);
        let name = format!("r{i}-{}.example.", rand::random::<u32>());
        m.add_query(Query::query(
            Name::from_ascii(&name).unwrap(),
            RecordType::SOA,
        ));
        m.to_bytes().unwrap()
    });
    let axfr = flood(o.addr, n, |i| {
        let mut m = Message::new(i as u16, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::AXFR,
        ));
        m.to_bytes().unwrap()
    });
    let seconds = started.elapsed().as_secs() + 2;
    // The last window's counts are logged within a second of its end.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        answered > n / 2 && axfr > n / 2,
        "{answered} {axfr} answered"
    );
    let after = metrics(control);
    let grown: Vec<String> = series(&after).difference(&before).cloned().collect();
    assert!(
        grown.iter().all(|s| s.contains("zone=\"_other\"")
            || s.starts_with("outpost_response_size")
            || s.starts_with("outpost_queries_total{zone=\"example.com.\"")),
        "series added by the flood: {grown:?}"
    );
    assert!(
        after.contains("outpost_notify_received_total{zone=\"_other\",result=\"refused\"}"),
        "{after}"
    );
    assert!(
        grown.len() <= 20,
        "metrics grew from {} series to {}",
        before.len(),
        series(&after).len()
    );
    let notify_lines = log_lines(&o, "NOTIFY refused");
    let axfr_lines = log_lines(&o, "transfer refused");
    let suppressed = log_lines(&o, "similar warnings suppressed");
    eprintln!(
        "{notify_lines} NOTIFY lines, {axfr_lines} AXFR lines, {suppressed} suppression reports over {seconds} s"
    );
    let most = (5 * (seconds + 1)) as usize;
    assert!(
        notify_lines <= most && axfr_lines <= most,
        "{}",
        o.log_text()
    );
    assert!(notify_lines >= 1 && axfr_lines >= 1);
    assert!(suppressed >= 2, "the suppressed counts are reported");
    let text = o.log_text();
    let reported: u64 = text
        .lines()
        .filter(|l| l.contains("similar warnings suppressed"))
        .filter_map(|l| {
            l.split("suppressed=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(
        reported as usize + notify_lines + axfr_lines >= answered + axfr - 10,
        "every refused request is logged or counted: {reported} + {notify_lines} + {axfr_lines} of {}",
        answered + axfr
    );
}

/// The metric series (names with labels) of an exposition.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s.to_string()))
        .collect()
}

/// A spoofed flood from 127.0.0.0/8 (sockets bound to many loopback
/// addresses in two /24s) asking for the largest answers: with RRL on,
/// the octets sent back are at most the octets received; a real client
/// in the same /24 with a valid server cookie keeps getting full answers.
#[test]
fn rrl_keeps_amplification_below_one_and_lets_cookie_clients_through() {
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let rrl = format!(
        "[rrl]\nresponses_per_second = 5\nwindow = \"3s\"\nslip = 2\nexempt = []\n\n[cookies]\nsecret = \"{SECRET}\"\n"
    );
    let (_dir, o) = start(&rrl, Some(control));
    let sources: Vec<UdpSocket> = (0..64u8)
        .map(|i| udp_from([127, 0, 1 + i % 2, 10 + i]))
        .collect();
    for s in &sources {
        s.set_nonblocking(true).unwrap();
    }
    // The real client, in the flood's first /24.
    let client = udp_from([127, 0, 1, 250]);
    let first = ask(
        o.addr,
        &client,
        &message(
            "example.com.",
            RecordType::MX,
            OpCode::Query,
            vec![EdnsOption::Unknown(10, vec![7; 8])],
        ),
    )
    .expect("an answer to the first cookie query");
    let cookie = cookie_of(&first).expect("a server cookie");
    assert_eq!(cookie.len(), 24);
    let queries: Vec<Vec<u8>> = [
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::NS),
        ("example.com.", RecordType::ANY),
        ("nothere.example.com.", RecordType::A),
    ]
    .iter()
    .map(|(n, t)| message(n, *t, OpCode::Query, vec![]).to_bytes().unwrap())
    .collect();
    let (mut sent, mut received) = (0usize, 0usize);
    let mut buf = [0u8; 4096];
    let (mut ok, mut asked) = (0, 0);
    let end = Instant::now() + Duration::from_secs(4);
    let mut i = 0;
    while Instant::now() < end {
        for _ in 0..200 {
            let q = &queries[i % queries.len()];
            let s = &sources[i % sources.len()];
            if s.send_to(q, o.addr).is_ok() {
                sent += q.len();
            }
            i += 1;
        }
        for s in &sources {
            while let Ok((n, _)) = s.recv_from(&mut buf) {
                received += n;
            }
        }
        if i % 2000 == 0 {
            let q = message(
                "example.com.",
                RecordType::MX,
                OpCode::Query,
                vec![EdnsOption::Unknown(10, cookie.clone())],
            );
            asked += 1;
            // A real client retries a lost datagram (the flood may fill
            // the socket's queue on a slow machine); what it gets back must
            // be the full answer, never a truncated or BADCOOKIE one.
            let reply = (0..3).find_map(|_| ask(o.addr, &client, &q));
            if let Some(r) = reply {
                assert!(
                    r.metadata.response_code == ResponseCode::NoError
                        && !r.metadata.truncation
                        && r.answers.len() == 3,
                    "the cookie client was limited: {r:?}"
                );
                ok += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(4));
    }
    std::thread::sleep(Duration::from_millis(300));
    for s in &sources {
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            received += n;
        }
    }
    let amplification = received as f64 / sent as f64;
    let m = metrics(control);
    eprintln!(
        "flood: {sent} octets in, {received} out, amplification {amplification:.3}; cookie client {ok}/{asked}"
    );
    assert!(
        sent > 100_000,
        "the flood was too small to say anything: {sent}"
    );
    assert!(amplification <= 1.0, "amplification {amplification:.3}");
    assert!(
        asked >= 5 && ok == asked,
        "cookie client answered {ok} of {asked}"
    );
    let dropped = m
        .lines()
        .find(|l| l.starts_with("outpost_rrl_limited_total{action=\"dropped\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(dropped > 1000.0, "{m}");
    assert!(m.contains("outpost_rrl_cookie_exempt_total "), "{m}");
}

fn run(tool: &str, args: &[String]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (install bind9-dnsutils / knot-dnsutils)"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dig +cookie` (BIND's client) and `kdig +cookie` (Knot's) get a server
/// cookie; sent back, it exempts them from a rate limit that stops plain
/// queries. Another instance with the same secret accepts it too; one
/// with another secret does not, and answers BADCOOKIE instead of TC.
#[test]
fn cookies_interoperate_with_dig_and_kdig_and_across_instances() {
    let strict = |secret: &str| {
        format!(
            "[rrl]\nresponses_per_second = 1\nwindow = \"5s\"\nslip = 1\nexempt = []\n\n[cookies]\nsecret = \"{secret}\"\n"
        )
    };
    let (_a_dir, a) = start(&strict(SECRET), None);
    let (_b_dir, b) = start(&strict(SECRET), None);
    let (_c_dir, c) = start(&strict("ffeeddccbbaa99887766554433221100"), None);
    let port = |o: &Outpost| format!("-p{}", o.addr.port());
    let out = run(
        "dig",
        &[
            "@127.0.0.1".into(),
            port(&a),
            "+cookie".into(),
            "+norec".into(),
            "example.com".into(),
            "SOA".into(),
        ],
    );
    let cookie = out
        .lines()
        .find_map(|l| l.strip_prefix("; COOKIE: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no cookie in dig's answer:\n{out}"))
        .to_string();
    assert!(
        out.contains("(good)"),
        "dig did not find its client cookie: {out}"
    );
    assert_eq!(cookie.len(), 48, "{cookie}");
    for (name, o) in [("a", &a), ("b", &b)] {
        // Plain queries from this address use up the rate at once...
        let plain = udp_from([127, 0, 0, 1]);
        let mut limited = 0;
        for _ in 0..10 {
            let r = ask(
                o.addr,
                &plain,
                &message("example.com.", RecordType::SOA, OpCode::Query, vec![]),
            );
            if r.is_none_or(|r| r.metadata.truncation) {
                limited += 1;
            }
        }
        assert!(
            limited >= 5,
            "{name}: plain queries not limited ({limited})"
        );
        // ... but dig and kdig with the cookie are answered in full.
        for _ in 0..3 {
            let out = run(
                "dig",
                &[
                    "@127.0.0.1".into(),
                    port(o),
                    format!("+cookie={cookie}"),
                    "+norec".into(),
                    "+ignore".into(),
                    "example.com".into(),
                    "SOA".into(),
                ],
            );
            assert!(
                out.contains("status: NOERROR")
                    && !out.contains(" tc")
                    && out.contains("ANSWER: 1"),
                "{name}: dig with the cookie:\n{out}"
            );
            let out = run(
                "kdig",
                &[
                    "@127.0.0.1".into(),
                    "-p".into(),
                    o.addr.port().to_string(),
                    format!("+cookie={cookie}"),
                    "+norec".into(),
                    "example.com".into(),
                    "SOA".into(),
                ],
            );
            assert!(
                out.contains("NOERROR") && !out.contains(" tc;") && out.contains("ANSWER: 1"),
                "{name}: kdig with the cookie:\n{out}"
            );
        }
    }
    // Another secret: the cookie does not verify; over the rate, the
    // answer is BADCOOKIE with a fresh cookie.
    let s = udp_from([127, 0, 0, 1]);
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(cookie.as_bytes())
        .unwrap();
    let mut badcookie = 0;
    for _ in 0..10 {
        let q = message(
            "example.com.",
            RecordType::SOA,
            OpCode::Query,
            vec![EdnsOption::Unknown(10, bytes.clone())],
        );
        if let Some(r) = ask(c.addr, &s, &q) {
            let rcode = u16::from(r.metadata.response_code);
            if rcode == 23 {
                badcookie += 1;
                assert_ne!(
                    cookie_of(&r).unwrap(),
                    bytes,
                    "a fresh cookie comes with BADCOOKIE"
                );
            }
        }
    }
    assert!(badcookie >= 5, "{badcookie} BADCOOKIE answers");
    // A malformed cookie is a format error (RFC 7873 §5.2.2).
    let r = ask(
        a.addr,
        &s,
        &message(
            "example.com.",
            RecordType::SOA,
            OpCode::Query,
            vec![EdnsOption::Unknown(10, vec![1; 12])],
        ),
    )
    .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
}

/// CHAOS identity queries, NSID, and the header bits an authoritative
/// answer copies or clears.
#[test]
fn identity_nsid_and_header_bits() {
    let (_dir, o) = start(
        "[identity]\nidentity = \"outpost-test-1\"\nversion = \"\"\n",
        None,
    );
    let s = udp_from([127, 0, 0, 1]);
    for name in ["id.server.", "hostname.bind.", "ID.Server."] {
        let mut m = message(name, RecordType::TXT, OpCode::Query, vec![]);
        m.queries[0].set_query_class(DNSClass::CH);
        let r = ask(o.addr, &s, &m).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name}");
        let RData::TXT(txt) = &r.answers[0].data else {
            panic!("{r:?}")
        };
        assert_eq!(txt.to_string(), "outpost-test-1");
        assert_eq!(r.answers[0].dns_class, DNSClass::CH);
    }
    for name in ["version.bind.", "version.server."] {
        let mut m = message(name, RecordType::TXT, OpCode::Query, vec![]);
        m.queries[0].set_query_class(DNSClass::CH);
        let r = ask(o.addr, &s, &m).unwrap();
        assert_eq!(
            r.metadata.response_code,
            ResponseCode::Refused,
            "{name} hidden"
        );
    }
    // NSID with dig, over the fast path and over TCP.
    for tcp in ["+notcp", "+tcp"] {
        let out = run(
            "dig",
            &[
                "@127.0.0.1".into(),
                format!("-p{}", o.addr.port()),
                "+nsid".into(),
                tcp.into(),
                "example.com".into(),
                "SOA".into(),
            ],
        );
        assert!(
            out.contains("; NSID: ") && out.contains("outpost-test-1"),
            "{tcp}:\n{out}"
        );
        assert!(out.contains("status: NOERROR"), "{out}");
    }
    // CD is cleared in authoritative answers (RFC 4035 §3.1.6); RD copied.
    for edns in [true, false] {
        let mut m = message("example.com.", RecordType::MX, OpCode::Query, vec![]);
        if !edns {
            m.edns = None;
        }
        m.metadata.checking_disabled = true;
        m.metadata.recursion_desired = true;
        let r = ask(o.addr, &s, &m).unwrap();
        assert!(r.metadata.authoritative && r.metadata.recursion_desired);
        assert!(!r.metadata.checking_disabled, "CD copied (edns {edns})");
    }
    // An unknown opcode with every flag set: NOTIMP, only RD copied.
    let mut q = message("example.com.", RecordType::SOA, OpCode::Query, vec![])
        .to_bytes()
        .unwrap();
    q[2] = 0x7F; // opcode 15, AA, TC, RD
    q[3] = 0xF0; // RA, Z, AD, CD
    s.send_to(&q, o.addr).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = s.recv_from(&mut buf).expect("an answer to opcode 15");
    assert!(n >= 12);
    assert_eq!(
        buf[2],
        0x80 | (15 << 3) | 0x01,
        "QR, opcode 15, RD: {:02x}",
        buf[2]
    );
    assert_eq!(buf[3], 0x04, "no RA, Z, AD or CD; NOTIMP: {:02x}", buf[3]);
}

/// RFC 9018 between implementations: BIND and Outpost sharing a cookie
/// secret accept each other's server cookies. BIND makes one for dig, and
/// Outpost, rate-limiting everyone else, lets dig through with it; Outpost
/// makes one, and BIND, requiring a valid server cookie, answers with it.
#[test]
fn server_cookies_interoperate_with_bind() {
    use common::peers::{Bind, Options};
    let bind = Bind::start(
        &[("example.com.", &std::fs::read_to_string(SEED).unwrap())],
        &[],
        &Options {
            bind_options: format!(
                "cookie-algorithm siphash24; cookie-secret \"{SECRET}\"; require-server-cookie yes;"
            ),
            ..Options::default()
        },
    );
    let (_dir, o) = start(
        &format!(
            "[rrl]\nresponses_per_second = 1\nwindow = \"5s\"\nslip = 1\nexempt = []\n\n[cookies]\nsecret = \"{SECRET}\"\n"
        ),
        None,
    );
    let dig = |port: u16, cookie: &str| {
        run(
            "dig",
            &[
                "@127.0.0.1".into(),
                format!("-p{port}"),
                if cookie.is_empty() {
                    "+cookie".into()
                } else {
                    format!("+cookie={cookie}")
                },
                "+nobadcookie".into(),
                "+norec".into(),
                "+ignore".into(),
                "example.com".into(),
                "SOA".into(),
            ],
        )
    };
    let cookie_in = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("; COOKIE: "))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no cookie:\n{out}"))
    };
    // BIND's cookie, to Outpost over its rate.
    let from_bind = cookie_in(&dig(bind.port, ""));
    let plain = udp_from([127, 0, 0, 1]);
    for _ in 0..10 {
        ask(
            o.addr,
            &plain,
            &message("example.com.", RecordType::SOA, OpCode::Query, vec![]),
        );
    }
    for _ in 0..3 {
        let out = dig(o.addr.port(), &from_bind);
        assert!(
            out.contains("status: NOERROR") && !out.contains(" tc") && out.contains("ANSWER: 1"),
            "Outpost did not take BIND's cookie {from_bind}:\n{out}"
        );
    }
    // Outpost's cookie, to BIND, which requires a valid one. (A cookie BIND
    // does not accept gets BADCOOKIE.)
    let from_outpost = cookie_in(&dig(o.addr.port(), ""));
    let out = dig(bind.port, &from_outpost);
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 1"),
        "BIND did not take Outpost's cookie {from_outpost}:\n{out}"
    );
    let forged = format!("{}{}", &from_outpost[..32], "0000000000000000");
    let out = dig(bind.port, &forged);
    assert!(
        out.contains("BADCOOKIE"),
        "BIND accepted a forged cookie:\n{out}"
    );
}
