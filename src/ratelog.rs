//! Warnings caused by remote input, rate-limited per kind.
//!
//! Anyone on the internet can make a server warn: a NOTIFY for a zone it
//! does not serve, an AXFR over UDP, a bad TSIG. Logged line for line, a
//! spoofed flood becomes a disk-filling flood. Each kind of such warning
//! here is a static [`Kind`]: at most [`PER_WINDOW`] lines of it per
//! second; the rest are counted, and the count is logged once the second
//! is over (by the next warning of the kind, or by [`flush`], which the
//! daemon calls every second).
//!
//! No lock and no allocation: a kind is three atomics.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Lines of one kind logged per second, at most.
pub const PER_WINDOW: u64 = 5;

/// One kind of warning.
pub struct Kind {
    name: &'static str,
    /// The second (since the process started) the counts are for.
    window: AtomicU64,
    /// Lines of this second so far, logged or not.
    seen: AtomicU64,
    /// Lines not logged, not yet reported.
    suppressed: AtomicU64,
}

fn now_secs() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

impl Kind {
    pub const fn new(name: &'static str) -> Kind {
        Kind {
            name,
            window: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether a line of this kind may be logged now. A `false` is counted
    /// as suppressed.
    pub fn allow(&self) -> bool {
        self.allow_at(now_secs())
    }

    fn allow_at(&self, now: u64) -> bool {
        self.roll(now);
        if self.seen.fetch_add(1, Ordering::Relaxed) < PER_WINDOW {
            true
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Starts a new window when the second has changed, reporting what the
    /// last one suppressed. Returns that count.
    fn roll(&self, now: u64) -> u64 {
        let window = self.window.load(Ordering::Relaxed);
        if window == now
            || self
                .window
                .compare_exchange(window, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return 0;
        }
        self.seen.store(0, Ordering::Relaxed);
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        if suppressed > 0 {
            tracing::warn!(
                kind = self.name,
                suppressed,
                "similar warnings suppressed (at most {PER_WINDOW} a second are logged)"
            );
        }
        suppressed
    }
}

/// NOTIFY refused: not our zone, not an allowed sender, or unsigned.
pub static NOTIFY_REFUSED: Kind = Kind::new("notify-refused");
/// AXFR/IXFR requests refused (not allowed, or AXFR over UDP).
pub static TRANSFER_REFUSED: Kind = Kind::new("transfer-refused");
/// Signed requests whose TSIG did not verify.
pub static TSIG_REJECTED: Kind = Kind::new("tsig-rejected");

/// Every kind, for [`flush`].
pub static KINDS: [&Kind; 3] = [&NOTIFY_REFUSED, &TRANSFER_REFUSED, &TSIG_REJECTED];

/// Reports the suppressed counts of windows that have ended; returns how
/// many lines were reported as suppressed.
pub fn flush() -> u64 {
    let now = now_secs();
    KINDS.iter().map(|k| k.roll(now)).sum()
}

/// `tracing::warn!` through a [`Kind`]'s limit.
#[macro_export]
macro_rules! warn_limited {
    ($kind:expr, $($arg:tt)+) => {
        if $kind.allow() {
            tracing::warn!(kind = $kind.name(), $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_lines_a_second_and_the_rest_counted() {
        let k = Kind::new("test");
        let allowed = (0..10_000).filter(|_| k.allow_at(7)).count();
        assert_eq!(allowed as u64, PER_WINDOW);
        assert_eq!(k.suppressed.load(Ordering::Relaxed), 10_000 - PER_WINDOW);
        // The next second reports the count once and allows again.
        assert_eq!(k.roll(8), 10_000 - PER_WINDOW);
        assert_eq!(k.roll(8), 0);
        assert!(k.allow_at(8));
        // A quiet second after a burst reports nothing more.
        assert_eq!(k.roll(9), 0);
    }
}
