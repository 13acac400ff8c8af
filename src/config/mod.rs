//! Outpost's TOML configuration: parsing, validation and default merging.
//!
//! The file is read into the serde types in `raw` (unknown keys are errors),
//! then `validate` turns it into a [`Config`] in which every reference is
//! resolved, every address parsed and every per-zone setting merged: a value
//! in `[[zone]]` wins over `[defaults]`, which wins over the built-in
//! defaults below. All problems are collected, each with its key path, so one
//! run reports everything that is wrong with a file.
//!
//! Relative paths (`data_dir`, `seed_file`) are resolved against the current
//! working directory of the process, not the directory of the config file,
//! matching what a shell user expects when typing them on a command line.
//! Secrets may live in files of their own (`secret_file`,
//! `control_token_file`); a relative one is looked up in
//! `$CREDENTIALS_DIRECTORY` when that is set (systemd's `LoadCredential`),
//! else in `credentials/` beside the configuration file, so the
//! configuration itself can stay world-readable.

mod query;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use query::{
    CacheConfig, CookieConfig, DEFAULT_ANSWER_CACHE, DEFAULT_RRL_RATE, IdentityConfig, RrlConfig,
    host_name,
};

use crate::tsig::Key;
use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

// Built-in defaults, the single place they are defined. docs/config.md
// repeats them for readers.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(2);
pub const DEFAULT_MAX_REFRESH: Duration = Duration::from_secs(4 * WEEK);
pub const DEFAULT_MIN_RETRY: Duration = Duration::from_secs(1);
pub const DEFAULT_MAX_RETRY: Duration = Duration::from_secs(2 * WEEK);
pub const DEFAULT_MIN_EXPIRE: Duration = Duration::from_secs(0);
pub const DEFAULT_MAX_EXPIRE: Duration = Duration::from_secs(24 * WEEK);
pub const DEFAULT_TRANSFER_TIMEOUT: Duration = Duration::from_secs(10 * 60);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_RECORDS: usize = 5_000_000;
pub const DEFAULT_MAX_TRANSFER_BYTES: u64 = 1 << 30;
pub const DEFAULT_MAX_RRSET_RECORDS: usize = 10_000;
/// BIND's answer to CVE-2024-1737 (slow lookups on names with many types).
pub const DEFAULT_MAX_TYPES_PER_NAME: usize = 100;
pub const DEFAULT_IXFR_HISTORY: usize = 32;
/// History kept on disk for downstream IXFR, at most.
pub const DEFAULT_IXFR_HISTORY_BYTES: u64 = 16 << 20;
/// The zone file is rewritten from the journal at most this long after a
/// change (as Knot's `zonefile-sync`).
pub const DEFAULT_ZONEFILE_SYNC: Duration = Duration::from_secs(600);
/// A member dropped from its catalog keeps its files this long (a member
/// removed by mistake and listed again comes back with its data).
pub const DEFAULT_MEMBER_REMOVAL_GRACE: Duration = Duration::from_secs(86_400);
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_TCP_MAX_CONNECTIONS_PER_CLIENT: usize = 64;
/// RFC 7766 §6.2.3 leaves the value open ("on the order of seconds").
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_TCP_BUSY_IDLE_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_REFRESH_CHECKS: usize = 32;
/// A primary serving thousands of zones is asked about at most this many at
/// once.
pub const DEFAULT_MAX_REFRESH_CHECKS_PER_PRIMARY: usize = 16;
/// As BIND's `transfers-out`.
pub const DEFAULT_MAX_TRANSFERS_OUT: usize = 10;
pub const DEFAULT_CONTROL_MAX_CONNECTIONS: usize = 64;
pub const DEFAULT_CONTROL_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CONTROL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Read for the control token when the file sets none, so that a container
/// can keep the secret out of its image (`config/docker.toml`).
pub const CONTROL_TOKEN_ENV: &str = "OUTPOST_CONTROL_TOKEN";
/// Port used for primaries, NOTIFY targets and listen addresses written
/// without one.
pub const DEFAULT_DNS_PORT: u16 = 53;

const WEEK: u64 = 7 * 86_400;

/// A validated, fully resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file the configuration came from (absolute when loaded from disk).
    pub source: PathBuf,
    pub server: ServerConfig,
    pub keys: BTreeMap<Name, Key>,
    /// Every `[[zone]]`, then every `[[catalog]]`'s own zone.
    /// Shared with the running zones: one copy of each zone's settings.
    pub zones: Vec<std::sync::Arc<ZoneConfig>>,
    /// Catalog zones (RFC 9432), in the order written: on a member listed
    /// by two catalogs, the first keeps it (unless a change of ownership
    /// says otherwise).
    pub catalogs: Vec<CatalogConfig>,
    pub identity: IdentityConfig,
    pub rrl: RrlConfig,
    pub cookies: CookieConfig,
    pub cache: CacheConfig,
}

#[derive(Clone, PartialEq)]
pub struct ServerConfig {
    /// Each address serves both UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// Absolute.
    pub data_dir: PathBuf,
    pub control: Option<SocketAddr>,
    pub control_token: Option<String>,
    pub log_format: LogFormat,
    /// A tracing `EnvFilter` directive; `RUST_LOG` overrides it.
    pub log_level: String,
    pub udp_workers: usize,
    pub tcp: TcpLimits,
    pub control_limits: ControlLimits,
    pub refresh: RefreshLimits,
}

/// How hard the refreshes press on the primaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshLimits {
    /// Zones checked (SOA query, transfer if needed) at the same time.
    pub max_checks: usize,
    /// The same, towards any one primary (as BIND's `transfers-per-ns`).
    pub max_checks_per_primary: usize,
}

impl Default for RefreshLimits {
    fn default() -> Self {
        RefreshLimits {
            max_checks: DEFAULT_MAX_REFRESH_CHECKS,
            max_checks_per_primary: DEFAULT_MAX_REFRESH_CHECKS_PER_PRIMARY,
        }
    }
}

/// Bounds on DNS over TCP and on transfers out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once, over all listen addresses; at the cap the
    /// oldest idle connection is closed to make room for a new one.
    pub max_connections: usize,
    /// The same for the connections of one client address.
    pub max_connections_per_client: usize,
    /// How long a connection may stay idle (no query unanswered, nothing
    /// left to write) before it is closed.
    pub idle_timeout: Duration,
    /// The idle timeout once more than half of `max_connections` are open
    /// (RFC 7766 §6.2.3: shorter when under load).
    pub busy_idle_timeout: Duration,
    /// How long a client may leave an answer or transfer unread (the
    /// socket taking nothing) before the connection is cut.
    pub write_timeout: Duration,
    /// Outgoing AXFR/IXFR running at once; more are refused.
    pub max_transfers_out: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: DEFAULT_TCP_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_TCP_MAX_CONNECTIONS_PER_CLIENT,
            idle_timeout: DEFAULT_TCP_IDLE_TIMEOUT,
            busy_idle_timeout: DEFAULT_TCP_BUSY_IDLE_TIMEOUT,
            write_timeout: DEFAULT_TCP_WRITE_TIMEOUT,
            max_transfers_out: DEFAULT_MAX_TRANSFERS_OUT,
        }
    }
}

/// Bounds on the HTTP control endpoint's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlLimits {
    /// Connections open at once; at the cap the oldest is closed.
    pub max_connections: usize,
    /// Time allowed for a request's headers to arrive.
    pub header_timeout: Duration,
    /// Time a connection may go without a byte in either direction.
    pub idle_timeout: Duration,
}

impl Default for ControlLimits {
    fn default() -> Self {
        ControlLimits {
            max_connections: DEFAULT_CONTROL_MAX_CONNECTIONS,
            header_timeout: DEFAULT_CONTROL_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_CONTROL_IDLE_TIMEOUT,
        }
    }
}

impl fmt::Debug for ServerConfig {
    // The control token is a credential: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("control", &self.control)
            .field(
                "control_token",
                &self.control_token.as_ref().map(|_| "<redacted>"),
            )
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("udp_workers", &self.udp_workers)
            .field("tcp", &self.tcp)
            .field("control_limits", &self.control_limits)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

/// What to answer once a zone has expired (no successful refresh within the
/// SOA expire interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnExpire {
    /// RFC 1034 behaviour: stop answering authoritatively.
    #[default]
    Servfail,
    /// Keep serving the last copy, for the disaster case where the primary
    /// is gone for longer than its own expire value foresaw.
    KeepServing,
}

/// What to do with a copy on disk that fails its integrity check (cut
/// short, edited, swapped) when no primary can be reached to replace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DamagedCopy {
    /// Answer SERVFAIL until a transfer succeeds: a partial copy would
    /// answer NXDOMAIN for names that exist, which resolvers cache and mail
    /// servers take as a permanent failure, where SERVFAIL makes them try
    /// the other name servers and retry later.
    #[default]
    Refuse,
    /// Serve it, flagged in status, health and the log.
    Serve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZonemdMode {
    /// Check a ZONEMD record if the zone has one.
    #[default]
    Verify,
    /// Reject zones without a valid ZONEMD record.
    Require,
    Ignore,
}

/// One entry of `allow_transfer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclEntry {
    /// The client address is inside this network.
    Net(IpNet),
    /// The request is signed with this (existing) TSIG key.
    Key(Name),
}

impl AclEntry {
    /// `tsig_key` is the name of the key whose signature on the request has
    /// been verified, if any.
    pub fn matches(&self, peer: IpAddr, tsig_key: Option<&Name>) -> bool {
        match self {
            // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
            AclEntry::Net(net) => net.contains(&peer.to_canonical()),
            AclEntry::Key(name) => tsig_key == Some(name),
        }
    }
}

/// Bounds applied to the SOA refresh, retry and expire values of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerBounds {
    pub min_refresh: Duration,
    pub max_refresh: Duration,
    pub min_retry: Duration,
    pub max_retry: Duration,
    pub min_expire: Duration,
    pub max_expire: Duration,
}

impl Default for TimerBounds {
    fn default() -> Self {
        TimerBounds {
            min_refresh: DEFAULT_MIN_REFRESH,
            max_refresh: DEFAULT_MAX_REFRESH,
            min_retry: DEFAULT_MIN_RETRY,
            max_retry: DEFAULT_MAX_RETRY,
            min_expire: DEFAULT_MIN_EXPIRE,
            max_expire: DEFAULT_MAX_EXPIRE,
        }
    }
}

/// Size limits on what a primary may send; a transfer exceeding one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_records: usize,
    pub max_transfer_bytes: u64,
    pub max_rrset_records: usize,
    pub max_types_per_name: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_records: DEFAULT_MAX_RECORDS,
            max_transfer_bytes: DEFAULT_MAX_TRANSFER_BYTES,
            max_rrset_records: DEFAULT_MAX_RRSET_RECORDS,
            max_types_per_name: DEFAULT_MAX_TYPES_PER_NAME,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    /// Fully qualified, lowercase.
    pub name: Name,
    /// Tried in order.
    pub primaries: Vec<SocketAddr>,
    pub key: Option<Key>,
    /// Absolute; exists at load time.
    pub seed_file: Option<PathBuf>,
    pub notify_from: Vec<IpNet>,
    pub allow_transfer: Vec<AclEntry>,
    pub notify: Vec<SocketAddr>,
    pub timers: TimerBounds,
    pub on_expire: OnExpire,
    pub transfer_timeout: Duration,
    pub idle_timeout: Duration,
    pub limits: Limits,
    pub ixfr_history: usize,
    pub ixfr_history_bytes: u64,
    pub zonefile_sync: Duration,
    pub on_damaged_copy: DamagedCopy,
    pub zonemd: ZonemdMode,
    /// Local addresses for SOA queries, transfers and NOTIFY out: at most
    /// one per address family. A peer of a family with none gets the
    /// system's choice.
    pub source: Vec<IpAddr>,
    pub role: ZoneRole,
}

/// Where a zone's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ZoneRole {
    /// A `[[zone]]` of the file.
    #[default]
    Configured,
    /// The zone of a `[[catalog]]`: its records say which zones to serve.
    Catalog,
    /// Listed by this catalog zone.
    Member(Name),
}

/// A `[[catalog]]`: the catalog zone is one of `Config::zones`; its members
/// are configured from `members`, or from a group's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogConfig {
    pub name: Name,
    /// What every member gets (its name and role filled in per member).
    pub members: ZoneConfig,
    /// By the name a member's `group` property gives.
    pub groups: BTreeMap<String, ZoneConfig>,
    /// How long a member's data is kept after the catalog stops listing it,
    /// in case it comes back.
    pub member_removal_grace: Duration,
}

impl CatalogConfig {
    /// The configuration of `member`, listed with these groups (the first
    /// group this catalog configures wins).
    pub fn member_config(&self, member: &Name, groups: &[String]) -> ZoneConfig {
        let base = groups
            .iter()
            .find_map(|g| self.groups.get(g))
            .unwrap_or(&self.members);
        ZoneConfig {
            name: member.clone(),
            role: ZoneRole::Member(self.name.clone()),
            ..base.clone()
        }
    }
}

impl ZoneConfig {
    /// The local address to talk to `peer` from, if one is configured for
    /// its address family.
    pub fn source_for(&self, peer: SocketAddr) -> Option<IpAddr> {
        self.source
            .iter()
            .copied()
            .find(|s| s.is_ipv4() == peer.is_ipv4())
    }

    /// Whether a NOTIFY for this zone from `peer` is accepted: the primaries
    /// may always send one, `notify_from` adds more sources.
    pub fn notify_allowed(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.primaries.iter().any(|p| p.ip().to_canonical() == peer)
            || self.notify_from.iter().any(|net| net.contains(&peer))
    }

    /// Whether an AXFR/IXFR request from `peer`, signed with the verified
    /// key `tsig_key` if any, may be answered. Empty `allow_transfer` means
    /// nobody.
    pub fn transfer_allowed(&self, peer: IpAddr, tsig_key: Option<&Name>) -> bool {
        self.allow_transfer
            .iter()
            .any(|e| e.matches(peer, tsig_key))
    }
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `zone[0] (example.com).primaries[1]`; empty when the
    /// problem concerns the whole file.
    pub path: String,
    /// 1-based line and column, when known (syntax and type errors).
    pub position: Option<(usize, usize)>,
    pub message: String,
}

/// Everything wrong with a config file, one problem per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file name as given to [`Config::load`] or [`Config::from_toml_str`].
    pub file: String,
    pub problems: Vec<Problem>,
}

impl ConfigError {
    fn render(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&self.file);
            if let Some((line, col)) = p.position {
                out.push_str(&format!(":{line}:{col}"));
            }
            out.push_str(": ");
            if !p.path.is_empty() {
                out.push_str(&p.path);
                out.push_str(": ");
            }
            out.push_str(&p.message);
        }
        out
    }
}

impl Config {
    /// Reads and validates the file at `path`. `Config::source` is made
    /// absolute so a later reload finds the same file whatever the cwd.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            problems: vec![Problem {
                path: String::new(),
                position: None,
                message: format!("cannot read config file: {e}"),
            }],
        })?;
        let mut config = Config::from_toml_str(&text, &file)?;
        config.source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates `text`; `source` names it in error messages and
    /// becomes `Config::source`. The control token may come from the
    /// environment ([`CONTROL_TOKEN_ENV`]) when the file sets none.
    pub fn from_toml_str(text: &str, source: &str) -> Result<Config, ConfigError> {
        let env_token = std::env::var(CONTROL_TOKEN_ENV).ok();
        Self::from_toml_str_with_env(text, source, env_token)
    }

    /// [`Config::from_toml_str`] with the environment's control token given.
    pub fn from_toml_str_with_env(
        text: &str,
        source: &str,
        env_token: Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw = validate::parse(text).map_err(|problem| ConfigError {
            file: source.to_string(),
            problems: vec![problem],
        })?;
        validate::validate(raw, PathBuf::from(source), env_token).map_err(|problems| ConfigError {
            file: source.to_string(),
            problems,
        })
    }

    /// What a client of the control endpoint needs, and only that: the
    /// `control` address and, when `with_token`, the token (from
    /// `control_token` or `control_token_file`). Zones and key secrets are
    /// not read, so an operator's shell that may not read them can still
    /// reach the server.
    pub fn load_control(
        path: &Path,
        with_token: bool,
    ) -> Result<(Option<SocketAddr>, Option<String>), ConfigError> {
        let file = path.display().to_string();
        let fail = |path: &str, message: String| ConfigError {
            file: file.clone(),
            problems: vec![Problem {
                path: path.to_string(),
                position: None,
                message,
            }],
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail("", format!("cannot read config file: {e}")))?;
        let raw = validate::parse(&text).map_err(|problem| ConfigError {
            file: file.clone(),
            problems: vec![problem],
        })?;
        let control = match raw.server.control.as_deref() {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                fail(
                    "server.control",
                    format!("{text:?} is not an IP address with port"),
                )
            })?),
        };
        let token = match (
            with_token,
            raw.server.control_token,
            raw.server.control_token_file,
        ) {
            (false, _, _) => None,
            (true, Some(token), _) => Some(token),
            (true, None, Some(tf)) => Some(
                validate::read_secret_file(&tf, &validate::secrets_dir(path))
                    .map_err(|e| fail("server.control_token_file", e))?,
            ),
            (true, None, None) => None,
        };
        Ok((control, token))
    }

    pub fn zone(&self, name: &Name) -> Option<&ZoneConfig> {
        self.zones.iter().find(|z| &z.name == name).map(|z| &**z)
    }
}

/// Parses `"45s"`, `"10m"`, `"2h"`, `"41d"`, `"1w"`, combinations such as
/// `"1h30m"`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {text:?}: {why}");
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| bad("too large"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("expected a number before each unit"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad("too large"))?;
        rest = &rest[digits..];
        let unit = rest
            .chars()
            .next()
            .ok_or_else(|| bad("missing unit after the last number (use s, m, h, d or w)"))?;
        let scale = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => WEEK,
            other => {
                return Err(bad(&format!(
                    "unknown unit {other:?} (use s, m, h, d or w)"
                )));
            }
        };
        rest = &rest[unit.len_utf8()..];
        total = number
            .checked_mul(scale)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| bad("too large"))?;
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way [`parse_duration`] reads it, for messages.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, scale) in [('w', WEEK), ('d', 86_400), ('h', 3600), ('m', 60), ('s', 1)] {
        if secs >= scale {
            out.push_str(&format!("{}{unit}", secs / scale));
            secs %= scale;
        }
    }
    out
}

/// Parses a byte count: a bare number, or a number with a decimal (K, M, G,
/// T, optionally followed by B) or binary (KiB, MiB, GiB, TiB) suffix.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("invalid byte count {text:?}: {why}");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad("expected a number"));
    }
    let number: u64 = text[..digits].parse().map_err(|_| bad("too large"))?;
    let suffix = text[digits..].trim_start().to_ascii_lowercase();
    let scale: u64 = match suffix.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => {
            return Err(bad(
                "unknown suffix (use K, M, G, T for powers of 1000 or KiB, MiB, GiB, TiB for powers of 1024)",
            ));
        }
    };
    number.checked_mul(scale).ok_or_else(|| bad("too large"))
}
