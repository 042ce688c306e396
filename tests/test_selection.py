"""Server selection through real sockets: measured round-trip times steer queries."""

from __future__ import annotations

from resolver.server.service import ResolverService
from resolver.testing import Fault, TestInternet
from tests.frontend_support import ask, query


async def test_the_fast_server_is_preferred_after_a_few_queries(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    slow = live_internet.servers["ns1.slow.test."]
    fast = live_internet.servers["ns2.slow.test."]
    slow.fault, slow.delay = Fault.DELAY, 0.15
    for letter in "abcdefghijklmnopqrstuvwxyz":
        response = await ask(query(f"{letter}.slow.test."))
        assert response.answer, letter
    assert slow.query_count <= 2
    assert fast.query_count >= 24


async def test_a_silent_server_is_remembered_as_slow(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    silent = live_internet.servers["ns1.slow.test."]
    silent.fault = Fault.DROP
    for letter in "abcdefghij":
        assert (await ask(query(f"{letter}.slow.test."))).answer, letter
    assert silent.query_count == 1
