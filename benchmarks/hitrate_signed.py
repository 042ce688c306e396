"""The hit rate of a SIGNED zone under random-subdomain queries, with and without aggressive
NSEC (RFC 8198): the `--random-subdomains` scenario of benchmarks/hitrate.py.

Browsers' captive-portal probes (Chromium asks for 7 to 15 random letters) and water-torture
attacks ask for names that were never asked before: each is a miss for a cache that only
remembers answers, and costs the zone's servers a query. A validating resolver that keeps the
zone's validated NSEC ranges answers most of them itself once it has seen the ranges.

The world: the signed test internet plus `bench.sec.` (ECDSA P-256, NSEC; `signed_topology.
with_bench`) holding the universe of names, each a random 8-letter label (so NSEC ranges split
the name space evenly, as hashed or natural names do), with hitrate.py's TTL mix; its SOA
MINIMUM (300 s) bounds how long a range may serve (RFC 9077). The trace: hitrate.py's Zipf
queries over the universe at Poisson times, a share of them replaced by fresh random names
(12 random letters: each is asked once). Each share is replayed through the `server` model
(`Engine` on a fake clock, `ScriptedWorld`, validation on with the internet's root anchor, an
unbounded cache) with `dnssec.aggressive_nsec` off and on. A hit is what the engine counts:
a query that did not wait for an upstream query.
"""

from __future__ import annotations

import random
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

import benchlib
import dns.message
import dns.rcode
from hitrate import CLIENT, UNBOUNDED, TraceSpec, make_trace, make_universe, percent

from resolver.config import CacheConfig, Config, DnssecConfig, UpstreamConfig
from resolver.engine import Client
from resolver.testing import TestInternet
from resolver.testing.scripted import FakeClock, ScriptedWorld
from resolver.testing.signed_topology import BENCH_ZONE

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class SignedSettings:
    trace: TraceSpec
    shares: tuple[float, ...]  # share of the queries that are fresh random names


QUICK = SignedSettings(
    TraceSpec(universe=500, queries=3000, period=3600, zipf=0.9, nx_share=0.0, seed=4),
    shares=(0.25,),
)
FULL = SignedSettings(
    TraceSpec(universe=1000, queries=6000, period=3600, zipf=0.9, nx_share=0.0, seed=4),
    shares=(0.1, 0.25, 0.5),
)


@dataclass
class SignedReplay:
    share: float
    aggressive: bool
    queries: int
    hits: int
    random_queries: int
    random_hits: int
    upstream: int
    aggressive_answers: int
    seconds: float

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0

    @property
    def random_hit_rate(self) -> float:
        return self.random_hits / self.random_queries if self.random_queries else 0.0


def _label(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(length))


def bench_names(count: int, seed: int) -> tuple[str, ...]:
    """`count` distinct random 8-letter names in bench.sec."""
    rng = random.Random(f"bench-names-{seed}-{count}")
    names: set[str] = set()
    while len(names) < count:
        names.add(f"{_label(rng, 8)}.{BENCH_ZONE}")
    return tuple(sorted(names))


def build(spec: TraceSpec) -> tuple[TestInternet, tuple[str, ...], list[int], list[float]]:
    """The signed internet with the universe in bench.sec., the names and the trace."""
    universe = make_universe(spec)
    universe = replace(universe, names=bench_names(spec.universe, spec.seed))
    internet = TestInternet.signed(bench=universe.zone_records())
    trace = make_trace(spec)
    return internet, universe.names, list(trace.names), list(trace.times)


def replay_share(
    internet: TestInternet,
    names: tuple[str, ...],
    picks: list[int],
    times: list[float],
    share: float,
    aggressive: bool,
) -> SignedReplay:
    """One replay: the trace with `share` of its queries turned into fresh random names."""
    rng = random.Random(f"random-subdomains-{share}")
    config = Config(
        cache=CacheConfig(max_entries=UNBOUNDED, max_packets=UNBOUNDED),
        upstream=UpstreamConfig(query_loopback=True),
        dnssec=DnssecConfig(aggressive_nsec=aggressive),
    )
    clock = FakeClock()
    start = clock.now
    world = ScriptedWorld(internet, config, clock=clock)
    stats = world.engine.stats
    client = Client(CLIENT)
    result = SignedReplay(share, aggressive, len(picks), 0, 0, 0, 0, 0, 0.0)
    began = time.perf_counter()
    sent = world.engine.upstream_sent
    for index, (when, pick) in enumerate(zip(times, picks, strict=True)):
        clock.now = start + when
        fresh = rng.random() < share
        name = f"{_label(rng, 12)}.{BENCH_ZONE}" if fresh else names[pick]
        query = dns.message.make_query(name, "A", want_dnssec=True)
        query.id = index & 0xFFFF
        misses = stats.cache_misses
        reply = world.query(query.to_wire(), client)
        hit = stats.cache_misses == misses
        result.hits += hit
        if fresh:
            result.random_queries += 1
            result.random_hits += hit
            if reply is None or reply[3] & 0x0F != dns.rcode.NXDOMAIN:
                raise benchlib.BenchError(f"{name}: expected NXDOMAIN")
    result.seconds = time.perf_counter() - began
    result.upstream = world.engine.upstream_sent - sent
    result.aggressive_answers = stats.aggressive_answers
    internet.reset_counters()
    return result


def plot(path: Path, replays: list[SignedReplay], title: str) -> None:
    """Hit rate against the share of random-subdomain queries, aggressive NSEC off and on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    for aggressive, label in ((False, "aggressive NSEC off"), (True, "aggressive NSEC on")):
        mine = [r for r in replays if r.aggressive is aggressive]
        axes.plot(
            [100 * r.share for r in mine],
            [100 * r.hit_rate for r in mine],
            marker="o",
            label=f"{label}: all queries",
        )
        axes.plot(
            [100 * r.share for r in mine if r.random_queries],
            [100 * r.random_hit_rate for r in mine if r.random_queries],
            marker="x",
            linestyle=":",
            label=f"{label}: random names only",
        )
    axes.set_xlabel("share of random-subdomain queries (%)")
    axes.set_ylabel("hit rate (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title, fontsize=8)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def section(quick: bool, plot_path: Path, report: benchlib.Report) -> None:
    """Replay every share with aggressive NSEC off and on; table, plot and JSON."""
    settings = QUICK if quick else FULL
    spec = settings.trace
    benchlib.progress(f"signed zone: signing {spec.universe:,} names of {BENCH_ZONE}")
    internet, names, picks, times = build(spec)
    replays: list[SignedReplay] = []
    for share in settings.shares:
        for aggressive in (False, True):
            done = replay_share(internet, names, picks, times, share, aggressive)
            benchlib.progress(
                f"  random share {share:.0%}, aggressive {'on' if aggressive else 'off'}: "
                f"{percent(done.hit_rate)} in {done.seconds:.1f} s"
            )
            replays.append(done)
    describe = (
        f"{spec.queries:,} queries over {spec.period / 3600:g} h, Zipf {spec.zipf} over "
        f"{spec.universe:,} names of the signed zone {BENCH_ZONE} (ECDSA P-256, NSEC, SOA "
        "MINIMUM 300 s), a share replaced by fresh random 12-letter names; unbounded cache"
    )
    lines = report.lines
    lines.append("")
    lines.append(f"random subdomains in a signed zone: {describe}")
    header = ["random share", "aggressive NSEC", "hit rate", "random names' hit rate"]
    header += ["upstream queries", "aggressive answers"]
    rows = [
        [
            f"{r.share:.0%}",
            "on" if r.aggressive else "off",
            percent(r.hit_rate),
            percent(r.random_hit_rate) if r.random_queries else "-",
            f"{r.upstream:,}",
            f"{r.aggressive_answers:,}",
        ]
        for r in replays
    ]
    lines += benchlib.table(header, rows)
    plot(plot_path, replays, textwrap.fill(describe, 110))
    lines.append(f"plot: {plot_path}")
    report.data["random_subdomains"] = [
        {**r.__dict__, "hit_rate": r.hit_rate, "random_hit_rate": r.random_hit_rate}
        for r in replays
    ]
