"""UDP and TCP loops that carry DNS messages for a test server, with trio.

They know nothing about DNS beyond TCP's 2-byte length framing: a `WireHandler` decides what to
send back and how long to wait first, so every decision stays in the pure modules.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import trio

logger = logging.getLogger(__name__)

#: An idle TCP client is dropped after this long, so a test that forgets a connection cannot keep
#: a handler task alive past the end of `running()` for longer than this (cancellation stops it
#: anyway; this only bounds connections from clients that never close).
TCP_IDLE_TIMEOUT = 10.0

_MAX_DATAGRAM = 65535


class Outgoing(NamedTuple):
    """What to send back for one received message, and after how many seconds."""

    payload: bytes | None
    delay: float = 0.0


#: Called with the received wire message and whether it came over TCP.
WireHandler = Callable[[bytes, bool], Outgoing]


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


async def serve_sockets(sockets: BoundSockets, handle: WireHandler) -> None:
    """Serve UDP and TCP on `sockets` until cancelled, then close them."""
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_udp, sockets.udp, handle)
            nursery.start_soon(serve_tcp, sockets.listeners, handle)
    finally:
        sockets.close()


async def serve_udp(sock: trio.socket.SocketType, handle: WireHandler) -> None:
    """Answer datagrams on the bound `sock` until cancelled.

    Delayed replies are sent from their own tasks so that one slow answer does not hold back the
    queries behind it, as with a real server.
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
            outgoing = handle(wire, False)
            if outgoing.payload is None:
                continue
            if outgoing.delay > 0:
                nursery.start_soon(_send_later, sock, outgoing.payload, peer, outgoing.delay)
            else:
                await _send(sock, outgoing.payload, peer)


async def serve_tcp(
    listeners: list[trio.SocketListener],
    handle: WireHandler,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on `listeners` and answer each framed query in order until cancelled."""
    await trio.serve_listeners(
        partial(_serve_connection, handle=handle), listeners, task_status=task_status
    )


async def _serve_connection(stream: trio.SocketStream, handle: WireHandler) -> None:
    """Answer the queries of one connection one after the other (no reordering needed)."""
    frames = _FrameReader(stream)
    async with stream:
        try:
            while True:
                with trio.move_on_after(TCP_IDLE_TIMEOUT) as idle:
                    wire = await frames.next()
                if idle.cancelled_caught or wire is None:
                    return
                outgoing = handle(wire, True)
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
