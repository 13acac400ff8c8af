//! A small blocking DNS client for tests, and a semantic comparison of
//! responses.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

#[derive(Debug, Clone, Copy)]
pub struct Q {
    pub tcp: bool,
    /// EDNS UDP size; None for no EDNS.
    pub edns: Option<u16>,
    pub dnssec_ok: bool,
    pub rd: bool,
}

impl Default for Q {
    fn default() -> Self {
        Q {
            tcp: false,
            edns: Some(1232),
            dnssec_ok: false,
            rd: false,
        }
    }
}

impl Q {
    pub fn udp() -> Self {
        Q::default()
    }
    pub fn tcp() -> Self {
        Q {
            tcp: true,
            ..Q::default()
        }
    }
    pub fn plain_udp() -> Self {
        Q {
            edns: None,
            ..Q::default()
        }
    }
}

pub fn build_query(name: &str, qtype: RecordType, q: Q) -> Vec<u8> {
    let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = q.rd;
    msg.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    if let Some(size) = q.edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(q.dnssec_ok);
        msg.edns = Some(e);
    }
    msg.to_bytes().unwrap()
}

fn rand_id() -> u16 {
    use std::time::{SystemTime, UNIX_EPOCH};
    (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        & 0xffff) as u16
}

pub fn exchange_raw(addr: SocketAddr, wire: &[u8], tcp: bool) -> std::io::Result<Vec<u8>> {
    exchange_timeout(addr, wire, tcp, Duration::from_secs(3))
}

pub fn exchange_timeout(
    addr: SocketAddr,
    wire: &[u8],
    tcp: bool,
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    if tcp {
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        let mut buf = (wire.len() as u16).to_be_bytes().to_vec();
        buf.extend_from_slice(wire);
        s.write_all(&buf)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len)?;
        let mut out = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut out)?;
        Ok(out)
    } else {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.set_read_timeout(Some(timeout))?;
        s.send_to(wire, addr)?;
        let mut buf = vec![0u8; 65535];
        let (n, _) = s.recv_from(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

pub fn query(addr: SocketAddr, name: &str, qtype: RecordType, q: Q) -> Message {
    let wire = build_query(name, qtype, q);
    let out = exchange_raw(addr, &wire, q.tcp)
        .unwrap_or_else(|e| panic!("query {name} {qtype} to {addr}: {e}"));
    Message::from_bytes(&out).unwrap_or_else(|e| panic!("parse answer to {name} {qtype}: {e}"))
}

/// A record in a form two servers' answers can be compared in: lowercase
/// owner, type, TTL and the RDATA's text.
pub type Rr = (String, RecordType, u32, String);

pub fn rr(r: &Record) -> Rr {
    // hickory prints unknown types generically; both sides go through it.
    let data = r.data.to_string().to_lowercase();
    (
        r.name.to_ascii().to_lowercase(),
        r.record_type(),
        r.ttl,
        data,
    )
}

pub fn set(records: &[Record]) -> BTreeSet<Rr> {
    records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(rr)
        .collect()
}

/// The parts of a response that must agree between two authoritative
/// servers. Additional data is reduced to addresses, the part resolvers use.
#[derive(Debug, PartialEq, Eq)]
pub struct Semantic {
    pub rcode: ResponseCode,
    pub aa: bool,
    pub tc: bool,
    pub answer: BTreeSet<Rr>,
    pub authority: BTreeSet<Rr>,
    pub additional: BTreeSet<Rr>,
}

/// Reduces a response to what is compared. `apex_ns` is dropped from the
/// authority of positive answers, where BIND with `minimal-responses no`
/// adds it and Outpost (like Knot and NSD) leaves it out; the addresses of
/// those name servers go with it unless an answer record needs them.
pub fn semantic(msg: &Message, apex: &str) -> Semantic {
    let apex = apex.to_lowercase();
    let answer = set(&msg.answers);
    let positive = !answer.is_empty();
    let authority: BTreeSet<Rr> = set(&msg.authorities)
        .into_iter()
        .filter(|r| !(positive && r.1 == RecordType::NS && r.0 == apex))
        .collect();
    // Names whose addresses are legitimately in the additional section.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for r in msg.answers.iter().chain(msg.authorities.iter()) {
        let target = match &r.data {
            RData::MX(mx) => Some(mx.exchange.clone()),
            RData::NS(ns)
                if !(positive && r.name.to_ascii().to_lowercase() == apex)
                    || msg
                        .answers
                        .iter()
                        .any(|a| a.record_type() == RecordType::NS) =>
            {
                Some(ns.0.clone())
            }
            RData::SRV(srv) => Some(srv.target.clone()),
            _ => None,
        };
        if let Some(t) = target {
            wanted.insert(t.to_ascii().to_lowercase());
        }
    }
    let additional = set(&msg.additionals)
        .into_iter()
        .filter(|r| matches!(r.1, RecordType::A | RecordType::AAAA) && wanted.contains(&r.0))
        .collect();
    let tc = msg.metadata.truncation;
    Semantic {
        rcode: msg.metadata.response_code,
        aa: msg.metadata.authoritative,
        tc,
        answer: if tc { BTreeSet::new() } else { answer },
        authority: if tc { BTreeSet::new() } else { authority },
        additional: if tc { BTreeSet::new() } else { additional },
    }
}
