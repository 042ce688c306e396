"""NSEC3 denial proofs (RFC 5155 section 8), with the RFC 9276 and CVE-2023-50868 caps.

The caller gives NSEC3 records whose signatures it has verified. Records with an unknown hash
algorithm or unknown flags are ignored (RFC 5155 8.1, 8.2), so a response made only of them is
bogus; only the parameters (salt, iterations) of the first usable record are used, as
Unbound's filter does. Iterations above `nsec3_max_iterations` make the answer insecure with
EDE 27 before any hash is computed (RFC 9276 section 3.2); every hash counts against
`nsec3_hashes_per_response`. Opt-out (RFC 5155 6): a next closer name covered by an opt-out
NSEC3 may hide an unsigned delegation, so such a proof is insecure, never secure (no AD), as
Knot Resolver and Unbound treat it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.NSEC3 import NSEC3

from resolver.dnssec.budget import Budget, BudgetExceeded
from resolver.dnssec.verdict import Ede, Security, Trace, Verdict

_DS = dns.rdatatype.DS
_NS = dns.rdatatype.NS
_SOA = dns.rdatatype.SOA
_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME
SHA1 = 1
OPT_OUT = 0x01


@dataclass(frozen=True)
class Nsec3Record:
    owner: dns.name.Name
    hash: bytes
    next: bytes
    types: frozenset[int]
    opt_out: bool
    salt: bytes
    iterations: int

    def has(self, rdtype: int) -> bool:
        return rdtype in self.types

    def covers(self, digest: bytes) -> bool:
        """Whether `digest` sorts strictly between this hash and the next (the last wraps)."""
        if self.hash < self.next:
            return self.hash < digest < self.next
        return digest > self.hash or digest < self.next

    def __str__(self) -> str:
        types = " ".join(
            dns.rdatatype.to_text(dns.rdatatype.RdataType.make(t)) for t in sorted(self.types)
        )
        flags = " opt-out" if self.opt_out else ""
        return f"NSEC3 {self.owner.labels[0].decode()}{flags} [{types}]"


def records(
    rrsets: Sequence[dns.rrset.RRset], zone: dns.name.Name, trace: Trace
) -> list[Nsec3Record]:
    """The usable NSEC3 records of `zone`: SHA-1, flags 0 or 1, owner a hash label under zone."""
    out: list[Nsec3Record] = []
    for rrset in rrsets:
        if rrset.rdtype != dns.rdatatype.NSEC3 or rrset.name.parent() != zone:
            continue
        try:
            owner_hash = base64.b32hexdecode(rrset.name.labels[0].upper())
        except (binascii.Error, ValueError):
            trace.add("NSEC3 %s: owner is not a hash, ignored", rrset.name)
            continue
        for rdata in rrset:
            if not isinstance(rdata, NSEC3):
                continue
            if rdata.algorithm != SHA1 or rdata.flags & ~OPT_OUT:
                trace.add(
                    "NSEC3 %s: hash algorithm %d flags %d unknown, ignored",
                    rrset.name,
                    rdata.algorithm,
                    rdata.flags,
                )
                continue
            types = frozenset(
                window * 256 + byte * 8 + bit
                for window, bitmap in rdata.windows
                for byte, octet in enumerate(bitmap)
                for bit in range(8)
                if octet & (0x80 >> bit)
            )
            out.append(
                Nsec3Record(
                    rrset.name,
                    owner_hash,
                    rdata.next,
                    types,
                    bool(rdata.flags & OPT_OUT),
                    rdata.salt,
                    rdata.iterations,
                )
            )
    if out:
        first = out[0]
        same = [r for r in out if (r.salt, r.iterations) == (first.salt, first.iterations)]
        if len(same) != len(out):
            trace.add("ignoring %d NSEC3 with other parameters", len(out) - len(same))
        out = same
    return out


class Hasher:
    """NSEC3 hashes of one response, each computed once and counted against the cap."""

    def __init__(self, salt: bytes, iterations: int, budget: Budget) -> None:
        self.salt = salt
        self.iterations = iterations
        self.budget = budget
        self.computed = 0
        self._cache: dict[dns.name.Name, bytes] = {}

    def __call__(self, name: dns.name.Name) -> bytes:
        digest = self._cache.get(name)
        if digest is None:
            if self.computed >= self.budget.limits.nsec3_hashes_per_response:
                raise BudgetExceeded(
                    f"more than {self.budget.limits.nsec3_hashes_per_response}"
                    " NSEC3 hash computations for one response"
                )
            self.computed += 1
            self.budget.charge_nsec3_hash()
            import dns.dnssec  # lazily: it loads cryptography, needed only when validating

            text = dns.dnssec.nsec3_hash(name, self.salt, self.iterations, SHA1)
            digest = self._cache[name] = base64.b32hexdecode(text)
        return digest


@dataclass(frozen=True)
class _Encloser:
    ce: dns.name.Name
    next_closer: dns.name.Name
    cover: Nsec3Record


class _Proof:
    """The NSEC3 records of one response and the questions RFC 5155 section 8 asks of them."""

    def __init__(
        self, nsec3s: list[Nsec3Record], zone: dns.name.Name, hasher: Hasher, trace: Trace
    ):
        self.nsec3s = nsec3s
        self.zone = zone
        self.hash = hasher
        self.trace = trace

    def matching(self, name: dns.name.Name) -> Nsec3Record | None:
        digest = self.hash(name)
        return next((r for r in self.nsec3s if r.hash == digest), None)

    def covering(self, name: dns.name.Name) -> Nsec3Record | None:
        digest = self.hash(name)
        return next((r for r in self.nsec3s if r.covers(digest)), None)

    def closest_encloser(self, qname: dns.name.Name) -> _Encloser | Verdict:
        """RFC 5155 8.3: the closest encloser matches, the next closer name is covered.

        Searched top-down from the zone apex: the closest encloser is the last ancestor with a
        matching NSEC3, the next closer the first one covered (ancestors between the apex and
        the closest encloser exist but need not be in the response). That costs depth(ce) + 2
        hashes below the apex, not one per label of the question: a 120-label name under a
        short closest encloser stays far inside the per-response cap (CVE-2023-50868).
        """
        if not qname.is_subdomain(self.zone):
            return self.trace.verdict(
                Security.BOGUS, f"{qname} is not in {self.zone}", Ede.DNSSEC_BOGUS
            )
        candidate: dns.name.Name | None = None
        match: Nsec3Record | None = None
        next_closer: dns.name.Name | None = None
        cover: Nsec3Record | None = None
        for depth in range(len(self.zone), len(qname) + 1):
            name = dns.name.Name(qname.labels[-depth:])
            found = self.matching(name)
            if found is not None:
                candidate, match = name, found
                if name != self.zone and (
                    (found.has(_NS) and not found.has(_SOA)) or found.has(_DNAME)
                ):
                    break  # nothing of this zone lies below a delegation or a DNAME
                continue
            cover = self.covering(name)
            if cover is not None:
                next_closer = name
                break
        if candidate is None or match is None:
            return self.trace.verdict(
                Security.BOGUS, f"no NSEC3 matches an ancestor of {qname}", Ede.NSEC_MISSING
            )
        if candidate == qname:
            return self.trace.verdict(
                Security.BOGUS, f"an NSEC3 matches {qname}: it exists", Ede.DNSSEC_BOGUS
            )
        if (match.has(_NS) and not match.has(_SOA)) or match.has(_DNAME):
            return self.trace.verdict(
                Security.BOGUS,
                f"closest encloser {candidate} is a delegation or DNAME",
                Ede.DNSSEC_BOGUS,
            )
        if next_closer is None or cover is None or next_closer.parent() != candidate:
            return self.trace.verdict(
                Security.BOGUS,
                f"no NSEC3 covers the next closer below {candidate}",
                Ede.NSEC_MISSING,
            )
        self.trace.add(
            "%s matches the closest encloser %s; %s covers the next closer %s",
            match,
            candidate,
            cover,
            next_closer,
        )
        return _Encloser(candidate, next_closer, cover)

    def types_ok(self, match: Nsec3Record, qname: dns.name.Name, qtype: int) -> Verdict | None:
        if match.has(qtype):
            return self.trace.verdict(
                Security.BOGUS, f"{match} says the type exists", Ede.DNSSEC_BOGUS
            )
        if match.has(_CNAME):
            return self.trace.verdict(
                Security.BOGUS, f"{match}: the name is an alias", Ede.DNSSEC_BOGUS
            )
        if qtype == _DS:
            if match.has(_SOA) and qname != dns.name.root:
                return self.trace.verdict(
                    Security.BOGUS,
                    f"{match} is the child's: DS NODATA comes from the parent",
                    Ede.DNSSEC_BOGUS,
                )
        elif match.has(_NS) and not match.has(_SOA):
            return self.trace.verdict(
                Security.BOGUS,
                f"{match} is a delegation: it cannot deny the child's data",
                Ede.DNSSEC_BOGUS,
            )
        return None


def prove_nxdomain(qname: dns.name.Name, proof: _Proof) -> Verdict:
    """RFC 5155 8.4: closest encloser proof, and the wildcard at the closest encloser covered."""
    found = proof.closest_encloser(qname)
    if isinstance(found, Verdict):
        return found
    wildcard = dns.name.Name((b"*", *found.ce.labels))
    cover = proof.covering(wildcard)
    if cover is None:
        return proof.trace.verdict(
            Security.BOGUS, f"no NSEC3 denies the wildcard {wildcard}", Ede.NSEC_MISSING
        )
    proof.trace.add("%s covers the wildcard %s", cover, wildcard)
    if found.cover.opt_out:
        return proof.trace.verdict(
            Security.INSECURE, f"{qname} does not exist, but under opt-out (NSEC3)"
        )
    return proof.trace.verdict(Security.SECURE, f"{qname} does not exist (NSEC3)")


def prove_nodata(qname: dns.name.Name, qtype: int, proof: _Proof) -> Verdict:
    """RFC 5155 8.5-8.7: a matching NSEC3 without the type (an empty non-terminal too); for DS
    an opt-out span over the next closer (insecure); else a wildcard NODATA."""
    what = f"{qname} {dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))}"
    match = proof.matching(qname)
    if match is not None:
        proof.trace.add("%s matches %s", match, qname)
        failure = proof.types_ok(match, qname, qtype)
        return failure or proof.trace.verdict(Security.SECURE, f"no {what} (NSEC3)")
    found = proof.closest_encloser(qname)
    if isinstance(found, Verdict):
        return found
    if qtype == _DS:
        if found.cover.opt_out:
            return proof.trace.verdict(Security.INSECURE, f"no {what}: opt-out span (NSEC3)")
        return proof.trace.verdict(
            Security.BOGUS, f"{qname} does not exist: no DS NODATA", Ede.NSEC_MISSING
        )
    wildcard = dns.name.Name((b"*", *found.ce.labels))
    wild = proof.matching(wildcard)
    if wild is None:
        return proof.trace.verdict(
            Security.BOGUS, f"no NSEC3 proves there is no {what}", Ede.NSEC_MISSING
        )
    proof.trace.add("%s matches the wildcard %s", wild, wildcard)
    failure = proof.types_ok(wild, wildcard, qtype)
    return failure or proof.trace.verdict(Security.SECURE, f"no {what}: wildcard NODATA (NSEC3)")


def prove_wildcard(qname: dns.name.Name, wildcard: dns.name.Name, proof: _Proof) -> Verdict:
    """RFC 5155 8.8: the next closer name below the wildcard's parent is covered."""
    ce = wildcard.parent()
    if not qname.is_subdomain(ce) or qname == ce:
        return proof.trace.verdict(
            Security.BOGUS, f"{wildcard} cannot answer {qname}", Ede.DNSSEC_BOGUS
        )
    next_closer = dns.name.Name(qname.labels[-len(ce.labels) - 1 :])
    cover = proof.covering(next_closer)
    if cover is None:
        return proof.trace.verdict(
            Security.BOGUS, f"no NSEC3 covers the next closer {next_closer}", Ede.NSEC_MISSING
        )
    proof.trace.add("%s covers the next closer %s", cover, next_closer)
    if cover.opt_out:
        return proof.trace.verdict(
            Security.INSECURE, f"{qname} synthesised from {wildcard}, under opt-out (NSEC3)"
        )
    return proof.trace.verdict(Security.SECURE, f"{qname} synthesised from {wildcard} (NSEC3)")


def prove_no_ds(name: dns.name.Name, proof: _Proof) -> Verdict:
    """No DS at `name`: insecure for a delegation (matching NSEC3 with NS, or opt-out over the
    next closer), secure if there is no zone cut there."""
    match = proof.matching(name)
    if match is not None:
        proof.trace.add("%s matches %s", match, name)
        failure = proof.types_ok(match, name, _DS)
        if failure is not None:
            return failure
        if match.has(_NS):
            return proof.trace.verdict(
                Security.INSECURE, f"{name} is an unsigned delegation (NSEC3)"
            )
        return proof.trace.verdict(Security.SECURE, f"no zone cut at {name} (NSEC3)")
    found = proof.closest_encloser(name)
    if isinstance(found, Verdict):
        return found
    if found.cover.opt_out:
        return proof.trace.verdict(
            Security.INSECURE, f"{name} may be an unsigned delegation: opt-out span (NSEC3)"
        )
    return proof.trace.verdict(
        Security.BOGUS, f"{name} does not exist: no DS proof", Ede.NSEC_MISSING
    )


def make_proof(
    nsec3s: list[Nsec3Record], zone: dns.name.Name, budget: Budget, trace: Trace
) -> _Proof | Verdict:
    """The proof context, or the verdict that ends it before any hash (no records, RFC 9276)."""
    if not nsec3s:
        return trace.verdict(Security.BOGUS, f"no usable NSEC3 for {zone}", Ede.NSEC_MISSING)
    iterations = nsec3s[0].iterations
    limit = budget.limits.nsec3_max_iterations
    if iterations > limit:
        return trace.verdict(
            Security.INSECURE,
            f"NSEC3 iterations {iterations} above the limit {limit} (RFC 9276)",
            Ede.UNSUPPORTED_NSEC3_ITERATIONS,
        )
    return _Proof(nsec3s, zone, Hasher(nsec3s[0].salt, iterations, budget), trace)
