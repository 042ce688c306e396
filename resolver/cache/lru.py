"""A bounded mapping for the caches: least recently used out first, each entry gone at its deadline.

This is what the caches used cachetools' `TLRUCache` for, at a fraction of its memory. Per
entry, `TLRUCache` keeps a slot in three dicts (the values, their sizes, and an `OrderedDict`
for the recency order) plus a heap item object with a float deadline: about 270 bytes on
CPython 3.11, as much as the DNS data of a typical entry. Here an entry costs a slot in one
dict, whose insertion order is the recency order, and a reference in the key list of its expiry
bucket: 45 to 80 bytes, as the dict's room to grow varies.

Two details keep every operation O(1), amortised:

- A dict that is used in this way keeps a hole where each entry moved to the recent end used to
  be, until its next resize, and finding its first entry means stepping over every hole from
  the start. So the next victims are taken `batch` at a time, in one pass, and handed out one by
  one; one that is used or put again meanwhile is struck off, so eviction stays exactly least
  recently used.
- Deadlines go into buckets of `GRANULARITY` seconds. Once a bucket is wholly in the past, each
  entry it names that is past its deadline is dropped (an entry put again since sits in its new
  bucket too). An entry past its deadline is never returned, so the bucket width only means that
  an expired entry may hold its place in the bound for up to that long (`TLRUCache` dropped it
  at the next write); `size` is exact.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Width of an expiry bucket, in seconds: TTLs are minutes to days, so a few seconds more in
#: the bound are nothing, while the buckets of a day of deadlines stay few (5,400 at most).
GRANULARITY = 16.0


class ExpiringLru(Generic[K, V]):
    """At most `maxsize` entries; `deadline(key, value)` says when each one goes.

    The caller passes the time (`now`), so one reading of its clock serves a whole lookup.
    Values are never None (None is how `get` says "not here").
    """

    def __init__(self, maxsize: int, deadline: Callable[[K, V], float]) -> None:
        self._maxsize = maxsize
        self._deadline = deadline
        self._data: dict[K, V] = {}
        # The next victims, least recently used last (for `pop`), and those not used or put
        # again since they were taken (only these may still go).
        self._victims: list[K] = []
        self._untouched: set[K] = set()
        self._batch = max(1, min(4096, maxsize // 64))
        # Expiry buckets: bucket number -> keys filed there; a heap of the bucket numbers.
        self._buckets: dict[int, list[K]] = {}
        self._bucket_heap: list[int] = []
        self._filed = 0  # keys in all buckets, stale references included
        self._prune_at = 1024  # when `_filed` reaches it, drop the stale references
        self._next_sweep = math.inf

    def __bool__(self) -> bool:
        """Whether anything is held, expired or not: a test that hashes no key."""
        return bool(self._data)

    def size(self, now: float) -> int:
        """The number of entries not past their deadline (exact)."""
        self.expire(now)
        return len(self._data)

    def get(self, key: K, now: float) -> V | None:
        """The value, which becomes the most recently used; None if absent or past its deadline."""
        data = self._data
        value = data.pop(key, None)
        if value is None:
            return None
        if self._deadline(key, value) <= now:
            return None  # gone: its bucket reference and victim mark are skipped later
        data[key] = value
        self._untouched.discard(key)
        return value

    def put(self, key: K, value: V, now: float) -> None:
        """Store `value` as the most recently used, evicting the least recently used if full.

        A value already past its deadline removes what `key` held and is not stored.
        """
        if now >= self._next_sweep:
            self._sweep(now)
        data = self._data
        data.pop(key, None)
        self._untouched.discard(key)
        deadline = self._deadline(key, value)
        if deadline <= now:
            return
        data[key] = value
        # Filed in its expiry bucket, which is nearly always there already: that case is
        # written out here, as a put is on every miss and a call costs more than the append.
        keys = self._buckets.get(int(deadline // GRANULARITY))
        if keys is None:
            self._into_bucket(key, deadline)
        else:
            keys.append(key)
        self._filed += 1
        if self._filed >= self._prune_at:
            self._prune()
        if len(data) > self._maxsize:
            self._evict()

    def pop(self, key: K) -> V | None:
        """Remove `key`; its value (deadline or not), or None if it was not held."""
        self._untouched.discard(key)
        return self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()
        self._victims.clear()
        self._untouched.clear()
        self._buckets.clear()
        self._bucket_heap.clear()
        self._filed = 0
        self._prune_at = 1024
        self._next_sweep = math.inf

    def items(self) -> list[tuple[K, V]]:
        """Every entry held, least recently used first, without making any recent or expiring
        any (a dump or a count must not change what the cache evicts next)."""
        return list(self._data.items())

    def expire(self, now: float) -> None:
        """Drop every entry past its deadline now (the buckets do it lazily otherwise)."""
        self._sweep(now)
        heap = self._bucket_heap
        if heap and heap[0] * GRANULARITY <= now:  # the bucket `now` is in: check it one by one
            self._drop_expired(self._buckets[heap[0]], now)

    def _into_bucket(self, key: K, deadline: float) -> None:
        bucket = int(deadline // GRANULARITY)
        keys = self._buckets.get(bucket)
        if keys is None:
            self._buckets[bucket] = [key]
            heapq.heappush(self._bucket_heap, bucket)
            self._next_sweep = (self._bucket_heap[0] + 1) * GRANULARITY
        else:
            keys.append(key)

    def _prune(self) -> None:
        """Drop the bucket references to keys no longer held (evicted or removed), which would
        keep each such key alive until its bucket passed; and if keys put again and again have
        left more than two references per entry, file every entry afresh. Each run is followed
        by at least a quarter of the entries' worth of filings before the next one."""
        data = self._data
        filed = 0
        for keys in self._buckets.values():
            keys[:] = [key for key in keys if key in data]
            filed += len(keys)
        if filed > 2 * len(data):
            self._buckets.clear()
            self._bucket_heap.clear()
            self._next_sweep = math.inf
            for key, value in data.items():
                self._into_bucket(key, self._deadline(key, value))
            filed = len(data)
        self._filed = filed
        self._prune_at = filed + len(data) // 4 + 1024

    def _drop_expired(self, keys: list[K], now: float) -> None:
        data, deadline = self._data, self._deadline
        for key in keys:
            value = data.get(key)
            if value is not None and deadline(key, value) <= now:
                del data[key]

    def _sweep(self, now: float) -> None:
        """Empty every bucket that is wholly in the past."""
        heap, buckets = self._bucket_heap, self._buckets
        while heap and (heap[0] + 1) * GRANULARITY <= now:
            keys = buckets.pop(heapq.heappop(heap))
            self._filed -= len(keys)
            self._drop_expired(keys, now)
        self._next_sweep = (heap[0] + 1) * GRANULARITY if heap else math.inf

    def _evict(self) -> None:
        """Drop the least recently used entry (see the module's docstring for the batches)."""
        data, untouched = self._data, self._untouched
        while True:
            if not untouched:
                self._victims = list(islice(data, self._batch))
                self._victims.reverse()
                untouched.update(self._victims)
            key = self._victims.pop()
            if key in untouched:
                untouched.remove(key)
                if data.pop(key, None) is not None:
                    return
