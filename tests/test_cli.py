"""The command line as an operator meets it: `resolver query`, and how `resolver` fails.

Every command runs as a real process (`python -m resolver`), because the promise under test is
about the process: its stdout, one line on stderr, its exit status, and no traceback. Resolution
only ever happens against the loopback test internet (`--root-hints` of the test internet plus
`--query-loopback`); the bundled IANA hints are checked by parsing them, never by resolving.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

import resolver
from resolver.config import Config
from resolver.core.hints import load_root_hints
from resolver.testing import TestInternet
from tests.daemon_support import Finished, ensure_command, free_port, run_command, run_resolver
from tests.helpers import assert_only_the_configured_roots_were_asked


@pytest.fixture
def live_internet(internet: TestInternet) -> Iterator[TestInternet]:
    """The standard test internet, serving on 127.53.0.0/16 port 53 for the test."""
    with internet.in_thread():
        yield internet


@pytest.fixture
def hints(internet: TestInternet, tmp_path: Path) -> Path:
    """The test internet's root hints (writing them needs no running server)."""
    return internet.write_hints(tmp_path / "test.hints")


def query(name: str, *args: str, hints: Path) -> Finished:
    """`resolver query` against the unsigned test internet (no anchor fits it: `--no-validate`)."""
    return run_resolver(
        "query", name, *args, "--root-hints", str(hints), "--query-loopback", "--no-validate"
    )


def test_query_trace_prints_every_step_of_the_walk(
    live_internet: TestInternet, hints: Path
) -> None:
    result = query("www.example.test", "--trace", hints=hints)
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()

    def first(text: str) -> int:
        found = [index for index, line in enumerate(lines) if text in line]
        assert found, f"{text!r} missing from the trace:\n{result.stdout}"
        return found[0]

    root_asked = first("[127.53.0.")
    tld_referral = first("referral to test.")
    tld_asked = first("[127.53.1.")
    zone_referral = first("referral to example.test.")
    zone_asked = first("[127.53.2.")
    answer = first("answer: www.example.test. 300 IN A 192.0.2.1")
    summary = first(";; NOERROR; ")
    assert root_asked < tld_referral < tld_asked < zone_referral < zone_asked < answer < summary
    assert lines[-1] == "www.example.test. 300 IN A 192.0.2.1", result.stdout
    assert result.stderr.count("Traceback") == 0


def test_query_nxdomain_prints_the_soa(live_internet: TestInternet, hints: Path) -> None:
    result = query("nope.example.test", hints=hints)
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert lines[0].startswith(";; NXDOMAIN"), result.stdout
    assert lines[1:] == [
        "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. "
        "1 7200 3600 1209600 300"
    ], result.stdout


def test_query_other_type(live_internet: TestInternet, hints: Path) -> None:
    result = query("www.example.test", "AAAA", hints=hints)
    assert result.returncode == 0, result.describe()
    assert result.stdout.splitlines()[-1] == "www.example.test. 300 IN AAAA 2001:db8::1"


def test_no_upstream_query_to_loopback_without_the_flag(
    live_internet: TestInternet, hints: Path
) -> None:
    """Like Unbound's do-not-query-localhost: loopback name servers learnt from the network are
    never asked by default; the hints file's own (the operator's choice) are."""
    result = run_resolver("query", "www.example.test", "--root-hints", str(hints))
    assert result.returncode == 1, result.describe()
    assert result.stdout.startswith(";; SERVFAIL"), result.describe()
    assert_only_the_configured_roots_were_asked(live_internet)


def test_bundled_iana_hints_are_the_default() -> None:
    """The default hints ship inside the package (so a wheel install has them) and parse.

    Only parsed: resolving with them would send packets to the real root servers.
    """
    default = Config().root_hints
    package = Path(resolver.__file__).resolve().parent
    assert default.resolve().parent == package
    assert default.is_file()
    hints = load_root_hints(default)
    names = {rdata.target for rdata in hints.ns}
    expected = {dns.name.from_text(f"{letter}.root-servers.net.") for letter in "abcdefghijklm"}
    assert names == expected
    assert all(hints.addresses.get(name) for name in names), "every root name has an address"
    assert hints.ns.rdtype == dns.rdatatype.NS


# --- errors: one line on stderr, non-zero exit, no traceback ------------------------------------


def assert_one_line_error(result: Finished, *fragments: str) -> None:
    """The error contract of DESIGN.md: exactly one `resolver: error:` line, non-zero exit."""
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("resolver: error: "), result.describe()
    for fragment in fragments:
        assert fragment in lines[0], result.describe()


def serve(*args: str, hints: Path, listen: str | None = None) -> Finished:
    """`resolver serve` that is expected to fail at startup.

    It gets the test internet's hints and a free high port, so that if it wrongly started it
    would neither bind port 53 nor ever ask a real root server; `run_command`'s timeout then
    kills it and the test fails on the exit status.
    """
    endpoint = listen or f"127.0.0.1:{free_port()}"
    return run_resolver("serve", "--listen", endpoint, "--root-hints", str(hints), *args)


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"])
def test_port_already_in_use(hints: Path, kind: socket.SocketKind) -> None:
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        port = taken.getsockname()[1]
        result = serve(hints=hints, listen=f"127.0.0.1:{port}")
    assert_one_line_error(result, f"127.0.0.1:{port}", "in use")


def setpriv_without(capabilities: str) -> list[str]:
    """A command prefix that runs a program as root minus `capabilities` (comma-separated).

    Dropping them from the bounding set is enough: exec recomputes root's permitted set from it.
    """
    setpriv = ensure_command("setpriv", "util-linux")
    dropped = ",".join(f"-{capability}" for capability in capabilities.split(","))
    return [setpriv, f"--bounding-set={dropped}"]


def privileged_port_is_denied(prefix: list[str]) -> bool:
    """Whether binding 127.0.0.1:53 under `prefix` really fails with EACCES on this machine.

    It does not where net.ipv4.ip_unprivileged_port_start is lowered, or where setpriv itself
    cannot drop capabilities; then the test has nothing to prove.
    """
    probe = (
        "import errno, socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n"
        "    s.bind(('127.0.0.1', 53))\n"
        "except OSError as e:\n"
        "    sys.exit(0 if e.errno == errno.EACCES else 3)\n"
        "sys.exit(4)\n"
    )
    return run_command([*prefix, sys.executable, "-c", probe]).returncode == 0


def test_no_privilege_for_port_53(hints: Path) -> None:
    prefix = setpriv_without("net_bind_service") if os.geteuid() == 0 else []
    if not privileged_port_is_denied(prefix):
        pytest.skip("binding port 53 is not denied here (unprivileged_port_start is lowered?)")
    result = run_resolver(
        "serve", "--listen", "127.0.0.1:53", "--root-hints", str(hints), prefix=prefix
    )
    assert_one_line_error(result, "127.0.0.1:53", "Permission denied")


def unreadable_file(tmp_path: Path, hints: Path) -> tuple[Path, list[str]]:
    """A hints file the resolver may not read, and the prefix that makes it so for root too."""
    locked = tmp_path / "locked.hints"
    locked.write_bytes(hints.read_bytes())
    locked.chmod(0)
    prefix = setpriv_without("dac_override,dac_read_search") if os.geteuid() == 0 else []
    return locked, prefix


@pytest.mark.parametrize("command", ["serve", "query"])
def test_unreadable_hints_file(hints: Path, tmp_path: Path, command: str) -> None:
    locked, prefix = unreadable_file(tmp_path, hints)
    args = [command, "--root-hints", str(locked)]
    args += ["--listen", f"127.0.0.1:{free_port()}"] if command == "serve" else ["x.test"]
    result = run_resolver(*args, prefix=prefix)
    assert_one_line_error(result, str(locked))


@pytest.mark.parametrize("command", ["serve", "query"])
@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "No such file"),
        (b"garbage !!! this is not a zone file\n", "not a valid root hints file"),
        (b"\xff\xfe\x00 binary", "cannot read"),
        (b"a.root-servers.test. 3600 A 127.53.0.1\n", "no NS records"),
        (b". 3600 NS a.root-servers.test.\n", "no A or AAAA"),
    ],
    ids=["missing", "garbage", "not-utf8", "no-root-ns", "no-addresses"],
)
def test_malformed_or_missing_hints_file(
    tmp_path: Path, command: str, content: bytes | None, fragment: str
) -> None:
    path = tmp_path / "bad.hints"
    if content is not None:
        path.write_bytes(content)
    if command == "serve":
        result = serve(hints=path)
    else:
        result = run_resolver("query", "x.test", "--root-hints", str(path), "--query-loopback")
    assert_one_line_error(result, str(path), fragment)


def test_hints_path_is_a_directory(tmp_path: Path) -> None:
    result = run_resolver("query", "x.test", "--root-hints", str(tmp_path))
    assert_one_line_error(result, "--root-hints")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("nonsense", "'nonsense'"),
        ("127.0.0.1:99999", "99999"),
        ("127.0.0.1:0", "'0'"),
        ("127.0.0.1:", "port"),
        ("[::1", "[::1"),
        ("[::1]x53", "[::1]x53"),
        ("[127.0.0.1]:53", "IPv6"),
        ("localhost:53", "localhost"),
        ("256.1.1.1:53", "256.1.1.1"),
    ],
)
def test_bad_listen_value(hints: Path, value: str, fragment: str) -> None:
    result = serve(hints=hints, listen=value)
    assert_one_line_error(result, "--listen", fragment)


@pytest.mark.parametrize("value", ["banana", "10.0.0.0/99", "10.0.0.0/8/8", ""])
def test_bad_allow_value(hints: Path, value: str) -> None:
    result = serve("--allow", value, hints=hints)
    assert_one_line_error(result, "--allow")


def test_bad_cache_size(hints: Path) -> None:
    result = serve("--cache-size", "0", hints=hints)
    assert_one_line_error(result, "--cache-size")


@pytest.mark.parametrize("rdtype", ["BOGUS", "AXFR", "IXFR", "OPT"])
def test_unknown_or_unqueryable_record_type(hints: Path, rdtype: str) -> None:
    result = query("www.example.test", rdtype, hints=hints)
    assert_one_line_error(result, "TYPE", rdtype)


def test_bad_query_name(hints: Path) -> None:
    result = query("a..b", hints=hints)
    assert_one_line_error(result, "a..b")


def test_unknown_command_and_option() -> None:
    assert_one_line_error(run_resolver("resolve-everything"), "resolve-everything")
    assert_one_line_error(run_resolver("serve", "--no-such-flag"), "--no-such-flag")
