"""The vocabulary between one question's iterator (`Resolution`) and the engine that hosts it.

The iterator says `SendQuery` (or `Done`); the engine sends it, matches what comes back
(`engine/outbound.py`) and answers with an `Outcome`. Nothing here does I/O, so tests can also
play the network for one resolution from a script.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset

from resolver.core.reasons import ServfailReason, ValidationNote
from resolver.core.security import Security


@dataclass(frozen=True, slots=True)
class TlsPeer:
    """How to authenticate a server reached over DNS over TLS (RFC 7858 section 4.2): its
    certificate must name `name` and chain to the system's CAs (or `ca_file`'s), and/or its
    public key must hash (SHA-256 of the SubjectPublicKeyInfo, base64) to one of `pins`."""

    name: str | None
    ca_file: str | None = None
    pins: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name or "pinned key"


@dataclass(frozen=True, slots=True)
class Server:
    """One address of a name server; `name` is the NS name it was found under, for traces.
    `tls` is set for a forwarder asked over DNS over TLS, never over UDP or plain TCP."""

    address: str
    port: int = 53
    name: dns.name.Name | None = None
    tls: TlsPeer | None = None

    @property
    def transport(self) -> str:
        """How every query to this server travels first: "tls", or "udp" (then "tcp" on TC)."""
        return "udp" if self.tls is None else "tls"


@dataclass(frozen=True, slots=True)
class SendQuery:
    """Send `query` to `server` and report back; the engine chooses the ID, the carrier the
    source port.

    `exact_case` says the query name's letter case was randomised (0x20) and must match.
    """

    server: Server
    query: dns.message.Message
    tcp: bool
    timeout: float
    exact_case: bool = False


@dataclass(frozen=True, slots=True)
class Response:
    """A response that passed the engine's checks (ID and question; the socket's source)."""

    message: dns.message.Message
    rtt: float


@dataclass(frozen=True, slots=True)
class Timeout:
    """No reply in time. `shared` says another resolution's identical query was the one on the
    wire (the engine merged them): only that one counts the server's failure, so one lost
    datagram is one failure however many questions waited for it."""

    shared: bool = False


@dataclass(frozen=True, slots=True)
class NetworkError:
    """The query could not be delivered; `unreachable` says the address itself is unreachable
    (no route, host unreachable, port closed), so waiting or retrying it is pointless."""

    reason: str
    unreachable: bool = False


@dataclass(frozen=True, slots=True)
class BareHeader:
    """A reply whose ID (and source) matched but which did not parse or carried no question.

    Its header flags still mean something: TC=1 says "ask over TCP" even when the truncated
    datagram's counts promise more than it holds, and FORMERR from a server that does not
    understand EDNS often comes back with QDCOUNT=0. `flags` is the header's second 16-bit
    word (QR, opcode, AA, TC, RD, RA, Z, AD, CD and the rcode's low four bits).
    """

    flags: int

    @property
    def truncated(self) -> bool:
        return bool(self.flags & dns.flags.TC)

    @property
    def rcode(self) -> int:
        return self.flags & 0x000F


Outcome = Response | Timeout | NetworkError | BareHeader


@dataclass(frozen=True, slots=True)
class Answer:
    """What the client gets: an rcode, the answer chain, the authority SOA of a negative answer."""

    rcode: dns.rcode.Rcode
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    failure: ServfailReason | None = field(default=None)
    stale: bool = False
    #: DNSSEC (RFC 4035 3.1): the RRSIG RRsets of `answer`'s RRsets, and the NSEC/NSEC3
    #: records with their RRSIGs (and the SOA's) that prove a denial or a wildcard expansion.
    #: Sent only to clients that set DO (`engine/clients.py`), unless asked for by type.
    signatures: tuple[dns.rrset.RRset, ...] = ()
    proof: tuple[dns.rrset.RRset, ...] = ()
    #: The weakest status of the answer's parts: AD is set only when SECURE (RFC 6840 5.8).
    security: Security = Security.INDETERMINATE
    #: Extended DNS Errors that go with an answer that stands (EDE 1, 2, 27).
    notes: tuple[ValidationNote, ...] = ()
    #: More words on `failure` for the client's EDE EXTRA-TEXT (e.g. a forwarder's TLS error).
    detail: str = ""

    @classmethod
    def servfail(cls, reason: ServfailReason, detail: str = "") -> Answer:
        return cls(dns.rcode.SERVFAIL, failure=reason, detail=detail)


@dataclass(frozen=True, slots=True)
class Done:
    answer: Answer


Action = SendQuery | Done
