"""The pure iterator over the scripted test internet: what it answers and what it costs."""

from __future__ import annotations

import dataclasses

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.records import Rank
from resolver.config import Limits, UpstreamConfig
from resolver.core.actions import SendQuery
from resolver.core.resolution import Resolution
from resolver.testing import Fault, TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import assert_only_the_configured_roots_were_asked, loopback_config, texts

ROOTS = ("a.root-servers.test.", "b.root-servers.test.")
TLDS = ("ns1.nic.test.", "ns2.nic.test.")


def queries_to(internet: TestInternet, names: tuple[str, ...]) -> int:
    return sum(internet.servers[name].query_count for name in names)


def test_cold_resolution_walks_from_the_root(world: ScriptedWorld) -> None:
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    assert answer.authority == ()
    # priming, root referral, TLD referral, authoritative answer
    assert world.last_queries == 4
    assert world.internet.total_queries() == 4
    assert queries_to(world.internet, ROOTS) == 2
    assert queries_to(world.internet, TLDS) == 1


def test_second_query_is_answered_from_cache_with_aged_ttl(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    world.internet.reset_counters()
    world.clock.advance(100)
    answer = world.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 200 IN A 192.0.2.1"]
    assert world.last_queries == 0
    assert world.internet.total_queries() == 0


def test_expired_answer_is_fetched_again(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    world.internet.reset_counters()
    world.clock.advance(301)
    answer = world.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    # the delegation is still cached: straight to example.test's servers
    assert world.last_queries == 1
    assert queries_to(world.internet, ROOTS + TLDS) == 0


def test_sibling_name_starts_at_the_cached_delegation(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    world.internet.reset_counters()
    answer = world.resolve("mail.example.test.")
    assert texts(answer.answer) == ["mail.example.test. 3600 IN A 192.0.2.2"]
    assert world.last_queries == 1
    assert queries_to(world.internet, ROOTS + TLDS) == 0


def test_cname_chain_across_zones_is_returned_whole(world: ScriptedWorld) -> None:
    answer = world.resolve("chain.example.test.")
    assert texts(answer.answer) == [
        "chain.example.test. 3600 IN CNAME www.other.test.",
        "www.other.test. 120 IN A 198.51.100.1",
    ]
    world.internet.reset_counters()
    cached = world.resolve("chain.example.test.")
    assert texts(cached.answer) == texts(answer.answer)
    assert world.internet.total_queries() == 0


def test_cname_inside_one_zone_costs_one_query(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    world.internet.reset_counters()
    answer = world.resolve("alias.example.test.")
    assert texts(answer.answer) == [
        "alias.example.test. 600 IN CNAME www.example.test.",
        "www.example.test. 300 IN A 192.0.2.1",
    ]
    assert world.last_queries == 1


def test_nxdomain_carries_the_soa_with_the_negative_ttl(world: ScriptedWorld) -> None:
    answer = world.resolve("nope.example.test.")
    assert answer.rcode == dns.rcode.NXDOMAIN
    assert answer.answer == ()
    # min(SOA TTL 3600, SOA MINIMUM 300)
    assert texts(answer.authority) == [
        "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test."
        " 1 7200 3600 1209600 300"
    ]


def test_negative_answers_are_cached_then_expire(world: ScriptedWorld) -> None:
    world.resolve("nope.example.test.")
    world.resolve("www.example.test.", "TXT")
    world.internet.reset_counters()
    world.clock.advance(120)
    nx = world.resolve("nope.example.test.")
    nodata = world.resolve("www.example.test.", "TXT")
    assert world.internet.total_queries() == 0
    assert nx.rcode == dns.rcode.NXDOMAIN
    assert nx.authority[0].ttl == 180
    assert nodata.rcode == dns.rcode.NOERROR and nodata.answer == ()
    assert nodata.authority[0].ttl == 180
    # a NODATA for TXT says nothing about A (which the type-A minimised step learnt at 0 s)
    assert texts(world.resolve("www.example.test.").answer) == [
        "www.example.test. 180 IN A 192.0.2.1"
    ]
    world.clock.advance(181)
    world.internet.reset_counters()
    world.resolve("nope.example.test.")
    assert world.internet.total_queries() == 1


def test_nodata_for_an_empty_non_terminal(world: ScriptedWorld) -> None:
    answer = world.resolve("b.c.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert answer.answer == ()
    assert [r.rdtype for r in answer.authority] == [dns.rdatatype.SOA]


def test_glueless_delegation_resolves_the_name_server_first(world: ScriptedWorld) -> None:
    answer = world.resolve("www.glueless.test.")
    assert texts(answer.answer) == ["www.glueless.test. 3600 IN A 203.0.113.1"]
    host = world.internet.servers["ns.glueless-host.other.test."]
    other = world.internet.servers["ns1.other.test."]
    # QNAME minimisation: other.test's server first sees the empty non-terminal above the host
    assert [str(q.qname) for q in other.queries] == [
        "glueless-host.other.test.",
        "ns.glueless-host.other.test.",
    ]
    assert [str(q.qname) for q in host.queries] == ["www.glueless.test."]


def test_delegation_ttl_is_capped_at_two_days(world: ScriptedWorld) -> None:
    world.resolve("www.longttl.test.")
    zone = dns.name.from_text("longttl.test.")
    ns = world.cache.get_rrset(zone, dns.rdatatype.NS)
    assert ns is not None and ns.ttl == 172_800
    glue = world.cache.get_rrset(dns.name.from_text("ns1.longttl.test."), dns.rdatatype.A)
    assert glue is not None and glue.ttl == 172_800
    world.clock.advance(172_801)
    assert world.cache.get_rrset(zone, dns.rdatatype.NS) is None


def test_delegations_survive_beyond_the_answer_ttl(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    world.clock.advance(100_000)  # past every answer TTL, within the 2-day delegation TTL
    world.internet.reset_counters()
    world.resolve("www.example.test.")
    assert queries_to(world.internet, ROOTS + TLDS) == 0
    assert world.last_queries == 1


def test_glue_is_never_returned_as_an_answer(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    ns1 = dns.name.from_text("ns1.example.test.")
    assert world.cache.rank_of(ns1, dns.rdatatype.A) == Rank.GLUE
    world.internet.reset_counters()
    answer = world.resolve("ns1.example.test.")
    assert texts(answer.answer) == ["ns1.example.test. 3600 IN A 127.53.2.1"]
    assert world.last_queries == 1  # asked the authority instead of serving glue
    assert world.cache.rank_of(ns1, dns.rdatatype.A) == Rank.ANSWER


def test_fails_over_when_a_name_server_is_silent(world: ScriptedWorld) -> None:
    world.internet.servers["ns1.example.test."].fault = Fault.DROP
    for name in ("www", "mail", "a.b.c", "alias"):
        answer = world.resolve(f"{name}.example.test.")
        assert answer.rcode == dns.rcode.NOERROR and answer.answer
    silent = world.internet.servers["ns1.example.test."].query_count
    assert silent == 1  # tried once, then remembered as slow


def test_all_servers_silent_gives_servfail(world: ScriptedWorld) -> None:
    for name in ("ns1.example.test.", "ns2.example.test."):
        world.internet.servers[name].fault = Fault.DROP
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is not None


def test_truncated_udp_answer_is_retried_over_tcp(world: ScriptedWorld) -> None:
    answer = world.resolve("big.example.test.", "TXT")
    assert answer.rcode == dns.rcode.NOERROR
    assert len(answer.answer[0]) == 40
    asked = [
        q
        for server in ("ns1.example.test.", "ns2.example.test.")
        for q in world.internet.servers[server].queries
    ]
    # the type-A step of QNAME minimisation, the TXT question over UDP, then over TCP
    assert sorted((q.qtype, q.tcp) for q in asked) == [
        (dns.rdatatype.A, False),
        (dns.rdatatype.TXT, False),
        (dns.rdatatype.TXT, True),
    ]


def test_server_that_truncates_everything_is_used_over_tcp(world: ScriptedWorld) -> None:
    for name in ("ns1.example.test.", "ns2.example.test."):
        world.internet.servers[name].fault = Fault.TRUNCATE
    answer = world.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]


def test_formerr_to_edns_falls_back_to_plain_dns_and_remembers(world: ScriptedWorld) -> None:
    servers = [world.internet.servers[n] for n in ("ns1.example.test.", "ns2.example.test.")]
    for server in servers:
        server.fault = Fault.NO_EDNS
    for name in ("www", "mail", "alias", "a.b.c"):
        assert world.resolve(f"{name}.example.test.").answer
    for server in servers:
        # one FORMERR taught us: every later query to that server goes without EDNS
        assert [q.edns for q in server.queries][:1] == [True]
        assert not any(q.edns for q in server.queries[1:])
    # 4 names, 2 EDNS retries, and 2 minimised steps for a.b.c (its empty non-terminals)
    assert sum(s.query_count for s in servers) == 4 + 2 + 2


def test_queries_carry_edns_with_our_payload(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    every = [q for s in world.internet.servers.values() for q in s.queries]
    assert every and all(q.edns for q in every)


def test_loopback_servers_are_not_queried_by_default(internet: TestInternet) -> None:
    world = ScriptedWorld(
        internet, dataclasses.replace(loopback_config(), upstream=UpstreamConfig())
    )
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    # The root servers' addresses come from the operator's hints file, so they are asked;
    # the TLD servers' loopback addresses come from the network (glue), so they are not.
    assert_only_the_configured_roots_were_asked(internet)


def test_cname_loop_gives_servfail(world: ScriptedWorld) -> None:
    answer = world.resolve("loop1.example.test.")
    assert answer.rcode == dns.rcode.SERVFAIL


def test_upstream_query_budget_is_enforced(internet: TestInternet) -> None:
    config = loopback_config(limits=Limits(max_upstream_queries=2))
    world = ScriptedWorld(internet, config)
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert internet.total_queries() == 2


def test_ds_is_asked_of_the_parent_zone(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    world.internet.reset_counters()
    answer = world.resolve("example.test.", "DS")
    assert answer.rcode == dns.rcode.NOERROR
    assert queries_to(world.internet, TLDS) == 1
    assert world.internet.servers["ns1.example.test."].query_count == 0


def test_trace_names_every_server_asked(world: ScriptedWorld) -> None:
    lines: list[str] = []
    world.resolve("www.example.test.", trace=lines.append)
    asked = [line.strip() for line in lines if line.strip().startswith("ask ")]
    assert asked == [
        asked[0],
        asked[1],
        "ask " + asked[2].split(" ", 1)[1],
        asked[3],
    ]
    assert "referral to test." in "\n".join(lines)
    assert "referral to example.test." in "\n".join(lines)
    assert "answer: www.example.test. 300 IN A 192.0.2.1" in "\n".join(lines)


def test_cold_questions_that_start_together_prime_at_the_same_root(world: ScriptedWorld) -> None:
    """Priming goes to the hints in order, so the carrier can share one packet among them."""
    firsts = []
    for label in ("a", "b", "c"):
        qname = dns.name.from_text(f"{label}.example.test.")
        action = Resolution(qname, dns.rdatatype.A, world.context).next_action()
        assert isinstance(action, SendQuery)
        firsts.append((action.server.address, action.query.question[0].name.to_text()))
    assert set(firsts) == {("127.53.0.1", ".")}
