//! A zone's journal: the differences applied to its copy, on disk.
//!
//! Writing a whole zone file for every IXFR costs the whole zone. Instead
//! each applied difference is appended here (checksummed, fsynced) before
//! the timer state acknowledges the new serial, and the zone file is
//! rewritten only now and then ([`crate::persist`] decides when). At
//! start the zone file plus the journal's entries from the zone file's
//! serial on give the last copy; downstream IXFR reads its differences
//! from here too, so a restart does not cost secondaries a full transfer.
//!
//! A journal belongs to one *epoch*: a chain of differences in which
//! serials only move forward. The zone file names the epoch and serial it
//! holds; a zone file of another epoch (a full transfer that did not
//! continue the chain, a write after a failure) makes the journal's
//! entries meaningless, and they are never replayed onto it.
//!
//! Layout: a 32-octet header (magic, version, epoch, CRC), then entries,
//! each `magic, payload length, CRC-32 of the payload, payload`. An entry
//! cut short by a crash (or damaged) ends the journal there: it and
//! anything after it are dropped, never applied.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Record;

use crate::persist::{self, PersistError};
use crate::xfr::interp::IxfrDiff;
use crate::xfr::ixfr::soa_serial;
use crate::zone::RawRecords;

const FILE_MAGIC: &[u8; 12] = b"OUTPOST-JNL\0";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 32;
const ENTRY_MAGIC: u32 = 0x4f50_4a45;
const ENTRY_HEAD: usize = 12;
/// No entry is larger: a transfer is bounded well below this anyway.
const MAX_ENTRY: usize = 1 << 31;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: cannot {op}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("journal {}: entry {index} does not decode: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        index: usize,
        reason: &'static str,
    },
    #[error("journal {}: an earlier write failed; the journal must be rewritten", path.display())]
    Broken { path: PathBuf },
}

/// Where one entry sits, and the serials it goes between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub from: u32,
    pub to: u32,
    offset: u64,
    len: u64,
}

impl Entry {
    /// Octets on disk, header included.
    pub fn size(&self) -> u64 {
        self.len
    }
}

/// What opening found at the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Octets dropped after the last whole entry.
    pub dropped: u64,
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    epoch: u64,
    entries: Vec<Entry>,
    /// Length of the valid part of the file; 0 when it does not exist yet.
    len: u64,
    /// A write failed part-way: nothing more is appended until rewritten.
    broken: bool,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> JournalError + 'a {
    move |error| JournalError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

fn header(epoch: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..12].copy_from_slice(FILE_MAGIC);
    h[12..16].copy_from_slice(&VERSION.to_be_bytes());
    h[16..24].copy_from_slice(&epoch.to_be_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_be_bytes());
    h
}

fn read_header(h: &[u8]) -> Option<u64> {
    if h.len() < HEADER_LEN as usize || &h[..12] != FILE_MAGIC {
        return None;
    }
    let version = u32::from_be_bytes(h[12..16].try_into().ok()?);
    let crc = u32::from_be_bytes(h[24..28].try_into().ok()?);
    if version != VERSION || crc != crc32fast::hash(&h[..24]) {
        return None;
    }
    Some(u64::from_be_bytes(h[16..24].try_into().ok()?))
}

fn put_raw(out: &mut Vec<u8>, raw: &RawRecords) {
    out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    out.extend_from_slice(&(raw.size() as u32).to_be_bytes());
    out.extend_from_slice(raw.as_bytes());
}

fn put_record(out: &mut Vec<u8>, r: &Record) {
    let raw: RawRecords = std::iter::once(r).collect();
    put_raw(out, &raw);
}

/// The payload of an entry: epoch, serials, the two SOAs, deletions,
/// additions.
fn encode(epoch: u64, d: &IxfrDiff) -> Vec<u8> {
    let mut p = Vec::with_capacity(64 + d.size());
    p.extend_from_slice(&epoch.to_be_bytes());
    p.extend_from_slice(&soa_serial(&d.old_soa).unwrap_or(0).to_be_bytes());
    p.extend_from_slice(&soa_serial(&d.new_soa).unwrap_or(0).to_be_bytes());
    put_record(&mut p, &d.old_soa);
    put_record(&mut p, &d.new_soa);
    put_raw(&mut p, &d.deleted);
    put_raw(&mut p, &d.added);
    p
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn raw(&mut self) -> Option<RawRecords> {
        let count = self.u32()? as usize;
        let len = self.u32()? as usize;
        RawRecords::from_bytes(self.take(len)?.to_vec(), count)
    }

    fn record(&mut self) -> Option<Record> {
        let raw = self.raw()?;
        let r = raw.iter().next()?;
        r.to_record().ok()
    }
}

fn decode(payload: &[u8]) -> Option<(u64, IxfrDiff)> {
    let mut r = Reader {
        buf: payload,
        at: 0,
    };
    let epoch = r.u64()?;
    let (_from, _to) = (r.u32()?, r.u32()?);
    let old_soa = r.record()?;
    let new_soa = r.record()?;
    let deleted = r.raw()?;
    let added = r.raw()?;
    (r.at == payload.len()).then_some((
        epoch,
        IxfrDiff {
            old_soa,
            new_soa,
            deleted,
            added,
        },
    ))
}

/// Reads the entry head at `offset` of `data`: payload length and CRC.
fn entry_at(data: &[u8], offset: usize) -> Option<(&[u8], u64, u32, u32)> {
    let head = data.get(offset..offset + ENTRY_HEAD)?;
    let magic = u32::from_be_bytes(head[..4].try_into().ok()?);
    let len = u32::from_be_bytes(head[4..8].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(head[8..12].try_into().ok()?);
    if magic != ENTRY_MAGIC || !(16..=MAX_ENTRY).contains(&len) {
        return None;
    }
    let payload = data.get(offset + ENTRY_HEAD..offset + ENTRY_HEAD + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let from = u32::from_be_bytes(payload[8..12].try_into().ok()?);
    let to = u32::from_be_bytes(payload[12..16].try_into().ok()?);
    Some((payload, (ENTRY_HEAD + len) as u64, from, to))
}

impl Journal {
    /// The journal at `path` if it belongs to `epoch`; otherwise (missing,
    /// another epoch, unreadable header) an empty one of `epoch`, created
    /// on the first append. A torn or damaged tail is cut off the file and
    /// reported.
    pub fn open(path: &Path, epoch: u64) -> Result<(Journal, Option<TornTail>), JournalError> {
        let mut journal = Journal {
            path: path.to_path_buf(),
            epoch,
            entries: Vec::new(),
            len: 0,
            broken: false,
        };
        let data = match fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((journal, None)),
            Err(e) => return Err(io_err("read", path)(e)),
        };
        if read_header(&data) != Some(epoch) {
            // Another epoch's entries describe another copy; the next
            // append starts the file over.
            return Ok((journal, None));
        }
        let mut at = HEADER_LEN as usize;
        while let Some((payload, len, from, to)) = entry_at(&data, at) {
            let entry_epoch = u64::from_be_bytes(payload[..8].try_into().expect("8 octets"));
            if entry_epoch != epoch {
                break;
            }
            journal.entries.push(Entry {
                from,
                to,
                offset: at as u64,
                len,
            });
            at += len as usize;
        }
        journal.len = at as u64;
        let torn = (at < data.len()).then(|| TornTail {
            dropped: (data.len() - at) as u64,
        });
        if torn.is_some() {
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_err("open", path))?;
            f.set_len(journal.len).map_err(io_err("truncate", path))?;
            f.sync_all().map_err(io_err("fsync", path))?;
        }
        Ok((journal, torn))
    }

    /// An empty journal of `epoch`, replacing whatever is at `path`.
    pub fn create(path: &Path, epoch: u64) -> Result<Journal, JournalError> {
        persist::write_atomic_bytes(path, &header(epoch))?;
        Ok(Journal {
            path: path.to_path_buf(),
            epoch,
            entries: Vec::new(),
            len: HEADER_LEN,
            broken: false,
        })
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Octets on disk.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Appends `diff` and waits until it is on disk. On failure the
    /// journal takes no more appends: the caller rewrites the copy whole.
    pub fn append(&mut self, diff: &IxfrDiff) -> Result<(), JournalError> {
        if self.broken {
            return Err(JournalError::Broken {
                path: self.path.clone(),
            });
        }
        if self.len == 0 {
            *self = Journal::create(&self.path, self.epoch)?;
        }
        let payload = encode(self.epoch, diff);
        let mut entry = Vec::with_capacity(ENTRY_HEAD + payload.len());
        entry.extend_from_slice(&ENTRY_MAGIC.to_be_bytes());
        entry.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        entry.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
        entry.extend_from_slice(&payload);
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(io_err("open", &self.path))?;
            f.seek(SeekFrom::Start(self.len))
                .map_err(io_err("seek", &self.path))?;
            f.write_all(&entry)
                .map_err(io_err("append to", &self.path))?;
            f.sync_data().map_err(io_err("fsync", &self.path))
        })();
        if let Err(e) = result {
            self.broken = true;
            return Err(e);
        }
        self.entries.push(Entry {
            from: soa_serial(&diff.old_soa).unwrap_or(0),
            to: soa_serial(&diff.new_soa).unwrap_or(0),
            offset: self.len,
            len: entry.len() as u64,
        });
        self.len += entry.len() as u64;
        Ok(())
    }

    /// Reads entries `range` back, oldest first.
    pub fn read(&self, range: std::ops::Range<usize>) -> Result<Vec<IxfrDiff>, JournalError> {
        let Some(first) = self.entries.get(range.start) else {
            return Ok(Vec::new());
        };
        let last = self.entries[range.end - 1];
        let mut f = File::open(&self.path).map_err(io_err("open", &self.path))?;
        f.seek(SeekFrom::Start(first.offset))
            .map_err(io_err("seek", &self.path))?;
        let mut data = vec![0u8; (last.offset + last.len - first.offset) as usize];
        f.read_exact(&mut data)
            .map_err(io_err("read", &self.path))?;
        let mut out = Vec::with_capacity(range.len());
        for (i, e) in self.entries[range.clone()].iter().enumerate() {
            let corrupt = |reason| JournalError::Corrupt {
                path: self.path.clone(),
                index: range.start + i,
                reason,
            };
            let (payload, _, _, _) = entry_at(&data, (e.offset - first.offset) as usize)
                .ok_or_else(|| corrupt("checksum or framing changed since it was written"))?;
            let (_, diff) = decode(payload).ok_or_else(|| corrupt("bad payload"))?;
            out.push(diff);
        }
        Ok(out)
    }

    /// The entries that lead from `serial` to the journal's end: from the
    /// last entry starting at `serial` (serials only move forward within an
    /// epoch, so there is at most one). `Some(empty)` when `serial` is
    /// where the journal ends.
    pub fn chain_from(&self, serial: u32) -> Option<std::ops::Range<usize>> {
        if self.entries.last().is_some_and(|e| e.to == serial) {
            return Some(self.entries.len()..self.entries.len());
        }
        let start = self.entries.iter().rposition(|e| e.from == serial)?;
        Some(start..self.entries.len())
    }

    /// Keeps only the newest `keep` entries, rewriting the file atomically.
    pub fn retain_last(&mut self, keep: usize) -> Result<(), JournalError> {
        if keep >= self.entries.len() {
            return Ok(());
        }
        let cut = self.entries.len() - keep;
        let kept = self.entries[cut..].to_vec();
        let mut data = header(self.epoch).to_vec();
        if let Some(first) = kept.first() {
            let mut f = File::open(&self.path).map_err(io_err("open", &self.path))?;
            f.seek(SeekFrom::Start(first.offset))
                .map_err(io_err("seek", &self.path))?;
            let tail = self.len - first.offset;
            let start = data.len();
            data.resize(start + tail as usize, 0);
            f.read_exact(&mut data[start..])
                .map_err(io_err("read", &self.path))?;
        }
        persist::write_atomic_bytes(&self.path, &data)?;
        let shift = kept.first().map_or(0, |f| f.offset - HEADER_LEN);
        self.entries = kept
            .into_iter()
            .map(|e| Entry {
                offset: e.offset - shift,
                ..e
            })
            .collect();
        self.len = data.len() as u64;
        self.broken = false;
        Ok(())
    }

    /// Removes the file (the zone is no longer served).
    pub fn remove(path: &Path) -> Result<(), JournalError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rr;
    use hickory_proto::rr::{Name, RecordType};

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

    fn diff(from: u32, to: u32) -> IxfrDiff {
        let mut d = IxfrDiff::new(soa(from), soa(to));
        d.deleted.push(
            b"\x03old\x07example\x00",
            1,
            1,
            60,
            &[192, 0, 2, from as u8],
        );
        d.added
            .push(b"\x03new\x07example\x00", 1, 1, 60, &[192, 0, 2, to as u8]);
        d
    }

    #[test]
    fn append_reopen_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.jnl");
        let (mut j, torn) = Journal::open(&path, 7).unwrap();
        assert!(torn.is_none());
        assert!(j.entries().is_empty());
        for s in 1..=5 {
            j.append(&diff(s, s + 1)).unwrap();
        }
        let (j2, torn) = Journal::open(&path, 7).unwrap();
        assert!(torn.is_none());
        assert_eq!(j2.entries().len(), 5);
        assert_eq!(j2.chain_from(3), Some(2..5));
        assert_eq!(j2.chain_from(6), Some(5..5));
        assert_eq!(j2.chain_from(9), None);
        let got = j2.read(2..5).unwrap();
        assert_eq!(got, vec![diff(3, 4), diff(4, 5), diff(5, 6)]);
        // Another epoch does not see these entries.
        let (other, _) = Journal::open(&path, 8).unwrap();
        assert!(other.entries().is_empty());
    }

    #[test]
    fn torn_and_damaged_tails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.jnl");
        let (mut j, _) = Journal::open(&path, 1).unwrap();
        j.append(&diff(1, 2)).unwrap();
        j.append(&diff(2, 3)).unwrap();
        let whole = fs::read(&path).unwrap();
        // Every cut inside the second entry drops it and only it.
        let second = j.entries()[1].offset as usize;
        for cut in (second + 1..whole.len()).step_by(7) {
            fs::write(&path, &whole[..cut]).unwrap();
            let (j2, torn) = Journal::open(&path, 1).unwrap();
            assert_eq!(j2.entries().len(), 1, "cut at {cut}");
            assert_eq!(torn.unwrap().dropped, (cut - second) as u64);
            assert_eq!(fs::metadata(&path).unwrap().len(), second as u64);
        }
        // A flipped bit in the payload is caught by the checksum.
        let mut bad = whole.clone();
        bad[second + 40] ^= 1;
        fs::write(&path, &bad).unwrap();
        let (j3, torn) = Journal::open(&path, 1).unwrap();
        assert_eq!(j3.entries().len(), 1);
        assert!(torn.is_some());
        // Appending after the cut continues the journal cleanly.
        let (mut j4, _) = Journal::open(&path, 1).unwrap();
        j4.append(&diff(2, 3)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), whole);
    }

    #[test]
    fn retain_last_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.jnl");
        let (mut j, _) = Journal::open(&path, 3).unwrap();
        for s in 1..=10 {
            j.append(&diff(s, s + 1)).unwrap();
        }
        j.retain_last(3).unwrap();
        assert_eq!(j.entries().len(), 3);
        assert_eq!(j.chain_from(8), Some(0..3));
        assert_eq!(j.read(0..3).unwrap()[2], diff(10, 11));
        j.append(&diff(11, 12)).unwrap();
        let (back, torn) = Journal::open(&path, 3).unwrap();
        assert!(torn.is_none());
        assert_eq!(back.entries().len(), 4);
        assert_eq!(back.read(3..4).unwrap(), vec![diff(11, 12)]);
        j.retain_last(0).unwrap();
        assert!(j.entries().is_empty());
        assert_eq!(j.chain_from(12), None);
    }
}
