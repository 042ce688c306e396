"""Cold-resolution and cache-hit benchmark of our resolver, side by side with Unbound.

    python benchmarks/resolve_bench.py [--quick] [--profile FILE] [--json FILE]

A loopback test internet (the standard topology of `resolver.testing` plus a `bench.test.` zone
of many A records, delegated from `test.`) runs in a thread of this process; each resolver runs as
a subprocess pointed at that internet's root hints, and `dnsperf` drives it. Per resolver:

1. cold: every benchmark name once, from an empty cache, at a fixed number of queries in flight:
   wall time, SERVFAILs and lost queries, and upstream queries per name (the test internet's
   counters, so both resolvers are charged exactly what the authoritative side saw);
2. warm check: the same names again, which must cost no upstream query;
3. cache hits: the names in a loop for a fixed time at saturation: qps, latency percentiles, and
   the server's CPU time per query (steadier than qps on a shared machine);
4. unloaded latency: one query at a time from a Python socket loop: the service time of a hit.

Figures are printed, never asserted: on a shared two-core machine they drift from run to run, and
the ratio ours/Unbound (both measured in the same run) is the figure that means something.

Needs `dnsperf` (Debian package dnsperf); Unbound (package unbound) is optional. When either is
missing and this runs as root, it runs `apt-get install -y -q dnsperf unbound` first (disable with
--no-install). Network traffic stays on 127.0.0.0/8: the test internet lives in a /16 of its own
(127.153.0.0/16 by default, apart from the 127.53/16 and 127.54/16 the test suite binds, so the
two can run at the same time), and both resolvers are only ever given its hints.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

import dns.exception
import dns.message
import dns.query
import dns.rcode

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # Run from a plain checkout too, where `resolver` is not installed.
    sys.path.insert(0, str(REPO))

from resolver.testing import ServerSpec, TestInternet  # noqa: E402
from resolver.testing.topology import DEFAULT_SERVERS, DEFAULT_ZONES  # noqa: E402

#: Where the standard topology lives; rewritten to `--block` so that a benchmark and the test
#: suite (which binds 127.53.x.y:53 and 127.54.0.1:53) never fight over an address.
TOPOLOGY_BLOCK = "127.53"
DEFAULT_BLOCK = "127.153"

#: TTL of the benchmark records: far longer than any run, so no hit turns into a miss midway.
BENCH_TTL = 3600

#: dnsperf's per-query timeout in the cold phase; above the resolver's 8 s resolution limit, so
#: a resolution that gives up shows as SERVFAIL rather than as a lost query.
COLD_QUERY_TIMEOUT = 10.0

#: How long a resolver may take to answer its first probe before the run is abandoned.
STARTUP_TIMEOUT = 20.0

#: Names per second below which a one-pass dnsperf run counts as hung (ours does ~1,000).
MIN_COLD_RATE = 20

APT_COMMAND = ("apt-get", "install", "-y", "-q", "dnsperf", "unbound")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why in one line."""


class BenchTimeout(BenchError):
    """The whole run overran its time budget (a hung resolver, dnsperf or test internet)."""


@dataclass(frozen=True)
class Settings:
    """The size of one run; `--quick` trades precision for a run well under a minute."""

    names: int
    cold_in_flight: int
    hit_seconds: float
    hit_in_flight: int
    idle_seconds: float

    def budget(self, resolvers: int) -> int:
        """A generous wall-clock bound for the whole run, so that nothing can hang forever."""
        per_resolver = (
            (STARTUP_TIMEOUT + 2 * (COLD_QUERY_TIMEOUT + self.names / MIN_COLD_RATE))
            + 2 * (self.hit_seconds + self.idle_seconds)
            + 30
        )
        return math.ceil(30 + resolvers * per_resolver)


QUICK = Settings(names=200, cold_in_flight=20, hit_seconds=3.0, hit_in_flight=100, idle_seconds=1.0)
FULL = Settings(
    names=1000, cold_in_flight=20, hit_seconds=10.0, hit_in_flight=100, idle_seconds=3.0
)


# -- the test internet ------------------------------------------------------------------------


def bench_names(count: int) -> list[str]:
    """The benchmark's query names, all distinct and all in bench.test."""
    return [f"h{index:05d}.bench.test." for index in range(count)]


def build_internet(count: int, block: str) -> TestInternet:
    """The standard topology moved to `block`, plus bench.test. with `count` A records.

    bench.test. gets two servers of its own (as most real zones have) and is delegated from
    test. with glue, so a cold name costs one query once the delegation is known.
    """
    prefix = f"{block}."

    def moved(text: str) -> str:
        return text.replace(f"{TOPOLOGY_BLOCK}.", prefix)

    servers = [ServerSpec(spec.name, moved(spec.address), spec.zones) for spec in DEFAULT_SERVERS]
    # The standard topology grows with the test suite: take a /24 that none of its servers uses.
    taken = {spec.address.split(".")[2] for spec in servers}
    subnet = next(str(octet) for octet in range(200, 255) if str(octet) not in taken)
    ns1, ns2 = f"{prefix}{subnet}.1", f"{prefix}{subnet}.2"
    servers += [
        ServerSpec("ns1.bench.test.", ns1, ("bench.test.",)),
        ServerSpec("ns2.bench.test.", ns2, ("bench.test.",)),
    ]
    zones = {origin: moved(text) for origin, text in DEFAULT_ZONES.items()}
    zones["test."] += (
        "bench.test.       172800 NS ns1.bench.test.\n"
        "bench.test.       172800 NS ns2.bench.test.\n"
        f"ns1.bench.test.   172800 A  {ns1}\n"
        f"ns2.bench.test.   172800 A  {ns2}\n"
    )
    records = "".join(
        f"{name} {BENCH_TTL} A 192.0.2.{index % 254 + 1}\n"
        for index, name in enumerate(bench_names(count))
    )
    zones["bench.test."] = (
        f"$TTL {BENCH_TTL}\n"
        "@    SOA ns1.bench.test. hostmaster.bench.test. 1 7200 3600 1209600 300\n"
        "@    NS  ns1.bench.test.\n"
        "@    NS  ns2.bench.test.\n"
        f"ns1  A   {ns1}\n"
        f"ns2  A   {ns2}\n" + records
    )
    return TestInternet(zones, servers)


def queries_by_zone(internet: TestInternet) -> dict[str, int]:
    """Upstream queries received so far, per zone served ('.', 'test.', 'bench.test.', ...)."""
    counts: dict[str, int] = {}
    for server in internet.servers.values():
        zone = " ".join(zone.origin.to_text() for zone in server.zones)
        counts[zone] = counts.get(zone, 0) + server.query_count
    return counts


def check_internet(internet: TestInternet, names: Sequence[str]) -> None:
    """Ask a root server and every bench.test. server directly, so a dead or broken test internet
    is reported as such instead of showing up as a resolver that answers nothing but SERVFAIL.
    """
    probes = [(internet.root_servers[0].address, ".", "NS")]
    probes += [
        (server.address, names[0], "A")
        for server in internet.servers.values()
        if any(zone.origin.to_text() == "bench.test." for zone in server.zones)
    ]
    for address, name, rdtype in probes:
        query = dns.message.make_query(name, rdtype)
        try:
            response = dns.query.udp(query, address, timeout=2.0)
        except (dns.exception.DNSException, OSError) as error:
            raise BenchError(f"the test internet does not answer at {address}: {error!r}") from None
        if response.rcode() != dns.rcode.NOERROR or not (response.answer or response.authority):
            raise BenchError(f"the test internet at {address} answers {name} {rdtype} wrongly")
    internet.reset_counters()


# -- processes --------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `host` (both are bound by the resolvers)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise BenchError(f"no port free for both UDP and TCP on {host}")


@dataclass
class Server:
    """A resolver under test, running as a child process we started (and alone may stop)."""

    label: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def log_tail(self, lines: int = 15) -> str:
        """The end of the child's output, to say why it failed without a second command."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def cpu_seconds(self) -> float | None:
        """CPU time of the process so far, all its threads, in seconds; None without /proc.

        From each thread's schedstat (nanoseconds) rather than stat's utime and stime, which
        count 10 ms ticks: too coarse for a cold phase that costs Unbound a few milliseconds.
        """
        tasks = Path(f"/proc/{self.process.pid}/task")
        total = 0
        try:
            for task in tasks.iterdir():
                with contextlib.suppress(OSError):  # a thread that ended meanwhile
                    total += int((task / "schedstat").read_text().split()[0])
        except OSError:
            return None
        return total / 1e9

    def rss_mb(self) -> float | None:
        """Resident memory now (VmRSS), to compare what each resolver keeps per cached name."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else None


def wait_until_ready(server: Server, timeout: float = STARTUP_TIMEOUT) -> None:
    """Wait for the first reply to a CHAOS version.bind query.

    That question is answered (Unbound) or refused (ours) locally, so it proves the sockets are
    served without sending anything upstream or putting anything in the cache.
    """
    probe = dns.message.make_query("version.bind.", "TXT", "CH")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.label} exited with status {server.process.returncode} before answering"
                f"; its log ends with:\n{server.log_tail()}"
            )
        try:
            dns.query.udp(probe, "127.0.0.1", port=server.port, timeout=0.25)
            return
        except (dns.exception.DNSException, OSError):
            time.sleep(0.05)
    raise BenchError(f"{server.label} did not answer within {timeout:g} s:\n{server.log_tail()}")


@contextlib.contextmanager
def running(label: str, command: Sequence[str], port: int, log: Path) -> Iterator[Server]:
    """Start `command`, wait until it answers, and always stop it (by its PID) on the way out.

    The child gets a session of its own, so a Ctrl-C in the terminal reaches only this script,
    which then stops the child itself with SIGTERM (our resolver exits cleanly on it, which also
    lets cProfile write its file), and SIGKILL if it does not go within ten seconds.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
    server = Server(label, process, port, log)
    try:
        wait_until_ready(server)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, up to ten seconds' grace, then SIGKILL; nothing is left running whatever happens.

    The kill sits in a `finally` so that even the run's alarm or a second Ctrl-C arriving during
    the grace period cannot leave the child behind.
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def ours_command(port: int, hints: Path, profile: Path | None) -> list[str]:
    """`resolver serve` on 127.0.0.1:port, resolving only inside the test internet."""
    prefix = [sys.executable]
    if profile is not None:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    return [
        *prefix,
        *("-m", "resolver", "--log-level", "warning", "serve"),
        *("--listen", f"127.0.0.1:{port}", "--root-hints", str(hints), "--query-loopback"),
    ]


def unbound_config(port: int, hints: Path, workdir: Path) -> str:
    """An unbound.conf comparable with our resolver, confined to loopback and `workdir`.

    One thread (ours is single-threaded); iterator only, no validator (ours does no DNSSEC);
    no QNAME minimisation, referral-path hardening or prefetch, so both send the same kind and
    number of upstream queries; no IPv6 (the test internet has no IPv6 server). `test.` is an
    RFC 6761 special-use name that Unbound answers NXDOMAIN for itself unless told otherwise.
    """
    return f"""\
server:
    verbosity: 0
    num-threads: 1
    interface: 127.0.0.1
    port: {port}
    access-control: 127.0.0.0/8 allow
    do-ip6: no
    do-not-query-localhost: no
    root-hints: "{hints}"
    local-zone: "test." nodefault
    module-config: "iterator"
    qname-minimisation: no
    harden-referral-path: no
    prefetch: no
    so-reuseport: no
    chroot: ""
    username: ""
    directory: "{workdir}"
    pidfile: "{workdir / "unbound.pid"}"
    use-syslog: no
    logfile: ""
remote-control:
    control-enable: no
"""


# -- dnsperf ----------------------------------------------------------------------------------


@dataclass
class PerfRun:
    """What one dnsperf run reported; latencies (seconds, sorted) come from its -v lines."""

    sent: int = 0
    completed: int = 0
    lost: int = 0
    rcodes: dict[str, int] = field(default_factory=dict)
    run_time: float = 0.0
    qps: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile of the per-query latencies, in seconds."""
        if not self.latencies:
            return None
        rank = max(1, math.ceil(fraction * len(self.latencies)))
        return self.latencies[rank - 1]

    def summary(self) -> dict[str, object]:
        """The figures without the raw latency list, for --json."""
        data = asdict(self)
        del data["latencies"]
        for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
            data[f"latency_{name}"] = self.percentile(fraction)
        data["latency_max"] = self.latencies[-1] if self.latencies else None
        return data


_VERBOSE = re.compile(r"^> ([A-Z]+) \S+ \S+ ([0-9.]+)$")
_FIELDS = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "run_time": re.compile(r"Run time \(s\):\s+([0-9.]+)"),
    "qps": re.compile(r"Queries per second:\s+([0-9.]+)"),
}


def parse_dnsperf(lines: Iterator[str]) -> PerfRun:
    """Parse dnsperf 2.x output: the -v line of each response, then the final statistics."""
    run = PerfRun()
    statistics: list[str] = []
    for raw in lines:
        line = raw.rstrip("\n")
        verbose = _VERBOSE.match(line)
        if verbose:
            run.latencies.append(float(verbose.group(2)))
            continue
        statistics.append(line)
    text = "\n".join(statistics)
    if "Statistics:" not in text:
        raise BenchError(f"dnsperf printed no statistics:\n{text[-2000:]}")
    for name, pattern in _FIELDS.items():
        match = pattern.search(text)
        if match:
            value = match.group(1)
            setattr(run, name, float(value) if "." in value else int(value))
    codes = re.search(r"Response codes:\s+(.*)", text)
    if codes:
        run.rcodes = {code: int(n) for code, n in re.findall(r"([A-Z]+) (\d+) \(", codes.group(1))}
    run.latencies.sort()
    return run


def run_dnsperf(
    dnsperf: str,
    port: int,
    names_file: Path,
    output: Path,
    *,
    in_flight: int,
    runs: int | None = None,
    seconds: float | None = None,
    query_timeout: float = 5.0,
) -> PerfRun:
    """Run dnsperf against 127.0.0.1:port and parse what it printed (kept in `output`).

    Every response is printed with -v into a file rather than a pipe, so that reading it cannot
    slow dnsperf down; percentiles are computed from those lines afterwards.
    """
    command = [dnsperf, "-s", "127.0.0.1", "-p", str(port), "-d", str(names_file)]
    command += ["-q", str(in_flight), "-t", f"{query_timeout:g}", "-v"]
    if runs is not None:
        command += ["-n", str(runs)]
    if seconds is not None:
        command += ["-l", f"{seconds:g}"]
    limit = (seconds or 0) + query_timeout + 60
    if runs is not None:
        with names_file.open() as names:
            limit += runs * sum(1 for _ in names) / MIN_COLD_RATE
    with output.open("w") as out:
        try:
            finished = subprocess.run(
                command,
                stdout=out,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"dnsperf did not finish within {limit:g} s") from None
    if finished.returncode != 0:
        raise BenchError(f"dnsperf failed ({finished.returncode}): {finished.stderr.strip()}")
    with output.open() as lines:
        return parse_dnsperf(lines)


def ping_pong(port: int, names: Sequence[str], seconds: float) -> PerfRun:
    """One query at a time for `seconds`: the service time of a hit, without queueing.

    A plain blocking socket rather than dnsperf, whose sender thread sleeps between queries when
    only one may be outstanding (about 2,000 qps, and a few hundred with -v): far too few samples.
    The client's own cost (a few microseconds of Python) is in every figure, for both resolvers.
    """
    wires = [dns.message.make_query(name, "A").to_wire() for name in names]
    run = PerfRun()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(1.0)
        started = time.perf_counter()
        end = started + seconds
        index = 0
        while time.perf_counter() < end:
            query_id = index & 0xFFFF
            wire = query_id.to_bytes(2, "big") + wires[index % len(wires)][2:]
            index += 1
            run.sent += 1
            sent = time.perf_counter()
            sock.send(wire)
            try:
                reply = sock.recv(65535)
                while reply[:2] != wire[:2]:  # a late reply to an earlier query that timed out
                    reply = sock.recv(65535)
            except TimeoutError:
                run.lost += 1
                continue
            run.latencies.append(time.perf_counter() - sent)
            run.completed += 1
            rcode = dns.rcode.to_text(dns.rcode.Rcode(reply[3] & 0x0F))
            run.rcodes[rcode] = run.rcodes.get(rcode, 0) + 1
        run.run_time = time.perf_counter() - started
    run.qps = run.completed / run.run_time if run.run_time else 0.0
    run.latencies.sort()
    return run


# -- one resolver, four phases ----------------------------------------------------------------


@dataclass
class Result:
    """Everything measured for one resolver."""

    label: str
    cold: PerfRun
    cold_upstream: dict[str, int]
    cold_cpu: float | None
    warm_upstream: int
    hits: PerfRun
    hit_upstream: int
    hit_cpu: float | None
    idle: PerfRun
    rss_mb: float | None

    def summary(self) -> dict[str, object]:
        data = {
            key: value for key, value in self.__dict__.items() if not isinstance(value, PerfRun)
        }
        data.update(cold=self.cold.summary(), hits=self.hits.summary(), idle=self.idle.summary())
        return data


def delta(after: float | None, before: float | None) -> float | None:
    """after - before, where either may be unknown (no /proc)."""
    return None if after is None or before is None else after - before


def measure(
    server: Server,
    internet: TestInternet,
    dnsperf: str,
    names_file: Path,
    workdir: Path,
    settings: Settings,
) -> Result:
    """The four phases against one running resolver whose cache starts empty."""
    out = workdir / f"dnsperf-{server.label}"

    def say(what: str) -> None:
        print(f"  {server.label}: {what}", file=sys.stderr, flush=True)

    say(f"cold: {settings.names} names, {settings.cold_in_flight} in flight")
    internet.reset_counters()
    cpu = server.cpu_seconds()
    cold = run_dnsperf(
        dnsperf,
        server.port,
        names_file,
        out.with_suffix(".cold"),
        in_flight=settings.cold_in_flight,
        runs=1,
        query_timeout=COLD_QUERY_TIMEOUT,
    )
    cold_cpu = delta(server.cpu_seconds(), cpu)
    cold_upstream = queries_by_zone(internet)

    say("warm check: the same names again")
    internet.reset_counters()
    run_dnsperf(
        dnsperf,
        server.port,
        names_file,
        out.with_suffix(".warm"),
        in_flight=settings.cold_in_flight,
        runs=1,
        query_timeout=COLD_QUERY_TIMEOUT,
    )
    warm_upstream = internet.total_queries()

    say(f"cache hits: {settings.hit_seconds:g} s, {settings.hit_in_flight} in flight")
    internet.reset_counters()
    cpu = server.cpu_seconds()
    hits = run_dnsperf(
        dnsperf,
        server.port,
        names_file,
        out.with_suffix(".hits"),
        in_flight=settings.hit_in_flight,
        seconds=settings.hit_seconds,
    )
    hit_cpu = delta(server.cpu_seconds(), cpu)
    hit_upstream = internet.total_queries()

    say(f"unloaded latency: {settings.idle_seconds:g} s, one query at a time")
    idle = ping_pong(server.port, bench_names(settings.names), settings.idle_seconds)
    return Result(
        label=server.label,
        cold=cold,
        cold_upstream=cold_upstream,
        cold_cpu=cold_cpu,
        warm_upstream=warm_upstream,
        hits=hits,
        hit_upstream=hit_upstream,
        hit_cpu=hit_cpu,
        idle=idle,
        rss_mb=server.rss_mb(),
    )


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: a label and one figure per resolver; `ratio` says if it has one."""

    label: str
    values: tuple[float | str | None, ...]
    fmt: str = "{:,.0f}"
    ratio: bool = True


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds, keeping None (no sample) as None."""
    return None if seconds is None else seconds * 1000


def per_query_us(cpu: float | None, queries: int) -> float | None:
    """CPU seconds spread over `queries`, in microseconds; None when either is missing."""
    return None if cpu is None or queries == 0 else cpu / queries * 1e6


#: Reads one figure of a table row out of a resolver's results.
Getter = Callable[[Result], float | str | None]


def rows_for(results: Sequence[Result], settings: Settings) -> list[Row | str]:
    """The table, section by section (a str is a section heading)."""

    def row(label: str, get: Getter, fmt: str = "{:,.0f}", ratio: bool = True) -> Row:
        return Row(label, tuple(get(result) for result in results), fmt, ratio)

    def upstream_split(result: Result) -> str:
        zones = result.cold_upstream
        bench = zones.get("bench.test.", 0)
        return f"{zones.get('.', 0)} / {zones.get('test.', 0)} / {bench}"

    def failures(run: PerfRun) -> str:
        return f"{run.rcodes.get('SERVFAIL', 0)} / {run.lost}"

    n = settings.names
    return [
        f"cold: {n} distinct names from an empty cache, {settings.cold_in_flight} in flight",
        row("wall time (s)", lambda r: r.cold.run_time, "{:.2f}"),
        row("names per second", lambda r: r.cold.qps),
        row("SERVFAIL / lost", lambda r: failures(r.cold), ratio=False),
        row(
            "non-NOERROR answers",
            lambda r: r.cold.completed - r.cold.rcodes.get("NOERROR", 0),
            ratio=False,
        ),
        row("upstream queries per name", lambda r: sum(r.cold_upstream.values()) / n, "{:.3f}"),
        row("  to . / test. / bench.test.", upstream_split, ratio=False),
        row("latency p50 (ms)", lambda r: ms(r.cold.percentile(0.5)), "{:.2f}"),
        row("latency p99 (ms)", lambda r: ms(r.cold.percentile(0.99)), "{:.2f}"),
        row("server CPU per name (us)", lambda r: per_query_us(r.cold_cpu, n), "{:,.0f}"),
        row("upstream queries, warm re-run", lambda r: r.warm_upstream, ratio=False),
        f"cache hits: {settings.hit_seconds:g} s at {settings.hit_in_flight} in flight",
        row("queries per second", lambda r: r.hits.qps),
        row("latency p50 (ms)", lambda r: ms(r.hits.percentile(0.5)), "{:.3f}"),
        row("latency p90 (ms)", lambda r: ms(r.hits.percentile(0.9)), "{:.3f}"),
        row("latency p99 (ms)", lambda r: ms(r.hits.percentile(0.99)), "{:.3f}"),
        row(
            "latency max (ms)",
            lambda r: ms(r.hits.latencies[-1] if r.hits.latencies else None),
            "{:.3f}",
        ),
        row(
            "server CPU per query (us)",
            lambda r: per_query_us(r.hit_cpu, r.hits.completed),
            "{:,.1f}",
        ),
        row("SERVFAIL / lost", lambda r: failures(r.hits), ratio=False),
        row("upstream queries", lambda r: r.hit_upstream, ratio=False),
        f"cache hits, unloaded: {settings.idle_seconds:g} s, one query at a time (Python client)",
        row("queries answered", lambda r: r.idle.completed),
        row("latency p50 (ms)", lambda r: ms(r.idle.percentile(0.5)), "{:.3f}"),
        row("latency p90 (ms)", lambda r: ms(r.idle.percentile(0.9)), "{:.3f}"),
        row("latency p99 (ms)", lambda r: ms(r.idle.percentile(0.99)), "{:.3f}"),
        row("SERVFAIL / lost", lambda r: failures(r.idle), ratio=False),
        "process",
        row("resident memory at end (MB)", lambda r: r.rss_mb, "{:.1f}"),
    ]


def render_table(results: Sequence[Result], settings: Settings) -> str:
    """A fixed-width table, one column per resolver, plus ours/Unbound when both ran."""
    labels = [r.label for r in results]
    with_ratio = len(results) == 2
    header = ["", *labels] + (["ours/unbound"] if with_ratio else [])
    width = [32] + [14] * (len(header) - 1)
    lines = [
        "".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, width, strict=True))
        )
    ]
    lines.append("-" * sum(width))
    for item in rows_for(results, settings):
        if isinstance(item, str):
            lines.append(item)
            continue
        cells = [_cell(v, item.fmt) for v in item.values]
        if with_ratio:
            cells.append(_ratio(item) if item.ratio else "")
        text = ("  " + item.label).ljust(width[0])
        lines.append(text + "".join(c.rjust(w) for c, w in zip(cells, width[1:], strict=False)))
    return "\n".join(lines)


def _cell(value: float | str | None, fmt: str) -> str:
    """One figure as text; n/a where it could not be measured (no /proc, no sample)."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return fmt.format(value)


def _ratio(row: Row) -> str:
    """ours / unbound, left empty where it means nothing (text, or dividing by zero)."""
    ours, theirs = row.values
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or theirs == 0:
        return ""
    return f"{ours / theirs:.2f}"


# -- tools, signals, main ---------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    """The tool's path; sbin directories too, where Debian puts unbound for non-root PATHs."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def ensure_tools(install: bool) -> tuple[str, str | None]:
    """dnsperf (required) and unbound (optional), installing both with apt-get if root may."""
    if (find_tool("dnsperf") is None or find_tool("unbound") is None) and install:
        can_install = hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")
        if can_install:
            print(f"installing: {' '.join(APT_COMMAND)}", file=sys.stderr, flush=True)
            if not _apt(APT_COMMAND):
                # A fresh machine may have no package lists yet.
                _apt(("apt-get", "update", "-q"))
                _apt(APT_COMMAND)
    dnsperf = find_tool("dnsperf")
    if dnsperf is None:
        raise BenchError(
            "dnsperf is required and not installed: run `apt-get install -y -q dnsperf unbound` "
            "as root (Debian/Ubuntu), or run this script as root to have it do so"
        )
    return dnsperf, find_tool("unbound")


def _apt(command: Sequence[str]) -> bool:
    """Run one apt-get command non-interactively (bounded in time); True if it succeeded."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(
            command, env=env, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def tool_version(command: Sequence[str], pattern: str) -> str:
    """A tool's version for the report header, or '?': never a reason to fail the run."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else "?"


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise BenchTimeout("the run overran its time budget; every process it started is stopped")


def _on_term(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`, which stops the children


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Cold-resolution and cache-hit benchmark: our resolver vs Unbound.",
    )
    parser.add_argument("--quick", action="store_true", help="a short run (well under a minute)")
    parser.add_argument("--names", type=int, help="how many distinct names (default 1000, 200)")
    parser.add_argument("--cold-in-flight", type=int, help="queries in flight when cold (20)")
    parser.add_argument("--seconds", type=float, help="cache-hit phase length (10 s, 3 s)")
    parser.add_argument("--hit-in-flight", type=int, help="queries in flight for hits (100)")
    parser.add_argument("--no-unbound", action="store_true", help="measure our resolver only")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    parser.add_argument(
        "--block", default=DEFAULT_BLOCK, help=f"127.X block of the test internet ({DEFAULT_BLOCK})"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="run our resolver under cProfile, save the stats to FILE and print the top entries "
        "(profiling slows it down: its figures are then not comparable)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"127\.(\d{1,3})", args.block) or int(args.block.split(".")[1]) > 255:
        parser.error("--block must look like 127.X, a /16 inside 127.0.0.0/8")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    """The quick or full settings, with any single figure overridden from the command line."""
    base = QUICK if args.quick else FULL
    return Settings(
        names=args.names or base.names,
        cold_in_flight=args.cold_in_flight or base.cold_in_flight,
        hit_seconds=args.seconds or base.hit_seconds,
        hit_in_flight=args.hit_in_flight or base.hit_in_flight,
        idle_seconds=base.idle_seconds,
    )


def print_profile(path: Path, top: int = 25) -> None:
    """The functions where our resolver spent its time, by own time and by cumulative time."""
    import pstats  # only needed with --profile

    for order in ("tottime", "cumulative"):
        print(f"\ncProfile of our resolver, top {top} by {order} ({path}):")
        pstats.Stats(str(path), stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; 0 on success, 1 if the run failed, 2 if dnsperf is missing."""
    args = parse_args(argv)
    settings = settings_from(args)
    try:
        dnsperf, unbound = ensure_tools(install=not args.no_install)
    except BenchError as error:
        print(f"resolve_bench: {error}", file=sys.stderr)
        return 2
    if args.no_unbound:
        unbound = None
    elif unbound is None:
        print("unbound is not installed: measuring our resolver only", file=sys.stderr)

    resolvers = 2 if unbound else 1
    previous_term = signal.signal(signal.SIGTERM, _on_term)
    previous_alarm = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(settings.budget(resolvers))
    started = time.monotonic()
    load_before = os.getloadavg()
    results: list[Result] = []
    failures: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="resolve-bench-") as temporary:
            workdir = Path(temporary)
            workdir.chmod(0o755)
            hints = workdir / "root.hints"
            names_file = workdir / "names.txt"
            names_file.write_text("".join(f"{n} A\n" for n in bench_names(settings.names)))
            internet = build_internet(settings.names, args.block)
            internet.write_hints(hints)
            print(
                f"test internet: {len(internet.servers)} servers in {args.block}.0.0/16, "
                f"bench.test. with {settings.names} names",
                file=sys.stderr,
                flush=True,
            )
            with internet.in_thread():
                check_internet(internet, bench_names(1))
                port = free_port()
                command = ours_command(port, hints, args.profile)
                with running("ours", command, port, workdir / "ours.log") as server:
                    results.append(
                        measure(server, internet, dnsperf, names_file, workdir, settings)
                    )
                if unbound:
                    check_internet(internet, bench_names(1))
                    port = free_port()
                    conf = workdir / "unbound.conf"
                    conf.write_text(unbound_config(port, hints, workdir))
                    command = [unbound, "-d", "-c", str(conf)]
                    try:
                        with running("unbound", command, port, workdir / "unbound.log") as server:
                            results.append(
                                measure(server, internet, dnsperf, names_file, workdir, settings)
                            )
                    except BenchError as error:
                        failures.append(f"unbound: {error}")
    except BenchError as error:
        print(f"resolve_bench: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous_term)

    load_after = os.getloadavg()
    version = r"Version (\S+)"
    versions = [f"dnsperf {tool_version([dnsperf, '-h'], version)}"]
    if unbound:
        versions.append(f"unbound {tool_version([unbound, '-V'], version)}")
    mode = "--quick" if args.quick else "full"
    print()
    print(
        f"resolve_bench ({mode}) {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} on "
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        + ", ".join(versions)
    )
    print(
        f"load average before/after: {load_before[0]:.2f}/{load_after[0]:.2f}; "
        f"ran for {time.monotonic() - started:.0f} s"
        + ("; ours ran under cProfile: its figures are not comparable" if args.profile else "")
    )
    print()
    print(render_table(results, settings))
    if len(results) == 2:
        print(
            "\nours/unbound: above 1 means ours takes more (time, CPU, queries); below 1 means"
            " ours does less (qps)."
        )
    for failure in failures:
        print(f"\n{failure}")
    if args.json:
        payload = {
            "mode": mode,
            "settings": asdict(settings),
            "load_average": [load_before[0], load_after[0]],
            "results": [result.summary() for result in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.profile:
        print_profile(args.profile)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every child is already stopped by the `finally` blocks
        print("resolve_bench: interrupted", file=sys.stderr)
        sys.exit(130)
