"""DNS over HTTPS (RFC 8484) as pure functions: an HTTP request in, DNS query bytes or an HTTP
error out; a DNS reply in, its `Cache-Control` lifetime out.

The HTTP/1.1 and HTTP/2 drivers (`server/https.py`) only move bytes and call these, so every rule
of the RFC that a client can break is decided (and tested) here, without sockets:

- section 4.1: GET carries the query in `?dns=`, base64url without padding; POST carries it as
  the body, with `Content-Type: application/dns-message` (anything else: 415);
- a query must be at least a DNS header, at most 65535 octets (413 beyond);
- any other method is 405 (CONNECT too, which has no path), any other path 404; everything else
  malformed is 400;
- section 4.2.1: a DNS error (SERVFAIL, NXDOMAIN) is still an HTTP 200, its rcode says it;
- section 5.1: the freshness lifetime is no longer than the smallest TTL of the answer section,
  and for a negative answer no longer than the SOA's MINIMUM and TTL (RFC 2308 section 5).

`FrameRate` counts the HTTP/2 control frames a client may send at will (SETTINGS, PING): each
costs us an acknowledgement, so a flood of them would burn the event loop for one connection.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import dns.rdatatype

from resolver.cache.packets import skip_name
from resolver.engine.messages import MAX_MESSAGE

MEDIA_TYPE = "application/dns-message"
#: The smallest DNS message: a header (RFC 1035 section 4.1.1).
_HEADER_SIZE = 12
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


@dataclass(frozen=True, slots=True)
class HttpError:
    """An HTTP error status for a request that carries no usable DNS query, and why (the body,
    for whoever debugs a client)."""

    status: int
    reason: str


def dns_query(
    method: str, target: str, content_type: str | None, body: bytes, path: str = "/dns-query"
) -> bytes | HttpError:
    """The DNS query an HTTP request carries, or the HTTP error to answer it with.

    `target` is the request target (path and query string), `content_type` the header's value
    (None if absent), `body` the request body (the driver stops reading past `MAX_MESSAGE`).
    """
    if method == "CONNECT":  # no path to look at (HTTP/2's CONNECT has no :path): 405
        return HttpError(405, "only GET and POST are allowed")
    split = urlsplit(target)
    if split.path != path:
        return HttpError(404, f"no such resource; DNS queries go to {path}")
    if method == "GET":
        values = parse_qs(split.query, keep_blank_values=True).get("dns")
        if not values:
            return HttpError(400, "a GET request needs the query in ?dns=")
        if len(values) > 1:
            return HttpError(400, "more than one dns parameter")
        wire = _base64url(values[0])
        if wire is None:
            return HttpError(400, "the dns parameter is not base64url")
    elif method == "POST":
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != MEDIA_TYPE:
            return HttpError(415, f"a POST request must have Content-Type {MEDIA_TYPE}")
        wire = body
    else:
        return HttpError(405, "only GET and POST are allowed")
    if len(wire) > MAX_MESSAGE:
        return HttpError(413, f"a DNS message has at most {MAX_MESSAGE} octets")
    if len(wire) < _HEADER_SIZE:
        return HttpError(400, "the query is shorter than a DNS header")
    return wire


def _base64url(text: str) -> bytes | None:
    """Decoded base64url (RFC 4648 section 5); padding is not required (RFC 8484 section 6
    says clients leave it out), and tolerated if a client adds it anyway."""
    if not _BASE64URL.fullmatch(text):
        return None
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def max_age(reply: bytes) -> int:
    """Seconds an HTTP cache may keep `reply` (RFC 8484 section 5.1); 0 when nothing in it says
    how long it holds (an error without an SOA, a reply that does not parse).

    Read off the wire (the records' TTL fields, the SOA's MINIMUM) rather than by parsing the
    whole message with dnspython, which cost a DoH cache hit more than everything else the
    engine does for it.
    """
    try:
        return _max_age(reply)
    except (IndexError, struct.error):
        return 0  # truncated or otherwise malformed


def _max_age(wire: bytes) -> int:
    qdcount, ancount, nscount = struct.unpack_from("!HHH", wire, 4)
    position = _HEADER_SIZE
    for _ in range(qdcount):
        position = skip_name(wire, position) + 4
    smallest: int | None = None
    for index in range(ancount + nscount):
        position = skip_name(wire, position)
        rdtype, _rdclass, ttl, rdlength = struct.unpack_from("!HHIH", wire, position)
        end = position + 10 + rdlength
        if end > len(wire):
            return 0
        if index < ancount:
            smallest = ttl if smallest is None else min(smallest, ttl)
        elif smallest is not None:
            break  # an answer says it all; the authority section does not count
        elif rdtype == dns.rdatatype.SOA:
            if rdlength < 22:  # two names of at least one octet, five 32-bit fields
                return 0
            (minimum,) = struct.unpack_from("!I", wire, end - 4)
            return min(ttl, minimum)
        position = end
    return smallest or 0


#: Control frames of one kind a connection may send within `FLOOD_WINDOW` seconds; one more
#: and it ends (GOAWAY ENHANCE_YOUR_CALM). Real clients send a handful per connection.
FLOOD_FRAMES = 100
FLOOD_WINDOW = 1.0


@dataclass(slots=True)
class FrameRate:
    """A sliding window of the arrival times of one connection's SETTINGS and PING frames."""

    limit: int = FLOOD_FRAMES
    window: float = FLOOD_WINDOW
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def flooded(self, kind: str, now: float) -> bool:
        """Count one frame of `kind` at `now`; True once more than `limit` of that kind
        arrived within `window` seconds."""
        times = self._seen.get(kind)
        if times is None:
            times = self._seen[kind] = deque(maxlen=self.limit + 1)
        times.append(now)
        return len(times) > self.limit and now - times[0] < self.window
