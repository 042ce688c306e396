"""The edns-tcp-keepalive option (RFC 7828) in a DNS-over-TLS forwarder's replies.

Our queries to a DoT forwarder carry the option empty (RFC 7828 section 3.2.1: a client may
send it only over TCP), which asks the server how long it will keep an idle connection open;
its reply says it in units of 100 ms. A pooled connection then stays open, idle, for the
smaller of our own limit and the server's (section 3.2.2: "the client MUST NOT keep an idle
connection open longer than the server's timeout"), and a TIMEOUT of 0 asks us to send nothing
more on it and close it once the queries already sent are answered (section 3.3.2).
"""

from __future__ import annotations

import struct

from resolver.engine.padding import edns_options

#: RFC 7828 section 3.1, option code 11.
KEEPALIVE = 11


def keepalive_timeout(reply: bytes) -> float | None:
    """Seconds the server will keep an idle connection open, from a reply's edns-tcp-keepalive
    option; None when the reply has none, or one without a TIMEOUT (a server must not send
    an empty one, section 3.2.2, so it is ignored like a malformed one)."""
    for code, data in edns_options(reply):
        if code == KEEPALIVE:
            if len(data) != 2:
                return None
            return int(struct.unpack("!H", data)[0]) / 10
    return None
