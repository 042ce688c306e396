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
from collections.abc import Callable, Generator
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
    Done,
    NetworkError,
    Outcome,
    Response,
    SendQuery,
    Server,
    Timeout,
)
from resolver.core.hints import RootHints
from resolver.core.iterate import Classified, Kind, classify, classify_recursive
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


@dataclass(frozen=True)
class Question:
    """A name and type as sent upstream (the client's own, or a minimised one on the way)."""

    name: dns.name.Name
    rdtype: int


class _Miss(Enum):
    """Why one server gave no verdict, so the caller can try another (or another question)."""

    SILENT = auto()  # no answer, a network error, or a response to some other question
    REJECTED = auto()  # an error rcode (REFUSED, SERVFAIL, FORMERR...) for this question
    LAME = auto()  # it does not serve the zone it was asked as


@dataclass(frozen=True)
class Step:
    """What one name in a CNAME chain resolved to; `next_name` is set when the chain goes on."""

    rcode: dns.rcode.Rcode
    records: tuple[dns.rrset.RRset, ...] = ()
    soa: dns.rrset.RRset | None = None
    next_name: dns.name.Name | None = None


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
            authority = (step.soa,) if step.soa is not None else ()
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "local", LocalData.parse(self.config.local_data))
        object.__setattr__(self, "routes", Routes.from_config(self.config))


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
    ) -> None:
        self.qname = qname
        self.qtype = qtype
        # Prefetch: ask upstream for the question itself even though the cache still has it.
        self._refresh = refresh
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
            return self._steps.send(outcome)  # type: ignore[arg-type]
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

        Also called by the driver when the time allowed for the whole question runs out.
        """
        stale = self._stale_answer() if self._ctx.config.cache.serve_stale else None
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

    def _stale_answer(self) -> Answer | None:
        """The whole CNAME chain from the cache, expired links included, or None if incomplete."""
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
            if step is None:
                step = yield from self._iterate(chain.name, qtype, depth)
            answer = chain.extend(step)
            if answer is not None:
                return answer

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
            self._say(depth, "local data: {} {}", name, dns.rdatatype.to_text(qtype))
            return Step(dns.rcode.NOERROR, records)
        cname = local.get(dns.rdatatype.CNAME) if qtype != dns.rdatatype.CNAME else None
        if cname is not None:
            self._say(depth, "local data: {} is an alias for {}", name, cname[0].target)
            return Step(dns.rcode.NOERROR, (cname,), next_name=cname[0].target)
        self._say(depth, "local data: {} has no {} (NODATA)", name, dns.rdatatype.to_text(qtype))
        return Step(dns.rcode.NOERROR)

    def _from_cache(
        self, name: dns.name.Name, qtype: int, depth: int, stale: bool = False
    ) -> Step | None:
        cache = self._ctx.cache
        found = cache.get_rrset(name, qtype, min_rank=Rank.ANSWER, stale=stale)
        if found is not None:
            self._say(depth, "cache: {} {} answered", name, dns.rdatatype.to_text(qtype))
            return Step(dns.rcode.NOERROR, (found,))
        if qtype != dns.rdatatype.CNAME:
            cname = cache.get_rrset(name, dns.rdatatype.CNAME, min_rank=Rank.ANSWER, stale=stale)
            if cname is not None:
                self._say(depth, "cache: {} is an alias for {}", name, cname[0].target)
                return Step(dns.rcode.NOERROR, (cname,), next_name=cname[0].target)
        negative = cache.get_negative(name, qtype, stale=stale)
        if negative is not None:
            self._say(depth, "cache: {} {} (negative)", name, dns.rcode.to_text(negative.rcode))
            return Step(negative.rcode, soa=negative.soa)
        return None

    def _iterate(self, name: dns.name.Name, qtype: int, depth: int) -> Steps:
        """Walk down from the closest known zone cut until a server answers for `name`.

        With QNAME minimisation (RFC 9156, relaxed mode as Unbound's default), the servers of
        each zone on the way are asked for one more label below what is known (type A) rather
        than for the whole name, until the name's own zone is reached or the labels run out;
        then the full question goes to the zone known last. What each answer means:
        - a referral: follow it, and minimise again from the new zone;
        - NOERROR (data, an alias or NODATA: an empty non-terminal or a name with data but no
          cut): no cut there, so add labels and ask the same zone again;
        - NXDOMAIN: RFC 8020 says nothing exists below, but some servers still deny empty
          non-terminals, and without DNSSEC we cannot tell; relaxed mode asks the same zone
          for the full name instead of concluding (Unbound with qname-minimisation-strict: no);
        - an error rcode (REFUSED, SERVFAIL, FORMERR): the server chokes on the minimised
          question; the same server is asked the full question (see `_ask_zone`).
        """
        # DS lives in the parent zone, so it is asked of the servers above the cut.
        start = name.parent() if qtype == dns.rdatatype.DS and name != dns.name.root else name
        route = self._ctx.routes.find(start) if self._ctx.routes else None
        if route is not None and route.recursive:
            verdict = yield from self._forward(route, Question(name, qtype), depth)
            return self._conclude(verdict, qtype, depth)
        delegation = yield from self._closest_delegation(start, depth, route)
        target = Question(name, qtype)
        upstream = self._ctx.config.upstream
        minimiser = None
        if upstream.qname_minimisation:
            minimiser = Minimiser(name, upstream.max_minimise_count, upstream.minimise_one_label)
        minimising, known = minimiser is not None, delegation.zone
        referrals = 0
        while True:
            question = target
            if minimiser is not None and minimising:
                known, child = self._skip_known(minimiser, known, depth)
                if child is None:
                    minimising = False  # the cache holds an NXDOMAIN on the way: relaxed mode
                elif child != name:
                    question = Question(child, MINIMISED_TYPE)
            fallback = target if question != target else None
            asked, verdict = yield from self._ask_zone(delegation, question, depth, fallback)
            if asked != target:
                if verdict.kind is Kind.NXDOMAIN:
                    self._cache_negative(verdict, asked.rdtype)
                    self._say(depth, "  NXDOMAIN for {}; asking for the full name", asked.name)
                    minimising = False
                    continue
                if verdict.kind is not Kind.REFERRAL:
                    self._cache_verdict(verdict)
                    self._cache_negative(verdict, asked.rdtype)
                    self._say(depth, "  {} exists, no zone cut there", asked.name)
                    known = asked.name
                    continue
            elif verdict.kind is not Kind.REFERRAL:
                return self._conclude(verdict, qtype, depth)
            referrals += 1
            if referrals > self._limits.max_referrals:
                raise ResolutionFailed(ServfailReason.REFERRAL_DEPTH)
            assert verdict.delegation is not None
            delegation = self._follow_referral(verdict, delegation.zone)
            self._say(depth, "  referral to {}", delegation.describe())
            minimising, known = minimiser is not None, delegation.zone

    def _skip_known(
        self, minimiser: Minimiser, known: dns.name.Name, depth: int
    ) -> tuple[dns.name.Name, dns.name.Name | None]:
        """Step past names the cache already knows to exist (RFC 9156 section 3, step 5).

        Returns the deepest name known to exist and the next name to ask (the qname itself when
        no step is left), or None as the next name if the cache holds an NXDOMAIN on the way.
        """
        cache = self._ctx.cache
        child = minimiser.next_name(known)
        while child != minimiser.qname:
            negative = cache.get_negative(child, MINIMISED_TYPE)
            if negative is not None and negative.rcode == dns.rcode.NXDOMAIN:
                self._say(depth, "cache: {} NXDOMAIN; asking for the full name", child)
                return known, None
            exists = negative is not None or any(
                cache.get_rrset(child, rdtype, min_rank=Rank.ANSWER) is not None
                for rdtype in (MINIMISED_TYPE, dns.rdatatype.CNAME)
            )
            if not exists:
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
        SERVFAIL or REFUSED, or does not recurse, passes the question to the next one.
        """
        self._say(depth, "forward zone {}: forwarding", route.zone)
        upstream, table = self._ctx.config.upstream, self._ctx.servers
        tried: set[tuple[str, int]] = set()
        while True:
            candidates = [
                server
                for server in route.servers
                if (server.address, server.port) not in tried
                and usable_address(server.address, upstream)
            ]
            if not candidates:
                raise ResolutionFailed(
                    ServfailReason.NO_FORWARDER_ANSWERED
                    if tried
                    else ServfailReason.NO_USABLE_SERVER_ADDRESS
                )
            server = choose_in_order(candidates, table)
            tried.add((server.address, server.port))
            verdict = yield from self._exchange(server, question, route.zone, depth, recursive=True)
            if isinstance(verdict, Classified):
                return verdict

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
            return Delegation.from_ns(ns, cache)
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

    def _ask_zone(
        self,
        delegation: Delegation,
        question: Question,
        depth: int,
        fallback: Question | None = None,
    ) -> Generator[SendQuery, Outcome, tuple[Question, Classified]]:
        """Ask the zone's servers in turn until one gives a usable (non-lame) response.

        `fallback` is the full question behind a minimised one: a server that rejects the
        minimised question with an error rcode is asked it at once, and so is every server
        after it (RFC 9156 relaxed mode; such servers exist, and failing the name would be
        worse than showing it). Returns the question that was answered with the verdict.
        """
        tried: set[tuple[str, int]] = set()
        looked_up: set[dns.name.Name] = set()
        upstream = self._ctx.config.upstream
        while True:
            candidates = [
                server
                for server in delegation.fixed
                if (server.address, server.port) not in tried
                and usable_address(server.address, upstream)
            ] + [
                Server(address, upstream.port, ns_name)
                for ns_name, addresses in delegation.addresses.items()
                for address in addresses
                if (address, upstream.port) not in tried and usable_address(address, upstream)
            ]
            if not candidates:
                yield from self._find_glueless_address(delegation, looked_up, tried, depth)
                continue
            server = choose_server(candidates, self._ctx.servers, self._ctx.rng)
            tried.add((server.address, server.port))
            verdict = yield from self._exchange(server, question, delegation.zone, depth)
            if verdict is _Miss.REJECTED and fallback is not None:
                self._say(depth, "  minimised question rejected; asking for the full name")
                question, fallback = fallback, None
                verdict = yield from self._exchange(server, question, delegation.zone, depth)
            if isinstance(verdict, Classified):
                return question, verdict

    def _find_glueless_address(
        self,
        delegation: Delegation,
        looked_up: set[dns.name.Name],
        tried: set[tuple[str, int]],
        depth: int,
    ) -> Generator[SendQuery, Outcome, None]:
        """Resolve the address of one more NS name that came without glue, or give up."""
        missing = [
            n for n in delegation.ns_names if n not in looked_up and not delegation.addresses.get(n)
        ]
        if not missing:
            reason = (
                ServfailReason.NO_REACHABLE_AUTHORITY
                if tried
                else ServfailReason.NO_USABLE_SERVER_ADDRESS
            )
            raise ResolutionFailed(reason)
        if (
            len(looked_up) >= self._limits.max_glueless_per_delegation
            or depth >= self._limits.max_glueless_depth
        ):
            raise ResolutionFailed(ServfailReason.GLUELESS_LIMIT)
        ns_name = missing[0]
        looked_up.add(ns_name)
        self._say(depth, "  looking up the address of name server {}", ns_name)
        delegation.addresses[ns_name] = yield from self._lookup_addresses(ns_name, depth + 1)

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
        *,
        recursive: bool = False,
    ) -> Generator[SendQuery, Outcome, Classified | _Miss]:
        """One server, one question: retry over TCP on TC=1 and without EDNS on FORMERR.

        `recursive` asks a forwarder (RD=1, its own timeout, judged by `classify_recursive`)
        instead of an authoritative server of `zone`. Returns why not when this server is of no
        use for the question, so the caller moves on to the next one or another question.
        """
        table, upstream = self._ctx.servers, self._ctx.config.upstream
        timeout = upstream.forward_timeout if recursive else upstream.timeout
        use_edns, tcp = not table.no_edns(server.address), False
        label = f"{server.name} [{server.address}]" if server.name else server.address
        if server.port != upstream.port:
            label += f" port {server.port}"
        rdtype_text = dns.rdatatype.to_text(question.rdtype)
        name = question.name
        while True:
            query = self._make_query(name, question.rdtype, use_edns, recursive)
            transport = "TCP" if tcp else "UDP"
            self._say(depth, "ask {} for {} {} over {}", label, name, rdtype_text, transport)
            outcome = yield SendQuery(server, query, tcp, timeout, upstream.use_0x20)
            if isinstance(outcome, Timeout | NetworkError):
                table.record_failure(server.address, timeout)
                why = "timed out" if isinstance(outcome, Timeout) else outcome.reason
                self._say(depth, "  {}", why)
                return _Miss.SILENT
            assert isinstance(outcome, Response)
            table.record_rtt(server.address, outcome.rtt)
            response = outcome.message
            if not is_response_to(query, response, exact_case=upstream.use_0x20):
                self._say(depth, "  response does not match the question; ignored")
                return _Miss.SILENT
            if response.flags & dns.flags.TC and not tcp:
                self._say(depth, "  truncated; retrying over TCP")
                tcp = True
                continue
            rcode = response.rcode()
            if rcode == dns.rcode.FORMERR and use_edns:
                self._say(depth, "  FORMERR to EDNS; retrying without EDNS")
                table.set_no_edns(server.address)
                use_edns = False
                continue
            if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                self._say(depth, "  {}; trying another server", dns.rcode.to_text(rcode))
                return _Miss.REJECTED
            if recursive:
                verdict = classify_recursive(response, name, question.rdtype)
            else:
                verdict = classify(response, name, question.rdtype, zone)
            if verdict.kind is Kind.LAME:
                self._say(depth, "  lame for {}; trying another server", zone)
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
            qtype,
            use_edns=0 if use_edns else False,
            payload=upstream.edns_payload,
            flags=dns.flags.RD if recursive else 0,
            id=0,
        )

    # -- learning from verdicts ---------------------------------------------------------------

    def _follow_referral(self, verdict: Classified, parent: dns.name.Name) -> Delegation:
        cache = self._ctx.cache
        assert verdict.delegation is not None
        cache.put_rrset(verdict.delegation, Rank.REFERRAL, delegation=True)
        for glue in verdict.glue:
            cache.put_rrset(glue, Rank.GLUE, delegation=True)
        return Delegation.from_ns(verdict.delegation, cache, verdict.glue)

    def _cache_verdict(self, verdict: Classified) -> None:
        cache = self._ctx.cache
        for rrset in verdict.chain:
            cache.put_rrset(rrset, Rank.ANSWER)
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
