"""DNS over TLS to forwarders (RFC 7858): one connection per server, queries pipelined on it.

A TLS handshake costs round trips and CPU, so each forwarder gets one long-lived connection
that every query to it shares (RFC 7858 section 3.4, RFC 7766 section 6.2.1.1): queries are
written as they come, replies are handed to whichever query has their ID, in whatever order
they arrive (section 7). The engine still matches every reply to its query (question, ID) as
for any other transport; this module only routes bytes by ID. A connection left without queries
for `IDLE_TIMEOUT` seconds (or less, if the server said so in an edns-tcp-keepalive option,
RFC 7828) is closed, as is one the server closes; the next query opens another.

The server is authenticated (`tls.py`): its certificate against `TlsPeer.name` and the CA store,
and its key against the pins. A failure is an error naming the server and the reason, logged and
returned to the engine (it shows in --trace), which moves on to the next forwarder: a query
meant for TLS never goes out in clear text.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

import trio

from resolver.core.actions import NetworkError, Server
from resolver.engine import Send
from resolver.engine.keepalive import keepalive_timeout
from resolver.engine.stats import Stats
from resolver.server.tls import check_pin, client_context
from resolver.server.wire import FrameReader, framed

log = logging.getLogger(__name__)

#: Seconds an unused connection stays open (Unbound's tcp-idle-timeout for upstream is 10 s;
#: RFC 7828 lets a server ask for less, which it then enforces by closing).
IDLE_TIMEOUT = 10.0
#: Seconds allowed for connecting and the TLS handshake; no more than the default
#: `forward_timeout` (3 s): the query that opens the connection is abandoned by the engine at
#: its deadline anyway, which cancels the handshake (and the connection is then dropped).
CONNECT_TIMEOUT = 3.0


class TlsFailure(Exception):
    """The connection to a DoT server could not be set up; the text names server and reason."""


def describe(server: Server) -> str:
    where = f"[{server.address}]:{server.port}" if ":" in server.address else server.address
    if ":" not in server.address:
        where += f":{server.port}"
    return f"DNS over TLS to {where} ({server.tls})"


def _reason(error: BaseException) -> str:
    """The words of a TLS or socket failure: OpenSSL's verify message when there is one."""
    cause = error.__cause__ or error
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return f"TLS error: {cause.reason or cause}"
    if isinstance(cause, OSError):
        return cause.strerror or str(cause)
    return str(cause) or type(cause).__name__


class _Connection:
    """One TLS connection to one server, and the queries waiting on it, by ID."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.stream: trio.SSLStream[trio.SocketStream] | None = None
        self.ready = trio.Event()
        self.failure: str | None = None
        self.closed = False
        self.write_lock = trio.Lock()
        self.waiters: dict[int, list[Callable[[bytes | None], None]]] = {}
        # RFC 7828: how long the connection may stay idle, our limit or the server's if
        # smaller; `draining` once the server said 0 (no new queries, close when answered).
        self.idle_timeout = IDLE_TIMEOUT
        self.draining = False
        self.last_id = 0

    def fresh_id(self) -> int:
        """An ID no query in flight on this connection has: the queries of different
        resolutions may carry the same 16-bit ID, and a reply is routed by ID alone."""
        for _ in range(0x10000):
            self.last_id = (self.last_id + 1) & 0xFFFF
            if self.last_id not in self.waiters:
                break
        return self.last_id

    def heard(self, reply: bytes) -> None:
        """Take the server's edns-tcp-keepalive TIMEOUT from a reply, if it has one."""
        timeout = keepalive_timeout(reply)
        if timeout is None:
            return
        self.idle_timeout = min(IDLE_TIMEOUT, timeout)
        if timeout == 0:
            self.draining = True

    async def open(self) -> None:
        server, peer = self.server, self.server.tls
        assert peer is not None
        with trio.fail_after(CONNECT_TIMEOUT):
            tcp = await trio.open_tcp_stream(server.address, server.port)
            stream = trio.SSLStream(tcp, client_context(peer), server_hostname=peer.name)
            try:
                await stream.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(tcp)
                raise
        mismatch = check_pin(peer, stream.getpeercert(binary_form=True))
        if mismatch is not None:
            await trio.aclose_forcefully(stream)
            raise TlsFailure(mismatch)
        self.stream = stream

    async def read(self) -> None:
        """Hand every reply to the queries with its ID; close when idle or broken."""
        stream = self.stream
        if stream is None:  # never opened: nothing to read
            self.closed = True
            return
        reader = FrameReader(stream)  # every reply already arrived, without a checkpoint each
        try:
            while True:
                if self.draining and not self.waiters:
                    break
                data = reader.take()
                if data is None:
                    with trio.move_on_after(self.idle_timeout) as idle:
                        more = await reader.fill()
                    if idle.cancelled_caught:
                        if self.waiters:
                            continue
                        break
                    if not more:
                        break
                    continue
                if len(data) < 2:
                    continue
                delivers = self.waiters.pop(int.from_bytes(data[:2], "big"), [])
                if delivers:  # only a reply to one of our queries may shorten the timeout
                    self.heard(data)
                for deliver in delivers:
                    deliver(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            log.debug("%s: %s", describe(self.server), _reason(error))
        finally:
            self.closed = True
            waiting, self.waiters = self.waiters, {}
            for delivers in waiting.values():
                for deliver in delivers:
                    deliver(None)
            await trio.aclose_forcefully(stream)


class DotPool:
    """The DoT connections of one resolver process, keyed by server (address, port, peer)."""

    def __init__(self) -> None:
        self._connections: dict[Server, _Connection] = {}
        self._nursery: trio.Nursery | None = None
        self.stats: Stats | None = None

    def attach(self, nursery: trio.Nursery, stats: Stats | None) -> None:
        """Where connections live: a nursery that outlives single queries (the service's)."""
        self._nursery, self.stats = nursery, stats

    async def _connection(self, server: Server) -> _Connection:
        held = self._connections.get(server)
        if held is not None and held.draining:
            held = None  # the server asked for no more queries on it (RFC 7828 section 3.3.2)
        if held is not None and not held.closed:
            if not held.ready.is_set():  # no checkpoint for every query on an open connection
                await held.ready.wait()
            if held.failure is None and not held.closed:
                return held
            if held.failure is not None:
                raise TlsFailure(held.failure)
        connection = self._connections[server] = _Connection(server)
        try:
            await connection.open()
        except TlsFailure as failure:
            connection.failure = str(failure)
        except (trio.TooSlowError, trio.BrokenResourceError, OSError) as error:
            connection.failure = (
                "connection or handshake timed out"
                if isinstance(error, trio.TooSlowError)
                else _reason(error)
            )
        finally:
            # No stream: the opening query was cancelled (its deadline, the engine's Close)
            # mid-handshake. The connection must not stay registered half open; waiters see
            # it closed without a failure and open their own.
            if connection.failure is not None or connection.stream is None or self._nursery is None:
                connection.closed = True
                if self._connections.get(server) is connection:
                    del self._connections[server]
            connection.ready.set()
        if connection.failure is not None:
            raise TlsFailure(connection.failure)
        assert self._nursery is not None
        self._nursery.start_soon(connection.read)
        return connection

    async def carry(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        """Send one query on the server's connection and hand its reply to `received`."""
        server = send.server
        if self.stats is not None:
            self.stats.upstream_tls_queries += 1
        try:
            connection = await self._connection(server)
        except TlsFailure as failure:
            reason = f"{describe(server)}: {failure}"
            log.warning("%s", reason)
            if self.stats is not None:
                self.stats.upstream_tls_failures += 1
            return NetworkError(reason)
        query_id = connection.fresh_id()  # on the wire; the engine's ID is restored on delivery
        replies: list[bytes | None] = []
        arrived = trio.Event()

        def deliver(data: bytes | None) -> None:
            # Called by the connection's reader: the reply goes to the engine (and on to the
            # client) at once, not after this task has been scheduled again; with the engine's
            # own ID back in place of the one unique on this connection.
            reply = None if data is None else send.wire[:2] + data[2:]
            replies.append(reply)
            arrived.set()
            if reply is not None:
                try:
                    received(reply)
                except Exception:  # a bug must cost this query, never the shared connection
                    log.exception("handling a reply from %s failed", describe(server))

        waiting = connection.waiters.setdefault(query_id, [])
        waiting.append(deliver)
        try:
            stream = connection.stream
            if stream is None:
                return NetworkError(f"{describe(server)}: no connection")
            lock = connection.write_lock
            try:
                lock.acquire_nowait()  # the query goes out now unless another is being written
            except trio.WouldBlock:
                await lock.acquire()
            try:
                await stream.send_all(framed(query_id.to_bytes(2, "big") + send.wire[2:]))
            finally:
                lock.release()
            await arrived.wait()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            return NetworkError(f"{describe(server)}: {_reason(error)}")
        finally:
            if deliver in waiting:
                waiting.remove(deliver)
            if not waiting and connection.waiters.get(query_id) is waiting:
                del connection.waiters[query_id]
        if replies[0] is None:
            return NetworkError(f"{describe(server)}: connection closed before the reply")
        return None  # `deliver` has handed the reply over
