"""The optional query log: one line per client query, for operators who need to see traffic.

Off by default; when on, it costs a name decode and a buffered write per query, which is why
the line is built from the raw query and reply bytes and only when the log is enabled.
"""

from __future__ import annotations

import logging
import struct
import time
from pathlib import Path

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.server.errors import StartupError


class QueryLog:
    """Appends `time client name type rcode source milliseconds` lines to a file."""

    def __init__(self, path: Path) -> None:
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
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        self._logger.info(
            "%sZ %s %s %s %s %s %.3f", stamp, client, name, qtype, rcode, source, seconds * 1000
        )
