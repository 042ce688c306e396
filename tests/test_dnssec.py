"""The pure DNSSEC library: verdicts, EDE codes, caps (counted), proofs, anchors, RFC 5011."""

from __future__ import annotations

from typing import cast

import dns.name
import dns.rdatatype
import dns.rrset
import pytest
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.dnssec import (
    Budget,
    Ede,
    KeyState,
    ManagedZone,
    Security,
    Trace,
    TrustAnchorError,
    ValidationLimits,
    Verdict,
    default_anchors,
    load_states,
    parse_trust_anchors,
    prove_no_ds,
    prove_nodata,
    prove_nxdomain,
    prove_wildcard,
    validate_dnskeys,
    verify_rrset,
)
from resolver.testing.signing import (
    DAY,
    KSK_FLAGS,
    NOW,
    ZSK_FLAGS,
    ZoneKey,
    colliding_keys,
    dnskey_rrset,
    forged,
    make_ds,
    make_key,
    nsec3_chain,
    nsec_chain,
    raw_rdata,
    rrset,
    rrsigs,
    sign,
)

N = dns.name.from_text
ZONE = N("example.")
ZSK = make_key("example.", flags=ZSK_FLAGS, seed="1")
KSK_KEY = make_key("example.", flags=KSK_FLAGS, seed="2")
A = rrset("www.example.", "A", "192.0.2.1", ttl=3600)


def verify(
    data: dns.rrset.RRset,
    *sigs: RRSIG,
    keys: tuple[ZoneKey, ...] = (ZSK,),
    now: float = NOW,
    budget: Budget | None = None,
    trace: Trace | None = None,
) -> Verdict:
    return verify_rrset(
        data, rrsigs(data, *sigs), ZONE, [k.dnskey for k in keys], now, budget or Budget(), trace
    )


# --- verify_rrset -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithm", [Algorithm.ED25519, Algorithm.ECDSAP256SHA256, Algorithm.RSASHA256]
)
def test_a_signed_rrset_is_secure_with_each_algorithm(algorithm: Algorithm) -> None:
    key = make_key("example.", algorithm, ZSK_FLAGS, seed="3")
    budget = Budget()
    verdict = verify(A, sign(A, key, "example."), keys=(key,), budget=budget)
    assert verdict.security is Security.SECURE and verdict.ede is None
    assert budget.signature_checks == 1


def test_ttl_is_the_smallest_of_ttl_original_ttl_and_time_to_expiry() -> None:
    sig = sign(A, ZSK, "example.", expiration=NOW + 600)
    assert verify(A, sig).ttl == 600
    lowered = sign(A, ZSK, "example.")
    longer = rrset("www.example.", "A", "192.0.2.1", ttl=86400)  # a TTL raised on the way
    assert verify(longer, lowered).ttl == 3600  # the original TTL in the RRSIG


def test_changed_data_is_bogus() -> None:
    sig = sign(A, ZSK, "example.")
    tampered = rrset("www.example.", "A", "192.0.2.66")
    verdict = verify(tampered, sig)
    assert verdict.security is Security.BOGUS and verdict.ede is Ede.DNSSEC_BOGUS


def test_missing_rrsig_is_ede_10_and_unknown_key_ede_9() -> None:
    assert verify(A).ede is Ede.RRSIGS_MISSING
    other = make_key("example.", flags=ZSK_FLAGS, seed="9")
    assert verify(A, sign(A, other, "example.")).ede is Ede.DNSKEY_MISSING


@pytest.mark.parametrize(
    ("now", "security", "ede"),
    [
        (NOW + 30 * DAY + 3599, Security.SECURE, None),  # inside the skew (min 3600 s)...
        (NOW + 30 * DAY + 86400 * 7, Security.BOGUS, Ede.SIGNATURE_EXPIRED),
        (NOW - 30 * DAY - 3599, Security.SECURE, None),
        (NOW - 30 * DAY - 86400 * 7, Security.BOGUS, Ede.SIGNATURE_NOT_YET_VALID),
    ],
)
def test_clock_skew_around_inception_and_expiration(
    now: int, security: Security, ede: Ede | None
) -> None:
    # 60 days of validity: the skew is a tenth, 6 days, clamped to [1 h, 1 day] -> 1 day.
    verdict = verify(A, sign(A, ZSK, "example."), now=now)
    assert (verdict.security, verdict.ede) == (security, ede)
    if security is Security.SECURE:
        assert verdict.ttl is not None and verdict.ttl >= 0


def test_skew_is_a_tenth_of_the_validity_clamped_to_the_minimum() -> None:
    sig = sign(A, ZSK, "example.", inception=NOW - 1000, expiration=NOW + 1000)
    assert verify(A, sig, now=NOW + 1000 + 3599).secure  # 200 s would be a tenth; min 3600
    assert verify(A, sig, now=NOW + 1000 + 3601).ede is Ede.SIGNATURE_EXPIRED


def test_an_unsupported_rrsig_algorithm_is_bogus_with_validated_keys() -> None:
    """Only the DS/DNSKEY level may call a zone insecure for its algorithms: with validated
    keys, an RRSIG in an algorithm we cannot check proves nothing (an algorithm downgrade)."""
    sig = cast(RRSIG, sign(A, ZSK, "example.").replace(algorithm=253))
    verdict = verify(A, sig)
    assert verdict.security is Security.BOGUS and verdict.ede is Ede.RRSIGS_MISSING
    unusable = make_key("example.", 253)
    verdict = verify(A, sig, keys=(unusable,))
    assert verdict.security is Security.INSECURE and verdict.ede is Ede.UNSUPPORTED_DNSKEY_ALGORITHM


def test_a_revoked_key_signs_only_dnskey_and_a_zone_flagless_key_nothing() -> None:
    revoked = ZSK.revoked()
    assert verify(A, sign(A, revoked, "example."), keys=(revoked,)).ede is Ede.DNSKEY_MISSING
    plain = make_key("example.", flags=0, seed="4")
    assert verify(A, sign(A, plain, "example."), keys=(plain,)).ede is Ede.DNSKEY_MISSING


def test_wildcard_expansion_is_reported_by_the_labels_field() -> None:
    wild = rrset("*.example.", "A", "192.0.2.7")
    sig = sign(wild, ZSK, "example.")
    expanded = rrset("a.b.example.", "A", "192.0.2.7")
    verdict = verify(expanded, sig)
    assert verdict.secure and verdict.wildcard == N("*.example.")
    assert verify(wild, sig).wildcard is None
    too_many = cast(RRSIG, sig.replace(labels=5))
    assert verify(expanded, too_many).bogus


def test_trace_names_each_rrsig_and_key_and_costs_nothing_when_off() -> None:
    trace = Trace(enabled=True)
    verdict = verify(A, sign(A, ZSK, "example."), trace=trace)
    assert any(f"tag {ZSK.tag}" in step for step in verdict.steps)
    assert verdict.steps[-1].startswith("secure")
    quiet = Trace()
    assert verify(A, sign(A, ZSK, "example."), trace=quiet).steps == ()
    assert quiet.steps == []


# --- caps ---------------------------------------------------------------------------------


def test_keytrap_colliding_keys_and_many_signatures_cost_at_most_the_cap() -> None:
    """50 keys sharing a tag, 50 bad signatures: 2,500 checks uncapped; 8 here."""
    keys = [collider.dnskey for collider in colliding_keys(ZSK, 50)]
    good = sign(A, ZSK, "example.")
    sigs = [forged(good, n) for n in range(50)]
    budget = Budget()
    verdict = verify_rrset(A, rrsigs(A, *sigs), ZONE, keys, NOW, budget)
    assert verdict.bogus
    assert budget.signature_checks == ValidationLimits().sig_checks_per_rrset == 8


def test_key_tag_collisions_tried_per_signature_are_capped() -> None:
    keys = [collider.dnskey for collider in colliding_keys(ZSK, 10)]
    budget = Budget(ValidationLimits(sig_checks_per_rrset=100))
    verdict = verify_rrset(
        A, rrsigs(A, sign(A, ZSK, "example.")), ZONE, [*keys, ZSK.dnskey], NOW, budget
    )
    # The real key is the 11th candidate: never reached, only 4 tried.
    assert verdict.bogus and budget.signature_checks == 4


def test_signature_checks_per_resolution_are_capped_across_rrsets() -> None:
    budget = Budget(ValidationLimits(sig_checks_per_resolution=3))
    results = [verify(A, sign(A, ZSK, "example."), budget=budget) for _ in range(5)]
    assert [r.secure for r in results] == [True, True, True, False, False]
    assert budget.signature_checks == 3
    assert "3 signature checks" in results[3].reason


# --- chain step ---------------------------------------------------------------------------


def _keyset(
    *keys: ZoneKey, signers: list[ZoneKey] | None = None
) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    data = dnskey_rrset("example.", *keys)
    sigs = [sign(data, k, "example.") for k in (signers if signers is not None else keys)]
    return data, rrsigs(data, *sigs)


def test_dnskey_set_validated_by_ds_gives_the_zone_keys() -> None:
    data, sigs = _keyset(KSK_KEY, ZSK, signers=[KSK_KEY])
    trace = Trace(enabled=True)
    entry = validate_dnskeys(
        ZONE, data, sigs, [make_ds("example.", KSK_KEY)], NOW, Budget(), trace, ds_ttl=600
    )
    assert entry.verdict.secure and set(entry.keys) == {KSK_KEY.dnskey, ZSK.dnskey}
    assert entry.expires == NOW + 600  # the DS TTL caps the keys
    assert any(f"matches DNSKEY tag {KSK_KEY.tag}" in step for step in entry.verdict.steps)


def test_ds_matching_no_dnskey_is_bogus_ede_9_and_a_bad_key_for_a_minute() -> None:
    data, sigs = _keyset(KSK_KEY, ZSK, signers=[KSK_KEY])
    entry = validate_dnskeys(
        ZONE,
        data,
        sigs,
        [make_ds("example.", make_key("example.", flags=KSK_FLAGS, seed="7"))],
        NOW,
        Budget(),
    )
    assert entry.is_bad and entry.verdict.ede is Ede.DNSKEY_MISSING
    assert entry.expires == NOW + 60


def test_dnskey_without_rrsig_is_ede_10() -> None:
    data, _ = _keyset(KSK_KEY, ZSK)
    entry = validate_dnskeys(ZONE, data, None, [make_ds("example.", KSK_KEY)], NOW, Budget())
    assert entry.is_bad and entry.verdict.ede is Ede.RRSIGS_MISSING


def test_one_valid_path_is_enough_but_a_ds_algorithm_without_signature_alone_is_bogus() -> None:
    ecdsa = make_key("example.", Algorithm.ECDSAP256SHA256, KSK_FLAGS, seed="5")
    data, sigs = _keyset(KSK_KEY, ecdsa, ZSK, signers=[KSK_KEY])  # no ECDSA signature
    both = [make_ds("example.", KSK_KEY), make_ds("example.", ecdsa)]
    assert validate_dnskeys(ZONE, data, sigs, both, NOW, Budget()).verdict.secure  # RFC 6840 5.11
    only_ecdsa = validate_dnskeys(ZONE, data, sigs, [make_ds("example.", ecdsa)], NOW, Budget())
    assert only_ecdsa.is_bad and only_ecdsa.verdict.ede is Ede.RRSIGS_MISSING


def test_unsupported_ds_digest_or_algorithm_only_is_insecure() -> None:
    data, sigs = _keyset(KSK_KEY, ZSK, signers=[KSK_KEY])
    good = make_ds("example.", KSK_KEY)
    digest_3 = cast(DS, good.replace(digest_type=3))
    entry = validate_dnskeys(ZONE, data, sigs, [digest_3], NOW, Budget())
    assert (
        entry.verdict.security is Security.INSECURE
        and entry.verdict.ede is Ede.UNSUPPORTED_DS_DIGEST_TYPE
    )
    alg_253 = cast(DS, good.replace(algorithm=253))
    entry = validate_dnskeys(ZONE, data, sigs, [alg_253], NOW, Budget())
    assert entry.verdict.security is Security.INSECURE
    assert entry.verdict.ede is Ede.UNSUPPORTED_DNSKEY_ALGORITHM
    # With a usable DS beside them, the unusable ones are simply ignored.
    assert validate_dnskeys(ZONE, data, sigs, [digest_3, good], NOW, Budget()).verdict.secure


def test_sha1_ds_is_ignored_when_a_sha256_ds_exists() -> None:
    data, sigs = _keyset(KSK_KEY, ZSK, signers=[KSK_KEY])
    sha1 = make_ds("example.", KSK_KEY, 1)
    assert validate_dnskeys(ZONE, data, sigs, [sha1], NOW, Budget()).verdict.secure
    wrong_sha256 = make_ds("example.", make_key("example.", flags=KSK_FLAGS, seed="8"))
    entry = validate_dnskeys(ZONE, data, sigs, [sha1, wrong_sha256], NOW, Budget())
    assert entry.is_bad  # RFC 4509 3: the matching SHA-1 DS does not count


def test_dnskey_trust_anchor_validates_without_ds() -> None:
    data, sigs = _keyset(KSK_KEY, ZSK, signers=[KSK_KEY])
    entry = validate_dnskeys(ZONE, data, sigs, [], NOW, Budget(), anchor_keys=[KSK_KEY.dnskey])
    assert entry.verdict.secure


# --- denial: NSEC ------------------------------------------------------------------------

NAMES = {
    "@": ["SOA", "NS", "DNSKEY"],
    "a": ["A"],
    "x.ent": ["A"],
    "*.wild": ["TXT"],
    "insecure": ["NS"],
    "secure": ["NS", "DS"],
    "alias": ["CNAME"],
}
NSEC = nsec_chain("example.", NAMES)


def test_dnspython_name_order_is_the_canonical_order_of_rfc_4034() -> None:
    ordered = [
        "example.",
        "a.example.",
        "yljkjljk.a.example.",
        "Z.a.example.",
        "zABC.a.EXAMPLE.",
        "z.example.",
        "\\001.z.example.",
        "*.z.example.",
        "\\200.z.example.",
    ]
    names = [N(text) for text in ordered]
    assert sorted(reversed(names)) == names


def test_nsec_nxdomain_needs_the_name_and_the_wildcard_denied() -> None:
    trace = Trace(enabled=True)
    verdict = prove_nxdomain(N("b.example."), ZONE, NSEC, Budget(), trace)
    assert verdict.secure, verdict.reason
    assert any("covers the wildcard *.example." in step for step in verdict.steps)
    only_name = [r for r in NSEC if r.name == N("a.example.")]
    assert prove_nxdomain(N("b.example."), ZONE, only_name, Budget()).ede is Ede.NSEC_MISSING
    assert prove_nxdomain(N("b.example."), ZONE, [], Budget()).ede is Ede.NSEC_MISSING


def test_nsec_nxdomain_for_an_existing_or_wildcard_covered_name_is_bogus() -> None:
    assert prove_nxdomain(N("ent.example."), ZONE, NSEC, Budget()).bogus  # an ENT
    assert prove_nxdomain(N("q.wild.example."), ZONE, NSEC, Budget()).bogus  # *.wild exists


def test_nsec_nodata_ent_and_wildcard_nodata() -> None:
    assert prove_nodata(N("a.example."), dns.rdatatype.MX, ZONE, NSEC, Budget()).secure
    assert prove_nodata(N("a.example."), dns.rdatatype.A, ZONE, NSEC, Budget()).bogus
    assert prove_nodata(N("alias.example."), dns.rdatatype.A, ZONE, NSEC, Budget()).bogus
    assert prove_nodata(N("ent.example."), dns.rdatatype.A, ZONE, NSEC, Budget()).secure
    wild = prove_nodata(N("q.wild.example."), dns.rdatatype.A, ZONE, NSEC, Budget(), Trace(True))
    assert wild.secure and "wildcard NODATA" in wild.reason
    # The parent's NSEC at a cut cannot deny the child's data.
    assert prove_nodata(N("insecure.example."), dns.rdatatype.A, ZONE, NSEC, Budget()).bogus


def test_nsec_no_ds_proof() -> None:
    assert prove_no_ds(N("insecure.example."), ZONE, NSEC, Budget()).security is Security.INSECURE
    assert prove_no_ds(N("secure.example."), ZONE, NSEC, Budget()).bogus  # DS bit set
    assert prove_no_ds(N("a.example."), ZONE, NSEC, Budget()).security is Security.SECURE  # no cut
    child_apex = nsec_chain("insecure.example.", {"@": ["SOA", "NS"]})
    assert prove_nodata(N("insecure.example."), dns.rdatatype.DS, ZONE, child_apex, Budget()).bogus


def test_nsec_wildcard_answer_needs_no_closer_name() -> None:
    verdict = prove_wildcard(N("q.wild.example."), N("*.wild.example."), ZONE, NSEC, Budget())
    assert verdict.secure
    assert prove_wildcard(N("a.example."), N("*.example."), ZONE, NSEC, Budget()).bogus  # a exists


# --- denial: NSEC3 -----------------------------------------------------------------------


def chain3(opt_out: bool = False) -> list[dns.rrset.RRset]:
    return nsec3_chain("example.", NAMES, salt="aabbccdd", iterations=5, opt_out=opt_out)


def test_nsec3_nxdomain_nodata_ent_wildcard_nodata() -> None:
    nsec3 = chain3()
    budget = Budget()
    assert prove_nxdomain(N("b.example."), ZONE, nsec3, budget).secure
    assert budget.nsec3_hashes == 3  # b, the apex (closest encloser), *.example.
    assert prove_nodata(N("a.example."), dns.rdatatype.MX, ZONE, nsec3, Budget()).secure
    assert prove_nodata(N("a.example."), dns.rdatatype.A, ZONE, nsec3, Budget()).bogus
    assert prove_nodata(N("ent.example."), dns.rdatatype.A, ZONE, nsec3, Budget()).secure
    assert prove_nodata(N("q.wild.example."), dns.rdatatype.A, ZONE, nsec3, Budget()).secure
    assert prove_nxdomain(N("a.example."), ZONE, nsec3, Budget()).bogus
    assert prove_nxdomain(N("b.example."), ZONE, nsec3[:1], Budget()).ede is Ede.NSEC_MISSING


def test_nsec3_wildcard_answer_and_no_ds() -> None:
    nsec3 = chain3()
    assert prove_wildcard(N("q.wild.example."), N("*.wild.example."), ZONE, nsec3, Budget()).secure
    assert prove_no_ds(N("insecure.example."), ZONE, nsec3, Budget()).security is Security.INSECURE
    assert prove_no_ds(N("secure.example."), ZONE, nsec3, Budget()).bogus


def test_nsec3_opt_out_makes_an_unsigned_delegation_insecure_not_secure() -> None:
    nsec3 = chain3(opt_out=True)  # insecure.example. has no NSEC3 at all
    verdict = prove_no_ds(N("insecure.example."), ZONE, nsec3, Budget(), Trace(True))
    assert verdict.security is Security.INSECURE and "opt-out" in verdict.reason
    nx = prove_nxdomain(N("b.example."), ZONE, nsec3, Budget())
    assert nx.security is Security.INSECURE  # the next closer lies in an opt-out span
    ds = prove_nodata(N("insecure.example."), dns.rdatatype.DS, ZONE, nsec3, Budget())
    assert ds.security is Security.INSECURE


def test_nsec3_iterations_above_the_cap_are_insecure_ede_27_without_hashing() -> None:
    nsec3 = nsec3_chain("example.", NAMES, iterations=151)
    budget = Budget()
    verdict = prove_nxdomain(N("b.example."), ZONE, nsec3, budget)
    assert verdict.security is Security.INSECURE and verdict.ede is Ede.UNSUPPORTED_NSEC3_ITERATIONS
    assert budget.nsec3_hashes == 0
    at_cap = nsec3_chain("example.", NAMES, iterations=150)
    assert prove_nxdomain(N("b.example."), ZONE, at_cap, Budget()).secure


def test_nsec3_closest_encloser_is_searched_from_the_apex_down() -> None:
    """A 120-label name under the apex: the apex, the next closer and the wildcard, 3 hashes
    (bottom-up it was one per label, 121, and a cap of 32 made it bogus)."""
    qname = N(".".join(["x"] * 120) + ".example.")
    budget = Budget(ValidationLimits(nsec3_hashes_per_response=10))
    assert prove_nxdomain(qname, ZONE, chain3(), budget).secure
    assert budget.nsec3_hashes == 3
    deep = N("q.x.ent.example.")  # closest encloser x.ent: apex, ent, x.ent, q, *.x.ent
    budget = Budget(ValidationLimits(nsec3_hashes_per_response=10))
    assert prove_nxdomain(N("p." + deep.to_text()), ZONE, chain3(), budget).secure
    assert budget.nsec3_hashes == 5


def test_nsec3_hash_cap_on_a_deep_closest_encloser() -> None:
    """An existing name 12 labels below the apex: its proof needs 12 + 3 hashes; a cap of 10
    stops it, bogus; the default (128) does not."""
    labels = [f"l{index}" for index in range(12)]
    names = {**NAMES, ".".join(labels): ["A"]}
    chain = nsec3_chain("example.", names, salt="aabbccdd", iterations=5)
    qname = N("nx." + ".".join(labels) + ".example.")
    budget = Budget(ValidationLimits(nsec3_hashes_per_response=10))
    verdict = prove_nxdomain(qname, ZONE, chain, budget)
    assert verdict.bogus and "NSEC3 hash" in verdict.reason
    assert budget.nsec3_hashes == 10
    budget = Budget()
    assert prove_nxdomain(qname, ZONE, chain, budget).secure
    assert budget.nsec3_hashes == 15


def test_nsec3_with_unknown_hash_algorithm_or_flags_is_ignored() -> None:
    unknown = nsec3_chain("example.", NAMES, algorithm=2)
    verdict = prove_nxdomain(N("b.example."), ZONE, unknown, Budget())
    assert verdict.bogus and verdict.ede is Ede.NSEC_MISSING


# --- anchors -----------------------------------------------------------------------------


def test_bundled_root_anchors_are_ksk_2017_and_ksk_2024() -> None:
    root = default_anchors().closest(N("www.example."))
    assert root is not None and root.zone == dns.name.root
    assert sorted((ds.key_tag, ds.algorithm, ds.digest_type) for ds in root.ds) == [
        (20326, 8, 2),
        (38696, 8, 2),
    ]


def test_trust_anchor_file_with_several_zones_and_multi_line_dnskey() -> None:
    text = f"""; anchors
$ORIGIN test.
example  IN DS {make_ds("example.test.", KSK_KEY).to_text()}
other.   3600 IN DNSKEY ( {KSK_KEY.dnskey.to_text()}
   )   ; a comment
"""
    anchors = parse_trust_anchors(text, "anchors.txt")
    found = anchors.closest(N("www.example.test."))
    assert found is not None and found.zone == N("example.test.") and len(found.ds) == 1
    other = anchors.closest(N("a.other."))
    assert other is not None and other.dnskeys == (KSK_KEY.dnskey,)
    assert anchors.closest(N("unrelated.")) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\n\nexample. DS 1 13 2 zz\n", "anchors.txt:3: bad DS record"),
        ("example. A 192.0.2.1\n", "anchors.txt:1: A record: a trust anchor is a DS or a DNSKEY"),
        ("example. DNSKEY ( 257 3 13\n", "anchors.txt:1: '(' never closed"),
        ("; nothing\n", "anchors.txt: no DS or DNSKEY record"),
        ("ex..ample. DS 1 13 2 abcd\n", "anchors.txt:1: bad name"),
        ("example. CH DS 1 13 2 abcd\n", "anchors.txt:1: class CH"),
    ],
)
def test_trust_anchor_file_errors_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(TrustAnchorError, match="^" + message.replace("(", r"\(")):
        parse_trust_anchors(text, "anchors.txt")


def test_negative_trust_anchors_cover_the_name_and_below_unless_a_closer_anchor() -> None:
    text = f"sub.broken. DS {make_ds('sub.broken.', KSK_KEY).to_text()}\n"
    anchors = default_anchors().with_negative([N("broken.")])
    assert anchors.is_negative(N("www.broken.")) and anchors.is_negative(N("broken."))
    assert not anchors.is_negative(N("example."))
    mixed = parse_trust_anchors(text, "x").with_negative([N("broken.")])
    assert not mixed.is_negative(N("a.sub.broken."))
    assert not anchors.without_negative([N("broken.")]).is_negative(N("www.broken."))


# --- RFC 5011 ----------------------------------------------------------------------------


def _root_keys(*keys: ZoneKey, signers: list[ZoneKey]) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    data = dnskey_rrset(".", *keys)
    return data, rrsigs(data, *[sign(data, k, ".", NOW - DAY, NOW + 400 * DAY) for k in signers])


def test_rfc5011_rollover_over_simulated_months() -> None:
    old = make_key("example.", flags=KSK_FLAGS, seed="20")
    new = make_key("example.", flags=KSK_FLAGS, seed="21")
    zsk = make_key("example.", flags=ZSK_FLAGS, seed="22")
    managed = ManagedZone(dns.name.root, [make_ds(".", old)])
    budget = Budget(ValidationLimits(sig_checks_per_resolution=10_000))
    now = NOW

    def fetch(*keys: ZoneKey, signers: list[ZoneKey]) -> list[str]:
        data, sigs = _root_keys(*keys, signers=signers)
        return managed.observe(data, sigs, now, budget)

    fetch(old, zsk, signers=[old])
    assert managed.trusted_keys() == (old.dnskey,)
    fetch(old, new, zsk, signers=[old])  # day 0: the new KSK appears
    assert managed.state_of(new.dnskey) is KeyState.ADDPEND
    for _ in range(29):
        now += DAY
        fetch(old, new, zsk, signers=[old])
    assert managed.state_of(new.dnskey) is KeyState.ADDPEND  # day 29: still held down
    now += DAY
    fetch(old, new, zsk, signers=[old])
    assert managed.state_of(new.dnskey) is KeyState.VALID
    # Save and reload in the middle.
    managed = load_states(managed.to_text(), "state")[dns.name.root]
    # The old key is revoked, signing the set itself: out at once.
    now += 10 * DAY
    fetch(old.revoked(), new, zsk, signers=[old.revoked(), new])
    assert managed.state_of(old.dnskey) is KeyState.REVOKED
    assert managed.trusted_keys() == (new.dnskey,)
    now += 31 * DAY
    fetch(new, zsk, signers=[new])
    assert managed.state_of(old.dnskey) is None  # removed after the hold-down


def test_rfc5011_ignores_keys_from_an_unsigned_set_and_forgets_a_vanished_pending_key() -> None:
    old = make_key("example.", flags=KSK_FLAGS, seed="20")
    intruder = make_key("example.", flags=KSK_FLAGS, seed="23")
    managed = ManagedZone(dns.name.root, [make_ds(".", old)])
    data, sigs = _root_keys(old, intruder, signers=[intruder])
    assert managed.observe(data, sigs, NOW, Budget()) == [
        "DNSKEY RRset not signed by a trusted key: no update"
    ]
    data, sigs = _root_keys(old, intruder, signers=[old])
    managed.observe(data, sigs, NOW, Budget())
    assert managed.state_of(intruder.dnskey) is KeyState.ADDPEND
    data, sigs = _root_keys(old, signers=[old])
    managed.observe(data, sigs, NOW + DAY, Budget())
    assert managed.state_of(intruder.dnskey) is None
    # A revoked key that did not sign the set itself is not revoked.
    data, sigs = _root_keys(old.revoked(), signers=[])
    sigs_by_other = rrsigs(data, sign(data, old, ".", NOW - DAY, NOW + 40 * DAY))
    managed.observe(data, sigs_by_other, NOW + 2 * DAY, Budget())
    assert managed.state_of(old.dnskey) is not KeyState.REVOKED


def test_rfc5011_state_file_errors_name_the_line() -> None:
    with pytest.raises(ValueError, match="state:2: unknown state 'Bogus'"):
        load_states("; header\n. Bogus 0 257 3 15 abcd\n", "state")


def test_raw_rdata_helper() -> None:
    assert raw_rdata("A", "192.0.2.1").to_text() == "192.0.2.1"
