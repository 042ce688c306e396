"""The serve-stale client-response timer (RFC 8767 section 5), live on the test internet.

A client whose question is still being resolved after `cache.stale_client_timeout` gets the
stale answer the cache holds, while the resolution goes on and refreshes the cache. The
resolver's cache runs on a fake clock (so TTLs expire on demand); the upstream delay is real,
and long enough that a reply which arrives while the resolution is still in flight can only
have come from the timer.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
import trio

from resolver.config import CacheConfig, UpstreamConfig
from resolver.core.hints import load_root_hints
from resolver.server import upstream
from resolver.server.service import ResolverService
from resolver.testing import Fault, TestInternet
from resolver.testing.scripted import FakeClock
from tests.frontend_support import ask, query, start_resolver
from tests.helpers import loopback_config

NAME = "www.other.test."
#: The only server of other.test.
OTHER = "127.53.3.1"
#: How long the slow server takes: far beyond the timer, within the upstream timeout.
DELAY = 1.5
TIMER = 0.1


async def started(
    nursery: trio.Nursery, internet: TestInternet, tmp_path: Path
) -> tuple[ResolverService, FakeClock]:
    clock = FakeClock(time.time())
    service = await start_resolver(
        nursery,
        internet,
        tmp_path,
        clock=clock,
        cache=CacheConfig(stale_client_timeout=TIMER),
        upstream=UpstreamConfig(query_loopback=True, timeout=DELAY + 2),
    )
    return service, clock


def stale_ede(response: dns.message.Message) -> bool:
    return any(
        isinstance(option, dns.edns.EDEOption) and option.code == dns.edns.EDECode.STALE_ANSWER
        for option in response.options
    )


async def settled(service: ResolverService) -> None:
    """Wait for the background resolutions to end (they refresh the cache when they do)."""
    with trio.fail_after(DELAY + 5):
        while service.in_flight:
            await trio.sleep(0.02)


async def expire_and_slow_down(internet: TestInternet, clock: FakeClock) -> None:
    first = await ask(query(NAME))
    assert first.answer[0].ttl == 120
    clock.advance(200)  # www.other.test. (120 s) has expired; the delegation has not
    internet.reset_counters()
    slow = internet.server_at(OTHER)
    slow.fault, slow.delay = Fault.DELAY, DELAY


async def test_a_slow_resolution_gives_the_stale_answer_and_refreshes_the_cache(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    service, clock = await started(nursery, live_internet, tmp_path)
    await expire_and_slow_down(live_internet, clock)
    response = await ask(query(NAME, use_edns=0), timeout=DELAY + 3)
    assert service.in_flight == 1  # the reply came before the slow server's answer
    assert response.rcode() == dns.rcode.NOERROR
    assert [rdata.address for rdata in response.answer[0]] == ["198.51.100.1"]
    assert response.answer[0].ttl == CacheConfig().stale_answer_ttl
    assert stale_ede(response)
    await settled(service)
    assert live_internet.server_at(OTHER).query_count == 1
    fresh = await ask(query(NAME, use_edns=0))
    assert fresh.answer[0].ttl == 120  # the background resolution refreshed the cache
    assert not stale_ede(fresh)
    assert live_internet.total_queries() == 1


async def test_identical_questions_waiting_for_stale_data_share_one_resolution(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    service, clock = await started(nursery, live_internet, tmp_path)
    await expire_and_slow_down(live_internet, clock)
    responses: list[dns.message.Message] = []

    async def client() -> None:
        responses.append(await ask(query(NAME, use_edns=0), timeout=DELAY + 3))

    async with trio.open_nursery() as clients:
        for _ in range(5):
            clients.start_soon(client)
    assert service.in_flight == 1
    assert len(responses) == 5
    assert all(stale_ede(r) and r.answer[0].ttl == 30 for r in responses)
    await settled(service)
    assert live_internet.total_queries() == 1


async def test_without_stale_data_the_client_waits_for_the_resolution(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    service, _clock = await started(nursery, live_internet, tmp_path)
    await ask(query("nothing.other.test."))  # learn the delegation, not www.other.test.
    slow = live_internet.server_at(OTHER)
    live_internet.reset_counters()
    slow.fault, slow.delay = Fault.DELAY, 0.5
    response = await ask(query(NAME, use_edns=0), timeout=DELAY + 3)
    assert service.in_flight == 0
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer and not stale_ede(response)
    assert slow.query_count == 1


async def test_the_timer_can_be_switched_off_with_serve_stale(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    clock = FakeClock(time.time())
    service = await start_resolver(
        nursery,
        live_internet,
        tmp_path,
        clock=clock,
        cache=CacheConfig(stale_client_timeout=TIMER, serve_stale=False),
        upstream=UpstreamConfig(query_loopback=True, timeout=DELAY + 2),
    )
    await expire_and_slow_down(live_internet, clock)
    live_internet.server_at(OTHER).delay = 0.5
    response = await ask(query(NAME, use_edns=0), timeout=DELAY + 3)
    assert service.in_flight == 0
    assert response.answer[0].ttl == 120
    assert not stale_ede(response)


async def test_a_crash_in_carrying_a_query_costs_that_query_not_the_service(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hints = load_root_hints(live_internet.write_hints(tmp_path / "test.hints"))
    service = ResolverService(loopback_config(), hints)
    await nursery.start(service.run)
    real = upstream._connect
    broken_root = live_internet.root_servers[0].address

    def broken(sock: socket.socket, address: tuple[str, int]) -> None:
        if address[0] == broken_root:
            raise RuntimeError("a bug")
        real(sock, address)

    # Where every UDP query is carried (the service's `Datagrams`, as `Network.carry` alone).
    monkeypatch.setattr(upstream, "_connect", broken)
    answer = await service.resolve(dns.name.from_text(NAME), dns.rdatatype.A)
    assert answer.rcode == dns.rcode.NOERROR and answer.answer  # through the other root
    assert service.in_flight == 0
    crashes = [record for record in caplog.records if record.exc_info]
    assert crashes and all(
        str(record.exc_info[1]) == "a bug" for record in crashes if record.exc_info
    )


async def test_a_cache_only_question_is_never_merged_with_a_resolution(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    hints = load_root_hints(live_internet.write_hints(tmp_path / "test.hints"))
    config = loopback_config(upstream=UpstreamConfig(query_loopback=True, timeout=DELAY + 2))
    service = ResolverService(config, hints)
    await nursery.start(service.run)
    slow = live_internet.server_at(OTHER)
    await service.resolve(dns.name.from_text("nothing.other.test."), dns.rdatatype.A)
    slow.fault, slow.delay = Fault.DELAY, 0.5
    live_internet.reset_counters()
    name = dns.name.from_text(NAME)
    async with trio.open_nursery() as askers:
        askers.start_soon(service.resolve, name, dns.rdatatype.A)
        await trio.sleep(0.05)
        assert service.in_flight == 1
        before = service.stats.snapshot()
        cached = await service.resolve(name, dns.rdatatype.A, cache_only=True)
        assert service.in_flight == 1  # answered at once, without waiting for the resolution
        after = service.stats.snapshot()
    assert not cached.answer
    assert live_internet.total_queries() == 1
    assert after["cache_answers"] == before["cache_answers"] + 1  # a cache answer...
    assert after["cache_misses"] == before["cache_misses"]  # ...not a miss
