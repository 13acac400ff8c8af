//! The I/O around [`super::audit`]: options, fetching the zone (file or
//! AXFR), printing the report.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use clap::Args;
use hickory_proto::rr::{Name, Record, RecordType};
use ipnet::IpNet;

use super::{AuditOptions, DEFAULT_MIN_TTL, External, Lookup, audit, external_mx_targets, secs32};
use crate::config::{
    Config, ConfigError, DEFAULT_DNS_PORT, DEFAULT_IDLE_TIMEOUT, DEFAULT_TRANSFER_TIMEOUT,
    parse_duration,
};
use crate::tsig::{Algorithm, Key};
use crate::xfr::client::{XfrError, axfr};
use crate::xfr::interp::Limits;
use crate::zonefile::{self, ZoneFileError};

/// Exit code when the audit could not be run at all.
pub const EXIT_ERROR: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid {option} {value:?}: {reason}")]
    BadOption {
        option: &'static str,
        value: String,
        reason: String,
    },
    #[error("zone {zone}: {source}")]
    ZoneFile {
        zone: String,
        #[source]
        source: ZoneFileError,
    },
    /// Boxed: a transfer error is large and every other variant is small.
    #[error(transparent)]
    Transfer(Box<XfrError>),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("zone {zone}: a record from {primary} cannot be read: {reason}")]
    BadRecord {
        zone: String,
        primary: std::net::SocketAddr,
        reason: String,
    },
    #[error("{file}: no [[key]] named {name:?}")]
    UnknownKey { file: String, name: String },
    #[error(
        "zone {zone}: no records to audit; give --file or --primary (or --config with primaries for the zone)"
    )]
    NoSource { zone: String },
    #[error("zone {zone}: cannot start the I/O runtime: {source}")]
    Runtime {
        zone: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<XfrError> for AuditError {
    fn from(e: XfrError) -> Self {
        AuditError::Transfer(Box::new(e))
    }
}

/// `outpost audit`: check a zone's disaster readiness.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The zone to audit.
    #[arg(long)]
    pub zone: String,
    /// Read the zone from this master file.
    #[arg(long, conflicts_with = "primary")]
    pub file: Option<PathBuf>,
    /// Transfer the zone (AXFR) from this primary, `IP` or `IP:PORT`.
    #[arg(long)]
    pub primary: Option<String>,
    /// TSIG key name for the transfer; the secret comes from
    /// --key-secret-file or $OUTPOST_KEY_SECRET.
    #[arg(long, conflicts_with = "key")]
    pub key_name: Option<String>,
    /// TSIG algorithm (hmac-sha256, hmac-sha512, ...).
    #[arg(long, default_value = "hmac-sha256", requires = "key_name")]
    pub key_algorithm: String,
    /// File holding the TSIG secret, base64 (as `secret_file` in the
    /// configuration); wins over --key-secret and $OUTPOST_KEY_SECRET.
    #[arg(long, requires = "key_name")]
    pub key_secret_file: Option<PathBuf>,
    /// TSIG secret, base64. On the command line it shows in `ps` and the
    /// shell history: prefer --key-secret-file or the environment.
    #[arg(
        long,
        env = "OUTPOST_KEY_SECRET",
        hide_env_values = true,
        requires = "key_name"
    )]
    pub key_secret: Option<String>,
    /// Outpost configuration: its [[key]]s, and the zone's min_expire,
    /// max_expire, key and primaries.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Name of a [[key]] in --config to sign the transfer with.
    #[arg(long, requires = "config")]
    pub key: Option<String>,
    /// A domain at the home site (repeatable); default: the zone itself.
    #[arg(long = "home-domain")]
    pub home_domains: Vec<String>,
    /// A network at another site, `IP` or `IP/LEN` (repeatable): hosts with
    /// an address there count as offsite.
    #[arg(long = "offsite-address")]
    pub offsite_addresses: Vec<String>,
    /// Warn about disaster-relevant TTLs under this ("30d", "3600000").
    #[arg(long)]
    pub min_ttl: Option<String>,
    /// Outpost's min_expire (overrides --config).
    #[arg(long)]
    pub min_expire: Option<String>,
    /// Outpost's max_expire (overrides --config).
    #[arg(long)]
    pub max_expire: Option<String>,
    /// The current time, Unix seconds (for reproducible runs).
    #[arg(long)]
    pub now: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Recursive resolver (`IP` or `IP:PORT`) asked for the addresses of MX
    /// hosts outside the zone's own data, the disaster MX above all;
    /// default: the first `nameserver` in /etc/resolv.conf.
    #[arg(long, conflicts_with = "no_resolve")]
    pub resolver: Option<String>,
    /// Do not look up MX hosts outside the zone (the findings say so).
    #[arg(long)]
    pub no_resolve: bool,
}

fn bad(option: &'static str, value: &str, reason: impl ToString) -> AuditError {
    AuditError::BadOption {
        option,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_name(option: &'static str, text: &str) -> Result<Name, AuditError> {
    let mut name = Name::from_ascii(text).map_err(|e| bad(option, text, e))?;
    name.set_fqdn(true);
    Ok(name)
}

fn parse_secs(option: &'static str, text: &str) -> Result<u32, AuditError> {
    parse_duration(text)
        .map(secs32)
        .map_err(|e| bad(option, text, e))
}

fn parse_net(text: &str) -> Result<IpNet, AuditError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            bad(
                "--offsite-address",
                text,
                "expected an IP address or IP/LEN",
            )
        })
}

fn parse_primary(text: &str) -> Result<SocketAddr, AuditError> {
    text.parse::<SocketAddr>()
        .or_else(|_| {
            text.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, DEFAULT_DNS_PORT))
        })
        .map_err(|_| bad("--primary", text, "expected IP or IP:PORT"))
}

/// Where the records come from, once options and config are resolved.
#[derive(Debug)]
pub enum Source {
    File(PathBuf),
    /// Tried in order until one transfer succeeds.
    Primaries {
        addrs: Vec<SocketAddr>,
        key: Option<Key>,
        limits: Limits,
        transfer_timeout: Duration,
        idle_timeout: Duration,
    },
}

/// Everything `run` needs: the zone, its source, the audit options.
#[derive(Debug)]
pub struct Plan {
    pub zone: Name,
    pub source: Source,
    pub options: AuditOptions,
}

impl AuditArgs {
    /// Resolves options, the config file and defaults into a [`Plan`].
    pub fn plan(&self) -> Result<Plan, AuditError> {
        let zone = parse_name("--zone", &self.zone)?;
        let config = self.config.as_deref().map(Config::load).transpose()?;
        let zone_config = config.as_ref().and_then(|c| c.zone(&zone));
        if let (Some(c), None) = (&config, zone_config) {
            eprintln!(
                "outpost audit: note: zone {} is not in {}; using built-in expire bounds",
                self.zone,
                c.source.display()
            );
        }

        let now = match self.now {
            Some(n) => n,
            None => crate::tsig::now_secs(),
        };
        let mut options = AuditOptions::new(now);
        if let Some(zc) = zone_config {
            options.min_expire = secs32(zc.timers.min_expire);
            options.max_expire = secs32(zc.timers.max_expire);
        }
        if let Some(t) = &self.min_expire {
            options.min_expire = parse_secs("--min-expire", t)?;
        }
        if let Some(t) = &self.max_expire {
            options.max_expire = parse_secs("--max-expire", t)?;
        }
        options.min_ttl = match &self.min_ttl {
            Some(t) => parse_secs("--min-ttl", t)?,
            None => DEFAULT_MIN_TTL,
        };
        options.home_domains = self
            .home_domains
            .iter()
            .map(|d| parse_name("--home-domain", d))
            .collect::<Result<_, _>>()?;
        options.offsite_nets = self
            .offsite_addresses
            .iter()
            .map(|a| parse_net(a))
            .collect::<Result<_, _>>()?;

        let source = if let Some(file) = &self.file {
            Source::File(file.clone())
        } else {
            let addrs = match &self.primary {
                Some(p) => vec![parse_primary(p)?],
                None => zone_config.map(|z| z.primaries.clone()).unwrap_or_default(),
            };
            if addrs.is_empty() {
                return Err(AuditError::NoSource {
                    zone: self.zone.clone(),
                });
            }
            let key = if let Some(name) = &self.key_name {
                let secret = match (&self.key_secret_file, &self.key_secret) {
                    (Some(path), _) => std::fs::read_to_string(path).map_err(|e| {
                        bad(
                            "--key-secret-file",
                            &path.display().to_string(),
                            format!("cannot read it: {e}"),
                        )
                    })?,
                    (None, Some(secret)) => secret.clone(),
                    (None, None) => {
                        return Err(bad(
                            "--key-name",
                            name,
                            "needs a secret: --key-secret-file FILE or $OUTPOST_KEY_SECRET",
                        ));
                    }
                };
                let algorithm = Algorithm::from_config_name(&self.key_algorithm)
                    .map_err(|e| bad("--key-algorithm", &self.key_algorithm, e))?;
                let secret = base64::engine::general_purpose::STANDARD
                    .decode(secret.trim())
                    .map_err(|e| bad("--key-secret", "<hidden>", e))?;
                Some(Key::new(parse_name("--key-name", name)?, algorithm, secret))
            } else if let (Some(name), Some(c)) = (&self.key, &config) {
                let n = parse_name("--key", name)?;
                Some(
                    c.keys
                        .get(&n)
                        .cloned()
                        .ok_or_else(|| AuditError::UnknownKey {
                            file: c.source.display().to_string(),
                            name: name.clone(),
                        })?,
                )
            } else {
                zone_config.and_then(|z| z.key.clone())
            };
            let (limits, transfer_timeout, idle_timeout) = match zone_config {
                Some(z) => (
                    Limits {
                        max_records: z.limits.max_records,
                        max_transfer_bytes: z.limits.max_transfer_bytes,
                        max_rrset_records: z.limits.max_rrset_records,
                        max_types_per_name: z.limits.max_types_per_name,
                    },
                    z.transfer_timeout,
                    z.idle_timeout,
                ),
                None => (
                    Limits::default(),
                    DEFAULT_TRANSFER_TIMEOUT,
                    DEFAULT_IDLE_TIMEOUT,
                ),
            };
            Source::Primaries {
                addrs,
                key,
                limits,
                transfer_timeout,
                idle_timeout,
            }
        };
        Ok(Plan {
            zone,
            source,
            options,
        })
    }
}

/// Reads the zone's records from the plan's source.
pub fn fetch(zone: &Name, source: &Source) -> Result<Vec<Record>, AuditError> {
    match source {
        Source::File(path) => read_file(zone, path),
        Source::Primaries {
            addrs,
            key,
            limits,
            transfer_timeout,
            idle_timeout,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| AuditError::Runtime {
                    zone: zone.to_ascii(),
                    source,
                })?;
            rt.block_on(async {
                let mut last = None;
                for addr in addrs {
                    match axfr(
                        *addr,
                        zone,
                        key.as_ref(),
                        *limits,
                        *transfer_timeout,
                        *idle_timeout,
                    )
                    .await
                    {
                        Ok(r) => {
                            return r.records.raw().to_records().map_err(|e| {
                                AuditError::BadRecord {
                                    zone: zone.to_ascii(),
                                    primary: *addr,
                                    reason: e.to_string(),
                                }
                            });
                        }
                        Err(e) => {
                            if addrs.len() > 1 {
                                eprintln!("outpost audit: {e}");
                            }
                            last = Some(e);
                        }
                    }
                }
                Err(last.expect("at least one primary").into())
            })
        }
    }
}

fn read_file(zone: &Name, path: &Path) -> Result<Vec<Record>, AuditError> {
    zonefile::parse_file(path, zone).map_err(|source| AuditError::ZoneFile {
        zone: zone.to_ascii(),
        source,
    })
}

/// The `outpost audit` command: prints the report, returns its exit code.
pub fn run(args: &AuditArgs) -> ExitCode {
    let result = args
        .plan()
        .and_then(|plan| Ok((fetch(&plan.zone, &plan.source)?, plan)));
    let (records, plan) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("outpost audit: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let mut options = plan.options;
    options.external = match args.external(&plan.zone, &records) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("outpost audit: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let report = audit(&plan.zone, &records, &options);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).expect("JSON values serialize")
        );
    } else {
        print!("{}", report.to_text());
    }
    ExitCode::from(report.exit_code())
}

/// How long one resolver query may take; it is tried twice.
const RESOLVER_TIMEOUT: Duration = Duration::from_secs(3);

impl AuditArgs {
    /// Looks up the MX hosts the zone's data cannot vouch for.
    fn external(&self, zone: &Name, records: &[Record]) -> Result<External, AuditError> {
        if self.no_resolve {
            return Ok(External::NotAsked("--no-resolve".into()));
        }
        let targets = external_mx_targets(zone, records);
        let resolver = match &self.resolver {
            Some(text) => parse_primary(text)
                .map_err(|_| bad("--resolver", text, "expected IP or IP:PORT"))?,
            None => match system_resolver() {
                Some(addr) => addr,
                None => {
                    return Ok(External::NotAsked(
                        "no nameserver in /etc/resolv.conf; give --resolver".into(),
                    ));
                }
            },
        };
        let answers = targets
            .into_iter()
            .map(|name| {
                let found = lookup(resolver, &name);
                (name, found)
            })
            .collect();
        Ok(External::Asked {
            resolver: format!("resolver {resolver}"),
            answers,
        })
    }
}

/// The first `nameserver` of /etc/resolv.conf.
fn system_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse::<IpAddr>().ok())
            .flatten()
            .map(|ip| SocketAddr::new(ip, DEFAULT_DNS_PORT))
    })
}

/// A and AAAA of `host` from a recursive resolver.
fn lookup(resolver: SocketAddr, host: &Name) -> Lookup {
    let mut addrs = Vec::new();
    let mut no_address = Vec::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        match query(resolver, host, rtype) {
            Ok(msg) => {
                let rcode = msg.rcode();
                if rcode != 0 {
                    let name = crate::wire::rcode_name(rcode);
                    // NXDOMAIN is an answer; SERVFAIL and the rest say
                    // nothing about the host.
                    if rcode == 3 {
                        no_address.push(format!("{name} to {rtype}"));
                    } else {
                        return Lookup::Failed(format!("{resolver} answered {name} to {rtype}"));
                    }
                    continue;
                }
                let before = addrs.len();
                for r in &msg.answers {
                    match (r.rtype, r.rdata.len()) {
                        (RecordType::A, 4) => {
                            let b: [u8; 4] = r.rdata[..].try_into().expect("length checked");
                            addrs.push(IpAddr::from(b));
                        }
                        (RecordType::AAAA, 16) => {
                            let b: [u8; 16] = r.rdata[..].try_into().expect("length checked");
                            addrs.push(IpAddr::from(b));
                        }
                        _ => {}
                    }
                }
                if addrs.len() == before {
                    no_address.push(format!("no {rtype} record"));
                }
            }
            Err(e) => return Lookup::Failed(format!("{resolver}: {e}")),
        }
    }
    if addrs.is_empty() {
        Lookup::NoAddress(no_address.join(", "))
    } else {
        Lookup::Addresses(addrs)
    }
}

fn query(
    resolver: SocketAddr,
    host: &Name,
    rtype: RecordType,
) -> std::io::Result<crate::wire::Message> {
    use std::net::UdpSocket;
    let bind: SocketAddr = if resolver.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(resolver)?;
    sock.set_read_timeout(Some(RESOLVER_TIMEOUT))?;
    let id: u16 = rand::random();
    let mut b =
        crate::wire::MessageBuilder::new(id, crate::wire::OPCODE_QUERY, crate::wire::FLAG_RD);
    b.question(host, rtype, crate::wire::CLASS_IN);
    let q = b
        .finish()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..2 {
        sock.send(&q)?;
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let Ok(msg) = crate::wire::Message::parse(&buf[..n]) else {
                        continue;
                    };
                    if msg.header.id == id && msg.header.is_response() {
                        return Ok(msg);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "no answer after two tries of {}s",
            RESOLVER_TIMEOUT.as_secs()
        ),
    ))
}
