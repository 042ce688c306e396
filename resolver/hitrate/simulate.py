"""The replay: the infinite-cache bound, and a cache of N entries, on the trace's own clock.

A **hit** is a client query answered without an upstream query: what the engine counts as one
(`Stats.cache_hits`) and what an operator pays for in latency and upstream traffic.

**The model.** Driving the full `Engine` for every query costs tens of microseconds per hit and
hundreds per miss (`benchmarks/hitrate_speed.py` measures it), short of the 50,000 queries a
second per cache size that a day of a busy network needs to replay in a minute. So the replay
models the resolver's cache with the resolver's own cache class, `ExpiringLru` (the store of
both the packet cache and the record cache: least recently used out first, entries gone at
their deadline, expired ones holding their place for up to `lru.GRANULARITY` seconds), with the
engine's rules for what goes in and for how long:

- one entry per question (name and type), as the packet cache keys its entries (and as the
  record cache holds one RRset, or one negative answer, per plain question); an NXDOMAIN is one
  entry for its name, whatever the type asked (RFC 2308 section 5, as `RecordCache` keeps it);
- a positive answer lives its TTL within `cache.min_ttl` .. `cache.max_ttl`
  (`RecordCache.clamp_ttl`); a negative one (NXDOMAIN, NODATA) min(SOA TTL, SOA MINIMUM)
  within `cache.min_ttl` .. `cache.max_negative_ttl` (`RecordCache.negative_ttl`); a SERVFAIL
  is remembered `cache.failure_ttl` seconds (`RecordCache.put_failure`); anything else (REFUSED,
  a NODATA without SOA) is not cached;
- prefetch (`cache.prefetch`): a hit in the last 10% of the entry's life refreshes it (one
  upstream query, not a client miss), as `PacketCache.answer` decides;
- serve-stale (`cache.serve_stale`): an expired entry is kept `cache.max_stale` seconds more
  (taking room, as in the record cache); a miss whose upstream answer failed (SERVFAIL in the
  trace) or came later than `cache.stale_client_timeout` (the trace's own response time), while
  such an entry is held, is answered stale: counted apart, not as a hit.

Where it differs from the engine: a CNAME chain is one entry here, several RRsets in the record
cache; answers are not shared between questions (an A query does not learn a delegation that a
later NS query could use); identical questions in flight at once are two misses here and one
upstream query there. `tests/test_hitrate.py` replays one trace both ways and checks that they
agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from resolver.cache.lru import ExpiringLru
from resolver.config import CacheConfig
from resolver.hitrate.trace import Outcome, Trace
from resolver.hitrate.wire import NXDOMAIN, SERVFAIL

HOUR = 3600.0


@dataclass(frozen=True)
class Policy:
    """What decides how long an answer is kept: the `[cache]` settings of `config.py`."""

    max_ttl: int
    min_ttl: int
    max_negative_ttl: int
    failure_ttl: int
    prefetch: bool = False
    serve_stale: bool = False
    max_stale: int = 86_400
    stale_client_timeout: float = 1.8

    @classmethod
    def of(cls, cache: CacheConfig, *, prefetch: bool = False, serve_stale: bool = False) -> Policy:
        return cls(
            max_ttl=cache.max_ttl,
            min_ttl=cache.min_ttl,
            max_negative_ttl=cache.max_negative_ttl,
            failure_ttl=cache.failure_ttl,
            prefetch=prefetch,
            serve_stale=serve_stale,
            max_stale=cache.max_stale,
            stale_client_timeout=cache.stale_client_timeout,
        )

    def lifetime(self, kind: int, ttl: int) -> int:
        """Seconds an answer of this kind and TTL stays in the cache (0: not stored)."""
        if kind == Outcome.POSITIVE:
            return max(self.min_ttl, min(ttl, self.max_ttl))
        if kind == Outcome.NEGATIVE:
            return max(self.min_ttl, min(ttl, self.max_negative_ttl))
        if kind == Outcome.FAILURE:
            return self.failure_ttl
        return 0

    def lifetimes(self, trace: Trace) -> list[int]:
        """`lifetime` of each slot of the trace."""
        return [
            self.lifetime(kind, ttl) for kind, ttl in zip(trace.kinds, trace.lifetimes, strict=True)
        ]


@dataclass
class Replay:
    """One replay: `size` None is the infinite cache (the bound)."""

    size: int | None
    policy: Policy
    queries: int = 0
    hits: int = 0
    prefetches: int = 0  # upstream refreshes (prefetch): not client misses
    stale: int = 0  # misses answered from expired data (serve-stale)
    negative_saved: int = 0  # bound only: misses an aggressive negative cache answers (RFC 8020)
    hourly_hits: list[int] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0

    @property
    def misses(self) -> int:
        return self.queries - self.hits


def hours(trace: Trace) -> list[int]:
    """The hour of the trace (0, 1, ...) each query falls in."""
    start = trace.start
    return [int((query.time - start) // HOUR) for query in trace.queries]


def bound(trace: Trace, policy: Policy, hour_of: Sequence[int] | None = None) -> Replay:
    """The infinite-cache bound: a query hits if and only if its question was fetched less
    than its lifetime before (no eviction, no prefetch, no serve-stale).

    Also counts `negative_saved`: the misses that an aggressive negative cache would answer
    (RFC 8020 section 2: nothing exists below a name that does not exist): a query answered
    NXDOMAIN that misses although the same cache holds, unexpired, an NXDOMAIN for a name above
    it.
    """
    lifetimes = policy.lifetimes(trace)
    hour_of = hours(trace) if hour_of is None else hour_of
    result = Replay(None, policy, len(trace), hourly_hits=[0] * (max(hour_of, default=0) + 1))
    hourly = result.hourly_hits
    expires: dict[int, float] = {}
    nonexistent: dict[str, float] = {}  # name -> until when it is known not to exist
    hits = saved = 0
    queries = trace.queries
    for index, (question, slot) in enumerate(zip(trace.questions, trace.slots, strict=True)):
        now = queries[index].time
        if now < expires.get(question, -1.0):
            hits += 1
            hourly[hour_of[index]] += 1
            continue
        life = lifetimes[slot]
        if life > 0:
            expires[question] = now + life
        query = queries[index]
        if query.rcode == NXDOMAIN and nonexistent:
            if _proved_absent(query.name, now, nonexistent):
                saved += 1
            if life > 0:
                nonexistent[query.name] = now + life
        elif query.rcode == NXDOMAIN and life > 0:
            nonexistent[query.name] = now + life
    result.hits, result.negative_saved = hits, saved
    return result


def _proved_absent(name: str, now: float, nonexistent: dict[str, float]) -> bool:
    """Whether `name` or a name above it is held as nonexistent (below the root)."""
    while name != ".":
        if nonexistent.get(name, -1.0) > now:
            return True
        _label, _dot, name = name.partition(".")
        name = name or "."
    return False


def replay(
    trace: Trace,
    size: int,
    policy: Policy,
    hour_of: Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """A cache of `size` entries (see the module docstring for the model)."""
    lifetimes = policy.lifetimes(trace)
    hour_of = hours(trace) if hour_of is None else hour_of
    result = Replay(size, policy, len(trace), hourly_hits=[0] * (max(hour_of, default=0) + 1))
    hourly = result.hourly_hits
    keep_stale = float(policy.max_stale) if policy.serve_stale else 0.0

    # An entry: (stored at, expires, may be served stale).
    def deadline(_key: int, entry: tuple[float, float, bool]) -> float:
        return entry[1] + keep_stale if entry[2] else entry[1]

    cache: ExpiringLru[int, tuple[float, float, bool]] = ExpiringLru(size, deadline)
    get, put = cache.get, cache.put
    prefetch, serve_stale = policy.prefetch, policy.serve_stale
    timeout = policy.stale_client_timeout
    hits = prefetches = stale = 0
    queries = trace.queries
    for index, (question, slot) in enumerate(zip(trace.questions, trace.slots, strict=True)):
        query = queries[index]
        now = query.time
        entry = get(question, now)
        life = lifetimes[slot]
        if entry is not None:
            stored, expires, _stale_ok = entry
            if now < expires:
                hits += 1
                hourly[hour_of[index]] += 1
                if prefetch and (now - stored) * 10 >= (expires - stored) * 9 and life > 0:
                    prefetches += 1
                    put(question, (now, now + life, True), now)
                continue
            if serve_stale and (
                query.rcode == SERVFAIL or (query.latency is not None and query.latency > timeout)
            ):
                stale += 1
                if query.rcode == SERVFAIL:
                    continue  # the refresh failed: the stale entry stays
        if life > 0:
            put(question, (now, now + life, query.rcode != SERVFAIL), now)
        if progress is not None and not index & 0xFFFF:
            progress(index)
    result.hits, result.prefetches, result.stale = hits, prefetches, stale
    return result
