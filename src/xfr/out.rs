//! Zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995) and TSIG-signed
//! replies through hickory's response path.
//!
//! hickory encodes responses itself (`ResponseHandler::send_response` takes
//! records, not bytes) and only appends a TSIG record we hand it. The MAC
//! must cover the exact octets hickory emits before that record, so each
//! signed message is encoded twice from the same parts: once here with
//! hickory's own `destructive_emit` (same encoder, same compression, so the
//! same octets) to compute the MAC with [`crate::tsig`], then by hickory
//! with the TSIG record appended. The TSIG record is not covered by its own
//! MAC, so how hickory encodes its owner name does not matter.
//!
//! A transfer is produced by a task of its own, one `send_response` per
//! message on a clone of the TCP response handle. hickory only writes queued
//! messages while it polls the connection, which it does not do while the
//! request handler runs; returning from the handler at once lets it stream
//! the messages out as they are made.

use std::iter;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Edns, Metadata};
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError as HickoryTsigError};
use hickory_proto::rr::{DNSClass, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tracing::{info, warn};

use super::interp::IxfrDiff;
use crate::tsig::{self, Rejection, StreamSigner, TsigError};
use crate::zone::Zone;

/// Records per message are cut so the uncompressed size stays below this:
/// compression only shrinks it, and the header, question, OPT and TSIG
/// (at most about 1 KiB) still fit in 64 KiB.
pub const MESSAGE_BUDGET: usize = 63 * 1024;

/// hickory compresses only the first 120 names of a message (its answer to
/// CVE-2024-8508) and writes the rest in full; messages are cut before that
/// so every name is compressed, at the price of more, smaller messages.
pub const NAMES_PER_MESSAGE: usize = 112;

#[derive(Debug, thiserror::Error)]
pub enum OutError {
    #[error("encoding the response: {0}")]
    Encode(#[from] hickory_proto::ProtoError),
    #[error("signing the response: {0}")]
    Tsig(#[from] TsigError),
    #[error("our own TSIG record does not parse at octet {0}")]
    BadTsigTail(usize),
    #[error("sending the response: {0}")]
    Send(#[from] hickory_server::net::NetError),
}

/// How the messages of a response are signed.
#[derive(Debug)]
pub enum Signer {
    /// A verified request: every message signed, chained to the request MAC.
    Stream(StreamSigner),
    /// A request whose TSIG failed: the error reply's TSIG (RFC 8945 §5.2).
    Reject(Box<Rejection>),
}

impl Signer {
    fn sign(&mut self, msg: &[u8]) -> Result<Vec<u8>, TsigError> {
        let now = tsig::now_secs();
        match self {
            Signer::Stream(s) => s.sign(msg, now),
            Signer::Reject(r) => r.sign_reply(msg, now),
        }
    }
}

/// Reads back the TSIG record our signer appended (uncompressed names, see
/// `tsig::append_tsig`) into hickory's form.
fn tsig_record(tail: &[u8]) -> Result<Record<TSIG>, OutError> {
    let mut d = BinDecoder::new(tail);
    let bad = |d: &BinDecoder<'_>| OutError::BadTsigTail(d.index());
    let name = hickory_proto::rr::Name::read(&mut d).map_err(|_| bad(&d))?;
    let u16_ = |d: &mut BinDecoder<'_>| -> Result<u16, OutError> {
        d.read_u16()
            .map(|v| v.unverified())
            .map_err(|_| OutError::BadTsigTail(d.index()))
    };
    // Type, class, TTL (2 × 16 bits), RDLENGTH.
    for _ in 0..5 {
        u16_(&mut d)?;
    }
    let algorithm = hickory_proto::rr::Name::read(&mut d).map_err(|_| bad(&d))?;
    let time = (u64::from(u16_(&mut d)?) << 32)
        | (u64::from(u16_(&mut d)?) << 16)
        | u64::from(u16_(&mut d)?);
    let fudge = u16_(&mut d)?;
    let mac_len = usize::from(u16_(&mut d)?);
    let mac = d
        .read_vec(mac_len)
        .map_err(|_| bad(&d))?
        .unverified()
        .to_vec();
    let oid = u16_(&mut d)?;
    let error = u16_(&mut d)?;
    let other_len = usize::from(u16_(&mut d)?);
    let other = d
        .read_vec(other_len)
        .map_err(|_| bad(&d))?
        .unverified()
        .to_vec();
    let rdata = TSIG::new(
        // The exact name our MAC covered, rather than hickory's spelling.
        TsigAlgorithm::Unknown(algorithm),
        time,
        fudge,
        mac,
        oid,
        (error != 0).then(|| HickoryTsigError::from(error)),
        other,
    );
    let mut rec = Record::from_rdata(name, 0, rdata);
    rec.dns_class = DNSClass::ANY;
    Ok(rec)
}

/// The record sections of one message.
#[derive(Debug, Clone, Copy)]
pub struct Sections<'s, 'a> {
    pub answers: &'s [&'a Record],
    pub authority: &'s [&'a Record],
    pub additional: &'s [&'a Record],
}

/// Sends one message made of `meta`, the request's question and `answers`,
/// signed when `signer` is given.
pub async fn send<R: ResponseHandler>(
    handle: &mut R,
    protocol: Protocol,
    queries: &Queries,
    meta: Metadata,
    answers: &[&Record],
    edns: Option<&Edns>,
    signer: Option<&mut Signer>,
) -> Result<ResponseInfo, OutError> {
    let sections = Sections {
        answers,
        authority: &[],
        additional: &[],
    };
    send_sections(handle, protocol, queries, meta, sections, edns, signer).await
}

/// Sends one message with all three record sections, signed when `signer`
/// is given.
pub async fn send_sections<R: ResponseHandler>(
    handle: &mut R,
    protocol: Protocol,
    queries: &Queries,
    meta: Metadata,
    sections: Sections<'_, '_>,
    edns: Option<&Edns>,
    signer: Option<&mut Signer>,
) -> Result<ResponseInfo, OutError> {
    let build = || {
        let mut r = MessageResponseBuilder::new(queries, None).build(
            meta,
            sections.answers.iter().copied(),
            sections.authority.iter().copied(),
            iter::empty(),
            sections.additional.iter().copied(),
        );
        if let Some(e) = edns {
            r.set_edns(e);
        }
        r
    };
    let Some(signer) = signer else {
        return Ok(handle.send_response(build()).await?);
    };
    let mut unsigned = Vec::with_capacity(512);
    {
        let mut enc = BinEncoder::new(&mut unsigned);
        // The limit hickory's `MessageResponse::encode` applies, so that a
        // truncated message would be truncated identically.
        enc.set_max_size(match protocol {
            Protocol::Udp => edns.map_or(512, Edns::max_payload),
            _ => u16::MAX,
        });
        build().destructive_emit(&mut enc)?;
    }
    let signed = signer.sign(&unsigned)?;
    let mut response = build();
    if signed.len() > unsigned.len() {
        response.set_signature(Box::new(tsig_record(&signed[unsigned.len()..])?));
    }
    Ok(handle.send_response(response).await?)
}

/// What a transfer sends.
#[derive(Debug, Clone)]
pub enum Content {
    /// The whole zone: SOA, every other record, SOA.
    Full(Arc<Zone>),
    /// IXFR: the newest SOA, then each difference sequence, then the newest
    /// SOA again.
    Incremental {
        current: Arc<Zone>,
        diffs: Vec<Arc<IxfrDiff>>,
    },
    /// IXFR from a serial not older than ours: our SOA alone (RFC 1995 §4).
    UpToDate(Arc<Zone>),
}

impl Content {
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Full(_) => "AXFR",
            Content::Incremental { .. } => "IXFR",
            Content::UpToDate(_) => "IXFR (up to date)",
        }
    }

    /// The records in the order they go out. A whole zone's are made one
    /// at a time from the snapshot, so an AXFR of a big zone never holds
    /// them all as hickory records.
    fn records(&self) -> Box<dyn Iterator<Item = Record> + Send + '_> {
        match self {
            Content::Full(z) => Box::new(z.records().chain(iter::once(z.soa().clone()))),
            Content::Incremental { current, diffs } => {
                let records = |raw: &'_ crate::zone::RawRecords| {
                    raw.iter()
                        .filter_map(|r| r.to_record().ok())
                        .collect::<Vec<_>>()
                };
                let mut v = vec![current.soa().clone()];
                for d in diffs {
                    v.push(d.old_soa.clone());
                    v.extend(records(&d.deleted));
                    v.push(d.new_soa.clone());
                    v.extend(records(&d.added));
                }
                v.push(current.soa().clone());
                Box::new(v.into_iter())
            }
            Content::UpToDate(z) => Box::new(iter::once(z.soa().clone())),
        }
    }
}

fn wire_estimate(r: &Record) -> usize {
    r.name.len() + 1 + 10 + crate::rr::rdata_len(&r.data)
}

/// Names hickory may compress in a record: the owner, and those inside the
/// RDATA of the types we decode (other types go out as raw bytes).
fn compressible_names(r: &Record) -> usize {
    use hickory_proto::rr::RData;
    1 + match r.data {
        RData::SOA(_) => 2,
        RData::NS(_) | RData::CNAME(_) | RData::PTR(_) | RData::MX(_) => 1,
        _ => 0,
    }
}

/// What the message being filled holds so far.
#[derive(Default)]
struct Budget {
    records: usize,
    size: usize,
    names: usize,
}

impl Budget {
    /// Whether `r` must start a new message: the current one is not empty
    /// and would go over [`MESSAGE_BUDGET`] or [`NAMES_PER_MESSAGE`].
    fn full_before(&self, r: &Record) -> bool {
        self.records > 0
            && (self.size + wire_estimate(r) > MESSAGE_BUDGET
                || self.names + compressible_names(r) > NAMES_PER_MESSAGE)
    }

    fn add(&mut self, r: &Record) {
        self.records += 1;
        self.size += wire_estimate(r);
        self.names += compressible_names(r);
    }
}

/// Splits records into consecutive message bodies within [`MESSAGE_BUDGET`]
/// and [`NAMES_PER_MESSAGE`].
pub fn split(records: &[&Record]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut budget = Budget::default();
    for (i, r) in records.iter().enumerate() {
        if budget.full_before(r) {
            out.push(start..i);
            start = i;
            budget = Budget::default();
        }
        budget.add(r);
    }
    if start < records.len() || out.is_empty() {
        out.push(start..records.len());
    }
    out
}

/// Everything a transfer task needs, owned.
pub struct Transfer<R> {
    pub handle: R,
    pub queries: Queries,
    pub meta: Metadata,
    pub edns: Option<Edns>,
    pub signer: Option<Signer>,
    pub content: Content,
    /// For the log line: zone and peer.
    pub zone: String,
    pub peer: std::net::SocketAddr,
}

impl<R: ResponseHandler> Transfer<R> {
    /// Streams the transfer in the background over TCP.
    pub fn spawn(self) {
        tokio::spawn(self.run());
    }

    async fn run(mut self) {
        let started = Instant::now();
        let kind = self.content.kind();
        let content = self.content.clone();
        let mut records = content.records().peekable();
        let (mut total, mut messages) = (0, 0);
        let mut chunk: Vec<Record> = Vec::new();
        // Always one message, even for no records.
        while messages == 0 || records.peek().is_some() {
            chunk.clear();
            let mut budget = Budget::default();
            while let Some(r) = records.next_if(|r| !budget.full_before(r)) {
                budget.add(&r);
                chunk.push(r);
            }
            let refs: Vec<&Record> = chunk.iter().collect();
            messages += 1;
            total += refs.len();
            let result = send(
                &mut self.handle,
                Protocol::Tcp,
                &self.queries,
                self.meta,
                &refs,
                self.edns.as_ref(),
                self.signer.as_mut(),
            )
            .await;
            if let Err(e) = result {
                warn!(zone = %self.zone, peer = %self.peer, message = messages,
                      "{kind} out aborted: {e}");
                return;
            }
        }
        info!(zone = %self.zone, peer = %self.peer, records = total,
              messages, signed = self.signer.is_some(),
              seconds = started.elapsed().as_secs_f64(), "{kind} out queued");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rr;
    use crate::tsig::{Algorithm, Key, StreamVerifier};
    use crate::wire::{self, Message};
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::{Name, RecordType};
    use std::sync::Mutex;

    /// Captures what hickory would put on the wire.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Vec<u8>>>>);

    #[async_trait::async_trait]
    impl ResponseHandler for Capture {
        async fn send_response<'a>(
            &mut self,
            response: hickory_server::zone_handler::MessageResponse<
                '_,
                'a,
                impl Iterator<Item = &'a Record> + Send + 'a,
                impl Iterator<Item = &'a Record> + Send + 'a,
                impl Iterator<Item = &'a Record> + Send + 'a,
                impl Iterator<Item = &'a Record> + Send + 'a,
            >,
        ) -> Result<ResponseInfo, hickory_server::net::NetError> {
            // The encoding `ResponseHandle` uses for TCP.
            let mut buf = Vec::new();
            let mut enc = BinEncoder::new(&mut buf);
            enc.set_max_size(u16::MAX);
            let info = response.destructive_emit(&mut enc)?;
            self.0.lock().unwrap().push(buf);
            Ok(info)
        }
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[tokio::test]
    async fn signed_stream_verifies_and_is_compressed() {
        let origin = n("example.");
        let mut soa = Vec::new();
        wire::put_name(&mut soa, &n("ns1.example."));
        wire::put_name(&mut soa, &n("h.example."));
        for x in [7u32, 3600, 600, 86400, 300] {
            soa.extend_from_slice(&x.to_be_bytes());
        }
        let mut records = vec![rr::record(origin.clone(), RecordType::SOA, 60, &soa).unwrap()];
        let mut ns = Vec::new();
        wire::put_name(&mut ns, &n("ns1.example."));
        records.push(rr::record(origin.clone(), RecordType::NS, 60, &ns).unwrap());
        for i in 0..6000u32 {
            let b = i.to_be_bytes();
            let owner = n(&format!("host-number-{i}.example."));
            records.push(rr::record(owner, RecordType::A, 60, &[10, b[1], b[2], b[3]]).unwrap());
        }
        let zone = Arc::new(Zone::build(&origin, records, &Default::default()).unwrap());
        for alg in [
            Algorithm::HmacMd5,
            Algorithm::HmacSha256,
            Algorithm::HmacSha512,
        ] {
            let key = Key::new(n("Transfer.Key."), alg, b"secret-secret-secret".to_vec());
            let query = wire::axfr_query(0x4242, &origin);
            let signed = tsig::sign_request(&query, &key, tsig::now_secs()).unwrap();
            let parsed = Message::parse(&signed.bytes).unwrap();
            let verified = tsig::verify_request(
                &signed.bytes,
                &parsed,
                std::slice::from_ref(&key),
                tsig::now_secs(),
            )
            .unwrap()
            .unwrap();
            let mut dec = BinDecoder::new(&signed.bytes[12..]);
            let queries = Queries::read(&mut dec, 1).unwrap();
            let mut meta = Metadata::new(0x4242, MessageType::Response, OpCode::Query);
            meta.authoritative = true;
            let capture = Capture::default();
            Transfer {
                handle: capture.clone(),
                queries,
                meta,
                edns: None,
                signer: Some(Signer::Stream(StreamSigner::new(&key, &verified.mac))),
                content: Content::Full(zone.clone()),
                zone: "example.".into(),
                peer: "127.0.0.1:1".parse().unwrap(),
            }
            .run()
            .await;
            let msgs = capture.0.lock().unwrap().clone();
            assert!(msgs.len() >= 50, "{} messages", msgs.len());
            let mut v = StreamVerifier::new(&key, &signed.mac);
            let mut interp = super::super::interp::Interpreter::new(
                origin.clone(),
                0x4242,
                super::super::interp::Request::Axfr,
                Default::default(),
            );
            for m in &msgs {
                let p = Message::parse(m).unwrap();
                v.verify(m, &p, tsig::now_secs())
                    .unwrap_or_else(|e| panic!("{alg}: {e}"));
                interp.feed_parsed(m.len(), &p).unwrap();
            }
            v.finish().unwrap();
            let t = interp.finish().unwrap();
            match t.data {
                super::super::interp::TransferData::Full(r) => assert_eq!(r.len(), 6002),
                other => panic!("{other:?}"),
            }
            // Every owner compressed: 33 octets a record against 40 in full.
            let total: usize = msgs.iter().map(Vec::len).sum();
            assert!(total < 6000 * 36, "{total} octets");
        }
    }

    #[test]
    fn split_respects_budget() {
        let recs: Vec<Record> = (0..5000u32)
            .map(|i| {
                rr::record(
                    n(&format!("h{i}.example.")),
                    RecordType::TXT,
                    60,
                    &[200; 201][..],
                )
                .unwrap()
            })
            .collect();
        let refs: Vec<&Record> = recs.iter().collect();
        let parts = split(&refs);
        assert!(parts.len() > 10);
        assert_eq!(parts.iter().map(|r| r.len()).sum::<usize>(), 5000);
        for p in parts {
            let size: usize = refs[p].iter().map(|r| wire_estimate(r)).sum();
            assert!(size <= MESSAGE_BUDGET);
        }
    }
}
