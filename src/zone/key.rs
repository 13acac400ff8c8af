//! Lookup keys: names as lowercase uncompressed wire bytes.
//!
//! Every ancestor of a name in wire form is a suffix of its bytes, so walking
//! from a query name up to the apex slices one buffer instead of building a
//! name per label: no allocation on the query path.

use hickory_proto::rr::Name;

/// The maximum length of a name on the wire (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;

/// A name in lowercase wire form on the stack, with the offset of each label.
#[derive(Clone)]
pub struct WireName {
    buf: [u8; MAX_NAME],
    len: usize,
    /// `starts[i]` is where label `i` (counting from the left) begins.
    starts: [u8; 128],
    labels: usize,
}

impl Default for WireName {
    fn default() -> Self {
        WireName::new()
    }
}

impl WireName {
    pub fn from_name(name: &Name) -> Self {
        let mut w = WireName::new();
        w.len = 0;
        for label in name.iter() {
            // hickory guarantees a name fits in 255 octets.
            w.starts[w.labels] = w.len as u8;
            w.labels += 1;
            w.buf[w.len] = label.len() as u8;
            w.len += 1;
            for &b in label {
                w.buf[w.len] = b.to_ascii_lowercase();
                w.len += 1;
            }
        }
        w.starts[w.labels] = w.len as u8;
        w.buf[w.len] = 0;
        w.len += 1;
        w
    }

    /// The root name; [`WireName::read_wire`] reuses it.
    pub fn new() -> Self {
        WireName {
            buf: [0; MAX_NAME],
            len: 1,
            starts: [0; 128],
            labels: 0,
        }
    }

    /// Reads an uncompressed name at the start of `wire`, lowercasing it;
    /// returns it and its length on the wire. `None` for a compression
    /// pointer, an extended label type, or a name longer than 255 octets:
    /// the UDP fast path leaves such queries to the full parser.
    pub fn from_wire(wire: &[u8]) -> Option<(Self, usize)> {
        let mut w = WireName::new();
        let len = w.read_wire(wire)?;
        Some((w, len))
    }

    /// [`WireName::from_wire`] into an existing value, so that a query
    /// loop reuses one buffer instead of moving 400 octets per query.
    /// On `None` the value is left unusable until the next successful read.
    pub fn read_wire(&mut self, wire: &[u8]) -> Option<usize> {
        self.len = 0;
        self.labels = 0;
        loop {
            let n = *wire.get(self.len)? as usize;
            if n == 0 {
                break;
            }
            // 0xC0 pointers and the obsolete 0x40/0x80 label types.
            if n > 63 || self.len + n + 2 > MAX_NAME {
                return None;
            }
            let label = wire.get(self.len + 1..self.len + 1 + n)?;
            self.starts[self.labels] = self.len as u8;
            self.labels += 1;
            self.buf[self.len] = n as u8;
            for (d, &b) in self.buf[self.len + 1..self.len + 1 + n]
                .iter_mut()
                .zip(label)
            {
                *d = b.to_ascii_lowercase();
            }
            self.len += n + 1;
        }
        self.starts[self.labels] = self.len as u8;
        self.buf[self.len] = 0;
        self.len += 1;
        Some(self.len)
    }

    /// Number of labels, the root not counted.
    pub fn labels(&self) -> usize {
        self.labels
    }

    /// The whole name.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The ancestor made of the rightmost `n` labels.
    pub fn suffix(&self, n: usize) -> &[u8] {
        debug_assert!(n <= self.labels);
        &self.buf[self.starts[self.labels - n] as usize..self.len]
    }
}

/// The owned lookup key of a name.
pub fn key_of(name: &Name) -> Box<[u8]> {
    WireName::from_name(name).bytes().into()
}

/// Number of labels of a key, the root not counted.
pub fn key_labels(key: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < key.len() && key[i] != 0 {
        i += key[i] as usize + 1;
        n += 1;
    }
    n
}

/// Writes `*.` followed by `parent` into `out`, returning the key length, or
/// `None` when the result would be longer than a name may be.
pub fn wildcard_key(parent: &[u8], out: &mut [u8; MAX_NAME]) -> Option<usize> {
    let len = parent.len() + 2;
    if len > MAX_NAME {
        return None;
    }
    out[0] = 1;
    out[1] = b'*';
    out[2..len].copy_from_slice(parent);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_ancestors() {
        let n = Name::from_ascii("WWW.Example.COM.").unwrap();
        let w = WireName::from_name(&n);
        assert_eq!(w.labels(), 3);
        assert_eq!(w.bytes(), b"\x03www\x07example\x03com\x00");
        assert_eq!(w.suffix(0), b"\x00");
        assert_eq!(w.suffix(2), b"\x07example\x03com\x00");
        assert_eq!(w.suffix(3), w.bytes());
        assert_eq!(key_labels(w.bytes()), 3);
        let mut buf = [0; MAX_NAME];
        let len = wildcard_key(w.suffix(2), &mut buf).unwrap();
        assert_eq!(&buf[..len], b"\x01*\x07example\x03com\x00");
    }

    #[test]
    fn from_wire_matches_from_name() {
        let wire = b"\x03WwW\x07Example\x03COM\x00\x00\x01";
        let (w, used) = WireName::from_wire(wire).unwrap();
        assert_eq!(used, 17);
        let n = WireName::from_name(&Name::from_ascii("www.example.com.").unwrap());
        assert_eq!(w.bytes(), n.bytes());
        assert_eq!(w.labels(), 3);
        assert_eq!(w.suffix(2), n.suffix(2));
        assert!(WireName::from_wire(b"\x03www\xc0\x0c").is_none());
        assert!(WireName::from_wire(b"\x03ww").is_none());
        let (root, used) = WireName::from_wire(b"\x00").unwrap();
        assert_eq!((root.labels(), used), (0, 1));
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert!(WireName::from_wire(&long).is_none());
    }

    #[test]
    fn root() {
        let w = WireName::from_name(&Name::root());
        assert_eq!(w.labels(), 0);
        assert_eq!(w.bytes(), b"\x00");
    }
}
