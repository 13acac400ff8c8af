//! Zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995) and TSIG-signed
//! replies through hickory's response path.
//!
//! A transfer is written by a [`MessageWriter`] straight from the snapshot's
//! wire-form records, one message at a time, with the fast path's encoder
//! (`crate::fast::Encoder`): no hickory record is made for an AXFR, and the
//! caller asks for the next message only once the connection has taken the
//! last, so a client that stops reading holds up one message, not the zone.
//! Each message is signed as a whole ([`crate::tsig::StreamSigner`]) when
//! the request was.
//!
//! Single-message replies that must be signed (errors, answers to signed
//! queries, NOTIFY) still go through hickory, which encodes responses
//! itself (`ResponseHandler::send_response` takes records, not bytes) and
//! only appends a TSIG record we hand it. The MAC must cover the exact
//! octets hickory emits before that record, so each such message is encoded
//! twice from the same parts: once here with hickory's own
//! `destructive_emit` (same encoder, same compression, so the same octets)
//! to compute the MAC with [`crate::tsig`], then by hickory with the TSIG
//! record appended. The TSIG record is not covered by its own MAC, so how
//! hickory encodes its owner name does not matter.

use std::iter::{self, Peekable};
use std::sync::Arc;

use hickory_proto::op::{Edns, Metadata};
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError as HickoryTsigError};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use super::interp::IxfrDiff;
use crate::fast::{EncodeError, Encoder};
use crate::tsig::{self, Rejection, StreamSigner, TsigError};
use crate::zone::Zone;
use crate::zone::raw::RawRr;

/// A transfer message is closed once it holds this many octets: a few
/// hundred typical records. Smaller messages make back-pressure act sooner
/// and keep what a transfer holds small; larger ones would save little,
/// as the per-message overhead is the header, question, OPT and TSIG.
pub const MESSAGE_TARGET: usize = 16 * 1024;

/// The most a DNS message over TCP can carry.
const MAX_MESSAGE: usize = u16::MAX as usize;

/// Room kept at the end of each message for the TSIG record the signer
/// appends: key and algorithm names (at most 255 octets each), the fixed
/// fields and the longest MAC.
const TSIG_ROOM: usize = 2 * 255 + 16 + 64;

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
    #[error("a record of type {0} does not fit in a message")]
    RecordTooLarge(RecordType),
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

/// One record of a transfer: stored in wire form, or a hickory record (the
/// SOA, IXFR differences).
#[derive(Debug, Clone, Copy)]
pub enum OutRecord<'a> {
    Raw(RawRr<'a>),
    Record(&'a Record),
}

impl Content {
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Full(_) => "AXFR",
            Content::Incremental { .. } => "IXFR",
            Content::UpToDate(_) => "IXFR (up to date)",
        }
    }

    /// The serial the client gets.
    pub fn serial(&self) -> u32 {
        match self {
            Content::Full(z) | Content::UpToDate(z) => z.serial(),
            Content::Incremental { current, .. } => current.serial(),
        }
    }

    /// The records in the order they go out, made one at a time: a whole
    /// zone's straight from the snapshot.
    pub fn records(&self) -> Box<dyn Iterator<Item = OutRecord<'_>> + Send + '_> {
        match self {
            Content::Full(z) => Box::new(
                z.raw_records()
                    .map(OutRecord::Raw)
                    .chain(iter::once(OutRecord::Record(z.soa()))),
            ),
            Content::Incremental { current, diffs } => {
                let steps = diffs.iter().flat_map(|d| {
                    iter::once(OutRecord::Record(&d.old_soa))
                        .chain(d.deleted.iter().map(OutRecord::Raw))
                        .chain(iter::once(OutRecord::Record(&d.new_soa)))
                        .chain(d.added.iter().map(OutRecord::Raw))
                });
                Box::new(
                    iter::once(OutRecord::Record(current.soa()))
                        .chain(steps)
                        .chain(iter::once(OutRecord::Record(current.soa()))),
                )
            }
            Content::UpToDate(z) => Box::new(iter::once(OutRecord::Record(z.soa()))),
        }
    }
}

/// The OPT record of each transfer message: the client's DO bit, and the
/// EDNS EXPIRE value (RFC 7314) when the client asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptOut {
    pub dnssec_ok: bool,
    pub expire: Option<u32>,
}

/// Writes the messages of one transfer, each on request.
pub struct MessageWriter {
    id: u16,
    flags: u16,
    /// QNAME, QTYPE, QCLASS, repeated in every message.
    question: Vec<u8>,
    opt: Option<OptOut>,
    signer: Option<Signer>,
    buf: Vec<u8>,
    messages: usize,
    records: usize,
    bytes: usize,
}

impl MessageWriter {
    /// `flags` is the header's second word; `question` the question as it
    /// goes out (uncompressed, case kept).
    pub fn new(
        id: u16,
        flags: u16,
        question: Vec<u8>,
        opt: Option<OptOut>,
        signer: Option<Signer>,
    ) -> Self {
        MessageWriter {
            id,
            flags,
            question,
            opt,
            signer,
            buf: vec![0; MAX_MESSAGE],
            messages: 0,
            records: 0,
            bytes: 0,
        }
    }

    pub fn messages(&self) -> usize {
        self.messages
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// Octets written, TSIG records included.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The next message, with as many of `records` as [`MESSAGE_TARGET`]
    /// allows (a larger record alone, up to the DNS limit); `None` once
    /// every record has gone out (there is always at least one message).
    pub fn next_message<'a, I: Iterator<Item = OutRecord<'a>>>(
        &mut self,
        records: &mut Peekable<I>,
    ) -> Result<Option<Vec<u8>>, OutError> {
        if self.messages > 0 && records.peek().is_none() {
            return Ok(None);
        }
        let expire = self.opt.and_then(|o| o.expire).map(u32::to_be_bytes);
        let opt_room = self
            .opt
            .map_or(0, |_| 11 + expire.map_or(0, |e| 4 + e.len()));
        let mut enc = Encoder::new(&mut self.buf, MAX_MESSAGE - TSIG_ROOM);
        enc.reserve(opt_room);
        let head = enc
            .header(self.id, self.flags)
            .and_then(|()| enc.question(&self.question));
        if head.is_err() {
            return Err(OutError::RecordTooLarge(RecordType::Unknown(0)));
        }
        let mut count: u16 = 0;
        while let Some(r) = records.peek() {
            if count > 0 && (enc.len() >= MESSAGE_TARGET || count == u16::MAX) {
                break;
            }
            let mark = enc.mark();
            match put(&mut enc, r) {
                Ok(()) => {
                    count += 1;
                    records.next();
                }
                Err(EncodeError::Full) if count > 0 => {
                    enc.rewind(mark);
                    break;
                }
                Err(_) => {
                    let rtype = match r {
                        OutRecord::Raw(raw) => raw.record_type(),
                        OutRecord::Record(rec) => rec.record_type(),
                    };
                    return Err(OutError::RecordTooLarge(rtype));
                }
            }
        }
        enc.reserve(0);
        let mut additional = 0;
        if let Some(o) = self.opt {
            let options: Vec<(u16, &[u8])> = expire
                .as_ref()
                .map(|e| (crate::wire::EDNS_EXPIRE, &e[..]))
                .into_iter()
                .collect();
            enc.opt_with(o.dnssec_ok, &options)
                .expect("room was kept for the OPT");
            additional = 1;
        }
        enc.counts(1, count, 0, additional);
        let len = enc.len();
        let msg = &self.buf[..len];
        let out = match self.signer.as_mut() {
            Some(s) => s.sign(msg)?,
            None => msg.to_vec(),
        };
        self.messages += 1;
        self.records += usize::from(count);
        self.bytes += out.len();
        Ok(Some(out))
    }
}

/// Writes one record, names compressed as hickory would (RFC 3597 §4).
fn put(enc: &mut Encoder<'_>, r: &OutRecord<'_>) -> Result<(), EncodeError> {
    match *r {
        OutRecord::Raw(raw) => {
            enc.raw_record(raw.owner, raw.record_type(), raw.ttl, raw.rdata, &mut None)
        }
        OutRecord::Record(rec) => {
            crate::zone::raw::with_wire(rec, |owner, rtype, _class, ttl, rdata| {
                enc.raw_record(owner, RecordType::from(rtype), ttl, rdata, &mut None)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rr;
    use crate::tsig::{Algorithm, Key, StreamVerifier};
    use crate::wire::{self, Message};
    use crate::xfr::interp::{Interpreter, Request, TransferData};
    use hickory_proto::rr::Name;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn zone(hosts: u32, txt: usize) -> Arc<Zone> {
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
        for i in 0..hosts {
            let b = i.to_be_bytes();
            let owner = n(&format!("host-number-{i}.example."));
            records.push(rr::record(owner, RecordType::A, 60, &[10, b[1], b[2], b[3]]).unwrap());
        }
        // One record longer than a message's target size.
        if txt > 0 {
            let mut rdata = Vec::new();
            for _ in 0..txt.div_ceil(255) {
                rdata.push(255);
                rdata.extend(std::iter::repeat_n(b'x', 255));
            }
            records.push(rr::record(n("big.example."), RecordType::TXT, 60, &rdata).unwrap());
        }
        Arc::new(Zone::build(&origin, records, &Default::default()).unwrap())
    }

    fn question() -> Vec<u8> {
        let mut q = Vec::new();
        wire::put_name(&mut q, &n("Example."));
        q.extend_from_slice(&[0, 252, 0, 1]);
        q
    }

    fn all_messages(
        content: &Content,
        opt: Option<OptOut>,
        signer: Option<Signer>,
    ) -> (MessageWriter, Vec<Vec<u8>>) {
        let mut w = MessageWriter::new(0x4242, 0x8400, question(), opt, signer);
        let mut records = content.records().peekable();
        let mut out = Vec::new();
        while let Some(m) = w.next_message(&mut records).unwrap() {
            out.push(m);
        }
        (w, out)
    }

    #[test]
    fn signed_stream_verifies_and_is_compressed() {
        let origin = n("example.");
        let zone = zone(6000, 0);
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
            let signer = Signer::Stream(StreamSigner::new(&key, &verified.mac));
            let opt = OptOut {
                dnssec_ok: false,
                expire: Some(86400),
            };
            let (w, msgs) = all_messages(&Content::Full(zone.clone()), Some(opt), Some(signer));
            assert!(msgs.len() >= 10, "{} messages", msgs.len());
            assert_eq!(w.messages(), msgs.len());
            assert_eq!(w.records(), 6003);
            assert_eq!(w.bytes(), msgs.iter().map(Vec::len).sum::<usize>());
            let mut v = StreamVerifier::new(&key, &signed.mac);
            let mut interp =
                Interpreter::new(origin.clone(), 0x4242, Request::Axfr, Default::default());
            for m in &msgs {
                assert!(m.len() <= MESSAGE_TARGET + 1024, "{} octets", m.len());
                let p = Message::parse(m).unwrap();
                assert_eq!(p.questions.len(), 1);
                assert_eq!(p.questions[0].name.to_ascii(), "Example.");
                assert_eq!(
                    p.opt.as_ref().unwrap().option(wire::EDNS_EXPIRE),
                    Some(&86400u32.to_be_bytes()[..])
                );
                v.verify(m, &p, tsig::now_secs())
                    .unwrap_or_else(|e| panic!("{alg}: {e}"));
                interp.feed_parsed(m.len(), &p).unwrap();
            }
            v.finish().unwrap();
            let t = interp.finish().unwrap();
            match t.data {
                TransferData::Full(r) => assert_eq!(r.len(), 6002),
                other => panic!("{other:?}"),
            }
            // Every owner compressed: 33 octets a record against 40 in full.
            let total: usize = msgs.iter().map(Vec::len).sum();
            assert!(total < 6000 * 36, "{total} octets");
        }
    }

    #[test]
    fn a_record_larger_than_the_target_goes_alone() {
        let zone = zone(2000, 30_000);
        let (w, msgs) = all_messages(&Content::Full(zone), None, None);
        let mut seen = 0;
        let mut big = 0;
        for m in &msgs {
            let p = Message::parse(m).unwrap();
            assert!(m.len() <= MAX_MESSAGE);
            seen += p.answers.len();
            if p.answers.iter().any(|r| r.rtype == RecordType::TXT) {
                big += 1;
                assert!(m.len() > MESSAGE_TARGET, "the TXT alone is larger");
            }
        }
        assert_eq!(big, 1);
        assert_eq!(seen, 2000 + 4);
        assert_eq!(w.records(), seen);
    }

    #[test]
    fn up_to_date_is_one_message_with_the_soa() {
        let zone = zone(10, 0);
        let (_, msgs) = all_messages(&Content::UpToDate(zone), None, None);
        assert_eq!(msgs.len(), 1);
        let p = Message::parse(&msgs[0]).unwrap();
        assert_eq!(p.answers.len(), 1);
        assert_eq!(p.answers[0].rtype, RecordType::SOA);
        assert_eq!(p.header.flags, 0x8400);
        assert_eq!(p.header.id, 0x4242);
        assert!(p.opt.is_none());
    }
}
