//! A small DNS message reader and writer working on raw bytes.
//!
//! Zone transfers and TSIG need things hickory's `Message` hides or loses: the
//! exact offset of the TSIG record (the MAC covers the bytes before it), the
//! RDATA of unknown types byte-exact, and messages that must be parsed even when
//! hickory's typed codecs would reject them. Every read is bounds-checked and
//! errors out instead of panicking: the bytes come from the network.

use hickory_proto::rr::{Name, Record, RecordType};

use crate::rr;

/// Header flag bits (RFC 1035 §4.1.1).
pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_RA: u16 = 0x0080;

pub const OPCODE_QUERY: u8 = 0;
pub const OPCODE_NOTIFY: u8 = 4;

pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

pub const TYPE_OPT: u16 = 41;
pub const TYPE_TSIG: u16 = 250;

/// EDNS EXPIRE option code (RFC 7314).
pub const EDNS_EXPIRE: u16 = 9;

/// The UDP payload size we advertise: the DNS flag day 2020 value, which
/// avoids IP fragmentation on ordinary paths.
pub const EDNS_UDP_SIZE: u16 = 1232;

const HEADER_LEN: usize = 12;
/// A pointer chain longer than this is a loop or an attack.
const MAX_POINTERS: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message truncated at offset {0}")]
    Truncated(usize),
    #[error("bad domain name at offset {offset}: {reason}")]
    BadName { offset: usize, reason: &'static str },
    #[error("bad RDATA of type {rtype} at offset {offset}: {reason}")]
    BadRdata {
        rtype: RecordType,
        offset: usize,
        reason: String,
    },
    #[error("{0} trailing octets after the last record")]
    Trailing(usize),
    #[error("OPT record misplaced or duplicated")]
    BadOpt,
    #[error("TSIG record is not the last record of the additional section")]
    MisplacedTsig,
    #[error("message too large: {0}")]
    TooLarge(&'static str),
}

/// The mnemonic of an RCODE, as dig prints it.
pub fn rcode_name(rcode: u16) -> String {
    let s = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        other => return format!("RCODE{other}"),
    };
    s.to_string()
}

/// The fixed 12-octet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TC != 0
    }
    pub fn authoritative(&self) -> bool {
        self.flags & FLAG_AA != 0
    }
    /// The low four bits of the RCODE; see [`Message::rcode`] for the full one.
    pub fn rcode_low(&self) -> u8 {
        (self.flags & 0xf) as u8
    }

    fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        Ok(Header {
            id: r.u16()?,
            flags: r.u16()?,
            qdcount: r.u16()?,
            ancount: r.u16()?,
            nscount: r.u16()?,
            arcount: r.u16()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
    pub qclass: u16,
}

/// A resource record as read from the wire, RDATA uncompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord {
    pub name: Name,
    pub rtype: RecordType,
    pub class: u16,
    pub ttl: u32,
    /// RDATA with embedded names decompressed for the RFC 3597 §4 types;
    /// byte-exact for every other type.
    pub rdata: Vec<u8>,
    /// Offset of the first octet of the record in the message.
    pub offset: usize,
}

impl WireRecord {
    /// Converts to the representation the rest of Outpost keeps.
    pub fn to_record(&self) -> Result<Record, rr::RrError> {
        rr::record(self.name.clone(), self.rtype, self.ttl, &self.rdata)
    }
}

/// The EDNS OPT pseudo-record (RFC 6891).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub udp_size: u16,
    pub ext_rcode: u8,
    pub version: u8,
    pub flags: u16,
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Opt {
    pub fn option(&self, code: u16) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }
}

/// The TSIG pseudo-record (RFC 8945 §4.2) and where it sits in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigRr {
    /// Offset of the TSIG record; the MAC covers the bytes before it.
    pub offset: usize,
    pub key_name: Name,
    pub algorithm: Name,
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
}

/// A parsed message. OPT and TSIG are lifted out of the additional section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<WireRecord>,
    pub authority: Vec<WireRecord>,
    pub additional: Vec<WireRecord>,
    pub opt: Option<Opt>,
    pub tsig: Option<TsigRr>,
}

impl Message {
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let header = Header::parse(buf)?;
        let mut r = Reader::new(buf);
        r.pos = HEADER_LEN;
        // Counts are attacker-controlled: never pre-allocate from them.
        let mut questions = Vec::new();
        for _ in 0..header.qdcount {
            let name = r.name()?;
            let qtype = RecordType::from(r.u16()?);
            let qclass = r.u16()?;
            questions.push(Question {
                name,
                qtype,
                qclass,
            });
        }
        let mut answers = Vec::new();
        for _ in 0..header.ancount {
            let rec = r.record()?;
            check_not_meta(&rec)?;
            answers.push(rec);
        }
        let mut authority = Vec::new();
        for _ in 0..header.nscount {
            let rec = r.record()?;
            check_not_meta(&rec)?;
            authority.push(rec);
        }
        let mut additional = Vec::new();
        let mut opt = None;
        let mut tsig = None;
        for i in 0..header.arcount {
            let start = r.pos;
            let rec = r.record()?;
            match u16::from(rec.rtype) {
                TYPE_OPT => {
                    if opt.is_some() || !rec.name.is_root() {
                        return Err(WireError::BadOpt);
                    }
                    opt = Some(parse_opt(&rec)?);
                }
                TYPE_TSIG => {
                    if i + 1 != header.arcount {
                        return Err(WireError::MisplacedTsig);
                    }
                    tsig = Some(parse_tsig(buf, start, &rec)?);
                }
                _ => additional.push(rec),
            }
        }
        if r.pos != buf.len() {
            return Err(WireError::Trailing(buf.len() - r.pos));
        }
        Ok(Message {
            header,
            questions,
            answers,
            authority,
            additional,
            opt,
            tsig,
        })
    }

    /// The full 12-bit RCODE, combining the header and the OPT extension.
    pub fn rcode(&self) -> u16 {
        let high = self.opt.as_ref().map_or(0, |o| u16::from(o.ext_rcode));
        (high << 4) | u16::from(self.header.rcode_low())
    }

    /// The EDNS EXPIRE value (RFC 7314), if the server sent one.
    pub fn edns_expire(&self) -> Option<u32> {
        let v = self.opt.as_ref()?.option(EDNS_EXPIRE)?;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }
}

fn check_not_meta(rec: &WireRecord) -> Result<(), WireError> {
    match u16::from(rec.rtype) {
        TYPE_OPT => Err(WireError::BadOpt),
        TYPE_TSIG => Err(WireError::MisplacedTsig),
        _ => Ok(()),
    }
}

fn parse_opt(rec: &WireRecord) -> Result<Opt, WireError> {
    let mut r = Reader::new(&rec.rdata);
    let mut options = Vec::new();
    while r.pos < rec.rdata.len() {
        let code = r.u16()?;
        let len = usize::from(r.u16()?);
        options.push((code, r.bytes(len)?.to_vec()));
    }
    Ok(Opt {
        udp_size: rec.class,
        ext_rcode: (rec.ttl >> 24) as u8,
        version: (rec.ttl >> 16) as u8,
        flags: rec.ttl as u16,
        options,
    })
}

fn parse_tsig(msg: &[u8], offset: usize, rec: &WireRecord) -> Result<TsigRr, WireError> {
    let bad = |reason: &str| WireError::BadRdata {
        rtype: RecordType::from(TYPE_TSIG),
        offset,
        reason: reason.to_string(),
    };
    if rec.class != CLASS_ANY || rec.ttl != 0 {
        return Err(bad("class must be ANY and TTL 0"));
    }
    // The algorithm name must not be compressed (RFC 8945 §4.2), so the RDATA
    // stands on its own.
    let _ = msg;
    let mut r = Reader::new(&rec.rdata);
    let algorithm = r.name_no_pointers()?;
    let hi = u64::from(r.u16()?);
    let lo = u64::from(r.u32()?);
    let fudge = r.u16()?;
    let mac_len = usize::from(r.u16()?);
    let mac = r.bytes(mac_len)?.to_vec();
    let original_id = r.u16()?;
    let error = r.u16()?;
    let other_len = usize::from(r.u16()?);
    let other = r.bytes(other_len)?.to_vec();
    if r.pos != rec.rdata.len() {
        return Err(bad("trailing octets"));
    }
    Ok(TsigRr {
        offset,
        key_name: rec.name.clone(),
        algorithm,
        time_signed: (hi << 32) | lo,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// A bounds-checked cursor over a whole message (pointers need the whole).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(WireError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a possibly compressed name, appending its uncompressed wire form
    /// to `out`.
    fn name_wire(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start_len = out.len();
        let mut pos = self.pos;
        let mut jumped = false;
        let mut hops = 0;
        loop {
            let len = *self.buf.get(pos).ok_or(WireError::Truncated(pos))?;
            match len & 0xc0 {
                0x00 => {
                    let l = usize::from(len);
                    let label = self
                        .buf
                        .get(pos + 1..pos + 1 + l)
                        .ok_or(WireError::Truncated(pos))?;
                    out.push(len);
                    out.extend_from_slice(label);
                    if out.len() - start_len > 255 {
                        return Err(WireError::BadName {
                            offset: self.pos,
                            reason: "longer than 255 octets",
                        });
                    }
                    pos += 1 + l;
                    if l == 0 {
                        break;
                    }
                }
                0xc0 => {
                    let lo = *self.buf.get(pos + 1).ok_or(WireError::Truncated(pos))?;
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(lo);
                    // Only backward pointers: forward ones allow loops and are
                    // never produced by real servers.
                    if target >= pos {
                        return Err(WireError::BadName {
                            offset: pos,
                            reason: "forward compression pointer",
                        });
                    }
                    hops += 1;
                    if hops > MAX_POINTERS {
                        return Err(WireError::BadName {
                            offset: pos,
                            reason: "compression pointer loop",
                        });
                    }
                    if !jumped {
                        self.pos = pos + 2;
                        jumped = true;
                    }
                    pos = target;
                }
                _ => {
                    return Err(WireError::BadName {
                        offset: pos,
                        reason: "unsupported label type",
                    });
                }
            }
        }
        if !jumped {
            self.pos = pos;
        }
        Ok(())
    }

    fn name(&mut self) -> Result<Name, WireError> {
        let offset = self.pos;
        let mut wire = Vec::with_capacity(32);
        self.name_wire(&mut wire)?;
        name_from_wire(&wire, offset)
    }

    /// A name that must stand alone (no compression), as in TSIG RDATA.
    fn name_no_pointers(&mut self) -> Result<Name, WireError> {
        let offset = self.pos;
        let mut wire = Vec::new();
        loop {
            let len = self.u8()?;
            if len & 0xc0 != 0 {
                return Err(WireError::BadName {
                    offset,
                    reason: "compressed or extended label where none is allowed",
                });
            }
            wire.push(len);
            wire.extend_from_slice(self.bytes(usize::from(len))?);
            if wire.len() > 255 {
                return Err(WireError::BadName {
                    offset,
                    reason: "longer than 255 octets",
                });
            }
            if len == 0 {
                break;
            }
        }
        name_from_wire(&wire, offset)
    }

    fn record(&mut self) -> Result<WireRecord, WireError> {
        let offset = self.pos;
        let name = self.name()?;
        let rtype = RecordType::from(self.u16()?);
        let class = self.u16()?;
        let ttl = self.u32()?;
        let rdlen = usize::from(self.u16()?);
        let rdstart = self.pos;
        let rdend = rdstart
            .checked_add(rdlen)
            .filter(|&e| e <= self.buf.len())
            .ok_or(WireError::Truncated(rdstart))?;
        let rdata = self.rdata(rtype, rdstart, rdend)?;
        self.pos = rdend;
        Ok(WireRecord {
            name,
            rtype,
            class,
            ttl,
            rdata,
            offset,
        })
    }

    /// Copies RDATA, expanding compressed names for the types RFC 3597 §4
    /// allows to be compressed.
    fn rdata(&mut self, rtype: RecordType, start: usize, end: usize) -> Result<Vec<u8>, WireError> {
        use Field::*;
        let layout: &[Field] = match u16::from(rtype) {
            // NS, MD, MF, CNAME, MB, MG, MR, PTR
            2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 => &[N],
            6 => &[N, N, Fixed(20)],             // SOA
            14 | 17 => &[N, N],                  // MINFO, RP
            15 | 18 | 21 => &[Fixed(2), N],      // MX, AFSDB, RT
            24 => &[Fixed(18), N, Rest],         // SIG
            26 => &[Fixed(2), N, N],             // PX
            30 => &[N, Rest],                    // NXT
            35 => &[Fixed(4), Str, Str, Str, N], // NAPTR
            33 => &[Fixed(6), N],                // SRV
            _ => return Ok(self.buf[start..end].to_vec()),
        };
        let bad = |reason: String| WireError::BadRdata {
            rtype,
            offset: start,
            reason,
        };
        // A sub-reader limited to the RDATA, but pointers may reach back into
        // the whole message.
        let mut sub = Reader {
            buf: &self.buf[..end],
            pos: start,
        };
        let mut out = Vec::with_capacity(end - start + 32);
        for field in layout {
            match *field {
                N => sub
                    .name_wire(&mut out)
                    .map_err(|e| bad(format!("embedded name: {e}")))?,
                Fixed(n) => out.extend_from_slice(
                    sub.bytes(n)
                        .map_err(|_| bad("shorter than its fixed fields".into()))?,
                ),
                Str => {
                    let l = usize::from(
                        sub.u8()
                            .map_err(|_| bad("character-string truncated".into()))?,
                    );
                    out.push(l as u8);
                    out.extend_from_slice(
                        sub.bytes(l)
                            .map_err(|_| bad("character-string truncated".into()))?,
                    );
                }
                Rest => {
                    out.extend_from_slice(&sub.buf[sub.pos..end]);
                    sub.pos = end;
                }
            }
        }
        if sub.pos != end {
            return Err(bad(format!("{} trailing octets", end - sub.pos)));
        }
        Ok(out)
    }
}

#[derive(Clone, Copy)]
enum Field {
    N,
    Fixed(usize),
    Str,
    Rest,
}

fn name_from_wire(wire: &[u8], offset: usize) -> Result<Name, WireError> {
    match rr::read_name(wire) {
        Some((name, used)) if used == wire.len() => Ok(name),
        _ => Err(WireError::BadName {
            offset,
            reason: "not a valid domain name",
        }),
    }
}

/// Where the name starting at `at` ends, compressed or not.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let b = *msg.get(at)?;
        match b & 0xC0 {
            0 if b == 0 => return Some(at + 1),
            0 => at += 1 + b as usize,
            0xC0 => return (at + 2 <= msg.len()).then_some(at + 2),
            _ => return None,
        }
    }
}

/// Appends an EDNS option to the OPT record of the message in `buf[..len]`
/// when that OPT is the message's last record, as it is in every unsigned
/// answer we write. Returns the new length; `None`, with `buf` unchanged,
/// when the last record is something else (a TSIG, which covers the OPT)
/// or the option does not fit in `buf` or in a DNS message.
pub fn append_edns_option(buf: &mut [u8], len: usize, code: u16, data: &[u8]) -> Option<usize> {
    let msg = buf.get(..len)?;
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
    if len < HEADER_LEN {
        return None;
    }
    let mut at = HEADER_LEN;
    for _ in 0..count(4) {
        at = skip_name(msg, at)? + 4;
    }
    let records = count(6) + count(8) + count(10);
    let mut last = None;
    for _ in 0..records {
        let start = at;
        at = skip_name(msg, at)?;
        let fixed = msg.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        last = Some((start, rtype, at + 8));
        at += 10 + rdlen;
    }
    let (_, rtype, rdlen_at) = last?;
    let end = len + 4 + data.len();
    if rtype != TYPE_OPT || at != len || end > buf.len() || end > u16::MAX as usize {
        return None;
    }
    let rdlen = u16::from_be_bytes([buf[rdlen_at], buf[rdlen_at + 1]]) as usize + 4 + data.len();
    buf[rdlen_at..rdlen_at + 2].copy_from_slice(&(rdlen as u16).to_be_bytes());
    buf[len..len + 2].copy_from_slice(&code.to_be_bytes());
    buf[len + 2..len + 4].copy_from_slice(&(data.len() as u16).to_be_bytes());
    buf[len + 4..end].copy_from_slice(data);
    Some(end)
}

/// Appends the uncompressed wire form of `name`, original case.
pub fn put_name(out: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

/// Appends the canonical (lowercase, uncompressed) wire form of `name`.
pub fn put_name_canonical(out: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
}

/// Builds a message section by section. Names are written uncompressed:
/// queries are tiny, and byte-exact RDATA must never be compressed anyway.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    id: u16,
    flags: u16,
    sections: [Vec<u8>; 4],
    counts: [usize; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Question = 0,
    Answer = 1,
    Authority = 2,
    Additional = 3,
}

impl MessageBuilder {
    pub fn new(id: u16, opcode: u8, flags: u16) -> Self {
        MessageBuilder {
            id,
            flags: flags | (u16::from(opcode & 0xf) << 11),
            sections: Default::default(),
            counts: [0; 4],
        }
    }

    pub fn set_rcode(&mut self, rcode: u8) -> &mut Self {
        self.flags = (self.flags & !0xf) | u16::from(rcode & 0xf);
        self
    }

    pub fn question(&mut self, name: &Name, qtype: RecordType, qclass: u16) -> &mut Self {
        let out = &mut self.sections[0];
        put_name(out, name);
        out.extend_from_slice(&u16::from(qtype).to_be_bytes());
        out.extend_from_slice(&qclass.to_be_bytes());
        self.counts[0] += 1;
        self
    }

    /// Adds a record given its uncompressed RDATA.
    pub fn raw_rr(
        &mut self,
        section: Section,
        name: &Name,
        rtype: RecordType,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<&mut Self, WireError> {
        let rdlen = u16::try_from(rdata.len()).map_err(|_| WireError::TooLarge("RDATA"))?;
        let out = &mut self.sections[section as usize];
        put_name(out, name);
        out.extend_from_slice(&u16::from(rtype).to_be_bytes());
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&rdlen.to_be_bytes());
        out.extend_from_slice(rdata);
        self.counts[section as usize] += 1;
        Ok(self)
    }

    pub fn record(&mut self, section: Section, record: &Record) -> Result<&mut Self, WireError> {
        let wire = rr::rdata_to_wire(&record.data);
        self.raw_rr(
            section,
            &record.name,
            record.record_type(),
            u16::from(record.dns_class),
            record.ttl,
            &wire,
        )
    }

    /// Adds an OPT record carrying `options`.
    pub fn edns(
        &mut self,
        udp_size: u16,
        options: &[(u16, &[u8])],
    ) -> Result<&mut Self, WireError> {
        let mut rdata = Vec::new();
        for (code, value) in options {
            let len = u16::try_from(value.len()).map_err(|_| WireError::TooLarge("EDNS option"))?;
            rdata.extend_from_slice(&code.to_be_bytes());
            rdata.extend_from_slice(&len.to_be_bytes());
            rdata.extend_from_slice(value);
        }
        self.raw_rr(
            Section::Additional,
            &Name::root(),
            RecordType::from(TYPE_OPT),
            udp_size,
            0,
            &rdata,
        )
    }

    pub fn finish(&self) -> Result<Vec<u8>, WireError> {
        let mut out =
            Vec::with_capacity(HEADER_LEN + self.sections.iter().map(Vec::len).sum::<usize>());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        for c in self.counts {
            let c = u16::try_from(c).map_err(|_| WireError::TooLarge("section count"))?;
            out.extend_from_slice(&c.to_be_bytes());
        }
        for s in &self.sections {
            out.extend_from_slice(s);
        }
        if out.len() > usize::from(u16::MAX) {
            return Err(WireError::TooLarge("message longer than 65535 octets"));
        }
        Ok(out)
    }
}

fn query_with_expire(id: u16, zone: &Name, qtype: RecordType) -> MessageBuilder {
    let mut b = MessageBuilder::new(id, OPCODE_QUERY, 0);
    b.question(zone, qtype, CLASS_IN);
    b
}

fn finish_with_expire(mut b: MessageBuilder) -> Vec<u8> {
    // An empty EXPIRE option asks the primary for its remaining expire time.
    b.edns(EDNS_UDP_SIZE, &[(EDNS_EXPIRE, &[])])
        .and_then(|b| b.finish())
        .expect("a single-question query fits any limit")
}

/// SOA query with EDNS and an empty EXPIRE option (RFC 7314 §2).
pub fn soa_query(id: u16, zone: &Name) -> Vec<u8> {
    finish_with_expire(query_with_expire(id, zone, RecordType::SOA))
}

/// AXFR query; EXPIRE is asked for too, so the transfer refreshes the timer.
pub fn axfr_query(id: u16, zone: &Name) -> Vec<u8> {
    finish_with_expire(query_with_expire(id, zone, RecordType::AXFR))
}

/// IXFR query carrying our current SOA in the authority section (RFC 1995 §3).
pub fn ixfr_query(id: u16, zone: &Name, our_soa: &Record) -> Result<Vec<u8>, WireError> {
    let mut b = query_with_expire(id, zone, RecordType::IXFR);
    b.record(Section::Authority, our_soa)?;
    Ok(finish_with_expire(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RData;
    use rand::{Rng, SeedableRng};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn an_option_goes_into_a_last_opt_and_nowhere_else() {
        let mut buf = soa_query(7, &n("example.com."));
        let len = buf.len();
        buf.resize(len + 10, 0);
        let end = append_edns_option(&mut buf, len, 11, &[0, 100]).unwrap();
        let m = Message::parse(&buf[..end]).unwrap();
        let opt = m.opt.unwrap();
        assert_eq!(opt.option(EDNS_EXPIRE), Some(&[][..]));
        assert_eq!(opt.option(11), Some(&[0, 100][..]));
        // No room left in the buffer: unchanged.
        let mut tight = soa_query(7, &n("example.com."));
        let len = tight.len();
        assert_eq!(append_edns_option(&mut tight, len, 11, &[0, 100]), None);
        // A TSIG after the OPT: unchanged.
        let key = crate::tsig::Key::new(n("k."), crate::tsig::Algorithm::HmacSha256, vec![1; 32]);
        let signed = crate::tsig::sign_request(&soa_query(7, &n("example.com.")), &key, 1)
            .unwrap()
            .bytes;
        let mut buf = signed.clone();
        buf.resize(signed.len() + 10, 0);
        assert_eq!(
            append_edns_option(&mut buf, signed.len(), 11, &[0, 1]),
            None
        );
        assert_eq!(&buf[..signed.len()], &signed[..]);
        // No OPT at all, or a broken message: unchanged.
        let mut plain = MessageBuilder::new(1, OPCODE_QUERY, 0);
        plain.question(&n("example.com."), RecordType::A, CLASS_IN);
        let mut buf = plain.finish().unwrap();
        let len = buf.len();
        buf.resize(len + 10, 0);
        assert_eq!(append_edns_option(&mut buf, len, 11, &[0, 1]), None);
        assert_eq!(append_edns_option(&mut buf, 5, 11, &[0, 1]), None);
    }

    #[test]
    fn soa_query_round_trip() {
        let q = soa_query(0x1234, &n("Example.COM."));
        let m = Message::parse(&q).unwrap();
        assert_eq!(m.header.id, 0x1234);
        assert!(!m.header.is_response());
        assert_eq!(m.questions.len(), 1);
        assert_eq!(m.questions[0].qtype, RecordType::SOA);
        assert_eq!(m.questions[0].name.to_ascii(), "Example.COM.");
        let opt = m.opt.unwrap();
        assert_eq!(opt.udp_size, EDNS_UDP_SIZE);
        assert_eq!(opt.option(EDNS_EXPIRE), Some(&[][..]));
        assert!(m.tsig.is_none());
    }

    #[test]
    fn ixfr_query_has_soa_in_authority() {
        let soa = rr::record(
            n("example.com."),
            RecordType::SOA,
            3600,
            &soa_rdata("ns1.example.com.", "h.example.com.", 42),
        )
        .unwrap();
        let q = ixfr_query(7, &n("example.com."), &soa).unwrap();
        let m = Message::parse(&q).unwrap();
        assert_eq!(m.questions[0].qtype, RecordType::IXFR);
        assert_eq!(m.authority.len(), 1);
        let rec = m.authority[0].to_record().unwrap();
        match &rec.data {
            RData::SOA(s) => assert_eq!(s.serial, 42),
            other => panic!("not an SOA: {other:?}"),
        }
    }

    pub(crate) fn soa_rdata(mname: &str, rname: &str, serial: u32) -> Vec<u8> {
        let mut v = Vec::new();
        put_name(&mut v, &n(mname));
        put_name(&mut v, &n(rname));
        for x in [serial, 3600, 600, 86400, 300] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    /// A hand-compressed response: the MX exchange and the SOA names point
    /// back at the question name; the TXT RDATA contains bytes that look like
    /// a pointer and must stay as they are.
    #[test]
    fn decompresses_known_types_only() {
        let mut m = vec![0xab, 0xcd, 0x84, 0x00, 0, 1, 0, 3, 0, 0, 0, 0];
        // question at 12: example.com. MX IN
        m.extend_from_slice(b"\x07example\x03com\x00");
        m.extend_from_slice(&[0, 15, 0, 1]);
        // MX: owner pointer to 12, rdata = pref 10 + "mail" + pointer 12
        m.extend_from_slice(&[0xc0, 12, 0, 15, 0, 1, 0, 0, 0x0e, 0x10, 0, 9, 0, 10]);
        m.extend_from_slice(b"\x04mail\xc0\x0c");
        // TXT: rdata "\x02\xc0\x0c" (a character-string that looks like a pointer)
        m.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 2, 0xc0, 12]);
        // SOA: mname pointer, rname pointer, 20 bytes
        m.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 24, 0xc0, 12, 0xc0, 12]);
        m.extend_from_slice(&[0; 20]);
        let msg = Message::parse(&m).unwrap();
        assert_eq!(msg.answers.len(), 3);
        assert_eq!(
            msg.answers[0].rdata,
            b"\x00\x0a\x04mail\x07example\x03com\x00"
        );
        assert_eq!(msg.answers[1].rdata, vec![2, 0xc0, 12]);
        assert_eq!(msg.answers[2].rdata.len(), 13 * 2 + 20);
        let mx = msg.answers[0].to_record().unwrap();
        assert_eq!(mx.record_type(), RecordType::MX);
    }

    #[test]
    fn rejects_pointer_loops_and_forward_pointers() {
        let mut m = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // points at itself
        assert!(matches!(Message::parse(&m), Err(WireError::BadName { .. })));
        let mut m = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 14, 0, 0, 1, 0, 1]);
        assert!(matches!(Message::parse(&m), Err(WireError::BadName { .. })));
    }

    #[test]
    fn tsig_must_be_last() {
        let mut b = MessageBuilder::new(1, 0, 0);
        let mut tsig = Vec::new();
        put_name(&mut tsig, &n("hmac-sha256."));
        tsig.extend_from_slice(&[0, 0, 0, 0, 0, 1, 1, 44, 0, 0, 0, 1, 0, 0, 0, 0]);
        b.raw_rr(
            Section::Additional,
            &n("k."),
            RecordType::from(TYPE_TSIG),
            CLASS_ANY,
            0,
            &tsig,
        )
        .unwrap();
        b.edns(1232, &[]).unwrap();
        let bytes = b.finish().unwrap();
        assert_eq!(Message::parse(&bytes), Err(WireError::MisplacedTsig));
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let seed_msg = {
            let mut m = vec![0xab, 0xcd, 0x84, 0x00, 0, 1, 0, 2, 0, 0, 0, 1];
            m.extend_from_slice(b"\x07example\x03com\x00\x00\x0f\x00\x01");
            m.extend_from_slice(&[0xc0, 12, 0, 15, 0, 1, 0, 0, 0x0e, 0x10, 0, 9, 0, 10]);
            m.extend_from_slice(b"\x04mail\xc0\x0c");
            m.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 24, 0xc0, 12, 0xc0, 12]);
            m.extend_from_slice(&[0; 20]);
            m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 8, 0, 9, 0, 4, 0, 0, 1, 0]);
            m
        };
        assert!(Message::parse(&seed_msg).is_ok());
        assert_eq!(Message::parse(&seed_msg).unwrap().edns_expire(), Some(256));
        for _ in 0..20_000 {
            let len = rng.random_range(0..200);
            let buf: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let _ = Message::parse(&buf);
            // Mutations of a valid message reach deeper code paths.
            let mut m = seed_msg.clone();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..m.len());
                m[i] = rng.random();
            }
            if rng.random_bool(0.3) {
                m.truncate(rng.random_range(0..m.len()));
            }
            if let Ok(msg) = Message::parse(&m) {
                for r in msg.answers.iter().chain(&msg.additional) {
                    let _ = r.to_record();
                }
            }
        }
    }
}
