"""Hostile DoH/DoT clients and forwarders (found by a hostile review): whatever one connection does,
the daemon keeps answering everyone else.

Each test here reproduces one way a single client (or a forwarder) could once kill the whole
daemon or wedge a forward zone; after it, the daemon must still answer over UDP and TCP.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import h2.events
import hpack
import httpx
import pytest
import trio
from hyperframe import frame as frames

from resolver.config import Limits
from resolver.engine.padding import RESPONSE_BLOCK
from resolver.server import listeners
from resolver.server.wire import framed, receive_framed
from resolver.testing import TestInternet
from resolver.testing.certs import Issued, TestCA
from tests import test_encrypted_hardening as hardening
from tests.frontend_support import RESOLVER, ask, query, start_resolver, tcp_exchange
from tests.test_encrypted_hardening import DOH, DOT, H2Client, encrypted, open_tls
from tests.test_encrypted_listeners import slow_internet

issued = hardening.issued  # the fixture (`ca` is in conftest.py)


@pytest.fixture
def no_last_resort(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if a connection ended in the listener's last-resort handler (an
    exception nothing else expected: before encrypted transports were hardened it killed
    the daemon)."""
    yield
    records = caplog.get_records("call")  # caplog.records would be the teardown's
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert not errors


def get(client: H2Client, name: str, *, end: bool = True) -> int:
    """A DoH GET of `name` A on the next stream; its stream ID."""
    wire = query(name).to_wire()
    stream_id: int = client.connection.get_next_available_stream_id()
    target = b"/dns-query?dns=" + base64.urlsafe_b64encode(wire).rstrip(b"=")
    fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"dns.test")]
    client.connection.send_headers(stream_id, [*fields, (b":path", target)], end_stream=end)
    return stream_id


def statuses(client: H2Client) -> dict[int, bytes]:
    responses = client.of(h2.events.ResponseReceived)
    return {event.stream_id: dict(event.headers)[b":status"] for event in responses}


async def still_answers() -> None:
    """The daemon answers over UDP and on a new TCP connection."""
    with trio.fail_after(5):
        reply = await ask(query("www.example.test."))
        assert reply.answer[0].to_text().endswith("192.0.2.1")
        (wire,) = await tcp_exchange([query("www.example.test.").to_wire()])
        assert dns.message.from_wire(wire).answer[0].to_text().endswith("192.0.2.1")


async def test_an_exception_in_one_connection_does_not_kill_the_daemon(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    issued: Issued,
) -> None:
    original = listeners.serve_stream
    calls = 0

    async def broken(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected")
        await original(*args, **kwargs)  # type: ignore[arg-type]  # the wrapped call's own

    monkeypatch.setattr(listeners, "serve_stream", broken)
    await encrypted(nursery, live_internet, tmp_path, issued)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.54.0.1", 53)
        async with stream:
            assert await stream.receive_some(100) == b""  # closed, not hung
    assert calls == 1
    await still_answers()
    assert calls == 2


@pytest.mark.parametrize("count", [17, 1000])
async def test_rapid_reset_in_one_write_leaves_the_connection_working(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    no_last_resort: None,
    count: int,
) -> None:
    """HEADERS+END_STREAM then RST_STREAM, `count` times in ONE write: the refusal beyond
    MAX_STREAMS must skip streams the client has already reset."""
    await encrypted(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    await client.receive(0.2)
    for index in range(count):
        client.connection.reset_stream(get(client, f"r{index}.example.test."))
    await client.flush()
    await client.receive(0.5)
    last = get(client, "www.example.test.")
    await client.flush()
    assert await client.receive(1.0)
    assert statuses(client).get(last) == b"200"
    await still_answers()


async def test_a_reply_to_a_stream_reset_before_a_newer_one_opened_is_dropped(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    no_last_resort: None,
) -> None:
    """The client resets a pending request and opens a newer stream: the old stream's
    reply then meets StreamIDTooLowError in h2 (a ProtocolError, not StreamClosedError)."""
    service = await encrypted(nursery, live_internet, tmp_path, issued)
    await ask(query("www.example.test."))  # cached: the newer request is a hit
    slow_internet(live_internet, 0.3)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    await client.receive(0.2)
    slow = get(client, "www.other.test.")
    await client.flush()
    await client.receive(0.2)
    client.connection.reset_stream(slow, 8)
    fast = get(client, "www.example.test.")
    await client.flush()
    with trio.fail_after(8):
        while service.engine.in_flight:  # until the slow answer comes back
            assert await client.receive(0.2)
    assert await client.receive(0.2)
    assert statuses(client) == {fast: b"200"}, service.engine.in_flight
    again = get(client, "www.example.test.")
    await client.flush()
    assert await client.receive(0.5)
    assert statuses(client)[again] == b"200"


async def test_a_cache_hit_then_goaway_in_one_write(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    no_last_resort: None,
) -> None:
    await encrypted(nursery, live_internet, tmp_path, issued)
    warm = H2Client(await open_tls(ca, DOH, "h2"))
    get(warm, "www.example.test.")
    await warm.flush()
    await warm.receive(0.5)
    assert list(statuses(warm).values()) == [b"200"]  # in the packet cache now
    client = H2Client(await open_tls(ca, DOH, "h2"))
    get(client, "www.example.test.")
    client.connection.close_connection()
    await client.flush()
    # The server closes (its SETTINGS and replies are not for a closed client h2 to read).
    await hardening.closed_by_server(client.stream, 1.0)
    await still_answers()


async def test_random_http2_frames_do_not_break_the_daemon(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    no_last_resort: None,
) -> None:
    """A small seeded fuzz of frame sequences (from the review's fuzz2.py), each on its own
    connection, in one write or frame by frame."""
    await encrypted(nursery, live_internet, tmp_path, issued)
    await ask(query("www.example.test."))
    rnd = random.Random(12)
    for _ in range(25):
        client = H2Client(await open_tls(ca, DOH, "h2"))
        await client.flush()
        encoder = hpack.Encoder()
        sent: list[frames.Frame] = []
        for _ in range(rnd.randint(1, 40)):
            sid = rnd.choice(range(1, 40, 2))
            op = rnd.choice(
                [
                    "get",
                    "get",
                    "post",
                    "rst",
                    "data",
                    "wu",
                    "prio",
                    "goaway",
                    "settings",
                    "open",
                    "ping",
                    "head",
                ]
            )
            name = rnd.choice(
                ["www.example.test.", "nx.example.test.", f"r{rnd.randint(0, 50)}.test."]
            )
            wire = query(name).to_wire()
            target = b"/dns-query?dns=" + base64.urlsafe_b64encode(wire).rstrip(b"=")
            if op in ("get", "open", "head"):
                method = {"get": b"GET", "open": b"GET", "head": b"HEAD"}[op]
                fields = [
                    (b":method", method),
                    (b":scheme", b"https"),
                    (b":authority", b"x"),
                    (b":path", target),
                ]
                flags = ["END_HEADERS"] + (["END_STREAM"] if op != "open" else [])
                sent.append(frames.HeadersFrame(sid, data=encoder.encode(fields), flags=flags))
            elif op == "post":
                fields = [
                    (b":method", b"POST"),
                    (b":scheme", b"https"),
                    (b":authority", b"x"),
                    (b":path", b"/dns-query"),
                    (b"content-type", b"application/dns-message"),
                ]
                sent.append(
                    frames.HeadersFrame(sid, data=encoder.encode(fields), flags=["END_HEADERS"])
                )
                sent.append(frames.DataFrame(sid, data=wire, flags=["END_STREAM"]))
            elif op == "rst":
                sent.append(frames.RstStreamFrame(sid, error_code=rnd.choice([0, 8])))
            elif op == "data":
                end = ["END_STREAM"] if rnd.random() < 0.5 else []
                sent.append(frames.DataFrame(sid, data=b"x" * rnd.randint(0, 100), flags=end))
            elif op == "wu":
                increment = rnd.randint(1, 100_000)
                sent.append(
                    frames.WindowUpdateFrame(rnd.choice([0, sid]), window_increment=increment)
                )
            elif op == "prio":
                sent.append(
                    frames.PriorityFrame(sid, depends_on=rnd.choice([0, 1, 3]), stream_weight=10)
                )
            elif op == "goaway":
                sent.append(frames.GoAwayFrame(0, last_stream_id=0))
            elif op == "settings":
                sent.append(frames.SettingsFrame(0, settings={4: rnd.choice([0, 1, 65535])}))
            else:
                sent.append(frames.PingFrame(0, opaque_data=b"12345678"))
        try:
            if rnd.random() < 0.5:
                await client.stream.send_all(b"".join(f.serialize() for f in sent))
            else:
                for one in sent:
                    await client.stream.send_all(one.serialize())
            with trio.move_on_after(0.2):
                while await client.stream.receive_some(65536):
                    pass
        except trio.BrokenResourceError:
            pass
        await trio.aclose_forcefully(client.stream)
    await still_answers()


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
async def test_head_gets_the_get_headers_and_no_body(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    no_last_resort: None,
    http2: bool,
) -> None:
    """RFC 9110 section 9.3.2: HEAD is GET without content (h11 raised on a body for HEAD)."""
    await encrypted(nursery, live_internet, tmp_path, issued)
    wire = query("www.example.test.").to_wire()
    params = {"dns": base64.urlsafe_b64encode(wire).decode().rstrip("=")}
    url = f"https://{hardening.ADDRESS}/dns-query"

    def requests() -> tuple[httpx.Response, httpx.Response]:
        verify = hardening.context(ca, "h2" if http2 else "http/1.1")
        with httpx.Client(verify=verify, http2=http2, http1=not http2) as client:
            return client.get(url, params=params), client.head(url, params=params)

    get_response, head = await trio.to_thread.run_sync(requests)
    assert head.status_code == get_response.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "cache-control"):
        assert head.headers[name] == get_response.headers[name], name
    assert int(head.headers["content-length"]) == len(get_response.content) > 12
    await still_answers()


async def test_a_padded_dot_reply_over_1232_octets_is_padded(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
) -> None:
    await encrypted(nursery, live_internet, tmp_path, issued)
    message = query("big.example.test.", "TXT", use_edns=0, pad=128)
    with trio.fail_after(5):
        stream = await open_tls(ca, DOT, "dot")
        async with stream:
            await stream.send_all(framed(message.to_wire()))
            reply = await receive_framed(stream)
    assert reply is not None and len(reply) > 1232
    assert len(reply) % RESPONSE_BLOCK == 0
    parsed = dns.message.from_wire(reply)
    assert len(parsed.answer[0]) == 40 and not parsed.flags & dns.flags.TC
    assert any(option.otype == dns.edns.OptionType.PADDING for option in parsed.options)


async def connect_from(source: str, where: tuple[str, int]) -> trio.SocketStream:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    await sock.bind((source, 0))
    await sock.connect(where)
    return trio.SocketStream(sock)


async def tcp_answer(source: str) -> dns.message.Message:
    with trio.fail_after(3):
        stream = await connect_from(source, RESOLVER)
        async with stream:
            await stream.send_all(framed(query("www.example.test.").to_wire()))
            wire = await receive_framed(stream)
    assert wire is not None
    return dns.message.from_wire(wire)


async def test_clients_outside_allow_are_closed_at_accept_without_a_slot(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, issued: Issued
) -> None:
    limits = Limits(tcp_idle_timeout=hardening.IDLE, max_tcp_clients=2)
    await start_resolver(
        nursery,
        live_internet,
        tmp_path,
        tls_listen=(DOT,),
        tls_certificate=issued.certificate,
        tls_key=issued.key,
        limits=limits,
        allow=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    outsiders = [await connect_from("127.0.0.9", where) for where in (DOT, DOT, RESOLVER)]
    with trio.fail_after(1):  # closed at once, not after a handshake timeout
        for stream in outsiders:
            assert await stream.receive_some(100) == b""
    reply = await tcp_answer("127.0.0.1")
    assert reply.answer[0].to_text().endswith("192.0.2.1")


async def test_connections_that_never_handshake_leave_plain_tcp_its_slots(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, issued: Issued
) -> None:
    limits = Limits(tcp_idle_timeout=5.0, max_tcp_clients=4)
    await start_resolver(
        nursery,
        live_internet,
        tmp_path,
        tls_listen=(DOT,),
        tls_certificate=issued.certificate,
        tls_key=issued.key,
        limits=limits,
    )
    silent = [await connect_from("127.0.0.1", DOT) for _ in range(6)]
    await trio.sleep(0.2)
    # At most half the slots wait for handshakes; a plain TCP client still gets its answer.
    reply = await tcp_answer("127.0.0.1")
    assert reply.answer[0].to_text().endswith("192.0.2.1")
    for stream in silent:
        await trio.aclose_forcefully(stream)
