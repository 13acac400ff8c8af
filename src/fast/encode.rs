//! A DNS message writer over a caller's buffer: no allocation, and name
//! compression against everything written so far, the question included.

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zone::key::MAX_NAME;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The next record does not fit in the limit.
    #[error("answer does not fit in the UDP limit")]
    Full,
    /// RDATA of a type this writer does not know; the hickory path answers.
    #[error("RDATA kind not handled by the fast path")]
    Unsupported,
}

/// Compression targets remembered: enough for every name of a typical
/// answer; names after the table is full are just written whole.
const MAX_TARGETS: usize = 48;
/// Pointers address the first 16 KiB only (RFC 1035 §4.1.4).
const MAX_POINTER: usize = 0x3FFF;

/// A point in a message being written: its length, and the compression
/// targets known then (targets only ever point backwards).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    len: usize,
    ntargets: usize,
}

pub struct Encoder<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Where writing must stop: the limit minus room kept for the OPT.
    end: usize,
    limit: usize,
    /// Offsets of label starts written in full, candidates for pointers,
    /// with the uncompressed length of the name from there: a name is only
    /// compared with targets of its own length, which rules out nearly all
    /// of them with one comparison.
    targets: [u16; MAX_TARGETS],
    target_lens: [u8; MAX_TARGETS],
    ntargets: usize,
}

impl<'b> Encoder<'b> {
    /// Writes into `buf`, never past `limit` octets.
    pub fn new(buf: &'b mut [u8], limit: usize) -> Self {
        let limit = limit.min(buf.len());
        Encoder {
            buf,
            len: 0,
            end: limit,
            limit,
            targets: [0; MAX_TARGETS],
            target_lens: [0; MAX_TARGETS],
            ntargets: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the message stands, to go back to with [`Encoder::rewind`].
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.len,
            ntargets: self.ntargets,
        }
    }

    /// Forgets everything written since `mark` was taken: a record that did
    /// not fit whole leaves nothing behind.
    pub fn rewind(&mut self, mark: Mark) {
        self.len = mark.len;
        self.ntargets = mark.ntargets;
    }

    /// Keeps `room` octets at the end free for what goes last (the OPT).
    pub fn reserve(&mut self, room: usize) {
        self.end = self.limit.saturating_sub(room);
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.len + bytes.len();
        if end > self.end {
            return Err(EncodeError::Full);
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn put_u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }

    fn put_u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }

    fn set_u16(&mut self, at: usize, v: u16) {
        self.buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// ID and flags; the counts are set at the end.
    pub fn header(&mut self, id: u16, flags: u16) -> Result<(), EncodeError> {
        self.put_u16(id)?;
        self.put_u16(flags)?;
        self.put(&[0; 8])
    }

    pub fn set_flags(&mut self, flags: u16) {
        self.set_u16(2, flags);
    }

    pub fn counts(&mut self, qd: u16, an: u16, ns: u16, ar: u16) {
        self.set_u16(4, qd);
        self.set_u16(6, an);
        self.set_u16(8, ns);
        self.set_u16(10, ar);
    }

    /// The query's own question, copied as sent so its case is kept; its
    /// name becomes the first compression target, so owners equal to the
    /// query name point at it (0xC00C) and take the client's case, as
    /// 0x20-randomising resolvers expect.
    pub fn question(&mut self, question: &[u8]) -> Result<(), EncodeError> {
        let start = self.len;
        self.put(question)?;
        let mut name_len = 0;
        while question[name_len] != 0 {
            name_len += question[name_len] as usize + 1;
        }
        self.add_labels(start, question, name_len, 1);
        Ok(())
    }

    fn add_target(&mut self, at: usize, len: usize) {
        if at <= MAX_POINTER && self.ntargets < MAX_TARGETS {
            self.targets[self.ntargets] = at as u16;
            self.target_lens[self.ntargets] = len as u8;
            self.ntargets += 1;
        }
    }

    /// Whether the name at `at` in the message equals `suffix` (wire form,
    /// ending with the root), ignoring ASCII case.
    fn equals(&self, mut at: usize, suffix: &[u8]) -> bool {
        let mut i = 0;
        loop {
            let mut n = self.buf[at];
            // Only our own backward pointers are in the buffer.
            while n & 0xC0 == 0xC0 {
                at = (((n & 0x3F) as usize) << 8) | self.buf[at + 1] as usize;
                n = self.buf[at];
            }
            if n != suffix[i] {
                return false;
            }
            if n == 0 {
                return true;
            }
            let n = n as usize;
            let (a, b) = (&self.buf[at + 1..at + 1 + n], &suffix[i + 1..i + 1 + n]);
            // Zone data and most queries agree in case: try the cheap
            // comparison first.
            if a != b && !a.eq_ignore_ascii_case(b) {
                return false;
            }
            at += n + 1;
            i += n + 1;
        }
    }

    /// Writes a name in wire form, compressed against earlier names.
    pub fn name_wire(&mut self, wire: &[u8]) -> Result<(), EncodeError> {
        let mut i = 0;
        while wire[i] != 0 {
            let suffix = &wire[i..];
            let hit = (0..self.ntargets).find(|&k| {
                self.target_lens[k] as usize == suffix.len()
                    && self.equals(self.targets[k] as usize, suffix)
            });
            if let Some(k) = hit {
                let start = self.len;
                self.put(&wire[..i])?;
                self.put_u16(0xC000 | self.targets[k])?;
                self.add_labels(start, wire, i, suffix.len());
                return Ok(());
            }
            i += wire[i] as usize + 1;
        }
        let start = self.len;
        self.put(wire)?;
        self.add_labels(start, wire, wire.len() - 1, 1);
        Ok(())
    }

    /// Remembers the labels `wire[..upto]` just written at `start`, the
    /// name ending in `tail` more octets (the root, or what a pointer
    /// stands for).
    fn add_labels(&mut self, start: usize, wire: &[u8], upto: usize, tail: usize) {
        let mut k = 0;
        while k < upto {
            self.add_target(start + k, upto - k + tail);
            k += wire[k] as usize + 1;
        }
    }

    pub fn name(&mut self, name: &Name) -> Result<(), EncodeError> {
        let mut wire = [0u8; MAX_NAME];
        let n = crate::zone::raw::name_to_wire(name, &mut wire);
        self.name_wire(&wire[..n])
    }

    /// One resource record. Names inside RDATA are compressed only for the
    /// RFC 1035 types (NS, CNAME, PTR, MX, SOA), never for others (RFC 3597
    /// §4), as hickory does.
    ///
    /// `owner` is where this record's owner was written before, if it was:
    /// records of one RRset share it, so later ones repeat the first one's
    /// pointer, or point at it, instead of encoding the name again.
    pub fn record(&mut self, r: &Record, owner: &mut Option<usize>) -> Result<(), EncodeError> {
        if !self.repeat_owner(*owner)? {
            *owner = Some(self.len);
            self.name(&r.name)?;
        }
        self.put_u16(u16::from(r.record_type()))?;
        self.put_u16(u16::from(r.dns_class))?;
        self.put_u32(r.ttl)?;
        let rdlen_at = self.len;
        self.put_u16(0)?;
        match &r.data {
            RData::A(a) => self.put(&a.0.octets())?,
            RData::AAAA(a) => self.put(&a.0.octets())?,
            RData::NS(n) => self.name(&n.0)?,
            RData::CNAME(n) => self.name(&n.0)?,
            RData::PTR(n) => self.name(&n.0)?,
            RData::MX(mx) => {
                self.put_u16(mx.preference)?;
                self.name(&mx.exchange)?;
            }
            RData::SOA(soa) => {
                self.name(&soa.mname)?;
                self.name(&soa.rname)?;
                self.put_u32(soa.serial)?;
                self.put_u32(soa.refresh as u32)?;
                self.put_u32(soa.retry as u32)?;
                self.put_u32(soa.expire as u32)?;
                self.put_u32(soa.minimum)?;
            }
            RData::Unknown { rdata, .. } => self.put(&rdata.anything)?,
            _ => return Err(EncodeError::Unsupported),
        }
        let rdlen = self.len - rdlen_at - 2;
        self.set_u16(rdlen_at, rdlen as u16);
        Ok(())
    }

    /// Writes the owner written before at `owner` again, as a pointer;
    /// `false` (nothing written) when there is none to point at.
    fn repeat_owner(&mut self, owner: Option<usize>) -> Result<bool, EncodeError> {
        match owner {
            Some(at) if self.buf[at] & 0xC0 == 0xC0 => {
                let pointer = [self.buf[at], self.buf[at + 1]];
                self.put(&pointer)?;
                Ok(true)
            }
            Some(at) if at <= MAX_POINTER => {
                self.put_u16(0xC000 | at as u16)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// [`Encoder::record`] from a stored record: owner and RDATA in wire
    /// form (names uncompressed), compressed the same way.
    pub fn raw_record(
        &mut self,
        owner_wire: &[u8],
        rtype: RecordType,
        ttl: u32,
        rdata: &[u8],
        owner: &mut Option<usize>,
    ) -> Result<(), EncodeError> {
        if !self.repeat_owner(*owner)? {
            *owner = Some(self.len);
            self.name_wire(owner_wire)?;
        }
        self.put_u16(u16::from(rtype))?;
        self.put_u16(1)?;
        self.put_u32(ttl)?;
        let rdlen_at = self.len;
        self.put_u16(0)?;
        // The stored RDATA was checked at build: names are where the type
        // says they are.
        match rtype {
            RecordType::NS | RecordType::CNAME | RecordType::PTR => self.name_wire(rdata)?,
            RecordType::MX => {
                self.put(&rdata[..2])?;
                self.name_wire(&rdata[2..])?;
            }
            RecordType::SOA => {
                let first = crate::zone::raw::name_len(rdata).ok_or(EncodeError::Unsupported)?;
                let second =
                    crate::zone::raw::name_len(&rdata[first..]).ok_or(EncodeError::Unsupported)?;
                self.name_wire(&rdata[..first])?;
                self.name_wire(&rdata[first..first + second])?;
                self.put(&rdata[first + second..])?;
            }
            _ => self.put(rdata)?,
        }
        let rdlen = self.len - rdlen_at - 2;
        self.set_u16(rdlen_at, rdlen as u16);
        Ok(())
    }

    /// Our OPT: payload 1232, version 0, the client's DO bit, and an
    /// option when given (code, data): an Extended DNS Error.
    pub fn opt(
        &mut self,
        dnssec_ok: bool,
        option: Option<(u16, &[u8])>,
    ) -> Result<(), EncodeError> {
        match option {
            None => self.opt_with(dnssec_ok, &[]),
            Some(o) => self.opt_with(dnssec_ok, &[o]),
        }
    }

    /// Our OPT with the given options (code, data).
    pub fn opt_with(
        &mut self,
        dnssec_ok: bool,
        options: &[(u16, &[u8])],
    ) -> Result<(), EncodeError> {
        self.put(&[0])?;
        self.put_u16(41)?;
        self.put_u16(crate::serve::MAX_UDP_PAYLOAD)?;
        self.put(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0])?;
        let rdlen: usize = options.iter().map(|(_, d)| 4 + d.len()).sum();
        self.put_u16(rdlen as u16)?;
        for (code, data) in options {
            self.put_u16(*code)?;
            self.put_u16(data.len() as u16)?;
            self.put(data)?;
        }
        Ok(())
    }
}
