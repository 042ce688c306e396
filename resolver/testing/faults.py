"""The ways a test server can be told to misbehave, and what each one sends back.

Pure like `authority`: faults, truncation and the message id are decided here so that the socket
servers and `TestInternet.respond()` share one code path, and a resolver test driven without
sockets sees exactly what a resolver talking to the real servers would see.
"""

from __future__ import annotations

import enum
import os
import random
from collections.abc import Iterable, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from resolver.testing.authority import (
    EDNS_PAYLOAD,
    answer,
    is_empty_non_terminal,
    negative_soa,
    zone_origin,
)

#: What a server sends back: a message, raw bytes (GARBAGE), or nothing at all.
Reply = dns.message.Message | bytes | None

#: RFC 1035 limit for a UDP response to a query without EDNS.
CLASSIC_UDP_PAYLOAD = 512

#: Where injected records may go, as in `AuthServer.inject`: (section name, rrset).
Injection = tuple[str, dns.rrset.RRset]

#: The sections `inject` accepts; the question section is not data a server could plant.
INJECTABLE_SECTIONS = ("answer", "authority", "additional")

#: The address every forged SPOOF answer claims; outside loopback and every test zone, so a
#: resolver that accepted a forgery is caught by a plain comparison.
POISON_ADDRESS = "6.6.6.6"

#: A name the forgeries also try to plant in the additional section, as a Kaminsky-style attacker
#: would: it only ends up in a cache that trusts out-of-bailiwick data from a forged packet.
POISON_NAME = dns.name.from_text("poison.test.")

#: TTL of the forged records: long, so that accepted poison stays visible in a cache.
POISON_TTL = 86400

#: Loopback source of the SPOOF forgery sent from "another host". No test server may use it
#: (`AuthServer` refuses it), so a datagram from it can only be a forgery.
SPOOF_SOURCE_ADDRESS = "127.53.255.254"

#: How many forgeries with a wrong message id SPOOF sends per query.
SPOOF_WRONG_IDS = 50

#: The zone a SIDEWAYS_REFERRAL points at: under test. but served by nobody, and neither an
#: ancestor nor a descendant of any name a test asks about.
SIDEWAYS_ZONE = dns.name.from_text("elsewhere.test.")

#: Used instead of `SIDEWAYS_ZONE` when the question is at or below it (or above it, as for
#: `test.` itself), so that the referral is always sideways.
SIDEWAYS_FALLBACK_ZONE = dns.name.from_text("elsewhere.invalid.")

#: The answer count UNPARSEABLE_TC claims: more records than a 12-byte datagram can hold.
UNPARSEABLE_ANCOUNT = 5


class Fault(enum.Enum):
    """A misbehaviour seen from real authoritative servers, which a resolver must survive."""

    NONE = "none"
    #: Never answer, over UDP or TCP: the server is down or firewalled.
    DROP = "drop"
    #: Answer correctly but only after the server's `delay`: a slow or distant server.
    DELAY = "delay"
    #: Every UDP answer is TC=1 with empty sections; TCP answers normally.
    TRUNCATE = "truncate"
    REFUSED = "refused"
    SERVFAIL = "servfail"
    #: Random bytes behind the query's id, which never parse as a DNS message.
    GARBAGE = "garbage"
    #: The right answer with id + 1: what a spoofing attempt or a broken middlebox looks like.
    WRONG_ID = "wrong_id"
    #: A non-authoritative upward referral to the root: the classic lame delegation.
    LAME = "lame"
    #: FORMERR without OPT for any query with EDNS: a pre-EDNS server, to test the fallback.
    NO_EDNS = "no_edns"
    #: UDP is ignored, TCP works: a server behind a firewall that drops UDP.
    TCP_ONLY = "tcp_only"
    #: Every UDP answer is TC=1 with empty sections, and TCP connections are closed at once
    #: without reading: a server that truncates but whose TCP is broken or firewalled.
    NO_TCP = "no_tcp"
    #: A blind spoofer races every UDP answer: forged datagrams (see `forge`) reach the querier
    #: first, the genuine answer follows after the server's `spoof_delay`. Socket-level only:
    #: over TCP and in `respond()` the server answers normally.
    SPOOF = "spoof"
    #: Answers exactly as usual, but never sets AA: load balancers and DNS "accelerators" in
    #: front of an authority, and some authoritative implementations, omit it on every answer.
    NO_AA = "no_aa"
    #: A recursive resolver (an open resolver listed as a name server, or a middlebox that
    #: redirects port 53) stands at the address: every response has RA=1 and AA=0, with the
    #: normal data, positive answers included.
    RECURSIVE = "recursive"
    #: A DNS interceptor (captive portal, ISP "search assist", a hotel network): every query
    #: gets NXDOMAIN with RA=1, AA=0, empty sections and no SOA, whatever the name.
    INTERCEPT = "intercept"
    #: Referrals are sent with AA=1: broken authoritative servers that set AA on everything.
    AA_REFERRAL = "aa_referral"
    #: For every query, an AA=1 referral to the root (root NS in authority, empty answer): an
    #: old BIND with a root hints "zone" loaded as authoritative. LAME is the variant without AA.
    UPWARD_REFERRAL = "upward_referral"
    #: NOERROR with an empty answer and an NS set for an unrelated zone (`SIDEWAYS_ZONE`) in the
    #: authority section, no AA: a server that once hosted the zone and now points elsewhere, or
    #: a misconfigured hosting provider's catch-all.
    SIDEWAYS_REFERRAL = "sideways_referral"
    #: Answers containing a DNAME leave the synthesised CNAME out: servers predating RFC 6672's
    #: requirement (and some DNS proxies that drop records they do not understand).
    DNAME_NO_CNAME = "dname_no_cname"
    #: When the answer ends in a CNAME whose target is outside the server's zones, the rcode is
    #: NXDOMAIN anyway, with the zone's SOA: broken servers that report the rcode of the last
    #: name they looked up. RFC 6604 says the rcode belongs to the last name, and a server not
    #: authoritative for it says nothing about it.
    CNAME_NXDOMAIN = "cname_nxdomain"
    #: Over UDP the reply is a bare 12-byte header with the query's id, QR=1, TC=1 and an answer
    #: count (`UNPARSEABLE_ANCOUNT`) larger than the datagram can hold, so it never parses; TCP
    #: answers normally. Seen from servers and middleboxes that truncate by cutting the packet.
    UNPARSEABLE_TC = "unparseable_tc"
    #: An EDNS-intolerant server: a query with EDNS gets FORMERR as a bare header (QDCOUNT=0, no
    #: OPT), as old or minimal implementations that reject the OPT record do; a query without
    #: EDNS is answered normally. NO_EDNS is the variant that echoes the question.
    FORMERR_NO_QUESTION = "formerr_no_question"
    #: Empty non-terminals are answered NXDOMAIN (AA, with SOA): servers predating RFC 8020's
    #: clarification, which break a resolver that believes every minimised NXDOMAIN.
    ENT_NXDOMAIN = "ent_nxdomain"
    #: Queries for empty non-terminals are REFUSED: servers (and some firewalls) that only
    #: answer for names that own records, which breaks QNAME minimisation.
    ENT_REFUSED = "ent_refused"
    #: Queries for empty non-terminals get NOERROR with AA=0 and empty sections (no SOA): a
    #: reply that says nothing, from servers that treat unknown names inside a zone badly.
    ENT_EMPTY = "ent_empty"


#: Faults that only change queries for empty non-terminals of the served zones.
ENT_FAULTS = frozenset({Fault.ENT_NXDOMAIN, Fault.ENT_REFUSED, Fault.ENT_EMPTY})


class Forgery(enum.Enum):
    """What a SPOOF forgery gets wrong; each one fails exactly one of RFC 5452's checks.

    A resolver is only safe if it checks all four, so each kind catches one missing check.
    """

    #: Sent from the server's own address and port with the right question, but another id.
    WRONG_ID = "wrong_id"
    #: Right id, address and port, but a question the resolver never asked.
    WRONG_QUESTION = "wrong_question"
    #: Right id and question from the server's port number, but from `SPOOF_SOURCE_ADDRESS`.
    WRONG_ADDRESS = "wrong_address"
    #: Right id and question from the server's address, but from another source port.
    WRONG_PORT = "wrong_port"


def react(
    fault: Fault,
    query: dns.message.Message,
    tcp: bool,
    zones: Sequence[dns.zone.Zone],
    root_ns: dns.rrset.RRset | None = None,
    inject: Iterable[Injection] = (),
) -> Reply:
    """What a server serving `zones` and suffering `fault` sends back for `query`.

    DELAY and SPOOF's forgeries are not applied here: time and extra datagrams belong to the
    socket layer. Responses (QR set) are never answered, so two test servers can never be made to
    talk to each other in a loop. `inject` is planted in every response built from the zones
    (see `plant`), before UDP truncation, so planted data counts towards the size like any other.
    GARBAGE, UNPARSEABLE_TC and FORMERR_NO_QUESTION reply with bytes that a parser rejects or
    that carry no question; the single dropped datagrams of `AuthServer.drop_next` are decided
    by the server, which counts them.
    """
    if query.flags & dns.flags.QR:
        return None
    if fault is Fault.DROP or (fault is Fault.TCP_ONLY and not tcp):
        return None
    if fault is Fault.NO_TCP and tcp:
        return None
    if fault is Fault.GARBAGE:
        return garbage(query.id)
    if fault is Fault.REFUSED:
        return _error(query, dns.rcode.REFUSED)
    if fault is Fault.SERVFAIL:
        return _error(query, dns.rcode.SERVFAIL)
    if fault is Fault.NO_EDNS and query.edns >= 0:
        formerr = _error(query, dns.rcode.FORMERR)
        formerr.use_edns(False)
        return formerr
    if fault is Fault.FORMERR_NO_QUESTION and query.edns >= 0:
        return bare_header(query, dns.rcode.FORMERR)
    if fault is Fault.UNPARSEABLE_TC and not tcp:
        return bare_header(query, dns.rcode.NOERROR, tc=True, ancount=UNPARSEABLE_ANCOUNT)
    if fault is Fault.INTERCEPT:
        return _intercepted(query)
    if fault in ENT_FAULTS and _asks_empty_non_terminal(query, zones):
        return _broken_empty_non_terminal(fault, query, zones)
    if fault is Fault.LAME or fault is Fault.UPWARD_REFERRAL:
        response = _lame(query, root_ns)
        if fault is Fault.UPWARD_REFERRAL:
            response.flags |= dns.flags.AA
    elif fault is Fault.SIDEWAYS_REFERRAL:
        response = _sideways(query)
    else:
        response = answer(query, zones)
        plant(response, inject)
        _distort(fault, query, response, zones)
    if not tcp:
        truncate = fault is Fault.TRUNCATE or fault is Fault.NO_TCP
        response = fit_udp(query, response, force=truncate)
    if fault is Fault.WRONG_ID:
        response.id = (response.id + 1) % 65536
    return response


def _distort(
    fault: Fault,
    query: dns.message.Message,
    response: dns.message.Message,
    zones: Sequence[dns.zone.Zone],
) -> None:
    """Apply the faults that send the usual data with wrong flags, rcode or records."""
    if fault is Fault.NO_AA:
        response.flags &= ~dns.flags.AA
    elif fault is Fault.RECURSIVE:
        response.flags &= ~dns.flags.AA
        response.flags |= dns.flags.RA
    elif fault is Fault.AA_REFERRAL and is_referral(response):
        response.flags |= dns.flags.AA
    elif fault is Fault.DNAME_NO_CNAME:
        response.answer = _without_synthesised_cnames(response.answer)
    elif fault is Fault.CNAME_NXDOMAIN and _ends_outside(query, response, zones):
        response.set_rcode(dns.rcode.NXDOMAIN)
        zone = _zone_of(response.answer[0].name, zones)
        if zone is not None:
            response.authority.append(negative_soa(zone))


def is_referral(response: dns.message.Message) -> bool:
    """Whether `response` is shaped like a referral: NOERROR, empty answer, NS in authority."""
    return (
        response.rcode() == dns.rcode.NOERROR
        and not response.answer
        and any(rrset.rdtype == dns.rdatatype.NS for rrset in response.authority)
    )


def _without_synthesised_cnames(answer: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """`answer` minus every CNAME whose owner is strictly below a DNAME owner listed before it."""
    kept: list[dns.rrset.RRset] = []
    owners: list[dns.name.Name] = []
    for rrset in answer:
        if rrset.rdtype == dns.rdatatype.DNAME:
            owners.append(rrset.name)
        elif rrset.rdtype == dns.rdatatype.CNAME and any(
            rrset.name != owner and rrset.name.is_subdomain(owner) for owner in owners
        ):
            continue
        kept.append(rrset)
    return kept


def _ends_outside(
    query: dns.message.Message, response: dns.message.Message, zones: Sequence[dns.zone.Zone]
) -> bool:
    """Whether the answer ends in a CNAME whose target none of `zones` contains."""
    if not response.answer or query.question[0].rdtype == dns.rdatatype.CNAME:
        return False
    last = response.answer[-1]
    if last.rdtype != dns.rdatatype.CNAME:
        return False
    return _zone_of(last[0].target, zones) is None


def _zone_of(name: dns.name.Name, zones: Sequence[dns.zone.Zone]) -> dns.zone.Zone | None:
    """The most specific of `zones` containing `name`, if any."""
    candidates = [zone for zone in zones if name.is_subdomain(zone_origin(zone))]
    return max(candidates, key=lambda zone: len(zone_origin(zone)), default=None)


def _asks_empty_non_terminal(query: dns.message.Message, zones: Sequence[dns.zone.Zone]) -> bool:
    """Whether `query` is a well-formed question for an empty non-terminal of `zones`."""
    if len(query.question) != 1:
        return False
    return is_empty_non_terminal(query.question[0].name, zones)


def _broken_empty_non_terminal(
    fault: Fault, query: dns.message.Message, zones: Sequence[dns.zone.Zone]
) -> dns.message.Message:
    """What the ENT_* faults send for an empty non-terminal instead of NODATA."""
    if fault is Fault.ENT_REFUSED:
        return _error(query, dns.rcode.REFUSED)
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    if fault is Fault.ENT_NXDOMAIN:
        response.flags |= dns.flags.AA
        response.set_rcode(dns.rcode.NXDOMAIN)
        zone = _zone_of(query.question[0].name, zones)
        if zone is not None:
            response.authority.append(negative_soa(zone))
    return response


def bare_header(
    query: dns.message.Message, rcode: dns.rcode.Rcode, *, tc: bool = False, ancount: int = 0
) -> bytes:
    """A 12-byte response header for `query`: its id, opcode and RD, QR set, no question.

    With `ancount` above zero the header claims records that are not there, so the datagram
    never parses; without, it parses but carries no question to match. Either way only a client
    that reads the header before parsing can tell what the server meant.
    """
    flags = dns.flags.QR | (query.flags & dns.flags.RD) | dns.opcode.to_flags(query.opcode())
    if tc:
        flags |= dns.flags.TC
    flags |= int(rcode) & 0xF
    counts = (0, ancount, 0, 0)
    return b"".join(value.to_bytes(2, "big") for value in (query.id, flags, *counts))


def refuses_tcp(fault: Fault) -> bool:
    """Whether a server with `fault` closes TCP connections before reading any query."""
    return fault is Fault.NO_TCP


def plant(response: dns.message.Message, inject: Iterable[Injection]) -> None:
    """Append `inject`'s rrsets to `response`, if it is an answer, referral or negative answer.

    This is a malicious or compromised authority planting records for zones it does not serve
    (cache poisoning): the resolver must drop whatever is out of the answering zone's bailiwick.
    Error responses are left alone because resolvers discard their sections anyway, so planting
    there would test nothing. Copies are planted so that no response shares an rrset object
    with the server's list or with another response.
    """
    if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return
    for section, rrset in inject:
        if section not in INJECTABLE_SECTIONS:
            raise ValueError(f"cannot inject into section {section!r}")
        getattr(response, section).append(rrset.copy())


def forge(
    query: dns.message.Message, rng: random.Random, wrong_ids: int = SPOOF_WRONG_IDS
) -> list[tuple[Forgery, dns.message.Message]]:
    """The forged answers a blind spoofer sends for `query`, in the order they are sent.

    Each claims the queried name has address `POISON_ADDRESS` and plants `POISON_NAME` in the
    additional section. First `wrong_ids` of them with distinct random ids other than the query's,
    then one each of WRONG_QUESTION, WRONG_ADDRESS and WRONG_PORT (the latter two are identical
    messages: only the socket layer makes them wrong, by where it sends them from). The question
    is echoed with its letter case so that only the intended check can reject each one.
    A query without a question gets no forgeries: there is no name to poison.
    """
    if len(query.question) != 1:
        return []
    name = query.question[0].name
    forged: list[tuple[Forgery, dns.message.Message]] = []
    for offset in rng.sample(range(1, 65536), wrong_ids):
        message = _poisoned(query, name)
        message.id = (query.id + offset) % 65536
        forged.append((Forgery.WRONG_ID, message))
    asked = query.question[0]
    other_question = _poisoned(query, name)
    # A new rrset: the response's question list holds the query's own, which must stay intact.
    other_question.question = [dns.rrset.RRset(_other_name(name), asked.rdclass, asked.rdtype)]
    forged.append((Forgery.WRONG_QUESTION, other_question))
    forged.append((Forgery.WRONG_ADDRESS, _poisoned(query, name)))
    forged.append((Forgery.WRONG_PORT, _poisoned(query, name)))
    return forged


def _poisoned(query: dns.message.Message, name: dns.name.Name) -> dns.message.Message:
    """An authoritative-looking answer to `query` that says `name` is at `POISON_ADDRESS`."""
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    response.flags |= dns.flags.AA
    response.answer.append(
        dns.rrset.from_text(name, POISON_TTL, dns.rdataclass.IN, dns.rdatatype.A, POISON_ADDRESS)
    )
    response.additional.append(
        dns.rrset.from_text(
            POISON_NAME, POISON_TTL, dns.rdataclass.IN, dns.rdatatype.A, POISON_ADDRESS
        )
    )
    return response


def _other_name(name: dns.name.Name) -> dns.name.Name:
    """`name` with an extra leading label `x`, or a fixed other name if that is too long."""
    try:
        return dns.name.Name((b"x", *name.labels))
    except dns.name.NameTooLong:
        return dns.name.from_text("x.poison.test.")


def udp_limit(query: dns.message.Message) -> int:
    """The largest UDP response the client said it accepts (never below the classic 512)."""
    if query.edns >= 0:
        return max(CLASSIC_UDP_PAYLOAD, query.payload)
    return CLASSIC_UDP_PAYLOAD


def fit_udp(
    query: dns.message.Message, response: dns.message.Message, force: bool = False
) -> dns.message.Message:
    """`response`, or if it does not fit the client's UDP limit, an empty TC=1 copy of it.

    All sections are emptied rather than partly filled, like most servers do, so a resolver
    must retry over TCP instead of using a partial rrset.
    """
    if not force and _fits(response, udp_limit(query)):
        return response
    truncated = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    truncated.flags = response.flags | dns.flags.TC
    truncated.set_rcode(response.rcode())
    if response.edns < 0:
        truncated.use_edns(False)
    return truncated


def _fits(message: dns.message.Message, limit: int) -> bool:
    """Whether `message` renders in `limit` bytes (dnspython stops rendering at the limit)."""
    try:
        message.to_wire(max_size=limit)
    except dns.exception.TooBig:
        return False
    return True


def garbage(query_id: int) -> bytes:
    """Bytes that carry the query's id but can never parse as a DNS message.

    Echoing the id makes the client unable to discard them as unrelated traffic; a question count
    of 65535 that does not fit in the few bytes that follow makes parsing fail every time, so
    tests are deterministic even though the tail is random.
    """
    header = query_id.to_bytes(2, "big") + b"\x81\x80" + b"\xff\xff" * 4
    return header + os.urandom(8 + os.urandom(1)[0] % 32)


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    """An empty response carrying only `rcode`."""
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    response.set_rcode(rcode)
    return response


def _intercepted(query: dns.message.Message) -> dns.message.Message:
    """What an interceptor says to anything: NXDOMAIN, RA=1, AA=0, nothing else."""
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    response.flags |= dns.flags.RA
    response.set_rcode(dns.rcode.NXDOMAIN)
    return response


def _sideways(query: dns.message.Message) -> dns.message.Message:
    """A non-AA referral to a zone that is neither above nor below the question."""
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    zone = SIDEWAYS_ZONE
    if query.question:
        name = query.question[0].name
        if name.is_subdomain(zone) or zone.is_subdomain(name):
            zone = SIDEWAYS_FALLBACK_ZONE
    ns = dns.rrset.from_text(
        zone, 172800, dns.rdataclass.IN, dns.rdatatype.NS, f"ns1.{zone.to_text()}"
    )
    response.authority.append(ns)
    return response


def _lame(query: dns.message.Message, root_ns: dns.rrset.RRset | None) -> dns.message.Message:
    """An upward referral to the root without AA; empty if this server does not know the root."""
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    if root_ns is not None:
        response.authority.append(root_ns)
    return response
