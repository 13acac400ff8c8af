//! Outpost's own UDP path in front of the hickory `RequestHandler`.
//!
//! hickory-server's UDP loop answers FORMERR to any datagram it cannot
//! parse, even one with QR=1, which turns the server into a reflector, and
//! sizes UDP answers from the EDNS size we advertise rather than the one the
//! client offered. This loop drops responses and runts before parsing,
//! encodes with the client's limit, and runs one socket per worker with
//! SO_REUSEPORT so the kernel spreads queries over the cores.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use socket2::{Domain, Socket, Type};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics::Events;
use crate::serve::{Handler, MAX_UDP_PAYLOAD};

#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    #[error("binding UDP {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// Binds `workers` sockets to `addr` and serves each in its own task.
pub fn spawn(
    addr: SocketAddr,
    workers: usize,
    handler: Handler,
    events: Arc<Events>,
    shutdown: CancellationToken,
) -> Result<(), UdpError> {
    for _ in 0..workers.max(1) {
        let socket = bind(addr).map_err(|error| UdpError::Bind { addr, error })?;
        let handler = handler.clone();
        let events = events.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let socket = Arc::new(socket);
            tokio::select! {
                _ = serve(socket, handler, events) => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
    Ok(())
}

fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Bursts must not overflow the receive queue while a worker is busy.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

async fn serve(socket: Arc<UdpSocket>, handler: Handler, events: Arc<Events>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (len, src) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors from earlier sends surface here; keep going.
                debug!(error = %e, "UDP receive");
                continue;
            }
        };
        let wire = &buf[..len];
        // Runts and responses get no answer: answering them reflects.
        if len < 12 || wire[2] & 0x80 != 0 || src.port() == 0 {
            continue;
        }
        let request = match Request::from_bytes(wire.to_vec(), src, Protocol::Udp) {
            Ok(r) => r,
            Err(e) => {
                debug!(%src, error = %e, "malformed query");
                if let Some(reply) = formerr(wire) {
                    let _ = socket.send_to(&reply, src).await;
                }
                continue;
            }
        };
        let limit = request
            .edns
            .as_ref()
            .map_or(512, |e| e.max_payload().clamp(512, MAX_UDP_PAYLOAD));
        let responder = UdpResponder {
            socket: socket.clone(),
            dst: src,
            limit,
            events: events.clone(),
        };
        handler
            .handle_request::<_, TokioTime>(&request, responder)
            .await;
    }
}

/// A bare FORMERR header for a query we could not parse.
fn formerr(wire: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(wire)).ok()?;
    let mut meta = Metadata::response_from_request(&header.metadata);
    meta.message_type = MessageType::Response;
    meta.response_code = ResponseCode::FormErr;
    let header = Header {
        metadata: meta,
        counts: HeaderCounts::default(),
    };
    header.to_bytes().ok()
}

#[derive(Clone)]
struct UdpResponder {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
    limit: u16,
    events: Arc<Events>,
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
        self.socket.send_to(&buf, self.dst).await?;
        self.events.udp_response_sizes.record(buf.len());
        Ok(info)
    }
}
