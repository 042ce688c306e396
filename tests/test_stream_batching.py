"""How replies leave a DoT or DoH connection: the writes a batch of pipelined queries costs.

A client that pipelines queries (dnsperf, a stub resolver with many questions) writes each in
a TLS record of its own, and many records arrive in one socket read. DoT answers the cache hits
of such a batch in one TLS record (one write, one segment), not one record each; DoH writes each
response in a record of its own, because dnsperf reads one response per record (see
`https._H2.flush`). These tests count records and what is in them, never time: the cost they
guard against (a system call, a TLS record and a scheduler pass per reply) showed as throughput
in `benchmarks/encrypted.py`, which is where figures belong.
"""

from __future__ import annotations

import ssl
import struct
from pathlib import Path

import dns.message
import h2.config
import h2.connection
import h2.events
import pytest
import trio
import trio.testing

from resolver.server.service import ResolverService
from resolver.server.wire import FrameReader, framed, receive_arrived, tls_buffered
from resolver.testing import TestInternet
from resolver.testing.certs import Issued, TestCA
from tests.frontend_support import RESOLVER, ask, query, start_resolver

ADDRESS = RESOLVER[0]
DOT = (ADDRESS, 853)
DOH = (ADDRESS, 443)
NAME = "dns.test"
BATCH = 8  # fewer than the 16 queries one connection may have in progress


@pytest.fixture
def issued(ca: TestCA) -> Issued:
    return ca.issue("server", (NAME,), (ADDRESS,))


class Corked(trio.abc.Stream):
    """A client's transport that can hold its writes and send them in one system call, so
    that records written one by one (one per query, as dnsperf writes them) reach the server
    in one socket read, as they do from a busy client."""

    def __init__(self, inner: trio.SocketStream) -> None:
        self.inner = inner
        self.held: bytearray | None = None

    def cork(self) -> None:
        self.held = bytearray()

    async def uncork(self) -> None:
        held, self.held = self.held, None
        assert held is not None
        await self.inner.send_all(held)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.held is not None:
            self.held += data
        else:
            await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def open_tls(
    ca: TestCA, address: tuple[str, int], alpn: str
) -> tuple[trio.SSLStream[Corked], Corked]:
    context = ssl.create_default_context(cafile=str(ca.certificate))
    context.set_alpn_protocols([alpn])
    transport = Corked(await trio.open_tcp_stream(*address))
    stream = trio.SSLStream(transport, context, server_hostname=NAME)
    await stream.do_handshake()
    return stream, transport


async def serve_encrypted(
    nursery: trio.Nursery, internet: TestInternet, tmp_path: Path, issued: Issued
) -> ResolverService:
    service = await start_resolver(
        nursery,
        internet,
        tmp_path,
        tls_listen=(DOT,),
        doh_listen=(DOH,),
        tls_certificate=issued.certificate,
        tls_key=issued.key,
    )
    await ask(query("www.example.test."))  # in the packet cache from now on
    return service


def hits() -> list[bytes]:
    """BATCH packet-cache hits, told apart by their IDs."""
    wires = []
    for number in range(BATCH):
        message = query("www.example.test.")
        message.id = 1000 + number
        wires.append(message.to_wire())
    return wires


def split_framed(data: bytes) -> list[bytes]:
    """The length-prefixed messages in `data`, which must hold whole messages only."""
    messages = []
    while data:
        (length,) = struct.unpack_from("!H", data)
        messages.append(data[2 : 2 + length])
        data = data[2 + length :]
    return messages


async def test_dot_writes_the_replies_to_a_batch_of_cache_hits_in_one_record(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    service = await serve_encrypted(nursery, live_internet, tmp_path, issued)
    with trio.fail_after(10):
        stream, transport = await open_tls(ca, DOT, "dot")
        async with stream:
            # One query and its reply first: what TLS 1.3 sends after the handshake (session
            # tickets) is behind us, so that the next read is a record of replies.
            await stream.send_all(framed(query("www.example.test.").to_wire()))
            assert split_framed(bytes(await stream.receive_some(65536)))
            transport.cork()
            for wire in hits():
                await stream.send_all(framed(wire))  # a TLS record each
            await transport.uncork()
            # OpenSSL hands out one record per read: all the replies in one read means that
            # the server wrote them in one record (one write), not one record each.
            replies = split_framed(bytes(await stream.receive_some(65536)))
    assert sorted(dns.message.from_wire(reply).id for reply in replies) == [
        1000 + number for number in range(BATCH)
    ]
    assert service.stats.tls_queries == BATCH + 1


async def test_doh_writes_each_response_of_a_batch_in_a_record_of_its_own(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    service = await serve_encrypted(nursery, live_internet, tmp_path, issued)
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    ended: list[list[int]] = []  # per record received: the streams it ends
    bodies: dict[int, bytes] = {}
    with trio.fail_after(10):
        stream, transport = await open_tls(ca, DOH, "h2")
        async with stream:
            transport.cork()
            await stream.send_all(client.data_to_send())
            for wire in hits():
                stream_id = client.get_next_available_stream_id()
                client.send_headers(
                    stream_id,
                    [
                        (b":method", b"POST"),
                        (b":scheme", b"https"),
                        (b":authority", NAME.encode()),
                        (b":path", b"/dns-query"),
                        (b"content-type", b"application/dns-message"),
                    ],
                )
                client.send_data(stream_id, wire, end_stream=True)
                await stream.send_all(client.data_to_send())  # a TLS record each
            await transport.uncork()
            while sum(len(streams) for streams in ended) < BATCH:
                data = await stream.receive_some(65536)  # one record per read
                assert data, "the server closed the connection"
                streams = []
                for event in client.receive_data(bytes(data)):
                    if isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                    if isinstance(event, h2.events.StreamEnded):
                        streams.append(event.stream_id)
                ended.append(streams)
                await stream.send_all(client.data_to_send())
    # Never two responses in one record: dnsperf would keep the second until more bytes came.
    assert max(len(streams) for streams in ended) == 1
    assert sorted(dns.message.from_wire(body).id for body in bodies.values()) == [
        1000 + number for number in range(BATCH)
    ]
    assert service.stats.https_queries == BATCH


# -- the pieces, without the daemon ------------------------------------------------------------


async def test_frame_reader_hands_out_every_message_of_one_receive() -> None:
    client, server = trio.testing.memory_stream_pair()
    reader = FrameReader(server)
    first, second, third = b"\x00\x01first", b"\x00\x02second", b"\x00\x03third"
    await client.send_all(framed(first) + framed(second) + framed(third)[:4])
    assert await reader.fill()
    assert [reader.take(), reader.take()] == [first, second]
    assert reader.take() is None  # the third is not whole yet
    await client.send_all(framed(third)[4:])
    assert await reader.fill()
    assert reader.take() == third
    await client.aclose()
    assert not await reader.fill()


Memory = trio.SSLStream[
    trio.StapledStream[trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream]
]


async def tls_pair(ca: TestCA, issued: Issued) -> tuple[Memory, Memory]:
    """Both ends of a TLS connection over memory streams, handshake done."""
    left, right = trio.testing.memory_stream_pair()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(issued.certificate, issued.key)
    server = trio.SSLStream(right, server_context, server_side=True)
    client = trio.SSLStream(
        left, ssl.create_default_context(cafile=str(ca.certificate)), server_hostname=NAME
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        nursery.start_soon(client.do_handshake)
    return client, server


async def test_every_whole_tls_record_already_received_is_read_at_once(
    ca: TestCA, issued: Issued
) -> None:
    """`tls_buffered` reads a private attribute of trio's SSLStream: this fails if a trio
    upgrade changes it, rather than DoT and DoH quietly going back to a write per reply."""
    client, server = await tls_pair(ca, issued)
    records = [b"one", b"two", b"three"]
    for record in records:
        await client.send_all(record)  # three records, all in the server's memory stream
    assert await server.receive_some(65536) == b"one"  # OpenSSL: one record per read
    assert tls_buffered(server)
    assert await receive_arrived(server) == b"twothree"
    assert not tls_buffered(server)


async def test_a_partial_tls_record_is_not_waited_for(ca: TestCA, issued: Issued) -> None:
    """Reading the rest of a partial record would wait for the network while the replies to
    the whole records before it are not written yet: only whole records count."""
    left, right = trio.testing.memory_stream_pair()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(issued.certificate, issued.key)
    server = trio.SSLStream(right, server_context, server_side=True)
    client_context = ssl.create_default_context(cafile=str(ca.certificate))
    outgoing, incoming = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(incoming, outgoing, server_hostname=NAME)

    async def client_handshake() -> None:
        while True:
            try:
                client.do_handshake()
            except ssl.SSLWantReadError:
                await left.send_all(outgoing.read())
                incoming.write(bytes(await left.receive_some()))
                continue
            await left.send_all(outgoing.read())
            return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        nursery.start_soon(client_handshake)
    client.write(b"whole")
    client.write(b"partial")
    both = outgoing.read()
    first_length = 5 + int.from_bytes(both[3:5], "big")
    await left.send_all(both[: first_length + 10])  # the first record and a piece of the next
    assert await receive_arrived(server) == b"whole"
    assert not tls_buffered(server)
    await left.send_all(both[first_length + 10 :])
    assert await receive_arrived(server) == b"partial"


def test_a_plain_stream_has_no_tls_records_buffered() -> None:
    _client, server = trio.testing.memory_stream_pair()
    assert not tls_buffered(server)
