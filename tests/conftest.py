"""Shared fixtures: the test internet and a scripted world for the pure iterator."""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver.testing import TestInternet
from resolver.testing.certs import TestCA
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import loopback_config

pytest_plugins = ["tests.frontend_support"]


@pytest.fixture
def internet() -> TestInternet:
    return TestInternet.default()


@pytest.fixture
def world(internet: TestInternet) -> ScriptedWorld:
    return ScriptedWorld(internet, loopback_config())


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    """A certificate authority of the test's own, for the TLS listeners and forwarders."""
    return TestCA(tmp_path)
