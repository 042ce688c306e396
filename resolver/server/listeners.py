"""The client-facing sockets: UDP datagrams and TCP streams with 2-byte framing (RFC 7766).

The handler turns every failure of one query into a reply (SERVFAIL at worst) and never
raises; the listeners still catch what might escape it, as a last resort, because an exception
reaching a listener's nursery would stop the listener for every client.
"""

from __future__ import annotations

import logging
import socket

import trio

from resolver.config import Limits
from resolver.server.errors import StartupError
from resolver.server.handler import QueryHandler
from resolver.server.wire import MAX_MESSAGE, family_of, framed, receive_framed

log = logging.getLogger(__name__)

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
# Datagrams handled per wake-up before the loop lets other tasks run.
_UDP_BATCH = 64

# Queries one TCP connection may have in progress at once (RFC 7766 6.2.1.1 pipelining).
_TCP_PIPELINE = 16


def bind_socket(
    address: str, port: int, kind: socket.SocketKind, reuse_port: bool = False
) -> socket.socket:
    """A bound socket, or a StartupError saying plainly why not."""
    sock = socket.socket(family_of(address), kind)
    try:
        if reuse_port:
            # Several worker processes share the address; the kernel spreads clients over them.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            # A burst of queries must wait in the kernel rather than be dropped by it (Unbound's
            # so-rcvbuf); the kernel caps the size at net.core.rmem_max.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
    except OSError as error:
        sock.close()
        proto = "tcp" if kind == socket.SOCK_STREAM else "udp"
        where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        hint = ""
        if error.errno == 13:
            hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        elif error.errno == 98:
            hint = " (another program is listening there)"
        elif error.errno == 99:
            hint = " (no such local address)"
        raise StartupError(f"cannot listen on {proto} {where}: {error.strerror}{hint}") from None
    sock.setblocking(False)
    return sock


class UdpListener:
    """Answers datagrams: cache hits inline, in batches; everything else in a task of its own.

    A trio checkpoint per packet would cap the hit rate far below what the socket can carry, so
    the loop waits for readability once and then drains the non-blocking socket with plain
    `recvfrom`/`sendto` calls, answering packet-cache hits on the spot (DESIGN.md, performance
    notes). Slow-path work in progress is bounded; beyond it packets are dropped and the client
    retries, so memory stays bounded under a flood.
    """

    def __init__(self, sock: socket.socket, handler: QueryHandler, limits: Limits) -> None:
        self.sock = sock
        self.handler = handler
        self._capacity = limits.max_in_flight
        self._pending = 0

    async def run(self) -> None:
        sock, answer_from_cache = self.sock, self.handler.answer_from_cache
        async with trio.open_nursery() as nursery:
            while True:
                await trio.lowlevel.wait_readable(sock)
                for _ in range(_UDP_BATCH):
                    try:
                        data, peer = sock.recvfrom(MAX_MESSAGE)
                    except BlockingIOError:
                        break
                    except OSError as error:  # e.g. an ICMP error queued for an earlier reply
                        log.debug("udp receive failed: %s", error)
                        continue
                    reply = answer_from_cache(data, peer[0], False)
                    if reply is not None:
                        self._send_now(reply, peer)
                    elif self._pending < self._capacity:
                        self._pending += 1
                        nursery.start_soon(self._answer, data, peer)

    def _send_now(self, reply: bytes, peer: tuple) -> None:
        try:
            self.sock.sendto(reply, peer)
        except OSError as error:  # a full send buffer included: the client will retry
            log.debug("udp reply to %s failed: %s", peer, error)

    async def _answer(self, data: bytes, peer: tuple) -> None:
        try:
            reply = await self.handler.handle(data, peer[0], tcp=False)
            if reply is not None:
                self._send_now(reply, peer)
        except Exception:
            log.error("udp query from %s dropped by an internal error", peer, exc_info=True)
        finally:
            self._pending -= 1


class TcpListener:
    """Serves TCP clients: several queries per connection, idle timeout, bounded connections."""

    def __init__(self, sock: socket.socket, handler: QueryHandler, limits: Limits) -> None:
        sock.listen(128)
        self.listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        self.handler = handler
        self.limits = limits
        self.connections = 0

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                stream = await self.listener.accept()
                if self.connections >= self.limits.max_tcp_clients:
                    await stream.aclose()
                    continue
                self.connections += 1
                nursery.start_soon(self._serve, stream)

    async def _serve(self, stream: trio.SocketStream) -> None:
        peer = stream.socket.getpeername()[0]
        send_lock = trio.Lock()
        slots = trio.Semaphore(_TCP_PIPELINE)

        async def answer(wire: bytes) -> None:
            try:
                reply = await self.handler.respond(wire, peer, tcp=True)
                if reply is not None:
                    async with send_lock:
                        await stream.send_all(framed(reply))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            except Exception:
                log.error("tcp query from %s dropped by an internal error", peer, exc_info=True)
            finally:
                slots.release()

        try:
            async with stream, trio.open_nursery() as nursery:
                while True:
                    with trio.move_on_after(self.limits.tcp_idle_timeout) as idle:
                        wire = await receive_framed(stream)
                    if idle.cancelled_caught or wire is None:
                        break
                    await slots.acquire()
                    nursery.start_soon(answer, wire)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            log.debug("tcp client %s: %s", peer, error)
        finally:
            self.connections -= 1
