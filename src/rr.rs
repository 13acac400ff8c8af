//! Record data as Outpost keeps it.
//!
//! Records are hickory [`Record`]s, but only the types whose RDATA the answer
//! engine must look inside (A, AAAA, NS, CNAME, MX, PTR, SOA) are decoded into
//! hickory's typed RDATA. Every other type, DNSSEC types included, is kept as
//! `RData::Unknown` holding the exact uncompressed wire bytes: hickory's typed
//! codecs are lossy or lowercase names for some types (CAA, SRV, SVCB), and a
//! secondary must hand on exactly what the primary signed.

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, Restrict,
};

#[derive(Debug, thiserror::Error)]
pub enum RrError {
    #[error("bad {rtype} RDATA: {reason}")]
    BadRdata { rtype: RecordType, reason: String },
}

/// Types whose RDATA is decoded into hickory's typed form.
pub fn is_interpreted(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::A
            | RecordType::AAAA
            | RecordType::NS
            | RecordType::CNAME
            | RecordType::MX
            | RecordType::PTR
            | RecordType::SOA
    )
}

/// Builds RDATA from its uncompressed wire form.
pub fn rdata_from_wire(rtype: RecordType, wire: &[u8]) -> Result<RData, RrError> {
    if is_interpreted(rtype) {
        let len = u16::try_from(wire.len()).map_err(|_| RrError::BadRdata {
            rtype,
            reason: "longer than 65535 octets".into(),
        })?;
        let mut dec = BinDecoder::new(wire);
        let rdata =
            RData::read(&mut dec, rtype, Restrict::new(len)).map_err(|e| RrError::BadRdata {
                rtype,
                reason: e.to_string(),
            })?;
        if dec.index() != wire.len() {
            return Err(RrError::BadRdata {
                rtype,
                reason: format!("{} trailing octets", wire.len() - dec.index()),
            });
        }
        Ok(rdata)
    } else {
        // NULL::with debug-asserts non-empty data; empty RDATA is legal (APL, NULL).
        let rdata = if wire.is_empty() {
            NULL::new()
        } else {
            NULL::with(wire.to_vec())
        };
        Ok(RData::Unknown { code: rtype, rdata })
    }
}

/// The uncompressed wire form of RDATA, names in their original case.
pub fn rdata_to_wire(rdata: &RData) -> Vec<u8> {
    if let RData::Unknown { rdata, .. } = rdata {
        return rdata.anything.clone();
    }
    let mut buf = Vec::with_capacity(32);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_canonical_form(false);
    enc.set_name_encoding(hickory_proto::serialize::binary::NameEncoding::Uncompressed);
    // Interpreted types are small and fixed; encoding them cannot fail.
    rdata.emit(&mut enc).expect("encoding interpreted RDATA");
    buf
}

/// Builds a record from owner, type, TTL and uncompressed RDATA.
pub fn record(name: Name, rtype: RecordType, ttl: u32, wire: &[u8]) -> Result<Record, RrError> {
    Ok(Record::from_rdata(name, ttl, rdata_from_wire(rtype, wire)?))
}

/// Reads a domain name at the start of `wire` (uncompressed), returning it and
/// its length on the wire.
pub fn read_name(wire: &[u8]) -> Option<(Name, usize)> {
    let mut dec = BinDecoder::new(wire);
    let name = Name::read(&mut dec).ok()?;
    Some((name, dec.index()))
}

/// Length of RDATA on the wire, uncompressed. The types an answer holds as
/// parsed records (the negative answer's SOA above all) are counted without
/// encoding them: this runs for every NXDOMAIN the cache does not hold.
pub fn rdata_len(rdata: &RData) -> usize {
    match rdata {
        RData::Unknown { rdata, .. } => rdata.anything.len(),
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::NS(n) => name_wire_len(&n.0),
        RData::CNAME(n) => name_wire_len(&n.0),
        RData::PTR(n) => name_wire_len(&n.0),
        RData::MX(mx) => 2 + name_wire_len(&mx.exchange),
        RData::SOA(soa) => name_wire_len(&soa.mname) + name_wire_len(&soa.rname) + 20,
        other => rdata_to_wire(other).len(),
    }
}

/// Length of `name` on the wire, uncompressed.
pub fn name_wire_len(name: &Name) -> usize {
    // `Name::len` counts the text form: a dot per label plus the labels,
    // which is the wire form less its final zero octet; the root is "."
    // there and one zero octet here.
    if name.is_root() { 1 } else { name.len() + 1 }
}

/// A zone's name as messages show it: without the trailing dot, except for
/// the root.
pub fn zone_text(zone: &Name) -> String {
    let s = zone.to_string();
    if s.len() > 1 {
        s.trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SOA};

    /// The lengths counted without encoding agree with the encoding.
    #[test]
    fn rdata_len_matches_the_wire() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let all = [
            RData::SOA(SOA::new(
                n("ns1.example.com."),
                n("hostmaster.example.com."),
                2026010101,
                3600,
                600,
                3_600_000,
                300,
            )),
            RData::SOA(SOA::new(n("."), n("."), 1, 2, 3, 4, 5)),
            RData::MX(MX::new(900, n("mx.partner.example.net."))),
            RData::MX(MX::new(0, n("."))),
            RData::NS(NS(n("a.b."))),
            RData::CNAME(CNAME(n("x.example."))),
            RData::PTR(PTR(n("host.example"))),
        ];
        for r in all {
            assert_eq!(rdata_len(&r), rdata_to_wire(&r).len(), "{r:?}");
        }
    }
}
