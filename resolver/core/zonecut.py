"""Delegations: a zone, its name servers and whatever addresses we know for them.

A stub zone's delegation is configured instead: fixed server addresses (with ports) and no
NS names at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype
import dns.rrset

from resolver.cache.records import RecordCache
from resolver.core.actions import Server
from resolver.core.hints import RootHints


@dataclass
class Delegation:
    """A zone cut being worked on; `addresses` grows as glueless NS names get resolved.

    `fixed` are servers configured for a stub zone, asked besides (in practice: instead of)
    any NS names' addresses; they may listen on another port than `upstream.port`.
    """

    zone: dns.name.Name
    ns_names: tuple[dns.name.Name, ...]
    addresses: dict[dns.name.Name, tuple[str, ...]] = field(default_factory=dict)
    fixed: tuple[Server, ...] = ()

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
                addresses[name] = cache.addresses(name)
        return cls(ns.name, names, {name: tuple(found) for name, found in addresses.items()})

    @classmethod
    def from_servers(cls, zone: dns.name.Name, servers: tuple[Server, ...]) -> Delegation:
        """A stub zone: the operator named the servers, so there is nothing to look up."""
        return cls(zone, (), {}, servers)

    def describe(self) -> str:
        names = [str(n) for n in self.ns_names] + [s.address for s in self.fixed]
        return f"{self.zone} ({', '.join(names)})"
