"""Files of DNS traffic for tests and benchmarks of `resolver hitrate`: pcap, pcapng, dnstap and
query logs, all written from one list of `Exchange` values.

Captures are built packet by packet (link, IP, UDP or TCP headers packed here; dpkt writes the
pcap and pcapng containers), dnstap files with a small protobuf and Frame Streams encoder (the
reader in `resolver.hitrate.dnstap` is checked against it, and against nothing generated from
the same code), and query logs with the daemon's own `QueryLog` on an injected clock.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from resolver.server.querylog import QueryLog
from resolver.testing.scripted import FakeClock

RESOLVER_V4 = "192.0.2.53"
RESOLVER_V6 = "2001:db8::53"


@dataclass(frozen=True)
class Exchange:
    """A client's query and the resolver's response, `latency` seconds later."""

    time: float
    client: str
    port: int
    query: bytes
    response: bytes
    latency: float = 0.005
    tcp: bool = False


# -- packets ------------------------------------------------------------------------------------


def _ip(source: str, destination: str, protocol: int, payload: bytes) -> bytes:
    if ":" in source:
        return (
            struct.pack("!IHBB", 0x60000000, len(payload), protocol, 64)
            + ipaddress.IPv6Address(source).packed
            + ipaddress.IPv6Address(destination).packed
            + payload
        )
    return (
        struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0)
        + ipaddress.IPv4Address(source).packed
        + ipaddress.IPv4Address(destination).packed
        + payload
    )


def udp(source: str, sport: int, destination: str, dport: int, data: bytes) -> bytes:
    return _ip(source, destination, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


def tcp(
    source: str, sport: int, destination: str, dport: int, seq: int, flags: int, data: bytes = b""
) -> bytes:
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    return _ip(source, destination, 6, header + data)


SYN, ACK, PSH = 0x02, 0x10, 0x08

#: Link types and how each wraps an IP packet.
LINKS = {"ethernet": 1, "raw": 101, "sll": 113, "sll2": 276}


def frame(link: str, packet: bytes) -> bytes:
    ethertype = 0x86DD if packet[0] >> 4 == 6 else 0x0800
    if link == "ethernet":
        return (
            b"\x02\x00\x00\x00\x00\x01"
            + b"\x02\x00\x00\x00\x00\x02"
            + struct.pack("!H", ethertype)
            + packet
        )
    if link == "sll":
        return (
            struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x02\x00\x00", ethertype) + packet
        )
    if link == "sll2":
        return (
            struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, 0, 6, b"\x02\x00\x00\x00\x00\x02\x00\x00")
            + packet
        )
    return packet


def packets(exchanges: Sequence[Exchange]) -> list[tuple[float, bytes]]:
    """(time, IP packet) of every exchange: UDP, or a TCP connection (SYN, query, response)."""
    out: list[tuple[float, bytes]] = []
    for exchange in exchanges:
        server = RESOLVER_V6 if ":" in exchange.client else RESOLVER_V4
        client, port = exchange.client, exchange.port
        answered = exchange.time + exchange.latency
        if not exchange.tcp:
            out.append((exchange.time, udp(client, port, server, 53, exchange.query)))
            out.append((answered, udp(server, 53, client, port, exchange.response)))
            continue
        query = struct.pack("!H", len(exchange.query)) + exchange.query
        reply = struct.pack("!H", len(exchange.response)) + exchange.response
        out.append((exchange.time - 0.001, tcp(client, port, server, 53, 99, SYN)))
        out.append((exchange.time - 0.001, tcp(server, 53, client, port, 499, SYN | ACK)))
        out.append((exchange.time, tcp(client, port, server, 53, 100, PSH | ACK, query)))
        # The response in two segments: a message may span several.
        out.append((answered, tcp(server, 53, client, port, 500, ACK, reply[:7])))
        out.append((answered, tcp(server, 53, client, port, 507, PSH | ACK, reply[7:])))
    return sorted(out, key=lambda item: item[0])


def write_capture(
    path: Path,
    exchanges: Sequence[Exchange],
    link: str = "ethernet",
    ng: bool = False,
    extra: Sequence[tuple[float, bytes]] = (),
) -> Path:
    """A pcap (or pcapng) file of the exchanges, plus `extra` frames (already framed)."""
    import dpkt

    items = [(when, frame(link, packet)) for when, packet in packets(exchanges)]
    items = sorted([*items, *extra], key=lambda item: item[0])
    with path.open("wb") as stream:
        writer = (dpkt.pcapng.Writer if ng else dpkt.pcap.Writer)(stream, linktype=LINKS[link])
        for when, data in items:
            writer.writepkt(data, ts=when)
    return path


# -- dnstap -------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_bytes(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def pb_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def pb_fixed32(number: int, value: int) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<I", value)


def dnstap_message(
    kind: int, client: str, port: int, when: float, wire: bytes, asked: float | None = None
) -> bytes:
    """A `Dnstap` protobuf of a CLIENT_QUERY (5) or CLIENT_RESPONSE (6)."""
    family = 2 if ":" in client else 1
    server = RESOLVER_V6 if family == 2 else RESOLVER_V4
    seconds, nanoseconds = int(when), round((when - int(when)) * 1e9)
    message = (
        pb_varint(1, kind)
        + pb_varint(2, family)
        + pb_varint(3, 1)
        + pb_bytes(4, ipaddress.ip_address(client).packed)
        + pb_bytes(5, ipaddress.ip_address(server).packed)
        + pb_varint(6, port)
        + pb_varint(7, 53)
    )
    if kind == 5:
        message += pb_varint(8, seconds) + pb_fixed32(9, nanoseconds) + pb_bytes(10, wire)
    else:
        if asked is not None:
            message += pb_varint(8, int(asked)) + pb_fixed32(9, round((asked - int(asked)) * 1e9))
        message += pb_varint(12, seconds) + pb_fixed32(13, nanoseconds) + pb_bytes(14, wire)
    return pb_bytes(1, b"test") + pb_bytes(2, b"0.1") + pb_bytes(14, message) + pb_varint(15, 1)


def fstrm(payloads: Sequence[bytes], stop: bool = True) -> bytes:
    """A Frame Streams file: START (content type dnstap), a data frame each, STOP."""
    content = b"protobuf:dnstap.Dnstap"
    start = struct.pack("!II", 2, 1) + struct.pack("!I", len(content)) + content
    out = b"\x00\x00\x00\x00" + struct.pack("!I", len(start)) + start
    for payload in payloads:
        out += struct.pack("!I", len(payload)) + payload
    if stop:
        out += b"\x00\x00\x00\x00" + struct.pack("!II", 4, 3)
    return out


def dnstap_payloads(exchanges: Sequence[Exchange]) -> list[bytes]:
    out = []
    for exchange in exchanges:
        answered = exchange.time + exchange.latency
        out.append(dnstap_message(5, exchange.client, exchange.port, exchange.time, exchange.query))
        out.append(
            dnstap_message(
                6, exchange.client, exchange.port, answered, exchange.response, exchange.time
            )
        )
    return out


def write_dnstap(path: Path, exchanges: Sequence[Exchange]) -> Path:
    path.write_bytes(fstrm(dnstap_payloads(exchanges)))
    return path


# -- the query log ------------------------------------------------------------------------------


def write_querylog(path: Path, exchanges: Sequence[Exchange]) -> Path:
    """The lines the daemon's `QueryLog` writes for these exchanges."""
    clock = FakeClock()
    log = QueryLog(path, clock=clock)
    try:
        for exchange in exchanges:
            clock.now = exchange.time + exchange.latency
            log.record(exchange.client, exchange.query, exchange.response, "udp", exchange.latency)
    finally:
        log.close()
    return path
