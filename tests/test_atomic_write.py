"""`write_file_atomically`: the persist and state files' writer leaves nothing behind.

A writer killed between creating its temporary file and renaming it (SIGKILL during a large
cache save) leaves `.{name}.{pid}.tmp` beside the target; the next write of that target removes
such leftovers of dead processes, and leaves a live process's temporary file alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from resolver.server.operations import write_file_atomically


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def test_leftovers_of_killed_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "cache.txt"
    dead = tmp_path / f".cache.txt.{dead_pid()}.tmp"
    dead.write_text("half a cache")
    live = tmp_path / f".cache.txt.{os.getppid()}.tmp"  # the test runner's parent: alive
    live.write_text("being written")
    other = tmp_path / ".state.json.1.tmp"  # another target's: not ours to judge
    other.write_text("x")
    write_file_atomically(target, ["one\n", "two\n"], 0o600)
    assert target.read_text() == "one\ntwo\n"
    assert not dead.exists()
    assert live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other.name, "cache.txt"]
    )
    assert (target.stat().st_mode & 0o777) == 0o600
