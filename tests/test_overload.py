"""Under overload the UDP listener answers the newest misses and drops the oldest.

A burst of unique names lands in the kernel's queue before the listener reads any of it (the
test sends it without a trio checkpoint); with the backlog bounded at 8, the 8 newest queries
are answered and the others dropped and counted: a client waiting for an old query has most
likely given up on it, while the newest are still awaited.
"""

from __future__ import annotations

import socket

import dns.message
import dns.rcode
import pytest
import trio

from resolver.server import listeners
from resolver.server.service import ResolverService
from tests.frontend_support import RESOLVER

BURST = 40
BACKLOG = 8


async def test_a_burst_of_misses_keeps_the_newest_and_counts_the_dropped(
    resolver: ResolverService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listeners, "_UDP_BACKLOG", BACKLOG)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        for number in range(BURST):  # no checkpoint: the listener reads nothing meanwhile
            query = dns.message.make_query(f"nx{number}.example.test.", "A", id=number)
            client.sendto(query.to_wire(), RESOLVER)
        client.setblocking(False)
        answered: dict[int, int] = {}
        with trio.move_on_after(3):
            while len(answered) < BACKLOG:
                await trio.lowlevel.wait_readable(client)
                reply = dns.message.from_wire(client.recv(65535))
                answered[reply.id] = reply.rcode()
        await trio.sleep(0.2)  # anything else would have come by now
        with pytest.raises(BlockingIOError):
            client.recv(65535)
    assert sorted(answered) == list(range(BURST - BACKLOG, BURST))
    assert set(answered.values()) == {dns.rcode.NXDOMAIN}
    assert resolver.stats.dropped == BURST - BACKLOG
