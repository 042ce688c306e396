"""`resolver serve --workers N`: several processes on one address, kept alive by the parent."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest

from resolver.testing import TestInternet
from tests.daemon_support import free_port, run_resolver, running_daemon


@pytest.fixture
def hints(internet: TestInternet, tmp_path: Path) -> Iterator[Path]:
    with internet.in_thread():
        yield internet.write_hints(tmp_path / "test.hints")


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def ask(port: int, name: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)


def test_workers_share_the_address_and_a_dead_one_is_replaced(
    hints: Path, internet: TestInternet
) -> None:
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--workers", "2"]) as daemon:
        assert "(2 workers)" in daemon.banner
        workers = children(daemon.pid)
        assert len(workers) == 2
        # each worker has a cache of its own: the same name asked from many source ports
        # reaches both, and each resolves it once
        for _ in range(40):
            assert ask(port, "www.example.test.").answer[0][0].address == "192.0.2.1"
        example = sum(
            internet.servers[n].query_count for n in ("ns1.example.test.", "ns2.example.test.")
        )
        assert example == 2

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(children(daemon.pid) - {victim}) == 2)
        for _ in range(10):
            assert ask(port, "mail.example.test.").answer
    wait_for(lambda: not children(daemon.pid), timeout=5)


def test_a_worker_that_cannot_bind_is_one_clear_error(hints: Path) -> None:
    finished = run_resolver(
        "serve",
        "--root-hints",
        str(hints),
        "--query-loopback",
        "--workers",
        "2",
        "--listen",
        "192.0.2.1:5300",
    )
    assert finished.returncode != 0
    lines = finished.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("resolver: error: cannot listen on udp")
    assert "Traceback" not in finished.stderr


def _ignore_sigterm_forever(ignoring: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ignoring.set()
    while True:
        time.sleep(0.05)


def test_a_worker_killed_at_the_stop_is_an_error_and_the_timeout_grows_with_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker that does not stop in time is killed, and the stop says so (its cache file
    was not written); with a persistent file the workers get 10 s more per 100,000 entries."""
    import dataclasses
    import multiprocessing

    from resolver.config import CacheConfig, Config
    from resolver.server import workers
    from resolver.server.workers import Supervisor

    plain = Supervisor(Config(cache=CacheConfig(max_entries=200_000)))
    assert plain._stop_timeout() == workers._STOP_TIMEOUT
    cache = CacheConfig(max_entries=200_000, persist_file=tmp_path / "cache.txt")
    assert Supervisor(dataclasses.replace(Config(), cache=cache))._stop_timeout() == (
        workers._STOP_TIMEOUT + 20.0
    )
    monkeypatch.setattr(workers, "_STOP_TIMEOUT", 0.3)
    context = multiprocessing.get_context("fork")
    ignoring = context.Event()
    stubborn = context.Process(target=_ignore_sigterm_forever, args=(ignoring,))
    stubborn.start()
    assert ignoring.wait(10)
    plain._workers[3] = stubborn
    assert plain._stop_all() == [3]
    assert not stubborn.is_alive()


def test_a_worker_signalled_before_it_resets_its_handlers_dies_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A forked worker still holds the supervisor's handler for a moment: a SIGTERM then (the
    supervisor stopping the others after one failed to start) must kill it as the default
    action would, not make it log and act as the supervisor."""
    from resolver.config import Config
    from resolver.server.workers import Supervisor

    supervisor = Supervisor(Config())
    pid = os.fork()
    if pid == 0:  # the child: as a worker between fork and `_worker`'s own handlers
        try:
            supervisor._on_signal(signal.SIGTERM, None)
        finally:
            os._exit(3)  # reached only if the handler let the child live
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    assert not supervisor._stopping
    assert "stopping the workers" not in caplog.text
