"""Scenarios 1-14: answers without AA, lame servers of every kind, recursive-lame servers.

A lame server (REFUSED, SERVFAIL, NOTIMP, an upward, self or sideways referral, an empty NOERROR
without AA) next to a good one must cost a few queries and leave nothing in the cache; when every
server is lame the answer is SERVFAIL, never a cached NXDOMAIN. A recursive resolver at a
server's address (RA set, AA clear) is lame too, whatever it answers. A TLD referral that sets AA
is still a referral.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from tests.handbuilt import COM, name, question, rr, texts

from .scenario_common import (
    EVIL,
    EX1,
    EX2,
    NX,
    OK,
    ORGS,
    SF,
    WWW,
    Tamper,
    asked,
    prefer_bad,
    qmin,
    standard,
)
from .scenario_net import Auth, cache_mentions, make_reply


def no_aa(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    r = honest(query)
    r.flags &= ~dns.flags.AA
    return r


# 1
@qmin
def test_s01_positive_answer_without_aa_is_accepted_and_cached(qmin: bool) -> None:
    w = standard(qmin, ex1=no_aa, ex2=no_aa)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert w.last_queries <= 5
    assert w.resolve("www.example.com.").rcode == OK and w.last_queries == 0


# 2
@qmin
def test_s02_nxdomain_and_nodata_without_aa_but_with_zone_soa_are_accepted(qmin: bool) -> None:
    w = standard(qmin, ex1=no_aa, ex2=no_aa)
    a = w.resolve("nope.example.com.")
    assert a.rcode == NX and a.answer == ()
    assert [r.name.to_text() for r in a.authority] == ["example.com."]
    b = w.resolve("www.example.com.", "MX")
    assert b.rcode == OK and b.answer == () and len(b.authority) == 1
    assert w.last_queries <= 2


def lame_rcode(rcode: dns.rcode.Rcode) -> Tamper:
    """A server that answers every query with `rcode` and no AA."""
    return lambda query, honest: make_reply(query, rcode, aa=False)


def upward(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """An upward referral, to the TLD."""
    return make_reply(
        query,
        aa=False,
        authority=[rr("com. 172800 NS a.gtld-servers.net.")],
        additional=[rr(f"a.gtld-servers.net. 172800 A {COM}")],
    )


def to_root(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """An upward referral, to the root."""
    return make_reply(query, aa=False, authority=[rr(". 518400 NS a.root-servers.net.")])


def to_self(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """A referral to the zone the server should be authoritative for."""
    return make_reply(
        query,
        aa=False,
        authority=[rr("example.com. 3600 NS ns1.example.com.")],
        additional=[rr(f"ns1.example.com. 3600 A {EX1}")],
    )


def sideways(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """A referral to an unrelated zone."""
    return make_reply(
        query,
        aa=False,
        authority=[rr("example.org. 3600 NS ns.example.org.")],
        additional=[rr(f"ns.example.org. 3600 A {ORGS}")],
    )


def empty_noerror(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """NOERROR with nothing in any section and no AA."""
    return make_reply(query, aa=False)


LAMES: dict[str, Tamper] = {
    "refused": lame_rcode(dns.rcode.REFUSED),
    "servfail": lame_rcode(dns.rcode.SERVFAIL),
    "notimp": lame_rcode(dns.rcode.NOTIMP),
    "upward_tld": upward,
    "upward_root": to_root,
    "referral_to_self": to_self,
    "sideways": sideways,
    "empty_noerror_no_aa": empty_noerror,
}


# 3-10: one lame server of two, the lame one asked first
@pytest.mark.parametrize("kind", list(LAMES))
@qmin
def test_s03_one_lame_server_of_two_is_skipped_and_not_cached(kind: str, qmin: bool) -> None:
    w = standard(qmin, ex1=LAMES[kind])
    prefer_bad(w, EX1, EX2)
    for qname, rdtype, rcode, data in (
        ("www.example.com.", "A", OK, [WWW]),
        ("nope.example.com.", "A", NX, []),
        ("www.example.com.", "MX", OK, []),
        ("a.b.c.example.com.", "A", OK, ["a.b.c.example.com. 300 IN A 192.0.2.3"]),
    ):
        a = w.resolve(qname, rdtype)
        assert (a.rcode, texts(a)) == (rcode, data), (qname, rdtype)
        assert w.last_queries <= 8
    assert asked(w, EX1), "the lame server was never asked"
    # nothing the lame server said reached the cache as a NODATA/NXDOMAIN/referral
    assert not cache_mentions(w, "example.org. 3600 IN NS") or kind != "sideways"
    assert w.cache.get_rrset(name("example.org."), dns.rdatatype.NS) is None or kind != "sideways"


# 11: all servers lame -> SERVFAIL, bounded
@pytest.mark.parametrize("kind", list(LAMES))
@qmin
def test_s11_all_servers_lame_is_a_bounded_servfail(kind: str, qmin: bool) -> None:
    w = standard(qmin, ex1=LAMES[kind], ex2=LAMES[kind])
    a = w.resolve("www.example.com.")
    assert a.rcode == SF and a.answer == ()
    assert w.last_queries <= 12
    assert not cache_mentions(w, "neg:www.example.com")


def recursive(answer_kind: str) -> Tamper:
    """A recursive resolver at the server's address (RA set, AA clear) giving `answer_kind`."""

    def server(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        owner, rdtype = question(query)
        qname = owner.to_text().lower()
        if answer_kind == "positive":
            if rdtype == dns.rdatatype.A:
                return make_reply(query, aa=False, ra=True, answer=[rr(f"{qname} 300 A {EVIL}")])
            return make_reply(query, aa=False, ra=True)
        if answer_kind == "nxdomain":
            return make_reply(query, dns.rcode.NXDOMAIN, aa=False, ra=True)
        if answer_kind == "nxdomain_soa":
            return make_reply(
                query,
                dns.rcode.NXDOMAIN,
                aa=False,
                ra=True,
                authority=[rr("example.com. 300 SOA ns. h. 1 1 1 1 300")],
            )
        return make_reply(query, aa=False, ra=True)  # nodata, no soa

    return server


# 12: a recursive-lame server next to a good one
@pytest.mark.parametrize("kind", ["positive", "nxdomain", "nxdomain_soa", "nodata"])
@qmin
def test_s12_recursive_lame_next_to_good_server_is_skipped_and_not_cached(
    kind: str, qmin: bool
) -> None:
    w = standard(qmin, ex1=recursive(kind))
    prefer_bad(w, EX1, EX2)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    b = w.resolve("mail.example.com.")
    assert b.rcode == OK and texts(b) == ["mail.example.com. 300 IN A 192.0.2.2"]
    assert asked(w, EX1)
    assert not cache_mentions(w, EVIL)
    assert not cache_mentions(w, "neg:www.example.com") and not cache_mentions(w, "neg:mail")


# 13: only recursive-lame servers -> SERVFAIL, not NXDOMAIN
@pytest.mark.parametrize("kind", ["nxdomain", "nxdomain_soa", "nodata"])
@qmin
def test_s13_only_recursive_lame_servers_is_servfail_not_nxdomain(kind: str, qmin: bool) -> None:
    w = standard(qmin, ex1=recursive(kind), ex2=recursive(kind))
    a = w.resolve("www.example.com.")
    assert a.rcode == SF
    assert w.last_queries <= 12


# 14: referral from the TLD carries AA=1: still a referral
@qmin
def test_s14_referral_with_aa_is_still_a_referral(qmin: bool) -> None:
    w = standard(qmin)
    tld = w.servers[COM]

    def aa_tld(query: dns.message.Message) -> dns.message.Message | None:
        r = tld(query)
        assert r is not None
        r.flags |= dns.flags.AA
        return r

    w.servers[COM] = aa_tld
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    b = w.resolve("mail.example.com.")
    assert texts(b) == ["mail.example.com. 300 IN A 192.0.2.2"] and w.last_queries == 1
    c = w.resolve("nope.example.com.")
    assert c.rcode == NX and w.last_queries == 1
