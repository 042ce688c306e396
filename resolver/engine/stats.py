"""Counters of what the engine has done, read by reporting (`server/report.py`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: The stream transports a client query may come over, each counted and timed apart.
TRANSPORTS = ("tcp", "tls", "https")


@dataclass
class Stats:
    """Plain integer counters: cheap enough to bump on the cache-hit path.

    Reported only through the rows of `report.METRICS` that read them (a test fails for a field
    that no row reads); the engine increments them (what a hit is: `Engine._count_client`).
    """

    queries: int = 0
    packet_hits: int = 0
    resolutions: int = 0
    cache_answers: int = 0
    servfails: int = 0
    prefetches: int = 0
    # Client questions whose answer waited for upstream queries (report.py defines hits).
    cache_misses: int = 0
    # Client queries dropped unanswered under load (their clients retry).
    dropped: int = 0
    # The shared cache (engine/shared.py): values used, absent (or expired), calls that failed
    # or timed out, calls skipped (breaker open, too many writes pending), values dropped as
    # malformed or not answering the question, and writes completed.
    shared_hits: int = 0
    shared_misses: int = 0
    shared_errors: int = 0
    shared_skipped: int = 0
    shared_dropped: int = 0
    shared_stores: int = 0
    # Records left out of shared-cache values that were used: RRSIGs that cover no RRset of
    # the answer, authority records that are no part of the denial's proof.
    shared_dropped_records: int = 0
    # Shared-cache values stored more than 5 minutes in this member's future (a member's clock
    # is wrong): not used, counted apart from `shared_dropped` (they are no attack).
    shared_skew: int = 0
    # Client queries per stream transport (UDP's are the rest of `queries`): plain TCP, DNS
    # over TLS (RFC 7858) and DNS over HTTPS (RFC 8484).
    tcp_queries: int = 0
    tls_queries: int = 0
    https_queries: int = 0
    # Forwarded queries sent over DNS over TLS, and those whose connection or certificate
    # check failed (the server is named in the log and the trace).
    upstream_tls_queries: int = 0
    upstream_tls_failures: int = 0
    # Client questions (CNAME links) answered from validated NSEC ranges or below a validated
    # NXDOMAIN without asking upstream (RFC 8198, RFC 8020; `core/aggressive.py`).
    aggressive_answers: int = 0

    def count_transport(self, transport: str) -> None:
        """One more client query over a stream transport ("tcp", "tls" or "https")."""
        if transport == "tls":
            self.tls_queries += 1
        elif transport == "https":
            self.https_queries += 1
        else:
            self.tcp_queries += 1

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
