"""The client-facing protocol through real sockets: flags, sections, TCP, truncation, refusals."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
import trio

from resolver.server.service import ResolverService
from resolver.testing import TestInternet
from tests.frontend_support import ask, query, start_resolver, tcp_exchange, udp_exchange
from tests.helpers import texts


async def test_answer_has_qr_rd_ra_never_aa_and_minimal_sections(
    resolver: ResolverService,
) -> None:
    request = query("WwW.ExAmPlE.TeSt.", use_edns=0)
    response = await ask(request)
    assert response.id == request.id
    assert response.flags & dns.flags.QR
    assert response.flags & dns.flags.RD
    assert response.flags & dns.flags.RA
    assert not response.flags & dns.flags.AA
    assert response.question[0].name.to_text() == "WwW.ExAmPlE.TeSt."  # the client's case
    # name compression points the owner at the question, so it takes the client's case too
    assert [t.lower() for t in texts(tuple(response.answer))] == [
        "www.example.test. 300 in a 192.0.2.1"
    ]
    assert response.authority == [] and response.additional == []
    assert response.edns == 0 and response.payload == 1232  # OPT is the only additional


async def test_rd_is_copied_from_the_query(resolver: ResolverService) -> None:
    response = await ask(query("www.example.test.", flags=0))
    assert not response.flags & dns.flags.RD
    assert response.flags & dns.flags.RA


async def test_cache_hit_sends_nothing_upstream(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    await ask(query("www.example.test."))
    live_internet.reset_counters()
    await trio.sleep(1.1)
    response = await ask(query("www.example.test."))
    assert live_internet.total_queries() == 0
    assert 0 < response.answer[0].ttl < 300


async def test_negative_answer_has_only_the_soa_in_authority(resolver: ResolverService) -> None:
    response = await ask(query("nope.example.test."))
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.answer == []
    assert [r.rdtype for r in response.authority] == [dns.rdatatype.SOA]
    assert response.authority[0].ttl == 300


async def test_identical_questions_in_flight_cost_one_resolution(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    answers: list[dns.message.Message] = []

    async def one() -> None:
        answers.append(await ask(query("chain.example.test.")))

    async with trio.open_nursery() as clients:
        for _ in range(20):
            clients.start_soon(one)
    assert len(answers) == 20
    assert all(len(a.answer) == 2 for a in answers)
    # priming, root, TLD, example.test, then TLD (cached) -> other.test: 6 queries for all 20
    assert live_internet.total_queries() == 6


async def test_tcp_serves_several_pipelined_queries_on_one_connection(
    resolver: ResolverService,
) -> None:
    requests = [
        query("www.example.test."),
        query("mail.example.test."),
        query("nope.example.test."),
    ]
    replies = [
        dns.message.from_wire(w) for w in await tcp_exchange([r.to_wire() for r in requests])
    ]
    by_id = {reply.id: reply for reply in replies}
    assert set(by_id) == {r.id for r in requests}
    assert texts(tuple(by_id[requests[1].id].answer)) == ["mail.example.test. 3600 IN A 192.0.2.2"]
    assert by_id[requests[2].id].rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize(("edns", "payload"), [(False, 512), (0, 4096)])
async def test_oversized_udp_answer_is_truncated_and_whole_over_tcp(
    resolver: ResolverService, edns: bool | int, payload: int
) -> None:
    request = query("big.example.test.", "TXT", use_edns=edns, payload=payload)
    truncated = await ask(request)
    assert truncated.flags & dns.flags.TC
    assert truncated.answer == []
    (reply,) = await tcp_exchange([request.to_wire()])
    whole = dns.message.from_wire(reply)
    assert not whole.flags & dns.flags.TC
    assert len(whole.answer[0]) == 40


async def test_responses_are_dropped(resolver: ResolverService) -> None:
    wire = bytearray(query("www.example.test.").to_wire())
    wire[2] |= 0x80  # QR=1
    assert await udp_exchange(bytes(wire), timeout=0.5) is None


async def test_unknown_opcode_gets_notimp(resolver: ResolverService) -> None:
    request = query("www.example.test.")
    request.set_opcode(dns.opcode.NOTIFY)
    response = await ask(request)
    assert response.rcode() == dns.rcode.NOTIMP
    assert response.opcode() == dns.opcode.NOTIFY


async def test_malformed_query_gets_formerr_with_its_id(resolver: ResolverService) -> None:
    header = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
    reply = await udp_exchange(header + b"\x03www\xc0\x0c\x00\x01\x00\x01")  # pointer loop
    assert reply is not None
    response = dns.message.from_wire(reply)
    assert response.id == 0xBEEF
    assert response.rcode() == dns.rcode.FORMERR
    assert response.flags & dns.flags.QR


async def test_two_questions_get_formerr(resolver: ResolverService) -> None:
    request = query("www.example.test.")
    request.question.append(query("mail.example.test.").question[0])
    assert (await ask(request)).rcode() == dns.rcode.FORMERR


async def test_zone_transfer_over_udp_is_refused(resolver: ResolverService) -> None:
    assert (await ask(query("example.test.", "AXFR"))).rcode() == dns.rcode.REFUSED


async def test_clients_outside_the_access_list_are_refused(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    await start_resolver(
        nursery, live_internet, tmp_path, allow=(ipaddress.ip_network("127.0.0.2/32"),)
    )
    refused = await ask(query("www.example.test."), source="127.0.0.1")
    assert refused.rcode() == dns.rcode.REFUSED
    assert live_internet.total_queries() == 0
    allowed = await ask(query("www.example.test."), source="127.0.0.2")
    assert allowed.rcode() == dns.rcode.NOERROR and allowed.answer
