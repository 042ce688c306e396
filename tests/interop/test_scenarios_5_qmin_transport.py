"""Scenarios 57-66: QNAME minimisation against broken servers, and transport failures.

Servers that break minimisation (NXDOMAIN for empty non-terminals, an RFC 8020 violation;
NOTIMP, FORMERR, REFUSED or SERVFAIL to a minimised type-A query), the query budget and type
privacy for a deep name (RFC 9156), truncation and TCP that fails or times out, lost datagrams,
and a server that never answers.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from resolver.core.actions import NetworkError, Outcome, SendQuery, Timeout
from tests.handbuilt import COM, ROOT, question, texts

from .scenario_common import (
    EX1,
    EX2,
    NX,
    OK,
    SF,
    WWW,
    Tamper,
    asked,
    lose_first,
    prefer_bad,
    qmin,
    standard,
)
from .scenario_net import Auth, make_reply

ABC = "a.b.c.example.com. 300 IN A 192.0.2.3"


def deny_ents(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """NXDOMAIN for empty non-terminals (an RFC 8020 violation: the name has children)."""
    r = honest(query)
    if (
        r.rcode() == OK
        and not r.answer
        and question(query)[0].to_text().lower()
        in ("b.c.example.com.", "c.example.com.", "_tcp.example.com.")
    ):
        r.set_rcode(NX)
    return r


def always_tc(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """An empty reply with TC set, whatever the question (and over TCP too)."""
    r = make_reply(query)
    r.flags |= dns.flags.TC
    return r


# 57: NXDOMAIN for empty non-terminals while minimising
@qmin
def test_s57_nxdomain_for_empty_non_terminal_does_not_stop_minimisation(qmin: bool) -> None:
    w = standard(qmin, ex1=deny_ents, ex2=deny_ents)
    a = w.resolve("a.b.c.example.com.")
    assert a.rcode == OK and texts(a) == [ABC]
    assert w.last_queries <= 8
    b = w.resolve("_sip._tcp.example.com.", "SRV")
    assert b.rcode == OK and len(b.answer) == 1


def choke_on_a(rcode: dns.rcode.Rcode) -> Tamper:
    """Answers rcode to type-A queries for names that only hold other types (old appliances)."""

    def server(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        if question(query)[1] == dns.rdatatype.A:
            r = honest(query)
            if not r.answer and r.rcode() in (OK, NX):
                return make_reply(query, rcode, aa=False)
        return honest(query)

    return server


# 58-60: NOTIMP / FORMERR / REFUSED / SERVFAIL to minimised type-A queries
@pytest.mark.parametrize(
    "rcode",
    [dns.rcode.NOTIMP, dns.rcode.FORMERR, dns.rcode.REFUSED, dns.rcode.SERVFAIL],
    ids=["notimp", "formerr", "refused", "servfail"],
)
@qmin
def test_s58_server_choking_on_type_a_for_names_with_other_types_still_answers(
    rcode: dns.rcode.Rcode, qmin: bool
) -> None:
    w = standard(qmin, ex1=choke_on_a(rcode), ex2=choke_on_a(rcode))
    a = w.resolve("_sip._tcp.example.com.", "SRV")
    assert a.rcode == OK and [dns.rdatatype.to_text(r.rdtype) for r in a.answer] == ["SRV"]
    b = w.resolve("txt.example.com.", "TXT")
    assert b.rcode == OK and texts(b) == ['txt.example.com. 300 IN TXT "hello"']
    c = w.resolve("example.com.", "MX")
    assert c.rcode == OK and len(c.answer) == 1
    assert w.last_queries <= 10


# 61: minimised queries for a deep name: within MAX_MINIMISE_COUNT, no type leak above the zone
def test_s61_deep_name_minimisation_stays_in_budget_without_type_leak() -> None:
    w = standard(True, ["x.1.2.3.4.5.6.7.8.9.10.11.12.example.com. 300 A 192.0.2.44"])
    a = w.resolve("x.1.2.3.4.5.6.7.8.9.10.11.12.example.com.", "TXT")
    assert a.rcode == OK and a.answer == ()
    assert w.last_queries <= 14
    above = [e for e in w.log if e[0] in (ROOT, COM)]
    assert all(e[2] in ("A", "NS") for e in above), above


# 62: a truncated UDP reply is retried over TCP
@qmin
def test_s62_truncated_udp_reply_is_retried_over_tcp(qmin: bool) -> None:
    big = "big.example.com. 300 TXT " + " ".join(['"' + "x" * 200 + '"'] * 10)
    w = standard(qmin, [big])
    a = w.resolve("big.example.com.", "TXT")
    assert a.rcode == OK and len(a.answer[0]) == 1
    assert any(e[3] for e in w.log)


# 63: one server truncates and refuses TCP; the other answers over UDP
@qmin
def test_s63_tcp_refused_by_one_server_falls_back_to_the_other(qmin: bool) -> None:
    w = standard(qmin, ex1=always_tc)
    prefer_bad(w, EX1, EX2)

    def refuse_tcp(action: SendQuery) -> Outcome | None:
        if action.tcp and action.server.address == EX1:
            return NetworkError("ECONNREFUSED")
        return None

    w.override = refuse_tcp
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert asked(w, EX1)


# 64: TCP times out on the only server after TC: SERVFAIL, bounded
@qmin
def test_s64_tc_then_tcp_timeout_on_every_server_is_a_bounded_servfail(qmin: bool) -> None:
    w = standard(qmin, ex1=always_tc, ex2=always_tc)

    def tcp_times_out(action: SendQuery) -> Outcome | None:
        return Timeout() if action.tcp else None

    w.override = tcp_times_out
    a = w.resolve("www.example.com.")
    assert a.rcode == SF
    assert w.last_queries <= 16


# 65: the first three queries to the zone's servers are lost
@qmin
def test_s65_first_three_datagrams_to_the_zone_lost_still_resolves(qmin: bool) -> None:
    w = standard(qmin)
    w.override = lose_first(3, EX1, EX2)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert w.last_queries <= 10


# 66: one server always silent, the other fine: answers, and the silent one stops being asked
# first
@qmin
def test_s66_dead_server_in_ns_set_stops_being_asked(qmin: bool) -> None:
    w = standard(qmin, ex1=lambda query, honest: None)
    for i in range(4):
        a = w.resolve(f"h{i}.example.com.")
        assert a.rcode == NX
    assert len(asked(w, EX1)) <= 3
