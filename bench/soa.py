"""SOA serial lookups: `dig +short` for load waits, a raw UDP query for the
50 ms ingest polls (spawning dig 20 times a second would blur the timing),
and sweeps over many zones from one socket (--many-zones)."""

import random
import select
import socket
import struct
import subprocess
import time


def dig_serial(port, zone, timeout=1):
    """The serial `dig +short` shows, or None."""
    try:
        out = subprocess.run(
            ["dig", "+short", f"+time={timeout}", "+tries=1", "@127.0.0.1", "-p", str(port), zone, "SOA"],
            capture_output=True, text=True, timeout=timeout + 5,
        ).stdout.split()
    except subprocess.TimeoutExpired:
        return None
    if len(out) >= 3 and out[2].isdigit():
        return int(out[2])
    return None


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _skip_name(msg, pos):
    while True:
        n = msg[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + n


def udp_soa_query(port, zone, flags=0, timeout=0.2):
    """One UDP SOA query for `zone` to 127.0.0.1:`port` (no retry): the
    query's ID and the reply, or None when none came."""
    qid = random.randrange(65536)
    query = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0) + _encode_name(zone) + struct.pack(">HH", 6, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(query, ("127.0.0.1", port))
            msg, _ = s.recvfrom(65535)
        except OSError:
            return None
    return qid, msg


def send_notify(port, zone):
    """One NOTIFY (opcode 4, AA) for `zone` to 127.0.0.1:`port`, as a
    primary sends after a change; the reply is not awaited."""
    qid = random.randrange(65536)
    msg = struct.pack(">HHHHHH", qid, 0x2400, 1, 0, 0, 0) + _encode_name(zone) + struct.pack(">HH", 6, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(msg, ("127.0.0.1", port))


def tcp_soa_query(port, zone, flags=0, timeout=0.5):
    """One SOA query over TCP (2-octet framing): the query's ID and the
    reply, or None."""
    qid = random.randrange(65536)
    query = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0) + _encode_name(zone) + struct.pack(">HH", 6, 1)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">H", len(query)) + query)
            head = b""
            while len(head) < 2:
                chunk = s.recv(2 - len(head))
                if not chunk:
                    return None
                head += chunk
            (length,) = struct.unpack(">H", head)
            msg = b""
            while len(msg) < length:
                chunk = s.recv(length - len(msg))
                if not chunk:
                    return None
                msg += chunk
    except OSError:
        return None
    return qid, msg


def udp_serial(port, zone, timeout=0.2):
    """The SOA serial over one UDP query (no retry), or None."""
    got = udp_soa_query(port, zone, timeout=timeout)
    if got is None:
        return None
    qid, msg = got
    try:
        rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
        if rid != qid or flags & 0xF != 0:
            return None
        pos = 12
        for _ in range(qd):
            pos = _skip_name(msg, pos) + 4
        return _first_soa_serial(msg, pos, an)
    except (struct.error, IndexError):
        return None


def _first_soa_serial(msg, pos, an):
    """The serial of the first SOA among the `an` records from `pos`, or
    None; raises on a message cut short."""
    for _ in range(an):
        pos = _skip_name(msg, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[pos:pos + 10])
        pos += 10
        if rtype == 6:
            p = _skip_name(msg, _skip_name(msg, pos))
            return struct.unpack(">I", msg[p:p + 4])[0]
        pos += rdlen
    return None


def soa_question(zone):
    """The question section of an SOA query for `zone` (lower case)."""
    return _encode_name(zone.lower()) + struct.pack(">HH", 6, 1)


def _served_serial(msg, qid, question):
    """The serial of the SOA in an authoritative NOERROR answer to the query
    with this ID and question, or None."""
    try:
        rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
        if rid != qid or qd != 1 or flags & 0x8000 == 0 or flags & 0x0400 == 0 or flags & 0xF != 0:
            return None
        end = 12 + len(question)
        if msg[12:end].lower() != question:
            return None
        pos = end
        return _first_soa_serial(msg, pos, an)
    except (struct.error, IndexError):
        return None


def soa_sweep(port, zones, serial, questions, window=200, timeout=1.0, tries=2):
    """Asks 127.0.0.1:`port` for the SOA of every zone in `zones` over UDP
    from one socket, at most `window` queries in flight, and returns the
    zones whose answer was authoritative (AA), NOERROR, with `serial`, as
    {zone: time.monotonic() when that answer arrived}. A zone whose query
    got no answer within `timeout` is asked again, up to `tries` times in
    all; one answered otherwise (SERVFAIL, REFUSED, an old serial) is not.
    An ICMP port unreachable (nothing listens yet) ends the sweep at once.
    `questions` caches each zone's question section."""
    served = {}
    todo = list(zones)
    todo.reverse()
    attempts = {}
    flight = {}  # qid -> (zone, question, sent at)
    next_id = random.randrange(65536)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        s.connect(("127.0.0.1", port))
        while todo or flight:
            now = time.monotonic()
            while todo and len(flight) < window:
                zone = todo.pop()
                q = questions.get(zone)
                if q is None:
                    q = questions[zone] = soa_question(zone)
                while next_id in flight:
                    next_id = (next_id + 1) & 0xFFFF
                qid, next_id = next_id, (next_id + 1) & 0xFFFF
                try:
                    s.send(struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + q)
                except BlockingIOError:
                    todo.append(zone)
                    break
                except OSError:
                    # ECONNREFUSED from an earlier datagram: nothing listens.
                    return served
                attempts[zone] = attempts.get(zone, 0) + 1
                flight[qid] = (zone, q, now)
            ready, _, _ = select.select([s], [], [], 0.05)
            if ready:
                while True:
                    try:
                        msg = s.recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        # ICMP port unreachable: the server is not (yet) there.
                        return served
                    if len(msg) < 12:
                        continue
                    qid = struct.unpack(">H", msg[:2])[0]
                    got = flight.get(qid)
                    if got is None:
                        continue
                    zone, q, _ = got
                    if msg[12:12 + len(q)].lower() != q:
                        continue
                    del flight[qid]
                    if _served_serial(msg, qid, q) == serial:
                        served[zone] = time.monotonic()
            now = time.monotonic()
            for qid, (zone, q, sent) in list(flight.items()):
                if now - sent > timeout:
                    del flight[qid]
                    if attempts[zone] < tries:
                        todo.append(zone)
    return served
