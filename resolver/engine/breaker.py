"""A circuit breaker for the shared cache: stop asking a service that keeps failing.

Closed, every call goes through. After `threshold` consecutive failures it opens: calls are
skipped (they cost nothing, not even a timeout) for `open_seconds`. Then it lets one call
through (half-open); success closes it, failure opens it again for another period. It logs once
when it opens and once when it closes, never per call, so a dead Redis is two log lines.
Time is passed in (`now`), so tests run it on a fake clock.

The probe must come back, or the breaker would stay half-open, skipping every call, forever: a
probe the caller did not make after all is given back (`give_back`), one abandoned without an
outcome counts as failed (`abandoned`), and one that has not reported within `probe_timeout`
expires, so that the next call after it may probe again.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class CircuitBreaker:
    """Whether to call a failing service now; fed with the outcome of each call made."""

    def __init__(
        self, name: str, threshold: int, open_seconds: float, probe_timeout: float = 1.0
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.probe_timeout = probe_timeout
        self._failures = 0
        self._open_until: float | None = None  # None: closed
        self._probing = False
        self._probe_ends = 0.0  # when a probe that never reported is given up

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allow(self, now: float) -> bool:
        """Whether a call may be made now (when open, one probe once the period is over)."""
        if self._open_until is None:
            return True
        if now < self._open_until or (self._probing and now < self._probe_ends):
            return False
        self._probing = True
        self._probe_ends = now + self.probe_timeout
        return True

    @property
    def probing(self) -> bool:
        """Whether the one call of the half-open state is out (and has not reported)."""
        return self._probing

    def give_back(self) -> None:
        """The call `allow` let through was not made after all: if it was the probe, the next
        call may probe instead."""
        self._probing = False

    def abandoned(self, now: float) -> None:
        """A call ended without an outcome (its caller stopped waiting): while half-open it may
        have been the probe, and a probe that says nothing is a failed one."""
        if self._probing:
            self.failed(now)

    def succeeded(self) -> None:
        self._failures = 0
        self._probing = False
        if self._open_until is not None:
            self._open_until = None
            log.warning("%s answers again; using it again", self.name)

    def failed(self, now: float) -> None:
        self._failures += 1
        if self._open_until is not None:
            if self._probing:  # the probe failed: another period without calls
                self._probing = False
                self._open_until = now + self.open_seconds
            return
        if self._failures >= self.threshold:
            self._open_until = now + self.open_seconds
            log.warning(
                "%s failed %d times in a row; not asking it for %g s at a time until it answers",
                self.name,
                self._failures,
                self.open_seconds,
            )
