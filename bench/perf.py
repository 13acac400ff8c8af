"""dnsperf runs and their figures."""

import os
import re
import subprocess
import time
from dataclasses import dataclass, field


@dataclass
class Load:
    """dnsperf settings, the same for every server."""
    clients: int = 8
    outstanding: int = 200
    threads: int = 1
    timeout: int = 2
    edns: bool = True
    # dnsperf -m: "udp", or "tcp" (each client one persistent connection
    # with up to outstanding/clients queries in flight on it).
    mode: str = "udp"

    def args(self):
        a = ["-m", self.mode, "-c", str(self.clients), "-q", str(self.outstanding), "-T", str(self.threads),
             "-t", str(self.timeout)]
        return a + (["-e"] if self.edns else [])


@dataclass
class Round:
    server: str
    qps: float = 0.0
    sent: int = 0
    completed: int = 0
    lost: int = 0
    avg_latency: float = 0.0  # seconds
    sd_latency: float = 0.0
    rcodes: dict = field(default_factory=dict)
    request_size: int = 0
    response_size: int = 0
    runtime: float = 0.0
    server_cpu: float = 0.0  # seconds
    client_cpu: float = 0.0  # seconds
    other_cpu: float = 0.0  # seconds: all CPUs' busy time minus server and dnsperf
    latencies: list = field(default_factory=list)  # seconds, verbose runs only
    command: str = ""


_PATTERNS = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "qps": r"Queries per second:\s+([\d.]+)",
    "avg_latency": r"Average Latency \(s\):\s+([\d.]+)",
    "sd_latency": r"Latency StdDev \(s\):\s+([\d.]+)",
    "runtime": r"Run time \(s\):\s+([\d.]+)",
}


def parse(text, rnd):
    for key, pat in _PATTERNS.items():
        m = re.search(pat, text)
        if not m:
            raise RuntimeError(f"dnsperf output has no `{pat}`:\n{text[-2000:]}")
        setattr(rnd, key, type(getattr(rnd, key))(float(m.group(1))))
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        for code, n in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
            rnd.rcodes[code] = int(n)
    m = re.search(r"Average packet size:\s+request (\d+), response (\d+)", text)
    if m:
        rnd.request_size, rnd.response_size = int(m.group(1)), int(m.group(2))
    return rnd


def busy_seconds():
    """Busy time of all CPUs together (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run(server, qfile, seconds, load, cpu=None, verbose=False, rate=None, outdir="/tmp", maxruns=None):
    """One dnsperf run against `server`, with the server's CPU time measured
    around it. verbose: per-query latencies (dnsperf -v) for percentiles;
    rate: a fixed offered load (-Q) instead of saturation; maxruns: read
    the file at most this many times (dnsperf -n; 1: never loop, the run
    ends early when the file does)."""
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(server.port), "-d", qfile, "-l", str(seconds)]
    if maxruns:
        cmd += ["-n", str(maxruns)]
    cmd += load.args()
    if rate:
        cmd += ["-Q", str(int(rate))]
    if verbose:
        cmd += ["-v"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out_path = os.path.join(outdir, f"dnsperf-{server.name}-{time.monotonic_ns()}.out")
    rnd = Round(server=server.name, command=" ".join(cmd))
    if not server.alive():
        raise RuntimeError(f"{server.name} is not running\n{server.log_tail()}")
    cpu0 = server.cpu_seconds()
    busy0 = busy_seconds()
    # Output to a file, not a pipe: in verbose mode a slow reader would
    # throttle dnsperf.
    with open(out_path, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # dnsperf stops itself after -l seconds plus at most -t for
        # stragglers; past that something is wrong.
        deadline = time.monotonic() + seconds + load.timeout + 30
        try:
            while True:
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    p.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dnsperf did not finish: {rnd.command}")
                time.sleep(0.05)
        except BaseException:
            # Interrupted or stuck: do not leave dnsperf running.
            if p.returncode is None:
                p.kill()
                p.wait()
            raise
    rnd.server_cpu = server.cpu_seconds() - cpu0
    rnd.client_cpu = usage.ru_utime + usage.ru_stime
    # Other processes, and kernel work not charged to any process (such as
    # softirq), during the run: how quiet the machine was.
    rnd.other_cpu = busy_seconds() - busy0 - rnd.server_cpu - rnd.client_cpu
    with open(out_path, errors="replace") as f:
        text = f.read()
    if p.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({p.returncode}): {rnd.command}\n{text[-2000:]}")
    if verbose:
        for line in text.splitlines():
            # "> NOERROR name type 0.000123"; timeouts ("> T ...") have no
            # latency and count as lost.
            if line.startswith("> ") and not line.startswith("> T "):
                try:
                    rnd.latencies.append(float(line.rsplit(None, 1)[1]))
                except (ValueError, IndexError):
                    pass
        stats = text.find("Statistics:")
        text = text[stats:] if stats >= 0 else text
    os.unlink(out_path)
    return parse(text, rnd)


def percentile(sorted_values, pct):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[k]
