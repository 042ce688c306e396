"""Learning from verdicts: what is cached, at which trust rank (RFC 2181 5.4.1, RFC 2308).

Referral NS sets and glue only steer the iterator (ranks REFERRAL and GLUE); answer data goes in
at ANSWER, or NONAUTH_ANSWER without AA, so the zone's own authoritative answer replaces it;
negative answers are kept with their SOA for min(SOA TTL, SOA MINIMUM).
"""

from __future__ import annotations

import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.records import Rank, RecordCache, with_ttl
from resolver.core.chain import Records, Step
from resolver.core.classify import Classified, Kind
from resolver.core.signatures import signatures_of
from resolver.core.work import Work
from resolver.core.zonecut import Delegation


def follow_referral(cache: RecordCache, verdict: Classified) -> Delegation:
    """Remember a referral's NS set and glue, ranked below answers, and where it points."""
    assert verdict.delegation is not None
    cache.put_rrset(verdict.delegation, Rank.REFERRAL, delegation=True)
    for glue in verdict.glue:
        cache.put_rrset(glue, Rank.GLUE, delegation=True)
    return Delegation.from_ns(verdict.delegation, cache, verdict.glue)


def cache_verdict(cache: RecordCache, verdict: Classified) -> None:
    """Remember a verdict's records: AA answers at rank ANSWER, others one rank below."""
    rank = Rank.ANSWER if verdict.authoritative else Rank.NONAUTH_ANSWER
    signatures = verdict.signatures
    previous = None
    for rrset in verdict.chain:
        # A CNAME synthesised from the DNAME before it is not kept: the cached DNAME gives it
        # again, with the DNAME in the answer as RFC 6672 wants (Unbound does the same).
        synthesised = rrset.rdtype == dns.rdatatype.CNAME and previous == dns.rdatatype.DNAME
        if not synthesised:
            sigs = signatures_of(rrset, signatures) if signatures else None  # unsigned: none
            cache.put_rrset(rrset, rank, signatures=sigs)
        previous = rrset.rdtype
    for glue in verdict.glue:
        cache.put_rrset(glue, Rank.GLUE)


def cache_negative(cache: RecordCache, verdict: Classified, qtype: int) -> dns.rrset.RRset | None:
    """Remember an NXDOMAIN or NODATA verdict (RFC 2308); the SOA to hand out, if any."""
    if verdict.kind not in (Kind.NXDOMAIN, Kind.NODATA) or verdict.soa is None:
        return None
    proof = verdict.proof
    if verdict.kind is Kind.NXDOMAIN:
        cache.put_negative(verdict.final_name, None, dns.rcode.NXDOMAIN, verdict.soa, proof=proof)
    else:
        cache.put_negative(verdict.final_name, qtype, dns.rcode.NOERROR, verdict.soa, proof=proof)
    return with_ttl(verdict.soa, cache.negative_ttl(verdict.soa))


def conclude(work: Work, verdict: Classified, qtype: int, depth: int) -> Step:
    """Cache what the server (or forwarder) said and turn it into a chain step."""
    cache = work.ctx.cache
    # (A negative answer has no records: nothing is cached or copied for nothing.)
    if verdict.chain or verdict.glue:
        cache_verdict(cache, verdict)
    records: tuple[dns.rrset.RRset, ...] = ()
    if verdict.chain:
        records = tuple([with_ttl(r, cache.clamp_ttl(r.ttl)) for r in verdict.chain])
    signatures: tuple[dns.rrset.RRset, ...] = ()
    if verdict.signatures:
        signatures = tuple([with_ttl(r, cache.clamp_ttl(r.ttl)) for r in verdict.signatures])
    if verdict.kind is Kind.ANSWER:
        if work.trace is not None:
            work.say(depth, "  answer: {}", Records(verdict.chain))
        return Step(dns.rcode.NOERROR, records, signatures=signatures, proof=verdict.proof)
    if verdict.kind is Kind.CNAME:
        if work.trace is not None:
            work.say(depth, "  alias: {}", Records(verdict.chain))
        return Step(
            dns.rcode.NOERROR,
            records,
            next_name=verdict.final_name,
            signatures=signatures,
            proof=verdict.proof,
        )
    if verdict.kind is Kind.YXDOMAIN:
        work.say(depth, "  YXDOMAIN: the DNAME makes {} too long", verdict.final_name)
        return Step(dns.rcode.YXDOMAIN, records)
    rcode = dns.rcode.NXDOMAIN if verdict.kind is Kind.NXDOMAIN else dns.rcode.NOERROR
    soa = cache_negative(cache, verdict, qtype)
    label = "NXDOMAIN" if rcode == dns.rcode.NXDOMAIN else "NODATA"
    work.say(depth, "  {} for {}", label, verdict.final_name)
    proof = () if soa is None else verdict.proof
    return Step(rcode, records, soa, signatures=signatures, proof=proof)
