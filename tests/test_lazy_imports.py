"""The serving daemon imports only what its configuration uses.

Each optional feature's heavy modules (DNSSEC crypto, DoH's HTTP stacks, the shared cache's
client, the metrics exporter, the `hitrate` tooling) cost resident memory in every idle
process, so they are imported where the feature is first used. Checked in a fresh
interpreter, since the test process itself has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Modules that a daemon with validation off, no DoH, no metrics, no query log, one worker and
#: no shared cache must not import.
OPTIONAL = (
    "dns.dnssec",
    "dns.dnssecalgs",
    "cryptography",
    "h2",
    "h11",
    "coredis",
    "prometheus_client",
    "multiprocessing",
    "resolver.hitrate",
    "resolver.server.https",
    "resolver.server.metrics",
    "resolver.server.workers",
)


def loaded_after(script: str) -> list[str]:
    """Which of `OPTIONAL` a fresh interpreter has imported once `script` ran."""
    check = f"\nimport json, sys\nprint(json.dumps([m for m in {OPTIONAL!r} if m in sys.modules]))"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script) + check],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_serving_without_optional_features_imports_none_of_them() -> None:
    script = """
        import trio

        import resolver.cli
        from resolver.config import Config, DnssecConfig
        from resolver.server.daemon import serve

        config = Config(listen=(("127.0.0.1", 0),), dnssec=DnssecConfig(validate=False))

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, config, lambda _endpoints: None)
                nursery.cancel_scope.cancel()

        trio.run(main)
    """
    assert loaded_after(script) == []


def test_validation_loads_the_crypto_when_first_needed() -> None:
    script = """
        from resolver.dnssec.verify import algorithm_supported

        assert algorithm_supported(13)  # ECDSAP256SHA256
    """
    assert {"dns.dnssec", "dns.dnssecalgs", "cryptography"} <= set(loaded_after(script))


def test_what_a_feature_that_is_on_needs_is_imported_before_privileges_are_dropped() -> None:
    """`--user` may leave the daemon unable to read the Python installation, and the first
    client must not wait for an import: the modules of enabled features load at the start."""
    script = """
        from resolver.config import Config, DnssecConfig, ForwardZone
        from resolver.server.daemon import import_enabled_features

        pinned = ForwardZone(
            "example.", servers=("127.0.0.1",), tls=True, tls_pin_sha256=("A" * 43 + "=",)
        )
        import_enabled_features(
            Config(doh_listen=(("127.0.0.1", 443),), forward_zones=(pinned,),
                   dnssec=DnssecConfig(validate=True))
        )
    """
    loaded = set(loaded_after(script))
    assert {"dns.dnssec", "dns.dnssecalgs", "cryptography", "h2", "h11"} <= loaded
    assert "resolver.server.https" in loaded


def test_after_load_crypto_a_signature_check_imports_nothing_more() -> None:
    script = """
        import sys

        import dns.dnssec
        import dns.name
        import dns.rrset
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        from resolver.dnssec.verify import load_crypto

        load_crypto()
        keys = [
            (13, ec.generate_private_key(ec.SECP256R1())),
            (15, ed25519.Ed25519PrivateKey.generate()),
            (8, rsa.generate_private_key(65537, 1024)),
        ]
        zone = dns.name.from_text("example.")
        data = dns.rrset.from_text(zone, 300, "IN", "A", "192.0.2.1")
        before = set(sys.modules)
        for algorithm, key in keys:
            dnskey = dns.dnssec.make_dnskey(key.public_key(), algorithm)
            signature = dns.dnssec.sign(data, key, zone, dnskey, lifetime=3600)
            keys = {zone: dns.rrset.from_rdata(zone, 300, dnskey)}
            dns.dnssec.validate_rrsig(data, signature, keys)
        late = set(sys.modules) - before
        late = sorted(m for m in late if m.startswith(("cryptography", "dns.dnssec")))
        assert not late, late
    """
    loaded_after(script)
