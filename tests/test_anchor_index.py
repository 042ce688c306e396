"""`Context.anchor_for` (an index by labels) says what `TrustAnchors.closest` says.

The index is made once and used for every link of every question, so it must follow the
anchors' changes: negative trust anchors added and removed at run time (the engine, or a test
changing the set directly) and anchors replaced by RFC 5011 (`replace_trust_anchors`).
"""

from __future__ import annotations

import dns.name

from resolver.dnssec import TrustAnchors
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import signed_config

NAMES = [
    ".",
    "sec.",
    "nsec.sec.",
    "www.nsec.sec.",
    "WwW.NsEc.SeC.",
    "a.b.c.d.unsigned.sec.",
    "nta.sec.",
    "x.nta.sec.",
    "X.Deep.NTA.sec.",
    "other.",
]


def expected(world: ScriptedWorld, name: dns.name.Name) -> object:
    anchor = world.context.trust_anchors.closest(name)
    return None if anchor is None else (anchor.zone.to_text(), anchor)


def found(world: ScriptedWorld, name: dns.name.Name) -> object:
    anchor = world.context.anchor_for(name)
    return None if anchor is None else (anchor.zone.to_text(), anchor)


def assert_agree(world: ScriptedWorld) -> None:
    for text in NAMES:
        name = dns.name.from_text(text)
        assert found(world, name) == expected(world, name), text


def test_anchor_for_agrees_with_closest_as_anchors_change() -> None:
    internet = TestInternet.signed()
    world = ScriptedWorld(internet, signed_config())
    assert_agree(world)
    ntas = world.context.negative_trust_anchors
    ntas.add(dns.name.from_text("NTA.sec."))
    assert world.context.anchor_for(dns.name.from_text("x.nta.sec.")).negative  # type: ignore[union-attr]  # an anchor covers it
    assert_agree(world)
    ntas.add(dns.name.from_text("."))  # an NTA at the anchor's own zone wins the tie
    assert_agree(world)
    ntas.clear()
    assert_agree(world)
    assert world.engine.add_negative_trust_anchor(dns.name.from_text("nsec.sec."))
    assert_agree(world)
    anchors = world.context.trust_anchors
    sec = dns.name.from_text("sec.")
    if anchors.ds:  # one more anchor, at sec. (its records do not matter here)
        more = TrustAnchors({**anchors.ds, sec: next(iter(anchors.ds.values()))}, anchors.dnskeys)
    else:
        more = TrustAnchors(anchors.ds, {**anchors.dnskeys, sec: anchors.dnskeys[dns.name.root]})
    world.context.replace_trust_anchors(more)
    assert world.context.anchor_for(dns.name.from_text("www.sec.")).zone == sec  # type: ignore[union-attr]  # an anchor covers it
    assert_agree(world)
    world.context.replace_trust_anchors(TrustAnchors())
    assert world.context.anchor_for(dns.name.from_text("www.sec.")) is None
