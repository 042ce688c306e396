"""NSEC denial proofs (RFC 4035 section 5.4, RFC 4034 section 4; RFC 6840 section 4.1).

Each function takes NSEC records whose signatures the caller has verified and a `Trace`, and
returns a `Verdict`. The rules follow Unbound's `validator/val_nsec.c`: an NSEC "covers" a name
that sorts strictly between its owner and its next name in canonical order (RFC 4034 section
6.1, which is how dnspython compares names), except below a delegation or a DNAME (the
parent's NSEC there says nothing about the child's names); the closest encloser of a missing
name is the longer of its common ancestors with the covering NSEC's owner and next name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.NSEC import NSEC

from resolver.dnssec.verdict import Ede, Security, Trace, Verdict

_DS = dns.rdatatype.DS
_NS = dns.rdatatype.NS
_SOA = dns.rdatatype.SOA
_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME


@dataclass(frozen=True)
class NsecRecord:
    owner: dns.name.Name
    next: dns.name.Name
    types: frozenset[int]

    def has(self, rdtype: int) -> bool:
        return rdtype in self.types

    @property
    def is_delegation(self) -> bool:
        """The parent side of a zone cut: NS without SOA."""
        return self.has(_NS) and not self.has(_SOA)

    def covers(self, name: dns.name.Name) -> bool:
        """Whether `name` sorts strictly between owner and next (the last NSEC wraps)."""
        if name == self.owner or not name > self.owner:
            return False
        if (self.is_delegation or self.has(_DNAME)) and name.is_subdomain(self.owner):
            return False  # below a cut or a DNAME: not this zone's name to deny
        return name < self.next or self.next <= self.owner

    def __str__(self) -> str:
        types = " ".join(
            dns.rdatatype.to_text(dns.rdatatype.RdataType.make(t)) for t in sorted(self.types)
        )
        return f"NSEC {self.owner} -> {self.next} [{types}]"


def records(rrsets: Sequence[dns.rrset.RRset], zone: dns.name.Name) -> list[NsecRecord]:
    """The NSEC records of `zone` in `rrsets` (others are ignored)."""
    out = []
    for rrset in rrsets:
        if rrset.rdtype != dns.rdatatype.NSEC or not rrset.name.is_subdomain(zone):
            continue
        for rdata in rrset:
            if isinstance(rdata, NSEC):
                types = frozenset(
                    window * 256 + byte * 8 + bit
                    for window, bitmap in rdata.windows
                    for byte, octet in enumerate(bitmap)
                    for bit in range(8)
                    if octet & (0x80 >> bit)
                )
                out.append(NsecRecord(rrset.name, rdata.next, types))
    return out


def _common(a: dns.name.Name, b: dns.name.Name) -> dns.name.Name:
    _, _, labels = a.fullcompare(b)
    return dns.name.Name(a.labels[len(a.labels) - labels :])


def closest_encloser(qname: dns.name.Name, nsec: NsecRecord) -> dns.name.Name:
    """The closest encloser a covering NSEC implies (Unbound's nsec_closest_encloser)."""
    first, second = _common(qname, nsec.owner), _common(qname, nsec.next)
    return first if len(first) > len(second) else second


def _wildcard(ce: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((b"*", *ce.labels))


def _covering(nsecs: list[NsecRecord], name: dns.name.Name) -> NsecRecord | None:
    return next((nsec for nsec in nsecs if nsec.covers(name)), None)


def _matching(nsecs: list[NsecRecord], name: dns.name.Name) -> NsecRecord | None:
    return next((nsec for nsec in nsecs if nsec.owner == name), None)


def _is_ent(nsecs: list[NsecRecord], name: dns.name.Name) -> NsecRecord | None:
    """An NSEC proving `name` is an empty non-terminal: it sorts before, and next lies below."""
    for nsec in nsecs:
        if nsec.owner < name and nsec.next != name and nsec.next.is_subdomain(name):
            return nsec
    return None


def prove_nxdomain(
    qname: dns.name.Name, zone: dns.name.Name, nsecs: list[NsecRecord], trace: Trace
) -> Verdict:
    """The name does not exist, and no wildcard could have answered it (RFC 4035 5.4)."""
    ent = _is_ent(nsecs, qname)
    if ent is not None:
        trace.add("%s shows %s is an empty non-terminal", ent, qname)
        return trace.verdict(
            Security.BOGUS, f"NXDOMAIN for {qname}, which exists", Ede.DNSSEC_BOGUS
        )
    cover = _covering(nsecs, qname)
    if cover is None:
        return trace.verdict(Security.BOGUS, f"no NSEC covers {qname}", Ede.NSEC_MISSING)
    trace.add("%s covers %s", cover, qname)
    ce = closest_encloser(qname, cover)
    if not ce.is_subdomain(zone):
        return trace.verdict(
            Security.BOGUS, f"closest encloser {ce} outside {zone}", Ede.DNSSEC_BOGUS
        )
    wildcard = _wildcard(ce)
    if _matching(nsecs, wildcard) is not None:
        return trace.verdict(
            Security.BOGUS,
            f"{wildcard} exists: {qname} should have been synthesised",
            Ede.DNSSEC_BOGUS,
        )
    wild_cover = _covering(nsecs, wildcard)
    if wild_cover is None:
        return trace.verdict(
            Security.BOGUS, f"no NSEC denies the wildcard {wildcard}", Ede.NSEC_MISSING
        )
    trace.add("%s covers the wildcard %s", wild_cover, wildcard)
    return trace.verdict(Security.SECURE, f"{qname} does not exist (NSEC)")


def _nodata_types_ok(
    nsec: NsecRecord, qname: dns.name.Name, qtype: int, trace: Trace
) -> Verdict | None:
    """None if the matching NSEC denies `qtype` at its owner, else the bogus verdict."""
    if nsec.has(qtype):
        return trace.verdict(Security.BOGUS, f"{nsec} says the type exists", Ede.DNSSEC_BOGUS)
    if nsec.has(_CNAME):
        return trace.verdict(Security.BOGUS, f"{nsec}: the name is an alias", Ede.DNSSEC_BOGUS)
    if qtype == _DS:
        if nsec.has(_SOA) and qname != dns.name.root:
            return trace.verdict(
                Security.BOGUS,
                f"{nsec} is the child's: DS NODATA comes from the parent",
                Ede.DNSSEC_BOGUS,
            )
    elif nsec.is_delegation:
        return trace.verdict(
            Security.BOGUS,
            f"{nsec} is a delegation: it cannot deny the child's data",
            Ede.DNSSEC_BOGUS,
        )
    return None


def prove_nodata(
    qname: dns.name.Name, qtype: int, zone: dns.name.Name, nsecs: list[NsecRecord], trace: Trace
) -> Verdict:
    """The name exists without the type: a matching NSEC, an empty non-terminal, or a wildcard."""
    what = f"{qname} {dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))}"
    match = _matching(nsecs, qname)
    if match is not None:
        trace.add("%s matches %s", match, qname)
        failure = _nodata_types_ok(match, qname, qtype, trace)
        return failure or trace.verdict(Security.SECURE, f"no {what} (NSEC)")
    ent = _is_ent(nsecs, qname)
    if ent is not None:
        trace.add("%s proves %s is an empty non-terminal", ent, qname)
        return trace.verdict(Security.SECURE, f"no {what}: empty non-terminal (NSEC)")
    cover = _covering(nsecs, qname)
    if cover is not None and qtype != _DS:
        ce = closest_encloser(qname, cover)
        wildcard = _wildcard(ce)
        wild = _matching(nsecs, wildcard)
        if wild is not None and ce.is_subdomain(zone):
            trace.add("%s covers %s; %s matches the wildcard", cover, qname, wild)
            failure = _nodata_types_ok(wild, wildcard, qtype, trace)
            return failure or trace.verdict(Security.SECURE, f"no {what}: wildcard NODATA (NSEC)")
    return trace.verdict(Security.BOGUS, f"no NSEC proves there is no {what}", Ede.NSEC_MISSING)


def prove_wildcard(
    qname: dns.name.Name, wildcard: dns.name.Name, nsecs: list[NsecRecord], trace: Trace
) -> Verdict:
    """A wildcard answer is legitimate: no name closer to `qname` exists (RFC 4035 5.3.4)."""
    cover = _covering(nsecs, qname)
    if cover is None:
        return trace.verdict(
            Security.BOGUS, f"no NSEC shows {qname} does not exist", Ede.NSEC_MISSING
        )
    ce = closest_encloser(qname, cover)
    if ce != wildcard.parent():
        return trace.verdict(
            Security.BOGUS, f"closest encloser {ce} is not the wildcard's parent", Ede.DNSSEC_BOGUS
        )
    trace.add("%s covers %s: no closer name than %s", cover, qname, wildcard)
    return trace.verdict(Security.SECURE, f"{qname} synthesised from {wildcard} (NSEC)")


def prove_no_ds(name: dns.name.Name, nsecs: list[NsecRecord], trace: Trace) -> Verdict:
    """No DS at `name`: insecure if it is a delegation (NS bit, no DS, no SOA), secure if
    there is no zone cut there at all (an empty non-terminal or a name without NS)."""
    match = _matching(nsecs, name)
    if match is not None:
        trace.add("%s matches %s", match, name)
        failure = _nodata_types_ok(match, name, _DS, trace)
        if failure is not None:
            return failure
        if match.has(_NS):
            return trace.verdict(Security.INSECURE, f"{name} is an unsigned delegation (NSEC)")
        return trace.verdict(Security.SECURE, f"no zone cut at {name} (NSEC)")
    ent = _is_ent(nsecs, name)
    if ent is not None:
        trace.add("%s proves %s is an empty non-terminal", ent, name)
        return trace.verdict(Security.SECURE, f"no zone cut at {name}: empty non-terminal (NSEC)")
    return trace.verdict(Security.BOGUS, f"no NSEC proves {name} has no DS", Ede.NSEC_MISSING)
