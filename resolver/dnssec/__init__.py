"""DNSSEC validation as a pure library: no I/O, no clock, no trio; the time is an argument.

The iterator calls it per response, in this order (RFC 4035 section 5):

1. **Where does trust start?** `TrustAnchors.closest(name)` (`anchors.py`) gives the closest
   anchor or negative trust anchor above a name; none, or an NTA, means "do not validate"
   (indeterminate, resp. insecure). `default_anchors()` holds the IANA root KSKs;
   `parse_trust_anchors(text, source)` reads a trust-anchor file.
2. **Keys of each zone down the chain.** `validate_dnskeys(zone, dnskey_rrset, rrsigs, ds_set,
   now, budget, trace, anchor_keys=(), ds_ttl=None) -> KeyEntry` (`keys.py`), with the
   parent's validated DS RRset (or the anchor's DS / DNSKEYs). A `KeyEntry` is what a key
   cache stores until `expires`: validated keys, an insecure zone, or a bad key (bogus, for
   `bad_key_ttl`). Where the parent has no DS, `prove_no_ds(name, parent_zone, nsec_rrsets,
   budget, trace)` says INSECURE (unsigned delegation: `KeyEntry.insecure`) or SECURE (no
   zone cut there: keep the parent's keys).
3. **Each RRset of the answer.** `verify_rrset(rrset, rrsigs, zone, entry.keys, now, budget,
   trace) -> Verdict` (`verify.py`). A secure verdict's `ttl` caps the cache time
   (RFC 4035 5.3.3); its `wildcard`, when set, obliges the caller to also run
   `prove_wildcard(qname, verdict.wildcard, zone, nsec_rrsets, budget, trace)`.
4. **Negative answers.** Verify each NSEC/NSEC3 RRset with `verify_rrset`, then
   `prove_nxdomain(qname, zone, rrsets, budget, trace)` or `prove_nodata(qname, qtype, zone,
   rrsets, budget, trace)` (`denial.py`, over `nsec.py` and `nsec3.py`).
5. **The answer's status** is the weakest verdict met: any bogus -> SERVFAIL with the
   verdict's `ede`; any insecure -> no AD (an EDE 1/2/27 may be attached); else AD.

One `Budget(ValidationLimits)` (`budget.py`) per client question counts signature checks
and NSEC3 hashes against the caps; exceeding one gives a bogus verdict, never more work.
Pass `Trace(enabled=True)` to collect the human-readable steps (`Verdict.steps`) for
`resolver query --trace`; the default trace records nothing and costs nothing.
`ManagedZone` (`rfc5011.py`) follows RFC 5011 rollovers of the anchors; `ManagedAnchors`
(`managed.py`) holds one per configured zone and gives the `TrustAnchors` in force.
"""

from resolver.dnssec.anchors import (
    ROOT_ANCHORS,
    Anchor,
    TrustAnchorError,
    TrustAnchors,
    default_anchors,
    parse_trust_anchors,
)
from resolver.dnssec.budget import Budget, ValidationLimits
from resolver.dnssec.denial import prove_no_ds, prove_nodata, prove_nxdomain, prove_wildcard
from resolver.dnssec.keys import KeyEntry, validate_dnskeys
from resolver.dnssec.managed import ManagedAnchors
from resolver.dnssec.rfc5011 import (
    KeyState,
    ManagedZone,
    StateFileError,
    dump_states,
    load_states,
)
from resolver.dnssec.verdict import Ede, Security, Trace, Verdict
from resolver.dnssec.verify import algorithm_supported, verify_rrset

__all__ = [
    "ROOT_ANCHORS",
    "Anchor",
    "Budget",
    "Ede",
    "KeyEntry",
    "KeyState",
    "ManagedAnchors",
    "ManagedZone",
    "Security",
    "StateFileError",
    "Trace",
    "TrustAnchorError",
    "TrustAnchors",
    "ValidationLimits",
    "Verdict",
    "algorithm_supported",
    "default_anchors",
    "dump_states",
    "load_states",
    "parse_trust_anchors",
    "prove_no_ds",
    "prove_nodata",
    "prove_nxdomain",
    "prove_wildcard",
    "validate_dnskeys",
    "verify_rrset",
]
