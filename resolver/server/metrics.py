"""Prometheus metrics: `--metrics ADDR:PORT` serves /metrics with the counters of `resolver stats`.

prometheus_client's own HTTP server runs in a thread of its own. It is a complete HTTP/1.1
server (keep-alive, HEAD, gzip when asked, the OpenMetrics format when asked) that nobody here
has to write or harden, and it keeps scrapes off the DNS event loop except for one short call
that takes a sample. That call runs in the trio thread (`trio.from_thread.run_sync`), because the
cache and counters belong to that thread and must not be read while it changes them; under
`--workers N` the supervisor asks each worker over its control socket instead.

Each series has a `worker` label ("0" for a single process): a worker restarted by its supervisor
starts again from zero, and Prometheus only handles such a counter reset correctly per series,
not inside a sum. `sum without (worker) (rate(...))` gives the whole resolver.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from resolver.server.errors import StartupError
from resolver.server.latency import EXPORTED_BOUNDS, cumulative
from resolver.server.report import Sample

log = logging.getLogger(__name__)

#: (stats name, metric name without `_total`, help text) for every counter.
_COUNTERS = (
    ("queries", "resolver_queries", "Client queries received (dropped QR=1 packets excluded)."),
    ("packet_hits", "resolver_packet_cache_hits", "Client queries answered by the packet cache."),
    (
        "cache_hits",
        "resolver_cache_hits",
        "Client queries answered without any upstream query (packet cache or cached records).",
    ),
    (
        "cache_misses",
        "resolver_cache_misses",
        "Client queries whose answer waited for upstream queries.",
    ),
    ("resolutions", "resolver_resolutions", "Resolutions run (client questions and prefetches)."),
    (
        "resolutions_from_cache",
        "resolver_resolutions_from_cache",
        "Resolutions answered from cached records alone.",
    ),
    ("upstream_queries", "resolver_upstream_queries", "Queries sent to authoritative servers."),
    ("servfails", "resolver_servfails", "Resolutions that ended in SERVFAIL."),
    ("prefetches", "resolver_prefetches", "Answers refreshed in the background (prefetch)."),
)
_CACHE_KINDS = (
    ("cache_rrsets", "rrsets"),
    ("cache_delegations", "delegations"),
    ("cache_negative", "negative"),
    ("cache_stale", "stale"),
    ("cache_packets", "packets"),
)

#: Returns (worker label, sample) for every process that answered.
Fetch = Callable[[], Sequence[tuple[str, Sample]]]


class ResolverCollector(Collector):
    """Turns samples into metric families at each scrape (nothing is kept between scrapes)."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch

    def collect(self) -> Iterator[Metric]:
        try:
            samples = self._fetch()
        except Exception as error:  # a scrape must fail softly, not kill the server thread
            log.warning("metrics: could not take a sample: %s", error)
            return
        counters = {
            key: CounterMetricFamily(name, text, labels=["worker"]) for key, name, text in _COUNTERS
        }
        in_flight = GaugeMetricFamily(
            "resolver_in_flight", "Resolutions in progress.", labels=["worker"]
        )
        entries = GaugeMetricFamily(
            "resolver_cache_entries",
            "Entries held per kind: rrsets (answers), delegations (NS sets and glue from "
            "referrals), negative, stale (expired, kept for serve-stale), packets (packet cache).",
            labels=["worker", "kind"],
        )
        started = GaugeMetricFamily(
            "resolver_start_time_seconds",
            "When the process started (Unix time).",
            labels=["worker"],
        )
        latency = HistogramMetricFamily(
            "resolver_query_duration_seconds",
            "Time spent on a client query, from reading it to having the reply ready.",
            labels=["worker"],
        )
        for worker, sample in samples:
            for key, family in counters.items():
                family.add_metric([worker], sample.counters.get(key, 0))
            in_flight.add_metric([worker], sample.gauges.get("in_flight", 0))
            for key, kind in _CACHE_KINDS:
                entries.add_metric([worker, kind], sample.gauges.get(key, 0))
            started.add_metric([worker], sample.started)
            counts = cumulative(sample.latency)
            bounds = zip(EXPORTED_BOUNDS, counts, strict=True)
            buckets = [(repr(bound), count) for bound, count in bounds]
            buckets.append(("+Inf", sum(sample.latency)))
            latency.add_metric([worker], buckets, sample.latency_seconds)
        yield from counters.values()
        yield from (in_flight, entries, started, latency)


@contextlib.contextmanager
def metrics_server(endpoint: tuple[str, int], fetch: Fetch) -> Iterator[None]:
    """Serve /metrics on `endpoint` in a background thread for the duration of the block."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ResolverCollector(fetch))
    address, port = endpoint
    try:
        server, thread = start_http_server(port, address, registry=registry)
    except OSError as error:
        where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        raise StartupError(f"cannot serve metrics on {where}: {error.strerror or error}") from None
    log.info("metrics on http://%s:%d/metrics", f"[{address}]" if ":" in address else address, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5.0)
