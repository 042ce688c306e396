"""Drive the `Engine` over a `TestInternet` with no sockets and a clock that tests move.

Each `Send` is answered by `TestInternet.respond()` through a real wire round trip, so what the
engine sees is what would have crossed a socket. `drive` is the same loop the daemon runs
(`server/service.py`), with the script as the network: it carries the engine's outputs until
nothing is left to do, and moves the fake clock to the next deadline when the engine waits.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype

from resolver.cache.records import RecordCache
from resolver.config import Config
from resolver.core.actions import Answer, Outcome, SendQuery, Timeout
from resolver.core.hints import parse_root_hints
from resolver.core.resolution import Context, Tracer
from resolver.engine import Client, Close, Engine, Output, Reply, Send, SharedLookup, SharedStore
from resolver.engine.outbound import match_reply
from resolver.testing.internet import TestInternet


@dataclass
class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def respond(internet: TestInternet, address: str, query: object, tcp: bool) -> bytes | None:
    """What the test internet's server at `address` sends back, as bytes (None: silence)."""
    try:
        reply = internet.respond(address, query, tcp)  # type: ignore[arg-type]  # a Message
    except KeyError:
        return None  # nobody at that address
    if reply is None:
        return None
    return reply if isinstance(reply, bytes) else reply.to_wire(max_size=65535)


def perform(internet: TestInternet, action: SendQuery, rtt: float = 0.01) -> Outcome:
    """One exchange for a test that drives a single `Resolution` by hand.

    Silence and bytes that do not answer the query both become a `Timeout`, as the real
    transport ignores what does not match and then gives up.
    """
    data = respond(internet, action.server.address, action.query, action.tcp)
    outcome = None if data is None else match_reply(action, data, rtt)
    return Timeout() if outcome is None else outcome


Network = Callable[[Send], bytes | None]


def drive(
    engine: Engine,
    outputs: Iterable[Output],
    network: Network,
    clock: FakeClock,
    *,
    until: Callable[[], object] = lambda: False,
    wait_for_deadlines: bool = False,
    shared: dict[bytes, bytes] | None = None,
) -> list[Reply]:
    """Carry `outputs` and everything they lead to; the replies meant for clients.

    `shared` plays the shared cache (a dict of keys to values; None: a shared cache that
    fails every call). Stores ignore the expiry: tests move the clock past it themselves.

    A query the network does not answer times out at once, without moving the clock, unless
    `wait_for_deadlines`: then the clock jumps to each deadline in turn, as time would pass,
    until `until()` or until the engine waits for nothing.
    """
    queue: deque[Output] = deque(outputs)
    replies: list[Reply] = []
    while True:
        while queue:
            output = queue.popleft()
            if isinstance(output, Reply):
                replies.append(output)
            elif isinstance(output, Send):
                data = network(output)
                if data is not None:
                    queue.extend(engine.upstream_reply(output.handle, data))
                if not wait_for_deadlines:
                    queue.extend(engine.upstream_silent(output.handle))
            elif isinstance(output, SharedLookup):
                if shared is None:
                    queue.extend(engine.shared_failed(output.handle))
                else:
                    queue.extend(engine.shared_reply(output.handle, shared.get(output.key)))
            elif isinstance(output, SharedStore):
                if shared is not None:
                    shared[output.key] = output.value
                engine.shared_stored(shared is not None)
            else:
                assert isinstance(output, Close)
        if until():
            return replies
        deadline = engine.next_deadline()
        if deadline is None or not wait_for_deadlines:
            return replies
        clock.now = max(clock.now, deadline)
        queue.extend(engine.tick())


@dataclass
class ScriptedWorld:
    """A resolver engine facing a scripted internet."""

    internet: TestInternet
    config: Config
    clock: FakeClock = field(default_factory=FakeClock)
    seed: int = 1
    #: The shared cache the engine sees, if `config.shared_cache.url` is set (see `drive`).
    shared: dict[bytes, bytes] | None = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.engine = Engine(
            self.config,
            parse_root_hints(self.internet.hints_text()),
            self.clock,
            rng=random.Random(self.seed),
            # The internet's own anchor (none for an unsigned one), unless the config names a
            # file: the bundled IANA anchors cannot vouch for a test root.
            trust_anchors=(
                None if self.config.dnssec.trust_anchor_file else self.internet.trust_anchors()
            ),
        )
        self.last_queries = 0

    @property
    def context(self) -> Context:
        return self.engine.context

    @property
    def cache(self) -> RecordCache:
        return self.engine.cache

    def network(self, send: Send) -> bytes | None:
        return respond(self.internet, send.server.address, send.action.query, send.tcp)

    def resolve(self, name: str, rdtype: str = "A", trace: Tracer | None = None) -> Answer:
        """Run one resolution to the end; `last_queries` tells how many queries it sent."""
        answers: list[Answer] = []
        sent = self.engine.upstream_sent
        outputs = self.engine.ask(
            dns.name.from_text(name), dns.rdatatype.from_text(rdtype), answers.append, trace=trace
        )
        drive(
            self.engine,
            outputs,
            self.network,
            self.clock,
            until=lambda: bool(answers),
            shared=self.shared,
        )
        self.last_queries = self.engine.upstream_sent - sent
        assert answers, "the engine neither answered nor waited"
        return answers[0]

    def query(self, wire: bytes, client: Client | None = None) -> bytes | None:
        """The engine's reply to a client's query bytes (packet cache first), or None."""
        client = client or Client("127.0.0.1")
        reply = self.engine.answer_from_cache(wire, client.address, client.tcp)
        if reply is not None:
            drive(
                self.engine, self.engine.take_output(), self.network, self.clock, shared=self.shared
            )
            return reply
        replies = drive(
            self.engine,
            self.engine.client_query(wire, client),
            self.network,
            self.clock,
            shared=self.shared,
        )
        return replies[0].wire if replies else None
