//! State transitions the answers must follow at once: a reload that
//! changes the expiry policy, a home primary coming back after the zone
//! expired (with NOTIFY, and without), a rotated TSIG secret, and what a
//! reload cannot apply.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use common::dns::{Q, query};
use common::outpost::{Outpost, health, key_block};
use common::peers::{Bind, Options, free_port, soa_serial};
use common::wait_until;
use outpost::control::request;
use outpost::tsig::{self, Algorithm, Key};
use outpost::zone::Limits;

const ZONE: &str = "example.com.";

/// Refresh and retry an hour: only NOTIFY, or the expired zone's own
/// quick retries, make Outpost look sooner. Expire 8 s.
fn zone_text(serial: u32) -> String {
    format!(
        "$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster {serial} 3600 3600 8 300
  IN NS ns1
  IN MX 900 mx.partner.example.net.
ns1 IN A 192.0.2.53
"
    )
}

fn config(primary: SocketAddr, control: SocketAddr, zone_extra: &str) -> String {
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
{zone_extra}"
    )
}

fn write_config(op: &Outpost, text: &str) {
    std::fs::write(
        &op.config,
        text.replace("{port}", &op.addr.port().to_string())
            .replace("{dir}", &op.dir.display().to_string()),
    )
    .unwrap();
}

fn rcode(addr: SocketAddr) -> ResponseCode {
    query(addr, ZONE, RecordType::MX, Q::udp())
        .metadata
        .response_code
}

fn reload(control: SocketAddr) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["reload", "--control", &control.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An expired zone reloaded to `keep-serving` answers again within a
/// second, and SERVFAILs again within a second of the reverse reload;
/// `/health` says the same as the answers each time.
#[test]
fn expiry_policy_follows_a_reload_at_once() {
    let bind = Bind::start(&[(ZONE, &zone_text(1))], &[], &Options::default());
    let dir = tempfile::tempdir().unwrap();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let servfail = config(bind.addr(), control, "");
    let keep = config(bind.addr(), control, "on_expire = \"keep-serving\"\n");
    let mut op = Outpost::start_in(dir.path(), &servfail);
    op.wait_ready(ZONE, Duration::from_secs(10));
    wait_until("transferred", Duration::from_secs(10), || {
        soa_serial(op.addr, ZONE) == Some(1)
    });
    drop(bind);
    wait_until("expired", Duration::from_secs(20), || {
        rcode(op.addr) == ResponseCode::ServFail
    });
    let h = health(control);
    assert!(h.contains("degraded") && h.contains("expired"), "{h}");

    write_config(&op, &keep);
    let report = reload(control);
    assert!(report.contains("1 changed"), "{report}");
    let took = wait_until(
        "answered after keep-serving",
        Duration::from_secs(1),
        || rcode(op.addr) == ResponseCode::NoError,
    );
    eprintln!("keep-serving in force after {took:?}");
    let h = health(control);
    assert!(h.starts_with("ok"), "{h}");
    let status: serde_json::Value =
        serde_json::from_str(&request(control, "GET", "/status", None).unwrap()).unwrap();
    assert_eq!(status["zones"][0]["state"], "expired-serving");
    assert_eq!(status["zones"][0]["served"], true);

    write_config(&op, &servfail);
    reload(control);
    let took = wait_until("SERVFAIL after servfail", Duration::from_secs(1), || {
        rcode(op.addr) == ResponseCode::ServFail
    });
    eprintln!("servfail in force after {took:?}");
    let h = health(control);
    assert!(h.contains("expired"), "{h}");
    let status: serde_json::Value =
        serde_json::from_str(&request(control, "GET", "/status", None).unwrap()).unwrap();
    assert_eq!(status["zones"][0]["state"], "expired");
    assert_eq!(status["zones"][0]["served"], false);
}

/// The home primary comes back with the serial Outpost holds: its NOTIFY
/// revives the expired zone within a second. Then, without NOTIFY, the
/// expired zone's own quick retries find it.
#[test]
fn a_returning_primary_revives_an_expired_zone() {
    let outpost_port = free_port();
    let bind_port = free_port();
    let notifying = Options {
        port: Some(bind_port),
        notify: vec![SocketAddr::from(([127, 0, 0, 1], outpost_port))],
        ..Options::default()
    };
    let bind = Bind::start(&[(ZONE, &zone_text(7))], &[], &notifying);
    let dir = tempfile::tempdir().unwrap();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut op = Outpost::start_on(dir.path(), &config(bind.addr(), control, ""), outpost_port);
    op.wait_ready(ZONE, Duration::from_secs(10));
    wait_until("transferred", Duration::from_secs(10), || {
        soa_serial(op.addr, ZONE) == Some(7)
    });
    drop(bind);
    wait_until("expired", Duration::from_secs(20), || {
        rcode(op.addr) == ResponseCode::ServFail
    });
    // Let the quick retries grow past a second.
    std::thread::sleep(Duration::from_secs(7));

    let bind = Bind::start(&[(ZONE, &zone_text(7))], &[], &notifying);
    let started = Instant::now();
    wait_until("answered after the NOTIFY", Duration::from_secs(5), || {
        soa_serial(op.addr, ZONE) == Some(7)
    });
    let took = started.elapsed();
    let log = op.log_text();
    assert!(log.contains("NOTIFY accepted"), "{log}");
    assert!(
        took < Duration::from_secs(1),
        "revived after {took:?}\n{log}"
    );
    let m = query(op.addr, ZONE, RecordType::MX, Q::udp());
    assert!(m.metadata.authoritative);

    // Home goes away again; the zone expires; home comes back silently.
    drop(bind);
    wait_until("expired again", Duration::from_secs(20), || {
        rcode(op.addr) == ResponseCode::ServFail
    });
    let silent = Options {
        port: Some(bind_port),
        ..Options::default()
    };
    let _bind = Bind::start(&[(ZONE, &zone_text(7))], &[], &silent);
    let took = wait_until(
        "found by the quick retries",
        Duration::from_secs(40),
        || soa_serial(op.addr, ZONE) == Some(7),
    );
    eprintln!("found without NOTIFY after {took:?}");
}

fn key(secret: u8) -> Key {
    Key::new(
        Name::from_ascii("xfr-key.").unwrap(),
        Algorithm::HmacSha256,
        vec![secret; 32],
    )
}

fn axfr_with(addr: SocketAddr, key: &Key) -> Result<usize, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(outpost::xfr::client::axfr(
        addr,
        &Name::from_ascii(ZONE).unwrap(),
        Some(key),
        Limits::default(),
        Duration::from_secs(5),
        Duration::from_secs(5),
    ))
    .map(|r| r.records.len())
    .map_err(|e| e.to_string())
}

/// A signed NOTIFY for the zone; the RCODE of the answer.
fn notify_signed(target: SocketAddr, key: &Key) -> ResponseCode {
    let soa = outpost::rr::record(Name::from_ascii(ZONE).unwrap(), RecordType::SOA, 3600, &{
        let mut w = Vec::new();
        outpost::wire::put_name(&mut w, &Name::from_ascii("ns1.example.com.").unwrap());
        outpost::wire::put_name(&mut w, &Name::from_ascii("h.example.com.").unwrap());
        for x in [1u32, 3600, 3600, 8, 300] {
            w.extend_from_slice(&x.to_be_bytes());
        }
        w
    })
    .unwrap();
    let msg = outpost::notify::notify_message(7, &Name::from_ascii(ZONE).unwrap(), &soa).unwrap();
    let signed = tsig::sign_request(&msg, key, tsig::now_secs()).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&signed.bytes, target).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let reply = outpost::wire::Message::parse(&buf[..n]).unwrap();
    ResponseCode::from(0, reply.header.rcode_low())
}

/// A rotated secret, reloaded, is the only one that works: for transfers
/// out and for NOTIFY in. And the reload names what it could not apply,
/// and applies `log_level` at once.
#[test]
fn a_reload_applies_rotated_keys_and_says_what_waits() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.zone");
    std::fs::write(&seed, zone_text(1)).unwrap();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cfg = |k: &Key, extra: &str| {
        format!(
            "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"
log_level = \"info\"
{extra}
{}[[zone]]
name = \"example.com\"
primaries = [\"127.0.0.1:9\"]
seed_file = \"{}\"
key = \"xfr-key\"
allow_transfer = [\"xfr-key\"]
",
            key_block(k),
            seed.display()
        )
    };
    let (old, new) = (key(1), key(2));
    // No RUST_LOG: the configuration's log_level is in force.
    let mut op = Outpost::start_with(dir.path(), &cfg(&old, ""), free_port(), |c| {
        c.env_remove("RUST_LOG");
    });
    op.wait_ready(ZONE, Duration::from_secs(10));
    assert!(axfr_with(op.addr, &old).is_ok());
    assert_eq!(notify_signed(op.addr, &old), ResponseCode::NoError);

    write_config(
        &op,
        &cfg(
            &new,
            "log_level = \"outpost=debug,info\"\nudp_workers = 3\n",
        )
        .replace("log_level = \"info\"\n", ""),
    );
    let report = reload(control);
    assert!(
        report.contains("not applied until restart: server.udp_workers"),
        "{report}"
    );
    let e = axfr_with(op.addr, &old).unwrap_err();
    assert!(
        e.contains("BADSIG") || e.contains("NOTAUTH") || e.contains("TSIG"),
        "{e}"
    );
    assert!(axfr_with(op.addr, &new).is_ok());
    assert_ne!(notify_signed(op.addr, &old), ResponseCode::NoError);
    assert_eq!(notify_signed(op.addr, &new), ResponseCode::NoError);
    // log_level took effect: debug lines from now on.
    wait_until("a debug line", Duration::from_secs(5), || {
        let _ = health(control);
        op.log_text().contains(" DEBUG ")
    });
    let log = op.log_text();
    assert!(log.contains("log level changed"), "{log}");
}
