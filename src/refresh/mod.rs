//! Refresh: per-zone SOA timers, the scheduler that wakes zones when their
//! timers are due, and (later) the transfer orchestration between them.

pub mod scheduler;
pub mod timers;
