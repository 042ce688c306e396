"""The cache dump format on its own: a fake clock, a RecordCache, text in and out.

The live warm-restart test is in test_control.py; here every rule of the format is pinned down
with exact TTLs, which only a fake clock allows.
"""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.cache.dump import (
    DumpedRRset,
    DumpError,
    Restored,
    format_dump,
    merge,
    parse_dump,
    restore,
    snapshot,
)
from resolver.cache.records import CachedRRset, Rank, RecordCache
from resolver.config import CacheConfig
from resolver.core.reasons import ServfailReason


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


SOA = dns.rrset.from_text(
    "example.test.", 3600, "IN", "SOA", "ns1.example.test. hostmaster.example.test. 1 2 3 4 300"
)


def filled(clock: Clock) -> RecordCache:
    cache = RecordCache(CacheConfig(), clock)
    cache.put_rrset(
        dns.rrset.from_text("www.example.test.", 300, "IN", "A", "192.0.2.1", "192.0.2.2"),
        Rank.ANSWER,
    )
    cache.put_rrset(
        dns.rrset.from_text("alias.example.test.", 600, "IN", "CNAME", "www.example.test."),
        Rank.ANSWER,
    )
    cache.put_rrset(
        dns.rrset.from_text("txt.example.test.", 600, "IN", "TXT", '"a; b" "c"'), Rank.ANSWER
    )
    cache.put_rrset(
        dns.rrset.from_text("example.test.", 172800, "IN", "NS", "ns1.example.test."),
        Rank.REFERRAL,
        delegation=True,
    )
    cache.put_rrset(
        dns.rrset.from_text("ns1.example.test.", 172800, "IN", "A", "127.53.2.1"),
        Rank.GLUE,
        delegation=True,
    )
    cache.put_negative(name("nope.example.test."), None, dns.rcode.NXDOMAIN, SOA)
    cache.put_negative(name("www.example.test."), dns.rdatatype.MX, dns.rcode.NOERROR, SOA)
    return cache


def dump_text(cache: RecordCache, clock: Clock) -> str:
    return "".join(format_dump(snapshot(list(cache.export()), clock())))


def test_one_record_per_line_with_its_rank_and_remaining_ttl() -> None:
    clock = Clock()
    cache = filled(clock)
    clock.now += 10
    lines = [line for line in dump_text(cache, clock).splitlines() if not line.startswith(";")]
    assert lines[0] == "$VERSION 2"
    assert lines[1] == "$TIME 1800000010.000 ; 2027-01-15T08:00:10Z"
    assert lines[2:] == [
        "answer www.example.test. 290 IN A 192.0.2.1",
        "answer www.example.test. 290 IN A 192.0.2.2",
        "answer alias.example.test. 590 IN CNAME www.example.test.",
        'answer txt.example.test. 590 IN TXT "a; b" "c"',
        "referral example.test. 172790 IN NS ns1.example.test.",
        "glue ns1.example.test. 172790 IN A 127.53.2.1",
        "nxdomain nope.example.test. example.test. 290 IN SOA ns1.example.test. "
        "hostmaster.example.test. 1 2 3 4 300",
        "nodata www.example.test. MX example.test. 290 IN SOA ns1.example.test. "
        "hostmaster.example.test. 1 2 3 4 300",
    ]


def test_a_restore_gives_back_the_same_cache_minus_the_time_since() -> None:
    clock = Clock()
    text = dump_text(filled(clock), clock)
    clock.now += 100  # the restart took 100 s
    restored_cache = RecordCache(CacheConfig(), clock)
    dump = parse_dump(text)
    outcome = Restored()
    restore(restored_cache, dump.entries, clock() - dump.written_at, outcome)
    assert outcome == Restored(loaded=7, expired=0, kept=0)

    www = restored_cache.get_rrset(name("www.example.test."), dns.rdatatype.A, min_rank=Rank.ANSWER)
    assert www is not None and www.ttl == 200 and len(www) == 2
    alias = restored_cache.get_rrset(name("alias.example.test."), dns.rdatatype.CNAME)
    assert alias is not None and alias[0].target == name("www.example.test.")
    assert alias[0].target.is_absolute()  # rendering a relative name would fail later
    # glue stays glue: never good enough for an answer
    assert restored_cache.rank_of(name("ns1.example.test."), dns.rdatatype.A) == Rank.GLUE
    assert (
        restored_cache.get_rrset(name("ns1.example.test."), dns.rdatatype.A, min_rank=Rank.ANSWER)
        is None
    )
    negative = restored_cache.get_negative(name("nope.example.test."), dns.rdatatype.AAAA)
    assert negative is not None and negative.rcode == dns.rcode.NXDOMAIN
    assert negative.soa.ttl == 200
    nodata = restored_cache.get_negative(name("www.example.test."), dns.rdatatype.MX)
    assert nodata is not None and nodata.rcode == dns.rcode.NOERROR
    # the SOA renders (absolute names), as it must in a client's answer
    response = dns.message.make_response(dns.message.make_query("nope.example.test.", "A"))
    response.authority = [negative.soa]
    assert response.to_wire()

    # Now the same dump loaded 301 s after it was written: the 300 s answers are gone.
    clock.now += 201
    late = RecordCache(CacheConfig(), clock)
    outcome = Restored()
    restore(late, dump.entries, clock() - dump.written_at, outcome)
    assert outcome.expired == 3  # www A, and the NXDOMAIN and NODATA (300 s)
    assert late.get_rrset(name("www.example.test."), dns.rdatatype.A) is None
    assert late.get_rrset(name("alias.example.test."), dns.rdatatype.CNAME) is not None


def test_a_restore_follows_the_trust_rules_and_the_ttl_bounds() -> None:
    clock = Clock()
    text = dump_text(filled(clock), clock)
    dump = parse_dump(text)
    cache = RecordCache(CacheConfig(max_ttl=60, max_delegation_ttl=3600), clock)
    cache.put_rrset(
        dns.rrset.from_text("ns1.example.test.", 500, "IN", "A", "127.53.2.9"), Rank.ANSWER
    )
    outcome = Restored()
    restore(cache, dump.entries, 0.0, outcome)
    assert outcome.kept == 1  # the held answer beats the dumped glue
    held = cache.get_rrset(name("ns1.example.test."), dns.rdatatype.A)
    assert held is not None and held[0].address == "127.53.2.9"
    www = cache.get_rrset(name("www.example.test."), dns.rdatatype.A)
    assert www is not None and www.ttl == 60  # this daemon's cache.max_ttl applies
    ns = cache.get_rrset(name("example.test."), dns.rdatatype.NS)
    assert ns is not None and ns.ttl == 3600


def test_stale_entries_are_not_dumped() -> None:
    clock = Clock()
    cache = filled(clock)
    clock.now += 400  # past the 300 s entries, inside the serve-stale window
    assert cache.census()["stale"] == 3
    records = [
        line.split()[:2]
        for line in dump_text(cache, clock).splitlines()
        if not line.startswith((";", "$"))
    ]
    assert records == [
        ["answer", "alias.example.test."],
        ["answer", "txt.example.test."],
        ["referral", "example.test."],
        ["glue", "ns1.example.test."],
    ]


def test_a_dump_does_not_change_what_is_evicted_next() -> None:
    clock = Clock()
    cache = RecordCache(CacheConfig(max_entries=2), clock)
    first = dns.rrset.from_text("a.test.", 300, "IN", "A", "192.0.2.1")
    second = dns.rrset.from_text("b.test.", 300, "IN", "A", "192.0.2.2")
    cache.put_rrset(first, Rank.ANSWER)
    cache.put_rrset(second, Rank.ANSWER)
    cache.get_rrset(name("a.test."), dns.rdatatype.A)  # a is now the most recently used
    dump_text(cache, clock)
    cache.census()
    cache.put_rrset(dns.rrset.from_text("c.test.", 300, "IN", "A", "192.0.2.3"), Rank.ANSWER)
    assert cache.get_rrset(name("b.test."), dns.rdatatype.A) is None  # b went, as before
    assert cache.get_rrset(name("a.test."), dns.rdatatype.A) is not None


def test_census_counts_each_kind() -> None:
    clock = Clock()
    cache = filled(clock)
    cache.put_failure(name("dead.test."), dns.rdatatype.A, ServfailReason.NO_REACHABLE_AUTHORITY)
    assert cache.census() == {
        "rrsets": 3,
        "delegations": 2,
        "negative": 2,
        "stale": 0,
        "failures": 1,
    }
    assert sum(cache.census().values()) == len(cache)


def test_remembered_failures_are_not_dumped() -> None:
    """They last seconds (RFC 9520), and a dump line would need a kind no loader knows."""
    clock = Clock()
    cache = filled(clock)
    before = dump_text(cache, clock)
    cache.put_failure(name("dead.test."), dns.rdatatype.A, ServfailReason.NO_REACHABLE_AUTHORITY)
    assert dump_text(cache, clock) == before
    assert all(owner != name("dead.test.") for owner, _type, _entry in cache.export())


def test_merging_worker_dumps_keeps_the_best_copy() -> None:
    clock = Clock()
    one = snapshot(list(filled(clock).export()), clock())
    clock.now += 5
    other_cache = RecordCache(CacheConfig(), clock)
    other_cache.put_rrset(
        dns.rrset.from_text("ns1.example.test.", 500, "IN", "A", "127.53.2.1"), Rank.ANSWER
    )
    two = snapshot(list(other_cache.export()), clock())
    merged = merge([one, two])
    assert merged.written_at == clock()
    text = "".join(format_dump(merged))
    assert text.count("ns1.example.test. ") == 1 + 2  # one A line; the NS and the SOAs name it
    assert "answer ns1.example.test. 500 IN A 127.53.2.1" in text  # answer beats glue
    assert "answer www.example.test. 295 IN A 192.0.2.1" in text  # aged to the later dump


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("answer www.test. 300 IN A 192.0.2.1\n", "no $TIME line"),
        ("$TIME 1\nanswer www.test. 300 IN A\n", "line 2: expected OWNER TTL CLASS TYPE DATA"),
        ("$TIME 1\nanswer www.test. soon IN A 192.0.2.1\n", "line 2: 'soon' is not a TTL"),
        ("$TIME 1\nanswer www.test. 300 IN A 192.0.2.300\n", "line 2:"),
        ("$TIME 1\nbest www.test. 300 IN A 192.0.2.1\n", "line 2: unknown kind 'best'"),
        ("$TIME 1\nnxdomain x.test. x.test. 300 IN A 192.0.2.1\n", "needs an SOA record"),
        ("$TIME later\n", "line 1:"),
    ],
)
def test_a_broken_dump_names_its_line(text: str, message: str) -> None:
    with pytest.raises(DumpError) as error:
        parse_dump(text)
    assert message in str(error.value)


def test_comments_blank_lines_and_split_rrsets_are_fine() -> None:
    dump = parse_dump(
        "; a comment\n\n$TIME 100 ; when\n"
        "answer www.test. 300 IN A 192.0.2.1\n"
        "answer www.test. 200 IN A 192.0.2.2\n"
    )
    assert dump.written_at == 100.0
    (entry,) = dump.entries
    assert isinstance(entry, DumpedRRset)
    assert entry.ttl == 200 and len(entry.rrset) == 2


def test_a_restore_does_not_lengthen_ttls_again_with_min_ttl() -> None:
    """`cache.min_ttl` floors a TTL once, when the data is first cached: a record with 10 s
    left in a dump is restored with 10 s, not min_ttl, so restarts never make data younger."""
    from resolver.cache.dump import Restored, restore, snapshot
    from resolver.cache.records import RecordCache
    from resolver.config import CacheConfig

    cache = RecordCache(CacheConfig(min_ttl=100), lambda: 1000.0)
    rrset = dns.rrset.from_text("www.example.test.", 10, "IN", "A", "192.0.2.1")
    dump = snapshot([(rrset.name, rrset.rdtype, _entry(rrset, 1010.0))], 1000.0)
    restore(cache, dump.entries, 3.0, Restored())
    held = cache.get_rrset(rrset.name, rrset.rdtype, min_rank=Rank.ANSWER)
    assert held is not None and held.ttl == 7


def _entry(rrset: dns.rrset.RRset, expires: float) -> CachedRRset:
    return CachedRRset(rrset, expires, Rank.ANSWER)
