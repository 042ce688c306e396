"""How long client queries take: a fixed histogram, cheap enough for the cache-hit path.

A query's latency here is the time the resolver spends on it, from the moment it holds the query
bytes to the moment the reply bytes are ready; time queued in the kernel and the send itself are
not included (they cannot be seen without kernel timestamps).

Why a histogram: recording is a bisect and an increment, memory is fixed (61 counters whatever the
traffic), histograms of several worker processes add up bucket by bucket, and Prometheus wants
exactly this shape. Percentiles read from it are interpolated inside a bucket; the buckets grow
by about 25% each (the R10 series 1, 1.25, 1.6, 2, 2.5, 3.15, 4, 5, 6.3, 8 per decade, from 10 us
to 10 s), so a percentile is off by at most a quarter of its value.

Why sampling on the fast path: a packet-cache hit costs a few microseconds, and timing it
needs two clock reads (about 80 ns each here) plus the bisect: several percent of a hit. The fast
path therefore times one call in `FAST_PATH_SAMPLING`, and a timed hit is recorded with the
weight of every hit since the previous timed one, so the histogram counts the hits (up to the
last timed one) and its percentiles stay those of the whole mix, for the price of a counter
decrement per hit. The full path (misses, tens of microseconds at the very least) times every
query.

"Recent" percentiles for `resolver stats` come from the difference between the histogram now and
a snapshot taken a few minutes ago (`rotate`, called once a minute by the daemon), so a year of
history does not drown what happened in the last five minutes; Prometheus gets the cumulative
counts and computes its own windows.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

#: The fast path times one call in this many (see the module docstring).
FAST_PATH_SAMPLING = 16

_MANTISSAS = ("1", "1.25", "1.6", "2", "2.5", "3.15", "4", "5", "6.3", "8")
#: Upper bounds of the buckets in seconds (a bucket holds durations <= its bound and > the
#: previous one); durations above the last bound go to one more, open-ended bucket.
BOUNDS: tuple[float, ...] = (
    *(float(f"{mantissa}e{exponent}") for exponent in range(-5, 1) for mantissa in _MANTISSAS),
    10.0,
)
#: The subset of BOUNDS exported to Prometheus (its usual 1, 2.5, 5 steps per decade).
EXPORTED_BOUNDS: tuple[float, ...] = tuple(
    bound for bound in BOUNDS if f"{bound:e}".split("e")[0] in ("1.000000", "2.500000", "5.000000")
)

#: Snapshots for the recent window: one a minute, the window spans the last 5 to 6 minutes.
ROTATE_EVERY = 60.0
_SNAPSHOTS = 6


class LatencyHistogram:
    """Cumulative counts of durations per bucket, plus their sum, since the process started."""

    def __init__(self, now: float = 0.0) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)
        self.total_seconds = 0.0
        # (time, counts) taken by `rotate`; the oldest is where the recent window starts.
        self._snapshots: deque[tuple[float, list[int]]] = deque(
            [(now, list(self.counts))], maxlen=_SNAPSHOTS
        )

    def observe(self, seconds: float, weight: int = 1) -> None:
        """Record `weight` queries that took `seconds` each."""
        self.counts[bisect.bisect_left(BOUNDS, seconds)] += weight
        self.total_seconds += seconds * weight

    def rotate(self, now: float) -> None:
        """Remember the counts as of `now`; called every ROTATE_EVERY seconds by the daemon."""
        self._snapshots.append((now, list(self.counts)))

    def recent(self, now: float) -> tuple[list[int], float]:
        """Counts since the oldest snapshot, and how many seconds that window spans."""
        since, base = self._snapshots[0]
        return [count - old for count, old in zip(self.counts, base, strict=True)], now - since


@dataclass(frozen=True)
class Reading:
    """A histogram as one process reports it, in a form that crosses process boundaries (JSON)
    and adds up over workers: the cumulative counts and their sum (for Prometheus), and the counts
    of the recent window and how long it spans (for `resolver stats`)."""

    counts: list[int]
    seconds: float
    recent: list[int]
    window: float

    @classmethod
    def of(cls, histogram: LatencyHistogram, now: float) -> Reading:
        recent, window = histogram.recent(now)
        return cls(list(histogram.counts), histogram.total_seconds, recent, window)

    @classmethod
    def add(cls, readings: Sequence[Reading]) -> Reading:
        """Several processes together: bucket by bucket, and the longest window."""
        return cls(
            add([reading.counts for reading in readings]),
            sum(reading.seconds for reading in readings),
            add([reading.recent for reading in readings]),
            max(reading.window for reading in readings),
        )


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles in seconds (None when nothing was recorded)."""

    p50: float | None
    p90: float | None
    p99: float | None
    samples: int


def percentile(counts: Sequence[int], fraction: float) -> float | None:
    """The duration below which `fraction` of the counted queries fall, interpolated linearly
    inside its bucket; None for an empty histogram. Beyond the last bound, the last bound."""
    total = sum(counts)
    if total == 0:
        return None
    target = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= target:
            if index == len(BOUNDS):
                return BOUNDS[-1]
            lower = BOUNDS[index - 1] if index else 0.0
            return lower + (BOUNDS[index] - lower) * (target - seen) / count
        seen += count
    return BOUNDS[-1]


def percentiles(counts: Sequence[int]) -> Percentiles:
    return Percentiles(
        percentile(counts, 0.50), percentile(counts, 0.90), percentile(counts, 0.99), sum(counts)
    )


def add(histograms: Sequence[Sequence[int]]) -> list[int]:
    """Bucket-by-bucket sum: the histogram of several processes together."""
    total = [0] * (len(BOUNDS) + 1)
    for counts in histograms:
        if len(counts) != len(total):
            raise ValueError(f"a latency histogram has {len(counts)} buckets, not {len(total)}")
        for index, count in enumerate(counts):
            total[index] += count
    return total


def cumulative(counts: Sequence[int], bounds: Sequence[float] = EXPORTED_BOUNDS) -> list[int]:
    """For each of `bounds` (a subset of BOUNDS), how many durations were <= it (Prometheus)."""
    result = []
    running = 0
    position = 0
    for bound in bounds:
        while position < len(BOUNDS) and BOUNDS[position] <= bound:
            running += counts[position]
            position += 1
        result.append(running)
    return result
