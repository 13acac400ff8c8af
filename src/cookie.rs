//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018).
//!
//! A server cookie is version 1, three reserved octets, a timestamp and
//! SipHash-2-4 of the client cookie, those eight octets and the client's
//! address under a 128-bit secret. Instances sharing the secret accept
//! each other's cookies (an anycast set, or a primary and its secondaries
//! as BIND builds them). Rotation: the new secret in `secret`, the old one
//! in `previous_secret`, on every instance, then the old one dropped.
//!
//! What a query's COOKIE option makes of it, as BIND does by default
//! (RFC 7873 §5.2, with `require-server-cookie no`):
//! - malformed (length not 8, nor 16 to 40): FORMERR;
//! - client cookie only, or a server cookie that does not verify: the
//!   normal answer with a fresh server cookie;
//! - a valid server cookie: the normal answer, and the client is known to
//!   be at its address, so response rate limiting lets it through.
//!
//! When rate limiting would slip a response to a client that sent a
//! cookie but no valid server cookie, it answers BADCOOKIE with a fresh
//! one (as BIND does) instead of TC=1: the client retries over UDP with
//! the cookie, which exempts it.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

use crate::config::CookieConfig;

/// EDNS option code of COOKIE.
pub const OPTION: u16 = 10;
/// Extended RCODE BADCOOKIE (RFC 7873 §8).
pub const BADCOOKIE: u16 = 23;
/// A client cookie and our server cookie.
pub const RESPONSE_LEN: usize = 8 + 16;

/// A server cookie is accepted for an hour after it was made, and up to
/// five minutes before (clocks of instances sharing a secret differ):
/// RFC 9018 §4.3.
const MAX_AGE: u32 = 3600;
const MAX_AHEAD: u32 = 300;
/// A valid cookie older than this is replaced by a fresh one (RFC 9018 §4.3).
const REFRESH_AGE: u32 = 1800;

/// What a query's COOKIE option was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong length: the answer is FORMERR.
    Malformed,
    /// A client cookie without a server cookie, or one that does not
    /// verify (another secret, too old, another address).
    Unverified,
    /// A server cookie we (or an instance with our secret) made for this
    /// client at this address.
    Valid,
}

/// The secrets, and the making and checking of cookies.
#[derive(Clone)]
pub struct Cookies {
    current: [u8; 16],
    previous: Option<[u8; 16]>,
}

impl Cookies {
    /// With no secret configured, a random one: cookies then hold for this
    /// process only.
    pub fn new(config: &CookieConfig) -> Cookies {
        Cookies {
            current: config.secret.unwrap_or_else(rand::random),
            previous: config.previous_secret,
        }
    }

    /// Checks `option` (the COOKIE option's data) from `client` at `now`
    /// (Unix seconds) and writes the response's option data into `out`:
    /// the client cookie and a server cookie, the one sent when it is valid
    /// and recent, else a fresh one. The written length is
    /// [`RESPONSE_LEN`] unless the verdict is `Malformed` (nothing written).
    pub fn check(
        &self,
        option: &[u8],
        client: IpAddr,
        now: u32,
        out: &mut [u8; RESPONSE_LEN],
    ) -> Verdict {
        let len = option.len();
        if len != 8 && !(16..=40).contains(&len) {
            return Verdict::Malformed;
        }
        let client_cookie: &[u8; 8] = option[..8].try_into().expect("8 octets");
        out[..8].copy_from_slice(client_cookie);
        if len == 24 {
            let server = &option[8..];
            let stamp = u32::from_be_bytes(server[4..8].try_into().expect("4 octets"));
            let age = now.wrapping_sub(stamp);
            let fresh_enough = age <= MAX_AGE || stamp.wrapping_sub(now) <= MAX_AHEAD;
            if server[..4] == [1, 0, 0, 0]
                && fresh_enough
                && std::iter::once(&self.current)
                    .chain(self.previous.as_ref())
                    .any(|key| hash(key, client_cookie, stamp, client) == server[8..16])
            {
                if age <= REFRESH_AGE || stamp.wrapping_sub(now) <= MAX_AHEAD {
                    out[8..].copy_from_slice(server);
                } else {
                    self.make(client_cookie, client, now, out);
                }
                return Verdict::Valid;
            }
        }
        self.make(client_cookie, client, now, out);
        Verdict::Unverified
    }

    fn make(&self, client_cookie: &[u8; 8], client: IpAddr, now: u32, out: &mut [u8; 24]) {
        out[8..12].copy_from_slice(&[1, 0, 0, 0]);
        out[12..16].copy_from_slice(&now.to_be_bytes());
        out[16..24].copy_from_slice(&hash(&self.current, client_cookie, now, client));
    }
}

/// RFC 9018 §4.4: SipHash-2-4 over client cookie, version, reserved,
/// timestamp and client address, under `key`.
fn hash(key: &[u8; 16], client_cookie: &[u8; 8], stamp: u32, client: IpAddr) -> [u8; 8] {
    let mut h = SipHasher24::new_with_key(key);
    h.write(client_cookie);
    h.write(&[1, 0, 0, 0]);
    h.write(&stamp.to_be_bytes());
    match client.to_canonical() {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    h.finish().to_le_bytes()
}

/// The COOKIE option's data in a query's wire form, if it has one (a slow
/// path: it allocates).
pub fn query_option(query: &[u8]) -> Option<Vec<u8>> {
    let m = crate::wire::Message::parse(query).ok()?;
    m.opt?.option(OPTION).map(<[u8]>::to_vec)
}

/// Unix time in seconds, as cookies carry it.
pub fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .unwrap()
    }

    fn cookies(secret: &str) -> Cookies {
        Cookies::new(&CookieConfig {
            secret: Some(hex(secret).try_into().unwrap()),
            previous_secret: None,
        })
    }

    /// RFC 9018 Appendix A.1: the published test vector, then its reuse.
    #[test]
    fn rfc_9018_test_vectors() {
        let c = cookies("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let mut out = [0u8; RESPONSE_LEN];
        // A.1: a client cookie only, at 1559731985.
        let v = c.check(&hex("2464c4abcf10c957"), ip, 1559731985, &mut out);
        assert_eq!(v, Verdict::Unverified);
        assert_eq!(
            out[..],
            hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")[..]
        );
        // The same cookie back a little later is valid and echoed.
        let v = c.check(&out.clone(), ip, 1559731985 + 10, &mut out);
        assert_eq!(v, Verdict::Valid);
        assert_eq!(
            out[..],
            hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")[..]
        );
    }

    #[test]
    fn lengths_addresses_ages_and_rotation() {
        let old = cookies("000102030405060708090a0b0c0d0e0f");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut out = [0u8; RESPONSE_LEN];
        for bad in [0, 1, 7, 9, 15, 41] {
            assert_eq!(
                old.check(&vec![1; bad], ip, 1000, &mut out),
                Verdict::Malformed
            );
        }
        assert_eq!(old.check(&[7; 8], ip, 1000, &mut out), Verdict::Unverified);
        let issued = out;
        assert_eq!(old.check(&issued, ip, 1500, &mut out), Verdict::Valid);
        // Another address, too old, from the future, tampered: not valid.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            old.check(&issued, other, 1500, &mut out),
            Verdict::Unverified
        );
        assert_eq!(
            old.check(&issued, ip, 1000 + MAX_AGE + 1, &mut out),
            Verdict::Unverified
        );
        assert_eq!(
            old.check(&issued, ip, 1000 - MAX_AHEAD - 1, &mut out),
            Verdict::Unverified
        );
        let mut tampered = issued;
        tampered[23] ^= 1;
        assert_eq!(
            old.check(&tampered, ip, 1500, &mut out),
            Verdict::Unverified
        );
        // An old but valid cookie is replaced by a fresh one.
        assert_eq!(
            old.check(&issued, ip, 1000 + 2000, &mut out),
            Verdict::Valid
        );
        assert_ne!(out[8..16], issued[8..16]);
        // Rotation: the new secret makes cookies, the old one is accepted.
        let rotated = Cookies::new(&CookieConfig {
            secret: Some([9; 16]),
            previous_secret: Some(hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap()),
        });
        assert_eq!(rotated.check(&issued, ip, 1500, &mut out), Verdict::Valid);
        let fresh = cookies("09090909090909090909090909090909");
        assert_eq!(
            fresh.check(&issued, ip, 1500, &mut out),
            Verdict::Unverified
        );
    }
}
