"""The carrier of upstream UDP queries (`Datagrams`): one epoll set and one task for all of them.

What it must keep from a task per query: a socket per query connected to the server (the kernel
drops datagrams from anywhere else, RFC 5452), every socket closed as soon as the engine says
`Close` (no descriptor left behind, whatever the load), and failures told as before (no route:
unreachable at once; an ICMP error after the send: an ordinary failure).
"""

from __future__ import annotations

import errno
import os
import select
import socket
from typing import TYPE_CHECKING

import dns.message
import dns.name
import dns.rcode
import pytest
import trio

from resolver.core.actions import NetworkError, SendQuery, Server
from resolver.core.hints import parse_root_hints
from resolver.core.reasons import ServfailReason
from resolver.engine import Close, Output, Send
from resolver.server import upstream
from resolver.server.service import ResolverService
from resolver.server.upstream import Datagrams
from resolver.testing import TestInternet
from tests.helpers import loopback_config

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def send_to(address: tuple[str, int], handle: int = 1) -> Send:
    server = Server(*address)
    query = dns.message.make_query("www.example.test.", "A", id=4321)
    return Send(handle, server, query.to_wire(), False, 0.0, SendQuery(server, query, False, 2.0))


class Recorder:
    """The engine's side of a carrier: what each handle received, and how queries failed."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, bytes]] = []
        self.failures: list[tuple[int, NetworkError]] = []
        self.arrived = trio.Event()

    def replied(self, handle: int, data: bytes) -> None:
        self.replies.append((handle, data))
        self.arrived.set()

    def failed(self, handle: int, failure: NetworkError) -> None:
        self.failures.append((handle, failure))
        self.arrived.set()


@pytest.fixture
def authority() -> socket.socket:
    """A UDP socket playing an authoritative server on loopback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    return sock


async def test_a_datagram_from_another_port_never_reaches_the_engine(
    authority: socket.socket,
) -> None:
    recorder = Recorder()
    carrier = Datagrams(recorder.replied, recorder.failed)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(carrier.run)
        assert carrier.send(send_to(authority.getsockname())) is None
        query, source = await trio.to_thread.run_sync(authority.recvfrom, 4096)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofer:  # same address
            spoofer.bind(("127.0.0.1", 0))
            spoofer.sendto(b"spoofed", source)
        authority.sendto(b"genuine", source)
        with trio.fail_after(2.0):
            await recorder.arrived.wait()
        await trio.sleep(0.05)  # anything else that was to come has come
        nursery.cancel_scope.cancel()
    assert recorder.replies == [(1, b"genuine")]
    assert dns.message.from_wire(query).id == 4321


async def test_close_closes_the_socket_at_once(authority: socket.socket) -> None:
    carrier = Datagrams(Recorder().replied, Recorder().failed)
    baseline = open_fds()
    assert carrier.send(send_to(authority.getsockname(), handle=5)) is None
    assert open_fds() == baseline + 1 and len(carrier) == 1
    assert carrier.close(5)
    assert open_fds() == baseline and len(carrier) == 0
    assert not carrier.close(5)  # a second Close (or one for a TCP query) finds nothing
    carrier.shut()


async def test_shutting_down_closes_every_socket(authority: socket.socket) -> None:
    baseline = open_fds()
    carrier = Datagrams(Recorder().replied, Recorder().failed)
    with trio.move_on_after(0.1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(carrier.run)
            for handle in range(10):
                assert carrier.send(send_to(authority.getsockname(), handle)) is None
    assert open_fds() == baseline  # the sockets and the epoll set


def wakes(carrier: Datagrams, timeout: float) -> bool:
    """Whether the carrier's task would be woken within `timeout` seconds."""
    return bool(select.select([carrier.fileno()], [], [], timeout)[0])


async def test_a_reused_fd_number_gets_no_stale_events(authority: socket.socket) -> None:
    """A socket closed while another descriptor still refers to it (a process forked
    meanwhile, a dup) stays in the epoll set under its old fd number, which the next query's
    socket gets: what arrives for the old socket must neither reach the new query nor wake
    the carrier over and over."""
    recorder = Recorder()
    carrier = Datagrams(recorder.replied, recorder.failed)
    assert carrier.send(send_to(authority.getsockname(), handle=1)) is None
    _query, old_source = authority.recvfrom(4096)
    old_fd = carrier._by_handle[1].fd
    duplicate = os.dup(old_fd)  # what a forked process would hold
    try:
        assert carrier.close(1)
        assert carrier.send(send_to(authority.getsockname(), handle=2)) is None
        assert carrier._by_handle[2].fd == old_fd  # the number is reused at once
        _query, new_source = authority.recvfrom(4096)
        authority.sendto(b"late, for the closed query", old_source)
        if wakes(carrier, 0.5):  # once at most, for the old socket's registration
            carrier.serve()
        assert not wakes(carrier, 0.2) and recorder.replies == []
        authority.sendto(b"genuine", new_source)
        assert wakes(carrier, 2.0)
        carrier.serve()
        assert recorder.replies == [(2, b"genuine")] and recorder.failures == []
    finally:
        os.close(duplicate)
        carrier.shut()


async def test_a_query_still_open_after_a_datagram_hears_the_next(
    authority: socket.socket,
) -> None:
    """A datagram the engine does not accept leaves the query open (no `Close`): the socket's
    one-shot registration is re-armed, and the next datagram, in a later wake-up, arrives."""
    recorder = Recorder()
    carrier = Datagrams(recorder.replied, recorder.failed)
    assert carrier.send(send_to(authority.getsockname(), handle=7)) is None
    _query, source = authority.recvfrom(4096)
    for number, data in enumerate([b"not accepted", b"accepted"], 1):
        authority.sendto(data, source)
        assert wakes(carrier, 2.0)
        carrier.serve()
        assert len(recorder.replies) == number and not wakes(carrier, 0.05)
    assert recorder.replies == [(7, b"not accepted"), (7, b"accepted")]
    carrier.shut()


async def test_a_full_send_buffer_delays_the_query_until_there_is_room(
    authority: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send that finds the buffer full waits for room (EPOLLOUT) and is sent then; a wake-up
    that finds no room after all (a stale registration's) waits again, failing nothing."""

    class Full(socket.socket):
        refusals = 2  # the send from `Datagrams.send`, and the first late one

        def send(self, data: ReadableBuffer, flags: int = 0, /) -> int:
            if Full.refusals:
                Full.refusals -= 1
                raise BlockingIOError(errno.EAGAIN, "full")
            return super().send(data, flags)

    monkeypatch.setattr(upstream.socket, "socket", Full)
    recorder = Recorder()
    carrier = Datagrams(recorder.replied, recorder.failed)
    assert carrier.send(send_to(authority.getsockname(), handle=4)) is None
    monkeypatch.undo()
    for _ in range(2):
        assert wakes(carrier, 2.0)  # room to send (a loopback socket's buffer is empty)
        carrier.serve()
    query, source = authority.recvfrom(4096)
    assert dns.message.from_wire(query).id == 4321 and Full.refusals == 0
    authority.sendto(b"reply", source)
    assert wakes(carrier, 2.0)
    carrier.serve()
    assert recorder.replies == [(4, b"reply")] and recorder.failures == []
    carrier.shut()


async def test_after_shutting_down_nothing_is_sent(authority: socket.socket) -> None:
    carrier = Datagrams(Recorder().replied, Recorder().failed)
    carrier.shut()
    baseline = open_fds()
    assert carrier.send(send_to(authority.getsockname())) == NetworkError("stopping")
    assert open_fds() == baseline
    authority.settimeout(0.2)
    with pytest.raises(TimeoutError):
        authority.recvfrom(4096)  # no query nobody would listen for


async def test_a_bug_in_handling_a_failure_costs_that_query_not_the_carrier(
    authority: socket.socket,
) -> None:
    """The engine failing on a reply and then on that failure: logged, the task runs on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        refused = closed.getsockname()
    recorder = Recorder()

    def failed(handle: int, failure: NetworkError) -> None:
        recorder.failed(handle, failure)
        raise RuntimeError("a bug in the engine's failure path")

    carrier = Datagrams(recorder.replied, failed)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(carrier.run)
        assert carrier.send(send_to(refused, handle=1)) is None  # an ICMP error comes back
        with trio.fail_after(2.0):
            await recorder.arrived.wait()
        recorder.arrived = trio.Event()
        assert carrier.send(send_to(authority.getsockname(), handle=2)) is None
        _query, source = await trio.to_thread.run_sync(authority.recvfrom, 4096)
        authority.sendto(b"still carried", source)
        with trio.fail_after(2.0):
            await recorder.arrived.wait()
        nursery.cancel_scope.cancel()
    assert [handle for handle, _ in recorder.failures] == [1]
    assert recorder.replies == [(2, b"still carried")]


@pytest.mark.parametrize("code", [errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL])
async def test_a_route_missing_is_unreachable_and_leaves_no_socket(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def unreachable(sock: object, address: object) -> None:
        raise OSError(code, "unreachable")

    monkeypatch.setattr(upstream, "_connect", unreachable)
    carrier = Datagrams(Recorder().replied, Recorder().failed)
    baseline = open_fds()
    failure = carrier.send(send_to(("127.0.0.1", 9)))
    assert failure == NetworkError(errno.errorcode[code], unreachable=True)
    assert open_fds() == baseline and len(carrier) == 0
    carrier.shut()


class Crowded:
    """An epoll set that can take no more sockets (the kernel's max_user_watches reached)."""

    def __init__(self, real: select.epoll) -> None:
        self.real = real

    def register(self, fd: int, mask: int) -> None:
        raise OSError(errno.ENOSPC, "no space left on device")

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


async def test_a_full_epoll_set_fails_the_query_and_leaks_no_socket(
    authority: socket.socket,
) -> None:
    carrier = Datagrams(Recorder().replied, Recorder().failed)
    carrier._epoll = Crowded(carrier._epoll)  # type: ignore[assignment]  # a stand-in, duck-typed
    baseline = open_fds()
    failure = carrier.send(send_to(authority.getsockname()))
    assert failure == NetworkError("ENOSPC", unreachable=False)
    assert open_fds() == baseline and len(carrier) == 0
    carrier.shut()


async def test_an_icmp_error_is_an_ordinary_failure_and_closes_the_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        address = closed.getsockname()
    recorder = Recorder()
    carrier = Datagrams(recorder.replied, recorder.failed)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(carrier.run)
        assert carrier.send(send_to(address, handle=3)) is None
        with trio.fail_after(2.0):
            await recorder.arrived.wait()
        nursery.cancel_scope.cancel()
    assert recorder.failures == [(3, NetworkError("ECONNREFUSED", unreachable=False))]
    assert recorder.replies == [] and len(carrier) == 0


async def test_the_service_reports_an_unreachable_address_as_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the service's carrier: every server unreachable, the engine stops at once
    (each address asked once) instead of waiting for timeouts."""
    reported: list[tuple[int, str, bool]] = []

    def unreachable(sock: object, address: object) -> None:
        raise OSError(errno.ENETUNREACH, "unreachable")

    monkeypatch.setattr(upstream, "_connect", unreachable)
    hints = parse_root_hints(TestInternet.default().hints_text())
    service = ResolverService(loopback_config(), hints)
    failed = service.engine.upstream_failed

    def spy(handle: int, reason: str, *, unreachable: bool = False) -> list[Output]:
        reported.append((handle, reason, unreachable))
        return failed(handle, reason, unreachable=unreachable)

    monkeypatch.setattr(service.engine, "upstream_failed", spy)
    baseline = open_fds()
    with trio.fail_after(2.0):
        answer = await service.resolve(dns.name.from_text("www.example.test."), 1)
    assert answer.failure is ServfailReason.NO_REACHABLE_AUTHORITY
    assert reported and all(r == (r[0], "ENETUNREACH", True) for r in reported)
    assert open_fds() == baseline


async def test_a_thousand_queries_leave_no_descriptor_behind() -> None:
    """A reply for every query, a Close for every one: no socket stays open, whatever the
    number of queries in flight together."""
    queries = 1000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        recorder = Recorder()
        carrier: Datagrams

        def replied(handle: int, data: bytes) -> None:
            recorder.replied(handle, data)
            carrier.close(handle)  # the engine's Close for the reply it was handed

        baseline = open_fds()
        carrier = Datagrams(replied, recorder.failed)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(carrier.run)
            answered = 0
            for start in range(0, queries, 100):  # 100 in flight at a time
                for handle in range(start, start + 100):
                    assert carrier.send(send_to(server.getsockname(), handle)) is None
                with trio.fail_after(5.0):
                    while answered < start + 100:
                        await trio.lowlevel.wait_readable(server)
                        while True:
                            try:
                                query, source = server.recvfrom(4096)
                            except BlockingIOError:
                                break
                            server.sendto(query, source)
                            answered += 1
            with trio.fail_after(5.0):
                while len(recorder.replies) < queries:
                    await trio.sleep(0.01)
            assert len(carrier) == 0 and open_fds() == baseline + 1  # the epoll set
            nursery.cancel_scope.cancel()
        assert open_fds() == baseline  # the epoll set too, once the task has stopped
    assert sorted(handle for handle, _ in recorder.replies) == list(range(queries))


async def test_a_running_service_carries_udp_queries_without_a_task_each(
    internet: TestInternet,
) -> None:
    """A live resolution through a running service: its UDP queries go through the one
    carrier, and every socket is closed once the answer is in."""
    hints = parse_root_hints(internet.hints_text())
    service = ResolverService(loopback_config(), hints)
    async with internet.running(), trio.open_nursery() as nursery:
        await nursery.start(service.run)
        baseline = open_fds()
        with trio.fail_after(5.0):
            answer = await service.resolve(dns.name.from_text("www.example.test."), 1)
            nx = await service.resolve(dns.name.from_text("nx.example.test."), 1)
        assert answer.rcode == dns.rcode.NOERROR and nx.rcode == dns.rcode.NXDOMAIN
        assert service.engine.upstream_sent >= 3
        assert not service._exchanges  # no task was needed
        assert service._datagrams is not None and len(service._datagrams) == 0
        assert open_fds() == baseline
        service.carry([Close(12345)])  # a Close for nothing open is harmless
        nursery.cancel_scope.cancel()
