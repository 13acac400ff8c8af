"""Query streams beyond the looping mix (issues 13 and 16), and the Outpost
variants run beside the default one.

dnsperf reads a query file and, at its end, starts again from the top
(unless `-n 1`). The looping mix (zonegen.write_queries) is such a file:
every question comes back. The streams here do not loop:

  nx-unique     random labels under the zone, every one different: a
                random-subdomain flood, all NXDOMAIN. A new file for every
                round (and the warm-up), so no server is asked a name twice.
  names-unique  every name of a zone asked once, in random order: a zone of
                its own, as many names as one round asks for, and every
                server started afresh for every round, so that no server
                process is asked a name twice.
  zipf          names of the benchmark zone drawn with a Zipf distribution
                (rank k with weight 1 / k^s, the ranks a random permutation
                of the names): repeats as real traffic does, a new draw
                for every round.

Each of these files is read once (`dnsperf -n 1`): when a server answers
faster than the file lasts, its run ends early instead of looping, and the
report says so.
"""

import itertools
import os
import random
from dataclasses import dataclass, field

import zonegen

ZONE = zonegen.ZONE
M48 = (1 << 48) - 1

# name: (label in the reports, TOML appended to Outpost's configuration).
VARIANTS = {
    "default": ("Outpost", ""),
    "no-cache": ("Outpost (no cache)", "[cache]\nsize = 0\n"),
    "rrl-off": ("Outpost (RRL off)", "[rrl]\nresponses_per_second = 0\n"),
    # Every answer accounted (the benchmark's loopback client not exempt)
    # at a rate that one client never reaches (Outpost caps a rate at
    # 2^20 a second per prefix and answer; the whole run is ~3 x 10^5).
    "rrl-accounted": ("Outpost (RRL accounted)", "[rrl]\nresponses_per_second = 100000000\nexempt = []\n"),
}
VARIANT_TEXT = {
    "default": "as shipped: answer cache on (64 MiB), RRL on (200/s per prefix and answer) with loopback "
               "in `exempt`, so each answer's check ends at the exemption",
    "no-cache": "`[cache] size = 0`: every answer looked up and encoded; RRL as shipped",
    "rrl-off": "`[rrl] responses_per_second = 0`: no limiter at all; cache as shipped",
    "rrl-accounted": "`[rrl] responses_per_second = 100000000`, `exempt = []`: every answer goes through the "
                     "full RRL accounting (hash, table, balance) and none is ever limited; cache as shipped",
}

STREAMS = ("mix", "nx-unique", "names-unique", "zipf")
STREAM_TITLE = {
    "mix": "mix (looped)",
    "nx-unique": "NXDOMAIN, never repeating",
    "names-unique": "zone names, each once",
    "zipf": "Zipf over zone names",
}


@dataclass
class Stream:
    name: str
    # Query file of each round; index 0 is the warm-up.
    files: list = field(default_factory=list)
    # dnsperf -n: None to loop, 1 to read each file once.
    maxruns: int = None
    # Every server restarted (fresh directory) before each round.
    restart: bool = False
    # The zone it asks about (names-unique has its own).
    zone: object = None
    lines: int = 0
    text: str = ""

    @property
    def title(self):
        return STREAM_TITLE[self.name]


def name_query(i):
    """The question for generated name i (zonegen's block layout): hosts
    and aliases with type A (positive, CNAME + A), the delegation point
    and its glue name with type A (referrals)."""
    s = i % zonegen.BLOCK
    if s < zonegen.HOST_SLOTS:
        return f"h{i}.{ZONE} A"
    if s < zonegen.CUT_SLOT:
        return f"c{i}.{ZONE} A"
    if s == zonegen.CUT_SLOT:
        return f"d{i}.{ZONE} A"
    return f"ns.d{i - 1}.{ZONE} A"


def name_mix_text():
    return "70 % host A, 20 % alias A (CNAME + A), 10 % referral (5 % at the cut, 5 % its glue name)"


def _write(path, lines):
    with open(path, "w", buffering=1 << 20) as f:
        for chunk in range(0, len(lines), 1 << 16):
            f.write("\n".join(lines[chunk:chunk + (1 << 16)]) + "\n")


def write_nx_unique(path, start, count, prefix="nx"):
    """Queries `start` .. `start + count` of a sequence of NXDOMAIN names
    that never repeats: label i is a bijection of i on 48 bits (an odd
    multiplier), so no two indices give the same name."""
    mul, add = 0x9E3779B97F4B, 0x5DEECE66D
    _write(path, [f"{prefix}{(j * mul + add) & M48:012x}.{ZONE} A" for j in range(start, start + count)])


def write_names_unique(path, names, seed):
    """Every generated name of a `names`-name zone once, in random order."""
    order = list(range(names))
    random.Random(seed).shuffle(order)
    _write(path, [name_query(i) for i in order])


def write_zipf(path, names, count, exponent, seed, rank_seed=7):
    """`count` draws over the zone's `names` generated names, rank k with
    weight 1 / k^exponent; the ranks are a fixed random permutation of the
    names (the same for every round), the draws differ with `seed`."""
    perm = list(range(names))
    random.Random(rank_seed).shuffle(perm)
    cum = list(itertools.accumulate(1.0 / (k ** exponent) for k in range(1, names + 1)))
    draws = random.Random(seed).choices(perm, cum_weights=cum, k=count)
    _write(path, [name_query(i) for i in draws])
    return len(set(draws))


def zipf_shares(names, exponent, top=(1, 100, 1000)):
    """The share of the draws that go to the `top` most popular names."""
    w = [1.0 / (k ** exponent) for k in range(1, names + 1)]
    total = sum(w)
    return {t: sum(w[:t]) / total for t in top if t <= names}


def build(name, args, workdir, zone, log, unique_zone=None):
    """The Stream `name`: writes its query files under `workdir`."""
    rounds = args.rounds
    lines = args.stream_qps * args.seconds
    warm = args.stream_qps
    d = os.path.join(workdir, f"stream-{name}")
    os.makedirs(d, exist_ok=True)
    st = Stream(name=name, zone=zone, lines=lines)
    if name == "nx-unique":
        st.maxruns = 1
        start = 0
        for r in range(rounds + 1):
            n = warm if r == 0 else lines
            p = os.path.join(d, f"round{r}.queries")
            write_nx_unique(p, start, n)
            st.files.append(p)
            start += n
        st.text = (f"random labels `nx<12 hex digits>` under the zone, all NXDOMAIN, every name different over the "
                   f"whole run (a new file of {lines:,} names for every round and the warm-up's {warm:,}, read once "
                   "with `dnsperf -n 1`): no name is asked twice of any server")
    elif name == "names-unique":
        st.maxruns = 1
        st.restart = True
        st.zone = unique_zone
        st.lines = unique_zone.names
        # The warm-up asks NXDOMAIN names of its own, not the zone's.
        wp = os.path.join(d, "warmup.queries")
        write_nx_unique(wp, 0, warm, prefix="nw")
        p = os.path.join(d, "names.queries")
        write_names_unique(p, unique_zone.names, seed=11)
        st.files = [wp] + [p] * rounds
        st.text = (f"each of the {unique_zone.names:,} generated names of a zone of their own "
                   f"({unique_zone.records:,} records) asked once, in random order ({name_mix_text()}), read "
                   "once (`dnsperf -n 1`); every server is started afresh (new process, empty directory, the "
                   "zone transferred again, then idle) before each round, and warmed up with never-repeating "
                   "NXDOMAIN names, so no server process is asked a name twice")
    elif name == "zipf":
        st.maxruns = 1
        distinct = []
        for r in range(rounds + 1):
            n = warm if r == 0 else lines
            p = os.path.join(d, f"round{r}.queries")
            distinct.append(write_zipf(p, zone.names, n, args.zipf_exponent, seed=100 + r))
            st.files.append(p)
        shares = zipf_shares(zone.names, args.zipf_exponent)
        st.text = (f"Zipf (exponent {args.zipf_exponent:g}) over the {zone.names:,} names of the benchmark zone "
                   f"({name_mix_text()}), ranks a fixed random permutation of the names; a new draw of "
                   f"{lines:,} for every round (read once, `dnsperf -n 1`), {min(distinct[1:]):,} to "
                   f"{max(distinct[1:]):,} distinct names in each; the top name takes "
                   f"{100 * shares[1]:.1f} % of the queries, the top 100 {100 * shares.get(100, 1):.0f} %, "
                   f"the top 1,000 {100 * shares.get(1000, 1):.0f} %")
    else:
        raise ValueError(name)
    log(f"stream {name}: {len(set(st.files))} query files of up to {st.lines:,} lines")
    return st
