"""What the resolver has learned about each upstream server: speed, failures, EDNS support.

This is Unbound's infrastructure cache (RFC 9520 section 3 asks for its failure parts):

- a smoothed round-trip time steers selection towards fast servers;
- a timeout penalty (at least the timeout, doubled on each further failure) sends queries to
  the server's peers, and it halves every `upstream.penalty_half_life` seconds so that a server
  that was down once is tried again later instead of being shunned until the entry expires;
- after `upstream.hold_down_after` consecutive failures the server is held down (skipped) for
  `upstream.hold_down_time`, doubling with each further failure up to
  `upstream.max_hold_down_time`, so that a dead zone does not cost every client the full
  timeout; when a hold-down ends exactly one probe is let through, and the hold is re-armed
  while it is out, so a probe that never reports back cannot open the gate for everyone;
- "no EDNS" marks (a server that answered FORMERR to EDNS) expire, so an upgraded server gets
  EDNS again.

Every entry is forgotten `upstream.infra_ttl` seconds after its last update (Unbound's
infra-host-ttl), and the table is bounded (LRU) so that a resolver meeting millions of servers
does not grow without end. Time comes from the injected wall clock, like the record cache's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dns.name

from resolver.cache.lru import ExpiringLru
from resolver.config import UpstreamConfig

Clock = Callable[[], float]


@dataclass(slots=True)
class ServerInfo:
    """One server's record; times are absolute readings of the table's clock.

    `srtt` is the smoothed round-trip time in seconds (None until measured). `penalty` is the
    timeout penalty as it was at `penalty_since`; it decays from there. `failures` counts
    consecutive failures (a success resets it). `held_until` is when a hold-down ends (0: not
    held); `probing` says that the one probe allowed after a hold-down is out.
    """

    srtt: float | None = None
    penalty: float = 0.0
    penalty_since: float = 0.0
    failures: int = 0
    held_until: float = 0.0
    probing: bool = False
    no_edns_until: float = 0.0
    #: When the entry goes (`upstream.infra_ttl` after its last update).
    expires: float = 0.0


def _info_expiry(_address: str, info: ServerInfo) -> float:
    return info.expires


def _mark_expiry(_key: tuple[str, dns.name.Name], expires: float) -> float:
    return expires


class ServerTable:
    """Per-address infrastructure data used by server selection."""

    #: Weight of a new RTT sample in the smoothed RTT (as TCP's SRTT, RFC 6298, uses 1/8;
    #: a resolver sees far fewer samples per server, so it moves faster).
    SMOOTHING = 0.3
    #: The largest timeout penalty, in seconds: enough to put any live peer first.
    MAX_PENALTY = 10.0

    def __init__(self, size: int, clock: Clock, config: UpstreamConfig | None = None) -> None:
        self._clock = clock
        self._config = config if config is not None else UpstreamConfig()
        self._ttl = self._config.infra_ttl
        # Each update stores the entry again, so its lifetime runs from the last update.
        self._servers: ExpiringLru[str, ServerInfo] = ExpiringLru(size, _info_expiry)
        # (address, zone) pairs whose server said it does not serve the zone, with when the
        # mark goes, kept as long as the rest (Unbound's lame marks in its infrastructure
        # cache): one address may be lame for one zone and serve another.
        self._lame: ExpiringLru[tuple[str, dns.name.Name], float] = ExpiringLru(size, _mark_expiry)
        # When the last "no EDNS" mark set so far runs out: none can be in force after it.
        self._no_edns_until = 0.0

    def __len__(self) -> int:
        return self._servers.size(self._clock())

    def info(self, address: str) -> ServerInfo | None:
        """What is known about `address`, or None (never met, or forgotten since)."""
        return self._servers.get(address, self._clock())

    def _update(self, address: str) -> ServerInfo:
        """The entry to change (a new one if none); stored again so its lifetime restarts."""
        now = self._clock()
        info = self._servers.pop(address)  # `get`, without moving it twice: `put` does it
        if info is None or info.expires <= now:
            info = ServerInfo()
        info.expires = now + self._ttl
        self._servers.put(address, info, now)
        return info

    def _penalty(self, info: ServerInfo, now: float) -> float:
        """The timeout penalty left now: it halves every `penalty_half_life` seconds."""
        if not info.penalty:
            return 0.0
        elapsed = max(0.0, now - info.penalty_since)
        return info.penalty * 0.5 ** (elapsed / self._config.penalty_half_life)

    def score(self, address: str) -> float:
        """Lower is better; an unknown server scores 0 so that each gets tried once.

        The score is the smoothed RTT, or the decayed timeout penalty if that is larger.
        """
        return self.scores([address])[0]

    def scores(self, addresses: list[str]) -> list[float]:
        """`score` of each address, on one reading of the clock (selection asks for several)."""
        now = self._clock()
        get = self._servers.get
        scores = []
        for address in addresses:
            info = get(address, now)
            if info is None:
                scores.append(0.0)
            elif not info.penalty:
                scores.append(info.srtt or 0.0)
            else:
                scores.append(max(info.srtt or 0.0, self._penalty(info, now)))
        return scores

    def record_rtt(self, address: str, rtt: float) -> None:
        """A reply came back after `rtt` seconds: every failure mark is cleared."""
        info = self._update(address)
        info.penalty = 0.0
        info.failures = 0
        info.held_until = 0.0
        info.probing = False
        srtt = info.srtt
        info.srtt = rtt if srtt is None else srtt + self.SMOOTHING * (rtt - srtt)

    def record_failure(self, address: str, timeout: float) -> None:
        """A timeout or error doubles the server's penalty, so its peers are preferred.

        From the `hold_down_after`-th consecutive failure on, the server is also held down.
        """
        now = self._clock()
        info = self._update(address)
        current = max(info.srtt or 0.0, self._penalty(info, now))
        info.penalty = min(self.MAX_PENALTY, max(2 * current, timeout))
        info.penalty_since = now
        info.failures += 1
        info.probing = False
        if info.failures >= self._config.hold_down_after:
            info.held_until = now + self._hold_time(info.failures)

    def record_unreachable(self, address: str) -> None:
        """The network said no (ENETUNREACH, EHOSTUNREACH, ECONNREFUSED): hold it down at once.

        No reply will come from a route that does not exist, so waiting for the hold-down
        threshold would only make more clients wait.
        """
        self.record_failure(address, self._config.timeout)
        now = self._clock()
        info = self._update(address)
        failures = max(info.failures, self._config.hold_down_after)
        info.held_until = max(info.held_until, now + self._hold_time(failures))

    def _hold_time(self, failures: int) -> float:
        """`hold_down_time`, doubled for each failure past the threshold, capped."""
        config = self._config
        doublings = min(max(0, failures - config.hold_down_after), 32)
        return min(config.max_hold_down_time, config.hold_down_time * 2**doublings)

    def held_down(self, address: str) -> bool:
        """Should `address` be skipped now? False for a server that is not held down.

        When a hold-down has run out, the first caller gets False and is expected to send the
        one probe; the hold is re-armed for the probe's sake, so every other caller gets True
        until the probe succeeds (`record_rtt`) or fails (`record_failure`), or, if it never
        reports back, until the re-armed hold runs out and another probe is let through.
        """
        info = self.info(address)
        if info is None or not info.held_until:
            return False
        now = self._clock()
        if now < info.held_until:
            return True
        info = self._update(address)
        info.probing = True
        info.held_until = now + self._hold_time(info.failures)
        return False

    def probing(self, address: str) -> bool:
        """Is the one probe after a hold-down out for `address` (for traces and tests)?"""
        info = self.info(address)
        return info is not None and info.probing

    def set_no_edns(self, address: str) -> None:
        """The server answered FORMERR to EDNS: ask it without EDNS for `infra_ttl` seconds."""
        self._no_edns_until = self._clock() + self._config.infra_ttl
        info = self._update(address)
        info.no_edns_until = self._clock() + self._config.infra_ttl

    def record_lame(self, address: str, zone: dns.name.Name) -> None:
        """The server at `address` answered as one that does not serve `zone` (lame, REFUSED)."""
        now = self._clock()
        self._lame.put((address, zone), now + self._ttl, now)

    def any_lame(self) -> bool:
        """Whether any lame mark is held (expired or not): when none is, no server of any zone
        needs checking (`is_lame`)."""
        return bool(self._lame)

    def is_lame(self, address: str, zone: dns.name.Name) -> bool:
        """Whether `address` was found lame for `zone` within the last `infra_ttl` seconds."""
        # Most resolvers hold no lame mark at all: skip hashing the zone's name then.
        return bool(self._lame) and self._lame.get((address, zone), self._clock()) is not None

    def no_edns(self, address: str) -> bool:
        """Whether `address` is asked without EDNS, after its FORMERR (`set_no_edns`)."""
        if self._clock() >= self._no_edns_until:  # no mark is left: no entry to look up
            return False
        info = self.info(address)
        return info is not None and self._clock() < info.no_edns_until
