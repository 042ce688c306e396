"""A shared-cache value answers the question it was stored under and nothing else.

The hostile review's shapes, on the scripted internet with a dict for Redis: a value whose
CNAME chain carries another name's data, an NS set or an address on the way, or an NXDOMAIN for
the chain's last name. Each value here is well formed and correctly sealed (what a member with
the secret, or one that was fed a spoofed answer, could store): the point is what it can reach.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.cache.shared import MAGIC, VERSION
from resolver.config import SharedCacheConfig
from resolver.engine import Send
from resolver.testing import TestInternet
from resolver.testing.scripted import FakeClock, ScriptedWorld
from tests.helpers import loopback_config, texts

SECRET = "0123456789abcdef-test-secret"


@pytest.fixture
def internet() -> TestInternet:
    return TestInternet.default()


def rr(text: str) -> dns.rrset.RRset:
    owner, ttl, rdclass, rdtype, data = text.split(None, 4)
    return dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, data)


def world(internet: TestInternet, store: dict[bytes, bytes], clock: FakeClock) -> ScriptedWorld:
    config = loopback_config(
        shared_cache=SharedCacheConfig(url="redis://127.0.0.1:1", secret=SECRET)
    )
    return ScriptedWorld(internet, config, clock=clock, shared=store)


def plant(
    w: ScriptedWorld,
    store: dict[bytes, bytes],
    qname: str,
    qtype: str,
    answer: list[str],
    authority: Sequence[str] = (),
    rcode: int = 0,
) -> None:
    """Store a well-formed, sealed value for (qname, qtype), stored now, for a day."""
    shared = w.engine.shared
    assert shared is not None
    message = dns.message.make_response(dns.message.make_query(qname, qtype))
    message.set_rcode(dns.rcode.Rcode(rcode))
    message.answer = [rr(text) for text in answer]
    message.authority = [rr(text) for text in authority]
    now = w.engine.clock()
    value = struct.pack("!3sBdd", MAGIC, VERSION, now, now + 86400) + message.to_wire()
    key = shared.key(dns.name.from_text(qname), dns.rdatatype.from_text(qtype))
    store[key] = shared.seal(key, value)


def test_a_cname_target_in_a_value_does_not_answer_another_question(
    internet: TestInternet,
) -> None:
    store: dict[bytes, bytes] = {}
    w = world(internet, store, FakeClock())
    plant(
        w,
        store,
        "www.example.test.",
        "A",
        ["www.example.test. 300 IN CNAME www.other.test.", "www.other.test. 86400 IN A 6.6.6.6"],
    )
    first = w.resolve("www.example.test.")
    assert w.last_queries == 0 and w.engine.stats.shared_hits == 1
    assert texts(first.answer)[1] == "www.other.test. 86400 IN A 6.6.6.6"  # its own question
    other = w.resolve("www.other.test.")
    assert texts(other.answer) == ["www.other.test. 120 IN A 198.51.100.1"]
    assert w.last_queries > 0, "asked the authorities, not the other question's value"
    assert w.cache.get_rrset(dns.name.from_text("www.other.test."), dns.rdatatype.A) is not None


def test_a_planted_ns_set_does_not_steer_iteration(internet: TestInternet) -> None:
    store: dict[bytes, bytes] = {}
    w = world(internet, store, FakeClock())
    w.resolve("www.other.test.")  # the real delegation of other.test., at REFERRAL rank
    zone = dns.name.from_text("other.test.")
    cut = w.cache.closest_cut(zone)
    assert cut is not None
    plant(
        w,
        store,
        "x.example.test.",
        "NS",
        ["x.example.test. 300 IN CNAME other.test.", "other.test. 86400 IN NS evil.example.test."],
    )
    plant(
        w,
        store,
        "y.example.test.",
        "A",
        [
            "y.example.test. 300 IN CNAME evil.example.test.",
            "evil.example.test. 86400 IN A 127.53.2.1",
        ],
    )
    w.resolve("x.example.test.", "NS")
    w.resolve("y.example.test.")
    assert w.engine.stats.shared_hits == 2
    assert w.cache.closest_cut(zone) == cut
    assert w.cache.get_rrset(dns.name.from_text("evil.example.test."), dns.rdatatype.A) is None
    sent: list[str] = []
    real = w.network

    def network(send: Send) -> bytes | None:
        sent.append(send.server.address)
        return real(send)

    w.network = network  # type: ignore[method-assign]  # a scripted stand-in
    answer = w.resolve("brandnew.other.test.")
    assert answer.rcode == dns.rcode.NXDOMAIN
    assert sent and "127.53.2.1" not in sent


def test_an_address_in_a_value_does_not_replace_glue(internet: TestInternet) -> None:
    store: dict[bytes, bytes] = {}
    w = world(internet, store, FakeClock())
    w.resolve("www.other.test.")
    ns1 = dns.name.from_text("ns1.other.test.")
    glue = w.cache.addresses(ns1)
    assert glue and "127.53.2.1" not in glue
    plant(
        w,
        store,
        "z.example.test.",
        "A",
        ["z.example.test. 300 IN CNAME ns1.other.test.", "ns1.other.test. 86400 IN A 127.53.2.1"],
    )
    w.resolve("z.example.test.")
    assert w.engine.stats.shared_hits == 1
    assert w.cache.addresses(ns1) == glue


def test_a_chained_nxdomain_denies_nothing_but_its_own_question(internet: TestInternet) -> None:
    store: dict[bytes, bytes] = {}
    w = world(internet, store, FakeClock())
    w.resolve("www.example.test.")  # the delegations, not www.other.test. itself
    plant(
        w,
        store,
        "n.example.test.",
        "A",
        ["n.example.test. 300 IN CNAME www.other.test."],
        ["other.test. 86400 IN SOA a. b. 1 2 3 4 86400"],
        rcode=dns.rcode.NXDOMAIN,
    )
    denied = w.resolve("n.example.test.")
    assert denied.rcode == dns.rcode.NXDOMAIN and w.engine.stats.shared_hits == 1
    assert w.last_queries == 0
    www = dns.name.from_text("www.other.test.")
    assert w.cache.get_negative(www, dns.rdatatype.MX) is None
    for rdtype in ("A", "AAAA", "MX"):
        answer = w.resolve("www.other.test.", rdtype)
        assert answer.rcode == dns.rcode.NOERROR and w.last_queries > 0, rdtype
    assert texts(w.resolve("www.other.test.").answer) == ["www.other.test. 120 IN A 198.51.100.1"]


def test_what_the_member_learnt_itself_wins_over_a_shared_denial(internet: TestInternet) -> None:
    """The chain's last name is answered from this member's own cache (fresh data from the
    authorities) before the value is looked at: the value's NXDOMAIN for it is not believed."""
    store: dict[bytes, bytes] = {}
    w = world(internet, store, FakeClock())
    w.resolve("www.other.test.")
    plant(
        w,
        store,
        "n.example.test.",
        "A",
        ["n.example.test. 300 IN CNAME www.other.test."],
        ["other.test. 86400 IN SOA a. b. 1 2 3 4 86400"],
        rcode=dns.rcode.NXDOMAIN,
    )
    answer = w.resolve("n.example.test.")
    assert answer.rcode == dns.rcode.NOERROR and w.last_queries == 0
    assert texts(answer.answer) == [
        "n.example.test. 300 IN CNAME www.other.test.",
        "www.other.test. 120 IN A 198.51.100.1",
    ]


def test_a_negative_value_with_a_soa_above_the_cached_cut_is_dropped(
    internet: TestInternet,
) -> None:
    """The name is in other.test. (this member holds that cut): a denial quoting the SOA of
    test. or of the root is not the zone's, so the value is dropped, counted, and the question
    iterates."""
    store: dict[bytes, bytes] = {}
    w = world(internet, store, FakeClock())
    w.resolve("www.other.test.")
    for name, soa in (
        ("gone.other.test.", "test. 86400 IN SOA a. b. 1 2 3 4 86400"),
        ("lost.other.test.", ". 86400 IN SOA a. b. 1 2 3 4 86400"),
    ):
        plant(w, store, name, "A", [], [soa], rcode=dns.rcode.NXDOMAIN)
        answer = w.resolve(name)
        assert w.last_queries > 0 and answer.authority[0].name == dns.name.from_text("other.test.")
    assert w.engine.stats.shared_dropped == 2 and w.engine.stats.shared_hits == 0


def test_a_shared_answer_never_overrides_what_the_member_learnt_itself(
    internet: TestInternet,
) -> None:
    """Fresh local data first: a value saying NXDOMAIN for a name this member holds an
    answer for does not change that answer."""
    store: dict[bytes, bytes] = {}
    w = world(internet, store, FakeClock())
    w.resolve("www.other.test.")
    plant(
        w,
        store,
        "www.other.test.",
        "AAAA",
        [],
        ["other.test. 86400 IN SOA a. b. 1 2 3 4 86400"],
        rcode=dns.rcode.NXDOMAIN,
    )
    w.resolve("www.other.test.", "AAAA")
    assert texts(w.resolve("www.other.test.").answer) == ["www.other.test. 120 IN A 198.51.100.1"]
    assert w.last_queries == 0


# -- split horizon: what this resolver routes itself is neither published nor taken -------------


def test_an_answer_from_local_data_is_not_published(internet: TestInternet) -> None:
    """The review's shape: local data aliases an internal name to a public one; the answer
    cost an upstream query (the public target) but must not reach members without that data."""
    store: dict[bytes, bytes] = {}
    clock = FakeClock()
    config = loopback_config(
        local_data=("intranet.corp.test. 300 IN CNAME www.example.test.",),
        shared_cache=SharedCacheConfig(url="redis://127.0.0.1:1", secret=SECRET),
    )
    member = ScriptedWorld(internet, config, clock=clock, shared=store)
    answer = member.resolve("intranet.corp.test.")
    assert texts(answer.answer)[0] == "intranet.corp.test. 300 IN CNAME www.example.test."
    assert member.last_queries > 0 and store == {}
    assert member.engine.stats.shared_stores == 0
    other = world(internet, store, clock)
    assert other.resolve("intranet.corp.test.").rcode == dns.rcode.NXDOMAIN


def test_answers_through_a_stub_zone_are_neither_published_nor_taken(
    internet: TestInternet,
) -> None:
    """A stub zone for example.test. (its real servers, here): the answers for its names, and
    a public chain that leads into it, stay with this member; and a value the fleet holds for a
    name in it is not asked for nor used (this member's routing decides that name)."""
    from resolver.config import StubZone

    store: dict[bytes, bytes] = {}
    clock = FakeClock()
    config = loopback_config(
        stub_zones=(StubZone("example.test.", ("127.53.2.1",)),),
        shared_cache=SharedCacheConfig(url="redis://127.0.0.1:1", secret=SECRET),
    )
    member = ScriptedWorld(internet, config, clock=clock, shared=store)
    assert member.resolve("www.example.test.").rcode == dns.rcode.NOERROR
    assert member.last_queries > 0 and store == {}
    public = world(internet, store, clock)
    public.resolve("www.other.test.")
    assert len(store) == 1  # a public answer is shared as before
    plant(public, store, "www.example.test.", "AAAA", ["www.example.test. 300 IN AAAA ::6"])
    lookups = member.engine.stats.shared_misses + member.engine.stats.shared_hits
    answer = member.resolve("www.example.test.", "AAAA")
    assert "::6" not in " ".join(texts(answer.answer)) and member.last_queries > 0
    assert member.engine.stats.shared_misses + member.engine.stats.shared_hits == lookups
