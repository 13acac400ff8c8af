//! Real DNS servers (BIND `named`, Knot `knotd`, NSD `nsd`) as test peers.
//!
//! Each runs in the foreground as a child process on 127.0.0.1 with a free
//! high port, everything (config, zones, pid file, logs, state) in its own
//! tempdir, and is killed by PID when dropped. A missing binary fails the
//! test with a message naming the Debian package: CI must have them all.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use hickory_proto::rr::{Name, RData};
use outpost::tsig::Key;
use outpost::wire::{self, Message};

/// A zone this server pulls from another server.
#[derive(Debug, Clone)]
pub struct Secondary {
    pub zone: String,
    pub primary: SocketAddr,
    /// Name of a key (from the `keys` given to `start`) to sign SOA queries,
    /// transfers with.
    pub key: Option<String>,
}

/// Server behaviour beyond "serve these zones".
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Require this key (by name) for transfers from 127.0.0.1; `None`
    /// allows unsigned transfers from 127.0.0.1.
    pub transfer_key: Option<String>,
    /// Where primary zones send NOTIFY on change.
    pub notify: Vec<SocketAddr>,
    /// Zones served as a secondary (they need no zone text).
    pub secondaries: Vec<Secondary>,
    /// Keep the differences between zone file versions so IXFR is answered
    /// incrementally (BIND `ixfr-from-differences`, Knot journal of changes).
    pub ixfr: bool,
    /// Listen on this port instead of a free one picked at start, for
    /// servers whose address must be known before they run (a NOTIFY target
    /// of a server started earlier).
    pub port: Option<u16>,
    /// More statements for BIND's `options` block (e.g. cookie settings).
    pub bind_options: String,
    /// BIND only: statements for each primary zone's `zone` block (such
    /// as `allow-update { 127.0.0.1; };` for a dynamic zone).
    pub bind_zone_options: String,
    /// Knot only: generate a catalog zone (RFC 9432) of this name listing
    /// every primary zone (`catalog-role: generate` / `member`).
    pub knot_catalog: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Bind,
    Knot,
    Nsd,
}

/// A running server.
pub struct Server {
    pub flavor: Flavor,
    pub port: u16,
    pub pid: u32,
    pub log: PathBuf,
    pub conf: PathBuf,
    child: Child,
    zone_files: HashMap<String, PathBuf>,
    last_mtime: SystemTime,
    // Last so the directory outlives the process using it.
    pub dir: tempfile::TempDir,
}

pub fn need(tool: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("`{tool}` not found: install the Debian package `{package}` (tests need real servers)");
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A port free for both UDP and TCP on 127.0.0.1. Ports are taken from a
/// per-process sequence in a high range seeded by the PID, so parallel tests
/// (and parallel test binaries) rarely even try the same one.
pub fn free_port() -> u16 {
    let _ = NEXT_PORT.compare_exchange(
        0,
        20_000 + (std::process::id() % 2000) as u16 * 16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..2000 {
        let p = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        let p = 20_000 + (p - 20_000) % 40_000;
        let tcp = TcpListener::bind(("127.0.0.1", p));
        let udp = UdpSocket::bind(("127.0.0.1", p));
        if tcp.is_ok() && udp.is_ok() {
            return p;
        }
    }
    panic!("no free port on 127.0.0.1");
}

fn b64(k: &Key) -> String {
    base64::engine::general_purpose::STANDARD.encode(&k.secret)
}

/// A key name without the trailing dot, as the configs spell it.
fn kname(k: &Key) -> String {
    k.name.to_ascii().trim_end_matches('.').to_string()
}

fn zone_file_name(zone: &str) -> String {
    let z = zone.trim_end_matches('.');
    format!("{}.zone", if z.is_empty() { "root" } else { z })
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Rewrites a primary zone's file and makes the server load it.
    pub fn update_zone(&mut self, zone: &str, text: &str) {
        let path = self
            .zone_files
            .get(zone.trim_end_matches('.'))
            .unwrap_or_else(|| panic!("{zone} is not a primary zone of this server"))
            .clone();
        fs::write(&path, text).unwrap();
        // Servers skip files whose mtime did not change; within one second
        // of the last write it may not have. Force it forward.
        let mtime = (SystemTime::now() + Duration::from_secs(1))
            .max(self.last_mtime + Duration::from_secs(2));
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        self.last_mtime = mtime;
        self.reload(zone);
    }

    fn reload(&self, zone: &str) {
        let zone = zone.trim_end_matches('.');
        let dir = self.dir.path();
        let mut cmd = match self.flavor {
            Flavor::Bind => {
                let mut c = Command::new(need("rndc", "bind9-utils"));
                c.arg("-c")
                    .arg(dir.join("rndc.conf"))
                    .args(["reload", zone]);
                c
            }
            Flavor::Knot => {
                let mut c = Command::new(need("knotc", "knot"));
                c.arg("-c").arg(&self.conf).args(["zone-reload", zone]);
                c
            }
            Flavor::Nsd => {
                let mut c = Command::new(need("nsd-control", "nsd"));
                c.arg("-c").arg(&self.conf).args(["reload", zone]);
                c
            }
        };
        let out = cmd.output().expect("running the reload command");
        assert!(
            out.status.success(),
            "{:?} reload of {zone} failed: {}{}\nserver log:\n{}",
            self.flavor,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
    }

    /// The zone's SOA serial as served now (UDP, no TSIG), if any.
    pub fn serial(&self, zone: &str) -> Option<u32> {
        soa_serial(self.addr(), zone)
    }

    /// Waits until the server serves `zone` with `serial`.
    pub fn wait_serial(&mut self, zone: &str, serial: u32, within: Duration) {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.serial(zone) == Some(serial) {
                return;
            }
            self.check_alive();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{:?} on port {} did not serve {zone} serial {serial} within {within:?} (serves {:?})\nlog:\n{}",
            self.flavor,
            self.port,
            self.serial(zone),
            self.log_text()
        );
    }

    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{:?} exited ({status}) on port {}\nconfig:\n{}\nlog:\n{}",
                self.flavor,
                self.port,
                fs::read_to_string(&self.conf).unwrap_or_default(),
                self.log_text()
            );
        }
    }

    fn wait_ready(&mut self, zones: &[String]) {
        let end = Instant::now() + Duration::from_secs(30);
        for zone in zones {
            loop {
                if self.serial(zone).is_some() {
                    break;
                }
                self.check_alive();
                assert!(
                    Instant::now() < end,
                    "{:?} on port {} does not answer SOA for {zone}\nlog:\n{}",
                    self.flavor,
                    self.port,
                    self.log_text()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Starts a server on a configuration written by the caller, waiting
    /// until it serves `ready_zones`; `zone_files` lets `update_zone` find
    /// the primary zones' files.
    #[allow(clippy::too_many_arguments)]
    pub fn launch(
        flavor: Flavor,
        dir: tempfile::TempDir,
        port: u16,
        conf: PathBuf,
        log: PathBuf,
        mut cmd: Command,
        zone_files: HashMap<String, PathBuf>,
        ready_zones: Vec<String>,
    ) -> Server {
        let logf = fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .current_dir(dir.path());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {flavor:?} ({cmd:?}): {e}"));
        let mut s = Server {
            flavor,
            port,
            pid: child.id(),
            log,
            conf,
            child,
            zone_files,
            last_mtime: SystemTime::now(),
            dir,
        };
        s.wait_ready(&ready_zones);
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first so the server cleans up, then SIGKILL if it lingers.
        // SAFETY: kill(2) on our own child's PID; the child is not yet reaped
        // so the PID cannot have been reused.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SOA serial over UDP, a few tries; `None` if no NOERROR answer with an SOA.
pub fn soa_serial(addr: SocketAddr, zone: &str) -> Option<u32> {
    let name = Name::from_ascii(zone).ok()?;
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    for id in 1..=3u16 {
        sock.send_to(&wire::soa_query(id, &name), addr).ok()?;
        let mut buf = [0u8; 4096];
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let msg = Message::parse(&buf[..n]).ok()?;
        if msg.header.id != id || msg.rcode() != 0 {
            return None;
        }
        for a in &msg.answers {
            if let Ok(rec) = a.to_record()
                && let RData::SOA(soa) = &rec.data
            {
                return Some(soa.serial);
            }
        }
        return None;
    }
    None
}

fn write_zones(dir: &Path, zones: &[(&str, &str)]) -> HashMap<String, PathBuf> {
    let mut files = HashMap::new();
    for (zone, text) in zones {
        let path = dir.join(zone_file_name(zone));
        fs::write(&path, text).unwrap();
        files.insert(zone.trim_end_matches('.').to_string(), path);
    }
    files
}

fn all_zones(zones: &[(&str, &str)], opts: &Options) -> Vec<String> {
    zones
        .iter()
        .map(|(z, _)| z.to_string())
        .chain(opts.secondaries.iter().map(|s| s.zone.clone()))
        .collect()
}

pub struct Bind;

impl Bind {
    pub fn start(zones: &[(&str, &str)], keys: &[Key], opts: &Options) -> Server {
        let named = need("named", "bind9");
        need("rndc", "bind9-utils");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = opts.port.unwrap_or_else(free_port);
        let ctl_port = free_port();
        let files = write_zones(dir.path(), zones);
        let mut c = String::new();
        for k in keys {
            writeln!(
                c,
                "key \"{}\" {{ algorithm {}; secret \"{}\"; }};",
                kname(k),
                k.algorithm.config_name(),
                b64(k)
            )
            .unwrap();
        }
        let rndc_secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        writeln!(
            c,
            "key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{rndc_secret}\"; }};"
        )
        .unwrap();
        writeln!(
            c,
            "controls {{ inet 127.0.0.1 port {ctl_port} allow {{ 127.0.0.1; }} keys {{ \"rndc-key\"; }}; }};"
        )
        .unwrap();
        let allow = match &opts.transfer_key {
            Some(k) => format!("key \"{}\";", k.trim_end_matches('.')),
            None => "127.0.0.1;".into(),
        };
        let notify = if opts.notify.is_empty() {
            "notify no;".to_string()
        } else {
            // With a transfer key, NOTIFY is signed with it too.
            let key = opts
                .transfer_key
                .as_ref()
                .map(|k| format!(" key \"{}\"", k.trim_end_matches('.')))
                .unwrap_or_default();
            let targets: String = opts
                .notify
                .iter()
                .map(|a| format!("{} port {}{key}; ", a.ip(), a.port()))
                .collect();
            // BIND waits notify-delay (5 s) after a change by default.
            format!("notify explicit; notify-delay 0; also-notify {{ {targets}}};")
        };
        let extra = &opts.bind_options;
        let ixfr = if opts.ixfr {
            "ixfr-from-differences yes;"
        } else {
            ""
        };
        writeln!(
            c,
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    minimal-responses no;
    minimal-any no;
    dnssec-validation no;
    allow-transfer {{ {allow} }};
    transfer-source 127.0.0.1;
    notify-source 127.0.0.1;
    {notify}
    {ixfr}
    {extra}
}};
logging {{ category default {{ default_stderr; }}; category xfer-out {{ default_stderr; }}; }};"#
        )
        .unwrap();
        for (zone, _) in zones {
            let z = zone.trim_end_matches('.');
            writeln!(
                c,
                "zone \"{z}\" {{ type primary; file \"{}\"; {} }};",
                zone_file_name(zone),
                opts.bind_zone_options
            )
            .unwrap();
        }
        for s in &opts.secondaries {
            let z = s.zone.trim_end_matches('.');
            let key = s
                .key
                .as_ref()
                .map(|k| format!(" key \"{}\"", k.trim_end_matches('.')))
                .unwrap_or_default();
            writeln!(
                c,
                "zone \"{z}\" {{ type secondary; primaries {{ {} port {}{key}; }}; file \"{z}.bak\"; }};",
                s.primary.ip(),
                s.primary.port()
            )
            .unwrap();
        }
        let conf = dir.path().join("named.conf");
        fs::write(&conf, c).unwrap();
        fs::write(
            dir.path().join("rndc.conf"),
            format!(
                "key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{rndc_secret}\"; }};\n\
                 options {{ default-key \"rndc-key\"; default-server 127.0.0.1; default-port {ctl_port}; }};\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("named.log");
        let mut cmd = Command::new(named);
        // -g: foreground, log to stderr; -u is not given, so no privilege
        // drop (which would lose access to the tempdir).
        cmd.arg("-g").arg("-c").arg(&conf);
        let ready = all_zones(zones, opts);
        Server::launch(Flavor::Bind, dir, port, conf, log, cmd, files, ready)
    }
}

pub struct Knot;

impl Knot {
    pub fn start(zones: &[(&str, &str)], keys: &[Key], opts: &Options) -> Server {
        let knotd = need("knotd", "knot");
        need("knotc", "knot");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = opts.port.unwrap_or_else(free_port);
        let files = write_zones(dir.path(), zones);
        let mut c = format!(
            r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
control:
    listen: "{d}/knot.sock"
log:
  - target: stderr
    any: info
database:
    storage: "{d}"
"#
        );
        if !keys.is_empty() {
            c.push_str("key:\n");
            for k in keys {
                write!(
                    c,
                    "  - id: {}\n    algorithm: {}\n    secret: {}\n",
                    kname(k),
                    k.algorithm.config_name(),
                    b64(k)
                )
                .unwrap();
            }
        }
        c.push_str("remote:\n  - id: none\n    address: 127.0.0.1@1\n");
        for (i, a) in opts.notify.iter().enumerate() {
            write!(
                c,
                "  - id: notify{i}\n    address: {}@{}\n",
                a.ip(),
                a.port()
            )
            .unwrap();
            if let Some(k) = &opts.transfer_key {
                writeln!(c, "    key: {}", k.trim_end_matches('.')).unwrap();
            }
        }
        for (i, s) in opts.secondaries.iter().enumerate() {
            write!(
                c,
                "  - id: primary{i}\n    address: {}@{}\n",
                s.primary.ip(),
                s.primary.port()
            )
            .unwrap();
            if let Some(k) = &s.key {
                writeln!(c, "    key: {}", k.trim_end_matches('.')).unwrap();
            }
        }
        c.push_str("acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: transfer\n");
        if let Some(k) = &opts.transfer_key {
            writeln!(c, "    key: {}", k.trim_end_matches('.')).unwrap();
        }
        c.push_str("  - id: notify_in\n    address: 127.0.0.1\n    action: notify\n");
        // Knot matches a signed NOTIFY only against rules naming its key.
        for (i, s) in opts.secondaries.iter().enumerate() {
            if let Some(k) = &s.key {
                write!(
                    c,
                    "  - id: notify_in{i}\n    address: 127.0.0.1\n    action: notify\n    key: {}\n",
                    k.trim_end_matches('.')
                )
                .unwrap();
            }
        }
        // Without IXFR the journal is off: it would make Knot prefer its own
        // history over edited zone files, and tests want the file to be the
        // truth. With IXFR, Knot diffs each new file against the old zone.
        let (load, journal) = if opts.ixfr {
            ("difference", "changes")
        } else {
            ("whole", "none")
        };
        write!(
            c,
            "template:\n  - id: default\n    storage: \"{d}\"\n    file: \"%s.zone\"\n    \
             zonefile-load: {load}\n    journal-content: {journal}\n    zonefile-sync: -1\n    \
             semantic-checks: off\n"
        )
        .unwrap();
        c.push_str("zone:\n");
        let notify_list = if opts.notify.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = (0..opts.notify.len())
                .map(|i| format!("notify{i}"))
                .collect();
            format!("    notify: [{}]\n", ids.join(", "))
        };
        let member = opts.knot_catalog.as_ref().map_or(String::new(), |cat| {
            format!(
                "    catalog-role: member\n    catalog-zone: {}\n",
                cat.trim_end_matches('.')
            )
        });
        for (zone, _) in zones {
            write!(
                c,
                "  - domain: {}\n    file: \"{d}/{}\"\n    acl: [xfr]\n{notify_list}{member}",
                zone.trim_end_matches('.'),
                zone_file_name(zone)
            )
            .unwrap();
        }
        if let Some(cat) = &opts.knot_catalog {
            write!(
                c,
                "  - domain: {}\n    catalog-role: generate\n    acl: [xfr]\n{notify_list}",
                cat.trim_end_matches('.')
            )
            .unwrap();
        }
        for (i, s) in opts.secondaries.iter().enumerate() {
            write!(
                c,
                "  - domain: {}\n    master: primary{i}\n    acl: [xfr, notify_in{}]\n{notify_list}",
                s.zone.trim_end_matches('.'),
                if s.key.is_some() { i.to_string() } else { String::new() }
            )
            .unwrap();
        }
        let conf = dir.path().join("knot.conf");
        fs::write(&conf, c).unwrap();
        let log = dir.path().join("knotd.log");
        let mut cmd = Command::new(knotd);
        // Foreground is knotd's default (-d would daemonize).
        cmd.arg("-c").arg(&conf);
        // A generated catalog is transferred, not queried: Knot answers
        // no SOA query for it, so it is not waited for.
        let ready = all_zones(zones, opts);
        Server::launch(Flavor::Knot, dir, port, conf, log, cmd, files, ready)
    }
}

pub struct Nsd;

impl Nsd {
    pub fn start(zones: &[(&str, &str)], keys: &[Key], opts: &Options) -> Server {
        let nsd = need("nsd", "nsd");
        need("nsd-control", "nsd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = opts.port.unwrap_or_else(free_port);
        let files = write_zones(dir.path(), zones);
        let mut c = format!(
            r#"server:
    ip-address: 127.0.0.1
    port: {port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    verbosity: 2
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: yes
    control-interface: "{d}/nsd.sock"
"#
        );
        for k in keys {
            write!(
                c,
                "key:\n    name: \"{}\"\n    algorithm: {}\n    secret: \"{}\"\n",
                kname(k),
                k.algorithm.config_name(),
                b64(k)
            )
            .unwrap();
        }
        let provide = match &opts.transfer_key {
            Some(k) => format!("    provide-xfr: 127.0.0.1 {}\n", k.trim_end_matches('.')),
            None => "    provide-xfr: 127.0.0.1 NOKEY\n".to_string(),
        };
        let notify: String = opts
            .notify
            .iter()
            .map(|a| format!("    notify: {}@{} NOKEY\n", a.ip(), a.port()))
            .collect();
        for (zone, _) in zones {
            write!(
                c,
                "zone:\n    name: \"{}\"\n    zonefile: \"{}\"\n{provide}{notify}",
                zone.trim_end_matches('.'),
                zone_file_name(zone)
            )
            .unwrap();
        }
        for s in &opts.secondaries {
            let key = s
                .key
                .as_deref()
                .map_or("NOKEY".to_string(), |k| k.trim_end_matches('.').to_string());
            let z = s.zone.trim_end_matches('.');
            write!(
                c,
                "zone:\n    name: \"{z}\"\n    zonefile: \"{z}.bak\"\n    request-xfr: {}@{} {key}\n    \
                 allow-notify: 127.0.0.1 NOKEY\n{provide}",
                s.primary.ip(),
                s.primary.port()
            )
            .unwrap();
        }
        let conf = dir.path().join("nsd.conf");
        fs::write(&conf, c).unwrap();
        // NSD writes its own logfile; -d keeps it in the foreground.
        let log = dir.path().join("nsd.log");
        let mut cmd = Command::new(nsd);
        cmd.arg("-d").arg("-c").arg(&conf);
        let ready = all_zones(zones, opts);
        let stdout_log = dir.path().join("nsd.stdout");
        let mut s = Server::launch(Flavor::Nsd, dir, port, conf, stdout_log, cmd, files, ready);
        s.log = log;
        s
    }
}

/// Sends `commands` (`update add ...` lines) to `server` as one dynamic
/// update of `zone` with `nsupdate`; panics if it is not accepted.
pub fn nsupdate(server: SocketAddr, zone: &str, commands: &str) {
    use std::io::Write;
    let tool = need("nsupdate", "bind9-dnsutils");
    let script = format!(
        "server {} {}\nzone {zone}\n{commands}\nsend\n",
        server.ip(),
        server.port()
    );
    let mut child = Command::new(tool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nsupdate failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
