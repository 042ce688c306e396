"""Which server to ask next: usable addresses only, fastest known first, ties broken at random."""

from __future__ import annotations

import functools
import ipaddress
import random
from dataclasses import dataclass

from resolver.cache.servers import ServerTable
from resolver.config import UpstreamConfig
from resolver.core.actions import Server

#: Never a destination: "this network" (RFC 1122 3.2.1.3; 0.0.0.0 itself reaches the host).
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


def usable_address(address: str, config: UpstreamConfig, *, configured: bool = False) -> bool:
    """May a query go to this address?

    Never to unspecified, "this network" (0.0.0.0/8) or multicast addresses, in IPv4 or
    IPv4-mapped IPv6 form (`::ffff:0.0.0.1`): no server lives there, and some stacks deliver
    them to the host itself. Loopback (127.0.0.0/8, ::1, `::ffff:127.0.0.1`) only with
    `query_loopback` or when the operator `configured` the address (root hints file, stub and
    forward zones), as in Knot Resolver: learned from the network, such an address is a
    misconfiguration or an attempt to turn the resolver against the host it runs on (Unbound's
    do-not-query-localhost). `do_ip4` and `do_ip6` apply to the address family of the socket.
    """
    kind = _address_kind(address)
    if kind is None or not (config.do_ip4 if kind.version == 4 else config.do_ip6):
        return False
    if kind.never:
        return False
    return not kind.loopback or config.query_loopback or configured


@dataclass(frozen=True, slots=True)
class _Kind:
    """What `usable_address` needs to know of an address, whatever the configuration."""

    version: int
    never: bool  # unspecified, "this network" or multicast, in either form
    loopback: bool


@functools.lru_cache(maxsize=4096)
def _address_kind(address: str) -> _Kind | None:
    """The address's kind, None if it is not an IP address.

    Memoised: parsing an address with `ipaddress` costs more than the rest of choosing a
    server, and the same few addresses (the servers of the zones in use) come back on every
    query. Bounded, since addresses learnt from the network are unbounded in number.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    target = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    never = False
    for form in (ip, target):
        if form is None:
            continue
        if form.is_unspecified or form.is_multicast:
            never = True
        if isinstance(form, ipaddress.IPv4Address) and form in _THIS_NETWORK:
            never = True
    loopback = ip.is_loopback or (target is not None and target.is_loopback)
    return _Kind(ip.version, never, loopback)


def choose_server(candidates: list[Server], table: ServerTable, rng: random.Random) -> Server:
    """The candidate with the lowest smoothed RTT; unmeasured ones first so each gets tried.

    Ties (unmeasured servers all score 0) go to one of the tied at random, each as likely:
    what shuffling the list and taking the first lowest gave, for one draw instead of one per
    candidate, and none at all when one server is ahead.
    """
    if len(candidates) == 1:
        return candidates[0]
    scores = table.scores([server.address for server in candidates])
    best = min(scores)
    if scores.count(best) == 1:
        return candidates[scores.index(best)]
    return rng.choice(
        [server for server, score in zip(candidates, scores, strict=True) if score == best]
    )


def choose_in_order(candidates: list[Server], table: ServerTable) -> Server:
    """The candidate with the lowest smoothed RTT, ties going to the one listed first.

    For forwarders the operator's list is the order of preference: unmeasured servers all score
    0, so the first listed is asked first, and one that times out is penalised so that the next
    takes over; once measured, the fastest is used, as for authoritative servers.
    """
    scores = table.scores([server.address for server in candidates])
    return candidates[scores.index(min(scores))]
