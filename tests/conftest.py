"""Shared fixtures: the test internet and a scripted world for the pure iterator."""

from __future__ import annotations

import pytest

from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.helpers import loopback_config

pytest_plugins = ["tests.frontend_support"]


@pytest.fixture
def internet() -> TestInternet:
    return TestInternet.default()


@pytest.fixture
def world(internet: TestInternet) -> ScriptedWorld:
    return ScriptedWorld(internet, loopback_config())
