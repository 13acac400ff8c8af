//! Outpost: an authoritative offsite secondary DNS server.
//!
//! Data flows one way: primary → transfer → snapshot → store → answers, with
//! timers, persistence and control on the side.

pub mod rr;
pub mod tsig;
pub mod wire;
pub mod xfr;
