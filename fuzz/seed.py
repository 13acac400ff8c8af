#!/usr/bin/env python3
"""Seeds fuzz/corpus/ from real traffic on loopback.

Queries are captured as BIND's dig and Knot's kdig send them (a socket
stands in for the server and keeps each datagram); responses and a zone
transfer are captured from real BIND `named`, Knot `knotd` and NSD `nsd`
serving the bundled zone. Run from the repository root:
python3 fuzz/seed.py (needs named, knotd, nsd, dig, kdig).
"""
import base64, hashlib, os, socket, struct, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
ZONE = os.path.join(ROOT, "zones", "example.com.zone")
# The key the tsig_verify target knows.
KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def save(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def capture_queries(commands):
    """Runs each client command against a socket that keeps the query."""
    got = []
    for cmd in commands:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        port = s.getsockname()[1]
        argv = [a.replace("PORT", str(port)) for a in cmd]
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            data, _ = s.recvfrom(65535)
            got.append(data)
        except socket.timeout:
            print("no query from", " ".join(argv), file=sys.stderr)
        p.kill()
        p.wait()
        s.close()
    return got


def main():
    questions = [
        ("example.com", "SOA"), ("example.com", "MX"), ("example.com", "NS"),
        ("example.com", "ANY"), ("mail.example.com", "A"), ("mail.example.com", "AAAA"),
        ("nothere.example.com", "A"), ("example.com", "DNSKEY"), ("example.com", "TYPE1000"),
        ("example.org", "A"),
    ]
    cmds = []
    for name, t in questions:
        for extra in ([], ["+dnssec"], ["+noedns"], ["+cookie"], ["+nsid"], ["+bufsize=512"], ["+cd", "+adflag"]):
            cmds.append(["dig", "@127.0.0.1", "-p", "PORT", "+tries=1", "+timeout=1", "+norec", name, t] + extra)
        for extra in ([], ["+dnssec"], ["+cookie"], ["+nsid"], ["+edns=1"]):
            cmds.append(["kdig", "@127.0.0.1", "-p", "PORT", "+retry=0", "+timeout=1", "+norec", name, t] + extra)
    cmds.append(["dig", "@127.0.0.1", "-p", "PORT", "+tries=1", "+timeout=1", "+opcode=15", "+header-only", "example.com"])
    cmds.append(["dig", "@127.0.0.1", "-p", "PORT", "+tries=1", "+timeout=1", "+ednsopt=100", "+ednsflags=0x40", "example.com", "SOA"])
    cmds.append(["dig", "@127.0.0.1", "-p", "PORT", "+tries=1", "+timeout=1", "-c", "CH", "version.bind", "TXT"])
    cmds.append(["dig", "@127.0.0.1", "-p", "PORT", "+tries=1", "+timeout=1", "-y", f"hmac-sha256:xfr-key:{KEY}", "example.com", "SOA"])
    cmds.append(["kdig", "@127.0.0.1", "-p", "PORT", "+retry=0", "+timeout=1", "-y", f"hmac-sha256:xfr-key:{KEY}", "example.com", "SOA"])
    # IDs zeroed, so that seeding again adds no copies of the same query.
    queries = [b"\x00\x00" + q[2:] for q in capture_queries(cmds)]
    for q in queries:
        save("udp_fast_path", q)
        save("wire_message", q)
        save("tsig_verify", q)

    # BIND, Knot and NSD serving the bundled zone: their answers and AXFRs.
    for name, start in (("bind", start_bind), ("knot", start_knot), ("nsd", start_nsd)):
        with tempfile.TemporaryDirectory() as d:
            port = free_port()
            server = start(d, port)
            try:
                if not wait_soa(port):
                    print(f"{name} did not answer on port {port}", file=sys.stderr)
                    continue
                print(f"{name}: capturing answers and an AXFR", file=sys.stderr)
                answers(port, queries)
                save("xfr_interp", axfr(port, queries[0]))
            finally:
                server.terminate()
                server.wait()
    for z in [ZONE]:
        with open(z, "rb") as f:
            save("zonefile", f.read())
    print(f"{len(queries)} queries captured", file=sys.stderr)


def start_bind(d, port):
    conf = os.path.join(d, "named.conf")
    with open(conf, "w") as f:
        f.write(f"""options {{ directory "{d}"; listen-on port {port} {{ 127.0.0.1; }};
 listen-on-v6 {{ none; }}; pid-file "{d}/named.pid"; recursion no; allow-transfer {{ any; }};
 dnssec-validation no; }};
key "xfr-key" {{ algorithm hmac-sha256; secret "{KEY}"; }};
zone "example.com" {{ type primary; file "{ZONE}"; }};
""")
    return subprocess.Popen(["/usr/sbin/named", "-g", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_knot(d, port):
    conf = os.path.join(d, "knot.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: {KEY}
acl:
  - id: xfr
    address: 127.0.0.1
    action: transfer
database:
    storage: "{d}"
zone:
  - domain: example.com
    file: "{ZONE}"
    acl: xfr
    zonefile-sync: -1
    journal-content: none
""")
    return subprocess.Popen(["/usr/sbin/knotd", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_nsd(d, port):
    conf = os.path.join(d, "nsd.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
    ip-address: 127.0.0.1
    port: {port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    rrl-ratelimit: 0
remote-control:
    control-enable: no
key:
    name: "xfr-key"
    algorithm: hmac-sha256
    secret: "{KEY}"
zone:
    name: "example.com"
    zonefile: "{ZONE}"
    provide-xfr: 127.0.0.1 NOKEY
""")
    return subprocess.Popen(["/usr/sbin/nsd", "-d", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_soa(port):
    q = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x07example\x03com\x00" + struct.pack(">HH", 6, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    for _ in range(50):
        s.sendto(q, ("127.0.0.1", port))
        try:
            r, _ = s.recvfrom(4096)
            if r[3] & 0x0F == 0:
                return True
        except socket.timeout:
            pass
        time.sleep(0.1)
    return False


def answers(port, queries):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    for q in queries:
        s.sendto(q, ("127.0.0.1", port))
        try:
            r, _ = s.recvfrom(65535)
            save("wire_message", r)
            save("tsig_verify", r)
        except socket.timeout:
            pass


def axfr(port, query):
    """The AXFR as the interpreter reads it: messages with 2-octet lengths,
    straight from a TCP socket, the IDs set to the target's query ID 7."""
    t = socket.create_connection(("127.0.0.1", port), timeout=3)
    qname_end = 12 + query[12:].index(b"\x00") + 1
    msg = b"\x00\x07\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + query[12:qname_end] + struct.pack(">HH", 252, 1)
    t.sendall(struct.pack(">H", len(msg)) + msg)
    stream = b""
    try:
        while True:
            chunk = t.recv(65535)
            if not chunk:
                break
            stream += chunk
            if stream.count(b"\x00\x06\x00\x01") >= 2:
                break
    except socket.timeout:
        pass
    t.close()
    return stream


if __name__ == "__main__":
    main()
