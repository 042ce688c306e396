"""Cold resolution and cache hits: our resolver (1 worker, then N) side by side with Unbound.

    python benchmarks/resolve_bench.py [--quick] [--workers N] [--profile FILE] [--json FILE]
    python benchmarks/resolve_bench.py --signed [--quick] [--json FILE]

`--signed`, the cost of validation: the signed test internet (`TestInternet.signed`, on its own
addresses 127.53.100.0/24) with `bench.sec.` (ECDSA P-256, NSEC) holding the names; ours with
validation on (`--trust-anchor-file`, the internet's root key) and off (`--no-validate`), and
Unbound with its validator (`module-config: "validator iterator"`, `trust-anchor-file`) and
without (`"iterator"`), each measured as below (cold, warm check, hits; no N workers, no
low-load stream). The `ours` and `unbound` columns are the validating ones.

A loopback test internet (the standard topology of `resolver.testing` plus a `bench.test.` zone
of many A records, delegated from `test.`) runs in a thread of this process; each resolver runs as
a subprocess pointed at that internet's root hints, and `dnsperf` drives it. The resolvers, in
turn, each with an empty cache: ours with one worker, ours with N workers (`serve --workers N`),
and Unbound with one thread. Per resolver:

1. cold: every benchmark name once, from an empty cache, at a fixed number of queries in flight:
   wall time, SERVFAILs and lost queries, and upstream queries per name (the test internet's
   counters, so every resolver is charged exactly what the authoritative side saw). With N
   workers, whose caches are separate, this phase is replaced by warming every worker's cache
   (passes over the names until one costs no upstream query);
2. warm check: the same names again, which must cost no upstream query;
3. cache hits at saturation: the names in a loop for a fixed time, many queries in flight: qps,
   latency percentiles, and the server's CPU time per query (steadier than qps on a shared
   machine);
4. cache hits at a fixed rate (5,000 qps, `dnsperf -Q`): the latency an unsaturated resolver
   gives, which the p99 target is about;
5. unloaded latency: one query at a time from the Python load client: the service time of a hit;
6. low load (one-process resolvers): a stream at a fixed modest rate (200 qps), names drawn by a
   Zipf law from a few thousand in bench.test. (some NXDOMAIN, some with short TTLs), a mix of
   hits and misses: the resolver's CPU time over the stream, per miss and per datagram received;
   and the same stream played to `echo.py`, a server that only sends each query back, once
   under trio and once as a plain blocking loop: its CPU per datagram is what waking a trio
   process, and any Python process, costs on this machine at this rate, the floor under our
   figure.

Then the targets (CPU per cold name and per miss at low load, cold wall time and upstream
queries against Unbound's, cache-hit throughput against Unbound's, p99 at 5,000 qps of hits),
each marked met or missed (by how much); the flood's target is `flood.py`'s, resident memory's
`memory.py`'s. Figures are printed, never asserted: on a shared two-core machine they drift
from run to run, and the ratio to Unbound (measured in the same run) is the figure that means
something.

Needs `dnsperf` (Debian package dnsperf); Unbound (package unbound) is optional. When either is
missing and this runs as root, it runs `apt-get install -y -q dnsperf unbound` first (disable with
--no-install). Network traffic stays on 127.0.0.0/8: the test internet lives in a /16 of its own
(127.153.0.0/16 by default, apart from the 127.53/16 and 127.54/16 the test suite binds, so the
two can run at the same time), and every resolver is only ever given its hints.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import benchlib
import dns.message
import dns.rcode

from resolver.testing import TestInternet, signed_topology

DEFAULT_BLOCK = "127.153"

#: --signed: the signed test internet's root key, written in the run's directory.
TRUST_ANCHOR = "root.key"

#: TTL of the benchmark records: far longer than any run, so no hit turns into a miss midway.
BENCH_TTL = 3600

#: dnsperf's per-query timeout in the cold phase; above the resolver's 8 s resolution limit, so
#: a resolution that gives up shows as SERVFAIL rather than as a lost query.
COLD_QUERY_TIMEOUT = 10.0

#: Names per second below which a one-pass dnsperf run counts as hung (ours does ~1,000).
MIN_COLD_RATE = 20

#: Warming N workers' separate caches: stop after this many passes per worker in a row that
#: cost no upstream query, or after MAX_WARM_PASSES in all.
WARM_QUIET_PASSES_PER_WORKER = 6
MAX_WARM_PASSES = 100

#: The targets: what our resolver should achieve beside Unbound in the same run.
TARGET_HIT_RATIO = 0.75  # cache-hit qps with one worker, as a fraction of Unbound's
TARGET_RATE_P99_MS = 0.5  # p99 latency at the fixed rate of cache hits
TARGET_COLD_WALL_RATIO = 2.0  # cold wall time, as a multiple of Unbound's
TARGET_CPU_PER_MISS_US = 250  # CPU per cold name, and per miss of the low-load stream

#: The low-load stream: names `z00000.bench.test.` ... asked by a Zipf law of this exponent
#: (rank r with probability proportional to 1/r^s, as real query streams are), every
#: LOWLOAD_NX_EVERY-th of them absent (NXDOMAIN), TTLs cycling through LOWLOAD_TTLS so that
#: misses keep coming after the first pass over the popular names.
LOWLOAD_ZIPF = 0.9
LOWLOAD_NX_EVERY = 20
LOWLOAD_TTLS = (10, 60, BENCH_TTL)
LOWLOAD_TIMEOUT = 2.0

UNBOUND = "unbound"
OURS = "ours"
#: --signed: the zone of the names, and the columns without validation.
SIGNED_ZONE = "bench.sec."
OURS_NO_VALIDATION = "ours no-val"
UNBOUND_NO_VALIDATION = "unbound no-val"
#: The floors of the low-load stream: `echo.py` under trio, as our listener waits, and as a
#: plain blocking loop (any Python server's floor).
ECHOES = {"trio echo": [], "blocking echo": ["--blocking"]}


@dataclass(frozen=True)
class Settings:
    """The size of one run; `--quick` trades precision for a run well under a minute."""

    names: int
    cold_in_flight: int
    hit_seconds: float
    hit_in_flight: int
    clients: int  # dnsperf -c: client sockets, so SO_REUSEPORT spreads them over the workers
    rate: int  # queries per second of the fixed-rate phase
    rate_seconds: float
    idle_seconds: float
    lowload_rate: int  # queries per second of the low-load stream
    lowload_seconds: float
    lowload_names: int  # the stream's universe of names
    hit_phases: bool = True  # False (--cold-only): the cold phase and the warm check only
    zone: str = "bench.test."  # where the benchmark's names are (SIGNED_ZONE with --signed)
    lowload_phase: bool = True  # False (--signed): no low-load stream

    def budget(self, resolvers: int) -> int:
        """A generous wall-clock bound for the whole run, so that nothing can hang forever."""
        one_pass = COLD_QUERY_TIMEOUT + self.names / MIN_COLD_RATE
        per_resolver = (
            benchlib.STARTUP_TIMEOUT
            + 3 * one_pass
            + self.hit_seconds
            + self.rate_seconds
            + self.idle_seconds
            + self.lowload_seconds
            + LOWLOAD_TIMEOUT
            + 3 * 60  # dnsperf's own margin per phase, stopping, reading its output
        )
        warm_passes = MAX_WARM_PASSES * (2 + self.names / 2000)  # passes of mostly hits
        floors = len(ECHOES) * (self.lowload_seconds + LOWLOAD_TIMEOUT + benchlib.STARTUP_TIMEOUT)
        return math.ceil(60 + resolvers * per_resolver + warm_passes + floors)


QUICK = Settings(
    names=200,
    cold_in_flight=20,
    hit_seconds=3.0,
    hit_in_flight=100,
    clients=16,
    rate=5000,
    rate_seconds=2.0,
    idle_seconds=1.0,
    lowload_rate=200,
    lowload_seconds=5.0,
    lowload_names=2000,
)
FULL = Settings(
    names=1000,
    cold_in_flight=20,
    hit_seconds=10.0,
    hit_in_flight=100,
    clients=16,
    rate=5000,
    rate_seconds=10.0,
    idle_seconds=3.0,
    lowload_rate=200,
    lowload_seconds=60.0,
    lowload_names=5000,
)


# -- the test internet ------------------------------------------------------------------------


def bench_names(count: int, zone: str = "bench.test.") -> list[str]:
    """The benchmark's query names, all distinct and all in `zone`."""
    return [f"h{index:05d}.{zone}" for index in range(count)]


def lowload_names(count: int) -> list[str]:
    """The low-load stream's universe, most popular first (every one of them in bench.test.)."""
    return [f"z{index:05d}.bench.test." for index in range(count)]


def lowload_records(count: int) -> str:
    """Zone lines for the low-load names that exist, each with its TTL from LOWLOAD_TTLS."""
    return "".join(
        f"{name} {LOWLOAD_TTLS[index % len(LOWLOAD_TTLS)]} A 198.51.100.{index % 254 + 1}\n"
        for index, name in enumerate(lowload_names(count))
        if index % LOWLOAD_NX_EVERY != LOWLOAD_NX_EVERY - 1
    )


def lowload_stream(settings: Settings) -> list[bytes]:
    """The low-load queries, in order: a seeded Zipf draw, the same for every resolver."""
    names = lowload_names(settings.lowload_names)
    weights = [1 / (rank + 1) ** LOWLOAD_ZIPF for rank in range(len(names))]
    count = round(settings.lowload_rate * settings.lowload_seconds)
    wires = {name: dns.message.make_query(name, "A").to_wire() for name in names}
    return [wires[name] for name in random.Random(9).choices(names, weights, k=count)]


def build_internet(settings: Settings, block: str) -> TestInternet:
    """The standard topology moved to `block`, plus bench.test. with the benchmark's names.

    bench.test. gets two servers of its own (as most real zones have) and is delegated from
    test. with glue, so a cold name costs one query once the delegation is known.
    """
    records = "".join(
        f"{name} {BENCH_TTL} A 192.0.2.{index % 254 + 1}\n"
        for index, name in enumerate(bench_names(settings.names, settings.zone))
    )
    if settings.zone == SIGNED_ZONE:  # signed with fixed keys on fixed addresses: no `block`
        return TestInternet.signed(bench=records)
    topology = benchlib.Topology.standard(block)
    records += lowload_records(settings.lowload_names)
    topology.add_leaf_zone("bench.test.", records, ttl=BENCH_TTL)
    return topology.build()


# -- dnsperf ----------------------------------------------------------------------------------


_VERBOSE = re.compile(r"^> ([A-Z]+) \S+ \S+ ([0-9.]+)$")
_FIELDS = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "answered": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "run_time": re.compile(r"Run time \(s\):\s+([0-9.]+)"),
}


def parse_dnsperf(lines: Iterator[str]) -> benchlib.LoadResult:
    """Parse dnsperf 2.x output: the -v line of each response, then the final statistics."""
    run = benchlib.LoadResult()
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
        raise benchlib.BenchError(f"dnsperf printed no statistics:\n{text[-2000:]}")
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
    clients: int = 1,
    runs: int | None = None,
    seconds: float | None = None,
    rate: int | None = None,
    query_timeout: float = 5.0,
    mode: str | None = None,
    options: Sequence[str] = (),
) -> benchlib.LoadResult:
    """Run dnsperf against 127.0.0.1:port and parse what it printed (kept in `output`).

    Every response is printed with -v into a file rather than a pipe, so that reading it cannot
    slow dnsperf down; percentiles are computed from those lines afterwards. `mode` is dnsperf's
    transport (`-m`: udp, tcp, dot, doh), `options` its `-O` settings (e.g. `doh-uri=...`).
    """
    command = [dnsperf, "-s", "127.0.0.1", "-p", str(port), "-d", str(names_file)]
    if mode is not None:
        command += ["-m", mode]
    for option in options:
        command += ["-O", option]
    command += ["-q", str(in_flight), "-c", str(clients), "-t", f"{query_timeout:g}", "-v"]
    if runs is not None:
        command += ["-n", str(runs)]
    if seconds is not None:
        command += ["-l", f"{seconds:g}"]
    if rate is not None:
        command += ["-Q", str(rate)]
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
            # subprocess.run has killed dnsperf (its own child) before raising.
            raise benchlib.BenchError(f"dnsperf did not finish within {limit:g} s") from None
    if finished.returncode != 0:
        raise benchlib.BenchError(
            f"dnsperf failed ({finished.returncode}): {finished.stderr.strip()}"
        )
    with output.open() as lines:
        return parse_dnsperf(lines)


def unloaded(port: int, names: Sequence[str], seconds: float) -> benchlib.LoadResult:
    """One query at a time for `seconds`: the service time of a hit, without queueing.

    The Python load client rather than dnsperf, whose sender thread sleeps between queries when
    only one may be outstanding (about 2,000 qps, and a few hundred with -v): far too few samples.
    The client's own cost (a few microseconds of Python) is in every figure, for every resolver.
    """
    wires = [dns.message.make_query(name, "A").to_wire() for name in names]
    return benchlib.udp_load(port, itertools.cycle(wires), timeout=1.0, seconds=seconds)


# -- one resolver, five phases ----------------------------------------------------------------


@dataclass
class Result:
    """Everything measured for one resolver."""

    label: str
    processes: int
    cold: benchlib.LoadResult | None  # None: warmed in passes instead (separate worker caches)
    cold_upstream: dict[str, int]
    cold_cpu: float | None
    warm_passes: int
    warm_upstream: int
    hits: benchlib.LoadResult | None  # None: not measured (--cold-only), as for the next two
    hit_upstream: int | None
    hit_cpu: float | None
    rate: benchlib.LoadResult | None
    rate_upstream: int | None
    idle: benchlib.LoadResult | None
    lowload: benchlib.LoadResult | None  # None: not measured (N workers, --cold-only)
    lowload_upstream: int | None
    lowload_cpu: float | None
    rss_mb: float | None

    def summary(self) -> dict[str, object]:
        data = {
            key: value
            for key, value in self.__dict__.items()
            if not isinstance(value, benchlib.LoadResult)
        }
        for name in ("cold", "hits", "rate", "idle", "lowload"):
            run = getattr(self, name)
            data[name] = run.summary() if run is not None else None
        return data


def delta(after: float | None, before: float | None) -> float | None:
    """after - before, where either may be unknown (no /proc)."""
    return None if after is None or before is None else after - before


@dataclass
class Context:
    """What every phase needs besides the server."""

    internet: TestInternet
    dnsperf: str
    names_file: Path
    workdir: Path
    settings: Settings


def server_workers(server: benchlib.Server) -> int:
    """How many processes answer queries: the children of a supervisor, or the process itself."""
    return max(1, server.processes() - 1)


def measure(server: benchlib.Server, ctx: Context, *, cold: bool) -> Result:
    """The phases against one running resolver whose cache starts empty."""
    settings, internet = ctx.settings, ctx.internet
    out = ctx.workdir / f"dnsperf-{server.label.replace(' ', '')}"

    def say(what: str) -> None:
        benchlib.progress(f"  {server.label}: {what}")

    def one_pass(suffix: str, clients: int) -> benchlib.LoadResult:
        return run_dnsperf(
            ctx.dnsperf,
            server.port,
            ctx.names_file,
            out.with_suffix(suffix),
            in_flight=settings.cold_in_flight,
            clients=clients,
            runs=1,
            query_timeout=COLD_QUERY_TIMEOUT,
        )

    cold_run: benchlib.LoadResult | None = None
    cold_upstream: dict[str, int] = {}
    cold_cpu = None
    passes = 0
    internet.reset_counters()
    if cold:
        say(f"cold: {settings.names} names, {settings.cold_in_flight} in flight")
        cpu = server.cpu_seconds()
        cold_run = one_pass(".cold", 1)
        cold_cpu = delta(server.cpu_seconds(), cpu)
        cold_upstream = benchlib.queries_by_zone(internet)
    else:
        # Each worker has a cache of its own, and the kernel picks the worker from the client's
        # address and port. A pass over every name from one fresh socket therefore warms one
        # worker completely, and costs nothing upstream if that worker was warm already: once
        # enough passes in a row cost nothing, no worker can be cold but by a tiny chance
        # ((1 - 1/N) ** passes: 0.02% for 2 workers).
        say(f"warming every worker's cache: passes of {settings.names} names, one socket each")
        wires = [
            dns.message.make_query(name, "A").to_wire()
            for name in bench_names(settings.names, settings.zone)
        ]
        quiet_needed = WARM_QUIET_PASSES_PER_WORKER * server_workers(server)
        quiet = 0
        while quiet < quiet_needed and passes < MAX_WARM_PASSES:
            internet.reset_counters()
            benchlib.udp_load(
                server.port, wires, in_flight=settings.cold_in_flight, timeout=COLD_QUERY_TIMEOUT
            )
            passes += 1
            quiet = quiet + 1 if internet.total_queries() == 0 else 0

    say("warm check: the same names again")
    internet.reset_counters()
    one_pass(".warm", settings.clients)
    warm_upstream = internet.total_queries()
    result = Result(
        label=server.label,
        processes=server.processes(),
        cold=cold_run,
        cold_upstream=cold_upstream,
        cold_cpu=cold_cpu,
        warm_passes=passes,
        warm_upstream=warm_upstream,
        hits=None,
        hit_upstream=None,
        hit_cpu=None,
        rate=None,
        rate_upstream=None,
        idle=None,
        lowload=None,
        lowload_upstream=None,
        lowload_cpu=None,
        rss_mb=None,
    )
    if not settings.hit_phases:
        result.rss_mb = server.rss_mb()
        return result

    say(f"cache hits: {settings.hit_seconds:g} s, {settings.hit_in_flight} in flight")
    internet.reset_counters()
    cpu = server.cpu_seconds()
    hits = run_dnsperf(
        ctx.dnsperf,
        server.port,
        ctx.names_file,
        out.with_suffix(".hits"),
        in_flight=settings.hit_in_flight,
        clients=settings.clients,
        seconds=settings.hit_seconds,
    )
    hit_cpu = delta(server.cpu_seconds(), cpu)
    hit_upstream = internet.total_queries()

    say(f"cache hits at {settings.rate:,} qps: {settings.rate_seconds:g} s")
    internet.reset_counters()
    rate = run_dnsperf(
        ctx.dnsperf,
        server.port,
        ctx.names_file,
        out.with_suffix(".rate"),
        in_flight=settings.hit_in_flight,
        clients=settings.clients,
        seconds=settings.rate_seconds,
        rate=settings.rate,
    )
    rate_upstream = internet.total_queries()

    say(f"unloaded latency: {settings.idle_seconds:g} s, one query at a time")
    idle = unloaded(server.port, bench_names(settings.names, settings.zone), settings.idle_seconds)
    result.hits, result.hit_upstream, result.hit_cpu = hits, hit_upstream, hit_cpu
    result.rate, result.rate_upstream = rate, rate_upstream
    result.idle = idle
    if cold and settings.lowload_phase:
        say(
            f"low load: {settings.lowload_seconds:g} s at {settings.lowload_rate} qps, "
            f"Zipf over {settings.lowload_names:,} names"
        )
        stream = lowload_stream(settings)
        internet.reset_counters()
        cpu = server.cpu_seconds()
        result.lowload = benchlib.udp_load(
            server.port,
            stream,
            times=[k / settings.lowload_rate for k in range(len(stream))],
            timeout=LOWLOAD_TIMEOUT,
        )
        result.lowload_cpu = delta(server.cpu_seconds(), cpu)
        result.lowload_upstream = internet.total_queries()
    result.rss_mb = server.rss_mb()
    return result


def lowload_floor(
    label: str, settings: Settings, pinning: benchlib.Pinning | None, workdir: Path
) -> Floor:
    """The low-load stream, at its rate, sent to `echo.py` pinned as the resolvers were."""
    benchlib.progress(f"{label}: the low-load stream, {settings.lowload_seconds:g} s")
    port = benchlib.free_port()
    command = [sys.executable, str(Path(__file__).with_name("echo.py")), str(port), *ECHOES[label]]
    if pinning is not None:
        command = pinning.command(command)
    log = workdir / f"{label.replace(' ', '-')}.log"
    with benchlib.running(label, command, port, log) as server:
        stream = lowload_stream(settings)
        cpu = server.cpu_seconds()
        run = benchlib.udp_load(
            server.port,
            stream,
            times=[k / settings.lowload_rate for k in range(len(stream))],
            timeout=LOWLOAD_TIMEOUT,
        )
        return Floor(label, run, delta(server.cpu_seconds(), cpu))


# -- the report -------------------------------------------------------------------------------


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds, keeping None (no sample) as None."""
    return None if seconds is None else seconds * 1000


def per_query_us(cpu: float | None, queries: int) -> float | None:
    """CPU seconds spread over `queries`, in microseconds; None when either is missing."""
    return None if cpu is None or queries == 0 else cpu / queries * 1e6


#: Reads one figure of a table row out of a resolver's results.
Getter = Callable[[Result], float | str | None]


def cpu_per_miss(result: Result) -> float | None:
    """The low-load stream's CPU, hits and idle time included, per miss: what the resolver
    costs per miss at low load (hits are cheap next to it, so this is close to a miss's cost)."""
    return per_query_us(result.lowload_cpu, result.lowload_upstream or 0)


def datagrams_per_miss(result: Result) -> float | None:
    """Datagrams the resolver received per miss of the low-load stream: the client's queries
    (hits among them) and the authorities' replies, each a wake-up of an idle process."""
    run, misses = result.lowload, result.lowload_upstream
    return None if run is None or not misses else (run.answered + misses) / misses


def cpu_per_datagram(result: Result) -> float | None:
    """The low-load stream's CPU per datagram received: comparable with the echo's floor."""
    run, misses = result.lowload, result.lowload_upstream
    if run is None or misses is None:
        return None
    return per_query_us(result.lowload_cpu, run.answered + misses)


@dataclass
class Floor:
    """The low-load stream played to `echo.py`: what waking an idle process costs here."""

    label: str  # a key of ECHOES
    run: benchlib.LoadResult
    cpu: float | None

    def per_datagram_us(self) -> float | None:
        return per_query_us(self.cpu, self.run.answered)

    def per_miss_us(self, result: Result) -> float | None:
        """The floor of `result`'s CPU per miss: the echo's cost for as many datagrams."""
        per_datagram, datagrams = self.per_datagram_us(), datagrams_per_miss(result)
        return None if per_datagram is None or datagrams is None else per_datagram * datagrams


def floor_lines(results: Sequence[Result], floors: Sequence[Floor]) -> list[str]:
    """Below the low-load figures: each echo's CPU per datagram, and what that makes per miss."""
    lines = []
    for floor in floors:
        per_datagram = floor.per_datagram_us()
        if per_datagram is None:
            continue
        per_miss = ", ".join(
            f"{result.label} {figure:,.0f} us"
            for result in results
            if (figure := floor.per_miss_us(result)) is not None
        )
        lines += [
            f"  floor, {floor.label} ({' '.join(['echo.py', *ECHOES[floor.label]])}) on the "
            f"same stream: {per_datagram:,.0f} us CPU per datagram ({floor.run.answered:,} "
            "answered)",
            f"    per miss (x datagrams received per miss): {per_miss}",
        ]
    return lines


def failures(run: benchlib.LoadResult | None) -> str | None:
    if run is None:
        return None
    return f"{run.rcodes.get('SERVFAIL', 0)} / {run.lost}"


def rows_for(
    results: Sequence[Result], settings: Settings, floors: Sequence[Floor]
) -> list[benchlib.Row | str]:
    """The table, section by section (a str is a section heading)."""

    def row(label: str, get: Getter, fmt: str = "{:,.0f}", ratio: bool = True) -> benchlib.Row:
        return benchlib.Row(label, tuple(get(result) for result in results), fmt, ratio)

    def upstream_split(result: Result) -> str | None:
        if result.cold is None:
            return None
        zones = result.cold_upstream
        bench = zones.get(settings.zone, 0)
        tld = settings.zone.split(".", 1)[1]
        return f"{zones.get('.', 0)} / {zones.get(tld, 0)} / {bench}"

    def cold_upstream(result: Result) -> float | None:
        return None if result.cold is None else sum(result.cold_upstream.values()) / n

    def on(phase: str, get: Callable[[benchlib.LoadResult], float | str | None]) -> Getter:
        """A getter for a figure of one phase, None where the phase was not measured."""

        def getter(result: Result) -> float | str | None:
            run = getattr(result, phase)
            return None if run is None else get(run)

        return getter

    def latency(fraction: float) -> Callable[[benchlib.LoadResult], float | None]:
        return lambda run: ms(run.percentile(fraction))

    def percentiles(phase: str, which: Sequence[tuple[str, float]]) -> list[benchlib.Row]:
        return [
            row(f"latency {name} (ms)", on(phase, latency(fraction)), "{:.3f}")
            for name, fraction in which
        ]

    def latency_max(phase: str) -> benchlib.Row:
        return row(
            "latency max (ms)",
            on(phase, lambda run: ms(run.latencies[-1] if run.latencies else None)),
            "{:.3f}",
        )

    def hit_share(result: Result) -> float | None:
        run, misses = result.lowload, result.lowload_upstream
        if run is None or misses is None or not run.answered:
            return None
        return 100 * max(0, run.answered - misses) / run.answered

    n = settings.names
    hit_percentiles = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    cold_rows: list[benchlib.Row | str] = [
        f"cold: {n} distinct names from an empty cache, {settings.cold_in_flight} in flight",
        row("wall time (s)", on("cold", lambda c: c.run_time), "{:.2f}"),
        row("names per second", on("cold", lambda c: c.qps)),
        row("SERVFAIL / lost", lambda r: failures(r.cold), ratio=False),
        row(
            "non-NOERROR answers",
            on("cold", lambda c: c.answered - c.rcodes.get("NOERROR", 0)),
            ratio=False,
        ),
        row("upstream queries per name", cold_upstream, "{:.3f}"),
        row(
            f"  to . / {settings.zone.split('.', 1)[1]} / {settings.zone}",
            upstream_split,
            ratio=False,
        ),
        row("latency p50 (ms)", on("cold", lambda c: ms(c.percentile(0.5))), "{:.2f}"),
        row("latency p99 (ms)", on("cold", lambda c: ms(c.percentile(0.99))), "{:.2f}"),
        row(
            "server CPU per name (us)",
            lambda r: None if r.cold is None else per_query_us(r.cold_cpu, n),
            "{:,.0f}",
        ),
        row("passes to warm every worker", lambda r: r.warm_passes or None, ratio=False),
        row("upstream queries, warm re-run", lambda r: r.warm_upstream, ratio=False),
    ]
    process_rows: list[benchlib.Row | str] = [
        "process",
        row("processes", lambda r: r.processes, ratio=False),
        row("resident memory at end (MB)", lambda r: r.rss_mb, "{:.1f}"),
    ]
    if not settings.hit_phases:
        return cold_rows + process_rows
    rows: list[benchlib.Row | str] = [
        *cold_rows,
        f"cache hits: {settings.hit_seconds:g} s at {settings.hit_in_flight} in flight, "
        f"{settings.clients} client sockets",
        row("queries per second", on("hits", lambda h: h.qps)),
        *percentiles("hits", hit_percentiles),
        latency_max("hits"),
        row(
            "server CPU per query (us)",
            lambda r: None if r.hits is None else per_query_us(r.hit_cpu, r.hits.answered),
            "{:,.1f}",
        ),
        row("SERVFAIL / lost", lambda r: failures(r.hits), ratio=False),
        row("upstream queries", lambda r: r.hit_upstream, ratio=False),
        f"cache hits at a fixed {settings.rate:,} qps: {settings.rate_seconds:g} s (dnsperf -Q)",
        row("queries per second", on("rate", lambda h: h.qps)),
        *percentiles("rate", (*hit_percentiles, ("p99.9", 0.999))),
        latency_max("rate"),
        row("SERVFAIL / lost", lambda r: failures(r.rate), ratio=False),
        row("upstream queries", lambda r: r.rate_upstream, ratio=False),
        f"cache hits, unloaded: {settings.idle_seconds:g} s, one query at a time (Python client)",
        row("queries answered", on("idle", lambda h: h.answered)),
        *percentiles("idle", hit_percentiles),
        row("SERVFAIL / lost", lambda r: failures(r.idle), ratio=False),
    ]
    lowload: list[benchlib.Row | str] = [
        f"low load: {settings.lowload_seconds:g} s at a fixed {settings.lowload_rate} qps, "
        f"Zipf over {settings.lowload_names:,} names ({1 / LOWLOAD_NX_EVERY:.0%} NXDOMAIN, "
        f"TTLs {', '.join(f'{ttl} s' for ttl in LOWLOAD_TTLS)})",
        row("queries answered", on("lowload", lambda h: h.answered)),
        row("misses (upstream queries)", lambda r: r.lowload_upstream),
        row("hits (%)", hit_share, "{:.1f}"),
        row("server CPU (s)", lambda r: r.lowload_cpu, "{:.2f}"),
        row("server CPU per miss (us)", cpu_per_miss, "{:,.0f}"),
        row("CPU per datagram received (us)", cpu_per_datagram, "{:,.0f}"),
        *floor_lines(results, floors),
        *percentiles("lowload", hit_percentiles),
        latency_max("lowload"),
        row("SERVFAIL / lost", lambda r: failures(r.lowload), ratio=False),
    ]
    return [*rows, *(lowload if settings.lowload_phase else []), *process_rows]


def target_lines(
    results: Sequence[Result], settings: Settings, floors: Sequence[Floor]
) -> list[str]:
    """The targets, each met or missed, with the margin."""
    by_label = {r.label: r for r in results}
    ours, unbound = by_label.get(OURS), by_label.get(UNBOUND)
    lines = ["targets, each met or missed in this run"]
    if ours is None:
        return lines
    target = benchlib.target
    cpu = per_query_us(ours.cold_cpu, settings.names)
    if ours.cold is not None and cpu is not None:
        theirs = None if unbound is None else per_query_us(unbound.cold_cpu, settings.names)
        beside = "" if theirs is None else f" (Unbound {theirs:,.0f} us)"
        lines.append(
            target(
                f"CPU per cold name <= {TARGET_CPU_PER_MISS_US} us: {cpu:,.0f} us{beside}",
                cpu <= TARGET_CPU_PER_MISS_US,
                f"{cpu - TARGET_CPU_PER_MISS_US:,.0f} us",
            )
        )
    cpu = cpu_per_miss(ours)
    if cpu is not None:
        theirs = None if unbound is None else cpu_per_miss(unbound)
        beside = "" if theirs is None else f" (Unbound {theirs:,.0f} us)"
        under = ", ".join(
            f"{floor.label} {figure:,.0f} us"
            for floor in floors
            if (figure := floor.per_miss_us(ours)) is not None
        )
        if under:
            beside += f"; the floor for as many datagrams: {under}"
        lines.append(
            target(
                f"CPU per miss at {settings.lowload_rate} qps <= {TARGET_CPU_PER_MISS_US} us: "
                f"{cpu:,.0f} us{beside}",
                cpu <= TARGET_CPU_PER_MISS_US,
                f"{cpu - TARGET_CPU_PER_MISS_US:,.0f} us",
            )
        )
    if unbound is not None and ours.cold is not None and unbound.cold is not None:
        if unbound.cold.run_time:
            ratio = ours.cold.run_time / unbound.cold.run_time
            lines.append(
                target(
                    f"cold wall time <= {TARGET_COLD_WALL_RATIO:g} x Unbound's: "
                    f"{ours.cold.run_time:.2f} vs {unbound.cold.run_time:.2f} s = {ratio:.2f} x",
                    ratio <= TARGET_COLD_WALL_RATIO,
                    f"{ratio - TARGET_COLD_WALL_RATIO:.2f} x",
                )
            )
        mine = sum(ours.cold_upstream.values()) / settings.names
        theirs_per_name = sum(unbound.cold_upstream.values()) / settings.names
        lines.append(
            target(
                f"cold upstream queries per name <= Unbound's: {mine:.3f} vs {theirs_per_name:.3f}",
                mine <= theirs_per_name,
                f"{mine - theirs_per_name:.3f} per name",
            )
        )
    if ours.hits is not None and unbound is not None and unbound.hits and unbound.hits.qps:
        ratio = ours.hits.qps / unbound.hits.qps
        lines.append(
            target(
                f"cache-hit throughput, 1 worker >= {TARGET_HIT_RATIO:g} x Unbound: "
                f"{ours.hits.qps:,.0f} vs {unbound.hits.qps:,.0f} qps = {ratio:.2f} x",
                ratio >= TARGET_HIT_RATIO,
                f"{TARGET_HIT_RATIO - ratio:.2f} x",
            )
        )
    for result in results:
        if result.label == UNBOUND or result.rate is None:
            continue
        p99 = ms(result.rate.percentile(0.99))
        if p99 is None:
            continue
        lines.append(
            target(
                f"p99 < {TARGET_RATE_P99_MS:g} ms at {settings.rate:,} qps of hits, "
                f"{result.label}: {p99:.3f} ms (at {result.rate.qps:,.0f} qps achieved)",
                p99 < TARGET_RATE_P99_MS,
                f"{p99 - TARGET_RATE_P99_MS:.3f} ms",
            )
        )
    lines.append("  (the flood's target: flood.py; resident memory's: memory.py)")
    return lines


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Cold-resolution and cache-hit benchmark: our resolver vs Unbound.",
    )
    parser.add_argument("--names", type=int, help="how many distinct names (default 1000, 200)")
    parser.add_argument("--cold-in-flight", type=int, help="queries in flight when cold (20)")
    parser.add_argument("--seconds", type=float, help="cache-hit phase length (10 s, 3 s)")
    parser.add_argument("--hit-in-flight", type=int, help="queries in flight for hits (100)")
    parser.add_argument("--clients", type=int, help="dnsperf client sockets for hits (16)")
    parser.add_argument("--rate", type=int, help="queries per second of the fixed-rate phase")
    parser.add_argument(
        "--lowload-rate", type=int, help="queries per second of the low-load stream (200)"
    )
    parser.add_argument(
        "--lowload-seconds", type=float, help="length of the low-load stream (60 s, 5 s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="also measure ours with this many workers "
        "(default: the number of CPUs, %(default)s); 1 or less: skip",
    )
    parser.add_argument(
        "--cold-only",
        action="store_true",
        help="the cold phase and the warm check only (with --profile: where a cold name's time "
        "goes); no N workers",
    )
    parser.add_argument(
        "--signed",
        action="store_true",
        help="the cost of DNSSEC validation: a signed zone, ours and Unbound with validation on "
        "and off (no N workers, no low-load stream)",
    )
    benchlib.add_pin_option(parser)
    parser.add_argument("--no-unbound", action="store_true", help="measure our resolver only")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    parser.add_argument(
        "--checkout",
        type=Path,
        metavar="DIR",
        help="run our resolver from the checkout at DIR (e.g. an older commit's `git archive`) "
        "instead of this one, for before/after comparisons",
    )
    benchlib.add_common_options(parser, DEFAULT_BLOCK)
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="run our 1-worker resolver under cProfile, save the stats to FILE and print the top "
        "entries (profiling slows it down: its figures are then not comparable)",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """The quick or full settings, with any single figure overridden from the command line."""
    base = QUICK if args.quick else FULL
    return Settings(
        names=args.names or base.names,
        cold_in_flight=args.cold_in_flight or base.cold_in_flight,
        hit_seconds=args.seconds or base.hit_seconds,
        hit_in_flight=args.hit_in_flight or base.hit_in_flight,
        clients=args.clients or base.clients,
        rate=args.rate or base.rate,
        rate_seconds=base.rate_seconds,
        idle_seconds=base.idle_seconds,
        lowload_rate=args.lowload_rate or base.lowload_rate,
        lowload_seconds=args.lowload_seconds or base.lowload_seconds,
        lowload_names=base.lowload_names,
        hit_phases=not args.cold_only,
        zone=SIGNED_ZONE if args.signed else base.zone,
        lowload_phase=not args.signed,
    )


def print_profile(path: Path, top: int = 25) -> None:
    """The functions where our resolver spent its time, by own time and by cumulative time."""
    import pstats  # only needed with --profile

    for order in ("tottime", "cumulative"):
        print(f"\ncProfile of our resolver, top {top} by {order} ({path}):")
        pstats.Stats(str(path), stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(top)


@dataclass
class Plan:
    """One resolver to measure: how to start it and whether it is measured cold."""

    label: str
    command: Callable[[int, Path, Path], list[str]]  # (port, hints, workdir) -> argv
    cold: bool
    cwd: Path | None = None  # where it runs: another checkout's resolver is found there
    single_process: bool = True  # one process doing all the work: pinned with --pin


def plans(args: argparse.Namespace, unbound: str | None) -> list[Plan]:
    checkout = args.checkout.resolve() if args.checkout else None

    def ours(
        workers: int | None, profile: Path | None, validate: bool = args.signed
    ) -> Callable[[int, Path, Path], list[str]]:
        def command(port: int, hints: Path, workdir: Path) -> list[str]:
            anchor = workdir / TRUST_ANCHOR if validate else None
            return benchlib.ours_command(
                port, hints, workers=workers, profile=profile, trust_anchor=anchor
            )

        return command

    def unbound_plan(validate: bool = args.signed) -> Callable[[int, Path, Path], list[str]]:
        def unbound_command(port: int, hints: Path, workdir: Path) -> list[str]:
            assert unbound is not None
            conf = workdir / "unbound.conf"
            anchor = workdir / TRUST_ANCHOR if validate else None
            conf.write_text(benchlib.unbound_config(port, hints, workdir, trust_anchor=anchor))
            return [unbound, "-d", "-c", str(conf)]

        return unbound_command

    result = [Plan(OURS, ours(None, args.profile), cold=True, cwd=checkout)]
    if args.signed:
        result.append(Plan(OURS_NO_VALIDATION, ours(None, None, False), cold=True, cwd=checkout))
        if unbound is not None:
            result.append(Plan(UNBOUND, unbound_plan(), cold=True))
            result.append(Plan(UNBOUND_NO_VALIDATION, unbound_plan(False), cold=True))
        return result
    if args.cold_only:
        pass  # N workers have no cold phase of their own
    elif args.workers > 1:
        plan = Plan(
            f"ours x{args.workers}",
            ours(args.workers, None),
            cold=False,
            cwd=checkout,
            single_process=False,
        )
        result.append(plan)
    if unbound is not None:
        result.append(Plan(UNBOUND, unbound_plan(), cold=True))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; 0 on success, 1 if the run failed, 2 if dnsperf is missing."""
    args = parse_args(argv)
    settings = settings_from(args)
    benchlib.install_tools(not args.no_install)
    dnsperf = benchlib.find_tool("dnsperf")
    if dnsperf is None:
        print(
            "resolve_bench: dnsperf is required and not installed: run `apt-get install -y -q "
            "dnsperf unbound` as root (Debian/Ubuntu), or run this script as root to have it "
            "do so",
            file=sys.stderr,
        )
        return 2
    unbound = None if args.no_unbound else benchlib.find_tool("unbound")
    if unbound is None and not args.no_unbound:
        print("unbound is not installed: measuring our resolver only", file=sys.stderr)
    todo = plans(args, unbound)
    pinning = benchlib.pin_cpus() if args.pin else None

    report = benchlib.Report("resolve_bench", args.quick)
    results: list[Result] = []
    failed: list[str] = []
    floors: list[Floor] = []
    try:
        with (
            benchlib.time_budget(settings.budget(len(todo))),
            tempfile.TemporaryDirectory(prefix="resolve-bench-") as temporary,
        ):
            workdir = Path(temporary)
            workdir.chmod(0o755)
            hints = workdir / "root.hints"
            names_file = workdir / "names.txt"
            names = bench_names(settings.names, settings.zone)
            names_file.write_text("".join(f"{n} A\n" for n in names))
            internet = build_internet(settings, args.block)
            internet.write_hints(hints)
            if args.signed:
                (workdir / TRUST_ANCHOR).write_text(signed_topology.trust_anchor_text())
            print(
                f"test internet: {len(internet.servers)} servers, "
                f"{settings.zone} with {settings.names} names",
                file=sys.stderr,
                flush=True,
            )
            ctx = Context(internet, dnsperf, names_file, workdir, settings)
            with benchlib.internet_in_thread(internet):
                for plan in todo:
                    benchlib.check_internet(internet, [(names[0], "A")])
                    port = benchlib.free_port()
                    command = plan.command(port, hints, workdir)
                    if pinning is not None:
                        command = pinning.command(command, single_process=plan.single_process)
                    log = workdir / f"{plan.label.replace(' ', '')}.log"
                    try:
                        with benchlib.running(
                            plan.label, command, port, log, cwd=plan.cwd
                        ) as server:
                            results.append(measure(server, ctx, cold=plan.cold))
                    except benchlib.BenchTimeout:
                        raise
                    except benchlib.BenchError as error:
                        if plan.label == OURS:
                            raise
                        failed.append(f"{plan.label}: {error}")
            if any(result.lowload is not None for result in results):
                floors = [lowload_floor(label, settings, pinning, workdir) for label in ECHOES]
    except benchlib.BenchError as error:
        print(f"resolve_bench: {error}", file=sys.stderr)
        return 1

    versions = [f"dnsperf {benchlib.tool_version([dnsperf, '-h'])}"]
    if unbound:
        versions.append(f"unbound {benchlib.tool_version([unbound, '-V'])}")
    if args.checkout:
        versions.append(f"ours from {args.checkout}")
    if pinning is not None:
        versions.append(f"pinned: resolvers on CPU {pinning.server}, clients on {pinning.clients}")
    if args.profile:
        report.add("ours ran under cProfile: its figures are not comparable", "")
    report.figures([r.label for r in results], rows_for(results, settings, floors))
    if any(r.label == UNBOUND for r in results):
        report.add(
            "",
            "X/unbound: above 1 means X takes more (time, CPU, queries, memory); below 1 means"
            " X does less (qps).",
        )
    report.add("", *target_lines(results, settings, floors))
    for failure in failed:
        report.add("", failure)
    report.data["settings"] = asdict(settings)
    report.data["results"] = [result.summary() for result in results]
    report.data["lowload_floors"] = {
        floor.label: {"cpu": floor.cpu, **floor.run.summary()} for floor in floors
    }
    report.emit(versions, args.json)
    if args.profile:
        print_profile(args.profile)
    return 0


if __name__ == "__main__":
    benchlib.run_main("resolve_bench", main)
