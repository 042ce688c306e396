"""Delegations: a zone, its name servers and whatever addresses we know for them.

A stub zone's delegation is configured instead: fixed server addresses (with ports) and no
NS names at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype
import dns.rrset

from resolver.cache.records import RecordCache, ZoneCut
from resolver.core.actions import Server
from resolver.core.hints import RootHints


@dataclass
class Delegation:
    """A zone cut being worked on; `addresses` grows as glueless NS names get resolved.

    `fixed` are servers configured for a stub zone, asked besides (in practice: instead of)
    any NS names' addresses; they may listen on another port than `upstream.port`.
    `configured` says the addresses came from the operator (root hints, stub zones), who may
    point them anywhere, loopback included. `from_cache` says the delegation was read from the
    cache rather than just handed over by the parent: if none of its servers works, the parent
    is worth asking again.
    """

    zone: dns.name.Name
    ns_names: tuple[dns.name.Name, ...]
    #: Read-only: `learn_addresses` replaces it (it may be the cached cut's own mapping).
    addresses: Mapping[dns.name.Name, tuple[str, ...]] = field(default_factory=dict)
    fixed: tuple[Server, ...] = ()
    configured: bool = False
    from_cache: bool = False
    #: The cached cut it was made from, while its addresses are still the cut's: what is
    #: derived from them alone (the servers to ask) is the same for every copy of the cut.
    cut: ZoneCut | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_hints(cls, hints: RootHints) -> Delegation:
        names = tuple(rdata.target for rdata in hints.ns)
        addresses = {n: hints.addresses.get(n, ()) for n in names}
        return cls(dns.name.root, names, addresses, configured=True)

    @classmethod
    def from_ns(
        cls,
        ns: dns.rrset.RRset,
        cache: RecordCache,
        glue: Iterable[dns.rrset.RRset] = (),
        *,
        from_cache: bool = False,
    ) -> Delegation:
        """The NS set with addresses from fresh glue first, then from the cache.

        Built for every referral, so each NS name is hashed once here: dnspython hashes a name
        label by label, lower-casing each, every time. (A delegation read from the cache is
        made `from_cut`, which the cache remembers.)
        """
        names = tuple(rdata.target for rdata in ns)
        glued: dict[dns.name.Name, list[str]] = {}
        for rrset in glue:
            glued.setdefault(rrset.name, []).extend(rdata.address for rdata in rrset)
        if not glued:  # the common case: a delegation from the cache
            found = {name: tuple(cache.addresses(name)) for name in names}
            return cls(ns.name, names, found, from_cache=from_cache)
        found = {}
        for name in names:
            addresses = glued.get(name)
            found[name] = tuple(addresses) if addresses else tuple(cache.addresses(name))
        for name, addresses in glued.items():  # glue for names not in the NS set, as given
            found.setdefault(name, tuple(addresses))
        return cls(ns.name, names, found, from_cache=from_cache)

    @classmethod
    def from_cut(cls, cut: ZoneCut) -> Delegation:
        """The cached cut `RecordCache.closest_cut` found. Its addresses are shared until a
        glueless lookup adds some (`learn_addresses` copies them then): most walks add none."""
        return cls(cut.zone, cut.ns_names, cut.addresses, from_cache=True, cut=cut)

    def learn_addresses(self, ns_name: dns.name.Name, addresses: tuple[str, ...]) -> None:
        """The addresses a glueless lookup found for `ns_name`."""
        self.addresses = {**self.addresses, ns_name: addresses}
        self.cut = None

    @classmethod
    def from_servers(cls, zone: dns.name.Name, servers: tuple[Server, ...]) -> Delegation:
        """A stub zone: the operator named the servers, so there is nothing to look up."""
        return cls(zone, (), {}, servers, configured=True)

    def describe(self) -> str:
        names = [str(n) for n in self.ns_names] + [s.address for s in self.fixed]
        return f"{self.zone} ({', '.join(names)})"

    __str__ = describe  # for traces, which format their arguments only when someone listens
