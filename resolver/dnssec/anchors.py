"""Trust anchors: the bundled IANA root keys, trust-anchor files, negative trust anchors.

A validator trusts a key because it is configured (RFC 4035 section 4.4): here the root's
KSK-2017 and KSK-2024 as DS records, or the DS and DNSKEY records of a trust-anchor file
(zone-file syntax, any number of zones, the format of Unbound's trust-anchor-file). A
negative trust anchor (RFC 7646) switches validation off for a name and everything below it,
for the day a big zone breaks its signatures; a more specific positive anchor below an NTA
still applies (the closest enclosing point decides, as in Unbound's domain-insecure).

No I/O: the caller reads the file and passes its text and its name (for the error messages).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS

#: The IANA root zone anchors (https://data.iana.org/root-anchors/root-anchors.xml). The root
#: has signed with KSK-2024 since 2026-10-11 and KSK-2017 is to be revoked: ship both.
ROOT_ANCHORS = """\
; KSK-2017
. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
; KSK-2024
. IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16
"""


class TrustAnchorError(ValueError):
    """A trust-anchor file that cannot be used; the message starts with `file:line:`."""


@dataclass(frozen=True)
class Anchor:
    """The closest configured point above a name: positive (keys) or negative (an NTA)."""

    zone: dns.name.Name
    ds: tuple[DS, ...] = ()
    dnskeys: tuple[DNSKEY, ...] = ()
    negative: bool = False


@dataclass(frozen=True)
class TrustAnchors:
    """The configured anchors by zone, and the negative trust anchors."""

    ds: Mapping[dns.name.Name, tuple[DS, ...]] = field(default_factory=dict)
    dnskeys: Mapping[dns.name.Name, tuple[DNSKEY, ...]] = field(default_factory=dict)
    negative: frozenset[dns.name.Name] = frozenset()

    def closest(self, name: dns.name.Name) -> Anchor | None:
        """The anchor or NTA at or above `name` closest to it (an NTA wins a tie), or None.

        None means no anchor covers the name: its answers are indeterminate, never secure.
        """
        for ancestor in _ancestors(name):
            if ancestor in self.negative:
                return Anchor(ancestor, negative=True)
            ds = self.ds.get(ancestor, ())
            keys = self.dnskeys.get(ancestor, ())
            if ds or keys:
                return Anchor(ancestor, ds, keys)
        return None

    def is_negative(self, name: dns.name.Name) -> bool:
        """Whether `name` is at or below an NTA not overridden by a closer positive anchor."""
        anchor = self.closest(name)
        return anchor is not None and anchor.negative

    def with_negative(self, names: Iterable[dns.name.Name]) -> TrustAnchors:
        """The same anchors with these NTAs added (`resolver trust add-nta`)."""
        return TrustAnchors(self.ds, self.dnskeys, self.negative | frozenset(names))

    def without_negative(self, names: Iterable[dns.name.Name]) -> TrustAnchors:
        """The same anchors with these NTAs removed (`resolver trust remove-nta`)."""
        return TrustAnchors(self.ds, self.dnskeys, self.negative - frozenset(names))


def _ancestors(name: dns.name.Name) -> Iterable[dns.name.Name]:
    while True:
        yield name
        if name == dns.name.root or len(name) == 0:
            return
        name = name.parent()


def default_anchors() -> TrustAnchors:
    """The bundled root anchors (KSK-2017 and KSK-2024)."""
    return parse_trust_anchors(ROOT_ANCHORS, "<bundled root anchors>")


def parse_trust_anchors(
    text: str, source: str, negative: Iterable[dns.name.Name] = ()
) -> TrustAnchors:
    """Read DS and DNSKEY records in zone-file syntax (`$ORIGIN`, `$TTL`, comments, parentheses).

    Each error names `source` and the line the record starts on. A file with no anchor at all
    is an error too: a validator with nothing to trust would call every answer indeterminate.
    """
    ds: dict[dns.name.Name, list[DS]] = {}
    keys: dict[dns.name.Name, list[DNSKEY]] = {}
    origin = dns.name.root
    owner: dns.name.Name | None = None
    for line, record, continued in _records(text, source):
        where = f"{source}:{line}"
        tokens = record.split()
        if tokens[0].upper() == "$ORIGIN":
            if len(tokens) != 2:
                raise TrustAnchorError(f"{where}: $ORIGIN takes one name")
            origin = _name(tokens[1], dns.name.root, where)
            continue
        if tokens[0].upper() in ("$TTL", "$INCLUDE", "$GENERATE"):
            if tokens[0].upper() != "$TTL":
                raise TrustAnchorError(
                    f"{where}: {tokens[0]} is not allowed in a trust-anchor file"
                )
            continue
        if not continued:
            owner = _name(tokens.pop(0), origin, where)
        if owner is None:
            raise TrustAnchorError(f"{where}: a record without an owner name")
        while tokens and (tokens[0].isdigit() or tokens[0].upper() in ("IN", "CH", "HS")):
            field_ = tokens.pop(0)
            if field_.upper() in ("CH", "HS"):
                raise TrustAnchorError(f"{where}: class {field_} (only IN anchors exist)")
        if not tokens:
            raise TrustAnchorError(f"{where}: no record type")
        rdtype_text = tokens.pop(0).upper()
        if rdtype_text not in ("DS", "DNSKEY"):
            raise TrustAnchorError(
                f"{where}: {rdtype_text} record: a trust anchor is a DS or a DNSKEY record"
            )
        rdtype = dns.rdatatype.from_text(rdtype_text)
        try:
            rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, " ".join(tokens), origin)
        except (dns.exception.DNSException, ValueError) as error:
            raise TrustAnchorError(f"{where}: bad {rdtype_text} record: {error}") from None
        if isinstance(rdata, DS):
            ds.setdefault(owner, []).append(rdata)
        elif isinstance(rdata, DNSKEY):
            if not rdata.flags & 0x0100:
                raise TrustAnchorError(f"{where}: DNSKEY without the zone key flag (256)")
            keys.setdefault(owner, []).append(rdata)
    if not ds and not keys:
        raise TrustAnchorError(f"{source}: no DS or DNSKEY record")
    return TrustAnchors(
        {name: tuple(records) for name, records in ds.items()},
        {name: tuple(records) for name, records in keys.items()},
        frozenset(negative),
    )


def _name(text: str, origin: dns.name.Name, where: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text, origin)
    except dns.exception.DNSException as error:
        raise TrustAnchorError(f"{where}: bad name {text!r}: {error}") from None


def _records(text: str, source: str) -> Iterable[tuple[int, str, bool]]:
    """(line the record starts on, its text with comments and parentheses removed,
    whether it starts with blank space, i.e. reuses the previous owner)."""
    pending: list[str] = []
    start = 0
    continued = False
    depth = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0]
        if not pending:
            if not line.strip():
                continue
            start, continued = number, line[:1] in (" ", "\t")
        for char in line:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise TrustAnchorError(f"{source}:{number}: unbalanced ')'")
        pending.append(line.replace("(", " ").replace(")", " "))
        if depth == 0:
            yield start, " ".join(pending), continued
            pending = []
    if pending:
        raise TrustAnchorError(f"{source}:{start}: '(' never closed")
