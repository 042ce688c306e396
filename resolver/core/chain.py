"""One link of a CNAME chain and the chain itself: what each stage of a resolution hands back.

`Step` is what one name resolved to (from local data, the cache or upstream); `Chain` collects
the links of one question, with the caps on its length and loops; `Question` is a name and type
as sent upstream; `Records` renders RRsets for traces only when a tracer reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.core.actions import Answer
from resolver.core.reasons import ResolutionFailed, ServfailReason, ValidationNote
from resolver.core.security import Security, weakest

_CNAME = dns.rdatatype.CNAME


@dataclass(frozen=True, slots=True)
class Question:
    """A name and type as sent upstream (the client's own, or a minimised one on the way)."""

    name: dns.name.Name
    rdtype: int


@dataclass(slots=True)
class Step:
    """What one name in a CNAME chain resolved to; `next_name` is set when the chain goes on.

    `authority` is the one RRset for the authority section: the SOA of a negative answer, or
    the NS set of the referral that answers a non-recursive (RD=0) question the cache cannot.
    `named_by` is the zone whose servers gave the alias to `next_name`: they know that name
    already, so there is nothing to hide from them by minimising it.

    A value: nothing changes a step once it is made (`dataclasses.replace` makes a changed
    copy). Not frozen all the same, as `classify.Classified` is not: a frozen dataclass sets
    each field through `object.__setattr__`, which made one of ten fields cost five times as
    much to build, and one is built for every link of every question. (The engine's inputs
    and outputs, `actions.py`, are frozen: they cross to the carrier.)
    """

    rcode: dns.rcode.Rcode
    records: tuple[dns.rrset.RRset, ...] = ()
    authority: dns.rrset.RRset | None = None
    next_name: dns.name.Name | None = None
    named_by: dns.name.Name | None = None
    #: DNSSEC: RRSIGs of `records`, the denial's NSEC/NSEC3 proof, and the weakest status of
    #: this link's cache entries (see `actions.Answer`).
    signatures: tuple[dns.rrset.RRset, ...] = ()
    proof: tuple[dns.rrset.RRset, ...] = ()
    security: Security = Security.INDETERMINATE
    #: Why an insecure link is insecure, for the client's Extended DNS Errors (EDE 1, 2, 27).
    notes: tuple[ValidationNote, ...] = ()
    #: Not a record-cache entry (a link of a shared-cache value, `core/shared.py`): the
    #: validator's verdict on it is not written to the cache, whose entry for the same name
    #: and type (if any) is other data.
    detached: bool = False


class Chain:
    """The CNAME chain being followed for one question: its links so far and where it is.

    The answer is put together from the links once the last one is in: most chains have one
    link, whose parts (tuples already) then become the answer's as they are.
    """

    def __init__(self, qname: dns.name.Name, limit: int) -> None:
        self.name = qname
        self.named_by: dns.name.Name | None = None  # see `Step.named_by`
        self._aliases: list[Step] = []  # the links before the last, each ending in an alias
        self._owners: set[dns.name.Name] = set()  # the names of the chain's CNAME records
        self._limit = limit

    def extend(self, step: Step) -> Answer | None:
        """Add one link (which may hold several CNAMEs); the answer, or None while it goes on."""
        owners = self._owners
        for rrset in step.records:
            if rrset.rdtype == _CNAME:
                owners.add(rrset.name)
        if len(owners) > self._limit:
            raise ResolutionFailed(ServfailReason.CNAME_CHAIN_TOO_LONG)
        if step.next_name is None:
            return self._answer(step)
        if step.next_name in owners:
            raise ResolutionFailed(ServfailReason.CNAME_LOOP)
        self._aliases.append(step)
        self.name = step.next_name
        self.named_by = step.named_by
        return None

    def _answer(self, last: Step) -> Answer:
        """The answer whose last link is `last`: every link's records, signatures and proof in
        order, the weakest status of them, and their notes, each once."""
        authority = (last.authority,) if last.authority is not None else ()
        if not self._aliases:
            return Answer(
                last.rcode,
                last.records,
                authority,
                signatures=last.signatures,
                proof=last.proof,
                security=last.security,
                notes=tuple(dict.fromkeys(last.notes)) if last.notes else (),
            )
        links = [*self._aliases, last]
        return Answer(
            last.rcode,
            tuple([rrset for link in links for rrset in link.records]),
            authority,
            signatures=tuple([rrset for link in links for rrset in link.signatures]),
            proof=tuple([rrset for link in links for rrset in link.proof]),
            security=weakest([link.security for link in links]),
            notes=tuple(dict.fromkeys([note for link in links for note in link.notes])),
        )


class Records:
    """RRsets as one short trace line, rendered only if a tracer formats it."""

    def __init__(self, rrsets: tuple[dns.rrset.RRset, ...]) -> None:
        self._rrsets = rrsets

    def __str__(self) -> str:
        return ", ".join(self._short(rrset) for rrset in self._rrsets)

    @staticmethod
    def _short(rrset: dns.rrset.RRset) -> str:
        if len(rrset) > 3:
            kind = dns.rdatatype.to_text(rrset.rdtype)
            return f"{rrset.name} {rrset.ttl} {kind} ({len(rrset)} records)"
        return "; ".join(rrset.to_text().splitlines())
