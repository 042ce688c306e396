"""The DoT forwarder pool (`resolver/server/dotpool.py`) against a fake DoT server that
misbehaves on purpose: a slow first handshake that the query's deadline cancels, and two
queries in flight with the same 16-bit ID."""

from __future__ import annotations

import ssl
from typing import Any, cast

import dns.message
import dns.rrset
import trio

from resolver.core.actions import NetworkError, Server, TlsPeer
from resolver.engine.outbound import Send
from resolver.server.dotpool import DotPool, describe
from resolver.server.wire import framed, receive_framed
from resolver.testing.certs import TestCA
from tests.frontend_support import query

ADDRESS = "127.0.0.77"
PORT = 8853


class FakeDot:
    """A DoT server: answers every A question with 192.0.2.N (N from the name's first label
    "hN"), after `delays[N]` seconds; the first connection's handshake waits `first_delay`."""

    def __init__(self, ca: TestCA, first_delay: float = 0.0) -> None:
        issued = ca.issue("fakedot", ("dot.test",), (ADDRESS,))
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(issued.certificate, issued.key)
        self.first_delay = first_delay
        self.delays: dict[int, float] = {}
        self.connections = 0
        self.received: list[int] = []  # the IDs of the queries, as they arrive

    async def start(self, nursery: trio.Nursery) -> None:
        listeners = await trio.open_tcp_listeners(PORT, host=ADDRESS)
        nursery.start_soon(trio.serve_listeners, self.serve, listeners)

    async def serve(self, tcp: trio.SocketStream) -> None:
        self.connections += 1
        if self.connections == 1:
            await trio.sleep(self.first_delay)  # before the handshake
        stream = trio.SSLStream(tcp, self.context, server_side=True)
        lock = trio.Lock()
        try:
            async with stream, trio.open_nursery() as nursery:
                while (wire := await receive_framed(stream)) is not None:
                    nursery.start_soon(self.answer, stream, lock, wire)
        except trio.BrokenResourceError:
            pass

    async def answer(
        self, stream: trio.SSLStream[trio.SocketStream], lock: trio.Lock, wire: bytes
    ) -> None:
        message = dns.message.from_wire(wire)
        self.received.append(message.id)
        name = message.question[0].name
        number = int(name.labels[0][1:])
        await trio.sleep(self.delays.get(number, 0.0))
        reply = dns.message.make_response(message)
        reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", f"192.0.2.{number}"))
        async with lock:
            await stream.send_all(framed(reply.to_wire()))


def send(wire: bytes, ca: TestCA) -> Send:
    server = Server(ADDRESS, PORT, tls=TlsPeer("dot.test", str(ca.certificate)))
    return Send(0, server, wire, True, 0.0, cast(Any, None))  # the pool reads server and wire


async def ask(pool: DotPool, ca: TestCA, number: int, query_id: int = 1234) -> bytes | NetworkError:
    message = query(f"h{number}.fwd.test.")
    message.id = query_id
    got: list[bytes] = []
    error = await pool.carry(send(message.to_wire(), ca), got.append)
    return error if error is not None else got[0]


def address(reply: bytes | NetworkError) -> str:
    assert isinstance(reply, bytes), reply
    return dns.message.from_wire(reply).answer[0][0].to_text()


async def test_a_first_handshake_cancelled_by_the_query_does_not_wedge_the_pool(
    nursery: trio.Nursery, ca: TestCA
) -> None:
    server = FakeDot(ca, first_delay=0.5)
    await server.start(nursery)
    pool = DotPool()
    pool.attach(nursery, None)
    with trio.move_on_after(0.2) as gave_up:  # the engine's Close: the query's deadline
        await ask(pool, ca, 1)
    assert gave_up.cancelled_caught
    with trio.fail_after(3):
        assert address(await ask(pool, ca, 2)) == "192.0.2.2"
        assert address(await ask(pool, ca, 3)) == "192.0.2.3"


async def test_two_queries_with_one_id_on_one_connection_get_their_own_replies(
    nursery: trio.Nursery, ca: TestCA
) -> None:
    server = FakeDot(ca)
    server.delays[1] = 0.3  # the first query's answer comes second
    await server.start(nursery)
    pool = DotPool()
    pool.attach(nursery, None)
    replies: dict[int, bytes | NetworkError] = {}

    async def one(number: int) -> None:
        replies[number] = await ask(pool, ca, number, query_id=1234)

    with trio.fail_after(3):
        async with trio.open_nursery() as both:
            both.start_soon(one, 1)
            await trio.sleep(0.05)  # the same connection (opened by the first)
            both.start_soon(one, 2)
    assert address(replies[1]) == "192.0.2.1" and address(replies[2]) == "192.0.2.2"
    # The engine's ID comes back; on the wire each query had its own.
    assert all(dns.message.from_wire(cast(bytes, r)).id == 1234 for r in replies.values())
    assert server.connections == 1 and len(set(server.received)) == 2


def test_a_pinned_only_server_is_described_without_doubled_parentheses() -> None:
    server = Server(ADDRESS, PORT, tls=TlsPeer(None, pins=("A" * 43 + "=",)))
    assert describe(server) == f"DNS over TLS to {ADDRESS}:{PORT} (pinned key)"
