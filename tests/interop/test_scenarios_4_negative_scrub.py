"""Scenarios 45-56: scrubbing replies: negative answers, stray records, odd questions, TTLs.

NXDOMAIN and NODATA carrying the parent's or an unrelated zone's SOA, with and without AA, and
NODATA without an SOA; out-of-bailiwick and unrelated records in a positive answer; a question
echoed in another case, or a reply to another question; TTL 0, huge TTLs and the negative TTL
(RFC 2308 section 5).
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from tests.handbuilt import name, question, rr, texts

from .scenario_common import (
    EVIL,
    EX1,
    EX2,
    NX,
    OK,
    WWW,
    Tamper,
    asked,
    prefer_bad,
    qmin,
    standard,
)
from .scenario_net import Auth, auth_texts, cache_lines, cache_mentions, make_reply

#: Not `tests.handbuilt.COM_SOA`: this one names a.gtld-servers.net. as the primary.
COM_SOA = "com. 900 SOA a.gtld-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400"
ORG_SOA = "example.org. 900 SOA ns.example.org. h.example.org. 1 1 1 1 900"


def wrong_soa(soa_text: str, aa: bool = True) -> Tamper:
    """Replace the SOA of every NXDOMAIN/NODATA with `soa_text` (and clear AA unless `aa`)."""

    def server(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        if (
            r.rcode() in (NX, OK)
            and not r.answer
            and any(s.rdtype == dns.rdatatype.SOA for s in r.authority)
        ):
            r.authority = [rr(soa_text)]
            if not aa:
                r.flags &= ~dns.flags.AA
        return r

    return server


# 45: NXDOMAIN, AA, with the parent's SOA: NXDOMAIN; the parent's SOA neither returned nor cached
@pytest.mark.parametrize("soa_text", [COM_SOA, ORG_SOA], ids=["parent_soa", "unrelated_soa"])
@qmin
def test_s45_nxdomain_with_aa_and_wrong_soa_drops_the_soa(qmin: bool, soa_text: str) -> None:
    w = standard(qmin, ex1=wrong_soa(soa_text), ex2=wrong_soa(soa_text))
    a = w.resolve("nope.example.com.")
    assert a.rcode == NX and a.answer == ()
    assert all(r.name.is_subdomain(name("example.com.")) for r in a.authority), auth_texts(a)
    assert not [
        line
        for line in cache_lines(w)
        if "SOA" in line and ("com. 900" in line or "example.org." in line)
    ]


# 46: NODATA, AA, with a wrong SOA
@pytest.mark.parametrize("soa_text", [COM_SOA, ORG_SOA], ids=["parent_soa", "unrelated_soa"])
@qmin
def test_s46_nodata_with_aa_and_wrong_soa_drops_the_soa(qmin: bool, soa_text: str) -> None:
    w = standard(qmin, ex1=wrong_soa(soa_text), ex2=wrong_soa(soa_text))
    a = w.resolve("www.example.com.", "MX")
    assert a.rcode == OK and a.answer == ()
    assert all(r.name.is_subdomain(name("example.com.")) for r in a.authority), auth_texts(a)


# 47: NXDOMAIN without AA and with the parent's SOA from one server: not believed; the other
# server is
@qmin
def test_s47_nxdomain_without_aa_with_wrong_soa_next_to_good_is_not_believed(
    qmin: bool,
) -> None:
    def bad(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        return make_reply(query, NX, aa=False, authority=[rr(COM_SOA)])

    w = standard(qmin, ex1=bad)
    prefer_bad(w, EX1, EX2)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert asked(w, EX1)


# 48: NODATA with AA but no SOA: NODATA (nothing to cache beyond that)
@qmin
def test_s48_nodata_with_aa_without_soa_is_nodata(qmin: bool) -> None:
    def nosoa(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        if not r.answer and r.rcode() == OK:
            r.authority = []
        return r

    w = standard(qmin, ex1=nosoa, ex2=nosoa)
    a = w.resolve("www.example.com.", "MX")
    assert a.rcode == OK and a.answer == ()
    assert w.last_queries <= 5


# 49: out-of-bailiwick extras in every section of a positive answer: never returned or cached
@qmin
def test_s49_out_of_bailiwick_extras_are_neither_returned_nor_cached(qmin: bool) -> None:
    def extras(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        if r.answer:
            r.answer.append(rr(f"www.example.net. 300 A {EVIL}"))
            r.authority += [
                rr("example.net. 3600 NS ns.evil.org."),
                rr("com. 3600 NS ns.evil.org."),
            ]
            r.additional += [
                rr("ns.evil.org. 3600 A 6.6.6.7"),
                rr("www.example.org. 300 A 6.6.6.8"),
            ]
        return r

    w = standard(qmin, ex1=extras, ex2=extras)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert a.authority == ()
    assert not cache_mentions(w, "6.6.6.") and not cache_mentions(w, "evil")
    b = w.resolve("www.example.net.")
    assert texts(b) == ["www.example.net. 300 IN A 198.51.100.1"]


# 50: in-bailiwick extras in the answer that do not belong to the chain (a different name):
# not returned to the client
@qmin
def test_s50_unrelated_in_zone_answer_records_not_returned(qmin: bool) -> None:
    def extra(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        if r.answer:
            r.answer.append(rr("other.example.com. 300 A 192.0.2.66"))
        return r

    w = standard(qmin, ex1=extra, ex2=extra)
    a = w.resolve("www.example.com.")
    assert texts(a) == [WWW]


# 51: the question section comes back in different case: accepted (0x20 off)
@qmin
def test_s51_question_echoed_in_another_case_is_accepted(qmin: bool) -> None:
    def upper(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        q = r.question[0]
        r.question[0] = dns.rrset.RRset(name(q.name.to_text().upper()), q.rdclass, q.rdtype)
        return r

    w = standard(qmin, ex1=upper, ex2=upper)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and [t.lower() for t in texts(a)] == [WWW.lower()]


# 52: a server answers a different question: ignored, the other server's answer is used
@qmin
def test_s52_reply_to_a_different_question_is_ignored(qmin: bool) -> None:
    def other(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        q = dns.message.make_query(
            "www.example.com."
            if question(query)[0].to_text().lower() != "www.example.com."
            else "mail.example.com.",
            "A",
        )
        q.id = query.id
        r = make_reply(q, answer=[rr(f"{q.question[0].name} 300 A {EVIL}")])
        return r

    w = standard(qmin, ex1=other)
    prefer_bad(w, EX1, EX2)
    a = w.resolve("mail.example.com.")
    assert a.rcode == OK and texts(a) == ["mail.example.com. 300 IN A 192.0.2.2"]
    assert asked(w, EX1)
    assert not cache_mentions(w, EVIL)


# 53: TTL 0: returned with TTL 0, never answered from the cache
@qmin
def test_s53_ttl_zero_is_returned_but_never_answered_from_cache(qmin: bool) -> None:
    w = standard(qmin, ["zero.example.com. 0 A 192.0.2.9"])
    a = w.resolve("zero.example.com.")
    assert texts(a) == ["zero.example.com. 0 IN A 192.0.2.9"]
    w.clock.now += 1
    b = w.resolve("zero.example.com.")
    assert texts(b) == ["zero.example.com. 0 IN A 192.0.2.9"] and w.last_queries >= 1


# 54: a huge TTL is capped (cache-max-ttl 86400 in Unbound); a TTL with the top bit set is 0
# (RFC 2181 section 8)
@qmin
def test_s54_huge_ttl_is_capped_and_top_bit_ttl_is_zero(qmin: bool) -> None:
    w = standard(
        qmin,
        ["big.example.com. 2147483647 A 192.0.2.10", "top.example.com. 4294967295 A 192.0.2.11"],
    )
    a = w.resolve("big.example.com.")
    assert a.rcode == OK and a.answer[0].ttl <= 86400
    b = w.resolve("top.example.com.")
    assert b.rcode == OK and b.answer[0].ttl == 0


# 55: a positive answer without AA that carries an SOA beside it (some load balancers): an answer
@qmin
def test_s55_answer_without_aa_with_soa_is_an_answer(qmin: bool) -> None:
    def lb(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        r.flags &= ~dns.flags.AA
        if r.answer:
            r.authority = [rr("example.com. 300 SOA ns. h. 1 1 1 1 300")]
        return r

    w = standard(qmin, ex1=lb, ex2=lb)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert a.authority == ()


# 56: a negative answer's TTL is min(SOA TTL, SOA minimum) (RFC 2308 5)
@qmin
def test_s56_negative_ttl_is_min_of_soa_ttl_and_minimum(qmin: bool) -> None:
    def soa_ttls(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        if not r.answer and r.authority and r.authority[0].rdtype == dns.rdatatype.SOA:
            r.authority = [rr("example.com. 3600 SOA ns. h. 1 1 1 1 60")]
        return r

    w = standard(qmin, ex1=soa_ttls, ex2=soa_ttls)
    a = w.resolve("nope.example.com.")
    assert a.rcode == NX and a.authority[0].ttl == 60
    w.clock.now += 61
    w.resolve("nope.example.com.")
    assert w.last_queries >= 1
