//! Master-file (RFC 1035 zone file) reader and writer.
//!
//! Our own code rather than hickory's text parser because that one rejects the
//! DNSSEC types a signed zone is made of. Records come out exactly as a
//! transfer would deliver them: uncompressed wire RDATA, owner case kept.

mod lexer;
mod rdata;
mod text;

use std::io::Write;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, Name, Record, RecordType};

use lexer::{Lexer, Tok};
use rdata::Fields;

/// `$INCLUDE` nesting deeper than this is refused (it is almost certainly a loop).
pub const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ZoneFileError {
    #[error("{file}:{line}: {problem}")]
    Syntax {
        file: String,
        line: usize,
        problem: String,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    /// RDATA text given outside any file (`rdata_from_text`).
    #[error("{0}")]
    Rdata(String),
}

/// Parses the zone file at `path`. `$INCLUDE` paths are relative to the
/// directory of the file that includes them.
pub fn parse_file(path: &Path, origin: &Name) -> Result<Vec<Record>, ZoneFileError> {
    let raw = parse_file_raw(path, origin)?;
    to_records(raw, &path.display().to_string())
}

fn to_records(raw: crate::zone::RawRecords, source: &str) -> Result<Vec<Record>, ZoneFileError> {
    // Every record was made into a hickory record once while parsing.
    raw.to_records().map_err(|e| ZoneFileError::Syntax {
        file: source.to_string(),
        line: 0,
        problem: e.to_string(),
    })
}

/// [`parse_file`] into the wire form a zone is built from: a big zone file
/// is never held as hickory records (272 octets each).
pub fn parse_file_raw(
    path: &Path,
    origin: &Name,
) -> Result<crate::zone::RawRecords, ZoneFileError> {
    let data = std::fs::read(path).map_err(|source| ZoneFileError::Io {
        file: path.display().to_string(),
        source,
    })?;
    parse_bytes_raw(&data, path, origin)
}

/// [`parse_file_raw`] for the contents of `path`, already read.
pub fn parse_bytes_raw(
    data: &[u8],
    path: &Path,
    origin: &Name,
) -> Result<crate::zone::RawRecords, ZoneFileError> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut p = Parser::default();
    p.parse(
        data,
        &path.display().to_string(),
        &dir,
        text::name_wire(origin),
        None,
        0,
    )?;
    Ok(p.records)
}

/// Parses zone text; `source` names it in errors. `$INCLUDE` paths are
/// relative to the current directory.
pub fn parse_str(text: &str, origin: &Name, source: &str) -> Result<Vec<Record>, ZoneFileError> {
    let mut p = Parser::default();
    p.parse(
        text.as_bytes(),
        source,
        Path::new(""),
        text::name_wire(origin),
        None,
        0,
    )?;
    to_records(p.records, source)
}

/// Presentation form of uncompressed RDATA: the type's own format when we
/// have one that reproduces the bytes exactly, else RFC 3597 `\# LEN HEX`.
pub fn rdata_to_text(rtype: RecordType, wire: &[u8]) -> String {
    let code = u16::from(rtype);
    if let Some(t) = rdata::to_text(code, wire) {
        // Re-reading proves the text is exact; odd encodings (non-canonical
        // LOC sizes, unsorted SVCB keys, ...) fall back to the generic form.
        if rdata_from_text(rtype, &t, &Name::root()).is_ok_and(|w| w == wire) {
            return t;
        }
    }
    rdata::generic_to_text(wire)
}

/// Uncompressed wire RDATA from presentation text (either the type's own
/// format or `\# LEN HEX`); relative names are completed with `origin`.
pub fn rdata_from_text(
    rtype: RecordType,
    text: &str,
    origin: &Name,
) -> Result<Vec<u8>, ZoneFileError> {
    let buf = text.as_bytes();
    let mut lx = Lexer::new(buf);
    let mut toks = Vec::new();
    let mut all = Vec::new();
    loop {
        match lx.next_entry(&mut toks) {
            Ok(Some(_)) => all.extend_from_slice(&toks),
            Ok(None) => break,
            Err((_, e)) => return Err(ZoneFileError::Rdata(e)),
        }
    }
    let mut out = Vec::new();
    rdata_into(
        u16::from(rtype),
        buf,
        &all,
        &text::name_wire(origin),
        &mut out,
    )
    .map_err(ZoneFileError::Rdata)?;
    Ok(out)
}

/// Presentation form of a name: absolute, odd bytes escaped.
pub fn name_to_text(name: &Name) -> String {
    text::name_to_text(name)
}

/// Type mnemonic as BIND writes it (`TYPEnnn` for types BIND does not know).
pub fn type_to_text(rtype: RecordType) -> String {
    text::type_to_text(u16::from(rtype))
}

/// Parses a type mnemonic or `TYPEnnn`.
pub fn type_from_text(text: &str) -> Option<RecordType> {
    text::type_from_text(text.as_bytes()).map(RecordType::from)
}

fn rdata_into(
    code: u16,
    buf: &[u8],
    toks: &[Tok],
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let tname = || text::type_to_text(code);
    if text::is_meta(code) {
        return Err(format!("type {} cannot appear in a zone file", tname()));
    }
    let mut f = Fields::new(buf, toks);
    let r = match f.peek() {
        Some((b"\\#", false)) => {
            f.next("")?;
            rdata::generic_from_text(&mut f, out)
        }
        _ => rdata::from_text(code, &mut f, origin, out),
    };
    r.map_err(|e| format!("bad {} record: {e}", tname()))?;
    let fixed = match code {
        1 => Some(4),
        28 => Some(16),
        29 => Some(16),
        104 | 106 => Some(10),
        105 => Some(6),
        108 => Some(6),
        109 => Some(8),
        _ => None,
    };
    if fixed.is_some_and(|n| n != out.len()) {
        return Err(format!(
            "bad {} record: RDATA must be {} octets, not {}",
            tname(),
            fixed.unwrap_or(0),
            out.len()
        ));
    }
    if out.len() > 65535 {
        return Err(format!(
            "bad {} record: RDATA longer than 65535 octets",
            tname()
        ));
    }
    Ok(())
}

/// State shared across `$INCLUDE`s: BIND carries TTL defaults into and out of
/// included files.
#[derive(Default)]
struct Parser {
    records: crate::zone::RawRecords,
    /// From `$TTL`, or an SOA's minimum when no TTL was known.
    default_ttl: Option<u32>,
    /// The last explicit TTL (RFC 1035 semantics when there is no `$TTL`).
    last_ttl: Option<u32>,
}

impl Parser {
    /// `owner` is the current owner on entry: an included file inherits it
    /// (as BIND does), and the includer's own is untouched on return.
    fn parse(
        &mut self,
        data: &[u8],
        source: &str,
        dir: &Path,
        origin: Vec<u8>,
        owner: Option<Name>,
        depth: usize,
    ) -> Result<(), ZoneFileError> {
        let mut origin = origin;
        let mut owner = owner;
        let mut lx = Lexer::new(data);
        let mut toks: Vec<Tok> = Vec::with_capacity(16);
        let mut owner_wire: Vec<u8> = Vec::with_capacity(256);
        let mut rd: Vec<u8> = Vec::with_capacity(512);
        let err = |line: usize, problem: String| ZoneFileError::Syntax {
            file: source.to_string(),
            line,
            problem,
        };
        loop {
            let entry = match lx.next_entry(&mut toks) {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(()),
                Err((line, problem)) => return Err(err(line, problem)),
            };
            let line = entry.line;
            let tok = |i: usize| -> Option<&[u8]> { toks.get(i).map(|t| &data[t.start..t.end]) };
            let first = &toks[0];
            let first_raw = &data[first.start..first.end];
            if !entry.blank_owner && !first.quoted && first_raw.first() == Some(&b'$') {
                match first_raw.to_ascii_uppercase().as_slice() {
                    b"$ORIGIN" => {
                        if toks.len() != 2 {
                            return Err(err(line, "$ORIGIN needs exactly one name".into()));
                        }
                        let mut o = Vec::new();
                        text::parse_name(tok(1).unwrap_or_default(), &origin, &mut o)
                            .map_err(|e| err(line, e))?;
                        origin = o;
                    }
                    b"$TTL" => {
                        let t = match toks.len() {
                            2 => tok(1).unwrap_or_default(),
                            _ => return Err(err(line, "$TTL needs exactly one TTL".into())),
                        };
                        let ttl = text::parse_ttl(t)
                            .ok_or_else(|| err(line, format!("bad TTL '{}'", text::show(t))))?;
                        self.default_ttl = Some(clamp_ttl(ttl));
                    }
                    b"$INCLUDE" => {
                        if !(2..=3).contains(&toks.len()) {
                            return Err(err(
                                line,
                                "$INCLUDE needs a file name and optionally an origin".into(),
                            ));
                        }
                        if depth + 1 > MAX_INCLUDE_DEPTH {
                            return Err(err(
                                line,
                                format!("$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}"),
                            ));
                        }
                        let mut fname = Vec::new();
                        text::unescape(tok(1).unwrap_or_default(), &mut fname)
                            .map_err(|e| err(line, e))?;
                        let fname = String::from_utf8(fname)
                            .map_err(|_| err(line, "$INCLUDE file name is not UTF-8".into()))?;
                        let mut inc_origin = origin.clone();
                        if let Some(o) = tok(2) {
                            inc_origin.clear();
                            text::parse_name(o, &origin, &mut inc_origin)
                                .map_err(|e| err(line, e))?;
                        }
                        let path: PathBuf = dir.join(&fname);
                        let inc = std::fs::read(&path).map_err(|e| {
                            err(
                                line,
                                format!("cannot read $INCLUDE file {}: {e}", path.display()),
                            )
                        })?;
                        let inc_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                        // The origin reverts after the include (RFC 1035 5.1): ours is untouched.
                        self.parse(
                            &inc,
                            &path.display().to_string(),
                            &inc_dir,
                            inc_origin,
                            owner.clone(),
                            depth + 1,
                        )?;
                    }
                    _ => {
                        return Err(err(
                            line,
                            format!("unsupported directive {}", text::show(first_raw)),
                        ));
                    }
                }
                continue;
            }

            let mut i = 0;
            if !entry.blank_owner {
                if first.quoted {
                    return Err(err(line, "owner name cannot be a quoted string".into()));
                }
                owner_wire.clear();
                text::parse_name(first_raw, &origin, &mut owner_wire).map_err(|e| err(line, e))?;
                let name = crate::rr::read_name(&owner_wire)
                    .map(|n| n.0)
                    .ok_or_else(|| {
                        err(line, format!("bad owner name '{}'", text::show(first_raw)))
                    })?;
                owner = Some(name);
                i = 1;
            }
            let Some(name) = owner.clone() else {
                return Err(err(
                    line,
                    "no owner name (first record has a blank owner)".into(),
                ));
            };
            let mut ttl: Option<u32> = None;
            let mut class_seen = false;
            let code = loop {
                let Some(t) = tok(i) else {
                    return Err(err(line, "missing type".into()));
                };
                i += 1;
                if t.first().is_some_and(u8::is_ascii_digit) && ttl.is_none() {
                    let v = text::parse_ttl(t)
                        .ok_or_else(|| err(line, format!("bad TTL '{}'", text::show(t))))?;
                    ttl = Some(clamp_ttl(v));
                    continue;
                }
                if !class_seen {
                    if t.eq_ignore_ascii_case(b"IN") || t.eq_ignore_ascii_case(b"CLASS1") {
                        class_seen = true;
                        continue;
                    }
                    if is_class(t) {
                        return Err(err(
                            line,
                            format!("class {} is not supported (IN only)", text::show(t)),
                        ));
                    }
                }
                break text::type_from_text(t)
                    .ok_or_else(|| err(line, format!("unknown type '{}'", text::show(t))))?;
            };
            rd.clear();
            rdata_into(code, data, &toks[i..], &origin, &mut rd).map_err(|e| err(line, e))?;

            let ttl = match ttl {
                Some(t) => {
                    self.last_ttl = Some(t);
                    t
                }
                None => match (self.default_ttl, self.last_ttl) {
                    (Some(d), _) => d,
                    (None, Some(l)) => l,
                    (None, None) if code == 6 && rd.len() >= 4 => {
                        // BIND: no TTL anywhere yet, so the SOA minimum becomes the default.
                        let m = &rd[rd.len() - 4..];
                        let m = clamp_ttl(u32::from_be_bytes([m[0], m[1], m[2], m[3]]));
                        self.default_ttl = Some(m);
                        m
                    }
                    (None, None) => {
                        return Err(err(line, "no TTL specified and no $TTL default".into()));
                    }
                },
            };
            let rec = crate::rr::record(name, RecordType::from(code), ttl, &rd)
                .map_err(|e| err(line, e.to_string()))?;
            self.records.push_record(&rec);
        }
    }
}

/// RFC 2181 section 8: TTLs with the top bit set mean zero; BIND loads them as 0.
fn clamp_ttl(ttl: u32) -> u32 {
    if ttl > 0x7fff_ffff { 0 } else { ttl }
}

fn is_class(t: &[u8]) -> bool {
    ["CH", "CHAOS", "HS", "HESIOD", "CS", "NONE", "ANY"]
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(t))
        || (t.len() > 5
            && t[..5].eq_ignore_ascii_case(b"CLASS")
            && text::parse_uint(&t[5..], 65535).is_some())
}

/// Writes `records` as master-file text loadable anywhere: SOA first, every
/// name absolute, one `owner TTL IN TYPE rdata` line per record.
pub fn write_zone<'a, W: Write + ?Sized>(
    out: &mut W,
    origin: &Name,
    records: impl IntoIterator<Item = &'a Record>,
) -> std::io::Result<()> {
    let records: Vec<&Record> = records.into_iter().collect();
    if let Some(r) = records.iter().find(|r| r.dns_class != DNSClass::IN) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "record {} {} has class {}; only IN is supported",
                r.name,
                r.record_type(),
                r.dns_class
            ),
        ));
    }
    let soa = records
        .iter()
        .position(|r| r.record_type() == RecordType::SOA);
    let rest = records
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != soa)
        .map(|(_, r)| *r);
    let raw: crate::zone::RawRecords = soa.map(|i| records[i]).into_iter().chain(rest).collect();
    write_raw_zone(out, origin, raw.iter())
}

/// [`write_zone`] from records in wire form, in the order given (a
/// snapshot's [`crate::zone::Zone::raw_records`] puts the SOA first): a
/// served zone is written without making a hickory record of each.
pub fn write_raw_zone<'a, W: Write + ?Sized>(
    out: &mut W,
    origin: &Name,
    records: impl IntoIterator<Item = crate::zone::RawRr<'a>>,
) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    writeln!(w, "; zone {}", text::name_to_text(origin))?;
    let mut line = String::with_capacity(512);
    for r in records {
        if r.class != u16::from(DNSClass::IN) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "record {} {} has class {}; only IN is supported",
                    crate::zone::raw::name_from_wire(r.owner),
                    r.record_type(),
                    DNSClass::from(r.class)
                ),
            ));
        }
        line.clear();
        text::push_name_labels(&mut line, WireLabels(r.owner));
        line.push(' ');
        line.push_str(itoa_u32(r.ttl, &mut [0u8; 10]));
        line.push_str(" IN ");
        line.push_str(&text::type_to_text(r.rtype));
        line.push(' ');
        line.push_str(&rdata_to_text(r.record_type(), r.rdata));
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()
}

/// The labels of an uncompressed wire name.
struct WireLabels<'a>(&'a [u8]);

impl<'a> Iterator for WireLabels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let n = *self.0.first()? as usize;
        if n == 0 || self.0.len() < n + 1 {
            return None;
        }
        let label = &self.0[1..1 + n];
        self.0 = &self.0[1 + n..];
        Some(label)
    }
}

fn itoa_u32(mut v: u32, buf: &mut [u8; 10]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("digits")
}

#[cfg(test)]
mod tests;
