"""The least a trio UDP server can do for a query: send it back as its own response.

usage: python benchmarks/trio_echo.py PORT   (listens on 127.0.0.1:PORT until killed)

`resolve_bench.py` plays its low-load stream to this server as well as to the resolvers. At a
modest rate every datagram wakes an idle process, and the CPU time that costs depends on the
machine (a virtual CPU that has to be woken, caches that went cold meanwhile) far more than on
what the process then does. The echo's CPU per datagram is therefore the floor under any trio
server's figure at that rate; the resolver's own work is what it spends above it. It waits the
way our listener does (`wait_readable`, then reading until the socket is empty) so that the two
figures differ only by the resolver's work.
"""

from __future__ import annotations

import socket
import sys

import trio

HEADER = 12  # a DNS header: anything shorter is dropped, as a resolver would
QR = 0x80  # in the third octet: "this is a response"


async def echo(sock: socket.socket) -> None:
    while True:
        await trio.lowlevel.wait_readable(sock)
        while True:
            try:
                wire, peer = sock.recvfrom(65535)
            except BlockingIOError:
                break
            if len(wire) >= HEADER:
                sock.sendto(wire[:2] + bytes([wire[2] | QR]) + wire[3:], peer)


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.setblocking(False)
    trio.run(echo, sock)


if __name__ == "__main__":
    main()
