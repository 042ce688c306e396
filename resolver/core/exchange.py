"""The exchange with one server for one question: the query, its retries and the verdict.

Over UDP first; again over TCP when the reply is truncated, and again without EDNS when the
server answers FORMERR to it; what a silent or unreachable server means for the server table;
and the verdict of `classify` (or `classify_recursive` for forwarders). `Attempts` keeps the
retransmission schedule of one zone's servers for the walk.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Generator, Iterable
from enum import Enum, auto
from typing import Any, NamedTuple, cast

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from resolver.core.actions import (
    NetworkError,
    Outcome,
    Response,
    SendQuery,
    Server,
    Timeout,
)
from resolver.core.chain import Question
from resolver.core.classify import Classified, Kind, classify, classify_recursive
from resolver.core.scrub import randomize_case
from resolver.core.signatures import attach
from resolver.core.work import Work

#: TC and DO as plain ints: `&` with dnspython's Flag enum builds an enum member every time.
_TC = int(dns.flags.TC)
_DO = int(dns.flags.DO)


#: Outcomes without a reply (a tuple: `Timeout | NetworkError` would make a union per test).
_LOST = (Timeout, NetworkError)


def _rcode(flags: int, ednsflags: int) -> int:
    """`Message.rcode()` as a plain int: the header's four bits and EDNS's upper eight."""
    return (flags & 0x000F) | ((ednsflags >> 20) & 0xFF0)


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
        tried = self._tried
        if not tried:  # the first choice of a round, most often the only one
            return list(servers)
        return [s for s in servers if (s.address, s.port) not in tried]

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
        #: Why the last query `ask` sent could not be delivered (a NetworkError's reason, such
        #: as a forwarder's failed certificate check), or None: for the SERVFAIL's EDE text.
        self.undelivered: str | None = None

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
        use_edns, edns_fallback = not table.no_edns(server.address), False
        # A DNS-over-TLS server is asked over its stream from the first query, never in clear.
        tls = server.tls is not None
        tcp = tls
        # Trace texts are built only when someone listens: a name's text costs microseconds.
        label = rdtype_text = ""
        traced = self._work.trace is not None
        if traced:
            label = f"{server.name} [{server.address}]" if server.name else server.address
            if server.port != upstream.port:
                label += f" port {server.port}"
            rdtype_text = dns.rdatatype.RdataType.to_text(question.rdtype)
        name = question.name
        while True:
            query = self._query(name, question.rdtype, use_edns or tls, recursive, tls)
            if traced:
                transport = "TLS" if tls else "TCP" if tcp else "UDP"
                self._work.say(
                    depth, "ask {} for {} {} over {}", label, name, rdtype_text, transport
                )
            outcome = yield SendQuery(server, query, tcp, timeout, upstream.use_0x20)
            response: dns.message.Message | None
            rcode: int
            if isinstance(outcome, Response):  # the common case first, in one type test
                # It answers `query`: the engine matched it (`engine/outbound.py`).
                response = outcome.message
                flags = int(response.flags)  # the rcode as a plain int, as `_TC` says
                truncated, rcode = bool(flags & _TC), _rcode(flags, response.ednsflags)
            elif isinstance(outcome, _LOST):
                return self._undelivered(outcome, server, tcp, timeout, depth)
            else:  # a BareHeader: only the header could be read
                response = None
                truncated, rcode = outcome.truncated, outcome.rcode
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
            verdict = self._judge(response, rcode, question, zone, depth, recursive)
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
            self.undelivered = outcome.reason
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
        rcode: int,
        question: Question,
        zone: dns.name.Name,
        depth: int,
        recursive: bool,
    ) -> Classified | Miss:
        """The verdict on a matching response (whose rcode is `rcode`), or why the server is of
        no use for it."""
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
                response,
                question.name,
                question.rdtype,
                zone,
                harden_glue=harden_glue,
                rcode=rcode,
            )
        if self._work.ctx.config.dnssec.validate and response.ednsflags & _DO:
            # A forwarder's records are held to no zone (`classify_recursive`).
            held_to = dns.name.root if recursive else zone
            verdict = attach(verdict, response, question.name, question.rdtype, held_to)
        if verdict.kind is Kind.LAME:
            assert verdict.lameness is not None
            why = verdict.lameness.value
            self._work.say(depth, "  lame for {} ({}); trying another server", zone, why)
            return Miss.LAME
        return verdict

    def _query(
        self,
        name: dns.name.Name,
        qtype: int,
        use_edns: bool,
        recursive: bool = False,
        tls: bool = False,
    ) -> dns.message.Message:
        self._work.count_query()
        upstream = self._work.ctx.config.upstream
        if upstream.use_0x20:
            name = randomize_case(name, self._work.ctx.rng)
        flags = dns.flags.RD if recursive else 0
        dnssec = self._work.ctx.config.dnssec.validate
        if dnssec and recursive:
            # RFC 6840 section 5.9: a validating resolver behind a forwarder validates for
            # itself, so the forwarder must hand over bogus data too, not SERVFAIL it.
            flags |= dns.flags.CD
        if tls:
            query = make_tls_query(name, qtype, upstream.edns_payload, recursive, dnssec=dnssec)
            query.flags = flags
            return query
        return make_query(
            name,
            qtype,
            payload=upstream.edns_payload if use_edns else None,
            flags=flags,
            dnssec=dnssec,
        )


def make_query(
    name: dns.name.Name, qtype: int, *, payload: int | None, flags: int = 0, dnssec: bool = False
) -> UpstreamQuery:
    """The query `dns.message.make_query` would build (ID 0, EDNS version 0 with `payload`, or
    no EDNS for None; the DO bit with `dnssec` and EDNS), built in a few microseconds instead
    of about sixty, and rendered with it (`UpstreamQuery`).

    `make_query` spends its time on the OPT record (an immutable rdata and an RRset per
    query), which is the same for every query with the same payload: it is built once and
    shared; nothing edits a query's OPT record (`use_edns` replaces it).
    """
    name_wire = _name_wire(name.labels)
    if name_wire is None:  # a relative name: nothing to render ahead, dnspython decides
        query = UpstreamQuery(id=0)
        query.flags = flags
        query.question.append(_question(name, qtype))
        if payload is not None:
            query.opt = _opt(payload, _DO if dnssec else 0)
            query.request_payload = payload
        return query
    head, tail = _fixed_parts(flags, qtype, payload, dnssec)
    rest = head + name_wire + tail
    folded_name = name_wire.lower()
    rendered = Rendered(
        rest,
        rest if folded_name == name_wire else head + folded_name + tail,
        name_wire,
        folded_name,
        tail[:4],
    )
    return UpstreamQuery.deferred(name, qtype, flags, payload, dnssec, rendered)


def _question(name: dns.name.Name, qtype: int) -> dns.rrset.RRset:
    return dns.rrset.RRset(name, dns.rdataclass.IN, cast(dns.rdatatype.RdataType, qtype))


def _name_wire(labels: tuple[bytes, ...]) -> bytes | None:
    """The uncompressed wire form of an absolute name (None for a relative one): what
    `Name.to_wire()` gives, in half its time."""
    if not labels or labels[-1]:
        return None
    out = bytearray()
    for label in labels:
        out.append(len(label))
        out += label
    return bytes(out)


@functools.lru_cache(maxsize=256)
def _fixed_parts(flags: int, qtype: int, payload: int | None, dnssec: bool) -> tuple[bytes, bytes]:
    """What `make_query` renders around the name, after the ID: the rest of the header, and
    the question's type and class with the OPT record. The same for every query of one kind,
    so made once per kind (a few per resolver)."""
    head = _HEADER.pack(0, flags, 1, 0, 0, 0 if payload is None else 1)[2:]
    tail = _QUESTION_TAIL.pack(qtype, dns.rdataclass.IN)
    if payload is not None:
        opt = _opt(payload, _DO if dnssec else 0)
        tail += _OPT_RR.pack(0, dns.rdatatype.OPT, opt.rdclass, opt.ttl, 0)
    return head, tail


class Rendered(NamedTuple):
    """An `UpstreamQuery` in wire form, ID aside, as `make_query` made it: what the engine
    sends (`rest` after the ID), keys identical queries by (`folded`: the name in lower case,
    which is how dnspython compares names) and matches replies against (the question section
    starts at octet 12 of both: the name as sent, in lower case, then type and class)."""

    rest: bytes
    folded: bytes
    name: bytes
    folded_name: bytes
    type_class: bytes


#: RFC 8467 section 4.1: queries over an encrypted transport are padded to blocks of 128 octets.
QUERY_PADDING_BLOCK = 128
_KEEPALIVE = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b"")


def make_tls_query(
    name: dns.name.Name, qtype: int, payload: int, recursive: bool, *, dnssec: bool = False
) -> dns.message.Message:
    """A query for a DNS-over-TLS server: EDNS with an empty edns-tcp-keepalive option (RFC
    7828 section 3.2.1: we would like to keep the connection open) and padding to the next
    multiple of `QUERY_PADDING_BLOCK` octets (RFC 7830, RFC 8467 section 4.1), added when the
    message is rendered. Built like `make_query` (a shared OPT record, rendered in one pass):
    dnspython's `make_query` and renderer cost a DoT-forwarded miss about 150 microseconds."""
    query = make_query(
        name, qtype, payload=payload, flags=dns.flags.RD if recursive else 0, dnssec=dnssec
    )
    query.opt = _opt(payload, _DO if dnssec else 0, keepalive=True)
    query.pad = QUERY_PADDING_BLOCK
    query.made = query.rendered = None  # rendered by `_plain_wire`, with its padding
    return query


@functools.cache
def _opt(payload: int, ednsflags: int = 0, keepalive: bool = False) -> dns.rrset.RRset:
    """The OPT record `use_edns(0, ednsflags, payload)` makes (version 0, no options but an
    empty edns-tcp-keepalive with `keepalive`)."""
    template = dns.message.QueryMessage(id=0)
    template.use_edns(0, ednsflags, payload, options=[_KEEPALIVE] if keepalive else None)
    assert template.opt is not None
    return template.opt


#: The attributes of a query made `deferred` and not used since: id, flags, rendered, _deferred.
_DEFERRED_STATE = 4

_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_OPT_RR = struct.Struct("!BHHIH")  # the root name, type, class (payload), TTL (flags), rdlen
_OPTION = struct.Struct("!HH")  # an EDNS option's code and length


class UpstreamQuery(dns.message.QueryMessage):
    """An upstream query that renders itself in one pass: header, question, bare OPT record.

    dnspython's renderer (a buffer, compression table, reserved space, an rdata object per
    OPT) costs about as much as the rest of the query's trip through the iterator; a plain
    query needs none of it. `make_query` renders it as it makes it (`rendered`), so that only
    the ID is left to add; a query changed since (its flags, EDNS or sections: `current`)
    renders itself again, and anything else, or any rendering option, goes to dnspython. The
    test suite checks that all give the same bytes.
    """

    #: What `make_query` rendered: for the engine, while `current` says it still holds.
    rendered: Rendered | None = None
    #: What `rendered` was made from: flags, OPT record, question RRset and its name.
    made: tuple[int, dns.rrset.RRset | None, dns.rrset.RRset, dns.name.Name] | None = None

    @classmethod
    def deferred(
        cls,
        name: dns.name.Name,
        qtype: int,
        flags: int,
        payload: int | None,
        dnssec: bool,
        rendered: Rendered,
    ) -> UpstreamQuery:
        """The query `make_query` describes, as `rendered`, with dnspython's state (its
        sections, an RRset, a dozen attributes) made only if something reads it.

        The engine reads only the ID and the flags of a query it sends and matches (on the
        wire form); a test's scripted network reads the rest, and then it is made
        (`__getattr__`). Making it for every query cost as much as rendering it.
        """
        query = cls.__new__(cls)
        vars(query).update(
            id=0, flags=flags, rendered=rendered, _deferred=(name, qtype, flags, payload, dnssec)
        )
        return query

    def __getattr__(self, attribute: str) -> Any:
        """Called for an attribute the query does not have: if it was made `deferred` and
        not used since, dnspython's state is made now, and what was set meanwhile (its ID,
        say) stays as it was set."""
        state = vars(self)
        deferred = state.pop("_deferred", None)
        if deferred is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")
        name, qtype, flags, payload, dnssec = deferred
        kept = dict(state)
        dns.message.QueryMessage.__init__(self, id=0)
        self.flags = flags
        rrset = _question(name, qtype)
        self.question.append(rrset)
        opt = None
        if payload is not None:
            opt = self.opt = _opt(payload, _DO if dnssec else 0)
            self.request_payload = payload
        self.made = (flags, opt, rrset, name)
        state.update(kept)
        return getattr(self, attribute)

    def current(self) -> Rendered | None:
        """`rendered`, unless the message has been changed since (then None).

        A query is not meant to be edited once made (only its ID is set, by the engine), but a
        test or a carrier may: what it would render then is checked, in a few comparisons.
        """
        state = vars(self)
        deferred = state.get("_deferred")
        if deferred is not None:  # nothing made yet: only what was set since can differ
            unchanged = len(state) == _DEFERRED_STATE and state["flags"] == deferred[2]
            return self.rendered if unchanged else None
        made, rendered = self.made, self.rendered
        if made is None or rendered is None:
            return None
        flags, opt, rrset, name = made
        sections = self.sections
        if (
            self.flags != flags
            or self.opt is not opt
            or self.pad
            or len(sections[0]) != 1
            or sections[0][0] is not rrset
            or rrset.name is not name
            or sections[1]
            or sections[2]
            or sections[3]
            or self.tsig is not None
            or self.origin is not None
        ):
            return None
        return rendered

    def to_wire(
        self,
        origin: dns.name.Name | None = None,
        max_size: int = 0,
        multi: bool = False,
        tsig_ctx: Any | None = None,
        prepend_length: bool = False,
        prefer_truncation: bool = False,
        **kw: Any,
    ) -> bytes:
        plain = origin is None and not multi and tsig_ctx is None and not kw
        wire = None
        if plain:
            rendered = self.current()
            if rendered is not None:
                wire = self.id.to_bytes(2, "big") + rendered.rest
            else:
                wire = self._plain_wire()
        if wire is None:
            return super().to_wire(
                origin, max_size, multi, tsig_ctx, prepend_length, prefer_truncation, **kw
            )
        return len(wire).to_bytes(2, "big") + wire if prepend_length else wire

    def _plain_wire(self) -> bytes | None:
        """The wire form of a one-question query without other records, or None if not one.

        At most 282 octets (a 255-octet name), below the 512 every `max_size` is raised to,
        so truncation never applies.
        """
        if (
            len(self.question) != 1
            or self.answer
            or self.authority
            or self.additional
            or self.origin is not None
            or self.tsig is not None
        ):
            return None
        question = self.question[0]
        if not question.name.is_absolute():
            return None
        name = question.name.to_wire()  # uncompressed: the first name has nothing to point to
        assert name is not None
        opt = self.opt
        if opt is None:
            tail = b""
        elif len(opt) != 1:
            return None
        else:
            # Options as dnspython renders them (type, length, data), then the padding option
            # its renderer adds: enough zeros to make the whole message a multiple of `pad`.
            options = b"".join(
                _OPTION.pack(option.otype, len(data)) + data
                for option in opt[0].options
                for data in (option.to_wire(),)
            )
            if self.pad:
                unpadded = _HEADER.size + len(name) + _QUESTION_TAIL.size + _OPT_RR.size
                unpadded += len(options) + _OPTION.size
                padding = -unpadded % self.pad
                options += _OPTION.pack(dns.edns.OptionType.PADDING, padding) + bytes(padding)
            tail = _OPT_RR.pack(0, dns.rdatatype.OPT, opt.rdclass, opt.ttl, len(options))
            tail += options
        header = _HEADER.pack(self.id, self.flags, 1, 0, 0, 0 if opt is None else 1)
        return b"".join(
            (header, name, _QUESTION_TAIL.pack(question.rdtype, question.rdclass), tail)
        )
