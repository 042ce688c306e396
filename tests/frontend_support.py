"""Start the resolver's real front end inside a trio test, and speak raw DNS to it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import dns.message
import pytest
import trio

from resolver.config import Config
from resolver.core.actions import NetworkError
from resolver.core.hints import parse_root_hints
from resolver.engine import Send
from resolver.server.daemon import serve
from resolver.server.service import ResolverService
from resolver.server.upstream import Network
from resolver.server.wire import framed, receive_framed
from resolver.testing import TestInternet
from tests.helpers import loopback_config

#: Where in-process tests run the resolver: apart from the test internet and from port 53 on
#: 127.0.0.1, which the daemon tests use.
RESOLVER = ("127.54.0.1", 53)


async def start_resolver(
    nursery: trio.Nursery,
    internet: TestInternet,
    tmp_path: Path,
    *,
    clock: Callable[[], float] = time.time,
    **changes: object,
) -> ResolverService:
    hints = internet.write_hints(tmp_path / "test.hints")
    config: Config = loopback_config(listen=(RESOLVER,), root_hints=hints, **changes)
    return await nursery.start(partial(serve, clock=clock), config, lambda _endpoints: None)


async def udp_exchange(
    wire: bytes, *, source: str = "127.0.0.1", timeout: float = 3.0
) -> bytes | None:
    """Send one datagram to the resolver; its reply, or None if none came in time."""
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind((source, 0))
        await sock.sendto(wire, RESOLVER)
        with trio.move_on_after(timeout):
            data, _ = await sock.recvfrom(65535)
            return data
    return None


async def tcp_exchange(wires: list[bytes], timeout: float = 3.0) -> list[bytes]:
    """Send several queries at once on one connection (pipelined); the replies, as they come."""
    replies: list[bytes] = []
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(*RESOLVER)
        async with stream:
            await stream.send_all(b"".join(framed(wire) for wire in wires))
            for _ in wires:
                reply = await receive_framed(stream)
                assert reply is not None
                replies.append(reply)
    return replies


@pytest.fixture
async def live_internet(internet: TestInternet) -> AsyncIterator[TestInternet]:
    async with internet.running():
        yield internet


@pytest.fixture
async def resolver(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> ResolverService:
    return await start_resolver(nursery, live_internet, tmp_path)


def query(name: str, rdtype: str = "A", **options: Any) -> dns.message.Message:
    """`make_query`'s options (use_edns, payload, want_dnssec...) passed on as they are."""
    return dns.message.make_query(name, rdtype, **options)


async def ask(
    message: dns.message.Message, *, source: str = "127.0.0.1", timeout: float = 3.0
) -> dns.message.Message:
    reply = await udp_exchange(message.to_wire(), source=source, timeout=timeout)
    assert reply is not None, "no reply"
    return dns.message.from_wire(reply)


class Silence(Network):
    """A network where nobody answers: nothing leaves the process."""

    async def carry(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        return None


def offline_handler() -> ResolverService:
    """A resolver whose every upstream query times out at once: nothing leaves the process."""
    hints = parse_root_hints(TestInternet.default().hints_text())
    return ResolverService(loopback_config(), hints, network=Silence())
