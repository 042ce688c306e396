"""The persistent and the shared cache through the real daemon, on the test internet, with a
real `redis-server` (installed if missing, as tests get `dig`): restarts with zero upstream
queries, two daemons sharing one Redis, Redis stopped mid-run, poisoned values, TTL aging."""

from __future__ import annotations

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
from resolver.testing.redis_server import RedisServer
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
    [b"\xff\xfe not text", b"$VERSION 2\n$TIME 1\nanswer www.test. 300 IN A", b"$VERSION 99\n"],
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
        file.write("$VERSION 2\n$TIME 1000\n")
        for number in range(5000):
            file.write(f"answer n{number}.test. 300 IN A 192.0.2.1\n")
    cache = RecordCache(CacheConfig(max_entries=100), lambda: 1010.0)
    restored = persist.load(path, cache, 1010.0, 100)
    assert restored is not None and restored.loaded == 100 and len(cache) == 100


@pytest.mark.parametrize("how", ["symlink", "group-writable", "world-writable", "directory"])
def test_a_cache_file_others_could_have_written_is_ignored(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The file is believed like the authorities' own data: a link to elsewhere, a file that
    another user may change, or no file at all is one log line and a cold start."""
    from resolver.cache.records import RecordCache
    from resolver.config import CacheConfig
    from resolver.server import persist

    genuine = tmp_path / "genuine.txt"
    genuine.write_text("$VERSION 2\n$TIME 1000\nanswer a.test. 300 IN A 192.0.2.1\n")
    genuine.chmod(0o600)
    path = tmp_path / "cache.txt"
    if how == "symlink":
        path.symlink_to(genuine)
    elif how == "directory":
        path.mkdir()
    else:
        path.write_bytes(genuine.read_bytes())
        path.chmod(0o620 if how == "group-writable" else 0o602)
    cache = RecordCache(CacheConfig(), lambda: 1010.0)
    with caplog.at_level("WARNING"):
        assert persist.load(path, cache, 1010.0, 100) is None
    assert len(cache) == 0
    reason = {
        "symlink": "a symbolic link",
        "group-writable": "writable by group or others",
        "world-writable": "writable by group or others",
        "directory": "not a regular file",
    }[how]
    assert [r.getMessage() for r in caplog.records if reason in r.getMessage()], caplog.text
    assert persist.load(genuine, cache, 1010.0, 100) is not None and len(cache) == 1


# -- the shared cache --------------------------------------------------------------------------


Redis = RedisServer


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(ensure_command("redis-server", "redis-server"), tmp_path)
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
    names = ["www.example.test.", "www.other.test.", "alias.example.test.", "mail.example.test."]
    planted = [
        b"garbage",
        # a well-formed value for another name
        None,
        b"RSC\x01" + b"\x00" * 10,  # truncated
        b"RSC\x01" + b"\x00" * 4_000_000,  # far larger than any value: read cut, then dropped
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
        assert stats(own)["shared_dropped"] == 4


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


def test_with_workers_one_workers_resolution_is_answered_by_the_other_from_the_shared_cache(
    hints: Path, internet: TestInternet, tmp_path: Path, redis: Redis
) -> None:
    """`--workers 2`: SO_REUSEPORT gives each client socket (4-tuple) to one worker. The name is
    resolved once, through one socket; then fresh sockets (new source ports) ask until the
    workers' counters show a shared-cache hit, i.e. the other worker answered: from Redis, with
    not one upstream query for any of those asks."""
    port = free_port()
    config = shared_config(tmp_path, redis, "workers.toml")
    config.write_text(
        f'control_socket = "{tmp_path}/workers.sock"\n' + config.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    name = "www.example.test."
    with running_daemon(
        hints, [f"127.0.0.1:{port}"], ["--workers", "2", "--config", str(config)]
    ) as daemon:
        assert "(2 workers)" in daemon.banner
        first = ask(port, name)
        key = shared_key(
            SECRET.encode(), PREFIX.encode(), dns.name.from_text(name), dns.rdatatype.A, 1
        )
        deadline = time.monotonic() + 10
        while redis.command("EXISTS", key) != b":1" and time.monotonic() < deadline:
            time.sleep(0.05)
        upstream = internet.total_queries()
        asked = 0
        while stats(config)["shared_hits"] == 0:
            asked += 1
            assert asked <= 200, "no ask ever reached the second worker"
            for _ in range(10):  # each from a socket of its own: a new source port
                reply = ask(port, name)
                assert record_lines(reply)[0][2] == record_lines(first)[0][2]
        assert internet.total_queries() == upstream, "the second worker asked no authority"
        assert stats(config)["shared_hits"] == 1, "once in its cache, the second worker's own"


# -- where the shared cache is: unix://, rediss://, a password, a database, cluster mode --------


@pytest.mark.parametrize("kind", ["unix", "tls", "password-and-database"])
def test_every_kind_of_url_reaches_redis(
    hints: Path, internet: TestInternet, tmp_path: Path, kind: str
) -> None:
    """Written by one member through the configured URL, read by another with zero upstream
    queries; the key is where the settings say (database 5, behind the password)."""
    import tempfile

    binary = ensure_command("redis-server", "redis-server")
    with tempfile.TemporaryDirectory(prefix="rs-", dir="/tmp") as short:  # a short socket path
        server = RedisServer(
            binary,
            Path(short),
            unix_socket=kind == "unix",
            tls=kind == "tls",
            password="pass word/#1" if kind == "password-and-database" else None,
        )
        server.start()
        try:
            extra: dict[str, str] = {}
            url = server.url
            if kind == "unix":
                url = server.unix_url
            elif kind == "tls":
                url = server.tls_url
            database = 0
            if kind == "password-and-database":
                database = 5
                extra = {"password": '"pass word/#1"', "database": "5"}
            config = tmp_path / "url.toml"
            config.write_text(
                "\n".join(
                    [
                        "[shared_cache]",
                        f'url = "{url}"',
                        f'secret = "{SECRET}"',
                        f'key_prefix = "{PREFIX}"',
                        "lookup_timeout_ms = 500",
                        "connect_timeout_ms = 2000",
                        *(f"{k} = {v}" for k, v in extra.items()),
                    ]
                )
                + "\n",
                encoding="utf-8",
            )
            key = shared_key(
                SECRET.encode(),
                PREFIX.encode(),
                dns.name.from_text("www.example.test."),
                dns.rdatatype.A,
                1,
            )
            with member(hints, config, tmp_path, "one") as (port, own):
                assert ask(port, "www.example.test.").answer
                deadline = time.monotonic() + 10
                while (
                    server.command("EXISTS", key, database=database) != b":1"
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                assert server.command("EXISTS", key, database=database) == b":1"
                assert stats(own)["shared_errors"] == 0
            if database:
                assert server.command("EXISTS", key) == b":0", "not in database 0"
            upstream = internet.total_queries()
            with member(hints, config, tmp_path, "two") as (port, own):
                assert ask(port, "www.example.test.").answer[0][0].address == "192.0.2.1"
                assert internet.total_queries() == upstream
                assert stats(own)["shared_hits"] == 1
        finally:
            server.stop()


def test_cluster_mode_hands_the_url_and_settings_to_coredis_cluster_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No cluster is started: the client class and its arguments are what is checked."""
    import coredis

    from resolver.config import SharedCacheConfig
    from resolver.server.sharedcache import SharedCacheClient

    seen: dict[str, object] = {}

    def from_url(cls: type, url: str, **options: object) -> object:
        seen.update(kind=cls, url=url, **options)
        return object()

    monkeypatch.setattr(coredis.RedisCluster, "from_url", classmethod(from_url))
    monkeypatch.setattr(coredis.Redis, "from_url", classmethod(from_url))
    settings = SharedCacheConfig(
        url="redis://127.0.0.1:7000", secret=SECRET, cluster=True, password="pw", database=3
    )
    SharedCacheClient(settings)
    assert seen["kind"] is coredis.RedisCluster and seen["url"] == "redis://127.0.0.1:7000"
    assert seen["password"] == "pw" and "db" not in seen, "a cluster has only database 0"
    seen.clear()
    SharedCacheClient(SharedCacheConfig(url="redis://127.0.0.1:7000", secret=SECRET, database=3))
    assert seen["kind"] is not coredis.RedisCluster and seen["db"] == 3
