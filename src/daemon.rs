//! Server assembly: config → zones → sockets → serve, until a signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, ServerConfig};
use crate::persist;
use crate::refresh::{self, Refresher, ZoneRuntime, timers::UnixTime};
use crate::serve::Handler;
use crate::store::{Store, ZoneTable};

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

/// Everything `check-config` reports: config errors, then each zone file's.
pub fn check(path: &std::path::Path) -> Vec<String> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return vec![e.to_string()],
    };
    config
        .zones
        .iter()
        .filter_map(|z| refresh::load_seed(z).err().map(|e| e.to_string()))
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
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data_dir {}", data_dir.display()))?;
    // Temp files left by a crash mid-write are garbage: the files they were
    // to replace are intact.
    let stale = persist::cleanup_data_dir(&data_dir)
        .with_context(|| format!("cleaning {}", data_dir.display()))?;
    if stale > 0 {
        info!(stale, "removed temp files left by an interrupted write");
    }

    // Every zone is served from disk or its seed before any network traffic.
    let now = UnixTime::now();
    let runtimes: Vec<Arc<ZoneRuntime>> = {
        let zones = config.zones.clone();
        let dir = data_dir.clone();
        tokio::task::spawn_blocking(move || {
            zones
                .into_iter()
                .map(|z| Arc::new(ZoneRuntime::load(z, &dir, now)))
                .collect()
        })
        .await
        .context("loading zones")?
    };
    let store = Arc::new(Store::new(ZoneTable::new(
        runtimes.iter().map(|z| z.entry.clone()),
    )));

    let zones = runtimes.len();
    let (refresher, refresh_task) = Refresher::start(runtimes);
    let keys = config.keys.values().cloned().collect();
    let mut server = Server::new(Handler::with_secondary(store.clone(), refresher, keys));
    for addr in &config.server.listen {
        bind(&mut server, *addr).await?;
    }
    info!(listen = ?config.server.listen, zones, "outpost serving");

    wait_for_shutdown().await;
    info!("shutting down");
    // Transfers in flight are abandoned: nothing partial was ever written,
    // and every timer change is already on disk.
    refresh_task.abort();
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
