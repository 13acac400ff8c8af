//! The HTTP control endpoint: status, metrics, health, and operator verbs;
//! and the CLI's client for it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hickory_proto::rr::Name;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
        .route("/zones/{zone}/refresh", post(refresh))
        .route("/zones/{zone}/retransfer", post(retransfer))
        .route("/reload", post(reload))
        .with_state(daemon);
    tokio::spawn(async move {
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = server.await {
            warn!("control endpoint stopped: {e}");
        }
    });
    Ok(bound)
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
        })
        .collect();
    let text = metrics::render(&samples, d.events());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn health(State(d): State<Arc<Daemon>>) -> Response {
    let down: Vec<String> = d
        .refresher()
        .status()
        .into_iter()
        .filter(|s| !s.served || s.serial.is_none())
        .map(|s| {
            if s.serial.is_none() {
                format!("{}: no copy yet", s.zone)
            } else {
                format!("{}: expired", s.zone)
            }
        })
        .collect();
    if down.is_empty() {
        (StatusCode::OK, "ok: every zone is serving\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not serving: {}\n", down.join("; ")),
        )
            .into_response()
    }
}

fn zone_name(zone: &str) -> Result<Name, String> {
    Name::from_str(zone)
        .map(|mut n| {
            n.set_fqdn(true);
            n.to_lowercase()
        })
        .map_err(|e| format!("bad zone name {zone:?}: {e}\n"))
}

async fn refresh(
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
    if d.refresher().zone(&name).is_none() {
        return (StatusCode::NOT_FOUND, format!("no zone {name}\n")).into_response();
    }
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
