//! Record identity: when two records are the same record.
//!
//! RFC 2181 §5 and RFC 1995/2136 match records by owner, type, class and
//! RDATA, with domain names compared without regard to case. Which octets
//! of the RDATA are domain names depends on the type: RFC 4034 §6.2 lists
//! the types whose embedded names are lowercased in the canonical form, as
//! corrected by RFC 6840 §5.1 (NSEC's next name keeps its case, RRSIG's
//! signer is lowercased). Every other octet, a preference, a port, a TXT
//! string, compares exactly.
//!
//! This is the only place that says so. The zone store merges duplicates
//! with it, IXFR matches deletions with it, history diffs compare with it,
//! and ZONEMD digests the canonical form it makes: a second copy once folded
//! an MX preference as if it were a letter and dropped a disaster MX.

use std::borrow::Cow;

/// Lowercases the uncompressed wire name at `pos` of `buf`, returning where
/// it ends; `None` (and possibly a partly lowercased name) when there is no
/// valid name there.
fn lowercase_name(buf: &mut [u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *buf.get(pos)? as usize;
        if len == 0 {
            return Some(pos + 1);
        }
        if len > 63 {
            return None;
        }
        buf.get_mut(pos + 1..pos + 1 + len)?.make_ascii_lowercase();
        pos += 1 + len;
    }
}

/// Where the embedded domain names of `rtype`'s RDATA start, for the types
/// of RFC 4034 §6.2 (HINFO, listed there, holds no names); `rdata` is read
/// only for the variable-length fields that come before a name.
fn name_positions(rtype: u16, rdata: &[u8]) -> NamePositions {
    match rtype {
        // NS MD MF CNAME MB MG MR PTR NXT DNAME: a name first.
        2..=5 | 7..=9 | 12 | 30 | 39 => NamePositions::One(0),
        // SOA MINFO RP: two names.
        6 | 14 | 17 => NamePositions::TwoFrom(0),
        // MX AFSDB RT KX: preference, name.
        15 | 18 | 21 | 36 => NamePositions::One(2),
        // PX: preference, two names.
        26 => NamePositions::TwoFrom(2),
        // SRV: priority, weight, port, target.
        33 => NamePositions::One(6),
        // NAPTR: order, preference, three character strings, replacement.
        35 => {
            let mut pos = 4;
            for _ in 0..3 {
                match rdata.get(pos) {
                    Some(&len) => pos += 1 + len as usize,
                    None => return NamePositions::None,
                }
            }
            NamePositions::One(pos)
        }
        // SIG RRSIG: 18 octets of fields, then the signer's name.
        24 | 46 => NamePositions::One(18),
        // A6: prefix length, address suffix, prefix name when the prefix
        // length is not 0.
        38 => match rdata.first() {
            Some(&plen) if plen > 0 && plen <= 128 => {
                NamePositions::One(1 + (128 - plen as usize).div_ceil(8))
            }
            _ => NamePositions::None,
        },
        _ => NamePositions::None,
    }
}

enum NamePositions {
    None,
    One(usize),
    /// Two names back to back, the first at this offset.
    TwoFrom(usize),
}

/// Turns RDATA of `rtype` into its canonical form in place: the embedded
/// names of the RFC 4034 §6.2 types lowercased, nothing else touched.
/// Malformed RDATA is left as far as it could be read: it then compares and
/// digests as sent.
pub fn canonicalize_rdata(rtype: u16, buf: &mut [u8]) {
    match name_positions(rtype, buf) {
        NamePositions::None => {}
        NamePositions::One(at) => {
            lowercase_name(buf, at);
        }
        NamePositions::TwoFrom(at) => {
            if let Some(end) = lowercase_name(buf, at) {
                lowercase_name(buf, end);
            }
        }
    }
}

/// Whether the names of `rtype`'s RDATA hold an uppercase letter, i.e.
/// whether the canonical form differs from `rdata`.
fn has_uppercase_name(rtype: u16, rdata: &[u8]) -> bool {
    let upper_in = |mut pos: usize| -> Option<usize> {
        loop {
            let len = *rdata.get(pos)? as usize;
            if len == 0 {
                return Some(pos + 1);
            }
            if len > 63 {
                return None;
            }
            if rdata
                .get(pos + 1..pos + 1 + len)?
                .iter()
                .any(u8::is_ascii_uppercase)
            {
                // usize::MAX marks "found" without a second return type.
                return Some(usize::MAX);
            }
            pos += 1 + len;
        }
    };
    match name_positions(rtype, rdata) {
        NamePositions::None => false,
        NamePositions::One(at) => upper_in(at) == Some(usize::MAX),
        NamePositions::TwoFrom(at) => match upper_in(at) {
            Some(usize::MAX) => true,
            Some(end) => upper_in(end) == Some(usize::MAX),
            None => false,
        },
    }
}

/// The canonical RDATA of `rtype` (RFC 4034 §6.2), borrowed when `rdata`
/// already is canonical. Two records of one owner and type are the same
/// record exactly when these are equal.
pub fn rdata_key(rtype: u16, rdata: &[u8]) -> Cow<'_, [u8]> {
    if has_uppercase_name(rtype, rdata) {
        let mut v = rdata.to_vec();
        canonicalize_rdata(rtype, &mut v);
        Cow::Owned(v)
    } else {
        Cow::Borrowed(rdata)
    }
}

/// Whether two RDATA of `rtype` are the same record's.
pub fn same_rdata(rtype: u16, a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a == b || rdata_key(rtype, a) == rdata_key(rtype, b))
}

/// A wire-form owner name lowercased, borrowed when it already is.
pub fn owner_key(owner: &[u8]) -> Cow<'_, [u8]> {
    if owner.iter().any(u8::is_ascii_uppercase) {
        // Length octets are below 64 and never uppercase letters.
        Cow::Owned(owner.to_ascii_lowercase())
    } else {
        Cow::Borrowed(owner)
    }
}

/// A record's identity (TTL aside): lowercase owner, type, canonical
/// RDATA. Class is always IN in Outpost's zones.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId<'a> {
    pub owner: Cow<'a, [u8]>,
    pub rtype: u16,
    pub rdata: Cow<'a, [u8]>,
}

impl<'a> RecordId<'a> {
    pub fn new(owner: &'a [u8], rtype: u16, rdata: &'a [u8]) -> Self {
        RecordId {
            owner: owner_key(owner),
            rtype,
            rdata: rdata_key(rtype, rdata),
        }
    }

    pub fn into_owned(self) -> RecordId<'static> {
        RecordId {
            owner: Cow::Owned(self.owner.into_owned()),
            rtype: self.rtype,
            rdata: Cow::Owned(self.rdata.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_numbers_do_not() {
        // MX preference 0x41 ('A') and 0x61 ('a') are different records.
        assert!(!same_rdata(
            15,
            b"\x00\x41\x02mx\x00",
            b"\x00\x61\x02mx\x00"
        ));
        assert!(same_rdata(15, b"\x00\x0a\x02MX\x00", b"\x00\x0a\x02mx\x00"));
        // SRV priority, weight and port are numbers; the target is a name.
        let srv = |p: u8, t: &[u8]| {
            let mut v = vec![0, p, 0, 0x5a, 0, 0x4d];
            v.extend_from_slice(t);
            v
        };
        assert!(!same_rdata(
            33,
            &srv(0x41, b"\x01x\x00"),
            &srv(0x61, b"\x01x\x00")
        ));
        assert!(same_rdata(33, &srv(1, b"\x01X\x00"), &srv(1, b"\x01x\x00")));
        // NAPTR strings keep their case, the replacement folds.
        let naptr = |flags: &[u8], repl: &[u8]| {
            let mut v = vec![0, 0x41, 0, 0x61, flags.len() as u8];
            v.extend_from_slice(flags);
            v.extend_from_slice(b"\x00\x00");
            v.extend_from_slice(repl);
            v
        };
        assert!(!same_rdata(
            35,
            &naptr(b"S", b"\x00"),
            &naptr(b"s", b"\x00")
        ));
        assert!(same_rdata(
            35,
            &naptr(b"S", b"\x01A\x00"),
            &naptr(b"S", b"\x01a\x00")
        ));
        // TXT is exact; NSEC's next name keeps its case (RFC 6840 §5.1).
        assert!(!same_rdata(16, b"\x02ab", b"\x02AB"));
        assert!(!same_rdata(
            47,
            b"\x01A\x00\x00\x01\x40",
            b"\x01a\x00\x00\x01\x40"
        ));
        // SOA: both names fold, the five numbers do not.
        let soa = |n: &[u8], serial: u8| {
            let mut v = n.to_vec();
            v.extend_from_slice(b"\x01h\x00");
            v.extend_from_slice(&[0, 0, 0, serial]);
            v.extend_from_slice(&[0; 16]);
            v
        };
        assert!(same_rdata(
            6,
            &soa(b"\x02NS\x00", 0x41),
            &soa(b"\x02ns\x00", 0x41)
        ));
        assert!(!same_rdata(
            6,
            &soa(b"\x02ns\x00", 0x41),
            &soa(b"\x02ns\x00", 0x61)
        ));
        // RRSIG: only the signer folds.
        let mut sig = vec![0u8; 18];
        sig[17] = 0x41;
        sig.extend_from_slice(b"\x01E\x00SIG");
        let mut lower = sig.clone();
        lower[19] = b'e';
        assert!(same_rdata(46, &sig, &lower));
        lower[17] = 0x61;
        assert!(!same_rdata(46, &sig, &lower));
    }

    #[test]
    fn keys_borrow_when_canonical() {
        assert!(matches!(
            rdata_key(15, b"\x00\x41\x02mx\x00"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            &*rdata_key(15, b"\x00\x41\x02MX\x00"),
            b"\x00\x41\x02mx\x00"
        );
        assert!(matches!(owner_key(b"\x03www\x00"), Cow::Borrowed(_)));
        assert_eq!(&*owner_key(b"\x03WwW\x00"), b"\x03www\x00");
        // Malformed RDATA compares as sent.
        assert!(!same_rdata(2, b"\x05AB", b"\x05ab"));
        let a = RecordId::new(b"\x01A\x00", 15, b"\x00\x41\x02MX\x00");
        let b = RecordId::new(b"\x01a\x00", 15, b"\x00\x41\x02mx\x00");
        assert_eq!(a, b);
        assert_ne!(a, RecordId::new(b"\x01a\x00", 15, b"\x00\x61\x02mx\x00"));
    }
}
