"""Every setting and limit of the resolver, with its default, in one place.

The logic reads numbers from here rather than embedding them, so that an operator can find (and a
test can shrink) any bound without reading the algorithm.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def bundled_root_hints() -> Path:
    """The IANA root hints shipped inside the package, so a wheel install works without the repo."""
    return Path(str(resources.files("resolver") / "root.hints"))


@dataclass(frozen=True)
class Limits:
    """Caps on the work one client question may cause (no hangs, no amplification)."""

    max_cname_chain: int = 12
    max_referrals: int = 30
    max_upstream_queries: int = 48
    max_glueless_depth: int = 3
    max_glueless_per_delegation: int = 4
    max_in_flight: int = 1000
    max_resolution_time: float = 8.0
    max_tcp_clients: int = 256
    tcp_idle_timeout: float = 10.0


@dataclass(frozen=True)
class CacheConfig:
    """Sizes and TTL bounds of the cache (names follow Unbound's cache-max-ttl and friends)."""

    max_entries: int = 100_000
    # Rendered responses kept for the cache-hit fast path (one per question).
    max_packets: int = 100_000
    max_ttl: int = 86_400
    min_ttl: int = 0
    max_negative_ttl: int = 3_600
    max_delegation_ttl: int = 172_800
    # RFC 8767 serve-stale: when every authority fails, answer from data expired no longer
    # ago than this (RFC 8767 suggests 1 to 3 days), with a short TTL so clients ask again soon.
    serve_stale: bool = True
    max_stale: int = 86_400
    stale_answer_ttl: int = 30


@dataclass(frozen=True)
class UpstreamConfig:
    """How the iterator talks to authoritative servers."""

    timeout: float = 1.0
    port: int = 53
    edns_payload: int = 1232
    query_loopback: bool = False
    do_ip4: bool = True
    do_ip6: bool = True
    server_table_size: int = 10_000
    # 0x20: randomise the letter case of query names and insist on it in responses. Off by
    # default, as in Unbound: a few authoritative servers do not echo the case they were sent.
    use_0x20: bool = False


@dataclass(frozen=True)
class Config:
    """The whole configuration of one resolver instance."""

    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 53), ("::1", 53))
    root_hints: Path = field(default_factory=bundled_root_hints)
    allow: tuple[IPNetwork, ...] = LOOPBACK_NETWORKS
    edns_payload: int = 1232
    limits: Limits = field(default_factory=Limits)
    cache: CacheConfig = field(default_factory=CacheConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
