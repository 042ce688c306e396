"""A finished question's objects are freed by reference counting alone.

Each resolution used to sit in reference cycles (its walk and its validator hold its
`_resolve`; a suspended generator's frame holds the resolution): about 25 objects per miss,
its answer among them, that only the cyclic garbage collector could free. Under a flood of
unique names that collector then ran often, each young collection pausing the daemon for
tens of milliseconds. These tests run questions with the collector off and count what
`gc.collect()` finds afterwards: nothing, whether a question was answered, failed, validated
or ran out of time.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.config import Limits, UpstreamConfig
from resolver.core.actions import Answer
from resolver.engine import Client
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import loopback_config, signed_config


@pytest.fixture
def garbage() -> Iterator[Callable[[], Counter[str]]]:
    """Collector off from here on; the call collects and counts the cyclic garbage by type."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)

    def collect() -> Counter[str]:
        gc.collect()
        found = Counter(type(thing).__qualname__ for thing in gc.garbage)
        gc.garbage.clear()
        return found

    try:
        yield collect
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def ask(world: ScriptedWorld, name: str, rdtype: str = "A") -> int:
    """A client's query through the engine; the reply's rcode."""
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    data = world.query(query.to_wire(), Client("127.0.0.1"))
    assert data is not None
    return dns.message.from_wire(data).rcode()


def test_cold_misses_leave_no_cyclic_garbage(
    internet: TestInternet, garbage: Callable[[], Counter[str]]
) -> None:
    world = ScriptedWorld(internet, loopback_config())
    ask(world, "www.example.test.")  # the delegations, cached
    garbage()
    for number in range(50):
        assert ask(world, f"n{number}.example.test.") == dns.rcode.NXDOMAIN
    assert world.engine.in_flight == 0
    found = garbage()
    assert not found, f"cyclic garbage after 50 cold questions: {found.most_common(8)}"


def test_hard_questions_leave_no_cyclic_garbage(
    internet: TestInternet, garbage: Callable[[], Counter[str]]
) -> None:
    """Glueless servers (sub-questions), CNAME chains, DNAME, a dead server, a glueless cycle
    (SERVFAIL) and a name that does not exist."""
    world = ScriptedWorld(internet, loopback_config())
    garbage()
    names = [
        "www.glueless.test.",
        "c20.cnames.test.",
        "hop0.cnames.test.",
        "www.old.dname.test.",
        "www.addr.test.",
        "www.loopa.test.",
        "nx.example.test.",
    ]
    for name in names:
        ask(world, name)
    found = garbage()
    assert not found, f"cyclic garbage: {found.most_common(8)}"


def test_validated_questions_leave_no_cyclic_garbage(
    garbage: Callable[[], Counter[str]],
) -> None:
    """The validator's DS and DNSKEY sub-questions, secure, insecure and bogus answers."""
    world = ScriptedWorld(TestInternet.signed(), signed_config())
    garbage()
    names = ["www.nsec.sec.", "nx.nsec3.sec.", "www.unsigned.sec.", "www.tampered.sec."]
    for name in names:
        ask(world, name)
    found = garbage()
    assert not found, f"cyclic garbage: {found.most_common(8)}"


def test_a_question_out_of_time_leaves_no_cyclic_garbage(
    internet: TestInternet, garbage: Callable[[], Counter[str]]
) -> None:
    """Its resolution is still suspended, waiting for a reply, when the engine gives up."""
    world = ScriptedWorld(
        internet,
        loopback_config(
            upstream=UpstreamConfig(query_loopback=True, timeout=5.0),
            limits=Limits(max_resolution_time=1.0),
        ),
    )
    engine = world.engine
    garbage()
    answers: list[Answer] = []
    engine.ask(dns.name.from_text("www.example.test."), dns.rdatatype.A, answers.append)
    world.clock.advance(1.0)
    engine.tick()
    world.clock.advance(10.0)
    engine.tick()
    [answer] = answers
    assert answer.rcode == dns.rcode.SERVFAIL and engine.in_flight == 0
    del answer, answers
    found = garbage()
    assert not found, f"cyclic garbage: {found.most_common(8)}"
