"""Wire-format helpers that both sides of the engine need: hostile bytes in, bytes out."""

from __future__ import annotations

import dns.exception
import dns.message

MAX_MESSAGE = 65_535


def parse(wire: bytes) -> dns.message.Message | None:
    """The message, or None for bytes that are not one; hostile input never raises out of here."""
    try:
        return dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, UnicodeError, IndexError, KeyError):
        return None
