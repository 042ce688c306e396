"""Carry the iterator's queries to authoritative servers over UDP and TCP (RFC 5452 hygiene).

Each query gets an unpredictable 16-bit ID from `secrets` and a socket of its own, bound to a
kernel-chosen ephemeral port (Linux picks it at random) and connected to the server, so the
kernel drops datagrams from any other address or port. A datagram is accepted only when its ID and
question match too; anything else is ignored and the wait goes on, so a forged packet can neither
poison the answer nor cut the real one short.
"""

from __future__ import annotations

import errno
import secrets
from dataclasses import dataclass, field

import dns.message
import trio

from resolver.core.actions import BareHeader, NetworkError, Outcome, Response, SendQuery, Timeout
from resolver.core.scrub import bare_header, is_response_to
from resolver.server.wire import MAX_MESSAGE, family_of, framed, parse, receive_framed

#: Errors that say the address cannot be reached at all: waiting for it, or asking it again
#: within this resolution, is pointless (no route to an IPv6 network, nothing listening).
_UNREACHABLE = frozenset(
    {
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ECONNREFUSED,
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
    }
)


@dataclass
class _Pending:
    """One query on the wire that other resolutions may be waiting on too."""

    done: trio.Event = field(default_factory=trio.Event)
    outcome: Outcome = field(default_factory=Timeout)
    query_id: int = 0


class Upstream:
    """Performs `SendQuery` actions; counts what it sends so stats and tests can see it.

    Identical queries to the same server at the same time (the same name, type, transport and
    EDNS use) share one packet, as Unbound's serviced queries do: with QNAME minimisation, a
    burst of cold names in one zone would otherwise ask the root and the TLD once per name.
    """

    def __init__(self) -> None:
        self.sent = 0
        self._pending: dict[tuple[object, ...], _Pending] = {}

    async def perform(self, action: SendQuery) -> Outcome:
        question = action.query.question[0]
        name: object = question.name.labels if action.exact_case else question.name
        flags = action.query.flags  # RD: a forwarder and an authority may share an address
        key = (action.server, name, question.rdtype, action.tcp, action.query.edns, flags)
        pending = self._pending.get(key)
        if pending is not None:
            await pending.done.wait()
            action.query.id = pending.query_id  # the response answers the query that was sent
            return pending.outcome
        pending = self._pending[key] = _Pending()
        try:
            pending.outcome = await self._send(action)
            pending.query_id = action.query.id
        finally:
            pending.done.set()
            del self._pending[key]
        return pending.outcome

    async def _send(self, action: SendQuery) -> Outcome:
        action.query.id = secrets.randbits(16)
        wire = action.query.to_wire()
        self.sent += 1
        started = trio.current_time()
        try:
            with trio.move_on_after(action.timeout):
                if action.tcp:
                    message = await self._over_tcp(action, wire)
                else:
                    message = await self._over_udp(action, wire)
                if message is None:
                    return NetworkError("connection closed or malformed response")
                if isinstance(message, BareHeader):
                    return message
                return Response(message, trio.current_time() - started)
        except OSError as error:
            reason = errno.errorcode.get(error.errno or 0, str(error))
            return NetworkError(reason, unreachable=error.errno in _UNREACHABLE)
        return Timeout()

    async def _over_udp(
        self, action: SendQuery, wire: bytes
    ) -> dns.message.Message | BareHeader | None:
        server = action.server
        with trio.socket.socket(family_of(server.address), trio.socket.SOCK_DGRAM) as sock:
            await sock.connect((server.address, server.port))
            await sock.send(wire)
            while True:
                data = await sock.recv(MAX_MESSAGE)
                if data[:2] != wire[:2]:
                    continue
                message = parse(data)
                if message is not None and is_response_to(
                    action.query, message, exact_case=action.exact_case
                ):
                    return message
                bare = bare_header(data, message)
                if bare is not None:
                    return bare

    async def _over_tcp(
        self, action: SendQuery, wire: bytes
    ) -> dns.message.Message | BareHeader | None:
        server = action.server
        stream = await trio.open_tcp_stream(server.address, server.port)
        async with stream:
            await stream.send_all(framed(wire))
            data = await receive_framed(stream)
        if data is None:
            return None
        message = parse(data)
        if message is None or not is_response_to(
            action.query, message, exact_case=action.exact_case
        ):
            return bare_header(data, message) if data[:2] == wire[:2] else None
        return message
