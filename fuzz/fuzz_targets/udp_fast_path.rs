//! The UDP fast path as a worker runs it: parse, answer (cache on and
//! off) from the bundled zone, signed and unsigned, with cookies checked
//! and a slipped (rate-limited) form made of every answer. Any datagram
//! gives an answer of at most the client's limit, or goes to the hickory
//! path; never a panic. A cached answer equals a fresh one.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;
use outpost::cookie::{Cookies, RESPONSE_LEN};
use outpost::fast::{self, AnswerCache, Cached, Reply};
use outpost::metrics::{Events, PendingCounts};
use outpost::store::{ZoneEntry, ZoneTable};
use outpost::zone::key::WireName;
use outpost::zone::{Limits, Zone};

struct World {
    table: ZoneTable,
    events: Events,
    cookies: Cookies,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let text = include_str!("../../zones/example.com.zone");
        let origin = Name::from_ascii("example.com.").unwrap();
        let records = outpost::zonefile::parse_str(text, &origin, "fuzz").unwrap();
        let zone = Zone::build(&origin, records, &Limits::default()).unwrap();
        let entry = Arc::new(ZoneEntry::new(origin));
        entry.swap(Arc::new(zone));
        World {
            table: ZoneTable::new([entry]),
            events: Events::default(),
            cookies: Cookies::new(&Default::default()),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut name = WireName::new();
    let Some(mut q) = fast::parse(data, &mut name) else {
        return;
    };
    let mut options = Vec::new();
    if let Some(c) = q.cookie {
        let mut out = [0u8; RESPONSE_LEN];
        w.cookies.check(c, IpAddr::from([192, 0, 2, 1]), 1_700_000_000, &mut out);
        options.extend_from_slice(&[0, 10, 0, RESPONSE_LEN as u8]);
        options.extend_from_slice(&out);
    }
    if q.edns.is_none() {
        options.clear();
    }
    q.options_len = options.len();
    let mut fresh = vec![0u8; fast::MAX_ANSWER];
    let reply = fast::answer_cached(&q, &w.table, &w.events, &mut PendingCounts::default(), None, &options, &mut fresh);
    let Reply::Ready(len, _) = reply else { return };
    assert!(len <= q.limit(), "{len} octets over the limit {}", q.limit());
    let mut cache = AnswerCache::new(16, 1 << 16);
    let mut key = fast::cache::Key::default();
    fast::set_cache_key(&mut key, &q, fast::MAX_ANSWER);
    let mut out = vec![0u8; fast::MAX_ANSWER];
    for _ in 0..3 {
        let slot = cache.prefetch_slot(&key);
        let cached = Cached { cache: &mut cache, key: &key, slot };
        match fast::answer_cached(&q, &w.table, &w.events, &mut PendingCounts::default(), Some(cached), &options, &mut out) {
            Reply::Ready(l, _) => assert_eq!(&out[..l], &fresh[..len], "cached answer differs"),
            Reply::Slow => panic!("the cached path declined what the fresh one answered"),
        }
    }
    let cookie = q.cookie.map(|_| &options[4..4 + RESPONSE_LEN]);
    let slipped = outpost::rrl::slip(&mut fresh, len, cookie.is_some(), cookie);
    let most = 12 + q.question.len() + 11 + 4 + RESPONSE_LEN;
    assert!(slipped.is_some_and(|l| l <= most), "slipped answer over {most} octets");
});
