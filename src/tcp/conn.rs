//! One DNS-over-TCP connection: framing, the fast path, handler tasks,
//! the write queue with its acknowledgements, and the timeouts.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hickory_proto::op::{Header, HeaderCounts, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::opt::EdnsCode;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::{Admitted, End, Registry, Shared};
use crate::config::TcpLimits;
use crate::fast;
use crate::metrics::{Events, PendingCounts, PendingSizes};
use crate::serve::{self, Handler, Responder};
use crate::wire;
use crate::zone::key::WireName;

pub(super) struct Ctx {
    pub handler: Handler,
    pub events: Arc<Events>,
    pub registry: Arc<Registry>,
    pub limits: TcpLimits,
    /// Octets of answer cache for each runtime thread that serves TCP.
    pub cache_budget: u64,
    /// Every query to the handler ([`crate::udp::SLOW_PATH_ENV`]).
    pub slow_only: bool,
}

/// Requests a connection may have with the handler at once (transfers
/// included); past that it reads no more until one is done.
const MAX_IN_FLIGHT: usize = 16;
/// Octets of answers waiting for the client past which no more queries
/// are read: a client that does not read gets no more answers made.
const OUT_HIGH: usize = 64 * 1024;
/// Buffers are shrunk back to this when they grew past [`KEEP`] for a
/// large message.
const SMALL: usize = 4 * 1024;
const KEEP: usize = 96 * 1024;

/// A transfer's messages and the handler's answers on their way to the
/// connection.
enum Event {
    Message {
        msg: Vec<u8>,
        /// Fired once the socket has taken the whole message.
        written: Option<oneshot::Sender<()>>,
    },
    /// A request left the handler (or a transfer ended).
    Done,
}

/// The connection as the handler sees it: somewhere to send messages.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::UnboundedSender<Event>,
    shared: Arc<Shared>,
}

/// The connection is gone, and why.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{0}")]
pub struct Closed(pub End);

impl Sink {
    fn closed(&self) -> Closed {
        Closed(match self.shared.end() {
            End::Open => End::Error,
            end => end,
        })
    }

    /// Queues `msg` (without its length prefix).
    pub fn send(&self, msg: Vec<u8>) -> Result<(), Closed> {
        self.tx
            .send(Event::Message { msg, written: None })
            .map_err(|_| self.closed())
    }

    /// Queues `msg` and waits until the socket has taken all of it.
    pub async fn send_written(&self, msg: Vec<u8>) -> Result<(), Closed> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Event::Message {
                msg,
                written: Some(tx),
            })
            .map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())
    }
}

/// Work for the handler, counted while it lasts.
struct Work {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Event>,
}

impl Drop for Work {
    fn drop(&mut self) {
        self.shared.busy.fetch_sub(1, Ordering::AcqRel);
        let _ = self.tx.send(Event::Done);
    }
}

/// Serves one accepted connection until it closes.
pub(super) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    admitted: Admitted,
) {
    let shared = admitted.shared.clone();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sink = Sink {
        tx,
        shared: shared.clone(),
    };
    let (mut rd, mut wr) = stream.split();
    let mut input: Vec<u8> = Vec::with_capacity(SMALL);
    let mut out: Vec<u8> = Vec::new();
    // Written so far of `out`, and in all (for the acknowledgements).
    let mut out_pos = 0;
    let mut written_total: u64 = 0;
    let mut queued_total: u64 = 0;
    let mut acks: VecDeque<(u64, oneshot::Sender<()>)> = VecDeque::new();
    let mut eof = false;
    let mut last_active = Instant::now();
    let mut last_written = Instant::now();
    // The kernel's send queue, sampled once the write timeout is up: if it
    // has shrunk a moment later the client is reading, only slowly.
    let mut probe: Option<usize> = None;
    let timer = tokio::time::sleep(ctx.registry.idle_timeout());
    tokio::pin!(timer);

    let end = loop {
        if out_pos > 0 {
            // What was written goes, so that `out` holds only what waits.
            out.drain(..out_pos);
            out_pos = 0;
        }
        if out.len() < OUT_HIGH {
            let took = take_queries(&mut input, &mut out, peer, &ctx, &sink);
            if took > 0 {
                last_active = Instant::now();
                shared
                    .last_active
                    .store(ctx.registry.now_ms(), Ordering::Relaxed);
            }
        }
        let pending = out.len() - out_pos;
        if eof && pending == 0 && shared.busy() == 0 {
            break End::PeerClosed;
        }
        let room = shared.busy() < MAX_IN_FLIGHT && pending < OUT_HIGH;
        let want_read = !eof && room;
        if want_read {
            reserve_for_frame(&mut input);
        }
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => break End::Shutdown,
            Some(event) = rx.recv() => match event {
                Event::Message { msg, written } => {
                    if out.len() == out_pos {
                        last_written = Instant::now();
                    }
                    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
                    out.extend_from_slice(&msg);
                    queued_total += 2 + msg.len() as u64;
                    if let Some(w) = written {
                        acks.push_back((queued_total, w));
                    }
                }
                Event::Done => {
                    last_active = Instant::now();
                    shared.last_active.store(ctx.registry.now_ms(), Ordering::Relaxed);
                }
            },
            r = wr.write(&out[out_pos..]), if pending > 0 => match r {
                Ok(0) | Err(_) => break End::PeerClosed,
                Ok(n) => {
                    out_pos += n;
                    written_total += n as u64;
                    last_written = Instant::now();
                    probe = None;
                    while acks.front().is_some_and(|(at, _)| *at <= written_total) {
                        let (_, w) = acks.pop_front().expect("checked");
                        let _ = w.send(());
                    }
                    if out_pos == out.len() {
                        out.clear();
                        out_pos = 0;
                        if out.capacity() > KEEP {
                            out.shrink_to(SMALL);
                        }
                        last_active = Instant::now();
                        shared.last_active.store(ctx.registry.now_ms(), Ordering::Relaxed);
                    }
                }
            },
            r = rd.read_buf(&mut input), if want_read => match r {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(_) => break End::PeerClosed,
            },
            () = &mut timer => {
                let now = Instant::now();
                let next = if out.len() > out_pos {
                    let deadline = last_written + ctx.limits.write_timeout;
                    if now < deadline {
                        deadline
                    } else {
                        // Linux reports a socket writable only once a third
                        // of its buffer is free, which can take a slow
                        // reader longer than the timeout: what leaves the
                        // send queue counts as progress too.
                        let queued = send_queue(fd);
                        match (probe, queued) {
                            (None, Some(q)) => {
                                probe = Some(q);
                                now + WRITE_PROBE
                            }
                            (Some(before), Some(q)) if q < before => {
                                last_written = now;
                                probe = None;
                                now + ctx.limits.write_timeout
                            }
                            _ => break End::WriteTimeout,
                        }
                    }
                } else if shared.busy() == 0 {
                    let deadline = last_active + ctx.registry.idle_timeout();
                    if now >= deadline {
                        break End::Idle;
                    }
                    // Checked again at least as often as the short timeout,
                    // so that it takes hold soon once the server gets busy.
                    deadline.min(now + ctx.limits.busy_idle_timeout)
                } else {
                    now + ctx.limits.busy_idle_timeout
                };
                timer.as_mut().reset(next.into());
            }
        }
    };
    shared.set_end(end);
    match shared.end() {
        End::Idle => {
            ctx.events.tcp.idle_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        End::WriteTimeout => {
            ctx.events
                .tcp
                .write_timeouts
                .fetch_add(1, Ordering::Relaxed);
            // ratelog: any client can stop reading.
            warn!(%peer, unwritten = out.len() - out_pos,
                  "TCP client read nothing for tcp_write_timeout: connection closed");
        }
        _ => {}
    }
    let _ = wr.shutdown().await;
    drop(admitted);
}

/// How long after the write timeout the send queue is looked at again.
const WRITE_PROBE: std::time::Duration = std::time::Duration::from_secs(1);

/// Octets in the socket's send queue, not yet acknowledged by the client.
fn send_queue(fd: std::os::fd::RawFd) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int, ours.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
        (rc == 0).then_some(n as usize)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

/// Makes room in `input` for the rest of the frame it starts with, or for
/// a few more frames.
fn reserve_for_frame(input: &mut Vec<u8>) {
    let want = if input.len() >= 2 {
        2 + u16::from_be_bytes([input[0], input[1]]) as usize
    } else {
        SMALL
    };
    let spare = input.capacity() - input.len();
    if input.len() < want && spare < want - input.len() {
        input.reserve(want - input.len());
    } else if spare < 512 {
        input.reserve(SMALL);
    }
}

/// What the fast path keeps per thread: lookup key, cache key, answer
/// buffer and the answer cache.
struct FastState {
    name: WireName,
    key: fast::cache::Key,
    answer: Vec<u8>,
    /// `None` when the answer cache is off.
    cache: Option<fast::AnswerCache>,
}

thread_local! {
    // Made at a thread's first TCP query: a runtime thread that never
    // serves one holds no cache.
    static FAST: RefCell<Option<Box<FastState>>> = const { RefCell::new(None) };
}

/// Answers the complete queries at the start of `input` (the fast path in
/// place, the rest on handler tasks) until the connection has too much in
/// flight or waiting to be written; drops what it took from `input`.
/// Returns the number of queries taken.
fn take_queries(
    input: &mut Vec<u8>,
    out: &mut Vec<u8>,
    peer: SocketAddr,
    ctx: &Ctx,
    sink: &Sink,
) -> usize {
    // Most wake-ups bring no whole query: nothing to set up for them.
    let complete =
        input.len() >= 2 && input.len() >= 2 + u16::from_be_bytes([input[0], input[1]]) as usize;
    if !complete {
        return 0;
    }
    let mut at = 0;
    let mut taken = 0;
    let table = ctx.handler.store().table();
    let mut counts = PendingCounts::default();
    let mut sizes = PendingSizes::new(&ctx.events.tcp.response_sizes);
    let keepalive = ctx.registry.keepalive().to_be_bytes();
    FAST.with_borrow_mut(|state| {
        let state = state.get_or_insert_with(|| {
            Box::new(FastState {
                name: WireName::new(),
                key: fast::cache::Key::default(),
                answer: vec![0; fast::MAX_TCP_ANSWER],
                cache: fast::AnswerCache::with_budget(ctx.cache_budget),
            })
        });
        while input.len() - at >= 2 {
            if sink.shared.busy() >= MAX_IN_FLIGHT || out.len() >= OUT_HIGH {
                break;
            }
            let len = u16::from_be_bytes([input[at], input[at + 1]]) as usize;
            if input.len() - at - 2 < len {
                break;
            }
            let msg = &input[at + 2..at + 2 + len];
            at += 2 + len;
            taken += 1;
            // Runts and responses get no answer, as over UDP.
            if msg.len() < 12 || msg[2] & 0x80 != 0 {
                continue;
            }
            let FastState {
                name,
                key,
                answer,
                cache,
            } = &mut **state;
            let parsed = if ctx.slow_only {
                None
            } else {
                fast::parse(msg, name)
            };
            let reply = match parsed {
                // Cookies and NSID over TCP are the handler's: they cost
                // a task, and TCP clients that send them are few.
                Some(q) if q.cookie.is_some() || q.nsid => fast::Reply::Slow,
                Some(mut q) => {
                    q.tcp = true;
                    let cached = cache.as_mut().map(|cache| {
                        fast::set_cache_key(key, &q, answer.len());
                        let slot = cache.prefetch_slot(key);
                        fast::Cached { cache, key, slot }
                    });
                    let reply = fast::answer_cached(
                        &q,
                        &table,
                        &ctx.events,
                        &mut counts,
                        cached,
                        &[],
                        &mut answer[..],
                    );
                    match reply {
                        fast::Reply::Ready(len, rrl) if q.keepalive && q.edns.is_some() => {
                            let len = wire::append_edns_option(
                                answer,
                                len,
                                fast::EDNS_TCP_KEEPALIVE,
                                &keepalive,
                            )
                            .unwrap_or(len);
                            fast::Reply::Ready(len, rrl)
                        }
                        other => other,
                    }
                }
                None => fast::Reply::Slow,
            };
            match reply {
                // Over TCP nobody is spoofed: no rate limit.
                fast::Reply::Ready(len, _) => {
                    sizes.record(len);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                    out.extend_from_slice(&answer[..len]);
                }
                fast::Reply::Slow => spawn_slow(msg.to_vec(), peer, ctx, sink),
            }
        }
    });
    input.drain(..at);
    if input.capacity() > KEEP && input.len() < SMALL {
        input.shrink_to(SMALL);
    }
    taken
}

/// Hands a request to the handler on a task of its own.
fn spawn_slow(msg: Vec<u8>, peer: SocketAddr, ctx: &Ctx, sink: &Sink) {
    sink.shared.busy.fetch_add(1, Ordering::AcqRel);
    let work = Work {
        shared: sink.shared.clone(),
        tx: sink.tx.clone(),
    };
    let responder = TcpResponder {
        sink: sink.clone(),
        keepalive: None,
        registry: ctx.registry.clone(),
        events: ctx.events.clone(),
    };
    let handler = ctx.handler.clone();
    tokio::spawn(async move {
        let _work = work;
        answer_slow(msg, peer, handler, responder).await;
    });
}

async fn answer_slow(
    msg: Vec<u8>,
    peer: SocketAddr,
    handler: Handler,
    mut responder: TcpResponder,
) {
    let header = msg[..12].to_vec();
    let request = match Request::from_bytes(msg, peer, Protocol::Tcp) {
        Ok(r) => r,
        Err(e) => {
            debug!(%peer, error = %e, "malformed query over TCP");
            if let Some(reply) = serve::formerr(&header) {
                let _ = responder.sink.send(reply);
            }
            return;
        }
    };
    let keepalive = request
        .edns
        .as_ref()
        .is_some_and(|e| e.option(EdnsCode::Keepalive).is_some());
    if keepalive {
        responder.keepalive = Some(responder.registry.keepalive());
    }
    handler.handle_request(&request, responder).await;
}

/// hickory's response handling for answers the handler makes, over TCP.
#[derive(Clone)]
struct TcpResponder {
    sink: Sink,
    /// The TIMEOUT of the keepalive option to add, when the client sent one.
    keepalive: Option<u16>,
    registry: Arc<Registry>,
    events: Arc<Events>,
}

impl Responder for TcpResponder {
    fn stream(&self) -> Option<Sink> {
        Some(self.sink.clone())
    }
}

#[async_trait::async_trait]
impl ResponseHandler for TcpResponder {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let meta = *response.metadata();
        let mut buf = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buf);
        encoder.set_max_size(u16::MAX);
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            Err(e) => {
                // As over UDP: SERVFAIL rather than nothing.
                warn!(error = %e, "encoding a TCP answer failed");
                buf.clear();
                let mut meta = meta;
                meta.response_code = ResponseCode::ServFail;
                let header = Header {
                    metadata: meta,
                    counts: HeaderCounts::default(),
                };
                let mut encoder = BinEncoder::new(&mut buf);
                header.emit(&mut encoder)?;
                ResponseInfo::from(header)
            }
        };
        if let Some(timeout) = self.keepalive {
            // Only an unsigned answer ends with its OPT; a TSIG covers it.
            let len = buf.len();
            buf.resize(len + 6, 0);
            let at = wire::append_edns_option(
                &mut buf,
                len,
                fast::EDNS_TCP_KEEPALIVE,
                &timeout.to_be_bytes(),
            );
            buf.truncate(at.unwrap_or(len));
        }
        self.events.tcp.response_sizes.record(buf.len());
        self.sink
            .send(buf)
            .map_err(|e| NetError::from(e.to_string()))?;
        Ok(info)
    }
}
