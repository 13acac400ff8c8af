//! IXFR against a real primary, change after change: a dynamic zone on
//! BIND takes random `nsupdate` steps (MX, SRV and NAPTR numbers in the
//! letter ranges, case-only TXT changes, mixed-case owners, TTL-only
//! changes, RRset and single-record deletes, names added and removed
//! several labels deep), each reaching Outpost by NOTIFY and IXFR; after
//! each, the zone Outpost transfers out equals BIND's.
//!
//! The seed is printed; `OUTPOST_IXFR_SEED` replays a run.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::outpost::{Outpost, secondary_config};
use common::peers::{Bind, Options, free_port, nsupdate, soa_serial};
use common::xfr::{WireRr, axfr_set, rr_text};

const ZONE: &str = "example.com.";
const STEPS: usize = 40;

fn zone_text() -> String {
    "$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 600 1209600 300
  IN NS ns1
  IN MX 70 mx.partner.example.net.
  IN MX 10 mail
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
txt IN TXT \"Hello\"
"
    .into()
}

fn spell(rng: &mut StdRng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.random_bool(0.4) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// A 16-bit number whose octets are letters' (0x41-0x5A, 0x61-0x7A).
fn letterish(rng: &mut StdRng) -> u16 {
    let letter = |rng: &mut StdRng| {
        if rng.random_bool(0.5) {
            rng.random_range(0x41..=0x5Au16)
        } else {
            rng.random_range(0x61..=0x7Au16)
        }
    };
    if rng.random_bool(0.5) {
        letter(rng)
    } else {
        (letter(rng) << 8) | letter(rng)
    }
}

fn owner(rng: &mut StdRng) -> String {
    let labels = ["a", "b", "host", "deep", "x"];
    let depth = rng.random_range(0..=3);
    let mut name = String::new();
    for _ in 0..depth {
        name.push_str(labels[rng.random_range(0..labels.len())]);
        name.push('.');
    }
    name.push_str(ZONE);
    spell(rng, &name)
}

/// One random change as `nsupdate` commands, given the zone as it is.
fn step(rng: &mut StdRng, zone: &BTreeSet<WireRr>) -> (String, String) {
    // Records a change may delete: not the SOA, not the apex NS, not the
    // name server's address (BIND refuses to leave an in-zone NS without
    // one).
    let deletable: Vec<&WireRr> = zone
        .iter()
        .filter(|r| {
            r.1 != 6
                && !(r.1 == 2 && r.0 == b"\x07example\x03com\x00")
                && r.0 != b"\x03ns1\x07example\x03com\x00"
        })
        .collect();
    let target = |rng: &mut StdRng| {
        let t = [
            "mx.partner.example.net.",
            "mail.example.com.",
            "backup.example.org.",
        ];
        let pick = t[rng.random_range(0..t.len())];
        spell(rng, pick)
    };
    let ttl = [300, 3600, 86400, 3_600_000][rng.random_range(0..4)];
    match rng.random_range(0..9) {
        0 | 1 => {
            let o = if rng.random_bool(0.5) {
                spell(rng, ZONE)
            } else {
                owner(rng)
            };
            let line = format!("update add {o} {ttl} MX {} {}", letterish(rng), target(rng));
            ("add MX".into(), line)
        }
        2 if !deletable.is_empty() => {
            let r = deletable[rng.random_range(0..deletable.len())];
            // The record spelled as the zone has it, owner in other case.
            let owner = outpost::zone::raw::name_from_wire(&r.0).to_string();
            let rtype = hickory_proto::rr::RecordType::from(r.1);
            let line = format!(
                "update delete {} {} {}",
                spell(rng, &owner),
                outpost::zonefile::type_to_text(rtype),
                outpost::zonefile::rdata_to_text(rtype, &r.3)
            );
            ("delete one record".into(), line)
        }
        3 => {
            let t = ["Hello", "hello", "HELLO", "hELLO"];
            let pick = t[rng.random_range(0..t.len())];
            let o = spell(rng, &format!("txt.{ZONE}"));
            (
                "add TXT (case)".into(),
                format!("update add {o} {ttl} TXT \"{pick}\""),
            )
        }
        4 if !deletable.is_empty() => {
            // TTL only: the RRset again with another TTL.
            let r = deletable[rng.random_range(0..deletable.len())];
            let owner = outpost::zone::raw::name_from_wire(&r.0).to_string();
            let rtype = hickory_proto::rr::RecordType::from(r.1);
            let records: Vec<String> = zone
                .iter()
                .filter(|x| x.0 == r.0 && x.1 == r.1)
                .map(|x| {
                    format!(
                        "update add {owner} {ttl} {} {}",
                        outpost::zonefile::type_to_text(rtype),
                        outpost::zonefile::rdata_to_text(rtype, &x.3)
                    )
                })
                .collect();
            let line = format!(
                "update delete {owner} {}\n{}",
                outpost::zonefile::type_to_text(rtype),
                records.join("\n")
            );
            ("TTL only".into(), line)
        }
        5 if !deletable.is_empty() => {
            let r = deletable[rng.random_range(0..deletable.len())];
            let owner = outpost::zone::raw::name_from_wire(&r.0).to_string();
            let rtype = hickory_proto::rr::RecordType::from(r.1);
            let line = format!(
                "update delete {} {}",
                spell(rng, &owner),
                outpost::zonefile::type_to_text(rtype)
            );
            ("delete RRset".into(), line)
        }
        6 => {
            let o = owner(rng);
            let line = format!(
                "update add {o} {ttl} A 192.0.2.{}",
                rng.random_range(1..250)
            );
            ("add name".into(), line)
        }
        7 if !deletable.is_empty() => {
            let r = deletable[rng.random_range(0..deletable.len())];
            let owner = outpost::zone::raw::name_from_wire(&r.0).to_string();
            if owner.eq_ignore_ascii_case(ZONE) {
                return (
                    "add MX".into(),
                    format!("update add {ZONE} {ttl} MX 5 mx5.example.net."),
                );
            }
            ("delete name".into(), format!("update delete {owner}"))
        }
        _ => {
            let o = owner(rng);
            let line = if rng.random_bool(0.5) {
                format!(
                    "update add _smtp._tcp.{o} {ttl} SRV {} {} {} {}",
                    letterish(rng),
                    letterish(rng),
                    letterish(rng),
                    target(rng)
                )
            } else {
                let flags = ["S", "s", "A", "a"][rng.random_range(0..4)];
                format!(
                    "update add {o} {ttl} NAPTR {} {} \"{flags}\" \"SIP+D2U\" \"\" {}",
                    letterish(rng),
                    letterish(rng),
                    target(rng)
                )
            };
            ("add SRV/NAPTR".into(), line)
        }
    }
}

#[test]
fn random_updates_reach_outpost_by_ixfr_exactly() {
    let seed: u64 = std::env::var("OUTPOST_IXFR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("OUTPOST_IXFR_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let outpost_port = free_port();
    let bind = Bind::start(
        &[(ZONE, &zone_text())],
        &[],
        &Options {
            notify: vec![SocketAddr::from(([127, 0, 0, 1], outpost_port))],
            // BIND answers an IXFR with the whole zone when the
            // differences outweigh it, which a small zone makes common.
            bind_options: "max-ixfr-ratio unlimited;".into(),
            bind_zone_options: "allow-update { 127.0.0.1; }; check-integrity no; check-mx ignore; check-names ignore;"
                .into(),
            ..Options::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = secondary_config(bind.addr(), None, "allow_transfer = [\"127.0.0.1\"]\n");
    let mut op = Outpost::start_on(dir.path(), &cfg, outpost_port);
    op.wait_ready(ZONE, Duration::from_secs(10));

    let mut history = Vec::new();
    for i in 0..STEPS {
        let before = axfr_set(bind.addr(), ZONE);
        let (kind, commands) = step(&mut rng, &before);
        history.push(format!("step {i} ({kind}):\n{commands}"));
        nsupdate(bind.addr(), ZONE, &commands);
        let want = soa_serial(bind.addr(), ZONE).unwrap();
        let start = Instant::now();
        while soa_serial(op.addr, ZONE) != Some(want) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "step {i}: serial {want} not at Outpost within 10 s\n{}\nOutpost log:\n{}",
                history.join("\n"),
                op.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (primary, secondary) = (axfr_set(bind.addr(), ZONE), axfr_set(op.addr, ZONE));
        if primary != secondary {
            let only_p: Vec<String> = primary.difference(&secondary).map(rr_text).collect();
            let only_s: Vec<String> = secondary.difference(&primary).map(rr_text).collect();
            panic!(
                "seed {seed}, step {i}: zones differ\nonly at BIND: {only_p:#?}\nonly at Outpost: {only_s:#?}\nsteps:\n{}",
                history.join("\n")
            );
        }
    }
    // The changes came as IXFR (a change BIND sends whole is allowed, but
    // the point of the test is the incremental path).
    let log = op.log_text();
    let ixfrs = log.matches("method=IXFR").count();
    assert!(
        ixfrs >= STEPS * 3 / 4,
        "only {ixfrs} of {STEPS} changes came by IXFR:\n{log}"
    );
    // And the copy on disk, zone file plus journal, is what was served.
    let served = axfr_set(op.addr, ZONE);
    drop(op);
    drop(bind);
    let cfg_down = secondary_config(
        "127.0.0.1:9".parse().unwrap(),
        None,
        "allow_transfer = [\"127.0.0.1\"]\n",
    );
    let op = Outpost::start_on(dir.path(), &cfg_down, outpost_port);
    let start = Instant::now();
    while soa_serial(op.addr, ZONE).is_none() {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(axfr_set(op.addr, ZONE), served, "after a restart from disk");
}
