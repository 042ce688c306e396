"""The walk: from the closest known zone cut down to the servers of the name's own zone.

Referrals, QNAME minimisation (RFC 9156), glueless name-server lookups, forwarders and stub
zones, priming the root, relearning a delegation that stopped working from its parent, and
the retransmission rounds over one zone's servers. Sub-questions (a glueless name server's
address) go back through the resolution's `resolve`, so they get the cache, local data and
CNAME chains like any question.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.core.actions import Answer, Outcome, SendQuery, Server
from resolver.core.chain import Question, Step
from resolver.core.classify import Classified, Kind
from resolver.core.exchange import Attempts, Exchange, Miss
from resolver.core.learn import cache_negative, cache_verdict, conclude, follow_referral
from resolver.core.lookup import MINIMISED_TYPE, CacheLookup
from resolver.core.minimise import Minimiser
from resolver.core.overrides import Route
from resolver.core.reasons import ResolutionFailed, ServfailReason
from resolver.core.scrub import same_name
from resolver.core.selection import choose_in_order, choose_server, usable_address
from resolver.core.work import Work
from resolver.core.zonecut import Delegation

Steps = Generator[SendQuery, Outcome, Step]
Resolve = Callable[[dns.name.Name, int, int], Generator[SendQuery, Outcome, Answer]]

#: Failures that end the whole client question, not just one glueless side-lookup.
FATAL = frozenset({ServfailReason.TOO_MANY_QUERIES, ServfailReason.TIMEOUT})

#: Types asked with their own type even before the name's zone is known: A is what minimised
#: questions look like anyway, and DS is asked of the parent on purpose.
_UNHIDDEN_TYPES = frozenset({dns.rdatatype.A, dns.rdatatype.DS})

_ROOT_LABELS = dns.name.root.labels

#: How many cached cuts' server lists `Context.server_lists` keeps (emptied when full).
_SERVER_LISTS = 1024


@dataclass(slots=True)
class _Minimisation:
    """Where QNAME minimisation stands in one zone: the deepest name known to exist there
    (the zone's apex at first) and whether names are still being minimised."""

    known: dns.name.Name
    minimising: bool


class Walk:
    """Iteration for one resolution (`Work`): asks servers through `Exchange`, reads the cache
    through `CacheLookup`, and resolves glueless name servers' addresses through `resolve`."""

    def __init__(
        self, work: Work, lookup: CacheLookup, exchange: Exchange, resolve: Resolve
    ) -> None:
        self._work = work
        self._lookup = lookup
        self._exchange = exchange
        self._resolve = resolve

    def iterate(
        self,
        name: dns.name.Name,
        qtype: int,
        depth: int,
        named_by: dns.name.Name | None = None,
    ) -> Steps:
        """Walk down from the closest known zone cut until a server answers for `name`.

        With QNAME minimisation (RFC 9156, relaxed mode as Unbound's default), the servers of
        each zone on the way are asked for one more label below what is known (type A) rather
        than for the whole name, and the question's own type goes only to the zone that holds
        the name: while it is not known whether the name is a zone cut of its own, even the
        full name is asked with type A first (Unbound does the same). The servers of
        `named_by`, the zone whose alias led to `name`, already know the name and are asked
        for it in full. What each answer means:
        - a referral: follow it, and minimise again from the new zone;
        - NOERROR (data, an alias or NODATA: an empty non-terminal or a name with data but no
          cut): no cut there, so add labels and ask the same zone again;
        - NXDOMAIN: for the name itself, the answer; for a name above it, RFC 8020 says nothing
          exists below, but some servers still deny empty non-terminals, and without DNSSEC we
          cannot tell: relaxed mode asks the same zone for the full name instead of concluding
          (Unbound with qname-minimisation-strict: no);
        - an error rcode, a lame reply or silence: the server chokes on the minimised question,
          so it is asked the full question (see `_ask_zone`).
        When every server of a delegation taken from the cache fails once (its addresses
        expired or changed, or all of them are dead), the delegation is learnt again from the
        zone above (RFC 1034 section 5.3.3; Unbound's "delegation point is useless"); if that
        fails too, the cached servers are asked again, with retransmissions.
        """
        # DS lives in the parent zone, so it is asked of the servers above the cut.
        start = name.parent() if qtype == dns.rdatatype.DS and name != dns.name.root else name
        route = self._work.ctx.routes.find(start) if self._work.ctx.routes else None
        if route is not None and route.recursive:
            verdict = yield from self._forward(route, Question(name, qtype), depth)
            return conclude(self._work, verdict, qtype, depth)
        cached = self._cached_delegation(start, depth, route)
        delegation = cached if cached is not None else (yield from self._root_delegation(depth))
        target = Question(name, qtype)
        minimiser = self._minimiser(name)

        def fresh_walk() -> _Minimisation:
            minimising = minimiser is not None and (
                named_by is None or not same_name(delegation.zone, named_by)
            )
            return _Minimisation(delegation.zone, minimising=minimising)

        walk = fresh_walk()
        relearnt: set[dns.name.Name] = set()
        # A cached delegation that failed once while its parent is asked for it again; if the
        # parent does not help either, it is asked again itself, with retransmissions.
        failed_once: Delegation | None = None
        referrals = 0
        while True:
            question = self._next_question(walk, minimiser, target, depth)
            # `_next_question` gives the target itself, or a question that differs from it
            fallback = target if question is not target else None
            relearning = failed_once is not None and not delegation.zone.is_subdomain(
                failed_once.zone
            )
            relearnable = not relearning and self._relearnable(delegation, relearnt)
            # One round without retransmissions where another way is left: if it fails, a
            # query to the parent costs less than waiting again, and the parent may know of
            # new addresses.
            quick = relearnable or relearning
            try:
                asked, verdict = yield from self._ask_zone(
                    delegation,
                    question,
                    depth,
                    fallback,
                    retries=0 if quick else None,
                    skip_lame=relearnable,
                )
            except ResolutionFailed as failure:
                if not (quick and failure.reason.authorities_failed):
                    raise
                if relearning:
                    assert failed_once is not None
                    self._work.say(
                        depth, "  the parent did not help; asking {} again", failed_once.zone
                    )
                    delegation, failed_once = failed_once, None
                else:
                    relearnt.add(delegation.zone)
                    failed_once = delegation
                    self._work.say(
                        depth, "  no usable server for {}; asking its parent", delegation.zone
                    )
                    parent = delegation.zone.parent()
                    delegation = yield from self._closest_delegation(parent, depth, route)
                walk = fresh_walk()
                continue
            if asked is not target and verdict.kind is not Kind.REFERRAL:  # a minimised one
                if verdict.kind is Kind.NXDOMAIN and asked.name == name:
                    # no such name, whatever the type
                    return conclude(self._work, verdict, qtype, depth)
                if verdict.kind is Kind.NXDOMAIN:
                    cache_negative(self._work.ctx.cache, verdict, asked.rdtype)
                    self._work.say(depth, "  NXDOMAIN for {}; asking for the full name", asked.name)
                    walk.minimising = False
                    continue
                cache_verdict(self._work.ctx.cache, verdict)
                cache_negative(self._work.ctx.cache, verdict, asked.rdtype)
                self._work.say(depth, "  {} exists, no zone cut there", asked.name)
                walk.known = asked.name
                continue
            if verdict.kind is not Kind.REFERRAL:
                step = conclude(self._work, verdict, qtype, depth)
                return replace(step, named_by=delegation.zone) if step.next_name else step
            referrals += 1
            if referrals > self._work.limits.max_referrals:
                raise ResolutionFailed(ServfailReason.REFERRAL_DEPTH)
            assert verdict.delegation is not None
            delegation = follow_referral(self._work.ctx.cache, verdict)
            self._work.say(depth, "  referral to {}", delegation)
            walk = fresh_walk()

    def _minimiser(self, name: dns.name.Name) -> Minimiser | None:
        upstream = self._work.ctx.config.upstream
        if not upstream.qname_minimisation:
            return None
        return Minimiser(name, upstream.max_minimise_count, upstream.minimise_one_label)

    def _next_question(
        self, walk: _Minimisation, minimiser: Minimiser | None, target: Question, depth: int
    ) -> Question:
        """What to ask the current zone's servers: a minimised name, the name typed A, or all."""
        if minimiser is None or not walk.minimising:
            return target
        walk.known, child = self._skip_known(minimiser, walk.known, depth)
        if child is None:
            walk.minimising = False  # the cache holds an NXDOMAIN on the way: relaxed mode
            return target
        if not minimiser.is_qname(child):  # the target's own name, as `_minimiser` made it
            return Question(child, MINIMISED_TYPE)
        if target.rdtype in _UNHIDDEN_TYPES or minimiser.is_qname(walk.known):
            return target
        if self._lookup.known_to_exist(target.name):
            walk.known = target.name
            return target
        return Question(target.name, MINIMISED_TYPE)

    def _relearnable(self, delegation: Delegation, relearnt: set[dns.name.Name]) -> bool:
        """Whether a failing delegation is worth learning again from its parent.

        Only one that came from the cache, once per zone and walk: a delegation the parent has
        just handed us would be handed over again, and configured servers (root hints, stub
        zones) have no parent to ask. Going up stays inside a stub zone: `_closest_delegation`
        is given the stub route, so its configured servers stand in for the public parents.
        """
        return (
            delegation.from_cache
            and delegation.zone.labels != _ROOT_LABELS  # not the root (absolute or not)
            and not (relearnt and delegation.zone in relearnt)  # an empty set hashes it too
        )

    def _skip_known(
        self, minimiser: Minimiser, known: dns.name.Name, depth: int
    ) -> tuple[dns.name.Name, dns.name.Name | None]:
        """Step past names the cache already knows to exist (RFC 9156 section 3, step 5).

        Returns the deepest name known to exist and the next name to ask (the qname itself when
        no step is left), or None as the next name if the cache holds an NXDOMAIN on the way.
        """
        child = minimiser.next_name(known)
        while not minimiser.is_qname(child):
            negative = self._work.ctx.cache.get_negative(child, MINIMISED_TYPE)
            if negative is not None and negative.rcode == dns.rcode.NXDOMAIN:
                self._work.say(depth, "cache: {} NXDOMAIN; asking for the full name", child)
                return known, None
            if not self._lookup.known_to_exist(child):
                break
            self._work.say(depth, "cache: {} exists, no need to ask", child)
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
        self._work.say(depth, "forward zone {}: forwarding", route.zone)
        upstream, table = self._work.ctx.config.upstream, self._work.ctx.servers
        attempts = Attempts(upstream.forward_timeout, upstream.retries)
        # Why each DNS-over-TLS forwarder could not be asked, by server, for the EDE text: the
        # operator must learn that a certificate or pin check failed, and on which server.
        tls_failures: dict[Server, str] = {}
        other_failure = False
        while True:
            candidates = [
                server
                for server in attempts.fresh(route.servers)
                if usable_address(server.address, upstream, configured=True)
                and server.address not in self._work.avoid
            ]
            if not candidates:
                if attempts.next_round():
                    self._work.say(depth, "  {}", attempts)
                    continue
                if tls_failures and not other_failure:
                    detail = "; ".join(dict.fromkeys(tls_failures.values()))
                    raise ResolutionFailed(ServfailReason.FORWARDER_TLS_FAILED, detail)
                raise ResolutionFailed(
                    ServfailReason.NO_FORWARDER_ANSWERED
                    if attempts.any_asked
                    else ServfailReason.NO_USABLE_SERVER_ADDRESS
                )
            server = choose_in_order(candidates, table)
            attempts.asked(server)
            self._exchange.undelivered = None
            verdict = yield from self._exchange.ask(
                server, question, route.zone, depth, attempts.timeout, recursive=True
            )
            if isinstance(verdict, Classified):
                self._work.answered_by = server.address
                return verdict
            if server.tls is not None and self._exchange.undelivered is not None:
                tls_failures[server] = self._exchange.undelivered
            else:
                other_failure = True  # a reply, or silence: not (only) TLS failures
            if verdict is Miss.SILENT:
                attempts.silent(server)

    def _closest_delegation(
        self, name: dns.name.Name, depth: int, stub: Route | None = None
    ) -> Generator[SendQuery, Outcome, Delegation]:
        """Where iteration for `name` starts: the deepest cut we know, else a stub zone or root."""
        delegation = self._cached_delegation(name, depth, stub)
        if delegation is None:
            delegation = yield from self._root_delegation(depth)
        return delegation

    def _cached_delegation(
        self, name: dns.name.Name, depth: int, stub: Route | None
    ) -> Delegation | None:
        """The deepest cut we know at or above `name`, or a stub zone's servers; None: start
        from the root (`_root_delegation`). No generator: nearly every walk starts here.

        A stub zone's configured servers replace whatever NS set the cache holds for the zone
        itself or above it; only a cut cached below the stub zone (learnt by following the stub
        servers' referrals) is closer.
        """
        cache = self._work.ctx.cache
        if stub is None:
            cut = cache.closest_cut(name)
            if cut is None:
                return None
            self._work.say(depth, "cache: closest delegation is {}", cut.zone)
            return Delegation.from_cut(cut)
        # the NS set first: the stub's servers may stand in for it
        ns = cache.closest_delegation(name)
        if ns is None or ns.name == stub.zone or not ns.name.is_subdomain(stub.zone):
            self._work.say(depth, "stub zone {}: asking its configured servers", stub.zone)
            return Delegation.from_servers(stub.zone, stub.servers)
        self._work.say(depth, "cache: closest delegation is {}", ns.name)
        return Delegation.from_ns(ns, cache, from_cache=True)

    def _root_delegation(self, depth: int) -> Generator[SendQuery, Outcome, Delegation]:
        """The root's servers: the cached root NS set (primed first if there is none, RFC
        8109) while any of its servers has an address, else the hints."""
        cache = self._work.ctx.cache
        root_ns = cache.get_rrset(dns.name.root, dns.rdatatype.NS)
        if root_ns is None:
            yield from self._prime(depth)
            root_ns = cache.get_rrset(dns.name.root, dns.rdatatype.NS)
        if root_ns is not None:
            primed = Delegation.from_ns(root_ns, cache)
            if any(primed.addresses.values()):
                return primed
        return Delegation.from_hints(self._work.ctx.hints)

    def _prime(self, depth: int) -> Generator[SendQuery, Outcome, None]:
        """Ask a root server for the current root NS set (RFC 8109); the hints may be stale."""
        self._work.say(depth, "priming the root name servers")
        hints = Delegation.from_hints(self._work.ctx.hints)
        try:
            # In the order of the hints (fastest first once measured), not at random: cold
            # questions that start together then prime with one shared packet (`Upstream`).
            _, verdict = yield from self._ask_zone(
                hints, Question(dns.name.root, dns.rdatatype.NS), depth, in_order=True
            )
        except ResolutionFailed as failure:
            if failure.reason in FATAL:
                raise
            self._work.say(depth, "priming failed; using the hints as they are")
            return
        if verdict.kind is Kind.ANSWER:
            cache_verdict(self._work.ctx.cache, verdict)

    def _servers_of(self, delegation: Delegation) -> tuple[Server, ...]:
        """Every address of the delegation that a query may go to, configured servers first.

        An address the operator configured (hints, stub and forward servers) stays usable when
        it is learnt again from the network, e.g. from the root's answer to priming. The list
        of a delegation made from a cached cut is the same for every question that starts
        there, and made once (`Context.server_lists`).
        """
        cut = delegation.cut
        if cut is None:
            return self._make_servers_of(delegation)
        lists = self._work.ctx.server_lists
        held = lists.get(id(cut))
        if held is not None and held[0] is cut:
            return held[1]
        servers = self._make_servers_of(delegation)
        if len(lists) >= _SERVER_LISTS:
            lists.clear()
        lists[id(cut)] = (cut, servers)  # the cut held, so that its id is not reused
        return servers

    def _make_servers_of(self, delegation: Delegation) -> tuple[Server, ...]:
        upstream, configured = self._work.ctx.config.upstream, self._work.ctx.configured_addresses
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
        return tuple(servers)

    def _ask_zone(
        self,
        delegation: Delegation,
        question: Question,
        depth: int,
        fallback: Question | None = None,
        *,
        retries: int | None = None,
        in_order: bool = False,
        skip_lame: bool = False,
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
        A server found lame for the zone (for the full question) is remembered so, and asked
        only once the others have failed; with `skip_lame`, not at all (the parent is asked
        instead: the zone may have moved to other servers).
        """
        table, upstream = self._work.ctx.servers, self._work.ctx.config.upstream
        attempts = Attempts(upstream.timeout, upstream.retries if retries is None else retries)
        looked_up: set[dns.name.Name] = set()
        while True:
            candidates = attempts.fresh(self._servers_of(delegation))
            if self._work.avoid:
                candidates = [s for s in candidates if s.address not in self._work.avoid]
            if table.any_lame():
                zone = delegation.zone
                sound = [s for s in candidates if not table.is_lame(s.address, zone)]
                if sound or skip_lame:
                    candidates = sound
            if not candidates:
                ns_name = self._next_glueless_name(delegation, looked_up)
                if ns_name is not None and self._glueless_allowed(looked_up, depth):
                    self._work.say(depth, "  looking up the address of name server {}", ns_name)
                    looked_up.add(ns_name)
                    found = yield from self._lookup_addresses(ns_name, depth + 1)
                    delegation.learn_addresses(ns_name, found)
                elif attempts.next_round():
                    self._work.say(depth, "  {}", attempts)
                    if fallback is not None:
                        question, fallback = fallback, None
                elif attempts.any_asked:
                    raise ResolutionFailed(ServfailReason.NO_REACHABLE_AUTHORITY)
                elif ns_name is not None:
                    raise ResolutionFailed(ServfailReason.GLUELESS_LIMIT)
                else:
                    raise ResolutionFailed(ServfailReason.NO_USABLE_SERVER_ADDRESS)
                continue
            if in_order:
                server = choose_in_order(candidates, table)
            else:
                server = choose_server(candidates, table, self._work.ctx.rng)
            attempts.asked(server)
            if table.held_down(server.address):  # asked only of the one chosen: it may probe
                self._work.say(depth, "  {} is held down after repeated failures", server.address)
                continue
            verdict = yield from self._exchange.ask(
                server, question, delegation.zone, depth, attempts.timeout
            )
            # `is`, not `in (...)`: a verdict compared with `==` runs its dataclass `__eq__`
            if fallback is not None and (verdict is Miss.REJECTED or verdict is Miss.LAME):
                self._work.say(depth, "  minimised question not answered; asking for the full name")
                question, fallback = fallback, None
                verdict = yield from self._exchange.ask(
                    server, question, delegation.zone, depth, attempts.timeout
                )
            if isinstance(verdict, Classified):
                self._work.answered_by = server.address
                return question, verdict
            if verdict is Miss.SILENT:
                attempts.silent(server)
            elif verdict is Miss.LAME and fallback is None:
                table.record_lame(server.address, delegation.zone)

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
            len(looked_up) < self._work.limits.max_glueless_per_delegation
            and depth < self._work.limits.max_glueless_depth
        )

    def _lookup_addresses(
        self, ns_name: dns.name.Name, depth: int
    ) -> Generator[SendQuery, Outcome, tuple[str, ...]]:
        if ns_name in self._work.in_progress:
            return ()  # a glueless cycle: this very name is already being looked up
        upstream = self._work.ctx.config.upstream
        families = {dns.rdatatype.A: upstream.do_ip4, dns.rdatatype.AAAA: upstream.do_ip6}
        found: list[str] = []
        self._work.in_progress.add(ns_name)
        try:
            for rdtype in (rdtype for rdtype, enabled in families.items() if enabled):
                try:
                    answer = yield from self._resolve(ns_name, rdtype, depth)
                except ResolutionFailed as failure:
                    if failure.reason in FATAL:
                        raise
                    continue
                for rrset in answer.answer:
                    if rrset.rdtype == rdtype:
                        found.extend(rdata.address for rdata in rrset)
                if found:
                    break
        finally:
            self._work.in_progress.discard(ns_name)
        return tuple(found)
