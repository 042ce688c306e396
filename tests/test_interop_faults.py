"""The test internet misbehaves the way deployed authoritative servers do, for the interop tests.

The behaviour tests (tests/test_interop_*.py) trust these faults to send exactly the broken
responses of the real internet, so each one is asserted here through `respond()` and, where the
wire form matters (bare headers, dropped datagrams), over real loopback sockets too.
"""

from __future__ import annotations

import socket

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trio

from resolver.testing import Fault, TestInternet
from resolver.testing.faults import SIDEWAYS_ZONE, UNPARSEABLE_ANCOUNT

ROOT = "127.53.0.1"
TLD = "127.53.1.1"
EXAMPLE = "127.53.2.1"
DNAME = "127.53.10.1"
ADDR = "127.53.11.1"
ADDR_DEAD = "127.53.11.2"
ONENS = "127.53.12.1"

#: No loopback reply takes this long; waiting longer only slows down the tests of silence.
SILENCE = 0.3


def query(name: str, rdtype: str = "A", edns: bool = True) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, use_edns=0 if edns else False, payload=1232)


def message(reply: dns.message.Message | bytes | None) -> dns.message.Message:
    assert isinstance(reply, dns.message.Message), reply
    return reply


def lines(section: list[dns.rrset.RRset]) -> list[str]:
    return [line for rrset in section for line in rrset.to_text().splitlines()]


def header(wire: bytes) -> tuple[int, int, tuple[int, int, int, int]]:
    """ID, flags word and the four section counts of a DNS header."""
    words = [int.from_bytes(wire[i : i + 2], "big") for i in range(0, 12, 2)]
    return words[0], words[1], (words[2], words[3], words[4], words[5])


# --- flags: NO_AA, RECURSIVE, INTERCEPT, AA_REFERRAL ---------------------------------------------


def test_no_aa_answers_as_usual_without_aa(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.NO_AA
    positive = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert not positive.flags & dns.flags.AA
    assert lines(positive.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    negative = message(internet.respond(EXAMPLE, query("nope.example.test")))
    assert negative.rcode() == dns.rcode.NXDOMAIN and not negative.flags & dns.flags.AA
    assert [rrset.rdtype for rrset in negative.authority] == [dns.rdatatype.SOA]


def test_recursive_sets_ra_clears_aa_and_keeps_the_data(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.RECURSIVE
    for name, rcode in (("www.example.test", dns.rcode.NOERROR), ("nx.example.test", 3)):
        response = message(internet.respond(EXAMPLE, query(name)))
        assert response.flags & dns.flags.RA
        assert not response.flags & dns.flags.AA
        assert response.rcode() == rcode
    assert lines(message(internet.respond(EXAMPLE, query("www.example.test"))).answer) == [
        "www.example.test. 300 IN A 192.0.2.1"
    ]


@pytest.mark.parametrize("address", [ROOT, TLD, EXAMPLE])
def test_intercept_says_nxdomain_with_ra_for_everything(
    internet: TestInternet, address: str
) -> None:
    internet.set_fault_everywhere(Fault.INTERCEPT)
    assert {server.fault for server in internet.servers.values()} == {Fault.INTERCEPT}
    for name in ("www.example.test", "example.test", "."):
        response = message(internet.respond(address, query(name)))
        assert response.rcode() == dns.rcode.NXDOMAIN
        assert response.flags & dns.flags.RA and not response.flags & dns.flags.AA
        assert response.answer == response.authority == response.additional == []
    internet.reset_faults()
    assert message(internet.respond(address, query("www.example.test"))).rcode() == 0


def test_aa_referral_sets_aa_on_referrals_only(internet: TestInternet) -> None:
    internet.server_at(TLD).fault = Fault.AA_REFERRAL
    referral = message(internet.respond(TLD, query("www.example.test")))
    assert referral.flags & dns.flags.AA
    assert referral.answer == []
    assert [(r.name.to_text(), r.rdtype) for r in referral.authority] == [
        ("example.test.", dns.rdatatype.NS)
    ]
    assert {r.name.to_text() for r in referral.additional} == {
        "ns1.example.test.",
        "ns2.example.test.",
    }
    # an answer of its own zone is unchanged
    own = message(internet.respond(TLD, query("ns1.nic.test")))
    assert own.flags & dns.flags.AA and lines(own.answer) == [
        "ns1.nic.test. 172800 IN A 127.53.1.1"
    ]


# --- referrals that go nowhere -------------------------------------------------------------------


def test_upward_referral_is_an_aa_referral_to_the_root(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.UPWARD_REFERRAL
    response = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert response.answer == []
    [ns] = response.authority
    assert ns.name == dns.name.root and ns.rdtype == dns.rdatatype.NS


def test_lame_stays_the_upward_referral_without_aa(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.LAME
    response = message(internet.respond(EXAMPLE, query("www.example.test")))
    assert not response.flags & dns.flags.AA
    assert [r.name for r in response.authority] == [dns.name.root]


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("www.example.test", SIDEWAYS_ZONE.to_text()),
        ("test", "elsewhere.invalid."),
        ("a.elsewhere.test", "elsewhere.invalid."),
    ],
)
def test_sideways_referral_points_at_an_unrelated_zone(
    internet: TestInternet, name: str, zone: str
) -> None:
    internet.server_at(EXAMPLE).fault = Fault.SIDEWAYS_REFERRAL
    response = message(internet.respond(EXAMPLE, query(name)))
    assert response.rcode() == dns.rcode.NOERROR
    assert not response.flags & dns.flags.AA
    assert response.answer == [] and response.additional == []
    [ns] = response.authority
    assert ns.rdtype == dns.rdatatype.NS and ns.name.to_text() == zone
    qname = dns.name.from_text(name)
    assert not qname.is_subdomain(ns.name) and not ns.name.is_subdomain(qname)


# --- DNAME ---------------------------------------------------------------------------------------


def test_tld_refers_to_the_new_zones_with_glue(internet: TestInternet) -> None:
    for name, glue in (
        ("www.dname.test", "127.53.10.1"),
        ("www.addr.test", "127.53.11.1"),
        ("www.onens.test", "127.53.12.1"),
    ):
        referral = message(internet.respond(TLD, query(name)))
        assert not referral.flags & dns.flags.AA
        [address] = referral.additional
        assert address[0].address == glue


def test_dname_to_another_zone_answers_dname_and_synthesised_cname(
    internet: TestInternet,
) -> None:
    response = message(internet.respond(DNAME, query("www.old.dname.test")))
    assert response.flags & dns.flags.AA
    assert response.rcode() == dns.rcode.NOERROR
    assert lines(response.answer) == [
        "old.dname.test. 3600 IN DNAME example.test.",
        "www.old.dname.test. 3600 IN CNAME www.example.test.",
    ]


def test_dname_inside_the_zone_is_chased(internet: TestInternet) -> None:
    response = message(internet.respond(DNAME, query("www.self.dname.test")))
    assert lines(response.answer) == [
        "self.dname.test. 3600 IN DNAME new.dname.test.",
        "www.self.dname.test. 3600 IN CNAME www.new.dname.test.",
        "www.new.dname.test. 3600 IN A 192.0.2.55",
    ]


def test_dname_owner_itself_is_an_ordinary_name(internet: TestInternet) -> None:
    own = message(internet.respond(DNAME, query("old.dname.test", "DNAME")))
    assert lines(own.answer) == ["old.dname.test. 3600 IN DNAME example.test."]
    nodata = message(internet.respond(DNAME, query("old.dname.test", "A")))
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    assert [r.rdtype for r in nodata.authority] == [dns.rdatatype.SOA]


def test_dname_overflowing_255_octets_is_yxdomain(internet: TestInternet) -> None:
    name = f"{'a' * 60}.{'b' * 60}.long.dname.test"
    response = message(internet.respond(DNAME, query(name)))
    assert response.rcode() == dns.rcode.YXDOMAIN
    assert [(r.name.to_text(), r.rdtype) for r in response.answer] == [
        ("long.dname.test.", dns.rdatatype.DNAME)
    ]


def test_dname_no_cname_leaves_the_synthesised_cname_out(internet: TestInternet) -> None:
    internet.server_at(DNAME).fault = Fault.DNAME_NO_CNAME
    other = message(internet.respond(DNAME, query("www.old.dname.test")))
    assert lines(other.answer) == ["old.dname.test. 3600 IN DNAME example.test."]
    inside = message(internet.respond(DNAME, query("www.self.dname.test")))
    assert lines(inside.answer) == [
        "self.dname.test. 3600 IN DNAME new.dname.test.",
        "www.new.dname.test. 3600 IN A 192.0.2.55",
    ]
    # an ordinary CNAME elsewhere is left alone
    internet.server_at(EXAMPLE).fault = Fault.DNAME_NO_CNAME
    alias = message(internet.respond(EXAMPLE, query("alias.example.test")))
    assert [r.rdtype for r in alias.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]


# --- rcodes and headers --------------------------------------------------------------------------


def test_cname_nxdomain_only_for_a_chain_leaving_the_zones(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.CNAME_NXDOMAIN
    out = message(internet.respond(EXAMPLE, query("chain.example.test")))
    assert out.rcode() == dns.rcode.NXDOMAIN
    assert out.flags & dns.flags.AA
    assert lines(out.answer) == ["chain.example.test. 3600 IN CNAME www.other.test."]
    assert [r.name.to_text() for r in out.authority] == ["example.test."]
    inside = message(internet.respond(EXAMPLE, query("alias.example.test")))
    assert inside.rcode() == dns.rcode.NOERROR and len(inside.answer) == 2
    asked_cname = message(internet.respond(EXAMPLE, query("chain.example.test", "CNAME")))
    assert asked_cname.rcode() == dns.rcode.NOERROR


def test_unparseable_tc_is_a_bare_header_over_udp_only(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.UNPARSEABLE_TC
    asked = query("www.example.test")
    wire = internet.respond(EXAMPLE, asked)
    assert isinstance(wire, bytes) and len(wire) == 12
    qid, flags, counts = header(wire)
    assert qid == asked.id
    assert flags & dns.flags.QR and flags & dns.flags.TC
    assert counts == (0, UNPARSEABLE_ANCOUNT, 0, 0)
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(wire)
    over_tcp = message(internet.respond(EXAMPLE, asked, tcp=True))
    assert lines(over_tcp.answer) == ["www.example.test. 300 IN A 192.0.2.1"]


def test_formerr_no_question_only_for_edns_queries(internet: TestInternet) -> None:
    internet.server_at(EXAMPLE).fault = Fault.FORMERR_NO_QUESTION
    asked = query("www.example.test")
    for tcp in (False, True):
        wire = internet.respond(EXAMPLE, asked, tcp=tcp)
        assert isinstance(wire, bytes) and len(wire) == 12
        qid, flags, counts = header(wire)
        assert qid == asked.id
        assert flags & dns.flags.QR and flags & 0xF == dns.rcode.FORMERR
        assert flags & dns.flags.RD  # copied from the query
        assert counts == (0, 0, 0, 0)
    plain = message(internet.respond(EXAMPLE, query("www.example.test", edns=False)))
    assert lines(plain.answer) == ["www.example.test. 300 IN A 192.0.2.1"]


# --- empty non-terminals (QNAME minimisation) ----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "rcode", "aa", "soa"),
    [
        (Fault.ENT_NXDOMAIN, dns.rcode.NXDOMAIN, True, True),
        (Fault.ENT_REFUSED, dns.rcode.REFUSED, False, False),
        (Fault.ENT_EMPTY, dns.rcode.NOERROR, False, False),
    ],
)
def test_ent_faults_break_only_empty_non_terminals(
    internet: TestInternet, fault: Fault, rcode: dns.rcode.Rcode, aa: bool, soa: bool
) -> None:
    internet.server_at(EXAMPLE).fault = fault
    for name in ("c.example.test", "b.c.example.test"):
        response = message(internet.respond(EXAMPLE, query(name)))
        assert response.rcode() == rcode
        assert bool(response.flags & dns.flags.AA) is aa
        assert response.answer == []
        assert bool(response.authority) is soa
    full = message(internet.respond(EXAMPLE, query("a.b.c.example.test")))
    assert lines(full.answer) == ["a.b.c.example.test. 3600 IN A 192.0.2.3"]
    nx = message(internet.respond(EXAMPLE, query("nope.example.test")))
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.flags & dns.flags.AA


# --- parent/child address difference, one-address zone, dropped datagrams -----------------------


def test_addr_child_zone_names_a_dead_address_for_its_server(internet: TestInternet) -> None:
    own = message(internet.respond(ADDR, query("ns1.addr.test")))
    assert own.flags & dns.flags.AA
    assert lines(own.answer) == ["ns1.addr.test. 3600 IN A 127.53.11.2"]
    www = message(internet.respond(ADDR, query("www.addr.test")))
    assert lines(www.answer) == ["www.addr.test. 3600 IN A 192.0.2.66"]
    with pytest.raises(KeyError):
        internet.respond(ADDR_DEAD, query("www.addr.test"))


def test_drop_next_drops_that_many_udp_queries_then_answers(internet: TestInternet) -> None:
    server = internet.server_at(ONENS)
    server.drop_next = 2
    assert internet.respond(ONENS, query("www.onens.test"), tcp=True) is not None  # TCP spared
    assert internet.respond(ONENS, query("www.onens.test")) is None
    assert internet.respond(ONENS, query("www.onens.test")) is None
    answered = message(internet.respond(ONENS, query("www.onens.test")))
    assert lines(answered.answer) == ["www.onens.test. 3600 IN A 192.0.2.67"]
    assert server.query_count == 4 and server.drop_next == 0
    server.drop_next = 1
    internet.reset_faults()
    assert server.drop_next == 0


# --- over real sockets ---------------------------------------------------------------------------


async def udp_raw(wire: bytes, address: str, timeout: float = 1.0) -> bytes | None:
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.connect((address, 53))
        await sock.send(wire)
        with trio.move_on_after(timeout):
            return await sock.recv(65535)
    return None


async def test_bare_headers_over_sockets(live_internet: TestInternet) -> None:
    server = live_internet.server_at(EXAMPLE)
    server.fault = Fault.UNPARSEABLE_TC
    asked = query("www.example.test")
    wire = await udp_raw(asked.to_wire(), EXAMPLE)
    assert wire is not None and len(wire) == 12
    assert header(wire)[0] == asked.id and header(wire)[1] & dns.flags.TC
    over_tcp = await dns.asyncquery.tcp(asked, EXAMPLE, timeout=1)
    assert lines(over_tcp.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    server.fault = Fault.FORMERR_NO_QUESTION
    wire = await udp_raw(asked.to_wire(), EXAMPLE)
    assert wire is not None and len(wire) == 12 and header(wire)[1] & 0xF == dns.rcode.FORMERR
    assert [q.tcp for q in server.queries] == [False, True, False]


async def test_flag_faults_over_sockets(live_internet: TestInternet) -> None:
    live_internet.set_fault_everywhere(Fault.INTERCEPT)
    intercepted = await dns.asyncquery.udp(query("www.example.test"), ROOT, timeout=1)
    assert intercepted.rcode() == dns.rcode.NXDOMAIN and intercepted.flags & dns.flags.RA
    live_internet.reset_faults()
    live_internet.server_at(EXAMPLE).fault = Fault.RECURSIVE
    recursive = await dns.asyncquery.udp(query("www.example.test"), EXAMPLE, timeout=1)
    assert recursive.flags & dns.flags.RA and not recursive.flags & dns.flags.AA
    assert lines(recursive.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    live_internet.server_at(DNAME).fault = Fault.DNAME_NO_CNAME
    dname = await dns.asyncquery.udp(query("www.old.dname.test"), DNAME, timeout=1)
    assert lines(dname.answer) == ["old.dname.test. 3600 IN DNAME example.test."]


async def test_drop_next_over_sockets(live_internet: TestInternet) -> None:
    server = live_internet.server_at(ONENS)
    server.drop_next = 1
    asked = query("www.onens.test")
    assert await udp_raw(asked.to_wire(), ONENS, timeout=SILENCE) is None
    reply = await udp_raw(asked.to_wire(), ONENS)
    assert reply is not None
    assert lines(dns.message.from_wire(reply).answer) == ["www.onens.test. 3600 IN A 192.0.2.67"]
    assert server.query_count == 2
