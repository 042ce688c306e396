"""Answers from what the resolver already holds: the operator's local data and the cache.

Reads only: nothing here asks upstream or writes the cache. Each lookup gives one `Step` of a
CNAME chain (or None when iteration is needed); `stale_answer` assembles a whole chain from
expired data for serve-stale (RFC 8767), and `referral` answers a non-recursive question the
cache cannot (RFC 1034 section 4.3.1).
"""

from __future__ import annotations

from dataclasses import replace

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.records import CachedNegative, Rank, Signed, with_ttl
from resolver.core.actions import Answer
from resolver.core.chain import Chain, Step
from resolver.core.classify import synthesise_cname
from resolver.core.reasons import ResolutionFailed
from resolver.core.work import Work

#: The type of minimised queries. RFC 9156 section 2.1 leaves the choice open; NS probes trip up
#: servers that mishandle NS below the apex, while A is the most common type of all, so it hides
#: the real question best and its answer is ordinary data (Unbound and PowerDNS use A as well).
MINIMISED_TYPE = dns.rdatatype.A


def _signed_step(found: Signed, next_name: dns.name.Name | None = None) -> Step:
    """The step of a cached RRset (an answer, or an alias to `next_name`), its RRSIGs along."""
    signatures = () if found.signatures is None else (found.signatures,)
    return Step(
        dns.rcode.NOERROR,
        (found.rrset,),
        next_name=next_name,
        signatures=signatures,
        security=found.security,
    )


def _negative_step(negative: CachedNegative) -> Step:
    """The step of a cached NXDOMAIN or NODATA, with the proof that came with it."""
    return Step(
        negative.rcode, authority=negative.soa, proof=negative.proof, security=negative.security
    )


class CacheLookup:
    """Local data and cache lookups for one resolution (`Work`), in the order they apply."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def from_local(self, name: dns.name.Name, qtype: int, depth: int) -> Step | None:
        """The operator's own records for `name`: they override the cache and the internet.

        A local name answers every type itself: the type asked for, else a local CNAME to
        follow, else NODATA (without SOA: the resolver holds no zone to quote one from).
        """
        local = self._work.ctx.local.lookup(name) if self._work.ctx.local else None
        if local is None:
            return None
        if qtype == dns.rdatatype.ANY:
            records = tuple(local.values())
        else:
            found = local.get(qtype)
            records = (found,) if found is not None else ()
        if records:
            self._work.say(depth, "local data: {} {}", name, dns.rdatatype.RdataType.to_text(qtype))
            return Step(dns.rcode.NOERROR, records)
        cname = local.get(dns.rdatatype.CNAME) if qtype != dns.rdatatype.CNAME else None
        if cname is not None:
            self._work.say(depth, "local data: {} is an alias for {}", name, cname[0].target)
            return Step(dns.rcode.NOERROR, (cname,), next_name=cname[0].target)
        self._work.say(
            depth, "local data: {} has no {} (NODATA)", name, dns.rdatatype.RdataType.to_text(qtype)
        )
        return Step(dns.rcode.NOERROR)

    def from_cache(
        self, name: dns.name.Name, qtype: int, depth: int, stale: bool = False
    ) -> Step | None:
        """The link for `name` from the cache (`RecordCache.answer`: the data, an alias or a
        denial), else from a DNAME above it; None when it must be asked upstream."""
        cache = self._work.ctx.cache
        found = cache.answer(name, qtype, stale=stale)
        if isinstance(found, CachedNegative):
            self._work.say(depth, "cache: {} {} (negative)", name, dns.rcode.to_text(found.rcode))
            return _negative_step(found)
        if found is not None:
            if found.rrset.rdtype == qtype:
                self._work.say(
                    depth, "cache: {} {} answered", name, dns.rdatatype.RdataType.to_text(qtype)
                )
                return _signed_step(found)
            target = found.rrset[0].target
            self._work.say(depth, "cache: {} is an alias for {}", name, target)
            return _signed_step(found, next_name=target)
        if qtype != dns.rdatatype.DNAME and cache.holds_dnames:
            return self._from_cached_dname(name, qtype, depth, stale)
        return None

    def _from_cached_dname(
        self, name: dns.name.Name, qtype: int, depth: int, stale: bool
    ) -> Step | None:
        """A cached DNAME above `name` redirects it (RFC 6672): the DNAME and its CNAME."""
        cache = self._work.ctx.cache
        ancestor = name
        while ancestor != dns.name.root:
            ancestor = ancestor.parent()
            signed = cache.get_signed(
                ancestor, dns.rdatatype.DNAME, min_rank=Rank.NONAUTH_ANSWER, stale=stale
            )
            if signed is None:
                continue
            dname = signed.rrset
            sigs = () if signed.signatures is None else (signed.signatures,)
            cname = synthesise_cname(dname, name)
            if cname is None:
                return None
            self._work.say(depth, "cache: {} is redirected by DNAME {}", name, ancestor)
            # The synthesised CNAME is unsigned by nature (RFC 6672 5.3.1): the DNAME's RRSIG
            # and status speak for both.
            if qtype == dns.rdatatype.CNAME:
                return Step(
                    dns.rcode.NOERROR, (dname, cname), signatures=sigs, security=signed.security
                )
            return Step(
                dns.rcode.NOERROR,
                (dname, cname),
                next_name=cname[0].target,
                signatures=sigs,
                security=signed.security,
            )
        return None

    def referral(self, name: dns.name.Name, depth: int) -> Step:
        """The answer to a non-recursive question the cache cannot answer: where to ask next.

        The closest cached delegation (its NS set, TTL aged), else the root's, as BIND and RFC
        1034 section 4.3.2 do; nothing is sent upstream.
        """
        cache = self._work.ctx.cache
        closest = cache.closest_delegation(name)
        zone = closest.name if closest is not None else dns.name.root
        ns = cache.get_rrset(zone, dns.rdatatype.NS)
        if ns is None:
            hints = self._work.ctx.hints.ns
            ns = with_ttl(hints, cache.clamp_ttl(hints.ttl, delegation=True))
        self._work.say(depth, "not in the cache; referral to {} (no recursion asked for)", ns.name)
        return Step(dns.rcode.NOERROR, authority=ns)

    def known_to_exist(self, name: dns.name.Name) -> bool:
        """The cache holds data or a NODATA for `name`: it is a name of the zone at hand."""
        cache = self._work.ctx.cache
        negative = cache.get_negative(name, MINIMISED_TYPE)
        if negative is not None:
            return negative.rcode == dns.rcode.NOERROR
        return any(
            cache.get_rrset(name, rdtype, min_rank=Rank.NONAUTH_ANSWER) is not None
            for rdtype in (MINIMISED_TYPE, dns.rdatatype.CNAME)
        )

    def stale_answer(self, qname: dns.name.Name, qtype: int) -> Answer | None:
        """The whole CNAME chain from the cache, expired links included, or None if incomplete.

        The driver also uses it to answer a client that has waited long enough while the
        resolution goes on (RFC 8767 section 5's client response timer).
        """
        chain = Chain(qname, self._work.limits.max_cname_chain)
        try:
            while True:
                step = self.from_local(chain.name, qtype, 0)
                if step is None:
                    step = self.from_cache(chain.name, qtype, 0, stale=True)
                if step is None:
                    return None
                answer = chain.extend(step)
                if answer is not None:
                    return replace(answer, stale=True)
        except ResolutionFailed:
            return None
