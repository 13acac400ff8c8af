"""The servers under test (Knot, NSD, Outpost), the floor (a UDP reflector)
and the primary (BIND), each a foreground child process on 127.0.0.1 with
all its files in one directory, stopped by PID."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import struct
import time
import urllib.request

from soa import dig_serial, tcp_soa_query, udp_soa_query

ZONE = "example.com"
CLK_TCK = os.sysconf("SC_CLK_TCK")

_next_port = 20000 + (os.getpid() % 500) * 20


def free_port():
    """A port free for UDP and TCP on 127.0.0.1, below the ephemeral range
    (so dnsperf's source ports never take it)."""
    global _next_port
    for _ in range(2000):
        p = _next_port
        _next_port = 20000 + (_next_port - 20000 + 1) % 12000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            try:
                u.bind(("127.0.0.1", p))
                t.bind(("127.0.0.1", p))
            except OSError:
                continue
        return p
    raise RuntimeError("no free port on 127.0.0.1 in 20000-32000")


def need(tool, package):
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"):
        p = os.path.join(d, tool)
        if os.access(p, os.X_OK):
            return p
    found = shutil.which(tool)
    if found:
        return found
    sys.exit(f"bench: `{tool}` not found: install the Debian package `{package}`")


def _stat(pid):
    """(ppid, utime+stime+cutime+cstime in ticks) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    # After the command: state ppid ... utime(12th) stime cutime cstime.
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def process_tree(root):
    """root and all its descendants (NSD forks its server processes)."""
    parent = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            st = _stat(int(e))
            if st:
                parent[int(e)] = st[0]
    tree = {root} if root in parent else set()
    grew = True
    while grew:
        grew = False
        for pid, pp in parent.items():
            if pp in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    """Proportional set size of a process (/proc/PID/smaps_rollup): its
    resident pages, each shared one divided among the processes mapping
    it, so the sum over NSD's forked processes counts their copy-on-write
    zone data once. 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """One running server. `threads` is the number of query-serving threads
    (or processes, for NSD); `cpu` pins it (and every thread or process it
    makes) to that CPU."""

    def __init__(self, name, workdir, threads=1, cpu=None):
        self.name = name
        # "Outpost (no cache)" lives in outpost-no-cache.
        self.dir = os.path.join(workdir, re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))
        os.makedirs(self.dir, exist_ok=True)
        self.threads = threads
        self.cpu = cpu
        self.port = free_port()
        self.proc = None
        self.log = os.path.join(self.dir, "stderr.log")
        self.started_at = None

    # Subclasses: fill in the config, return the command line.
    def command(self):
        raise NotImplementedError

    def pids(self):
        """Every process making up the server now."""
        if self.proc is None:
            return set()
        pids = process_tree(self.proc.pid)
        pidfile = getattr(self, "pidfile", None)
        if pidfile:
            try:
                with open(pidfile) as f:
                    pids |= process_tree(int(f.read().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        return pids

    def start(self):
        cmd = self.command()
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu)] + cmd
        logf = open(self.log, "wb")
        self.started_at = time.monotonic()
        # A session of its own: a terminal's Ctrl-C reaches only the harness,
        # which then stops the servers itself, in order.
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=30):
        text = ""
        for path in [self.log] + getattr(self, "extra_logs", []):
            try:
                with open(path, errors="replace") as f:
                    lines = f.read().splitlines()[-n:]
                text += f"--- {path}\n" + "\n".join(lines) + "\n"
            except OSError:
                pass
        return text

    def wait_serial(self, serial, timeout, hint=""):
        """Waits until `dig +short` shows the zone's SOA with `serial`."""
        end = time.monotonic() + timeout
        seen = None
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before serving "
                                   f"{ZONE} serial {serial}\n{self.log_tail()}")
            seen = dig_serial(self.port, ZONE)
            if seen == serial:
                return time.monotonic() - self.started_at
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} on port {self.port} did not serve {ZONE} serial {serial} "
                           f"within {timeout:.0f} s (serves {seen}){hint}\n{self.log_tail()}")

    def cpu_seconds(self):
        """CPU time (user + system) of all the server's processes and the
        children they reaped."""
        total = 0
        for pid in self.pids():
            st = _stat(pid)
            if st:
                total += st[1]
        return total / CLK_TCK

    def cpu_split(self):
        """(user, system) CPU seconds of all the server's processes and
        the children they reaped."""
        user = system = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            user += int(fields[11]) + int(fields[13])
            system += int(fields[12]) + int(fields[14])
        return user / CLK_TCK, system / CLK_TCK

    def tree_pss_kib(self):
        """Memory of all the server's processes now: the sum of their PSS."""
        return sum(pss_kib(p) for p in self.pids())

    def peak_rss_kib(self):
        """VmHWM of the server's largest process (NSD's processes share
        most pages copy-on-write, so a sum would overcount)."""
        return max((vm_hwm_kib(p) for p in self.pids()), default=0)

    def stop(self):
        if self.proc is None:
            return
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        end = time.monotonic() + 5
        while time.monotonic() < end and any(_stat(p) for p in pids - {self.proc.pid}):
            time.sleep(0.1)
        for pid in pids:
            if _stat(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def version(self):
        raise NotImplementedError


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _knot_head(d, port, threads, primary_port, server_extra=""):
    """The parts of a Knot secondary's configuration every mode shares:
    server, control, log, database, the primary and the NOTIFY ACL."""
    return f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: {threads}
    tcp-workers: {threads}
{server_extra}control:
    listen: "{d}/knot.sock"
log:
  - target: stderr
    any: notice
database:
    storage: "{d}"
remote:
  - id: primary
    address: 127.0.0.1@{primary_port}
acl:
  - id: notify_in
    address: 127.0.0.1
    action: notify
"""


class Bind(Server):
    """The primary: serves the generated zone, transfers to 127.0.0.1."""

    def __init__(self, workdir, zonefile, dynamic=False):
        super().__init__("BIND", workdir)
        self.zonefile = zonefile
        # dynamic: the zone takes UPDATE from 127.0.0.1 (nsupdate) and keeps
        # its differences for IXFR out (--ixfr).
        self.dynamic = dynamic

    # At most this many transfers out at once (BIND's default is 10).
    transfers_out = 20
    # BIND's own: 150 TCP clients, a listen queue of 10.
    tcp_options = ""

    def zone_stanzas(self):
        update = " allow-update { 127.0.0.1; };" if self.dynamic else ""
        return f'zone "{ZONE}" {{ type primary; file "{self.zonefile}";{update} }};\n'

    def command(self):
        d = self.dir
        conf = os.path.join(d, "named.conf")
        _write(conf, f"""options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    allow-transfer {{ 127.0.0.1; }};
    transfer-source 127.0.0.1;
    notify no;
    transfers-out {self.transfers_out};{self.tcp_options}
}};
logging {{ category default {{ default_stderr; }}; }};
{self.zone_stanzas()}""")
        # -g: foreground, log to stderr, no privilege drop.
        return [need("named", "bind9"), "-g", "-c", conf]

    def version(self):
        return subprocess.run([need("named", "bind9"), "-v"], capture_output=True, text=True).stdout.strip()


class Knot(Server):
    """persist: keep changes in the journal and write the zone file every
    10 minutes (Outpost's default `zonefile_sync`), instead of holding the
    zone in memory only."""

    def __init__(self, workdir, primary_port, threads=1, cpu=None, persist=False):
        super().__init__("Knot", workdir, threads, cpu)
        self.primary_port = primary_port
        self.persist = persist

    def command(self):
        d = self.dir
        conf = os.path.join(d, "knot.conf")
        # Without persist: held in memory only, no zone file written back,
        # no journal.
        _write(conf, _knot_head(d, self.port, self.threads, self.primary_port,
                                "    background-workers: 1\n") + f"""template:
  - id: default
    storage: "{d}"
    zonefile-sync: {600 if self.persist else -1}
    zonefile-load: none
    journal-content: {"changes" if self.persist else "none"}
    semantic-checks: off
zone:
  - domain: {ZONE}
    master: primary
    acl: [notify_in]
""")
        # Foreground is knotd's default.
        return [need("knotd", "knot"), "-c", conf]

    def version(self):
        return subprocess.run([need("knotd", "knot"), "-V"], capture_output=True, text=True).stdout.strip()


class Nsd(Server):
    """persist: write the zone file every 10 minutes (`zonefiles-write`,
    as Outpost's default `zonefile_sync`) instead of never."""

    def __init__(self, workdir, primary_port, threads=1, cpu=None, persist=False):
        super().__init__("NSD", workdir, threads, cpu)
        self.primary_port = primary_port
        self.persist = persist
        self.pidfile = os.path.join(self.dir, "nsd.pid")
        self.extra_logs = [os.path.join(self.dir, "nsd.log")]

    def command(self):
        d = self.dir
        conf = os.path.join(d, "nsd.conf")
        # rrl-ratelimit 0: response rate limiting off (dnsperf would trip
        # it); reuseport: one socket per server process, as Knot does per
        # UDP worker.
        _write(conf, f"""server:
    ip-address: 127.0.0.1
    port: {self.port}
    do-ip6: no
    server-count: {self.threads}
    tcp-count: 100
    reuseport: yes
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    pidfile: "{self.pidfile}"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    verbosity: 1
    zonefiles-write: {600 if self.persist else 0}
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "{ZONE}"
    zonefile: "{ZONE}.bak"
    request-xfr: 127.0.0.1@{self.primary_port} NOKEY
    allow-notify: 127.0.0.1 NOKEY
""")
        # -d: foreground.
        return [need("nsd", "nsd"), "-d", "-c", conf]

    def version(self):
        out = subprocess.run([need("nsd", "nsd"), "-v"], capture_output=True, text=True)
        return (out.stdout + out.stderr).splitlines()[0].strip()


class Outpost(Server):
    """mode "seed": serves the generated zone file as its seed_file, no
    primaries. mode "secondary": transfers it from the primary."""

    def __init__(self, workdir, binary, mode, primary_port, zonefile, threads=1, cpu=None, extra="",
                 label="Outpost", control=False):
        super().__init__(label, workdir, threads, cpu)
        self.extra = extra
        self.binary = binary
        self.mode = mode
        self.primary_port = primary_port
        self.zonefile = zonefile
        # control: an HTTP control endpoint on a loopback port, for
        # metrics() (an idle listener on the runtime: no query goes there).
        self.control_port = free_port() if control else None

    def metrics(self, timeout=2.0):
        """GET /metrics from the control endpoint: {sample: value} (the
        sample with its labels as written), or {} without one."""
        if not self.control_port:
            return {}
        out = {}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}/metrics", timeout=timeout) as r:
                text = r.read().decode("utf-8", "replace")
        except OSError:
            return {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                try:
                    out[key] = float(value)
                except ValueError:
                    pass
        return out

    def command(self):
        d = self.dir
        conf = os.path.join(d, "outpost.toml")
        if self.mode == "seed":
            zone = f'primaries = []\nseed_file = "{self.zonefile}"\n'
        else:
            zone = f'primaries = ["127.0.0.1:{self.primary_port}"]\n'
        _write(conf, f"""[server]
listen = ["127.0.0.1:{self.port}"]
data_dir = "{d}/data"
udp_workers = {self.threads}
log_level = "warn"
{f'control = "127.0.0.1:{self.control_port}"' if self.control_port else ""}

[[zone]]
name = "{ZONE}"
{zone}
{self.extra}""")
        return [self.binary, "serve", "--config", conf]

    def version(self):
        return subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout.strip()


# --many-zones: one primary serving many small zones, and each secondary
# configured with all of them, keeping what it transferred on disk so that
# it can start again from there. Each has `zonefile_dir`, where a zone file
# per zone appears once that zone is on disk.


def zone_files(directory):
    """How many `*.zone` files `directory` holds (0 if it does not exist)."""
    try:
        return sum(1 for e in os.listdir(directory) if e.endswith(".zone"))
    except OSError:
        return 0


class ManyBind(Bind):
    """The primary of --many-zones: `zones` is [(name, zone file)]. Quotas
    raised so that BIND is not what limits a secondary: as many transfers
    out at once as there are zones, plus 1,000 (NSD asks for hundreds at
    once, pipelined on its connections), 1,000 TCP clients (BIND's
    defaults, 10 transfers and 150 clients, would make it refuse a
    secondary that asks for more, which would then measure the
    secondary's retry timers), a listen queue of 1,024."""

    tcp_options = "\n    tcp-clients 1000;\n    tcp-listen-queue 1024;"

    def __init__(self, workdir, zones):
        super().__init__(workdir, None)
        self.zones = zones
        self.transfers_out = len(zones) + 1000

    def zone_stanzas(self):
        return "".join(f'zone "{name}" {{ type primary; file "{path}"; }};\n' for name, path in self.zones)


class ManyKnot(Knot):
    """Knot as the secondary of every zone in `zones` (names). Knot's
    defaults otherwise: the zone file written right after each transfer
    (`zonefile-sync: 0`) and loaded at start (`zonefile-load: whole`), the
    journal for changes, background workers as many as CPUs."""

    def __init__(self, workdir, primary_port, zones, threads=2):
        super().__init__(workdir, primary_port, threads)
        self.zones = zones
        self.zonefile_dir = os.path.join(self.dir, "zones")

    def command(self):
        d = self.dir
        conf = os.path.join(d, "knot.conf")
        zones = "".join(f"  - domain: {z}\n" for z in self.zones)
        _write(conf, _knot_head(d, self.port, self.threads, self.primary_port) + f"""template:
  - id: default
    storage: "{d}/zones"
    master: primary
    acl: [notify_in]
zone:
{zones}""")
        return [need("knotd", "knot"), "-c", conf]


class ManyNsd(Nsd):
    """NSD as the secondary of every zone in `zones` (names), through one
    pattern (`request-xfr`, `allow-notify`). No database (NSD 4.6's
    choice when `database: ""`): transferred zones are kept in zone files,
    written every `zonefiles_write` seconds."""

    def __init__(self, workdir, primary_port, zones, threads=2, zonefiles_write=1):
        super().__init__(workdir, primary_port, threads)
        self.zones = zones
        self.zonefiles_write = zonefiles_write
        self.zonefile_dir = os.path.join(self.dir, "zones")

    def command(self):
        d = self.dir
        conf = os.path.join(d, "nsd.conf")
        os.makedirs(os.path.join(d, "zones"), exist_ok=True)
        zones = "".join(f'zone:\n    name: "{z}"\n    include-pattern: "secondary"\n' for z in self.zones)
        _write(conf, f"""server:
    ip-address: 127.0.0.1
    port: {self.port}
    do-ip6: no
    server-count: {self.threads}
    tcp-count: 100
    reuseport: yes
    username: ""
    chroot: ""
    zonesdir: "{d}/zones"
    database: ""
    zonelistfile: "{d}/zone.list"
    pidfile: "{self.pidfile}"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    verbosity: 1
    zonefiles-write: {self.zonefiles_write}
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
pattern:
    name: "secondary"
    zonefile: "%s.zone"
    request-xfr: 127.0.0.1@{self.primary_port} NOKEY
    allow-notify: 127.0.0.1 NOKEY
{zones}""")
        return [need("nsd", "nsd"), "-d", "-c", conf]


class ManyOutpost(Outpost):
    """Outpost as the secondary of every zone in `zones` (names): one
    [[zone]] each with the primary, a control endpoint on a loopback port
    (GET /status), its defaults otherwise."""

    def __init__(self, workdir, binary, primary_port, zones, threads=2, log_level="warn"):
        super().__init__(workdir, binary, "secondary", primary_port, None, threads)
        self.zones = zones
        self.log_level = log_level
        self.control_port = free_port()
        # Its persist layout: data_dir/zones/<zone>.zone.
        self.zonefile_dir = os.path.join(self.dir, "data", "zones")

    def command(self):
        d = self.dir
        conf = os.path.join(d, "outpost.toml")
        zones = "".join(f'\n[[zone]]\nname = "{z}"\nprimaries = ["127.0.0.1:{self.primary_port}"]\n'
                        for z in self.zones)
        _write(conf, f"""[server]
listen = ["127.0.0.1:{self.port}"]
data_dir = "{d}/data"
udp_workers = {self.threads}
log_level = "{self.log_level}"
control = "127.0.0.1:{self.control_port}"
{zones}""")
        return [self.binary, "serve", "--config", conf]

    def status(self, timeout=30):
        """GET /status from the control endpoint, as JSON, or None."""
        import json
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}/status", timeout=timeout) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None


def reflected(port, timeout=0.2, tcp=False):
    """True if one query to `port` (UDP, or TCP) comes back as a response
    (QR set) with the query's ID."""
    query = tcp_soa_query if tcp else udp_soa_query
    got = query(port, ZONE, flags=0x0100, timeout=timeout)
    if got is None:
        return False
    qid, msg = got
    return len(msg) >= 12 and struct.unpack(">H", msg[:2])[0] == qid and msg[2] & 0x80 != 0


class Reflector(Server):
    """The floor: examples/reflector.rs, a UDP loop of recvmmsg / sendmmsg
    (32 datagrams a batch) that turns each query into a header-only NOERROR
    response in place. No DNS work at all, so its CPU per answer is what
    the system calls and the loopback path cost by themselves. `threads`
    sockets bound with SO_REUSEPORT, one thread each."""

    tcp = False

    def __init__(self, workdir, binary, threads=1, cpu=None):
        super().__init__("Reflector", workdir, threads, cpu)
        self.binary = binary

    def command(self):
        return [self.binary, f"127.0.0.1:{self.port}", str(self.threads)]

    def wait_serial(self, serial, timeout, hint=""):
        """It serves no zone (every answer is an empty NOERROR): ready once
        a query comes back as a response with its ID. `serial` is unused."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before answering on "
                                   f"127.0.0.1:{self.port}\n{self.log_tail()}")
            if reflected(self.port, tcp=self.tcp):
                return time.monotonic() - self.started_at
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} on port {self.port} did not answer a query within {timeout:.0f} s"
                           f"{hint}\n{self.log_tail()}")

    def version(self):
        return "examples/reflector.rs"


class TcpReflector(Reflector):
    """The floor over TCP: examples/tcp_reflector.rs, an epoll loop per
    thread that reads what each connection sent and answers every complete
    query with a header-only NOERROR response in place, one write per read.
    `threads` listening sockets bound with SO_REUSEPORT, one thread each."""

    tcp = True

    def version(self):
        return "examples/tcp_reflector.rs"
