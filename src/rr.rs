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

/// Length of RDATA on the wire, uncompressed.
pub fn rdata_len(rdata: &RData) -> usize {
    match rdata {
        RData::Unknown { rdata, .. } => rdata.anything.len(),
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        other => rdata_to_wire(other).len(),
    }
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
