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

from resolver.cache.records import RecordCache, ZoneCut
from resolver.cache.servers import ServerTable
from resolver.config import Config, Limits
from resolver.core.actions import Server
from resolver.core.hints import RootHints
from resolver.core.overrides import LocalData, Routes
from resolver.core.reasons import ResolutionFailed, ServfailReason

Tracer = Callable[[str], None]


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "local", LocalData.parse(self.config.local_data))
        object.__setattr__(self, "routes", Routes.from_config(self.config))
        hinted = {address for found in self.hints.addresses.values() for address in found}
        configured = self.routes.addresses() | hinted
        object.__setattr__(self, "configured_addresses", configured)
        self.negative_trust_anchors.update(
            dns.name.from_text(name) for name in self.config.dnssec.negative_trust_anchors
        )


@dataclass
class Work:
    """One client question's running account: its tracer, upstream queries and glueless names.

    `in_progress` holds the names of name servers whose addresses are being looked up, so a
    glueless cycle ends instead of recursing; `queries_sent` counts every upstream query of the
    question, sub-questions included, against `limits.max_upstream_queries`.
    """

    ctx: Context
    trace: Tracer | None = None
    queries_sent: int = 0
    in_progress: set[dns.name.Name] = field(default_factory=set)

    @property
    def limits(self) -> Limits:
        return self.ctx.config.limits

    def say(self, depth: int, template: str, *args: object) -> None:
        """Report a step to the tracer; the text is only built when someone is listening."""
        if self.trace is not None:
            self.trace("  " * depth + template.format(*args))

    def count_query(self) -> None:
        """Account for one more upstream query; past the budget the question fails."""
        self.queries_sent += 1
        if self.queries_sent > self.limits.max_upstream_queries:
            raise ResolutionFailed(ServfailReason.TOO_MANY_QUERIES)
