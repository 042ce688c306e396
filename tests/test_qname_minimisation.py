"""QNAME minimisation (RFC 9156, relaxed mode): exactly what each tier of servers is asked.

Most tests drive the pure iterator over the scripted test internet and log every upstream query
in the order it is sent; one runs the real front end over sockets and reads the servers' logs.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
import trio

from resolver.config import UpstreamConfig
from resolver.core.minimise import Minimiser, label_schedule
from resolver.testing import Fault, TestInternet
from resolver.testing.faults import Reply
from resolver.testing.scripted import ScriptedWorld
from resolver.testing.topology import DEFAULT_SERVERS, DEFAULT_ZONES, EXAMPLE_ZONE
from tests.frontend_support import ask, query, start_resolver
from tests.helpers import loopback_config, texts

Sent = tuple[str, str, str]


def tier(server_name: str) -> str:
    """A short label for who was asked: root, tld, or the zone's own server name."""
    if server_name.endswith("root-servers.test."):
        return "root"
    if server_name.endswith("nic.test."):
        return "tld"
    return server_name.split(".", 1)[1].rstrip(".") if server_name.startswith("ns") else ""


def log_queries(internet: TestInternet) -> list[Sent]:
    """Every query the iterator sends from now on, in order: (tier, name, type)."""
    sent: list[Sent] = []
    original = internet.respond

    def respond(address: str, query: dns.message.Message, tcp: bool = False) -> Reply:
        asked = query.question[0]
        server = tier(internet.server_at(address).name)
        sent.append((server, asked.name.to_text(), dns.rdatatype.to_text(asked.rdtype)))
        return original(address, query, tcp)

    internet.respond = respond  # type: ignore[method-assign]  # a scripted stand-in
    return sent


def world_without_minimisation(internet: TestInternet) -> ScriptedWorld:
    config = loopback_config()
    upstream = dataclasses.replace(config.upstream, qname_minimisation=False)
    return ScriptedWorld(internet, dataclasses.replace(config, upstream=upstream))


PRIMING = ("root", ".", "NS")


def test_minimisation_is_on_by_default() -> None:
    assert UpstreamConfig().qname_minimisation is True


def test_each_tier_sees_only_the_labels_it_needs(world: ScriptedWorld) -> None:
    sent = log_queries(world.internet)
    answer = world.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    assert sent == [
        PRIMING,
        ("root", "test.", "A"),
        ("tld", "example.test.", "A"),
        ("example.test", "www.example.test.", "A"),
    ]
    assert world.last_queries == 4  # minimisation costs nothing when every label is a cut


def test_the_real_type_goes_only_to_the_zone_of_the_name(world: ScriptedWorld) -> None:
    sent = log_queries(world.internet)
    answer = world.resolve("text.example.test.", "TXT")
    assert texts(answer.answer) == ['text.example.test. 3600 IN TXT "hello"']
    assert sent == [
        PRIMING,
        ("root", "test.", "A"),
        ("tld", "example.test.", "A"),
        # text.example.test. could be a zone cut of its own, whose parent must not see TXT
        ("example.test", "text.example.test.", "A"),  # NODATA: no cut, a name of this zone
        ("example.test", "text.example.test.", "TXT"),
    ]


@pytest.mark.parametrize("rdtype", ["MX", "TXT", "AAAA", "NS", "SOA"])
def test_the_parent_of_an_apex_never_sees_the_real_type(world: ScriptedWorld, rdtype: str) -> None:
    sent = log_queries(world.internet)
    answer = world.resolve("example.test.", rdtype)
    assert answer.rcode == dns.rcode.NOERROR
    assert [q for q in sent if q[0] in ("root", "tld")] == [
        PRIMING,
        ("root", "test.", "A"),
        ("tld", "example.test.", "A"),  # a referral: example.test. is a zone of its own
    ]
    assert sent[-1] == ("example.test", "example.test.", rdtype)
    assert world.last_queries == 4


def test_empty_non_terminals_add_one_label_at_the_same_zone(world: ScriptedWorld) -> None:
    sent = log_queries(world.internet)
    answer = world.resolve("a.b.c.example.test.")
    assert texts(answer.answer) == ["a.b.c.example.test. 3600 IN A 192.0.2.3"]
    assert sent == [
        PRIMING,
        ("root", "test.", "A"),
        ("tld", "example.test.", "A"),
        ("example.test", "c.example.test.", "A"),  # NODATA: an empty non-terminal
        ("example.test", "b.c.example.test.", "A"),  # NODATA again
        ("example.test", "a.b.c.example.test.", "A"),
    ]


def test_what_the_walk_learnt_is_not_asked_again(world: ScriptedWorld) -> None:
    world.resolve("a.b.c.example.test.")
    sent = log_queries(world.internet)
    # the NODATA answers for c and b.c were cached: straight to the full name
    world.resolve("x.b.c.example.test.")
    assert sent == [("example.test", "x.b.c.example.test.", "A")]


def test_glueless_delegation_is_minimised_on_both_walks(world: ScriptedWorld) -> None:
    sent = log_queries(world.internet)
    answer = world.resolve("www.glueless.test.")
    assert texts(answer.answer) == ["www.glueless.test. 3600 IN A 203.0.113.1"]
    assert sent == [
        PRIMING,
        ("root", "test.", "A"),
        ("tld", "glueless.test.", "A"),  # referral to a name server without glue
        ("tld", "other.test.", "A"),  # the name server's own walk, from the cached test.
        ("other.test", "glueless-host.other.test.", "A"),  # an empty non-terminal
        ("other.test", "ns.glueless-host.other.test.", "A"),
        ("glueless-host.other.test", "www.glueless.test.", "A"),
    ]


def test_deep_delegations_see_one_more_label_each(world: ScriptedWorld) -> None:
    sent = log_queries(world.internet)
    answer = world.resolve("www.d2.d1.deep.test.")
    assert texts(answer.answer) == ["www.d2.d1.deep.test. 3600 IN A 192.0.2.77"]
    assert sent == [
        PRIMING,
        ("root", "test.", "A"),
        ("tld", "deep.test.", "A"),
        ("deep.test", "d1.deep.test.", "A"),
        ("d1.deep.test", "d2.d1.deep.test.", "A"),
        ("d2.d1.deep.test", "www.d2.d1.deep.test.", "A"),
    ]


def test_a_cached_delegation_gets_the_full_name_at_once(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    sent = log_queries(world.internet)
    answer = world.resolve("mail.example.test.", "MX")
    assert answer.rcode == dns.rcode.NOERROR
    # No root or TLD query; the type-A step tells whether mail.example.test. is a cut
    assert sent == [
        ("example.test", "mail.example.test.", "A"),
        ("example.test", "mail.example.test.", "MX"),
    ]
    # once a name is known to be in the zone, its other types go out at once
    sent.clear()
    world.resolve("mail.example.test.", "TXT")
    assert sent == [("example.test", "mail.example.test.", "TXT")]


def test_ds_goes_in_full_to_the_parent_only(world: ScriptedWorld) -> None:
    sent = log_queries(world.internet)
    answer = world.resolve("d2.d1.deep.test.", "DS")
    assert answer.rcode == dns.rcode.NOERROR
    assert sent == [
        PRIMING,
        ("root", "test.", "A"),
        ("tld", "deep.test.", "A"),
        ("deep.test", "d1.deep.test.", "A"),
        ("d1.deep.test", "d2.d1.deep.test.", "DS"),
    ]


def test_switching_it_off_sends_full_names_everywhere(internet: TestInternet) -> None:
    world = world_without_minimisation(internet)
    sent = log_queries(internet)
    answer = world.resolve("a.b.c.example.test.", "TXT")
    assert answer.rcode == dns.rcode.NOERROR and answer.answer == ()
    assert sent == [
        PRIMING,
        ("root", "a.b.c.example.test.", "TXT"),
        ("tld", "a.b.c.example.test.", "TXT"),
        ("example.test", "a.b.c.example.test.", "TXT"),
    ]


def test_nxdomain_for_a_minimised_name_resumes_with_the_full_name(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    sent = log_queries(world.internet)
    answer = world.resolve("x.nope.example.test.")
    assert answer.rcode == dns.rcode.NXDOMAIN
    assert [r.rdtype for r in answer.authority] == [dns.rdatatype.SOA]
    # relaxed mode: without DNSSEC an NXDOMAIN for an intermediate name is not trusted to
    # cover the names below it (RFC 8020), since some servers still deny empty non-terminals
    assert sent == [
        ("example.test", "nope.example.test.", "A"),
        ("example.test", "x.nope.example.test.", "A"),
    ]
    sent.clear()
    world.resolve("y.nope.example.test.")
    assert sent == [("example.test", "y.nope.example.test.", "A")]


def test_a_server_denying_empty_non_terminals_still_resolves(world: ScriptedWorld) -> None:
    """A broken server says NXDOMAIN for c.example.test although a.b.c.example.test exists."""
    internet = world.internet
    original = internet.respond
    denied = {dns.name.from_text("c.example.test."), dns.name.from_text("b.c.example.test.")}

    def deny_ents(address: str, query: dns.message.Message, tcp: bool = False) -> Reply:
        reply = original(address, query, tcp)
        if isinstance(reply, dns.message.Message) and reply.question[0].name in denied:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply

    internet.respond = deny_ents  # type: ignore[method-assign]  # a scripted stand-in
    world.resolve("www.example.test.")
    sent = log_queries(internet)
    answer = world.resolve("a.b.c.example.test.")
    assert texts(answer.answer) == ["a.b.c.example.test. 3600 IN A 192.0.2.3"]
    assert sent == [
        ("example.test", "c.example.test.", "A"),
        ("example.test", "a.b.c.example.test.", "A"),
    ]


@pytest.mark.parametrize("rcode", [dns.rcode.REFUSED, dns.rcode.SERVFAIL, dns.rcode.FORMERR])
def test_a_server_rejecting_minimised_names_gets_the_full_name(
    world: ScriptedWorld, rcode: dns.rcode.Rcode
) -> None:
    internet = world.internet
    world.resolve("www.example.test.")
    full = dns.name.from_text("a.b.c.example.test.")
    original = internet.respond
    addresses: list[str] = []

    def reject_minimised(address: str, query: dns.message.Message, tcp: bool = False) -> Reply:
        addresses.append(address)
        if query.question[0].name != full:
            rejection = dns.message.make_response(query)
            rejection.set_rcode(rcode)
            return rejection
        return original(address, query, tcp)

    internet.respond = reject_minimised  # type: ignore[method-assign]  # a scripted stand-in
    sent = log_queries(internet)
    answer = world.resolve("a.b.c.example.test.")
    assert texts(answer.answer) == ["a.b.c.example.test. 3600 IN A 192.0.2.3"]
    assert sent[0] == ("example.test", "c.example.test.", "A")
    assert sent[-1] == ("example.test", "a.b.c.example.test.", "A")
    assert all(name == "c.example.test." for _, name, _ in sent[:-1])  # FORMERR: EDNS retry
    assert len(set(addresses)) == 1, "the same server is asked the full name at once"


def test_silence_to_a_minimised_name_tries_the_next_server_with_it(
    world: ScriptedWorld,
) -> None:
    world.resolve("www.example.test.")
    world.internet.reset_counters()
    ns1, ns2 = (world.internet.servers[f"ns{n}.example.test."] for n in (1, 2))
    ns1.fault = Fault.DROP
    world.context.servers.record_rtt(ns1.address, 0.001)  # make ns1 the first choice
    world.context.servers.record_rtt(ns2.address, 0.2)  # but below ns1's timeout penalty
    answer = world.resolve("a.b.c.example.test.")
    assert texts(answer.answer) == ["a.b.c.example.test. 3600 IN A 192.0.2.3"]
    # a timeout says nothing about minimisation: the next server gets the same question
    assert [q.qname.to_text() for q in ns1.queries] == ["c.example.test."]
    assert [q.qname.to_text() for q in ns2.queries] == [
        "c.example.test.",
        "b.c.example.test.",
        "a.b.c.example.test.",
    ]


def deep_internet(labels: int) -> tuple[TestInternet, str]:
    """The standard internet plus a name `labels` labels deep in example.test."""
    prefix = ".".join(f"x{index}" for index in range(labels - 2))
    zones = dict(DEFAULT_ZONES)
    zones["example.test."] = EXAMPLE_ZONE + f"\n{prefix} 3600 A 192.0.2.99\n"
    return TestInternet(zones, DEFAULT_SERVERS), f"{prefix}.example.test."


def test_a_long_name_costs_at_most_max_minimise_count_queries() -> None:
    internet, name = deep_internet(20)
    world = ScriptedWorld(internet, loopback_config())
    sent = log_queries(internet)
    answer = world.resolve(name)
    assert texts(answer.answer) == [f"{name} 3600 IN A 192.0.2.99"]
    revealed = [len(dns.name.from_text(asked)) - 1 for _, asked, _ in sent[1:]]
    # RFC 9156 section 2.3: one label at a time for 4 steps, then 16 labels over 6 steps
    assert revealed == [1, 2, 3, 4, 6, 8, 11, 14, 17, 20]
    assert revealed == list(label_schedule(20, 10, 4))


def test_label_schedule() -> None:
    assert label_schedule(0, 10, 4) == ()
    assert label_schedule(3, 10, 4) == (1, 2, 3)
    assert label_schedule(10, 10, 4) == tuple(range(1, 11))
    assert label_schedule(11, 10, 4) == (1, 2, 3, 4, 5, 6, 7, 8, 9, 11)
    assert label_schedule(34, 10, 4) == (1, 2, 3, 4, 9, 14, 19, 24, 29, 34)
    for labels in range(1, 128):
        steps = label_schedule(labels, 10, 4)
        assert len(steps) <= 10 and steps[-1] == labels
        assert list(steps) == sorted(set(steps))


def test_minimiser_steps_from_any_known_ancestor() -> None:
    minimiser = Minimiser(dns.name.from_text("a.b.c.example.test."), 10, 4)
    assert minimiser.next_name(dns.name.root).to_text() == "test."
    assert minimiser.next_name(dns.name.from_text("example.test.")).to_text() == ("c.example.test.")
    full = dns.name.from_text("a.b.c.example.test.")
    assert minimiser.next_name(dns.name.from_text("b.c.example.test.")) == full
    assert minimiser.next_name(full) == full


def test_is_qname_is_name_equality_for_the_qname_and_its_ancestors() -> None:
    """`is_qname` counts labels instead of comparing names: for the qname and its ancestors,
    in any letter case, it must say what `==` says."""
    rng = random.Random(9156)
    for _ in range(300):
        labels = ["".join(rng.choice("aBc-9") for _ in range(rng.randint(1, 5)))]
        labels += [
            rng.choice(["x", "Y", "zz", "example", "TEST"]) for _ in range(rng.randint(0, 6))
        ]
        qname = dns.name.from_text(".".join(labels) + ".")
        minimiser = Minimiser(qname, 10, 4)
        for count in range(1, len(qname.labels) + 1):  # the root to the qname
            ancestor = dns.name.Name(
                [label.swapcase() if rng.random() < 0.5 else label for label in qname.labels]
            ).split(count)[1]
            assert minimiser.is_qname(ancestor) == (ancestor == qname)


def test_the_limit_of_steps_is_configurable(internet: TestInternet) -> None:
    config = loopback_config()
    upstream = dataclasses.replace(config.upstream, max_minimise_count=2, minimise_one_label=1)
    world = ScriptedWorld(internet, dataclasses.replace(config, upstream=upstream))
    sent = log_queries(internet)
    world.resolve("a.b.c.example.test.")
    # two steps for five labels: one label, then all of them (each zone sees them in full)
    assert sent == [
        PRIMING,
        ("root", "test.", "A"),
        ("tld", "a.b.c.example.test.", "A"),
        ("example.test", "a.b.c.example.test.", "A"),
    ]


async def test_each_tier_sees_only_its_labels_over_sockets(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    await start_resolver(nursery, live_internet, tmp_path)
    for name in ("www.example.test.", "a.b.c.example.test."):
        response = await ask(query(name))
        assert response.rcode() == dns.rcode.NOERROR and response.answer, name

    def seen(*servers: str) -> list[tuple[str, str]]:
        return sorted(
            (q.qname.to_text(), dns.rdatatype.to_text(q.qtype))
            for server in servers
            for q in live_internet.servers[server].queries
        )

    assert seen("a.root-servers.test.", "b.root-servers.test.") == [(".", "NS"), ("test.", "A")]
    assert seen("ns1.nic.test.", "ns2.nic.test.") == [("example.test.", "A")]
    assert seen("ns1.example.test.", "ns2.example.test.") == [
        ("a.b.c.example.test.", "A"),
        ("b.c.example.test.", "A"),
        ("c.example.test.", "A"),
        ("www.example.test.", "A"),
    ]
