"""Verify one RRset against its RRSIGs with a zone's keys, within the caps.

dnspython checks one signature with one key (`dns.dnssec.validate_rrsig`); around it this
module adds what a validator needs and dnspython does not do (as Unbound's
`validator/val_sigcrypt.c` does): candidate keys matched by key tag, algorithm, signer,
zone-key flag, protocol 3 and the REVOKE bit, each tried alone and counted against the
`Budget`; a clock skew around inception and expiration (Unbound's val-sig-skew); the labels
field (a wildcard expansion is reported, the answer is not yet secure without the proof
that no closer name exists); the TTL the data may be cached for (RFC 4035 section 5.3.3);
and an RRset signed only in algorithms we cannot verify: bogus in a zone whose keys validated
(only the DS/DNSKEY level may call a zone insecure for its algorithms, RFC 6840 section 5.2;
otherwise swapping RRSIGs for unknown-algorithm noise would downgrade any answer).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Sequence

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.dnssec.budget import Budget, BudgetExceeded, ValidationLimits
from resolver.dnssec.verdict import Ede, Security, Trace, Verdict

ZONE_FLAG = 0x0100  # RFC 4034 section 2.1.1
REVOKE_FLAG = 0x0080  # RFC 5011 section 2.1
SEP_FLAG = 0x0001
DNSSEC_PROTOCOL = 3  # RFC 4034 section 2.1.2: the only valid value


#: What a signature check imports at its first use (cryptography loads its OpenSSL backend
#: and each key type's module lazily too): see `load_crypto`.
_CRYPTO_MODULES = (
    "cryptography.hazmat.backends.openssl",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.asymmetric.ed448",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "dns.dnssec",
    "dns.dnssecalgs.dsa",
    "dns.dnssecalgs.ecdsa",
    "dns.dnssecalgs.eddsa",
    "dns.dnssecalgs.rsa",
)


def load_crypto() -> None:
    """Import now everything a signature check would import at its first use.

    Imported lazily, a validating daemon would import it at its first check: after `--user`
    dropped privileges (a user that cannot read the Python installation would get a
    ModuleNotFoundError, and every answer would fail) and while a client waits.
    """
    for module in _CRYPTO_MODULES:
        importlib.import_module(module)


@functools.lru_cache(maxsize=256)
def algorithm_supported(algorithm: int) -> bool:
    """Whether we can verify signatures of this DNSKEY algorithm (RFC 8624's MUST list and more).

    RSAMD5, DSA and DSA-NSEC3-SHA1 are refused by dnspython's policy (RFC 8624 says not to
    validate them); GOST, PRIVATEDNS and unassigned numbers have no implementation.
    """
    import dns.dnssec  # lazily: dns.dnssec loads cryptography (~8 MiB), needed only when validating
    from dns.dnssecalgs import get_algorithm_cls  # lazily, as dns.dnssec

    probe = DNSKEY(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, ZONE_FLAG, DNSSEC_PROTOCOL, algorithm, b""
    )
    if not dns.dnssec.default_policy.ok_to_validate(probe):  # it reads only the algorithm
        return False
    try:
        get_algorithm_cls(algorithm)
    except dns.exception.UnsupportedAlgorithm:
        return False
    return True


def key_tag(key: DNSKEY) -> int:
    import dns.dnssec  # lazily: dns.dnssec loads cryptography (~8 MiB), needed only when validating

    return dns.dnssec.key_id(key)


def describe_key(key: DNSKEY) -> str:
    """`tag 20326 alg 8 (KSK)` for traces."""
    kind = "KSK" if key.flags & SEP_FLAG else "ZSK"
    if key.flags & REVOKE_FLAG:
        kind += ", REVOKED"
    return f"tag {key_tag(key)} alg {int(key.algorithm)} ({kind})"


def sig_skew(rrsig: RRSIG, limits: ValidationLimits) -> int:
    """Unbound's skew: a tenth of the validity period, clamped to [sig_skew_min, sig_skew_max]."""
    period = max(0, rrsig.expiration - rrsig.inception)
    return max(limits.sig_skew_min, min(limits.sig_skew_max, period // 10))


def owner_labels(name: dns.name.Name) -> int:
    """The RRSIG labels count of an owner name: no root label, no leading `*` (RFC 4034 3.1.3)."""
    count = len(name) - 1
    return count - 1 if name.is_wild() else count


def _signatures(
    rrset: dns.rrset.RRset, rrsigs: Iterable[RRSIG] | dns.rdataset.Rdataset | None
) -> list[RRSIG]:
    if rrsigs is None:
        return []
    return [
        sig
        for sig in rrsigs
        if isinstance(sig, RRSIG)
        and sig.type_covered == rrset.rdtype
        and sig.rdclass == rrset.rdclass
    ]


class KeyIndex:
    """A zone's keys by (key tag, algorithm), each tag computed once.

    Matching an RRSIG to its keys is then one dictionary lookup, not a key-tag computation per
    key per RRSIG (keys x RRSIGs, the cheap half of KeyTrap). Built once per DNSKEY set (a
    `KeyEntry` keeps its own) or once per `verify_rrset` call given a plain sequence.
    """

    def __init__(self, keys: Iterable[DNSKEY]) -> None:
        self.keys: tuple[DNSKEY, ...] = tuple(keys)
        self._by_tag: dict[tuple[int, int], list[DNSKEY]] = {}
        for key in self.keys:
            self._by_tag.setdefault((key_tag(key), int(key.algorithm)), []).append(key)

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, tag: int, algorithm: int) -> list[DNSKEY]:
        return self._by_tag.get((tag, int(algorithm)), [])

    def usable(self) -> bool:
        """Whether any key is of an algorithm we can verify."""
        return any(algorithm_supported(algorithm) for _tag, algorithm in self._by_tag)


def candidate_keys(rrsig: RRSIG, keys: KeyIndex, rdtype: int) -> list[DNSKEY]:
    """The keys that may have made this signature (RFC 4035 5.3.1; RFC 5011 2.1 for REVOKE)."""
    return [
        key
        for key in keys.get(rrsig.key_tag, rrsig.algorithm)
        if key.flags & ZONE_FLAG
        and key.protocol == DNSSEC_PROTOCOL
        and (not key.flags & REVOKE_FLAG or rdtype == dns.rdatatype.DNSKEY)
    ]


def verify_rrset(
    rrset: dns.rrset.RRset,
    rrsigs: Iterable[RRSIG] | dns.rdataset.Rdataset | None,
    zone: dns.name.Name,
    keys: Sequence[DNSKEY] | KeyIndex,
    now: float,
    budget: Budget,
    trace: Trace | None = None,
) -> Verdict:
    """Whether `rrset` is signed by one of `keys`, the validated keys of `zone`.

    Every RRSIG looked at counts, matched to a key or not, against `rrsigs_per_rrset` and the
    resolution's budget; a key set larger than `max_dnskey_records` is refused outright.

    Secure as soon as one signature verifies (RFC 4035 5.3.3, RFC 6840 5.11: one path is
    enough). Otherwise the most telling failure: RRSIGs missing (EDE 10, also when only
    signatures in algorithms we cannot verify are there: bogus, as `keys` are validated keys
    of the zone; insecure, EDE 1, only if none of `keys` is usable), no key for the
    signatures (EDE 9), expired (EDE 7) or not yet valid (EDE 8) beyond the skew, a cap
    reached or a bad signature (EDE 6).
    """
    trace = trace or Trace()
    limits = budget.limits
    name = rrset.name
    what = f"{name} {dns.rdatatype.to_text(rrset.rdtype)}"
    signatures = _signatures(rrset, rrsigs)
    if not signatures:
        return trace.verdict(Security.BOGUS, f"no RRSIG for {what}", Ede.RRSIGS_MISSING)
    if len(keys) > limits.max_dnskey_records:
        return trace.verdict(
            Security.BOGUS,
            f"{zone} has {len(keys)} DNSKEYs, more than {limits.max_dnskey_records}",
            Ede.DNSSEC_BOGUS,
        )
    index = keys if isinstance(keys, KeyIndex) else KeyIndex(keys)
    labels = owner_labels(name)
    checks = 0
    examined = 0
    failures: list[Ede] = []
    unsupported = 0
    # Signatures we can check first, so one in an unknown algorithm costs nothing.
    for rrsig in sorted(signatures, key=lambda sig: not algorithm_supported(sig.algorithm)):
        if examined >= limits.rrsigs_per_rrset:
            return trace.verdict(
                Security.BOGUS,
                f"more than {limits.rrsigs_per_rrset} RRSIGs examined for {what}",
                Ede.DNSSEC_BOGUS,
            )
        try:
            budget.charge_rrsig()
        except BudgetExceeded as exceeded:
            return trace.verdict(Security.BOGUS, str(exceeded), Ede.DNSSEC_BOGUS)
        examined += 1
        tag = f"RRSIG {what} by {rrsig.signer} tag {rrsig.key_tag} alg {int(rrsig.algorithm)}"
        if rrsig.signer != zone or not name.is_subdomain(zone):
            trace.add("%s: signer is not the zone %s, skipped", tag, zone)
            failures.append(Ede.DNSSEC_BOGUS)
            continue
        if rrsig.labels > labels:
            trace.add("%s: labels %d exceeds the owner's %d", tag, rrsig.labels, labels)
            failures.append(Ede.DNSSEC_BOGUS)
            continue
        if not algorithm_supported(rrsig.algorithm):
            trace.add("%s: algorithm %s not supported", tag, Algorithm.to_text(rrsig.algorithm))
            unsupported += 1
            continue
        skew = sig_skew(rrsig, limits)
        if now > rrsig.expiration + skew:
            trace.add("%s: expired at %d (skew %d s)", tag, rrsig.expiration, skew)
            failures.append(Ede.SIGNATURE_EXPIRED)
            continue
        if now < rrsig.inception - skew:
            trace.add("%s: not valid before %d (skew %d s)", tag, rrsig.inception, skew)
            failures.append(Ede.SIGNATURE_NOT_YET_VALID)
            continue
        candidates = candidate_keys(rrsig, index, rrset.rdtype)
        if not candidates:
            trace.add("%s: no such key in %s DNSKEY", tag, zone)
            failures.append(Ede.DNSKEY_MISSING)
            continue
        if len(candidates) > limits.key_tag_collisions:
            trace.add(
                "%s: %d keys share the tag, trying %d",
                tag,
                len(candidates),
                limits.key_tag_collisions,
            )
        # dnspython allows no skew: hand it a time inside the validity window.
        inside = min(max(now, rrsig.inception), rrsig.expiration)
        for key in candidates[: limits.key_tag_collisions]:
            if checks >= limits.sig_checks_per_rrset:
                return trace.verdict(
                    Security.BOGUS,
                    f"more than {limits.sig_checks_per_rrset} signature checks for {what}",
                    Ede.DNSSEC_BOGUS,
                )
            try:
                budget.charge_signature()
            except BudgetExceeded as exceeded:
                return trace.verdict(Security.BOGUS, str(exceeded), Ede.DNSSEC_BOGUS)
            checks += 1
            if _verifies(rrset, rrsig, key, inside):
                ttl = max(0, min(rrset.ttl, rrsig.original_ttl, int(rrsig.expiration - now)))
                wildcard = None
                if rrsig.labels < labels:
                    wildcard = dns.name.Name(("*", *name.labels[-1 - rrsig.labels :]))
                    trace.add("%s: synthesised from the wildcard %s", what, wildcard)
                trace.add("%s: verified with %s", tag, describe_key(key))
                return trace.verdict(
                    Security.SECURE, f"{what} signed by {zone}", ttl=ttl, wildcard=wildcard
                )
            trace.add("%s: does not verify with %s", tag, describe_key(key))
            failures.append(Ede.DNSSEC_BOGUS)
    if unsupported and not failures:
        if not index.usable():
            # Only reachable with a key set we cannot use at all; a zone whose keys
            # validated always holds one we can (the DS/DNSKEY level decides "insecure").
            return trace.verdict(
                Security.INSECURE,
                f"{what} signed only with unsupported algorithms",
                Ede.UNSUPPORTED_DNSKEY_ALGORITHM,
            )
        # A zone with validated keys: an RRSIG in an algorithm we cannot check proves
        # nothing, and calling it insecure would let an on-path attacker downgrade any
        # RRset by swapping its signatures for algorithm-100 noise (Unbound: bogus).
        return trace.verdict(
            Security.BOGUS,
            f"{what} has no RRSIG by a key of {zone}, only unsupported algorithms",
            Ede.RRSIGS_MISSING,
        )
    ede = _most_telling(failures)
    return trace.verdict(Security.BOGUS, f"no valid signature for {what}", ede)


def _most_telling(failures: list[Ede]) -> Ede:
    """A bad signature beats a missing key, which beats a timing error (the zone is broken)."""
    for ede in (Ede.DNSSEC_BOGUS, Ede.DNSKEY_MISSING, Ede.SIGNATURE_EXPIRED):
        if ede in failures:
            return ede
    return failures[0] if failures else Ede.DNSSEC_BOGUS


def _verifies(rrset: dns.rrset.RRset, rrsig: RRSIG, key: DNSKEY, now: float) -> bool:
    """One public-key operation: dnspython with exactly one candidate key."""
    import dns.dnssec  # lazily: dns.dnssec loads cryptography (~8 MiB), needed only when validating

    keyset = dns.rdataset.Rdataset(key.rdclass, dns.rdatatype.DNSKEY)
    keyset.add(key)
    try:
        dns.dnssec.validate_rrsig(rrset, rrsig, {rrsig.signer: keyset}, now=now)
    except (dns.dnssec.ValidationFailure, dns.exception.UnsupportedAlgorithm, ValueError):
        return False
    return True
