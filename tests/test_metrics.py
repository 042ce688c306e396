"""`resolver serve --metrics ADDR:PORT`: scraped over HTTP like Prometheus does, after real queries.

Also the pure parts behind it: the latency histogram (percentiles, sampling weights, the recent
window, adding workers up) and the summary `resolver stats` prints.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest
from daemon_support import Finished, free_port, run_resolver, running_daemon
from prometheus_client.parser import text_string_to_metric_families

from resolver.server.latency import (
    BOUNDS,
    EXPORTED_BOUNDS,
    LatencyHistogram,
    add,
    cumulative,
    percentile,
)
from resolver.server.report import Sample, format_text, summarize
from resolver.testing import TestInternet


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
    assert BOUNDS[index - 1] < percentile(histogram.counts, 0.5) <= 0.001  # type: ignore[operator]
    assert percentile([0] * (len(BOUNDS) + 1), 0.5) is None
    histogram.observe(60.0)  # beyond the last bound: reported as the last bound
    assert percentile(histogram.counts, 1.0) == BOUNDS[-1]


def test_sampled_observations_count_with_their_weight() -> None:
    histogram = LatencyHistogram()
    histogram.observe(0.00002, weight=16)  # one timed fast-path hit stands for 16
    for _ in range(4):
        histogram.observe(0.02)
    assert sum(histogram.counts) == 20
    assert percentile(histogram.counts, 0.5) < 0.0001  # type: ignore[operator]
    assert percentile(histogram.counts, 0.99) > 0.01  # type: ignore[operator]
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


def sample(**counters: int) -> Sample:
    histogram = LatencyHistogram()
    histogram.observe(0.002)
    recent, window = histogram.recent(now=10.0)
    return Sample(
        started=1000.0,
        counters={"queries": 0, **counters},
        gauges={"cache_packets": 1},
        latency=histogram.counts,
        latency_seconds=histogram.total_seconds,
        recent_latency=recent,
        recent_window=window,
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
