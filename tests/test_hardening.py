"""Broken and hostile authoritative servers, and the caps on work, through the pure iterator.

Each test runs the real iterator against the test internet's servers (their answers, faults and
counters) with no sockets, so it is exact and fast; the socket-level attacks live in
test_spoofing.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

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
TLDS = ("ns1.nic.test.", "ns2.nic.test.")


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

    def lowercasing(  # the responder's own signature, whatever it returns
        address: str, query: dns.message.Message, tcp: bool = False
    ) -> Any:
        reply = original(address, query, tcp)
        if reply is not None and not isinstance(reply, bytes):
            asked = reply.question[0]  # shared with the query: replace it, do not mutate it
            lowered = asked.name.canonicalize()
            reply.question = [dns.rrset.RRset(lowered, asked.rdclass, asked.rdtype)]
        return reply

    internet.respond = lowercasing  # type: ignore[method-assign]  # a scripted stand-in
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


def rr(text: str) -> dns.rrset.RRset:
    name, ttl, rdtype, *data = text.split()
    return dns.rrset.from_text(name, int(ttl), "IN", rdtype, " ".join(data))


def test_a_server_cannot_plant_records_outside_its_zone(world: ScriptedWorld) -> None:
    planted = [
        ("answer", rr("www.other.test. 86400 A 6.6.6.6")),
        ("authority", rr("other.test. 86400 NS ns.evil.example.test.")),
        ("additional", rr("ns1.other.test. 86400 A 6.6.6.6")),
        ("additional", rr("a.root-servers.test. 86400 A 6.6.6.6")),
    ]
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].inject = list(planted)
    assert texts(world.resolve("www.example.test.").answer) == [
        "www.example.test. 300 IN A 192.0.2.1"
    ]
    cache = world.cache
    other = dns.name.from_text("other.test.")
    for name, rdtype in [
        ("www.other.test.", dns.rdatatype.A),
        ("ns1.other.test.", dns.rdatatype.A),
        ("a.root-servers.test.", dns.rdatatype.A),
    ]:
        held = cache.get_rrset(dns.name.from_text(name), rdtype)
        assert held is None or "6.6.6.6" not in held.to_text(), name
    assert cache.get_rrset(other, dns.rdatatype.NS) is None
    assert texts(world.resolve("www.other.test.").answer) == [
        "www.other.test. 120 IN A 198.51.100.1"
    ]


def test_glue_for_names_outside_the_delegating_zone_is_ignored(world: ScriptedWorld) -> None:
    # The TLD may give glue for names under test., but never for names under another TLD.
    for name in ("ns1.nic.test.", "ns2.nic.test."):
        world.internet.servers[name].inject = [
            ("additional", rr("ns1.example.invalid. 60 A 6.6.6.6"))
        ]
    world.resolve("www.example.test.")
    assert (
        world.cache.get_rrset(dns.name.from_text("ns1.example.invalid."), dns.rdatatype.A) is None
    )


def test_cname_chain_longer_than_the_cap_gives_servfail(world: ScriptedWorld) -> None:
    answer = world.resolve("c0.cnames.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is ServfailReason.CNAME_CHAIN_TOO_LONG


def test_cname_chain_across_zones_within_the_cap_is_followed(world: ScriptedWorld) -> None:
    answer = world.resolve("hop0.cnames.test.")
    assert len(answer.answer) == 9
    assert texts(answer.answer)[-1] == "hop8.cnames.test. 3600 IN A 192.0.2.28"


def test_delegation_cycle_between_two_zones_ends_in_servfail(world: ScriptedWorld) -> None:
    answer = world.resolve("www.loopa.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert world.last_queries < 20


def test_nxns_style_delegation_chases_a_bounded_number_of_names(world: ScriptedWorld) -> None:
    answer = world.resolve("www.manyns.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is ServfailReason.GLUELESS_LIMIT
    zone = dns.name.from_text("nowhere.test.")
    nowhere = [
        q
        for name in TLDS
        for q in world.internet.servers[name].queries
        if q.qname.is_subdomain(zone) and q.qname != zone
    ]
    # each of the 4 names chased costs an A and an AAAA lookup at most, never 10 names
    assert len({q.qname for q in nowhere}) == Limits().max_glueless_per_delegation
    assert len(nowhere) <= 2 * Limits().max_glueless_per_delegation


def test_deep_delegation_chain_is_walked(world: ScriptedWorld) -> None:
    answer = world.resolve("www.d2.d1.deep.test.")
    assert texts(answer.answer) == ["www.d2.d1.deep.test. 3600 IN A 192.0.2.77"]


def test_truncating_server_without_tcp_is_skipped(world: ScriptedWorld) -> None:
    broken = world.internet.servers["ns1.example.test."]
    broken.fault = Fault.NO_TCP
    for name in ("www", "mail", "alias"):
        assert world.resolve(f"{name}.example.test.").answer
    answer = world.resolve("big.example.test.", "TXT")
    assert len(answer.answer[0]) == 40


def test_no_server_with_tcp_gives_servfail_for_a_big_answer(world: ScriptedWorld) -> None:
    for name in EXAMPLE_SERVERS:
        world.internet.servers[name].fault = Fault.NO_TCP
    assert world.resolve("big.example.test.", "TXT").rcode == dns.rcode.SERVFAIL


def test_a_flood_of_unique_names_stays_within_the_cache_bound(internet: TestInternet) -> None:
    world = world_with(internet, cache=CacheConfig(max_entries=50))
    for index in range(400):
        answer = world.resolve(f"random-{index}.example.test.")
        assert answer.rcode == dns.rcode.NXDOMAIN
        assert len(world.cache) <= 50
    # the delegations were evicted like everything else, and the walk still works
    assert texts(world.resolve("www.example.test.").answer) == [
        "www.example.test. 300 IN A 192.0.2.1"
    ]
