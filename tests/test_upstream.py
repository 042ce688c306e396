"""The network carrier on its own, against the live test internet (merging: test_engine.py)."""

from __future__ import annotations

import dns.message
import trio

from resolver.core.actions import NetworkError, SendQuery, Server
from resolver.engine import Send
from resolver.server.upstream import Network
from resolver.testing import TestInternet

NS1 = Server("127.53.2.1", 53)


def send_for(name: str, tcp: bool = False) -> Send:
    query = dns.message.make_query(name, "A", flags=0, id=4321, use_edns=0)
    return Send(7, NS1, query.to_wire(), tcp, 0.0, SendQuery(NS1, query, tcp, timeout=2.0))


async def carried(send: Send) -> tuple[list[bytes], NetworkError | None]:
    """Every reply the carrier hands back within a second, and what it returned (if it did)."""
    received: list[bytes] = []
    failure: NetworkError | None = None
    with trio.move_on_after(1.0):
        failure = await Network().carry(send, received.append)
    return received, failure


async def test_a_udp_query_is_sent_and_its_reply_handed_back(live_internet: TestInternet) -> None:
    received, failure = await carried(send_for("www.example.test."))
    assert failure is None and len(received) == 1
    reply = dns.message.from_wire(received[0])
    assert reply.id == 4321
    assert reply.answer[0].to_text() == "www.example.test. 300 IN A 192.0.2.1"
    assert live_internet.server_at(NS1.address).query_count == 1


async def test_a_tcp_query_returns_after_its_one_reply(live_internet: TestInternet) -> None:
    received, failure = await carried(send_for("www.example.test.", tcp=True))
    assert failure is None and len(received) == 1
    assert dns.message.from_wire(received[0]).id == 4321
