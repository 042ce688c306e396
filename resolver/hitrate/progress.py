"""A one-line progress bar on stderr, for replays long enough to wonder about.

Written here rather than taken from tqdm or rich: one line of `\\r`-rewritten text is all it
needs, and neither library is otherwise a dependency. It shows only on a terminal and only once
a run has taken `DELAY` seconds, so short runs, pipes and tests never see it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

DELAY = 2.0
INTERVAL = 0.25


class Progress:
    """`update(done)` out of `total`; `close()` clears the line."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._label = label
        self._total = max(1, total)
        self._began = time.monotonic()
        self._next = self._began + DELAY
        self._shown = False
        self._enabled = self._stream.isatty()

    def update(self, done: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + INTERVAL
        share = min(1.0, done / self._total)
        bar = "#" * int(30 * share)
        self._stream.write(
            f"\r{self._label} [{bar:<30}] {100 * share:5.1f}% {now - self._began:.0f} s"
        )
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self._stream.write("\r" + " " * 72 + "\r")
            self._stream.flush()
