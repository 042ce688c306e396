"""The client-facing protocol through real sockets: flags, sections, TCP, truncation, refusals."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import dns.edns
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


async def test_cd_is_copied_and_ad_never_set_on_the_slow_and_the_fast_path(
    resolver: ResolverService,
) -> None:
    """RFC 4035 3.2.2: CD is copied into the response; AD is never set (nothing is validated
    yet), even when the client sets it in its query (RFC 6840 5.7)."""
    flags = dns.flags.RD | dns.flags.CD | dns.flags.AD
    request = query("www.example.test.", flags=flags, use_edns=0)
    slow = await udp_exchange(request.to_wire())
    fast = await udp_exchange(request.to_wire())
    (fast_tcp,) = await tcp_exchange([request.to_wire()])
    assert resolver.stats.packet_hits == 2
    for reply in (slow, fast, fast_tcp):
        assert reply is not None
        assert reply[2] == 0x81  # QR, opcode QUERY, no AA, no TC, RD
        assert reply[3] == 0x90  # RA, Z=0, AD clear, CD set, NOERROR
    plain = await udp_exchange(query("www.example.test.").to_wire())  # from the same packet
    assert plain is not None and plain[3] == 0x80
    assert resolver.stats.packet_hits == 3


async def test_rd0_is_answered_from_the_cache_only(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    """RFC 1034 4.3.1: a query with RD=0 never makes the resolver ask an authority."""
    await ask(query("www.example.test."))
    await ask(query("chain.example.test."))  # caches www.other.test's A record too
    live_internet.reset_counters()
    # A name the packet cache holds: the fast path answers, RD stays clear.
    response = await ask(query("www.example.test.", flags=0))
    assert not response.flags & dns.flags.RD and response.flags & dns.flags.RA
    assert texts(tuple(response.answer))[0].startswith("www.example.test.")
    assert resolver.stats.packet_hits == 1
    # A name only the record cache holds: a cache-only resolution answers it.
    target = await ask(query("www.other.test.", flags=0, use_edns=0))
    assert not target.flags & dns.flags.RD and target.flags & dns.flags.RA
    assert target.rcode() == dns.rcode.NOERROR
    assert [rrset[0].address for rrset in target.answer] == ["198.51.100.1"]
    assert resolver.stats.packet_hits == 1
    assert live_internet.total_queries() == 0
    # That RD=0 answer was not stored in the packet cache: RD=1 goes the full path.
    await ask(query("www.other.test."))
    assert resolver.stats.packet_hits == 1
    assert live_internet.total_queries() == 0


async def test_rd0_for_an_unknown_name_sends_nothing_upstream(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    live_internet.reset_counters()
    cold = await ask(query("www.slow.test.", flags=0))  # nothing about it is known yet
    assert not cold.answer and not cold.flags & dns.flags.RD
    assert live_internet.total_queries() == 0
    await ask(query("www.example.test."))
    live_internet.reset_counters()
    referral = await ask(query("mail.example.test.", flags=0))
    assert live_internet.total_queries() == 0
    # What BIND does: no answer, and the closest name servers known, in the authority section.
    assert referral.rcode() == dns.rcode.NOERROR
    assert referral.answer == []
    assert [(r.name.to_text(), r.rdtype) for r in referral.authority] == [
        ("example.test.", dns.rdatatype.NS)
    ]
    assert not referral.flags & dns.flags.RD and referral.flags & dns.flags.RA
    # The referral was made for that client alone: a recursive query gets the answer.
    answer = await ask(query("mail.example.test."))
    assert [rrset[0].address for rrset in answer.answer] == ["192.0.2.2"]
    assert live_internet.total_queries() > 0


async def test_rd0_queries_can_be_refused(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    resolver = await start_resolver(
        nursery, live_internet, tmp_path, non_recursive_queries="refuse"
    )
    await ask(query("www.example.test."))  # now in the packet cache too
    live_internet.reset_counters()
    for cached in ("www.example.test.", "mail.example.test."):
        refused = await ask(query(cached, flags=0, use_edns=0))
        assert refused.rcode() == dns.rcode.REFUSED
        assert refused.answer == [] and refused.authority == []
        assert not refused.flags & dns.flags.RD and refused.flags & dns.flags.RA
        assert [(o.code, o.text) for o in refused.options] == [
            (dns.edns.EDECode.PROHIBITED, "recursion not desired")
        ]
    (over_tcp,) = await tcp_exchange([query("www.example.test.", flags=0).to_wire()])
    assert dns.message.from_wire(over_tcp).rcode() == dns.rcode.REFUSED
    assert resolver.stats.packet_hits == 0
    assert live_internet.total_queries() == 0
    recursive = await ask(query("www.example.test."))
    assert recursive.rcode() == dns.rcode.NOERROR and recursive.answer


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
