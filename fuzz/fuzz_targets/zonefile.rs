//! The master-file parser: any text gives records or an error, never a
//! panic; what it reads, the zone builder takes or refuses.
#![no_main]

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Name::from_ascii("example.com.").unwrap();
    if let Ok(records) = outpost::zonefile::parse_str(text, &origin, "fuzz") {
        let _ = outpost::zone::Zone::build(&origin, records, &outpost::zone::Limits::default());
    }
});
