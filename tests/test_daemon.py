"""The "point /etc/resolv.conf at it" use, proven with real clients against a real daemon.

Each test starts the loopback test internet in a background thread and `resolver serve` as a
separate process, then asks with the programs an operator would use: `dig` and glibc's stub
resolver (`getent`). Upstream costs are read from the test internet's per-server counters, so a
claim like "a cache hit sends nothing upstream" is checked on real packets.

Nothing here leaves 127.0.0.0/8 or ::1: the daemon gets the test internet's hints and
`--query-loopback`, and glibc is pointed at it inside a private mount namespace, so the
machine's own /etc/resolv.conf is never touched.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from resolver.testing import Fault, TestInternet
from tests.daemon_support import (
    Daemon,
    ensure_command,
    free_port,
    has_ipv6_loopback,
    run_command,
    running_daemon,
)
from tests.helpers import assert_only_the_configured_roots_were_asked

ROOT_SERVERS = ("a.root-servers.test.", "b.root-servers.test.")
TLD_SERVERS = ("ns1.nic.test.", "ns2.nic.test.")
EXAMPLE_SERVERS = ("ns1.example.test.", "ns2.example.test.")


@dataclass(frozen=True)
class Record:
    """One resource record line of dig's output."""

    name: str
    ttl: int
    rdtype: str
    data: str


@dataclass(frozen=True)
class DigResult:
    """The parts of a dig reply the tests look at, plus the raw text for failure messages."""

    status: str
    flags: frozenset[str]
    answer: tuple[Record, ...]
    authority: tuple[Record, ...]
    transport: str
    output: str


def parse_dig(output: str) -> DigResult:
    """Read dig's default output format (header, flags, sections, SERVER line)."""
    status = re.search(r"status: (\w+)", output)
    flags = re.search(r";; flags:([^;]*);", output)
    transport = re.search(r";; SERVER: .*\((\w+)\)", output)
    assert status and flags, f"dig printed no reply header:\n{output}"
    sections: dict[str, list[Record]] = {"ANSWER": [], "AUTHORITY": []}
    current: list[Record] | None = None
    for line in output.splitlines():
        header = re.match(r";; (\w+) SECTION:", line)
        if header:
            current = sections.get(header.group(1))
        elif not line.strip():
            current = None
        elif current is not None and not line.startswith(";"):
            name, ttl, _class, rdtype, *data = line.split()
            current.append(Record(name, int(ttl), rdtype, " ".join(data)))
    return DigResult(
        status=status.group(1),
        flags=frozenset(flags.group(1).split()),
        answer=tuple(sections["ANSWER"]),
        authority=tuple(sections["AUTHORITY"]),
        transport=transport.group(1) if transport else "",
        output=output,
    )


@pytest.fixture(scope="module")
def dig_path() -> str:
    """dig, from Debian's dnsutils, installed on the spot if this machine lacks it."""
    return ensure_command("dig", "dnsutils")


def dig(
    dig_path: str,
    name: str,
    rdtype: str = "A",
    *options: str,
    server: str = "127.0.0.1",
    port: int = 53,
) -> DigResult:
    """Ask `server` once (no retries, so each call is exactly one client query)."""
    command = [dig_path, f"@{server}", "-p", str(port), name, rdtype, "+time=10", "+tries=1"]
    result = run_command([*command, *options])
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.describe()}"
    return parse_dig(result.stdout)


def queries_to(internet: TestInternet, names: tuple[str, ...]) -> int:
    """Upstream queries the servers called `names` have received since the last reset."""
    return sum(internet.servers[name].query_count for name in names)


@pytest.fixture
def live_internet(internet: TestInternet) -> Iterator[TestInternet]:
    """The standard test internet, serving on 127.53.0.0/16 port 53 for the test."""
    with internet.in_thread():
        yield internet


@pytest.fixture
def hints(live_internet: TestInternet, tmp_path: Path) -> Path:
    return live_internet.write_hints(tmp_path / "test.hints")


@pytest.fixture
def daemon(hints: Path) -> Iterator[Daemon]:
    """`resolver serve` on 127.0.0.1:53, the address a resolv.conf would name."""
    with running_daemon(hints, ["127.0.0.1:53"]) as running:
        yield running


def test_dig_gets_a_recursive_answer_then_a_cache_hit(
    daemon: Daemon, live_internet: TestInternet, dig_path: str
) -> None:
    first = dig(dig_path, "www.example.test")
    assert first.status == "NOERROR", first.output
    assert [(r.name, r.rdtype, r.data) for r in first.answer] == [
        ("www.example.test.", "A", "192.0.2.1")
    ], first.output
    assert {"qr", "rd", "ra"} <= first.flags, first.output
    assert "aa" not in first.flags, first.output
    assert first.authority == (), first.output
    assert live_internet.total_queries() > 0

    live_internet.reset_counters()
    second = dig(dig_path, "www.example.test")
    assert live_internet.total_queries() == 0, "a cached answer must cost no upstream query"
    assert [(r.name, r.data) for r in second.answer] == [("www.example.test.", "192.0.2.1")]
    assert 0 <= second.answer[0].ttl <= 300, second.output
    assert {"qr", "rd", "ra"} <= second.flags
    assert "aa" not in second.flags


def test_dig_over_tcp(daemon: Daemon, dig_path: str) -> None:
    result = dig(dig_path, "www.example.test", "A", "+tcp")
    assert result.transport == "TCP", result.output
    assert [r.data for r in result.answer] == ["192.0.2.1"], result.output
    assert "aa" not in result.flags


def test_dig_keeps_one_tcp_connection_for_several_queries(daemon: Daemon, dig_path: str) -> None:
    """RFC 7766: a client may send several queries over one TCP connection."""
    command = [
        dig_path, "@127.0.0.1", "-p", "53", "+tcp", "+keepopen", "+time=10", "+tries=1",
        "www.example.test", "A", "mail.example.test", "A",
    ]  # fmt: skip
    result = run_command(command)
    assert result.returncode == 0, result.describe()
    assert "192.0.2.1" in result.stdout, result.stdout
    assert "192.0.2.2" in result.stdout, result.stdout


def test_dig_follows_a_cname_into_another_zone(daemon: Daemon, dig_path: str) -> None:
    result = dig(dig_path, "chain.example.test")
    assert result.status == "NOERROR", result.output
    assert [(r.name, r.rdtype, r.data) for r in result.answer] == [
        ("chain.example.test.", "CNAME", "www.other.test."),
        ("www.other.test.", "A", "198.51.100.1"),
    ], result.output


def test_dig_nxdomain_carries_the_soa(daemon: Daemon, dig_path: str) -> None:
    result = dig(dig_path, "nope.example.test")
    assert result.status == "NXDOMAIN", result.output
    assert result.answer == (), result.output
    assert [(r.name, r.rdtype) for r in result.authority] == [("example.test.", "SOA")]
    assert result.authority[0].data.startswith("ns1.example.test. hostmaster.example.test.")
    assert "aa" not in result.flags


def test_dig_big_answer_is_truncated_over_udp_and_complete_over_tcp(
    daemon: Daemon, dig_path: str
) -> None:
    udp = dig(dig_path, "big.example.test", "TXT", "+ignore")
    assert "tc" in udp.flags, udp.output
    assert udp.transport == "UDP", udp.output

    tcp = dig(dig_path, "big.example.test", "TXT", "+tcp")
    assert tcp.status == "NOERROR", tcp.output
    assert "tc" not in tcp.flags
    texts = sorted(r.data for r in tcp.answer if r.rdtype == "TXT")
    assert len(texts) == 40, tcp.output
    assert texts[0].startswith('"record-00-') and texts[-1].startswith('"record-39-')


def test_sibling_name_skips_the_root_and_the_tld(
    daemon: Daemon, live_internet: TestInternet, dig_path: str
) -> None:
    dig(dig_path, "www.example.test")
    live_internet.reset_counters()

    result = dig(dig_path, "mail.example.test")
    assert [r.data for r in result.answer] == ["192.0.2.2"], result.output
    assert queries_to(live_internet, ROOT_SERVERS) == 0
    assert queries_to(live_internet, TLD_SERVERS) == 0
    assert queries_to(live_internet, EXAMPLE_SERVERS) >= 1, "mail was not cached: it was asked"


def getent_ahosts(name: str, tmp_path: Path) -> tuple[int, set[str], str]:
    """`getent ahosts NAME` through glibc with a resolv.conf naming only 127.0.0.1.

    The resolv.conf is bind-mounted in a private mount namespace (`unshare -m`), so the real
    one is never modified and vanishes with the namespace. nsswitch.conf gets the same treatment
    (`hosts: files dns`) so that a machine using mdns or systemd-resolved still asks DNS.
    """
    ensure_command("getent", "libc-bin")
    ensure_command("unshare", "util-linux")
    ensure_command("mount", "mount")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n", encoding="ascii")
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("hosts: files dns\n", encoding="ascii")
    script = (
        'mount --bind "$1" /etc/resolv.conf && '
        '{ [ ! -e /etc/nsswitch.conf ] || mount --bind "$2" /etc/nsswitch.conf; } && '
        'exec getent ahosts "$3"'
    )
    command = ["unshare", "-m", "sh", "-c", script, "sh", str(resolv), str(nsswitch), name]
    result = run_command(command)
    assert "mount" not in result.stderr and "unshare" not in result.stderr, result.describe()
    addresses = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    return result.returncode, addresses, result.describe()


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare -m and mount --bind need root")
def test_glibc_resolves_through_the_daemon(
    daemon: Daemon, live_internet: TestInternet, tmp_path: Path
) -> None:
    returncode, addresses, described = getent_ahosts("www.example.test", tmp_path)
    assert returncode == 0, described
    assert "192.0.2.1" in addresses, described
    # glibc asks for AAAA too (unless configured not to); when it does, the answer is there.
    assert addresses <= {"192.0.2.1", "2001:db8::1"}, described
    assert live_internet.total_queries() > 0, "the answer must have come through the daemon"

    returncode, addresses, described = getent_ahosts("nope.example.test", tmp_path)
    assert returncode == 2, f"getent reports a name that does not exist with 2:\n{described}"
    assert addresses == set()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_daemon_cleanly(
    hints: Path, dig_path: str, signum: signal.Signals
) -> None:
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"]) as daemon:
        # A daemon that has served a query (and so has upstream sockets open) stops cleanly too.
        assert [r.data for r in dig(dig_path, "www.example.test", port=port).answer] == [
            "192.0.2.1"
        ]
        finished = daemon.stop(signum)
    assert finished.returncode == 0, finished.describe()
    assert "resolver stopped" in finished.stdout, finished.describe()
    assert "Traceback" not in finished.stderr, finished.describe()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_listens_on_ipv6_and_ipv4_together(hints: Path, dig_path: str) -> None:
    port = free_port("::1")
    with running_daemon(hints, [f"[::1]:{port}", f"127.0.0.1:{port}"]) as daemon:
        assert f"[::1]:{port}" in daemon.banner
        over_udp = dig(dig_path, "www.example.test", server="::1", port=port)
        assert [r.data for r in over_udp.answer] == ["192.0.2.1"], over_udp.output
        over_tcp = dig(dig_path, "mail.example.test", "A", "+tcp", server="::1", port=port)
        assert [r.data for r in over_tcp.answer] == ["192.0.2.2"], over_tcp.output
        over_ipv4 = dig(dig_path, "www.example.test", port=port)
        assert [r.data for r in over_ipv4.answer] == ["192.0.2.1"], over_ipv4.output


def test_without_query_loopback_nothing_is_sent_to_the_test_internet(
    hints: Path, live_internet: TestInternet, dig_path: str
) -> None:
    """do-not-query-localhost: the hints file's loopback roots are the operator's choice and are
    asked, the loopback glue they hand out is refused, so SERVFAIL and no TLD query."""
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"], query_loopback=False):
        result = dig(dig_path, "www.example.test", port=port)
        assert result.status == "SERVFAIL", result.output
        assert_only_the_configured_roots_were_asked(live_internet)


def test_behind_a_dns_interceptor_the_daemon_says_servfail_with_ede_22_never_nxdomain(
    hints: Path, live_internet: TestInternet, dig_path: str
) -> None:
    """Every server of the network answers "NXDOMAIN, RA, no AA", as a DNS interceptor does:
    `resolver serve` must not pass that on as the truth about any name."""
    live_internet.set_fault_everywhere(Fault.INTERCEPT)
    with running_daemon(hints):
        for name in ("www.example.test", "nope.example.test", "test"):
            result = dig(dig_path, name)
            assert result.status == "SERVFAIL", result.output
            assert "EDE: 22 (No Reachable Authority)" in result.output, result.output
