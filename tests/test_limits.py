"""Global limits of the front end: TCP connections, idle clients, in-flight work, time per query."""

from __future__ import annotations

from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import trio

from resolver.config import Limits, UpstreamConfig
from resolver.testing import Fault, TestInternet
from tests.frontend_support import RESOLVER, ask, query, start_resolver, udp_exchange


async def connection_closed_by_peer(stream: trio.SocketStream, within: float) -> bool:
    with trio.move_on_after(within):
        return await stream.receive_some(100) == b""
    return False


async def test_tcp_connections_beyond_the_limit_are_closed(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    await start_resolver(nursery, live_internet, tmp_path, limits=Limits(max_tcp_clients=2))
    first = await trio.open_tcp_stream(*RESOLVER)
    second = await trio.open_tcp_stream(*RESOLVER)
    await trio.sleep(0.1)
    third = await trio.open_tcp_stream(*RESOLVER)
    async with first, second, third:
        assert await connection_closed_by_peer(third, within=2.0)
        assert not await connection_closed_by_peer(first, within=0.2)


async def test_idle_tcp_clients_are_disconnected(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    await start_resolver(nursery, live_internet, tmp_path, limits=Limits(tcp_idle_timeout=0.3))
    stream = await trio.open_tcp_stream(*RESOLVER)
    async with stream:
        assert await connection_closed_by_peer(stream, within=3.0)


async def test_a_question_gets_servfail_when_its_time_is_up(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    for name in ("ns1.example.test.", "ns2.example.test."):
        live_internet.servers[name].fault = Fault.DROP
    await start_resolver(
        nursery,
        live_internet,
        tmp_path,
        limits=Limits(max_resolution_time=0.5),
        upstream=UpstreamConfig(query_loopback=True, timeout=5.0),
    )
    response = await ask(query("www.example.test.", use_edns=0))
    assert response.rcode() == dns.rcode.SERVFAIL
    (error,) = response.options
    assert isinstance(error, dns.edns.EDEOption)
    assert error.text == "resolution took too long"


async def test_work_in_flight_is_bounded(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    live_internet.servers["ns1.other.test."].fault = Fault.DROP
    await start_resolver(
        nursery,
        live_internet,
        tmp_path,
        limits=Limits(max_in_flight=1, max_resolution_time=1.0),
    )
    slow = query("www.other.test.")
    async with trio.open_nursery() as clients:
        clients.start_soon(udp_exchange, slow.to_wire())
        await trio.sleep(0.2)  # the slow question now holds the only slot
        assert await udp_exchange(query("www.example.test.").to_wire(), timeout=0.3) is None
    live_internet.reset_faults()
    response = await ask(query("www.example.test."))
    assert response.rcode() == dns.rcode.NOERROR
