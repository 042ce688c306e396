"""Running as a system service: systemd readiness, dropping root, and the query log."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from resolver.testing import TestInternet
from tests.daemon_support import free_port, running_daemon


@pytest.fixture
def hints(internet: TestInternet, tmp_path: Path) -> Iterator[Path]:
    with internet.in_thread():
        yield internet.write_hints(tmp_path / "test.hints")


def ask(address: str, port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    request = dns.message.make_query(name, rdtype)
    return dns.query.udp(request, address, port=port, timeout=5)


def test_systemd_is_told_ready_then_stopping(
    hints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(30)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        port = free_port()
        with running_daemon(hints, [f"127.0.0.1:{port}"]):
            assert listener.recv(100) == b"READY=1"
            assert ask("127.0.0.1", port, "www.example.test.").answer
        assert listener.recv(100) == b"STOPPING=1"


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # the effective uid
    raise AssertionError("no Uid line")


def test_root_is_dropped_after_binding_port_53(hints: Path) -> None:
    with running_daemon(hints, ["127.0.0.2:53"], ["--user", "nobody"]) as daemon:
        assert uid_of(daemon.pid) == 65534
        # resolving still works unprivileged, including record types first met after the drop
        assert ask("127.0.0.2", 53, "www.example.test.").answer[0][0].address == "192.0.2.1"
        assert ask("127.0.0.2", 53, "example.test.", "MX").answer
        assert ask("127.0.0.2", 53, "text.example.test.", "TXT").answer


def test_the_query_log_has_a_line_per_query(hints: Path, tmp_path: Path) -> None:
    log = tmp_path / "queries.log"
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--query-log", str(log)]):
        ask("127.0.0.1", port, "www.example.test.")
        ask("127.0.0.1", port, "www.example.test.")
        ask("127.0.0.1", port, "nope.example.test.")
    lines = [line.split() for line in log.read_text().splitlines()]
    assert [line[1:6] for line in lines] == [
        ["127.0.0.1", "www.example.test.", "A", "NOERROR", "udp"],
        ["127.0.0.1", "www.example.test.", "A", "NOERROR", "packet-cache"],
        ["127.0.0.1", "nope.example.test.", "A", "NXDOMAIN", "udp"],
    ]
    assert all(line[0].endswith("Z") and float(line[6]) >= 0 for line in lines)
    # The answer's TTL, for `resolver hitrate`: www's A record (300 s), then the negative TTL
    # of example.test. (min(SOA TTL 3600, MINIMUM 300)).
    assert lines[0][7] == "300" and lines[2][7] == "300"
    assert 0 < int(lines[1][7]) <= 300
