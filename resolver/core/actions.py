"""The vocabulary between the pure iterator and whoever carries its packets.

The iterator says `SendQuery` (or `Done`); the carrier answers with an `Outcome`. Nothing here
does I/O, so tests can play the network from a script.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.rrset

from resolver.core.reasons import ServfailReason


@dataclass(frozen=True, slots=True)
class Server:
    """One address of a name server; `name` is the NS name it was found under, for traces."""

    address: str
    port: int = 53
    name: dns.name.Name | None = None


@dataclass(frozen=True, slots=True)
class SendQuery:
    """Send `query` to `server` and report back; the carrier chooses the ID and source port.

    `exact_case` says the query name's letter case was randomised (0x20) and must match.
    """

    server: Server
    query: dns.message.Message
    tcp: bool
    timeout: float
    exact_case: bool = False


@dataclass(frozen=True, slots=True)
class Response:
    """A response that passed the carrier's checks (source, port, ID and question match)."""

    message: dns.message.Message
    rtt: float


@dataclass(frozen=True, slots=True)
class Timeout:
    pass


@dataclass(frozen=True, slots=True)
class NetworkError:
    reason: str


Outcome = Response | Timeout | NetworkError


@dataclass(frozen=True, slots=True)
class Answer:
    """What the client gets: an rcode, the answer chain, the authority SOA of a negative answer."""

    rcode: dns.rcode.Rcode
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    failure: ServfailReason | None = field(default=None)
    stale: bool = False

    @classmethod
    def servfail(cls, reason: ServfailReason) -> Answer:
        return cls(dns.rcode.SERVFAIL, failure=reason)


@dataclass(frozen=True, slots=True)
class Done:
    answer: Answer


Action = SendQuery | Done
