//! Records in wire form, the way a zone is taken in and kept.
//!
//! A hickory `Record` is 272 octets whatever it holds; a million of them is
//! more memory than Knot needs for the whole zone. A transfer or a zone file
//! is therefore gathered into one [`RawRecords`] buffer (owner, type, class,
//! TTL and RDATA back to back, names uncompressed and in their original
//! case), and the snapshot keeps each name's records as bytes too. hickory
//! records are made from these bytes only where a slow path needs them.

use hickory_proto::rr::{Name, Record, RecordType};

use super::key::MAX_NAME;

/// Records gathered for a zone build, in the order they came.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawRecords {
    /// Per record: owner length (1 octet), owner, type, class, TTL, RDATA
    /// length (2 octets), RDATA.
    buf: Vec<u8>,
    count: usize,
}

/// One record of a [`RawRecords`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRr<'a> {
    /// Uncompressed wire form, original case.
    pub owner: &'a [u8],
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// Names uncompressed, original case.
    pub rdata: &'a [u8],
}

impl RawRr<'_> {
    pub fn record_type(&self) -> RecordType {
        RecordType::from(self.rtype)
    }

    /// The hickory record, for the paths that need one.
    pub fn to_record(&self) -> Result<Record, crate::rr::RrError> {
        let name = name_from_wire(self.owner);
        crate::rr::record(name, self.record_type(), self.ttl, self.rdata)
    }
}

impl RawRecords {
    pub fn new() -> Self {
        RawRecords::default()
    }

    pub fn with_capacity(octets: usize) -> Self {
        RawRecords {
            buf: Vec::with_capacity(octets),
            count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Octets held.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Adds a record; `owner` must be an uncompressed name of at most 255
    /// octets and `rdata` at most 65535 octets (both hold for anything read
    /// from a message or a zone file).
    pub fn push(&mut self, owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) {
        debug_assert!(owner.len() <= MAX_NAME && rdata.len() <= u16::MAX as usize);
        self.buf.push(owner.len() as u8);
        self.buf.extend_from_slice(owner);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
        self.count += 1;
    }

    pub fn push_record(&mut self, r: &Record) {
        with_wire(r, |owner, rtype, class, ttl, rdata| {
            self.push(owner, rtype, class, ttl, rdata)
        });
    }

    pub fn iter(&self) -> RawIter<'_> {
        RawIter {
            buf: &self.buf,
            at: 0,
        }
    }

    /// The record starting at `offset` (as [`RawIter::offset`] gave it).
    pub fn at(&self, offset: usize) -> RawRr<'_> {
        read_entry(&self.buf, offset).0
    }

    /// The records as stored, for writing them out whole (the journal).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Records from [`RawRecords::as_bytes`] of an earlier run; `None` when
    /// `buf` is not a sequence of `count` well-formed entries.
    pub fn from_bytes(buf: Vec<u8>, count: usize) -> Option<RawRecords> {
        let mut at = 0;
        let mut n = 0;
        while at < buf.len() {
            let olen = *buf.get(at)? as usize;
            let owner = buf.get(at + 1..at + 1 + olen)?;
            if name_len(owner) != Some(olen) {
                return None;
            }
            let p = at + 1 + olen;
            let rdlen = u16::from_be_bytes(buf.get(p + 8..p + 10)?.try_into().ok()?) as usize;
            at = p + 10 + rdlen;
            if at > buf.len() {
                return None;
            }
            n += 1;
        }
        (n == count).then_some(RawRecords { buf, count })
    }

    /// Everything as hickory records (tests, small zones, slow paths).
    pub fn to_records(&self) -> Result<Vec<Record>, crate::rr::RrError> {
        self.iter().map(|r| r.to_record()).collect()
    }
}

impl FromIterator<Record> for RawRecords {
    fn from_iter<I: IntoIterator<Item = Record>>(iter: I) -> Self {
        let mut raw = RawRecords::new();
        for r in iter {
            raw.push_record(&r);
        }
        raw
    }
}

impl<'a> FromIterator<&'a Record> for RawRecords {
    fn from_iter<I: IntoIterator<Item = &'a Record>>(iter: I) -> Self {
        let mut raw = RawRecords::new();
        for r in iter {
            raw.push_record(r);
        }
        raw
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The entry at `at` and the offset of the next one.
pub(super) fn read_entry(buf: &[u8], at: usize) -> (RawRr<'_>, usize) {
    let olen = buf[at] as usize;
    let owner = &buf[at + 1..at + 1 + olen];
    let p = at + 1 + olen;
    let rdlen = u16_at(buf, p + 8) as usize;
    let rr = RawRr {
        owner,
        rtype: u16_at(buf, p),
        class: u16_at(buf, p + 2),
        ttl: u32_at(buf, p + 4),
        rdata: &buf[p + 10..p + 10 + rdlen],
    };
    (rr, p + 10 + rdlen)
}

pub struct RawIter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl RawIter<'_> {
    /// Where the next record starts.
    pub fn offset(&self) -> usize {
        self.at
    }
}

impl<'a> Iterator for RawIter<'a> {
    type Item = RawRr<'a>;

    fn next(&mut self) -> Option<RawRr<'a>> {
        if self.at >= self.buf.len() {
            return None;
        }
        let (rr, next) = read_entry(self.buf, self.at);
        self.at = next;
        Some(rr)
    }
}

/// Calls `f` with a record's owner, type, class, TTL and RDATA in wire form.
pub fn with_wire<T>(r: &Record, f: impl FnOnce(&[u8], u16, u16, u32, &[u8]) -> T) -> T {
    let mut owner = [0u8; MAX_NAME];
    let n = name_to_wire(&r.name, &mut owner);
    let rdata = crate::rr::rdata_to_wire(&r.data);
    f(
        &owner[..n],
        u16::from(r.record_type()),
        u16::from(r.dns_class),
        r.ttl,
        &rdata,
    )
}

/// Writes `name` in uncompressed wire form, case kept; returns the length.
pub fn name_to_wire(name: &Name, out: &mut [u8; MAX_NAME]) -> usize {
    let mut n = 0;
    for label in name.iter() {
        out[n] = label.len() as u8;
        out[n + 1..n + 1 + label.len()].copy_from_slice(label);
        n += label.len() + 1;
    }
    out[n] = 0;
    n + 1
}

/// A hickory name from a valid uncompressed wire name.
pub fn name_from_wire(wire: &[u8]) -> Name {
    crate::rr::read_name(wire)
        .map(|(n, _)| n)
        .unwrap_or_else(Name::root)
}

/// The length of the uncompressed name at the start of `wire`, if it is a
/// valid one (labels of at most 63 octets, at most 255 in all, no
/// pointers).
pub fn name_len(wire: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let n = *wire.get(i)? as usize;
        if n == 0 {
            return (i < MAX_NAME).then_some(i + 1);
        }
        if n > 63 {
            return None;
        }
        i += n + 1;
        if i >= MAX_NAME {
            return None;
        }
    }
}

/// Checks RDATA of the types Outpost reads (A, AAAA, NS, CNAME, MX, PTR,
/// SOA) for the shape the answer engine relies on; other types are opaque.
pub fn check_rdata(rtype: u16, rdata: &[u8]) -> Result<(), String> {
    let want_names = |prefix: usize, names: usize, tail: usize| -> Result<(), String> {
        if rdata.len() < prefix {
            return Err(format!(
                "{} octets, at least {prefix} expected",
                rdata.len()
            ));
        }
        let mut at = prefix;
        for _ in 0..names {
            let l = name_len(&rdata[at..]).ok_or("not a valid uncompressed name")?;
            at += l;
        }
        if rdata.len() != at + tail {
            return Err(format!("{} octets, {} expected", rdata.len(), at + tail));
        }
        Ok(())
    };
    match rtype {
        1 if rdata.len() != 4 => Err(format!("{} octets, 4 expected", rdata.len())),
        28 if rdata.len() != 16 => Err(format!("{} octets, 16 expected", rdata.len())),
        2 | 5 | 12 => want_names(0, 1, 0),
        15 => want_names(2, 1, 0),
        6 => want_names(0, 2, 20),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_equality() {
        let name = Name::from_ascii("Www.Example.com.").unwrap();
        let r =
            crate::rr::record(name.clone(), RecordType::MX, 300, b"\x00\x0a\x02MX\x00").unwrap();
        let raw: RawRecords = std::iter::once(&r).collect();
        assert_eq!(raw.len(), 1);
        let back = raw.iter().next().unwrap();
        assert_eq!(back.owner, b"\x03Www\x07Example\x03com\x00");
        assert_eq!(back.to_record().unwrap(), r);
    }

    #[test]
    fn bytes_round_trip_and_validation() {
        let mut raw = RawRecords::new();
        raw.push(b"\x03www\x00", 1, 1, 60, &[192, 0, 2, 1]);
        raw.push(b"\x00", 16, 1, 60, b"\x02hi");
        let back = RawRecords::from_bytes(raw.as_bytes().to_vec(), 2).unwrap();
        assert_eq!(back, raw);
        assert!(RawRecords::from_bytes(raw.as_bytes().to_vec(), 3).is_none());
        let mut cut = raw.as_bytes().to_vec();
        cut.pop();
        assert!(RawRecords::from_bytes(cut, 2).is_none());
        assert!(RawRecords::from_bytes(vec![9, 1, 2], 1).is_none());
    }

    #[test]
    fn rdata_checks() {
        assert!(check_rdata(1, &[1, 2, 3, 4]).is_ok());
        assert!(check_rdata(1, &[1, 2, 3]).is_err());
        assert!(check_rdata(28, &[0; 15]).is_err());
        assert!(check_rdata(2, b"\x02ns\x00").is_ok());
        assert!(check_rdata(2, b"\x02ns\x00\x00").is_err());
        assert!(check_rdata(2, b"\xc0\x0c").is_err());
        assert!(check_rdata(15, b"\x00\x0a\x00").is_ok());
        assert!(check_rdata(15, b"\x00").is_err());
        let mut soa = b"\x02ns\x00\x04host\x00".to_vec();
        soa.extend_from_slice(&[0; 20]);
        assert!(check_rdata(6, &soa).is_ok());
        soa.pop();
        assert!(check_rdata(6, &soa).is_err());
        assert!(check_rdata(99, b"anything").is_ok());
    }
}
