//! What only the host can tell about a configuration: whether its addresses
//! can be bound (free, and allowed for this process), whether `data_dir`
//! can be created and written, whether another Outpost already runs on it.
//! `check-config` reports these; `serve` takes the data_dir lock.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// The lock file in `data_dir`.
pub const LOCK_FILE: &str = "outpost.lock";

/// Linux capability number of CAP_NET_BIND_SERVICE.
const CAP_NET_BIND_SERVICE: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "data_dir {dir} is in use by another Outpost{pid} (it holds {lock}); two servers on one data_dir would overwrite each other's files"
    )]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        /// " (pid N)" when the lock file says.
        pid: String,
    },
    #[error("cannot lock {lock}: {error}")]
    Lock {
        lock: PathBuf,
        error: std::io::Error,
    },
}

/// An exclusive `flock` on `data_dir/outpost.lock`, held for as long as the
/// value lives (the kernel drops it when the process dies, `kill -9`
/// included, so a stale lock cannot block a restart).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn take(dir: &Path) -> Result<DataDirLock, HostError> {
        let lock = dir.join(LOCK_FILE);
        let err = |error| HostError::Lock {
            lock: lock.clone(),
            error,
        };
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(err)?;
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::WouldBlock {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let pid = match text.trim().parse::<u32>() {
                    Ok(pid) => format!(" (pid {pid})"),
                    Err(_) => String::new(),
                };
                return Err(HostError::Locked {
                    dir: dir.to_path_buf(),
                    lock,
                    pid,
                });
            }
            return Err(err(e));
        }
        // For the message a second server prints; the lock is the flock.
        file.set_len(0).map_err(err)?;
        file.rewind().map_err(err)?;
        writeln!(file, "{}", std::process::id()).map_err(err)?;
        Ok(DataDirLock { _file: file })
    }
}

/// Problems only this host can reveal, each as `KEY PATH: reason`.
pub fn check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let s = &config.server;
    let running = match data_dir_problem(&s.data_dir) {
        Some(p) => {
            problems.push(format!("server.data_dir: {p}"));
            None
        }
        // Another Outpost on this data_dir (the one this configuration is
        // checked for before a reload) holds the addresses itself.
        None => match DataDirLock::take(&s.data_dir) {
            Err(e @ HostError::Locked { .. }) => Some(e.to_string()),
            _ => None,
        },
    };
    for (i, addr) in s.listen.iter().enumerate() {
        if running.is_none()
            && let Some(p) = bind_problem(*addr, true)
        {
            problems.push(format!("server.listen[{i}]: {p}"));
        }
    }
    if let Some(addr) = s.control
        && running.is_none()
        && let Some(p) = bind_problem(addr, false)
    {
        problems.push(format!("server.control: {p}"));
    }
    for z in &config.zones {
        for ip in &z.source {
            if let Err(e) = UdpSocket::bind(SocketAddr::new(*ip, 0)) {
                problems.push(format!(
                    "zone {}: source {ip} cannot be used here: {e} (is it an address of this host?)",
                    z.name
                ));
            }
        }
    }
    problems
}

/// Why `dir` cannot be (created and) written, if it cannot.
fn data_dir_problem(dir: &Path) -> Option<String> {
    // The nearest existing ancestor decides whether the rest can be made.
    let mut existing = dir;
    while !existing.exists() {
        existing = existing.parent()?;
    }
    if !existing.is_dir() {
        return Some(format!(
            "{} cannot be created: {} is not a directory",
            dir.display(),
            existing.display()
        ));
    }
    let probe = existing.join(format!(".outpost-check-{}", std::process::id()));
    let e = match File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            return None;
        }
        Err(e) => e,
    };
    // Only a refusal means "not writable"; a pseudo file system such as
    // /proc answers ENOENT, and calling that "not writable" contradicts
    // the error printed beside it.
    let failed = if matches!(
        e.kind(),
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
    ) {
        format!("{} is not writable: {e}", existing.display())
    } else {
        format!("creating a file in {} failed: {e}", existing.display())
    };
    Some(if existing == dir {
        failed
    } else {
        format!("{} cannot be created: {failed}", dir.display())
    })
}

/// Why `addr` cannot be bound (TCP, and UDP for DNS), if it cannot. The
/// sockets are closed again at once.
fn bind_problem(addr: SocketAddr, udp: bool) -> Option<String> {
    if addr.port() == 0 {
        return None;
    }
    let tcp = TcpListener::bind(addr).err().map(|e| (e, "TCP"));
    let err = tcp.or_else(|| {
        udp.then(|| UdpSocket::bind(addr).err().map(|e| (e, "UDP")))
            .flatten()
    });
    let (e, proto) = err?;
    Some(match e.kind() {
        ErrorKind::AddrInUse => format!("{addr} ({proto}) is in use by another program"),
        ErrorKind::PermissionDenied if addr.port() < 1024 && !can_bind_privileged() => format!(
            "{addr}: port {} is below 1024 and this process lacks CAP_NET_BIND_SERVICE; \
             grant it with `setcap cap_net_bind_service=+ep /path/to/outpost`, or run under \
             systemd with AmbientCapabilities=CAP_NET_BIND_SERVICE (the shipped unit does)",
            addr.port()
        ),
        ErrorKind::AddrNotAvailable => {
            format!("{addr}: {} is not an address of this host", addr.ip())
        }
        _ => format!("{addr} ({proto}) cannot be bound: {e}"),
    })
}

/// Whether this process may bind ports below 1024: the capability, or a
/// kernel that lowered `ip_unprivileged_port_start`.
fn can_bind_privileged() -> bool {
    let cap = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_NET_BIND_SERVICE) != 0);
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1024);
    cap || start == 0
}

#[cfg(test)]
mod tests {
    use super::data_dir_problem;
    use std::path::Path;

    #[test]
    fn data_dir_problem_names_what_failed() {
        // /proc exists and root may write to files in it, yet no file can be
        // created there: the message must not blame permissions.
        let p = data_dir_problem(Path::new("/proc/outpost-data")).unwrap();
        assert!(
            p.starts_with("/proc/outpost-data cannot be created: creating a file in /proc failed:"),
            "{p}"
        );
        assert!(!p.contains("not writable"), "{p}");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(data_dir_problem(&dir.path().join("a/b")), None);
    }
}
