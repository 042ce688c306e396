"""Defects a hostile review found in the first version of the engine, kept as regressions.

Each test failed on that version (commit be860e6); its docstring says what went wrong and why
it mattered: TCP clients that stop reading, timers that kept finished questions alive or
escaped `tick`, accounting that counted a query twice, calls without `run` that hung.
"""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
import trio

from resolver.config import Limits
from resolver.core.actions import NetworkError
from resolver.core.hints import parse_root_hints
from resolver.core.resolution import Resolution
from resolver.engine import Client, Close, Output, Reply, Send
from resolver.server import listeners
from resolver.server.service import ResolverService
from resolver.server.upstream import Network
from resolver.server.wire import framed
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.frontend_support import RESOLVER, ask, query, start_resolver, tcp_exchange
from tests.helpers import loopback_config

WWW = "www.example.test."


def wire(name: str, rdtype: str = "A") -> bytes:
    return dns.message.make_query(name, rdtype).to_wire()


def split(outputs: list[Output]) -> tuple[list[Send], list[Reply]]:
    sends = [o for o in outputs if isinstance(o, Send)]
    replies = [o for o in outputs if isinstance(o, Reply)]
    assert all(isinstance(o, Send | Reply | Close) for o in outputs)
    return sends, replies


# -- the trio layer -------------------------------------------------------------------------------


class Hang(Network):
    """Upstream queries that never get an answer: only the engine's deadlines end them."""

    async def carry(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        await trio.sleep_forever()
        raise AssertionError


def hanging_service(**limits: object) -> ResolverService:
    hints = parse_root_hints(TestInternet.default().hints_text())
    config = loopback_config(limits=Limits(**limits))  # type: ignore[arg-type]  # Limits' fields
    return ResolverService(config, hints, network=Hang())


async def test_a_cancelled_call_without_run_leaves_the_service_usable() -> None:
    """Without `run`, each call carries its own queries; a call cancelled half-way must leave
    nothing behind that makes a later call hang (the resolution ends in 0.3 s)."""
    service = hanging_service(max_resolution_time=0.3)
    with trio.move_on_after(0.1):
        await service.resolve(dns.name.from_text("a.example.test."), dns.rdatatype.A)
    with trio.move_on_after(3) as late:
        answer = await service.resolve(dns.name.from_text(WWW), dns.rdatatype.A)
    assert not late.cancelled_caught, "a lone resolve() hung"
    assert answer.rcode == dns.rcode.SERVFAIL


async def test_overlapping_calls_without_run_are_refused_not_stranded() -> None:
    """A caller's nursery cannot outlive it, so it cannot carry another caller's queries to
    the end: overlapping calls without `run` fail at once, with a message, never hang."""
    service = hanging_service(max_resolution_time=0.3)
    errors: list[BaseException] = []

    async def first() -> None:
        await service.resolve(dns.name.from_text("a.example.test."), dns.rdatatype.A)

    async def second() -> None:
        await trio.sleep(0.05)
        try:
            await service.resolve(dns.name.from_text(WWW), dns.rdatatype.A)
        except RuntimeError as error:
            errors.append(error)

    with trio.fail_after(3):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            nursery.start_soon(second)
    assert [str(error) for error in errors] == [
        "concurrent calls need the service running (service.run)"
    ]


# -- TCP listener ---------------------------------------------------------------------------------


def _unread_client(count: int) -> socket.socket:
    """A client that pipelines `count` queries and never reads a reply (tiny receive window)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.connect(RESOLVER)
    sock.setblocking(False)
    return sock


async def _pump(sock: socket.socket, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        await trio.lowlevel.wait_writable(sock)
        try:
            sent = sock.send(view)
        except BlockingIOError:
            continue
        view = view[sent:]


async def test_tcp_replies_waiting_for_a_client_that_does_not_read_are_bounded(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """listeners.py:146-152 and 165: a reply frees its pipeline slot when it is *queued* on an
    unbounded memory channel (`math.inf`), not when it is written. A client that pipelines
    queries and never reads makes the daemon buffer every reply: memory grows without bound
    (the 16-slot pipeline limit bounds nothing). be860e6^ released the slot after send_all."""
    queued: list[trio.MemorySendChannel[bytes]] = []
    original = listeners._Connection.__init__

    def spy(
        self: listeners._Connection, channel: trio.MemorySendChannel[bytes], slots: trio.Semaphore
    ) -> None:
        queued.append(channel)
        original(self, channel, slots)

    monkeypatch.setattr(listeners._Connection, "__init__", spy)
    await start_resolver(nursery, live_internet, tmp_path)
    await ask(query(WWW))  # warm: the rest are packet-cache hits
    sock = _unread_client(0)
    try:
        one = framed(wire(WWW))
        with trio.move_on_after(5):
            await _pump(sock, one * 20_000)
        await trio.sleep(0.5)
        backlog = queued[0].statistics().current_buffer_used
        assert backlog <= 64, f"{backlog} replies buffered for one connection"
    finally:
        sock.close()


@pytest.mark.parametrize("count", [1, 20_000])  # 1: the control, the replies fit in buffers
async def test_a_tcp_client_that_stops_reading_loses_its_connection_slot(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, count: int
) -> None:
    """listeners.py:171-196: after the read loop ends (idle timeout or EOF) the connection
    waits for its writer task, whose `send_all` has no deadline. A client that stops reading
    keeps the connection, and its count in `connections`, forever: `max_tcp_clients` such
    clients shut TCP (and so truncated-answer retries) for everyone. Pre-existing in spirit
    (the old per-query tasks also awaited send_all without a deadline)."""
    limits = Limits(max_tcp_clients=1, tcp_idle_timeout=0.3, max_resolution_time=0.5)
    await start_resolver(nursery, live_internet, tmp_path, limits=limits)
    await ask(query(WWW))
    sock = _unread_client(0)
    try:
        with trio.move_on_after(3):
            await _pump(sock, framed(wire(WWW)) * count)
        # idle timeout 0.3 s + the wait for slots, then the connection should be given up
        await trio.sleep(2.5)
        replies = await tcp_exchange([wire(WWW)], timeout=2.0)
        assert len(replies) == 1
    finally:
        sock.close()


# -- the engine -----------------------------------------------------------------------------------


def test_an_exception_at_a_deadline_never_escapes_tick(
    internet: TestInternet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """engine.py:369-375: `_stale_timer` calls `resolution.stale_answer()` outside any
    `try`, and `tick` (engine.py:290-297) fires timers bare. Every other call into the
    resolution (`_step`, `give_up`) is guarded; a bug here raises out of `tick`, through
    `_keep_time`, into the service's nursery: the daemon stops. The timers after it in the
    same tick are not fired either."""
    world = ScriptedWorld(internet, loopback_config())
    engine = world.engine
    outputs = engine.client_query(wire(WWW), Client("127.0.0.1"))  # Send, held: no reply
    assert [o for o in outputs if isinstance(o, Send)]

    def broken(self: Resolution) -> None:
        raise RuntimeError("bug in the stale lookup")

    monkeypatch.setattr(Resolution, "stale_answer", broken)
    world.clock.advance(engine.config.cache.stale_client_timeout + 0.01)
    engine.tick()  # raises RuntimeError


def test_finished_questions_are_not_kept_by_the_timer_heap(internet: TestInternet) -> None:
    """engine.py:322-324 and 360-361 (be860e6): every question that goes upstream pushes an
    `_out_of_time` timer (and each client waiter a stale timer) whose closure holds the
    `_Question` (its `Resolution`, every waiter, the client's wire and parsed query) until
    `max_resolution_time` (8 s) has passed, however fast the answer came. Memory is then
    proportional to miss rate x 8 s, not to the questions in flight (`in_flight == 0`)."""
    world = ScriptedWorld(internet, loopback_config())
    engine = world.engine
    for number in range(300):
        world.query(wire(f"n{number}.example.test."))
    assert engine.in_flight == 0
    gc.collect()
    held = sum(1 for o in gc.get_objects() if type(o).__name__ == "_Question")
    assert held <= 5, f"{held} finished questions still referenced (by the timer heap)"


def test_the_live_timer_count_stays_right_when_a_question_times_out(internet: TestInternet) -> None:
    """Working tree only (the uncommitted `_Timer` fix in engine.py): `tick` decrements
    `_live_timers` for the timer it pops but leaves its `fire` set; `_out_of_time` -> `_end`
    then `_cancel`s that same timer (it is in `question.timers`) and decrements again. Every
    resolution timeout lowers the count by one more than it should; once it is wrong the
    compaction test (`len > 4 * live`) rebuilds the heap on every cancel, and a rebuild inside
    `tick` replaces `self._timers` while `tick` pops from its old alias, firing entries twice."""
    world = ScriptedWorld(internet, loopback_config(limits=Limits(max_resolution_time=0.5)))
    engine = world.engine
    if not hasattr(engine, "_live_timers"):
        pytest.skip("be860e6 has no live-timer count")
    engine.ask(dns.name.from_text(WWW), dns.rdatatype.A, lambda _a: None)  # Sends held
    world.clock.advance(0.6)
    engine.tick()  # the Send's deadline, a retry's, and the question's deadline
    world.clock.advance(10)
    engine.tick()
    timers = [*engine._timers, *engine._out_of_time_queue, *engine._stale_queue]
    live = sum(1 for timer in timers if timer[2] is not None)  # [when, order, fire, arg]
    assert engine._live_timers == live, (engine._live_timers, live)


def test_a_client_over_the_question_limit_is_neither_hit_nor_miss(internet: TestInternet) -> None:
    """report.py:8-9 says a query refused by the in-flight limit is neither hit nor miss;
    engine.py:312-314 delivers its SERVFAIL through the client waiter, whose `deliver`
    (engine.py:247-249) counts every delivery with `from_cache=False` as a miss."""
    config = loopback_config(limits=Limits(max_in_flight=1))
    world = ScriptedWorld(internet, config)
    engine = world.engine
    held = engine.ask(dns.name.from_text(WWW), dns.rdatatype.A, lambda _answer: None)
    assert [o for o in held if isinstance(o, Send)]  # one question in flight, its Send held
    _sends, replies = split(engine.client_query(wire("mail.example.test."), Client("127.0.0.1")))
    reply = dns.message.from_wire(replies[0].wire or b"")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert engine.stats.cache_misses == 0


class Failing:
    """A query log whose disk is full."""

    def record(self, *args: object) -> None:
        raise OSError(28, "No space left on device")


def test_a_failing_query_log_counts_a_packet_hit_once(internet: TestInternet) -> None:
    """engine.py:205-218: `answer_from_cache` counts the query and the packet hit, then calls
    the query log outside its own guard; when that raises, the outer `except` returns None
    and the carrier sends the query down the full path, which counts it again (`queries` 2,
    a packet hit *and* a full-path answer, two query-log attempts). `_reply` guards the log."""
    world = ScriptedWorld(internet, loopback_config())
    engine = world.engine
    world.query(wire(WWW))  # fills the packet cache
    before = engine.stats.queries
    engine.query_log = Failing()
    world.query(wire(WWW))
    assert engine.stats.queries - before == 1
