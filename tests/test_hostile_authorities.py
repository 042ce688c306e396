"""Replies crafted by broken or hostile authorities, and what the resolver must not do with them.

Each test is a defect a review found by playing the attacker (see `tests/handbuilt.py` for the
servers): leaving a stub zone for the public internet, a short outage shutting a healthy server
off, a refused TCP connection or a forged header penalising a server, a resolver at a server's
address planting a NODATA, one question's caps failing another's, a fast lame server winning.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype

from resolver.config import Config, StubZone
from resolver.core.actions import BareHeader, NetworkError, SendQuery, Timeout
from tests.handbuilt import (
    COM,
    EX,
    ROOT,
    World,
    com_server,
    ex_server,
    name,
    question,
    reply,
    texts,
)

EX2 = "192.0.2.54"
STUB, SUB_NS = "10.1.0.1", "10.1.0.2"
HOST = "host.sub.corp.example."


def warm(world: World) -> None:
    assert world.resolve("www.example.com.").rcode == dns.rcode.NOERROR
    world.log.clear()


def com_with_two_servers(query: dns.message.Message) -> dns.message.Message:
    if question(query)[0].is_subdomain(name("example.com.")):
        return reply(
            query,
            aa=False,
            authority=(
                "example.com. 172800 NS ns1.example.com.",
                "example.com. 172800 NS ns2.example.com.",
            ),
            additional=(f"ns1.example.com. 172800 A {EX}", f"ns2.example.com. 172800 A {EX2}"),
        )
    return com_server(query)


# --- a short outage must not shut a healthy server off -------------------------------------


def test_an_outage_seen_by_concurrent_questions_is_retransmitted_through() -> None:
    world = World()
    warm(world)
    names = ("alias.example.com.", "target.example.com.", "ns1.example.com.")
    resolutions = [world.start(n) for n in names]
    for resolution in resolutions:
        first = resolution.next_action()
        assert isinstance(first, SendQuery) and first.server.address == EX
    # all datagrams are lost in the same blackout; the server is fine again afterwards, and
    # the last to hear of the timeout is the first to go on
    after = [resolution.receive(Timeout()) for resolution in resolutions]
    answers = [world.finish(r, a) for r, a in reversed(list(zip(resolutions, after, strict=True)))]
    assert [answer.rcode for answer in answers] == [dns.rcode.NOERROR] * 3
    assert world.resolve("www.example.com.", "TXT").rcode != dns.rcode.SERVFAIL


# (One lost datagram shared by merged queries is one failure: tests/test_engine.py.)


def test_a_server_without_tcp_keeps_serving_over_udp() -> None:
    world = World()
    warm(world)
    world.override = lambda action: NetworkError("ECONNREFUSED") if action.tcp else None
    assert world.resolve("big.example.com.", "TXT").rcode == dns.rcode.SERVFAIL  # needs TCP
    small = world.resolve("target.example.com.")
    assert texts(small) == ["target.example.com. 300 IN A 192.0.2.7"]
    assert not world.context.servers.held_down(EX)


# --- a stub zone stays a stub zone -----------------------------------------------------------


def stub_server(query: dns.message.Message) -> dns.message.Message:
    if question(query)[0].is_subdomain(name("sub.corp.example.")):
        return reply(
            query,
            aa=False,
            authority=("sub.corp.example. 86400 NS ns.sub.corp.example.",),
            additional=(f"ns.sub.corp.example. 86400 A {SUB_NS}",),
        )
    soa = "corp.example. 3600 SOA ns.corp.example. h.corp.example. 1 1 1 1 3600"
    return reply(query, authority=(soa,))


def sub_server(query: dns.message.Message) -> dns.message.Message:
    qname, rdtype = question(query)
    if qname == name(HOST) and rdtype == dns.rdatatype.A:
        return reply(query, answer=(f"{HOST} 60 A 10.9.9.9",))
    soa = "sub.corp.example. 3600 SOA ns.sub.corp.example. h.corp.example. 1 1 1 1 3600"
    return reply(query, dns.rcode.NXDOMAIN, authority=(soa,))


def stub_world() -> World:
    config = Config(stub_zones=(StubZone("corp.example.", (STUB,)),))
    return World(config, {STUB: stub_server, SUB_NS: sub_server})


def test_relearning_a_delegation_below_a_stub_zone_stays_inside_it() -> None:
    world = stub_world()
    assert world.resolve(HOST).rcode == dns.rcode.NOERROR
    world.clock.now += 120  # the answer expired; the sub-zone's NS set is still cached
    dead = NetworkError("EHOSTUNREACH", unreachable=True)
    world.override = lambda action: dead if action.server.address == SUB_NS else None
    world.log.clear()
    world.resolve(HOST)
    assert not [entry for entry in world.log if entry[0] in (ROOT, COM)]
    world.override = None  # the internal server is back: nothing public was cached
    world.clock.now += 60
    assert texts(world.resolve(HOST)) == [f"{HOST} 60 IN A 10.9.9.9"]


# --- what a server says about others, and how fast it says nothing ---------------------------


def test_a_resolver_at_a_servers_address_cannot_plant_a_nodata() -> None:
    """RA=1 without AA, a CNAME and an SOA: only the alias may be taken, never the NODATA."""

    def recursive(query: dns.message.Message) -> dns.message.Message:
        if question(query)[0] == name("alias.example.com."):
            soa = "example.com. 86400 SOA ns1.example.com. h.example.com. 1 7200 3600 1209600 86400"
            return reply(
                query,
                aa=False,
                ra=True,
                answer=("alias.example.com. 300 CNAME target.example.com.",),
                authority=(soa,),
            )
        return reply(query, dns.rcode.REFUSED, aa=False, ra=True)

    upstream = dataclasses.replace(Config().upstream, qname_minimisation=False)
    world = World(Config(upstream=upstream), {COM: com_with_two_servers, EX2: recursive})
    world.resolve("www.example.com.")
    world.context.servers.record_rtt(EX, 0.5)
    world.context.servers.record_rtt(EX2, 0.001)  # the impostor answers first
    assert texts(world.resolve("alias.example.com.")) == [
        "alias.example.com. 300 IN CNAME target.example.com.",
        "target.example.com. 300 IN A 192.0.2.7",
    ]
    assert world.cache.get_negative(name("target.example.com."), dns.rdatatype.A) is None


def test_a_fast_refusing_server_does_not_win_selection() -> None:
    def refused(query: dns.message.Message) -> dns.message.Message:
        return reply(query, dns.rcode.REFUSED, aa=False)

    world = World(servers={COM: com_with_two_servers, EX2: refused})
    world.resolve("www.example.com.")
    for index in range(5):
        world.context.servers.record_rtt(EX, 0.05)  # the good server takes 50 ms
        world.resolve(f"n{index}.example.com.", "MX")
    assert sum(1 for entry in world.log if entry[0] == EX2) <= 2


def test_a_forged_bare_formerr_does_not_switch_edns_off() -> None:
    world = World(Config(upstream=dataclasses.replace(Config().upstream, use_0x20=True)))
    world.resolve("www.example.com.")
    fired: list[int] = []

    def spoof(action: SendQuery) -> BareHeader | None:
        if action.server.address == EX and not fired:
            fired.append(1)
            return BareHeader(dns.flags.QR | dns.rcode.FORMERR)  # nothing to check 0x20 on
        return None

    world.override = spoof
    assert world.resolve("target.example.com.").rcode == dns.rcode.NOERROR
    assert not world.context.servers.no_edns(EX)


# --- one question's caps are not another's failure -------------------------------------------

#: zone: (its NS name, glue address or None, the server's address). a.com's servers are named in
#: b.com, b.com's in c.com, and so on: a glueless chain as deep as an attacker likes.
CHAIN = {
    "a.com.": ("ns.b.com.", None, "192.0.2.101"),
    "b.com.": ("ns.c.com.", None, "192.0.2.102"),
    "c.com.": ("ns.d.com.", None, "192.0.2.103"),
    "d.com.": ("ns.e.com.", None, "192.0.2.104"),
    "e.com.": ("ns.e.com.", "192.0.2.105", "192.0.2.105"),
    "v.com.": ("ns.c.com.", None, "192.0.2.103"),  # the victim, served by c.com's host
}
HOSTS = {
    "ns.b.com.": "192.0.2.102",
    "ns.c.com.": "192.0.2.103",
    "ns.d.com.": "192.0.2.104",
    "ns.e.com.": "192.0.2.105",
    "www.a.com.": "192.0.2.200",
    "www.v.com.": "192.0.2.201",
}


def chain_com(query: dns.message.Message) -> dns.message.Message:
    for zone, (ns, glue, _) in CHAIN.items():
        if question(query)[0].is_subdomain(name(zone)):
            extra = (f"{ns} 3600 A {glue}",) if glue else ()
            return reply(query, aa=False, authority=(f"{zone} 3600 NS {ns}",), additional=extra)
    return com_server(query)


def chain_authority(query: dns.message.Message) -> dns.message.Message:
    qname, rdtype = question(query)
    text = qname.to_text().lower()
    zone = next(z for z in CHAIN if qname.is_subdomain(name(z)))
    soa = f"{zone} 300 SOA {CHAIN[zone][0]} h.{zone} 1 1 1 1 300"
    if text in HOSTS and rdtype == dns.rdatatype.A:
        return reply(query, answer=(f"{text} 300 A {HOSTS[text]}",))
    if text in HOSTS or text == zone:
        return reply(query, authority=(soa,))
    return reply(query, dns.rcode.NXDOMAIN, authority=(soa,))


def test_a_failure_inside_a_deep_glueless_chain_is_not_remembered_for_others() -> None:
    servers = {COM: chain_com} | {address: chain_authority for _, _, address in CHAIN.values()}
    world = World(servers=servers)
    world.resolve("www.a.com.")  # the attacker's question runs into the glueless caps
    assert world.cache.get_failure(name("ns.c.com."), dns.rdatatype.A) is None
    assert world.resolve("www.v.com.").rcode == dns.rcode.NOERROR


def test_a_reply_with_another_opcode_is_no_answer() -> None:
    """RFC 1035 4.1.1: a reply copies the query's opcode; one that does not answers nothing."""

    def status(query: dns.message.Message) -> dns.message.Message:
        response = reply(query, answer=("www.example.com. 300 A 6.6.6.6",))
        response.set_opcode(dns.opcode.STATUS)
        return response

    world = World(servers={COM: com_with_two_servers, EX2: status})
    world.context.servers.record_rtt(EX, 0.5)  # the impostor's address is preferred
    assert texts(world.resolve("www.example.com.")) == ["www.example.com. 300 IN A 192.0.2.1"]


# --- the rest of a chain is asked again, but never at the price of a whole walk per link -----


def in_zone_chain(links: int, labels: int) -> Callable[[dns.message.Message], dns.message.Message]:
    """example.com.'s server with `www` CNAME -> ... `links` times, each target `labels`
    labels below the apex, the last one with an address; every reply carries the rest of the
    chain, as servers that chase aliases send it."""
    owners = ["www.example.com."] + [
        ".".join(f"l{link}x{label}" for label in range(labels)) + ".example.com."
        for link in range(links)
    ]
    records = [f"{a} 300 CNAME {b}" for a, b in itertools.pairwise(owners)]
    records.append(f"{owners[-1]} 300 A 192.0.2.9")

    def server(query: dns.message.Message) -> dns.message.Message:
        owner = question(query)[0].to_text().lower()
        if owner in owners:
            return reply(query, answer=tuple(records[owners.index(owner) :]))
        soa = "example.com. 3600 SOA ns1.example.com. h.example.com. 1 7200 3600 1209600 3600"
        if any(o.endswith("." + owner) for o in owners):
            return reply(query, authority=(soa,))
        return reply(query, dns.rcode.NXDOMAIN, authority=(soa,))

    return server


def test_a_long_chain_inside_one_zone_costs_one_query_a_link() -> None:
    """The zone's servers named each target themselves: nothing to hide by minimising it."""
    world = World(servers={EX: in_zone_chain(links=8, labels=5)})
    answer = world.resolve("www.example.com.", "AAAA")
    assert answer.rcode == dns.rcode.NOERROR
    assert len(answer.answer) == 8  # the eight CNAMEs; the last name has no AAAA
    assert world.last_queries <= 4 + 8 + 1  # the walk to the zone, a query a link, one more


def test_a_lost_datagram_while_the_parent_is_down_does_not_fail_a_healthy_zone() -> None:
    world = World()
    warm(world)
    world.clock.now += 400  # the answer expired, the delegation is still cached
    lost = [1]

    def outage(action: SendQuery) -> Timeout | None:
        if action.server.address == COM:
            return Timeout()  # the TLD is unreachable
        if action.server.address == EX and lost[0]:
            lost[0] -= 1
            return Timeout()  # and one datagram to the child is lost
        return None

    world.override = outage
    answer = world.resolve("www.example.com.")
    assert texts(answer) == ["www.example.com. 300 IN A 192.0.2.1"]
    assert not answer.stale


def test_a_resolver_at_a_servers_address_cannot_plant_a_dname() -> None:
    def middlebox(query: dns.message.Message) -> dns.message.Message:
        if question(query)[0] == name("www.example.com."):
            redirect = (
                "example.com. 86400 DNAME evil.net.",
                "www.example.com. 86400 CNAME www.evil.net.",
            )
            return reply(query, aa=False, ra=True, answer=redirect)
        return ex_server(query)

    world = World(servers={EX: middlebox})
    world.resolve("www.example.com.")
    assert texts(world.resolve("target.example.com.")) == ["target.example.com. 300 IN A 192.0.2.7"]
    assert world.cache.get_rrset(name("example.com."), dns.rdatatype.DNAME) is None
