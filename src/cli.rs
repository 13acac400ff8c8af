//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::net::SocketAddr;

use crate::config::Config;
use crate::control;
use crate::daemon;

/// Where the configuration is looked for when `--config` is not given, in
/// this order: the bundled one for a checkout, then the installed one.
pub const CONFIG_SEARCH: [&str; 2] = ["config/outpost.toml", "/etc/outpost/outpost.toml"];

#[derive(Debug, Parser)]
#[command(
    name = "outpost",
    version,
    about = "Authoritative offsite secondary DNS server",
    after_help = "Without --config, the configuration is config/outpost.toml (relative to the \
working directory) when that file exists, else /etc/outpost/outpost.toml."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Configuration file [default: config/outpost.toml if it exists,
        /// else /etc/outpost/outpost.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Load and validate the configuration, zone files and keys, and check
    /// that the addresses can be bound and data_dir written, then exit.
    CheckConfig {
        /// Configuration file [default: config/outpost.toml if it exists,
        /// else /etc/outpost/outpost.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show every zone of the running server: state, serial, last contact,
    /// time left before expiry.
    Status {
        /// One zone, with all its timers, instead of the table of all.
        zone: Option<String>,
        #[command(flatten)]
        target: ControlTarget,
        /// Print the server's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the zones served, with the catalog each comes from.
    Zones {
        #[command(flatten)]
        target: ControlTarget,
    },
    /// Ask the running server for an SOA check of ZONE now.
    Refresh {
        zone: String,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        target: ControlTarget,
    },
    /// Ask the running server for a full transfer (AXFR) of ZONE now.
    Retransfer {
        zone: String,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        target: ControlTarget,
    },
    /// Send NOTIFY for ZONE to its `notify` targets now, and report what
    /// each answered.
    Notify {
        zone: String,
        #[command(flatten)]
        target: ControlTarget,
    },
    /// Make the running server re-read its configuration.
    Reload {
        #[command(flatten)]
        target: ControlTarget,
    },
    /// Ask the running server whether every zone is serving (its /health):
    /// exit status 0 when so, 1 otherwise. For container health checks.
    Health {
        #[command(flatten)]
        target: ControlTarget,
    },
    /// Check a zone's disaster readiness (offsite MX and NS, TTLs, expiry).
    Audit(Box<crate::audit::cli::AuditArgs>),
}

/// Waiting for a check's outcome.
#[derive(Debug, clap::Args)]
pub struct Wait {
    /// Wait for the check to finish and report its outcome (the serial
    /// reached, or the error); exit status 1 when it failed.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Where the running server's control endpoint is.
#[derive(Debug, clap::Args)]
pub struct ControlTarget {
    /// The server's configuration: its `control` address and `control_token`
    /// [default: config/outpost.toml if it exists, else
    /// /etc/outpost/outpost.toml].
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The control endpoint address, overriding the configuration's.
    #[arg(long)]
    pub control: Option<SocketAddr>,
    /// Bearer token, overriding the configuration's `control_token`.
    #[arg(long, env = "OUTPOST_CONTROL_TOKEN")]
    pub token: Option<String>,
}

impl ControlTarget {
    fn resolve(&self) -> Result<(SocketAddr, Option<String>), String> {
        if let Some(addr) = self.control {
            return Ok((addr, self.token.clone()));
        }
        let path = config_path(self.config.as_deref());
        let (control, token) =
            Config::load_control(&path, self.token.is_none()).map_err(|e| e.to_string())?;
        let addr = control.ok_or_else(|| {
            format!(
                "{}: no `control` address in [server]; set one or pass --control ADDR",
                path.display()
            )
        })?;
        // A server listening on all addresses is reached on loopback.
        let addr = match addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
            }
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
            }
            _ => addr,
        };
        Ok((addr, self.token.clone().or(token)))
    }
}

/// The configuration file: `--config` when given, else the first of
/// [`CONFIG_SEARCH`] that exists, else the installed location (whose
/// absence the loader then reports).
pub fn config_path(given: Option<&std::path::Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    CONFIG_SEARCH
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(CONFIG_SEARCH[1]))
}

fn control_call(target: &ControlTarget, method: &str, path: &str) -> Result<String, String> {
    let (addr, token) = target.resolve()?;
    control::request(addr, method, path, token.as_deref()).map_err(|e| e.to_string())
}

fn print_or_fail(result: Result<String, String>, print: impl FnOnce(String)) -> ExitCode {
    match result {
        Ok(body) => {
            print(body);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("outpost: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ago(now: u64, t: Option<u64>) -> String {
    match t {
        Some(t) if t <= now => format!("{} ago", human(now - t)),
        Some(t) => format!("in {}", human(t - now)),
        None => "never".into(),
    }
}

fn human(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// The status table, from the server's JSON.
fn status_table(json: &str) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("bad status JSON: {e}"))?;
    let now = crate::refresh::timers::UnixTime::now().0;
    let mut out = format!(
        "{:<28} {:<16} {:>10} {:<9} {:<14} {:<12} {}\n",
        "ZONE", "STATE", "SERIAL", "SOURCE", "LAST CONTACT", "EXPIRES IN", "LAST ERROR"
    );
    for z in v["zones"].as_array().into_iter().flatten() {
        let serial = z["serial"]
            .as_u64()
            .map_or("-".to_string(), |s| s.to_string());
        let expires = match (z["expires_in"].as_u64(), z["state"].as_str()) {
            (_, Some("expired")) | (_, Some("expired-serving")) => "expired".to_string(),
            // Answered SERVFAIL, as if expired: "never" would read as safe.
            _ if z["serial"].is_null() => "no copy".to_string(),
            (Some(s), _) => human(s),
            (None, _) => "never".to_string(),
        };
        out.push_str(&format!(
            "{:<28} {:<16} {:>10} {:<9} {:<14} {:<12} {}\n",
            z["zone"].as_str().unwrap_or("?"),
            z["state"].as_str().unwrap_or("?"),
            serial,
            z["source"].as_str().unwrap_or("-"),
            ago(now, z["last_contact"].as_u64()),
            expires,
            z["last_error"].as_str().unwrap_or("")
        ));
    }
    Ok(out)
}

/// One zone's status, a line per field.
fn zone_details(json: &str) -> Result<String, String> {
    let z: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("bad status JSON: {e}"))?;
    let now = crate::refresh::timers::UnixTime::now().0;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let when = |v: &serde_json::Value| match v.as_u64() {
        Some(t) => format!("{} ({t})", ago(now, Some(t))),
        None => "-".to_string(),
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("zone", text(&z["zone"])),
        ("state", text(&z["state"])),
        ("served", text(&z["served"])),
        ("serial", text(&z["serial"])),
        ("source", text(&z["source"])),
        ("records", text(&z["records"])),
        ("last contact", when(&z["last_contact"])),
        ("last primary", text(&z["last_primary"])),
        ("next refresh", when(&z["next_refresh"])),
        ("expires", when(&z["expires_at"])),
        ("last error", text(&z["last_error"])),
        ("catalog", text(&z["catalog"])),
    ];
    if !z["members"].is_null() {
        rows.push(("members", text(&z["members"])));
    }
    for (key, label) in [
        ("disk_error", "disk error"),
        ("copy_problem", "copy problem"),
        ("signature_warning", "signatures"),
    ] {
        if !z[key].is_null() {
            rows.push((label, text(&z[key])));
        }
    }
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{k:<13} {v}\n"));
    }
    for p in z["catalog_problems"].as_array().into_iter().flatten() {
        out.push_str(&format!("{:<13} {}\n", "catalog note", text(p)));
    }
    Ok(out)
}

/// Every zone with its catalog (or "-" for a `[[zone]]`).
fn zones_list(json: &str) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("bad status JSON: {e}"))?;
    let mut out = format!("{:<40} {:<16} {}\n", "ZONE", "STATE", "CATALOG");
    for z in v["zones"].as_array().into_iter().flatten() {
        let role = match (z["catalog"].as_str(), z["members"].as_u64()) {
            (Some(c), _) => c.to_string(),
            (None, Some(n)) => format!("(catalog zone, {n} members)"),
            (None, None) => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<40} {:<16} {role}\n",
            z["zone"].as_str().unwrap_or("?"),
            z["state"].as_str().unwrap_or("?")
        ));
    }
    Ok(out)
}

/// `refresh`/`retransfer`: asks for the check; with --wait, waits until a
/// check that began after the request has finished (a zone's checks run
/// one at a time: one running when asked is not the one asked for) and
/// reports its outcome.
fn check_and_wait(target: &ControlTarget, zone: &str, verb: &str, wait: &Wait) -> ExitCode {
    if !wait.wait {
        return print_or_fail(
            control_call(target, "POST", &format!("/zones/{zone}/{verb}")),
            |t| print!("{t}"),
        );
    }
    let status = |t: &ControlTarget| -> Result<serde_json::Value, String> {
        let body = control_call(t, "GET", &format!("/zones/{zone}"))?;
        serde_json::from_str(&body).map_err(|e| format!("bad status JSON: {e}"))
    };
    let result = (|| -> Result<String, String> {
        let started = status(target)?["checks_started"].as_u64().unwrap_or(0);
        control_call(target, "POST", &format!("/zones/{zone}/{verb}"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait.timeout);
        loop {
            let now = status(target)?;
            if now["checks"].as_u64().unwrap_or(0) > started {
                return match now["last_error"].as_str() {
                    Some(e) => Err(format!("{verb} of {zone} failed: {e}")),
                    None => Ok(format!(
                        "{verb} of {} done: serial {} from {}\n",
                        now["zone"].as_str().unwrap_or(zone),
                        now["serial"],
                        now["last_primary"].as_str().unwrap_or("-")
                    )),
                };
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "{verb} of {zone}: no outcome within {} s (it goes on in the server)",
                    wait.timeout
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    })();
    print_or_fail(result, |t| print!("{t}"))
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config } => {
            let path = config_path(config.as_deref());
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    // Logging is not set up yet: this is the only line.
                    eprintln!("outpost: {e}");
                    return ExitCode::from(2);
                }
            };
            daemon::init_logging(&config.server);
            match daemon::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // The log goes to stderr too: one line, not two.
                    tracing::error!("outpost stopped: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Status {
            zone: None,
            target,
            json,
        } => {
            let result = control_call(&target, "GET", "/status")
                .and_then(|body| if json { Ok(body) } else { status_table(&body) });
            print_or_fail(result, |t| print!("{t}"))
        }
        Command::Status {
            zone: Some(zone),
            target,
            json,
        } => {
            let result = control_call(&target, "GET", &format!("/zones/{zone}"))
                .and_then(|body| if json { Ok(body) } else { zone_details(&body) });
            print_or_fail(result, |t| print!("{t}"))
        }
        Command::Zones { target } => print_or_fail(
            control_call(&target, "GET", "/status").and_then(|body| zones_list(&body)),
            |t| print!("{t}"),
        ),
        Command::Refresh { zone, wait, target } => check_and_wait(&target, &zone, "refresh", &wait),
        Command::Retransfer { zone, wait, target } => {
            check_and_wait(&target, &zone, "retransfer", &wait)
        }
        Command::Notify { zone, target } => print_or_fail(
            control_call(&target, "POST", &format!("/zones/{zone}/notify")),
            |t| print!("{t}"),
        ),
        Command::Reload { target } => {
            print_or_fail(control_call(&target, "POST", "/reload"), |t| print!("{t}"))
        }
        Command::Health { target } => {
            print_or_fail(control_call(&target, "GET", "/health"), |t| print!("{t}"))
        }
        Command::CheckConfig { config } => {
            let config = config_path(config.as_deref());
            let errors = daemon::check(&config);
            if errors.is_empty() {
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            } else {
                for e in &errors {
                    eprintln!("{e}");
                }
                ExitCode::from(2)
            }
        }
        Command::Audit(args) => crate::audit::cli::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::status_table;

    /// The EXPIRES IN column of the one zone's row.
    fn expires(zone: serde_json::Value) -> String {
        let json = serde_json::json!({ "now": 0, "zones": [zone] }).to_string();
        let table = status_table(&json).unwrap();
        let at = table.find("EXPIRES IN").unwrap();
        let row = table.lines().nth(1).unwrap();
        row[at..at + 12].trim().to_string()
    }

    #[test]
    fn expires_in_tells_no_copy_from_never() {
        let no_copy = serde_json::json!({
            "zone": "example.org.", "state": "retrying", "serial": null,
            "source": null, "expires_in": null,
        });
        assert_eq!(expires(no_copy), "no copy");
        let seed = serde_json::json!({
            "zone": "example.com.", "state": "retrying", "serial": 1,
            "source": "seed", "expires_in": null,
        });
        assert_eq!(expires(seed), "never");
        let fresh = serde_json::json!({
            "zone": "example.com.", "state": "fresh", "serial": 1,
            "source": "transfer", "expires_in": 90000,
        });
        assert_eq!(expires(fresh), "1d1h");
        let expired = serde_json::json!({
            "zone": "example.com.", "state": "expired", "serial": 1,
            "source": "disk", "expires_in": 0,
        });
        assert_eq!(expires(expired), "expired");
    }
}
