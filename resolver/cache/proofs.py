"""Which DNSSEC records may travel with cached data outside the process (a dump, the shared cache).

Both carriers are untrusted on the way back in (a file someone may have edited, a Redis value
anyone with access may have written), so both accept signatures and denial proofs by the same
two rules, stated once here: an RRSIG RRset belongs to an RRset if it has its owner and class
and covers its type (RFC 4035 3.1.1); a record belongs to the proof of a negative answer if it
is an NSEC or NSEC3 RRset, or the RRSIG of one or of the SOA, inside the SOA's zone (RFC 4035
3.1.3). Nothing here says the records are genuine: that is the validator's job, which runs
again on everything these carriers bring back.
"""

from __future__ import annotations

import dns.rdatatype
import dns.rrset

_DENIAL_TYPES = frozenset({dns.rdatatype.NSEC, dns.rdatatype.NSEC3})


def signs(signatures: dns.rrset.RRset, rrset: dns.rrset.RRset) -> bool:
    """Whether `signatures` can be the RRSIGs of `rrset`: its owner and class, covering its
    type."""
    return (
        signatures.rdtype == dns.rdatatype.RRSIG
        and signatures.covers == rrset.rdtype
        and signatures.name == rrset.name
        and signatures.rdclass == rrset.rdclass
    )


def in_proof(rrset: dns.rrset.RRset, soa: dns.rrset.RRset) -> bool:
    """Whether `rrset` can be part of the proof of a denial whose SOA is `soa`."""
    if not rrset or rrset.rdclass != soa.rdclass or not rrset.name.is_subdomain(soa.name):
        return False
    if rrset.rdtype in _DENIAL_TYPES:
        return True
    if rrset.rdtype != dns.rdatatype.RRSIG:
        return False
    if rrset.covers == dns.rdatatype.SOA:
        return rrset.name == soa.name
    return rrset.covers in _DENIAL_TYPES
