"""What a response may be believed about: the question it answers and the zone it speaks for.

A server is only trusted for names inside the zone it was asked as (its bailiwick); anything else
it sends is dropped here before anything is classified or cached (RFC 2181, Kaminsky-style
poisoning).
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import dns.message
import dns.name
import dns.rdataclass
import dns.rrset

from resolver.core.actions import BareHeader

_HEADER_SIZE = 12
_QR, _OPCODE, _TC, _RCODE, _FORMERR = 0x8000, 0x7800, 0x0200, 0x000F, 1


def is_response_to(
    query: dns.message.Message, response: dns.message.Message, *, exact_case: bool = False
) -> bool:
    """The response carries our ID and echoes our question (RFC 5452 section 3).

    With `exact_case` (0x20 randomisation), the name must come back with the very letter case
    we sent: a blind spoofer has to guess one more bit per letter.
    """
    # Flags as plain ints: `&` on dnspython's Flag enums builds an enum member each time.
    flags = int(response.flags)
    if response.id != query.id or not flags & _QR:
        return False
    if (flags ^ int(query.flags)) & _OPCODE:  # RFC 1035 4.1.1: the opcode is copied back
        return False
    if len(response.question) != 1 or len(query.question) != 1:
        return False
    asked, echoed = query.question[0], response.question[0]
    if (asked.rdtype, asked.rdclass) != (echoed.rdtype, echoed.rdclass):
        return False
    return (
        asked.name.labels == echoed.name.labels
        if exact_case
        else same_name(asked.name, echoed.name)
    )


def randomize_case(name: dns.name.Name, rng: random.Random) -> dns.name.Name:
    """The name with each ASCII letter's case flipped at random (draft-vixie-dnsext-dns0x20)."""
    labels = []
    for label in name.labels:
        bits = rng.getrandbits(len(label)) if label else 0
        labels.append(
            bytes(
                byte ^ 0x20 if 0x61 <= byte | 0x20 <= 0x7A and bits >> index & 1 else byte
                for index, byte in enumerate(label)
            )
        )
    return dns.name.Name(labels)


def in_bailiwick(section: Iterable[dns.rrset.RRset], zone: dns.name.Name) -> list[dns.rrset.RRset]:
    """The RRsets of a section that the zone's servers may speak for (class IN only)."""
    return [
        rrset
        for rrset in section
        if rrset.rdclass == dns.rdataclass.IN and is_within(rrset.name, zone)
    ]


def is_within(name: dns.name.Name, zone: dns.name.Name) -> bool:
    """`name.is_subdomain(zone)`, first tried as the labels themselves: a server nearly always
    spells the names of its zone as they were asked, and dnspython compares two names by
    lower-casing every label of both (microseconds). Labels ending in the zone's own labels,
    letter case included, are below it, whether the names are absolute or relative."""
    labels = zone.labels
    if labels and name.labels[-len(labels) :] == labels:
        return True
    return name.is_subdomain(zone)


def same_name(one: dns.name.Name, other: dns.name.Name) -> bool:
    """`one == other`, first tried as the labels themselves (see `is_within`)."""
    return one.labels == other.labels or one == other


def bare_header(data: bytes, message: dns.message.Message | None) -> BareHeader | None:
    """The header of a reply that did not parse or carries no question, if it means something.

    Only TC=1 ("ask over TCP") and FORMERR (from an EDNS-intolerant server) do, and both only
    make the resolver ask again in a safer way; anything else that fails to parse is ignored
    like any other stray datagram, and the wait for the real answer goes on.
    """
    if len(data) < _HEADER_SIZE or (message is not None and message.question):
        return None
    flags = int.from_bytes(data[2:4], "big")
    if not flags & _QR or flags & _OPCODE or not (flags & _TC or flags & _RCODE == _FORMERR):
        return None  # not a reply to our (opcode QUERY) query, or nothing it says counts
    return BareHeader(flags)
