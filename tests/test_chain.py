"""`Chain` puts an answer together from its links: one link's parts are taken as they are, and
several links' are joined. Both give what joining every link's parts in order gives."""

from __future__ import annotations

import random

import dns.name
import dns.rcode
import dns.rrset
import pytest

from resolver.core.actions import Answer
from resolver.core.chain import Chain, Step
from resolver.core.reasons import ResolutionFailed, ServfailReason, ValidationNote
from resolver.core.security import Security


def _rrset(text: str) -> dns.rrset.RRset:
    name, rdtype, rdata = text.split(" ", 2)
    return dns.rrset.from_text(name, 300, "IN", rdtype, rdata)


def _joined(links: list[Step]) -> Answer:
    """The answer as the chain has always defined it: every part of every link, in order."""
    notes: list[ValidationNote] = []
    for link in links:
        notes.extend(note for note in link.notes if note not in notes)
    last = links[-1]
    return Answer(
        last.rcode,
        tuple(rrset for link in links for rrset in link.records),
        () if last.authority is None else (last.authority,),
        signatures=tuple(rrset for link in links for rrset in link.signatures),
        proof=tuple(rrset for link in links for rrset in link.proof),
        security=min(link.security for link in links),
        notes=tuple(notes),
    )


def _random_links(rng: random.Random) -> list[Step]:
    """A chain of aliases a0 -> a1 -> ... ending in data, NXDOMAIN or NODATA."""
    count = rng.randint(1, 4)
    links = []
    for index in range(count):
        name = f"a{index}.test."
        last = index == count - 1
        notes = tuple(rng.choice(list(ValidationNote)) for _ in range(rng.randint(0, 3)))
        signatures = tuple(_rrset(f"{name} TXT sig{k}") for k in range(rng.randint(0, 2)))
        proof = tuple(_rrset(f"{name} TXT proof{k}") for k in range(rng.randint(0, 2)))
        security = rng.choice(list(Security))
        if not last:
            records: tuple[dns.rrset.RRset, ...] = (_rrset(f"{name} CNAME a{index + 1}.test."),)
            links.append(
                Step(
                    dns.rcode.NOERROR,
                    records,
                    next_name=dns.name.from_text(f"a{index + 1}.test."),
                    signatures=signatures,
                    proof=proof,
                    security=security,
                    notes=notes,
                )
            )
            continue
        ending = rng.choice(["data", "nxdomain", "nodata"])
        soa = _rrset("test. SOA ns.test. host.test. 1 2 3 4 5")
        links.append(
            Step(
                dns.rcode.NXDOMAIN if ending == "nxdomain" else dns.rcode.NOERROR,
                (_rrset(f"{name} A 192.0.2.1"),) if ending == "data" else (),
                authority=None if ending == "data" else soa,
                signatures=signatures,
                proof=proof,
                security=security,
                notes=notes,
            )
        )
    return links


@pytest.mark.parametrize("seed", range(200))
def test_the_answer_joins_every_link_in_order(seed: int) -> None:
    links = _random_links(random.Random(seed))
    chain = Chain(dns.name.from_text("a0.test."), limit=8)
    for link in links[:-1]:
        assert chain.extend(link) is None
        assert chain.name == link.next_name
    assert chain.extend(links[-1]) == _joined(links)


def test_a_loop_and_a_long_chain_fail() -> None:
    alias = Step(
        dns.rcode.NOERROR,
        (_rrset("a.test. CNAME b.test."),),
        next_name=dns.name.from_text("a.test."),
    )
    with pytest.raises(ResolutionFailed) as failure:
        Chain(dns.name.from_text("a.test."), limit=8).extend(alias)
    assert failure.value.reason is ServfailReason.CNAME_LOOP
    chain = Chain(dns.name.from_text("a0.test."), limit=2)
    for index in range(2):
        link = Step(
            dns.rcode.NOERROR,
            (_rrset(f"a{index}.test. CNAME a{index + 1}.test."),),
            next_name=dns.name.from_text(f"a{index + 1}.test."),
        )
        assert chain.extend(link) is None
    with pytest.raises(ResolutionFailed) as failure:
        chain.extend(
            Step(
                dns.rcode.NOERROR,
                (_rrset("a2.test. CNAME a3.test."),),
                next_name=dns.name.from_text("a3.test."),
            )
        )
    assert failure.value.reason is ServfailReason.CNAME_CHAIN_TOO_LONG
