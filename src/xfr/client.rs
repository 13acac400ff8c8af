//! The network side of zone transfers: SOA queries over UDP (TCP when
//! truncated) and AXFR/IXFR over TCP, with TSIG and timeouts. Protocol rules
//! live in [`super::interp`]; this module only moves bytes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::{Instant, timeout, timeout_at};

use super::interp::{InterpError, Interpreter, Limits, Request, Transfer, TransferData};
use crate::tsig::{self, Key, StreamVerifier, TsigError};
use crate::wire::{self, Message, WireError};

/// Which operation failed, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    SoaQuery,
    Axfr,
    Ixfr,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::SoaQuery => "SOA query",
            Op::Axfr => "AXFR",
            Op::Ixfr => "IXFR",
        })
    }
}

/// A failed transfer or query, naming zone, operation and primary:
/// `zone example.com: AXFR from 127.0.0.1:5300 failed: TSIG BADSIG`.
#[derive(Debug, thiserror::Error)]
#[error("zone {}: {op} from {primary} failed: {kind}", crate::rr::zone_text(.zone))]
pub struct XfrError {
    pub zone: Name,
    pub op: Op,
    pub primary: SocketAddr,
    #[source]
    pub kind: XfrErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum XfrErrorKind {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {0:?} ({1})")]
    Timeout(Duration, &'static str),
    #[error("{0}")]
    Tsig(#[from] TsigError),
    #[error("{0}")]
    Interp(#[from] InterpError),
    #[error("malformed response: {0}")]
    Wire(#[from] WireError),
    #[error("no SOA for the zone in the answer")]
    NoSoa,
    #[error("message of {0} octets does not fit the 16-bit length prefix")]
    TooLong(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaResponse {
    pub soa: Record,
    pub serial: u32,
    /// EDNS EXPIRE (RFC 7314) if the primary sent one.
    pub expire: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxfrResult {
    /// The zone, SOA first and only once.
    pub records: Box<crate::zone::ZoneBuilder>,
    pub expire: Option<u32>,
    pub messages: usize,
    /// Messages that carried a TSIG (0 without a key); primaries may sign
    /// only every Nth message (RFC 8945 §5.3.1).
    pub signed_messages: usize,
    pub bytes: u64,
}

struct Ctx<'a> {
    zone: &'a Name,
    op: Op,
    primary: SocketAddr,
    /// Local address to send from (`source` in the configuration).
    source: Option<IpAddr>,
}

/// The local address for talking to `peer`: `source`, or the unspecified
/// address of the peer's family (the system picks).
pub fn local_addr(peer: SocketAddr, source: Option<IpAddr>) -> SocketAddr {
    let ip = source.unwrap_or(if peer.is_ipv4() {
        IpAddr::from([0, 0, 0, 0])
    } else {
        IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
    });
    SocketAddr::new(ip, 0)
}

/// A TCP connection to `peer` from `source` when one is given.
pub async fn connect(peer: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(peer).await;
    };
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(peer).await
}

impl Ctx<'_> {
    fn err(&self, kind: impl Into<XfrErrorKind>) -> XfrError {
        XfrError {
            zone: self.zone.clone(),
            op: self.op,
            primary: self.primary,
            kind: kind.into(),
        }
    }
}

/// Signs `query` when a key is given; returns the bytes and the request MAC.
fn prepare(query: Vec<u8>, key: Option<&Key>) -> Result<(Vec<u8>, Option<Vec<u8>>), TsigError> {
    match key {
        Some(k) => {
            let s = tsig::sign_request(&query, k, tsig::now_secs())?;
            Ok((s.bytes, Some(s.mac)))
        }
        None => Ok((query, None)),
    }
}

/// Asks `primary` for the zone's SOA (and EDNS EXPIRE). UDP with one retry,
/// TCP if the answer is truncated.
pub async fn query_soa(
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Key>,
    timeout_each: Duration,
) -> Result<SoaResponse, XfrError> {
    query_soa_from(None, primary, zone, key, timeout_each).await
}

/// [`query_soa`] from the local address `source`.
pub async fn query_soa_from(
    source: Option<IpAddr>,
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Key>,
    timeout_each: Duration,
) -> Result<SoaResponse, XfrError> {
    let ctx = Ctx {
        zone,
        op: Op::SoaQuery,
        primary,
        source,
    };
    let id: u16 = rand::random();
    let (query, mac) = prepare(wire::soa_query(id, zone), key).map_err(|e| ctx.err(e))?;
    let sock = UdpSocket::bind(local_addr(primary, source))
        .await
        .map_err(|e| ctx.err(e))?;
    sock.connect(primary).await.map_err(|e| ctx.err(e))?;
    let mut reply = None;
    for _attempt in 0..2 {
        sock.send(&query).await.map_err(|e| ctx.err(e))?;
        let deadline = Instant::now() + timeout_each;
        // Wait for our ID; stray datagrams (late answers to an earlier try)
        // are skipped rather than failing the query.
        loop {
            let mut buf = vec![0u8; 65535];
            match timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(ctx.err(e)),
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    if buf.len() >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                        reply = Some(buf);
                        break;
                    }
                }
            }
        }
        if reply.is_some() {
            break;
        }
    }
    let reply = reply.ok_or_else(|| {
        ctx.err(XfrErrorKind::Timeout(
            timeout_each * 2,
            "no UDP answer after a retry",
        ))
    })?;
    let parsed = Message::parse(&reply).map_err(|e| ctx.err(e))?;
    let (reply, parsed) = if parsed.header.truncated() {
        let r = timeout(timeout_each, soa_over_tcp(primary, source, &query))
            .await
            .map_err(|_| ctx.err(XfrErrorKind::Timeout(timeout_each, "SOA over TCP")))?
            .map_err(|e| ctx.err(e))?;
        let p = Message::parse(&r).map_err(|e| ctx.err(e))?;
        (r, p)
    } else if parsed.header.rcode_low() != 0 {
        // Refused (or failed) over UDP: asked again over TCP, as BIND's
        // `try-tcp-refresh` does; Knot answers queries for a catalog zone
        // over TCP only. If TCP does no better, the UDP answer stands.
        match timeout(timeout_each, soa_over_tcp(primary, source, &query)).await {
            Ok(Ok(r)) => match Message::parse(&r) {
                Ok(p) if p.header.rcode_low() == 0 => (r, p),
                _ => (reply, parsed),
            },
            _ => (reply, parsed),
        }
    } else {
        (reply, parsed)
    };
    if let (Some(k), Some(mac)) = (key, &mac) {
        let mut v = StreamVerifier::new(k, mac);
        v.verify(&reply, &parsed, tsig::now_secs())
            .and_then(|()| v.finish())
            .map_err(|e| ctx.err(e))?;
    }
    soa_from_answer(zone, id, &parsed).map_err(|e| ctx.err(e))
}

async fn soa_over_tcp(
    primary: SocketAddr,
    source: Option<IpAddr>,
    query: &[u8],
) -> Result<Vec<u8>, XfrErrorKind> {
    let mut s = connect(primary, source).await?;
    write_framed(&mut s, query).await?;
    Ok(read_framed(&mut s).await?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before the answer",
        )
    })?)
}

fn soa_from_answer(zone: &Name, id: u16, msg: &Message) -> Result<SoaResponse, XfrErrorKind> {
    if msg.header.id != id || !msg.header.is_response() {
        return Err(InterpError::IdMismatch {
            got: msg.header.id,
            expected: id,
        }
        .into());
    }
    let rcode = msg.rcode();
    if rcode != 0 {
        return Err(InterpError::Rcode(wire::rcode_name(rcode)).into());
    }
    let rec = msg
        .answers
        .iter()
        .find(|r| r.rtype == RecordType::SOA && r.name == *zone && r.class == wire::CLASS_IN)
        .ok_or(XfrErrorKind::NoSoa)?;
    let soa = rec.to_record().map_err(|e| InterpError::BadRecord {
        name: rec.name.to_string(),
        rtype: rec.rtype,
        reason: e.to_string(),
    })?;
    let RData::SOA(data) = &soa.data else {
        return Err(XfrErrorKind::NoSoa);
    };
    Ok(SoaResponse {
        serial: data.serial,
        soa,
        expire: msg.edns_expire(),
    })
}

async fn write_framed(s: &mut TcpStream, msg: &[u8]) -> Result<(), XfrErrorKind> {
    let len = u16::try_from(msg.len()).map_err(|_| XfrErrorKind::TooLong(msg.len()))?;
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    s.write_all(&framed).await?;
    Ok(())
}

/// Reads one length-prefixed message; `None` on a clean close between
/// messages.
async fn read_framed(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Timeouts of one transfer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The whole transfer.
    pub transfer: Duration,
    /// Each wait for the primary.
    pub idle: Duration,
    /// The TCP connection (and never longer than `idle`): a first transfer
    /// asked without an SOA query first gives up on an unreachable primary
    /// as soon as that query would have.
    pub connect: Duration,
}

impl Timeouts {
    pub fn new(transfer: Duration, idle: Duration) -> Timeouts {
        Timeouts {
            transfer,
            idle,
            connect: idle,
        }
    }
}

async fn transfer(
    ctx: &Ctx<'_>,
    query: Vec<u8>,
    id: u16,
    request: Request,
    key: Option<&Key>,
    limits: Limits,
    t: Timeouts,
) -> Result<(Transfer, usize), XfrError> {
    let deadline = Instant::now() + t.transfer;
    let (query, mac) = prepare(query, key).map_err(|e| ctx.err(e))?;
    // Each wait ends at the idle timeout or the whole-transfer deadline,
    // whichever comes first.
    let step_within = |what: &'static str, idle: Duration| {
        let idle_end = Instant::now() + idle;
        if idle_end < deadline {
            (idle_end, XfrErrorKind::Timeout(idle, what))
        } else {
            (
                deadline,
                XfrErrorKind::Timeout(t.transfer, "whole transfer"),
            )
        }
    };
    let step = |what: &'static str| step_within(what, t.idle);
    let (at, on_timeout) = step_within("connecting", t.connect.min(t.idle));
    let mut s = timeout_at(at, connect(ctx.primary, ctx.source))
        .await
        .map_err(|_| ctx.err(on_timeout))?
        .map_err(|e| ctx.err(e))?;
    let (at, on_timeout) = step("sending the query");
    timeout_at(at, write_framed(&mut s, &query))
        .await
        .map_err(|_| ctx.err(on_timeout))?
        .map_err(|e| ctx.err(e))?;

    let mut interp = Interpreter::new(ctx.zone.clone(), id, request, limits);
    let mut verifier = match (key, &mac) {
        (Some(k), Some(m)) => Some(StreamVerifier::new(k, m)),
        _ => None,
    };
    loop {
        let (at, on_timeout) = step("waiting for the next message");
        let Some(msg) = timeout_at(at, read_framed(&mut s))
            .await
            .map_err(|_| ctx.err(on_timeout))?
            .map_err(|e| ctx.err(e))?
        else {
            // Closed before the closing SOA: finish() reports how far we got.
            break;
        };
        let parsed = Message::parse(&msg).map_err(|e| ctx.err(e))?;
        // TSIG first: a BADSIG/BADKEY reply also carries an error RCODE, and
        // the TSIG verdict is the useful one.
        if let Some(v) = verifier.as_mut() {
            v.verify(&msg, &parsed, tsig::now_secs())
                .map_err(|e| ctx.err(e))?;
        }
        let progress = interp
            .feed_parsed(msg.len(), &parsed)
            .map_err(|e| ctx.err(e))?;
        if progress == super::interp::Progress::Done {
            if let Some(v) = &verifier {
                v.finish().map_err(|e| ctx.err(e))?;
            }
            break;
        }
    }
    let signed = verifier.as_ref().map_or(0, StreamVerifier::signed_messages);
    Ok((interp.finish().map_err(|e| ctx.err(e))?, signed))
}

/// Transfers the whole zone from `primary` over TCP.
pub async fn axfr(
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Key>,
    limits: Limits,
    transfer_timeout: Duration,
    idle_timeout: Duration,
) -> Result<AxfrResult, XfrError> {
    let t = Timeouts::new(transfer_timeout, idle_timeout);
    axfr_from(None, primary, zone, key, limits, t).await
}

/// [`axfr`] from the local address `source`.
pub async fn axfr_from(
    source: Option<IpAddr>,
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Key>,
    limits: Limits,
    t: Timeouts,
) -> Result<AxfrResult, XfrError> {
    let ctx = Ctx {
        zone,
        op: Op::Axfr,
        primary,
        source,
    };
    let id: u16 = rand::random();
    let (tr, signed_messages) = transfer(
        &ctx,
        wire::axfr_query(id, zone),
        id,
        Request::Axfr,
        key,
        limits,
        t,
    )
    .await?;
    let TransferData::Full(records) = tr.data else {
        unreachable!("an AXFR interpreter only yields full transfers");
    };
    Ok(AxfrResult {
        records,
        expire: tr.expire,
        messages: tr.messages,
        signed_messages,
        bytes: tr.bytes,
    })
}

/// Asks `primary` for the changes since `our_soa` over TCP (RFC 1995). The
/// answer may be diffs, the whole zone, or "up to date".
pub async fn ixfr(
    primary: SocketAddr,
    zone: &Name,
    our_soa: &Record,
    key: Option<&Key>,
    limits: Limits,
    transfer_timeout: Duration,
    idle_timeout: Duration,
) -> Result<Transfer, XfrError> {
    let t = Timeouts::new(transfer_timeout, idle_timeout);
    ixfr_from(None, primary, zone, our_soa, key, limits, t).await
}

/// [`ixfr`] from the local address `source`.
pub async fn ixfr_from(
    source: Option<IpAddr>,
    primary: SocketAddr,
    zone: &Name,
    our_soa: &Record,
    key: Option<&Key>,
    limits: Limits,
    t: Timeouts,
) -> Result<Transfer, XfrError> {
    let ctx = Ctx {
        zone,
        op: Op::Ixfr,
        primary,
        source,
    };
    let RData::SOA(soa) = &our_soa.data else {
        return Err(ctx.err(XfrErrorKind::NoSoa));
    };
    let id: u16 = rand::random();
    let query = wire::ixfr_query(id, zone, our_soa).map_err(|e| ctx.err(e))?;
    let request = Request::Ixfr { serial: soa.serial };
    Ok(transfer(&ctx, query, id, request, key, limits, t).await?.0)
}
