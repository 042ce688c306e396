"""The server table on a fake clock: penalties that decay, hold-downs with one probe, expiry.

RFC 9520 section 3 asks a resolver to remember failing servers so that a dead zone does not
cost every client a timeout, and to forget them again so that a repaired server gets traffic.
"""

from __future__ import annotations

import pytest

from resolver.cache.servers import ServerTable
from resolver.config import UpstreamConfig
from resolver.testing.scripted import FakeClock

ADDRESS = "127.53.0.1"
PEER = "127.53.0.2"


def table(clock: FakeClock, size: int = 100, **changes: object) -> ServerTable:
    return ServerTable(size, clock, UpstreamConfig(**changes))  # type: ignore[arg-type]  # its fields


def fail(servers: ServerTable, times: int, address: str = ADDRESS) -> None:
    for _ in range(times):
        servers.record_failure(address, timeout=1.0)


def test_measured_fast_servers_score_better_and_timeouts_double_the_penalty() -> None:
    servers = table(FakeClock(), size=2)
    servers.record_rtt(ADDRESS, 0.010)
    servers.record_failure(PEER, timeout=1.0)
    assert servers.score(ADDRESS) == pytest.approx(0.010)
    assert servers.score(PEER) == 1.0
    servers.record_failure(PEER, timeout=1.0)
    assert servers.score(PEER) == 2.0
    fail(servers, 10, PEER)
    assert servers.score(PEER) == ServerTable.MAX_PENALTY
    assert servers.score("127.53.0.9") == 0.0  # never met: tried first


def test_the_timeout_penalty_halves_every_half_life_and_a_success_clears_it() -> None:
    clock = FakeClock()
    servers = table(clock, penalty_half_life=60.0)
    servers.record_rtt(ADDRESS, 0.050)
    servers.record_failure(ADDRESS, timeout=1.0)
    assert servers.score(ADDRESS) == 1.0
    clock.advance(60)
    assert servers.score(ADDRESS) == pytest.approx(0.5)
    clock.advance(120)
    assert servers.score(ADDRESS) == pytest.approx(0.125)
    clock.advance(600)
    assert servers.score(ADDRESS) == pytest.approx(0.050)  # the measured RTT shows again
    servers.record_failure(ADDRESS, timeout=1.0)
    servers.record_rtt(ADDRESS, 0.050)
    assert servers.score(ADDRESS) == pytest.approx(0.050)


def test_a_failure_doubles_what_is_left_of_the_penalty() -> None:
    clock = FakeClock()
    servers = table(clock, penalty_half_life=60.0)
    servers.record_failure(ADDRESS, timeout=1.0)
    servers.record_failure(ADDRESS, timeout=1.0)
    assert servers.score(ADDRESS) == 2.0
    clock.advance(120)  # 2.0 has decayed to 0.5
    servers.record_failure(ADDRESS, timeout=1.0)
    assert servers.score(ADDRESS) == 1.0  # max(2 * 0.5, the timeout)


def test_everything_known_about_a_server_is_forgotten_infra_ttl_after_its_last_update() -> None:
    clock = FakeClock()
    servers = table(clock, infra_ttl=900)
    servers.record_rtt(ADDRESS, 0.2)
    clock.advance(600)
    servers.record_rtt(ADDRESS, 0.2)  # an update: the 900 s start again
    clock.advance(600)
    assert servers.score(ADDRESS) == pytest.approx(0.2)
    clock.advance(301)
    assert servers.score(ADDRESS) == 0.0
    assert servers.info(ADDRESS) is None
    assert len(servers) == 0


def test_the_no_edns_mark_expires_even_on_a_busy_server() -> None:
    clock = FakeClock()
    servers = table(clock, infra_ttl=900)
    servers.set_no_edns(ADDRESS)
    assert servers.no_edns(ADDRESS)
    for _ in range(10):
        clock.advance(100)
        servers.record_rtt(ADDRESS, 0.01)
    assert servers.no_edns(ADDRESS) is False  # 1000 s since the mark, though updated since
    assert not servers.no_edns(PEER)


def test_a_server_is_held_down_after_consecutive_failures_then_probed_once() -> None:
    clock = FakeClock()
    servers = table(clock, hold_down_after=3, hold_down_time=5.0, max_hold_down_time=120.0)
    fail(servers, 2)
    assert not servers.held_down(ADDRESS)
    fail(servers, 1)
    assert servers.held_down(ADDRESS)
    clock.advance(4.9)
    assert servers.held_down(ADDRESS)
    clock.advance(0.1)
    assert servers.held_down(ADDRESS) is False  # this caller sends the probe...
    assert servers.probing(ADDRESS)
    assert servers.held_down(ADDRESS)  # ...and everyone else keeps skipping the server
    assert servers.held_down(ADDRESS)
    servers.record_failure(ADDRESS, timeout=1.0)  # the probe failed: 10 s this time
    assert not servers.probing(ADDRESS)
    clock.advance(9.9)
    assert servers.held_down(ADDRESS)
    clock.advance(0.1)
    assert servers.held_down(ADDRESS) is False
    servers.record_rtt(ADDRESS, 0.02)  # the probe succeeded: all is forgiven
    assert not servers.held_down(ADDRESS)
    assert not servers.probing(ADDRESS)
    assert servers.score(ADDRESS) == pytest.approx(0.02)
    fail(servers, 2)
    assert not servers.held_down(ADDRESS)  # the count of consecutive failures starts over


def test_the_hold_down_doubles_up_to_its_cap() -> None:
    clock = FakeClock()
    servers = table(clock, hold_down_after=1, hold_down_time=5.0, max_hold_down_time=30.0)
    for expected in (5.0, 10.0, 20.0, 30.0, 30.0):
        servers.record_failure(ADDRESS, timeout=1.0)
        clock.advance(expected - 0.01)
        assert servers.held_down(ADDRESS), expected
        clock.advance(0.01)
        assert not servers.held_down(ADDRESS), expected  # the probe, which fails again


def test_a_probe_that_never_reports_back_does_not_block_the_server_for_ever() -> None:
    clock = FakeClock()
    servers = table(clock, hold_down_after=3, hold_down_time=5.0)
    fail(servers, 3)
    clock.advance(5)
    assert not servers.held_down(ADDRESS)  # a probe goes out and is lost (client went away)
    clock.advance(4.9)
    assert servers.held_down(ADDRESS)
    clock.advance(0.1)
    assert not servers.held_down(ADDRESS)  # so another is let through


def test_an_unreachable_address_is_held_down_at_once() -> None:
    clock = FakeClock()
    servers = table(clock, hold_down_after=3, hold_down_time=5.0, timeout=0.8)
    servers.record_unreachable(ADDRESS)
    assert servers.held_down(ADDRESS)
    assert servers.score(ADDRESS) == 0.8  # and penalised like a timeout
    assert not servers.held_down(PEER)
    clock.advance(5)
    assert not servers.held_down(ADDRESS)  # the probe
    servers.record_rtt(ADDRESS, 0.01)  # the route is back
    assert not servers.held_down(ADDRESS)


def test_the_table_is_bounded_and_evicts_the_least_recently_used() -> None:
    servers = table(FakeClock(), size=2)
    servers.record_rtt("127.53.0.1", 0.010)
    servers.record_rtt("127.53.0.2", 0.020)
    servers.record_rtt("127.53.0.3", 0.5)
    assert len(servers) == 2
    assert servers.info("127.53.0.1") is None
