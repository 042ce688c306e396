"""DNS over HTTPS (RFC 8484): HTTP/2 (`h2`) and HTTP/1.1 (`h11`) driven over trio TLS streams.

Both libraries are sans-I/O state machines, like the engine: this module feeds them the bytes
the connection receives, sends the bytes they produce, and passes each complete request to
`resolver.engine.doh.dns_query`, which decides what it means (a DNS query, or 400, 404, 405, 413,
415). The DNS answer comes from the engine exactly as for a DoT client (`Client.transport`
"https": the same access list, packet cache, padding and limits). Which HTTP version a
connection speaks is the TLS ALPN's choice: "h2" or "http/1.1" (the default without ALPN).

Why not hypercorn's trio worker: it would bring an ASGI framework, its own TLS and connection
handling and its own limits beside ours, for the one endpoint that these two small state
machines serve in a few dozen lines each.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import h11
import trio

from resolver.config import Limits
from resolver.engine import Client
from resolver.engine.doh import MEDIA_TYPE, HttpError, dns_query, max_age
from resolver.server.service import Awaited, ResolverService
from resolver.server.wire import MAX_MESSAGE

log = logging.getLogger(__name__)

#: Requests one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS),
#: as many as the queries one DoT connection may pipeline.
MAX_STREAMS = 16
_RECEIVE = 65_536
_SERVER = b"resolver"

Headers = list[tuple[bytes, bytes]]


async def answer(service: ResolverService, wire: bytes, peer: str) -> bytes | None:
    """The engine's reply to one DoH query: the packet cache first, then the full path."""
    engine = service.engine
    reply = engine.answer_from_cache(wire, peer, True, "https")
    if reply is not None:
        service.carry(engine.take_output())
        return reply
    awaited = Awaited()
    service.carry(engine.client_query(wire, Client(peer, True, awaited, "https")))
    await awaited.done.wait()
    return awaited.wire


async def respond(
    service: ResolverService,
    peer: str,
    path: str,
    method: str,
    target: str,
    content_type: str | None,
    body: bytes,
) -> tuple[int, Headers, bytes]:
    """Status, headers and body of the HTTP response to one request."""
    query = dns_query(method, target, content_type, body, path)
    if not isinstance(query, HttpError):
        reply = await answer(service, query, peer)
        if reply is not None:  # DNS errors travel in a 200 too (RFC 8484 section 4.2.1)
            headers = [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"cache-control", b"max-age=%d" % max_age(reply)),
            ]
            return 200, headers, reply
        query = HttpError(400, "not a DNS query")
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if query.status == 405:
        headers.append((b"allow", b"GET, POST"))
    return query.status, headers, (query.reason + "\n").encode()


async def serve_https(
    stream: trio.SSLStream[trio.abc.Stream],
    peer: str,
    service: ResolverService,
    limits: Limits,
    path: str,
) -> None:
    """One DoH connection, in the HTTP version its TLS handshake chose."""
    serve = _serve_h2 if stream.selected_alpn_protocol() == "h2" else _serve_h11
    try:
        async with stream:
            await serve(stream, peer, service, limits, path)
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
        log.debug("https client %s: %s", peer, group.exceptions[0])


async def _receive(stream: trio.abc.Stream, limits: Limits) -> bytes:
    """Bytes from the client; b"" when it closed or idled for `tcp_idle_timeout`."""
    with trio.move_on_after(limits.tcp_idle_timeout):
        return bytes(await stream.receive_some(_RECEIVE))
    return b""


# --- HTTP/1.1 ---------------------------------------------------------------------------------


async def _serve_h11(
    stream: trio.abc.Stream, peer: str, service: ResolverService, limits: Limits, path: str
) -> None:
    """Requests one after another (HTTP/1.1 has no multiplexing; clients open more connections
    or use HTTP/2)."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=16_384)

    async def send(*events: h11.Event) -> None:
        for event in events:
            data = connection.send(event)
            if data:
                await stream.send_all(data)

    while True:
        try:
            request, body = await _read_h11_request(connection, stream, limits)
        except h11.RemoteProtocolError as error:
            if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                content = f"bad request: {error}\n".encode()
                await send(_h11_response(400, [], content), h11.Data(data=content))
                await send(h11.EndOfMessage())
            return
        if request is None:
            return
        if body is None:
            status, headers, content = 413, [], b"a DNS message has at most 65535 octets\n"
            headers.append((b"connection", b"close"))
        else:
            content_type = _header(request.headers, b"content-type")
            status, headers, content = await respond(
                service,
                peer,
                path,
                request.method.decode("ascii", "replace"),
                request.target.decode("ascii", "replace"),
                content_type,
                body,
            )
        await send(_h11_response(status, headers, content), h11.Data(data=content))
        await send(h11.EndOfMessage())
        if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
            return  # the client asked to close, or left part of its body unread
        connection.start_next_cycle()


async def _read_h11_request(
    connection: h11.Connection, stream: trio.abc.Stream, limits: Limits
) -> tuple[h11.Request | None, bytes | None]:
    """The next request and its body (None: larger than a DNS message), or (None, None) when
    the client closed the connection or idled."""
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await _receive(stream, limits)
            connection.receive_data(data)
            if not data and request is None:
                return None, None
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_MESSAGE:
                return request, None
        elif isinstance(event, h11.EndOfMessage):
            return request, bytes(body)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None, None


def _h11_response(status: int, headers: Headers, content: bytes) -> h11.Response:
    headers = [*headers, (b"content-length", b"%d" % len(content)), (b"server", _SERVER)]
    return h11.Response(status_code=status, headers=headers)


def _header(headers: list[tuple[bytes, bytes]] | h11._headers.Headers, name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


# --- HTTP/2 -----------------------------------------------------------------------------------


class _H2:
    """One HTTP/2 connection: the state machine, its writer lock, and the open requests."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.connection = h2.connection.H2Connection(config=config)
        self.stream = stream
        self.lock = trio.Lock()
        self.window = trio.Event()  # set when the client grants more flow-control window
        self.requests: dict[int, tuple[Headers, bytearray]] = {}

    async def flush(self) -> None:
        async with self.lock:
            data = self.connection.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def reply(self, stream_id: int, status: int, headers: Headers, body: bytes) -> None:
        connection = self.connection
        try:
            connection.send_headers(
                stream_id,
                [
                    (b":status", b"%d" % status),
                    *headers,
                    (b"content-length", b"%d" % len(body)),
                    (b"server", _SERVER),
                ],
            )
            while True:
                window = min(
                    connection.local_flow_control_window(stream_id),
                    connection.max_outbound_frame_size,
                )
                chunk, body = body[:window], body[window:]
                if not body:
                    connection.send_data(stream_id, chunk, end_stream=True)
                    break
                if chunk:
                    connection.send_data(stream_id, chunk)
                await self.flush()
                if not chunk:
                    self.window = trio.Event()
                    await self.window.wait()
        except h2.exceptions.StreamClosedError:
            return  # the client reset the stream
        await self.flush()


async def _serve_h2(
    stream: trio.abc.Stream, peer: str, service: ResolverService, limits: Limits, path: str
) -> None:
    """Requests multiplexed on one connection, each answered as soon as it is ready."""
    h2c = _H2(stream)
    connection = h2c.connection
    connection.local_settings = h2.settings.Settings(
        client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS}
    )
    connection.initiate_connection()
    await h2c.flush()

    async def handle(stream_id: int, headers: Headers, body: bytes | None) -> None:
        fields = dict(headers)
        response: Headers = []
        if body is None:
            status, content = 413, b"a DNS message has at most 65535 octets\n"
        else:
            content_type = fields.get(b"content-type")
            status, response, content = await respond(
                service,
                peer,
                path,
                fields.get(b":method", b"").decode("ascii", "replace"),
                fields.get(b":path", b"").decode("ascii", "replace"),
                None if content_type is None else content_type.decode("latin-1"),
                body,
            )
        await h2c.reply(stream_id, status, response, content)

    async with trio.open_nursery() as nursery:
        while True:
            data = await _receive(stream, limits)
            if not data:
                break
            try:
                events = connection.receive_data(data)
            except h2.exceptions.ProtocolError as error:
                log.debug("https client %s: HTTP/2 protocol error: %s", peer, error)
                await h2c.flush()  # h2 has queued a GOAWAY
                break
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    fields = [(bytes(k), bytes(v)) for k, v in event.headers or []]
                    h2c.requests[event.stream_id] = (fields, bytearray())
                    if event.stream_ended is not None:
                        _start(nursery, handle, h2c, event.stream_id)
                elif isinstance(event, h2.events.DataReceived):
                    connection.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                    held = h2c.requests.get(event.stream_id)
                    if held is not None and len(held[1]) <= MAX_MESSAGE:  # beyond: 413
                        held[1].extend(event.data or b"")
                elif isinstance(event, h2.events.StreamEnded):
                    _start(nursery, handle, h2c, event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    h2c.requests.pop(event.stream_id, None)
                elif isinstance(event, h2.events.WindowUpdated):
                    h2c.window.set()
                elif isinstance(event, h2.events.ConnectionTerminated):
                    nursery.cancel_scope.cancel()
            await h2c.flush()
        nursery.cancel_scope.cancel()


def _start(
    nursery: trio.Nursery,
    handle: Callable[[int, Headers, bytes | None], Awaitable[None]],
    h2c: _H2,
    stream_id: int,
) -> None:
    held = h2c.requests.pop(stream_id, None)
    if held is None:
        return
    headers, body = held
    whole = bytes(body) if len(body) <= MAX_MESSAGE else None
    nursery.start_soon(handle, stream_id, headers, whole)
