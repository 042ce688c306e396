"""Encrypted transports under hostile or unusual peers, and what they leave in the query log.

- DoH clients that trickle (slowloris, over HTTP/1.1 and HTTP/2), keep a connection alive with
  PINGs alone, open no flow-control window, reset streams as fast as they open them (rapid
  reset), or send a body larger than a DNS message: each is bounded, never a held slot;
- a DoT forwarder's edns-tcp-keepalive timeout (RFC 7828) shortens our pooled connection's life;
- the query log names the transport and the packet cache per line.
"""

from __future__ import annotations

import ssl
import struct
from pathlib import Path
from typing import TypeVar

import dns.edns
import dns.message
import dns.name
import dns.rdatatype
import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
import trio

from resolver.config import ForwardZone, Limits
from resolver.core.actions import Server, TlsPeer
from resolver.engine.keepalive import keepalive_timeout
from resolver.server import https
from resolver.server.service import ResolverService
from resolver.server.wire import framed, receive_framed
from resolver.testing import TestInternet
from resolver.testing.certs import Issued, TestCA
from tests.frontend_support import RESOLVER, query, start_resolver
from tests.test_encrypted_listeners import slow_internet
from tests.test_forward_tls import DOT_PORT, UNBOUND, unbound, wait_for_unbound

ADDRESS = RESOLVER[0]
DOT = (ADDRESS, 853)
DOH = (ADDRESS, 443)
NAME = "dns.test"
IDLE = 1.0  # limits.tcp_idle_timeout of these tests
LIMITS = Limits(tcp_idle_timeout=IDLE)
E = TypeVar("E", bound=h2.events.Event)


@pytest.fixture
def issued(ca: TestCA) -> Issued:
    return ca.issue("server", (NAME,), (ADDRESS,))


def context(ca: TestCA, alpn: str) -> ssl.SSLContext:
    made = ssl.create_default_context(cafile=str(ca.certificate))
    made.set_alpn_protocols([alpn])
    return made


async def encrypted(
    nursery: trio.Nursery,
    internet: TestInternet,
    tmp_path: Path,
    issued: Issued,
    query_log: Path | None = None,
    limits: Limits = LIMITS,
) -> ResolverService:
    return await start_resolver(
        nursery,
        internet,
        tmp_path,
        tls_listen=(DOT,),
        doh_listen=(DOH,),
        tls_certificate=issued.certificate,
        tls_key=issued.key,
        limits=limits,
        query_log=query_log,
    )


async def open_tls(
    ca: TestCA, where: tuple[str, int], alpn: str
) -> trio.SSLStream[trio.SocketStream]:
    tcp = await trio.open_tcp_stream(*where)
    stream: trio.SSLStream[trio.SocketStream] = trio.SSLStream(
        tcp, context(ca, alpn), server_hostname=NAME
    )
    await stream.do_handshake()
    return stream


async def closed_by_server(stream: trio.SSLStream[trio.SocketStream], within: float) -> float:
    """Seconds until the server ends the connection (reading and dropping what it sends)."""
    started = trio.current_time()
    with trio.fail_after(within):
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not data:
                break
    return trio.current_time() - started


# -- TLS -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", [DOT, DOH], ids=["dot", "doh"])
async def test_a_handshake_that_never_completes_frees_its_slot(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    where: tuple[str, int],
) -> None:
    """One connection allowed (max_tcp_clients = 1): a client that connects and never sends a
    ClientHello holds it for the idle timeout at most, then a real client gets in."""
    limits = Limits(tcp_idle_timeout=IDLE, max_tcp_clients=1)
    await encrypted(nursery, live_internet, tmp_path, issued, limits=limits)
    silent = await trio.open_tcp_stream(*where)
    started = trio.current_time()
    with trio.fail_after(3 * IDLE):
        assert await silent.receive_some(1024) == b""  # closed by the server
    assert trio.current_time() - started >= IDLE * 0.9
    await silent.aclose()
    with trio.fail_after(5):
        stream = await open_tls(ca, where, "dot" if where == DOT else "h2")
    await stream.aclose()


# -- HTTP/1.1 ----------------------------------------------------------------------------------


async def test_an_http1_request_trickled_byte_by_byte_is_cut_off(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    service = await encrypted(nursery, live_internet, tmp_path, issued)
    stream = await open_tls(ca, DOH, "http/1.1")
    request = b"GET /dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlBHRlc3QAAAEAAQ HTTP/1.1\r\n"
    started = trio.current_time()
    with trio.move_on_after(4 * IDLE):
        try:
            for byte in request:  # one byte every IDLE/4: each within the idle timeout
                await stream.send_all(bytes([byte]))
                await trio.sleep(IDLE / 4)
        except trio.BrokenResourceError:
            pass
    # The whole request had IDLE seconds: the server closed the connection about then, long
    # before the 80-odd bytes (20 s at this pace) were all sent.
    await closed_by_server(stream, 2 * IDLE)
    assert trio.current_time() - started < 3 * IDLE
    assert service.stats.https_queries == 0


# -- HTTP/2 ------------------------------------------------------------------------------------


class H2Client:
    """A hand-driven HTTP/2 client, to misbehave in ways real clients do not."""

    def __init__(
        self, stream: trio.SSLStream[trio.SocketStream], window: int | None = None
    ) -> None:
        self.stream = stream
        self.connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        if window is not None:
            self.connection.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
            )
        self.connection.initiate_connection()
        self.events: list[h2.events.Event] = []

    async def flush(self) -> None:
        data = self.connection.data_to_send()
        if data:
            await self.stream.send_all(data)

    def post(self, body: bytes, *, end: bool = True) -> int:
        stream_id = self.connection.get_next_available_stream_id()
        self.connection.send_headers(
            stream_id,
            [
                (b":method", b"POST"),
                (b":scheme", b"https"),
                (b":authority", NAME.encode()),
                (b":path", b"/dns-query"),
                (b"content-type", b"application/dns-message"),
            ],
        )
        self.connection.send_data(stream_id, body, end_stream=end)
        return stream_id

    async def receive(self, seconds: float) -> bool:
        """Read what comes for up to `seconds`; False once the server closed the connection."""
        with trio.move_on_after(seconds):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return False
                if not data:
                    return False
                self.events += self.connection.receive_data(data)
                await self.flush()
        return True

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]


async def test_http2_pings_alone_do_not_keep_a_connection(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    await encrypted(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    started = trio.current_time()
    alive = True
    with trio.move_on_after(5 * IDLE):
        while alive:
            client.connection.ping(b"12345678")
            await client.flush()
            alive = await client.receive(IDLE / 4)  # a PING every IDLE/4 seconds
    assert not alive, "the server kept a connection that only ever sent PINGs"
    assert trio.current_time() - started < 3 * IDLE
    assert client.of(h2.events.PingAckReceived)  # it did answer the PINGs meanwhile


async def test_http2_request_body_trickled_is_cut_off(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    service = await encrypted(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    stream_id = client.post(b"", end=False)
    await client.flush()
    started, alive = trio.current_time(), True
    with trio.move_on_after(5 * IDLE):
        while alive:
            client.connection.send_data(stream_id, b"\x00")
            await client.flush()
            alive = await client.receive(IDLE / 4)
    assert not alive
    assert trio.current_time() - started < 3 * IDLE
    assert service.stats.https_queries == 0


async def test_a_body_over_65535_octets_gets_413_before_the_client_finishes(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    await encrypted(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    await client.receive(0.2)  # the server's SETTINGS
    stream_id = client.post(b"", end=False)
    sent = 0
    while sent <= 65535:  # within the server's windows (it acknowledges as it reads)
        chunk = min(16384, client.connection.local_flow_control_window(stream_id))
        if chunk:
            client.connection.send_data(stream_id, b"\x00" * chunk)
            sent += chunk
        await client.flush()
        await client.receive(0.05)
    await client.receive(1.0)
    responses = client.of(h2.events.ResponseReceived)
    assert [dict(event.headers)[b":status"] for event in responses] == [b"413"]
    # ... and asks the client to stop sending, without error (RFC 9113 section 8.1).
    resets = client.of(h2.events.StreamReset)
    assert [(event.stream_id, event.error_code) for event in resets] == [(stream_id, 0)]


async def test_a_client_that_opens_no_window_gets_its_stream_reset(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    await encrypted(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"), window=0)
    await client.receive(0.2)
    stream_id = client.post(query("www.example.test.").to_wire())
    await client.flush()
    await client.receive(2.5 * IDLE)
    # The headers go (they are not flow controlled), the body cannot; after the idle timeout
    # the server gives up on the stream instead of holding it (and its task) forever.
    assert [event.stream_id for event in client.of(h2.events.ResponseReceived)] == [stream_id]
    assert not client.of(h2.events.DataReceived)
    resets = client.of(h2.events.StreamReset)
    assert [(event.stream_id, event.error_code) for event in resets] == [(stream_id, 8)]


async def test_rapid_reset_cannot_start_more_than_max_streams_answers(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    """CVE-2023-44487: a client opens a stream and resets it at once, again and again. Each
    reset frees an HTTP/2 stream, but not the resolution it started: the answers in progress
    are capped at MAX_STREAMS per connection, and what is beyond is refused."""
    slow_internet(live_internet, 2.0)  # every resolution takes a while
    service = await encrypted(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    await client.receive(0.2)
    total = 3 * https.MAX_STREAMS
    for index in range(total):
        stream_id = client.post(query(f"n{index}.example.test.").to_wire())
        client.connection.reset_stream(stream_id)
    await client.flush()
    await client.receive(0.5)
    # Every question is still being resolved (the internet answers after 2 s): only the first
    # MAX_STREAMS requests were started, the others refused (RST_STREAM REFUSED_STREAM, which
    # the client's h2 ignores: it had reset those streams itself).
    assert service.engine.in_flight == https.MAX_STREAMS


# -- DoT forwarding: RFC 7828 keepalive --------------------------------------------------------


def test_keepalive_timeout_is_read_in_units_of_100_ms() -> None:
    reply = dns.message.make_response(query("a.fwd.test.", use_edns=0))
    option = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, struct.pack("!H", 25))
    reply.use_edns(0, options=[option])
    assert keepalive_timeout(reply.to_wire()) == 2.5
    empty = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b"")
    reply.use_edns(0, options=[empty])
    assert keepalive_timeout(reply.to_wire()) is None  # a server must give a TIMEOUT
    reply.use_edns(0)
    assert keepalive_timeout(reply.to_wire()) is None
    assert keepalive_timeout(b"\x00\x01\x02") is None


async def test_a_dot_forwarder_keepalive_shortens_the_idle_timeout(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
) -> None:
    issued = ca.issue("unbound", ("dot.test",), (UNBOUND,))
    forward = ForwardZone(
        "fwd.test.", (UNBOUND,), tls=True, tls_name="dot.test", tls_ca_file=ca.certificate
    )
    keepalive = "    edns-tcp-keepalive: yes\n    edns-tcp-keepalive-timeout: 800\n"
    with unbound(tmp_path, issued, keepalive):
        await wait_for_unbound()
        service = await start_resolver(nursery, live_internet, tmp_path, forward_zones=(forward,))
        await service.resolve(dns.name.from_text("a.fwd.test."), dns.rdatatype.A)
        pool = service.network.tls
        server = Server(UNBOUND, DOT_PORT, tls=TlsPeer("dot.test", str(ca.certificate)))
        connection = pool._connections[server]
        assert connection.idle_timeout == 0.8  # Unbound said 800 ms; ours would be 10 s
        with trio.fail_after(3):
            while not connection.closed:
                await trio.sleep(0.05)


# -- the query log -----------------------------------------------------------------------------


async def test_the_query_log_names_the_encrypted_transports(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    log = tmp_path / "queries.log"
    service = await encrypted(nursery, live_internet, tmp_path, issued, query_log=log)
    dot = await open_tls(ca, DOT, "dot")
    async with dot:
        for _ in range(2):  # a miss, then a packet-cache hit
            await dot.send_all(framed(query("www.example.test.").to_wire()))
            assert await receive_framed(dot) is not None

    def over_https() -> list[int]:
        wire = query("mail.example.test.").to_wire()
        headers = {"content-type": "application/dns-message"}
        with httpx.Client(verify=context(ca, "h2"), http2=True) as client:
            return [
                client.post(
                    f"https://{ADDRESS}/dns-query", content=wire, headers=headers
                ).status_code
                for _ in range(2)
            ]

    assert await trio.to_thread.run_sync(over_https) == [200, 200]
    assert service.stats.tls_queries == 2 and service.stats.https_queries == 2
    lines = [line.split() for line in log.read_text().splitlines()]
    # time client name type rcode source milliseconds
    assert [(line[2], line[5]) for line in lines] == [
        ("www.example.test.", "tls"),
        ("www.example.test.", "packet-cache/tls"),
        ("mail.example.test.", "https"),
        ("mail.example.test.", "packet-cache/https"),
    ]
    assert all(line[4] == "NOERROR" for line in lines)
