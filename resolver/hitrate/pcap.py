"""DNS on port 53 from pcap and pcapng captures (what `tcpdump -w` and Wireshark write).

`pcapfile` reads the file formats (both, with every timestamp resolution and every interface of
a pcapng file); the layers below are decoded here, because a capture of a busy resolver holds
millions of packets and only a few header fields of each matter: the link layer (Ethernet with
VLAN tags, Linux cooked SLL and SLL2 as `tcpdump -i any` writes, raw IP, BSD loopback), IPv4 or
IPv6, then UDP or TCP with port 53 at one end. TCP carries messages with a two-byte length
before each (RFC 1035 section 4.2.2); each direction of a connection is reassembled in sequence
order (a retransmitted segment adds only its new bytes, so no message is read twice), and a
segment that arrives ahead of a missing one is skipped and counted, with the rest of that
direction, since the message boundaries are lost with it.

Only queries with RD=1 (and their responses) are kept: a capture taken on the resolver's host
also holds the resolver's own iterative questions to authorities (RD=0), which are not client
traffic. Its questions to forwarders (RD=1) are told apart later, by address (`pairing`).
IPv4 fragments and IPv6 Fragment headers are counted and skipped (DNS over fragmented UDP is
not reassembled; the query whose response was fragmented counts as unanswered).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from socket import AF_INET, AF_INET6, inet_ntop
from typing import BinaryIO

from resolver.hitrate.pairing import Pairer
from resolver.hitrate.pcapfile import ContainerError, frames
from resolver.hitrate.trace import Notes

DNS_PORT = 53

# Link types (https://www.tcpdump.org/linktypes.html).
_NULL, _ETHERNET, _RAW, _RAW_OPENBSD, _RAW_ALT = 0, 1, 101, 12, 14
_LOOP, _SLL, _IPV4, _IPV6, _SLL2 = 108, 113, 228, 229, 276
LINK_TYPES = (_NULL, _ETHERNET, _RAW, _RAW_OPENBSD, _RAW_ALT, _LOOP, _SLL, _IPV4, _IPV6, _SLL2)

_ETHERTYPE_IPV4, _ETHERTYPE_IPV6 = 0x0800, 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_UDP, _TCP = 17, 6
_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT, _IPV6_AH = 44, 51
_SYN, _FIN, _RST = 0x02, 0x01, 0x04

#: TCP directions followed at once, at most (the oldest is forgotten), and the bytes kept for
#: one: a message is at most 65,535 bytes plus its length.
MAX_FLOWS = 10_000
MAX_BUFFER = 65_537


class CaptureError(Exception):
    """A capture that cannot be read at all (not the format, a link type we do not decode)."""


def _ip_payload(link: int, frame: bytes) -> bytes | None:
    """The IP packet inside a frame of this link type; None if it carries something else."""
    if link == _ETHERNET:
        if len(frame) < 14:
            return None
        position, ethertype = 12, int.from_bytes(frame[12:14], "big")
        while ethertype in _VLAN_TAGS and len(frame) >= position + 6:
            position += 4
            ethertype = int.from_bytes(frame[position : position + 2], "big")
        if ethertype not in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6):
            return None
        return frame[position + 2 :]
    if link == _SLL:
        if len(frame) < 16 or int.from_bytes(frame[14:16], "big") not in (0x0800, 0x86DD):
            return None
        return frame[16:]
    if link == _SLL2:
        if len(frame) < 20 or int.from_bytes(frame[0:2], "big") not in (0x0800, 0x86DD):
            return None
        return frame[20:]
    if link in (_NULL, _LOOP):
        return frame[4:]
    return frame  # raw IP: the version nibble says which


class _Flow:
    """One direction of a TCP connection: where the next byte goes, and what is not yet a
    whole message."""

    __slots__ = ("broken", "buffer", "expected")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.buffer = b""
        self.broken = False


class CaptureReader:
    """Turns packets into DNS messages for a `Pairer`."""

    def __init__(self, pairer: Pairer) -> None:
        self.pairer = pairer
        self.notes: Notes = pairer.notes
        self._flows: OrderedDict[tuple[str, int, str, int], _Flow] = OrderedDict()
        self.unknown_links: set[int] = set()

    def frame(self, when: float, link: int, frame: bytes) -> None:
        if link not in LINK_TYPES:
            self.unknown_links.add(link)
            self.notes.not_dns += 1
            return
        packet = _ip_payload(link, frame)
        if not packet:
            self.notes.not_dns += 1
            return
        try:
            self._ip(when, packet)
        except (IndexError, ValueError, struct.error):
            self.notes.malformed += 1

    def _ip(self, when: float, packet: bytes) -> None:
        version = packet[0] >> 4
        if version == 4:
            header = (packet[0] & 0x0F) * 4
            total = int.from_bytes(packet[2:4], "big")
            if header < 20 or total < header or len(packet) < header:
                raise ValueError("bad IPv4 header")
            if int.from_bytes(packet[6:8], "big") & 0x3FFF:
                self.notes.fragments += 1  # DNS over fragmented UDP is not reassembled
                return
            protocol = packet[9]
            source = inet_ntop(AF_INET, packet[12:16])
            destination = inet_ntop(AF_INET, packet[16:20])
            payload = packet[header:total]
        elif version == 6:
            if len(packet) < 40:
                raise ValueError("short IPv6 header")
            protocol = packet[6]
            source = inet_ntop(AF_INET6, packet[8:24])
            destination = inet_ntop(AF_INET6, packet[24:40])
            end = 40 + int.from_bytes(packet[4:6], "big")
            position = 40
            while protocol in _IPV6_EXTENSIONS or protocol == _IPV6_AH:
                length = packet[position + 1]
                skip = (length + 2) * 4 if protocol == _IPV6_AH else (length + 1) * 8
                protocol = packet[position]
                position += skip
            if protocol == _IPV6_FRAGMENT:
                self.notes.fragments += 1
                return
            payload = packet[position:end]
        else:
            self.notes.not_dns += 1
            return
        if protocol == _UDP:
            self._udp(when, source, destination, payload)
        elif protocol == _TCP:
            self._tcp(when, source, destination, payload)
        else:
            self.notes.not_dns += 1

    def _udp(self, when: float, source: str, destination: str, segment: bytes) -> None:
        if len(segment) < 8:
            raise ValueError("short UDP header")
        sport, dport, length = struct.unpack_from("!HHH", segment)
        if DNS_PORT not in (sport, dport):
            self.notes.not_dns += 1
            return
        self._message(when, source, sport, destination, dport, segment[8:length])

    def _message(
        self, when: float, source: str, sport: int, destination: str, dport: int, wire: bytes
    ) -> None:
        if len(wire) < 12:
            self.notes.malformed += 1
            return
        if not wire[2] & 0x01:
            self.notes.iterative += 1  # RD=0: a resolver's iterative query, not a client's
            return
        if wire[2] & 0x80:  # a response goes to the client
            self.pairer.message(when, destination, dport, wire, server=source)
        else:
            self.pairer.message(when, source, sport, wire, server=destination)

    def _tcp(self, when: float, source: str, destination: str, segment: bytes) -> None:
        if len(segment) < 20:
            raise ValueError("short TCP header")
        sport, dport, sequence = struct.unpack_from("!HHI", segment)
        flags = segment[13]
        offset = (segment[12] >> 4) * 4
        if DNS_PORT not in (sport, dport):
            self.notes.not_dns += 1
            return
        key = (source, sport, destination, dport)
        if flags & _SYN:
            self._remember(key, _Flow((sequence + 1) & 0xFFFFFFFF))
            return
        data = segment[offset:]
        flow = self._flows.get(key)
        if data:
            if flow is None:
                flow = self._remember(key, _Flow(sequence))  # the capture began mid-connection
            self._segment(when, key, flow, sequence, data)
        if flags & (_FIN | _RST):
            self._flows.pop(key, None)

    def _remember(self, key: tuple[str, int, str, int], flow: _Flow) -> _Flow:
        self._flows[key] = flow
        self._flows.move_to_end(key)
        if len(self._flows) > MAX_FLOWS:
            self._flows.popitem(last=False)
        return flow

    def _segment(
        self, when: float, key: tuple[str, int, str, int], flow: _Flow, sequence: int, data: bytes
    ) -> None:
        if flow.broken:
            self.notes.tcp_gaps += 1
            return
        ahead = (sequence - flow.expected) & 0xFFFFFFFF
        if ahead and ahead < 0x80000000:
            # A segment is missing (lost, or not yet arrived): what follows cannot be framed.
            self.notes.tcp_gaps += 1
            flow.broken = True
            flow.buffer = b""
            return
        if ahead:  # behind: a retransmission, perhaps with new bytes at its end
            seen = (flow.expected - sequence) & 0xFFFFFFFF
            if seen >= len(data):
                return
            data = data[seen:]
        flow.expected = (flow.expected + len(data)) & 0xFFFFFFFF
        buffer = flow.buffer + data
        while len(buffer) >= 2:
            length = int.from_bytes(buffer[:2], "big")
            if len(buffer) < 2 + length:
                break
            source, sport, destination, dport = key
            self._message(when, source, sport, destination, dport, buffer[2 : 2 + length])
            buffer = buffer[2 + length :]
        flow.buffer = buffer[:MAX_BUFFER]


def read_capture(stream: BinaryIO, pairer: Pairer, name: str) -> None:
    """Every DNS message of a capture, into `pairer`; `CaptureError` if it is not a capture."""
    reader = CaptureReader(pairer)
    try:
        for when, link, frame in frames(stream, pairer.notes, name):
            reader.frame(when, link, frame)
    except ContainerError as error:
        raise CaptureError(str(error)) from None
    for link in sorted(reader.unknown_links):
        pairer.notes.messages.append(
            f"{name}: packets of link type {link} are not decoded (Ethernet, Linux cooked, "
            "raw IP and loopback are)"
        )
