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

#: Errors this host raises before anything is sent: no route to the address's network (an
#: IPv6 address without IPv6 connectivity), no such family. Waiting for an answer, or asking
#: the address again, is pointless. ICMP errors that come back later (port or host
#: unreachable on a connected socket) are not among them: anyone who can guess the source
#: port can forge those, so they count as an ordinary failure of one query.
_UNREACHABLE = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
)


@dataclass
class _Pending:
    """One query on the wire that other resolutions may be waiting on too."""

    done: trio.Event = field(default_factory=trio.Event)
    outcome: Outcome = field(default_factory=Timeout)
    query_id: int = 0


class _LocalError(Exception):
    """An OSError raised while sending, i.e. by this host's own stack, not by the network."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _network_error(error: OSError, *, unreachable: bool) -> NetworkError:
    return NetworkError(errno.errorcode.get(error.errno or 0, str(error)), unreachable)


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
            if isinstance(pending.outcome, Timeout):
                return Timeout(shared=True)
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
        except _LocalError as local:
            return _network_error(local.error, unreachable=local.error.errno in _UNREACHABLE)
        except OSError as error:
            return _network_error(error, unreachable=False)
        return Timeout()

    async def _over_udp(
        self, action: SendQuery, wire: bytes
    ) -> dns.message.Message | BareHeader | None:
        server = action.server
        with trio.socket.socket(family_of(server.address), trio.socket.SOCK_DGRAM) as sock:
            try:
                await sock.connect((server.address, server.port))
                await sock.send(wire)
            except OSError as error:
                raise _LocalError(error) from error
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
