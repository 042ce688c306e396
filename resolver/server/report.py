"""What `resolver stats` and /metrics report: one process's sample, several samples summed.

A *cache hit* is a client query answered without any upstream query: a packet-cache hit (the
fast path) or a resolution that found everything in the record cache. A *cache miss* is a client
query whose answer waited for upstream queries: a resolution that sent some, or a query that
joined an identical resolution already in flight (only resolutions that ask upstream are ever in
flight). Prefetch refreshes are not client queries and are neither. `hit_rate` is
hits / (hits + misses). Queries answered without a lookup at all (REFUSED, FORMERR, NOTIMP, over
the in-flight limit) are in `queries` but are neither hits nor misses.

`Sample` is the raw form (counters and histograms) that a worker process sends its supervisor;
they add up, which is how `--workers N` reports one set of numbers. `summarize` turns samples into
the flat object printed by `resolver stats --json`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from resolver.server.latency import LatencyHistogram, add, percentiles
from resolver.server.stats import Stats

#: Counters that only grow (Prometheus counters); each is summed over workers.
COUNTERS = (
    "queries",
    "packet_hits",
    "cache_hits",
    "cache_misses",
    "resolutions",
    "resolutions_from_cache",
    "upstream_queries",
    "servfails",
    "prefetches",
)
#: Levels that go up and down (Prometheus gauges); each is summed over workers.
GAUGES = (
    "in_flight",
    "cache_rrsets",
    "cache_delegations",
    "cache_negative",
    "cache_stale",
    "cache_packets",
)


@dataclass
class Sample:
    """One process's numbers at one moment; JSON-friendly (`asdict`, `from_dict`)."""

    started: float
    counters: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, int] = field(default_factory=dict)
    latency: list[int] = field(default_factory=list)
    latency_seconds: float = 0.0
    recent_latency: list[int] = field(default_factory=list)
    recent_window: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def take_sample(
    *,
    started: float,
    stats: Stats,
    upstream_sent: int,
    in_flight: int,
    census: Mapping[str, int],
    packets: int,
    latency: LatencyHistogram,
    monotonic_now: float,
) -> Sample:
    """A Sample from a process's live objects."""
    counters = {
        "queries": stats.queries,
        "packet_hits": stats.packet_hits,
        "cache_hits": stats.packet_hits + stats.cache_answers,
        "cache_misses": stats.cache_misses,
        "resolutions": stats.resolutions,
        "resolutions_from_cache": stats.cache_answers,
        "upstream_queries": upstream_sent,
        "servfails": stats.servfails,
        "prefetches": stats.prefetches,
    }
    gauges = {
        "in_flight": in_flight,
        "cache_rrsets": census["rrsets"],
        "cache_delegations": census["delegations"],
        "cache_negative": census["negative"],
        "cache_stale": census["stale"],
        "cache_packets": packets,
    }
    recent, window = latency.recent(monotonic_now)
    return Sample(
        started=started,
        counters=counters,
        gauges=gauges,
        latency=list(latency.counts),
        latency_seconds=latency.total_seconds,
        recent_latency=recent,
        recent_window=window,
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def summarize(samples: Sequence[Sample], now: float | None = None) -> dict[str, Any]:
    """The flat object of `resolver stats --json`: sums over `samples`, rates, percentiles.

    Rates and percentiles are None (JSON null) when there is nothing to divide or rank yet.
    """
    if not samples:
        raise ValueError("no samples to summarize")
    now = time.time() if now is None else now
    summary: dict[str, Any] = {
        "uptime_seconds": round(now - min(sample.started for sample in samples), 1),
        "workers": len(samples),
    }
    for name in COUNTERS:
        summary[name] = sum(sample.counters.get(name, 0) for sample in samples)
    for name in GAUGES:
        summary[name] = sum(sample.gauges.get(name, 0) for sample in samples)
    hits, misses = summary["cache_hits"], summary["cache_misses"]
    summary["hit_rate"] = _rate(hits, hits + misses)
    summary["packet_hit_rate"] = _rate(summary["packet_hits"], summary["queries"])
    recent = percentiles(add([sample.recent_latency for sample in samples]))
    summary["latency_window_seconds"] = round(max(s.recent_window for s in samples), 1)
    summary["latency_samples"] = recent.samples
    summary["latency_p50_ms"] = _ms(recent.p50)
    summary["latency_p90_ms"] = _ms(recent.p90)
    summary["latency_p99_ms"] = _ms(recent.p99)
    return summary


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} ms"


def format_text(summary: Mapping[str, Any]) -> str:
    """`resolver stats` for people: the same numbers as --json, grouped and labelled."""
    s = summary
    workers = f" ({s['workers']} workers)" if s["workers"] > 1 else ""
    rows = [
        ("uptime", f"{_duration(s['uptime_seconds'])}{workers}"),
        ("queries", f"{s['queries']}"),
        (
            "cache hits",
            f"{s['cache_hits']} ({_percent(s['hit_rate'])} of hits+misses; "
            f"{s['packet_hits']} from the packet cache, "
            f"{s['resolutions_from_cache']} from cached records)",
        ),
        ("cache misses", f"{s['cache_misses']}"),
        ("packet cache", f"{s['packet_hits']} hits ({_percent(s['packet_hit_rate'])} of queries)"),
        ("upstream queries", f"{s['upstream_queries']}"),
        ("SERVFAIL", f"{s['servfails']}"),
        ("prefetches", f"{s['prefetches']}"),
        ("in flight", f"{s['in_flight']}"),
        (
            f"latency (last {_duration(s['latency_window_seconds'])})",
            f"p50 {_milliseconds(s['latency_p50_ms'])}, p90 {_milliseconds(s['latency_p90_ms'])}, "
            f"p99 {_milliseconds(s['latency_p99_ms'])} over {s['latency_samples']} queries",
        ),
        (
            "cache entries",
            f"{s['cache_rrsets']} answers, {s['cache_delegations']} delegation records, "
            f"{s['cache_negative']} negative, {s['cache_stale']} stale; "
            f"{s['cache_packets']} packets",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
