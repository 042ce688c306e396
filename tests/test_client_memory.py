"""What the client side holds between the packet cache's miss and the full path: only the
plain queries the full path takes back, so a client cannot pin memory with queries it keeps
unanswered (RD=0, large EDNS options)."""

from __future__ import annotations

import struct

import pytest

from resolver.cache.packets import PacketCache
from resolver.config import Config
from resolver.engine.clients import ClientProtocol

NAME = b"\x03www\x07example\x03com\x00"


def _query(ident: int, *, rd: bool, option_length: int) -> bytes:
    flags = 0x0100 if rd else 0
    opt_rdata = b""
    if option_length:
        opt_rdata = struct.pack("!HH", 65001, option_length) + bytes(option_length)
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(opt_rdata)) + opt_rdata
    header = struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 1)
    return header + NAME + struct.pack("!HH", 1 + ident % 50, 1) + opt


def _held_after_misses(rd: bool, option_length: int) -> int:
    clients = ClientProtocol(Config(), PacketCache(1000, lambda: 0.0, 1232))
    for ident in range(300):
        wire = _query(ident, rd=rd, option_length=option_length)
        assert clients.from_packet_cache(wire, "127.0.0.1", True) is None
        clients.admit(wire, "127.0.0.1", True)
    return sum(len(wire) for wire in clients._missed)


@pytest.mark.parametrize(
    ("rd", "option_length"), [(False, 0), (False, 60_000), (True, 60_000), (True, 0)]
)
def test_a_missed_query_is_held_only_until_the_full_path_takes_it(
    rd: bool, option_length: int
) -> None:
    assert _held_after_misses(rd, option_length) == 0
