//! Refresh: keeping each zone's copy current, and knowing when it has
//! expired.
//!
//! One scheduler task holds every zone's next deadline; when one is due, the
//! zone is serviced: its files brought up to date if that is due
//! ([`disk`]), and an SOA check if one is due: SOA query to the primaries in
//! order, a transfer when the primary has a newer serial ([`transfer`]),
//! then the new snapshot is put in service and persisted, and the timers
//! (refresh, retry, expire) move on. Timer state is written to disk at
//! every change, as absolute wall-clock times, so a restart or a crash
//! neither resets nor skips the expiry clock.
//!
//! Whether a zone is answered is decided in one place,
//! [`ZoneRuntime::apply_expiry`], from its timers and its configuration of
//! the moment; the query path and every report (status, health, metrics)
//! read that one decision from the zone's entry.

pub mod disk;
pub mod scheduler;
pub mod timers;
mod transfer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::rr::{Name, RData, Record};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::{DamagedCopy, OnExpire, ZoneConfig, ZoneRole};
use crate::journal::{Journal, JournalError};
use crate::metrics::Events;
use crate::persist::{self, Integrity, PersistError, Recovery, ZonePaths, ZoneState};
use crate::store::ZoneEntry;
use crate::xfr::client::{self, XfrError};
use crate::xfr::interp::IxfrDiff;
use crate::xfr::ixfr::{self, IxfrError};
use crate::zone::{Zone, ZoneError};
use crate::zonefile::{self, ZoneFileError};
use disk::{Disk, DiskError, DiskPolicy};
use scheduler::{Scheduler, instant_at};
use timers::{Jitter, SoaTimers, SoaVerdict, TimerState, UnixTime, ZoneTimers};
pub use transfer::TransferMethod;

/// How long one SOA query may take (hickory-free UDP, one retry inside).
const SOA_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a zone that is expired but still served is logged at warn.
const EXPIRED_WARN_EVERY: Duration = Duration::from_secs(3600);

/// Every `ZoneStatus::state`, for the metrics' one-hot state gauge.
/// `static`: no primaries, served as loaded (seed or disk), never refreshed.
pub const STATES: [&str; 6] = [
    "fresh",
    "refreshing",
    "retrying",
    "expired",
    "expired-serving",
    "static",
];

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Xfr(Box<XfrError>),
    #[error("zone {zone}: transfer from {primary} rejected: {error}")]
    Build {
        zone: String,
        primary: SocketAddr,
        error: Box<ZoneError>,
    },
    #[error(
        "zone {zone}: transfer from {primary} ended with serial {got}, but the SOA query announced {announced}"
    )]
    SerialMoved {
        zone: String,
        primary: SocketAddr,
        got: u32,
        announced: u32,
    },
    #[error("zone {zone}: transfer from {primary} rejected: {error}")]
    Catalog {
        zone: String,
        primary: SocketAddr,
        error: crate::catalog::CatalogError,
    },
    #[error("zone {zone}: the new copy is in service but not on disk: {error}")]
    Persist { zone: String, error: DiskError },
    #[error("zone {zone}: {source_file}: {error}")]
    Load {
        zone: String,
        source_file: String,
        error: Box<LoadError>,
    },
    #[error("zone {zone}: background task failed: {error}")]
    Task { zone: String, error: String },
}

/// Why a zone's copy could not be loaded from a file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    File(#[from] ZoneFileError),
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl From<XfrError> for RefreshError {
    fn from(e: XfrError) -> Self {
        RefreshError::Xfr(Box::new(e))
    }
}

/// Where the served copy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataOrigin {
    Seed,
    Disk,
    Transfer,
}

/// What changes about a zone as it is refreshed. Behind a mutex that is
/// never held across an await and never touched by queries.
#[derive(Debug)]
struct ZoneRuntimeState {
    /// `None` while there is no copy at all.
    timers: Option<ZoneTimers>,
    origin: Option<DataOrigin>,
    last_primary: Option<SocketAddr>,
    last_error: Option<String>,
    last_expired_warning: Option<UnixTime>,
    /// Whether the expiry (with SERVFAIL) was last logged as in force.
    logged_expired: bool,
    /// A full transfer is wanted at the next check, whatever the serials.
    force_axfr: bool,
    /// When the zone with no copy is due again.
    no_copy_due: UnixTime,
    /// Failed attempts of a zone with no copy, for its backoff.
    no_copy_failures: u32,
    /// The copy loaded from disk failed its integrity check: why. Kept
    /// until a transfer replaces it, whether the damaged copy is served
    /// (`on_damaged_copy = "serve"`) or not.
    copy_problem: Option<String>,
}

/// One secondary zone: its configuration, its served entry, its files and
/// its timers.
#[derive(Debug)]
pub struct ZoneRuntime {
    pub config: Arc<ZoneConfig>,
    pub entry: Arc<ZoneEntry>,
    /// Shared with the runtime a reload makes of the same zone.
    disk: Arc<Mutex<Disk>>,
    state: Mutex<ZoneRuntimeState>,
    /// Catalog zones only: set by the daemon each time membership is
    /// worked out.
    catalog_report: Mutex<Option<CatalogReport>>,
    /// SOA checks finished (whatever their outcome), for an operator who
    /// waits for the one asked for.
    checks_done: std::sync::atomic::AtomicU64,
    /// SOA checks begun. A zone's checks run one at a time, so the n-th
    /// begun is the n-th done: an operator who asks for a check while one
    /// is running waits for the one after it, not for the running one.
    checks_started: std::sync::atomic::AtomicU64,
    /// Replaced by a reload's runtime for the same zone, or removed. A
    /// check of this runtime still running then must not write its
    /// settings' verdict into the entry the new runtime now governs.
    /// Set and read under `state`'s lock.
    retired: std::sync::atomic::AtomicBool,
}

/// A zone's status, as the control endpoint and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneStatus {
    pub zone: String,
    pub serial: Option<u32>,
    pub state: &'static str,
    /// Answered from its data now: what the query path does.
    pub served: bool,
    pub source: Option<DataOrigin>,
    pub last_contact: Option<u64>,
    pub last_primary: Option<SocketAddr>,
    pub next_refresh: Option<u64>,
    pub expires_at: Option<u64>,
    pub expires_in: Option<u64>,
    pub last_error: Option<String>,
    pub records: usize,
    /// Signed zones: when the first RRSIG of the served copy expires.
    pub signatures_expire_at: Option<u64>,
    /// Set when signatures expire before the zone would, or already have:
    /// validating resolvers would then reject what Outpost still serves.
    pub signature_warning: Option<String>,
    /// Set while the copy in service is not on disk (a failed write, tried
    /// again after a backoff): a crash now would fall back to the older one.
    pub disk_error: Option<String>,
    /// Writes of this zone's files that failed since start.
    pub disk_failures: u64,
    /// Set while the copy on disk that failed its integrity check has not
    /// been replaced by a transfer, served (`on_damaged_copy = "serve"`)
    /// or not.
    pub copy_problem: Option<String>,
    /// The catalog zone that lists this zone (RFC 9432), if one does.
    pub catalog: Option<String>,
    /// A catalog zone: how many members it gives Outpost to serve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    /// A catalog zone: what in it was not followed, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catalog_problems: Vec<String>,
    /// SOA checks finished since start (or since the zone was last
    /// reconfigured).
    pub checks: u64,
    /// SOA checks begun, counted the same way: `outpost refresh --wait`
    /// reads it before asking and waits for `checks` to pass it, which
    /// is the check that begins after the request.
    pub checks_started: u64,
}

/// What the daemon last made of a catalog zone's copy.
#[derive(Debug, Clone, Default)]
pub struct CatalogReport {
    pub members: usize,
    pub problems: Vec<String>,
}

pub fn build_limits(config: &ZoneConfig) -> crate::zone::Limits {
    config.limits
}

pub(crate) fn soa_timers(soa: &Record) -> Option<SoaTimers> {
    let RData::SOA(s) = &soa.data else {
        return None;
    };
    // Negative SOA timer values are nonsense; read them as 0 and let the
    // bounds take over.
    let secs = |v: i32| u32::try_from(v).unwrap_or(0);
    Some(SoaTimers {
        serial: s.serial,
        refresh: secs(s.refresh),
        retry: secs(s.retry),
        expire: secs(s.expire),
    })
}

pub(crate) fn jitter() -> Jitter {
    Jitter::new(rand::random::<f64>())
}

/// A copy read back from disk, with what its files said.
struct Persisted {
    zone: Zone,
    state: ZoneState,
    journal: Option<Journal>,
    file_serial: u32,
    /// The copy failed its integrity check: why.
    damaged: Option<String>,
}

impl ZoneRuntime {
    /// Loads a zone for serving before any network traffic: the persisted
    /// copy with its stored clock, else the seed file, else nothing.
    pub fn load(config: Arc<ZoneConfig>, data_dir: &std::path::Path, now: UnixTime) -> ZoneRuntime {
        let entry = Arc::new(ZoneEntry::new(config.name.clone()));
        let paths = ZonePaths::new(data_dir, &config.name);
        let mut disk = Disk::new(paths.clone());
        let mut state = ZoneRuntimeState {
            timers: None,
            origin: None,
            last_primary: None,
            last_error: None,
            last_expired_warning: None,
            logged_expired: false,
            force_axfr: false,
            no_copy_due: now,
            no_copy_failures: 0,
            copy_problem: None,
        };
        match load_persisted(&config, &paths, now) {
            Ok(Some(p)) => {
                let soa = soa_timers(p.zone.soa()).expect("a built zone has an SOA");
                let t = ZoneTimers::restore(soa, config.timers, p.state.timers(), now);
                let serve = match &p.damaged {
                    None => true,
                    Some(why) => {
                        state.force_axfr = true;
                        let serve = config.on_damaged_copy == DamagedCopy::Serve;
                        let what = if serve {
                            "served anyway (on_damaged_copy = serve), flagged"
                        } else {
                            "not served (on_damaged_copy = refuse) until a transfer succeeds"
                        };
                        let msg =
                            format!("copy on disk failed its integrity check ({why}): {what}");
                        error!(zone = %config.name, file = %paths.zone_file.display(), "{msg}");
                        state.last_error = Some(msg.clone());
                        // Refused too: last_error is overwritten by the
                        // next failed check, and status and health would
                        // then only say "no copy yet", hiding why.
                        state.copy_problem = Some(msg);
                        serve
                    }
                };
                if serve {
                    info!(zone = %config.name, serial = p.zone.serial(), records = p.zone.record_count(),
                          expires_in = t.expires_in(now).map(|d| d.as_secs()),
                          "serving the copy on disk");
                    state.last_primary = p.state.last_primary;
                    state.timers = Some(t);
                    state.origin = Some(DataOrigin::Disk);
                    if p.damaged.is_none() {
                        disk.loaded(p.journal, p.file_serial, p.zone.serial(), now);
                    }
                    entry.swap(Arc::new(p.zone));
                }
            }
            Ok(None) => {}
            Err(e) => {
                error!(zone = %config.name, "{e}");
                state.last_error = Some(e.to_string());
            }
        }
        if state.timers.is_none() && state.copy_problem.is_none() && !state.force_axfr {
            match load_seed(&config) {
                Ok(Some(zone)) => {
                    let soa = soa_timers(zone.soa()).expect("a built zone has an SOA");
                    info!(zone = %config.name, serial = zone.serial(), records = zone.record_count(),
                          "serving the seed file until the first transfer");
                    state.timers = Some(ZoneTimers::from_seed(soa, config.timers, now));
                    state.origin = Some(DataOrigin::Seed);
                    entry.swap(Arc::new(zone));
                }
                Ok(None) => {
                    // Warned about once for all such zones, by whoever
                    // loads them: a new catalog of thousands would
                    // otherwise be thousands of lines.
                    info!(zone = %config.name, "no copy on disk and no seed file: SERVFAIL until the first transfer");
                }
                Err(e) => {
                    error!(zone = %config.name, "{e}");
                    state.last_error = Some(e.to_string());
                }
            }
        }
        let rt = ZoneRuntime {
            config,
            entry,
            disk: Arc::new(Mutex::new(disk)),
            state: Mutex::new(state),
            catalog_report: Mutex::new(None),
            checks_done: Default::default(),
            checks_started: Default::default(),
            retired: Default::default(),
        };
        rt.apply_expiry(now);
        if let Some(w) = rt.status(now).signature_warning {
            warn!(zone = %rt.name(), "{w}");
        }
        rt
    }

    pub fn name(&self) -> &Name {
        &self.config.name
    }

    fn zone_text(&self) -> String {
        crate::rr::zone_text(&self.config.name)
    }

    /// The same zone under a changed configuration (a reload): the served
    /// entry, the files and the clock carry over, and the new settings
    /// apply at once, to the answers too.
    pub fn reconfigure(&self, config: Arc<ZoneConfig>, now: UnixTime) -> ZoneRuntime {
        let st = self.lock();
        self.retired
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let timers = st
            .timers
            .as_ref()
            .map(|t| ZoneTimers::restore(t.soa(), config.timers, t.stored(), now));
        let state = ZoneRuntimeState {
            timers,
            origin: st.origin,
            last_primary: st.last_primary,
            last_error: st.last_error.clone(),
            last_expired_warning: st.last_expired_warning,
            logged_expired: st.logged_expired,
            force_axfr: st.force_axfr,
            no_copy_due: now,
            no_copy_failures: st.no_copy_failures,
            copy_problem: st.copy_problem.clone(),
        };
        drop(st);
        let rt = ZoneRuntime {
            config,
            entry: self.entry.clone(),
            disk: self.disk.clone(),
            state: Mutex::new(state),
            catalog_report: Mutex::new(self.catalog_report().clone()),
            checks_done: Default::default(),
            checks_started: Default::default(),
            retired: Default::default(),
        };
        rt.apply_expiry(now);
        rt
    }

    /// No longer served by this runtime (its zone was removed).
    pub fn retire(&self) {
        let _st = self.lock();
        self.retired
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Time left before our copy expires, for the EDNS EXPIRE option we hand
    /// downstream (RFC 7314 §3); `None` while there is no copy.
    pub fn expires_in(&self, now: UnixTime) -> Option<Duration> {
        self.lock().timers.as_ref().and_then(|t| t.expires_in(now))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ZoneRuntimeState> {
        // A panic elsewhere must not stop the zone from being refreshed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The one place that decides whether the zone is answered: from its
    /// timers and `on_expire` as configured now, into the entry the query
    /// path reads. Logs the changes.
    fn apply_expiry(&self, now: UnixTime) {
        let mut st = self.lock();
        if self.retired.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Some(t) = st.timers.as_mut() {
            t.expiry_check(now);
        }
        let Some(t) = st.timers.clone() else {
            self.entry.set_servfail_at(None);
            return;
        };
        let servfail_at = match self.config.on_expire {
            OnExpire::Servfail => t.expire_at().map(|at| at.0),
            OnExpire::KeepServing => None,
        };
        self.entry.set_servfail_at(servfail_at);
        let expired = t.is_expired(now);
        let refused = expired && self.config.on_expire == OnExpire::Servfail;
        if refused != st.logged_expired {
            if refused {
                warn!(zone = %self.name(), serial = t.serial(), "zone expired: answering SERVFAIL (on_expire = servfail) until a primary answers");
            } else {
                info!(zone = %self.name(), serial = t.serial(), "zone answered again");
            }
            st.logged_expired = refused;
        }
        if expired && !refused {
            let due = st
                .last_expired_warning
                .is_none_or(|at| at.saturating_add(EXPIRED_WARN_EVERY) <= now);
            if due {
                st.last_expired_warning = Some(now);
                warn!(zone = %self.name(), serial = t.serial(),
                      expired_at = t.expire_at().map(|s| s.0),
                      "zone expired; still serving the last copy (on_expire = keep-serving)");
            }
        }
    }

    /// Whether an SOA check should run now.
    fn check_due(&self, now: UnixTime) -> bool {
        let st = self.lock();
        st.force_axfr
            || match &st.timers {
                Some(t) => t.check_due(now),
                None => st.no_copy_due <= now,
            }
    }

    /// When the scheduler should wake this zone next.
    fn next_due(&self, now: UnixTime) -> UnixTime {
        let disk_due = {
            let disk = self.disk.lock().unwrap_or_else(|p| p.into_inner());
            disk.due(&DiskPolicy::of(&self.config))
        };
        let st = self.lock();
        let mut next = match &st.timers {
            Some(t) => t.next_due(now).unwrap_or(now),
            None => st.no_copy_due,
        };
        if st.timers.as_ref().is_some_and(|t| t.is_expired(now))
            && self.config.on_expire == OnExpire::KeepServing
        {
            next = next.min(now.saturating_add(EXPIRED_WARN_EVERY));
        }
        if self.config.primaries.is_empty() {
            // A static zone: only the expiry log and its files are left.
            next = now.saturating_add(EXPIRED_WARN_EVERY);
        }
        if let Some(d) = disk_due {
            next = next.min(d);
        }
        next
    }

    pub fn status(&self, now: UnixTime) -> ZoneStatus {
        let (disk_error, disk_failures) = {
            let disk = self.disk.lock().unwrap_or_else(|p| p.into_inner());
            (
                disk.failure().map(|f| f.error.clone()),
                disk.failed_writes(),
            )
        };
        let st = self.lock();
        let snapshot = self.entry.snapshot();
        let served = self.entry.serves_at(now.0);
        let records = snapshot.as_ref().map_or(0, |z| z.record_count());
        let signatures_expire_at = snapshot
            .as_ref()
            .and_then(|z| z.earliest_signature_expiration(now.0));
        let (serial, state, last_contact, next_refresh, expires_at, expires_in) = match &st.timers {
            Some(t) => {
                let s = t.status(now);
                let name = match s.state {
                    TimerState::Expired if served => "expired-serving",
                    TimerState::Expired => "expired",
                    _ if self.config.primaries.is_empty() => "static",
                    TimerState::Fresh => "fresh",
                    TimerState::Refreshing => "refreshing",
                    TimerState::Retrying => "retrying",
                };
                (
                    Some(s.serial),
                    name,
                    s.last_contact.map(|t| t.0),
                    s.refresh_due.map(|t| t.0),
                    s.expire_at.map(|t| t.0),
                    s.expires_in.map(|d| d.as_secs()),
                )
            }
            None => {
                let state = if self.config.primaries.is_empty() {
                    "static"
                } else {
                    "retrying"
                };
                (None, state, None, Some(st.no_copy_due.0), None, None)
            }
        };
        let signature_warning = signatures_expire_at.and_then(|sig| {
            if sig <= now.0 {
                Some(format!(
                    "RRSIGs expired at {sig} (unix time): validating resolvers reject this zone"
                ))
            } else if expires_at.is_some_and(|e| sig < e) {
                Some(format!(
                    "RRSIGs expire at {sig} (unix time), before the zone's own expiry"
                ))
            } else {
                None
            }
        });
        // Cloned first: a guard taken inside the literal would live to its
        // end, and a second one would wait on the first forever.
        let catalog_report = self.catalog_report().clone();
        ZoneStatus {
            signatures_expire_at,
            signature_warning,
            zone: self.name().to_string(),
            serial,
            state,
            served,
            source: st.origin,
            last_contact,
            last_primary: st.last_primary,
            next_refresh,
            expires_at,
            expires_in,
            last_error: st.last_error.clone(),
            records,
            disk_error,
            disk_failures,
            copy_problem: st.copy_problem.clone(),
            catalog: match &self.config.role {
                ZoneRole::Member(c) => Some(c.to_string()),
                _ => None,
            },
            members: catalog_report.as_ref().map(|r| r.members),
            catalog_problems: catalog_report.map(|r| r.problems).unwrap_or_default(),
            checks: self.checks_done(),
            checks_started: self
                .checks_started
                .load(std::sync::atomic::Ordering::Acquire),
        }
    }

    fn catalog_report(&self) -> std::sync::MutexGuard<'_, Option<CatalogReport>> {
        self.catalog_report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// SOA checks finished since this runtime was made.
    pub fn checks_done(&self) -> u64 {
        self.checks_done.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_catalog_report(&self, report: CatalogReport) {
        *self.catalog_report() = Some(report);
    }

    /// The timer state as it would be written now.
    fn current_state(&self) -> Option<ZoneState> {
        let st = self.lock();
        let t = st.timers.as_ref()?;
        // Seed copies have nothing on disk to pair the state with.
        (t.source() != timers::Source::Seed)
            .then(|| ZoneState::new(self.name(), t, st.last_primary))
    }

    /// Writes the timer state, when it describes the copy on disk.
    async fn save_state(&self) {
        let Some(state) = self.current_state() else {
            return;
        };
        // Most checks end with the state just written by their transfer, or
        // unchanged: no need for a blocking thread to find that out. A lock
        // held by a write in progress is not waited for here.
        if let Ok(disk) = self.disk.try_lock()
            && !disk.state_needs_writing(&state)
        {
            return;
        }
        let disk = self.disk.clone();
        let result = tokio::task::spawn_blocking(move || {
            disk.lock()
                .unwrap_or_else(|p| p.into_inner())
                .save_state(&state)
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(zone = %self.name(), "cannot save timer state: {e}"),
            Err(e) => error!(zone = %self.name(), "cannot save timer state: {e}"),
        }
    }

    /// The zone file after `zonefile_sync`, or the whole copy again after a
    /// failed write, when due.
    async fn maintain_disk(&self, now: UnixTime) {
        let policy = DiskPolicy::of(&self.config);
        let due = {
            let disk = self.disk.lock().unwrap_or_else(|p| p.into_inner());
            disk.due(&policy)
        };
        if due.is_none_or(|d| d > now) {
            return;
        }
        let zone = self.entry.snapshot();
        let state = self.current_state();
        let disk = self.disk.clone();
        let _ = tokio::task::spawn_blocking(move || {
            disk.lock().unwrap_or_else(|p| p.into_inner()).maintain(
                zone.as_deref(),
                state.as_ref(),
                &policy,
                now,
            )
        })
        .await;
    }

    /// The differences from serial `from` to `to`, for downstream IXFR,
    /// read from the journal; `None` when it does not hold them.
    pub async fn history_since(&self, from: u32, to: u32) -> Option<Vec<Arc<IxfrDiff>>> {
        let disk = self.disk.clone();
        let diffs = tokio::task::spawn_blocking(move || {
            disk.lock()
                .unwrap_or_else(|p| p.into_inner())
                .history(from, to)
        })
        .await
        .ok()??;
        Some(diffs.into_iter().map(Arc::new).collect())
    }
}

/// Reads the zone's copy on disk: the zone file, checked against its
/// integrity line, then the journal's differences from its serial on.
fn load_persisted(
    config: &ZoneConfig,
    paths: &ZonePaths,
    now: UnixTime,
) -> Result<Option<Persisted>, RefreshError> {
    if !paths.zone_file.exists() {
        return Ok(None);
    }
    let fail = |error: LoadError| RefreshError::Load {
        zone: crate::rr::zone_text(&config.name),
        source_file: paths.zone_file.display().to_string(),
        error: Box::new(error),
    };
    let legacy = persist::state_is_legacy(&paths.state_file);
    let file = persist::read_zone_file(&paths.zone_file, &config.name, legacy)
        .map_err(|e| fail(e.into()))?;
    let mut zone =
        Zone::build_raw(&config.name, file.records, &config.limits).map_err(|e| fail(e.into()))?;
    let file_serial = zone.serial();
    let mut journal = None;
    let mut damaged = None;
    match file.integrity {
        Integrity::Verified(mark) => {
            let (j, torn) =
                Journal::open(&paths.journal_file, mark.epoch).map_err(|e| fail(e.into()))?;
            if let Some(t) = torn {
                warn!(zone = %config.name, journal = %paths.journal_file.display(), dropped = t.dropped,
                      "journal ended in a torn or damaged entry (a crash during a write): dropped");
            }
            if let Some(range) = j.chain_from(mark.serial).filter(|r| !r.is_empty()) {
                let diffs = j.read(range).map_err(|e| fail(e.into()))?;
                let to = diffs.last().map_or(mark.serial, |d| {
                    ixfr::soa_serial(&d.new_soa).unwrap_or(mark.serial)
                });
                match ixfr::apply(&zone, &diffs, to, &config.limits) {
                    Ok(z) => {
                        info!(zone = %config.name, from = mark.serial, to, differences = diffs.len(),
                              "journal replayed onto the zone file");
                        zone = z;
                    }
                    Err(e) => {
                        let e: IxfrError = e;
                        damaged = Some(format!("journal does not apply to the zone file: {e}"));
                    }
                }
            }
            journal = Some(j);
        }
        Integrity::Legacy => {
            info!(zone = %config.name, "zone file written by an earlier version, without an integrity line");
        }
        Integrity::Damaged(why) => damaged = Some(why),
    }
    let recovered = persist::recover_state(paths, &config.name, zone.serial(), now)
        .map_err(|e| fail(e.into()))?;
    match &recovered.recovery {
        Recovery::Consistent => {}
        Recovery::SerialMismatch { state_serial } => {
            warn!(zone = %config.name, state_serial, zone_serial = zone.serial(),
                  "timer state recovered conservatively: it belongs to another serial")
        }
        Recovery::MissingState => {
            warn!(zone = %config.name, "timer state recovered conservatively: no state file")
        }
        Recovery::Unusable(e) => {
            warn!(zone = %config.name, "timer state recovered conservatively: {e}")
        }
    }
    Ok(Some(Persisted {
        zone,
        state: recovered.state,
        journal,
        file_serial,
        damaged,
    }))
}

/// Loads a zone from its seed file, if it has one.
pub fn load_seed(config: &ZoneConfig) -> Result<Option<Zone>, RefreshError> {
    let Some(path) = &config.seed_file else {
        return Ok(None);
    };
    let fail = |error: LoadError| RefreshError::Load {
        zone: crate::rr::zone_text(&config.name),
        source_file: path.display().to_string(),
        error: Box::new(error),
    };
    let records = zonefile::parse_file_raw(path, &config.name).map_err(|e| fail(e.into()))?;
    let zone =
        Zone::build_raw(&config.name, records, &config.limits).map_err(|e| fail(e.into()))?;
    Ok(Some(zone))
}

/// Runs the refresh of every secondary zone.
pub struct Refresher {
    events: Arc<Events>,
    zones: RwLock<HashMap<Name, Arc<ZoneRuntime>>>,
    scheduler: Scheduler<Name>,
    permits: Arc<Semaphore>,
    /// Woken when a catalog zone's copy in service changes.
    catalog_changed: Arc<tokio::sync::Notify>,
    /// One per primary address (known from the configuration, so bounded
    /// by it): checks towards that primary at once.
    per_primary: Mutex<HashMap<SocketAddr, Arc<Semaphore>>>,
    limits: crate::config::RefreshLimits,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher").finish_non_exhaustive()
    }
}

impl Refresher {
    /// Starts the scheduler and the task that runs due checks.
    pub fn start(
        zones: Vec<Arc<ZoneRuntime>>,
        events: Arc<Events>,
        limits: crate::config::RefreshLimits,
    ) -> (Arc<Refresher>, JoinHandle<()>) {
        let (scheduler, due) = Scheduler::spawn();
        let refresher = Arc::new(Refresher {
            events,
            zones: RwLock::new(HashMap::new()),
            scheduler,
            permits: Arc::new(Semaphore::new(limits.max_checks)),
            catalog_changed: Arc::new(tokio::sync::Notify::new()),
            per_primary: Mutex::new(HashMap::new()),
            limits,
        });
        for z in zones {
            refresher.add(z);
        }
        let task = tokio::spawn(refresher.clone().run(due));
        (refresher, task)
    }

    fn zones_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Name, Arc<ZoneRuntime>>> {
        self.zones.read().unwrap_or_else(|p| p.into_inner())
    }

    fn primary_slot(&self, primary: SocketAddr) -> Arc<Semaphore> {
        self.per_primary
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(primary)
            .or_insert_with(|| Arc::new(Semaphore::new(self.limits.max_checks_per_primary)))
            .clone()
    }

    /// Woken (once for any number of changes) when a catalog zone's copy
    /// in service changes: membership is then worked out again.
    pub fn catalog_changed(&self) -> Arc<tokio::sync::Notify> {
        self.catalog_changed.clone()
    }

    pub fn zone(&self, name: &Name) -> Option<Arc<ZoneRuntime>> {
        self.zones_read().get(name).cloned()
    }

    pub fn zones(&self) -> Vec<Arc<ZoneRuntime>> {
        self.zones_read().values().cloned().collect()
    }

    /// Puts a zone under refresh, due at its own time.
    pub fn add(&self, zone: Arc<ZoneRuntime>) {
        let now = UnixTime::now();
        let due = instant_at(zone.next_due(now), now);
        let name = zone.name().clone();
        self.zones
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), zone);
        self.scheduler.schedule(name, due);
    }

    pub fn remove(&self, name: &Name) -> Option<Arc<ZoneRuntime>> {
        self.scheduler.remove(name);
        self.zones
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
    }

    /// A NOTIFY (RFC 1996) or an operator asked for an SOA check now;
    /// duplicates while one is pending merge into it.
    pub fn check_now(&self, name: &Name, serial: Option<u32>) -> bool {
        let Some(zone) = self.zone(name) else {
            return false;
        };
        let now = UnixTime::now();
        let outcome = {
            let mut st = zone.lock();
            if st.timers.is_none() {
                // No copy: check now and start the backoff over.
                st.no_copy_due = now;
                st.no_copy_failures = 0;
            }
            st.timers.as_mut().map(|t| t.notify_received(now, serial))
        };
        match outcome {
            Some(timers::NotifyOutcome::AlreadyCurrent) => false,
            _ => {
                self.scheduler.check_now(name.clone());
                true
            }
        }
    }

    /// Operator: transfer the whole zone now, whatever the serials say.
    pub fn retransfer(&self, name: &Name) -> bool {
        let Some(zone) = self.zone(name) else {
            return false;
        };
        zone.lock().force_axfr = true;
        self.scheduler.check_now(name.clone());
        true
    }

    pub fn status(&self) -> Vec<ZoneStatus> {
        let now = UnixTime::now();
        let mut all: Vec<ZoneStatus> = self.zones_read().values().map(|z| z.status(now)).collect();
        all.sort_by(|a, b| a.zone.cmp(&b.zone));
        all
    }

    async fn run(self: Arc<Self>, mut due: mpsc::UnboundedReceiver<Name>) {
        while let Some(name) = due.recv().await {
            // A zone removed by a reload may still be in the pipe.
            let Some(zone) = self.zone(&name) else {
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                let _permit = this.permits.clone().acquire_owned().await;
                // A panic in one wake-up (a bug, or a library's) must cost one
                // attempt, not the zone's refreshes forever: the check it left
                // open is closed as failed and the zone is scheduled again.
                let before = zone.entry.snapshot();
                let inner = tokio::spawn({
                    let (zone, this) = (zone.clone(), this.clone());
                    async move { service(&zone, &this).await }
                });
                if let Err(e) = inner.await
                    && e.is_panic()
                {
                    let why = panic_text(e.into_panic());
                    error!(zone = %name, error = %why, "refresh task panicked; counted as a failed attempt");
                    let now = UnixTime::now();
                    let mut st = zone.lock();
                    st.last_error = Some(format!("internal error: {why}"));
                    fail(&mut st, now, &zone.config);
                    drop(st);
                    // Counted as done only if the check had begun: the
                    // panic may have come before it.
                    use std::sync::atomic::Ordering::{Acquire, Release};
                    if zone.checks_started.load(Acquire) > zone.checks_done.load(Acquire) {
                        zone.checks_done.fetch_add(1, Release);
                    }
                }
                if zone.config.role == ZoneRole::Catalog {
                    let after = zone.entry.snapshot();
                    let same = match (&before, &after) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (None, None) => true,
                        _ => false,
                    };
                    if !same {
                        this.catalog_changed.notify_one();
                    }
                }
                let now = UnixTime::now();
                if this.zone(&name).is_some() {
                    this.scheduler
                        .finished(&name, instant_at(zone.next_due(now), now));
                }
            });
        }
    }
}

/// What a wake-up of the scheduler does for one zone: the answers' state
/// first, then the files, then an SOA check if one is due.
async fn service(zone: &Arc<ZoneRuntime>, refresher: &Refresher) {
    let now = UnixTime::now();
    zone.apply_expiry(now);
    zone.maintain_disk(now).await;
    // A static zone (no primaries): nothing to ask, nothing failed.
    if !zone.config.primaries.is_empty() && zone.check_due(now) {
        check(zone, refresher).await;
    }
}

/// One check of one zone: SOA query, transfer if needed, persist, swap.
async fn check(zone: &Arc<ZoneRuntime>, refresher: &Refresher) {
    zone.checks_started
        .fetch_add(1, std::sync::atomic::Ordering::Release);
    let events = &refresher.events;
    let now = UnixTime::now();
    let (our_serial, has_copy, from_seed, force) = {
        let mut st = zone.lock();
        // A damaged copy from disk is replaced by a whole transfer, however
        // many checks fail first: the one-shot flag alone would be spent by
        // a check while the primary is down, and a primary back with the
        // same serial would then leave the damaged copy in service for good.
        let force = std::mem::take(&mut st.force_axfr) || st.copy_problem.is_some();
        match st.timers.as_mut() {
            Some(t) => {
                t.check_started(now);
                (
                    Some(t.serial()),
                    true,
                    t.source() == timers::Source::Seed,
                    force,
                )
            }
            None => (None, false, false, force),
        }
    };
    let cfg = &zone.config;
    let key = cfg.key.as_ref();
    let zone_label = cfg.name.to_string();
    let mut outcome: Option<Result<(), RefreshError>> = None;
    for &primary in &cfg.primaries {
        // Held through the SOA query and any transfer from this primary,
        // not through the write to disk, which needs nothing from it.
        let slot = refresher.primary_slot(primary).acquire_owned().await;
        // With no copy the zone is wanted whatever its serial: straight to
        // AXFR, whose first record is the SOA (Knot's bootstrap does the
        // same). Thousands of new zones then cost one exchange each.
        let announced = if has_copy {
            let source = cfg.source_for(primary);
            let soa =
                match client::query_soa_from(source, primary, &cfg.name, key, SOA_TIMEOUT).await {
                    Ok(soa) => soa,
                    Err(e) => {
                        warn!(zone = %cfg.name, %primary, "{e}");
                        events.soa_failed(&zone_label, primary);
                        outcome = Some(Err(e.into()));
                        continue;
                    }
                };
            let now = UnixTime::now();
            let verdict = {
                let mut st = zone.lock();
                st.last_primary = Some(primary);
                st.timers
                    .as_mut()
                    .map(|t| t.soa_answered(now, soa.serial, soa.expire, jitter()))
            };
            let transfer = match verdict {
                None => true,
                Some(SoaVerdict::Newer) => true,
                Some(SoaVerdict::Unchanged) => force || from_seed,
                Some(SoaVerdict::Older) => {
                    warn!(zone = %cfg.name, %primary, ours = our_serial, theirs = soa.serial,
                          "primary has an older serial than ours; not transferring");
                    force
                }
                Some(SoaVerdict::Undefined) => {
                    warn!(zone = %cfg.name, %primary, ours = our_serial, theirs = soa.serial,
                          "serials are 2^31 apart (RFC 1982 undefined); not transferring");
                    false
                }
            };
            if !transfer {
                zone.lock().last_error = None;
                outcome = Some(Ok(()));
                break;
            }
            Some(soa.serial)
        } else {
            None
        };
        // A seed copy may differ from the primary's version of the same
        // serial, and an operator's retransfer wants the whole zone.
        let incremental = has_copy && !from_seed && !force;
        let result = transfer::transfer_zone(zone, primary, announced, incremental).await;
        drop(slot);
        let result = match result {
            Ok((method, save)) => save.run(zone).await.map(|()| method),
            Err(e) => Err(e),
        };
        match result {
            Ok(method) => {
                events.transfer(&zone_label, method.metric_kind(), "success");
                outcome = Some(Ok(()));
                break;
            }
            Err(e) => {
                error!(zone = %cfg.name, %primary, serial = announced, "{e}");
                let persisted_only = matches!(e, RefreshError::Persist { .. });
                events.transfer(
                    &zone_label,
                    if incremental { "ixfr" } else { "axfr" },
                    if persisted_only { "success" } else { "failure" },
                );
                if persisted_only {
                    // The copy is in service; the disk is retried on its own.
                    zone.lock().last_error = Some(e.to_string());
                    outcome = Some(Ok(()));
                    break;
                }
                events.transfer_failed(&zone_label, primary);
                outcome = Some(Err(e));
            }
        }
    }
    let now = UnixTime::now();
    {
        let mut st = zone.lock();
        match outcome {
            Some(Ok(())) => {
                if st
                    .last_error
                    .as_deref()
                    .is_some_and(|e| !e.contains("not on disk"))
                {
                    st.last_error = None;
                }
            }
            Some(Err(e)) => {
                st.last_error = Some(e.to_string());
                fail(&mut st, now, &zone.config);
            }
            None => {
                st.last_error = Some("no primaries configured".into());
                fail(&mut st, now, &zone.config);
            }
        }
    }
    zone.save_state().await;
    zone.apply_expiry(now);
    zone.checks_done
        .fetch_add(1, std::sync::atomic::Ordering::Release);
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".into())
}

fn fail(st: &mut ZoneRuntimeState, now: UnixTime, config: &ZoneConfig) {
    match st.timers.as_mut() {
        // A newer serial was seen but the transfer failed: this is the
        // retry path (soa_answered left the check open).
        Some(t) => t.attempt_failed(now, jitter()),
        None => {
            // No copy at all: seconds, doubling up to the retry bound, so
            // that a primary coming back is found soon.
            st.no_copy_failures = st.no_copy_failures.saturating_add(1);
            let wait = timers::quick_retry(st.no_copy_failures).min(config.timers.max_retry);
            st.no_copy_due = now.saturating_add(wait);
        }
    }
}
