//! Shared test fixtures. Each integration test binary uses a different subset,
//! so unused items are expected here.
#![allow(dead_code)]

pub mod dns;
pub mod fakeprimary;
pub mod outpost;
pub mod peers;
pub mod procstat;
pub mod xfr;

use ::outpost::rr;
use ::outpost::wire::put_name;
use hickory_proto::rr::{Name, Record, RecordType};
use std::time::{Duration, Instant};

/// A zone built in code: its master-file text and the exact records a
/// transfer must yield, made from the same data so they cannot drift apart.
pub struct TestZone {
    pub origin: String,
    pub serial: u32,
    pub text: String,
    /// (owner lowercase, type, TTL, uncompressed RDATA), sorted.
    pub expected: Vec<(String, u16, u32, Vec<u8>)>,
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn name_wire(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    put_name(&mut v, &n(s));
    v
}

impl TestZone {
    /// SOA, NS, the NS's address, then `extra` records cycling through A,
    /// AAAA, TXT, MX, SRV and CNAME (the name-bearing types exercise
    /// decompression, the others byte-exact copying).
    pub fn new(origin: &str, serial: u32, extra: usize) -> Self {
        let o = origin.trim_end_matches('.').to_string();
        let mut text = format!("$ORIGIN {o}.\n$TTL 3600\n");
        let mut expected = Vec::new();
        let mut push = |owner: String,
                        rtype: RecordType,
                        ttl: u32,
                        rdata: Vec<u8>,
                        line: String,
                        text: &mut String| {
            text.push_str(&line);
            text.push('\n');
            expected.push((owner, u16::from(rtype), ttl, rdata));
        };
        let mut soa = name_wire(&format!("ns1.{o}."));
        soa.extend(name_wire(&format!("hostmaster.{o}.")));
        for x in [serial, 3600, 600, 86400, 300] {
            soa.extend_from_slice(&x.to_be_bytes());
        }
        push(
            format!("{o}."),
            RecordType::SOA,
            3600,
            soa,
            format!("@ 3600 IN SOA ns1 hostmaster {serial} 3600 600 86400 300"),
            &mut text,
        );
        push(
            format!("{o}."),
            RecordType::NS,
            3600,
            name_wire(&format!("ns1.{o}.")),
            "@ 3600 IN NS ns1".into(),
            &mut text,
        );
        push(
            format!("ns1.{o}."),
            RecordType::A,
            3600,
            vec![192, 0, 2, 53],
            "ns1 3600 IN A 192.0.2.53".into(),
            &mut text,
        );
        for i in 0..extra {
            let owner = format!("h{i}.{o}.");
            let rel = format!("h{i}");
            let ttl = 300 + (i % 7) as u32;
            let (rtype, rdata, rtext) = match i % 6 {
                0 => {
                    let b = (i as u32).to_be_bytes();
                    (
                        RecordType::A,
                        vec![10, b[1], b[2], b[3]],
                        format!("A 10.{}.{}.{}", b[1], b[2], b[3]),
                    )
                }
                1 => {
                    let mut v = vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0];
                    v.extend_from_slice(&(i as u32).to_be_bytes());
                    (
                        RecordType::AAAA,
                        v,
                        format!("AAAA 2001:db8::{:x}:{:x}", i >> 16, i & 0xffff),
                    )
                }
                2 => {
                    let s = format!("record {i} text");
                    let mut v = vec![s.len() as u8];
                    v.extend_from_slice(s.as_bytes());
                    (RecordType::TXT, v, format!("TXT \"{s}\""))
                }
                3 => {
                    let mut v = ((i % 50) as u16).to_be_bytes().to_vec();
                    v.extend(name_wire(&format!("mail{}.{o}.", i % 10)));
                    (RecordType::MX, v, format!("MX {} mail{}", i % 50, i % 10))
                }
                4 => {
                    let mut v = Vec::new();
                    for x in [10u16, 20, 5060] {
                        v.extend_from_slice(&x.to_be_bytes());
                    }
                    v.extend(name_wire(&format!("sip{}.{o}.", i % 10)));
                    (RecordType::SRV, v, format!("SRV 10 20 5060 sip{}", i % 10))
                }
                _ => (
                    RecordType::CNAME,
                    name_wire(&format!("h{}.{o}.", i - 1)),
                    format!("CNAME h{}", i - 1),
                ),
            };
            push(
                owner,
                rtype,
                ttl,
                rdata,
                format!("{rel} {ttl} IN {rtext}"),
                &mut text,
            );
        }
        expected.sort();
        TestZone {
            origin: format!("{o}."),
            serial,
            text,
            expected,
        }
    }

    pub fn name(&self) -> Name {
        n(&self.origin)
    }

    pub fn len(&self) -> usize {
        self.expected.len()
    }
}

/// Records in the comparable form of [`TestZone::expected`], sorted.
pub fn comparable(records: &[Record]) -> Vec<(String, u16, u32, Vec<u8>)> {
    let mut v: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.name.to_ascii().to_ascii_lowercase(),
                u16::from(r.record_type()),
                r.ttl,
                rr::rdata_to_wire(&r.data),
            )
        })
        .collect();
    v.sort();
    v
}

/// Polls `f` every 20 ms until it holds; panics naming `what` after
/// `within`. Returns how long it took.
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
