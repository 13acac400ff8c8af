//! A zone's copy on disk: its zone file, its journal and its timer state,
//! and whether they hold what is served.
//!
//! A new copy goes into service first and onto disk second. An IXFR's
//! differences are appended to the journal; a full transfer that continues
//! the journal's chain is appended as the difference it makes, one that
//! does not (or a zone nobody may transfer from us) starts a new epoch with
//! a whole zone file. The zone file is rewritten from the copy in service
//! when the journal has grown past a share of the zone, or when its oldest
//! unwritten change is `zonefile_sync` old. The state file is written last
//! and only describes what is on disk: when a write fails, it keeps
//! describing the older copy, the failure shows in status and health, and
//! the whole copy is written again after a backoff.

use std::path::PathBuf;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::ZoneConfig;
use crate::journal::{Journal, JournalError};
use crate::persist::{self, PersistError, ZonePaths, ZoneState};
use crate::refresh::timers::UnixTime;
use crate::xfr::interp::IxfrDiff;
use crate::zone::Zone;

/// Failed writes are tried again after this, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// The zone file is rewritten once the changes not in it reach this share
/// of the zone's size (and at least [`FLUSH_MIN_BYTES`]): replaying them
/// at start then costs less than reading the zone file.
const FLUSH_SHARE: u64 = 4;
const FLUSH_MIN_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The last write that failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: String,
    pub attempts: u32,
    pub retry_at: UnixTime,
}

/// What a zone's settings say about its files.
#[derive(Debug, Clone, Copy)]
pub struct DiskPolicy {
    /// Keep differences for downstream IXFR: someone may transfer from us.
    pub keep_history: bool,
    pub history_versions: usize,
    pub history_bytes: u64,
    pub zonefile_sync: Duration,
}

impl DiskPolicy {
    pub fn of(config: &ZoneConfig) -> DiskPolicy {
        DiskPolicy {
            keep_history: !config.allow_transfer.is_empty() && config.ixfr_history > 0,
            history_versions: config.ixfr_history,
            history_bytes: config.ixfr_history_bytes,
            zonefile_sync: config.zonefile_sync,
        }
    }
}

#[derive(Debug)]
pub struct Disk {
    paths: ZonePaths,
    /// `None` until the zone has files of its own (a seed copy has none).
    journal: Option<Journal>,
    /// Serial of the zone file.
    file_serial: Option<u32>,
    /// Serial of the copy that the zone file and the journal give.
    serial: Option<u32>,
    /// When the oldest change not in the zone file was journaled.
    dirty_since: Option<UnixTime>,
    failure: Option<Failure>,
    /// Writes that failed since start, for the metric.
    failed_writes: u64,
    /// The timer state last written, so that the same state is not
    /// written (and synced) twice in a row: a new zone's transfer and the
    /// end of its check would otherwise each write it.
    last_state: Option<ZoneState>,
}

fn new_epoch() -> u64 {
    rand::random()
}

impl Disk {
    pub fn new(paths: ZonePaths) -> Disk {
        Disk {
            paths,
            journal: None,
            file_serial: None,
            serial: None,
            dirty_since: None,
            failure: None,
            failed_writes: 0,
            last_state: None,
        }
    }

    pub fn failed_writes(&self) -> u64 {
        self.failed_writes
    }

    /// What loading from disk found: a zone file of `file_serial` with the
    /// journal `journal`, giving the copy of `serial`.
    pub fn loaded(
        &mut self,
        journal: Option<Journal>,
        file_serial: u32,
        serial: u32,
        now: UnixTime,
    ) {
        self.journal = journal;
        self.file_serial = Some(file_serial);
        self.serial = Some(serial);
        self.dirty_since = (file_serial != serial).then_some(now);
    }

    pub fn paths(&self) -> &ZonePaths {
        &self.paths
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Serial of the copy on disk, when it has one.
    pub fn serial(&self) -> Option<u32> {
        self.serial
    }

    /// When this zone's files need attention: a failed write to try
    /// again, or a zone file to bring up to date with the journal.
    pub fn due(&self, policy: &DiskPolicy) -> Option<UnixTime> {
        match &self.failure {
            Some(f) => Some(f.retry_at),
            None => self
                .dirty_since
                .map(|t| t.saturating_add(policy.zonefile_sync)),
        }
    }

    fn fail(&mut self, error: &DiskError, now: UnixTime) {
        self.failed_writes += 1;
        warn!(path = %self.paths.zone_file.display(), "cannot write the copy to disk: {error}");
        let attempts = self.failure.as_ref().map_or(0, |f| f.attempts) + 1;
        let backoff = RETRY_FIRST
            .saturating_mul(1 << (attempts - 1).min(16))
            .min(RETRY_MAX);
        self.failure = Some(Failure {
            error: error.to_string(),
            attempts,
            retry_at: now.saturating_add(backoff),
        });
    }

    /// Records that `zone` (just put in service) replaced the copy of
    /// serial `from`; `diffs`, when known, lead from one to the other.
    pub fn record_change(
        &mut self,
        zone: &Zone,
        diffs: Option<&[IxfrDiff]>,
        state: &ZoneState,
        policy: &DiskPolicy,
        now: UnixTime,
    ) -> Result<(), DiskError> {
        let result = self.try_record_change(zone, diffs, state, policy, now);
        match &result {
            Ok(()) => {
                if self.failure.take().is_some() {
                    info!(zone = %zone.origin(), serial = zone.serial(), "copy on disk again");
                }
            }
            Err(e) => self.fail(e, now),
        }
        result
    }

    fn try_record_change(
        &mut self,
        zone: &Zone,
        diffs: Option<&[IxfrDiff]>,
        state: &ZoneState,
        policy: &DiskPolicy,
        now: UnixTime,
    ) -> Result<(), DiskError> {
        let continues = self.failure.is_none()
            && diffs
                .and_then(|d| d.first())
                .is_some_and(|d| crate::xfr::ixfr::soa_serial(&d.old_soa).ok() == self.serial)
            && self.journal.as_ref().is_some_and(|j| !j.is_broken());
        let (true, Some(diffs)) = (continues, diffs) else {
            return self.write_whole(zone, state);
        };
        let journal = self.journal.as_mut().expect("checked above");
        for d in diffs {
            journal.append(d)?;
        }
        self.serial = Some(zone.serial());
        self.dirty_since.get_or_insert(now);
        self.write_state(state)?;
        let unwritten = self.unwritten_bytes();
        let threshold = (zone.wire_size() as u64 / FLUSH_SHARE).max(FLUSH_MIN_BYTES);
        if unwritten >= threshold {
            self.flush(zone, policy)?;
        } else {
            self.trim(policy)?;
        }
        Ok(())
    }

    /// Octets of journal entries that the zone file does not hold yet.
    fn unwritten_bytes(&self) -> u64 {
        let (Some(j), Some(file_serial)) = (&self.journal, self.file_serial) else {
            return 0;
        };
        match j.chain_from(file_serial) {
            Some(range) => j.entries()[range].iter().map(|e| e.size()).sum(),
            None => j.size(),
        }
    }

    /// Writes `zone` whole as the start of a new epoch, then its state.
    pub fn write_whole(&mut self, zone: &Zone, state: &ZoneState) -> Result<(), DiskError> {
        self.paths.create_dirs()?;
        let epoch = new_epoch();
        // Zone file first: a crash before the journal is replaced leaves a
        // journal of another epoch, which is never applied to this file.
        persist::write_zone_file(&self.paths.zone_file, zone, epoch)?;
        self.file_serial = Some(zone.serial());
        self.serial = Some(zone.serial());
        self.dirty_since = None;
        // The journal file waits for the first difference: a zone
        // transferred whole costs one file and one fsync less. The old
        // epoch's file goes now so that its octets do not linger (losing
        // this unlink in a crash is harmless: that epoch is never read).
        match std::fs::remove_file(&self.paths.journal_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(persist::PersistError::Io {
                    op: "remove old journal",
                    path: self.paths.journal_file.clone(),
                    error: e,
                }
                .into());
            }
        }
        self.journal = Some(Journal::empty(&self.paths.journal_file, epoch));
        self.write_state(state)?;
        Ok(())
    }

    /// Brings the zone file up to date with the journal, from `zone`, the
    /// copy in service, which must be the one the journal ends at.
    pub fn flush(&mut self, zone: &Zone, policy: &DiskPolicy) -> Result<(), DiskError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        if self.serial != Some(zone.serial()) || self.failure.is_some() {
            // Not what the journal holds: only a whole write fixes that.
            return Ok(());
        }
        persist::write_zone_file(&self.paths.zone_file, zone, journal.epoch())?;
        self.file_serial = Some(zone.serial());
        self.dirty_since = None;
        self.trim(policy)
    }

    /// Drops journal entries neither needed to rebuild the copy nor kept
    /// as history.
    fn trim(&mut self, policy: &DiskPolicy) -> Result<(), DiskError> {
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        let entries = journal.entries();
        let needed = match self.file_serial.and_then(|s| journal.chain_from(s)) {
            Some(range) => range.len(),
            None => entries.len(),
        };
        let mut keep = needed;
        if policy.keep_history {
            let mut bytes: u64 = entries[entries.len() - keep..]
                .iter()
                .map(|e| e.size())
                .sum();
            for e in entries[..entries.len() - keep].iter().rev() {
                if keep >= policy.history_versions || bytes + e.size() > policy.history_bytes {
                    break;
                }
                bytes += e.size();
                keep += 1;
            }
        }
        if keep < entries.len() {
            journal.retain_last(keep)?;
        }
        Ok(())
    }

    /// Time-driven work: the zone file after `zonefile_sync`, or the whole
    /// copy again after a failure. `zone` is the copy in service.
    pub fn maintain(
        &mut self,
        zone: Option<&Zone>,
        state: Option<&ZoneState>,
        policy: &DiskPolicy,
        now: UnixTime,
    ) -> Result<(), DiskError> {
        let Some(zone) = zone else { return Ok(()) };
        if let Some(f) = &self.failure {
            if f.retry_at > now {
                return Ok(());
            }
            let Some(state) = state else { return Ok(()) };
            let result = self.write_whole(zone, state);
            match &result {
                Ok(()) => {
                    self.failure = None;
                    info!(zone = %zone.origin(), serial = zone.serial(), "copy on disk again");
                }
                Err(e) => self.fail(e, now),
            }
            return result;
        }
        if self
            .dirty_since
            .is_some_and(|t| t.saturating_add(policy.zonefile_sync) <= now)
        {
            let result = self.flush(zone, policy);
            if let Err(e) = &result {
                self.fail(e, now);
            }
            return result;
        }
        Ok(())
    }

    /// Writes the timer state, if it describes the copy on disk.
    pub fn save_state(&mut self, state: &ZoneState) -> Result<(), DiskError> {
        if !self.state_needs_writing(state) {
            return Ok(());
        }
        self.write_state(state)
    }

    /// Whether [`Disk::save_state`] would write anything: the state of a
    /// copy on disk that differs from the one last written.
    pub fn state_needs_writing(&self, state: &ZoneState) -> bool {
        self.failure.is_none()
            && self.serial == Some(state.serial)
            && self.last_state.as_ref() != Some(state)
    }

    fn write_state(&mut self, state: &ZoneState) -> Result<(), DiskError> {
        self.last_state = None;
        persist::save_state(&self.paths.state_file, state)?;
        self.last_state = Some(state.clone());
        Ok(())
    }

    /// The differences from `from` to `to`, from the journal.
    pub fn history(&self, from: u32, to: u32) -> Option<Vec<IxfrDiff>> {
        let journal = self.journal.as_ref()?;
        let range = journal.chain_from(from)?;
        if range.is_empty() || journal.entries()[range.end - 1].to != to {
            return None;
        }
        match journal.read(range) {
            Ok(diffs) => Some(diffs),
            Err(e) => {
                warn!("{e}");
                None
            }
        }
    }

    /// The journal file, for removal with the zone.
    pub fn journal_path(&self) -> PathBuf {
        self.paths.journal_file.clone()
    }
}
