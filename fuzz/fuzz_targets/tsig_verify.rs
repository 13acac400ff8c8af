//! TSIG verification of a request against a key set: any message gives
//! "unsigned", a verified key or a rejection, never a panic.
#![no_main]

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;
use outpost::tsig::{Algorithm, Key, verify_request};
use outpost::wire::Message;

fuzz_target!(|data: &[u8]| {
    let keys = [
        Key::new(Name::from_ascii("xfr-key.").unwrap(), Algorithm::HmacSha256, b"0123456789abcdef0123456789abcdef".to_vec()),
        Key::new(Name::from_ascii("md5-key.").unwrap(), Algorithm::HmacMd5, b"secret".to_vec()),
    ];
    if let Ok(parsed) = Message::parse(data) {
        // The clock: the message's own time (so the MAC is what is checked)
        // and far from it.
        let now = parsed.tsig.as_ref().map_or(0, |t| t.time_signed);
        let _ = verify_request(data, &parsed, &keys, now);
        let _ = verify_request(data, &parsed, &keys, now.wrapping_add(100_000));
    }
});
