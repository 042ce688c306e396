"""Who serves what in the test internet, and the standard topology used by tests and demos.

The standard topology is a miniature of the real one: two root servers, two TLD servers for
`test.`, and second-level zones that each exercise one resolver path (glue, a glueless
delegation, a CNAME leaving the zone, a parent NS TTL above any sane cap, an oversized answer).
Every address is in 127.53.0.0/16, so nothing in it can route off the machine; 127.53.255.254
is reserved for spoofed datagrams (`faults.SPOOF_SOURCE_ADDRESS`) and no server may use it.

Zones for the resolver's hardening tests (bounded work, server selection), all delegated from
`test.` with glue unless said otherwise:

- `cnames.test.` (ns1.cnames.test. 127.53.6.1): `c0.cnames.test.` CNAME `c1` ... `c19` CNAME
  `c20`, and `c20.cnames.test.` A 192.0.2.20: 20 CNAMEs and one A, 21 names in one zone. The
  server chases at most `authority.MAX_CNAME_CHAIN` (16) CNAMEs per response, so a resolver
  asking for c0 gets c0..c15 and must ask again for c16 to see the rest.
- `cnames2.test.` (ns1.cnames2.test. 127.53.6.2) and `cnames.test.` together hold a cross-zone
  chain of 8 CNAMEs alternating between the zones: `hop0.cnames.test.` -> `hop1.cnames2.test.`
  -> `hop2.cnames.test.` -> `hop3.cnames2.test.` -> `hop4.cnames.test.` -> `hop5.cnames2.test.`
  -> `hop6.cnames.test.` -> `hop7.cnames2.test.` -> `hop8.cnames.test.` A 192.0.2.28. Each
  server only answers its own hops, so every link costs the resolver one more query.
- `loopa.test.` NS `ns.loopb.test.` and `loopb.test.` NS `ns.loopa.test.`, both without glue and
  without servers: a glueless delegation cycle that can never resolve.
- `manyns.test.` NS `ns0.nowhere.test.` ... `ns9.nowhere.test.`, glueless; `nowhere.test.` is
  not delegated, so the TLD says NXDOMAIN for each name server (the NXNSAttack shape).
- `deep.test.` (ns1.deep.test. 127.53.7.1) delegates `d1.deep.test.` to ns.d1.deep.test.
  127.53.7.2, which delegates `d2.d1.deep.test.` to ns.d2.d1.deep.test. 127.53.7.3, which
  answers `www.d2.d1.deep.test.` A 192.0.2.77: three delegations below the TLD.
- `slow.test.` served identically by ns1.slow.test. 127.53.8.1 and ns2.slow.test. 127.53.8.2:
  `www.slow.test.` A 192.0.2.88 and `a.slow.test.` ... `z.slow.test.` A 192.0.2.101 ... .126,
  for server-selection tests that slow one of them down.

Zones for interoperability tests (servers that misbehave the way deployed ones do):

- `dname.test.` (ns1.dname.test. 127.53.10.1): `old.dname.test.` DNAME `example.test.`, so
  `www.old.dname.test.` is `www.example.test.` (a target in another server's zone);
  `self.dname.test.` DNAME `new.dname.test.` with `www.new.dname.test.` A 192.0.2.55 (a target
  the same server answers); `long.dname.test.` DNAME a 200-octet name, so a long enough name
  below it is answered YXDOMAIN (RFC 6672 section 2.2).
- `addr.test.`: the parent's glue says ns1.addr.test. is 127.53.11.1, where the server really
  listens; the child zone itself says ns1.addr.test. A 127.53.11.2, where NOTHING listens (a
  renumbered server whose zone was not updated). `www.addr.test.` A 192.0.2.66.
- `onens.test.` (ns1.onens.test. 127.53.12.1, its only server and address): `www.onens.test.`
  A 192.0.2.67, for retransmission tests that drop one datagram (`AuthServer.drop_next`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSpec:
    """One authoritative host: its DNS name (also its log label), address and zone origins.

    For root servers the name is also what the hints file lists, so it should be the host name
    that the root zone's NS records use.
    """

    name: str
    address: str
    zones: tuple[str, ...]


ROOT_ZONE = """
$TTL 86400
.                    86400  SOA a.root-servers.test. hostmaster.root-servers.test. (
                                1 1800 900 604800 86400 )
.                    518400 NS  a.root-servers.test.
.                    518400 NS  b.root-servers.test.
a.root-servers.test. 518400 A   127.53.0.1
b.root-servers.test. 518400 A   127.53.0.2
test.                172800 NS  ns1.nic.test.
test.                172800 NS  ns2.nic.test.
ns1.nic.test.        172800 A   127.53.1.1
ns2.nic.test.        172800 A   127.53.1.2
"""


def _nowhere_ns(count: int = 10) -> str:
    """The NS records of manyns.test.: `count` names in the undelegated nowhere.test."""
    return "\n".join(
        f"manyns.test.                  172800 NS  ns{index}.nowhere.test."
        for index in range(count)
    )


TEST_ZONE = f"""
$TTL 86400
test.                         86400  SOA ns1.nic.test. hostmaster.nic.test. (
                                         1 1800 900 604800 3600 )
test.                         172800 NS  ns1.nic.test.
test.                         172800 NS  ns2.nic.test.
ns1.nic.test.                 172800 A   127.53.1.1
ns2.nic.test.                 172800 A   127.53.1.2
; The root servers' own names live in test., so that a resolver can look them up like any name.
a.root-servers.test.          518400 A   127.53.0.1
b.root-servers.test.          518400 A   127.53.0.2
example.test.                 172800 NS  ns1.example.test.
example.test.                 172800 NS  ns2.example.test.
ns1.example.test.             172800 A   127.53.2.1
ns2.example.test.             172800 A   127.53.2.2
other.test.                   172800 NS  ns1.other.test.
ns1.other.test.               172800 A   127.53.3.1
; Glueless: the name server's address is only known to other.test.
glueless.test.                172800 NS  ns.glueless-host.other.test.
; A parent-side NS TTL of 7 days, above any resolver's delegation TTL cap.
longttl.test.                 604800 NS  ns1.longttl.test.
ns1.longttl.test.             604800 A   127.53.5.1
; Long CNAME chains, inside one zone and across two.
cnames.test.                  172800 NS  ns1.cnames.test.
ns1.cnames.test.              172800 A   127.53.6.1
cnames2.test.                 172800 NS  ns1.cnames2.test.
ns1.cnames2.test.             172800 A   127.53.6.2
; A glueless delegation cycle: each zone's server is named inside the other zone.
loopa.test.                   172800 NS  ns.loopb.test.
loopb.test.                   172800 NS  ns.loopa.test.
; Ten glueless name servers in a zone that does not exist (NXNSAttack).
{_nowhere_ns()}
; Three levels of delegation below the TLD.
deep.test.                    172800 NS  ns1.deep.test.
ns1.deep.test.                172800 A   127.53.7.1
; Two servers for one zone, for server selection.
slow.test.                    172800 NS  ns1.slow.test.
slow.test.                    172800 NS  ns2.slow.test.
ns1.slow.test.                172800 A   127.53.8.1
ns2.slow.test.                172800 A   127.53.8.2
; DNAME redirections, to another zone and inside the zone.
dname.test.                   172800 NS  ns1.dname.test.
ns1.dname.test.               172800 A   127.53.10.1
; The parent's glue works; the child's own address record for its server points at nothing.
addr.test.                    172800 NS  ns1.addr.test.
ns1.addr.test.                172800 A   127.53.11.1
; One server with one address.
onens.test.                   172800 NS  ns1.onens.test.
ns1.onens.test.               172800 A   127.53.12.1
"""


def _big_txt(count: int = 40, length: int = 60) -> str:
    """TXT records whose answer (about 3 KB) cannot fit in a 1232-byte EDNS UDP payload."""
    strings = (f"record-{index:02d}-".ljust(length, "x") for index in range(count))
    return "\n".join(f'big                 3600 TXT   "{text}"' for text in strings)


EXAMPLE_ZONE = f"""
$TTL 3600
@                   3600 SOA   ns1.example.test. hostmaster.example.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
@                   3600 NS    ns2
@                   3600 MX    10 mail
ns1                 3600 A     127.53.2.1
ns2                 3600 A     127.53.2.2
www                 300  A     192.0.2.1
www                 300  AAAA  2001:db8::1
mail                3600 A     192.0.2.2
alias               600  CNAME www
chain               3600 CNAME www.other.test.
loop1               3600 CNAME loop2
loop2               3600 CNAME loop1
text                3600 TXT   "hello"
a.b.c               3600 A     192.0.2.3
{_big_txt()}
"""

OTHER_ZONE = """
$TTL 3600
@                   3600 SOA   ns1.other.test. hostmaster.other.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
ns1                 3600 A     127.53.3.1
www                 120  A     198.51.100.1
ns.glueless-host    3600 A     127.53.4.1
"""

GLUELESS_ZONE = """
$TTL 3600
@                   3600 SOA   ns.glueless-host.other.test. hostmaster.glueless.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns.glueless-host.other.test.
www                 3600 A     203.0.113.1
"""

LONGTTL_ZONE = """
$TTL 3600
@                   3600   SOA ns1.longttl.test. hostmaster.longttl.test. (
                                1 7200 3600 1209600 300 )
@                   604800 NS  ns1
ns1                 604800 A   127.53.5.1
www                 3600   A   203.0.113.2
"""


def _cname_chain(length: int = 20) -> str:
    """`c0` CNAME `c1` ... `c{length-1}` CNAME `c{length}`, which has an A record."""
    links = [f"c{index:<18} 3600 CNAME c{index + 1}" for index in range(length)]
    return "\n".join([*links, f"c{length:<18} 3600 A     192.0.2.20"])


def _hops(zone: str, other: str, parity: int, last: int = 8) -> str:
    """This zone's share of the alternating chain: hop N here is a CNAME to hop N+1 there."""
    lines = [
        f"hop{index:<16} 3600 CNAME hop{index + 1}.{other}" for index in range(parity, last, 2)
    ]
    if last % 2 == parity:
        lines.append(f"hop{last:<16} 3600 A     192.0.2.28")
    return "\n".join(lines)


CNAMES_ZONE = f"""
$TTL 3600
@                   3600 SOA   ns1.cnames.test. hostmaster.cnames.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
ns1                 3600 A     127.53.6.1
{_cname_chain()}
{_hops("cnames.test.", "cnames2.test.", 0)}
"""

CNAMES2_ZONE = f"""
$TTL 3600
@                   3600 SOA   ns1.cnames2.test. hostmaster.cnames2.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
ns1                 3600 A     127.53.6.2
{_hops("cnames2.test.", "cnames.test.", 1)}
"""

DEEP_ZONE = """
$TTL 3600
@                   3600 SOA   ns1.deep.test. hostmaster.deep.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
ns1                 3600 A     127.53.7.1
d1                  3600 NS    ns.d1
ns.d1               3600 A     127.53.7.2
"""

D1_DEEP_ZONE = """
$TTL 3600
@                   3600 SOA   ns.d1.deep.test. hostmaster.deep.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns
ns                  3600 A     127.53.7.2
d2                  3600 NS    ns.d2
ns.d2               3600 A     127.53.7.3
"""

D2_D1_DEEP_ZONE = """
$TTL 3600
@                   3600 SOA   ns.d2.d1.deep.test. hostmaster.deep.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns
ns                  3600 A     127.53.7.3
www                 3600 A     192.0.2.77
"""


def _letters() -> str:
    """`a` ... `z` at 192.0.2.101 ... 126: many distinct names that each cost one query."""
    return "\n".join(
        f"{chr(ord('a') + index)}                   300  A     192.0.2.{101 + index}"
        for index in range(26)
    )


SLOW_ZONE = f"""
$TTL 3600
@                   3600 SOA   ns1.slow.test. hostmaster.slow.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
@                   3600 NS    ns2
ns1                 3600 A     127.53.8.1
ns2                 3600 A     127.53.8.2
www                 300  A     192.0.2.88
{_letters()}
"""

#: A DNAME target of 3 x 63-octet labels plus `dname.test.`: 204 octets on the wire, so a name
#: below `long.dname.test.` with two more 60-octet labels overflows 255 when redirected.
LONG_DNAME_TARGET = ".".join(label * 63 for label in "xyz") + ".dname.test."

DNAME_ZONE = f"""
$TTL 3600
@                   3600 SOA   ns1.dname.test. hostmaster.dname.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
ns1                 3600 A     127.53.10.1
old                 3600 DNAME example.test.
self                3600 DNAME new.dname.test.
www.new             3600 A     192.0.2.55
long                3600 DNAME {LONG_DNAME_TARGET}
"""

ADDR_ZONE = """
$TTL 3600
@                   3600 SOA   ns1.addr.test. hostmaster.addr.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
; Differs from the parent's glue (127.53.11.1): nothing listens here.
ns1                 3600 A     127.53.11.2
www                 3600 A     192.0.2.66
"""

ONENS_ZONE = """
$TTL 3600
@                   3600 SOA   ns1.onens.test. hostmaster.onens.test. (
                                1 7200 3600 1209600 300 )
@                   3600 NS    ns1
ns1                 3600 A     127.53.12.1
www                 3600 A     192.0.2.67
"""

DEFAULT_ZONES: dict[str, str] = {
    ".": ROOT_ZONE,
    "test.": TEST_ZONE,
    "example.test.": EXAMPLE_ZONE,
    "other.test.": OTHER_ZONE,
    "glueless.test.": GLUELESS_ZONE,
    "longttl.test.": LONGTTL_ZONE,
    "cnames.test.": CNAMES_ZONE,
    "cnames2.test.": CNAMES2_ZONE,
    "deep.test.": DEEP_ZONE,
    "d1.deep.test.": D1_DEEP_ZONE,
    "d2.d1.deep.test.": D2_D1_DEEP_ZONE,
    "slow.test.": SLOW_ZONE,
    "dname.test.": DNAME_ZONE,
    "addr.test.": ADDR_ZONE,
    "onens.test.": ONENS_ZONE,
}

DEFAULT_SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec("a.root-servers.test.", "127.53.0.1", (".",)),
    ServerSpec("b.root-servers.test.", "127.53.0.2", (".",)),
    ServerSpec("ns1.nic.test.", "127.53.1.1", ("test.",)),
    ServerSpec("ns2.nic.test.", "127.53.1.2", ("test.",)),
    ServerSpec("ns1.example.test.", "127.53.2.1", ("example.test.",)),
    ServerSpec("ns2.example.test.", "127.53.2.2", ("example.test.",)),
    ServerSpec("ns1.other.test.", "127.53.3.1", ("other.test.",)),
    ServerSpec("ns.glueless-host.other.test.", "127.53.4.1", ("glueless.test.",)),
    ServerSpec("ns1.longttl.test.", "127.53.5.1", ("longttl.test.",)),
    ServerSpec("ns1.cnames.test.", "127.53.6.1", ("cnames.test.",)),
    ServerSpec("ns1.cnames2.test.", "127.53.6.2", ("cnames2.test.",)),
    ServerSpec("ns1.deep.test.", "127.53.7.1", ("deep.test.",)),
    ServerSpec("ns.d1.deep.test.", "127.53.7.2", ("d1.deep.test.",)),
    ServerSpec("ns.d2.d1.deep.test.", "127.53.7.3", ("d2.d1.deep.test.",)),
    ServerSpec("ns1.slow.test.", "127.53.8.1", ("slow.test.",)),
    ServerSpec("ns2.slow.test.", "127.53.8.2", ("slow.test.",)),
    ServerSpec("ns1.dname.test.", "127.53.10.1", ("dname.test.",)),
    # Listed under the parent's glue address; the child zone's 127.53.11.2 has no server.
    ServerSpec("ns1.addr.test.", "127.53.11.1", ("addr.test.",)),
    ServerSpec("ns1.onens.test.", "127.53.12.1", ("onens.test.",)),
)
