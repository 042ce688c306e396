"""Server selection: which addresses may be asked, and (through real sockets) how measured
round-trip times steer queries."""

from __future__ import annotations

import pytest

from resolver.config import UpstreamConfig
from resolver.core.selection import usable_address
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


NEVER = ["::", "0.0.0.0", "0.1.2.3", "0.255.255.255", "224.0.0.1", "ff02::1"]
NEVER += ["::ffff:0.0.0.0", "::ffff:0.1.2.3", "::ffff:224.0.0.1"]
LOOPBACK = ["127.0.0.1", "127.53.1.1", "::1", "::ffff:127.0.0.1", "::ffff:127.53.1.1"]
ORDINARY = ["192.0.2.1", "1.0.0.1", "2001:db8::1", "::ffff:192.0.2.1"]


@pytest.mark.parametrize("address", NEVER)
@pytest.mark.parametrize("configured", [False, True])
@pytest.mark.parametrize("query_loopback", [False, True])
def test_unspecified_this_network_and_multicast_are_never_queried(
    address: str, configured: bool, query_loopback: bool
) -> None:
    """No server lives there, and some stacks deliver such packets to the host itself."""
    config = UpstreamConfig(query_loopback=query_loopback)
    assert not usable_address(address, config, configured=configured)


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_learned_from_the_network_is_not_queried(address: str) -> None:
    """IPv4-mapped IPv6 included: `::ffff:127.0.0.1` reaches the host as well as 127.0.0.1."""
    assert not usable_address(address, UpstreamConfig())
    assert usable_address(address, UpstreamConfig(query_loopback=True))


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_the_operator_configured_is_queried(address: str) -> None:
    """Root hints, stub and forward zones: the operator chose the address (as Knot does)."""
    assert usable_address(address, UpstreamConfig(), configured=True)


@pytest.mark.parametrize("address", ORDINARY)
def test_ordinary_addresses_are_usable(address: str) -> None:
    assert usable_address(address, UpstreamConfig())


@pytest.mark.parametrize("configured", [False, True])
def test_do_ip4_and_do_ip6_apply_whoever_chose_the_address(configured: bool) -> None:
    no_ip4, no_ip6 = UpstreamConfig(do_ip4=False), UpstreamConfig(do_ip6=False)
    assert not usable_address("192.0.2.1", no_ip4, configured=configured)
    assert usable_address("2001:db8::1", no_ip4, configured=configured)
    assert not usable_address("2001:db8::1", no_ip6, configured=configured)
    assert not usable_address("::ffff:192.0.2.1", no_ip6, configured=configured)  # an IPv6 socket
    assert usable_address("192.0.2.1", no_ip6, configured=configured)


def test_names_are_not_addresses() -> None:
    assert not usable_address("ns1.example.test.", UpstreamConfig(), configured=True)
