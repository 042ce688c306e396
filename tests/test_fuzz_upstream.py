"""Hostile authoritative responses never make an exception escape the resolver.

Every upstream response of a resolution may be replaced by a mutation of what the test internet
would really have said (`resolver.testing.mutations`): broken flags and rcodes, RRsets dropped,
duplicated, moved or invented, CNAME and DNAME loops, NS records pointing anywhere, odd TTLs and
names, header counts that lie, truncation, compression pointer loops, noise behind the right ID.
Hypothesis draws each mutation lazily, when the resolver sends the query it answers, and shrinks
a failure to the fewest and smallest mutations.

Three drivers:
- the complete client path, `ResolverService.respond`, the engine set up as the daemon
  sets it up, whose network is a `HostileNetwork` (the engine's rules: a new ID per
  query, a wrong ID or question ignored, unparseable bytes behind the right ID a `BareHeader`
  when TC or an error rcode is set); one `trio.run` per example, one to three client questions
  per example, so that what one answer left in the caches meets the next;
- the pure `Resolution`, driven synchronously, for more cases at less cost;
- the engine's matching of replies (parse, match, bare header) on hostile bytes alone.

What must hold: nothing raises, and no safety net of the handler or service catches anything
(an internal-error SERVFAIL or a logged traceback fails the test); every client query gets bytes
that parse, with its ID, QR=1 and NOERROR, NXDOMAIN or SERVFAIL (or TC=1, or YXDOMAIN with a
DNAME that overflows the name); no TTL of 2**31 or more reaches a client; the answer section is
the chain that starts at the question; and `POISON_ADDRESS`, planted only by servers with no
authority over `poison.test.`, never reaches a client (the mutations of the servers that do
have authority over it are held back from handing it away; see the mutations module).

`benchmarks/fuzz_upstream.py` runs the same checks for a million cases outside the test suite.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver.config import Config
from resolver.core.actions import Answer, Done, Response, SendQuery, Server
from resolver.core.resolution import Resolution
from resolver.testing import TestInternet
from resolver.testing.mutations import (
    QUESTIONS,
    ROUTED,
    CaughtErrors,
    DrawChooser,
    HostileNetwork,
    RandomChooser,
    Target,
    answer_problem,
    hostile_reply,
    hostile_resolver,
    reply_problem,
    transport_outcome,
)
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import loopback_config

#: One internet for every example: its zones are only read; its query logs are reset per example.
INTERNET = TestInternet.default()
#: Its genuine replies, remembered across examples (see `HostileNetwork`).
REPLIES: dict[tuple[object, ...], Any] = {}

#: Settings common to both drivers: each example's draws depend on the resolver's own queries,
#: so examples are slow and draw much by hypothesis's standards.
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

questions = st.lists(st.sampled_from(QUESTIONS), min_size=1, max_size=3)


async def ask_all(
    upstream: HostileNetwork,
    seed: int,
    asked: list[tuple[dns.message.Message, bool]],
    guarded: bool,
    config: Config,
) -> None:
    async with hostile_resolver(INTERNET, upstream, config, seed) as service:
        for query, tcp in asked:
            reply = await service.respond(query.to_wire(), "127.0.0.1", tcp)
            problem = reply_problem(query, reply, guarded)
            assert problem is None, problem


@settings(FUZZ, max_examples=200)
@given(
    data=st.data(),
    asked=questions,
    tcp=st.booleans(),
    edns=st.booleans(),
    guarded=st.booleans(),
    routed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_complete_handler_answers_every_client_whatever_the_authorities_send(
    data: st.DataObject,
    asked: list[tuple[str, str]],
    tcp: bool,
    edns: bool,
    guarded: bool,
    routed: bool,
    seed: int,
) -> None:
    INTERNET.reset_counters()
    rng = random.Random(seed)
    upstream = HostileNetwork(
        INTERNET, DrawChooser(data.draw), rng, guard_poison=guarded, replies=REPLIES
    )
    queries: list[tuple[dns.message.Message, bool]] = [
        (
            dns.message.make_query(
                name, rdtype, use_edns=0 if edns else False, id=rng.getrandbits(16)
            ),
            tcp,
        )
        for name, rdtype in asked
    ]
    config = loopback_config(**ROUTED) if routed else loopback_config()
    with CaughtErrors() as caught:
        trio.run(ask_all, upstream, seed, queries, guarded, config)
    assert not caught.records, "\n".join(caught.describe())


def resolve(world: ScriptedWorld, upstream: HostileNetwork, name: str, rdtype: str) -> Answer:
    """One resolution of the pure core, every query answered by the hostile upstream."""
    resolution = Resolution(
        dns.name.from_text(name), dns.rdatatype.from_text(rdtype), world.context
    )
    action = resolution.next_action()
    for _ in range(world.config.limits.max_upstream_queries + 1):
        if not isinstance(action, SendQuery):
            break
        action = resolution.receive(upstream.exchange(action))
    assert isinstance(action, Done), "more queries than max_upstream_queries"
    return action.answer


@settings(FUZZ, max_examples=600)
@given(
    data=st.data(),
    asked=questions,
    guarded=st.booleans(),
    routed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pure_resolution_always_ends_in_an_answer(
    data: st.DataObject, asked: list[tuple[str, str]], guarded: bool, routed: bool, seed: int
) -> None:
    INTERNET.reset_counters()
    config = loopback_config(**ROUTED) if routed else loopback_config()
    world = ScriptedWorld(INTERNET, config, seed=seed)
    upstream = HostileNetwork(
        INTERNET, DrawChooser(data.draw), random.Random(seed), guard_poison=guarded, replies=REPLIES
    )
    for name, rdtype in asked:
        if rdtype == "ANY":
            continue  # the handler asks the core for A instead (RFC 8482)
        answer = resolve(world, upstream, name, rdtype)
        problem = answer_problem(dns.name.from_text(name), answer, guarded)
        assert problem is None, problem


class Genuine(RandomChooser):
    """Always the first option: every response is the genuine one."""

    def integer(self, low: int, high: int) -> int:
        return low


def test_the_checks_accept_what_a_healthy_internet_says() -> None:
    """With no mutation the answers are the real ones and pass the checks: the fuzzers test
    the resolver, not the noise of their own checks."""
    world = ScriptedWorld(INTERNET, loopback_config())
    rng = random.Random(1)
    upstream = HostileNetwork(INTERNET, Genuine(rng), rng)
    answer = resolve(world, upstream, "alias.example.test.", "A")
    assert [rrset.to_text() for rrset in answer.answer] == [
        "alias.example.test. 600 IN CNAME www.example.test.",
        "www.example.test. 300 IN A 192.0.2.1",
    ]
    assert answer_problem(dns.name.from_text("alias.example.test."), answer, True) is None
    assert upstream.log and all(entry.endswith("genuine -> Response") for entry in upstream.log)


def test_a_planted_poison_is_seen_by_the_checks() -> None:
    """The poison check is not vacuous: a poisoned reply is caught."""
    query = dns.message.make_query("www.example.test.", "A", id=7)
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text("www.example.test.", 60, "IN", "CNAME", "poison.test.")
    )
    response.answer.append(dns.rrset.from_text("poison.test.", 60, "IN", "A", "6.6.6.6"))
    assert reply_problem(query, response.to_wire(), True) == (
        "poison reached a client: poison.test. 60 IN A 6.6.6.6"
    )
    response.answer.pop(0)
    assert reply_problem(query, response.to_wire(), False) == "poison.test. A is off the chain"


def test_the_benchmark_runs_and_reports(tmp_path: Path) -> None:
    """`benchmarks/fuzz_upstream.py` for a few cases, so that the million-case script never rots:
    it exits 0 (no failure) and prints its figures; `--replay` shows a case's exchanges."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz_upstream.py"
    figures = tmp_path / "fuzz.json"
    run = subprocess.run(
        [sys.executable, str(script), "--cases", "40", "--jobs", "1", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"cases: 40 in [\d.]+ s = [\d,]+ cases/s", run.stdout), run.stdout
    assert "client replies by rcode: " in run.stdout
    assert "failures: none" in run.stdout
    assert json.loads(figures.read_text())["cases"] == 40
    replay = subprocess.run(
        [sys.executable, str(script), "--replay", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "upstream exchanges" in replay.stdout


UPSTREAM_QUERY = dns.message.make_query("www.example.test.", "A", use_edns=0, id=4242)
UPSTREAM_QUERY.flags = 0  # as the iterator asks an authority: RD=0


@settings(FUZZ, max_examples=400)
@given(
    wire=hostile_reply(
        INTERNET.respond("127.53.2.1", UPSTREAM_QUERY),
        Target(UPSTREAM_QUERY, (dns.name.from_text("example.test."),)),
    ),
    tcp=st.booleans(),
)
def test_the_transport_takes_any_reply_without_raising(wire: bytes | None, tcp: bool) -> None:
    """The engine's matching (parse, match, bare header) never raises on hostile bytes: an
    exception there would escape `Engine.upstream_reply`, outside every check of the resolver."""
    action = SendQuery(Server("127.53.2.1"), UPSTREAM_QUERY, tcp, 1.0)
    outcome = transport_outcome(action, wire)
    if isinstance(outcome, Response):
        assert outcome.message.id == UPSTREAM_QUERY.id
