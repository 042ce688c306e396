"""The docs that can be checked against the code are: a stale page fails here, not in review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SECURITY = ROOT / "docs" / "security.md"

#: `tests/file.py::test_name`, or `::test_name` for the last file a row named (alone, as in
#: `tests/file.py`, or with a test); a parametrised id in brackets may follow the name.
_TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+)(?:\[[^\]`]*\])?)?`")


def _modules() -> list[Path]:
    return sorted(
        path
        for path in (ROOT / "resolver").rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )


@pytest.mark.parametrize("module", _modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_module_is_in_the_architecture_tables(module: Path) -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    relative = module.relative_to(ROOT / "resolver")
    # The package table names `core/classify.py`; the test internet's table names `faults.py`.
    names = {f"`{relative.as_posix()}`", f"`{module.name}`"}
    assert any(name in text for name in names), f"docs/architecture.md never names {relative}"


def _security_references() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for line in SECURITY.read_text(encoding="utf-8").splitlines():
        current = None
        for match in _TEST_REFERENCE.finditer(line):
            current = match.group(1) or current
            if match.group(2) is None:
                continue
            assert current is not None, f"'::{match.group(2)}' follows no file in: {line}"
            found.append((current, match.group(2)))
    return found


@pytest.mark.parametrize(("path", "name"), _security_references())
def test_every_test_named_in_the_security_page_exists(path: str, name: str) -> None:
    source = (ROOT / path).read_text(encoding="utf-8")
    assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{path}::{name} does not exist"
