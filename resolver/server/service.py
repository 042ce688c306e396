"""Drive resolutions against the real network, merging identical questions that are in flight."""

from __future__ import annotations

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
from resolver.core.actions import Answer, Done, SendQuery
from resolver.core.hints import RootHints
from resolver.core.reasons import ServfailReason
from resolver.core.resolution import Context, Resolution, Tracer
from resolver.server.stats import Stats
from resolver.server.upstream import Upstream


@dataclass
class _InFlight:
    done: trio.Event = field(default_factory=trio.Event)
    answer: Answer | None = None


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
            servers=ServerTable(config.upstream.server_table_size),
            hints=hints,
            config=config,
            rng=random.Random(secrets.randbits(64)),
        )
        self._in_flight: dict[tuple[dns.name.Name, int], _InFlight] = {}

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def resolve(
        self,
        qname: dns.name.Name,
        qtype: int,
        trace: Tracer | None = None,
        *,
        refresh: bool = False,
    ) -> Answer:
        """Answer one question; concurrent askers of the same question share one resolution.

        `refresh` (prefetch) asks the authorities again even if the answer is still cached.
        """
        if trace is not None:
            return await self._drive(Resolution(qname, qtype, self.context, trace))
        key = (qname, qtype)
        pending = self._in_flight.get(key)
        if pending is not None:
            if not refresh:  # only resolutions that ask upstream stay in flight long enough
                self.stats.cache_misses += 1
            await pending.done.wait()
            assert pending.answer is not None
            return pending.answer
        if len(self._in_flight) >= self.config.limits.max_in_flight:
            return Answer.servfail(ServfailReason.TOO_MANY_QUERIES)
        pending = self._in_flight[key] = _InFlight()
        try:
            resolution = Resolution(qname, qtype, self.context, trace, refresh=refresh)
            pending.answer = await self._drive(resolution)
            if not refresh and resolution.queries_sent:
                self.stats.cache_misses += 1
        finally:
            if pending.answer is None:
                pending.answer = Answer.servfail(ServfailReason.TIMEOUT)
            pending.done.set()
            del self._in_flight[key]
        return pending.answer

    async def _drive(self, resolution: Resolution) -> Answer:
        answer: Answer | None = None
        with trio.move_on_after(self.config.limits.max_resolution_time):
            action = resolution.next_action()
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
        if resolution.queries_sent == 0:
            stats.cache_answers += 1
        if answer.rcode == dns.rcode.SERVFAIL:
            stats.servfails += 1
