"""Prometheus metrics: `--metrics ADDR:PORT` serves /metrics, made from `report.METRICS`.

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
)
from prometheus_client.core import Metric as Family
from prometheus_client.registry import Collector

from resolver.engine.latency import EXPORTED_BOUNDS, Reading, cumulative
from resolver.server.errors import StartupError
from resolver.server.report import FAMILY_HELP, METRICS, Kind, Metric, Sample

log = logging.getLogger(__name__)

_Family = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
_FAMILIES: dict[Kind, type[_Family]] = {
    Kind.COUNTER: CounterMetricFamily,
    Kind.GAUGE: GaugeMetricFamily,
    Kind.HISTOGRAM: HistogramMetricFamily,
}

#: Returns (worker label, sample) for every process that answered.
Fetch = Callable[[], Sequence[tuple[str, Sample]]]


def _buckets(reading: Reading) -> list[tuple[str, float]]:
    """Prometheus buckets: cumulative counts at the exported bounds, then +Inf."""
    counts = cumulative(reading.counts)
    buckets = [(repr(bound), count) for bound, count in zip(EXPORTED_BOUNDS, counts, strict=True)]
    return [*buckets, ("+Inf", sum(reading.counts))]


def _help(metric: Metric) -> str:
    """A family's help; one told apart by a label names each value with its row's help."""
    if metric.series_label is None:
        return metric.help
    kinds = ", ".join(
        f"{row.series_label[1]} ({row.help})"
        for row in METRICS
        if row.series == metric.series and row.series_label is not None
    )
    return f"{FAMILY_HELP[metric.series]}: {kinds}."


def families(samples: Sequence[tuple[str, Sample]]) -> list[Family]:
    """The exposition of `report.METRICS`: a family per series, a series per worker (and label)."""
    made: dict[str, _Family] = {}
    for metric in METRICS:
        extra = metric.series_label
        family = made.get(metric.series)
        if family is None:
            labels = ["worker", *([extra[0]] if extra else [])]
            family = _FAMILIES[metric.kind](metric.series, _help(metric), labels=labels)
            made[metric.series] = family
        for worker, sample in samples:
            values = [worker, *([extra[1]] if extra else [])]
            value = sample.values[metric.key]
            if isinstance(family, HistogramMetricFamily):
                family.add_metric(values, _buckets(value), value.seconds)
            else:
                family.add_metric(values, value)
    return list(made.values())


class ResolverCollector(Collector):
    """Turns samples into metric families at each scrape (nothing is kept between scrapes)."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch

    def collect(self) -> Iterator[Family]:
        try:
            samples = self._fetch()
        except Exception as error:  # a scrape must fail softly, not kill the server thread
            log.warning("metrics: could not take a sample: %s", error)
            return
        yield from families(samples)


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
