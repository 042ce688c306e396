"""The caps on validation work (KeyTrap, CVE-2023-50387; NSEC3 hashing, CVE-2023-50868).

RFC 4035 section 5.3.1 asks a validator to try every key and every signature until one
verifies. A zone with many keys sharing one key tag and many signatures per RRset then costs
keys x signatures public-key operations per RRset (KeyTrap), and an NSEC3 proof over a long
name with a high iteration count costs labels x iterations SHA-1 rounds. Like every
validator patched in February 2024, we break RFC 4035 on purpose: past a cap the answer is
bogus (SERVFAIL), never a stalled worker. `Budget` counts the work of one resolution.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValidationLimits:
    """Every cap and tolerance of the validator, with the default and where it comes from."""

    #: Signature verifications (public-key operations) tried for one RRset before giving up.
    #: Unbound's MAX_VALIDATE_RRSIGS is 8, dnsjava's max_validate_rrsigs 8.
    sig_checks_per_rrset: int = 8
    #: Signature verifications in one resolution (answer, CNAME links, every DNSKEY set of
    #: the chain, the denial proofs). Unbound allows 8 at once over at most 16 suspensions;
    #: PowerDNS Recursor's max-signature-validations-per-query is 30. A cold name at depth 4
    #: needs about 10; 64 leaves room for CNAME chains across signed zones.
    sig_checks_per_resolution: int = 64
    #: Keys tried for one RRSIG when several share its key tag and algorithm (a tag
    #: collision is legitimate but rare, 1 in 65536 per pair). Unbound stops after 4 DS
    #: match failures (MAX_DS_MATCH_FAILURES); we use the same figure for both searches.
    key_tag_collisions: int = 4
    #: NSEC3 iterations above this make the answer insecure with EDE 27 (RFC 9276 section
    #: 3.2). Unbound's default is 150 (val-nsec3-keysize-iterations), Knot Resolver's 50.
    nsec3_max_iterations: int = 150
    #: NSEC3 hash computations for one response's denial proof (each costs iterations + 1
    #: SHA-1 rounds). Unbound computes 8 per pass (MAX_NSEC3_CALCULATIONS) and suspends up
    #: to 16 times, so 128 in all; a closest-encloser proof, searched from the apex down,
    #: needs one per label from the apex to the closest encloser plus two.
    nsec3_hashes_per_response: int = 128
    #: Clock skew tolerated around RRSIG inception and expiration: a tenth of the signature's
    #: validity period, clamped to [min, max] seconds. Unbound's val-sig-skew-min (3600) and
    #: val-sig-skew-max (86400).
    sig_skew_min: int = 3600
    sig_skew_max: int = 86400
    #: How long a key set that failed validation ("bad key") is remembered, so the next
    #: question for the zone fails fast instead of repeating the work: Unbound's
    #: val-bogus-ttl, 60 s.
    bad_key_ttl: int = 60
    #: RRSIGs examined for one RRset, whether a key matches them or not: an RRset with
    #: thousands of RRSIGs whose tags match nothing costs no public-key operation but still
    #: costs a look at each (a KeyTrap variant that a review of the validator tried). An
    #: honest RRset has one or two per algorithm, a few more during a rollover.
    rrsigs_per_rrset: int = 16
    #: RRSIGs examined in one resolution (every RRset, the whole chain of trust).
    rrsigs_per_resolution: int = 256
    #: DS and DNSKEY records of one zone considered: a larger set makes the zone bogus
    #: (otherwise matching DS to DNSKEY costs DS x DNSKEY digests and key-tag computations).
    #: The root has 2 to 4 DNSKEYs; 64 leaves room for any honest rollover.
    max_ds_records: int = 64
    max_dnskey_records: int = 64


class BudgetExceeded(Exception):
    """Raised inside the validator when a cap is reached; turned into a bogus verdict."""


class Budget:
    """The validation work of one resolution, counted against `ValidationLimits`.

    One object per client question, shared by every check the resolution makes; the counters
    are public so tests and the trace can say exactly how much work was done.
    """

    def __init__(self, limits: ValidationLimits | None = None) -> None:
        self.limits = limits or ValidationLimits()
        self.signature_checks = 0
        self.nsec3_hashes = 0
        self.rrsigs_examined = 0

    def charge_signature(self) -> None:
        """Account one public-key verification, or raise if the resolution's cap is reached."""
        if self.signature_checks >= self.limits.sig_checks_per_resolution:
            raise BudgetExceeded(
                f"more than {self.limits.sig_checks_per_resolution} signature checks"
                " in one resolution"
            )
        self.signature_checks += 1

    def charge_rrsig(self) -> None:
        """Account one RRSIG looked at (matched to a key or not), or raise past the cap."""
        if self.rrsigs_examined >= self.limits.rrsigs_per_resolution:
            raise BudgetExceeded(
                f"more than {self.limits.rrsigs_per_resolution} RRSIGs examined in one resolution"
            )
        self.rrsigs_examined += 1

    def charge_nsec3_hash(self) -> None:
        """Account one NSEC3 hash computation (the per-response cap is the caller's)."""
        self.nsec3_hashes += 1
