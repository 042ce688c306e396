"""Sequences A1-A8: a delegation that changes between questions.

The parent's and the child's NS sets differ, glue expires before the NS set, a server is
renumbered, the zone moves to servers named in another zone or off its parent's host, and it is
re-delegated while the old servers still sit in the cache and now answer REFUSED, with an upward
referral, or not at all. Each later question must find the new servers through the parent at a
bounded cost, and servers found lame must not be asked again by every question.
"""

from __future__ import annotations

import dns.message
import pytest

from tests.handbuilt import COM, rr, texts

from .scenario_common import (
    EX1,
    EX2,
    EX_BASE,
    NETS,
    NX,
    OK,
    ORGS,
    WWW,
    asked,
    qmin,
    standard,
    tld_records,
)
from .scenario_net import Auth, Zone, delegate, internet, make_reply
from .scenario_sequences import dead, refused, set_zone

NEW = "192.0.2.200"
MAIL = "mail.example.com. 300 IN A 192.0.2.2"
MOVED_WWW = "www.example.com. 300 IN A 192.0.2.99"

#: example.com's standard data without its NS set and its servers' addresses.
EX_DATA = [
    line for line in EX_BASE if not line.startswith(("ns1.", "ns2.", "example.com. 3600 NS"))
]

#: example.com's standard data with every NS set and server address kept for a day.
EX_BASE_DAY = [line.replace("3600 NS", "86400 NS").replace("3600 A", "86400 A") for line in EX_BASE]


def ns1_only(ns_ttl: int, address_ttl: int, address: str = EX1) -> list[str]:
    """example.com's NS set naming ns1.example.com. alone, and ns1's address, with these TTLs."""
    return [
        f"example.com. {ns_ttl} NS ns1.example.com.",
        f"ns1.example.com. {address_ttl} A {address}",
    ]


def moved(host: str, ttl: int = 86400) -> Zone:
    """example.com after its move to one server `host` at NEW, where www has a new address."""
    return Zone(
        "example.com.",
        [
            f"example.com. {ttl} NS {host}",
            f"{host} {ttl} A {NEW}",
            "www.example.com. 300 A 192.0.2.99",
        ],
    )


def upward(query: dns.message.Message) -> dns.message.Message:
    """A lame server that refers every question up, to the com. servers."""
    return make_reply(
        query,
        aa=False,
        authority=[rr("com. 172800 NS a.gtld-servers.net.")],
        additional=[rr(f"a.gtld-servers.net. 172800 A {COM}")],
    )


# A1: the parent lists only ns1 (short TTL); the child lists ns1+ns2. After the parent's copy
# expires and ns1 dies, the child's NS set (learnt from an NS answer) still leads to ns2.
@qmin
def test_a01_child_ns_set_outlives_parent_copy(qmin: bool) -> None:
    tlds = tld_records()
    tlds["com."] = ns1_only(60, 60)
    w = standard(qmin, tlds=tlds)
    assert texts(w.resolve("www.example.com.")) == [WWW]
    ns = w.resolve("example.com.", "NS")
    assert len(texts(ns)) == 2
    assert w.resolve("ns2.example.com.").rcode == OK  # the child's address for ns2
    w.clock.now += 120
    w.servers[EX1] = dead
    a = w.resolve("mail.example.com.")
    assert a.rcode == OK and texts(a) == [MAIL]
    assert w.last_queries <= 8


# A2: glue (and the child's A for the NS) expires long before the NS set; the next question
# must fetch the address again, not SERVFAIL with zero queries.
@qmin
def test_a02_glue_expires_before_ns_set(qmin: bool) -> None:
    tlds = tld_records()
    tlds["com."] = ns1_only(172800, 30)
    zone = Zone("example.com.", [*EX_DATA, *ns1_only(172800, 30)])
    w, _ = internet(tlds, {EX1: Auth(zone)}, qmin=qmin)
    assert texts(w.resolve("www.example.com.")) == [WWW]
    w.clock.now += 60
    a = w.resolve("mail.example.com.")
    assert a.rcode == OK and texts(a) == [MAIL]
    assert 1 <= w.last_queries <= 6


# A3: glue expires and the server's address changes (parent and child both updated); the old
# address is dead. The NS set is still cached.
@qmin
def test_a03_ns_address_renumbered_after_glue_expiry(qmin: bool) -> None:
    tlds = tld_records()
    tlds["com."] = ns1_only(172800, 30)
    zone_old = Zone("example.com.", [*EX_DATA, *ns1_only(172800, 30)])
    w, tl = internet(tlds, {EX1: Auth(zone_old)}, qmin=qmin)
    assert texts(w.resolve("www.example.com.")) == [WWW]
    w.clock.now += 60
    zone_new = Zone("example.com.", [*EX_DATA, *ns1_only(172800, 30, NEW)])
    w.servers[NEW] = Auth(zone_new)
    w.servers[EX1] = dead
    set_zone(tl["com."], Zone("com.", ns1_only(172800, 30, NEW)))
    a = w.resolve("mail.example.com.")
    assert a.rcode == OK and texts(a) == [MAIL]
    assert w.last_queries <= 10


# A4: the NS name moves between zones: example.com served by ns.example.net, then re-delegated
# (after the NS set's TTL) to ns.example.org; the example.net server then REFUSES example.com.
@qmin
def test_a04_ns_name_moves_to_another_zone(qmin: bool) -> None:
    tlds = tld_records()
    tlds["com."] = ["example.com. 300 NS ns.example.net."]
    exz = ["example.com. 300 NS ns.example.net.", "www.example.com. 300 A 192.0.2.1"]
    net = Auth(
        Zone(
            "example.net.",
            ["example.net. 3600 NS ns.example.net.", f"ns.example.net. 3600 A {NETS}"],
        ),
        Zone("example.com.", exz),
    )
    org = Auth(
        Zone(
            "example.org.",
            ["example.org. 3600 NS ns.example.org.", f"ns.example.org. 3600 A {ORGS}"],
        )
    )
    w = standard(qmin, tlds=tlds, servers={NETS: net, ORGS: org})
    assert texts(w.resolve("www.example.com.")) == [WWW]
    w.clock.now += 400
    newz = ["example.com. 300 NS ns.example.org.", "www.example.com. 300 A 192.0.2.9"]
    set_zone(net, net.zones[0])  # example.net no longer serves example.com: REFUSED
    set_zone(org, org.zones[0], Zone("example.com.", newz))
    set_zone(w.servers[COM], Zone("com.", ["example.com. 300 NS ns.example.org."]))
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == ["www.example.com. 300 IN A 192.0.2.9"]
    assert w.last_queries <= 8


# A5: re-delegation to new servers while the cached (child, 1 day) NS set still points at the
# old ones, which now answer REFUSED / upward referral / nothing. The parent knows the new
# servers; the resolver must relearn the delegation from it, before the NS set expires.
@qmin
@pytest.mark.parametrize("kind", ["refused", "upward", "dead"])
@pytest.mark.parametrize("asked_ns", [False, True], ids=["referral_ns", "answer_ns"])
def test_a05_redelegation_old_servers_lame(qmin: bool, kind: str, asked_ns: bool) -> None:
    tlds = tld_records()
    tlds["com."] = [line.replace("172800", "86400") for line in tlds["com."]]
    w = standard(qmin, EX_BASE_DAY, tlds=tlds)  # duplicates at TTL 86400: the union keeps one TTL
    assert texts(w.resolve("www.example.com.")) == [WWW]
    if asked_ns:
        assert w.resolve("example.com.", "NS").rcode == OK
    w.clock.now += 600
    w.servers[NEW] = Auth(moved("ns3.example.com."))
    set_zone(w.servers[COM], Zone("com.", delegate("example.com.", ("ns3.example.com.", NEW))))
    lame = {"refused": refused, "upward": upward, "dead": dead}[kind]
    w.servers[EX1] = lame
    w.servers[EX2] = lame
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [MOVED_WWW]
    assert w.last_queries <= 16
    assert asked(w, NEW)
    # the next question goes straight to the new server
    b = w.resolve("nope.example.com.")
    assert b.rcode == NX and w.last_queries <= 4


# A8: after A5's re-delegation, a run of further questions: servers found lame for the zone
# (REFUSED, upward referral) are remembered (Unbound's infra cache lame marking, infra-host-ttl
# 900 s) instead of being asked again by every question for the NS set's whole TTL.
@qmin
@pytest.mark.parametrize("kind", ["refused", "upward"])
def test_a08_lame_old_servers_are_not_asked_by_every_later_question(qmin: bool, kind: str) -> None:
    w = standard(qmin, EX_BASE_DAY, tlds=tld_records())
    assert texts(w.resolve("www.example.com.")) == [WWW]
    assert w.resolve("example.com.", "NS").rcode == OK
    w.clock.now += 600
    w.servers[NEW] = Auth(moved("ns3.example.com."))
    set_zone(w.servers[COM], Zone("com.", delegate("example.com.", ("ns3.example.com.", NEW))))
    lame = {"refused": refused, "upward": upward}[kind]
    w.servers[EX1] = w.servers[EX2] = lame
    mark = len(w.log)
    for i in range(8):
        w.clock.now += 10
        assert w.resolve(f"n{i}.example.com.").rcode == NX
    old = [e for e in w.log[mark:] if e[0] in (EX1, EX2)]
    assert len(old) <= 4, f"{len(old)} queries to the lame old servers over 8 questions"


# A6: NS TTL of 1 s at both sides: a sequence of questions 2 s apart keeps working and each
# costs a bounded number of queries.
@qmin
def test_a06_one_second_ns_ttl(qmin: bool) -> None:
    tlds = tld_records()
    tlds["com."] = ns1_only(1, 1)
    zone = Zone("example.com.", [*EX_DATA, *ns1_only(1, 1)])
    w, _ = internet(tlds, {EX1: Auth(zone)}, qmin=qmin)
    for i, host in enumerate(["www", "mail", "www", "mail", "nope"]):
        w.clock.now += 2
        a = w.resolve(f"{host}.example.com.")
        if host == "nope":
            assert a.rcode == NX
        else:
            assert a.rcode == OK and len(a.answer) == 1, (i, a)
        assert w.last_queries <= 5, (i, w.last_queries)


# A7: parent and child on one host, then the child moves to its own host. The old host now
# gives only the referral (to itself as seen from the cached child NS set).
@qmin
def test_a07_child_moves_off_the_parents_host(qmin: bool) -> None:
    child = [
        "example.com. 3600 NS ns1.example.com.",
        f"ns1.example.com. 3600 A {COM}",
        "www.example.com. 300 A 192.0.2.1",
    ]
    both = Auth(
        Zone("com.", delegate("example.com.", ("ns1.example.com.", COM), ttl=3600)),
        Zone("example.com.", child),
    )
    w, _ = internet({}, {COM: both}, qmin=qmin)
    assert texts(w.resolve("www.example.com.")) == [WWW]
    assert w.resolve("example.com.", "NS").rcode == OK  # child NS cached as answer, 3600
    w.clock.now += 400
    w.servers[NEW] = Auth(moved("ns1.example.com.", ttl=3600))
    set_zone(both, Zone("com.", delegate("example.com.", ("ns1.example.com.", NEW), ttl=3600)))
    a = w.resolve("www.example.com.")
    assert a.rcode == OK and texts(a) == [MOVED_WWW]
    assert w.last_queries <= 8
