"""One step of the chain of trust: a zone's DNSKEY RRset, proven by the parent's DS RRset.

The DS RRset (already validated in the parent, or a trust anchor) names the zone's entry
keys; one DS must match a DNSKEY by digest, and that key must sign the DNSKEY RRset (RFC 4035
section 5.2). One such path is enough (RFC 6840 section 5.11): a DS in an algorithm the zone
does not sign with is not an error while another DS leads to a valid signature. DS records
whose algorithm or digest type we cannot use are ignored, and a DS RRset made only of them
makes the zone insecure (RFC 4035 5.2, RFC 6840 5.2), with EDE 1 or 2. When a SHA-256 (or
stronger) DS is present, SHA-1 DS are ignored (RFC 4509 section 3), so a downgrade to a
forged SHA-1 DS buys nothing.

The result is a `KeyEntry`, what a key cache stores for the zone: the validated keys, or the
reason the zone is insecure, or a "bad key" (bogus) remembered for `bad_key_ttl` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import dns.name
import dns.rdataset
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.dnssec.budget import Budget
from resolver.dnssec.verdict import Ede, Security, Trace, Verdict
from resolver.dnssec.verify import (
    DNSSEC_PROTOCOL,
    REVOKE_FLAG,
    ZONE_FLAG,
    KeyIndex,
    algorithm_supported,
    describe_key,
    key_tag,
    verify_rrset,
)

#: DS digest types we compute (RFC 4034 SHA-1, RFC 4509 SHA-256, RFC 6605 SHA-384); GOST (3)
#: and unassigned numbers are unsupported, NULL (0) is refused.
SUPPORTED_DIGESTS = {1: "SHA1", 2: "SHA256", 4: "SHA384"}


@dataclass(frozen=True)
class KeyEntry:
    """What a key cache keeps for a zone until `expires` (absolute wall-clock seconds).

    `keys` are the zone keys usable to verify the zone's data (non-empty only when
    `verdict` is secure; revoked keys are left out, RFC 5011 2.1). An insecure entry means
    "data of this zone is not validated" (proven unsigned delegation, unsupported algorithms);
    a bogus one is a bad key: answer SERVFAIL without redoing the work until it expires.
    """

    zone: dns.name.Name
    verdict: Verdict
    keys: tuple[DNSKEY, ...]
    expires: float

    @cached_property
    def index(self) -> KeyIndex:
        """`keys` by key tag and algorithm, computed once for every RRset the entry checks."""
        return KeyIndex(self.keys)

    @property
    def is_bad(self) -> bool:
        return self.verdict.bogus

    @classmethod
    def bad(cls, zone: dns.name.Name, verdict: Verdict, now: float, budget: Budget) -> KeyEntry:
        """A "bad key" marker for a zone whose keys failed: kept for `bad_key_ttl` only."""
        return cls(zone, verdict, (), now + budget.limits.bad_key_ttl)

    @classmethod
    def insecure(cls, zone: dns.name.Name, verdict: Verdict, now: float, ttl: int) -> KeyEntry:
        """A zone proven unsigned (a no-DS proof) or signed only with what we cannot check."""
        return cls(zone, verdict, (), now + ttl)


def ds_matches(ds: DS, owner: dns.name.Name, key: DNSKEY) -> bool:
    """Whether `ds` is the digest of `key` (RFC 4034 section 5.1.4)."""
    import dns.dnssec  # lazily: dns.dnssec loads cryptography (~8 MiB), needed only when validating

    if ds.key_tag != key_tag(key) or ds.algorithm != key.algorithm:
        return False
    try:
        made = dns.dnssec.make_ds(owner, key, SUPPORTED_DIGESTS[ds.digest_type], validating=True)
    except (KeyError, dns.dnssec.DeniedByPolicy, dns.dnssec.UnsupportedAlgorithm):
        return False
    return bool(made.digest == ds.digest)


def usable_ds(ds_set: Iterable[DS], trace: Trace) -> tuple[list[DS], Ede | None]:
    """The DS records we can use, and, when there are none, why (EDE 1 or 2).

    RFC 4509 section 3: SHA-1 DS are ignored when the set holds a DS with a stronger digest
    we support (Unbound picks the favourite digest for the whole set the same way).
    """
    records = list(ds_set)
    digest_ok = [ds for ds in records if ds.digest_type in SUPPORTED_DIGESTS]
    usable = [ds for ds in digest_ok if algorithm_supported(ds.algorithm)]
    if any(ds.digest_type != 1 for ds in usable):
        dropped = [ds for ds in usable if ds.digest_type == 1]
        if dropped:
            trace.add("ignoring %d SHA-1 DS: a SHA-256/384 DS is present", len(dropped))
        usable = [ds for ds in usable if ds.digest_type != 1]
    if usable:
        return usable, None
    if digest_ok:
        return [], Ede.UNSUPPORTED_DNSKEY_ALGORITHM
    return [], Ede.UNSUPPORTED_DS_DIGEST_TYPE


def validate_dnskeys(
    zone: dns.name.Name,
    dnskeys: dns.rrset.RRset | None,
    rrsigs: Iterable[RRSIG] | dns.rdataset.Rdataset | None,
    ds_set: Iterable[DS],
    now: float,
    budget: Budget,
    trace: Trace | None = None,
    anchor_keys: Sequence[DNSKEY] = (),
    ds_ttl: int | None = None,
) -> KeyEntry:
    """The zone's validated keys, from a validated DS RRset or from trust-anchor DNSKEYs.

    `ds_set` is the parent's validated DS RRset (or the DS trust anchors); `anchor_keys` are
    DNSKEY trust anchors, trusted as they are. `ds_ttl` caps the entry's lifetime (the keys
    are only as good as the DS that vouched for them).
    """
    trace = trace or Trace()
    trace.add("validating %s DNSKEY", zone)
    ds_records = list(ds_set)
    limits = budget.limits
    if len(ds_records) > limits.max_ds_records:
        verdict = trace.verdict(
            Security.BOGUS,
            f"{zone} has {len(ds_records)} DS records, more than {limits.max_ds_records}",
            Ede.DNSSEC_BOGUS,
        )
        return KeyEntry.bad(zone, verdict, now, budget)
    usable, why_none = usable_ds(ds_records, trace)
    if not usable and not anchor_keys:
        ttl = ds_ttl if ds_ttl is not None else budget.limits.bad_key_ttl
        if not ds_records:
            verdict = trace.verdict(Security.BOGUS, f"no DS for {zone}", Ede.DNSKEY_MISSING)
            return KeyEntry.bad(zone, verdict, now, budget)
        assert why_none is not None
        verdict = trace.verdict(
            Security.INSECURE, f"{zone}: no DS with a supported algorithm and digest", why_none
        )
        return KeyEntry.insecure(zone, verdict, now, ttl)
    if dnskeys is None or dnskeys.rdtype != dns.rdatatype.DNSKEY or not len(dnskeys):
        verdict = trace.verdict(Security.BOGUS, f"no DNSKEY RRset for {zone}", Ede.DNSKEY_MISSING)
        return KeyEntry.bad(zone, verdict, now, budget)
    zone_keys = [key for key in dnskeys if isinstance(key, DNSKEY)]
    if len(zone_keys) > limits.max_dnskey_records:
        verdict = trace.verdict(
            Security.BOGUS,
            f"{zone} has {len(zone_keys)} DNSKEYs, more than {limits.max_dnskey_records}",
            Ede.DNSSEC_BOGUS,
        )
        return KeyEntry.bad(zone, verdict, now, budget)
    entry_keys = _entry_keys(zone, zone_keys, usable, anchor_keys, budget, trace)
    if not entry_keys:
        verdict = trace.verdict(
            Security.BOGUS, f"no DNSKEY of {zone} matches its DS", Ede.DNSKEY_MISSING
        )
        return KeyEntry.bad(zone, verdict, now, budget)
    verdict = verify_rrset(dnskeys, rrsigs, zone, entry_keys, now, budget, trace)
    if verdict.security is Security.INSECURE or verdict.ede is Ede.DNSKEY_MISSING:
        # The DNSKEY RRset is signed, but not by a key the DS names (RFC 4035 5.2: an
        # algorithm in the DS with no signature of it, the KSK's signature stripped).
        verdict = trace.verdict(
            Security.BOGUS, f"{zone} DNSKEY has no RRSIG by a key its DS names", Ede.RRSIGS_MISSING
        )
    if not verdict.secure:
        return KeyEntry.bad(zone, verdict, now, budget)
    ttl = verdict.ttl if verdict.ttl is not None else dnskeys.ttl
    if ds_ttl is not None:
        ttl = min(ttl, ds_ttl)
    usable_keys = tuple(key for key in zone_keys if not key.flags & REVOKE_FLAG)
    return KeyEntry(zone, verdict, usable_keys, now + ttl)


def _entry_keys(
    zone: dns.name.Name,
    zone_keys: list[DNSKEY],
    usable: list[DS],
    anchor_keys: Sequence[DNSKEY],
    budget: Budget,
    trace: Trace,
) -> list[DNSKEY]:
    """The DNSKEYs a DS (or a DNSKEY anchor) vouches for; at most `key_tag_collisions` per DS.

    The keys are indexed by tag and algorithm once, so the cost is DS + DNSKEY, not their
    product; both sets are capped by the caller (`max_ds_records`, `max_dnskey_records`)."""
    found: list[DNSKEY] = []
    anchored = {key.to_digestable() for key in anchor_keys}
    for key in zone_keys:
        if key.to_digestable() in anchored and key.flags & ZONE_FLAG:
            trace.add("DNSKEY %s is a trust anchor", describe_key(key))
            found.append(key)
    index = KeyIndex(zone_keys)  # one key-tag computation per key, not per DS x DNSKEY
    for ds in usable:
        tried = 0
        for key in index.get(ds.key_tag, ds.algorithm):
            if not key.flags & ZONE_FLAG or key.protocol != DNSSEC_PROTOCOL:
                continue
            if tried >= budget.limits.key_tag_collisions:
                trace.add("DS %d: more than %d keys share its tag", ds.key_tag, tried)
                break
            tried += 1
            if ds_matches(ds, zone, key):
                trace.add(
                    "DS %d alg %d digest %d matches DNSKEY %s",
                    ds.key_tag,
                    ds.algorithm,
                    ds.digest_type,
                    describe_key(key),
                )
                if key not in found:
                    found.append(key)
                break
        else:
            trace.add("DS %d alg %d matches no DNSKEY", ds.key_tag, ds.algorithm)
    return found
