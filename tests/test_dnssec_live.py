"""DNSSEC through the real daemon over loopback, against the signed test internet: `dig
+dnssec` gets the RRSIGs and denial proofs, plain `dig` none of them, and `resolver trust
add-nta/remove-nta/list-nta` change the running daemon's negative trust anchors."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from resolver.testing import TestInternet
from tests.daemon_support import free_port, run_resolver, running_daemon
from tests.test_daemon import Record, dig, dig_path

__all__ = ["dig_path"]


@pytest.fixture(scope="module")
def signed() -> TestInternet:
    return TestInternet.signed()


@pytest.fixture
def signed_hints(signed: TestInternet, tmp_path: Path) -> Iterator[Path]:
    with signed.in_thread():
        yield signed.write_hints(tmp_path / "signed.hints")


@pytest.fixture
def anchor(signed: TestInternet, tmp_path: Path) -> Path:
    """The signed internet's root KSK, for `--trust-anchor-file`."""
    return signed.write_trust_anchor(tmp_path / "root.key")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for a Unix socket path (at most 107 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="rd-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def types_of(records: tuple[Record, ...]) -> list[str]:
    return [record.rdtype for record in records]


def test_dig_dnssec_gets_rrsigs_and_plain_dig_does_not(
    signed_hints: Path, anchor: Path, dig_path: str
) -> None:
    port = free_port()
    with running_daemon(signed_hints, [f"127.0.0.1:{port}"], trust_anchor=anchor):
        secure = dig(dig_path, "www.nsec.sec.", "A", "+dnssec", port=port)
        assert secure.status == "NOERROR"
        assert types_of(secure.answer) == ["A", "RRSIG"]
        assert "flags: do;" in secure.output  # DO echoed in the OPT record
        assert "ad" in secure.flags  # validated, and DO says the client understands AD

        plain = dig(dig_path, "www.nsec.sec.", "A", "+noadflag", port=port)
        assert types_of(plain.answer) == ["A"]
        assert "flags: do;" not in plain.output
        assert "ad" not in plain.flags  # neither DO nor AD in the query: no AD (RFC 6840 5.8)

        # The same once more, now from the packet cache, each its own way.
        assert types_of(dig(dig_path, "www.nsec.sec.", "A", "+dnssec", port=port).answer) == [
            "A",
            "RRSIG",
        ]
        assert types_of(dig(dig_path, "www.nsec.sec.", "A", port=port).answer) == ["A"]

        denial = dig(dig_path, "nx.nsec3.sec.", "A", "+dnssec", port=port)
        assert denial.status == "NXDOMAIN"
        assert "NSEC3" in types_of(denial.authority) and "RRSIG" in types_of(denial.authority)
        bare = dig(dig_path, "nx.nsec3.sec.", "A", port=port)
        assert types_of(bare.authority) == ["SOA"]

        # Asked for by type, RRSIGs come without +dnssec (RFC 4035 3.2.1).
        asked = dig(dig_path, "www.rsa.sec.", "RRSIG", port=port)
        assert asked.answer and set(types_of(asked.answer)) == {"RRSIG"}
        assert {record.data.split()[0] for record in asked.answer} == {"A", "AAAA", "NSEC"}


def test_negative_trust_anchors_through_the_control_socket(
    signed_hints: Path, short_dir: Path, anchor: Path
) -> None:
    control = short_dir / "control.sock"
    port = free_port()
    config = short_dir / "resolver.toml"
    config.write_text('[dnssec]\nnegative_trust_anchors = ["broken.sec."]\n', encoding="utf-8")
    extra = ["--control-socket", str(control), "--config", str(config)]
    with running_daemon(signed_hints, [f"127.0.0.1:{port}"], extra, trust_anchor=anchor):
        socket_args = ("--control-socket", str(control))
        assert run_resolver("trust", "list-nta", *socket_args).stdout.split() == ["broken.sec."]
        added = run_resolver("trust", "add-nta", "Expired.SEC", *socket_args)
        assert added.returncode == 0, added.describe()
        assert added.stdout.strip() == "negative trust anchor Expired.SEC. added"
        again = run_resolver("trust", "add-nta", "expired.sec.", *socket_args)
        assert "was already in force" in again.stdout
        listed = run_resolver("trust", "list-nta", *socket_args).stdout.split()
        assert [name.lower() for name in listed] == ["broken.sec.", "expired.sec."]
        removed = run_resolver("trust", "remove-nta", "broken.sec", *socket_args)
        assert removed.stdout.strip() == "negative trust anchor broken.sec. removed"
        missing = run_resolver("trust", "remove-nta", "broken.sec", *socket_args)
        assert "was not in force" in missing.stdout
        assert [
            n.lower() for n in run_resolver("trust", "list-nta", *socket_args).stdout.split()
        ] == ["expired.sec."]
        bad = run_resolver("trust", "add-nta", "bad..name", *socket_args)
        assert bad.returncode != 0
        assert bad.stderr.startswith("resolver: error:") and "NAME" in bad.stderr
        assert "Traceback" not in bad.stderr
