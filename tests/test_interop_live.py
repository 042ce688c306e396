"""Interoperability end to end: misbehaving authorities met through the real daemon and sockets.

The scripted tests (test_interop_scripted.py) pin the exact cost of each case; these check that
the real front end and the real upstream transport give clients the same result: the rcode, the
answer, and for failures the Extended DNS Error (RFC 8914) in the response's OPT record.
"""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rcode
import pytest

from resolver.server.service import ResolverService
from resolver.testing import Fault, TestInternet
from tests.frontend_support import ask, query
from tests.helpers import texts

EXAMPLE_SERVERS = ("ns1.example.test.", "ns2.example.test.")
WWW = "www.example.test. 300 IN A 192.0.2.1"

#: EDE 22, No Reachable Authority.
NO_REACHABLE_AUTHORITY = 22


def ede_codes(response: dns.message.Message) -> list[int]:
    return [
        int(option.code) for option in response.options if isinstance(option, dns.edns.EDEOption)
    ]


def answer_lines(response: dns.message.Message) -> list[str]:
    return texts(tuple(response.answer))


@pytest.mark.parametrize(("name", "rdtype"), [("www.example.test.", "A"), ("nope.test.", "MX")])
async def test_an_interceptor_everywhere_gives_servfail_with_ede_22(
    resolver: ResolverService, live_internet: TestInternet, name: str, rdtype: str
) -> None:
    live_internet.set_fault_everywhere(Fault.INTERCEPT)
    response = await ask(query(name, rdtype, use_edns=0))
    assert response.rcode() == dns.rcode.SERVFAIL
    assert NO_REACHABLE_AUTHORITY in ede_codes(response)
    assert response.answer == [] and response.authority == []
    assert live_internet.total_queries() >= 1


async def test_recursive_servers_only_give_servfail_with_ede_22(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    for server in EXAMPLE_SERVERS:
        live_internet.servers[server].fault = Fault.RECURSIVE
    for name in ("www.example.test.", "nope.example.test."):
        response = await ask(query(name, use_edns=0))
        assert response.rcode() == dns.rcode.SERVFAIL, name
        assert NO_REACHABLE_AUTHORITY in ede_codes(response), name


async def test_answers_without_aa_through_the_daemon(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    for server in EXAMPLE_SERVERS:
        live_internet.servers[server].fault = Fault.NO_AA
    response = await ask(query("www.example.test.", use_edns=0))
    assert response.rcode() == dns.rcode.NOERROR
    assert answer_lines(response) == [WWW]
    before = live_internet.total_queries()
    again = await ask(query("www.example.test.", use_edns=0))
    assert [line.split()[-1] for line in answer_lines(again)] == ["192.0.2.1"]
    assert live_internet.total_queries() == before
    nxdomain = await ask(query("nope.example.test.", use_edns=0))
    assert nxdomain.rcode() == dns.rcode.NXDOMAIN


async def test_unparseable_truncation_is_retried_over_tcp(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    for server in EXAMPLE_SERVERS:
        live_internet.servers[server].fault = Fault.UNPARSEABLE_TC
    response = await ask(query("www.example.test.", use_edns=0))
    assert response.rcode() == dns.rcode.NOERROR
    assert answer_lines(response) == [WWW]
    sent = [q for name in EXAMPLE_SERVERS for q in live_internet.servers[name].queries]
    assert any(q.tcp for q in sent)


async def test_formerr_without_question_is_retried_without_edns(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    for server in EXAMPLE_SERVERS:
        live_internet.servers[server].fault = Fault.FORMERR_NO_QUESTION
    response = await ask(query("www.example.test.", use_edns=0))
    assert response.rcode() == dns.rcode.NOERROR
    assert answer_lines(response) == [WWW]
    sent = [q for name in EXAMPLE_SERVERS for q in live_internet.servers[name].queries]
    assert any(not q.edns for q in sent)


async def test_a_single_lost_datagram_is_retransmitted(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    only = live_internet.servers["ns1.onens.test."]
    only.drop_next = 1
    response = await ask(query("www.onens.test.", use_edns=0))
    assert response.rcode() == dns.rcode.NOERROR
    assert answer_lines(response) == ["www.onens.test. 3600 IN A 192.0.2.67"]
    assert only.query_count == 2


@pytest.mark.parametrize("fault", [Fault.NONE, Fault.DNAME_NO_CNAME])
async def test_dname_through_the_daemon(
    resolver: ResolverService, live_internet: TestInternet, fault: Fault
) -> None:
    live_internet.servers["ns1.dname.test."].fault = fault
    response = await ask(query("www.old.dname.test.", use_edns=0))
    assert response.rcode() == dns.rcode.NOERROR
    assert answer_lines(response) == [
        "old.dname.test. 3600 IN DNAME example.test.",
        "www.old.dname.test. 3600 IN CNAME www.example.test.",
        WWW,
    ]


async def test_cname_then_nxdomain_from_a_broken_server(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    for server in EXAMPLE_SERVERS:
        live_internet.servers[server].fault = Fault.CNAME_NXDOMAIN
    response = await ask(query("chain.example.test.", use_edns=0))
    assert response.rcode() == dns.rcode.NOERROR
    assert answer_lines(response) == [
        "chain.example.test. 3600 IN CNAME www.other.test.",
        "www.other.test. 120 IN A 198.51.100.1",
    ]
