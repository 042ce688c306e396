"""Carry the engine's queries to authoritative servers over UDP and TCP (RFC 5452 hygiene).

Each query gets a socket of its own, bound to a kernel-chosen ephemeral port (Linux picks it at
random) and connected to the server, so the kernel drops datagrams from any other address or
port. Every datagram that does arrive goes to the engine, which alone decides whether it
answers the query (ID, question, 0x20 case) and tells the carrier when to stop listening.
"""

from __future__ import annotations

import errno
import math
import socket
from collections.abc import Callable

import trio

from resolver.core.actions import NetworkError
from resolver.engine import Send
from resolver.engine.stats import Stats
from resolver.server.dotpool import DotPool
from resolver.server.wire import MAX_MESSAGE, family_of, framed, receive_framed

#: Errors this host raises before anything is sent: no route to the address's network (an
#: IPv6 address without IPv6 connectivity), no such family. Waiting for an answer, or asking
#: the address again, is pointless. ICMP errors that come back later (port or host
#: unreachable on a connected socket) are not among them: anyone who can guess the source
#: port can forge those, so they count as an ordinary failure of one query.
_UNREACHABLE = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
)
#: Datagrams read from one query's socket per wake-up.
_DRAIN = 16


def _connect(sock: socket.socket, address: tuple[str, int]) -> None:
    """Connect a UDP socket: never blocks (no packet is sent), but fails at once for an
    address this host has no route to."""
    sock.connect(address)


def _undelivered(error: OSError, *, local: bool) -> NetworkError:
    reason = errno.errorcode.get(error.errno or 0, str(error))
    return NetworkError(reason, local and error.errno in _UNREACHABLE)


class Network:
    """Sends one query and hands back what arrives, until the engine says `Close`.

    Tests and simulations replace it with a script (`resolver.testing`), the engine unchanged.
    Queries to DNS-over-TLS forwarders go through the pool of shared connections (`dotpool`).
    """

    _tls: DotPool | None = None

    @property
    def tls(self) -> DotPool:
        """The DoT connection pool, made when first needed (subclasses need not call us)."""
        if self._tls is None:
            self._tls = DotPool()
        return self._tls

    def attach(self, nursery: trio.Nursery, stats: Stats | None = None) -> None:
        """The nursery long-lived connections run in (the service's), and where to count."""
        self.tls.attach(nursery, stats)

    async def carry(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        """Deliver `send` and call `received` with each reply, until cancelled (the engine's
        `Close`). Returns why the query could not be delivered, or None when nothing more
        will come (over TCP, after the one reply) or when cancelled from within `received`
        (the engine's `Close` for the reply it was handed): returning then costs a fraction
        of raising and unwinding `Cancelled` at the next checkpoint.
        """
        try:
            if send.server.tls is not None:  # never in clear text, whatever happens
                return await self.tls.carry(send, received)
            if send.tcp:
                return await self._over_tcp(send, received)
            return await self._over_udp(send, received)
        except OSError as error:  # after the send: an ICMP error, a reset connection
            return _undelivered(error, local=False)

    async def _over_udp(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        # A plain non-blocking socket and `wait_readable`: a trio socket costs a checkpoint
        # and a wrapper per call, several times the cost of the system calls themselves.
        server = send.server
        sock = socket.socket(family_of(server.address), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            try:
                _connect(sock, (server.address, server.port))
                try:
                    sock.send(send.wire)
                except BlockingIOError:  # a full send buffer: wait for room, once
                    await trio.lowlevel.wait_writable(sock)
                    sock.send(send.wire)
            except OSError as error:
                return _undelivered(error, local=True)
            while True:
                await trio.lowlevel.wait_readable(sock)
                # A bounded drain: datagrams flooding this port (a spoofer's) must not keep
                # every other task of the resolver waiting.
                for _ in range(_DRAIN):
                    try:
                        data = sock.recv(MAX_MESSAGE)
                    except BlockingIOError:
                        break
                    received(data)
                    if trio.current_effective_deadline() == -math.inf:
                        return None  # cancelled by `received`: see `carry`
        finally:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def _over_tcp(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        server = send.server
        stream = await trio.open_tcp_stream(server.address, server.port)
        async with stream:
            await stream.send_all(framed(send.wire))
            data = await receive_framed(stream)
        if data is None:
            return NetworkError("connection closed or malformed response")
        received(data)
        return None
