"""A hand-built internet of three authorities (root, `com.`, `example.com.`) as plain functions.

For tests that need replies the test internet's zone files cannot produce (a resolver or an
attacker at a server's address, a reply tailored to one question): each server is a function
from query to reply, and `World` drives the pure `Resolution` over them with no sockets. The
addresses are only keys of a dictionary here; no packet is ever sent.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.records import RecordCache
from resolver.cache.servers import ServerTable
from resolver.config import Config
from resolver.core.actions import Action, Answer, Done, Outcome, SendQuery, Timeout
from resolver.core.hints import parse_root_hints
from resolver.core.resolution import Context, Resolution, Tracer
from resolver.dnssec import TrustAnchors
from resolver.engine.outbound import match_reply

ROOT = "198.41.0.4"
COM = "192.5.6.30"
EX = "192.0.2.53"
HINTS = """. 518400 NS a.root-servers.net.
a.root-servers.net. 518400 A 198.41.0.4
"""
COM_SOA = "com. 900 SOA a.gtld-servers.net.com. nstld.verisign-grs.com. 1 1800 900 604800 86400"
EX_SOA = "example.com. 3600 SOA ns1.example.com. h.example.com. 1 7200 3600 1209600 3600"

Server = Callable[[dns.message.Message], dns.message.Message | None]
Override = Callable[[SendQuery], Outcome | None]


def rr(text: str) -> dns.rrset.RRset:
    name, ttl, rdtype, *data = text.split()
    return dns.rrset.from_text(name, int(ttl), "IN", rdtype, " ".join(data))


def reply(
    query: dns.message.Message,
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
    *,
    aa: bool = True,
    ra: bool = False,
    answer: tuple[str, ...] = (),
    authority: tuple[str, ...] = (),
    additional: tuple[str, ...] = (),
) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags &= ~dns.flags.RA
    if aa:
        response.flags |= dns.flags.AA
    if ra:
        response.flags |= dns.flags.RA
    response.set_rcode(rcode)
    response.answer = [rr(text) for text in answer]
    response.authority = [rr(text) for text in authority]
    response.additional = [rr(text) for text in additional]
    return response


def question(query: dns.message.Message) -> tuple[dns.name.Name, dns.rdatatype.RdataType]:
    return query.question[0].name, query.question[0].rdtype


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def root_server(query: dns.message.Message) -> dns.message.Message:
    qname, rdtype = question(query)
    if qname == dns.name.root and rdtype == dns.rdatatype.NS:
        return reply(
            query,
            answer=(". 518400 NS a.root-servers.net.",),
            additional=(f"a.root-servers.net. 518400 A {ROOT}",),
        )
    if qname.is_subdomain(name("com.")):
        return reply(
            query,
            aa=False,
            authority=("com. 172800 NS a.gtld-servers.net.com.",),
            additional=(f"a.gtld-servers.net.com. 172800 A {COM}",),
        )
    soa = ". 86400 SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400"
    return reply(query, dns.rcode.NXDOMAIN, authority=(soa,))


def com_server(query: dns.message.Message) -> dns.message.Message:
    qname, _ = question(query)
    if qname.is_subdomain(name("example.com.")):
        return reply(
            query,
            aa=False,
            authority=("example.com. 172800 NS ns1.example.com.",),
            additional=(f"ns1.example.com. 172800 A {EX}",),
        )
    if qname == name("com."):
        return reply(query, authority=(COM_SOA,))
    return reply(query, dns.rcode.NXDOMAIN, authority=(COM_SOA,))


EX_DATA = {
    ("www.example.com.", "A"): ("www.example.com. 300 A 192.0.2.1",),
    ("example.com.", "NS"): ("example.com. 3600 NS ns1.example.com.",),
    ("ns1.example.com.", "A"): (f"ns1.example.com. 3600 A {EX}",),
    ("alias.example.com.", "*"): ("alias.example.com. 300 CNAME target.example.com.",),
    ("target.example.com.", "A"): ("target.example.com. 300 A 192.0.2.7",),
    ("big.example.com.", "TXT"): (
        "big.example.com. 300 TXT " + " ".join(['"' + "x" * 200 + '"'] * 10),
    ),
}
EX_NAMES = {owner for owner, _ in EX_DATA} | {"example.com.", "b.example.com."}


def ex_server(query: dns.message.Message) -> dns.message.Message:
    """example.com.'s server; it does not chase CNAMEs, as some servers do not."""
    qname, rdtype = question(query)
    owner = qname.to_text().lower()
    for key in ((owner, dns.rdatatype.to_text(rdtype)), (owner, "*")):
        if key in EX_DATA:
            return reply(query, answer=EX_DATA[key])
    if owner in EX_NAMES:
        return reply(query, authority=(EX_SOA,))
    return reply(query, dns.rcode.NXDOMAIN, authority=(EX_SOA,))


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A resolver's shared state facing the hand-built servers; `log` records every query."""

    def __init__(self, config: Config | None = None, servers: Mapping[str, Server] | None = None):
        self.config = config or Config()
        self.clock = Clock()
        self.servers: dict[str, Server] = {ROOT: root_server, COM: com_server, EX: ex_server}
        self.servers.update(servers or {})
        self.context = Context(
            cache=RecordCache(self.config.cache, self.clock),
            servers=ServerTable(
                self.config.upstream.server_table_size, self.clock, self.config.upstream
            ),
            hints=parse_root_hints(HINTS),
            config=self.config,
            rng=random.Random(1),
            anchors=TrustAnchors(),  # a hand-built, unsigned root: nothing to validate
        )
        self.log: list[tuple[str, str, str, bool]] = []
        self.override: Override | None = None
        self.last_queries = 0

    @property
    def cache(self) -> RecordCache:
        return self.context.cache

    def perform(self, action: SendQuery) -> Outcome:
        qname, rdtype = question(action.query)
        entry = (action.server.address, qname.to_text(), dns.rdatatype.to_text(rdtype), action.tcp)
        self.log.append(entry)
        if self.override is not None:
            outcome = self.override(action)
            if outcome is not None:
                return outcome
        server = self.servers.get(action.server.address)
        response = server(action.query) if server is not None else None
        if response is None:
            return Timeout()
        wire = response.to_wire(max_size=65535)
        if not action.tcp and len(wire) > 1232:
            truncated = dns.message.make_response(action.query)
            truncated.flags |= dns.flags.TC
            wire = truncated.to_wire()
        outcome = match_reply(action, wire, 0.01)  # as the engine matches what comes back
        return Timeout() if outcome is None else outcome

    def start(self, qname: str, rdtype: str = "A", trace: Tracer | None = None) -> Resolution:
        return Resolution(name(qname), dns.rdatatype.from_text(rdtype), self.context, trace)

    def finish(self, resolution: Resolution, action: Action) -> Answer:
        while isinstance(action, SendQuery):
            action = resolution.receive(self.perform(action))
        assert isinstance(action, Done)
        self.last_queries = resolution.queries_sent
        return action.answer

    def resolve(self, qname: str, rdtype: str = "A", trace: Tracer | None = None) -> Answer:
        resolution = self.start(qname, rdtype, trace)
        return self.finish(resolution, resolution.next_action())


def texts(answer: Answer) -> list[str]:
    return [line for rrset in answer.answer for line in rrset.to_text().splitlines()]
