//! Outpost's own DNS-over-TCP path (RFC 7766) in front of the handler.
//!
//! hickory-server's TCP loop answered one request at a time per
//! connection, had no cap on connections, queued every message of a
//! transfer without asking whether the client read them (an AXFR to a
//! stalled reader buffered the whole zone), and retried a failing `accept`
//! at once, which at the open-file limit spun a core. This path:
//!
//! - answers plain queries with the fast path's parser, encoder and answer
//!   cache, as UDP does, all the queries of one read in one go, and gives
//!   the rest to the handler on tasks of their own, so answers may leave
//!   in another order than their queries came (RFC 7766 §6.2.1.1);
//! - caps connections, over all listen addresses and per client address;
//!   at a cap the oldest idle connection is closed to make room, and only
//!   when none is idle is the new one refused;
//! - closes a connection idle for `tcp_idle_timeout`, or for the shorter
//!   `tcp_busy_idle_timeout` once more than half the cap is in use
//!   (RFC 7766 §6.2.3), and says which in an EDNS TCP keepalive option
//!   when the client sends one (RFC 7828);
//! - writes with back-pressure: a transfer's next message is made only once
//!   the socket has taken the last, and a client that takes nothing for
//!   `tcp_write_timeout` is cut;
//! - at the open-file limit backs off, up to a second, and logs, instead of
//!   retrying at once; the connections already open are served meanwhile.

mod conn;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::TcpLimits;
use crate::metrics::Events;
use crate::serve::Handler;

pub use conn::{Closed, Sink};

/// Starts serving each listener until `shutdown` fires; returns the
/// connection table they share.
pub fn spawn(
    listeners: Vec<TcpListener>,
    handler: Handler,
    events: Arc<Events>,
    limits: TcpLimits,
    cache_budget: u64,
    shutdown: CancellationToken,
) -> Arc<Registry> {
    let registry = Arc::new(Registry::new(limits, events.clone()));
    let ctx = Arc::new(conn::Ctx {
        handler,
        events,
        registry: registry.clone(),
        limits,
        cache_budget,
        slow_only: std::env::var_os(crate::udp::SLOW_PATH_ENV).is_some(),
    });
    for listener in listeners {
        tokio::spawn(accept_loop(listener, ctx.clone(), shutdown.clone()));
    }
    registry
}

/// The longest pause after a failed `accept`.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(10);

async fn accept_loop(listener: TcpListener, ctx: Arc<conn::Ctx>, shutdown: CancellationToken) {
    let local = listener.local_addr().ok();
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                admit(stream, peer, &ctx, &shutdown);
            }
            Err(e) => {
                ctx.events.tcp.accept_errors.fetch_add(1, Ordering::Relaxed);
                // Whatever the error, the next attempt waits: an error that
                // persists (EMFILE until a connection closes) must not turn
                // the loop into a busy one.
                backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                if is_resource_shortage(&e) {
                    // ratelog: one line per failed accept, at most a few a
                    // second thanks to the backoff.
                    warn!(listen = ?local, error = %e, open = ctx.registry.open(),
                          pause_ms = backoff.as_millis() as u64,
                          "TCP accept failed: out of file descriptors or memory; new clients wait");
                } else {
                    debug!(listen = ?local, error = %e, "TCP accept failed");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }
}

fn is_resource_shortage(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn admit(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    ctx: &Arc<conn::Ctx>,
    shutdown: &CancellationToken,
) {
    // A source no answer can go back to: as hickory did, not served.
    if peer.port() == 0 || peer.ip().is_unspecified() {
        return;
    }
    let Some(admitted) = ctx.registry.admit(peer.ip(), shutdown) else {
        ctx.events
            .tcp
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        // ratelog: a client can open connections as fast as it likes.
        debug!(%peer, open = ctx.registry.open(), "TCP connection refused: at the cap with none idle");
        return;
    };
    // Answers go out whole, one write per batch: no point waiting for more.
    let _ = stream.set_nodelay(true);
    tokio::spawn(conn::serve(stream, peer, ctx.clone(), admitted));
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum End {
    /// Still open.
    Open = 0,
    /// The client closed it (or reset it).
    PeerClosed,
    /// Idle for the idle timeout.
    Idle,
    /// The client took nothing for the write timeout.
    WriteTimeout,
    /// Closed to make room for a new connection.
    Evicted,
    /// The server is stopping.
    Shutdown,
    /// A socket error.
    Error,
}

impl End {
    fn from_u8(v: u8) -> End {
        match v {
            1 => End::PeerClosed,
            2 => End::Idle,
            3 => End::WriteTimeout,
            4 => End::Evicted,
            5 => End::Shutdown,
            6 => End::Error,
            _ => End::Open,
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::Open => "connection still open",
            End::PeerClosed => "the client closed the connection",
            End::Idle => "idle timeout",
            End::WriteTimeout => "the client stopped reading (tcp_write_timeout)",
            End::Evicted => "closed to make room for a new connection",
            End::Shutdown => "server shutting down",
            End::Error => "socket error",
        })
    }
}

/// What the connection table and a connection's task share about it.
pub(crate) struct Shared {
    /// Work in progress: requests with the handler, transfers.
    busy: AtomicUsize,
    /// When the connection last had something to do, in milliseconds since
    /// the registry's epoch: the oldest idle one is closed first.
    last_active: AtomicU64,
    cancel: CancellationToken,
    end: AtomicU8,
}

impl Shared {
    fn busy(&self) -> usize {
        self.busy.load(Ordering::Acquire)
    }

    fn end(&self) -> End {
        End::from_u8(self.end.load(Ordering::Acquire))
    }

    /// Records why the connection ends, unless a reason is already set.
    fn set_end(&self, end: End) {
        let _ = self.end.compare_exchange(
            End::Open as u8,
            end as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

/// Every open connection, for the caps and the choice of which to close.
/// Locked when a connection opens or closes, never per query.
pub struct Registry {
    limits: TcpLimits,
    events: Arc<Events>,
    table: Mutex<Table>,
    open: AtomicUsize,
    epoch: Instant,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, (IpAddr, Arc<Shared>)>,
    per_client: HashMap<IpAddr, usize>,
}

impl Table {
    /// The idle connection (of `client`, if given) whose last activity is
    /// the oldest.
    fn oldest_idle(&self, client: Option<IpAddr>, except: &[u64]) -> Option<u64> {
        self.conns
            .iter()
            .filter(|(id, (ip, s))| {
                client.is_none_or(|c| c == *ip) && s.busy() == 0 && !except.contains(id)
            })
            .min_by_key(|(_, (_, s))| s.last_active.load(Ordering::Relaxed))
            .map(|(id, _)| *id)
    }

    fn remove(&mut self, id: u64) -> Option<Arc<Shared>> {
        let (ip, shared) = self.conns.remove(&id)?;
        if let Some(n) = self.per_client.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&ip);
            }
        }
        Some(shared)
    }
}

/// A connection's place in the table, given back when dropped.
pub(crate) struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

impl Registry {
    fn new(limits: TcpLimits, events: Arc<Events>) -> Self {
        Registry {
            limits,
            events,
            table: Mutex::new(Table::default()),
            open: AtomicUsize::new(0),
            epoch: Instant::now(),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Takes a place for a connection from `client`, closing the oldest
    /// idle connection (the client's own first) when a cap is reached;
    /// `None` when every connection in the way is busy.
    fn admit(self: &Arc<Self>, client: IpAddr, shutdown: &CancellationToken) -> Option<Admitted> {
        let client = client.to_canonical();
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        // Chosen first, closed only once both caps are known to be met.
        let mut victims = Vec::new();
        if t.per_client.get(&client).copied().unwrap_or(0) >= self.limits.max_connections_per_client
        {
            victims.push(t.oldest_idle(Some(client), &victims)?);
        }
        if t.conns.len() - victims.len() >= self.limits.max_connections {
            victims.push(t.oldest_idle(None, &victims)?);
        }
        let evicted: Vec<Arc<Shared>> = victims.iter().filter_map(|&id| t.remove(id)).collect();
        let id = t.next_id;
        t.next_id += 1;
        let shared = Arc::new(Shared {
            busy: AtomicUsize::new(0),
            last_active: AtomicU64::new(self.now_ms()),
            cancel: shutdown.child_token(),
            end: AtomicU8::new(End::Open as u8),
        });
        t.conns.insert(id, (client, shared.clone()));
        *t.per_client.entry(client).or_default() += 1;
        self.open.store(t.conns.len(), Ordering::Relaxed);
        drop(t);
        self.close_evicted(evicted);
        self.events.tcp.connections_open.set(self.open() as u64);
        self.events
            .tcp
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        Some(Admitted {
            registry: self.clone(),
            id,
            shared,
        })
    }

    fn close_evicted(&self, evicted: Vec<Arc<Shared>>) {
        for s in evicted {
            s.set_end(End::Evicted);
            s.cancel.cancel();
            self.events
                .tcp
                .connections_evicted
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remove(&self, id: u64) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.remove(id);
        self.open.store(t.conns.len(), Ordering::Relaxed);
        drop(t);
        self.events.tcp.connections_open.set(self.open() as u64);
    }

    /// The idle timeout now: the shorter one once more than half the cap
    /// is in use.
    fn idle_timeout(&self) -> Duration {
        if self.open() * 2 > self.limits.max_connections {
            self.limits.busy_idle_timeout
        } else {
            self.limits.idle_timeout
        }
    }

    /// The TIMEOUT of an edns-tcp-keepalive option, in units of 100 ms:
    /// the idle timeout now, or 0 at the cap, which asks clients to close
    /// their connections once answered (RFC 7828 §3.3.2).
    pub fn keepalive(&self) -> u16 {
        if self.open() >= self.limits.max_connections {
            0
        } else {
            u16::try_from(self.idle_timeout().as_millis() / 100).unwrap_or(u16::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max: usize, per_client: usize) -> Arc<Registry> {
        let limits = TcpLimits {
            max_connections: max,
            max_connections_per_client: per_client,
            ..TcpLimits::default()
        };
        Arc::new(Registry::new(limits, Arc::new(Events::default())))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let r = registry(3, 10);
        let stop = CancellationToken::new();
        let a = r.admit(ip("192.0.2.1"), &stop).unwrap();
        a.shared.last_active.store(5, Ordering::Relaxed);
        let b = r.admit(ip("192.0.2.2"), &stop).unwrap();
        b.shared.last_active.store(1, Ordering::Relaxed);
        let c = r.admit(ip("192.0.2.3"), &stop).unwrap();
        c.shared.last_active.store(9, Ordering::Relaxed);
        // b is the oldest, but busy: a goes.
        b.shared.busy.store(1, Ordering::Relaxed);
        let d = r.admit(ip("192.0.2.4"), &stop).unwrap();
        assert!(a.shared.cancel.is_cancelled());
        assert_eq!(a.shared.end(), End::Evicted);
        assert!(!b.shared.cancel.is_cancelled() && !c.shared.cancel.is_cancelled());
        assert_eq!(r.open(), 3);
        // Dropping the evicted connection's place changes nothing more.
        drop(a);
        assert_eq!(r.open(), 3);
        // All busy: refused.
        for s in [&b, &c, &d] {
            s.shared.busy.store(1, Ordering::Relaxed);
        }
        assert!(r.admit(ip("192.0.2.5"), &stop).is_none());
        assert_eq!(r.open(), 3);
        assert_eq!(r.keepalive(), 0, "at the cap: close when done");
        drop(d);
        assert_eq!(r.open(), 2);
        assert!(r.admit(ip("192.0.2.5"), &stop).is_some());
    }

    #[test]
    fn a_client_at_its_cap_gives_up_its_own_oldest_idle_connection() {
        let r = registry(100, 2);
        let stop = CancellationToken::new();
        let other = r.admit(ip("198.51.100.1"), &stop).unwrap();
        other.shared.last_active.store(0, Ordering::Relaxed);
        let a = r.admit(ip("192.0.2.1"), &stop).unwrap();
        a.shared.last_active.store(3, Ordering::Relaxed);
        // The same client over IPv4-mapped IPv6 counts as the same client.
        let b = r.admit(ip("::ffff:192.0.2.1"), &stop).unwrap();
        b.shared.last_active.store(7, Ordering::Relaxed);
        let c = r.admit(ip("192.0.2.1"), &stop).unwrap();
        assert!(a.shared.cancel.is_cancelled());
        assert!(!other.shared.cancel.is_cancelled() && !b.shared.cancel.is_cancelled());
        b.shared.busy.store(1, Ordering::Relaxed);
        c.shared.busy.store(1, Ordering::Relaxed);
        assert!(r.admit(ip("192.0.2.1"), &stop).is_none());
        assert!(r.admit(ip("192.0.2.9"), &stop).is_some());
    }

    #[test]
    fn idle_timeout_is_shorter_when_busy() {
        let r = registry(4, 10);
        let stop = CancellationToken::new();
        let mut held = Vec::new();
        held.push(r.admit(ip("192.0.2.1"), &stop).unwrap());
        held.push(r.admit(ip("192.0.2.2"), &stop).unwrap());
        assert_eq!(r.idle_timeout(), r.limits.idle_timeout);
        assert_eq!(r.keepalive(), 100);
        held.push(r.admit(ip("192.0.2.3"), &stop).unwrap());
        assert_eq!(r.idle_timeout(), r.limits.busy_idle_timeout);
        assert_eq!(r.keepalive(), 10);
    }
}
