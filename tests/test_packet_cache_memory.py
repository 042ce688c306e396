"""The ready replies of `PacketCache.answer_again` are keyed by the whole query, and a plain
query may carry EDNS options of any size: only small queries may become keys, or one client
could make the resolver keep 4,096 keys of up to 64 KB each (found by review: 164 MB)."""

from __future__ import annotations

import dns.edns
import dns.message

from resolver.cache import packets as packets_module
from resolver.cache.packets import PacketCache, parse_plain_query
from resolver.testing.scripted import FakeClock
from tests.test_packet_cache import stored_response, wire_of


def test_ready_replies_do_not_hold_huge_queries() -> None:
    clock = FakeClock()
    packets = PacketCache(100, clock, our_payload=1232)
    key = parse_plain_query(wire_of("www.example.test."))
    assert key is not None
    packets.store(key.key, stored_response())
    count = 64  # each query is a hit; every one would keep its 40 KB as a ready key
    for number in range(count):
        padding = dns.edns.GenericOption(
            dns.edns.OptionType.PADDING, number.to_bytes(2, "big") * 20_000
        )
        query = dns.message.make_query(
            "www.example.test.", "A", use_edns=0, payload=1232, options=[padding]
        )
        wire = query.to_wire(max_size=65535)
        question = parse_plain_query(wire)
        assert question is not None  # options of any size are "plain"
        assert packets.answer(wire, question, 1232, repeatable=True) is not None
    held = sum(len(query) for query in packets._ready)
    # A ready reply should cost about what the docstring says (a few hundred bytes each).
    assert held <= count * 1024, f"{held} bytes of query kept for {count} ready replies"
    # What all ready replies' keys may hold at most: a couple of megabytes.
    assert packets_module._READY_MEMORY * packets_module._READY_QUERY_SIZE <= 2 * 2**20
