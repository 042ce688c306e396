"""Helpers for DNS over byte streams, shared by both sides of the server."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct

import trio

from resolver.engine.messages import MAX_MESSAGE

__all__ = [
    "MAX_MESSAGE",
    "FrameReader",
    "family_of",
    "framed",
    "quick_ack",
    "receive_arrived",
    "receive_framed",
    "tls_buffered",
]

#: Bytes asked of the stream per receive: many pipelined queries arrive in one read.
_RECEIVE = 65_536


async def receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes | None:
    """Exactly `size` bytes, or None if the peer closed first."""
    chunks: list[bytes | bytearray] = []
    missing = size
    while missing:
        chunk = await stream.receive_some(missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


async def receive_framed(stream: trio.abc.ReceiveStream) -> bytes | None:
    """One length-prefixed DNS message (RFC 1035 4.2.2), or None at end of stream."""
    header = await receive_exactly(stream, 2)
    if header is None:
        return None
    (length,) = struct.unpack("!H", header)
    return await receive_exactly(stream, length)


class FrameReader:
    """Length-prefixed DNS messages from a stream, as many per receive as have arrived.

    `receive_framed` costs two receives per message, and each receive on a trio stream is a
    checkpoint: a connection's reader then yields to the scheduler twice per query, so the
    writer wakes for every reply and sends it alone (one TLS record, one segment and one
    system call each). Here one receive takes whatever the client has pipelined and `take`
    hands the messages out without yielding, so the replies to one batch of cache hits are
    queued together and written together.
    """

    __slots__ = ("_buffer", "_stream")

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    def take(self) -> bytes | None:
        """The next complete message already received, or None if none is complete yet."""
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        end = 2 + ((buffer[0] << 8) | buffer[1])
        if len(buffer) < end:
            return None
        message = bytes(buffer[2:end])
        del buffer[:end]
        return message

    async def fill(self) -> bool:
        """Receive what has arrived (at least one byte); False when the peer has closed."""
        data = await receive_arrived(self._stream)
        if not data:
            return False
        self._buffer += data
        return True


def tls_buffered(stream: trio.abc.ReceiveStream) -> bool:
    """Whether a TLS stream holds a whole record already received but not yet decrypted.

    OpenSSL decrypts one record per read, so a `receive_some` on an `SSLStream` returns one
    record even when the socket read brought in twenty (a client pipelining queries writes each
    in its own record). trio does not say whether more are waiting; its incoming memory BIO
    does (a private attribute: `tests/test_stream_batching.py` checks that this still works,
    so a trio upgrade that changes it fails there instead of quietly writing one reply per
    record again). Only a *whole* record counts: reading the rest of a partial one would wait
    for the network, with the replies to the records before it not yet written. False for any
    other stream.
    """
    if not isinstance(stream, trio.SSLStream):
        return False
    incoming = getattr(stream, "_incoming", None)
    if not isinstance(incoming, ssl.MemoryBIO) or incoming.eof or incoming.pending < 5:
        return False
    held = incoming.read()  # a memory BIO cannot be peeked at: read it all and put it back
    incoming.write(held)
    return len(held) >= 5 + int.from_bytes(held[3:5], "big")  # type, version, length


async def receive_arrived(stream: trio.abc.ReceiveStream) -> bytes:
    """Everything that has arrived (at least one byte; b"" when the peer has closed): over TLS,
    every record already received, so that one batch of pipelined queries is answered (and
    its replies written) together."""
    data = bytes(await stream.receive_some(_RECEIVE))
    while data and tls_buffered(stream) and len(data) < _RECEIVE:
        more = await stream.receive_some(_RECEIVE)
        if not more:
            break
        data += more
    return data


def quick_ack(stream: trio.abc.Stream) -> None:
    """Acknowledge what the client sent at once instead of after Linux's delayed-ACK timer
    (40 ms), for clients that write with Nagle's algorithm on: their next small write waits
    for that acknowledgement.

    Measured: dnsperf's first DoT query on every connection waited 40 ms behind its TLS
    Finished, which nothing of ours acknowledged (a TLS 1.3 server's session tickets, which
    would carry the ACK, wait in trio for the first reply); HTTP/2 clients write a SETTINGS or
    WINDOW_UPDATE and then a request in separate segments, so a DoH query took 30 to 50 ms
    instead of 2 to 5. Setting TCP_QUICKACK sends an ACK that is due at once; it is not sticky
    (the kernel may go back to delayed ACKs), hence after the handshake and every receive.
    Where it does not exist (not Linux), nothing happens.
    """
    option = getattr(socket, "TCP_QUICKACK", None)
    transport = getattr(stream, "transport_stream", stream)
    if option is None or not isinstance(transport, trio.SocketStream):
        return
    with contextlib.suppress(OSError):
        transport.socket.setsockopt(socket.IPPROTO_TCP, option, 1)


def framed(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET
