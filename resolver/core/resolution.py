"""One client question's state machine: it says whom to ask, is told what they said, and decides.

`next_action()` returns `SendQuery(...)` or `Done(answer)`; `receive(outcome)` feeds back the
response, timeout or error and returns the next action. Internally the walk is written as a
generator (each `yield` is one upstream query), so sub-questions such as the addresses of glueless
name servers are plain nested calls instead of an explicit stack of states.

Each name of a CNAME chain is answered, in this order, from the operator's local data, from the
cache, by forwarding (if a forward zone holds it) or by iteration, which starts at a stub zone's
servers if one holds it and otherwise at the closest cached delegation or the root. Iteration
minimises the names it shows servers above the name's zone (RFC 9156, see `_iterate`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum, auto

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.records import Rank, RecordCache, with_ttl
from resolver.cache.servers import ServerTable
from resolver.config import Config
from resolver.core.actions import (
    Action,
    Answer,
    BareHeader,
    Done,
    NetworkError,
    Outcome,
    Response,
    SendQuery,
    Server,
    Timeout,
)
from resolver.core.hints import RootHints
from resolver.core.iterate import (
    Classified,
    Kind,
    classify,
    classify_recursive,
    synthesise_cname,
)
from resolver.core.minimise import Minimiser
from resolver.core.overrides import LocalData, Route, Routes
from resolver.core.reasons import ResolutionFailed, ServfailReason
from resolver.core.scrub import is_response_to, randomize_case
from resolver.core.selection import choose_in_order, choose_server, usable_address
from resolver.core.zonecut import Delegation

Tracer = Callable[[str], None]
Steps = Generator[SendQuery, Outcome, "Step"]

# Failures that end the whole client question, not just one glueless side-lookup.
_FATAL = frozenset({ServfailReason.TOO_MANY_QUERIES, ServfailReason.TIMEOUT})

#: The type of minimised queries. RFC 9156 section 2.1 leaves the choice open; NS probes trip up
#: servers that mishandle NS below the apex, while A is the most common type of all, so it hides
#: the real question best and its answer is ordinary data (Unbound and PowerDNS use A as well).
MINIMISED_TYPE = dns.rdatatype.A

#: Types asked with their own type even before the name's zone is known: A is what minimised
#: questions look like anyway, and DS is asked of the parent on purpose.
_UNHIDDEN_TYPES = frozenset({dns.rdatatype.A, dns.rdatatype.DS})

#: Rcodes whose response is classified; any other makes the caller try another server.
_JUDGED_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN})


@dataclass(frozen=True)
class Question:
    """A name and type as sent upstream (the client's own, or a minimised one on the way)."""

    name: dns.name.Name
    rdtype: int


class _Miss(Enum):
    """Why one server gave no verdict, so the caller can try another (or another question)."""

    SILENT = auto()  # no answer, a network error, or a response to some other question
    UNREACHABLE = auto()  # no route to the address, or nothing listens there
    REJECTED = auto()  # an error rcode (REFUSED, SERVFAIL, FORMERR...) for this question
    LAME = auto()  # it does not serve the zone it was asked as


@dataclass(frozen=True)
class Step:
    """What one name in a CNAME chain resolved to; `next_name` is set when the chain goes on.

    `authority` is the one RRset for the authority section: the SOA of a negative answer, or
    the NS set of the referral that answers a non-recursive (RD=0) question the cache cannot.
    """

    rcode: dns.rcode.Rcode
    records: tuple[dns.rrset.RRset, ...] = ()
    authority: dns.rrset.RRset | None = None
    next_name: dns.name.Name | None = None


@dataclass
class _Walk:
    """Where QNAME minimisation stands in one zone: the deepest name known to exist there
    (the zone's apex at first) and whether names are still being minimised."""

    known: dns.name.Name
    minimising: bool


class _Attempts:
    """The servers of one zone asked so far for one question, and the retransmission schedule.

    A server that stayed silent may just have lost a datagram: it is asked again in a later
    round, with the timeout doubled each round (exponential backoff), up to `retries` more
    rounds. A server that answered badly, or whose address is unreachable, is not.
    """

    def __init__(self, timeout: float, retries: int) -> None:
        self.timeout = timeout
        self.any_asked = False
        self._retries_left = retries
        self._round = 1
        self._tried: set[tuple[str, int]] = set()
        self._silent: list[Server] = []

    def fresh(self, servers: Iterable[Server]) -> list[Server]:
        """The servers not yet asked in this round."""
        return [s for s in servers if (s.address, s.port) not in self._tried]

    def asked(self, server: Server) -> None:
        self._tried.add((server.address, server.port))
        self.any_asked = True

    def silent(self, server: Server) -> None:
        self._silent.append(server)

    def next_round(self) -> bool:
        """Start another round for the silent servers; False when none is left to retry."""
        if not self._silent or self._retries_left <= 0:
            return False
        self._retries_left -= 1
        self._round += 1
        self.timeout *= 2
        for server in self._silent:
            self._tried.discard((server.address, server.port))
        self._silent.clear()
        return True

    def __str__(self) -> str:
        return f"no answer; asking again (round {self._round}, timeout {self.timeout:.1f} s)"


class _Chain:
    """The CNAME chain being followed for one question: its records so far and where it is."""

    def __init__(self, qname: dns.name.Name, limit: int) -> None:
        self.name = qname
        self.records: list[dns.rrset.RRset] = []
        self._aliases: set[dns.name.Name] = set()
        self._limit = limit

    def extend(self, step: Step) -> Answer | None:
        """Add one link (which may hold several CNAMEs); the answer, or None while it goes on."""
        self.records.extend(step.records)
        for rrset in step.records:
            if rrset.rdtype == dns.rdatatype.CNAME:
                self._aliases.add(rrset.name)
        if len(self._aliases) > self._limit:
            raise ResolutionFailed(ServfailReason.CNAME_CHAIN_TOO_LONG)
        if step.next_name is None:
            authority = (step.authority,) if step.authority is not None else ()
            return Answer(step.rcode, tuple(self.records), authority)
        if step.next_name in self._aliases:
            raise ResolutionFailed(ServfailReason.CNAME_LOOP)
        self.name = step.next_name
        return None


@dataclass(frozen=True)
class Context:
    """What every resolution shares: the cache, server data, hints, settings, randomness.

    The local data and the forward/stub routes are parsed from `config` here, once, so a bad
    line fails when the resolver starts (OverrideError naming it), not at the first query.
    """

    cache: RecordCache
    servers: ServerTable
    hints: RootHints
    config: Config
    rng: random.Random
    local: LocalData = field(init=False, repr=False)
    routes: Routes = field(init=False, repr=False)
    configured_addresses: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "local", LocalData.parse(self.config.local_data))
        object.__setattr__(self, "routes", Routes.from_config(self.config))
        hinted = {address for found in self.hints.addresses.values() for address in found}
        configured = self.routes.addresses() | hinted
        object.__setattr__(self, "configured_addresses", configured)


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
    ) -> None:
        self.qname = qname
        self.qtype = qtype
        # Prefetch: ask upstream for the question itself even though the cache still has it.
        self._refresh = refresh
        # A non-recursive (RD=0) question: answered from local data and the cache, or with a
        # referral to the closest known servers, never by asking upstream (RFC 1034 4.3.1).
        self._cache_only = cache_only
        self.queries_sent = 0
        self._ctx = context
        self._limits = context.config.limits
        self._trace = trace
        self._in_progress: set[dns.name.Name] = set()
        self._steps = self._run()
        self._done: Done | None = None

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

    def _say(self, depth: int, template: str, *args: object) -> None:
        """Report a step to the tracer; the text is only built when someone is listening."""
        if self._trace is not None:
            self._trace("  " * depth + template.format(*args))

    # -- the walk -----------------------------------------------------------------------------

    def give_up(self, reason: ServfailReason) -> Answer:
        """The answer when resolution cannot go on: stale data if allowed and held, else SERVFAIL.

        Stale data stands in only when the authorities failed (RFC 8767 section 4), never for a
        policy failure such as a CNAME loop or an exhausted query budget. Also called by the
        driver when the time allowed for the whole question runs out.
        """
        if reason is ServfailReason.TIMEOUT:  # the driver's cap: remember it too (RFC 9520)
            self._ctx.cache.put_failure(self.qname, self.qtype, reason)
        stale = None
        if self._ctx.config.cache.serve_stale and reason.authorities_failed:
            stale = self.stale_answer()
        if stale is not None:
            self._say(0, "{}; answering with stale data (RFC 8767)", reason.text)
            return stale
        self._say(0, "SERVFAIL: {}", reason.text)
        return Answer.servfail(reason)

    def _run(self) -> Generator[SendQuery, Outcome, Answer]:
        try:
            return (yield from self._resolve(self.qname, self.qtype, 0))
        except ResolutionFailed as failure:
            return self.give_up(failure.reason)

    def stale_answer(self) -> Answer | None:
        """The whole CNAME chain from the cache, expired links included, or None if incomplete.

        The driver also uses it to answer a client that has waited long enough while the
        resolution goes on (RFC 8767 section 5's client response timer).
        """
        chain = _Chain(self.qname, self._limits.max_cname_chain)
        try:
            while True:
                step = self._from_local(chain.name, self.qtype, 0)
                if step is None:
                    step = self._from_cache(chain.name, self.qtype, 0, stale=True)
                if step is None:
                    return None
                answer = chain.extend(step)
                if answer is not None:
                    return replace(answer, stale=True)
        except ResolutionFailed:
            return None

    def _resolve(
        self, qname: dns.name.Name, qtype: int, depth: int
    ) -> Generator[SendQuery, Outcome, Answer]:
        """Follow the CNAME chain from qname, each link from local data, the cache or upstream."""
        chain = _Chain(qname, self._limits.max_cname_chain)
        while True:
            step = self._from_local(chain.name, qtype, depth)
            refreshing = self._refresh and depth == 0 and chain.name == self.qname
            if step is None and not refreshing:
                step = self._from_cache(chain.name, qtype, depth)
            if step is None and self._cache_only:
                step = self._referral_from_cache(chain.name, depth)
            if step is None:
                step = yield from self._iterate_remembering_failure(chain.name, qtype, depth)
            answer = chain.extend(step)
            if answer is not None:
                return answer

    def _iterate_remembering_failure(self, name: dns.name.Name, qtype: int, depth: int) -> Steps:
        """Iterate, unless the same question failed moments ago (RFC 9520 section 3).

        A failure of the authorities is remembered for `cache.failure_ttl` seconds, so a dead
        zone costs one client the full wait, not every client; stale data may still answer it.
        Every question looks remembered failures up, but only the client's own question and
        the links of its CNAME chain (depth 0) leave one behind.
        """
        cache = self._ctx.cache
        failed = cache.get_failure(name, qtype)
        if failed is not None:
            self._say(
                depth,
                "cache: {} {} failed moments ago",
                name,
                dns.rdatatype.RdataType.to_text(qtype),
            )
            raise ResolutionFailed(failed)
        try:
            return (yield from self._iterate(name, qtype, depth))
        except ResolutionFailed as failure:
            # Only a question asked for itself: a glueless lookup deep inside another question
            # may have failed for that question's caps (depth, cycles), not the name's own.
            if failure.reason.authorities_failed and depth == 0:
                cache.put_failure(name, qtype, failure.reason)
            raise

    def _referral_from_cache(self, name: dns.name.Name, depth: int) -> Step:
        """The answer to a non-recursive question the cache cannot answer: where to ask next.

        The closest cached delegation (its NS set, TTL aged), else the root's, as BIND and RFC
        1034 section 4.3.2 do; nothing is sent upstream.
        """
        cache = self._ctx.cache
        closest = cache.closest_delegation(name)
        zone = closest.name if closest is not None else dns.name.root
        ns = cache.get_rrset(zone, dns.rdatatype.NS)
        if ns is None:
            hints = self._ctx.hints.ns
            ns = with_ttl(hints, cache.clamp_ttl(hints.ttl, delegation=True))
        self._say(depth, "not in the cache; referral to {} (no recursion asked for)", ns.name)
        return Step(dns.rcode.NOERROR, authority=ns)

    def _from_local(self, name: dns.name.Name, qtype: int, depth: int) -> Step | None:
        """The operator's own records for `name`: they override the cache and the internet.

        A local name answers every type itself: the type asked for, else a local CNAME to
        follow, else NODATA (without SOA: the resolver holds no zone to quote one from).
        """
        local = self._ctx.local.lookup(name) if self._ctx.local else None
        if local is None:
            return None
        if qtype == dns.rdatatype.ANY:
            records = tuple(local.values())
        else:
            found = local.get(qtype)
            records = (found,) if found is not None else ()
        if records:
            self._say(depth, "local data: {} {}", name, dns.rdatatype.RdataType.to_text(qtype))
            return Step(dns.rcode.NOERROR, records)
        cname = local.get(dns.rdatatype.CNAME) if qtype != dns.rdatatype.CNAME else None
        if cname is not None:
            self._say(depth, "local data: {} is an alias for {}", name, cname[0].target)
            return Step(dns.rcode.NOERROR, (cname,), next_name=cname[0].target)
        self._say(
            depth, "local data: {} has no {} (NODATA)", name, dns.rdatatype.RdataType.to_text(qtype)
        )
        return Step(dns.rcode.NOERROR)

    def _from_cache(
        self, name: dns.name.Name, qtype: int, depth: int, stale: bool = False
    ) -> Step | None:
        cache = self._ctx.cache
        if stale:  # what is known now beats what was known before: a fresh denial first
            negative = cache.get_negative(name, qtype)
            if negative is not None:
                return Step(negative.rcode, authority=negative.soa)
        found = cache.get_rrset(name, qtype, min_rank=Rank.NONAUTH_ANSWER, stale=stale)
        if found is not None:
            self._say(depth, "cache: {} {} answered", name, dns.rdatatype.RdataType.to_text(qtype))
            return Step(dns.rcode.NOERROR, (found,))
        if qtype != dns.rdatatype.CNAME:
            cname = cache.get_rrset(
                name, dns.rdatatype.CNAME, min_rank=Rank.NONAUTH_ANSWER, stale=stale
            )
            if cname is not None:
                self._say(depth, "cache: {} is an alias for {}", name, cname[0].target)
                return Step(dns.rcode.NOERROR, (cname,), next_name=cname[0].target)
        negative = cache.get_negative(name, qtype, stale=stale)
        if negative is not None:
            self._say(depth, "cache: {} {} (negative)", name, dns.rcode.to_text(negative.rcode))
            return Step(negative.rcode, authority=negative.soa)
        if qtype != dns.rdatatype.DNAME:
            return self._from_cached_dname(name, qtype, depth, stale)
        return None

    def _from_cached_dname(
        self, name: dns.name.Name, qtype: int, depth: int, stale: bool
    ) -> Step | None:
        """A cached DNAME above `name` redirects it (RFC 6672): the DNAME and its CNAME."""
        cache = self._ctx.cache
        ancestor = name
        while ancestor != dns.name.root:
            ancestor = ancestor.parent()
            dname = cache.get_rrset(
                ancestor, dns.rdatatype.DNAME, min_rank=Rank.NONAUTH_ANSWER, stale=stale
            )
            if dname is None:
                continue
            cname = synthesise_cname(dname, name)
            if cname is None:
                return None
            self._say(depth, "cache: {} is redirected by DNAME {}", name, ancestor)
            if qtype == dns.rdatatype.CNAME:
                return Step(dns.rcode.NOERROR, (dname, cname))
            return Step(dns.rcode.NOERROR, (dname, cname), next_name=cname[0].target)
        return None

    def _iterate(self, name: dns.name.Name, qtype: int, depth: int) -> Steps:
        """Walk down from the closest known zone cut until a server answers for `name`.

        With QNAME minimisation (RFC 9156, relaxed mode as Unbound's default), the servers of
        each zone on the way are asked for one more label below what is known (type A) rather
        than for the whole name, and the question's own type goes only to the zone that holds
        the name: while it is not known whether the name is a zone cut of its own, even the
        full name is asked with type A first (Unbound does the same). What each answer means:
        - a referral: follow it, and minimise again from the new zone;
        - NOERROR (data, an alias or NODATA: an empty non-terminal or a name with data but no
          cut): no cut there, so add labels and ask the same zone again;
        - NXDOMAIN: for the name itself, the answer; for a name above it, RFC 8020 says nothing
          exists below, but some servers still deny empty non-terminals, and without DNSSEC we
          cannot tell: relaxed mode asks the same zone for the full name instead of concluding
          (Unbound with qname-minimisation-strict: no);
        - an error rcode, a lame reply or silence: the server chokes on the minimised question,
          so it is asked the full question (see `_ask_zone`).
        When every server of a delegation taken from the cache fails (its addresses expired or
        changed, or all of them are dead), the delegation is learnt again from the zone above
        (RFC 1034 section 5.3.3; Unbound's "delegation point is useless").
        """
        # DS lives in the parent zone, so it is asked of the servers above the cut.
        start = name.parent() if qtype == dns.rdatatype.DS and name != dns.name.root else name
        route = self._ctx.routes.find(start) if self._ctx.routes else None
        if route is not None and route.recursive:
            verdict = yield from self._forward(route, Question(name, qtype), depth)
            return self._conclude(verdict, qtype, depth)
        delegation = yield from self._closest_delegation(start, depth, route)
        target = Question(name, qtype)
        minimiser = self._minimiser(name)
        walk = _Walk(delegation.zone, minimising=minimiser is not None)
        relearnt: set[dns.name.Name] = set()
        referrals = 0
        while True:
            question = self._next_question(walk, minimiser, target, depth)
            fallback = target if question != target else None
            # A delegation that the parent could hand over afresh is asked once round, without
            # retransmissions: if it fails, a query to the parent costs less than waiting
            # again, and the parent may know of new addresses.
            relearnable = self._relearnable(delegation, relearnt)
            try:
                asked, verdict = yield from self._ask_zone(
                    delegation, question, depth, fallback, retries=0 if relearnable else None
                )
            except ResolutionFailed as failure:
                if not (relearnable and failure.reason.authorities_failed):
                    raise
                relearnt.add(delegation.zone)
                self._say(depth, "  no usable server for {}; asking its parent", delegation.zone)
                parent = delegation.zone.parent()
                delegation = yield from self._closest_delegation(parent, depth, route)
                walk = _Walk(delegation.zone, minimising=minimiser is not None)
                continue
            if asked != target and verdict.kind is not Kind.REFERRAL:
                if verdict.kind is Kind.NXDOMAIN and asked.name == name:
                    return self._conclude(verdict, qtype, depth)  # no such name, whatever type
                if verdict.kind is Kind.NXDOMAIN:
                    self._cache_negative(verdict, asked.rdtype)
                    self._say(depth, "  NXDOMAIN for {}; asking for the full name", asked.name)
                    walk.minimising = False
                    continue
                self._cache_verdict(verdict)
                self._cache_negative(verdict, asked.rdtype)
                self._say(depth, "  {} exists, no zone cut there", asked.name)
                walk.known = asked.name
                continue
            if verdict.kind is not Kind.REFERRAL:
                return self._conclude(verdict, qtype, depth)
            referrals += 1
            if referrals > self._limits.max_referrals:
                raise ResolutionFailed(ServfailReason.REFERRAL_DEPTH)
            assert verdict.delegation is not None
            delegation = self._follow_referral(verdict)
            self._say(depth, "  referral to {}", delegation.describe())
            walk = _Walk(delegation.zone, minimising=minimiser is not None)

    def _minimiser(self, name: dns.name.Name) -> Minimiser | None:
        upstream = self._ctx.config.upstream
        if not upstream.qname_minimisation:
            return None
        return Minimiser(name, upstream.max_minimise_count, upstream.minimise_one_label)

    def _next_question(
        self, walk: _Walk, minimiser: Minimiser | None, target: Question, depth: int
    ) -> Question:
        """What to ask the current zone's servers: a minimised name, the name typed A, or all."""
        if minimiser is None or not walk.minimising:
            return target
        walk.known, child = self._skip_known(minimiser, walk.known, depth)
        if child is None:
            walk.minimising = False  # the cache holds an NXDOMAIN on the way: relaxed mode
            return target
        if child != target.name:
            return Question(child, MINIMISED_TYPE)
        if target.rdtype in _UNHIDDEN_TYPES or walk.known == target.name:
            return target
        if self._known_to_exist(target.name):
            walk.known = target.name
            return target
        return Question(target.name, MINIMISED_TYPE)

    def _known_to_exist(self, name: dns.name.Name) -> bool:
        """The cache holds data or a NODATA for `name`: it is a name of the zone at hand."""
        cache = self._ctx.cache
        negative = cache.get_negative(name, MINIMISED_TYPE)
        if negative is not None:
            return negative.rcode == dns.rcode.NOERROR
        return any(
            cache.get_rrset(name, rdtype, min_rank=Rank.NONAUTH_ANSWER) is not None
            for rdtype in (MINIMISED_TYPE, dns.rdatatype.CNAME)
        )

    def _relearnable(self, delegation: Delegation, relearnt: set[dns.name.Name]) -> bool:
        """Whether a failing delegation is worth learning again from its parent.

        Only one that came from the cache, once per zone and walk: a delegation the parent has
        just handed us would be handed over again, and configured servers (root hints, stub
        zones) have no parent to ask. Going up stays inside a stub zone: `_closest_delegation`
        is given the stub route, so its configured servers stand in for the public parents.
        """
        return (
            delegation.from_cache
            and delegation.zone != dns.name.root
            and delegation.zone not in relearnt
        )

    def _skip_known(
        self, minimiser: Minimiser, known: dns.name.Name, depth: int
    ) -> tuple[dns.name.Name, dns.name.Name | None]:
        """Step past names the cache already knows to exist (RFC 9156 section 3, step 5).

        Returns the deepest name known to exist and the next name to ask (the qname itself when
        no step is left), or None as the next name if the cache holds an NXDOMAIN on the way.
        """
        child = minimiser.next_name(known)
        while child != minimiser.qname:
            negative = self._ctx.cache.get_negative(child, MINIMISED_TYPE)
            if negative is not None and negative.rcode == dns.rcode.NXDOMAIN:
                self._say(depth, "cache: {} NXDOMAIN; asking for the full name", child)
                return known, None
            if not self._known_to_exist(child):
                break
            self._say(depth, "cache: {} exists, no need to ask", child)
            known, child = child, minimiser.next_name(child)
        return known, child

    def _forward(
        self, route: Route, question: Question, depth: int
    ) -> Generator[SendQuery, Outcome, Classified]:
        """Ask the forwarders of `route` in turn (RD=1) until one gives a usable answer.

        No minimisation: the forwarder needs the whole name to recurse on it (RFC 9156 section
        2.4: minimising towards a forwarder protects nothing). A forwarder that is silent, says
        SERVFAIL or REFUSED, or does not recurse, passes the question to the next one; silent
        ones are asked again with a longer timeout before the question fails.
        """
        self._say(depth, "forward zone {}: forwarding", route.zone)
        upstream, table = self._ctx.config.upstream, self._ctx.servers
        attempts = _Attempts(upstream.forward_timeout, upstream.retries)
        while True:
            candidates = [
                server
                for server in attempts.fresh(route.servers)
                if usable_address(server.address, upstream, configured=True)
            ]
            if not candidates:
                if attempts.next_round():
                    self._say(depth, "  {}", attempts)
                    continue
                raise ResolutionFailed(
                    ServfailReason.NO_FORWARDER_ANSWERED
                    if attempts.any_asked
                    else ServfailReason.NO_USABLE_SERVER_ADDRESS
                )
            server = choose_in_order(candidates, table)
            attempts.asked(server)
            verdict = yield from self._exchange(
                server, question, route.zone, depth, attempts.timeout, recursive=True
            )
            if isinstance(verdict, Classified):
                return verdict
            if verdict is _Miss.SILENT:
                attempts.silent(server)

    def _closest_delegation(
        self, name: dns.name.Name, depth: int, stub: Route | None = None
    ) -> Generator[SendQuery, Outcome, Delegation]:
        """Where iteration for `name` starts: the deepest cut we know, else a stub zone or root.

        A stub zone's configured servers replace whatever NS set the cache holds for the zone
        itself or above it; only a cut cached below the stub zone (learnt by following the stub
        servers' referrals) is closer.
        """
        cache = self._ctx.cache
        ns = cache.closest_delegation(name)
        if stub is not None and (
            ns is None or ns.name == stub.zone or not ns.name.is_subdomain(stub.zone)
        ):
            self._say(depth, "stub zone {}: asking its configured servers", stub.zone)
            return Delegation.from_servers(stub.zone, stub.servers)
        if ns is not None:
            self._say(depth, "cache: closest delegation is {}", ns.name)
            return Delegation.from_ns(ns, cache, from_cache=True)
        root_ns = cache.get_rrset(dns.name.root, dns.rdatatype.NS)
        if root_ns is None:
            yield from self._prime(depth)
            root_ns = cache.get_rrset(dns.name.root, dns.rdatatype.NS)
        if root_ns is not None:
            primed = Delegation.from_ns(root_ns, cache)
            if any(primed.addresses.values()):
                return primed
        return Delegation.from_hints(self._ctx.hints)

    def _prime(self, depth: int) -> Generator[SendQuery, Outcome, None]:
        """Ask a root server for the current root NS set (RFC 8109); the hints may be stale."""
        self._say(depth, "priming the root name servers")
        hints = Delegation.from_hints(self._ctx.hints)
        try:
            _, verdict = yield from self._ask_zone(
                hints, Question(dns.name.root, dns.rdatatype.NS), depth
            )
        except ResolutionFailed as failure:
            if failure.reason in _FATAL:
                raise
            self._say(depth, "priming failed; using the hints as they are")
            return
        if verdict.kind is Kind.ANSWER:
            self._cache_verdict(verdict)

    def _servers_of(self, delegation: Delegation) -> list[Server]:
        """Every address of the delegation that a query may go to, configured servers first.

        An address the operator configured (hints, stub and forward servers) stays usable when
        it is learnt again from the network, e.g. from the root's answer to priming.
        """
        upstream, configured = self._ctx.config.upstream, self._ctx.configured_addresses
        servers = [
            s for s in delegation.fixed if usable_address(s.address, upstream, configured=True)
        ]
        servers.extend(
            Server(address, upstream.port, ns_name)
            for ns_name, addresses in delegation.addresses.items()
            for address in addresses
            if usable_address(
                address, upstream, configured=delegation.configured or address in configured
            )
        )
        return servers

    def _ask_zone(
        self,
        delegation: Delegation,
        question: Question,
        depth: int,
        fallback: Question | None = None,
        *,
        retries: int | None = None,
    ) -> Generator[SendQuery, Outcome, tuple[Question, Classified]]:
        """Ask the zone's servers in turn until one gives a usable (non-lame) response.

        Servers held down after repeated timeouts are skipped. When every server has been
        asked, the names of glueless name servers are looked up one by one (within the glueless
        caps); after that, the servers that stayed silent are asked again with twice the
        timeout, up to `retries` (default `upstream.retries`) more rounds: a lost datagram must
        not fail a zone with one address.
        `fallback` is the full question behind a minimised one: a server that rejects the
        minimised question (an error rcode or a lame reply) is asked the full question at once,
        and so is every server after it, and so are the retransmissions (RFC 9156 relaxed mode;
        such servers exist, and failing the name would be worse than showing it). Returns the
        question that was answered with the verdict.
        """
        table, upstream = self._ctx.servers, self._ctx.config.upstream
        attempts = _Attempts(upstream.timeout, upstream.retries if retries is None else retries)
        looked_up: set[dns.name.Name] = set()
        while True:
            candidates = attempts.fresh(self._servers_of(delegation))
            if not candidates:
                ns_name = self._next_glueless_name(delegation, looked_up)
                if ns_name is not None and self._glueless_allowed(looked_up, depth):
                    self._say(depth, "  looking up the address of name server {}", ns_name)
                    looked_up.add(ns_name)
                    found = yield from self._lookup_addresses(ns_name, depth + 1)
                    delegation.addresses[ns_name] = found
                elif attempts.next_round():
                    self._say(depth, "  {}", attempts)
                    if fallback is not None:
                        question, fallback = fallback, None
                elif attempts.any_asked:
                    raise ResolutionFailed(ServfailReason.NO_REACHABLE_AUTHORITY)
                elif ns_name is not None:
                    raise ResolutionFailed(ServfailReason.GLUELESS_LIMIT)
                else:
                    raise ResolutionFailed(ServfailReason.NO_USABLE_SERVER_ADDRESS)
                continue
            server = choose_server(candidates, table, self._ctx.rng)
            attempts.asked(server)
            if table.held_down(server.address):  # asked only of the one chosen: it may probe
                self._say(depth, "  {} is held down after repeated failures", server.address)
                continue
            verdict = yield from self._exchange(
                server, question, delegation.zone, depth, attempts.timeout
            )
            if verdict in (_Miss.REJECTED, _Miss.LAME) and fallback is not None:
                self._say(depth, "  minimised question not answered; asking for the full name")
                question, fallback = fallback, None
                verdict = yield from self._exchange(
                    server, question, delegation.zone, depth, attempts.timeout
                )
            if isinstance(verdict, Classified):
                return question, verdict
            if verdict is _Miss.SILENT:
                attempts.silent(server)

    def _next_glueless_name(
        self, delegation: Delegation, looked_up: set[dns.name.Name]
    ) -> dns.name.Name | None:
        """The next NS name without an address that a lookup could still find, if any.

        Not a name inside the zone itself when the delegation came from the cache: only the
        parent's glue can give its address, so the caller goes to the parent instead.
        """
        return next(
            (
                name
                for name in delegation.ns_names
                if name not in looked_up
                and not delegation.addresses.get(name)
                and not (delegation.from_cache and name.is_subdomain(delegation.zone))
            ),
            None,
        )

    def _glueless_allowed(self, looked_up: set[dns.name.Name], depth: int) -> bool:
        """Within the caps on glueless lookups: names per delegation, and nesting."""
        return (
            len(looked_up) < self._limits.max_glueless_per_delegation
            and depth < self._limits.max_glueless_depth
        )

    def _lookup_addresses(
        self, ns_name: dns.name.Name, depth: int
    ) -> Generator[SendQuery, Outcome, tuple[str, ...]]:
        if ns_name in self._in_progress:
            return ()  # a glueless cycle: this very name is already being looked up
        upstream = self._ctx.config.upstream
        families = {dns.rdatatype.A: upstream.do_ip4, dns.rdatatype.AAAA: upstream.do_ip6}
        found: list[str] = []
        self._in_progress.add(ns_name)
        try:
            for rdtype in (rdtype for rdtype, enabled in families.items() if enabled):
                try:
                    answer = yield from self._resolve(ns_name, rdtype, depth)
                except ResolutionFailed as failure:
                    if failure.reason in _FATAL:
                        raise
                    continue
                for rrset in answer.answer:
                    if rrset.rdtype == rdtype:
                        found.extend(rdata.address for rdata in rrset)
                if found:
                    break
        finally:
            self._in_progress.discard(ns_name)
        return tuple(found)

    def _exchange(
        self,
        server: Server,
        question: Question,
        zone: dns.name.Name,
        depth: int,
        timeout: float,
        *,
        recursive: bool = False,
    ) -> Generator[SendQuery, Outcome, Classified | _Miss]:
        """One server, one question: retry over TCP on TC=1 and without EDNS on FORMERR.

        `recursive` asks a forwarder (RD=1, judged by `classify_recursive`) instead of an
        authoritative server of `zone`. Returns why not when this server is of no use for the
        question, so the caller moves on to the next one or another question.
        """
        table, upstream = self._ctx.servers, self._ctx.config.upstream
        use_edns, tcp, edns_fallback = not table.no_edns(server.address), False, False
        label = f"{server.name} [{server.address}]" if server.name else server.address
        if server.port != upstream.port:
            label += f" port {server.port}"
        rdtype_text = dns.rdatatype.RdataType.to_text(question.rdtype)
        name = question.name
        while True:
            query = self._make_query(name, question.rdtype, use_edns, recursive)
            transport = "TCP" if tcp else "UDP"
            self._say(depth, "ask {} for {} {} over {}", label, name, rdtype_text, transport)
            outcome = yield SendQuery(server, query, tcp, timeout, upstream.use_0x20)
            if isinstance(outcome, Timeout | NetworkError):
                return self._undelivered(outcome, server, tcp, timeout, depth)
            if isinstance(outcome, BareHeader):
                response = None
                truncated, rcode = outcome.truncated, outcome.rcode
            else:
                response = outcome.message
                if not is_response_to(query, response, exact_case=upstream.use_0x20):
                    self._say(depth, "  response does not match the question; ignored")
                    return _Miss.SILENT
                truncated, rcode = bool(response.flags & dns.flags.TC), response.rcode()
            # Only the header of a BareHeader could be read; its TC and rcode still count.
            if truncated and not tcp:
                self._say(depth, "  truncated; retrying over TCP")
                tcp = True
                continue
            if rcode == dns.rcode.FORMERR and use_edns:
                self._say(depth, "  FORMERR to EDNS; retrying without EDNS")
                # Remembered for the server only if the FORMERR echoed our question: a bare
                # header passes no question (or 0x20) check and could be forged.
                use_edns, edns_fallback = False, response is not None
                continue
            if response is None:
                self._say(depth, "  unparseable reply; trying another server")
                return _Miss.SILENT
            assert isinstance(outcome, Response)
            if edns_fallback:
                # Remembered only now that the plain query got an answer: a forged or stray
                # FORMERR must not switch EDNS off for the server (Unbound does the same).
                table.set_no_edns(server.address)
            verdict = self._judge(response, question, zone, depth, recursive)
            if isinstance(verdict, Classified):
                table.record_rtt(server.address, outcome.rtt)
                return verdict
            # A server that answers fast but uselessly must not win selection by its speed:
            # it is scored as if it had taken the whole timeout (a penalty without hold-down,
            # since it may well serve other zones).
            table.record_rtt(server.address, timeout)
            if verdict is _Miss.REJECTED:
                self._say(depth, "  {}; trying another server", dns.rcode.Rcode.to_text(rcode))
            return verdict

    def _undelivered(
        self, outcome: Timeout | NetworkError, server: Server, tcp: bool, timeout: float, depth: int
    ) -> _Miss:
        """What a lost query says about the server, and whether to ask it again."""
        table = self._ctx.servers
        if isinstance(outcome, Timeout):
            self._say(depth, "  timed out after {:.1f} s", timeout)
        else:
            self._say(depth, "  {}", outcome.reason)
        if tcp:
            # No TCP (firewalled or refused) says nothing about the server over UDP.
            return _Miss.REJECTED
        if isinstance(outcome, NetworkError) and outcome.unreachable:
            table.record_unreachable(server.address)
            return _Miss.UNREACHABLE
        if not (isinstance(outcome, Timeout) and outcome.shared):
            table.record_failure(server.address, timeout)
        return _Miss.SILENT

    def _judge(
        self,
        response: dns.message.Message,
        question: Question,
        zone: dns.name.Name,
        depth: int,
        recursive: bool,
    ) -> Classified | _Miss:
        """The verdict on a matching response, or why the server is of no use for it."""
        rcode = response.rcode()
        if rcode not in _JUDGED_RCODES or (recursive and rcode == dns.rcode.YXDOMAIN):
            return _Miss.REJECTED
        if recursive:
            verdict = classify_recursive(response, question.name, question.rdtype)
        else:
            harden_glue = self._ctx.config.upstream.harden_glue
            verdict = classify(
                response, question.name, question.rdtype, zone, harden_glue=harden_glue
            )
        if verdict.kind is Kind.LAME:
            assert verdict.lameness is not None
            why = verdict.lameness.value
            self._say(depth, "  lame for {} ({}); trying another server", zone, why)
            return _Miss.LAME
        return verdict

    def _make_query(
        self, name: dns.name.Name, qtype: int, use_edns: bool, recursive: bool = False
    ) -> dns.message.Message:
        self.queries_sent += 1
        if self.queries_sent > self._limits.max_upstream_queries:
            raise ResolutionFailed(ServfailReason.TOO_MANY_QUERIES)
        upstream = self._ctx.config.upstream
        if upstream.use_0x20:
            name = randomize_case(name, self._ctx.rng)
        return dns.message.make_query(
            name,
            dns.rdatatype.RdataType.make(qtype),
            use_edns=0 if use_edns else False,
            payload=upstream.edns_payload,
            flags=dns.flags.RD if recursive else 0,
            id=0,
        )

    # -- learning from verdicts ---------------------------------------------------------------

    def _follow_referral(self, verdict: Classified) -> Delegation:
        cache = self._ctx.cache
        assert verdict.delegation is not None
        cache.put_rrset(verdict.delegation, Rank.REFERRAL, delegation=True)
        for glue in verdict.glue:
            cache.put_rrset(glue, Rank.GLUE, delegation=True)
        return Delegation.from_ns(verdict.delegation, cache, verdict.glue)

    def _cache_verdict(self, verdict: Classified) -> None:
        cache = self._ctx.cache
        rank = Rank.ANSWER if verdict.authoritative else Rank.NONAUTH_ANSWER
        for rrset in verdict.chain:
            cache.put_rrset(rrset, rank)
        for glue in verdict.glue:
            cache.put_rrset(glue, Rank.GLUE)

    def _cache_negative(self, verdict: Classified, qtype: int) -> dns.rrset.RRset | None:
        """Remember an NXDOMAIN or NODATA verdict (RFC 2308); the SOA to hand out, if any."""
        if verdict.kind not in (Kind.NXDOMAIN, Kind.NODATA) or verdict.soa is None:
            return None
        cache = self._ctx.cache
        if verdict.kind is Kind.NXDOMAIN:
            cache.put_negative(verdict.final_name, None, dns.rcode.NXDOMAIN, verdict.soa)
        else:
            cache.put_negative(verdict.final_name, qtype, dns.rcode.NOERROR, verdict.soa)
        return with_ttl(verdict.soa, cache.negative_ttl(verdict.soa))

    def _conclude(self, verdict: Classified, qtype: int, depth: int) -> Step:
        """Cache what the server (or forwarder) said and turn it into a chain step."""
        cache = self._ctx.cache
        self._cache_verdict(verdict)
        records = tuple(with_ttl(r, cache.clamp_ttl(r.ttl)) for r in verdict.chain)
        if verdict.kind is Kind.ANSWER:
            self._say(depth, "  answer: {}", _Records(verdict.chain))
            return Step(dns.rcode.NOERROR, records)
        if verdict.kind is Kind.CNAME:
            self._say(depth, "  alias: {}", _Records(verdict.chain))
            return Step(dns.rcode.NOERROR, records, next_name=verdict.final_name)
        if verdict.kind is Kind.YXDOMAIN:
            self._say(depth, "  YXDOMAIN: the DNAME makes {} too long", verdict.final_name)
            return Step(dns.rcode.YXDOMAIN, records)
        rcode = dns.rcode.NXDOMAIN if verdict.kind is Kind.NXDOMAIN else dns.rcode.NOERROR
        soa = self._cache_negative(verdict, qtype)
        label = "NXDOMAIN" if rcode == dns.rcode.NXDOMAIN else "NODATA"
        self._say(depth, "  {} for {}", label, verdict.final_name)
        return Step(rcode, records, soa)


class _Records:
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
