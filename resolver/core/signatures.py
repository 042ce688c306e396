"""Which DNSSEC records of a response go with a verdict (RFC 4035 section 3.1), for the cache.

`classify` judges a response by its data alone; when the query asked for DNSSEC records (DO=1)
`attach` then picks, from the same in-bailiwick sections, the RRSIGs of the chain's RRsets and
the NSEC/NSEC3 records (with their RRSIGs and the SOA's) that prove a denial or a wildcard
expansion. They travel with the verdict into the cache, attached to the entries they sign, and
never as RRsets of their own. Nothing here checks a signature: that is the validator's job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset

from resolver.core.classify import Classified, Kind
from resolver.core.scrub import in_bailiwick, same_name

_DENIAL_TYPES = frozenset({dns.rdatatype.NSEC, dns.rdatatype.NSEC3})
#: The RRSIGs of the authority section that belong to a denial or wildcard proof.
_PROOF_COVERS = _DENIAL_TYPES | {dns.rdatatype.SOA}


def signatures_of(
    rrset: dns.rrset.RRset, section: Iterable[dns.rrset.RRset]
) -> dns.rrset.RRset | None:
    """The RRSIG RRset in `section` that covers `rrset` (same owner, covered type), if any."""
    for candidate in section:
        if (
            candidate.rdtype == dns.rdatatype.RRSIG
            and candidate.covers == rrset.rdtype
            and same_name(candidate.name, rrset.name)
        ):
            return candidate
    return None


def denial_proof(authority: Sequence[dns.rrset.RRset]) -> tuple[dns.rrset.RRset, ...]:
    """NSEC and NSEC3 RRsets, and the RRSIGs of those and of the SOA, from an authority
    section already held to the zone's bailiwick."""
    return tuple(
        rrset
        for rrset in authority
        if rrset.rdtype in _DENIAL_TYPES
        or (rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers in _PROOF_COVERS)
    )


def attach(
    verdict: Classified,
    response: dns.message.Message,
    qname: dns.name.Name,
    qtype: int,
    zone: dns.name.Name,
) -> Classified:
    """`verdict` with the DNSSEC records of `response` that go with it (see the module).

    An RRSIG question is answered with every RRSIG RRset of the name (dnspython splits them by
    covered type, and `classify` takes the first): they are the data asked for.
    """
    if verdict.kind in (Kind.LAME, Kind.REFERRAL):
        return verdict
    answer = in_bailiwick(response.answer, zone)
    chain = verdict.chain
    if qtype == dns.rdatatype.RRSIG and verdict.kind is Kind.ANSWER:
        chain = tuple(
            rrset
            for rrset in answer
            if rrset.rdtype == dns.rdatatype.RRSIG and same_name(rrset.name, qname)
        )
        return replace(verdict, chain=chain)
    signatures = tuple(
        sigs for sigs in (signatures_of(rrset, answer) for rrset in chain) if sigs is not None
    )
    proof = denial_proof(in_bailiwick(response.authority, zone))
    if not signatures and not proof:
        return verdict
    return replace(verdict, signatures=signatures, proof=proof)
