"""What the operator put in place of plain iteration: local data, forward zones and stub zones.

Both are read once from the `Config` when a resolver starts (a bad line or address fails then,
naming itself), and consulted for every name the iterator is about to resolve, including the
names of glueless name servers and the targets of CNAMEs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zonefile

from resolver.config import Config, ConfigError, ForwardZone, ZoneServers, parse_server_address
from resolver.core.actions import Server, TlsPeer

#: The TTL of a local record whose line gives none (Unbound uses 3600 too).
DEFAULT_LOCAL_TTL = 3600


class OverrideError(ConfigError, ValueError):
    """Local data or a forward/stub zone that cannot be used; the message names the culprit.

    A ConfigError, so the command line reports it as the one `resolver: error:` line of any
    other configuration mistake, wherever it is found (at the latest when the resolver starts).
    """


# --- local data -------------------------------------------------------------------------------


class LocalData:
    """Records answered by the resolver itself, for exactly the names they are written for.

    "Transparent", like the local-zone Unbound creates for local-data: a name with local records
    answers only from them (another type gets NODATA, a local CNAME is followed), while names
    below it, and every other name, are resolved from the internet as usual. Blocking whole
    subtrees (Unbound's "static" zones) would need an SOA and zone semantics nobody asked for.
    """

    def __init__(self, rrsets: Iterable[dns.rrset.RRset] = ()) -> None:
        self._names: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        for rrset in rrsets:
            types = self._names.setdefault(rrset.name, {})
            held = types.get(rrset.rdtype)
            if held is None:
                types[rrset.rdtype] = rrset
            else:
                held.union_update(rrset)  # dnspython keeps the smaller TTL, as RFC 2181 5.2 asks
            if dns.rdatatype.CNAME in types and len(types) > 1:
                # RFC 2181 section 10.1: an alias has no other data; which would we answer?
                raise OverrideError(f"local_data: {rrset.name} has a CNAME and other records")

    @classmethod
    def parse(cls, lines: Iterable[str]) -> LocalData:
        """One record per line in presentation format; the error names the line and its index."""
        return cls(_parse_line(index, line) for index, line in enumerate(lines))

    def __bool__(self) -> bool:
        return bool(self._names)

    def lookup(self, name: dns.name.Name) -> dict[int, dns.rrset.RRset] | None:
        """The local RRsets of `name` by type, or None if the name is not local."""
        return self._names.get(name)


def _parse_line(index: int, line: str) -> dns.rrset.RRset:
    where = f"local_data[{index}]: {line!r}"
    text = line.strip()
    if not text or text.startswith(("$", ";")):
        raise OverrideError(f"{where}: expected one record like 'router.lan. 3600 IN A 192.0.2.1'")
    try:
        rrsets = dns.zonefile.read_rrsets(
            text,
            rdclass=None,  # read the class from the line if it has one (IN if not)
            origin=dns.name.root,
            relativize=False,
            default_ttl=DEFAULT_LOCAL_TTL,
        )
    except (dns.exception.DNSException, ValueError) as error:
        reason = str(error).removeprefix("<input>:1: ")  # the position is always line 1
        raise OverrideError(f"{where}: not a valid record: {reason}") from None
    if len(rrsets) != 1 or len(rrsets[0]) != 1:
        raise OverrideError(f"{where}: expected exactly one record")
    rrset = rrsets[0]
    if rrset.rdclass != dns.rdataclass.IN:
        raise OverrideError(f"{where}: only class IN is served")
    if dns.rdatatype.is_metatype(rrset.rdtype) or rrset.rdtype == dns.rdatatype.SOA:
        raise OverrideError(f"{where}: type {dns.rdatatype.to_text(rrset.rdtype)} is not data")
    return rrset


# --- forward and stub zones -------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where names at or below `zone` go: forwarders (`recursive`, RD=1) or stub authorities."""

    zone: dns.name.Name
    servers: tuple[Server, ...]
    recursive: bool

    @property
    def kind(self) -> str:
        return "forward" if self.recursive else "stub"


class Routes:
    """The configured forward and stub zones; the most specific zone containing a name wins."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._by_zone: dict[dns.name.Name, Route] = {}
        for route in routes:
            held = self._by_zone.get(route.zone)
            if held is not None:
                kinds = " and a ".join(sorted({held.kind, route.kind}))
                raise OverrideError(f"zone {held.zone} is configured twice (as a {kinds} zone)")
            self._by_zone[route.zone] = route

    @classmethod
    def from_config(cls, config: Config) -> Routes:
        port = config.upstream.port
        return cls(
            [_route(zone, True, port) for zone in config.forward_zones]
            + [_route(zone, False, port) for zone in config.stub_zones]
        )

    def __bool__(self) -> bool:
        return bool(self._by_zone)

    def addresses(self) -> frozenset[str]:
        """Every server address the operator configured, forwarders and stub servers alike."""
        return frozenset(s.address for route in self._by_zone.values() for s in route.servers)

    def find(self, name: dns.name.Name) -> Route | None:
        """The route of the closest configured zone at or above `name`, if any."""
        if not self._by_zone:
            return None
        while True:
            route = self._by_zone.get(name)
            if route is not None or name == dns.name.root:
                return route
            name = name.parent()


def _route(zone: ZoneServers, recursive: bool, default_port: int) -> Route:
    kind = "forward" if recursive else "stub"
    try:
        name = dns.name.from_text(zone.name)
        servers = []
        tls = _tls_peer(zone)
        for text in zone.servers:
            address, port = parse_server_address(text)
            if tls is not None:  # RFC 7858 section 3.1: port 853 unless configured otherwise
                servers.append(Server(address, port or DOT_PORT, tls=tls))
            else:
                servers.append(Server(address, port or default_port))
    except (dns.exception.DNSException, ValueError) as error:
        raise OverrideError(f"{kind} zone {zone.name!r}: {error}") from None
    return Route(name, tuple(servers), recursive)


#: The DNS-over-TLS port (RFC 7858 section 3.1).
DOT_PORT = 853


def _tls_peer(zone: ZoneServers) -> TlsPeer | None:
    """How a forward zone's servers are authenticated, if it forwards over TLS."""
    if not isinstance(zone, ForwardZone) or not zone.tls:
        return None
    ca_file = None if zone.tls_ca_file is None else str(zone.tls_ca_file)
    return TlsPeer(zone.tls_name, ca_file, zone.tls_pin_sha256)
