"""EDNS(0) padding of replies to clients on encrypted transports (RFC 7830, RFC 8467).

Over TLS or HTTPS the length of a message is what an observer still sees, and it says a lot
about the name asked. RFC 8467 section 4.1 recommends the block-length strategy: a query padded
to a multiple of 128 octets, a response to a multiple of 468. A responder pads only when the
query carried a Padding option (RFC 7830 section 4: "Responders MUST pad ... if the query
included the Padding option"), and only over an encrypted transport: padding clear text hides
nothing and costs bandwidth.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import dns.edns
import dns.exception
import dns.message

from resolver.cache.packets import skip_name

#: RFC 8467 section 4.1: responses padded to a multiple of this many octets.
RESPONSE_BLOCK = 468
PADDING = int(dns.edns.OptionType.PADDING)
_OPT = 41
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, TTL, RDLENGTH


def edns_options(message: bytes) -> Iterator[tuple[int, bytes]]:
    """(code, data) of each option in a message's OPT record, read from its bytes without
    parsing the rest: cheap enough for every query and reply of an encrypted transport.

    Only the additional section is looked at (where OPT lives); whatever is malformed ends
    the options (the engine answers or judges such a message on its own).
    """
    try:
        _, _, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(message)
        offset = _HEADER.size
        for _ in range(qdcount):
            offset = skip_name(message, offset) + 4
        for index in range(ancount + nscount + arcount):
            offset = skip_name(message, offset)
            rtype, _, _, rdlength = _RR_FIXED.unpack_from(message, offset)
            offset += _RR_FIXED.size
            end = offset + rdlength
            if end > len(message):
                return
            if rtype == _OPT and index >= ancount + nscount:
                while offset + 4 <= end:
                    code, length = struct.unpack_from("!HH", message, offset)
                    if offset + 4 + length > end:
                        return
                    yield code, message[offset + 4 : offset + 4 + length]
                    offset += 4 + length
            offset = end
    except (IndexError, struct.error):
        return


def asks_for_padding(query: bytes) -> bool:
    """Whether a query's OPT record carries a Padding option; anything malformed is "no":
    such a query gets FORMERR, which needs no padding."""
    return any(code == PADDING for code, _ in edns_options(query))


def pad_reply(reply: bytes, block: int = RESPONSE_BLOCK) -> bytes:
    """`reply` with a Padding option that makes its length a multiple of `block` octets.

    A reply without an OPT record (the query had none, or only a header could be rendered) is
    returned as it is: padding lives in OPT, and a client that padded sent EDNS. An existing
    Padding option is replaced, never added twice.
    """
    try:
        message = dns.message.from_wire(reply)
    except (dns.exception.DNSException, ValueError, UnicodeError, IndexError, KeyError):
        return reply
    if message.edns < 0:
        return reply
    options = [option for option in message.options if option.otype != PADDING]
    message.use_edns(message.edns, message.ednsflags, message.payload, options=options, pad=block)
    try:
        # The stream's limit, not the EDNS payload size use_edns set: padded replies go over
        # TCP, TLS or HTTPS, where 1232 octets is no limit (a larger one was sent unpadded).
        return message.to_wire(max_size=65535)
    except dns.exception.DNSException:
        return reply
