"""The client-facing protocol: which queries to answer, and the bytes of each reply.

Everything a hostile client can send ends here as FORMERR, REFUSED, NOTIMP or silence. Nothing
here resolves or waits: `admit` says whether a query needs a resolution (and which), `reply`
renders the answer the engine found, `from_packet_cache` answers plain questions from the
packet cache without building a DNS message at all.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import struct
from typing import NamedTuple

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from resolver.cache.packets import (
    DO_BIT,
    PacketCache,
    ParsedQuestion,
    parse_plain_query,
    query_bits,
    ttl_offsets,
)
from resolver.config import Config
from resolver.core.actions import Answer
from resolver.core.reasons import ServfailReason
from resolver.core.security import Security
from resolver.engine import wirewrite
from resolver.engine.messages import MAX_MESSAGE, parse
from resolver.engine.wireparse import name_from_wire

log = logging.getLogger(__name__)

HEADER = struct.Struct("!HHHHHH")
_TYPE_CLASS = struct.Struct("!HH")
_TTL = struct.Struct("!I")
_QR = 0x8000
_QR_RA = _QR | int(dns.flags.RA)
# Header bits a reply copies from the query: opcode, RD and CD (RFC 1035 4.1.1, RFC 4035 3.2.2).
_COPIED_FLAGS = 0x7800 | dns.flags.RD | dns.flags.CD
# RD as a bit of the header's third byte, for the fast path that reads bytes, not messages.
_RD_BYTE = 0x01
_REFUSED_TYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
MIN_UDP_PAYLOAD = 512
# Client addresses whose access-list verdict is remembered; forgotten all at once when full.
_ACCESS_MEMORY = 4096
# Parsed questions of queries the packet cache could not answer, kept for the full path: more
# than the carrier holds back between the two (its backlog of misses, 512 datagrams).
_MISSED_MEMORY = 1024
# The longest query `_admit_plain` takes: header, the longest name, type and class, an OPT
# without options. Only those are remembered, so the table holds at most about 300 KiB.
_MAX_PLAIN_QUERY = 12 + 255 + 4 + 11
# RFC 8914 has no code for "the resolver itself failed": Other (0), with words that say so.
_INTERNAL_ERROR = dns.edns.EDEOption(
    dns.edns.EDECode.make(ServfailReason.INTERNAL_ERROR.ede_code),
    ServfailReason.INTERNAL_ERROR.text,
)
# An RD=0 query where the operator refuses those (`non_recursive_queries`): Prohibited (18).
_PROHIBITED = dns.edns.EDEOption(dns.edns.EDECode.PROHIBITED, "recursion not desired")


def answerable(wire: bytes) -> bool:
    """Whether a datagram can be answered at all: it has an ID to answer to and is not a
    response (QR=1: perhaps one reflected at us). Anything else gets no reply, ever."""
    return len(wire) >= 3 and not wire[2] & 0x80


def header_only(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A reply carrying just the client's ID, opcode, RD and CD, for queries we could not parse
    (or whose full reply could not be rendered)."""
    query_id, flags = struct.unpack_from("!HH", wire.ljust(4, b"\0"))
    flags = (flags & _COPIED_FLAGS) | _QR | dns.flags.RA | rcode
    return HEADER.pack(query_id, flags, 0, 0, 0, 0)


_Sections = tuple[tuple[dns.rrset.RRset, ...], tuple[dns.rrset.RRset, ...]]
# Query bits (`packets.query_bits`): CD and AD as in the header's fourth byte.
CD_BIT = 0x10
AD_BIT = 0x20
_AD_FLAG = int(dns.flags.AD)


def bits_of(query: dns.message.Message) -> int:
    """`packets.query_bits` of a parsed query: its DO, CD and AD bits in one byte."""
    opt_high = (query.ednsflags >> 8) & 0xFF if query.edns >= 0 else 0
    return query_bits(int(query.flags) & 0xFF, opt_high)


def sections(answer: Answer, bits: int) -> _Sections:
    """The answer and authority sections a client with these query bits gets.

    DNSSEC records go only to clients that set DO (RFC 4035 section 3.2.1): each RRSIG RRset
    right after the RRset it covers, the denial or wildcard proof after the authority SOA. A
    question for RRSIG, NSEC or NSEC3 itself is answered with them whatever DO says, since
    they are then the data (`Answer.answer` holds them).
    """
    if not bits & DO_BIT or not (answer.signatures or answer.proof):
        return answer.answer, answer.authority
    signed: list[dns.rrset.RRset] = []
    spare = list(answer.signatures)
    for rrset in answer.answer:
        signed.append(rrset)
        for index, sigs in enumerate(spare):
            if sigs.covers == rrset.rdtype and sigs.name == rrset.name:
                signed.append(spare.pop(index))
                break
    return tuple(signed), (*answer.authority, *answer.proof)


def authenticated(answer: Answer, bits: int) -> bool:
    """Whether the reply carries AD: every RRset of it is SECURE and the client said it
    understands AD, by DO or by AD itself (RFC 6840 section 5.8); never on a failure or on
    stale data, which nobody validated just now."""
    return (
        answer.security is Security.SECURE
        and bool(bits & (DO_BIT | AD_BIT))
        and answer.failure is None
        and not answer.stale
        and answer.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    )


def extended_errors(answer: Answer) -> list[dns.edns.Option]:
    """The Extended DNS Errors (RFC 8914) of an answer, in the words of our logs: why it
    failed, that it is stale, and what validation noted (EDE 1, 2, 27). Several may apply."""
    errors: list[dns.edns.Option] = []
    if answer.failure is not None:
        code = dns.edns.EDECode.make(answer.failure.ede_code)
        text = answer.failure.text
        if answer.detail:  # more words on the failure, e.g. a forwarder's TLS error
            text = f"{text}: {answer.detail}"
        errors.append(dns.edns.EDEOption(code, text))
    elif answer.stale:
        errors.append(dns.edns.EDEOption(dns.edns.EDECode.STALE_ANSWER))
    errors += [
        dns.edns.EDEOption(dns.edns.EDECode.make(note.ede_code), note.text) for note in answer.notes
    ]
    return errors


def _render_sections(
    question: ParsedQuestion, qname: dns.name.Name, sections: _Sections
) -> tuple[bytearray, int, int, list[int]]:
    """A blank header, the question (its name in lowercase, as the packet cache's key holds
    it) and the answer and authority records (`wirewrite`: the bytes of dnspython's rendering,
    without its cost); the two record counts, and where the TTL of each record is (for the
    packet cache, which would otherwise parse them back)."""
    out, compress = wirewrite.start_message(question.key[: question.name_end - 8], qname.labels)
    write = wirewrite.write_rrset
    offsets: list[int] = []
    answers = authority = 0
    for rrset in sections[0]:
        answers += write(out, compress, rrset, offsets)
    for rrset in sections[1]:
        authority += write(out, compress, rrset, offsets)
    return out, answers, authority, offsets


def _render_sections_dnspython(
    wire: bytes, name_end: int, qname: dns.name.Name, sections: _Sections
) -> tuple[bytearray, int, int]:
    """`_render_sections` by dnspython itself, for the records `wirewrite` does not write."""
    out = io.BytesIO()
    out.write(bytes(12))
    compress: dict[dns.name.Name, int] = {}
    qname.to_wire(out, compress)
    out.write(wire[name_end : name_end + 4])
    answers = sum(rrset.to_wire(out, compress) for rrset in sections[0])
    authority = sum(rrset.to_wire(out, compress) for rrset in sections[1])
    return bytearray(out.getbuffer()), answers, authority


def _allowed(address: str, config: Config) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in config.allow)


#: Type codes seen in plain queries -> the type (`RdataType.make`), or `_METATYPE` for one
#: that takes the full path: one dict lookup instead of two calls into dnspython's enum
#: machinery. At most 65,536 small entries, whatever clients send.
_ORDINARY_TYPES: dict[int, dns.rdatatype.RdataType | int] = {}
_METATYPE = -1


def _ordinary_type(qtype: int) -> dns.rdatatype.RdataType | int:
    """`RdataType.make(qtype)`, or `_METATYPE` for ANY, AXFR, OPT...; remembered."""
    metatype = dns.rdatatype.is_metatype(qtype)  # type: ignore[arg-type]  # an int will do
    made = _METATYPE if metatype else dns.rdatatype.RdataType.make(qtype)
    _ORDINARY_TYPES[qtype] = made
    return made


def minimal_any(qname: dns.name.Name, answer: Answer) -> Answer:
    """RFC 8482 answer to ANY: the name's A records, or a synthesised HINFO if it has none.

    ANY is a favourite of amplification attacks and no client needs its full answer; resolving
    a single type keeps the work and the response small while still telling NXDOMAIN apart.
    """
    if answer.rcode != dns.rcode.NOERROR or answer.answer:
        return answer
    ttl = answer.authority[0].ttl if answer.authority else 0
    hinfo = dns.rrset.from_text(qname, ttl, "IN", "HINFO", '"RFC8482" ""')
    return Answer(dns.rcode.NOERROR, (hinfo,))


class Admitted:
    """A well-formed query that needs an answer: the question to resolve and how."""

    __slots__ = ("_query", "bits", "cache_only", "plain", "qname", "qtype", "wire")

    def __init__(
        self,
        wire: bytes,
        query: dns.message.Message | None,
        qname: dns.name.Name,
        qtype: int,
        cache_only: bool,
        plain: ParsedQuestion | None = None,
        bits: int = 0,
    ) -> None:
        self.wire, self._query = wire, query
        #: The type to resolve: A for ANY, which is answered with `minimal_any`.
        self.qname, self.qtype = qname, qtype
        #: RD=0 (RFC 1034 4.3.1): answered from local data and the cache, never by recursion.
        self.cache_only = cache_only
        #: Set for a plain question of an ordinary type with RD=1 (`_admit_plain`): its answer
        #: is rendered from the bytes of the query, without a `dns.message.Message`.
        self.plain = plain
        #: The query's DO, CD and AD bits (`packets.query_bits`): what the reply may carry,
        #: and CD=1 (`CD_BIT`) asks for the data even if it fails validation.
        self.bits = bits

    @property
    def query(self) -> dns.message.Message:
        """The query as a message: parsed by `admit`, or when first needed for a plain one
        (only answers that miss the packet cache need it)."""
        if self._query is None:
            query = parse(self.wire)
            if query is None:  # `_admit_plain` admits only what dnspython parses
                raise ValueError("a plain query that does not parse")
            self._query = query
        return self._query


class PacketHit(NamedTuple):
    """A reply from the packet cache (a named tuple: made on every hit, at half the cost of a
    frozen dataclass)."""

    reply: bytes
    #: The cached answer is close to expiry: worth resolving again (prefetch) if the client
    #: asked us to recurse. `key` identifies it in the packet cache.
    refresh_key: bytes | None


class ClientProtocol:
    """Validation, access control, answer rendering and truncation, and the packet cache."""

    def __init__(self, config: Config, packets: PacketCache) -> None:
        self.config = config
        self.packets = packets
        self._access: dict[str, bool] = {}
        # Plain queries `from_packet_cache` parsed and missed, by their bytes: the carrier
        # hands each to the full path (`admit`) next, which takes the parsed question back
        # instead of parsing it again. Bounded: forgotten all at once when full.
        self._missed: dict[bytes, ParsedQuestion] = {}
        # RD=0 queries under "refuse" must reach the slow path, which refuses them.
        self._refuse_rd0 = config.non_recursive_queries == "refuse"

    def allowed(self, client_address: str) -> bool:
        """The access-list verdict, remembered per address (bounded) to keep hits cheap."""
        verdict = self._access.get(client_address)
        if verdict is None:
            if len(self._access) >= _ACCESS_MEMORY:
                self._access.clear()
            verdict = self._access[client_address] = _allowed(client_address, self.config)
        return verdict

    def _udp_limit(self, client_payload: int | None) -> int:
        if client_payload is None:
            return MIN_UDP_PAYLOAD
        return max(MIN_UDP_PAYLOAD, min(client_payload, self.config.edns_payload))

    def from_packet_cache(self, wire: bytes, client_address: str, tcp: bool) -> PacketHit | None:
        """The reply from the packet cache for a plain, allowed question, or None."""
        if not self.allowed(client_address):
            return None
        # Most hits repeat a recent query: its reply is ready, no parsing (packets.py: why).
        ready = self.packets.answer_again(wire)
        if ready is not None:
            return PacketHit(ready, None)
        question = parse_plain_query(wire)
        if question is None:
            return None
        recursion_desired = wire[2] & _RD_BYTE
        if self._refuse_rd0 and not recursion_desired:
            return None
        limit = MAX_MESSAGE if tcp else self._udp_limit(question.edns_payload)
        # Ready copies only for UDP (its limit fits TCP too) and RD=1 (whatever
        # `non_recursive_queries` says, RD=0 is never served by `answer_again`).
        hit = self.packets.answer(wire, question, limit, not tcp and bool(recursion_desired))
        if hit is None:
            if not recursion_desired or len(wire) > _MAX_PLAIN_QUERY:
                return None  # `_admit_plain` would not take it back: never held
            missed = self._missed
            if len(missed) >= _MISSED_MEMORY:
                missed.clear()
            missed[wire] = question  # for `admit`, which the carrier calls next
            return None
        reply, expiring = hit
        # Only a client that asked us to recurse may make us ask the authorities.
        return PacketHit(reply, question.key if expiring and recursion_desired else None)

    def admit(self, wire: bytes, client_address: str, tcp: bool) -> Admitted | bytes | None:
        """The question to resolve, or the reply that needs no resolution (None: no reply)."""
        if not answerable(wire):
            return None
        if not self.allowed(client_address):
            return header_only(wire, dns.rcode.REFUSED)
        plain = self._admit_plain(wire)
        if plain is not None:
            return plain
        query = parse(wire) if len(wire) >= HEADER.size else None
        if query is None:
            return header_only(wire, dns.rcode.FORMERR)
        refusal = self._refusal(query)
        if refusal is not None:
            return self._render(self._empty_response(query, refusal), query, tcp)
        question = query.question[0]
        cache_only = not query.flags & dns.flags.RD
        if cache_only and self._refuse_rd0:
            response = self._empty_response(query, dns.rcode.REFUSED)
            if response.edns >= 0:
                response.use_edns(0, response.ednsflags, response.payload, options=[_PROHIBITED])
            return self._render(response, query, tcp)
        qtype = dns.rdatatype.A if question.rdtype == dns.rdatatype.ANY else question.rdtype
        return Admitted(wire, query, question.name, qtype, cache_only, bits=bits_of(query))

    def _admit_plain(self, wire: bytes) -> Admitted | None:
        """The common query, admitted from its bytes: a plain question (`parse_plain_query`)
        of class IN and an ordinary type, with RD=1 and an OPT without options, if any.

        Parsing a query into a `dns.message.Message` costs more than the rest of its admission
        and reply together; for these queries every check of `admit` is decided by the bytes
        already (opcode QUERY, one question, EDNS version 0, nothing to refuse), and dnspython
        would parse them (options are left to it: it validates some, and may reject them).
        None: anything else, which takes the full path.
        """
        if not wire[2] & _RD_BYTE:
            return None
        plain = self._missed.pop(wire, None) or parse_plain_query(wire)
        if plain is None:
            return None
        name_end = plain.name_end
        qtype, qclass = _TYPE_CLASS.unpack_from(wire, name_end)
        rdtype = _ORDINARY_TYPES.get(qtype)
        if rdtype is None:
            rdtype = _ordinary_type(qtype)
        if qclass != dns.rdataclass.IN or rdtype == _METATYPE:
            return None  # ANY, zone transfers, other classes: the full path
        if plain.edns_payload is not None and len(wire) != name_end + 4 + 11:
            return None  # EDNS options
        try:
            qname = name_from_wire(wire, 12)
        except dns.exception.DNSException:
            return None
        return Admitted(wire, None, qname, rdtype, cache_only=False, plain=plain, bits=plain.bits)

    def reply(self, wire: bytes, admitted: Admitted, answer: Answer, tcp: bool) -> bytes:
        """The reply to `admitted`; a fresh answer to a plain question fills the packet cache,
        rendered once there, and the client gets its copy (unless it must be truncated)."""
        plain = admitted.plain
        if plain is not None:
            rendered = self._render_stored(wire, plain, admitted.qname, answer)
            if rendered is not None:
                limit = MAX_MESSAGE if tcp else self._udp_limit(plain.edns_payload)
                stored, offsets, lifetime = rendered
                copy = self.packets.store_and_answer(
                    plain.key, stored, offsets, lifetime, wire, plain, limit
                )
                if copy is not None:
                    return copy
                # Not kept (no TTL, or none left) or too large: an entry kept earlier may still
                # answer, as it would on the next query; else the full rendering.
                hit = self.packets.answer(wire, plain, limit)
                if hit is not None:
                    return hit[0]
        else:
            query = admitted.query
            question = query.question[0]
            if question.rdtype == dns.rdatatype.ANY:
                return self._render(
                    self._response(query, minimal_any(question.name, answer)), query, tcp
                )
            if admitted.cache_only:
                # Not for the packet cache: a referral made for an RD=0 client must never be
                # served to one that asked us to recurse.
                return self._render(self._response(query, answer), query, tcp)
            plain = self.remember(wire, query, answer)
            if plain is not None:
                limit = MAX_MESSAGE if tcp else self._udp_limit(plain.edns_payload)
                hit = self.packets.answer(wire, plain, limit)
                if hit is not None:
                    return hit[0]
        query = admitted.query
        return self._render(self._response(query, answer), query, tcp)

    def remember(
        self, wire: bytes, query: dns.message.Message, answer: Answer
    ) -> ParsedQuestion | None:
        """Put a fresh, complete answer to a plain question into the packet cache.

        Returns the parsed plain question when the answer was offered to the packet cache. An
        answer too large for any message is not stored: rendering it for the client says what
        happens (TC=1 over UDP, SERVFAIL over TCP).
        """
        if not query.flags & dns.flags.RD:
            return None  # cache-only answers (referrals) are for RD=0 clients alone
        question = parse_plain_query(wire)
        if question is None or len(query.question) != 1:
            return None
        if not self._store(wire, question, query.question[0].name, answer):
            return None
        return question

    def _store(
        self, wire: bytes, question: ParsedQuestion, qname: dns.name.Name, answer: Answer
    ) -> bool:
        """Offer a fresh, complete answer to the plain question of `wire` to the packet cache
        (`_render_stored`); False if it is not one, or too large for any message."""
        rendered = self._render_stored(wire, question, qname, answer)
        if rendered is None:
            return False
        stored, offsets, lifetime = rendered
        self.packets.store_rendered(question.key, bytes(stored), offsets, lifetime)
        return True

    def _render_stored(
        self, wire: bytes, question: ParsedQuestion, qname: dns.name.Name, answer: Answer
    ) -> tuple[bytearray, tuple[int, ...], int] | None:
        """A fresh, complete answer to the plain question of `wire`, rendered for the packet
        cache: the bytes (not yet copied to `bytes`: the packet cache may make them the
        client's reply in place), where their TTLs are and the smallest of them; None if it is
        not one, or too large for any message.

        Rendered here rather than by `dns.message.Message.to_wire`: a message built only to be
        rendered costs more than the rendering. The bytes are the same: the query's ID, QR and
        RA (RD and CD clear: the packet cache copies the client's), the question as the client
        wrote it, then lowercased, the records compressed as dnspython compresses them
        (`wirewrite`, which writes them in a fraction of dnspython's time), no OPT.
        """
        if answer.failure is not None or answer.stale or answer.notes:
            return None  # EDE options: the packet cache writes a bare OPT
        security = answer.security
        if security is Security.BOGUS:
            return None  # only for CD=1 clients (`packets`: why CD is no key)
        rcode = answer.rcode
        if rcode != dns.rcode.NOERROR and rcode != dns.rcode.NXDOMAIN:
            return None
        parts = sections(answer, question.bits)
        offsets: list[int] | tuple[int, ...] | None
        try:
            if not (wirewrite.handles(parts[0]) and wirewrite.handles(parts[1])):
                raise wirewrite.Unhandled("a type or class that wirewrite does not write")
            stored, answers, authority, offsets = _render_sections(question, qname, parts)
        except wirewrite.Unhandled:
            name_end = question.name_end
            stored, answers, authority = _render_sections_dnspython(wire, name_end, qname, parts)
            stored[12:name_end] = stored[12:name_end].lower()
            offsets = None
        if len(stored) > MAX_MESSAGE:
            return None
        flags = _QR_RA | int(rcode)  # ints: an enum's `|` is a Python call
        if security is Security.SECURE:
            flags |= _AD_FLAG  # cleared on a hit for a query with neither DO nor AD
        HEADER.pack_into(stored, 0, wire[0] << 8 | wire[1], flags, 1, answers, authority, 0)
        if offsets is None:
            offsets = ttl_offsets(bytes(stored))  # dnspython's rendering: read them back
        lifetime = min([_TTL.unpack_from(stored, offset)[0] for offset in offsets], default=0)
        return stored, tuple(offsets), lifetime

    def failure(self, wire: bytes, tcp: bool) -> bytes | None:
        """SERVFAIL for a query whose handling raised: with its question and an Extended DNS
        Error if the client sent EDNS, or just the header if even that cannot be rendered."""
        if not answerable(wire):
            return None
        try:
            query = parse(wire)
            if query is not None and len(query.question) == 1:
                response = self._empty_response(query, dns.rcode.SERVFAIL)
                if response.edns >= 0:
                    response.use_edns(
                        0, response.ednsflags, response.payload, options=[_INTERNAL_ERROR]
                    )
                return self._render(response, query, tcp)
        except Exception:
            log.error("could not render a SERVFAIL; sending just the header", exc_info=True)
        return header_only(wire, dns.rcode.SERVFAIL)

    def _refusal(self, query: dns.message.Message) -> dns.rcode.Rcode | None:
        """The rcode for a query we will not resolve, or None if it is a fine question."""
        if query.opcode() != dns.opcode.QUERY:
            return dns.rcode.NOTIMP
        if query.edns > 0:
            return dns.rcode.BADVERS  # RFC 6891 6.1.3: we speak EDNS version 0 only
        if len(query.question) != 1:
            return dns.rcode.FORMERR
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            return dns.rcode.REFUSED
        if question.rdtype in _REFUSED_TYPES:
            return dns.rcode.REFUSED
        if dns.rdatatype.is_metatype(question.rdtype) and question.rdtype != dns.rdatatype.ANY:
            return dns.rcode.FORMERR
        return None

    def _empty_response(
        self, query: dns.message.Message, rcode: dns.rcode.Rcode
    ) -> dns.message.Message:
        response = dns.message.make_response(
            query, recursion_available=True, our_payload=self.config.edns_payload
        )
        # RFC 4035 3.2.2: CD is copied. AD is set by `_response` alone, for a secure answer.
        response.flags |= query.flags & dns.flags.CD
        if response.edns >= 0 and query.ednsflags & dns.flags.DO:
            response.ednsflags |= dns.flags.DO  # echoed (RFC 3225 section 3)
        response.set_rcode(rcode)
        return response

    def _response(self, query: dns.message.Message, answer: Answer) -> dns.message.Message:
        response = self._empty_response(query, answer.rcode)
        bits = bits_of(query)
        answer_section, authority_section = sections(answer, bits)
        response.answer = list(answer_section)
        response.authority = list(authority_section)
        if authenticated(answer, bits):
            response.flags |= dns.flags.AD
        # Extended DNS Errors (RFC 8914) tell an EDNS client why, in the words of our logs.
        errors = extended_errors(answer)
        if errors and response.edns >= 0:
            response.use_edns(0, response.ednsflags, response.payload, options=errors)
        return response

    def _render(
        self, response: dns.message.Message, query: dns.message.Message, tcp: bool
    ) -> bytes:
        """Wire bytes; over UDP, TC=1 with no records if it exceeds what the client accepts."""
        if tcp:
            return response.to_wire(max_size=MAX_MESSAGE)
        limit = self._udp_limit(query.payload if query.edns >= 0 else None)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer, response.authority, response.additional = [], [], []
            response.flags |= dns.flags.TC
            return response.to_wire()
