"""The same trace through the real `Engine`: the reference the fast model is checked against.

The engine sits behind one forwarder (a forward zone for `.`), and the forwarder is scripted
from the trace: each question is answered with what the trace says of it (its rcode, and its
lifetime as `Trace` settled it: the largest TTL seen), so the engine caches exactly what the
model does. Time is the trace's own, on a fake clock. A hit is what the engine counts as one
(`Stats.cache_misses` unchanged: the client's query needed no upstream query).

Too slow for real traces (see `benchmarks/hitrate_speed.py`); `tests/test_hitrate.py` runs
both on the same trace and checks that they agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from resolver.config import CacheConfig, Config, ForwardZone
from resolver.core.hints import parse_root_hints
from resolver.dnssec import TrustAnchors
from resolver.engine import Client, Engine, Send
from resolver.hitrate.simulate import Policy, Replay, hours
from resolver.hitrate.trace import Outcome, Trace
from resolver.testing.scripted import FakeClock, drive

FORWARDER = "192.0.2.53"
_HINTS = ". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 192.0.2.1\n"

#: Rdata given to positive answers of each type (the replay needs records, not their content).
_RDATA = {
    dns.rdatatype.A: "192.0.2.1",
    dns.rdatatype.AAAA: "2001:db8::1",
    dns.rdatatype.TXT: '"replayed"',
    dns.rdatatype.MX: "10 mail.invalid.",
    dns.rdatatype.NS: "ns.invalid.",
    dns.rdatatype.PTR: "host.invalid.",
}


def _answer(query: dns.message.Message, kind: int, ttl: int) -> bytes:
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.RA
    question = query.question[0]
    if kind == Outcome.POSITIVE and question.rdtype in _RDATA:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, question.rdtype, _RDATA[question.rdtype])
        reply.answer.append(dns.rrset.from_rdata(question.name, ttl, rdata))
    elif kind in (Outcome.POSITIVE, Outcome.NEGATIVE):
        if kind == Outcome.NEGATIVE:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        zone = question.name.parent() if len(question.name) > 1 else dns.name.root
        soa = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            f"ns.invalid. host.invalid. 1 7200 3600 1209600 {ttl}",
        )
        reply.authority.append(dns.rrset.from_rdata(zone, ttl, soa))
    else:
        reply.set_rcode(dns.rcode.SERVFAIL)
    return reply.to_wire()


def replay_engine(
    trace: Trace,
    size: int,
    policy: Policy,
    hour_of: Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """The trace through an `Engine` whose caches hold `size` records and `size` packets
    (`simulate.replay`'s signature: `resolver hitrate --engine` uses either)."""
    hour_of = hours(trace) if hour_of is None else hour_of
    config = Config(
        cache=CacheConfig(
            max_entries=size,
            max_packets=size,
            max_ttl=policy.max_ttl,
            min_ttl=policy.min_ttl,
            max_negative_ttl=policy.max_negative_ttl,
            failure_ttl=policy.failure_ttl,
            prefetch=policy.prefetch,
            serve_stale=policy.serve_stale,
        ),
        forward_zones=(ForwardZone(".", (FORWARDER,)),),
    )
    clock = FakeClock(trace.start)
    # A synthetic internet nobody signed: no trust anchor, so nothing is validated.
    engine = Engine(
        config, parse_root_hints(_HINTS), clock, rng=random.Random(1), trust_anchors=TrustAnchors()
    )
    current: dict[tuple[dns.name.Name, int], tuple[int, int]] = {}

    def network(send: Send) -> bytes | None:
        query = send.action.query
        question = query.question[0]
        kind, ttl = current.get((question.name, question.rdtype), (Outcome.FAILURE, 0))
        return _answer(query, kind, ttl)

    result = Replay(size, policy, len(trace), hourly_hits=[0] * (max(hour_of, default=0) + 1))
    client = Client("127.0.0.1")
    for index, query in enumerate(trace.queries):
        clock.now = query.time
        slot = trace.slots[index]
        name = dns.name.from_text(query.name)
        current[name, query.qtype] = (trace.kinds[slot], trace.lifetimes[slot])
        rdtype = dns.rdatatype.RdataType.make(query.qtype)
        wire = dns.message.make_query(name, rdtype, id=index & 0xFFFF).to_wire()
        misses = engine.stats.cache_misses
        if engine.answer_from_cache(wire, client.address, client.tcp) is not None:
            drive(engine, engine.take_output(), network, clock)
        else:
            drive(engine, engine.client_query(wire, client), network, clock)
        if engine.stats.cache_misses == misses:
            result.hits += 1
            result.hourly_hits[hour_of[index]] += 1
        if progress is not None and not index & 0x3FF:
            progress(index)
    result.prefetches = engine.stats.prefetches
    return result
