"""Why a resolution failed: one vocabulary for logs, metrics and Extended DNS Errors (RFC 8914)."""

from __future__ import annotations

from enum import Enum


class ServfailReason(Enum):
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

    @property
    def text(self) -> str:
        return self.value[0]

    @property
    def ede_code(self) -> int:
        return self.value[1]


class ResolutionFailed(Exception):
    """Raised inside the iterator to abandon a question with SERVFAIL."""

    def __init__(self, reason: ServfailReason) -> None:
        super().__init__(reason.text)
        self.reason = reason
