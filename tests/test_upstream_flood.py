"""A flood of datagrams on one upstream query's socket must not hold the event loop.

Datagrams that reach the connected socket (a spoofing flood aimed at its port from the
server's address, or a server that answers again and again) are read a bounded number per
wake-up (`Network._over_udp`), so other tasks (clients, deadlines) keep running meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import time

import dns.message
import trio

from resolver.core.actions import SendQuery, Server
from resolver.engine import Send
from resolver.server.upstream import Network

SERVER = Server("127.0.0.1", 5399)
FLOOD_SECONDS = 1.5

# A "server" that answers the one query with a flood of datagrams (wrong ID: ignored).
_FLOODER = f"""
import socket, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", {SERVER.port}))
print("ready", flush=True)
data, peer = sock.recvfrom(65535)
junk = b"\\x00\\x00\\x84\\x00" + bytes(8)
end = time.monotonic() + {FLOOD_SECONDS}
while time.monotonic() < end:
    try:
        sock.sendto(junk, peer)
    except OSError:
        pass
"""


async def test_a_flood_on_an_upstream_socket_does_not_stall_the_event_loop() -> None:
    flooder = subprocess.Popen([sys.executable, "-c", _FLOODER], stdout=subprocess.PIPE)
    try:
        assert flooder.stdout is not None and flooder.stdout.readline().strip() == b"ready"
        query = dns.message.make_query("www.example.test.", "A", flags=0, id=4321)
        send = Send(7, SERVER, query.to_wire(), False, 0.0, SendQuery(SERVER, query, False, 2.0))
        sample = query.to_wire()
        gaps: list[float] = []
        calls = [0]

        def received(data: bytes) -> None:
            calls[0] += 1
            dns.message.from_wire(sample)  # what the engine does with each datagram, roughly

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await trio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            with trio.move_on_after(FLOOD_SECONDS + 0.5):
                await Network().carry(send, received)
            nursery.cancel_scope.cancel()
        # Other tasks (the listeners, the timers) must keep running while a socket is flooded.
        assert max(gaps) < 0.5, f"the event loop stalled {max(gaps):.2f} s ({calls[0]} datagrams)"
    finally:
        flooder.kill()
        flooder.wait()
