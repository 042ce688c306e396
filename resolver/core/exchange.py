"""The exchange with one server for one question: the query, its retries and the verdict.

Over UDP first; again over TCP when the reply is truncated, and again without EDNS when the
server answers FORMERR to it; what a silent or unreachable server means for the server table;
and the verdict of `classify` (or `classify_recursive` for forwarders). `Attempts` keeps the
retransmission schedule of one zone's servers for the walk.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from enum import Enum, auto

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.core.actions import (
    BareHeader,
    NetworkError,
    Outcome,
    Response,
    SendQuery,
    Server,
    Timeout,
)
from resolver.core.chain import Question
from resolver.core.iterate import Classified, Kind, classify, classify_recursive
from resolver.core.scrub import is_response_to, randomize_case
from resolver.core.work import Work

#: Rcodes whose response is classified; any other makes the caller try another server.
_JUDGED_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN})


class Miss(Enum):
    """Why one server gave no verdict, so the caller can try another (or another question)."""

    SILENT = auto()  # no answer, a network error, or a response to some other question
    UNREACHABLE = auto()  # no route to the address, or nothing listens there
    REJECTED = auto()  # an error rcode (REFUSED, SERVFAIL, FORMERR...) for this question
    LAME = auto()  # it does not serve the zone it was asked as


class Attempts:
    """The servers of one zone asked so far for one question, and the retransmission schedule.

    A server that stayed silent may just have lost a datagram: it is asked again in a later
    round, with the timeout doubled each round (exponential backoff), up to `retries` more
    rounds. A server that answered badly, or whose address is unreachable, is not.
    """

    def __init__(self, timeout: float, retries: int) -> None:
        self.timeout = timeout
        self.any_asked = False
        self._retries_left = retries
        self._round = 1
        self._tried: set[tuple[str, int]] = set()
        self._silent: list[Server] = []

    def fresh(self, servers: Iterable[Server]) -> list[Server]:
        """The servers not yet asked in this round."""
        return [s for s in servers if (s.address, s.port) not in self._tried]

    def asked(self, server: Server) -> None:
        self._tried.add((server.address, server.port))
        self.any_asked = True

    def silent(self, server: Server) -> None:
        self._silent.append(server)

    def next_round(self) -> bool:
        """Start another round for the silent servers; False when none is left to retry."""
        if not self._silent or self._retries_left <= 0:
            return False
        self._retries_left -= 1
        self._round += 1
        self.timeout *= 2
        for server in self._silent:
            self._tried.discard((server.address, server.port))
        self._silent.clear()
        return True

    def __str__(self) -> str:
        return f"no answer; asking again (round {self._round}, timeout {self.timeout:.1f} s)"


class Exchange:
    """Queries one server at a time on behalf of one resolution (`Work`)."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def ask(
        self,
        server: Server,
        question: Question,
        zone: dns.name.Name,
        depth: int,
        timeout: float,
        *,
        recursive: bool = False,
    ) -> Generator[SendQuery, Outcome, Classified | Miss]:
        """One server, one question: retry over TCP on TC=1 and without EDNS on FORMERR.

        `recursive` asks a forwarder (RD=1, judged by `classify_recursive`) instead of an
        authoritative server of `zone`. Returns why not when this server is of no use for the
        question, so the caller moves on to the next one or another question.
        """
        table, upstream = self._work.ctx.servers, self._work.ctx.config.upstream
        use_edns, tcp, edns_fallback = not table.no_edns(server.address), False, False
        label = f"{server.name} [{server.address}]" if server.name else server.address
        if server.port != upstream.port:
            label += f" port {server.port}"
        rdtype_text = dns.rdatatype.RdataType.to_text(question.rdtype)
        name = question.name
        while True:
            query = self._query(name, question.rdtype, use_edns, recursive)
            transport = "TCP" if tcp else "UDP"
            self._work.say(depth, "ask {} for {} {} over {}", label, name, rdtype_text, transport)
            outcome = yield SendQuery(server, query, tcp, timeout, upstream.use_0x20)
            if isinstance(outcome, Timeout | NetworkError):
                return self._undelivered(outcome, server, tcp, timeout, depth)
            if isinstance(outcome, BareHeader):
                response = None
                truncated, rcode = outcome.truncated, outcome.rcode
            else:
                response = outcome.message
                if not is_response_to(query, response, exact_case=upstream.use_0x20):
                    self._work.say(depth, "  response does not match the question; ignored")
                    return Miss.SILENT
                truncated, rcode = bool(response.flags & dns.flags.TC), response.rcode()
            # Only the header of a BareHeader could be read; its TC and rcode still count.
            if truncated and not tcp:
                self._work.say(depth, "  truncated; retrying over TCP")
                tcp = True
                continue
            if rcode == dns.rcode.FORMERR and use_edns:
                self._work.say(depth, "  FORMERR to EDNS; retrying without EDNS")
                # Remembered for the server only if the FORMERR echoed our question: a bare
                # header passes no question (or 0x20) check and could be forged.
                use_edns, edns_fallback = False, response is not None
                continue
            if response is None:
                self._work.say(depth, "  unparseable reply; trying another server")
                return Miss.SILENT
            assert isinstance(outcome, Response)
            verdict = self._judge(response, question, zone, depth, recursive)
            if isinstance(verdict, Classified):
                if edns_fallback:
                    # Remembered only now that the plain query got a usable answer: a forged
                    # or stray FORMERR must not switch EDNS off for the server (as in Unbound).
                    table.set_no_edns(server.address)
                table.record_rtt(server.address, outcome.rtt)
                return verdict
            # A server that answers fast but uselessly must not win selection by its speed:
            # it is scored as if it had taken the whole timeout (a penalty without hold-down,
            # since it may well serve other zones).
            table.record_rtt(server.address, timeout)
            if verdict is Miss.REJECTED:
                self._work.say(depth, "  {}; trying another server", dns.rcode.Rcode.to_text(rcode))
            return verdict

    def _undelivered(
        self, outcome: Timeout | NetworkError, server: Server, tcp: bool, timeout: float, depth: int
    ) -> Miss:
        """What a lost query says about the server, and whether to ask it again."""
        table = self._work.ctx.servers
        if isinstance(outcome, Timeout):
            self._work.say(depth, "  timed out after {:.1f} s", timeout)
        else:
            self._work.say(depth, "  {}", outcome.reason)
        if tcp:
            # No TCP (firewalled or refused) says nothing about the server over UDP.
            return Miss.REJECTED
        if isinstance(outcome, NetworkError) and outcome.unreachable:
            table.record_unreachable(server.address)
            return Miss.UNREACHABLE
        if not (isinstance(outcome, Timeout) and outcome.shared):
            table.record_failure(server.address, timeout)
        return Miss.SILENT

    def _judge(
        self,
        response: dns.message.Message,
        question: Question,
        zone: dns.name.Name,
        depth: int,
        recursive: bool,
    ) -> Classified | Miss:
        """The verdict on a matching response, or why the server is of no use for it."""
        rcode = response.rcode()
        if rcode == dns.rcode.REFUSED and not recursive:
            # An authority that refuses a zone's question does not serve the zone (Unbound
            # counts it lame too); SERVFAIL and the rest may be passing trouble.
            self._work.say(depth, "  REFUSED: lame for {}; trying another server", zone)
            return Miss.LAME
        if rcode not in _JUDGED_RCODES or (recursive and rcode == dns.rcode.YXDOMAIN):
            return Miss.REJECTED
        if recursive:
            verdict = classify_recursive(response, question.name, question.rdtype)
        else:
            harden_glue = self._work.ctx.config.upstream.harden_glue
            verdict = classify(
                response, question.name, question.rdtype, zone, harden_glue=harden_glue
            )
        if verdict.kind is Kind.LAME:
            assert verdict.lameness is not None
            why = verdict.lameness.value
            self._work.say(depth, "  lame for {} ({}); trying another server", zone, why)
            return Miss.LAME
        return verdict

    def _query(
        self, name: dns.name.Name, qtype: int, use_edns: bool, recursive: bool = False
    ) -> dns.message.Message:
        self._work.count_query()
        upstream = self._work.ctx.config.upstream
        if upstream.use_0x20:
            name = randomize_case(name, self._work.ctx.rng)
        return dns.message.make_query(
            name,
            dns.rdatatype.RdataType.make(qtype),
            use_edns=0 if use_edns else False,
            payload=upstream.edns_payload,
            flags=dns.flags.RD if recursive else 0,
            id=0,
        )
