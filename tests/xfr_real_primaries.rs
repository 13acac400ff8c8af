//! The transfer client against real primaries: BIND, Knot and NSD, with and
//! without TSIG, every HMAC algorithm, and zones large enough that the answer
//! spans many messages.

mod common;

use std::time::Duration;

use common::peers::{Bind, Knot, Nsd, Options, Secondary, Server};
use common::{TestZone, comparable};
use hickory_proto::rr::Name;
use outpost::tsig::{Algorithm, Key};
use outpost::xfr::client::{AxfrResult, axfr, ixfr, query_soa};
use outpost::xfr::interp::{Limits, TransferData};

const ALGORITHMS: [Algorithm; 6] = [
    Algorithm::HmacMd5,
    Algorithm::HmacSha1,
    Algorithm::HmacSha224,
    Algorithm::HmacSha256,
    Algorithm::HmacSha384,
    Algorithm::HmacSha512,
];

fn key(name: &str, alg: Algorithm) -> Key {
    // Distinct, full-length secrets per algorithm.
    let secret = (0..alg.output_len() as u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(alg.output_len() as u8))
        .collect();
    Key::new(Name::from_ascii(name).unwrap(), alg, secret)
}

fn tsig_opts(k: &Key) -> Options {
    Options {
        transfer_key: Some(k.name.to_ascii()),
        ..Options::default()
    }
}

async fn transfer(server: &Server, zone: &TestZone, k: Option<&Key>) -> AxfrResult {
    axfr(
        server.addr(),
        &zone.name(),
        k,
        Limits::default(),
        Duration::from_secs(120),
        Duration::from_secs(20),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log_text()))
}

/// Transfers and checks the exact record set, returning the result.
async fn transfer_and_check(server: &Server, zone: &TestZone, k: Option<&Key>) -> AxfrResult {
    let r = transfer(server, zone, k).await;
    assert_eq!(
        r.records.len(),
        zone.len(),
        "{:?}: record count",
        server.flavor
    );
    let records = r.records.raw().to_records().unwrap();
    assert_eq!(
        records[0].record_type(),
        hickory_proto::rr::RecordType::SOA,
        "SOA comes first"
    );
    let got = comparable(&records);
    if got != zone.expected {
        let diff: Vec<_> = got
            .iter()
            .zip(&zone.expected)
            .filter(|(a, b)| a != b)
            .take(3)
            .collect();
        panic!(
            "{:?}: record set differs from the zone file; first differences: {diff:?}",
            server.flavor
        );
    }
    r
}

#[tokio::test]
async fn bind_tsig_sha256_large_zone_and_update() {
    let k = key("xfr-key.", Algorithm::HmacSha256);
    let zone = TestZone::new("example.com", 2024010101, 50_000);
    let mut bind = Bind::start(
        &[("example.com", &zone.text)],
        std::slice::from_ref(&k),
        &tsig_opts(&k),
    );

    let soa = query_soa(bind.addr(), &zone.name(), Some(&k), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(soa.serial, 2024010101);

    let r = transfer_and_check(&bind, &zone, Some(&k)).await;
    assert_eq!(r.signed_messages, r.messages, "BIND signs every message");
    assert!(
        r.messages > 20,
        "50,000 records should take many messages, got {}",
        r.messages
    );
    assert!(r.bytes > 1_000_000, "{} octets", r.bytes);

    // New serial and content: the SOA query and the next transfer see it.
    let zone2 = TestZone::new("example.com", 2024010102, 1_000);
    bind.update_zone("example.com", &zone2.text);
    bind.wait_serial("example.com", 2024010102, Duration::from_secs(20));
    let soa = query_soa(bind.addr(), &zone.name(), Some(&k), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(soa.serial, 2024010102);
    transfer_and_check(&bind, &zone2, Some(&k)).await;
}

#[tokio::test]
async fn every_algorithm_against_bind_and_knot() {
    let zone = TestZone::new("algs.test", 7, 2_000);
    for alg in ALGORITHMS {
        let k = key(&format!("k-{alg}."), alg);
        for flavor in ["bind", "knot"] {
            let zones = [("algs.test", zone.text.as_str())];
            let keys = std::slice::from_ref(&k);
            let server = match flavor {
                "bind" => Bind::start(&zones, keys, &tsig_opts(&k)),
                _ => Knot::start(&zones, keys, &tsig_opts(&k)),
            };
            let soa = query_soa(
                server.addr(),
                &zone.name(),
                Some(&k),
                Duration::from_secs(2),
            )
            .await
            .unwrap_or_else(|e| panic!("{flavor} {alg}: {e}"));
            assert_eq!(soa.serial, 7, "{flavor} {alg}");
            let r = transfer_and_check(&server, &zone, Some(&k)).await;
            assert!(r.messages > 1, "{flavor} {alg}: {} message(s)", r.messages);
        }
    }
}

#[tokio::test]
async fn knot_tsig_large_zone() {
    let k = key("knot-key.", Algorithm::HmacSha512);
    let zone = TestZone::new("big.test", 99, 50_000);
    let knot = Knot::start(
        &[("big.test", &zone.text)],
        std::slice::from_ref(&k),
        &tsig_opts(&k),
    );
    let r = transfer_and_check(&knot, &zone, Some(&k)).await;
    assert!(r.messages > 20, "{} message(s)", r.messages);
}

#[tokio::test]
async fn nsd_large_zone_without_and_with_tsig() {
    let zone = TestZone::new("nsd.test", 3, 50_000);
    let nsd = Nsd::start(&[("nsd.test", &zone.text)], &[], &Options::default());
    let soa = query_soa(nsd.addr(), &zone.name(), None, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(soa.serial, 3);
    let r = transfer_and_check(&nsd, &zone, None).await;
    assert!(r.messages > 20, "{} message(s)", r.messages);
    drop(nsd);

    // The same with TSIG: a long signed stream from a third implementation.
    let k = key("nsd-key.", Algorithm::HmacSha1);
    let zone = TestZone::new("nsd.test", 4, 20_000);
    let nsd = Nsd::start(
        &[("nsd.test", &zone.text)],
        std::slice::from_ref(&k),
        &tsig_opts(&k),
    );
    let r = transfer_and_check(&nsd, &zone, Some(&k)).await;
    assert_eq!(r.signed_messages, r.messages, "NSD 4.6 signs every message");
}

#[tokio::test]
async fn wrong_secret_wrong_key_and_no_key() {
    let k = key("xfr-key.", Algorithm::HmacSha256);
    let zone = TestZone::new("example.com", 5, 10);
    let bind = Bind::start(
        &[("example.com", &zone.text)],
        std::slice::from_ref(&k),
        &tsig_opts(&k),
    );

    let mut wrong = k.clone();
    wrong.secret[0] ^= 0xff;
    let e = axfr(
        bind.addr(),
        &zone.name(),
        Some(&wrong),
        Limits::default(),
        Duration::from_secs(10),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "zone example.com: AXFR from {} failed: TSIG BADSIG",
            bind.addr()
        )
    );
    let e = query_soa(
        bind.addr(),
        &zone.name(),
        Some(&wrong),
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "zone example.com: SOA query from {} failed: TSIG BADSIG",
            bind.addr()
        )
    );

    let unknown = key("nobody.", Algorithm::HmacSha256);
    let e = axfr(
        bind.addr(),
        &zone.name(),
        Some(&unknown),
        Limits::default(),
        Duration::from_secs(10),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().ends_with("failed: TSIG BADKEY"), "{e}");

    // Unsigned request where the key is required: refused.
    let e = axfr(
        bind.addr(),
        &zone.name(),
        None,
        Limits::default(),
        Duration::from_secs(10),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("REFUSED"), "{e}");
}

#[tokio::test]
async fn limits_stop_a_large_transfer() {
    let zone = TestZone::new("big.test", 1, 5_000);
    let nsd = Nsd::start(&[("big.test", &zone.text)], &[], &Options::default());
    let limits = Limits {
        max_records: 1_000,
        ..Limits::default()
    };
    let e = axfr(
        nsd.addr(),
        &zone.name(),
        None,
        limits,
        Duration::from_secs(30),
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("over the limit of 1000 records"),
        "{e}"
    );
}

/// EDNS EXPIRE (RFC 7314) is answered by secondaries: a Knot secondary
/// pulling from BIND reports the remaining expire time.
#[tokio::test]
async fn expire_option_from_a_secondary() {
    let zone = TestZone::new("exp.test", 11, 20);
    let bind = Bind::start(&[("exp.test", &zone.text)], &[], &Options::default());
    let opts = Options {
        secondaries: vec![Secondary {
            zone: "exp.test".into(),
            primary: bind.addr(),
            key: None,
        }],
        ..Options::default()
    };
    let mut knot = Knot::start(&[], &[], &opts);
    knot.wait_serial("exp.test", 11, Duration::from_secs(20));
    let soa = query_soa(knot.addr(), &zone.name(), None, Duration::from_secs(2))
        .await
        .unwrap();
    let expire = soa.expire.expect("Knot secondary sends EDNS EXPIRE");
    assert!((86_000..=86_400).contains(&expire), "expire {expire}");
    let r = transfer_and_check(&knot, &zone, None).await;
    assert!(r.expire.is_some_and(|e| e <= 86_400), "{:?}", r.expire);
}

/// IXFR (RFC 1995) against primaries that keep zone history: a diff, "up to
/// date", and the full-zone fallback for a serial the primary never had.
#[tokio::test]
async fn ixfr_from_bind_and_knot() {
    let v1 = TestZone::new("ixfr.test", 10, 100);
    let v2 = TestZone::new("ixfr.test", 11, 105);
    let opts = Options {
        ixfr: true,
        ..Options::default()
    };
    for flavor in ["bind", "knot"] {
        let zones = [("ixfr.test", v1.text.as_str())];
        let mut server = match flavor {
            "bind" => Bind::start(&zones, &[], &opts),
            _ => Knot::start(&zones, &[], &opts),
        };
        let old_soa = transfer(&server, &v1, None)
            .await
            .records
            .raw()
            .to_records()
            .unwrap()[0]
            .clone();
        server.update_zone("ixfr.test", &v2.text);
        server.wait_serial("ixfr.test", 11, Duration::from_secs(20));
        let run = |soa: hickory_proto::rr::Record| {
            let addr = server.addr();
            let zone = v1.name();
            async move {
                ixfr(
                    addr,
                    &zone,
                    &soa,
                    None,
                    Limits::default(),
                    Duration::from_secs(30),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|e| panic!("{flavor}: {e}"))
            }
        };

        let t = run(old_soa.clone()).await;
        let TransferData::Incremental(diffs) = t.data else {
            panic!("{flavor}: expected a diff, got {:?}", t.data);
        };
        assert_eq!(diffs.len(), 1, "{flavor}");
        assert!(
            diffs[0].deleted.is_empty(),
            "{flavor}: {:?}",
            diffs[0].deleted
        );
        let added = comparable(&diffs[0].added.to_records().unwrap());
        let expected: Vec<_> = v2
            .expected
            .iter()
            .filter(|r| !v1.expected.contains(r) && r.1 != 6)
            .cloned()
            .collect();
        assert_eq!(added, expected, "{flavor}");
        let new_soa = diffs[0].new_soa.clone();

        let t = run(new_soa.clone()).await;
        assert_eq!(
            t.data,
            TransferData::UpToDate(Box::new(new_soa)),
            "{flavor}"
        );

        // A serial older than any history: the primary sends the whole zone.
        let mut ancient = old_soa.clone();
        if let hickory_proto::rr::RData::SOA(s) = &mut ancient.data {
            s.serial = 1;
        }
        let t = run(ancient).await;
        let TransferData::Full(records) = t.data else {
            panic!("{flavor}: expected the full zone, got {:?}", t.data);
        };
        assert_eq!(
            comparable(&records.raw().to_records().unwrap()),
            v2.expected,
            "{flavor}"
        );
    }
}
