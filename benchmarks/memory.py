"""Memory: bytes per cached entry, and the resolver's resident memory with a full cache.

    python benchmarks/memory.py [--quick] [--cache-size N] [--no-unbound] [--no-live]

1. IN-PROCESS: N entries of each kind put through `RecordCache` (and rendered answers through
   `PacketCache`) with realistic RRsets: A and AAAA sets of one or two addresses, CNAMEs, NS
   sets of two to four servers, NXDOMAIN with its SOA, and a mix of them in the proportions a
   resolver's cache holds. Bytes per entry from `tracemalloc` (the Python heap the cache keeps,
   exact and steady) and from the RSS delta (what the operating system sees, allocator slack
   included).
2. LIVE: `resolver serve` with a cache of C entries (C records and C packets), filled through its
   socket with distinct names (90% names that exist, in a zone of the test internet; 10%
   NXDOMAIN), in steps up to 3 C (1.5 C quick): resident memory after each step, at the full
   cache, and whether it levels off once the cache is full (it must: every cache is bounded in
   entries). Unbound gets the same names, up to C, with caches large enough to keep them all,
   as a yardstick; one step ends at TARGET_NAMES names, where the target compares the two.

`--no-in-process --no-unbound` is the live part alone, our resolver only. Figures are
printed, never asserted. Network traffic stays on 127.0.0.0/8: the test internet lives in
127.155.0.0/16 (`--block`), the resolvers listen on a free port of 127.0.0.1 and are only given
its hints.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import benchlib
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.packets import PacketCache, parse_plain_query
from resolver.cache.records import Rank, RecordCache
from resolver.config import CacheConfig
from resolver.testing.scripted import FakeClock

DEFAULT_BLOCK = "127.155"
ZONE = "mem.test."
NX_ZONE = "example.test."  # a small zone of the standard topology: NXDOMAIN answers are cheap
NX_SHARE = 0.1

#: The in-process row for a cache that has been full for a while: EVICTING_FILL times its size
#: put through it (see `fill_records`).
EVICTING = "mix, evicting"
EVICTING_FILL = 3

#: The kinds of entry in a resolver's record cache, and their share in the "mix" row: mostly
#: address records, then negative answers, CNAMEs, and the delegations met on the way.
MIX: tuple[tuple[str, float], ...] = (
    ("A", 0.55),
    ("AAAA", 0.18),
    ("CNAME", 0.08),
    ("NS", 0.04),
    ("NXDOMAIN", 0.15),
)


@dataclass(frozen=True)
class Settings:
    """The size of one run; `--quick` trades precision for a run well under a minute."""

    entries: int  # in-process entries per kind
    cache_size: int  # live: the resolver's cache, in entries
    steps: tuple[float, ...]  # live: names sent, as multiples of the cache size
    in_flight: int

    def budget(self, resolvers: int) -> float:
        """A generous wall-clock bound for the whole run, so that nothing can hang forever."""
        names = self.cache_size * max(self.steps)
        # 100 names per second would be ten times slower than a cold resolution here.
        return 120 + self.entries * 6 * 0.001 + resolvers * (names / 100 + 60)


#: The target: our resident memory with this many names cached, at most TARGET_RATIO times
#: Unbound's with the same names. Both runs have a step that ends there.
TARGET_NAMES = 10_000
TARGET_RATIO = 2.0

QUICK = Settings(entries=4_000, cache_size=10_000, steps=(0.5, 1.0, 1.5), in_flight=32)
FULL = Settings(
    entries=30_000,
    cache_size=100_000,
    steps=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0),
    in_flight=32,
)

#: Unbound, the yardstick of memory per cached name, is filled up to this multiple of the cache
#: size only (its cache is sized to keep every name, so it would only keep growing).
UNBOUND_UP_TO = 1.0


# -- in-process: bytes per entry --------------------------------------------------------------


def _host(rng: random.Random, index: int) -> str:
    """A plausible owner name: 20 to 35 characters, like most names a resolver sees."""
    words = ("www", "mail", "api", "cdn", "static", "login", "img", "edge", "app", "m")
    return f"{rng.choice(words)}{index % 97}.site{index}.{rng.choice(('com', 'net', 'org'))}."


def _address(rng: random.Random, rdtype: str) -> str:
    if rdtype == "A":
        return f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"


def record_putter(kind: str, rng: random.Random) -> Callable[[RecordCache, int], None]:
    """A function that puts one entry of `kind` (built from scratch) into a record cache."""

    def put(cache: RecordCache, index: int) -> None:
        name = _host(rng, index)
        if kind in ("A", "AAAA"):
            count = 1 if rng.random() < 0.7 else 2
            rdatas = [_address(rng, kind) for _ in range(count)]
            rrset = dns.rrset.from_text(name, 300, "IN", kind, *rdatas)
            cache.put_rrset(rrset, Rank.ANSWER)
        elif kind == "CNAME":
            target = f"edge{index}.cdn-provider.net."
            cache.put_rrset(dns.rrset.from_text(name, 300, "IN", "CNAME", target), Rank.ANSWER)
        elif kind == "NS":
            zone = name.split(".", 1)[1]
            servers = [f"ns{k}.dns-host{index % 50}.net." for k in range(rng.randint(2, 4))]
            rrset = dns.rrset.from_text(zone, 172800, "IN", "NS", *servers)
            cache.put_rrset(rrset, Rank.REFERRAL, delegation=True)
        elif kind == "NXDOMAIN":
            zone = name.split(".", 1)[1]
            soa = dns.rrset.from_text(
                zone, 900, "IN", "SOA", f"ns1.{zone} hostmaster.{zone} 1 7200 3600 1209600 900"
            )
            cache.put_negative(dns.name.from_text(name), None, dns.rcode.NXDOMAIN, soa)
        else:
            raise ValueError(kind)

    return put


def mixed_putter(rng: random.Random) -> Callable[[RecordCache, int], None]:
    """Entries of every kind in the proportions of MIX."""
    kinds, weights = zip(*MIX, strict=True)
    putters = {kind: record_putter(kind, rng) for kind in kinds}

    def put(cache: RecordCache, index: int) -> None:
        putters[rng.choices(kinds, weights)[0]](cache, index)

    return put


def rss_bytes() -> int:
    """This process's resident memory, in bytes."""
    return int((benchlib.process_rss_mb(os.getpid()) or 0) * 1024 * 1024)


@dataclass
class Footprint:
    """Memory held by N entries of one kind."""

    kind: str
    entries: int
    traced: int  # bytes, tracemalloc
    rss: int  # bytes, RSS delta

    @property
    def traced_per_entry(self) -> float:
        return self.traced / self.entries

    @property
    def rss_per_entry(self) -> float:
        return self.rss / self.entries


def measure_traced(fill: Callable[[], object]) -> int:
    """Python heap bytes kept by what `fill()` returns, from tracemalloc."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = fill()
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del kept
    return traced


def measure_rss(fill: Callable[[], object]) -> int:
    """Resident bytes added by `fill()`, without tracemalloc (which costs memory of its own:
    a traceback per allocation), the temporary garbage of building the entries included."""
    gc.collect()
    before = rss_bytes()
    kept = fill()
    gc.collect()
    rss = rss_bytes() - before
    del kept
    return rss


def fill_records(kind: str, entries: int) -> Callable[[], object]:
    """A record cache of `entries` entries, filled with as many entries of `kind`.

    For the kind "mix, evicting", three times as many entries go into it, so that two thirds
    are evicted on the way: what a cache that has been full for a while keeps.
    """

    def fill() -> RecordCache:
        rng = random.Random(f"memory-{kind}")
        cache = RecordCache(CacheConfig(max_entries=entries), FakeClock())
        mixed = kind.startswith("mix")
        put = mixed_putter(rng) if mixed else record_putter(kind, rng)
        for index in range(entries * (EVICTING_FILL if kind == EVICTING else 1)):
            put(cache, index)
        if len(cache) != entries:
            raise benchlib.BenchError(f"{kind}: {len(cache)} entries cached, not {entries}")
        return cache

    return fill


def fill_packets(entries: int) -> Callable[[], object]:
    """A packet cache holding `entries` rendered answers (one A record each, no EDNS)."""

    def fill() -> PacketCache:
        rng = random.Random("memory-packets")
        cache = PacketCache(entries * 2, FakeClock(), 1232)
        for index in range(entries):
            name = _host(rng, index)
            query = dns.message.make_query(name, "A")
            response = dns.message.make_response(query)
            response.flags |= dns.flags.RA
            response.answer.append(dns.rrset.from_text(name, 300, "IN", "A", _address(rng, "A")))
            wire = query.to_wire()
            question = parse_plain_query(wire)
            assert question is not None
            cache.store(question.key, response.to_wire())
        if len(cache) != entries:
            raise benchlib.BenchError(f"packets: {len(cache)} cached, not {entries}")
        return cache

    return fill


def _measure_job(job: tuple[str, int, str]) -> int:
    """One kind, one method, in a fresh worker process (see `in_process`)."""
    kind, entries, method = job
    benchlib.progress(f"in-process: {entries:,} {kind} entries ({method})")
    fill = fill_packets(entries) if kind == "packet" else fill_records(kind, entries)
    return measure_traced(fill) if method == "tracemalloc" else measure_rss(fill)


def in_process(settings: Settings, jobs: int) -> list[Footprint]:
    """Every kind of entry, measured each way in a worker process of its own.

    A fresh process per measurement keeps the RSS delta honest: in a process that has already
    filled and freed a cache, the allocator reuses the freed memory and the delta shrinks to
    nothing. The pool is always terminated on the way out, so nothing outlives the run.
    """
    kinds = [kind for kind, _ in MIX] + ["mix", EVICTING, "packet"]
    work = [(kind, settings.entries, method) for kind in kinds for method in ("tracemalloc", "rss")]
    pool = multiprocessing.get_context("fork").Pool(max(1, jobs), maxtasksperchild=1)
    try:
        figures = pool.map(_measure_job, work, chunksize=1)
        pool.close()
        pool.join()
    finally:
        pool.terminate()
    return [
        Footprint(kind, settings.entries, figures[2 * index], figures[2 * index + 1])
        for index, kind in enumerate(kinds)
    ]


# -- live: resident memory with a full cache --------------------------------------------------


def fill_names(count: int) -> Iterator[str]:
    """`count` distinct names: one in ten does not exist (NXDOMAIN), the rest are in ZONE."""
    rng = random.Random("memory-live")
    for index in range(count):
        if rng.random() < NX_SHARE:
            yield f"nx{index:07d}.{NX_ZONE}"
        else:
            yield f"m{index:07d}.{ZONE}"


def build_internet(names: int, block: str) -> benchlib.TestInternet:
    """The standard topology in `block` plus ZONE with an A record for every name that exists."""
    topology = benchlib.Topology.standard(block)
    records = "".join(f"m{index:07d} 86400 A 192.0.2.{index % 254 + 1}\n" for index in range(names))
    topology.add_leaf_zone(ZONE, records, ttl=86400)
    return topology.build()


@dataclass
class Step:
    names: int  # sent so far
    rss_mb: float | None
    answered: int
    lost: int
    servfail: int
    rate: float


@dataclass
class LiveRun:
    label: str
    idle_rss_mb: float | None
    steps: list[Step] = field(default_factory=list)


def ours_live_command(port: int, hints: Path, size: int, workdir: Path) -> list[str]:
    """`resolver serve` with C records and C packets (the packet cache's size has no flag)."""
    config = workdir / "memory.toml"
    config.write_text(f"[cache]\nmax_entries = {size}\nmax_packets = {size}\n")
    return benchlib.ours_command(port, hints, config=config)


def fill_live(
    server: benchlib.Server, names: Sequence[str], settings: Settings, up_to: float
) -> LiveRun:
    """Send the names in steps (multiples of the cache size, at most `up_to`), RSS after each."""
    run = LiveRun(server.label, server.rss_mb())
    wires = [dns.message.make_query(name, "A").to_wire() for name in names]
    sent = 0
    for multiple in (step for step in settings.steps if step <= up_to):
        target = round(multiple * settings.cache_size)
        benchlib.progress(f"  {server.label}: names {sent:,} to {target:,}")
        result = benchlib.udp_load(server.port, wires[sent:target], in_flight=settings.in_flight)
        sent = target
        run.steps.append(
            Step(
                names=sent,
                rss_mb=server.rss_mb(),
                answered=result.answered,
                lost=result.lost,
                servfail=result.rcodes.get("SERVFAIL", 0),
                rate=result.qps,
            )
        )
    return run


def live(settings: Settings, args: argparse.Namespace, unbound: str | None) -> list[LiveRun]:
    total = round(max(settings.steps) * settings.cache_size)
    names = list(fill_names(total))
    benchlib.progress(f"live: building a test internet with {total:,} names")
    internet = build_internet(total, args.block)
    runs = []
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as temporary:
        workdir = Path(temporary)
        workdir.chmod(0o755)
        hints = internet.write_hints(workdir / "root.hints")
        with benchlib.internet_in_thread(internet):
            benchlib.check_internet(internet, [(f"ns1.{ZONE}", "A")])
            port = benchlib.free_port()
            command = ours_live_command(port, hints, settings.cache_size, workdir)
            with benchlib.running("ours", command, port, workdir / "ours.log") as server:
                runs.append(fill_live(server, names, settings, max(settings.steps)))
            if unbound:
                internet.reset_counters()
                port = benchlib.free_port()
                conf = workdir / "unbound.conf"
                # Caches large enough for every name, so its memory grows with the names too.
                extra = "    rrset-cache-size: 1g\n    msg-cache-size: 512m\n"
                conf.write_text(benchlib.unbound_config(port, hints, workdir, extra=extra))
                command = [unbound, "-d", "-c", str(conf)]
                with benchlib.running("unbound", command, port, workdir / "unbound.log") as server:
                    runs.append(fill_live(server, names, settings, UNBOUND_UP_TO))
    return runs


# -- the report -------------------------------------------------------------------------------


def in_process_lines(results: Sequence[Footprint], settings: Settings) -> list[str]:
    lines = [
        f"in-process: {settings.entries:,} entries of each kind in RecordCache / PacketCache",
        *benchlib.table(
            ["kind", "bytes/entry (tracemalloc)", "bytes/entry (RSS delta)"],
            [
                [item.kind, f"{item.traced_per_entry:,.0f}", f"{item.rss_per_entry:,.0f}"]
                for item in results
            ],
            left=1,
        ),
    ]
    by_kind = {item.kind: item for item in results}
    default = CacheConfig()
    packets = default.max_packets

    def projected(records: Footprint) -> float:
        """MiB of Python heap for full caches of the default sizes."""
        packet = by_kind["packet"].traced_per_entry * packets
        return (records.traced_per_entry * default.max_entries + packet) / 2**20

    lines.append(
        f"  mix: {', '.join(f'{kind} {share:.0%}' for kind, share in MIX)}; "
        f"'{EVICTING}': {EVICTING_FILL} x as many put through the same cache"
    )
    lines.append(
        f"  at the default sizes ({default.max_entries:,} records, {packets:,} packets): "
        f"about {projected(by_kind['mix']):,.0f} MiB of Python heap when just full, "
        f"{projected(by_kind[EVICTING]):,.0f} MiB once evicting"
    )
    return lines


def live_lines(runs: Sequence[LiveRun], settings: Settings) -> list[str]:
    size = settings.cache_size
    lines = [
        f"live: distinct names through the server's socket ({1 - NX_SHARE:.0%} exist, "
        f"{NX_SHARE:.0%} NXDOMAIN), {settings.in_flight} in flight; our cache: {size:,} "
        "records and packets; Unbound's: large enough for every name",
    ]
    labels = [run.label for run in runs]
    reference = labels.index(benchlib.REFERENCE) if benchlib.REFERENCE in labels else None
    header = ["names sent", "cache full?"]
    for run in runs:
        header += [f"{run.label} RSS (MiB)", "answered / lost", "names/s"]
    compared = [i for i in range(len(runs)) if reference is not None and i != reference]
    header += [f"{labels[i]}/{benchlib.REFERENCE} RSS" for i in compared]

    def ratios(rss: Sequence[float | None]) -> list[str]:
        return [benchlib.ratio(rss[i], rss[reference]) for i in compared if reference is not None]

    idle_rss = [run.idle_rss_mb for run in runs]
    rows = [
        [
            "0",
            "empty",
            *(cell for rss in idle_rss for cell in (_mb(rss), "", "")),
            *ratios(idle_rss),
        ]
    ]
    longest = max(runs, key=lambda run: len(run.steps))
    for index, step in enumerate(longest.steps):
        full = "full" if step.names >= size else f"{step.names / size:.0%}"
        row = [f"{step.names:,}", full]
        rss: list[float | None] = []
        for run in runs:
            if index >= len(run.steps):
                row += ["-", "", ""]
                rss.append(None)
                continue
            own = run.steps[index]
            row += [_mb(own.rss_mb), f"{own.answered:,} / {own.lost}", f"{own.rate:,.0f}"]
            rss.append(own.rss_mb)
        rows.append(row + ratios(rss))
    lines += benchlib.table(header, rows)
    for run in runs:
        at_full = next((s for s in run.steps if s.names >= size), None)
        if at_full is None or at_full.rss_mb is None or run.idle_rss_mb is None:
            continue
        per_entry = (at_full.rss_mb - run.idle_rss_mb) * 2**20 / at_full.names
        lines.append(
            f"{run.label}: {at_full.rss_mb:.1f} MiB resident with {at_full.names:,} names "
            f"cached, {per_entry:,.0f} bytes per name above the idle {run.idle_rss_mb:.1f} MiB"
        )
        after = [s for s in run.steps if s.names > at_full.names and s.rss_mb is not None]
        if after:
            peak = max(after, key=lambda s: s.rss_mb or 0.0)
            last = after[-1]
            previous = run.steps[run.steps.index(last) - 1]
            lines.append(
                f"  {run.label}, cache full and evicting: peak {peak.rss_mb:.1f} MiB after "
                f"{peak.names:,} names ({(peak.rss_mb or 0) / at_full.rss_mb:.2f} x the full "
                f"figure); the last {last.names - previous.names:,} names added "
                f"{(last.rss_mb or 0) - (previous.rss_mb or 0):+.1f} MiB"
            )
    return lines


def target_line(runs: Sequence[LiveRun]) -> str:
    """Our resident memory after TARGET_NAMES names against Unbound's, met or missed."""
    text = f"resident memory after {TARGET_NAMES:,} cached names <= {TARGET_RATIO:g} x Unbound's"

    def at_target(label: str) -> float | None:
        run = next((run for run in runs if run.label == label), None)
        steps = [] if run is None else run.steps
        return next((s.rss_mb for s in steps if s.names == TARGET_NAMES), None)

    ours, theirs = at_target("ours"), at_target(benchlib.REFERENCE)
    if ours is None or not theirs:
        return f"  {text}: not measured (no step of {TARGET_NAMES:,} names for both)"
    ratio = ours / theirs
    return benchlib.target(
        f"{text}: {ours:.1f} vs {theirs:.1f} MiB = {ratio:.2f} x",
        ratio <= TARGET_RATIO,
        f"{ratio - TARGET_RATIO:.2f} x",
    )


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Bytes per cached entry, and resident memory with a full cache.",
    )
    parser.add_argument("--cache-size", type=int, help="live: the cache size in entries")
    parser.add_argument(
        "--names",
        type=int,
        help="live: distinct names to send in all, in six equal steps (default: 3 x the "
        "cache; 1.5 x quick)",
    )
    parser.add_argument("--entries", type=int, help="in-process: entries of each kind")
    parser.add_argument("--in-flight", type=int, help="live: queries in flight (32)")
    parser.add_argument("--no-live", action="store_true", help="in-process figures only")
    parser.add_argument("--no-in-process", action="store_true", help="live figures only")
    parser.add_argument("--no-unbound", action="store_true", help="live: our resolver only")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    benchlib.add_common_options(parser, DEFAULT_BLOCK)
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="in-process: kinds measured at once, in worker processes (default: %(default)s)",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else FULL
    cache_size = args.cache_size or base.cache_size
    steps = base.steps
    if args.names:
        steps = tuple(args.names * step / 6 / cache_size for step in range(1, 7))
    return Settings(
        entries=args.entries or base.entries,
        cache_size=cache_size,
        steps=steps,
        in_flight=args.in_flight or base.in_flight,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; 0 on success, 1 if the run failed."""
    args = parse_args(argv)
    settings = settings_from(args)
    unbound = None
    if not (args.no_live or args.no_unbound):
        benchlib.install_tools(not args.no_install, ("unbound",))
        unbound = benchlib.find_tool("unbound")
        if unbound is None:
            print("unbound is not installed: measuring our resolver only", file=sys.stderr)
    report = benchlib.Report("memory", args.quick)
    footprints: list[Footprint] = []
    runs: list[LiveRun] = []
    try:
        with benchlib.time_budget(settings.budget(2 if unbound else 1)):
            if not args.no_in_process:
                footprints = in_process(settings, args.jobs)
            if not args.no_live:
                runs = live(settings, args, unbound)
    except benchlib.BenchError as error:
        print(f"memory: {error}", file=sys.stderr)
        return 1
    extra = [f"unbound {benchlib.tool_version([unbound, '-V'])}"] if unbound else []
    if footprints:
        report.add(*in_process_lines(footprints, settings))
    if runs:
        report.add(*([""] if footprints else []), *live_lines(runs, settings))
        report.add("", "target, met or missed in this run", target_line(runs))
    report.data["settings"] = asdict(settings)
    report.data["in_process"] = footprints
    report.data["live"] = runs
    report.emit(extra, args.json)
    return 0


if __name__ == "__main__":
    benchlib.run_main("memory", main)
