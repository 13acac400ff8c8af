//! TSIG (RFC 8945): keys, algorithms, signing and verification.
//!
//! Works on raw message bytes (see [`crate::wire`]): the MAC covers the exact
//! octets sent, so re-encoding a parsed message would be wrong.
//!
//! Client side: [`sign_request`] and [`StreamVerifier`] for (multi-message)
//! responses. Server side: [`verify_request`], [`StreamSigner`] for responses,
//! and [`Rejection`] to build the TSIG of an error reply.

use hickory_proto::rr::Name;
use hmac::{Hmac, Mac};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::wire::{self, CLASS_ANY, Message, TYPE_TSIG, WireError, put_name_canonical};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TsigError {
    #[error(
        "unknown TSIG algorithm {0:?} (expected hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512)"
    )]
    UnknownAlgorithm(String),
    #[error("malformed message: {0}")]
    Wire(#[from] WireError),
    #[error("TSIG missing: response is not signed (rcode {})", wire::rcode_name(*.rcode))]
    Unsigned { rcode: u16 },
    /// The server's verdict on our request, from the TSIG error field.
    #[error("TSIG {}", error_name(*.0))]
    ServerError(u16),
    #[error(
        "TSIG BADKEY: response signed with key {got} ({got_alg}), expected {expected} ({expected_alg})"
    )]
    WrongKey {
        got: String,
        got_alg: String,
        expected: String,
        expected_alg: Algorithm,
    },
    #[error("TSIG BADSIG: MAC does not verify with key {0}")]
    BadSig(String),
    #[error("TSIG BADTIME: signed at {signed}, local time {now}, fudge {fudge}s")]
    BadTime { signed: u64, now: u64, fudge: u16 },
    #[error("TSIG FORMERR: MAC size {size} invalid for {algorithm} (must be {min}..={max})")]
    BadMacSize {
        size: usize,
        min: usize,
        max: usize,
        algorithm: Algorithm,
    },
    #[error("TSIG: more than {MAX_UNSIGNED} consecutive unsigned messages")]
    TooManyUnsigned,
    #[error("TSIG: the stream ended with {0} unsigned message(s)")]
    UnsignedEnd(usize),
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

    /// Recognises the algorithm name of a received TSIG record.
    pub fn from_wire_name(name: &Name) -> Option<Self> {
        let s = name.to_ascii();
        Self::from_config_name(&s).ok()
    }

    /// The full HMAC output length in octets.
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacMd5 => 16,
            Self::HmacSha1 => 20,
            Self::HmacSha224 => 28,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }

    /// Shortest MAC accepted (RFC 8945 §5.2.2.1): the larger of 10 octets and
    /// half the HMAC output.
    pub fn min_mac_len(self) -> usize {
        (self.output_len() / 2).max(10)
    }

    fn wire_name_as_name(self) -> Name {
        Name::from_ascii(self.wire_name()).expect("static algorithm names are valid")
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

impl Key {
    pub fn new(name: Name, algorithm: Algorithm, secret: Vec<u8>) -> Self {
        Key {
            name,
            algorithm,
            secret,
        }
    }
}

/// TSIG error codes (RFC 8945 §3, RFC 2845).
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;
pub const BADTRUNC: u16 = 22;

/// DNS RCODEs used in TSIG error replies.
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_NOTAUTH: u8 = 9;

/// Fudge we put in signatures: the value BIND, Knot and NSD use.
pub const DEFAULT_FUDGE: u16 = 300;

/// RFC 8945 §5.3.1: a client must accept up to 99 unsigned messages between
/// signed ones.
pub const MAX_UNSIGNED: usize = 99;

pub fn error_name(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        BADSIG => "BADSIG".into(),
        BADKEY => "BADKEY".into(),
        BADTIME => "BADTIME".into(),
        BADTRUNC => "BADTRUNC".into(),
        other => format!("error {other}"),
    }
}

/// Seconds since the epoch, the TSIG time base.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

enum MacState {
    Md5(Hmac<md5::Md5>),
    Sha1(Hmac<sha1::Sha1>),
    Sha224(Hmac<sha2::Sha224>),
    Sha256(Hmac<sha2::Sha256>),
    Sha384(Hmac<sha2::Sha384>),
    Sha512(Hmac<sha2::Sha512>),
}

impl MacState {
    fn new(key: &Key) -> Self {
        // HMAC accepts keys of any length; new_from_slice cannot fail.
        let k = &key.secret[..];
        match key.algorithm {
            Algorithm::HmacMd5 => Self::Md5(Hmac::new_from_slice(k).expect("any key length")),
            Algorithm::HmacSha1 => Self::Sha1(Hmac::new_from_slice(k).expect("any key length")),
            Algorithm::HmacSha224 => Self::Sha224(Hmac::new_from_slice(k).expect("any key length")),
            Algorithm::HmacSha256 => Self::Sha256(Hmac::new_from_slice(k).expect("any key length")),
            Algorithm::HmacSha384 => Self::Sha384(Hmac::new_from_slice(k).expect("any key length")),
            Algorithm::HmacSha512 => Self::Sha512(Hmac::new_from_slice(k).expect("any key length")),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Md5(m) => m.update(data),
            Self::Sha1(m) => m.update(data),
            Self::Sha224(m) => m.update(data),
            Self::Sha256(m) => m.update(data),
            Self::Sha384(m) => m.update(data),
            Self::Sha512(m) => m.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Md5(m) => m.finalize().into_bytes().to_vec(),
            Self::Sha1(m) => m.finalize().into_bytes().to_vec(),
            Self::Sha224(m) => m.finalize().into_bytes().to_vec(),
            Self::Sha256(m) => m.finalize().into_bytes().to_vec(),
            Self::Sha384(m) => m.finalize().into_bytes().to_vec(),
            Self::Sha512(m) => m.finalize().into_bytes().to_vec(),
        }
    }
}

/// Compares `received` with the leading octets of `computed` without an
/// early exit, so timing does not reveal how many octets matched.
fn ct_prefix_eq(computed: &[u8], received: &[u8]) -> bool {
    if received.is_empty() || received.len() > computed.len() {
        return false;
    }
    let diff = computed
        .iter()
        .zip(received)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// What a MAC covers besides the message (RFC 8945 §4.3).
enum Variables<'a> {
    /// All TSIG variables: requests, first response, error replies.
    Full { error: u16, other: &'a [u8] },
    /// Time signed and fudge only: later messages of a stream.
    TimersOnly,
}

/// Computes a MAC. `messages` are the message octets as they were before the
/// TSIG was added (original ID, ARCOUNT without TSIG).
fn compute_mac(
    key: &Key,
    prior_mac: Option<&[u8]>,
    messages: &[&[u8]],
    time_signed: u64,
    fudge: u16,
    vars: Variables<'_>,
) -> Vec<u8> {
    let mut m = MacState::new(key);
    if let Some(prior) = prior_mac {
        m.update(&(prior.len() as u16).to_be_bytes());
        m.update(prior);
    }
    for msg in messages {
        m.update(msg);
    }
    let time = &time_signed.to_be_bytes()[2..];
    match vars {
        Variables::Full { error, other } => {
            let mut v = Vec::with_capacity(64);
            put_name_canonical(&mut v, &key.name);
            v.extend_from_slice(&CLASS_ANY.to_be_bytes());
            v.extend_from_slice(&0u32.to_be_bytes());
            put_name_canonical(&mut v, &key.algorithm.wire_name_as_name());
            v.extend_from_slice(time);
            v.extend_from_slice(&fudge.to_be_bytes());
            v.extend_from_slice(&error.to_be_bytes());
            v.extend_from_slice(&(other.len() as u16).to_be_bytes());
            v.extend_from_slice(other);
            m.update(&v);
        }
        Variables::TimersOnly => {
            m.update(time);
            m.update(&fudge.to_be_bytes());
        }
    }
    m.finish()
}

/// The bytes a MAC covers for a received message: everything before the
/// TSIG record, with the original ID restored and ARCOUNT reduced by one.
fn unsigned_form(msg: &[u8], tsig: &wire::TsigRr) -> Vec<u8> {
    let mut v = msg[..tsig.offset].to_vec();
    v[0..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([v[10], v[11]]).saturating_sub(1);
    v[10..12].copy_from_slice(&arcount.to_be_bytes());
    v
}

/// Appends a TSIG record to `msg` (which must not carry one yet).
fn append_tsig(
    msg: &[u8],
    key: &Key,
    time_signed: u64,
    fudge: u16,
    mac: &[u8],
    error: u16,
    other: &[u8],
) -> Result<Vec<u8>, TsigError> {
    if msg.len() < 12 {
        return Err(WireError::Truncated(msg.len()).into());
    }
    let mut out = msg.to_vec();
    let arcount = u16::from_be_bytes([out[10], out[11]])
        .checked_add(1)
        .ok_or(WireError::TooLarge("additional section count"))?;
    out[10..12].copy_from_slice(&arcount.to_be_bytes());
    put_name_canonical(&mut out, &key.name);
    out.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    let mut rdata = Vec::with_capacity(32 + mac.len() + other.len());
    put_name_canonical(&mut rdata, &key.algorithm.wire_name_as_name());
    rdata.extend_from_slice(&time_signed.to_be_bytes()[2..]);
    rdata.extend_from_slice(&fudge.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(mac);
    rdata.extend_from_slice(&msg[0..2]);
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&(other.len() as u16).to_be_bytes());
    rdata.extend_from_slice(other);
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    if out.len() > usize::from(u16::MAX) {
        return Err(WireError::TooLarge("signed message longer than 65535 octets").into());
    }
    Ok(out)
}

/// A signed request and the MAC the response will be chained to.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub bytes: Vec<u8>,
    pub mac: Vec<u8>,
}

/// Signs a request (query, NOTIFY, ...) with `key` at time `now`.
pub fn sign_request(msg: &[u8], key: &Key, now: u64) -> Result<SignedRequest, TsigError> {
    let vars = Variables::Full {
        error: 0,
        other: &[],
    };
    let mac = compute_mac(key, None, &[msg], now, DEFAULT_FUDGE, vars);
    let bytes = append_tsig(msg, key, now, DEFAULT_FUDGE, &mac, 0, &[])?;
    Ok(SignedRequest { bytes, mac })
}

fn check_time(tsig: &wire::TsigRr, now: u64) -> Result<(), TsigError> {
    if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        return Err(TsigError::BadTime {
            signed: tsig.time_signed,
            now,
            fudge: tsig.fudge,
        });
    }
    Ok(())
}

fn check_mac_size(alg: Algorithm, size: usize) -> Result<(), TsigError> {
    if size > alg.output_len() || size < alg.min_mac_len() {
        return Err(TsigError::BadMacSize {
            size,
            min: alg.min_mac_len(),
            max: alg.output_len(),
            algorithm: alg,
        });
    }
    Ok(())
}

/// Verifies the messages of one response stream (a single reply or every
/// message of an AXFR/IXFR) against the MAC of our request.
#[derive(Debug)]
pub struct StreamVerifier {
    key: Key,
    prior_mac: Vec<u8>,
    signed_seen: usize,
    /// Unsigned messages since the last signed one, in their MAC form.
    pending: Vec<Vec<u8>>,
}

impl StreamVerifier {
    pub fn new(key: &Key, request_mac: &[u8]) -> Self {
        StreamVerifier {
            key: key.clone(),
            prior_mac: request_mac.to_vec(),
            signed_seen: 0,
            pending: Vec::new(),
        }
    }

    /// Checks one message. `parsed` must be `Message::parse(msg)`.
    pub fn verify(&mut self, msg: &[u8], parsed: &Message, now: u64) -> Result<(), TsigError> {
        let Some(tsig) = &parsed.tsig else {
            // The first message must be signed (RFC 8945 §5.3.1).
            if self.signed_seen == 0 {
                return Err(TsigError::Unsigned {
                    rcode: parsed.rcode(),
                });
            }
            if self.pending.len() >= MAX_UNSIGNED {
                return Err(TsigError::TooManyUnsigned);
            }
            self.pending.push(msg.to_vec());
            return Ok(());
        };
        let alg = Algorithm::from_wire_name(&tsig.algorithm);
        if tsig.key_name != self.key.name || alg != Some(self.key.algorithm) {
            return Err(TsigError::WrongKey {
                got: tsig.key_name.to_ascii(),
                got_alg: tsig.algorithm.to_ascii(),
                expected: self.key.name.to_ascii(),
                expected_alg: self.key.algorithm,
            });
        }
        // An error reply (BADSIG, BADKEY: unsigned with an empty MAC; BADTIME)
        // is reported as the server's verdict on our request.
        if tsig.error != 0 {
            return Err(TsigError::ServerError(tsig.error));
        }
        check_mac_size(self.key.algorithm, tsig.mac.len())?;
        let this = unsigned_form(msg, tsig);
        let mut parts: Vec<&[u8]> = self.pending.iter().map(Vec::as_slice).collect();
        parts.push(&this);
        let vars = if self.signed_seen == 0 {
            Variables::Full {
                error: tsig.error,
                other: &tsig.other,
            }
        } else {
            Variables::TimersOnly
        };
        let computed = compute_mac(
            &self.key,
            Some(&self.prior_mac),
            &parts,
            tsig.time_signed,
            tsig.fudge,
            vars,
        );
        if !ct_prefix_eq(&computed, &tsig.mac) {
            return Err(TsigError::BadSig(self.key.name.to_ascii()));
        }
        check_time(tsig, now)?;
        self.prior_mac = tsig.mac.clone();
        self.pending.clear();
        self.signed_seen += 1;
        Ok(())
    }

    /// Messages verified so far that carried a TSIG.
    pub fn signed_messages(&self) -> usize {
        self.signed_seen
    }

    /// Call at the end of the stream: its last message must be signed.
    pub fn finish(&self) -> Result<(), TsigError> {
        if !self.pending.is_empty() {
            return Err(TsigError::UnsignedEnd(self.pending.len()));
        }
        if self.signed_seen == 0 {
            return Err(TsigError::Unsigned { rcode: 0 });
        }
        Ok(())
    }
}

/// A request whose TSIG verified.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    pub key: Key,
    pub mac: Vec<u8>,
    pub time_signed: u64,
}

/// Why a signed request was refused, and what the reply must carry
/// (RFC 8945 §5.2).
#[derive(Debug, Clone, thiserror::Error)]
#[error("TSIG {} from key {key_name}: {reason}", error_name(*.error))]
pub struct Rejection {
    /// TSIG error code for the reply's TSIG record (0 for FORMERR replies,
    /// which carry no TSIG).
    pub error: u16,
    /// RCODE of the reply: NOTAUTH, or FORMERR for a malformed TSIG.
    pub rcode: u8,
    pub key_name: Name,
    pub reason: String,
    /// Known key and request MAC when the MAC verified (BADTIME, BADTRUNC):
    /// then the reply is signed.
    signing: Option<(Key, Vec<u8>)>,
    /// Key name and algorithm to echo when the reply is unsigned.
    algorithm: Name,
}

impl Rejection {
    /// Adds the TSIG record an error reply must carry. `reply` is the
    /// unsigned reply (with [`Rejection::rcode`] set).
    pub fn sign_reply(&self, reply: &[u8], now: u64) -> Result<Vec<u8>, TsigError> {
        if self.rcode == RCODE_FORMERR {
            return Ok(reply.to_vec());
        }
        match &self.signing {
            Some((key, request_mac)) => {
                // BADTIME replies carry the server's time in Other Data
                // (RFC 8945 §5.2.3) so the client can see the skew.
                let other: Vec<u8> = if self.error == BADTIME {
                    now.to_be_bytes()[2..].to_vec()
                } else {
                    Vec::new()
                };
                let vars = Variables::Full {
                    error: self.error,
                    other: &other,
                };
                let mac = compute_mac(key, Some(request_mac), &[reply], now, DEFAULT_FUDGE, vars);
                append_tsig(reply, key, now, DEFAULT_FUDGE, &mac, self.error, &other)
            }
            // Unsigned (BADKEY, BADSIG): empty MAC, echoing the client's key
            // name and algorithm, which may be unknown to us.
            None => append_unsigned_tsig(reply, &self.key_name, &self.algorithm, now, self.error),
        }
    }
}

fn append_unsigned_tsig(
    reply: &[u8],
    key_name: &Name,
    algorithm: &Name,
    now: u64,
    error: u16,
) -> Result<Vec<u8>, TsigError> {
    let mut rdata = Vec::new();
    put_name_canonical(&mut rdata, algorithm);
    rdata.extend_from_slice(&now.to_be_bytes()[2..]);
    rdata.extend_from_slice(&DEFAULT_FUDGE.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());
    rdata.extend_from_slice(reply.get(0..2).ok_or(WireError::Truncated(0))?);
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());
    let mut out = reply.to_vec();
    let arcount = u16::from_be_bytes([out[10], out[11]])
        .checked_add(1)
        .ok_or(WireError::TooLarge("additional section count"))?;
    out[10..12].copy_from_slice(&arcount.to_be_bytes());
    put_name_canonical(&mut out, key_name);
    out.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    Ok(out)
}

/// Verifies a signed request against a key set. `Ok(None)` means the
/// request carries no TSIG: whether that is acceptable is the caller's policy.
pub fn verify_request(
    msg: &[u8],
    parsed: &Message,
    keys: &[Key],
    now: u64,
) -> Result<Option<VerifiedRequest>, Box<Rejection>> {
    let Some(tsig) = &parsed.tsig else {
        return Ok(None);
    };
    let reject = |error: u16, rcode: u8, reason: String, signing: Option<(Key, Vec<u8>)>| {
        Box::new(Rejection {
            error,
            rcode,
            key_name: tsig.key_name.clone(),
            reason,
            signing,
            algorithm: tsig.algorithm.clone(),
        })
    };
    let alg = Algorithm::from_wire_name(&tsig.algorithm);
    let Some(key) = keys
        .iter()
        .find(|k| k.name == tsig.key_name && Some(k.algorithm) == alg)
    else {
        return Err(reject(
            BADKEY,
            RCODE_NOTAUTH,
            format!("no key with algorithm {}", tsig.algorithm),
            None,
        ));
    };
    if let Err(e) = check_mac_size(key.algorithm, tsig.mac.len()) {
        return Err(reject(0, RCODE_FORMERR, e.to_string(), None));
    }
    let this = unsigned_form(msg, tsig);
    let vars = Variables::Full {
        error: tsig.error,
        other: &tsig.other,
    };
    let computed = compute_mac(key, None, &[&this], tsig.time_signed, tsig.fudge, vars);
    if !ct_prefix_eq(&computed, &tsig.mac) {
        return Err(reject(
            BADSIG,
            RCODE_NOTAUTH,
            "MAC does not verify".into(),
            None,
        ));
    }
    let signing = Some((key.clone(), tsig.mac.clone()));
    if let Err(e) = check_time(tsig, now) {
        return Err(reject(BADTIME, RCODE_NOTAUTH, e.to_string(), signing));
    }
    Ok(Some(VerifiedRequest {
        key: key.clone(),
        mac: tsig.mac.clone(),
        time_signed: tsig.time_signed,
    }))
}

/// Signs the messages of a response (one reply, or each message of an
/// outgoing transfer in order), chaining each MAC to the previous one.
#[derive(Debug)]
pub struct StreamSigner {
    key: Key,
    prior_mac: Vec<u8>,
    first: bool,
}

impl StreamSigner {
    pub fn new(key: &Key, request_mac: &[u8]) -> Self {
        StreamSigner {
            key: key.clone(),
            prior_mac: request_mac.to_vec(),
            first: true,
        }
    }

    /// Signs the next message; every message is signed, the simplest form
    /// every client accepts.
    pub fn sign(&mut self, msg: &[u8], now: u64) -> Result<Vec<u8>, TsigError> {
        let vars = if self.first {
            Variables::Full {
                error: 0,
                other: &[],
            }
        } else {
            Variables::TimersOnly
        };
        let mac = compute_mac(
            &self.key,
            Some(&self.prior_mac),
            &[msg],
            now,
            DEFAULT_FUDGE,
            vars,
        );
        let out = append_tsig(msg, &self.key, now, DEFAULT_FUDGE, &mac, 0, &[])?;
        self.prior_mac = mac;
        self.first = false;
        Ok(out)
    }
}

/// Signs a single-message response.
pub fn sign_response(
    msg: &[u8],
    key: &Key,
    request_mac: &[u8],
    now: u64,
) -> Result<Vec<u8>, TsigError> {
    StreamSigner::new(key, request_mac).sign(msg, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{MessageBuilder, OPCODE_QUERY, soa_query};
    use base64::Engine;
    use hickory_proto::rr::RecordType;

    /// Real exchanges: `kdig -y hmac-ALG:k-ALG.:SECRET` SOA queries to BIND 9.18
    /// (keys from `tsig-keygen`), captured by a UDP relay.
    const VECTORS: &[(&str, &str, &str, &str)] = &[
        (
            "hmac-md5",
            "C7TmqvjGnLFQRK7CxchL7g==",
            "a31c00200001000000000001076578616d706c6503636f6d0000060001056b2d6d64350000fa00ff00000000003a08686d61632d6d6435077369672d616c670372656703696e740000006b0bc81d012c001011801c97407e91eb641091250505f30da31c00000000",
            "a31c84000001000100010002076578616d706c6503636f6d0000060001c00c0006000100000e100027036e7331c00c0a686f73746d6173746572c00c78a3f17500000e1000000258000151800000012cc00c0002000100000e100002c029c0290001000100000e100004c0000201056b2d6d64350000fa00ff00000000003a08686d61632d6d6435077369672d616c670372656703696e740000006b0bc81d012c0010c28e51dfc9b1ebe01720090ff4c48d99a31c00000000",
        ),
        (
            "hmac-sha1",
            "hiJinx7jtCLPBzUpfqxE4XrA3DI=",
            "0bce00200001000000000001076578616d706c6503636f6d0000060001066b2d736861310000fa00ff00000000002f09686d61632d736861310000006b0bc81d012c0014f935ebf024a6038056c6987f5f43522c3f6dff990bce00000000",
            "0bce84000001000100010002076578616d706c6503636f6d0000060001c00c0006000100000e100027036e7331c00c0a686f73746d6173746572c00c78a3f17500000e1000000258000151800000012cc00c0002000100000e100002c029c0290001000100000e100004c0000201066b2d736861310000fa00ff00000000002f09686d61632d736861310000006b0bc81d012c0014d9918a7040678d3eb05fc013bc03abd6fb18271b0bce00000000",
        ),
        (
            "hmac-sha224",
            "HX0epZbLg7TDnBx4nv65vsVuz1JMM8CgHsnXmw==",
            "293d00200001000000000001076578616d706c6503636f6d0000060001086b2d7368613232340000fa00ff0000000000390b686d61632d7368613232340000006b0bc81d012c001c7106d32d80094650a617906eb4f126298b0acb4a8dff7bc8165bf1e9293d00000000",
            "293d84000001000100010002076578616d706c6503636f6d0000060001c00c0006000100000e100027036e7331c00c0a686f73746d6173746572c00c78a3f17500000e1000000258000151800000012cc00c0002000100000e100002c029c0290001000100000e100004c0000201086b2d7368613232340000fa00ff0000000000390b686d61632d7368613232340000006b0bc81d012c001c8ff8c82d9ebfb1ee44b174289c2dad39df85fcb1a56413351fb7960f293d00000000",
        ),
        (
            "hmac-sha256",
            "1m8Fa3O8Wc9V2R8Ag5GtpxqlEXtZiCvA6rTI8ZSGPI8=",
            "3aa600200001000000000001076578616d706c6503636f6d0000060001086b2d7368613235360000fa00ff00000000003d0b686d61632d7368613235360000006b0bc81d012c0020d913114ffbc6cf578e116b2dc51b5b25157e63de8dc7c0013b8d798cbf577d183aa600000000",
            "3aa684000001000100010002076578616d706c6503636f6d0000060001c00c0006000100000e100027036e7331c00c0a686f73746d6173746572c00c78a3f17500000e1000000258000151800000012cc00c0002000100000e100002c029c0290001000100000e100004c0000201086b2d7368613235360000fa00ff00000000003d0b686d61632d7368613235360000006b0bc81d012c00206700fb54051463051945215f9ad25b057d364587b4fcb6fd7155f04c2bb805b63aa600000000",
        ),
        (
            "hmac-sha384",
            "r+S9YmXvkY5ECZhawG5HguYNShfbL9gMjzrk7rL+2yfEC1+jz07ZzaS/JezwjM2Q",
            "ae1600200001000000000001076578616d706c6503636f6d0000060001086b2d7368613338340000fa00ff00000000004d0b686d61632d7368613338340000006b0bc81d012c00308ecb1cf70dbb07d26fc89eecb0050742f6da0c6bc9a64cdff604536db6f47a773f7c284c69195104d8bf2a3ce073a0b6ae1600000000",
            "ae1684000001000100010002076578616d706c6503636f6d0000060001c00c0006000100000e100027036e7331c00c0a686f73746d6173746572c00c78a3f17500000e1000000258000151800000012cc00c0002000100000e100002c029c0290001000100000e100004c0000201086b2d7368613338340000fa00ff00000000004d0b686d61632d7368613338340000006b0bc81d012c0030d44b40e8ca7542e59f99af195ba8f19d88282f265c1222e8139b9a3a3690d58070996242fd64a0e18dea8513563df999ae1600000000",
        ),
        (
            "hmac-sha512",
            "djN6sPUSBzvEiFhTpOxhxNXjU2HaEM9HLBr6mjdsqpN8qDvQx7x3ySUuhuKtvOXrHK2hL7qwwwRmSl1d9n6BZg==",
            "371700200001000000000001076578616d706c6503636f6d0000060001086b2d7368613531320000fa00ff00000000005d0b686d61632d7368613531320000006b0bc81d012c004093dc734256631469de5d110274bd6a0a8f4676a6545ae5791dc89cac223f0dad5af37702a90c56cc7991990828108c83feee75e0f8a40c864cc27ca48e4d50b1371700000000",
            "371784000001000100010002076578616d706c6503636f6d0000060001c00c0006000100000e100027036e7331c00c0a686f73746d6173746572c00c78a3f17500000e1000000258000151800000012cc00c0002000100000e100002c029c0290001000100000e100004c0000201086b2d7368613531320000fa00ff00000000005d0b686d61632d7368613531320000006b0bc81d012c0040d3aebc0dc2a08f15d08d63525665af561cd03e37c4635425eb32463daf52ec061b36e03389dbdec01c2d3d488a7fd217709bcab876d7d206c68c2483fbfeeeaa371700000000",
        ),
    ];

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vector_key(alg: &str, secret: &str) -> Key {
        let algorithm = Algorithm::from_config_name(alg).unwrap();
        let name = Name::from_ascii(format!("k-{}.", alg.trim_start_matches("hmac-"))).unwrap();
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .unwrap();
        Key::new(name, algorithm, secret)
    }

    fn test_key(alg: Algorithm) -> Key {
        Key::new(
            Name::from_ascii("xfr-key.example.").unwrap(),
            alg,
            b"0123456789abcdef0123456789abcdef".to_vec(),
        )
    }

    const ALL: [Algorithm; 6] = [
        Algorithm::HmacMd5,
        Algorithm::HmacSha1,
        Algorithm::HmacSha224,
        Algorithm::HmacSha256,
        Algorithm::HmacSha384,
        Algorithm::HmacSha512,
    ];

    #[test]
    fn kdig_requests_verify_server_side() {
        for (alg, secret, req, _) in VECTORS {
            let key = vector_key(alg, secret);
            let req = hex(req);
            let parsed = Message::parse(&req).unwrap();
            let t = parsed.tsig.as_ref().unwrap().time_signed;
            // Other keys in the set must not confuse the lookup.
            let keys = [test_key(Algorithm::HmacSha256), key.clone()];
            let v = verify_request(&req, &parsed, &keys, t + 10)
                .unwrap_or_else(|e| panic!("{alg}: {e}"))
                .unwrap();
            assert_eq!(v.key, key, "{alg}");
            assert_eq!(v.mac.len(), key.algorithm.output_len(), "{alg}");

            // One flipped bit in the question: BADSIG with a NOTAUTH reply.
            let mut bad = req.clone();
            bad[14] ^= 0x20;
            let parsed = Message::parse(&bad).unwrap();
            let e = verify_request(&bad, &parsed, &keys, t).unwrap_err();
            assert_eq!((e.error, e.rcode), (BADSIG, RCODE_NOTAUTH), "{alg}");

            // Too far from the signing time: BADTIME, and the reply is signed.
            let parsed = Message::parse(&req).unwrap();
            let e = verify_request(&req, &parsed, &keys, t + 301).unwrap_err();
            assert_eq!(e.error, BADTIME, "{alg}");

            // Unknown key: BADKEY.
            let e = verify_request(&req, &parsed, &keys[..1], t).unwrap_err();
            assert_eq!(e.error, BADKEY, "{alg}");
        }
    }

    #[test]
    fn bind_responses_verify_client_side() {
        for (alg, secret, req, resp) in VECTORS {
            let key = vector_key(alg, secret);
            let req = Message::parse(&hex(req)).unwrap();
            let request_mac = req.tsig.unwrap().mac;
            let resp = hex(resp);
            let parsed = Message::parse(&resp).unwrap();
            let t = parsed.tsig.as_ref().unwrap().time_signed;
            let mut v = StreamVerifier::new(&key, &request_mac);
            v.verify(&resp, &parsed, t)
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            v.finish().unwrap();

            // Chained to a different request MAC: must fail.
            let mut wrong = request_mac.clone();
            wrong[0] ^= 1;
            let mut v = StreamVerifier::new(&key, &wrong);
            assert_eq!(
                v.verify(&resp, &parsed, t),
                Err(TsigError::BadSig(key.name.to_ascii())),
                "{alg}"
            );

            // Clock skew beyond the fudge.
            let mut v = StreamVerifier::new(&key, &request_mac);
            assert!(matches!(
                v.verify(&resp, &parsed, t + 1000),
                Err(TsigError::BadTime { .. })
            ));
        }
    }

    #[test]
    fn our_signed_request_matches_kdig_mac() {
        // Re-sign kdig's unsigned request bytes at kdig's time: the MAC must
        // come out identical, proving our digest layout octet for octet.
        for (alg, secret, req, _) in VECTORS {
            let key = vector_key(alg, secret);
            let req = hex(req);
            let parsed = Message::parse(&req).unwrap();
            let tsig = parsed.tsig.unwrap();
            let unsigned = unsigned_form(&req, &tsig);
            let vars = Variables::Full {
                error: 0,
                other: &[],
            };
            let mac = compute_mac(&key, None, &[&unsigned], tsig.time_signed, tsig.fudge, vars);
            assert_eq!(mac, tsig.mac, "{alg}");
        }
    }

    fn response(id: u16, n: u32) -> Vec<u8> {
        let mut b = MessageBuilder::new(id, OPCODE_QUERY, wire::FLAG_QR | wire::FLAG_AA);
        let zone = Name::from_ascii("example.com.").unwrap();
        b.question(&zone, RecordType::AXFR, wire::CLASS_IN);
        b.raw_rr(
            wire::Section::Answer,
            &zone,
            RecordType::TXT,
            wire::CLASS_IN,
            60,
            format!("\x08msg{n:05}").as_bytes(),
        )
        .unwrap();
        b.finish().unwrap()
    }

    /// Signs a stream server-side, leaving out signatures where `signed` is
    /// false, and runs it through the client-side verifier.
    fn run_stream(alg: Algorithm, signed: &[bool]) -> Result<(), TsigError> {
        let key = test_key(alg);
        let now = 1_700_000_000;
        let req = sign_request(&soa_query(9, &key.name), &key, now).unwrap();
        let server_req = Message::parse(&req.bytes).unwrap();
        let verified = verify_request(&req.bytes, &server_req, std::slice::from_ref(&key), now)
            .unwrap()
            .unwrap();
        // A signer that skips messages must chain over them, which
        // StreamSigner (signing all) does not do: build that by hand.
        let mut prior = verified.mac.clone();
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut first = true;
        let mut verifier = StreamVerifier::new(&key, &req.mac);
        for (i, &s) in signed.iter().enumerate() {
            let msg = response(9, i as u32);
            let wire_msg = if s {
                let mut parts: Vec<&[u8]> = pending.iter().map(Vec::as_slice).collect();
                parts.push(&msg);
                let vars = if first {
                    Variables::Full {
                        error: 0,
                        other: &[],
                    }
                } else {
                    Variables::TimersOnly
                };
                let mac = compute_mac(&key, Some(&prior), &parts, now, DEFAULT_FUDGE, vars);
                first = false;
                pending.clear();
                let out = append_tsig(&msg, &key, now, DEFAULT_FUDGE, &mac, 0, &[]).unwrap();
                prior = mac;
                out
            } else {
                pending.push(msg.clone());
                msg
            };
            verifier.verify(&wire_msg, &Message::parse(&wire_msg).unwrap(), now + 5)?;
        }
        verifier.finish()
    }

    #[test]
    fn streams_with_unsigned_messages_between() {
        for alg in ALL {
            assert_eq!(run_stream(alg, &[true, true, true]), Ok(()));
            let mut pattern = vec![true];
            pattern.extend(std::iter::repeat_n(false, 99));
            pattern.push(true);
            pattern.extend(std::iter::repeat_n(false, 5));
            pattern.push(true);
            assert_eq!(run_stream(alg, &pattern), Ok(()), "{alg}");
        }
        let mut too_many = vec![true];
        too_many.extend(std::iter::repeat_n(false, 100));
        too_many.push(true);
        assert_eq!(
            run_stream(Algorithm::HmacSha256, &too_many),
            Err(TsigError::TooManyUnsigned)
        );
        assert_eq!(
            run_stream(Algorithm::HmacSha256, &[true, false, false]),
            Err(TsigError::UnsignedEnd(2))
        );
        assert!(matches!(
            run_stream(Algorithm::HmacSha256, &[false, true]),
            Err(TsigError::Unsigned { .. })
        ));
    }

    #[test]
    fn stream_signer_round_trip_and_tamper() {
        for alg in ALL {
            let key = test_key(alg);
            let now = 1_700_000_000;
            let req = sign_request(&soa_query(1, &key.name), &key, now).unwrap();
            let mut signer = StreamSigner::new(&key, &req.mac);
            let msgs: Vec<Vec<u8>> = (0..4)
                .map(|i| signer.sign(&response(1, i), now + u64::from(i)).unwrap())
                .collect();
            let mut v = StreamVerifier::new(&key, &req.mac);
            for m in &msgs {
                v.verify(m, &Message::parse(m).unwrap(), now).unwrap();
            }
            v.finish().unwrap();

            // Reordering breaks the chain.
            let mut v = StreamVerifier::new(&key, &req.mac);
            v.verify(&msgs[0], &Message::parse(&msgs[0]).unwrap(), now)
                .unwrap();
            assert_eq!(
                v.verify(&msgs[2], &Message::parse(&msgs[2]).unwrap(), now),
                Err(TsigError::BadSig(key.name.to_ascii()))
            );

            // A wrong secret on the verifying side.
            let mut other = key.clone();
            other.secret[0] ^= 1;
            let mut v = StreamVerifier::new(&other, &req.mac);
            assert!(
                v.verify(&msgs[0], &Message::parse(&msgs[0]).unwrap(), now)
                    .is_err()
            );
        }
    }

    #[test]
    fn truncated_macs_follow_rfc8945_limits() {
        let key = test_key(Algorithm::HmacSha256);
        let now = 1_700_000_000;
        let req = sign_request(&soa_query(3, &key.name), &key, now).unwrap();
        let full = sign_response(&response(3, 0), &key, &req.mac, now).unwrap();
        let parsed = Message::parse(&full).unwrap();
        let tsig = parsed.tsig.clone().unwrap();
        let rebuild = |len: usize| {
            let msg = &full[..tsig.offset];
            let mut m = msg.to_vec();
            m[10..12].copy_from_slice(&0u16.to_be_bytes());
            append_tsig(&m, &key, now, DEFAULT_FUDGE, &tsig.mac[..len], 0, &[]).unwrap()
        };
        for (len, ok) in [
            (32, true),
            (16, true),
            (20, true),
            (15, false),
            (10, false),
            (1, false),
        ] {
            let m = rebuild(len);
            let mut v = StreamVerifier::new(&key, &req.mac);
            let r = v.verify(&m, &Message::parse(&m).unwrap(), now);
            assert_eq!(r.is_ok(), ok, "MAC length {len}: {r:?}");
            if !ok {
                assert!(matches!(r, Err(TsigError::BadMacSize { .. })));
            }
        }
        // md5: 16-octet output, minimum is 10 (not 8).
        assert_eq!(Algorithm::HmacMd5.min_mac_len(), 10);
        assert_eq!(Algorithm::HmacSha512.min_mac_len(), 32);
    }

    #[test]
    fn error_replies_are_reported_and_built() {
        let key = test_key(Algorithm::HmacSha1);
        let now = 1_700_000_000;
        let req = sign_request(&soa_query(4, &key.name), &key, now).unwrap();
        let parsed = Message::parse(&req.bytes).unwrap();

        // Wrong secret on the server: BADSIG reply, unsigned.
        let mut server_key = key.clone();
        server_key.secret.reverse();
        let rej = verify_request(&req.bytes, &parsed, &[server_key.clone()], now).unwrap_err();
        let mut b = MessageBuilder::new(4, OPCODE_QUERY, wire::FLAG_QR);
        b.set_rcode(rej.rcode);
        b.question(&key.name, RecordType::SOA, wire::CLASS_IN);
        let reply = rej.sign_reply(&b.finish().unwrap(), now).unwrap();
        let rp = Message::parse(&reply).unwrap();
        assert_eq!(rp.rcode(), u16::from(RCODE_NOTAUTH));
        assert!(rp.tsig.as_ref().unwrap().mac.is_empty());
        let mut v = StreamVerifier::new(&key, &req.mac);
        let e = v.verify(&reply, &rp, now).unwrap_err();
        assert_eq!(e, TsigError::ServerError(BADSIG));
        assert_eq!(e.to_string(), "TSIG BADSIG");

        // Skewed clock: BADTIME reply, signed, with the server time.
        let rej = verify_request(&req.bytes, &parsed, std::slice::from_ref(&key), now + 3600)
            .unwrap_err();
        assert_eq!(rej.error, BADTIME);
        let reply = rej.sign_reply(&b.finish().unwrap(), now + 3600).unwrap();
        let rp = Message::parse(&reply).unwrap();
        let t = rp.tsig.as_ref().unwrap();
        assert_eq!(t.other, (now + 3600).to_be_bytes()[2..].to_vec());
        assert_eq!(t.mac.len(), 20);
        let mut v = StreamVerifier::new(&key, &req.mac);
        assert_eq!(
            v.verify(&reply, &rp, now),
            Err(TsigError::ServerError(BADTIME))
        );
    }
}
