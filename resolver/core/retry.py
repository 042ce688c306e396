"""Asking again when a response validates bogus (Unbound's val_blacklist and retry).

A signed zone may have one lame or stale server that serves an unsigned or broken copy with
AA. Its response validates bogus; another server of the zone would have given a secure one.
So, as Unbound does, the question puts the server on its `Work.avoid` list (server selection
skips it) and asks again, at most `MAX_RETRIES` more times, before the verdict stands. A bad
DS or DNSKEY response is also forgotten (`blame`), so the next fetch is not answered by the
cache, and its server is avoided for that key fetch only (a DS walk below a zone for unsigned
data can find a sound server's proof wanting); an answer's entries are replaced by the next
response, or stay as the bogus verdict for `bogus_ttl` when no other server answers. Cached
data that turns out bogus is asked again the same way (there is no server to avoid then).

The loops themselves sit where a step or a key fetch is obtained: `Resolution._obtained` for
answers, `Validator._keys_with_retry` for DS and DNSKEY responses.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype

from resolver.core.work import Work

#: Attempts after the first, as Unbound's VAL_MAX_RESTART_COUNT (5 attempts in all).
MAX_RETRIES = 4


def avoid(work: Work, name: dns.name.Name, rdtype: int, server: str | None, depth: int) -> None:
    """The response for (name, rdtype) from `server` (None: from the cache) was bogus: avoid
    the server for the rest of the question."""
    what = f"{name} {dns.rdatatype.RdataType.to_text(rdtype)}"
    if server is None:
        work.say(depth, "  dnssec: cached {} is bogus; asking again", what)
        return
    work.avoid.add(server)
    work.say(depth, "  dnssec: {} from {} is bogus; asking another server", what, server)


def blame(work: Work, name: dns.name.Name, rdtype: int, server: str | None, depth: int) -> None:
    """As `avoid`, and forget what the response left in the record cache for (name, rdtype)."""
    work.ctx.cache.forget(name, rdtype)
    avoid(work, name, rdtype, server, depth)
