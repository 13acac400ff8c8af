//! Presentation-format primitives shared by the parser and the writer:
//! type mnemonics, numbers, TTLs, escapes, names, strings, encodings, times.

use std::fmt::Write as _;

/// Every type mnemonic BIND 9.18 knows. Only these may be written as
/// mnemonics; anything else is written as `TYPEnnn` so that the output loads
/// in BIND.
const TYPES: &[(u16, &str)] = &[
    (1, "A"),
    (2, "NS"),
    (3, "MD"),
    (4, "MF"),
    (5, "CNAME"),
    (6, "SOA"),
    (7, "MB"),
    (8, "MG"),
    (9, "MR"),
    (10, "NULL"),
    (11, "WKS"),
    (12, "PTR"),
    (13, "HINFO"),
    (14, "MINFO"),
    (15, "MX"),
    (16, "TXT"),
    (17, "RP"),
    (18, "AFSDB"),
    (19, "X25"),
    (20, "ISDN"),
    (21, "RT"),
    (22, "NSAP"),
    (23, "NSAP-PTR"),
    (24, "SIG"),
    (25, "KEY"),
    (26, "PX"),
    (27, "GPOS"),
    (28, "AAAA"),
    (29, "LOC"),
    (30, "NXT"),
    (31, "EID"),
    (32, "NIMLOC"),
    (33, "SRV"),
    (34, "ATMA"),
    (35, "NAPTR"),
    (36, "KX"),
    (37, "CERT"),
    (38, "A6"),
    (39, "DNAME"),
    (40, "SINK"),
    (41, "OPT"),
    (42, "APL"),
    (43, "DS"),
    (44, "SSHFP"),
    (45, "IPSECKEY"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (49, "DHCID"),
    (50, "NSEC3"),
    (51, "NSEC3PARAM"),
    (52, "TLSA"),
    (53, "SMIMEA"),
    (55, "HIP"),
    (56, "NINFO"),
    (57, "RKEY"),
    (58, "TALINK"),
    (59, "CDS"),
    (60, "CDNSKEY"),
    (61, "OPENPGPKEY"),
    (62, "CSYNC"),
    (63, "ZONEMD"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (66, "DSYNC"),
    (99, "SPF"),
    (100, "UINFO"),
    (101, "UID"),
    (102, "GID"),
    (103, "UNSPEC"),
    (104, "NID"),
    (105, "L32"),
    (106, "L64"),
    (107, "LP"),
    (108, "EUI48"),
    (109, "EUI64"),
    (249, "TKEY"),
    (250, "TSIG"),
    (251, "IXFR"),
    (252, "AXFR"),
    (253, "MAILB"),
    (254, "MAILA"),
    (255, "ANY"),
    (256, "URI"),
    (257, "CAA"),
    (258, "AVC"),
    (259, "DOA"),
    (260, "AMTRELAY"),
    (261, "RESINFO"),
    (262, "WALLET"),
    (32768, "TA"),
    (32769, "DLV"),
];

/// Meta types and pseudo-records that cannot appear in a zone.
pub(crate) fn is_meta(code: u16) -> bool {
    matches!(code, 0 | 41 | 128..=255)
}

pub(crate) fn type_mnemonic(code: u16) -> Option<&'static str> {
    TYPES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

pub(crate) fn type_to_text(code: u16) -> String {
    match type_mnemonic(code) {
        Some(n) => n.to_string(),
        None => format!("TYPE{code}"),
    }
}

/// Parses a type mnemonic or `TYPEnnn`, case-insensitively.
pub(crate) fn type_from_text(tok: &[u8]) -> Option<u16> {
    if let Some((c, _)) = TYPES
        .iter()
        .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(tok))
    {
        return Some(*c);
    }
    if tok.len() > 4 && tok[..4].eq_ignore_ascii_case(b"TYPE") {
        return parse_uint(&tok[4..], u16::MAX as u64).map(|v| v as u16);
    }
    None
}

/// Parses an unsigned decimal number no larger than `max`.
pub(crate) fn parse_uint(tok: &[u8], max: u64) -> Option<u64> {
    if tok.is_empty() || tok.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in tok {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (v <= max).then_some(v)
}

pub(crate) fn show(tok: &[u8]) -> String {
    String::from_utf8_lossy(tok).into_owned()
}

pub(crate) fn num<T: TryFrom<u64>>(tok: &[u8], what: &str) -> Result<T, String> {
    let max = match std::mem::size_of::<T>() {
        1 => u8::MAX as u64,
        2 => u16::MAX as u64,
        _ => u32::MAX as u64,
    };
    parse_uint(tok, max)
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("bad {what} '{}' (expected 0..={max})", show(tok)))
}

/// Parses a TTL: plain seconds or BIND units (`1w2d3h4m5s`, any case).
pub(crate) fn parse_ttl(tok: &[u8]) -> Option<u32> {
    if let Some(v) = parse_uint(tok, u32::MAX as u64) {
        return Some(v as u32);
    }
    let mut total: u64 = 0;
    let mut cur: Option<u64> = None;
    for &b in tok {
        if b.is_ascii_digit() {
            let c = cur.unwrap_or(0);
            cur = Some(c.checked_mul(10)?.checked_add(u64::from(b - b'0'))?);
            continue;
        }
        let mult = match b.to_ascii_lowercase() {
            b'w' => 604_800,
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        total = total.checked_add(cur.take()?.checked_mul(mult)?)?;
    }
    // A bare trailing number after units ("1h30") is ambiguous; BIND rejects it.
    if cur.is_some() || total > u64::from(u32::MAX) {
        return None;
    }
    Some(total as u32)
}

/// Decodes `\DDD` and `\X` escapes.
pub(crate) fn unescape(raw: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let (byte, used) = escape_at(raw, i)?;
        out.push(byte);
        i += used;
    }
    Ok(())
}

/// The byte an escape at `raw[i]` (a backslash) stands for, and its length.
fn escape_at(raw: &[u8], i: usize) -> Result<(u8, usize), String> {
    match raw.get(i + 1) {
        None => Err("backslash at end of text".into()),
        Some(d) if d.is_ascii_digit() => {
            let digits = raw
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(u8::is_ascii_digit));
            let Some(d) = digits else {
                return Err("bad \\DDD escape (needs three digits)".into());
            };
            let v =
                u32::from(d[0] - b'0') * 100 + u32::from(d[1] - b'0') * 10 + u32::from(d[2] - b'0');
            let v = u8::try_from(v).map_err(|_| format!("escape \\{} is above 255", show(d)))?;
            Ok((v, 4))
        }
        Some(&c) => Ok((c, 2)),
    }
}

/// Converts a `Name` to uncompressed wire form.
pub(crate) fn name_wire(name: &hickory_proto::rr::Name) -> Vec<u8> {
    let mut w = Vec::with_capacity(name.len() + 2);
    for l in name.iter() {
        w.push(l.len() as u8);
        w.extend_from_slice(l);
    }
    w.push(0);
    w
}

/// Parses a presentation-format name into uncompressed wire form appended to
/// `out`. Relative names get `origin` (wire form) appended; `@` is the origin.
pub(crate) fn parse_name(raw: &[u8], origin: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    if raw == b"@" {
        out.extend_from_slice(origin);
        return Ok(());
    }
    if raw == b"." {
        out.push(0);
        return Ok(());
    }
    if raw.is_empty() {
        return Err("empty name".into());
    }
    let mut label_start = out.len();
    out.push(0);
    let mut absolute = false;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let byte = match b {
            b'.' => {
                let len = out.len() - label_start - 1;
                if len == 0 {
                    return Err(format!("empty label in name '{}'", show(raw)));
                }
                if len > 63 {
                    return Err(format!(
                        "label longer than 63 octets in name '{}'",
                        show(raw)
                    ));
                }
                out[label_start] = len as u8;
                i += 1;
                if i == raw.len() {
                    absolute = true;
                    out.push(0);
                } else {
                    label_start = out.len();
                    out.push(0);
                }
                continue;
            }
            b'\\' => {
                let (v, used) =
                    escape_at(raw, i).map_err(|e| format!("{e} in name '{}'", show(raw)))?;
                i += used;
                v
            }
            _ => {
                i += 1;
                b
            }
        };
        out.push(byte);
    }
    if !absolute {
        let len = out.len() - label_start - 1;
        if len > 63 {
            return Err(format!(
                "label longer than 63 octets in name '{}'",
                show(raw)
            ));
        }
        out[label_start] = len as u8;
        out.extend_from_slice(origin);
    }
    if out.len() - start > 255 {
        return Err(format!("name '{}' is longer than 255 octets", show(raw)));
    }
    Ok(())
}

fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'"' | b'(' | b')' | b';' | b'\\' | b'@' | b'$' => {
                out.push('\\');
                out.push(b as char);
            }
            0x21..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

/// Appends the absolute presentation form of a name given by its labels.
pub(crate) fn push_name_labels<'a>(out: &mut String, labels: impl Iterator<Item = &'a [u8]>) {
    let mut any = false;
    for l in labels {
        push_label(out, l);
        out.push('.');
        any = true;
    }
    if !any {
        out.push('.');
    }
}

pub(crate) fn name_to_text(name: &hickory_proto::rr::Name) -> String {
    let mut s = String::with_capacity(name.len() + 4);
    push_name_labels(&mut s, name.iter());
    s
}

/// Appends a quoted character-string.
pub(crate) fn push_quoted(out: &mut String, bytes: &[u8]) {
    out.push('"');
    push_escaped(out, bytes);
    out.push('"');
}

/// Escapes bytes for use inside a quoted string.
pub(crate) fn push_escaped(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

pub(crate) fn hex_decode(text: &[u8], what: &str) -> Result<Vec<u8>, String> {
    let upper: Vec<u8> = text.iter().map(u8::to_ascii_uppercase).collect();
    data_encoding::HEXUPPER
        .decode(&upper)
        .map_err(|e| format!("bad hex in {what}: {e}"))
}

pub(crate) fn b64_decode(text: &[u8], what: &str) -> Result<Vec<u8>, String> {
    data_encoding::BASE64
        .decode(text)
        .map_err(|e| format!("bad base64 in {what}: {e}"))
}

/// Appends `enc` split into space-separated chunks: BIND's lexer limits token
/// length, and the multi-token form is valid wherever the field is last.
pub(crate) fn push_chunked(out: &mut String, enc: &str) {
    let mut first = true;
    for chunk in enc.as_bytes().chunks(64) {
        if !first {
            out.push(' ');
        }
        first = false;
        // Encoders produce ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    data_encoding::HEXUPPER.encode(bytes)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Parses an RRSIG time: `YYYYMMDDHHMMSS` (taken modulo 2^32 as RFC 4034
/// serial arithmetic allows) or a plain integer.
pub(crate) fn parse_sig_time(tok: &[u8]) -> Result<u32, String> {
    if tok.len() != 14 {
        return num::<u32>(tok, "signature time");
    }
    let bad = || format!("bad signature time '{}'", show(tok));
    let field = |a: usize, b: usize| {
        parse_uint(&tok[a..b], 9999)
            .map(|v| v as i64)
            .ok_or_else(bad)
    };
    let (y, mo, d) = (field(0, 4)?, field(4, 6)?, field(6, 8)?);
    let (h, mi, s) = (field(8, 10)?, field(10, 12)?, field(12, 14)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970
        || !(1..=12).contains(&mo)
        || d < 1
        || d > mdays[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || s > 60
    {
        return Err(bad());
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    Ok(secs as u64 as u32)
}

pub(crate) fn sig_time_to_text(t: u32) -> String {
    let t = i64::from(t);
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let r = t.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        r / 3600,
        r / 60 % 60,
        r % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(
            parse_ttl(b"1w2d3h4m5s"),
            Some(604_800 + 172_800 + 10_800 + 240 + 5)
        );
        assert_eq!(parse_ttl(b"1H"), Some(3600));
        assert_eq!(parse_ttl(b"3600"), Some(3600));
        assert_eq!(parse_ttl(b"1h30"), None);
        assert_eq!(parse_ttl(b"4294967296"), None);
        assert_eq!(parse_ttl(b"x"), None);
    }

    #[test]
    fn names() {
        let origin = b"\x07example\x03com\x00";
        let mut out = Vec::new();
        parse_name(b"a\\.b\\065\\\\", origin, &mut out).unwrap();
        assert_eq!(out, b"\x05a.bA\\\x07example\x03com\x00");
        out.clear();
        parse_name(b"@", origin, &mut out).unwrap();
        assert_eq!(out, origin);
        out.clear();
        parse_name(b"X.", origin, &mut out).unwrap();
        assert_eq!(out, b"\x01X\x00");
        assert!(parse_name(b"a..b", origin, &mut Vec::new()).is_err());
        assert!(parse_name(&[b'a'; 64], origin, &mut Vec::new()).is_err());
        assert!(parse_name(b"a\\256", origin, &mut Vec::new()).is_err());
        let mut s = String::new();
        push_name_labels(&mut s, [&b"a.b"[..], b"\x00 @$", b"Z"].into_iter());
        assert_eq!(s, "a\\.b.\\000\\032\\@\\$.Z.");
    }

    #[test]
    fn sig_times() {
        assert_eq!(parse_sig_time(b"20240101000000").unwrap(), 1_704_067_200);
        assert_eq!(sig_time_to_text(1_704_067_200), "20240101000000");
        assert_eq!(parse_sig_time(b"1704067200").unwrap(), 1_704_067_200);
        assert_eq!(sig_time_to_text(u32::MAX), "21060207062815");
        assert_eq!(parse_sig_time(b"21060207062815").unwrap(), u32::MAX);
        assert!(parse_sig_time(b"20240230000000").is_err());
    }
}
