//! TSIG (RFC 8945): keys and algorithms.
//!
//! Signing and verification over multi-message streams live here too.

use hickory_proto::rr::Name;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum TsigError {
    #[error(
        "unknown TSIG algorithm {0:?} (expected hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512)"
    )]
    UnknownAlgorithm(String),
}

/// The HMAC algorithms a secondary meets in the field. hickory's TSIG lacks
/// md5, sha1 and sha224, which older primaries still use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HmacMd5,
    HmacSha1,
    HmacSha224,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    /// Parses the short names used in config files (`hmac-sha256`) as well as
    /// the algorithm domain names (`hmac-md5.sig-alg.reg.int.`).
    pub fn from_config_name(s: &str) -> Result<Self, TsigError> {
        let lower = s.trim_end_matches('.').to_ascii_lowercase();
        Ok(match lower.as_str() {
            "hmac-md5" | "hmac-md5.sig-alg.reg.int" => Self::HmacMd5,
            "hmac-sha1" => Self::HmacSha1,
            "hmac-sha224" => Self::HmacSha224,
            "hmac-sha256" => Self::HmacSha256,
            "hmac-sha384" => Self::HmacSha384,
            "hmac-sha512" => Self::HmacSha512,
            _ => return Err(TsigError::UnknownAlgorithm(s.to_string())),
        })
    }

    /// The algorithm name as it appears in the TSIG RDATA.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::HmacMd5 => "hmac-md5.sig-alg.reg.int.",
            Self::HmacSha1 => "hmac-sha1.",
            Self::HmacSha224 => "hmac-sha224.",
            Self::HmacSha256 => "hmac-sha256.",
            Self::HmacSha384 => "hmac-sha384.",
            Self::HmacSha512 => "hmac-sha512.",
        }
    }

    /// The short name used in configs of BIND, Knot and NSD.
    pub fn config_name(self) -> &'static str {
        match self {
            Self::HmacMd5 => "hmac-md5",
            Self::HmacSha1 => "hmac-sha1",
            Self::HmacSha224 => "hmac-sha224",
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.config_name())
    }
}

/// A TSIG key: its name is part of every MAC, so it is a domain name.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub name: Name,
    pub algorithm: Algorithm,
    pub secret: Vec<u8>,
}

impl fmt::Debug for Key {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}
