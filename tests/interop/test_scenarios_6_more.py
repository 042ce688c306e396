"""Scenarios 67-72: referrals and NS sets where they do not belong, and a few query kinds.

An upward referral that sets AA, a query at a DNAME's owner (RFC 6672 section 2.3), an NS query
for a name that is not a cut, AAAA NODATA under minimisation, an address for a non-NS name in a
referral's additional section, and an answer that carries the zone's own NS set without AA.
"""

from __future__ import annotations

import dns.flags
import dns.message

from tests.handbuilt import COM, rr, texts

from .scenario_common import EVIL, EX1, EX2, OK, WWW, asked, prefer_bad, qmin, standard
from .scenario_net import Auth, cache_mentions, make_reply


# 67: upward referral WITH AA from one server: lame, not NODATA
@qmin
def test_s67_upward_referral_with_aa_is_lame_not_nodata(qmin: bool) -> None:
    def up(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        return make_reply(query, aa=True, authority=[rr("com. 172800 NS a.gtld-servers.net.")])

    w = standard(qmin, ex1=up)
    prefer_bad(w, EX1, EX2)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert asked(w, EX1)
    assert not cache_mentions(w, "neg:www.example.com")


# 68: a query at the DNAME's owner is not redirected (RFC 6672 2.3)
@qmin
def test_s68_query_at_dname_owner_is_not_redirected(qmin: bool) -> None:
    w = standard(qmin, ["d.example.com. 300 DNAME example.net.", "d.example.com. 300 A 192.0.2.60"])
    a = w.resolve("d.example.com.")
    assert a.rcode == OK and texts(a) == ["d.example.com. 300 IN A 192.0.2.60"]
    b = w.resolve("d.example.com.", "MX")
    assert b.rcode == OK and b.answer == ()


# 69: NS query for a name that is not a zone cut: NODATA from the zone
@qmin
def test_s69_ns_query_off_a_cut_is_nodata_from_the_zone(qmin: bool) -> None:
    w = standard(qmin)
    a = w.resolve("www.example.com.", "NS")
    assert a.rcode == OK and a.answer == ()
    assert [r.name.to_text() for r in a.authority] == ["example.com."]


# 70: AAAA NODATA with minimisation costs a bounded number of queries, and A is not a NODATA
@qmin
def test_s70_aaaa_nodata_is_bounded_and_not_a_nodata_for_a(qmin: bool) -> None:
    w = standard(qmin)
    a = w.resolve("www.example.com.", "AAAA")
    assert a.rcode == OK and a.answer == ()
    assert w.last_queries <= 5
    b = w.resolve("www.example.com.")
    assert texts(b) == [WWW]


# 71: a referral whose additional section carries an address for a non-NS name in the child
@qmin
def test_s71_address_for_non_ns_name_in_referral_is_not_cached(qmin: bool) -> None:
    w = standard(qmin)
    tld = w.servers[COM]

    def poison(query: dns.message.Message) -> dns.message.Message | None:
        r = tld(query)
        assert r is not None
        if r.authority and not r.answer:
            r.additional.append(rr(f"www.example.com. 172800 A {EVIL}"))
        return r

    w.servers[COM] = poison
    a = w.resolve("www.example.com.")
    assert texts(a) == [WWW]
    assert not cache_mentions(w, EVIL)


# 72: a server that returns the answer AND a referral-like NS set for the child zone itself
# (NS == zone, AA=0, answer present): an answer
@qmin
def test_s72_answer_with_own_ns_in_authority_without_aa_is_an_answer(qmin: bool) -> None:
    def with_ns(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        r.flags &= ~dns.flags.AA
        if r.answer:
            r.authority = [
                rr("example.com. 3600 NS ns1.example.com."),
                rr("example.com. 3600 NS ns2.example.com."),
            ]
        return r

    w = standard(qmin, ex1=with_ns, ex2=with_ns)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert a.authority == ()
