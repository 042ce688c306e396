"""What every benchmark here shares: processes, tools, test internets, one client, one report.

Each benchmark script imports this module by its plain name (`import benchlib`): a script run as
`python benchmarks/X.py` has `benchmarks/` first on `sys.path`. Importing it also puts the
repository root on `sys.path`, so the benchmarks run from a plain checkout where `resolver` is
not installed.

The rules every benchmark follows, and which the helpers below enforce:

- network traffic only on 127.0.0.0/8: each benchmark's test internet lives in a /16 of its own
  (`--block`), away from the 127.53.0.0/16 and 127.54.0.0/16 the test suite binds, so benchmarks
  and tests can run at the same time; resolvers are only ever given that internet's root hints;
- every process a benchmark starts is stopped by its PID on the way out (`running`), whatever
  ends the run: an error, Ctrl-C, SIGTERM, or the run's own time budget (`time_budget`);
- figures are printed, never asserted;
- every query a benchmark sends itself goes through one client (`udp_load`), every percentile
  through one function (`percentile`), and every report through one writer (`Report`), so that
  figures of different scripts are measured, ranked and laid out the same way.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

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

#: Where the standard topology lives; rewritten to a benchmark's own block so that a benchmark
#: and the test suite (which binds 127.53.x.y:53 and 127.54.0.1:53) never fight over an address.
TOPOLOGY_BLOCK = "127.53"

#: How long a resolver may take to answer its first probe before the run is abandoned.
STARTUP_TIMEOUT = 20.0

#: How long a stopped child gets to exit on SIGTERM before it is killed.
STOP_GRACE = 10.0

APT_PACKAGES = ("dnsperf", "unbound")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why in one line."""


class BenchTimeout(BenchError):
    """The whole run overran its time budget (a hung resolver, dnsperf or test internet)."""


# -- command-line helpers ---------------------------------------------------------------------


def add_common_options(parser: argparse.ArgumentParser, block: str) -> None:
    """`--quick`, `--json FILE`, and `--block 127.X`: where a benchmark puts its test internet,
    so that runs can share a machine."""
    parser.add_argument("--quick", action="store_true", help="a short run (well under a minute)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument(
        "--block",
        type=block_argument,
        default=block,
        help=f"127.X block of the test internet (default {block})",
    )


def block_argument(text: str) -> str:
    """argparse type of `--block`: '127.X', a /16 inside 127.0.0.0/8 (loopback, nowhere else)."""
    match = re.fullmatch(r"127\.(\d{1,3})", text)
    if not match or int(match.group(1)) > 255:
        raise argparse.ArgumentTypeError(f"{text!r}: --block must look like 127.X (0 <= X <= 255)")
    return text


# -- the test internet ------------------------------------------------------------------------


@dataclass
class Topology:
    """Server specs and zone texts for a `TestInternet`, built up before it is started."""

    block: str
    servers: list[ServerSpec]
    zones: dict[str, str]

    @classmethod
    def standard(cls, block: str) -> Topology:
        """The standard topology of `resolver.testing.topology`, moved to `block`."""
        prefix = f"{block}."

        def moved(text: str) -> str:
            return text.replace(f"{TOPOLOGY_BLOCK}.", prefix)

        servers = [
            ServerSpec(spec.name, moved(spec.address), spec.zones) for spec in DEFAULT_SERVERS
        ]
        zones = {origin: moved(text) for origin, text in DEFAULT_ZONES.items()}
        return cls(block, servers, zones)

    def free_subnet(self) -> str:
        """A /24 of the block that no server and no delegation uses yet (the standard topology
        grows with the test suite, so a fixed choice could collide with it one day)."""
        taken = {spec.address.split(".")[2] for spec in self.servers}
        glue = re.escape(self.block) + r"\.(\d+)\."
        taken.update(re.findall(glue, self.zones.get("test.", "")))
        for octet in range(200, 255):
            if str(octet) not in taken:
                return f"{self.block}.{octet}"
        raise BenchError(f"no free /24 left in {self.block}.0.0/16")

    def add_leaf_zone(
        self,
        origin: str,
        records: str,
        *,
        ttl: int = 3600,
        soa_ttl: int | None = None,
        negative_ttl: int = 300,
    ) -> None:
        """Add zone `origin` (a child of `test.`) with two servers of its own and `records`.

        The zone is delegated from `test.` with glue (172800 s, as TLDs do), so once the
        delegation is known a name in it costs exactly one upstream query. `negative_ttl` is the
        SOA MINIMUM; the SOA's own TTL is `soa_ttl` (default: the zone's `ttl`), so negative
        answers live min(soa_ttl, negative_ttl) seconds (RFC 2308).
        """
        ns1, ns2 = self.delegate(origin)
        self.servers += [
            ServerSpec(f"ns1.{origin}", ns1, (origin,)),
            ServerSpec(f"ns2.{origin}", ns2, (origin,)),
        ]
        soa_ttl = ttl if soa_ttl is None else soa_ttl
        self.zones[origin] = (
            f"$ORIGIN {origin}\n"
            f"$TTL {ttl}\n"
            f"@ {soa_ttl} SOA ns1.{origin} hostmaster.{origin} 1 7200 3600 1209600 {negative_ttl}\n"
            f"@ NS ns1.{origin}\n"
            f"@ NS ns2.{origin}\n"
            f"ns1 A {ns1}\n"
            f"ns2 A {ns2}\n" + records
        )

    def delegate(self, origin: str) -> tuple[str, str]:
        """Delegate `origin` (a child of `test.`) to ns1 and ns2 of its own, at two addresses
        of a free /24 which are returned; who serves them is the caller's choice (a zone of
        this topology, or a faster authority started beside it, as `flood.py` does)."""
        if not origin.endswith(".test."):
            raise ValueError(f"{origin} is not under test.")
        subnet = self.free_subnet()
        ns1, ns2 = f"{subnet}.1", f"{subnet}.2"
        self.zones["test."] += (
            f"{origin} 172800 NS ns1.{origin}\n"
            f"{origin} 172800 NS ns2.{origin}\n"
            f"ns1.{origin} 172800 A {ns1}\n"
            f"ns2.{origin} 172800 A {ns2}\n"
        )
        return ns1, ns2

    def build(self) -> TestInternet:
        return TestInternet(self.zones, self.servers)


def queries_by_zone(internet: TestInternet) -> dict[str, int]:
    """Upstream queries received so far, per zone served ('.', 'test.', 'bench.test.', ...)."""
    counts: dict[str, int] = {}
    for server in internet.servers.values():
        zone = " ".join(str(zone.origin) for zone in server.zones)
        counts[zone] = counts.get(zone, 0) + server.query_count
    return counts


def check_internet(internet: TestInternet, probes: Sequence[tuple[str, str]]) -> None:
    """Ask a root server, and each server of the zones of the `(name, type)` probes, directly.

    A dead or broken test internet is then reported as such instead of showing up as a resolver
    that answers nothing but SERVFAIL. The counters are reset afterwards.
    """
    checks = [(internet.root_servers[0].address, ".", "NS")]
    for name, rdtype in probes:
        for server in internet.servers.values():
            if any(str(zone.origin) == _parent_zone(name) for zone in server.zones):
                checks.append((server.address, name, rdtype))
    for address, name, rdtype in checks:
        query = dns.message.make_query(name, rdtype)
        try:
            response = dns.query.udp(query, address, timeout=2.0)
        except (dns.exception.DNSException, OSError) as error:
            raise BenchError(f"the test internet does not answer at {address}: {error!r}") from None
        if response.rcode() != dns.rcode.NOERROR or not (response.answer or response.authority):
            raise BenchError(f"the test internet at {address} answers {name} {rdtype} wrongly")
    internet.reset_counters()


def _parent_zone(name: str) -> str:
    return name.split(".", 1)[1]


@contextlib.contextmanager
def internet_in_thread(internet: TestInternet) -> Iterator[TestInternet]:
    """`internet.in_thread()`, with 'address already in use' turned into a one-line BenchError.

    That error means another program (often a second copy of this benchmark, or a test that
    borrowed the block) holds an address: the message says to retry or pick another `--block`.
    """
    try:
        with internet.in_thread():
            yield internet
    except OSError as error:
        if error.errno == 98:
            raise BenchError(
                f"a test internet address is already in use ({error}): another run holds it; "
                "retry, or choose another --block"
            ) from None
        raise


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


def descendants(pid: int) -> list[int]:
    """The PIDs of every process below `pid` (e.g. the workers of `resolver serve --workers`).

    From /proc/PID/task/TID/children, which lists each thread's children; empty without /proc.
    """
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                with contextlib.suppress(OSError):
                    for child in (task / "children").read_text().split():
                        found.append(int(child))
                        frontier.append(int(child))
    return found


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time of one process so far, all its threads, in seconds; None if it is gone.

    From each thread's schedstat (nanoseconds) rather than stat's utime and stime, which count
    10 ms ticks: too coarse for a phase that costs Unbound a few milliseconds.
    """
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                total += int((task / "schedstat").read_text().split()[0])
    except OSError:
        return None
    return total / 1e9


def process_rss_mb(pid: int) -> float | None:
    """Resident memory of one process now (VmRSS), in MiB; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


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

    def pids(self) -> list[int]:
        """The process and its descendants: with `--workers N` the workers do the serving."""
        return [self.process.pid, *descendants(self.process.pid)]

    def cpu_seconds(self) -> float | None:
        """CPU time of the whole process tree so far; None without /proc.

        Summed over the tree because with `--workers N` the parent only supervises. A worker
        that exits takes its CPU time with it, so the figure is only meaningful while the tree
        is stable, which is the case during a measurement.
        """
        figures = [process_cpu_seconds(pid) for pid in self.pids()]
        known = [figure for figure in figures if figure is not None]
        return sum(known) if known else None

    def rss_mb(self) -> float | None:
        """Resident memory of the whole process tree now (sum of VmRSS), in MiB.

        The sum over-counts pages the workers share with their parent after fork, so for N
        workers it is an upper bound.
        """
        figures = [process_rss_mb(pid) for pid in self.pids()]
        known = [figure for figure in figures if figure is not None]
        return sum(known) if known else None

    def processes(self) -> int:
        return len(self.pids())


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


def child_env() -> dict[str, str]:
    """The environment of a child `python -m resolver`: the checkout first on its path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


@contextlib.contextmanager
def running(
    label: str, command: Sequence[str], port: int, log: Path, *, cwd: Path | None = None
) -> Iterator[Server]:
    """Start `command`, wait until it answers on `port`, and always stop it on the way out.

    `cwd` (default: the repository) is where `python -m resolver` finds its package first, so
    pointing it at another checkout runs that checkout's resolver.

    The child gets a session of its own, so a Ctrl-C in the terminal reaches only this script,
    which then stops the child itself with SIGTERM (our resolver exits cleanly on it, which also
    lets cProfile write its file, and stops its workers), and SIGKILL if it does not go within
    ten seconds.
    """
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=cwd or REPO,
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
    the grace period cannot leave the child behind. Workers of `--workers N` that outlive a
    killed parent are killed by PID too (they are our descendants: we started their parent).
    """
    if process.poll() is not None:
        return
    children = descendants(process.pid)
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in children:
            with contextlib.suppress(OSError):
                if _parent_of(pid) in (1, process.pid):  # still the orphan of our child
                    os.kill(pid, signal.SIGKILL)


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


@dataclass(frozen=True)
class Pinning:
    """CPU lists (taskset syntax) for the resolver under test, for the clients, and every CPU."""

    server: str
    clients: str
    every: str

    def command(self, command: Sequence[str], *, single_process: bool = True) -> list[str]:
        """`command` under taskset: a one-process resolver on its CPU, several on every CPU."""
        return ["taskset", "-c", self.server if single_process else self.every, *command]


def pin_cpus() -> Pinning | None:
    """Keep the resolver and its clients off each other's CPU (`--pin`); None if impossible.

    Otherwise the scheduler now and then runs the load client and the resolver on one CPU, and
    the resolver waits for its turn: on a 2-CPU machine that alone moved our p99 at 5,000 qps
    between 0.2 and 2.7 ms from run to run, and pinned it stayed at 0.25 to 0.28 ms. This
    process (and so the test internet's thread, the Python client and every child it starts
    unpinned: dnsperf, a flood's authority) goes to every CPU but the last; the resolver,
    through `Pinning.command`, to the last.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if len(cpus) < 2 or find_tool("taskset") is None:
        return None
    server, clients = cpus[-1], cpus[:-1]
    os.sched_setaffinity(0, clients)
    return Pinning(str(server), ",".join(map(str, clients)), ",".join(map(str, cpus)))


def add_pin_option(parser: argparse.ArgumentParser) -> None:
    """`--pin` / `--no-pin`, on by default with 2 CPUs or more (see `pin_cpus`)."""
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=(os.cpu_count() or 1) >= 2,
        help="run each one-process resolver on a CPU of its own and this script, its clients "
        "and the test internet on the others (N workers get every CPU); default: on with 2 "
        "CPUs or more",
    )


def ours_command(
    port: int,
    hints: Path,
    *,
    workers: int | None = None,
    config: Path | None = None,
    profile: Path | None = None,
    trust_anchor: Path | None = None,
) -> list[str]:
    """`resolver serve` on 127.0.0.1:port, resolving only inside the test internet.

    `config`: a TOML file for what has no flag (the packet cache's size, prefetch, a control
    socket); the flags given here override it. `trust_anchor`: validate with this anchor (the
    signed test internet's root key); without it, `--no-validate`."""
    prefix = [sys.executable]
    if profile is not None:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    command = [
        *prefix,
        *("-m", "resolver", "--log-level", "warning", "serve"),
        *("--listen", f"127.0.0.1:{port}", "--root-hints", str(hints), "--query-loopback"),
    ]
    if trust_anchor is None:
        # The unsigned test internet: the bundled IANA anchors would make every answer bogus.
        command.append("--no-validate")
    else:
        command += ["--trust-anchor-file", str(trust_anchor)]
    if config is not None:
        command += ["--config", str(config)]
    if workers is not None:
        command += ["--workers", str(workers)]
    return command


def unbound_config(
    port: int, hints: Path, workdir: Path, *, extra: str = "", trust_anchor: Path | None = None
) -> str:
    """An unbound.conf comparable with our resolver, confined to loopback and `workdir`.

    One thread (the yardstick: ours is measured with one process); iterator only, no validator
    (ours does no DNSSEC); relaxed QNAME minimisation, Unbound's default and ours; no
    referral-path hardening and no prefetch, so both send the same kind and number of upstream
    queries; no IPv6 (the test internet has no IPv6 server). `test.` is
    an RFC 6761 special-use name that Unbound answers NXDOMAIN for itself unless told
    otherwise. `extra` adds `server:` lines (e.g. cache sizes). `trust_anchor`: the validator
    on (`module-config: "validator iterator"`) with this anchor file (the signed test internet).
    """
    modules = "iterator"
    if trust_anchor is not None:
        modules = "validator iterator"
        extra = f'    trust-anchor-file: "{trust_anchor}"\n' + extra
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
    module-config: "{modules}"
    qname-minimisation: yes
    qname-minimisation-strict: no
    harden-referral-path: no
    prefetch: no
    so-reuseport: no
    chroot: ""
    username: ""
    directory: "{workdir}"
    pidfile: "{workdir / "unbound.pid"}"
    use-syslog: no
    logfile: ""
{extra}remote-control:
    control-enable: no
"""


# -- the load client: every query a benchmark sends itself -----------------------------------


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of `ordered` (sorted ascending); None without samples.

    Nearest rank, not interpolation: the figure is a latency some query really had, as
    dnsperf's and Unbound's histograms report them."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@dataclass
class LoadResult:
    """What one load run saw, from dnsperf's report (`resolve_bench.py`) or from `udp_load`.

    `latencies` (seconds, sorted) has one entry per answered query when asked for; `lags`
    (seconds, sorted) says how late each query of a scheduled run left (`udp_load(times=...)`).
    `send_time` (`udp_load` only) is how long queries were being sent: unlike `run_time`, it
    leaves out the wait for the last answers (up to a timeout when one is lost).
    """

    sent: int = 0
    answered: int = 0
    lost: int = 0
    rcodes: dict[str, int] = field(default_factory=dict)
    run_time: float = 0.0
    send_time: float = 0.0
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)

    @property
    def qps(self) -> float:
        """Answered queries per second."""
        return self.answered / self.run_time if self.run_time else 0.0

    def percentile(self, fraction: float) -> float | None:
        """A latency percentile, in seconds."""
        return percentile(self.latencies, fraction)

    def summary(self) -> dict[str, object]:
        """The figures for JSON: latency and lag percentiles instead of the raw lists."""
        data: dict[str, object] = {
            key: value for key, value in asdict(self).items() if key not in ("latencies", "lags")
        }
        data["qps"] = self.qps
        for samples, prefix in ((self.latencies, "latency"), (self.lags, "lag")):
            if samples:
                for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
                    data[f"{prefix}_{name}"] = percentile(samples, fraction)
                data[f"{prefix}_max"] = samples[-1]
        return data


def udp_load(
    port: int | Sequence[int],
    wires: Iterable[bytes],
    *,
    in_flight: int = 1,
    timeout: float = 2.0,
    times: Sequence[float] | None = None,
    seconds: float | None = None,
) -> LoadResult:
    """Send the queries in `wires` to 127.0.0.1:port over UDP and count what comes back.

    `port` may be several ports: query k then goes to `port[k % len(port)]`, round-robin, as a
    load balancer in front of a fleet sends (`fleet.py`).

    Two ways of pacing, the two ways clients load a server:
    - closed loop (`times` None): at most `in_flight` unanswered at a time, the next sent as
      soon as one is answered or lost; `in_flight=1` is one query at a time, the service time
      of a query without queueing;
    - open loop (`times`): query k leaves `times[k]` seconds after the start whether or not
      earlier ones were answered, as real clients do; `lags` says how late each one left.
    `seconds` stops sending after that long (with `itertools.cycle(wires)`: a run of fixed length).

    One non-blocking socket and `select`: no dnsperf needed, and fast enough for cache misses
    and a replayed trace (thousands per second). Each query gets a free 16-bit ID; one
    unanswered after `timeout` counts as lost and its ID goes to the back of the queue, so a
    late answer cannot be mistaken for the answer to a newer query. Every answered query's
    latency is kept.
    """
    result = LoadResult()
    free = collections.deque(range(1, 65536))
    outstanding: dict[int, tuple[float, float]] = {}  # ID -> (sent at, deadline), oldest first
    queries = iter(wires)
    exhausted = False
    started = time.perf_counter()
    stop_at = started + seconds if seconds is not None else math.inf
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        ports = [port] if isinstance(port, int) else list(port)
        targets = [("127.0.0.1", each) for each in ports] if len(ports) > 1 else None
        if targets is None:
            sock.connect(("127.0.0.1", ports[0]))
        else:  # not connected: replies come from every member
            sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        while not exhausted or outstanding:
            now = time.perf_counter()
            next_due = math.inf
            while not exhausted and free and (times is not None or len(outstanding) < in_flight):
                if times is not None:
                    if result.sent >= len(times):
                        exhausted = True
                        break
                    next_due = started + times[result.sent]
                    if next_due > now:
                        break
                if now >= stop_at:
                    exhausted = True
                    break
                wire = next(queries, None)
                if wire is None:
                    exhausted = True
                    break
                query_id = free.popleft()
                try:
                    packet = query_id.to_bytes(2, "big") + wire[2:]
                    if targets is None:
                        sock.send(packet)
                    else:
                        sock.sendto(packet, targets[result.sent % len(targets)])
                except BlockingIOError:
                    free.appendleft(query_id)
                    break
                if times is not None:
                    result.lags.append(now - next_due)
                    next_due = math.inf
                outstanding[query_id] = (now, now + timeout)
                result.sent += 1
                result.send_time = now - started
                now = time.perf_counter()
            if exhausted and not outstanding:
                break
            deadline = next(iter(outstanding.values()))[1] if outstanding else math.inf
            wait = max(0.0, min(0.05, deadline - now, next_due - now))
            readable, _, _ = select.select([sock], [], [], wait)
            if readable:
                while True:
                    try:
                        reply = sock.recv(65535)
                    except BlockingIOError:
                        break
                    received = time.perf_counter()
                    query_id = int.from_bytes(reply[:2], "big")
                    entry = outstanding.pop(query_id, None)
                    if entry is None:
                        continue  # late: its query was already counted as lost
                    free.append(query_id)
                    result.answered += 1
                    result.latencies.append(received - entry[0])
                    rcode = dns.rcode.to_text(dns.rcode.Rcode(reply[3] & 0x0F))
                    result.rcodes[rcode] = result.rcodes.get(rcode, 0) + 1
            now = time.perf_counter()
            while outstanding:
                query_id, (_, deadline) = next(iter(outstanding.items()))
                if deadline > now:
                    break
                del outstanding[query_id]
                free.append(query_id)
                result.lost += 1
    result.run_time = time.perf_counter() - started
    result.latencies.sort()
    result.lags.sort()
    return result


# -- tools ------------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    """The tool's path; sbin directories too, where Debian puts unbound for non-root PATHs."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def install_tools(install: bool, needed: Sequence[str] = APT_PACKAGES) -> None:
    """Install dnsperf and unbound with apt-get when one of `needed` is missing and root may.

    Both packages are installed together, whichever is missing, so that one apt-get run
    prepares every benchmark. Nothing happens without root or apt-get; the caller then reports
    what is missing.
    """
    if not install or all(find_tool(name) is not None for name in needed):
        return
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        return
    command = ("apt-get", "install", "-y", "-q", *APT_PACKAGES)
    print(f"installing: {' '.join(command)}", file=sys.stderr, flush=True)
    if not _apt(command):
        # A fresh machine may have no package lists yet.
        _apt(("apt-get", "update", "-q"))
        _apt(command)


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


def tool_version(command: Sequence[str], pattern: str = r"Version (\S+)") -> str:
    """A tool's version for the report header, or '?': never a reason to fail the run."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else "?"


# -- running a benchmark ----------------------------------------------------------------------


def progress(text: str) -> None:
    """A progress line: on stderr, so that stdout holds the report alone."""
    print(text, file=sys.stderr, flush=True)


def run_main(name: str, main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s status; Ctrl-C exits 130 with one line (every child is already
    stopped by the `finally` blocks on the way out)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)


# -- time budget and signals ------------------------------------------------------------------


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise BenchTimeout("the run overran its time budget; every process it started is stopped")


def _on_term(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`, which stops the children


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Bound the block in wall-clock time, and make SIGTERM unwind it like Ctrl-C.

    When the alarm fires, BenchTimeout is raised wherever the main thread is, and every
    `running` block on the way out stops its child: no run can hang, or leave anything behind.
    """
    previous_term = signal.signal(signal.SIGTERM, _on_term)
    previous_alarm = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(seconds + 0.999)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous_term)


# -- the report -------------------------------------------------------------------------------


def code_version() -> str:
    """The commit the resolver's code comes from, '+' if the working tree differs: which code
    a figure belongs to (read-only git commands; '?' outside a git checkout)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "resolver"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return head + ("+" if changes else "")


def report_header(name: str, quick: bool, extra: Sequence[str] = ()) -> str:
    """The first line of every report: what ran, when, where, on which code and versions."""
    mode = "--quick" if quick else "full"
    now = datetime.datetime.now().astimezone()
    parts = [
        f"commit {code_version()}",
        f"{os.cpu_count()} CPUs",
        f"Python {platform.python_version()}",
        *extra,
    ]
    return f"{name} ({mode}) {now:%Y-%m-%d %H:%M %Z} on {platform.node()}: " + ", ".join(parts)


def write_json(path: Path, data: object) -> None:
    """The figures as JSON, for comparing runs by program; dataclasses and paths included."""

    def default(value: object) -> object:
        if is_dataclass(value) and not isinstance(value, type):
            return asdict(value)
        return str(value)

    path.write_text(json.dumps(data, indent=2, default=default) + "\n")


class Report:
    """What a benchmark prints when it is done, and the same figures as JSON.

    Made when the run starts, so that its load line covers the whole run; the benchmark adds
    lines (`add`, `table`, `figures`) and JSON data (`data`) as it goes, and `emit` prints the
    header, the load line and the lines, on stdout (progress goes to stderr meanwhile).
    """

    def __init__(self, name: str, quick: bool) -> None:
        self.name = name
        self.quick = quick
        self.lines: list[str] = []
        self.data: dict[str, object] = {"mode": "quick" if quick else "full"}
        self.started = time.monotonic()
        self.load_before = os.getloadavg()

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(
        self, header: Sequence[str], rows: Iterable[Sequence[str] | str], *, left: int = 0
    ) -> None:
        """A fixed-width table (see `table`)."""
        self.lines.extend(table(header, rows, left=left))

    def figures(self, labels: Sequence[str], rows: Sequence[Row | str]) -> None:
        """A table of figures per resolver, with an X/unbound column each (see `figures_table`)."""
        self.lines.extend(figures_table(labels, rows))

    def emit(self, extra: Sequence[str] = (), json_path: Path | None = None) -> None:
        """Print the report; with `json_path`, write `data` there too."""
        load_after = os.getloadavg()
        seconds = time.monotonic() - self.started
        print()
        print(report_header(self.name, self.quick, extra))
        print(
            f"load average before/after: {self.load_before[0]:.2f}/{load_after[0]:.2f}; "
            f"ran for {seconds:.0f} s"
        )
        print()
        print("\n".join(self.lines))
        if json_path is not None:
            self.data["load_average"] = [self.load_before[0], load_after[0]]
            write_json(json_path, self.data)


def table(
    header: Sequence[str], rows: Iterable[Sequence[str] | str], *, left: int = 0
) -> list[str]:
    """Rows of cells under a header, each column as wide as its widest cell, two spaces apart.

    The first `left` columns are aligned left, the others right (figures); a row that is a
    `str` is a line of its own (a note below the table).
    """
    rows = list(rows)
    cells = [row for row in rows if not isinstance(row, str)]
    width = [
        max([len(header[i]), *(len(row[i]) for row in cells if i < len(row))])
        for i in range(len(header))
    ]

    def line(row: Sequence[str]) -> str:
        text = "  ".join(
            cell.ljust(width[i]) if i < left else cell.rjust(width[i]) for i, cell in enumerate(row)
        )
        return "  " + text.rstrip()

    return [line(header), *(row if isinstance(row, str) else line(row) for row in rows)]


@dataclass(frozen=True)
class Row:
    """One line of a table of figures: a label and one figure per resolver (None: not measured).

    `ratio` says whether dividing by Unbound's figure means something (not for text, counts of
    failures, or figures that should be zero)."""

    label: str
    values: tuple[float | str | None, ...]
    fmt: str = "{:,.0f}"
    ratio: bool = True


def target(text: str, met: bool, missed_by: str) -> str:
    """One line of a report's targets: what was asked and measured, then met or missed by how
    much (every benchmark words its verdicts alike, so they can be searched for)."""
    return f"  {text}: " + ("met" if met else f"MISSED by {missed_by}")


#: The resolver every other one is divided by in a table of figures.
REFERENCE = "unbound"


def ratio(ours: float | str | None, theirs: float | str | None) -> str:
    """ours / theirs as text, empty where it means nothing (text, unknown, or dividing by 0)."""
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or theirs == 0:
        return ""
    return f"{ours / theirs:.2f}"


def cell(value: float | str | None, fmt: str) -> str:
    """One figure as text; '-' where it was not measured."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return fmt.format(value)


def figures_table(labels: Sequence[str], rows: Sequence[Row | str]) -> list[str]:
    """A fixed-width table, one column per resolver, then each one's figure divided by Unbound's.

    A `str` among the rows is a section heading. Without an Unbound column there is no ratio.
    """
    reference = labels.index(REFERENCE) if REFERENCE in labels else None
    compared = [i for i in range(len(labels)) if reference is not None and i != reference]
    header = ["", *labels] + [f"{labels[i]}/{REFERENCE}" for i in compared]
    width = [32] + [max(14, len(h) + 2) for h in header[1:]]
    lines = [
        header[0].ljust(width[0])
        + "".join(h.rjust(w) for h, w in zip(header[1:], width[1:], strict=True))
    ]
    lines.append("-" * sum(width))
    for item in rows:
        if isinstance(item, str):
            lines.append(item)
            continue
        cells = [cell(v, item.fmt) for v in item.values]
        if reference is not None:
            cells += [
                ratio(item.values[i], item.values[reference]) if item.ratio else ""
                for i in compared
            ]
        text = ("  " + item.label).ljust(width[0])
        lines.append(text + "".join(c.rjust(w) for c, w in zip(cells, width[1:], strict=False)))
    return lines
