"""A unique-name flood (water torture): our resolver and Unbound, side by side, in one run.

    python benchmarks/flood.py [--quick] [--rate QPS] [--seconds S] [--no-unbound] [--json FILE]

Every query asks for a name never asked before, under a zone `flood.test.` whose authority
answers NXDOMAIN for all of them: no cache can help, every query is a miss that costs one
upstream query, and each negative answer is one more cache entry. This is the random-subdomain
attack on a zone's authority, seen from a resolver in between: it must keep answering at the
rate it is flooded, and its memory must stay bounded.

The authority of `flood.test.` is an Unbound of its own, a `static` local zone with an SOA,
on two addresses of the benchmark's block (delegated from the test internet's `test.` with
glue): the test internet's Python servers answer a few thousand queries per second, far below
the rate a resolver is flooded at. It runs beside the load client, off the resolver's CPU
(`--pin`, as `resolve_bench.py` pins). So Unbound is needed even with `--no-unbound`, which only
leaves Unbound out as a resolver under test.

The names go out at a fixed offered rate (`--rate`, default 5,000 per second) on a schedule,
whether or not earlier ones were answered, as an attacker sends them; `--rate 0` sends them as
fast as the resolver answers instead (`--in-flight` unanswered at a time). Per resolver, each
started afresh: queries answered per second (over the time they were being sent), the rcodes
(NXDOMAIN, SERVFAIL, other) and lost queries (no answer within FLOOD_TIMEOUT), latency p50 and
p99, resident memory before and after the flood and its growth, and the resolver's CPU time.
Then the target: the flood absorbed (answered NXDOMAIN) at 5,000 queries per second or more by
one process. Figures are printed, never asserted. Network traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import benchlib
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode

DEFAULT_BLOCK = "127.156"
ZONE = "flood.test."

#: A query unanswered this long is lost: beyond any client's patience, below the resolver's own
#: 8 s limit on a resolution (a resolver that gives up answers SERVFAIL before that).
FLOOD_TIMEOUT = 3.0

#: The target: NXDOMAIN answers per second that one process must sustain under the flood.
TARGET_QPS = 5000

OURS = "ours"
UNBOUND = "unbound"


@dataclass(frozen=True)
class Settings:
    """The size of one run; `--quick` trades precision for a run of a few seconds per resolver."""

    rate: int  # offered queries per second; 0: as fast as answered, `in_flight` at a time
    seconds: float
    in_flight: int

    def budget(self, resolvers: int) -> int:
        """A generous wall-clock bound for the whole run, so that nothing can hang forever."""
        per_resolver = benchlib.STARTUP_TIMEOUT + self.seconds + FLOOD_TIMEOUT + 60
        return math.ceil(60 + benchlib.STARTUP_TIMEOUT + resolvers * per_resolver)


QUICK = Settings(rate=TARGET_QPS, seconds=3.0, in_flight=200)
FULL = Settings(rate=TARGET_QPS, seconds=30.0, in_flight=200)


# -- the flood and its authority ---------------------------------------------------------------


def flood_names(seed: int) -> Iterator[bytes]:
    """Queries for names never asked before, `<random><counter>.flood.test.`, as wire bytes.

    One template patched per query: building each with dnspython would cost the Python client
    more than the resolver spends on a query. The counter makes every name unique, the random
    part makes them look like an attack's (and differ from one resolver's run to the next).
    """
    template = dns.message.make_query(f"{'0' * 12}.{ZONE}", "A").to_wire()
    at = 13  # 12-byte header, then the first label's length byte
    rng = random.Random(seed)
    prefix = rng.getrandbits(16)
    counter = 0
    while True:
        label = f"{prefix:04x}{counter:08x}".encode()
        yield template[:at] + label + template[at + 12 :]
        counter += 1


def authority_config(addresses: Sequence[str], port: int, workdir: Path) -> str:
    """An unbound.conf that serves ZONE authoritatively (NXDOMAIN below its apex) on port 53 of
    `addresses`, and on 127.0.0.1:port for `benchlib.running`'s readiness probe."""
    ns = [f"ns{k}.{ZONE}" for k in range(1, len(addresses) + 1)]
    data = [f"{ZONE} 3600 IN SOA {ns[0]} hostmaster.{ZONE} 1 7200 3600 1209600 300"]
    data += [f"{ZONE} 3600 IN NS {name}" for name in ns]
    data += [f"{name} 3600 IN A {address}" for name, address in zip(ns, addresses, strict=True)]
    lines = [
        "server:",
        "    verbosity: 0",
        "    num-threads: 1",
        *(f"    interface: {address}" for address in addresses),
        f"    interface: 127.0.0.1@{port}",
        "    port: 53",
        "    access-control: 127.0.0.0/8 allow",
        "    do-ip6: no",
        '    chroot: ""',
        '    username: ""',
        f'    directory: "{workdir}"',
        f'    pidfile: "{workdir / "authority.pid"}"',
        "    use-syslog: no",
        '    logfile: ""',
        f'    local-zone: "{ZONE}" static',
        *(f'    local-data: "{line}"' for line in data),
        "remote-control:",
        "    control-enable: no",
    ]
    return "\n".join(lines) + "\n"


def check_authority(address: str) -> None:
    """One flood name asked of the authority directly: it must say NXDOMAIN, authoritatively."""
    wire = next(flood_names(0))
    try:
        reply = dns.query.udp(dns.message.from_wire(wire), address, timeout=2.0)
    except (dns.exception.DNSException, OSError) as error:
        raise benchlib.BenchError(f"the flood's authority does not answer: {error!r}") from None
    if reply.rcode() != dns.rcode.NXDOMAIN or not reply.flags & dns.flags.AA:
        raise benchlib.BenchError(f"the flood's authority answers wrongly:\n{reply}")


# -- one resolver ------------------------------------------------------------------------------


@dataclass
class Result:
    """What one resolver did under the flood."""

    label: str
    load: benchlib.LoadResult
    cpu_seconds: float | None
    rss_before_mb: float | None
    rss_after_mb: float | None

    @property
    def answered_qps(self) -> float:
        """Answers per second over the time queries were being sent (not the final wait)."""
        return self.load.answered / self.load.send_time if self.load.send_time else 0.0

    @property
    def absorbed_qps(self) -> float:
        """NXDOMAIN answers per second: the flood's queries answered as they should be."""
        nxdomain = self.load.rcodes.get("NXDOMAIN", 0)
        return nxdomain / self.load.send_time if self.load.send_time else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "label": self.label,
            "load": self.load.summary(),
            "answered_qps": self.answered_qps,
            "absorbed_qps": self.absorbed_qps,
            "cpu_seconds": self.cpu_seconds,
            "rss_before_mb": self.rss_before_mb,
            "rss_after_mb": self.rss_after_mb,
        }


def flood(server: benchlib.Server, settings: Settings, seed: int) -> Result:
    """One name first (the delegation of ZONE learnt and the path proven), then the flood."""
    queries = flood_names(seed)
    primed = benchlib.udp_load(server.port, [next(queries)], timeout=10.0)
    if primed.rcodes != {"NXDOMAIN": 1}:
        raise benchlib.BenchError(f"{server.label} answers a flood name with {primed.rcodes}")
    rss_before = server.rss_mb()
    cpu = server.cpu_seconds()
    if settings.rate:
        count = round(settings.rate * settings.seconds)
        times = [k / settings.rate for k in range(count)]
        load = benchlib.udp_load(server.port, queries, times=times, timeout=FLOOD_TIMEOUT)
    else:
        load = benchlib.udp_load(
            server.port,
            queries,
            in_flight=settings.in_flight,
            timeout=FLOOD_TIMEOUT,
            seconds=settings.seconds,
        )
    after = server.cpu_seconds()
    return Result(
        label=server.label,
        load=load,
        cpu_seconds=None if after is None or cpu is None else after - cpu,
        rss_before_mb=rss_before,
        rss_after_mb=server.rss_mb(),
    )


# -- the report --------------------------------------------------------------------------------


def rows_for(results: Sequence[Result], settings: Settings) -> list[benchlib.Row | str]:
    """The table: one column per resolver (a str is a section heading)."""

    def row(label: str, values: Sequence[float | str | None], fmt: str = "{:,.0f}") -> benchlib.Row:
        return benchlib.Row(label, tuple(values), fmt)

    def count(rcode: str) -> list[float | str | None]:
        return [r.load.rcodes.get(rcode, 0) for r in results]

    def ms(fraction: float) -> list[float | str | None]:
        figures = (r.load.percentile(fraction) for r in results)
        return [None if figure is None else figure * 1000 for figure in figures]

    def growth(r: Result) -> float | None:
        if r.rss_after_mb is None or r.rss_before_mb is None:
            return None
        return r.rss_after_mb - r.rss_before_mb

    def per_query_us(r: Result) -> float | None:
        return (
            None if r.cpu_seconds is None or not r.load.sent else r.cpu_seconds / r.load.sent * 1e6
        )

    if settings.rate:
        pace = f"offered at a fixed {settings.rate:,} qps for {settings.seconds:g} s"
    else:
        pace = f"as fast as answered, {settings.in_flight} in flight, for {settings.seconds:g} s"
    other = [
        r.load.answered - r.load.rcodes.get("NXDOMAIN", 0) - r.load.rcodes.get("SERVFAIL", 0)
        for r in results
    ]
    return [
        f"flood: unique names under {ZONE} (each NXDOMAIN), {pace}",
        row("queries sent", [r.load.sent for r in results]),
        row("queries sent per second", [r.load.sent / (r.load.send_time or 1) for r in results]),
        row("queries answered per second", [r.answered_qps for r in results]),
        row("NXDOMAIN", count("NXDOMAIN")),
        row("SERVFAIL", count("SERVFAIL")),
        row("other answers", list(other)),
        row(f"lost (no answer in {FLOOD_TIMEOUT:g} s)", [r.load.lost for r in results]),
        row("latency p50 (ms)", ms(0.5), "{:.2f}"),
        row("latency p99 (ms)", ms(0.99), "{:.2f}"),
        row("resident memory before (MB)", [r.rss_before_mb for r in results], "{:.1f}"),
        row("resident memory after (MB)", [r.rss_after_mb for r in results], "{:.1f}"),
        row("resident memory growth (MB)", [growth(r) for r in results], "{:.1f}"),
        row("server CPU (s)", [r.cpu_seconds for r in results], "{:.2f}"),
        row("server CPU per query (us)", [per_query_us(r) for r in results], "{:,.1f}"),
    ]


def target_lines(results: Sequence[Result]) -> list[str]:
    lines = ["target, met or missed in this run"]
    for result in results:
        if result.label == UNBOUND:
            continue
        absorbed = result.absorbed_qps
        lines.append(
            benchlib.target(
                f"flood absorbed at >= {TARGET_QPS:,} qps in one process, {result.label}: "
                f"{absorbed:,.0f} NXDOMAIN answers per second",
                absorbed >= TARGET_QPS,
                f"{TARGET_QPS - absorbed:,.0f} qps",
            )
        )
    return lines


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="A unique-name flood (NXDOMAIN water torture): our resolver vs Unbound.",
    )
    parser.add_argument(
        "--rate",
        type=int,
        help=f"offered queries per second (default {TARGET_QPS:,}); 0: as fast as answered",
    )
    parser.add_argument("--seconds", type=float, help="length of the flood (30 s; quick 3 s)")
    parser.add_argument("--in-flight", type=int, help="with --rate 0: queries in flight (200)")
    benchlib.add_pin_option(parser)
    parser.add_argument(
        "--no-unbound",
        action="store_true",
        help="flood our resolver only (Unbound still serves the flooded zone)",
    )
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    benchlib.add_common_options(parser, DEFAULT_BLOCK)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else FULL
    return Settings(
        rate=base.rate if args.rate is None else args.rate,
        seconds=args.seconds or base.seconds,
        in_flight=args.in_flight or base.in_flight,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; 0 on success, 1 if the run failed, 2 if Unbound is missing."""
    args = parse_args(argv)
    settings = settings_from(args)
    benchlib.install_tools(not args.no_install, ("unbound",))
    unbound = benchlib.find_tool("unbound")
    if unbound is None:
        print(
            "flood: unbound is required (it serves the flooded zone) and not installed: run "
            "`apt-get install -y -q unbound` as root, or run this script as root to have it "
            "do so",
            file=sys.stderr,
        )
        return 2
    pinning = benchlib.pin_cpus() if args.pin else None
    report = benchlib.Report("flood", args.quick)
    labels = [OURS] if args.no_unbound else [OURS, UNBOUND]
    results: list[Result] = []
    try:
        with (
            benchlib.time_budget(settings.budget(len(labels))),
            tempfile.TemporaryDirectory(prefix="flood-bench-") as temporary,
        ):
            workdir = Path(temporary)
            workdir.chmod(0o755)
            topology = benchlib.Topology.standard(args.block)
            addresses = topology.delegate(ZONE)
            internet = topology.build()
            hints = internet.write_hints(workdir / "root.hints")
            authority_port = benchlib.free_port()
            conf = workdir / "authority.conf"
            conf.write_text(authority_config(addresses, authority_port, workdir))
            authority = [unbound, "-d", "-c", str(conf)]
            log = workdir / "authority.log"
            benchlib.progress(f"flood: {ZONE} served by Unbound at {', '.join(addresses)}")
            with (
                benchlib.internet_in_thread(internet),
                benchlib.running("authority", authority, authority_port, log),
            ):
                benchlib.check_internet(internet, [])
                check_authority(addresses[0])
                for seed, label in enumerate(labels, start=1):
                    port = benchlib.free_port()
                    if label == OURS:
                        command = benchlib.ours_command(port, hints)
                    else:
                        resolver_conf = workdir / "unbound.conf"
                        resolver_conf.write_text(benchlib.unbound_config(port, hints, workdir))
                        command = [unbound, "-d", "-c", str(resolver_conf)]
                    if pinning is not None:
                        command = pinning.command(command)
                    with benchlib.running(label, command, port, workdir / f"{label}.log") as server:
                        benchlib.progress(f"  {label}: flooding for {settings.seconds:g} s")
                        results.append(flood(server, settings, seed))
    except benchlib.BenchError as error:
        print(f"flood: {error}", file=sys.stderr)
        return 1

    versions = [f"unbound {benchlib.tool_version([unbound, '-V'])}"]
    if pinning is not None:
        versions.append(f"pinned: resolvers on CPU {pinning.server}, clients on {pinning.clients}")
    report.figures([r.label for r in results], rows_for(results, settings))
    report.add("", *target_lines(results))
    report.data["settings"] = asdict(settings)
    report.data["results"] = [result.summary() for result in results]
    report.emit(versions, args.json)
    return 0


if __name__ == "__main__":
    benchlib.run_main("flood", main)
