//! Refresh: keeping each zone's copy current, and knowing when it has
//! expired.
//!
//! One scheduler task holds every zone's next deadline; when one is due, a
//! check runs: SOA query to the primaries in order, a transfer when the
//! primary has a newer serial, then the new snapshot is put in service and
//! persisted, and the timers (refresh, retry, expire) move on. Timer state is
//! written to disk at every change, as absolute wall-clock times, so a
//! restart or a crash neither resets nor skips the expiry clock.

pub mod scheduler;
pub mod timers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::rr::{Name, RData, Record};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::config::ZoneConfig;
use crate::history::History;
use crate::metrics::Events;
use crate::notify;
use crate::persist::{self, Recovery, ZonePaths, ZoneState};
use crate::store::ZoneEntry;
use crate::xfr::client::{self, XfrError, XfrErrorKind};
use crate::xfr::interp::{InterpError, IxfrDiff, TransferData};
use crate::xfr::ixfr;
use crate::zone::{BuildLimits, Zone, ZoneBuilder, ZoneError};
use crate::zonefile;
use scheduler::{Scheduler, instant_at};
use timers::{Jitter, SoaTimers, SoaVerdict, TimerBounds, TimerState, UnixTime, ZoneTimers};

/// How long one SOA query may take (hickory-free UDP, one retry inside).
const SOA_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a zone that is expired but still served is logged at warn.
const EXPIRED_WARN_EVERY: Duration = Duration::from_secs(3600);
/// Retry interval for a zone that has no copy at all (so no SOA to take a
/// retry value from), before the bounds apply.
const NO_COPY_RETRY: u32 = 30;
/// Zones checked at the same time; more wait their turn.
const PARALLEL_CHECKS: usize = 16;

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
    #[error("zone {zone}: cannot persist: {error}")]
    Persist {
        zone: String,
        error: persist::PersistError,
    },
    #[error("zone {zone}: {source_file}: {error}")]
    Load {
        zone: String,
        source_file: String,
        error: String,
    },
    #[error("zone {zone}: background task failed: {error}")]
    Task { zone: String, error: String },
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
}

/// One secondary zone: its configuration, its served entry, its files and
/// its timers.
#[derive(Debug)]
pub struct ZoneRuntime {
    pub config: ZoneConfig,
    pub entry: Arc<ZoneEntry>,
    pub paths: ZonePaths,
    /// Recent differences, for IXFR to downstream secondaries.
    pub history: History,
    state: Mutex<ZoneRuntimeState>,
}

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

/// A zone's status, as the control endpoint and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneStatus {
    pub zone: String,
    pub serial: Option<u32>,
    pub state: &'static str,
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
}

pub fn timer_bounds(config: &ZoneConfig) -> TimerBounds {
    TimerBounds {
        min_refresh: config.timers.min_refresh,
        max_refresh: config.timers.max_refresh,
        min_retry: config.timers.min_retry,
        max_retry: config.timers.max_retry,
        min_expire: config.timers.min_expire,
        max_expire: config.timers.max_expire,
        on_expire: config.on_expire,
    }
}

pub fn build_limits(config: &ZoneConfig) -> BuildLimits {
    BuildLimits::from(&config.limits)
}

fn soa_timers(soa: &Record) -> Option<SoaTimers> {
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

fn jitter() -> Jitter {
    Jitter::new(rand::random::<f64>())
}

impl ZoneRuntime {
    /// Loads a zone for serving before any network traffic: the persisted
    /// copy with its stored clock, else the seed file, else nothing.
    pub fn load(config: ZoneConfig, data_dir: &std::path::Path, now: UnixTime) -> ZoneRuntime {
        let entry = Arc::new(ZoneEntry::new(config.name.clone()));
        let paths = ZonePaths::new(data_dir, &config.name);
        let mut state = ZoneRuntimeState {
            timers: None,
            origin: None,
            last_primary: None,
            last_error: None,
            last_expired_warning: None,
            logged_expired: false,
            force_axfr: false,
            no_copy_due: now,
        };
        let bounds = timer_bounds(&config);
        match load_persisted(&config, &paths, now) {
            Ok(Some((zone, stored))) => {
                let soa = soa_timers(zone.soa()).expect("a built zone has an SOA");
                let t = ZoneTimers::restore(soa, bounds.clone(), stored.timers(), now);
                info!(zone = %config.name, serial = zone.serial(), records = zone.record_count(),
                      expires_in = t.expires_in(now).map(|d| d.as_secs()), "serving the copy on disk");
                state.last_primary = stored.last_primary;
                state.timers = Some(t);
                state.origin = Some(DataOrigin::Disk);
                entry.swap(Arc::new(zone));
            }
            Ok(None) => {}
            Err(e) => {
                error!(zone = %config.name, "{e}");
                state.last_error = Some(e.to_string());
            }
        }
        if state.timers.is_none() {
            match load_seed(&config) {
                Ok(Some(zone)) => {
                    let soa = soa_timers(zone.soa()).expect("a built zone has an SOA");
                    info!(zone = %config.name, serial = zone.serial(), records = zone.record_count(),
                          "serving the seed file until the first transfer");
                    state.timers = Some(ZoneTimers::from_seed(soa, bounds, now));
                    state.origin = Some(DataOrigin::Seed);
                    entry.swap(Arc::new(zone));
                }
                Ok(None) => {
                    warn!(zone = %config.name, "no copy on disk and no seed file: SERVFAIL until the first transfer");
                }
                Err(e) => {
                    error!(zone = %config.name, "{e}");
                    state.last_error = Some(e.to_string());
                }
            }
        }
        let rt = ZoneRuntime {
            history: History::new(config.ixfr_history),
            config,
            entry,
            paths,
            state: Mutex::new(state),
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

    /// The same zone under a changed configuration (a reload): the served
    /// entry and the clock carry over, the new bounds apply from now on.
    pub fn reconfigure(&self, config: ZoneConfig, now: UnixTime) -> ZoneRuntime {
        let st = self.lock();
        let bounds = timer_bounds(&config);
        let timers = st
            .timers
            .as_ref()
            .map(|t| ZoneTimers::restore(t.soa(), bounds, t.stored(), now));
        let state = ZoneRuntimeState {
            timers,
            origin: st.origin,
            last_primary: st.last_primary,
            last_error: st.last_error.clone(),
            last_expired_warning: st.last_expired_warning,
            logged_expired: st.logged_expired,
            force_axfr: st.force_axfr,
            no_copy_due: now,
        };
        ZoneRuntime {
            paths: self.paths.clone(),
            history: self.history.resized(config.ixfr_history),
            config,
            entry: self.entry.clone(),
            state: Mutex::new(state),
        }
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

    /// Tells the query path when to stop answering, and logs expiry
    /// changes.
    fn apply_expiry(&self, now: UnixTime) {
        let mut st = self.lock();
        let Some(t) = st.timers.clone() else { return };
        let servfail_at = match self.config.on_expire {
            timers::OnExpire::Servfail => t.expire_at().map(|at| at.0),
            timers::OnExpire::KeepServing => None,
        };
        self.entry.set_servfail_at(servfail_at);
        let state = t.state(now);
        let expired = state == TimerState::Expired;
        if expired != st.logged_expired {
            if expired {
                warn!(zone = %self.name(), serial = t.serial(), "zone expired: answering SERVFAIL (on_expire = servfail) until a transfer succeeds");
            } else {
                info!(zone = %self.name(), serial = t.serial(), "zone serving again");
            }
            st.logged_expired = expired;
        }
        if state == TimerState::ExpiredServing {
            let due = st
                .last_expired_warning
                .is_none_or(|at| at.saturating_add(EXPIRED_WARN_EVERY) <= now);
            if due {
                let serial = t.serial();
                let since = t.expire_at();
                st.last_expired_warning = Some(now);
                warn!(zone = %self.name(), serial, expired_at = since.map(|s| s.0),
                      "zone expired; still serving the last copy (on_expire = keep-serving)");
            }
        }
    }

    /// When the scheduler should wake this zone next.
    fn next_due(&self, now: UnixTime) -> UnixTime {
        if self.config.primaries.is_empty() {
            // Only the expiry log of a copy from disk is left to do.
            return now.saturating_add(EXPIRED_WARN_EVERY);
        }
        let st = self.lock();
        let Some(t) = &st.timers else {
            return st.no_copy_due;
        };
        let mut next = t.next_due(now).unwrap_or(now);
        if t.state(now) == TimerState::ExpiredServing {
            next = next.min(now.saturating_add(EXPIRED_WARN_EVERY));
        }
        next
    }

    pub fn status(&self, now: UnixTime) -> ZoneStatus {
        let st = self.lock();
        let snapshot = self.entry.snapshot();
        let records = snapshot.as_ref().map_or(0, |z| z.record_count());
        let signatures_expire_at = snapshot
            .as_ref()
            .and_then(|z| z.earliest_signature_expiration(now.0));
        let (serial, state, served, last_contact, next_refresh, expires_at, expires_in) =
            match &st.timers {
                Some(t) => {
                    let s = t.status(now);
                    let name = match s.state {
                        TimerState::Expired => "expired",
                        TimerState::ExpiredServing => "expired-serving",
                        _ if self.config.primaries.is_empty() => "static",
                        TimerState::Fresh => "fresh",
                        TimerState::Refreshing => "refreshing",
                        TimerState::Retrying => "retrying",
                    };
                    (
                        Some(s.serial),
                        name,
                        s.served,
                        s.last_contact.map(|t| t.0),
                        s.refresh_due.map(|t| t.0),
                        s.expire_at.map(|t| t.0),
                        s.expires_in.map(|d| d.as_secs()),
                    )
                }
                None => (
                    None,
                    if self.config.primaries.is_empty() {
                        "static"
                    } else {
                        "retrying"
                    },
                    false,
                    None,
                    Some(st.no_copy_due.0),
                    None,
                    None,
                ),
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
        }
    }

    fn save_state(&self) {
        let st = self.lock();
        let Some(t) = &st.timers else { return };
        let state = ZoneState::new(self.name(), t, st.last_primary);
        drop(st);
        // Seed copies have nothing on disk to pair the state with.
        if state.source == timers::Source::Seed {
            return;
        }
        if let Err(e) = persist::save_state(&self.paths.state_file, &state) {
            error!(zone = %self.name(), "cannot save timer state: {e}");
        }
    }
}

fn load_persisted(
    config: &ZoneConfig,
    paths: &ZonePaths,
    now: UnixTime,
) -> Result<Option<(Zone, ZoneState)>, RefreshError> {
    if !paths.zone_file.exists() {
        return Ok(None);
    }
    let fail = |error: String| RefreshError::Load {
        zone: crate::rr::zone_text(&config.name),
        source_file: paths.zone_file.display().to_string(),
        error,
    };
    let records = zonefile::parse_file_raw(&paths.zone_file, &config.name)
        .map_err(|e| fail(e.to_string()))?;
    let zone = Zone::build_raw(&config.name, records, &build_limits(config))
        .map_err(|e| fail(e.to_string()))?;
    let recovered = persist::recover_state(paths, &config.name, zone.serial(), now)
        .map_err(|e| fail(e.to_string()))?;
    match &recovered.recovery {
        Recovery::Consistent => {}
        other => warn!(zone = %config.name, "timer state recovered conservatively: {other:?}"),
    }
    Ok(Some((zone, recovered.state)))
}

/// Loads a zone from its seed file, if it has one.
pub fn load_seed(config: &ZoneConfig) -> Result<Option<Zone>, RefreshError> {
    let Some(path) = &config.seed_file else {
        return Ok(None);
    };
    let fail = |error: String| RefreshError::Load {
        zone: crate::rr::zone_text(&config.name),
        source_file: path.display().to_string(),
        error,
    };
    let records = zonefile::parse_file_raw(path, &config.name).map_err(|e| fail(e.to_string()))?;
    let zone = Zone::build_raw(&config.name, records, &build_limits(config))
        .map_err(|e| fail(e.to_string()))?;
    Ok(Some(zone))
}

/// Runs the refresh of every secondary zone.
pub struct Refresher {
    events: Arc<Events>,
    zones: RwLock<HashMap<Name, Arc<ZoneRuntime>>>,
    scheduler: Scheduler<Name>,
    permits: Arc<Semaphore>,
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
    ) -> (Arc<Refresher>, JoinHandle<()>) {
        let (scheduler, due) = Scheduler::spawn();
        let refresher = Arc::new(Refresher {
            events,
            zones: RwLock::new(HashMap::new()),
            scheduler,
            permits: Arc::new(Semaphore::new(PARALLEL_CHECKS)),
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
                check(&zone, &this.events).await;
                let now = UnixTime::now();
                if this.zone(&name).is_some() {
                    this.scheduler
                        .finished(&name, instant_at(zone.next_due(now), now));
                }
            });
        }
    }
}

/// One check of one zone: SOA query, transfer if needed, persist, swap.
async fn check(zone: &ZoneRuntime, events: &Events) {
    let now = UnixTime::now();
    zone.apply_expiry(now);
    if zone.config.primaries.is_empty() {
        // A static zone: nothing to ask, nothing failed.
        return;
    }
    let (our_serial, has_copy, from_seed, force) = {
        let mut st = zone.lock();
        let force = std::mem::take(&mut st.force_axfr);
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
        let source = cfg.source_for(primary);
        let soa = match client::query_soa_from(source, primary, &cfg.name, key, SOA_TIMEOUT).await {
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
        // A seed copy may differ from the primary's version of the same
        // serial, and an operator's retransfer wants the whole zone.
        let incremental = has_copy && !from_seed && !force;
        match transfer_zone(zone, primary, soa.serial, incremental).await {
            Ok(kind) => {
                events.transfer(&zone_label, kind, "success");
                outcome = Some(Ok(()));
                break;
            }
            Err(e) => {
                error!(zone = %cfg.name, %primary, serial = soa.serial, "{e}");
                events.transfer(
                    &zone_label,
                    if incremental { "ixfr" } else { "axfr" },
                    "failure",
                );
                events.transfer_failed(&zone_label, primary);
                outcome = Some(Err(e));
            }
        }
    }
    let now = UnixTime::now();
    {
        let mut st = zone.lock();
        match outcome {
            Some(Ok(())) => st.last_error = None,
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
    zone.save_state();
    zone.apply_expiry(now);
}

fn fail(st: &mut ZoneRuntimeState, now: UnixTime, config: &ZoneConfig) {
    match st.timers.as_mut() {
        // A newer serial was seen but the transfer failed: this is the
        // retry path (soa_answered left the check open).
        Some(t) => t.attempt_failed(now, jitter()),
        None => {
            let retry = timer_bounds(config).retry(NO_COPY_RETRY);
            st.no_copy_due = now.saturating_add(retry);
        }
    }
}

/// What a transfer brought: the whole zone, or differences to our copy.
enum Fetched {
    Full {
        records: Box<ZoneBuilder>,
        /// How the full zone came: "AXFR", or why IXFR fell back.
        method: String,
    },
    Diffs(Vec<IxfrDiff>),
}

/// Whether an IXFR failure is the primary's IXFR (answered with an error
/// code or a malformed stream), which AXFR may work around; an unreachable
/// primary or a TSIG failure would fail AXFR the same way.
fn ixfr_fallback_reason(e: &XfrError) -> Option<String> {
    match &e.kind {
        XfrErrorKind::Interp(InterpError::Rcode(rcode)) => Some(format!("IXFR answered {rcode}")),
        XfrErrorKind::Interp(i) => Some(format!("broken IXFR: {i}")),
        XfrErrorKind::Wire(w) => Some(format!("malformed IXFR: {w}")),
        XfrErrorKind::NoSoa => Some("IXFR without SOA".into()),
        _ => None,
    }
}

/// Transfers the zone from `primary` (IXFR when `incremental` and we have a
/// copy, AXFR otherwise or as the fallback), checks it, writes it to disk
/// and puts it in service. The old copy keeps serving until all of that
/// succeeded.
async fn transfer_zone(
    zone: &ZoneRuntime,
    primary: SocketAddr,
    announced: u32,
    incremental: bool,
) -> Result<&'static str, RefreshError> {
    let cfg = &zone.config;
    let started = std::time::Instant::now();
    let old = zone.entry.snapshot();
    let mut fallback: Option<String> = None;
    let mut fetched = None;
    let (mut expire_option, mut messages, mut bytes) = (None, 0, 0);
    if let (true, Some(old)) = (incremental, &old) {
        match client::ixfr_from(
            cfg.source_for(primary),
            primary,
            &cfg.name,
            old.soa(),
            cfg.key.as_ref(),
            cfg.limits,
            (cfg.transfer_timeout, cfg.idle_timeout),
        )
        .await
        {
            Ok(t) => {
                (expire_option, messages, bytes) = (t.expire, t.messages, t.bytes);
                match t.data {
                    TransferData::Full(records) => {
                        fetched = Some(Fetched::Full {
                            records,
                            method: "AXFR-style answer to IXFR".into(),
                        });
                    }
                    TransferData::Incremental(diffs) => fetched = Some(Fetched::Diffs(diffs)),
                    TransferData::UpToDate(soa) => {
                        fallback = Some(format!(
                            "IXFR says serial {:?} is current, the SOA query announced {announced}",
                            ixfr::soa_serial(&soa).ok()
                        ));
                    }
                }
            }
            Err(e) => match ixfr_fallback_reason(&e) {
                Some(reason) => fallback = Some(reason),
                None => return Err(e.into()),
            },
        }
    }
    // Diffs are applied off the runtime; a failure there falls back too.
    let mut applied: Option<(Vec<Record>, Vec<IxfrDiff>)> = None;
    if let (Some(Fetched::Diffs(diffs)), Some(old)) = (fetched.take(), &old) {
        let old = old.clone();
        let result = tokio::task::spawn_blocking(move || {
            let last = diffs
                .last()
                .and_then(|d| ixfr::soa_serial(&d.new_soa).ok())
                .unwrap_or(announced);
            // The primary may have moved past what its SOA announced, but
            // not stopped short of it.
            let expected = if timers::serial_gt(last, announced) {
                last
            } else {
                announced
            };
            let old_records: Vec<Record> = old.records().collect();
            ixfr::apply(&old_records, &diffs, expected).map(|r| (r, diffs))
        })
        .await
        .map_err(|e| RefreshError::Task {
            zone: crate::rr::zone_text(&cfg.name),
            error: e.to_string(),
        })?;
        match result {
            Ok(r) => applied = Some(r),
            Err(e) => fallback = Some(format!("IXFR does not apply to our copy: {e}")),
        }
    }
    if let Some(reason) = &fallback {
        warn!(zone = %cfg.name, %primary, "{reason}; falling back to AXFR");
    }
    let (records, method, diffs) = match (applied, fetched) {
        (Some((records, diffs)), _) => {
            let mut b = ZoneBuilder::new(&cfg.name, &build_limits(cfg));
            for r in &records {
                b.push_record(r).map_err(|error| RefreshError::Build {
                    zone: crate::rr::zone_text(&cfg.name),
                    primary,
                    error: Box::new(error),
                })?;
            }
            (Box::new(b), "IXFR".to_string(), Some(diffs))
        }
        (None, Some(Fetched::Full { records, method })) => (records, method, None),
        _ => {
            let result = client::axfr_from(
                cfg.source_for(primary),
                primary,
                &cfg.name,
                cfg.key.as_ref(),
                cfg.limits,
                (cfg.transfer_timeout, cfg.idle_timeout),
            )
            .await?;
            (expire_option, messages, bytes) = (result.expire, result.messages, result.bytes);
            let method = match fallback {
                Some(reason) => format!("AXFR (fallback: {reason})"),
                None => "AXFR".to_string(),
            };
            (result.records, method, None)
        }
    };
    let fetch_seconds = started.elapsed().as_secs_f64();
    let name = cfg.name.clone();
    let paths = zone.paths.clone();
    let last_primary = Some(primary);
    let zonemd = cfg.zonemd;
    let keep_history = cfg.ixfr_history > 0;
    let old_serial = old.as_ref().map(|o| o.serial());
    // Building and writing a big zone is CPU and disk work: off the runtime.
    let (built, history) = tokio::task::spawn_blocking(move || -> Result<_, RefreshError> {
        let zone = records.finish().map_err(|error| RefreshError::Build {
            zone: crate::rr::zone_text(&name),
            primary,
            error: Box::new(error),
        })?;
        // ZONEMD covers the whole zone as it now stands, after any IXFR.
        crate::zonemd::check_zone(&zone, zonemd).map_err(|error| RefreshError::Build {
            zone: crate::rr::zone_text(&name),
            primary,
            error: Box::new(error.into()),
        })?;
        // What downstream IXFR clients will be sent for this change.
        let history = match (diffs, &old) {
            _ if !keep_history => None,
            (Some(d), _) => Some(d),
            (None, Some(old)) => ixfr::diff_zones(old, &zone).ok().map(|d| vec![d]),
            (None, None) => None,
        };
        Ok((zone, history))
    })
    .await
    .map_err(|e| RefreshError::Task {
        zone: crate::rr::zone_text(&cfg.name),
        error: e.to_string(),
    })??;
    if built.serial() != announced
        && timers::serial_cmp(built.serial(), announced) == Some(std::cmp::Ordering::Less)
    {
        return Err(RefreshError::SerialMoved {
            zone: crate::rr::zone_text(&cfg.name),
            primary,
            got: built.serial(),
            announced,
        });
    }
    let soa = soa_timers(built.soa()).expect("a built zone has an SOA");
    let now = UnixTime::now();
    // Timers as they will be once this copy is in service.
    let new_timers = {
        let st = zone.lock();
        let mut t = st
            .timers
            .clone()
            .unwrap_or_else(|| ZoneTimers::from_seed(soa, timer_bounds(cfg), now));
        t.transfer_succeeded(now, soa, expire_option, jitter());
        t
    };
    let state = ZoneState::new(&cfg.name, &new_timers, last_primary);
    let built = Arc::new(built);
    let to_write = built.clone();
    let origin = cfg.name.clone();
    let serial = built.serial();
    let records = built.record_count();
    let changed = old_serial != Some(serial);
    let new_soa = built.soa().clone();
    // Into service first, onto disk second: writing a big zone as text takes
    // longer than building it, and until the write is done the disk holds
    // the previous copy with its own, older timers, which only makes a
    // restart more careful, never less.
    let old_copy = zone.entry.swap(built);
    // Freeing a big zone takes a while: not on the runtime's threads.
    tokio::task::spawn_blocking(move || drop(old_copy));
    match history {
        Some(d) => zone.history.push(d),
        None => zone.history.clear(),
    }
    {
        let mut st = zone.lock();
        st.timers = Some(new_timers);
        st.origin = Some(DataOrigin::Transfer);
        st.last_primary = last_primary;
    }
    zone.apply_expiry(now);
    info!(zone = %cfg.name, %primary, serial, records, messages, bytes, method = %method,
          fetch_seconds, duration = started.elapsed().as_secs_f64(),
          "transfer done, new copy in service");
    if changed && !cfg.notify.is_empty() {
        notify::spawn(cfg, &new_soa);
    }
    let saved = tokio::task::spawn_blocking(move || {
        paths.create_dirs()?;
        persist::save_zone(
            &paths,
            |w: &mut dyn std::io::Write| {
                zonefile::write_raw_zone(w, &origin, to_write.raw_records())
            },
            &state,
        )
    })
    .await
    .map_err(|e| RefreshError::Task {
        zone: crate::rr::zone_text(&cfg.name),
        error: e.to_string(),
    })?;
    if let Err(error) = saved {
        // The copy in service is not on disk: the next check transfers it
        // again, and saves it then.
        zone.lock().force_axfr = true;
        return Err(RefreshError::Persist {
            zone: crate::rr::zone_text(&cfg.name),
            error,
        });
    }
    debug!(zone = %cfg.name, serial, seconds = started.elapsed().as_secs_f64(), "copy saved");
    // The metric's kind: what finally brought the copy in.
    Ok(if method == "IXFR" {
        "ixfr"
    } else if method.starts_with("AXFR (fallback") || method.starts_with("AXFR-style") {
        "axfr-fallback"
    } else {
        "axfr"
    })
}
