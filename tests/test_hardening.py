"""Broken and hostile authoritative servers, and the caps on work, through the pure iterator.

Each test runs the real iterator against the test internet's servers (their answers, faults and
counters) with no sockets, so it is exact and fast; the socket-level attacks live in
test_spoofing.py.
"""

from __future__ import annotations

import dataclasses

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.config import CacheConfig, Limits, UpstreamConfig
from resolver.core.reasons import ServfailReason
from resolver.testing import Fault, TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import loopback_config, texts

EXAMPLE_SERVERS = ("ns1.example.test.", "ns2.example.test.")


def world_with(internet: TestInternet, **changes: object) -> ScriptedWorld:
    return ScriptedWorld(internet, loopback_config(**changes))


@pytest.mark.parametrize(
    "fault", [Fault.REFUSED, Fault.SERVFAIL, Fault.LAME, Fault.GARBAGE, Fault.WRONG_ID, Fault.DROP]
)
def test_a_broken_server_is_skipped_for_its_sibling(world: ScriptedWorld, fault: Fault) -> None:
    broken = world.internet.servers["ns1.example.test."]
    broken.fault = fault
    for name in ("www", "mail", "alias", "a.b.c"):
        answer = world.resolve(f"{name}.example.test.")
        assert answer.rcode == dns.rcode.NOERROR, name
        assert answer.answer, name
    assert broken.query_count >= 1  # it was tried, and its answer was not believed


def test_lame_answers_are_not_cached(world: ScriptedWorld) -> None:
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].fault = Fault.LAME
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    root_ns = world.cache.get_rrset(dns.name.root, dns.rdatatype.NS)
    # the upward referral to "." did not replace what the root servers said about themselves
    assert root_ns is not None and {str(r.target) for r in root_ns} == {
        "a.root-servers.test.",
        "b.root-servers.test.",
    }


def test_referral_depth_is_capped(internet: TestInternet) -> None:
    world = world_with(internet, limits=Limits(max_referrals=1))
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is ServfailReason.REFERRAL_DEPTH


def test_0x20_randomises_the_case_of_upstream_names(internet: TestInternet) -> None:
    config = loopback_config()
    config = dataclasses.replace(
        config, upstream=dataclasses.replace(config.upstream, use_0x20=True)
    )
    world = ScriptedWorld(internet, config)
    answer = world.resolve("www.example.test.")
    assert texts(answer.answer)[0].lower() == "www.example.test. 300 in a 192.0.2.1"
    sent = [q.qname.to_text() for s in internet.servers.values() for q in s.queries]
    sent = [name for name in sent if name != "."]
    assert sent and any(name != name.lower() for name in sent)
    # different queries for the same name carry different case patterns
    assert len(set(sent)) == len(sent)


def test_0x20_rejects_a_response_that_changes_the_case(internet: TestInternet) -> None:
    upstream = UpstreamConfig(query_loopback=True, timeout=0.3, use_0x20=True)
    world = ScriptedWorld(internet, dataclasses.replace(loopback_config(), upstream=upstream))
    original = internet.respond

    def lowercasing(address: str, query, tcp: bool = False):  # type: ignore[no-untyped-def]
        reply = original(address, query, tcp)
        if reply is not None and not isinstance(reply, bytes):
            asked = reply.question[0]  # shared with the query: replace it, do not mutate it
            lowered = asked.name.canonicalize()
            reply.question = [dns.rrset.RRset(lowered, asked.rdclass, asked.rdtype)]
        return reply

    internet.respond = lowercasing  # type: ignore[method-assign]
    assert world.resolve("www.example.test.").rcode == dns.rcode.SERVFAIL


def test_stale_answer_when_every_authority_fails(world: ScriptedWorld) -> None:
    world.resolve("alias.example.test.")
    world.clock.advance(3 * 3600)
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].fault = Fault.DROP
    answer = world.resolve("alias.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert answer.stale
    assert texts(answer.answer) == [
        "alias.example.test. 30 IN CNAME www.example.test.",
        "www.example.test. 30 IN A 192.0.2.1",
    ]


def test_no_stale_answer_beyond_the_maximum_staleness(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    world.clock.advance(300 + 86_400 + 1)
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].fault = Fault.DROP
    assert world.resolve("www.example.test.").rcode == dns.rcode.SERVFAIL


def test_serve_stale_can_be_switched_off(internet: TestInternet) -> None:
    world = world_with(internet, cache=CacheConfig(serve_stale=False))
    world.resolve("www.example.test.")
    world.clock.advance(301)
    for name in EXAMPLE_SERVERS:
        internet.servers[name].fault = Fault.DROP
    assert world.resolve("www.example.test.").rcode == dns.rcode.SERVFAIL


def test_fresh_data_is_preferred_over_stale(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    world.clock.advance(301)
    answer = world.resolve("www.example.test.")
    assert not answer.stale
    assert answer.answer[0].ttl == 300
