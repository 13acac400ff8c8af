//! Counters for the Prometheus endpoint.
//!
//! Query counters are plain atomics in each zone's entry: the query path
//! does a relaxed increment, never a lock or a map lookup. Control-plane
//! events (transfers, NOTIFY) are rare and go through a mutex. Everything is
//! rendered by hand in the Prometheus text format at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// RCODEs counted individually; anything above goes to the last slot.
const RCODES: usize = 11;
const RCODE_NAMES: [&str; RCODES] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "OTHER",
];
/// The `zone` label of queries and NOTIFY for names in no zone we serve:
/// one series, whatever names senders make up.
pub const OTHER_ZONE: &str = "_other";
/// Upper bounds (octets) of the response-size histogram buckets.
pub const SIZE_BUCKETS: [u64; 8] = [64, 128, 256, 512, 1232, 4096, 16384, 65535];

/// Per-zone (or server-wide) query counters by RCODE.
#[derive(Debug, Default)]
pub struct QueryCounters {
    by_rcode: [AtomicU64; RCODES],
}

impl QueryCounters {
    /// Counts one answered query; `rcode` is the 12-bit extended code.
    pub fn record(&self, rcode: u16) {
        let slot = (rcode as usize).min(RCODES - 1);
        self.by_rcode[slot].fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, zone: &str, out: &mut Exposition) {
        for (i, name) in RCODE_NAMES.iter().enumerate() {
            let n = self.by_rcode[i].load(Ordering::Relaxed);
            if n > 0 {
                out.sample(
                    "outpost_queries_total",
                    &[("zone", zone), ("rcode", name)],
                    n as f64,
                );
            }
        }
    }
}

/// Counts a worker keeps for a batch of queries and adds to the shared
/// [`QueryCounters`] in one go when dropped (or when the next query is for
/// another zone): one atomic add per RCODE seen instead of one per query.
/// With two workers the per-query adds were a cache line bounced between
/// the cores on every answer.
#[derive(Default)]
pub struct PendingCounts<'a> {
    target: Option<&'a QueryCounters>,
    by_rcode: [u64; RCODES],
}

impl<'a> PendingCounts<'a> {
    pub fn record(&mut self, counters: &'a QueryCounters, rcode: u16) {
        if !self.target.is_some_and(|t| std::ptr::eq(t, counters)) {
            self.flush();
            self.target = Some(counters);
        }
        self.by_rcode[(rcode as usize).min(RCODES - 1)] += 1;
    }

    pub fn flush(&mut self) {
        if let Some(t) = self.target {
            for (shared, n) in t.by_rcode.iter().zip(&mut self.by_rcode) {
                if *n > 0 {
                    shared.fetch_add(*n, Ordering::Relaxed);
                    *n = 0;
                }
            }
        }
    }
}

impl Drop for PendingCounts<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// [`PendingCounts`] for a [`SizeHistogram`].
pub struct PendingSizes<'a> {
    target: &'a SizeHistogram,
    buckets: [u64; SIZE_BUCKETS.len()],
    over: u64,
    sum: u64,
}

impl<'a> PendingSizes<'a> {
    pub fn new(target: &'a SizeHistogram) -> Self {
        PendingSizes {
            target,
            buckets: [0; SIZE_BUCKETS.len()],
            over: 0,
            sum: 0,
        }
    }

    pub fn record(&mut self, size: usize) {
        let size = size as u64;
        match SIZE_BUCKETS.iter().position(|&le| size <= le) {
            Some(b) => self.buckets[b] += 1,
            None => self.over += 1,
        }
        self.sum += size;
    }
}

impl Drop for PendingSizes<'_> {
    fn drop(&mut self) {
        let t = self.target;
        for (shared, &n) in t.buckets.iter().zip(&self.buckets) {
            if n > 0 {
                shared.fetch_add(n, Ordering::Relaxed);
            }
        }
        if self.over > 0 {
            t.over.fetch_add(self.over, Ordering::Relaxed);
        }
        if self.sum > 0 {
            t.sum.fetch_add(self.sum, Ordering::Relaxed);
        }
    }
}

/// Sizes of the responses sent, as a Prometheus histogram.
#[derive(Debug, Default)]
pub struct SizeHistogram {
    buckets: [AtomicU64; SIZE_BUCKETS.len()],
    over: AtomicU64,
    sum: AtomicU64,
}

impl SizeHistogram {
    pub fn record(&self, size: usize) {
        let size = size as u64;
        match SIZE_BUCKETS.iter().position(|&le| size <= le) {
            Some(b) => self.buckets[b].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.sum.fetch_add(size, Ordering::Relaxed);
    }

    fn render(&self, name: &str, labels: &[(&str, &str)], out: &mut Exposition) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, le) in SIZE_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let le = le.to_string();
            let mut l = labels.to_vec();
            l.push(("le", &le));
            out.sample(&bucket, &l, cumulative as f64);
        }
        cumulative += self.over.load(Ordering::Relaxed);
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        out.sample(&bucket, &l, cumulative as f64);
        out.sample(
            &format!("{name}_sum"),
            labels,
            self.sum.load(Ordering::Relaxed) as f64,
        );
        out.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

/// What response rate limiting did, summed over the UDP workers.
#[derive(Debug, Default)]
pub struct RrlCounters {
    dropped: AtomicU64,
    slipped: AtomicU64,
    cookie_exempt: AtomicU64,
}

impl RrlCounters {
    /// Adds a worker's counts (once per batch).
    pub fn add(&self, c: &crate::rrl::Counts) {
        for (shared, n) in [
            (&self.dropped, c.dropped),
            (&self.slipped, c.slipped),
            (&self.cookie_exempt, c.cookie_exempt),
        ] {
            if n > 0 {
                shared.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    fn render(&self, out: &mut Exposition) {
        out.header(
            "outpost_rrl_limited_total",
            "counter",
            "UDP responses held back by response rate limiting: dropped, or slipped (sent truncated or BADCOOKIE).",
        );
        for (action, n) in [("dropped", &self.dropped), ("slipped", &self.slipped)] {
            out.sample(
                "outpost_rrl_limited_total",
                &[("action", action)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
        out.header(
            "outpost_rrl_cookie_exempt_total",
            "counter",
            "UDP responses sent without rate limiting to clients with a valid server cookie.",
        );
        out.sample(
            "outpost_rrl_cookie_exempt_total",
            &[],
            self.cookie_exempt.load(Ordering::Relaxed) as f64,
        );
    }
}

/// What the UDP workers' answer caches turned away, summed.
#[derive(Debug, Default)]
pub struct CacheCounters {
    declined: AtomicU64,
    evicted: AtomicU64,
}

impl CacheCounters {
    /// Adds a worker's counts (once per batch, when there are any).
    pub fn add(&self, s: &crate::fast::cache::Stats) {
        if s.declined > 0 {
            self.declined.fetch_add(s.declined, Ordering::Relaxed);
        }
        if s.evicted > 0 {
            self.evicted.fetch_add(s.evicted, Ordering::Relaxed);
        }
    }

    fn render(&self, out: &mut Exposition) {
        out.header(
            "outpost_answer_cache_declined_total",
            "counter",
            "Answers not cached: their question was seen for the first time.",
        );
        out.sample(
            "outpost_answer_cache_declined_total",
            &[],
            self.declined.load(Ordering::Relaxed) as f64,
        );
        out.header(
            "outpost_answer_cache_evicted_total",
            "counter",
            "Cached answers whose room was taken back for newer ones.",
        );
        out.sample(
            "outpost_answer_cache_evicted_total",
            &[],
            self.evicted.load(Ordering::Relaxed) as f64,
        );
    }
}

/// Control-plane events, keyed by their labels.
#[derive(Debug, Default)]
pub struct Events {
    /// (zone, kind, result) → count
    transfers: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    /// (zone, result) → count
    notifies: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Failed SOA checks and transfers by (zone, primary, what): bounded
    /// by the configured zones and primaries.
    primary_failures: Mutex<BTreeMap<(String, SocketAddr, Failed), u64>>,
    /// Answers for names in no configured zone, and malformed requests.
    pub unmatched: QueryCounters,
    /// Sizes of UDP responses.
    pub udp_response_sizes: SizeHistogram,
    pub rrl: RrlCounters,
    pub answer_cache: CacheCounters,
    /// DNS over TCP: connections, their limits, and transfers out.
    pub tcp: TcpStats,
}

/// A gauge that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}

/// What the TCP path does with connections, and how transfers out end.
#[derive(Debug, Default)]
pub struct TcpStats {
    pub connections_open: Gauge,
    pub connections_accepted: AtomicU64,
    /// New connections closed at once: the caps were reached with no idle
    /// connection to close instead.
    pub connections_refused: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub connections_evicted: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub write_timeouts: AtomicU64,
    /// `accept` failures (at the open-file limit, mostly).
    pub accept_errors: AtomicU64,
    pub response_sizes: SizeHistogram,
    pub transfers_out_running: Gauge,
    transfers_out_completed: AtomicU64,
    transfers_out_cut: AtomicU64,
    transfers_out_refused: AtomicU64,
}

impl TcpStats {
    /// A transfer out ended: "completed", "cut" (the client stopped
    /// reading or went away) or "refused" (`max_transfers_out`).
    pub fn transfer_out(&self, result: &'static str) {
        let counter = match result {
            "completed" => &self.transfers_out_completed,
            "cut" => &self.transfers_out_cut,
            _ => &self.transfers_out_refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut Exposition) {
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        out.header(
            "outpost_tcp_connections_open",
            "gauge",
            "DNS-over-TCP connections open now.",
        );
        out.sample(
            "outpost_tcp_connections_open",
            &[],
            self.connections_open.get() as f64,
        );
        out.header(
            "outpost_tcp_connections_total",
            "counter",
            "DNS-over-TCP connections accepted, and how those closed by the server ended.",
        );
        for (event, c) in [
            ("accepted", &self.connections_accepted),
            ("refused", &self.connections_refused),
            ("evicted", &self.connections_evicted),
            ("idle_timeout", &self.idle_timeouts),
            ("write_timeout", &self.write_timeouts),
        ] {
            out.sample(
                "outpost_tcp_connections_total",
                &[("event", event)],
                count(c),
            );
        }
        out.header(
            "outpost_tcp_accept_errors_total",
            "counter",
            "Failed accepts on the DNS TCP listeners (EMFILE, ENFILE, ...).",
        );
        out.sample(
            "outpost_tcp_accept_errors_total",
            &[],
            count(&self.accept_errors),
        );
        out.header(
            "outpost_transfers_out_running",
            "gauge",
            "Zone transfers to secondaries in progress.",
        );
        out.sample(
            "outpost_transfers_out_running",
            &[],
            self.transfers_out_running.get() as f64,
        );
        out.header(
            "outpost_transfers_out_total",
            "counter",
            "Zone transfers to secondaries, by how they ended.",
        );
        for (result, c) in [
            ("completed", &self.transfers_out_completed),
            ("cut", &self.transfers_out_cut),
            ("refused", &self.transfers_out_refused),
        ] {
            out.sample(
                "outpost_transfers_out_total",
                &[("result", result)],
                count(c),
            );
        }
    }
}

/// What failed with a primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Failed {
    SoaCheck,
    Transfer,
}

impl Events {
    /// A transfer ended: `kind` is "axfr" or "ixfr" (or "axfr-fallback"),
    /// `result` "success" or "failure".
    pub fn transfer(&self, zone: &str, kind: &'static str, result: &'static str) {
        let mut m = self.transfers.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((zone.to_string(), kind, result)).or_default() += 1;
    }

    /// An SOA query to `primary` failed (no answer, TSIG, an error RCODE).
    pub fn soa_failed(&self, zone: &str, primary: SocketAddr) {
        self.primary_failed(zone, primary, Failed::SoaCheck);
    }

    /// A transfer from `primary` failed, whatever the stage.
    pub fn transfer_failed(&self, zone: &str, primary: SocketAddr) {
        self.primary_failed(zone, primary, Failed::Transfer);
    }

    fn primary_failed(&self, zone: &str, primary: SocketAddr, what: Failed) {
        let mut m = self
            .primary_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *m.entry((zone.to_string(), primary, what)).or_default() += 1;
    }

    /// A NOTIFY arrived: `result` is "accepted" or "refused". `zone` is
    /// `None` for a zone we do not serve: those all count under
    /// [`OTHER_ZONE`], so a sender cannot add series.
    pub fn notify(&self, zone: Option<&str>, result: &'static str) {
        let zone = zone.unwrap_or(OTHER_ZONE);
        let mut m = self.notifies.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(&(zone.to_string(), result)) {
            Some(n) => *n += 1,
            None => {
                m.insert((zone.to_string(), result), 1);
            }
        }
    }

    fn render(&self, out: &mut Exposition) {
        let failures = self
            .primary_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (what, name, help) in [
            (
                Failed::SoaCheck,
                "outpost_soa_check_failures_total",
                "SOA queries to a primary that failed (no answer, TSIG, error RCODE).",
            ),
            (
                Failed::Transfer,
                "outpost_transfer_failures_total",
                "Transfers from a primary that failed, at any stage.",
            ),
        ] {
            out.header(name, "counter", help);
            for ((zone, primary, _), n) in failures.iter().filter(|((_, _, w), _)| *w == what) {
                let primary = primary.to_string();
                out.sample(name, &[("zone", zone), ("primary", &primary)], *n as f64);
            }
        }
        drop(failures);
        self.rrl.render(out);
        self.answer_cache.render(out);
        out.header(
            "outpost_transfers_total",
            "counter",
            "Zone transfers from primaries, by kind and result.",
        );
        for ((zone, kind, result), n) in self
            .transfers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            out.sample(
                "outpost_transfers_total",
                &[("zone", zone), ("kind", kind), ("result", result)],
                *n as f64,
            );
        }
        out.header(
            "outpost_notify_received_total",
            "counter",
            "NOTIFY messages received, by result.",
        );
        for ((zone, result), n) in self
            .notifies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            out.sample(
                "outpost_notify_received_total",
                &[("zone", zone), ("result", result)],
                *n as f64,
            );
        }
    }
}

/// Prometheus text exposition (version 0.0.4).
#[derive(Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        // The text format spells infinities +Inf and -Inf.
        if value.is_infinite() {
            let _ = writeln!(self.text, " {}Inf", if value > 0.0 { '+' } else { '-' });
        } else {
            let _ = writeln!(self.text, " {value}");
        }
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything the metrics endpoint shows about one zone.
pub struct ZoneSample<'a> {
    pub zone: &'a str,
    pub queries: &'a QueryCounters,
    pub serial: Option<u32>,
    pub expires_in: Option<u64>,
    pub records: usize,
    pub last_contact: Option<u64>,
    pub served: bool,
    pub signatures_expire: Option<u64>,
    /// Writes of the zone's files that failed since start.
    pub disk_failures: u64,
    /// Whether the copy in service is on disk.
    pub on_disk: bool,
    /// One of [`crate::refresh::STATES`].
    pub state: &'a str,
}

/// Renders the whole exposition.
pub fn render(zones: &[ZoneSample<'_>], events: &Events) -> String {
    let mut out = Exposition::default();
    out.header("outpost_build_info", "gauge", "Outpost build information.");
    out.sample(
        "outpost_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );

    out.header(
        "outpost_queries_total",
        "counter",
        "DNS queries answered, by zone and response code.",
    );
    for z in zones {
        z.queries.render(z.zone, &mut out);
    }
    events.unmatched.render(OTHER_ZONE, &mut out);
    out.header(
        "outpost_response_size_bytes",
        "histogram",
        "Size of DNS responses in octets.",
    );
    events.udp_response_sizes.render(
        "outpost_response_size_bytes",
        &[("protocol", "udp")],
        &mut out,
    );
    events.tcp.response_sizes.render(
        "outpost_response_size_bytes",
        &[("protocol", "tcp")],
        &mut out,
    );

    out.header(
        "outpost_zone_serial",
        "gauge",
        "SOA serial of the copy being served.",
    );
    for z in zones {
        if let Some(s) = z.serial {
            out.sample("outpost_zone_serial", &[("zone", z.zone)], s as f64);
        }
    }
    out.header(
        "outpost_zone_expiry_seconds",
        "gauge",
        "Seconds until the zone expires if no primary is reached: +Inf for a copy that \
         does not expire (a seed never confirmed by a primary, a static zone), 0 with no copy \
         at all (answered SERVFAIL, as if expired).",
    );
    for z in zones {
        let secs = match (z.expires_in, z.serial) {
            (Some(s), _) => s as f64,
            (None, Some(_)) => f64::INFINITY,
            (None, None) => 0.0,
        };
        out.sample("outpost_zone_expiry_seconds", &[("zone", z.zone)], secs);
    }
    out.header(
        "outpost_zone_records",
        "gauge",
        "Records in the copy being served.",
    );
    for z in zones {
        out.sample(
            "outpost_zone_records",
            &[("zone", z.zone)],
            z.records as f64,
        );
    }
    out.header(
        "outpost_zone_last_contact_timestamp_seconds",
        "gauge",
        "Unix time of the last successful contact with a primary.",
    );
    for z in zones {
        if let Some(t) = z.last_contact {
            out.sample(
                "outpost_zone_last_contact_timestamp_seconds",
                &[("zone", z.zone)],
                t as f64,
            );
        }
    }
    out.header(
        "outpost_zone_serving",
        "gauge",
        "1 when the zone is answered from its data, 0 when SERVFAIL.",
    );
    for z in zones {
        out.sample(
            "outpost_zone_serving",
            &[("zone", z.zone)],
            if z.served { 1.0 } else { 0.0 },
        );
    }
    out.header(
        "outpost_zone_persist_failures_total",
        "counter",
        "Writes of the zone's files (zone file, journal, state) that failed since start.",
    );
    for z in zones {
        out.sample(
            "outpost_zone_persist_failures_total",
            &[("zone", z.zone)],
            z.disk_failures as f64,
        );
    }
    out.header(
        "outpost_zone_persisted",
        "gauge",
        "1 when the copy in service is on disk, 0 while a failed write waits to be tried again.",
    );
    for z in zones {
        out.sample(
            "outpost_zone_persisted",
            &[("zone", z.zone)],
            if z.on_disk { 1.0 } else { 0.0 },
        );
    }
    out.header(
        "outpost_zone_signatures_expiry_timestamp_seconds",
        "gauge",
        "Unix time at which the first RRSIG of the served copy expires (signed zones).",
    );
    for z in zones {
        if let Some(t) = z.signatures_expire {
            out.sample(
                "outpost_zone_signatures_expiry_timestamp_seconds",
                &[("zone", z.zone)],
                t as f64,
            );
        }
    }
    out.header(
        "outpost_zone_state",
        "gauge",
        "1 for the zone's state (fresh, refreshing, retrying, expired, expired-serving, static), 0 for the others.",
    );
    for z in zones {
        for state in crate::refresh::STATES {
            out.sample(
                "outpost_zone_state",
                &[("zone", z.zone), ("state", state)],
                if z.state == state { 1.0 } else { 0.0 },
            );
        }
    }
    events.render(&mut out);
    events.tcp.render(&mut out);
    render_process(&mut out);
    out.into_string()
}

/// The process metrics Prometheus clients export under these names, read
/// from /proc (Linux); absent elsewhere.
fn render_process(out: &mut Exposition) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14, stime 15, starttime 22, vsize 23,
    // rss 24 (proc(5)); index 0 below is field 3.
    let Some(fields) = stat.rsplit_once(')').map(|(_, rest)| {
        rest.split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    }) else {
        return;
    };
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    out.header(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
    );
    out.sample(
        "process_cpu_seconds_total",
        &[],
        (field(14) + field(15)) as f64 / ticks,
    );
    out.header(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    );
    out.sample(
        "process_resident_memory_bytes",
        &[],
        field(24) as f64 * page,
    );
    out.header(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
    );
    out.sample("process_virtual_memory_bytes", &[], field(23) as f64);
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    if let Some(boot) = boot {
        out.header(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
        );
        out.sample(
            "process_start_time_seconds",
            &[],
            boot as f64 + (field(22) as f64 / ticks).floor(),
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        out.header("process_open_fds", "gauge", "Open file descriptors.");
        out.sample("process_open_fds", &[], dir.count() as f64);
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        out.header(
            "process_max_fds",
            "gauge",
            "Limit on open file descriptors.",
        );
        out.sample("process_max_fds", &[], limit.rlim_cur as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(q: &QueryCounters) -> Vec<u64> {
        q.by_rcode
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    #[test]
    fn pending_counts_reach_the_shared_ones_whole() {
        let (a, b) = (QueryCounters::default(), QueryCounters::default());
        let sizes = SizeHistogram::default();
        {
            let mut pending = PendingCounts::default();
            let mut pending_sizes = PendingSizes::new(&sizes);
            pending.record(&a, 0);
            pending.record(&a, 3);
            // Another zone: a's counts go to a first.
            pending.record(&b, 0);
            assert_eq!(counts(&a)[..4], [1, 0, 0, 1]);
            pending.record(&a, 0);
            pending.record(&a, 4095);
            for size in [60, 100, 70_000] {
                pending_sizes.record(size);
            }
            assert_eq!(sizes.sum.load(Ordering::Relaxed), 0, "not before the drop");
        }
        assert_eq!(counts(&a), [2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(counts(&b), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let buckets: Vec<u64> = sizes
            .buckets
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(buckets, [1, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sizes.over.load(Ordering::Relaxed), 1);
        assert_eq!(sizes.sum.load(Ordering::Relaxed), 70_160);
    }

    #[test]
    fn renders_prometheus_text() {
        let q = QueryCounters::default();
        q.record(0);
        q.record(3);
        q.record(200);
        let events = Events::default();
        events.udp_response_sizes.record(100);
        events.udp_response_sizes.record(2000);
        events.udp_response_sizes.record(70000);
        events.transfer("example.com.", "axfr", "success");
        events.notify(Some("example.com."), "refused");
        events.notify(None, "refused");
        events.notify(None, "refused");
        events.rrl.add(&crate::rrl::Counts {
            dropped: 5,
            slipped: 4,
            cookie_exempt: 3,
        });
        events.answer_cache.add(&crate::fast::cache::Stats {
            declined: 2,
            evicted: 1,
        });
        let text = render(
            &[ZoneSample {
                zone: "example.com.",
                queries: &q,
                serial: Some(7),
                expires_in: Some(3600),
                records: 12,
                last_contact: Some(1_700_000_000),
                served: true,
                signatures_expire: None,
                state: "fresh",
                disk_failures: 2,
                on_disk: false,
            }],
            &events,
        );
        assert!(text.contains("outpost_zone_persist_failures_total{zone=\"example.com.\"} 2\n"));
        assert!(text.contains("outpost_zone_persisted{zone=\"example.com.\"} 0\n"));
        assert!(
            text.contains("outpost_queries_total{zone=\"example.com.\",rcode=\"NOERROR\"} 1\n")
        );
        assert!(
            text.contains("outpost_queries_total{zone=\"example.com.\",rcode=\"NXDOMAIN\"} 1\n")
        );
        assert!(text.contains("outpost_queries_total{zone=\"example.com.\",rcode=\"OTHER\"} 1\n"));
        assert!(
            text.contains("outpost_response_size_bytes_bucket{protocol=\"udp\",le=\"128\"} 1\n")
        );
        assert!(
            text.contains("outpost_response_size_bytes_bucket{protocol=\"udp\",le=\"4096\"} 2\n")
        );
        assert!(
            text.contains("outpost_response_size_bytes_bucket{protocol=\"udp\",le=\"+Inf\"} 3\n")
        );
        assert!(text.contains("outpost_response_size_bytes_count{protocol=\"udp\"} 3\n"));
        assert!(text.contains("outpost_zone_expiry_seconds{zone=\"example.com.\"} 3600\n"));
        assert!(text.contains(
            "outpost_transfers_total{zone=\"example.com.\",kind=\"axfr\",result=\"success\"} 1\n"
        ));
        assert!(text.contains(
            "outpost_notify_received_total{zone=\"example.com.\",result=\"refused\"} 1\n"
        ));
        assert!(
            text.contains("outpost_notify_received_total{zone=\"_other\",result=\"refused\"} 2\n")
        );
        assert!(text.contains("# TYPE outpost_response_size_bytes histogram\n"));
        for line in [
            "outpost_rrl_limited_total{action=\"dropped\"} 5\n",
            "outpost_rrl_limited_total{action=\"slipped\"} 4\n",
            "outpost_rrl_cookie_exempt_total 3\n",
            "outpost_answer_cache_declined_total 2\n",
            "outpost_answer_cache_evicted_total 1\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
    }
}
