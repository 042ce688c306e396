"""Signing for tests, the one home: fixed keys, RRSIGs, DS, NSEC and NSEC3 chains, KeyTrap sets.

Two users, one set of primitives: the signed test internet signs whole zones (`sign_zone`,
`sign_rdataset`) and the DNSSEC unit tests (tests/test_dnssec.py) sign single RRsets (`rrset`,
`sign`, `rrsigs`, `nsec_chain`, `nsec3_chain`, `forged`). Both build their NSEC/NSEC3 records
with `nsec_records`/`nsec3_records` and their keys with `make_key`.

The keys are derived from the zone's name (Ed25519 and ECDSA P-256 from a hash of it; the one
RSA key is a constant below), so every run signs with the same keys and a DS or a trust anchor
written by one run holds for the next. Ed25519 and ECDSA signatures are deterministic (RFC 8032,
RFC 6979) and so is RSA PKCS#1 v1.5: the same zone signs to the same bytes.

dnspython's `sign_zone` builds NSEC chains only; NSEC3 chains (RFC 5155), opt-out and any
iteration count are built here by hand with `nsec3_hash`, and every RRset is signed with
`dns.dnssec.sign`. The signature window is fixed too (`INCEPTION`..`EXPIRATION`, 2020 to 2033),
wide enough for the tests' fake clock (2023) and for the real one. The unit tests sign with
a window around `NOW` instead (`sign`), so they can make signatures expired or not yet valid.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import dns.dnssec
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.NSEC3PARAM
import dns.rdtypes.ANY.RRSIG
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

#: Signature validity of every signed zone that is not broken on purpose (2020-09-13 to
#: 2033-05-18): covers `scripted.FakeClock`'s 2023 and today.
INCEPTION = 1_600_000_000
EXPIRATION = 2_000_000_000

ED25519 = 15
ECDSAP256SHA256 = 13
RSASHA256 = 8
#: An algorithm number no validator implements (RFC 8624 leaves 17-122 unassigned).
UNASSIGNED_ALGORITHM = 100
#: A DS digest type no validator implements (5-255 unassigned).
UNASSIGNED_DIGEST = 100

KSK_FLAGS = 257
ZSK_FLAGS = 256
#: RFC 5011's REVOKE flag: a revoked key signs only its own DNSKEY RRset.
REVOKE_FLAG = 0x0080

#: 2026-12-01T00:00:00Z: the unit tests' "now"; `sign` signs a month either side by default.
NOW = 1796083200
DAY = 86400

# A 2048-bit RSA key, fixed so that the RSASHA256 zone signs alike in every run (RSA keys cannot
# be derived from a seed with `cryptography`). Test material only.
_RSA_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCzFQzBLbclIk/U
+zgMqbpYOBLIKFfcApipaalXFzss/OQcCdzR4VvOEm1sTxAcVDvsvTQY5xmX3HYX
GvrOttiX3ImNwTs4onrsOO3UPsl7dHn2v00TLl768bhIOZQ7uQcxLC5fpnLtVR6z
u8AVgmYegwk10nmtcYvrcYO0OCSyz7uwmQBJ4kKE/T3qfbON25zF5r6WLtYXXGP8
dGnyypVMseGSiqZlXDE3vxRmOWtBsAVsIXCNQWQVt4FpVDvKMoct2M4jUpXg/dB6
Px/RWunFTWYCxMvwO1vOiiy4xSwPnwAuD3Bc9HPkgysWB4v68zLarnzn6b6RCH9k
66nmUfoHAgMBAAECggEAFQH7JQ4/1dNYmht+T735Zi/txB03cU+8qOMEQnsvLe/c
so1VoilVo671tybvNOOMxBDN873oerAaCkvX8Dfy4J22ZTKtx88HrH5hJ+zVpe3c
AN4gJIfkDHweqhpXEUp7VYFhT0cvZDgACgWUWvGZGSs2AWJXc8lGKLCASrvrUi5p
53xCrpDnacgcPFDwbvJqDS2HynLnVrGAswT0KIJurD6TqjFstDzErVVS83FdY1Xc
WoF/AtcWuGQiw4YF634y6ix7UismB+6qmT41+pwDNgm2tLHEXCHRL+UFAGW3hSoZ
o2OO7SCkkemYqM82bKAfQ9l8jgzQoRU0zRMKsPkrAQKBgQDoOQGtu89/b4L0j2R3
nNFxl9KrrVzFU8sHn5PwpxNYAvnAAghzcwqVJSQYuC9rSXAenI8nn1evZHdTc+oF
vv9+VU1mHGILxBnoaSkKQRpKlxfauusrHPZdqlYSvxR4D5No9OSKS5MmMrG3n8DV
M3hDwqBm9nkblfnpRd/B1KzOlwKBgQDFayHFzq+7iRtAaujcC5V0+76p8+tQHIOH
XgVDTaCfoS++LPnYL4oNwDl5qAjoGsWjqyXQYIYGOYv+0bFJ+PKfE7P7Hm7NI+0l
VtpwX/g8jFjQ3HrCMaHJEq56OlURaCZE/h9d65EycBTDCEMCkoRk+NzKTdTXy7Y3
NfYSBlQOEQKBgHp+p54HNbsZDVEH2o0l0W1EEsKwXgFQ5AYPbTBCUXfZifh4mhCc
HHbz8oh/j7PeNyBOoUzbRpukOTVyLX3+dDMluAAm9KkUNj5cSmO4V7AE53ZfpvFF
A8gAtAqLdLaoMK/qjitNFj/N+eTMhiFwVv4XShlF5jhg8kTUsOVD1CvdAoGAD2JI
0HRJx3Bouj1ahgM1E1emxPGoDacbLMpL2LHM6YOTB9vTYGBb/rRTBkLs5sFnU1i7
6qAK8aM8YJAQo7YNmg3cAZ6efcfl6/n3rbgczQMWzLfRrR5XACc/h3DSPjgCe2/e
G+CGgQqw433aUvH99SxbcDxecK6ENYsz8LWjiTECgYBQa1jm/7Hp8PbHcDNf0geE
zEC+Ak2Qwk1gZTeiIqie68Vx45YsHFd+6meRuk/KGR857iaCB3qfb0k3rvLMT392
iVGm3PSEhmGjLBK50N1J1xuEbtqM/IIK4v0Dmw01TPEDNZx/TE11xFuOVBqlLqqC
bQxOg4xPcGuniV8zVwWNOQ==
-----END PRIVATE KEY-----
"""

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class ZoneKey:
    """A signing key: its private half (None for a key that cannot sign, such as an
    unassigned algorithm's) and its DNSKEY record."""

    private: PrivateKey | None
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    @property
    def algorithm(self) -> int:
        return int(self.dnskey.algorithm)

    def revoked(self) -> ZoneKey:
        """The same key with the REVOKE bit set (RFC 5011): a new key tag."""
        flags = self.dnskey.flags | REVOKE_FLAG
        return ZoneKey(
            self.private, cast(dns.rdtypes.ANY.DNSKEY.DNSKEY, self.dnskey.replace(flags=flags))
        )


def make_key(
    zone: str, algorithm: int = ED25519, flags: int = KSK_FLAGS, seed: str = ""
) -> ZoneKey:
    """The fixed key of `zone` for `algorithm` (a different `seed` gives another key).

    An unassigned algorithm gets a DNSKEY of 32 bytes derived from the seed and no private
    key: nothing can verify or make its signatures, which is the point.
    """
    digest = hashlib.sha256(f"{zone.lower()}|{algorithm}|{flags}|{seed}".encode()).digest()
    private: PrivateKey | None
    if algorithm == ED25519:
        private = ed25519.Ed25519PrivateKey.from_private_bytes(digest)
    elif algorithm == ECDSAP256SHA256:
        scalar = int.from_bytes(digest, "big") % (2**256 - 2**224 - 1) + 1
        private = ec.derive_private_key(scalar, ec.SECP256R1())
    elif algorithm == RSASHA256:
        loaded = serialization.load_pem_private_key(_RSA_PEM, password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        private = loaded
    else:
        dnskey = dns.rdtypes.ANY.DNSKEY.DNSKEY(
            dns.rdataclass.IN, dns.rdatatype.DNSKEY, flags, 3, algorithm, digest
        )
        return ZoneKey(None, dnskey)
    dnskey = dns.dnssec.make_dnskey(private.public_key(), algorithm, flags)
    return ZoneKey(private, dnskey)


def make_ds(zone: str | dns.name.Name, key: ZoneKey, digest: int = 2) -> dns.rdtypes.ANY.DS.DS:
    """The DS record of `key` (SHA-256 by default); an unassigned `digest` type gets the
    SHA-256 bytes under its number, which no validator can check."""
    name = _name(zone)
    if digest in (1, 2, 4):
        # validating=True: dnspython refuses to *create* SHA-1 DS, which tests need to forge.
        return dns.dnssec.make_ds(name, key.dnskey, dns.dnssec.DSDigest(digest), validating=True)
    real = dns.dnssec.make_ds(name, key.dnskey, dns.dnssec.DSDigest.SHA256)
    return dns.rdtypes.ANY.DS.DS(
        dns.rdataclass.IN, dns.rdatatype.DS, real.key_tag, real.algorithm, digest, real.digest
    )


@dataclass(frozen=True)
class Nsec3:
    """NSEC3 parameters (RFC 5155): SHA-1, `iterations`, `salt`, and opt-out for unsigned
    delegations (which then get no NSEC3 record of their own)."""

    iterations: int = 0
    salt: bytes = b""
    opt_out: bool = False


@dataclass
class Signing:
    """How one zone is signed: its keys (the first signs DNSKEY, the last everything else;
    keys listed in `publish_only` are in the DNSKEY set but sign nothing), NSEC or NSEC3,
    and the signature window."""

    keys: Sequence[ZoneKey]
    nsec3: Nsec3 | None = None
    inception: int = INCEPTION
    expiration: int = EXPIRATION
    publish_only: Sequence[ZoneKey] = field(default_factory=tuple)


def nsec3_owner(name: dns.name.Name, origin: dns.name.Name, params: Nsec3) -> dns.name.Name:
    """The owner of the NSEC3 record of `name`: its hash in base32hex, under the zone apex."""
    hashed = dns.dnssec.nsec3_hash(name, params.salt, params.iterations, 1)
    return dns.name.Name((hashed.lower().encode(), *origin.labels))


def sign_zone(zone: dns.zone.Zone, signing: Signing) -> None:
    """Sign `zone` in place: DNSKEY set at the apex, the NSEC or NSEC3 chain, an RRSIG for each
    authoritative RRset (not for delegation NS sets or glue, RFC 4035 2.2)."""
    origin = zone.origin
    assert origin is not None
    soa = zone.get_rdataset(origin, dns.rdatatype.SOA)
    assert soa is not None
    ttl, minimum = soa.ttl, soa[0].minimum
    dnskeys = [key.dnskey for key in (*signing.keys, *signing.publish_only)]
    zone.replace_rdataset(origin, _rdataset(dns.rdatatype.DNSKEY, ttl, dnskeys))
    cuts, secure, below_cut = _classify_names(zone, origin)
    if signing.nsec3 is None:
        _add_nsec_chain(zone, secure, minimum)
    else:
        _add_nsec3_chain(zone, origin, secure, cuts, signing.nsec3, minimum, ttl)
    signer = signing.keys[-1]
    for name in list(zone.nodes):
        if name in below_cut:
            continue
        node = zone.nodes[name]
        for rdataset in list(node.rdatasets):
            rdtype = rdataset.rdtype
            if rdtype == dns.rdatatype.RRSIG:
                continue
            if name in cuts and rdtype not in (dns.rdatatype.DS, dns.rdatatype.NSEC):
                continue
            keys = signing.keys if rdtype == dns.rdatatype.DNSKEY else [signer]
            sign_rdataset(zone, name, rdataset, keys, signing.inception, signing.expiration)


def sign_rdataset(
    zone: dns.zone.Zone,
    name: dns.name.Name,
    rdataset: dns.rdataset.Rdataset,
    keys: Iterable[ZoneKey],
    inception: int = INCEPTION,
    expiration: int = EXPIRATION,
) -> None:
    """Add (to any already there) an RRSIG of `rdataset` by each key that can sign."""
    origin = zone.origin
    assert origin is not None
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
    rrset.update(rdataset)
    rrset.ttl = rdataset.ttl
    rrsigs = [sign(rrset, key, origin, inception, expiration) for key in keys if key.private]
    add_rrsigs(zone, name, rdataset.rdtype, rdataset.ttl, rrsigs)


def add_rrsigs(
    zone: dns.zone.Zone,
    name: dns.name.Name,
    covers: int,
    ttl: int,
    rrsigs: Sequence[dns.rdtypes.ANY.RRSIG.RRSIG],
) -> None:
    """Add RRSIG records covering `covers` at `name`."""
    if not rrsigs:
        return
    node = zone.find_node(name, create=True)
    covered = dns.rdatatype.RdataType.make(covers)
    held = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, covered, create=True)
    for rrsig in rrsigs:
        held.add(rrsig, ttl)


def fake_rrsig(
    zone: dns.name.Name, covers: int, labels: int, ttl: int, key: ZoneKey, filler: int
) -> dns.rdtypes.ANY.RRSIG.RRSIG:
    """An RRSIG that names `key` (its tag and algorithm) but whose signature is noise: what a
    KeyTrap zone or an unassigned algorithm's zone publishes."""
    signature = hashlib.sha512(f"{zone}|{covers}|{filler}".encode()).digest()
    return dns.rdtypes.ANY.RRSIG.RRSIG(
        dns.rdataclass.IN,
        dns.rdatatype.RRSIG,
        dns.rdatatype.RdataType.make(covers),
        key.algorithm,
        labels,
        ttl,
        EXPIRATION,
        INCEPTION,
        key.tag,
        zone,
        signature,
    )


def colliding_keys(key: ZoneKey, count: int) -> list[ZoneKey]:
    """`count` DNSKEYs with the key tag of `key` but other public keys (KeyTrap, CVE-2023-
    50387): each adds 1 to one high byte of the key and takes 1 from another, which leaves
    RFC 4034 appendix B's 16-bit sum, the key tag, as it was. None of them can verify."""
    material = bytes(key.dnskey.key)
    found: list[ZoneKey] = []
    # Key bytes sit after 4 bytes of flags, protocol and algorithm: an even rdata offset is an
    # even key offset, the high byte of a 16-bit word of the sum.
    positions = [index for index in range(0, len(material), 2) if 0 < material[index] < 255]
    for first, second in itertools.combinations(positions, 2):
        if len(found) == count:
            break
        changed = bytearray(material)
        changed[first] += 1
        changed[second] -= 1
        dnskey = dns.rdtypes.ANY.DNSKEY.DNSKEY(
            dns.rdataclass.IN,
            dns.rdatatype.DNSKEY,
            key.dnskey.flags,
            3,
            key.dnskey.algorithm,
            bytes(changed),
        )
        found.append(ZoneKey(None, dnskey))
    if len(found) < count:
        raise ValueError(f"only {len(found)} colliding keys can be made from this key")
    return found


def _rdataset(rdtype: int, ttl: int, rdatas: Iterable[dns.rdata.Rdata]) -> dns.rdataset.Rdataset:
    rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.RdataType.make(rdtype))
    for rdata in rdatas:
        rdataset.add(rdata, ttl)
    return rdataset


def _classify_names(
    zone: dns.zone.Zone, origin: dns.name.Name
) -> tuple[set[dns.name.Name], list[dns.name.Name], set[dns.name.Name]]:
    """(delegation points, authoritative names in canonical order (cuts included), names below
    a cut: glue, neither signed nor in the chain)."""
    names = sorted(zone.nodes)
    cuts = {
        name
        for name in names
        if name != origin and zone.get_rdataset(name, dns.rdatatype.NS) is not None
    }
    below = {name for name in names if any(name != c and name.is_subdomain(c) for c in cuts)}
    secure = [name for name in names if name not in below and len(zone.nodes[name]) > 0]
    return cuts, secure, below


def _add_nsec_chain(zone: dns.zone.Zone, secure: Sequence[dns.name.Name], ttl: int) -> None:
    """Every authoritative name, a delegation included, gets its NSEC (RFC 4034 section 4)."""
    types = {name: {rdataset.rdtype for rdataset in zone.nodes[name].rdatasets} for name in secure}
    for owner, nsec in nsec_records(types):
        zone.replace_rdataset(owner, _rdataset(dns.rdatatype.NSEC, ttl, [nsec]))


def nsec_records(
    types: Mapping[dns.name.Name, Iterable[dns.rdatatype.RdataType]],
) -> list[tuple[dns.name.Name, dns.rdtypes.ANY.NSEC.NSEC]]:
    """The NSEC chain over `types`' owners: each points to the next in canonical order (which
    is how dnspython sorts names) and lists its own types plus NSEC and RRSIG. Empty
    non-terminals are not owners: they get no NSEC (they own no records)."""
    owners = sorted(types)
    out = []
    for index, name in enumerate(owners):
        held = {*types[name], dns.rdatatype.NSEC, dns.rdatatype.RRSIG}
        nsec = dns.rdtypes.ANY.NSEC.NSEC(
            dns.rdataclass.IN,
            dns.rdatatype.NSEC,
            owners[(index + 1) % len(owners)],
            dns.rdtypes.ANY.NSEC.Bitmap.from_rdtypes(sorted(held)),
        )
        out.append((name, nsec))
    return out


def _add_nsec3_chain(
    zone: dns.zone.Zone,
    origin: dns.name.Name,
    secure: Sequence[dns.name.Name],
    cuts: set[dns.name.Name],
    params: Nsec3,
    ttl: int,
    apex_ttl: int,
) -> None:
    """NSEC3PARAM at the apex and the NSEC3 chain of `nsec3_records`."""
    zone.replace_rdataset(
        origin,
        _rdataset(
            dns.rdatatype.NSEC3PARAM,
            apex_ttl,
            [
                dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM(
                    dns.rdataclass.IN,
                    dns.rdatatype.NSEC3PARAM,
                    1,
                    0,
                    params.iterations,
                    params.salt,
                )
            ],
        ),
    )
    types = {name: {rdataset.rdtype for rdataset in zone.nodes[name].rdatasets} for name in secure}
    for owner, nsec3 in nsec3_records(origin, types, cuts, params):
        zone.replace_rdataset(owner, _rdataset(dns.rdatatype.NSEC3, ttl, [nsec3]))


def nsec3_records(
    origin: dns.name.Name,
    types: Mapping[dns.name.Name, Iterable[dns.rdatatype.RdataType]],
    cuts: Iterable[dns.name.Name],
    params: Nsec3,
    algorithm: int = 1,
) -> list[tuple[dns.name.Name, dns.rdtypes.ANY.NSEC3.NSEC3]]:
    """The NSEC3 chain (RFC 5155 section 7.1): every authoritative name and every empty
    non-terminal between it and the apex (empty bitmap), hashed and sorted. Delegations
    (`cuts`) without DS list no RRSIG; with opt-out they get no NSEC3 at all and every record
    has the opt-out flag. `algorithm` other than 1 (SHA-1) only changes the field: a chain a
    validator must ignore (RFC 5155 section 8.1); the hashes are still SHA-1."""
    delegations = set(cuts)
    chain: dict[dns.name.Name, set[dns.rdatatype.RdataType]] = {}
    for name, held_types in types.items():
        held = set(held_types)
        insecure_cut = name in delegations and dns.rdatatype.DS not in held
        if insecure_cut and params.opt_out:
            continue
        if not insecure_cut:
            held.add(dns.rdatatype.RRSIG)
        chain.setdefault(name, set()).update(held)
        ancestor = name
        while ancestor != origin:
            ancestor = ancestor.parent()
            chain.setdefault(ancestor, set())  # an empty non-terminal: no types
    hashed = sorted(
        (dns.dnssec.nsec3_hash(name, params.salt, params.iterations, 1), name) for name in chain
    )
    flags = 1 if params.opt_out else 0
    out = []
    for index, (digest, name) in enumerate(hashed):
        following = hashed[(index + 1) % len(hashed)][0]
        nsec3 = dns.rdtypes.ANY.NSEC3.NSEC3(
            dns.rdataclass.IN,
            dns.rdatatype.NSEC3,
            algorithm,
            flags,
            params.iterations,
            params.salt,
            base64.b32decode(following.upper().translate(_FROM_HEX), casefold=True),
            dns.rdtypes.ANY.NSEC3.Bitmap.from_rdtypes(sorted(chain[name])),
        )
        out.append((dns.name.Name((digest.lower().encode(), *origin.labels)), nsec3))
    return out


# base32hex (RFC 4648 section 7) to the standard alphabet, for base64.b32decode.
_FROM_HEX = bytes.maketrans(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUV", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)


def remove_node_type(
    zone: dns.zone.Zone, name: dns.name.Name, rdtype: int, covers: int = 0
) -> None:
    """Delete one rdataset (e.g. an RRSIG covering one type) from a signed zone."""
    zone.delete_rdataset(
        name, dns.rdatatype.RdataType.make(rdtype), dns.rdatatype.RdataType.make(covers)
    )


def trust_anchor_text(zone: dns.zone.Zone) -> str:
    """The DNSKEY records of `zone`'s apex that are KSKs (SEP bit), as zone-file lines: a
    trust-anchor file for a resolver that starts at this zone."""
    origin = zone.origin
    assert origin is not None
    keys = zone.get_rdataset(origin, dns.rdatatype.DNSKEY)
    assert keys is not None
    return "".join(
        f"{origin.to_text()} {keys.ttl} IN DNSKEY {key.to_text()}\n"
        for key in keys
        if key.flags & 1
    )


# -- single RRsets, for the unit tests ------------------------------------------------------


def _name(name: str | dns.name.Name) -> dns.name.Name:
    return dns.name.from_text(name) if isinstance(name, str) else name


def rrset(name: str | dns.name.Name, rdtype: str, *rdatas: str, ttl: int = 3600) -> dns.rrset.RRset:
    """An IN RRset from text, e.g. `rrset("www.example.", "A", "192.0.2.1")`."""
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *rdatas)


def sign(
    data: dns.rrset.RRset,
    key: ZoneKey,
    signer: str | dns.name.Name,
    inception: int = NOW - 30 * DAY,
    expiration: int = NOW + 30 * DAY,
) -> dns.rdtypes.ANY.RRSIG.RRSIG:
    """One RRSIG over `data` by `key` for zone `signer` (a month either side of `NOW`)."""
    assert key.private is not None, "this key has no private half"
    return dns.dnssec.sign(
        data, key.private, _name(signer), key.dnskey, inception=inception, expiration=expiration
    )


def rrsigs(data: dns.rrset.RRset, *sigs: dns.rdtypes.ANY.RRSIG.RRSIG) -> dns.rrset.RRset:
    """The RRSIG RRset for `data` made of `sigs` (same owner and TTL)."""
    out = dns.rrset.RRset(data.name, dns.rdataclass.IN, dns.rdatatype.RRSIG, data.rdtype)
    for sig in sigs:
        out.add(sig, data.ttl)
    return out


def dnskey_rrset(
    zone: str | dns.name.Name, *keys: ZoneKey | dns.rdtypes.ANY.DNSKEY.DNSKEY, ttl: int = 3600
) -> dns.rrset.RRset:
    out = dns.rrset.RRset(_name(zone), dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    for key in keys:
        out.add(key.dnskey if isinstance(key, ZoneKey) else key, ttl)
    return out


def ds_rrset(
    zone: str | dns.name.Name, *records: dns.rdtypes.ANY.DS.DS, ttl: int = 3600
) -> dns.rrset.RRset:
    out = dns.rrset.RRset(_name(zone), dns.rdataclass.IN, dns.rdatatype.DS)
    for record in records:
        out.add(record, ttl)
    return out


def _owner_types(
    origin: dns.name.Name, names: Mapping[str, Iterable[str]]
) -> dict[dns.name.Name, set[dns.rdatatype.RdataType]]:
    return {
        (origin if name == "@" else dns.name.from_text(name, origin)): {
            dns.rdatatype.from_text(rdtype) for rdtype in types
        }
        for name, types in names.items()
    }


def nsec_chain(
    zone: str | dns.name.Name, names: Mapping[str, Iterable[str]], ttl: int = 3600
) -> list[dns.rrset.RRset]:
    """The NSEC RRsets of a zone holding `names` ({"www": ["A"], "@": ["SOA", "NS"]}), owner
    names relative to `zone`."""
    types = _owner_types(_name(zone), names)
    return [dns.rrset.from_rdata(owner, ttl, nsec) for owner, nsec in nsec_records(types)]


def nsec3_chain(
    zone: str | dns.name.Name,
    names: Mapping[str, Iterable[str]],
    salt: str = "",
    iterations: int = 0,
    opt_out: bool = False,
    ttl: int = 3600,
    algorithm: int = 1,
) -> list[dns.rrset.RRset]:
    """The NSEC3 RRsets of a zone holding `names` (as `nsec_chain`; `salt` in hex). A name
    with NS and without DS below the apex is a delegation."""
    origin = _name(zone)
    types = _owner_types(origin, names)
    cuts = {
        name
        for name, held in types.items()
        if name != origin and dns.rdatatype.NS in held and dns.rdatatype.SOA not in held
    }
    params = Nsec3(iterations, bytes.fromhex(salt), opt_out)
    return [
        dns.rrset.from_rdata(owner, ttl, nsec3)
        for owner, nsec3 in nsec3_records(origin, types, cuts, params, algorithm)
    ]


def forged(sig: dns.rdtypes.ANY.RRSIG.RRSIG, variant: int) -> dns.rdtypes.ANY.RRSIG.RRSIG:
    """A copy of `sig` whose signature bytes are wrong (KeyTrap's many signatures)."""
    signature = bytearray(sig.signature)
    signature[variant % len(signature)] ^= 0xFF
    signature[(variant * 3 + 1) % len(signature)] ^= (variant % 255) + 1
    return cast(dns.rdtypes.ANY.RRSIG.RRSIG, sig.replace(signature=bytes(signature)))


def raw_rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
