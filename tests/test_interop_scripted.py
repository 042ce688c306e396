"""Interoperability: right answers from servers that misbehave as deployed ones do (no sockets).

Each test breaks some test-internet servers the way real authorities break (no AA,
recursive resolvers and interceptors in front of an address, AA referrals, upward and sideways
referrals, NXDOMAIN after a CNAME, DNAME without the CNAME, unparseable truncation, EDNS
intolerance, a dead child-side address, expired server addresses, a lost datagram, servers that
break QNAME minimisation) and drives the pure iterator through it with no sockets, asserting the
answer, the rcode, the failure's EDE code and what the resolution cost in upstream queries.
"""

from __future__ import annotations

import dataclasses

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.config import Config
from resolver.testing import Fault, TestInternet
from resolver.testing.scripted import ScriptedWorld
from resolver.testing.topology import DEEP_ZONE, DEFAULT_SERVERS, DEFAULT_ZONES
from tests.helpers import loopback_config, texts

EXAMPLE_SERVERS = ("ns1.example.test.", "ns2.example.test.")
TLDS = ("ns1.nic.test.", "ns2.nic.test.")
ROOTS = ("a.root-servers.test.", "b.root-servers.test.")
WWW = "www.example.test. 300 IN A 192.0.2.1"
MAIL = "mail.example.test. 3600 IN A 192.0.2.2"

#: EDE 22, No Reachable Authority (RFC 8914): every server of the zone was tried and none
#: answered as an authority.
NO_REACHABLE_AUTHORITY = 22

#: Upper bound on the upstream queries of a resolution in which every server misbehaves: the
#: resolver must give up after trying each server a bounded number of times, not loop.
BOUNDED = 10


def rr(text: str) -> dns.rrset.RRset:
    name, ttl, rdtype, *data = text.split()
    return dns.rrset.from_text(name, int(ttl), "IN", rdtype, " ".join(data))


def break_servers(world: ScriptedWorld, fault: Fault, names: tuple[str, ...]) -> None:
    for name in names:
        world.internet.servers[name].fault = fault


def asked(world: ScriptedWorld, names: tuple[str, ...]) -> list[tuple[str, str, bool, bool]]:
    """Every query the servers called `names` received: (name, type, tcp, edns)."""
    return [
        (q.qname.to_text().lower(), dns.rdatatype.to_text(q.qtype), q.tcp, q.edns)
        for name in names
        for q in world.internet.servers[name].queries
    ]


def with_upstream(config: Config, *, harden_glue: bool) -> Config:
    upstream = dataclasses.replace(config.upstream, harden_glue=harden_glue)
    return dataclasses.replace(config, upstream=upstream)


def cached_addresses(world: ScriptedWorld, name: str) -> set[str]:
    rrset = world.cache.get_rrset(dns.name.from_text(name), dns.rdatatype.A)
    return set() if rrset is None else {rdata.address for rdata in rrset}


# --- 1. answers without AA -----------------------------------------------------------------------


def test_answers_without_aa_are_believed_and_cached(world: ScriptedWorld) -> None:
    break_servers(world, Fault.NO_AA, EXAMPLE_SERVERS)
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [WWW]
    assert world.last_queries == 4  # priming, root, TLD, one example.test server
    again = world.resolve("www.example.test.")
    assert texts(again.answer) == [WWW]
    assert world.last_queries == 0


def test_negative_answers_without_aa_are_believed_with_the_zone_soa(world: ScriptedWorld) -> None:
    break_servers(world, Fault.NO_AA, EXAMPLE_SERVERS)
    world.resolve("www.example.test.")
    nxdomain = world.resolve("nope.example.test.")
    assert nxdomain.rcode == dns.rcode.NXDOMAIN
    assert [rrset.name.to_text() for rrset in nxdomain.authority] == ["example.test."]
    assert world.last_queries == 1
    nodata = world.resolve("www.example.test.", "MX")
    assert nodata.rcode == dns.rcode.NOERROR
    assert nodata.answer == ()
    assert [rrset.rdtype for rrset in nodata.authority] == [dns.rdatatype.SOA]
    assert world.last_queries == 1
    world.resolve("nope.example.test.")
    assert world.last_queries == 0  # the negative answer was cached


# --- 2. a recursive resolver in front of a name server address ---------------------------------


def test_a_recursive_server_is_lame_and_its_data_never_used(world: ScriptedWorld) -> None:
    recursive = world.internet.servers["ns1.example.test."]
    recursive.fault = Fault.RECURSIVE
    # Data only the recursive server says: believing any of its replies shows up here.
    recursive.inject = [("answer", rr("www.example.test. 300 A 192.0.2.99"))]
    expected = {
        ("www.example.test.", "A"): [WWW],
        ("mail.example.test.", "A"): [MAIL],
        ("text.example.test.", "TXT"): ['text.example.test. 3600 IN TXT "hello"'],
        ("a.b.c.example.test.", "A"): ["a.b.c.example.test. 3600 IN A 192.0.2.3"],
    }
    for (name, rdtype), records in expected.items():
        answer = world.resolve(name, rdtype)
        assert answer.rcode == dns.rcode.NOERROR, name
        assert texts(answer.answer) == records, name
    assert recursive.query_count >= 1  # it was tried, and not believed
    assert cached_addresses(world, "www.example.test.") == {"192.0.2.1"}
    # Every client question the recursive server got was asked of the real authority as well
    # (minimised queries may be dropped instead: the walk may go on without minimising).
    healthy = set(asked(world, ("ns2.example.test.",)))
    questions = {(name, rdtype) for name, rdtype in expected}
    for query in asked(world, ("ns1.example.test.",)):
        if query[:2] in questions:
            assert query in healthy, f"{query} was only asked of the recursive server"


@pytest.mark.parametrize("name", ["www.example.test.", "nope.example.test."])
def test_only_recursive_servers_give_servfail_with_ede_22(world: ScriptedWorld, name: str) -> None:
    break_servers(world, Fault.RECURSIVE, EXAMPLE_SERVERS)
    answer = world.resolve(name)
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is not None
    assert answer.failure.ede_code == NO_REACHABLE_AUTHORITY
    assert answer.answer == ()
    assert world.last_queries <= BOUNDED


# --- 3. an interceptor answers for every server --------------------------------------------------


@pytest.mark.parametrize(("name", "rdtype"), [("www.example.test.", "A"), ("nope.test.", "AAAA")])
def test_an_interceptor_everywhere_gives_servfail_never_nxdomain(
    world: ScriptedWorld, name: str, rdtype: str
) -> None:
    world.internet.set_fault_everywhere(Fault.INTERCEPT)
    answer = world.resolve(name, rdtype)
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is not None
    assert answer.failure.ede_code == NO_REACHABLE_AUTHORITY
    assert answer.answer == () and answer.authority == ()
    assert 1 <= world.last_queries <= BOUNDED
    assert (
        world.cache.get_negative(dns.name.from_text(name), dns.rdatatype.from_text(rdtype)) is None
    )


# --- 4. referrals with AA ------------------------------------------------------------------------


def test_referrals_with_aa_are_followed(world: ScriptedWorld) -> None:
    break_servers(world, Fault.AA_REFERRAL, TLDS)
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [WWW]
    assert world.last_queries == 4
    other = world.resolve("www.other.test.")
    assert texts(other.answer) == ["www.other.test. 120 IN A 198.51.100.1"]
    assert world.last_queries == 2  # TLD referral (with AA), then other.test's server
    assert texts(world.resolve("mail.example.test.").answer) == [MAIL]
    assert world.last_queries == 1


# --- 5. upward and sideways referrals ------------------------------------------------------------

REFERRALS_NOWHERE = [Fault.UPWARD_REFERRAL, Fault.SIDEWAYS_REFERRAL, Fault.LAME]


@pytest.mark.parametrize("fault", REFERRALS_NOWHERE)
def test_a_server_referring_upward_or_sideways_is_skipped(
    world: ScriptedWorld, fault: Fault
) -> None:
    broken = world.internet.servers["ns1.example.test."]
    broken.fault = fault
    for name, records in (
        ("www.example.test.", [WWW]),
        ("mail.example.test.", [MAIL]),
        ("a.b.c.example.test.", ["a.b.c.example.test. 3600 IN A 192.0.2.3"]),
    ):
        answer = world.resolve(name)
        assert answer.rcode == dns.rcode.NOERROR, name
        assert texts(answer.answer) == records, name
    assert broken.query_count >= 1
    nodata = world.resolve("www.example.test.", "MX")
    assert nodata.rcode == dns.rcode.NOERROR and nodata.answer == ()
    assert [rrset.rdtype for rrset in nodata.authority] == [dns.rdatatype.SOA]


@pytest.mark.parametrize("fault", REFERRALS_NOWHERE)
@pytest.mark.parametrize("name", ["www.example.test.", "nope.example.test."])
def test_only_upward_or_sideways_referrals_give_servfail(
    world: ScriptedWorld, fault: Fault, name: str
) -> None:
    break_servers(world, fault, EXAMPLE_SERVERS)
    answer = world.resolve(name)
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is not None
    assert answer.failure.ede_code == NO_REACHABLE_AUTHORITY
    assert world.last_queries <= BOUNDED
    root_ns = world.cache.get_rrset(dns.name.root, dns.rdatatype.NS)
    assert root_ns is not None
    assert {rdata.target.to_text() for rdata in root_ns} == set(ROOTS)
    sideways = dns.name.from_text("elsewhere.test.")
    assert world.cache.get_rrset(sideways, dns.rdatatype.NS) is None


# --- 6. NXDOMAIN with a CNAME to another zone ----------------------------------------------------


def test_nxdomain_after_a_cname_leaving_the_zone_is_not_believed(world: ScriptedWorld) -> None:
    break_servers(world, Fault.CNAME_NXDOMAIN, EXAMPLE_SERVERS)
    answer = world.resolve("chain.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [
        "chain.example.test. 3600 IN CNAME www.other.test.",
        "www.other.test. 120 IN A 198.51.100.1",
    ]
    assert answer.authority == ()
    other = world.internet.servers["ns1.other.test."]
    assert ("www.other.test.", "A", False, True) in asked(world, ("ns1.other.test.",))
    assert other.query_count == 1
    target = world.resolve("www.other.test.")
    assert target.rcode == dns.rcode.NOERROR
    assert world.last_queries == 0


# --- 7. DNAME ------------------------------------------------------------------------------------

DNAME_CHAIN = [
    "old.dname.test. 3600 IN DNAME example.test.",
    "www.old.dname.test. 3600 IN CNAME www.example.test.",
    WWW,
]


@pytest.mark.parametrize("fault", [Fault.NONE, Fault.DNAME_NO_CNAME])
def test_dname_answers_carry_the_dname_and_the_cname(world: ScriptedWorld, fault: Fault) -> None:
    dname_server = world.internet.servers["ns1.dname.test."]
    dname_server.fault = fault
    answer = world.resolve("www.old.dname.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == DNAME_CHAIN
    # old.dname.test. A (minimised: NODATA), then the full name
    assert [q.qname.to_text() for q in dname_server.queries] == [
        "old.dname.test.",
        "www.old.dname.test.",
    ]


@pytest.mark.parametrize("fault", [Fault.NONE, Fault.DNAME_NO_CNAME])
def test_a_cached_dname_answers_other_names_below_it(world: ScriptedWorld, fault: Fault) -> None:
    dname_server = world.internet.servers["ns1.dname.test."]
    dname_server.fault = fault
    world.resolve("www.old.dname.test.")
    before = dname_server.query_count
    answer = world.resolve("mail.old.dname.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [
        "old.dname.test. 3600 IN DNAME example.test.",
        "mail.old.dname.test. 3600 IN CNAME mail.example.test.",
        MAIL,
    ]
    assert dname_server.query_count == before
    assert world.last_queries == 1  # mail.example.test. from the example.test servers


@pytest.mark.parametrize("fault", [Fault.NONE, Fault.DNAME_NO_CNAME])
def test_dname_inside_one_zone(world: ScriptedWorld, fault: Fault) -> None:
    world.internet.servers["ns1.dname.test."].fault = fault
    answer = world.resolve("www.self.dname.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [
        "self.dname.test. 3600 IN DNAME new.dname.test.",
        "www.self.dname.test. 3600 IN CNAME www.new.dname.test.",
        "www.new.dname.test. 3600 IN A 192.0.2.55",
    ]


def test_dname_overflowing_a_name_gives_yxdomain(world: ScriptedWorld) -> None:
    answer = world.resolve(f"{'a' * 60}.{'b' * 60}.long.dname.test.")
    assert answer.rcode == dns.rcode.YXDOMAIN
    assert [rrset.rdtype for rrset in answer.answer] == [dns.rdatatype.DNAME]


# --- 8, 9. replies that do not parse or carry no question ----------------------------------------


def test_unparseable_truncated_reply_is_retried_over_tcp(world: ScriptedWorld) -> None:
    break_servers(world, Fault.UNPARSEABLE_TC, EXAMPLE_SERVERS)
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [WWW]
    sent = asked(world, EXAMPLE_SERVERS)
    assert ("www.example.test.", "A", True, True) in sent
    assert world.last_queries == 5  # priming, root, TLD, UDP, then TCP


def test_formerr_without_question_is_retried_without_edns(world: ScriptedWorld) -> None:
    break_servers(world, Fault.FORMERR_NO_QUESTION, EXAMPLE_SERVERS)
    answer = world.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [WWW]
    sent = asked(world, EXAMPLE_SERVERS)
    assert ("www.example.test.", "A", False, False) in sent
    assert world.last_queries == 5  # priming, root, TLD, with EDNS, then without


# --- 10, 11. name server addresses that are wrong or gone ----------------------------------------


def test_child_address_that_is_dead_falls_back_to_the_glue(world: ScriptedWorld) -> None:
    www = world.resolve("www.addr.test.")
    assert texts(www.answer) == ["www.addr.test. 3600 IN A 192.0.2.66"]
    # the child's own record for its server: authoritative, and pointing at nothing
    server = world.resolve("ns1.addr.test.")
    assert texts(server.answer) == ["ns1.addr.test. 3600 IN A 127.53.11.2"]
    live = world.internet.servers["ns1.addr.test."]
    before = live.query_count
    nxdomain = world.resolve("other.addr.test.")
    assert nxdomain.rcode == dns.rcode.NXDOMAIN
    assert [rrset.name.to_text() for rrset in nxdomain.authority] == ["addr.test."]
    assert world.last_queries <= BOUNDED
    nodata = world.resolve("www.addr.test.", "TXT")
    assert nodata.rcode == dns.rcode.NOERROR and nodata.answer == ()
    assert nodata.failure is None
    assert live.query_count > before  # answered by the server behind the glue address


def test_expired_server_addresses_are_learnt_again_from_the_parent(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    # The child's own address records (3600 s) replace the parent's glue (2 days)...
    for name in EXAMPLE_SERVERS:
        assert texts(world.resolve(name).answer)[0].startswith(f"{name} 3600 IN A")
    # ...and expire long before the delegation's NS set does.
    world.clock.advance(3601)
    assert world.cache.get_rrset(dns.name.from_text("example.test."), dns.rdatatype.NS)
    for name in EXAMPLE_SERVERS:
        assert not cached_addresses(world, name)
    world.internet.reset_counters()
    answer = world.resolve("mail.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [MAIL]
    assert 1 <= world.last_queries <= 4
    assert asked(world, TLDS)  # back to the parent, which gives the glue again


def test_flushed_server_addresses_are_learnt_again_from_the_parent(world: ScriptedWorld) -> None:
    world.resolve("www.example.test.")
    for name in EXAMPLE_SERVERS:
        world.cache.flush(dns.name.from_text(name))
        assert not cached_addresses(world, name)
    answer = world.resolve("mail.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == [MAIL]
    assert 1 <= world.last_queries <= 4


# --- 12. one lost datagram -----------------------------------------------------------------------


def test_a_single_lost_datagram_is_retransmitted(world: ScriptedWorld) -> None:
    only = world.internet.servers["ns1.onens.test."]
    only.drop_next = 1
    answer = world.resolve("www.onens.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == ["www.onens.test. 3600 IN A 192.0.2.67"]
    assert only.query_count == 2
    assert world.last_queries == 5  # priming, root, TLD, the lost query and its retransmission


# --- 13. QNAME minimisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rdtype", "records"),
    [("MX", ["example.test. 3600 IN MX 10 mail.example.test."]), ("TXT", [])],
)
def test_the_tld_never_sees_the_type_of_an_apex_question(
    world: ScriptedWorld, rdtype: str, records: list[str]
) -> None:
    answer = world.resolve("example.test.", rdtype)
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == records
    for query in asked(world, TLDS + ROOTS):
        assert query[1] in {"A", "NS"}, f"{query} leaks the client's type above the zone"
    assert ("example.test.", rdtype, False, True) in asked(world, EXAMPLE_SERVERS)
    assert world.last_queries == 4


@pytest.mark.parametrize("fault", [Fault.ENT_REFUSED, Fault.ENT_EMPTY, Fault.ENT_NXDOMAIN])
def test_minimised_queries_answered_badly_fall_back_to_the_full_name(
    world: ScriptedWorld, fault: Fault
) -> None:
    break_servers(world, fault, EXAMPLE_SERVERS)
    answer = world.resolve("a.b.c.example.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == ["a.b.c.example.test. 3600 IN A 192.0.2.3"]
    assert ("a.b.c.example.test.", "A", False, True) in asked(world, EXAMPLE_SERVERS)
    assert world.last_queries <= BOUNDED


# --- 14. harden_glue -----------------------------------------------------------------------------


def internet_with_out_of_zone_glue() -> TestInternet:
    """deep.test. delegates d1 to a server named in other.test., with glue the zone cannot vouch
    for (`ns.d1-host.other.test.` does not exist there): only a resolver without harden_glue can
    reach d1.deep.test."""
    zones = dict(DEFAULT_ZONES)
    zones["deep.test."] = DEEP_ZONE.replace(
        "d1                  3600 NS    ns.d1",
        "d1                  3600 NS    ns.d1-host.other.test.",
    )
    assert zones["deep.test."] != DEEP_ZONE
    internet = TestInternet(zones, DEFAULT_SERVERS)
    internet.servers["ns1.deep.test."].inject = [
        ("additional", rr("ns.d1-host.other.test. 3600 A 127.53.7.2"))
    ]
    return internet


def test_out_of_zone_glue_is_ignored_by_default() -> None:
    world = ScriptedWorld(internet_with_out_of_zone_glue(), loopback_config())
    assert world.config.upstream.harden_glue is True
    answer = world.resolve("www.d2.d1.deep.test.")
    assert answer.rcode == dns.rcode.SERVFAIL
    assert not cached_addresses(world, "ns.d1-host.other.test.")
    assert world.internet.servers["ns.d1.deep.test."].query_count == 0


def test_out_of_zone_glue_is_used_without_harden_glue() -> None:
    config = with_upstream(loopback_config(), harden_glue=False)
    world = ScriptedWorld(internet_with_out_of_zone_glue(), config)
    answer = world.resolve("www.d2.d1.deep.test.")
    assert answer.rcode == dns.rcode.NOERROR
    assert texts(answer.answer) == ["www.d2.d1.deep.test. 3600 IN A 192.0.2.77"]
    assert world.internet.servers["ns.d1.deep.test."].query_count >= 1
