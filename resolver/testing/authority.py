"""What an authoritative server says for a query, computed without any I/O.

Kept pure (no sockets, no trio, no clock) so that the resolver's sans-I/O iterator can be driven
over the test internet's data in plain unit tests, and so that the socket servers and those unit
tests can never disagree about an answer.

Only the behaviour a recursive resolver depends on is modelled: zone selection by longest suffix,
delegations with in-zone glue, CNAME chains within the served zones, DNAME redirection with the
synthesised CNAME (RFC 6672), empty non-terminals, wildcards (RFC 4592: used by the signed zones
only) and negative answers with RFC 2308 TTLs. A signed zone's RRSIGs and denial proofs are
added for DO=1 queries by `dnssec_answers`. Zone transfers are deliberately absent.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

from resolver.testing.dnssec_answers import add_dnssec

#: Advertised in every EDNS response: the DNS Flag Day 2020 size, which avoids IP fragmentation.
EDNS_PAYLOAD = 1232

#: Bounds CNAME chasing even if a chain is longer than any loop detection would notice.
MAX_CNAME_CHAIN = 16

_ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


class Outcome(enum.Enum):
    """The kind of data one name lookup inside the served zones ends in."""

    ANSWER = enum.auto()
    CNAME = enum.auto()
    NODATA = enum.auto()
    NXDOMAIN = enum.auto()
    REFERRAL = enum.auto()
    #: The name is below a DNAME: records are the DNAME and the CNAME synthesised from it.
    DNAME = enum.auto()
    #: The name is below a DNAME but the synthesised target would exceed 255 octets (RFC 6672
    #: section 2.2): records hold the DNAME alone and the rcode is YXDOMAIN.
    YXDOMAIN = enum.auto()


@dataclass
class Lookup:
    """One name looked up in one zone: the outcome plus the records that justify it."""

    outcome: Outcome
    zone: dns.zone.Zone
    records: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)


def answer(query: dns.message.Message, zones: Sequence[dns.zone.Zone]) -> dns.message.Message:
    """The response an authoritative server serving exactly `zones` gives to `query`.

    The zones must have been loaded with ``relativize=False``: records are copied into the
    response as they are, and relative names could not be rendered on the wire. The question is
    copied as received so that a resolver checking its 0x20 letter case sees it echoed back.
    """
    for zone in zones:
        if zone.relativize:
            raise ValueError(f"zone {zone.origin} must be loaded with relativize=False")
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    rcode = _reject(query)
    if rcode is not None:
        response.set_rcode(rcode)
        return response
    question = query.question[0]
    first = lookup(question.name, question.rdtype, zones)
    if first is None:
        response.set_rcode(dns.rcode.REFUSED)
    elif first.outcome is Outcome.REFERRAL:
        response.authority.extend(first.records)
        response.additional.extend(first.additional)
    else:
        response.flags |= dns.flags.AA
        _fill_authoritative(response, first, question.rdtype, zones)
    if query.edns >= 0 and query.ednsflags & dns.flags.DO:
        response.ednsflags |= dns.flags.DO  # echoed (RFC 3225)
        add_dnssec(response, question.name, question.rdtype, zones)
    return response


def lookup(
    qname: dns.name.Name, qtype: dns.rdatatype.RdataType, zones: Sequence[dns.zone.Zone]
) -> Lookup | None:
    """Look `qname` up in the most specific of `zones`; None if none of them contains it."""
    zone = _closest_zone(qname, zones)
    if zone is None:
        return None
    referral = _delegation(zone, qname, qtype)
    if referral is not None:
        return referral
    redirection = _dname(zone, qname)
    if redirection is not None:
        return redirection
    node = zone.get_node(qname)
    if node is None or len(node) == 0:
        if _has_descendant(zone, qname):
            return Lookup(Outcome.NODATA, zone)
        return _wildcard(zone, qname, qtype) or Lookup(Outcome.NXDOMAIN, zone)
    if qtype == dns.rdatatype.ANY:
        records = [_rrset(qname, rdataset) for rdataset in node]
        return Lookup(Outcome.ANSWER, zone, records)
    if qtype == dns.rdatatype.RRSIG:
        # Asked for by type: every RRSIG of the name, whatever it covers (RFC 4035 3.2.1).
        sigs = [_rrset(qname, r) for r in node if r.rdtype == dns.rdatatype.RRSIG]
        return Lookup(Outcome.ANSWER if sigs else Outcome.NODATA, zone, sigs)
    rrset = zone.get_rrset(qname, qtype)
    if rrset is not None:
        return Lookup(Outcome.ANSWER, zone, [rrset], _additional_for(zone, [rrset]))
    cname = zone.get_rrset(qname, dns.rdatatype.CNAME)
    if cname is not None:
        return Lookup(Outcome.CNAME, zone, [cname])
    return Lookup(Outcome.NODATA, zone)


def _wildcard(
    zone: dns.zone.Zone, qname: dns.name.Name, qtype: dns.rdatatype.RdataType
) -> Lookup | None:
    """The answer a wildcard `*.<closest encloser>` gives for a name that does not exist
    (RFC 4592 section 3.3.1), owned by the name asked; None without such a wildcard."""
    origin = zone_origin(zone)
    encloser = qname
    while encloser != origin:
        encloser = encloser.parent()
        node = zone.get_node(encloser)
        if (node is not None and len(node) > 0) or _has_descendant(zone, encloser):
            break
    star = dns.name.Name((b"*", *encloser.labels))
    if zone.get_node(star) is None:
        return None
    for rdtype, outcome in ((qtype, Outcome.ANSWER), (dns.rdatatype.CNAME, Outcome.CNAME)):
        found = zone.get_rdataset(star, rdtype)
        if found is not None:
            return Lookup(outcome, zone, [_rrset(qname, found)])
    return Lookup(Outcome.NODATA, zone)


def is_empty_non_terminal(qname: dns.name.Name, zones: Sequence[dns.zone.Zone]) -> bool:
    """Whether `qname` is an empty non-terminal of the served zones (not below a cut or DNAME).

    Faults that break only these names model the servers that trip up QNAME minimisation, whose
    minimised queries are mostly for empty non-terminals (RFC 9156 section 2.3).
    """
    zone = _closest_zone(qname, zones)
    if zone is None:
        return False
    if _delegation(zone, qname, dns.rdatatype.A) is not None or _dname(zone, qname) is not None:
        return False
    node = zone.get_node(qname)
    return (node is None or len(node) == 0) and _has_descendant(zone, qname)


def zone_origin(zone: dns.zone.Zone) -> dns.name.Name:
    """`zone.origin`, which dnspython types as optional (a zone may be built without one).

    Every zone of the test internet is loaded from text with its origin, so a missing one is a
    bug in the caller, not a case to handle.
    """
    origin = zone.origin
    assert origin is not None, "test internet zones are always loaded with an origin"
    return origin


def negative_soa(zone: dns.zone.Zone) -> dns.rrset.RRset:
    """The zone's SOA with the TTL RFC 2308 says negative answers are cached for."""
    soa = zone.get_rrset(zone_origin(zone), dns.rdatatype.SOA)
    if soa is None:
        raise ValueError(f"zone {zone.origin} has no SOA at its apex")
    soa.ttl = min(soa.ttl, soa[0].minimum)
    return soa


def _reject(query: dns.message.Message) -> dns.rcode.Rcode | None:
    """The error rcode for a query this server does not process at all, if it is one."""
    if query.edns > 0:
        return dns.rcode.BADVERS
    if query.opcode() != dns.opcode.QUERY:
        return dns.rcode.NOTIMP
    if len(query.question) != 1:
        return dns.rcode.FORMERR
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN:
        return dns.rcode.REFUSED
    if dns.rdatatype.is_metatype(question.rdtype) and question.rdtype != dns.rdatatype.ANY:
        return dns.rcode.NOTIMP
    return None


def _fill_authoritative(
    response: dns.message.Message,
    current: Lookup,
    qtype: dns.rdatatype.RdataType,
    zones: Sequence[dns.zone.Zone],
) -> None:
    """Put an authoritative outcome in `response`, following CNAMEs while we are authoritative.

    Chasing stops at the edge of the served zones or at a delegation: the resolver must ask
    someone else there, and a server must never vouch for data outside its own zones.
    """
    seen: set[dns.name.Name] = set()
    while True:
        response.answer.extend(current.records)
        _add_unique(response.additional, current.additional)
        if current.outcome is Outcome.NODATA or current.outcome is Outcome.NXDOMAIN:
            if current.outcome is Outcome.NXDOMAIN:
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(negative_soa(current.zone))
            return
        if current.outcome is Outcome.YXDOMAIN:
            response.set_rcode(dns.rcode.YXDOMAIN)
            return
        chases = current.outcome is Outcome.CNAME or current.outcome is Outcome.DNAME
        if not chases or qtype == dns.rdatatype.CNAME:
            return
        # For a DNAME the synthesised CNAME is the last record: it is what the chase follows.
        cname = current.records[-1]
        seen.add(cname.name)
        target: dns.name.Name = cname[0].target
        if target in seen or len(seen) >= MAX_CNAME_CHAIN:
            return
        following = lookup(target, qtype, zones)
        if following is None or following.outcome is Outcome.REFERRAL:
            return
        current = following


def _closest_zone(name: dns.name.Name, zones: Sequence[dns.zone.Zone]) -> dns.zone.Zone | None:
    """The zone whose origin is the longest suffix of `name`, as a server picks its best zone."""
    candidates = [zone for zone in zones if name.is_subdomain(zone_origin(zone))]
    return max(candidates, key=lambda zone: len(zone_origin(zone)), default=None)


def _delegation(
    zone: dns.zone.Zone, qname: dns.name.Name, qtype: dns.rdatatype.RdataType
) -> Lookup | None:
    """The referral for `qname` if it is at or below a zone cut, found from the apex down.

    The topmost cut wins because everything below it belongs to the child. A DS query for the
    cut itself is the one exception: DS lives in the parent, so the parent answers it.
    """
    for depth in range(len(zone_origin(zone)) + 1, len(qname) + 1):
        _, cut = qname.split(depth)
        if cut == qname and qtype == dns.rdatatype.DS:
            return None
        ns = zone.get_rrset(cut, dns.rdatatype.NS)
        if ns is not None:
            return Lookup(Outcome.REFERRAL, zone, [ns], _additional_for(zone, [ns]))
    return None


def _dname(zone: dns.zone.Zone, qname: dns.name.Name) -> Lookup | None:
    """The DNAME redirection of `qname` if a strict ancestor of it in `zone` owns a DNAME.

    RFC 6672 section 2.3: the DNAME itself is answered, followed by a CNAME from `qname` to the
    name with the DNAME owner's suffix replaced by the target, with the DNAME's TTL. The owner
    itself is an ordinary name (a query for it gets the DNAME rrset or NODATA). The topmost
    DNAME wins, because nothing below a DNAME may exist in the zone.
    """
    for depth in range(len(zone_origin(zone)), len(qname)):
        _, owner = qname.split(depth)
        dname = zone.get_rrset(owner, dns.rdatatype.DNAME)
        if dname is None:
            continue
        try:
            target = qname.relativize(owner).concatenate(dname[0].target)
        except dns.name.NameTooLong:
            return Lookup(Outcome.YXDOMAIN, zone, [dname])
        cname = dns.rrset.from_text(
            qname, dname.ttl, dname.rdclass, dns.rdatatype.CNAME, target.to_text()
        )
        return Lookup(Outcome.DNAME, zone, [dname, cname])
    return None


def _additional_for(
    zone: dns.zone.Zone, rrsets: Iterable[dns.rrset.RRset]
) -> list[dns.rrset.RRset]:
    """Addresses held in `zone` for the NS and MX targets in `rrsets` (glue, for NS at a cut).

    Only names inside the zone qualify: addresses from elsewhere would be out-of-bailiwick data
    that a resolver must not trust, and omitting them is what makes a delegation glueless.
    """
    extra: list[dns.rrset.RRset] = []
    for rrset in rrsets:
        if rrset.rdtype == dns.rdatatype.NS:
            targets = [rdata.target for rdata in rrset]
        elif rrset.rdtype == dns.rdatatype.MX:
            targets = [rdata.exchange for rdata in rrset]
        else:
            continue
        for target in targets:
            if not target.is_subdomain(zone.origin):
                continue
            for rdtype in _ADDRESS_TYPES:
                address = zone.get_rrset(target, rdtype)
                if address is not None:
                    _add_unique(extra, [address])
    return extra


def _has_descendant(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
    """Whether `name` is an empty non-terminal: absent itself, but with some name below it."""
    return any(owner != name and owner.is_subdomain(name) for owner in zone.nodes)


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    """An owned copy of a zone rdataset, so that editing a response never edits the zone."""
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
    rrset.update(rdataset)
    return rrset


def _add_unique(section: list[dns.rrset.RRset], rrsets: Iterable[dns.rrset.RRset]) -> None:
    """Append the rrsets not already in `section`; the same glue can justify two lookups."""
    for rrset in rrsets:
        if not any(
            existing.name == rrset.name and existing.rdtype == rrset.rdtype for existing in section
        ):
            section.append(rrset)
