"""DNSSEC plumbing, on the signed test internet and a fake clock:
DO=1 upstream (CD=1 to forwarders), RRSIGs and denial proofs kept with the cache entries they
belong to, what a client gets for DO, CD and AD, the packet cache per DO, several Extended
DNS Errors, bogus entries and negative trust anchors."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.config import Config, DnssecConfig, ForwardZone, UpstreamConfig
from resolver.configfile import ConfigError, from_mapping
from resolver.core.actions import Answer
from resolver.core.reasons import ServfailReason, ValidationNote
from resolver.core.security import Security
from resolver.engine import Client, Send
from resolver.engine.clients import Admitted
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import loopback_config, signed_config

WWW = dns.name.from_text("www.nsec.sec.")


@pytest.fixture(scope="module")
def signed() -> TestInternet:
    return TestInternet.signed()


@pytest.fixture
def world(signed: TestInternet) -> ScriptedWorld:
    signed.reset_counters()
    return ScriptedWorld(signed, signed_config())


def client_query(
    name: str, rdtype: str = "A", *, do: bool = False, cd: bool = False, ad: bool = False
) -> bytes:
    query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do)
    if cd:
        query.flags |= dns.flags.CD
    if ad:
        query.flags |= dns.flags.AD
    return query.to_wire()


def reply_of(world: ScriptedWorld, wire: bytes) -> dns.message.Message:
    data = world.query(wire)
    assert data is not None
    return dns.message.from_wire(data)


def types_in(section: list[dns.rrset.RRset]) -> list[str]:
    return [dns.rdatatype.to_text(rrset.rdtype) for rrset in section]


def sent_queries(world: ScriptedWorld, to: str | None = None) -> list[dns.message.Message]:
    """Record every upstream query the engine sends from now on (only those to `to`)."""
    seen: list[dns.message.Message] = []
    original = world.network

    def network(send: Send) -> bytes | None:
        if to is None or send.action.server.address == to:
            seen.append(send.action.query)
        return original(send)

    world.network = network  # type: ignore[method-assign]  # a scripted stand-in
    return seen


def test_upstream_queries_carry_do_only_when_validating(signed: TestInternet) -> None:
    on = ScriptedWorld(signed, signed_config())
    asked = sent_queries(on)
    on.resolve("www.nsec.sec.")
    assert asked and all(query.ednsflags & dns.flags.DO for query in asked)
    assert not any(query.flags & dns.flags.CD for query in asked)  # authorities: no CD

    off = ScriptedWorld(signed, loopback_config(dnssec=DnssecConfig(validate=False)))
    plain = sent_queries(off)
    off.resolve("www.nsec.sec.")
    assert plain and not any(query.ednsflags & dns.flags.DO for query in plain)
    # Without DO nothing DNSSEC reaches the cache.
    assert off.cache.get_signed(WWW, dns.rdatatype.A).signatures is None  # type: ignore[union-attr]  # cached just above


def test_forwarders_are_asked_with_do_and_cd(signed: TestInternet) -> None:
    """RFC 6840 5.9: a validator behind a forwarder asks with CD=1 so that it gets the data
    and validates it itself. The root server of the signed internet stands in for one."""
    config = signed_config(forward_zones=(ForwardZone("nsec.sec.", ("127.53.100.3",)),))
    world = ScriptedWorld(signed, config)
    asked = sent_queries(world, to="127.53.100.3")
    others = sent_queries(world, to="127.53.100.1")
    world.resolve("www.nsec.sec.")
    assert asked, "nothing was forwarded"
    for query in asked:
        assert query.flags & dns.flags.RD and query.flags & dns.flags.CD
        assert query.ednsflags & dns.flags.DO
    # The chain of trust above the forward zone (the root's keys, sec.'s DS) is iterated as
    # usual: no RD, no CD there.
    assert others and not any(query.flags & (dns.flags.RD | dns.flags.CD) for query in others)


def test_rrsigs_stay_with_their_rrset_in_the_cache(world: ScriptedWorld) -> None:
    world.resolve("www.nsec.sec.")
    signed = world.cache.get_signed(WWW, dns.rdatatype.A)
    assert signed is not None and signed.signatures is not None
    assert signed.signatures.covers == dns.rdatatype.A
    assert [rdata.signer for rdata in signed.signatures] == [dns.name.from_text("nsec.sec.")]
    assert signed.security is Security.SECURE  # validated once, on its way into the cache
    # Never as an RRset of its own, which could answer an RRSIG question with half the truth.
    assert world.cache.get_rrset(WWW, dns.rdatatype.RRSIG) is None
    # The TTL of the signatures ages with the data's.
    world.clock.advance(100)
    aged = world.cache.get_signed(WWW, dns.rdatatype.A)
    assert aged is not None and aged.signatures is not None
    assert aged.rrset.ttl == aged.signatures.ttl == 200


def test_do_decides_whether_rrsigs_are_sent_and_each_gets_its_own_packet(
    world: ScriptedWorld,
) -> None:
    with_do = reply_of(world, client_query("www.nsec.sec.", do=True))
    assert types_in(with_do.answer) == ["A", "RRSIG"]
    assert with_do.ednsflags & dns.flags.DO  # echoed
    assert with_do.flags & dns.flags.AD  # validated, and the client set DO
    cold = world.engine.upstream_sent

    without = reply_of(world, client_query("www.nsec.sec."))
    assert types_in(without.answer) == ["A"]
    assert not without.ednsflags & dns.flags.DO
    assert world.engine.upstream_sent == cold, "the second answer came from the cache"

    # Both are in the packet cache now, each with its own bytes.
    hits = world.engine.stats.packet_hits
    again_do = world.query(client_query("www.nsec.sec.", do=True))
    again_plain = world.query(client_query("www.nsec.sec."))
    assert world.engine.stats.packet_hits == hits + 2
    assert again_do is not None and again_plain is not None
    assert types_in(dns.message.from_wire(again_do).answer) == ["A", "RRSIG"]
    assert types_in(dns.message.from_wire(again_plain).answer) == ["A"]
    assert dns.message.from_wire(again_do).ednsflags & dns.flags.DO
    assert len(world.engine.packets) == 2


def test_a_denial_keeps_its_proof_in_the_cache(world: ScriptedWorld) -> None:
    first = reply_of(world, client_query("nx.nsec3.sec.", do=True))
    assert first.rcode() == dns.rcode.NXDOMAIN
    assert "NSEC3" in types_in(first.authority) and "RRSIG" in types_in(first.authority)
    negative = world.cache.get_negative(dns.name.from_text("nx.nsec3.sec."), dns.rdatatype.A)
    assert negative is not None
    assert {rrset.rdtype for rrset in negative.proof} == {
        dns.rdatatype.NSEC3,
        dns.rdatatype.RRSIG,
    }
    # From the record cache (packet cache emptied), the same proof; without DO, none of it.
    world.engine.packets.clear()
    sent = world.engine.upstream_sent
    again = reply_of(world, client_query("nx.nsec3.sec.", do=True))
    assert world.engine.upstream_sent == sent
    assert sorted(types_in(again.authority)) == sorted(types_in(first.authority))
    plain = reply_of(world, client_query("nx.nsec3.sec."))
    assert types_in(plain.authority) == ["SOA"]


def test_an_rrsig_question_gets_rrsigs_without_do(world: ScriptedWorld) -> None:
    """RFC 4035 3.2.1: a type asked for by name is never stripped."""
    reply = reply_of(world, client_query("www.nsec.sec.", "RRSIG"))
    assert reply.rcode() == dns.rcode.NOERROR
    covered = sorted(dns.rdatatype.to_text(rrset.covers) for rrset in reply.answer)
    assert covered == ["A", "AAAA", "NSEC"]
    # An NSEC question too, and its own signature only with DO.
    nsec = reply_of(world, client_query("www.nsec.sec.", "NSEC"))
    assert types_in(nsec.answer) == ["NSEC"]
    assert types_in(reply_of(world, client_query("www.nsec.sec.", "NSEC", do=True)).answer) == [
        "NSEC",
        "RRSIG",
    ]


def test_ad_only_for_secure_answers_to_clients_that_set_do_or_ad(world: ScriptedWorld) -> None:
    world.resolve("www.nsec.sec.")
    assert world.cache.set_security(WWW, dns.rdatatype.A, Security.SECURE)
    cases: list[tuple[dict[str, bool], bool]] = [
        ({"do": True}, True),
        ({"ad": True}, True),
        ({}, False),
        ({"cd": True}, False),
        ({"do": True, "cd": True}, True),
    ]
    for _round in ("full path", "packet cache"):
        for bits, expected in cases:
            wire = client_query("www.nsec.sec.", "A", **bits)
            reply = reply_of(world, wire)
            assert bool(reply.flags & dns.flags.AD) is expected, (bits, _round)
            assert bool(reply.flags & dns.flags.CD) is bool(bits.get("cd"))
    # An answer with one link not secure is not secure: the CNAME chain into unsigned.sec.
    world.resolve("chain.nsec.sec.")
    chain = dns.name.from_text("chain.nsec.sec.")
    assert world.cache.set_security(chain, dns.rdatatype.CNAME, Security.SECURE)
    reply = reply_of(world, client_query("chain.nsec.sec.", do=True))
    assert types_in(reply.answer) == ["CNAME", "RRSIG", "CNAME", "A", "RRSIG"]
    assert not reply.flags & dns.flags.AD


def test_bogus_entries_last_bogus_ttl_and_never_enter_the_packet_cache(
    signed: TestInternet,
) -> None:
    world = ScriptedWorld(signed, loopback_config(dnssec=DnssecConfig(bogus_ttl=30)))
    world.resolve("www.nsec.sec.")
    assert world.cache.set_security(WWW, dns.rdatatype.A, Security.BOGUS)
    world.cache.put_bogus(WWW, dns.rdatatype.A, ServfailReason.SIGNATURE_EXPIRED)
    assert world.cache.get_bogus(WWW, dns.rdatatype.A) is ServfailReason.SIGNATURE_EXPIRED
    found = world.cache.get_signed(WWW, dns.rdatatype.A)
    assert found is not None and found.security is Security.BOGUS and found.rrset.ttl == 30
    reply_of(world, client_query("www.nsec.sec.", cd=True))
    assert len(world.engine.packets) == 0
    world.clock.advance(31)
    assert world.cache.get_bogus(WWW, dns.rdatatype.A) is None
    assert world.cache.get_signed(WWW, dns.rdatatype.A) is None


def test_cd_and_plain_questions_do_not_share_a_resolution(signed: TestInternet) -> None:
    world = ScriptedWorld(signed, signed_config())
    engine = world.engine
    engine.client_query(client_query("www.nsec.sec.", cd=True), Client("127.0.0.1"))
    engine.client_query(client_query("www.nsec.sec."), Client("127.0.0.1"))
    assert engine.in_flight == 2
    engine.client_query(client_query("www.nsec.sec.", cd=True, do=True), Client("127.0.0.1"))
    assert engine.in_flight == 2  # DO does not change what is resolved: merged


@pytest.mark.parametrize(
    "reason", [reason for reason in ServfailReason if 6 <= reason.ede_code <= 12]
)
def test_each_dnssec_failure_is_sent_with_its_ede(
    world: ScriptedWorld, reason: ServfailReason
) -> None:
    wire = client_query("www.nsec.sec.", do=True)
    query = dns.message.from_wire(wire)
    handler = world.engine.clients
    reply = dns.message.from_wire(
        handler._render(handler._response(query, Answer.servfail(reason)), query, False)
    )
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert [option.code for option in reply.options] == [reason.ede_code]
    assert reply.ednsflags & dns.flags.DO


def test_several_extended_errors_in_one_answer(world: ScriptedWorld) -> None:
    """An insecure answer may carry more than one note (EDE 1 and 27 here), NOERROR."""
    wire = client_query("www.nsec.sec.")
    world.resolve("www.nsec.sec.")
    answer = Answer(
        dns.rcode.NOERROR,
        (world.cache.get_rrset(WWW, dns.rdatatype.A),),  # type: ignore[arg-type]  # cached
        notes=(ValidationNote.UNSUPPORTED_DNSKEY_ALGORITHM, ValidationNote.NSEC3_ITERATIONS),
        security=Security.INSECURE,
    )
    handler = world.engine.clients
    admitted = handler.admit(wire, "127.0.0.1", False)
    assert isinstance(admitted, Admitted)
    reply = dns.message.from_wire(handler.reply(wire, admitted, answer, False))
    assert reply.rcode() == dns.rcode.NOERROR and not reply.flags & dns.flags.AD
    codes = [option.code for option in reply.options if isinstance(option, dns.edns.EDEOption)]
    assert codes == [1, 27]
    assert len(world.engine.packets) == 0  # a reply with EDE is not a packet-cache entry


def test_negative_trust_anchors_from_config_and_at_run_time(signed: TestInternet) -> None:
    config = loopback_config(dnssec=DnssecConfig(negative_trust_anchors=("Broken.Example.",)))
    world = ScriptedWorld(signed, config)
    engine = world.engine
    broken, other = dns.name.from_text("broken.example."), dns.name.from_text("other.sec.")
    assert engine.negative_trust_anchors() == [broken]
    assert engine.add_negative_trust_anchor(other)
    assert not engine.add_negative_trust_anchor(other)
    assert world.context.negative_trust_anchors == {broken, other}
    assert engine.remove_negative_trust_anchor(broken)
    assert not engine.remove_negative_trust_anchor(broken)
    assert engine.negative_trust_anchors() == [other]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"negative_trust_anchors": ["ok.", "bad..name"]}, "dnssec.negative_trust_anchors[1]: "),
        ({"bogus_ttl": 0}, "dnssec.bogus_ttl: expected a whole number of seconds from 1"),
        ({"validate": "yes"}, "dnssec.validate: expected true or false"),
        ({"val_sig_skew_min": 90000}, "dnssec.val_sig_skew_min: must not exceed"),
        ({"nsec3_max_iteration": 1}, "dnssec.nsec3_max_iteration: unknown key (did you mean"),
    ],
)
def test_bad_dnssec_settings_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_mapping({"dnssec": table}, Config())
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_dnssec_defaults() -> None:
    dnssec = Config().dnssec
    assert dnssec.validate and dnssec.bogus_ttl == 60 and dnssec.nsec3_max_iterations == 150
    assert (dnssec.val_sig_skew_min, dnssec.val_sig_skew_max) == (3600, 86400)
    assert UpstreamConfig().edns_payload == 1232  # DO answers need EDNS: it stays on
