"""The trio carrier of the engine: bytes to and from sockets, and the passing of time.

All DNS logic is in `resolver.engine.Engine`; this module only does what the engine cannot:
it sends the engine's `Send`s over the network (plain UDP on the one task of `Datagrams`, TCP
and TLS a task per query, cancelled by the engine's `Close`), hands every reply back, sends
each `Reply` to its client (through the `ReplyTo` the listener gave as the client's token),
and calls `tick` when the engine's next deadline comes. Once `run` has started (the daemon does
it) upstream queries run in the service's own nursery and outlive the client that caused them;
without it (`resolver query`, tests) `resolve` and `respond` run one for the time of the call.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import dns.name
import trio

from resolver.cache.records import RecordCache
from resolver.config import Config
from resolver.core.actions import Answer, NetworkError
from resolver.core.hints import RootHints
from resolver.core.resolution import Context, Tracer
from resolver.engine import (
    Client,
    Close,
    Engine,
    Output,
    QueryLogSink,
    Reply,
    Send,
    SharedLookup,
    SharedStore,
)
from resolver.engine.stats import Stats
from resolver.server.sharedcache import SharedCacheClient
from resolver.server.upstream import Datagrams, Network

log = logging.getLogger(__name__)


class ReplyTo(Protocol):
    """A client's token: how its reply reaches it (None: the engine sends nothing)."""

    def send(self, wire: bytes | None) -> None: ...


class Awaited:
    """A reply that a task waits for (`respond`, and each DNS-over-HTTPS request)."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.wire: bytes | None = None

    def send(self, wire: bytes | None) -> None:
        self.wire = wire
        self.done.set()


class ResolverService:
    """One `Engine` and the trio tasks that carry its packets and keep its time."""

    def __init__(
        self,
        config: Config,
        hints: RootHints,
        *,
        clock: Callable[[], float] = time.time,
        network: Network | None = None,
        query_log: QueryLogSink | None = None,
    ) -> None:
        self.engine = Engine(config, hints, clock, timer=time.monotonic, query_log=query_log)
        self.network = network or Network()
        self._nursery: trio.Nursery | None = None
        self._exchanges: dict[int, trio.CancelScope] = {}
        # The carrier of plain UDP queries while running (None: a scripted network's `carry`).
        self._datagrams: Datagrams | None = None
        # The scope `_keep_time` sleeps in until the engine's next deadline (`timer` time).
        self._timer: trio.CancelScope | None = None
        self._timer_at = math.inf
        self._temporary = False
        # The shared cache's client, if configured; opened by `run` (or for one call).
        self.shared: SharedCacheClient | None = None
        if config.shared_cache.url is not None:
            self.shared = SharedCacheClient(config.shared_cache)
        self._shared_open = False
        self._pending_stores = 0

    # -- what others read ---------------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self.engine.config

    @property
    def clock(self) -> Callable[[], float]:
        return self.engine.clock

    @property
    def stats(self) -> Stats:
        return self.engine.stats

    @property
    def cache(self) -> RecordCache:
        return self.engine.cache

    @property
    def context(self) -> Context:
        return self.engine.context

    @property
    def in_flight(self) -> int:
        return self.engine.in_flight

    # -- running --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Carry the engine's packets and time until cancelled (`nursery.start(run)`)."""
        if self._nursery is not None:
            raise RuntimeError("the service is already running")
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._attach(nursery)
            nursery.start_soon(self._keep_time)
            await self._open_shared(nursery)
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = self._datagrams = None

    def _attach(self, nursery: trio.Nursery) -> None:
        """Give the network the nursery its shared connections (DNS over TLS) live in, and
        start the carrier of plain UDP queries there."""
        attach = getattr(self.network, "attach", None)
        if attach is not None:
            attach(nursery, self.engine.stats)
        datagrams = getattr(self.network, "datagrams", None)
        if datagrams is not None:
            self._datagrams = datagrams(self._replied, self._failed)
            if self._datagrams is not None:
                nursery.start_soon(self._datagrams.run)

    def _replied(self, handle: int, data: bytes) -> None:
        self.carry(self.engine.upstream_reply(handle, data))

    def _failed(self, handle: int, failure: NetworkError) -> None:
        reason, unreachable = failure.reason, failure.unreachable
        self.carry(self.engine.upstream_failed(handle, reason, unreachable=unreachable))

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """Carry packets and time for the length of one call when `run` has not been started
        (`resolver query`, tests). Calls that overlap need `run`: a caller's nursery cannot
        outlive it, so it could not carry another caller's queries to the end."""
        if self._nursery is not None:
            if self._temporary:
                raise RuntimeError("concurrent calls need the service running (service.run)")
            yield
            return
        async with trio.open_nursery() as nursery:
            self._nursery, self._temporary = nursery, True
            self._attach(nursery)
            nursery.start_soon(self._keep_time)
            await self._open_shared(nursery)
            try:
                yield
            finally:
                self._nursery, self._temporary, self._datagrams = None, False, None
                self._shared_open = False
                nursery.cancel_scope.cancel()

    async def _open_shared(self, nursery: trio.Nursery) -> None:
        """Open the shared cache's client in `nursery` (it connects when first used)."""
        if self.shared is not None:
            await nursery.start(self.shared.run)
            self._shared_open = True

    def carry(self, outputs: list[Output]) -> None:
        """Carry out what the engine asked for; never blocks."""
        unsent: list[tuple[int, NetworkError]] | None = None
        datagrams = self._datagrams
        for output in outputs:
            if isinstance(output, Reply):
                token: ReplyTo = output.client.token  # type: ignore[assignment]  # ours
                token.send(output.wire)
            elif isinstance(output, Send):
                if self._nursery is None:
                    continue  # stopping: the query's deadline ends it at the next start
                if datagrams is not None and not output.tcp and output.server.tls is None:
                    try:
                        failure = datagrams.send(output)
                    except Exception:  # a bug must cost this query, never the caller
                        log.exception("carrying a query to %s failed", output.server.address)
                        failure = NetworkError("internal error")
                    if failure is not None:  # told after the rest, as a task would have been
                        unsent = unsent or []
                        unsent.append((output.handle, failure))
                    continue
                scope = self._exchanges[output.handle] = trio.CancelScope()
                self._nursery.start_soon(self._exchange, output, scope)
            elif isinstance(output, Close):
                if datagrams is not None and datagrams.close(output.handle):
                    continue
                closed = self._exchanges.pop(output.handle, None)
                if closed is not None:
                    closed.cancel()
            elif isinstance(output, SharedLookup):
                if self._nursery is None or self.shared is None or not self._shared_open:
                    self.carry(self.engine.shared_failed(output.handle))
                else:
                    self._nursery.start_soon(self._shared_lookup, self.shared, output)
            else:
                assert isinstance(output, SharedStore)
                self._store(output)
        if unsent is not None:
            for handle, failure in unsent:
                self._failed(handle, failure)
        deadline = self.engine.next_deadline()
        if deadline is not None and deadline < self._timer_at:
            self._timer_at = deadline
            timer = self._timer
            if timer is not None:  # None: `_keep_time` is ticking, and looks again after
                timer.deadline = trio.current_time() + (deadline - self.engine.timer())

    async def _exchange(self, send: Send, scope: trio.CancelScope) -> None:
        engine, handle, exchanges = self.engine, send.handle, self._exchanges

        def received(data: bytes) -> None:
            self.carry(engine.upstream_reply(handle, data))

        with scope:
            try:
                failure = await self.network.carry(send, received)
            except Exception:  # a bug must cost this query, never the service's nursery
                log.exception("carrying a query to %s failed", send.server.address)
                failure = NetworkError("internal error")
            if trio.current_effective_deadline() == -math.inf:
                pass  # cancelled (the carrier returned rather than raise): nothing to report
            elif failure is None:  # the carrier knows nothing more will come
                self.carry(engine.upstream_silent(handle))
            else:
                self.carry(
                    engine.upstream_failed(handle, failure.reason, unreachable=failure.unreachable)
                )
        exchanges.pop(handle, None)

    async def _shared_lookup(self, client: SharedCacheClient, lookup: SharedLookup) -> None:
        value: bytes | None = None
        failed = True
        with trio.move_on_after(lookup.timeout):
            try:
                value = await client.get(lookup.key)
                failed = False
            except Exception as error:  # any failure of Redis is a miss, never the query's end
                log.debug("shared cache lookup failed: %r", error)
        if failed:
            self.carry(self.engine.shared_failed(lookup.handle))
        else:
            self.carry(self.engine.shared_reply(lookup.handle, value))

    def _store(self, store: SharedStore) -> None:
        """Write in the background; at most `max_pending_stores` at once (the rest skipped)."""
        limit = self.config.shared_cache.max_pending_stores
        if (
            self._nursery is None
            or self.shared is None
            or not self._shared_open
            or self._pending_stores >= limit
        ):
            self.engine.shared_stored(None)
        else:
            self._pending_stores += 1
            assert self._nursery is not None and self.shared is not None
            self._nursery.start_soon(self._shared_store, self.shared, store)

    async def _shared_store(self, client: SharedCacheClient, store: SharedStore) -> None:
        ok = False
        try:
            with trio.move_on_after(store.timeout):
                try:
                    await client.set(store.key, store.value, store.expire)
                    ok = True
                except Exception as error:
                    log.debug("shared cache store failed: %r", error)
            self.engine.shared_stored(ok)
        finally:
            self._pending_stores -= 1

    async def _keep_time(self) -> None:
        """Call `tick` at each of the engine's deadlines.

        The task sleeps in a cancel scope whose deadline is the engine's next one; `carry`
        brings that deadline forward when the engine has an earlier one, without waking the
        task (an event and a new scope per such change cost a task switch each, and when the
        resolver is idle every new query brings the deadline forward).
        """
        engine = self.engine
        try:
            while True:
                deadline = engine.next_deadline()
                with trio.CancelScope() as timer:
                    if deadline is None:
                        self._timer_at = math.inf
                    else:
                        timer.deadline = trio.current_time() + (deadline - engine.timer())
                        self._timer_at = deadline
                    self._timer = timer
                    await trio.sleep_forever()
                self._timer, self._timer_at = None, math.inf
                self.carry(engine.tick())
        finally:
            self._timer, self._timer_at = None, math.inf

    # -- asking -----------------------------------------------------------------------------------

    async def resolve(
        self,
        qname: dns.name.Name,
        qtype: int,
        trace: Tracer | None = None,
        *,
        refresh: bool = False,
        cache_only: bool = False,
    ) -> Answer:
        """Answer one question given as a name and a type (`resolver query`, tests)."""
        answers: list[Answer] = []
        done = trio.Event()

        def on_answer(answer: Answer) -> None:
            answers.append(answer)
            done.set()

        async with self._running():
            self.carry(
                self.engine.ask(
                    qname, qtype, on_answer, trace=trace, refresh=refresh, cache_only=cache_only
                )
            )
            await done.wait()
        return answers[0]

    async def respond(self, wire: bytes, client_address: str, tcp: bool) -> bytes | None:
        """The reply to one client query's bytes: the packet cache first, then the full path."""
        engine = self.engine
        reply = engine.answer_from_cache(wire, client_address, tcp)
        async with self._running():
            self.carry(engine.take_output())
            if reply is not None:
                return reply
            awaited = Awaited()
            self.carry(engine.client_query(wire, Client(client_address, tcp, awaited)))
            await awaited.done.wait()
        return awaited.wire
