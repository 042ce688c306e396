"""The least a Python UDP server can do for a query: send it back as its own response.

usage: python benchmarks/echo.py PORT [--blocking]   (listens on 127.0.0.1:PORT until killed)

`resolve_bench.py` plays its low-load stream to this server as well as to the resolvers. At a
modest rate every datagram wakes an idle process, and the CPU time that costs depends on the
machine (a virtual CPU that has to be woken, caches that went cold meanwhile) far more than on
what the process then does. The echo's CPU per datagram is therefore the floor under a
server's figure at that rate; the resolver's own work is what it spends above it.

By default it waits the way our listener does, under trio (`wait_readable`, then reading until
the socket is empty), so that the two figures differ only by the resolver's work. With
`--blocking` it is a plain loop of blocking `recvfrom` and `sendto`, no event loop at all: the
floor of any Python server, which tells how much of the trio echo's figure is trio's.
"""

from __future__ import annotations

import socket
import sys

import trio

HEADER = 12  # a DNS header: anything shorter is dropped, as a resolver would
QR = 0x80  # in the third octet: "this is a response"


def response(wire: bytes) -> bytes:
    return wire[:2] + bytes([wire[2] | QR]) + wire[3:]


async def echo(sock: socket.socket) -> None:
    sock.setblocking(False)
    while True:
        await trio.lowlevel.wait_readable(sock)
        while True:
            try:
                wire, peer = sock.recvfrom(65535)
            except BlockingIOError:
                break
            if len(wire) >= HEADER:
                sock.sendto(response(wire), peer)


def echo_blocking(sock: socket.socket) -> None:
    while True:
        wire, peer = sock.recvfrom(65535)
        if len(wire) >= HEADER:
            sock.sendto(response(wire), peer)


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    if sys.argv[2:] == ["--blocking"]:
        echo_blocking(sock)
    else:
        trio.run(echo, sock)


if __name__ == "__main__":
    main()
