"""Root hints: the addresses the iterator starts from when it knows nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset
import dns.zonefile


class HintsError(Exception):
    """The hints file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class RootHints:
    """The root NS set and the addresses of its names."""

    ns: dns.rrset.RRset
    addresses: dict[dns.name.Name, tuple[str, ...]]


def parse_root_hints(text: str, source: str = "<hints>") -> RootHints:
    try:
        rrsets = dns.zonefile.read_rrsets(text, origin=dns.name.root, relativize=False)
    except (dns.exception.DNSException, ValueError) as error:
        raise HintsError(f"{source}: not a valid root hints file: {error}") from None
    ns = next((r for r in rrsets if r.rdtype == dns.rdatatype.NS and r.name == dns.name.root), None)
    if ns is None:
        raise HintsError(f"{source}: no NS records for the root '.'")
    addresses: dict[dns.name.Name, list[str]] = {}
    for rrset in rrsets:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            addresses.setdefault(rrset.name, []).extend(rdata.address for rdata in rrset)
    if not any(rdata.target in addresses for rdata in ns):
        raise HintsError(f"{source}: no A or AAAA record for any root name server")
    return RootHints(ns, {name: tuple(found) for name, found in addresses.items()})


def load_root_hints(path: Path) -> RootHints:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HintsError(f"{path}: cannot read root hints: {error}") from None
    return parse_root_hints(text, str(path))
