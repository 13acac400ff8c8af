//! The operator's view on a live instance: status, metrics, health, the
//! control verbs and the CLI, reload under load, SIGTERM.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use common::dns::{Q, query};
use common::outpost::{Outpost, metric};
use common::peers::{Bind, Options, free_port, soa_serial};
use common::wait_until;
use outpost::control::request;

const ZONE: &str = "example.com.";

fn zone_text(origin: &str, serial: u32, refresh: u32, retry: u32, expire: u32) -> String {
    format!(
        "$ORIGIN {origin}
$TTL 3600
@ IN SOA ns1 hostmaster {serial} {refresh} {retry} {expire} 300
  IN NS ns1
  IN NS ns.partner.example.net.
  3600000 IN MX 2 mail
  3600000 IN MX 900 mx.partner.example.net.
ns1 IN A 192.0.2.53
mail 3600000 IN A 192.0.2.25
"
    )
}

fn outpost_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
}

fn get_json(addr: SocketAddr, path: &str, token: Option<&str>) -> serde_json::Value {
    serde_json::from_str(&request(addr, "GET", path, token).unwrap()).unwrap()
}

fn zone_status(addr: SocketAddr, token: Option<&str>) -> serde_json::Value {
    let v = get_json(addr, "/status", token);
    v["zones"][0].clone()
}

/// Status, metrics and health through a transfer, an outage and an expiry.
#[test]
fn status_metrics_and_health_follow_the_zone() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Bind::start(
        &[(ZONE, &zone_text(ZONE, 42, 2, 1, 8))],
        &[],
        &Options::default(),
    );
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let token = "s3cret-token";
    let config = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"
control_token = \"{token}\"

[[zone]]
name = \"example.com\"
primaries = [\"{}\"]
min_refresh = \"1s\"
min_retry = \"1s\"
min_expire = \"1s\"
",
        primary.addr()
    );
    let mut outpost = Outpost::start_in(dir.path(), &config);
    outpost.wait_ready(ZONE, Duration::from_secs(10));
    wait_until("serial 42", Duration::from_secs(10), || {
        soa_serial(outpost.addr, ZONE) == Some(42)
    });

    // No token, wrong token: refused.
    let err = request(control, "GET", "/status", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");
    let err = request(control, "GET", "/status", Some("wrong"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");

    let s = zone_status(control, Some(token));
    assert_eq!(s["zone"], "example.com.");
    assert_eq!(s["serial"], 42);
    assert_eq!(s["source"], "transfer");
    assert!(
        matches!(s["state"].as_str(), Some("fresh" | "refreshing")),
        "{s}"
    );
    assert_eq!(s["last_primary"], primary.addr().to_string());
    assert!(s["records"].as_u64().unwrap() >= 6);
    let left = s["expires_in"].as_u64().unwrap();
    assert!(left <= 8, "{s}");
    assert!(s["last_contact"].as_u64().is_some() && s["next_refresh"].as_u64().is_some());

    for _ in 0..5 {
        query(outpost.addr, ZONE, RecordType::MX, Q::udp());
    }
    query(outpost.addr, "nope.example.com.", RecordType::A, Q::udp());
    query(outpost.addr, "example.org.", RecordType::A, Q::udp());
    let m = request(control, "GET", "/metrics", Some(token)).unwrap();
    assert_eq!(
        metric(&m, "outpost_zone_serial{zone=\"example.com.\"}"),
        Some(42.0),
        "{m}"
    );
    assert!(
        metric(
            &m,
            "outpost_queries_total{zone=\"example.com.\",rcode=\"NOERROR\"}"
        )
        .unwrap()
            >= 5.0
    );
    assert!(
        metric(
            &m,
            "outpost_queries_total{zone=\"example.com.\",rcode=\"NXDOMAIN\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        metric(
            &m,
            "outpost_queries_total{zone=\"_other\",rcode=\"REFUSED\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(metric(&m, "outpost_zone_expiry_seconds{zone=\"example.com.\"}").unwrap() <= 8.0);
    assert!(
        metric(
            &m,
            "outpost_zone_last_contact_timestamp_seconds{zone=\"example.com.\"}"
        )
        .is_some()
    );
    assert_eq!(
        metric(&m, "outpost_zone_serving{zone=\"example.com.\"}"),
        Some(1.0)
    );
    assert!(metric(&m, "outpost_response_size_bytes_count{protocol=\"udp\"}").unwrap() >= 7.0);
    assert!(m.contains("outpost_build_info{version=\""));
    assert!(
        metric(
            &m,
            "outpost_transfers_total{zone=\"example.com.\",kind=\"axfr\",result=\"success\"}"
        )
        .unwrap()
            >= 1.0,
        "{m}"
    );
    assert!(
        request(control, "GET", "/health", None)
            .unwrap()
            .starts_with("ok")
    );

    // The CLI's table and JSON.
    let cfg = dir.path().join("outpost.toml");
    let out = outpost_bin()
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.contains("EXPIRES IN") && table.contains("example.com.") && table.contains("42"),
        "{table}"
    );
    let out = outpost_bin()
        .args(["status", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["zones"][0]["serial"], 42);

    // Operator verbs.
    let out = outpost_bin()
        .args(["refresh", "example.com", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = outpost_bin()
        .args(["retransfer", "example.com", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = request(control, "POST", "/zones/example.net/refresh", Some(token))
        .unwrap_err()
        .to_string();
    assert!(err.contains("404"), "{err}");

    // Outage: retrying with the error shown, then expired and unhealthy.
    drop(primary);
    wait_until("retrying", Duration::from_secs(6), || {
        let s = zone_status(control, Some(token));
        s["state"] == "retrying"
            && s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("example.com"))
    });
    wait_until("expired", Duration::from_secs(12), || {
        zone_status(control, Some(token))["state"] == "expired"
    });
    let s = zone_status(control, Some(token));
    assert_eq!(s["expires_in"], 0);
    assert_eq!(s["served"], false);
    let err = request(control, "GET", "/health", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("503") && err.contains("example.com.: not serving (expired)"),
        "{err}"
    );
    let m = request(control, "GET", "/metrics", Some(token)).unwrap();
    assert_eq!(
        metric(&m, "outpost_zone_serving{zone=\"example.com.\"}"),
        Some(0.0)
    );
    // The answer path reads a coarse clock (a few milliseconds behind the
    // one the status uses) at the second the zone expires.
    wait_until("SERVFAIL once expired", Duration::from_secs(2), || {
        let ans = query(outpost.addr, ZONE, RecordType::MX, Q::udp());
        ans.metadata.response_code == ResponseCode::ServFail
    });

    // SIGTERM: clean exit, state on disk.
    let status = outpost.terminate();
    assert!(status.success(), "exit {status}");
    assert!(dir.path().join("data/state/example.com.json").exists());
    assert!(outpost.log_text().contains("stopped"));

    // The CLI says which address it could not reach.
    let out = outpost_bin()
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&control.to_string()) && err.contains("cannot reach"),
        "{err}"
    );
}

/// Reload adds and removes zones under a running query load, without a
/// single failed query for the zone that stays.
#[test]
fn reload_under_load_drops_no_query() {
    let dir = tempfile::tempdir().unwrap();
    for (name, serial) in [
        ("stay.example.", 1),
        ("gone.example.", 2),
        ("new.example.", 3),
    ] {
        std::fs::write(
            dir.path().join(format!("{name}zone")),
            zone_text(name, serial, 3600, 600, 1_209_600),
        )
        .unwrap();
    }
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let zone_block = |name: &str| {
        format!(
            "[[zone]]\nname = \"{name}\"\nprimaries = []\nseed_file = \"{}/{name}.zone\"\n\n",
            dir.path().display()
        )
    };
    let head = format!(
        "[server]\nlisten = [\"127.0.0.1:{{port}}\"]\ndata_dir = \"{{dir}}/data\"\ncontrol = \"{control}\"\n\n"
    );
    let before = format!(
        "{head}{}{}",
        zone_block("stay.example"),
        zone_block("gone.example")
    );
    let mut outpost = Outpost::start_in(dir.path(), &before);
    outpost.wait_ready("stay.example.", Duration::from_secs(10));
    assert_eq!(soa_serial(outpost.addr, "gone.example."), Some(2));
    assert_eq!(soa_serial(outpost.addr, "new.example."), None);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (stop, ok, failed, addr) = (stop.clone(), ok.clone(), failed.clone(), outpost.addr);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let good = std::panic::catch_unwind(|| {
                    let m = query(addr, "stay.example.", RecordType::MX, Q::udp());
                    m.metadata.response_code == ResponseCode::NoError && m.answers.len() == 2
                })
                .unwrap_or(false);
                if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // SIGHUP reload: gone.example removed, new.example added.
    let after = format!(
        "{head}{}{}",
        zone_block("stay.example"),
        zone_block("new.example")
    );
    std::fs::write(
        &outpost.config,
        after
            .replace("{port}", &outpost.addr.port().to_string())
            .replace("{dir}", &dir.path().display().to_string()),
    )
    .unwrap();
    unsafe {
        libc::kill(outpost.child.id() as i32, libc::SIGHUP);
    }
    wait_until("new zone served", Duration::from_secs(5), || {
        soa_serial(outpost.addr, "new.example.") == Some(3)
    });
    let m = query(outpost.addr, "gone.example.", RecordType::SOA, Q::udp());
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    // `outpost reload` with a broken config: refused, old config stays.
    std::fs::write(&outpost.config, "[server]\nlisten = 5\n").unwrap();
    let out = outpost_bin()
        .args(["reload", "--control", &control.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reload refused"));
    assert_eq!(soa_serial(outpost.addr, "new.example."), Some(3));

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 100, "only {ok} queries");
    assert_eq!(
        failed,
        0,
        "{failed} of {} queries failed during reload",
        ok + failed
    );
    assert!(
        outpost
            .log_text()
            .contains("1 added [new.example.], 1 removed [gone.example.]"),
        "{}",
        outpost.log_text()
    );
}

/// A signed zone whose RRSIGs run out before the zone's own expiry: the
/// status says so and the metric carries the time.
#[test]
fn signatures_expiring_before_the_zone_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("zone.in"), zone_text(ZONE, 9, 3600, 600, 1_209_600)).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(args[0])
            .args(&args[1..])
            .current_dir(d)
            .output()
            .unwrap_or_else(|e| panic!("{} (bind9-utils) must be installed: {e}", args[0]));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "dnssec-keygen",
        "-q",
        "-K",
        ".",
        "-a",
        "ECDSAP256SHA256",
        "-f",
        "KSK",
        ZONE,
    ]);
    run(&[
        "dnssec-keygen",
        "-q",
        "-K",
        ".",
        "-a",
        "ECDSAP256SHA256",
        ZONE,
    ]);
    // Signatures valid for one hour; the zone expires after two weeks.
    run(&[
        "dnssec-signzone",
        "-S",
        "-K",
        ".",
        "-e",
        "now+3600",
        "-o",
        ZONE,
        "-f",
        "signed.zone",
        "zone.in",
    ]);
    let signed = std::fs::read_to_string(d.join("signed.zone")).unwrap();
    let primary = Bind::start(&[(ZONE, &signed)], &[], &Options::default());
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{{port}}\"]\ndata_dir = \"{{dir}}/data\"\ncontrol = \"{control}\"\n\n\
         [[zone]]\nname = \"example.com\"\nprimaries = [\"{}\"]\n",
        primary.addr()
    );
    let out_dir = tempfile::tempdir().unwrap();
    let outpost = Outpost::start_in(out_dir.path(), &config);
    wait_until("serial 9", Duration::from_secs(10), || {
        soa_serial(outpost.addr, ZONE) == Some(9)
    });
    let s = zone_status(control, None);
    let sig = s["signatures_expire_at"].as_u64().expect("signed zone");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(sig > now && sig <= now + 3700, "{s}");
    assert!(
        s["signature_warning"]
            .as_str()
            .is_some_and(|w| w.contains("before the zone's own expiry")),
        "{s}"
    );
    let m = request(control, "GET", "/metrics", None).unwrap();
    assert_eq!(
        metric(
            &m,
            "outpost_zone_signatures_expiry_timestamp_seconds{zone=\"example.com.\"}"
        ),
        Some(sig as f64)
    );
}

/// A server with a control endpoint; `control_extra` goes into `[server]`.
fn with_control(control_extra: &str) -> (tempfile::TempDir, Outpost, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.zone");
    std::fs::write(&seed, zone_text(ZONE, 1, 3600, 600, 86400)).unwrap();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"
{control_extra}

[[zone]]
name = \"example.com\"
primaries = []
seed_file = \"{}\"
",
        seed.display()
    );
    let mut op = Outpost::start_in(dir.path(), &config);
    op.wait_ready(ZONE, Duration::from_secs(10));
    (dir, op, control)
}

/// Whether the server has closed `s` (read gives EOF or an error, without
/// waiting).
fn is_closed(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let closed = match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// 1,000 slowloris clients (headers sent a line at a time, never
/// finished) are all cut once the header timeout is up, and real requests
/// get through before, during and after.
#[test]
fn slowloris_clients_are_cut_after_the_header_timeout() {
    use std::io::Write;
    common::procstat::raise_nofile();
    let (_dir, op, control) =
        with_control("control_header_timeout = \"2s\"\ncontrol_max_connections = 2000");
    let first = Instant::now();
    let mut loris: Vec<std::net::TcpStream> = (0..1000)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(control).unwrap();
            s.write_all(b"GET /status HTTP/1.1\r\nHost: outpost\r\n")
                .unwrap();
            s
        })
        .collect();
    let opened = Instant::now();
    let t = Instant::now();
    request(control, "GET", "/health", None).expect("a real request among 1,000 slow ones");
    eprintln!("real request among 1,000 slowloris: {:?}", t.elapsed());
    // A header line every half second: the clients are slow, not silent.
    let mut open = loris.len();
    while open > 0 && opened.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(500));
        open = 0;
        for s in &mut loris {
            if !is_closed(s) {
                let _ = s.write_all(b"X-Slow: yes\r\n");
                open += 1;
            }
        }
        if first.elapsed() < Duration::from_millis(1500) {
            assert_eq!(open, loris.len(), "cut before the header timeout");
        }
    }
    eprintln!(
        "slowloris: {open} of {} still open {:?} after they connected",
        loris.len(),
        opened.elapsed()
    );
    assert_eq!(open, 0, "slowloris connections outlived the header timeout");
    request(control, "GET", "/health", None).expect("a real request after the flood");
    assert!(op.log_text().contains("control endpoint listening"));
}

/// At `control_max_connections` the oldest connection is closed to make
/// room: silent clients cannot keep the operator out.
#[test]
fn control_connection_cap_closes_the_oldest() {
    let (_dir, _op, control) = with_control(
        "control_max_connections = 8\ncontrol_header_timeout = \"60s\"\ncontrol_idle_timeout = \"60s\"",
    );
    let mut silent: Vec<std::net::TcpStream> = (0..50)
        .map(|_| std::net::TcpStream::connect(control).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    request(control, "GET", "/health", None).expect("a real request past the cap");
    let took = t.elapsed();
    eprintln!("real request past the cap of 8 held by 50 silent clients: {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    std::thread::sleep(Duration::from_millis(300));
    let closed = silent.iter_mut().map(is_closed).filter(|&c| c).count();
    assert!(
        closed >= 42,
        "only {closed} of 50 silent connections closed"
    );
}

/// A connection that moves no byte for `control_idle_timeout` is closed.
#[test]
fn idle_control_connections_are_closed() {
    let (_dir, _op, control) = with_control("control_idle_timeout = \"1s\"");
    let mut s = std::net::TcpStream::connect(control).unwrap();
    let t = Instant::now();
    while !is_closed(&mut s) {
        assert!(t.elapsed() < Duration::from_secs(5), "idle connection kept");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("idle control connection closed after {:?}", t.elapsed());
    assert!(t.elapsed() >= Duration::from_millis(800));
}
