//! Outpost: an authoritative offsite secondary DNS server.
//!
//! Data flows one way: primary → transfer → snapshot → store → answers, with
//! timers, persistence and control on the side.

pub mod audit;
pub mod canonical;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod control;
pub mod cookie;
pub mod daemon;
pub mod fast;
pub mod hostcheck;
pub mod journal;
pub mod metrics;
pub mod notify;
pub mod persist;
pub mod ratelog;
pub mod refresh;
pub mod rr;
pub mod rrl;
pub mod serve;
pub mod store;
pub mod tcp;
pub mod tsig;
pub mod udp;
pub mod wire;
pub mod xfr;
pub mod zone;
pub mod zonefile;
pub mod zonemd;

/// Asks the CPU to fetch the memory at `p` ahead of use. A hint only: no
/// effect on what the program computes.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
