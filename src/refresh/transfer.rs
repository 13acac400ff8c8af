//! One transfer, step by step: fetch (IXFR, falling back to AXFR), apply
//! or build (off the runtime), commit (into service, then onto disk).
//!
//! Nothing reaches service before it is whole and checked: an IXFR whose
//! differences do not apply to our copy, or any failed check, leaves the
//! copy in service as it was.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

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
/// service, then on disk.
pub(super) async fn transfer_zone(
    zone: &Arc<ZoneRuntime>,
    primary: SocketAddr,
    announced: u32,
    incremental: bool,
) -> Result<TransferMethod, RefreshError> {
    let started = Instant::now();
    let old = zone.entry.snapshot();
    let mut fallback = None;
    if let (true, Some(old)) = (incremental, &old) {
        match fetch_ixfr(zone, primary, old, announced).await {
            Ok(Ok(fetched)) => {
                let method = match fetched.data {
                    Data::Diffs(_) => TransferMethod::Ixfr,
                    Data::Whole(_) => TransferMethod::IxfrAnsweredWhole,
                };
                match make_candidate(zone, Some(old.clone()), fetched, method, announced, primary)
                    .await?
                {
                    Ok(candidate) => {
                        return commit(zone, primary, candidate, announced, started).await;
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
    let fetched = fetch_axfr(zone, primary).await?;
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
        (cfg.transfer_timeout, cfg.idle_timeout),
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

async fn fetch_axfr(zone: &ZoneRuntime, primary: SocketAddr) -> Result<Fetched, RefreshError> {
    let cfg = &zone.config;
    let r = client::axfr_from(
        cfg.source_for(primary),
        primary,
        &cfg.name,
        cfg.key.as_ref(),
        cfg.limits,
        (cfg.transfer_timeout, cfg.idle_timeout),
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
    announced: u32,
    primary: SocketAddr,
) -> Result<Result<Candidate, String>, RefreshError> {
    let cfg = zone.config.clone();
    let keep_history = DiskPolicy::of(&cfg).keep_history;
    let zone_text = zone.zone_text();
    let built = tokio::task::spawn_blocking(move || -> Result<_, RefreshError> {
        let rejected = |error: crate::zone::ZoneError| RefreshError::Build {
            zone: zone_text.clone(),
            primary,
            error: Box::new(error),
        };
        let (new, diffs) = match (fetched.data, &old) {
            (Data::Diffs(diffs), Some(old)) => {
                let last = diffs
                    .last()
                    .and_then(|d| ixfr::soa_serial(&d.new_soa).ok())
                    .unwrap_or(announced);
                // The primary may have moved past what its SOA announced,
                // but not stopped short of it.
                let expected = if timers::serial_gt(last, announced) {
                    last
                } else {
                    announced
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
    })
    .await
    .map_err(|e| task_error(zone, e))??;
    Ok(built.map(|(new, diffs)| Candidate {
        zone: new,
        diffs,
        method,
        expire: fetched.expire,
        messages: fetched.messages,
        bytes: fetched.bytes,
    }))
}

/// Puts `c` in service, then writes it to disk. The serial must have
/// reached what the SOA query announced.
async fn commit(
    zone: &Arc<ZoneRuntime>,
    primary: SocketAddr,
    c: Candidate,
    announced: u32,
    started: Instant,
) -> Result<TransferMethod, RefreshError> {
    let cfg = &zone.config;
    let fetch_seconds = started.elapsed().as_secs_f64();
    let serial = c.zone.serial();
    if timers::serial_cmp(serial, announced) == Some(std::cmp::Ordering::Less) {
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
    tokio::task::spawn_blocking(move || drop(old_copy));
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
    let policy = DiskPolicy::of(cfg);
    let disk = zone.disk.clone();
    let saved = tokio::task::spawn_blocking(move || {
        let mut disk = disk.lock().unwrap_or_else(|p| p.into_inner());
        disk.record_change(&built, c.diffs.as_deref(), &state, &policy, now)
    })
    .await
    .map_err(|e| task_error(zone, e))?;
    if let Err(error) = saved {
        return Err(RefreshError::Persist {
            zone: zone.zone_text(),
            error,
        });
    }
    debug!(zone = %cfg.name, serial, seconds = started.elapsed().as_secs_f64(), "copy saved");
    Ok(c.method)
}
