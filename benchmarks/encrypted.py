"""Encrypted DNS: cache hits over DoT and DoH next to Unbound's listeners, and what forwarding
over DoT adds to a cold resolution.

    python benchmarks/encrypted.py [--quick] [--json FILE] [--no-pin]

Three processes on loopback, all started (and stopped) here:

- a backend Unbound that serves `bench.test.` from local data, many names, over plain DNS and
  over DNS over TLS (a throwaway CA from `resolver.testing.certs`); everything listens on
  127.0.0.1 at free ports, so `--block` (accepted like every benchmark's) is not needed;
- our resolver and a front Unbound, each forwarding `udp.bench.test.` to the backend over UDP
  and `tls.bench.test.` to it over DoT (certificate checked against the throwaway CA), and each
  listening for clients over UDP, DoT and DoH.

Phases:
1. cache hits: every `hit` name is asked once over UDP (warm), then `dnsperf -m dot` and
   `dnsperf -m doh` (HTTP/2, POST; `-O doh-uri=`) send them again and again for a fixed time:
   throughput and latency percentiles, ours and Unbound's, in the same run;
2. cold forwarding: one query at a time (`benchlib.udp_load`, in flight 1) for names never asked
   before, alternating blocks under `udp.bench.test.` and `tls.bench.test.`: the latency of a
   miss forwarded over UDP and over DoT (a pooled, pipelined connection: the handshake is paid
   once, by the first query), and the difference.

Figures are printed, never asserted. dnsperf (2.x, built with DoT/DoH) and Unbound are needed;
as root, missing ones are installed with apt-get.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import benchlib
import dns.message
from resolve_bench import run_dnsperf

from resolver.testing.certs import Issued, TestCA

DEFAULT_BLOCK = "127.157"
NAME = "dns.test"  # the name in every certificate here
OURS = "ours"
UNBOUND = benchlib.REFERENCE


@dataclass(frozen=True)
class Settings:
    """The size of one run; `--quick` trades precision for a run of well under a minute."""

    hit_names: int
    hit_seconds: float
    hit_in_flight: int
    clients: int  # dnsperf -c: connections (DoT and DoH are connection oriented)
    cold_names: int  # per transport, per resolver
    blocks: int  # alternating UDP/DoT blocks of cold names

    def budget(self) -> int:
        """A generous wall-clock bound for the whole run, so that nothing can hang forever."""
        hits = 4 * (self.hit_seconds + 60)
        cold = 2 * 2 * self.cold_names * 0.05 + 60
        return math.ceil(3 * benchlib.STARTUP_TIMEOUT + hits + cold + 120)


QUICK = Settings(
    hit_names=200, hit_seconds=2.0, hit_in_flight=50, clients=4, cold_names=100, blocks=2
)
FULL = Settings(
    hit_names=1000, hit_seconds=10.0, hit_in_flight=100, clients=8, cold_names=1000, blocks=4
)


def hit_names(count: int) -> list[str]:
    return [f"h{index}.udp.bench.test." for index in range(count)]


def cold_names(count: int, transport: str) -> list[str]:
    return [f"c{index}.{transport}.bench.test." for index in range(count)]


def backend_conf(address: str, port: int, tls_port: int, issued: Issued, settings: Settings) -> str:
    """The backend: `bench.test.` from local data (an address per name), plain and DoT."""
    names = [
        *hit_names(settings.hit_names),
        *cold_names(settings.cold_names, "udp"),
        *cold_names(settings.cold_names, "tls"),
    ]
    data = "".join(
        f'    local-data: "{name} 3600 IN A 192.0.2.{index % 250 + 1}"\n'
        for index, name in enumerate(names)
    )
    return f"""\
server:
    verbosity: 0
    num-threads: 1
    interface: {address}@{port}
    interface: {address}@{tls_port}
    tls-port: {tls_port}
    tls-service-key: "{issued.key}"
    tls-service-pem: "{issued.certificate}"
    incoming-num-tcp: 100
    access-control: 127.0.0.0/8 allow
    do-ip6: no
    so-reuseport: no
    chroot: ""
    username: ""
    use-syslog: no
    logfile: ""
    local-zone: "bench.test." static
{data}remote-control:
    control-enable: no
"""


@dataclass(frozen=True)
class Ports:
    """Where one resolver under test listens, and where the backend is."""

    udp: int
    dot: int
    doh: int
    backend: str
    backend_port: int
    backend_tls: int


def ours_config(ports: Ports, issued: Issued, ca: Path) -> str:
    return f"""\
tls_listen = ["127.0.0.1:{ports.dot}"]
doh_listen = ["127.0.0.1:{ports.doh}"]
tls_certificate = "{issued.certificate}"
tls_key = "{issued.key}"

[cache]
max_entries = 1000000

[limits]
max_tcp_clients = 200

[[forward_zones]]
name = "udp.bench.test."
servers = ["{ports.backend}:{ports.backend_port}"]

[[forward_zones]]
name = "tls.bench.test."
servers = ["{ports.backend}:{ports.backend_tls}"]
tls = true
tls_name = "{NAME}"
tls_ca_file = "{ca}"
"""


def unbound_extra(ports: Ports, issued: Issued, ca: Path, doh: bool) -> str:
    """`server:` lines and forward zones of the front Unbound (see `benchlib.unbound_config`)."""
    https = f"    interface: 127.0.0.1@{ports.doh}\n    https-port: {ports.doh}\n" if doh else ""
    return f"""\
    interface: 127.0.0.1@{ports.dot}
    tls-port: {ports.dot}
{https}    tls-service-key: "{issued.key}"
    tls-service-pem: "{issued.certificate}"
    tls-cert-bundle: "{ca}"
    incoming-num-tcp: 200
    msg-cache-size: 64m
    rrset-cache-size: 128m
forward-zone:
    name: "udp.bench.test."
    forward-addr: {ports.backend}@{ports.backend_port}
forward-zone:
    name: "tls.bench.test."
    forward-addr: {ports.backend}@{ports.backend_tls}#{NAME}
    forward-tls-upstream: yes
"""


@dataclass
class Result:
    """One resolver's figures."""

    label: str
    hits: dict[str, benchlib.LoadResult] = field(default_factory=dict)  # by dnsperf mode
    cold: dict[str, benchlib.LoadResult] = field(default_factory=dict)  # by forwarding transport
    # The resolver's CPU time per answered query (microseconds), by dnsperf mode or forwarding
    # transport: unlike latency, hardly changed by what else the machine runs.
    cpu: dict[str, float | None] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return {
            "label": self.label,
            "hits": {mode: run.summary() for mode, run in self.hits.items()},
            "cold": {transport: run.summary() for transport, run in self.cold.items()},
            "cpu_us_per_query": self.cpu,
        }


def unbound_has_doh(unbound: str) -> bool:
    """Debian's Unbound 1.17 is built with libnghttp2 (its DoH listener); a build without it
    would refuse `https-port`, so the DoH column is left empty then."""
    return "nghttp2" in benchlib.tool_version([unbound, "-V"], r"(--with-libnghttp2)")


def wires(names: Sequence[str]) -> list[bytes]:
    return [dns.message.make_query(name, "A").to_wire() for name in names]


def measure_hits(
    server: benchlib.Server,
    ports: Ports,
    dnsperf: str,
    names_file: Path,
    workdir: Path,
    settings: Settings,
    modes: Sequence[str],
    cpu: dict[str, float | None],
) -> dict[str, benchlib.LoadResult]:
    """Warm the cache over UDP, then dnsperf over each encrypted transport (`cpu`: the
    resolver's CPU time per query of each, filled in)."""
    warm = benchlib.udp_load(server.port, wires(hit_names(settings.hit_names)), in_flight=20)
    if warm.answered < settings.hit_names:
        raise benchlib.BenchError(
            f"{server.label}: only {warm.answered} of {settings.hit_names} names answered "
            f"when warming ({warm.rcodes}):\n{server.log_tail()}"
        )
    results = {}
    for mode in modes:
        benchlib.progress(f"{server.label}: cache hits over {mode}")
        port = ports.dot if mode == "dot" else ports.doh
        options = [f"doh-uri=https://127.0.0.1:{port}/dns-query"] if mode == "doh" else []
        before = server.cpu_seconds()
        results[mode] = run_dnsperf(
            dnsperf,
            port,
            names_file,
            workdir / f"dnsperf-{server.label}-{mode}",
            in_flight=settings.hit_in_flight,
            clients=settings.clients,
            seconds=settings.hit_seconds,
            mode=mode,
            options=options,
        )
        cpu[mode] = cpu_per_query(before, server.cpu_seconds(), results[mode].answered)
    return results


def cpu_per_query(before: float | None, after: float | None, answered: int) -> float | None:
    """Microseconds of the resolver's CPU time per answered query (None without /proc)."""
    if before is None or after is None or not answered:
        return None
    return (after - before) / answered * 1e6


def measure_cold(
    server: benchlib.Server, settings: Settings, cpu: dict[str, float | None]
) -> dict[str, benchlib.LoadResult]:
    """Misses one at a time, UDP and DoT forwarding in alternating blocks (so that a drift in
    the machine's load falls on both alike); `cpu` gets the CPU time per miss of each."""
    benchlib.progress(f"{server.label}: cold names forwarded over UDP and over DoT")
    merged = {transport: benchlib.LoadResult() for transport in ("udp", "tls")}
    spent: dict[str, float | None] = {transport: 0.0 for transport in merged}
    size = max(1, settings.cold_names // settings.blocks)
    for block in range(settings.blocks):
        for transport, total in merged.items():
            names = cold_names(settings.cold_names, transport)[block * size : (block + 1) * size]
            before = server.cpu_seconds()
            run = benchlib.udp_load(server.port, wires(names), in_flight=1, timeout=5.0)
            after = server.cpu_seconds()
            so_far = spent[transport]
            spent[transport] = (
                None
                if so_far is None or before is None or after is None
                else so_far + after - before
            )
            total.sent += run.sent
            total.answered += run.answered
            total.lost += run.lost
            total.run_time += run.run_time
            total.latencies += run.latencies
            for rcode, count in run.rcodes.items():
                total.rcodes[rcode] = total.rcodes.get(rcode, 0) + count
    for transport, total in merged.items():
        total.latencies.sort()
        cpu[transport] = cpu_per_query(0.0, spent[transport], total.answered)
    return merged


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def rows(results: Sequence[Result], settings: Settings) -> list[benchlib.Row | str]:
    table: list[benchlib.Row | str] = []
    for mode, title in (("dot", "DNS over TLS"), ("doh", "DNS over HTTPS (HTTP/2, POST)")):
        table.append(
            f"cache hits over {title}: dnsperf -m {mode}, {settings.clients} connections, "
            f"{settings.hit_in_flight} in flight, {settings.hit_seconds:g} s"
        )
        runs = [result.hits.get(mode) for result in results]
        table += [
            benchlib.Row("queries per second", tuple(r.qps if r else None for r in runs)),
            benchlib.Row(
                "latency p50 (ms)",
                tuple(ms(r.percentile(0.5)) if r else None for r in runs),
                "{:.2f}",
            ),
            benchlib.Row(
                "latency p99 (ms)",
                tuple(ms(r.percentile(0.99)) if r else None for r in runs),
                "{:.2f}",
            ),
            benchlib.Row(
                "lost", tuple(r.lost if r else None for r in runs), "{:,.0f}", ratio=False
            ),
            benchlib.Row(
                "CPU per query (us)",
                tuple(r.cpu.get(mode) for r in results),
                "{:,.0f}",
            ),
        ]
    table.append(
        f"cold names, one at a time: {settings.cold_names} forwarded over each transport "
        f"({settings.blocks} alternating blocks)"
    )
    for transport, label in (("udp", "UDP"), ("tls", "DoT")):
        for name, fraction in (("p50", 0.5), ("p99", 0.99)):
            table.append(
                benchlib.Row(
                    f"forwarded over {label}, {name} (ms)",
                    tuple(ms(r.cold[transport].percentile(fraction)) for r in results),
                    "{:.2f}",
                )
            )
    for transport, label in (("udp", "UDP"), ("tls", "DoT")):
        table.append(
            benchlib.Row(
                f"CPU per miss over {label} (us)",
                tuple(r.cpu.get(transport) for r in results),
                "{:,.0f}",
            )
        )
    table.append(
        benchlib.Row(
            "DoT minus UDP, p50 (ms)",
            tuple(added(r, 0.5) for r in results),
            "{:+.2f}",
            ratio=False,
        )
    )
    table.append(
        benchlib.Row(
            "DoT minus UDP, p99 (ms)",
            tuple(added(r, 0.99) for r in results),
            "{:+.2f}",
            ratio=False,
        )
    )
    table.append(
        benchlib.Row(
            "cold names not answered",
            tuple(sum(run.sent - run.answered for run in r.cold.values()) for r in results),
            "{:,.0f}",
            ratio=False,
        )
    )
    return table


def added(result: Result, fraction: float) -> float | None:
    """What DoT forwarding adds to a cold name's latency at this percentile, in ms."""
    tls, udp = result.cold["tls"].percentile(fraction), result.cold["udp"].percentile(fraction)
    return None if tls is None or udp is None else (tls - udp) * 1000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="DoT/DoH cache hits vs Unbound, and the cost of forwarding over DoT."
    )
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    benchlib.add_pin_option(parser)
    benchlib.add_common_options(parser, DEFAULT_BLOCK)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; 0 on success, 1 if the run failed, 2 if a tool is missing."""
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    benchlib.install_tools(not args.no_install)
    dnsperf, unbound = benchlib.find_tool("dnsperf"), benchlib.find_tool("unbound")
    if dnsperf is None or unbound is None:
        print(
            "encrypted: dnsperf and unbound are required: run `apt-get install -y -q dnsperf "
            "unbound` as root, or run this script as root to have it do so",
            file=sys.stderr,
        )
        return 2
    doh = unbound_has_doh(unbound)
    pinning = benchlib.pin_cpus() if args.pin else None
    report = benchlib.Report("encrypted", args.quick)
    results: list[Result] = []
    try:
        with (
            benchlib.time_budget(settings.budget()),
            tempfile.TemporaryDirectory(prefix="encrypted-bench-") as temporary,
        ):
            workdir = Path(temporary)
            workdir.chmod(0o755)
            ca = TestCA(workdir)
            backend_address = "127.0.0.1"  # free ports: no fixed address to collide on
            issued = ca.issue("server", (NAME,), ("127.0.0.1",))
            backend_port, backend_tls = benchlib.free_port(), benchlib.free_port()
            conf = workdir / "backend.conf"
            conf.write_text(
                backend_conf(backend_address, backend_port, backend_tls, issued, settings)
            )
            names_file = workdir / "hits.txt"
            names_file.write_text("".join(f"{n} A\n" for n in hit_names(settings.hit_names)))
            hints = workdir / "root.hints"  # never used: every bench name is forwarded
            hints.write_text(
                f".  3600000 NS a.root.test.\na.root.test. 3600000 A {args.block}.0.2\n"
            )
            backend = [unbound, "-d", "-c", str(conf)]
            with benchlib.running("backend", backend, backend_port, workdir / "backend.log"):
                for label in (OURS, UNBOUND):
                    ports = Ports(
                        benchlib.free_port(),
                        benchlib.free_port(),
                        benchlib.free_port(),
                        backend_address,
                        backend_port,
                        backend_tls,
                    )
                    if label == OURS:
                        config = workdir / "ours.toml"
                        config.write_text(ours_config(ports, issued, ca.certificate))
                        command = benchlib.ours_command(ports.udp, hints, config=config)
                    else:
                        config = workdir / "unbound.conf"
                        extra = unbound_extra(ports, issued, ca.certificate, doh)
                        config.write_text(
                            benchlib.unbound_config(ports.udp, hints, workdir, extra=extra)
                        )
                        command = [unbound, "-d", "-c", str(config)]
                    if pinning is not None:
                        command = pinning.command(command)
                    log = workdir / f"{label}.log"
                    with benchlib.running(label, command, ports.udp, log) as server:
                        modes = ["dot", "doh"] if label == OURS or doh else ["dot"]
                        result = Result(label)
                        result.hits = measure_hits(
                            server, ports, dnsperf, names_file, workdir, settings, modes, result.cpu
                        )
                        result.cold = measure_cold(server, settings, result.cpu)
                        results.append(result)
    except benchlib.BenchError as error:
        print(f"encrypted: {error}", file=sys.stderr)
        return 1

    versions = [
        f"dnsperf {benchlib.tool_version([dnsperf, '-h'])}",
        f"unbound {benchlib.tool_version([unbound, '-V'])}",
    ]
    if pinning is not None:
        versions.append(f"pinned: resolvers on CPU {pinning.server}, clients on {pinning.clients}")
    report.figures([r.label for r in results], rows(results, settings))
    report.add(
        "",
        "X/unbound: above 1 means X takes more (time); below 1 means X does less (qps).",
        "backend: Unbound serving bench.test. from local data over UDP and DoT on 127.0.0.1; "
        "both resolvers forward udp.bench.test. over UDP and tls.bench.test. over DoT to it.",
    )
    if not doh:
        report.add("this Unbound is built without libnghttp2: no DoH listener to compare with")
    report.data["settings"] = asdict(settings)
    report.data["results"] = [result.summary() for result in results]
    report.emit(versions, args.json)
    return 0


if __name__ == "__main__":
    benchlib.run_main("encrypted", main)
