//! Runs the real `outpost` binary for tests: a config in a tempdir, a free
//! loopback port, killed by PID on drop.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::dns::{Q, build_query, exchange_timeout};
use super::peers::free_port;

pub struct Outpost {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Outpost {
    /// Writes `config` (with `{port}` and `{dir}` replaced) and starts the
    /// server in `dir`.
    pub fn start_in(dir: &Path, config_template: &str) -> Outpost {
        let port = free_port();
        Self::start_on(dir, config_template, port)
    }

    pub fn start_on(dir: &Path, config_template: &str, port: u16) -> Outpost {
        Self::start_with(dir, config_template, port, |_| {})
    }

    /// [`Outpost::start_on`], with `adjust` changing the command before it
    /// runs (environment, resource limits).
    pub fn start_with(
        dir: &Path,
        config_template: &str,
        port: u16,
        adjust: impl FnOnce(&mut Command),
    ) -> Outpost {
        let text = config_template
            .replace("{port}", &port.to_string())
            .replace("{dir}", &dir.display().to_string());
        let config = dir.join("outpost.toml");
        std::fs::write(&config, text).unwrap();
        let log = dir.join(format!("outpost-{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost"));
        cmd.args(["serve", "--config"])
            .arg(&config)
            .current_dir(dir)
            .env("RUST_LOG", "info,hickory_server=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        adjust(&mut cmd);
        let child = cmd.spawn().expect("start outpost");
        Outpost {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: dir.to_path_buf(),
            config,
            log,
        }
    }

    /// Waits until the server answers anything for `zone` SOA over UDP.
    pub fn wait_ready(&mut self, zone: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("outpost exited with {status}: {}", self.log_text());
            }
            let q = build_query(zone, RecordType::SOA, Q::udp());
            // A datagram sent before the socket is bound is lost: retry often.
            if exchange_timeout(self.addr, &q, false, Duration::from_millis(100)).is_ok() {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "outpost not answering after {timeout:?}: {}",
            self.log_text()
        );
    }

    /// Polls `cond` every millisecond until it holds; panics naming `what`
    /// after `within`, or at once if the server exits.
    pub fn wait_for(&mut self, what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("outpost exited with {status}: {}", self.log_text());
            }
            assert!(
                start.elapsed() < within,
                "{what}: not within {within:?}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(15) {
                self.kill9();
                panic!("outpost ignored SIGTERM: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Outpost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `[[key]]` table for `key`.
pub fn key_block(k: &outpost::tsig::Key) -> String {
    use base64::Engine;
    format!(
        "[[key]]\nname = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n\n",
        k.name,
        k.algorithm.config_name(),
        base64::engine::general_purpose::STANDARD.encode(&k.secret)
    )
}

/// A config template (for [`Outpost::start_in`]) for example.com as a
/// secondary of `primary`, fast timers, `zone_extra` appended to the zone.
pub fn secondary_config(
    primary: SocketAddr,
    key: Option<&outpost::tsig::Key>,
    zone_extra: &str,
) -> String {
    let keys = key.map(key_block).unwrap_or_default();
    let key_ref = key.map_or(String::new(), |k| format!("key = \"{}\"\n", k.name));
    format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"

[defaults]
min_refresh = \"1s\"
min_retry = \"1s\"

{keys}[[zone]]
name = \"example.com\"
primaries = [\"{primary}\"]
{key_ref}{zone_extra}"
    )
}

/// `GET /health` of the control endpoint at `control`: the body, or the
/// error (which carries the status code) as text.
pub fn health(control: SocketAddr) -> String {
    outpost::control::request(control, "GET", "/health", None).unwrap_or_else(|e| e.to_string())
}

/// The value of the first metric line starting with `line_prefix`.
pub fn metric(text: &str, line_prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| match v {
            "+Inf" => Some(f64::INFINITY),
            v => v.parse().ok(),
        })
}

/// One zone's files in an Outpost directory (its `data_dir` being
/// `{dir}/data`), and the temp files that writes leave beside them.
pub struct DataPaths {
    pub zone_file: PathBuf,
    pub state_file: PathBuf,
    pub journal_file: PathBuf,
}

impl DataPaths {
    pub fn new(dir: &Path, zone: &str) -> DataPaths {
        let name = hickory_proto::rr::Name::from_ascii(zone).unwrap();
        let p = outpost::persist::ZonePaths::new(&dir.join("data"), &name);
        DataPaths {
            zone_file: p.zone_file,
            state_file: p.state_file,
            journal_file: p.journal_file,
        }
    }

    /// Temp files in the zone, state and journal directories.
    pub fn temp_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for file in [&self.zone_file, &self.state_file, &self.journal_file] {
            let Ok(entries) = std::fs::read_dir(file.parent().unwrap()) else {
                continue;
            };
            for e in entries {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if name.contains(".outpost-tmp-") {
                    out.push(name);
                }
            }
        }
        out
    }

    pub fn zone_inode(&self) -> Option<u64> {
        std::fs::metadata(&self.zone_file).ok().map(|m| m.ino())
    }
}
