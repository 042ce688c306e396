"""Small helpers shared by the test modules."""

from __future__ import annotations

import dns.rrset

from resolver.config import Config, DnssecConfig, UpstreamConfig
from resolver.testing import TestInternet


def loopback_config(**changes: object) -> Config:
    """Settings for resolving inside the (unsigned) test internet, which lives on loopback.

    DNSSEC validation is off unless `dnssec` is given: the unsigned internet's root has no
    DNSKEY for the bundled IANA anchors to match, so a validating resolver (Unbound as well)
    would call every answer bogus. The signed internet's tests use `signed_config`.
    """
    changes.setdefault("upstream", UpstreamConfig(query_loopback=True, timeout=0.3))
    changes.setdefault("dnssec", DnssecConfig(validate=False))
    return Config(**changes)  # type: ignore[arg-type]  # Config's fields, checked by Config


def signed_config(**changes: object) -> Config:
    """Settings for the signed test internet: validation on (the default). A `ScriptedWorld`
    trusts the internet's own root key (`TestInternet.trust_anchors`); a daemon needs
    `--trust-anchor-file` (`TestInternet.write_trust_anchor`)."""
    changes.setdefault("dnssec", DnssecConfig())
    return loopback_config(**changes)


def texts(rrsets: tuple[dns.rrset.RRset, ...]) -> list[str]:
    """Every record as one presentation-format line, for exact comparisons."""
    return [line for rrset in rrsets for line in rrset.to_text().splitlines()]


def assert_only_the_configured_roots_were_asked(internet: TestInternet) -> None:
    """Without `query_loopback`, the loopback roots of the hints file (the operator's own
    choice) may be asked, but no server whose loopback address was learnt from the network."""
    roots = {server.name for server in internet.root_servers}
    assert sum(internet.servers[name].query_count for name in roots) >= 1
    assert all(s.query_count == 0 for name, s in internet.servers.items() if name not in roots)
