"""The engine's side of the shared cache: what to ask, what to store, what to make of a value.

On a local miss of a client question the engine emits `SharedLookup` and waits (at most
`shared_cache.lookup_timeout_ms`, on its own timer) for `Engine.shared_reply` or
`Engine.shared_failed`; a usable value goes into the record cache and answers the question with
no upstream query, anything else lets the resolution iterate as it would have; what it puts
there is INDETERMINATE, with its RRSIGs and denial proof, so it is validated here before it is
ever called secure. A question that was resolved upstream ends with a `SharedStore`, emitted
after its replies so that writing never delays a client. The carrier (`server/sharedcache.py`)
talks to Redis; nothing here does I/O. The circuit breaker lives here, so that skipping a dead
Redis costs no task at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.cache.records import Rank, RecordCache
from resolver.cache.shared import Rejected, decode, encode, shared_key
from resolver.config import Config
from resolver.core.actions import Answer
from resolver.core.security import Security
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
        self._prefix = shared.key_prefix.encode()
        self._cache = cache
        self._stats = stats
        self._max_chain = config.limits.max_cname_chain
        self._stale_window = config.cache.max_stale if config.cache.serve_stale else 0
        self.lookup_timeout = shared.lookup_timeout_ms / 1000
        self.store_timeout = shared.store_timeout_ms / 1000
        self.breaker = CircuitBreaker(
            "the shared cache", shared.breaker_errors, shared.breaker_seconds
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

    def use(self, value: bytes, qname: dns.name.Name, qtype: int, now: float) -> bool:
        """Put what `value` says about (qname, qtype) into the record cache; False if it is
        not usable (counted: dropped if malformed or mismatched, a miss if merely expired)."""
        checked = decode(value, qname, qtype, now, self._max_chain, self._stale_window)
        if checked is Rejected.EXPIRED:
            self._stats.shared_misses += 1
            return False
        if isinstance(checked, Rejected):
            self._stats.shared_dropped += 1
            log.debug("dropped a shared-cache value for %s: %s", qname, checked.value)
            return False
        # NONAUTH_ANSWER: below what an authority says itself, so it never replaces that (a
        # copy the cache holds at a higher rank stays, and answers instead). Stored with the
        # value's own expiry times (`now` is the cache's clock): never longer than the fleet
        # had them, and stale data (serve-stale on) goes in as stale, which the engine then
        # serves by RFC 8767's rules exactly as it would a record that expired here.
        # INDETERMINATE, whatever the member that stored it concluded: the validator checks
        # the signatures and the proof that came with it when it first answers a client here.
        self._stats.shared_dropped_records += checked.dropped
        for rrset, sigs, expires in zip(
            checked.chain, checked.signatures, checked.expiries, strict=True
        ):
            self._cache.put_rrset(
                rrset,
                Rank.NONAUTH_ANSWER,
                signatures=sigs,
                security=Security.INDETERMINATE,
                expires=expires,
            )
        if checked.soa is not None:
            rdtype = None if checked.rcode == dns.rcode.NXDOMAIN else qtype
            self._cache.put_negative(
                checked.last,
                rdtype,
                checked.rcode,
                checked.soa,
                proof=checked.proof,
                security=Security.INDETERMINATE,
                expires=checked.soa_expires,
            )
        if checked.stale:
            self._stats.shared_misses += 1  # nothing fresh: the resolution goes on
            return False
        self._stats.shared_hits += 1
        return True

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
        return SharedStore(self.key(qname, qtype), value, expire, self.store_timeout)
