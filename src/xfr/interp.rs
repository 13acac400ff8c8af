//! A pure interpreter of zone transfer responses (AXFR, RFC 5936; IXFR,
//! RFC 1995): no I/O, no clock. Feed it the response messages one by one; it
//! tells when the transfer is complete and yields the zone or the diffs.
//!
//! Keeping it pure makes every protocol rule testable with messages built in
//! code, and lets the client layer deal only with sockets, timeouts and TSIG.

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::wire::{self, CLASS_IN, Message, OPCODE_QUERY, WireError, WireRecord};
/// Limits for what a primary may send; the config defines them.
pub use crate::zone::Limits;
use crate::zone::key::{MAX_NAME, WireName};
use crate::zone::raw::name_to_wire;
use crate::zone::{RawRecords, ZoneBuilder, ZoneError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InterpError {
    #[error("malformed response: {0}")]
    Wire(#[from] WireError),
    #[error("server answered {0}")]
    Rcode(String),
    #[error("response ID {got} does not match query ID {expected}")]
    IdMismatch { got: u16, expected: u16 },
    #[error("not a response to a standard query")]
    NotAResponse,
    #[error("response question {got} does not match the query ({expected})")]
    WrongQuestion { got: String, expected: String },
    #[error("first record is {0}, not the zone's SOA")]
    FirstNotSoa(String),
    #[error("record {name} {rtype} is outside the zone")]
    OutOfZone { name: String, rtype: RecordType },
    #[error("record {name} {rtype} has class {class}, not IN")]
    WrongClass {
        name: String,
        rtype: RecordType,
        class: u16,
    },
    #[error("bad record {name} {rtype}: {reason}")]
    BadRecord {
        name: String,
        rtype: RecordType,
        reason: String,
    },
    #[error("closing SOA (serial {closing}) differs from the opening SOA (serial {opening})")]
    SoaMismatch { opening: u32, closing: u32 },
    #[error("IXFR sequence broken: {0}")]
    IxfrSequence(String),
    #[error("{0} record(s) after the closing SOA")]
    ExtraData(usize),
    #[error("transfer ended before the closing SOA ({messages} message(s), {records} record(s))")]
    Incomplete { messages: usize, records: usize },
    #[error("over the limit of {limit} records")]
    TooManyRecords { limit: usize },
    /// What the zone build found wrong as the records came in.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error("over the limit of {limit} octets per transfer")]
    TooManyBytes { limit: u64 },
}

/// One IXFR difference sequence: the changes from `old_soa` to `new_soa`,
/// in wire form (a difference costs what it holds, not 272 octets a
/// record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IxfrDiff {
    pub old_soa: Record,
    pub new_soa: Record,
    pub deleted: RawRecords,
    pub added: RawRecords,
}

impl IxfrDiff {
    pub fn new(old_soa: Record, new_soa: Record) -> Self {
        IxfrDiff {
            old_soa,
            new_soa,
            deleted: RawRecords::new(),
            added: RawRecords::new(),
        }
    }

    /// Octets held, for the bounds on what is kept.
    pub fn size(&self) -> usize {
        self.deleted.size() + self.added.size() + 2 * 128
    }

    /// Records deleted and added, not counting the SOAs.
    pub fn len(&self) -> usize {
        self.deleted.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferData {
    /// The whole zone, SOA first and only once, in wire form: a million
    /// hickory records would take more memory than the zone is worth.
    Full(Box<ZoneBuilder>),
    /// IXFR diffs in order, oldest first.
    Incremental(Vec<IxfrDiff>),
    /// IXFR answer with the single current SOA: nothing newer.
    UpToDate(Box<Record>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub data: TransferData,
    /// EDNS EXPIRE (RFC 7314) from the response, if the primary sent it.
    pub expire: Option<u32>,
    pub messages: usize,
    pub bytes: u64,
}

/// What the transfer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Axfr,
    /// IXFR from our current serial.
    Ixfr {
        serial: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More messages are needed.
    More,
    /// The closing SOA was seen; the transfer is complete.
    Done,
}

enum State {
    /// Waiting for the opening SOA.
    Start,
    /// IXFR: opening SOA seen; the next record tells which answer form.
    IxfrDecide,
    /// AXFR, or an IXFR answered with a whole zone.
    Full,
    /// IXFR: reading deletions after SOA(old).
    Deleting(IxfrDiff),
    /// IXFR: reading additions after SOA(new).
    Adding(IxfrDiff),
    Done,
}

pub struct Interpreter {
    zone: Name,
    query_id: u16,
    request: Request,
    limits: Limits,
    state: State,
    opening: Option<Record>,
    records: ZoneBuilder,
    diffs: Vec<IxfrDiff>,
    up_to_date: bool,
    counted: usize,
    /// The zone's lookup key, for the in-zone check of raw owners.
    zone_key: WireName,
    expire: Option<u32>,
    messages: usize,
    bytes: u64,
}

fn soa_serial(rec: &Record) -> Option<u32> {
    match &rec.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

impl Interpreter {
    pub fn new(zone: Name, query_id: u16, request: Request, limits: Limits) -> Self {
        let records = ZoneBuilder::new(&zone, &limits);
        Interpreter {
            zone_key: WireName::from_name(&zone),
            zone,
            query_id,
            request,
            limits,
            state: State::Start,
            opening: None,
            records,
            diffs: Vec::new(),
            up_to_date: false,
            counted: 0,
            expire: None,
            messages: 0,
            bytes: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Parses and interprets one response message.
    pub fn feed(&mut self, msg: &[u8]) -> Result<Progress, InterpError> {
        let parsed = Message::parse(msg)?;
        self.feed_parsed(msg.len(), &parsed)
    }

    /// Interprets one already parsed message of `len` octets (the client
    /// parses once for TSIG and transfer both).
    pub fn feed_parsed(&mut self, len: usize, msg: &Message) -> Result<Progress, InterpError> {
        self.messages += 1;
        self.bytes += len as u64;
        if self.bytes > self.limits.max_transfer_bytes {
            return Err(InterpError::TooManyBytes {
                limit: self.limits.max_transfer_bytes,
            });
        }
        self.check_header(msg)?;
        if self.expire.is_none() {
            self.expire = msg.edns_expire();
        }
        for (i, wr) in msg.answers.iter().enumerate() {
            if self.is_done() {
                return Err(InterpError::ExtraData(msg.answers.len() - i));
            }
            // The bulk of a transfer goes straight into wire form.
            if wr.rtype != RecordType::SOA
                && matches!(
                    self.state,
                    State::Full | State::Deleting(_) | State::Adding(_)
                )
            {
                let (owner, len) = self.checked_owner(wr)?;
                self.count()?;
                let (owner, rtype) = (&owner[..len], u16::from(wr.rtype));
                match &mut self.state {
                    State::Full => self
                        .records
                        .push(owner, rtype, CLASS_IN, wr.ttl, &wr.rdata)?,
                    State::Deleting(d) => d.deleted.push(owner, rtype, CLASS_IN, wr.ttl, &wr.rdata),
                    State::Adding(d) => d.added.push(owner, rtype, CLASS_IN, wr.ttl, &wr.rdata),
                    _ => unreachable!("checked above"),
                }
                continue;
            }
            let rec = self.check_record(wr)?;
            self.step(rec)?;
        }
        // RFC 1995 §4: a lone SOA equal to ours means we are current. A lone
        // SOA with a newer serial in the first message could also begin a
        // multi-message answer, so only our own serial ends the transfer here.
        if let (State::IxfrDecide, Request::Ixfr { serial }) = (&self.state, self.request) {
            let newest = self.opening.as_ref().and_then(soa_serial);
            if self.messages == 1 && newest == Some(serial) {
                self.up_to_date = true;
                self.state = State::Done;
            }
        }
        Ok(if self.is_done() {
            Progress::Done
        } else {
            Progress::More
        })
    }

    fn check_header(&self, msg: &Message) -> Result<(), InterpError> {
        let h = &msg.header;
        if !h.is_response() || h.opcode() != OPCODE_QUERY {
            return Err(InterpError::NotAResponse);
        }
        if h.id != self.query_id {
            return Err(InterpError::IdMismatch {
                got: h.id,
                expected: self.query_id,
            });
        }
        let rcode = msg.rcode();
        if rcode != 0 {
            return Err(InterpError::Rcode(wire::rcode_name(rcode)));
        }
        let qtype = match self.request {
            Request::Axfr => RecordType::AXFR,
            Request::Ixfr { .. } => RecordType::IXFR,
        };
        let expected = || format!("{} IN {qtype}", self.zone);
        // Later messages of a stream may omit the question (RFC 5936 §2.2).
        if msg.questions.is_empty() && self.messages > 1 {
            return Ok(());
        }
        match msg.questions.as_slice() {
            [q] if q.name == self.zone && q.qtype == qtype && q.qclass == CLASS_IN => Ok(()),
            [q] => Err(InterpError::WrongQuestion {
                got: format!("{} class {} {}", q.name, q.qclass, q.qtype),
                expected: expected(),
            }),
            qs => Err(InterpError::WrongQuestion {
                got: format!("{} questions", qs.len()),
                expected: expected(),
            }),
        }
    }

    fn check_record(&self, wr: &WireRecord) -> Result<Record, InterpError> {
        if wr.class != CLASS_IN {
            return Err(InterpError::WrongClass {
                name: wr.name.to_string(),
                rtype: wr.rtype,
                class: wr.class,
            });
        }
        if !self.zone.zone_of(&wr.name) {
            return Err(InterpError::OutOfZone {
                name: wr.name.to_string(),
                rtype: wr.rtype,
            });
        }
        wr.to_record().map_err(|e| InterpError::BadRecord {
            name: wr.name.to_string(),
            rtype: wr.rtype,
            reason: e.to_string(),
        })
    }

    fn count(&mut self) -> Result<(), InterpError> {
        self.counted += 1;
        if self.counted > self.limits.max_records {
            return Err(InterpError::TooManyRecords {
                limit: self.limits.max_records,
            });
        }
        Ok(())
    }

    // The per-name and per-RRset limits are the zone build's to check: it
    // sees every record of a name together, and the record and octet counts
    // here already bound what a transfer can make us hold.
    fn add_full(&mut self, rec: Record) -> Result<(), InterpError> {
        self.count()?;
        self.records.push_record(&rec)?;
        Ok(())
    }

    /// The checks of [`Interpreter::check_record`] on the wire form, without
    /// making a hickory record: the owner, uncompressed, and its length.
    fn checked_owner(&self, wr: &WireRecord) -> Result<([u8; MAX_NAME], usize), InterpError> {
        if wr.class != CLASS_IN {
            return Err(InterpError::WrongClass {
                name: wr.name.to_string(),
                rtype: wr.rtype,
                class: wr.class,
            });
        }
        let mut owner = [0u8; MAX_NAME];
        let len = name_to_wire(&wr.name, &mut owner);
        let key = WireName::from_wire(&owner[..len]).map(|(k, _)| k);
        let zl = self.zone_key.labels();
        let in_zone = key
            .as_ref()
            .is_some_and(|k| k.labels() >= zl && k.suffix(zl) == self.zone_key.bytes());
        if !in_zone {
            return Err(InterpError::OutOfZone {
                name: wr.name.to_string(),
                rtype: wr.rtype,
            });
        };
        crate::zone::raw::check_rdata(u16::from(wr.rtype), &wr.rdata).map_err(|reason| {
            InterpError::BadRecord {
                name: wr.name.to_string(),
                rtype: wr.rtype,
                reason,
            }
        })?;
        Ok((owner, len))
    }

    fn is_opening_soa(&self, rec: &Record) -> bool {
        rec.record_type() == RecordType::SOA && rec.name == self.zone
    }

    fn step(&mut self, rec: Record) -> Result<(), InterpError> {
        let is_soa = self.is_opening_soa(&rec);
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start => {
                if !is_soa {
                    return Err(InterpError::FirstNotSoa(format!(
                        "{} {}",
                        rec.name,
                        rec.record_type()
                    )));
                }
                self.opening = Some(rec.clone());
                self.state = match self.request {
                    Request::Axfr => {
                        self.add_full(rec)?;
                        State::Full
                    }
                    Request::Ixfr { .. } => State::IxfrDecide,
                };
            }
            State::IxfrDecide => {
                let opening = self.opening.clone().expect("set in Start");
                let our = match self.request {
                    Request::Ixfr { serial } => serial,
                    Request::Axfr => unreachable!("IxfrDecide only for IXFR"),
                };
                if is_soa && soa_serial(&rec) == Some(our) {
                    // Incremental: this is SOA(old) of the first diff.
                    self.state = State::Deleting(IxfrDiff::new(rec, opening));
                } else if is_soa {
                    // SOA right after SOA: an AXFR-style answer of an empty
                    // zone would close here, anything else is malformed.
                    if !same_soa(&opening, &rec) {
                        return Err(InterpError::IxfrSequence(format!(
                            "second SOA has serial {:?}, neither ours ({our}) nor the opening one",
                            soa_serial(&rec)
                        )));
                    }
                    self.add_full(opening)?;
                    self.state = State::Done;
                } else {
                    // AXFR-style answer (RFC 1995 §4).
                    self.add_full(opening)?;
                    self.add_full(rec)?;
                    self.state = State::Full;
                }
            }
            State::Full => {
                if is_soa {
                    let opening = self.opening.as_ref().expect("set in Start");
                    if !same_soa(opening, &rec) {
                        return Err(InterpError::SoaMismatch {
                            opening: soa_serial(opening).unwrap_or(0),
                            closing: soa_serial(&rec).unwrap_or(0),
                        });
                    }
                    self.state = State::Done;
                } else {
                    self.add_full(rec)?;
                    self.state = State::Full;
                }
            }
            State::Deleting(mut diff) => {
                if is_soa {
                    // SOA(new') of this diff; additions follow.
                    diff.new_soa = rec;
                    self.state = State::Adding(diff);
                } else {
                    self.count()?;
                    diff.deleted.push_record(&rec);
                    self.state = State::Deleting(diff);
                }
            }
            State::Adding(mut diff) => {
                if is_soa {
                    let opening = self.opening.clone().expect("set in Start");
                    let this_new = soa_serial(&diff.new_soa);
                    // The next diff must start where this one ended; when
                    // this one ended at the newest serial, that SOA closes.
                    if soa_serial(&rec) != this_new {
                        return Err(InterpError::IxfrSequence(format!(
                            "diff to serial {this_new:?} followed by one from serial {:?}",
                            soa_serial(&rec)
                        )));
                    }
                    let ended_at_newest = same_soa(&opening, &diff.new_soa);
                    self.diffs.push(diff);
                    self.state = if ended_at_newest {
                        State::Done
                    } else {
                        State::Deleting(IxfrDiff::new(rec, opening))
                    };
                } else {
                    self.count()?;
                    diff.added.push_record(&rec);
                    self.state = State::Adding(diff);
                }
            }
            State::Done => unreachable!("records after Done are rejected by the caller"),
        }
        Ok(())
    }

    /// Ends the transfer: fails unless the closing SOA was seen.
    pub fn finish(self) -> Result<Transfer, InterpError> {
        if !self.is_done() {
            return Err(InterpError::Incomplete {
                messages: self.messages,
                records: self.counted,
            });
        }
        let data = if self.up_to_date {
            TransferData::UpToDate(Box::new(self.opening.expect("set before Done")))
        } else if !self.diffs.is_empty() {
            TransferData::Incremental(self.diffs)
        } else {
            TransferData::Full(Box::new(self.records))
        };
        Ok(Transfer {
            data,
            expire: self.expire,
            messages: self.messages,
            bytes: self.bytes,
        })
    }
}

/// SOA equality for stream framing: same owner and the same RDATA (names
/// compared case-insensitively, as hickory's `Name` does).
fn same_soa(a: &Record, b: &Record) -> bool {
    a.name == b.name && a.data == b.data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rr;
    use crate::wire::{FLAG_AA, FLAG_QR, MessageBuilder, Section, put_name};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn soa(serial: u32) -> Record {
        let mut v = Vec::new();
        put_name(&mut v, &n("ns1.example.com."));
        put_name(&mut v, &n("hostmaster.example.com."));
        for x in [serial, 3600, 600, 86400, 300] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        rr::record(n("example.com."), RecordType::SOA, 3600, &v).unwrap()
    }

    fn a(name: &str, last: u8) -> Record {
        rr::record(n(name), RecordType::A, 300, &[192, 0, 2, last]).unwrap()
    }

    fn txt(name: &str, s: &str) -> Record {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        rr::record(n(name), RecordType::TXT, 300, &v).unwrap()
    }

    fn msg_q(id: u16, qname: &str, qtype: RecordType, rcode: u8, records: &[Record]) -> Vec<u8> {
        let mut b = MessageBuilder::new(id, OPCODE_QUERY, FLAG_QR | FLAG_AA);
        b.set_rcode(rcode);
        b.question(&n(qname), qtype, CLASS_IN);
        for r in records {
            b.record(Section::Answer, r).unwrap();
        }
        b.finish().unwrap()
    }

    fn msg(records: &[Record]) -> Vec<u8> {
        msg_q(7, "example.com.", RecordType::AXFR, 0, records)
    }

    fn axfr() -> Interpreter {
        Interpreter::new(n("example.com."), 7, Request::Axfr, Limits::default())
    }

    fn run(mut it: Interpreter, msgs: &[Vec<u8>]) -> Result<Transfer, InterpError> {
        for m in msgs {
            it.feed(m)?;
        }
        it.finish()
    }

    #[test]
    fn good_multi_message_stream() {
        let mut msgs = vec![msg(&[soa(5), a("www.example.com.", 1)])];
        for i in 0..10u8 {
            msgs.push(msg(&[
                a(&format!("h{i}.example.com."), i),
                txt("example.com.", "x"),
            ]));
        }
        // The expire option rides on the first message.
        let mut last = MessageBuilder::new(7, OPCODE_QUERY, FLAG_QR);
        last.record(Section::Answer, &a("mail.Example.com.", 9))
            .unwrap();
        last.record(Section::Answer, &soa(5)).unwrap();
        msgs.push(last.finish().unwrap());
        let mut first = MessageBuilder::new(7, OPCODE_QUERY, FLAG_QR);
        first.question(&n("example.com."), RecordType::AXFR, CLASS_IN);
        first.record(Section::Answer, &soa(5)).unwrap();
        first
            .edns(1232, &[(wire::EDNS_EXPIRE, &86_000u32.to_be_bytes())])
            .unwrap();
        msgs[0] = first.finish().unwrap();

        let t = run(axfr(), &msgs).unwrap();
        assert_eq!(t.expire, Some(86_000));
        assert_eq!(t.messages, 12);
        let TransferData::Full(recs) = t.data else {
            panic!("not a full transfer")
        };
        let recs = recs.raw().to_records().unwrap();
        assert_eq!(recs.len(), 1 + 20 + 1);
        assert_eq!(recs[0], soa(5));
        assert_eq!(
            recs.iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .count(),
            1
        );
    }

    #[test]
    fn truncated_stream_is_incomplete() {
        let msgs = vec![
            msg(&[soa(5), a("www.example.com.", 1)]),
            msg(&[a("x.example.com.", 2)]),
        ];
        assert_eq!(
            run(axfr(), &msgs),
            Err(InterpError::Incomplete {
                messages: 2,
                records: 3
            })
        );
    }

    #[test]
    fn mismatched_soas() {
        let msgs = vec![msg(&[soa(5), a("www.example.com.", 1), soa(6)])];
        assert_eq!(
            run(axfr(), &msgs),
            Err(InterpError::SoaMismatch {
                opening: 5,
                closing: 6
            })
        );
    }

    #[test]
    fn out_of_zone_and_first_not_soa() {
        let msgs = vec![msg(&[soa(5), a("www.example.net.", 1), soa(5)])];
        assert!(matches!(
            run(axfr(), &msgs),
            Err(InterpError::OutOfZone { .. })
        ));
        // A sibling that merely ends in the same characters is outside too.
        let msgs = vec![msg(&[soa(5), a("badexample.com.", 1), soa(5)])];
        assert!(matches!(
            run(axfr(), &msgs),
            Err(InterpError::OutOfZone { .. })
        ));
        let msgs = vec![msg(&[a("www.example.com.", 1), soa(5)])];
        assert!(matches!(
            run(axfr(), &msgs),
            Err(InterpError::FirstNotSoa(_))
        ));
    }

    #[test]
    fn extra_data_after_the_end() {
        let msgs = vec![msg(&[soa(5), soa(5), a("www.example.com.", 1)])];
        assert_eq!(run(axfr(), &msgs), Err(InterpError::ExtraData(1)));
        let msgs = vec![msg(&[soa(5), soa(5)]), msg(&[a("www.example.com.", 1)])];
        assert_eq!(run(axfr(), &msgs), Err(InterpError::ExtraData(1)));
    }

    #[test]
    fn limits() {
        let msgs = vec![msg(&[
            soa(5),
            a("a.example.com.", 1),
            a("b.example.com.", 2),
            soa(5),
        ])];
        let lim = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            Interpreter::new(n("example.com."), 7, Request::Axfr, l)
        };
        assert!(run(lim(|l| l.max_records = 3), &msgs).is_ok());
        assert_eq!(
            run(lim(|l| l.max_records = 2), &msgs),
            Err(InterpError::TooManyRecords { limit: 2 })
        );
        assert_eq!(
            run(lim(|l| l.max_transfer_bytes = 50), &msgs),
            Err(InterpError::TooManyBytes { limit: 50 })
        );
        // Per-name and per-RRset limits are the zone build's (zone::tests).
    }

    #[test]
    fn wrong_question_id_and_rcode() {
        let wrong_name = msg_q(7, "example.org.", RecordType::AXFR, 0, &[soa(5), soa(5)]);
        assert!(matches!(
            run(axfr(), &[wrong_name]),
            Err(InterpError::WrongQuestion { .. })
        ));
        let wrong_type = msg_q(7, "example.com.", RecordType::SOA, 0, &[soa(5), soa(5)]);
        assert!(matches!(
            run(axfr(), &[wrong_type]),
            Err(InterpError::WrongQuestion { .. })
        ));
        let wrong_id = msg_q(8, "example.com.", RecordType::AXFR, 0, &[soa(5), soa(5)]);
        assert_eq!(
            run(axfr(), &[wrong_id]),
            Err(InterpError::IdMismatch {
                got: 8,
                expected: 7
            })
        );
        let refused = msg_q(7, "example.com.", RecordType::AXFR, 5, &[]);
        assert_eq!(
            run(axfr(), &[refused]),
            Err(InterpError::Rcode("REFUSED".into()))
        );
        let notauth = msg_q(7, "example.com.", RecordType::AXFR, 9, &[]);
        assert!(matches!(
            run(axfr(), &[notauth]),
            Err(InterpError::Rcode(_))
        ));
    }

    fn ixfr(serial: u32) -> Interpreter {
        Interpreter::new(
            n("example.com."),
            7,
            Request::Ixfr { serial },
            Limits::default(),
        )
    }

    fn imsg(records: &[Record]) -> Vec<u8> {
        msg_q(7, "example.com.", RecordType::IXFR, 0, records)
    }

    #[test]
    fn ixfr_incremental_up_to_date_and_full() {
        // 1 -> 2 -> 3, split over two messages.
        let msgs = vec![
            imsg(&[soa(3), soa(1), a("old.example.com.", 1), soa(2)]),
            imsg(&[
                a("new.example.com.", 2),
                soa(2),
                soa(3),
                a("newer.example.com.", 3),
                soa(3),
            ]),
        ];
        let t = run(ixfr(1), &msgs).unwrap();
        let TransferData::Incremental(diffs) = t.data else {
            panic!("not incremental")
        };
        assert_eq!(diffs.len(), 2);
        assert_eq!(
            (diffs[0].old_soa.clone(), diffs[0].new_soa.clone()),
            (soa(1), soa(2))
        );
        assert_eq!(
            diffs[0].deleted.to_records().unwrap(),
            vec![a("old.example.com.", 1)]
        );
        assert_eq!(
            diffs[0].added.to_records().unwrap(),
            vec![a("new.example.com.", 2)]
        );
        assert_eq!(
            (diffs[1].old_soa.clone(), diffs[1].new_soa.clone()),
            (soa(2), soa(3))
        );
        assert!(diffs[1].deleted.is_empty());
        assert_eq!(
            diffs[1].added.to_records().unwrap(),
            vec![a("newer.example.com.", 3)]
        );

        let t = run(ixfr(3), &[imsg(&[soa(3)])]).unwrap();
        assert_eq!(t.data, TransferData::UpToDate(Box::new(soa(3))));

        let full = vec![imsg(&[soa(3), a("www.example.com.", 1), soa(3)])];
        let t = run(ixfr(1), &full).unwrap();
        assert_eq!(
            t.data,
            TransferData::Full({
                let mut b = ZoneBuilder::new(&n("example.com."), &Limits::default());
                b.push_record(&soa(3)).unwrap();
                b.push_record(&a("www.example.com.", 1)).unwrap();
                Box::new(b)
            })
        );

        // A diff chain with a gap (2 then from 5) is rejected.
        let gap = vec![imsg(&[soa(3), soa(1), soa(2), soa(5), soa(3), soa(3)])];
        assert!(matches!(
            run(ixfr(1), &gap),
            Err(InterpError::IxfrSequence(_))
        ));
        // Cut off in the middle of a diff.
        let cut = vec![imsg(&[soa(3), soa(1), a("old.example.com.", 1)])];
        assert!(matches!(
            run(ixfr(1), &cut),
            Err(InterpError::Incomplete { .. })
        ));
    }
}
