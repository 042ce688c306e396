"""Why a resolution failed: one vocabulary for logs, metrics and Extended DNS Errors (RFC 8914)."""

from __future__ import annotations

from enum import Enum


class _ExtendedError(Enum):
    """Members valued (short text, RFC 8914 INFO-CODE): the words of the logs and the EDE."""

    @property
    def text(self) -> str:
        return self.value[0]

    @property
    def ede_code(self) -> int:
        return self.value[1]


class ServfailReason(_ExtendedError):
    """Each member's value is (short text, RFC 8914 INFO-CODE)."""

    NO_REACHABLE_AUTHORITY = ("no authoritative server answered", 22)
    NO_USABLE_SERVER_ADDRESS = ("no usable address for any name server", 22)
    TOO_MANY_QUERIES = ("upstream query budget exhausted", 0)
    REFERRAL_DEPTH = ("too many referrals", 0)
    CNAME_CHAIN_TOO_LONG = ("CNAME chain too long", 0)
    CNAME_LOOP = ("CNAME loop", 0)
    GLUELESS_LIMIT = ("too many glueless name server lookups", 0)
    TIMEOUT = ("resolution took too long", 0)
    NO_FORWARDER_ANSWERED = ("no forwarder answered", 22)
    # Every forwarder of a DNS-over-TLS zone failed before a query went out (certificate or
    # pin check, handshake, connection): RFC 8914 section 4.24, "an unrecoverable error
    # occurred while communicating with another server". The detail names server and reason.
    FORWARDER_TLS_FAILED = ("no forwarder reachable over TLS", 23)
    INTERNAL_ERROR = ("internal error", 0)  # a bug: the query's handling raised
    # DNSSEC validation failures (bogus answers), with the codes of RFC 8914 section 4.
    DNSSEC_BOGUS = ("DNSSEC validation failed", 6)
    SIGNATURE_EXPIRED = ("DNSSEC signature expired", 7)
    SIGNATURE_NOT_YET_VALID = ("DNSSEC signature not yet valid", 8)
    DNSKEY_MISSING = ("no DNSKEY matches the DS", 9)
    RRSIGS_MISSING = ("RRSIGs missing", 10)
    NSEC_MISSING = ("no NSEC/NSEC3 proof of the denial", 12)

    @property
    def authorities_failed(self) -> bool:
        """The servers could not be reached or would not answer, as opposed to a policy cap.

        Only these failures justify stale data (RFC 8767 section 4: serve stale when the
        authorities are unreachable) and are remembered for a few seconds (RFC 9520): a CNAME
        loop or an exhausted query budget would end the same way again, and stale data would
        hide a loop the zone's owner should see.
        """
        return self in _AUTHORITY_FAILURES


_AUTHORITY_FAILURES = frozenset(
    {
        ServfailReason.NO_REACHABLE_AUTHORITY,
        ServfailReason.NO_USABLE_SERVER_ADDRESS,
        ServfailReason.NO_FORWARDER_ANSWERED,
        ServfailReason.FORWARDER_TLS_FAILED,
        ServfailReason.TIMEOUT,
    }
)


class ValidationNote(_ExtendedError):
    """An Extended DNS Error that comes with an answer that stands (not a SERVFAIL): why a
    signed zone was treated as insecure. Each member's value is (short text, INFO-CODE)."""

    UNSUPPORTED_DNSKEY_ALGORITHM = ("unsupported DNSKEY algorithm", 1)
    UNSUPPORTED_DS_DIGEST = ("unsupported DS digest type", 2)
    NSEC3_ITERATIONS = ("NSEC3 iterations above the limit", 27)


class Lameness(Enum):
    """Why a server's NOERROR or NXDOMAIN reply was not believed: shown by `--trace`.

    The cases follow Unbound (`iterator/iter_resptype.c`) and Knot Resolver
    (`lib/layer/iterate.c`): each is a server that does not speak for the zone it was asked as.
    """

    RECURSIVE = "recursive-lame: RA=1 without AA, a resolver or middlebox answered"
    UPWARD_REFERRAL = "upward referral"
    SIDEWAYS_REFERRAL = "sideways referral to an unrelated zone"
    NEGATIVE_WITHOUT_AUTHORITY = "negative answer with neither AA nor the zone's SOA"
    EMPTY = "empty reply without AA"
    UNJUSTIFIED_YXDOMAIN = "YXDOMAIN without a DNAME that overflows the name"


class ResolutionFailed(Exception):
    """Raised inside the iterator to abandon a question with SERVFAIL; `detail` says more than
    the reason's fixed text where the iterator knows it (which server failed, and how)."""

    def __init__(self, reason: ServfailReason, detail: str = "") -> None:
        super().__init__(f"{reason.text}: {detail}" if detail else reason.text)
        self.reason = reason
        self.detail = detail
