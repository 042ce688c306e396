"""Speed of `resolver hitrate`: trace queries per second of CPU, stage by stage.

    python benchmarks/hitrate_speed.py [--quick] [--json FILE] [--keep DIR]

A day of synthetic traffic (the Zipf trace of `benchmarks/hitrate.py`: names with TTLs from
its mix, a share that do not exist, Poisson arrivals) is written as a pcap capture of UDP
queries and responses (`resolver.testing.captures`), then put through what `resolver hitrate`
does, each stage timed in CPU seconds (`time.process_time`):

1. reading and pairing the capture (dpkt and `resolver.hitrate.pcap`);
2. the infinite-cache bound (target: 200,000 queries/s);
3. the cache model at three sizes (target: 50,000 queries/s per size);
4. the full `Engine` (`resolver.hitrate.engine_replay`) on the first queries of the trace: why
   the replay uses the model (docs/hitrate.md).

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import benchlib
import dns.message
import dns.rcode
import dns.rrset
from hitrate import TraceSpec, make_trace, make_universe

from resolver.config import CacheConfig
from resolver.hitrate.engine_replay import replay_engine
from resolver.hitrate.inputs import read_files
from resolver.hitrate.simulate import Policy, bound, hours, replay
from resolver.hitrate.trace import Trace
from resolver.testing.captures import Exchange, write_capture

TARGET_BOUND = 200_000
TARGET_SIZE = 50_000
DAY = 24 * 3600.0


@dataclass(frozen=True)
class Settings:
    trace: TraceSpec
    engine_queries: int


QUICK = Settings(
    TraceSpec(universe=10_000, queries=60_000, period=DAY, zipf=0.9, nx_share=0.05, seed=7),
    engine_queries=2_000,
)
FULL = Settings(
    TraceSpec(universe=20_000, queries=200_000, period=DAY, zipf=0.9, nx_share=0.05, seed=7),
    engine_queries=5_000,
)


def exchanges(spec: TraceSpec) -> list[Exchange]:
    """The trace as client exchanges: one query and response template per name, the ID patched."""
    universe, trace = make_universe(spec), make_trace(spec)
    rng = random.Random(spec.seed)
    templates: list[tuple[bytes, bytes]] = []
    for name, ttl, exists in zip(universe.names, universe.ttl, universe.exists, strict=True):
        query = dns.message.make_query(name, "A")
        reply = dns.message.make_response(query)
        if exists:
            reply.answer.append(dns.rrset.from_text(name, ttl, "IN", "A", "192.0.2.1"))
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            soa = f"ns1.hr.test. host.hr.test. 1 7200 3600 1209600 {universe.negative_ttl}"
            reply.authority.append(dns.rrset.from_text("hr.test.", ttl, "IN", "SOA", soa))
        templates.append((query.to_wire()[2:], reply.to_wire()[2:]))
    start = 1_700_000_000.0
    out = []
    for index, (when, number) in enumerate(zip(trace.times, trace.names, strict=True)):
        ident = (index & 0xFFFF).to_bytes(2, "big")
        asked, answered = templates[number]
        client = f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        port = 1024 + index % 60000
        out.append(Exchange(start + when, client, port, ident + asked, ident + answered))
    return out


def rate(queries: int, seconds: float) -> str:
    return f"{queries / seconds:,.0f}" if seconds > 0 else "-"


def verdict(queries: int, seconds: float, target: int) -> str:
    if seconds <= 0:
        return ""
    return "met" if queries / seconds >= target else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    benchlib.add_common_options(parser, "127.157")
    parser.add_argument("--keep", type=Path, help="keep the capture in this directory")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    report = benchlib.Report("hitrate_speed", args.quick)
    spec = settings.trace
    with tempfile.TemporaryDirectory(prefix="hitrate-speed-") as temporary:
        directory = args.keep or Path(temporary)
        directory.mkdir(parents=True, exist_ok=True)
        capture = directory / "day.pcap"
        benchlib.progress(f"writing {spec.queries:,} exchanges to {capture}")
        write_capture(capture, exchanges(spec))
        size_mib = capture.stat().st_size / (1 << 20)
        benchlib.progress("reading")
        began = time.process_time()
        trace = read_files([capture])
        reading = time.process_time() - began
    policy = Policy.of(CacheConfig())
    hour_of = hours(trace)
    began = time.process_time()
    limit = bound(trace, policy, hour_of)
    bound_seconds = time.process_time() - began
    distinct = trace.distinct_questions()
    rows = [
        ["read and pair the capture", f"{reading:.2f}", rate(len(trace), reading), "", ""],
        [
            "infinite-cache bound",
            f"{bound_seconds:.2f}",
            rate(len(trace), bound_seconds),
            f"{TARGET_BOUND:,}",
            verdict(len(trace), bound_seconds, TARGET_BOUND),
        ],
    ]
    data: dict[str, object] = {
        "queries": len(trace),
        "capture_mib": size_mib,
        "read_seconds": reading,
        "bound_seconds": bound_seconds,
        "bound": limit.hit_rate,
    }
    sizes = {}
    for share in (0.01, 0.1, 1.0):
        size = max(1, round(share * distinct))
        benchlib.progress(f"model, {size:,} entries")
        began = time.process_time()
        result = replay(trace, size, policy, hour_of)
        seconds = time.process_time() - began
        sizes[size] = (result.hit_rate, seconds)
        rows.append(
            [
                f"cache model, {size:,} entries ({result.hit_rate:.2%})",
                f"{seconds:.2f}",
                rate(len(trace), seconds),
                f"{TARGET_SIZE:,}",
                verdict(len(trace), seconds, TARGET_SIZE),
            ]
        )
    data["sizes"] = {str(size): {"hit_rate": r, "seconds": s} for size, (r, s) in sizes.items()}
    head = Trace.build(trace.queries[: settings.engine_queries])
    benchlib.progress(f"engine, first {len(head):,} queries")
    began = time.process_time()
    engine = replay_engine(head, head.distinct_questions(), policy)
    engine_seconds = time.process_time() - began
    rows.append(
        [
            f"full Engine, first {len(head):,} queries",
            f"{engine_seconds:.2f}",
            rate(len(head), engine_seconds),
            f"{TARGET_SIZE:,}",
            verdict(len(head), engine_seconds, TARGET_SIZE),
        ]
    )
    model = replay(head, head.distinct_questions(), policy)
    data["engine"] = {"queries": len(head), "seconds": engine_seconds}
    report.add(
        f"trace: {len(trace):,} client queries over 24 h ({spec.universe:,} names, Zipf "
        f"s={spec.zipf:g}, {spec.nx_share:.0%} NXDOMAIN), a {size_mib:,.1f} MiB pcap; "
        f"{distinct:,} distinct questions; bound {limit.hit_rate:.2%}"
    )
    report.table(["stage", "CPU s", "queries/s", "target", ""], rows, left=1)
    report.add(
        f"  engine and model on the engine's queries: {engine.hit_rate:.2%} and "
        f"{model.hit_rate:.2%} hit rate"
    )
    report.data.update(data)
    report.emit(json_path=args.json)
    return 0


if __name__ == "__main__":
    benchlib.run_main("hitrate_speed", lambda: main(sys.argv[1:]))
