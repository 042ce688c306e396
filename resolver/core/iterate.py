"""Classify one upstream response: answer, CNAME to follow, referral, NXDOMAIN, NODATA, or lame.

Pure functions over dnspython messages; the resolution decides what to do with the verdict.
`classify` judges authoritative servers, `classify_recursive` the forwarders of forward zones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.core.scrub import in_bailiwick

ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


class Kind(Enum):
    ANSWER = auto()
    CNAME = auto()
    NXDOMAIN = auto()
    NODATA = auto()
    REFERRAL = auto()
    LAME = auto()


@dataclass(frozen=True)
class Classified:
    """The verdict on a response, holding only in-bailiwick records.

    `chain` is the answer-section path from the question's name through CNAMEs (ending with the
    answer itself for ANSWER); `final_name` is where that path ends, i.e. the name an NXDOMAIN
    or NODATA speaks of, or the CNAME target still to resolve.
    """

    kind: Kind
    final_name: dns.name.Name
    chain: tuple[dns.rrset.RRset, ...] = ()
    soa: dns.rrset.RRset | None = None
    delegation: dns.rrset.RRset | None = None
    glue: tuple[dns.rrset.RRset, ...] = ()


def _find(
    section: list[dns.rrset.RRset], name: dns.name.Name, rdtype: int
) -> dns.rrset.RRset | None:
    return next((r for r in section if r.name == name and r.rdtype == rdtype), None)


def _follow_chain(
    answer: list[dns.rrset.RRset], qname: dns.name.Name, qtype: int
) -> tuple[list[dns.rrset.RRset], dns.name.Name, bool]:
    """Walk qname -> CNAME -> ... through the answer; (records, where it ended, answered?)."""
    chain: list[dns.rrset.RRset] = []
    name, visited = qname, set()
    while name not in visited:
        visited.add(name)
        if qtype == dns.rdatatype.ANY:
            found = [r for r in answer if r.name == name]
            if found:
                return chain + found, name, True
        else:
            final = _find(answer, name, qtype)
            if final is not None:
                return [*chain, final], name, True
        cname = None if qtype == dns.rdatatype.CNAME else _find(answer, name, dns.rdatatype.CNAME)
        if cname is None:
            break
        chain.append(cname)
        name = cname[0].target
    return chain, name, False


def _negative_soa(authority: list[dns.rrset.RRset], name: dns.name.Name) -> dns.rrset.RRset | None:
    return next(
        (r for r in authority if r.rdtype == dns.rdatatype.SOA and name.is_subdomain(r.name)),
        None,
    )


def glue_for(
    ns: dns.rrset.RRset, additional: list[dns.rrset.RRset], zone: dns.name.Name
) -> tuple[dns.rrset.RRset, ...]:
    """Addresses of the NS names, only where the zone's servers may speak for them."""
    targets = {rdata.target for rdata in ns}
    return tuple(
        r for r in in_bailiwick(additional, zone) if r.rdtype in ADDRESS_TYPES and r.name in targets
    )


def classify(
    response: dns.message.Message, qname: dns.name.Name, qtype: int, zone: dns.name.Name
) -> Classified:
    """Judge a NOERROR/NXDOMAIN response from a server asked as authoritative for `zone`."""
    answer = in_bailiwick(response.answer, zone)
    authority = in_bailiwick(response.authority, zone)
    authoritative = bool(response.flags & dns.flags.AA)
    chain, final_name, answered = _follow_chain(answer, qname, qtype)
    if not authoritative and chain:
        # Answer data without AA comes from a server that is not authoritative: a lame one.
        return Classified(Kind.LAME, qname)
    if response.rcode() == dns.rcode.NXDOMAIN:
        soa = _negative_soa(authority, final_name)
        return Classified(Kind.NXDOMAIN, final_name, tuple(chain), soa=soa)
    if answered:
        glue: tuple[dns.rrset.RRset, ...] = ()
        if chain[-1].rdtype == dns.rdatatype.NS:
            glue = glue_for(chain[-1], response.additional, zone)
        return Classified(Kind.ANSWER, final_name, tuple(chain), glue=glue)
    if chain:
        return Classified(Kind.CNAME, final_name, tuple(chain))
    delegation = next(
        (
            r
            for r in authority
            if r.rdtype == dns.rdatatype.NS and r.name != zone and final_name.is_subdomain(r.name)
        ),
        None,
    )
    if delegation is not None and not authoritative:
        glue = glue_for(delegation, response.additional, zone)
        return Classified(Kind.REFERRAL, final_name, delegation=delegation, glue=glue)
    soa = _negative_soa(authority, final_name)
    if authoritative or soa is not None:
        return Classified(Kind.NODATA, final_name, soa=soa)
    return Classified(Kind.LAME, final_name)


def classify_recursive(
    response: dns.message.Message, qname: dns.name.Name, qtype: int
) -> Classified:
    """Judge a NOERROR/NXDOMAIN response from a forwarder (a resolver asked with RD=1).

    A forwarder answers from its own recursion, so nothing carries AA and a CNAME chain may run
    through zones it resolved for us: there is no zone to hold it to. It is trusted as the
    resolver the operator chose, but only for the chain that starts at our question (and the SOA
    of a negative answer); its authority NS and additional records are never taken. A response
    with neither data nor SOA from a server that does not offer recursion (RA=0) is a referral
    or an empty reply from something that is not a resolver: lame, so the next one is asked.
    """
    answer = in_bailiwick(response.answer, dns.name.root)
    authority = in_bailiwick(response.authority, dns.name.root)
    chain, final_name, answered = _follow_chain(answer, qname, qtype)
    soa = _negative_soa(authority, final_name)
    if response.rcode() == dns.rcode.NXDOMAIN:
        return Classified(Kind.NXDOMAIN, final_name, tuple(chain), soa=soa)
    if answered:
        return Classified(Kind.ANSWER, final_name, tuple(chain))
    if chain:
        return Classified(Kind.CNAME, final_name, tuple(chain))
    if soa is None and not response.flags & dns.flags.RA:
        return Classified(Kind.LAME, final_name)
    return Classified(Kind.NODATA, final_name, soa=soa)
