"""A small scripted internet for the interop scenarios: zone data turned into authoritative servers.

`Zone` holds one zone's records; `Auth` answers from one or more zones the way an authoritative
server does (referrals below its cuts, CNAME and DNAME chasing inside its zones, wildcards,
NXDOMAIN/NODATA with the zone's SOA, REFUSED outside them). `internet` puts a root and the
`com.`/`net.`/`org.` servers in front of the scenario's own servers and returns a
`tests.handbuilt.World`, which drives the pure `Resolution` over them with no sockets. A server
returning None stands for a lost datagram.

The helpers at the end read what a resolution left behind: the authority section of an answer
and the record cache, as text a test can search.
"""

from __future__ import annotations

import dataclasses

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.records import CachedNegative
from resolver.config import Config
from resolver.core.actions import Answer
from tests.handbuilt import COM, ROOT, Server, World, name, question, rr

NET = "192.5.6.31"
ORG = "192.5.6.32"

TLD = {"com.": COM, "net.": NET, "org.": ORG}


def cfg(qmin: bool) -> Config:
    """The default configuration with QNAME minimisation on or off."""
    base = Config()
    return dataclasses.replace(
        base, upstream=dataclasses.replace(base.upstream, qname_minimisation=qmin)
    )


def soa(origin: str, ttl: int = 300, minimum: int = 300) -> str:
    """The text of an SOA record for `origin`, its timers all 1 but the negative TTL `minimum`."""
    primary = "ns." if origin == "." else f"ns.{origin}"
    mailbox = "h.root." if origin == "." else f"h.{origin}"
    return f"{origin} {ttl} SOA {primary} {mailbox} 1 1 1 1 {minimum}"


class Zone:
    """One zone's records, keyed by (owner, type), and every name that exists in it.

    `names` includes the empty non-terminals between the origin and each owner, so that a
    server can tell NODATA (the name exists) from NXDOMAIN.
    """

    def __init__(self, origin: str, records: list[str], *, add_soa: bool = True) -> None:
        self.origin = name(origin)
        self.data: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        if add_soa:
            records = [soa(origin), *records]
        for text in records:
            rrset = rr(text)
            key = (rrset.name, rrset.rdtype)
            if key in self.data:
                self.data[key].union_update(rrset)
            else:
                self.data[key] = rrset
        self.names: set[dns.name.Name] = set()
        for owner, _ in self.data:
            node = owner
            while node != self.origin and node.is_subdomain(self.origin):
                self.names.add(node)
                node = node.parent()
        self.names.add(self.origin)

    def get(self, owner: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
        return self.data.get((owner, rdtype))

    def soa(self) -> dns.rrset.RRset:
        return self.data[(self.origin, dns.rdatatype.SOA)]

    def cut_above(self, qname: dns.name.Name, qtype: int) -> dns.rrset.RRset | None:
        """The highest delegation NS set at or above `qname`, strictly below the origin.

        A DS query at the cut itself is not delegated: the parent answers it.
        """
        labels = qname.relativize(self.origin).labels
        node = self.origin
        for label in reversed(labels):
            node = dns.name.Name((label, *node.labels))
            ns = self.get(node, dns.rdatatype.NS)
            if ns is not None:
                if node == qname and qtype == dns.rdatatype.DS:
                    return None
                return ns
        return None

    def addresses_of(self, target: dns.name.Name) -> list[dns.rrset.RRset]:
        """The A and AAAA sets this zone holds for `target` (glue for a referral)."""
        found = (self.get(target, rdtype) for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA))
        return [rrset for rrset in found if rrset is not None]


def make_reply(
    query: dns.message.Message,
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
    aa: bool = True,
    ra: bool = False,
    answer: list[dns.rrset.RRset] | tuple[dns.rrset.RRset, ...] = (),
    authority: list[dns.rrset.RRset] | tuple[dns.rrset.RRset, ...] = (),
    additional: list[dns.rrset.RRset] | tuple[dns.rrset.RRset, ...] = (),
) -> dns.message.Message:
    """A reply to `query` built from RRsets (`tests.handbuilt.reply` takes record texts)."""
    response = dns.message.make_response(query)
    response.flags &= ~(dns.flags.RA | dns.flags.AA)
    if aa:
        response.flags |= dns.flags.AA
    if ra:
        response.flags |= dns.flags.RA
    response.set_rcode(rcode)
    response.answer = list(answer)
    response.authority = list(authority)
    response.additional = list(additional)
    return response


def synth(dname_rr: dns.rrset.RRset, qname: dns.name.Name) -> dns.rrset.RRset:
    """The CNAME a DNAME synthesises for `qname` (RFC 6672 section 2.2)."""
    target = qname.relativize(dname_rr.name).derelativize(dname_rr[0].target)
    return dns.rrset.from_text(qname, dname_rr.ttl, "IN", "CNAME", target.to_text())


class Auth:
    """An authoritative server for some zones; chases CNAMEs inside the zones it serves.

    `chase=False` stops after the first CNAME or DNAME step; `send_dname_cname=False` leaves out
    the CNAME a DNAME synthesises, as old servers do. `queries` records every (name, type) asked.
    """

    def __init__(self, *zones: Zone, chase: bool = True, send_dname_cname: bool = True) -> None:
        self.zones = list(zones)
        self.chase = chase
        self.send_dname_cname = send_dname_cname
        self.queries: list[tuple[str, str]] = []

    def zone_for(self, qname: dns.name.Name, qtype: int) -> Zone | None:
        """The deepest zone served here that holds `qname` (DS: the parent side of a cut)."""
        best = None
        for zone in self.zones:
            if qname.is_subdomain(zone.origin):
                if qtype == dns.rdatatype.DS and qname == zone.origin and qname != dns.name.root:
                    continue  # DS is answered from the parent side
                if best is None or len(zone.origin) > len(best.origin):
                    best = zone
        return best

    def __call__(self, query: dns.message.Message) -> dns.message.Message:
        qname, qtype = question(query)
        rdtype = dns.rdatatype.RdataType.make(qtype)
        self.queries.append((qname.to_text().lower(), dns.rdatatype.to_text(rdtype)))
        return self.respond(query, qname, qtype)

    def respond(
        self, query: dns.message.Message, qname: dns.name.Name, qtype: int
    ) -> dns.message.Message:
        """Follow `qname` through the zones served here, collecting the answer section."""
        zone = self.zone_for(qname, qtype)
        if zone is None:
            return make_reply(query, dns.rcode.REFUSED, aa=False)
        answer: list[dns.rrset.RRset] = []
        seen: set[dns.name.Name] = set()
        current = qname
        while True:
            zone = self.zone_for(current, qtype)
            if zone is None:
                break  # chain left our zones
            if current in seen:
                break
            seen.add(current)
            cut = zone.cut_above(current, qtype)
            if cut is not None:
                if answer:
                    break  # chain goes into a delegated part: stop here
                glue = [a for t in cut for a in zone.addresses_of(t.target)]
                return make_reply(query, aa=False, authority=[cut], additional=glue)
            # a DNAME above current (the highest one wins)
            dname = None
            node = current
            while node != zone.origin:
                node = node.parent()
                found_dname = zone.get(node, dns.rdatatype.DNAME)
                if found_dname is not None:
                    dname = found_dname
            if (dname is not None and qtype != dns.rdatatype.DNAME) or (
                dname is not None and current != qname
            ):
                answer.append(dname)
                cname = synth(dname, current)
                if self.send_dname_cname:
                    answer.append(cname)
                current = cname[0].target
                if not self.chase:
                    return make_reply(query, answer=answer)
                continue
            found = zone.get(current, qtype)
            if found is None and current not in zone.names:
                wildcard = self._wildcard(zone, current)
                if wildcard is not None:
                    found_wc = wildcard.get(qtype)
                    cname_wc = wildcard.get(dns.rdatatype.CNAME)
                    if found_wc is not None:
                        answer.append(_rename(found_wc, current))
                        return make_reply(query, answer=answer)
                    if cname_wc is not None and qtype != dns.rdatatype.CNAME:
                        cname = _rename(cname_wc, current)
                        answer.append(cname)
                        current = cname[0].target
                        if not self.chase:
                            return make_reply(query, answer=answer)
                        continue
                    return make_reply(query, answer=answer, authority=[zone.soa()])
            if found is not None:
                answer.append(found)
                return make_reply(query, answer=answer)
            cname_rr = zone.get(current, dns.rdatatype.CNAME)
            if cname_rr is not None and qtype != dns.rdatatype.CNAME:
                answer.append(cname_rr)
                current = cname_rr[0].target
                if not self.chase:
                    return make_reply(query, answer=answer)
                continue
            if current in zone.names:
                return make_reply(query, answer=answer, authority=[zone.soa()])
            return make_reply(query, dns.rcode.NXDOMAIN, answer=answer, authority=[zone.soa()])
        return make_reply(query, answer=answer)

    @staticmethod
    def _wildcard(zone: Zone, qname: dns.name.Name) -> dict[int, dns.rrset.RRset] | None:
        """The RRsets, by type, of the wildcard at the closest encloser of `qname`, if any."""
        node = qname
        while node != zone.origin:
            node = node.parent()
            if node in zone.names:
                break
        star = dns.name.Name((b"*", *node.labels))
        found = {rdtype: rrset for (owner, rdtype), rrset in zone.data.items() if owner == star}
        return found or None


def _rename(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """A copy of `rrset` at `owner` (a wildcard expanded for a query name)."""
    out = dns.rrset.RRset(owner, rrset.rdclass, rrset.rdtype)
    out.update(rrset)
    out.ttl = rrset.ttl
    return out


ROOT_ZONE = [
    ". 518400 NS a.root-servers.net.",
    f"a.root-servers.net. 518400 A {ROOT}",
    "com. 172800 NS a.gtld-servers.net.",
    "net. 172800 NS b.gtld-servers.net.",
    "org. 172800 NS c.gtld-servers.net.",
    f"a.gtld-servers.net. 172800 A {COM}",
    f"b.gtld-servers.net. 172800 A {NET}",
    f"c.gtld-servers.net. 172800 A {ORG}",
]


def internet(
    tld_records: dict[str, list[str]],
    servers: dict[str, Server] | None = None,
    *,
    qmin: bool = True,
) -> tuple[World, dict[str, Auth]]:
    """Root + com/net/org servers with the given TLD zone records, plus extra servers.

    Returns the world and the TLD servers by zone name (`"com."` ...).
    """
    root = Auth(Zone(".", ROOT_ZONE))
    tlds = {tld: Auth(Zone(tld, tld_records.get(tld, []))) for tld in TLD}
    all_servers: dict[str, Server] = {ROOT: root}
    for tld, address in TLD.items():
        all_servers[address] = tlds[tld]
    all_servers.update(servers or {})
    world = World(cfg(qmin), all_servers)
    return world, tlds


def delegate(zone: str, *ns: tuple[str, str | None], ttl: int = 172800) -> list[str]:
    """The parent's records delegating `zone` to (host, glue address or None) pairs."""
    out = []
    for host, addr in ns:
        out.append(f"{zone} {ttl} NS {host}")
        if addr:
            out.append(f"{host} {ttl} A {addr}")
    return out


def auth_texts(answer: Answer) -> list[str]:
    """The authority section of an answer, one record per line (`texts` does the answer)."""
    return [line for rrset in answer.authority for line in rrset.to_text().splitlines()]


def cache_lines(world: World) -> list[str]:
    """Each cached record as `rr:<record>`, each negative entry as `neg:<name> <type> <SOA>`."""
    out = []
    for owner, rdtype, entry in world.cache.export():
        if isinstance(entry, CachedNegative):
            kind = (
                "NXDOMAIN"
                if rdtype is None
                else dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))
            )
            out.append(f"neg:{owner} {kind} {entry.soa.to_text()}")
        else:
            out.extend(f"rr:{line}" for line in entry.rrset.to_text().splitlines())
    return out


def cache_mentions(world: World, needle: str) -> list[str]:
    """The `cache_lines` that contain `needle`, ignoring case."""
    return [line for line in cache_lines(world) if needle.lower() in line.lower()]
