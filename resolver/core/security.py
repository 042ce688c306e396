"""The DNSSEC vocabulary the caches, the iterator and the client side share (RFC 4035 4.3).

What the validator decides about each cached RRset and negative answer is a `Security`; what it
tells a client beyond the rcode is an Extended DNS Error (`reasons.ValidationNote` for answers
that stand, `reasons.ServfailReason` for bogus ones). Kept apart from the validator itself so
that the plumbing (cache, wire, AD bit) can exist and be tested before and without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

import dns.rdatatype


class Security(IntEnum):
    """RFC 4035 section 4.3's four states; the order is "how much may be said": the status of
    an answer made of several RRsets is the least of theirs (`weakest`)."""

    #: Not validated (yet), or validation is off. The default of every cache entry.
    INDETERMINATE = 0
    #: Validation failed: served only to clients that set CD, for `dnssec.bogus_ttl` at most.
    BOGUS = 1
    #: Provably unsigned (no DS, NSEC3 opt-out, only unsupported algorithms, an NTA).
    INSECURE = 2
    #: Validated from a trust anchor: the only state that earns the AD bit.
    SECURE = 3


def weakest(statuses: Iterable[Security]) -> Security:
    """The status of an answer made of RRsets with these statuses; SECURE when there are none
    is wrong, so an empty answer is INDETERMINATE until someone says otherwise."""
    return min(statuses, default=Security.INDETERMINATE)


#: Types that exist only for DNSSEC: stripped from answers to clients without DO, unless asked
#: for by type (RFC 4035 section 3.2.1).
DNSSEC_TYPES = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3})
