"""The static checks, run with the tests so that CI (which runs the README's test command)
fails on a type error or a lint or format slip just as it fails on a broken test.

What mypy and ruff check is configured in pyproject.toml (`[tool.mypy]`, `[tool.ruff]`), so
running `python -m mypy` or `ruff check .` by hand at the repository root checks the same thing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(module: str, *args: str) -> None:
    """Run `python -m module args` at the repository root; fail with its output unless it passes."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(
            f"{module} is not installed (it comes with the `test` extra: pip install -e '.[test]')"
        )
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{module} failed:\n{result.stdout}{result.stderr}"


def test_mypy_is_clean() -> None:
    _run("mypy")


def test_ruff_finds_nothing() -> None:
    _run("ruff", "check", ".")


def test_ruff_format_would_change_nothing() -> None:
    _run("ruff", "format", "--check", ".")
