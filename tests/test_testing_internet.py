"""The loopback test internet behaves like real authoritative servers, with and without sockets.

Resolver tests trust these servers blindly, so every behaviour they rely on (referrals, glue,
negative TTLs, truncation, each fault) is asserted here both through `respond()` and on the wire.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.testing import (
    POISON_ADDRESS,
    SPOOF_SOURCE_ADDRESS,
    AuthServer,
    Fault,
    ReceivedQuery,
    ServerSpec,
    TestInternet,
    answer,
)
from resolver.testing.faults import SPOOF_WRONG_IDS, Forgery, forge
from resolver.testing.topology import DEFAULT_SERVERS, EXAMPLE_ZONE

ROOT = "127.53.0.1"
TLD = "127.53.1.1"
EXAMPLE = "127.53.2.1"
OTHER = "127.53.3.1"
GLUELESS = "127.53.4.1"
LONGTTL = "127.53.5.1"
CNAMES = "127.53.6.1"
CNAMES2 = "127.53.6.2"

#: Short enough to keep the file fast, long enough for loopback to always answer in time.
SILENCE = 0.3

#: For property tests, which may not use function-scoped fixtures; only ever queried, never broken.
SHARED = TestInternet.default()


@pytest.fixture
def internet() -> TestInternet:
    return TestInternet.default()


@pytest.fixture
async def live(internet: TestInternet) -> AsyncIterator[TestInternet]:
    async with internet.running():
        yield internet


def query(name: str, rdtype: str = "A", edns: bool = True) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, use_edns=0 if edns else False, payload=1232)


def message(reply: dns.message.Message | bytes | None) -> dns.message.Message:
    assert isinstance(reply, dns.message.Message), reply
    return reply


def names(rrset: dns.rrset.RRset) -> set[str]:
    return {rdata.to_text() for rdata in rrset}


def section_names(section: list[dns.rrset.RRset]) -> set[tuple[str, str]]:
    return {(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype)) for rrset in section}


def assert_referral(response: dns.message.Message, zone: str, hosts: set[str]) -> None:
    assert response.rcode() == dns.rcode.NOERROR
    assert not response.flags & dns.flags.AA
    assert response.answer == []
    [ns] = response.authority
    assert ns.name == dns.name.from_text(zone)
    assert ns.rdtype == dns.rdatatype.NS
    assert names(ns) == hosts


# --- answers, without sockets ------------------------------------------------------------------


def test_root_refers_to_test_with_glue_and_never_answers_lower_zones(
    internet: TestInternet,
) -> None:
    response = message(internet.respond(ROOT, query("www.example.test")))
    assert_referral(response, "test.", {"ns1.nic.test.", "ns2.nic.test."})
    glue = {rrset.name.to_text(): names(rrset) for rrset in response.additional}
    assert glue == {"ns1.nic.test.": {"127.53.1.1"}, "ns2.nic.test.": {"127.53.1.2"}}


def test_tld_refers_to_example_with_glue(internet: TestInternet) -> None:
    response = message(internet.respond(TLD, query("www.example.test")))
    assert_referral(response, "example.test.", {"ns1.example.test.", "ns2.example.test."})
    assert section_names(response.additional) == {
        ("ns1.example.test.", "A"),
        ("ns2.example.test.", "A"),
    }
    assert response.authority[0].ttl == 172800


def test_example_answers_www_authoritatively(internet: TestInternet) -> None:
    response = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    [rrset] = response.answer
    assert (names(rrset), rrset.ttl) == ({"192.0.2.1"}, 300)
    aaaa = message(internet.respond("127.53.2.2", query("www.example.test", "AAAA")))
    assert names(aaaa.answer[0]) == {"2001:db8::1"}


def test_nxdomain_carries_soa_with_negative_ttl(internet: TestInternet) -> None:
    response = message(internet.respond(EXAMPLE, query("nope.example.test")))
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.flags & dns.flags.AA
    assert response.answer == []
    [soa] = response.authority
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.name == dns.name.from_text("example.test.")
    assert soa.ttl == 300  # min(SOA TTL 3600, MINIMUM 300)


@pytest.mark.parametrize("name", ["www.example.test", "b.c.example.test", "c.example.test"])
def test_nodata_and_empty_non_terminals_carry_soa(internet: TestInternet, name: str) -> None:
    response = message(internet.respond(EXAMPLE, query(name, "TXT")))
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert response.answer == []
    assert [(rrset.rdtype, rrset.ttl) for rrset in response.authority] == [(dns.rdatatype.SOA, 300)]


def test_cname_inside_the_zone_is_chased(internet: TestInternet) -> None:
    response = message(internet.respond(EXAMPLE, query("alias.example.test")))
    assert response.flags & dns.flags.AA
    assert [(r.name.to_text(), r.rdtype, r.ttl) for r in response.answer] == [
        ("alias.example.test.", dns.rdatatype.CNAME, 600),
        ("www.example.test.", dns.rdatatype.A, 300),
    ]


def test_cross_zone_cname_stops_at_the_zone_edge(internet: TestInternet) -> None:
    response = message(internet.respond(EXAMPLE, query("chain.example.test")))
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    [cname] = response.answer
    assert names(cname) == {"www.other.test."}
    assert response.authority == []


def test_cname_is_chased_into_another_served_zone() -> None:
    internet = TestInternet.default()
    zones = [internet.zones[dns.name.from_text(o)] for o in ("example.test.", "other.test.")]
    response = answer(query("chain.example.test"), zones)
    assert [names(rrset) for rrset in response.answer] == [{"www.other.test."}, {"198.51.100.1"}]


def test_cname_loop_ends(internet: TestInternet) -> None:
    response = message(internet.respond(EXAMPLE, query("loop1.example.test")))
    assert [r.name.to_text() for r in response.answer] == [
        "loop1.example.test.",
        "loop2.example.test.",
    ]


def test_glueless_referral_carries_no_glue(internet: TestInternet) -> None:
    response = message(internet.respond(TLD, query("www.glueless.test")))
    assert_referral(response, "glueless.test.", {"ns.glueless-host.other.test."})
    assert response.additional == []
    host = message(internet.respond(OTHER, query("ns.glueless-host.other.test")))
    assert names(host.answer[0]) == {GLUELESS}
    final = message(internet.respond(GLUELESS, query("www.glueless.test")))
    assert names(final.answer[0]) == {"203.0.113.1"}


def test_longttl_delegation_keeps_its_week_long_ttls(internet: TestInternet) -> None:
    response = message(internet.respond(TLD, query("www.longttl.test")))
    assert_referral(response, "longttl.test.", {"ns1.longttl.test."})
    assert [rrset.ttl for rrset in response.authority + response.additional] == [604800, 604800]
    final = message(internet.respond(LONGTTL, query("www.longttl.test")))
    assert names(final.answer[0]) == {"203.0.113.2"}


def test_priming_query_gets_root_ns_with_addresses(internet: TestInternet) -> None:
    response = message(internet.respond("127.53.0.2", query(".", "NS")))
    assert response.flags & dns.flags.AA
    assert names(response.answer[0]) == {"a.root-servers.test.", "b.root-servers.test."}
    assert section_names(response.additional) == {
        ("a.root-servers.test.", "A"),
        ("b.root-servers.test.", "A"),
    }


def test_foreign_zone_is_refused(internet: TestInternet) -> None:
    response = message(internet.respond(EXAMPLE, query("www.other.test")))
    assert response.rcode() == dns.rcode.REFUSED
    assert response.answer == response.authority == []


@settings(max_examples=40, deadline=None)
@given(
    flips=st.lists(st.booleans(), min_size=16, max_size=16),
    recursion_desired=st.booleans(),
    edns=st.booleans(),
)
def test_question_rd_and_edns_are_echoed(
    flips: list[bool], recursion_desired: bool, edns: bool
) -> None:
    mixed = "".join(
        c.upper() if flip else c for c, flip in zip("www.example.test", flips, strict=True)
    )
    request = query(mixed, edns=edns)
    if not recursion_desired:
        request.flags &= ~dns.flags.RD
    response = message(SHARED.respond(EXAMPLE, request))
    assert response.id == request.id
    assert response.flags & dns.flags.QR
    assert bool(response.flags & dns.flags.RD) == recursion_desired
    assert response.question[0].name.to_text() == mixed + "."
    assert (response.edns, response.payload) == ((0, 1232) if edns else (-1, 0))


def test_queries_are_counted_and_reset(internet: TestInternet) -> None:
    internet.respond(ROOT, query("www.example.test"))
    internet.respond(ROOT, query("mail.example.test", "MX", edns=False), tcp=True)
    root = internet.server_at(ROOT)
    assert root.query_count == 2
    assert root.queries[1] == ReceivedQuery(
        dns.name.from_text("mail.example.test"), dns.rdatatype.MX, tcp=True, edns=False
    )
    assert internet.total_queries() == 2
    internet.reset_counters()
    assert internet.total_queries() == 0


def test_unknown_address_is_a_key_error(internet: TestInternet) -> None:
    with pytest.raises(KeyError):
        internet.respond("127.53.9.9", query("www.example.test"))


def test_hints_list_the_root_servers(internet: TestInternet, tmp_path: Path) -> None:
    path = internet.write_hints(tmp_path / "root.hints")
    hints = dns.zone.from_text(
        path.read_text(), origin=dns.name.root, relativize=False, check_origin=False
    )
    ns = hints.find_rrset(dns.name.root, "NS")
    assert names(ns) == {"a.root-servers.test.", "b.root-servers.test."}
    assert ns.ttl == 3600000
    assert names(hints.find_rrset("b.root-servers.test.", "A")) == {"127.53.0.2"}


def test_construction_refuses_non_loopback_and_unknown_zones() -> None:
    text = EXAMPLE_ZONE
    with pytest.raises(ValueError, match="loopback"):
        TestInternet({"example.test.": text}, [ServerSpec("x.", "192.0.2.53", ("example.test.",))])
    with pytest.raises(ValueError, match="unknown zone"):
        TestInternet({"example.test.": text}, [ServerSpec("x.", "127.53.9.1", ("nope.test.",))])
    with pytest.raises(ValueError, match="loopback"):
        AuthServer("x.", "10.0.0.1", [])


# --- faults and truncation, without sockets ----------------------------------------------------


def test_big_answer_is_truncated_over_udp_only(internet: TestInternet) -> None:
    udp = message(internet.respond(EXAMPLE, query("big.example.test", "TXT")))
    assert udp.flags & dns.flags.TC
    assert udp.answer == udp.authority == udp.additional == []
    assert udp.edns == 0
    tcp = message(internet.respond(EXAMPLE, query("big.example.test", "TXT"), tcp=True))
    assert not tcp.flags & dns.flags.TC
    assert len(tcp.answer[0]) == 40
    assert len(tcp.to_wire(max_size=65535)) > 1232


def test_small_answer_is_not_truncated_without_edns(internet: TestInternet) -> None:
    response = message(internet.respond(EXAMPLE, query("www.example.test", edns=False)))
    assert not response.flags & dns.flags.TC
    assert response.edns == -1


@pytest.mark.parametrize("fault", [Fault.DROP, Fault.TCP_ONLY])
def test_silent_faults_give_no_reply_but_count(internet: TestInternet, fault: Fault) -> None:
    server = internet.server_at(EXAMPLE)
    server.fault = fault
    assert internet.respond(EXAMPLE, query("www.example.test")) is None
    over_tcp = internet.respond(EXAMPLE, query("www.example.test"), tcp=True)
    if fault is Fault.DROP:
        assert over_tcp is None
    else:
        assert message(over_tcp).answer
    assert server.query_count == 2


def test_truncate_fault_hits_udp_only(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.TRUNCATE
    udp = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    tcp = message(internet.respond(EXAMPLE, query("www.example.test"), tcp=True))
    assert not tcp.flags & dns.flags.TC
    assert names(tcp.answer[0]) == {"192.0.2.1"}


@pytest.mark.parametrize(
    ("fault", "rcode"), [(Fault.REFUSED, dns.rcode.REFUSED), (Fault.SERVFAIL, dns.rcode.SERVFAIL)]
)
def test_error_faults(internet: TestInternet, fault: Fault, rcode: dns.rcode.Rcode) -> None:
    internet.server_at(EXAMPLE).fault = fault
    response = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert response.rcode() == rcode
    assert response.answer == []


def test_garbage_fault_never_parses(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.GARBAGE
    request = query("www.example.test")
    for _ in range(20):
        reply = internet.respond(EXAMPLE, request)
        assert isinstance(reply, bytes)
        assert reply[:2] == request.id.to_bytes(2, "big")
        with pytest.raises(dns.exception.DNSException):
            dns.message.from_wire(reply)


def test_wrong_id_fault(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.WRONG_ID
    request = query("www.example.test")
    request.id = 65535
    response = message(internet.respond(EXAMPLE, request))
    assert response.id == 0
    assert names(response.answer[0]) == {"192.0.2.1"}


def test_lame_fault_is_an_upward_referral(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.LAME
    response = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert_referral(response, ".", {"a.root-servers.test.", "b.root-servers.test."})


def test_no_edns_fault(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.NO_EDNS
    formerr = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert formerr.rcode() == dns.rcode.FORMERR
    assert formerr.edns == -1
    plain = message(internet.respond(EXAMPLE, query("www.example.test", edns=False)))
    assert names(plain.answer[0]) == {"192.0.2.1"}


def test_delay_fault_is_ignored_by_respond(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.DELAY
    assert message(internet.respond(EXAMPLE, query("www.example.test"))).answer
    internet.reset_faults()
    assert internet.server_at(EXAMPLE).fault is Fault.NONE


# --- the same over real sockets ----------------------------------------------------------------


async def udp_raw(wire: bytes, address: str) -> bytes:
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.connect((address, 53))
        await sock.send(wire)
        with trio.fail_after(1):
            return await sock.recv(65535)


async def tcp_pipelined(wires: list[bytes], address: str) -> list[dns.message.Message]:
    """Send every query on one connection before reading, as a pipelining client would."""
    stream = await trio.open_tcp_stream(address, 53)
    async with stream:
        await stream.send_all(b"".join(len(w).to_bytes(2, "big") + w for w in wires))
        buffer = b""
        replies: list[dns.message.Message] = []
        with trio.fail_after(1):
            while len(replies) < len(wires):
                buffer += await stream.receive_some(65535)
                while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                    size = int.from_bytes(buffer[:2], "big")
                    replies.append(dns.message.from_wire(buffer[2 : 2 + size]))
                    buffer = buffer[2 + size :]
        return replies


async def test_iteration_over_udp(live: TestInternet) -> None:
    request = query("www.example.test")
    root = await dns.asyncquery.udp(request, ROOT, timeout=1)
    assert_referral(root, "test.", {"ns1.nic.test.", "ns2.nic.test."})
    tld = await dns.asyncquery.udp(request, "127.53.1.2", timeout=1)
    assert_referral(tld, "example.test.", {"ns1.example.test.", "ns2.example.test."})
    final = await dns.asyncquery.udp(request, "127.53.2.2", timeout=1)
    assert final.flags & dns.flags.AA
    assert names(final.answer[0]) == {"192.0.2.1"}
    asked = {name: s.query_count for name, s in live.servers.items() if s.query_count}
    assert asked == {"a.root-servers.test.": 1, "ns2.nic.test.": 1, "ns2.example.test.": 1}
    assert live.server_at(ROOT).queries == [
        ReceivedQuery(dns.name.from_text("www.example.test"), dns.rdatatype.A, False, True)
    ]


async def test_negative_answers_over_tcp(live: TestInternet) -> None:
    nx = await dns.asyncquery.tcp(query("nope.example.test"), EXAMPLE, timeout=1)
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert nx.authority[0].ttl == 300
    assert live.server_at(EXAMPLE).queries[0].tcp


async def test_tcp_serves_several_queries_per_connection(live: TestInternet) -> None:
    requests = [query("www.example.test"), query("mail.example.test"), query("nope.example.test")]
    replies = await tcp_pipelined([r.to_wire() for r in requests], EXAMPLE)
    assert [reply.id for reply in replies] == [request.id for request in requests]
    assert [reply.rcode() for reply in replies] == [0, 0, dns.rcode.NXDOMAIN]


async def test_big_answer_over_sockets(live: TestInternet) -> None:
    request = query("big.example.test", "TXT")
    udp = await dns.asyncquery.udp(request, EXAMPLE, timeout=1)
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    tcp = await dns.asyncquery.tcp(request, EXAMPLE, timeout=1)
    assert len(tcp.answer[0]) == 40


async def test_silent_faults_time_out(live: TestInternet) -> None:
    live.server_at(EXAMPLE).fault = Fault.DROP
    live.server_at(OTHER).fault = Fault.TCP_ONLY
    timeouts: list[str] = []

    async def expect_timeout(kind: str, address: str, name: str) -> None:
        exchange = dns.asyncquery.udp if kind == "udp" else dns.asyncquery.tcp
        with pytest.raises(dns.exception.Timeout):
            await exchange(query(name), address, timeout=SILENCE)
        timeouts.append(f"{kind} {address}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(expect_timeout, "udp", EXAMPLE, "www.example.test")
        nursery.start_soon(expect_timeout, "tcp", EXAMPLE, "www.example.test")
        nursery.start_soon(expect_timeout, "udp", OTHER, "www.other.test")
        tcp = await dns.asyncquery.tcp(query("www.other.test"), OTHER, timeout=1)
        assert names(tcp.answer[0]) == {"198.51.100.1"}
    assert len(timeouts) == 3
    assert live.server_at(EXAMPLE).query_count == 2
    assert live.server_at(OTHER).query_count == 2


async def test_truncate_fault_over_sockets(live: TestInternet) -> None:
    live.server_at(EXAMPLE).fault = Fault.TRUNCATE
    udp = await dns.asyncquery.udp(query("www.example.test"), EXAMPLE, timeout=1)
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    tcp = await dns.asyncquery.tcp(query("www.example.test"), EXAMPLE, timeout=1)
    assert names(tcp.answer[0]) == {"192.0.2.1"}


async def test_wrong_id_and_garbage_over_udp(live: TestInternet) -> None:
    request = query("www.example.test")
    live.server_at(EXAMPLE).fault = Fault.WRONG_ID
    wrong = dns.message.from_wire(await udp_raw(request.to_wire(), EXAMPLE))
    assert wrong.id == (request.id + 1) % 65536
    assert names(wrong.answer[0]) == {"192.0.2.1"}
    live.server_at(EXAMPLE).fault = Fault.GARBAGE
    junk = await udp_raw(request.to_wire(), EXAMPLE)
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(junk)


async def test_lame_refused_servfail_and_no_edns_over_sockets(live: TestInternet) -> None:
    server = live.server_at(EXAMPLE)
    server.fault = Fault.LAME
    lame = await dns.asyncquery.udp(query("www.example.test"), EXAMPLE, timeout=1)
    assert_referral(lame, ".", {"a.root-servers.test.", "b.root-servers.test."})
    server.fault = Fault.SERVFAIL
    servfail = await dns.asyncquery.tcp(query("www.example.test"), EXAMPLE, timeout=1)
    assert servfail.rcode() == dns.rcode.SERVFAIL
    server.fault = Fault.NO_EDNS
    formerr = await dns.asyncquery.udp(query("www.example.test"), EXAMPLE, timeout=1)
    assert (formerr.rcode(), formerr.edns) == (dns.rcode.FORMERR, -1)
    plain = await dns.asyncquery.udp(query("www.example.test", edns=False), EXAMPLE, timeout=1)
    assert names(plain.answer[0]) == {"192.0.2.1"}
    assert [q.edns for q in server.queries] == [True, True, True, False]


async def test_delay_fault_answers_late(live: TestInternet) -> None:
    server = live.server_at(EXAMPLE)
    server.fault, server.delay = Fault.DELAY, 0.2
    start = trio.current_time()
    response = await dns.asyncquery.udp(query("www.example.test"), EXAMPLE, timeout=1)
    assert trio.current_time() - start >= 0.2
    assert names(response.answer[0]) == {"192.0.2.1"}


def test_in_thread_serves_synchronous_clients() -> None:
    internet = TestInternet.default()
    with internet.in_thread():
        response = dns.query.udp(query("www.example.test"), ROOT, timeout=1)
        assert_referral(response, "test.", {"ns1.nic.test.", "ns2.nic.test."})
        internet.server_at(ROOT).fault = Fault.DROP  # changed from this thread, seen by the loop
        start = time.monotonic()
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(query("www.example.test"), ROOT, timeout=SILENCE)
        assert time.monotonic() - start >= SILENCE
    assert internet.server_at(ROOT).query_count == 2
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):  # every socket was closed on exit
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ROOT, 53))


def test_in_thread_reraises_binding_errors() -> None:
    first, second = TestInternet.default(), TestInternet.default()
    with first.in_thread(), pytest.raises(OSError, match="in use"), second.in_thread():
        pytest.fail("a second internet bound the same addresses")
    assert first.total_queries() == 0


async def test_single_server_can_be_started_alone() -> None:
    zone = dns.zone.from_text(EXAMPLE_ZONE, origin="example.test.", relativize=False)
    server = AuthServer("solo.", "127.53.9.1", [zone])
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        response = await dns.asyncquery.tcp(query("www.example.test"), "127.53.9.1", timeout=1)
        assert names(response.answer[0]) == {"192.0.2.1"}
        nursery.cancel_scope.cancel()
    assert server.queries == [
        ReceivedQuery(dns.name.from_text("www.example.test"), dns.rdatatype.A, True, True)
    ]


# --- injection of out-of-bailiwick data ---------------------------------------------------------


def rrset(text: str) -> dns.rrset.RRset:
    name, ttl, rdtype, *data = text.split()
    return dns.rrset.from_text(name, int(ttl), "IN", rdtype, " ".join(data))


POISONS = [
    ("answer", rrset("www.other.test. 3600 A 6.6.6.6")),
    ("authority", rrset("other.test. 3600 NS ns.evil.test.")),
    ("additional", rrset("ns.evil.test. 3600 A 6.6.6.6")),
]


def planted(response: dns.message.Message) -> dict[str, set[tuple[str, str]]]:
    """Which of POISONS each section of `response` carries."""
    return {
        section: section_names(getattr(response, section)) & section_names([poison])
        for section, poison in POISONS
    }


ALL_PLANTED = {section: section_names([poison]) for section, poison in POISONS}
NONE_PLANTED: dict[str, set[tuple[str, str]]] = {section: set() for section, _ in POISONS}


@pytest.mark.parametrize(
    ("address", "name", "rdtype", "rcode"),
    [
        (EXAMPLE, "www.example.test", "A", dns.rcode.NOERROR),  # answer
        (EXAMPLE, "alias.example.test", "A", dns.rcode.NOERROR),  # CNAME chain
        (EXAMPLE, "www.example.test", "TXT", dns.rcode.NOERROR),  # NODATA
        (EXAMPLE, "nope.example.test", "A", dns.rcode.NXDOMAIN),
        (TLD, "www.example.test", "A", dns.rcode.NOERROR),  # referral
    ],
)
def test_injection_is_planted_in_every_zone_response(
    internet: TestInternet, address: str, name: str, rdtype: str, rcode: dns.rcode.Rcode
) -> None:
    server = internet.server_at(address)
    server.inject.extend(POISONS)
    response = message(internet.respond(address, query(name, rdtype)))
    assert response.rcode() == rcode
    assert planted(response) == ALL_PLANTED
    # the genuine data is still there: the poison is appended behind it
    poisons = [poison for _, poison in POISONS]
    assert [r for r in response.answer + response.authority if r not in poisons]
    assert all(getattr(response, section)[-1] == poison for section, poison in POISONS)
    again = message(internet.respond(address, query(name, rdtype), tcp=True))
    assert planted(again) == ALL_PLANTED
    sections = [*again.answer, *again.authority, *again.additional]
    assert not any(r is poison for _, poison in POISONS for r in sections)  # copies are planted


@pytest.mark.parametrize(
    ("fault", "name"),
    [
        (Fault.NONE, "www.other.test"),  # REFUSED: not a zone of this server
        (Fault.REFUSED, "www.example.test"),
        (Fault.SERVFAIL, "www.example.test"),
        (Fault.NO_EDNS, "www.example.test"),  # FORMERR
    ],
)
def test_injection_spares_error_responses(internet: TestInternet, fault: Fault, name: str) -> None:
    server = internet.server_at(EXAMPLE)
    server.inject.extend(POISONS)
    server.fault = fault
    response = message(internet.respond(EXAMPLE, query(name)))
    assert response.rcode() != dns.rcode.NOERROR
    assert planted(response) == NONE_PLANTED
    server.fault = Fault.GARBAGE
    assert isinstance(internet.respond(EXAMPLE, query(name)), bytes)


def test_injection_counts_towards_udp_truncation_and_is_reset(internet: TestInternet) -> None:
    server = internet.server_at(EXAMPLE)
    big = rrset("big.other.test. 3600 TXT " + " ".join(f'"{i:03d}{"x" * 60}"' for i in range(30)))
    server.inject.append(("additional", big))
    udp = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert udp.flags & dns.flags.TC
    assert udp.answer == udp.additional == []
    tcp = message(internet.respond(EXAMPLE, query("www.example.test"), tcp=True))
    assert section_names(tcp.additional) == {("big.other.test.", "TXT")}
    server.fault, server.spoof_delay = Fault.SPOOF, 0.5
    internet.reset_faults()
    assert (server.inject, server.fault, server.spoof_delay) == ([], Fault.NONE, 0.05)
    clean = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert clean.additional == []


def test_injection_into_an_unknown_section_fails_loudly(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).inject.append(("question", POISONS[0][1]))
    with pytest.raises(ValueError, match="question"):
        internet.respond(EXAMPLE, query("www.example.test"))


async def test_injection_over_sockets_matches_respond(live: TestInternet) -> None:
    live.server_at(TLD).inject.extend(POISONS)
    expected = message(live.respond(TLD, query("www.example.test")))
    udp = await dns.asyncquery.udp(query("www.example.test"), TLD, timeout=1)
    tcp = await dns.asyncquery.tcp(query("www.example.test"), TLD, timeout=1)
    for response in (udp, tcp):
        assert planted(response) == ALL_PLANTED
        assert response.authority == expected.authority
        assert response.additional == expected.additional


# --- NO_TCP -------------------------------------------------------------------------------------


def test_no_tcp_truncates_udp_and_refuses_tcp(internet: TestInternet) -> None:
    server = internet.server_at(EXAMPLE)
    server.fault = Fault.NO_TCP
    udp = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert udp.flags & dns.flags.TC
    assert udp.answer == udp.authority == udp.additional == []
    assert internet.respond(EXAMPLE, query("www.example.test"), tcp=True) is None
    # the TCP query never reached the server: over a socket it is not even read
    assert [q.tcp for q in server.queries] == [False]
    assert server.tcp_refused == 1
    internet.reset_counters()
    assert (server.query_count, server.tcp_refused) == (0, 0)


async def test_no_tcp_over_sockets_closes_connections_unread(live: TestInternet) -> None:
    server = live.server_at(EXAMPLE)
    server.fault = Fault.NO_TCP
    udp = await dns.asyncquery.udp(query("www.example.test"), EXAMPLE, timeout=1)
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    stream = await trio.open_tcp_stream(EXAMPLE, 53)
    async with stream:
        wire = query("www.example.test").to_wire()
        with trio.fail_after(1):
            try:
                await stream.send_all(len(wire).to_bytes(2, "big") + wire)
                received = await stream.receive_some(65535)
            except trio.BrokenResourceError:
                received = b""  # reset by the server: just as refused
    assert received == b""
    with pytest.raises((EOFError, OSError, trio.BrokenResourceError)):
        await dns.asyncquery.tcp(query("www.example.test"), EXAMPLE, timeout=1)
    assert [q.tcp for q in server.queries] == [False]
    assert server.tcp_refused == 2


# --- SPOOF --------------------------------------------------------------------------------------


def test_spoof_answers_normally_without_sockets(internet: TestInternet) -> None:
    server = internet.server_at(EXAMPLE)
    server.fault = Fault.SPOOF
    for tcp in (False, True):
        response = message(internet.respond(EXAMPLE, query("www.example.test"), tcp=tcp))
        assert names(response.answer[0]) == {"192.0.2.1"}
    assert server.spoofs_sent == 0
    assert server.query_count == 2


def test_forgeries_each_fail_exactly_one_check() -> None:
    request = query("wWw.Example.test", "AAAA")
    before = request.to_wire()
    forged = forge(request, random.Random(7))
    assert request.to_wire() == before  # the query is never edited
    kinds = [kind for kind, _ in forged]
    assert kinds == [Forgery.WRONG_ID] * SPOOF_WRONG_IDS + [
        Forgery.WRONG_QUESTION,
        Forgery.WRONG_ADDRESS,
        Forgery.WRONG_PORT,
    ]
    ids = [m.id for kind, m in forged if kind is Forgery.WRONG_ID]
    assert len(set(ids)) == SPOOF_WRONG_IDS
    assert request.id not in ids
    for kind, forgery in forged:
        assert forgery.flags & dns.flags.QR and forgery.flags & dns.flags.AA
        [poison] = forgery.answer
        assert (poison.name, poison.rdtype, names(poison)) == (
            dns.name.from_text("www.example.test"),
            dns.rdatatype.A,
            {POISON_ADDRESS},
        )
        assert section_names(forgery.additional) == {("poison.test.", "A")}
        [asked] = forgery.question
        assert asked.rdtype == dns.rdatatype.AAAA
        if kind is Forgery.WRONG_QUESTION:
            assert asked.name.to_text() == "x.wWw.Example.test."
            assert forgery.id == request.id
        else:
            assert asked.name.to_text() == "wWw.Example.test."  # case echoed
        if kind is not Forgery.WRONG_ID:
            assert forgery.id == request.id
        assert request.is_response(forgery) == (kind in (Forgery.WRONG_ADDRESS, Forgery.WRONG_PORT))


def test_spoof_source_address_is_reserved() -> None:
    with pytest.raises(ValueError, match="reserved"):
        AuthServer("x.", SPOOF_SOURCE_ADDRESS, [])
    assert SPOOF_SOURCE_ADDRESS not in {spec.address for spec in DEFAULT_SERVERS}
    assert ipaddress.ip_address(SPOOF_SOURCE_ADDRESS).is_loopback


async def receive_all(
    sock: trio.socket.SocketType, seconds: float, last_from: tuple[str, int] | None = None
) -> list[tuple[bytes, tuple[str, int]]]:
    """Every datagram `sock` receives within `seconds`, in arrival order.

    With `last_from`, stop early after the first datagram from there that is not a forgery.
    """
    received: list[tuple[bytes, tuple[str, int]]] = []
    with trio.move_on_after(seconds):
        while True:
            data, peer = await sock.recvfrom(65535)
            received.append((data, (peer[0], peer[1])))
            answers = dns.message.from_wire(data).answer
            if (peer[0], peer[1]) == last_from and not any(
                POISON_ADDRESS in names(rrset) for rrset in answers
            ):
                return received
    return received


async def test_spoof_races_the_genuine_answer_over_udp(live: TestInternet) -> None:
    server = live.server_at(EXAMPLE)
    server.fault = Fault.SPOOF
    request = query("wWw.Example.test")
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        await sock.sendto(request.to_wire(), (EXAMPLE, 53))
        received = await receive_all(sock, SILENCE)
    messages = [(dns.message.from_wire(data), peer) for data, peer in received]
    genuine = [
        index
        for index, (m, peer) in enumerate(messages)
        if peer == (EXAMPLE, 53) and request.is_response(m)
    ]
    assert genuine == [len(messages) - 1]  # exactly one, and it came last
    answer_ = messages[-1][0]
    assert names(answer_.answer[0]) == {"192.0.2.1"}
    forged = messages[:-1]
    assert len(forged) == SPOOF_WRONG_IDS + 3 == server.spoofs_sent
    assert all(names(m.answer[0]) == {POISON_ADDRESS} for m, _ in forged)
    wrong_id = [m for m, peer in forged if peer == (EXAMPLE, 53) and m.id != request.id]
    assert len(wrong_id) == SPOOF_WRONG_IDS
    [wrong_question] = [m for m, peer in forged if peer == (EXAMPLE, 53) and m.id == request.id]
    assert not request.is_response(wrong_question)
    [from_elsewhere] = [m for m, peer in forged if peer == (SPOOF_SOURCE_ADDRESS, 53)]
    [other_port] = [m for m, peer in forged if peer[0] == EXAMPLE and peer[1] != 53]
    assert request.is_response(from_elsewhere) and request.is_response(other_port)
    assert server.query_count == 1


async def checked_udp(request: dns.message.Message, address: str) -> dns.message.Message:
    """A client doing every RFC 5452 check: source address and port, id and question.

    dnspython cannot serve here: it raises on the right id with a wrong question instead of
    waiting on for the genuine answer.
    """
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.connect((address, 53))  # the kernel drops datagrams from any other source
        await sock.send(request.to_wire())
        with trio.fail_after(1):
            while True:
                response = dns.message.from_wire(await sock.recv(65535))
                if request.is_response(response):
                    return response


async def test_spoof_is_survived_by_a_checking_client_and_spares_tcp(live: TestInternet) -> None:
    server = live.server_at(EXAMPLE)
    server.fault, server.spoof_delay = Fault.SPOOF, 0.02
    start = trio.current_time()
    udp = await checked_udp(query("www.example.test"), EXAMPLE)
    assert trio.current_time() - start >= 0.02
    assert names(udp.answer[0]) == {"192.0.2.1"}
    tcp = await dns.asyncquery.tcp(query("www.example.test"), EXAMPLE, timeout=1)
    assert names(tcp.answer[0]) == {"192.0.2.1"}
    assert server.spoofs_sent == SPOOF_WRONG_IDS + 3  # only the UDP query was raced


def free_udp_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("address", ["127.53.9.1", "::1"])
async def test_spoof_from_a_lone_server_on_another_port(address: str) -> None:
    port = free_udp_port(address)
    zone = dns.zone.from_text(EXAMPLE_ZONE, origin="example.test.", relativize=False)
    server = AuthServer("solo.", address, [zone], port=port)
    server.fault = Fault.SPOOF
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    request = query("www.example.test")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        with trio.socket.socket(family, socket.SOCK_DGRAM) as sock:
            await sock.bind((address, 0))
            await sock.sendto(request.to_wire(), (address, port))
            received = await receive_all(sock, 1, last_from=(address, port))
        nursery.cancel_scope.cancel()
    *forged, (genuine, source) = [(dns.message.from_wire(d), peer) for d, peer in received]
    assert source == (address, port)
    assert names(genuine.answer[0]) == {"192.0.2.1"}
    spoofers = {peer for _, peer in forged} - {(address, port)}
    if family == socket.AF_INET:
        # only an address check rejects this one: it comes from the server's port number
        assert (SPOOF_SOURCE_ADDRESS, port) in spoofers
        assert len(forged) == server.spoofs_sent == SPOOF_WRONG_IDS + 3
    else:  # there is no other IPv6 loopback address to spoof from
        assert len(forged) == server.spoofs_sent == SPOOF_WRONG_IDS + 2
    assert any(peer[0] == address and peer[1] != port for peer in spoofers)


# --- the query log's detail ---------------------------------------------------------------------


def test_query_log_keeps_case_and_id_without_a_port(internet: TestInternet) -> None:
    request = query("wWw.ExAmPlE.TeSt")
    internet.respond(EXAMPLE, request)
    [logged] = internet.server_at(EXAMPLE).queries
    assert logged.qname.to_text() == "wWw.ExAmPlE.TeSt."
    assert (logged.id, logged.source_port) == (request.id, None)
    # random per query, so not part of equality: tests compare what was asked
    assert logged == ReceivedQuery(
        dns.name.from_text("www.example.test"), dns.rdatatype.A, False, True
    )


async def test_query_log_records_source_ports_over_udp_and_tcp(live: TestInternet) -> None:
    server = live.server_at(EXAMPLE)
    request = query("MaIl.example.test")
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        udp_port = sock.getsockname()[1]
        await sock.sendto(request.to_wire(), (EXAMPLE, 53))
        with trio.fail_after(1):
            await sock.recv(65535)
    stream = await trio.open_tcp_stream(EXAMPLE, 53)
    async with stream:
        tcp_port = stream.socket.getsockname()[1]
        wire = query("www.example.test").to_wire()
        await stream.send_all(len(wire).to_bytes(2, "big") + wire)
        with trio.fail_after(1):
            await stream.receive_some(65535)
    udp, tcp = server.queries
    assert (udp.qname.to_text(), udp.id, udp.source_port, udp.tcp) == (
        "MaIl.example.test.",
        request.id,
        udp_port,
        False,
    )
    assert (tcp.source_port, tcp.tcp) == (tcp_port, True)


# --- the hardening zones ------------------------------------------------------------------------


def walk(
    internet: TestInternet, name: str, rdtype: str = "A"
) -> tuple[list[str], dns.message.Message]:
    """Iterate from the root through glued referrals; the servers asked and the final response."""
    address, asked = ROOT, []
    for _ in range(10):
        asked.append(internet.server_at(address).name)
        response = message(internet.respond(address, query(name, rdtype)))
        if response.flags & dns.flags.AA or not response.authority:
            return asked, response
        assert response.additional, f"glueless referral from {address}"
        address = response.additional[0][0].address
    raise AssertionError("referral loop")


def chain(response: dns.message.Message) -> list[tuple[str, str]]:
    return [(r.name.to_text(), r[0].to_text()) for r in response.answer]


def test_one_zone_cname_chain_is_21_names_long(internet: TestInternet) -> None:
    asked, first = walk(internet, "c0.cnames.test")
    assert asked == ["a.root-servers.test.", "ns1.nic.test.", "ns1.cnames.test."]
    # the server chases 16 CNAMEs per response, like a real one; the rest needs a second query
    assert chain(first) == [(f"c{i}.cnames.test.", f"c{i + 1}.cnames.test.") for i in range(16)]
    rest = message(internet.respond(CNAMES, query("c16.cnames.test")))
    assert chain(rest) == [
        *[(f"c{i}.cnames.test.", f"c{i + 1}.cnames.test.") for i in range(16, 20)],
        ("c20.cnames.test.", "192.0.2.20"),
    ]


def test_cross_zone_cname_chain_has_8_links(internet: TestInternet) -> None:
    _, response = walk(internet, "hop0.cnames.test")
    links: list[str] = []
    while response.answer[-1].rdtype == dns.rdatatype.CNAME:
        [cname] = response.answer  # one link per response: the next hop is in the other zone
        links.append(cname.name.to_text())
        target = cname[0].target.to_text()
        address = CNAMES2 if target.endswith(".cnames2.test.") else CNAMES
        response = message(internet.respond(address, query(target)))
    assert links == [f"hop{i}.{'cnames2' if i % 2 else 'cnames'}.test." for i in range(8)]
    assert chain(response) == [("hop8.cnames.test.", "192.0.2.28")]
    _, second = walk(internet, "hop1.cnames2.test")
    assert chain(second) == [("hop1.cnames2.test.", "hop2.cnames.test.")]


def test_glueless_delegation_cycle(internet: TestInternet) -> None:
    for zone, other in (("loopa", "loopb"), ("loopb", "loopa")):
        server = message(internet.respond(TLD, query(f"ns.{other}.test")))
        assert_referral(server, f"{other}.test.", {f"ns.{zone}.test."})
        assert server.additional == []
        assert not any(
            dns.name.from_text(f"{zone}.test.") == z.origin
            for s in internet.servers.values()
            for z in s.zones
        )


def test_manyns_points_at_ten_names_that_do_not_exist(internet: TestInternet) -> None:
    referral = message(internet.respond(TLD, query("www.manyns.test")))
    hosts = {f"ns{i}.nowhere.test." for i in range(10)}
    assert_referral(referral, "manyns.test.", hosts)
    assert referral.additional == []
    for host in sorted(hosts):
        nx = message(internet.respond(TLD, query(host)))
        assert nx.rcode() == dns.rcode.NXDOMAIN
        assert nx.flags & dns.flags.AA


def test_deep_delegation_chain(internet: TestInternet) -> None:
    asked, response = walk(internet, "www.d2.d1.deep.test")
    assert asked == [
        "a.root-servers.test.",
        "ns1.nic.test.",
        "ns1.deep.test.",
        "ns.d1.deep.test.",
        "ns.d2.d1.deep.test.",
    ]
    assert chain(response) == [("www.d2.d1.deep.test.", "192.0.2.77")]
    assert [internet.server_at(a).name for a in ("127.53.7.1", "127.53.7.2", "127.53.7.3")] == (
        asked[2:]
    )


def test_slow_zone_is_served_identically_by_two_servers(internet: TestInternet) -> None:
    referral = message(internet.respond(TLD, query("www.slow.test")))
    assert_referral(referral, "slow.test.", {"ns1.slow.test.", "ns2.slow.test."})
    assert {names(r).pop() for r in referral.additional} == {"127.53.8.1", "127.53.8.2"}
    for letter, host in [("www", 88), *((chr(97 + i), 101 + i) for i in range(26))]:
        answers = [
            chain(message(internet.respond(address, query(f"{letter}.slow.test"))))
            for address in ("127.53.8.1", "127.53.8.2")
        ]
        assert answers[0] == answers[1] == [(f"{letter}.slow.test.", f"192.0.2.{host}")]


def test_default_topology_keeps_its_old_servers_and_stays_in_its_block() -> None:
    old = [(s.name, s.address) for s in DEFAULT_SERVERS[:9]]
    assert old == [
        ("a.root-servers.test.", "127.53.0.1"),
        ("b.root-servers.test.", "127.53.0.2"),
        ("ns1.nic.test.", "127.53.1.1"),
        ("ns2.nic.test.", "127.53.1.2"),
        ("ns1.example.test.", "127.53.2.1"),
        ("ns2.example.test.", "127.53.2.2"),
        ("ns1.other.test.", "127.53.3.1"),
        ("ns.glueless-host.other.test.", "127.53.4.1"),
        ("ns1.longttl.test.", "127.53.5.1"),
    ]
    block = ipaddress.ip_network("127.53.0.0/16")
    addresses = [ipaddress.ip_address(s.address) for s in DEFAULT_SERVERS]
    assert len(set(addresses)) == len(addresses) == 19
    assert all(address in block for address in addresses)


async def test_deep_delegation_over_udp(live: TestInternet) -> None:
    request = query("www.d2.d1.deep.test")
    address = ROOT
    for _ in range(5):
        response = await dns.asyncquery.udp(request, address, timeout=1)
        if response.flags & dns.flags.AA:
            break
        address = response.additional[0][0].address
    assert chain(response) == [("www.d2.d1.deep.test.", "192.0.2.77")]
    assert address == "127.53.7.3"
