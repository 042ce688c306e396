"""Signing for tests: fixed keys, signed RRsets, NSEC and NSEC3 chains, KeyTrap key sets.

Everything is reproducible: Ed25519 and ECDSA P-256 keys are derived from a small integer
seed, the RSA key (algorithm 8) is a fixed 1024-bit key stored below, and dnspython signs
Ed25519 deterministically (ECDSA with `deterministic=True`, RFC 6979). Shared by the DNSSEC
unit tests and the signed test internet. NSEC3 chains are built by hand (dnspython's
`sign_zone` makes only NSEC), so opt-out, salts and high iteration counts can be chosen.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rrset
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

#: 2026-12-01T00:00:00Z: the tests' "now"; signatures run a month either side by default.
NOW = 1796083200
DAY = 86400

_RSA_PEM = b"""-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBANh1nRDBkmWTbSdo
TDBj4V5aa6+5JK/hMmSQhpcanRPyjcyL/R6XOS4zHSe3iygz0q/ZrWc/dIz170iA
pH+hG/2FRiT4nb5y1kUzI9njvqGR4t2vTZoQnSbIAOya7j0eWX8yJKm8yABso6RI
R7WD8q92WQoAeT2h0wjoFKl28vuxAgMBAAECgYEAgO4tS9nA1XfmwF5DY19a0dSR
5+0jiQ9d8MCVKlPT1BnZlEid0CbLDFWtvAZ7gMq9Z7kErEcDqSKkEE9vrAXOoS7e
5inQBZAAhi1eTaP3DXWULh0yIpHQhpBIHn62S0SH/TB2VeYYv3KgDXGXDSqYqzHY
GGh98skEj5vV1Kh85HECQQDr7uwFmarFOYl3q03ZfTVp50i9pugo/ali5UWcaiaF
AhaMRwBe31SVQJfAM9UWJzeB8BV3ClB4/B5+eNiY0Ri/AkEA6t6twa9gkIiFLuOv
kd8YSad1CV0JVka+a1Vsc5x/WhMCmgnLffk2sUZZuN3EjzqTj41FpJgrDE2cvITp
dVMXjwJAe0dIRFTbClraHZGBCBeIhWG4fIBt5p1EmMw751L/9Zf1uC6RXwFK7QHn
SSLMQNsVAew1CxJ0ogL63BLA+nineQJAW1qftQ1U/wLK4tEW0iM3XDaxNCIm5pL/
r9n7JADEHDH2uhmDOA1+M3fMoDZKJPfAu35Uj0/Mtq1dgIomEEdwiwJACzJZvmnn
OCfPZLVb4CZoS4d0/0Ei3AXaxH8JXFpYY3R8lKNgow2zUMMj86JanNQPAkD2CMRw
8PQLxaVizBOrSg==
-----END PRIVATE KEY-----
"""

KSK = 257
ZSK = 256
REVOKE = 0x0080

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private key and its DNSKEY record."""

    private: PrivateKey
    dnskey: DNSKEY

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    def revoked(self) -> SigningKey:
        """The same key with the REVOKE bit set (RFC 5011): a new key tag."""
        return SigningKey(
            self.private, cast(DNSKEY, self.dnskey.replace(flags=self.dnskey.flags | REVOKE))
        )


def make_key(seed: int, algorithm: Algorithm = Algorithm.ED25519, flags: int = ZSK) -> SigningKey:
    """A key fixed by `seed` (Ed25519, ECDSA P-256) or the stored RSA key (RSASHA256)."""
    private: PrivateKey
    if algorithm == Algorithm.ED25519:
        private = ed25519.Ed25519PrivateKey.from_private_bytes(
            hashlib.sha256(b"ed25519-%d" % seed).digest()
        )
    elif algorithm == Algorithm.ECDSAP256SHA256:
        scalar = int.from_bytes(hashlib.sha256(b"p256-%d" % seed).digest(), "big") >> 2
        private = ec.derive_private_key(scalar, ec.SECP256R1())
    elif algorithm == Algorithm.RSASHA256:
        loaded = serialization.load_pem_private_key(_RSA_PEM, password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        private = loaded
    else:
        raise ValueError(f"no test key for algorithm {algorithm}")
    dnskey = dns.dnssec.make_dnskey(private.public_key(), algorithm, flags)
    return SigningKey(private, dnskey)


def rrset(name: str | dns.name.Name, rdtype: str, *rdatas: str, ttl: int = 3600) -> dns.rrset.RRset:
    """An IN RRset from text, e.g. `rrset("www.example.", "A", "192.0.2.1")`."""
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *rdatas)


def sign(
    data: dns.rrset.RRset,
    key: SigningKey,
    signer: str | dns.name.Name,
    inception: int = NOW - 30 * DAY,
    expiration: int = NOW + 30 * DAY,
) -> RRSIG:
    """One RRSIG over `data` by `key` for zone `signer`."""
    signer_name = dns.name.from_text(signer) if isinstance(signer, str) else signer
    return dns.dnssec.sign(
        data,
        key.private,
        signer_name,
        key.dnskey,
        inception=inception,
        expiration=expiration,
        deterministic=True,
    )


def rrsigs(data: dns.rrset.RRset, *sigs: RRSIG) -> dns.rrset.RRset:
    """The RRSIG RRset for `data` made of `sigs` (same owner and TTL)."""
    out = dns.rrset.RRset(data.name, dns.rdataclass.IN, dns.rdatatype.RRSIG, data.rdtype)
    for sig in sigs:
        out.add(sig, data.ttl)
    return out


def dnskey_rrset(
    zone: str | dns.name.Name, *keys: SigningKey | DNSKEY, ttl: int = 3600
) -> dns.rrset.RRset:
    out = dns.rrset.RRset(_name(zone), dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    for key in keys:
        out.add(key.dnskey if isinstance(key, SigningKey) else key, ttl)
    return out


def make_ds(zone: str | dns.name.Name, key: SigningKey, digest: str = "SHA256") -> DS:
    # validating=True: dnspython refuses to *create* SHA-1 DS, which tests need to forge.
    return dns.dnssec.make_ds(_name(zone), key.dnskey, digest, validating=True)


def ds_rrset(zone: str | dns.name.Name, *records: DS, ttl: int = 3600) -> dns.rrset.RRset:
    out = dns.rrset.RRset(_name(zone), dns.rdataclass.IN, dns.rdatatype.DS)
    for record in records:
        out.add(record, ttl)
    return out


def _name(name: str | dns.name.Name) -> dns.name.Name:
    return dns.name.from_text(name) if isinstance(name, str) else name


def _with_ents(
    zone: dns.name.Name, names: Mapping[dns.name.Name, Iterable[str]]
) -> dict[dns.name.Name, set[str]]:
    """Every owner name with its types, plus the empty non-terminals between it and the zone."""
    out: dict[dns.name.Name, set[str]] = {}
    for name, types in names.items():
        out.setdefault(name, set()).update(types)
        parent = name
        while parent != zone:
            parent = parent.parent()
            out.setdefault(parent, set())
    return out


def nsec_chain(
    zone: str | dns.name.Name, names: Mapping[str, Iterable[str]], ttl: int = 3600
) -> list[dns.rrset.RRset]:
    """The NSEC RRsets of a zone holding `names` ({"www": ["A"], "@": ["SOA", "NS"]}).

    Owner names are relative to `zone`; each NSEC lists the owner's types plus NSEC and RRSIG.
    Empty non-terminals get no NSEC (RFC 4035: they own no records).
    """
    origin = _name(zone)
    owners = sorted(
        (dns.name.from_text(name, origin) if name != "@" else origin, set(types))
        for name, types in names.items()
    )
    chain = []
    for index, (owner, types) in enumerate(owners):
        following = owners[(index + 1) % len(owners)][0]
        bitmap = " ".join(sorted(types | {"NSEC", "RRSIG"}))
        chain.append(rrset(owner, "NSEC", f"{following} {bitmap}", ttl=ttl))
    return chain


def nsec3_owner(
    name: dns.name.Name, zone: dns.name.Name, salt: str, iterations: int
) -> dns.name.Name:
    label = dns.dnssec.nsec3_hash(name, salt or None, iterations, 1).lower()
    return dns.name.Name((label.encode(), *zone.labels))


def nsec3_chain(
    zone: str | dns.name.Name,
    names: Mapping[str, Iterable[str]],
    salt: str = "",
    iterations: int = 0,
    opt_out: bool = False,
    ttl: int = 3600,
    algorithm: int = 1,
) -> list[dns.rrset.RRset]:
    """The NSEC3 RRsets of a zone, built by hand (RFC 5155 section 7.1).

    Empty non-terminals get an NSEC3 with an empty bitmap. With `opt_out`, insecure
    delegations (NS without DS, below the apex) get no NSEC3 and every NSEC3 has the
    opt-out flag, so the spans between hashes may hide them.
    """
    origin = _name(zone)
    absolute = {
        (dns.name.from_text(name, origin) if name != "@" else origin): set(types)
        for name, types in names.items()
    }
    if opt_out:
        absolute = {
            name: types
            for name, types in absolute.items()
            if name == origin or not ("NS" in types and "DS" not in types)
        }
    owners = _with_ents(origin, absolute)
    hashed = sorted(
        (base64.b32hexdecode(nsec3_owner(name, origin, salt, iterations).labels[0].upper()), types)
        for name, types in owners.items()
    )
    chain = []
    flags = 1 if opt_out else 0
    for index, (digest, types) in enumerate(hashed):
        following = base64.b32hexencode(hashed[(index + 1) % len(hashed)][0]).decode().lower()
        unsigned_cut = "NS" in types and "SOA" not in types and "DS" not in types
        bitmap = types | ({"RRSIG"} if types and not unsigned_cut else set())
        owner = dns.name.Name(
            (base64.b32hexencode(digest).decode().lower().encode(), *origin.labels)
        )
        text = (
            f"{algorithm} {flags} {iterations} {salt or '-'} {following} {' '.join(sorted(bitmap))}"
        )
        chain.append(rrset(owner, "NSEC3", text.strip(), ttl=ttl))
    return chain


def colliding_keys(key: SigningKey, count: int) -> list[DNSKEY]:
    """`count` distinct DNSKEYs with `key`'s tag and algorithm (KeyTrap, CVE-2023-50387).

    The key tag is a ones-complement sum of the RDATA in 16-bit words (RFC 4034 appendix B):
    swapping two key bytes two positions apart keeps the sum, so the tag is the same while
    the key is not, and a signature by `key` fails under every one of them.
    """
    raw = key.dnskey.key
    out: list[DNSKEY] = []
    seen = {raw}
    positions = range(len(raw) - 2)
    for first in positions:
        for second in (None, *positions[first + 1 :]):
            variant = bytearray(raw)
            for at in (first, second):
                if at is not None:
                    variant[at], variant[at + 2] = variant[at + 2], variant[at]
            if bytes(variant) not in seen:
                seen.add(bytes(variant))
                out.append(cast(DNSKEY, key.dnskey.replace(key=bytes(variant))))
                if len(out) == count:
                    return out
    raise ValueError(f"cannot make {count} keys colliding with tag {key.tag}")


def forged(sig: RRSIG, variant: int) -> RRSIG:
    """A copy of `sig` whose signature bytes are wrong (KeyTrap's many signatures)."""
    signature = bytearray(sig.signature)
    signature[variant % len(signature)] ^= 0xFF
    signature[(variant * 3 + 1) % len(signature)] ^= (variant % 255) + 1
    return cast(RRSIG, sig.replace(signature=bytes(signature)))


def raw_rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
