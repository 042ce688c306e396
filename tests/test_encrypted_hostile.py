"""Hostile DoH/DoT clients and forwarders (issue #12's review): whatever one connection does,
the daemon keeps answering everyone else.

Each test here reproduces one way a single client (or a forwarder) could once kill the whole
daemon or wedge a forward zone; after it, the daemon must still answer over UDP and TCP.
"""

from __future__ import annotations

from pathlib import Path

import dns.message
import pytest
import trio

from resolver.server import listeners
from resolver.testing import TestInternet
from resolver.testing.certs import Issued
from tests.frontend_support import ask, query, tcp_exchange
from tests.test_encrypted_hardening import (  # noqa: F401 (fixtures)
    DOH,
    DOT,
    H2Client,
    ca,
    encrypted,
    issued,
    open_tls,
)


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
        await original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(listeners, "serve_stream", broken)
    await encrypted(nursery, live_internet, tmp_path, issued)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.54.0.1", 53)
        async with stream:
            assert await stream.receive_some(100) == b""  # closed, not hung
    assert calls == 1
    await still_answers()
    assert calls == 2
