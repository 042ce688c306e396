"""Scenarios 15-30: delegations as deployed: glue, server addresses and where queries go.

The parent's glue against the child's own addresses for its servers, glueless delegations in and
out of zone and their cycles, an NS name that is a CNAME, parent and child on one address, queries
at the apex (NS, SOA, MX) and for DS at a cut, a TLD that puts the NS set in the answer section,
lost datagrams to a zone's servers, and out-of-bailiwick glue.
"""

from __future__ import annotations

import dns.message
import dns.rdatatype

from tests.handbuilt import COM, texts

from .scenario_common import (
    EVIL,
    EX1,
    EX2,
    NETS,
    NX,
    OK,
    ORGS,
    SF,
    SUB,
    SUB_DELEGATION,
    WWW,
    asked,
    lose_first,
    prefer_bad,
    qmin,
    standard,
    sub_server,
    tld_records,
)
from .scenario_net import Auth, Zone, cache_mentions, delegate, internet

DEAD = "192.0.2.99"


# 15: the child publishes a different, dead address for its only server; the parent's glue works
@qmin
def test_s15_dead_child_address_does_not_hide_live_parent_glue(qmin: bool) -> None:
    ex_zone = [
        "example.com. 3600 NS ns1.example.com.",
        f"ns1.example.com. 3600 A {DEAD}",
        "www.example.com. 300 A 192.0.2.1",
        "mail.example.com. 300 A 192.0.2.2",
    ]
    exa = Auth(Zone("example.com.", ex_zone))
    w, _ = internet(
        {"com.": delegate("example.com.", ("ns1.example.com.", EX1))}, {EX1: exa}, qmin=qmin
    )
    # the child's own record for its server is learnt (answer rank) ...
    a = w.resolve("ns1.example.com.")
    assert texts(a) == [f"ns1.example.com. 3600 IN A {DEAD}"]
    # ... and must not make the zone unreachable
    b = w.resolve("www.example.com.")
    assert b.rcode == OK and texts(b) == [WWW]
    w.clock.now += 400  # www expired, NS and addresses still cached
    c = w.resolve("mail.example.com.")
    assert c.rcode == OK and texts(c) == ["mail.example.com. 300 IN A 192.0.2.2"]
    assert w.last_queries <= 8


# 16: the parent's glue is dead, a second server (out of zone, glue-free) works
@qmin
def test_s16_dead_parent_glue_falls_back_to_out_of_zone_ns(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns1.example.com.", DEAD), ("ns.example.net.", None)))
    w = standard(
        qmin,
        tlds=tlds,
        servers={
            NETS: Auth(
                Zone(
                    "example.net.",
                    [
                        "example.net. 3600 NS ns.example.net.",
                        f"ns.example.net. 3600 A {NETS}",
                    ],
                ),
                Zone(
                    "example.com.",
                    [
                        "example.com. 3600 NS ns1.example.com.",
                        "example.com. 3600 NS ns.example.net.",
                        f"ns1.example.com. 3600 A {DEAD}",
                        "www.example.com. 300 A 192.0.2.1",
                    ],
                ),
            )
        },
    )
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert w.last_queries <= 10


def example_com_hosted_in_example_net() -> Auth:
    """ns.example.net.'s server: example.net. itself, and example.com. whose NS it is."""
    return Auth(
        Zone(
            "example.net.",
            ["example.net. 3600 NS ns.example.net.", f"ns.example.net. 3600 A {NETS}"],
        ),
        Zone(
            "example.com.",
            ["example.com. 3600 NS ns.example.net.", "www.example.com. 300 A 192.0.2.1"],
        ),
    )


# 17: glueless, out of zone: example.com's servers are named in example.net
@qmin
def test_s17_glueless_out_of_zone_ns_is_resolved_first(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns.example.net.", None),))
    w = standard(qmin, tlds=tlds, servers={NETS: example_com_hosted_in_example_net()})
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert w.last_queries <= 9
    assert w.resolve("nope.example.com.").rcode == NX and w.last_queries == 1


# 18: glueless, in zone: the parent omits the glue it must give -> SERVFAIL, bounded
@qmin
def test_s18_glueless_in_zone_ns_is_a_bounded_servfail(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns1.example.com.", None),))
    w = standard(qmin, tlds=tlds)
    a = w.resolve("www.example.com.")
    assert a.rcode == SF
    assert w.last_queries <= 20


# 19: glueless cycle: example.com served by ns.example.net, example.net by ns.example.com
@qmin
def test_s19_glueless_cycle_is_a_bounded_servfail(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns.example.net.", None),))
    tlds["net."] = delegate("example.net.", ("ns.example.com.", None))
    w = standard(qmin, tlds=tlds)
    a = w.resolve("www.example.com.")
    assert a.rcode == SF
    assert w.last_queries <= 20
    assert len(w.log) <= 30


# 20: one cyclic glueless NS plus one good one
@qmin
def test_s20_glueless_cycle_with_one_good_server_resolves(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns.example.net.", None), ("ns.example.org.", None)))
    tlds["net."] = delegate("example.net.", ("ns.example.com.", None))
    org = Auth(
        Zone(
            "example.org.",
            ["example.org. 3600 NS ns.example.org.", f"ns.example.org. 3600 A {ORGS}"],
        ),
        Zone(
            "example.com.",
            ["example.com. 3600 NS ns.example.org.", "www.example.com. 300 A 192.0.2.1"],
        ),
    )
    w = standard(qmin, tlds=tlds, servers={ORGS: org})
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert w.last_queries <= 16


# 21: the NS name is a CNAME (RFC 2181 10.3 forbids it; deployed resolvers follow it)
@qmin
def test_s21_ns_name_that_is_a_cname_is_followed(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns.example.net.", None),))
    net = Auth(
        Zone(
            "example.net.",
            [
                "example.net. 3600 NS nsx.example.net.",
                f"nsx.example.net. 3600 A {NETS}",
                "ns.example.net. 3600 CNAME real.example.net.",
                f"real.example.net. 3600 A {EX1}",
            ],
        )
    )
    tlds["net."] = delegate("example.net.", ("nsx.example.net.", NETS))
    w = standard(qmin, tlds=tlds, servers={NETS: net})
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert w.last_queries <= 12


# 22: parent and child on the same address (the TLD server also serves example.com)
@qmin
def test_s22_parent_and_child_on_one_address_answer_from_the_right_side(qmin: bool) -> None:
    both = Auth(
        Zone("com.", delegate("example.com.", ("ns1.example.com.", COM))),
        Zone(
            "example.com.",
            [
                "example.com. 3600 NS ns1.example.com.",
                f"ns1.example.com. 3600 A {COM}",
                "www.example.com. 300 A 192.0.2.1",
                "example.com. 3600 MX 10 mail.example.com.",
                "a.b.c.example.com. 300 A 192.0.2.3",
            ],
        ),
    )
    w, _ = internet({}, {COM: both}, qmin=qmin)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    b = w.resolve("example.com.", "MX")
    assert texts(b) == ["example.com. 3600 IN MX 10 mail.example.com."]
    c = w.resolve("nope.example.com.")
    assert c.rcode == NX and [r.name.to_text() for r in c.authority] == ["example.com."]
    d = w.resolve("a.b.c.example.com.")
    assert texts(d) == ["a.b.c.example.com. 300 IN A 192.0.2.3"]
    e = w.resolve("example.com.", "DS")
    assert e.rcode == OK and e.answer == ()
    assert [r.name.to_text() for r in e.authority] == ["com."]  # DS NODATA comes from the parent
    assert len(w.log) <= 14


# 23-25: apex queries
@qmin
def test_s23_apex_ns_soa_mx_without_type_leak_to_tld(qmin: bool) -> None:
    w = standard(qmin)
    ns = w.resolve("example.com.", "NS")
    assert ns.rcode == OK
    assert sorted(texts(ns)) == [
        "example.com. 3600 IN NS ns1.example.com.",
        "example.com. 3600 IN NS ns2.example.com.",
    ]
    soa = w.resolve("example.com.", "SOA")
    assert soa.rcode == OK and [r.rdtype for r in soa.answer] == [dns.rdatatype.SOA]
    mx = w.resolve("example.com.", "MX")
    assert texts(mx) == ["example.com. 3600 IN MX 10 mail.example.com."]
    # the TLD never sees the client's type (RFC 9156 section 3; docs/configuration.md)
    if qmin:
        tld = [e for e in w.log if e[0] == COM]
        assert all(e[2] in ("A", "NS") for e in tld), tld


# 24: child's NS set differs from the parent's: an NS query returns the child's (authoritative)
@qmin
def test_s24_apex_ns_query_returns_the_childs_ns_set(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns1.example.com.", EX1),))
    w = standard(qmin, tlds=tlds)
    ns = w.resolve("example.com.", "NS")
    assert sorted(texts(ns)) == [
        "example.com. 3600 IN NS ns1.example.com.",
        "example.com. 3600 IN NS ns2.example.com.",
    ]


# 25: DS at a zone cut is answered by the parent
@qmin
def test_s25_ds_at_zone_cut_is_answered_by_the_parent(qmin: bool) -> None:
    tlds = tld_records(extra_com=["example.com. 86400 DS 12345 8 2 " + "ab" * 32])
    w = standard(qmin, tlds=tlds)
    w.resolve("www.example.com.")
    ds = w.resolve("example.com.", "DS")
    assert ds.rcode == OK
    assert [r.rdtype for r in ds.answer] == [dns.rdatatype.DS]
    assert all(e[0] != EX1 and e[0] != EX2 for e in w.log[-w.last_queries :] if e[2] == "DS")
    # no DS: NODATA with the parent's SOA
    nods = w.resolve("example.net.", "DS")
    assert (
        nods.rcode == OK
        and nods.answer == ()
        and [r.name.to_text() for r in nods.authority] == ["net."]
    )


# 26: the TLD answers "example.com NS" with the NS set in the ANSWER section, AA=0 (a referral
# in disguise: Unbound iter_resptype.c turns it into RESPONSE_TYPE_REFERRAL)
@qmin
def test_s26_ns_in_answer_section_without_aa_is_a_referral(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns1.example.com.", EX1),))  # parent lists only ns1
    w = standard(qmin, tlds=tlds)
    tld = w.servers[COM]

    def ns_in_answer(query: dns.message.Message) -> dns.message.Message | None:
        r = tld(query)
        assert r is not None
        if query.question[0].rdtype == dns.rdatatype.NS and r.authority and not r.answer:
            r.answer, r.authority = r.authority, []
        return r

    w.servers[COM] = ns_in_answer
    ns = w.resolve("example.com.", "NS")
    assert ns.rcode == OK
    assert sorted(texts(ns)) == [
        "example.com. 3600 IN NS ns1.example.com.",
        "example.com. 3600 IN NS ns2.example.com.",
    ]
    assert asked(w, EX1) or asked(w, EX2)


# 27: two-level delegation, the middle zone's first server is slow (times out)
@qmin
def test_s27_silent_server_in_middle_zone_is_passed_over(qmin: bool) -> None:
    w = standard(qmin, SUB_DELEGATION, ex1=lambda query, honest: None, servers={SUB: sub_server()})
    prefer_bad(w, EX1, EX2)  # the silent one is tried first
    a = w.resolve("www.sub.example.com.")
    assert a.rcode == OK and texts(a) == ["www.sub.example.com. 300 IN A 192.0.2.78"]
    assert w.last_queries <= 10
    b = w.resolve("nope.sub.example.com.")
    assert b.rcode == NX and w.last_queries == 1


# 28: a delegation with every server timing out once (lost datagrams) still resolves
@qmin
def test_s28_first_two_datagrams_to_the_zone_lost_still_resolves(qmin: bool) -> None:
    w = standard(qmin)
    w.override = lose_first(2, EX1, EX2)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert w.last_queries <= 8


# 29: single server, first datagram lost
@qmin
def test_s29_single_server_first_datagram_lost_is_retried(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns1.example.com.", EX1),))
    w = standard(qmin, tlds=tlds)
    w.override = lose_first(1, EX1)
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]


# 30: out-of-zone glue from the TLD (com server gives an A for ns.example.net): not cached
@qmin
def test_s30_out_of_bailiwick_glue_is_neither_used_nor_cached(qmin: bool) -> None:
    tlds = tld_records(ex_ns=(("ns.example.net.", None),))
    tlds["com."] += [f"ns.example.net. 172800 A {EVIL}"]  # glue com may not give
    w = standard(qmin, tlds=tlds, servers={NETS: example_com_hosted_in_example_net()})
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert not asked(w, EVIL)
    assert not cache_mentions(w, EVIL)
