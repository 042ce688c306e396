"""The engine on its own: merging, matching, retries and deadlines, on a fake clock, no sockets.

Each test plays the network by hand: it takes the engine's `Send`s, answers them (or not) with
the test internet's bytes, and moves the clock, exactly as the daemon's trio layer does with
sockets and real time.
"""

from __future__ import annotations

import dataclasses

import dns.edns
import dns.message
import dns.rcode
import dns.rdatatype

from resolver.config import CacheConfig, Limits, UpstreamConfig
from resolver.core.actions import SendQuery, Server, Timeout
from resolver.core.reasons import ServfailReason
from resolver.engine import Client, Close, Output, Reply, Send
from resolver.engine.outbound import Outbound
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld, drive
from tests.helpers import loopback_config

WWW = "www.example.test."


class Held:
    """The network as a test plays it: every `Send` waits here until the test answers it."""

    def __init__(self, world: ScriptedWorld) -> None:
        self.world = world
        self.sends: list[Send] = []
        self.replies: list[Reply] = []
        self.closed: set[int] = set()

    def take(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Send):
                self.sends.append(output)
            elif isinstance(output, Reply):
                self.replies.append(output)
            else:
                assert isinstance(output, Close)
                self.closed.add(output.handle)

    def open_sends(self) -> list[Send]:
        return [send for send in self.sends if send.handle not in self.closed]

    def answer(self, send: Send) -> None:
        """The genuine reply, and then everything it leads to, answered genuinely too."""
        data = self.world.network(send)
        assert data is not None
        outputs = self.world.engine.upstream_reply(send.handle, data)
        self.closed.add(send.handle)
        self.replies += drive(self.world.engine, outputs, self.world.network, self.world.clock)


def parsed(reply: Reply) -> dns.message.Message:
    assert reply.wire is not None, "the query was dropped"
    return dns.message.from_wire(reply.wire)


def client_query(held: Held, name: str, query_id: int, rdtype: str = "A") -> None:
    wire = dns.message.make_query(name, rdtype, id=query_id, use_edns=0).to_wire()
    held.take(held.world.engine.client_query(wire, Client("127.0.0.1", token=query_id)))


def world_with(internet: TestInternet, **changes: object) -> ScriptedWorld:
    return ScriptedWorld(internet, loopback_config(**changes))


def test_two_clients_with_one_question_share_one_resolution(internet: TestInternet) -> None:
    world = world_with(internet)
    held = Held(world)
    client_query(held, WWW, 1)
    assert len(held.sends) == 1 and world.engine.in_flight == 1
    client_query(held, WWW, 2)
    assert len(held.sends) == 1, "the second client joined the first one's resolution"
    held.answer(held.sends[0])
    assert [reply.client.token for reply in held.replies] == [1, 2]
    for reply in held.replies:
        message = parsed(reply)
        assert message.id == reply.client.token
        assert [rrset.to_text() for rrset in message.answer] == [f"{WWW} 300 IN A 192.0.2.1"]
    assert world.engine.stats.cache_misses == 2
    assert world.engine.in_flight == 0


def test_identical_upstream_queries_of_different_questions_share_one_packet(
    internet: TestInternet,
) -> None:
    world = world_with(internet)
    held = Held(world)
    client_query(held, WWW, 1)
    client_query(held, "mail.example.test.", 2)
    # Both cold questions start with the same query to the same root (priming): one packet.
    assert len(held.sends) == 1
    assert world.engine.in_flight == 2
    held.answer(held.sends[0])
    assert {reply.client.token for reply in held.replies} == {1, 2}
    assert all(parsed(r).rcode() == dns.rcode.NOERROR for r in held.replies)


def test_a_reply_that_does_not_match_is_ignored_and_the_real_one_accepted(
    internet: TestInternet,
) -> None:
    world = world_with(internet)
    held = Held(world)
    client_query(held, WWW, 1)
    send = held.sends[0]
    genuine = world.network(send)
    assert genuine is not None
    wrong_id = (int.from_bytes(genuine[:2], "big") ^ 1).to_bytes(2, "big") + genuine[2:]
    other = dns.message.make_query("elsewhere.test.", "NS", id=send.action.query.id)
    forged = dns.message.make_response(other).to_wire()
    for data in (wrong_id, forged, b"\x00"):
        assert world.engine.upstream_reply(send.handle, data) == []
    held.answer(send)
    assert len(held.replies) == 1
    assert parsed(held.replies[0]).rcode() == dns.rcode.NOERROR


def test_a_settled_upstream_query_leaves_no_deadline_behind(internet: TestInternet) -> None:
    """Its deadline is cancelled with the reply: left set, it would wake the carrier's timer
    a timeout later for nothing, once per query sent (the cold benchmark's CPU)."""
    world = world_with(internet)
    held = Held(world)
    client_query(held, WWW, 1)
    held.answer(held.sends[0])
    assert len(held.replies) == 1 and world.engine.in_flight == 0
    assert world.engine.next_deadline() is None
    assert world.engine.tick() == []


def test_a_lost_datagram_is_sent_again_when_its_deadline_passes(internet: TestInternet) -> None:
    world = world_with(internet, upstream=UpstreamConfig(query_loopback=True, timeout=0.8))
    engine, clock = world.engine, world.clock
    started = clock.now
    lost: list[Send] = []

    def lose_the_first(send: Send) -> bytes | None:
        if not lost:
            lost.append(send)
            return None
        return world.network(send)

    answers: list[object] = []
    outputs = engine.ask(dns.name.from_text(WWW), dns.rdatatype.A, answers.append)
    drive(
        engine, outputs, lose_the_first, clock, until=lambda: bool(answers), wait_for_deadlines=True
    )
    assert len(answers) == 1
    assert clock.now == started + 0.8, "the clock moved to the lost query's deadline, no further"
    assert engine.upstream_sent == 5  # the lost one, then the priming query again, and on


def test_the_resolution_deadline_ends_a_question_in_servfail(internet: TestInternet) -> None:
    world = world_with(
        internet,
        upstream=UpstreamConfig(query_loopback=True, timeout=5.0),
        limits=Limits(max_resolution_time=3.0),
    )
    engine, clock = world.engine, world.clock
    started = clock.now
    closed: list[int] = []
    answers: list[object] = []
    outputs = engine.ask(dns.name.from_text(WWW), dns.rdatatype.A, answers.append)
    assert len(outputs) == 1 and isinstance(outputs[0], Send)
    clock.advance(2.9)
    assert engine.tick() == [] and not answers
    clock.advance(0.1)
    for output in engine.tick():
        assert isinstance(output, Close)
        closed.append(output.handle)
    assert closed == [outputs[0].handle], "the query nobody waits for any more is closed"
    assert clock.now == started + 3.0
    [answer] = answers
    assert answer.rcode == dns.rcode.SERVFAIL  # type: ignore[attr-defined]  # the answer to the client
    assert answer.failure is ServfailReason.TIMEOUT  # type: ignore[attr-defined]  # the answer to the client
    # Nothing left to wake for: the abandoned query's deadline went with the question.
    assert engine.in_flight == 0 and engine.next_deadline() is None


def test_one_lost_datagram_shared_by_merged_queries_is_one_failure() -> None:
    outbound: Outbound[str] = Outbound(__import__("random").Random(1))
    server = Server("127.0.0.1", 53)

    def action() -> SendQuery:
        query = dns.message.make_query("example.com.", "A", use_edns=0, flags=0)
        return SendQuery(server, query, False, 0.2)

    handles = {outbound.ask(asker, action(), 100.0)[0] for asker in ("a", "b", "c")}
    assert len(handles) == 1 and outbound.sent == 1
    [handle] = handles
    assert outbound.expire(handle, 100.1) == [], "not before its deadline"
    outcomes = outbound.expire(handle, 100.2)
    assert outcomes == [("a", Timeout()), ("b", Timeout(shared=True)), ("c", Timeout(shared=True))]


def test_a_client_waiting_too_long_gets_the_stale_answer_on_the_fake_clock(
    internet: TestInternet,
) -> None:
    world = world_with(
        internet,
        cache=CacheConfig(stale_client_timeout=0.5),
        upstream=UpstreamConfig(query_loopback=True, timeout=2.0),
    )
    held = Held(world)
    world.resolve(WWW)
    world.clock.advance(400)  # the 300 s answer has expired; the delegation has not
    client_query(held, WWW, 7, rdtype="A")
    [send] = held.sends
    world.clock.advance(0.4)
    held.take(world.engine.tick())
    assert held.replies == []
    world.clock.advance(0.1)
    held.take(world.engine.tick())
    [stale] = held.replies
    message = parsed(stale)
    assert message.answer[0].ttl == 30  # RFC 8767's suggested stale TTL
    assert any(
        isinstance(option, dns.edns.EDEOption) and option.code == dns.edns.EDECode.STALE_ANSWER
        for option in message.options
    )
    held.answer(send)  # the resolution went on and refreshes the cache
    assert len(held.replies) == 1, "the client was answered once"
    assert world.resolve(WWW).answer[0].ttl == 300 and world.last_queries == 0


def test_hits_and_misses_are_counted_once_each(internet: TestInternet) -> None:
    world = world_with(internet)
    engine = world.engine
    wire = dns.message.make_query(WWW, "A").to_wire()
    assert world.query(wire) is not None  # a miss
    assert world.query(wire) is not None  # a packet-cache hit
    world.query(dns.message.make_query(WWW, "A", id=9, payload=1232).to_wire())
    assert engine.stats.packet_hits == 2
    assert engine.stats.cache_misses == 1
    world.query(dns.message.make_query(WWW, "ANY").to_wire())  # ANY: the slow path, from cache
    assert engine.stats.cache_misses == 1
    assert engine.stats.cache_answers >= 1
    assert engine.stats.queries == 4


def test_queries_over_the_waiting_limit_are_dropped_over_udp(internet: TestInternet) -> None:
    world = world_with(internet, limits=dataclasses.replace(Limits(), max_in_flight=2))
    held = Held(world)
    for number, name in enumerate(("a.example.test.", "b.example.test.", "c.example.test.")):
        client_query(held, name, number)
    assert [reply.wire for reply in held.replies] == [None]
    assert held.replies[0].client.token == 2
