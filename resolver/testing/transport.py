"""UDP and TCP loops that carry DNS messages for a test server, with trio.

They know nothing about DNS beyond TCP's 2-byte length framing: a `WireHandler` decides what to
send back, how long to wait first, which forged datagrams go out before it and whether a TCP
connection is served at all, so every decision stays in the pure modules.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, Protocol

import trio

logger = logging.getLogger(__name__)

#: An idle TCP client is dropped after this long, so a test that forgets a connection cannot keep
#: a handler task alive past the end of `running()` for longer than this (cancellation stops it
#: anyway; this only bounds connections from clients that never close).
TCP_IDLE_TIMEOUT = 10.0

_MAX_DATAGRAM = 65535


class Forged(NamedTuple):
    """A datagram sent to the querier before the real answer, as a spoofing attacker would.

    `source` None sends it from the server's own socket; an (address, port) sends it from a
    fresh socket bound there (port 0: an ephemeral one) and closed right after, so the querier
    sees the wrong source address or port.
    """

    payload: bytes
    source: tuple[str, int] | None = None


class Outgoing(NamedTuple):
    """What to send back for one received message, after how many seconds, and what goes first.

    `forged` is only honoured over UDP: each is sent at once, in order, and `payload` follows
    `delay` seconds after the last one.
    """

    payload: bytes | None
    delay: float = 0.0
    forged: tuple[Forged, ...] = ()


class WireHandler(Protocol):
    """The DNS side of a server, as the socket loops see it (`AuthServer` is one)."""

    def handle_wire(self, wire: bytes, tcp: bool, source_port: int | None = None) -> Outgoing:
        """What to send back for `wire`, received over TCP or UDP from `source_port`."""
        ...

    def accepts_tcp(self) -> bool:
        """False to close a new TCP connection at once, without reading from it."""
        ...


@dataclass
class BoundSockets:
    """The UDP socket and TCP listeners of one server, bound and listening but not yet served.

    Binding is separate from serving so that every address of an internet can be bound (and an
    address in use reported as a plain OSError) before any serving task exists.
    """

    udp: trio.socket.SocketType
    listeners: list[trio.SocketListener]

    @classmethod
    async def bind(cls, address: str, port: int) -> BoundSockets:
        """Bind UDP and TCP on `address`:`port`; nothing stays open if either fails."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        udp = trio.socket.socket(family, socket.SOCK_DGRAM)
        try:
            await udp.bind((address, port))
            listeners = await trio.open_tcp_listeners(port, host=address)
        except BaseException:
            udp.close()
            raise
        return cls(udp, listeners)

    def close(self) -> None:
        """Close every socket; synchronous so that it also works while being cancelled."""
        self.udp.close()
        for listener in self.listeners:
            listener.socket.close()


async def serve_sockets(sockets: BoundSockets, handler: WireHandler) -> None:
    """Serve UDP and TCP on `sockets` until cancelled, then close them."""
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_udp, sockets.udp, handler)
            nursery.start_soon(serve_tcp, sockets.listeners, handler)
    finally:
        sockets.close()


async def serve_udp(sock: trio.socket.SocketType, handler: WireHandler) -> None:
    """Answer datagrams on the bound `sock` until cancelled.

    Delayed and spoofed replies are sent from their own tasks so that one slow answer does not
    hold back the queries behind it, as with a real server.
    """
    async with trio.open_nursery() as nursery:
        while True:
            try:
                wire, peer = await sock.recvfrom(_MAX_DATAGRAM)
            except OSError as error:  # e.g. a queued ICMP error: not a reason to stop serving
                logger.debug("UDP receive failed: %r", error)
                continue
            if not _is_loopback(peer[0]):
                continue
            outgoing = handler.handle_wire(wire, False, peer[1])
            if outgoing.payload is None:
                continue
            if outgoing.forged:
                nursery.start_soon(_send_spoofed, sock, outgoing, peer)
            elif outgoing.delay > 0:
                nursery.start_soon(_send_later, sock, outgoing.payload, peer, outgoing.delay)
            else:
                await _send(sock, outgoing.payload, peer)


async def serve_tcp(
    listeners: list[trio.SocketListener],
    handler: WireHandler,
    *,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on `listeners` and answer each framed query in order until cancelled."""
    await trio.serve_listeners(
        partial(_serve_connection, handler=handler), listeners, task_status=task_status
    )


async def _serve_connection(stream: trio.SocketStream, handler: WireHandler) -> None:
    """Answer the queries of one connection one after the other (no reordering needed).

    A refused connection is closed before anything is read, so the client sees its connection
    reset or ended without an answer, as with a server whose TCP service is broken.
    """
    frames = _FrameReader(stream)
    async with stream:
        if not handler.accepts_tcp():
            return
        source_port = _peer_port(stream)
        try:
            while True:
                with trio.move_on_after(TCP_IDLE_TIMEOUT) as idle:
                    wire = await frames.next()
                if idle.cancelled_caught or wire is None:
                    return
                outgoing = handler.handle_wire(wire, True, source_port)
                if outgoing.payload is None:
                    continue
                if outgoing.delay > 0:
                    await trio.sleep(outgoing.delay)
                await stream.send_all(len(outgoing.payload).to_bytes(2, "big") + outgoing.payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            logger.debug("TCP client went away: %r", error)


class _FrameReader:
    """Splits a TCP byte stream into length-prefixed DNS messages."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def next(self) -> bytes | None:
        """The next message, or None once the client has closed its side."""
        header = await self._exactly(2)
        if header is None:
            return None
        return await self._exactly(int.from_bytes(header, "big"))

    async def _exactly(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            chunk = await self._stream.receive_some(_MAX_DATAGRAM)
            if not chunk:
                return None
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def _peer_port(stream: trio.SocketStream) -> int | None:
    """The client's TCP port, for the query log; None if the connection is already gone."""
    try:
        return int(stream.socket.getpeername()[1])
    except OSError:
        return None


async def _send_spoofed(
    sock: trio.socket.SocketType, outgoing: Outgoing, peer: tuple[str, int]
) -> None:
    """Send every forgery, then the genuine answer `outgoing.delay` seconds later.

    The forgeries always arrive first, so a client that accepts the first datagram that looks
    like an answer is poisoned, and only one that checks every field gets the genuine answer.
    """
    for forged in outgoing.forged:
        if forged.source is None:
            await _send(sock, forged.payload, peer)
        else:
            await _send_from(forged.source, forged.payload, peer)
    if outgoing.payload is not None:
        await _send_later(sock, outgoing.payload, peer, outgoing.delay)


async def _send_from(source: tuple[str, int], payload: bytes, peer: tuple[str, int]) -> None:
    """Send one datagram from a fresh socket bound to `source`.

    SO_REUSEADDR lets concurrent forgeries share a fixed source port (Linux allows this for UDP
    when every socket sets it); the socket only sends, so sharing it steals no traffic. Only
    loopback sources are used, so the datagram cannot leave the machine either way; a failure is
    logged and ignored like any other send failure.
    """
    address, port = source
    if not _is_loopback(address):
        raise ValueError(f"refusing to send from non-loopback address {address}")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with trio.socket.socket(family, socket.SOCK_DGRAM) as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            await other.bind((address, port))
            await other.sendto(payload, peer)
    except OSError as error:
        logger.debug("UDP send from %s to %s failed: %r", source, peer, error)


async def _send_later(
    sock: trio.socket.SocketType, payload: bytes, peer: tuple[str, int], delay: float
) -> None:
    await trio.sleep(delay)
    await _send(sock, payload, peer)


async def _send(sock: trio.socket.SocketType, payload: bytes, peer: tuple[str, int]) -> None:
    """Send one datagram; a client that vanished is its problem, not a reason to stop serving."""
    try:
        await sock.sendto(payload, peer)
    except OSError as error:
        logger.debug("UDP send to %s failed: %r", peer, error)


def _is_loopback(address: str) -> bool:
    """Guard: replies only ever go to loopback, even if something odd reaches the socket."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
