"""Wire-format helpers that both sides of the engine need: hostile bytes in, bytes out."""

from __future__ import annotations

import dns.exception
import dns.message

from resolver.engine.wireparse import from_wire

MAX_MESSAGE = 65_535


def parse(wire: bytes) -> dns.message.Message | None:
    """The message, or None for bytes that are not one; hostile input never raises out of here.

    `from_wire` builds exactly what `dns.message.from_wire` would, several times faster for the
    common message, and hands anything unusual to dnspython.
    """
    try:
        return from_wire(wire)
    except (dns.exception.DNSException, ValueError, UnicodeError, IndexError, KeyError):
        return None
