//! `outpost`: arguments in, exit code out. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Reaching the file size limit (RLIMIT_FSIZE) raises SIGXFSZ, whose
    // default action ends the process. A write that fails must be an error
    // the server reports and retries (the copy stays in service; status,
    // health and metrics say it is not on disk), not a death: ignored, the
    // signal leaves the write failing with EFBIG instead.
    // SAFETY: SIG_IGN runs no handler code; set before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = outpost::cli::Cli::parse();
    outpost::cli::run(cli)
}
