"""Drive resolutions against the real network, merging identical questions that are in flight.

Once `run` has started (the daemon does it), each resolution runs as a task of the service's
own nursery rather than in the task of the client that asked first. Clients only wait for it,
and that is what lets the RFC 8767 section 5 client-response timer work: a client still
waiting after `cache.stale_client_timeout` gets the stale answer the cache holds, if any, while
the resolution goes on in the background and refreshes the cache when it ends, whether or not
anyone still waits for it. Without `run` (`resolver query`, benchmarks) resolutions run in the
caller's task and every caller waits for the end.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import trio

from resolver.cache.records import RecordCache
from resolver.cache.servers import ServerTable
from resolver.config import Config
from resolver.core.actions import Action, Answer, Done, SendQuery
from resolver.core.hints import RootHints
from resolver.core.reasons import ServfailReason
from resolver.core.resolution import Context, Resolution, Tracer
from resolver.server.stats import Stats
from resolver.server.upstream import Upstream

log = logging.getLogger(__name__)

#: A question in flight: name, type, and whether it may be answered from the cache only.
_Key = tuple[dns.name.Name, int, bool]


class ResolutionCrashed(Exception):
    """The resolution a client waited for ended in an exception (a bug): its askers see this."""


@dataclass
class _InFlight:
    """One resolution (a prefetch if `refresh`) and everyone waiting for it."""

    resolution: Resolution
    refresh: bool
    done: trio.Event = field(default_factory=trio.Event)
    answer: Answer | None = None
    error: BaseException | None = None


class ResolverService:
    """Everything one resolver process shares: the cache, server data and in-flight table."""

    def __init__(
        self,
        config: Config,
        hints: RootHints,
        *,
        clock: Callable[[], float] = time.time,
        upstream: Upstream | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.stats = Stats()
        self.cache = RecordCache(config.cache, clock)
        self.upstream = upstream or Upstream()
        self.context = Context(
            cache=self.cache,
            servers=ServerTable(config.upstream.server_table_size, clock, config.upstream),
            hints=hints,
            config=config,
            rng=random.Random(secrets.randbits(64)),
        )
        self._in_flight: dict[_Key, _InFlight] = {}
        self._background: trio.Nursery | None = None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host resolutions in a nursery of their own until cancelled (`nursery.start(run)`).

        Cancelling it cancels the resolutions still going; their waiters get SERVFAIL.
        """
        async with trio.open_nursery() as nursery:
            self._background = nursery
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._background = None

    async def resolve(
        self,
        qname: dns.name.Name,
        qtype: int,
        trace: Tracer | None = None,
        *,
        refresh: bool = False,
        cache_only: bool = False,
    ) -> Answer:
        """Answer one question; concurrent askers of the same question share one resolution.

        `refresh` (prefetch) asks the authorities again even if the answer is still cached.
        `cache_only` (RD=0 queries) answers from the cache and never asks upstream; such a
        question is never merged with one that may recurse.
        """
        if trace is not None:
            return await self._drive(self._resolution(qname, qtype, trace, refresh, cache_only))
        key = (qname, qtype, cache_only)
        pending = self._in_flight.get(key)
        if pending is not None:
            if not refresh and not cache_only:  # only resolutions that ask upstream last
                self.stats.cache_misses += 1
            # A prefetch in flight means the cached answer is still fresh: nothing is stale.
            return await self._wait(pending, stale_allowed=not (refresh or pending.refresh))
        if len(self._in_flight) >= self.config.limits.max_in_flight:
            return Answer.servfail(ServfailReason.TOO_MANY_QUERIES)
        resolution = self._resolution(qname, qtype, None, refresh, cache_only)
        if self._background is None:
            pending = self._in_flight[key] = _InFlight(resolution, refresh)
            await self._finish(key, pending, None, contain=False)
            return self._outcome(pending)
        # The first step runs here: a question the cache answers costs no task and no wait.
        first = resolution.next_action()
        if isinstance(first, Done):
            self._count(resolution, first.answer)
            return first.answer
        pending = self._in_flight[key] = _InFlight(resolution, refresh)
        self._background.start_soon(self._finish, key, pending, first)
        return await self._wait(pending, stale_allowed=not refresh)

    def _resolution(
        self,
        qname: dns.name.Name,
        qtype: int,
        trace: Tracer | None,
        refresh: bool,
        cache_only: bool,
    ) -> Resolution:
        return Resolution(qname, qtype, self.context, trace, refresh=refresh, cache_only=cache_only)

    async def _wait(self, pending: _InFlight, *, stale_allowed: bool) -> Answer:
        """The resolution's answer; or, if it is still going after `stale_client_timeout`
        and the cache holds stale data for the question, that (RFC 8767 section 5)."""
        cache_config = self.config.cache
        if stale_allowed and cache_config.serve_stale:
            with trio.move_on_after(cache_config.stale_client_timeout):
                await pending.done.wait()
            if not pending.done.is_set():
                stale = pending.resolution.stale_answer()
                if stale is not None:
                    return stale
        await pending.done.wait()
        return self._outcome(pending)

    @staticmethod
    def _outcome(pending: _InFlight) -> Answer:
        if pending.error is not None:
            raise ResolutionCrashed(str(pending.error)) from pending.error
        assert pending.answer is not None
        return pending.answer

    async def _finish(
        self,
        key: _Key,
        pending: _InFlight,
        first: Action | None,
        *,
        contain: bool = True,
    ) -> None:
        """Run the resolution on from its `first` action to its end, then wake its waiters.

        With `contain` (in the background nursery) an exception must not escape, since it
        would stop the daemon: it is logged and handed to the waiters instead, as if it had
        been raised in their task.
        """
        resolution = pending.resolution
        try:
            pending.answer = await self._drive(resolution, first)
            if not pending.refresh and resolution.queries_sent:
                self.stats.cache_misses += 1
        except Exception as error:
            if not contain:
                raise
            log.exception("resolution of %s %s failed", resolution.qname, resolution.qtype)
            pending.error = error
        finally:
            if pending.answer is None and pending.error is None:
                pending.answer = Answer.servfail(ServfailReason.TIMEOUT)
            pending.done.set()
            del self._in_flight[key]

    async def _drive(self, resolution: Resolution, first: Action | None = None) -> Answer:
        """Perform the resolution's queries until it is done or `max_resolution_time` is up."""
        answer: Answer | None = None
        with trio.move_on_after(self.config.limits.max_resolution_time):
            action = resolution.next_action() if first is None else first
            while isinstance(action, SendQuery):
                action = resolution.receive(await self.upstream.perform(action))
            assert isinstance(action, Done)
            answer = action.answer
        if answer is None:
            answer = resolution.give_up(ServfailReason.TIMEOUT)
        self._count(resolution, answer)
        return answer

    def _count(self, resolution: Resolution, answer: Answer) -> None:
        stats = self.stats
        stats.resolutions += 1
        if resolution.queries_sent == 0:  # cache-only resolutions never send any
            stats.cache_answers += 1
        if answer.rcode == dns.rcode.SERVFAIL:
            stats.servfails += 1
