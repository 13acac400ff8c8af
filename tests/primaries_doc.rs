//! docs/primaries.md, as written: each tested block is read from the
//! Markdown (the fenced block after a `<!-- test: NAME -->` line), the
//! example addresses and paths replaced by loopback ones and temporary
//! files, and the real primary (BIND 9.18, Knot 3.2, NSD 4.6) started on
//! it beside an Outpost started on the doc's Outpost block. Each run checks
//! what the page promises: a TSIG-signed transfer, a signed NOTIFY after a
//! change, and the change arriving by IXFR.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::TestZone;
use common::peers::{Flavor, Server, free_port, need, soa_serial};

const DOC: &str = include_str!("../docs/primaries.md");

/// The fenced block that follows `<!-- test: NAME -->`.
fn snippet(name: &str) -> String {
    let marker = format!("<!-- test: {name} -->");
    let at = DOC
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/primaries.md has no {marker}"));
    let rest = &DOC[at + marker.len()..];
    let open = rest.find("```").expect("a fenced block after the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let close = body.find("\n```").expect("the block's closing fence");
    body[..close + 1].to_string()
}

/// Replaces each `from` with `to`, failing when one is not in the text:
/// a doc change must not leave the test running something else.
fn substitute(name: &str, text: &str, pairs: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in pairs {
        assert!(
            out.contains(from),
            "docs/primaries.md block {name:?} no longer contains {from:?}:\n{out}"
        );
        out = out.replace(from, to);
    }
    out
}

/// The secret the doc's blocks carry (the example key).
fn doc_secret() -> String {
    let bind = snippet("bind");
    let at = bind.find("secret \"").unwrap() + "secret \"".len();
    bind[at..at + bind[at..].find('"').unwrap()].to_string()
}

struct Running {
    child: Child,
    log: PathBuf,
    addr: std::net::SocketAddr,
}

impl Running {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Outpost on the doc's block, the key file in a credentials directory as
/// systemd's LoadCredential would leave it.
fn start_outpost(dir: &Path, port: u16, primary_port: u16) -> Running {
    let creds = dir.join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("xfr-key"), format!("{}\n", doc_secret())).unwrap();
    let control = free_port();
    let text = substitute(
        "outpost",
        &snippet("outpost"),
        &[
            ("\"192.0.2.10:53\"", format!("\"127.0.0.1:{port}\"")),
            ("\"192.0.2.10\"", "\"127.0.0.1\"".into()),
            ("\"192.0.2.53\"", format!("\"127.0.0.1:{primary_port}\"")),
            (
                "\"/var/lib/outpost\"",
                format!("\"{}\"", dir.join("data").display()),
            ),
            ("127.0.0.1:8053", format!("127.0.0.1:{control}")),
        ],
    );
    let config = dir.join("outpost.toml");
    std::fs::write(&config, text).unwrap();
    let log = dir.join("outpost.log");
    let child = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Running {
        child,
        log,
        addr: ([127, 0, 0, 1], port).into(),
    }
}

fn zone(serial: u32, extra: usize) -> String {
    // Refresh 3600 s: within the test, only a NOTIFY brings a change.
    TestZone::new("example.com.", serial, extra).text
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool, log: impl Fn() -> String) {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {within:?}\n{}", log());
}

/// The common run: first transfer signed, then a change at the primary
/// reaches Outpost by a signed NOTIFY and an IXFR.
fn exercise(mut primary: Server, outpost_port: u16, dir: &Path) {
    let op = start_outpost(dir, outpost_port, primary.port);
    let logs = || {
        format!(
            "Outpost:\n{}\nprimary:\n{}",
            op.log_text(),
            primary.log_text()
        )
    };
    wait_for(
        "first transfer",
        Duration::from_secs(20),
        || soa_serial(op.addr, "example.com.") == Some(1),
        logs,
    );
    let log = op.log_text();
    assert!(log.contains("method=AXFR"), "{log}");
    assert!(!log.contains("TSIG"), "{log}");

    primary.update_zone("example.com.", &zone(2, 12));
    let logs = || {
        format!(
            "Outpost:\n{}\nprimary:\n{}",
            op.log_text(),
            primary.log_text()
        )
    };
    wait_for(
        "serial 2 after the NOTIFY",
        Duration::from_secs(30),
        || soa_serial(op.addr, "example.com.") == Some(2),
        logs,
    );
    let log = op.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("NOTIFY accepted") && l.contains("signed=true")),
        "no signed NOTIFY accepted:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("transfer done")
            && l.contains("serial=2")
            && l.contains("method=IXFR")),
        "serial 2 did not come by IXFR:\n{log}"
    );
    assert!(!log.contains("NOTIFY refused"), "{log}");
}

#[test]
fn bind_as_documented() {
    let named = need("named", "bind9");
    need("rndc", "bind9-utils");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (port, ctl_port, outpost_port) = (free_port(), free_port(), free_port());
    let zone_file = dir.path().join("db.example.com");
    std::fs::write(&zone_file, zone(1, 10)).unwrap();
    // What a named.conf has besides the doc's block: where to live and
    // listen, and rndc for the reload.
    let rndc_secret = "cm5kYy1zZWNyZXQtZm9yLXRoZS1kb2MtdGVzdC0wMTIzNA==";
    let mut c = format!(
        "options {{
    directory \"{d}\";
    pid-file \"{d}/named.pid\";
    session-keyfile \"{d}/session.key\";
    managed-keys-directory \"{d}\";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
logging {{ category default {{ default_stderr; }}; category xfer-out {{ default_stderr; }}; category notify {{ default_stderr; }}; }};
key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{rndc_secret}\"; }};
controls {{ inet 127.0.0.1 port {ctl_port} allow {{ 127.0.0.1; }} keys {{ \"rndc-key\"; }}; }};
"
    );
    c.push_str(&substitute(
        "bind",
        &snippet("bind"),
        &[
            (
                "192.0.2.10 port 53",
                format!("127.0.0.1 port {outpost_port}"),
            ),
            (
                "\"/var/lib/bind/db.example.com\"",
                format!("\"{}\"", zone_file.display()),
            ),
        ],
    ));
    let conf = dir.path().join("named.conf");
    std::fs::write(&conf, &c).unwrap();
    std::fs::write(
        dir.path().join("rndc.conf"),
        format!(
            "key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{rndc_secret}\"; }};\n\
             options {{ default-key \"rndc-key\"; default-server 127.0.0.1; default-port {ctl_port}; }};\n"
        ),
    )
    .unwrap();
    let chk = Command::new(need("named-checkconf", "bind9-utils"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(chk.status.success(), "named-checkconf: {chk:?}\n{c}");
    let mut cmd = Command::new(named);
    cmd.arg("-g").arg("-c").arg(&conf);
    let log = dir.path().join("named.log");
    let out = tempfile::tempdir().unwrap();
    let files = HashMap::from([("example.com".to_string(), zone_file)]);
    let server = Server::launch(
        Flavor::Bind,
        dir,
        port,
        conf,
        log,
        cmd,
        files,
        vec!["example.com.".into()],
    );
    exercise(server, outpost_port, out.path());
}

#[test]
fn knot_as_documented() {
    let knotd = need("knotd", "knot");
    need("knotc", "knot");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (port, outpost_port) = (free_port(), free_port());
    let zone_file = dir.path().join("example.com.zone");
    std::fs::write(&zone_file, zone(1, 10)).unwrap();
    let mut c = format!(
        "server:
    rundir: \"{d}\"
    listen: 127.0.0.1@{port}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
control:
    listen: \"{d}/knot.sock\"
log:
  - target: stderr
    any: info
database:
    storage: \"{d}\"
"
    );
    c.push_str(&substitute(
        "knot",
        &snippet("knot"),
        &[
            ("192.0.2.10@53", format!("127.0.0.1@{outpost_port}")),
            ("address: 192.0.2.10\n", "address: 127.0.0.1\n".into()),
            (
                "\"/var/lib/knot/example.com.zone\"",
                format!("\"{}\"", zone_file.display()),
            ),
        ],
    ));
    let conf = dir.path().join("knot.conf");
    std::fs::write(&conf, &c).unwrap();
    let chk = Command::new(need("knotc", "knot"))
        .arg("-c")
        .arg(&conf)
        .arg("conf-check")
        .output()
        .unwrap();
    assert!(chk.status.success(), "knotc conf-check: {chk:?}\n{c}");
    let mut cmd = Command::new(knotd);
    cmd.arg("-c").arg(&conf);
    let log = dir.path().join("knotd.log");
    let out = tempfile::tempdir().unwrap();
    let files = HashMap::from([("example.com".to_string(), zone_file)]);
    let server = Server::launch(
        Flavor::Knot,
        dir,
        port,
        conf,
        log,
        cmd,
        files,
        vec!["example.com.".into()],
    );
    exercise(server, outpost_port, out.path());
}

#[test]
fn nsd_as_documented() {
    let nsd = need("nsd", "nsd");
    need("nsd-control", "nsd");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (port, outpost_port) = (free_port(), free_port());
    let zone_file = dir.path().join("example.com.zone");
    std::fs::write(&zone_file, zone(1, 10)).unwrap();
    let mut c = String::new();
    write!(
        c,
        "server:
    ip-address: 127.0.0.1
    port: {port}
    do-ip6: no
    server-count: 1
    username: \"\"
    chroot: \"\"
    zonesdir: \"{d}\"
    database: \"\"
    zonelistfile: \"{d}/zone.list\"
    pidfile: \"{d}/nsd.pid\"
    xfrdfile: \"{d}/xfrd.state\"
    xfrdir: \"{d}\"
    logfile: \"{d}/nsd.log\"
    verbosity: 2
remote-control:
    control-enable: yes
    control-interface: \"{d}/nsd.sock\"
"
    )
    .unwrap();
    c.push_str(&substitute(
        "nsd",
        &snippet("nsd"),
        &[
            ("192.0.2.10@53", format!("127.0.0.1@{outpost_port}")),
            ("provide-xfr: 192.0.2.10 ", "provide-xfr: 127.0.0.1 ".into()),
            (
                "\"/var/lib/nsd/example.com.zone\"",
                format!("\"{}\"", zone_file.display()),
            ),
        ],
    ));
    let conf = dir.path().join("nsd.conf");
    std::fs::write(&conf, &c).unwrap();
    let chk = Command::new(need("nsd-checkconf", "nsd"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(chk.status.success(), "nsd-checkconf: {chk:?}\n{c}");
    let mut cmd = Command::new(nsd);
    cmd.arg("-d").arg("-c").arg(&conf);
    let stdout_log = dir.path().join("nsd.stdout");
    let log = dir.path().join("nsd.log");
    let out = tempfile::tempdir().unwrap();
    let files = HashMap::from([("example.com".to_string(), zone_file)]);
    let mut server = Server::launch(
        Flavor::Nsd,
        dir,
        port,
        conf,
        stdout_log,
        cmd,
        files,
        vec!["example.com.".into()],
    );
    server.log = log;
    exercise(server, outpost_port, out.path());
}
