"""DoT and DoH listeners end to end: the real front end, real TLS, real clients (dnspython,
httpx over HTTP/1.1 and HTTP/2, kdig), certificates from a test CA made at run time."""

from __future__ import annotations

import base64
import os
import signal
import ssl
import struct
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import httpx
import pytest
import trio

from resolver.engine.padding import RESPONSE_BLOCK
from resolver.server.service import ResolverService
from resolver.server.wire import framed, receive_framed
from resolver.testing import TestInternet
from resolver.testing.certs import Issued, TestCA
from resolver.testing.faults import Fault
from tests.daemon_support import ensure_command
from tests.frontend_support import RESOLVER, ask, query, start_resolver

ADDRESS = RESOLVER[0]
DOT = (ADDRESS, 853)
DOH = (ADDRESS, 443)
NAME = "dns.test"


@pytest.fixture
def issued(ca: TestCA) -> Issued:
    return ca.issue("server", (NAME,), (ADDRESS,))


@pytest.fixture
async def encrypted(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, issued: Issued
) -> ResolverService:
    return await start_resolver(
        nursery,
        live_internet,
        tmp_path,
        tls_listen=(DOT,),
        doh_listen=(DOH,),
        tls_certificate=issued.certificate,
        tls_key=issued.key,
    )


def client_context(ca: TestCA, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.certificate))
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


async def open_dot(ca: TestCA) -> trio.SSLStream[trio.SocketStream]:
    tcp = await trio.open_tcp_stream(*DOT)
    stream = trio.SSLStream(tcp, client_context(ca), server_hostname=NAME)
    await stream.do_handshake()
    return stream


def slow_internet(internet: TestInternet, delay: float) -> None:
    for server in internet.servers.values():
        server.fault, server.delay = Fault.DELAY, delay


async def test_dot_answers_pipelined_queries_out_of_order_and_pads_them(
    encrypted: ResolverService, live_internet: TestInternet, ca: TestCA
) -> None:
    await ask(query("www.example.test."))  # cached: the second query below is a hit
    slow_internet(live_internet, 0.5)
    slow = query("www.other.test.", use_edns=0, pad=128)
    fast = query("www.example.test.", use_edns=0, pad=128)
    slow.id, fast.id = 1111, 2222
    with trio.fail_after(10):
        stream = await open_dot(ca)
        async with stream:
            await stream.send_all(framed(slow.to_wire()) + framed(fast.to_wire()))
            first, second = await receive_framed(stream), await receive_framed(stream)
    assert first is not None and second is not None
    # The cache hit did not wait for the resolution queued before it (RFC 7766 section 7).
    assert struct.unpack("!H", first[:2])[0] == 2222
    assert struct.unpack("!H", second[:2])[0] == 1111
    # Both padded to 468-octet blocks (RFC 8467), the packet-cache hit as well.
    assert len(first) % RESPONSE_BLOCK == 0 and len(second) % RESPONSE_BLOCK == 0
    assert dns.message.from_wire(first).answer[0].to_text().endswith("192.0.2.1")
    assert dns.message.from_wire(second).rcode() == dns.rcode.NOERROR
    assert encrypted.stats.tls_queries == 2


async def test_dot_does_not_pad_for_a_client_that_does_not(
    encrypted: ResolverService, ca: TestCA
) -> None:
    plain = query("www.example.test.", use_edns=0)
    with trio.fail_after(10):
        stream = await open_dot(ca)
        async with stream:
            await stream.send_all(framed(plain.to_wire()) + framed(plain.to_wire()))
            replies = [await receive_framed(stream), await receive_framed(stream)]
    for reply in replies:  # a miss, then a packet-cache hit
        assert reply is not None and len(reply) < RESPONSE_BLOCK
        assert not dns.message.from_wire(reply).options


async def test_dot_refuses_tls_below_1_2(encrypted: ResolverService, ca: TestCA) -> None:
    context = client_context(ca)
    # TLS 1.1 is deprecated: that is the point.
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with trio.fail_after(10):
        tcp = await trio.open_tcp_stream(*DOT)
        stream = trio.SSLStream(tcp, context, server_hostname=NAME)
        with pytest.raises(trio.BrokenResourceError):
            await stream.do_handshake()
        await trio.aclose_forcefully(stream)


async def test_dnspython_client_over_dot(encrypted: ResolverService, ca: TestCA) -> None:

    def over_tls() -> dns.message.Message:
        return dns.query.tls(
            query("www.example.test."),
            ADDRESS,
            timeout=5,
            ssl_context=client_context(ca),
            server_hostname=NAME,
        )

    reply = await trio.to_thread.run_sync(over_tls)
    assert reply.answer[0].to_text() == "www.example.test. 300 IN A 192.0.2.1"
    assert encrypted.stats.tls_queries == 1


@pytest.mark.parametrize(
    "version", [dns.query.HTTPVersion.H1, dns.query.HTTPVersion.H2], ids=["http1.1", "http2"]
)
@pytest.mark.parametrize("post", [True, False], ids=["post", "get"])
async def test_dnspython_client_over_https(
    encrypted: ResolverService, ca: TestCA, version: dns.query.HTTPVersion, post: bool
) -> None:
    """dnspython's own DoH client; dnspython 2.9 drives it with httpx2/httpcore2 (its "doh"
    feature: `dns._features`), the `test` extra's."""
    if not dns.query.have_doh:
        pytest.fail("dnspython's DoH client needs httpx2 and httpcore2 (pip install .[test])")

    def over_https() -> dns.message.Message:
        return dns.query.https(
            query("www.example.test."),
            ADDRESS,
            timeout=5,
            verify=client_context(ca),
            post=post,
            http_version=version,
        )

    reply = await trio.to_thread.run_sync(over_https)
    assert reply.answer[0].to_text() == "www.example.test. 300 IN A 192.0.2.1"
    assert encrypted.stats.https_queries == 1


def doh_requests(ca: TestCA, http2: bool) -> dict[str, httpx.Response]:
    """Good and bad requests with httpx; the responses by label."""
    good = query("www.example.test.")
    good.id = 0  # RFC 8484 section 4.1: ID 0 is what a cache-friendly client sends
    missing = query("missing.example.test.")
    missing.id = 0
    encoded = base64.urlsafe_b64encode(good.to_wire()).decode().rstrip("=")
    url = f"https://{ADDRESS}/dns-query"
    dns_type = {"content-type": "application/dns-message"}
    with httpx.Client(verify=client_context(ca), http2=http2, http1=not http2) as client:
        return {
            "get": client.get(url, params={"dns": encoded}),
            "post": client.post(url, content=good.to_wire(), headers=dns_type),
            "nxdomain": client.post(url, content=missing.to_wire(), headers=dns_type),
            "415": client.post(url, content=good.to_wire(), headers={"content-type": "text/x"}),
            "400-missing": client.get(url),
            "400-base64": client.get(url, params={"dns": "a+b/"}),
            "400-short": client.post(url, content=b"\x00\x01", headers=dns_type),
            "405": client.put(url, content=good.to_wire(), headers=dns_type),
            "404": client.get(f"https://{ADDRESS}/other", params={"dns": encoded}),
        }


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
async def test_doh_answers_and_rejects(encrypted: ResolverService, ca: TestCA, http2: bool) -> None:
    responses = await trio.to_thread.run_sync(doh_requests, ca, http2)
    for label in ("get", "post", "nxdomain"):
        response = responses[label]
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert response.status_code == 200, label  # DNS errors too (RFC 8484 section 4.2.1)
        assert response.headers["content-type"] == "application/dns-message"
        reply = dns.message.from_wire(response.content)
        assert reply.id == 0
    get = dns.message.from_wire(responses["get"].content)
    assert get.answer[0].to_text() == "www.example.test. 300 IN A 192.0.2.1"
    assert responses["get"].headers["cache-control"] == "max-age=300"
    nxdomain = dns.message.from_wire(responses["nxdomain"].content)
    assert nxdomain.rcode() == dns.rcode.NXDOMAIN
    soa_rrset = nxdomain.authority[0]
    expected = min(soa_rrset.ttl, soa_rrset[0].minimum)
    assert responses["nxdomain"].headers["cache-control"] == f"max-age={expected}"
    for label in ("415", "400-missing", "400-base64", "400-short", "405", "404"):
        assert responses[label].status_code == int(label[:3]), label
    assert responses["405"].headers["allow"] == "GET, HEAD, POST"
    assert encrypted.stats.https_queries == 3


async def test_kdig_over_tls_and_https(encrypted: ResolverService, ca: TestCA) -> None:
    kdig = ensure_command("kdig", "knot-dnsutils")
    common = [f"@{ADDRESS}", f"+tls-ca={ca.certificate}", f"+tls-hostname={NAME}"]
    for transport in ("+tls", "+https"):
        result = await trio.run_process(
            [kdig, *common, transport, "+padding", "www.example.test.", "A"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        output = result.stdout.decode()
        assert result.returncode == 0, output + result.stderr.decode()
        assert "192.0.2.1" in output, output
        assert "PADDING" in output, output  # kdig shows the padding option of our reply
    assert encrypted.stats.tls_queries == 1 and encrypted.stats.https_queries == 1


async def test_sighup_reloads_the_certificate_for_new_connections(
    encrypted: ResolverService, ca: TestCA, issued: Issued
) -> None:
    with trio.fail_after(20):
        old = await open_dot(ca)
        renewed = ca.issue("renewed", ("renewed.test",), (ADDRESS,))
        issued.certificate.write_bytes(renewed.certificate.read_bytes())
        issued.key.write_bytes(renewed.key.read_bytes())
        os.kill(os.getpid(), signal.SIGHUP)
        while True:  # the daemon's signal task runs soon; poll until new connections see it
            await trio.sleep(0.05)
            tcp = await trio.open_tcp_stream(*DOT)
            probe = trio.SSLStream(tcp, client_context(ca), server_hostname="renewed.test")
            try:
                await probe.do_handshake()
                break
            except trio.BrokenResourceError:
                await trio.aclose_forcefully(probe)
        await probe.aclose()
        # The connection opened before the reload still works, with its old certificate.
        async with old:
            await old.send_all(framed(query("www.example.test.").to_wire()))
            reply = await receive_framed(old)
        assert reply is not None and dns.message.from_wire(reply).answer
