"""What every resolution shares (`Context`) and what one resolution has spent so far (`Work`).

The stages of a resolution (cache lookup, the walk, the exchange with one server) each read the
shared caches and settings through `Work.ctx`, report to the same tracer and draw on the same
query budget; `Work` is that one place, so no stage keeps a copy of another's state.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.name
import dns.rrset

from resolver.cache.keys import KeyCache
from resolver.cache.nsecs import NsecIndex
from resolver.cache.records import RecordCache, ZoneCut
from resolver.cache.servers import ServerTable
from resolver.config import Config, Limits
from resolver.core.actions import Server
from resolver.core.hints import RootHints
from resolver.core.overrides import LocalData, Routes
from resolver.core.reasons import ResolutionFailed, ServfailReason
from resolver.core.trust import load_trust_anchors
from resolver.dnssec import Anchor, Budget, TrustAnchors, ValidationLimits

Tracer = Callable[[str], None]

#: Told of every DNSKEY RRset fetched for a trust anchor's zone: (zone, DNSKEY RRset, its
#: RRSIGs, wall-clock now). RFC 5011 (`dnssec/rfc5011.py`) listens here.
AnchorKeysListener = Callable[[dns.name.Name, dns.rrset.RRset, dns.rrset.RRset | None, float], None]


@dataclass(frozen=True)
class Context:
    """What every resolution shares: the cache, server data, hints, settings, randomness.

    The local data and the forward/stub routes are parsed from `config` here, once, so a bad
    line fails when the resolver starts (OverrideError naming it), not at the first query.
    """

    cache: RecordCache
    servers: ServerTable
    hints: RootHints
    config: Config
    rng: random.Random
    #: The configured trust anchors; None: `dnssec.trust_anchor_file`, else the bundled IANA
    #: root anchors (`core/trust.py`). An empty `TrustAnchors()` validates nothing.
    anchors: TrustAnchors | None = field(default=None, repr=False)
    local: LocalData = field(init=False, repr=False)
    routes: Routes = field(init=False, repr=False)
    configured_addresses: frozenset[str] = field(init=False, repr=False)
    #: The servers to ask for each cached cut lately started from, by the cut's id (see
    #: `Walk._servers_of`): they depend on the settings too, so they are kept here.
    server_lists: dict[int, tuple[ZoneCut, tuple[Server, ...]]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    #: Negative trust anchors (RFC 7646): names at and below which nothing is validated. Set
    #: from `dnssec.negative_trust_anchors`, changed at run time by the engine (`resolver trust
    #: add-nta`); the validator reads it.
    negative_trust_anchors: set[dns.name.Name] = field(
        init=False, repr=False, compare=False, default_factory=set
    )

    #: Validated keys per zone (`cache/keys.py`), shared by every resolution.
    keys: KeyCache = field(init=False, repr=False, compare=False)
    #: Validated NSEC ranges per zone (`cache/nsecs.py`), for aggressive answers (RFC 8198).
    nsecs: NsecIndex = field(init=False, repr=False, compare=False)
    #: Who wants to see the DNSKEY RRsets of trust anchors' zones (`anchor_keys_seen`).
    anchor_listeners: list[AnchorKeysListener] = field(
        init=False, repr=False, compare=False, default_factory=list
    )
    #: The positive anchors in force, in a one-slot list so RFC 5011 can replace them
    #: (`replace_trust_anchors`) in this frozen object.
    _anchors: list[TrustAnchors] = field(
        init=False, repr=False, compare=False, default_factory=list
    )
    #: `anchor_for`'s index (`_AnchorIndex`), made again when the anchors or the NTAs change.
    _anchor_index: list[_AnchorIndex] = field(
        init=False, repr=False, compare=False, default_factory=list
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "local", LocalData.parse(self.config.local_data))
        object.__setattr__(self, "keys", KeyCache(self.config.dnssec.key_cache_size))
        object.__setattr__(self, "nsecs", NsecIndex(self.config.dnssec.aggressive_nsec_size))
        if self.config.dnssec.validate:
            anchors = self.anchors
            self._anchors.append(
                load_trust_anchors(self.config.dnssec) if anchors is None else anchors
            )
        else:
            self._anchors.append(TrustAnchors())
        object.__setattr__(self, "routes", Routes.from_config(self.config))
        hinted = {address for found in self.hints.addresses.values() for address in found}
        configured = self.routes.addresses() | hinted
        object.__setattr__(self, "configured_addresses", configured)
        self.negative_trust_anchors.update(
            dns.name.from_text(name) for name in self.config.dnssec.negative_trust_anchors
        )

    def routed_privately(self, name: dns.name.Name) -> bool:
        """Whether this resolver answers `name` by its own configuration: local data for the
        name, or a forward or stub zone at or above it. Such answers are this resolver's view
        (split horizon), not the internet's: they are neither shared with a fleet nor taken
        from it (`core/shared.py`)."""
        if self.local and self.local.lookup(name) is not None:  # no local data: no hashing
            return True
        return self.routes.find(name) is not None

    # -- DNSSEC: trust anchors ----------------------------------------------------------------

    @property
    def trust_anchors(self) -> TrustAnchors:
        """The anchors in force with the negative trust anchors of this moment."""
        return self._anchors[0].with_negative(self.negative_trust_anchors)

    def anchor_for(self, name: dns.name.Name) -> Anchor | None:
        """The closest anchor or NTA at or above `name` (`TrustAnchors.closest`), or None.

        Asked twice or more per link of every question when validating: `TrustAnchors.closest`
        makes each ancestor of the name and hashes it three times (37 us for a name four labels
        deep), so the few anchors' zones are indexed here by their lowercased labels instead.
        """
        anchors = self._anchors[0]
        if not anchors.ds and not anchors.dnskeys:
            return None  # validating nothing: the common case of `validate = false`
        index = self._anchor_index[0] if self._anchor_index else None
        if index is None or not index.serves(anchors, self.negative_trust_anchors):
            index = _AnchorIndex(anchors, self.negative_trust_anchors)
            self._anchor_index[:] = [index]
        return index.closest(name)

    def replace_trust_anchors(self, anchors: TrustAnchors) -> None:
        """Trust these anchors from now on (RFC 5011 rollovers); the validated keys go."""
        self._anchors[0] = anchors
        self.keys.flush()
        self.nsecs.flush()

    def anchor_keys_seen(
        self,
        zone: dns.name.Name,
        dnskeys: dns.rrset.RRset,
        rrsigs: dns.rrset.RRset | None,
        now: float,
    ) -> None:
        """The validator fetched and checked the DNSKEY RRset of an anchor's zone: tell the
        listeners (RFC 5011 section 2: every such fetch is a chance to see a new KSK)."""
        for listener in self.anchor_listeners:
            listener(zone, dnskeys, rrsigs, now)


class _AnchorIndex:
    """`TrustAnchors.closest` for names by their labels: each zone holding an anchor or an NTA
    under its lowercased labels (a tuple, hashed in C), tried from the name itself upward."""

    __slots__ = ("_anchors", "_by_labels", "_ntas")

    def __init__(self, anchors: TrustAnchors, ntas: set[dns.name.Name]) -> None:
        self._anchors = anchors
        self._ntas = frozenset(ntas)
        anchors = anchors.with_negative(ntas)
        self._by_labels: dict[tuple[bytes, ...], Anchor] = {}
        for zone in {*anchors.ds, *anchors.dnskeys, *anchors.negative}:
            # What `TrustAnchors.closest` finds at this zone, spelt as the zone is here.
            anchor = anchors.closest(zone)
            if anchor is not None and anchor.zone == zone:
                key = tuple(label.lower() for label in zone.labels)
                self._by_labels[key] = anchor

    def serves(self, anchors: TrustAnchors, ntas: set[dns.name.Name]) -> bool:
        """Whether this index was made for these anchors and these NTAs."""
        return anchors is self._anchors and ntas == self._ntas

    def closest(self, name: dns.name.Name) -> Anchor | None:
        labels = name.labels
        by_labels = self._by_labels
        lowered = tuple([label.lower() for label in labels])
        for start in range(len(lowered)):
            anchor = by_labels.get(lowered[start:])
            if anchor is not None:
                # Its zone as the name spells it, as `TrustAnchors.closest` gives it.
                zone = dns.name.Name(labels[start:])
                return Anchor(zone, anchor.ds, anchor.dnskeys, anchor.negative)
        return None


class Work:
    """One client question's running account: its tracer, upstream queries and glueless names.

    `in_progress` holds the names of name servers whose addresses are being looked up, so a
    glueless cycle ends instead of recursing; `queries_sent` counts every upstream query of the
    question, sub-questions included, against `limits.max_upstream_queries`.

    A plain class with slots, not a dataclass: one is made per question, and the generated
    `__init__` with its default factories cost more than the sets it makes.
    """

    __slots__ = (
        "_budget",
        "aggressive_answers",
        "answered_by",
        "avoid",
        "ctx",
        "in_progress",
        "limits",
        "queries_sent",
        "trace",
    )

    def __init__(self, ctx: Context, trace: Tracer | None = None) -> None:
        self.ctx = ctx
        self.trace = trace
        #: `ctx.config.limits`, read on every query (the context and its config never change).
        self.limits: Limits = ctx.config.limits
        self.queries_sent = 0
        self.in_progress: set[dns.name.Name] = set()
        #: Addresses of servers whose responses this question found bogus: server selection
        #: skips them for the rest of the question (Unbound's val_blacklist; `core/retry.py`).
        self.avoid: set[str] = set()
        #: The server that gave the walk's last fresh response (None: none since it was reset).
        self.answered_by: str | None = None
        #: Links of this question answered from validated denials (RFC 8198, RFC 8020).
        self.aggressive_answers = 0
        # DNSSEC work of this question (signature checks, NSEC3 hashes) against the caps; made
        # at the first validation, so questions answered from validated data never make one.
        self._budget: Budget | None = None

    @property
    def signature_checks(self) -> int:
        """Signature checks spent so far (0 if nothing was validated)."""
        return 0 if self._budget is None else self._budget.signature_checks

    @property
    def nsec3_hashes(self) -> int:
        """NSEC3 hashes computed so far (0 if nothing was validated)."""
        return 0 if self._budget is None else self._budget.nsec3_hashes

    @property
    def budget(self) -> Budget:
        if self._budget is None:
            self._budget = Budget(validation_limits(self.ctx.config))
        return self._budget

    def say(self, depth: int, template: str, *args: object) -> None:
        """Report a step to the tracer; the text is only built when someone is listening."""
        if self.trace is not None:
            self.trace("  " * depth + template.format(*args))

    def count_query(self) -> None:
        """Account for one more upstream query; past the budget the question fails."""
        self.queries_sent += 1
        if self.queries_sent > self.limits.max_upstream_queries:
            raise ResolutionFailed(ServfailReason.TOO_MANY_QUERIES)


def validation_limits(config: Config) -> ValidationLimits:
    """The library's caps (`dnssec/budget.py`) from the `[dnssec]` settings."""
    dnssec = config.dnssec
    return ValidationLimits(
        sig_checks_per_rrset=dnssec.max_rrset_validations,
        sig_checks_per_resolution=dnssec.max_resolution_validations,
        key_tag_collisions=dnssec.max_key_tag_collisions,
        nsec3_max_iterations=dnssec.nsec3_max_iterations,
        nsec3_hashes_per_response=dnssec.max_nsec3_hashes,
        sig_skew_min=dnssec.val_sig_skew_min,
        sig_skew_max=dnssec.val_sig_skew_max,
        bad_key_ttl=dnssec.bogus_ttl,
        rrsigs_per_rrset=dnssec.max_rrset_signatures,
        rrsigs_per_resolution=dnssec.max_resolution_signatures,
        max_ds_records=dnssec.max_ds_records,
        max_dnskey_records=dnssec.max_dnskey_records,
    )
