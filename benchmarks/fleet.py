"""A fleet of resolvers behind a round-robin balancer: separate caches, a shared cache, restarts.

    python benchmarks/fleet.py [--quick] [--plot FILE] [--json FILE]

One seeded Zipf trace with real TTLs (`hitrate.py`'s generator and zone) is dealt round-robin
to `MEMBERS` resolvers, as a load balancer sends. Each member is the engine `resolver serve`
runs (packet cache, record cache, iterator), driven without sockets on one fake clock by
`resolver.testing.scripted` (hours of TTLs in seconds; upstream answers from the test
internet's data); the shared cache is a dict played by that driver (`ScriptedWorld.shared`),
through the engine's real `SharedLookup`/`SharedStore` path, keys, value encoding and checks.
What is not in the figures: Redis's own round trip (see docs/benchmarks.md for it measured).

Runs: (1) separate caches vs the shared cache: hit rate and upstream queries per client
query; (2) at the trace's midpoint one member restarts and its hit rate over the next minute
of traffic is measured: cold, cold with the shared cache, and warm from its persistent file
(the `cache/dump.py` snapshot and restore that `cache.persist_file` uses).
Figures are printed and plotted, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
import dns.message
from hitrate import DEFAULT_BLOCK, TraceSpec, Universe, build_topology, make_trace, make_universe

from resolver.cache.dump import Restored, restore, snapshot
from resolver.config import CacheConfig, Config, DnssecConfig, SharedCacheConfig, UpstreamConfig
from resolver.engine import Client
from resolver.testing import TestInternet
from resolver.testing.scripted import FakeClock, ScriptedWorld

MEMBERS = 3
#: The window after a restart over which the new member's hit rate is measured.
FIRST_MINUTE = 60.0
SECRET = "benchmark-fleet-secret-0123456789"

FULL = TraceSpec(universe=20_000, queries=200_000, period=4 * 3600, zipf=0.9, nx_share=0.1, seed=1)
QUICK = TraceSpec(universe=5_000, queries=40_000, period=3600, zipf=0.9, nx_share=0.1, seed=1)


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


def plot(runs: dict[str, Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = ["separate", "shared"]
    left.bar(names, [runs[n].hit_rate * 100 for n in names], color=["#999", "#2a7"])
    for position, n in enumerate(names):
        left.text(
            position,
            runs[n].hit_rate * 100 + 1,
            f"{runs[n].hit_rate:.1%}\n{runs[n].upstream / runs[n].queries:.3f} upstream/query",
            ha="center",
        )
    left.set_ylim(0, 110)
    left.set_ylabel("fleet hit rate (%)")
    left.set_title(f"{MEMBERS} members, round-robin")
    for key, label in (
        ("cold", "restart, cold"),
        ("cold-shared", "restart, shared cache"),
        ("persist", "restart, persistent file"),
    ):
        points = runs[key].after_restart
        buckets: dict[int, list[bool]] = {}
        for when, hit in points:
            if when < 4 * FIRST_MINUTE:
                buckets.setdefault(int(when // 10), []).append(hit)
        xs = sorted(buckets)
        right.plot(
            [x * 10 + 5 for x in xs],
            [100 * sum(buckets[x]) / len(buckets[x]) for x in xs],
            label=label,
            marker=".",
        )
    right.axvline(FIRST_MINUTE, color="#ccc", linestyle="--")
    right.set_xlabel("seconds since the member restarted")
    right.set_ylabel("its hit rate (%), 10 s buckets")
    right.set_ylim(0, 105)
    right.legend(loc="lower right")
    right.set_title("a restarted member's first minutes")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller trace (about a minute)")
    parser.add_argument("--plot", type=Path, help="write the PNG plot here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    spec = QUICK if args.quick else FULL
    universe, trace = make_universe(spec), make_trace(spec)
    internet = build_topology(universe, DEFAULT_BLOCK).build()
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
        f"trace: {len(trace)} queries over {spec.period / 3600:g} h, {spec.universe} names, "
        f"Zipf {spec.zipf}, {MEMBERS} members round-robin ({'quick' if args.quick else 'full'})"
    )
    for name, run in runs.items():
        first = run.first_minute()
        extra = "" if first is None else f", restarted member's first minute {first:.1%}"
        print(
            f"{name:12} hit rate {run.hit_rate:.1%}, upstream/query "
            f"{run.upstream / run.queries:.3f}{extra}"
        )
    if args.plot:
        plot(runs, args.plot)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    name: {
                        "hit_rate": run.hit_rate,
                        "upstream_per_query": run.upstream / run.queries,
                        "first_minute_hit_rate": run.first_minute(),
                    }
                    for name, run in runs.items()
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
