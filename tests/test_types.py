"""The static type check, run with the tests so that CI (which runs the README's test command)
fails on a type error just as it fails on a broken test.

What mypy checks and how strictly is configured in pyproject.toml (`[tool.mypy]`), so running
`python -m mypy` by hand at the repository root checks exactly the same thing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (it comes with the `test` extra: pip install -e '.[test]')",
)
def test_mypy_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}{result.stderr}"
