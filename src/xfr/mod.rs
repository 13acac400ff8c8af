//! Zone transfers (AXFR now, IXFR next): a pure interpreter and the network client.

pub mod client;
pub mod interp;
pub mod ixfr;
pub mod out;
