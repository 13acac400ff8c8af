//! The command line of the real binary: `--version`, `check-config` on good
//! and broken configurations, `serve` refusing a broken one, and `serve` on
//! the bundled configuration answering the disaster MX until SIGTERM.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use common::dns::{Q, build_query, exchange_raw, query};
use common::outpost::Outpost;
use common::peers::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_outpost");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running outpost {args:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A minimal valid configuration plus `extra` lines in `[server]` and
/// `zone_extra` lines in the zone.
fn config(port: u16, server_extra: &str, zone_extra: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "data"
{server_extra}

[[zone]]
name = "example.com"
primaries = []
{zone_extra}
"#
    )
}

#[test]
fn version() {
    let out = run(Path::new(ROOT), &["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("outpost {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_bundled_config() {
    for args in [
        &["check-config", "--config", "config/outpost.toml"][..],
        // The default path is the bundled config, relative to the cwd.
        &["check-config"][..],
    ] {
        let out = run(Path::new(ROOT), args);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("OK"), "{}", text(&out.stdout));
        assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    }
}

#[test]
fn check_config_names_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            config(5399, "listen_backlog = 5", ""),
            "server.listen_backlog",
        ),
        (config(5399, "", "colour = \"blue\""), "zone[0]"),
        (
            format!("{}\n[bogus]\nx = 1\n", config(5399, "", "")),
            "bogus",
        ),
    ];
    for (i, (text_in, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("unknown{i}.toml"));
        std::fs::write(&path, text_in).unwrap();
        let out = run(
            dir.path(),
            &["check-config", "--config", path.to_str().unwrap()],
        );
        let err = text(&out.stderr);
        assert!(!out.status.success(), "case {i}: exit 0");
        assert!(err.contains(key), "case {i}: {key} not in {err:?}");
        assert!(err.contains("unknown"), "case {i}: {err:?}");
    }
    // The zone-level key is named too, not just the table.
    let err = text(
        &run(
            dir.path(),
            &[
                "check-config",
                "--config",
                dir.path().join("unknown1.toml").to_str().unwrap(),
            ],
        )
        .stderr,
    );
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn check_config_reports_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("several.toml");
    std::fs::write(
        &path,
        r#"[server]
listen = ["nope"]
data_dir = "data"

[[zone]]
name = "example.com"
primaries = ["not an address"]
key = "no-such-key"

[[zone]]
name = "example.net"
primaries = ["192.0.2.1:99999"]
"#,
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["check-config", "--config", path.to_str().unwrap()],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    for key in [
        "server.listen[0]",
        "zone[0] (example.com).primaries[0]",
        "zone[0] (example.com).key",
        "zone[1] (example.net).primaries[0]",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    assert!(err.lines().count() >= 4, "{err}");
}

#[test]
fn check_config_reports_seed_file_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("broken.zone");
    std::fs::write(
        &zone,
        "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 900 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.300\n",
    )
    .unwrap();
    let zone2 = dir.path().join("broken2.zone");
    std::fs::write(
        &zone2,
        "$ORIGIN example.net.\n@ 3600 IN SOA ns1 hostmaster 1 3600 900 86400 300\n@ 3600 IN NS ns1\n\nwww 3600 IN MX ten mail\n",
    )
    .unwrap();
    let path = dir.path().join("seed.toml");
    std::fs::write(
        &path,
        format!(
            "{}seed_file = \"{}\"\n\n[[zone]]\nname = \"example.net\"\nprimaries = []\nseed_file = \"{}\"\n",
            config(5399, "", ""),
            zone.display(),
            zone2.display()
        ),
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["check-config", "--config", path.to_str().unwrap()],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "exit 0 with broken seed files");
    let first = format!("{}:5:", zone.display());
    let second = format!("{}:5:", zone2.display());
    assert!(err.contains(&first), "{first} missing from:\n{err}");
    assert!(err.contains(&second), "{second} missing from:\n{err}");
    assert!(
        err.contains("192.0.2.300"),
        "the problem is not named:\n{err}"
    );
    assert!(
        err.contains("example.com") && err.contains("example.net"),
        "{err}"
    );
}

#[test]
fn serve_refuses_a_bad_config_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config(port, "", "refresh_jitter = 3")).unwrap();
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["serve", "--config", path.to_str().unwrap()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let q = build_query("example.com.", RecordType::SOA, Q::udp());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // While it lives, nothing may answer on its port.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        probe.send_to(&q, addr).unwrap();
        let mut buf = [0u8; 512];
        assert!(
            probe.recv_from(&mut buf).is_err(),
            "serve answered with a bad config"
        );
        if started.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("serve still running 5 s after a bad config");
        }
    };
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!status.success(), "exit 0 on a bad config");
    assert!(
        err.contains("zone[0] (example.com).refresh_jitter"),
        "key path missing from:\n{err}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Nothing was bound, nothing created.
    assert!(UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok());
    assert!(!dir.path().join("data").exists(), "data_dir created");
    assert!(exchange_raw(addr, &q, false).is_err());
}

#[test]
fn serve_bundled_config_answers_the_disaster_mx() {
    let dir = tempfile::tempdir().unwrap();
    let bundled = std::fs::read_to_string(Path::new(ROOT).join("config/outpost.toml")).unwrap();
    assert!(
        bundled.contains("\"127.0.0.1:5353\""),
        "bundled listen changed"
    );
    let control = free_port();
    let template = bundled
        .replace("\"127.0.0.1:5353\"", "\"127.0.0.1:{port}\"")
        .replace("\"127.0.0.1:8053\"", &format!("\"127.0.0.1:{control}\""));
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::copy(
        Path::new(ROOT).join("zones/example.com.zone"),
        dir.path().join("zones/example.com.zone"),
    )
    .unwrap();
    let mut o = Outpost::start_in(dir.path(), &template);
    o.wait_ready("example.com.", Duration::from_secs(10));

    for q in [Q::udp(), Q::tcp(), Q::plain_udp()] {
        let m = query(o.addr, "example.com.", RecordType::MX, q);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative, "AA");
        assert!(!m.metadata.truncation, "TC");
        let mut mx: Vec<(u16, String, u32)> = m
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::MX(mx) => (mx.preference, mx.exchange.to_ascii(), r.ttl),
                other => panic!("not an MX: {other:?}"),
            })
            .collect();
        mx.sort();
        assert_eq!(
            mx,
            vec![
                (2, "mail.example.com.".to_string(), 3_600_000),
                (10, "mail2.example.com.".to_string(), 3_600_000),
                (900, "mx.partner.example.net.".to_string(), 3_600_000),
            ],
            "{q:?}"
        );
    }

    let status = o.terminate();
    assert!(status.success(), "SIGTERM exit: {status}\n{}", o.log_text());
    assert_eq!(status.code(), Some(0));
}

/// `systemctl reload` (packaging/outpost.service: ExecReload sends SIGHUP)
/// must never stop the server: SIGHUP's default action is to terminate, and
/// systemd counts death by SIGHUP as a clean exit, so the service would not
/// even be restarted.
#[test]
fn sighup_does_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let zone = Path::new(ROOT).join("zones/example.com.zone");
    let template = format!(
        "{}seed_file = \"{}\"\n",
        config(0, "", "").replace("127.0.0.1:0", "127.0.0.1:{port}"),
        zone.display()
    );
    let mut o = Outpost::start_in(dir.path(), &template);
    o.wait_ready("example.com.", Duration::from_secs(10));
    for _ in 0..3 {
        unsafe {
            libc::kill(o.child.id() as i32, libc::SIGHUP);
        }
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = o.child.try_wait().unwrap() {
            panic!("SIGHUP stopped the server: {status}\n{}", o.log_text());
        }
        let m = query(o.addr, "example.com.", RecordType::MX, Q::udp());
        assert_eq!(m.answers.len(), 3, "after SIGHUP");
    }
    assert!(o.terminate().success());
}

/// A control endpoint on a non-loopback address without a token is
/// refused by `check-config` and by `serve`, with the key path and the
/// reason; a token from the environment (as `config/docker.toml` expects)
/// makes it acceptable, and is then required.
#[test]
fn a_public_control_endpoint_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let control_port = free_port();
    let path = dir.path().join("public.toml");
    std::fs::write(
        dir.path().join("seed.zone"),
        "$ORIGIN example.com.\n@ 3600 IN SOA ns1 h 1 3600 600 86400 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\n",
    )
    .unwrap();
    std::fs::write(
        &path,
        config(
            port,
            &format!("control = \"0.0.0.0:{control_port}\""),
            "seed_file = \"seed.zone\"",
        ),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config", path])
        .current_dir(dir.path())
        .env_remove("OUTPOST_CONTROL_TOKEN")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("server.control: 0.0.0.0:") && err.contains("not a loopback address"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["serve", "--config", path])
        .current_dir(dir.path())
        .env_remove("OUTPOST_CONTROL_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not a loopback address"));

    let out = Command::new(BIN)
        .args(["check-config", "--config", path])
        .current_dir(dir.path())
        .env("OUTPOST_CONTROL_TOKEN", "from-the-environment")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let text_cfg = std::fs::read_to_string(path).unwrap();
    let mut op = Outpost::start_with(dir.path(), &text_cfg, port, |cmd| {
        cmd.env("OUTPOST_CONTROL_TOKEN", "from-the-environment");
    });
    op.wait_ready("example.com.", Duration::from_secs(10));
    let control = SocketAddr::from(([127, 0, 0, 1], control_port));
    let refused = outpost::control::request(control, "GET", "/status", None);
    assert!(
        matches!(
            refused,
            Err(outpost::control::ControlError::Status { status: 401, .. })
        ),
        "{refused:?}"
    );
    outpost::control::request(control, "GET", "/status", Some("from-the-environment"))
        .expect("the environment's token opens the endpoint");
}
