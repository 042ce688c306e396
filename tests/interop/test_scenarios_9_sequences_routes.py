"""Sequences C1-C12: questions that take other routes than plain iteration, asked in a row.

Forward zones (a failing forwarder hands over to the next, a truncated answer is asked again
over TCP, nothing goes to the root) and stub zones (their referrals followed and cached); RD=0
questions answered from the cache alone, never with expired data; CNAME-type questions and the A
question for the same name sharing the cache; DS at a cut whose both sides share a server;
questions for the root itself; a name of 37 labels; letter case that differs between questions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from resolver.config import ForwardZone, StubZone
from tests.handbuilt import COM, ROOT, Server, World, texts

from .scenario_common import (
    EX1,
    EX2,
    EX_BASE,
    NX,
    OK,
    SF,
    SUB,
    SUB_DELEGATION,
    WWW,
    asked,
    qmin,
    standard,
    sub_server,
)
from .scenario_net import Auth, Zone, cache_mentions, cfg
from .scenario_sequences import cache_only, dead

F1, F2 = "10.9.9.1", "10.9.9.2"


def rebuild(w: World, qmin: bool, **changes: Any) -> World:
    """A fresh world over the servers of `w`, its configuration changed by `changes`."""
    config = dataclasses.replace(cfg(qmin), **changes)
    return World(config, dict(w.servers))


def forwarder(w: World, mode: str = "ok") -> Server:
    """A recursive resolver at F1/F2 playing over the honest servers of `w` (its own cache).

    `mode` "servfail" or "refused" answers every question so; "nora" answers like a server that
    does not recurse (an empty NOERROR without RA); anything else answers honestly.
    """
    inner = World(cfg(False), dict(w.servers))

    def serve(query: dns.message.Message) -> dns.message.Message:
        assert query.flags & dns.flags.RD
        r = dns.message.make_response(query)
        if mode in ("servfail", "refused"):
            r.set_rcode(dns.rcode.from_text(mode.upper()))
            r.flags |= dns.flags.RA
            return r
        q = query.question[0]
        a = inner.resolve(q.name.to_text(), dns.rdatatype.to_text(q.rdtype))
        r.set_rcode(a.rcode)
        if mode == "nora":  # an authority, not a resolver: answers only what it serves
            r.flags &= ~dns.flags.RA
            return r  # empty NOERROR: a non-recursive server's "I do not know"
        r.flags |= dns.flags.RA
        r.answer, r.authority = list(a.answer), list(a.authority)
        return r

    return serve


# C1: a forwarder that fails (SERVFAIL, REFUSED, non-recursive reply) passes the question to
# the second; the answer is cached and later questions cost nothing; nothing goes to the root.
@pytest.mark.parametrize("mode", ["servfail", "refused", "nora", "dead"])
def test_c01_bad_first_forwarder_then_good(mode: str) -> None:
    w = standard(False)
    bad = dead if mode == "dead" else forwarder(w, mode)
    good = forwarder(w)
    w = rebuild(w, True, forward_zones=(ForwardZone("example.com.", (F1, F2)),))
    w.servers[F1], w.servers[F2] = bad, good
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [WWW]
    assert w.last_queries <= 3
    assert not asked(w, ROOT) and not asked(w, EX1) and not asked(w, EX2)
    assert not cache_mentions(w, "neg:www.example.com")
    b = w.resolve("nope.example.com.")
    assert b.rcode == NX and w.last_queries <= 2
    assert w.resolve("www.example.com.").rcode == OK and w.last_queries == 0


# C2: every forwarder fails: SERVFAIL (no fallback to iteration: forward-first is off), bounded.
@pytest.mark.parametrize("mode", ["servfail", "refused"])
def test_c02_all_forwarders_fail(mode: str) -> None:
    w = standard(False)
    bad = forwarder(w, mode)
    w = rebuild(w, True, forward_zones=(ForwardZone("example.com.", (F1, F2)),))
    w.servers[F1] = w.servers[F2] = bad
    a = w.resolve("www.example.com.")
    assert a.rcode == SF and w.last_queries <= 6
    assert not asked(w, ROOT) and not asked(w, EX1)
    assert not cache_mentions(w, "www.example.com")


# C3: a forwarder whose UDP answer is truncated: the same forwarder is asked over TCP.
def test_c03_forwarder_truncates() -> None:
    big = [f'big.example.com. 300 TXT "{a * 250}" "{b * 250}"' for a, b in ("yz", "qr", "st")]
    w = standard(False, big)
    good = forwarder(w)
    w = rebuild(w, True, forward_zones=(ForwardZone("example.com.", (F1,)),))
    w.servers[F1] = good
    a = w.resolve("big.example.com.", "TXT")
    assert a.rcode == OK and len(a.answer[0]) == 3
    assert [e[3] for e in asked(w, F1)] == [False, True]


# C4: a stub zone whose server refers further down: the referral is followed and cached; the
# root and the TLD are never asked.
@qmin
def test_c04_stub_zone_refers_down(qmin: bool) -> None:
    w = standard(qmin, SUB_DELEGATION, servers={SUB: sub_server()})
    w = rebuild(w, qmin, stub_zones=(StubZone("example.com.", (EX1,)),))
    a = w.resolve("www.sub.example.com.")
    assert a.rcode == OK and texts(a) == ["www.sub.example.com. 300 IN A 192.0.2.78"]
    assert w.last_queries <= 4
    b = w.resolve("nope.sub.example.com.")
    assert b.rcode == NX and w.last_queries == 1
    c = w.resolve("www.example.com.")
    assert texts(c) == [WWW] and w.last_queries == 1
    assert not asked(w, ROOT) and not asked(w, COM) and not asked(w, EX2)


# C5: RD=0 before and after a name is cached: a referral (no upstream query), then the answer;
# a cached NXDOMAIN is given as NXDOMAIN.
@qmin
def test_c05_rd0_before_and_after_caching(qmin: bool) -> None:
    w = standard(qmin)
    a, sent = cache_only(w, "www.example.com.")
    assert sent == 0 and a.rcode == OK and a.answer == ()
    assert [r.name.to_text() for r in a.authority] == ["."]
    w.resolve("www.example.com.")
    w.resolve("nope.example.com.")
    w.clock.now += 5
    b, sent = cache_only(w, "www.example.com.")
    assert sent == 0 and texts(b) == ["www.example.com. 295 IN A 192.0.2.1"]
    c, sent = cache_only(w, "other.example.com.")
    assert sent == 0 and c.answer == ()
    assert [r.name.to_text() for r in c.authority] == ["example.com."]
    d, sent = cache_only(w, "nope.example.com.")
    assert sent == 0 and d.rcode == NX
    e, sent = cache_only(w, "alias.example.com.")  # CNAME not cached yet
    assert sent == 0 and e.answer == ()


# C6: CNAME-type question: the CNAME alone, not chased; then the A question reuses it.
@qmin
def test_c06_cname_type_question_then_a(qmin: bool) -> None:
    w = standard(qmin)
    a = w.resolve("alias.example.com.", "CNAME")
    assert a.rcode == OK and texts(a) == ["alias.example.com. 300 IN CNAME www.example.com."]
    assert not cache_mentions(w, "rr:www.example.com. 300 IN A")
    b = w.resolve("alias.example.com.")
    assert texts(b) == ["alias.example.com. 300 IN CNAME www.example.com.", WWW]
    assert w.last_queries == 1
    c = w.resolve("www.example.com.", "CNAME")
    assert c.rcode == OK and c.answer == () and w.last_queries <= 1


# C7: the A question first, then the CNAME-type question comes from the cache.
@qmin
def test_c07_a_then_cname_type_from_cache(qmin: bool) -> None:
    w = standard(qmin)
    w.resolve("alias.example.com.")
    a = w.resolve("alias.example.com.", "CNAME")
    assert texts(a) == ["alias.example.com. 300 IN CNAME www.example.com."] and w.last_queries == 0


def parent_and_children() -> tuple[Zone, Zone, Zone]:
    """example.com with sub (a DS at the cut) and nods (no DS), all three served by ns1."""
    return (
        Zone(
            "example.com.",
            [
                *EX_BASE,
                "sub.example.com. 3600 NS ns1.example.com.",
                "sub.example.com. 3600 DS 12345 8 2 " + "ab" * 32,
                "nods.example.com. 3600 NS ns1.example.com.",
            ],
        ),
        Zone(
            "sub.example.com.",
            ["sub.example.com. 3600 NS ns1.example.com.", "www.sub.example.com. 300 A 192.0.2.78"],
        ),
        Zone("nods.example.com.", ["nods.example.com. 3600 NS ns1.example.com."]),
    )


# C8: DS for a child served by the same server as its parent, after the child was used.
@qmin
def test_c08_ds_parent_and_child_share_a_server(qmin: bool) -> None:
    sub_on_ex = Auth(*parent_and_children())
    w = standard(qmin, servers={EX1: sub_on_ex, EX2: sub_on_ex})
    assert texts(w.resolve("www.sub.example.com.")) == ["www.sub.example.com. 300 IN A 192.0.2.78"]
    ds = w.resolve("sub.example.com.", "DS")
    assert ds.rcode == OK and [r.rdtype for r in ds.answer] == [dns.rdatatype.DS]
    nods = w.resolve("nods.example.com.", "DS")
    assert nods.rcode == OK and nods.answer == ()
    assert [r.name.to_text() for r in nods.authority] == ["example.com."]
    # the child's apex still has no DS NODATA cached from the child side
    assert not cache_mentions(w, "neg:sub.example.com. DS")


# C9: questions for the root: . NS, . SOA, . A (NODATA), each bounded, and then from the cache.
@qmin
def test_c09_root_questions(qmin: bool) -> None:
    w = standard(qmin)
    ns = w.resolve(".", "NS")
    assert ns.rcode == OK
    assert texts(ns) == [". 86400 IN NS a.root-servers.net."]  # cache-max-ttl one day
    assert w.last_queries <= 2
    s = w.resolve(".", "SOA")
    assert s.rcode == OK and [r.rdtype for r in s.answer] == [dns.rdatatype.SOA]
    assert w.last_queries <= 1
    a = w.resolve(".", "A")
    assert a.rcode == OK and a.answer == () and [r.name.to_text() for r in a.authority] == ["."]
    assert w.last_queries <= 1
    assert w.resolve(".", "SOA").rcode == OK and w.last_queries == 0
    assert w.resolve(".", "NS").rcode == OK and w.last_queries == 0


DEEP = ".".join(f"l{i}" for i in range(35)) + ".example.com."


# C10: a name of 37 labels: answered within the minimisation cap; a sibling deep name and a
# missing deep name afterwards cost few queries.
@qmin
def test_c10_thirty_plus_labels(qmin: bool) -> None:
    w = standard(qmin, [f"{DEEP} 300 A 192.0.2.35", f"x.{DEEP} 300 A 192.0.2.36"])
    a = w.resolve(DEEP)
    assert a.rcode == OK and texts(a) == [f"{DEEP} 300 IN A 192.0.2.35"]
    assert w.last_queries <= 14
    b = w.resolve("x." + DEEP)
    assert b.rcode == OK and w.last_queries <= 6  # the cap spreads labels differently
    c = w.resolve("nope." + DEEP, "TXT")
    assert c.rcode == NX and w.last_queries <= 2
    d = w.resolve(DEEP, "TXT")
    assert d.rcode == OK and d.answer == () and w.last_queries <= 1


# C11: names differing only in letter case share cache entries, positive and negative.
@qmin
def test_c11_letter_case_across_questions(qmin: bool) -> None:
    w = standard(qmin)
    a = w.resolve("WWW.Example.COM.")
    assert a.rcode == OK and [r.to_text() for r in a.answer[0]] == ["192.0.2.1"]
    assert w.resolve("www.example.com.").rcode == OK and w.last_queries == 0
    assert w.resolve("wWw.eXample.cOm.").rcode == OK and w.last_queries == 0
    assert w.resolve("NoPe.Example.Com.").rcode == NX
    assert w.resolve("nope.example.com.").rcode == NX and w.last_queries == 0
    # a delegation learnt under one case serves another
    assert w.resolve("MAIL.EXAMPLE.COM.").rcode == OK and w.last_queries == 1


# C12: RD=0 for a name only known stale (expired): not answered with the expired data.
@qmin
def test_c12_rd0_after_expiry(qmin: bool) -> None:
    w = standard(qmin)
    w.resolve("www.example.com.")
    w.clock.now += 400
    a, sent = cache_only(w, "www.example.com.")
    assert sent == 0 and a.answer == ()
