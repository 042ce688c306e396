"""Sequences B1-B10: what one answer leaves in the cache for the next question.

Negative answers (NXDOMAIN, NODATA) are served from the cache until their negative TTL runs out,
even after the zone gains the name or type; an NXDOMAIN above a name answers for it cheaply but
an unsigned one does not hide data below an empty non-terminal a server wrongly denied. CNAMEs
and DNAMEs are reused while their targets are refetched; serve-stale answers when every server is
gone, without refreshing the cache; TTLs handed out age with the clock.
"""

from __future__ import annotations

import dns.message
import dns.rdatatype
import pytest

from resolver.cache.records import Rank
from tests.handbuilt import COM, ROOT, name, question, texts

from .scenario_common import (
    EX1,
    EX2,
    EX_BASE,
    NX,
    OK,
    SF,
    WWW,
    asked,
    qmin,
    standard,
)
from .scenario_net import Auth, Zone, cache_mentions, soa
from .scenario_sequences import dead, refused, set_zone


def ex_zone(*extra: str, neg: int = 300) -> Zone:
    """The standard example.com zone with `extra` records and a negative TTL of `neg`."""
    return Zone("example.com.", [soa("example.com.", 300, neg), *EX_BASE, *extra], add_soa=False)


# B1: NXDOMAIN cached; the name is added; it stays NXDOMAIN until the negative TTL runs out,
# answered from the cache, then the new data is fetched.
@qmin
def test_b01_negative_then_name_appears(qmin: bool) -> None:
    w = standard(qmin)
    auth = w.servers[EX1]
    assert w.resolve("new.example.com.").rcode == NX
    z = ex_zone("new.example.com. 300 A 192.0.2.50")
    set_zone(auth, z)
    w.clock.now += 100
    a = w.resolve("new.example.com.")
    assert a.rcode == NX and w.last_queries == 0
    assert a.authority and 190 <= a.authority[0].ttl <= 200  # negative TTL ages too
    w.clock.now += 201
    b = w.resolve("new.example.com.")
    assert b.rcode == OK and texts(b) == ["new.example.com. 300 IN A 192.0.2.50"]
    assert w.last_queries <= 2
    assert not cache_mentions(w, "neg:new.example.com")


# B2: NODATA for AAAA cached, then an AAAA record appears; A is never affected.
@qmin
def test_b02_nodata_then_type_appears(qmin: bool) -> None:
    w = standard(qmin)
    auth = w.servers[EX1]
    assert w.resolve("www.example.com.", "AAAA").answer == ()
    set_zone(auth, ex_zone("www.example.com. 300 AAAA 2001:db8::1"))
    w.clock.now += 10
    assert w.resolve("www.example.com.", "AAAA").answer == () and w.last_queries == 0
    assert texts(w.resolve("www.example.com."))[0].endswith("IN A 192.0.2.1")
    w.clock.now += 300
    c = w.resolve("www.example.com.", "AAAA")
    assert texts(c) == ["www.example.com. 300 IN AAAA 2001:db8::1"] and w.last_queries <= 2


def deny_ent_b_c(query: dns.message.Message, honest: Auth) -> dns.message.Message:
    """The honest reply, but NXDOMAIN for the empty non-terminal b.c.example.com."""
    r = honest(query)
    if r.rcode() == OK and not r.answer and question(query)[0] == name("b.c.example.com."):
        r.set_rcode(NX)
    return r


# B3: a server denies an empty non-terminal (NXDOMAIN for b.c.example.com, RFC 8020 violation).
# The client first asks b.c itself (NXDOMAIN cached), then a.b.c: unsigned, so Unbound
# (harden-below-nxdomain applies only to DNSSEC-secure NXDOMAIN) asks again and gets the data.
@qmin
def test_b03_nxdomain_parent_then_child_relaxed(qmin: bool) -> None:
    w = standard(qmin, ex1=deny_ent_b_c, ex2=deny_ent_b_c)
    assert w.resolve("b.c.example.com.").rcode == NX
    a = w.resolve("a.b.c.example.com.")
    assert a.rcode == OK and texts(a) == ["a.b.c.example.com. 300 IN A 192.0.2.3"]
    assert w.last_queries <= 4


# B4: a real NXDOMAIN for a parent, then a question for a child: NXDOMAIN, at most one query
# (RFC 8020 in relaxed mode: the zone is asked for the full name; nothing else).
@qmin
def test_b04_nxdomain_parent_then_child_is_nxdomain_cheaply(qmin: bool) -> None:
    w = standard(qmin)
    assert w.resolve("nope.example.com.").rcode == NX
    a = w.resolve("x.y.nope.example.com.")
    assert a.rcode == NX and w.last_queries <= 1
    assert not asked(w, ROOT)[2:] and len(asked(w, COM)) <= 2


# B5: a CNAME's target cached by an earlier question is reused: the alias costs one query.
@qmin
def test_b05_cname_target_cached_earlier_is_reused(qmin: bool) -> None:
    w = standard(qmin, net_extra=["alias.example.net. 300 CNAME www.example.com."])
    assert texts(w.resolve("www.example.com.")) == [WWW]
    w.clock.now += 50
    a = w.resolve("alias.example.net.")
    assert a.rcode == OK
    assert texts(a) == [
        "alias.example.net. 300 IN CNAME www.example.com.",
        "www.example.com. 250 IN A 192.0.2.1",
    ]
    assert w.last_queries <= 3  # root -> net -> example.net; nothing for www.example.com
    assert not any(e[1] == "www.example.com." for e in w.log[-w.last_queries :])


# B6: the CNAME outlives its target: the next question takes the CNAME from the cache and
# refetches only the target; a later change of the target is seen.
@qmin
def test_b06_cname_cached_target_expired_and_changed(qmin: bool) -> None:
    w = standard(
        qmin,
        ["short.example.com. 10 A 192.0.2.10", "long.example.com. 3600 CNAME short.example.com."],
    )
    a = w.resolve("long.example.com.")
    assert texts(a) == [
        "long.example.com. 3600 IN CNAME short.example.com.",
        "short.example.com. 10 IN A 192.0.2.10",
    ]
    set_zone(
        w.servers[EX1],
        ex_zone(
            "short.example.com. 10 A 192.0.2.11", "long.example.com. 3600 CNAME short.example.com."
        ),
    )
    w.clock.now += 20
    b = w.resolve("long.example.com.")
    assert texts(b) == [
        "long.example.com. 3580 IN CNAME short.example.com.",
        "short.example.com. 10 IN A 192.0.2.11",
    ]
    assert w.last_queries == 1 and w.log[-1][1:3] == ("short.example.com.", "A")


# B7: a DNAME is cached and reused for another name below it; the zone then removes it and,
# once the DNAME's TTL runs out, names below it get the zone's new data.
@qmin
def test_b07_dname_cached_then_removed(qmin: bool) -> None:
    w = standard(
        qmin,
        ["d.example.com. 60 DNAME example.net."],
        net_extra=["mail.example.net. 300 A 198.51.100.2"],
    )
    a = w.resolve("www.d.example.com.")
    assert a.rcode == OK and texts(a)[-1] == "www.example.net. 300 IN A 198.51.100.1"
    b = w.resolve("mail.d.example.com.")
    assert texts(b) == [
        "d.example.com. 60 IN DNAME example.net.",
        "mail.d.example.com. 60 IN CNAME mail.example.net.",
        "mail.example.net. 300 IN A 198.51.100.2",
    ]
    assert not asked(w, EX1)[1:] or all(
        e[1] != "mail.d.example.com." for e in asked(w, EX1) + asked(w, EX2)
    )
    set_zone(w.servers[EX1], ex_zone("www.d.example.com. 300 A 192.0.2.70"))
    w.clock.now += 30
    c = w.resolve("www.d.example.com.")
    assert w.last_queries == 0
    assert texts(c)[:2] == [
        "d.example.com. 30 IN DNAME example.net.",
        "www.d.example.com. 30 IN CNAME www.example.net.",
    ]
    w.clock.now += 100  # DNAME and synthesised CNAMEs expired
    d = w.resolve("www.d.example.com.")
    assert d.rcode == OK and texts(d) == ["www.d.example.com. 300 IN A 192.0.2.70"]
    e = w.resolve("other.d.example.com.")
    assert e.rcode == NX and e.answer == ()


# B8: serve-stale: an answer is cached, every server dies, the answer expires: the stale answer
# (flagged stale, short TTL). A name never cached: SERVFAIL.
@qmin
@pytest.mark.parametrize("how", ["dead", "refused"])
def test_b08_serve_stale_after_all_servers_fail(qmin: bool, how: str) -> None:
    w = standard(qmin)
    assert texts(w.resolve("www.example.com.")) == [WWW]
    kill = dead if how == "dead" else refused
    w.servers[EX1] = w.servers[EX2] = kill
    w.clock.now += 3700  # the NS set (3600) and the answer have expired; the TLD is alive
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and a.stale and texts(a) == ["www.example.com. 30 IN A 192.0.2.1"]
    assert w.last_queries <= 12
    b = w.resolve("never.example.com.")
    assert b.rcode == SF and not b.stale and b.answer == ()
    assert w.last_queries <= 12
    # the stale answer did not refresh the cache's fresh copy
    fresh = w.cache.get_rrset(name("www.example.com."), dns.rdatatype.A, min_rank=Rank.GLUE)
    assert fresh is None


# B9: serve-stale for a CNAME chain whose target is still fresh while the alias expired.
@qmin
def test_b09_serve_stale_cname_chain(qmin: bool) -> None:
    w = standard(qmin, ["al.example.com. 60 CNAME www.example.com."])
    a = w.resolve("al.example.com.")
    assert a.rcode == OK and len(a.answer) == 2
    w.servers[EX1] = w.servers[EX2] = dead
    w.clock.now += 120
    b = w.resolve("al.example.com.")
    assert b.rcode == OK and b.stale
    assert [r.rdtype for r in b.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]


# B10: TTLs handed out decrease with the clock; at expiry the record is fetched again.
@qmin
def test_b10_ttl_decreases_then_refetch(qmin: bool) -> None:
    w = standard(qmin)
    w.resolve("www.example.com.")
    w.clock.now += 100
    assert texts(w.resolve("www.example.com.")) == ["www.example.com. 200 IN A 192.0.2.1"]
    w.clock.now += 150
    assert texts(w.resolve("www.example.com.")) == ["www.example.com. 50 IN A 192.0.2.1"]
    assert w.last_queries == 0
    w.clock.now += 60
    assert texts(w.resolve("www.example.com.")) == [WWW]
    assert w.last_queries == 1  # NS set (3600) still cached: one query to the zone
