"""RFC 5452 through real sockets: forged answers race the real one and must all lose.

The test internet's SPOOF fault sends, before every genuine answer, 50 datagrams with wrong
IDs, one with the right ID but another question, one from another address and one from another
port, each claiming the name is at 6.6.6.6. A resolver that believed any of them is poisoned.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype

from resolver.server.service import ResolverService
from resolver.testing import POISON_ADDRESS, Fault, TestInternet
from tests.frontend_support import ask, query

EXAMPLE_SERVERS = ("ns1.example.test.", "ns2.example.test.")


async def test_forged_answers_are_neither_returned_nor_cached(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    for name in EXAMPLE_SERVERS:
        live_internet.servers[name].fault = Fault.SPOOF
    for name in ("www", "mail", "alias"):
        response = await ask(query(f"{name}.example.test."))
        addresses = [
            rdata.address for rrset in response.answer if rrset.rdtype == 1 for rdata in rrset
        ]
        assert addresses and POISON_ADDRESS not in addresses, name
    assert sum(live_internet.servers[n].spoofs_sent for n in EXAMPLE_SERVERS) >= 3 * 53
    cache = resolver.cache
    poison = cache.get_rrset(dns.name.from_text("poison.test."), dns.rdatatype.A)
    assert poison is None
    for name in ("www", "mail"):
        held = cache.get_rrset(dns.name.from_text(f"{name}.example.test."), dns.rdatatype.A)
        assert held is not None and POISON_ADDRESS not in held.to_text()


async def test_upstream_ids_and_source_ports_are_unpredictable(
    resolver: ResolverService, live_internet: TestInternet
) -> None:
    for letter in "abcdefghijklmnopqrstuvwxyz":
        await ask(query(f"{letter}.slow.test."))
    received = [
        q
        for name in ("ns1.slow.test.", "ns2.slow.test.")
        for q in live_internet.servers[name].queries
        if not q.tcp
    ]
    assert len(received) == 26
    ids = {q.id for q in received}
    ports = {q.source_port for q in received}
    assert len(ids) >= 24  # 16 random bits each: a repeat is rare, a pattern would show
    assert len(ports) >= 24  # a fresh ephemeral port per query
    assert 53 not in ports
