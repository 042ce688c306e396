"""Tools for the sequence scenarios (7-9): changing a server between questions, RD=0 questions.

A sequence scenario asks several questions of one `World`, moving its clock and changing the
servers in between: `set_zone` replaces what an `Auth` serves (a zone edited, a delegation
moved), `refused` and `dead` stand in for a server that stopped serving the zone or stopped
answering. `cache_only` asks a question with RD=0, answered from the cache alone.
"""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype

from resolver.core.actions import Answer
from resolver.core.resolution import Resolution
from tests.handbuilt import Server, World, name

from .scenario_net import Auth, Zone, make_reply


def set_zone(server: Server, *zones: Zone) -> None:
    """Make the `Auth` at `server` serve `zones` from now on, and nothing else."""
    assert isinstance(server, Auth)
    server.zones = list(zones)


def refused(query: dns.message.Message) -> dns.message.Message:
    """A server that no longer serves anything: REFUSED, without AA."""
    return make_reply(query, dns.rcode.REFUSED, aa=False)


def dead(query: dns.message.Message) -> None:
    """A server that never answers: every datagram sent to it is lost."""
    return None


def cache_only(world: World, qname: str, rdtype: str = "A") -> tuple[Answer, int]:
    """Ask `qname` with RD=0 (from the cache only): the answer and the queries it sent."""
    resolution = Resolution(
        name(qname), dns.rdatatype.from_text(rdtype), world.context, cache_only=True
    )
    mark = len(world.log)
    answer = world.finish(resolution, resolution.next_action())
    return answer, len(world.log) - mark
