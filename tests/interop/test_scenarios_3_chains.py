"""Scenarios 31-44: following CNAME and DNAME chains, and wildcards.

CNAME chains across zones (with poisoned records riding along), into a sibling zone on the same
server and into a delegated sub-zone; NXDOMAIN and NODATA after a CNAME, and a server's NXDOMAIN
for a target outside its zone; CNAME loops in and across zones; DNAME with and without the
synthesised CNAME, DNAME chains, a CNAME that disagrees with its DNAME, a query for the DNAME
itself; wildcard answers and the empty non-terminal above them.
"""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype

from resolver.core.actions import Answer
from tests.handbuilt import World, question, rr, texts

from .scenario_common import (
    EVIL,
    EX1,
    EX2,
    NX,
    OK,
    SF,
    SUB,
    SUB_DELEGATION,
    qmin,
    standard,
    sub_server,
    tld_records,
)
from .scenario_net import Auth, Zone, cache_mentions


def owners_and_types(answer: Answer) -> list[tuple[str, str]]:
    """(owner, type) of each RRset in the answer section, in order."""
    return [(r.name.to_text(), dns.rdatatype.to_text(r.rdtype)) for r in answer.answer]


# 31: CNAME chain across three zones, with poisoned out-of-zone records riding along
@qmin
def test_s31_cname_chain_across_zones_drops_poison_riding_along(qmin: bool) -> None:
    def poison(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        if question(query)[0].to_text().lower() == "c.example.com.":
            r.answer.append(rr(f"x.example.net. 300 A {EVIL}"))
            r.answer.append(rr(f"www.example.org. 300 A {EVIL}"))
        return r

    w = standard(
        qmin,
        ["c.example.com. 300 CNAME x.example.net."],
        ex1=poison,
        ex2=poison,
        net_extra=["x.example.net. 300 CNAME www.example.org."],
    )
    a = w.resolve("c.example.com.")
    assert a.rcode == OK
    assert texts(a) == [
        "c.example.com. 300 IN CNAME x.example.net.",
        "x.example.net. 300 IN CNAME www.example.org.",
        "www.example.org. 300 IN A 203.0.113.1",
    ]
    assert not cache_mentions(w, EVIL)
    assert w.last_queries <= 14


# 32: CNAME to a name in a sibling zone on the same server, which chases it with AA
@qmin
def test_s32_cname_to_sibling_zone_on_same_server_is_followed(qmin: bool) -> None:
    both = Auth(
        Zone(
            "example.com.",
            [
                "example.com. 3600 NS ns1.example.com.",
                f"ns1.example.com. 3600 A {EX1}",
                "c.example.com. 300 CNAME www.example.net.",
            ],
        ),
        Zone(
            "example.net.",
            ["example.net. 3600 NS ns1.example.com.", "www.example.net. 300 A 198.51.100.1"],
        ),
    )
    tlds = tld_records(ex_ns=(("ns1.example.com.", EX1),))
    tlds["net."] = ["example.net. 172800 NS ns1.example.com."]
    w = standard(qmin, tlds=tlds, servers={EX1: both})
    a = w.resolve("c.example.com.")
    assert a.rcode == OK
    assert texts(a) == [
        "c.example.com. 300 IN CNAME www.example.net.",
        "www.example.net. 300 IN A 198.51.100.1",
    ]
    assert w.last_queries <= 10


# 33: NXDOMAIN after an in-zone CNAME
@qmin
def test_s33_nxdomain_after_in_zone_cname_keeps_the_cname(qmin: bool) -> None:
    w = standard(qmin, ["c.example.com. 300 CNAME gone.example.com."])
    a = w.resolve("c.example.com.")
    assert a.rcode == NX
    assert texts(a) == ["c.example.com. 300 IN CNAME gone.example.com."]
    assert [r.name.to_text() for r in a.authority] == ["example.com."]
    assert w.last_queries <= 5


# 34: NODATA after an in-zone CNAME
@qmin
def test_s34_nodata_after_in_zone_cname_keeps_the_cname_and_soa(qmin: bool) -> None:
    w = standard(qmin)
    a = w.resolve("alias.example.com.", "MX")
    assert a.rcode == OK
    assert texts(a) == ["alias.example.com. 300 IN CNAME www.example.com."]
    assert [r.rdtype for r in a.authority] == [dns.rdatatype.SOA]


# 35: the server says NXDOMAIN (with its SOA) for a CNAME target outside its zone; the target
# exists
@qmin
def test_s35_nxdomain_for_out_of_zone_cname_target_is_not_believed(qmin: bool) -> None:
    def nx(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        if r.answer and r.answer[-1].rdtype == dns.rdatatype.CNAME:
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority = [rr("example.com. 300 SOA ns. h. 1 1 1 1 300")]
        return r

    w = standard(qmin, ["c.example.com. 300 CNAME www.example.net."], ex1=nx, ex2=nx)
    a = w.resolve("c.example.com.")
    assert a.rcode == OK
    assert texts(a) == [
        "c.example.com. 300 IN CNAME www.example.net.",
        "www.example.net. 300 IN A 198.51.100.1",
    ]
    assert not cache_mentions(w, "neg:www.example.net")


# 36: CNAME loop inside one zone
@qmin
def test_s36_cname_loop_in_zone_is_a_bounded_servfail(qmin: bool) -> None:
    w = standard(
        qmin,
        ["l1.example.com. 300 CNAME l2.example.com.", "l2.example.com. 300 CNAME l1.example.com."],
    )
    a = w.resolve("l1.example.com.")
    assert a.rcode == SF
    assert w.last_queries <= 10


# 37: CNAME loop across zones
@qmin
def test_s37_cname_loop_across_zones_is_a_bounded_servfail(qmin: bool) -> None:
    w = standard(
        qmin,
        ["l.example.com. 300 CNAME l.example.net."],
        net_extra=["l.example.net. 300 CNAME l.example.com."],
    )
    a = w.resolve("l.example.com.")
    assert a.rcode == SF
    assert w.last_queries <= 16


# 38: DNAME with the synthesised CNAME: the client gets DNAME + CNAME + data
@qmin
def test_s38_dname_with_cname_returns_dname_cname_and_data(qmin: bool) -> None:
    w = standard(qmin, ["d.example.com. 300 DNAME example.net."])
    a = w.resolve("www.d.example.com.")
    assert a.rcode == OK
    assert owners_and_types(a) == [
        ("d.example.com.", "DNAME"),
        ("www.d.example.com.", "CNAME"),
        ("www.example.net.", "A"),
    ]
    assert texts(a)[1] == "www.d.example.com. 300 IN CNAME www.example.net."
    assert texts(a)[2] == "www.example.net. 300 IN A 198.51.100.1"


# 39: DNAME without the synthesised CNAME (old servers)
@qmin
def test_s39_dname_without_cname_is_synthesised_and_cached(qmin: bool) -> None:
    exa = Auth(
        Zone(
            "example.com.",
            [
                "example.com. 3600 NS ns1.example.com.",
                "example.com. 3600 NS ns2.example.com.",
                f"ns1.example.com. 3600 A {EX1}",
                f"ns2.example.com. 3600 A {EX2}",
                "d.example.com. 300 DNAME example.net.",
            ],
        ),
        send_dname_cname=False,
    )
    w = standard(qmin, servers={EX1: exa, EX2: exa})
    a = w.resolve("www.d.example.com.")
    assert a.rcode == OK
    assert owners_and_types(a) == [
        ("d.example.com.", "DNAME"),
        ("www.d.example.com.", "CNAME"),
        ("www.example.net.", "A"),
    ]
    # the DNAME is cached and answers for other names below it
    b = w.resolve("mail.d.example.com.")
    assert b.rcode == NX
    assert [e for e in w.log[-w.last_queries :] if e[0] in (EX1, EX2)] == []


# 40: DNAME chain: example.com -> example.net -> example.org
@qmin
def test_s40_dname_chain_is_followed_across_zones(qmin: bool) -> None:
    w = standard(
        qmin,
        ["d.example.com. 300 DNAME d.example.net."],
        net_extra=["d.example.net. 300 DNAME example.org."],
    )
    a = w.resolve("www.d.example.com.")
    assert a.rcode == OK
    assert owners_and_types(a) == [
        ("d.example.com.", "DNAME"),
        ("www.d.example.com.", "CNAME"),
        ("d.example.net.", "DNAME"),
        ("www.d.example.net.", "CNAME"),
        ("www.example.org.", "A"),
    ]


# 41: DNAME and CNAME disagree: the DNAME wins (Unbound iter_scrub.c synthesises and drops the
# bad CNAME)
@qmin
def test_s41_dname_wins_when_the_cname_disagrees(qmin: bool) -> None:
    def bad(query: dns.message.Message, honest: Auth) -> dns.message.Message:
        r = honest(query)
        for i, s in enumerate(r.answer):
            if s.rdtype == dns.rdatatype.CNAME:
                r.answer[i] = rr(f"{s.name} 300 CNAME www.example.org.")
                r.answer = r.answer[: i + 1]
        return r

    w = standard(qmin, ["d.example.com. 300 DNAME example.net."], ex1=bad, ex2=bad)
    a = w.resolve("www.d.example.com.")
    assert a.rcode == OK
    assert texts(a)[1:] == [
        "www.d.example.com. 300 IN CNAME www.example.net.",
        "www.example.net. 300 IN A 198.51.100.1",
    ]
    assert not cache_mentions(w, "CNAME www.example.org")


# 42: asking for the DNAME itself
@qmin
def test_s42_query_for_dname_type_returns_the_dname(qmin: bool) -> None:
    w = standard(qmin, ["d.example.com. 300 DNAME example.net."])
    a = w.resolve("d.example.com.", "DNAME")
    assert a.rcode == OK and texts(a) == ["d.example.com. 300 IN DNAME example.net."]


# 43: wildcard answers
@qmin
def test_s43_wildcard_answers_but_not_at_its_empty_non_terminal(qmin: bool) -> None:
    w = standard(qmin, ["*.wild.example.com. 300 A 192.0.2.50", '*.wild.example.com. 300 TXT "w"'])
    a = w.resolve("foo.wild.example.com.")
    assert a.rcode == OK and texts(a) == ["foo.wild.example.com. 300 IN A 192.0.2.50"]
    b = w.resolve("x.y.wild.example.com.")
    assert b.rcode == OK and texts(b) == ["x.y.wild.example.com. 300 IN A 192.0.2.50"]
    c = w.resolve("foo.wild.example.com.", "MX")
    assert c.rcode == OK and c.answer == ()
    d = w.resolve("wild.example.com.")
    assert d.rcode == OK and d.answer == ()  # an empty non-terminal, not the wildcard


def stale_child(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """example.com's server also hands out old data for the delegated child after a CNAME."""
    r = honest(query)
    if r.answer and r.answer[-1].rdtype == dns.rdatatype.CNAME:
        r.answer.append(rr(f"www.sub.example.com. 300 A {EVIL}"))
    return r


def cname_into_subzone(qmin: bool) -> World:
    """c.example.com is a CNAME into sub.example.com, which example.com delegates (44, 44b)."""
    return standard(
        qmin,
        ["c.example.com. 300 CNAME www.sub.example.com.", *SUB_DELEGATION],
        ex1=stale_child,
        ex2=stale_child,
        servers={SUB: sub_server()},
    )


# 44: a CNAME chain whose in-zone target lies in a delegated sub-zone: ask the sub-zone
@qmin
def test_s44_cname_into_known_delegated_subzone_asks_the_subzone(qmin: bool) -> None:
    w = cname_into_subzone(qmin)
    w.resolve("www.sub.example.com.")  # the cut is known
    a = w.resolve("c.example.com.")
    assert a.rcode == OK
    assert texts(a) == [
        "c.example.com. 300 IN CNAME www.sub.example.com.",
        "www.sub.example.com. 300 IN A 192.0.2.78",
    ]


# 44b: same, the cut not yet known: the parent's data for the child must not be the answer
@qmin
def test_s44b_cname_into_unknown_delegated_subzone_ignores_parent_data(qmin: bool) -> None:
    w = cname_into_subzone(qmin)
    a = w.resolve("c.example.com.")
    assert texts(a) == [
        "c.example.com. 300 IN CNAME www.sub.example.com.",
        "www.sub.example.com. 300 IN A 192.0.2.78",
    ]
