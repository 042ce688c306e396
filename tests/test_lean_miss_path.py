"""The shortcuts of the miss path give exactly what the general tools they replace give.

The upstream query renders itself (`exchange.make_query`) instead of going through dnspython's
renderer: it must be indistinguishable from what it replaces. (The caches' `ExpiringLru`
against the mapping it replaces: tests/test_cache_lru.py.)
"""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from resolver.core.exchange import QUERY_PADDING_BLOCK, make_query, make_tls_query
from resolver.core.scrub import randomize_case

NAMES = ["a1.bench.test.", "WWW.Example.COM.", ".", "x" * 63 + ".y" * 60 + ".", "a\\.b.test."]


@pytest.mark.parametrize("text", NAMES)
@pytest.mark.parametrize("payload", [None, 512, 1232, 4096])
@pytest.mark.parametrize("flags", [0, dns.flags.RD, dns.flags.RD | dns.flags.CD])
def test_a_query_renders_to_the_bytes_dnspython_renders(
    text: str, payload: int | None, flags: int
) -> None:
    name = dns.name.from_text(text)
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.NS, dns.rdatatype.ANY):
        ours = make_query(name, rdtype, payload=payload, flags=flags)
        theirs = dns.message.make_query(
            name,
            dns.rdatatype.RdataType.make(rdtype),
            use_edns=False if payload is None else 0,
            payload=payload or 1232,
            flags=flags,
            id=0,
        )
        assert ours == theirs
        assert (ours.edns, ours.payload, ours.request_payload, ours.ednsflags) == (
            theirs.edns,
            theirs.payload,
            theirs.request_payload,
            theirs.ednsflags,
        )
        for query_id in (0, 1, 0x8000, 0xFFFF):
            ours.id = theirs.id = query_id  # as the carrier sets it
            assert ours.to_wire() == theirs.to_wire()
            assert ours.to_wire(prepend_length=True) == theirs.to_wire(prepend_length=True)
            assert ours.to_wire(max_size=512) == theirs.to_wire(max_size=512)
            assert dns.message.from_wire(ours.to_wire()) == theirs


@pytest.mark.parametrize("text", NAMES)
@pytest.mark.parametrize("dnssec", [False, True])
@pytest.mark.parametrize("recursive", [False, True])
def test_a_dot_query_renders_to_the_bytes_dnspython_renders(
    text: str, dnssec: bool, recursive: bool
) -> None:
    """The keepalive option and the padding (RFC 8467) included, to the last zero."""
    name = dns.name.from_text(text)
    keepalive = dns.edns.GenericOption(dns.edns.OptionType.KEEPALIVE, b"")
    for payload in (512, 1232, 4096):
        ours = make_tls_query(name, dns.rdatatype.AAAA, payload, recursive, dnssec=dnssec)
        theirs = dns.message.make_query(
            name,
            dns.rdatatype.AAAA,
            use_edns=0,
            want_dnssec=dnssec,
            payload=payload,
            options=[keepalive],
            pad=QUERY_PADDING_BLOCK,
            flags=dns.flags.RD if recursive else 0,
            id=0,
        )
        for query_id in (0, 0xFFFF):
            ours.id = theirs.id = query_id
            assert ours.to_wire() == theirs.to_wire()
            assert len(ours.to_wire()) % QUERY_PADDING_BLOCK == 0
            assert ours.to_wire(prepend_length=True) == theirs.to_wire(prepend_length=True)


def test_the_query_keeps_the_case_0x20_gave_its_name() -> None:
    name = randomize_case(dns.name.from_text("mixed.case.example.test."), random.Random(7))
    query = make_query(name, dns.rdatatype.A, payload=1232)
    assert dns.message.from_wire(query.to_wire()).question[0].name.labels == name.labels


def test_a_query_changed_after_it_was_made_is_rendered_by_dnspython() -> None:
    query = make_query(dns.name.from_text("a.test."), dns.rdatatype.A, payload=1232)
    query.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, b"x")])
    query.additional.append(dns.rrset.from_text("b.test.", 60, "IN", "A", "192.0.2.1"))
    reference = dns.message.make_query("a.test.", "A", use_edns=0, payload=1232, flags=0, id=0)
    reference.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, b"x")])
    reference.additional.append(dns.rrset.from_text("b.test.", 60, "IN", "A", "192.0.2.1"))
    assert query.to_wire() == reference.to_wire()


def test_a_query_rendered_before_dnspython_state_is_made_renders_the_same() -> None:
    """`make_query` defers dnspython's state until something reads it: the engine renders the
    query (with each ID it is given) before that, a test's network reads it after."""
    name = dns.name.from_text("WWW.Example.COM.")
    reference = dns.message.make_query(name, "AAAA", use_edns=0, payload=1232, flags=0, id=0)
    ours = make_query(name, dns.rdatatype.AAAA, payload=1232)
    for query_id in (0, 0x1234, 0xFFFF):
        ours.id = reference.id = query_id
        assert ours.to_wire() == reference.to_wire()
    assert ours.id == 0xFFFF and ours.question[0].name.labels == name.labels  # made now
    assert ours == reference and ours.to_wire() == reference.to_wire()


def test_a_deferred_query_changed_before_its_state_is_made_keeps_the_change() -> None:
    name = dns.name.from_text("a.test.")
    query = make_query(name, dns.rdatatype.A, payload=1232)
    query.flags = dns.flags.RD
    query.pad = 64
    reference = dns.message.make_query(name, "A", use_edns=0, payload=1232, pad=64, id=0)
    reference.flags = dns.flags.RD
    assert query.to_wire() == reference.to_wire()
    assert query.flags == dns.flags.RD and query.pad == 64 and query.opt is not None


def test_a_deferred_query_says_what_it_lacks() -> None:
    query = make_query(dns.name.from_text("a.test."), dns.rdatatype.A, payload=None)
    with pytest.raises(AttributeError, match="no_such_thing"):
        query.no_such_thing  # noqa: B018
    assert query.opt is None and query.edns == -1
