"""Client queries and responses from dnstap files (Frame Streams of protobuf `Dnstap` messages).

What Unbound, Knot Resolver, BIND and PowerDNS write with their dnstap options. Two layers:

- Frame Streams (the `fstrm` library's file format): a control frame (an escape of four zero
  bytes, a big-endian length, then the control type: START with its content type, and STOP at
  the end), then data frames, each a big-endian length and a payload.
- The payload: a protobuf `Dnstap` message (dnstap.proto, https://dnstap.info). Only a few
  fields matter: `message` (14) and in it `type` (1: CLIENT_QUERY = 5, CLIENT_RESPONSE = 6),
  `query_address` (4), `query_port` (6), `query_time_sec`/`_nsec` (8, 9), `query_message`
  (10), `response_time_sec`/`_nsec` (12, 13) and `response_message` (14).

The protobuf wire format is decoded here by hand (varints, fixed32/64, length-delimited bytes)
rather than with code generated from dnstap.proto: seven fields do not justify a protobuf
runtime and a generated module (which mypy cannot check), and a hand decoder is easy to make
refuse garbage without ever raising anything but `Malformed`. Unknown fields are skipped, as
protobuf requires, so newer writers still read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import BinaryIO

from resolver.hitrate.pairing import Pairer
from resolver.hitrate.wire import Malformed

CONTENT_TYPE = b"protobuf:dnstap.Dnstap"
CONTROL_ACCEPT, CONTROL_START, CONTROL_STOP = 0x01, 0x02, 0x03
CONTROL_FIELD_CONTENT_TYPE = 0x01
CLIENT_QUERY, CLIENT_RESPONSE = 5, 6

#: Larger frames are not dnstap (a DNS message is at most 64 KiB, two of them plus addresses
#: fit well below): refused rather than read into memory. Control frames are tiny.
MAX_DATA_FRAME = 1 << 20
MAX_CONTROL_FRAME = 512

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise Malformed("bad varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field of a protobuf message: varints and fixed numbers as
    int, length-delimited fields as bytes."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, kind = key >> 3, key & 7
        if number == 0:
            raise Malformed("field number 0")
        value: int | bytes
        if kind == _VARINT:
            value, position = _varint(data, position)
        elif kind == _FIXED64:
            if position + 8 > len(data):
                raise Malformed("fixed64 past the end")
            (value,) = struct.unpack_from("<Q", data, position)
            position += 8
        elif kind == _FIXED32:
            if position + 4 > len(data):
                raise Malformed("fixed32 past the end")
            (value,) = struct.unpack_from("<I", data, position)
            position += 4
        elif kind == _BYTES:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise Malformed("bytes past the end")
            value = data[position : position + length]
            position += length
        else:
            raise Malformed(f"wire type {kind}")
        yield number, value


def _address(raw: bytes) -> str:
    if len(raw) == 4:
        return str(IPv4Address(raw))
    if len(raw) == 16:
        return str(IPv6Address(raw))
    raise Malformed("address of neither 4 nor 16 bytes")


def _time(seconds: int | bytes | None, nanoseconds: int | bytes | None) -> float | None:
    if not isinstance(seconds, int):
        return None
    return seconds + (nanoseconds / 1e9 if isinstance(nanoseconds, int) else 0.0)


def read_payload(payload: bytes, pairer: Pairer) -> None:
    """One `Dnstap` protobuf: a client query or response goes to `pairer`, the rest is ignored."""
    message = None
    for number, value in fields(payload):
        if number == 14 and isinstance(value, bytes):
            message = value
    if message is None:
        pairer.notes.other_dnstap += 1  # not a MESSAGE (dnstap has no other type yet)
        return
    found: dict[int, int | bytes] = dict(fields(message))
    kind = found.get(1)
    if kind not in (CLIENT_QUERY, CLIENT_RESPONSE):
        pairer.notes.other_dnstap += 1  # RESOLVER_*, FORWARDER_*, AUTH_*, a tool's ...
        return
    address, port = found.get(4), found.get(6)
    if not isinstance(address, bytes) or not isinstance(port, int):
        raise Malformed("a client message without the client's address and port")
    client = _address(address)
    asked = _time(found.get(8), found.get(9))
    if kind == CLIENT_QUERY:
        wire = found.get(10)
        if not isinstance(wire, bytes) or asked is None:
            raise Malformed("CLIENT_QUERY without its message or time")
        pairer.message(asked, client, port, wire)
    else:
        wire = found.get(14)
        # Some writers leave the response time out and keep the query's (or the reverse).
        answered = _time(found.get(12), found.get(13))
        if answered is None:
            answered = asked
        if not isinstance(wire, bytes) or answered is None:
            raise Malformed("CLIENT_RESPONSE without its message or time")
        pairer.message(answered, client, port, wire, asked_at=asked)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    """`size` bytes, or None at a clean end of file; `EOFError` if it ends part way."""
    data = stream.read(size)
    if not data:
        return None
    if len(data) < size:
        raise EOFError
    return data


def read_dnstap(stream: BinaryIO, pairer: Pairer, name: str) -> None:
    """Every client message of a Frame Streams file, into `pairer`."""
    notes = pairer.notes
    try:
        while True:
            head = _read_exactly(stream, 4)
            if head is None:
                notes.messages.append(f"{name}: no STOP frame at the end (the writer was cut off)")
                return
            (length,) = struct.unpack("!I", head)
            if length == 0:  # an escape: a control frame follows
                head = _read_exactly(stream, 4)
                if head is None:
                    raise EOFError
                (length,) = struct.unpack("!I", head)
                if not 4 <= length <= MAX_CONTROL_FRAME:
                    notes.messages.append(f"{name}: a control frame of {length} bytes; stopped")
                    return
                control = _read_exactly(stream, length)
                if control is None:
                    raise EOFError
                (kind,) = struct.unpack_from("!I", control)
                if kind == CONTROL_STOP:
                    return
                if kind == CONTROL_START and CONTENT_TYPE not in control:
                    notes.messages.append(f"{name}: Frame Streams of another content type")
                    return
                continue
            if length > MAX_DATA_FRAME:
                notes.messages.append(f"{name}: a data frame of {length} bytes; stopped")
                return
            payload = _read_exactly(stream, length)
            if payload is None:
                raise EOFError
            try:
                read_payload(payload, pairer)
            except (Malformed, ValueError):
                notes.malformed += 1
    except EOFError:
        notes.messages.append(f"{name}: the file ends in the middle of a frame; read up to there")
