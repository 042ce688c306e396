"""The validated-key cache: what the chain of trust has established for each zone.

One entry per name: the `KeyEntry` of the zone the name belongs to (RFC 4035 section 5): its
validated DNSKEYs, "insecure" (a proven unsigned delegation at or above it, or only
algorithms we cannot check), or a bad key (bogus, kept `bad_key_ttl` seconds, as Unbound's
key cache keeps a null key entry). A name that turned out not to be a zone cut (a secure
proof of no DS there) maps to its parent zone's entry, so the next question below it does not
ask for that DS again. Shared by every resolution of the process (it lives in the
`Context`), so a zone's keys are checked once per DNSKEY TTL, not once per question.

Bounded (least recently used out) and clocked by the caller, like the record cache.
"""

from __future__ import annotations

import dns.name

from resolver.cache.lru import ExpiringLru
from resolver.dnssec.keys import KeyEntry


class KeyCache:
    """zone name -> `KeyEntry` until the entry's `expires`, at most `maxsize` names."""

    def __init__(self, maxsize: int) -> None:
        self._entries: ExpiringLru[dns.name.Name, KeyEntry] = ExpiringLru(
            maxsize, lambda _name, entry: entry.expires
        )

    def get(self, name: dns.name.Name, now: float) -> KeyEntry | None:
        """The entry for `name` if it has not expired."""
        entry = self._entries.get(name, now)
        return entry if entry is not None and entry.expires > now else None

    def put(self, name: dns.name.Name, entry: KeyEntry, now: float) -> None:
        """Remember `entry` for `name` (the entry's own zone, or a name below it that is no
        zone cut) until `entry.expires`."""
        if entry.expires > now:
            self._entries.put(name, entry, now)

    def flush(self, name: dns.name.Name | None = None) -> None:
        """Forget everything, or the entries at and below `name` (trust anchors changed)."""
        if name is None:
            self._entries.clear()
            return
        for held, _entry in self._entries.items():
            if held.is_subdomain(name):
                self._entries.pop(held)

    def __len__(self) -> int:
        return len(self._entries.items())
