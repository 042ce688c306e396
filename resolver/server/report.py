"""Every metric the resolver reports, defined once in `METRICS`, and the views made from it.

A *cache hit* is a client query answered without any upstream query: a packet-cache hit (the
fast path) or a question answered from the record cache alone (the engine decides, in
`Engine._count_client`). A *cache miss* is a client
query whose answer waited for upstream queries: a resolution that sent some, or a query that
joined an identical resolution already in flight (only resolutions that ask upstream are ever in
flight). Prefetch refreshes are not client queries and are neither. `hit_rate` is
hits / (hits + misses). Queries answered without a lookup at all (REFUSED, FORMERR, NOTIMP, over
the in-flight limit) are in `queries` but are neither hits nor misses.

A row of `METRICS` says what a metric is called, what kind it is, what it means, how it is read
from one process (`Process`) and how the values of several workers add up. `resolver stats
--json` (`summarize`), `resolver stats` (`format_text`) and /metrics (metrics.py) are all made
from the table, so a new metric is a counter in `Stats` (or a new source in `Process`) and one row
here; tests/test_metrics.py fails when a `Stats` field has no row, or when docs/operations.md does
not name a metric.

`Sample` is the raw form of one process's values that a worker sends its supervisor (JSON); the
values of several samples add up, which is how `--workers N` reports one set of numbers.
"""

from __future__ import annotations

import enum
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from resolver.engine.latency import LatencyHistogram, Reading, percentiles
from resolver.engine.stats import Stats


class Kind(enum.StrEnum):
    """The Prometheus type of a metric, which also says how workers add up by default."""

    COUNTER = "counter"  # only grows (from zero at each start); exported with `_total`
    GAUGE = "gauge"  # a level that goes up and down
    HISTOGRAM = "histogram"  # a latency `Reading`


@dataclass(frozen=True)
class Process:
    """The live objects one process's metrics are read from, at one moment (trio thread)."""

    started: float
    stats: Stats
    upstream_sent: int
    in_flight: int
    census: Mapping[str, int]
    packets: int
    latency: LatencyHistogram
    now: float
    #: Latency per stream transport ("tcp", "tls", "https"; `Engine.transport_latency`).
    transport_latency: Mapping[str, LatencyHistogram] = field(default_factory=dict)


def _sum(values: Sequence[Any]) -> Any:
    return sum(values)


@dataclass(frozen=True)
class Metric:
    """One row of the table: everything the three views need to know about one metric."""

    #: The key in a `Sample`, and in `resolver stats --json` unless `json` says otherwise.
    key: str
    kind: Kind
    help: str
    read: Callable[[Process], Any]
    #: The Prometheus family name (a counter's samples get `_total` appended).
    series: str
    #: (label, value) when several metrics are one family, told apart by a label.
    series_label: tuple[str, str] | None = None
    #: How the values of several workers make one (counters and gauges add up).
    combine: Callable[[Sequence[Any]], Any] = _sum
    #: Its keys in `resolver stats --json`, from the combined value and the time now; None
    #: means {key: value}.
    json: Callable[[Any, float], dict[str, Any]] | None = None
    #: Its line in `resolver stats`, (label, value) templates over the --json keys (see
    #: `_Text`); None when another metric's line shows it.
    line: tuple[str, str] | None = None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _uptime(started: float, now: float) -> dict[str, Any]:
    return {"uptime_seconds": round(now - started, 1)}


def _latency(reading: Reading, _now: float) -> dict[str, Any]:
    """The recent window's percentiles: `resolver stats` is about the last few minutes."""
    recent = percentiles(reading.recent)
    return {
        "latency_window_seconds": round(reading.window, 1),
        "latency_samples": recent.samples,
        "latency_p50_ms": _ms(recent.p50),
        "latency_p90_ms": _ms(recent.p90),
        "latency_p99_ms": _ms(recent.p99),
    }


_ENTRIES = "resolver_cache_entries"
_BY_TRANSPORT = "resolver_transport_queries"
_TRANSPORT_LATENCY = "resolver_transport_query_duration_seconds"


def _transport_latency(transport: str) -> Callable[[Process], Reading]:
    def read(process: Process) -> Reading:
        held = process.transport_latency.get(transport) or LatencyHistogram(process.now)
        return Reading.of(held, process.now)

    return read


def _transport_p99(transport: str) -> Callable[[Reading, float], dict[str, Any]]:
    def view(reading: Reading, _now: float) -> dict[str, Any]:
        return {f"latency_{transport}_p99_ms": _ms(percentiles(reading.recent).p99)}

    return view


def _stream_queries(stats: Stats) -> int:
    return stats.tcp_queries + stats.tls_queries + stats.https_queries


#: Per-transport counters and latencies (client queries over UDP, TCP, TLS and HTTPS; queries
#: to forwarders over TLS), kept apart from the table above so it reads as one block.
_TRANSPORT_METRICS: tuple[Metric, ...] = (
    Metric(
        "udp_queries",
        Kind.COUNTER,
        "udp",
        lambda p: p.stats.queries - _stream_queries(p.stats),
        _BY_TRANSPORT,
        series_label=("transport", "udp"),
        line=(
            "by transport",
            "udp {udp_queries}, tcp {tcp_queries}, tls {tls_queries}, https {https_queries}",
        ),
    ),
    Metric(
        "tcp_queries",
        Kind.COUNTER,
        "tcp",
        lambda p: p.stats.tcp_queries,
        _BY_TRANSPORT,
        series_label=("transport", "tcp"),
    ),
    Metric(
        "tls_queries",
        Kind.COUNTER,
        "tls, RFC 7858",
        lambda p: p.stats.tls_queries,
        _BY_TRANSPORT,
        series_label=("transport", "tls"),
    ),
    Metric(
        "https_queries",
        Kind.COUNTER,
        "https, RFC 8484",
        lambda p: p.stats.https_queries,
        _BY_TRANSPORT,
        series_label=("transport", "https"),
    ),
    Metric(
        "latency_tcp",
        Kind.HISTOGRAM,
        "tcp",
        _transport_latency("tcp"),
        _TRANSPORT_LATENCY,
        series_label=("transport", "tcp"),
        combine=Reading.add,
        json=_transport_p99("tcp"),
        line=(
            "p99 by transport",
            "tcp {latency_tcp_p99_ms:ms}, tls {latency_tls_p99_ms:ms}, "
            "https {latency_https_p99_ms:ms}",
        ),
    ),
    Metric(
        "latency_tls",
        Kind.HISTOGRAM,
        "tls",
        _transport_latency("tls"),
        _TRANSPORT_LATENCY,
        series_label=("transport", "tls"),
        combine=Reading.add,
        json=_transport_p99("tls"),
    ),
    Metric(
        "latency_https",
        Kind.HISTOGRAM,
        "https",
        _transport_latency("https"),
        _TRANSPORT_LATENCY,
        series_label=("transport", "https"),
        combine=Reading.add,
        json=_transport_p99("https"),
    ),
    Metric(
        "upstream_tls_queries",
        Kind.COUNTER,
        "Queries sent to forwarders over DNS over TLS.",
        lambda p: p.stats.upstream_tls_queries,
        "resolver_upstream_tls_queries",
        line=(
            "forwarded over TLS",
            "{upstream_tls_queries} queries, {upstream_tls_failures} failed to connect",
        ),
    ),
    Metric(
        "upstream_tls_failures",
        Kind.COUNTER,
        "Queries to DNS-over-TLS forwarders that found no connection (refused, timed out, "
        "certificate or pin check failed; the log names the server and the reason).",
        lambda p: p.stats.upstream_tls_failures,
        "resolver_upstream_tls_failures",
    ),
)

#: Every metric, in the order of `resolver stats` and its --json object.
METRICS: tuple[Metric, ...] = (
    Metric(
        "started",
        Kind.GAUGE,
        "When the process started (Unix time).",
        lambda p: p.started,
        "resolver_start_time_seconds",
        combine=min,
        json=_uptime,
        line=("uptime", "{uptime_seconds:duration}{workers:workers}"),
    ),
    Metric(
        "queries",
        Kind.COUNTER,
        "Client queries received (dropped QR=1 packets excluded).",
        lambda p: p.stats.queries,
        "resolver_queries",
        line=("queries", "{queries}"),
    ),
    Metric(
        "cache_hits",
        Kind.COUNTER,
        "Client queries answered without any upstream query (packet cache or cached records).",
        lambda p: p.stats.packet_hits + p.stats.cache_answers,
        "resolver_cache_hits",
        line=(
            "cache hits",
            "{cache_hits} ({hit_rate:%} of hits+misses; {packet_hits} from the packet cache, "
            "{resolutions_from_cache} from cached records)",
        ),
    ),
    Metric(
        "cache_misses",
        Kind.COUNTER,
        "Client queries whose answer waited for upstream queries.",
        lambda p: p.stats.cache_misses,
        "resolver_cache_misses",
        line=("cache misses", "{cache_misses}"),
    ),
    Metric(
        "packet_hits",
        Kind.COUNTER,
        "Client queries answered by the packet cache.",
        lambda p: p.stats.packet_hits,
        "resolver_packet_cache_hits",
        line=("packet cache", "{packet_hits} hits ({packet_hit_rate:%} of queries)"),
    ),
    Metric(
        "resolutions",
        Kind.COUNTER,
        "Resolutions run (client questions and prefetches).",
        lambda p: p.stats.resolutions,
        "resolver_resolutions",
    ),
    Metric(
        "resolutions_from_cache",
        Kind.COUNTER,
        "Client queries answered from cached records alone (behind the packet cache).",
        lambda p: p.stats.cache_answers,
        "resolver_resolutions_from_cache",
    ),
    Metric(
        "upstream_queries",
        Kind.COUNTER,
        "Queries sent to authoritative servers.",
        lambda p: p.upstream_sent,
        "resolver_upstream_queries",
        line=("upstream queries", "{upstream_queries}"),
    ),
    Metric(
        "servfails",
        Kind.COUNTER,
        "Resolutions that ended in SERVFAIL.",
        lambda p: p.stats.servfails,
        "resolver_servfails",
        line=("SERVFAIL", "{servfails}"),
    ),
    Metric(
        "dropped",
        Kind.COUNTER,
        "Client queries dropped unanswered under load (the oldest waiting misses; clients retry).",
        lambda p: p.stats.dropped,
        "resolver_dropped_queries",
        line=("dropped", "{dropped}"),
    ),
    Metric(
        "prefetches",
        Kind.COUNTER,
        "Answers refreshed in the background (prefetch).",
        lambda p: p.stats.prefetches,
        "resolver_prefetches",
        line=("prefetches", "{prefetches}"),
    ),
    Metric(
        "in_flight",
        Kind.GAUGE,
        "Resolutions in progress.",
        lambda p: p.in_flight,
        "resolver_in_flight",
        line=("in flight", "{in_flight}"),
    ),
    Metric(
        "latency",
        Kind.HISTOGRAM,
        "Time spent on a client query, from reading it to having the reply ready.",
        lambda p: Reading.of(p.latency, p.now),
        "resolver_query_duration_seconds",
        combine=Reading.add,
        json=_latency,
        line=(
            "latency (last {latency_window_seconds:duration})",
            "p50 {latency_p50_ms:ms}, p90 {latency_p90_ms:ms}, p99 {latency_p99_ms:ms} "
            "over {latency_samples} queries",
        ),
    ),
    Metric(
        "cache_rrsets",
        Kind.GAUGE,
        "answers",
        lambda p: p.census["rrsets"],
        _ENTRIES,
        series_label=("kind", "rrsets"),
        line=(
            "cache entries",
            "{cache_rrsets} answers, {cache_delegations} delegation records, "
            "{cache_negative} negative, {cache_stale} stale; {cache_packets} packets",
        ),
    ),
    Metric(
        "cache_delegations",
        Kind.GAUGE,
        "NS sets and glue from referrals",
        lambda p: p.census["delegations"],
        _ENTRIES,
        series_label=("kind", "delegations"),
    ),
    Metric(
        "cache_negative",
        Kind.GAUGE,
        "NXDOMAIN and NODATA answers",
        lambda p: p.census["negative"],
        _ENTRIES,
        series_label=("kind", "negative"),
    ),
    Metric(
        "cache_stale",
        Kind.GAUGE,
        "expired, kept for serve-stale",
        lambda p: p.census["stale"],
        _ENTRIES,
        series_label=("kind", "stale"),
    ),
    Metric(
        "cache_packets",
        Kind.GAUGE,
        "responses in the packet cache",
        lambda p: p.packets,
        _ENTRIES,
        series_label=("kind", "packets"),
    ),
    Metric(
        "shared_hits",
        Kind.COUNTER,
        "Shared-cache lookups whose value answered the question (no upstream query).",
        lambda p: p.stats.shared_hits,
        "resolver_shared_cache_hits",
        line=(
            "shared cache",
            "{shared_hits} hits, {shared_misses} misses, {shared_errors} errors, "
            "{shared_skipped} skipped, {shared_dropped} values dropped, {shared_stores} stores",
        ),
    ),
    Metric(
        "shared_misses",
        Kind.COUNTER,
        "Shared-cache lookups that found nothing (or only an expired value).",
        lambda p: p.stats.shared_misses,
        "resolver_shared_cache_misses",
    ),
    Metric(
        "shared_errors",
        Kind.COUNTER,
        "Shared-cache calls that failed or timed out (the query went on without it).",
        lambda p: p.stats.shared_errors,
        "resolver_shared_cache_errors",
    ),
    Metric(
        "shared_skipped",
        Kind.COUNTER,
        "Shared-cache calls not made: circuit breaker open, or too many writes pending.",
        lambda p: p.stats.shared_skipped,
        "resolver_shared_cache_skipped",
    ),
    Metric(
        "shared_dropped",
        Kind.COUNTER,
        "Shared-cache values dropped: malformed, another format version, or not the question.",
        lambda p: p.stats.shared_dropped,
        "resolver_shared_cache_dropped_values",
    ),
    Metric(
        "shared_stores",
        Kind.COUNTER,
        "Answers written to the shared cache.",
        lambda p: p.stats.shared_stores,
        "resolver_shared_cache_stores",
    ),
    Metric(
        "shared_dropped_records",
        Kind.COUNTER,
        "Records left out of usable shared-cache values: stray RRSIGs or proof records.",
        lambda p: p.stats.shared_dropped_records,
        "resolver_shared_cache_dropped_records",
    ),
    Metric(
        "shared_skew",
        Kind.COUNTER,
        "Shared-cache values not used: stored more than 300 s in this member's future.",
        lambda p: p.stats.shared_skew,
        "resolver_shared_cache_skew",
    ),
)
METRICS += _TRANSPORT_METRICS
# DNSSEC: aggressive use of the validated cache (RFC 8198, RFC 8020; core/aggressive.py).
METRICS += (
    Metric(
        "aggressive_answers",
        Kind.COUNTER,
        "Questions answered NXDOMAIN/NODATA from validated NSEC ranges or below a validated "
        "NXDOMAIN, without asking upstream (RFC 8198, RFC 8020).",
        lambda p: p.stats.aggressive_answers,
        "resolver_aggressive_answers",
    ),
)
#: Help of the families whose metrics are told apart by a label (the rows' help is per label).
FAMILY_HELP = {
    _ENTRIES: "Entries held in the record and packet caches, per kind",
    _BY_TRANSPORT: "Client queries received, per transport",
    _TRANSPORT_LATENCY: "Time spent on a client query over a stream transport, per transport",
}


@dataclass(frozen=True)
class Sample:
    """One process's values at one moment, keyed by `Metric.key`; JSON-friendly (`to_dict`)."""

    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            key: asdict(value) if isinstance(value, Reading) else value
            for key, value in self.values.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        return cls(
            {
                metric.key: Reading(**data[metric.key])
                if metric.kind is Kind.HISTOGRAM
                else data[metric.key]
                for metric in METRICS
            }
        )


def take_sample(process: Process) -> Sample:
    """A Sample of a process's live objects."""
    return Sample({metric.key: metric.read(process) for metric in METRICS})


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(samples: Sequence[Sample], now: float | None = None) -> dict[str, Any]:
    """The flat object of `resolver stats --json`: the workers' values combined, and rates.

    Rates and percentiles are None (JSON null) when there is nothing to divide or rank yet.
    """
    if not samples:
        raise ValueError("no samples to summarize")
    now = time.time() if now is None else now
    summary: dict[str, Any] = {"workers": len(samples)}
    for metric in METRICS:
        value = metric.combine([sample.values[metric.key] for sample in samples])
        summary.update({metric.key: value} if metric.json is None else metric.json(value, now))
    hits, misses = summary["cache_hits"], summary["cache_misses"]
    summary["hit_rate"] = _rate(hits, hits + misses)
    summary["packet_hit_rate"] = _rate(summary["packet_hits"], summary["queries"])
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


class _Text(string.Formatter):
    """The templates of `Metric.line`: {key} as it is, {key:%} a rate, {key:ms} milliseconds,
    {key:duration} seconds as "1h 2m 3s", {workers:workers} " (N workers)" when N > 1."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "%":
            return "-" if value is None else f"{value * 100:.1f}%"
        if format_spec == "ms":
            return "-" if value is None else f"{value:.3g} ms"
        if format_spec == "duration":
            return _duration(value)
        if format_spec == "workers":
            return f" ({value} workers)" if value > 1 else ""
        return str(super().format_field(value, format_spec))


def format_text(summary: Mapping[str, Any]) -> str:
    """`resolver stats` for people: the same numbers as --json, one line per `Metric.line`."""
    text = _Text()
    rows = [
        (text.format(label, **summary), text.format(value, **summary))
        for label, value in (metric.line for metric in METRICS if metric.line is not None)
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
