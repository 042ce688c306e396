"""Authenticated denial of existence: one entry point per kind of proof, NSEC or NSEC3.

The caller has verified the signature of every NSEC/NSEC3 RRset it passes (with
`verify_rrset` and the keys of `zone`, the RRSIG's signer) and knows which kind of answer it
holds; these functions say whether the records prove it. Whichever of NSEC and NSEC3 the
records hold is used (`nsec.py`, `nsec3.py`); none at all is bogus with EDE 12 (NSEC Missing).

- `prove_nxdomain`: the name does not exist, nor a wildcard that would cover it (insecure
  when the next closer name lies in an NSEC3 opt-out span);
- `prove_nodata`: the name exists (or is an empty non-terminal, or a wildcard matches) without
  the type (for DS under opt-out: insecure);
- `prove_wildcard`: a wildcard answer: no name closer to the question exists (insecure under
  opt-out);
- `prove_no_ds`: no DS at a name: insecure for an unsigned delegation, secure where there is
  no zone cut at all.

NSEC3 above the iteration limit is insecure with EDE 27; a proof past the hash cap is bogus.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.name
import dns.rdatatype
import dns.rrset

from resolver.dnssec import nsec, nsec3
from resolver.dnssec.budget import Budget, BudgetExceeded
from resolver.dnssec.verdict import Ede, Security, Trace, Verdict


def _run(
    name: dns.name.Name,
    zone: dns.name.Name,
    rrsets: Sequence[dns.rrset.RRset],
    budget: Budget,
    trace: Trace | None,
    kind: str,
    *args: object,
) -> Verdict:
    """Pick NSEC3 or NSEC, and turn a cap into a bogus verdict."""
    trace = trace or Trace()
    if not name.is_subdomain(zone):
        return trace.verdict(Security.BOGUS, f"{name} is not in the zone {zone}", Ede.DNSSEC_BOGUS)
    if any(rrset.rdtype == dns.rdatatype.NSEC3 for rrset in rrsets):
        context = nsec3.make_proof(nsec3.records(rrsets, zone, trace), zone, budget, trace)
        if isinstance(context, Verdict):
            return context
        try:
            return getattr(nsec3, kind)(name, *args, context)
        except BudgetExceeded as exceeded:
            return trace.verdict(Security.BOGUS, str(exceeded), Ede.DNSSEC_BOGUS)
    records = nsec.records(rrsets, zone)
    if not records:
        return trace.verdict(
            Security.BOGUS, f"no NSEC or NSEC3 record from {zone}", Ede.NSEC_MISSING
        )
    if kind == "prove_nxdomain":
        return nsec.prove_nxdomain(name, zone, records, trace)
    if kind == "prove_nodata":
        (qtype,) = args
        assert isinstance(qtype, int)
        return nsec.prove_nodata(name, qtype, zone, records, trace)
    if kind == "prove_wildcard":
        (wildcard,) = args
        assert isinstance(wildcard, dns.name.Name)
        return nsec.prove_wildcard(name, wildcard, records, trace)
    return nsec.prove_no_ds(name, records, trace)


def prove_nxdomain(
    qname: dns.name.Name,
    zone: dns.name.Name,
    rrsets: Sequence[dns.rrset.RRset],
    budget: Budget,
    trace: Trace | None = None,
) -> Verdict:
    """An NXDOMAIN for `qname` from `zone` is proven (RFC 4035 5.4, RFC 5155 8.4)."""
    return _run(qname, zone, rrsets, budget, trace, "prove_nxdomain")


def prove_nodata(
    qname: dns.name.Name,
    qtype: int,
    zone: dns.name.Name,
    rrsets: Sequence[dns.rrset.RRset],
    budget: Budget,
    trace: Trace | None = None,
) -> Verdict:
    """A NODATA for `qname`/`qtype` is proven (RFC 4035 5.4, RFC 5155 8.5-8.7)."""
    return _run(qname, zone, rrsets, budget, trace, "prove_nodata", int(qtype))


def prove_wildcard(
    qname: dns.name.Name,
    wildcard: dns.name.Name,
    zone: dns.name.Name,
    rrsets: Sequence[dns.rrset.RRset],
    budget: Budget,
    trace: Trace | None = None,
) -> Verdict:
    """An answer synthesised from `wildcard` (`Verdict.wildcard` of its RRset) is legitimate."""
    return _run(qname, zone, rrsets, budget, trace, "prove_wildcard", wildcard)


def prove_no_ds(
    name: dns.name.Name,
    zone: dns.name.Name,
    rrsets: Sequence[dns.rrset.RRset],
    budget: Budget,
    trace: Trace | None = None,
) -> Verdict:
    """`name` has no DS in `zone`: INSECURE means an unsigned delegation (stop validating
    below it), SECURE means no zone cut at `name` (keep the parent's keys), BOGUS no proof."""
    return _run(name, zone, rrsets, budget, trace, "prove_no_ds")
