//! IXFR differences as pure functions: applying received difference
//! sequences to a snapshot (RFC 1995 §4), and computing the difference
//! between two snapshots for the history we serve downstream.
//!
//! Records are matched as RFC 1995 and RFC 2136 §1.1 do: owner, type, class
//! and RDATA, names compared without regard to case, TTL ignored.

use std::borrow::Cow;
use std::collections::HashMap;

use hickory_proto::rr::{RData, Record, RecordType};

use super::interp::IxfrDiff;
use crate::rr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IxfrError {
    #[error("difference {index} starts at serial {got}, but the copy is at serial {expected}")]
    SerialGap {
        index: usize,
        got: u32,
        expected: u32,
    },
    #[error(
        "difference {index} (serial {from} to {to}) deletes {record}, which the copy does not have"
    )]
    MissingDeletion {
        index: usize,
        from: u32,
        to: u32,
        record: String,
    },
    #[error("difference {index} (serial {from} to {to}) deletes or adds the SOA inside its body")]
    SoaInBody { index: usize, from: u32, to: u32 },
    #[error("the differences end at serial {got}, but serial {expected} was announced")]
    WrongFinalSerial { got: u32, expected: u32 },
    #[error("a record has no SOA RDATA where an SOA is required")]
    NotSoa,
    #[error("a stored record cannot be read back: {0}")]
    BadRecord(String),
    #[error("the copy has no SOA")]
    NoSoa,
}

/// The identity of a record for matching: lowercase owner, type, class and
/// RDATA with embedded names lowercased for the types we decode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RecordKey {
    owner: Vec<u8>,
    rtype: u16,
    class: u16,
    rdata: Vec<u8>,
}

fn key(r: &Record) -> RecordKey {
    let mut owner = Vec::with_capacity(32);
    crate::wire::put_name_canonical(&mut owner, &r.name);
    let rdata = match &r.data {
        // Names inside these are compared without regard to case; encoding
        // the lowercased RDATA gives one canonical byte string.
        RData::NS(_) | RData::CNAME(_) | RData::PTR(_) | RData::MX(_) | RData::SOA(_) => {
            rr::rdata_to_wire(&r.data)
                .iter()
                .map(u8::to_ascii_lowercase)
                .collect()
        }
        other => rr::rdata_to_wire(other),
    };
    RecordKey {
        owner,
        rtype: u16::from(r.record_type()),
        class: u16::from(r.dns_class),
        rdata,
    }
}

pub fn soa_serial(r: &Record) -> Result<u32, IxfrError> {
    match &r.data {
        RData::SOA(s) => Ok(s.serial),
        _ => Err(IxfrError::NotSoa),
    }
}

fn describe(r: &Record) -> String {
    format!("{} {} {}", r.name, r.record_type(), r.data)
}

/// Applies `diffs` (oldest first) to the records of a snapshot and returns
/// the records of the new one, SOA first. Every deletion must name a record
/// the copy has, each sequence must start at the serial the previous one
/// ended with, and the last must end at `expected_serial`; otherwise the
/// whole transfer is refused and the caller falls back to AXFR.
pub fn apply<'a>(
    old: impl IntoIterator<Item = &'a Record>,
    diffs: &[IxfrDiff],
    expected_serial: u32,
) -> Result<Vec<Record>, IxfrError> {
    // Insertion order is kept so an unchanged zone keeps its order on disk.
    let mut order: Vec<Option<Record>> = Vec::new();
    let mut index: HashMap<RecordKey, usize> = HashMap::new();
    let mut soa: Option<Record> = None;
    for r in old {
        if r.record_type() == RecordType::SOA {
            soa = Some(r.clone());
            continue;
        }
        let k = key(r);
        if index.contains_key(&k) {
            continue;
        }
        index.insert(k, order.len());
        order.push(Some(r.clone()));
    }
    let mut soa = soa.ok_or(IxfrError::NoSoa)?;
    for (i, d) in diffs.iter().enumerate() {
        let current = soa_serial(&soa)?;
        let from = soa_serial(&d.old_soa)?;
        let to = soa_serial(&d.new_soa)?;
        if from != current {
            return Err(IxfrError::SerialGap {
                index: i,
                got: from,
                expected: current,
            });
        }
        for r in &d.deleted {
            if r.record_type() == RecordType::SOA {
                return Err(IxfrError::SoaInBody { index: i, from, to });
            }
            match index.remove(&key(r)) {
                Some(pos) => order[pos] = None,
                None => {
                    return Err(IxfrError::MissingDeletion {
                        index: i,
                        from,
                        to,
                        record: describe(r),
                    });
                }
            }
        }
        for r in &d.added {
            if r.record_type() == RecordType::SOA {
                return Err(IxfrError::SoaInBody { index: i, from, to });
            }
            let k = key(r);
            match index.get(&k) {
                // Adding what exists changes at most its TTL.
                Some(&pos) => order[pos] = Some(r.clone()),
                None => {
                    index.insert(k, order.len());
                    order.push(Some(r.clone()));
                }
            }
        }
        soa = d.new_soa.clone();
    }
    let got = soa_serial(&soa)?;
    if got != expected_serial {
        return Err(IxfrError::WrongFinalSerial {
            got,
            expected: expected_serial,
        });
    }
    let mut out = Vec::with_capacity(index.len() + 1);
    out.push(soa);
    out.extend(order.into_iter().flatten());
    Ok(out)
}

/// The difference from snapshot `old` to snapshot `new`, as one IXFR
/// sequence. TTL changes show as a deletion and an addition.
pub fn diff<'a>(
    old: impl IntoIterator<Item = &'a Record>,
    new: impl IntoIterator<Item = &'a Record>,
) -> Result<IxfrDiff, IxfrError> {
    let mut old_soa = None;
    let mut old_set: HashMap<RecordKey, &Record> = HashMap::new();
    for r in old {
        if r.record_type() == RecordType::SOA {
            old_soa = Some(r.clone());
        } else {
            old_set.insert(key(r), r);
        }
    }
    let mut new_soa = None;
    let mut added = Vec::new();
    for r in new {
        if r.record_type() == RecordType::SOA {
            new_soa = Some(r.clone());
            continue;
        }
        match old_set.remove(&key(r)) {
            Some(o) if o.ttl == r.ttl => {}
            Some(o) => {
                // The deletion goes out below with the other leftovers.
                old_set.insert(key(o), o);
                added.push(r.clone());
            }
            None => added.push(r.clone()),
        }
    }
    let mut deleted: Vec<Record> = old_set.into_values().cloned().collect();
    // A stable order keeps what we send reproducible.
    deleted.sort_by(|a, b| {
        (key(a).owner, u16::from(a.record_type())).cmp(&(key(b).owner, u16::from(b.record_type())))
    });
    Ok(IxfrDiff {
        old_soa: old_soa.ok_or(IxfrError::NoSoa)?,
        new_soa: new_soa.ok_or(IxfrError::NoSoa)?,
        deleted,
        added,
    })
}

/// [`diff`] between two snapshots, read in their wire form: only the
/// records that differ are made into hickory records, so a refresh of a big
/// zone does not hold both copies twice over.
pub fn diff_zones(old: &crate::zone::Zone, new: &crate::zone::Zone) -> Result<IxfrDiff, IxfrError> {
    use crate::zone::RawRr;
    let soa = u16::from(RecordType::SOA);
    let mut old_set: HashMap<RawKey<'_>, RawRr<'_>> = HashMap::with_capacity(old.record_count());
    for r in old.raw_records().filter(|r| r.rtype != soa) {
        old_set.insert(raw_key(&r), r);
    }
    let made = |r: &RawRr<'_>| {
        r.to_record()
            .map_err(|e| IxfrError::BadRecord(e.to_string()))
    };
    let mut added = Vec::new();
    for r in new.raw_records().filter(|r| r.rtype != soa) {
        let k = raw_key(&r);
        match old_set.remove(&k) {
            Some(o) if o.ttl == r.ttl => {}
            Some(o) => {
                // The deletion goes out below with the other leftovers.
                old_set.insert(k, o);
                added.push(made(&r)?);
            }
            None => added.push(made(&r)?),
        }
    }
    let mut left: Vec<(RawKey<'_>, RawRr<'_>)> = old_set.into_iter().collect();
    // A stable order keeps what we send reproducible.
    left.sort_by(|a, b| (&a.0.0, a.0.1).cmp(&(&b.0.0, b.0.1)));
    let deleted = left
        .iter()
        .map(|(_, r)| made(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IxfrDiff {
        old_soa: old.soa().clone(),
        new_soa: new.soa().clone(),
        deleted,
        added,
    })
}

/// A stored record's identity: lowercase owner, type, and RDATA as
/// [`crate::zone::raw::rdata_key`] gives it.
type RawKey<'a> = (Cow<'a, [u8]>, u16, Cow<'a, [u8]>);

/// What makes two stored records the same (RFC 2181 §5): the owner and the
/// names in the RDATA of the types Outpost reads compare without regard to
/// case.
fn raw_key<'a>(r: &crate::zone::RawRr<'a>) -> RawKey<'a> {
    let owner = if r.owner.iter().any(u8::is_ascii_uppercase) {
        Cow::Owned(r.owner.to_ascii_lowercase())
    } else {
        Cow::Borrowed(r.owner)
    };
    (
        owner,
        r.rtype,
        crate::zone::raw::rdata_key(r.rtype, r.rdata),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;

    /// Snapshots compared in wire form give what the record-by-record diff
    /// gives, case of owners and names in RDATA aside.
    #[test]
    fn diff_of_snapshots_matches_diff_of_records() {
        use crate::zone::{BuildLimits, Zone};
        let v1 = vec![
            soa(1),
            ns("ns1.example."),
            a("www.example.", 1, 300),
            a("WWW.example.", 2, 300),
            a("old.example.", 3, 300),
            a("ttl.example.", 4, 300),
        ];
        let v2 = vec![
            soa(2),
            ns("NS1.example."),
            a("www.example.", 1, 300),
            a("new.example.", 5, 300),
            a("ttl.example.", 4, 600),
        ];
        let z1 = Zone::build(&n("example."), v1.clone(), &BuildLimits::default()).unwrap();
        let z2 = Zone::build(&n("example."), v2.clone(), &BuildLimits::default()).unwrap();
        let by_records = diff(&v1, &v2).unwrap();
        let by_zones = diff_zones(&z1, &z2).unwrap();
        let texts = |v: &[Record]| {
            let mut t: Vec<String> = v.iter().map(|r| r.to_string().to_lowercase()).collect();
            t.sort();
            t
        };
        assert_eq!(texts(&by_zones.added), texts(&by_records.added));
        assert_eq!(texts(&by_zones.deleted), texts(&by_records.deleted));
        assert_eq!(by_zones.added.len(), 2, "{:?}", by_zones.added);
        assert_eq!(by_zones.deleted.len(), 3, "{:?}", by_zones.deleted);
        assert_eq!(by_zones.old_soa, soa(1));
        assert_eq!(by_zones.new_soa, soa(2));
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn soa(serial: u32) -> Record {
        let mut w = Vec::new();
        crate::wire::put_name(&mut w, &n("ns1.example."));
        crate::wire::put_name(&mut w, &n("h.example."));
        for x in [serial, 3600, 600, 86400, 300] {
            w.extend_from_slice(&x.to_be_bytes());
        }
        rr::record(n("example."), RecordType::SOA, 3600, &w).unwrap()
    }

    fn a(owner: &str, last: u8, ttl: u32) -> Record {
        rr::record(n(owner), RecordType::A, ttl, &[192, 0, 2, last]).unwrap()
    }

    fn ns(target: &str) -> Record {
        let mut w = Vec::new();
        crate::wire::put_name(&mut w, &n(target));
        rr::record(n("example."), RecordType::NS, 3600, &w).unwrap()
    }

    fn txt(owner: &str, s: &str) -> Record {
        let mut w = vec![s.len() as u8];
        w.extend_from_slice(s.as_bytes());
        rr::record(n(owner), RecordType::TXT, 60, &w).unwrap()
    }

    fn base() -> Vec<Record> {
        vec![
            soa(1),
            ns("ns1.example."),
            a("ns1.example.", 1, 60),
            a("www.example.", 2, 60),
            txt("t.example.", "Hello"),
        ]
    }

    fn d(from: u32, to: u32, deleted: Vec<Record>, added: Vec<Record>) -> IxfrDiff {
        IxfrDiff {
            old_soa: soa(from),
            new_soa: soa(to),
            deleted,
            added,
        }
    }

    #[test]
    fn applies_chained_sequences() {
        let diffs = [
            d(
                1,
                2,
                vec![a("WWW.Example.", 2, 999)],
                vec![a("www.example.", 3, 60)],
            ),
            d(
                2,
                5,
                vec![txt("t.example.", "Hello")],
                vec![txt("t.example.", "bye")],
            ),
        ];
        let out = apply(&base(), &diffs, 5).unwrap();
        assert_eq!(soa_serial(&out[0]).unwrap(), 5);
        assert_eq!(out.len(), 5);
        assert!(out.contains(&a("www.example.", 3, 60)));
        assert!(!out.contains(&a("www.example.", 2, 60)));
        assert!(out.contains(&txt("t.example.", "bye")));
        // The NS target matches whatever its case.
        let out = apply(&base(), &[d(1, 2, vec![ns("NS1.EXAMPLE.")], vec![])], 2).unwrap();
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn rejects_broken_sequences() {
        // Deleting what is not there.
        let e = apply(
            &base(),
            &[d(1, 2, vec![a("www.example.", 9, 60)], vec![])],
            2,
        )
        .unwrap_err();
        assert!(
            matches!(e, IxfrError::MissingDeletion { index: 0, .. }),
            "{e}"
        );
        // TXT is byte-exact: case matters inside its data.
        let e = apply(
            &base(),
            &[d(1, 2, vec![txt("t.example.", "hello")], vec![])],
            2,
        )
        .unwrap_err();
        assert!(matches!(e, IxfrError::MissingDeletion { .. }), "{e}");
        // Ending elsewhere than announced.
        let e = apply(&base(), &[d(1, 2, vec![], vec![])], 3).unwrap_err();
        assert_eq!(
            e,
            IxfrError::WrongFinalSerial {
                got: 2,
                expected: 3
            }
        );
        // A gap between sequences.
        let e = apply(
            &base(),
            &[d(1, 2, vec![], vec![]), d(3, 4, vec![], vec![])],
            4,
        )
        .unwrap_err();
        assert_eq!(
            e,
            IxfrError::SerialGap {
                index: 1,
                got: 3,
                expected: 2
            }
        );
        // Not starting at our serial.
        assert!(apply(&base(), &[d(7, 8, vec![], vec![])], 8).is_err());
    }

    #[test]
    fn diff_then_apply_round_trips() {
        let old = base();
        let mut new = vec![
            soa(9),
            ns("ns1.example."),
            a("ns1.example.", 1, 120),
            txt("t.example.", "Hello"),
            a("new.example.", 7, 60),
        ];
        let delta = diff(&old, &new).unwrap();
        assert_eq!(delta.deleted.len(), 2, "{delta:?}");
        assert_eq!(delta.added.len(), 2, "{delta:?}");
        let mut got = apply(&old, &[delta], 9).unwrap();
        let sort = |v: &mut Vec<Record>| v.sort_by_key(|r| format!("{r}"));
        sort(&mut got);
        sort(&mut new);
        assert_eq!(got, new);
    }
}
