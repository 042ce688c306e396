"""One client question's state machine: it says whom to ask, is told what they said, and decides.

`next_action()` returns `SendQuery(...)` or `Done(answer)`; `receive(outcome)` feeds back the
response, timeout or error and returns the next action. Internally the walk is written as a
generator (each `yield` is one upstream query), so sub-questions such as the addresses of glueless
name servers are plain nested calls instead of an explicit stack of states.

Each name of a CNAME chain is answered, in this order, from the operator's local data, from the
cache (`lookup.py`), by forwarding (if a forward zone holds it) or by iteration (`walk.py`), which
starts at a stub zone's servers if one holds it and otherwise at the closest cached delegation
or the root. The stages share one `Work` (`work.py`): the tracer, the query budget, the shared
caches. What is cached at which rank is `learn.py`; the exchange with one server, `exchange.py`.
Every link of the chain that is not local data passes the DNSSEC hook (`_validated`, over
`validation.py`) before it joins the chain.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from functools import partial

import dns.name
import dns.rdatatype

from resolver.core.actions import Action, Answer, Done, Outcome, SendQuery
from resolver.core.aggressive import Aggressive, learn
from resolver.core.chain import Chain, Step
from resolver.core.exchange import Exchange
from resolver.core.lookup import CacheLookup
from resolver.core.reasons import ResolutionFailed, ServfailReason
from resolver.core.security import Security
from resolver.core.validation import Validator
from resolver.core.walk import Steps, Walk
from resolver.core.work import Context, Tracer, Work

__all__ = ["Context", "Resolution", "Tracer"]


class Resolution:
    """Resolve (qname, qtype) iteratively; each instance answers exactly one question."""

    def __init__(
        self,
        qname: dns.name.Name,
        qtype: int,
        context: Context,
        trace: Tracer | None = None,
        *,
        refresh: bool = False,
        cache_only: bool = False,
        checking_disabled: bool = False,
    ) -> None:
        self.qname = qname
        self.qtype = qtype
        # Prefetch: ask upstream for the question itself even though the cache still has it.
        self._refresh = refresh
        # A non-recursive (RD=0) question: answered from local data and the cache, or with a
        # referral to the closest known servers, never by asking upstream (RFC 1034 4.3.1).
        self._cache_only = cache_only
        # The client set CD (RFC 4035 3.2.2): the answer is its data even if validation finds
        # it bogus (still validated, so AD says the truth, RFC 4035 3.2.3 and 6840 5.9).
        self.checking_disabled = checking_disabled
        self._work = Work(context, trace)
        self._lookup = CacheLookup(self._work)
        # Glueless name servers' addresses only steer the walk: like Unbound's target
        # queries, they are not validated (a client asking for them later validates them).
        glueless = partial(self._resolve, validate=False)
        self._walk = Walk(self._work, self._lookup, Exchange(self._work), glueless)
        self._validator = Validator(self._work, self._resolve)
        self._aggressive = Aggressive(self._work)
        self._steps = self._run()
        self._done: Done | None = None

    @property
    def queries_sent(self) -> int:
        """Upstream queries this question has cost so far, sub-questions included."""
        return self._work.queries_sent

    @property
    def aggressive_answers(self) -> int:
        """Links of this question answered from validated denials, not upstream (RFC 8198,
        RFC 8020): counted in the `aggressive_answers` metric."""
        return self._work.aggressive_answers

    @property
    def signature_checks(self) -> int:
        """Public-key operations DNSSEC validation has spent on this question (the KeyTrap
        budget's counter, `Work.budget`); 0 when nothing needed validating."""
        return self._work.signature_checks

    # -- the driver's interface ---------------------------------------------------------------

    def next_action(self) -> Action:
        """The first action; call once, then feed every outcome to `receive`."""
        return self._advance(None)

    def receive(self, outcome: Outcome) -> Action:
        return self._advance(outcome)

    def _advance(self, outcome: Outcome | None) -> Action:
        if self._done is not None:
            return self._done
        try:
            return self._steps.send(outcome)  # type: ignore[arg-type]  # priming send(None)
        except StopIteration as finished:
            self._done = Done(finished.value)
            return self._done

    def give_up(self, reason: ServfailReason, detail: str = "") -> Answer:
        """The answer when resolution cannot go on: stale data if allowed and held, else SERVFAIL.

        Stale data stands in only when the authorities failed (RFC 8767 section 4), never for a
        policy failure such as a CNAME loop or an exhausted query budget. Also called by the
        driver when the time allowed for the whole question runs out.
        """
        if reason is ServfailReason.TIMEOUT:  # the driver's cap: remember it too (RFC 9520)
            self._work.ctx.cache.put_failure(self.qname, self.qtype, reason)
        stale = None
        if self._work.ctx.config.cache.serve_stale and reason.authorities_failed:
            stale = self.stale_answer()
        if stale is not None:
            self._work.say(0, "{}; answering with stale data (RFC 8767)", reason.text)
            return stale
        self._work.say(0, "SERVFAIL: {}", f"{reason.text}: {detail}" if detail else reason.text)
        return Answer.servfail(reason, detail)

    def _run(self) -> Generator[SendQuery, Outcome, Answer]:
        try:
            return (yield from self._resolve(self.qname, self.qtype, 0))
        except ResolutionFailed as failure:
            return self.give_up(failure.reason, failure.detail)

    def stale_answer(self) -> Answer | None:
        """The whole CNAME chain from the cache, expired links included, or None if incomplete.

        The driver also uses it to answer a client that has waited long enough while the
        resolution goes on (RFC 8767 section 5's client response timer).
        """
        return self._lookup.stale_answer(self.qname, self.qtype)

    def _resolve(
        self, qname: dns.name.Name, qtype: int, depth: int, *, validate: bool = True
    ) -> Generator[SendQuery, Outcome, Answer]:
        """Follow the CNAME chain from qname, each link from local data, the cache or upstream.

        `validate=False` marks a question asked for the chain of trust itself (DS, DNSKEY) or
        for a glueless name server: its links skip the DNSSEC hook (the validator checks what
        it asked for itself, so validation never recurses into itself).
        """
        chain = Chain(qname, self._work.limits.max_cname_chain)
        while True:
            step = self._lookup.from_local(chain.name, qtype, depth)
            if step is None:
                refreshing = self._refresh and depth == 0 and chain.name == self.qname
                if not refreshing:
                    step = self._lookup.from_cache(chain.name, qtype, depth)
                    if step is None and validate and self._validates(chain.name):
                        step = self._aggressive.answer(chain.name, qtype, depth)
                if step is None and self._cache_only:
                    step = self._lookup.referral(chain.name, depth)
                if step is None:
                    step = yield from self._iterate_remembering_failure(
                        chain.name, qtype, depth, chain.named_by
                    )
                if validate and step.security is not Security.SECURE:
                    step = yield from self._validated(step, chain.name, qtype, depth)
            answer = chain.extend(step)
            if answer is not None:
                return answer

    def _validated(
        self, step: Step, name: dns.name.Name, qtype: int, depth: int
    ) -> Generator[SendQuery, Outcome, Step]:
        """The DNSSEC hook: `step` with its status, when validation applies to `name`.

        A cached status stands (validated once per cached RRset, not once per client); only
        INDETERMINATE steps are validated. Below a negative trust anchor everything is
        insecure. A bogus step fails the question with its reason's Extended DNS Error
        unless the client set CD (RFC 4035 3.2.2): then it gets the data, without AD.
        """
        if step.authority is not None and step.authority.rdtype == dns.rdatatype.NS:
            return step  # a referral answering RD=0: nothing to validate
        anchor = self._work.ctx.anchor_for(name)
        if anchor is None:
            return step  # no trust anchor above the name: indeterminate
        if anchor.negative:
            self._work.say(
                depth, "dnssec: {} is below the negative trust anchor {}", name, anchor.zone
            )
            return replace(step, security=Security.INSECURE)
        if step.security is Security.INDETERMINATE:
            step = yield from self._validator.check(step, name, qtype, depth)
            learn(self._work, step)  # a secure denial's NSEC ranges serve later misses
        if step.security is Security.BOGUS and not self.checking_disabled:
            reason = self._work.ctx.cache.get_bogus(name, qtype) or ServfailReason.DNSSEC_BOGUS
            raise ResolutionFailed(reason)
        return step

    def _validates(self, name: dns.name.Name) -> bool:
        """Whether the validator judges `name`: a trust anchor above it, not a negative one."""
        anchor = self._work.ctx.anchor_for(name)
        return anchor is not None and not anchor.negative

    def _iterate_remembering_failure(
        self, name: dns.name.Name, qtype: int, depth: int, named_by: dns.name.Name | None
    ) -> Steps:
        """Iterate, unless the same question failed moments ago (RFC 9520 section 3).

        A failure of the authorities is remembered for `cache.failure_ttl` seconds, so a dead
        zone costs one client the full wait, not every client; stale data may still answer it.
        Every question looks remembered failures up, but only the client's own question and
        the links of its CNAME chain (depth 0) leave one behind.
        """
        cache = self._work.ctx.cache
        failed = cache.get_failure(name, qtype)
        if failed is not None:
            self._work.say(
                depth,
                "cache: {} {} failed moments ago",
                name,
                dns.rdatatype.RdataType.to_text(qtype),
            )
            raise ResolutionFailed(failed)
        try:
            return (yield from self._walk.iterate(name, qtype, depth, named_by))
        except ResolutionFailed as failure:
            # Only a question asked for itself: a glueless lookup deep inside another question
            # may have failed for that question's caps (depth, cycles), not the name's own.
            if failure.reason.authorities_failed and depth == 0:
                cache.put_failure(name, qtype, failure.reason)
            raise
