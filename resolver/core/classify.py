"""Classify one upstream response: answer, CNAME to follow, referral, NXDOMAIN, NODATA, or lame.

Pure functions over dnspython messages; the resolution decides what to do with the verdict.
`classify` judges authoritative servers, `classify_recursive` the forwarders of forward zones.

The rules are those of deployed resolvers rather than of the textbook: be liberal in what counts
as an answer (many authorities and the load balancers in front of them omit AA) and strict about
who may say it (only data inside the zone the server was asked as, and never a resolver or
middlebox talking in the authority's place). `classify` is a list of cases in the order they are
checked, as Unbound's `response_type_from_server` (`iterator/iter_resptype.c`) and Knot
Resolver's `process_answer`/`is_authoritative` (`lib/layer/iterate.c`) are.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

from resolver.core.reasons import Lameness
from resolver.core.scrub import in_bailiwick, is_within, same_name

ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)
_AA, _RA = int(dns.flags.AA), int(dns.flags.RA)
_SOA, _DNAME = dns.rdatatype.SOA, dns.rdatatype.DNAME


class Kind(Enum):
    ANSWER = auto()
    CNAME = auto()
    NXDOMAIN = auto()
    NODATA = auto()
    YXDOMAIN = auto()  # a DNAME would make the name longer than 255 octets (RFC 6672 2.2)
    REFERRAL = auto()
    LAME = auto()


@dataclass(slots=True)
class Classified:
    """The verdict on a response, holding only in-bailiwick records.

    `chain` is the answer-section path from the question's name through CNAMEs and DNAMEs (a
    DNAME is followed by the CNAME it synthesises; the chain ends with the answer itself for
    ANSWER); `final_name` is where that path ends, i.e. the name an NXDOMAIN or NODATA speaks
    of, or the alias target still to resolve. `lameness` says why a LAME server was not believed.

    A value, never changed once made (`dataclasses.replace` makes a changed copy), but not a
    frozen dataclass: one is made for every response, and setting ten fields through
    `object.__setattr__`, as a frozen one does, cost five times as much (see `chain.Step`).
    """

    kind: Kind
    final_name: dns.name.Name
    chain: tuple[dns.rrset.RRset, ...] = ()
    soa: dns.rrset.RRset | None = None
    delegation: dns.rrset.RRset | None = None
    glue: tuple[dns.rrset.RRset, ...] = ()
    lameness: Lameness | None = None
    authoritative: bool = True
    #: With DO=1 (`signatures.attach`): the RRSIGs of `chain`'s RRsets, and the NSEC/NSEC3
    #: records and RRSIGs that prove a denial or a wildcard expansion.
    signatures: tuple[dns.rrset.RRset, ...] = ()
    proof: tuple[dns.rrset.RRset, ...] = ()


def _lame(name: dns.name.Name, why: Lameness) -> Classified:
    return Classified(Kind.LAME, name, lameness=why)


# The searches below are loops rather than `next()` over a generator: they run on every
# response, and a generator costs more to make than a short section costs to scan.


def _find(
    section: list[dns.rrset.RRset], name: dns.name.Name, rdtype: int
) -> dns.rrset.RRset | None:
    for rrset in section:
        if rrset.rdtype == rdtype and same_name(rrset.name, name):
            return rrset
    return None


def synthesise_cname(dname: dns.rrset.RRset, name: dns.name.Name) -> dns.rrset.RRset | None:
    """The CNAME a DNAME implies for `name` below its owner (RFC 6672 section 2.2).

    Its TTL is the DNAME's. None when the substituted name would be longer than 255 octets
    (the case in which a server answers YXDOMAIN).
    """
    try:
        target = name.relativize(dname.name).derelativize(dname[0].target)
    except dns.name.NameTooLong:
        return None
    rdata = dns.rdtypes.ANY.CNAME.CNAME(dns.rdataclass.IN, dns.rdatatype.CNAME, target)
    return dns.rrset.from_rdata_list(name, dname.ttl, [rdata])


def _dname_above(answer: list[dns.rrset.RRset], name: dns.name.Name) -> dns.rrset.RRset | None:
    """A DNAME in the section whose owner is a proper ancestor of `name`: it redirects `name`."""
    for rrset in answer:
        if rrset.rdtype == _DNAME and name != rrset.name and name.is_subdomain(rrset.name):
            return rrset
    return None


def _follow_chain(
    answer: list[dns.rrset.RRset], qname: dns.name.Name, qtype: int, *, one_link: bool
) -> tuple[list[dns.rrset.RRset], dns.name.Name, bool]:
    """Walk qname -> CNAME/DNAME -> ... through the answer; (records, where it ended, answered?).

    A DNAME above a name wins over anything the server put there (nothing can exist below a
    DNAME, RFC 6672 section 2.3), and the CNAME is synthesised here rather than taken from the
    server: a server may leave it out, or send one that disagrees with its own DNAME.

    With `one_link`, only what the server says about the question's own name is taken (its
    data, or its alias), as Unbound's scrubber does: a server is not authoritative below a
    cut in its zone it may not even know of, so the rest of a chain is asked of whoever serves
    the target, and the parent can never overwrite a child's data with its own copy.
    """
    chain: list[dns.rrset.RRset] = []
    if not answer:
        return chain, qname, False  # (the common negative answer: nothing to walk)
    name, visited = qname, set()
    while True:
        if not one_link:  # one link is one pass: no loop to guard against (nor names to hash)
            if name in visited:
                break
            visited.add(name)
        dname = None if qtype == dns.rdatatype.DNAME else _dname_above(answer, name)
        if dname is not None:
            cname = synthesise_cname(dname, name)
            if cname is None:
                chain.append(dname)  # the substitution overflows: YXDOMAIN (see `classify`)
                break
            chain += [dname, cname]
            if qtype == dns.rdatatype.CNAME:
                return chain, name, True  # the synthesised CNAME is the answer asked for
            name = cname[0].target
        else:
            if qtype == dns.rdatatype.ANY:
                found = [r for r in answer if r.name == name]
                if found:
                    return chain + found, name, True
            else:
                final = _find(answer, name, qtype)
                if final is not None:
                    return [*chain, final], name, True
            cname = None
            if qtype != dns.rdatatype.CNAME:
                cname = _find(answer, name, dns.rdatatype.CNAME)
            if cname is None:
                break
            chain.append(cname)
            name = cname[0].target
        if one_link:
            break
    return chain, name, False


def _negative_soa(authority: list[dns.rrset.RRset], name: dns.name.Name) -> dns.rrset.RRset | None:
    for rrset in authority:
        if rrset.rdtype == _SOA and is_within(name, rrset.name):
            return rrset
    return None


def glue_for(
    ns: dns.rrset.RRset, additional: list[dns.rrset.RRset], zone: dns.name.Name
) -> tuple[dns.rrset.RRset, ...]:
    """Addresses of the NS names, only where the servers of `zone` may speak for them.

    Pass the root as `zone` to accept glue for any name (Unbound's `harden-glue: no`).
    """
    targets = {rdata.target for rdata in ns}
    return tuple(
        r for r in in_bailiwick(additional, zone) if r.rdtype in ADDRESS_TYPES and r.name in targets
    )


def _cut_below(
    authority: list[dns.rrset.RRset], name: dns.name.Name, zone: dns.name.Name
) -> dns.rrset.RRset | None:
    """An NS set for a cut strictly below `zone`, at or above `name`: a referral down to it."""
    return next(
        (
            r
            for r in authority
            if r.rdtype == dns.rdatatype.NS
            and not same_name(r.name, zone)
            and is_within(name, r.name)
        ),
        None,
    )


def _misdirection(authority: list[dns.rrset.RRset], zone: dns.name.Name) -> Lameness | None:
    """An NS set (class IN) in the authority section pointing anywhere but down: up the tree
    or sideways."""
    for rrset in authority:
        if (
            rrset.rdtype != dns.rdatatype.NS
            or rrset.rdclass != dns.rdataclass.IN
            or same_name(rrset.name, zone)
        ):
            continue
        if zone.is_subdomain(rrset.name):
            return Lameness.UPWARD_REFERRAL
        return Lameness.SIDEWAYS_REFERRAL
    return None


def classify(
    response: dns.message.Message,
    qname: dns.name.Name,
    qtype: int,
    zone: dns.name.Name,
    *,
    harden_glue: bool = True,
    rcode: int | None = None,
) -> Classified:
    """Judge a NOERROR/NXDOMAIN/YXDOMAIN response from a server asked (RD=0) for `zone`.

    The cases, in the order they are checked. Only what the server says about the question's
    own name counts (see `_follow_chain`): its data, or its alias (a CNAME, or a DNAME above it
    with the CNAME synthesised from it), never the rest of a chain.
    1. RA=1 without AA: a recursive resolver or a middlebox answered in the authority's place
       (Unbound's REC_LAME), whatever it says; only the CNAME of a NOERROR reply that merely
       redirects is taken, as in Unbound, since the target is asked of its own servers anyway
       (never a DNAME, which would redirect a whole subtree for later questions too).
    2. A DNAME whose substitution overflows the name: YXDOMAIN (RFC 6672 section 2.2), whatever
       rcode came with it; YXDOMAIN without such a DNAME is lame.
    3. The data asked for: an answer, AA or not (many authorities and load balancers omit AA;
       the data is in the server's zone either way). Except an NS set without AA for a name
       below the zone (an NS question at a cut): the parent's copy of the delegation, followed
       as a referral (Unbound's rule), so the answer comes from the child.
    4. An alias: followed, whatever the rcode, which speaks of the target (RFC 6604), and of
       a target the server may not be authoritative for.
    5. NXDOMAIN: believed with AA or with the zone's SOA (Knot's `is_authoritative`).
    6. An SOA of the zone: NODATA (checked before referrals, as in Unbound).
    7. An NS set for a cut below the zone and above the name: a referral, even with AA (some
       broken servers set it), never NODATA.
    8. An NS set pointing up the tree or sideways: lame, AA or not, never NODATA.
    9. AA with nothing else: NODATA without an SOA to quote. Anything else is lame.

    `rcode` is the response's, if the caller has read it already.
    """
    flags = int(response.flags)  # plain ints: `&` on dnspython's Flag builds an enum member
    aa = bool(flags & _AA)
    if rcode is None:
        rcode = response.rcode()
    answer = in_bailiwick(response.answer, zone)
    authority = in_bailiwick(response.authority, zone)
    chain, final_name, answered = _follow_chain(answer, qname, qtype, one_link=True)
    if flags & _RA and not aa:
        alias_only = len(chain) == 1 and chain[0].rdtype == dns.rdatatype.CNAME
        if alias_only and not answered and rcode == dns.rcode.NOERROR:
            # Only the alias is taken, never a verdict on its target (an SOA beside it would
            # otherwise make a NODATA of what a resolver's cache happened to hold).
            return Classified(Kind.CNAME, final_name, tuple(chain), authoritative=False)
        return _lame(qname, Lameness.RECURSIVE)
    overflow = bool(chain) and chain[-1].rdtype == dns.rdatatype.DNAME and not answered
    if overflow:
        return Classified(Kind.YXDOMAIN, final_name, tuple(chain))
    if rcode == dns.rcode.YXDOMAIN:
        return _lame(final_name, Lameness.UNJUSTIFIED_YXDOMAIN)
    glue_zone = zone if harden_glue else dns.name.root
    if answered:
        ns = chain[-1] if chain[-1].rdtype == dns.rdatatype.NS else None
        glue = glue_for(ns, response.additional, glue_zone) if ns is not None else ()
        if ns is not None and not aa and len(chain) == 1 and not same_name(ns.name, zone):
            # The parent's copy of a delegation, put in the answer section: a referral.
            return Classified(Kind.REFERRAL, final_name, delegation=ns, glue=glue)
        return Classified(Kind.ANSWER, final_name, tuple(chain), glue=glue, authoritative=aa)
    if chain:
        return Classified(Kind.CNAME, final_name, tuple(chain), authoritative=aa)
    soa = _negative_soa(authority, final_name)
    if rcode == dns.rcode.NXDOMAIN:
        if aa or soa is not None:
            return Classified(Kind.NXDOMAIN, final_name, soa=soa, authoritative=aa)
        return _lame(final_name, Lameness.NEGATIVE_WITHOUT_AUTHORITY)
    if soa is not None:
        return Classified(Kind.NODATA, final_name, soa=soa, authoritative=aa)
    cut = _cut_below(authority, final_name, zone)
    if cut is not None:
        glue = glue_for(cut, response.additional, glue_zone)
        return Classified(Kind.REFERRAL, final_name, delegation=cut, glue=glue)
    misdirection = _misdirection(response.authority, zone)
    if misdirection is not None:
        return _lame(final_name, misdirection)
    if aa:
        return Classified(Kind.NODATA, final_name)
    return _lame(final_name, Lameness.EMPTY)


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
    chain, final_name, answered = _follow_chain(answer, qname, qtype, one_link=False)
    soa = _negative_soa(authority, final_name)
    if response.rcode() == dns.rcode.NXDOMAIN:
        return Classified(Kind.NXDOMAIN, final_name, tuple(chain), soa=soa, authoritative=False)
    if answered:
        return Classified(Kind.ANSWER, final_name, tuple(chain), authoritative=False)
    if chain:
        return Classified(Kind.CNAME, final_name, tuple(chain), authoritative=False)
    if soa is None and not response.flags & dns.flags.RA:
        return _lame(final_name, Lameness.EMPTY)
    return Classified(Kind.NODATA, final_name, soa=soa, authoritative=False)
