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
