"""DNSSEC validation as a stage of a resolution: each step of the chain gets its verdict.

`Resolution._resolve` hands every step of a question (an answer, a CNAME link, a negative
answer; fresh or from the cache) whose status is INDETERMINATE to `Validator.check` when a
trust anchor lies above the name (RFC 4035 section 5, Unbound's `validator/validator.c` in
one class). The library (`resolver.dnssec`) judges; this module gathers what it needs:

- **Keys** (`keys_for`): the `KeyEntry` of the zone a name lies in, from the key cache
  (`Context.keys`) or built upward: a trust anchor's zone fetches its DNSKEY RRset and checks
  it against the anchor (and tells `Context.anchor_keys_seen`, for RFC 5011); any other name
  starts from the closest entry known at or above it (one key-cache lookup per label; an
  insecure or bad one answers for everything below, with nothing stored per label), then
  asks DS one label at a time downward: a signed DS leads to the DNSKEY
  RRset of a new zone; a proven absence of DS is an unsigned delegation (insecure, and
  everything below it) or no zone cut at all (the parent's keys stand, remembered for the
  name so the DS is not asked again). A signed answer starts at its RRSIG's signer; an
  unsigned one at its owner name, which walks DS down from the anchor as Unbound does to find
  where the signatures should have come from.
- **Sub-questions** for DS and DNSKEY go through the resolution's own `resolve` (cache,
  forwarders, stub zones, the walk's DS-to-the-parent rule) with `validate=False`: they are
  checked here, by the chain, never by the hook (no recursion).
- **Verdicts** are recorded in the record cache (`set_security`, the TTL capped by the
  signatures, RFC 4035 5.3.3), so every cached RRset is validated once, not once per client.
  A bogus step is kept `dnssec.bogus_ttl` with its reason (`put_bogus`), logged once, and
  answered SERVFAIL with its Extended DNS Error, unless the client set CD (RFC 4035 3.2.2).
- **Work** is charged to the question's `Budget` (`Work.budget`): past a cap, bogus (KeyTrap).
  With a tracer, every step of the library's `Trace` goes out through `Work.say`.

Reads and writes: the record cache (statuses, bogus reasons), the key cache. No I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.records import with_ttl
from resolver.core.actions import Answer, Outcome, SendQuery
from resolver.core.chain import Step
from resolver.core.classify import synthesise_cname
from resolver.core.reasons import ResolutionFailed, ServfailReason, ValidationNote
from resolver.core.retry import MAX_RETRIES, blame
from resolver.core.security import Security
from resolver.core.signatures import signatures_of
from resolver.core.work import Work
from resolver.dnssec import (
    Ede,
    KeyEntry,
    Trace,
    Verdict,
    prove_no_ds,
    prove_nodata,
    prove_nxdomain,
    prove_wildcard,
    validate_dnskeys,
    verify_rrset,
)

if TYPE_CHECKING:  # for annotations only: the trust anchors' record types
    from dns.rdtypes.ANY.DNSKEY import DNSKEY
    from dns.rdtypes.ANY.DS import DS

log = logging.getLogger("resolver.dnssec")

#: `Resolution._resolve` as the validator calls it: (name, type, depth, validate=False).
SubQuestion = Callable[..., Generator[SendQuery, Outcome, Answer]]
Checks = Generator[SendQuery, Outcome, Verdict]
Keys = Generator[SendQuery, Outcome, KeyEntry | None]

#: Failures that end the whole client question (`walk.FATAL`), not just a key fetch.
_FATAL = frozenset({ServfailReason.TOO_MANY_QUERIES, ServfailReason.TIMEOUT})

_DENIAL_TYPES = frozenset({dns.rdatatype.NSEC, dns.rdatatype.NSEC3})

#: What a bogus verdict's EDE says as a SERVFAIL reason (RFC 8914 section 4).
_FAILURES = {
    Ede.SIGNATURE_EXPIRED: ServfailReason.SIGNATURE_EXPIRED,
    Ede.SIGNATURE_NOT_YET_VALID: ServfailReason.SIGNATURE_NOT_YET_VALID,
    Ede.DNSKEY_MISSING: ServfailReason.DNSKEY_MISSING,
    Ede.RRSIGS_MISSING: ServfailReason.RRSIGS_MISSING,
    Ede.NSEC_MISSING: ServfailReason.NSEC_MISSING,
}

#: What an insecure verdict's EDE says to the client beside a NOERROR.
_NOTES = {
    Ede.UNSUPPORTED_DNSKEY_ALGORITHM: ValidationNote.UNSUPPORTED_DNSKEY_ALGORITHM,
    Ede.UNSUPPORTED_DS_DIGEST_TYPE: ValidationNote.UNSUPPORTED_DS_DIGEST,
    Ede.UNSUPPORTED_NSEC3_ITERATIONS: ValidationNote.NSEC3_ITERATIONS,
}


def failure_of(verdict: Verdict) -> ServfailReason:
    """The SERVFAIL reason (and so the EDE) of a bogus verdict."""
    if verdict.ede is None:
        return ServfailReason.DNSSEC_BOGUS
    return _FAILURES.get(verdict.ede, ServfailReason.DNSSEC_BOGUS)


def _name_type(name: dns.name.Name, rdtype: int) -> str:
    return f"{name} {dns.rdatatype.RdataType.to_text(rdtype)}"


class Validator:
    """Validation for one resolution (`Work`); `resolve` asks its DS and DNSKEY questions."""

    def __init__(self, work: Work, resolve: SubQuestion) -> None:
        self._work = work
        self._resolve = resolve
        self._trace = Trace(enabled=work.trace is not None)
        self._shown = 0
        # Zones whose keys are being built: a key fetch that needs itself gives up (None).
        self._building: set[dns.name.Name] = set()
        # Set by `_child_entry`: its DS question was answered by a secure NXDOMAIN.
        self._nxdomain_proven = False
        # Set by `_fetch`: the (name, type, server) of the last DS or DNSKEY response; the
        # server is None when it came from the cache.
        self._origin: tuple[dns.name.Name, int, str | None] | None = None

    # -- one step of a chain -----------------------------------------------------------------

    def check(
        self, step: Step, name: dns.name.Name, qtype: int, depth: int
    ) -> Generator[SendQuery, Outcome, Step]:
        """`step` (the link for `name`) with its security, its TTLs capped, and its notes.

        A bogus step is returned as such (its reason kept with `put_bogus`): the caller decides
        between SERVFAIL and, for a client that set CD, the data.
        """
        cache = self._work.ctx.cache
        statuses: list[Security] = []
        notes: list[ValidationNote] = []
        records: list[dns.rrset.RRset] = []
        bogus: Verdict | None = None
        previous: dns.rrset.RRset | None = None
        tracing = self._trace.enabled  # the text of what is said only when it is shown
        if tracing:
            self._say(depth, "validating {}", _name_type(name, qtype))
        for rrset in step.records:
            if previous is not None and self._synthesised(previous, rrset):
                records.append(rrset)  # a DNAME's CNAME: unsigned by nature, the DNAME speaks
                previous = rrset
                continue
            previous = rrset
            if rrset.rdtype == dns.rdatatype.RRSIG:
                # Signatures asked for by type: nothing signs them (RFC 4035 section 5.3),
                # so an RRSIG answer stays indeterminate, as in Unbound.
                records.append(rrset)
                statuses.append(Security.INDETERMINATE)
                continue
            verdict, remember = yield from self._positive(rrset, step, depth)
            status = verdict.security
            statuses.append(status)
            if verdict.secure and verdict.ttl is not None and verdict.ttl < rrset.ttl:
                rrset = with_ttl(rrset, verdict.ttl)
            records.append(rrset)
            if bogus is None and verdict.bogus:
                bogus = verdict
            self._note(verdict, notes)
            if remember and status is not Security.INDETERMINATE and not step.detached:
                ttl = verdict.ttl if verdict.secure else None
                cache.set_security(rrset.name, rrset.rdtype, status, ttl=ttl)
        if self._is_denial(step):
            final = self._final_name(name, step.records)
            verdict, remember = yield from self._denial(step, final, qtype, depth)
            statuses.append(verdict.security)
            if bogus is None and verdict.bogus:
                bogus = verdict
            self._note(verdict, notes)
            if remember and verdict.security is not Security.INDETERMINATE and not step.detached:
                nxdomain = step.rcode == dns.rcode.NXDOMAIN
                cache.set_security(
                    final, None if nxdomain else qtype, verdict.security, negative=True
                )
        security = min(statuses, default=Security.INDETERMINATE)
        if bogus is not None:
            reason = failure_of(bogus)
            if not step.detached:
                cache.put_bogus(name, qtype, reason)
            log.warning(
                "DNSSEC: %s is bogus: %s (%s)", _name_type(name, qtype), bogus.reason, reason.text
            )
        if tracing:
            self._say(depth, "verdict for {}: {}", _name_type(name, qtype), security.name.lower())
        return replace(step, records=tuple(records), security=security, notes=tuple(notes))

    @staticmethod
    def _synthesised(previous: dns.rrset.RRset, rrset: dns.rrset.RRset) -> bool:
        if previous.rdtype != dns.rdatatype.DNAME or rrset.rdtype != dns.rdatatype.CNAME:
            return False
        made = synthesise_cname(previous, rrset.name)
        return made is not None and made[0] == rrset[0]

    @staticmethod
    def _is_denial(step: Step) -> bool:
        """An NXDOMAIN or NODATA (perhaps after CNAMEs), not a referral or a positive answer."""
        if step.rcode == dns.rcode.NXDOMAIN:
            return True
        if step.rcode != dns.rcode.NOERROR or step.next_name is not None:
            return False
        if step.authority is not None:
            return step.authority.rdtype == dns.rdatatype.SOA
        return not step.records

    @staticmethod
    def _final_name(name: dns.name.Name, records: tuple[dns.rrset.RRset, ...]) -> dns.name.Name:
        """Where the CNAMEs of a step lead from `name`: the name a denial speaks of."""
        for rrset in records:
            if rrset.rdtype == dns.rdatatype.CNAME and rrset.name == name:
                name = rrset[0].target
        return name

    def _note(self, verdict: Verdict, notes: list[ValidationNote]) -> None:
        if verdict.security is Security.INSECURE and verdict.ede in _NOTES:
            note = _NOTES[verdict.ede]
            if note not in notes:
                notes.append(note)

    # -- positive data -----------------------------------------------------------------------

    def _positive(
        self, rrset: dns.rrset.RRset, step: Step, depth: int
    ) -> Generator[SendQuery, Outcome, tuple[Verdict, bool]]:
        """The verdict on one RRset of an answer, and whether to record it in the cache."""
        what = _name_type(rrset.name, rrset.rdtype)
        sigs = signatures_of(rrset, step.signatures)
        if sigs is None or not len(sigs):
            entry = yield from self.keys_for(rrset.name, depth)
            return self._unsigned(entry, what, Ede.RRSIGS_MISSING)
        signer = sigs[0].signer
        found = yield from self._signer_keys(rrset.name, signer, what, depth)
        if not isinstance(found, KeyEntry):
            return found
        entry = found
        now = self._work.ctx.cache.now()
        verdict = verify_rrset(
            rrset, sigs, signer, entry.index, now, self._work.budget, self._trace
        )
        self._show(depth)
        if verdict.secure and verdict.wildcard is not None:
            proof = self._verified_proof(step.proof, entry, depth)
            if isinstance(proof, Verdict):
                return proof, True
            wildcard = prove_wildcard(
                rrset.name, verdict.wildcard, signer, proof, self._work.budget, self._trace
            )
            self._show(depth)
            if not wildcard.secure:
                return wildcard, True
        if not verdict.secure:
            return self._must_be_secure(verdict, what), True
        return verdict, True

    def _signer_keys(
        self, owner: dns.name.Name, signer: dns.name.Name, what: str, depth: int
    ) -> Generator[SendQuery, Outcome, KeyEntry | tuple[Verdict, bool]]:
        """The validated keys of the zone `signer` names, or the verdict (and whether to
        record it) when there are none to check with: a signer not above the data, a signer
        that is no zone cut, keys unknown, or a zone already insecure or bad."""
        if not owner.is_subdomain(signer):
            return self._verdict(Security.BOGUS, f"{what}: signer {signer} is not above it"), True
        entry = yield from self.keys_for(signer, depth)
        if entry is None:
            return self._verdict(Security.INDETERMINATE, f"{what}: no keys for {signer}"), False
        if not entry.keys:
            return self._from_entry(entry, what)
        if entry.zone != signer:
            reason = f"{what}: signer {signer} is no zone (its zone is {entry.zone})"
            return self._verdict(Security.BOGUS, reason), True
        return entry

    def _unsigned(self, entry: KeyEntry | None, what: str, missing: Ede) -> tuple[Verdict, bool]:
        """Data without RRSIGs: insecure below an unsigned delegation, bogus in a signed zone."""
        if entry is None:
            return self._verdict(Security.INDETERMINATE, f"{what}: zone unknown"), False
        if not entry.keys:
            return self._from_entry(entry, what)
        return self._verdict(
            Security.BOGUS, f"{what}: no RRSIG, but {entry.zone} is signed", missing
        ), True

    def _from_entry(self, entry: KeyEntry, what: str) -> tuple[Verdict, bool]:
        """An insecure or bad zone's verdict for its data. Insecure data with a note (EDE 1,
        2) is not recorded: the next question derives it again from the key cache, at no
        cost, and so gets the note too."""
        verdict = entry.verdict
        security = verdict.security
        reason = f"{what}: {entry.zone} is {security.name.lower()} ({verdict.reason})"
        made = self._verdict(security, reason, verdict.ede)
        return made, not (security is Security.INSECURE and verdict.ede in _NOTES)

    # -- denials -----------------------------------------------------------------------------

    def _denial(
        self, step: Step, name: dns.name.Name, qtype: int, depth: int
    ) -> Generator[SendQuery, Outcome, tuple[Verdict, bool]]:
        """The verdict on an NXDOMAIN or NODATA for `name`, from its NSEC/NSEC3 proof."""
        nxdomain = step.rcode == dns.rcode.NXDOMAIN
        what = f"{'NXDOMAIN' if nxdomain else 'NODATA'} {_name_type(name, qtype)}"
        signer = self._proof_signer(step.proof)
        if signer is None:
            soa = step.authority
            zone = soa.name if soa is not None and name.is_subdomain(soa.name) else name
            entry = yield from self.keys_for(zone, depth)
            return self._unsigned(entry, what, Ede.NSEC_MISSING)
        found = yield from self._signer_keys(name, signer, what, depth)
        if not isinstance(found, KeyEntry):
            return found
        entry = found
        soa = step.authority
        if soa is not None and soa.rdtype == dns.rdatatype.SOA:
            sigs = signatures_of(soa, step.proof)
            if sigs is not None:
                now = self._work.ctx.cache.now()
                checked = verify_rrset(
                    soa, sigs, signer, entry.index, now, self._work.budget, self._trace
                )
                self._show(depth)
                if not checked.secure:
                    return self._must_be_secure(checked, f"{what}: SOA"), True
        proof = self._verified_proof(step.proof, entry, depth)
        if isinstance(proof, Verdict):
            return proof, True
        budget = self._work.budget
        if nxdomain:
            verdict = prove_nxdomain(name, signer, proof, budget, self._trace)
        else:
            verdict = prove_nodata(name, qtype, signer, proof, budget, self._trace)
        self._show(depth)
        return verdict, True

    @staticmethod
    def _proof_signer(proof: tuple[dns.rrset.RRset, ...]) -> dns.name.Name | None:
        """The zone that signed the NSEC/NSEC3 records of a proof, if any signature is there."""
        for rrset in proof:
            if rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers in _DENIAL_TYPES:
                return rrset[0].signer
        return None

    def _verified_proof(
        self, proof: tuple[dns.rrset.RRset, ...], entry: KeyEntry, depth: int
    ) -> list[dns.rrset.RRset] | Verdict:
        """The NSEC/NSEC3 RRsets of `proof`, each verified with the zone's keys, or the
        verdict of the first that does not verify."""
        now = self._work.ctx.cache.now()
        verified: list[dns.rrset.RRset] = []
        for rrset in proof:
            if rrset.rdtype not in _DENIAL_TYPES:
                continue
            sigs = signatures_of(rrset, proof)
            verdict = verify_rrset(
                rrset, sigs, entry.zone, entry.index, now, self._work.budget, self._trace
            )
            self._show(depth)
            if not verdict.secure:
                return self._must_be_secure(verdict, f"{_name_type(rrset.name, rrset.rdtype)}")
            verified.append(rrset)
        return verified

    def _must_be_secure(self, verdict: Verdict, what: str) -> Verdict:
        """A verdict on a record of a zone with validated keys that is not secure: bogus.

        Inside a signed zone nothing is insecure (that is decided at its DS and DNSKEY);
        an insecure verdict here would be a downgrade, so it becomes bogus.
        """
        if verdict.bogus:
            return verdict
        reason = f"{what} is not signed by its zone's keys ({verdict.reason})"
        return self._verdict(Security.BOGUS, reason, Ede.RRSIGS_MISSING)

    # -- the chain of trust ------------------------------------------------------------------

    def keys_for(self, name: dns.name.Name, depth: int) -> Keys:
        """The key entry of the zone `name` lies in (see the module), or None where it cannot
        be known (no anchor above it, an NTA, or a fetch that would need itself).

        Iterative and cheap for deep names: the anchor is looked up once; the closest entry
        already known at or above `name` is found with one key-cache lookup per label; an
        insecure or bad entry there answers for everything below it (nothing is stored per
        label); below a secure one, DS is asked one label at a time down to `name`, an entry
        is stored only for each name so probed, and a proven NXDOMAIN ends the walk (nothing
        exists below it, so no zone cut either).
        """
        ctx = self._work.ctx
        now = ctx.cache.now()
        held = ctx.keys.get(name, now)
        if held is not None:
            return held
        anchor = ctx.anchor_for(name)
        if anchor is None or anchor.negative:
            return None
        # The closest known entry between `name` and the anchor's zone.
        below: list[dns.name.Name] = []
        known: KeyEntry | None = None
        cursor = name
        while True:
            known = ctx.keys.get(cursor, now)
            if known is not None or cursor == anchor.zone:
                break
            below.append(cursor)
            cursor = cursor.parent()
        if known is None:  # cursor is the anchor's zone
            if cursor in self._building:
                return None
            self._building.add(cursor)
            try:
                zone = cursor
                known = yield from self._keys_with_retry(
                    lambda: self._anchor_keys(zone, anchor.ds, anchor.dnskeys, depth), depth
                )
            finally:
                self._building.discard(cursor)
            ctx.keys.put(cursor, known, ctx.cache.now())
        entry = known
        for child in reversed(below):
            if not entry.keys:
                return entry  # insecure or bad from above: so is everything below
            if child in self._building:
                return None
            self._building.add(child)
            try:
                entry, nothing_below = yield from self._child_keys(child, entry, depth)
            finally:
                self._building.discard(child)
            ctx.keys.put(child, entry, ctx.cache.now())
            if nothing_below:
                self._say(depth, "{} does not exist: no zone cut below it", child)
                return entry
        return entry

    def _anchor_keys(
        self,
        zone: dns.name.Name,
        ds: tuple[DS, ...],
        dnskeys: tuple[DNSKEY, ...],
        depth: int,
    ) -> Generator[SendQuery, Outcome, KeyEntry]:
        """The DNSKEY RRset of a trust anchor's zone, checked against the anchor."""
        ctx = self._work.ctx
        self._say(depth, "trust anchor {}: fetching its DNSKEY RRset", zone)
        answer = yield from self._fetch(zone, dns.rdatatype.DNSKEY, depth)
        keyset, sigs = self._rrset_of(answer, zone, dns.rdatatype.DNSKEY)
        now = ctx.cache.now()
        entry = validate_dnskeys(
            zone,
            keyset,
            sigs,
            ds,
            now,
            self._work.budget,
            self._trace,
            anchor_keys=dnskeys,
        )
        self._show(depth)
        if keyset is not None:
            ctx.anchor_keys_seen(zone, keyset, sigs, now)
        self._record_keys(entry, zone)
        return entry

    def _child_keys(
        self, name: dns.name.Name, parent: KeyEntry, depth: int
    ) -> Generator[SendQuery, Outcome, tuple[KeyEntry, bool]]:
        """Below a secure `parent`: `name`'s own keys (a signed DS), an insecure delegation
        (no DS, proven), or the parent's entry (no zone cut at `name`, proven); and whether
        `name` was proven not to exist (NXDOMAIN: nothing below it to probe)."""
        entry = yield from self._keys_with_retry(
            lambda: self._child_entry(name, parent, depth), depth
        )
        return entry, self._nxdomain_proven

    def _keys_with_retry(
        self, build: Callable[[], Generator[SendQuery, Outcome, KeyEntry]], depth: int
    ) -> Generator[SendQuery, Outcome, KeyEntry]:
        """`build()`'s entry; a bad one made bad by a DS or DNSKEY response is built again
        with that response forgotten and its server avoided, up to `MAX_RETRIES` more times
        (`core/retry.py`). A bad entry that no response made (a failed fetch) stands.

        The servers avoided here are avoided for this key fetch only: a DS walk below a zone
        (for unsigned data) may find a sound server's proof wanting, and the question must
        still be able to ask that server for its signed answer."""
        avoided = set(self._work.avoid)
        judged: KeyEntry | None = None  # the last bad entry a response made: its reason counts
        try:
            for attempt in range(1 + MAX_RETRIES):
                self._origin = None
                entry = yield from build()
                if not entry.verdict.bogus:
                    return entry
                if self._origin is None:  # no other server left: the last response's reason
                    return judged or entry
                if attempt == MAX_RETRIES:
                    return entry
                judged = entry
                name, rdtype, server = self._origin
                blame(self._work, name, rdtype, server, depth)
            raise AssertionError("unreachable: the last attempt returns")
        finally:
            self._work.avoid &= avoided

    def _child_entry(
        self, name: dns.name.Name, parent: KeyEntry, depth: int
    ) -> Generator[SendQuery, Outcome, KeyEntry]:
        self._nxdomain_proven = False
        ctx = self._work.ctx
        budget = self._work.budget
        answer = yield from self._fetch(name, dns.rdatatype.DS, depth)
        now = ctx.cache.now()
        if answer is None:
            verdict = self._verdict(Security.BOGUS, f"no answer to DS {name}", Ede.DNSKEY_MISSING)
            return KeyEntry.bad(name, verdict, now, budget)
        ds, sigs = self._rrset_of(answer, name, dns.rdatatype.DS)
        if ds is not None:
            verdict = verify_rrset(ds, sigs, parent.zone, parent.index, now, budget, self._trace)
            self._show(depth)
            if not verdict.secure:
                # Only a proof of no DS (below) makes a delegation insecure; a DS RRset the
                # parent's keys do not verify is bogus, whatever its RRSIGs' algorithm.
                verdict = self._must_be_secure(verdict, f"DS {name}")
                return KeyEntry.bad(name, verdict, now, budget)
            ctx.cache.set_security(name, dns.rdatatype.DS, Security.SECURE, ttl=verdict.ttl)
            self._say(depth, "DS {}: secure; fetching its DNSKEY RRset", name)
            keys_answer = yield from self._fetch(name, dns.rdatatype.DNSKEY, depth)
            keyset, key_sigs = self._rrset_of(keys_answer, name, dns.rdatatype.DNSKEY)
            entry = validate_dnskeys(
                name,
                keyset,
                key_sigs,
                ds,
                ctx.cache.now(),
                budget,
                self._trace,
                ds_ttl=verdict.ttl,
            )
            self._show(depth)
            self._record_keys(entry, name)
            return entry
        if any(rrset.rdtype == dns.rdatatype.CNAME for rrset in answer.answer):
            self._say(depth, "{} is an alias: no zone cut there", name)
            return parent
        signer = self._proof_signer(answer.proof)
        if signer is None:
            verdict = self._verdict(
                Security.BOGUS, f"no DS for {name} and no proof of it", Ede.NSEC_MISSING
            )
            return KeyEntry.bad(name, verdict, now, budget)
        proof = self._verified_proof(answer.proof, parent, depth)
        if isinstance(proof, Verdict):
            return KeyEntry.bad(name, proof, now, budget)
        if answer.rcode == dns.rcode.NXDOMAIN:
            verdict = prove_nxdomain(name, parent.zone, proof, budget, self._trace)
        else:
            verdict = prove_no_ds(name, parent.zone, proof, budget, self._trace)
        self._show(depth)
        if verdict.security is Security.SECURE:
            self._nxdomain_proven = answer.rcode == dns.rcode.NXDOMAIN
            return parent  # no zone cut at `name`
        if verdict.security is Security.INSECURE:
            soa = next(iter(answer.authority), None)
            ttl = soa.ttl if soa is not None else budget.limits.bad_key_ttl
            return KeyEntry.insecure(name, verdict, now, ttl)
        return KeyEntry.bad(name, verdict, now, budget)

    def _record_keys(self, entry: KeyEntry, zone: dns.name.Name) -> None:
        """A secure DNSKEY RRset is secure data too: say so in the record cache."""
        if entry.verdict.secure:
            ttl = max(0, int(entry.expires - self._work.ctx.cache.now()))
            self._work.ctx.cache.set_security(zone, dns.rdatatype.DNSKEY, Security.SECURE, ttl=ttl)

    def _fetch(
        self, name: dns.name.Name, rdtype: int, depth: int
    ) -> Generator[SendQuery, Outcome, Answer | None]:
        """Ask (name, rdtype) for the chain of trust; None if that fails. `_origin` says
        which response it was, for `_keys_with_retry`."""
        self._origin = None
        self._work.answered_by = None
        try:
            answer = yield from self._resolve(name, rdtype, depth + 1, validate=False)
        except ResolutionFailed as failure:
            if failure.reason in _FATAL:
                raise
            self._say(depth, "{} failed: {}", _name_type(name, rdtype), failure.reason.text)
            return None
        self._origin = (name, rdtype, self._work.answered_by)
        return answer

    @staticmethod
    def _rrset_of(
        answer: Answer | None, name: dns.name.Name, rdtype: int
    ) -> tuple[dns.rrset.RRset | None, dns.rrset.RRset | None]:
        """The (name, rdtype) RRset of an answer and its RRSIGs."""
        if answer is None:
            return None, None
        for rrset in answer.answer:
            if rrset.rdtype == rdtype and rrset.name == name:
                return rrset, signatures_of(rrset, answer.signatures)
        return None, None

    # -- the trace ---------------------------------------------------------------------------

    def _verdict(self, security: Security, reason: str, ede: Ede | None = None) -> Verdict:
        return self._trace.verdict(security, reason, ede)

    def _say(self, depth: int, template: str, *args: object) -> None:
        if self._trace.enabled:
            self._show(depth)
            self._work.say(depth, "  dnssec: " + template, *args)

    def _show(self, depth: int) -> None:
        """Send the library's trace steps not yet shown to the tracer."""
        if not self._trace.enabled:
            return
        steps = self._trace.steps
        for line in steps[self._shown :]:
            self._work.say(depth, "  dnssec: {}", line)
        self._shown = len(steps)
