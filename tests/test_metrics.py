"""`resolver serve --metrics ADDR:PORT`: scraped over HTTP like Prometheus does, after real queries.

Also the pure parts behind it: the latency histogram (percentiles, sampling weights, the recent
window, adding workers up) and the summary `resolver stats` prints.
"""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest
from prometheus_client.parser import text_string_to_metric_families

from resolver.engine.latency import (
    BOUNDS,
    EXPORTED_BOUNDS,
    LatencyHistogram,
    Reading,
    add,
    cumulative,
    percentile,
)
from resolver.engine.stats import Stats
from resolver.server.metrics import families
from resolver.server.report import (
    METRICS,
    Kind,
    Process,
    Sample,
    format_text,
    summarize,
    take_sample,
)
from resolver.testing import TestInternet
from tests.daemon_support import Finished, free_port, run_resolver, running_daemon


@pytest.fixture
def hints(internet: TestInternet, tmp_path: Path) -> Iterator[Path]:
    with internet.in_thread():
        yield internet.write_hints(tmp_path / "test.hints")


def ask(port: int, name: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_are_scraped_and_move_with_queries(
    hints: Path, internet: TestInternet, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    config = tmp_path / "resolver.toml"
    config.write_text(f'metrics = "127.0.0.1:{metrics_port}"\n', encoding="utf-8")  # the key
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--config", str(config)]):
        before = scrape(metrics_port)
        assert value(before, "resolver_queries_total", worker="0") == 0
        assert value(before, "resolver_query_duration_seconds_count", worker="0") == 0

        assert ask(port, "alias.example.test.").answer  # miss
        assert ask(port, "alias.example.test.").answer  # packet-cache hit
        after = scrape(metrics_port)

    assert value(after, "resolver_queries_total", worker="0") == 2
    assert value(after, "resolver_packet_cache_hits_total", worker="0") == 1
    assert value(after, "resolver_cache_hits_total", worker="0") == 1
    assert value(after, "resolver_cache_misses_total", worker="0") == 1
    assert value(after, "resolver_upstream_queries_total", worker="0") == internet.total_queries()
    assert value(after, "resolver_servfails_total", worker="0") == 0
    assert value(after, "resolver_in_flight", worker="0") == 0
    assert value(after, "resolver_cache_entries", worker="0", kind="packets") == 1
    assert value(after, "resolver_cache_entries", worker="0", kind="rrsets") >= 2
    assert value(after, "resolver_cache_entries", worker="0", kind="delegations") > 0
    assert value(after, "resolver_query_duration_seconds_count", worker="0") >= 1
    assert value(after, "resolver_query_duration_seconds_sum", worker="0") > 0
    assert value(after, "resolver_query_duration_seconds_bucket", worker="0", le="+Inf") >= 1
    assert value(after, "resolver_start_time_seconds", worker="0") > 0


def test_workers_each_have_their_series(hints: Path) -> None:
    port, metrics_port = free_port(), free_port()
    arguments = ["--workers", "2", "--metrics", f"127.0.0.1:{metrics_port}"]
    with running_daemon(hints, [f"127.0.0.1:{port}"], arguments):
        for _ in range(20):
            assert ask(port, "www.example.test.").answer
        samples = scrape(metrics_port)
    per_worker = [value(samples, "resolver_queries_total", worker=w) for w in ("0", "1")]
    assert sum(per_worker) == 20


def one_error_line(result: Finished, *needles: str) -> None:
    assert result.returncode != 0, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("resolver: error: "), result.describe()
    for needle in needles:
        assert needle in lines[0], result.describe()


def test_metrics_errors_are_one_line(hints: Path) -> None:
    serve = ["serve", "--root-hints", str(hints), "--listen", f"127.0.0.1:{free_port()}"]
    one_error_line(run_resolver(*serve, "--metrics", "127.0.0.1"), "has no port")
    one_error_line(run_resolver(*serve, "--metrics", "127.0.0.1:0"), "not a port number")
    taken = free_port()
    with running_daemon(hints, [f"127.0.0.1:{free_port()}"], ["--metrics", f"127.0.0.1:{taken}"]):
        one_error_line(
            run_resolver(*serve, "--metrics", f"127.0.0.1:{taken}"), "cannot serve metrics on"
        )


# --- the pure parts --------------------------------------------------------------------------


def test_percentiles_interpolate_inside_the_bucket() -> None:
    histogram = LatencyHistogram()
    for _ in range(100):
        histogram.observe(0.001)  # exactly a bucket bound: counted in the bucket ending there
    index = BOUNDS.index(0.001)
    assert histogram.counts[index] == 100
    assert BOUNDS[index - 1] < percentile(histogram.counts, 0.5) <= 0.001  # type: ignore[operator]  # a figure here: the counts hold samples
    assert percentile([0] * (len(BOUNDS) + 1), 0.5) is None
    histogram.observe(60.0)  # beyond the last bound: reported as the last bound
    assert percentile(histogram.counts, 1.0) == BOUNDS[-1]


def test_sampled_observations_count_with_their_weight() -> None:
    histogram = LatencyHistogram()
    histogram.observe(0.00002, weight=16)  # one timed fast-path hit stands for 16
    for _ in range(4):
        histogram.observe(0.02)
    assert sum(histogram.counts) == 20
    assert percentile(histogram.counts, 0.5) < 0.0001  # type: ignore[operator]  # a figure here: the counts hold samples
    assert percentile(histogram.counts, 0.99) > 0.01  # type: ignore[operator]  # a figure here: the counts hold samples
    assert histogram.total_seconds == pytest.approx(16 * 0.00002 + 4 * 0.02)


def test_the_recent_window_forgets_old_latencies() -> None:
    histogram = LatencyHistogram(now=0.0)
    histogram.observe(5.0)  # a slow query at the start
    for minute in range(1, 7):
        histogram.rotate(now=60.0 * minute)
    histogram.observe(0.001)
    recent, window = histogram.recent(now=400.0)
    assert sum(recent) == 1  # only the fast one: the slow one is older than the window
    assert window == 400.0 - 60.0
    assert sum(histogram.counts) == 2  # Prometheus still gets everything


def test_histograms_add_up_and_export_cumulatively() -> None:
    first, second = LatencyHistogram(), LatencyHistogram()
    first.observe(0.0003)
    second.observe(0.0003)
    second.observe(2.0)
    total = add([first.counts, second.counts])
    assert sum(total) == 3
    exported = cumulative(total)
    assert len(exported) == len(EXPORTED_BOUNDS)
    assert exported[EXPORTED_BOUNDS.index(0.0005)] == 2
    assert exported[EXPORTED_BOUNDS.index(2.5)] == 3
    assert exported == sorted(exported)


def sample(**values: float) -> Sample:
    histogram = LatencyHistogram()
    histogram.observe(0.002)
    zero = {metric.key: 0 for metric in METRICS if metric.kind is not Kind.HISTOGRAM}
    return Sample(
        {
            **zero,
            "started": 1000.0,
            "cache_packets": 1,
            **values,
            "latency": Reading.of(histogram, now=10.0),
            **{
                f"latency_{kind}": Reading.of(LatencyHistogram(), now=10.0)
                for kind in ("tcp", "tls", "https")
            },
        }
    )


def test_summaries_of_workers_add_up() -> None:
    one = sample(queries=10, packet_hits=6, cache_hits=7, cache_misses=3)
    two = sample(queries=30, packet_hits=20, cache_hits=25, cache_misses=5)
    summary = summarize([Sample.from_dict(one.to_dict()), two], now=1100.0)
    assert summary["workers"] == 2
    assert summary["uptime_seconds"] == 100.0
    assert summary["queries"] == 40
    assert summary["hit_rate"] == pytest.approx(32 / 40)
    assert summary["packet_hit_rate"] == pytest.approx(26 / 40)
    assert summary["cache_packets"] == 2
    assert summary["latency_samples"] == 2
    assert 1.6 < summary["latency_p50_ms"] <= 2.0
    text = format_text(summary)
    assert "(2 workers)" in text
    assert "80.0% of hits+misses" in text


# --- the table of metrics: every view made from it, nothing outside it ----------------------


def process(**sources: Any) -> Process:
    """A quiet process, with `sources` changed."""
    quiet = Process(
        started=1000.0,
        stats=Stats(),
        upstream_sent=0,
        in_flight=0,
        census={"rrsets": 0, "delegations": 0, "negative": 0, "stale": 0},
        packets=0,
        latency=LatencyHistogram(),
        now=0.0,
    )
    return dataclasses.replace(quiet, **sources)


def test_every_stats_counter_has_a_row_and_every_row_a_source() -> None:
    """A counter added to `Stats` without a row in METRICS fails here, and so does a row that
    reads nothing that moves (one that reads a source that does not exist fails mypy)."""
    base = take_sample(process()).values

    def moved_by(changed: Process) -> set[str]:
        return {key for key, value in take_sample(changed).values.items() if value != base[key]}

    moved: set[str] = set()
    for field in Stats.__dataclass_fields__:
        by_field = moved_by(process(stats=Stats(**{field: 1})))
        assert by_field, f"Stats.{field} is counted, but no row of METRICS reports it"
        moved |= by_field
    histogram = LatencyHistogram()
    histogram.observe(0.001)
    quiet_census = process().census
    for changed in (
        process(upstream_sent=1),
        process(in_flight=1),
        process(packets=1),
        process(started=2000.0),
        process(latency=histogram),
        *(process(transport_latency={kind: histogram}) for kind in ("tcp", "tls", "https")),
        *(process(census={**quiet_census, kind: 1}) for kind in quiet_census),
    ):
        moved |= moved_by(changed)
    assert moved == {metric.key for metric in METRICS}, "a row of METRICS reads nothing"
    assert len({metric.key for metric in METRICS}) == len(METRICS)


def summary_of_one() -> dict[str, object]:
    return summarize([Sample.from_dict(take_sample(process()).to_dict())], now=1009.0)


def test_every_metric_is_in_the_json_the_text_and_the_exposition() -> None:
    summary = summary_of_one()
    derived = {"started": "uptime_seconds", "latency": "latency_p99_ms"}
    derived |= {f"latency_{kind}": f"latency_{kind}_p99_ms" for kind in ("tcp", "tls", "https")}
    for metric in METRICS:
        assert derived.get(metric.key, metric.key) in summary, metric.key
    assert all(isinstance(value, int | float) or value is None for value in summary.values())
    format_text(summary)  # every template names keys that exist

    exposed = {family.name: family.type for family in families([("0", sample())])}
    assert exposed == {metric.series: str(metric.kind) for metric in METRICS}
    # the /metrics contract: names and types that dashboards use stay as they are
    assert (
        exposed.items()
        >= {
            "resolver_queries": "counter",
            "resolver_packet_cache_hits": "counter",
            "resolver_cache_hits": "counter",
            "resolver_cache_misses": "counter",
            "resolver_resolutions": "counter",
            "resolver_resolutions_from_cache": "counter",
            "resolver_upstream_queries": "counter",
            "resolver_servfails": "counter",
            "resolver_prefetches": "counter",
            "resolver_in_flight": "gauge",
            "resolver_cache_entries": "gauge",
            "resolver_start_time_seconds": "gauge",
            "resolver_query_duration_seconds": "histogram",
        }.items()
    )


def test_the_text_keeps_its_layout() -> None:
    summary = summarize([sample(queries=49, packet_hits=43, cache_hits=43, cache_misses=6)], 1009.0)
    assert format_text(summary).splitlines() == [
        "uptime              9s",
        "queries             49",
        "cache hits          43 (87.8% of hits+misses; 43 from the packet cache, "
        "0 from cached records)",
        "cache misses        6",
        "packet cache        43 hits (87.8% of queries)",
        "upstream queries    0",
        "SERVFAIL            0",
        "dropped             0",
        "prefetches          0",
        "in flight           0",
        "latency (last 10s)  p50 1.8 ms, p90 1.96 ms, p99 2 ms over 1 queries",
        "cache entries       0 answers, 0 delegation records, 0 negative, 0 stale; 1 packets",
        "shared cache        0 hits, 0 misses, 0 errors, 0 skipped, 0 values dropped, 0 stores",
        "by transport        udp 0, tcp 0, tls 0, https 0",
        "p99 by transport    tcp -, tls -, https -",
        "forwarded over TLS  0 queries, 0 failed to connect",
    ]


def test_docs_name_every_metric() -> None:
    """docs/operations.md lists every --json key and every /metrics family."""
    docs = (Path(__file__).parent.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    names = set(summary_of_one()) | {metric.series for metric in METRICS}
    missing = {name for name in names if f"`{name}" not in docs}
    assert not missing, f"docs/operations.md does not name {sorted(missing)}"
