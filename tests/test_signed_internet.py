"""The signed test internet is what it says: each good zone validates from the root's trust
anchor with dnspython's own `validate`, each broken zone is broken in exactly its intended
way, and the authorities send RRSIGs and denial proofs for DO=1 and nothing DNSSEC without it."""

from __future__ import annotations

import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from resolver.testing import TestInternet
from resolver.testing.signed_topology import (
    KEYTRAP_KEYS,
    KEYTRAP_SIGNATURES,
    trust_anchor_rrset,
    trust_anchor_text,
)

ZONES = "127.53.100.3"
NOW = time.time()


@pytest.fixture(scope="module")
def signed() -> TestInternet:
    return TestInternet.signed()


def zone(internet: TestInternet, origin: str) -> dns.zone.Zone:
    return internet.zones[dns.name.from_text(origin)]


def rrset(
    internet: TestInternet,
    name: str,
    rdtype: dns.rdatatype.RdataType,
    covers: dns.rdatatype.RdataType = dns.rdatatype.NONE,
) -> dns.rrset.RRset:
    """An RRset from the zone that holds it: the parent's for DS (and a DS's RRSIG)."""
    owner = dns.name.from_text(name)
    origin = _origin_of(internet, owner)
    if dns.rdatatype.DS in (rdtype, covers) and origin == owner:
        origin = owner.parent()
    found = internet.zones[origin].get_rrset(owner, rdtype, covers)
    assert found is not None, (name, rdtype, covers)
    return found


def _origin_of(internet: TestInternet, name: dns.name.Name) -> dns.name.Name:
    return max((o for o in internet.zones if name.is_subdomain(o)), key=len)


def keys_of(internet: TestInternet, origin: str) -> dns.rrset.RRset:
    return rrset(internet, origin, dns.rdatatype.DNSKEY)


Keys = dict[dns.name.Name, dns.rdataset.Rdataset | dns.node.Node]


def key_map(internet: TestInternet, *origins: str) -> Keys:
    """The DNSKEY sets of `origins`, as dnspython's `validate` takes them."""
    return {dns.name.from_text(o): keys_of(internet, o).to_rdataset() for o in origins}


def validate(
    internet: TestInternet, name: str, rdtype: dns.rdatatype.RdataType, origin: str
) -> None:
    """dnspython's validation of (name, rdtype) with the zone's own DNSKEY set."""
    data = rrset(internet, name, rdtype)
    sigs = rrset(internet, name, dns.rdatatype.RRSIG, rdtype)
    dns.dnssec.validate(data, sigs, key_map(internet, origin), now=NOW)


def ds_matches(internet: TestInternet, origin: str) -> bool:
    """Whether some DS of the parent matches some DNSKEY of the zone (digest recomputed)."""
    name = dns.name.from_text(origin)
    ds = internet.zones[name.parent()].get_rrset(name, dns.rdatatype.DS)
    assert ds is not None
    for record in ds:
        for key in keys_of(internet, origin):
            try:
                made = dns.dnssec.make_ds(name, key, record.digest_type)
            except (dns.dnssec.UnsupportedAlgorithm, ValueError):
                continue
            if made == record:
                return True
    return False


GOOD = ["sec.", "nsec.sec.", "nsec3.sec.", "rsa.sec.", "optout.sec."]


def test_the_chain_of_trust_holds_from_the_anchor(signed: TestInternet) -> None:
    root_keys = keys_of(signed, ".")
    assert trust_anchor_rrset()[0] in root_keys
    dns.dnssec.validate(
        root_keys,
        rrset(signed, ".", dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY),
        {dns.name.root: trust_anchor_rrset()},
        now=NOW,
    )
    for origin in GOOD:
        assert ds_matches(signed, origin), origin
        validate(signed, origin, dns.rdatatype.DNSKEY, origin)
        parent = dns.name.from_text(origin).parent().to_text()
        validate(signed, origin, dns.rdatatype.DS, parent)
        if origin != "sec.":
            validate(signed, f"www.{origin}", dns.rdatatype.A, origin)
    algorithms = {origin: keys_of(signed, origin)[0].algorithm for origin in GOOD}
    assert algorithms["nsec3.sec."] == 13 and algorithms["rsa.sec."] == 8
    assert algorithms["nsec.sec."] == 15


def test_the_trust_anchor_text_is_the_root_ksk(signed: TestInternet) -> None:
    text = trust_anchor_text()
    parsed = dns.rrset.from_text(".", 86400, "IN", "DNSKEY", text.split("DNSKEY", 1)[1].strip())
    assert parsed[0] in keys_of(signed, ".") and parsed[0].flags == 257


def test_the_same_keys_every_time() -> None:
    assert keys_of(TestInternet.signed(), "nsec.sec.") == keys_of(
        TestInternet.signed(), "nsec.sec."
    )


def test_unsigned_delegations_are_proved_so(signed: TestInternet) -> None:
    """unsigned.sec. has no DS, and sec.'s NSEC at the cut says so; insecure.optout.sec. is
    covered by an opt-out NSEC3 of optout.sec."""
    tld = zone(signed, "sec.")
    cut = dns.name.from_text("unsigned.sec.")
    assert tld.get_rdataset(cut, dns.rdatatype.DS) is None
    nsec = tld.get_rdataset(cut, dns.rdatatype.NSEC)
    assert nsec is not None
    reply = signed.respond(
        "127.53.100.2", dns.message.make_query("unsigned.sec.", "DS", want_dnssec=True)
    )
    assert isinstance(reply, dns.message.Message)
    proof = [r for r in reply.authority if r.rdtype == dns.rdatatype.NSEC]
    assert proof and proof[0].name == cut
    assert "DS" not in proof[0].to_text().split("NSEC", 1)[1]
    optout = signed.respond(
        ZONES, dns.message.make_query("insecure.optout.sec.", "DS", want_dnssec=True)
    )
    assert isinstance(optout, dns.message.Message)
    nsec3 = [r for r in optout.authority if r.rdtype == dns.rdatatype.NSEC3]
    assert nsec3 and all(r[0].flags & 1 for r in nsec3)  # opt-out
    assert not zone(signed, "insecure.optout.sec.").get_rdataset(
        dns.name.from_text("insecure.optout.sec."), dns.rdatatype.DNSKEY
    )


def test_do_decides_what_the_authorities_send(signed: TestInternet) -> None:
    for name, rdtype, rcode in [
        ("www.nsec.sec.", "A", dns.rcode.NOERROR),
        ("nx.nsec.sec.", "A", dns.rcode.NXDOMAIN),
        ("www.nsec3.sec.", "TXT", dns.rcode.NOERROR),
        ("x.wild.nsec3.sec.", "A", dns.rcode.NOERROR),
        ("x.wild.nsec.sec.", "AAAA", dns.rcode.NOERROR),
    ]:
        plain = wire_round_trip(
            signed.respond(ZONES, dns.message.make_query(name, rdtype, use_edns=0))
        )
        dnssec = wire_round_trip(
            signed.respond(ZONES, dns.message.make_query(name, rdtype, want_dnssec=True))
        )
        assert plain.rcode() == dnssec.rcode() == rcode, name
        dnssec_types = {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3}
        assert not any(r.rdtype in dnssec_types for r in plain.answer + plain.authority), name
        assert any(r.rdtype == dns.rdatatype.RRSIG for r in dnssec.answer + dnssec.authority)
        assert not plain.ednsflags & dns.flags.DO and dnssec.ednsflags & dns.flags.DO
        # Every RRset sent with DO=1 is signed by the zone, and validates.
        keys = key_map(signed, "nsec.sec.", "nsec3.sec.")
        for section in (dnssec.answer, dnssec.authority):
            for data in section:
                if data.rdtype == dns.rdatatype.RRSIG:
                    continue
                sigs = dnssec.find_rrset(
                    section, data.name, data.rdclass, dns.rdatatype.RRSIG, data.rdtype
                )
                dns.dnssec.validate(data, sigs, keys, now=NOW)
        if rcode == dns.rcode.NXDOMAIN or rdtype in ("TXT", "AAAA"):
            assert any(
                r.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3) for r in dnssec.authority
            )
    wildcard = wire_round_trip(
        signed.respond(ZONES, dns.message.make_query("x.wild.nsec3.sec.", "A", want_dnssec=True))
    )
    sig = wildcard.find_rrset(
        wildcard.answer,
        dns.name.from_text("x.wild.nsec3.sec."),
        dns.rdataclass.IN,
        dns.rdatatype.RRSIG,
        dns.rdatatype.A,
    )
    assert sig[0].labels == 3  # *.wild.nsec3.sec.: the expansion shows


def wire_round_trip(reply: object) -> dns.message.Message:
    """The reply as a resolver receives it (bytes parsed again)."""
    assert isinstance(reply, dns.message.Message)
    return dns.message.from_wire(reply.to_wire())


def expect_failure(internet: TestInternet, name: str, origin: str, words: str) -> None:
    """Each RRSIG of (name, A) fails dnspython's check of one signature, for `words`."""
    data = rrset(internet, name, dns.rdatatype.A)
    keys = key_map(internet, origin)
    for sig in rrset(internet, name, dns.rdatatype.RRSIG, dns.rdatatype.A):
        with pytest.raises(dns.dnssec.ValidationFailure) as failure:
            dns.dnssec.validate_rrsig(data, sig, keys, now=NOW)
        assert str(failure.value) == words


def test_expired_and_not_yet_valid(signed: TestInternet) -> None:
    assert ds_matches(signed, "expired.sec.") and ds_matches(signed, "notyet.sec.")
    expect_failure(signed, "www.expired.sec.", "expired.sec.", "expired")
    expect_failure(signed, "www.notyet.sec.", "notyet.sec.", "not yet valid")
    later = rrset(signed, "www.notyet.sec.", dns.rdatatype.RRSIG, dns.rdatatype.A)[0]
    assert later.inception > NOW


def test_data_changed_after_signing(signed: TestInternet) -> None:
    assert ds_matches(signed, "tampered.sec.")
    validate(signed, "tampered.sec.", dns.rdatatype.DNSKEY, "tampered.sec.")  # keys are fine
    expect_failure(signed, "www.tampered.sec.", "tampered.sec.", "verify failure")
    assert rrset(signed, "www.tampered.sec.", dns.rdatatype.A)[0].address == "192.0.2.99"


def test_ds_matching_no_dnskey(signed: TestInternet) -> None:
    assert not ds_matches(signed, "badds.sec.")
    validate(signed, "www.badds.sec.", dns.rdatatype.A, "badds.sec.")  # signed, but by whom?


def test_dnskey_set_without_rrsig(signed: TestInternet) -> None:
    assert ds_matches(signed, "nodnskeysig.sec.")
    apex = dns.name.from_text("nodnskeysig.sec.")
    assert (
        zone(signed, "nodnskeysig.sec.").get_rdataset(
            apex, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY
        )
        is None
    )


def test_an_algorithm_in_the_ds_without_signatures(signed: TestInternet) -> None:
    ds = rrset(signed, "missingalgo.sec.", dns.rdatatype.DS)
    assert {record.algorithm for record in ds} == {13, 15}
    used = {
        sig.algorithm
        for sig in rrset(signed, "www.missingalgo.sec.", dns.rdatatype.RRSIG, dns.rdatatype.A)
    }
    assert used == {15}
    validate(signed, "www.missingalgo.sec.", dns.rdatatype.A, "missingalgo.sec.")


def test_rrsig_missing_on_the_answer(signed: TestInternet) -> None:
    owner = dns.name.from_text("www.nosig.sec.")
    assert (
        zone(signed, "nosig.sec.").get_rdataset(owner, dns.rdatatype.RRSIG, dns.rdatatype.A) is None
    )
    reply = signed.respond(ZONES, dns.message.make_query(owner, "A", want_dnssec=True))
    assert isinstance(reply, dns.message.Message)
    assert [r.rdtype for r in reply.answer] == [dns.rdatatype.A]


def test_high_nsec3_iterations(signed: TestInternet) -> None:
    apex = dns.name.from_text("iter500.sec.")
    param = zone(signed, "iter500.sec.").get_rdataset(apex, dns.rdatatype.NSEC3PARAM)
    assert param is not None and param[0].iterations == 500
    reply = signed.respond(ZONES, dns.message.make_query("nx.iter500.sec.", "A", want_dnssec=True))
    assert isinstance(reply, dns.message.Message) and reply.rcode() == dns.rcode.NXDOMAIN
    nsec3 = [r for r in reply.authority if r.rdtype == dns.rdatatype.NSEC3]
    assert nsec3 and all(r[0].iterations == 500 for r in nsec3)
    # The owner really is the 500-iteration hash of a name of the zone.
    hashed = dns.dnssec.nsec3_hash(apex, param[0].salt, 500, 1).lower()
    assert any(r.name.labels[0].decode() == hashed for r in nsec3)


def test_only_an_unsupported_algorithm_and_an_unknown_digest(signed: TestInternet) -> None:
    keys = keys_of(signed, "unknownalgo.sec.")
    assert {key.algorithm for key in keys} == {100}
    ds = rrset(signed, "unknownalgo.sec.", dns.rdatatype.DS)
    assert {(record.algorithm, record.digest_type) for record in ds} == {(100, 2)}
    assert ds_matches(signed, "unknownalgo.sec.")  # the DS is right; the algorithm is unknown
    with pytest.raises((dns.dnssec.ValidationFailure, dns.dnssec.UnsupportedAlgorithm)):
        validate(signed, "www.unknownalgo.sec.", dns.rdatatype.A, "unknownalgo.sec.")
    digest = rrset(signed, "unknowndigest.sec.", dns.rdatatype.DS)
    assert {record.digest_type for record in digest} == {100}
    validate(signed, "www.unknowndigest.sec.", dns.rdatatype.A, "unknowndigest.sec.")


def test_keytrap_keys_collide_and_no_signature_verifies(signed: TestInternet) -> None:
    keys = keys_of(signed, "keytrap.sec.")
    tags = {dns.dnssec.key_id(key) for key in keys}
    assert len(keys) == KEYTRAP_KEYS and len(tags) == 1
    sigs = rrset(signed, "www.keytrap.sec.", dns.rdatatype.RRSIG, dns.rdatatype.A)
    assert len(sigs) == KEYTRAP_SIGNATURES and {sig.key_tag for sig in sigs} == tags
    assert ds_matches(signed, "keytrap.sec.")
    validate(signed, "keytrap.sec.", dns.rdatatype.DNSKEY, "keytrap.sec.")  # the key set is fine
    # dnspython tries every key with a matching tag for every signature: the KeyTrap cost.
    zone_keys = key_map(signed, "keytrap.sec.")
    for sig in sigs:
        candidates = dns.dnssec._find_candidate_keys(zone_keys, sig)
        assert candidates is not None and len(candidates) == KEYTRAP_KEYS
    expect_failure(signed, "www.keytrap.sec.", "keytrap.sec.", "verify failure")
