"""Prefetch: an answer asked for in the last 10% of its TTL is refreshed in the background."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from resolver.config import CacheConfig
from resolver.server.service import ResolverService
from resolver.testing import TestInternet
from resolver.testing.scripted import FakeClock
from tests.frontend_support import ask, query, start_resolver


async def ttl_of(name: str) -> int:
    return (await ask(query(name))).answer[0].ttl


async def started(
    nursery: trio.Nursery, internet: TestInternet, tmp_path: Path, prefetch: bool
) -> tuple[ResolverService, FakeClock]:
    clock = FakeClock(time.time())
    service = await start_resolver(
        nursery, internet, tmp_path, clock=clock, cache=CacheConfig(prefetch=prefetch)
    )
    return service, clock


async def test_a_popular_answer_is_refreshed_before_it_expires(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    service, clock = await started(nursery, live_internet, tmp_path, prefetch=True)
    assert await ttl_of("www.other.test.") == 120
    live_internet.reset_counters()
    clock.advance(100)
    assert await ttl_of("www.other.test.") == 20  # not yet in the last 10%: no refresh
    await trio.sleep(0.2)
    assert live_internet.total_queries() == 0
    clock.advance(10)
    assert await ttl_of("www.other.test.") == 10  # answered from cache, refresh started
    with trio.fail_after(5):
        while service.stats.prefetches == 0:
            await trio.sleep(0.01)
    assert live_internet.server_at("127.53.3.1").query_count == 1  # straight to other.test
    assert live_internet.total_queries() == 1
    assert await ttl_of("www.other.test.") == 120  # the fresh answer
    clock.advance(30)
    assert await ttl_of("www.other.test.") == 90  # it did not expire for clients


async def test_without_prefetch_the_answer_just_ages(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    service, clock = await started(nursery, live_internet, tmp_path, prefetch=False)
    await ttl_of("www.other.test.")
    live_internet.reset_counters()
    clock.advance(115)
    assert await ttl_of("www.other.test.") == 5
    await trio.sleep(0.3)
    assert live_internet.total_queries() == 0
    assert service.stats.prefetches == 0
