"""DNSSEC validation in the iterator, against the signed test internet on a fake clock: what
a client gets (AD, rcode, EDE, CD) for every zone of it, the denial proofs, the cost of a
cold and a warm question in upstream queries and signature checks, the KeyTrap cap, NTAs,
and the trace. The same through the real daemon: tests/test_validation_live.py."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.config import DnssecConfig
from resolver.core.actions import Answer, Done, SendQuery
from resolver.core.resolution import Resolution
from resolver.core.security import Security
from resolver.engine import Client
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld, perform
from tests.helpers import signed_config


@pytest.fixture(scope="module")
def signed() -> TestInternet:
    return TestInternet.signed()


@pytest.fixture
def world(signed: TestInternet) -> ScriptedWorld:
    signed.reset_counters()
    return ScriptedWorld(signed, signed_config())


def ask(
    world: ScriptedWorld,
    name: str,
    rdtype: str = "A",
    *,
    do: bool = True,
    cd: bool = False,
    ad: bool = False,
    tcp: bool = False,
) -> dns.message.Message:
    """A client's query through the engine (packet cache first); the parsed reply."""
    query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do)
    if cd:
        query.flags |= dns.flags.CD
    if ad:
        query.flags |= dns.flags.AD
    data = world.query(query.to_wire(), Client("127.0.0.1", tcp=tcp))
    assert data is not None
    return dns.message.from_wire(data)


def edes(reply: dns.message.Message) -> list[int]:
    return [option.code for option in reply.options if isinstance(option, dns.edns.EDEOption)]


def has_ad(reply: dns.message.Message) -> bool:
    return bool(reply.flags & dns.flags.AD)


def resolve(world: ScriptedWorld, name: str, rdtype: str = "A") -> tuple[Answer, Resolution]:
    """One resolution driven by hand, so its signature checks can be counted."""
    resolution = Resolution(
        dns.name.from_text(name), dns.rdatatype.from_text(rdtype), world.context
    )
    action = resolution.next_action()
    while isinstance(action, SendQuery):
        action = resolution.receive(perform(world.internet, action))
    assert isinstance(action, Done)
    return action.answer, resolution


@pytest.mark.parametrize("zone", ["nsec.sec.", "nsec3.sec.", "rsa.sec.", "missingalgo.sec."])
def test_secure_answers_carry_ad_for_do_or_ad_only(world: ScriptedWorld, zone: str) -> None:
    """RFC 6840 5.8. missingalgo.sec.'s DS names an algorithm it never signs with: one valid
    path is enough (RFC 6840 5.11; Unbound's default harden-algo-downgrade: no)."""
    name = f"www.{zone}"
    secure = ask(world, name)
    assert secure.rcode() == dns.rcode.NOERROR and has_ad(secure)
    assert [rrset.rdtype for rrset in secure.answer] == [dns.rdatatype.A, dns.rdatatype.RRSIG]
    assert has_ad(ask(world, name, do=False, ad=True))
    plain = ask(world, name, do=False)
    assert not has_ad(plain) and plain.answer[0][0].address == "192.0.2.1"


def test_a_cold_secure_name_costs_six_signature_checks_and_a_warm_one_none(
    world: ScriptedWorld,
) -> None:
    answer, cold = resolve(world, "www.nsec.sec.")
    assert answer.security is Security.SECURE
    # DNSKEY ., DS sec., DNSKEY sec., DS nsec.sec., DNSKEY nsec.sec., and the A RRset.
    assert cold.signature_checks == 6
    assert cold.queries_sent == 9  # 4 for the walk, 5 for the chain of trust
    again, warm = resolve(world, "www.nsec.sec.")
    assert again.security is Security.SECURE
    assert (warm.signature_checks, warm.queries_sent) == (0, 0)
    # Another name of the zone: the keys are cached, one check for its own RRset.
    other, sibling = resolve(world, "www.nsec.sec.", "AAAA")
    assert other.security is Security.SECURE
    assert (sibling.signature_checks, sibling.queries_sent) == (1, 1)


def test_validated_ttl_is_capped_by_the_signature(signed: TestInternet) -> None:
    """RFC 4035 5.3.3: never past the RRSIG's expiration (2033-05-18 here)."""
    world = ScriptedWorld(signed, signed_config())
    world.clock.now = 2_000_000_000 - 100
    answer = world.resolve("www.nsec.sec.")
    assert answer.security is Security.SECURE
    assert answer.answer[0].ttl == 100
    world.clock.advance(101)
    held = world.cache.get_signed(dns.name.from_text("www.nsec.sec."), dns.rdatatype.A)
    assert held is None


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("www.unsigned.sec.", []),
        ("www.insecure.optout.sec.", []),
        ("www.unknownalgo.sec.", [1]),
        ("www.unknowndigest.sec.", [2]),
    ],
)
def test_insecure_answers_have_no_ad(world: ScriptedWorld, name: str, codes: list[int]) -> None:
    for _ in ("cold", "from the cache"):
        reply = ask(world, name, ad=True)
        assert reply.rcode() == dns.rcode.NOERROR and not has_ad(reply)
        assert reply.answer[0][0].address == "192.0.2.1"
        assert edes(reply) == codes


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("www.expired.sec.", 7),
        ("www.notyet.sec.", 8),
        ("www.tampered.sec.", 6),
        ("www.badds.sec.", 9),
        ("www.nodnskeysig.sec.", 10),
        ("www.nosig.sec.", 10),
        # KeyTrap: EDE 9 when the DS's key lies beyond the 4 colliding keys tried, else 6
        # when the 8 signature checks of the RRset run out (the key set's order decides).
        ("www.keytrap.sec.", (6, 9)),
    ],
)
def test_broken_zones_are_servfail_with_their_ede_and_the_data_with_cd(
    world: ScriptedWorld, name: str, code: int | tuple[int, int]
) -> None:
    allowed = code if isinstance(code, tuple) else (code,)
    failed = ask(world, name)
    assert failed.rcode() == dns.rcode.SERVFAIL and not failed.answer
    assert len(edes(failed)) == 1 and edes(failed)[0] in allowed
    sent = world.engine.upstream_sent
    again = ask(world, name)  # bogus_ttl: the reason is remembered, nothing is asked again
    assert again.rcode() == dns.rcode.SERVFAIL and edes(again) == edes(failed)
    assert world.engine.upstream_sent == sent
    # RFC 4035 3.2.2: CD=1 gets the data, without AD (over TCP: keytrap's 20 RRSIGs).
    data = ask(world, name, cd=True, tcp=True)
    assert data.rcode() == dns.rcode.NOERROR and not has_ad(data)
    assert data.answer[0][0].address in ("192.0.2.1", "192.0.2.99")
    assert data.flags & dns.flags.CD


def test_bogus_data_is_validated_again_after_bogus_ttl(signed: TestInternet) -> None:
    world = ScriptedWorld(signed, signed_config(dnssec=DnssecConfig(bogus_ttl=30)))
    assert ask(world, "www.tampered.sec.").rcode() == dns.rcode.SERVFAIL
    world.clock.advance(31)
    sent = world.engine.upstream_sent
    assert ask(world, "www.tampered.sec.").rcode() == dns.rcode.SERVFAIL
    assert world.engine.upstream_sent > sent  # asked and validated again


@pytest.mark.parametrize("zone", ["nsec.sec.", "nsec3.sec."])
@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "answers"),
    [
        ("nx", "A", dns.rcode.NXDOMAIN, 0),  # NXDOMAIN
        ("www", "TXT", dns.rcode.NOERROR, 0),  # NODATA
        ("b", "A", dns.rcode.NOERROR, 0),  # an empty non-terminal
        ("x.wild", "A", dns.rcode.NOERROR, 1),  # a wildcard expansion
        ("x.wild", "AAAA", dns.rcode.NOERROR, 0),  # a wildcard NODATA
    ],
)
def test_denial_proofs_are_secure(
    world: ScriptedWorld, zone: str, name: str, rdtype: str, rcode: int, answers: int
) -> None:
    reply = ask(world, f"{name}.{zone}", rdtype)
    assert reply.rcode() == rcode and has_ad(reply), reply
    assert len([r for r in reply.answer if r.rdtype != dns.rdatatype.RRSIG]) == answers
    kinds = {rrset.rdtype for rrset in reply.authority}
    assert kinds & {dns.rdatatype.NSEC, dns.rdatatype.NSEC3}


def test_opt_out_and_high_iterations_are_insecure(world: ScriptedWorld) -> None:
    optout = ask(world, "nx.optout.sec.")
    assert optout.rcode() == dns.rcode.NXDOMAIN and not has_ad(optout) and edes(optout) == []
    iterations = ask(world, "nx.iter500.sec.")
    assert iterations.rcode() == dns.rcode.NXDOMAIN and not has_ad(iterations)
    assert edes(iterations) == [27]
    assert has_ad(ask(world, "www.iter500.sec."))  # its signed data is still secure


def test_a_cname_chain_through_an_unsigned_zone_is_not_secure(world: ScriptedWorld) -> None:
    reply = ask(world, "chain.nsec.sec.")
    assert reply.rcode() == dns.rcode.NOERROR and not has_ad(reply)
    assert [rrset.name.to_text() for rrset in reply.answer if rrset.rdtype != 46] == [
        "chain.nsec.sec.",
        "hop.unsigned.sec.",
        "back.nsec3.sec.",
    ]
    # Each link was judged on its own: the signed ones are secure in the cache.
    cache = world.cache
    first = cache.get_signed(dns.name.from_text("chain.nsec.sec."), dns.rdatatype.CNAME)
    hop = cache.get_signed(dns.name.from_text("hop.unsigned.sec."), dns.rdatatype.CNAME)
    last = cache.get_signed(dns.name.from_text("back.nsec3.sec."), dns.rdatatype.A)
    assert first is not None and first.security is Security.SECURE
    assert hop is not None and hop.security is Security.INSECURE
    assert last is not None and last.security is Security.SECURE
    assert has_ad(ask(world, "back.nsec3.sec."))


def test_keytrap_is_servfail_within_the_signature_budget(signed: TestInternet) -> None:
    world = ScriptedWorld(signed, signed_config())
    answer, resolution = resolve(world, "www.keytrap.sec.")
    assert answer.rcode == dns.rcode.SERVFAIL
    # 20 keys share one tag and 20 signatures: 400 checks unbounded. Here: the chain above
    # it (DNSKEY ., DS sec., DNSKEY sec., DS keytrap.sec.) 4; if the DS names one of the 4
    # keys tried, its key set 1 and at most
    # max_rrset_validations (8) for the A RRset.
    assert 4 <= resolution.signature_checks <= 13
    tight = ScriptedWorld(signed, signed_config(dnssec=DnssecConfig(max_resolution_validations=3)))
    capped, small = resolve(tight, "www.nsec.sec.")
    assert capped.rcode == dns.rcode.SERVFAIL and small.signature_checks == 3


def test_a_negative_trust_anchor_makes_a_broken_zone_answer(world: ScriptedWorld) -> None:
    assert ask(world, "www.expired.sec.").rcode() == dns.rcode.SERVFAIL
    assert world.engine.add_negative_trust_anchor(dns.name.from_text("expired.sec."))
    reply = ask(world, "www.expired.sec.", ad=True)
    assert reply.rcode() == dns.rcode.NOERROR and not has_ad(reply)
    assert reply.answer[0][0].address == "192.0.2.1"
    assert has_ad(ask(world, "www.nsec.sec."))  # the rest still validates
    assert world.engine.remove_negative_trust_anchor(dns.name.from_text("expired.sec."))
    assert ask(world, "www.expired.sec.").rcode() == dns.rcode.SERVFAIL


def test_forward_zones_validate_too(signed: TestInternet) -> None:
    from resolver.config import ForwardZone

    config = signed_config(forward_zones=(ForwardZone("nsec.sec.", ("127.53.100.3",)),))
    world = ScriptedWorld(signed, config)
    assert has_ad(ask(world, "www.nsec.sec."))
    tampered = signed_config(forward_zones=(ForwardZone("tampered.sec.", ("127.53.100.3",)),))
    assert ask(ScriptedWorld(signed, tampered), "www.tampered.sec.").rcode() == 2


def test_the_trace_shows_the_chain_of_trust(world: ScriptedWorld) -> None:
    lines: list[str] = []
    world.resolve("www.nsec.sec.", trace=lines.append)
    text = "\n".join(lines)
    for expected in (
        "dnssec: DNSKEY tag 40150 alg 15 (KSK) is a trust anchor",
        "dnssec: DS 52930 alg 15 digest 2 matches DNSKEY tag 52930 alg 15 (KSK)",
        "dnssec: RRSIG www.nsec.sec. A by nsec.sec. tag 52930 alg 15: verified with",
        "dnssec: verdict for www.nsec.sec. A: secure",
    ):
        assert expected in text, text
    lines.clear()
    world.resolve("nx.nsec3.sec.", trace=lines.append)
    assert any("NSEC3" in line and "dnssec:" in line for line in lines), lines
    lines.clear()
    world.resolve("www.tampered.sec.", trace=lines.append)
    assert any("does not verify" in line for line in lines), lines
    assert "SERVFAIL: DNSSEC validation failed" in lines[-1]


def test_without_validation_nothing_is_checked(signed: TestInternet) -> None:
    world = ScriptedWorld(signed, signed_config(dnssec=DnssecConfig(validate=False)))
    answer, resolution = resolve(world, "www.tampered.sec.")
    assert answer.rcode == dns.rcode.NOERROR and answer.security is Security.INDETERMINATE
    assert resolution.signature_checks == 0
