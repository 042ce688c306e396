"""A signed test internet with an attacker in it, for the validator's hardening tests.

Built like `resolver.testing.signed_topology` (same root, same root key, so its trust anchor
applies; same addresses, scripted only, never served on sockets) with second-level zones that
each reproduce one attack of a hostile review of the validator against Unbound 1.17:

| zone | what the attacker did |
| --- | --- |
| `good.sec.` | `dg` A carries only an algorithm-100 RRSIG (a downgrade of data) |
| `dgnsec.sec.` | every NSEC RRSIG replaced by an algorithm-100 fake (a downgrade of denials) |
| `dgds.sec.` | the RRSIG over its DS in `sec.` replaced by an algorithm-100 fake |
| `lame.sec.` | two NS; ns.bad.sec. serves an unsigned copy of the zone with AA |
| `n3.sec.` | sound NSEC3 zone (algorithm 13) with a wildcard `*.wild`, for deep names |
| `unsig.sec.` | unsigned (no DS), a wildcard `*.w`, for deep unsigned names |
"""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone

from resolver.testing import TestInternet, signing
from resolver.testing import signed_topology as st
from resolver.testing.signing import Nsec3, Signing
from resolver.testing.topology import ServerSpec

BAD_ADDRESS = "127.53.100.5"
ZONES_ADDRESS = st.ZONES_ADDRESS
CHILDREN = ("good", "dgnsec", "dgds", "lame", "n3", "unsig")

_COMMON = """
www    300  A     192.0.2.1
www    300  AAAA  2001:db8::1
dg     300  A     192.0.2.10
*.wild 300  A     192.0.2.40
"""


def _tld() -> str:
    lines = [
        st._soa("nic.sec.", "ns1.nic.sec."),
        f"ns1.nic        172800 A  {st.TLD_ADDRESS}",
        f"a.root-servers 518400 A  {st.ROOT_ADDRESS}",
        f"ns.zones       172800 A  {ZONES_ADDRESS}",
        f"ns.bad         172800 A  {BAD_ADDRESS}",
        "lame           172800 NS ns.bad.sec.",
    ]
    lines += [f"{child:<14} 172800 NS ns.zones.sec." for child in CHILDREN]
    return "\n".join(lines) + "\n"


def _zones() -> dict[str, str]:
    zones = {".": st.ROOT, "sec.": _tld()}
    for child in CHILDREN:
        zones[f"{child}.sec."] = st._soa(f"{child}.sec.", "ns.zones.sec.") + _COMMON
    zones["lame.sec."] += "@ 3600 NS ns.bad.sec.\n"
    zones["unsig.sec."] += "*.w 300 A 192.0.2.50\n"
    return zones


SERVERS = (
    ServerSpec("a.root-servers.sec.", st.ROOT_ADDRESS, (".",)),
    ServerSpec("ns1.nic.sec.", st.TLD_ADDRESS, ("sec.",)),
    ServerSpec("ns.zones.sec.", ZONES_ADDRESS, tuple(f"{child}.sec." for child in CHILDREN)),
    ServerSpec("ns.bad.sec.", BAD_ADDRESS, ()),
)


def _name(zone: dns.zone.Zone, relative: str) -> dns.name.Name:
    assert zone.origin is not None
    return dns.name.from_text(relative, zone.origin)


def _fake_only(zone: dns.zone.Zone, name: dns.name.Name, covers: int, ttl: int) -> None:
    """Replace the RRSIGs of (name, covers) by one algorithm-100 fake."""
    assert zone.origin is not None
    fake_key = st._key(zone.origin.to_text(), signing.UNASSIGNED_ALGORITHM)
    labels = len(name) - 1 - (1 if name.is_wild() else 0)
    fake = signing.fake_rrsig(zone.origin, covers, labels, ttl, fake_key, 0)
    signing.remove_node_type(zone, name, dns.rdatatype.RRSIG, covers)
    signing.add_rrsigs(zone, name, covers, ttl, [fake])


def _break_good(zone: dns.zone.Zone) -> None:
    _fake_only(zone, _name(zone, "dg"), dns.rdatatype.A, 300)


def _break_dgnsec(zone: dns.zone.Zone) -> None:
    for name, node in list(zone.nodes.items()):
        if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC) is not None:
            _fake_only(zone, name, dns.rdatatype.NSEC, 300)


def _break_sec(zone: dns.zone.Zone) -> None:
    _fake_only(zone, dns.name.from_text("dgds.sec."), dns.rdatatype.DS, 86400)


def _plans() -> dict[str, st.Plan]:
    key = st._key
    return {
        ".": st.Plan(Signing([key(".")])),
        "sec.": st.Plan(Signing([key("sec.")]), breakage=[_break_sec]),
        "good.sec.": st.Plan(Signing([key("good.sec.")]), breakage=[_break_good]),
        "dgnsec.sec.": st.Plan(Signing([key("dgnsec.sec.")]), breakage=[_break_dgnsec]),
        "dgds.sec.": st.Plan(Signing([key("dgds.sec.")])),
        "lame.sec.": st.Plan(Signing([key("lame.sec.")])),
        "n3.sec.": st.Plan(Signing([key("n3.sec.", signing.ECDSAP256SHA256)], nsec3=Nsec3(0, b""))),
    }


def hostile_internet() -> TestInternet:
    """The internet of the module docstring, signed, with ns.bad.sec. serving its copy."""
    internet = TestInternet(_zones(), SERVERS)
    plans = _plans()
    zones = internet.zones
    for origin_text, plan in plans.items():
        origin = dns.name.from_text(origin_text)
        if origin == dns.name.root:
            continue
        assert plan.signing is not None
        ds = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DS)
        for zone_key in plan.signing.keys:
            ds.add(signing.make_ds(origin, zone_key), 86400)
        zones[origin.parent()].replace_rdataset(origin, ds)
    # Children first, so that sec. signs the DS set it publishes; then sec., then the root.
    for origin_text in sorted(plans, key=lambda text: -len(dns.name.from_text(text))):
        plan = plans[origin_text]
        assert plan.signing is not None
        zone = zones[dns.name.from_text(origin_text)]
        signing.sign_zone(zone, plan.signing)
        for breakage in plan.breakage:
            breakage(zone)
    internet.anchor_text = st.trust_anchor_text()
    unsigned = dns.zone.from_text(_zones()["lame.sec."], origin="lame.sec.", relativize=False)
    internet.servers["ns.bad.sec."].zones = (unsigned,)
    return internet
