//! The HTTP control endpoint: status, metrics, health, and operator verbs;
//! and the CLI's client for it.
//!
//! Connections are served with hyper directly rather than `axum::serve`,
//! which sets no timeout: a client must send its request headers within
//! `control_header_timeout`, a connection that moves no byte for
//! `control_idle_timeout` is closed, and at `control_max_connections` the
//! oldest connection is closed to make room for a new one, so a flood of
//! half-open requests cannot lock the operator out.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hickory_proto::rr::Name;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::ControlLimits;
use crate::daemon::Daemon;
use crate::metrics::{self, ZoneSample};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot listen for control requests on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(
        "cannot reach the control endpoint at {addr}: {error} (is outpost running with `control = \"{addr}\"`?)"
    )]
    Connect {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("control endpoint at {addr}: {error}")]
    Exchange {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("control endpoint at {addr} answered {status}: {body}")]
    Status {
        addr: SocketAddr,
        status: u16,
        body: String,
    },
    #[error("control endpoint at {addr} sent a malformed reply")]
    Malformed { addr: SocketAddr },
}

/// Serves the control endpoint until `shutdown` fires; returns the address
/// bound (port 0 resolved).
pub async fn serve(
    addr: SocketAddr,
    limits: ControlLimits,
    daemon: Arc<Daemon>,
    shutdown: CancellationToken,
) -> Result<SocketAddr, ControlError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| ControlError::Bind { addr, error })?;
    let bound = listener
        .local_addr()
        .map_err(|error| ControlError::Bind { addr, error })?;
    info!(addr = %bound, "control endpoint listening");
    let app = Router::new()
        .route("/", get(status_page))
        .route("/status", get(status))
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .route("/zones/{zone}", get(zone_status))
        .route("/zones/{zone}/notify", post(notify_now))
        .route("/zones/{zone}/refresh", post(refresh))
        .route("/zones/{zone}/retransfer", post(retransfer))
        .route("/reload", post(reload))
        .with_state(daemon);
    tokio::spawn(accept_loop(listener, app, limits, shutdown));
    Ok(bound)
}

/// The control endpoint's open connections, oldest first.
#[derive(Default)]
struct Connections {
    next: u64,
    open: BTreeMap<u64, CancellationToken>,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ControlLimits,
    shutdown: CancellationToken,
) {
    let conns = Arc::new(Mutex::new(Connections::default()));
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) => {
                // As on the DNS listeners: never retry at once.
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                // ratelog: fails as long as the open-file limit is reached.
                warn!(error = %e, pause_ms = backoff.as_millis() as u64,
                      "control endpoint: accept failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        let cancel = shutdown.child_token();
        let id = {
            let mut c = conns.lock().unwrap_or_else(|p| p.into_inner());
            while c.open.len() >= limits.max_connections {
                let Some((_, oldest)) = c.open.pop_first() else {
                    break;
                };
                oldest.cancel();
            }
            let id = c.next;
            c.next += 1;
            c.open.insert(id, cancel.clone());
            id
        };
        let conns = conns.clone();
        let app = app.clone();
        tokio::spawn(async move {
            serve_connection(stream, app, limits, cancel).await;
            debug!(%peer, "control connection closed");
            conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .open
                .remove(&id);
        });
    }
}

/// One connection, until it ends, times out or is closed for another.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: ControlLimits,
    cancel: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = hyper_util::rt::TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = hyper_util::service::TowerToHyperService::new(app);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service);
    tokio::select! {
        r = connection => {
            if let Err(e) = r {
                debug!("control connection: {e}");
            }
        }
        () = activity.idle_for(limits.idle_timeout) => {
            debug!("control connection idle for {:?}: closed", limits.idle_timeout);
        }
        () = cancel.cancelled() => {}
    }
}

/// When a connection last moved a byte.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Returns once no byte has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// A stream that notes every byte read or written in its [`Activity`].
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Checks the bearer token when one is configured.
fn authorized(daemon: &Daemon, headers: &HeaderMap) -> bool {
    let Some(token) = daemon.control_token() else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time compare: the token is a secret.
    given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong bearer token\n",
    )
        .into_response()
}

/// The status page: static HTML whose script reads `/status` (with the
/// bearer token the operator types in, when one is configured), so the page
/// itself holds no data and needs no token.
async fn status_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        STATUS_PAGE,
    )
        .into_response()
}

const STATUS_PAGE: &str = include_str!("status.html");

async fn status(State(d): State<Arc<Daemon>>, headers: HeaderMap) -> Response {
    if !authorized(&d, &headers) {
        return unauthorized();
    }
    // `now` lets a reader (the status page) show ages by the server's clock.
    let body = serde_json::json!({
        "now": crate::refresh::timers::UnixTime::now().0,
        "zones": d.refresher().status(),
    });
    axum::Json(body).into_response()
}

async fn metrics_text(State(d): State<Arc<Daemon>>, headers: HeaderMap) -> Response {
    if !authorized(&d, &headers) {
        return unauthorized();
    }
    let zones = d.refresher().zones();
    let statuses: Vec<_> = zones
        .iter()
        .map(|z| (z.clone(), z.status(crate::refresh::timers::UnixTime::now())))
        .collect();
    let samples: Vec<ZoneSample<'_>> = statuses
        .iter()
        .map(|(z, s)| ZoneSample {
            zone: &s.zone,
            queries: &z.entry.counters,
            serial: s.serial,
            expires_in: s.expires_in,
            records: s.records,
            last_contact: s.last_contact,
            served: s.served,
            signatures_expire: s.signatures_expire_at,
            state: s.state,
            disk_failures: s.disk_failures,
            on_disk: s.disk_error.is_none(),
        })
        .collect();
    let text = metrics::render(&samples, d.events());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// 200 when every zone is served from a sound copy that is also on disk;
/// 503 with every reason otherwise. A copy in service but not on disk (a
/// failed write, retried with backoff) is a 503 too: the server answers,
/// but a crash now would bring back an older copy, and an operator must
/// free the disk.
async fn health(State(d): State<Arc<Daemon>>) -> Response {
    let mut problems = Vec::new();
    for s in d.refresher().status() {
        if s.serial.is_none() {
            problems.push(format!("{}: no copy yet", s.zone));
        } else if !s.served {
            problems.push(format!("{}: not serving ({})", s.zone, s.state));
        }
        if let Some(e) = &s.disk_error {
            problems.push(format!("{}: copy in service not on disk: {e}", s.zone));
        }
        if let Some(p) = &s.copy_problem {
            problems.push(format!("{}: {p}", s.zone));
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ok: every zone is serving\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("degraded: {}\n", problems.join("; ")),
        )
            .into_response()
    }
}

/// The zone a `/zones/ZONE/...` request names, once the request is
/// authorized: the answer to send instead when it is not, when the name is
/// malformed, or when no such zone is served.
// The Err is the response itself, sent at once: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn requested_zone(
    d: &Daemon,
    headers: &HeaderMap,
    zone: &str,
) -> Result<Arc<crate::refresh::ZoneRuntime>, Response> {
    if !authorized(d, headers) {
        return Err(unauthorized());
    }
    let name = zone_name(zone).map_err(|e| (StatusCode::BAD_REQUEST, e).into_response())?;
    d.refresher()
        .zone(&name)
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no zone {name}\n")).into_response())
}

fn zone_name(zone: &str) -> Result<Name, String> {
    Name::from_str(zone)
        .map(|mut n| {
            n.set_fqdn(true);
            n.to_lowercase()
        })
        .map_err(|e| format!("bad zone name {zone:?}: {e}\n"))
}

/// One zone's status, as in `/status`.
async fn zone_status(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(zone): Path<String>,
) -> Response {
    match requested_zone(&d, &headers, &zone) {
        Ok(z) => axum::Json(z.status(crate::refresh::timers::UnixTime::now())).into_response(),
        Err(r) => r,
    }
}

/// Sends NOTIFY for the copy in service to the zone's `notify` targets now
/// and answers when each has answered or given up: one line per target.
async fn notify_now(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(zone): Path<String>,
) -> Response {
    let z = match requested_zone(&d, &headers, &zone) {
        Ok(z) => z,
        Err(r) => return r,
    };
    let name = z.name().clone();
    if z.config.notify.is_empty() {
        return (
            StatusCode::CONFLICT,
            format!("{name} has no notify targets (set `notify` for it)\n"),
        )
            .into_response();
    }
    let Some(copy) = z.entry.snapshot() else {
        return (
            StatusCode::CONFLICT,
            format!("{name} has no copy yet: nothing to notify about\n"),
        )
            .into_response();
    };
    info!(zone = %name, serial = copy.serial(), "NOTIFY requested by the operator");
    let results = crate::notify::notify_all(&z.config, copy.soa()).await;
    let mut body = String::new();
    let mut failed = false;
    for (target, r) in results {
        match r {
            Ok(tries) => body.push_str(&format!(
                "{target}: answered (serial {}, {tries} {})\n",
                copy.serial(),
                if tries == 1 { "try" } else { "tries" }
            )),
            Err(e) => {
                failed = true;
                warn!(zone = %name, %target, "{e}");
                body.push_str(&format!("{target}: {e}\n"));
            }
        }
    }
    let code = if failed {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    (code, body).into_response()
}

async fn refresh(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(zone): Path<String>,
) -> Response {
    let name = match requested_zone(&d, &headers, &zone) {
        Ok(z) => z.name().clone(),
        Err(r) => return r,
    };
    d.refresher().check_now(&name, None);
    info!(zone = %name, "SOA check requested by the operator");
    (StatusCode::ACCEPTED, format!("refresh of {name} started\n")).into_response()
}

async fn retransfer(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(zone): Path<String>,
) -> Response {
    if !authorized(&d, &headers) {
        return unauthorized();
    }
    let name = match zone_name(&zone) {
        Ok(n) => n,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    if !d.refresher().retransfer(&name) {
        return (StatusCode::NOT_FOUND, format!("no zone {name}\n")).into_response();
    }
    info!(zone = %name, "full transfer requested by the operator");
    (
        StatusCode::ACCEPTED,
        format!("retransfer of {name} started\n"),
    )
        .into_response()
}

async fn reload(State(d): State<Arc<Daemon>>, headers: HeaderMap) -> Response {
    if !authorized(&d, &headers) {
        return unauthorized();
    }
    match d.reload("control endpoint").await {
        Ok(report) => (StatusCode::OK, format!("{report}\n")).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("reload refused, the old configuration stays: {e}\n"),
        )
            .into_response(),
    }
}

/// A minimal HTTP/1.1 client for the CLI: one request, `Connection: close`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Result<String, ControlError> {
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|error| ControlError::Connect { addr, error })?;
    let io = |error| ControlError::Exchange { addr, error };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(ControlError::Malformed { addr })?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ControlError::Malformed { addr })?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(ControlError::Status {
            addr,
            status,
            body: body.trim().to_string(),
        })
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
