"""A shared-cache value as the links of the one question it was stored under, and nothing more.

A value from the shared cache (`cache/shared.py`) is what another member, or whoever can write to
that Redis, says about one question: (qname, qtype). Put into the record cache, its records would
answer other questions too: the CNAME target's data would answer a later question for the target
itself, an NS set or an address on the chain would replace a delegation or glue and steer
iteration, and an NXDOMAIN for the chain's last name would deny every type of that name. So it
never enters the record cache. The resolution of that very question holds it (`SharedSteps`), and
only its own chain at depth 0 reads it, after local data and the record cache (what this member
learnt itself wins) and before iterating. Each link is `detached`: the validator checks it as it
would a cached link, but writes no verdict into the record cache, whose entry for the same name and
type is other data. The answer it makes reaches the packet cache, keyed by the question, as every
answer does: that is its one home on this member.

Unbound's cachedb does the same in effect: a value from Redis is a message for its query, used
as the reply to that query, not spread over the rrset cache under ranks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.records import with_ttl
from resolver.cache.shared import SharedAnswer
from resolver.core.actions import Answer
from resolver.core.chain import Chain, Step
from resolver.core.reasons import ResolutionFailed


@dataclass(frozen=True)
class SharedSteps:
    """The links of one shared value, by the name each is for; `stale`: past its expiry, for
    RFC 8767's stale answer only."""

    qname: dns.name.Name
    stale: bool
    steps: dict[dns.name.Name, Step] = field(default_factory=dict)

    @classmethod
    def of(cls, answer: SharedAnswer, qname: dns.name.Name) -> SharedSteps:
        """The links `answer` (checked and aged by `cache.shared.decode`) holds for `qname`."""
        steps: dict[dns.name.Name, Step] = {}
        for rrset, sig in zip(answer.chain, answer.signatures, strict=True):
            signatures = () if sig is None else (sig,)
            next_name = None
            if rrset.rdtype == dns.rdatatype.CNAME and rrset.name != answer.last:
                next_name = rrset[0].target
            steps[rrset.name] = Step(
                dns.rcode.NOERROR,
                (rrset,),
                next_name=next_name,
                signatures=signatures,
                detached=True,
            )
        if answer.soa is not None:
            steps[answer.last] = Step(
                answer.rcode, authority=answer.soa, proof=answer.proof, detached=True
            )
        return cls(qname, answer.stale, steps)

    def step(self, name: dns.name.Name) -> Step | None:
        """The link for `name` of this question's chain, if the value holds one."""
        return self.steps.get(name)

    def stale_answer(self, limit: int, ttl: int) -> Answer | None:
        """The whole chain as a stale answer (RFC 8767), every TTL `ttl` (the stale-answer TTL
        a local expired record gets), or None if the value holds no whole chain."""
        chain = Chain(self.qname, limit)
        try:
            while True:
                step = self.steps.get(chain.name)
                if step is None:
                    return None
                answer = chain.extend(_with_ttl(step, ttl))
                if answer is not None:
                    return replace(answer, stale=True)
        except ResolutionFailed:
            return None


def _with_ttl(step: Step, ttl: int) -> Step:
    """`step` with every record's TTL set to `ttl`."""
    return replace(
        step,
        records=tuple(with_ttl(rrset, ttl) for rrset in step.records),
        authority=None if step.authority is None else with_ttl(step.authority, ttl),
        signatures=tuple(with_ttl(sig, ttl) for sig in step.signatures),
        proof=tuple(with_ttl(rrset, ttl) for rrset in step.proof),
    )
