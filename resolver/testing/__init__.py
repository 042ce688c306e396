"""A small authoritative DNS internet on loopback, for the resolver's tests, benchmarks and demo.

Root, TLD and second-level zones are served by separate servers on distinct 127.53.x.y addresses,
so a resolver under test has to iterate for real; each server counts its queries and can be made
to misbehave, plant out-of-bailiwick data, or race its own answers with forgeries.
`python -m resolver.testing` runs the standard topology until interrupted.
"""

from resolver.testing.authority import answer
from resolver.testing.faults import POISON_ADDRESS, SPOOF_SOURCE_ADDRESS, Fault
from resolver.testing.internet import TestInternet
from resolver.testing.server import AuthServer, ReceivedQuery
from resolver.testing.topology import ServerSpec

__all__ = [
    "POISON_ADDRESS",
    "SPOOF_SOURCE_ADDRESS",
    "AuthServer",
    "Fault",
    "ReceivedQuery",
    "ServerSpec",
    "TestInternet",
    "answer",
]
