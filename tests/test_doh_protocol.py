"""DoH protocol corners from a hostile review: `Expect: 100-continue`, CONNECT and
`Upgrade: h2c` over HTTP/1.1, the header limit when a request arrives whole, CONNECT over
HTTP/2, and floods of HTTP/2 SETTINGS or PING frames."""

from __future__ import annotations

import base64
from pathlib import Path

import dns.message
import h2.errors
import h2.events
import pytest
import trio
from hyperframe import frame as frames

from resolver.config import Limits
from resolver.engine.doh import FrameRate, HttpError, dns_query
from resolver.testing import TestInternet
from resolver.testing.certs import Issued, TestCA
from tests.frontend_support import query
from tests.test_encrypted_hardening import DOH, NAME, H2Client, encrypted, open_tls
from tests.test_encrypted_hardening import issued as issued  # a fixture (`ca`: conftest.py)

#: Long enough that "closed at once" cannot be the idle timeout.
SLOW = Limits(tcp_idle_timeout=10.0)
WIRE = query("www.example.test.").to_wire()
TARGET = b"/dns-query?dns=" + base64.urlsafe_b64encode(WIRE).rstrip(b"=")
HOST = f"Host: {NAME}\r\n".encode()


async def start(nursery: trio.Nursery, internet: TestInternet, tmp: Path, issued: Issued) -> None:
    await encrypted(nursery, internet, tmp, issued, limits=SLOW)


async def read_until_closed(stream: trio.SSLStream[trio.SocketStream], within: float) -> bytes:
    """All the server sends until it closes, which must be within `within` seconds."""
    received = b""
    with trio.fail_after(within):
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not data:
                break
            received += data
    return received


def status_lines(response: bytes) -> list[bytes]:
    return [line for line in response.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


def dns_body(response: bytes) -> dns.message.Message:
    return dns.message.from_wire(response.split(b"\r\n\r\n")[-1])


# -- pure ----------------------------------------------------------------------------------------


def test_connect_is_405_whatever_its_target() -> None:
    for target in ("dns.test:443", "", "/dns-query"):
        result = dns_query("CONNECT", target, None, b"")
        assert result == HttpError(405, "only GET and POST are allowed"), target


def test_frame_rate_allows_100_a_second_of_each_kind() -> None:
    rate = FrameRate()
    assert not any(rate.flooded("PING", 0.005 * n) for n in range(100))  # 100 in 0.5 s
    assert not any(rate.flooded("SETTINGS", 0.5 + 0.001 * n) for n in range(100))  # other kind
    assert rate.flooded("PING", 0.6)  # the 101st PING within a second
    slow = FrameRate()
    assert not any(slow.flooded("PING", 0.011 * n) for n in range(1000))  # ~91 a second


# -- HTTP/1.1 ------------------------------------------------------------------------------------


async def test_expect_100_continue_gets_100_before_the_body(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    await start(nursery, live_internet, tmp_path, issued)
    stream = await open_tls(ca, DOH, "http/1.1")
    head = (
        b"POST /dns-query HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\n"
        b"Content-Type: application/dns-message\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % len(WIRE)
    )
    await stream.send_all(head)
    with trio.fail_after(2):  # not the client's fallback timer: the 100 comes first
        interim = await stream.receive_some(65536)
    assert interim == b"HTTP/1.1 100 \r\n\r\n"
    await stream.send_all(WIRE)
    response = await read_until_closed(stream, 2)
    assert status_lines(response) == [b"HTTP/1.1 200 "]
    assert dns_body(response).answer[0].to_text().endswith("192.0.2.1")


async def test_expect_100_continue_with_a_body_too_large_gets_413_not_100(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    await start(nursery, live_internet, tmp_path, issued)
    stream = await open_tls(ca, DOH, "http/1.1")
    await stream.send_all(
        b"POST /dns-query HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\n"
        b"Content-Type: application/dns-message\r\nContent-Length: 70000\r\n\r\n"
    )
    response = await read_until_closed(stream, 2)
    assert status_lines(response) == [b"HTTP/1.1 413 "]


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (b"CONNECT dns.test:443 HTTP/1.1\r\n" + HOST + b"\r\n", b"405"),
        (
            b"GET " + TARGET + b" HTTP/1.1\r\n" + HOST + b"Connection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            b"200",
        ),
    ],
    ids=["connect", "upgrade-h2c"],
)
async def test_connect_and_upgrade_are_answered_and_closed_at_once(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    request_: bytes,
    status: bytes,
) -> None:
    await start(nursery, live_internet, tmp_path, issued)
    stream = await open_tls(ca, DOH, "http/1.1")
    await stream.send_all(request_)
    response = await read_until_closed(stream, 2)  # the idle timeout is 10 s
    assert status_lines(response) == [b"HTTP/1.1 " + status + b" "]
    assert b"connection: close" in response.lower()
    if status == b"200":  # the GET is answered as HTTP/1.1, without switching
        assert dns_body(response).answer[0].to_text().endswith("192.0.2.1")
    else:
        assert b"allow: GET, HEAD, POST" in response


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (b"GET " + TARGET + b"&x=" + b"a" * 20_000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", b"414"),
        (b"GET " + TARGET + b" HTTP/1.1\r\n" + HOST + b"X-A: b\r\n" * 3000 + b"\r\n", b"431"),
    ],
    ids=["target", "headers"],
)
async def test_a_request_line_or_headers_over_16k_in_one_write_are_refused(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    request_: bytes,
    status: bytes,
) -> None:
    """h11's max_incomplete_event_size sees only a request still arriving; one that arrived
    whole (one write: 20 KB is two TLS records, the first of exactly 16 KiB) passed it."""
    await start(nursery, live_internet, tmp_path, issued)
    stream = await open_tls(ca, DOH, "http/1.1")
    await stream.send_all(request_)
    response = await read_until_closed(stream, 2)
    assert status_lines(response) == [b"HTTP/1.1 " + status + b" "], response[:200]


# -- HTTP/2 --------------------------------------------------------------------------------------


async def test_http2_connect_is_405(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    await start(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    await client.flush()
    client.connection.send_headers(
        1, [(b":method", b"CONNECT"), (b":authority", b"dns.test:443")], end_stream=True
    )
    await client.flush()
    await client.receive(1.0)
    (response,) = client.of(h2.events.ResponseReceived)
    assert dict(response.headers)[b":status"] == b"405"
    assert dict(response.headers)[b"allow"] == b"GET, HEAD, POST"


@pytest.mark.parametrize("kind", ["PING", "SETTINGS"])
async def test_an_http2_flood_of_control_frames_ends_in_enhance_your_calm(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    issued: Issued,
    kind: str,
) -> None:
    await start(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    await client.flush()
    if kind == "PING":
        flood: frames.Frame = frames.PingFrame(0, opaque_data=b"12345678")
    else:
        flood = frames.SettingsFrame(0, settings={4: 65535})
    await client.stream.send_all(flood.serialize() * 150)
    with trio.fail_after(2):  # at once, not after the 10 s idle timeout
        while await client.receive(0.5):
            pass
    (goaway,) = client.of(h2.events.ConnectionTerminated)
    assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    if kind == "PING":
        assert len(client.of(h2.events.PingAckReceived)) <= 150


async def test_http2_control_frames_at_a_normal_pace_are_answered(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA, issued: Issued
) -> None:
    """100 PINGs in one write (the limit), then a request: all answered, no GOAWAY."""
    await start(nursery, live_internet, tmp_path, issued)
    client = H2Client(await open_tls(ca, DOH, "h2"))
    await client.flush()
    await client.stream.send_all(frames.PingFrame(0, opaque_data=b"12345678").serialize() * 100)
    await client.receive(0.3)
    stream_id = client.post(WIRE)
    await client.flush()
    assert await client.receive(1.0)
    assert len(client.of(h2.events.PingAckReceived)) == 100
    assert not client.of(h2.events.ConnectionTerminated)
    (response,) = client.of(h2.events.ResponseReceived)
    assert response.stream_id == stream_id and dict(response.headers)[b":status"] == b"200"
