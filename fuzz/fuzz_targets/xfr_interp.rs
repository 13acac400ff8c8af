//! The transfer interpreter: a stream of response messages (the input cut
//! into messages by 2-octet lengths, as over TCP) for an AXFR and an IXFR
//! of example.com.: a zone, diffs or an error, never a panic.
//!
//! Applying IXFR differences against a model is `ixfr_apply`'s.
#![no_main]

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;
use outpost::xfr::interp::{Interpreter, Limits, Request};

fn run(data: &[u8], request: Request) {
    let zone = Name::from_ascii("example.com.").unwrap();
    let limits = Limits {
        max_records: 10_000,
        max_transfer_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut it = Interpreter::new(zone, 7, request, limits);
    let mut rest = data;
    while rest.len() >= 2 {
        let len = (usize::from(rest[0]) << 8 | usize::from(rest[1])).min(rest.len() - 2);
        let msg = &rest[2..2 + len];
        rest = &rest[2 + len..];
        if it.feed(msg).is_err() || it.is_done() {
            break;
        }
    }
    let _ = it.finish();
}

fuzz_target!(|data: &[u8]| {
    run(data, Request::Axfr);
    run(data, Request::Ixfr { serial: 1 });
});
