//! IXFR differences as pure functions: applying received difference
//! sequences to a snapshot (RFC 1995 §4), and computing the difference
//! between two snapshots for the history we serve downstream.
//!
//! Records are matched by [`crate::canonical`]'s identity (owner, type and
//! RDATA, names compared without regard to case, TTL ignored); the
//! snapshot does the applying itself ([`Zone::apply`]), in wire form and
//! at the cost of the change.

use hickory_proto::rr::{RData, Record};

use super::interp::IxfrDiff;
use crate::canonical::RecordId;
use crate::zone::{ApplyError, Limits, RawRecords, Step, Zone};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IxfrError {
    #[error("difference {index} starts at serial {got}, but the copy is at serial {expected}")]
    SerialGap {
        index: usize,
        got: u32,
        expected: u32,
    },
    #[error("the differences end at serial {got}, but serial {expected} was announced")]
    WrongFinalSerial { got: u32, expected: u32 },
    #[error("a record has no SOA RDATA where an SOA is required")]
    NotSoa,
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

pub fn soa_serial(r: &Record) -> Result<u32, IxfrError> {
    match &r.data {
        RData::SOA(s) => Ok(s.serial),
        _ => Err(IxfrError::NotSoa),
    }
}

/// Applies `diffs` (oldest first) to `old` and returns the new snapshot.
/// Each sequence must start at the serial the previous one ended with, the
/// first at `old`'s, and the last must end at `expected_serial`; every
/// deletion must name a record the copy has. Otherwise the whole transfer
/// is refused, and the caller falls back to AXFR.
pub fn apply(
    old: &Zone,
    diffs: &[IxfrDiff],
    expected_serial: u32,
    limits: &Limits,
) -> Result<Zone, IxfrError> {
    let mut current = old.serial();
    for (i, d) in diffs.iter().enumerate() {
        let from = soa_serial(&d.old_soa)?;
        if from != current {
            return Err(IxfrError::SerialGap {
                index: i,
                got: from,
                expected: current,
            });
        }
        current = soa_serial(&d.new_soa)?;
    }
    if current != expected_serial {
        return Err(IxfrError::WrongFinalSerial {
            got: current,
            expected: expected_serial,
        });
    }
    let Some(last) = diffs.last() else {
        // Nothing to apply and nothing announced beyond our serial: the
        // copy stays as it is, but a new snapshot keeps callers simple.
        return Err(IxfrError::WrongFinalSerial {
            got: current,
            expected: expected_serial,
        });
    };
    let steps: Vec<Step<'_>> = diffs
        .iter()
        .map(|d| Step {
            deleted: &d.deleted,
            added: &d.added,
        })
        .collect();
    Ok(old.apply(&steps, &last.new_soa, limits)?)
}

/// The difference from snapshot `old` to snapshot `new`, as one IXFR
/// sequence, read in wire form ([`Zone::differences`]). A record whose TTL,
/// or the spelling of a name in its RDATA, changed goes out as a deletion
/// and an addition.
pub fn diff_zones(old: &Zone, new: &Zone) -> IxfrDiff {
    let mut diff = IxfrDiff::new(old.soa().clone(), new.soa().clone());
    old.differences(new, &mut diff.deleted, &mut diff.added);
    diff
}

/// The records of `raw` as one sorted, comparable list (tests, models).
pub fn record_set(raw: &RawRecords) -> Vec<RecordId<'static>> {
    let mut v: Vec<RecordId<'static>> = raw
        .iter()
        .map(|r| RecordId::new(r.owner, r.rtype, r.rdata).into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rr;
    use crate::zone::Limits;
    use hickory_proto::rr::{Name, RecordType};

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

    fn mx(pref: u16, target: &str) -> Record {
        let mut w = pref.to_be_bytes().to_vec();
        crate::wire::put_name(&mut w, &n(target));
        rr::record(n("example."), RecordType::MX, 3600, &w).unwrap()
    }

    fn txt(owner: &str, s: &str) -> Record {
        let mut w = vec![s.len() as u8];
        w.extend_from_slice(s.as_bytes());
        rr::record(n(owner), RecordType::TXT, 60, &w).unwrap()
    }

    fn zone(records: Vec<Record>) -> Zone {
        Zone::build(&n("example."), records, &Limits::default()).unwrap()
    }

    fn base() -> Zone {
        zone(vec![
            soa(1),
            ns("ns1.example."),
            a("ns1.example.", 1, 60),
            a("www.example.", 2, 60),
            txt("t.example.", "Hello"),
        ])
    }

    fn d(from: u32, to: u32, deleted: Vec<Record>, added: Vec<Record>) -> IxfrDiff {
        IxfrDiff {
            old_soa: soa(from),
            new_soa: soa(to),
            deleted: deleted.iter().collect(),
            added: added.iter().collect(),
        }
    }

    fn texts(z: &Zone) -> Vec<String> {
        let mut v: Vec<String> = z.records().map(|r| r.to_string()).collect();
        v.sort();
        v
    }

    /// The issue that started the rewrite: MX 70 ('F') and MX 102 ('f')
    /// with one target are two records, and adding one keeps the other.
    #[test]
    fn mx_preferences_are_numbers() {
        let old = zone(vec![
            soa(1),
            ns("ns1.example."),
            mx(70, "mx.partner.example.net."),
        ]);
        let new = apply(
            &old,
            &[d(1, 2, vec![], vec![mx(102, "mx.partner.example.net.")])],
            2,
            &Limits::default(),
        )
        .unwrap();
        let t = texts(&new);
        assert!(t.iter().any(|r| r.contains("MX 70 mx.partner")), "{t:?}");
        assert!(t.iter().any(|r| r.contains("MX 102 mx.partner")), "{t:?}");
        // And deleting one leaves the other.
        let back = apply(
            &new,
            &[d(2, 3, vec![mx(70, "MX.Partner.Example.NET.")], vec![])],
            3,
            &Limits::default(),
        )
        .unwrap();
        let t = texts(&back);
        assert!(!t.iter().any(|r| r.contains("MX 70 ")), "{t:?}");
        assert!(t.iter().any(|r| r.contains("MX 102 mx.partner")), "{t:?}");
        // The snapshots' diff says the same.
        let delta = diff_zones(&old, &new);
        assert_eq!(delta.deleted.len(), 0);
        assert_eq!(
            delta.added.to_records().unwrap(),
            vec![mx(102, "mx.partner.example.net.")]
        );
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
        let out = apply(&base(), &diffs, 5, &Limits::default()).unwrap();
        assert_eq!(out.serial(), 5);
        assert_eq!(out.record_count(), 5);
        let t = texts(&out);
        assert!(t.contains(&a("www.example.", 3, 60).to_string()), "{t:?}");
        assert!(!t.contains(&a("www.example.", 2, 60).to_string()), "{t:?}");
        assert!(t.contains(&txt("t.example.", "bye").to_string()), "{t:?}");
        // The NS target matches whatever its case.
        let out = apply(
            &base(),
            &[d(1, 2, vec![ns("NS1.EXAMPLE.")], vec![ns("ns2.example.")])],
            2,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(out.record_count(), 5);
    }

    #[test]
    fn rejects_broken_sequences() {
        let lim = Limits::default();
        // Deleting what is not there.
        let e = apply(
            &base(),
            &[d(1, 2, vec![a("www.example.", 9, 60)], vec![])],
            2,
            &lim,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                IxfrError::Apply(ApplyError::MissingDeletion { step: 0, .. })
            ),
            "{e}"
        );
        // TXT is byte-exact: case matters inside its data.
        let e = apply(
            &base(),
            &[d(1, 2, vec![txt("t.example.", "hello")], vec![])],
            2,
            &lim,
        )
        .unwrap_err();
        assert!(
            matches!(e, IxfrError::Apply(ApplyError::MissingDeletion { .. })),
            "{e}"
        );
        // Ending elsewhere than announced.
        let e = apply(&base(), &[d(1, 2, vec![], vec![])], 3, &lim).unwrap_err();
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
            &lim,
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
        assert!(apply(&base(), &[d(7, 8, vec![], vec![])], 8, &lim).is_err());
        // A change that breaks a zone rule is refused whole.
        let cname = rr::record(
            n("www.example."),
            RecordType::CNAME,
            60,
            b"\x01x\x07example\x00",
        )
        .unwrap();
        let e = apply(&base(), &[d(1, 2, vec![], vec![cname])], 2, &lim).unwrap_err();
        assert!(matches!(e, IxfrError::Apply(ApplyError::Zone(_))), "{e}");
    }

    #[test]
    fn diff_then_apply_round_trips() {
        let old = base();
        let new = zone(vec![
            soa(9),
            ns("ns1.example."),
            a("ns1.example.", 1, 120),
            txt("t.example.", "Hello"),
            a("new.example.", 7, 60),
        ]);
        let delta = diff_zones(&old, &new);
        assert_eq!(delta.deleted.len(), 2, "{delta:?}");
        assert_eq!(delta.added.len(), 2, "{delta:?}");
        let got = apply(&old, &[delta], 9, &Limits::default()).unwrap();
        assert_eq!(texts(&got), texts(&new));
    }
}
