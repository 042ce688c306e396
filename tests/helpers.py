"""Small helpers shared by the test modules."""

from __future__ import annotations

import dns.rrset

from resolver.config import Config, UpstreamConfig


def loopback_config(**changes: object) -> Config:
    """Settings for resolving inside the test internet, which lives on loopback."""
    changes.setdefault("upstream", UpstreamConfig(query_loopback=True, timeout=0.3))
    return Config(**changes)  # type: ignore[arg-type]


def texts(rrsets: tuple[dns.rrset.RRset, ...]) -> list[str]:
    """Every record as one presentation-format line, for exact comparisons."""
    return [line for rrset in rrsets for line in rrset.to_text().splitlines()]
