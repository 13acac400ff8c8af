//! Whole zones compared by transfer: a zone as the set of its records in a
//! form two servers must agree on.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use outpost::canonical;
use outpost::zone::Limits;
use outpost::zone::raw::RawRr;

/// A record as both sides must agree on it: lowercase owner in wire form,
/// type, TTL, canonical RDATA (numbers and strings exact).
pub type WireRr = (Vec<u8>, u16, u32, Vec<u8>);

/// The comparable form of one record in wire form.
pub fn wire_rr(r: &RawRr<'_>) -> WireRr {
    (
        r.owner.to_ascii_lowercase(),
        r.rtype,
        r.ttl,
        canonical::rdata_key(r.rtype, r.rdata).into_owned(),
    )
}

/// The zone `zone` as `addr` transfers it out by AXFR, unsigned; panics
/// if the transfer fails.
pub fn axfr_set(addr: SocketAddr, zone: &str) -> BTreeSet<WireRr> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(outpost::xfr::client::axfr(
            addr,
            &Name::from_ascii(zone).unwrap(),
            None,
            Limits::default(),
            Duration::from_secs(30),
            Duration::from_secs(10),
        ))
        .unwrap_or_else(|e| panic!("AXFR of {zone} from {addr}: {e}"));
    r.records.raw().iter().map(|r| wire_rr(&r)).collect()
}

/// A record in master-file form, for failure messages.
pub fn rr_text(r: &WireRr) -> String {
    let owner = outpost::zone::raw::name_from_wire(&r.0);
    let rtype = RecordType::from(r.1);
    format!(
        "{owner} {} {} {}",
        r.2,
        outpost::zonefile::type_to_text(rtype),
        outpost::zonefile::rdata_to_text(rtype, &r.3)
    )
}
