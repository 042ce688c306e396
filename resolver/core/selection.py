"""Which server to ask next: usable addresses only, fastest known first, ties broken at random."""

from __future__ import annotations

import ipaddress
import random

from resolver.cache.servers import ServerTable
from resolver.config import UpstreamConfig
from resolver.core.actions import Server


def usable_address(address: str, config: UpstreamConfig) -> bool:
    """May a query go to this address? Never to loopback or unspecified unless allowed.

    Like Unbound's do-not-query-localhost: on the real internet such glue is a misconfiguration
    or an attempt to turn the resolver against the host it runs on.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if not (config.do_ip4 if ip.version == 4 else config.do_ip6):
        return False
    if ip.is_unspecified or ip.is_multicast:
        return False
    return config.query_loopback or not ip.is_loopback


def choose_server(candidates: list[Server], table: ServerTable, rng: random.Random) -> Server:
    """The candidate with the lowest smoothed RTT; unmeasured ones first so each gets tried."""
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    return min(shuffled, key=lambda server: table.score(server.address))


def choose_in_order(candidates: list[Server], table: ServerTable) -> Server:
    """The candidate with the lowest smoothed RTT, ties going to the one listed first.

    For forwarders the operator's list is the order of preference: unmeasured servers all score
    0, so the first listed is asked first, and one that times out is penalised so that the next
    takes over; once measured, the fastest is used, as for authoritative servers.
    """
    return min(candidates, key=lambda server: table.score(server.address))
