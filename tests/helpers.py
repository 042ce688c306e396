"""Small helpers shared by the test modules."""

from __future__ import annotations

import dns.rrset

from resolver.config import Config, UpstreamConfig
from resolver.testing import TestInternet


def loopback_config(**changes: object) -> Config:
    """Settings for resolving inside the test internet, which lives on loopback."""
    changes.setdefault("upstream", UpstreamConfig(query_loopback=True, timeout=0.3))
    return Config(**changes)  # type: ignore[arg-type]


def texts(rrsets: tuple[dns.rrset.RRset, ...]) -> list[str]:
    """Every record as one presentation-format line, for exact comparisons."""
    return [line for rrset in rrsets for line in rrset.to_text().splitlines()]


def assert_only_the_configured_roots_were_asked(internet: TestInternet) -> None:
    """Without `query_loopback`, the loopback roots of the hints file (the operator's own
    choice) may be asked, but no server whose loopback address was learnt from the network."""
    roots = {server.name for server in internet.root_servers}
    assert sum(internet.servers[name].query_count for name in roots) >= 1
    assert all(s.query_count == 0 for name, s in internet.servers.items() if name not in roots)
