"""Who serves what in the test internet, and the standard topology used by tests and demos.

The standard topology is a miniature of the real one: two root servers, two TLD servers for
`test.`, and second-level zones that each exercise one resolver path (glue, a glueless
delegation, a CNAME leaving the zone, a parent NS TTL above any sane cap, an oversized answer).
Every address is in 127.53.0.0/16, so nothing in it can route off the machine.
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

TEST_ZONE = """
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

DEFAULT_ZONES: dict[str, str] = {
    ".": ROOT_ZONE,
    "test.": TEST_ZONE,
    "example.test.": EXAMPLE_ZONE,
    "other.test.": OTHER_ZONE,
    "glueless.test.": GLUELESS_ZONE,
    "longttl.test.": LONGTTL_ZONE,
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
)
