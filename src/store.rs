//! The set of zones being served; the only place a snapshot is swapped.
//!
//! Readers do one atomic load for the table and one for the zone; writers
//! build everything off to the side and swap a pointer, so no query ever
//! waits on a transfer, a reload or an expiry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use hickory_proto::rr::Name;

use crate::metrics::QueryCounters;
use crate::zone::Zone;
use crate::zone::key::{WireName, key_of};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One configured zone: its current snapshot (if any) and whether it may be
/// answered from.
#[derive(Debug)]
pub struct ZoneEntry {
    name: Name,
    snapshot: ArcSwapOption<Zone>,
    /// Unix time (seconds) from which the zone is answered SERVFAIL: its
    /// expiry when the operator chose `on_expire = "servfail"`, else never.
    /// Checked per query against a coarse clock, so the zone stops being
    /// served at the second it expires, not at the next timer wake-up.
    servfail_at: AtomicU64,
    /// Queries answered for this zone, by RCODE and size.
    pub counters: QueryCounters,
}

impl ZoneEntry {
    pub fn new(name: Name) -> Self {
        ZoneEntry {
            name,
            snapshot: ArcSwapOption::empty(),
            servfail_at: AtomicU64::new(u64::MAX),
            counters: QueryCounters::default(),
        }
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    pub fn snapshot(&self) -> Option<Arc<Zone>> {
        self.snapshot.load_full()
    }

    /// A cheap guard for the query path.
    pub fn load(&self) -> arc_swap::Guard<Option<Arc<Zone>>> {
        self.snapshot.load()
    }

    /// Puts a new snapshot in service and hands back the old one, which is
    /// freed when the last query using it is done.
    pub fn swap(&self, zone: Arc<Zone>) -> Option<Arc<Zone>> {
        self.snapshot.swap(Some(zone))
    }

    /// Whether queries are answered from the zone's data at `now` (Unix
    /// seconds): what the query path does, for the reports to say.
    pub fn serves_at(&self, now: u64) -> bool {
        self.snapshot.load().is_some() && now < self.servfail_at.load(Ordering::Relaxed)
    }

    pub fn is_expired(&self) -> bool {
        coarse_unix_secs() >= self.servfail_at.load(Ordering::Relaxed)
    }

    /// `None`: never answer SERVFAIL for expiry.
    pub fn set_servfail_at(&self, at: Option<u64>) {
        self.servfail_at
            .store(at.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct ZoneTable {
    by_key: FastMap<Box<[u8]>, Arc<ZoneEntry>>,
}

impl ZoneTable {
    pub fn new(entries: impl IntoIterator<Item = Arc<ZoneEntry>>) -> Self {
        ZoneTable {
            by_key: entries.into_iter().map(|e| (key_of(e.name()), e)).collect(),
        }
    }

    /// The closest enclosing zone of a name: the longest suffix that is a
    /// configured zone.
    pub fn find(&self, name: &WireName) -> Option<&Arc<ZoneEntry>> {
        (0..=name.labels())
            .rev()
            .find_map(|n| self.by_key.get(name.suffix(n)))
    }

    pub fn get(&self, name: &Name) -> Option<&Arc<ZoneEntry>> {
        self.by_key.get(&key_of(name))
    }

    pub fn entries(&self) -> impl Iterator<Item = &Arc<ZoneEntry>> {
        self.by_key.values()
    }
}

/// All zones; the table itself is swapped on reload.
#[derive(Debug, Default)]
pub struct Store {
    table: ArcSwap<ZoneTable>,
}

impl Store {
    pub fn new(table: ZoneTable) -> Self {
        Store {
            table: ArcSwap::from_pointee(table),
        }
    }

    pub fn table(&self) -> arc_swap::Guard<Arc<ZoneTable>> {
        self.table.load()
    }

    pub fn replace_table(&self, table: ZoneTable) {
        self.table.store(Arc::new(table));
    }
}

/// Wall-clock seconds from the kernel's coarse clock: a few nanoseconds
/// through the vDSO, precise to a few milliseconds, which is all an expiry
/// check needs.
pub fn coarse_unix_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc == 0 {
        ts.tv_sec as u64
    } else {
        crate::refresh::timers::UnixTime::now().0
    }
}
