//! The set of zones being served; the only place a snapshot is swapped.
//!
//! Readers do one atomic load for the table and one for the zone; writers
//! build everything off to the side and swap a pointer, so no query ever
//! waits on a transfer, a reload or an expiry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Cleared when the zone expired and the operator chose SERVFAIL.
    expired: AtomicBool,
    /// Queries answered for this zone, by RCODE and size.
    pub counters: QueryCounters,
}

impl ZoneEntry {
    pub fn new(name: Name) -> Self {
        ZoneEntry {
            name,
            snapshot: ArcSwapOption::empty(),
            expired: AtomicBool::new(false),
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

    /// Puts a new snapshot in service; the old one is freed when the last
    /// query using it is done.
    pub fn swap(&self, zone: Arc<Zone>) {
        self.snapshot.store(Some(zone));
    }

    pub fn is_expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed)
    }

    pub fn set_expired(&self, expired: bool) {
        self.expired.store(expired, Ordering::Relaxed);
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
