"""Benchmark zone and dnsperf query files.

The zone is built from blocks of 20 owner names so that its shape (and the
answer mix) is the same at every size:

  slots 0-13   host  h<i>   A, and AAAA too when the slot is even (70 %)
  slots 14-17  alias c<i>   CNAME to an in-zone host               (20 %)
  slot  18     cut   d<i>   NS ns.d<i> + NS ns2.<zone>             (10 %,
  slot  19     glue  ns.d<i-1>  A                                  with 19)

Per block: 20 names, 28 records (7 x A, 7 x A+AAAA, 4 CNAME, 2 NS, 1 glue
A). On top of that the apex (SOA, NS, the disaster MX set, TXT), the name
servers and mail hosts, and the wildcard *.users.
"""

import random
from dataclasses import dataclass

ZONE = "example.com."
SERIAL = 2026010101
BLOCK = 20
RECORDS_PER_BLOCK = 28
HOST_SLOTS = 14
CNAME_SLOTS = range(14, 18)
CUT_SLOT = 18

# The query mix, in percent; the query file has exactly these shares.
MIX = [
    ("A (positive)", 55),
    ("AAAA (positive)", 10),
    ("MX at apex (+ additional A/AAAA)", 5),
    ("CNAME to in-zone A", 5),
    ("wildcard A", 5),
    ("referral (below a cut, + glue)", 5),
    ("NODATA (TXT at a host)", 5),
    ("NXDOMAIN (random name)", 10),
]
assert sum(p for _, p in MIX) == 100

APEX = f"""$ORIGIN {ZONE}
$TTL 3600
@       IN SOA ns1 hostmaster ( {SERIAL} 3600 900 3628800 3600 )
        3600000 IN NS ns1
        3600000 IN NS ns2
; The disaster MX set: all three with the same long TTL.
        3600000 IN MX 2   mail
        3600000 IN MX 10  mail2
        3600000 IN MX 900 mx.partner.example.net.
        IN TXT "v=spf1 mx -all"
ns1     3600000 IN A    192.0.2.53
ns2     3600000 IN A    198.51.100.53
mail    3600000 IN A    192.0.2.25
mail    3600000 IN AAAA 2001:db8::25
mail2   3600000 IN A    198.51.100.25
mail2   3600000 IN AAAA 2001:db8::26
*.users IN A    192.0.2.99
"""
APEX_RECORDS = 15


@dataclass
class ZoneInfo:
    path: str
    names: int
    records: int
    serial: int


def names_for_records(records):
    """Generated names giving about this many records in all."""
    return max(BLOCK, (records - APEX_RECORDS) * BLOCK // RECORDS_PER_BLOCK)


def _ip4(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _ip6(i):
    return f"2001:db8:{(i >> 16) & 0xffff:x}::{i & 0xffff:x}"


def _host_for(i):
    """A host index for alias i, spread over the zone but deterministic."""
    j = (i * 2654435761) % max(1, i // BLOCK + 1) * BLOCK
    return j + (i % HOST_SLOTS)


def write_zone(path, names):
    """Writes a zone with `names` generated owner names (rounded up to a
    whole block); returns its ZoneInfo."""
    blocks = max(1, -(-names // BLOCK))
    records = APEX_RECORDS
    with open(path, "w", buffering=1 << 20) as f:
        f.write(APEX)
        out = []
        for b in range(blocks):
            base = b * BLOCK
            for s in range(HOST_SLOTS):
                i = base + s
                out.append(f"h{i} IN A {_ip4(i)}\n")
                if s % 2 == 0:
                    out.append(f"h{i} IN AAAA {_ip6(i)}\n")
            for s in CNAME_SLOTS:
                i = base + s
                out.append(f"c{i} IN CNAME h{_host_for(i)}\n")
            i = base + CUT_SLOT
            out.append(f"d{i} IN NS ns.d{i}\nd{i} IN NS ns2\nns.d{i} IN A {_ip4(i)}\n")
            records += RECORDS_PER_BLOCK
            if len(out) > 20000:
                f.write("".join(out))
                out.clear()
        f.write("".join(out))
    return ZoneInfo(path=path, names=blocks * BLOCK, records=records, serial=SERIAL)


def _rand_label(rng):
    return "%012x" % rng.getrandbits(48)


def _query(kind, rng, blocks):
    b = rng.randrange(blocks) * BLOCK
    if kind.startswith("A ("):
        return f"h{b + rng.randrange(HOST_SLOTS)}.{ZONE} A"
    if kind.startswith("AAAA"):
        return f"h{b + 2 * rng.randrange(HOST_SLOTS // 2)}.{ZONE} AAAA"
    if kind.startswith("MX"):
        return f"{ZONE} MX"
    if kind.startswith("CNAME"):
        return f"c{b + rng.choice(CNAME_SLOTS)}.{ZONE} A"
    if kind.startswith("wildcard"):
        return f"u{_rand_label(rng)}.users.{ZONE} A"
    if kind.startswith("referral"):
        return f"www.d{b + CUT_SLOT}.{ZONE} A"
    if kind.startswith("NODATA"):
        return f"h{b + rng.randrange(HOST_SLOTS)}.{ZONE} TXT"
    if kind.startswith("NXDOMAIN"):
        # Labels start with "nx", which no generated name does.
        return f"nx{_rand_label(rng)}.{ZONE} A"
    raise ValueError(kind)


def write_queries(path, zone, count, nxdomain_only=False, seed=1):
    """A dnsperf query file of `count` lines with exactly the MIX shares
    (or only NXDOMAIN names), shuffled with a fixed seed."""
    rng = random.Random(seed)
    blocks = zone.names // BLOCK
    mix = [("NXDOMAIN (random name)", 100)] if nxdomain_only else MIX
    kinds = []
    for kind, pct in mix:
        kinds += [kind] * (count * pct // 100)
    rng.shuffle(kinds)
    with open(path, "w", buffering=1 << 20) as f:
        f.write("".join(_query(k, rng, blocks) + "\n" for k in kinds))
    return len(kinds)


def mix_text():
    return ", ".join(f"{kind} {pct} %" for kind, pct in MIX)


# --many-zones: small zones, all alike but for their name and one address.
SMALL_SERIAL = 2026010101
SMALL_ZONE = """$TTL 3600
@       IN SOA ns1 hostmaster ( {serial} 3600 600 1209600 3600 )
        IN NS  ns1
        IN NS  ns2
; The disaster MX set.
        IN MX  10  mail
        IN MX  900 mx.partner.example.net.
ns1     IN A   192.0.2.53
ns2     IN A   198.51.100.53
mail    IN A   192.0.2.25
www     IN A   {www}
ftp     IN A   {www}
"""
SMALL_RECORDS = 10


def small_zone_name(i):
    return f"zone{i}.example"


def write_small_zones(directory, count, serial=SMALL_SERIAL):
    """`count` zone files zone0.example ... in `directory` (each: SOA, two
    NS, MX 10 mail and MX 900 mx.partner.example.net., five A records);
    returns [(name, path)]."""
    out = []
    for i in range(count):
        name = small_zone_name(i)
        path = f"{directory}/{name}.zone"
        with open(path, "w") as f:
            f.write(f"$ORIGIN {name}.\n" + SMALL_ZONE.format(serial=serial, www=_ip4(i)))
        out.append((name, path))
    return out
