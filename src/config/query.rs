//! The query path's settings: `[identity]`, `[rrl]`, `[cookies]` and
//! `[cache]`, raw and validated, with their defaults.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::raw::{ByteSize, DurationValue};
use super::validate::{Problems, parse_net};

/// Responses a second per client prefix and answer before RRL limits: as
/// NSD ships it, far above what a caching resolver asks for one answer.
pub const DEFAULT_RRL_RATE: u32 = 200;
pub const DEFAULT_RRL_WINDOW: Duration = Duration::from_secs(15);
pub const DEFAULT_RRL_SLIP: u32 = 2;
pub const DEFAULT_RRL_IPV4_PREFIX: u8 = 24;
pub const DEFAULT_RRL_IPV6_PREFIX: u8 = 56;
/// Entries of each UDP worker's RRL table.
pub const DEFAULT_RRL_TABLE_SIZE: usize = 1 << 16;
/// Loopback cannot be spoofed from outside the host (Linux drops martian
/// sources), and local monitoring and benchmarks run there.
pub const DEFAULT_RRL_EXEMPT: [&str; 2] = ["127.0.0.0/8", "::1/128"];
/// The answer cache's memory, for all UDP workers together.
pub const DEFAULT_ANSWER_CACHE: u64 = 64 << 20;
/// The most one worker's share may be (the cache addresses its arena in
/// 22 bits of 64-octet lines).
pub const MAX_ANSWER_CACHE_PER_WORKER: u64 = 256 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentity {
    pub identity: Option<String>,
    pub version: Option<String>,
    pub nsid: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRrl {
    pub responses_per_second: Option<u32>,
    pub nodata_per_second: Option<u32>,
    pub nxdomains_per_second: Option<u32>,
    pub referrals_per_second: Option<u32>,
    pub errors_per_second: Option<u32>,
    pub window: Option<DurationValue>,
    pub slip: Option<u32>,
    pub ipv4_prefix_length: Option<u8>,
    pub ipv6_prefix_length: Option<u8>,
    pub exempt: Option<Vec<String>>,
    pub table_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCookies {
    pub secret: Option<String>,
    pub previous_secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    pub size: Option<ByteSize>,
}

/// Who the server says it is: CHAOS TXT `id.server`/`hostname.bind`,
/// `version.server`/`version.bind`, and NSID (RFC 5001).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// `None` hides it (REFUSED). Default: the host name.
    pub identity: Option<String>,
    /// `None` hides it (REFUSED). Default: "Outpost VERSION".
    pub version: Option<String>,
    /// Answer NSID requests with `identity`.
    pub nsid: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        check_identity(RawIdentity::default(), &mut Problems::default())
    }
}

/// Response rate limiting, as BIND and NSD do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses a second per client prefix and answer; 0 turns RRL off.
    pub responses_per_second: u32,
    pub nodata_per_second: u32,
    pub nxdomains_per_second: u32,
    pub referrals_per_second: u32,
    pub errors_per_second: u32,
    pub window: Duration,
    /// Every `slip`-th limited response goes out truncated (0: none, 1: all).
    pub slip: u32,
    pub ipv4_prefix_length: u8,
    pub ipv6_prefix_length: u8,
    pub exempt: Vec<IpNet>,
    pub table_size: usize,
}

impl RrlConfig {
    pub fn enabled(&self) -> bool {
        [
            self.responses_per_second,
            self.nodata_per_second,
            self.nxdomains_per_second,
            self.referrals_per_second,
            self.errors_per_second,
        ]
        .iter()
        .any(|&r| r > 0)
    }
}

impl Default for RrlConfig {
    fn default() -> Self {
        check_rrl(RawRrl::default(), &mut Problems::default())
    }
}

/// DNS Cookies (RFC 7873, RFC 9018).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CookieConfig {
    /// The SipHash-2-4 key server cookies are made with; `None`: a random
    /// one drawn at start (cookies then do not survive a restart, nor are
    /// they valid at another instance).
    pub secret: Option<[u8; 16]>,
    /// Also accepted, never used for new cookies: for rotating secrets
    /// across instances.
    pub previous_secret: Option<[u8; 16]>,
}

impl std::fmt::Debug for CookieConfig {
    // Secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieConfig")
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .field(
                "previous_secret",
                &self.previous_secret.map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Octets for all UDP workers together; 0 turns the cache off.
    pub size: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            size: DEFAULT_ANSWER_CACHE,
        }
    }
}

/// The machine's host name, for the default identity.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer and its length; gethostname NUL-terminates within.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

fn text_or_hidden(
    value: Option<String>,
    default: impl FnOnce() -> Option<String>,
) -> Option<String> {
    match value {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v),
        None => default(),
    }
}

pub(super) fn check_identity(raw: RawIdentity, p: &mut Problems) -> IdentityConfig {
    for (key, value) in [("identity", &raw.identity), ("version", &raw.version)] {
        if let Some(v) = value
            && v.len() > 255
        {
            p.report(
                format!("identity.{key}"),
                format!("{} octets: a TXT string holds at most 255", v.len()),
            );
        }
    }
    IdentityConfig {
        identity: text_or_hidden(raw.identity, host_name),
        version: text_or_hidden(raw.version, || {
            Some(format!("Outpost {}", env!("CARGO_PKG_VERSION")))
        }),
        nsid: raw.nsid.unwrap_or(true),
    }
}

pub(super) fn check_rrl(raw: RawRrl, p: &mut Problems) -> RrlConfig {
    let rate = raw.responses_per_second.unwrap_or(DEFAULT_RRL_RATE);
    let window = raw.window.map_or(DEFAULT_RRL_WINDOW, |d| d.0);
    if !(1..=3600).contains(&window.as_secs()) {
        p.report("rrl.window", "must be from 1s to 1h");
    }
    let v4 = raw.ipv4_prefix_length.unwrap_or(DEFAULT_RRL_IPV4_PREFIX);
    if v4 > 32 {
        p.report("rrl.ipv4_prefix_length", "must be at most 32");
    }
    let v6 = raw.ipv6_prefix_length.unwrap_or(DEFAULT_RRL_IPV6_PREFIX);
    if v6 > 128 {
        p.report("rrl.ipv6_prefix_length", "must be at most 128");
    }
    let table_size = raw.table_size.unwrap_or(DEFAULT_RRL_TABLE_SIZE);
    if !(16..=1 << 24).contains(&table_size) {
        p.report("rrl.table_size", "must be from 16 to 16777216 entries");
    }
    let exempt_text: Vec<String> = raw
        .exempt
        .unwrap_or_else(|| DEFAULT_RRL_EXEMPT.iter().map(|s| s.to_string()).collect());
    let mut exempt = Vec::with_capacity(exempt_text.len());
    for (i, text) in exempt_text.iter().enumerate() {
        match parse_net(text) {
            Ok(net) => exempt.push(net),
            Err(e) => p.report(format!("rrl.exempt[{i}]"), e),
        }
    }
    RrlConfig {
        responses_per_second: rate,
        nodata_per_second: raw.nodata_per_second.unwrap_or(rate),
        nxdomains_per_second: raw.nxdomains_per_second.unwrap_or(rate),
        referrals_per_second: raw.referrals_per_second.unwrap_or(rate),
        errors_per_second: raw.errors_per_second.unwrap_or(rate),
        window: window.clamp(Duration::from_secs(1), Duration::from_secs(3600)),
        slip: raw.slip.unwrap_or(DEFAULT_RRL_SLIP),
        ipv4_prefix_length: v4.min(32),
        ipv6_prefix_length: v6.min(128),
        exempt,
        table_size: table_size.clamp(16, 1 << 24),
    }
}

fn parse_secret(text: &str) -> Result<[u8; 16], String> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .map_err(|_| "not hexadecimal".to_string())?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "{} octets: a SipHash-2-4 key is 16 octets (32 hex digits)",
            b.len()
        )
    })
}

pub(super) fn check_cookies(raw: RawCookies, p: &mut Problems) -> CookieConfig {
    let mut secret = |key: &str, text: Option<String>| {
        text.and_then(|t| {
            parse_secret(&t)
                .map_err(|e| p.report(format!("cookies.{key}"), e))
                .ok()
        })
    };
    let config = CookieConfig {
        secret: secret("secret", raw.secret),
        previous_secret: secret("previous_secret", raw.previous_secret),
    };
    if config.previous_secret.is_some() && config.secret.is_none() {
        p.report(
            "cookies.previous_secret",
            "is set but `secret` is not: the new secret goes in `secret`",
        );
    }
    config
}

pub(super) fn check_cache(raw: RawCache, udp_sockets: usize, p: &mut Problems) -> CacheConfig {
    let size = raw.size.map_or(DEFAULT_ANSWER_CACHE, |s| s.0);
    if size / (udp_sockets.max(1) as u64) > MAX_ANSWER_CACHE_PER_WORKER {
        p.report(
            "cache.size",
            format!(
                "{size} octets over {udp_sockets} UDP sockets: at most {MAX_ANSWER_CACHE_PER_WORKER} for each"
            ),
        );
    }
    CacheConfig { size }
}
