//! Zones and timer state on disk.
//!
//! Every file is replaced atomically ([`write_atomic`]): written to a temp
//! file in the same directory, synced, renamed over the target, and the
//! directory synced, so that after a crash or power loss a reader finds
//! either the old or the new file, never a torn one. Concurrent writers
//! share their syncs ([`group_sync`]).
//!
//! Layout under the data directory: `zones/<zone>.zone` holds the zone data
//! (produced by the zone-file writer, with an integrity line last),
//! `journal/<zone>.jnl` the differences applied since ([`crate::journal`]),
//! and `state/<zone>.json` the timer state ([`ZoneState`]), with `<zone>`
//! made filesystem-safe by [`file_stem`].
//!
//! Ordering invariant: the zone data (zone file, or journal entry) is on
//! disk before the state file that names its serial
//! ([`crate::refresh::disk`] keeps it). A crash therefore leaves one of:
//! - old data, old state: consistent;
//! - new data, old state: the serials differ, which [`recover_state`]
//!   detects; it keeps the old state's contact and expiry times (the older,
//!   hence earlier, deadline: never serves longer than the SOA allows) and
//!   makes a refresh due at once;
//! - new data, new state: consistent.
//!
//! The zone data is what must never be lost or torn, because it is what
//! gets served; the state can always be rebuilt conservatively.

use crate::refresh::timers::{Source, StoredTimers, UnixTime, ZoneTimers};
use hickory_proto::rr::Name;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot {op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("cannot write {}: {error}", path.display())]
    Writer {
        path: PathBuf,
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("state file {} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("state file {} has format version {found}; this build reads version {STATE_VERSION}", path.display())]
    Version { path: PathBuf, found: u64 },
    #[error("state file {} belongs to zone {found}, not {expected}", path.display())]
    WrongZone {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PersistError + 'a {
    move |error| PersistError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

/// Marks temp files so that [`cleanup_temp`] can find them and never touches
/// anything else. Temp names start with a dot; zone file stems never do.
const TEMP_MARK: &str = ".outpost-tmp-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(path: &Path) -> Result<PathBuf, PersistError> {
    let name = path.file_name().ok_or_else(|| PersistError::Io {
        op: "write",
        path: path.to_path_buf(),
        error: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!("{TEMP_MARK}{}-{n}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with what `write` produces, atomically and durably. On
/// error the target is untouched and the temp file removed.
pub fn write_atomic<F, E>(path: &Path, write: F) -> Result<(), PersistError>
where
    F: FnOnce(&mut dyn Write) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tmp = temp_path(path)?;
    let dir = parent_dir(path);
    let result = write_temp(path, &tmp, write)
        .and_then(|file| group_sync(&file).map_err(io_err("fsync", &tmp)))
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err("rename temp file over", path)));
    if result.is_err() {
        // Best effort: a leftover is also removed by cleanup_temp at start.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Without this the rename itself may not survive a power loss.
    File::open(dir)
        .and_then(|d| group_sync(&d))
        .map_err(io_err("fsync directory", dir))
}

/// Syncs in progress or wanted, by filesystem (device number).
#[derive(Default)]
struct SyncGroups {
    filesystems: std::collections::HashMap<u64, SyncGroup>,
}

#[derive(Default)]
struct SyncGroup {
    /// Syncs asked for so far; each caller waits for one that starts after
    /// its own request.
    requested: u64,
    /// Every request up to this one is covered by a finished sync.
    done: u64,
    running: bool,
}

/// How many syncs ran, and how many of them covered several requests.
#[cfg(test)]
static SYNCS_RUN: AtomicU64 = AtomicU64::new(0);
#[cfg(test)]
static SYNCS_SHARED: AtomicU64 = AtomicU64::new(0);

static SYNC_GROUPS: std::sync::LazyLock<(std::sync::Mutex<SyncGroups>, std::sync::Condvar)> =
    std::sync::LazyLock::new(Default::default);

/// Makes `file` (a file or a directory) durable, sharing the work with
/// every writer on the same filesystem that asked before the sync started
/// (group commit). Alone, a caller fsyncs its own file; when several wait,
/// one `syncfs` of the filesystem covers them all: thousands of zones
/// transferred at once then cost a few syncs per batch instead of four
/// fsyncs each, one block-device round trip apiece. Callers return only once
/// a sync that began after their request has finished.
fn group_sync(file: &File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dev = file.metadata()?.dev();
    let (lock, cv) = &*SYNC_GROUPS;
    let mut all = lock.lock().unwrap_or_else(|p| p.into_inner());
    let st = all.filesystems.entry(dev).or_default();
    st.requested += 1;
    let mine = st.requested;
    loop {
        let st = all.filesystems.get_mut(&dev).expect("entry made above");
        if st.done >= mine {
            return Ok(());
        }
        if st.running {
            all = cv.wait(all).unwrap_or_else(|p| p.into_inner());
            continue;
        }
        st.running = true;
        let covers = st.requested;
        // Requests after `done` are not covered yet; ours is one of them.
        let shared = covers - st.done > 1;
        drop(all);
        let result = if shared {
            sync_filesystem(file)
        } else {
            file.sync_all()
        };
        #[cfg(test)]
        {
            SYNCS_RUN.fetch_add(1, Ordering::Relaxed);
            if shared {
                SYNCS_SHARED.fetch_add(1, Ordering::Relaxed);
            }
        }
        all = lock.lock().unwrap_or_else(|p| p.into_inner());
        let st = all.filesystems.get_mut(&dev).expect("entry made above");
        st.running = false;
        if result.is_ok() {
            st.done = st.done.max(covers);
        }
        cv.notify_all();
        // A failed sync is the error of whoever ran it; the others try
        // again with a sync of their own.
        result?;
    }
}

/// Everything written to the filesystem holding `file` so far, durable.
/// syncfs(2) reports writeback errors of the filesystem since Linux 5.8.
#[cfg(target_os = "linux")]
fn sync_filesystem(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(_file: &File) -> io::Result<()> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    Ok(())
}

/// The write buffer: large enough that a big zone file goes out in few
/// write calls, small enough to stay under the allocator's mmap threshold
/// (set in main), so that thousands of small files do not each map and
/// unmap it.
const WRITE_BUFFER: usize = 64 * 1024;

/// Writes the temp file and returns it open, not yet synced.
fn write_temp<F, E>(path: &Path, tmp: &Path, write: F) -> Result<File, PersistError>
where
    F: FnOnce(&mut dyn Write) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(io_err("create temp file", tmp))?;
    let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
    write(&mut w).map_err(|e| PersistError::Writer {
        path: path.to_path_buf(),
        error: e.into(),
    })?;
    w.into_inner()
        .map_err(|e| io_err("write", tmp)(e.into_error()))
}

/// [`write_atomic`] for contents already in memory.
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Removes temp files left in `dir` by writes interrupted by a crash, and
/// returns how many. Call it at start, before any writer runs: a temp file of
/// a write in progress looks the same as a stale one. A missing directory
/// holds no temp files.
pub fn cleanup_temp(dir: &Path) -> Result<usize, PersistError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(TEMP_MARK) {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err("remove stale temp file", &path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

pub const ZONES_DIR: &str = "zones";
pub const STATE_DIR: &str = "state";
pub const JOURNAL_DIR: &str = "journal";

/// Longest stem kept verbatim; longer ones are cut and suffixed with a hash
/// so that file names stay under the usual 255-byte limit.
const MAX_STEM: usize = 200;

/// A file name stem for `zone`: the lowercased name without the trailing
/// dot, bytes other than `a-z 0-9 - _` inside labels escaped as `%XX`, and
/// `@` for the root zone. Distinct zones get distinct stems (`%` and `@` are
/// themselves escaped, and a literal dot inside a label becomes `%2E`).
pub fn file_stem(zone: &Name) -> String {
    if zone.is_root() {
        return "@".to_string();
    }
    let mut stem = String::with_capacity(zone.len());
    for (i, label) in zone.iter().enumerate() {
        if i > 0 {
            stem.push('.');
        }
        for &b in label {
            let b = b.to_ascii_lowercase();
            if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' {
                stem.push(char::from(b));
            } else {
                let _ = write!(stem, "%{b:02X}");
            }
        }
    }
    if stem.len() > MAX_STEM {
        let digest = Sha256::digest(stem.as_bytes());
        stem.truncate(MAX_STEM - 33);
        stem.push('~');
        for b in &digest[..16] {
            let _ = write!(stem, "{b:02x}");
        }
    }
    stem
}

/// Where one zone's files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZonePaths {
    pub zone_file: PathBuf,
    pub state_file: PathBuf,
    pub journal_file: PathBuf,
}

impl ZonePaths {
    pub fn new(data_dir: &Path, zone: &Name) -> Self {
        let stem = file_stem(zone);
        Self {
            zone_file: data_dir.join(ZONES_DIR).join(format!("{stem}.zone")),
            state_file: data_dir.join(STATE_DIR).join(format!("{stem}.json")),
            journal_file: data_dir.join(JOURNAL_DIR).join(format!("{stem}.jnl")),
        }
    }

    /// Creates the zone and state directories if missing.
    pub fn create_dirs(&self) -> Result<(), PersistError> {
        for file in [&self.zone_file, &self.state_file, &self.journal_file] {
            let dir = parent_dir(file);
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        Ok(())
    }
}

/// Removes stale temp files from both directories of a data dir.
pub fn cleanup_data_dir(data_dir: &Path) -> Result<usize, PersistError> {
    Ok(cleanup_temp(&data_dir.join(ZONES_DIR))?
        + cleanup_temp(&data_dir.join(STATE_DIR))?
        + cleanup_temp(&data_dir.join(JOURNAL_DIR))?)
}

/// Version 2 came with the integrity line of zone files: a state file of
/// version 1 says the zone file beside it was written without one.
pub const STATE_VERSION: u64 = 2;
const LEGACY_STATE_VERSION: u64 = 1;

/// A zone's timer state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneState {
    pub version: u64,
    /// The zone name in presentation form, with the trailing dot.
    pub zone: String,
    /// Serial of the zone file this state belongs to.
    pub serial: u32,
    pub last_contact: Option<UnixTime>,
    /// The primary that answered at the last contact.
    pub last_primary: Option<SocketAddr>,
    pub refresh_due: UnixTime,
    pub expire_at: Option<UnixTime>,
    pub source: Source,
}

impl ZoneState {
    pub fn new(zone: &Name, timers: &ZoneTimers, last_primary: Option<SocketAddr>) -> Self {
        let stored = timers.stored();
        Self {
            version: STATE_VERSION,
            zone: zone.to_lowercase().to_string(),
            serial: timers.serial(),
            last_contact: stored.last_contact,
            last_primary,
            refresh_due: stored.refresh_due,
            expire_at: stored.expire_at,
            source: stored.source,
        }
    }

    /// The part [`ZoneTimers::restore`] takes.
    pub fn timers(&self) -> StoredTimers {
        StoredTimers {
            last_contact: self.last_contact,
            refresh_due: self.refresh_due,
            expire_at: self.expire_at,
            source: self.source,
        }
    }
}

pub fn save_state(path: &Path, state: &ZoneState) -> Result<(), PersistError> {
    let mut json = serde_json::to_vec_pretty(state).map_err(|e| PersistError::Writer {
        path: path.to_path_buf(),
        error: e.into(),
    })?;
    json.push(b'\n');
    write_atomic_bytes(path, &json)
}

/// Reads a state file; `Ok(None)` if there is none. The version is checked
/// before the fields so that a file from a newer build says so rather than
/// reporting an unknown field.
pub fn load_state(path: &Path, zone: &Name) -> Result<Option<ZoneState>, PersistError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let corrupt = |reason: String| PersistError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(STATE_VERSION | LEGACY_STATE_VERSION) => {}
        Some(found) => {
            return Err(PersistError::Version {
                path: path.to_path_buf(),
                found,
            });
        }
        None => return Err(corrupt("no numeric \"version\" field".into())),
    }
    let state: ZoneState = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    let same_zone = Name::from_ascii(&state.zone).is_ok_and(|n| n.eq_ignore_root(zone));
    if !same_zone {
        return Err(PersistError::WrongZone {
            path: path.to_path_buf(),
            found: state.zone,
            expected: zone.to_string(),
        });
    }
    Ok(Some(state))
}

/// What the last line of a zone file Outpost wrote says about the file:
/// the journal epoch and serial it holds, and its record count and digest,
/// so that a file cut short on a line boundary, edited or swapped is not
/// taken for the copy that was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneFileMark {
    pub epoch: u64,
    pub serial: u32,
    pub records: usize,
    pub sha256: [u8; 32],
}

const MARK_PREFIX: &str = "; outpost-zone-file ";

impl ZoneFileMark {
    fn line(&self) -> String {
        format!(
            "{MARK_PREFIX}epoch={:016x} serial={} records={} sha256={}",
            self.epoch,
            self.serial,
            self.records,
            data_encoding::HEXLOWER.encode(&self.sha256)
        )
    }

    fn parse(line: &str) -> Option<ZoneFileMark> {
        let rest = line.strip_prefix(MARK_PREFIX)?;
        let mut mark = ZoneFileMark {
            epoch: 0,
            serial: 0,
            records: 0,
            sha256: [0; 32],
        };
        let mut seen = 0;
        for field in rest.split(' ') {
            let (k, v) = field.split_once('=')?;
            match k {
                "epoch" => mark.epoch = u64::from_str_radix(v, 16).ok()?,
                "serial" => mark.serial = v.parse().ok()?,
                "records" => mark.records = v.parse().ok()?,
                "sha256" => {
                    mark.sha256 = data_encoding::HEXLOWER
                        .decode(v.as_bytes())
                        .ok()?
                        .try_into()
                        .ok()?
                }
                _ => return None,
            }
            seen += 1;
        }
        (seen == 4).then_some(mark)
    }
}

/// Hashes what passes through, so the digest of a zone file is made as it
/// is written.
struct Digesting<'a> {
    inner: &'a mut dyn Write,
    hasher: Sha256,
}

impl Write for Digesting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `zone` (SOA first, as `named-checkzone` wants it) to `path`
/// atomically, with its integrity line last.
pub fn write_zone_file(
    path: &Path,
    zone: &crate::zone::Zone,
    epoch: u64,
) -> Result<ZoneFileMark, PersistError> {
    let mut mark = None;
    write_atomic(path, |w| -> io::Result<()> {
        let mut d = Digesting {
            inner: w,
            hasher: Sha256::new(),
        };
        crate::zonefile::write_raw_zone(&mut d, zone.origin(), zone.raw_records())?;
        let m = ZoneFileMark {
            epoch,
            serial: zone.serial(),
            records: zone.record_count(),
            sha256: d.hasher.finalize().into(),
        };
        writeln!(w, "{}", m.line())?;
        mark = Some(m);
        Ok(())
    })?;
    Ok(mark.expect("set by a successful write"))
}

/// What reading a zone file found out about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// The integrity line matches the contents.
    Verified(ZoneFileMark),
    /// Written by a build that wrote no integrity line.
    Legacy,
    /// The line is missing (the file was cut short or replaced) or does not
    /// match the contents (edited or damaged): why.
    Damaged(String),
}

/// A zone file read back: its records and what its integrity line says.
#[derive(Debug)]
pub struct ZoneFile {
    pub records: crate::zone::RawRecords,
    pub integrity: Integrity,
}

/// Reads a zone file Outpost wrote, checking it against its integrity line.
/// `legacy` says the state file beside it predates integrity lines, so a
/// missing one is expected rather than a sign of damage.
pub fn read_zone_file(
    path: &Path,
    origin: &Name,
    legacy: bool,
) -> Result<ZoneFile, crate::zonefile::ZoneFileError> {
    let data = fs::read(path).map_err(|source| crate::zonefile::ZoneFileError::Io {
        file: path.display().to_string(),
        source,
    })?;
    let records = crate::zonefile::parse_bytes_raw(&data, path, origin)?;
    let body_end = data[..data.len().saturating_sub(1)]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let last = std::str::from_utf8(&data[body_end..])
        .unwrap_or("")
        .trim_end_matches('\n');
    let integrity = match ZoneFileMark::parse(last) {
        Some(mark) => {
            let digest: [u8; 32] = Sha256::digest(&data[..body_end]).into();
            if digest != mark.sha256 {
                Integrity::Damaged(format!(
                    "contents differ from the digest written with them (serial {})",
                    mark.serial
                ))
            } else if records.len() != mark.records {
                Integrity::Damaged(format!(
                    "{} records, {} written",
                    records.len(),
                    mark.records
                ))
            } else {
                Integrity::Verified(mark)
            }
        }
        None if legacy => Integrity::Legacy,
        None => Integrity::Damaged("no integrity line at the end: cut short or replaced".into()),
    };
    Ok(ZoneFile { records, integrity })
}

/// Whether the state file of a zone was written by a build without zone
/// file integrity lines.
pub fn state_is_legacy(path: &Path) -> bool {
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64))
        == Some(LEGACY_STATE_VERSION)
}

/// How the state of a zone loaded from disk was obtained.
#[derive(Debug)]
pub enum Recovery {
    /// The state file belongs to the zone file.
    Consistent,
    /// The state file belongs to another serial: a crash between the zone
    /// file and the state file being replaced (or a hand-edited zone file).
    SerialMismatch { state_serial: u32 },
    /// No state file.
    MissingState,
    /// The state file could not be used; the error says why.
    Unusable(PersistError),
}

/// A zone's state after [`recover_state`], and how it was obtained so that
/// the caller can log anything other than `Consistent`.
#[derive(Debug)]
pub struct Recovered {
    pub state: ZoneState,
    pub recovery: Recovery,
}

/// The state to restore for a zone whose zone file (with serial
/// `zone_serial`) was loaded successfully. Never fails because of the state
/// file; it falls back as follows.
///
/// - Serial mismatch: keep the stored contact and expiry times, which are no
///   later than the true ones, so the zone never outlives its SOA expiry;
///   check the primary at once.
/// - Missing or unusable state: the zone file's modification time stands in
///   for the last contact (it is written seconds after a successful
///   transfer), the expiry is left for [`ZoneTimers::restore`] to compute
///   from it, and a check is due at once.
pub fn recover_state(
    paths: &ZonePaths,
    zone: &Name,
    zone_serial: u32,
    now: UnixTime,
) -> Result<Recovered, PersistError> {
    let (stored, recovery) = match load_state(&paths.state_file, zone) {
        Ok(Some(state)) if state.serial == zone_serial => {
            return Ok(Recovered {
                state,
                recovery: Recovery::Consistent,
            });
        }
        Ok(Some(state)) => {
            let r = Recovery::SerialMismatch {
                state_serial: state.serial,
            };
            (Some(state), r)
        }
        Ok(None) => (None, Recovery::MissingState),
        Err(e) => (None, Recovery::Unusable(e)),
    };
    let stored = stored.filter(|s| s.last_contact.is_some());
    let state = match stored {
        Some(old) => ZoneState {
            serial: zone_serial,
            refresh_due: now,
            source: Source::Transfer,
            ..old
        },
        None => {
            let modified = fs::metadata(&paths.zone_file)
                .and_then(|m| m.modified())
                .map_err(io_err("read modification time of", &paths.zone_file))?;
            ZoneState {
                version: STATE_VERSION,
                zone: zone.to_lowercase().to_string(),
                serial: zone_serial,
                last_contact: Some(UnixTime::from_system(modified)),
                last_primary: None,
                refresh_due: now,
                expire_at: None,
                source: Source::Transfer,
            }
        }
    };
    Ok(Recovered { state, recovery })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::timers::{Jitter, SoaTimers, TimerBounds};
    use std::time::Duration;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// Many writers into one directory at once: every file arrives whole,
    /// and they share syncs instead of four each.
    #[test]
    fn concurrent_writes_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let (runs, shared) = (
            SYNCS_RUN.load(Ordering::Relaxed),
            SYNCS_SHARED.load(Ordering::Relaxed),
        );
        let start = std::sync::Arc::new(std::sync::Barrier::new(64));
        let writers: Vec<_> = (0..64)
            .map(|i| {
                let path = dir.path().join(format!("f{i}"));
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    write_atomic_bytes(&path, format!("file {i}").as_bytes()).unwrap()
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        for i in 0..64 {
            let text = fs::read_to_string(dir.path().join(format!("f{i}"))).unwrap();
            assert_eq!(text, format!("file {i}"));
        }
        assert!(temp_files(dir.path()).is_empty());
        let runs = SYNCS_RUN.load(Ordering::Relaxed) - runs;
        let shared = SYNCS_SHARED.load(Ordering::Relaxed) - shared;
        // 64 writers released together each need two syncs; while the
        // first runs the others queue up behind it and share the next.
        assert!(shared >= 1, "{runs} syncs, none shared");
        eprintln!("64 concurrent writes: {runs} syncs, {shared} of them shared");
    }

    fn temp_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(TEMP_MARK))
            .collect()
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.zone");
        write_atomic_bytes(&path, b"one\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\n");
        write_atomic(&path, |w| {
            for i in 0..1000 {
                writeln!(w, "line {i}")?;
            }
            Ok::<_, io::Error>(())
        })
        .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn failing_writer_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.zone");
        write_atomic_bytes(&path, b"old").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial new contents")?;
            Err(io::Error::other("zone has no SOA"))
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("f.zone") && msg.contains("zone has no SOA"),
            "{msg}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn write_into_missing_dir_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("f.zone");
        let msg = write_atomic_bytes(&path, b"x").unwrap_err().to_string();
        assert!(
            msg.contains("create temp file") && msg.contains("nope"),
            "{msg}"
        );
    }

    #[test]
    fn cleanup_removes_only_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join(".a.zone.outpost-tmp-12-0"), b"x").unwrap();
        fs::write(d.join(".b.json.outpost-tmp-1-7"), b"x").unwrap();
        fs::write(d.join("a.zone"), b"keep").unwrap();
        fs::write(d.join(".hidden"), b"keep").unwrap();
        assert_eq!(cleanup_temp(d).unwrap(), 2);
        let mut left: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden", "a.zone"]);
        assert_eq!(cleanup_temp(&d.join("missing")).unwrap(), 0);
    }

    #[test]
    fn file_stems() {
        assert_eq!(file_stem(&name("Example.COM.")), "example.com");
        assert_eq!(file_stem(&name("example.com")), "example.com");
        assert_eq!(file_stem(&Name::root()), "@");
        assert_eq!(file_stem(&name("_tcp.x-1.example.")), "_tcp.x-1.example");
        // Slashes, escaped dots, percent and odd bytes are escaped.
        let raw = |labels: &[&[u8]]| Name::from_labels(labels.iter().copied()).unwrap();
        assert_eq!(file_stem(&raw(&[b"a/b", b"example"])), "a%2Fb.example");
        assert_eq!(file_stem(&raw(&[b"A B", b"\\x"])), "a%20b.%5Cx");
        assert_eq!(file_stem(&name(r"a\.b.example.")), "a%2Eb.example");
        assert_ne!(
            file_stem(&name(r"a\.b.example.")),
            file_stem(&name("a.b.example."))
        );
        assert_eq!(file_stem(&raw(&[b"100%", b"example"])), "100%25.example");
        assert_eq!(
            file_stem(&raw(&[b"\xff\x00", b"example"])),
            "%FF%00.example"
        );
        assert_eq!(file_stem(&raw(&[b"@", b"example"])), "%40.example");
        // Long names are cut with a hash, staying distinct.
        let label = b"a%".repeat(30);
        let long1 = raw(&[&label, &label, &label, b"one"]);
        let long2 = raw(&[&label, &label, &label, b"two"]);
        let (s1, s2) = (file_stem(&long1), file_stem(&long2));
        assert!(s1.len() <= MAX_STEM && s2.len() <= MAX_STEM);
        assert_ne!(s1, s2);
        assert!(s1.contains('~'));

        let paths = ZonePaths::new(Path::new("/var/lib/outpost"), &name("Example.com."));
        assert_eq!(
            paths.zone_file,
            Path::new("/var/lib/outpost/zones/example.com.zone")
        );
        assert_eq!(
            paths.state_file,
            Path::new("/var/lib/outpost/state/example.com.json")
        );
    }

    fn timers(now: UnixTime) -> ZoneTimers {
        let bounds = TimerBounds {
            min_refresh: Duration::from_secs(60),
            max_refresh: Duration::from_secs(86400),
            min_retry: Duration::from_secs(60),
            max_retry: Duration::from_secs(86400),
            min_expire: Duration::from_secs(3600),
            max_expire: Duration::from_secs(90 * 86400),
        };
        let soa = SoaTimers {
            serial: 42,
            refresh: 3600,
            retry: 600,
            expire: 41 * 86400,
        };
        let mut t = ZoneTimers::from_seed(soa, bounds, now);
        t.transfer_succeeded(now, soa, None, Jitter::NONE);
        t
    }

    fn setup() -> (tempfile::TempDir, ZonePaths, Name) {
        let dir = tempfile::tempdir().unwrap();
        let zone = name("example.org.");
        let paths = ZonePaths::new(dir.path(), &zone);
        paths.create_dirs().unwrap();
        (dir, paths, zone)
    }

    #[test]
    fn state_round_trip() {
        let (_dir, paths, zone) = setup();
        let now = UnixTime(1_700_000_000);
        let primary: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let state = ZoneState::new(&zone, &timers(now), Some(primary));
        save_state(&paths.state_file, &state).unwrap();
        let text = fs::read_to_string(&paths.state_file).unwrap();
        assert!(
            text.contains("\"last_primary\": \"192.0.2.1:53\""),
            "{text}"
        );
        assert!(text.contains("\"source\": \"transfer\""), "{text}");
        let loaded = load_state(&paths.state_file, &zone).unwrap().unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.expire_at, Some(UnixTime(now.0 + 41 * 86400)));
        assert_eq!(loaded.timers(), timers(now).stored());
        // Zone names compare case-insensitively.
        assert!(load_state(&paths.state_file, &name("EXAMPLE.org")).is_ok());
    }

    #[test]
    fn bad_state_files_are_reported() {
        let (_dir, paths, zone) = setup();
        let p = &paths.state_file;
        assert!(load_state(p, &zone).unwrap().is_none());

        let good = ZoneState::new(&zone, &timers(UnixTime(1_000_000)), None);
        let json = serde_json::to_string_pretty(&good).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (json[..json.len() / 2].to_string(), "corrupt"),
            (String::new(), "corrupt"),
            ("\0\0\0\0".into(), "corrupt"),
            ("[1,2]".into(), "version"),
            (
                json.replace("\"version\": 2", "\"version\": 7"),
                "version 7",
            ),
            (
                json.replace("\"serial\": 42", "\"serial\": \"x\""),
                "corrupt",
            ),
            (
                json.replace("\"source\": \"transfer\"", "\"source\": \"x\""),
                "corrupt",
            ),
            (json.replace("example.org.", "example.net."), "example.net"),
        ];
        for (text, expect) in cases {
            fs::write(p, &text).unwrap();
            let msg = load_state(p, &zone).unwrap_err().to_string();
            assert!(
                msg.contains(expect) && msg.contains("example.org.json"),
                "{text:?}: {msg}"
            );
        }
    }

    #[test]
    fn save_zone_then_recover() {
        let (_dir, paths, zone) = setup();
        let now = UnixTime(1_700_000_000);
        let state = ZoneState::new(&zone, &timers(now), None);
        write_atomic_bytes(&paths.zone_file, b"zone data serial 42\n").unwrap();
        save_state(&paths.state_file, &state).unwrap();

        let later = UnixTime(now.0 + 100);
        let r = recover_state(&paths, &zone, 42, later).unwrap();
        assert!(matches!(r.recovery, Recovery::Consistent));
        assert_eq!(r.state, state);
    }

    #[test]
    fn crash_between_zone_and_state() {
        let (_dir, paths, zone) = setup();
        let t1 = UnixTime(1_700_000_000);
        let old = ZoneState::new(&zone, &timers(t1), None);
        write_atomic_bytes(&paths.zone_file, b"serial 42").unwrap();
        save_state(&paths.state_file, &old).unwrap();
        // The next transfer's zone file lands, the process dies before the
        // state file is replaced.
        write_atomic_bytes(&paths.zone_file, b"serial 43").unwrap();
        let now = UnixTime(t1.0 + 5000);
        let r = recover_state(&paths, &zone, 43, now).unwrap();
        assert!(matches!(
            r.recovery,
            Recovery::SerialMismatch { state_serial: 42 }
        ));
        assert_eq!(r.state.serial, 43);
        // Old (earlier) expiry kept, check due at once.
        assert_eq!(r.state.expire_at, old.expire_at);
        assert_eq!(r.state.last_contact, Some(t1));
        assert_eq!(r.state.refresh_due, now);
    }

    #[test]
    fn missing_or_corrupt_state_falls_back_to_mtime() {
        let (_dir, paths, zone) = setup();
        write_atomic_bytes(&paths.zone_file, b"serial 7").unwrap();
        let mtime =
            UnixTime::from_system(fs::metadata(&paths.zone_file).unwrap().modified().unwrap());
        let now = UnixTime(mtime.0 + 60);
        let r = recover_state(&paths, &zone, 7, now).unwrap();
        assert!(matches!(r.recovery, Recovery::MissingState));
        assert_eq!(r.state.last_contact, Some(mtime));
        assert_eq!(r.state.expire_at, None);
        assert_eq!(r.state.refresh_due, now);

        fs::write(&paths.state_file, b"{\"version\": 1, \"zone\": \"exa").unwrap();
        let r = recover_state(&paths, &zone, 7, now).unwrap();
        match &r.recovery {
            Recovery::Unusable(e) => assert!(e.to_string().contains("corrupt"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.state.last_contact, Some(mtime));

        // The fallback state restores to a zone expiring SOA EXPIRE after
        // the zone file was written.
        let t = timers(mtime);
        let restored = ZoneTimers::restore(t.soa(), *t.bounds(), r.state.timers(), now);
        assert_eq!(restored.expire_at(), Some(UnixTime(mtime.0 + 41 * 86400)));
        assert!(restored.check_due(now));
    }
}
