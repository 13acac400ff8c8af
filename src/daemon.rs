//! Server assembly: config → zones → sockets → serve, until a signal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_proto::rr::Name;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::catalog::{self, Catalog};
use crate::config::{Config, LogFormat, ServerConfig, ZoneConfig, ZoneRole};
use crate::control;
use crate::cookie::Cookies;
use crate::metrics::Events;
use crate::persist;
use crate::refresh::CatalogReport;
use crate::refresh::{self, Refresher, ZoneRuntime, timers::UnixTime};
use crate::serve::{Handler, QueryOptions};
use crate::store::{Store, ZoneTable};
use crate::{tcp, udp};

/// Sets the log filter of the running process (a reload's `log_level`).
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;
static LOG_FILTER: std::sync::OnceLock<SetFilter> = std::sync::OnceLock::new();

fn log_filter(level: &str) -> EnvFilter {
    // hickory logs every request at info; per-query logging stays at debug.
    EnvFilter::new(format!("{level},hickory_server=warn"))
}

pub fn init_logging(server: &ServerConfig) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let env_set = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| log_filter(&server.log_level));
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr a file on a full disk,
        // or past the file size limit) is dropped. With this left on,
        // tracing-subscriber reports the failure with `eprintln!`, which
        // panics when stderr fails too: the task that logged dies, e.g. a
        // refresh between putting a copy in service and writing it to disk.
        .log_internal_errors(false);
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder.with_env_filter(filter).with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() && !env_set {
                // RUST_LOG, when set, wins over the configuration, reloads
                // included.
                let set: SetFilter = Box::new(move |f| handle.reload(f).map_err(|e| e.to_string()));
                let _ = LOG_FILTER.set(set);
            }
        }};
    }
    match server.log_format {
        // Fields (zone, primary, serial, ...) beside the message at the top
        // level, where log tools look for them.
        LogFormat::Json => install!(builder.json().flatten_event(true)),
        LogFormat::Plain => install!(builder),
    }
}

/// Applies a new `log_level` to the running process.
fn set_log_level(level: &str) -> Result<(), String> {
    match LOG_FILTER.get() {
        Some(set) => set(log_filter(level)),
        None => Err("RUST_LOG is set, and it wins over log_level".into()),
    }
}

/// The settings a reload cannot apply, by key path, that differ between
/// `old` and `new`.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.server, &new.server);
    let mut v = Vec::new();
    let mut check = |changed: bool, key: &'static str| {
        if changed {
            v.push(key);
        }
    };
    check(o.listen != n.listen, "server.listen");
    check(o.data_dir != n.data_dir, "server.data_dir");
    check(o.control != n.control, "server.control");
    check(o.control_token != n.control_token, "server.control_token");
    check(o.log_format != n.log_format, "server.log_format");
    check(o.udp_workers != n.udp_workers, "server.udp_workers");
    check(o.tcp != n.tcp, "server.tcp_*");
    check(o.control_limits != n.control_limits, "server.control_*");
    check(o.refresh != n.refresh, "server.max_refresh_checks*");
    check(old.identity != new.identity, "identity");
    check(old.rrl != new.rrl, "rrl");
    check(old.cookies != new.cookies, "cookies");
    check(old.cache != new.cache, "cache");
    v
}

/// Everything `check-config` reports: config errors, then each zone file's,
/// then what only this host can tell (addresses free and allowed, data_dir
/// writable).
pub fn check(path: &std::path::Path) -> Vec<String> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems: Vec<String> = config
        .zones
        .iter()
        .filter_map(|z| refresh::load_seed(z).err().map(|e| e.to_string()))
        .collect();
    let file = path.display();
    problems.extend(
        crate::hostcheck::check(&config)
            .into_iter()
            .map(|p| format!("{file}: {p}")),
    );
    problems
}

pub fn run(config: Config) -> anyhow::Result<()> {
    raise_open_file_limit(&config.server);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.udp_workers.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config))
}

/// The running server's shared parts, for reloads and the control endpoint.
pub struct Daemon {
    config_path: PathBuf,
    config: tokio::sync::Mutex<Config>,
    store: Arc<Store>,
    refresher: Arc<Refresher>,
    events: Arc<Events>,
    control_token: Option<String>,
    /// For what a reload changes in how requests are verified.
    handler: Handler,
    catalogs: std::sync::Mutex<CatalogState>,
}

/// What catalog membership remembers between two workings-out.
#[derive(Debug, Default)]
struct CatalogState {
    /// Member zone → the catalog that owns it.
    owners: HashMap<Name, Name>,
    /// What each catalog listed when it was last readable.
    last_read: HashMap<Name, Catalog>,
    /// Members no longer listed, whose files go when the grace is over.
    removed: catalog::RemovedMembers,
}

/// The zones a set of changes added, removed and reconfigured.
#[derive(Debug, Default)]
pub struct ZoneChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl ZoneChanges {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl std::fmt::Display for ZoneChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Thousands of catalog members make one line unreadable: names up
        // to a few, then a count.
        fn list(names: &[String]) -> String {
            const SHOWN: usize = 20;
            let mut s = names
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            if names.len() > SHOWN {
                s.push_str(&format!(" and {} more", names.len() - SHOWN));
            }
            s
        }
        write!(
            f,
            "{} added [{}], {} removed [{}], {} changed [{}]",
            self.added.len(),
            list(&self.added),
            self.removed.len(),
            list(&self.removed),
            self.changed.len(),
            list(&self.changed)
        )
    }
}

impl Daemon {
    pub fn refresher(&self) -> &Arc<Refresher> {
        &self.refresher
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    pub fn control_token(&self) -> Option<&str> {
        self.control_token.as_deref()
    }

    /// Re-reads the configuration. Zones added start their transfers, zones
    /// removed stop being served, changed zones keep their data and clock;
    /// the zone table is swapped in one step, so no query goes unanswered.
    /// A bad configuration is refused and the old one stays.
    /// `by` says who asked ("SIGHUP", "control endpoint"); every outcome
    /// is logged here, whoever asked.
    pub async fn reload(&self, by: &str) -> Result<String, String> {
        let result = self.reload_config().await;
        match &result {
            Ok(report) => info!(requested_by = by, "{report}"),
            // One line: a config error lists one problem per line.
            Err(e) => error!(
                requested_by = by,
                config = %self.config_path.display(),
                "reload refused, the old configuration stays: {}",
                e.replace('\n', "; ")
            ),
        }
        result
    }

    /// Makes the zones served those of `config` and of what its catalogs
    /// list: new zones are loaded (from disk when they have files there),
    /// changed ones keep their data and clock, and the zone table is
    /// swapped in one step. The caller holds the configuration lock, so
    /// this never runs twice at once.
    async fn apply_zones(&self, config: &Config) -> Result<ZoneChanges, String> {
        let now = UnixTime::now();
        let data_dir = config.server.data_dir.clone();
        let current: HashMap<Name, Arc<ZoneRuntime>> = self
            .refresher
            .zones()
            .into_iter()
            .map(|z| (z.name().clone(), z))
            .collect();
        let mut changes = ZoneChanges::default();
        let mut runtimes = self
            .place(config.zones.clone(), &current, &data_dir, now, &mut changes)
            .await?;

        let (members, reports) = {
            let mut cat = self.catalogs.lock().unwrap_or_else(|p| p.into_inner());
            let mut read: Vec<Option<Catalog>> = Vec::with_capacity(config.catalogs.len());
            let mut unreadable: HashMap<Name, String> = HashMap::new();
            for c in &config.catalogs {
                let copy = runtimes
                    .iter()
                    .find(|r| r.name() == &c.name)
                    .and_then(|r| r.entry.snapshot());
                let listed = match copy.map(|z| Catalog::read(&z)) {
                    Some(Ok(listed)) => {
                        cat.last_read.insert(c.name.clone(), listed.clone());
                        Some(listed)
                    }
                    Some(Err(e)) => {
                        error!(catalog = %c.name, "{e}; its previous membership stays");
                        unreadable.insert(c.name.clone(), e.to_string());
                        cat.last_read.get(&c.name).cloned()
                    }
                    None => cat.last_read.get(&c.name).cloned(),
                };
                read.push(listed);
            }
            let configured: BTreeSet<Name> = config.zones.iter().map(|z| z.name.clone()).collect();
            let pairs: Vec<_> = config
                .catalogs
                .iter()
                .zip(read.iter())
                .map(|(c, l)| (c, l.as_ref()))
                .collect();
            let resolution = catalog::resolve(&configured, &pairs, &cat.owners);
            cat.owners = resolution
                .members
                .iter()
                .filter_map(|m| match &m.role {
                    ZoneRole::Member(c) => Some((m.name.clone(), c.clone())),
                    _ => None,
                })
                .collect();
            let reports: HashMap<Name, CatalogReport> = config
                .catalogs
                .iter()
                .map(|c| {
                    let mut problems: Vec<String> =
                        unreadable.get(&c.name).cloned().into_iter().collect();
                    problems.extend(
                        resolution
                            .problems
                            .get(&c.name)
                            .cloned()
                            .unwrap_or_default(),
                    );
                    let members = resolution
                        .members
                        .iter()
                        .filter(|m| m.role == ZoneRole::Member(c.name.clone()))
                        .count();
                    (c.name.clone(), CatalogReport { members, problems })
                })
                .collect();
            (resolution.members, reports)
        };
        runtimes.extend(
            self.place(members, &current, &data_dir, now, &mut changes)
                .await?,
        );
        for rt in &runtimes {
            if let Some(r) = reports.get(rt.name()) {
                // Logged once, when a problem first appears.
                let old = rt.status(now).catalog_problems;
                for p in &r.problems {
                    if !old.contains(p) {
                        warn!(catalog = %rt.name(), "{p}");
                    }
                }
                rt.set_catalog_report(r.clone());
            }
        }

        let wanted: HashSet<&Name> = runtimes.iter().map(|r| r.name()).collect();
        let removed: Vec<&Arc<ZoneRuntime>> = current
            .values()
            .filter(|r| !wanted.contains(r.name()))
            .collect();
        self.store
            .replace_table(ZoneTable::new(runtimes.iter().map(|z| z.entry.clone())));
        for rt in &removed {
            rt.retire();
            self.refresher.remove(rt.name());
            changes.removed.push(rt.name().to_string());
            if let ZoneRole::Member(c) = &rt.config.role {
                info!(zone = %rt.name(), catalog = %c, "no longer listed by its catalog: not served; its files are kept for member_removal_grace");
            }
        }
        let fresh: HashSet<String> = changes
            .added
            .iter()
            .chain(&changes.changed)
            .cloned()
            .collect();
        for rt in &runtimes {
            if fresh.contains(&rt.name().to_string()) {
                self.refresher.add(rt.clone());
            }
        }
        // Members dropped wait out their grace; members back are no longer
        // waiting.
        let grace_of = |catalog: &Name| {
            config
                .catalogs
                .iter()
                .find(|c| &c.name == catalog)
                .map_or(crate::config::DEFAULT_MEMBER_REMOVAL_GRACE, |c| {
                    c.member_removal_grace
                })
        };
        let mut cat = self.catalogs.lock().unwrap_or_else(|p| p.into_inner());
        let mut dirty = false;
        for rt in &removed {
            if let ZoneRole::Member(c) = &rt.config.role {
                let until = now.0.saturating_add(grace_of(c).as_secs());
                dirty |= cat.removed.insert(rt.name(), until);
            }
        }
        for name in wanted {
            dirty |= cat.removed.forget(name);
        }
        if dirty && let Err(e) = cat.removed.save(&data_dir) {
            error!("{e}");
        }
        Ok(changes)
    }

    /// Runtimes for `zones`: the running one when unchanged, reconfigured
    /// when changed, loaded when new.
    async fn place(
        &self,
        zones: Vec<Arc<ZoneConfig>>,
        current: &HashMap<Name, Arc<ZoneRuntime>>,
        data_dir: &std::path::Path,
        now: UnixTime,
        changes: &mut ZoneChanges,
    ) -> Result<Vec<Arc<ZoneRuntime>>, String> {
        let mut runtimes = Vec::with_capacity(zones.len());
        let mut to_load = Vec::new();
        for zc in zones {
            match current.get(&zc.name) {
                Some(rt) if rt.config == zc => runtimes.push(rt.clone()),
                Some(rt) => {
                    changes.changed.push(zc.name.to_string());
                    runtimes.push(Arc::new(rt.reconfigure(zc, now)));
                }
                None => {
                    changes.added.push(zc.name.to_string());
                    to_load.push(zc);
                }
            }
        }
        if !to_load.is_empty() {
            let dir = data_dir.to_path_buf();
            let loaded = tokio::task::spawn_blocking(move || {
                to_load
                    .into_iter()
                    .map(|zc| Arc::new(ZoneRuntime::load(zc, &dir, now)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| format!("loading new zones: {e}"))?;
            let empty: Vec<&Name> = loaded
                .iter()
                .filter(|rt| rt.entry.snapshot().is_none())
                .map(|rt| rt.name())
                .collect();
            if let Some(first) = empty.first() {
                warn!(zones = empty.len(), first = %first,
                      "no copy on disk and no seed file: SERVFAIL until the first transfer");
            }
            runtimes.extend(loaded);
        }
        Ok(runtimes)
    }

    /// Works membership out again after a catalog zone's copy changed.
    async fn catalogs_changed(&self) {
        let config = self.config.lock().await;
        if config.catalogs.is_empty() {
            return;
        }
        match self.apply_zones(&config).await {
            Ok(changes) if changes.is_empty() => {}
            Ok(changes) => info!("catalog membership applied: {changes}"),
            Err(e) => error!("catalog membership not applied: {e}"),
        }
    }

    /// Deletes the files of members whose grace is over (and that no
    /// catalog or `[[zone]]` has taken back since).
    async fn purge_removed_members(&self) {
        let nothing_due = {
            let cat = self.catalogs.lock().unwrap_or_else(|p| p.into_inner());
            cat.removed.due(UnixTime::now().0).is_empty()
        };
        if nothing_due {
            return;
        }
        let config = self.config.lock().await;
        let now = UnixTime::now();
        let data_dir = config.server.data_dir.clone();
        let mut cat = self.catalogs.lock().unwrap_or_else(|p| p.into_inner());
        let due = cat.removed.due(now.0);
        if due.is_empty() {
            return;
        }
        for name in &due {
            if self.refresher.zone(name).is_some() {
                cat.removed.forget(name);
                continue;
            }
            let paths = persist::ZonePaths::new(&data_dir, name);
            for file in [&paths.zone_file, &paths.state_file, &paths.journal_file] {
                match std::fs::remove_file(file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        error!(zone = %name, file = %file.display(), "cannot delete a removed member's file: {e}")
                    }
                }
            }
            info!(zone = %name, "files of a zone no catalog lists any more deleted (member_removal_grace over)");
            cat.removed.forget(name);
        }
        if let Err(e) = cat.removed.save(&data_dir) {
            error!("{e}");
        }
    }

    async fn reload_config(&self) -> Result<String, String> {
        let mut current = self.config.lock().await;
        let new = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        let pending = restart_only_changes(&current, &new);
        if !pending.is_empty() {
            warn!(
                settings = %pending.join(" "),
                "these changes take effect at the next restart"
            );
        }
        // What verifies and signs: server-side TSIG keys now; the zones'
        // own keys (SOA queries, transfers in, NOTIFY out) come with their
        // reconfigured runtimes below.
        self.handler.set_keys(new.keys.values().cloned().collect());
        if new.server.log_level != current.server.log_level {
            match set_log_level(&new.server.log_level) {
                Ok(()) => info!(log_level = %new.server.log_level, "log level changed"),
                Err(e) => warn!("log level not changed: {e}"),
            }
        }
        let changes = self.apply_zones(&new).await?;
        *current = new;
        let mut report = format!("configuration reloaded: {changes}");
        if !pending.is_empty() {
            report.push_str(&format!(
                "; not applied until restart: {}",
                pending.join(" ")
            ));
        }
        Ok(report)
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.source.display(),
        "outpost starting"
    );
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data_dir {}", data_dir.display()))?;
    // Two servers on one data_dir would overwrite each other's files.
    let _lock = crate::hostcheck::DataDirLock::take(&data_dir)?;
    // Temp files left by a crash mid-write are garbage: the files they were
    // to replace are intact.
    let stale = persist::cleanup_data_dir(&data_dir)
        .with_context(|| format!("cleaning {}", data_dir.display()))?;
    if stale > 0 {
        info!(stale, "removed temp files left by an interrupted write");
    }

    // Every zone, catalog members included, is served from disk or its
    // seed before any network traffic.
    let store = Arc::new(Store::new(ZoneTable::default()));
    let events = Arc::new(Events::default());
    let (refresher, refresh_task) =
        Refresher::start(Vec::new(), events.clone(), config.server.refresh);
    let keys = config.keys.values().cloned().collect();
    let handler = Handler::with_secondary(store.clone(), events.clone(), refresher.clone(), keys)
        .with_max_transfers_out(config.server.tcp.max_transfers_out)
        .with_options(QueryOptions {
            cookies: Cookies::new(&config.cookies),
            identity: config.identity.clone(),
        });
    let removed = catalog::RemovedMembers::load(&data_dir).unwrap_or_else(|e| {
        error!("{e}; starting with none waiting for deletion");
        Default::default()
    });
    let daemon = Arc::new(Daemon {
        config_path: config.source.clone(),
        control_token: config.server.control_token.clone(),
        config: tokio::sync::Mutex::new(config.clone()),
        store: store.clone(),
        refresher: refresher.clone(),
        events: events.clone(),
        handler: handler.clone(),
        catalogs: std::sync::Mutex::new(CatalogState {
            removed,
            ..Default::default()
        }),
    });
    {
        let config = daemon.config.lock().await;
        daemon
            .apply_zones(&config)
            .await
            .map_err(|e| anyhow::anyhow!("loading zones: {e}"))?;
    }
    let zones = refresher.zones().len();
    // One answer cache per UDP socket and per runtime thread serving TCP,
    // sharing the one budget.
    let tcp_threads = config.server.udp_workers.max(1);
    let caches =
        (config.server.udp_workers.max(1) * config.server.listen.len()).max(1) + tcp_threads;
    let cache_per_worker = config.cache.size / caches as u64;
    let worker_settings = udp::WorkerSettings {
        cache_per_worker,
        rrl: config.rrl.clone(),
    };
    let udp_shutdown = CancellationToken::new();
    let tcp_shutdown = CancellationToken::new();
    // TCP first: once a UDP answer comes back, TCP must be there too (a
    // client told TC=1 retries over TCP at once).
    // Port 0 is resolved by the TCP bind; UDP then takes the same port.
    let mut bound = Vec::with_capacity(config.server.listen.len());
    let mut listeners = Vec::new();
    for addr in &config.server.listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding TCP {addr}"))?;
        bound.push(
            listener
                .local_addr()
                .with_context(|| format!("binding TCP {addr}"))?,
        );
        listeners.push(listener);
    }
    tcp::spawn(
        listeners,
        handler.clone(),
        events.clone(),
        config.server.tcp,
        cache_per_worker,
        tcp_shutdown.clone(),
    );
    for addr in &bound {
        udp::spawn(
            *addr,
            config.server.udp_workers,
            handler.clone(),
            events.clone(),
            &worker_settings,
            udp_shutdown.clone(),
        )?;
    }
    let listen: Vec<String> = bound.iter().map(ToString::to_string).collect();

    let shutdown = CancellationToken::new();
    spawn_catalog_tasks(&daemon, &shutdown);
    // Warnings limited by ratelog report what they suppressed when their
    // second is over, even if no warning of the kind follows.
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while tokio::select! {
                _ = tick.tick() => true,
                _ = shutdown.cancelled() => false,
            } {
                crate::ratelog::flush();
            }
        });
    }
    let control = match config.server.control {
        Some(addr) => Some(
            control::serve(
                addr,
                config.server.control_limits,
                daemon.clone(),
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.source.display(),
        listen = %listen.join(" "),
        control = control.map(tracing::field::display),
        zones,
        "outpost serving"
    );

    run_signals(&daemon).await;
    info!("shutting down");
    shutdown.cancel();
    udp_shutdown.cancel();
    // Transfers in flight are abandoned: nothing partial was ever written,
    // and every timer change is already on disk.
    refresh_task.abort();
    tcp_shutdown.cancel();
    info!("stopped");
    Ok(())
}

/// Catalog membership follows each change of a catalog zone's copy, and
/// the files of members dropped are deleted once their grace is over.
fn spawn_catalog_tasks(daemon: &Arc<Daemon>, shutdown: &CancellationToken) {
    let changed = daemon.refresher.catalog_changed();
    let (d, stop) = (daemon.clone(), shutdown.clone());
    tokio::spawn(async move {
        while tokio::select! {
            _ = changed.notified() => true,
            _ = stop.cancelled() => false,
        } {
            d.catalogs_changed().await;
        }
    });
    let (d, stop) = (daemon.clone(), shutdown.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        while tokio::select! {
            _ = tick.tick() => true,
            _ = stop.cancelled() => false,
        } {
            d.purge_removed_members().await;
        }
    });
}

/// Raises the soft limit on open files to the hard one: every DNS-over-TCP
/// connection, transfer and control request takes a descriptor, and the
/// caps in the configuration, not a default of 1024, are meant to bound
/// them. Warns when the caps cannot fit under the limit.
fn raise_open_file_limit(server: &ServerConfig) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a valid resource and a pointer
    // to an rlimit of ours.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    // Sockets, zone files, the runtime's own descriptors: some room for
    // what is not a connection.
    let wanted = (server.tcp.max_connections
        + server.tcp.max_transfers_out
        + server.control_limits.max_connections
        + 64) as u64;
    if soft < wanted {
        warn!(
            open_file_limit = soft,
            tcp_max_connections = server.tcp.max_connections,
            "the open-file limit is below what the connection caps allow: new TCP clients \
             will wait for a descriptor once it is reached (raise LimitNOFILE / ulimit -n, \
             or lower tcp_max_connections)"
        );
    }
}

/// Handles signals until one asks to stop: SIGHUP reloads the
/// configuration, SIGTERM and SIGINT stop.
async fn run_signals(daemon: &Daemon) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                // Logged by reload, refused or not.
                let _ = daemon.reload("SIGHUP").await;
            }
        }
    }
}
