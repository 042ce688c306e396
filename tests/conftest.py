"""Shared fixtures: a scripted world for the pure iterator, and helpers for records."""

from __future__ import annotations

import dns.rrset
import pytest

from resolver.config import Config, UpstreamConfig
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld


def loopback_config(**changes: object) -> Config:
    """Settings for resolving inside the test internet, which lives on loopback."""
    upstream = UpstreamConfig(query_loopback=True, timeout=0.3)
    return Config(upstream=upstream, **changes)  # type: ignore[arg-type]


@pytest.fixture
def internet() -> TestInternet:
    return TestInternet.default()


@pytest.fixture
def world(internet: TestInternet) -> ScriptedWorld:
    return ScriptedWorld(internet, loopback_config())


def texts(rrsets: tuple[dns.rrset.RRset, ...]) -> list[str]:
    """Every record as one presentation-format line, for exact comparisons."""
    return [line for rrset in rrsets for line in rrset.to_text().splitlines()]
