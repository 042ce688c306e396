"""How the iterator meets failing servers: retransmission, unreachable addresses, hold-down,
remembered failures (RFC 9520) and when stale data may stand in (RFC 8767). No sockets."""

from __future__ import annotations

import errno
from collections.abc import Callable

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trio

from resolver.cache.records import Rank
from resolver.core.actions import Answer, Done, NetworkError, Outcome, SendQuery, Server, Timeout
from resolver.core.reasons import ServfailReason
from resolver.core.resolution import Resolution
from resolver.engine import Send
from resolver.server import upstream
from resolver.server.upstream import Network
from resolver.testing import Fault
from resolver.testing.scripted import ScriptedWorld, perform
from tests.helpers import texts

EXAMPLE_SERVERS = ("ns1.example.test.", "ns2.example.test.")
NS1_EXAMPLE = "127.53.2.1"


def resolve_with(
    world: ScriptedWorld, name: str, network: Callable[[SendQuery], Outcome | None]
) -> tuple[Answer, list[SendQuery]]:
    """Drive one resolution; `network` may replace the test internet's outcome of a query."""
    resolution = Resolution(dns.name.from_text(name), dns.rdatatype.A, world.context)
    sent: list[SendQuery] = []
    action = resolution.next_action()
    while isinstance(action, SendQuery):
        sent.append(action)
        outcome = network(action)
        action = resolution.receive(outcome or perform(world.internet, action))
    assert isinstance(action, Done)
    return action.answer, sent


def test_an_unreachable_address_is_not_waited_for_nor_asked_again(world: ScriptedWorld) -> None:
    def no_route(action: SendQuery) -> Outcome | None:
        if action.server.address == NS1_EXAMPLE:
            return NetworkError("ENETUNREACH", unreachable=True)
        return None

    world.resolve("example.test.", "NS")  # the delegation is cached: only the zone is asked
    world.internet.servers["ns2.example.test."].fault = Fault.DROP
    answer, sent = resolve_with(world, "www.example.test.", no_route)
    assert answer.failure is ServfailReason.NO_REACHABLE_AUTHORITY
    asked = [a.server.address for a in sent]
    # The cached delegation is tried once round, then learnt again from the TLD; the silent
    # server then gets its retransmissions, the unreachable one is never asked again.
    assert asked.count(NS1_EXAMPLE) == 1
    assert asked.count("127.53.1.1") + asked.count("127.53.1.2") == 1
    assert asked.count("127.53.2.2") == 1 + 1 + world.config.upstream.retries
    assert world.context.servers.held_down(NS1_EXAMPLE)


def losing(count: int, prefix: str = "127.53.2.") -> Callable[[SendQuery], Outcome | None]:
    """A network that loses the next `count` datagrams to addresses starting with `prefix`."""
    left = [count]

    def lossy(action: SendQuery) -> Outcome | None:
        if action.server.address.startswith(prefix) and left[0]:
            left[0] -= 1
            return Timeout()
        return None

    return lossy


def test_silent_servers_are_asked_again_with_a_longer_timeout(world: ScriptedWorld) -> None:
    """A delegation just handed over by the parent: its servers get the retransmissions."""
    # the first datagram to each example.test server is lost
    answer, sent = resolve_with(world, "www.example.test.", losing(2))
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    timeouts = [a.timeout for a in sent if a.server.address.startswith("127.53.2.")]
    assert timeouts == [0.3, 0.3, 0.6]  # both lost, then the second round waits twice as long


def test_a_cached_delegation_that_fails_is_learnt_again_before_waiting_longer(
    world: ScriptedWorld,
) -> None:
    world.resolve("example.test.", "NS")
    answer, sent = resolve_with(world, "www.example.test.", losing(2))
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    # both cached servers silent once, then one query to the TLD rather than a longer wait
    assert [(a.server.address[:9], a.timeout) for a in sent] == [
        ("127.53.2.", 0.3),
        ("127.53.2.", 0.3),
        ("127.53.1.", 0.3),
        ("127.53.2.", 0.3),
    ]


def test_retransmission_stops_after_the_configured_rounds(world: ScriptedWorld) -> None:
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].fault = Fault.DROP
    answer = world.resolve("www.example.test.")
    assert answer.failure is ServfailReason.NO_REACHABLE_AUTHORITY
    # two servers, each asked once a round: the first round and `upstream.retries` (2) more
    assert sum(world.internet.servers[n].query_count for n in EXAMPLE_SERVERS) == 2 * 3


def test_a_failure_is_remembered_briefly_so_the_next_client_does_not_wait(
    world: ScriptedWorld,
) -> None:
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].fault = Fault.DROP
    assert world.resolve("www.example.test.").rcode == dns.rcode.SERVFAIL
    world.internet.reset_counters()
    again = world.resolve("www.example.test.")
    assert again.failure is ServfailReason.NO_REACHABLE_AUTHORITY
    assert world.last_queries == 0
    world.clock.advance(world.config.cache.failure_ttl + 1)
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].fault = Fault.NONE
    world.clock.advance(world.config.upstream.max_hold_down_time)  # the servers may be probed
    assert texts(world.resolve("www.example.test.").answer) == [
        "www.example.test. 300 IN A 192.0.2.1"
    ]


def test_servers_held_down_are_skipped_without_a_query(world: ScriptedWorld) -> None:
    world.resolve("example.test.", "NS")
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].fault = Fault.DROP
    for letter in "abc":  # distinct names: the failure cache does not answer them
        world.resolve(f"{letter}.example.test.")
    world.internet.reset_counters()
    answer = world.resolve("d.example.test.")
    assert answer.failure is ServfailReason.NO_REACHABLE_AUTHORITY
    assert sum(world.internet.servers[n].query_count for n in EXAMPLE_SERVERS) == 0


def test_stale_data_does_not_hide_a_policy_failure(world: ScriptedWorld) -> None:
    """A CNAME loop is the zone's fault, not an outage: SERVFAIL, even with stale data held."""
    world.cache.put_rrset(
        dns.rrset.from_text("loop1.example.test.", 1, "IN", "A", "192.0.2.9"), Rank.ANSWER
    )
    world.clock.advance(10)
    answer = world.resolve("loop1.example.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is ServfailReason.CNAME_LOOP
    assert not answer.stale


async def carry_one(server: Server) -> NetworkError | None:
    """What the network carrier reports for one UDP query to `server` (within 5 s)."""
    query = dns.message.make_query("www.example.test.", "A")
    send = Send(1, server, query.to_wire(), False, 0.0, SendQuery(server, query, False, 5.0))
    with trio.move_on_after(5.0):
        return await Network().carry(send, lambda _data: None)
    return None


@pytest.mark.parametrize("code", [errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL])
async def test_the_transport_reports_unreachable_addresses_at_once(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """The socket's connect fails the way a missing route makes it fail; a loopback target
    keeps any packet on this machine should the patch ever stop working."""

    def unreachable(sock: object, address: object) -> None:
        raise OSError(code, "unreachable")

    monkeypatch.setattr(upstream, "_connect", unreachable)
    outcome = await carry_one(Server("127.0.0.1", 9))
    assert outcome == NetworkError(errno.errorcode[code], unreachable=True)


async def test_an_icmp_error_after_sending_is_an_ordinary_failure() -> None:
    """Port unreachable comes back as ECONNREFUSED on the connected socket; anyone who guesses
    the source port can forge it, so it must not mark the address unreachable."""
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as closed:
        await closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    outcome = await carry_one(Server("127.0.0.1", port))
    assert outcome == NetworkError("ECONNREFUSED", unreachable=False)


def test_a_server_that_refused_a_zone_is_not_asked_again_for_it(world: ScriptedWorld) -> None:
    """A lame mark is kept per server and zone (Unbound's infrastructure cache): a refusing
    server costs one query, not one per question."""
    world.resolve("example.test.", "NS")
    world.internet.reset_counters()
    world.internet.servers["ns1.example.test."].fault = Fault.REFUSED
    for _ in range(5):  # the refusing server looks far faster than its sibling
        world.context.servers.record_rtt("127.53.2.2", 2.0)
    for label in ("f", "g", "h", "i", "j"):
        assert world.resolve(f"{label}.example.test.").rcode == dns.rcode.NXDOMAIN
    assert world.internet.servers["ns1.example.test."].query_count == 1
    assert world.context.servers.is_lame(NS1_EXAMPLE, dns.name.from_text("example.test."))
    assert not world.context.servers.is_lame(NS1_EXAMPLE, dns.name.from_text("other.test."))
    world.clock.advance(world.config.upstream.infra_ttl + 1)
    assert not world.context.servers.is_lame(NS1_EXAMPLE, dns.name.from_text("example.test."))
