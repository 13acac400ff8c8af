//! The message parser of `src/wire.rs` (transfers, NOTIFY, TSIG): any
//! input gives a message or an error, never a panic; what it parsed
//! re-reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost::wire::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let _ = m.rcode();
        let _ = m.edns_expire();
        for r in m.answers.iter().chain(&m.authority).chain(&m.additional) {
            let _ = r.to_record();
        }
    }
});
