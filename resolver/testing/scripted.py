"""Drive the pure iterator over a `TestInternet` with no sockets and a clock that tests move.

This is the `perform` of DESIGN.md for tests and simulations: each `SendQuery` is answered by
`TestInternet.respond()`, through a real wire round trip so that what the iterator sees is what
would have crossed a socket. Silence and garbage both become a `Timeout`, as the real transport
ignores packets it cannot parse and then gives up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.rdatatype

from resolver.cache.records import RecordCache
from resolver.cache.servers import ServerTable
from resolver.config import Config
from resolver.core.actions import Answer, Done, Outcome, Response, SendQuery, Timeout
from resolver.core.hints import parse_root_hints
from resolver.core.resolution import Context, Resolution, Tracer
from resolver.core.scrub import bare_header, is_response_to
from resolver.testing.internet import TestInternet


@dataclass
class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def perform(internet: TestInternet, action: SendQuery, rtt: float = 0.01) -> Outcome:
    try:
        reply = internet.respond(action.server.address, action.query, action.tcp)
    except KeyError:
        return Timeout()  # nobody at that address
    if reply is None:
        return Timeout()
    data = reply if isinstance(reply, bytes) else reply.to_wire(max_size=65535)
    try:
        message: dns.message.Message | None = dns.message.from_wire(data)
    except dns.exception.DNSException:
        message = None
    if message is not None and is_response_to(action.query, message, exact_case=action.exact_case):
        return Response(message, rtt)
    bare = bare_header(data, message) if data[:2] == action.query.id.to_bytes(2, "big") else None
    # Otherwise the real transport ignores a wrong ID, question or garbage and waits on.
    return bare if bare is not None else Timeout()


@dataclass
class ScriptedWorld:
    """A resolver's shared state (cache, server table) facing a scripted internet."""

    internet: TestInternet
    config: Config
    clock: FakeClock = field(default_factory=FakeClock)
    seed: int = 1

    def __post_init__(self) -> None:
        self.context = Context(
            cache=RecordCache(self.config.cache, self.clock),
            servers=ServerTable(
                self.config.upstream.server_table_size, self.clock, self.config.upstream
            ),
            hints=parse_root_hints(self.internet.hints_text()),
            config=self.config,
            rng=random.Random(self.seed),
        )
        self.last_queries = 0

    @property
    def cache(self) -> RecordCache:
        return self.context.cache

    def resolve(self, name: str, rdtype: str = "A", trace: Tracer | None = None) -> Answer:
        """Run one resolution to the end; `last_queries` tells how many queries it sent."""
        resolution = Resolution(
            dns.name.from_text(name), dns.rdatatype.from_text(rdtype), self.context, trace
        )
        action = resolution.next_action()
        while isinstance(action, SendQuery):
            action = resolution.receive(perform(self.internet, action))
        assert isinstance(action, Done)
        self.last_queries = resolution.queries_sent
        return action.answer
