"""Delegations: a zone, its name servers and whatever addresses we know for them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype
import dns.rrset

from resolver.cache.records import RecordCache
from resolver.core.hints import RootHints
from resolver.core.iterate import ADDRESS_TYPES


@dataclass
class Delegation:
    """A zone cut being worked on; `addresses` grows as glueless NS names get resolved."""

    zone: dns.name.Name
    ns_names: tuple[dns.name.Name, ...]
    addresses: dict[dns.name.Name, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_hints(cls, hints: RootHints) -> Delegation:
        names = tuple(rdata.target for rdata in hints.ns)
        return cls(dns.name.root, names, {n: hints.addresses.get(n, ()) for n in names})

    @classmethod
    def from_ns(
        cls,
        ns: dns.rrset.RRset,
        cache: RecordCache,
        glue: Iterable[dns.rrset.RRset] = (),
    ) -> Delegation:
        """The NS set with addresses from fresh glue first, then from the cache."""
        names = tuple(rdata.target for rdata in ns)
        addresses: dict[dns.name.Name, list[str]] = {name: [] for name in names}
        for rrset in glue:
            addresses.setdefault(rrset.name, []).extend(rdata.address for rdata in rrset)
        for name in names:
            if not addresses[name]:
                for rdtype in ADDRESS_TYPES:
                    cached = cache.get_rrset(name, rdtype)
                    if cached is not None:
                        addresses[name].extend(rdata.address for rdata in cached)
        return cls(ns.name, names, {name: tuple(found) for name, found in addresses.items()})

    def describe(self) -> str:
        return f"{self.zone} ({', '.join(str(n) for n in self.ns_names)})"
