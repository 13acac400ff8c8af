//! Outpost's own UDP path in front of the request handler.
//!
//! hickory-server's UDP loop answers FORMERR to any datagram it cannot
//! parse, even one with QR=1, which turns the server into a reflector, and
//! sizes UDP answers from the EDNS size we advertise rather than the one the
//! client offered. This loop drops responses and runts before parsing,
//! encodes with the client's limit, and runs one socket per worker with
//! SO_REUSEPORT so the kernel spreads queries over the cores.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use hickory_proto::op::{Header, HeaderCounts, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use socket2::{Domain, Socket, Type};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::RrlConfig;
use crate::cookie;
use crate::fast;
use crate::metrics::{Events, PendingCounts, PendingSizes};
use crate::rrl;
use crate::serve::{self, Handler, Responder, udp_limit};
use crate::zone::key::WireName;

#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    #[error("binding UDP {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// What each UDP worker is given besides the handler: its share of the
/// answer cache and the rate limiting settings.
#[derive(Debug, Clone, Default)]
pub struct WorkerSettings {
    /// Octets of answer cache for each worker; 0: none.
    pub cache_per_worker: u64,
    pub rrl: RrlConfig,
}

/// Binds `workers` sockets to `addr` and serves each in its own task.
pub fn spawn(
    addr: SocketAddr,
    workers: usize,
    handler: Handler,
    events: Arc<Events>,
    settings: &WorkerSettings,
    shutdown: CancellationToken,
) -> Result<(), UdpError> {
    for i in 0..workers.max(1) {
        let socket = bind(addr).map_err(|error| UdpError::Bind { addr, error })?;
        let handler = handler.clone();
        let events = events.clone();
        let shutdown = shutdown.clone();
        let limiter = rrl::Limiter::new(&settings.rrl, workers.max(1));
        let cache_budget = settings.cache_per_worker;
        // One OS thread per socket, with a runtime of its own: the kernel
        // spreads datagrams over the SO_REUSEPORT sockets, and each is then
        // served on its own core instead of sharing the main runtime's
        // workers with TCP, transfers and the control endpoint.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| UdpError::Bind { addr, error })?;
        std::thread::Builder::new()
            .name(format!("udp-{addr}-{i}"))
            .spawn(move || {
                let worker = Worker {
                    handler,
                    events,
                    limiter,
                    cache_budget,
                };
                serve(Arc::new(socket), &runtime, worker, shutdown)
            })
            .map_err(|error| UdpError::Bind { addr, error })?;
    }
    Ok(())
}

fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // The worker blocks in recvmmsg, waking at least this often to see
    // whether the server is shutting down.
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    // Bursts must not overflow the receive queue while a worker is busy.
    let _ = socket.set_recv_buffer_size(4 << 20);
    dont_fragment(&socket, addr)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Sends IPv4 answers with DF set and never fragments them here, ignoring
/// path MTU values learnt from ICMP (Linux `IP_PMTUDISC_PROBE`).
///
/// RFC 9715 recommends DF on DNS responses over IPv4: a fragmented answer
/// can be poisoned by spoofed fragments, and an answer fits without
/// fragmentation anyway, as we never send more than 1,232 octets of DNS
/// (1,260 with the headers). Ignoring learnt path MTUs means a forged
/// ICMP message cannot make us fragment. It also spares the kernel the
/// hashed IP ID it draws for every datagram that may be fragmented (about
/// 2 % of the CPU an answer costs, by perf).
pub fn dont_fragment(socket: &Socket, addr: SocketAddr) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if addr.is_ipv4() {
        let mode: libc::c_int = libc::IP_PMTUDISC_PROBE;
        // SAFETY: an int option, with its size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&mode as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (socket, addr);
    Ok(())
}

/// Datagrams taken per system call.
const BATCH: usize = 32;
/// How long a shut-down worker may stay blocked in `recvmmsg`.
const SHUTDOWN_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// Room for any datagram, so that nothing is cut before the parser sees it.
const MAX_DATAGRAM: usize = 65535;

/// Set (to anything) in the environment, it sends every query, over UDP
/// and TCP, through the hickory path: for comparing the two paths, and for
/// ruling the fast path out when an answer looks wrong.
pub const SLOW_PATH_ENV: &str = "OUTPOST_UDP_SLOW_PATH";

/// One worker's buffers, reused for every batch: received datagrams with
/// their sources, and the fast path's answers with their destinations.
struct Batch {
    rx: Vec<u8>,
    rx_len: [usize; BATCH],
    rx_addr: [libc::sockaddr_storage; BATCH],
    rx_addr_len: [libc::socklen_t; BATCH],
    /// Each datagram's query name, its answer-cache key and slot.
    names: Vec<WireName>,
    keys: Vec<fast::cache::Key>,
    slots: [fast::cache::Slot; BATCH],
    tx: Vec<u8>,
    tx_len: [usize; BATCH],
    /// Which received datagram each answer goes back to.
    tx_from: [usize; BATCH],
    /// The EDNS options each answer carries (cookie, NSID), in wire form.
    options: Vec<u8>,
    /// What each query's cookie was: none, or the verdict.
    cookies: [Option<cookie::Verdict>; BATCH],
}

/// Room for one answer's EDNS options: a cookie, and an NSID of up to 255
/// octets.
const OPTIONS_ROOM: usize = 4 + cookie::RESPONSE_LEN + 4 + 255;

impl Batch {
    fn new() -> Box<Self> {
        Box::new(Batch {
            // Pages never written are never touched: the 2 MiB cost address
            // space, not memory, until datagrams that large arrive.
            rx: vec![0; BATCH * MAX_DATAGRAM],
            rx_len: [0; BATCH],
            // SAFETY: all-zero is a valid sockaddr_storage.
            rx_addr: unsafe { std::mem::zeroed() },
            rx_addr_len: [0; BATCH],
            names: vec![WireName::new(); BATCH],
            keys: (0..BATCH).map(|_| fast::cache::Key::default()).collect(),
            slots: [fast::cache::Slot::default(); BATCH],
            tx: vec![0; BATCH * fast::MAX_ANSWER],
            tx_len: [0; BATCH],
            tx_from: [0; BATCH],
            options: vec![0; BATCH * OPTIONS_ROOM],
            cookies: [None; BATCH],
        })
    }

    fn datagram(&self, i: usize) -> &[u8] {
        &self.rx[i * MAX_DATAGRAM..i * MAX_DATAGRAM + self.rx_len[i]]
    }

    fn source(&self, i: usize) -> Option<SocketAddr> {
        let a = &self.rx_addr[i];
        let p = a as *const libc::sockaddr_storage;
        // SAFETY: the family says which sockaddr the storage holds; both fit.
        unsafe {
            match a.ss_family as libc::c_int {
                libc::AF_INET => {
                    let s = &*p.cast::<libc::sockaddr_in>();
                    let ip = std::net::Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr));
                    Some(SocketAddr::from((ip, u16::from_be(s.sin_port))))
                }
                libc::AF_INET6 => {
                    let s = &*p.cast::<libc::sockaddr_in6>();
                    let ip = std::net::Ipv6Addr::from(s.sin6_addr.s6_addr);
                    Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                        ip,
                        u16::from_be(s.sin6_port),
                        s.sin6_flowinfo,
                        s.sin6_scope_id,
                    )))
                }
                _ => None,
            }
        }
    }

    /// One `recvmmsg`: waits for a datagram, then takes up to BATCH of
    /// those queued without waiting for more.
    fn receive(&mut self, fd: RawFd) -> std::io::Result<usize> {
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdr: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            iov[i] = libc::iovec {
                iov_base: self.rx[i * MAX_DATAGRAM..].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let h = &mut hdr[i].msg_hdr;
            h.msg_name = (&mut self.rx_addr[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: every pointer refers to buffers that outlive the call,
        // with the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdr.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, h) in hdr[..n].iter().enumerate() {
            self.rx_len[i] = h.msg_len as usize;
            self.rx_addr_len[i] = h.msg_hdr.msg_namelen;
        }
        Ok(n)
    }

    /// One `sendmmsg` of answers `from..count`; returns how many went.
    fn send(&mut self, fd: RawFd, from: usize, count: usize) -> std::io::Result<usize> {
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdr: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let n = count - from;
        for k in 0..n {
            let j = from + k;
            let i = self.tx_from[j];
            iov[k] = libc::iovec {
                iov_base: self.tx[j * fast::MAX_ANSWER..].as_mut_ptr().cast(),
                iov_len: self.tx_len[j],
            };
            let h = &mut hdr[k].msg_hdr;
            h.msg_name = (&mut self.rx_addr[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = self.rx_addr_len[i];
            h.msg_iov = &mut iov[k];
            h.msg_iovlen = 1;
        }
        // SAFETY: as in `receive`.
        let sent = unsafe { libc::sendmmsg(fd, hdr.as_mut_ptr(), n as libc::c_uint, 0) };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// One worker's parts: the handler (zones, cookies, identity), the
/// counters, its own rate limiter and the size of its answer cache.
struct Worker {
    handler: Handler,
    events: Arc<Events>,
    limiter: Option<rrl::Limiter>,
    cache_budget: u64,
}

/// One worker, on a thread of its own: a batch of datagrams per blocking
/// `recvmmsg`, the fast path's answers in one `sendmmsg`, then the rest
/// through hickory on the worker's own runtime.
///
/// Blocking in `recvmmsg` (as a bare reflector does) instead of waiting on
/// readiness through tokio saves an `epoll_wait` and a failed `recvmmsg`
/// each time the queue runs dry: measured with the benchmark's reflector,
/// the system calls are nearly all of the CPU an answer costs.
fn serve(
    socket: Arc<std::net::UdpSocket>,
    runtime: &tokio::runtime::Runtime,
    mut worker: Worker,
    shutdown: CancellationToken,
) {
    let fd = socket.as_raw_fd();
    let slow_only = std::env::var_os(SLOW_PATH_ENV).is_some();
    let mut batch = Batch::new();
    let mut slow: Vec<usize> = Vec::with_capacity(BATCH);
    // Made at the first query: an idle worker holds no slots.
    let mut cache: Option<fast::AnswerCache> = None;
    let reply = Arc::new(std::sync::Mutex::new(Vec::new()));
    while !shutdown.is_cancelled() {
        let n = match batch.receive(fd) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here; keep going.
                debug!(error = %e, "UDP receive");
                continue;
            }
        };
        slow.clear();
        if cache.is_none() {
            cache = fast::AnswerCache::with_budget(worker.cache_budget);
        }
        let now = Clock::now();
        let answers = answer_batch(
            &mut batch,
            n,
            &mut worker,
            slow_only,
            cache.as_mut(),
            now,
            &mut slow,
        );
        send_batch(fd, &mut batch, answers);
        for &i in &slow {
            let Some(src) = batch.source(i) else { continue };
            let capture = worker.limiter.as_ref().map(|_| reply.clone());
            runtime.block_on(slow_path(
                &socket,
                batch.datagram(i),
                src,
                &worker.handler,
                &worker.events,
                capture,
            ));
            if let Some(limiter) = worker.limiter.as_mut() {
                let mut out = std::mem::take(&mut *reply.lock().unwrap_or_else(|p| p.into_inner()));
                if let Some(len) = limit_slow(
                    limiter,
                    &worker.handler,
                    batch.datagram(i),
                    src,
                    &mut out,
                    now,
                ) {
                    let _ = socket.send_to(&out[..len], src);
                    worker.events.udp_response_sizes.record(len);
                }
                out.clear();
                *reply.lock().unwrap_or_else(|p| p.into_inner()) = out;
            }
        }
        if let Some(limiter) = worker.limiter.as_mut() {
            worker.events.rrl.add(&std::mem::take(&mut limiter.counts));
        }
        if let Some(cache) = cache.as_mut() {
            worker
                .events
                .answer_cache
                .add(&std::mem::take(&mut cache.stats));
        }
    }
}

/// Seconds for rate limiting and cookies, read once per batch.
#[derive(Clone, Copy)]
struct Clock {
    /// Unix time, as cookies carry it.
    unix: u32,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            unix: cookie::now(),
        }
    }
}

/// Rate limiting of an answer the hickory path made (`out`, for the query
/// `query` from `src`): returns the length to send, `None` to drop it.
fn limit_slow(
    limiter: &mut rrl::Limiter,
    handler: &Handler,
    query: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
    now: Clock,
) -> Option<usize> {
    if out.is_empty() {
        return None;
    }
    if limiter.exempt(src.ip()) {
        return Some(out.len());
    }
    let mut cookie_out = [0u8; cookie::RESPONSE_LEN];
    let verdict = cookie::query_option(query).map(|c| {
        let c = &c[..];
        handler
            .options()
            .cookies
            .check(c, src.ip(), now.unix, &mut cookie_out)
    });
    if verdict == Some(cookie::Verdict::Valid) {
        limiter.counts.cookie_exempt += 1;
        return Some(out.len());
    }
    let len = out.len();
    match limiter.check(src.ip(), rrl::classify(out), now.unix) {
        rrl::Verdict::Send => Some(len),
        rrl::Verdict::Drop => None,
        rrl::Verdict::Slip => {
            let badcookie = verdict == Some(cookie::Verdict::Unverified);
            out.resize(len.max(fast::MAX_ANSWER), 0);
            let cookie = badcookie.then_some(&cookie_out[..]);
            rrl::slip(out, len, badcookie, cookie)
        }
    }
}

/// Answers what the fast path can, in place; the rest is listed in `slow`.
/// Returns the number of answers ready.
///
/// Each datagram is read once, into the batch's own name buffers, and the
/// answer cache's memory for the whole batch is requested before any query
/// is answered, so that its reads overlap instead of stalling query after
/// query. The counters are added to once per batch. Cookies are checked and
/// answers rate-limited here too, with the worker's own table.
fn answer_batch(
    batch: &mut Batch,
    n: usize,
    worker: &mut Worker,
    slow_only: bool,
    mut cache: Option<&mut fast::AnswerCache>,
    now: Clock,
    slow: &mut Vec<usize>,
) -> usize {
    let handler = &worker.handler;
    let events = &*worker.events;
    let options = handler.options();
    let nsid = options
        .identity
        .identity
        .as_deref()
        .filter(|_| options.identity.nsid);
    let table = handler.store().table();
    let Batch {
        rx,
        rx_len,
        rx_addr,
        names,
        keys,
        slots,
        tx,
        tx_len,
        tx_from,
        options: opts,
        cookies,
        ..
    } = batch;
    let mut queries: [Option<fast::Query<'_>>; BATCH] = [const { None }; BATCH];
    for (i, name) in names.iter_mut().enumerate().take(n) {
        let wire = &rx[i * MAX_DATAGRAM..i * MAX_DATAGRAM + rx_len[i]];
        // Runts and responses get no answer: answering them reflects.
        if wire.len() < 12 || wire[2] & 0x80 != 0 || source_port(&rx_addr[i]) == 0 {
            continue;
        }
        match fast::parse(wire, name) {
            Some(mut q) if !slow_only => {
                cookies[i] = None;
                let o = &mut opts[i * OPTIONS_ROOM..(i + 1) * OPTIONS_ROOM];
                let mut len = 0;
                if let Some(data) = q.cookie {
                    let mut out = [0u8; cookie::RESPONSE_LEN];
                    let ip = source_ip(&rx_addr[i]);
                    cookies[i] = Some(options.cookies.check(data, ip, now.unix, &mut out));
                    o[..4].copy_from_slice(&[0, cookie::OPTION as u8, 0, out.len() as u8]);
                    o[4..4 + out.len()].copy_from_slice(&out);
                    len = 4 + out.len();
                }
                if q.nsid
                    && let Some(id) = nsid
                {
                    o[len..len + 2].copy_from_slice(&serve::NSID_OPTION.to_be_bytes());
                    o[len + 2..len + 4].copy_from_slice(&(id.len() as u16).to_be_bytes());
                    o[len + 4..len + 4 + id.len()].copy_from_slice(id.as_bytes());
                    len += 4 + id.len();
                }
                q.options_len = len;
                if let Some(cache) = cache.as_deref() {
                    fast::set_cache_key(&mut keys[i], &q, fast::MAX_ANSWER);
                    slots[i] = cache.prefetch_slot(&keys[i]);
                }
                queries[i] = Some(q);
            }
            _ => slow.push(i),
        }
    }
    if let Some(cache) = cache.as_deref() {
        for (q, &slot) in queries[..n].iter().zip(slots.iter()) {
            if q.is_some() {
                cache.prefetch_entry(slot);
            }
        }
    }
    // The questions the cache will not answer: their zone lookups first,
    // back to back, so that their cache misses overlap.
    for (i, q) in queries[..n].iter().enumerate() {
        if let Some(q) = q
            && cache.as_deref().is_none_or(|c| !c.holds(slots[i]))
        {
            fast::warm(q, &table);
        }
    }
    let mut counts = PendingCounts::default();
    let mut sizes = PendingSizes::new(&events.udp_response_sizes);
    let mut ready = 0;
    for (i, query) in queries[..n].iter().enumerate() {
        let Some(query) = query else { continue };
        let out = &mut tx[ready * fast::MAX_ANSWER..(ready + 1) * fast::MAX_ANSWER];
        let cached = cache.as_deref_mut().map(|cache| fast::Cached {
            cache,
            key: &keys[i],
            slot: slots[i],
        });
        let o = &opts[i * OPTIONS_ROOM..i * OPTIONS_ROOM + query.options_len];
        match fast::answer_cached(query, &table, events, &mut counts, cached, o, out) {
            fast::Reply::Ready(mut len, account) => {
                if let Some(limiter) = worker.limiter.as_mut() {
                    if cookies[i] == Some(cookie::Verdict::Valid) {
                        limiter.counts.cookie_exempt += 1;
                    } else {
                        let ip = source_ip(&rx_addr[i]);
                        match limiter.check(ip, account, now.unix) {
                            rrl::Verdict::Send => {}
                            rrl::Verdict::Drop => continue,
                            rrl::Verdict::Slip => {
                                let badcookie = cookies[i] == Some(cookie::Verdict::Unverified);
                                let cookie = query.cookie.map(|_| &o[4..4 + cookie::RESPONSE_LEN]);
                                // The cookie to send is copied: `o` and
                                // `out` are different buffers.
                                match rrl::slip(out, len, badcookie, cookie) {
                                    Some(l) => len = l,
                                    None => continue,
                                }
                            }
                        }
                    }
                }
                sizes.record(len);
                tx_len[ready] = len;
                tx_from[ready] = i;
                ready += 1;
            }
            fast::Reply::Slow => slow.push(i),
        }
    }
    // Slow queries are answered after the fast ones, in arrival order.
    slow.sort_unstable();
    ready
}

fn source_ip(addr: &libc::sockaddr_storage) -> std::net::IpAddr {
    let p = addr as *const libc::sockaddr_storage;
    // SAFETY: the family says which sockaddr the storage holds; both fit.
    unsafe {
        match addr.ss_family as libc::c_int {
            libc::AF_INET6 => {
                std::net::IpAddr::from((*p.cast::<libc::sockaddr_in6>()).sin6_addr.s6_addr)
            }
            _ => std::net::IpAddr::from(
                u32::from_be((*p.cast::<libc::sockaddr_in>()).sin_addr.s_addr).to_be_bytes(),
            ),
        }
    }
}

fn source_port(addr: &libc::sockaddr_storage) -> u16 {
    let p = addr as *const libc::sockaddr_storage;
    // SAFETY: the family says which sockaddr the storage holds; both fit.
    unsafe {
        match addr.ss_family as libc::c_int {
            libc::AF_INET => u16::from_be((*p.cast::<libc::sockaddr_in>()).sin_port),
            libc::AF_INET6 => u16::from_be((*p.cast::<libc::sockaddr_in6>()).sin6_port),
            _ => 0,
        }
    }
}

fn send_batch(fd: RawFd, batch: &mut Batch, count: usize) {
    let mut done = 0;
    while done < count {
        match batch.send(fd, done, count) {
            Ok(sent) => done += sent.max(1),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // The first datagram failed (e.g. an unroutable source):
                // skip it, send the rest.
                debug!(error = %e, "UDP send");
                done += 1;
            }
        }
    }
}

/// The hickory path, for everything the fast path does not take. With
/// `capture`, the answer is left there (for rate limiting) instead of sent.
async fn slow_path(
    socket: &Arc<std::net::UdpSocket>,
    wire: &[u8],
    src: SocketAddr,
    handler: &Handler,
    events: &Arc<Events>,
    capture: Option<Arc<std::sync::Mutex<Vec<u8>>>>,
) {
    let request = match Request::from_bytes(wire.to_vec(), src, Protocol::Udp) {
        Ok(r) => r,
        Err(e) => {
            debug!(%src, error = %e, "malformed query");
            if let Some(reply) = serve::formerr(wire) {
                match &capture {
                    Some(c) => *c.lock().unwrap_or_else(|p| p.into_inner()) = reply,
                    None => {
                        let _ = socket.send_to(&reply, src);
                    }
                }
            }
            return;
        }
    };
    let limit = udp_limit(request.edns.as_ref().map(|e| e.max_payload()));
    let responder = UdpResponder {
        socket: socket.clone(),
        dst: src,
        limit,
        events: events.clone(),
        capture,
    };
    handler.handle_request(&request, responder).await;
}

#[derive(Clone)]
struct UdpResponder {
    socket: Arc<std::net::UdpSocket>,
    dst: SocketAddr,
    limit: u16,
    events: Arc<Events>,
    capture: Option<Arc<std::sync::Mutex<Vec<u8>>>>,
}

impl Responder for UdpResponder {
    fn stream(&self) -> Option<crate::tcp::Sink> {
        None
    }
}

#[async_trait::async_trait]
impl ResponseHandler for UdpResponder {
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
        encoder.set_max_size(self.limit);
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            Err(e) => {
                // The handler fits answers by whole RRsets; reaching this
                // means a bug there. Say SERVFAIL rather than nothing.
                warn!(error = %e, "encoding a UDP answer failed");
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
        if let Some(capture) = &self.capture {
            *capture.lock().unwrap_or_else(|p| p.into_inner()) = buf;
            return Ok(info);
        }
        // A blocking send: the datagram goes into the socket's buffer, or
        // waits for room there, as the fast path's answers do.
        self.socket.send_to(&buf, self.dst)?;
        self.events.udp_response_sizes.record(buf.len());
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn ipv4_answers_go_with_df_and_never_fragment() {
        let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut mode: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an int option, with its size.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&mut mode as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(mode, libc::IP_PMTUDISC_PROBE);
    }
}
