"""Forward zones (RD=1 to upstream resolvers) and stub zones (iteration from given servers).

The scripted tests play each forwarder with a second scripted resolver over its own copy of the
test internet, so what the resolver under test sent to it and what the internet saw stay apart.
The live tests run two real resolvers: the one under test forwards to a second one on
127.55.0.1, which iterates over the test internet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
import trio

from resolver.config import ForwardZone, StubZone, UpstreamConfig
from resolver.core.actions import Answer, Done, Outcome, Response, SendQuery, Timeout
from resolver.core.overrides import OverrideError
from resolver.core.reasons import ServfailReason
from resolver.core.resolution import Resolution
from resolver.engine import Output, Send
from resolver.server.daemon import serve
from resolver.server.service import ResolverService
from resolver.testing import Fault, TestInternet
from resolver.testing.faults import Reply
from resolver.testing.scripted import ScriptedWorld, perform
from tests.frontend_support import ask, query, start_resolver
from tests.helpers import loopback_config, texts

FORWARDER = "127.55.0.1"
SECOND_FORWARDER = "127.55.0.2"
UPSTREAM = UpstreamConfig(query_loopback=True, timeout=0.3, forward_timeout=0.3)


@dataclass
class Forwarder:
    """A recursive resolver at a loopback address, played by a scripted resolver of its own."""

    world: ScriptedWorld = field(
        default_factory=lambda: ScriptedWorld(TestInternet.default(), loopback_config())
    )
    fault: Fault = Fault.NONE
    received: list[dns.message.Message] = field(default_factory=list)

    def respond(self, query: dns.message.Message) -> dns.message.Message | None:
        self.received.append(query)
        if self.fault is Fault.DROP:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if self.fault in (Fault.SERVFAIL, Fault.REFUSED):
            response.set_rcode(dns.rcode.from_text(self.fault.value.upper()))
            return response
        asked = query.question[0]
        answer = self.world.resolve(asked.name.to_text(), dns.rdatatype.to_text(asked.rdtype))
        response.set_rcode(answer.rcode)
        response.answer = list(answer.answer)
        response.authority = list(answer.authority)
        return response

    @property
    def asked(self) -> list[tuple[str, str, bool]]:
        """(name, type, RD set?) of every query received."""
        return [
            (
                q.question[0].name.to_text(),
                dns.rdatatype.to_text(q.question[0].rdtype),
                bool(q.flags & dns.flags.RD),
            )
            for q in self.received
        ]


@dataclass
class Front:
    """The resolver under test: a scripted world whose forwarders are `Forwarder`s."""

    world: ScriptedWorld
    forwarders: dict[str, Forwarder]
    sent: list[SendQuery] = field(default_factory=list)

    def resolve(self, name: str, rdtype: str = "A") -> Answer:
        resolution = Resolution(
            dns.name.from_text(name), dns.rdatatype.from_text(rdtype), self.world.context
        )
        action = resolution.next_action()
        while isinstance(action, SendQuery):
            self.sent.append(action)
            action = resolution.receive(self._perform(action))
        assert isinstance(action, Done)
        return action.answer

    def _perform(self, action: SendQuery) -> Outcome:
        forwarder = self.forwarders.get(action.server.address)
        if forwarder is None:
            return perform(self.world.internet, action)
        reply = forwarder.respond(action.query)
        if reply is None:
            return Timeout()
        return Response(dns.message.from_wire(reply.to_wire()), 0.01)


def front(
    *,
    forward: tuple[ForwardZone, ...] = (),
    stub: tuple[StubZone, ...] = (),
    forwarders: tuple[str, ...] = (FORWARDER,),
    upstream: UpstreamConfig = UPSTREAM,
) -> Front:
    config = loopback_config(forward_zones=forward, stub_zones=stub, upstream=upstream)
    world = ScriptedWorld(TestInternet.default(), config)
    return Front(world, {address: Forwarder() for address in forwarders})


def forward_all(*servers: str) -> tuple[ForwardZone, ...]:
    return (ForwardZone(".", servers or (FORWARDER,)),)


# --- forwarding, scripted -----------------------------------------------------------------------


def test_everything_goes_to_the_forwarder_with_rd_set() -> None:
    resolver = front(forward=forward_all())
    answer = resolver.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    forwarder = resolver.forwarders[FORWARDER]
    # the whole name (no minimisation towards a forwarder: RFC 9156 section 2.4), RD=1
    assert forwarder.asked == [("www.example.test.", "A", True)]
    assert resolver.world.internet.total_queries() == 0  # no priming, no iteration
    assert forwarder.world.internet.total_queries() > 0  # the forwarder did the work


def test_answers_without_aa_are_accepted_and_cached() -> None:
    resolver = front(forward=forward_all())
    first = resolver.resolve("www.example.test.")
    assert not first.failure
    resolver.world.clock.advance(100)
    second = resolver.resolve("www.example.test.")
    assert texts(second.answer) == ["www.example.test. 200 IN A 192.0.2.1"]
    assert len(resolver.forwarders[FORWARDER].received) == 1


def test_a_cname_chain_from_the_forwarder_is_taken_whole_and_cached() -> None:
    resolver = front(forward=forward_all())
    answer = resolver.resolve("chain.example.test.")
    assert texts(answer.answer) == [
        "chain.example.test. 3600 IN CNAME www.other.test.",
        "www.other.test. 120 IN A 198.51.100.1",
    ]
    # the target's record came with the chain and is cached: asking for it costs nothing
    assert texts(resolver.resolve("www.other.test.").answer) == [
        "www.other.test. 120 IN A 198.51.100.1"
    ]
    assert len(resolver.forwarders[FORWARDER].received) == 1


def test_negative_answers_are_cached() -> None:
    resolver = front(forward=forward_all())
    nxdomain = resolver.resolve("nope.example.test.")
    assert nxdomain.rcode == dns.rcode.NXDOMAIN
    assert [r.rdtype for r in nxdomain.authority] == [dns.rdatatype.SOA]
    nodata = resolver.resolve("www.example.test.", "TXT")
    assert nodata.rcode == dns.rcode.NOERROR and nodata.answer == ()
    received = len(resolver.forwarders[FORWARDER].received)
    # NXDOMAIN covers every type of the name; NODATA its own type
    assert resolver.resolve("nope.example.test.", "AAAA").rcode == dns.rcode.NXDOMAIN
    assert resolver.resolve("www.example.test.", "TXT").answer == ()
    assert len(resolver.forwarders[FORWARDER].received) == received


@pytest.mark.parametrize("fault", [Fault.DROP, Fault.SERVFAIL, Fault.REFUSED])
def test_a_failing_forwarder_passes_the_question_to_the_next(fault: Fault) -> None:
    resolver = front(
        forward=forward_all(FORWARDER, SECOND_FORWARDER),
        forwarders=(FORWARDER, SECOND_FORWARDER),
    )
    broken, good = resolver.forwarders[FORWARDER], resolver.forwarders[SECOND_FORWARDER]
    broken.fault = fault
    answer = resolver.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    # listed order first: the broken one was asked, then the next
    assert [action.server.address for action in resolver.sent] == [FORWARDER, SECOND_FORWARDER]
    assert good.asked == [("www.example.test.", "A", True)]


def test_a_silent_forwarder_is_remembered_as_slow() -> None:
    resolver = front(
        forward=forward_all(FORWARDER, SECOND_FORWARDER),
        forwarders=(FORWARDER, SECOND_FORWARDER),
    )
    resolver.forwarders[FORWARDER].fault = Fault.DROP
    resolver.resolve("www.example.test.")
    resolver.sent.clear()
    resolver.resolve("mail.example.test.")
    assert [action.server.address for action in resolver.sent] == [SECOND_FORWARDER]


def test_every_forwarder_failing_gives_servfail() -> None:
    resolver = front(
        forward=forward_all(FORWARDER, SECOND_FORWARDER),
        forwarders=(FORWARDER, SECOND_FORWARDER),
    )
    for forwarder in resolver.forwarders.values():
        forwarder.fault = Fault.SERVFAIL
    answer = resolver.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is ServfailReason.NO_FORWARDER_ANSWERED
    # never falls back to iterating by itself (Unbound's forward-first: no)
    assert resolver.world.internet.total_queries() == 0


def test_a_server_that_does_not_recurse_is_not_a_forwarder() -> None:
    root = "127.53.0.1"  # answers with a referral and RA=0
    resolver = front(forward=forward_all(root, FORWARDER))
    answer = resolver.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    assert [action.server.address for action in resolver.sent] == [root, FORWARDER]


def test_the_most_specific_zone_wins_and_covers_names_below_it() -> None:
    resolver = front(forward=(ForwardZone("example.test.", (FORWARDER,)),))
    for name in ("www.example.test.", "a.b.c.example.test.", "example.test."):
        assert resolver.resolve(name).rcode == dns.rcode.NOERROR, name
    assert [name for name, _, _ in resolver.forwarders[FORWARDER].asked] == [
        "www.example.test.",
        "a.b.c.example.test.",
        "example.test.",
    ]
    # a name outside the zone is iterated as usual, and nothing under example.test. is
    answer = resolver.resolve("www.other.test.")
    assert texts(answer.answer) == ["www.other.test. 120 IN A 198.51.100.1"]
    example = [
        q
        for name in ("ns1.example.test.", "ns2.example.test.")
        for q in resolver.world.internet.servers[name].queries
    ]
    assert example == []


def test_a_chain_leaving_the_forward_zone_is_taken_from_the_forwarder() -> None:
    resolver = front(forward=(ForwardZone("example.test.", (FORWARDER,)),))
    answer = resolver.resolve("chain.example.test.")
    assert len(answer.answer) == 2
    assert resolver.world.internet.total_queries() == 0


def test_a_forward_zone_inside_a_stub_zone_wins_for_its_names() -> None:
    resolver = front(
        forward=(ForwardZone("example.test.", (FORWARDER,)),),
        stub=(StubZone("test.", ("127.53.1.1",)),),
    )
    assert resolver.resolve("www.example.test.").answer
    assert resolver.resolve("www.other.test.").answer
    assert [name for name, _, _ in resolver.forwarders[FORWARDER].asked] == ["www.example.test."]
    internet = resolver.world.internet
    assert internet.servers["ns1.nic.test."].query_count == 1  # other.test. A (minimised)
    assert internet.servers["ns1.other.test."].query_count == 1


def test_loopback_forwarders_are_the_operators_choice() -> None:
    """Configured servers are exempt from do-not-query-localhost (a local forwarder is common)."""
    resolver = front(forward=forward_all(), upstream=UpstreamConfig())
    answer = resolver.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert [action.server.address for action in resolver.sent] == [FORWARDER]


def test_forwarders_may_listen_on_another_port() -> None:
    resolver = front(forward=forward_all(f"{FORWARDER}:5353", "[::1]:5354"))
    resolver.resolve("www.example.test.")
    assert (resolver.sent[0].server.address, resolver.sent[0].server.port) == (FORWARDER, 5353)


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        ((ForwardZone(".", ("127.0.0.1",)), ForwardZone(".", ("::1",))), r"\(as a forward zone\)"),
    ],
)
def test_a_zone_configured_twice_fails_at_start(
    zones: tuple[ForwardZone, ...], message: str
) -> None:
    with pytest.raises(OverrideError, match=message):
        ScriptedWorld(TestInternet.default(), loopback_config(forward_zones=zones))


def test_a_zone_both_forwarded_and_stubbed_fails_at_start() -> None:
    config = loopback_config(
        forward_zones=(ForwardZone("lan.", ("127.0.0.1",)),),
        stub_zones=(StubZone("LAN", ("127.0.0.2",)),),
    )
    with pytest.raises(
        OverrideError, match=r"zone lan\. is configured twice \(as a forward and a stub"
    ):
        ScriptedWorld(TestInternet.default(), config)


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ((), "at least one server"),
        (("192.0.2.300",), r"servers\[0\]: '192.0.2.300' is not an IP address"),
        (("127.0.0.1", "[127.0.0.1]:53"), r"servers\[1\]: .*brackets are only for IPv6"),
        (("127.0.0.1:99999",), "not a port number"),
        (("ns1.example.",), "not an IP address"),
    ],
)
def test_bad_servers_are_refused_naming_them(servers: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ForwardZone("example.", servers)


# --- stub zones, scripted -----------------------------------------------------------------------


def log_flags(internet: TestInternet) -> list[tuple[str, str, bool]]:
    """(server, name, RD set?) of every query sent to the internet from now on."""
    sent: list[tuple[str, str, bool]] = []
    original = internet.respond

    def respond(address: str, query: dns.message.Message, tcp: bool = False) -> Reply:
        rd = bool(query.flags & dns.flags.RD)
        sent.append((internet.server_at(address).name, query.question[0].name.to_text(), rd))
        return original(address, query, tcp)

    internet.respond = respond  # type: ignore[method-assign]  # a scripted stand-in
    return sent


def test_a_stub_zone_is_asked_directly_without_rd() -> None:
    resolver = front(stub=(StubZone("example.test.", ("127.53.2.1",)),))
    sent = log_flags(resolver.world.internet)
    answer = resolver.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    assert sent == [("ns1.example.test.", "www.example.test.", False)]  # no priming, no root


def test_referrals_below_a_stub_zone_are_followed() -> None:
    resolver = front(stub=(StubZone("test.", ("127.53.1.2:53",)),))
    sent = log_flags(resolver.world.internet)
    answer = resolver.resolve("www.d2.d1.deep.test.")
    assert texts(answer.answer) == ["www.d2.d1.deep.test. 3600 IN A 192.0.2.77"]
    assert sent == [
        ("ns2.nic.test.", "deep.test.", False),
        ("ns1.deep.test.", "d1.deep.test.", False),
        ("ns.d1.deep.test.", "d2.d1.deep.test.", False),
        ("ns.d2.d1.deep.test.", "www.d2.d1.deep.test.", False),
    ]
    # the delegations learnt below the stub are used next time
    sent.clear()
    resolver.resolve("www.d2.d1.deep.test.", "TXT")
    assert sent == [("ns.d2.d1.deep.test.", "www.d2.d1.deep.test.", False)]


def test_names_outside_the_stub_zone_still_start_at_the_root() -> None:
    resolver = front(stub=(StubZone("example.test.", ("127.53.2.1",)),))
    assert resolver.resolve("www.other.test.").answer
    assert resolver.world.internet.servers["ns1.example.test."].query_count == 0
    assert (
        resolver.world.internet.servers["a.root-servers.test."].query_count
        + (resolver.world.internet.servers["b.root-servers.test."].query_count)
        == 2
    )


def test_a_dead_stub_zone_gives_servfail_rather_than_the_real_servers() -> None:
    resolver = front(stub=(StubZone("example.test.", ("127.53.2.1",)),))
    resolver.world.internet.servers["ns1.example.test."].fault = Fault.DROP
    assert resolver.resolve("www.example.test.").rcode == dns.rcode.SERVFAIL
    assert resolver.world.internet.servers["ns2.example.test."].query_count == 0


# --- over real sockets: a second resolver as the forwarder ------------------------------------

BACKEND = (FORWARDER, 53)


async def start_backend(
    nursery: trio.Nursery, internet: TestInternet, tmp_path: Path
) -> ResolverService:
    """A second resolver on 127.55.0.1:53, iterating over the test internet."""
    hints = internet.write_hints(tmp_path / "backend.hints")
    config = loopback_config(listen=(BACKEND,), root_hints=hints)
    return await nursery.start(serve, config, lambda _endpoints: None)


def record_upstream(service: ResolverService) -> list[SendQuery]:
    """Every query the service sends upstream from now on, as the engine asks the carrier to
    (plain UDP queries never reach `Network.carry`: the service's `Datagrams` carry them)."""
    sent: list[SendQuery] = []
    original = service.carry

    def carry(outputs: list[Output]) -> None:
        sent.extend(output.action for output in outputs if isinstance(output, Send))
        original(outputs)

    service.carry = carry  # type: ignore[method-assign]  # a scripted stand-in
    return sent


async def test_forwarding_to_a_second_resolver_over_sockets(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    await start_backend(nursery, live_internet, tmp_path)
    service = await start_resolver(
        nursery, live_internet, tmp_path, upstream=UPSTREAM, forward_zones=forward_all()
    )
    sent = record_upstream(service)
    response = await ask(query("www.example.test."))
    assert response.rcode() == dns.rcode.NOERROR
    assert texts(tuple(response.answer)) == ["www.example.test. 300 IN A 192.0.2.1"]
    assert not response.flags & dns.flags.AA
    assert [(a.server.address, a.server.port) for a in sent] == [BACKEND]
    assert all(a.query.flags & dns.flags.RD for a in sent)
    assert [a.query.question[0].name.to_text() for a in sent] == ["www.example.test."]
    assert live_internet.total_queries() > 0  # the backend iterated

    # cached: the same question, and a record that came with a forwarded CNAME chain
    chain = await ask(query("chain.example.test."))
    assert len(chain.answer) == 2
    sent.clear()
    for name in ("www.example.test.", "www.other.test."):
        assert (await ask(query(name))).answer, name
    nxdomain = await ask(query("nope.example.test."))
    assert nxdomain.rcode() == dns.rcode.NXDOMAIN
    assert (await ask(query("nope.example.test.", "AAAA"))).rcode() == dns.rcode.NXDOMAIN
    assert [a.query.question[0].name.to_text() for a in sent] == ["nope.example.test."]


async def test_failover_past_silent_and_absent_forwarders_over_sockets(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    await start_backend(nursery, live_internet, tmp_path)
    silent, absent = "127.55.0.8", "127.55.0.9"  # a socket that never answers; nothing at all
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sink:
        await sink.bind((silent, 53))
        service = await start_resolver(
            nursery,
            live_internet,
            tmp_path,
            upstream=UPSTREAM,
            forward_zones=forward_all(silent, absent, FORWARDER),
        )
        sent = record_upstream(service)
        response = await ask(query("www.example.test."))
        assert texts(tuple(response.answer)) == ["www.example.test. 300 IN A 192.0.2.1"]
        assert [a.server.address for a in sent] == [silent, absent, FORWARDER]
        sent.clear()
        assert (await ask(query("mail.example.test."))).answer
        assert [a.server.address for a in sent] == [FORWARDER]  # both failures remembered


async def test_stub_zone_over_sockets(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    await start_resolver(
        nursery,
        live_internet,
        tmp_path,
        stub_zones=(StubZone("example.test.", ("127.53.2.1",)),),
    )
    response = await ask(query("www.example.test."))
    assert texts(tuple(response.answer)) == ["www.example.test. 300 IN A 192.0.2.1"]
    asked = {
        name: [q.qname.to_text() for q in server.queries]
        for name, server in live_internet.servers.items()
        if server.queries
    }
    assert asked == {"ns1.example.test.": ["www.example.test."]}


def test_config_file_keys(tmp_path: Path) -> None:
    from resolver.configfile import load_config

    path = tmp_path / "resolver.toml"
    path.write_text(
        '[[forward_zones]]\nname = "."\nservers = ["192.0.2.53", "[2001:db8::53]:5353"]\n'
        '[[stub_zones]]\nname = "corp.example."\nservers = ["10.0.0.53"]\n'
    )
    config = load_config(path)
    assert config.forward_zones == (ForwardZone(".", ("192.0.2.53", "[2001:db8::53]:5353")),)
    assert config.stub_zones == (StubZone("corp.example.", ("10.0.0.53",)),)
    assert dataclasses.replace(config).forward_zones == config.forward_zones
