//! The operator's first day (issue 15): what an operator sees and relies
//! on beyond the answers. The status page in a real browser, metrics that
//! promtool accepts, the log at start and on a refused reload, check-config
//! on what only the host can tell, the data_dir lock, secrets kept in files,
//! the config found without -c, and `source` as the address the primary and
//! the NOTIFY targets see.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use common::TestZone;
use common::dns::{Q, build_query, exchange_timeout};
use common::fakeprimary::{FakePrimary, records_of};
use common::outpost::{Outpost, metric};
use common::peers::{Bind, Options, free_port, soa_serial};
use common::wait_until;
use outpost::control::request;

fn outpost_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_outpost"));
    c.env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("OUTPOST_CONTROL_TOKEN");
    c
}

fn zone_text(origin: &str, serial: u32, expire: u32) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster {serial} 2 1 {expire} 300\n\
         @ IN NS ns1\n\
         @ 3600000 IN MX 900 mx.partner.example.net.\n\
         ns1 IN A 192.0.2.53\n"
    )
}

fn status(control: SocketAddr) -> serde_json::Value {
    serde_json::from_str(&request(control, "GET", "/status", None).unwrap()).unwrap()
}

fn zone_state(control: SocketAddr, zone: &str) -> String {
    status(control)["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == zone)
        .map(|z| z["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Headless Chromium with a fresh profile, no network beyond the page.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        // Lets the page's fetch of /status finish before the DOM is dumped.
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .stdin(Stdio::null());
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run chromium ({e}): install the Debian package `chromium`")
    })
}

/// Three zones in three states: one transferred from BIND and then expired
/// (BIND gone, expire 4 s), one static (seed, no primaries), one never
/// reached (no copy). Metrics pass promtool and say each state; the status
/// page, loaded in Chromium, lists the three and shows the expired one as
/// expired; a phone-sized screenshot is left for a person to look at.
#[test]
fn status_page_and_metrics_show_every_state() {
    let dir = tempfile::tempdir().unwrap();
    let bind = Bind::start(
        &[("example.com.", &zone_text("example.com.", 42, 4))],
        &[],
        &Options::default(),
    );
    std::fs::write(
        dir.path().join("example.net.zone"),
        zone_text("example.net.", 7, 86400),
    )
    .unwrap();
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"

[defaults]
min_refresh = \"1s\"
min_retry = \"1s\"
min_expire = \"1s\"

[[zone]]
name = \"example.com\"
primaries = [\"{}\"]

[[zone]]
name = \"example.net\"
seed_file = \"{{dir}}/example.net.zone\"

[[zone]]
name = \"example.org\"
primaries = [\"{dead_addr}\"]
",
        bind.addr()
    );
    let mut op = Outpost::start_in(dir.path(), &config);
    op.wait_ready("example.net.", Duration::from_secs(10));
    wait_until("serial 42", Duration::from_secs(10), || {
        soa_serial(op.addr, "example.com.") == Some(42)
    });
    // A TCP query, so both protocols have answered something.
    let q = build_query("example.com.", RecordType::SOA, Q::udp());
    exchange_timeout(op.addr, &q, true, Duration::from_secs(3)).unwrap();

    let m = request(control, "GET", "/metrics", None).unwrap();
    let state = |zone: &str, state: &str| {
        metric(
            &m,
            &format!("outpost_zone_state{{zone=\"{zone}\",state=\"{state}\"}} "),
        )
    };
    assert!(
        matches!(state("example.com.", "fresh"), Some(v) if v == 1.0)
            || matches!(state("example.com.", "refreshing"), Some(v) if v == 1.0),
        "{m}"
    );
    assert_eq!(state("example.net.", "static"), Some(1.0), "{m}");
    assert_eq!(state("example.net.", "retrying"), Some(0.0), "{m}");
    assert_eq!(state("example.org.", "retrying"), Some(1.0), "{m}");
    // Never contacted: a seed that does not expire is +Inf, no copy is 0.
    assert_eq!(
        metric(&m, "outpost_zone_expiry_seconds{zone=\"example.net.\"} "),
        Some(f64::INFINITY),
        "{m}"
    );
    assert_eq!(
        metric(&m, "outpost_zone_expiry_seconds{zone=\"example.org.\"} "),
        Some(0.0),
        "{m}"
    );
    assert!(
        metric(
            &m,
            &format!(
                "outpost_transfer_failures_total{{zone=\"example.org.\",primary=\"{dead_addr}\"}} "
            )
        )
        .is_some_and(|n| n >= 1.0),
        "{m}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = metric(&m, "process_start_time_seconds ").expect("start time");
    assert!(
        now - start < 600.0 && now - start >= -2.0,
        "{start} vs {now}"
    );
    assert!(metric(&m, "process_resident_memory_bytes ").is_some_and(|b| b > 1e6));
    assert!(metric(&m, "process_open_fds ").is_some_and(|n| n >= 5.0));
    assert!(metric(&m, "process_cpu_seconds_total ").is_some());
    assert!(!m.contains("Some("), "{m}");
    promtool_check(&m);

    // Home goes dark; example.com runs out of its 4 s.
    drop(bind);
    wait_until("example.com expired", Duration::from_secs(20), || {
        zone_state(control, "example.com.") == "expired"
    });
    let m = request(control, "GET", "/metrics", None).unwrap();
    assert_eq!(
        metric(
            &m,
            "outpost_zone_state{zone=\"example.com.\",state=\"expired\"} "
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "outpost_zone_expiry_seconds{zone=\"example.com.\"} "),
        Some(0.0)
    );

    // What dig shows for the expired zone (the README quotes it).
    let dig = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &op.addr.port().to_string(),
            "example.com",
            "MX",
            "+norec",
            "+tries=1",
        ])
        .output()
        .expect("dig (bind9-dnsutils)");
    let dig = String::from_utf8_lossy(&dig.stdout);
    assert!(dig.contains("status: SERVFAIL"), "{dig}");
    assert!(
        dig.contains("EDE: 24 (Invalid Data): (zone expired)"),
        "{dig}"
    );

    // The page itself: self-contained (no external assets), and what a
    // browser makes of it.
    let page = request(control, "GET", "/", None).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    for external in ["src=\"http", "href=\"http", "@import", "url(http", "//cdn"] {
        assert!(!page.contains(external), "page loads {external}");
    }
    let url = format!("http://{control}/");
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path(), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |zone: &str| -> String {
        let at = dom
            .find(&format!("data-zone=\"{zone}\""))
            .unwrap_or_else(|| panic!("no row for {zone} in\n{dom}"));
        let start = dom[..at].rfind("<li").unwrap();
        let end = at + dom[at..].find("</li>").unwrap();
        dom[start..end].to_string()
    };
    let com = row("example.com.");
    assert!(com.contains("data-state=\"expired\""), "{com}");
    assert!(com.contains("class=\"zone bad\""), "{com}");
    assert!(com.contains("expired: answering SERVFAIL"), "{com}");
    assert!(com.contains(">42<"), "serial shown: {com}");
    let net = row("example.net.");
    assert!(
        net.contains("data-state=\"static\"") && net.contains("does not expire"),
        "{net}"
    );
    let org = row("example.org.");
    assert!(
        org.contains("data-state=\"retrying\"") && org.contains("no copy yet"),
        "{org}"
    );
    // No copy yet: the check went straight to AXFR.
    assert!(org.contains("AXFR from"), "last error shown: {org}");

    // A phone-sized screenshot, left in the target directory.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page-phone.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        profile.path(),
        &[
            "--window-size=390,844",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    assert!(out.status.success());
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    eprintln!("status page screenshot: {}", shot.display());
    drop(op);
}

/// `promtool check metrics` when Prometheus is installed (scripts/test
/// installs it); says so when it is not.
fn promtool_check(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed (Debian package `prometheus`): not checked");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// JSON logs: version, config path and the addresses actually bound (port
/// 0 resolved, and answering) at start; zone and primary as fields of
/// their own; no Rust `Some(...)`; a reload refused through the CLI is in
/// the server's log.
#[test]
fn logs_carry_fields_bound_addresses_and_refused_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let config = dir.path().join("outpost.toml");
    let text = format!(
        "[server]
listen = [\"127.0.0.1:0\"]
data_dir = \"{0}/data\"
control = \"127.0.0.1:0\"
log_format = \"json\"

[[zone]]
name = \"example.com\"
primaries = [\"{dead_addr}\"]
seed_file = \"{0}/example.com.zone\"
",
        dir.path().display()
    );
    std::fs::write(&config, &text).unwrap();
    std::fs::write(
        dir.path().join("example.com.zone"),
        zone_text("example.com.", 5, 86400),
    )
    .unwrap();
    let log = dir.path().join("log");
    let mut child = outpost_bin()
        .args(["serve", "-c"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let find = |msg: &str| {
        lines()
            .into_iter()
            .find(|v| v["message"].as_str().is_some_and(|m| m.contains(msg)))
    };
    wait_until("outpost serving", Duration::from_secs(10), || {
        find("outpost serving").is_some()
    });
    let serving = find("outpost serving").unwrap();
    assert_eq!(serving["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(serving["config"], config.display().to_string());
    let listen: SocketAddr = serving["listen"].as_str().unwrap().parse().unwrap();
    let control: SocketAddr = serving["control"].as_str().unwrap().parse().unwrap();
    assert_ne!(listen.port(), 0);
    assert_ne!(control.port(), 0);
    // The logged port answers, over UDP and TCP alike.
    let q = build_query("example.com.", RecordType::SOA, Q::udp());
    exchange_timeout(listen, &q, false, Duration::from_secs(3)).unwrap();
    exchange_timeout(listen, &q, true, Duration::from_secs(3)).unwrap();
    assert!(request(control, "GET", "/health", None).is_ok());

    wait_until("a failed SOA query", Duration::from_secs(10), || {
        find("SOA query from").is_some()
    });
    let failed = find("SOA query from").unwrap();
    assert_eq!(failed["zone"], "example.com.", "{failed}");
    assert_eq!(failed["primary"], dead_addr.to_string(), "{failed}");

    // A broken configuration, reloaded through the CLI: refused, and said
    // so in the server's log, on one line.
    std::fs::write(&config, text.replace("[[zone]]", "[[zone]]\nbogus = 1")).unwrap();
    let out = outpost_bin()
        .args(["reload", "--control", &control.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reload refused"));
    wait_until("refused reload logged", Duration::from_secs(5), || {
        find("reload refused").is_some()
    });
    let refused = find("reload refused").unwrap();
    assert_eq!(refused["requested_by"], "control endpoint", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("bogus"));

    let all = std::fs::read_to_string(&log).unwrap();
    assert!(!all.contains("Some("), "{all}");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
}

/// A fatal error at start is one line on stderr, not two; a second Outpost
/// on the same data_dir refuses to start and names the first one's pid.
#[test]
fn second_outpost_on_one_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("example.com.zone"),
        zone_text("example.com.", 5, 86400),
    )
    .unwrap();
    let config = "[server]
listen = [\"127.0.0.1:{port}\"]
data_dir = \"{dir}/data\"

[[zone]]
name = \"example.com\"
seed_file = \"{dir}/example.com.zone\"
";
    let mut first = Outpost::start_in(dir.path(), config);
    first.wait_ready("example.com.", Duration::from_secs(10));
    let other = tempfile::tempdir().unwrap();
    let second_config = other.path().join("outpost.toml");
    let port = free_port();
    std::fs::write(
        &second_config,
        config
            .replace("{port}", &port.to_string())
            .replace("{dir}", &dir.path().display().to_string()),
    )
    .unwrap();
    let out = outpost_bin()
        .args(["serve", "-c"])
        .arg(&second_config)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid = first.child.id();
    assert!(
        stderr.contains(&format!("in use by another Outpost (pid {pid})")),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.contains("in use by")).count(),
        1,
        "the fatal error once: {stderr}"
    );
    // The first one serves on, and after it stops the lock is free again.
    assert_eq!(soa_serial(first.addr, "example.com."), Some(5));
    first.kill9();
    let mut again = Outpost::start_on(dir.path(), config, port);
    again.wait_ready("example.com.", Duration::from_secs(10));
}

/// check-config reports what only the host can tell.
#[test]
fn check_config_catches_what_the_host_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("example.com.zone"),
        zone_text("example.com.", 5, 86400),
    )
    .unwrap();
    let check = |server: &str| {
        let path = dir.path().join("check.toml");
        std::fs::write(
            &path,
            format!(
                "[server]\n{server}\n\n[[zone]]\nname = \"example.com\"\nseed_file = \"{d}/example.com.zone\"\n"
            ),
        )
        .unwrap();
        let out = outpost_bin()
            .args(["check-config", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // A free port can be taken by any program between the probe and the
    // check (other test suites run beside this one): try a few.
    let (code, text) = (0..5)
        .map(|_| {
            check(&format!(
                "listen = [\"127.0.0.1:{}\"]\ndata_dir = \"{d}/data\"",
                free_port()
            ))
        })
        .find(|(_, text)| !text.contains("in use by another program"))
        .expect("five free ports all taken before the check");
    assert_eq!(code, Some(0), "{text}");

    // A listen address in use (UDP taken by someone else). Not an
    // ephemeral port: TCP on the same number may then be some client's, and
    // the check reports TCP first.
    let taken = UdpSocket::bind(("127.0.0.1", free_port())).unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let (code, text) = check(&format!(
        "listen = [\"{taken_addr}\"]\ndata_dir = \"{d}/data\""
    ));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!("server.listen[0]: {taken_addr} (UDP) is in use")),
        "{text}"
    );

    // The control endpoint on a listen address.
    let port = free_port();
    let (code, text) = check(&format!(
        "listen = [\"127.0.0.1:{port}\"]\ndata_dir = \"{d}/data\"\ncontrol = \"127.0.0.1:{port}\""
    ));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("server.control: 127.0.0.1:"), "{text}");
    assert!(text.contains("is also listen[0]"), "{text}");

    // A data_dir that cannot be created: below a regular file.
    std::fs::write(dir.path().join("plain"), "").unwrap();
    let (code, text) = check(&format!(
        "listen = [\"127.0.0.1:{}\"]\ndata_dir = \"{d}/plain/data\"",
        free_port()
    ));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("server.data_dir:") && text.contains("is not a directory"),
        "{text}"
    );

    // A port below 1024 without CAP_NET_BIND_SERVICE: run check-config with
    // the capability dropped (we run as root in CI).
    let low = (600..1000)
        .find(|p| {
            std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
                && UdpSocket::bind(("127.0.0.1", *p)).is_ok()
        })
        .expect("a free port below 1024");
    let path = dir.path().join("low.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{low}\"]\ndata_dir = \"{d}/data\"\n\n[[zone]]\nname = \"example.com\"\nseed_file = \"{d}/example.com.zone\"\n"
        ),
    )
    .unwrap();
    let unprivileged_start =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
            .unwrap_or(1024);
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-net_bind_service", "--inh-caps", "-all"])
        .arg(env!("CARGO_BIN_EXE_outpost"))
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .expect("setpriv (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if unprivileged_start > low {
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains("lacks CAP_NET_BIND_SERVICE")
                && text.contains("setcap cap_net_bind_service=+ep")
                && text.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE"),
            "{text}"
        );
    } else {
        eprintln!("this kernel lets anyone bind port {low}: nothing to report");
    }
}

/// Secrets in files: `secret_file` and `control_token_file`, relative ones
/// from `$CREDENTIALS_DIRECTORY` (systemd's LoadCredential); the server
/// uses them (the token guards the control endpoint, the key signs the
/// transfer from BIND).
#[test]
fn secrets_come_from_files_and_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    let creds = tempfile::tempdir().unwrap();
    let key = outpost::tsig::Key::new(
        hickory_proto::rr::Name::from_ascii("xfr-key.").unwrap(),
        outpost::tsig::Algorithm::HmacSha256,
        vec![7u8; 32],
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&key.secret);
    std::fs::write(creds.path().join("xfr-key"), format!("{b64}\n")).unwrap();
    std::fs::write(creds.path().join("control-token"), "t0ken\n").unwrap();
    let bind = Bind::start(
        &[("example.com.", &zone_text("example.com.", 9, 86400))],
        std::slice::from_ref(&key),
        &Options {
            transfer_key: Some("xfr-key".into()),
            ..Options::default()
        },
    );
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let port = free_port();
    let config = dir.path().join("outpost.toml");
    std::fs::write(
        &config,
        format!(
            "[server]
listen = [\"127.0.0.1:{port}\"]
data_dir = \"{}/data\"
control = \"{control}\"
control_token_file = \"control-token\"

[[key]]
name = \"xfr-key\"
algorithm = \"hmac-sha256\"
secret_file = \"xfr-key\"

[[zone]]
name = \"example.com\"
primaries = [\"{}\"]
key = \"xfr-key\"
",
            dir.path().display(),
            bind.addr()
        ),
    )
    .unwrap();

    // Without the credentials directory, check-config names the file it
    // could not read and where relative paths are looked up.
    let out = outpost_bin()
        .args(["check-config", "-c"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("key[0] (xfr-key).secret_file: cannot read")
            && text.contains("$CREDENTIALS_DIRECTORY"),
        "{text}"
    );
    assert!(
        text.contains("server.control_token_file: cannot read"),
        "{text}"
    );
    assert!(!text.contains(&b64));

    let out = outpost_bin()
        .args(["check-config", "-c"])
        .arg(&config)
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // In a shell, without it: `credentials/` beside the configuration, as
    // /etc/outpost/credentials beside /etc/outpost/outpost.toml.
    let beside = dir.path().join("credentials");
    std::fs::create_dir(&beside).unwrap();
    for f in ["xfr-key", "control-token"] {
        std::fs::copy(creds.path().join(f), beside.join(f)).unwrap();
    }
    let out = outpost_bin()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&beside).unwrap();

    let log = dir.path().join("log");
    let mut child = outpost_bin()
        .args(["serve", "-c"])
        .arg(&config)
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until("signed transfer from BIND", Duration::from_secs(15), || {
        soa_serial(addr, "example.com.") == Some(9)
    });
    let err = request(control, "GET", "/status", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");
    assert!(request(control, "GET", "/status", Some("t0ken")).is_ok());
    // The CLI takes the token from the environment, not the command line.
    let out = outpost_bin()
        .args(["status", "--control", &control.to_string()])
        .env("OUTPOST_CONTROL_TOKEN", "t0ken")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("example.com."));
    // Or from the configuration's control_token_file, without reading the
    // key's secret (which this shell cannot find here).
    let out = outpost_bin()
        .args(["status", "-c"])
        .arg(&config)
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(creds.path().join("xfr-key")).unwrap();
    let out = outpost_bin()
        .args(["status", "-c"])
        .arg(&config)
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "status needs no key secret: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
    assert!(!std::fs::read_to_string(&log).unwrap().contains(&b64));
}

/// Without -c: config/outpost.toml when it exists, else
/// /etc/outpost/outpost.toml; --help says so.
#[test]
fn config_is_found_without_dash_c() {
    let help = outpost_bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("config/outpost.toml") && help.contains("/etc/outpost/outpost.toml"),
        "{help}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("example.com.zone"),
        zone_text("example.com.", 5, 86400),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config/outpost.toml"),
        format!(
            "[server]\nlisten = [\"127.0.0.1:{}\"]\ndata_dir = \"data\"\n\n[[zone]]\nname = \"example.com\"\nseed_file = \"example.com.zone\"\n",
            free_port()
        ),
    )
    .unwrap();
    let out = outpost_bin()
        .arg("check-config")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "config/outpost.toml: OK"
    );
    if !Path::new("/etc/outpost/outpost.toml").exists() {
        let empty = tempfile::tempdir().unwrap();
        let out = outpost_bin()
            .arg("check-config")
            .current_dir(empty.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .starts_with("/etc/outpost/outpost.toml: cannot read config file"),
            "{out:?}"
        );
    }
}

/// `source` is the address the primary sees for SOA queries and
/// transfers, and the NOTIFY targets see for NOTIFY.
#[test]
fn source_address_is_used_for_queries_transfers_and_notify() {
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let zone = TestZone::new("example.com.", 3, 10);
    let primary = FakePrimary::start(&zone.name(), records_of(&zone));
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    target
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"

[defaults]
source = \"127.0.0.2\"

[[zone]]
name = \"example.com\"
primaries = [\"{}\"]
notify = [\"{}\"]
",
        primary.addr,
        target.local_addr().unwrap()
    );
    let mut op = Outpost::start_in(dir.path(), &config);
    op.wait_ready("example.com.", Duration::from_secs(10));
    wait_until("transfer", Duration::from_secs(10), || {
        soa_serial(op.addr, "example.com.") == Some(3)
    });
    // The first transfer needs no SOA query (there is no copy to compare);
    // a refresh asks one.
    request(control, "POST", "/zones/example.com/refresh", None).unwrap();
    wait_until("an SOA query", Duration::from_secs(10), || {
        primary.clients().iter().any(|(tcp, _)| !tcp)
    });
    let clients = primary.clients();
    assert!(clients.iter().any(|(tcp, _)| !tcp), "an SOA query over UDP");
    assert!(clients.iter().any(|(tcp, _)| *tcp), "a transfer over TCP");
    for (tcp, peer) in &clients {
        assert_eq!(
            peer.ip().to_string(),
            "127.0.0.2",
            "{} from {peer}",
            if *tcp { "TCP" } else { "UDP" }
        );
    }
    let mut buf = [0u8; 512];
    let (_, from) = target.recv_from(&mut buf).expect("a NOTIFY");
    assert_eq!(from.ip().to_string(), "127.0.0.2");
}
