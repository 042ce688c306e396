"""DNSSEC signatures and denial proofs through the two carriers that keep cache data outside the
process: the dump / persistent file (`cache/dump.py`) and the shared cache (`cache/shared.py`,
`engine/shared.py`).

Signed data that came back without its RRSIGs would be judged bogus by the validator, and data
that came back SECURE would let a file or a Redis writer vouch for it: both must bring back
every signature and proof, attached to its entry, with TTLs aged, and always INDETERMINATE.
The signatures are real (`resolver.testing.signing`), and each test checks they still
verify after the trip, so a text or wire round trip that mangled a byte would fail here.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.rcode
import dns.rdataset
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
from resolver.cache.records import Rank, RecordCache
from resolver.cache.shared import (
    MAC_SIZE,
    MAGIC,
    VERSION,
    Rejected,
    SharedAnswer,
    decode,
    encode,
)
from resolver.config import CacheConfig, SharedCacheConfig
from resolver.core.actions import Answer
from resolver.core.security import Security
from resolver.engine.shared import SharedCache
from resolver.engine.stats import Stats
from resolver.testing import TestInternet
from resolver.testing.signing import NOW, dnskey_rrset, make_key, rrset, rrsigs, sign
from tests.daemon_support import free_port, running_daemon
from tests.helpers import loopback_config
from tests.test_daemon import dig, dig_path

__all__ = ["dig_path"]

ZONE = dns.name.from_text("example.sec.")
KEY = make_key("example.sec.", seed="7")
KEYS: dict[dns.name.Name, dns.node.Node | dns.rdataset.Rdataset] = {ZONE: dnskey_rrset(ZONE, KEY)}
#: The size of a shared-cache value's header (`cache/shared.py`): the message follows it.
HEADER = struct.calcsize("!3sBdd")
WWW = dns.name.from_text("www.example.sec.")
NOPE = dns.name.from_text("nope.example.sec.")
A = dns.rdatatype.A


def signed(data: dns.rrset.RRset) -> dns.rrset.RRset:
    """The RRSIG RRset of `data`, made with the zone's key."""
    return rrsigs(data, sign(data, KEY, ZONE))


def verifies(data: dns.rrset.RRset, sigs: dns.rrset.RRset | None) -> bool:
    """Whether `sigs` still verify `data` with the zone's key (at the keys' fixed time)."""
    if sigs is None:
        return False
    try:
        dns.dnssec.validate(data, sigs, KEYS, now=NOW)
    except dns.dnssec.ValidationFailure:
        return False
    return True


WWW_A = rrset(WWW, "A", "192.0.2.1", "192.0.2.2", ttl=300)
WWW_SIGS = signed(WWW_A)
SOA = rrset(ZONE, "SOA", "ns.example.sec. hostmaster.example.sec. 1 7200 3600 1209600 600", ttl=600)
SOA_SIGS = signed(SOA)
# The NSEC that covers nope.example.sec. (between mail and www), and the one at the apex that
# shows no wildcard exists: an NXDOMAIN proof (RFC 4035 3.1.3.2).
NSEC_MAIL = rrset("mail.example.sec.", "NSEC", "www.example.sec. A RRSIG NSEC", ttl=600)
NSEC_APEX = rrset(ZONE, "NSEC", "mail.example.sec. SOA NS RRSIG NSEC DNSKEY", ttl=600)
PROOF = (SOA_SIGS, NSEC_MAIL, signed(NSEC_MAIL), NSEC_APEX, signed(NSEC_APEX))


class Clock:
    def __init__(self, now: float = float(NOW)) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signed_cache(clock: Clock) -> RecordCache:
    """A cache holding a validated signed RRset, a validated NXDOMAIN with its proof, and a
    bogus RRset (which must never leave the process)."""
    cache = RecordCache(CacheConfig(), clock)
    cache.put_rrset(WWW_A, Rank.ANSWER, signatures=WWW_SIGS, security=Security.SECURE)
    cache.put_negative(NOPE, None, dns.rcode.NXDOMAIN, SOA, proof=PROOF, security=Security.SECURE)
    bad = rrset("bad.example.sec.", "A", "6.6.6.6", ttl=300)
    cache.put_rrset(bad, Rank.ANSWER, signatures=signed(WWW_A), security=Security.BOGUS)
    return cache


def dump_text(cache: RecordCache, clock: Clock) -> str:
    return "".join(format_dump(snapshot(list(cache.export()), clock())))


def records(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith((";", "$"))]


def loaded(text: str, clock: Clock) -> tuple[RecordCache, Restored]:
    cache = RecordCache(CacheConfig(), clock)
    dump = parse_dump(text)
    outcome = Restored()
    restore(cache, dump.entries, clock() - dump.written_at, outcome)
    return cache, outcome


# -- the dump ----------------------------------------------------------------------------------


def test_a_dump_writes_rrsig_and_proof_lines_after_their_entry_and_no_status() -> None:
    clock = Clock()
    cache = signed_cache(clock)
    clock.now += 10
    text = dump_text(cache, clock)
    lines = records(text)
    assert "$VERSION 2" in text.splitlines()
    kinds = [line.split()[0] for line in lines]
    assert kinds == ["answer", "answer", "rrsig", "nxdomain", *["proof"] * 5], lines
    rrsig = lines[2].split()
    assert rrsig[:6] == ["rrsig", "www.example.sec.", "290", "IN", "RRSIG", "A"]
    assert lines[3].startswith("nxdomain nope.example.sec. example.sec. 590 IN SOA ")
    assert lines[4].startswith("proof example.sec. 590 IN RRSIG SOA ")
    assert lines[5] == "proof mail.example.sec. 590 IN NSEC www.example.sec. A RRSIG NSEC"
    assert "bad.example.sec." not in text, "a bogus entry is never dumped"
    assert not {"secure", "insecure", "bogus", "indeterminate"} & set(kinds), "no status"


def test_signatures_and_proofs_survive_a_dump_and_load_attached_aged_and_indeterminate() -> None:
    clock = Clock()
    text = dump_text(signed_cache(clock), clock)
    clock.now += 100  # the restart took 100 s
    cache, outcome = loaded(text, clock)
    assert outcome == Restored(loaded=2, expired=0, kept=0)

    found = cache.get_signed(WWW, A, min_rank=Rank.ANSWER)
    assert found is not None
    assert found.security is Security.INDETERMINATE, "validated again, never trusted from a file"
    assert found.rrset == WWW_A and found.rrset.ttl == 200
    assert found.signatures is not None and found.signatures.ttl == 200
    assert set(found.signatures) == set(WWW_SIGS)
    assert verifies(found.rrset, found.signatures), "the signature bytes came back intact"

    negative = cache.get_negative(NOPE, A)
    assert negative is not None and negative.rcode == dns.rcode.NXDOMAIN
    assert negative.security is Security.INDETERMINATE
    assert negative.soa.ttl == 500
    assert [(r.name, r.rdtype, r.covers) for r in negative.proof] == [
        (r.name, r.rdtype, r.covers) for r in PROOF
    ]
    assert all(held.ttl == 500 for held in negative.proof), "proofs age with their denial"
    assert verifies(negative.soa, negative.proof[0])
    assert verifies(negative.proof[1], negative.proof[2])
    assert verifies(negative.proof[3], negative.proof[4])


def test_merging_worker_dumps_keeps_the_signatures_with_the_copy_kept() -> None:
    clock = Clock()
    first = snapshot(list(signed_cache(clock).export()), clock())
    clock.now += 50
    later = RecordCache(CacheConfig(), clock)
    later.put_rrset(rrset("other.example.sec.", "A", "192.0.2.9"), Rank.ANSWER)
    merged = merge([first, snapshot(list(later.export()), clock())])
    cache, _outcome = loaded("".join(format_dump(merged)), clock)
    found = cache.get_signed(WWW, A)
    assert found is not None and found.rrset.ttl == 250
    assert found.signatures is not None and verifies(found.rrset, found.signatures)
    negative = cache.get_negative(NOPE, A)
    assert negative is not None and len(negative.proof) == 5
    assert max(held.ttl for held in negative.proof) == 550


def test_a_dump_line_that_claims_a_status_is_ignored() -> None:
    """Nothing in a file can make data secure: a `secure` line is skipped and counted, and a
    status written after a record as a comment is a comment."""
    clock = Clock()
    text = dump_text(signed_cache(clock), clock)
    forged = text + (
        "secure forged.example.sec. 300 IN A 6.6.6.6\n"
        "answer status.example.sec. 300 IN A 192.0.2.7 ; secure\n"
    )
    dump = parse_dump(forged)
    assert dump.dropped == 1
    cache, outcome = loaded(forged, clock)
    assert outcome.loaded == 3
    assert cache.get_rrset(dns.name.from_text("forged.example.sec."), A) is None
    for name in (WWW, dns.name.from_text("status.example.sec.")):
        found = cache.get_signed(name, A)
        assert found is not None and found.security is Security.INDETERMINATE


GOOD = (
    "$VERSION 2\n$TIME 1796083200\n"
    "answer ok.example.sec. 300 IN A 192.0.2.3\n"
    f"rrsig {signed(rrset('ok.example.sec.', 'A', '192.0.2.3', ttl=300)).to_text()}\n"
)


@pytest.mark.parametrize(
    ("lines", "dropped"),
    [
        # a signature that cannot be read: dropped with its entry (which would turn bogus)
        (
            "answer www.example.sec. 300 IN A 192.0.2.1\n"
            "rrsig www.example.sec. 300 IN RRSIG A 15 3 300 garbage\n",
            2,
        ),
        # the RRSIG of another owner, or covering another type
        (
            "answer www.example.sec. 300 IN A 192.0.2.1\n"
            f"rrsig {signed(rrset('ok.example.sec.', 'A', '192.0.2.3')).to_text()}\n",
            2,
        ),
        (
            "answer www.example.sec. 300 IN A 192.0.2.1\n"
            f"rrsig {signed(rrset(WWW, 'AAAA', '2001:db8::1')).to_text()}\n",
            2,
        ),
        # not an RRSIG at all
        (
            "answer www.example.sec. 300 IN A 192.0.2.1\nrrsig www.example.sec. 300 IN A 6.6.6.6\n",
            2,
        ),
        # a proof record that is no part of a denial, or outside the SOA's zone
        (
            f"nxdomain nope.example.sec. {SOA.to_text()}\n"
            "proof nope.example.sec. 300 IN A 6.6.6.6\n",
            2,
        ),
        (
            f"nxdomain nope.example.sec. {SOA.to_text()}\n"
            "proof a.other.test. 300 IN NSEC z.other.test. A RRSIG NSEC\n",
            2,
        ),
        # an RRSIG line after a negative answer, a proof line after an RRset
        (f"nodata www.example.sec. MX {SOA.to_text()}\nrrsig {WWW_SIGS.to_text()}\n", 2),
        (f"answer www.example.sec. 300 IN A 192.0.2.1\nproof {NSEC_MAIL.to_text()}\n", 2),
    ],
)
def test_a_signature_or_proof_line_that_does_not_belong_is_dropped_and_counted(
    lines: str, dropped: int
) -> None:
    dump = parse_dump(GOOD + lines)
    assert dump.dropped == dropped
    (entry,) = dump.entries  # the entry it followed is left out; the rest of the dump is used
    assert isinstance(entry, DumpedRRset) and entry.rrset.name == dns.name.from_text(
        "ok.example.sec."
    )
    cache, _outcome = loaded(GOOD + lines, Clock(1796083210.0))
    found = cache.get_signed(dns.name.from_text("ok.example.sec."), A)
    assert found is not None and verifies(found.rrset, found.signatures)
    assert cache.get_rrset(WWW, A) is None and cache.get_negative(NOPE, A) is None


def test_a_signature_line_before_any_entry_is_dropped() -> None:
    dump = parse_dump(f"$VERSION 2\n$TIME 1\nrrsig {WWW_SIGS.to_text()}\n")
    assert dump.entries == [] and dump.dropped == 1


def test_a_version_1_dump_is_refused_and_the_persist_file_ignored_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from resolver.server import persist

    old = "$VERSION 1\n$TIME 1000\nanswer www.example.sec. 300 IN A 192.0.2.1\n"
    with pytest.raises(DumpError, match="format version 1; this resolver reads 2"):
        parse_dump(old)
    path = tmp_path / "cache.txt"
    path.write_text(old, encoding="utf-8")
    path.chmod(0o600)
    cache = RecordCache(CacheConfig(), lambda: 1010.0)
    with caplog.at_level("INFO"):
        assert persist.load(path, cache, 1010.0, 100) is None
    assert len(cache) == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"cache file {path} ignored (line 1: format version 1; this resolver reads 2): "
        "starting with an empty cache"
    ]


# -- the shared cache --------------------------------------------------------------------------


def signed_value(stored_at: float = float(NOW)) -> bytes:
    encoded = encode(WWW, A, dns.rcode.NOERROR, (WWW_A,), (), stored_at, signatures=(WWW_SIGS,))
    assert encoded is not None and encoded[1] == 300
    return encoded[0]


def negative_value(stored_at: float = float(NOW)) -> bytes:
    encoded = encode(NOPE, A, dns.rcode.NXDOMAIN, (), (SOA,), stored_at, proof=PROOF)
    assert encoded is not None
    return encoded[0]


def test_a_value_carries_the_do_answer_and_decodes_with_signatures_attached_and_aged() -> None:
    value = signed_value()
    assert value[3] == VERSION == 3
    message = dns.message.from_wire(value[HEADER:])
    assert [r.rdtype for r in message.answer] == [A, dns.rdatatype.RRSIG]
    assert not message.flags & dns.flags.AD, "no status is written"
    checked = decode(value, WWW, A, NOW + 100, max_chain=12)
    assert isinstance(checked, SharedAnswer) and checked.dropped == 0
    (sigs,) = checked.signatures
    assert sigs is not None and sigs.ttl == 200 and checked.chain[0].ttl == 200
    assert verifies(checked.chain[0], sigs)

    negative = decode(negative_value(), NOPE, A, NOW + 100, max_chain=12)
    assert isinstance(negative, SharedAnswer) and negative.rcode == dns.rcode.NXDOMAIN
    assert negative.soa is not None and negative.soa.ttl == 500
    assert [r.to_text() for r in negative.proof] == [
        r.to_text().replace(" 600 IN ", " 500 IN ") for r in PROOF
    ]
    assert verifies(negative.proof[1], negative.proof[2])


def shared_cache(clock: Clock) -> tuple[SharedCache, RecordCache, Stats]:
    config = loopback_config(
        shared_cache=SharedCacheConfig(url="redis://127.0.0.1:1", secret="x" * 32)
    )
    cache = RecordCache(config.cache, clock)
    stats = Stats()
    return SharedCache(config, cache, stats), cache, stats


def sealed(shared: SharedCache, qname: dns.name.Name, value: bytes) -> bytes:
    """`value` as a member with the secret writes it under the key of (qname, A)."""
    return shared.seal(shared.key(qname, A), value)


def test_a_shared_hit_is_handed_to_its_question_attached_and_indeterminate() -> None:
    """The links of a value keep their RRSIGs and proof, INDETERMINATE and detached (the
    validator writes no verdict on them into the record cache), and none of it enters the
    record cache (`core/shared.py`)."""
    clock = Clock(float(NOW) + 30)
    shared, cache, stats = shared_cache(clock)
    steps = shared.use(sealed(shared, WWW, signed_value()), WWW, A, clock())
    assert steps is not None and not steps.stale
    step = steps.step(WWW)
    assert step is not None and step.detached and step.security is Security.INDETERMINATE
    (found,) = step.records
    assert found.ttl == 270 and verifies(found, step.signatures[0])
    assert cache.get_rrset(WWW, A) is None
    steps = shared.use(sealed(shared, NOPE, negative_value()), NOPE, A, clock())
    assert steps is not None
    negative = steps.step(NOPE)
    assert negative is not None and negative.rcode == dns.rcode.NXDOMAIN and negative.detached
    assert negative.security is Security.INDETERMINATE
    assert len(negative.proof) == 5 and {r.ttl for r in negative.proof} == {570}
    assert cache.get_negative(NOPE, A) is None
    assert stats.shared_hits == 2 and stats.shared_dropped_records == 0


def test_a_value_that_claims_a_status_is_not_believed() -> None:
    """AD set in the stored message (what a forger would try) changes nothing: INDETERMINATE."""
    message = dns.message.from_wire(signed_value()[HEADER:])
    message.flags |= dns.flags.AD
    value = signed_value()[:HEADER] + message.to_wire()
    clock = Clock(float(NOW) + 1)
    shared, _cache, _stats = shared_cache(clock)
    steps = shared.use(sealed(shared, WWW, value), WWW, A, clock())
    assert steps is not None
    step = steps.step(WWW)
    assert step is not None and step.security is Security.INDETERMINATE


def forged_value(
    qname: dns.name.Name,
    answer: list[dns.rrset.RRset],
    authority: list[dns.rrset.RRset],
    rcode: int = 0,
) -> bytes:
    message = dns.message.make_response(dns.message.make_query(qname, A))
    message.set_rcode(dns.rcode.Rcode(rcode))
    message.answer = answer
    message.authority = authority
    return signed_value()[:HEADER] + message.to_wire()


def test_signatures_and_proof_records_that_do_not_belong_are_dropped_and_counted() -> None:
    other = rrset("other.example.sec.", "A", "192.0.2.9", ttl=300)
    stray = [signed(other), signed(rrset(WWW, "AAAA", "2001:db8::1", ttl=300))]
    value = forged_value(WWW, [WWW_A, WWW_SIGS, *stray], [])
    clock = Clock(float(NOW) + 1)
    shared, cache, stats = shared_cache(clock)
    checked = decode(value, WWW, A, clock(), max_chain=12)
    assert isinstance(checked, SharedAnswer) and checked.dropped == 2
    steps = shared.use(sealed(shared, WWW, value), WWW, A, clock())
    assert steps is not None and stats.shared_dropped_records == 2
    step = steps.step(WWW)
    assert step is not None and len(step.signatures) == 1
    assert set(step.signatures[0]) == set(WWW_SIGS), "only the RRSIG of the RRset kept"
    assert steps.step(other.name) is None and cache.get_rrset(other.name, A) is None

    # A denial with an address record, an NSEC of another zone and an RRSIG of the SOA
    # at another owner in its authority section: the proof keeps only what proves it.
    outside = rrset("a.other.test.", "NSEC", "z.other.test. A RRSIG NSEC", ttl=600)
    bad_soa_sig = rrset("x.example.sec.", "RRSIG", SOA_SIGS[0].to_text(), ttl=600)
    extra = [rrset("evil.example.sec.", "A", "6.6.6.6"), outside, bad_soa_sig]
    value = forged_value(NOPE, [], [SOA, *PROOF, *extra], rcode=dns.rcode.NXDOMAIN)
    checked = decode(value, NOPE, A, clock(), max_chain=12)
    assert isinstance(checked, SharedAnswer) and checked.dropped == 3
    assert len(checked.proof) == 5
    assert shared.use(sealed(shared, NOPE, value), NOPE, A, clock()) is not None
    assert stats.shared_dropped_records == 5
    assert cache.get_rrset(dns.name.from_text("evil.example.sec."), A) is None


def test_mangled_signed_values_never_crash_decode() -> None:
    rng = random.Random(10)
    values = [signed_value(), negative_value()]
    for _ in range(2000):
        value = bytearray(rng.choice(values))
        for _flip in range(rng.randint(1, 4)):
            value[rng.randrange(HEADER, len(value))] = rng.randrange(256)
        for qname in (WWW, NOPE):
            result = decode(bytes(value), qname, A, NOW + 1, max_chain=12)
            assert isinstance(result, SharedAnswer | Rejected)


def test_a_bogus_answer_is_never_stored_and_the_store_carries_signatures() -> None:
    clock = Clock()
    shared, _cache, _stats = shared_cache(clock)
    bogus = Answer(dns.rcode.NOERROR, (WWW_A,), signatures=(WWW_SIGS,), security=Security.BOGUS)
    assert shared.store(WWW, A, bogus, clock(), 0.0) is None
    for security in (Security.INDETERMINATE, Security.SECURE, Security.INSECURE):
        answer = Answer(dns.rcode.NOERROR, (WWW_A,), signatures=(WWW_SIGS,), security=security)
        store = shared.store(WWW, A, answer, clock(), 0.0)
        assert store is not None and store.value[:3] == MAGIC
        checked = decode(store.value[:-MAC_SIZE], WWW, A, clock() + 1, max_chain=12)
        assert isinstance(checked, SharedAnswer) and checked.signatures[0] is not None
    nx = Answer(dns.rcode.NXDOMAIN, authority=(SOA,), proof=PROOF)
    store = shared.store(NOPE, A, nx, clock(), 0.0)
    assert store is not None
    checked = decode(store.value[:-MAC_SIZE], NOPE, A, clock() + 1, max_chain=12)
    assert isinstance(checked, SharedAnswer) and len(checked.proof) == 5


# -- through the real daemon -------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_internet() -> TestInternet:
    return TestInternet.signed()


@pytest.fixture
def signed_hints(signed_internet: TestInternet, tmp_path: Path) -> Iterator[Path]:
    with signed_internet.in_thread():
        yield signed_internet.write_hints(tmp_path / "signed.hints")


def asked(internet: TestInternet, name: str, rdtype: str) -> int:
    """Upstream queries for exactly (name, rdtype), at every server."""
    wanted = (dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
    return sum(
        (query.qname, query.qtype) == wanted
        for server in internet.servers.values()
        for query in server.queries
    )


def test_dig_dnssec_after_a_restart_gets_the_rrsigs_from_the_persist_file(
    signed_hints: Path, signed_internet: TestInternet, tmp_path: Path, dig_path: str
) -> None:
    port = free_port()
    cache_file = tmp_path / "cache.txt"
    config = tmp_path / "resolver.toml"
    config.write_text(f'[cache]\npersist_file = "{cache_file}"\n', encoding="utf-8")
    args = ["--config", str(config)]
    anchor = signed_internet.write_trust_anchor(tmp_path / "root.key")
    with running_daemon(signed_hints, [f"127.0.0.1:{port}"], args, trust_anchor=anchor):
        before = dig(dig_path, "www.nsec.sec.", "A", "+dnssec", port=port)
        denial = dig(dig_path, "nx.nsec3.sec.", "A", "+dnssec", port=port)
    assert [r.rdtype for r in before.answer] == ["A", "RRSIG"]
    assert denial.status == "NXDOMAIN"
    text = cache_file.read_text(encoding="utf-8")
    assert "\nrrsig www.nsec.sec. " in text and "\nproof " in text

    time.sleep(1.1)
    signed_internet.reset_counters()
    with running_daemon(signed_hints, [f"127.0.0.1:{port}"], args, trust_anchor=anchor) as daemon:
        after = dig(dig_path, "www.nsec.sec.", "A", "+dnssec", port=port)
        again = dig(dig_path, "nx.nsec3.sec.", "A", "+dnssec", port=port)
        assert asked(signed_internet, "www.nsec.sec.", "A") == 0, "the data came from the file"
        assert asked(signed_internet, "nx.nsec3.sec.", "A") == 0
        assert "entries loaded" in daemon.stderr_text()
    assert after.status == "NOERROR"
    assert [(r.rdtype, r.data) for r in after.answer] == [
        (r.rdtype, r.data) for r in before.answer
    ], "the same A record and the same RRSIG, byte for byte"
    assert all(new.ttl < old.ttl for new, old in zip(after.answer, before.answer, strict=True))
    assert again.status == "NXDOMAIN"
    assert sorted((r.rdtype, r.data) for r in again.authority) == sorted(
        (r.rdtype, r.data) for r in denial.authority
    ), "the SOA, the NSEC3 records and every RRSIG of the denial"
    assert {"NSEC3", "RRSIG", "SOA"} <= {r.rdtype for r in again.authority}
