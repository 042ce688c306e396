"""`wirewrite` against dnspython: the same bytes as `dns.message.Message.to_wire`, always."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from resolver.cache.packets import PacketCache, parse_plain_query, ttl_offsets
from resolver.config import Config
from resolver.core.actions import Answer
from resolver.engine import clients, wirewrite
from resolver.engine.clients import ClientProtocol

SOA = "ns1.Example.COM. HostMaster.example.com. 2024010101 7200 3600 1209600 3600"


def rrset(name: str, rdtype: str, *rdatas: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *rdatas)


def ours(
    qname: str, answer: list[dns.rrset.RRset], authority: list[dns.rrset.RRset]
) -> tuple[bytes, int, int]:
    """The question and records by `wirewrite`, after a blank header."""
    assert wirewrite.handles(answer) and wirewrite.handles(authority)
    out = bytearray(12)
    compress: wirewrite.Compress = {}
    wirewrite.write_name(out, compress, dns.name.from_text(qname))
    out += b"\x00\x01\x00\x01"
    answers = sum(wirewrite.write_rrset(out, compress, r) for r in answer)
    authorities = sum(wirewrite.write_rrset(out, compress, r) for r in authority)
    return bytes(out), answers, authorities


def assert_same_as_dnspython(
    qname: str,
    answer: list[dns.rrset.RRset],
    authority: list[dns.rrset.RRset],
    edns: bool = False,
    seed: int = 7,
) -> None:
    request = dns.message.make_query(qname, "A", use_edns=0 if edns else None)
    response = dns.message.make_response(request)
    response.answer, response.authority = list(answer), list(authority)
    if edns:
        ede = dns.edns.EDEOption(dns.edns.EDECode.OTHER, "words")
        response.use_edns(0, payload=1232, options=[ede])
    random.seed(seed)
    expected = response.to_wire()
    random.seed(seed)
    mine, answers, authorities = ours(qname, answer, authority)
    assert expected[12 : len(mine)] == mine[12:]
    assert expected[6:10] == answers.to_bytes(2, "big") + authorities.to_bytes(2, "big")
    rest = expected[len(mine) :]
    if edns:
        assert rest[:3] == b"\x00\x00\x29"  # only the OPT follows: owner root, type 41
    else:
        assert rest == b""


CASES: dict[str, tuple[str, list[dns.rrset.RRset], list[dns.rrset.RRset]]] = {
    "a": ("www.example.com.", [rrset("www.example.com.", "A", "192.0.2.1", "192.0.2.2")], []),
    "aaaa": (
        "v6.Example.com.",
        [rrset("V6.example.com.", "AAAA", "2001:db8::1", "::ffff:192.0.2.1", "::")],
        [],
    ),
    "cname chain across zones": (
        "WWW.Example.COM.",
        [
            rrset("www.example.com.", "CNAME", "www.example.com.CDN.Net."),
            rrset("www.example.com.cdn.net.", "CNAME", "e1.a.akamai.test."),
            rrset("E1.A.Akamai.TEST.", "A", "192.0.2.7"),
        ],
        [],
    ),
    "nxdomain": ("nope.www.example.com.", [], [rrset("Example.com.", "SOA", SOA, ttl=900)]),
    "nodata": ("example.com.", [], [rrset("example.com.", "SOA", SOA, ttl=900)]),
    "soa in another zone": ("x.test.", [], [rrset("test.", "SOA", "a.b. c.d. 1 2 3 4 5")]),
    "ns": (
        "example.com.",
        [rrset("example.com.", "NS", "ns1.example.com.", "NS2.EXAMPLE.com.", "ns.other.net.")],
        [],
    ),
    "ptr": ("1.2.0.192.in-addr.arpa.", [rrset("1.2.0.192.in-addr.arpa.", "PTR", "host.x.")], []),
    "mx": (
        "example.com.",
        [rrset("example.com.", "MX", "10 mail.example.com.", "20 Mail2.Example.com.")],
        [],
    ),
    "txt": (
        "example.com.",
        [rrset("example.com.", "TXT", '"v=spf1 -all"', '"a" "" "b"', '""')],
        [],
    ),
    "spf": ("example.com.", [rrset("example.com.", "SPF", '"v=spf1 -all"')], []),
    "dname and srv do not compress": (
        "_sip._tcp.example.com.",
        [
            rrset("example.com.", "DNAME", "example.com.other.net."),
            rrset("_sip._tcp.example.com.", "SRV", "0 5 5060 sip.example.com."),
        ],
        [],
    ),
    "uncompressed types": (
        "example.com.",
        [
            rrset("example.com.", "HTTPS", '1 example.com. alpn="h2,h3"'),
            rrset("example.com.", "SVCB", "0 svc.example.com."),
            rrset("example.com.", "CAA", '0 issue "ca.example.net"'),
            rrset("example.com.", "HINFO", '"cpu" "os"'),
            rrset("example.com.", "NAPTR", '100 10 "S" "SIP+D2U" "" _sip._udp.example.com.'),
            rrset("example.com.", "DS", "12345 8 2 " + "ab" * 32),
            rrset("example.com.", "SSHFP", "1 1 " + "cd" * 20),
        ],
        [rrset("example.com.", "NSEC", "next.example.com. A NS SOA")],
    ),
    "empty rrset": (
        "example.com.",
        [dns.rrset.RRset(dns.name.from_text("a.com."), dns.rdataclass.IN, dns.rdatatype.A)],
        [],
    ),
    "root owner": (".", [rrset(".", "NS", "a.root-servers.net.")], []),
}


@pytest.mark.parametrize("edns", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_common_replies_match_dnspython(case: str, edns: bool) -> None:
    qname, answer, authority = CASES[case]
    for seed in range(5):  # several shuffles of the RRsets of more than one record
        assert_same_as_dnspython(qname, answer, authority, edns=edns, seed=seed)


def test_names_beyond_the_pointer_limit_are_not_remembered() -> None:
    strings = " ".join(['"' + "x" * 250 + '"'] * 4)
    answer = [rrset(f"n{i}.Far.example.", "TXT", strings) for i in range(20)]  # ~20 KB
    answer.append(rrset("late.far.EXAMPLE.", "CNAME", "n3.far.example."))
    answer.append(rrset("n19.far.example.", "MX", "1 n19.far.example."))
    authority = [rrset("far.example.", "SOA", "ns.far.example. h.late.far.example. 1 2 3 4 5")]
    assert_same_as_dnspython("n0.far.example.", answer, authority)
    mine = ours("n0.far.example.", answer, authority)[0]
    assert len(mine) > 0x4000


def test_random_replies_match_dnspython() -> None:
    rng = random.Random(2024)
    labels = ["www", "a", "Mail", "example", "COM", "net", "cdn", "x-y", "b" * 63, "t"]
    types = {
        "A": lambda: f"192.0.2.{rng.randrange(256)}",
        "AAAA": lambda: f"2001:db8::{rng.randrange(65536):x}",
        "CNAME": lambda: name(),
        "NS": lambda: name(),
        "PTR": lambda: name(),
        "MX": lambda: f"{rng.randrange(65536)} {name()}",
        "SOA": lambda: f"{name()} {name()} 1 2 3 4 5",
        "TXT": lambda: '"' + "z" * rng.randrange(40) + '"',
        "DNAME": lambda: name(),
        "SRV": lambda: f"1 2 3 {name()}",
    }

    def name() -> str:
        chosen = [rng.choice(labels) for _ in range(rng.randrange(1, 5))]
        cased = ["".join(c.upper() if rng.random() < 0.3 else c for c in x) for x in chosen]
        return ".".join(cased) + "."

    for seed in range(300):
        sections: tuple[list[dns.rrset.RRset], list[dns.rrset.RRset]] = ([], [])
        for _ in range(rng.randrange(6)):
            rdtype = rng.choice(sorted(types))
            rdatas = {types[rdtype]() for _ in range(rng.randrange(1, 4))}
            section = sections[rng.randrange(2)]
            section.append(rrset(name(), rdtype, *sorted(rdatas), ttl=rng.randrange(1 << 31)))
        qname, edns = name(), rng.random() < 0.5
        assert_same_as_dnspython(qname, sections[0], sections[1], edns=edns, seed=seed)


def test_what_wirewrite_does_not_render_is_left_to_dnspython() -> None:
    assert not wirewrite.handles([rrset("example.com.", "LOC", "1 2 3 N 4 5 6 E 7m")])
    chaos = dns.rrset.from_text("a.", 1, "CH", "TXT", '"b"')
    assert chaos.rdclass == dns.rdataclass.CH and not wirewrite.handles([chaos])
    with pytest.raises(wirewrite.Unhandled):
        wirewrite.write_name(bytearray(), {}, dns.name.from_text("relative", None))


@pytest.mark.parametrize(
    "answer",
    [
        Answer(dns.rcode.NXDOMAIN, (), (rrset("example.com.", "SOA", SOA),)),
        Answer(
            dns.rcode.NOERROR,
            (
                rrset("Www.example.com.", "CNAME", "e.cdn.net."),
                rrset("e.cdn.net.", "A", "192.0.2.1", "192.0.2.2", "192.0.2.3"),
            ),
        ),
        Answer(dns.rcode.NOERROR, (rrset("www.example.com.", "LOC", "1 2 3 N 4 5 6 E 7m"),)),
    ],
)
def test_store_keeps_the_bytes_of_the_dnspython_rendering(answer: Answer) -> None:
    wire = dns.message.make_query("WWW.example.COM.", "A").to_wire()
    question = parse_plain_query(wire)
    assert question is not None
    qname = dns.name.from_text("WWW.example.COM.")
    packets = PacketCache(100, lambda: 1000.0, our_payload=1232)
    random.seed(3)
    assert ClientProtocol(Config(), packets)._store(wire, question, qname, answer)
    stored = packets.answer(wire, question, 65535)
    random.seed(3)
    sections = (answer.answer, answer.authority)
    expected, _, _ = clients._render_sections_dnspython(wire, question.name_end, qname, sections)
    assert stored is not None
    assert stored[0][question.name_end :] == bytes(expected[question.name_end :])


def test_stored_renderings_match_dnspython_for_random_questions() -> None:
    """`ClientProtocol._render_stored` (the question from the packet cache's key, the owner
    that is the question's name as a pointer, `wirewrite.start_message`) against dnspython's
    rendering of the same question and records, over random names, letter cases and types."""
    rng = random.Random(1234)
    labels = ["www", "a", "Mail", "example", "COM", "net", "x-y", "b" * 63, "t"]

    def name() -> str:
        chosen = [rng.choice(labels) for _ in range(rng.randrange(0, 5))]
        cased = ["".join(c.upper() if rng.random() < 0.3 else c for c in x) for x in chosen]
        return ".".join(cased) + "." if cased else "."

    def recased(text: str) -> str:
        return "".join(c.swapcase() if rng.random() < 0.2 else c for c in text)

    types = {
        "A": lambda: f"192.0.2.{rng.randrange(256)}",
        "AAAA": lambda: f"2001:db8::{rng.randrange(65536):x}",
        "CNAME": name,
        "NS": name,
        "MX": lambda: f"{rng.randrange(65536)} {name()}",
        "SOA": lambda: f"{name()} {name()} 1 2 3 4 5",
        "TXT": lambda: '"' + "z" * rng.randrange(40) + '"',
        "SRV": lambda: f"1 2 3 {name()}",
    }
    protocol = ClientProtocol(Config(), PacketCache(100, lambda: 1000.0, our_payload=1232))
    for seed in range(400):
        qname_text = name()
        wire = dns.message.make_query(qname_text, "A", use_edns=rng.choice([None, 0])).to_wire()
        question = parse_plain_query(wire)
        assert question is not None
        qname = dns.name.from_text(qname_text)
        sections: tuple[list[dns.rrset.RRset], list[dns.rrset.RRset]] = ([], [])
        for _ in range(rng.randrange(1, 6)):
            rdtype = rng.choice(sorted(types))
            rdatas = {types[rdtype]() for _ in range(rng.randrange(1, 4))}
            # The question's own name (as written, or recased) owns most answers.
            owner = rng.choice([qname_text, recased(qname_text), name()])
            ttl = rng.randrange(1, 1 << 31)
            sections[rng.randrange(2)].append(rrset(owner, rdtype, *sorted(rdatas), ttl=ttl))
        answer = Answer(dns.rcode.NOERROR, tuple(sections[0]), tuple(sections[1]))
        random.seed(seed)
        rendered = protocol._render_stored(wire, question, qname, answer)
        random.seed(seed)
        parts = (answer.answer, answer.authority)
        expected, answers, authority = clients._render_sections_dnspython(
            wire, question.name_end, qname, parts
        )
        expected[12 : question.name_end] = expected[12 : question.name_end].lower()
        assert rendered is not None
        stored, offsets, lifetime = rendered
        assert stored[12:] == expected[12:], qname_text
        assert stored[6:10] == answers.to_bytes(2, "big") + authority.to_bytes(2, "big")
        assert offsets == ttl_offsets(bytes(stored))
        assert lifetime == min(r.ttl for r in sections[0] + sections[1])
