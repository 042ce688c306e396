"""Malformed and hostile client packets, sent as real bytes to the real front end."""

from __future__ import annotations

import random
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver.server.service import ResolverService
from tests.frontend_support import ask, offline_handler, query, udp_exchange

QUESTION_A = b"\x00\x01\x00\x01"  # type A, class IN


def header(qdcount: int = 1, query_id: int = 0x1234, flags: int = 0x0100) -> bytes:
    return struct.pack("!HHHHHH", query_id, flags, qdcount, 0, 0, 0)


def label(text: bytes) -> bytes:
    return bytes([len(text)]) + text


MALFORMED = {
    "question cut short": header() + label(b"www") + label(b"exam"),
    "name without its type": header() + label(b"www") + b"\x00",
    "no question": header(qdcount=0),
    "label longer than 63": header() + b"\x40" + b"a" * 64 + b"\x00" + QUESTION_A,
    "name longer than 255": header() + label(b"a" * 63) * 5 + b"\x00" + QUESTION_A,
    "compression loop": header() + b"\xc0\x0c" + QUESTION_A,
    "pointer forward": header() + b"\xc0\x20" + QUESTION_A,
    "trailing garbage": header() + label(b"www") + b"\x00" + QUESTION_A + b"garbage",
    "eleven bytes": header()[:11],
}


@pytest.mark.parametrize("wire", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_queries_get_formerr_with_their_id(
    resolver: ResolverService, wire: bytes
) -> None:
    reply = await udp_exchange(wire)
    assert reply is not None
    query_id, flags = struct.unpack_from("!HH", reply)
    assert query_id == 0x1234
    assert flags & 0x8000  # QR
    assert flags & 0x000F == dns.rcode.FORMERR


@pytest.mark.parametrize("wire", [b"", b"\x12", b"\x12\x34\x81" + b"\0" * 9])
async def test_fragments_and_responses_are_dropped(resolver: ResolverService, wire: bytes) -> None:
    assert await udp_exchange(wire, timeout=0.4) is None


async def test_edns_version_above_zero_gets_badvers(resolver: ResolverService) -> None:
    response = await ask(query("www.example.test.", use_edns=1))
    assert response.rcode() == dns.rcode.BADVERS
    assert response.edns == 0


async def test_any_gets_a_minimal_answer(resolver: ResolverService) -> None:
    response = await ask(query("www.example.test.", "ANY"))
    assert response.rcode() == dns.rcode.NOERROR
    assert [r.rdtype for r in response.answer] == [dns.rdatatype.A]
    nodata = await ask(query("text.example.test.", "ANY"))
    assert [r.rdtype for r in nodata.answer] == [dns.rdatatype.HINFO]
    assert "RFC8482" in nodata.answer[0].to_text()
    missing = await ask(query("nope.example.test.", "ANY"))
    assert missing.rcode() == dns.rcode.NXDOMAIN


async def test_other_classes_are_refused(resolver: ResolverService) -> None:
    response = await ask(dns.message.make_query("version.bind.", "TXT", "CH"))
    assert response.rcode() == dns.rcode.REFUSED


OFFLINE = offline_handler()
VALID = query("www.example.test.").to_wire()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)).map(
            lambda edit: VALID[: edit[0]] + bytes([edit[1]]) + VALID[edit[0] + 1 :]
        ),
        st.integers(0, len(VALID)).map(lambda cut: VALID[:cut]),
    ),
    tcp=st.booleans(),
)
async def test_random_and_mutated_packets_never_raise(data: bytes, tcp: bool) -> None:
    reply = await OFFLINE.respond(data, "127.0.0.1", tcp)
    if reply is not None:
        parsed = dns.message.from_wire(reply)
        assert parsed.flags & dns.flags.QR
        assert parsed.id == struct.unpack_from("!H", data.ljust(2, b"\0"))[0]


async def test_resolver_still_answers_after_a_burst_of_garbage(
    resolver: ResolverService,
) -> None:
    rng = random.Random(7)
    for _ in range(300):
        await udp_exchange(rng.randbytes(rng.randrange(0, 300)), timeout=0.01)
    response = await ask(query("www.example.test."))
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer[0][0].address == "192.0.2.1"
