"""A circuit breaker for the shared cache: stop asking a service that keeps failing.

Closed, every call goes through. After `threshold` consecutive failures it opens: calls are
skipped (they cost nothing, not even a timeout) for `open_seconds`. Then it lets one call
through (half-open); success closes it, failure opens it again for another period. It logs once
when it opens and once when it closes, never per call, so a dead Redis is two log lines.
Time is passed in (`now`), so tests run it on a fake clock.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class CircuitBreaker:
    """Whether to call a failing service now; fed with the outcome of each call made."""

    def __init__(self, name: str, threshold: int, open_seconds: float) -> None:
        self.name = name
        self.threshold = threshold
        self.open_seconds = open_seconds
        self._failures = 0
        self._open_until: float | None = None  # None: closed
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allow(self, now: float) -> bool:
        """Whether a call may be made now (when open, one probe once the period is over)."""
        if self._open_until is None:
            return True
        if now < self._open_until or self._probing:
            return False
        self._probing = True
        return True

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
