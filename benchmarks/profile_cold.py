"""The resolver's own CPU per cold name, and where it goes: the pure iterator, no sockets.

    python benchmarks/profile_cold.py [--quick] [--names N] [--repeat R] [--top K] [--json FILE]

A test internet (the standard topology plus a zone `bench.test.`, as `resolve_bench.py` builds
it) answers in-process, on a fake clock, as in `ScriptedWorld`. After one name has
warmed the delegations, N distinct names are resolved from a cold cache: 70% existing A
records, 20% NXDOMAIN, 10% CNAMEs to a name not asked before (two upstream queries each).

Each upstream query goes through the steps the daemon's transport takes: the query is rendered
to wire bytes, the authority answers (`TestInternet.respond` and the rendering of its reply),
the reply is parsed and matched to the query. The authority's part is timed apart and left out:
what is left is the resolver's own CPU (thread CPU time, best of the runs). The per-stage
table comes from another run with a timer around each stage's entry functions: a stage's time
is the time inside them, less the time of other stages' functions they call; "other" is the
rest (the walk, the resolution, the CNAME chain, the driver's own steps). The timers cost about
a microsecond per call, so the table gives each stage's share of that run, applied to the
headline figure. `--top K` adds cProfile's top K functions by own
time (on stderr).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import pstats
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import benchlib
import dns.exception
import dns.message
import dns.name
import dns.rdatatype

from resolver.cache.records import RecordCache
from resolver.cache.servers import ServerTable
from resolver.config import Config, DnssecConfig, UpstreamConfig
from resolver.core.actions import Outcome, Response, SendQuery, Timeout
from resolver.core.hints import parse_root_hints
from resolver.core.resolution import Resolution
from resolver.core.scrub import bare_header, is_response_to
from resolver.core.work import Context
from resolver.engine.messages import parse as parse_message
from resolver.testing import TestInternet
from resolver.testing.scripted import FakeClock

ZONE = "bench.test."
DEFAULT_BLOCK = "127.153"


def build_internet(count: int, block: str) -> TestInternet:
    """bench.test. with `count` names of each kind that exists: A records, CNAMEs, targets."""
    topology = benchlib.Topology.standard(block)
    records = "".join(
        f"a{i} 3600 A 192.0.2.{i % 254 + 1}\n"
        f"c{i} 3600 CNAME t{i}\n"
        f"t{i} 3600 A 198.51.100.{i % 254 + 1}\n"
        for i in range(count)
    )
    topology.add_leaf_zone(ZONE, records, ttl=3600)
    return topology.build()


def cold_names(count: int) -> list[dns.name.Name]:
    """70% existing names, 20% NXDOMAIN, 10% CNAMEs, interleaved; parsed beforehand, as the
    client's query is before a resolution starts."""
    kinds = ("a",) * 7 + ("nx",) * 2 + ("c",)
    return [dns.name.from_text(f"{kinds[i % 10]}{i}.{ZONE}") for i in range(count)]


class Driver:
    """Drives resolutions as the daemon's transport would, timing the authority apart.

    `clock` is the timer: thread CPU time for the headline figure (a busy machine steals wall
    time, not CPU time), a cheaper wall clock under the stage timers.
    """

    def __init__(self, internet: TestInternet, clock: Callable[[], float]) -> None:
        self.internet = internet
        self.clock = clock
        # The unsigned test internet: no trust anchor fits its root, so no validation.
        config = Config(
            upstream=UpstreamConfig(query_loopback=True), dnssec=DnssecConfig(validate=False)
        )
        clock = FakeClock()
        self.context = Context(
            cache=RecordCache(config.cache, clock),
            servers=ServerTable(config.upstream.server_table_size, clock, config.upstream),
            hints=parse_root_hints(internet.hints_text()),
            config=config,
            rng=random.Random(1),
        )
        self.authority_seconds = 0.0
        self.queries = 0

    def resolve(self, name: dns.name.Name) -> None:
        resolution = Resolution(name, dns.rdatatype.A, self.context, None)
        action = resolution.next_action()
        while isinstance(action, SendQuery):
            action = resolution.receive(self.exchange(action))

    def exchange(self, action: SendQuery) -> Outcome:
        self.queries += 1
        wire = render(action.query)
        data = self.authority(action, wire)
        if data is None:
            return Timeout()
        message = parse(data)
        if message is not None and is_response_to(
            action.query, message, exact_case=action.exact_case
        ):
            return Response(message, 0.01)
        bare = bare_header(data, message) if data[:2] == wire[:2] else None
        return bare if bare is not None else Timeout()

    def authority(self, action: SendQuery, wire: bytes) -> bytes | None:
        started = self.clock()
        try:
            reply = self.internet.respond(action.server.address, action.query, action.tcp)
        except KeyError:
            reply = None
        data = None if reply is None else reply if isinstance(reply, bytes) else reply.to_wire()
        self.authority_seconds += self.clock() - started
        return data


def render(query: dns.message.Message) -> bytes:
    return query.to_wire()


def parse(data: bytes) -> dns.message.Message | None:
    """The engine's reader (`match_reply` parses with it), under a name of this module for the
    stage timer."""
    return parse_message(data)


def warm_driver(
    count: int, clock: Callable[[], float], block: str
) -> tuple[Driver, list[dns.name.Name]]:
    """A driver whose cache knows the delegations (one name resolved), and the cold names."""
    driver = Driver(build_internet(count, block), clock)
    driver.resolve(dns.name.from_text(f"warm.{ZONE}"))
    driver.queries = 0
    driver.authority_seconds = 0.0
    return driver, cold_names(count)


def timed_run(count: int, block: str) -> tuple[float, float]:
    """(resolver CPU seconds, upstream queries) per name, without a profiler."""
    driver, names = warm_driver(count, time.thread_time, block)
    started = time.thread_time()
    for name in names:
        driver.resolve(name)
    total = time.thread_time() - started
    return (total - driver.authority_seconds) / count, driver.queries / count


#: Stage -> its entry functions, as (module, qualified name). A stage's time is the time spent
#: inside its entry functions, minus the time of other stages' functions they call.
STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "lookup (local data, cache)": (
        ("resolver.core.lookup", "CacheLookup.from_local"),
        ("resolver.core.lookup", "CacheLookup.from_cache"),
        ("resolver.core.lookup", "CacheLookup.known_to_exist"),
        ("resolver.cache.records", "RecordCache.get_failure"),
        ("resolver.cache.records", "RecordCache.get_negative"),
        ("resolver.cache.records", "RecordCache.get_rrset"),
    ),
    "zone cut: closest delegation, its addresses": (
        ("resolver.cache.records", "RecordCache.closest_delegation"),
        ("resolver.cache.records", "RecordCache.closest_cut"),
        ("resolver.core.zonecut", "Delegation.from_cut"),
        ("resolver.core.zonecut", "Delegation.from_ns"),
        ("resolver.core.zonecut", "Delegation.from_hints"),
    ),
    "exchange: build the query": (("resolver.core.exchange", "Exchange._query"),),
    "exchange: render the query": ((__name__, "render"),),
    "exchange: parse the reply": ((__name__, "parse"),),
    "exchange: match reply to query": (("resolver.core.scrub", "is_response_to"),),
    "classification": (
        ("resolver.core.classify", "classify"),
        ("resolver.core.classify", "classify_recursive"),
    ),
    "learning and caching": (
        ("resolver.core.learn", "conclude"),
        ("resolver.core.learn", "cache_verdict"),
        ("resolver.core.learn", "cache_negative"),
        ("resolver.core.learn", "follow_referral"),
    ),
    "server selection": (
        ("resolver.core.walk", "Walk._servers_of"),
        ("resolver.core.selection", "choose_server"),
        ("resolver.core.selection", "choose_in_order"),
        ("resolver.core.selection", "usable_address"),
        ("resolver.cache.servers", "ServerTable.score"),
        ("resolver.cache.servers", "ServerTable.is_lame"),
        ("resolver.cache.servers", "ServerTable.held_down"),
        ("resolver.cache.servers", "ServerTable.no_edns"),
        ("resolver.cache.servers", "ServerTable.record_rtt"),
    ),
}

OTHER = "other (the walk, resolution, chain)"


@dataclass(slots=True)
class _Frame:
    """A stage being timed: when it started, and the time spent in stages nested in it."""

    stage: str
    started: float
    nested: float = 0.0


class StageClock:
    """Wraps each stage's entry functions with a timer; time in nested stages is their own."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._stack: list[_Frame] = []
        self._undo: list[Callable[[], None]] = []

    def install(self) -> None:
        for stage, entries in STAGES.items():
            for module_name, qualname in entries:
                owner: object = importlib.import_module(module_name)
                *path, attribute = qualname.split(".")
                for part in path:
                    owner = getattr(owner, part)
                original = getattr(owner, attribute)
                timed = self._timed(stage, original)
                self._replace(owner, attribute, original, timed)
                if not path:  # a function imported by name elsewhere: replace those too
                    for module in list(sys.modules.values()):
                        name = getattr(module, "__name__", "")
                        if name.startswith("resolver.") and module is not owner:
                            for key, value in list(vars(module).items()):
                                if value is original:
                                    self._replace(module, key, original, timed)

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _replace(self, owner: object, key: str, original: object, timed: object) -> None:
        setattr(owner, key, timed)
        self._undo.append(lambda: setattr(owner, key, original))

    def _timed(self, stage: str, function: Callable[..., object]) -> Callable[..., object]:
        stack, seconds, clock = self._stack, self.seconds, time.perf_counter

        @functools.wraps(function)
        def timed(*args: object, **kwargs: object) -> object:
            if stack and stack[-1].stage == stage:  # nested in its own stage: counted already
                return function(*args, **kwargs)
            frame = _Frame(stage, clock())
            stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                stack.pop()
                spent = clock() - frame.started
                seconds[stage] += spent - frame.nested
                if stack:
                    stack[-1].nested += spent

        return timed


def staged_run(count: int, block: str) -> dict[str, float]:
    """Seconds per name per stage; "other" is the rest of this run's resolver time."""
    driver, names = warm_driver(count, time.perf_counter, block)
    clock = StageClock()
    clock.install()
    try:
        started = time.perf_counter()
        for name in names:
            driver.resolve(name)
        total = time.perf_counter() - started - driver.authority_seconds
    finally:
        clock.uninstall()
    stages = {stage: seconds / count for stage, seconds in clock.seconds.items()}
    stages[OTHER] = max(0.0, total / count - sum(stages.values()))
    return stages


def profile_top(count: int, top: int, block: str) -> None:
    """cProfile's top functions by own time, the authority's included (it runs in-process)."""
    driver, names = warm_driver(count, time.perf_counter, block)
    profile = cProfile.Profile()
    profile.enable()
    for name in names:
        driver.resolve(name)
    profile.disable()
    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, help="cold names per run (default 1000)")
    parser.add_argument("--repeat", type=int, help="timed runs; the best counts (default 3)")
    parser.add_argument("--top", type=int, default=0, help="also print the top K by own time")
    # --block only names the test internet's addresses: nothing here opens a socket.
    benchlib.add_common_options(parser, DEFAULT_BLOCK)
    args = parser.parse_args(argv)
    count = args.names or (200 if args.quick else 1000)
    repeat = args.repeat or (1 if args.quick else 3)
    benchlib.progress(f"{repeat} timed run(s) of {count} cold names, then one with stage timers")
    report = benchlib.Report("profile_cold", args.quick)
    timed_run(min(count, 100), args.block)  # first use: imports, dnspython's rdata classes, memos
    runs = [timed_run(count, args.block) for _ in range(repeat)]
    per_name, queries = min(runs)
    stages = staged_run(count, args.block)
    report.add(
        f"{count} cold names (70% A, 20% NXDOMAIN, 10% CNAME), "
        f"{queries:.2f} upstream queries per name, best of {repeat} run(s)",
        f"resolver CPU per cold name: {per_name * 1e6:,.0f} us (the authorities' part excluded)",
        "",
    )
    timed = sum(stages.values())
    shares = {stage: seconds / timed for stage, seconds in stages.items()}
    rows = [
        [stage, f"{share * per_name * 1e6:,.0f}", f"{share:.0%}"] for stage, share in shares.items()
    ]
    report.table(["stage", "us per name", "share"], rows, left=1)
    report.add(
        f"(shares from another run with a timer around each stage's entry functions, "
        f"{timed * 1e6:,.0f} us per name with the timers; us = share of the figure above)"
    )
    report.data.update(per_name_us=per_name * 1e6, queries_per_name=queries)
    report.data["stage_shares"] = shares
    report.emit(json_path=args.json)
    if args.top:
        profile_top(count, args.top, args.block)
    return 0


if __name__ == "__main__":
    benchlib.run_main("profile_cold", main)
