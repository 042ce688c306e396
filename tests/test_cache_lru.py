"""The caches' bounded mapping on its own: exact LRU order, deadlines, and no growth without end."""

from __future__ import annotations

import random
from collections import OrderedDict

from resolver.cache.lru import GRANULARITY, ExpiringLru


def by_value(_key: str, value: float) -> float:
    """The value is the deadline itself."""
    return value


def test_eviction_is_exactly_least_recently_used_across_victim_batches() -> None:
    """Against an OrderedDict, with gets, puts, replacements and removals mixed at random: the
    victims are taken several at a time (maxsize 640 gives batches of 10), and one that is used
    in between must not be evicted."""
    rng = random.Random(9)
    lru: ExpiringLru[str, float] = ExpiringLru(640, by_value)
    model: OrderedDict[str, float] = OrderedDict()
    for step in range(20_000):
        key = f"k{rng.randrange(1_000)}"
        action = rng.random()
        if action < 0.45:
            found = lru.get(key, 0.0)
            assert found == model.get(key), step
            if key in model:
                model.move_to_end(key)
        elif action < 0.95:
            value = 1_000.0 + step
            lru.put(key, value, 0.0)
            model.pop(key, None)
            model[key] = value
            if len(model) > 640:
                model.popitem(last=False)
        else:
            assert lru.pop(key) == model.pop(key, None)
        assert lru.size(0.0) == len(model)
    assert lru.items() == list(model.items())


def test_an_entry_past_its_deadline_is_never_returned_and_is_not_counted() -> None:
    lru: ExpiringLru[str, float] = ExpiringLru(10, by_value)
    lru.put("a", 100.5, 0.0)
    lru.put("b", 200.0, 0.0)
    assert lru.get("a", 100.4) == 100.5
    assert lru.size(100.5) == 1  # exact, although a's bucket has not wholly passed
    assert lru.get("a", 100.5) is None
    assert lru.get("b", 150.0) == 200.0


def test_a_write_sweeps_out_every_bucket_wholly_past() -> None:
    lru: ExpiringLru[str, float] = ExpiringLru(10, by_value)
    for index in range(5):
        lru.put(f"old{index}", 10.0 + index, 0.0)
    lru.put("young", 10 * GRANULARITY, 0.0)
    lru.put("new", 20 * GRANULARITY, 2 * GRANULARITY)  # every old deadline's bucket is past
    assert [key for key, _value in lru.items()] == ["young", "new"]


def test_a_value_already_past_its_deadline_removes_what_the_key_held() -> None:
    """As cachetools' TLRUCache does."""
    lru: ExpiringLru[str, float] = ExpiringLru(10, by_value)
    lru.put("a", 100.0, 0.0)
    lru.put("a", 50.0, 60.0)
    assert lru.items() == [] and lru.size(60.0) == 0


def test_reading_everything_changes_no_entrys_place() -> None:
    lru: ExpiringLru[str, float] = ExpiringLru(2, by_value)
    lru.put("a", 100.0, 0.0)
    lru.put("b", 100.0, 0.0)
    assert lru.items() == [("a", 100.0), ("b", 100.0)]
    assert lru.size(0.0) == 2
    lru.put("c", 100.0, 0.0)
    assert lru.items() == [("b", 100.0), ("c", 100.0)]  # a was still the least recently used


def test_the_expiry_buckets_keep_no_more_than_a_bounded_number_of_stale_references() -> None:
    """Evicted keys and keys put again leave references behind in the buckets; they are pruned
    so that the buckets stay within a quarter of the entries (plus a constant) of them."""
    lru: ExpiringLru[str, float] = ExpiringLru(1_000, by_value)
    for step in range(50_000):
        lru.put(f"k{step % 3_000}", 10_000.0 + step % 7 * GRANULARITY, 0.0)
        filed = sum(len(keys) for keys in lru._buckets.values())
        assert filed <= lru.size(0.0) * 5 // 4 + 1_024 + 1, step
    assert lru.size(0.0) == 1_000
