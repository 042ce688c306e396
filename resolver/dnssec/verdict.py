"""What a validation step concludes: a verdict, its reason, its EDE code and its trace.

Every function of `resolver.dnssec` answers with a `Verdict`, so the iterator, the logs, the
trace and the Extended DNS Error of a SERVFAIL (RFC 8914) all read the same value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import dns.name

# One definition of RFC 4035 section 4.3's four states, shared with the caches and the wire.
from resolver.core.security import Security

__all__ = ["Ede", "Security", "Trace", "Verdict", "quiet"]


class Ede(IntEnum):
    """The RFC 8914 INFO-CODEs a validator gives (27 is registered by RFC 9276)."""

    UNSUPPORTED_DNSKEY_ALGORITHM = 1
    UNSUPPORTED_DS_DIGEST_TYPE = 2
    DNSSEC_INDETERMINATE = 5
    DNSSEC_BOGUS = 6
    SIGNATURE_EXPIRED = 7
    SIGNATURE_NOT_YET_VALID = 8
    DNSKEY_MISSING = 9
    RRSIGS_MISSING = 10
    NSEC_MISSING = 12
    UNSUPPORTED_NSEC3_ITERATIONS = 27


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check.

    `ttl` bounds how long validated data may be cached (RFC 4035 section 5.3.3: the smallest of
    the RRset's TTL, the RRSIG's original TTL and the time left before the RRSIG expires); it
    is None where the check says nothing about time (a failure, a denial proof). `wildcard` is
    the wildcard owner (`*.example.`) an answer was synthesised from (the RRSIG's labels field
    is smaller than the owner's label count): the caller must then also prove that no closer
    name exists (`denial.prove_wildcard`). `steps` is the trace, empty unless tracing.
    """

    security: Security
    reason: str
    ede: Ede | None = None
    ttl: int | None = None
    wildcard: dns.name.Name | None = None
    steps: tuple[str, ...] = ()

    @property
    def secure(self) -> bool:
        return self.security is Security.SECURE

    @property
    def bogus(self) -> bool:
        return self.security is Security.BOGUS


@dataclass
class Trace:
    """Human-readable steps of a validation, for `resolver query --trace` (as `delv +vtrace`).

    Costs one attribute test per step when disabled: `add` formats its message only when
    `enabled` is true, so callers pass a format string and its arguments, not an f-string.
    """

    enabled: bool = False
    steps: list[str] = field(default_factory=list)

    def add(self, message: str, *args: object) -> None:
        if self.enabled:
            self.steps.append(message % args if args else message)

    def verdict(
        self,
        security: Security,
        reason: str,
        ede: Ede | None = None,
        *,
        ttl: int | None = None,
        wildcard: dns.name.Name | None = None,
    ) -> Verdict:
        """A verdict carrying the steps so far, the verdict itself as the last step."""
        self.add("%s: %s%s", security.name.lower(), reason, f" (EDE {int(ede)})" if ede else "")
        return Verdict(security, reason, ede, ttl, wildcard, tuple(self.steps))


#: A trace that records nothing: the default of every function that takes one.
def quiet() -> Trace:
    return Trace(False)
