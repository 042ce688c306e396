"""The packet cache: its query parser, its byte patches, and equality with the slow path."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import pytest

from resolver.cache.packets import PacketCache, parse_plain_query, ttl_offsets
from resolver.server.service import ResolverService
from resolver.testing import TestInternet
from resolver.testing.scripted import FakeClock, ScriptedWorld
from tests.frontend_support import query, tcp_exchange, udp_exchange


def wire_of(name: str, rdtype: str = "A", **options: object) -> bytes:
    return query(name, rdtype, **options).to_wire()


def test_plain_queries_are_recognised_with_or_without_edns() -> None:
    plain = parse_plain_query(wire_of("WWW.Example.TEST."))
    assert plain is not None and plain.edns_payload is None
    assert plain.key == b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"
    with_edns = parse_plain_query(wire_of("www.example.test.", use_edns=0, payload=4096))
    assert with_edns is not None and with_edns.edns_payload == 4096
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"12345678")
    with_cookie = parse_plain_query(wire_of("www.example.test.", use_edns=0, options=[cookie]))
    assert with_cookie is not None and with_cookie.key == plain.key


@pytest.mark.parametrize(
    "wire",
    [
        wire_of("www.example.test.", use_edns=1),  # EDNS version 1: BADVERS is the slow path's
        wire_of("www.example.test.")[:-2],  # question cut short
        wire_of("www.example.test.") + b"junk",
        bytes([0x12, 0x34, 0x81, 0]) + wire_of("www.example.test.")[4:],  # QR=1
        bytes([0x12, 0x34, 0x28, 0]) + wire_of("www.example.test.")[4:],  # opcode UPDATE
        struct.pack("!HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # pointer
        struct.pack("!HHHHHH", 1, 0x100, 2, 0, 0, 0) + wire_of("a.test.")[12:] * 2,
    ],
)
def test_anything_unusual_is_left_to_the_slow_path(wire: bytes) -> None:
    assert parse_plain_query(wire) is None


def stored_response(ttl: int = 300) -> bytes:
    request = dns.message.make_query("www.example.test.", "A", flags=0)
    response = dns.message.make_response(request, recursion_available=True)
    response.flags &= ~dns.flags.RD
    response.answer = [
        dns.rrset.from_text("www.example.test.", ttl, "IN", "A", "192.0.2.1"),
    ]
    return response.to_wire()


def test_a_hit_takes_the_clients_id_rd_case_and_aged_ttl() -> None:
    clock = FakeClock()
    packets = PacketCache(100, clock, our_payload=1232)
    stored = stored_response()
    assert ttl_offsets(stored) == (len(stored) - 10,)
    key = parse_plain_query(wire_of("www.example.test.")).key  # type: ignore[union-attr]  # a plain query: it parses
    packets.store(key, stored)
    clock.advance(100.5)
    request = query("WwW.eXaMpLe.TeSt.", use_edns=0, payload=4096)
    question = parse_plain_query(request.to_wire())
    assert question is not None
    hit = packets.answer(request.to_wire(), question, 1232)
    assert hit is not None
    wire, expiring = hit
    assert not expiring
    reply = dns.message.from_wire(wire)
    assert reply.id == request.id
    assert reply.flags & dns.flags.RD and reply.flags & dns.flags.QR and reply.flags & dns.flags.RA
    assert reply.question[0].name.to_text() == "WwW.eXaMpLe.TeSt."
    assert reply.answer[0].ttl == 200
    assert reply.edns == 0 and reply.payload == 1232
    clock.advance(170)  # 270 s of 300: the last 10% of its life, time to prefetch
    hit = packets.answer(request.to_wire(), question, 1232)
    assert hit is not None and hit[1]
    clock.advance(30)
    assert packets.answer(request.to_wire(), question, 1232) is None  # expired


def test_a_hit_copies_cd_and_never_sets_ad() -> None:
    """RFC 4035 3.2.2: CD is copied from the query; AD stays clear (nothing is validated)."""
    packets = PacketCache(100, FakeClock(), our_payload=1232)
    stored = stored_response()
    key = parse_plain_query(wire_of("www.example.test.")).key  # type: ignore[union-attr]  # a plain query: it parses
    packets.store(key, stored)
    for flags, expected in [
        (dns.flags.RD | dns.flags.CD | dns.flags.AD, (0x81, 0x90)),
        (dns.flags.CD, (0x80, 0x90)),
        (dns.flags.RD | dns.flags.AD, (0x81, 0x80)),
        (0, (0x80, 0x80)),
    ]:
        request = wire_of("www.example.test.", flags=flags)
        question = parse_plain_query(request)
        assert question is not None
        hit = packets.answer(request, question, 512)
        assert hit is not None
        assert (hit[0][2], hit[0][3]) == expected  # QR, RD? / RA, CD?, never AD


def test_an_answer_too_big_for_the_client_is_not_served_here() -> None:
    packets = PacketCache(100, FakeClock(), our_payload=1232)
    request = wire_of("www.example.test.")
    question = parse_plain_query(request)
    assert question is not None
    packets.store(question.key, stored_response())
    assert packets.answer(request, question, limit=20) is None
    assert packets.answer(request, question, limit=512) is not None


def test_a_repeated_query_gets_the_same_bytes_as_a_fresh_copy() -> None:
    """`answer_again` serves exact repeats (ID aside) from a ready copy; each byte is what
    `answer` would make, and anything that would change a byte sends it back to `answer`."""
    clock = FakeClock()
    packets = PacketCache(100, clock, our_payload=1232)
    request = query("WwW.eXaMpLe.TeSt.", use_edns=0, payload=4096).to_wire()
    question = parse_plain_query(request)
    assert question is not None
    packets.store(question.key, stored_response())
    assert packets.answer_again(request) is None  # nothing ready yet
    first = packets.answer(request, question, 1232, True)
    assert first is not None
    again = b"\xab\xcd" + request[2:]  # the same query with another ID
    reply = packets.answer_again(again)
    assert reply == b"\xab\xcd" + first[0][2:]
    clock.advance(0.5)
    assert packets.answer_again(again) == reply  # same second of age, same bytes
    clock.advance(0.6)  # a second older: the TTLs change, so `answer` makes the copy
    assert packets.answer_again(again) is None
    fresh = packets.answer(again, question, 1232, True)
    assert fresh is not None and packets.answer_again(again) == fresh[0]
    assert dns.message.from_wire(fresh[0]).answer[0].ttl == 299
    packets.store(question.key, stored_response(ttl=60))  # replaced: the old copy is stale
    assert packets.answer_again(again) is None
    assert packets.answer(again, question, 1232, True) is not None
    clock.advance(54.1)  # 54 s of 60: the prefetch window, which only `answer` reports
    assert packets.answer_again(again) is None
    hit = packets.answer(again, question, 1232, True)
    assert hit is not None and hit[1] and packets.answer_again(again) is None
    packets.clear()
    assert packets.answer_again(again) is None


def test_only_repeatable_answers_are_made_ready() -> None:
    packets = PacketCache(100, FakeClock(), our_payload=1232)
    request = wire_of("www.example.test.")
    question = parse_plain_query(request)
    assert question is not None
    packets.store(question.key, stored_response())
    assert packets.answer(request, question, 512) is not None
    assert packets.answer_again(request) is None
    assert packets.answer(request, question, 20, True) is None  # too big: never ready
    assert packets.answer_again(request) is None


@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("rd", [False, True])
def test_the_engine_serves_repeats_like_first_hits(
    world: ScriptedWorld, tcp: bool, rd: bool
) -> None:
    """A repeat served ready is byte for byte the first hit's reply (ID aside); ready copies are
    made for UDP hits with RD=1 only."""
    world.resolve("www.example.test.", "A")
    request = query("www.example.test.", use_edns=0, flags=dns.flags.RD if rd else 0)
    wire = request.to_wire()
    world.query(query("www.example.test.").to_wire())  # fills the packet cache (RD=1 only)
    first = world.engine.answer_from_cache(wire, "127.0.0.1", tcp)
    assert first is not None
    packets = world.engine.packets
    assert (packets.answer_again(wire) is not None) == (rd and not tcp)
    again = world.engine.answer_from_cache(wire, "127.0.0.1", tcp)
    assert again == first
    assert world.engine.answer_from_cache(wire, "10.9.9.9", tcp) is None  # access list first


def zero_ttls(wire: bytes) -> bytes:
    patched = bytearray(wire)
    for offset in ttl_offsets(wire):
        patched[offset : offset + 4] = b"\0\0\0\0"
    return bytes(patched[2:])  # without the ID


QUESTIONS = [
    ("www.example.test.", "A"),
    ("WwW.ExAmPlE.tEsT.", "AAAA"),
    ("chain.example.test.", "A"),
    ("alias.example.test.", "A"),
    ("nope.example.test.", "A"),
    ("www.example.test.", "TXT"),
    ("example.test.", "MX"),
]


@pytest.mark.parametrize(("name", "rdtype"), QUESTIONS)
@pytest.mark.parametrize("edns", [False, True])
async def test_fast_path_answers_byte_for_byte_like_the_slow_path(
    resolver: ResolverService, live_internet: TestInternet, name: str, rdtype: str, edns: bool
) -> None:
    request = query(name, rdtype, use_edns=0 if edns else False)
    first = await udp_exchange(request.to_wire())  # resolved: the slow path
    live_internet.reset_counters()
    fast = await udp_exchange(request.to_wire())  # the packet cache
    assert resolver.stats.packet_hits == 1
    assert live_internet.total_queries() == 0
    (fast_tcp,) = await tcp_exchange([request.to_wire()])
    assert resolver.stats.packet_hits == 2
    assert first is not None and fast is not None
    assert zero_ttls(fast) == zero_ttls(first)
    assert zero_ttls(fast_tcp) == zero_ttls(first)


async def test_truncation_still_happens_for_cached_big_answers(resolver: ResolverService) -> None:
    request = query("big.example.test.", "TXT")
    (whole,) = await tcp_exchange([request.to_wire()])
    assert len(dns.message.from_wire(whole).answer[0]) == 40
    truncated = await udp_exchange(request.to_wire())
    assert truncated is not None
    assert dns.message.from_wire(truncated).flags & dns.flags.TC


@pytest.mark.parametrize(("name", "rdtype"), QUESTIONS)
@pytest.mark.parametrize("edns", [False, True])
@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("cd", [False, True])
def test_packet_copy_equals_a_fresh_dnspython_rendering(
    world: ScriptedWorld, name: str, rdtype: str, edns: bool, tcp: bool, cd: bool
) -> None:
    """The full path answers from the packet it just stored; that copy must be exactly what
    rendering the answer with dnspython gives, so the saving changes no byte (CD included)."""
    answer = world.resolve(name, rdtype)
    handler = world.engine.clients
    flags = dns.flags.RD | (dns.flags.CD if cd else 0)
    request = query(name, rdtype, use_edns=0 if edns else False, flags=flags)
    wire = request.to_wire()
    rendered = handler._render(handler._response(request, answer), request, tcp)
    plain = handler.remember(wire, request, answer)
    assert plain is not None
    limit = 65535 if tcp else handler._udp_limit(plain.edns_payload)
    hit = handler.packets.answer(wire, plain, limit)
    assert hit is not None
    assert hit[0] == rendered
