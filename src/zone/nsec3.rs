//! NSEC3 hashing (RFC 5155 §5) and the parameters a chain is made with.

use sha1::{Digest, Sha1};

/// Hash algorithm 1, the only one defined (RFC 5155 §11).
pub const SHA1: u8 = 1;
/// Length of a SHA-1 NSEC3 hash.
pub const HASH_LEN: usize = 20;
/// Opt-Out flag of an NSEC3 record (RFC 5155 §3.1.2.1).
pub const OPT_OUT: u8 = 1;

/// What the hashes of a chain are computed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub algorithm: u8,
    pub iterations: u16,
    pub salt: Vec<u8>,
}

impl Params {
    /// Reads the leading algorithm, flags, iterations and salt shared by
    /// NSEC3 and NSEC3PARAM RDATA; returns the parameters, the flags and the
    /// length consumed.
    pub fn from_rdata(wire: &[u8]) -> Option<(Params, u8, usize)> {
        if wire.len() < 5 {
            return None;
        }
        let salt_len = wire[4] as usize;
        let salt = wire.get(5..5 + salt_len)?.to_vec();
        Some((
            Params {
                algorithm: wire[0],
                iterations: u16::from_be_bytes([wire[2], wire[3]]),
                salt,
            },
            wire[1],
            5 + salt_len,
        ))
    }

    /// The NSEC3 hash of a name given as lowercase uncompressed wire bytes.
    pub fn hash(&self, name_key: &[u8]) -> [u8; HASH_LEN] {
        hash(name_key, &self.salt, self.iterations)
    }
}

/// IH(salt, x, k) of RFC 5155 §5 with SHA-1.
pub fn hash(name_key: &[u8], salt: &[u8], iterations: u16) -> [u8; HASH_LEN] {
    let mut h = Sha1::new();
    h.update(name_key);
    h.update(salt);
    let mut digest = h.finalize();
    for _ in 0..iterations {
        let mut h = Sha1::new();
        h.update(digest);
        h.update(salt);
        digest = h.finalize();
    }
    digest.into()
}

/// Decodes the base32hex (RFC 4648 §7) first label of an NSEC3 owner.
pub fn decode_owner_label(label: &[u8]) -> Option<[u8; HASH_LEN]> {
    let upper = label.to_ascii_uppercase();
    let bytes = data_encoding::BASE32HEX_NOPAD.decode(&upper).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5155 Appendix A: salt aabbccdd, 12 iterations.
    #[test]
    fn rfc5155_appendix_a_hashes() {
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        let cases: &[(&[u8], &str)] = &[
            (b"\x07example\x00", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            (b"\x01a\x07example\x00", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            (b"\x02ai\x07example\x00", "gjeqe526plbf1g8mklp59enfd789njgi"),
            (
                b"\x01*\x01w\x07example\x00",
                "r53bq7cc2uvmubfu5ocmm6pers9tk9en",
            ),
        ];
        for (name, want) in cases {
            let h = hash(name, &salt, 12);
            let got = data_encoding::BASE32HEX_NOPAD
                .encode(&h)
                .to_ascii_lowercase();
            assert_eq!(&got, want);
            assert_eq!(decode_owner_label(want.as_bytes()), Some(h));
        }
    }
}
