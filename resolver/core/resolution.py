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
import dns.rrset

from resolver.cache.records import with_ttl
from resolver.core.actions import Action, Answer, Done, Outcome, SendQuery
from resolver.core.aggressive import Aggressive, learn
from resolver.core.chain import Chain, Step
from resolver.core.exchange import Exchange
from resolver.core.lookup import CacheLookup
from resolver.core.reasons import ResolutionFailed, ServfailReason
from resolver.core.retry import MAX_RETRIES, avoid
from resolver.core.security import Security
from resolver.core.shared import SharedSteps
from resolver.core.validation import Validator
from resolver.core.walk import FATAL, Walk
from resolver.core.work import Context, Tracer, Work
from resolver.dnssec import Anchor

__all__ = ["Context", "Resolution", "Tracer"]


class Resolution:
    """Resolve (qname, qtype) iteratively; each instance answers exactly one question."""

    __slots__ = (
        "_aggressive_made",
        "_cache_only",
        "_done",
        "_lookup",
        "_refresh",
        "_shared",
        "_steps",
        "_validator_made",
        "_walk_made",
        "_work",
        "checking_disabled",
        "private",
        "qname",
        "qtype",
    )

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
        shared: SharedSteps | None = None,
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
        # A value the shared cache holds for this very question (`core/shared.py`): read by
        # this question's own chain only, never put into the record cache.
        self._shared = shared
        #: A link of the answer is answered by this resolver's own configuration (local data,
        #: a forward or stub zone: `Context.routed_privately`): never shared with a fleet.
        self.private = False
        self._work = Work(context, trace)
        self._lookup = CacheLookup(self._work)
        # The walk is made when a link first needs iterating (a question answered from the
        # cache never does), the validator and the aggressive answers when a name under a
        # trust anchor first needs them: most questions (validation off, or no anchor above
        # the name) never do, and each costs objects per question. The walk and the validator
        # call back into this resolution (a reference cycle, as is the suspended generator's
        # frame): `_release` breaks them when the question ends, so that reference counting
        # alone frees a finished question's objects.
        self._walk_made: Walk | None = None
        self._validator_made: Validator | None = None
        self._aggressive_made: Aggressive | None = None
        # The client's question itself; a failure that escapes it becomes `give_up`'s answer
        # (in `_advance`, not in a wrapping generator: each level costs every query's outcome
        # one more frame to pass through).
        self._steps = self._resolve(qname, qtype, 0)
        self._done: Done | None = None

    @property
    def _validator(self) -> Validator:
        if self._validator_made is None:
            self._validator_made = Validator(self._work, self._resolve)
        return self._validator_made

    @property
    def _walk(self) -> Walk:
        if self._walk_made is None:
            # Glueless name servers' addresses only steer the walk: like Unbound's target
            # queries, they are not validated (a client asking for them later validates them).
            glueless = partial(self._resolve, validate=False)
            self._walk_made = Walk(self._work, self._lookup, Exchange(self._work), glueless)
        return self._walk_made

    @property
    def _aggressive(self) -> Aggressive:
        if self._aggressive_made is None:
            self._aggressive_made = Aggressive(self._work)
        return self._aggressive_made

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

    @property
    def nsec3_hashes(self) -> int:
        """NSEC3 hash computations DNSSEC validation has spent on this question."""
        return self._work.nsec3_hashes

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
            self._release()
            return self._done
        except ResolutionFailed as failure:
            self._release()
            self._done = Done(self.give_up(failure.reason, failure.detail))
            return self._done
        except BaseException:
            self._release()  # a bug: the driver ends the question (the generator is finished)
            raise

    def close(self) -> None:
        """The driver is done with this question, answered or not (out of time, replaced):
        its generator, if still suspended, is closed now, as the cyclic garbage collector
        would close it later, and the objects that point back at this resolution are let go.

        Only reading methods (`give_up`'s answer, `stale_answer`, the counters) may follow.
        """
        self._steps.close()
        self._release()

    def _release(self) -> None:
        """Break the reference cycles through this resolution (walk and validator hold its
        `_resolve`): without it, each question left about 25 objects, its answer among them,
        for the cyclic garbage collector, whose young collections then paused the daemon."""
        self._walk_made = None
        self._validator_made = None

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

    def stale_answer(self) -> Answer | None:
        """The whole CNAME chain from the cache, expired links included, or None if incomplete.

        The driver also uses it to answer a client that has waited long enough while the
        resolution goes on (RFC 8767 section 5's client response timer).
        """
        stale = self._lookup.stale_answer(self.qname, self.qtype)
        if stale is None and self._shared is not None and not self.private:
            stale = self._shared.stale_answer(
                self._work.limits.max_cname_chain, self._work.ctx.config.cache.stale_answer_ttl
            )
        return stale

    def attach_shared(self, shared: SharedSteps) -> None:
        """A (stale) shared value for this question arrived after the resolution started: it
        can stand in for the answer by RFC 8767's rules (`stale_answer`), nothing else."""
        self._shared = shared

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
            if depth == 0 and not self.private and self._work.ctx.routed_privately(chain.name):
                self.private = True
            step = self._lookup.from_local(chain.name, qtype, depth)
            if step is None:
                step = yield from self._obtained(chain, qtype, depth, validate)
            answer = chain.extend(step)
            if answer is not None:
                return answer

    def _from_shared(self, name: dns.name.Name) -> Step | None:
        """The link for `name` from the shared value of this question, if fresh."""
        shared = self._shared
        if shared is None or shared.stale or self.private:
            return None  # a name this resolver routes itself: the fleet's view does not apply
        step = shared.step(name)
        if step is not None:
            self._work.say(0, "shared cache: {} answered for this question only", name)
        return step

    def _obtained(
        self, chain: Chain, qtype: int, depth: int, validate: bool
    ) -> Generator[SendQuery, Outcome, Step]:
        """The link for `chain.name` from the cache or upstream, through the DNSSEC hook.

        A link that validates bogus now (fresh, or cached but not yet validated) is forgotten
        and asked again, its server avoided, up to `MAX_RETRIES` more times (`core/retry.py`);
        when no other server is left, the last bogus verdict stands.
        """
        name = chain.name
        refreshing = self._refresh and depth == 0 and name == self.qname
        bogus: Step | None = None
        for attempt in range(1 + MAX_RETRIES):
            server = None
            step = None if refreshing or attempt else self._lookup.from_cache(name, qtype, depth)
            fresh_only = refreshing or attempt
            if step is None and validate and not fresh_only and self._validates(name):
                step = self._aggressive.answer(name, qtype, depth)  # RFC 8198 / RFC 8020
            if step is None and self._shared is not None and depth == 0 and not refreshing:
                step = None if attempt else self._from_shared(name)
            if step is None and self._cache_only:
                step = self._lookup.referral(name, depth)
            if step is None:
                self._work.answered_by = None
                if attempt == 0:
                    self._raise_remembered_failure(name, qtype, depth)
                # The walk is delegated to here, not through a helper generator: every
                # upstream query's outcome passes each generator level on its way down.
                try:
                    step = yield from self._walk.iterate(name, qtype, depth, chain.named_by)
                except ResolutionFailed as failure:
                    if attempt == 0:
                        # Remembered (RFC 9520) only for the client's own question and the
                        # links of its chain: a glueless lookup deep inside another question
                        # may have failed for that question's caps (depth, cycles), not the
                        # name's own.
                        if failure.reason.authorities_failed and depth == 0:
                            self._work.ctx.cache.put_failure(name, qtype, failure.reason)
                        raise
                    # A failure now is no failure of the name: it is not remembered.
                    if failure.reason in FATAL or bogus is None:
                        raise
                    self._work.say(depth, "  no other server: {}", failure.reason.text)
                    break
                server = self._work.answered_by
            if not validate or step.security is Security.SECURE:
                return step
            fresh = step.security is Security.INDETERMINATE
            anchor = self._anchor_over(step, name)
            if anchor is not None:  # else nothing to validate: no generator to make and run
                step = yield from self._validated(step, anchor, name, qtype, depth)
            if step.security is not Security.BOGUS:
                return step
            bogus = step
            if not fresh or self._cache_only or attempt == MAX_RETRIES:
                break
            # Its cache entries stay until the next response replaces them: if no other
            # server answers, the bogus verdict stands for `bogus_ttl`, as without a retry.
            avoid(self._work, name, qtype, server, depth)
        assert bogus is not None
        return self._bogus(bogus, name, qtype)

    def _anchor_over(self, step: Step, name: dns.name.Name) -> Anchor | None:
        """The trust anchor (or negative one) that the DNSSEC hook judges `step` under, or None
        when the hook leaves the step as it is: a referral answering RD=0 (nothing to
        validate), or no trust anchor above the name (indeterminate)."""
        if step.authority is not None and step.authority.rdtype == dns.rdatatype.NS:
            return None
        return self._work.ctx.anchor_for(name)

    def _validated(
        self, step: Step, anchor: Anchor, name: dns.name.Name, qtype: int, depth: int
    ) -> Generator[SendQuery, Outcome, Step]:
        """The DNSSEC hook: `step` with its status under `anchor` (`_anchor_over`).

        A cached status stands (validated once per cached RRset, not once per client); only
        INDETERMINATE steps are validated. Below a negative trust anchor everything is
        insecure. A bogus step is returned as such: `_obtained` asks again or calls `_bogus`.
        """
        if anchor.negative:
            self._work.say(
                depth, "dnssec: {} is below the negative trust anchor {}", name, anchor.zone
            )
            return replace(step, security=Security.INSECURE)
        if step.security is Security.INDETERMINATE:
            step = yield from self._validator.check(step, name, qtype, depth)
            learn(self._work, step)  # a secure denial's NSEC ranges serve later misses
        return step

    def _bogus(self, step: Step, name: dns.name.Name, qtype: int) -> Step:
        """A bogus link fails the question with its reason's Extended DNS Error unless the
        client set CD (RFC 4035 3.2.2): then it gets the data, without AD."""
        if not self.checking_disabled:
            reason = self._work.ctx.cache.get_bogus(name, qtype) or ServfailReason.DNSSEC_BOGUS
            raise ResolutionFailed(reason)
        return bogus_for_cd(step, self._work.ctx.config.dnssec.bogus_ttl)

    def _validates(self, name: dns.name.Name) -> bool:
        """Whether the validator judges `name`: a trust anchor above it, not a negative one."""
        anchor = self._work.ctx.anchor_for(name)
        return anchor is not None and not anchor.negative

    def _raise_remembered_failure(self, name: dns.name.Name, qtype: int, depth: int) -> None:
        """Fail at once if the same question failed moments ago (RFC 9520 section 3).

        A failure of the authorities is remembered for `cache.failure_ttl` seconds (by
        `_obtained`), so a dead zone costs one client the full wait, not every client; stale
        data may still answer it. Every question looks remembered failures up, but only the
        client's own question and the links of its CNAME chain (depth 0) leave one behind.
        """
        failed = self._work.ctx.cache.get_failure(name, qtype)
        if failed is not None:
            self._work.say(
                depth,
                "cache: {} {} failed moments ago",
                name,
                dns.rdatatype.RdataType.to_text(qtype),
            )
            raise ResolutionFailed(failed)


def bogus_for_cd(step: Step, bogus_ttl: int) -> Step:
    """A bogus link as a CD=1 client gets it: its data, every TTL capped at `bogus_ttl`.

    The data is known to be bad; like Unbound's val-bogus-ttl, neither we nor the client's
    own cache should keep it longer than it takes to ask again.
    """

    def capped(rrsets: tuple[dns.rrset.RRset, ...]) -> tuple[dns.rrset.RRset, ...]:
        return tuple(
            with_ttl(rrset, bogus_ttl) if rrset.ttl > bogus_ttl else rrset for rrset in rrsets
        )

    authority = step.authority
    if authority is not None and authority.ttl > bogus_ttl:
        authority = with_ttl(authority, bogus_ttl)
    return replace(
        step,
        records=capped(step.records),
        signatures=capped(step.signatures),
        proof=capped(step.proof),
        authority=authority,
    )
