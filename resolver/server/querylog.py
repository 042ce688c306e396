"""The optional query log: one line per client query, for operators who need to see traffic.

Off by default; when on, it costs a name decode and a buffered write per query, which is why
the line is built from the raw query and reply bytes and only when the log is enabled.

The line carries what `resolver hitrate` needs to replay the traffic: when the query arrived
(UTC, milliseconds), the client, the question, the rcode and the answer's TTL as
`resolver.hitrate.wire.summarise` reads it from the reply (the one definition of "the answer's
TTL" for the writer and the reader of the log).
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.hitrate.wire import Malformed, summarise
from resolver.server.errors import StartupError


class QueryLog:
    """Appends `time client name type rcode source milliseconds ttl` lines to a file.

    `ttl` is `-` when the reply says nothing about how long it may be cached (or there is
    none). `clock` is injected for tests that write a log of a known trace.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._logger = logging.getLogger(f"resolver.querylog.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        try:
            self._handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as error:
            raise StartupError(f"query_log: cannot open {path}: {error.strerror}") from None
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._logger.addHandler(self._handler)

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        self._handler.close()

    def record(
        self, client: str, query: bytes, reply: bytes | None, source: str, seconds: float
    ) -> None:
        name: dns.name.Name | str
        try:
            name, length = dns.name.from_wire(query, 12)
            qtype = dns.rdatatype.to_text(struct.unpack_from("!H", query, 12 + length)[0])
        except (dns.exception.DNSException, struct.error, IndexError, ValueError):
            name, qtype = "-", "-"
        rcode = dns.rcode.to_text(dns.rcode.Rcode(reply[3] & 0x0F)) if reply else "DROPPED"
        ttl = "-"
        if reply:
            try:
                lifetime = summarise(reply).ttl
            except Malformed:
                lifetime = None
            ttl = "-" if lifetime is None else str(lifetime)
        arrived = round((self._clock() - seconds) * 1000)  # milliseconds since the epoch
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(arrived // 1000))
        milliseconds = arrived % 1000
        self._logger.info(
            "%s.%03dZ %s %s %s %s %s %.3f %s",
            stamp,
            milliseconds,
            client,
            name,
            qtype,
            rcode,
            source,
            seconds * 1000,
            ttl,
        )
