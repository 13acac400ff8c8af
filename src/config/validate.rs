//! From the raw file to a [`Config`]: every check, every default merge.

use super::raw::{RawConfig, RawSettings};
use super::{
    AclEntry, CONTROL_TOKEN_ENV, CatalogConfig, Config, ControlLimits, DEFAULT_DNS_PORT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_IXFR_HISTORY, DEFAULT_IXFR_HISTORY_BYTES, DEFAULT_LOG_LEVEL,
    DEFAULT_MEMBER_REMOVAL_GRACE, DEFAULT_TRANSFER_TIMEOUT, DEFAULT_ZONEFILE_SYNC, DamagedCopy,
    Limits, OnExpire, Problem, ServerConfig, TcpLimits, TimerBounds, ZoneConfig, ZoneRole,
    ZonemdMode, format_duration,
};
use crate::tsig::{Algorithm, Key};
use base64::Engine as _;
use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde_path_to_error::Segment;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Syntax and type errors: serde stops at the first one.
pub(super) fn parse(text: &str) -> Result<RawConfig, Problem> {
    let de = toml::Deserializer::parse(text).map_err(|e| toml_problem(text, &e, String::new()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = render_path(text, e.path());
        toml_problem(text, e.inner(), path)
    })
}

fn toml_problem(text: &str, e: &toml::de::Error, path: String) -> Problem {
    Problem {
        path,
        position: e.span().map(|span| line_col(text, span.start)),
        message: e.message().trim_end().to_string(),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Renders serde's path in the same style as the semantic checks, naming the
/// zone or key of an array entry (`zone[1] (example.org).primarys`).
fn render_path(text: &str, path: &serde_path_to_error::Path) -> String {
    // The syntax is known to be valid here; this second parse only looks up
    // the `name` of the array entry for the message.
    let doc: Option<toml::Table> = text.parse().ok();
    let mut out = String::new();
    let mut top: Option<&str> = None;
    for (depth, segment) in path.iter().enumerate() {
        match segment {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
                if depth == 0 {
                    top = Some(key);
                }
            }
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                if depth == 1 {
                    let name = doc
                        .as_ref()
                        .zip(top)
                        .and_then(|(doc, top)| doc.get(top)?.get(*index)?.get("name")?.as_str());
                    if let Some(name) = name {
                        out.push_str(&format!(" ({name})"));
                    }
                }
            }
            Segment::Enum { variant } => {
                out.push('.');
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

#[derive(Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    pub(super) fn report(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            position: None,
            message: message.into(),
        });
    }
}

/// `zone[3] (example.com)`: the index finds the table, the name tells the
/// reader which one it is.
fn entry_path(table: &str, index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{table}[{index}] ({name})"),
        None => format!("{table}[{index}]"),
    }
}

/// `env_token` is the control token from the environment
/// ([`CONTROL_TOKEN_ENV`]), used when the file sets none.
pub(super) fn validate(
    raw: RawConfig,
    source: PathBuf,
    env_token: Option<String>,
) -> Result<Config, Vec<Problem>> {
    let mut p = Problems::default();
    let secrets = secrets_dir(&source);

    // Keys first: zones and [defaults] refer to them. `declared` holds every
    // key name that parsed, even if the key is otherwise broken, so a bad
    // secret is not also reported as a dangling reference in every zone.
    let mut declared = BTreeSet::new();
    let mut keys = BTreeMap::new();
    let mut first_key: BTreeMap<Name, usize> = BTreeMap::new();
    for (i, rk) in raw.keys.into_iter().enumerate() {
        let kp = entry_path("key", i, rk.name.as_deref());
        let name = match &rk.name {
            None => {
                p.report(&kp, "missing `name`");
                None
            }
            Some(text) => match parse_name(text) {
                Ok(name) => match first_key.get(&name) {
                    Some(j) => {
                        p.report(
                            format!("{kp}.name"),
                            format!("duplicate key name {text:?}, already defined at key[{j}]"),
                        );
                        None
                    }
                    None => {
                        first_key.insert(name.clone(), i);
                        declared.insert(name.clone());
                        Some(name)
                    }
                },
                Err(e) => {
                    p.report(format!("{kp}.name"), e);
                    None
                }
            },
        };
        let algorithm = match &rk.algorithm {
            None => {
                p.report(&kp, "missing `algorithm`");
                None
            }
            Some(text) => Algorithm::from_config_name(text)
                .map_err(|e| p.report(format!("{kp}.algorithm"), e.to_string()))
                .ok(),
        };
        let secret = match (&rk.secret, &rk.secret_file) {
            (None, None) => {
                p.report(&kp, "missing `secret` (or `secret_file`)");
                None
            }
            (Some(_), Some(_)) => {
                p.report(
                    &kp,
                    "`secret` and `secret_file` are both set; keep one of them",
                );
                None
            }
            (Some(text), None) => decode_secret(text)
                .map_err(|e| p.report(format!("{kp}.secret"), e))
                .ok(),
            (None, Some(path)) => read_secret_file(path, &secrets)
                .and_then(|text| {
                    decode_secret(&text)
                        .map_err(|e| format!("the secret in {} {e}", path.display()))
                })
                .map_err(|e| p.report(format!("{kp}.secret_file"), e))
                .ok(),
        };
        if let (Some(name), Some(algorithm), Some(secret)) = (name, algorithm, secret) {
            keys.insert(
                name.clone(),
                Key {
                    name,
                    algorithm,
                    secret,
                },
            );
        }
    }

    let server = check_server(raw.server, &secrets, env_token, &mut p);

    let defaults = check_settings(raw.defaults, "defaults", &declared, &mut p);
    check_timer_order("defaults", &defaults, &defaults.timers(), &mut p);

    if raw.zones.is_empty() && raw.catalogs.is_empty() {
        p.report("zone", "at least one [[zone]] or [[catalog]] is required");
    }
    let mut zones = Vec::with_capacity(raw.zones.len());
    let mut first_zone: BTreeMap<Name, usize> = BTreeMap::new();
    for (i, mut rz) in raw.zones.into_iter().enumerate() {
        let zp = entry_path("zone", i, rz.name.as_deref());
        let name = match &rz.name {
            None => {
                p.report(&zp, "missing `name`");
                None
            }
            Some(text) => match parse_name(text) {
                Ok(name) if name.is_wildcard() => {
                    p.report(
                        format!("{zp}.name"),
                        format!("{text:?}: a zone name cannot be a wildcard"),
                    );
                    None
                }
                Ok(name) => {
                    if let Some(j) = first_zone.get(&name) {
                        p.report(
                            format!("{zp}.name"),
                            format!("duplicate zone {text:?}, already defined at zone[{j}]"),
                        );
                    } else {
                        first_zone.insert(name.clone(), i);
                    }
                    Some(name)
                }
                Err(e) => {
                    p.report(format!("{zp}.name"), e);
                    None
                }
            },
        };

        let primaries = check_addresses(&rz.primaries, &format!("{zp}.primaries"), false, &mut p);
        if rz.primaries.is_empty() && rz.seed_file.is_none() {
            p.report(
                format!("{zp}.primaries"),
                "no primaries: a zone needs at least one primary, or a seed_file to serve",
            );
        }
        let seed_file = rz.seed_file.as_deref().and_then(|path| {
            let sp = format!("{zp}.seed_file");
            match resolve_path(path) {
                Ok(abs) if abs.is_file() => Some(abs),
                Ok(abs) if abs.exists() => {
                    p.report(sp, format!("{} is not a regular file", abs.display()));
                    None
                }
                Ok(abs) => {
                    p.report(sp, format!("{} does not exist", abs.display()));
                    None
                }
                Err(e) => {
                    p.report(sp, e);
                    None
                }
            }
        });

        let own = check_settings(rz.settings(), &zp, &declared, &mut p);
        let merged = own.clone().or(defaults.clone());
        let timers = merged.timers();
        check_timer_order(&zp, &own, &timers, &mut p);

        let zone = zone_config(
            name.unwrap_or_else(Name::root),
            primaries,
            seed_file,
            merged,
            timers,
            &keys,
            ZoneRole::Configured,
        );
        zones.push(std::sync::Arc::new(zone));
    }

    let mut catalogs = Vec::with_capacity(raw.catalogs.len());
    let mut catalog_names = BTreeSet::new();
    for (i, mut rc) in raw.catalogs.into_iter().enumerate() {
        let cp = entry_path("catalog", i, rc.name.as_deref());
        let name = match &rc.name {
            None => {
                p.report(&cp, "missing `name`");
                None
            }
            Some(text) => match parse_name(text) {
                Ok(name) if name.is_wildcard() || name.is_root() => {
                    p.report(
                        format!("{cp}.name"),
                        format!("{text:?} cannot be a catalog zone's name"),
                    );
                    None
                }
                Ok(name) => {
                    if first_zone.contains_key(&name) || !catalog_names.insert(name.clone()) {
                        p.report(
                            format!("{cp}.name"),
                            format!("duplicate: {text:?} is already a [[zone]] or a [[catalog]]"),
                        );
                    }
                    Some(name)
                }
                Err(e) => {
                    p.report(format!("{cp}.name"), e);
                    None
                }
            },
        };
        let primaries = check_addresses(&rc.primaries, &format!("{cp}.primaries"), false, &mut p);
        if rc.primaries.is_empty() {
            p.report(
                format!("{cp}.primaries"),
                "no primaries: a catalog zone is transferred from its primaries, which also serve its members",
            );
        }
        let own = check_settings(rc.settings(), &cp, &declared, &mut p);
        let merged = own.clone().or(defaults.clone());
        let timers = merged.timers();
        check_timer_order(&cp, &own, &timers, &mut p);
        let name = name.unwrap_or_else(Name::root);
        let members = zone_config(
            Name::root(),
            primaries.clone(),
            None,
            merged.clone(),
            timers,
            &keys,
            ZoneRole::Member(name.clone()),
        );
        let mut groups = BTreeMap::new();
        for (group, mut rg) in std::mem::take(&mut rc.group) {
            let gp = format!("{cp}.group.{group}");
            let own_group = check_settings(rg.settings(), &gp, &declared, &mut p);
            let merged_group = own_group.clone().or(merged.clone());
            let group_timers = merged_group.timers();
            check_timer_order(&gp, &own_group, &group_timers, &mut p);
            let group_primaries = if rg.primaries.is_empty() {
                primaries.clone()
            } else {
                check_addresses(&rg.primaries, &format!("{gp}.primaries"), false, &mut p)
            };
            groups.insert(
                group,
                zone_config(
                    Name::root(),
                    group_primaries,
                    None,
                    merged_group,
                    group_timers,
                    &keys,
                    ZoneRole::Member(name.clone()),
                ),
            );
        }
        let member_removal_grace = rc
            .member_removal_grace
            .map_or(DEFAULT_MEMBER_REMOVAL_GRACE, |d| d.0);
        zones.push(std::sync::Arc::new(zone_config(
            name.clone(),
            primaries,
            None,
            merged,
            timers,
            &keys,
            ZoneRole::Catalog,
        )));
        catalogs.push(CatalogConfig {
            name,
            members,
            groups,
            member_removal_grace,
        });
    }

    let identity = super::query::check_identity(raw.identity, &mut p);
    let rrl = super::query::check_rrl(raw.rrl, &mut p);
    let cookies = super::query::check_cookies(raw.cookies, &mut p);
    let sockets = server
        .as_ref()
        .map_or(1, |s| s.udp_workers * s.listen.len().max(1));
    let cache = super::query::check_cache(raw.cache, sockets, &mut p);
    match server {
        Some(server) if p.0.is_empty() => Ok(Config {
            source,
            server,
            keys,
            zones,
            catalogs,
            identity,
            rrl,
            cookies,
            cache,
        }),
        _ => Err(p.0),
    }
}

/// One zone's configuration from its checked, merged settings.
fn zone_config(
    name: Name,
    primaries: Vec<SocketAddr>,
    seed_file: Option<PathBuf>,
    merged: Settings,
    timers: TimerBounds,
    keys: &BTreeMap<Name, Key>,
    role: ZoneRole,
) -> ZoneConfig {
    let builtin = Limits::default();
    ZoneConfig {
        name,
        primaries,
        key: merged.key.flatten().and_then(|k| keys.get(&k).cloned()),
        seed_file,
        notify_from: merged.notify_from.unwrap_or_default(),
        allow_transfer: merged.allow_transfer.unwrap_or_default(),
        notify: merged.notify.unwrap_or_default(),
        timers,
        on_expire: merged.on_expire.unwrap_or_default(),
        transfer_timeout: merged.transfer_timeout.unwrap_or(DEFAULT_TRANSFER_TIMEOUT),
        idle_timeout: merged.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
        limits: Limits {
            max_records: merged.max_records.unwrap_or(builtin.max_records),
            max_transfer_bytes: merged
                .max_transfer_bytes
                .unwrap_or(builtin.max_transfer_bytes),
            max_rrset_records: merged
                .max_rrset_records
                .unwrap_or(builtin.max_rrset_records),
            max_types_per_name: merged
                .max_types_per_name
                .unwrap_or(builtin.max_types_per_name),
        },
        ixfr_history: merged.ixfr_history.unwrap_or(DEFAULT_IXFR_HISTORY),
        ixfr_history_bytes: merged
            .ixfr_history_bytes
            .unwrap_or(DEFAULT_IXFR_HISTORY_BYTES),
        zonefile_sync: merged.zonefile_sync.unwrap_or(DEFAULT_ZONEFILE_SYNC),
        on_damaged_copy: merged.on_damaged_copy.unwrap_or_default(),
        zonemd: merged.zonemd.unwrap_or_default(),
        source: merged.source.unwrap_or_default(),
        role,
    }
}

fn check_server(
    raw: super::raw::RawServer,
    secrets: &Path,
    env_token: Option<String>,
    p: &mut Problems,
) -> Option<ServerConfig> {
    let tcp = check_tcp(&raw, p);
    let control_limits = check_control_limits(&raw, p);
    if raw.listen.is_empty() {
        p.report("server.listen", "at least one listen address is required");
    }
    // Port 0 is allowed here: it asks the OS for a free port, which tests use.
    let listen = check_addresses(&raw.listen, "server.listen", true, p);

    let data_dir = match &raw.data_dir {
        None => {
            p.report("server", "missing `data_dir`");
            None
        }
        Some(dir) => resolve_path(dir)
            .map_err(|e| p.report("server.data_dir", e))
            .ok(),
    };

    let control = raw
        .control
        .as_deref()
        .and_then(|text| match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                p.report(
                    "server.control",
                    format!("{text:?} is not an IP address with port"),
                );
                None
            }
        });
    // The control endpoint and DNS over TCP cannot share a port.
    if let Some(c) = control {
        let overlaps = |x: IpAddr, y: IpAddr| {
            x == y || (x.is_ipv4() == y.is_ipv4() && (x.is_unspecified() || y.is_unspecified()))
        };
        for (i, l) in listen.iter().enumerate() {
            if c.port() != 0 && c.port() == l.port() && overlaps(c.ip(), l.ip()) {
                p.report(
                    "server.control",
                    format!("{c} is also listen[{i}] ({l}): the control endpoint needs a port of its own"),
                );
            }
        }
    }
    let (token_key, control_token) = match (raw.control_token, &raw.control_token_file) {
        (Some(_), Some(_)) => {
            p.report(
                "server",
                "`control_token` and `control_token_file` are both set; keep one of them",
            );
            ("control_token", None)
        }
        (Some(token), None) => ("control_token", Some(token)),
        (None, Some(path)) => (
            "control_token_file",
            read_secret_file(path, secrets)
                .map_err(|e| p.report("server.control_token_file", e))
                .ok(),
        ),
        (None, None) => ("control_token", None),
    };
    match (&control_token, &raw.control) {
        (Some(token), _) if token.is_empty() => {
            p.report(format!("server.{token_key}"), "must not be empty");
        }
        (Some(_), None) => {
            p.report(
                format!("server.{token_key}"),
                "is set but `control` is not, so nothing would use it",
            );
        }
        _ => {}
    }
    // The file's token wins; the environment's is for containers, whose
    // configuration is baked into the image.
    let token_file = raw.control_token_file.is_some();
    let control_token =
        control_token.or_else(|| env_token.filter(|t| !t.is_empty() && !token_file));
    // An unreadable token file is reported above already.
    if let Some(addr) = control
        && !addr.ip().to_canonical().is_loopback()
        && control_token.is_none()
        && !token_file
    {
        p.report(
            "server.control",
            format!(
                "{addr} is not a loopback address, and the control endpoint can reload the \
                 configuration and start transfers: set `control_token` or \
                 `control_token_file` (or {CONTROL_TOKEN_ENV} in the environment), or listen on 127.0.0.1 or ::1"
            ),
        );
    }

    let log_level = raw
        .log_level
        .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string());
    if log_level.trim().is_empty() {
        p.report("server.log_level", "must not be empty");
    } else if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_level) {
        p.report(
            "server.log_level",
            format!("{log_level:?} is not a valid log filter: {e}"),
        );
    }

    let udp_workers = match raw.udp_workers {
        Some(0) => {
            p.report("server.udp_workers", "must be greater than zero");
            1
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };

    let d = super::RefreshLimits::default();
    let refresh = super::RefreshLimits {
        max_checks: positive(
            raw.max_refresh_checks,
            d.max_checks,
            "server.max_refresh_checks",
            p,
        ),
        max_checks_per_primary: positive(
            raw.max_refresh_checks_per_primary,
            d.max_checks_per_primary,
            "server.max_refresh_checks_per_primary",
            p,
        ),
    };
    Some(ServerConfig {
        refresh,
        listen,
        data_dir: data_dir?,
        control,
        control_token,
        log_format: raw.log_format.unwrap_or_default(),
        log_level,
        udp_workers,
        tcp,
        control_limits,
    })
}

/// A count that must be positive, or its default.
fn positive(value: Option<usize>, default: usize, path: &str, p: &mut Problems) -> usize {
    match value {
        Some(0) => {
            p.report(path, "must be greater than zero");
            default
        }
        Some(n) => n,
        None => default,
    }
}

/// A duration that must be positive, or its default.
fn positive_duration(
    value: Option<super::raw::DurationValue>,
    default: Duration,
    path: &str,
    p: &mut Problems,
) -> Duration {
    match value {
        Some(d) if d.0.is_zero() => {
            p.report(path, "must be greater than zero");
            default
        }
        Some(d) => d.0,
        None => default,
    }
}

fn check_tcp(raw: &super::raw::RawServer, p: &mut Problems) -> TcpLimits {
    let d = TcpLimits::default();
    let limits = TcpLimits {
        max_connections: positive(
            raw.tcp_max_connections,
            d.max_connections,
            "server.tcp_max_connections",
            p,
        ),
        max_connections_per_client: positive(
            raw.tcp_max_connections_per_client,
            d.max_connections_per_client,
            "server.tcp_max_connections_per_client",
            p,
        ),
        idle_timeout: positive_duration(
            raw.tcp_idle_timeout,
            d.idle_timeout,
            "server.tcp_idle_timeout",
            p,
        ),
        busy_idle_timeout: positive_duration(
            raw.tcp_busy_idle_timeout,
            d.busy_idle_timeout,
            "server.tcp_busy_idle_timeout",
            p,
        ),
        write_timeout: positive_duration(
            raw.tcp_write_timeout,
            d.write_timeout,
            "server.tcp_write_timeout",
            p,
        ),
        max_transfers_out: positive(
            raw.max_transfers_out,
            d.max_transfers_out,
            "server.max_transfers_out",
            p,
        ),
    };
    if limits.busy_idle_timeout > limits.idle_timeout {
        p.report(
            "server.tcp_busy_idle_timeout",
            format!(
                "{} is longer than tcp_idle_timeout ({}): the timeout under load must not be the longer one",
                format_duration(limits.busy_idle_timeout),
                format_duration(limits.idle_timeout)
            ),
        );
    }
    limits
}

fn check_control_limits(raw: &super::raw::RawServer, p: &mut Problems) -> ControlLimits {
    let d = ControlLimits::default();
    ControlLimits {
        max_connections: positive(
            raw.control_max_connections,
            d.max_connections,
            "server.control_max_connections",
            p,
        ),
        header_timeout: positive_duration(
            raw.control_header_timeout,
            d.header_timeout,
            "server.control_header_timeout",
            p,
        ),
        idle_timeout: positive_duration(
            raw.control_idle_timeout,
            d.idle_timeout,
            "server.control_idle_timeout",
            p,
        ),
    }
}

/// The per-zone settings of one table (`[defaults]` or one `[[zone]]`),
/// checked but not yet merged: `None` means "not set here".
#[derive(Debug, Clone, Default)]
struct Settings {
    min_refresh: Option<Duration>,
    max_refresh: Option<Duration>,
    min_retry: Option<Duration>,
    max_retry: Option<Duration>,
    min_expire: Option<Duration>,
    max_expire: Option<Duration>,
    on_expire: Option<OnExpire>,
    transfer_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_records: Option<usize>,
    max_transfer_bytes: Option<u64>,
    max_rrset_records: Option<usize>,
    max_types_per_name: Option<usize>,
    ixfr_history: Option<usize>,
    ixfr_history_bytes: Option<u64>,
    zonefile_sync: Option<Duration>,
    on_damaged_copy: Option<DamagedCopy>,
    zonemd: Option<ZonemdMode>,
    notify_from: Option<Vec<IpNet>>,
    allow_transfer: Option<Vec<AclEntry>>,
    notify: Option<Vec<SocketAddr>>,
    /// `Some(None)`: explicitly no key (`key = ""`), overriding `[defaults]`.
    key: Option<Option<Name>>,
    source: Option<Vec<IpAddr>>,
}

macro_rules! prefer {
    ($this:expr, $other:expr; $($field:ident),*) => {
        Settings { $($field: $this.$field.or($other.$field),)* }
    };
}

impl Settings {
    /// Values set here win; the rest come from `other`.
    fn or(self, other: Settings) -> Settings {
        prefer!(self, other; min_refresh, max_refresh, min_retry, max_retry, min_expire,
            max_expire, on_expire, transfer_timeout, idle_timeout, max_records,
            max_transfer_bytes, max_rrset_records, max_types_per_name, ixfr_history,
            ixfr_history_bytes, zonefile_sync, on_damaged_copy, zonemd, notify_from,
            allow_transfer, notify, key, source)
    }

    /// The timer bounds, built-in defaults filling what is not set.
    fn timers(&self) -> TimerBounds {
        let d = TimerBounds::default();
        TimerBounds {
            min_refresh: self.min_refresh.unwrap_or(d.min_refresh),
            max_refresh: self.max_refresh.unwrap_or(d.max_refresh),
            min_retry: self.min_retry.unwrap_or(d.min_retry),
            max_retry: self.max_retry.unwrap_or(d.max_retry),
            min_expire: self.min_expire.unwrap_or(d.min_expire),
            max_expire: self.max_expire.unwrap_or(d.max_expire),
        }
    }
}

fn check_settings(
    raw: RawSettings,
    path: &str,
    declared_keys: &BTreeSet<Name>,
    p: &mut Problems,
) -> Settings {
    let mut positive_duration = |field: &str, value: Option<super::raw::DurationValue>| {
        let value = value.map(|v| v.0);
        if value == Some(Duration::ZERO) {
            p.report(format!("{path}.{field}"), "must be greater than zero");
        }
        value
    };
    let transfer_timeout = positive_duration("transfer_timeout", raw.transfer_timeout);
    let idle_timeout = positive_duration("idle_timeout", raw.idle_timeout);
    let zonefile_sync = positive_duration("zonefile_sync", raw.zonefile_sync);

    let mut positive = |field: &str, value: Option<u64>| {
        if value == Some(0) {
            p.report(format!("{path}.{field}"), "must be greater than zero");
        }
    };
    positive("max_records", raw.max_records.map(|v| v as u64));
    positive("max_transfer_bytes", raw.max_transfer_bytes.map(|v| v.0));
    positive("max_rrset_records", raw.max_rrset_records.map(|v| v as u64));
    positive(
        "max_types_per_name",
        raw.max_types_per_name.map(|v| v as u64),
    );

    let notify_from = raw.notify_from.map(|list| {
        list.iter()
            .enumerate()
            .filter_map(|(i, text)| {
                parse_net(text)
                    .map_err(|e| p.report(format!("{path}.notify_from[{i}]"), e))
                    .ok()
            })
            .collect()
    });
    let allow_transfer = raw.allow_transfer.map(|list| {
        list.iter()
            .enumerate()
            .filter_map(|(i, text)| {
                parse_acl(text, declared_keys)
                    .map_err(|e| p.report(format!("{path}.allow_transfer[{i}]"), e))
                    .ok()
            })
            .collect()
    });
    let notify = raw
        .notify
        .map(|list| check_addresses(&list, &format!("{path}.notify"), false, p));
    let key = raw.key.and_then(|text| {
        if text.is_empty() {
            return Some(None);
        }
        match parse_name(&text) {
            Ok(name) if declared_keys.contains(&name) => Some(Some(name)),
            Ok(_) => {
                p.report(
                    format!("{path}.key"),
                    format!("{text:?} does not name a [[key]]"),
                );
                None
            }
            Err(e) => {
                p.report(format!("{path}.key"), e);
                None
            }
        }
    });

    let source = raw.source.map(|list| {
        let list = list.into_vec();
        let mut out: Vec<IpAddr> = Vec::new();
        for (i, text) in list.iter().enumerate() {
            let at = format!("{path}.source[{i}]");
            match text.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() => {
                    p.report(
                        at,
                        format!(
                            "{text:?}: the unspecified address is the default; leave `source` out"
                        ),
                    );
                }
                Ok(ip) if out.iter().any(|o| o.is_ipv4() == ip.is_ipv4()) => {
                    p.report(
                        at,
                        format!("{text:?}: only one source address per address family"),
                    );
                }
                Ok(ip) => out.push(ip),
                Err(_) => p.report(
                    at,
                    format!("{text:?} is not an IP address (a source has no port)"),
                ),
            }
        }
        out
    });

    Settings {
        source,
        min_refresh: raw.min_refresh.map(|v| v.0),
        max_refresh: raw.max_refresh.map(|v| v.0),
        min_retry: raw.min_retry.map(|v| v.0),
        max_retry: raw.max_retry.map(|v| v.0),
        min_expire: raw.min_expire.map(|v| v.0),
        max_expire: raw.max_expire.map(|v| v.0),
        on_expire: raw.on_expire,
        transfer_timeout,
        idle_timeout,
        max_records: raw.max_records,
        max_transfer_bytes: raw.max_transfer_bytes.map(|v| v.0),
        max_rrset_records: raw.max_rrset_records,
        max_types_per_name: raw.max_types_per_name,
        ixfr_history: raw.ixfr_history,
        ixfr_history_bytes: raw.ixfr_history_bytes.map(|v| v.0),
        zonefile_sync,
        on_damaged_copy: raw.on_damaged_copy,
        zonemd: raw.zonemd,
        notify_from,
        allow_transfer,
        notify,
        key,
    }
}

/// Checks min <= max for each pair that `own` sets at least one side of, so
/// a bad pair in `[defaults]` is reported there once and not again in every
/// zone that inherits it.
fn check_timer_order(path: &str, own: &Settings, merged: &TimerBounds, p: &mut Problems) {
    let pairs = [
        (
            "refresh",
            own.min_refresh.or(own.max_refresh),
            merged.min_refresh,
            merged.max_refresh,
        ),
        (
            "retry",
            own.min_retry.or(own.max_retry),
            merged.min_retry,
            merged.max_retry,
        ),
        (
            "expire",
            own.min_expire.or(own.max_expire),
            merged.min_expire,
            merged.max_expire,
        ),
    ];
    for (what, set_here, min, max) in pairs {
        if set_here.is_some() && min > max {
            p.report(
                format!("{path}.min_{what}"),
                format!(
                    "min_{what} ({}) is greater than max_{what} ({})",
                    format_duration(min),
                    format_duration(max)
                ),
            );
        }
    }
}

/// A domain name, fully qualified and lowercased so comparisons and map
/// lookups need no further normalisation.
fn parse_name(text: &str) -> Result<Name, String> {
    if text.is_empty() {
        return Err("domain name is empty".to_string());
    }
    let mut name =
        Name::from_ascii(text).map_err(|e| format!("{text:?} is not a valid domain name: {e}"))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

fn decode_secret(text: &str) -> Result<Vec<u8>, String> {
    use base64::DecodeError;
    if text.is_empty() {
        return Err("is empty".to_string());
    }
    // The messages avoid quoting the secret or its bytes.
    let secret = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| match e {
            DecodeError::InvalidByte(offset, _) => {
                format!("is not valid base64: invalid character at offset {offset}")
            }
            DecodeError::InvalidLength(_) => "is not valid base64: truncated".to_string(),
            DecodeError::InvalidLastSymbol(offset, _) => {
                format!("is not valid base64: invalid last symbol at offset {offset}")
            }
            DecodeError::InvalidPadding => "is not valid base64: bad padding".to_string(),
        })?;
    if secret.is_empty() {
        return Err("decodes to an empty secret".to_string());
    }
    Ok(secret)
}

/// `"ip"` (port 53) or `"ip:port"`; IPv6 with a port in brackets.
fn parse_address(text: &str, allow_port_zero: bool) -> Result<SocketAddr, String> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let addr = text
        .parse::<SocketAddr>()
        .or_else(|_| {
            bare.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, DEFAULT_DNS_PORT))
        })
        .map_err(|_| format!("{text:?} is not an IP address with optional port"))?;
    if addr.port() == 0 && !allow_port_zero {
        return Err(format!("{text:?}: port 0 cannot be sent to"));
    }
    Ok(addr)
}

fn check_addresses(
    list: &[String],
    path: &str,
    allow_port_zero: bool,
    p: &mut Problems,
) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(list.len());
    for (i, text) in list.iter().enumerate() {
        match parse_address(text, allow_port_zero) {
            Ok(addr) => match out.iter().position(|a| *a == addr) {
                Some(_) => p.report(format!("{path}[{i}]"), format!("{text:?} is listed twice")),
                None => out.push(addr),
            },
            Err(e) => p.report(format!("{path}[{i}]"), e),
        }
    }
    out
}

/// An address or CIDR network. Host bits after the prefix are refused: in an
/// access list `10.0.0.1/8` is more likely a typo than a wish for 10/8.
pub(super) fn parse_net(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(format!(
                "{text:?} has bits set after the prefix length (did you mean \"{}\"?)",
                net.trunc()
            ));
        }
        return Ok(net);
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))
}

fn parse_acl(text: &str, declared_keys: &BTreeSet<Name>) -> Result<AclEntry, String> {
    let looks_like_address = text.contains(['/', ':'])
        || (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    if looks_like_address {
        return parse_net(text).map(AclEntry::Net);
    }
    match parse_name(text) {
        Ok(name) if declared_keys.contains(&name) => Ok(AclEntry::Key(name)),
        _ => Err(format!(
            "{text:?} is neither an IP address, a CIDR network nor the name of a [[key]]"
        )),
    }
}

/// Where relative secret files are: `$CREDENTIALS_DIRECTORY` when set
/// (systemd's `LoadCredential=`, or a container's `/run/secrets`), else
/// `credentials/` beside the configuration file, which is where the
/// credentials systemd loads come from (/etc/outpost/credentials), so an
/// operator's shell reads the same secrets as the service.
pub(super) fn secrets_dir(config_file: &Path) -> PathBuf {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => config_file
            .parent()
            .unwrap_or(Path::new(""))
            .join("credentials"),
    }
}

/// Reads a secret kept in a file of its own, without the surrounding
/// white space; a relative path is taken from `secrets` (see
/// [`secrets_dir`]). Messages name the file, never its contents.
pub(super) fn read_secret_file(path: &Path, secrets: &Path) -> Result<String, String> {
    let full = if path.is_relative() {
        secrets.join(path)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&full).map_err(|e| {
        let hint = if path.is_relative() {
            " (a relative path is read from $CREDENTIALS_DIRECTORY when set, else from credentials/ beside the configuration file)"
        } else {
            ""
        };
        format!("cannot read {}: {e}{hint}", full.display())
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{} is empty", full.display()));
    }
    Ok(text.to_string())
}

/// Relative paths are taken from the current working directory.
fn resolve_path(path: &Path) -> Result<PathBuf, String> {
    if path.as_os_str().is_empty() {
        return Err("path is empty".to_string());
    }
    std::path::absolute(path).map_err(|e| format!("cannot resolve {}: {e}", path.display()))
}
