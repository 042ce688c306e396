"""A million hostile authoritative responses through the complete handler.

Each case is a fresh resolver (`ResolverService`: the engine as the daemon sets it up, empty
caches) asked one to three client questions in turn, every upstream query of which is answered by
`resolver.testing.mutations.HostileNetwork`: the test internet's genuine reply, mutated or not
(flags, rcodes, sections, names, TTLs, counts, truncation, compression loops, noise). No socket
is opened: the test internet answers in-process, so this runs anywhere and at CPU speed.

What it counts, per case and in all: the client replies by rcode, the upstream exchanges by
outcome, and every failure:
- **escaped**: an exception out of `ResolverService.respond` (what would reach a listener);
- **caught**: an exception the handler's or the service's safety net caught and logged (the
  client got SERVFAIL, but a hostile server found a bug all the same);
- **bad reply**: a reply that breaks `mutations.reply_problem` (no reply, wrong ID, an rcode
  other than NOERROR/NXDOMAIN/SERVFAIL, data off the question's chain, poison).

Each case has its own seed (`--seed` and the case number), so `--replay N` runs case N again
alone and prints every upstream query with its mutations and the bytes that were sent back.
The exit status is 1 if any failure was seen.

    python benchmarks/fuzz_upstream.py                    # 1,000,000 cases
    python benchmarks/fuzz_upstream.py --cases 50000 --jobs 2 --seed 7
    python benchmarks/fuzz_upstream.py --seed 7 --replay 1234
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import benchlib
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import trio

from resolver.config import Config, DnssecConfig, UpstreamConfig
from resolver.server.service import ResolverService
from resolver.testing import TestInternet
from resolver.testing.mutations import (
    QUESTIONS,
    ROUTED,
    CaughtErrors,
    HostileNetwork,
    RandomChooser,
    hostile_resolver,
    reply_problem,
)

#: Cases per task handed to a worker process: large enough to amortise the hand-over, small
#: enough for steady progress lines.
CHUNK = 500

#: The resolver's settings: the defaults, plus permission to query the test internet on loopback;
#: a third of the cases also forward other.test. and stub deep.test. (`mutations.ROUTED`).
UPSTREAM = UpstreamConfig(query_loopback=True, timeout=0.3)
#: The unsigned test internet: no trust anchor fits its root, so no validation.
UNSIGNED = DnssecConfig(validate=False)
CONFIGS = (
    Config(upstream=UPSTREAM, dnssec=UNSIGNED),
    Config(upstream=UPSTREAM, dnssec=UNSIGNED, **ROUTED),
)

#: Distinct failures kept in full (by kind, exception type and the line that raised); the rest
#: are only counted.
KEEP_FAILURES = 20


@dataclass
class Failure:
    """One failure, with what reproduces it."""

    case: int
    kind: str  # "escaped", "caught" or "bad reply"
    signature: str
    text: str
    count: int = 1


@dataclass
class Tally:
    """What a run of cases saw; tallies of several workers add up."""

    cases: int = 0
    client_queries: int = 0
    upstream_queries: int = 0
    rcodes: collections.Counter[str] = field(default_factory=collections.Counter)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: dict[str, Failure] = field(default_factory=dict)
    failure_counts: collections.Counter[str] = field(default_factory=collections.Counter)

    def add_failure(self, failure: Failure) -> None:
        self.failure_counts[failure.kind] += 1
        known = self.failures.get(failure.signature)
        if known is not None:
            known.count += 1
        elif len(self.failures) < KEEP_FAILURES:
            self.failures[failure.signature] = failure

    def merge(self, other: Tally) -> None:
        self.cases += other.cases
        self.client_queries += other.client_queries
        self.upstream_queries += other.upstream_queries
        self.rcodes.update(other.rcodes)
        self.outcomes.update(other.outcomes)
        self.failure_counts.update(other.failure_counts)
        for signature, failure in other.failures.items():
            known = self.failures.get(signature)
            if known is not None:
                known.count += failure.count
            elif len(self.failures) < KEEP_FAILURES:
                self.failures[signature] = failure


@dataclass
class Case:
    """Everything one case draws from its seed before it starts."""

    number: int
    rng: random.Random
    guarded: bool
    config: Config
    queries: list[tuple[dns.message.Message, bool]]


def make_case(seed: int, number: int) -> Case:
    """Case `number` of run `seed`: its questions, transports and whether poison is guarded."""
    rng = random.Random(f"{seed}/{number}")
    guarded = rng.random() < 0.5
    config = CONFIGS[rng.random() < 1 / 3]
    queries: list[tuple[dns.message.Message, bool]] = []
    for _ in range(rng.randint(1, 3)):
        name, rdtype = rng.choice(QUESTIONS)
        edns = 0 if rng.random() < 0.7 else False
        query = dns.message.make_query(name, rdtype, use_edns=edns, id=rng.getrandbits(16))
        queries.append((query, rng.random() < 0.25))
    return Case(number, rng, guarded, config, queries)


def signature(error: BaseException) -> str:
    """The exception's type and the innermost line of the resolver that it passed through."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/resolver/" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(error).__name__} at {where}"


#: Genuine replies of the test internet, shared by every case of a process (see
#: `HostileNetwork`): replaying a case alone gives the same replies, only slower.
REPLIES: dict[tuple[object, ...], Any] = {}


async def run_case(
    internet: TestInternet, case: Case, tally: Tally, caught: CaughtErrors, log: bool = False
) -> HostileNetwork:
    """Ask the case's questions of a fresh resolver; count replies and failures in `tally`.

    `log` keeps a line per upstream exchange (for `--replay`).
    """
    internet.reset_counters()
    random.seed(case.rng.getrandbits(64))  # dnspython shuffles RRsets with it as it renders
    upstream = HostileNetwork(
        internet,
        RandomChooser(case.rng),
        case.rng,
        guard_poison=case.guarded,
        replies=REPLIES,
        keep_log=log,
    )
    caught.records.clear()
    async with hostile_resolver(
        internet, upstream, case.config, case.rng.getrandbits(32)
    ) as service:
        for query, tcp in case.queries:
            await ask(service, query, tcp, case, tally)
    for record in caught.records:
        assert record.exc_info is not None and record.exc_info[1] is not None
        error = record.exc_info[1]
        text = f"{record.getMessage()}\n" + "".join(traceback.format_exception(error))
        tally.add_failure(Failure(case.number, "caught", "caught " + signature(error), text))
    tally.cases += 1
    tally.upstream_queries += upstream.sent
    tally.outcomes.update(upstream.outcomes)
    return upstream


async def ask(
    service: ResolverService, query: dns.message.Message, tcp: bool, case: Case, tally: Tally
) -> None:
    """One client query through the complete client path, its reply checked and counted."""
    tally.client_queries += 1
    try:
        reply = await service.respond(query.to_wire(), "127.0.0.1", tcp)
    except Exception as error:  # the very thing this script looks for
        text = "".join(traceback.format_exception(error))
        tally.add_failure(Failure(case.number, "escaped", signature(error), text))
        tally.rcodes["(exception)"] += 1
        return
    problem = reply_problem(query, reply, case.guarded)
    if problem is not None:
        question = query.question[0]
        text = f"{question.name} {dns.rdatatype.to_text(question.rdtype)}: {problem}"
        tally.add_failure(Failure(case.number, "bad reply", problem.split(":")[0], text))
    if reply is not None and len(reply) >= 4:
        flags = int.from_bytes(reply[2:4], "big")
        tally.rcodes["TC" if flags & dns.flags.TC else dns.rcode.Rcode.to_text(flags & 0xF)] += 1


_INTERNET: TestInternet | None = None


def run_chunk(job: tuple[int, int, int]) -> Tally:
    """Cases [start, stop) of run `seed`, in one trio loop (a worker process's task)."""
    seed, start, stop = job
    global _INTERNET
    if _INTERNET is None:
        _INTERNET = TestInternet.default()
    internet = _INTERNET
    tally = Tally()

    async def main() -> None:
        with CaughtErrors() as caught:
            for number in range(start, stop):
                await run_case(internet, make_case(seed, number), tally, caught)

    trio.run(main)
    return tally


def chunks(seed: int, cases: int) -> Iterator[tuple[int, int, int]]:
    for start in range(0, cases, CHUNK):
        yield seed, start, min(cases, start + CHUNK)


def replay(seed: int, number: int) -> int:
    """Run one case alone and show every upstream exchange: the reproduction of a failure."""
    internet = TestInternet.default()
    case = make_case(seed, number)
    tally = Tally()
    questions = [
        f"{q.question[0].name} {dns.rdatatype.to_text(q.question[0].rdtype)}"
        f"{' over TCP' if tcp else ''}"
        for q, tcp in case.queries
    ]
    routed = case.config.forward_zones != ()
    print(
        f"case {number} of seed {seed}: {', '.join(questions)}; guarded={case.guarded}, "
        f"forward and stub zones={routed}"
    )

    async def main() -> HostileNetwork:
        with CaughtErrors() as caught:
            return await run_case(internet, case, tally, caught, log=True)

    upstream = trio.run(main)
    print("upstream exchanges (server, transport, question: mutations -> outcome [bytes]):")
    for line in upstream.log:
        print("  " + line)
    for failure in tally.failures.values():
        print(f"\n{failure.kind}: {failure.signature}\n{failure.text}")
    print(f"\nclient replies: {dict(tally.rcodes)}")
    return 1 if tally.failures else 0


def report(tally: Tally, seconds: float, seed: int) -> str:
    lines = [
        f"cases: {tally.cases:,} in {seconds:.1f} s = {tally.cases / seconds:,.0f} cases/s "
        f"({tally.client_queries:,} client queries, {tally.upstream_queries:,} upstream queries"
        f" = {tally.upstream_queries / max(1, tally.cases):.1f} per case)",
        "client replies by rcode: "
        + ", ".join(f"{k} {v:,}" for k, v in tally.rcodes.most_common()),
        "upstream exchanges by outcome: "
        + ", ".join(f"{k} {v:,}" for k, v in tally.outcomes.most_common()),
        "failures: "
        + (
            ", ".join(f"{k} {v:,}" for k, v in tally.failure_counts.most_common())
            if tally.failure_counts
            else "none"
        ),
    ]
    for failure in tally.failures.values():
        lines += [
            "",
            f"{failure.kind} x{failure.count}: {failure.signature}",
            f"  first in case {failure.case}; reproduce with: "
            f"python benchmarks/fuzz_upstream.py --seed {seed} --replay {failure.case}",
            *("  " + line for line in failure.text.rstrip().splitlines()[-12:]),
        ]
    return "\n".join(lines)


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # The resolver iterates over sets of names, whose order follows string hashing: fix
        # it, or a seed would not replay its case in another process.
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"}
        )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases to run (1,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (1)")
    parser.add_argument("--quick", action="store_true", help="2,000 cases")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (CPUs)"
    )
    parser.add_argument("--replay", type=int, metavar="N", help="run case N alone, verbosely")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.replay is not None:
        return replay(args.seed, args.replay)
    cases = 2_000 if args.quick else args.cases
    print(
        benchlib.report_header(
            "fuzz_upstream.py", args.quick, [f"{cases:,} cases", f"seed {args.seed}"]
        ),
        flush=True,
    )
    # SIGTERM unwinds like Ctrl-C: the pool's exit stops every worker by its PID, and the
    # figures so far are printed.
    signal.signal(signal.SIGTERM, _interrupt)
    tally = Tally()
    started = last = time.monotonic()
    jobs = list(chunks(args.seed, cases))
    try:
        if args.jobs > 1:
            context = multiprocessing.get_context("fork")
            with context.Pool(args.jobs, initializer=_worker_signals) as pool:
                for part in pool.imap_unordered(run_chunk, jobs):
                    tally.merge(part)
                    last = progress(tally, cases, started, last)
        else:
            for job in jobs:
                tally.merge(run_chunk(job))
                last = progress(tally, cases, started, last)
    except KeyboardInterrupt:
        print("interrupted: the figures below cover the cases done so far", file=sys.stderr)
    seconds = time.monotonic() - started
    print(report(tally, seconds, args.seed))
    if args.json is not None:
        figures = {
            "cases": tally.cases,
            "seconds": seconds,
            "cases_per_second": tally.cases / seconds if seconds else 0.0,
            "client_queries": tally.client_queries,
            "upstream_queries": tally.upstream_queries,
            "rcodes": dict(tally.rcodes),
            "outcomes": dict(tally.outcomes),
            "failure_counts": dict(tally.failure_counts),
            "failures": list(tally.failures.values()),
        }
        benchlib.write_json(args.json, figures)
    return 1 if tally.failure_counts else 0


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _worker_signals() -> None:
    """Workers leave Ctrl-C to the parent and die at once on the SIGTERM its pool sends them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def progress(tally: Tally, cases: int, started: float, last: float) -> float:
    """A line on stderr every ten seconds or so."""
    now = time.monotonic()
    if now - last < 10 and tally.cases < cases:
        return last
    rate = tally.cases / max(now - started, 1e-9)
    failures = sum(tally.failure_counts.values())
    print(
        f"{tally.cases:,}/{cases:,} cases, {rate:,.0f}/s, {failures} failures",
        file=sys.stderr,
        flush=True,
    )
    return now


if __name__ == "__main__":
    sys.exit(main())
