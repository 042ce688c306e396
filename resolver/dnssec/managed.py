"""The trust anchors a running resolver uses: the configured seeds, kept current by RFC 5011.

`ManagedAnchors` owns one `ManagedZone` (`rfc5011.py`) per zone of the seeds (the bundled
root anchors, or `dnssec.trust_anchor_file`) and answers the one question the validator asks,
"which keys do I trust now?" (`trust_anchors`). A zone never observed yet is trusted through
its seeds (DS or DNSKEY records, as configured); once observed, through the keys RFC 5011
holds Valid or Missing, which is what lets a resolver installed with KSK-2017 alone follow the
root to KSK-2024 and drop KSK-2017 when it is revoked.

The state file (`dnssec.trust_anchor_state`, the text of `to_text`) wins over the seeds for
the zones it holds: after a rollover the seeds are out of date by design. Lines for zones that
are no longer seeds are dropped (an operator who removed an anchor meant it). A zone whose
keys are all revoked has no anchor left: its names become indeterminate, as RFC 5011 section
2.4.2 leaves a trust point whose last key is revoked, until an operator configures a new one.

Pure: no I/O and no clock (`now` is an argument); reading and writing the file is the
daemon's (`server/anchorstate.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

import dns.name
import dns.rdataset
import dns.rrset
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.dnssec.anchors import TrustAnchors
from resolver.dnssec.budget import Budget, ValidationLimits
from resolver.dnssec.rfc5011 import ManagedZone, dump_states, load_states


class ManagedAnchors:
    """The seeds plus the RFC 5011 state of each seeded zone."""

    def __init__(
        self,
        seeds: TrustAnchors,
        state_text: str | None = None,
        source: str = "trust_anchor_state",
        limits: ValidationLimits | None = None,
    ) -> None:
        """`state_text` is the state file's content (None: no file yet); a corrupt one raises
        `rfc5011.StateFileError` naming `source` and the line, and the caller decides."""
        self.seeds = seeds
        self.limits = limits or ValidationLimits()
        zones = {zone: _seed_ds(zone, seeds) for zone in (*seeds.ds, *seeds.dnskeys)}
        loaded = load_states(state_text or "", source, list(zones.items()))
        self.zones: dict[dns.name.Name, ManagedZone] = {
            zone: managed for zone, managed in loaded.items() if zone in zones
        }
        #: What the last `observe` changed, one line per key, for the daemon's log.
        self.last_changes: tuple[str, ...] = ()

    def trust_anchors(self, negative: Iterable[dns.name.Name] = ()) -> TrustAnchors:
        """The anchors to validate with now, with the negative trust anchors `negative`."""
        ds: dict[dns.name.Name, tuple[DS, ...]] = {}
        dnskeys: dict[dns.name.Name, tuple[DNSKEY, ...]] = {}
        for zone, managed in self.zones.items():
            if managed.keys:  # observed (or read from the state file): RFC 5011 decides
                dnskeys[zone] = managed.trusted_keys()
            else:
                ds[zone] = self.seeds.ds.get(zone, ())
                dnskeys[zone] = self.seeds.dnskeys.get(zone, ())
        return TrustAnchors(
            {zone: records for zone, records in ds.items() if records},
            {zone: keys for zone, keys in dnskeys.items() if keys},
            frozenset(negative),
        )

    def manages(self, zone: dns.name.Name) -> bool:
        """Whether `zone`'s DNSKEY RRset is one to hand to `observe`."""
        return zone in self.zones

    def observe(
        self,
        zone: dns.name.Name,
        dnskey_rrset: dns.rrset.RRset,
        rrsigs: Iterable[RRSIG] | dns.rdataset.Rdataset | None,
        now: float,
    ) -> bool:
        """Feed a fetched DNSKEY RRset of `zone` to RFC 5011; True if a key changed state.

        A zone that is not a seed, or an RRset no trusted key signs, changes nothing. Each call
        has its own `Budget`: an observation costs at most a few signature checks per key.
        """
        managed = self.zones.get(zone)
        if managed is None:
            self.last_changes = ()
            return False
        before = managed.to_text()
        changes = managed.observe(dnskey_rrset, rrsigs, now, Budget(self.limits))
        changed = managed.to_text() != before
        self.last_changes = tuple(changes) if changed else ()
        return changed

    def to_text(self) -> str:
        """The state file's content (`rfc5011.dump_states`)."""
        return dump_states(self.zones[zone] for zone in sorted(self.zones))


def _seed_ds(zone: dns.name.Name, seeds: TrustAnchors) -> tuple[DS, ...]:
    """The zone's seeds as DS records: RFC 5011 starts from DS; a DNSKEY seed becomes the
    SHA-256 DS of itself, which matches exactly that key."""
    keys: tuple[DNSKEY, ...] = seeds.dnskeys.get(zone, ())
    if not keys:  # the usual seeds (the bundled root anchors are DS): no digest to make
        return tuple(seeds.ds.get(zone, ()))
    import dns.dnssec  # lazily: it loads cryptography (~8 MiB), needed only for DNSKEY seeds

    made = tuple(dns.dnssec.make_ds(zone, key, dns.dnssec.DSDigest.SHA256) for key in keys)
    return (*seeds.ds.get(zone, ()), *made)
