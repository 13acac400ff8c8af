//! Per-type RDATA: presentation text to uncompressed wire, and back.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::lexer::Tok;
use super::text::{
    b64, b64_decode, hex_decode, hex_upper, num, parse_name, parse_sig_time, parse_ttl,
    push_chunked, push_escaped, push_name_labels, push_quoted, show, sig_time_to_text,
    type_from_text, type_to_text, unescape,
};

/// The RDATA tokens of one entry.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    toks: &'a [Tok],
    i: usize,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8], toks: &'a [Tok]) -> Self {
        Self { buf, toks, i: 0 }
    }

    pub fn peek(&self) -> Option<(&'a [u8], bool)> {
        self.toks
            .get(self.i)
            .map(|t| (&self.buf[t.start..t.end], t.quoted))
    }

    fn next_tok(&mut self, what: &str) -> Result<(&'a [u8], bool), String> {
        let t = self.peek().ok_or_else(|| format!("missing {what}"))?;
        self.i += 1;
        Ok(t)
    }

    pub fn next(&mut self, what: &str) -> Result<&'a [u8], String> {
        self.next_tok(what).map(|t| t.0)
    }

    pub fn is_empty(&self) -> bool {
        self.i >= self.toks.len()
    }

    pub fn finish(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some((t, _)) => Err(format!("unexpected extra data '{}'", show(t))),
        }
    }

    /// The remaining tokens concatenated (base64 and hex may be split).
    fn rest(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        while let Some((t, _)) = self.peek() {
            v.extend_from_slice(t);
            self.i += 1;
        }
        v
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        num(self.next(what)?, what)
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        num(self.next(what)?, what)
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        num(self.next(what)?, what)
    }
    fn ttl(&mut self, what: &str) -> Result<u32, String> {
        let t = self.next(what)?;
        parse_ttl(t).ok_or_else(|| format!("bad {what} '{}'", show(t)))
    }
    fn name(&mut self, what: &str, origin: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        parse_name(self.next(what)?, origin, out)
    }
    /// A `<character-string>`, appended with its length octet.
    fn charstr(&mut self, what: &str, out: &mut Vec<u8>) -> Result<(), String> {
        let t = self.next(what)?;
        let at = out.len();
        out.push(0);
        unescape(t, out)?;
        let len = out.len() - at - 1;
        if len > 255 {
            return Err(format!("{what} longer than 255 octets"));
        }
        out[at] = len as u8;
        Ok(())
    }
    fn b64_rest(&mut self, what: &str, out: &mut Vec<u8>) -> Result<(), String> {
        let t = self.rest();
        if t.is_empty() {
            return Err(format!("missing {what}"));
        }
        out.extend(b64_decode(&t, what)?);
        Ok(())
    }
    fn hex_rest(&mut self, what: &str, out: &mut Vec<u8>) -> Result<usize, String> {
        let t = self.rest();
        if t.is_empty() {
            return Err(format!("missing {what}"));
        }
        let v = hex_decode(&t, what)?;
        out.extend_from_slice(&v);
        Ok(v.len())
    }
}

fn ipv4(t: &[u8]) -> Result<Ipv4Addr, String> {
    std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad IPv4 address '{}'", show(t)))
}

fn ipv6(t: &[u8]) -> Result<Ipv6Addr, String> {
    std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad IPv6 address '{}'", show(t)))
}

/// DNSSEC algorithm: number or mnemonic (DS, DNSKEY, RRSIG, CERT accept both).
fn algorithm(t: &[u8]) -> Result<u8, String> {
    const ALGS: &[(&str, u8)] = &[
        ("RSAMD5", 1),
        ("DH", 2),
        ("DSA", 3),
        ("RSASHA1", 5),
        ("DSA-NSEC3-SHA1", 6),
        ("NSEC3DSA", 6),
        ("RSASHA1-NSEC3-SHA1", 7),
        ("NSEC3RSASHA1", 7),
        ("RSASHA256", 8),
        ("RSASHA512", 10),
        ("ECCGOST", 12),
        ("ECDSAP256SHA256", 13),
        ("ECDSAP384SHA384", 14),
        ("ED25519", 15),
        ("ED448", 16),
        ("INDIRECT", 252),
        ("PRIVATEDNS", 253),
        ("PRIVATEOID", 254),
    ];
    if let Some((_, v)) = ALGS
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(t))
    {
        return Ok(*v);
    }
    num(t, "algorithm")
}

fn type_field(t: &[u8]) -> Result<u16, String> {
    type_from_text(t).ok_or_else(|| format!("unknown type '{}'", show(t)))
}

fn bitmap_from_text(f: &mut Fields<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let mut types = Vec::new();
    while !f.is_empty() {
        types.push(type_field(f.next("type")?)?);
    }
    types.sort_unstable();
    types.dedup();
    let mut i = 0;
    while i < types.len() {
        let window = types[i] >> 8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while i < types.len() && types[i] >> 8 == window {
            let low = (types[i] & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window as u8);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    Ok(())
}

/// Parses `\# len hex` (RFC 3597); the `\#` token has been consumed.
pub(crate) fn generic_from_text(f: &mut Fields<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let len = f.u16("RDATA length")?;
    let hex = f.rest();
    let data = hex_decode(&hex, "generic RDATA")?;
    if data.len() != usize::from(len) {
        return Err(format!(
            "generic RDATA has {} octets but length says {len}",
            data.len()
        ));
    }
    out.extend(data);
    Ok(())
}

pub(crate) fn generic_to_text(wire: &[u8]) -> String {
    let mut s = format!("\\# {}", wire.len());
    if !wire.is_empty() {
        s.push(' ');
        push_chunked(&mut s, &hex_upper(wire));
    }
    s
}

fn svc_key_from_text(t: &[u8]) -> Result<u16, String> {
    const KEYS: &[&str] = &[
        "mandatory",
        "alpn",
        "no-default-alpn",
        "port",
        "ipv4hint",
        "ech",
        "ipv6hint",
        "dohpath",
    ];
    if let Some(k) = KEYS
        .iter()
        .position(|k| k.as_bytes().eq_ignore_ascii_case(t))
    {
        return Ok(k as u16);
    }
    if t.len() > 3
        && t[..3].eq_ignore_ascii_case(b"key")
        && let Ok(k) = num::<u16>(&t[3..], "key")
        && k != 65535
    {
        return Ok(k);
    }
    Err(format!("unknown SVCB key '{}'", show(t)))
}

/// Key names BIND writes; others (dohpath too) are written as `keyNNNN`.
fn svc_key_to_text(k: u16) -> String {
    const KEYS: &[&str] = &[
        "mandatory",
        "alpn",
        "no-default-alpn",
        "port",
        "ipv4hint",
        "ech",
        "ipv6hint",
    ];
    match KEYS.get(usize::from(k)) {
        Some(n) => (*n).to_string(),
        None => format!("key{k}"),
    }
}

fn svc_param(tok: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let (key, raw) = match tok.iter().position(|&b| b == b'=') {
        Some(p) => (&tok[..p], Some(&tok[p + 1..])),
        None => (tok, None),
    };
    let k = svc_key_from_text(key)?;
    // keyNNNN always carries the raw wire value, even for keys with a syntax (as BIND reads it).
    let generic = key.len() > 3 && key[..3].eq_ignore_ascii_case(b"key");
    let mut value = Vec::new();
    if let Some(raw) = raw {
        let raw = if raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' {
            &raw[1..raw.len() - 1]
        } else {
            raw
        };
        unescape(raw, &mut value)?;
    }
    let name = || String::from_utf8_lossy(key).into_owned();
    if value.is_empty() && matches!(k, 0 | 1 | 3 | 4 | 5 | 6) && !generic {
        return Err(format!("SVCB key {} needs a value", name()));
    }
    let list = |v: &[u8]| -> Vec<Vec<u8>> { v.split(|&b| b == b',').map(<[u8]>::to_vec).collect() };
    let mut w = Vec::new();
    match k {
        _ if generic => w = value,
        0 => {
            // Sorted as BIND does (RFC 9460 requires ascending order on the wire).
            let mut keys = list(&value)
                .iter()
                .map(|k| svc_key_from_text(k))
                .collect::<Result<Vec<_>, _>>()?;
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err("duplicate key in mandatory".into());
            }
            keys.iter().for_each(|k| w.extend(k.to_be_bytes()));
        }
        1 => {
            // alpn values are a comma list in which "\," and "\\" escape.
            let mut item = Vec::new();
            let mut i = 0;
            loop {
                let end = i >= value.len();
                if end || value[i] == b',' {
                    if item.is_empty() || item.len() > 255 {
                        return Err("bad alpn value (empty or longer than 255 octets)".into());
                    }
                    w.push(item.len() as u8);
                    w.append(&mut item);
                    if end {
                        break;
                    }
                } else if value[i] == b'\\' && i + 1 < value.len() {
                    i += 1;
                    item.push(value[i]);
                } else {
                    item.push(value[i]);
                }
                i += 1;
            }
        }
        2 => {
            if !value.is_empty() {
                return Err("no-default-alpn takes no value".into());
            }
        }
        3 => w.extend(num::<u16>(&value, "port")?.to_be_bytes()),
        4 => {
            for a in list(&value) {
                w.extend(ipv4(&a)?.octets());
            }
        }
        5 => w.extend(b64_decode(&value, "ech")?),
        6 => {
            for a in list(&value) {
                w.extend(ipv6(&a)?.octets());
            }
        }
        _ => w = value,
    }
    if w.len() > 65535 {
        return Err(format!("SVCB key {} value too long", name()));
    }
    Ok((k, w))
}

fn loc_decimal(t: &[u8], frac: usize) -> Option<(bool, u64)> {
    let (neg, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    let (int, fr) = match t.iter().position(|&b| b == b'.') {
        Some(p) => (&t[..p], &t[p + 1..]),
        None => (t, &b""[..]),
    };
    if fr.len() > frac || (int.is_empty() && fr.is_empty()) {
        return None;
    }
    let mut v = if int.is_empty() {
        0
    } else {
        super::text::parse_uint(int, u32::MAX as u64)?
    };
    for i in 0..frac {
        let d = match fr.get(i) {
            Some(b) if b.is_ascii_digit() => u64::from(b - b'0'),
            Some(_) => return None,
            None => 0,
        };
        v = v * 10 + d;
    }
    Some((neg, v))
}

fn strip_m(t: &[u8]) -> &[u8] {
    match t.last() {
        Some(b'm' | b'M') => &t[..t.len() - 1],
        _ => t,
    }
}

fn loc_coord(f: &mut Fields<'_>, max_deg: u64, pos: u8, neg: u8) -> Result<u32, String> {
    let is_hemi = |t: &[u8]| {
        t.len() == 1 && (t[0].eq_ignore_ascii_case(&pos) || t[0].eq_ignore_ascii_case(&neg))
    };
    let deg = num::<u32>(f.next("degrees")?, "degrees")? as u64;
    let (mut min, mut ms) = (0u64, 0u64);
    let mut t = f.next("hemisphere")?;
    if !is_hemi(t) {
        min = num::<u8>(t, "minutes")? as u64;
        t = f.next("hemisphere")?;
        if !is_hemi(t) {
            ms = match loc_decimal(t, 3) {
                Some((false, v)) if v < 60_000 => v,
                _ => return Err(format!("bad seconds '{}'", show(t))),
            };
            t = f.next("hemisphere")?;
        }
    }
    if !is_hemi(t) {
        return Err(format!(
            "expected {} or {}, got '{}'",
            pos as char,
            neg as char,
            show(t)
        ));
    }
    let total = (deg * 60 + min) * 60_000 + ms;
    if min >= 60 || total > max_deg * 3_600_000 {
        return Err("coordinate out of range".into());
    }
    let v = if t[0].eq_ignore_ascii_case(&pos) {
        (1u64 << 31) + total
    } else {
        (1u64 << 31) - total
    };
    Ok(v as u32)
}

fn loc_size(t: &[u8]) -> Result<u8, String> {
    let cm = match loc_decimal(strip_m(t), 2) {
        Some((false, v)) if v <= 9_000_000_000 => v,
        _ => return Err(format!("bad LOC size/precision '{}'", show(t))),
    };
    let mut exp = 0u32;
    while exp < 9 && cm >= 10u64.pow(exp + 1) {
        exp += 1;
    }
    Ok(((cm / 10u64.pow(exp)) as u8) << 4 | exp as u8)
}

fn loc_from_text(f: &mut Fields<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let lat = loc_coord(f, 90, b'N', b'S')?;
    let lon = loc_coord(f, 180, b'E', b'W')?;
    let t = f.next("altitude")?;
    let alt = match loc_decimal(strip_m(t), 2) {
        Some((neg, v)) => {
            let cm = if neg { -(v as i64) } else { v as i64 } + 10_000_000;
            u32::try_from(cm).map_err(|_| format!("altitude '{}' out of range", show(t)))?
        }
        None => return Err(format!("bad altitude '{}'", show(t))),
    };
    let mut p = [0x12u8, 0x16, 0x13];
    for slot in &mut p {
        if f.is_empty() {
            break;
        }
        *slot = loc_size(f.next("size")?)?;
    }
    out.extend([0, p[0], p[1], p[2]]);
    out.extend(lat.to_be_bytes());
    out.extend(lon.to_be_bytes());
    out.extend(alt.to_be_bytes());
    Ok(())
}

/// Text to wire for a type's own presentation format. The generic `\#` form
/// is handled by the caller.
pub(crate) fn from_text(
    code: u16,
    f: &mut Fields<'_>,
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match code {
        1 => out.extend(ipv4(f.next("address")?)?.octets()),
        28 => out.extend(ipv6(f.next("address")?)?.octets()),
        2..=5 | 7..=9 | 12 | 23 | 39 => f.name("name", origin, out)?,
        15 | 18 | 21 | 36 | 107 => {
            out.extend(f.u16("preference")?.to_be_bytes());
            f.name("name", origin, out)?;
        }
        6 => {
            f.name("primary server", origin, out)?;
            f.name("mailbox", origin, out)?;
            out.extend(f.u32("serial")?.to_be_bytes());
            for what in ["refresh", "retry", "expire", "minimum"] {
                out.extend(f.ttl(what)?.to_be_bytes());
            }
        }
        16 | 56 | 99 | 258 | 261 | 262 => {
            f.charstr("text", out)?;
            while !f.is_empty() {
                f.charstr("text", out)?;
            }
        }
        13 => {
            f.charstr("CPU", out)?;
            f.charstr("OS", out)?;
        }
        14 | 17 | 58 => {
            f.name("mailbox", origin, out)?;
            f.name("name", origin, out)?;
        }
        33 => {
            for what in ["priority", "weight", "port"] {
                out.extend(f.u16(what)?.to_be_bytes());
            }
            f.name("target", origin, out)?;
        }
        35 => {
            out.extend(f.u16("order")?.to_be_bytes());
            out.extend(f.u16("preference")?.to_be_bytes());
            f.charstr("flags", out)?;
            f.charstr("services", out)?;
            f.charstr("regexp", out)?;
            f.name("replacement", origin, out)?;
        }
        29 => loc_from_text(f, out)?,
        19 => f.charstr("address", out)?,
        20 => {
            f.charstr("address", out)?;
            if !f.is_empty() {
                f.charstr("subaddress", out)?;
            }
        }
        27 => {
            for what in ["longitude", "latitude", "altitude"] {
                f.charstr(what, out)?;
            }
        }
        26 => {
            out.extend(f.u16("preference")?.to_be_bytes());
            f.name("MAP822", origin, out)?;
            f.name("MAPX400", origin, out)?;
        }
        22 => {
            let t = f.next("address")?;
            if t.len() < 3 || !t[..2].eq_ignore_ascii_case(b"0x") {
                return Err(format!("bad NSAP address '{}' (needs 0x prefix)", show(t)));
            }
            let hex: Vec<u8> = t[2..].iter().copied().filter(|&b| b != b'.').collect();
            out.extend(hex_decode(&hex, "NSAP address")?);
        }
        31 | 32 => {
            f.hex_rest("data", out)?;
        }
        40 => {
            out.push(f.u8("meaning")?);
            out.push(f.u8("coding")?);
            out.push(f.u8("subcoding")?);
            let data = f.rest();
            out.extend(b64_decode(&data, "data")?);
        }
        66 => {
            out.extend(type_field(f.next("type")?)?.to_be_bytes());
            let t = f.next("scheme")?;
            out.push(if t.eq_ignore_ascii_case(b"NOTIFY") {
                1
            } else {
                num(t, "scheme")?
            });
            out.extend(f.u16("port")?.to_be_bytes());
            f.name("target", origin, out)?;
        }
        260 => {
            out.push(f.u8("precedence")?);
            let d = f.u8("discovery bit")?;
            let rt = f.u8("relay type")?;
            if d > 1 || rt > 127 {
                return Err("bad discovery bit or relay type".into());
            }
            out.push(d << 7 | rt);
            match rt {
                0 => {
                    if f.peek().is_some_and(|t| t.0 == b".") {
                        f.next("relay")?;
                    }
                }
                1 => out.extend(ipv4(f.next("relay")?)?.octets()),
                2 => out.extend(ipv6(f.next("relay")?)?.octets()),
                3 => f.name("relay", origin, out)?,
                _ => f.hex_rest("relay", out).map(|_| ())?,
            }
        }
        11 => {
            out.extend(ipv4(f.next("address")?)?.octets());
            let p = f.next("protocol")?;
            out.push(match p.to_ascii_lowercase().as_slice() {
                b"tcp" => 6,
                b"udp" => 17,
                _ => num(p, "protocol")?,
            });
            let mut bits = Vec::new();
            while !f.is_empty() {
                let port = usize::from(wks_port(f.next("service")?)?);
                if bits.len() <= port / 8 {
                    bits.resize(port / 8 + 1, 0);
                }
                bits[port / 8] |= 0x80 >> (port % 8);
            }
            out.extend(bits);
        }
        37 => {
            let t = f.next("certificate type")?;
            const CT: &[(&str, u16)] = &[
                ("PKIX", 1),
                ("SPKI", 2),
                ("PGP", 3),
                ("IPKIX", 4),
                ("ISPKI", 5),
                ("IPGP", 6),
                ("ACPKIX", 7),
                ("IACPKIX", 8),
                ("URI", 253),
                ("OID", 254),
            ];
            let ct = match CT
                .iter()
                .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(t))
            {
                Some((_, v)) => *v,
                None => num(t, "certificate type")?,
            };
            out.extend(ct.to_be_bytes());
            out.extend(f.u16("key tag")?.to_be_bytes());
            out.push(algorithm(f.next("algorithm")?)?);
            f.b64_rest("certificate", out)?;
        }
        42 => {
            while !f.is_empty() {
                apl_item(f.next("APL item")?, out)?;
            }
        }
        43 | 59 | 32768 | 32769 => {
            out.extend(f.u16("key tag")?.to_be_bytes());
            out.push(algorithm(f.next("algorithm")?)?);
            let t = f.next("digest type")?;
            let dt = match t.to_ascii_uppercase().as_slice() {
                b"SHA-1" | b"SHA1" => 1,
                b"SHA-256" | b"SHA256" => 2,
                b"GOST" => 3,
                b"SHA-384" | b"SHA384" => 4,
                _ => num(t, "digest type")?,
            };
            out.push(dt);
            let len = f.hex_rest("digest", out)?;
            let want = match dt {
                1 => Some(20),
                2 | 3 => Some(32),
                4 => Some(48),
                _ => None,
            };
            if want.is_some_and(|w| w != len) {
                return Err(format!(
                    "digest type {dt} needs {} octets, got {len}",
                    want.unwrap_or(0)
                ));
            }
        }
        44 => {
            out.push(f.u8("algorithm")?);
            out.push(f.u8("fingerprint type")?);
            f.hex_rest("fingerprint", out)?;
        }
        52 | 53 => {
            out.push(f.u8("usage")?);
            out.push(f.u8("selector")?);
            out.push(f.u8("matching type")?);
            f.hex_rest("certificate data", out)?;
        }
        45 => {
            out.push(f.u8("precedence")?);
            let gt = f.u8("gateway type")?;
            out.push(gt);
            out.push(f.u8("algorithm")?);
            let g = f.next("gateway")?;
            match gt {
                0 if g == b"." => {}
                1 => out.extend(ipv4(g)?.octets()),
                2 => out.extend(ipv6(g)?.octets()),
                3 => parse_name(g, origin, out)?,
                _ => return Err(format!("bad gateway '{}' for gateway type {gt}", show(g))),
            }
            let key = f.rest();
            out.extend(b64_decode(&key, "public key")?);
        }
        24 | 46 => {
            out.extend(type_field(f.next("type covered")?)?.to_be_bytes());
            out.push(algorithm(f.next("algorithm")?)?);
            out.push(f.u8("labels")?);
            out.extend(f.ttl("original TTL")?.to_be_bytes());
            out.extend(parse_sig_time(f.next("expiration")?)?.to_be_bytes());
            out.extend(parse_sig_time(f.next("inception")?)?.to_be_bytes());
            out.extend(f.u16("key tag")?.to_be_bytes());
            f.name("signer", origin, out)?;
            f.b64_rest("signature", out)?;
        }
        47 => {
            f.name("next name", origin, out)?;
            bitmap_from_text(f, out)?;
        }
        25 | 48 | 57 | 60 => {
            out.extend(f.u16("flags")?.to_be_bytes());
            out.push(f.u8("protocol")?);
            out.push(algorithm(f.next("algorithm")?)?);
            f.b64_rest("key", out)?;
        }
        49 => f.b64_rest("DHCID data", out)?,
        61 => f.b64_rest("key", out)?,
        50 | 51 => {
            out.push(f.u8("hash algorithm")?);
            out.push(f.u8("flags")?);
            out.extend(f.u16("iterations")?.to_be_bytes());
            let salt = f.next("salt")?;
            if salt == b"-" {
                out.push(0);
            } else {
                let s = hex_decode(salt, "salt")?;
                if s.len() > 255 {
                    return Err("salt longer than 255 octets".into());
                }
                out.push(s.len() as u8);
                out.extend(s);
            }
            if code == 50 {
                let t = f.next("next hashed owner")?;
                let upper: Vec<u8> = t.iter().map(u8::to_ascii_uppercase).collect();
                let h = data_encoding::BASE32HEX_NOPAD
                    .decode(&upper)
                    .map_err(|e| format!("bad base32hex next hashed owner: {e}"))?;
                if h.is_empty() || h.len() > 255 {
                    return Err("bad next hashed owner length".into());
                }
                out.push(h.len() as u8);
                out.extend(h);
                bitmap_from_text(f, out)?;
            }
        }
        55 => {
            let alg = f.u8("PK algorithm")?;
            let hit = hex_decode(f.next("HIT")?, "HIT")?;
            let pk = b64_decode(f.next("public key")?, "public key")?;
            if hit.is_empty() || hit.len() > 255 || pk.is_empty() || pk.len() > 65535 {
                return Err("bad HIT or public key length".into());
            }
            out.push(hit.len() as u8);
            out.push(alg);
            out.extend((pk.len() as u16).to_be_bytes());
            out.extend(hit);
            out.extend(pk);
            while !f.is_empty() {
                f.name("rendezvous server", origin, out)?;
            }
        }
        62 => {
            out.extend(f.u32("serial")?.to_be_bytes());
            out.extend(f.u16("flags")?.to_be_bytes());
            bitmap_from_text(f, out)?;
        }
        63 => {
            out.extend(f.u32("serial")?.to_be_bytes());
            out.push(f.u8("scheme")?);
            out.push(f.u8("hash algorithm")?);
            if f.hex_rest("digest", out)? < 12 {
                return Err("digest shorter than 12 octets".into());
            }
        }
        64 | 65 => {
            out.extend(f.u16("priority")?.to_be_bytes());
            f.name("target", origin, out)?;
            let mut params = Vec::new();
            while let Some((t, quoted)) = f.peek() {
                f.i += 1;
                if quoted {
                    return Err(format!("unexpected quoted string \"{}\"", show(t)));
                }
                params.push(svc_param(t)?);
            }
            params.sort_by_key(|p| p.0);
            if params.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err("duplicate SVCB key".into());
            }
            for (k, v) in params {
                out.extend(k.to_be_bytes());
                out.extend((v.len() as u16).to_be_bytes());
                out.extend(v);
            }
        }
        104 | 106 => {
            out.extend(f.u16("preference")?.to_be_bytes());
            let t = f.next("locator")?;
            let groups: Vec<&[u8]> = t.split(|&b| b == b':').collect();
            if groups.len() != 4 {
                return Err(format!("bad locator '{}'", show(t)));
            }
            for g in groups {
                if g.is_empty() || g.len() > 4 {
                    return Err(format!("bad locator '{}'", show(t)));
                }
                let mut padded = vec![b'0'; 4 - g.len()];
                padded.extend_from_slice(g);
                out.extend(hex_decode(&padded, "locator")?);
            }
        }
        105 => {
            out.extend(f.u16("preference")?.to_be_bytes());
            out.extend(ipv4(f.next("locator")?)?.octets());
        }
        108 | 109 => {
            let n = if code == 108 { 6 } else { 8 };
            let t = f.next("address")?;
            let groups: Vec<&[u8]> = t.split(|&b| b == b'-').collect();
            if groups.len() != n || groups.iter().any(|g| g.len() != 2) {
                return Err(format!("bad EUI address '{}'", show(t)));
            }
            for g in groups {
                out.extend(hex_decode(g, "EUI address")?);
            }
        }
        256 => {
            out.extend(f.u16("priority")?.to_be_bytes());
            out.extend(f.u16("weight")?.to_be_bytes());
            let t = f.next("target")?;
            let at = out.len();
            unescape(t, out)?;
            if out.len() == at {
                return Err("empty URI target".into());
            }
        }
        257 => {
            out.push(f.u8("flags")?);
            let tag = f.next("tag")?;
            if tag.is_empty() || tag.len() > 255 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(format!("bad CAA tag '{}'", show(tag)));
            }
            out.push(tag.len() as u8);
            out.extend_from_slice(tag);
            unescape(f.next("value")?, out)?;
        }
        _ => {
            return Err(format!(
                "presentation format of type {} is not supported; use the RFC 3597 form \\# LEN HEX",
                type_to_text(code)
            ));
        }
    }
    f.finish()
}

/// A WKS service: a port number or one of the few names every services
/// database has (BIND consults the system's, which varies by host).
fn wks_port(t: &[u8]) -> Result<u16, String> {
    const SERVICES: &[(&str, u16)] = &[
        ("ftp", 21),
        ("ssh", 22),
        ("telnet", 23),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("pop3", 110),
        ("imap", 143),
        ("https", 443),
    ];
    match SERVICES
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(t))
    {
        Some((_, p)) => Ok(*p),
        None => num(t, "service port"),
    }
}

fn apl_item(t: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let bad = || format!("bad APL item '{}'", show(t));
    let (neg, rest) = match t.first() {
        Some(b'!') => (true, &t[1..]),
        _ => (false, t),
    };
    let colon = rest.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let slash = rest.iter().position(|&b| b == b'/').ok_or_else(bad)?;
    if slash < colon {
        return Err(bad());
    }
    let afi: u16 = num(&rest[..colon], "address family")?;
    let addr = &rest[colon + 1..slash];
    let prefix: u8 = num(&rest[slash + 1..], "prefix")?;
    let bytes: Vec<u8> = match afi {
        1 if prefix <= 32 => ipv4(addr)?.octets().to_vec(),
        2 if prefix <= 128 => ipv6(addr)?.octets().to_vec(),
        _ => return Err(bad()),
    };
    let len = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    out.extend(afi.to_be_bytes());
    out.push(prefix);
    out.push(if neg { 0x80 } else { 0 } | len as u8);
    out.extend_from_slice(&bytes[..len]);
    Ok(())
}

/// Reader over wire RDATA; every accessor returns `None` when the data does
/// not fit, which makes the caller fall back to the generic form.
struct Rd<'a> {
    w: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.w.get(self.p..self.p + n)?;
        self.p += n;
        Some(b)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn rest(&mut self) -> &'a [u8] {
        let r = &self.w[self.p.min(self.w.len())..];
        self.p = self.w.len();
        r
    }
    fn done(&self) -> bool {
        self.p >= self.w.len()
    }
    fn name(&mut self, s: &mut String) -> Option<()> {
        let start = self.p;
        let mut labels = Vec::new();
        loop {
            let len = usize::from(self.u8()?);
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            labels.push(self.bytes(len)?);
        }
        if self.p - start > 255 {
            return None;
        }
        push_name_labels(s, labels.into_iter());
        Some(())
    }
    fn charstr(&mut self, s: &mut String) -> Option<()> {
        let len = usize::from(self.u8()?);
        push_quoted(s, self.bytes(len)?);
        Some(())
    }
}

fn bitmap_to_text(r: &mut Rd<'_>, s: &mut String) -> Option<()> {
    let mut last: Option<u8> = None;
    while !r.done() {
        let window = r.u8()?;
        let len = usize::from(r.u8()?);
        if last.is_some_and(|l| l >= window) || len == 0 || len > 32 {
            return None;
        }
        last = Some(window);
        for (i, &byte) in r.bytes(len)?.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let code = u16::from(window) << 8 | (i * 8 + bit) as u16;
                    s.push(' ');
                    s.push_str(&type_to_text(code));
                }
            }
        }
    }
    Some(())
}

fn loc_size_to_text(v: u8, s: &mut String) -> Option<()> {
    let (man, exp) = (u64::from(v >> 4), u32::from(v & 0xf));
    if man > 9 || exp > 9 {
        return None;
    }
    let cm = man * 10u64.pow(exp);
    let _ = write!(s, " {}.{:02}m", cm / 100, cm % 100);
    Some(())
}

fn loc_coord_to_text(v: u32, pos: char, neg: char, s: &mut String) {
    let d = i64::from(v) - (1i64 << 31);
    let a = d.unsigned_abs();
    let _ = write!(
        s,
        "{} {} {}.{:03} {}",
        a / 3_600_000,
        a / 60_000 % 60,
        a / 1000 % 60,
        a % 1000,
        if d >= 0 { pos } else { neg }
    );
}

/// Wire to text in the type's own presentation format, or `None` when the
/// type has none here or the data does not fit it.
pub(crate) fn to_text(code: u16, wire: &[u8]) -> Option<String> {
    let mut r = Rd { w: wire, p: 0 };
    let mut s = String::with_capacity(wire.len() * 2 + 16);
    match code {
        1 => s.push_str(&Ipv4Addr::from(<[u8; 4]>::try_from(r.bytes(4)?).ok()?).to_string()),
        28 => s.push_str(&Ipv6Addr::from(<[u8; 16]>::try_from(r.bytes(16)?).ok()?).to_string()),
        2..=5 | 7..=9 | 12 | 23 | 39 => r.name(&mut s)?,
        15 | 18 | 21 | 36 | 107 => {
            let _ = write!(s, "{} ", r.u16()?);
            r.name(&mut s)?;
        }
        6 => {
            r.name(&mut s)?;
            s.push(' ');
            r.name(&mut s)?;
            for _ in 0..5 {
                let _ = write!(s, " {}", r.u32()?);
            }
        }
        16 | 56 | 99 | 258 | 261 | 262 => {
            r.charstr(&mut s)?;
            while !r.done() {
                s.push(' ');
                r.charstr(&mut s)?;
            }
        }
        13 => {
            r.charstr(&mut s)?;
            s.push(' ');
            r.charstr(&mut s)?;
        }
        14 | 17 | 58 => {
            r.name(&mut s)?;
            s.push(' ');
            r.name(&mut s)?;
        }
        33 => {
            let _ = write!(s, "{} {} {} ", r.u16()?, r.u16()?, r.u16()?);
            r.name(&mut s)?;
        }
        35 => {
            let _ = write!(s, "{} {} ", r.u16()?, r.u16()?);
            for _ in 0..3 {
                r.charstr(&mut s)?;
                s.push(' ');
            }
            r.name(&mut s)?;
        }
        19 => r.charstr(&mut s)?,
        20 => {
            r.charstr(&mut s)?;
            if !r.done() {
                s.push(' ');
                r.charstr(&mut s)?;
            }
        }
        27 => {
            for sep in ["", " ", " "] {
                s.push_str(sep);
                r.charstr(&mut s)?;
            }
        }
        26 => {
            let _ = write!(s, "{} ", r.u16()?);
            r.name(&mut s)?;
            s.push(' ');
            r.name(&mut s)?;
        }
        22 => {
            s.push_str("0x");
            s.push_str(&data_encoding::HEXLOWER.encode(r.rest()));
        }
        31 | 32 => push_chunked(&mut s, &hex_upper(r.rest())),
        40 => {
            let _ = write!(s, "{} {} {}", r.u8()?, r.u8()?, r.u8()?);
            let data = r.rest();
            if !data.is_empty() {
                s.push(' ');
                push_chunked(&mut s, &b64(data));
            }
        }
        66 => {
            let _ = write!(s, "{} {} {} ", type_to_text(r.u16()?), r.u8()?, r.u16()?);
            r.name(&mut s)?;
        }
        260 => {
            let prec = r.u8()?;
            let dt = r.u8()?;
            let _ = write!(s, "{prec} {} {} ", dt >> 7, dt & 0x7f);
            match dt & 0x7f {
                0 => s.push('.'),
                1 => {
                    s.push_str(&Ipv4Addr::from(<[u8; 4]>::try_from(r.bytes(4)?).ok()?).to_string())
                }
                2 => s.push_str(
                    &Ipv6Addr::from(<[u8; 16]>::try_from(r.bytes(16)?).ok()?).to_string(),
                ),
                3 => r.name(&mut s)?,
                _ => return None,
            }
        }
        11 => {
            let a = Ipv4Addr::from(<[u8; 4]>::try_from(r.bytes(4)?).ok()?);
            let _ = write!(s, "{a} {}", r.u8()?);
            for (i, &b) in r.rest().iter().enumerate() {
                for bit in 0..8 {
                    if b & (0x80 >> bit) != 0 {
                        let _ = write!(s, " {}", i * 8 + bit);
                    }
                }
            }
        }
        29 => {
            if r.u8()? != 0 {
                return None;
            }
            let sizes = [r.u8()?, r.u8()?, r.u8()?];
            let (lat, lon, alt) = (r.u32()?, r.u32()?, r.u32()?);
            loc_coord_to_text(lat, 'N', 'S', &mut s);
            s.push(' ');
            loc_coord_to_text(lon, 'E', 'W', &mut s);
            let a = i64::from(alt) - 10_000_000;
            let _ = write!(
                s,
                " {}{}.{:02}m",
                if a < 0 { "-" } else { "" },
                a.abs() / 100,
                a.abs() % 100
            );
            for v in sizes {
                loc_size_to_text(v, &mut s)?;
            }
        }
        37 => {
            let _ = write!(s, "{} {} {} ", r.u16()?, r.u16()?, r.u8()?);
            push_chunked(&mut s, &b64(r.rest()));
        }
        42 => {
            while !r.done() {
                let afi = r.u16()?;
                let prefix = r.u8()?;
                let nl = r.u8()?;
                let part = r.bytes(usize::from(nl & 0x7f))?;
                if !s.is_empty() {
                    s.push(' ');
                }
                let neg = if nl & 0x80 != 0 { "!" } else { "" };
                let addr = match afi {
                    1 if part.len() <= 4 => {
                        let mut a = [0u8; 4];
                        a[..part.len()].copy_from_slice(part);
                        Ipv4Addr::from(a).to_string()
                    }
                    2 if part.len() <= 16 => {
                        let mut a = [0u8; 16];
                        a[..part.len()].copy_from_slice(part);
                        Ipv6Addr::from(a).to_string()
                    }
                    _ => return None,
                };
                let _ = write!(s, "{neg}{afi}:{addr}/{prefix}");
            }
        }
        43 | 59 | 32768 | 32769 => {
            let _ = write!(s, "{} {} {} ", r.u16()?, r.u8()?, r.u8()?);
            push_chunked(&mut s, &hex_upper(r.rest()));
        }
        44 => {
            let _ = write!(s, "{} {} ", r.u8()?, r.u8()?);
            push_chunked(&mut s, &hex_upper(r.rest()));
        }
        52 | 53 => {
            let _ = write!(s, "{} {} {} ", r.u8()?, r.u8()?, r.u8()?);
            push_chunked(&mut s, &hex_upper(r.rest()));
        }
        45 => {
            let (prec, gt, alg) = (r.u8()?, r.u8()?, r.u8()?);
            let _ = write!(s, "{prec} {gt} {alg} ");
            match gt {
                0 => s.push('.'),
                1 => {
                    s.push_str(&Ipv4Addr::from(<[u8; 4]>::try_from(r.bytes(4)?).ok()?).to_string())
                }
                2 => s.push_str(
                    &Ipv6Addr::from(<[u8; 16]>::try_from(r.bytes(16)?).ok()?).to_string(),
                ),
                3 => r.name(&mut s)?,
                _ => return None,
            }
            let key = r.rest();
            if !key.is_empty() {
                s.push(' ');
                push_chunked(&mut s, &b64(key));
            }
        }
        24 | 46 => {
            let covered = r.u16()?;
            let _ = write!(
                s,
                "{} {} {} {} ",
                type_to_text(covered),
                r.u8()?,
                r.u8()?,
                r.u32()?
            );
            let (exp, inc) = (r.u32()?, r.u32()?);
            let _ = write!(
                s,
                "{} {} {} ",
                sig_time_to_text(exp),
                sig_time_to_text(inc),
                r.u16()?
            );
            r.name(&mut s)?;
            s.push(' ');
            push_chunked(&mut s, &b64(r.rest()));
        }
        47 => {
            r.name(&mut s)?;
            bitmap_to_text(&mut r, &mut s)?;
        }
        25 | 48 | 57 | 60 => {
            let _ = write!(s, "{} {} {} ", r.u16()?, r.u8()?, r.u8()?);
            push_chunked(&mut s, &b64(r.rest()));
        }
        49 | 61 => push_chunked(&mut s, &b64(r.rest())),
        50 | 51 => {
            let _ = write!(s, "{} {} {} ", r.u8()?, r.u8()?, r.u16()?);
            let salt_len = usize::from(r.u8()?);
            match salt_len {
                0 => s.push('-'),
                n => s.push_str(&hex_upper(r.bytes(n)?)),
            }
            if code == 50 {
                let n = usize::from(r.u8()?);
                s.push(' ');
                s.push_str(&data_encoding::BASE32HEX_NOPAD.encode(r.bytes(n)?));
                bitmap_to_text(&mut r, &mut s)?;
            }
        }
        55 => {
            let hit_len = usize::from(r.u8()?);
            let alg = r.u8()?;
            let pk_len = usize::from(r.u16()?);
            let hit = r.bytes(hit_len)?;
            let pk = r.bytes(pk_len)?;
            let _ = write!(s, "{alg} {} {}", hex_upper(hit), b64(pk));
            while !r.done() {
                s.push(' ');
                r.name(&mut s)?;
            }
        }
        62 => {
            let _ = write!(s, "{} {}", r.u32()?, r.u16()?);
            bitmap_to_text(&mut r, &mut s)?;
        }
        63 => {
            let _ = write!(s, "{} {} {} ", r.u32()?, r.u8()?, r.u8()?);
            push_chunked(&mut s, &hex_upper(r.rest()));
        }
        64 | 65 => {
            let _ = write!(s, "{} ", r.u16()?);
            r.name(&mut s)?;
            while !r.done() {
                let k = r.u16()?;
                let len = usize::from(r.u16()?);
                let v = r.bytes(len)?;
                s.push(' ');
                svc_param_to_text(k, v, &mut s)?;
            }
        }
        104 | 106 => {
            let _ = write!(s, "{} ", r.u16()?);
            let l = r.bytes(8)?;
            let _ = write!(
                s,
                "{:02x}{:02x}:{:02x}{:02x}:{:02x}{:02x}:{:02x}{:02x}",
                l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]
            );
        }
        105 => {
            let _ = write!(s, "{} ", r.u16()?);
            s.push_str(&Ipv4Addr::from(<[u8; 4]>::try_from(r.bytes(4)?).ok()?).to_string());
        }
        108 | 109 => {
            let n = if code == 108 { 6 } else { 8 };
            let parts: Vec<String> = r.bytes(n)?.iter().map(|b| format!("{b:02x}")).collect();
            s.push_str(&parts.join("-"));
        }
        256 => {
            let _ = write!(s, "{} {} ", r.u16()?, r.u16()?);
            push_quoted(&mut s, r.rest());
        }
        257 => {
            let flags = r.u8()?;
            let tl = usize::from(r.u8()?);
            let tag = r.bytes(tl)?;
            if !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            let _ = write!(s, "{flags} {} ", std::str::from_utf8(tag).ok()?);
            push_quoted(&mut s, r.rest());
        }
        _ => return None,
    }
    r.done().then_some(s)
}

fn svc_param_to_text(k: u16, v: &[u8], s: &mut String) -> Option<()> {
    s.push_str(&svc_key_to_text(k));
    let mut r = Rd { w: v, p: 0 };
    match k {
        0 => {
            let mut keys = Vec::new();
            while !r.done() {
                keys.push(svc_key_to_text(r.u16()?));
            }
            let _ = write!(s, "={}", keys.join(","));
        }
        1 => {
            let mut list = Vec::new();
            while !r.done() {
                let n = usize::from(r.u8()?);
                if !list.is_empty() {
                    list.push(b',');
                }
                for &b in r.bytes(n)? {
                    if b == b',' || b == b'\\' {
                        list.push(b'\\');
                    }
                    list.push(b);
                }
            }
            s.push('=');
            push_quoted(s, &list);
        }
        2 if v.is_empty() => {}
        3 => {
            let _ = write!(s, "={}", r.u16()?);
        }
        4 | 6 => {
            let n = if k == 4 { 4 } else { 16 };
            if v.is_empty() || !v.len().is_multiple_of(n) {
                return None;
            }
            let addrs: Vec<String> = v
                .chunks(n)
                .map(|c| match c.len() {
                    4 => Ipv4Addr::from(<[u8; 4]>::try_from(c).unwrap_or_default()).to_string(),
                    _ => Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap_or_default()).to_string(),
                })
                .collect();
            let _ = write!(s, "={}", addrs.join(","));
            r.rest();
        }
        5 => {
            let _ = write!(s, "={}", b64(r.rest()));
        }
        _ if k > 6 => {
            if !v.is_empty() {
                s.push_str("=\"");
                push_escaped(s, r.rest());
                s.push('"');
            }
        }
        _ => return None,
    }
    r.done().then_some(())
}
