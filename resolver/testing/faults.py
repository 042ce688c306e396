"""The ways a test server can be told to misbehave, and what each one sends back.

Pure like `authority`: faults, truncation and the message id are decided here so that the socket
servers and `TestInternet.respond()` share one code path, and a resolver test driven without
sockets sees exactly what a resolver talking to the real servers would see.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import dns.zone

from resolver.testing.authority import EDNS_PAYLOAD, answer

#: What a server sends back: a message, raw bytes (GARBAGE), or nothing at all.
Reply = dns.message.Message | bytes | None

#: RFC 1035 limit for a UDP response to a query without EDNS.
CLASSIC_UDP_PAYLOAD = 512


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


def react(
    fault: Fault,
    query: dns.message.Message,
    tcp: bool,
    zones: Sequence[dns.zone.Zone],
    root_ns: dns.rrset.RRset | None = None,
) -> Reply:
    """What a server serving `zones` and suffering `fault` sends back for `query`.

    DELAY is not applied here: time belongs to the socket layer. Responses (QR set) are never
    answered, so two test servers can never be made to talk to each other in a loop.
    """
    if query.flags & dns.flags.QR:
        return None
    if fault is Fault.DROP or (fault is Fault.TCP_ONLY and not tcp):
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
    response = _lame(query, root_ns) if fault is Fault.LAME else answer(query, zones)
    if not tcp:
        response = fit_udp(query, response, force=fault is Fault.TRUNCATE)
    if fault is Fault.WRONG_ID:
        response.id = (response.id + 1) % 65536
    return response


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
