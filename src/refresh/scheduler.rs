//! One scheduler task for all zones.
//!
//! A sorted set of `(deadline, zone)` pairs and a [`Notify`] that wakes the
//! task when the earliest deadline moves, rather than a sleeping task per
//! zone: ten thousand zones cost ten thousand set entries, not ten thousand
//! tasks and timers.
//!
//! A zone handed out on the channel is *in flight* until the orchestrator
//! calls [`Scheduler::finished`]. While a zone is due or in flight, further
//! requests for an immediate check are merged: a burst of NOTIFYs for a zone
//! whose check is queued or running yields exactly one more check after the
//! running one (RFC 1996 §4.4). Because of this the channel never holds more
//! than one entry per zone, which is why it can be unbounded.

use crate::refresh::timers::UnixTime;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// Handle to the scheduler task; cheap to clone.
#[derive(Debug)]
pub struct Scheduler<Z> {
    shared: Arc<Shared<Z>>,
}

impl<Z> Clone for Scheduler<Z> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

#[derive(Debug)]
struct Shared<Z> {
    state: Mutex<State<Z>>,
    wake: Notify,
}

impl<Z> Shared<Z> {
    fn lock(&self) -> MutexGuard<'_, State<Z>> {
        // The lock is never held across code that can panic midway through
        // an update, so a poisoned lock still guards consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug)]
struct State<Z> {
    /// Deadlines of zones that are not in flight.
    deadlines: BTreeSet<(Instant, Z)>,
    zones: HashMap<Z, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    /// The zone's deadline, always `None` in flight; when set, the pair is
    /// in `deadlines`.
    at: Option<Instant>,
    in_flight: bool,
    /// A check was requested while in flight: run one more when it finishes.
    again: bool,
}

impl<Z: Ord + Hash + Clone> State<Z> {
    /// Returns whether the task must wake up: the zone became the earliest.
    fn set_deadline(&mut self, zone: Z, at: Instant) -> bool {
        let entry = self.zones.entry(zone.clone()).or_default();
        if entry.in_flight {
            return false;
        }
        if let Some(old) = entry.at.replace(at) {
            self.deadlines.remove(&(old, zone.clone()));
        }
        self.deadlines.insert((at, zone.clone()));
        self.deadlines.first().is_some_and(|(_, z)| *z == zone)
    }
}

/// What a request for an immediate check did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckRequest {
    /// The zone is now due.
    Queued,
    /// A check was already due or running; this request adds none.
    Merged,
}

impl<Z> Scheduler<Z>
where
    Z: Ord + Hash + Clone + Send + 'static,
{
    /// Spawns the scheduler task on the current tokio runtime. Due zones
    /// arrive on the returned receiver; the task ends when it is dropped.
    pub fn spawn() -> (Self, mpsc::UnboundedReceiver<Z>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                deadlines: BTreeSet::new(),
                zones: HashMap::new(),
            }),
            wake: Notify::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Arc::clone(&shared), tx));
        (Self { shared }, rx)
    }

    fn lock(&self) -> MutexGuard<'_, State<Z>> {
        self.shared.lock()
    }

    /// Sets the zone's deadline, adding the zone if it is new. Does nothing
    /// to a zone in flight: [`finished`](Self::finished) sets its next one.
    pub fn schedule(&self, zone: Z, at: Instant) {
        let wake = self.lock().set_deadline(zone, at);
        self.wake_if(wake);
    }

    /// Asks for a check of the zone now (NOTIFY, operator request), adding
    /// the zone if it is new. Merged with a check that is already due or in
    /// flight.
    pub fn check_now(&self, zone: Z) -> CheckRequest {
        let now = Instant::now();
        let mut st = self.lock();
        let entry = st.zones.entry(zone.clone()).or_default();
        if entry.in_flight {
            entry.again = true;
            return CheckRequest::Merged;
        }
        if entry.at.is_some_and(|at| at <= now) {
            return CheckRequest::Merged;
        }
        let wake = st.set_deadline(zone, now);
        drop(st);
        self.wake_if(wake);
        CheckRequest::Queued
    }

    /// The orchestrator is done with a zone it received: the zone is due
    /// again at `next`, or at once if a check was requested meanwhile. A zone
    /// removed while in flight stays removed.
    pub fn finished(&self, zone: &Z, next: Instant) {
        let mut st = self.lock();
        let Some(entry) = st.zones.get_mut(zone) else {
            return;
        };
        let mut at = next;
        if entry.in_flight {
            entry.in_flight = false;
            if std::mem::take(&mut entry.again) {
                at = Instant::now();
            }
        }
        let wake = st.set_deadline(zone.clone(), at);
        drop(st);
        self.wake_if(wake);
    }

    fn wake_if(&self, wake: bool) {
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Forgets the zone. Returns whether it was known. If it is in flight it
    /// may still arrive on the channel once; the receiver should ignore zones
    /// it no longer serves.
    pub fn remove(&self, zone: &Z) -> bool {
        let mut st = self.lock();
        let Some(entry) = st.zones.remove(zone) else {
            return false;
        };
        if let (Some(at), false) = (entry.at, entry.in_flight) {
            st.deadlines.remove(&(at, zone.clone()));
        }
        true
    }

    /// The zone's pending deadline; `None` if unknown or in flight.
    pub fn deadline(&self, zone: &Z) -> Option<Instant> {
        self.lock().zones.get(zone).and_then(|e| e.at)
    }

    pub fn is_in_flight(&self, zone: &Z) -> bool {
        self.lock().zones.get(zone).is_some_and(|e| e.in_flight)
    }

    /// Number of zones known to the scheduler.
    pub fn len(&self) -> usize {
        self.lock().zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The monotonic instant matching wall-clock `due`, given that the wall
/// clock reads `now` at this moment. Timers are stored as wall-clock times;
/// the scheduler sleeps on the monotonic clock so that a wall-clock step
/// does not fire or stall every zone at once.
pub fn instant_at(due: UnixTime, now: UnixTime) -> Instant {
    Instant::now() + now.until(due)
}

async fn run<Z>(shared: Arc<Shared<Z>>, tx: mpsc::UnboundedSender<Z>)
where
    Z: Ord + Hash + Clone,
{
    loop {
        let next = {
            let mut st = shared.lock();
            let now = Instant::now();
            while st.deadlines.first().is_some_and(|(at, _)| *at <= now) {
                let Some((_, zone)) = st.deadlines.pop_first() else {
                    break;
                };
                if let Some(entry) = st.zones.get_mut(&zone) {
                    entry.in_flight = true;
                    entry.at = None;
                }
                if tx.send(zone).is_err() {
                    return;
                }
            }
            st.deadlines.first().map(|(at, _)| *at)
        };
        // `notify_one` leaves a permit when nobody waits, so a change made
        // between releasing the lock and awaiting here is not lost.
        let woken = shared.wake.notified();
        match next {
            Some(at) => tokio::select! {
                () = woken => {}
                () = tokio::time::sleep_until(at) => {}
                () = tx.closed() => return,
            },
            None => tokio::select! {
                () = woken => {}
                () = tx.closed() => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashSet;
    use std::time::Duration;
    use tokio::time::timeout;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// Receives the next due zone and how long after `start` it arrived.
    async fn next(rx: &mut mpsc::UnboundedReceiver<u32>, start: Instant) -> (u32, Duration) {
        let z = timeout(s(365 * 86400), rx.recv())
            .await
            .expect("a zone within a year")
            .expect("scheduler alive");
        (z, start.elapsed())
    }

    async fn nothing_within(rx: &mut mpsc::UnboundedReceiver<u32>, d: Duration) {
        if let Ok(z) = timeout(d, rx.recv()).await {
            panic!("unexpected zone {z:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ordering() {
        let (sched, mut rx) = Scheduler::spawn();
        let start = Instant::now();
        sched.schedule(1, start + s(30));
        sched.schedule(2, start + s(10));
        sched.schedule(3, start + s(20));
        sched.schedule(4, start + s(20));
        assert_eq!(next(&mut rx, start).await, (2, s(10)));
        assert_eq!(next(&mut rx, start).await, (3, s(20)));
        assert_eq!(next(&mut rx, start).await, (4, s(20)));
        assert_eq!(next(&mut rx, start).await, (1, s(30)));
        assert!(sched.is_in_flight(&1));
        nothing_within(&mut rx, s(86400)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn rescheduling() {
        let (sched, mut rx) = Scheduler::spawn();
        let start = Instant::now();
        sched.schedule(1, start + s(100));
        sched.schedule(2, start + s(50));
        // Let the task go to sleep until 50 s; it must wake for the earlier one.
        tokio::time::sleep(s(1)).await;
        sched.schedule(1, start + s(5));
        assert_eq!(sched.deadline(&1), Some(start + s(5)));
        // Later: 2 moves behind 1's old deadline.
        sched.schedule(2, start + s(200));
        assert_eq!(next(&mut rx, start).await, (1, s(5)));
        assert_eq!(next(&mut rx, start).await, (2, s(200)));
        // 1 did not also fire at its old 100 s deadline.
        nothing_within(&mut rx, s(1000)).await;
        assert_eq!(sched.len(), 2);

        // finished() on a zone that was handed out sets its next deadline.
        let t = Instant::now();
        sched.finished(&1, t + s(60));
        sched.finished(&2, t + s(30));
        assert_eq!(sched.deadline(&1), Some(t + s(60)));
        assert_eq!(next(&mut rx, t).await, (2, s(30)));
        assert_eq!(next(&mut rx, t).await, (1, s(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn merging_bursts() {
        let (sched, mut rx) = Scheduler::spawn();
        let start = Instant::now();
        sched.schedule(7, start + s(3600));
        sched.schedule(8, start + s(3600));
        // A burst while the check is due: one check.
        assert_eq!(sched.check_now(7), CheckRequest::Queued);
        for _ in 0..100 {
            assert_eq!(sched.check_now(7), CheckRequest::Merged);
        }
        assert_eq!(next(&mut rx, start).await, (7, s(0)));
        // A burst while the check runs: one more check, after it finishes.
        for _ in 0..50 {
            assert_eq!(sched.check_now(7), CheckRequest::Merged);
        }
        nothing_within(&mut rx, s(600)).await;
        let t = Instant::now();
        sched.finished(&7, t + s(7200));
        assert_eq!(next(&mut rx, t).await, (7, s(0)));
        // No request this time: the next check waits for its deadline.
        let t = Instant::now();
        sched.finished(&7, t + s(7200));
        // 8 is still due at its own time, unaffected.
        assert_eq!(next(&mut rx, start).await, (8, s(3600)));
        assert_eq!(next(&mut rx, t).await, (7, s(7200)));
        // An unknown zone is added by a request.
        assert_eq!(sched.check_now(9), CheckRequest::Queued);
        assert_eq!(next(&mut rx, Instant::now()).await, (9, s(0)));
    }

    #[tokio::test(start_paused = true)]
    async fn removal() {
        let (sched, mut rx) = Scheduler::spawn();
        let start = Instant::now();
        sched.schedule(1, start + s(10));
        sched.schedule(2, start + s(20));
        sched.schedule(3, start + s(30));
        assert!(sched.remove(&1));
        assert!(!sched.remove(&1));
        assert_eq!(next(&mut rx, start).await, (2, s(20)));
        // Removed while in flight: finishing does not bring it back.
        assert!(sched.remove(&2));
        sched.finished(&2, Instant::now() + s(1));
        assert_eq!(sched.deadline(&2), None);
        assert_eq!(next(&mut rx, start).await, (3, s(30)));
        nothing_within(&mut rx, s(86400)).await;
        assert_eq!(sched.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn ends_when_receiver_dropped() {
        let (sched, rx) = Scheduler::<u32>::spawn();
        sched.schedule(1, Instant::now() + s(10));
        let weak = Arc::downgrade(&sched.shared);
        drop(rx);
        drop(sched);
        tokio::time::sleep(s(1)).await;
        assert!(weak.upgrade().is_none(), "task still holds the state");
    }

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_zones() {
        const N: u32 = 10_000;
        let (sched, mut rx) = Scheduler::spawn();
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(1996);
        let mut due = HashMap::new();
        for z in 0..N {
            let at = start + s(rng.random_range(1..86400));
            sched.schedule(z, at);
            due.insert(z, at);
        }
        // Move a tenth of them, some earlier, some later.
        for z in (0..N).step_by(10) {
            let at = start + s(rng.random_range(1..2 * 86400));
            sched.schedule(z, at);
            due.insert(z, at);
        }
        let wall = std::time::Instant::now();
        let mut seen = HashSet::new();
        let mut last = start;
        for _ in 0..N {
            let z = timeout(s(3 * 86400), rx.recv()).await.unwrap().unwrap();
            let now = Instant::now();
            assert_eq!(now, due[&z], "zone {z} fired at its deadline");
            assert!(now >= last);
            last = now;
            assert!(seen.insert(z), "zone {z} fired twice");
            sched.finished(&z, now + s(30 * 86400));
        }
        nothing_within(&mut rx, s(20 * 86400)).await;
        assert_eq!(sched.len(), N as usize);
        assert!(
            wall.elapsed() < Duration::from_secs(20),
            "10,000 zones took {:?}",
            wall.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn instant_from_wall_clock() {
        let now = UnixTime(1_000_000);
        let base = Instant::now();
        assert_eq!(instant_at(UnixTime(1_000_060), now), base + s(60));
        // Past deadlines map to now.
        assert_eq!(instant_at(UnixTime(10), now), base);
    }
}
