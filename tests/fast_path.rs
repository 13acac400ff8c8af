//! The fast path against the hickory path, on the real binary: the same
//! zone served twice, once with `OUTPOST_UDP_SLOW_PATH` set, and a few
//! hundred queries over UDP, then over TCP (every owner and type of a zone
//! with every answer rule, nonexistent names, wildcards, DNSSEC with DO,
//! EDNS sizes from none to 4096, randomised case) compared answer by
//! answer.

mod common;
mod dnssec_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

use common::dns::exchange_timeout;
use common::peers::free_port;

const DIFF_ZONE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/diff.example.zone");

/// An outpost child, killed by PID on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, zone_file: &Path, slow: bool) -> Server {
    let port = free_port();
    let dir = dir.join(if slow { "slow" } else { "fast" });
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("outpost.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{}/data"

[[zone]]
name = "example.com"
primaries = []
seed_file = "{}"
"#,
            dir.display(),
            zone_file.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost"));
    cmd.args(["serve", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("log")).unwrap());
    if slow {
        cmd.env("OUTPOST_UDP_SLOW_PATH", "1");
    } else {
        cmd.env_remove("OUTPOST_UDP_SLOW_PATH");
    }
    let server = Server {
        child: cmd.spawn().expect("start outpost"),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    for _ in 0..500 {
        let q = query("example.com.", RecordType::SOA, Some((1232, false)), 1);
        if exchange_timeout(server.addr, &q, false, Duration::from_millis(100)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "outpost not answering: {}",
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
}

/// EDNS payload size and DO bit; `None` sends no OPT.
type EdnsChoice = Option<(u16, bool)>;

/// A query built byte by byte, RD and CD set so that their echo is checked.
fn query(name: &str, qtype: RecordType, edns: EdnsChoice, id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&u16::from(qtype).to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    if let Some((size, dnssec_ok)) = edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    m
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Flips the case of letters at random (the 0x20 trick of resolvers).
fn mix_case(name: &str, rng: &mut Lcg) -> String {
    name.chars()
        .map(|c| {
            if rng.next().is_multiple_of(2) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn section(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| r.to_string().to_lowercase())
        .collect();
    v.sort();
    v
}

/// Everything a client can tell apart, names compared without case.
fn semantic(m: &Message) -> String {
    let h = &m.metadata;
    let edns = m.edns.as_ref().map(|e| {
        let mut options: Vec<String> = e
            .options()
            .as_ref()
            .iter()
            .map(|(c, o)| format!("{c:?}={o:?}"))
            .collect();
        options.sort();
        (e.max_payload(), e.flags().dnssec_ok, e.version(), options)
    });
    format!(
        "id={} rcode={} aa={} tc={} rd={} cd={} ra={} ad={}\nquestion={:?}\nanswer={:#?}\nauthority={:#?}\nadditional={:#?}\nedns={edns:?}",
        h.id,
        h.response_code,
        h.authoritative,
        h.truncation,
        h.recursion_desired,
        h.checking_disabled,
        h.recursion_available,
        h.authentic_data,
        m.queries,
        section(&m.answers),
        section(&m.authorities),
        section(&m.additionals),
    )
}

/// Names and types to ask: every owner and type of the zone, plus names
/// that do not exist, wildcard matches, names below cuts and DNAMEs.
fn questions(zone_text: &str) -> Vec<(String, RecordType)> {
    let origin = Name::from_ascii("example.com.").unwrap();
    let records = outpost::zonefile::parse_str(zone_text, &origin, "test zone").unwrap();
    let mut names: Vec<String> = records.iter().map(|r| r.name.to_string()).collect();
    names.extend(
        [
            "nothere.example.com.",
            "deep.nothere.example.com.",
            "anything.users.example.com.",
            "x.y.users.example.com.",
            "host.dept.example.com.",
            "www.signed.example.com.",
            "www.secure.example.com.",
            "a.old.example.com.",
            "b.ent.example.com.",
            "ent.example.com.",
            "foo.mx.example.com.",
            "www.example.org.",
        ]
        .map(String::from),
    );
    names.sort();
    names.dedup();
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::NS,
        RecordType::TXT,
        RecordType::SOA,
        RecordType::CNAME,
        RecordType::ANY,
        RecordType::SRV,
        RecordType::DS,
        RecordType::DNSKEY,
        RecordType::NSEC,
        RecordType::RRSIG,
        RecordType::CAA,
    ];
    let mut out = Vec::new();
    for n in &names {
        for t in types {
            out.push((n.clone(), t));
        }
    }
    out
}

/// Runs the questions against both servers; returns how many answers were
/// compared, how many were truncated, and how many were checked for case.
/// `always` are asked with every EDNS choice on top: the big answers that
/// must truncate at some sizes.
fn compare(
    zone_file: &Path,
    zone_text: &str,
    always: &[(&str, RecordType)],
    seed: u64,
    limit: usize,
    tcp: bool,
) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let fast = start(dir.path(), zone_file, false);
    let slow = start(dir.path(), zone_file, true);
    let mut rng = Lcg(seed);
    let mut qs = questions(zone_text);
    // A fixed shuffle, then the first `limit`.
    for i in (1..qs.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        qs.swap(i, j);
    }
    qs.truncate(limit);
    let edns_choices = [
        None,
        Some((512, false)),
        Some((1232, false)),
        Some((4096, true)),
        Some((1232, true)),
        Some((100, true)),
    ];
    let mut asked: Vec<(String, RecordType, EdnsChoice)> = qs
        .into_iter()
        .enumerate()
        .map(|(i, (n, t))| (n, t, edns_choices[i % edns_choices.len()]))
        .collect();
    for (n, t) in always {
        for e in edns_choices {
            asked.push((n.to_string(), *t, e));
        }
    }
    let (mut compared, mut truncated, mut case_checked) = (0, 0, 0);
    // Twice: the second time the fast path answers from its cache, for
    // queries in another case and with other IDs.
    for (i, (name, qtype, edns)) in asked.iter().chain(asked.iter()).enumerate() {
        let edns = *edns;
        let name = mix_case(name, &mut rng);
        let wire = query(&name, *qtype, edns, i as u16);
        let timeout = Duration::from_secs(2);
        let a = exchange_timeout(fast.addr, &wire, tcp, timeout).expect("fast path answer");
        let b = exchange_timeout(slow.addr, &wire, tcp, timeout).expect("hickory path answer");
        let ma = Message::from_vec(&a).expect("fast path answer parses");
        let mb = Message::from_vec(&b).expect("hickory path answer parses");
        assert_eq!(
            semantic(&ma),
            semantic(&mb),
            "{name} {qtype} edns {edns:?} tcp {tcp}: fast (left) and hickory (right) differ"
        );
        assert!(a.len() <= b.len(), "{name} {qtype}: fast answer larger");
        // The question is echoed byte for byte, case included.
        let qlen = wire.len() - 12 - if edns.is_some() { 11 } else { 0 };
        assert_eq!(&a[12..12 + qlen], &wire[12..12 + qlen], "{name} {qtype}");
        // An answer owned by the query name carries the client's case.
        if let Some(r) = ma
            .answers
            .first()
            .filter(|r| r.name.to_string().eq_ignore_ascii_case(&name))
        {
            assert_eq!(r.name.to_string(), name, "{qtype}: 0x20 case lost");
            case_checked += 1;
        }
        truncated += usize::from(ma.metadata.truncation);
        compared += 1;
    }
    (compared, truncated, case_checked)
}

#[test]
fn fast_path_answers_like_the_hickory_path() {
    let text = std::fs::read_to_string(DIFF_ZONE).unwrap();
    let always = [
        ("big.example.com.", RecordType::TXT),
        ("huge.example.com.", RecordType::TXT),
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::NS),
        ("www.dept.example.com.", RecordType::A),
    ];
    let (compared, truncated, cased) = compare(Path::new(DIFF_ZONE), &text, &always, 7, 400, false);
    assert_eq!(compared, 2 * (400 + always.len() * 6));
    assert!(
        truncated >= 5,
        "only {truncated} truncated answers compared"
    );
    assert!(cased >= 50, "only {cased} answers checked for case");
}

#[test]
fn fast_path_answers_like_the_hickory_path_over_tcp() {
    let text = std::fs::read_to_string(DIFF_ZONE).unwrap();
    let always = [
        ("big.example.com.", RecordType::TXT),
        ("huge.example.com.", RecordType::TXT),
        ("example.com.", RecordType::ANY),
        ("www.dept.example.com.", RecordType::A),
    ];
    let (compared, truncated, cased) = compare(Path::new(DIFF_ZONE), &text, &always, 17, 300, true);
    assert_eq!(compared, 2 * (300 + always.len() * 6));
    assert_eq!(truncated, 0, "nothing is cut over TCP");
    assert!(cased >= 40, "only {cased} answers checked for case");
}

#[test]
fn fast_path_answers_like_the_hickory_path_signed() {
    for mode in [dnssec_support::Mode::Nsec, dnssec_support::Mode::Nsec3] {
        let signed = dnssec_support::sign(dnssec_support::ZONE_TEXT, mode);
        let always = [
            ("example.com.", RecordType::DNSKEY),
            ("example.com.", RecordType::MX),
            ("nothere.example.com.", RecordType::A),
            ("www.secure.example.com.", RecordType::A),
        ];
        let (compared, truncated, cased) =
            compare(&signed.file, &signed.text, &always, 11, 300, false);
        assert_eq!(compared, 2 * (300 + always.len() * 6));
        assert!(
            truncated >= 3,
            "{mode:?}: only {truncated} truncated answers compared"
        );
        assert!(
            cased >= 30,
            "{mode:?}: only {cased} answers checked for case"
        );
    }
}
