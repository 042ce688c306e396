"""Aggressive use of the validated cache (RFC 8198) and RFC 8020, on the signed test internet
with a fake clock: what a client gets (rcode, AD, the NSEC proof), how many upstream queries it
cost (none for a synthesised answer), and when the index may not be used (another range, an
NSEC3 zone, an unsigned zone, expired ranges, the setting off). Through the real daemon:
tests/test_validation_live.py. The index alone: the tests at the end."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from resolver.cache.nsecs import NsecIndex, NsecRange, ZoneSoa, canonical_key
from resolver.config import DnssecConfig
from resolver.core.aggressive import learn
from resolver.core.chain import Step
from resolver.core.security import Security
from resolver.core.work import Work
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import signed_config
from tests.test_validation import ask, has_ad


@pytest.fixture(scope="module")
def signed() -> TestInternet:
    return TestInternet.signed()


@pytest.fixture
def world(signed: TestInternet) -> ScriptedWorld:
    signed.reset_counters()
    return ScriptedWorld(signed, signed_config())


def proof_types(reply: dns.message.Message) -> list[tuple[str, str]]:
    return sorted(
        (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype)) for rrset in reply.authority
    )


def aggressive(world: ScriptedWorld) -> int:
    return world.engine.stats.aggressive_answers


def test_a_random_name_in_a_validated_nsec_range_is_nxdomain_without_asking(
    world: ScriptedWorld,
) -> None:
    first = ask(world, "nx1.nsec.sec.")
    assert first.rcode() == dns.rcode.NXDOMAIN and has_ad(first)
    sent = world.engine.upstream_sent
    # nx1 and q7z both sort between chain.nsec.sec. and *.wild.nsec.sec.
    second = ask(world, "q7z.nsec.sec.")
    assert world.engine.upstream_sent == sent
    assert second.rcode() == dns.rcode.NXDOMAIN and has_ad(second)
    assert aggressive(world) == 1
    # The proof a DO client gets: the covering NSEC, the one denying the wildcard, their
    # RRSIGs and the SOA with its RRSIG; the same records the authority sent for nx1.
    assert proof_types(second) == proof_types(first)
    nsecs = {
        (rrset.name.to_text(), rrset[0].next.to_text())
        for rrset in second.authority
        if rrset.rdtype == dns.rdatatype.NSEC
    }
    assert nsecs == {
        ("chain.nsec.sec.", "*.wild.nsec.sec."),
        ("nsec.sec.", "a.b.nsec.sec."),
    }
    # Without DO: AD only if asked for (RFC 6840 5.8), no DNSSEC records.
    plain = ask(world, "q8z.nsec.sec.", do=False, ad=True)
    assert plain.rcode() == dns.rcode.NXDOMAIN and has_ad(plain)
    assert proof_types(plain) == [("nsec.sec.", "SOA")]
    assert world.engine.upstream_sent == sent


def test_a_name_outside_the_cached_ranges_is_asked(world: ScriptedWorld) -> None:
    ask(world, "nx1.nsec.sec.")
    sent = world.engine.upstream_sent
    # zzz sorts after www.nsec.sec.: its range (www -> apex) was never seen.
    reply = ask(world, "zzz.nsec.sec.")
    assert reply.rcode() == dns.rcode.NXDOMAIN and has_ad(reply)
    assert world.engine.upstream_sent == sent + 1
    assert aggressive(world) == 0
    # ... and now that range serves too.
    ask(world, "zzy.nsec.sec.")
    assert world.engine.upstream_sent == sent + 1
    assert aggressive(world) == 1


def test_nodata_from_a_matching_nsec_and_no_synthesis_of_existing_data(
    world: ScriptedWorld,
) -> None:
    first = ask(world, "www.nsec.sec.", "TXT")
    assert first.rcode() == dns.rcode.NOERROR and not first.answer and has_ad(first)
    sent = world.engine.upstream_sent
    mx = ask(world, "www.nsec.sec.", "MX")
    assert mx.rcode() == dns.rcode.NOERROR and not mx.answer and has_ad(mx)
    assert world.engine.upstream_sent == sent
    # The NSEC at www lists AAAA: an AAAA question is never denied from it, it is asked.
    aaaa = ask(world, "www.nsec.sec.", "AAAA")
    assert [rdata.to_text() for rdata in aaaa.answer[0]] == ["2001:db8::1"]
    assert world.engine.upstream_sent > sent
    assert aggressive(world) == 1


def test_wildcard_nodata_is_synthesised_but_a_wildcard_answer_is_asked(
    world: ScriptedWorld,
) -> None:
    first = ask(world, "a.wild.nsec.sec.", "TXT")
    assert first.rcode() == dns.rcode.NOERROR and not first.answer and has_ad(first)
    sent = world.engine.upstream_sent
    other = ask(world, "other.wild.nsec.sec.", "TXT")
    assert other.rcode() == dns.rcode.NOERROR and not other.answer and has_ad(other)
    assert world.engine.upstream_sent == sent
    answer = ask(world, "other.wild.nsec.sec.", "A")
    assert [rdata.to_text() for rdata in answer.answer[0]] == ["192.0.2.40"]
    assert world.engine.upstream_sent > sent


def test_an_nsec3_zone_goes_upstream(world: ScriptedWorld) -> None:
    """NSEC3 ranges are not indexed (NSEC only): each random name is asked."""
    ask(world, "nx1.nsec3.sec.")
    sent = world.engine.upstream_sent
    reply = ask(world, "nx2.nsec3.sec.")
    assert reply.rcode() == dns.rcode.NXDOMAIN and has_ad(reply)
    assert world.engine.upstream_sent == sent + 1
    assert aggressive(world) == 0


def test_below_a_validated_nxdomain_is_nxdomain_without_asking(world: ScriptedWorld) -> None:
    """RFC 8020, shown in the NSEC3 zone where the NSEC ranges cannot answer."""
    ask(world, "nx1.nsec3.sec.")
    sent = world.engine.upstream_sent
    below = ask(world, "deep.er.nx1.nsec3.sec.")
    assert below.rcode() == dns.rcode.NXDOMAIN and has_ad(below)
    assert world.engine.upstream_sent == sent
    assert aggressive(world) == 1
    assert any(rrset.rdtype == dns.rdatatype.NSEC3 for rrset in below.authority)


def test_an_unsigned_zones_nxdomain_is_never_used_aggressively(world: ScriptedWorld) -> None:
    first = ask(world, "nx1.unsigned.sec.")
    assert first.rcode() == dns.rcode.NXDOMAIN and not has_ad(first)
    sent = world.engine.upstream_sent
    below = ask(world, "x.nx1.unsigned.sec.")
    assert below.rcode() == dns.rcode.NXDOMAIN and not has_ad(below)
    assert world.engine.upstream_sent == sent + 1
    ask(world, "nx2.unsigned.sec.")
    assert world.engine.upstream_sent == sent + 2
    assert aggressive(world) == 0
    assert len(world.context.nsecs) == 0


def test_ranges_live_no_longer_than_the_soa_minimum(world: ScriptedWorld) -> None:
    """RFC 9077: nsec.sec.'s SOA has TTL 3600 and MINIMUM 300, its NSECs TTL 300 at most."""
    ask(world, "nx1.nsec.sec.")
    world.clock.advance(200)
    sent = world.engine.upstream_sent
    reply = ask(world, "nx2.nsec.sec.")
    assert world.engine.upstream_sent == sent
    assert {rrset.ttl for rrset in reply.authority} == {100}
    world.clock.advance(101)
    reply = ask(world, "nx3.nsec.sec.")
    assert reply.rcode() == dns.rcode.NXDOMAIN and has_ad(reply)
    assert world.engine.upstream_sent > sent
    assert aggressive(world) == 1


def test_off_when_the_setting_says_so(signed: TestInternet) -> None:
    world = ScriptedWorld(signed, signed_config(dnssec=DnssecConfig(aggressive_nsec=False)))
    ask(world, "nx1.nsec.sec.")
    sent = world.engine.upstream_sent
    ask(world, "nx2.nsec.sec.")
    ask(world, "a.nx1.nsec.sec.")
    assert world.engine.upstream_sent == sent + 2
    assert len(world.context.nsecs) == 0


def test_a_negative_trust_anchor_stops_aggressive_answers(signed: TestInternet) -> None:
    world = ScriptedWorld(signed, signed_config())
    ask(world, "nx1.nsec.sec.")
    world.context.negative_trust_anchors.add(dns.name.from_text("nsec.sec."))
    sent = world.engine.upstream_sent
    reply = ask(world, "nx2.nsec.sec.")
    assert reply.rcode() == dns.rcode.NXDOMAIN and not has_ad(reply)
    assert world.engine.upstream_sent > sent


# -- the index and `learn`, without the network -------------------------------------------------

ZONE = dns.name.from_text("example.")


def _rrset(text: str) -> dns.rrset.RRset:
    owner, ttl, rdtype, rdata = text.split(" ", 3)
    return dns.rrset.from_text(owner, int(ttl), "IN", rdtype, rdata)


def _nsec(owner: str, next_name: str, expiration: int, original_ttl: int = 300) -> Step:
    """A SECURE NXDOMAIN step with one NSEC (RRSIG bytes are noise: `learn` trusts the
    validator's verdict, which the step carries)."""
    soa = _rrset("example. 3600 SOA ns.example. h.example. 1 7200 3600 1209600 300")
    nsec = _rrset(f"{owner} 600 NSEC {next_name} A RRSIG NSEC")
    sig = _rrset(
        f"{owner} 600 RRSIG NSEC 13 2 {original_ttl} {expiration} 1000000000 1 example. AAAA"
    )
    return Step(dns.rcode.NXDOMAIN, authority=soa, proof=(nsec, sig), security=Security.SECURE)


def test_learn_keeps_a_range_no_longer_than_its_rrsig_nor_the_soa_minimum(
    signed: TestInternet,
) -> None:
    world = ScriptedWorld(signed, signed_config())
    work = Work(world.context)
    now = world.clock.now
    learn(work, _nsec("a.example.", "m.example.", int(now) + 100))
    learn(work, _nsec("m.example.", "z.example.", int(now) + 10_000))
    learn(work, _nsec("z.example.", "example.", int(now) + 10_000, original_ttl=60))
    index = world.context.nsecs
    a = index.at_or_before(ZONE, dns.name.from_text("b.example."), now)
    m = index.at_or_before(ZONE, dns.name.from_text("x.example."), now)
    z = index.at_or_before(ZONE, dns.name.from_text("zz.example."), now)
    assert a is not None and a.expires == int(now) + 100  # the RRSIG expires first
    assert m is not None and m.expires == now + 300  # SOA MINIMUM < NSEC TTL 600
    assert z is not None and z.expires == now + 60  # the RRSIG's original TTL
    assert index.at_or_before(ZONE, dns.name.from_text("0.example."), now) is None
    assert index.at_or_before(ZONE, dns.name.from_text("b.example."), now + 101) is None
    # An insecure step teaches nothing.
    insecure = _nsec("c.example.", "d.example.", int(now) + 10_000)
    learn(work, Step(insecure.rcode, authority=insecure.authority, proof=insecure.proof))
    assert index.at_or_before(ZONE, dns.name.from_text("c1.example."), now) is None
    assert len(index) == 2  # m. and z.; a. was dropped when found expired


def _range(owner: str) -> tuple[ZoneSoa, dns.rrset.RRset, NsecRange]:
    soa = _rrset("example. 3600 SOA ns.example. h.example. 1 7200 3600 1209600 300")
    nsec = _rrset(f"{owner} 300 NSEC {owner} A")
    sig = _rrset(f"{owner} 300 RRSIG NSEC 13 2 300 2000000000 1000000000 1 example. AAAA")
    return ZoneSoa(soa, None, 1000.0), nsec, NsecRange(nsec, sig, 1000.0)


def test_the_index_sorts_canonically_and_evicts_the_least_recently_used() -> None:
    index = NsecIndex(3)
    for owner in ("a.example.", "B.example.", "*.z.example.", "c.example."):
        soa, nsec, rng = _range(owner)
        index.put(ZONE, soa, nsec, rng, 0.0)
    assert len(index) == 3  # a.example. went first
    assert index.at_or_before(ZONE, dns.name.from_text("a1.example."), 0.0) is None
    found = index.at_or_before(ZONE, dns.name.from_text("bz.example."), 0.0)
    assert found is not None and found.nsec.name == dns.name.from_text("B.example.")
    # RFC 4034 6.1: z.example. < *.z.example. < a.z.example. < zz.example.
    found = index.at_or_before(ZONE, dns.name.from_text("a.z.example."), 0.0)
    assert found is not None and found.nsec.name == dns.name.from_text("*.z.example.")
    assert index.zone_of(dns.name.from_text("x.y.example.")) == ZONE
    assert index.zone_of(dns.name.from_text("other.")) is None
    names = ["a.example.", "*.z.example.", "Z.example.", "zz.example.", "a.z.example.", "example."]
    parsed = [dns.name.from_text(name) for name in names]
    assert sorted(parsed, key=canonical_key) == sorted(parsed)
    assert index.flush(dns.name.from_text("z.example.")) == 1
    assert index.flush() == 2 and len(index) == 0
