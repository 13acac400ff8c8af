//! Catalog zones (RFC 9432) against real producers: a hand-written catalog
//! on BIND 9.18 (members added and removed by NOTIFY, a group's settings, a
//! member also configured by hand, a broken version refused, a change of
//! ownership between two catalogs, a restart while the primary is down) and
//! a catalog Knot generates from its own configuration.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use common::dns::{Q, build_query, exchange_timeout, query};
use common::outpost::Outpost;
use common::peers::{Bind, Knot, Options, free_port, soa_serial};
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinDecodable;
use outpost::persist::ZonePaths;

const CAT: &str = "catalog.home.example.";
const CAT2: &str = "catalog2.home.example.";

fn member_zone(origin: &str, serial: u32) -> String {
    format!(
        "$ORIGIN {origin}
$TTL 3600
@ IN SOA ns1 hostmaster {serial} 3600 600 1209600 300
  IN NS ns1
  IN MX 10 mail
  IN MX 900 mx.partner.example.net.
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
"
    )
}

/// A catalog zone as an operator writes it for BIND: `members` are
/// `(unique id, zone)`, `extra` more property records.
fn catalog_zone(
    origin: &str,
    serial: u32,
    version: &str,
    members: &[(&str, &str)],
    extra: &str,
) -> String {
    let mut text = format!(
        "$ORIGIN {origin}
$TTL 0
@ IN SOA invalid. invalid. {serial} 3600 600 2147483646 0
  IN NS invalid.
version IN TXT \"{version}\"
"
    );
    for (id, zone) in members {
        text.push_str(&format!("{id}.zones IN PTR {zone}\n"));
    }
    text.push_str(extra);
    text
}

fn status(control: SocketAddr) -> serde_json::Value {
    let text = outpost::control::request(control, "GET", "/status", None).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn zone_status(control: SocketAddr, zone: &str) -> Option<serde_json::Value> {
    status(control)["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == zone)
        .cloned()
}

/// Whether `zone`'s SOA is answered; a lost datagram counts as not (yet).
fn served(addr: SocketAddr, zone: &str) -> bool {
    let wire = build_query(zone, RecordType::SOA, Q::udp());
    exchange_timeout(addr, &wire, false, Duration::from_millis(500))
        .ok()
        .and_then(|out| Message::from_bytes(&out).ok())
        .is_some_and(|m| m.response_code == ResponseCode::NoError && !m.answers.is_empty())
}

fn rcode(addr: SocketAddr, zone: &str) -> ResponseCode {
    query(addr, zone, RecordType::SOA, Q::udp()).response_code
}

fn config(primary: SocketAddr, control: SocketAddr, catalogs: &[&str]) -> String {
    let mut text = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"

[defaults]
min_refresh = \"1s\"
min_retry = \"1s\"

[[zone]]
name = \"hand.example\"
primaries = [\"{primary}\"]
"
    );
    for cat in catalogs {
        text.push_str(&format!(
            "
[[catalog]]
name = \"{cat}\"
primaries = [\"{primary}\"]
member_removal_grace = \"3s\"
on_expire = \"keep-serving\"

[catalog.group.slow]
min_refresh = \"2d\"
"
        ));
    }
    text
}

#[test]
fn hand_written_catalog_on_bind() {
    let outpost_port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let members = [
        ("m1", "a.example."),
        ("m2", "b.example."),
        ("m3", "hand.example."),
    ];
    let cat1 = catalog_zone(CAT, 1, "2", &members, "group.m2.zones IN TXT \"slow\"\n");
    let cat2 = catalog_zone(CAT2, 1, "2", &[], "");
    let zones: Vec<(String, String)> = [
        ("a.example.", member_zone("a.example.", 1)),
        ("b.example.", member_zone("b.example.", 1)),
        ("c.example.", member_zone("c.example.", 1)),
        ("d.example.", member_zone("d.example.", 1)),
        ("hand.example.", member_zone("hand.example.", 1)),
        (CAT, cat1),
        (CAT2, cat2),
    ]
    .into_iter()
    .map(|(z, t)| (z.to_string(), t))
    .collect();
    let zone_refs: Vec<(&str, &str)> = zones
        .iter()
        .map(|(z, t)| (z.as_str(), t.as_str()))
        .collect();
    let opts = Options {
        notify: vec![SocketAddr::from(([127, 0, 0, 1], outpost_port))],
        ixfr: true,
        ..Default::default()
    };
    let mut bind = Bind::start(&zone_refs, &[], &opts);
    let dir = tempfile::tempdir().unwrap();
    let template = config(bind.addr(), control, &[CAT, CAT2]);
    let start = Instant::now();
    let mut op = Outpost::start_on(dir.path(), &template, outpost_port);
    op.wait_ready("hand.example.", Duration::from_secs(10));
    let addr = op.addr;

    // Members come with the catalog; the hand-configured zone is served
    // once, by its [[zone]], and the catalog says so.
    op.wait_for("members a and b served", Duration::from_secs(15), || {
        served(addr, "a.example.") && served(addr, "b.example.")
    });
    eprintln!("first members served {:?} after start", start.elapsed());
    let cat = zone_status(control, CAT).unwrap();
    assert_eq!(cat["members"], 2, "{cat}");
    let problems = cat["catalog_problems"].to_string();
    assert!(
        problems.contains("hand.example. is also a [[zone]]"),
        "{problems}"
    );
    let a = zone_status(control, "a.example.").unwrap();
    assert_eq!(a["catalog"], CAT, "{a}");
    assert!(zone_status(control, "hand.example.").unwrap()["catalog"].is_null());
    // The group "slow" (min_refresh 2d) applies to b only.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let next = |z: &str| {
        zone_status(control, z).unwrap()["next_refresh"]
            .as_u64()
            .unwrap()
    };
    assert!(
        next("a.example.") < now + 2 * 3600,
        "a: SOA refresh of an hour"
    );
    assert!(
        next("b.example.") > now + 86_400,
        "b: the group's min_refresh of two days"
    );

    // Added by NOTIFY of the catalog: served within a second.
    bind.update_zone(
        CAT,
        &catalog_zone(
            CAT,
            2,
            "2",
            &[members[0], members[1], members[2], ("m4", "c.example.")],
            "group.m2.zones IN TXT \"slow\"\n",
        ),
    );
    let t = Instant::now();
    op.wait_for("c.example. added", Duration::from_secs(5), || {
        served(addr, "c.example.")
    });
    let added_in = t.elapsed();
    eprintln!("member added: served {added_in:?} after the catalog's reload on BIND");
    assert!(added_in < Duration::from_secs(2), "{added_in:?}");

    // Removed: not served within a second, files kept for the grace, then
    // deleted.
    let a_paths = ZonePaths::new(&dir.path().join("data"), &"a.example.".parse().unwrap());
    assert!(a_paths.zone_file.exists() || a_paths.journal_file.exists());
    bind.update_zone(
        CAT,
        &catalog_zone(
            CAT,
            3,
            "2",
            &[members[1], members[2], ("m4", "c.example.")],
            "group.m2.zones IN TXT \"slow\"\n",
        ),
    );
    let t = Instant::now();
    op.wait_for("a.example. removed", Duration::from_secs(5), || {
        rcode(addr, "a.example.") == ResponseCode::Refused
    });
    eprintln!(
        "member removed: REFUSED {:?} after the catalog's reload",
        t.elapsed()
    );
    assert!(a_paths.state_file.exists(), "files kept during the grace");
    op.wait_for(
        "a.example.'s files deleted after the grace",
        Duration::from_secs(10),
        || {
            !a_paths.zone_file.exists()
                && !a_paths.state_file.exists()
                && !a_paths.journal_file.exists()
        },
    );

    // A catalog of an unknown version is refused: the previous copy and
    // its members stay, and the catalog's status says why.
    bind.update_zone(
        CAT,
        &catalog_zone(
            CAT,
            4,
            "3",
            &[members[1], ("m4", "c.example."), ("m5", "d.example.")],
            "",
        ),
    );
    op.wait_for("version 3 refused", Duration::from_secs(10), || {
        zone_status(control, CAT).unwrap()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("schema version"))
    });
    assert_eq!(soa_serial(addr, CAT), Some(3));
    assert!(served(addr, "b.example.") && served(addr, "c.example."));
    assert_eq!(rcode(addr, "d.example."), ResponseCode::Refused);

    // Change of ownership: catalog 1 hands b to catalog 2 (coo), which
    // lists it; c, listed by catalog 2 without a coo, stays with catalog 1.
    bind.update_zone(
        CAT,
        &catalog_zone(
            CAT,
            5,
            "2",
            &[members[1], ("m4", "c.example.")],
            &format!("group.m2.zones IN TXT \"slow\"\ncoo.m2.zones IN PTR {CAT2}\n"),
        ),
    );
    bind.update_zone(
        CAT2,
        &catalog_zone(
            CAT2,
            2,
            "2",
            &[("x1", "b.example."), ("x2", "c.example.")],
            "",
        ),
    );
    op.wait_for(
        "b.example. owned by catalog 2",
        Duration::from_secs(10),
        || zone_status(control, "b.example.").is_some_and(|b| b["catalog"] == CAT2),
    );
    assert!(served(addr, "b.example."), "b served throughout the move");
    assert_eq!(zone_status(control, "c.example.").unwrap()["catalog"], CAT);
    let problems2 = zone_status(control, CAT2).unwrap()["catalog_problems"].to_string();
    assert!(
        problems2.contains("c.example. is also listed by catalog catalog.home.example."),
        "{problems2}"
    );

    // The home site goes dark; Outpost restarts during the outage and
    // serves every member from disk at once.
    drop(bind);
    op.terminate();
    let mut op = Outpost::start_on(dir.path(), &template, outpost_port);
    let t = Instant::now();
    op.wait_ready("b.example.", Duration::from_secs(10));
    for z in ["b.example.", "c.example.", "hand.example."] {
        assert!(served(addr, z), "{z} served from disk after the restart");
    }
    eprintln!(
        "restart with the primary down: members served {:?} after start",
        t.elapsed()
    );
    assert_eq!(zone_status(control, "b.example.").unwrap()["catalog"], CAT2);
    assert_eq!(rcode(addr, "a.example."), ResponseCode::Refused);
    assert_eq!(rcode(addr, "d.example."), ResponseCode::Refused);
}

#[test]
fn catalog_generated_by_knot() {
    let outpost_port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let names: Vec<String> = (0..20).map(|i| format!("z{i}.knot.example.")).collect();
    let texts: Vec<String> = names.iter().map(|z| member_zone(z, 1)).collect();
    let zones: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(texts.iter().map(String::as_str))
        .collect();
    let opts = Options {
        notify: vec![SocketAddr::from(([127, 0, 0, 1], outpost_port))],
        knot_catalog: Some("catalog.knot.example.".into()),
        ..Default::default()
    };
    let knot = Knot::start(&zones, &[], &opts);
    let dir = tempfile::tempdir().unwrap();
    let template = format!(
        "[server]
listen = [\"127.0.0.1:{{port}}\"]
data_dir = \"{{dir}}/data\"
control = \"{control}\"

[defaults]
min_refresh = \"1s\"
min_retry = \"1s\"

[[catalog]]
name = \"catalog.knot.example\"
primaries = [\"{}\"]
",
        knot.addr()
    );
    let mut op = Outpost::start_on(dir.path(), &template, outpost_port);
    let start = Instant::now();
    op.wait_for(
        "every member Knot lists served",
        Duration::from_secs(30),
        || names.iter().all(|z| served(op_addr(outpost_port), z)),
    );
    eprintln!(
        "{} members of Knot's generated catalog served {:?} after start",
        names.len(),
        start.elapsed()
    );
    let cat = zone_status(control, "catalog.knot.example.").unwrap();
    assert_eq!(cat["members"], names.len(), "{cat}");
    assert!(cat["catalog_problems"].is_null(), "{cat}");
    for z in &names {
        let m = query(op_addr(outpost_port), z, RecordType::MX, Q::udp());
        assert!(
            m.answers
                .iter()
                .any(|r| r.data.to_string().contains("mx.partner.example.net")),
            "{z}"
        );
    }
}

fn op_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A thousand members listed at once: the zones already served go on
/// being answered, each query promptly, while the new ones are loaded and
/// transferred.
#[test]
fn a_thousand_members_at_once() {
    const N: usize = 1000;
    let outpost_port = free_port();
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let names: Vec<String> = (0..N).map(|i| format!("m{i}.bulk.example.")).collect();
    let mut zones: Vec<(String, String)> = names
        .iter()
        .map(|z| (z.clone(), member_zone(z, 1)))
        .collect();
    zones.push(("hand.example.".into(), member_zone("hand.example.", 1)));
    zones.push((CAT.into(), catalog_zone(CAT, 1, "2", &[], "")));
    let zone_refs: Vec<(&str, &str)> = zones
        .iter()
        .map(|(z, t)| (z.as_str(), t.as_str()))
        .collect();
    let opts = Options {
        notify: vec![SocketAddr::from(([127, 0, 0, 1], outpost_port))],
        ..Default::default()
    };
    let mut bind = Bind::start(&zone_refs, &[], &opts);
    let dir = tempfile::tempdir().unwrap();
    let template = config(bind.addr(), control, &[CAT]);
    let mut op = Outpost::start_on(dir.path(), &template, outpost_port);
    op.wait_ready("hand.example.", Duration::from_secs(10));
    let addr = op.addr;
    op.wait_for("hand.example. served", Duration::from_secs(10), || {
        served(addr, "hand.example.")
    });

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut slowest, mut asked, mut lost) = (Duration::ZERO, 0u32, 0u32);
            let wire = build_query("hand.example.", RecordType::SOA, Q::udp());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                match exchange_timeout(addr, &wire, false, Duration::from_secs(1)) {
                    Ok(_) => slowest = slowest.max(t.elapsed()),
                    Err(_) => lost += 1,
                }
                asked += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            (slowest, asked, lost)
        })
    };
    let members: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, z)| (format!("u{i}"), z.clone()))
        .collect();
    let member_refs: Vec<(&str, &str)> = members
        .iter()
        .map(|(i, z)| (i.as_str(), z.as_str()))
        .collect();
    bind.update_zone(CAT, &catalog_zone(CAT, 2, "2", &member_refs, ""));
    let t = Instant::now();
    op.wait_for(
        "the thousand members listed",
        Duration::from_secs(10),
        || zone_status(control, CAT).is_some_and(|c| c["members"] == N),
    );
    let listed = t.elapsed();
    op.wait_for("every member served", Duration::from_secs(120), || {
        status(control)["zones"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|z| z["served"] == true)
            .count()
            == N + 2
    });
    let all_served = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (slowest, asked, lost) = prober.join().unwrap();
    eprintln!(
        "{N} members: in the table {listed:?} and all served {all_served:?} after the catalog's reload; \
         hand.example. meanwhile: {asked} queries, slowest answer {slowest:?}, {lost} unanswered"
    );
    assert_eq!(lost, 0, "a query for a zone already served went unanswered");
    assert!(slowest < Duration::from_millis(200), "{slowest:?}");
    for z in [&names[0], &names[N / 2], &names[N - 1]] {
        assert!(served(addr, z), "{z}");
    }
}
