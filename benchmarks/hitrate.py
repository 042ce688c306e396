"""Cache hit rate against cache size on a replayed trace, next to the infinite-cache bound.

    python benchmarks/hitrate.py [--quick] [--plot FILE] [--no-live] [--json FILE]
        [--random-subdomains PLOT [--random-subdomains-only]]

The trace is seeded: Zipf-distributed queries over a universe of names in one zone (`hr.test.`),
each name with a TTL drawn from a fixed mix (30 s to one day), a share of names that do not exist
(NXDOMAIN, cached for the zone's SOA minimum), arriving as a Poisson process over a simulated
period of hours. It is replayed two ways:

1. SIMULATION, with a FakeClock moved to each query's time and no sockets, so hours of traffic
   take seconds; one fresh resolver per cache size. Two models, both the project's own code:
   - `server`: what `resolver serve` runs, minus sockets: the `Engine` (its packet cache, then
     the full path: the iterator and the record cache), driven by `resolver.testing.scripted`
     with upstream answers from the test internet's data. A cache of N entries means N records
     and N packets (`cache.max_entries`, `cache.max_packets`).
   - `records`: the pure iterator and record cache alone (`resolver.testing.scripted.
     ScriptedWorld`, `CacheConfig(max_entries=N)`), which is what a hit costs without the
     packet cache in front.
   A hit is a query that sent no upstream query (`world.last_queries == 0`; for the server
   model, the engine's own count of misses unchanged).
2. LIVE: a real `resolver serve` subprocess and a real test internet on loopback. A live run
   cannot take hours, so a second trace from the same generator is time-compressed: its arrival
   times AND the zone's TTLs are divided by one factor (TTLs rounded, at least 2 s: DNS TTLs are
   whole seconds). Misses are what the zone's servers received (the test internet's query log,
   per name), hits the rest. The same compressed trace and zone are simulated with the `server`
   model, and the two hit rates must agree within `AGREEMENT_POINTS`.

The infinite-cache bound is computed from the trace alone: a query hits if and only if its name
was fetched less than one TTL earlier. Cache sizes are in entries, and the record cache's entries
include the delegations and glue on the way (`.`, `test.`, `hr.test.` and their servers) and the
negative entries, so the working set is a little more than the number of distinct names: the run
measures it (record-cache entries held by an unbounded cache at the end) and picks the cache
sizes as fractions of it.

Figures are printed (and plotted), never asserted. Network traffic stays on 127.0.0.0/8: the test
internet lives in 127.154.0.0/16 (`--block`), and the resolver is only given its hints.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import benchlib
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.config import CacheConfig, Config, DnssecConfig, UpstreamConfig
from resolver.engine import Client
from resolver.hitrate.simulate import Policy, replay
from resolver.hitrate.simulate import bound as model_bound
from resolver.hitrate.trace import Query
from resolver.hitrate.trace import Trace as HitTrace
from resolver.testing import TestInternet
from resolver.testing.scripted import FakeClock, ScriptedWorld

DEFAULT_BLOCK = "127.154"
ZONE = "hr.test."

#: TTLs of existing names and how often each is drawn: from short-lived load-balancer and CDN
#: records to day-long static ones (the shape, not the exact shares, of what resolver studies
#: report). Fixed so that every run replays the same world.
TTL_MIX: tuple[tuple[int, float], ...] = (
    (30, 0.10),
    (60, 0.10),
    (300, 0.25),
    (900, 0.15),
    (3600, 0.25),
    (86400, 0.15),
)

#: SOA MINIMUM (and SOA TTL) of the zone: how long a name that does not exist is cached.
NEGATIVE_TTL = 900

#: No compressed TTL below this: the record cache counts remaining TTL in whole seconds, so a
#: 1 s record is already stale when stored and would say nothing about the live replay.
MIN_SCALED_TTL = 2

#: Simulation and live replay of the same compressed trace agree if their hit rates differ by
#: at most this many percentage points. What may separate them: network timing at TTL
#: boundaries, identical questions merged in flight (no cache lookup), a retried upstream query.
AGREEMENT_POINTS = 1.0

#: The target: hit rate within this many points of the bound once the cache holds the working
#: set.
TARGET_POINTS = 1.0

#: A cache size meaning "unbounded" (nothing is ever evicted within a run).
UNBOUNDED = 1_000_000_000

#: How long a live replay waits for each answer (so also for those still outstanding after its
#: last query) before counting the query as lost.
DRAIN_SECONDS = 3.0

#: The simulated client's address (inside the default access list).
CLIENT = "127.0.0.1"

MODELS = ("server", "records")


@dataclass(frozen=True)
class TraceSpec:
    """The generator's parameters; the same spec always gives the same trace."""

    universe: int  # distinct names
    queries: int
    period: float  # simulated seconds the queries are spread over
    zipf: float  # popularity of the name of rank r is proportional to 1 / r**zipf
    nx_share: float  # share of the universe that does not exist
    seed: int


@dataclass(frozen=True)
class Settings:
    """The size of one run; `--quick` trades precision for a run well under a minute."""

    trace: TraceSpec
    fractions: tuple[float, ...]  # cache sizes, as fractions of the measured working set
    live_trace: TraceSpec  # before compression; lasts live_trace.period / live_factor live
    live_factor: float
    live_fractions: tuple[float | None, ...]  # None: unbounded

    def budget(self) -> float:
        """A generous wall-clock bound for the whole run, so that nothing can hang forever."""
        simulated = self.trace.queries * (len(self.fractions) + 1) * len(MODELS)
        simulated += self.live_trace.queries * (len(self.live_fractions) + 1)
        live_seconds = self.live_trace.period / self.live_factor
        # 3 ms per simulated query is several times what a miss costs here.
        return 120 + simulated * 0.003 + len(self.live_fractions) * (live_seconds * 3 + 60)


QUICK = Settings(
    trace=TraceSpec(universe=2000, queries=6000, period=2 * 3600, zipf=0.9, nx_share=0.05, seed=4),
    fractions=(0.1, 0.4),
    live_trace=TraceSpec(universe=2000, queries=4000, period=240, zipf=0.9, nx_share=0.05, seed=4),
    live_factor=30,
    live_fractions=(0.25,),
)
FULL = Settings(
    trace=TraceSpec(
        universe=5000, queries=100_000, period=6 * 3600, zipf=0.9, nx_share=0.05, seed=4
    ),
    fractions=(0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0),
    live_trace=TraceSpec(
        universe=5000, queries=24_000, period=1200, zipf=0.9, nx_share=0.05, seed=4
    ),
    live_factor=30,
    live_fractions=(0.25, None),
)


# -- the trace --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Universe:
    """The names of the zone: `ttl[i]` is name i's TTL, or the negative TTL if it does not exist.

    Index 0 is the most popular name: the rank of a name is its index plus one.
    """

    names: tuple[str, ...]
    ttl: tuple[int, ...]
    exists: tuple[bool, ...]
    negative_ttl: int

    def zone_records(self) -> str:
        """The zone file lines for the names that exist (one A record each)."""
        return "".join(
            f"{name} {ttl} A 192.0.2.{index % 254 + 1}\n"
            for index, (name, ttl, exists) in enumerate(
                zip(self.names, self.ttl, self.exists, strict=True)
            )
            if exists
        )

    def scaled(self, factor: float) -> Universe:
        """The same names with every TTL divided by `factor` (whole seconds, at least 2)."""
        return replace(
            self,
            ttl=tuple(_scale_ttl(ttl, factor) for ttl in self.ttl),
            negative_ttl=_scale_ttl(self.negative_ttl, factor),
        )


def _scale_ttl(ttl: int, factor: float) -> int:
    return max(MIN_SCALED_TTL, round(ttl / factor))


@dataclass(frozen=True)
class Trace:
    """Queries in time order: at `times[k]` (seconds from the start) name `names[k]` is asked."""

    times: tuple[float, ...]
    names: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.times)

    def scaled(self, factor: float) -> Trace:
        return Trace(tuple(t / factor for t in self.times), self.names)

    def distinct(self) -> int:
        return len(set(self.names))


def make_universe(spec: TraceSpec) -> Universe:
    """Names n00000.hr.test. ... with TTLs drawn from TTL_MIX and a random share nonexistent."""
    rng = random.Random(f"universe-{spec.seed}-{spec.universe}")
    ttls, weights = zip(*TTL_MIX, strict=True)
    missing = set(rng.sample(range(spec.universe), round(spec.universe * spec.nx_share)))
    names, ttl, exists = [], [], []
    for index in range(spec.universe):
        names.append(f"n{index:05d}.{ZONE}")
        if index in missing:
            ttl.append(NEGATIVE_TTL)
            exists.append(False)
        else:
            ttl.append(rng.choices(ttls, weights)[0])
            exists.append(True)
    return Universe(tuple(names), tuple(ttl), tuple(exists), NEGATIVE_TTL)


def make_trace(spec: TraceSpec) -> Trace:
    """`spec.queries` Zipf-distributed queries at Poisson arrival times over `spec.period`.

    The times of a Poisson process with a known count are uniform order statistics, hence
    sorted uniform draws.
    """
    rng = random.Random(f"trace-{spec.seed}-{spec.queries}-{spec.period}")
    cumulative: list[float] = []
    total = 0.0
    for rank in range(1, spec.universe + 1):
        total += 1 / rank**spec.zipf
        cumulative.append(total)
    times = sorted(rng.uniform(0, spec.period) for _ in range(spec.queries))
    names = [
        min(bisect.bisect_left(cumulative, rng.random() * total), spec.universe - 1)
        for _ in range(spec.queries)
    ]
    return Trace(tuple(times), tuple(names))


def as_trace(universe: Universe, trace: Trace) -> HitTrace:
    """The trace as `resolver hitrate` sees one: every query with its answer's rcode and TTL."""
    return HitTrace.build(
        Query(
            when,
            CLIENT,
            universe.names[name],
            dns.rdatatype.A,
            dns.rcode.NOERROR if universe.exists[name] else dns.rcode.NXDOMAIN,
            universe.ttl[name],
        )
        for when, name in zip(trace.times, trace.names, strict=True)
    )


def infinite_cache_bound(universe: Universe, trace: Trace) -> int:
    """Hits of a cache that never evicts, from the trace alone: `resolver hitrate`'s bound
    (`resolver.hitrate.simulate.bound`; a query hits if its name was fetched less than one TTL
    before)."""
    return model_bound(as_trace(universe, trace), Policy.of(CacheConfig())).hits


def build_topology(universe: Universe, block: str) -> benchlib.Topology:
    """The standard test internet in `block`, plus the universe's zone."""
    topology = benchlib.Topology.standard(block)
    topology.add_leaf_zone(
        ZONE,
        universe.zone_records(),
        ttl=3600,
        soa_ttl=universe.negative_ttl,
        negative_ttl=universe.negative_ttl,
    )
    return topology


# -- simulation -------------------------------------------------------------------------------


@dataclass
class Replay:
    """The outcome of one replay of a trace against one cache size."""

    model: str  # "server", "records" or "live"
    size: int | None  # None: unbounded
    queries: int
    hits: int
    servfails: int = 0
    lost: int = 0
    entries: int | None = None  # record-cache entries at the end (simulation only)
    seconds: float = 0.0
    misses: list[int] = field(default_factory=list, repr=False)  # per name
    sender_lag_p99: float | None = None  # live only: how late queries left, 99th percentile
    sender_lag_max: float | None = None

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


def sim_config(size: int | None) -> Config:
    """The resolver's defaults, with a cache of `size` records and `size` packets."""
    entries = size or UNBOUNDED
    return Config(
        cache=CacheConfig(max_entries=entries, max_packets=entries),
        upstream=UpstreamConfig(query_loopback=True),
        dnssec=DnssecConfig(validate=False),  # the unsigned test internet
    )


def simulate_records(
    internet: TestInternet, universe: Universe, trace: Trace, size: int | None
) -> Replay:
    """The pure iterator and record cache alone (ScriptedWorld), on a fake clock."""
    clock = FakeClock()
    start = clock.now
    world = ScriptedWorld(internet, sim_config(size), clock=clock)
    replay = Replay("records", size, len(trace), 0, misses=[0] * len(universe.names))
    began = time.perf_counter()
    for when, name in zip(trace.times, trace.names, strict=True):
        clock.now = start + when
        answer = world.resolve(universe.names[name], "A")
        if world.last_queries == 0:
            replay.hits += 1
        else:
            replay.misses[name] += 1
        if answer.rcode == dns.rcode.SERVFAIL:
            replay.servfails += 1
    replay.seconds = time.perf_counter() - began
    replay.entries = len(world.cache)
    internet.reset_counters()  # the query logs would otherwise grow with every replay
    return replay


def simulate_server(
    internet: TestInternet, universe: Universe, trace: Trace, size: int | None
) -> Replay:
    """What `resolver serve` does with each query, without sockets, on a fake clock.

    The client's bytes go to the engine exactly as the UDP listener hands them over (packet
    cache, else the full path, which fills the packet cache); its upstream queries are answered
    at once from the test internet's data (`ScriptedWorld.query`). A hit is what the engine
    counts as one: a query that did not wait for an upstream query.
    """
    clock = FakeClock()
    start = clock.now
    world = ScriptedWorld(internet, sim_config(size), clock=clock)
    stats = world.engine.stats
    client = Client(CLIENT)
    wires = [dns.message.make_query(name, "A").to_wire() for name in universe.names]
    replay = Replay("server", size, len(trace), 0, misses=[0] * len(universe.names))
    began = time.perf_counter()
    for index, (when, name) in enumerate(zip(trace.times, trace.names, strict=True)):
        clock.now = start + when
        misses = stats.cache_misses
        wire = (index & 0xFFFF).to_bytes(2, "big") + wires[name][2:]
        reply = world.query(wire, client)
        if stats.cache_misses == misses:
            replay.hits += 1
        else:
            replay.misses[name] += 1
        if reply is None or reply[3] & 0x0F == dns.rcode.SERVFAIL:
            replay.servfails += 1
    replay.seconds = time.perf_counter() - began
    replay.entries = len(world.cache)
    internet.reset_counters()
    return replay


SIMULATORS = {"server": simulate_server, "records": simulate_records}


def _simulate_job(job: tuple[Universe, Trace, str, str, int | None]) -> Replay:
    """One model and cache size, in a worker process: its own copy of the test internet's data."""
    universe, trace, block, model, size = job
    internet = build_topology(universe, block).build()
    replay = SIMULATORS[model](internet, universe, trace, size)
    benchlib.progress(
        f"  {model} model, cache {size_text(size)}: {percent(replay.hit_rate)} "
        f"in {replay.seconds:.1f} s"
    )
    return replay


def simulate_many(
    jobs: int,
    universe: Universe,
    trace: Trace,
    block: str,
    runs: Sequence[tuple[str, int | None]],
) -> list[Replay]:
    """Simulate each (model, cache size), `jobs` at a time in forked worker processes.

    The pool is always terminated on the way out (its workers are ours, stopped by PID), so an
    error, the time budget or Ctrl-C leaves nothing running.
    """
    work = [(universe, trace, block, model, size) for model, size in runs]
    if jobs <= 1 or len(work) == 1:
        return [_simulate_job(job) for job in work]
    pool = multiprocessing.get_context("fork").Pool(min(jobs, len(work)))
    try:
        results = pool.map(_simulate_job, work, chunksize=1)
        pool.close()
        pool.join()
        return results
    finally:
        pool.terminate()


# -- live replay ------------------------------------------------------------------------------


def replay_live(
    port: int, internet: TestInternet, universe: Universe, trace: Trace, size: int | None
) -> Replay:
    """Send the (compressed) trace to the resolver at 127.0.0.1:port on its schedule.

    Open loop, as real clients are: each query leaves at its time whether or not earlier ones
    were answered (`benchlib.udp_load` with `times`). Misses are the queries for the zone's
    names that the zone's servers received (one per miss, barring a retry after a timeout,
    which would show as an extra miss); their log also gives the misses per name.
    """
    wires = [dns.message.make_query(name, "A").to_wire() for name in universe.names]
    internet.reset_counters()
    load = benchlib.udp_load(
        port, (wires[name] for name in trace.names), times=trace.times, timeout=DRAIN_SECONDS
    )
    replay = Replay("live", size, len(trace), 0, seconds=load.run_time)
    replay.servfails = load.rcodes.get("SERVFAIL", 0)
    replay.lost = len(trace) - load.answered
    replay.misses = zone_misses(internet, universe)
    internet.reset_counters()
    replay.hits = len(trace) - sum(replay.misses)
    replay.sender_lag_p99 = benchlib.percentile(load.lags, 0.99)
    replay.sender_lag_max = load.lags[-1] if load.lags else None
    return replay


def zone_misses(internet: TestInternet, universe: Universe) -> list[int]:
    """Per name of `universe`: the A queries its zone's servers received since the counters
    were reset (one per miss of the resolvers in front, barring retries)."""
    index_of = {dns.name.from_text(name): index for index, name in enumerate(universe.names)}
    misses = [0] * len(universe.names)
    for server in internet.servers.values():
        if any(str(zone.origin) == ZONE for zone in server.zones):
            for received in server.queries:
                index = index_of.get(received.qname)
                if index is not None and received.qtype == dns.rdatatype.A:
                    misses[index] += 1
    return misses


def live_config(
    size: int | None, workdir: Path, *, prefetch: bool = False, control: bool = False
) -> Path:
    """The configuration file of a `resolver serve` with a cache of `size` records and `size`
    packets (and prefetch).

    The packet cache's size has no flag, so it goes in a configuration file. For the prefetch
    comparison, `control` gives the server a control socket, since its own counters tell client
    hits from the refreshes that prefetch sends upstream.
    """
    entries = size or UNBOUNDED
    name = f"cache-{entries}{'-prefetch' if prefetch else ''}"
    config = workdir / f"{name}.toml"
    text = f"[cache]\nmax_entries = {entries}\nmax_packets = {entries}\n"
    if control:
        text = f'control_socket = "{workdir / name}.sock"\n' + text
    if prefetch:
        text += "prefetch = true\n"
    config.write_text(text)
    return config


def served_hit_rate(config: Path) -> float | None:
    """The client hit rate the resolver reports (`resolver stats --json`), if it can."""
    command = [sys.executable, "-m", "resolver", "stats", "--json", "--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=benchlib.REPO)
    if done.returncode != 0:
        return None
    value = json.loads(done.stdout).get("hit_rate")
    return float(value) if value is not None else None


# -- the report -------------------------------------------------------------------------------


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def size_text(size: int | None) -> str:
    return "unbounded" if size is None else f"{size:,}"


def duration(seconds: float) -> str:
    """A simulated period in the unit that reads best."""
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def describe(spec: TraceSpec, universe: Universe, trace: Trace) -> str:
    nx = sum(1 for exists in universe.exists if not exists)
    return (
        f"{spec.queries:,} queries over {duration(spec.period)} "
        f"({spec.queries / spec.period:.1f}/s), Zipf s={spec.zipf:g} over {spec.universe:,} "
        f"names ({nx} NXDOMAIN), {trace.distinct():,} distinct names asked, seed {spec.seed}"
    )


def ttl_mix_text(universe: Universe) -> str:
    counts = collections.Counter(
        ttl for ttl, exists in zip(universe.ttl, universe.exists, strict=True) if exists
    )
    return (
        ", ".join(f"{ttl} s x{counts[ttl]}" for ttl in sorted(counts))
        + f"; negative {universe.negative_ttl} s"
    )


def plot(
    path: Path,
    curves: dict[str, list[Replay]],
    bound: float,
    working_set: int,
    title: str,
) -> None:
    """Hit rate against cache size (log scale), one line per model, the bound, the working set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "server": "resolver serve: packet + record cache, N entries each",
        "records": "record cache alone (pure iterator), N entries",
    }
    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    # The unbounded cache is drawn at twice the working set, and says so on the axis.
    unbounded_x = 2 * working_set
    for model, replays in curves.items():
        axes.plot(
            [unbounded_x if r.size is None else r.size for r in replays],
            [100 * r.hit_rate for r in replays],
            marker="o",
            label=labels[model],
        )
    axes.axhline(
        100 * bound,
        color="tab:red",
        linestyle="--",
        label=f"infinite-cache bound ({100 * bound:.2f}%)",
    )
    axes.axvline(
        working_set, color="grey", linewidth=0.8, label=f"working set ({working_set:,} entries)"
    )
    axes.set_xscale("log")
    axes.annotate(
        "unbounded",
        (unbounded_x, 100 * bound),
        textcoords="offset points",
        xytext=(0, 8),
        ha="center",
        fontsize=8,
    )
    axes.set_xlabel("cache size (entries)")
    axes.set_ylabel("hit rate (%)")
    axes.set_title(title, fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def simulation_section(
    settings: Settings, args: argparse.Namespace, report: benchlib.Report
) -> None:
    """The long trace, simulated with both models for every cache size."""
    spec = settings.trace
    universe, trace = make_universe(spec), make_trace(spec)
    bound = infinite_cache_bound(universe, trace) / len(trace)
    benchlib.progress(f"simulating: {describe(spec, universe, trace)}")
    first = simulate_many(args.jobs, universe, trace, args.block, [(m, None) for m in MODELS])
    working_set = max(replay.entries or 1 for replay in first)
    sizes = [max(1, round(fraction * working_set)) for fraction in settings.fractions]
    runs = [(model, size) for size in sizes for model in MODELS]
    results = simulate_many(args.jobs, universe, trace, args.block, runs)
    curves = {
        model: [r for r in results if r.model == model] + [r for r in first if r.model == model]
        for model in MODELS
    }

    lines = report.lines
    lines.append(f"trace: {describe(spec, universe, trace)}")
    lines.append(f"TTLs: {ttl_mix_text(universe)}")
    lines.append(
        f"working set: {working_set:,} record-cache entries ({trace.distinct():,} names asked, "
        "plus delegations and glue)"
    )
    lines.append(f"infinite-cache bound: {percent(bound)}")
    lines.append("")
    lines.append(
        "simulated hit rate (fake clock, no sockets); server = `resolver serve` minus sockets "
        "(packet cache and record cache, N entries each); records = record cache alone"
    )
    header = ["cache size (entries)", "of working set", "server", "below bound", "records"]
    header += ["below bound", "SERVFAIL", "hitrate model"]
    # `resolver hitrate`'s model of the cache at the same sizes (one entry per question; the
    # server's N entries are N records and N packets, the model's N questions).
    replayable = as_trace(universe, trace)
    policy = Policy.of(CacheConfig())
    model_rates = {
        r.size: model_bound(replayable, policy).hit_rate
        if r.size is None
        else replay(replayable, r.size, policy).hit_rate
        for r in curves["server"]
    }
    rows = [
        [
            size_text(server.size),
            "" if server.size is None else f"{server.size / working_set:.0%}",
            percent(server.hit_rate),
            f"{100 * (bound - server.hit_rate):.2f} pts",
            percent(records.hit_rate),
            f"{100 * (bound - records.hit_rate):.2f} pts",
            f"{server.servfails + records.servfails}",
            percent(model_rates[server.size]),
        ]
        for server, records in zip(curves["server"], curves["records"], strict=True)
    ]
    rows.append(["infinite-cache bound", "", percent(bound)])
    lines += benchlib.table(header, rows)
    seconds = sum(r.seconds for r in first + results)
    lines.append(f"  ({len(first + results)} simulations, {seconds:.0f} s of CPU in all)")
    holding = [r for r in curves["server"] if r.size is None or r.size >= working_set]
    gap = 100 * (bound - min(r.hit_rate for r in holding))
    verdict = "met" if gap <= TARGET_POINTS else f"missed by {gap - TARGET_POINTS:.2f} points"
    lines.append(
        f"target (server, cache holding the working set, within {TARGET_POINTS:g} point of the "
        f"bound): {gap:.2f} points below: {verdict}"
    )
    plot(
        args.plot,
        curves,
        bound,
        working_set,
        textwrap.fill(f"trace: {describe(spec, universe, trace)}", 110),
    )
    lines.append(f"plot: {args.plot}")
    report.data["simulation"] = {
        "bound": bound,
        "working_set": working_set,
        "replays": [_replay_data(r) for r in first + results],
    }


def live_section(settings: Settings, args: argparse.Namespace, report: benchlib.Report) -> None:
    """Replay the compressed trace against `resolver serve`, simulate it too, and compare."""
    spec, factor = settings.live_trace, settings.live_factor
    universe = make_universe(spec).scaled(factor)
    trace = make_trace(spec).scaled(factor)
    bound = infinite_cache_bound(universe, trace) / len(trace)
    benchlib.progress(f"live check: {describe(spec, universe, trace)}, compressed {factor:g}x")
    unbounded = simulate_many(1, universe, trace, args.block, [("server", None)])[0]
    working_set = unbounded.entries or 1
    sizes = [None if f is None else max(1, round(f * working_set)) for f in settings.live_fractions]
    bounded = [("server", size) for size in sizes if size is not None]
    simulated: dict[int | None, Replay] = {None: unbounded}
    simulated.update(
        (r.size, r) for r in simulate_many(args.jobs, universe, trace, args.block, bounded)
    )
    lines = report.lines
    lines += [
        "",
        f"live check: a second trace from the same generator, {spec.queries:,} queries over "
        f"{duration(spec.period)} simulated, compressed {factor:g}x into "
        f"{spec.period / factor:g} s: arrival times and TTLs divided by {factor:g}",
        f"  TTLs now {ttl_mix_text(universe)}",
        f"  working set {working_set:,} entries; infinite-cache bound {percent(bound)}",
    ]
    rows: list[list[str]] = []
    live_data = []
    agreements = []
    prefetch_rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="hitrate-") as temporary:
        workdir = Path(temporary)
        workdir.chmod(0o755)
        internet = build_topology(universe, args.block).build()
        hints = internet.write_hints(workdir / "root.hints")
        with benchlib.internet_in_thread(internet):
            benchlib.check_internet(internet, [(f"ns1.{ZONE}", "A")])
            for size in sizes:
                port = benchlib.free_port()
                config = live_config(size, workdir, control=args.prefetch)
                command = benchlib.ours_command(port, hints, config=config)
                benchlib.progress(f"  live, cache {size_text(size)}: {spec.period / factor:g} s")
                with benchlib.running("ours", command, port, workdir / "ours.log") as server:
                    live = replay_live(server.port, internet, universe, trace, size)
                    plain_served = served_hit_rate(config) if args.prefetch else None
                if args.prefetch:
                    port = benchlib.free_port()
                    config = live_config(size, workdir, prefetch=True, control=True)
                    command = benchlib.ours_command(port, hints, config=config)
                    benchlib.progress(f"  live with prefetch, cache {size_text(size)}")
                    with benchlib.running("ours", command, port, workdir / "ours.log") as server:
                        replay_live(server.port, internet, universe, trace, size)
                        prefetched = served_hit_rate(config)
                    prefetch_rows.append(
                        [size_text(size), percent(plain_served or 0), percent(prefetched or 0)]
                    )
                sim = simulated[size]
                differing = sum(1 for a, b in zip(sim.misses, live.misses, strict=True) if a != b)
                diff = round(100 * (live.hit_rate - sim.hit_rate), 2) + 0.0  # no '-0.00'
                lag = (
                    f"{1000 * (live.sender_lag_p99 or 0):.1f} / "
                    f"{1000 * (live.sender_lag_max or 0):.1f} ms"
                )
                rows.append(
                    [
                        size_text(size),
                        percent(sim.hit_rate),
                        percent(live.hit_rate),
                        f"{diff:+.2f} pts",
                        f"{differing}",
                        f"{live.servfails} / {live.lost}",
                        lag,
                    ]
                )
                agree = abs(diff) <= AGREEMENT_POINTS
                agreements.append(agree)
                live_data.append(
                    {"simulated": _replay_data(sim), "live": _replay_data(live), "agree": agree}
                )
    header = ["cache size (entries)", "simulated", "live", "difference", "names differing"]
    header += ["SERVFAIL / lost", "sender lag p99 / max"]
    lines += benchlib.table(header, rows)
    if args.prefetch:
        lines.append(
            "  prefetch (cache.prefetch = true), hit rate as the resolver counts it for its "
            "clients (`resolver stats`; refreshes are not client misses):"
        )
        lines += benchlib.table(
            ["cache size (entries)", "prefetch off", "prefetch on"], prefetch_rows
        )
    verdict = "agree" if all(agreements) else "DISAGREE"
    lines.append(
        f"  simulation and live {verdict} (tolerance: {AGREEMENT_POINTS:g} point of hit rate)"
    )
    report.data["live"] = {"bound": bound, "working_set": working_set, "replays": live_data}


def _replay_data(replay: Replay) -> dict[str, object]:
    data = asdict(replay)
    del data["misses"]
    data["hit_rate"] = replay.hit_rate
    return data


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Cache hit rate against cache size, simulated and live, with the bound.",
    )
    parser.add_argument("--no-live", action="store_true", help="simulation only")
    parser.add_argument(
        "--random-subdomains",
        type=Path,
        metavar="PLOT",
        default=None,
        help="also replay random-subdomain queries in a signed zone with aggressive NSEC off "
        "and on (benchmarks/hitrate_signed.py), plotting to PLOT",
    )
    parser.add_argument(
        "--random-subdomains-only",
        action="store_true",
        help="run only the --random-subdomains scenario",
    )
    parser.add_argument(
        "--prefetch",
        action="store_true",
        help="also replay live with cache.prefetch on, and compare the hit rates clients see",
    )
    benchlib.add_common_options(parser, DEFAULT_BLOCK)
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE",
        default=Path(tempfile.gettempdir()) / "resolver-bench" / "hitrate.png",
        help="where to save the PNG plot (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="simulations run at once, in worker processes (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; 0 on success, 1 if the run failed."""
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    report = benchlib.Report("hitrate", args.quick)
    report.data["settings"] = asdict(settings)
    try:
        with benchlib.time_budget(settings.budget()):
            if not args.random_subdomains_only:
                simulation_section(settings, args, report)
                if not args.no_live:
                    live_section(settings, args, report)
            if args.random_subdomains is not None:
                import hitrate_signed

                hitrate_signed.section(args.quick, args.random_subdomains, report)
    except benchlib.BenchError as error:
        print(f"hitrate: {error}", file=sys.stderr)
        return 1
    report.emit(json_path=args.json)
    return 0


if __name__ == "__main__":
    benchlib.run_main("hitrate", main)
