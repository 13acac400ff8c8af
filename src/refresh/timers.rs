//! Per-zone SOA timers (RFC 1034 §4.3.5, RFC 1035 §3.3.13, RFC 1996,
//! RFC 1982 serial arithmetic, RFC 7314 EDNS EXPIRE) as a pure state machine.
//!
//! Nothing here does I/O or reads a clock: every event carries `now`, and
//! refresh/retry jitter comes in as a number drawn by the caller. Times are
//! wall-clock Unix seconds because the expiry deadline must survive a restart
//! or a crash: it is stored on disk as an absolute time, and a zone with ten
//! days left before going down still has ten days left after coming back up.
//!
//! Seed zones: a zone loaded from an operator-supplied seed file has had no
//! contact with its primary, so it has no expiry deadline and is served until
//! the first successful contact; from then on the ordinary SOA EXPIRE clock
//! runs. The seed exists for exactly the case where the primary cannot be
//! reached (bootstrapping an offsite secondary during an outage), so letting
//! it expire from load time would defeat its purpose. A refresh is due as
//! soon as the seed is loaded.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time in whole seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// Reads the system clock. The state machine never calls this; it is for
    /// the caller that feeds it events.
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// Times before the epoch (a badly set clock) map to the epoch itself.
    pub fn from_system(t: SystemTime) -> Self {
        Self(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    pub fn to_system(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0)
    }

    /// Sub-second parts of `d` are dropped; timers here work in seconds.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.as_secs()))
    }

    /// Time from `self` until `later`, zero if `later` is not after `self`.
    pub fn until(self, later: UnixTime) -> Duration {
        Duration::from_secs(later.0.saturating_sub(self.0))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

/// RFC 1982 comparison of `a` against `b` (SERIAL_BITS = 32).
///
/// `None` when the comparison is undefined: the two serials are exactly 2^31
/// apart, so neither can be said to be newer.
pub fn serial_cmp(a: u32, b: u32) -> Option<Ordering> {
    const HALF: u32 = 1 << 31;
    match b.wrapping_sub(a) {
        0 => Some(Ordering::Equal),
        HALF => None,
        d if d < HALF => Some(Ordering::Less),
        _ => Some(Ordering::Greater),
    }
}

/// `a` is newer than `b` in RFC 1982 arithmetic; false when undefined.
pub fn serial_gt(a: u32, b: u32) -> bool {
    serial_cmp(a, b) == Some(Ordering::Greater)
}

/// Per-zone limits on the primary's SOA timers (the configuration's). A
/// primary can publish a one-second refresh or a one-year expire; these
/// keep it within what the operator of this secondary accepts.
///
/// The configuration is expected to have checked `min_* <= max_*`; if not,
/// the maximum wins (nothing here panics on inverted bounds).
pub use crate::config::TimerBounds;

fn clamp_secs(secs: u32, min: Duration, max: Duration) -> Duration {
    Duration::from_secs(u64::from(secs)).max(min).min(max)
}

impl TimerBounds {
    /// The refresh interval to use for an SOA REFRESH of `secs`, before jitter.
    pub fn refresh(&self, secs: u32) -> Duration {
        clamp_secs(secs, self.min_refresh, self.max_refresh)
    }

    /// The retry interval to use for an SOA RETRY of `secs`, before jitter.
    pub fn retry(&self, secs: u32) -> Duration {
        clamp_secs(secs, self.min_retry, self.max_retry)
    }

    /// The expiry interval for an SOA EXPIRE of `secs`.
    pub fn expire(&self, secs: u32) -> Duration {
        clamp_secs(secs, self.min_expire, self.max_expire)
    }
}

/// The timer fields of a zone's SOA record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoaTimers {
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
}

/// Where the copy of the zone being served came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Transfer,
    Seed,
}

/// A random fraction in `[0, 1]` drawn by the caller, used to spread refresh
/// and retry times so that thousands of zones with the same SOA timers do not
/// all query their primaries in the same second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jitter(f64);

impl Jitter {
    pub const NONE: Jitter = Jitter(0.0);

    /// Values outside `[0, 1]` are clamped, NaN means no jitter.
    pub fn new(fraction: f64) -> Self {
        if fraction.is_nan() {
            Self::NONE
        } else {
            Self(fraction.clamp(0.0, 1.0))
        }
    }
}

/// Largest share of a refresh or retry interval that jitter removes. Jitter
/// only shortens intervals, so a zone is never checked later than its SOA
/// (within the bounds) asks.
pub const JITTER_SPREAD: f64 = 0.1;

/// Shortest refresh or retry interval ever used: with a zero SOA REFRESH and
/// a zero lower bound the zone would otherwise be due again at once, forever.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The first wait after a failed attempt on a zone without a usable copy
/// (expired, or never loaded): doubled at each further failure.
pub const QUICK_RETRY_FIRST: Duration = Duration::from_secs(2);

/// The wait after `failures` failed attempts on a zone without a usable
/// copy, before the retry bound applies.
pub fn quick_retry(failures: u32) -> Duration {
    QUICK_RETRY_FIRST.saturating_mul(1 << failures.saturating_sub(1).min(20))
}

fn jittered(interval: Duration, floor: Duration, jitter: Jitter) -> Duration {
    let cut = interval.mul_f64(JITTER_SPREAD * jitter.0);
    (interval - cut).max(floor.min(interval)).max(MIN_INTERVAL)
}

/// What the zone looks like to the outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimerState {
    /// Not expired, the last attempt (if any) succeeded, no check running.
    Fresh,
    /// An SOA check or transfer is running.
    Refreshing,
    /// The last attempt failed; the next one is due after the retry interval.
    Retrying,
    /// Past the expiry deadline. Whether it is still answered is the
    /// zone's `on_expire` policy's to say, not the timers'.
    Expired,
}

/// The primary's answer to an SOA check, compared with our serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoaVerdict {
    /// Same serial: contact; the expiry clock restarts.
    Unchanged,
    /// The primary has an older serial: contact, but we keep our newer copy.
    Older,
    /// The primary has a newer serial: a transfer should follow. Not contact
    /// yet, because the data we serve is still the old one.
    Newer,
    /// The serials are exactly 2^31 apart (RFC 1982 undefined). Counted as a
    /// failed attempt so that the expiry clock keeps running and the operator
    /// sees the problem before the zone expires.
    Undefined,
}

/// What a NOTIFY did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// A check is now due.
    CheckNow,
    /// A check is running; another one follows right after it unless it
    /// brings in the announced serial (RFC 1996 §4.4: one check, not many).
    Merged,
    /// The NOTIFY announced a serial that is not newer than ours.
    AlreadyCurrent,
}

/// The part of the timer state that is written to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredTimers {
    pub last_contact: Option<UnixTime>,
    pub refresh_due: UnixTime,
    pub expire_at: Option<UnixTime>,
    pub source: Source,
}

/// A snapshot for status output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerStatus {
    pub state: TimerState,
    pub serial: u32,
    pub source: Source,
    pub last_contact: Option<UnixTime>,
    pub refresh_due: Option<UnixTime>,
    pub expire_at: Option<UnixTime>,
    /// Time left before expiry: `None` when the zone never expires (seed
    /// without contact), zero once expired.
    pub expires_in: Option<Duration>,
    pub failures: u32,
    pub next_due: Option<UnixTime>,
}

/// The timers of one zone.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneTimers {
    bounds: TimerBounds,
    soa: SoaTimers,
    source: Source,
    last_contact: Option<UnixTime>,
    /// `None` only for a seed copy that has never been confirmed.
    expire_at: Option<UnixTime>,
    /// Next refresh or retry; ignored while a check runs.
    refresh_due: UnixTime,
    checking_since: Option<UnixTime>,
    /// Consecutive failed attempts since the last contact.
    failures: u32,
    /// A NOTIFY arrived during a check: `Some(None)` if it carried no serial.
    pending_notify: Option<Option<u32>>,
}

impl ZoneTimers {
    /// A zone just loaded from a seed file: served without expiry until the
    /// first contact, and due for a check at once.
    pub fn from_seed(soa: SoaTimers, bounds: TimerBounds, now: UnixTime) -> Self {
        Self {
            bounds,
            soa,
            source: Source::Seed,
            last_contact: None,
            expire_at: None,
            refresh_due: now,
            checking_since: None,
            failures: 0,
            pending_notify: None,
        }
    }

    /// A zone loaded from disk with its stored timers. The stored absolute
    /// times are kept, but brought within the current bounds (the operator
    /// may have changed them while the server was down): expiry within
    /// `[min_expire, max_expire]` of the last contact, the next refresh no
    /// later than one refresh interval from now. A refresh time in the past
    /// stays in the past, so the zone is due at once.
    pub fn restore(
        soa: SoaTimers,
        bounds: TimerBounds,
        stored: StoredTimers,
        now: UnixTime,
    ) -> Self {
        // A contact time in the future comes from a clock set wrong or an
        // edited file: it would push the expiry out, so it counts as now.
        let last_contact = stored.last_contact.map(|c| c.min(now));
        let expire_at = match last_contact {
            Some(contact) => {
                let lo = contact.saturating_add(bounds.min_expire);
                let hi = contact.saturating_add(bounds.max_expire);
                let at = stored
                    .expire_at
                    .unwrap_or_else(|| contact.saturating_add(bounds.expire(soa.expire)));
                Some(at.max(lo).min(hi))
            }
            // No contact: a seed copy (no expiry), or a time recorded
            // without a contact, which may not reach further than the
            // longest expiry allowed from now.
            None => stored
                .expire_at
                .map(|at| at.min(now.saturating_add(bounds.max_expire))),
        };
        let refresh_due = stored
            .refresh_due
            .min(now.saturating_add(bounds.refresh(soa.refresh)));
        Self {
            bounds,
            soa,
            source: stored.source,
            last_contact,
            expire_at,
            refresh_due,
            checking_since: None,
            failures: 0,
            pending_notify: None,
        }
    }

    /// An SOA query (or a transfer attempt) to the primary has begun.
    pub fn check_started(&mut self, now: UnixTime) {
        self.checking_since.get_or_insert(now);
    }

    /// The primary answered the SOA query with `primary_serial`.
    /// `edns_expire` is the RFC 7314 EXPIRE option of the answer, if any.
    pub fn soa_answered(
        &mut self,
        now: UnixTime,
        primary_serial: u32,
        edns_expire: Option<u32>,
        jitter: Jitter,
    ) -> SoaVerdict {
        match serial_cmp(primary_serial, self.soa.serial) {
            Some(Ordering::Greater) => {
                self.check_started(now);
                SoaVerdict::Newer
            }
            Some(Ordering::Equal) => {
                self.contact(now, edns_expire, jitter);
                SoaVerdict::Unchanged
            }
            Some(Ordering::Less) => {
                self.contact(now, edns_expire, jitter);
                SoaVerdict::Older
            }
            None => {
                self.attempt_failed(now, jitter);
                SoaVerdict::Undefined
            }
        }
    }

    /// A transfer completed and the zone now holds `soa`.
    pub fn transfer_succeeded(
        &mut self,
        now: UnixTime,
        soa: SoaTimers,
        edns_expire: Option<u32>,
        jitter: Jitter,
    ) {
        self.soa = soa;
        self.source = Source::Transfer;
        self.contact(now, edns_expire, jitter);
    }

    /// The SOA query or transfer failed (timeout, refusal, bad TSIG, ...).
    /// An expired zone tries again after seconds, doubling up to the retry
    /// interval: a primary coming back is found soon, NOTIFY or not.
    pub fn attempt_failed(&mut self, now: UnixTime, jitter: Jitter) {
        self.failures = self.failures.saturating_add(1);
        let retry = self.bounds.retry(self.soa.retry);
        let wait = if self.is_expired(now) {
            quick_retry(self.failures).min(retry)
        } else {
            jittered(retry, self.bounds.min_retry, jitter)
        };
        self.refresh_due = now.saturating_add(wait);
        self.end_check(now);
    }

    /// A NOTIFY arrived; `serial` is the one in its SOA answer section, if
    /// any. A zone that is expired or failing checks at once whatever the
    /// serial: a primary that comes back with the serial we hold must
    /// revive it now, not at the next retry.
    pub fn notify_received(&mut self, now: UnixTime, serial: Option<u32>) -> NotifyOutcome {
        let healthy = !self.is_expired(now) && self.failures == 0;
        if let Some(s) = serial
            && healthy
            && !serial_gt(s, self.soa.serial)
        {
            return NotifyOutcome::AlreadyCurrent;
        }
        if self.checking_since.is_some() {
            // Keep the newest announcement; a serial-less NOTIFY always wins.
            self.pending_notify = Some(match (self.pending_notify, serial) {
                (Some(Some(old)), Some(new)) if serial_gt(old, new) => Some(old),
                (Some(None), _) | (_, None) => None,
                (_, Some(new)) => Some(new),
            });
            NotifyOutcome::Merged
        } else {
            self.refresh_due = self.refresh_due.min(now);
            NotifyOutcome::CheckNow
        }
    }

    fn contact(&mut self, now: UnixTime, edns_expire: Option<u32>, jitter: Jitter) {
        // RFC 7314 §4: a smaller EXPIRE from the primary (itself a secondary
        // counting down) replaces the SOA value; a larger one must not extend it.
        let secs = edns_expire.map_or(self.soa.expire, |e| e.min(self.soa.expire));
        self.expire_at = Some(now.saturating_add(self.bounds.expire(secs)));
        self.last_contact = Some(now);
        self.failures = 0;
        let refresh = self.bounds.refresh(self.soa.refresh);
        self.refresh_due = now.saturating_add(jittered(refresh, self.bounds.min_refresh, jitter));
        self.end_check(now);
    }

    fn end_check(&mut self, now: UnixTime) {
        self.checking_since = None;
        if let Some(announced) = self.pending_notify.take()
            && announced.is_none_or(|s| serial_gt(s, self.soa.serial))
        {
            self.refresh_due = now;
        }
    }

    /// Once expired, a zone looks for its primaries every few seconds
    /// (see [`ZoneTimers::attempt_failed`]): at the expiry itself, a retry
    /// scheduled further out is brought forward to now.
    pub fn expiry_check(&mut self, now: UnixTime) {
        let soon = now.saturating_add(quick_retry(self.failures.max(1)));
        if self.is_expired(now) && self.checking_since.is_none() && self.refresh_due > soon {
            self.refresh_due = now;
        }
    }

    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expire_at.is_some_and(|at| at <= now)
    }

    pub fn state(&self, now: UnixTime) -> TimerState {
        if self.is_expired(now) {
            TimerState::Expired
        } else if self.checking_since.is_some() {
            TimerState::Refreshing
        } else if self.failures > 0 {
            TimerState::Retrying
        } else {
            TimerState::Fresh
        }
    }

    /// Whether an SOA check should start now.
    pub fn check_due(&self, now: UnixTime) -> bool {
        self.checking_since.is_none() && self.refresh_due <= now
    }

    /// When the caller must look at this zone again: the next refresh or
    /// retry, or the expiry deadline if that comes first (so that the state
    /// change is noticed and logged). While a check runs only the expiry
    /// counts: the check itself must end with a success or failure event.
    /// A time at or before `now` means "now".
    pub fn next_due(&self, now: UnixTime) -> Option<UnixTime> {
        let refresh = self.checking_since.is_none().then_some(self.refresh_due);
        let expiry = self.expire_at.filter(|&at| at > now);
        match (refresh, expiry) {
            (Some(r), Some(e)) => Some(r.min(e)),
            (r, e) => r.or(e),
        }
    }

    pub fn expire_at(&self) -> Option<UnixTime> {
        self.expire_at
    }

    /// Time left before expiry; `None` if the zone never expires.
    pub fn expires_in(&self, now: UnixTime) -> Option<Duration> {
        self.expire_at.map(|at| now.until(at))
    }

    pub fn soa(&self) -> SoaTimers {
        self.soa
    }

    pub fn serial(&self) -> u32 {
        self.soa.serial
    }

    pub fn source(&self) -> Source {
        self.source
    }

    pub fn last_contact(&self) -> Option<UnixTime> {
        self.last_contact
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn bounds(&self) -> &TimerBounds {
        &self.bounds
    }

    /// What to write to disk.
    pub fn stored(&self) -> StoredTimers {
        StoredTimers {
            last_contact: self.last_contact,
            refresh_due: self.refresh_due,
            expire_at: self.expire_at,
            source: self.source,
        }
    }

    pub fn status(&self, now: UnixTime) -> TimerStatus {
        let state = self.state(now);
        TimerStatus {
            state,
            serial: self.soa.serial,
            source: self.source,
            last_contact: self.last_contact,
            refresh_due: self.checking_since.is_none().then_some(self.refresh_due),
            expire_at: self.expire_at,
            expires_in: self.expires_in(now),
            failures: self.failures,
            next_due: self.next_due(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86400;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn bounds() -> TimerBounds {
        TimerBounds {
            min_refresh: secs(5 * MIN),
            max_refresh: secs(DAY),
            min_retry: secs(MIN),
            max_retry: secs(6 * HOUR),
            min_expire: secs(DAY),
            max_expire: secs(90 * DAY),
        }
    }

    fn soa(serial: u32) -> SoaTimers {
        SoaTimers {
            serial,
            refresh: 2 * HOUR as u32,
            retry: 15 * MIN as u32,
            expire: 14 * DAY as u32,
        }
    }

    const T0: UnixTime = UnixTime(1_700_000_000);

    fn at(offset: u64) -> UnixTime {
        UnixTime(T0.0 + offset)
    }

    /// A zone that completed a transfer at T0.
    fn transferred(soa: SoaTimers, bounds: TimerBounds) -> ZoneTimers {
        let mut z = ZoneTimers::from_seed(soa, bounds, T0);
        z.check_started(T0);
        z.transfer_succeeded(T0, soa, None, Jitter::NONE);
        z
    }

    #[test]
    fn serial_arithmetic() {
        assert_eq!(serial_cmp(1, 1), Some(Ordering::Equal));
        assert_eq!(serial_cmp(1, 2), Some(Ordering::Less));
        assert_eq!(serial_cmp(2, 1), Some(Ordering::Greater));
        // Wrap-around: 0 follows 0xffff_ffff, and 100 follows 0xffff_ff00.
        assert!(serial_gt(0, u32::MAX));
        assert!(serial_gt(100, 0xffff_ff00));
        assert!(!serial_gt(0xffff_ff00, 100));
        // The largest step that is still an increase is 2^31 - 1.
        assert!(serial_gt(0x7fff_ffff, 0));
        assert!(serial_gt(0x8000_0000 + 5, 6));
        // Exactly 2^31 apart: undefined in both directions.
        assert_eq!(serial_cmp(0, 0x8000_0000), None);
        assert_eq!(serial_cmp(0x8000_0000, 0), None);
        assert_eq!(serial_cmp(7, 0x8000_0007), None);
        assert!(!serial_gt(0, 0x8000_0000) && !serial_gt(0x8000_0000, 0));
        // Just past half-way the order flips.
        assert_eq!(serial_cmp(0, 0x8000_0001), Some(Ordering::Greater));
    }

    #[test]
    fn serial_wraparound_triggers_transfer() {
        let mut z = transferred(soa(u32::MAX - 1), bounds());
        z.check_started(at(2 * HOUR));
        // The primary wrapped past 2^32 - 1 to 3: that is newer.
        assert_eq!(
            z.soa_answered(at(2 * HOUR), 3, None, Jitter::NONE),
            SoaVerdict::Newer
        );
        z.transfer_succeeded(at(2 * HOUR + 5), soa(3), None, Jitter::NONE);
        assert_eq!(z.serial(), 3);
        // The old serial is now older than ours.
        z.check_started(at(4 * HOUR + 5));
        assert_eq!(
            z.soa_answered(at(4 * HOUR + 5), u32::MAX - 1, None, Jitter::NONE),
            SoaVerdict::Older
        );
    }

    #[test]
    fn undefined_serial_is_a_failure() {
        let mut z = transferred(soa(10), bounds());
        z.check_started(at(2 * HOUR));
        let v = z.soa_answered(at(2 * HOUR), 10 + 0x8000_0000, None, Jitter::NONE);
        assert_eq!(v, SoaVerdict::Undefined);
        assert_eq!(z.state(at(2 * HOUR)), TimerState::Retrying);
        assert_eq!(z.last_contact(), Some(T0));
        assert_eq!(z.expire_at(), Some(at(14 * DAY)));
    }

    #[test]
    fn clamps() {
        let b = bounds();
        assert_eq!(b.refresh(10), secs(5 * MIN));
        assert_eq!(b.refresh(7200), secs(7200));
        assert_eq!(b.refresh(u32::MAX), secs(DAY));
        assert_eq!(b.retry(0), secs(MIN));
        assert_eq!(b.retry(900), secs(900));
        assert_eq!(b.retry(7 * DAY as u32), secs(6 * HOUR));
        assert_eq!(b.expire(600), secs(DAY));
        assert_eq!(b.expire(30 * DAY as u32), secs(30 * DAY));
        assert_eq!(b.expire(365 * DAY as u32), secs(90 * DAY));

        // The clamped values are what the machine uses.
        let s = SoaTimers {
            serial: 1,
            refresh: 1,
            retry: 1,
            expire: 1,
        };
        let mut z = transferred(s, b);
        assert_eq!(z.next_due(T0), Some(at(5 * MIN)));
        assert_eq!(z.expire_at(), Some(at(DAY)));
        z.check_started(at(5 * MIN));
        z.attempt_failed(at(5 * MIN), Jitter::NONE);
        assert_eq!(z.next_due(at(5 * MIN)), Some(at(6 * MIN)));

        let s = SoaTimers {
            serial: 1,
            refresh: u32::MAX,
            retry: u32::MAX,
            expire: u32::MAX,
        };
        let mut z = transferred(s, b);
        assert_eq!(z.next_due(T0), Some(at(DAY)));
        assert_eq!(z.expire_at(), Some(at(90 * DAY)));
        z.check_started(at(DAY));
        z.attempt_failed(at(DAY), Jitter::NONE);
        assert_eq!(z.next_due(at(DAY)), Some(at(DAY + 6 * HOUR)));
    }

    #[test]
    fn inverted_bounds_do_not_panic() {
        let mut b = bounds();
        b.min_refresh = secs(DAY);
        b.max_refresh = secs(HOUR);
        assert_eq!(b.refresh(7200), secs(HOUR));
        let z = transferred(soa(1), b);
        assert_eq!(z.next_due(T0), Some(at(HOUR)));
    }

    #[test]
    fn jitter_shortens_within_bounds() {
        let b = bounds();
        let mut z = ZoneTimers::from_seed(soa(1), b, T0);
        z.transfer_succeeded(T0, soa(1), None, Jitter::new(1.0));
        // 2 h shortened by 10 %.
        assert_eq!(z.next_due(T0), Some(at(2 * HOUR - 720)));
        z.transfer_succeeded(T0, soa(1), None, Jitter::new(0.5));
        assert_eq!(z.next_due(T0), Some(at(2 * HOUR - 360)));
        z.transfer_succeeded(T0, soa(1), None, Jitter::new(f64::NAN));
        assert_eq!(z.next_due(T0), Some(at(2 * HOUR)));
        z.transfer_succeeded(T0, soa(1), None, Jitter::new(7.0));
        assert_eq!(z.next_due(T0), Some(at(2 * HOUR - 720)));
        // Jitter never takes an interval below its lower bound.
        let s = SoaTimers {
            refresh: 0,
            ..soa(1)
        };
        z.transfer_succeeded(T0, s, None, Jitter::new(1.0));
        assert_eq!(z.next_due(T0), Some(at(5 * MIN)));
        // Nor expiry: it is never jittered.
        assert_eq!(z.expire_at(), Some(at(14 * DAY)));
        // Zero everywhere still leaves a one-second interval.
        let zero = TimerBounds {
            min_refresh: Duration::ZERO,
            min_retry: Duration::ZERO,
            ..b
        };
        let s = SoaTimers {
            refresh: 0,
            retry: 0,
            ..soa(1)
        };
        let mut z = transferred(s, zero);
        assert_eq!(z.next_due(T0), Some(at(1)));
        z.attempt_failed(at(1), Jitter::new(1.0));
        assert_eq!(z.next_due(at(1)), Some(at(2)));
    }

    #[test]
    fn refresh_retry_expire_sequence() {
        let mut z = transferred(soa(1), bounds());
        assert_eq!(z.state(T0), TimerState::Fresh);
        assert!(!z.check_due(at(2 * HOUR - 1)));
        assert!(z.check_due(at(2 * HOUR)));
        assert_eq!(z.next_due(T0), Some(at(2 * HOUR)));

        z.check_started(at(2 * HOUR));
        assert_eq!(z.state(at(2 * HOUR)), TimerState::Refreshing);
        assert!(!z.check_due(at(2 * HOUR)));
        // While checking only the expiry deadline is pending.
        assert_eq!(z.next_due(at(2 * HOUR)), Some(at(14 * DAY)));

        z.attempt_failed(at(2 * HOUR + 30), Jitter::NONE);
        assert_eq!(z.state(at(2 * HOUR + 30)), TimerState::Retrying);
        assert_eq!(z.failures(), 1);
        assert_eq!(
            z.next_due(at(2 * HOUR + 30)),
            Some(at(2 * HOUR + 30 + 15 * MIN))
        );
        assert!(!z.is_expired(at(2 * HOUR + 30)));

        // Keep failing every retry interval until expiry.
        let mut now = at(2 * HOUR + 30);
        let mut attempts = 1;
        while !z.is_expired(now) {
            now = z.next_due(now).expect("something is due");
            if z.check_due(now) {
                z.check_started(now);
                z.attempt_failed(now, Jitter::NONE);
                attempts += 1;
            }
        }
        // The expiry deadline itself was a wake-up point, exactly 14 days
        // after the last contact.
        assert_eq!(now, at(14 * DAY));
        assert_eq!(z.state(now), TimerState::Expired);
        assert!(z.is_expired(now));
        assert_eq!(z.expires_in(now), Some(Duration::ZERO));
        assert!(attempts > 1300, "{attempts} attempts");
        // Retries go on after expiry and the expiry is no longer a wake-up.
        let next = z.next_due(now).unwrap();
        assert!(next > now && next <= now.saturating_add(secs(15 * MIN)));

        // Contact brings the zone back.
        z.check_started(next);
        assert_eq!(z.state(next), TimerState::Expired);
        assert_eq!(
            z.soa_answered(next, 1, None, Jitter::NONE),
            SoaVerdict::Unchanged
        );
        assert_eq!(z.state(next), TimerState::Fresh);
        assert_eq!(z.expire_at(), Some(next.saturating_add(secs(14 * DAY))));
    }

    #[test]
    fn expired_zone_retries_quickly_and_notify_revives_it() {
        let mut z = transferred(soa(1), bounds());
        let now = at(14 * DAY);
        assert_eq!(z.state(now), TimerState::Expired);
        let st = z.status(now);
        assert_eq!(st.state, TimerState::Expired);
        // Failed attempts after expiry come back after 2, 4, 8 ... seconds,
        // never later than the retry interval.
        let mut t = now;
        for n in 0..12 {
            z.check_started(t);
            z.attempt_failed(t, Jitter::NONE);
            let wait = z.next_due(t).unwrap().0 - t.0;
            assert_eq!(wait, (2u64 << n).min(15 * MIN), "after failure {}", n + 1);
            t = z.next_due(t).unwrap();
        }
        // An hour-long retry pending when the zone expires is brought
        // forward to the expiry.
        let mut y = transferred(soa(1), bounds());
        let t0 = at(14 * DAY - 60);
        y.check_started(t0);
        y.attempt_failed(t0, Jitter::NONE);
        assert_eq!(y.next_due(t0), Some(at(14 * DAY)));
        y.expiry_check(at(14 * DAY));
        assert!(y.check_due(at(14 * DAY)));
        // A NOTIFY with the serial we hold still starts a check at once.
        assert_eq!(z.notify_received(t, Some(1)), NotifyOutcome::CheckNow);
        assert!(z.check_due(t));
        z.check_started(t);
        assert_eq!(
            z.soa_answered(t, 1, None, Jitter::NONE),
            SoaVerdict::Unchanged
        );
        assert_eq!(z.state(t), TimerState::Fresh);
        // Healthy again: a NOTIFY for our own serial is nothing new.
        assert_eq!(z.notify_received(t, Some(1)), NotifyOutcome::AlreadyCurrent);
        // Failing but not expired: any NOTIFY checks at once.
        let later = at(15 * DAY);
        z.check_started(later);
        z.attempt_failed(later, Jitter::NONE);
        assert_eq!(z.notify_received(later, Some(1)), NotifyOutcome::CheckNow);
    }

    #[test]
    fn restore_clamps_stored_times() {
        let now = at(DAY);
        // A contact in the future counts as now.
        let stored = StoredTimers {
            last_contact: Some(at(1000 * DAY)),
            refresh_due: at(1000 * DAY),
            expire_at: Some(at(2000 * DAY)),
            source: Source::Transfer,
        };
        let r = ZoneTimers::restore(soa(1), bounds(), stored, now);
        assert_eq!(r.last_contact(), Some(now));
        assert_eq!(r.expire_at(), Some(now.saturating_add(secs(90 * DAY))));
        assert!(r.next_due(now).unwrap() <= now.saturating_add(secs(2 * HOUR)));
        // An expiry far out without a contact is held to max_expire.
        let stored = StoredTimers {
            last_contact: None,
            expire_at: Some(UnixTime(4_102_444_800)),
            ..stored
        };
        let r = ZoneTimers::restore(soa(1), bounds(), stored, now);
        assert_eq!(r.expire_at(), Some(now.saturating_add(secs(90 * DAY))));
    }

    #[test]
    fn contact_resets_expiry() {
        let mut z = transferred(soa(5), bounds());
        let late = at(14 * DAY - 10);
        z.check_started(late);
        z.attempt_failed(late, Jitter::NONE);
        assert_eq!(z.expires_in(late), Some(secs(10)));
        let now = at(14 * DAY - 5);
        z.check_started(now);
        assert_eq!(
            z.soa_answered(now, 5, None, Jitter::NONE),
            SoaVerdict::Unchanged
        );
        assert_eq!(z.last_contact(), Some(now));
        assert_eq!(z.expire_at(), Some(now.saturating_add(secs(14 * DAY))));
        assert_eq!(z.failures(), 0);
        assert_eq!(z.state(at(14 * DAY + 1)), TimerState::Fresh);

        // An older serial at the primary is contact too; we keep our copy.
        let now = at(20 * DAY);
        z.check_started(now);
        assert_eq!(
            z.soa_answered(now, 4, None, Jitter::NONE),
            SoaVerdict::Older
        );
        assert_eq!(z.serial(), 5);
        assert_eq!(z.expire_at(), Some(now.saturating_add(secs(14 * DAY))));

        // A newer serial is not contact until the transfer lands.
        let before = z.expire_at();
        let now = at(25 * DAY);
        z.check_started(now);
        assert_eq!(
            z.soa_answered(now, 6, None, Jitter::NONE),
            SoaVerdict::Newer
        );
        assert_eq!(z.expire_at(), before);
        assert_eq!(z.state(now), TimerState::Refreshing);
        z.attempt_failed(now, Jitter::NONE);
        assert_eq!(z.expire_at(), before);
        assert_eq!(z.serial(), 5);
    }

    #[test]
    fn restart_with_stored_state() {
        let b = bounds();
        let z = transferred(soa(9), b);
        let stored = z.stored();
        assert_eq!(stored.expire_at, Some(at(14 * DAY)));

        // Down for 4 days: 10 days left after the restart.
        let now = at(4 * DAY);
        let r = ZoneTimers::restore(soa(9), b, stored, now);
        assert_eq!(r.expires_in(now), Some(secs(10 * DAY)));
        assert_eq!(r.expire_at(), Some(at(14 * DAY)));
        assert_eq!(r.state(now), TimerState::Fresh);
        assert!(r.check_due(now), "refresh time passed while down");
        assert_eq!(r.last_contact(), Some(T0));

        // Down for 15 days: comes up expired.
        let now = at(15 * DAY);
        let r = ZoneTimers::restore(soa(9), b, stored, now);
        assert_eq!(r.state(now), TimerState::Expired);
        assert!(r.is_expired(now));
        assert!(r.check_due(now));

        // Restarted an hour later: the refresh stays one hour away.
        let now = at(HOUR);
        let r = ZoneTimers::restore(soa(9), b, stored, now);
        assert_eq!(r.next_due(now), Some(at(2 * HOUR)));

        // The whole round trip keeps every stored field.
        assert_eq!(r.stored(), stored);
    }

    #[test]
    fn restore_applies_changed_bounds() {
        let b = bounds();
        let z = transferred(soa(9), b);
        let stored = z.stored();
        let now = at(HOUR);
        let tight = TimerBounds {
            max_expire: secs(3 * DAY),
            max_refresh: secs(10 * MIN),
            ..b
        };
        let r = ZoneTimers::restore(soa(9), tight, stored, now);
        assert_eq!(r.expire_at(), Some(at(3 * DAY)));
        assert_eq!(r.next_due(now), Some(at(HOUR + 10 * MIN)));
        let loose = TimerBounds {
            min_expire: secs(30 * DAY),
            ..b
        };
        let r = ZoneTimers::restore(soa(9), loose, stored, now);
        assert_eq!(r.expire_at(), Some(at(30 * DAY)));
    }

    #[test]
    fn forty_one_day_expiry() {
        let b = TimerBounds {
            max_expire: secs(60 * DAY),
            ..bounds()
        };
        let s = SoaTimers {
            serial: 2_024_010_100,
            refresh: 4 * HOUR as u32,
            retry: HOUR as u32,
            expire: 41 * DAY as u32,
        };
        let mut z = transferred(s, b);
        let mut now = T0;
        let mut attempts = 0u32;
        let mut restarted = false;
        while !z.is_expired(now) {
            now = z.next_due(now).unwrap();
            // Halfway through, the server restarts from its stored state.
            if !restarted && now >= at(20 * DAY) {
                z = ZoneTimers::restore(s, b, z.stored(), now);
                restarted = true;
            }
            if z.check_due(now) {
                z.check_started(now);
                z.attempt_failed(now, Jitter::NONE);
                attempts += 1;
            }
        }
        assert!(restarted);
        assert_eq!(now, at(41 * DAY));
        assert_eq!(z.expire_at(), Some(at(41 * DAY)));
        // First attempt at 4 h, then hourly.
        assert!((41 * 24 - 4..=41 * 24).contains(&attempts), "{attempts}");
    }

    #[test]
    fn edns_expire() {
        let mut z = transferred(soa(1), bounds());
        // Smaller than SOA EXPIRE: used.
        let now = at(HOUR);
        z.check_started(now);
        z.soa_answered(now, 1, Some(3 * DAY as u32), Jitter::NONE);
        assert_eq!(z.expire_at(), Some(now.saturating_add(secs(3 * DAY))));
        // Larger than SOA EXPIRE: SOA wins.
        z.check_started(now);
        z.soa_answered(now, 1, Some(60 * DAY as u32), Jitter::NONE);
        assert_eq!(z.expire_at(), Some(now.saturating_add(secs(14 * DAY))));
        // Zero (the upstream itself expired): clamped to min_expire.
        z.check_started(now);
        z.soa_answered(now, 1, Some(0), Jitter::NONE);
        assert_eq!(z.expire_at(), Some(now.saturating_add(secs(DAY))));
        // With a transfer too, against the new SOA's EXPIRE.
        let new = SoaTimers {
            expire: 2 * DAY as u32,
            ..soa(2)
        };
        z.check_started(now);
        z.transfer_succeeded(now, new, Some(5 * DAY as u32), Jitter::NONE);
        assert_eq!(z.expire_at(), Some(now.saturating_add(secs(2 * DAY))));
        // Above max_expire: clamped down.
        let b = TimerBounds {
            max_expire: secs(DAY + HOUR),
            ..bounds()
        };
        let mut z = transferred(soa(1), b);
        z.soa_answered(now, 1, Some(3 * DAY as u32), Jitter::NONE);
        assert_eq!(z.expire_at(), Some(now.saturating_add(secs(DAY + HOUR))));
    }

    #[test]
    fn seed_has_no_expiry_until_contact() {
        let mut z = ZoneTimers::from_seed(soa(3), bounds(), T0);
        assert_eq!(z.source(), Source::Seed);
        assert!(z.check_due(T0));
        assert_eq!(z.expire_at(), None);
        assert_eq!(z.expires_in(T0), None);
        // A year of failures: still served.
        let mut now = T0;
        while now < at(365 * DAY) {
            now = z.next_due(now).unwrap();
            z.check_started(now);
            z.attempt_failed(now, Jitter::NONE);
        }
        assert_eq!(z.state(now), TimerState::Retrying);
        assert!(!z.is_expired(now));
        // Survives a restart as a seed without expiry.
        let mut z = ZoneTimers::restore(soa(3), bounds(), z.stored(), now);
        assert_eq!(z.expire_at(), None);
        assert!(!z.is_expired(at(1000 * DAY)));
        // The primary confirms the seed's serial: the expiry clock starts.
        z.check_started(now);
        assert_eq!(
            z.soa_answered(now, 3, None, Jitter::NONE),
            SoaVerdict::Unchanged
        );
        assert_eq!(z.source(), Source::Seed);
        assert_eq!(z.expire_at(), Some(now.saturating_add(secs(14 * DAY))));
        // A transfer replaces the seed.
        z.check_started(now);
        z.transfer_succeeded(now, soa(4), None, Jitter::NONE);
        assert_eq!(z.source(), Source::Transfer);
    }

    #[test]
    fn notify_when_idle_and_during_check() {
        let mut z = transferred(soa(10), bounds());
        let now = at(10 * MIN);
        // Not newer than ours: nothing to do.
        assert_eq!(
            z.notify_received(now, Some(10)),
            NotifyOutcome::AlreadyCurrent
        );
        assert_eq!(
            z.notify_received(now, Some(9)),
            NotifyOutcome::AlreadyCurrent
        );
        assert!(!z.check_due(now));
        // Newer, idle: due now.
        assert_eq!(z.notify_received(now, Some(11)), NotifyOutcome::CheckNow);
        assert!(z.check_due(now));
        assert_eq!(z.next_due(now), Some(now));
        // A burst during the check is merged into one follow-up.
        z.check_started(now);
        for s in [11, 12, 12, 11] {
            assert_eq!(z.notify_received(now, Some(s)), NotifyOutcome::Merged);
        }
        // The check brings in 11; 12 was announced, so check again at once.
        let later = at(11 * MIN);
        z.transfer_succeeded(later, soa(11), None, Jitter::NONE);
        assert!(z.check_due(later));
        // This one brings 12 and nothing further is pending.
        z.check_started(later);
        z.transfer_succeeded(later, soa(12), None, Jitter::NONE);
        assert!(!z.check_due(later));
        assert_eq!(
            z.next_due(later),
            Some(later.saturating_add(secs(2 * HOUR)))
        );
    }

    #[test]
    fn notify_during_check_already_satisfied() {
        let mut z = transferred(soa(10), bounds());
        let now = at(10 * MIN);
        z.check_started(now);
        assert_eq!(z.notify_received(now, Some(11)), NotifyOutcome::Merged);
        z.transfer_succeeded(now, soa(11), None, Jitter::NONE);
        assert!(!z.check_due(now));

        // Without a serial the follow-up always happens, even after failure.
        z.check_started(now);
        assert_eq!(z.notify_received(now, None), NotifyOutcome::Merged);
        z.attempt_failed(now, Jitter::NONE);
        assert!(z.check_due(now));
        assert_eq!(z.state(now), TimerState::Retrying);
    }
}
