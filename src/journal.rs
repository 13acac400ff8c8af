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

fn raw_head(raw: &RawRecords) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&(raw.len() as u32).to_be_bytes());
    h[4..].copy_from_slice(&(raw.size() as u32).to_be_bytes());
    h
}

fn put_raw(out: &mut Vec<u8>, raw: &RawRecords) {
    out.extend_from_slice(&raw_head(raw));
    out.extend_from_slice(raw.as_bytes());
}

fn put_record(out: &mut Vec<u8>, r: &Record) {
    let raw: RawRecords = std::iter::once(r).collect();
    put_raw(out, &raw);
}

/// The payload of an entry: epoch, serials, the two SOAs, deletions,
/// additions. In pieces, so that a difference the size of a zone is
/// written as it is held, not copied first.
struct Payload<'a> {
    /// Epoch, serials and the two SOAs.
    head: Vec<u8>,
    deleted: ([u8; 8], &'a [u8]),
    added: ([u8; 8], &'a [u8]),
}

impl<'a> Payload<'a> {
    fn of(epoch: u64, d: &'a IxfrDiff) -> Payload<'a> {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(&epoch.to_be_bytes());
        head.extend_from_slice(&soa_serial(&d.old_soa).unwrap_or(0).to_be_bytes());
        head.extend_from_slice(&soa_serial(&d.new_soa).unwrap_or(0).to_be_bytes());
        put_record(&mut head, &d.old_soa);
        put_record(&mut head, &d.new_soa);
        Payload {
            head,
            deleted: (raw_head(&d.deleted), d.deleted.as_bytes()),
            added: (raw_head(&d.added), d.added.as_bytes()),
        }
    }

    fn pieces(&self) -> [&[u8]; 5] {
        [
            &self.head,
            &self.deleted.0,
            self.deleted.1,
            &self.added.0,
            self.added.1,
        ]
    }

    fn len(&self) -> usize {
        self.pieces().iter().map(|p| p.len()).sum()
    }

    fn crc(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for p in self.pieces() {
            h.update(p);
        }
        h.finalize()
    }
}

const FRAMING: &str = "checksum or framing changed since it was written";

/// An entry's payload read piece by piece, each piece into a buffer of
/// its own, with the checksum taken on the way: a difference the size of
/// a zone is read once, not read and then copied.
struct PayloadReader<'r, R> {
    inner: &'r mut R,
    left: usize,
    crc: crc32fast::Hasher,
}

impl<R: Read> PayloadReader<'_, R> {
    /// `n` octets, or `None` when the payload has fewer left.
    fn take(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        if n > self.left {
            return Ok(None);
        }
        let mut v = vec![0u8; n];
        self.inner.read_exact(&mut v)?;
        self.crc.update(&v);
        self.left -= n;
        Ok(Some(v))
    }

    fn u32(&mut self) -> io::Result<Option<u32>> {
        Ok(self
            .take(4)?
            .map(|v| u32::from_be_bytes(v[..].try_into().expect("4 octets"))))
    }

    /// A record count and the records' octets.
    fn raw(&mut self) -> io::Result<Option<(usize, Vec<u8>)>> {
        let (Some(count), Some(len)) = (self.u32()?, self.u32()?) else {
            return Ok(None);
        };
        Ok(self.take(len as usize)?.map(|v| (count as usize, v)))
    }
}

/// Reads the entry of `len` octets (head included) at `r`'s position:
/// the difference, or why it is corrupt.
fn read_entry(r: &mut impl Read, len: u64) -> io::Result<Result<IxfrDiff, &'static str>> {
    let mut head = [0u8; ENTRY_HEAD];
    r.read_exact(&mut head)?;
    let magic = u32::from_be_bytes(head[..4].try_into().expect("4 octets"));
    let plen = u32::from_be_bytes(head[4..8].try_into().expect("4 octets")) as usize;
    let crc = u32::from_be_bytes(head[8..].try_into().expect("4 octets"));
    if magic != ENTRY_MAGIC || (ENTRY_HEAD + plen) as u64 != len {
        return Ok(Err(FRAMING));
    }
    let mut p = PayloadReader {
        inner: r,
        left: plen,
        crc: crc32fast::Hasher::new(),
    };
    // Epoch and serials: the index has them already.
    if p.take(16)?.is_none() {
        return Ok(Err(FRAMING));
    }
    let (Some(old_soa), Some(new_soa), Some(deleted), Some(added)) =
        (p.raw()?, p.raw()?, p.raw()?, p.raw()?)
    else {
        return Ok(Err(FRAMING));
    };
    if p.left != 0 || p.crc.finalize() != crc {
        return Ok(Err(FRAMING));
    }
    let record = |(count, v): (usize, Vec<u8>)| {
        let raw = RawRecords::from_bytes(v, count)?;
        raw.iter().next()?.to_record().ok()
    };
    let raw = |(count, v): (usize, Vec<u8>)| RawRecords::from_bytes(v, count);
    let diff = (|| {
        Some(IxfrDiff {
            old_soa: record(old_soa)?,
            new_soa: record(new_soa)?,
            deleted: raw(deleted)?,
            added: raw(added)?,
        })
    })();
    Ok(diff.ok_or("bad payload"))
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
    /// A journal of `epoch` with nothing in it yet: its file is written at
    /// the first append. A file left at `path` by an earlier epoch is
    /// never read for this one (its header names another epoch) and is
    /// replaced by that append.
    pub fn empty(path: &Path, epoch: u64) -> Journal {
        Journal {
            path: path.to_path_buf(),
            epoch,
            entries: Vec::new(),
            len: 0,
            broken: false,
        }
    }

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
        let payload = Payload::of(self.epoch, diff);
        let len = payload.len();
        let mut head = [0u8; ENTRY_HEAD];
        head[..4].copy_from_slice(&ENTRY_MAGIC.to_be_bytes());
        head[4..8].copy_from_slice(&(len as u32).to_be_bytes());
        head[8..].copy_from_slice(&payload.crc().to_be_bytes());
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(io_err("open", &self.path))?;
            f.seek(SeekFrom::Start(self.len))
                .map_err(io_err("seek", &self.path))?;
            let mut w = io::BufWriter::with_capacity(1 << 16, &mut f);
            for piece in std::iter::once(&head[..]).chain(payload.pieces()) {
                w.write_all(piece)
                    .map_err(io_err("append to", &self.path))?;
            }
            w.flush().map_err(io_err("append to", &self.path))?;
            drop(w);
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
            len: (ENTRY_HEAD + len) as u64,
        });
        self.len += (ENTRY_HEAD + len) as u64;
        Ok(())
    }

    /// Reads entries `range` back, oldest first.
    pub fn read(&self, range: std::ops::Range<usize>) -> Result<Vec<IxfrDiff>, JournalError> {
        let Some(first) = self.entries.get(range.start) else {
            return Ok(Vec::new());
        };
        let mut f = File::open(&self.path).map_err(io_err("open", &self.path))?;
        f.seek(SeekFrom::Start(first.offset))
            .map_err(io_err("seek", &self.path))?;
        let mut f = io::BufReader::with_capacity(1 << 16, f);
        let mut out = Vec::with_capacity(range.len());
        for (i, e) in self.entries[range.clone()].iter().enumerate() {
            let diff = read_entry(&mut f, e.len).map_err(io_err("read", &self.path))?;
            out.push(diff.map_err(|reason| JournalError::Corrupt {
                path: self.path.clone(),
                index: range.start + i,
                reason,
            })?);
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
        // The kept entries are copied through a buffer, not read whole:
        // they may be as large as the history bound.
        let tail = kept.first().map_or(0, |first| self.len - first.offset);
        let mut from = match kept.first() {
            Some(first) => {
                let mut f = File::open(&self.path).map_err(io_err("open", &self.path))?;
                f.seek(SeekFrom::Start(first.offset))
                    .map_err(io_err("seek", &self.path))?;
                Some(f.take(tail))
            }
            None => None,
        };
        persist::write_atomic(&self.path, |w| -> io::Result<()> {
            w.write_all(&header(self.epoch))?;
            if let Some(f) = from.as_mut()
                && io::copy(f, w)? != tail
            {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "journal shorter than its entries",
                ));
            }
            Ok(())
        })?;
        let shift = kept.first().map_or(0, |f| f.offset - HEADER_LEN);
        self.entries = kept
            .into_iter()
            .map(|e| Entry {
                offset: e.offset - shift,
                ..e
            })
            .collect();
        self.len = HEADER_LEN + tail;
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
