"""Carry the engine's queries to authoritative servers over UDP and TCP (RFC 5452 hygiene).

Each query gets a socket of its own, bound to a kernel-chosen ephemeral port (Linux picks it at
random) and connected to the server, so the kernel drops datagrams from any other address or
port. Every datagram that does arrive goes to the engine, which alone decides whether it
answers the query (ID, question, 0x20 case) and tells the carrier when to stop listening.

Plain UDP queries, nearly all of them, cost no task of their own: `Datagrams` keeps every
query's socket in one epoll set of its own, which one long-lived task waits on (a task, a
cancel scope and a registration with trio's own epoll per query cost more than the system
calls of the query itself). TCP and DNS over TLS keep a task per query (`Network.carry`).
"""

from __future__ import annotations

import errno
import logging
import math
import select
import socket
from collections.abc import Callable

import trio

from resolver.core.actions import NetworkError
from resolver.engine import Send
from resolver.engine.stats import Stats
from resolver.server.dotpool import DotPool
from resolver.server.wire import MAX_MESSAGE, family_of, framed, receive_framed

log = logging.getLogger(__name__)

#: Errors this host raises before anything is sent: no route to the address's network (an
#: IPv6 address without IPv6 connectivity), no such family. Waiting for an answer, or asking
#: the address again, is pointless. ICMP errors that come back later (port or host
#: unreachable on a connected socket) are not among them: anyone who can guess the source
#: port can forge those, so they count as an ordinary failure of one query.
_UNREACHABLE = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
)
#: Datagrams read from one query's socket per wake-up: datagrams flooding one port (a
#: spoofer's) must not keep every other task of the resolver waiting.
_DRAIN = 16
#: Sockets served per wake-up of the carrier's task, before the other tasks get their turn.
_EVENTS = 64
#: Non-blocking from birth: one system call fewer than `setblocking(False)` afterwards.
_DGRAM = socket.SOCK_DGRAM | getattr(socket, "SOCK_NONBLOCK", 0)
#: How a query's socket waits in the epoll set: for its reply, and for room to send when the
#: send buffer was full. One-shot: a registration reports once and then stays silent until
#: re-armed (`Datagrams.serve`), which lets `close` skip `epoll.unregister` (see `_drop`).
_READ = select.EPOLLIN | select.EPOLLONESHOT
_WRITE = select.EPOLLOUT | select.EPOLLONESHOT


def _connect(sock: socket.socket, address: tuple[str, int]) -> None:
    """Connect a UDP socket: never blocks (no packet is sent), but fails at once for an
    address this host has no route to."""
    sock.connect(address)


def _undelivered(error: OSError, *, local: bool) -> NetworkError:
    reason = errno.errorcode.get(error.errno or 0, str(error))
    return NetworkError(reason, local and error.errno in _UNREACHABLE)


#: What `Datagrams` calls with each datagram that arrives for a query (its handle, the bytes).
Replied = Callable[[int, bytes], None]
#: What `Datagrams` calls when a query's socket fails after the send (an ICMP error).
Failed = Callable[[int, NetworkError], None]


class _Exchange:
    """One UDP query in flight: its socket, and its bytes while the send buffer is full."""

    __slots__ = ("fd", "handle", "sock", "unsent")

    def __init__(self, sock: socket.socket, handle: int, unsent: bytes | None) -> None:
        self.sock, self.handle, self.unsent = sock, handle, unsent
        self.fd = sock.fileno()


class Datagrams:
    """Every plain UDP query of one service: a socket each, one epoll set, one task (`run`).

    `send` opens a query's socket, sends and registers it, synchronously; `close` (the
    engine's `Close`) closes it at once. `run` waits for the epoll set to be
    readable (through trio, so the rest of the process runs meanwhile) and reads what arrived,
    a bounded number of sockets and datagrams per wake-up, handing each datagram to `replied`
    (the engine, which says `Close` when it has what it waited for). Deadlines are the
    engine's: a query whose answer never comes stays open until the engine closes it.
    """

    def __init__(self, replied: Replied, failed: Failed) -> None:
        self._replied, self._failed = replied, failed
        self._epoll = select.epoll()
        self._by_fd: dict[int, _Exchange] = {}
        self._by_handle: dict[int, _Exchange] = {}
        self._shut = False

    def __len__(self) -> int:
        """Queries whose socket is open."""
        return len(self._by_handle)

    def fileno(self) -> int:
        """The epoll set's descriptor: readable when some query's socket is."""
        return self._epoll.fileno()

    def is_open(self, handle: int) -> bool:
        return handle in self._by_handle

    def send(self, send: Send) -> NetworkError | None:
        """Send `send` from a socket of its own; what went wrong if it could not be sent."""
        if self._shut:  # stopping: nobody would read the reply, so send nothing
            return NetworkError("stopping")
        server = send.server
        sock = socket.socket(family_of(server.address), _DGRAM)
        unsent: bytes | None = None
        try:
            if _DGRAM == socket.SOCK_DGRAM:
                sock.setblocking(False)
            _connect(sock, (server.address, server.port))
            try:
                sock.send(send.wire)
            except BlockingIOError:  # a full send buffer: wait for room (`serve`)
                unsent = send.wire
            # Inside the `try`: a set that cannot take one more socket (the kernel's
            # max_user_watches) fails this query, and leaks no descriptor.
            self._epoll.register(sock.fileno(), _READ if unsent is None else _WRITE)
        except OSError as error:
            sock.close()
            return _undelivered(error, local=True)
        except BaseException:
            sock.close()
            raise
        exchange = _Exchange(sock, send.handle, unsent)
        self._by_fd[exchange.fd] = self._by_handle[send.handle] = exchange
        return None

    def close(self, handle: int) -> bool:
        """Stop listening for `handle` and close its socket; False if it had none open."""
        exchange = self._by_handle.pop(handle, None)
        if exchange is None:
            return False
        self._drop(exchange)
        return True

    def _drop(self, exchange: _Exchange) -> None:
        # No `epoll.unregister` (a system call per query): closing the socket takes it out of
        # the set. Not quite always: the kernel keeps the registration while another
        # descriptor refers to the same socket (a process forked meanwhile, a `dup`), and
        # reports its events under this fd number, which the next socket may get. Being
        # one-shot, such a stale registration reports at most once (`serve` then reads the
        # new socket, if any, and finds nothing), instead of waking the task in a loop.
        self._by_handle.pop(exchange.handle, None)
        del self._by_fd[exchange.fd]
        exchange.sock.close()

    async def run(self) -> None:
        """Hand over what arrives until cancelled; then close every socket and the set."""
        try:
            fileno = self._epoll.fileno()
            while True:
                await trio.lowlevel.wait_readable(fileno)
                self.serve()
        finally:
            self.shut()

    def shut(self) -> None:
        """Close every query's socket and the epoll set (nothing more will be read)."""
        self._shut = True
        for exchange in self._by_fd.values():
            exchange.sock.close()
        self._by_fd.clear()
        self._by_handle.clear()
        self._epoll.close()

    def serve(self) -> None:
        """Read what has arrived on the sockets that are ready (never blocks)."""
        by_fd, replied = self._by_fd, self._replied
        # An event is looked up by fd number, and may not be the current socket's: a stale
        # registration (`_drop`), or, within one batch, the engine closing one query's socket
        # for a reply and opening the next on the same number. So an event is only a hint:
        # every read and late send below tolerates EAGAIN and re-arms.
        for fd, _events in self._epoll.poll(0, _EVENTS):
            exchange = by_fd.get(fd)
            if exchange is None:
                continue  # a stale registration (`_drop`): silent from now on
            if exchange.unsent is not None:
                self._send_late(exchange)  # room, an error, or a hangup: the send tells which
                continue
            recv, handle = exchange.sock.recv, exchange.handle
            for _ in range(_DRAIN):
                try:
                    data = recv(MAX_MESSAGE)
                except BlockingIOError:
                    break
                except OSError as error:  # after the send: an ICMP error
                    self._fail(exchange, _undelivered(error, local=False))
                    break
                try:
                    replied(handle, data)
                except Exception:  # a bug must cost this query, never the carrier's task
                    log.exception("handling a reply to upstream query %d failed", handle)
                    if by_fd.get(fd) is exchange:
                        self._fail(exchange, NetworkError("internal error"))
                    break
                if by_fd.get(fd) is not exchange:
                    break  # closed by the engine for this reply: read nothing more
            if by_fd.get(fd) is exchange:
                # Still waiting (a datagram it did not accept, more than `_DRAIN` of them):
                # re-armed. A reply closes the query nearly always, and costs no re-arming.
                self._epoll.modify(fd, _READ)

    def _send_late(self, exchange: _Exchange) -> None:
        """Send a query that found the send buffer full, now that there is room."""
        assert exchange.unsent is not None
        try:
            exchange.sock.send(exchange.unsent)
        except BlockingIOError:  # no room after all (woken by another socket's event: `serve`)
            self._epoll.modify(exchange.fd, _WRITE)
            return
        except OSError as error:
            self._fail(exchange, _undelivered(error, local=False))
            return
        exchange.unsent = None
        self._epoll.modify(exchange.fd, _READ)

    def _fail(self, exchange: _Exchange, failure: NetworkError) -> None:
        self._drop(exchange)
        try:
            self._failed(exchange.handle, failure)
        except Exception:  # as in `serve`: a bug costs this query, never the carrier's task
            log.exception("handling the failure of upstream query %d failed", exchange.handle)


class Network:
    """Sends one query and hands back what arrives, until the engine says `Close`.

    Tests and simulations replace it with a script (`resolver.testing`), the engine unchanged.
    Queries to DNS-over-TLS forwarders go through the pool of shared connections (`dotpool`).
    """

    _tls: DotPool | None = None

    @property
    def tls(self) -> DotPool:
        """The DoT connection pool, made when first needed (subclasses need not call us)."""
        if self._tls is None:
            self._tls = DotPool()
        return self._tls

    def attach(self, nursery: trio.Nursery, stats: Stats | None = None) -> None:
        """The nursery long-lived connections run in (the service's), and where to count."""
        self.tls.attach(nursery, stats)

    def datagrams(self, replied: Replied, failed: Failed) -> Datagrams | None:
        """The carrier of a service's plain UDP queries, or None when `carry` is to carry
        them too: a subclass that replaces `carry` (a scripted network) sees every query."""
        if type(self).carry is not Network.carry:
            return None
        return Datagrams(replied, failed)

    async def carry(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        """Deliver `send` and call `received` with each reply, until cancelled (the engine's
        `Close`). Returns why the query could not be delivered, or None when nothing more
        will come (over TCP, after the one reply) or when cancelled from within `received`
        (the engine's `Close` for the reply it was handed): returning then costs a fraction
        of raising and unwinding `Cancelled` at the next checkpoint.
        """
        try:
            if send.server.tls is not None:  # never in clear text, whatever happens
                return await self.tls.carry(send, received)
            if send.tcp:
                return await self._over_tcp(send, received)
            return await self._over_udp(send, received)
        except OSError as error:  # after the send: an ICMP error, a reset connection
            return _undelivered(error, local=False)

    async def _over_udp(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        # One query on a carrier of its own (for callers without a service, such as tests);
        # a service carries all of its UDP queries on one (`datagrams`).
        failures: list[NetworkError] = []

        def replied(handle: int, data: bytes) -> None:
            received(data)
            if trio.current_effective_deadline() == -math.inf:
                carrier.close(handle)  # cancelled by `received`: see `carry`

        carrier = Datagrams(replied, lambda _handle, failure: failures.append(failure))
        try:
            failure = carrier.send(send)
            if failure is not None:
                return failure
            while not failures:
                await trio.lowlevel.wait_readable(carrier.fileno())
                carrier.serve()
                if not failures and not carrier.is_open(send.handle):
                    return None
            return failures[0]
        finally:
            carrier.shut()

    async def _over_tcp(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        server = send.server
        stream = await trio.open_tcp_stream(server.address, server.port)
        async with stream:
            await stream.send_all(framed(send.wire))
            data = await receive_framed(stream)
        if data is None:
            return NetworkError("connection closed or malformed response")
        received(data)
        return None
