//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::daemon;

#[derive(Debug, Parser)]
#[command(
    name = "outpost",
    version,
    about = "Authoritative offsite secondary DNS server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Configuration file.
        #[arg(long, short, default_value = "config/outpost.toml")]
        config: PathBuf,
    },
    /// Load and validate the configuration, zone files and keys, then exit.
    CheckConfig {
        #[arg(long, short, default_value = "config/outpost.toml")]
        config: PathBuf,
    },
    /// Check a zone's disaster readiness (offsite MX and NS, TTLs, expiry).
    Audit(Box<crate::audit::cli::AuditArgs>),
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("outpost: {e}");
                    return ExitCode::from(2);
                }
            };
            daemon::init_logging(&config.server);
            match daemon::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("outpost: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { config } => {
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
