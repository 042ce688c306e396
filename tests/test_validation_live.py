"""DNSSEC validation through the real daemon over loopback, against the signed test internet
(`--trust-anchor-file` with its root key): AD for secure answers, none for insecure ones,
SERVFAIL with the Extended DNS Error for broken zones and their data with CD=1, denials, and
the trace of `resolver query --trace`. The scripted twin is tests/test_validation.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from resolver.testing import TestInternet
from tests.daemon_support import free_port, run_resolver, running_daemon


@pytest.fixture(scope="module")
def signed() -> TestInternet:
    return TestInternet.signed()


@pytest.fixture
def files(signed: TestInternet, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    with signed.in_thread():
        hints = signed.write_hints(tmp_path / "signed.hints")
        yield hints, signed.write_trust_anchor(tmp_path / "root.key")


def ask(port: int, name: str, rdtype: str = "A", *, cd: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=True)
    if cd:
        query.flags |= dns.flags.CD
    return dns.query.tcp(query, "127.0.0.1", port=port, timeout=10)


def edes(reply: dns.message.Message) -> list[int]:
    return [option.code for option in reply.options if isinstance(option, dns.edns.EDEOption)]


def test_the_daemon_validates(files: tuple[Path, Path]) -> None:
    hints, anchor = files
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"], trust_anchor=anchor):
        for name, rdtype, rcode in (
            ("www.nsec.sec.", "A", dns.rcode.NOERROR),
            ("www.nsec3.sec.", "A", dns.rcode.NOERROR),
            ("nx.nsec.sec.", "A", dns.rcode.NXDOMAIN),
            ("nx.nsec3.sec.", "A", dns.rcode.NXDOMAIN),
            ("www.nsec3.sec.", "TXT", dns.rcode.NOERROR),
            ("x.wild.nsec.sec.", "A", dns.rcode.NOERROR),
        ):
            reply = ask(port, name, rdtype)
            assert reply.rcode() == rcode and reply.flags & dns.flags.AD, (name, reply)
        for name, codes in (
            ("www.unsigned.sec.", []),
            ("www.insecure.optout.sec.", []),
            ("www.unknownalgo.sec.", [1]),
            ("www.unknowndigest.sec.", [2]),
            ("chain.nsec.sec.", []),
        ):
            reply = ask(port, name)
            assert reply.rcode() == dns.rcode.NOERROR, (name, reply)
            assert not reply.flags & dns.flags.AD and edes(reply) == codes, (name, reply)
        for name, code in (
            ("www.expired.sec.", 7),
            ("www.notyet.sec.", 8),
            ("www.tampered.sec.", 6),
            ("www.badds.sec.", 9),
            ("www.nodnskeysig.sec.", 10),
            ("www.nosig.sec.", 10),
        ):
            failed = ask(port, name)
            assert failed.rcode() == dns.rcode.SERVFAIL and edes(failed) == [code], failed
            data = ask(port, name, cd=True)
            assert data.rcode() == dns.rcode.NOERROR and not data.flags & dns.flags.AD
            assert data.answer, data
        keytrap = ask(port, "www.keytrap.sec.")
        assert keytrap.rcode() == dns.rcode.SERVFAIL and edes(keytrap)[0] in (6, 9)
        iterations = ask(port, "nx.iter500.sec.")
        assert iterations.rcode() == dns.rcode.NXDOMAIN and edes(iterations) == [27]
        assert not iterations.flags & dns.flags.AD


def test_query_trace_shows_the_chain_of_trust(files: tuple[Path, Path]) -> None:
    hints, anchor = files
    common = ["--root-hints", str(hints), "--query-loopback", "--trust-anchor-file", str(anchor)]
    result = run_resolver("query", "www.nsec3.sec.", "A", *common, "--trace")
    assert result.returncode == 0, result.describe()
    out = result.stdout
    assert "dnssec: DNSKEY tag 40150 alg 15 (KSK) is a trust anchor" in out, out
    assert "matches DNSKEY" in out and "alg 13" in out, out
    assert ";; NOERROR; dnssec: secure;" in out, out
    broken = run_resolver("query", "www.tampered.sec.", "A", *common)
    assert broken.returncode == 1 and "DNSSEC validation failed" in broken.stdout
    bad = run_resolver("query", "x.sec.", *common[:-1], str(hints))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("resolver: error: dnssec.trust_anchor_file: "), bad.stderr


def test_the_daemon_answers_random_names_of_a_signed_zone_from_validated_nsec(
    signed: TestInternet, files: tuple[Path, Path]
) -> None:
    """RFC 8198 end to end: after one validated NXDOMAIN, another random name of the same
    NSEC range is NXDOMAIN with AD and its proof, and ns.zones.sec. is not asked again."""
    hints, anchor = files
    port = free_port()
    zones = signed.servers["ns.zones.sec."]
    with running_daemon(hints, [f"127.0.0.1:{port}"], trust_anchor=anchor):
        first = ask(port, "nx1.nsec.sec.")
        assert first.rcode() == dns.rcode.NXDOMAIN and first.flags & dns.flags.AD
        asked = zones.query_count
        for name in ("nx2.nsec.sec.", "q7z.nsec.sec.", "below.nx1.nsec.sec."):
            reply = ask(port, name)
            assert reply.rcode() == dns.rcode.NXDOMAIN and reply.flags & dns.flags.AD, reply
            assert any(rrset.rdtype == dns.rdatatype.NSEC for rrset in reply.authority)
        assert zones.query_count == asked
        outside = ask(port, "zzz.nsec.sec.")
        assert outside.rcode() == dns.rcode.NXDOMAIN and zones.query_count > asked
