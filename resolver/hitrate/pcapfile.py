"""The pcap and pcapng containers, read block by block: (time, link type, frame) for each packet.

Read here rather than with dpkt (which the tests still use to write captures): dpkt's pcapng
reader takes the link type and timestamp resolution of the FIRST interface for every packet,
so a Wireshark or dumpcap capture of two interfaces (an Ethernet one and a loopback one, or
interfaces with different `if_tsresol`) is misread; and both of its readers read whatever
length a record header claims, so one corrupt header asks for gigabytes. This reader:

- pcap: either byte order, microsecond (a1b2c3d4) or nanosecond (a1b23c4d) timestamps; the
  link type's low 16 bits (the upper ones carry FCS flags);
- pcapng: several sections (each with its byte order), several interfaces, each with its own
  link type, `if_tsresol` (a power of 10 or of 2) and `if_tsoffset`; Enhanced Packet Blocks and
  the obsolete Packet Blocks (Simple Packet Blocks carry no time and are counted as skipped);
- a record or block longer than `MAX_RECORD`, or a cut one, ends the file with a note; packets
  cut by the capture's snaplen are passed on (the DNS layer counts them if they do not parse)
  and counted, with a note.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from resolver.hitrate.trace import Notes

#: A captured packet is at most 262,144 bytes (libpcap's MAXIMUM_SNAPLEN); a pcapng block holds
#: one and its options. Anything longer is a corrupt header, not a reason to allocate.
MAX_RECORD = 1 << 20

_PCAP_MAGIC_US, _PCAP_MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
_PCAPNG_SHB, _PCAPNG_BOM = 0x0A0D0D0A, 0x1A2B3C4D
_IDB, _PB, _SPB, _EPB = 1, 2, 3, 6
_OPT_TSRESOL, _OPT_TSOFFSET = 9, 14


class ContainerError(ValueError):
    """Not a pcap or pcapng file at all (its first header does not parse)."""


class Cut(Exception):
    """The file ends, or turns to garbage, part way: the caller notes it and stops."""


def _read(stream: BinaryIO, size: int) -> bytes | None:
    """Exactly `size` bytes; None at a clean end of file; `Cut` if the file ends part way."""
    data = stream.read(size)
    if not data and size:
        return None
    if len(data) < size:
        raise Cut
    return data


class _Interface:
    __slots__ = ("divisor", "link", "offset")

    def __init__(self, link: int, divisor: float, offset: int) -> None:
        self.link, self.divisor, self.offset = link, divisor, offset


def frames(stream: BinaryIO, notes: Notes, name: str) -> Iterator[tuple[float, int, bytes]]:
    """Every packet of a pcap or pcapng file; `ContainerError` if it is neither."""
    head = stream.read(4)
    snapped = 0
    try:
        pcapng = head == b"\n\r\r\n"
        packets = _pcapng(stream, notes, name) if pcapng else _pcap(stream, head, name)
        for when, link, frame, cut in packets:
            snapped += cut
            yield when, link, frame
    except Cut:
        notes.messages.append(f"{name}: the file ends in the middle of a packet; read up to there")
    if snapped:
        notes.messages.append(
            f"{name}: {snapped:,} packets were cut short by the capture's snaplen "
            "(capture with -s 0 to keep whole packets)"
        )


def _pcap(stream: BinaryIO, magic: bytes, name: str) -> Iterator[tuple[float, int, bytes, bool]]:
    rest = stream.read(20)
    if len(magic) < 4 or len(rest) < 20:
        raise ContainerError(f"{name}: not a capture (shorter than a pcap header)")
    for order in ("<", ">"):
        (value,) = struct.unpack(order + "I", magic)
        if value in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
            break
    else:
        raise ContainerError(f"{name}: not a capture (no pcap or pcapng magic number)")
    divisor = 1e9 if value == _PCAP_MAGIC_NS else 1e6
    link = struct.unpack(order + "16xI", rest)[0] & 0xFFFF
    record = struct.Struct(order + "IIII")
    while True:
        header = _read(stream, 16)
        if header is None:
            return
        seconds, fraction, caplen, length = record.unpack(header)
        if caplen > MAX_RECORD:
            raise Cut  # a corrupt record header: nothing after it can be trusted
        data = _read(stream, caplen)
        if data is None:
            raise Cut
        yield seconds + fraction / divisor, link, data, caplen < length


def _pcapng(stream: BinaryIO, notes: Notes, name: str) -> Iterator[tuple[float, int, bytes, bool]]:
    interfaces: list[_Interface] = []
    order = "<"
    block_type = _PCAPNG_SHB
    first = True
    while True:
        if first:
            raw_length = _read(stream, 4)
            if raw_length is None:
                raise ContainerError(f"{name}: not a capture (a cut pcapng header)")
        else:
            head = _read(stream, 8)
            if head is None:
                return
            block_type, _ = struct.unpack(order + "II", head)
            raw_length = head[4:]
        if block_type == _PCAPNG_SHB:
            bom = _read(stream, 4)
            if bom is None:
                raise Cut
            order = "<" if struct.unpack("<I", bom)[0] == _PCAPNG_BOM else ">"
            if struct.unpack(order + "I", bom)[0] != _PCAPNG_BOM:
                if first:
                    raise ContainerError(f"{name}: not a capture (bad pcapng byte-order magic)")
                raise Cut
            (length,) = struct.unpack(order + "I", raw_length)
            if length < 28 or length % 4 or length > MAX_RECORD:
                if first:
                    raise ContainerError(f"{name}: not a capture (bad pcapng section header)")
                raise Cut
            if _read(stream, length - 12) is None:
                raise Cut
            interfaces = []  # interface numbers start again in each section
            first = False
            continue
        (length,) = struct.unpack(order + "I", raw_length)
        if length < 12 or length % 4 or length > MAX_RECORD:
            raise Cut
        body = _read(stream, length - 8)
        if body is None:
            raise Cut
        body = body[:-4]  # the trailing copy of the length
        if block_type == _IDB:
            interfaces.append(_interface(body, order))
        elif block_type in (_EPB, _PB):
            if block_type == _EPB:
                if len(body) < 20:
                    raise Cut
                number, high, low, caplen, original = struct.unpack_from(order + "IIIII", body)
            else:
                if len(body) < 20:
                    raise Cut
                number, _drops, high, low, caplen, original = struct.unpack_from(
                    order + "HHIIII", body
                )
            if number >= len(interfaces) or 20 + caplen > len(body):
                notes.malformed += 1  # a packet of an interface never described, or cut
                continue
            interface = interfaces[number]
            when = interface.offset + ((high << 32) | low) / interface.divisor
            yield when, interface.link, body[20 : 20 + caplen], caplen < original
        elif block_type == _SPB:
            notes.malformed += 1  # no interface time: cannot be placed in the trace
        # other blocks (name resolution, statistics, secrets, custom) say nothing we need


def _interface(body: bytes, order: str) -> _Interface:
    if len(body) < 8:
        raise Cut
    link = struct.unpack_from(order + "H", body)[0]
    divisor, offset = 1e6, 0
    position = 8
    while position + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, position)
        value = body[position + 4 : position + 4 + size]
        position += 4 + (size + 3) // 4 * 4
        if code == 0:
            break
        if code == _OPT_TSRESOL and len(value) == 1:
            exponent = value[0] & 0x7F
            divisor = float(2**exponent if value[0] & 0x80 else 10**exponent)
        elif code == _OPT_TSOFFSET and len(value) == 8:
            (offset,) = struct.unpack(order + "q", value)
    return _Interface(link, divisor, offset)
