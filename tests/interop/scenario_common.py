"""The layout every interop scenario starts from, and the small tools the scenarios share.

`standard` builds example.com (two servers, EX1 and EX2), example.net and example.org behind the
root and TLD servers of `scenario_net.internet`; a scenario breaks one or both example.com
servers by wrapping the honest one (`Tamper`). `qmin` runs a test with QNAME minimisation on and
off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import dns.message
import dns.rcode
import pytest

from resolver.core.actions import Outcome, SendQuery, Timeout
from tests.handbuilt import Override, Server, World

from .scenario_net import Auth, Zone, delegate, internet

NX, OK, SF = dns.rcode.NXDOMAIN, dns.rcode.NOERROR, dns.rcode.SERVFAIL

EX1, EX2 = "192.0.2.53", "192.0.2.54"
NETS = "198.51.100.53"
ORGS = "203.0.113.53"
EVIL = "6.6.6.6"

EX_BASE = [
    "example.com. 3600 NS ns1.example.com.",
    "example.com. 3600 NS ns2.example.com.",
    f"ns1.example.com. 3600 A {EX1}",
    f"ns2.example.com. 3600 A {EX2}",
    "example.com. 3600 MX 10 mail.example.com.",
    "www.example.com. 300 A 192.0.2.1",
    "mail.example.com. 300 A 192.0.2.2",
    'txt.example.com. 300 TXT "hello"',
    "a.b.c.example.com. 300 A 192.0.2.3",
    "_sip._tcp.example.com. 300 SRV 0 0 5060 sip.example.com.",
    "alias.example.com. 300 CNAME www.example.com.",
]
NET_BASE = [
    "example.net. 3600 NS ns.example.net.",
    f"ns.example.net. 3600 A {NETS}",
    "www.example.net. 300 A 198.51.100.1",
]
ORG_BASE = [
    "example.org. 3600 NS ns.example.org.",
    f"ns.example.org. 3600 A {ORGS}",
    "www.example.org. 300 A 203.0.113.1",
]

WWW = "www.example.com. 300 IN A 192.0.2.1"

#: sub.example.com., delegated from example.com. to its own server at SUB: the records example.com
#: needs for the cut, and `sub_server` for the child.
SUB = "192.0.2.77"
SUB_DELEGATION = [
    "sub.example.com. 3600 NS ns.sub.example.com.",
    f"ns.sub.example.com. 3600 A {SUB}",
]

#: A misbehaving example.com server: given the query and the honest server, it returns its own
#: reply (often the honest one, altered) or None for a lost datagram.
Tamper = Callable[[dns.message.Message, Auth], dns.message.Message | None]


def tld_records(
    ex_ns: Iterable[tuple[str, str | None]] | None = None,
    extra_com: Iterable[str] = (),
    extra_net: Iterable[str] = (),
    extra_org: Iterable[str] = (),
) -> dict[str, list[str]]:
    """The TLD zones' records: the three delegations (example.com's NS set `ex_ns`) and extras."""
    ex_ns = ex_ns if ex_ns is not None else (("ns1.example.com.", EX1), ("ns2.example.com.", EX2))
    return {
        "com.": [*delegate("example.com.", *ex_ns), *extra_com],
        "net.": [*delegate("example.net.", ("ns.example.net.", NETS)), *extra_net],
        "org.": [*delegate("example.org.", ("ns.example.org.", ORGS)), *extra_org],
    }


def standard(
    qmin: bool,
    ex_extra: Iterable[str] = (),
    *,
    ex1: Tamper | None = None,
    ex2: Tamper | None = None,
    net_extra: Iterable[str] = (),
    org_extra: Iterable[str] = (),
    tlds: dict[str, list[str]] | None = None,
    servers: dict[str, Server] | None = None,
) -> World:
    """The standard world, with extra example.com/net/org records, TLD zones and servers.

    `ex1`/`ex2` replace the example.com server at that address with a `Tamper` around the honest
    one; `servers` replaces or adds whole servers by address.
    """
    exa = Auth(Zone("example.com.", [*EX_BASE, *ex_extra]))
    neta = Auth(Zone("example.net.", [*NET_BASE, *net_extra]))
    orga = Auth(Zone("example.org.", [*ORG_BASE, *org_extra]))
    by_address: dict[str, Server] = {
        EX1: _tampered(exa, ex1),
        EX2: _tampered(exa, ex2),
        NETS: neta,
        ORGS: orga,
    }
    by_address.update(servers or {})
    world, _ = internet(tlds or tld_records(), by_address, qmin=qmin)
    return world


def _tampered(honest: Auth, tamper: Tamper | None) -> Server:
    if tamper is None:
        return honest
    return lambda query: tamper(query, honest)


def sub_server() -> Auth:
    """The server of sub.example.com. (at SUB; example.com needs SUB_DELEGATION)."""
    return Auth(
        Zone("sub.example.com.", [*SUB_DELEGATION, "www.sub.example.com. 300 A 192.0.2.78"])
    )


def lose_first(count: int, *addresses: str) -> Override:
    """A `World.override` that loses the first `count` datagrams sent to any of `addresses`."""
    lost = 0

    def drop(action: SendQuery) -> Outcome | None:
        nonlocal lost
        if action.server.address in addresses and lost < count:
            lost += 1
            return Timeout()
        return None

    return drop


def prefer_bad(world: World, bad: str, good: str) -> None:
    """Make the resolver ask `bad` first: a measured RTT for the good one, none for the bad."""
    world.context.servers.record_rtt(good, 0.5)


def asked(world: World, address: str) -> list[tuple[str, str, str, bool]]:
    """Every query sent to `address`, as (address, name, type, tcp) entries of `World.log`."""
    return [entry for entry in world.log if entry[0] == address]


qmin = pytest.mark.parametrize("qmin", [True, False], ids=["qmin", "noqmin"])
