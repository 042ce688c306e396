"""Helpers for DNS over byte streams, shared by both sides of the server."""

from __future__ import annotations

import socket
import struct

import trio

from resolver.engine.messages import MAX_MESSAGE

__all__ = ["MAX_MESSAGE", "family_of", "framed", "receive_framed"]


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


def framed(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET
