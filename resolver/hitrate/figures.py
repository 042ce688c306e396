"""Every figure `resolver hitrate` reports, computed from a trace (the report only formats).

The figures: the infinite-cache bound; the hit rate at each cache size, with the memory that
size takes; with TTL caps other than the defaults, the same without them (their effect); with
prefetch or serve-stale, the same with them on; the NXDOMAIN share and what aggressive negative
caching would save; the busiest names; the hit rate hour by hour.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from resolver.config import CacheConfig
from resolver.hitrate.engine_replay import replay_engine
from resolver.hitrate.simulate import Policy, Replay, bound, hours, replay
from resolver.hitrate.trace import Notes, Trace
from resolver.hitrate.wire import NXDOMAIN

#: Bytes of Python heap per simulated entry: one record-cache entry (551, the realistic mix)
#: plus one packet-cache entry (325), as `benchmarks/memory.py` measured them (docs/benchmarks.md,
#: "Compact cache entries"). A simulated size of N is `cache.max_entries = cache.max_packets = N`.
BYTES_PER_ENTRY = 551 + 325

#: Cache sizes tried when none is asked for: these shares of the distinct questions.
DEFAULT_SHARES = (0.01, 0.1, 0.5, 1.0)

BUSIEST = 10

MODEL = (
    "question cache: the project's ExpiringLru with the engine's TTL rules, one entry per "
    "question (the full engine is too slow for 50,000 queries/s: --engine replays through it; "
    "see docs/hitrate.md)"
)
ENGINE_MODEL = (
    "the resolver's own Engine on a fake clock, behind a forwarder scripted from the trace "
    "(--engine: exact, a few thousand queries/s)"
)


@dataclass
class SizeFigures:
    """One cache size: its hit rate, and the variants asked for."""

    entries: int
    memory_bytes: int
    hits: int
    hit_rate: float
    default_caps_hit_rate: float | None = None  # only with --max-ttl/--min-ttl
    prefetch_hit_rate: float | None = None
    prefetches: int | None = None
    stale_answers: int | None = None
    stale_hit_rate: float | None = None  # with serve-stale (it keeps expired entries: room)


@dataclass
class Busy:
    """One of the busiest names."""

    name: str
    queries: int
    share: float


@dataclass
class Hour:
    """One hour of the trace: its queries and hit rates (None: no query that hour)."""

    hour: int  # 0 is the hour the trace starts in
    start: float
    queries: int
    bound: float | None
    sizes: dict[str, float | None]  # cache size (entries, as text) -> hit rate


@dataclass
class Figures:
    files: list[str]
    model: str
    queries: int
    start: float
    duration: float
    distinct_names: int
    distinct_questions: int
    settings: dict[str, object]
    bound: float
    bound_hits: int
    default_caps_bound: float | None
    sizes: list[SizeFigures]
    nxdomain_queries: int
    nxdomain_share: float
    nxdomain_names: int
    aggressive_negative_saved: int
    bound_with_aggressive_negative: float
    busiest: list[Busy]
    hourly: list[Hour]
    notes: dict[str, object]
    cpu_seconds: dict[str, float] = field(default_factory=dict)


def default_sizes(trace: Trace) -> list[int]:
    distinct = trace.distinct_questions()
    return sorted({max(1, round(share * distinct)) for share in DEFAULT_SHARES})


def compute(
    trace: Trace,
    files: Sequence[str],
    sizes: Sequence[int],
    cache: CacheConfig,
    *,
    prefetch: bool = False,
    serve_stale: bool = False,
    progress: Callable[[int], None] | None = None,
    engine: bool = False,
) -> Figures:
    """All the figures. `cache` carries the TTL caps asked for (the rest are the defaults);
    `progress(queries)` is told the queries replayed so far, over every pass. `engine`:
    each cache size is replayed through the resolver's own `Engine` (`engine_replay`: exact,
    a few thousand queries a second) instead of the model (`simulate.replay`)."""
    replayer = replay_engine if engine else replay
    policy = Policy.of(cache)
    defaults = Policy.of(CacheConfig())
    capped = (policy.max_ttl, policy.min_ttl) != (defaults.max_ttl, defaults.min_ttl)
    hour_of = hours(trace)
    passes = 0
    cpu: dict[str, float] = {}

    def run(label: str, size: int, rules: Policy) -> Replay:
        nonlocal passes
        done_before = passes * len(trace)

        def step(index: int) -> None:
            if progress is not None:
                progress(done_before + index)

        began = time.process_time()
        result = replayer(trace, size, rules, hour_of, step)
        cpu[label] = time.process_time() - began
        passes += 1
        if progress is not None:
            progress(passes * len(trace))
        return result

    began = time.process_time()
    limit = bound(trace, policy, hour_of)
    cpu["bound"] = time.process_time() - began
    default_limit = bound(trace, defaults, hour_of) if capped else None
    rows: list[SizeFigures] = []
    per_size: dict[int, Replay] = {}
    for size in sizes:
        plain = run(f"size {size}", size, policy)
        per_size[size] = plain
        row = SizeFigures(size, size * BYTES_PER_ENTRY, plain.hits, plain.hit_rate)
        if capped:
            row.default_caps_hit_rate = run(f"size {size}, default caps", size, defaults).hit_rate
        if prefetch:
            with_prefetch = run(f"size {size}, prefetch", size, replace(policy, prefetch=True))
            row.prefetch_hit_rate, row.prefetches = with_prefetch.hit_rate, with_prefetch.prefetches
        if serve_stale:
            with_stale = run(f"size {size}, serve-stale", size, replace(policy, serve_stale=True))
            row.stale_hit_rate, row.stale_answers = with_stale.hit_rate, with_stale.stale
        rows.append(row)

    queries = len(trace)
    nx = [query for query in trace.queries if query.rcode == NXDOMAIN]
    busiest = [Busy(name, count, count / queries) for name, count in trace.busiest(BUSIEST)]
    hourly_queries = collections.Counter(hour_of)
    hourly = []
    for hour in sorted(hourly_queries):  # hours without queries are left out: a capture
        asked = hourly_queries[hour]  # with a stray timestamp does not list years of them
        rates: dict[str, float | None] = {
            str(size): (result.hourly_hits[hour] / asked if asked else None)
            for size, result in per_size.items()
        }
        hourly.append(
            Hour(
                hour,
                trace.start + hour * 3600,
                asked,
                limit.hourly_hits[hour] / asked if asked else None,
                rates,
            )
        )
    return Figures(
        files=list(files),
        model=ENGINE_MODEL if engine else MODEL,
        queries=queries,
        start=trace.start,
        duration=trace.duration,
        distinct_names=trace.distinct_names(),
        distinct_questions=trace.distinct_questions(),
        settings={
            "max_ttl": policy.max_ttl,
            "min_ttl": policy.min_ttl,
            "max_negative_ttl": policy.max_negative_ttl,
            "failure_ttl": policy.failure_ttl,
            "prefetch": prefetch,
            "serve_stale": serve_stale,
            "max_stale": policy.max_stale,
            "stale_client_timeout": policy.stale_client_timeout,
        },
        bound=limit.hit_rate,
        bound_hits=limit.hits,
        default_caps_bound=None if default_limit is None else default_limit.hit_rate,
        sizes=rows,
        nxdomain_queries=len(nx),
        nxdomain_share=len(nx) / queries if queries else 0.0,
        nxdomain_names=len({query.name for query in nx}),
        aggressive_negative_saved=limit.negative_saved,
        bound_with_aggressive_negative=(
            (limit.hits + limit.negative_saved) / queries if queries else 0.0
        ),
        busiest=busiest,
        hourly=hourly,
        notes=_notes(trace.notes),
        cpu_seconds=cpu,
    )


def _notes(notes: Notes) -> dict[str, object]:
    return {
        "malformed": notes.malformed,
        "not_client_dns": notes.not_dns,
        "unanswered": notes.unanswered,
        "responses_without_query": notes.unasked,
        "tcp_segments_skipped": notes.tcp_gaps,
        "ip_fragments_skipped": notes.fragments,
        "iterative_rd0": notes.iterative,
        "resolver_upstream_queries": notes.upstream,
        "retransmitted_queries": notes.retransmitted,
        "duplicate_responses": notes.duplicates,
        "truncated_responses": notes.truncated,
        "dnstap_other_messages": notes.other_dnstap,
        "messages": list(notes.messages),
    }
