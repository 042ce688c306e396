"""Client queries from the resolver's own query log (`query_log`, `--query-log`).

Each line is `time client name type rcode source milliseconds ttl` (see
`resolver.server.querylog`): the time the query arrived, with milliseconds; the rcode of the
reply (`DROPPED`: none was sent); the answer's TTL or `-`. Logs written before the TTL field
existed cannot be replayed (nothing says how long an answer lived): their lines are counted as
malformed, with a note.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

import dns.exception
import dns.rcode
import dns.rdatatype

from resolver.hitrate.pairing import Pairer

#: A line longer than this is not ours (a name is at most 255 octets, escaped at most 1,020).
MAX_LINE = 2048


def parse_time(text: str) -> float:
    """`2026-11-27T04:58:01.123Z` as seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_querylog(stream: TextIO, pairer: Pairer, name: str) -> None:
    """Every answered query of a query log, into `pairer` (already paired: one line each)."""
    notes = pairer.notes
    without_ttl = 0
    for line in stream:
        if not line.endswith("\n"):
            notes.messages.append(f"{name}: the last line is cut short; read up to there")
            break
        if len(line) > MAX_LINE:
            notes.malformed += 1
            continue
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 7:
            without_ttl += 1
            notes.malformed += 1
            continue
        if len(fields) != 8:
            notes.malformed += 1
            continue
        stamp, client, qname, qtype, rcode, _source, _milliseconds, ttl = fields
        if rcode == "DROPPED":
            notes.unanswered += 1
            continue
        try:
            when = parse_time(stamp)
            number = int(dns.rdatatype.from_text(qtype))
            code = int(dns.rcode.from_text(rcode))
            lifetime = None if ttl == "-" else int(ttl)
        except (ValueError, OverflowError, dns.exception.DNSException):
            notes.malformed += 1
            continue
        if qname == "-" or not qname.endswith(".") or (lifetime is not None and lifetime < 0):
            notes.malformed += 1
            continue
        pairer.answered(when, client, qname.lower(), number, code, lifetime, None)
    if without_ttl:
        notes.messages.append(
            f"{name}: {without_ttl} lines without the TTL field (a log written before "
            "`resolver hitrate` existed): not replayed"
        )
