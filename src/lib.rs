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
