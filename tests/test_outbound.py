"""The table of upstream queries in flight (`engine/outbound.py`) on its own: which queries
share a packet, which replies answer a query (RFC 5452 section 3), and where IDs come from."""

from __future__ import annotations

import random

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.core.actions import Response, SendQuery, Server
from resolver.core.exchange import make_query
from resolver.engine.outbound import Outbound, match_reply

SERVER = Server("192.0.2.53", 53)


def action(text: str, *, exact_case: bool = False, server: Server = SERVER) -> SendQuery:
    query = make_query(dns.name.from_text(text), dns.rdatatype.A, payload=1232)
    return SendQuery(server, query, False, 1.0, exact_case)


def reply_to(send_wire: bytes, *, qname: str | None = None) -> bytes:
    query = dns.message.from_wire(send_wire)
    response = dns.message.make_response(query)
    if qname is not None:
        response.question[0].name = dns.name.from_text(qname)
    response.set_rcode(dns.rcode.NXDOMAIN)
    return response.to_wire()


def test_queries_that_differ_only_in_letter_case_share_a_packet_unless_case_counts() -> None:
    outbound: Outbound[str] = Outbound(random.Random(1))
    first, send = outbound.ask("a", action("www.example.test."), 0.0)
    assert send is not None
    assert outbound.ask("b", action("WWW.Example.TEST."), 0.0) == (first, None)
    other = Server("192.0.2.54", 53, dns.name.from_text("ns2.example.test."))
    assert outbound.ask("c", action("www.example.test.", server=other), 0.0)[1] is not None
    exact = outbound.ask("d", action("WWW.example.test.", exact_case=True), 0.0)
    assert exact[1] is not None and outbound.sent == 3
    outcomes = outbound.received(first, reply_to(send.wire), 0.25)
    assert [asker for asker, _ in outcomes] == ["a", "b"]
    assert all(isinstance(outcome, Response) and outcome.rtt == 0.25 for _, outcome in outcomes)


def test_a_reply_must_echo_the_question_and_with_0x20_its_letter_case() -> None:
    loose, exact = action("mixed.example.test."), action("MiXeD.example.test.", exact_case=True)
    other = action("other.example.test.")
    for sent in (loose, exact, other):
        sent.query.id = 4242
    wire = exact.query.to_wire()
    assert match_reply(loose, reply_to(loose.query.to_wire(), qname="MIXED.example.test."), 0)
    assert match_reply(exact, reply_to(wire), 0) is not None
    assert match_reply(exact, reply_to(wire, qname="mixed.example.test."), 0) is None
    assert match_reply(exact, reply_to(wire, qname="other.example.test."), 0) is None
    assert match_reply(other, reply_to(wire), 0) is None
    not_a_reply = bytearray(reply_to(loose.query.to_wire()))
    not_a_reply[2] &= 0x7F  # QR=0
    assert match_reply(loose, bytes(not_a_reply), 0) is None


def test_ids_from_a_secure_generator_are_drawn_in_batches_and_all_differ_in_use() -> None:
    calls: list[int] = []

    class Counting(random.SystemRandom):
        def randbytes(self, n: int) -> bytes:
            calls.append(n)
            return super().randbytes(n)

    outbound: Outbound[int] = Outbound(Counting())
    ids = []
    for index in range(300):
        _, send = outbound.ask(index, action(f"n{index}.example.test."), 0.0)
        assert send is not None
        ids.append(int.from_bytes(send.wire[:2], "big"))
    assert len(calls) == 2, "256 IDs per draw"
    assert len(set(ids)) > 250  # 16 random bits each: a few repeats at most


def test_a_seeded_generator_gives_the_ids_it_always_gave() -> None:
    outbound: Outbound[int] = Outbound(random.Random(5))
    expected = random.Random(5)
    for index in range(5):
        _, send = outbound.ask(index, action(f"n{index}.example.test."), 0.0)
        assert send is not None
        assert int.from_bytes(send.wire[:2], "big") == expected.getrandbits(16)
