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
    tune_allocator();
    let cli = outpost::cli::Cli::parse();
    outpost::cli::run(cli)
}

/// glibc's allocator, left to its defaults, keeps what a big transfer
/// freed: each thread that allocates gets an arena of its own (the copy
/// in service was built on one thread, its successor on another, the
/// difference between them on a third), and every large block freed raises
/// the size below which blocks come from those arenas instead of the
/// kernel. A 200,000-record zone changing in every record then grew the
/// process to eight times what one copy takes (tests/history_bytes.rs).
/// One arena, and large blocks always mapped and unmapped, hold it at about
/// two and a quarter (the copy in service, its successor, and the
/// difference). `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` in the
/// environment are left to win.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; called before
        // any thread starts.
        unsafe {
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            }
        }
    }
}
