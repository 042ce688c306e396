"""The whole resolver as one object without I/O, in the manner of Unbound's mesh.

The engine owns everything one resolver process shares: the record, packet and server caches,
the questions in flight (identical client questions share one resolution), the queries on the
wire (identical ones share one packet, `outbound.py`), their IDs and the matching of replies,
every deadline, and the statistics. Its inputs are a client's query (bytes, with an opaque
`Client` to reply to), bytes that arrived for an upstream query, a failure to deliver one, and
the passing of time (`tick`, with the injected clocks). Its outputs are `Reply` (bytes for a
client), `Send` and `Close` (for the carrier of upstream queries), and `next_deadline()` (when
to call `tick` again). Whoever carries the bytes, trio sockets in the daemon or a script in
tests and simulations, runs the same loop:

    outputs = engine.client_query(wire, client)      # or any other input
    for output in outputs: carry it out; bytes that come back go to engine.upstream_reply
    at engine.next_deadline(): outputs = engine.tick()

Nothing here reads a clock other than the injected one, sleeps or touches a socket, so merging,
retries, timeouts and the client-response timer of RFC 8767 run in tests on a fake clock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import dns.name
import dns.rcode

from resolver.cache.packets import PacketCache
from resolver.cache.records import RecordCache
from resolver.cache.servers import ServerTable
from resolver.config import Config
from resolver.core.actions import (
    Action,
    Answer,
    Done,
    NetworkError,
    Outcome,
    SendQuery,
    Timeout,
)
from resolver.core.hints import RootHints
from resolver.core.reasons import ServfailReason
from resolver.core.resolution import Context, Resolution, Tracer
from resolver.dnssec import TrustAnchors
from resolver.engine.clients import CD_BIT, Admitted, ClientProtocol, answerable
from resolver.engine.latency import FAST_PATH_SAMPLING, LatencyHistogram
from resolver.engine.messages import parse
from resolver.engine.outbound import Close, Outbound, Send
from resolver.engine.padding import asks_for_padding, pad_reply
from resolver.engine.shared import SharedCache, SharedLookup, SharedStore
from resolver.engine.stats import TRANSPORTS, Stats

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: At most one traceback a second: a client that can trigger a bug on every query must not be
#: able to flood the log (the others are counted and reported with the next one).
_ERROR_LOG_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Client:
    """Who asked: the address (for the access list and logs), the transport, and `token`,
    which the carrier uses to find the socket or connection to reply on."""

    address: str
    tcp: bool = False
    token: object = None
    #: "tls" (RFC 7858) or "https" (RFC 8484) for an encrypted transport, whose replies are
    #: padded when the query asks (`padding.py`); None: plain UDP or TCP, as `tcp` says.
    transport: str | None = None

    @property
    def kind(self) -> str:
        """The transport's name for stats and logs: udp, tcp, tls or https."""
        return self.transport or ("tcp" if self.tcp else "udp")


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `wire` to `client`; None: the engine is done with the query and sends nothing
    (a packet that was not a query, or one dropped under load)."""

    client: Client
    wire: bytes | None


Output = Reply | Send | Close | SharedLookup | SharedStore

#: The outcome of a query nobody will answer (`upstream_silent`): one frozen value for all.
_SILENCE = Timeout()


class QueryLogSink(Protocol):
    """Where the engine reports each answered client query (the daemon's `--query-log`)."""

    def record(
        self, client: str, query: bytes, reply: bytes | None, source: str, seconds: float
    ) -> None: ...


#: A deadline: `[when, order, fire, arg]`, where `fire(arg)` is called once `when` has passed.
#: A list, not a dataclass: ordered by (when, order) in C, where a dataclass's generated
#: `__lt__` is a Python call for every comparison a heap operation makes, and every question
#: sets three of these and pops them all. Cancelled by dropping `fire` and `arg`, so that what
#: it would have touched (a finished question, its resolution) is freed now, not when the
#: deadline passes.
_Timer = list[Any]
_WHEN, _FIRE, _ARG = 0, 2, 3


@dataclass(eq=False, slots=True)
class _Waiter:
    """Someone waiting for a question's answer: a client, a prefetch, or a caller of `ask`."""

    #: (answer, hit): True if it came from the cache alone, False if it waited for upstream
    #: queries, None if neither (turned away before any lookup).
    deliver: Callable[[Answer, bool | None], None]
    #: May be answered with stale data once `cache.stale_client_timeout` has passed.
    stale_allowed: bool


#: A question in flight, as bytes (`_question_key`): its name in lowercase wire form, its type
#: and whether it may be answered from the cache only (RD=0) and may get bogus data (CD=1).
#: Bytes hash once and compare in C; a tuple holding a `dns.name.Name` is hashed in Python,
#: label by label, each time the table is read.
_Key = bytes
#: The last byte of a key: 1 for cache only, 2 for CD.
_KEY_FLAGS = tuple(bytes((flags,)) for flags in range(4))


def _question_key(name_wire: bytes, qtype: int, cache_only: bool, checking_disabled: bool) -> _Key:
    """The key of a question whose name is `name_wire` (lowercased wire form)."""
    return name_wire + qtype.to_bytes(2, "big") + _KEY_FLAGS[cache_only | checking_disabled << 1]


def _name_key(name: dns.name.Name) -> bytes:
    """`name` in lowercased wire form (of a relative name, its labels alone: no other name
    is written so, since only the root label is empty)."""
    return b"".join([bytes((len(label),)) + label.lower() for label in name.labels])


@dataclass(eq=False, slots=True)
class _Question:
    key: _Key | None  # None: traced, never shared
    resolution: Resolution
    refresh: bool
    waiters: list[_Waiter] = field(default_factory=list)
    handle: int | None = None  # the upstream query it waits for
    done: bool = False
    timers: list[_Timer] = field(default_factory=list)  # cancelled when it ends
    # While the shared cache is asked: the upstream query to send if it has nothing.
    on_shared_miss: SendQuery | None = None
    shared_handle: int | None = None


class Engine:
    """One resolver process's state and logic; see the module docstring for the loop."""

    def __init__(
        self,
        config: Config,
        hints: RootHints,
        clock: Clock,
        *,
        timer: Clock | None = None,
        rng: random.Random | None = None,
        query_log: QueryLogSink | None = None,
        trust_anchors: TrustAnchors | None = None,
    ) -> None:
        # `trust_anchors`: None reads `dnssec.trust_anchor_file` (else the bundled root
        # anchors); tests of a private internet pass its own (or none: `TrustAnchors()`).
        self.config = config
        # Two clocks: `clock` is wall time, for TTLs (absolute expiry times survive a dump and
        # a restart); `timer` is for deadlines and latencies, which a step of the wall clock
        # must not stretch or cut (the daemon gives it time.monotonic). Simulations pass one
        # fake clock for both.
        self.clock = clock
        self.timer = timer or clock
        self.stats = Stats()
        self.cache = RecordCache(config.cache, clock, config.dnssec.bogus_ttl)
        self.context = Context(
            cache=self.cache,
            servers=ServerTable(config.upstream.server_table_size, clock, config.upstream),
            hints=hints,
            config=config,
            rng=rng or random.Random(secrets.randbits(64)),
            anchors=trust_anchors,
        )
        self.packets = PacketCache(config.cache.max_packets, clock, config.edns_payload)
        self.clients = ClientProtocol(config, self.packets)
        self.query_log = query_log
        # Client-query latencies for stats and metrics; fast-path calls are sampled.
        self.latency = LatencyHistogram(self.timer())
        # The same, per stream transport (every query timed: a stream's hit costs far more
        # than the two clock reads); UDP's is `latency`, which all transports feed.
        self.transport_latency = {
            transport: LatencyHistogram(self.timer()) for transport in TRANSPORTS
        }
        self._untimed = 1
        self._hits_timed = 0  # packet hits accounted for in `latency` so far
        # Query IDs must be unpredictable (RFC 5452): from the system's generator unless a
        # test passes its own, so that runs replay exactly.
        self._outbound: Outbound[_Question] = Outbound(rng or random.SystemRandom())
        self._questions: dict[_Key, _Question] = {}
        # Deadlines: a heap for those of any delay (upstream queries), and a queue for each
        # delay that is the same for every question (the resolution's cap, the stale-client
        # timer): such deadlines come due in the order they were set, so appending and popping
        # at the front keeps them in order at no cost (`_after`).
        self._timers: list[_Timer] = []
        self._out_of_time_queue: deque[_Timer] = deque()
        self._stale_queue: deque[_Timer] = deque()
        self._timer_queues = (self._out_of_time_queue, self._stale_queue)
        self._timer_order = itertools.count()
        self._live_timers = 0  # timers set and neither fired nor cancelled, in all of them
        # The deadline of each upstream query on the wire, by handle: cancelled when a reply
        # settles the query. Left set, it would fire for nothing a timeout later, and in a
        # resolver that is not saturated each such firing is a wake-up of its own (the
        # carrier's timer task, a trip round the event loop) for every query sent.
        self._send_timers: dict[int, _Timer] = {}
        self._outbox: list[Output] = []
        self._refreshing: set[bytes] = set()
        self._waiting_clients = 0
        self._last_error_logged = -_ERROR_LOG_INTERVAL
        self._errors_not_logged = 0
        self.shared: SharedCache | None = None
        if config.shared_cache.url is not None:
            self.shared = SharedCache(config, self.cache, self.stats)
        self._shared_waiting: dict[int, tuple[_Question, _Timer]] = {}
        self._shared_handles = itertools.count(1)

    # -- what the carrier reads -------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Questions being resolved (merged ones count once)."""
        return len(self._questions)

    @property
    def upstream_sent(self) -> int:
        """Packets sent to authorities so far."""
        return self._outbound.sent

    def next_deadline(self) -> float | None:
        """When `tick` has work to do next (`timer` time), or None if nothing is waiting."""
        timer = self._next_timer()
        return None if timer is None else timer[_WHEN]

    @property
    def has_output(self) -> bool:
        """Whether `take_output` has something (checked after packet hits, which may prefetch)."""
        return bool(self._outbox)

    def take_output(self) -> list[Output]:
        """Outputs produced outside an input's return (a prefetch started by a packet hit)."""
        outbox, self._outbox = self._outbox, []
        return outbox

    # -- inputs -------------------------------------------------------------------------------

    def answer_from_cache(
        self, wire: bytes, client_address: str, tcp: bool, transport: str | None = None
    ) -> bytes | None:
        """The reply from the packet cache, or None: then `client_query` takes the full path.

        The carrier calls this inline for every datagram, so it must never raise: an exception
        here is logged and the query goes to the full path, which answers it (or SERVFAILs it).
        A prefetch it starts leaves its upstream queries in `take_output()`. `transport` is
        `Client.transport` ("tls", "https"): its hits are counted apart and padded on request.
        """
        try:  # free in Python 3.11 unless it raises; a method call per hit would not be
            self._untimed -= 1
            started = 0.0
            if not self._untimed:  # one call in FAST_PATH_SAMPLING is timed (latency.py: why)
                self._untimed = FAST_PATH_SAMPLING
                started = self.timer()
            stream_started = self.timer() if tcp else 0.0
            hit = self.clients.from_packet_cache(wire, client_address, tcp)
            if hit is None:
                return None
            stats = self.stats
            stats.queries += 1
            stats.packet_hits += 1
            reply = hit.reply
            if tcp:
                kind = transport or "tcp"
                if transport is not None and asks_for_padding(wire):
                    reply = pad_reply(reply)
                stats.count_transport(kind)
                self.transport_latency[kind].observe(self.timer() - stream_started)
            if started:  # this hit stands for every hit since the last timed one
                self.latency.observe(self.timer() - started, stats.packet_hits - self._hits_timed)
                self._hits_timed = stats.packet_hits
            if self.query_log is not None:
                try:
                    source = "packet-cache" if transport is None else f"packet-cache/{transport}"
                    self.query_log.record(client_address, wire, reply, source, 0.0)
                except Exception:
                    log.error("query log failed", exc_info=True)
            if hit.refresh_key is not None and self.config.cache.prefetch:
                self._prefetch(hit.refresh_key, wire)
            return reply
        except Exception:
            log.error("packet cache failed for a query from %s", client_address, exc_info=True)
            return None

    def client_query(self, wire: bytes, client: Client) -> list[Output]:
        """The full path for one client query: its reply now or, after a resolution, later.

        Never raises an Exception: one raised while answering becomes a SERVFAIL for this
        query alone and one log record.
        """
        started = self.timer()
        if answerable(wire):
            self.stats.queries += 1
            if client.tcp:
                self.stats.count_transport(client.kind)
        try:
            admitted = self.clients.admit(wire, client.address, client.tcp)
        except Exception:
            self._log_internal_error(f"answering a query from {client.address}")
            self._reply(client, wire, self._failure(wire, client.tcp), started)
            return self.take_output()
        if not isinstance(admitted, Admitted):
            self._reply(client, wire, admitted, started)
            return self.take_output()
        if not client.tcp and self._waiting_clients >= self.config.limits.max_in_flight:
            self.stats.dropped += 1
            self._outbox.append(Reply(client, None))  # the client retries; memory stays bounded
            return self.take_output()
        self._waiting_clients += 1

        def deliver(answer: Answer, hit: bool | None) -> None:
            self._waiting_clients -= 1
            self._count_client(hit)
            try:
                reply: bytes | None = self.clients.reply(wire, admitted, answer, client.tcp)
            except Exception:
                self._log_internal_error(f"answering a query from {client.address}")
                reply = self._failure(wire, client.tcp)
            self._reply(client, wire, reply, started)

        waiter = _Waiter(deliver, stale_allowed=True)
        checking_disabled = bool(admitted.bits & CD_BIT)
        plain = admitted.plain
        self._start(
            admitted.qname,
            admitted.qtype,
            waiter,
            cache_only=admitted.cache_only,
            checking_disabled=checking_disabled,
            # A plain question's packet-cache key starts with the name in lowercase and the
            # type: all of the question's key but its last byte (a plain query has RD=1).
            key=None
            if plain is None
            else plain.key[: plain.name_end - 10] + _KEY_FLAGS[checking_disabled << 1],
        )
        return self.take_output()

    def ask(
        self,
        qname: dns.name.Name,
        qtype: int,
        on_answer: Callable[[Answer], None],
        *,
        trace: Tracer | None = None,
        refresh: bool = False,
        cache_only: bool = False,
        checking_disabled: bool = False,
    ) -> list[Output]:
        """Resolve a question that comes as a name and a type (`resolver query`, tests).

        `refresh` (prefetch) asks the authorities again even if the answer is still cached;
        `cache_only` (RD=0) answers from the cache and never asks upstream;
        `checking_disabled` is a client's CD=1 (data even if bogus). A traced question runs on
        its own, so that its trace shows every step.
        """

        def deliver(answer: Answer, hit: bool | None) -> None:
            if not refresh:  # a question asked by name counts as a client's; a refresh not
                self._count_client(hit)
            on_answer(answer)

        waiter = _Waiter(deliver, stale_allowed=not refresh)
        self._start(
            qname,
            qtype,
            waiter,
            trace=trace,
            refresh=refresh,
            cache_only=cache_only,
            checking_disabled=checking_disabled,
        )
        return self.take_output()

    def upstream_reply(self, handle: int, data: bytes) -> list[Output]:
        """Bytes that arrived on the socket (or connection) of upstream query `handle`."""
        self._settle(handle, self._outbound.received(handle, data, self.timer()))
        return self.take_output()

    def upstream_failed(
        self, handle: int, reason: str, *, unreachable: bool = False
    ) -> list[Output]:
        """The query could not be sent, or its connection closed without a reply.

        `unreachable` says this host cannot reach the address at all (no route), so waiting
        for it or asking it again is pointless.
        """
        self._settle(handle, self._outbound.ended(handle, NetworkError(reason, unreachable)))
        return self.take_output()

    def upstream_silent(self, handle: int) -> list[Output]:
        """No reply will come for `handle` (a scripted network knows it): time out now."""
        self._settle(handle, self._outbound.ended(handle, _SILENCE))
        return self.take_output()

    def shared_reply(self, handle: int, value: bytes | None) -> list[Output]:
        """The shared cache's value for lookup `handle` (None: it holds nothing)."""
        self._shared_done(handle, value, failed=False)
        return self.take_output()

    def shared_failed(self, handle: int) -> list[Output]:
        """Lookup `handle` failed (an error or the carrier's timeout): iterate instead."""
        self._shared_done(handle, None, failed=True)
        return self.take_output()

    def shared_stored(self, ok: bool | None) -> None:
        """How a `SharedStore` went (counted, and told to the circuit breaker); None: the
        carrier did not try (too many writes pending, or not running)."""
        if self.shared is None:
            return
        if ok is None:
            self.stats.shared_skipped += 1
            self.shared.breaker.give_back()  # it may have been the half-open probe
        elif ok:
            self.stats.shared_stores += 1
            self.shared.breaker.succeeded()
        else:
            self.stats.shared_errors += 1
            self.shared.breaker.failed(self.timer())

    def tick(self) -> list[Output]:
        """Fire every deadline that has passed by the clock's current time."""
        now = self.timer()
        while (timer := self._next_timer()) is not None and timer[_WHEN] <= now:
            if self._timers and self._timers[0] is timer:
                heapq.heappop(self._timers)
            else:
                for queue in self._timer_queues:
                    if queue and queue[0] is timer:
                        queue.popleft()
                        break
            fire, arg = timer[_FIRE], timer[_ARG]
            timer[_FIRE] = timer[_ARG] = None
            self._live_timers -= 1
            try:
                fire(arg)
            except Exception:  # a bug must cost one deadline's work, never the carrier's loop
                self._log_internal_error("at a deadline")
        return self.take_output()

    # -- negative trust anchors (RFC 7646) ---------------------------------------------------

    def add_negative_trust_anchor(self, name: dns.name.Name) -> bool:
        """Stop validating at and below `name` (`resolver trust add-nta`); False if it was
        one already. The set lives in the context, where the validator reads it."""
        anchors = self.context.negative_trust_anchors
        if name in anchors:
            return False
        anchors.add(name)
        return True

    def remove_negative_trust_anchor(self, name: dns.name.Name) -> bool:
        """Validate `name` again (`resolver trust remove-nta`); False if it was no NTA."""
        anchors = self.context.negative_trust_anchors
        if name not in anchors:
            return False
        anchors.discard(name)
        self.packets.clear()  # rendered answers from below the NTA must be validated again
        return True

    def negative_trust_anchors(self) -> list[dns.name.Name]:
        """The negative trust anchors in force, in DNSSEC's canonical order."""
        return sorted(self.context.negative_trust_anchors)

    # -- questions ------------------------------------------------------------------------------

    def _start(
        self,
        qname: dns.name.Name,
        qtype: int,
        waiter: _Waiter,
        *,
        trace: Tracer | None = None,
        refresh: bool = False,
        cache_only: bool = False,
        checking_disabled: bool = False,
        key: _Key | None = None,
    ) -> None:
        """Answer `waiter`'s question, joining the same question in flight if there is one.

        `key` is the question's `_question_key` if the caller has it at hand (made here
        otherwise); a traced question has none and is never shared.
        """
        # CD=1 and CD=0 askers never share a resolution: only the first may get bogus data.
        if trace is not None:
            key = None
        elif key is None:
            key = _question_key(_name_key(qname), qtype, cache_only, checking_disabled)
        pending = self._questions.get(key) if key is not None else None
        if pending is not None:
            # A prefetch in flight means the cached answer is still fresh: nothing is stale.
            waiter.stale_allowed = waiter.stale_allowed and not pending.refresh
            self._join(pending, waiter)
            return
        if len(self._questions) >= self.config.limits.max_in_flight:
            waiter.deliver(Answer.servfail(ServfailReason.TOO_MANY_QUERIES), None)
            return
        resolution = Resolution(
            qname,
            qtype,
            self.context,
            trace,
            refresh=refresh,
            cache_only=cache_only,
            checking_disabled=checking_disabled,
        )
        question = _Question(key, resolution, refresh)
        action = self._step(question, None)
        if isinstance(action, Done):
            # Answered from local data or the cache: no task, no table entry, no wait.
            self._count_resolution(resolution, action.answer)
            waiter.deliver(action.answer, resolution.queries_sent == 0)
            return
        if key is not None:
            self._questions[key] = question
        question.timers.append(
            self._after(
                self._out_of_time_queue,
                self.config.limits.max_resolution_time,
                self._out_of_time,
                question,
            )
        )
        self._join(question, waiter)
        shared = self.shared
        if (
            shared is not None
            and key is not None
            and not refresh
            and not cache_only
            and shared.wanted(qtype)
            and not self.context.routed_privately(qname)
            and shared.allow(self.timer())
        ):
            self._ask_shared(question, action, shared)
            return
        self._wait(question, action)

    def _ask_shared(self, question: _Question, action: SendQuery, shared: SharedCache) -> None:
        """Ask the shared cache before sending `action`, for at most its lookup timeout."""
        handle = next(self._shared_handles)
        question.on_shared_miss, question.shared_handle = action, handle
        resolution = question.resolution
        self._outbox.append(
            SharedLookup(
                handle, shared.key(resolution.qname, resolution.qtype), shared.lookup_timeout
            )
        )
        when = self.timer() + shared.lookup_timeout
        timer = self._at(when, self._shared_timeout, handle)
        question.timers.append(timer)
        self._shared_waiting[handle] = (question, timer)

    def _shared_timeout(self, handle: int) -> None:
        self._shared_done(handle, None, failed=True)

    def _shared_done(self, handle: int, value: bytes | None, *, failed: bool) -> None:
        """The shared cache answered lookup `handle` (or failed, or ran out of time)."""
        waiting = self._shared_waiting.pop(handle, None)
        shared = self.shared
        if waiting is None or shared is None:
            return  # answered already (the timer and the carrier race), or the question ended
        question, timer = waiting
        self._cancel(timer)
        if failed:
            self.stats.shared_errors += 1
            shared.breaker.failed(self.timer())
        else:
            shared.breaker.succeeded()
        action, question.on_shared_miss, question.shared_handle = (
            question.on_shared_miss,
            None,
            None,
        )
        if question.done or action is None:
            return
        resolution = question.resolution
        if value is None:
            if not failed:
                self.stats.shared_misses += 1
        elif (steps := shared.use(value, resolution.qname, resolution.qtype, self.clock())) is None:
            pass
        elif steps.stale:
            resolution.attach_shared(steps)  # serve-stale's fallback while it iterates
        else:
            # A fresh resolution of this question answers from the value (validating it),
            # after local data and the record cache.
            resolution.close()
            question.resolution = Resolution(
                resolution.qname,
                resolution.qtype,
                self.context,
                checking_disabled=resolution.checking_disabled,
                shared=steps,
            )
            step = self._step(question, None)
            if isinstance(step, Done):
                self._end(question, step.answer, hit=True)
                return
            action = step
        self._wait(question, action)

    def _join(self, question: _Question, waiter: _Waiter) -> None:
        question.waiters.append(waiter)
        cache_config = self.config.cache
        if waiter.stale_allowed and cache_config.serve_stale:
            # RFC 8767 section 5: a client waiting this long gets stale data, if any is held,
            # while the resolution goes on and refreshes the cache.
            question.timers.append(
                self._after(
                    self._stale_queue,
                    cache_config.stale_client_timeout,
                    self._stale_timer,
                    (question, waiter),
                )
            )

    def _step(self, question: _Question, outcome: Outcome | None) -> Action:
        """The resolution's next action; a bug inside it ends the question in SERVFAIL."""
        resolution = question.resolution
        try:
            return resolution.next_action() if outcome is None else resolution.receive(outcome)
        except Exception:
            self._log_internal_error(f"resolving {resolution.qname}")
            return Done(Answer.servfail(ServfailReason.INTERNAL_ERROR))

    def _wait(self, question: _Question, action: SendQuery) -> None:
        handle, send = self._outbound.ask(question, action, self.timer())
        question.handle = handle
        if send is not None:
            self._outbox.append(send)
            self._send_timers[handle] = self._at(send.deadline, self._expire, handle)

    def _settle(self, handle: int, outcomes: list[tuple[_Question, Outcome]]) -> None:
        """Hand what became of upstream query `handle` to every question that waited for it."""
        if not outcomes:
            return
        timer = self._send_timers.pop(handle, None)
        if timer is not None:  # settled before its deadline (else `_expire` took it out)
            self._cancel(timer)
        self._outbox.append(Close(handle))
        for question, outcome in outcomes:
            if question.done:
                continue
            question.handle = None
            action = self._step(question, outcome)
            if isinstance(action, Done):
                self._end(question, action.answer)
            else:
                self._wait(question, action)

    def _expire(self, handle: int) -> None:
        self._send_timers.pop(handle, None)  # fired: nothing left to cancel
        self._settle(handle, self._outbound.expire(handle, self.timer()))

    def _out_of_time(self, question: _Question) -> None:
        """`limits.max_resolution_time` has passed: stale data or SERVFAIL, for everyone."""
        if question.done:
            return
        if question.handle is not None and self._outbound.abandon(question.handle, question):
            self._outbox.append(Close(question.handle))
            timer = self._send_timers.pop(question.handle, None)
            if timer is not None:  # nobody waits for the query: its deadline would wake us idly
                self._cancel(timer)
        try:
            answer = question.resolution.give_up(ServfailReason.TIMEOUT)
        except Exception:
            self._log_internal_error(f"giving up on {question.resolution.qname}")
            answer = Answer.servfail(ServfailReason.INTERNAL_ERROR)
        self._end(question, answer)

    def _stale_timer(self, asker: tuple[_Question, _Waiter]) -> None:
        question, waiter = asker
        if question.done or waiter not in question.waiters:
            return
        stale = question.resolution.stale_answer()
        if stale is not None:
            question.waiters.remove(waiter)
            waiter.deliver(stale, False)

    def _end(self, question: _Question, answer: Answer, *, hit: bool = False) -> None:
        question.done = True
        for timer in question.timers:
            self._cancel(timer)
        if question.shared_handle is not None:
            abandoned = self._shared_waiting.pop(question.shared_handle, None) is not None
            # The question ended before its shared lookup did: no outcome will come for it.
            if abandoned and self.shared is not None:
                self.shared.breaker.abandoned(self.timer())
        if question.key is not None and self._questions.get(question.key) is question:
            del self._questions[question.key]
        self._count_resolution(question.resolution, answer)
        for waiter in question.waiters:
            try:
                waiter.deliver(answer, hit)
            except Exception:
                self._log_internal_error(f"answering {question.resolution.qname}")
        resolution = question.resolution
        if (
            self.shared is not None
            and question.key is not None
            and resolution.queries_sent
            and not hit
            and not resolution.private
        ):
            # After the replies: a write to the shared cache never delays a client.
            store = self.shared.store(
                resolution.qname, resolution.qtype, answer, self.clock(), self.timer()
            )
            if store is not None:
                self._outbox.append(store)
        # Closed even if answered (then it costs nothing): one that ran out of time is still
        # suspended, in a reference cycle only the cyclic garbage collector would free.
        resolution.close()

    def _at(self, when: float, fire: Callable[[Any], None], arg: object) -> _Timer:
        """Call `fire(arg)` once the timer reaches `when`."""
        timer = [when, next(self._timer_order), fire, arg]
        heapq.heappush(self._timers, timer)
        self._live_timers += 1
        return timer

    def _after(
        self, queue: deque[_Timer], delay: float, fire: Callable[[Any], None], arg: object
    ) -> _Timer:
        """`_at(now + delay, ...)` for a delay that every timer of `queue` shares: its deadline
        is the latest yet, so it goes at the back of the queue. (If the clock ever stepped
        back, or the delay changed, it would not be: then it goes into the heap.)"""
        when = self.timer() + delay
        if queue and queue[-1][_WHEN] > when:
            return self._at(when, fire, arg)
        timer = [when, next(self._timer_order), fire, arg]
        queue.append(timer)
        self._live_timers += 1
        return timer

    def _next_timer(self) -> _Timer | None:
        """The earliest timer still set (cancelled ones met on the way are dropped)."""
        timers = self._timers
        while timers and timers[0][_FIRE] is None:
            heapq.heappop(timers)
        earliest = timers[0] if timers else None
        for queue in self._timer_queues:
            while queue and queue[0][_FIRE] is None:
                queue.popleft()
            if queue and (earliest is None or queue[0] < earliest):
                earliest = queue[0]
        return earliest

    def _cancel(self, timer: _Timer) -> None:
        if timer[_FIRE] is None:
            return
        timer[_FIRE] = timer[_ARG] = None
        self._live_timers -= 1
        timers = self._timers
        held = len(timers) + len(self._out_of_time_queue) + len(self._stale_queue)
        if held > 1024 and held > 4 * self._live_timers:
            # Mostly cancelled entries: rebuild, so a flood does not leave a long heap behind.
            # In place: `tick` may hold these very containers while a callback cancels a timer.
            timers[:] = [timer for timer in timers if timer[_FIRE] is not None]
            heapq.heapify(timers)
            for queue in self._timer_queues:
                live = [timer for timer in queue if timer[_FIRE] is not None]
                queue.clear()
                queue.extend(live)

    # -- prefetch -------------------------------------------------------------------------------

    def _prefetch(self, key: bytes, wire: bytes) -> None:
        """Resolve a popular answer again before it expires (Unbound's prefetch)."""
        if key in self._refreshing:
            return
        if len(self._refreshing) >= self.config.limits.max_in_flight // 4:
            return  # refreshing is a nicety: it never takes the place of client questions
        query = parse(wire)
        if query is None or len(query.question) != 1:
            return
        self._refreshing.add(key)

        def store(answer: Answer, _hit: bool | None) -> None:
            self._refreshing.discard(key)
            try:
                if self.clients.remember(wire, query, answer) is not None:
                    self.stats.prefetches += 1
            except Exception:
                log.error("prefetch of a cached answer failed", exc_info=True)

        question = query.question[0]
        waiter = _Waiter(store, stale_allowed=False)
        self._start(question.name, question.rdtype, waiter, refresh=True)

    # -- accounting and replies -----------------------------------------------------------------

    def _count_client(self, hit: bool | None) -> None:
        """The one place that decides what a hit is, for the full path: a client question
        answered without waiting for any upstream query (packet hits are counted inline)."""
        if hit:
            self.stats.cache_answers += 1
        elif hit is not None:
            self.stats.cache_misses += 1

    def _count_resolution(self, resolution: Resolution, answer: Answer) -> None:
        stats = self.stats
        stats.resolutions += 1
        stats.aggressive_answers += resolution.aggressive_answers
        if answer.rcode == dns.rcode.SERVFAIL:
            stats.servfails += 1

    def _reply(self, client: Client, wire: bytes, reply: bytes | None, started: float) -> None:
        if reply is not None and client.transport is not None and asks_for_padding(wire):
            reply = pad_reply(reply)
        elapsed = self.timer() - started
        if reply is not None:
            self.latency.observe(elapsed)
            if client.tcp:
                self.transport_latency[client.kind].observe(elapsed)
        self._outbox.append(Reply(client, reply))
        if self.query_log is not None:
            try:
                source = client.kind
                self.query_log.record(client.address, wire, reply, source, elapsed)
            except Exception:
                log.error("query log failed", exc_info=True)

    def _failure(self, wire: bytes, tcp: bool) -> bytes | None:
        reply = self.clients.failure(wire, tcp)
        if reply is not None:
            self.stats.servfails += 1
        return reply

    def _log_internal_error(self, doing: str) -> None:
        """Log the exception being handled, rate-limited (see `_ERROR_LOG_INTERVAL`)."""
        now = self.timer()
        if now - self._last_error_logged < _ERROR_LOG_INTERVAL:
            self._errors_not_logged += 1
            return
        log.error(
            "internal error %s (%d more since the last report)",
            doing,
            self._errors_not_logged,
            exc_info=True,
        )
        self._last_error_logged, self._errors_not_logged = now, 0
