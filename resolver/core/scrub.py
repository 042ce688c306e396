"""What a response may be believed about: the question it answers and the zone it speaks for.

A server is only trusted for names inside the zone it was asked as (its bailiwick); anything else
it sends is dropped here before anything is classified or cached (RFC 2181, Kaminsky-style
poisoning).
"""

from __future__ import annotations

from collections.abc import Iterable

import dns.message
import dns.name
import dns.rdataclass
import dns.rrset


def answers_question(query: dns.message.Message, response: dns.message.Message) -> bool:
    """The response echoes exactly our question (name compared case-insensitively)."""
    if len(response.question) != 1 or len(query.question) != 1:
        return False
    asked, echoed = query.question[0], response.question[0]
    return (asked.name, asked.rdtype, asked.rdclass) == (
        echoed.name,
        echoed.rdtype,
        echoed.rdclass,
    )


def in_bailiwick(section: Iterable[dns.rrset.RRset], zone: dns.name.Name) -> list[dns.rrset.RRset]:
    """The RRsets of a section that the zone's servers may speak for (class IN only)."""
    return [
        rrset
        for rrset in section
        if rrset.rdclass == dns.rdataclass.IN and rrset.name.is_subdomain(zone)
    ]
