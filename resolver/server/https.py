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

import contextlib
import logging
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11
import trio

from resolver.config import Limits
from resolver.engine import Client
from resolver.engine.doh import MEDIA_TYPE, FrameRate, HttpError, dns_query, max_age
from resolver.server.service import Awaited, ResolverService
from resolver.server.wire import MAX_MESSAGE, quick_ack, receive_arrived

log = logging.getLogger(__name__)

#: Requests one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS),
#: as many as the queries one DoT connection may pipeline. It also caps the requests being
#: answered: a client that resets its streams at once ("rapid reset", CVE-2023-44487) frees
#: HTTP/2's count but not the work it started, so the work is counted apart (`_H2.answering`)
#: and a request beyond the cap is refused (RST_STREAM REFUSED_STREAM), not started.
MAX_STREAMS = 16
#: SETTINGS_MAX_HEADER_LIST_SIZE: a DoH request's headers, GET's ?dns= included, fit in far
#: less (a 65535-octet query is 87,380 base64url characters, which is why RFC 8484 has POST).
MAX_HEADER_LIST = 16_384
_RECEIVE = 65_536
_SERVER = b"resolver"


class _Stuck(trio.BrokenResourceError):
    """The client did not take what we sent within the idle timeout: the connection ends."""


Headers = list[tuple[bytes, bytes]]


def answer_now(service: ResolverService, query: bytes, peer: str) -> bytes | None:
    """The packet cache's reply to one DoH query, or None: it needs the full path (`resolve`)."""
    engine = service.engine
    reply = engine.answer_from_cache(query, peer, True, "https")
    if reply is not None:
        service.carry(engine.take_output())  # a prefetch the hit started
    return reply


Response = tuple[int, Headers, bytes]


def respond_now(
    service: ResolverService,
    peer: str,
    path: str,
    method: str,
    target: str,
    content_type: str | None,
    body: bytes,
) -> Response | bytes:
    """The response to one request when it is ready at once (an HTTP error, a packet-cache
    hit), or the DNS query that must be resolved first (`respond` waits for it)."""
    query = dns_query(method, target, content_type, body, path)
    if isinstance(query, HttpError):
        return _error(query)
    reply = answer_now(service, query, peer)
    return query if reply is None else _dns(reply)


async def respond(
    service: ResolverService,
    peer: str,
    path: str,
    method: str,
    target: str,
    content_type: str | None,
    body: bytes,
) -> Response:
    """Status, headers and body of the HTTP response to one request."""
    ready = respond_now(service, peer, path, method, target, content_type, body)
    if not isinstance(ready, bytes):
        return ready
    return await resolve(service, peer, ready)


async def resolve(service: ResolverService, peer: str, query: bytes) -> Response:
    """The response to a DNS query the packet cache could not answer."""
    awaited = Awaited()
    service.carry(service.engine.client_query(query, Client(peer, True, awaited, "https")))
    await awaited.done.wait()
    if awaited.wire is None:
        return _error(HttpError(400, "not a DNS query"))
    return _dns(awaited.wire)


def _dns(reply: bytes) -> Response:
    """A DNS reply in a 200 (DNS errors travel in a 200 too, RFC 8484 section 4.2.1)."""
    headers = [
        (b"content-type", MEDIA_TYPE.encode()),
        (b"cache-control", b"max-age=%d" % max_age(reply)),
    ]
    return 200, headers, reply


def _error(error: HttpError) -> Response:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if error.status == 405:
        headers.append((b"allow", b"GET, HEAD, POST"))
    return error.status, headers, (error.reason + "\n").encode()


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


async def _send(stream: trio.abc.Stream, data: bytes, limits: Limits) -> None:
    """Write to the client; a client that stops reading must not hold its connection (and a
    slot of `max_tcp_clients`) forever: what it does not take within the idle timeout ends it,
    as on the DoT and TCP listeners."""
    with trio.move_on_after(limits.tcp_idle_timeout):
        await stream.send_all(data)
        return
    raise _Stuck("the client does not read its responses")


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
                await _send(stream, data, limits)

    while True:
        # The whole request (headers and body) within the idle timeout, not each piece of it:
        # otherwise a client sending a byte every few seconds (slowloris) would hold the
        # connection forever.
        request: h11.Request | None = None
        body: bytes | None = None
        try:
            with trio.move_on_after(limits.tcp_idle_timeout):
                request, body = await _read_h11_request(connection, stream, limits)
        except h11.RemoteProtocolError as error:
            if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                content = f"bad request: {error}\n".encode()
                await send(_h11_response(400, [], content), h11.Data(data=content))
                await send(h11.EndOfMessage())
            return
        if request is None:
            return
        refusal = _h11_refusal(request)
        if refusal is not None:
            status, headers, content = refusal
        elif body is None:
            status, headers, content = 413, [], b"a DNS message has at most 65535 octets\n"
            headers.append((b"connection", b"close"))
        else:
            content_type = _header(request.headers, b"content-type")
            status, headers, content = await respond(
                service,
                peer,
                path,
                _get_for_head(request.method.decode("ascii", "replace")),
                request.target.decode("ascii", "replace"),
                content_type,
                body,
            )
            if _switching(request):  # answered, then closed: no other protocol here
                headers.append((b"connection", b"close"))
        if request.method == b"HEAD":  # the GET's headers, no body (RFC 9110 section 9.3.2)
            await send(_h11_response(status, headers, content))
        else:
            await send(_h11_response(status, headers, content), h11.Data(data=content))
        await send(h11.EndOfMessage())
        if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
            return  # the client asked to close, or left part of its body unread
        if refusal is not None or _switching(request):
            return
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
            if _h11_refusal(event) is not None or _declared_length(event) > MAX_MESSAGE:
                return request, None  # answered (and closed) without reading the body
            if connection.they_are_waiting_for_100_continue:  # RFC 9110 section 10.1.1
                data = connection.send(h11.InformationalResponse(status_code=100, headers=[]))
                await _send(stream, data or b"", limits)
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_MESSAGE:
                return request, None
        elif isinstance(event, h11.EndOfMessage):
            return request, bytes(body)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None, None


def _h11_refusal(request: h11.Request) -> tuple[int, Headers, bytes] | None:
    """The response (then the connection closes) to a request not to be read further.

    h11's `max_incomplete_event_size` bounds only a request line and headers still arriving:
    arrived whole in one read they pass it, so their size is checked here too (the same
    16 KiB as HTTP/2's MAX_HEADER_LIST). CONNECT gets its 405 at once rather than leaving h11
    waiting to switch protocols until the idle timeout."""
    close = (b"connection", b"close")
    if len(request.target) > MAX_HEADER_LIST:
        return 414, [close], b"the request target is longer than 16384 octets\n"
    size = len(request.target) + sum(len(k) + len(v) + 4 for k, v in request.headers)
    if size > MAX_HEADER_LIST:
        return 431, [close], b"the request headers are larger than 16384 octets\n"
    if request.method == b"CONNECT":
        allow = (b"allow", b"GET, HEAD, POST")
        return 405, [allow, close], b"only GET and POST are allowed\n"
    return None


def _switching(request: h11.Request) -> bool:
    """An `Upgrade` (h2c, WebSocket): answered as HTTP/1.1, then the connection is closed
    (h11 would otherwise hold it waiting for a protocol switch that never comes)."""
    return _header(request.headers, b"upgrade") is not None


def _declared_length(request: h11.Request) -> int:
    value = _header(request.headers, b"content-length")
    return int(value) if value is not None and value.isdigit() else 0


def _get_for_head(method: str) -> str:
    """HEAD is GET without the body (RFC 9110 section 9.3.2): the same status and headers,
    Cache-Control's max-age included, so it is answered as a GET and the body dropped."""
    return "GET" if method == "HEAD" else method


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

    def __init__(self, stream: trio.abc.Stream, limits: Limits) -> None:
        # What we send is ours (`_response_headers`: lowercase names, no connection-specific
        # field), so h2 need not check and normalise it for every response: that was a third
        # of h2's cost of sending one. What the client sends is still checked.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.connection = h2.connection.H2Connection(config=config)
        self.stream = stream
        self.limits = limits
        self.lock = trio.Lock()
        # Set (and replaced) whenever the client grants more flow-control window: every
        # response waiting for window wakes up, whichever stream the grant was for.
        self.window = trio.Event()
        self.requests: dict[int, tuple[Headers, bytearray]] = {}
        self.answering = 0  # requests being answered (`MAX_STREAMS` at most)
        # What h2 produced, cut at the end of each response answered at once (`reply_now`).
        self.written: list[bytes] = []

    def granted(self) -> None:
        self.window.set()
        self.window = trio.Event()

    def cut(self) -> None:
        """End a write at this point: what h2 produced so far leaves in a TLS record of its
        own, not in one record with the responses that follow (see `flush`)."""
        data = self.connection.data_to_send()
        if data:
            self.written.append(data)

    async def flush(self) -> None:
        """Write what h2 produced: each response answered at once in a TLS record of its own.

        One record for a whole batch of responses would be cheaper, but dnsperf (2.x, the tool
        the benchmarks use) handles one response per TLS record it reads and keeps the rest in
        its buffer until more bytes arrive on the socket (its `have_more` is a TODO): measured,
        two responses in one record cost the second one a stall, and at 2 or more requests in
        flight on a connection a run came to a near standstill. The batch still costs one
        receive, and the hits in it no task each.
        """
        async with self.lock:
            self.cut()
            written, self.written = self.written, []
            for data in written:
                await _send(self.stream, data, self.limits)

    async def reply(
        self,
        stream_id: int,
        status: int,
        headers: Headers,
        body: bytes,
        queued: Callable[[], None] = lambda: None,
        head: bool = False,
    ) -> None:
        """Send a response within the client's flow-control window; `queued` is called once
        all of it is in h2's hands (the stream is then closed for h2), before it is written."""
        connection = self.connection
        try:
            # A HEAD response has no body: the headers, with the GET's length, end the stream.
            connection.send_headers(
                stream_id, _response_headers(status, headers, body), end_stream=head
            )
            while not head:
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
                    # A client that opens no window (flow control, RFC 9113 section 5.2)
                    # gets its stream reset after the idle timeout rather than holding it.
                    granted = self.window
                    with trio.move_on_after(self.limits.tcp_idle_timeout):
                        await granted.wait()
                    if not granted.is_set():
                        connection.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                        break
        except h2.exceptions.ProtocolError:
            # The client reset the stream (StreamClosedError, or StreamIDTooLowError once h2
            # forgot it after a newer stream opened), or the connection is closed (GOAWAY).
            return
        queued()
        await self.flush()

    def reply_now(
        self, stream_id: int, status: int, headers: Headers, body: bytes, head: bool = False
    ) -> bool:
        """Hand h2 the whole response at once if the client's window takes it (a DNS reply
        nearly always fits); it is written with the next `flush`, together with every other
        response of the same batch of requests. False: it does not fit, use `reply`."""
        connection = self.connection
        try:
            window = min(
                connection.local_flow_control_window(stream_id),
                connection.max_outbound_frame_size,
            )
            if len(body) > window:
                return False
            connection.send_headers(
                stream_id, _response_headers(status, headers, body), end_stream=head
            )
            if not head:
                connection.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.ProtocolError:
            pass  # the client reset the stream, or the connection is closing (GOAWAY)
        return True

    def finish(self, stream_id: int) -> None:
        """After a complete response to a request the client has not finished sending (413),
        ask it to stop sending, without error (RFC 9113 section 8.1)."""
        stream = self.connection.streams.get(stream_id)
        if stream is not None and not stream.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):  # closed meanwhile
                self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)


def _response_headers(status: int, headers: Headers, body: bytes) -> Headers:
    return [
        (b":status", b"%d" % status),
        *headers,
        (b"content-length", b"%d" % len(body)),
        (b"server", _SERVER),
    ]


#: The control frames `FrameRate` rations, by the h2 event each one gives.
_CONTROL: dict[type[h2.events.Event], str] = {
    h2.events.RemoteSettingsChanged: "SETTINGS",
    h2.events.PingReceived: "PING",
    h2.events.PingAckReceived: "PING",
}


async def _serve_h2(
    stream: trio.abc.Stream, peer: str, service: ResolverService, limits: Limits, path: str
) -> None:
    """Requests multiplexed on one connection, each answered as soon as it is ready."""
    h2c = _H2(stream, limits)
    connection = h2c.connection
    connection.local_settings = h2.settings.Settings(
        client=False,
        initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
        },
    )
    connection.initiate_connection()
    await h2c.flush()

    async def handle(stream_id: int, ready: Response | bytes, too_large: bool, head: bool) -> None:
        """Finish one request: resolve its query (`ready` is the query) unless its response
        is already known, and send the response as the client's window allows."""
        answering = True

        def queued() -> None:
            # As soon as h2 counts the stream closed, so does `answering`: a client that opens
            # a new stream on seeing the response must not find it still counted (refused).
            nonlocal answering
            if answering:
                answering = False
                h2c.answering -= 1

        try:
            if isinstance(ready, bytes):
                ready = await resolve(service, peer, ready)
            await h2c.reply(stream_id, *ready, queued, head)
            if too_large:
                h2c.finish(stream_id)
                await h2c.flush()
        finally:
            queued()
            activity.set()

    def start(stream_id: int) -> None:
        """A request is complete: answer it now if it can be (a packet-cache hit, an HTTP
        error), written with the batch it arrived in; otherwise in a task of its own."""
        held = h2c.requests.pop(stream_id, None)
        if held is None:
            return
        if h2c.answering >= MAX_STREAMS:
            # Not if the client reset it already (in the same read: h2 has seen the reset).
            with contextlib.suppress(h2.exceptions.ProtocolError):
                connection.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        headers, body = held
        ready: Response | bytes
        too_large = len(body) > MAX_MESSAGE
        method = dict(headers).get(b":method", b"")
        head = method == b"HEAD"
        if too_large:
            ready = 413, [], b"a DNS message has at most 65535 octets\n"
        else:
            fields = dict(headers)
            content_type = fields.get(b"content-type")
            ready = respond_now(
                service,
                peer,
                path,
                _get_for_head(method.decode("ascii", "replace")),
                fields.get(b":path", b"").decode("ascii", "replace"),
                None if content_type is None else content_type.decode("latin-1"),
                bytes(body),
            )
            if not isinstance(ready, bytes) and h2c.reply_now(stream_id, *ready, head):
                h2c.cut()
                return
        h2c.answering += 1
        nursery.start_soon(handle, stream_id, ready, too_large, head)

    # Only requests keep a connection open: the idle timeout runs from the last request
    # received or answered, so PINGs, SETTINGS or a body trickled byte by byte (slowloris)
    # do not keep a connection, and its slot in max_tcp_clients, forever.
    activity = trio.Event()
    deadline = trio.current_time() + limits.tcp_idle_timeout
    flood = FrameRate()  # SETTINGS and PING frames: each costs an ACK, so they are rationed
    async with trio.open_nursery() as nursery:
        while True:
            if activity.is_set():
                activity = trio.Event()
                deadline = trio.current_time() + limits.tcp_idle_timeout
            if trio.current_time() >= deadline:
                if not h2c.answering:
                    break
                deadline = trio.current_time() + limits.tcp_idle_timeout
            data = b""
            with trio.move_on_at(deadline):
                # All the records already received: their requests are answered together
                # and the responses to the hits leave in one write (the flush below).
                data = await receive_arrived(stream)
                quick_ack(stream)
                if not data:
                    break
            if not data:
                continue
            try:
                events = connection.receive_data(data)
            except h2.exceptions.ProtocolError as error:
                log.debug("https client %s: HTTP/2 protocol error: %s", peer, error)
                await h2c.flush()  # h2 has queued a GOAWAY
                break
            for event in events:
                kind = _CONTROL.get(type(event))
                if kind is not None and flood.flooded(kind, trio.current_time()):
                    log.debug("https client %s: more than 100 %s frames a second", peer, kind)
                    connection.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
                    await h2c.flush()
                    nursery.cancel_scope.cancel()
                    return
                if isinstance(event, h2.events.RequestReceived):
                    activity.set()
                    fields = [(bytes(k), bytes(v)) for k, v in event.headers or []]
                    h2c.requests[event.stream_id] = (fields, bytearray())
                    if event.stream_ended is not None:
                        start(event.stream_id)
                elif isinstance(event, h2.events.DataReceived):
                    connection.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                    held = h2c.requests.get(event.stream_id)
                    if held is not None:
                        held[1].extend(event.data or b"")
                        if len(held[1]) > MAX_MESSAGE:  # 413 now, not after the whole body
                            start(event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    start(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    h2c.requests.pop(event.stream_id, None)
                elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
                    h2c.granted()  # more window, or a new initial window size
                elif isinstance(event, h2.events.ConnectionTerminated):
                    nursery.cancel_scope.cancel()
            await h2c.flush()
        nursery.cancel_scope.cancel()
