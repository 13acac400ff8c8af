//! Server assembly: config → zones → sockets → serve, until a signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, ServerConfig, ZoneConfig};
use crate::serve::Handler;
use crate::store::{Store, ZoneEntry, ZoneTable};
use crate::zone::{BuildLimits, Zone};
use crate::zonefile;

/// How long a TCP client may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);

pub fn init_logging(server: &ServerConfig) {
    // hickory logs every request at info; per-query logging stays at debug.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},hickory_server=warn", server.log_level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match server.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Plain => builder.try_init(),
    };
}

pub fn build_limits(zone: &ZoneConfig) -> BuildLimits {
    BuildLimits {
        max_records: zone.limits.max_records,
        max_rrset_records: zone.limits.max_rrset_records,
        max_types_per_name: zone.limits.max_types_per_name,
    }
}

/// Loads a zone from its seed file.
pub fn load_seed(zone: &ZoneConfig) -> anyhow::Result<Option<Zone>> {
    let Some(path) = &zone.seed_file else {
        return Ok(None);
    };
    let records = zonefile::parse_file(path, &zone.name)?;
    let built = Zone::build(&zone.name, records, &build_limits(zone))
        .with_context(|| format!("seed file {}", path.display()))?;
    Ok(Some(built))
}

/// Everything `check-config` reports: config errors, then each zone file's.
pub fn check(path: &std::path::Path) -> Vec<String> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return vec![e.to_string()],
    };
    config
        .zones
        .iter()
        .filter_map(|z| {
            load_seed(z)
                .err()
                .map(|e| format!("zone {}: {e:#}", z.name))
        })
        .collect()
}

pub fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.udp_workers.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let entries: Vec<Arc<ZoneEntry>> = config
        .zones
        .iter()
        .map(|z| Arc::new(ZoneEntry::new(z.name.clone())))
        .collect();
    for (zc, entry) in config.zones.iter().zip(&entries) {
        match load_seed(zc) {
            Ok(Some(zone)) => {
                info!(zone = %zc.name, serial = zone.serial(), records = zone.record_count(), "serving seed file");
                entry.swap(Arc::new(zone));
            }
            Ok(None) => warn!(zone = %zc.name, "no copy yet: SERVFAIL until the first transfer"),
            Err(e) => warn!(zone = %zc.name, "seed file not loaded: {e:#}"),
        }
    }
    let store = Arc::new(Store::new(ZoneTable::new(entries)));

    let mut server = Server::new(Handler::new(store.clone()));
    for addr in &config.server.listen {
        bind(&mut server, *addr).await?;
    }
    info!(listen = ?config.server.listen, "outpost serving");

    wait_for_shutdown().await;
    info!("shutting down");
    server
        .shutdown_gracefully()
        .await
        .context("shutting down")?;
    Ok(())
}

async fn bind(server: &mut Server<Handler>, addr: SocketAddr) -> anyhow::Result<()> {
    let udp = UdpSocket::bind(addr)
        .await
        .with_context(|| format!("binding UDP {addr}"))?;
    let tcp = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding TCP {addr}"))?;
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, 65535 + 2);
    Ok(())
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
