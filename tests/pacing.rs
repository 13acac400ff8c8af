//! Refresh pacing: however many zones one primary serves, Outpost asks it
//! about at most `max_refresh_checks_per_primary` of them at once.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::outpost::Outpost;
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinDecodable;

/// Zones asked for within `window` by a server with no copy of any, at a
/// primary that accepts every connection and never answers (each check
/// then holds its slot). With no copy a check goes straight to AXFR over
/// TCP, so the zones are read from the transfer requests.
fn zones_asked(per_primary: Option<usize>, zones: usize, window: Duration) -> usize {
    let primary = TcpListener::bind("127.0.0.1:0").unwrap();
    let primary_addr: SocketAddr = primary.local_addr().unwrap();
    primary.set_nonblocking(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = "[server]
listen = [\"127.0.0.1:{port}\"]
data_dir = \"{dir}/data\"
"
    .to_string();
    if let Some(n) = per_primary {
        config.push_str(&format!("max_refresh_checks_per_primary = {n}\n"));
    }
    for i in 0..zones {
        config.push_str(&format!(
            "\n[[zone]]\nname = \"z{i}.example\"\nprimaries = [\"{primary_addr}\"]\n"
        ));
    }
    let mut op = Outpost::start_in(dir.path(), &config);
    op.wait_ready("z0.example.", Duration::from_secs(10));
    // Zones with nothing to serve yet are one warning, not one each.
    let log = op.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("no copy on disk"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains(&format!("zones={zones}")), "{log}");
    let mut asked = BTreeSet::new();
    // Held open, unanswered, until the window is over.
    let mut open = Vec::new();
    let start = Instant::now();
    while start.elapsed() < window {
        match primary.accept() {
            Ok((mut conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut len = [0u8; 2];
                if conn.read_exact(&mut len).is_ok() {
                    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if conn.read_exact(&mut msg).is_ok()
                        && let Ok(m) = Message::from_bytes(&msg)
                    {
                        asked.extend(m.queries.iter().map(|q| q.name().to_string()));
                    }
                }
                open.push(conn);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    asked.len()
}

#[test]
fn checks_per_primary_are_capped() {
    // Within 2 s, a transfer unanswered is neither given up (the idle
    // timeout, 30 s) nor followed by the next zone's.
    let window = Duration::from_secs(2);
    let capped = zones_asked(Some(3), 40, window);
    let default = zones_asked(None, 40, window);
    eprintln!("zones asked about within {window:?}: cap 3 -> {capped}, default (16) -> {default}");
    assert_eq!(capped, 3);
    assert_eq!(default, 16);
}
