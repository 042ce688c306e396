"""The record cache on its own: trust ranks, TTL ageing and clamps, negative entries, the bound."""

from __future__ import annotations

import random

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.records import CachedNegative, Rank, RecordCache, Signed
from resolver.config import CacheConfig
from resolver.core.reasons import ServfailReason
from resolver.testing.scripted import FakeClock


def rrset(text: str) -> dns.rrset.RRset:
    name, ttl, rdtype, *data = text.split()
    return dns.rrset.from_text(name, int(ttl), "IN", rdtype, " ".join(data))


def make(clock: FakeClock, config: CacheConfig | None = None) -> RecordCache:
    return RecordCache(CacheConfig() if config is None else config, clock)


def delegate(cache: RecordCache, text: str) -> None:
    cache.put_rrset(rrset(text), Rank.REFERRAL, delegation=True)


WWW = dns.name.from_text("www.example.test.")
SOA = rrset("example.test. 3600 SOA ns1.example.test. h.example.test. 1 7200 3600 1209600 300")


def test_ttl_counts_down_with_the_clock_and_then_the_entry_is_gone() -> None:
    clock = FakeClock()
    cache = make(clock)
    cache.put_rrset(rrset("www.example.test. 300 A 192.0.2.1"), Rank.ANSWER)
    clock.advance(299.5)
    held = cache.get_rrset(WWW, dns.rdatatype.A)
    assert (held is not None and held.ttl == 0) or held is None
    clock.advance(0.5)
    assert cache.get_rrset(WWW, dns.rdatatype.A) is None


def test_lookup_is_case_insensitive() -> None:
    cache = make(FakeClock())
    cache.put_rrset(rrset("WWW.Example.TEST. 300 A 192.0.2.1"), Rank.ANSWER)
    assert cache.get_rrset(WWW, dns.rdatatype.A) is not None


def test_more_trusted_data_is_never_replaced_by_less_trusted() -> None:
    cache = make(FakeClock())
    assert cache.put_rrset(rrset("www.example.test. 300 A 192.0.2.1"), Rank.ANSWER)
    assert not cache.put_rrset(rrset("www.example.test. 300 A 203.0.113.66"), Rank.GLUE)
    held = cache.get_rrset(WWW, dns.rdatatype.A)
    assert held is not None and held[0].address == "192.0.2.1"


def test_authoritative_data_replaces_glue() -> None:
    cache = make(FakeClock())
    cache.put_rrset(rrset("www.example.test. 300 A 203.0.113.66"), Rank.GLUE)
    assert cache.get_rrset(WWW, dns.rdatatype.A, min_rank=Rank.ANSWER) is None
    assert cache.put_rrset(rrset("www.example.test. 300 A 192.0.2.1"), Rank.ANSWER)
    held = cache.get_rrset(WWW, dns.rdatatype.A, min_rank=Rank.ANSWER)
    assert held is not None and held[0].address == "192.0.2.1"


def test_ttls_are_clamped_to_the_configured_bounds() -> None:
    cache = make(FakeClock(), CacheConfig(max_ttl=3600, min_ttl=60, max_delegation_ttl=172_800))
    cache.put_rrset(rrset("www.example.test. 999999 A 192.0.2.1"), Rank.ANSWER)
    cache.put_rrset(rrset("mail.example.test. 5 A 192.0.2.2"), Rank.ANSWER)
    cache.put_rrset(
        rrset("example.test. 604800 NS ns1.example.test."), Rank.REFERRAL, delegation=True
    )
    assert cache.get_rrset(WWW, dns.rdatatype.A).ttl == 3600  # type: ignore[union-attr]  # put just above
    mail = dns.name.from_text("mail.example.test.")
    assert cache.get_rrset(mail, dns.rdatatype.A).ttl == 60  # type: ignore[union-attr]  # put just above
    zone = dns.name.from_text("example.test.")
    assert cache.get_rrset(zone, dns.rdatatype.NS).ttl == 172_800  # type: ignore[union-attr]  # put just above


def test_zero_ttl_records_are_not_kept() -> None:
    cache = make(FakeClock())
    assert not cache.put_rrset(rrset("www.example.test. 0 A 192.0.2.1"), Rank.ANSWER)
    assert len(cache) == 0


def test_nxdomain_covers_every_type_and_nodata_only_its_own() -> None:
    clock = FakeClock()
    cache = make(clock)
    gone = dns.name.from_text("gone.example.test.")
    cache.put_negative(gone, None, dns.rcode.NXDOMAIN, SOA)
    cache.put_negative(WWW, dns.rdatatype.TXT, dns.rcode.NOERROR, SOA)
    for rdtype in (dns.rdatatype.A, dns.rdatatype.MX):
        negative = cache.get_negative(gone, rdtype)
        assert negative is not None and negative.rcode == dns.rcode.NXDOMAIN
    assert cache.get_negative(WWW, dns.rdatatype.TXT) is not None
    assert cache.get_negative(WWW, dns.rdatatype.A) is None
    clock.advance(100)
    negative = cache.get_negative(gone, dns.rdatatype.A)
    assert negative is not None and negative.soa.ttl == 200  # min(3600, 300) - 100


def test_negative_ttl_is_capped() -> None:
    cache = make(FakeClock(), CacheConfig(max_negative_ttl=60))
    cache.put_negative(WWW, None, dns.rcode.NXDOMAIN, SOA)
    negative = cache.get_negative(WWW, dns.rdatatype.A)
    assert negative is not None and negative.soa.ttl == 60


def test_authoritative_data_clears_a_stale_negative_entry() -> None:
    cache = make(FakeClock())
    cache.put_negative(WWW, dns.rdatatype.A, dns.rcode.NOERROR, SOA)
    cache.put_rrset(rrset("www.example.test. 300 A 192.0.2.1"), Rank.ANSWER)
    assert cache.get_negative(WWW, dns.rdatatype.A) is None


def test_size_bound_evicts_the_least_recently_used() -> None:
    cache = make(FakeClock(), CacheConfig(max_entries=3))
    for index in range(3):
        cache.put_rrset(rrset(f"h{index}.example.test. 300 A 192.0.2.{index}"), Rank.ANSWER)
    cache.get_rrset(dns.name.from_text("h0.example.test."), dns.rdatatype.A)  # h0 is now recent
    cache.put_rrset(rrset("h3.example.test. 300 A 192.0.2.3"), Rank.ANSWER)
    assert len(cache) == 3
    assert cache.get_rrset(dns.name.from_text("h1.example.test."), dns.rdatatype.A) is None
    assert cache.get_rrset(dns.name.from_text("h0.example.test."), dns.rdatatype.A) is not None


def test_closest_delegation_is_the_deepest_cached_cut() -> None:
    cache = make(FakeClock())
    cache.put_rrset(rrset("test. 3600 NS ns1.nic.test."), Rank.REFERRAL, delegation=True)
    cache.put_rrset(
        rrset("example.test. 3600 NS ns1.example.test."), Rank.REFERRAL, delegation=True
    )
    found = cache.closest_delegation(dns.name.from_text("a.b.www.example.test."))
    assert found is not None and found.name == dns.name.from_text("example.test.")
    found = cache.closest_delegation(dns.name.from_text("www.other.test."))
    assert found is not None and found.name == dns.name.from_text("test.")


def test_flush_one_name_or_a_subtree() -> None:
    cache = make(FakeClock())
    for text in ("www.example.test. 300 A 192.0.2.1", "a.www.example.test. 300 A 192.0.2.2"):
        cache.put_rrset(rrset(text), Rank.ANSWER)
    cache.put_rrset(rrset("www.other.test. 300 A 192.0.2.3"), Rank.ANSWER)
    assert cache.flush(WWW) == 1
    assert cache.flush(dns.name.from_text("example.test."), subtree=True) == 1
    assert len(cache) == 1
    assert cache.flush() == 1 and len(cache) == 0


def test_a_failure_is_remembered_for_the_failure_ttl() -> None:
    clock = FakeClock()
    cache = make(clock, CacheConfig(failure_ttl=5))
    assert cache.put_failure(WWW, dns.rdatatype.A, ServfailReason.NO_REACHABLE_AUTHORITY)
    assert cache.get_failure(WWW, dns.rdatatype.A) is ServfailReason.NO_REACHABLE_AUTHORITY
    assert cache.get_failure(WWW, dns.rdatatype.AAAA) is None  # per type
    clock.advance(4.9)
    assert cache.get_failure(WWW, dns.rdatatype.A) is ServfailReason.NO_REACHABLE_AUTHORITY
    clock.advance(0.1)
    assert cache.get_failure(WWW, dns.rdatatype.A) is None


def test_a_failure_ttl_is_kept_between_one_second_and_five_minutes() -> None:
    """RFC 9520 section 3.2: at least 1 s, never more than 5 minutes."""
    clock = FakeClock()
    cache = make(clock)
    cache.put_failure(WWW, dns.rdatatype.A, ServfailReason.TIMEOUT, ttl=0)
    cache.put_failure(WWW, dns.rdatatype.MX, ServfailReason.TIMEOUT, ttl=86_400)
    clock.advance(0.9)
    assert cache.get_failure(WWW, dns.rdatatype.A) is ServfailReason.TIMEOUT
    clock.advance(299)
    assert cache.get_failure(WWW, dns.rdatatype.A) is None
    assert cache.get_failure(WWW, dns.rdatatype.MX) is ServfailReason.TIMEOUT
    clock.advance(0.1)
    assert cache.get_failure(WWW, dns.rdatatype.MX) is None


def test_a_failure_is_never_an_answer_and_is_not_served_stale() -> None:
    clock = FakeClock()
    cache = make(clock, CacheConfig(failure_ttl=5))
    cache.put_failure(WWW, dns.rdatatype.A, ServfailReason.NO_REACHABLE_AUTHORITY)
    assert cache.get_rrset(WWW, dns.rdatatype.A) is None
    assert cache.get_negative(WWW, dns.rdatatype.A) is None
    assert cache.rank_of(WWW, dns.rdatatype.A) is None
    clock.advance(10)
    assert cache.get_rrset(WWW, dns.rdatatype.A, stale=True) is None
    assert cache.get_negative(WWW, dns.rdatatype.A, stale=True) is None
    assert len(cache) == 0  # gone at expiry, not kept for serve-stale like answers


def test_an_answer_or_a_negative_answer_replaces_a_remembered_failure() -> None:
    cache = make(FakeClock(), CacheConfig(failure_ttl=5))
    cache.put_failure(WWW, dns.rdatatype.A, ServfailReason.NO_REACHABLE_AUTHORITY)
    cache.put_failure(WWW, dns.rdatatype.MX, ServfailReason.NO_REACHABLE_AUTHORITY)
    cache.put_rrset(rrset("www.example.test. 300 A 192.0.2.1"), Rank.ANSWER)
    cache.put_negative(WWW, dns.rdatatype.MX, dns.rcode.NOERROR, SOA)
    assert cache.get_failure(WWW, dns.rdatatype.A) is None
    assert cache.get_failure(WWW, dns.rdatatype.MX) is None


def test_failures_share_the_size_bound_and_are_flushed() -> None:
    cache = make(FakeClock(), CacheConfig(max_entries=2, failure_ttl=5))
    cache.put_rrset(rrset("www.example.test. 300 A 192.0.2.1"), Rank.ANSWER)
    cache.put_failure(WWW, dns.rdatatype.MX, ServfailReason.TIMEOUT)
    cache.put_failure(WWW, dns.rdatatype.TXT, ServfailReason.TIMEOUT)
    assert len(cache) == 2
    assert cache.get_rrset(WWW, dns.rdatatype.A) is None  # the least recently used went
    assert cache.census()["failures"] == 2
    assert cache.flush(WWW) == 2
    assert cache.get_failure(WWW, dns.rdatatype.TXT) is None


def test_what_comes_out_equals_what_went_in_in_every_detail() -> None:
    """Entries are stored compactly (addresses as text, other records as their rdatas) and
    built again on the way out: owner, letter case, class, type, records and their order."""
    cache = make(FakeClock())
    records = dns.rrset.from_text
    originals = [
        records("www.example.test.", 300, "IN", "A", "192.0.2.9", "192.0.2.1", "192.0.2.5"),
        records("www.example.test.", 300, "IN", "AAAA", "2001:db8::1", "2001:db8:0:0:1::2"),
        records("Mixed.Example.TEST.", 300, "IN", "A", "192.0.2.7"),
        records("alias.example.test.", 300, "IN", "CNAME", "Target.Example.TEST."),
        records("example.test.", 300, "IN", "MX", "10 mx2.example.test.", "5 mx1.example.test."),
    ]
    for original in originals:
        cache.put_rrset(original, Rank.ANSWER)
    for original in originals:
        held = cache.get_rrset(original.name, original.rdtype)
        assert held is not None and held.to_text() == original.to_text()
        assert held == original and list(held) == list(original)
        assert (held.rdclass, held.rdtype, held.covers) == (
            original.rdclass,
            original.rdtype,
            original.covers,
        )
    mixed = cache.get_rrset(dns.name.from_text("mixed.example.test."), dns.rdatatype.A)
    assert mixed is not None and mixed.name.to_text() == "Mixed.Example.TEST."  # as stored
    plain = cache.get_rrset(dns.name.from_text("WWW.example.test."), dns.rdatatype.A)
    assert plain is not None and plain.name.to_text() == "www.example.test."  # as stored
    assert cache.addresses(WWW) == [
        "192.0.2.9",
        "192.0.2.1",
        "192.0.2.5",
        "2001:db8::1",
        "2001:db8::1:0:0:2",
    ]


def test_a_label_holding_a_dot_is_not_confused_with_two_labels() -> None:
    cache = make(FakeClock())
    dotted = dns.name.Name([b"a.b", b"example", b"test", b""])
    two = dns.name.from_text("a.b.example.test.")
    cache.put_rrset(dns.rrset.from_text(dotted, 300, "IN", "A", "192.0.2.1"), Rank.ANSWER)
    assert cache.get_rrset(two, dns.rdatatype.A) is None
    held = cache.get_rrset(dotted, dns.rdatatype.A)
    assert held is not None and held.name == dotted
    assert [owner for owner, _type, _entry in cache.export()] == [dotted]
    assert cache.flush(dns.name.from_text("example.test."), subtree=True) == 1


def test_flushing_the_root_subtree_forgets_everything() -> None:
    cache = make(FakeClock())
    cache.put_rrset(rrset("www.example.test. 300 A 192.0.2.1"), Rank.ANSWER)
    cache.put_negative(dns.name.root, dns.rdatatype.TXT, dns.rcode.NOERROR, SOA)
    cache.put_failure(WWW, dns.rdatatype.MX, ServfailReason.TIMEOUT)
    assert cache.flush(dns.name.root, subtree=True) == 3 and len(cache) == 0


def test_the_negative_answers_of_one_zone_share_its_soa_until_it_changes() -> None:
    """A flood of random names in one zone is all NXDOMAIN: one SOA for all, not one each."""
    cache = make(FakeClock())
    names = [dns.name.from_text(f"r{index}.example.test.") for index in range(3)]
    data = "ns1.example.test. h.example.test. {} 7200 3600 1209600 300"
    for name in names[:2]:  # each from a response of its own: equal SOAs, not the same object
        soa = dns.rrset.from_text("example.test.", 3600, "IN", "SOA", data.format(1))
        cache.put_negative(name, None, dns.rcode.NXDOMAIN, soa)
    bumped = dns.rrset.from_text("example.test.", 3600, "IN", "SOA", data.format(2))
    cache.put_negative(names[2], None, dns.rcode.NXDOMAIN, bumped)
    first, second, third = (cache.get_negative(name, dns.rdatatype.A) for name in names)
    assert first is not None and second is not None and third is not None
    assert first.soa[0] is second.soa[0] and first.soa == second.soa
    assert third.soa == bumped and third.soa[0].serial == 2
    assert first.soa[0].serial == 1  # the older answers keep the SOA they came with


def test_closest_cut_is_the_closest_delegation_with_its_addresses_while_they_hold() -> None:
    clock = FakeClock()
    cache = make(clock)
    ns = dns.rrset.from_text(
        "example.test.", 3600, "IN", "NS", "ns1.example.test.", "ns2.example.test."
    )
    cache.put_rrset(ns, Rank.REFERRAL, delegation=True)
    cache.put_rrset(rrset("ns1.example.test. 600 A 192.0.2.1"), Rank.GLUE, delegation=True)
    name = dns.name.from_text("a.b.www.example.test.")
    cut = cache.closest_cut(name)
    assert cut is not None and cut.zone == dns.name.from_text("example.test.")
    ns1, ns2 = (dns.name.from_text(f"ns{n}.example.test.") for n in (1, 2))
    assert cut.ns_names == (ns1, ns2)
    assert dict(cut.addresses) == {ns1: ("192.0.2.1",), ns2: ()}
    assert cache.closest_cut(dns.name.from_text("other.example.test.")) is cut  # remembered
    # Whatever it was made of changes: an address learnt, one expired, the NS set replaced.
    cache.put_rrset(rrset("ns2.example.test. 600 AAAA 2001:db8::2"), Rank.ANSWER)
    again = cache.closest_cut(name)
    assert again is not None and again is not cut
    assert dict(again.addresses) == {ns1: ("192.0.2.1",), ns2: ("2001:db8::2",)}
    clock.advance(601)
    expired = cache.closest_cut(name)
    assert expired is not None and dict(expired.addresses) == {ns1: (), ns2: ()}
    delegate(cache, "example.test. 3600 NS ns3.example.test.")
    replaced = cache.closest_cut(name)
    assert replaced is not None and replaced.ns_names == (dns.name.from_text("ns3.example.test."),)
    assert cache.closest_cut(dns.name.from_text("www.other.test.")) is None


def _looked_up_one_by_one(
    cache: RecordCache, name: dns.name.Name, qtype: int, stale: bool
) -> object:
    """What `answer` gives, asked as three lookups in RFC 1034 5.3.3's order (as
    `CacheLookup.from_cache` did before `answer` existed)."""
    if stale:
        fresh_denial = cache.get_negative(name, qtype)
        if fresh_denial is not None:
            return fresh_denial
    rank = Rank.NONAUTH_ANSWER
    found = cache.get_signed(name, qtype, min_rank=rank, stale=stale)
    if found is None and qtype != dns.rdatatype.CNAME:
        found = cache.get_signed(name, dns.rdatatype.CNAME, min_rank=rank, stale=stale)
    return found if found is not None else cache.get_negative(name, qtype, stale=stale)


def _described(found: object) -> object:
    """A comparable account of a lookup's result, TTLs and owners' letter case included."""
    if isinstance(found, Signed):
        sigs = None if found.signatures is None else found.signatures.to_text()
        return ("signed", found.rrset.to_text(), found.rrset.name.labels, sigs, found.security)
    if isinstance(found, CachedNegative):
        return ("negative", found.rcode, found.soa.to_text(), found.expires, found.security)
    assert found is None
    return None


def test_answer_finds_what_the_three_lookups_it_replaces_find() -> None:
    """`answer` spells the name once and reads the clock once for the RRset, CNAME and denial
    lookups of a miss: on random contents (every kind, rank and age, serve-stale or not) it
    must give exactly what they give, in their order."""
    rng = random.Random(5)
    clock = FakeClock()
    cache = make(clock, CacheConfig(max_stale=600))
    names = [dns.name.from_text(f"{label}.example.test.") for label in ("a", "B", "c", "d")]
    types = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME, dns.rdatatype.MX)
    records = {
        dns.rdatatype.A: "192.0.2.1",
        dns.rdatatype.AAAA: "2001:db8::1",
        dns.rdatatype.CNAME: "target.example.test.",
        dns.rdatatype.MX: "10 mx.example.test.",
    }
    kinds = list(zip(types, records.values(), strict=True))
    compared = found = 0
    for _step in range(3_000):
        name = rng.choice(names)
        action = rng.random()
        if action < 0.3:
            rdtype, data = rng.choice(kinds)
            text = dns.rdatatype.to_text(rdtype)
            held = dns.rrset.from_text(name, rng.choice((60, 300)), "IN", text, data)
            cache.put_rrset(held, rng.choice(list(Rank)))
        elif action < 0.45:
            denied = rng.choice((None, *types))
            rcode = dns.rcode.NXDOMAIN if denied is None else dns.rcode.NOERROR
            cache.put_negative(name, denied, rcode, SOA)
        elif action < 0.5:
            clock.advance(rng.choice((30, 200, 500)))
        else:
            qtype, stale = rng.choice(types), rng.random() < 0.3
            # The lookups move entries in the LRU order and drop the expired, never changing
            # what a second lookup finds: each is asked of the same contents.
            expected = _described(_looked_up_one_by_one(cache, name, qtype, stale))
            assert _described(cache.answer(name, qtype, stale=stale)) == expected
            compared += 1
            found += expected is not None
    assert compared > 1_000 and found > 300  # most kinds of result were met


def test_a_failure_is_found_while_any_failure_put_may_still_be_held() -> None:
    """`get_failure` looks nothing up once every failure put has expired: a shorter one put
    after a longer one must not hide the longer one."""
    clock = FakeClock()
    cache = make(clock)
    cache.put_failure(WWW, dns.rdatatype.A, ServfailReason.TIMEOUT, ttl=60)
    cache.put_failure(WWW, dns.rdatatype.MX, ServfailReason.TIMEOUT, ttl=5)
    clock.advance(30)
    assert cache.get_failure(WWW, dns.rdatatype.A) is ServfailReason.TIMEOUT
    assert cache.get_failure(WWW, dns.rdatatype.MX) is None
    clock.advance(30)
    assert cache.get_failure(WWW, dns.rdatatype.A) is None
    cache.put_failure(WWW, dns.rdatatype.TXT, ServfailReason.NO_REACHABLE_AUTHORITY, ttl=5)
    assert cache.get_failure(WWW, dns.rdatatype.TXT) is ServfailReason.NO_REACHABLE_AUTHORITY
    cache.put_rrset(rrset("www.example.test. 300 TXT hello"), Rank.ANSWER)
    assert cache.get_failure(WWW, dns.rdatatype.TXT) is None  # an answer still removes it
