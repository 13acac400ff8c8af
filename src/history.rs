//! A bounded history of a zone's recent differences, so that downstream
//! secondaries can be answered incrementally (RFC 1995). It lives in memory
//! only: after a restart, IXFR requests get the whole zone until new
//! differences accumulate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::xfr::interp::IxfrDiff;
use crate::xfr::ixfr::soa_serial;

/// The last `limit` differences of one zone, oldest first, each starting
/// where the previous one ended.
#[derive(Debug)]
pub struct History {
    limit: usize,
    diffs: Mutex<VecDeque<Arc<IxfrDiff>>>,
}

impl History {
    /// `limit` is the `ixfr_history` setting; 0 keeps nothing.
    pub fn new(limit: usize) -> Self {
        History {
            limit,
            diffs: Mutex::new(VecDeque::new()),
        }
    }

    /// The same history under a new limit (a reload changed `ixfr_history`).
    pub fn resized(&self, limit: usize) -> Self {
        let mut diffs = self.lock().clone();
        while diffs.len() > limit {
            diffs.pop_front();
        }
        History {
            limit,
            diffs: Mutex::new(diffs),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<IxfrDiff>>> {
        self.diffs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the differences that took the served copy to its new serial.
    /// A sequence that does not continue the history (a full transfer after
    /// a gap, a serial that went backwards) starts it afresh.
    pub fn push(&self, diffs: impl IntoIterator<Item = IxfrDiff>) {
        if self.limit == 0 {
            return;
        }
        let mut h = self.lock();
        for d in diffs {
            let continues = match h.back() {
                None => true,
                Some(last) => soa_serial(&last.new_soa).ok() == soa_serial(&d.old_soa).ok(),
            };
            if !continues {
                h.clear();
            }
            h.push_back(Arc::new(d));
            while h.len() > self.limit {
                h.pop_front();
            }
        }
    }

    /// Forgets everything: the served copy no longer follows from it.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The differences from `serial` to `current`, if the history covers
    /// them; `None` means "send the whole zone".
    pub fn since(&self, serial: u32, current: u32) -> Option<Vec<Arc<IxfrDiff>>> {
        let h = self.lock();
        let start = h
            .iter()
            .position(|d| soa_serial(&d.old_soa).ok() == Some(serial))?;
        let out: Vec<Arc<IxfrDiff>> = h.iter().skip(start).cloned().collect();
        let end = out.last().and_then(|d| soa_serial(&d.new_soa).ok());
        (end == Some(current)).then_some(out)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rr;
    use hickory_proto::rr::{Name, Record, RecordType};

    fn soa(serial: u32) -> Record {
        let mut w = Vec::new();
        crate::wire::put_name(&mut w, &Name::from_ascii("ns.example.").unwrap());
        crate::wire::put_name(&mut w, &Name::from_ascii("h.example.").unwrap());
        for x in [serial, 1, 1, 1, 1] {
            w.extend_from_slice(&x.to_be_bytes());
        }
        rr::record(
            Name::from_ascii("example.").unwrap(),
            RecordType::SOA,
            60,
            &w,
        )
        .unwrap()
    }

    fn d(from: u32, to: u32) -> IxfrDiff {
        IxfrDiff {
            old_soa: soa(from),
            new_soa: soa(to),
            deleted: vec![],
            added: vec![],
        }
    }

    #[test]
    fn bounded_and_chained() {
        let h = History::new(3);
        h.push([d(1, 2), d(2, 3)]);
        h.push([d(3, 4), d(4, 5)]);
        assert_eq!(h.len(), 3);
        assert!(h.since(1, 5).is_none(), "1→2 fell out");
        assert_eq!(h.since(2, 5).unwrap().len(), 3);
        assert_eq!(h.since(4, 5).unwrap().len(), 1);
        assert!(h.since(4, 6).is_none(), "does not reach the current serial");
        assert!(h.since(5, 5).is_none());
        // A jump restarts the history.
        h.push([d(9, 10)]);
        assert_eq!(h.len(), 1);
        assert!(h.since(2, 10).is_none());
        let off = History::new(0);
        off.push([d(1, 2)]);
        assert!(off.is_empty());
    }
}
