"""The client-facing sockets: UDP datagrams, and TCP or TLS streams with 2-byte framing
(RFC 7766, RFC 7858).

The listeners only move bytes: every query goes to the engine (the packet cache inline, the
full path through `ResolverService.carry`), which turns every failure of one query into a reply
(SERVFAIL at worst) and never raises. The listeners still catch what might escape, as a last
resort, because an exception reaching a listener's nursery would stop it for every client.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import deque

import trio

from resolver.config import Limits
from resolver.engine import Client
from resolver.engine.clients import answerable
from resolver.server.errors import StartupError
from resolver.server.service import ResolverService
from resolver.server.tls import ReloadableContext
from resolver.server.wire import MAX_MESSAGE, FrameReader, family_of, framed, quick_ack

log = logging.getLogger(__name__)

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
# Datagrams read per wake-up (hits answered at once), and misses handled per wake-up, before
# the loop lets other tasks (replies from upstream) run.
_UDP_DRAIN = 256
_UDP_BATCH = 64
# Misses waiting for their turn under overload; beyond it the oldest are dropped.
_UDP_BACKLOG = 512

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


class _Datagram:
    """Where a UDP client's reply goes: sent at once, from the listening socket."""

    __slots__ = ("peer", "sock")

    def __init__(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.sock, self.peer = sock, peer

    def send(self, wire: bytes | None) -> None:
        if wire is None:
            return
        try:
            self.sock.sendto(wire, self.peer)
        except OSError as error:  # a full send buffer included: the client will retry
            log.debug("udp reply to %s failed: %s", self.peer, error)


class UdpListener:
    """Answers datagrams: cache hits inline, in batches; the rest through the engine.

    A trio checkpoint per packet would cap the hit rate far below what the socket can carry, so
    the loop waits for readability once and then drains the non-blocking socket with plain
    `recvfrom`/`sendto` calls, answering packet-cache hits on the spot (DESIGN.md, performance
    notes). A miss costs no task: the engine replies through `_Datagram` when its answer is
    ready.

    Under overload (a flood of unique names, each a miss), misses wait in a bounded backlog and
    the newest go first, the oldest being dropped when it is full, as Unbound's jostling does:
    a client gives up on a query after a second or two, so answering the kernel's queue in
    arrival order would spend the whole CPU on answers nobody waits for any more. Dropped
    queries are counted (`dropped`); their clients retry.
    """

    def __init__(self, sock: socket.socket, service: ResolverService) -> None:
        self.sock = sock
        self.service = service

    async def run(self) -> None:
        sock, service = self.sock, self.service
        engine = service.engine
        stats = engine.stats
        # Looked up once: a hit is a few microseconds, and each attribute lookup is a part of it.
        answer_from_cache, recvfrom, sendto = engine.answer_from_cache, sock.recvfrom, sock.sendto
        backlog: deque[tuple[bytes, tuple[str, int]]] = deque()
        while True:
            if backlog:
                await trio.lowlevel.checkpoint()  # let replies from upstream in first
            else:
                await trio.lowlevel.wait_readable(sock)
            for _ in range(_UDP_DRAIN):
                try:
                    data, peer = recvfrom(MAX_MESSAGE)
                except BlockingIOError:
                    break
                except OSError as error:  # e.g. an ICMP error queued for an earlier reply
                    log.debug("udp receive failed: %s", error)
                    continue
                try:
                    reply = answer_from_cache(data, peer[0], False)
                except Exception:
                    log.error("udp query from %s dropped by an internal error", peer, exc_info=True)
                    continue
                if reply is None:
                    if not answerable(data):
                        continue  # never answered anyway: no place in the backlog
                    if len(backlog) >= _UDP_BACKLOG:
                        backlog.popleft()
                        stats.dropped += 1
                    backlog.append((data, peer))
                    continue
                try:
                    sendto(reply, peer)
                except OSError as error:  # a full send buffer included: the client will retry
                    log.debug("udp reply to %s failed: %s", peer, error)
            # Hits were answered first: a miss's engine work (parsing, the record cache,
            # perhaps a resolution's first steps) takes far longer than a hit, and hits queued
            # behind it would wait for nothing. Then a batch of misses, newest first.
            for _ in range(min(_UDP_BATCH, len(backlog))):
                data, peer = backlog.pop()
                try:
                    client = Client(peer[0], False, _Datagram(sock, peer))
                    service.carry(engine.client_query(data, client))
                except Exception:
                    log.error("udp query from %s dropped by an internal error", peer, exc_info=True)
            if engine.has_output:  # a prefetch started by a hit
                try:
                    service.carry(engine.take_output())
                except Exception:
                    log.error("udp prefetch dropped by an internal error", exc_info=True)


class _Connection:
    """Where a TCP client's replies go: queued for the connection's writer, in any order
    (RFC 7766 section 7). A reply holds its pipeline slot until it is written, so a client
    that does not read has at most `_TCP_PIPELINE` replies waiting in memory."""

    def __init__(self, channel: trio.MemorySendChannel[bytes], slots: trio.Semaphore) -> None:
        self.channel, self.slots = channel, slots

    def send(self, wire: bytes | None) -> None:
        if wire is None:
            self.slots.release()
            return
        try:
            self.channel.send_nowait(framed(wire))  # never blocks: the reply holds a slot
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.slots.release()  # the client has gone


class ConnectionCap:
    """Open client connections against `limits.max_tcp_clients`, shared by the TCP, DoT and
    DoH listeners: a connection costs the same memory whatever protocol runs over it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.handshaking = 0  # of `open`, those still in their TLS handshake

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1

    # Connections still in their TLS handshake hold at most half the slots: clients that
    # connect and never finish a handshake must not lock out plain TCP (the fallback for
    # truncated UDP answers) nor clients that do complete theirs.
    def begin_handshake(self) -> bool:
        if self.handshaking >= max(1, self.limit // 2):
            return False
        self.handshaking += 1
        return True

    def end_handshake(self) -> None:
        self.handshaking -= 1


async def tls_handshake(
    stream: trio.abc.Stream, context: ssl.SSLContext, timeout: float, peer: str
) -> trio.SSLStream[trio.abc.Stream] | None:
    """The server side of a TLS handshake, or None (logged) if it fails or takes too long: a
    client that connects and says nothing must not hold a connection slot."""
    secure = trio.SSLStream(stream, context, server_side=True)
    with trio.move_on_after(timeout):
        try:
            await secure.do_handshake()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            cause = error.__cause__ or error
            log.debug("tls handshake with %s failed: %s", peer, cause)
            return None
        quick_ack(secure)  # the client's Finished: its first query may wait for this ACK
        return secure
    log.debug("tls handshake with %s took too long", peer)
    return None


class TcpListener:
    """Serves stream clients: plain TCP, or DNS over TLS (RFC 7858) when given a `tls` context,
    or DNS over HTTPS (RFC 8484, `https.py`) when also given the `https_path` it answers at.

    TCP and DoT speak the same 2-byte framing (RFC 7766), so one connection loop serves both
    (`serve_stream`): several queries per connection, answered out of order, an idle timeout.
    All three share the accept loop, the TLS handshake and the connection cap.
    """

    def __init__(
        self,
        sock: socket.socket,
        service: ResolverService,
        limits: Limits,
        *,
        cap: ConnectionCap | None = None,
        tls: ReloadableContext | None = None,
        https_path: str | None = None,
    ) -> None:
        sock.listen(128)
        self.https_path = https_path
        self.listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        self.service = service
        self.limits = limits
        self.cap = cap or ConnectionCap(limits.max_tcp_clients)
        self.tls = tls

    @property
    def connections(self) -> int:
        return self.cap.open

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                stream = await self.listener.accept()
                if not self._allowed(stream) or not self.cap.take():
                    await stream.aclose()
                    continue
                nursery.start_soon(self._serve, stream)

    def _allowed(self, stream: trio.SocketStream) -> bool:
        """The access list at accept time: a client outside `allow` is closed at once, before
        a slot or a TLS handshake is spent on it (over UDP it gets REFUSED)."""
        try:
            peer = stream.socket.getpeername()[0]
        except OSError:
            return True  # reset already: `_serve` says so and closes it
        return self.service.engine.clients.allowed(peer)

    async def _serve(self, stream: trio.SocketStream) -> None:
        peer = "?"
        try:
            peer = stream.socket.getpeername()[0]
            if self.tls is None:
                await serve_stream(stream, peer, self.service, self.limits, None)
                return
            # The context of the moment: after a SIGHUP, new connections get the new one.
            if not self.cap.begin_handshake():
                log.debug("tls client %s: too many connections in their handshake", peer)
                await trio.aclose_forcefully(stream)
                return
            try:
                secure = await tls_handshake(
                    stream, self.tls.context, self.limits.tcp_idle_timeout, peer
                )
            finally:
                self.cap.end_handshake()
            if secure is None:
                await trio.aclose_forcefully(stream)
                return
            if self.https_path is not None:
                from resolver.server.https import serve_https  # lazily: h2 and h11, DoH only

                await serve_https(secure, peer, self.service, self.limits, self.https_path)
            else:
                await serve_stream(secure, peer, self.service, self.limits, "tls")
        except OSError as error:  # getpeername on a connection already reset
            log.debug("stream client: %s", error)
            await trio.aclose_forcefully(stream)
        except Exception as error:  # a bug or a library's surprise: one connection, not the daemon
            log.error("stream client %s: connection closed after %r", peer, error)
            await trio.aclose_forcefully(stream)
        finally:
            self.cap.give_back()


async def serve_stream(
    stream: trio.abc.Stream,
    peer: str,
    service: ResolverService,
    limits: Limits,
    transport: str | None,
) -> None:
    """Answer the framed queries of one connection until the client closes it or idles.

    Pipelining (RFC 7766 section 6.2.1.1): up to `_TCP_PIPELINE` queries are in progress at
    once, and each reply is written as soon as it is ready (section 7), so a cache hit behind a
    slow miss does not wait for it. `transport` is None for plain TCP, "tls" for DoT.
    """
    engine = service.engine
    slots = trio.Semaphore(_TCP_PIPELINE)
    sender, replies = trio.open_memory_channel[bytes](_TCP_PIPELINE)
    connection = _Connection(sender, slots)
    kind = transport or "tcp"

    async def write(done: trio.CancelScope) -> None:
        async for first in replies:
            # Every reply already queued goes in the same write: the replies to a batch of
            # pipelined cache hits then cost one TLS record and one segment, not one each.
            batch = [first]
            while True:
                try:
                    batch.append(replies.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            # A client that stops reading must not hold the connection (and its slot in
            # max_tcp_clients) forever: replies not taken within the idle timeout end it.
            with trio.move_on_after(limits.tcp_idle_timeout) as stuck:
                await stream.send_all(b"".join(batch))
            for _ in batch:
                slots.release()
            if stuck.cancelled_caught:
                done.cancel()
                return

    reader = FrameReader(stream)
    try:
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(write, nursery.cancel_scope)
            # The idle timeout runs from the last complete query, not from the last byte: a
            # client trickling a query byte by byte does not hold the connection forever.
            deadline = trio.current_time() + limits.tcp_idle_timeout
            while True:
                wire = reader.take()
                if wire is None:
                    with trio.move_on_at(deadline):
                        if await reader.fill():
                            quick_ack(stream)  # a client's next query may wait for our ACK
                            continue
                    break  # closed by the client, or idle
                try:
                    slots.acquire_nowait()  # no checkpoint: the whole batch is answered at once
                except trio.WouldBlock:
                    await slots.acquire()
                deadline = trio.current_time() + limits.tcp_idle_timeout
                # The slot goes back when the reply is written (or the engine says it
                # sends none); only if the engine never got the query is it freed here.
                try:
                    reply = engine.answer_from_cache(wire, peer, True, transport)
                    if reply is not None:
                        connection.send(reply)
                        outputs = engine.take_output()
                    else:
                        client = Client(peer, True, connection, transport)
                        outputs = engine.client_query(wire, client)
                except Exception:
                    log.error(
                        "%s query from %s dropped by an internal error", kind, peer, exc_info=True
                    )
                    slots.release()
                    continue
                try:
                    service.carry(outputs)
                except Exception:
                    log.error("carrying for %s failed", peer, exc_info=True)
            # Queries still being answered are answered (and written) before closing.
            with trio.move_on_after(limits.max_resolution_time + limits.tcp_idle_timeout):
                for _ in range(_TCP_PIPELINE):
                    await slots.acquire()
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
        # From the reader or the writer task, hence a group (a TLS client that closes without
        # close_notify ends here too: for DNS that is an ordinary end of the connection).
        log.debug("%s client %s: %s", kind, peer, group.exceptions[0])
    finally:
        sender.close()
