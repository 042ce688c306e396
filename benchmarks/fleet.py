"""A fleet of resolvers behind a round-robin balancer: separate caches, a shared cache, restarts.

    python benchmarks/fleet.py [--quick] [--plot FILE] [--json FILE] [--simulate]

LIVE (the default, the figures in docs/benchmarks.md): a real `redis-server` on a loopback port
(no persistence, started and stopped by PID), `MEMBERS` real `resolver serve` processes on the
test internet, and `benchlib.udp_load` sending one seeded Zipf trace with real TTLs
(`hitrate.py`'s generator, compressed `factor` times: arrival times and TTLs divided alike)
round-robin to them, as a load balancer sends. Upstream queries are counted at the test
internet's authorities. Three replays of the same trace:
  - separate caches, one member restarted cold at mid-trace;
  - the shared cache, the same restart (cold, but Redis is warm);
  - separate caches, the member restarted with its `cache.persist_file`.
Fleet figures (hit rate: 1 - misses seen at the zone's servers / client queries; upstream
queries per client query at all authorities) cover the whole trace, restart included. The
restarted member's hit rate over its first minute of (trace) time comes from its own counters
(`resolver stats`: a shared-cache hit is a hit). While a member restarts no query is sent, but
the TTLs of the others keep running: the pause (process start, about 1-2 s) is the same in every
replay. Then a latency run: member A resolves names (misses), member B, whose own cache is cold,
gets each from Redis (a shared hit), then again from its packet cache (a local hit): p50/p99
of each, one query at a time, through the daemon end to end.

SIMULATE (`--simulate`, secondary): the same runs on the engine alone, on a fake clock, with a
dict for Redis (`resolver.testing.scripted`): hours of trace in a minute, no Redis round trip
and no process restarts; for trying trace shapes quickly. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
import dns.message
from hitrate import (
    DEFAULT_BLOCK,
    DRAIN_SECONDS,
    ZONE,
    Trace,
    TraceSpec,
    Universe,
    build_topology,
    make_trace,
    make_universe,
    zone_misses,
)

from resolver.cache.dump import Restored, restore, snapshot
from resolver.config import CacheConfig, Config, DnssecConfig, SharedCacheConfig, UpstreamConfig
from resolver.engine import Client
from resolver.server.control import request
from resolver.testing import TestInternet
from resolver.testing.redis_server import RedisServer
from resolver.testing.scripted import FakeClock, ScriptedWorld

MEMBERS = 3
#: The window after a restart over which the new member's hit rate is measured.
FIRST_MINUTE = 60.0
SECRET = "benchmark-fleet-secret-0123456789"

FULL = TraceSpec(universe=20_000, queries=200_000, period=4 * 3600, zipf=0.9, nx_share=0.1, seed=1)
QUICK = TraceSpec(universe=5_000, queries=40_000, period=3600, zipf=0.9, nx_share=0.1, seed=1)


@dataclass(frozen=True)
class LiveSettings:
    """A live run: the trace before compression, the compression, and the latency run's size."""

    trace: TraceSpec
    factor: float
    latency_names: int


LIVE_FULL = LiveSettings(
    TraceSpec(universe=5_000, queries=30_000, period=3600, zipf=0.9, nx_share=0.1, seed=1),
    factor=20,
    latency_names=2000,
)
LIVE_QUICK = LiveSettings(
    TraceSpec(universe=2_000, queries=6_000, period=900, zipf=0.9, nx_share=0.1, seed=1),
    factor=30,
    latency_names=300,
)


def config(shared: bool) -> Config:
    return Config(
        cache=CacheConfig(max_entries=1_000_000, max_packets=1_000_000),
        upstream=UpstreamConfig(query_loopback=True),
        dnssec=DnssecConfig(validate=False),  # the unsigned test internet
        shared_cache=SharedCacheConfig(url="redis://fleet.invalid", secret=SECRET)
        if shared
        else SharedCacheConfig(),
    )


@dataclass
class Run:
    """One replay of the trace over the fleet."""

    name: str
    queries: int = 0
    hits: int = 0
    upstream: int = 0
    #: (seconds since the restart, hit or not) for the restarted member's queries.
    after_restart: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries

    @property
    def upstream_per_query(self) -> float:
        return self.upstream / self.queries

    def first_minute(self) -> float | None:
        window = [hit for when, hit in self.after_restart if when < FIRST_MINUTE]
        return sum(window) / len(window) if window else None


def replay(
    internet: TestInternet,
    universe: Universe,
    times: Sequence[float],
    names: Sequence[int],
    *,
    name: str,
    shared: bool,
    restart: str | None = None,
) -> Run:
    """Deal the trace round-robin to MEMBERS engines; `restart` ("cold" or "persist") restarts
    member 0 at the midpoint."""
    clock = FakeClock()
    start = clock.now
    store: dict[bytes, bytes] | None = {} if shared else None
    members = [
        ScriptedWorld(internet, config(shared), clock=clock, shared=store) for _ in range(MEMBERS)
    ]
    wires = [dns.message.make_query(n, "A").to_wire() for n in universe.names]
    client = Client("127.0.0.1")
    run = Run(name)
    middle = len(times) // 2
    restarted_at: float | None = None
    upstream_before = 0
    for index, (when, which) in enumerate(zip(times, names, strict=True)):
        clock.now = start + when
        if restart is not None and index == middle:
            old = members[0]
            upstream_before += old.engine.upstream_sent
            fresh = ScriptedWorld(internet, config(shared), clock=clock, shared=store)
            if restart == "persist":
                dump = snapshot(list(old.cache.export()), clock.now)
                restore(fresh.cache, dump.entries, 5.0, Restored())  # 5 s on disk
            members[0] = fresh
            restarted_at = when
        world = members[index % MEMBERS]
        stats = world.engine.stats
        misses = stats.cache_misses
        wire = (index & 0xFFFF).to_bytes(2, "big") + wires[which][2:]
        world.query(wire, client)
        hit = stats.cache_misses == misses
        run.queries += 1
        run.hits += hit
        if restarted_at is not None and index % MEMBERS == 0:
            run.after_restart.append((when - restarted_at, hit))
    run.upstream = upstream_before + sum(world.engine.upstream_sent for world in members)
    internet.reset_counters()
    return run


# -- live ----------------------------------------------------------------------------------------

#: Buckets of the restarted member's curve, in seconds of trace time after the restart.
BUCKET = 20.0
CURVE_BUCKETS = 12


@dataclass
class LiveRun:
    """One live replay of the trace over the fleet, with one member restarted at mid-trace."""

    name: str
    queries: int = 0
    misses: int = 0
    upstream: int = 0
    lost: int = 0
    #: (seconds since the restart at the bucket's end, the member's hit rate in the bucket).
    curve: list[tuple[float, float]] = field(default_factory=list)
    first_minute: float | None = None

    @property
    def hit_rate(self) -> float:
        return 1 - self.misses / self.queries

    @property
    def upstream_per_query(self) -> float:
        return self.upstream / self.queries


def member_config(
    workdir: Path,
    index: int,
    generation: int,
    redis: RedisServer | None,
    persist: bool,
    lookup_timeout_ms: int | None = None,
) -> Path:
    """Member `index`'s configuration: unbounded caches, a control socket, the shared cache or
    a persistent file as the run wants. A restarted member gets a new socket path (the old
    process may still be removing its own)."""
    text = f'control_socket = "{workdir}/m{index}-{generation}.sock"\n'
    text += "[cache]\nmax_entries = 1000000\nmax_packets = 1000000\n"
    if persist:
        text += f'persist_file = "{workdir}/m{index}.cache"\n'
    if redis is not None:
        text += f'[shared_cache]\nurl = "{redis.url}"\nsecret = "{SECRET}"\n'
        if lookup_timeout_ms is not None:
            text += f"lookup_timeout_ms = {lookup_timeout_ms}\n"
    path = workdir / f"m{index}-{generation}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def hits_and_misses(config: Path) -> tuple[int, int]:
    """A member's client cache hits and misses so far (its control socket, in-process)."""
    control = config.read_text(encoding="utf-8").split('"')[1]
    summary = request(Path(control), "stats")
    return int(summary["cache_hits"]), int(summary["cache_misses"])


class Fleet:
    """MEMBERS `resolver serve` processes, each startable and stoppable on its own."""

    def __init__(
        self,
        workdir: Path,
        hints: Path,
        redis: RedisServer | None,
        persist: bool,
        lookup_timeout_ms: int | None = None,
    ) -> None:
        self.workdir, self.hints, self.redis, self.persist = workdir, hints, redis, persist
        self.lookup_timeout_ms = lookup_timeout_ms
        self.ports = [benchlib.free_port() for _ in range(MEMBERS)]
        self.configs: list[Path] = [Path()] * MEMBERS
        self._stacks = [contextlib.ExitStack() for _ in range(MEMBERS)]
        self._generation = 0

    def start(self, index: int) -> None:
        self._generation += 1
        config = member_config(
            self.workdir,
            index,
            self._generation,
            self.redis,
            self.persist and index == 0,
            self.lookup_timeout_ms,
        )
        self.configs[index] = config
        command = benchlib.ours_command(self.ports[index], self.hints, config=config)
        log = self.workdir / f"m{index}-{self._generation}.log"
        self._stacks[index].enter_context(
            benchlib.running(f"member {index}", command, self.ports[index], log)
        )

    def stop(self, index: int) -> None:
        self._stacks[index].close()

    def close(self) -> None:
        for stack in self._stacks:
            stack.close()


def send(fleet: Fleet, wires: Sequence[bytes], trace: Trace, first: int, last: int) -> int:
    """Queries `first`..`last` - 1 of the trace, on their schedule from now, query k to member
    k % MEMBERS; how many were lost."""
    if first >= last:
        return 0
    ports = [fleet.ports[(first + k) % MEMBERS] for k in range(MEMBERS)]
    start = trace.times[first]
    load = benchlib.udp_load(
        ports,
        (wires[trace.names[k]] for k in range(first, last)),
        times=[trace.times[k] - start for k in range(first, last)],
        timeout=DRAIN_SECONDS,
    )
    return load.lost


def replay_live(
    name: str,
    internet: TestInternet,
    universe: Universe,
    trace: Trace,
    workdir: Path,
    hints: Path,
    redis: RedisServer | None,
    *,
    factor: float,
    persist: bool = False,
) -> LiveRun:
    """The trace over the fleet; member 0 restarts at mid-trace (with its file if `persist`)."""
    if redis is not None:
        redis.command("FLUSHALL")
    wires = [dns.message.make_query(n, "A").to_wire() for n in universe.names]
    run = LiveRun(name, queries=len(trace))
    fleet = Fleet(workdir, hints, redis, persist)
    try:
        for index in range(MEMBERS):
            fleet.start(index)
        internet.reset_counters()
        middle = len(trace) // 2
        run.lost += send(fleet, wires, trace, 0, middle)
        fleet.stop(0)  # writes its persistent file, if it has one
        fleet.start(0)
        restarted = trace.times[middle]
        position = middle
        hits_before, misses_before = 0, 0
        for bucket in range(1, CURVE_BUCKETS + 1):
            end = restarted + bucket * BUCKET / factor  # BUCKET is in uncompressed time
            following = position
            while following < len(trace) and trace.times[following] < end:
                following += 1
            run.lost += send(fleet, wires, trace, position, following)
            position = following
            hits, misses = hits_and_misses(fleet.configs[0])
            answered = hits + misses - hits_before - misses_before
            if answered:
                run.curve.append((bucket * BUCKET, (hits - hits_before) / answered))
            if bucket == round(FIRST_MINUTE / BUCKET) and hits + misses:
                run.first_minute = hits / (hits + misses)
            hits_before, misses_before = hits, misses
        run.lost += send(fleet, wires, trace, position, len(trace))
        run.misses = sum(zone_misses(internet, universe))
        run.upstream = internet.total_queries()
    finally:
        fleet.close()
        internet.reset_counters()
    return run


@dataclass
class Latency:
    """Client latencies (seconds, sorted) of the same names: a miss, a shared hit, a local hit."""

    miss: list[float]
    shared: list[float]
    local: list[float]
    shared_upstream: int  # upstream queries while member B answered from Redis (expect 0)


def measure_latency(
    internet: TestInternet,
    universe: Universe,
    workdir: Path,
    hints: Path,
    redis: RedisServer,
    count: int,
) -> Latency:
    """Member A resolves `count` names; B (cold) gets them from Redis, then from its own cache.
    Names whose TTL outlives the run by far, one query at a time (no queueing in the figure)."""
    redis.command("FLUSHALL")
    chosen = [
        name
        for name, ttl, exists in zip(universe.names, universe.ttl, universe.exists, strict=True)
        if exists and ttl >= 60
    ][:count]
    wires = [dns.message.make_query(name, "A").to_wire() for name in chosen]
    # A generous lookup timeout: on a loaded machine a slow GET must show in the figure, not
    # turn into a miss that iterates (the fleet runs keep the default 50 ms).
    fleet = Fleet(workdir, hints, redis, persist=False, lookup_timeout_ms=2000)
    try:
        fleet.start(0)
        fleet.start(1)
        miss = benchlib.udp_load(fleet.ports[0], wires, timeout=DRAIN_SECONDS)
        deadline = time.monotonic() + 10
        while int(redis.command("DBSIZE")[1:]) < len(chosen) and time.monotonic() < deadline:
            time.sleep(0.1)  # the writes happen after the replies
        internet.reset_counters()
        shared = benchlib.udp_load(fleet.ports[1], wires, timeout=DRAIN_SECONDS)
        upstream = internet.total_queries()
        local = benchlib.udp_load(fleet.ports[1], wires, timeout=DRAIN_SECONDS)
    finally:
        fleet.close()
        internet.reset_counters()
    return Latency(miss.latencies, shared.latencies, local.latencies, upstream)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    binary = benchlib.find_tool("redis-server")
    if binary is None:
        raise benchlib.BenchError("redis-server is missing (Debian: apt-get install redis-server)")
    redis = RedisServer(binary, workdir)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def run_live(settings: LiveSettings, args: argparse.Namespace) -> dict[str, object]:
    spec, factor = settings.trace, settings.factor
    universe = make_universe(spec).scaled(factor)
    trace = make_trace(spec).scaled(factor)
    runs: dict[str, LiveRun] = {}
    with tempfile.TemporaryDirectory(prefix="fleet-") as temporary:
        workdir = Path(temporary)
        internet = build_topology(universe, args.block).build()
        hints = internet.write_hints(workdir / "root.hints")
        with benchlib.internet_in_thread(internet), redis_server(workdir) as redis:
            benchlib.check_internet(internet, [(f"ns1.{ZONE}", "A")])
            for name, shared, persist in (
                ("separate", False, False),
                ("shared", True, False),
                ("persist", False, True),
            ):
                benchlib.progress(f"  live {name}: {spec.period / factor:g} s of trace")
                runs[name] = replay_live(
                    name,
                    internet,
                    universe,
                    trace,
                    workdir,
                    hints,
                    redis if shared else None,
                    factor=factor,
                    persist=persist,
                )
            benchlib.progress("  latency of a shared hit")
            latency = measure_latency(
                internet, universe, workdir, hints, redis, settings.latency_names
            )
    print(
        f"live trace: {len(trace)} queries over {spec.period / 60:g} min, {spec.universe} names, "
        f"Zipf {spec.zipf}, compressed {factor:g}x into {spec.period / factor:g} s; "
        f"{MEMBERS} resolver processes round-robin, redis-server on loopback"
    )
    labels = {
        "separate": "separate caches, member 0 restarted cold",
        "shared": "shared cache, member 0 restarted cold",
        "persist": "separate caches, member 0 restarted with its persistent file",
    }
    for name, run in runs.items():
        first = "n/a" if run.first_minute is None else f"{run.first_minute:.1%}"
        print(
            f"{labels[name]:62} hit rate {run.hit_rate:.1%}, upstream/query "
            f"{run.upstream_per_query:.3f}, restarted member's first minute {first}, "
            f"lost {run.lost}"
        )
    percentiles = {}
    for label, samples in (
        ("miss", latency.miss),
        ("shared", latency.shared),
        ("local", latency.local),
    ):
        p50, p99 = benchlib.percentile(samples, 0.5), benchlib.percentile(samples, 0.99)
        percentiles[label] = {"p50_ms": (p50 or 0) * 1000, "p99_ms": (p99 or 0) * 1000}
        print(
            f"latency, {label:6} ({len(samples)} names): p50 {(p50 or 0) * 1000:.2f} ms, "
            f"p99 {(p99 or 0) * 1000:.2f} ms"
        )
    print(f"upstream queries while member B answered from Redis: {latency.shared_upstream}")
    if args.plot:
        plot(
            {"separate": runs["separate"], "shared": runs["shared"]},
            {
                "restart, cold": runs["separate"].curve,
                "restart, shared cache": runs["shared"].curve,
                "restart, persistent file": runs["persist"].curve,
            },
            args.plot,
            "live",
        )
    return {
        "mode": "live",
        "runs": {
            name: {
                "hit_rate": run.hit_rate,
                "upstream_per_query": run.upstream_per_query,
                "first_minute_hit_rate": run.first_minute,
                "curve": run.curve,
                "lost": run.lost,
            }
            for name, run in runs.items()
        },
        "latency": percentiles,
        "shared_hit_upstream": latency.shared_upstream,
    }


# -- the plot and main -----------------------------------------------------------------------------


def plot(
    bars: dict[str, LiveRun] | dict[str, Run],
    curves: dict[str, list[tuple[float, float]]],
    path: Path,
    mode: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(bars)
    rates = [bars[n].hit_rate * 100 for n in names]
    left.bar(names, rates, color=["#999", "#2a7"])
    for position, n in enumerate(names):
        left.text(
            position,
            rates[position] + 1,
            f"{bars[n].hit_rate:.1%}\n{bars[n].upstream_per_query:.3f} upstream/query",
            ha="center",
        )
    left.set_ylim(0, 110)
    left.set_ylabel("fleet hit rate (%)")
    left.set_title(f"{MEMBERS} members, round-robin ({mode})")
    for label, points in curves.items():
        right.plot([x for x, _ in points], [100 * y for _, y in points], label=label, marker=".")
    right.axvline(FIRST_MINUTE, color="#ccc", linestyle="--")
    right.set_xlabel("seconds (of trace time) since the member restarted")
    right.set_ylabel("its hit rate (%) in each bucket")
    right.set_ylim(0, 105)
    right.legend(loc="lower right")
    right.set_title("a restarted member's first minutes")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def sim_curve(run: Run) -> list[tuple[float, float]]:
    buckets: dict[int, list[bool]] = {}
    for when, hit in run.after_restart:
        if when < 4 * FIRST_MINUTE:
            buckets.setdefault(int(when // 10), []).append(hit)
    return [(x * 10 + 10, sum(buckets[x]) / len(buckets[x])) for x in sorted(buckets)]


def run_simulated(args: argparse.Namespace) -> dict[str, object]:
    spec = QUICK if args.quick else FULL
    universe, trace = make_universe(spec), make_trace(spec)
    internet = build_topology(universe, args.block).build()
    runs: dict[str, Run] = {}
    jobs = [
        ("separate", False, None),
        ("shared", True, None),
        ("cold", False, "cold"),
        ("cold-shared", True, "cold"),
        ("persist", False, "persist"),
    ]
    for name, shared, restart in jobs:
        began = time.perf_counter()
        runs[name] = replay(
            internet, universe, trace.times, trace.names, name=name, shared=shared, restart=restart
        )
        benchlib.progress(f"  {name}: {time.perf_counter() - began:.1f} s")
    print(
        f"simulated trace: {len(trace)} queries over {spec.period / 3600:g} h, {spec.universe} "
        f"names, Zipf {spec.zipf}, {MEMBERS} engines round-robin, a dict for Redis"
    )
    for name, run in runs.items():
        first = run.first_minute()
        extra = "" if first is None else f", restarted member's first minute {first:.1%}"
        print(
            f"{name:12} hit rate {run.hit_rate:.1%}, upstream/query "
            f"{run.upstream_per_query:.3f}{extra}"
        )
    if args.plot:
        plot(
            {"separate": runs["separate"], "shared": runs["shared"]},
            {
                "restart, cold": sim_curve(runs["cold"]),
                "restart, shared cache": sim_curve(runs["cold-shared"]),
                "restart, persistent file": sim_curve(runs["persist"]),
            },
            args.plot,
            "simulated",
        )
    return {
        "mode": "simulated",
        "runs": {
            name: {
                "hit_rate": run.hit_rate,
                "upstream_per_query": run.upstream_per_query,
                "first_minute_hit_rate": run.first_minute(),
            }
            for name, run in runs.items()
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller trace (a few minutes)")
    parser.add_argument("--simulate", action="store_true", help="engines on a fake clock only")
    parser.add_argument("--plot", type=Path, help="write the PNG plot here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--block", default=DEFAULT_BLOCK, type=benchlib.block_argument)
    args = parser.parse_args(argv)
    # A bound on the whole run; SIGTERM unwinds it too, stopping every process it started.
    with benchlib.time_budget(900 if args.quick else 3600):
        if args.simulate:
            data = run_simulated(args)
        else:
            settings = LIVE_QUICK if args.quick else LIVE_FULL
            print(f"fleet ({'--quick' if args.quick else 'full'}, live)")
            data = run_live(settings, args)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    benchlib.run_main("fleet", main)
