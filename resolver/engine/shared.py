"""The engine's side of the shared cache: what to ask, what to store, what to make of a value.

On a local miss of a client question the engine emits `SharedLookup` and waits (at most
`shared_cache.lookup_timeout_ms`, on its own timer) for `Engine.shared_reply` or
`Engine.shared_failed`; a usable value answers the question with no upstream query, anything
else lets the resolution iterate as it would have. A value answers only the question it was
stored under: it is handed to that question's resolution (`core/shared.py`), never put into
the record cache, and it is INDETERMINATE, with its RRSIGs and denial proof, so it is validated
here before it is ever called secure. Each value carries a MAC under a key derived from the
secret (`cache/shared.py`), checked before anything else. A question that was resolved
upstream ends with a `SharedStore`, emitted after its replies so that writing never delays a
client. The carrier (`server/sharedcache.py`) talks to Redis; nothing here does I/O. The
circuit breaker lives here, so that skipping a dead Redis costs no task at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.cache.records import RecordCache
from resolver.cache.shared import (
    MAX_CLOCK_SKEW,
    Rejected,
    decode,
    encode,
    mac_key,
    seal,
    shared_key,
    unseal,
)
from resolver.config import Config
from resolver.core.actions import Answer
from resolver.core.security import Security
from resolver.core.shared import SharedSteps
from resolver.engine.breaker import CircuitBreaker
from resolver.engine.stats import Stats

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SharedLookup:
    """Get `key` from the shared cache; answer with `Engine.shared_reply(handle, value)`
    (None when absent) or `Engine.shared_failed(handle)`; give up after `timeout` seconds."""

    handle: int
    key: bytes
    timeout: float


@dataclass(frozen=True, slots=True)
class SharedStore:
    """Set `key` to `value` with an expiry of `expire` seconds; report with
    `Engine.shared_stored(ok)`; give up after `timeout` seconds."""

    key: bytes
    value: bytes
    expire: int
    timeout: float


class SharedCache:
    """Keys, the breaker, and the checks between the engine and the shared cache's values."""

    def __init__(self, config: Config, cache: RecordCache, stats: Stats) -> None:
        shared = config.shared_cache
        assert shared.secret is not None  # configfile's cross-check
        self._secret = shared.secret.encode()
        self._mac_key = mac_key(self._secret)
        self._skew_warned = False
        self._prefix = shared.key_prefix.encode()
        self._cache = cache
        self._stats = stats
        self._max_chain = config.limits.max_cname_chain
        self._stale_window = config.cache.max_stale if config.cache.serve_stale else 0
        self.lookup_timeout = shared.lookup_timeout_ms / 1000
        self.store_timeout = shared.store_timeout_ms / 1000
        self.breaker = CircuitBreaker(
            "the shared cache",
            shared.breaker_errors,
            shared.breaker_seconds,
            probe_timeout=max(self.lookup_timeout, self.store_timeout),
        )

    @staticmethod
    def wanted(qtype: int) -> bool:
        """Whether a question can be shared at all (not ANY, AXFR and other meta types)."""
        return not dns.rdatatype.is_metatype(dns.rdatatype.RdataType.make(qtype))

    def key(self, qname: dns.name.Name, qtype: int) -> bytes:
        return shared_key(self._secret, self._prefix, qname, qtype, dns.rdataclass.IN)

    def allow(self, now: float) -> bool:
        """Whether to call the shared cache now; a skipped call is counted."""
        if self.breaker.allow(now):
            return True
        self._stats.shared_skipped += 1
        return False

    def use(self, value: bytes, qname: dns.name.Name, qtype: int, now: float) -> SharedSteps | None:
        """What `value` says about (qname, qtype), for that question's resolution alone
        (`core/shared.py`: why it never enters the record cache); None if it is not usable
        (counted: dropped if malformed or mismatched, a miss if merely expired). A stale value
        (serve-stale on) is returned marked `stale`, and counted as a miss.

        A negative answer must carry the SOA of the zone its name is in as this member knows
        it: at or below the closest cached zone cut above the name, never the root's or a
        TLD's for a name of a zone below them."""
        body = unseal(self._mac_key, self.key(qname, qtype), value)
        checked = (
            Rejected.FORGED
            if body is None
            else decode(body, qname, qtype, now, self._max_chain, self._stale_window)
        )
        if checked is Rejected.EXPIRED:
            self._stats.shared_misses += 1
            return None
        if not isinstance(checked, Rejected) and checked.soa is not None:
            cut = self._cache.closest_delegation(checked.last)
            if cut is not None and not checked.soa.name.is_subdomain(cut.name):
                checked = Rejected.MISMATCH
        if checked is Rejected.SKEW:
            self._stats.shared_skew += 1
            if not self._skew_warned:
                self._skew_warned = True
                log.warning(
                    "a shared-cache value was stored more than %g s in this member's future: "
                    "the clocks of the fleet differ (check NTP); such values are not used "
                    "(counted in shared_skew; this is logged once)",
                    MAX_CLOCK_SKEW,
                )
            return None
        if isinstance(checked, Rejected):
            self._stats.shared_dropped += 1
            log.debug("dropped a shared-cache value for %s: %s", qname, checked.value)
            return None
        # Aged by `decode` against the cache's clock (`now`): never longer than the fleet had
        # them. INDETERMINATE, whatever the member that stored it concluded: the resolution
        # validates the links before it answers with them.
        self._stats.shared_dropped_records += checked.dropped
        if checked.stale:
            self._stats.shared_misses += 1  # nothing fresh: the resolution goes on
        else:
            self._stats.shared_hits += 1
        return SharedSteps.of(checked, qname)

    def store(
        self, qname: dns.name.Name, qtype: int, answer: Answer, wall: float, now: float
    ) -> SharedStore | None:
        """The write for a completed resolution's answer, or None if it must not be shared
        (a failure, stale data, a bogus answer, TTL 0) or the breaker says not now. `wall` is
        the cache's clock (the value's times), `now` the engine's timer (the breaker's).

        The value holds the answer with its RRSIGs and denial proof (what a DO=1 client gets),
        so that another member can validate it; a bogus answer (given to a CD=1 client) is
        never shared, and no status is: every member validates for itself."""
        if answer.failure is not None or answer.stale or answer.security is Security.BOGUS:
            return None
        encoded = encode(
            qname,
            qtype,
            answer.rcode,
            answer.answer,
            answer.authority,
            wall,
            signatures=answer.signatures,
            proof=answer.proof,
        )
        if encoded is None:
            return None
        if not self.allow(now):
            return None
        value, ttl = encoded
        expire = ttl + self._stale_window
        key = self.key(qname, qtype)
        return SharedStore(key, self.seal(key, value), expire, self.store_timeout)

    def seal(self, key: bytes, value: bytes) -> bytes:
        """`value` as it is written under `key`: with its MAC (`cache.shared.seal`)."""
        return seal(self._mac_key, key, value)
