//! The per-zone operator verbs, run as an operator types them: `status
//! ZONE`, `zones`, `refresh --wait`, `retransfer --wait` (outcome and exit
//! status, success and failure) and `notify` towards a real BIND secondary
//! of Outpost.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::Name;

use common::TestZone;
use common::fakeprimary::{Behaviour, FakePrimary, RCODE_REFUSED, records_of};
use common::outpost::Outpost;
use common::peers::{Bind, Options, Secondary, free_port};

const ZONE: &str = "example.com.";

/// Runs `outpost ARGS --control ADDR`: exit success, stdout, stderr.
fn cli(control: SocketAddr, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .arg("--control")
        .arg(control.to_string())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn per_zone_verbs() {
    let v1 = TestZone::new(ZONE, 1, 5);
    let primary = FakePrimary::start(&Name::from_ascii(ZONE).unwrap(), records_of(&v1));
    let port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let downstream_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"

[[zone]]
name = \"example.com\"
primaries = [\"{}\"]
allow_transfer = [\"127.0.0.1\"]
notify = [\"127.0.0.1:{downstream_port}\"]
",
        primary.addr
    );
    let mut op = Outpost::start_on(dir.path(), &config, port);
    op.wait_ready(ZONE, Duration::from_secs(10));
    let addr = op.addr;
    op.wait_for("serial 1", Duration::from_secs(10), || {
        common::peers::soa_serial(addr, ZONE) == Some(1)
    });

    let (ok, out, err) = cli(control, &["status", "example.com"]);
    assert!(ok, "{err}");
    for line in [
        "zone          example.com.",
        "serial        1",
        "state         fresh",
        "catalog       -",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    let (ok, out, _) = cli(control, &["zones"]);
    assert!(
        ok && out
            .lines()
            .any(|l| l.starts_with("example.com.") && l.ends_with(" -")),
        "{out}"
    );
    let (ok, _, err) = cli(control, &["status", "nosuch.example"]);
    assert!(!ok && err.contains("no zone nosuch.example."), "{err}");

    // A newer serial at the primary: --wait reports it once it is served.
    primary.set_zone(records_of(&TestZone::new(ZONE, 2, 5)));
    let (ok, out, err) = cli(control, &["refresh", "example.com", "--wait"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("refresh of example.com. done: serial 2"),
        "{out}"
    );
    let (ok, out, err) = cli(control, &["retransfer", "example.com", "--wait"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("retransfer of example.com. done: serial 2"),
        "{out}"
    );

    // A primary that refuses: the error, and exit status 1.
    primary.set_behaviour(Behaviour::SoaRcode(RCODE_REFUSED));
    let (ok, out, err) = cli(control, &["refresh", "example.com", "--wait"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("refresh of example.com failed") && err.contains("REFUSED"),
        "{err}"
    );
    // A check still running when --wait asks is not the one asked for:
    // the primary takes 1.5 s over each transfer; a retransfer of serial 3
    // is under way when the primary moves to serial 4 and `refresh --wait`
    // asks. It reports the check after the running one, which finds 4 (the
    // running one ends with 3 while the next is still transferring).
    primary.set(
        records_of(&TestZone::new(ZONE, 3, 5)),
        Behaviour::Slow(Duration::from_millis(1500)),
    );
    let transfers = primary.axfr_queries();
    let (ok, out, _) = cli(control, &["retransfer", "example.com"]);
    assert!(
        ok && out.contains("retransfer of example.com. started"),
        "{out}"
    );
    primary.wait_axfr_queries(transfers + 1, Duration::from_secs(5));
    primary.set(
        records_of(&TestZone::new(ZONE, 4, 5)),
        Behaviour::Slow(Duration::from_millis(1500)),
    );
    let (ok, out, err) = cli(control, &["refresh", "example.com", "--wait"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("refresh of example.com. done: serial 4"),
        "the running check's outcome taken for the one asked for: {out}"
    );
    primary.set_behaviour(Behaviour::Good);

    // NOTIFY to a real secondary of Outpost: BIND answers it.
    let bind = Bind::start(
        &[],
        &[],
        &Options {
            port: Some(downstream_port),
            secondaries: vec![Secondary {
                zone: ZONE.into(),
                primary: op.addr,
                key: None,
            }],
            ..Default::default()
        },
    );
    let (ok, out, err) = cli(control, &["notify", "example.com"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("127.0.0.1:{downstream_port}: answered (serial 4")),
        "{out}"
    );
    assert!(
        bind.log_text()
            .contains("received notify for zone 'example.com'"),
        "{}",
        bind.log_text()
    );
    drop(bind);
    // The secondary gone: the failure is reported, exit status 1.
    let (ok, _, err) = cli(control, &["notify", "example.com"]);
    assert!(!ok && err.contains("no answer after 3 tries"), "{err}");
}
