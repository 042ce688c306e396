"""Every benchmark's `--quick` run, so that none of them rots.

Each benchmark runs as a subprocess, the way a person runs it, and the test checks that it exited
0 and printed its figures: the headings, a number where each figure goes, the plot file. It never
checks what the figures are: these machines are shared and noisy, and a benchmark reports, it
does not judge.

Benchmarks bind port 53 on loopback addresses of a /16 of their own; here each run gets a random
/16 (`--block 127.X`, X from 160 to 250) so that two test sessions, or a benchmark someone runs by
hand, do not collide. If a run still finds an address taken ("already in use"), it is retried with
another block. dnsperf and Unbound are installed with apt-get when missing (as root), never
skipped: a benchmark that is never run is the one that rots.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"

#: Generous: a quick run takes well under a minute on an idle machine; a loaded one is slower.
RUN_TIMEOUT = 600.0
STOP_GRACE = 30.0
INSTALL_TIMEOUT = 900.0
ATTEMPTS = 3

NUMBER = r"-?[\d,]+(?:\.\d+)?"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        tail = self.stderr[-4000:]
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{tail}"


def find_tool(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


@pytest.fixture(scope="module")
def tools() -> None:
    """dnsperf and unbound, installed with apt-get if missing; a failure says how to get them."""
    if find_tool("dnsperf") and find_tool("unbound"):
        return
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        pytest.fail(
            "the benchmarks need dnsperf and unbound: run `apt-get install -y dnsperf unbound` "
            "as root, or run the tests as root to have them installed"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "dnsperf", "unbound"]
    done = subprocess.run(install, env=env, capture_output=True, timeout=INSTALL_TIMEOUT)
    if done.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, timeout=INSTALL_TIMEOUT)
    if not (find_tool("dnsperf") and find_tool("unbound")):
        pytest.fail(f"could not install dnsperf and unbound:\n{done.stderr.decode()[-2000:]}")


def run_benchmark(script: str, *args: str) -> Run:
    """`python benchmarks/SCRIPT --block 127.X ARGS`, retried on a taken address.

    On a timeout the benchmark gets SIGTERM first, which makes it stop every process it
    started (they run in sessions of their own, so killing it outright would orphan them).
    """
    result = Run(-1, "", "")
    for _ in range(ATTEMPTS):
        block = f"127.{random.randint(160, 250)}"
        command = [sys.executable, str(BENCHMARKS / script), "--block", block, *args]
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                stdout, stderr = process.communicate(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            pytest.fail(f"{script} did not finish within {RUN_TIMEOUT:g} s:\n{stderr[-4000:]}")
        result = Run(process.returncode, stdout, stderr)
        if result.returncode == 0 or "already in use" not in result.stderr:
            return result
    return result


def assert_lines(run: Run, patterns: list[str]) -> None:
    """Every pattern matches some line of the report (multiline regular expressions)."""
    for pattern in patterns:
        assert re.search(pattern, run.stdout, re.MULTILINE), f"no {pattern!r} in:\n{run.explain()}"


def test_resolve_bench_quick(tools: None, tmp_path: Path) -> None:
    report = tmp_path / "resolve.json"
    run = run_benchmark("resolve_bench.py", "--quick", "--json", str(report))
    assert run.returncode == 0, run.explain()
    columns = ["ours", "unbound"]
    if (os.cpu_count() or 1) > 1:  # `--workers` defaults to the number of CPUs
        columns.insert(1, r"ours x\d+")
    assert_lines(run, [r"^resolve_bench \(--quick\) ", r"^\s+" + r"\s+".join(columns)])
    figures = len(columns)
    row = rf"(\s+{NUMBER}){{{figures}}}"
    assert_lines(
        run,
        [
            r"^cold: \d+ distinct names from an empty cache",
            rf"^  wall time \(s\)\s+{NUMBER}",
            rf"^  upstream queries per name\s+{NUMBER}",
            r"^cache hits: .* in flight",
            rf"^  queries per second{row}",
            rf"^  latency p99 \(ms\){row}",
            r"^cache hits at a fixed 5,000 qps",
            rf"^  latency p99\.9 \(ms\){row}",
            r"^cache hits, unloaded",
            r"^low load: [\d.]+ s at a fixed 200 qps, Zipf over [\d,]+ names",
            rf"^  misses \(upstream queries\)\s+{NUMBER}",
            rf"^  server CPU \(s\)\s+{NUMBER}",
            rf"^  server CPU per miss \(us\)\s+{NUMBER}",
            rf"^  CPU per datagram received \(us\)\s+{NUMBER}",
            rf"^  floor, trio echo \(echo\.py\) on the same stream: {NUMBER} us CPU per datagram",
            rf"^    per miss \(x datagrams received per miss\): ours {NUMBER} us",
            rf"^  floor, blocking echo \(echo\.py --blocking\) on the same stream: {NUMBER} us",
            rf"^  resident memory at end \(MB\){row}",
            r"^targets, each met or missed in this run",
            r"^  CPU per cold name <= 250 us: .*: (met|MISSED)",
            r"^  CPU per miss at 200 qps <= 250 us: .*floor .*trio echo .*blocking echo .*: "
            r"(met|MISSED)",
            r"^  cold wall time <= 2 x Unbound's: .*: (met|MISSED)",
            r"^  cold upstream queries per name <= Unbound's: .*: (met|MISSED)",
            r"^  cache-hit throughput, 1 worker >= 0\.75 x Unbound: .*: (met|MISSED)",
            r"^  p99 < 0\.5 ms at 5,000 qps of hits, ours: .*: (met|MISSED)",
        ],
    )
    assert report.stat().st_size > 0


def test_resolve_bench_signed_quick(tools: None, tmp_path: Path) -> None:
    """The cost of validation: ours and Unbound, validation on and off, on a signed zone."""
    report = tmp_path / "signed.json"
    run = run_benchmark("resolve_bench.py", "--signed", "--quick", "--json", str(report))
    assert run.returncode == 0, run.explain()
    columns = ["ours", "ours no-val", "unbound", "unbound no-val"]
    row = rf"(\s+{NUMBER}){{4}}"
    assert_lines(
        run,
        [
            r"^\s+" + r"\s+".join(columns),
            r"^cold: \d+ distinct names from an empty cache",
            r"^\s+to \. / sec\. / bench\.sec\.",
            rf"^  server CPU per name \(us\){row}",
            rf"^  queries per second{row}",
            r"^  CPU per cold name <= 250 us: .*: (met|MISSED)",
        ],
    )
    assert "low load" not in run.stdout
    data = json.loads(report.read_text())
    assert [result["warm_upstream"] for result in data["results"]] == [0, 0, 0, 0]


def test_hitrate_random_subdomains_quick(tmp_path: Path) -> None:
    plot = tmp_path / "random.png"
    run = run_benchmark(
        "hitrate.py", "--quick", "--random-subdomains", str(plot), "--random-subdomains-only"
    )
    assert run.returncode == 0, run.explain()
    percent = rf"{NUMBER}%"
    assert_lines(
        run,
        [
            r"^random subdomains in a signed zone: ",
            rf"^\s+25%\s+off\s+{percent}\s+{percent}\s+[\d,]+\s+0$",
            rf"^\s+25%\s+on\s+{percent}\s+{percent}\s+[\d,]+\s+[\d,]+$",
            rf"^plot: {re.escape(str(plot))}$",
        ],
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hitrate_quick(tmp_path: Path) -> None:
    plot = tmp_path / "hitrate.png"
    run = run_benchmark("hitrate.py", "--quick", "--prefetch", "--plot", str(plot))
    assert run.returncode == 0, run.explain()
    percent = rf"{NUMBER}%"
    assert_lines(
        run,
        [
            r"^hitrate \(--quick\) ",
            r"^trace: [\d,]+ queries over",
            r"^working set: [\d,]+ record-cache entries",
            rf"^infinite-cache bound: {percent}",
            rf"^\s+[\d,]+\s+\d+%\s+{percent}\s+{NUMBER} pts\s+{percent}\s+{NUMBER} pts",
            rf"^\s+unbounded\s+{percent}",
            r"^target \(server, .*: (met|missed)",
            rf"^plot: {re.escape(str(plot))}$",
            r"^live check: ",
            rf"^\s+[\d,]+\s+{percent}\s+{percent}\s+[+-]{NUMBER} pts",
            r"^  prefetch \(cache.prefetch = true\)",
            rf"^\s+[\d,]+\s+{percent}\s+{percent}$",
            r"^  simulation and live (agree|DISAGREE)",
        ],
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hitrate_speed_quick() -> None:
    run = run_benchmark("hitrate_speed.py", "--quick")
    assert run.returncode == 0, run.explain()
    assert_lines(
        run,
        [
            r"^hitrate_speed \(--quick\) ",
            r"^trace: [\d,]+ client queries over 24 h",
            rf"^\s+read and pair the capture\s+{NUMBER}\s+{NUMBER}$",
            rf"^\s+infinite-cache bound\s+{NUMBER}\s+{NUMBER}\s+200,000\s+(met|MISSED)$",
            rf"^\s+cache model, [\d,]+ entries \({NUMBER}%\)\s+{NUMBER}\s+{NUMBER}\s+50,000",
            rf"^\s+full Engine, first [\d,]+ queries\s+{NUMBER}\s+{NUMBER}\s+50,000",
        ],
    )


def test_fleet_quick(tmp_path: Path) -> None:
    """The live fleet: redis-server and three resolver processes (installed as the shared-cache
    tests install redis-server). Beyond the report's shape, two facts that are not noise: a
    name the shared cache holds costs the member answering it no upstream query, and the
    shared cache never loses hits."""
    from tests.daemon_support import ensure_command

    ensure_command("redis-server", "redis-server")
    plot, report = tmp_path / "fleet.png", tmp_path / "fleet.json"
    run = run_benchmark("fleet.py", "--quick", "--plot", str(plot), "--json", str(report))
    assert run.returncode == 0, run.explain()
    percent = rf"{NUMBER}%"
    assert_lines(
        run,
        [
            r"^fleet \(--quick, live\)",
            r"^live trace: [\d,]+ queries over .* 3 resolver processes round-robin",
            rf"^separate caches, member 0 restarted cold +hit rate {percent}, upstream/query "
            rf"{NUMBER}, restarted member's first minute {percent}",
            rf"^shared cache, member 0 restarted cold +hit rate {percent}",
            rf"^separate caches, member 0 restarted with its persistent file +hit rate {percent}",
            rf"^latency, shared +\(\d+ names\): p50 {NUMBER} ms, p99 {NUMBER} ms",
            rf"^latency, local +\(\d+ names\): p50 {NUMBER} ms, p99 {NUMBER} ms",
        ],
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["shared_hit_upstream"] == 0
    runs = data["runs"]
    assert runs["shared"]["hit_rate"] > runs["separate"]["hit_rate"]


def test_memory_quick(tools: None) -> None:
    run = run_benchmark("memory.py", "--quick")
    assert run.returncode == 0, run.explain()
    kinds = ["A", "AAAA", "CNAME", "NS", "NXDOMAIN", "mix", "mix, evicting", "packet"]
    assert_lines(
        run,
        [
            r"^memory \(--quick\) ",
            r"bytes/entry \(tracemalloc\)\s+bytes/entry \(RSS delta\)",
            *(rf"^  {kind}\s+{NUMBER}\s+{NUMBER}$" for kind in kinds),
            r"names sent\s+cache full\?\s+ours RSS \(MiB\)",
            r"ours RSS \(MiB\).*unbound RSS \(MiB\)",
            rf"^\s+[\d,]+\s+full\s+{NUMBER}\s+[\d,]+ / \d+",
            r"^ours: [\d.]+ MiB resident with [\d,]+ names cached",
            r"^unbound: [\d.]+ MiB resident with [\d,]+ names cached",
            r"^  ours, cache full and evicting: peak [\d.]+ MiB",
            r"^  resident memory after 10,000 cached names <= 2 x Unbound's: .*: (met|MISSED)",
        ],
    )


def test_flood_quick(tools: None, tmp_path: Path) -> None:
    report = tmp_path / "flood.json"
    run = run_benchmark("flood.py", "--quick", "--json", str(report))
    assert run.returncode == 0, run.explain()
    row = rf"(\s+{NUMBER}){{2}}"
    assert_lines(
        run,
        [
            r"^flood \(--quick\) ",
            r"^\s+ours\s+unbound\s+ours/unbound",
            r"^flood: unique names under flood\.test\. \(each NXDOMAIN\), offered at a fixed",
            rf"^  queries answered per second{row}",
            rf"^  NXDOMAIN{row}",
            rf"^  SERVFAIL{row}",
            rf"^  lost \(no answer in [\d.]+ s\){row}",
            rf"^  latency p50 \(ms\){row}",
            rf"^  latency p99 \(ms\){row}",
            rf"^  resident memory before \(MB\){row}",
            rf"^  resident memory after \(MB\){row}",
            rf"^  resident memory growth \(MB\){row}",
            rf"^  server CPU \(s\){row}",
            r"^  flood absorbed at >= 5,000 qps in one process, ours: .*: (met|MISSED)",
        ],
    )
    assert report.stat().st_size > 0


def test_profile_cold_quick() -> None:
    run = run_benchmark("profile_cold.py", "--quick")
    assert run.returncode == 0, run.explain()
    assert_lines(
        run,
        [
            r"^profile_cold \(--quick\) ",
            r"^resolver CPU per cold name: " + NUMBER + " us",
            r"^\s+exchange: parse the reply\s+" + NUMBER,
        ],
    )


def test_encrypted_quick(tools: None, tmp_path: Path) -> None:
    report = tmp_path / "encrypted.json"
    run = run_benchmark("encrypted.py", "--quick", "--json", str(report))
    assert run.returncode == 0, run.explain()
    row = rf"(\s+{NUMBER}){{2}}"
    signed = r"\s+[+-][\d.]+"
    assert_lines(
        run,
        [
            r"^encrypted \(--quick\) ",
            r"^\s+ours\s+unbound\s+ours/unbound",
            r"^cache hits over DNS over TLS: dnsperf -m dot",
            r"^cache hits over DNS over HTTPS \(HTTP/2, POST\): dnsperf -m doh",
            rf"^  queries per second{row}",
            rf"^  latency p99 \(ms\){row}",
            r"^cold names, one at a time: \d+ forwarded over each transport",
            rf"^  forwarded over UDP, p50 \(ms\){row}",
            rf"^  forwarded over DoT, p99 \(ms\){row}",
            rf"^  CPU per query \(us\){row}",
            rf"^  CPU per miss over DoT \(us\){row}",
            rf"^  DoT minus UDP, p50 \(ms\){signed}{signed}",
            r"^  cold names not answered\s+0\s+0",
        ],
    )
    assert report.stat().st_size > 0
    results = json.loads(report.read_text())["results"]
    assert set(results[0]["cpu_us_per_query"]) == {"dot", "doh", "udp", "tls"}
