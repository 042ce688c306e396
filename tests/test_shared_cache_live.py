"""The persistent and the shared cache through the real daemon, on the test internet, with a
real `redis-server` (installed if missing, as tests get `dig`): restarts with zero upstream
queries, two daemons sharing one Redis, Redis stopped mid-run, poisoned values, TTL aging."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from resolver.cache.shared import shared_key
from resolver.testing import TestInternet
from tests.daemon_support import ensure_command, free_port, run_resolver, running_daemon

SECRET = "fleet-secret-for-tests-0123456789"
PREFIX = "test:"


@pytest.fixture
def hints(internet: TestInternet, tmp_path: Path) -> Iterator[Path]:
    with internet.in_thread():
        yield internet.write_hints(tmp_path / "test.hints")


def ask(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=5)


def record_lines(reply: dns.message.Message) -> list[tuple[str, int, str]]:
    return [
        (str(rrset.name), rrset.ttl, rdata.to_text()) for rrset in reply.answer for rdata in rrset
    ]


# -- the persistent cache ----------------------------------------------------------------------


def test_a_restart_keeps_the_cache_and_ages_its_ttls(
    hints: Path, internet: TestInternet, tmp_path: Path
) -> None:
    port = free_port()
    cache_file = tmp_path / "cache.txt"
    config = tmp_path / "resolver.toml"
    config.write_text(f'[cache]\npersist_file = "{cache_file}"\n', encoding="utf-8")
    names = ["www.example.test.", "alias.example.test.", "nope.example.test."]
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--config", str(config)]):
        before = {name: ask(port, name) for name in names}
    assert before["nope.example.test."].rcode() == dns.rcode.NXDOMAIN
    assert cache_file.exists() and oct(cache_file.stat().st_mode & 0o777) == "0o600"
    time.sleep(2.1)
    upstream = internet.total_queries()
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--config", str(config)]) as daemon:
        after = {name: ask(port, name) for name in names}
        assert internet.total_queries() == upstream, "answered from the loaded cache alone"
        assert "entries loaded" in daemon.stderr_text()
    for name in names:
        assert after[name].rcode() == before[name].rcode()
        old, new = record_lines(before[name]), record_lines(after[name])
        assert [(n, d) for n, _, d in new] == [(n, d) for n, _, d in old]
        for (_, old_ttl, _), (_, new_ttl, _) in zip(old, new, strict=True):
            assert old_ttl - 10 < new_ttl <= old_ttl - 2, "TTLs count the time on disk"


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not text", b"$VERSION 1\n$TIME 1\nanswer www.test. 300 IN A", b"$VERSION 99\n"],
    ids=["binary", "truncated", "other-version"],
)
def test_a_bad_cache_file_is_one_line_and_a_cold_start(
    hints: Path, internet: TestInternet, tmp_path: Path, content: bytes
) -> None:
    port = free_port()
    cache_file = tmp_path / "cache.txt"
    cache_file.write_bytes(content)
    config = tmp_path / "resolver.toml"
    config.write_text(f'[cache]\npersist_file = "{cache_file}"\n', encoding="utf-8")
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--config", str(config)]) as daemon:
        assert ask(port, "www.example.test.").rcode() == dns.rcode.NOERROR
        stderr = daemon.stderr_text()
    assert stderr.count("ignored") == 1 and "Traceback" not in stderr, stderr
    assert "www.example.test." in cache_file.read_text(encoding="utf-8"), "rewritten at the stop"


def test_a_huge_file_is_read_no_further_than_max_entries(tmp_path: Path) -> None:
    from resolver.cache.records import RecordCache
    from resolver.config import CacheConfig
    from resolver.server import persist

    path = tmp_path / "cache.txt"
    with path.open("w", encoding="utf-8") as file:
        file.write("$VERSION 1\n$TIME 1000\n")
        for number in range(5000):
            file.write(f"answer n{number}.test. 300 IN A 192.0.2.1\n")
    cache = RecordCache(CacheConfig(max_entries=100), lambda: 1010.0)
    restored = persist.load(path, cache, 1010.0, 100)
    assert restored is not None and restored.loaded == 100 and len(cache) == 100


# -- the shared cache --------------------------------------------------------------------------


class Redis:
    """A redis-server of the test's own on a loopback port, without persistence."""

    def __init__(self, tmp_path: Path) -> None:
        self.binary = ensure_command("redis-server", "redis-server")
        self.port = free_port()
        self.directory = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a Redis stuck or swapping)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        self.process = None

    def command(self, *args: bytes | str) -> bytes:
        """One RESP command, and the first line of the reply (or a bulk string's bytes)."""
        parts = [arg if isinstance(arg, bytes) else arg.encode() for arg in args]
        wire = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(wire)
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            line, _, rest = data.partition(b"\r\n")
            if not line.startswith(b"$") or line == b"$-1":
                return line
            length = int(line[1:])
            while len(rest) < length + 2:
                rest += sock.recv(65536)
            return rest[:length]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def shared_config(tmp_path: Path, redis: Redis, name: str, **extra: str) -> Path:
    lines = [
        "[shared_cache]",
        f'url = "{redis.url}"',
        f'secret = "{SECRET}"',
        f'key_prefix = "{PREFIX}"',
        "lookup_timeout_ms = 200",
        *(f"{key} = {value}" for key, value in extra.items()),
    ]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stats(config: Path) -> dict[str, int]:
    import json

    finished = run_resolver("stats", "--json", "--config", str(config))
    assert finished.returncode == 0, finished.describe()
    return dict(json.loads(finished.stdout))


@contextmanager
def member(hints: Path, config: Path, tmp_path: Path, name: str) -> Iterator[tuple[int, Path]]:
    """A resolver daemon of the fleet: its port and a config file with its control socket."""
    port = free_port()
    own = tmp_path / f"{name}.toml"
    own.write_text(
        f'control_socket = "{tmp_path / name}.sock"\n' + config.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--config", str(own)]):
        yield port, own


def test_a_name_resolved_by_one_member_is_answered_by_another_without_upstream_queries(
    hints: Path, internet: TestInternet, tmp_path: Path, redis: Redis
) -> None:
    config = shared_config(tmp_path, redis, "fleet.toml")
    with (
        member(hints, config, tmp_path, "one") as (one, one_config),
        member(hints, config, tmp_path, "two") as (two, two_config),
    ):
        first = ask(one, "alias.example.test.")
        key = shared_key(
            SECRET.encode(),
            PREFIX.encode(),
            dns.name.from_text("alias.example.test."),
            dns.rdatatype.A,
            1,
        )
        deadline = time.monotonic() + 10
        while redis.command("EXISTS", key) != b":1" and time.monotonic() < deadline:
            time.sleep(0.05)  # the write happens after the reply
        ttl = int(redis.command("TTL", key)[1:])
        assert 300 < ttl <= 300 + 86400, "EX: the answer's TTL plus the serve-stale window"
        time.sleep(1.1)
        upstream = internet.total_queries()
        second = ask(two, "alias.example.test.")
        assert internet.total_queries() == upstream, "member two asked no authority"
        assert [(n, d) for n, _, d in record_lines(second)] == [
            (n, d) for n, _, d in record_lines(first)
        ]
        assert all(
            new < old
            for (_, old, _), (_, new, _) in zip(
                record_lines(first), record_lines(second), strict=True
            )
        ), "TTLs aged on read"
        assert stats(two_config)["shared_hits"] == 1
        assert stats(one_config)["shared_stores"] >= 1


def test_a_poisoned_value_is_dropped_and_counted(
    hints: Path, internet: TestInternet, tmp_path: Path, redis: Redis
) -> None:
    config = shared_config(tmp_path, redis, "fleet.toml")
    names = ["www.example.test.", "www.other.test.", "alias.example.test."]
    planted = [
        b"garbage",
        # a well-formed value for another name
        None,
        b"RSC\x01" + b"\x00" * 10,  # truncated
    ]
    with member(hints, config, tmp_path, "one") as (port, own):
        ask(port, "evil.example.test.")  # warm the delegations; NXDOMAIN
        from resolver.cache.shared import encode

        other = dns.message.from_text(
            "id 1\nflags QR\n;QUESTION\nwww.example.test. IN A\n;ANSWER\n"
            "www.example.test. 300 IN A 192.0.2.1\n"
        )
        forged = encode(
            dns.name.from_text("www.example.test."),
            dns.rdatatype.A,
            dns.rcode.NOERROR,
            (other.answer[0],),
            (),
            time.time(),
        )
        assert forged is not None
        planted[1] = forged[0]  # a genuine value, but for www.example.test., not www.other.test.
        for name, value in zip(names, planted, strict=True):
            assert value is not None
            key = shared_key(
                SECRET.encode(), PREFIX.encode(), dns.name.from_text(name), dns.rdatatype.A, 1
            )
            assert redis.command("SET", key, value) == b"+OK"
        for name in names:
            reply = ask(port, name)
            assert reply.rcode() == dns.rcode.NOERROR
            assert all(str(rrset.name) in (name, "www.example.test.") for rrset in reply.answer)
        assert record_lines(ask(port, "www.other.test."))[0][2] == "198.51.100.1"
        assert stats(own)["shared_dropped"] == 3


@pytest.mark.parametrize("how", ["stopped", "frozen"])
def test_redis_stopped_mid_run_costs_clients_nothing_but_a_bounded_wait(
    hints: Path, internet: TestInternet, tmp_path: Path, redis: Redis, how: str
) -> None:
    config = shared_config(tmp_path, redis, "fleet.toml", breaker_errors="3")
    with member(hints, config, tmp_path, "one") as (port, own):
        assert ask(port, "www.example.test.").rcode() == dns.rcode.NOERROR
        redis.stop() if how == "stopped" else redis.freeze()
        times = []
        for name in (
            "www.other.test.",
            "alias.example.test.",
            "chain.example.test.",
            "nope.example.test.",
            "www.d2.d1.deep.test.",
        ):
            started = time.monotonic()
            reply = ask(port, name)
            times.append(time.monotonic() - started)
            assert reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
        counters = stats(own)
        assert counters["shared_errors"] >= 3 and counters["shared_skipped"] >= 1
        print(f"answer times with Redis {how}: {[round(t * 1000, 1) for t in times]} ms")
        assert max(times) < 3.0, "answered well within the client's timeout"
