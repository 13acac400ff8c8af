//! `outpost`: arguments in, exit code out. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = outpost::cli::Cli::parse();
    outpost::cli::run(cli)
}
