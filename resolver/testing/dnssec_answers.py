"""What a signed authority adds to a response when the query set DO (RFC 4035 section 3.1).

`authority.answer` decides the data; `add_dnssec` then adds, from the signed zones themselves:
the RRSIGs of every answer RRset (a wildcard expansion's RRSIG from the wildcard, with the
proof that the name itself does not exist), the SOA's RRSIG and the NSEC or NSEC3 records that
prove an NXDOMAIN or NODATA (RFC 4035 3.1.3, RFC 5155 7.2), and at a referral the DS set with
its RRSIG or the proof that there is no DS. An unsigned zone (no DNSKEY at its apex) adds
nothing. Pure, like `authority.py`, so the scripted tests and the socket servers agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone

_RRSIG = dns.rdatatype.RRSIG
_WILDCARD = b"*"


def add_dnssec(
    response: dns.message.Message, qname: dns.name.Name, qtype: int, zones: Sequence[dns.zone.Zone]
) -> None:
    """Add the DNSSEC records to an answer of `authority.answer` for a DO=1 query."""
    if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return
    extra_answer: list[dns.rrset.RRset] = []
    extra_authority: list[dns.rrset.RRset] = []
    final = qname
    for rrset in list(response.answer):
        zone = _zone_of(rrset.name, zones)
        if zone is None or not _signed(zone):
            continue
        if rrset.rdtype == _RRSIG:
            continue  # an RRSIG question: the data is the signatures
        sigs = _rrsig(zone, rrset.name, rrset.rdtype)
        if sigs is None:
            expanded = _wildcard_rrsig(zone, rrset.name, rrset.rdtype)
            if expanded is not None:
                extra_answer.append(expanded)
                extra_authority += _wildcard_answer_proof(zone, rrset.name)
        else:
            extra_answer.append(sigs)
        if rrset.rdtype == dns.rdatatype.CNAME and rrset.name == final:
            final = rrset[0].target
    response.answer += extra_answer
    soa = next((r for r in response.authority if r.rdtype == dns.rdatatype.SOA), None)
    ns = next((r for r in response.authority if r.rdtype == dns.rdatatype.NS), None)
    if soa is not None:
        zone = _zone_of(soa.name, zones)
        if zone is not None and _signed(zone):
            extra_authority += _with_rrsig(zone, soa.name, dns.rdatatype.SOA)
            if response.rcode() == dns.rcode.NXDOMAIN:
                extra_authority += _nxdomain_proof(zone, final)
            else:
                extra_authority += _nodata_proof(zone, final, qtype)
    elif ns is not None and not response.flags & dns.flags.AA:
        zone = _zone_of(ns.name.parent(), zones) if ns.name != dns.name.root else None
        if zone is not None and _signed(zone):
            extra_authority += _referral_proof(zone, ns.name)
    _add_unique(response.authority, extra_authority)


# -- the zone -----------------------------------------------------------------------------------


def _zone_of(name: dns.name.Name, zones: Sequence[dns.zone.Zone]) -> dns.zone.Zone | None:
    candidates = [zone for zone in zones if zone.origin and name.is_subdomain(zone.origin)]
    return max(candidates, key=lambda zone: len(zone.origin or ()), default=None)


def _signed(zone: dns.zone.Zone) -> bool:
    assert zone.origin is not None
    return zone.get_rdataset(zone.origin, dns.rdatatype.DNSKEY) is not None


def _rrset(
    zone: dns.zone.Zone, name: dns.name.Name, rdtype: int, covers: int = 0
) -> dns.rrset.RRset | None:
    rdataset = zone.get_rdataset(
        name, dns.rdatatype.RdataType.make(rdtype), dns.rdatatype.RdataType.make(covers)
    )
    if rdataset is None:
        return None
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
    rrset.update(rdataset)
    rrset.ttl = rdataset.ttl
    return rrset


def _rrsig(zone: dns.zone.Zone, name: dns.name.Name, covers: int) -> dns.rrset.RRset | None:
    return _rrset(zone, name, _RRSIG, covers)


def _with_rrsig(zone: dns.zone.Zone, name: dns.name.Name, rdtype: int) -> list[dns.rrset.RRset]:
    """The RRset of (name, rdtype) and its RRSIG, as far as the zone holds them."""
    found = [_rrset(zone, name, rdtype), _rrsig(zone, name, rdtype)]
    return [rrset for rrset in found if rrset is not None]


def _exists(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
    """Whether `name` owns data or is an empty non-terminal (NSEC3 owners aside)."""
    node = zone.get_node(name)
    if node is not None and len(node) > 0:
        return True
    return any(
        owner != name and owner.is_subdomain(name) and not _is_nsec3_owner(zone, owner)
        for owner in zone.nodes
    )


def _is_nsec3_owner(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
    return zone.get_rdataset(name, dns.rdatatype.NSEC3) is not None


def _closest_encloser(zone: dns.zone.Zone, name: dns.name.Name) -> dns.name.Name:
    assert zone.origin is not None
    ancestor = name
    while ancestor != zone.origin:
        ancestor = ancestor.parent()
        if _exists(zone, ancestor):
            return ancestor
    return zone.origin


def _next_closer(name: dns.name.Name, encloser: dns.name.Name) -> dns.name.Name:
    return dns.name.Name(name.labels[-(len(encloser.labels) + 1) :])


def _nsec3_params(zone: dns.zone.Zone) -> tuple[bytes, int] | None:
    assert zone.origin is not None
    param = zone.get_rdataset(zone.origin, dns.rdatatype.NSEC3PARAM)
    return None if param is None else (param[0].salt, param[0].iterations)


# -- NSEC ---------------------------------------------------------------------------------------


def _nsec_owners(zone: dns.zone.Zone) -> list[dns.name.Name]:
    return sorted(name for name in zone.nodes if zone.get_rdataset(name, dns.rdatatype.NSEC))


def _nsec_covering(zone: dns.zone.Zone, name: dns.name.Name) -> list[dns.rrset.RRset]:
    """The NSEC at `name`, or the one whose span covers it (its canonical predecessor)."""
    owners = _nsec_owners(zone)
    before = [owner for owner in owners if owner <= name]
    owner = before[-1] if before else owners[-1]
    return _with_rrsig(zone, owner, dns.rdatatype.NSEC)


# -- NSEC3 --------------------------------------------------------------------------------------


def _nsec3_chain(zone: dns.zone.Zone) -> list[tuple[str, dns.name.Name]]:
    return sorted(
        (name.labels[0].decode().lower(), name)
        for name in zone.nodes
        if zone.get_rdataset(name, dns.rdatatype.NSEC3) is not None
    )


def _nsec3_for(zone: dns.zone.Zone, name: dns.name.Name, *, match: bool) -> list[dns.rrset.RRset]:
    """The NSEC3 whose owner is the hash of `name` (`match`), or the one covering the hash."""
    params = _nsec3_params(zone)
    assert params is not None
    digest = dns.dnssec.nsec3_hash(name, params[0], params[1], 1).lower()
    chain = _nsec3_chain(zone)
    if match:
        owner = next((owner for hashed, owner in chain if hashed == digest), None)
        if owner is None:
            return []
    else:
        before = [owner for hashed, owner in chain if hashed < digest]
        owner = before[-1] if before else chain[-1][1]
    return _with_rrsig(zone, owner, dns.rdatatype.NSEC3)


# -- the proofs ---------------------------------------------------------------------------------


def _nxdomain_proof(zone: dns.zone.Zone, name: dns.name.Name) -> list[dns.rrset.RRset]:
    """RFC 4035 3.1.3.2 / RFC 5155 7.2.2: the name does not exist, nor a wildcard for it."""
    encloser = _closest_encloser(zone, name)
    wildcard = dns.name.Name((_WILDCARD, *encloser.labels))
    if _nsec3_params(zone) is None:
        return _nsec_covering(zone, name) + _nsec_covering(zone, wildcard)
    return (
        _nsec3_for(zone, encloser, match=True)
        + _nsec3_for(zone, _next_closer(name, encloser), match=False)
        + _nsec3_for(zone, wildcard, match=False)
    )


def _nodata_proof(zone: dns.zone.Zone, name: dns.name.Name, qtype: int) -> list[dns.rrset.RRset]:
    """RFC 4035 3.1.3.1 / RFC 5155 7.2.3-7.2.5: the name exists without the type; for a
    wildcard NODATA, that the name does not exist and the wildcard has no such type."""
    nsec3 = _nsec3_params(zone) is not None
    if _exists(zone, name):
        if not nsec3:
            return _nsec_covering(zone, name)
        matching = _nsec3_for(zone, name, match=True)
        if matching:
            return matching
        # A DS question at an opt-out delegation: the closest provable encloser (RFC 5155 7.2.4).
        encloser = _closest_encloser(zone, name)
        return _nsec3_for(zone, encloser, match=True) + _nsec3_for(
            zone, _next_closer(name, encloser), match=False
        )
    encloser = _closest_encloser(zone, name)
    wildcard = dns.name.Name((_WILDCARD, *encloser.labels))
    if not nsec3:
        return _nsec_covering(zone, name) + _nsec_covering(zone, wildcard)
    return (
        _nsec3_for(zone, encloser, match=True)
        + _nsec3_for(zone, _next_closer(name, encloser), match=False)
        + _nsec3_for(zone, wildcard, match=True)
    )


def _wildcard_rrsig(
    zone: dns.zone.Zone, name: dns.name.Name, rdtype: int
) -> dns.rrset.RRset | None:
    """The wildcard's RRSIG for an expanded answer, owned by the name asked (RFC 4035 3.1.3.3:
    its labels field tells a validator it was a wildcard)."""
    if _exists(zone, name):
        return None
    encloser = _closest_encloser(zone, name)
    wildcard = dns.name.Name((_WILDCARD, *encloser.labels))
    sigs = _rrsig(zone, wildcard, rdtype)
    if sigs is None:
        return None
    renamed = dns.rrset.RRset(name, sigs.rdclass, sigs.rdtype, sigs.covers)
    renamed.update(sigs)
    renamed.ttl = sigs.ttl
    return renamed


def _wildcard_answer_proof(zone: dns.zone.Zone, name: dns.name.Name) -> list[dns.rrset.RRset]:
    """That no closer match than the wildcard exists: the NSEC covering the name, or the NSEC3
    covering the next closer name."""
    if _nsec3_params(zone) is None:
        return _nsec_covering(zone, name)
    encloser = _closest_encloser(zone, name)
    return _nsec3_for(zone, _next_closer(name, encloser), match=False)


def _referral_proof(zone: dns.zone.Zone, cut: dns.name.Name) -> list[dns.rrset.RRset]:
    """At a referral: the DS set and its RRSIG, or the proof that the child has none."""
    ds = _with_rrsig(zone, cut, dns.rdatatype.DS)
    if ds:
        return ds
    return _nodata_proof(zone, cut, dns.rdatatype.DS)


def _add_unique(section: list[dns.rrset.RRset], rrsets: Sequence[dns.rrset.RRset]) -> None:
    for rrset in rrsets:
        if not any(
            held.name == rrset.name and held.rdtype == rrset.rdtype and held.covers == rrset.covers
            for held in section
        ):
            section.append(rrset)
