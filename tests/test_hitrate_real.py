"""`resolver hitrate` on the shapes real captures take: link layers, file variants, corrupt
headers, fragments, TCP as it really arrives, packets captured twice, the resolver's own
upstream traffic, TC=1 retries, dnstap as Unbound and Knot write it, and bad files on the
command line. Every input is built here by hand with struct (and dpkt's Ethernet helpers are
not used: the bytes are the point).
"""

from __future__ import annotations

import gzip
import ipaddress
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver.hitrate import pairing
from resolver.hitrate.dnstap import read_dnstap
from resolver.hitrate.inputs import read_files
from resolver.hitrate.pairing import Pairer
from resolver.hitrate.pcap import CaptureReader
from resolver.hitrate.trace import Notes, Trace
from resolver.hitrate.wire import summarise
from resolver.testing.captures import (
    ACK,
    PSH,
    SYN,
    dnstap_message,
    fstrm,
    pb_bytes,
    pb_fixed32,
    pb_varint,
    tcp,
    udp,
)
from tests.hitrate_support import T0, response

REPO = Path(__file__).resolve().parent.parent
CLIENT, RESOLVER, FORWARDER = "192.0.2.10", "192.0.2.53", "198.51.100.1"


def exchange(name: str = "a.test.", ident: int = 7, ttl: int = 300) -> tuple[bytes, bytes]:
    query = dns.message.make_query(name, "A", id=ident)
    return query.to_wire(), response(query, answer=f"{name} {ttl} IN A 192.0.2.1")


def pcap_file(
    records: list[tuple[float, bytes]], link: int, *, nano: bool = False, big: bool = False
) -> bytes:
    """A classic pcap, in either byte order and timestamp resolution."""
    order = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, link)
    for when, data in records:
        seconds = int(when)
        fraction = round((when - seconds) * (1e9 if nano else 1e6))
        out += struct.pack(order + "IIII", seconds, fraction, len(data), len(data)) + data
    return out


def _block(kind: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def pcapng_file(
    interfaces: list[tuple[int, int, int]], records: list[tuple[int, float, bytes]]
) -> bytes:
    """A pcapng: interfaces as (link type, if_tsresol byte, if_tsoffset), packets as
    (interface, time, frame) in Enhanced Packet Blocks."""
    out = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for link, resolution, offset in interfaces:
        options = struct.pack("<HHB3x", 9, 1, resolution)
        options += struct.pack("<HHq", 14, 8, offset) + struct.pack("<HH", 0, 0)
        out += _block(1, struct.pack("<HHI", link, 0, 0) + options)
    for number, when, data in records:
        link, resolution, offset = interfaces[number]
        units = 2 ** (resolution & 0x7F) if resolution & 0x80 else 10**resolution
        stamp = round((when - offset) * units)
        header = struct.pack(
            "<IIIII", number, stamp >> 32, stamp & 0xFFFFFFFF, len(data), len(data)
        )
        out += _block(6, header + data)
    return out


def ethernet(packet: bytes, tags: tuple[int, ...] = ()) -> bytes:
    ethertype = 0x86DD if packet[0] >> 4 == 6 else 0x0800
    vlan = b"".join(struct.pack("!HH", tag, 100 + index) for index, tag in enumerate(tags))
    return (
        b"\x02"
        + b"\x00" * 5
        + b"\x02"
        + b"\x00" * 4
        + b"\x01"
        + vlan
        + struct.pack("!H", ethertype)
        + packet
    )


def read(tmp_path: Path, data: bytes, servers: tuple[str, ...] = ()) -> Trace:
    path = tmp_path / "capture"
    path.write_bytes(data)
    return read_files([path], servers=servers)


def udp_pair(
    when: float, query: bytes, reply: bytes, client: str = CLIENT, server: str = RESOLVER
) -> list[tuple[float, bytes]]:
    return [
        (when, udp(client, 40000, server, 53, query)),
        (when + 0.004, udp(server, 53, client, 40000, reply)),
    ]


# -- link layers and file variants ------------------------------------------------------------


def _null(family: int, order: str) -> bytes:
    return struct.pack(order + "I", family)


@pytest.mark.parametrize(
    ("link", "wrap"),
    [
        (1, lambda p: ethernet(p, (0x8100,))),  # 802.1Q
        (1, lambda p: ethernet(p, (0x88A8, 0x8100))),  # QinQ
        (0, lambda p: _null(2 if p[0] >> 4 == 4 else 30, "<") + p),  # macOS DLT_NULL
        (0, lambda p: _null(2 if p[0] >> 4 == 4 else 28, ">") + p),  # FreeBSD, other order
        (108, lambda p: _null(2 if p[0] >> 4 == 4 else 24, ">") + p),  # OpenBSD DLT_LOOP
        (101, lambda p: p),  # LINKTYPE_RAW
        (12, lambda p: p),  # DLT_RAW on most systems
        (14, lambda p: p),  # DLT_RAW on OpenBSD
        (228, lambda p: p),  # LINKTYPE_IPV4 (IPv4 only: the IPv6 case is skipped below)
    ],
)
@pytest.mark.parametrize("family", ["v4", "v6"])
def test_link_layers_of_real_captures(tmp_path: Path, link: int, wrap: object, family: str) -> None:
    if link == 228 and family == "v6":
        return
    client, server = ("2001:db8::10", "2001:db8::53") if family == "v6" else (CLIENT, RESOLVER)
    query, reply = exchange()
    records = [(when, wrap(p)) for when, p in udp_pair(T0, query, reply, client, server)]  # type: ignore[operator]  # wrap is set per link
    trace = read(tmp_path, pcap_file(records, link))
    assert [(q.client, q.name, q.ttl) for q in trace.queries] == [(client, "a.test.", 300)]
    assert trace.queries[0].latency == pytest.approx(0.004, abs=1e-5)


@pytest.mark.parametrize(("nano", "big"), [(True, False), (False, True), (True, True)])
def test_nanosecond_and_big_endian_pcap(tmp_path: Path, nano: bool, big: bool) -> None:
    query, reply = exchange()
    records = [(when, ethernet(p)) for when, p in udp_pair(T0 + 0.123456789, query, reply)]
    trace = read(tmp_path, pcap_file(records, 1, nano=nano, big=big))
    assert len(trace) == 1
    assert trace.queries[0].time == pytest.approx(T0 + 0.123456789, abs=2e-6)


def test_pcapng_with_interfaces_of_different_link_types_and_resolutions(tmp_path: Path) -> None:
    """dumpcap -i eth0 -i lo, or a Wireshark merge: every interface its own link type and
    clock resolution (dpkt read every packet with the first interface's: wrong times and
    undecodable frames)."""
    a_query, a_reply = exchange("a.test.", 1)
    b_query, b_reply = exchange("b.test.", 2, 60)
    interfaces = [(1, 6, 0), (101, 9, 0), (113, 0x80 | 20, int(T0) - 100)]
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\x02" + b"\x00" * 7, 0x0800)
    records = [
        (0, T0, ethernet(udp(CLIENT, 40000, RESOLVER, 53, a_query))),
        (1, T0 + 0.000001234, udp(RESOLVER, 53, CLIENT, 40000, a_reply)),  # other interface
        (2, T0 + 10, sll + udp(CLIENT, 40001, RESOLVER, 53, b_query)),
        (2, T0 + 10.5, sll + udp(RESOLVER, 53, CLIENT, 40001, b_reply)),
    ]
    trace = read(tmp_path, pcapng_file(interfaces, records))
    assert [(q.name, q.ttl) for q in trace.queries] == [("a.test.", 300), ("b.test.", 60)]
    assert trace.queries[0].latency == pytest.approx(0.000001234, abs=5e-7)
    assert trace.queries[1].time == pytest.approx(T0 + 10, abs=1e-5)
    assert trace.queries[1].latency == pytest.approx(0.5, abs=1e-5)
    assert trace.notes.malformed == 0 and trace.notes.not_dns == 0


@pytest.mark.parametrize("ng", [False, True])
def test_a_corrupt_length_does_not_allocate_it(tmp_path: Path, ng: bool) -> None:
    query, reply = exchange()
    good = [(when, ethernet(p)) for when, p in udp_pair(T0, query, reply)]
    if ng:
        data = pcapng_file([(1, 6, 0)], [(0, when, frame) for when, frame in good])
        data += struct.pack("<II", 6, 0xFFFFFFF0) + b"\x00" * 64
    else:
        data = pcap_file(good, 1) + struct.pack("<IIII", int(T0), 0, 0xFFFFFFF0, 60) + b"x" * 64
    tracemalloc.start()
    try:
        trace = read(tmp_path, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20
    assert len(trace) == 1
    assert any("ends in the middle" in note for note in trace.notes.messages)


def test_snaplen_cut_packets_are_counted_with_a_note(tmp_path: Path) -> None:
    query, reply = exchange()
    cut = ethernet(udp(RESOLVER, 53, CLIENT, 40000, reply))[:60]
    data = pcap_file([(T0, ethernet(udp(CLIENT, 40000, RESOLVER, 53, query)))], 1)
    data += struct.pack("<IIII", int(T0) + 1, 0, len(cut), len(cut) + 40) + cut
    trace = read(tmp_path, data)
    assert len(trace) == 0 and trace.notes.malformed == 1 and trace.notes.unanswered == 1
    assert any("snaplen" in note for note in trace.notes.messages)


# -- IP -------------------------------------------------------------------------------------


def test_fragments_are_counted_and_extension_headers_skipped(tmp_path: Path) -> None:
    query, reply = exchange()
    fragment = bytearray(udp(RESOLVER, 53, CLIENT, 40000, reply))
    fragment[6:8] = b"\x20\x00"  # MF: the first fragment of a large response
    v6_query = udp("2001:db8::10", 40001, "2001:db8::53", 53, query)
    # hop-by-hop (8 bytes) then destination options (16 bytes) before the UDP header
    hop = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"
    dest = bytes([17, 1]) + b"\x01\x0c" + b"\x00" * 12
    v6 = bytearray(v6_query[:40]) + hop + dest + v6_query[40:]
    v6[6] = 0
    v6[4:6] = struct.pack("!H", len(v6) - 40)
    v6_reply = udp("2001:db8::53", 53, "2001:db8::10", 40001, reply)
    frag6 = bytearray(v6_reply[:40]) + bytes([17, 0, 0, 1, 0, 0, 0, 1]) + v6_reply[40:]
    frag6[6] = 44
    frag6[4:6] = struct.pack("!H", len(frag6) - 40)
    v6_plain_reply = v6_reply
    records = [
        (T0, udp(CLIENT, 40000, RESOLVER, 53, query)),
        (T0 + 0.01, bytes(fragment)),
        (T0 + 1, bytes(v6)),
        (T0 + 1.01, bytes(frag6)),
        (T0 + 1.02, v6_plain_reply),
    ]
    trace = read(tmp_path, pcap_file(records, 101))
    assert trace.notes.fragments == 2
    assert [q.client for q in trace.queries] == ["2001:db8::10"]
    assert trace.queries[0].latency == pytest.approx(0.02)


def test_udp_checksums_are_not_checked_and_other_ports_are_not_dns(tmp_path: Path) -> None:
    query, reply = exchange()
    bad_sum = bytearray(udp(CLIENT, 40000, RESOLVER, 53, query))
    bad_sum[26:28] = b"\xde\xad"  # offloaded checksums are garbage in captures
    records = [
        (T0, bytes(bad_sum)),
        (T0 + 0.01, udp(RESOLVER, 53, CLIENT, 40000, reply)),
        (T0 + 1, udp(CLIENT, 40001, RESOLVER, 5353, query)),  # mDNS
        (T0 + 1, udp(CLIENT, 40002, RESOLVER, 853, query)),  # DNS over DTLS/TLS port
    ]
    trace = read(tmp_path, pcap_file(records, 101))
    assert len(trace) == 1 and trace.notes.not_dns == 2


# -- TCP as it really arrives ------------------------------------------------------------------


def test_tcp_several_messages_per_segment_one_over_several_and_retransmissions(
    tmp_path: Path,
) -> None:
    one, one_reply = exchange("a.test.", 1)
    two, two_reply = exchange("b.test.", 2)
    queries = struct.pack("!H", len(one)) + one + struct.pack("!H", len(two)) + two
    replies = (
        struct.pack("!H", len(one_reply))
        + one_reply
        + struct.pack("!H", len(two_reply))
        + two_reply
    )
    c, r = (CLIENT, 40000), (RESOLVER, 53)
    half = len(replies) // 3
    records = [
        (T0, tcp(*c, *r, 99, SYN)),
        (T0, tcp(*r, *c, 499, SYN | ACK)),
        (T0 + 0.001, tcp(*c, *r, 100, PSH | ACK, queries)),  # two queries, one segment
        (T0 + 0.2, tcp(*c, *r, 100, PSH | ACK, queries)),  # retransmitted whole
        (T0 + 0.3, tcp(*r, *c, 500, ACK, replies[:half])),
        (T0 + 0.3, tcp(*r, *c, 500, ACK, replies[:half])),  # retransmitted
        (T0 + 0.31, tcp(*r, *c, 500 + half, ACK, replies[half:])),
        (T0 + 0.32, tcp(*r, *c, 500 + half - 5, ACK, replies[half - 5 :])),  # overlapping
    ]
    trace = read(tmp_path, pcap_file(records, 101))
    assert sorted(q.name for q in trace.queries) == ["a.test.", "b.test."]
    assert trace.notes.unasked == 0 and trace.notes.unanswered == 0


# -- pairing -----------------------------------------------------------------------------------


def test_every_packet_captured_twice_counts_once(tmp_path: Path) -> None:
    """`tcpdump -i any` on a host with a VLAN or bridge interface sees each packet twice."""
    query, reply = exchange()
    records = []
    for when, packet in udp_pair(T0, query, reply) + udp_pair(T0 + 60, query, reply):
        records += [(when, packet), (when + 0.00001, packet)]
    trace = read(tmp_path, pcap_file(records, 101))
    assert len(trace) == 2
    assert trace.notes.retransmitted == 2 and trace.notes.duplicates == 2
    assert trace.notes.unanswered == 0 and trace.notes.unasked == 0


def test_a_retry_with_the_same_id_is_one_query_with_a_new_id_two(tmp_path: Path) -> None:
    query, reply = exchange(ident=7)
    again, again_reply = exchange(ident=8)
    records = [
        (T0, udp(CLIENT, 40000, RESOLVER, 53, query)),
        (T0 + 2, udp(CLIENT, 40000, RESOLVER, 53, query)),  # glibc's retry: same ID
        (T0 + 2.1, udp(RESOLVER, 53, CLIENT, 40000, reply)),
        (T0 + 7, udp(CLIENT, 40000, RESOLVER, 53, again)),  # a new query
        (T0 + 7.1, udp(RESOLVER, 53, CLIENT, 40000, again_reply)),
    ]
    trace = read(tmp_path, pcap_file(records, 101))
    assert [q.time - T0 for q in trace.queries] == [0.0, 7.0]
    assert [q.latency for q in trace.queries] == pytest.approx([2.1, 0.1])
    assert trace.notes.retransmitted == 1


def test_a_truncated_response_and_its_tcp_retry_count_once(tmp_path: Path) -> None:
    query, reply = exchange("big.test.")
    truncated = dns.message.from_wire(reply)
    truncated.flags |= dns.flags.TC
    truncated.answer = []
    tc_wire = truncated.to_wire()
    framed_q = struct.pack("!H", len(query)) + query
    framed_r = struct.pack("!H", len(reply)) + reply
    c, r = (CLIENT, 40001), (RESOLVER, 53)
    records = [
        (T0, udp(CLIENT, 40000, RESOLVER, 53, query)),
        (T0 + 0.01, udp(RESOLVER, 53, CLIENT, 40000, tc_wire)),
        (T0 + 0.02, tcp(*c, *r, 99, SYN)),
        (T0 + 0.03, tcp(*c, *r, 100, PSH | ACK, framed_q)),
        (T0 + 0.04, tcp(*r, *c, 500, PSH | ACK, framed_r)),
    ]
    trace = read(tmp_path, pcap_file(records, 101))
    assert [(q.name, q.ttl) for q in trace.queries] == [("big.test.", 300)]
    assert trace.notes.truncated == 1


def test_0x20_names_pair_and_share_one_cache_entry(tmp_path: Path) -> None:
    query = dns.message.make_query("WwW.ExAmPlE.TeSt.", "A", id=9)
    reply = response(query, answer="WwW.ExAmPlE.TeSt. 300 IN A 192.0.2.1")
    plain, plain_reply = exchange("www.example.test.", 10)
    records = udp_pair(T0, query.to_wire(), reply) + udp_pair(T0 + 5, plain, plain_reply)
    trace = read(tmp_path, pcap_file(records, 101))
    assert [q.name for q in trace.queries] == ["www.example.test."] * 2
    assert trace.distinct_questions() == 1


def test_queries_never_answered_leave_the_pairing_table() -> None:
    notes = Notes()
    pairer = Pairer(notes)
    for index in range(5000):
        query = dns.message.make_query(f"q{index}.test.", "A", id=index & 0xFFFF)
        pairer.message(T0 + index, CLIENT, 1024 + index % 60000, query.to_wire())
    assert len(pairer._pending) <= pairing.PENDING_SECONDS + 1
    assert notes.unanswered == 5000 - len(pairer._pending)
    assert pairer.finish() == [] and notes.unanswered == 5000


def test_corrupt_timestamps_are_malformed_not_centuries_of_hours(tmp_path: Path) -> None:
    query, reply = exchange()
    records = udp_pair(T0, query, reply) + udp_pair(5.0, query, reply)  # a clock never set
    trace = read(tmp_path, pcap_file(records, 101))
    assert len(trace) == 1 and trace.notes.malformed == 2
    far = [(0, when, packet) for when, packet in udp_pair(1e12, query, reply)]
    trace = read(tmp_path, pcapng_file([(101, 6, 0)], far))
    assert len(trace) == 0 and trace.notes.malformed == 2


# -- the resolver's own traffic ----------------------------------------------------------------


def _forwarding_capture() -> list[tuple[float, bytes]]:
    """`tcpdump -i any port 53` on a forwarding resolver: a client's query, the resolver's
    RD=1 query to its forwarder, and a client on the resolver's own host."""
    query, reply = exchange("a.test.", 1)
    upstream, upstream_reply = exchange("a.test.", 2)
    local, local_reply = exchange("b.test.", 3)
    return [
        *udp_pair(T0, query, reply),
        (T0 + 0.001, udp(RESOLVER, 33000, FORWARDER, 53, upstream)),
        (T0 + 0.003, udp(FORWARDER, 53, RESOLVER, 33000, upstream_reply)),
        *udp_pair(T0 + 1, local, local_reply, RESOLVER, RESOLVER),
    ]


def test_the_resolvers_queries_to_its_forwarder_are_left_out(tmp_path: Path) -> None:
    trace = read(tmp_path, pcap_file(_forwarding_capture(), 101))
    assert [(q.client, q.name) for q in trace.queries] == [
        (CLIENT, "a.test."),
        (RESOLVER, "b.test."),
    ]
    assert trace.notes.upstream == 1
    assert any(f"{RESOLVER} to {FORWARDER}" in note for note in trace.notes.messages)


def test_server_names_the_resolver(tmp_path: Path) -> None:
    data = pcap_file(_forwarding_capture(), 101)
    trace = read(tmp_path, data, servers=(RESOLVER,))
    assert [q.name for q in trace.queries] == ["a.test.", "b.test."]
    # Naming the forwarder instead replays what the forwarder saw: the resolver's queries.
    trace = read(tmp_path, data, servers=(FORWARDER,))
    assert [(q.client, q.name) for q in trace.queries] == [(RESOLVER, "a.test.")]
    assert trace.notes.upstream == 2


def test_rd0_iterative_queries_are_counted_apart(tmp_path: Path) -> None:
    query = dns.message.make_query("a.test.", "A", id=3)
    query.flags &= ~dns.flags.RD
    reply = response(query, answer="a.test. 300 IN A 192.0.2.1")
    trace = read(tmp_path, pcap_file(udp_pair(T0, query.to_wire(), reply), 101))
    assert len(trace) == 0 and trace.notes.iterative == 2


# -- what an answer says -----------------------------------------------------------------------


def test_a_cname_chain_to_a_negative_answer_lives_its_shortest_part() -> None:
    query = dns.message.make_query("alias.test.", "A", id=1)
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.NXDOMAIN)
    reply.answer.append(dns.rrset.from_text("alias.test.", 20, "IN", "CNAME", "gone.test."))
    reply.authority.append(
        dns.rrset.from_text("test.", 300, "IN", "SOA", "ns.test. h.test. 1 2 3 4 60")
    )
    assert summarise(reply.to_wire()).ttl == 20
    reply.answer[0].ttl = 3600
    assert summarise(reply.to_wire()).ttl == 60


# -- dnstap ------------------------------------------------------------------------------------


def _read_tap(data: bytes) -> tuple[Pairer, Notes]:
    import io

    notes = Notes()
    pairer = Pairer(notes)
    read_dnstap(io.BytesIO(data), pairer, "tap")
    return pairer, notes


def test_dnstap_as_unbound_and_knot_write_it() -> None:
    query, reply = exchange()
    resolver_query = pb_bytes(14, pb_varint(1, 3) + pb_bytes(10, query))  # RESOLVER_QUERY
    # A CLIENT_RESPONSE that carries the query too, and no response time (only the query's).
    both = pb_varint(1, 6) + pb_bytes(4, ipaddress.ip_address(CLIENT).packed) + pb_varint(6, 9)
    both += pb_varint(8, int(T0)) + pb_fixed32(9, 0) + pb_bytes(10, query) + pb_bytes(14, reply)
    payloads = [
        pb_bytes(1, b"unbound") + pb_bytes(2, b"1.19") + pb_bytes(14, both) + pb_varint(15, 1),
        resolver_query,
        pb_bytes(99, b"a field from a newer schema") + pb_varint(15, 1),
        dnstap_message(5, CLIENT, 10, T0 + 5, query),
        dnstap_message(6, CLIENT, 10, T0 + 5.01, reply, T0 + 5),
    ]
    pairer, notes = _read_tap(fstrm(payloads))
    queries = pairer.finish()
    assert [(q.time - T0, q.ttl) for q in queries] == [(0.0, 300), (5.0, 300)]
    assert notes.other_dnstap == 2 and notes.malformed == 0 and not notes.messages


def test_dnstap_bidirectional_control_frames_and_a_huge_length() -> None:
    query, _reply = exchange()
    ready = b"\x00\x00\x00\x00" + struct.pack("!II", 4, 4)  # READY (bidirectional handshake)
    body = fstrm([dnstap_message(5, CLIENT, 10, T0, query)], stop=False)
    huge = struct.pack("!I", 0xFFFFFFF0) + b"x" * 10
    tracemalloc.start()
    try:
        _pairer, notes = _read_tap(ready + body + huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20
    assert any("data frame of" in note for note in notes.messages)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=600))
def test_dnstap_decoder_never_raises_on_garbage(garbage: bytes, cut: int) -> None:
    query, _reply = exchange()
    good = fstrm([dnstap_message(5, CLIENT, 10, T0, query)])
    _read_tap(garbage)
    _read_tap(b"\x00\x00\x00\x00" + garbage)
    _read_tap(good[:cut] + garbage)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from([0, 1, 12, 101, 108, 113, 276]))
def test_the_packet_decoder_never_raises_on_garbage(garbage: bytes, link: int) -> None:
    reader = CaptureReader(Pairer(Notes()))
    reader.frame(T0, link, garbage)
    reader.frame(T0, link, b"\x45" + garbage)
    reader.frame(T0, link, b"\x60" + garbage)


# -- the command -------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resolver", "hitrate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_bad_files_are_one_line_naming_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    short = tmp_path / "short.pcap"
    short.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00")
    for path, reason in (
        (tmp_path / "missing.pcap", "No such file or directory"),
        (tmp_path, "is a directory"),
        (empty, "empty file"),
        (short, "shorter than a pcap header"),
    ):
        done = run(str(path))
        assert done.returncode == 1, (path, done.stderr)
        assert done.stderr == f"resolver: error: {path}: {reason}\n" or (
            done.stderr.startswith(f"resolver: error: {path}: ") and reason in done.stderr
        ), done.stderr
        assert done.stderr.count("\n") == 1
    done = run(str(empty), "--server", "not-an-address")
    assert done.returncode == 2 and "--server" in done.stderr


def test_a_gzipped_capture_is_read_and_a_cut_one_noted(tmp_path: Path) -> None:
    query, reply = exchange()
    data = pcap_file([(w, ethernet(p)) for w, p in udp_pair(T0, query, reply)], 1)
    packed = tmp_path / "dns.pcap.gz"
    packed.write_bytes(gzip.compress(data))
    assert len(read_files([packed])) == 1
    done = run(str(packed), "--server", RESOLVER)
    assert done.returncode == 0, done.stderr
    assert "1 client queries" in done.stdout
    many = b"".join(
        pcap_file([(w, ethernet(p)) for w, p in udp_pair(T0 + n, *exchange(ident=n))], 1)[24:]
        for n in range(200)
    )
    packed.write_bytes(gzip.compress(data + many, mtime=0)[:-300])
    trace = read_files([packed])
    assert 1 < len(trace) < 201
    assert any("gzip" in note or "middle" in note for note in trace.notes.messages)
