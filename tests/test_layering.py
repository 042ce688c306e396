"""The layering the architecture promises: the engine and everything under it do no I/O.

`resolver/core/`, `resolver/cache/` and `resolver/engine/` must not import trio, socket or time
(or anything else that reaches the network or reads a clock): they are driven by the trio layer
in the daemon and by scripts in tests and simulations, with the same results.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "resolver"
PURE = ("core", "cache", "engine", "dnssec")
FORBIDDEN = {"trio", "socket", "time", "asyncio", "selectors", "select", "resolver.server"}


def _pure_modules() -> list[Path]:
    return sorted(path for package in PURE for path in (ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", _pure_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_pure_modules_import_no_io(module: Path) -> None:
    bad = {
        name
        for name in _imports(module)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN)
    }
    assert not bad, f"{module.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_check_sees_an_import() -> None:
    """The test can fail: the trio layer's carrier does import trio."""
    assert "trio" in _imports(ROOT / "server" / "upstream.py")
