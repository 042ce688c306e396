"""The upstream transport on its own, against the live test internet."""

from __future__ import annotations

import dns.message
import trio

from resolver.core.actions import Response, SendQuery, Server
from resolver.server.upstream import Upstream
from resolver.testing import TestInternet

NS1 = Server("127.53.2.1", 53)


def action(name: str, tcp: bool = False) -> SendQuery:
    query = dns.message.make_query(name, "A", flags=0, id=0, use_edns=0)
    return SendQuery(NS1, query, tcp, timeout=2.0)


async def test_identical_queries_in_flight_share_one_packet(live_internet: TestInternet) -> None:
    upstream = Upstream()
    actions = [action("www.example.test.") for _ in range(5)]
    outcomes: list[object] = []

    async def perform(each: SendQuery) -> None:
        outcomes.append(await upstream.perform(each))

    async with trio.open_nursery() as nursery:
        for each in actions:
            nursery.start_soon(perform, each)
    server = live_internet.server_at(NS1.address)
    assert server.query_count == 1
    assert upstream.sent == 1
    assert all(isinstance(outcome, Response) for outcome in outcomes)
    for each, outcome in zip(actions, outcomes, strict=True):
        assert isinstance(outcome, Response)
        assert outcome.message.id == each.query.id  # each query object matches the response


async def test_different_questions_are_sent_separately(live_internet: TestInternet) -> None:
    upstream = Upstream()
    async with trio.open_nursery() as nursery:
        for name in ("www.example.test.", "mail.example.test."):
            nursery.start_soon(upstream.perform, action(name))
        nursery.start_soon(upstream.perform, action("www.example.test.", tcp=True))
    assert live_internet.server_at(NS1.address).query_count == 3
