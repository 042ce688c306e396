"""The static checks, run with the tests so that CI (which runs the README's test command)
fails on a type error or a lint or format slip just as it fails on a broken test.

What mypy and ruff check is configured in pyproject.toml (`[tool.mypy]`, `[tool.ruff]`), so
running `python -m mypy` or `ruff check .` by hand at the repository root checks the same thing.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
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


#: `# type: ignore[code]` followed on the same line by `# ` and the reason it is needed.
_EXPLAINED_IGNORE = re.compile(r"# type: ignore\[[a-z-]+(?:, *[a-z-]+)*\]  # \S")


def _lines_where(tree: str, wrong: Callable[[str], object]) -> str:
    """`path:number: line` of every line of `tree`'s Python files that is `wrong`, one a line."""
    return "\n".join(
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / tree).rglob("*.py"))
        if path != Path(__file__).resolve()  # this file spells the patterns out
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if wrong(line)
    )


@pytest.mark.parametrize("tree", ["resolver", "benchmarks", "tests"])
def test_every_type_ignore_names_its_error_and_gives_a_reason(tree: str) -> None:
    """A silenced type error says which error it silences and why, on the same line, so that a
    reader can judge it and mypy still reports any other error on that line."""
    unexplained = _lines_where(
        tree, lambda line: "type: ignore" in line and not _EXPLAINED_IGNORE.search(line)
    )
    assert not unexplained, unexplained


#: "issue 8", "issue #10", "(#11)", "the #12 review": a tracker's numbers, which mean nothing to a
#: reader of the code (or of a program's output) once the tracker is gone or renumbered.
_ISSUE_NUMBER = re.compile(r"\bissues?\s*#?\s*\d+|(?<![\w/&#])#\d{1,2}\b", re.IGNORECASE)


@pytest.mark.parametrize("tree", ["resolver", "benchmarks", "tests"])
def test_no_code_names_an_issue_by_its_number(tree: str) -> None:
    """Code says what a rule is for, in words, not which issue asked for it."""
    numbered = _lines_where(tree, _ISSUE_NUMBER.search)
    assert not numbered, numbered
