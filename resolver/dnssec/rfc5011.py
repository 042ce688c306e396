"""RFC 5011 automated updates of trust anchors, as a pure state machine.

Each time the resolver fetches a managed zone's DNSKEY RRset (the root's, in practice) it
hands it to `ManagedZone.observe` with the time. A new KSK (SEP flag) seen in an RRset signed
by a trusted key waits in AddPend for the 30-day add hold-down, and must still be there when
it ends, before it becomes Valid (RFC 5011 2.4.1); a trusted key that disappears is Missing
(still trusted); a key published with the REVOKE bit (0x0080) and signing the RRset itself
is Revoked at once, and forgotten (Removed) after the remove hold-down (30 days; section 2.4.2).
The starting point is the configured anchors (DS records, as the bundled root anchors): the
keys they match become Valid on the first observation.

`to_text`/`load_states` serialise the state for `trust_anchor_state`: one line per key, the
DNSKEY in zone-file syntax so an operator can read it. Writing the file atomically is the
caller's job; this module does no I/O and reads no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.dnssec.budget import Budget
from resolver.dnssec.keys import ds_matches
from resolver.dnssec.verdict import Trace
from resolver.dnssec.verify import REVOKE_FLAG, SEP_FLAG, describe_key, verify_rrset

DAY = 86400
ADD_HOLD_DOWN = 30 * DAY  # RFC 5011 section 2.4.1
REMOVE_HOLD_DOWN = 30 * DAY  # RFC 5011 section 2.4.2


class KeyState(Enum):
    ADDPEND = "AddPend"
    VALID = "Valid"
    MISSING = "Missing"
    REVOKED = "Revoked"


class StateFileError(ValueError):
    """A `trust_anchor_state` file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class TrackedKey:
    """One KSK with its state; `since` is when it entered the state (wall-clock seconds)."""

    key: DNSKEY  # as published, without the REVOKE bit
    state: KeyState
    since: float

    @property
    def trusted(self) -> bool:
        return self.state in (KeyState.VALID, KeyState.MISSING)


def _unrevoked(key: DNSKEY) -> bytes:
    """The identity of a key across revocation: its RDATA without the REVOKE bit."""
    return key.replace(flags=key.flags & ~REVOKE_FLAG).to_digestable()


class ManagedZone:
    """The RFC 5011 state of one zone's trust anchors."""

    def __init__(
        self,
        zone: dns.name.Name,
        seed_ds: Iterable[DS] = (),
        keys: Iterable[TrackedKey] = (),
        add_hold_down: int = ADD_HOLD_DOWN,
        remove_hold_down: int = REMOVE_HOLD_DOWN,
    ) -> None:
        self.zone = zone
        self.seed_ds = tuple(seed_ds)
        self.keys: dict[bytes, TrackedKey] = {_unrevoked(t.key): t for t in keys}
        self.add_hold_down = add_hold_down
        self.remove_hold_down = remove_hold_down

    def trusted_keys(self) -> tuple[DNSKEY, ...]:
        """The keys to validate the zone's DNSKEY RRset with (Valid and Missing)."""
        return tuple(t.key for t in self.keys.values() if t.trusted)

    def state_of(self, key: DNSKEY) -> KeyState | None:
        tracked = self.keys.get(_unrevoked(key))
        return tracked.state if tracked else None

    def observe(
        self,
        dnskeys: dns.rrset.RRset,
        rrsigs: Iterable[RRSIG] | dns.rdataset.Rdataset | None,
        now: float,
        budget: Budget,
        trace: Trace | None = None,
    ) -> list[str]:
        """Update the states from a fetched DNSKEY RRset; returns what changed (for the log).

        Nothing changes unless a trusted key (or, at first, a seed DS) signs the RRset: an
        attacker cannot start a hold-down with keys of its own (RFC 5011 section 2.2).
        """
        trace = trace or Trace()
        published = [key for key in dnskeys if isinstance(key, DNSKEY)]
        changes: list[str] = []
        trusted = list(self.trusted_keys())
        if not self.keys:
            trusted = [
                k for k in published if any(ds_matches(d, self.zone, k) for d in self.seed_ds)
            ]
        if not verify_rrset(dnskeys, rrsigs, self.zone, trusted, now, budget, trace).secure:
            return ["DNSKEY RRset not signed by a trusted key: no update"]
        if not self.keys:
            for key in trusted:
                self.keys[_unrevoked(key)] = TrackedKey(key, KeyState.VALID, now)
                changes.append(f"{describe_key(key)}: Valid (configured anchor)")
        seen: set[bytes] = set()
        for key in published:
            if not key.flags & SEP_FLAG:
                continue
            ident = _unrevoked(key)
            seen.add(ident)
            tracked = self.keys.get(ident)
            if key.flags & REVOKE_FLAG:
                if tracked is not None and tracked.state is not KeyState.REVOKED:
                    signed = verify_rrset(dnskeys, rrsigs, self.zone, [key], now, budget, trace)
                    if signed.secure:
                        self.keys[ident] = TrackedKey(tracked.key, KeyState.REVOKED, now)
                        changes.append(f"{describe_key(tracked.key)}: Revoked")
                continue
            if tracked is None:
                self.keys[ident] = TrackedKey(key, KeyState.ADDPEND, now)
                changes.append(f"{describe_key(key)}: AddPend (hold-down starts)")
            elif tracked.state is KeyState.ADDPEND and now - tracked.since >= self.add_hold_down:
                self.keys[ident] = replace(tracked, state=KeyState.VALID, since=now)
                changes.append(f"{describe_key(key)}: Valid (hold-down over)")
            elif tracked.state is KeyState.MISSING:
                self.keys[ident] = replace(tracked, state=KeyState.VALID, since=now)
                changes.append(f"{describe_key(key)}: Valid (back)")
        for ident, tracked in list(self.keys.items()):
            if ident in seen and tracked.state is not KeyState.REVOKED:
                continue
            if tracked.state is KeyState.ADDPEND:
                del self.keys[ident]  # gone before its hold-down ended: forget it
                changes.append(f"{describe_key(tracked.key)}: removed while pending")
            elif tracked.state is KeyState.VALID:
                self.keys[ident] = replace(tracked, state=KeyState.MISSING, since=now)
                changes.append(f"{describe_key(tracked.key)}: Missing")
            elif tracked.state is KeyState.REVOKED and now - tracked.since >= self.remove_hold_down:
                del self.keys[ident]
                changes.append(f"{describe_key(tracked.key)}: Removed")
        for change in changes:
            trace.add("RFC 5011 %s: %s", self.zone, change)
        return changes

    def to_text(self) -> str:
        """One line per key: `zone state since flags protocol algorithm key`."""
        lines = []
        for tracked in sorted(self.keys.values(), key=lambda t: t.key.to_digestable()):
            lines.append(
                f"{self.zone} {tracked.state.value} {int(tracked.since)} {tracked.key.to_text()}"
            )
        return "".join(line + "\n" for line in lines)


def dump_states(zones: Iterable[ManagedZone]) -> str:
    """The whole `trust_anchor_state` file."""
    return "; RFC 5011 trust anchor state: zone state since DNSKEY\n" + "".join(
        zone.to_text() for zone in zones
    )


def load_states(
    text: str, source: str, seeds: Sequence[tuple[dns.name.Name, Sequence[DS]]] = ()
) -> dict[dns.name.Name, ManagedZone]:
    """Read a state file; zones in `seeds` with no line yet start from their DS anchors."""
    zones: dict[dns.name.Name, ManagedZone] = {name: ManagedZone(name, ds) for name, ds in seeds}
    states = {state.value.lower(): state for state in KeyState}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        fields = line.split(None, 3)
        if len(fields) != 4:
            raise StateFileError(f"{where}: expected 'zone state since DNSKEY'")
        zone_text, state_text, since_text, key_text = fields
        state = states.get(state_text.lower())
        if state is None:
            raise StateFileError(f"{where}: unknown state {state_text!r}")
        try:
            zone = dns.name.from_text(zone_text)
            since = float(since_text)
            key = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, key_text)
        except (dns.exception.DNSException, ValueError) as error:
            raise StateFileError(f"{where}: {error}") from None
        if not math.isfinite(since):
            raise StateFileError(f"{where}: bad time {since_text!r}")
        assert isinstance(key, DNSKEY)
        managed = zones.setdefault(zone, ManagedZone(zone))
        managed.keys[_unrevoked(key)] = TrackedKey(key, state, since)
    return zones
