"""`resolver hitrate`: every figure of a small trace against a hand computation, in every input
format, with malformed and truncated input, and the fast model against the real engine.

The hand trace (`tests/hitrate_support.HAND`; seconds after T0, lifetimes as the largest TTL
seen: a 100 s, b 1000 s, c 100 s, nx.test and sub.nx.test NXDOMAIN min(SOA TTL, MINIMUM) = 30 s):

    t    0   10  20  30  40  50  60  70  75      95  120 130 140
    q    a   a   b   c   a   b   nx  nx  sub.nx  nx  a   b   c
    inf  m   H   m   m   H   H   m   H   m(*)    m   m   H   m     bound 5/13; (*) RFC 8020: 1
    LRU1 m   H   m   m   m   m   m   H   m       m   m   m   m     2/13
    LRU3 m   H   m   m   H   H   m   H   m       m   m   H   m     5/13

LRU3: at 60 nx evicts c; at 75 sub.nx evicts a; at 120 sub.nx (expired at 105) has been swept
(`ExpiringLru` drops an entry once its 16 s expiry bucket is past), so a goes in without
evicting b, and b hits at 130. With --max-ttl 50 (a, b, c live 50 s; negatives keep 30 s): the
bound loses b at 130 (4/13), LRU3 too (4/13). With --min-ttl 200 (everything lives at least
200 s): the bound gains nx at 95, a at 120, b at 130, c at 140 (8/13); LRU3 gains nx at 95 but
loses b at 130 (a evicts b at 120): 5/13.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import dns.message
import pytest

from resolver.config import CacheConfig
from resolver.hitrate.engine_replay import replay_engine
from resolver.hitrate.figures import Figures, compute
from resolver.hitrate.inputs import InputError, detect, read_files
from resolver.hitrate.simulate import Policy, bound, replay
from resolver.hitrate.trace import Query, Trace
from resolver.hitrate.wire import Malformed, summarise
from resolver.testing import TestInternet
from resolver.testing.captures import (
    ACK,
    Exchange,
    dnstap_message,
    dnstap_payloads,
    frame,
    fstrm,
    pb_bytes,
    tcp,
    udp,
    write_capture,
    write_dnstap,
    write_querylog,
)
from tests.hitrate_support import T0, hand_trace, internet_trace

REPO = Path(__file__).resolve().parent.parent
N = 13


def figures_of(
    path: Path, sizes: tuple[int, ...] = (1, 3), cache: CacheConfig | None = None
) -> Figures:
    trace = read_files([path])
    return compute(trace, [str(path)], list(sizes), cache or CacheConfig())


def essentials(figures: Figures) -> dict[str, object]:
    """Every figure, without what names the input (files, CPU time, what the reader skipped)."""
    data = asdict(figures)
    for key in ("files", "cpu_seconds", "notes"):
        del data[key]
    return data


@pytest.fixture
def pcap(tmp_path: Path) -> Path:
    return write_capture(tmp_path / "hand.pcap", hand_trace())


def test_every_figure_of_the_hand_trace(pcap: Path) -> None:
    figures = figures_of(pcap)
    assert figures.queries == N
    assert figures.bound_hits == 5 and figures.bound == pytest.approx(5 / N)
    assert [(s.entries, s.hits) for s in figures.sizes] == [(1, 2), (3, 5)]
    assert figures.sizes[0].hit_rate == pytest.approx(2 / N)
    assert figures.sizes[1].memory_bytes == 3 * (551 + 325)
    assert figures.nxdomain_queries == 4 and figures.nxdomain_share == pytest.approx(4 / N)
    assert figures.nxdomain_names == 2
    assert figures.aggressive_negative_saved == 1
    assert figures.bound_with_aggressive_negative == pytest.approx(6 / N)
    assert [(busy.name, busy.queries) for busy in figures.busiest[:3]] == [
        ("a.test.", 4),
        ("b.test.", 3),
        ("nx.test.", 3),
    ]
    assert figures.busiest[0].share == pytest.approx(4 / N)
    assert figures.distinct_names == 5 and figures.distinct_questions == 5
    assert figures.duration == 140
    # One hour: its rates are the totals.
    assert len(figures.hourly) == 1
    assert figures.hourly[0].queries == N
    assert figures.hourly[0].bound == pytest.approx(5 / N)
    assert figures.hourly[0].sizes == {"1": pytest.approx(2 / N), "3": pytest.approx(5 / N)}
    assert figures.default_caps_bound is None


def test_ttl_caps_against_the_hand_computation(pcap: Path) -> None:
    capped = figures_of(pcap, cache=CacheConfig(max_ttl=50))
    assert capped.bound_hits == 4
    assert capped.default_caps_bound == pytest.approx(5 / N)
    assert [s.hits for s in capped.sizes] == [2, 4]
    assert [s.default_caps_hit_rate for s in capped.sizes] == pytest.approx([2 / N, 5 / N])
    floored = figures_of(pcap, cache=CacheConfig(min_ttl=200))
    assert floored.bound_hits == 8
    assert [s.hits for s in floored.sizes] == [2, 5]


def test_hourly_curve_splits_by_the_hour() -> None:
    queries = [Query(T0 + t, "c", "a.test.", 1, 0, 600) for t in (0, 10, 3600, 3700, 3800, 7300)]
    figures = compute(Trace.build(queries), [], [1], CacheConfig())
    assert [hour.queries for hour in figures.hourly] == [2, 3, 1]
    assert [hour.bound for hour in figures.hourly] == pytest.approx([1 / 2, 2 / 3, 0.0])


@pytest.mark.parametrize(
    ("link", "ng"), [("ethernet", False), ("sll", False), ("sll2", True), ("raw", True)]
)
def test_pcap_pcapng_dnstap_and_the_query_log_give_the_same_figures(
    tmp_path: Path, link: str, ng: bool
) -> None:
    exchanges = hand_trace()
    capture = write_capture(tmp_path / "hand.cap", exchanges, link=link, ng=ng)
    reference = essentials(figures_of(capture, cache=CacheConfig(max_ttl=50)))
    assert reference["bound_hits"] == 4
    for path in (
        write_dnstap(tmp_path / "hand.dnstap", exchanges),
        write_querylog(tmp_path / "hand.log", exchanges),
    ):
        assert essentials(figures_of(path, cache=CacheConfig(max_ttl=50))) == reference


def test_the_test_internets_traffic_in_every_format(tmp_path: Path) -> None:
    """Real exchanges of the engine with the test internet: the bound of a resolver whose cache
    never evicted is the share it answered from its cache (4 of 12, by the INTERNET schedule),
    and every format says so."""
    exchanges, engine_hits = internet_trace(TestInternet.default())
    assert engine_hits == 4
    results = []
    for path in (
        write_capture(tmp_path / "internet.pcap", exchanges),
        write_capture(tmp_path / "internet.pcapng", exchanges, link="sll", ng=True),
        write_dnstap(tmp_path / "internet.dnstap", exchanges),
        write_querylog(tmp_path / "internet.log", exchanges),
    ):
        figures = figures_of(path, sizes=(2, 100))
        assert figures.bound_hits == engine_hits
        assert figures.aggressive_negative_saved == 1  # x.nope below nope.example.test.
        results.append(essentials(figures))
    assert all(result == results[0] for result in results)


def test_the_formats_are_told_apart_by_their_first_bytes(tmp_path: Path) -> None:
    exchanges = hand_trace()
    assert detect(write_capture(tmp_path / "a", exchanges)) == "pcap"
    assert detect(write_capture(tmp_path / "b", exchanges, ng=True)) == "pcap"
    assert detect(write_dnstap(tmp_path / "c", exchanges)) == "dnstap"
    assert detect(write_querylog(tmp_path / "d", exchanges)) == "querylog"
    (tmp_path / "e").write_bytes(b"GIF89a...")
    with pytest.raises(InputError, match="give --format"):
        detect(tmp_path / "e")


def test_several_files_in_any_order_make_one_trace(tmp_path: Path, pcap: Path) -> None:
    exchanges = hand_trace()
    first = write_capture(tmp_path / "first.pcap", exchanges[:6])
    second = write_dnstap(tmp_path / "second.dnstap", exchanges[6:])
    whole = essentials(figures_of(pcap))
    for order in ([first, second], [second, first]):
        trace = read_files(order)
        assert essentials(compute(trace, [], [1, 3], CacheConfig())) == whole


# -- bad input ----------------------------------------------------------------------------------


def test_malformed_packets_are_counted_and_skipped(tmp_path: Path, pcap: Path) -> None:
    query = dns.message.make_query("a.test.", "A", id=7).to_wire()
    when = T0 + 1
    junk = [
        (when, frame("ethernet", udp("192.0.2.9", 4000, "192.0.2.53", 53, b"\x00\x01garbage"))),
        (when, frame("ethernet", udp("192.0.2.9", 4001, "192.0.2.53", 53, query[:15]))),
        (when, frame("ethernet", b"\x45\x00\x00")),  # a cut IPv4 header
        (when, frame("ethernet", udp("192.0.2.9", 4002, "192.0.2.53", 5353, query))),  # mDNS
        (when, b"\xff" * 12 + b"\x08\x06" + b"\x00" * 28),  # ARP
        # TCP: a segment ahead of the one expected (the stream starts at seq 100)
        (when, frame("ethernet", tcp("192.0.2.9", 4003, "192.0.2.53", 53, 99, 0x02))),
        (when, frame("ethernet", tcp("192.0.2.9", 4003, "192.0.2.53", 53, 150, ACK, b"xx"))),
        (when, frame("ethernet", tcp("192.0.2.9", 4003, "192.0.2.53", 53, 152, ACK, b"yy"))),
    ]
    dirty = write_capture(tmp_path / "dirty.pcap", hand_trace(), extra=junk)
    trace = read_files([dirty])
    notes = trace.notes
    assert notes.malformed == 3 and notes.not_dns == 2 and notes.tcp_gaps == 2
    assert essentials(compute(trace, [], [1, 3], CacheConfig())) == essentials(figures_of(pcap))


def test_a_truncated_capture_ends_the_input_with_a_note(tmp_path: Path, pcap: Path) -> None:
    data = pcap.read_bytes()
    for ng in (False, True):
        whole = write_capture(tmp_path / "whole", hand_trace(), ng=ng).read_bytes()
        cut = tmp_path / f"cut-{ng}.pcap"
        cut.write_bytes(whole[: len(whole) - 30])  # inside the last packet (c's response)
        trace = read_files([cut])
        assert len(trace) == N - 1  # c at 140 lost its response
        assert trace.notes.unanswered == 1
        assert any("ends in the middle" in note for note in trace.notes.messages)
    assert data


def test_dnstap_garbage_frames_and_truncation(tmp_path: Path) -> None:
    payloads = dnstap_payloads(hand_trace())
    bad = [
        b"\xff\xff\xff",  # not protobuf
        pb_bytes(14, b"\x08\x05\x22\x03abc"),  # a client query with a 3-byte address
        dnstap_message(5, "192.0.2.9", 1, T0, b"\x00\x01"),  # a DNS message too short
    ]
    path = tmp_path / "bad.dnstap"
    path.write_bytes(fstrm(payloads[:4] + bad + payloads[4:]))
    trace = read_files([path])
    assert trace.notes.malformed == 3 and len(trace) == N
    whole = fstrm(payloads)
    path.write_bytes(whole[:-20])  # no STOP, and the last frame cut
    trace = read_files([path])
    assert len(trace) == N - 1
    assert any("middle of a frame" in note for note in trace.notes.messages)


def test_query_log_lines_that_do_not_parse(tmp_path: Path) -> None:
    path = write_querylog(tmp_path / "q.log", hand_trace())
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(3, "2026-11-27T04:58:01Z 127.0.0.1 www.example.test. A NOERROR udp 1.913\n")
    lines.insert(4, "not a line at all\n")
    lines.insert(5, "2026-99-27T04:58:01.000Z 127.0.0.1 x.test. A NOERROR udp 1.0 30\n")
    lines.append("2026-11-27T04:58:01.000Z 127.0.0.1 x.test. A NOERR")  # cut
    path.write_text("".join(lines))
    trace = read_files([path])
    assert len(trace) == N and trace.notes.malformed == 3
    assert any("without the TTL field" in note for note in trace.notes.messages)
    assert any("cut short" in note for note in trace.notes.messages)


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"\x00" * 11,
        b"\x00\x01\x81\x80\x00\x02" + b"\x00" * 6,
        b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x01a\x00",
    ],
)
def test_summarise_refuses_what_is_not_a_message(wire: bytes) -> None:
    with pytest.raises(Malformed):
        summarise(wire)


def test_summarise_never_raises_anything_else() -> None:
    rng = random.Random(3)
    real = [exchange.response for exchange in hand_trace()]
    for _ in range(3000):
        wire = bytearray(rng.choice(real))
        for _ in range(rng.randint(1, 4)):
            wire[rng.randrange(len(wire))] = rng.randrange(256)
        wire = wire[: rng.randint(0, len(wire))]
        with contextlib.suppress(Malformed):
            summarise(bytes(wire))


# -- prefetch, serve-stale, and the engine ------------------------------------------------------


def test_prefetch_refreshes_a_hit_in_the_last_tenth() -> None:
    """a lives 100 s: at 95 a hit in the last 10% refreshes it, so 150 hits too."""
    trace = Trace.build([Query(T0 + t, "c", "a.test.", 1, 0, 100) for t in (0, 95, 150)])
    plain = replay(trace, 10, Policy.of(CacheConfig()))
    prefetched = replay(trace, 10, Policy.of(CacheConfig(), prefetch=True))
    assert (plain.hits, plain.prefetches) == (1, 0)
    assert (prefetched.hits, prefetched.prefetches) == (2, 1)


def test_serve_stale_answers_failed_and_slow_refreshes_from_expired_data() -> None:
    queries = [
        Query(T0, "c", "a.test.", 1, 0, 100, 0.01),
        Query(T0 + 150, "c", "a.test.", 1, 2, None, 0.5),  # SERVFAIL: stale answer
        Query(T0 + 300, "c", "a.test.", 1, 0, 100, 2.5),  # slower than 1.8 s: stale answer
        Query(T0 + 350, "c", "a.test.", 1, 0, 100, 0.01),  # the slow refresh was cached: hit
        Query(T0 + 200_000, "c", "a.test.", 1, 2, None, 0.5),  # expired too long ago
    ]
    trace = Trace.build(queries)
    plain = replay(trace, 10, Policy.of(CacheConfig()))
    stale = replay(trace, 10, Policy.of(CacheConfig(), serve_stale=True))
    assert (plain.hits, plain.stale) == (1, 0)
    assert (stale.hits, stale.stale) == (1, 2)


def _random_trace(count: int, seed: int) -> Trace:
    rng = random.Random(seed)
    names = [f"n{i}.z{i % 7}.test." for i in range(300)]
    ttls = {name: rng.choice([30, 60, 300, 900, 3600]) for name in names}
    missing = set(rng.sample(names, 30))
    queries, now = [], T0
    for _ in range(count):
        now += rng.expovariate(1 / 2.0)
        name = names[min(int(rng.paretovariate(0.8)), 300) - 1]
        qtype = rng.choice([1, 1, 1, 28])
        if name in missing:
            queries.append(Query(now, "c", name, qtype, 3, 120))
        else:
            queries.append(Query(now, "c", name, qtype, 0, ttls[name]))
    return Trace.build(queries)


def test_the_fast_model_and_the_engine_agree() -> None:
    """The same trace through the model and through the real `Engine` (behind a forwarder
    scripted from the trace): identical once the cache holds the working set, within a point
    below it (the engine's record cache holds an NXDOMAIN once for all types, its packet cache
    once per question: two caches of N entries hold a little more than N questions)."""
    trace = _random_trace(1500, 5)
    policy = Policy.of(CacheConfig())
    hand = Trace.build(read_hand())
    for size in (1, 2, 3, 4):
        assert replay(hand, size, policy).hits == replay_engine(hand, size, policy).hits
    for size in (trace.distinct_questions(), 10 * trace.distinct_questions()):
        model, engine = replay(trace, size, policy), replay_engine(trace, size, policy)
        assert model.hits == engine.hits == bound(trace, policy).hits
    model, engine = replay(trace, 10, policy), replay_engine(trace, 10, policy)
    assert model.hits < bound(trace, policy).hits
    assert abs(model.hit_rate - engine.hit_rate) <= 0.01
    with_prefetch = replace(policy, prefetch=True)
    size = trace.distinct_questions()
    model, engine = replay(trace, size, with_prefetch), replay_engine(trace, size, with_prefetch)
    assert model.prefetches > 0
    assert abs(model.hit_rate - engine.hit_rate) <= 0.01


def read_hand() -> list[Query]:
    from resolver.hitrate.pairing import Pairer
    from resolver.hitrate.trace import Notes

    pairer = Pairer(Notes())
    for exchange in hand_trace():
        pairer.message(exchange.time, exchange.client, exchange.port, exchange.query)
        pairer.message(exchange.time + 0.005, exchange.client, exchange.port, exchange.response)
    return pairer.finish()


# -- the command --------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resolver", "hitrate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_the_command_end_to_end(tmp_path: Path, pcap: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "figures.json"
    plot = tmp_path / "plot.png"
    done = run(
        str(pcap), "--cache-size", "3", "--cache-size", "1", "--max-ttl", "50",
        "--prefetch", "--serve-stale", "--json", str(out), "--plot", str(plot),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    assert "infinite-cache bound: 30.77% (4 of 13 queries" in done.stdout
    assert "with the default TTL caps: 38.46%" in done.stdout
    assert "aggressive negative caching (RFC 8020) would answer 1 more" in done.stdout
    data = json.loads(out.read_text())
    assert data["bound_hits"] == 4
    assert [(s["entries"], s["hits"]) for s in data["sizes"]] == [(1, 2), (3, 4)]
    assert data["settings"]["max_ttl"] == 50
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "plot-hourly.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_engine_replays_through_the_resolvers_engine(tmp_path: Path, pcap: Path) -> None:
    """`--engine`: each cache size through the real `Engine`; on the hand trace it gives the
    hand-computed hits (the same as the model), the hourly curve included, and says so."""
    figures = {}
    for args in ((), ("--engine",)):
        out = tmp_path / f"figures{len(args)}.json"
        done = run(str(pcap), "--cache-size", "1", "--cache-size", "3", "--json", str(out), *args)
        assert done.returncode == 0, done.stderr
        figures[bool(args)] = json.loads(out.read_text())
    model, engine = figures[False], figures[True]
    assert [(s["entries"], s["hits"]) for s in engine["sizes"]] == [(1, 2), (3, 5)]
    assert engine["sizes"] == model["sizes"] and engine["hourly"] == model["hourly"]
    assert engine["model"].startswith("the resolver's own Engine")
    assert model["model"].startswith("question cache")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cache-size", "0"], "--cache-size"),
        (["--max-ttl", "-1"], "--max-ttl"),
        (["--min-ttl", "100", "--max-ttl", "50"], "--min-ttl"),
        (["--format", "csv"], "--format"),
    ],
)
def test_bad_options_are_named(pcap: Path, args: list[str], message: str) -> None:
    done = run(str(pcap), *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_unreadable_input_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x01\x02\x03\x04 nothing")
    done = run(str(junk))
    assert done.returncode == 1
    assert done.stderr.startswith("resolver: error:") and "give --format" in done.stderr
    done = run(str(junk), "--format", "pcap")
    assert done.returncode == 1 and "not a capture" in done.stderr
    done = run(str(tmp_path / "missing.pcap"))
    assert done.returncode == 1 and "missing.pcap: No such file or directory" in done.stderr


def test_captures_are_read_without_dpkt(pcap: Path) -> None:
    """The reader is our own (`pcapfile`): dpkt is only the tests' writer."""
    code = (
        "import sys; sys.modules['dpkt'] = None; from resolver.cli import main; "
        f"sys.argv = ['resolver', 'hitrate', {str(pcap)!r}]; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "infinite-cache bound: 38.46% (5 of 13 queries" in done.stdout


def test_an_exchange_is_what_the_tests_say() -> None:
    """The writers' input: hits carry aged TTLs, so the trace must take the largest."""
    exchanges = hand_trace()
    assert isinstance(exchanges[0], Exchange)
    assert summarise(exchanges[1].response).ttl == 90
    assert Trace.build(read_hand()).lifetimes[0] == 100
