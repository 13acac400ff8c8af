//! One transfer, step by step: fetch (IXFR, falling back to AXFR), apply
//! or build (off the runtime), commit (into service, then onto disk).
//!
//! Nothing reaches service before it is whole and checked: an IXFR whose
//! differences do not apply to our copy, or any failed check, leaves the
//! copy in service as it was.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::disk::DiskPolicy;
use super::timers::{self, UnixTime, ZoneTimers};
use super::{DataOrigin, RefreshError, ZoneRuntime, jitter, soa_timers};
use crate::notify;
use crate::persist::ZoneState;
use crate::xfr::client::{self, XfrError, XfrErrorKind};
use crate::xfr::interp::{InterpError, IxfrDiff, TransferData};
use crate::xfr::ixfr;
use crate::zone::{Zone, ZoneBuilder};

/// Transfers up to this size are built, and copies up to this many records
/// freed, on the runtime's thread (a few hundred microseconds at most).
const INLINE_BYTES: u64 = 64 * 1024;
const INLINE_RECORDS: usize = 2_000;

/// How the copy that went into service came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMethod {
    Axfr,
    Ixfr,
    /// IXFR asked, the whole zone answered (RFC 1995 §4).
    IxfrAnsweredWhole,
    /// IXFR failed in a way AXFR can work around; AXFR brought the copy.
    AxfrFallback,
}

impl TransferMethod {
    /// The `kind` label of `outpost_transfers_total`.
    pub fn metric_kind(self) -> &'static str {
        match self {
            TransferMethod::Axfr => "axfr",
            TransferMethod::Ixfr => "ixfr",
            TransferMethod::IxfrAnsweredWhole | TransferMethod::AxfrFallback => "axfr-fallback",
        }
    }

    fn text(self) -> &'static str {
        match self {
            TransferMethod::Axfr => "AXFR",
            TransferMethod::Ixfr => "IXFR",
            TransferMethod::IxfrAnsweredWhole => "AXFR-style answer to IXFR",
            TransferMethod::AxfrFallback => "AXFR (fallback)",
        }
    }
}

/// What the wire brought, and how much of it.
struct Fetched {
    data: Data,
    expire: Option<u32>,
    messages: usize,
    bytes: u64,
}

enum Data {
    Whole(Box<ZoneBuilder>),
    Diffs(Vec<IxfrDiff>),
}

/// A new copy, built and checked, not in service yet.
struct Candidate {
    zone: Zone,
    /// The differences from the copy in service, when known (IXFR, or a
    /// full transfer diffed for downstream history).
    diffs: Option<Vec<IxfrDiff>>,
    method: TransferMethod,
    expire: Option<u32>,
    messages: usize,
    bytes: u64,
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

fn task_error(zone: &ZoneRuntime, e: tokio::task::JoinError) -> RefreshError {
    RefreshError::Task {
        zone: zone.zone_text(),
        error: e.to_string(),
    }
}

/// Transfers the zone from `primary` (IXFR when `incremental` and there is
/// a copy, AXFR otherwise or as the fallback) and puts the result in
/// service; the returned [`Save`] puts it on disk. `announced` is the serial
/// the SOA query saw, when one was asked.
pub(super) async fn transfer_zone(
    zone: &Arc<ZoneRuntime>,
    primary: SocketAddr,
    announced: Option<u32>,
    incremental: bool,
) -> Result<(TransferMethod, Save), RefreshError> {
    let started = Instant::now();
    let old = zone.entry.snapshot();
    let mut fallback = None;
    if let (true, Some(old), Some(announced)) = (incremental, &old, announced) {
        match fetch_ixfr(zone, primary, old, announced).await {
            Ok(Ok(fetched)) => {
                let method = match fetched.data {
                    Data::Diffs(_) => TransferMethod::Ixfr,
                    Data::Whole(_) => TransferMethod::IxfrAnsweredWhole,
                };
                match make_candidate(
                    zone,
                    Some(old.clone()),
                    fetched,
                    method,
                    Some(announced),
                    primary,
                )
                .await?
                {
                    Ok(candidate) => {
                        return commit(zone, primary, candidate, Some(announced), started).await;
                    }
                    Err(reason) => fallback = Some(reason),
                }
            }
            Ok(Err(reason)) => fallback = Some(reason),
            Err(e) => return Err(e),
        }
    }
    if let Some(reason) = &fallback {
        warn!(zone = %zone.name(), %primary, reason = %reason, "falling back to AXFR");
    }
    let connect = announced.is_none().then_some(super::SOA_TIMEOUT);
    let fetched = fetch_axfr(zone, primary, connect).await?;
    let method = match fallback {
        Some(_) => TransferMethod::AxfrFallback,
        None => TransferMethod::Axfr,
    };
    let candidate = make_candidate(zone, old, fetched, method, announced, primary)
        .await?
        .map_err(|reason| RefreshError::Task {
            zone: zone.zone_text(),
            error: reason,
        })?;
    commit(zone, primary, candidate, announced, started).await
}

/// IXFR from our serial: `Ok(Err(reason))` when AXFR should be tried.
async fn fetch_ixfr(
    zone: &ZoneRuntime,
    primary: SocketAddr,
    old: &Zone,
    announced: u32,
) -> Result<Result<Fetched, String>, RefreshError> {
    let cfg = &zone.config;
    let t = match client::ixfr_from(
        cfg.source_for(primary),
        primary,
        &cfg.name,
        old.soa(),
        cfg.key.as_ref(),
        cfg.limits,
        client::Timeouts::new(cfg.transfer_timeout, cfg.idle_timeout),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            return match ixfr_fallback_reason(&e) {
                Some(reason) => Ok(Err(reason)),
                None => Err(e.into()),
            };
        }
    };
    let data = match t.data {
        TransferData::Full(records) => Data::Whole(records),
        TransferData::Incremental(diffs) => Data::Diffs(diffs),
        TransferData::UpToDate(soa) => {
            return Ok(Err(format!(
                "IXFR says serial {} is current, the SOA query announced {announced}",
                ixfr::soa_serial(&soa).map_or_else(|_| "?".into(), |s| s.to_string())
            )));
        }
    };
    Ok(Ok(Fetched {
        data,
        expire: t.expire,
        messages: t.messages,
        bytes: t.bytes,
    }))
}

/// AXFR; `connect` bounds the connection when no SOA query came first.
async fn fetch_axfr(
    zone: &ZoneRuntime,
    primary: SocketAddr,
    connect: Option<Duration>,
) -> Result<Fetched, RefreshError> {
    let cfg = &zone.config;
    let mut t = client::Timeouts::new(cfg.transfer_timeout, cfg.idle_timeout);
    if let Some(c) = connect {
        t.connect = c;
    }
    let r = client::axfr_from(
        cfg.source_for(primary),
        primary,
        &cfg.name,
        cfg.key.as_ref(),
        cfg.limits,
        t,
    )
    .await?;
    Ok(Fetched {
        data: Data::Whole(r.records),
        expire: r.expire,
        messages: r.messages,
        bytes: r.bytes,
    })
}

/// Applies the differences to `old`, or builds the whole zone, and checks
/// the result (limits, zone rules, ZONEMD), off the runtime.
/// `Ok(Err(reason))`: the differences do not apply to our copy, and AXFR
/// should be tried.
async fn make_candidate(
    zone: &ZoneRuntime,
    old: Option<Arc<Zone>>,
    fetched: Fetched,
    method: TransferMethod,
    announced: Option<u32>,
    primary: SocketAddr,
) -> Result<Result<Candidate, String>, RefreshError> {
    let cfg = zone.config.clone();
    let keep_history = DiskPolicy::of(&cfg).keep_history;
    let zone_text = zone.zone_text();
    // A small zone is built on the runtime's thread: handing it to a
    // blocking thread and back costs more than the work (two thread
    // wake-ups, which thousands of zones at start would pay each).
    let small = fetched.bytes <= INLINE_BYTES
        && old
            .as_ref()
            .is_none_or(|o| o.record_count() <= INLINE_RECORDS);
    let (expire, messages, bytes) = (fetched.expire, fetched.messages, fetched.bytes);
    let build = move || -> Result<_, RefreshError> {
        let rejected = |error: crate::zone::ZoneError| RefreshError::Build {
            zone: zone_text.clone(),
            primary,
            error: Box::new(error),
        };
        let (new, diffs) = match (fetched.data, &old) {
            (Data::Diffs(diffs), Some(old)) => {
                let last = diffs.last().and_then(|d| ixfr::soa_serial(&d.new_soa).ok());
                // The primary may have moved past what its SOA announced,
                // but not stopped short of it.
                let expected = match (last, announced) {
                    (Some(l), Some(a)) if timers::serial_gt(l, a) => l,
                    (_, Some(a)) => a,
                    (Some(l), None) => l,
                    (None, None) => return Ok(Err("IXFR differences without a last SOA".into())),
                };
                match ixfr::apply(old, &diffs, expected, &cfg.limits) {
                    Ok(z) => (z, Some(diffs)),
                    Err(e) => return Ok(Err(format!("IXFR does not apply to our copy: {e}"))),
                }
            }
            (Data::Diffs(_), None) => {
                return Ok(Err("IXFR differences but no copy to apply them to".into()));
            }
            (Data::Whole(builder), old) => {
                let new = builder.finish().map_err(rejected)?;
                // Downstream secondaries get this change as a difference
                // when they may transfer from us and the serial moved on.
                let diffs = old
                    .as_ref()
                    .filter(|o| keep_history && timers::serial_gt(new.serial(), o.serial()))
                    .map(|o| vec![ixfr::diff_zones(o, &new)]);
                (new, diffs)
            }
        };
        // ZONEMD covers the whole zone as it now stands, after any IXFR.
        crate::zonemd::check_zone(&new, cfg.zonemd).map_err(|e| rejected(e.into()))?;
        // A catalog this consumer cannot read is refused whole: the copy in
        // service, and the membership it gives, stay.
        if cfg.role == crate::config::ZoneRole::Catalog
            && let Err(e) = crate::catalog::Catalog::read(&new)
        {
            return Err(RefreshError::Catalog {
                zone: zone_text.clone(),
                primary,
                error: e,
            });
        }
        Ok(Ok((new, diffs)))
    };
    let built = if small {
        build()?
    } else {
        tokio::task::spawn_blocking(build)
            .await
            .map_err(|e| task_error(zone, e))??
    };
    Ok(built.map(|(new, diffs)| Candidate {
        zone: new,
        diffs,
        method,
        expire,
        messages,
        bytes,
    }))
}

/// Puts `c` in service and returns what writes it to disk. The serial must
/// have reached what the SOA query announced.
async fn commit(
    zone: &Arc<ZoneRuntime>,
    primary: SocketAddr,
    c: Candidate,
    announced: Option<u32>,
    started: Instant,
) -> Result<(TransferMethod, Save), RefreshError> {
    let cfg = &zone.config;
    let fetch_seconds = started.elapsed().as_secs_f64();
    let serial = c.zone.serial();
    if let Some(announced) = announced
        && timers::serial_cmp(serial, announced) == Some(std::cmp::Ordering::Less)
    {
        return Err(RefreshError::SerialMoved {
            zone: zone.zone_text(),
            primary,
            got: serial,
            announced,
        });
    }
    let soa = soa_timers(c.zone.soa()).expect("a built zone has an SOA");
    let now = UnixTime::now();
    let old_serial = zone.entry.snapshot().map(|o| o.serial());
    let new_soa = c.zone.soa().clone();
    let records = c.zone.record_count();
    let built = Arc::new(c.zone);
    let old_copy = zone.entry.swap(built.clone());
    // Freeing a big zone takes a while: not on the runtime's threads.
    if old_copy
        .as_ref()
        .is_some_and(|o| o.record_count() > INLINE_RECORDS)
    {
        tokio::task::spawn_blocking(move || drop(old_copy));
    }
    let state = {
        let mut st = zone.lock();
        let mut t = st
            .timers
            .clone()
            .unwrap_or_else(|| ZoneTimers::from_seed(soa, cfg.timers, now));
        t.transfer_succeeded(now, soa, c.expire, jitter());
        let state = ZoneState::new(&cfg.name, &t, Some(primary));
        st.timers = Some(t);
        st.origin = Some(DataOrigin::Transfer);
        st.last_primary = Some(primary);
        st.copy_problem = None;
        state
    };
    zone.apply_expiry(now);
    info!(zone = %cfg.name, %primary, serial, records, messages = c.messages, bytes = c.bytes,
          method = %c.method.text(), fetch_seconds, duration = started.elapsed().as_secs_f64(),
          "transfer done, new copy in service");
    if old_serial != Some(serial) && !cfg.notify.is_empty() {
        notify::spawn(cfg, &new_soa);
    }
    let save = Save {
        zone: built,
        diffs: c.diffs,
        state,
        policy: DiskPolicy::of(cfg),
        now,
        started,
    };
    Ok((c.method, save))
}

/// A copy in service, still to be written to disk. Writing needs nothing
/// from the primary, so the check runs it after freeing the primary's slot:
/// the next zone's transfer overlaps this one's syncs.
pub(super) struct Save {
    zone: Arc<Zone>,
    diffs: Option<Vec<IxfrDiff>>,
    state: ZoneState,
    policy: DiskPolicy,
    now: UnixTime,
    started: Instant,
}

impl Save {
    pub(super) async fn run(self, zone: &Arc<ZoneRuntime>) -> Result<(), RefreshError> {
        let Save {
            zone: built,
            diffs,
            state,
            policy,
            now,
            started,
        } = self;
        let serial = built.serial();
        let disk = zone.disk.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let mut disk = disk.lock().unwrap_or_else(|p| p.into_inner());
            disk.record_change(&built, diffs.as_deref(), &state, &policy, now)
        })
        .await
        .map_err(|e| task_error(zone, e))?;
        if let Err(error) = saved {
            return Err(RefreshError::Persist {
                zone: zone.zone_text(),
                error,
            });
        }
        debug!(zone = %zone.name(), serial, seconds = started.elapsed().as_secs_f64(), "copy saved");
        Ok(())
    }
}
