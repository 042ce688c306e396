"""Broken authoritative servers met through real sockets and the real upstream transport."""

from __future__ import annotations

from pathlib import Path

import dns.rcode
import pytest
import trio

from resolver.config import UpstreamConfig
from resolver.server.service import ResolverService
from resolver.testing import Fault, TestInternet
from tests.frontend_support import ask, query, start_resolver

EXAMPLE_SERVERS = ("ns1.example.test.", "ns2.example.test.")


@pytest.mark.parametrize("fault", [Fault.NO_TCP, Fault.GARBAGE, Fault.WRONG_ID, Fault.TCP_ONLY])
async def test_big_answer_survives_one_broken_server(
    resolver: ResolverService, live_internet: TestInternet, fault: Fault
) -> None:
    live_internet.servers["ns1.example.test."].fault = fault
    for name in ("www", "mail", "alias"):
        assert (await ask(query(f"{name}.example.test."))).answer, name
    answer = await ask(query("big.example.test.", "TXT", use_edns=0, payload=1232))
    assert answer.flags & 0x0200  # TC: the client must come back over TCP, as dig does


async def test_tcp_refused_everywhere_gives_servfail(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    for name in EXAMPLE_SERVERS:
        live_internet.servers[name].fault = Fault.NO_TCP
    response = await ask(query("big.example.test.", "TXT"))
    assert response.rcode() == dns.rcode.SERVFAIL
    assert sum(live_internet.servers[n].tcp_refused for n in EXAMPLE_SERVERS) >= 1


async def test_0x20_through_the_real_transport(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    upstream = UpstreamConfig(query_loopback=True, timeout=0.3, use_0x20=True)
    await start_resolver(nursery, live_internet, tmp_path, upstream=upstream)
    response = await ask(query("www.example.test."))
    assert response.answer[0][0].address == "192.0.2.1"
    sent = [
        q.qname.to_text()
        for server in live_internet.servers.values()
        for q in server.queries
        if q.qname.labels != (b"",)
    ]
    assert any(name != name.lower() for name in sent)
