"""What the resolver has learned about each upstream server: speed, timeouts, EDNS support.

Bounded (LRU) so that a resolver that meets millions of servers does not grow without end.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache


@dataclass(slots=True)
class ServerInfo:
    """Smoothed round-trip time in seconds (None until measured), and what the server can do."""

    srtt: float | None = None
    timeouts: int = 0
    no_edns: bool = False


class ServerTable:
    """Per-address infrastructure data used by server selection."""

    SMOOTHING = 0.3
    MAX_PENALTY = 10.0

    def __init__(self, size: int) -> None:
        self._servers: LRUCache[str, ServerInfo] = LRUCache(maxsize=size)

    def __len__(self) -> int:
        return len(self._servers)

    def info(self, address: str) -> ServerInfo:
        info = self._servers.get(address)
        if info is None:
            info = self._servers[address] = ServerInfo()
        return info

    def score(self, address: str) -> float:
        """Lower is better; an unknown server scores 0 so that each gets tried once."""
        info = self._servers.get(address)
        return 0.0 if info is None or info.srtt is None else info.srtt

    def record_rtt(self, address: str, rtt: float) -> None:
        info = self.info(address)
        info.timeouts = 0
        if info.srtt is None:
            info.srtt = rtt
        else:
            info.srtt += self.SMOOTHING * (rtt - info.srtt)

    def record_failure(self, address: str, timeout: float) -> None:
        """A timeout or error doubles the server's penalty, so its peers are preferred."""
        info = self.info(address)
        info.timeouts += 1
        info.srtt = min(self.MAX_PENALTY, max(2 * (info.srtt or 0.0), timeout))

    def set_no_edns(self, address: str) -> None:
        self.info(address).no_edns = True

    def no_edns(self, address: str) -> bool:
        info = self._servers.get(address)
        return info is not None and info.no_edns
