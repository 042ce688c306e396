"""Aggressive use of the validated cache (RFC 8198) and "nothing below an NXDOMAIN" (RFC 8020).

A question that misses the cache may still be answered without asking upstream:

- **RFC 8198 (NSEC).** Every NSEC record that proved a SECURE denial says, for as long as it
  lives, that no name between its owner and its next name exists. `learn` puts those records
  in the index of validated ranges (`Context.nsecs`, `cache/nsecs.py`); `Aggressive.answer`
  looks up the range at or before the name (and the one before the wildcard at its closest
  encloser) and hands them to the validator's own `prove_nxdomain` / `prove_nodata`. Only a
  SECURE verdict is answered, NXDOMAIN or NODATA (an empty non-terminal, a wildcard NODATA),
  with the records (and RRSIGs) as its proof: secure, so AD for DO/AD clients. A range lives
  no longer than min(NSEC TTL, SOA TTL, SOA MINIMUM) (RFC 9077), nor past its RRSIGs. NSEC3
  ranges are not indexed: questions in NSEC3 zones go upstream (RFC 8198 allows NSEC3 too).
  Wildcard answers (RFC 8198 5.3, optional) are not synthesised: they go upstream.
- **RFC 8020.** A cached NXDOMAIN for an ancestor of the name means the name does not exist
  either. As Unbound's `harden-below-nxdomain`, only a SECURE NXDOMAIN is used this way: an
  unsigned zone's NXDOMAIN may be a broken server's answer to a name it wrongly denies.

Both only apply where the validator would: below a trust anchor that is not negative
(`Resolution._resolve` asks only for validated questions), and with `dnssec.aggressive_nsec`.
Reads the record cache and the index; `learn` writes the index. No I/O.
"""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.nsecs import NsecRange, ZoneSoa
from resolver.cache.records import with_ttl
from resolver.core.chain import Step
from resolver.core.security import Security
from resolver.core.signatures import signatures_of
from resolver.core.work import Work
from resolver.dnssec import nsec as nsec_proofs
from resolver.dnssec import prove_nodata, prove_nxdomain

_NSEC = dns.rdatatype.NSEC
_SOA = dns.rdatatype.SOA


def _is_denial(step: Step) -> bool:
    """An NXDOMAIN, or a NODATA with its SOA (perhaps after CNAMEs in the same step)."""
    if step.rcode == dns.rcode.NXDOMAIN:
        return True
    return (
        step.rcode == dns.rcode.NOERROR
        and step.next_name is None
        and step.authority is not None
        and step.authority.rdtype == _SOA
    )


def _signature_deadline(sigs: dns.rrset.RRset, now: float) -> float:
    """When the RRSIGs stop vouching for their RRset: the earliest expiration, and never
    longer than their original TTL from now (RFC 4035 5.3.3)."""
    return min(min(float(sig.expiration), now + sig.original_ttl) for sig in sigs)


def learn(work: Work, step: Step) -> int:
    """Index the NSEC records of a SECURE denial (each verified by the validator); how many.

    The zone is the NSEC's signer, whose SOA must be the step's authority: the SOA is the
    authority section of every answer later synthesised from the range.
    """
    ctx = work.ctx
    if not ctx.config.dnssec.aggressive_nsec or step.security is not Security.SECURE:
        return 0
    if not _is_denial(step) or step.authority is None or not step.proof:
        return 0
    soa = step.authority
    now = ctx.cache.now()
    limit = min(soa.ttl, soa[0].minimum, ctx.config.cache.max_negative_ttl)
    soa_sigs = signatures_of(soa, step.proof)
    soa_expires = now + limit
    if soa_sigs is not None and len(soa_sigs):
        soa_expires = min(soa_expires, _signature_deadline(soa_sigs, now))
    zone_soa = ZoneSoa(soa, soa_sigs, soa_expires)
    learnt = 0
    for rrset in step.proof:
        if rrset.rdtype != _NSEC or len(rrset) != 1:
            continue
        sigs = signatures_of(rrset, step.proof)
        if sigs is None or not len(sigs) or sigs[0].signer != soa.name:
            continue
        if not rrset.name.is_subdomain(soa.name):
            continue
        expires = min(now + min(rrset.ttl, limit), _signature_deadline(sigs, now))
        ctx.nsecs.put(soa.name, zone_soa, rrset, NsecRange(rrset, sigs, expires), now)
        learnt += 1
    return learnt


class Aggressive:
    """Answers synthesised from validated denials for one resolution (`Work`)."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def answer(self, name: dns.name.Name, qtype: int, depth: int) -> Step | None:
        """A SECURE NXDOMAIN or NODATA for (name, qtype) from what is validated, or None."""
        if not self._work.ctx.config.dnssec.aggressive_nsec:
            return None
        step = self._below_nxdomain(name, qtype, depth)
        if step is None:
            step = self._from_ranges(name, qtype, depth)
        if step is not None:
            self._work.aggressive_answers += 1
        return step

    # -- RFC 8020 ----------------------------------------------------------------------------

    def _below_nxdomain(self, name: dns.name.Name, qtype: int, depth: int) -> Step | None:
        """NXDOMAIN when a SECURE NXDOMAIN is cached for an ancestor of `name`."""
        cache = self._work.ctx.cache
        ancestor = name
        while len(ancestor) > 2:  # up to the TLD: nothing is denied at the root itself
            ancestor = ancestor.parent()
            negative = cache.get_negative(ancestor, qtype)
            if (
                negative is not None
                and negative.rcode == dns.rcode.NXDOMAIN
                and negative.security is Security.SECURE
            ):
                self._work.say(
                    depth, "cache: {} is below the validated NXDOMAIN {} (RFC 8020)", name, ancestor
                )
                return Step(
                    dns.rcode.NXDOMAIN,
                    authority=negative.soa,
                    proof=negative.proof,
                    security=Security.SECURE,
                )
        return None

    # -- RFC 8198 ----------------------------------------------------------------------------

    def _from_ranges(self, name: dns.name.Name, qtype: int, depth: int) -> Step | None:
        """NXDOMAIN or NODATA proven by indexed NSEC ranges of the zone holding `name`."""
        ctx = self._work.ctx
        index = ctx.nsecs
        # A DS lives on the parent side of a zone cut: the child's ranges cannot deny it.
        above = name.parent() if qtype == dns.rdatatype.DS and name != dns.name.root else name
        zone = index.zone_of(above)
        if zone is None:
            return None
        now = ctx.cache.now()
        soa = index.soa(zone, now)
        first = index.at_or_before(zone, name, now)
        if soa is None or first is None:
            return None
        used = [first]
        (record,) = nsec_proofs.records([first.nsec], zone)
        budget = self._work.budget
        if record.owner == name or _is_ent(record, name):
            if record.owner == name and (record.has(qtype) or record.has(dns.rdatatype.CNAME)):
                return None  # the data exists: not ours to synthesise
            verdict = prove_nodata(name, qtype, zone, [first.nsec], budget)
            rcode = dns.rcode.NOERROR
        elif record.covers(name):
            wildcard = dns.name.Name((b"*", *nsec_proofs.closest_encloser(name, record).labels))
            second = index.at_or_before(zone, wildcard, now)
            if second is None:
                return None
            if second is not first:
                used.append(second)
            (wild,) = nsec_proofs.records([second.nsec], zone)
            if wild.owner == wildcard:
                if wild.has(qtype) or wild.has(dns.rdatatype.CNAME):
                    return None  # a wildcard answer (RFC 8198 5.3): asked upstream
                verdict = prove_nodata(name, qtype, zone, [r.nsec for r in used], budget)
                rcode = dns.rcode.NOERROR
            else:
                verdict = prove_nxdomain(name, zone, [r.nsec for r in used], budget)
                rcode = dns.rcode.NXDOMAIN
        else:
            return None
        if not verdict.secure:
            return None
        ttl = max(1, int(min([soa.expires, *(r.expires for r in used)]) - now))
        self._work.say(
            depth,
            "cache: {} {} {} from validated NSEC ranges of {} (RFC 8198)",
            name,
            dns.rdatatype.RdataType.to_text(qtype),
            "NXDOMAIN" if rcode == dns.rcode.NXDOMAIN else "NODATA",
            zone,
        )
        proof: list[dns.rrset.RRset] = []
        for rng in used:
            proof += [with_ttl(rng.nsec, ttl), with_ttl(rng.signatures, ttl)]
        if soa.signatures is not None:
            proof.append(with_ttl(soa.signatures, ttl))
        return Step(
            dns.rcode.Rcode(rcode),
            authority=with_ttl(soa.soa, min(ttl, soa.soa.ttl)),
            proof=tuple(proof),
            security=Security.SECURE,
        )


def _is_ent(record: nsec_proofs.NsecRecord, name: dns.name.Name) -> bool:
    """The NSEC before `name` points below it: `name` is an empty non-terminal."""
    return record.owner < name and record.next != name and record.next.is_subdomain(name)
