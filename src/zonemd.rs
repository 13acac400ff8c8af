//! ZONEMD (RFC 8976): checking a transferred zone against the digest its
//! publisher put at the apex, before the copy is put in service.
//!
//! Only the SIMPLE scheme with SHA-384 or SHA-512 exists; a ZONEMD with
//! anything else cannot be checked and is treated as absent (§4). The
//! RRSIG over the ZONEMD is not validated here: Outpost has no trust
//! anchors, and a validating resolver checks what it is served anyway.

use std::cmp::Ordering;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use sha2::{Digest, Sha384, Sha512};
use tracing::{info, warn};

use crate::config::ZonemdMode;
use crate::rr;
use crate::zone::dnssec::{canonical_cmp, expiration, serial_time_before, unwrap_serial_time};
use crate::zone::key::key_of;

/// The SIMPLE scheme (RFC 8976 §5.2).
pub const SCHEME_SIMPLE: u8 = 1;
pub const HASH_SHA384: u8 = 1;
pub const HASH_SHA512: u8 = 2;
/// The ZONEMD type code (hickory has no name for it).
pub const ZONEMD: u16 = 63;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ZonemdError {
    #[error("zone {zone}: ZONEMD check: no SOA record at the apex")]
    NoSoa { zone: String },
    #[error(
        "zone {zone}: ZONEMD serial {zonemd_serial} does not match the SOA serial {soa_serial}"
    )]
    SerialMismatch {
        zone: String,
        soa_serial: u32,
        zonemd_serial: u32,
    },
    #[error("zone {zone}: more than one ZONEMD record with scheme {scheme} and hash {hash}")]
    Duplicate { zone: String, scheme: u8, hash: u8 },
    #[error(
        "zone {zone}: ZONEMD digest mismatch (scheme {scheme}, hash {hash}): the zone says {expected}, the data gives {computed}"
    )]
    Mismatch {
        zone: String,
        scheme: u8,
        hash: u8,
        expected: String,
        computed: String,
    },
    #[error("zone {zone}: zonemd = \"require\" but the zone has no ZONEMD record we can check")]
    Required { zone: String },
}

/// What a successful check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZonemdOutcome {
    /// The digest of this scheme and hash algorithm matched.
    Verified { scheme: u8, hash: u8 },
    /// The zone has no ZONEMD at its apex.
    Absent,
    /// The zone has ZONEMD records, none of a scheme and hash we support.
    Unsupported,
}

/// A ZONEMD RDATA (RFC 8976 §2.2).
struct Zonemd<'a> {
    serial: u32,
    scheme: u8,
    hash: u8,
    digest: &'a [u8],
}

fn parse_zonemd(r: &Record) -> Option<Zonemd<'_>> {
    let RData::Unknown { rdata, .. } = &r.data else {
        return None;
    };
    let w = &rdata.anything;
    if w.len() < 6 {
        return None;
    }
    Some(Zonemd {
        serial: u32::from_be_bytes([w[0], w[1], w[2], w[3]]),
        scheme: w[4],
        hash: w[5],
        digest: &w[6..],
    })
}

fn supported(scheme: u8, hash: u8) -> bool {
    scheme == SCHEME_SIMPLE && matches!(hash, HASH_SHA384 | HASH_SHA512)
}

/// Verifies the apex ZONEMD of a zone given as its records (RFC 8976 §4).
/// Pure: nothing is logged.
pub fn verify(origin: &Name, records: &[Record]) -> Result<ZonemdOutcome, ZonemdError> {
    let zone = || origin.to_string();
    let soa_serial = records
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == *origin => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| ZonemdError::NoSoa { zone: zone() })?;
    let zonemds: Vec<Zonemd<'_>> = records
        .iter()
        .filter(|r| u16::from(r.record_type()) == ZONEMD && r.name == *origin)
        .filter_map(parse_zonemd)
        .collect();
    if zonemds.is_empty() {
        return Ok(ZonemdOutcome::Absent);
    }
    for (i, a) in zonemds.iter().enumerate() {
        if zonemds[..i]
            .iter()
            .any(|b| b.scheme == a.scheme && b.hash == a.hash)
        {
            return Err(ZonemdError::Duplicate {
                zone: zone(),
                scheme: a.scheme,
                hash: a.hash,
            });
        }
    }
    let candidates: Vec<&Zonemd<'_>> = zonemds
        .iter()
        .filter(|z| supported(z.scheme, z.hash))
        .collect();
    if candidates.is_empty() {
        return Ok(ZonemdOutcome::Unsupported);
    }
    let mut first_error = None;
    for z in candidates {
        if z.serial != soa_serial {
            first_error.get_or_insert(ZonemdError::SerialMismatch {
                zone: zone(),
                soa_serial,
                zonemd_serial: z.serial,
            });
            continue;
        }
        let computed = digest(origin, records, z.hash).expect("supported hash");
        if computed == z.digest {
            return Ok(ZonemdOutcome::Verified {
                scheme: z.scheme,
                hash: z.hash,
            });
        }
        first_error.get_or_insert(ZonemdError::Mismatch {
            zone: zone(),
            scheme: z.scheme,
            hash: z.hash,
            expected: data_encoding::HEXLOWER.encode(z.digest),
            computed: data_encoding::HEXLOWER.encode(&computed),
        });
    }
    Err(first_error.expect("at least one candidate"))
}

/// The SIMPLE-scheme digest (RFC 8976 §3.3) of the zone's records with hash
/// algorithm `hash`; `None` for an unsupported algorithm.
pub fn digest(origin: &Name, records: &[Record], hash: u8) -> Option<Vec<u8>> {
    let mut hasher: Box<dyn sha2::digest::DynDigest> = match hash {
        HASH_SHA384 => Box::new(Sha384::new()),
        HASH_SHA512 => Box::new(Sha512::new()),
        _ => return None,
    };
    let origin_key = key_of(origin);
    let mut rrs: Vec<CanonicalRr> = Vec::with_capacity(records.len());
    for r in records {
        // Out-of-zone data is not part of the zone (§3.3.1); glue and
        // occluded data below cuts are.
        if !origin.zone_of(&r.name) {
            continue;
        }
        let rtype = r.record_type();
        let key = key_of(&r.name);
        let at_apex = *key == *origin_key;
        let mut rdata = rr::rdata_to_wire(&r.data);
        // The apex ZONEMD RRset and its signatures are excluded (§3.3.1);
        // a ZONEMD elsewhere is ordinary data.
        if at_apex
            && (u16::from(rtype) == ZONEMD
                || (rtype == RecordType::RRSIG
                    && rdata.len() >= 2
                    && u16::from_be_bytes([rdata[0], rdata[1]]) == ZONEMD))
        {
            continue;
        }
        crate::canonical::canonicalize_rdata(u16::from(rtype), &mut rdata);
        rrs.push((key, rtype.into(), r.dns_class.into(), r.ttl, rdata));
    }
    rrs.sort_by(|a, b| {
        canonical_cmp(&a.0, &b.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.4.cmp(&b.4))
    });
    // Duplicate RRs are digested once (§3.3.1.1).
    rrs.dedup_by(|a, b| {
        canonical_cmp(&a.0, &b.0) == Ordering::Equal && a.1 == b.1 && a.2 == b.2 && a.4 == b.4
    });
    for (key, rtype, class, ttl, rdata) in &rrs {
        hasher.update(key);
        hasher.update(&rtype.to_be_bytes());
        hasher.update(&class.to_be_bytes());
        hasher.update(&ttl.to_be_bytes());
        hasher.update(&(rdata.len() as u16).to_be_bytes());
        hasher.update(rdata);
    }
    Some(hasher.finalize().to_vec())
}

/// Owner key, type, class, TTL, canonical RDATA.
type CanonicalRr = (Box<[u8]>, u16, u16, u32, Vec<u8>);

/// The checks run on a transferred zone before it goes into service: the
/// ZONEMD digest as `mode` says (an error rejects the transfer), and a
/// warning when its signatures expire, or have, before the zone would.
/// Logs what it finds.
pub fn check_transfer(
    origin: &Name,
    records: &[Record],
    mode: ZonemdMode,
) -> Result<(), ZonemdError> {
    warn_signature_expiry(origin, records, unix_now());
    check_transfer_quiet(origin, records, mode)
}

/// [`check_transfer`] without the signature warning.
fn check_transfer_quiet(
    origin: &Name,
    records: &[Record],
    mode: ZonemdMode,
) -> Result<(), ZonemdError> {
    let outcome = match mode {
        ZonemdMode::Ignore => return Ok(()),
        ZonemdMode::Verify | ZonemdMode::Require => verify(origin, records)?,
    };
    match outcome {
        ZonemdOutcome::Verified { scheme, hash } => {
            info!(zone = %origin, scheme, hash, "ZONEMD digest verified");
            Ok(())
        }
        ZonemdOutcome::Absent | ZonemdOutcome::Unsupported if mode == ZonemdMode::Require => {
            Err(ZonemdError::Required {
                zone: origin.to_string(),
            })
        }
        ZonemdOutcome::Unsupported => {
            warn!(zone = %origin, "ZONEMD present but of no supported scheme and hash; not checked");
            Ok(())
        }
        ZonemdOutcome::Absent => Ok(()),
    }
}

/// [`check_transfer`] on a built snapshot. The records are made again as
/// hickory records only when there is a ZONEMD to check: a zone without
/// one costs nothing here.
pub fn check_zone(zone: &crate::zone::Zone, mode: ZonemdMode) -> Result<(), ZonemdError> {
    let origin = zone.origin();
    let now = unix_now();
    let expire = match &zone.soa().data {
        RData::SOA(soa) => soa.expire.max(0) as u64,
        _ => 0,
    };
    log_signature_expiry(
        origin,
        expiry_verdict(zone.earliest_signature_expiration(now), expire, now),
        now,
    );
    if mode == ZonemdMode::Ignore {
        return Ok(());
    }
    let has_zonemd = zone
        .apex_node()
        .rrset(hickory_proto::rr::RecordType::from(ZONEMD))
        .is_some();
    if !has_zonemd {
        return match mode {
            ZonemdMode::Require => Err(ZonemdError::Required {
                zone: origin.to_string(),
            }),
            _ => Ok(()),
        };
    }
    let records: Vec<Record> = zone.records().collect();
    check_transfer_quiet(origin, &records, mode)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How a zone's signatures stand against its own lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureExpiry {
    /// Unsigned, or every signature outlives the SOA expire interval.
    Fine,
    /// The earliest signature expires at this Unix time, before the zone
    /// would expire if the primary went away now.
    BeforeZoneExpiry(u64),
    /// A signature expired at this Unix time: validators see it as bogus.
    Expired(u64),
}

/// Compares the earliest RRSIG expiration in `records` with `now` and the
/// SOA expire interval. Pure.
pub fn signature_expiry(origin: &Name, records: &[Record], now: u64) -> SignatureExpiry {
    let earliest = records
        .iter()
        .filter_map(expiration)
        .reduce(|a, b| if serial_time_before(b, a) { b } else { a });
    let earliest = earliest.map(|e| unwrap_serial_time(e, now));
    let expire = records
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == *origin && r.dns_class == DNSClass::IN => {
                Some(soa.expire.max(0) as u64)
            }
            _ => None,
        })
        .unwrap_or(0);
    expiry_verdict(earliest, expire, now)
}

/// The verdict for the earliest signature expiration (Unix seconds) and
/// the SOA expire interval.
fn expiry_verdict(earliest: Option<u64>, expire: u64, now: u64) -> SignatureExpiry {
    let Some(earliest) = earliest else {
        return SignatureExpiry::Fine;
    };
    if earliest <= now {
        SignatureExpiry::Expired(earliest)
    } else if earliest < now + expire {
        SignatureExpiry::BeforeZoneExpiry(earliest)
    } else {
        SignatureExpiry::Fine
    }
}

fn warn_signature_expiry(origin: &Name, records: &[Record], now: u64) {
    log_signature_expiry(origin, signature_expiry(origin, records, now), now);
}

fn log_signature_expiry(origin: &Name, verdict: SignatureExpiry, now: u64) {
    match verdict {
        SignatureExpiry::Fine => {}
        SignatureExpiry::BeforeZoneExpiry(at) => warn!(
            zone = %origin, expires_at = at, in_seconds = at - now,
            "RRSIGs in this copy expire before the zone's SOA expire interval runs out"
        ),
        SignatureExpiry::Expired(at) => warn!(
            zone = %origin, expired_at = at,
            "RRSIGs in this copy have already expired: validators will find it bogus"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_expiry_against_soa_expire() {
        let origin = Name::from_ascii("example.").unwrap();
        let soa = hickory_proto::rr::rdata::SOA::new(
            Name::from_ascii("ns1.example.").unwrap(),
            Name::from_ascii("admin.example.").unwrap(),
            1,
            3600,
            600,
            14 * 86400,
            300,
        );
        let sig = |exp: u32| {
            let mut w = vec![0, 1, 13, 1, 0, 0, 14, 16];
            w.extend_from_slice(&exp.to_be_bytes());
            w.extend_from_slice(&(exp - 86400).to_be_bytes());
            w.extend_from_slice(&[0, 1, 7]);
            w.extend_from_slice(b"example\x00sig");
            rr::record(origin.clone(), RecordType::RRSIG, 3600, &w).unwrap()
        };
        let now = 1_800_000_000u64;
        let zone = |exps: &[u32]| {
            let mut v = vec![Record::from_rdata(
                origin.clone(),
                3600,
                RData::SOA(soa.clone()),
            )];
            v.extend(exps.iter().map(|&e| sig(e)));
            v
        };
        let day = 86400;
        assert_eq!(
            signature_expiry(&origin, &zone(&[]), now),
            SignatureExpiry::Fine
        );
        assert_eq!(
            signature_expiry(&origin, &zone(&[now as u32 + 30 * day]), now),
            SignatureExpiry::Fine
        );
        assert_eq!(
            signature_expiry(
                &origin,
                &zone(&[now as u32 + 30 * day, now as u32 + day]),
                now
            ),
            SignatureExpiry::BeforeZoneExpiry(now + day as u64)
        );
        assert_eq!(
            signature_expiry(
                &origin,
                &zone(&[now as u32 + 30 * day, now as u32 - day]),
                now
            ),
            SignatureExpiry::Expired(now - day as u64)
        );
    }

    #[test]
    fn rdata_names_lowercased_per_type() {
        let mut mx = b"\x00\x0a\x04MAIL\x07Example\x00".to_vec();
        crate::canonical::canonicalize_rdata(15, &mut mx);
        assert_eq!(mx, b"\x00\x0a\x04mail\x07example\x00");
        // NSEC's next name keeps its case (RFC 6840 §5.1).
        let mut nsec = b"\x04MAIL\x07Example\x00\x00\x01\x40".to_vec();
        let before = nsec.clone();
        crate::canonical::canonicalize_rdata(47, &mut nsec);
        assert_eq!(nsec, before);
        let mut rrsig = vec![0u8; 18];
        rrsig.extend_from_slice(b"\x07EXAMPLE\x00SIG");
        crate::canonical::canonicalize_rdata(46, &mut rrsig);
        assert_eq!(&rrsig[18..], b"\x07example\x00SIG");
    }
}
