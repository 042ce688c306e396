"""The shared cache without Redis or sockets: keys, values, their checks, the breaker, and the
engine's SharedLookup path on a scripted internet with a dict for Redis and a fake clock."""

from __future__ import annotations

import struct

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.cache.shared import (
    MAC_SIZE,
    MAGIC,
    MAX_MESSAGE,
    MAX_RECORDS,
    VERSION,
    Rejected,
    SharedAnswer,
    decode,
    encode,
    mac_key,
    seal,
    shared_key,
    unseal,
)
from resolver.config import SharedCacheConfig
from resolver.core.actions import Answer
from resolver.engine.breaker import CircuitBreaker
from resolver.testing import TestInternet
from resolver.testing.scripted import FakeClock, ScriptedWorld
from tests.helpers import loopback_config, texts

SECRET = "0123456789abcdef-test-secret"
WWW = dns.name.from_text("www.example.test.")
A = dns.rdatatype.A
NOW = 1_700_000_000.0


def rrset(text: str) -> dns.rrset.RRset:
    owner, ttl, rdclass, rdtype, data = text.split(None, 4)
    return dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, data)


# -- keys ------------------------------------------------------------------------------------


def test_key_is_a_keyed_hash_of_the_lowercased_question() -> None:
    key = shared_key(b"secret", b"p:", WWW, A, 1)
    assert key.startswith(b"p:") and len(key) == 2 + 64
    assert key == shared_key(b"secret", b"p:", dns.name.from_text("WwW.ExAmple.TEST."), A, 1)
    assert key != shared_key(b"other secret", b"p:", WWW, A, 1)
    assert key != shared_key(b"secret", b"p:", WWW, dns.rdatatype.AAAA, 1)
    assert key != shared_key(b"secret", b"p:", WWW, A, 3)
    assert b"www" not in key and b"example" not in key


# -- values ----------------------------------------------------------------------------------


def positive() -> bytes:
    encoded = encode(
        WWW, A, dns.rcode.NOERROR, (rrset("www.example.test. 300 IN A 192.0.2.1"),), (), NOW
    )
    assert encoded is not None and encoded[1] == 300
    return encoded[0]


def test_a_value_round_trips_with_ttls_aged_on_read() -> None:
    value = positive()
    assert value[:3] == MAGIC and value[3] == VERSION
    checked = decode(value, WWW, A, NOW + 100, max_chain=12)
    assert isinstance(checked, SharedAnswer)
    assert texts(checked.chain) == ["www.example.test. 200 IN A 192.0.2.1"]
    assert decode(value, WWW, A, NOW + 300, max_chain=12) is Rejected.EXPIRED


def test_a_cname_chain_and_a_negative_answer_round_trip() -> None:
    chain = (
        rrset("alias.example.test. 600 IN CNAME www.example.test."),
        rrset("www.example.test. 300 IN A 192.0.2.1"),
    )
    alias = dns.name.from_text("alias.example.test.")
    encoded = encode(alias, A, dns.rcode.NOERROR, chain, (), NOW)
    assert encoded is not None and encoded[1] == 300
    checked = decode(encoded[0], alias, A, NOW + 10, max_chain=12)
    assert isinstance(checked, SharedAnswer) and checked.last == WWW
    # No record outlives the value: the CNAME's 600 s are cut to what the A record has left.
    assert texts(checked.chain)[0] == "alias.example.test. 290 IN CNAME www.example.test."
    soa = rrset("example.test. 60 IN SOA ns1.example.test. h.example.test. 1 2 3 4 60")
    nope = dns.name.from_text("nope.example.test.")
    encoded = encode(nope, A, dns.rcode.NXDOMAIN, (), (soa,), NOW)
    assert encoded is not None
    checked = decode(encoded[0], nope, A, NOW + 1, max_chain=12)
    assert isinstance(checked, SharedAnswer) and checked.rcode == dns.rcode.NXDOMAIN
    assert checked.soa is not None and checked.soa.ttl == 59


@pytest.mark.parametrize(
    ("rcode", "answer", "authority"),
    [
        (dns.rcode.SERVFAIL, (), ()),
        (dns.rcode.NOERROR, ("www.example.test. 0 IN A 192.0.2.1",), ()),  # TTL 0
        (dns.rcode.NOERROR, (), ()),  # neither records nor an SOA
    ],
)
def test_what_is_never_stored(
    rcode: dns.rcode.Rcode, answer: tuple[str, ...], authority: tuple[str, ...]
) -> None:
    rrsets = tuple(rrset(text) for text in answer)
    assert encode(WWW, A, rcode, rrsets, tuple(rrset(t) for t in authority), NOW) is None


def message_value(message: dns.message.Message, stored_at: float = NOW, ttl: float = 300) -> bytes:
    return struct.pack("!3sBdd", MAGIC, VERSION, stored_at, stored_at + ttl) + message.to_wire()


def answer_message(qname: str, records: list[str], rcode: int = 0) -> dns.message.Message:
    message = dns.message.make_response(dns.message.make_query(qname, "A"))
    message.set_rcode(dns.rcode.Rcode(rcode))
    message.answer = [rrset(text) for text in records]
    return message


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"", Rejected.MALFORMED),
        (b"garbage" * 10, Rejected.MALFORMED),
        (positive()[:-3], Rejected.MALFORMED),  # truncated
        (b"RSC\x01" + positive()[4:], Rejected.VERSION),  # before DNSSEC
        (b"RSC\x02" + positive()[4:], Rejected.VERSION),  # before the MAC
        (b"RSC\x04" + positive()[4:], Rejected.VERSION),
        (struct.pack("!3sBdd", MAGIC, VERSION, NOW, float("nan")) + b"\0" * 12, Rejected.MALFORMED),
        (
            message_value(answer_message("evil.test.", ["evil.test. 300 IN A 6.6.6.6"])),
            Rejected.MISMATCH,
        ),
        # the right question, a record for another name
        (
            message_value(answer_message("www.example.test.", ["evil.test. 300 IN A 6.6.6.6"])),
            Rejected.MISMATCH,
        ),
        # a chain that wanders off: a CNAME and then records for a third name
        (
            message_value(
                answer_message(
                    "www.example.test.",
                    ["www.example.test. 300 IN CNAME a.test.", "b.test. 300 IN A 6.6.6.6"],
                )
            ),
            Rejected.MISMATCH,
        ),
        # NXDOMAIN with records, NXDOMAIN without SOA
        (
            message_value(
                answer_message("www.example.test.", ["www.example.test. 300 IN A 1.2.3.4"], 3)
            ),
            Rejected.MISMATCH,
        ),
        (message_value(answer_message("www.example.test.", [], 3)), Rejected.MISMATCH),
        # stored in the far future (a wrong clock, or a forged time to make data live longer)
        (
            message_value(
                answer_message("www.example.test.", ["www.example.test. 300 IN A 1.2.3.4"]),
                NOW + 86400,
            ),
            Rejected.SKEW,
        ),
    ],
)
def test_bad_values_are_rejected(value: bytes, why: Rejected) -> None:
    assert decode(value, WWW, A, NOW, max_chain=12) is why


def test_a_value_for_another_type_of_the_same_name_is_a_mismatch() -> None:
    assert decode(positive(), WWW, dns.rdatatype.AAAA, NOW, max_chain=12) is Rejected.MISMATCH


# -- the circuit breaker ---------------------------------------------------------------------


def test_breaker_opens_after_n_failures_probes_once_and_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = CircuitBreaker("the shared cache", threshold=3, open_seconds=10)
    for _ in range(2):
        assert breaker.allow(0)
        breaker.failed(0)
    breaker.succeeded()  # a success in between: the count starts again
    for _ in range(3):
        assert breaker.allow(1)
        breaker.failed(1)
    assert breaker.is_open and not breaker.allow(5) and not breaker.allow(10.9)
    assert breaker.allow(11)  # the probe
    assert not breaker.allow(11.5)  # only one
    breaker.failed(11.5)
    assert not breaker.allow(21)
    assert breaker.allow(21.5)
    breaker.succeeded()
    assert not breaker.is_open and breaker.allow(21.6)
    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if "in a row" in line]) == 1, "logs once when opening"
    assert len([line for line in lines if "answers again" in line]) == 1, "and once when closing"


def open_breaker() -> CircuitBreaker:
    breaker = CircuitBreaker("the shared cache", threshold=1, open_seconds=10, probe_timeout=0.5)
    assert breaker.allow(0)
    breaker.failed(0)
    assert breaker.is_open
    return breaker


def test_a_probe_that_never_reports_expires_after_one_timeout() -> None:
    breaker = open_breaker()
    assert breaker.allow(10) and breaker.probing  # the probe, then silence
    assert not breaker.allow(10.4)
    assert breaker.allow(10.5), "a new probe once the first has had its time"
    breaker.succeeded()
    assert not breaker.is_open


def test_a_probe_given_back_lets_the_next_call_probe() -> None:
    breaker = open_breaker()
    assert breaker.allow(10)
    breaker.give_back()  # e.g. a store the carrier skipped (too many pending)
    assert breaker.is_open and breaker.allow(10.1)


def test_an_abandoned_probe_counts_as_failed() -> None:
    breaker = open_breaker()
    breaker.abandoned(5)  # closed-state calls abandoned: nothing to report
    assert breaker.allow(10)
    breaker.abandoned(10.1)  # the question ended before its lookup answered
    assert breaker.is_open and not breaker.probing
    assert not breaker.allow(20) and breaker.allow(20.1), "another period without calls"


def test_a_skipped_store_does_not_leave_the_breaker_half_open(internet: TestInternet) -> None:
    """The review's shape: the store that took the half-open probe is skipped by the carrier
    (`shared_stored(None)`); the breaker used to wait for its outcome forever."""
    config = loopback_config(
        shared_cache=SharedCacheConfig(
            url="redis://127.0.0.1:1", secret=SECRET, breaker_errors=2, breaker_seconds=30
        )
    )
    clock = FakeClock()
    world = ScriptedWorld(internet, config, clock=clock, shared=None)  # every call fails
    world.resolve("www.example.test.")
    world.resolve("www.other.test.")
    shared = world.engine.shared
    assert shared is not None and shared.breaker.is_open
    clock.advance(31)
    answer = Answer(dns.rcode.NOERROR, (rrset("www.example.test. 300 IN A 192.0.2.1"),))
    now = world.engine.timer()
    store = shared.store(WWW, A, answer, clock.now, now)
    assert store is not None and shared.breaker.probing
    world.engine.shared_stored(None)
    assert not shared.breaker.probing and shared.breaker.allow(now)


# -- the engine, on a scripted internet ------------------------------------------------------


def shared_world(
    internet: TestInternet, store: dict[bytes, bytes] | None, clock: FakeClock
) -> ScriptedWorld:
    config = loopback_config(
        shared_cache=SharedCacheConfig(url="redis://127.0.0.1:1", secret=SECRET, breaker_errors=2)
    )
    return ScriptedWorld(internet, config, clock=clock, shared=store)


def test_one_engine_resolves_and_stores_another_answers_from_the_shared_cache(
    internet: TestInternet,
) -> None:
    store: dict[bytes, bytes] = {}
    clock = FakeClock()
    first = shared_world(internet, store, clock)
    answer = first.resolve("alias.example.test.")
    assert first.last_queries > 0 and len(store) == 1
    assert first.engine.stats.shared_misses == 1 and first.engine.stats.shared_stores == 1
    clock.advance(100)
    second = shared_world(internet, store, clock)
    again = second.resolve("alias.example.test.")
    assert second.last_queries == 0, "answered from the shared cache"
    assert second.engine.stats.shared_hits == 1
    assert texts(answer.answer) == [
        "alias.example.test. 600 IN CNAME www.example.test.",
        "www.example.test. 300 IN A 192.0.2.1",
    ]
    assert texts(again.answer) == [
        "alias.example.test. 200 IN CNAME www.example.test.",
        "www.example.test. 200 IN A 192.0.2.1",
    ], "the same records, TTLs aged by the 100 s since they were stored (none beyond the A's)"
    assert second.engine.stats.cache_answers == 1, "a shared hit counts as a cache hit"
    clock.advance(250)  # the A record (300 s) has expired: a miss, resolved again
    third = shared_world(internet, store, clock)
    third.resolve("alias.example.test.")
    assert third.last_queries > 0 and third.engine.stats.shared_misses == 1


def test_a_poisoned_value_is_dropped_and_the_name_is_resolved(internet: TestInternet) -> None:
    store: dict[bytes, bytes] = {}
    world = shared_world(internet, store, FakeClock())
    shared = world.engine.shared
    assert shared is not None
    key = shared.key(WWW, A)
    value = message_value(
        answer_message("www.example.test.", ["evil.test. 300 IN A 6.6.6.6"]), world.clock.now
    )
    store[key] = shared.seal(key, value)  # even from a holder of the secret: not the question's
    answer = world.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    assert world.engine.stats.shared_dropped == 1 and world.last_queries > 0
    assert world.cache.get_rrset(dns.name.from_text("evil.test."), A) is None


def test_a_value_rewritten_without_the_secret_is_dropped_and_counted(
    internet: TestInternet,
) -> None:
    """Whoever can read and write Redis but lacks the secret: the value names its question in
    clear, so they can write a well-formed answer for that very question under that very key,
    or move another key's genuine value there. Neither carries the MAC of (key, value)."""
    store: dict[bytes, bytes] = {}
    clock = FakeClock()
    first = shared_world(internet, store, clock)
    first.resolve("www.example.test.")
    first.resolve("www.other.test.")
    key = first.engine.shared.key(WWW, A)  # type: ignore[union-attr]  # configured: shared
    other = first.engine.shared.key(dns.name.from_text("www.other.test."), A)  # type: ignore[union-attr]  # configured: shared
    genuine = store[key]
    assert decode(genuine[:-MAC_SIZE], WWW, A, clock.now, max_chain=12) is not Rejected.MALFORMED
    forged = message_value(
        answer_message("www.example.test.", ["www.example.test. 300 IN A 6.6.6.6"]), clock.now
    )
    for planted in (
        forged,  # no MAC at all
        forged + genuine[-MAC_SIZE:],  # the MAC of another value
        genuine[:-MAC_SIZE].replace(bytes([192, 0, 2, 1]), bytes([6, 6, 6, 6]))
        + genuine[-MAC_SIZE:],
        store[other],  # a genuine value moved to another key
    ):
        store[key] = planted
        member = shared_world(internet, store, clock)
        answer = member.resolve("www.example.test.")
        assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
        assert member.engine.stats.shared_dropped == 1 and member.engine.stats.shared_hits == 0
        assert member.last_queries > 0


def test_the_mac_key_is_derived_not_the_secret_itself() -> None:
    secret = SECRET.encode()
    assert mac_key(secret) != secret and len(mac_key(secret)) == 32
    assert mac_key(secret) != mac_key(b"another secret")
    sealed = seal(mac_key(secret), b"k", b"value")
    assert unseal(mac_key(secret), b"k", sealed) == b"value"
    assert unseal(mac_key(secret), b"k2", sealed) is None
    assert unseal(mac_key(b"another secret"), b"k", sealed) is None
    assert unseal(mac_key(secret), b"k", b"short") is None


def test_values_beyond_the_record_and_byte_caps_are_dropped_before_parsing() -> None:
    """The hostile review's 64 KB value of 4,090 A records (~400 ms of dnspython on the event
    loop): refused from its header's counts, as is any message above `MAX_MESSAGE` bytes; and
    the resolver never writes such a value (`encode` returns None)."""
    many = dns.rrset.from_text_list(
        WWW, 300, "IN", "A", [f"10.0.{i >> 8}.{i & 255}" for i in range(MAX_RECORDS + 1)]
    )
    message = dns.message.make_response(dns.message.make_query(WWW, A))
    message.answer = [many]
    wire = message.to_wire()
    assert len(wire) < MAX_MESSAGE
    value = struct.pack("!3sBdd", MAGIC, VERSION, NOW, NOW + 300) + wire
    assert decode(value, WWW, A, NOW + 1, max_chain=12) is Rejected.TOO_BIG
    assert encode(WWW, A, dns.rcode.NOERROR, (many,), (), NOW) is None
    fewer = dns.rrset.from_text_list(
        WWW, 300, "IN", "A", [f"10.0.{i >> 8}.{i & 255}" for i in range(MAX_RECORDS)]
    )
    encoded = encode(WWW, A, dns.rcode.NOERROR, (fewer,), (), NOW)
    assert encoded is not None
    assert isinstance(decode(encoded[0], WWW, A, NOW + 1, max_chain=12), SharedAnswer)
    texts_ = [f'"{i:03d}{"x" * 250}"' for i in range(70)]  # 70 records, ~18 KB
    huge = (dns.rrset.from_text_list(WWW, 300, "IN", "TXT", texts_),)
    assert encode(WWW, dns.rdatatype.TXT, dns.rcode.NOERROR, huge, (), NOW) is None
    message = dns.message.make_response(dns.message.make_query(WWW, dns.rdatatype.TXT))
    message.answer = list(huge)
    value = struct.pack("!3sBdd", MAGIC, VERSION, NOW, NOW + 300) + message.to_wire()
    assert len(value) > MAX_MESSAGE
    assert decode(value, WWW, dns.rdatatype.TXT, NOW + 1, max_chain=12) is Rejected.TOO_BIG


def test_a_failing_shared_cache_opens_the_breaker_and_is_skipped(internet: TestInternet) -> None:
    world = shared_world(internet, None, FakeClock())  # every call fails
    for name in (
        "www.example.test.",
        "www.other.test.",
        "alias.example.test.",
        "chain.example.test.",
    ):
        assert world.resolve(name).rcode == dns.rcode.NOERROR
    stats = world.engine.stats
    assert stats.shared_errors >= 2 and stats.shared_skipped >= 2
    assert world.engine.shared is not None and world.engine.shared.breaker.is_open


def test_a_lookup_that_never_comes_back_times_out_on_the_engine_clock(
    internet: TestInternet,
) -> None:
    world = shared_world(internet, {}, FakeClock())
    engine = world.engine
    answers: list[object] = []
    outputs = engine.ask(WWW, A, answers.append)
    assert [type(o).__name__ for o in outputs] == ["SharedLookup"]
    deadline = engine.next_deadline()
    assert deadline is not None and deadline - world.clock.now == pytest.approx(0.05)
    world.clock.now = deadline
    sends = engine.tick()
    assert [type(o).__name__ for o in sends] == ["Send"], "iterates after the lookup timeout"
    assert engine.stats.shared_errors == 1
    late = engine.shared_reply(outputs[0].handle, positive())  # type: ignore[union-attr]  # a SharedLookup
    assert late == [] and engine.stats.shared_hits == 0, "a late value is ignored"


def fleet_world(
    internet: TestInternet, store: dict[bytes, bytes], clock: FakeClock, **cache: object
) -> ScriptedWorld:
    from resolver.config import CacheConfig

    config = loopback_config(
        cache=CacheConfig(**cache),  # type: ignore[arg-type]  # CacheConfig's fields
        shared_cache=SharedCacheConfig(url="redis://127.0.0.1:1", secret=SECRET),
    )
    return ScriptedWorld(internet, config, clock=clock, shared=store)


def test_a_ttl_only_decreases_on_a_round_trip_between_members(internet: TestInternet) -> None:
    """A stores www.other.test. (120 s); B reads it at +40 s (80 s left, not floored to
    `cache.min_ttl = 100`) and, a hit, does not store it again; a fresh C reads the value at
    +60 s: 60 s left. B's own resolution of chain.example.test. does not take www.other.test.
    from the value stored for another question: it asks the authorities (120 s)."""
    store: dict[bytes, bytes] = {}
    clock = FakeClock()
    one = fleet_world(internet, store, clock, min_ttl=100)
    assert texts(one.resolve("www.other.test.").answer) == ["www.other.test. 120 IN A 198.51.100.1"]
    clock.advance(40)
    two = fleet_world(internet, store, clock, min_ttl=100)
    assert texts(two.resolve("www.other.test.").answer) == ["www.other.test. 80 IN A 198.51.100.1"]
    assert two.last_queries == 0 and two.engine.stats.shared_stores == 0
    chained = two.resolve("chain.example.test.")
    assert two.last_queries > 0 and texts(chained.answer)[1] == (
        "www.other.test. 120 IN A 198.51.100.1"
    )
    clock.advance(20)
    again = fleet_world(internet, store, clock, min_ttl=100)
    answer = again.resolve("www.other.test.")
    assert again.last_queries == 0
    assert texts(answer.answer) == ["www.other.test. 60 IN A 198.51.100.1"], "120 - 60 s, no more"


def test_a_shared_value_in_the_serve_stale_window_is_served_stale_like_a_local_record(
    internet: TestInternet,
) -> None:
    """serve-stale on: a value past its expiry but inside `cache.max_stale` goes into the cache
    as stale data; with the authorities failing, it answers (RFC 8767: the stale TTL) instead
    of SERVFAIL, exactly as the record would had it expired in this member's own cache."""
    from resolver.testing.faults import Fault

    store: dict[bytes, bytes] = {}
    clock = FakeClock()
    one = fleet_world(internet, store, clock, serve_stale=True)
    one.resolve("www.example.test.")
    clock.advance(400)  # 100 s past the A record's 300 s
    for name in ("ns1.example.test.", "ns2.example.test."):
        internet.servers[name].fault = Fault.SERVFAIL
    two = fleet_world(internet, store, clock, serve_stale=True)
    answer = two.resolve("www.example.test.")
    assert answer.rcode == dns.rcode.NOERROR and answer.stale
    assert texts(answer.answer) == ["www.example.test. 30 IN A 192.0.2.1"]
    assert two.engine.stats.shared_hits == 0 and two.engine.stats.shared_misses == 1
    three = fleet_world(internet, store, clock, serve_stale=False)  # the value is no use
    assert three.resolve("www.example.test.").rcode == dns.rcode.SERVFAIL


async def test_the_client_reads_no_more_than_the_largest_value() -> None:
    """`GETRANGE 0 MAX_VALUE`, never `GET`: a value planted far larger than any the resolver
    writes is read one byte too long (then dropped as malformed), not into memory whole."""
    from resolver.cache.shared import MAX_VALUE
    from resolver.server.sharedcache import SharedCacheClient

    store = {b"big": b"x" * (MAX_VALUE * 8), b"small": b"value"}
    calls: list[tuple[bytes, int, int]] = []

    class FakeRedis:
        async def getrange(self, key: bytes, start: int, end: int) -> bytes:
            calls.append((key, start, end))
            return store.get(key, b"")[start : end + 1]

    client = SharedCacheClient.__new__(SharedCacheClient)
    client._client = FakeRedis()  # the one method used here
    big = await client.get(b"big")
    assert big is not None and len(big) == MAX_VALUE + 1
    assert await client.get(b"small") == b"value"
    assert await client.get(b"absent") is None
    assert calls == [(b"big", 0, MAX_VALUE), (b"small", 0, MAX_VALUE), (b"absent", 0, MAX_VALUE)]


# -- clock skew between members ---------------------------------------------------------------


def test_a_value_from_a_clock_ahead_is_read_as_if_stored_now_never_longer() -> None:
    """Stored 200 s in this member's future (within MAX_CLOCK_SKEW): its age cannot be known,
    so it is read as stored now with the TTL it had, its expiry moved back by the 200 s: never
    the 300 + 200 s its stamps would allow."""
    encoded = encode(
        WWW, A, dns.rcode.NOERROR, (rrset("www.example.test. 300 IN A 192.0.2.1"),), (), NOW + 200
    )
    assert encoded is not None
    checked = decode(encoded[0], WWW, A, NOW, max_chain=12)
    assert isinstance(checked, SharedAnswer)
    assert checked.chain[0].ttl == 300 and checked.expiries == (NOW + 300,)
    later = decode(encoded[0], WWW, A, NOW + 150, max_chain=12)
    assert isinstance(later, SharedAnswer)
    assert later.chain[0].ttl == 300 and later.expiries == (NOW + 450,)


def test_values_from_a_clock_too_far_ahead_are_counted_as_skew_and_warned_once(
    internet: TestInternet, caplog: pytest.LogCaptureFixture
) -> None:
    store: dict[bytes, bytes] = {}
    clock = FakeClock()
    ahead = FakeClock()
    ahead.advance(301)
    writer = shared_world(internet, store, ahead)
    writer.resolve("www.example.test.")
    writer.resolve("www.other.test.")
    assert len(store) == 2
    reader = shared_world(internet, store, clock)
    reader.resolve("www.example.test.")
    reader.resolve("www.other.test.")
    stats = reader.engine.stats
    assert stats.shared_skew == 2 and stats.shared_dropped == 0 and stats.shared_hits == 0
    assert reader.last_queries > 0
    warnings = [r for r in caplog.records if "future" in r.getMessage()]
    assert len(warnings) == 1
