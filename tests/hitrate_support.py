"""Traces for the `resolver hitrate` tests: one computed by hand, one from the test internet.

`resolver.testing.captures` writes them as every input format.
"""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rrset

from resolver.config import Config, UpstreamConfig
from resolver.engine import Client
from resolver.testing import TestInternet
from resolver.testing.captures import Exchange
from resolver.testing.scripted import FakeClock, ScriptedWorld

T0 = 1_700_000_000.0


def response(
    query: dns.message.Message, rcode: int = 0, answer: str = "", soa_ttl: int = 0, minimum: int = 0
) -> bytes:
    """The response to `query`: `answer` is a record in text ("a.test. 100 IN A 192.0.2.1");
    a negative answer gets an SOA of TTL `soa_ttl` and MINIMUM `minimum`."""
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.Rcode(rcode))
    if answer:
        reply.answer.append(dns.rrset.from_text(*_split(answer)))
    if soa_ttl:
        reply.authority.append(
            dns.rrset.from_text(
                "test.", soa_ttl, "IN", "SOA", f"ns.test. host.test. 1 7200 3600 1209600 {minimum}"
            )
        )
    return reply.to_wire()


def _split(record: str) -> tuple[str, int, str, str, str]:
    name, ttl, rdclass, rdtype, rdata = record.split(maxsplit=4)
    return name, int(ttl), rdclass, rdtype, rdata


#: The hand-computed trace (docstring of tests/test_hitrate.py): (seconds after T0, name,
#: type, what the resolver answered). Hits carry the TTL aged, as a resolver's cache sends it.
HAND = (
    (0, "a.test.", "A", "a.test. 100 IN A 192.0.2.1"),
    (10, "a.test.", "A", "a.test. 90 IN A 192.0.2.1"),
    (20, "b.test.", "A", "b.test. 1000 IN A 192.0.2.2"),
    (30, "c.test.", "A", "c.test. 100 IN A 192.0.2.3"),
    (40, "a.test.", "A", "a.test. 60 IN A 192.0.2.1"),
    (50, "b.test.", "A", "b.test. 970 IN A 192.0.2.2"),
    (60, "nx.test.", "A", "NXDOMAIN 60 30"),
    (70, "NX.test.", "A", "NXDOMAIN 50 20"),
    (75, "sub.nx.test.", "A", "NXDOMAIN 60 30"),
    (95, "nx.test.", "A", "NXDOMAIN 60 30"),
    (120, "a.test.", "A", "a.test. 100 IN A 192.0.2.1"),
    (130, "b.test.", "A", "b.test. 890 IN A 192.0.2.2"),
    (140, "c.test.", "A", "c.test. 100 IN A 192.0.2.3"),
)


def hand_trace() -> list[Exchange]:
    """HAND as exchanges from three clients (one on IPv6), every third one over TCP."""
    clients = ("192.0.2.10", "192.0.2.11", "2001:db8::10")
    exchanges = []
    for index, (offset, name, rdtype, answer) in enumerate(HAND):
        query = dns.message.make_query(name, rdtype, id=1000 + index)
        if answer.startswith("NXDOMAIN"):
            _word, soa_ttl, minimum = answer.split()
            wire = response(query, dns.rcode.NXDOMAIN, soa_ttl=int(soa_ttl), minimum=int(minimum))
        else:
            wire = response(query, answer=answer)
        exchanges.append(
            Exchange(
                T0 + offset,
                clients[index % 3],
                40000 + index,
                query.to_wire(),
                wire,
                tcp=index % 3 == 2,
            )
        )
    return exchanges


#: Questions to the test internet: (seconds after T0, name, type).
INTERNET = (
    (0, "www.example.test.", "A"),
    (10, "www.example.test.", "A"),
    (20, "mail.example.test.", "A"),
    (30, "www.other.test.", "A"),
    (100, "www.other.test.", "A"),
    (160, "www.other.test.", "A"),
    (200, "nope.example.test.", "A"),
    (250, "nope.example.test.", "A"),
    (260, "x.nope.example.test.", "A"),
    (320, "www.example.test.", "A"),
    (330, "www.example.test.", "AAAA"),
    (400, "mail.example.test.", "A"),
)


def internet_trace(internet: TestInternet) -> tuple[list[Exchange], int]:
    """INTERNET asked of a real engine over the test internet on a fake clock: the exchanges
    as a capture would see them, and how many of the queries the engine answered without an
    upstream query."""
    clock = FakeClock(T0)
    world = ScriptedWorld(
        internet, Config(upstream=UpstreamConfig(query_loopback=True)), clock=clock
    )
    exchanges = []
    hits = 0
    for index, (offset, name, rdtype) in enumerate(INTERNET):
        clock.now = T0 + offset
        query = dns.message.make_query(name, rdtype, id=2000 + index).to_wire()
        misses = world.engine.stats.cache_misses
        reply = world.query(query, Client("127.0.0.1"))  # inside the default access list
        assert reply is not None and reply[3] & 0x0F in (0, 3), reply
        hits += world.engine.stats.cache_misses == misses
        exchanges.append(Exchange(T0 + offset, "192.0.2.20", 50000 + index, query, reply))
    return exchanges, hits
