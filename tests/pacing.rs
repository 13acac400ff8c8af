//! Refresh pacing: however many zones one primary serves, Outpost asks it
//! about at most `max_refresh_checks_per_primary` of them at once.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::outpost::Outpost;
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinDecodable;

/// Zones asked about by SOA query within `window`, at a primary that
/// never answers (each check then holds its slot for its whole timeout).
fn zones_asked(per_primary: Option<usize>, zones: usize, window: Duration) -> usize {
    let primary = UdpSocket::bind("127.0.0.1:0").unwrap();
    let primary_addr: SocketAddr = primary.local_addr().unwrap();
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
    primary
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut asked = BTreeSet::new();
    let start = Instant::now();
    let mut buf = [0u8; 512];
    while start.elapsed() < window {
        if let Ok((n, _)) = primary.recv_from(&mut buf)
            && let Ok(m) = Message::from_bytes(&buf[..n])
        {
            asked.extend(m.queries.iter().map(|q| q.name().to_string()));
        }
    }
    asked.len()
}

#[test]
fn checks_per_primary_are_capped() {
    // Within 2 s, a query unanswered is neither given up (3 s) nor
    // followed by the next zone's.
    let window = Duration::from_secs(2);
    let capped = zones_asked(Some(3), 40, window);
    let default = zones_asked(None, 40, window);
    eprintln!("zones asked about within {window:?}: cap 3 -> {capped}, default (16) -> {default}");
    assert_eq!(capped, 3);
    assert_eq!(default, 16);
}
