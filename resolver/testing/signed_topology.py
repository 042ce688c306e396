"""The signed test internet: a DNSSEC-signed root, TLD `sec.` and second-level zones, each
exercising one validation path, plus zones broken in one precise way each.

Opt-in: `TestInternet.signed()` builds it; `TestInternet.default()` and its tests are untouched.
Its servers listen on 127.53.100.0/24, so both internets can run at once. Keys are fixed
(`signing.make_key`), so `trust_anchor_text()` (the root's KSK as a DNSKEY line) and
`root_ds()` are the same in every run. Every zone below `sec.` is served by one host,
ns.zones.sec. (127.53.100.3); `insecure.optout.sec.` by ns.insecure.optout.sec. (127.53.100.4).

Zones (algorithm 15 Ed25519 and NSEC unless said otherwise):

- `.` and `sec.`: signed, NSEC; the root's DS for `sec.` and `sec.`'s DS for each signed child.
- `nsec.sec.`: `www` A/AAAA, wildcard `*.wild` A 192.0.2.40 (and nothing else, so `x.wild`
  AAAA is a wildcard NODATA), `a.b` A (`b` is an empty non-terminal), `chain` CNAME
  `hop.unsigned.sec.`, which is a CNAME to `back.nsec3.sec.` A 192.0.2.45: signed, unsigned
  and signed again.
- `nsec3.sec.`: algorithm 13 (ECDSA P-256), NSEC3 (0 extra iterations, no salt): the same
  names as `nsec.sec.`, and `back` A 192.0.2.45.
- `rsa.sec.`: algorithm 8 (RSASHA256), NSEC.
- `unsigned.sec.`: not signed, no DS: `sec.`'s NSEC at the cut proves it insecure.
- `optout.sec.`: NSEC3 with opt-out, delegating `insecure.optout.sec.` (unsigned, no DS and,
  opt-out, no NSEC3 of its own).

Broken on purpose (each `www` A 192.0.2.1 is what a resolver is asked):

| zone | what is wrong |
| --- | --- |
| `expired.sec.` | every signature expired in 2022 |
| `notyet.sec.` | every signature starts in 2034 |
| `tampered.sec.` | `www` A changed to 192.0.2.99 after signing |
| `badds.sec.` | the DS in `sec.` matches no DNSKEY of the zone |
| `nodnskeysig.sec.` | the DNSKEY set has no RRSIG |
| `missingalgo.sec.` | the DS set names algorithms 15 and 13; nothing is signed with 13 |
| `nosig.sec.` | the RRSIG of `www` A is missing |
| `iter500.sec.` | NSEC3 with 500 iterations (RFC 9276: insecure, EDE 27) |
| `unknownalgo.sec.` | signed only with algorithm 100 (unassigned): insecure, EDE 1 |
| `unknowndigest.sec.` | its only DS has digest type 100 (unassigned): insecure, EDE 2 |
| `keytrap.sec.` | 20 DNSKEYs sharing one key tag, `www` A with 20 RRSIGs of that tag, none valid |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rrset
import dns.zone

from resolver.testing import signing
from resolver.testing.signing import Nsec3, Signing, ZoneKey, make_key
from resolver.testing.topology import ServerSpec

ROOT_ADDRESS = "127.53.100.1"
TLD_ADDRESS = "127.53.100.2"
ZONES_ADDRESS = "127.53.100.3"
INSECURE_ADDRESS = "127.53.100.4"
#: How many DNSKEYs share the key tag in `keytrap.sec.`, and how many RRSIGs `www` A has.
KEYTRAP_KEYS = 20
KEYTRAP_SIGNATURES = 20


def _soa(zone: str, ns: str) -> str:
    return f"""
$TTL 3600
@      3600 SOA {ns} hostmaster.{zone} 1 7200 3600 1209600 300
@      3600 NS  {ns}
"""


ROOT = f"""
$TTL 86400
.                    86400  SOA a.root-servers.sec. hostmaster.root-servers.sec. (
                                1 1800 900 604800 86400 )
.                    518400 NS  a.root-servers.sec.
a.root-servers.sec.  518400 A   {ROOT_ADDRESS}
sec.                 172800 NS  ns1.nic.sec.
ns1.nic.sec.         172800 A   {TLD_ADDRESS}
"""

#: Second-level zones served by ns.zones.sec.
CHILDREN = (
    "nsec",
    "nsec3",
    "rsa",
    "unsigned",
    "optout",
    "expired",
    "notyet",
    "tampered",
    "badds",
    "nodnskeysig",
    "missingalgo",
    "nosig",
    "iter500",
    "unknownalgo",
    "unknowndigest",
    "keytrap",
)


def _tld(extra: tuple[str, ...] = ()) -> str:
    lines = [
        _soa("nic.sec.", "ns1.nic.sec.").replace("hostmaster.nic.sec.", "hostmaster.nic.sec."),
        f"ns1.nic        172800 A  {TLD_ADDRESS}",
        f"a.root-servers 518400 A  {ROOT_ADDRESS}",
        f"ns.zones       172800 A  {ZONES_ADDRESS}",
    ]
    lines += [f"{child:<14} 172800 NS ns.zones.sec." for child in (*CHILDREN, *extra)]
    return "\n".join(lines) + "\n"


_COMMON = """
www    300  A     192.0.2.1
www    300  AAAA  2001:db8::1
a.b    300  A     192.0.2.3
*.wild 300  A     192.0.2.40
"""

ZONES: dict[str, str] = {
    ".": ROOT,
    "sec.": _tld(),
    "nsec.sec.": _soa("nsec.sec.", "ns.zones.sec.")
    + _COMMON
    + "chain  300 CNAME hop.unsigned.sec.\n",
    "nsec3.sec.": _soa("nsec3.sec.", "ns.zones.sec.") + _COMMON + "back 300 A 192.0.2.45\n",
    "unsigned.sec.": _soa("unsigned.sec.", "ns.zones.sec.")
    + "www 300 A 192.0.2.1\nhop 300 CNAME back.nsec3.sec.\n",
    "optout.sec.": _soa("optout.sec.", "ns.zones.sec.")
    + f"www 300 A 192.0.2.1\ninsecure 3600 NS ns.insecure\nns.insecure 3600 A {INSECURE_ADDRESS}\n",
    "insecure.optout.sec.": _soa("insecure.optout.sec.", "ns.insecure.optout.sec.")
    + f"ns 3600 A {INSECURE_ADDRESS}\nwww 300 A 192.0.2.1\n",
}
for _child in CHILDREN:
    ZONES.setdefault(f"{_child}.sec.", _soa(f"{_child}.sec.", "ns.zones.sec.") + _COMMON)

SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec("a.root-servers.sec.", ROOT_ADDRESS, (".",)),
    ServerSpec("ns1.nic.sec.", TLD_ADDRESS, ("sec.",)),
    ServerSpec("ns.zones.sec.", ZONES_ADDRESS, tuple(f"{child}.sec." for child in CHILDREN)),
    ServerSpec("ns.insecure.optout.sec.", INSECURE_ADDRESS, ("insecure.optout.sec.",)),
)


Zones = Mapping[dns.name.Name, dns.zone.Zone]
Breakage = Callable[[dns.zone.Zone], None]


@dataclass
class Plan:
    """How one zone is signed, what its parent publishes as DS, and how it is then broken."""

    signing: Signing | None
    #: (key, digest type) of each DS in the parent; by default each signing key, SHA-256.
    ds: list[tuple[ZoneKey, int]] | None = None
    breakage: list[Breakage] = field(default_factory=list)


def _key(zone: str, algorithm: int = signing.ED25519, seed: str = "") -> ZoneKey:
    return make_key(zone, algorithm, signing.KSK_FLAGS, seed)


def _www(zone: dns.zone.Zone) -> dns.name.Name:
    assert zone.origin is not None
    return dns.name.Name((b"www", *zone.origin.labels))


def _tamper(zone: dns.zone.Zone) -> None:
    """Change `www` A after signing: its RRSIG no longer matches."""
    rdataset = zone.find_rdataset(_www(zone), dns.rdatatype.A)
    rdataset.clear()
    rdataset.add(dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, "192.0.2.99"), 300)


def _drop_dnskey_rrsig(zone: dns.zone.Zone) -> None:
    assert zone.origin is not None
    signing.remove_node_type(zone, zone.origin, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)


def _drop_www_rrsig(zone: dns.zone.Zone) -> None:
    signing.remove_node_type(zone, _www(zone), dns.rdatatype.RRSIG, dns.rdatatype.A)


def _unknown_algorithm(zone: dns.zone.Zone) -> None:
    """Replace every RRSIG by one of the algorithm-100 key's, whose signature is noise."""
    assert zone.origin is not None
    key = _key(zone.origin.to_text(), signing.UNASSIGNED_ALGORITHM)
    for name, node in list(zone.nodes.items()):
        for rdataset in list(node.rdatasets):
            if rdataset.rdtype != dns.rdatatype.RRSIG:
                continue
            labels = len(name) - 1 - (1 if name.labels[0] == b"*" else 0)
            fake = signing.fake_rrsig(zone.origin, rdataset.covers, labels, rdataset.ttl, key, 0)
            rdataset.clear()
            rdataset.add(fake, rdataset.ttl)


def _keytrap(zone: dns.zone.Zone) -> None:
    """KeyTrap (CVE-2023-50387): colliding DNSKEYs (signed validly, so the key set passes)
    and `www` A signed only by noise under their common tag."""
    assert zone.origin is not None
    key = _key(zone.origin.to_text())
    colliders = signing.colliding_keys(key, KEYTRAP_KEYS - 1)
    dnskeys = zone.find_rdataset(zone.origin, dns.rdatatype.DNSKEY)
    for collider in colliders:
        dnskeys.add(collider.dnskey, dnskeys.ttl)
    signing.remove_node_type(zone, zone.origin, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    signing.sign_rdataset(zone, zone.origin, dnskeys, [key])
    _drop_www_rrsig(zone)
    www = _www(zone)
    labels = len(www) - 1
    fakes = [
        signing.fake_rrsig(zone.origin, dns.rdatatype.A, labels, 300, key, index)
        for index in range(KEYTRAP_SIGNATURES)
    ]
    signing.add_rrsigs(zone, www, dns.rdatatype.A, 300, fakes)


#: The zone of `with_bench`: many names, ECDSA P-256 and NSEC, for benchmarks.
BENCH_ZONE = "bench.sec."


def with_bench(records: str) -> tuple[dict[str, str], tuple[ServerSpec, ...]]:
    """The zones and servers of the signed internet plus `bench.sec.` holding `records`
    (zone-file lines; its SOA has TTL 3600 and MINIMUM 300), served by ns.zones.sec. and
    signed like `nsec3.sec.` but with NSEC: for the cost of validation and aggressive NSEC."""
    zones = dict(ZONES)
    zones["sec."] = _tld(("bench",))
    zones[BENCH_ZONE] = _soa(BENCH_ZONE, "ns.zones.sec.") + records
    servers = tuple(
        ServerSpec(spec.name, spec.address, (*spec.zones, BENCH_ZONE))
        if spec.address == ZONES_ADDRESS
        else spec
        for spec in SERVERS
    )
    return zones, servers


def plans() -> dict[str, Plan]:
    """Every zone's plan; zones not listed (`unsigned.sec.`, `insecure.optout.sec.`) are left
    unsigned and get no DS."""
    plain = {
        "nsec.sec.": Plan(Signing([_key("nsec.sec.")])),
        "nsec3.sec.": Plan(
            Signing([_key("nsec3.sec.", signing.ECDSAP256SHA256)], nsec3=Nsec3(0, b""))
        ),
        "rsa.sec.": Plan(Signing([_key("rsa.sec.", signing.RSASHA256)])),
        "optout.sec.": Plan(Signing([_key("optout.sec.")], nsec3=Nsec3(0, b"", opt_out=True))),
        "expired.sec.": Plan(
            Signing([_key("expired.sec.")], inception=1_500_000_000, expiration=1_650_000_000)
        ),
        "notyet.sec.": Plan(
            Signing([_key("notyet.sec.")], inception=2_050_000_000, expiration=2_100_000_000)
        ),
        "tampered.sec.": Plan(Signing([_key("tampered.sec.")]), breakage=[_tamper]),
        "badds.sec.": Plan(
            Signing([_key("badds.sec.")]), ds=[(_key("badds.sec.", seed="another key"), 2)]
        ),
        "nodnskeysig.sec.": Plan(
            Signing([_key("nodnskeysig.sec.")]), breakage=[_drop_dnskey_rrsig]
        ),
        "missingalgo.sec.": Plan(
            Signing(
                [_key("missingalgo.sec.")],
                publish_only=[_key("missingalgo.sec.", signing.ECDSAP256SHA256)],
            ),
            ds=[
                (_key("missingalgo.sec."), 2),
                (_key("missingalgo.sec.", signing.ECDSAP256SHA256), 2),
            ],
        ),
        "nosig.sec.": Plan(Signing([_key("nosig.sec.")]), breakage=[_drop_www_rrsig]),
        "iter500.sec.": Plan(Signing([_key("iter500.sec.")], nsec3=Nsec3(500, b"\xab\xcd"))),
        "unknownalgo.sec.": Plan(
            Signing(
                [_key("unknownalgo.sec.")],
                publish_only=[_key("unknownalgo.sec.", signing.UNASSIGNED_ALGORITHM)],
            ),
            ds=[(_key("unknownalgo.sec.", signing.UNASSIGNED_ALGORITHM), 2)],
            breakage=[_unknown_algorithm, _drop_real_key],
        ),
        "unknowndigest.sec.": Plan(
            Signing([_key("unknowndigest.sec.")]),
            ds=[(_key("unknowndigest.sec."), signing.UNASSIGNED_DIGEST)],
        ),
        "keytrap.sec.": Plan(Signing([_key("keytrap.sec.")]), breakage=[_keytrap]),
        BENCH_ZONE: Plan(Signing([_key(BENCH_ZONE, signing.ECDSAP256SHA256)])),
    }
    return {
        ".": Plan(Signing([_key(".")])),
        "sec.": Plan(Signing([_key("sec.")])),
        **plain,
    }


def _drop_real_key(zone: dns.zone.Zone) -> None:
    """Leave only the unassigned algorithm's key in the DNSKEY set (signed with noise)."""
    assert zone.origin is not None
    unknown = _key(zone.origin.to_text(), signing.UNASSIGNED_ALGORITHM)
    dnskeys = zone.find_rdataset(zone.origin, dns.rdatatype.DNSKEY)
    ttl = dnskeys.ttl
    dnskeys.clear()
    dnskeys.add(unknown.dnskey, ttl)


def sign(zones: Zones) -> None:
    """Sign the parsed zones of the signed internet in place, DS records first."""
    every = {
        origin: plan for origin, plan in plans().items() if dns.name.from_text(origin) in zones
    }
    for origin_text, plan in every.items():
        origin = dns.name.from_text(origin_text)
        if origin == dns.name.root:
            continue
        parent = zones[origin.parent()]
        assert plan.signing is not None
        published = plan.ds if plan.ds is not None else [(k, 2) for k in plan.signing.keys]
        ds = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DS)
        for key, digest in published:
            ds.add(signing.make_ds(origin, key, digest), 86400)
        parent.replace_rdataset(origin, ds)
    for origin_text, plan in every.items():
        zone = zones[dns.name.from_text(origin_text)]
        assert plan.signing is not None
        signing.sign_zone(zone, plan.signing)
        for breakage in plan.breakage:
            breakage(zone)


def root_ds() -> str:
    """The root's trust anchor as a DS line (zone-file syntax)."""
    return f". 86400 IN DS {signing.make_ds(dns.name.root, _key('.')).to_text()}\n"


def trust_anchor_text() -> str:
    """The root's trust anchor as a DNSKEY line (zone-file syntax), for `trust_anchor_file`."""
    return f". 86400 IN DNSKEY {_key('.').dnskey.to_text()}\n"


def trust_anchor_rrset() -> dns.rrset.RRset:
    """The root's KSK as an RRset, for `dns.dnssec.validate` in tests."""
    return dns.rrset.from_rdata(dns.name.root, 86400, _key(".").dnskey)
