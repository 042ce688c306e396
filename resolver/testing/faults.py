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
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from resolver.testing.authority import EDNS_PAYLOAD, answer

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
    if fault is Fault.LAME:
        response = _lame(query, root_ns)
    else:
        response = answer(query, zones)
        plant(response, inject)
    if not tcp:
        truncate = fault is Fault.TRUNCATE or fault is Fault.NO_TCP
        response = fit_udp(query, response, force=truncate)
    if fault is Fault.WRONG_ID:
        response.id = (response.id + 1) % 65536
    return response


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


def _lame(query: dns.message.Message, root_ns: dns.rrset.RRset | None) -> dns.message.Message:
    """An upward referral to the root without AA; empty if this server does not know the root."""
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    if root_ns is not None:
        response.authority.append(root_ns)
    return response
